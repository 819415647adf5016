/*
 * explain.h - exact per-feature attributions of a fitted model's raw output (margin).
 *
 * Two exact methods, chosen by the model's family:
 *   gbdt                 TreeSHAP, Lundberg et al. 2020 ("From local explanations to global
 *                        understanding with explainable AI for trees", Nature MI 2:56-67,
 *                        Algorithm 2): Shapley values of the path-dependent conditional
 *                        expectation E[f(x) | x_S], where a split on a feature outside S sends
 *                        x down both children weighted by the children's training covers.
 *                        Polynomial time, O(T L D^2) per row (T trees, L leaves, depth D).
 *   linear / logistic    coef_j * (x_j - mean_j): the exact Shapley values of a linear model
 *                        under feature independence; mean is the background mean of the design
 *                        (0 unless lp_explainer_set_background gave one - the training mean of
 *                        every standard-scaled column is 0).
 * Both satisfy local accuracy: base_value + sum_j phi_j == the raw margin (log-odds for binary
 * classifiers, the value for regression, the class-k margin for multiclass), and a feature the
 * model never uses gets exactly 0.
 *
 * Attributions are over the model's DESIGN columns (the feature pipeline's outputs, named by
 * lp_explainer_feature_name: "amount", "city=Paris", ...). lp_model_explain maps raw rows
 * through the model's cleaner and pipeline first.
 *
 * What it does not do: no interventional (background-data) TreeSHAP, no interaction values,
 * no nn family (LP_EUNSUPPORTED). An lp_explainer is immutable once built (set_background is
 * the only mutation, before sharing) and may be used by many threads, each with its own
 * lp_explain_ws.
 */
#ifndef LEPTON_EXPLAIN_H
#define LEPTON_EXPLAIN_H

#include "lepton/base.h"
#include "lepton/data.h"
#include "lepton/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lp_explainer lp_explainer;
typedef struct lp_explain_ws lp_explain_ws;

/* Build an explainer over m's family state. m must outlive the explainer (it borrows the trees
 * or coefficients). Errors: LP_EUNSUPPORTED for a family without an exact method (nn),
 * LP_ENOMEM. *out is new; free with lp_explainer_free. */
lp_status lp_explainer_new(const lp_model *m, lp_explainer **out, lp_err *err);
void lp_explainer_free(lp_explainer *e);

/* Design columns d, outputs (1, or the class count for multiclass), and the name of design
 * column j (owned by the model; NULL when out of range). */
size_t lp_explainer_n_features(const lp_explainer *e);
size_t lp_explainer_n_outputs(const lp_explainer *e);
const char *lp_explainer_feature_name(const lp_explainer *e, size_t j);

/* Linear families only: the background mean of the design, computed from X (n, d) in double.
 * LP_EINVAL on a shape mismatch or n == 0, LP_EUNSUPPORTED for trees (TreeSHAP's background is
 * the training covers). Not thread-safe: call before sharing e. */
lp_status lp_explainer_set_background(lp_explainer *e, const float *X, size_t n, size_t d,
                                      lp_err *err);

/* E[f] of output k: for trees the base score plus each tree's cover-weighted mean leaf value;
 * for linear models intercept + coef . mean. */
double lp_explainer_base_value(const lp_explainer *e, size_t k);

/* A per-thread scratch area sized for e (the deepest tree's path buffer). Reuse it across
 * calls; one per thread. NULL on allocation failure. */
lp_explain_ws *lp_explain_ws_new(const lp_explainer *e);
void lp_explain_ws_free(lp_explain_ws *ws);

/* Attributions of output k for one design row x (d,), NaN = missing (trees take the default
 * branch). phi (d,) is overwritten; *margin (may be NULL) gets the raw margin, equal to
 * base_value + sum(phi) up to float rounding of the leaf values. The request path: no
 * allocation, no threads. Returns LP_EINVAL for k out of range or a workspace of another
 * explainer. */
lp_status lp_explainer_row(const lp_explainer *e, lp_explain_ws *ws, const float *x, size_t k,
                           double *phi, double *margin, lp_err *err);

/* The raw margins (n_outputs) of one design row without attributions, for scoring on the same
 * path (same trees, same arithmetic as lp_explainer_row). No allocation. */
void lp_explainer_margin(const lp_explainer *e, const float *x, double *out);

/* Batch: X (n, d) -> phi (n, d) of output k, margin (n) may be NULL. OpenMP over rows with
 * threads (0 = default); each thread allocates its own workspace. LP_ENOMEM, LP_EINVAL. */
lp_status lp_explainer_batch(const lp_explainer *e, const float *X, size_t n, size_t k,
                             int threads, double *phi, double *margin, lp_err *err);

/* Attributions of raw rows (columns by name as for lp_model_predict) through m's cleaner and
 * pipeline. */
typedef struct lp_attributions {
    size_t n, d;          /* rows; design columns */
    double *phi;          /* (n, d) */
    double *margin;       /* (n,) raw margin of output k */
    double base;          /* base value of output k */
    const char **names;   /* (d,) design column names: the array is this struct's, the
                             strings the model's */
} lp_attributions;

/* Explain output k (0 for regression and binary: the positive class's log-odds) of m on rows.
 * Errors as for lp_model_predict, plus LP_EUNSUPPORTED (nn) and LP_EINVAL (k). out is filled;
 * release with lp_attributions_clear. Uses up to `threads` OpenMP threads (0 = default). */
lp_status lp_model_explain(const lp_model *m, const lp_frame *rows, size_t k, int threads,
                           lp_attributions *out, lp_err *err);
void lp_attributions_clear(lp_attributions *a);

#ifdef __cplusplus
}
#endif
#endif
