/*
 * test_treeshap.c - property tests of the exact attributions (explain.h): local accuracy
 * (base + sum(phi) == raw margin) for binary and multiclass gbdt and for logistic models, an
 * unused feature gets exactly 0, and TreeSHAP equals brute-force Shapley values (enumeration of
 * all 2^4 subsets of the path-dependent conditional expectation) on a small ensemble.
 */
#include "lp_test.h"

#include "lepton/explain.h"
#include "lepton/linalg.h"
#include "model/family.h"
#include "model/gbdt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sums of a few hundred float leaf values in double: agreement to 1e-9 relative to the
 * margin's scale is arithmetic noise only; the float predictions of lp_model carry 1e-6. */
#define SUM_TOL 1e-9
#define PRED_TOL 2e-5

/* n rows: a, b, c, d uniform in [-1, 1], "const" always 3, label from a nonlinear rule with
 * an interaction (so trees reuse features along paths). classes > 2 gives a 3-class label. */
static lp_frame *make_data(size_t n, int classes, uint64_t seed)
{
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    double *v[5];
    for (int j = 0; j < 5; j++)
        v[j] = malloc(n * sizeof(double));
    double *y = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < 4; j++)
            v[j][i] = 2 * lp_rng_uniform(&rng) - 1;
        v[4][i] = 3;
        double s = 2 * v[0][i] + v[1][i] * v[2][i] * 3 - v[3][i] + 0.5 * lp_rng_normal(&rng);
        if (i % 17 == 0)
            v[1][i] = NAN; /* missing values exercise the default branch */
        y[i] = classes > 2 ? (s < -0.7 ? 0 : s < 0.7 ? 1 : 2) : (s > 0);
    }
    lp_frame *f = lp_frame_new();
    const char *names[5] = {"a", "b", "c", "d", "const"};
    for (int j = 0; j < 5; j++) {
        assert_int_equal(lp_frame_add_numeric(f, names[j], LP_COL_KIND_FLOAT, v[j], NULL, n, NULL),
                         LP_OK);
        free(v[j]);
    }
    assert_int_equal(lp_frame_add_numeric(f, "y", LP_COL_KIND_INTEGER, y, NULL, n, NULL), LP_OK);
    free(y);
    return f;
}

static lp_model *train(const lp_frame *f, lp_model_kind kind, const char *const *params)
{
    lp_params *p = lp_params_new();
    for (size_t i = 0; params && params[i]; i++)
        assert_int_equal(lp_params_parse(p, params[i], NULL), LP_OK);
    if (kind == LP_MODEL_KIND_GBDT)
        assert_int_equal(lp_params_parse(p, "task=classification", NULL), LP_OK);
    lp_train_opts o = lp_train_opts_default();
    o.kind = kind;
    o.label = "y";
    o.params = p;
    lp_model *m = NULL;
    lp_err err;
    lp_status st = lp_model_train(f, NULL, &o, &m, &err);
    if (st)
        fail_msg("train: %s", lp_err_text(&err));
    lp_params_free(p);
    return m;
}

static double logit(double p) { return log(p / (1 - p)); }

static void check_local_accuracy(const lp_model *m, const lp_frame *rows, size_t k,
                                 bool binary)
{
    lp_attributions a;
    lp_err err;
    assert_int_equal(lp_model_explain(m, rows, k, 2, &a, &err), LP_OK);
    lp_predictions pr;
    assert_int_equal(lp_model_predict(m, rows, &pr, &err), LP_OK);
    assert_int_equal(a.n, lp_frame_nrows(rows));
    long jc = -1;
    for (size_t j = 0; j < a.d; j++)
        if (!strcmp(a.names[j], "const"))
            jc = (long)j;
    assert_true(jc >= 0);
    for (size_t i = 0; i < a.n; i++) {
        double s = a.base;
        for (size_t j = 0; j < a.d; j++)
            s += a.phi[i * a.d + j];
        assert_true(fabs(s - a.margin[i]) <= SUM_TOL * (1 + fabs(a.margin[i])));
        /* the never-used constant column gets exactly zero */
        assert_true(a.phi[i * a.d + (size_t)jc] == 0.0);
        if (binary) {
            double p = pr.out[i * 2 + 1];
            double want = 1 / (1 + exp(-a.margin[i]));
            assert_true(fabs(p - want) <= PRED_TOL);
        }
    }
    /* a wrong attribution would have to be nonzero somewhere on informative columns */
    double tot = 0;
    for (size_t i = 0; i < a.n * a.d; i++)
        tot += fabs(a.phi[i]);
    assert_true(tot > 0.1);
    (void)logit;
    lp_predictions_clear(&pr);
    lp_attributions_clear(&a);
}

static void test_gbdt_binary_local_accuracy(void **state)
{
    (void)state;
    lp_frame *f = make_data(600, 2, 1);
    static const char *const ps[] = {"n_rounds=40", "max_leaves=12", "learning_rate=0.2",
                                     "threads=1", NULL};
    lp_model *m = train(f, LP_MODEL_KIND_GBDT, ps);
    lp_frame *test = make_data(80, 2, 99);
    check_local_accuracy(m, test, 0, true);
    lp_frame_free(test);
    lp_model_free(m);
    lp_frame_free(f);
}

static void test_gbdt_multiclass_local_accuracy(void **state)
{
    (void)state;
    lp_frame *f = make_data(600, 3, 2);
    static const char *const ps[] = {"n_rounds=15", "max_leaves=6", "threads=1", NULL};
    lp_model *m = train(f, LP_MODEL_KIND_GBDT, ps);
    lp_frame *test = make_data(40, 3, 98);
    for (size_t k = 0; k < 3; k++)
        check_local_accuracy(m, test, k, false);
    lp_attributions a;
    lp_err err;
    assert_int_equal(lp_model_explain(m, test, 3, 1, &a, &err), LP_EINVAL);
    lp_frame_free(test);
    lp_model_free(m);
    lp_frame_free(f);
}

/* ---- brute force --------------------------------------------------------------------------*/

/* E[f_t(x) | x_S] with the path-dependent rule: features in S follow x, others average the
 * children by cover. */
static double cond_exp(const lp_gbdt_node *nodes, int32_t i, const float *x, unsigned S)
{
    const lp_gbdt_node *n = &nodes[i];
    if (n->feature < 0)
        return n->value;
    if (S & (1u << n->feature)) {
        float v = x[n->feature];
        bool l = isnan(v) ? n->default_left : v <= n->threshold;
        return cond_exp(nodes, l ? n->left : n->right, x, S);
    }
    double cl = nodes[n->left].cover, cr = nodes[n->right].cover;
    return (cl * cond_exp(nodes, n->left, x, S) + cr * cond_exp(nodes, n->right, x, S)) /
           (cl + cr);
}

static double value(const lp_gbdt *g, const float *x, unsigned S)
{
    double v = lp_gbdt_base_score(g, 0);
    for (size_t t = 0; t < lp_gbdt_n_trees(g); t++) {
        size_t nn;
        const lp_gbdt_node *nodes = lp_gbdt_tree(g, t, &nn);
        v += cond_exp(nodes, 0, x, S);
    }
    return v;
}

static void test_brute_force_shapley(void **state)
{
    (void)state;
    lp_frame *f = make_data(500, 2, 3);
    assert_int_equal(lp_frame_drop(f, 4, NULL), LP_OK); /* 4 features exactly */
    static const char *const ps[] = {"n_rounds=4", "max_depth=4", "max_leaves=0",
                                     "learning_rate=0.5", "threads=1", NULL};
    lp_model *m = train(f, LP_MODEL_KIND_GBDT, ps);
    const lp_gbdt *g = lp_model_impl(m);
    assert_int_equal(lp_gbdt_n_features(g), 4);
    /* depth 4 on an interaction makes trees reuse a feature along a path, so the UNWIND step
     * runs (disabling it makes this test fail) */
    lp_explainer *e = NULL;
    lp_err err;
    assert_int_equal(lp_explainer_new(m, &e, &err), LP_OK);
    lp_explain_ws *ws = lp_explain_ws_new(e);
    lp_matf *X = NULL;
    lp_frame *test = make_data(30, 2, 77);
    assert_int_equal(lp_frame_drop(test, 4, NULL), LP_OK);
    assert_int_equal(lp_model_design(m, test, &X, &err), LP_OK);
    static const double fact[] = {1, 1, 2, 6, 24};
    const unsigned M = 4;
    assert_true(fabs(lp_explainer_base_value(e, 0) - value(g, X->v, 0)) < 1e-9);
    for (size_t i = 0; i < X->rows; i++) {
        const float *x = X->v + i * 4;
        double phi[4], want[4] = {0}, mg;
        assert_int_equal(lp_explainer_row(e, ws, x, 0, phi, &mg, &err), LP_OK);
        for (unsigned j = 0; j < M; j++)
            for (unsigned S = 0; S < (1u << M); S++) {
                if (S & (1u << j))
                    continue;
                unsigned s = (unsigned)__builtin_popcount(S);
                double w = fact[s] * fact[M - s - 1] / fact[M];
                want[j] += w * (value(g, x, S | (1u << j)) - value(g, x, S));
            }
        lp_assert_close(phi, want, 4, 1e-9, 1e-7, "treeshap vs brute force");
        assert_true(fabs(mg - value(g, x, 0xF)) < 1e-9);
    }
    lp_matf_free(X);
    lp_frame_free(test);
    lp_explain_ws_free(ws);
    lp_explainer_free(e);
    lp_model_free(m);
    lp_frame_free(f);
}

static void test_logistic_linear_attributions(void **state)
{
    (void)state;
    lp_frame *f = make_data(400, 2, 4);
    lp_model *m = train(f, LP_MODEL_KIND_LOGISTIC, NULL);
    lp_frame *test = make_data(25, 2, 5);
    check_local_accuracy(m, test, 0, true);
    /* with a background: phi = coef (x - mean) and base = intercept + coef . mean */
    lp_explainer *e = NULL;
    lp_err err;
    assert_int_equal(lp_explainer_new(m, &e, &err), LP_OK);
    lp_matf *X = NULL;
    assert_int_equal(lp_model_design(m, test, &X, &err), LP_OK);
    assert_int_equal(lp_explainer_set_background(e, X->v, X->rows, X->cols, &err), LP_OK);
    assert_int_equal(lp_explainer_set_background(e, X->v, X->rows, X->cols + 1, &err),
                     LP_EINVAL);
    lp_explain_ws *ws = lp_explain_ws_new(e);
    double *phi = calloc(X->cols, sizeof(double)), *colsum = calloc(X->cols, sizeof(double));
    for (size_t i = 0; i < X->rows; i++) {
        double mg, s = lp_explainer_base_value(e, 0);
        assert_int_equal(lp_explainer_row(e, ws, X->v + i * X->cols, 0, phi, &mg, &err), LP_OK);
        for (size_t j = 0; j < X->cols; j++) {
            s += phi[j];
            colsum[j] += phi[j];
        }
        assert_true(fabs(s - mg) < 1e-9 * (1 + fabs(mg)));
    }
    /* attributions against the rows' own mean average to zero per column */
    for (size_t j = 0; j < X->cols; j++)
        assert_true(fabs(colsum[j]) < 1e-6);
    /* a workspace of another explainer is refused */
    lp_explainer *e2 = NULL;
    assert_int_equal(lp_explainer_new(m, &e2, &err), LP_OK);
    assert_int_equal(lp_explainer_row(e2, ws, X->v, 0, phi, NULL, &err), LP_EINVAL);
    lp_explainer_free(e2);
    free(phi);
    free(colsum);
    lp_explain_ws_free(ws);
    lp_matf_free(X);
    lp_explainer_free(e);
    lp_frame_free(test);
    lp_model_free(m);
    lp_frame_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gbdt_binary_local_accuracy),
        cmocka_unit_test(test_gbdt_multiclass_local_accuracy),
        cmocka_unit_test(test_brute_force_shapley),
        cmocka_unit_test(test_logistic_linear_attributions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
