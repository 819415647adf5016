/*
 * test_linear_sklearn.c - the linear model family against scikit-learn 1.2.1: coefficients,
 * intercepts and held-out predictions (values or probabilities) of LinearRegression, Ridge,
 * Lasso, ElasticNet and LogisticRegression (binary / multinomial, L2 / L1 / none, sample and
 * balanced class weights) on seeded dense data, and of Lasso, Ridge and multinomial logistic
 * on CSR input (fitted both as CSR and densified). Fixtures: tests/fixtures/gen_linear.py.
 */
#include "lp_test.h"

#include "model/linear.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The issue asks for agreement to 1e-4 relative. The reference solvers were run to tiny
 * tolerances (sklearn's lbfgs stops on its ftol first; its gradient there is ~1e-6, which
 * moves coefficients by ~1e-6 relative), and X is rounded to float here (~6e-8 relative). */
#define LINEAR_RTOL 1e-4
/* Exact zeros of the L1 fits and tiny coefficients are compared absolutely: float storage of
 * the parameters and the solvers' stopping points leave errors around 1e-7. */
#define LINEAR_ATOL 1e-6

typedef struct lin_case {
    const char *model, *data, *labels;
    lp_linear_kind kind;
    lp_linear_penalty penalty;
    double alpha, l1_ratio, C;
    bool weighted, balanced, sparse;
} lin_case;

#define K_LS LP_LINEAR_KIND_LEAST_SQUARES
#define K_RIDGE LP_LINEAR_KIND_RIDGE
#define K_LASSO LP_LINEAR_KIND_LASSO
#define K_ENET LP_LINEAR_KIND_ELASTIC_NET
#define K_LOG LP_LINEAR_KIND_LOGISTIC
#define P_L2 LP_LINEAR_PENALTY_L2
#define P_L1 LP_LINEAR_PENALTY_L1
#define P_NONE LP_LINEAR_PENALTY_NONE

/* model prefix, data prefix, label array (NULL: regression on <data>_y) */
static const lin_case cases[] = {
    {"ols", "reg", NULL, K_LS, P_L2, 0, 0.5, 1, false, false, false},
    {"ridge", "reg", NULL, K_RIDGE, P_L2, 1.5, 0.5, 1, false, false, false},
    {"ridgew", "reg", NULL, K_RIDGE, P_L2, 1.5, 0.5, 1, true, false, false},
    {"lasso", "reg", NULL, K_LASSO, P_L2, 0.1, 0.5, 1, false, false, false},
    {"enet", "reg", NULL, K_ENET, P_L2, 0.2, 0.3, 1, false, false, false},
    {"enetw", "reg", NULL, K_ENET, P_L2, 0.2, 0.7, 1, true, false, false},
    {"logl2", "bin", "bin_y", K_LOG, P_L2, 0, 0.5, 0.5, false, false, false},
    {"logl2w", "bin", "bin_y", K_LOG, P_L2, 0, 0.5, 0.5, true, false, false},
    {"lognone", "bin", "bin_y", K_LOG, P_NONE, 0, 0.5, 1, false, false, false},
    {"logl1", "bin", "bin_y", K_LOG, P_L1, 0, 0.5, 0.2, false, false, false},
    {"mnl2", "mc", "mc_y", K_LOG, P_L2, 0, 0.5, 2.0, false, false, false},
    {"mnbal", "mc", "mc_yb", K_LOG, P_L2, 0, 0.5, 1.0, false, true, false},
    {"mnl1", "mc", "mc_y", K_LOG, P_L1, 0, 0.5, 0.5, false, false, false},
    {"splasso", "sp", NULL, K_LASSO, P_L2, 0.01, 0.5, 1, false, false, true},
    {"spridge", "sp", NULL, K_RIDGE, P_L2, 0.5, 0.5, 1, false, false, true},
    {"spmn", "sp", "sp_c", K_LOG, P_L2, 0, 0.5, 5.0, false, false, true},
};

static float *to_float(const double *v, size_t n)
{
    float *f = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
        f[i] = (float)v[i];
    return f;
}

/* CSR view of a dense float matrix (zeros dropped); arrays malloc'd into *x. */
static void to_csr(const float *dense, size_t rows, size_t cols, lp_design *x)
{
    size_t *indptr = calloc(rows + 1, sizeof(size_t));
    uint32_t *idx = malloc(rows * cols * sizeof(uint32_t) + 4);
    float *val = malloc(rows * cols * sizeof(float) + 4);
    size_t nnz = 0;
    for (size_t i = 0; i < rows; i++) {
        for (size_t j = 0; j < cols; j++)
            if (dense[i * cols + j] != 0) {
                idx[nnz] = (uint32_t)j;
                val[nnz++] = dense[i * cols + j];
            }
        indptr[i + 1] = nnz;
    }
    *x = (lp_design){rows, cols, NULL, indptr, idx, val};
}

static void free_csr(lp_design *x)
{
    free((void *)x->indptr);
    free((void *)x->indices);
    free((void *)x->values);
}

static lp_fixture *fx;

static double *arr(const char *prefix, const char *suffix, size_t *rows, size_t *cols)
{
    char name[128];
    snprintf(name, sizeof name, "%s_%s", prefix, suffix);
    return lp_fixture_array(fx, name, rows, cols);
}

/* Fit one case with the given input layout and compare with the fixture. */
static void run_case(const lin_case *c, bool as_csr)
{
    size_t n, d, nt, dt;
    double *xd = arr(c->data, "X", &n, &d), *xtd = arr(c->data, "Xt", &nt, &dt);
    float *xf = to_float(xd, n * d), *xtf = to_float(xtd, nt * dt);
    lp_design x = {n, d, xf, NULL, NULL, NULL}, xt = {nt, dt, xtf, NULL, NULL, NULL};
    if (as_csr) {
        to_csr(xf, n, d, &x);
        to_csr(xtf, nt, dt, &xt);
    }
    double *w = c->weighted ? arr(c->data, "w", NULL, NULL) : NULL;
    lp_linear_opts o = lp_linear_opts_default();
    o.kind = c->kind;
    o.penalty = c->penalty;
    o.alpha = c->alpha;
    o.l1_ratio = c->l1_ratio;
    o.C = c->C;
    o.class_weight = c->balanced ? LP_LINEAR_CLASS_WEIGHT_BALANCED : LP_LINEAR_CLASS_WEIGHT_NONE;
    o.max_iter = 200000;
    /* run every solver far past the fixture tolerance so the optimum itself is compared */
    o.tol = c->kind == K_LOG ? 1e-9 : 1e-12;
    lp_linear *m = NULL;
    lp_err err;
    lp_status st;
    if (c->labels) {
        size_t ny;
        double *yd = lp_fixture_array(fx, c->labels, &ny, NULL);
        int32_t *lab = malloc(ny * sizeof(int32_t));
        for (size_t i = 0; i < ny; i++)
            lab[i] = (int32_t)yd[i];
        st = lp_linear_fit_classifier(&o, &x, lab, 0, w, &m, &err);
        free(yd);
        free(lab);
    } else {
        double *y = arr(c->data, "y", NULL, NULL);
        st = lp_linear_fit_regression(&o, &x, y, w, &m, &err);
        free(y);
    }
    if (st != LP_OK)
        fail_msg("%s: fit failed: %s", c->model, err.msg);
    assert_true(lp_linear_converged(m));

    size_t kr, kc;
    double *want_coef = arr(c->model, "coef", &kr, &kc);
    double *want_b = arr(c->model, "intercept", NULL, NULL);
    double *want_pred = arr(c->model, "pred", NULL, &kc);
    assert_int_equal(lp_linear_n_outputs(m), kr);
    assert_int_equal(lp_linear_n_features(m), d);
    size_t nc = kr * d;
    double *got = malloc((nc + nt * kc) * sizeof(double));
    for (size_t i = 0; i < nc; i++)
        got[i] = lp_linear_coef(m)[i];
    char what[64];
    snprintf(what, sizeof what, "%s%s coef", c->model, as_csr ? " (csr)" : "");
    lp_assert_close(got, want_coef, nc, LINEAR_ATOL, LINEAR_RTOL, what);
    for (size_t i = 0; i < kr; i++)
        got[i] = lp_linear_intercept(m)[i];
    snprintf(what, sizeof what, "%s%s intercept", c->model, as_csr ? " (csr)" : "");
    lp_assert_close(got, want_b, kr, LINEAR_ATOL, LINEAR_RTOL, what);
    if (c->labels)
        st = lp_linear_predict_proba(m, &xt, got, &err);
    else
        st = lp_linear_predict(m, &xt, got, &err);
    assert_int_equal(st, LP_OK);
    snprintf(what, sizeof what, "%s%s predictions", c->model, as_csr ? " (csr)" : "");
    lp_assert_close(got, want_pred, nt * kc, LINEAR_ATOL, LINEAR_RTOL, what);
    /* the single-row path agrees with the batch path */
    double row[8];
    lp_linear_proba_row(m, xtf + (nt - 1) * d, row);
    for (size_t j = 0; j < kc; j++)
        assert_true(fabs(row[j] - got[(nt - 1) * kc + j]) <= 1e-12);

    free(got);
    free(want_coef);
    free(want_b);
    free(want_pred);
    lp_linear_free(m);
    if (as_csr) {
        free_csr(&x);
        free_csr(&xt);
    }
    free(w);
    free(xd);
    free(xtd);
    free(xf);
    free(xtf);
}

static void test_dense_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], false);
}

static void test_csr_cases(void **state)
{
    (void)state;
    /* every case also through the CSR path (the sp_* cases were fitted on CSR by sklearn) */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case(&cases[i], true);
}

int main(void)
{
    fx = lp_fixture_load("linear.txt");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_cases),
        cmocka_unit_test(test_csr_cases),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    lp_fixture_free(fx);
    return rc;
}
