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
 * What it does not do: no interventional (background-data) TreeSHAP, no interaction values;
 * the lp_explainer has no nn family (LP_EUNSUPPORTED): nn models are explained by integrated
 * gradients and any model by KernelSHAP through lp_explain_rows below. An lp_explainer is
 * immutable once built (set_background is the only mutation, before sharing) and may be used by
 * many threads, each with its own lp_explain_ws. For gbdt, lp_explainer_new also precomputes
 * per-leaf TreeSHAP tables (treeshap.c: up to 32 MiB, milliseconds to build) that make each row
 * several times cheaper; the results are the same values.
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

/* Batch: X (n, d) -> phi (n, d) of output k, margin (n) may be NULL. gbdt: OpenMP over blocks
 * of rows with threads (0 = default), trees outermost inside a block so one tree's TreeSHAP
 * table stays in cache; each thread allocates its own workspace. LP_ENOMEM, LP_EINVAL. */
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

/* =========================================================================================
 * One entry point for every family: lp_explain_rows
 * -----------------------------------------------------------------------------------------
 * Methods (src/explain/):
 *   LINEAR      linear / logistic: phi_j = coef_j (x_j - mean_j) as above (exact).
 *   TREESHAP    gbdt: path-dependent TreeSHAP as above (exact).
 *   IG          nn: integrated gradients (Sundararajan, Taly & Yan 2017, "Axiomatic attribution
 *               for deep networks"): phi_i = (x_i - b_i) int_0^1 dF(b + a (x - b))/dx_i da,
 *               the integral by the trapezoid rule over m steps (m + 1 gradient evaluations),
 *               baseline b = the background's mean design row, or zeros without a background
 *               (zero is the training mean of every standard-scaled column). Completeness
 *               (sum phi = F(x) - F(b)) holds up to the trapezoid error: O(1/m^2) for a smooth
 *               net, O(1/m) across ReLU kinks.
 *   KERNELSHAP  any family: Kernel SHAP (Lundberg & Lee 2017, "A unified approach to
 *               interpreting model predictions", Theorem 2): coalitions z of the M features,
 *               v(z) = mean over the background rows b of F(x_z, b_~z), fitted by weighted least
 *               squares sum_z pi(z) (v(z) - v(0) - sum_{j in z} phi_j)^2 with the Shapley kernel
 *               pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|)) under the efficiency constraint
 *               sum phi = v(1) - v(0) (eliminated exactly). All 2^M - 2 coalitions are used
 *               (exact Shapley values of the game v) when that is at most `samples`; otherwise
 *               `samples` coalitions are drawn, seeded, size s with probability proportional to
 *               (M - 1) / (s (M - s)), in complementary pairs, each with equal weight. A feature
 *               whose value equals every background row's gets exactly 0. Needs a background.
 *   AUTO        the exact method of the family (LINEAR, TREESHAP, IG for nn).
 * F is the model's raw score: the value (regression), the log-odds of the second class
 * (binary: the margin of linear and gbdt models, z_1 - z_0 of the nn's two logits), or the
 * explained class's margin / logit (multiclass). Multiclass rows explain their predicted class
 * unless opts.output fixes one.
 *
 * Features. With raw_columns (the default) attributions are over the model's raw input columns:
 * the contributions of a column's derived design columns are summed ("city=Paris" and
 * "city=Rome" into "city"; "note:tfidf:late" into "note"; "t:hour_sin" into "t"), which is exact
 * for the additive methods (LINEAR, TREESHAP, IG are sums over design columns) and, for
 * KERNELSHAP, the coalitions themselves are over raw columns (a column is taken from x or from
 * b as a whole, so a one-hot block stays consistent). A design column is mapped to the input
 * whose name is the longest prefix of it followed by the end, '=' or ':'; a PCA output
 * ("pca<step>:<k>") mixes columns and is kept as its own feature. Inputs without any design
 * column get 0. Without raw_columns the features are the design columns.
 * ========================================================================================= */

typedef enum lp_explain_method {
    LP_EXPLAIN_METHOD_AUTO = 0,
    LP_EXPLAIN_METHOD_LINEAR,
    LP_EXPLAIN_METHOD_TREESHAP,
    LP_EXPLAIN_METHOD_IG,
    LP_EXPLAIN_METHOD_KERNELSHAP
} lp_explain_method;

/* "auto", "linear", "treeshap", "ig", "kernelshap". */
const char *lp_explain_method_name(lp_explain_method m);
/* LP_EINVAL naming the text and the choices. */
lp_status lp_explain_method_parse(const char *s, lp_explain_method *out, lp_err *err);
/* The method AUTO resolves to for kind; LP_EUNSUPPORTED when method does not apply to kind
 * ("method treeshap needs a gbdt model, this one is nn"). */
lp_status lp_explain_method_resolve(lp_explain_method method, lp_model_kind kind,
                                    lp_explain_method *out, lp_err *err);

typedef struct lp_explain_opts {
    lp_explain_method method; /* default AUTO */
    long output;              /* the output to explain; -1 (default): the predicted class for
                                 multiclass, else 0 */
    bool raw_columns;         /* attributions over raw input columns (default true) */
    size_t background;        /* at most this many background rows, drawn seeded from the
                                 background frame (default 100; 1..100000) */
    size_t samples;           /* KernelSHAP coalitions; 0 (default) = 2 M + 2048 */
    size_t ig_steps;          /* IG trapezoid intervals m (default 64; 1..100000) */
    uint64_t seed;            /* background draw and coalitions (default 0) */
    int threads;              /* OpenMP threads on batch paths (0 = default) */
} lp_explain_opts;

lp_explain_opts lp_explain_opts_default(void);
lp_status lp_explain_opts_check(const lp_explain_opts *o, lp_err *err);

typedef struct lp_explanation {
    lp_explain_method method; /* the method used (never AUTO) */
    size_t n, p;              /* rows; features */
    char **names;             /* (p,) feature names, owned */
    double *phi;              /* (n, p) contributions */
    double *raw;              /* (n,) raw score F(x) of the explained output */
    double *base;             /* (n,) base value: E[F] (LINEAR, TREESHAP, KERNELSHAP) or F(b)
                                 (IG); base + sum phi = raw (IG: up to the trapezoid error) */
    int32_t *output;          /* (n,) the output explained (the class index, multiclass) */
} lp_explanation;

/* Explain raw rows (columns by name as for lp_model_predict). background: raw rows with the
 * same inputs (may be NULL; KERNELSHAP requires it; LINEAR and IG use its mean design row,
 * TREESHAP ignores it); at most o->background of them are used. Errors (one line each):
 * those of lp_model_predict (a missing column, naming it), LP_EUNSUPPORTED for a method that
 * does not apply to the family, LP_EINVAL for options, an output out of range, KERNELSHAP
 * without a background, LP_ENOMEM. out is filled; release with lp_explanation_clear.
 * Thread-safe: IG serialises on a module lock (the net's gradient scratch). */
lp_status lp_explain_rows(const lp_model *m, const lp_frame *rows, const lp_frame *background,
                          const lp_explain_opts *o, lp_explanation *out, lp_err *err);
void lp_explanation_clear(lp_explanation *e);

/* Feature indices of row i sorted by |phi| descending (ties by index), the first k of them
 * into idx (k <= p). */
void lp_explanation_top(const lp_explanation *e, size_t i, size_t k, size_t *idx);

/* Permutation importance (Breiman 2001; Fisher, Rudin & Dominici 2019): the drop of the
 * model's score on labelled data when one feature's values are shuffled across rows (seeded,
 * `repeats` shuffles each; with raw_columns a raw column's design columns move together).
 * Score: accuracy (classification) or R^2 (regression). importance_j = score - mean of the
 * permuted scores; std_j their standard deviation. A feature the model ignores gets exactly 0. */
typedef struct lp_importance {
    size_t p;
    char **names;       /* (p,) owned */
    double *importance; /* (p,) */
    double *std;        /* (p,) */
    double score;       /* unpermuted score */
    const char *metric; /* "accuracy" or "r2" (static) */
} lp_importance;

/* data holds the label column. repeats 1..1000. Errors as lp_model_evaluate, LP_EINVAL,
 * LP_ENOMEM. out is filled; release with lp_importance_clear. */
lp_status lp_permutation_importance(const lp_model *m, const lp_frame *data, size_t repeats,
                                    bool raw_columns, uint64_t seed, int threads,
                                    lp_importance *out, lp_err *err);
void lp_importance_clear(lp_importance *imp);

/* =========================================================================================
 * Robustness: accuracy under a gradient attack (nn family)
 * -----------------------------------------------------------------------------------------
 * The attack perturbs the DESIGN row (after the model's cleaner and feature pipeline: a
 * standard-scaled column moves by eps standard deviations, one-hot and TF-IDF columns are
 * treated as continuous) within the L-inf ball of radius eps: FGSM (Goodfellow et al. 2015)
 * or PGD (Madry et al. 2018), see src/model/nn.h. Only the nn family is attacked: for linear,
 * logistic and gbdt models the call fails with LP_EUNSUPPORTED ("the attack needs a
 * differentiable model (nn)"); there is no black-box fallback.
 * ========================================================================================= */
typedef enum lp_attack_method {
    LP_ATTACK_METHOD_FGSM = 0,
    LP_ATTACK_METHOD_PGD
} lp_attack_method;

typedef struct lp_attack_opts {
    lp_attack_method method; /* default FGSM */
    double eps;              /* > 0 (default 0.1) */
    int steps;               /* PGD iterations (default 10) */
    double step_size;        /* PGD alpha, 0 = 2.5 eps / steps */
    uint64_t seed;           /* PGD random starts (default 0) */
} lp_attack_opts;

lp_attack_opts lp_attack_opts_default(void);
lp_status lp_attack_method_parse(const char *s, lp_attack_method *out, lp_err *err);

typedef struct lp_attack_result {
    size_t n;              /* labelled rows */
    double clean_accuracy; /* accuracy on the rows as given */
    double adv_accuracy;   /* accuracy on their adversarial copies */
} lp_attack_result;

/* Accuracy of a classification model m on labelled data, clean and under attack. Errors: as
 * lp_model_evaluate; LP_EUNSUPPORTED for a family other than nn or a regression model;
 * LP_EINVAL for options. Thread-safe (serialises on the module lock). */
lp_status lp_model_attack_eval(const lp_model *m, const lp_frame *data, const lp_attack_opts *o,
                               lp_attack_result *out, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
