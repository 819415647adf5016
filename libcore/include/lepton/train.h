/*
 * train.h - model-agnostic training support. This header grows by sections; each section is
 * self-contained and names its source folder files:
 *   - cross-validation folds            (src/train/kfold.c)
 *   - probability calibration           (src/train/calibrate.c)
 * Nothing here knows a model: folds are index assignments and calibrators map scores or logits
 * to probabilities, so any model family can use them.
 */
#ifndef LEPTON_TRAIN_H
#define LEPTON_TRAIN_H

#include "lepton/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* =========================================================================================
 * Cross-validation folds
 * -----------------------------------------------------------------------------------------
 * A split is an assignment fold[i] in [0, k) for each of n samples: sample i is in the test
 * set of fold fold[i] and in the training set of every other fold. So every index is in
 * exactly one test fold by construction. Fold sizes differ by at most one (the first n % k
 * folds get one more). Same (n, k, seed) -> same assignment on every platform.
 * ========================================================================================= */

/* Shuffled k-fold (sklearn KFold(n_splits=k, shuffle=True) semantics, not its exact stream):
 * a seeded Fisher-Yates permutation of 0..n-1 is cut into k consecutive chunks of size
 * n / k or n / k + 1. fold (n) is caller-owned output. Errors: k < 2, k > n, NULL fold,
 * LP_ENOMEM. Thread-safe. */
lp_status lp_kfold_split(size_t n, size_t k, uint64_t seed, int32_t *fold, lp_err *err);

/* Stratified k-fold (sklearn StratifiedKFold(shuffle=True) semantics): the samples of each
 * class are shuffled (seeded) and the classes laid end to end in increasing label order; the
 * sample at position p of that order goes to fold p % k. Hence total fold sizes differ by at
 * most one AND each class's count per fold differs by at most one across folds, as in sklearn.
 * y (n) are labels >= 0 (any ints; they are only compared). A class with fewer than k samples
 * is allowed (some folds then lack it) and logged at WARN, as sklearn warns. Errors: k < 2,
 * k > n, a negative label, NULL, LP_ENOMEM. Thread-safe. */
lp_status lp_kfold_stratified(const int32_t *y, size_t n, size_t k, uint64_t seed, int32_t *fold,
                              lp_err *err);

/* Indices of fold f's training set (fold[i] != f) and test set (fold[i] == f), each in
 * increasing order, written into caller arrays of n entries (either may be NULL); the counts
 * go to *n_train, *n_test (nullable). Errors: a fold value outside [0, k) (names the index). */
lp_status lp_kfold_indices(const int32_t *fold, size_t n, size_t k, size_t f, size_t *train_idx,
                           size_t *n_train, size_t *test_idx, size_t *n_test, lp_err *err);

/* =========================================================================================
 * Probability calibration
 * -----------------------------------------------------------------------------------------
 * One handle for three calibrators fitted on held-out data:
 *   PLATT        binary: p = sigmoid(A f + B) of a real score f (Platt 1999, "Probabilistic
 *                outputs for SVMs"), fitted by Newton's method with backtracking on the
 *                target-smoothed log-loss: targets (N+ + 1)/(N+ + 2) for positives and
 *                1/(N- + 2) for negatives (Lin, Lin & Weng 2007, "A note on Platt's
 *                probabilistic outputs", Algorithm 1). Note sklearn reports (a, b) of
 *                1/(1 + exp(a f + b)), i.e. a = -A, b = -B.
 *   ISOTONIC     binary: the nondecreasing step function of the score minimising squared error
 *                (pool-adjacent-violators, Barlow et al. 1972; equal scores are pooled
 *                first); predictions interpolate linearly between the fitted knots and clip
 *                outside the training range (sklearn IsotonicRegression(increasing=True,
 *                out_of_bounds='clip')).
 *   TEMPERATURE  multiclass: p = softmax(z / T) of logits z (k >= 2), T > 0 minimising the
 *                mean NLL (Guo et al. 2017). The NLL is convex in 1/T, so its derivative is
 *                found by bisection in log(1/T) on [1e-4, 1e4]; T is clamped to that range.
 * A fitted calibrator is immutable and may be shared by threads for prediction.
 * ========================================================================================= */

typedef enum lp_calibrator_kind {
    LP_CALIBRATOR_KIND_PLATT = 1,
    LP_CALIBRATOR_KIND_ISOTONIC = 2,
    LP_CALIBRATOR_KIND_TEMPERATURE = 3
} lp_calibrator_kind;

typedef struct lp_calibrator lp_calibrator;

/* Fit Platt scaling on scores (n) and labels y (n) in {0, 1}. Both classes must be present.
 * *out is a new calibrator the caller frees with lp_calibrator_free. Errors: n == 0, NaN/Inf
 * score, bad label, one class only (LP_EINVAL); LP_ENOMEM; LP_ENUMERIC if Newton fails. */
lp_status lp_calibrator_fit_platt(const double *scores, const int32_t *y, size_t n,
                                  lp_calibrator **out, lp_err *err);

/* Fit isotonic calibration on scores (n) and labels y (n) in {0, 1}. One class only is
 * allowed (the fit is then constant). Errors as lp_calibrator_fit_platt. */
lp_status lp_calibrator_fit_isotonic(const double *scores, const int32_t *y, size_t n,
                                     lp_calibrator **out, lp_err *err);

/* Fit temperature scaling on logits (n, k), k >= 2, and labels y (n) in [0, k).
 * Errors: NaN/Inf logit, bad label, k < 2, n == 0, LP_ENOMEM. */
lp_status lp_calibrator_fit_temperature(const double *logits, const int32_t *y, size_t n,
                                        size_t k, lp_calibrator **out, lp_err *err);

void lp_calibrator_free(lp_calibrator *cal); /* NULL is a no-op */

lp_calibrator_kind lp_calibrator_get_kind(const lp_calibrator *cal);
/* Number of input columns predict expects: 1 for PLATT/ISOTONIC, k for TEMPERATURE. */
size_t lp_calibrator_n_cols(const lp_calibrator *cal);

/* The fitted parameters for inspection (NULL-safe outputs; NaN where not applicable):
 * PLATT a = A, b = B; TEMPERATURE a = T; ISOTONIC a = number of knots. */
void lp_calibrator_params(const lp_calibrator *cal, double *a, double *b);

/* Calibrated probabilities. PLATT/ISOTONIC: x (n) scores -> out (n) = P(y = 1);
 * TEMPERATURE: x (n, k) logits -> out (n, k) rows summing to 1. cols must equal
 * lp_calibrator_n_cols. out may alias x. Errors: NaN input (names the index), wrong cols.
 * Thread-safe on a shared calibrator. */
lp_status lp_calibrator_predict(const lp_calibrator *cal, const double *x, size_t n, size_t cols,
                                double *out, lp_err *err);

/* Append the calibrator to b: magic "LPCAL", u32 format version, u8 kind, then the kind's
 * parameters (f64s; isotonic: u64 knot count then the knots). Check lp_buf_status after. */
void lp_calibrator_save(const lp_calibrator *cal, lp_buf *b);

/* Read one calibrator written by lp_calibrator_save from r (advancing it). Checks magic,
 * version, kind, counts against the bytes left, finiteness, sorted knots, T > 0; a bad or
 * truncated input is LP_EFORMAT (LP_EVERSION for a newer version) with a message naming
 * r->what, never a crash. *out is new (caller frees) and NULL on error. */
lp_status lp_calibrator_load(lp_reader *r, lp_calibrator **out, lp_err *err);

/* ---- label shift: re-weighting calibrated probabilities to another class mix ----------------
 * Saerens, Latinne & Decaestecker 2002, "Adjusting the outputs of a classifier to new a priori
 * probabilities: a simple procedure". When only the class mix changes between the data a
 * model's probabilities are calibrated on (prior `from`) and the data it is used on (prior
 * `to`), p'(j|x) = p(j|x) to_j / from_j, renormalised per row. A prior is k values in (0, 1]
 * summing to 1 (within 1e-6). */

/* p (n, k) rows calibrated to `from` -> out (n, k) calibrated to `to`. out may alias p.
 * Errors (LP_EINVAL, naming the value): k < 2, a prior value outside (0, 1] or not finite, a
 * prior not summing to 1, a negative or NaN probability (names the row), a row of zeros. */
lp_status lp_prior_shift_apply(const double *p, size_t n, size_t k, const double *from,
                               const double *to, double *out, lp_err *err);

/* The class mix of unlabeled rows p (n, k), calibrated to `from`, by EM: start at `from`,
 * alternate p' = shift(p, from -> to) and to = mean of p' rows, until no prior value moves by
 * more than tol (e.g. 1e-6) or after max_iter rounds; each value of `to` is kept at least
 * 1e-6 so no class is ruled out. *iters (may be NULL) gets the rounds run. Errors as
 * lp_prior_shift_apply, plus n == 0 and max_iter < 1. */
lp_status lp_prior_shift_em(const double *p, size_t n, size_t k, const double *from,
                            int max_iter, double tol, double *to, int *iters, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
