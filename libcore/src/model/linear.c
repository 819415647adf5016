/*
 * linear.c - the lp_linear handle: option and input validation, fit dispatch to the solvers
 * (linear_reg.c, linear_logit.c), prediction, accessors, save and load.
 *
 * Invariants of a fitted model: coef holds n_outputs * n_features finite floats, intercept
 * n_outputs finite floats (zeros without intercept); n_outputs is 1 except for multinomial
 * logistic, where it equals n_classes (> 2). Nothing here mutates a fitted model.
 */
#include "model/linear.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LINEAR_MAGIC 0x4E4C504Cu /* "LPLN" little-endian */
#define LINEAR_VERSION 1u
/* A saved model with more parameters than this is rejected as corrupt, not allocated. */
#define LINEAR_MAX_PARAMS ((uint64_t)1 << 32)

struct lp_linear {
    lp_linear_kind kind;
    lp_linear_penalty penalty;
    bool fit_intercept;
    size_t n_features, n_outputs, n_classes;
    double alpha, l1_ratio, C;
    int n_iter;
    bool converged;
    float *coef;      /* (n_outputs, n_features) */
    float *intercept; /* (n_outputs,) */
};

static const char *const kind_names[] = {"least_squares", "ridge", "lasso", "elastic_net",
                                         "logistic"};
static const char *const solver_names[] = {"auto", "closed", "gd", "cd", "lbfgs", "fista"};

lp_linear_opts lp_linear_opts_default(void)
{
    lp_linear_opts o;
    memset(&o, 0, sizeof o);
    o.kind = LP_LINEAR_KIND_LEAST_SQUARES;
    o.penalty = LP_LINEAR_PENALTY_L2;
    o.solver = LP_LINEAR_SOLVER_AUTO;
    o.class_weight = LP_LINEAR_CLASS_WEIGHT_NONE;
    o.alpha = 1.0;
    o.l1_ratio = 0.5;
    o.C = 1.0;
    o.fit_intercept = true;
    o.tol = 1e-4;
    o.max_iter = 1000;
    o.learning_rate = 0;
    o.lbfgs_memory = 10;
    o.threads = 0;
    return o;
}

/* The solver AUTO resolves to for a kind and penalty. */
static lp_linear_solver auto_solver(const lp_linear_opts *o)
{
    switch (o->kind) {
    case LP_LINEAR_KIND_LEAST_SQUARES:
    case LP_LINEAR_KIND_RIDGE:
        return LP_LINEAR_SOLVER_CLOSED;
    case LP_LINEAR_KIND_LASSO:
    case LP_LINEAR_KIND_ELASTIC_NET:
        return LP_LINEAR_SOLVER_CD;
    default:
        return o->penalty == LP_LINEAR_PENALTY_L1 ? LP_LINEAR_SOLVER_FISTA
                                                  : LP_LINEAR_SOLVER_LBFGS;
    }
}

lp_status lp_linear_opts_check(const lp_linear_opts *o, lp_err *err)
{
    if (!o)
        return lp_err_set(err, LP_EINVAL, "linear opts: NULL options");
    if ((unsigned)o->kind >= LP_LINEAR_KIND_COUNT_)
        return lp_err_set(err, LP_EINVAL, "linear opts: kind is %d, expected 0..%d",
                          (int)o->kind, LP_LINEAR_KIND_COUNT_ - 1);
    if ((unsigned)o->penalty >= LP_LINEAR_PENALTY_COUNT_)
        return lp_err_set(err, LP_EINVAL, "linear opts: penalty is %d, expected l2, l1 or none",
                          (int)o->penalty);
    if ((unsigned)o->solver >= LP_LINEAR_SOLVER_COUNT_)
        return lp_err_set(err, LP_EINVAL, "linear opts: solver is %d, expected 0..%d",
                          (int)o->solver, LP_LINEAR_SOLVER_COUNT_ - 1);
    if ((unsigned)o->class_weight >= LP_LINEAR_CLASS_WEIGHT_COUNT_)
        return lp_err_set(err, LP_EINVAL,
                          "linear opts: class_weight is %d, expected none or balanced",
                          (int)o->class_weight);
    if (!(o->alpha >= 0) || !isfinite(o->alpha))
        return lp_err_set(err, LP_EINVAL,
                          "linear opts: alpha is %g, expected a finite value >= 0", o->alpha);
    if (!(o->l1_ratio >= 0 && o->l1_ratio <= 1))
        return lp_err_set(err, LP_EINVAL,
                          "linear opts: l1_ratio is %g, expected a value in [0, 1]", o->l1_ratio);
    if (!(o->C > 0) || !isfinite(o->C))
        return lp_err_set(err, LP_EINVAL, "linear opts: C is %g, expected a finite value > 0",
                          o->C);
    if (!(o->tol > 0) || !isfinite(o->tol))
        return lp_err_set(err, LP_EINVAL, "linear opts: tol is %g, expected a finite value > 0",
                          o->tol);
    if (o->max_iter < 1)
        return lp_err_set(err, LP_EINVAL, "linear opts: max_iter is %d, expected >= 1",
                          o->max_iter);
    if (!(o->learning_rate >= 0) || !isfinite(o->learning_rate))
        return lp_err_set(err, LP_EINVAL,
                          "linear opts: learning_rate is %g, expected >= 0 (0 = automatic)",
                          o->learning_rate);
    if (o->lbfgs_memory < 1 || o->lbfgs_memory > 100)
        return lp_err_set(err, LP_EINVAL, "linear opts: lbfgs_memory is %d, expected 1..100",
                          o->lbfgs_memory);
    if (o->threads < 0)
        return lp_err_set(err, LP_EINVAL, "linear opts: threads is %d, expected >= 0 (0 = auto)",
                          o->threads);
    lp_linear_solver s = o->solver == LP_LINEAR_SOLVER_AUTO ? auto_solver(o) : o->solver;
    bool ok;
    switch (o->kind) {
    case LP_LINEAR_KIND_LEAST_SQUARES:
    case LP_LINEAR_KIND_RIDGE:
        ok = s == LP_LINEAR_SOLVER_CLOSED || s == LP_LINEAR_SOLVER_GD;
        break;
    case LP_LINEAR_KIND_LASSO:
    case LP_LINEAR_KIND_ELASTIC_NET:
        ok = s == LP_LINEAR_SOLVER_CD;
        break;
    default:
        ok = o->penalty == LP_LINEAR_PENALTY_L1 ? s == LP_LINEAR_SOLVER_FISTA
                                                : s == LP_LINEAR_SOLVER_LBFGS;
        break;
    }
    if (!ok)
        return lp_err_set(err, LP_EINVAL, "linear opts: solver %s does not fit kind %s%s",
                          solver_names[s], kind_names[o->kind],
                          o->kind == LP_LINEAR_KIND_LOGISTIC
                              ? (o->penalty == LP_LINEAR_PENALTY_L1 ? " with l1 (use fista)"
                                                                    : " (use lbfgs)")
                              : "");
    return LP_OK;
}

lp_status lp_design_check(const lp_design *x, const char *what, lp_err *err)
{
    if (!what)
        what = "design matrix";
    if (!x)
        return lp_err_set(err, LP_EINVAL, "%s: NULL matrix", what);
    if (x->rows == 0 || x->cols == 0)
        return lp_err_set(err, LP_EINVAL, "%s: shape (%zu, %zu), expected at least one row and "
                          "one column", what, x->rows, x->cols);
    if (x->cols > UINT32_MAX)
        return lp_err_set(err, LP_ETOOBIG, "%s: %zu columns, at most %u supported", what,
                          x->cols, UINT32_MAX);
    if (x->dense) {
        if (x->rows > SIZE_MAX / x->cols)
            return lp_err_set(err, LP_ETOOBIG, "%s: shape (%zu, %zu) overflows", what, x->rows,
                              x->cols);
        for (size_t i = 0; i < x->rows; i++) {
            const float *r = x->dense + i * x->cols;
            for (size_t j = 0; j < x->cols; j++)
                if (!isfinite(r[j]))
                    return lp_err_set(err, LP_EINVAL,
                                      "%s row %zu, column %zu: value is %g, expected a finite "
                                      "number", what, i, j, (double)r[j]);
        }
        return LP_OK;
    }
    if (!x->indptr || (!x->indices && x->indptr[x->rows]) || (!x->values && x->indptr[x->rows]))
        return lp_err_set(err, LP_EINVAL, "%s: neither dense data nor complete CSR arrays "
                          "(indptr, indices, values)", what);
    if (x->indptr[0] != 0)
        return lp_err_set(err, LP_EINVAL, "%s: CSR indptr[0] is %zu, expected 0", what,
                          x->indptr[0]);
    for (size_t i = 0; i < x->rows; i++) {
        size_t a = x->indptr[i], b = x->indptr[i + 1];
        if (b < a)
            return lp_err_set(err, LP_EINVAL, "%s: CSR indptr decreases at row %zu (%zu > %zu)",
                              what, i, a, b);
        for (size_t p = a; p < b; p++) {
            if (x->indices[p] >= x->cols)
                return lp_err_set(err, LP_EINVAL, "%s row %zu: column index %u, expected < %zu",
                                  what, i, x->indices[p], x->cols);
            if (p > a && x->indices[p] <= x->indices[p - 1])
                return lp_err_set(err, LP_EINVAL, "%s row %zu: column indices not strictly "
                                  "increasing (%u after %u)", what, i, x->indices[p],
                                  x->indices[p - 1]);
            if (!isfinite(x->values[p]))
                return lp_err_set(err, LP_EINVAL, "%s row %zu, column %u: value is %g, expected "
                                  "a finite number", what, i, x->indices[p],
                                  (double)x->values[p]);
        }
    }
    return LP_OK;
}

static lp_linear *model_new(const lp_linear_opts *o, size_t d, size_t k_out, size_t n_classes)
{
    lp_linear *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->kind = o->kind;
    m->penalty = o->kind == LP_LINEAR_KIND_LOGISTIC ? o->penalty : LP_LINEAR_PENALTY_L2;
    m->fit_intercept = o->fit_intercept;
    m->n_features = d;
    m->n_outputs = k_out;
    m->n_classes = n_classes;
    m->alpha = o->alpha;
    m->l1_ratio = o->l1_ratio;
    m->C = o->C;
    m->coef = lp_calloc(k_out * d > 0 ? k_out * d : 1, sizeof(float));
    m->intercept = lp_calloc(k_out, sizeof(float));
    if (!m->coef || !m->intercept) {
        lp_linear_free(m);
        return NULL;
    }
    return m;
}

void lp_linear_free(lp_linear *m)
{
    if (!m)
        return;
    free(m->coef);
    free(m->intercept);
    free(m);
}

static lp_status check_weights(const double *w, size_t n, lp_err *err)
{
    if (!w)
        return LP_OK;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(w[i] >= 0) || !isfinite(w[i]))
            return lp_err_set(err, LP_EINVAL, "sample_weight row %zu: %g, expected a finite "
                              "value >= 0", i, w[i]);
        sum += w[i];
    }
    if (!(sum > 0))
        return lp_err_set(err, LP_EINVAL, "sample_weight: all %zu weights are zero, expected a "
                          "positive sum", n);
    return LP_OK;
}

/* Round the solver's double parameters into the model; reject non-finite results. */
static lp_status finish_fit(lp_linear *m, const lp_linear_fit_out *fo, double tol, lp_err *err)
{
    size_t np = m->n_outputs * m->n_features;
    for (size_t i = 0; i < np; i++) {
        if (!isfinite(fo->coef[i]) || fabs(fo->coef[i]) > 3e38)
            return lp_err_set(err, LP_ENUMERIC, "linear %s fit: coefficient %zu is %g after %d "
                              "iterations (diverged)", kind_names[m->kind], i, fo->coef[i],
                              fo->n_iter);
        m->coef[i] = (float)fo->coef[i];
    }
    for (size_t c = 0; c < m->n_outputs; c++) {
        if (!isfinite(fo->intercept[c]) || fabs(fo->intercept[c]) > 3e38)
            return lp_err_set(err, LP_ENUMERIC, "linear %s fit: intercept %zu is %g (diverged)",
                              kind_names[m->kind], c, fo->intercept[c]);
        m->intercept[c] = (float)fo->intercept[c];
    }
    m->n_iter = fo->n_iter;
    m->converged = fo->converged;
    if (!fo->converged)
        lp_log_warn("linear %s fit: tolerance %g not reached in %d iterations",
                    kind_names[m->kind], tol, fo->n_iter);
    return LP_OK;
}

static lp_status fit_out_alloc(lp_linear_fit_out *fo, size_t k_out, size_t d)
{
    memset(fo, 0, sizeof *fo);
    fo->coef = lp_calloc(k_out * d > 0 ? k_out * d : 1, sizeof(double));
    fo->intercept = lp_calloc(k_out, sizeof(double));
    fo->converged = true;
    return fo->coef && fo->intercept ? LP_OK : LP_ENOMEM;
}

static void fit_out_free(lp_linear_fit_out *fo)
{
    free(fo->coef);
    free(fo->intercept);
}

lp_status lp_linear_fit_regression(const lp_linear_opts *opts, const lp_design *x,
                                   const double *y, const double *sample_weight,
                                   lp_linear **out, lp_err *err)
{
    if (!out)
        return lp_err_set(err, LP_EINVAL, "linear fit: NULL output pointer");
    *out = NULL;
    lp_status st = lp_linear_opts_check(opts, err);
    if (st)
        return st;
    if (opts->kind == LP_LINEAR_KIND_LOGISTIC)
        return lp_err_set(err, LP_EINVAL, "linear fit: kind logistic needs class labels "
                          "(lp_linear_fit_classifier)");
    if ((st = lp_design_check(x, "training matrix", err)))
        return st;
    if (!y)
        return lp_err_set(err, LP_EINVAL, "linear fit: NULL targets y");
    for (size_t i = 0; i < x->rows; i++)
        if (!isfinite(y[i]))
            return lp_err_set(err, LP_EINVAL, "targets row %zu: y is %g, expected a finite "
                              "number", i, y[i]);
    if ((st = check_weights(sample_weight, x->rows, err)))
        return st;
    size_t n = x->rows, d = x->cols;
    double *s = lp_mallocarray(n, sizeof(double));
    lp_linear_fit_out fo;
    lp_linear *m = model_new(opts, d, 1, 0);
    if (!s || !m || fit_out_alloc(&fo, 1, d) != LP_OK) {
        free(s);
        lp_linear_free(m);
        fit_out_free(&fo);
        return lp_err_set(err, LP_ENOMEM, "linear fit: out of memory for %zu x %zu", n, d);
    }
    for (size_t i = 0; i < n; i++)
        s[i] = sample_weight ? sample_weight[i] : 1.0;
    lp_linear_solver solver = opts->solver == LP_LINEAR_SOLVER_AUTO ? auto_solver(opts)
                                                                     : opts->solver;
    if (solver == LP_LINEAR_SOLVER_CLOSED)
        st = lp_linear_solve_closed(opts, x, y, s, &fo, err);
    else if (solver == LP_LINEAR_SOLVER_GD)
        st = lp_linear_solve_gd(opts, x, y, s, &fo, err);
    else
        st = lp_linear_solve_cd(opts, x, y, s, &fo, err);
    if (st == LP_OK)
        st = finish_fit(m, &fo, opts->tol, err);
    free(s);
    fit_out_free(&fo);
    if (st) {
        lp_linear_free(m);
        return st;
    }
    *out = m;
    return LP_OK;
}

lp_status lp_linear_fit_classifier(const lp_linear_opts *opts, const lp_design *x,
                                   const int32_t *labels, size_t n_classes,
                                   const double *sample_weight, lp_linear **out, lp_err *err)
{
    if (!out)
        return lp_err_set(err, LP_EINVAL, "linear fit: NULL output pointer");
    *out = NULL;
    lp_status st = lp_linear_opts_check(opts, err);
    if (st)
        return st;
    if (opts->kind != LP_LINEAR_KIND_LOGISTIC)
        return lp_err_set(err, LP_EINVAL, "linear fit: kind %s is a regression (use "
                          "lp_linear_fit_regression)", kind_names[opts->kind]);
    if ((st = lp_design_check(x, "training matrix", err)))
        return st;
    if (!labels)
        return lp_err_set(err, LP_EINVAL, "linear fit: NULL labels");
    size_t n = x->rows, d = x->cols;
    int32_t maxl = 0;
    for (size_t i = 0; i < n; i++) {
        if (labels[i] < 0 || (n_classes && (size_t)labels[i] >= n_classes))
            return lp_err_set(err, LP_EINVAL, "labels row %zu: class %d, expected 0..%zu", i,
                              (int)labels[i], n_classes ? n_classes - 1 : (size_t)INT32_MAX);
        if (labels[i] > maxl)
            maxl = labels[i];
    }
    if (!n_classes)
        n_classes = (size_t)maxl + 1;
    if (n_classes < 2 || n_classes > ((size_t)1 << 20))
        return lp_err_set(err, LP_EINVAL, "labels: %zu classes, expected 2..%zu", n_classes,
                          (size_t)1 << 20);
    if ((st = check_weights(sample_weight, n, err)))
        return st;
    size_t *count = lp_calloc(n_classes, sizeof(size_t));
    double *s = lp_mallocarray(n, sizeof(double));
    size_t k_out = n_classes == 2 ? 1 : n_classes;
    lp_linear_fit_out fo;
    lp_linear *m = model_new(opts, d, k_out, n_classes);
    if (!count || !s || !m || fit_out_alloc(&fo, k_out, d) != LP_OK) {
        free(count);
        free(s);
        lp_linear_free(m);
        fit_out_free(&fo);
        return lp_err_set(err, LP_ENOMEM, "linear fit: out of memory for %zu x %zu, %zu classes",
                          n, d, n_classes);
    }
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++)
        distinct += count[labels[i]]++ == 0;
    if (distinct < 2) {
        st = lp_err_set(err, LP_EINVAL, "labels: only class %d occurs in %zu rows, expected at "
                        "least two classes", (int)labels[0], n);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        double cw = 1.0;
        if (opts->class_weight == LP_LINEAR_CLASS_WEIGHT_BALANCED)
            cw = (double)n / ((double)n_classes * (double)count[labels[i]]);
        s[i] = (sample_weight ? sample_weight[i] : 1.0) * cw;
    }
    lp_linear_solver solver = opts->solver == LP_LINEAR_SOLVER_AUTO ? auto_solver(opts)
                                                                     : opts->solver;
    if (solver == LP_LINEAR_SOLVER_FISTA)
        st = lp_linear_solve_fista(opts, x, labels, s, k_out, &fo, err);
    else
        st = lp_linear_solve_lbfgs(opts, x, labels, s, k_out, &fo, err);
    if (st == LP_OK)
        st = finish_fit(m, &fo, opts->tol, err);
done:
    free(count);
    free(s);
    fit_out_free(&fo);
    if (st) {
        lp_linear_free(m);
        return st;
    }
    *out = m;
    return LP_OK;
}

lp_linear_kind lp_linear_get_kind(const lp_linear *m) { return m->kind; }
size_t lp_linear_n_features(const lp_linear *m) { return m->n_features; }
size_t lp_linear_n_outputs(const lp_linear *m) { return m->n_outputs; }
size_t lp_linear_n_classes(const lp_linear *m) { return m->n_classes; }
const float *lp_linear_coef(const lp_linear *m) { return m->coef; }
const float *lp_linear_intercept(const lp_linear *m) { return m->intercept; }
int lp_linear_n_iter(const lp_linear *m) { return m->n_iter; }
bool lp_linear_converged(const lp_linear *m) { return m->converged; }

/* ---- prediction ---------------------------------------------------------------------------*/

/* z (k_out,) for row i of x. */
static void decision_one(const lp_linear *m, const lp_design *x, size_t i, double *z)
{
    size_t d = m->n_features;
    for (size_t c = 0; c < m->n_outputs; c++) {
        const float *w = m->coef + c * d;
        double acc = m->intercept[c];
        if (x->dense) {
            const float *r = x->dense + i * d;
            for (size_t j = 0; j < d; j++)
                acc += (double)r[j] * w[j];
        } else {
            for (size_t p = x->indptr[i]; p < x->indptr[i + 1]; p++)
                acc += (double)x->values[p] * w[x->indices[p]];
        }
        z[c] = acc;
    }
}

/* In place: decision values z (k_out,) to probabilities out (n_classes,). */
static void to_proba(const lp_linear *m, const double *z, double *out)
{
    if (m->n_outputs == 1) {
        /* sigma(z) computed on the side where exp does not overflow */
        double p = z[0] >= 0 ? 1.0 / (1.0 + exp(-z[0])) : exp(z[0]) / (1.0 + exp(z[0]));
        out[0] = 1.0 - p;
        out[1] = p;
        return;
    }
    double mx = z[0], sum = 0;
    for (size_t c = 1; c < m->n_outputs; c++)
        mx = z[c] > mx ? z[c] : mx;
    for (size_t c = 0; c < m->n_outputs; c++)
        sum += (out[c] = exp(z[c] - mx));
    for (size_t c = 0; c < m->n_outputs; c++)
        out[c] /= sum;
}

void lp_linear_decision_row(const lp_linear *m, const float *x, double *out)
{
    lp_design one = {1, m->n_features, x, NULL, NULL, NULL};
    decision_one(m, &one, 0, out);
}

void lp_linear_proba_row(const lp_linear *m, const float *x, double *out)
{
    double zbuf[64];
    if (m->n_classes == 0 || m->n_outputs > 64) {
        /* regression: the value; very wide multinomial: decision into out, then softmax */
        lp_linear_decision_row(m, x, out);
        if (m->n_classes) {
            double mx = out[0], sum = 0;
            for (size_t c = 1; c < m->n_outputs; c++)
                mx = out[c] > mx ? out[c] : mx;
            for (size_t c = 0; c < m->n_outputs; c++)
                sum += (out[c] = exp(out[c] - mx));
            for (size_t c = 0; c < m->n_outputs; c++)
                out[c] /= sum;
        }
        return;
    }
    lp_linear_decision_row(m, x, zbuf);
    to_proba(m, zbuf, out);
}

static lp_status check_predict_input(const lp_linear *m, const lp_design *x, const void *out,
                                     lp_err *err)
{
    if (!m || !out)
        return lp_err_set(err, LP_EINVAL, "linear predict: NULL model or output");
    lp_status st = lp_design_check(x, "prediction matrix", err);
    if (st)
        return st;
    if (x->cols != m->n_features)
        return lp_err_set(err, LP_EINVAL, "prediction matrix: %zu columns, the model was fitted "
                          "on %zu features", x->cols, m->n_features);
    return LP_OK;
}

lp_status lp_linear_decision(const lp_linear *m, const lp_design *x, double *out, lp_err *err)
{
    lp_status st = check_predict_input(m, x, out, err);
    if (st)
        return st;
    size_t k = m->n_outputs;
    /* the work is the stored entries times the outputs (a sparse row touches only its nonzeros):
     * one TF-IDF row over a wide vocabulary is not worth a thread team */
    size_t cells = x->dense ? x->rows * m->n_features : x->indptr[x->rows];
    if (x->rows == 1 || cells * k <= 1000000) { /* not even the call that an if(0) team costs */
        for (size_t i = 0; i < x->rows; i++)
            decision_one(m, x, i, out + i * k);
        return LP_OK;
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < x->rows; i++)
        decision_one(m, x, i, out + i * k);
    return LP_OK;
}

lp_status lp_linear_predict_proba(const lp_linear *m, const lp_design *x, double *out,
                                  lp_err *err)
{
    lp_status st = check_predict_input(m, x, out, err);
    if (st)
        return st;
    if (m->n_classes == 0)
        return lp_err_set(err, LP_ESTATE, "linear predict_proba: a %s model has no classes",
                          kind_names[m->kind]);
    size_t k = m->n_classes;
    /* decision values first (k_out <= k fits in each output row), then in-place softmax */
    st = lp_linear_decision(m, x, out, err);
    if (st)
        return st;
    if (k == 2) {
        for (size_t i = x->rows; i-- > 0;) {
            double z = out[i];
            to_proba(m, &z, out + 2 * i);
        }
        return LP_OK;
    }
    for (size_t i = 0; i < x->rows; i++) {
        double *r = out + i * k, mx = r[0], sum = 0;
        for (size_t c = 1; c < k; c++)
            mx = r[c] > mx ? r[c] : mx;
        for (size_t c = 0; c < k; c++)
            sum += (r[c] = exp(r[c] - mx));
        for (size_t c = 0; c < k; c++)
            r[c] /= sum;
    }
    return LP_OK;
}

lp_status lp_linear_predict(const lp_linear *m, const lp_design *x, double *out, lp_err *err)
{
    lp_status st = check_predict_input(m, x, out, err);
    if (st)
        return st;
    if (m->n_classes == 0 || m->n_outputs == 1) {
        if ((st = lp_linear_decision(m, x, out, err)))
            return st;
        if (m->n_classes)
            for (size_t i = 0; i < x->rows; i++)
                out[i] = out[i] > 0 ? 1.0 : 0.0;
        return LP_OK;
    }
    size_t k = m->n_outputs;
    double *z = lp_mallocarray(k, sizeof(double));
    if (!z)
        return lp_err_set(err, LP_ENOMEM, "linear predict: out of memory");
    for (size_t i = 0; i < x->rows; i++) {
        decision_one(m, x, i, z);
        size_t best = 0;
        for (size_t c = 1; c < k; c++)
            if (z[c] > z[best])
                best = c;
        out[i] = (double)best;
    }
    free(z);
    return LP_OK;
}

/* ---- serialization ------------------------------------------------------------------------*/

lp_status lp_linear_save(const lp_linear *m, lp_buf *b, lp_err *err)
{
    if (!m || !b)
        return lp_err_set(err, LP_EINVAL, "linear save: NULL model or buffer");
    size_t start = b->len;
    lp_buf_u32(b, LINEAR_MAGIC);
    lp_buf_u32(b, LINEAR_VERSION);
    lp_buf_u32(b, (uint32_t)m->kind);
    lp_buf_u32(b, (uint32_t)m->penalty);
    lp_buf_u8(b, m->fit_intercept ? 1 : 0);
    lp_buf_u64(b, (uint64_t)m->n_features);
    lp_buf_u32(b, (uint32_t)m->n_outputs);
    lp_buf_u32(b, (uint32_t)m->n_classes);
    lp_buf_f64(b, m->alpha);
    lp_buf_f64(b, m->l1_ratio);
    lp_buf_f64(b, m->C);
    for (size_t i = 0; i < m->n_outputs * m->n_features; i++)
        lp_buf_f32(b, m->coef[i]);
    for (size_t c = 0; c < m->n_outputs; c++)
        lp_buf_f32(b, m->intercept[c]);
    lp_status st = lp_buf_status(b, err);
    if (st)
        return st;
    lp_buf_u32(b, lp_crc32(0, b->data + start, b->len - start));
    return lp_buf_status(b, err);
}

lp_status lp_linear_load(lp_reader *r, lp_linear **out, lp_err *err)
{
    if (!r || !out)
        return lp_err_set(err, LP_EINVAL, "linear load: NULL reader or output");
    *out = NULL;
    const char *what = r->what ? r->what : "linear model";
    size_t start = r->pos;
    uint32_t magic, version, kind, penalty, k_out, n_classes, crc;
    uint8_t fi;
    uint64_t d;
    double alpha, l1_ratio, C;
    lp_status st;
    if ((st = lp_reader_u32(r, &magic, err)))
        return st;
    if (magic != LINEAR_MAGIC)
        return lp_err_set(err, LP_EFORMAT, "%s: bad magic 0x%08x, not a linear model record",
                          what, magic);
    if ((st = lp_reader_u32(r, &version, err)))
        return st;
    if (version != LINEAR_VERSION)
        return lp_err_set(err, LP_EVERSION, "%s: linear model version %u, this build reads %u",
                          what, version, LINEAR_VERSION);
    if ((st = lp_reader_u32(r, &kind, err)) || (st = lp_reader_u32(r, &penalty, err)) ||
        (st = lp_reader_u8(r, &fi, err)) || (st = lp_reader_u64(r, &d, err)) ||
        (st = lp_reader_u32(r, &k_out, err)) || (st = lp_reader_u32(r, &n_classes, err)) ||
        (st = lp_reader_f64(r, &alpha, err)) || (st = lp_reader_f64(r, &l1_ratio, err)) ||
        (st = lp_reader_f64(r, &C, err)))
        return st;
    if (kind >= LP_LINEAR_KIND_COUNT_ || penalty >= LP_LINEAR_PENALTY_COUNT_ || fi > 1)
        return lp_err_set(err, LP_EFORMAT, "%s: kind %u, penalty %u or intercept flag %u out of "
                          "range", what, kind, penalty, fi);
    bool logistic = kind == LP_LINEAR_KIND_LOGISTIC;
    bool shape_ok = d >= 1 && k_out >= 1 &&
                    (logistic ? n_classes >= 2 && k_out == (n_classes == 2 ? 1 : n_classes)
                              : n_classes == 0 && k_out == 1);
    if (!shape_ok || d > LINEAR_MAX_PARAMS / k_out)
        return lp_err_set(err, LP_EFORMAT, "%s: inconsistent shape (%llu features, %u outputs, "
                          "%u classes)", what, (unsigned long long)d, k_out, n_classes);
    uint64_t np = d * k_out;
    if ((np + k_out + 1) * 4 > r->len - r->pos)
        return lp_err_set(err, LP_EFORMAT, "%s: truncated: %llu parameters declared, %zu bytes "
                          "left", what, (unsigned long long)np, r->len - r->pos);
    lp_linear_opts o = lp_linear_opts_default();
    o.kind = (lp_linear_kind)kind;
    o.penalty = (lp_linear_penalty)penalty;
    o.fit_intercept = fi;
    o.alpha = alpha;
    o.l1_ratio = l1_ratio;
    o.C = C;
    lp_linear *m = model_new(&o, (size_t)d, k_out, n_classes);
    if (!m)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory for %llu parameters", what,
                          (unsigned long long)np);
    m->converged = true;
    for (uint64_t i = 0; i < np && st == LP_OK; i++)
        st = lp_reader_f32(r, &m->coef[i], err);
    for (uint32_t c = 0; c < k_out && st == LP_OK; c++)
        st = lp_reader_f32(r, &m->intercept[c], err);
    size_t end = r->pos;
    if (st == LP_OK)
        st = lp_reader_u32(r, &crc, err);
    if (st == LP_OK && crc != lp_crc32(0, r->data + start, end - start))
        st = lp_err_set(err, LP_EFORMAT, "%s: CRC mismatch (stored 0x%08x), the record is "
                        "corrupt", what, crc);
    for (uint64_t i = 0; i < np && st == LP_OK; i++)
        if (!isfinite(m->coef[i]))
            st = lp_err_set(err, LP_EFORMAT, "%s: coefficient %llu is not finite", what,
                            (unsigned long long)i);
    for (uint32_t c = 0; c < k_out && st == LP_OK; c++)
        if (!isfinite(m->intercept[c]))
            st = lp_err_set(err, LP_EFORMAT, "%s: intercept %u is not finite", what, c);
    if (st) {
        lp_linear_free(m);
        return st;
    }
    *out = m;
    return LP_OK;
}
