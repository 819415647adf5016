/*
 * gbdt.h - histogram gradient-boosted decision trees (private API of the model module).
 *
 * The algorithm is the one of XGBoost "hist" (Chen & Guestrin 2016) and LightGBM (Ke et al.
 * 2017): features are quantile-binned once (<= 255 value bins per feature plus a dedicated
 * missing bin), trees grow leaf-wise (best-first) on per-leaf gradient/hessian histograms,
 * split gain is the second-order gain 0.5 * [G_L^2/(H_L+l) + G_R^2/(H_R+l) - G^2/(H+l)], leaf
 * values are -G/(H+l) * learning_rate, and each split learns where missing values go.
 *
 * What it is not: no categorical splits, no monotone constraints, no GPU path. The public
 * lp_model handle wraps this later; everything here is usable on its own.
 *
 * Invariants of a fitted lp_gbdt: immutable after lp_gbdt_fit/lp_gbdt_load, so any number of
 * threads may predict at once. Trees are stored round-major: tree t belongs to round
 * t / n_outputs and output (class) t % n_outputs. Inside a tree node 0 is the root and every
 * child index is larger than its parent's, so traversal always terminates.
 *
 * Determinism: a fit depends only on the data, the options and the seed, not on the number
 * of threads (histograms are summed over fixed row blocks in a fixed order).
 */
#ifndef LEPTON_MODEL_GBDT_H
#define LEPTON_MODEL_GBDT_H

#include "lepton/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lp_gbdt_loss {
    LP_GBDT_LOSS_L2 = 0,  /* regression, squared error; predict gives the margin */
    LP_GBDT_LOSS_LOGLOSS, /* binary classification, y in {0, 1}; predict gives P(y = 1) */
    LP_GBDT_LOSS_SOFTMAX  /* multiclass, y in {0 .. n_classes-1}; one tree per class per round */
} lp_gbdt_loss;

typedef struct lp_gbdt_opts {
    lp_gbdt_loss loss;
    int n_classes;               /* SOFTMAX only: 2..1024 (ignored otherwise) */
    int n_rounds;                /* boosting rounds, >= 1 */
    float learning_rate;         /* shrinkage eta, in (0, 1] */
    int max_leaves;              /* >= 2, or 0 for unlimited (then max_depth must be set) */
    int max_depth;               /* >= 1, or 0 for unlimited */
    int max_bins;                /* value bins per feature, 2..255 (the missing bin is extra) */
    float lambda;                /* L2 regularisation of leaf values, >= 0 */
    float min_child_weight;      /* minimum hessian sum in a child, >= 0 */
    float min_split_gain;        /* gamma: a split must gain more than this, >= 0 */
    float subsample;             /* row fraction drawn per round, in (0, 1] */
    float colsample;             /* feature fraction drawn per tree, in (0, 1] */
    int early_stopping_rounds;   /* stop after this many rounds without validation gain; 0 off */
    size_t bin_sample;           /* rows sampled to place bin boundaries, >= 1 */
    uint64_t seed;               /* every random choice (bin sample, rows, columns) */
    int n_threads;               /* OpenMP threads for fit and batch predict; 0 = default */
    float base_score;            /* starting prediction, NaN (default) = from the labels: the
                                  * weighted mean (L2), the positive rate's log-odds (LOGLOSS);
                                  * else the mean (L2) or a probability in (0, 1) (LOGLOSS, 0.5
                                  * is XGBoost 1.x's default margin 0). SOFTMAX: must be NaN. */
} lp_gbdt_opts;

/* Defaults: L2, 100 rounds, lr 0.1, 31 leaves, depth unlimited, 255 bins, lambda 1,
 * min_child_weight 1e-3, gamma 0, no sampling, no early stopping, 200000 bin-sample rows,
 * seed 0, default threads, base score from the labels (NaN). */
lp_gbdt_opts lp_gbdt_opts_default(void);

/* Validate every field. On failure returns LP_EINVAL with a message naming the parameter,
 * its value and the valid range ("max_depth=-3: must be >= 1 or 0 for unlimited"). */
lp_status lp_gbdt_opts_check(const lp_gbdt_opts *opts, lp_err *err);

typedef struct lp_gbdt lp_gbdt;

/* A tree node. Leaves have feature == -1, left == right == -1 and carry `value` (already
 * multiplied by the learning rate). Internal nodes send x to `left` when x[feature] <=
 * threshold, to `right` when greater, and to the default side when x[feature] is NaN.
 * `cover` is the training hessian sum reaching the node (TreeSHAP uses it); `gain` the split
 * gain of an internal node (0 for leaves). */
typedef struct lp_gbdt_node {
    int32_t feature;
    float threshold;
    int32_t left, right;
    uint8_t default_left;
    float value;
    float gain;
    double cover;
} lp_gbdt_node;

/* Fit a boosted ensemble.
 *   X (n, d) row-major, NaN = missing; +-Inf are ordinary (extreme) values.
 *   y (n): targets (L2), 0/1 (LOGLOSS) or class indices 0..n_classes-1 (SOFTMAX).
 *   weight (n) or NULL for unit weights; each must be finite and >= 0.
 *   X_valid (n_valid, d), y_valid (n_valid): optional (NULL / 0) validation set. When given, the
 *   validation loss is computed every round; with early_stopping_rounds > 0 training stops
 *   after that many rounds without improvement and the model keeps the best round.
 * On success *out owns a new model (lp_gbdt_free). Errors: LP_EINVAL for bad options or data
 * (naming the row and field), LP_ENOMEM, LP_ENUMERIC if a gradient becomes non-finite.
 * Inputs are only read; the call uses up to opts->n_threads OpenMP threads. */
lp_status lp_gbdt_fit(const float *X, const float *y, const float *weight, size_t n, size_t d,
                      const lp_gbdt_opts *opts, const float *X_valid, const float *y_valid,
                      size_t n_valid, lp_gbdt **out, lp_err *err);

/* Continued boosting (the finetune module): like lp_gbdt_fit, but every margin starts from
 * init's raw scores (its base score plus its trees) and the result holds init's trees followed
 * by the opts->n_rounds new ones fitted on X, y (the base's bin mapper is not reused: thresholds
 * are real values, so the new trees bin the new data on their own). init must have opts' loss,
 * class count and d features, else LP_EINVAL naming both. init is only read. */
lp_status lp_gbdt_fit_continue(const lp_gbdt *init, const float *X, const float *y,
                               const float *weight, size_t n, size_t d, const lp_gbdt_opts *opts,
                               const float *X_valid, const float *y_valid, size_t n_valid,
                               lp_gbdt **out, lp_err *err);
void lp_gbdt_free(lp_gbdt *m);

/* Raw margins for n rows: out (n, n_outputs) = base score + sum of tree leaf values.
 * X (n, d) with NaN = missing. OpenMP over rows (n_threads of the fit, or of
 * lp_gbdt_set_threads). Thread-safe. Returns LP_EINVAL on NULL arguments. */
lp_status lp_gbdt_predict_raw(const lp_gbdt *m, const float *X, size_t n, float *out,
                              lp_err *err);
/* Like predict_raw, then the link: identity (L2), sigmoid (LOGLOSS), softmax over the
 * n_outputs margins of a row (SOFTMAX). */
lp_status lp_gbdt_predict(const lp_gbdt *m, const float *x, size_t n, float *out, lp_err *err);
/* One row, no threads, no allocation: out (n_outputs) raw margins. For request paths. */
void lp_gbdt_predict_row_raw(const lp_gbdt *m, const float *x, float *out);

/* Threads used by batch predict (0 = OpenMP default). Not thread-safe against predicts. */
void lp_gbdt_set_threads(lp_gbdt *m, int n_threads);

typedef enum lp_gbdt_importance {
    LP_GBDT_IMPORTANCE_GAIN = 0, /* total split gain of the feature over all trees */
    LP_GBDT_IMPORTANCE_SPLIT     /* number of splits on the feature */
} lp_gbdt_importance;

/* out (n_features) receives the importance of every feature (unnormalised). */
void lp_gbdt_feature_importance(const lp_gbdt *m, lp_gbdt_importance kind, double *out);

/* ---- accessors (no ownership transfer; pointers live as long as the model) ---- */
lp_gbdt_loss lp_gbdt_loss_of(const lp_gbdt *m);
size_t lp_gbdt_n_features(const lp_gbdt *m);
/* 1 for L2 and LOGLOSS, n_classes for SOFTMAX. */
size_t lp_gbdt_n_outputs(const lp_gbdt *m);
/* Rounds kept (the best round + 1 when early stopping triggered). */
size_t lp_gbdt_n_rounds(const lp_gbdt *m);
/* Trees = n_rounds * n_outputs. */
size_t lp_gbdt_n_trees(const lp_gbdt *m);
/* Nodes of tree t (t < n_trees), *n_nodes set; NULL when t is out of range. */
const lp_gbdt_node *lp_gbdt_tree(const lp_gbdt *m, size_t t, size_t *n_nodes);
/* Base margin of output k (label mean, log-odds for LOGLOSS, log prior for SOFTMAX; or the
 * margin of opts.base_score when it was set). */
double lp_gbdt_base_score(const lp_gbdt *m, size_t k);
/* Validation loss of the kept round (NaN when no validation set), and of every trained
 * round: *n gets the count of rounds trained (may exceed n_rounds after early stopping). */
double lp_gbdt_best_valid_loss(const lp_gbdt *m);
const double *lp_gbdt_valid_history(const lp_gbdt *m, size_t *n);

/* ---- serialization ----
 * Format (little-endian): "LPGB", u32 version (1), u32 loss, u32 n_outputs, u64 d, u64 rounds,
 * f64 base[n_outputs], f64 best_valid_loss, then per tree u32 n_nodes and the nodes
 * (i32 feature, f32 threshold, i32 left, i32 right, u8 default_left, f32 value, f32 gain,
 * f64 cover), then u32 CRC-32 of all previous bytes. */
lp_status lp_gbdt_save(const lp_gbdt *m, lp_buf *b, lp_err *err);
/* Reads one model from r (advancing it). Checks magic, version, sizes, every child index and
 * feature index and the CRC: a truncated or corrupted blob is LP_EFORMAT / LP_EVERSION with a
 * message naming r->what, never a crash. *out owns a new model on success. */
lp_status lp_gbdt_load(lp_reader *r, lp_gbdt **out, lp_err *err);

/* ---- internals exposed for tests ---- */
/* Gradient and hessian of the loss at raw margin(s) for one row (unit weight).
 * L2 / LOGLOSS: margin[0], g[0], h[0]. SOFTMAX: margin, g, h have n_classes entries. */
void lp_gbdt_loss_grad(lp_gbdt_loss loss, int n_classes, const double *margin, float y,
                       double *g, double *h);

#ifdef __cplusplus
}
#endif
#endif
