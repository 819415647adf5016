/*
 * linear.h - the linear model family (private API of the model module): least squares, ridge,
 * lasso, elastic-net, and logistic regression (binary and multinomial; L2, L1 or no penalty),
 * fitted on a dense or a CSR design matrix, with sample and class weights.
 *
 * The objectives are scikit-learn's (1.2.1), so fitted coefficients match its estimators:
 *   least squares   sum_i s_i (y_i - x_i.w - b)^2                               (closed form)
 *   ridge           sum_i s_i (y_i - x_i.w - b)^2 + alpha ||w||^2                (closed form)
 *   lasso / enet    1/(2 S) sum_i s_i (y_i - x_i.w - b)^2 + alpha l1_ratio ||w||_1
 *                   + 0.5 alpha (1 - l1_ratio) ||w||^2     (cyclic coordinate descent; S = sum s)
 *   logistic L2     sum_i s_i c_{y_i} logloss_i + 1/(2C) ||W||^2                 (L-BFGS)
 *   logistic L1     C sum_i s_i c_{y_i} logloss_i + ||W||_1              (FISTA with restart)
 *   logistic none   sum_i s_i c_{y_i} logloss_i                                  (L-BFGS)
 * (s sample weights, c class weights.) The intercept b is never penalised. Lasso is
 * elastic-net with l1_ratio = 1. Binary logistic has one output row (the positive class
 * 1, like scikit-learn's coef_ of shape (1, d)); k > 2 classes give k rows (softmax).
 *
 * What it does not do: no feature scaling (the feature pipeline's job), no multi-target
 * regression, no one-vs-rest. Sums are in double; fitted parameters are stored as float.
 * A fitted lp_linear is immutable: predict, accessors and save may run from many threads.
 * Training may use OpenMP over rows (opts.threads); single-row prediction never does.
 */
#ifndef LEPTON_MODEL_LINEAR_H
#define LEPTON_MODEL_LINEAR_H

#include "lepton/base.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A read-only view of an (rows, cols) design matrix; it owns nothing.
 * Dense when `dense` is non-NULL: (rows, cols) row-major floats.
 * Otherwise CSR: indptr (rows + 1,) with indptr[0] == 0 and non-decreasing; indices and
 * values (indptr[rows],); within a row, indices strictly increasing and < cols. */
typedef struct lp_design {
    size_t rows, cols;
    const float *dense;
    const size_t *indptr;
    const uint32_t *indices;
    const float *values;
} lp_design;

typedef enum lp_linear_kind {
    LP_LINEAR_KIND_LEAST_SQUARES = 0,
    LP_LINEAR_KIND_RIDGE,
    LP_LINEAR_KIND_LASSO,
    LP_LINEAR_KIND_ELASTIC_NET,
    LP_LINEAR_KIND_LOGISTIC,
    LP_LINEAR_KIND_COUNT_
} lp_linear_kind;

/* Penalty of logistic regression (other kinds take theirs from the kind). */
typedef enum lp_linear_penalty {
    LP_LINEAR_PENALTY_L2 = 0,
    LP_LINEAR_PENALTY_L1,
    LP_LINEAR_PENALTY_NONE,
    LP_LINEAR_PENALTY_COUNT_
} lp_linear_penalty;

typedef enum lp_linear_solver {
    LP_LINEAR_SOLVER_AUTO = 0, /* closed form, coordinate descent, L-BFGS or FISTA by kind */
    LP_LINEAR_SOLVER_CLOSED,   /* least squares, ridge: LAPACK on the centred problem */
    LP_LINEAR_SOLVER_GD,       /* least squares, ridge: batch gradient descent */
    LP_LINEAR_SOLVER_CD,       /* lasso, elastic-net: cyclic coordinate descent */
    LP_LINEAR_SOLVER_LBFGS,    /* logistic with L2 or no penalty */
    LP_LINEAR_SOLVER_FISTA,    /* logistic with L1 */
    LP_LINEAR_SOLVER_COUNT_
} lp_linear_solver;

typedef enum lp_linear_class_weight {
    LP_LINEAR_CLASS_WEIGHT_NONE = 0,
    /* c_k = n / (n_classes * count_k), counts of rows (sample weights ignored), like
     * scikit-learn's class_weight="balanced". */
    LP_LINEAR_CLASS_WEIGHT_BALANCED,
    LP_LINEAR_CLASS_WEIGHT_COUNT_
} lp_linear_class_weight;

typedef struct lp_linear_opts {
    lp_linear_kind kind;
    lp_linear_penalty penalty;        /* logistic only */
    lp_linear_solver solver;
    lp_linear_class_weight class_weight; /* logistic only */
    double alpha;         /* ridge, lasso, elastic-net strength, >= 0 (default 1) */
    double l1_ratio;      /* elastic-net mixing in [0, 1] (default 0.5) */
    double C;             /* logistic inverse strength, > 0 (default 1) */
    bool fit_intercept;   /* default true */
    /* Stopping tolerance, > 0. L-BFGS: max |gradient| of the objective above (scikit-learn's
     * gtol). FISTA: max |gradient mapping| of the objective divided by C. CD: max weight change
     * over a sweep relative to max |w| (scikit-learn's first test). GD: max |gradient| of the
     * mean squared loss. Default 1e-4. */
    double tol;
    int max_iter;         /* iterations (epochs for CD), >= 1 (default 1000) */
    double learning_rate; /* GD step; 0 = 1 / L with L a power-iteration Lipschitz bound */
    int lbfgs_memory;     /* L-BFGS history pairs, 1..100 (default 10) */
    int threads;          /* OpenMP threads for training; 0 = the OpenMP default */
} lp_linear_opts;

/* Defaults listed field by field above (kind least squares, penalty L2, solver auto). */
lp_linear_opts lp_linear_opts_default(void);

/* LP_OK, or LP_EINVAL with one line naming the first bad parameter and its valid range
 * ("linear opts: l1_ratio is 1.5, expected a value in [0, 1]"). Also rejects solvers that do
 * not fit the kind (e.g. cd for logistic). err may be NULL. */
lp_status lp_linear_opts_check(const lp_linear_opts *opts, lp_err *err);

/* Validate a design matrix: non-empty, pointers present, CSR invariants, every value finite.
 * `what` names the input in the message ("training matrix row 3: value is NaN"). */
lp_status lp_design_check(const lp_design *x, const char *what, lp_err *err);

typedef struct lp_linear lp_linear;

/* Fit a regression kind (least squares, ridge, lasso, elastic-net) on x (n, d) and y (n,).
 * sample_weight (n,) may be NULL (all 1); weights must be finite, >= 0, with a positive sum.
 * On success *out is a new model the caller frees with lp_linear_free.
 * Errors: LP_EINVAL for bad options, a bad design (NaN/Inf, broken CSR), non-finite y or a
 * weight problem, each naming the row; LP_ENOMEM; LP_ENUMERIC when a solve fails (singular
 * ridge system, divergence). Thread-safe for distinct outputs. */
lp_status lp_linear_fit_regression(const lp_linear_opts *opts, const lp_design *x,
                                   const double *y, const double *sample_weight,
                                   lp_linear **out, lp_err *err);

/* Fit logistic regression on x (n, d) and labels (n,) in 0..n_classes-1 (n_classes >= 2; 0
 * means max label + 1). At least two distinct classes must occur. Same weights, ownership and
 * errors as lp_linear_fit_regression. Not reaching tol within max_iter is not an error: the
 * model is returned, lp_linear_converged() says false and a warning is logged. */
lp_status lp_linear_fit_classifier(const lp_linear_opts *opts, const lp_design *x,
                                   const int32_t *labels, size_t n_classes,
                                   const double *sample_weight, lp_linear **out, lp_err *err);

void lp_linear_free(lp_linear *m); /* NULL is a no-op */

/* ---- accessors (never fail on a valid model) ----------------------------------------------*/
lp_linear_kind lp_linear_get_kind(const lp_linear *m);
size_t lp_linear_n_features(const lp_linear *m);
/* Rows of coef: 1 for regression and binary logistic, n_classes for multinomial. */
size_t lp_linear_n_outputs(const lp_linear *m);
/* 0 for regression kinds. */
size_t lp_linear_n_classes(const lp_linear *m);
/* (n_outputs, n_features) row-major, owned by m. */
const float *lp_linear_coef(const lp_linear *m);
/* (n_outputs,), owned by m; zeros when fitted without intercept. */
const float *lp_linear_intercept(const lp_linear *m);
/* Iterations used by the iterative solver (0 for closed form) and whether tol was reached. */
int lp_linear_n_iter(const lp_linear *m);
bool lp_linear_converged(const lp_linear *m);

/* ---- prediction -----------------------------------------------------------------------------
 * Batch functions check x (cols == n_features, finite values) and fill caller-owned outputs.
 * The single-row functions are the request path: no checks beyond what the types give, no
 * allocation, no threads; a NaN in x gives NaN out. */

/* Decision values x W^T + b: out (rows, n_outputs). */
lp_status lp_linear_decision(const lp_linear *m, const lp_design *x, double *out, lp_err *err);
/* Class probabilities, out (rows, n_classes): binary [1 - sigma(z), sigma(z)], multinomial
 * softmax (max-subtracted). LP_ESTATE for regression models. */
lp_status lp_linear_predict_proba(const lp_linear *m, const lp_design *x, double *out,
                                  lp_err *err);
/* Regression value, or the most probable class index (ties to the lower index), out (rows,). */
lp_status lp_linear_predict(const lp_linear *m, const lp_design *x, double *out, lp_err *err);
/* One dense row x (n_features,): out (n_outputs,) decision values. */
void lp_linear_decision_row(const lp_linear *m, const float *x, double *out);
/* One dense row: out (n_classes,) probabilities; for regression out[0] is the value. */
void lp_linear_proba_row(const lp_linear *m, const float *x, double *out);

/* ---- serialization ------------------------------------------------------------------------
 * Layout (version 1, little-endian): u32 magic 'LPLN', u32 version, u32 kind, u32 penalty,
 * u8 fit_intercept, u64 n_features, u32 n_outputs, u32 n_classes, f64 alpha, f64 l1_ratio,
 * f64 C, f32 coef[n_outputs * n_features], f32 intercept[n_outputs], u32 CRC-32 of all the
 * preceding bytes of this record. */
lp_status lp_linear_save(const lp_linear *m, lp_buf *b, lp_err *err);
/* Read one record at r's position. Rejects a wrong magic, unknown version (LP_EVERSION),
 * inconsistent sizes, non-finite parameters, truncation or a CRC mismatch (LP_EFORMAT) with a
 * message naming r->what; never reads out of bounds. *out is new, caller frees. */
lp_status lp_linear_load(lp_reader *r, lp_linear **out, lp_err *err);

/* ---- internals shared by linear*.c (and tests) --------------------------------------------*/

/* Logistic objective of the L2/none problem at theta = [W^T (d, k_out) row-major, b (k_out,)]
 * (b only when fit_intercept): f = sum_i s_i logloss_i + l2 / 2 ||W||^2, grad (same layout)
 * when non-NULL. s (n,) are the effective row weights (sample * class). k_out is 1 (binary,
 * labels 0/1) or the class count. Returns f. Used by L-BFGS and the gradient check test. */
double lp_linear_logistic_objective(const lp_design *x, const int32_t *labels, const double *s,
                                    size_t k_out, bool fit_intercept, double l2,
                                    const double *theta, double *grad, int threads);

static inline double lp_design_row_dot(const lp_design *x, size_t i, const double *w)
{
    double acc = 0;
    if (x->dense) {
        const float *r = x->dense + i * x->cols;
        for (size_t j = 0; j < x->cols; j++)
            acc += (double)r[j] * w[j];
    } else {
        for (size_t p = x->indptr[i]; p < x->indptr[i + 1]; p++)
            acc += (double)x->values[p] * w[x->indices[p]];
    }
    return acc;
}

/* g += a * x_i */
static inline void lp_design_row_axpy(const lp_design *x, size_t i, double a, double *g)
{
    if (x->dense) {
        const float *r = x->dense + i * x->cols;
        for (size_t j = 0; j < x->cols; j++)
            g[j] += a * r[j];
    } else {
        for (size_t p = x->indptr[i]; p < x->indptr[i + 1]; p++)
            g[x->indices[p]] += a * x->values[p];
    }
}

/* Fitted-parameter holder filled by the solvers (double; rounded to float at the end). */
typedef struct lp_linear_fit_out {
    double *coef;      /* (k_out, d) */
    double *intercept; /* (k_out,) */
    int n_iter;
    bool converged;
} lp_linear_fit_out;

/* Solvers (linear_reg.c, linear_logit.c). Inputs are validated; s (n,) effective weights with
 * positive sum; outputs preallocated and zeroed. */
lp_status lp_linear_solve_closed(const lp_linear_opts *o, const lp_design *x, const double *y,
                                 const double *s, lp_linear_fit_out *fo, lp_err *err);
lp_status lp_linear_solve_gd(const lp_linear_opts *o, const lp_design *x, const double *y,
                             const double *s, lp_linear_fit_out *fo, lp_err *err);
lp_status lp_linear_solve_cd(const lp_linear_opts *o, const lp_design *x, const double *y,
                             const double *s, lp_linear_fit_out *fo, lp_err *err);
lp_status lp_linear_solve_lbfgs(const lp_linear_opts *o, const lp_design *x,
                                const int32_t *labels, const double *s, size_t k_out,
                                lp_linear_fit_out *fo, lp_err *err);
lp_status lp_linear_solve_fista(const lp_linear_opts *o, const lp_design *x,
                                const int32_t *labels, const double *s, size_t k_out,
                                lp_linear_fit_out *fo, lp_err *err);

#endif
