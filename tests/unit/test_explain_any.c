/*
 * test_explain_any.c - lp_explain_rows over every family, permutation importance and the
 * robustness API (explain.h), as property tests:
 *   - KernelSHAP on a linear and a logistic model equals the exact attributions coef (x - mean)
 *     with the same background, both when all coalitions are enumerated and when they are
 *     sampled (a linear model's game is additive, so the weighted least squares fit has no
 *     residual and sampling adds no error: the tolerance is float rounding only);
 *   - KernelSHAP with sampled coalitions on a gbdt (a non-additive game) stays within a stated
 *     sampling error of the enumerated (exact) values;
 *   - completeness: base + sum phi = raw for TreeSHAP, linear and KernelSHAP (1e-9) and for
 *     integrated gradients (trapezoid error, tolerance below);
 *   - a feature the model does not use gets 0 under every method;
 *   - raw columns: a one-hot block's contributions are summed into its column;
 *   - permutation importance ranks the informative feature above pure noise;
 *   - FGSM lowers a trained nn's accuracy, and adversarial training raises the accuracy under
 *     the same attack (seeded, deterministic);
 *   - bad input: unknown method, method for another family, a missing column, KernelSHAP
 *     without a background, an attack on a tree model.
 */
#include "lp_test.h"

#include "lepton/explain.h"
#include "lepton/feat.h"
#include "lepton/linalg.h"
#include "model/family.h"
#include "model/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* exact methods sum float parameters in double: 1e-9 absolute on margins of order 1-10 */
#define EXACT_TOL 1e-9
/* KernelSHAP against the linear method: both exact; the solve of an 11 x 11 system in double */
#define KS_LINEAR_TOL 1e-7
/* KernelSHAP sampled (1000 coalitions) vs enumerated (2046) on an 11-feature gbdt: measured max
 * error 0.014 of the largest |phi| 3.7 here; 0.1 leaves room without hiding a wrong kernel */
#define KS_SAMPLED_REL_TOL 0.1
/* IG with 128 trapezoid steps on a 2x16 ReLU net: max |base + sum - raw| measured 7.3e-3 over
 * 16 rows (the ReLU kinks make the trapezoid error first order in 1/m); 2e-2 is the bound */
#define IG_TOL 2e-2
/* float outputs of the nn: 1e-6 of margins of order 1-10 */
#define NN_FLOAT_TOL 1e-6

/* n rows: x0..x{nf-1} uniform in [-1, 1]; "const" always 3; "color" one of red/green/blue;
 * y from a rule using x0, x1, x2 and color (classification: binary; else the value). */
static lp_frame *make_data(size_t n, size_t nf, bool classify, uint64_t seed)
{
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    lp_frame *f = lp_frame_new();
    double *v = malloc(n * sizeof(double)), *y = malloc(n * sizeof(double));
    double **cols = malloc(nf * sizeof(double *));
    for (size_t j = 0; j < nf; j++) {
        cols[j] = malloc(n * sizeof(double));
        for (size_t i = 0; i < n; i++)
            cols[j][i] = 2 * lp_rng_uniform(&rng) - 1;
    }
    const char **color = malloc(n * sizeof(char *));
    static const char *const colors[] = {"red", "green", "blue"};
    for (size_t i = 0; i < n; i++) {
        size_t c = (size_t)lp_rng_below(&rng, 3);
        color[i] = colors[c];
        double s = 2 * cols[0][i] - cols[1][i] + (nf > 2 ? 0.5 * cols[2][i] : 0) +
                   (c == 0 ? 0.8 : c == 1 ? -0.4 : 0) + 0.3 * lp_rng_normal(&rng);
        y[i] = classify ? (s > 0) : s;
    }
    for (size_t j = 0; j < nf; j++) {
        char name[16];
        snprintf(name, sizeof name, "x%zu", j);
        assert_int_equal(lp_frame_add_numeric(f, name, LP_COL_KIND_FLOAT, cols[j], NULL, n, NULL),
                         LP_OK);
        free(cols[j]);
    }
    for (size_t i = 0; i < n; i++)
        v[i] = 3;
    assert_int_equal(lp_frame_add_numeric(f, "const", LP_COL_KIND_FLOAT, v, NULL, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_categorical(f, "color", color, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "y", classify ? LP_COL_KIND_INTEGER
                                                           : LP_COL_KIND_FLOAT, y, NULL, n, NULL),
                     LP_OK);
    free(cols);
    free(color);
    free(v);
    free(y);
    return f;
}

/* The same rows with "const" set to 7: a value the model never saw, so it varies against
 * the background but the model cannot use it. */
static lp_frame *with_const(const lp_frame *f, double c)
{
    lp_frame *g = NULL;
    assert_int_equal(lp_frame_clone(f, &g, NULL), LP_OK);
    size_t j;
    assert_int_equal(lp_frame_require(g, "const", "test", &j, NULL), LP_OK);
    lp_column *col = lp_frame_col(g, j);
    for (size_t i = 0; i < lp_frame_nrows(g); i++)
        assert_int_equal(lp_column_set_num(col, i, c, NULL), LP_OK);
    return g;
}

static lp_model *train(const lp_frame *f, lp_model_kind kind, const char *const *params)
{
    lp_params *p = lp_params_new();
    for (size_t i = 0; params && params[i]; i++)
        assert_int_equal(lp_params_parse(p, params[i], NULL), LP_OK);
    lp_train_opts o = lp_train_opts_default();
    o.kind = kind;
    o.label = "y";
    o.params = p;
    o.seed = 7;
    lp_model *m = NULL;
    lp_err err;
    lp_status st = lp_model_train(f, NULL, &o, &m, &err);
    if (st)
        fail_msg("train: %s", lp_err_text(&err));
    lp_params_free(p);
    return m;
}

static lp_frame *head(const lp_frame *f, size_t n)
{
    size_t *idx = malloc(n * sizeof(size_t));
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    lp_frame *g = NULL;
    assert_int_equal(lp_frame_take_rows(f, idx, n, &g, NULL), LP_OK);
    free(idx);
    return g;
}

static long feature(const lp_explanation *e, const char *name)
{
    for (size_t j = 0; j < e->p; j++)
        if (!strcmp(e->names[j], name))
            return (long)j;
    fail_msg("no feature %s", name);
    return -1;
}

static void explain(const lp_model *m, const lp_frame *rows, const lp_frame *bg,
                    lp_explain_method method, size_t samples, lp_explanation *e)
{
    lp_explain_opts o = lp_explain_opts_default();
    o.method = method;
    o.samples = samples;
    o.ig_steps = 128;
    o.background = 40;
    o.seed = 3;
    lp_err err;
    lp_status st = lp_explain_rows(m, rows, bg, &o, e, &err);
    if (st)
        fail_msg("explain %s: %s", lp_explain_method_name(method), lp_err_text(&err));
}

static double assert_complete(const lp_explanation *e, double tol)
{
    double gap = 0;
    for (size_t i = 0; i < e->n; i++) {
        double s = e->base[i];
        for (size_t j = 0; j < e->p; j++)
            s += e->phi[i * e->p + j];
        if (fabs(s - e->raw[i]) > tol)
            fail_msg("%s row %zu: base + sum = %.12g, raw %.12g (tol %g)",
                     lp_explain_method_name(e->method), i, s, e->raw[i], tol);
        gap = fmax(gap, fabs(s - e->raw[i]));
    }
    return gap;
}

static void assert_zero(const lp_explanation *e, const char *name, double tol)
{
    long j = feature(e, name);
    for (size_t i = 0; i < e->n; i++)
        if (fabs(e->phi[i * e->p + (size_t)j]) > tol)
            fail_msg("%s row %zu: unused feature %s got %g", lp_explain_method_name(e->method), i,
                     name, e->phi[i * e->p + (size_t)j]);
}

/* KernelSHAP = coef (x - background mean) on linear regression and logistic models, enumerated
 * (M = 6 raw columns here: 62 coalitions) and sampled (samples below 2^M - 2). */
static void test_kernelshap_matches_linear(void **state)
{
    (void)state;
    lp_frame *f = make_data(400, 4, false, 11), *fc = make_data(400, 4, true, 12);
    lp_model *lin = train(f, LP_MODEL_KIND_LINEAR, NULL);
    lp_model *logi = train(fc, LP_MODEL_KIND_LOGISTIC, NULL);
    lp_frame *rows = head(f, 12), *bg = f;
    const lp_model *ms[2] = {lin, logi};
    for (int t = 0; t < 2; t++) {
        lp_explanation ex, ke, ks;
        explain(ms[t], rows, bg, LP_EXPLAIN_METHOD_LINEAR, 0, &ex);
        explain(ms[t], rows, bg, LP_EXPLAIN_METHOD_KERNELSHAP, 0, &ke);
        explain(ms[t], rows, bg, LP_EXPLAIN_METHOD_KERNELSHAP, 20, &ks);
        assert_int_equal(ex.p, ke.p);
        assert_int_equal(ex.method, LP_EXPLAIN_METHOD_LINEAR);
        assert_int_equal(ke.method, LP_EXPLAIN_METHOD_KERNELSHAP);
        lp_assert_close(ke.phi, ex.phi, ex.n * ex.p, KS_LINEAR_TOL, 0, "kernelshap enumerated");
        lp_assert_close(ks.phi, ex.phi, ex.n * ex.p, KS_LINEAR_TOL, 0, "kernelshap sampled");
        lp_assert_close(ke.base, ex.base, ex.n, KS_LINEAR_TOL, 0, "base");
        lp_assert_close(ke.raw, ex.raw, ex.n, KS_LINEAR_TOL, 0, "raw");
        assert_complete(&ex, EXACT_TOL);
        assert_complete(&ke, EXACT_TOL);
        assert_complete(&ks, EXACT_TOL);
        /* the attributions are not trivially zero */
        double mx = 0;
        for (size_t i = 0; i < ex.n * ex.p; i++)
            mx = fmax(mx, fabs(ex.phi[i]));
        assert_true(mx > 0.1);
        lp_explanation_clear(&ex);
        lp_explanation_clear(&ke);
        lp_explanation_clear(&ks);
    }
    lp_frame_free(rows);
    lp_model_free(lin);
    lp_model_free(logi);
    lp_frame_free(f);
    lp_frame_free(fc);
}

/* A non-additive game: sampled coalitions approximate the enumerated Shapley values. */
static void test_kernelshap_sampled_gbdt(void **state)
{
    (void)state;
    lp_frame *f = make_data(600, 10, true, 21);
    const char *const params[] = {"n_rounds=40", "max_depth=4", "task=classification", NULL};
    lp_model *m = train(f, LP_MODEL_KIND_GBDT, params);
    lp_frame *rows = head(f, 4);
    lp_explanation ex, ks, tr;
    /* M = 11 varying columns (const equals the background): 2046 coalitions enumerated */
    explain(m, rows, f, LP_EXPLAIN_METHOD_KERNELSHAP, 2046, &ex);
    explain(m, rows, f, LP_EXPLAIN_METHOD_KERNELSHAP, 1000, &ks); /* sampled */
    explain(m, rows, NULL, LP_EXPLAIN_METHOD_TREESHAP, 0, &tr);
    assert_complete(&ex, EXACT_TOL);
    assert_complete(&ks, EXACT_TOL);
    assert_complete(&tr, EXACT_TOL);
    lp_assert_close(ex.raw, tr.raw, ex.n, EXACT_TOL, 0, "kernelshap and treeshap raw scores");
    double mx = 0, err = 0;
    for (size_t i = 0; i < ex.n * ex.p; i++) {
        mx = fmax(mx, fabs(ex.phi[i]));
        err = fmax(err, fabs(ex.phi[i] - ks.phi[i]));
    }
    print_message("kernelshap sampled vs enumerated: max error %.4g of max |phi| %.4g\n", err, mx);
    assert_true(mx > 0.1);
    assert_true(err < KS_SAMPLED_REL_TOL * mx);
    /* the informative x0 carries more than the unused const under both games */
    long j0 = feature(&ex, "x0"), jc = feature(&ex, "const");
    assert_true(fabs(ex.phi[(size_t)j0]) > fabs(ex.phi[(size_t)jc]));
    lp_explanation_clear(&ex);
    lp_explanation_clear(&ks);
    lp_explanation_clear(&tr);
    lp_frame_free(rows);
    lp_model_free(m);
    lp_frame_free(f);
}

/* Zero the first layer's weights from design column j: the net then cannot use that input. */
static void cut_input(const lp_model *m, const char *name)
{
    lp_nn *net = (lp_nn *)lp_family_nn_net(m, NULL, NULL);
    const lp_pipeline *p = lp_model_pipeline(m);
    size_t d = lp_nn_n_inputs(net), np = lp_nn_n_params(net);
    long j = -1;
    for (size_t c = 0; c < d; c++)
        if (!strcmp(lp_pipeline_feature_name(p, c), name))
            j = (long)c;
    assert_true(j >= 0);
    float *w = malloc(np * sizeof(float));
    assert_int_equal(lp_nn_get_params(net, w, np, NULL), LP_OK);
    size_t out = lp_nn_layer_at(net, 0)->out;
    for (size_t o = 0; o < out; o++)
        w[o * d + (size_t)j] = 0.0f; /* dense0.weight (out, in) comes first */
    assert_int_equal(lp_nn_set_params(net, w, np, NULL), LP_OK);
    free(w);
}

/* Completeness and the unused feature under every method and family. */
static void test_completeness_and_unused(void **state)
{
    (void)state;
    lp_frame *f = make_data(500, 3, true, 31);
    lp_frame *rows7 = with_const(f, 7.0), *rows = head(rows7, 16);
    const char *const gp[] = {"n_rounds=30", "task=classification", NULL};
    const char *const np[] = {"hidden=16,16", "epochs=30", "task=classification", NULL};
    lp_model *gb = train(f, LP_MODEL_KIND_GBDT, gp);
    lp_model *lg = train(f, LP_MODEL_KIND_LOGISTIC, NULL);
    lp_model *nn = train(f, LP_MODEL_KIND_NN, np);
    cut_input(nn, "const");
    /* tol: completeness; ztol: the unused feature (KernelSHAP on the nn sees float outputs, whose
     * last-bit differences between batch positions leak into the least-squares solve) */
    struct {
        const lp_model *m;
        lp_explain_method meth;
        double tol, ztol;
    } cases[] = {
        {gb, LP_EXPLAIN_METHOD_TREESHAP, EXACT_TOL, EXACT_TOL},
        {gb, LP_EXPLAIN_METHOD_KERNELSHAP, EXACT_TOL, EXACT_TOL},
        {lg, LP_EXPLAIN_METHOD_LINEAR, EXACT_TOL, EXACT_TOL},
        {lg, LP_EXPLAIN_METHOD_KERNELSHAP, EXACT_TOL, EXACT_TOL},
        {nn, LP_EXPLAIN_METHOD_IG, IG_TOL, 0.0},
        {nn, LP_EXPLAIN_METHOD_KERNELSHAP, EXACT_TOL, NN_FLOAT_TOL},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        lp_explanation e;
        explain(cases[c].m, rows, f, cases[c].meth, 0, &e);
        assert_int_equal(e.method, cases[c].meth);
        assert_int_equal(e.n, 16);
        double gap = assert_complete(&e, cases[c].tol);
        if (cases[c].meth == LP_EXPLAIN_METHOD_IG)
            print_message("ig completeness gap %.3g\n", gap);
        assert_zero(&e, "const", cases[c].ztol);
        /* raw columns: the one-hot block of color is one feature, and x0 matters */
        assert_int_equal(e.p, 5);
        feature(&e, "color");
        double s0 = 0;
        for (size_t i = 0; i < e.n; i++)
            s0 += fabs(e.phi[i * e.p + (size_t)feature(&e, "x0")]);
        assert_true(s0 > 0.1);
        lp_explanation_clear(&e);
    }
    /* design columns on request: "color=red", ... each its own feature */
    lp_explain_opts o = lp_explain_opts_default();
    o.raw_columns = false;
    lp_explanation e;
    assert_int_equal(lp_explain_rows(lg, rows, NULL, &o, &e, NULL), LP_OK);
    assert_true(e.p > 5);
    feature(&e, "color=red");
    lp_explanation_clear(&e);
    lp_model_free(gb);
    lp_model_free(lg);
    lp_model_free(nn);
    lp_frame_free(rows);
    lp_frame_free(rows7);
    lp_frame_free(f);
}

/* The explained class of a multiclass model is the predicted one. */
static void test_multiclass_predicted_class(void **state)
{
    (void)state;
    lp_frame *f = make_data(400, 3, false, 41);
    /* label: 3 classes by the color column */
    size_t jc;
    assert_int_equal(lp_frame_require(f, "color", "t", &jc, NULL), LP_OK);
    lp_column *c = lp_column_clone(lp_frame_col(f, jc));
    lp_frame *g = NULL;
    assert_int_equal(lp_frame_clone(f, &g, NULL), LP_OK);
    size_t jy;
    assert_int_equal(lp_frame_require(g, "y", "t", &jy, NULL), LP_OK);
    assert_int_equal(lp_frame_drop(g, jy, NULL), LP_OK);
    free(c->name);
    c->name = strdup("y");
    assert_int_equal(lp_frame_add_column(g, c, NULL), LP_OK);
    const char *const gp[] = {"n_rounds=10", NULL};
    lp_model *m = train(g, LP_MODEL_KIND_GBDT, gp);
    lp_frame *rows = head(g, 20);
    lp_predictions p;
    assert_int_equal(lp_model_predict(m, rows, &p, NULL), LP_OK);
    lp_explanation e;
    explain(m, rows, NULL, LP_EXPLAIN_METHOD_AUTO, 0, &e);
    for (size_t i = 0; i < e.n; i++)
        assert_int_equal(e.output[i], p.cls[i]);
    assert_complete(&e, EXACT_TOL);
    lp_predictions_clear(&p);
    lp_explanation_clear(&e);
    lp_frame_free(rows);
    lp_model_free(m);
    lp_frame_free(g);
    lp_frame_free(f);
}

static void test_permutation_importance(void **state)
{
    (void)state;
    lp_frame *f = make_data(600, 4, true, 51); /* x3 is pure noise, const unused */
    const char *const gp[] = {"n_rounds=30", "task=classification", NULL};
    lp_model *m = train(f, LP_MODEL_KIND_GBDT, gp);
    lp_importance a, b;
    assert_int_equal(lp_permutation_importance(m, f, 3, true, 5, 0, &a, NULL), LP_OK);
    assert_int_equal(lp_permutation_importance(m, f, 3, true, 5, 1, &b, NULL), LP_OK);
    assert_string_equal(a.metric, "accuracy");
    assert_true(a.score > 0.8);
    long x0 = -1, x3 = -1, cst = -1;
    for (size_t j = 0; j < a.p; j++) {
        x0 = strcmp(a.names[j], "x0") ? x0 : (long)j;
        x3 = strcmp(a.names[j], "x3") ? x3 : (long)j;
        cst = strcmp(a.names[j], "const") ? cst : (long)j;
    }
    assert_true(x0 >= 0 && x3 >= 0 && cst >= 0);
    print_message("importance x0 %.4f  noise x3 %.4f\n", a.importance[x0], a.importance[x3]);
    assert_true(a.importance[x0] > 0.1);
    assert_true(a.importance[x0] > a.importance[x3] + 0.05);
    assert_true(a.importance[cst] == 0.0);
    /* the thread count does not change the result */
    lp_assert_close(a.importance, b.importance, a.p, 0, 0, "threads");
    lp_importance_clear(&a);
    lp_importance_clear(&b);
    lp_model_free(m);
    lp_frame_free(f);
}

/* Toy robustness problem: x0 separates the classes with a wide margin, x1..x8 each carry a weak
 * signal. An L-inf attack of 0.5 standard deviations moves all weak features together. */
static lp_frame *make_robust(size_t n, uint64_t seed)
{
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    lp_frame *f = lp_frame_new();
    double *y = malloc(n * sizeof(double)), *v = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        y[i] = (double)(i % 2);
    for (int j = 0; j < 9; j++) {
        for (size_t i = 0; i < n; i++) {
            double s = y[i] ? 1.0 : -1.0;
            v[i] = j == 0 ? 2.0 * s + 0.7 * lp_rng_normal(&rng) : 0.4 * s + lp_rng_normal(&rng);
        }
        char name[8];
        snprintf(name, sizeof name, "x%d", j);
        assert_int_equal(lp_frame_add_numeric(f, name, LP_COL_KIND_FLOAT, v, NULL, n, NULL),
                         LP_OK);
    }
    assert_int_equal(lp_frame_add_numeric(f, "y", LP_COL_KIND_INTEGER, y, NULL, n, NULL), LP_OK);
    free(y);
    free(v);
    return f;
}

static void test_fgsm_and_adversarial_training(void **state)
{
    (void)state;
    lp_frame *tr = make_robust(800, 61), *te = make_robust(600, 62);
    const char *const plain[] = {"hidden=32", "epochs=40", "task=classification", NULL};
    const char *const adv[] = {"hidden=32", "epochs=40", "task=classification",
                               "adversarial=0.5", NULL};
    lp_model *m0 = train(tr, LP_MODEL_KIND_NN, plain);
    lp_model *m1 = train(tr, LP_MODEL_KIND_NN, adv);
    lp_attack_opts o = lp_attack_opts_default();
    o.eps = 0.5;
    lp_attack_result r0, r1, r0b, rp;
    assert_int_equal(lp_model_attack_eval(m0, te, &o, &r0, NULL), LP_OK);
    assert_int_equal(lp_model_attack_eval(m0, te, &o, &r0b, NULL), LP_OK);
    assert_int_equal(lp_model_attack_eval(m1, te, &o, &r1, NULL), LP_OK);
    o.method = LP_ATTACK_METHOD_PGD;
    assert_int_equal(lp_model_attack_eval(m0, te, &o, &rp, NULL), LP_OK);
    print_message("plain: clean %.3f fgsm %.3f pgd %.3f; adversarial: clean %.3f fgsm %.3f\n",
                  r0.clean_accuracy, r0.adv_accuracy, rp.adv_accuracy, r1.clean_accuracy,
                  r1.adv_accuracy);
    assert_int_equal(r0.n, 600);
    assert_true(r0.clean_accuracy > 0.9);
    assert_true(r0.adv_accuracy < r0.clean_accuracy - 0.05);
    assert_true(rp.adv_accuracy <= r0.adv_accuracy + 0.01); /* PGD is at least as strong */
    assert_true(r1.adv_accuracy > r0.adv_accuracy + 0.05);
    /* deterministic */
    assert_true(r0.adv_accuracy == r0b.adv_accuracy);
    lp_model_free(m0);
    lp_model_free(m1);
    lp_frame_free(tr);
    lp_frame_free(te);
}

/* The attack keeps every row within eps (L-inf) and moves it by exactly eps under FGSM. */
static void test_attack_stays_in_ball(void **state)
{
    (void)state;
    lp_nn_opts o = lp_nn_opts_default();
    o.hidden = "8";
    o.n_outputs = 3;
    o.seed = 4;
    lp_nn *net = NULL;
    assert_int_equal(lp_nn_new(5, &o, &net, NULL), LP_OK);
    float X[4 * 5], Y[4] = {0, 1, 2, 1}, A[4 * 5];
    for (int i = 0; i < 20; i++)
        X[i] = (float)((i * 37 % 11) - 5) / 5.0f;
    lp_nn_attack_opts a = lp_nn_attack_opts_default();
    a.eps = 0.25;
    assert_int_equal(lp_nn_attack_rows(net, &a, X, Y, 4, 0, A, NULL), LP_OK);
    for (int i = 0; i < 20; i++)
        assert_true(fabsf(fabsf(A[i] - X[i]) - 0.25f) < 1e-6f || A[i] == X[i]);
    a.method = LP_NN_ATTACK_PGD;
    a.steps = 5;
    assert_int_equal(lp_nn_attack_rows(net, &a, X, Y, 4, 0, A, NULL), LP_OK);
    for (int i = 0; i < 20; i++)
        assert_true(fabsf(A[i] - X[i]) <= 0.25f + 1e-6f);
    a.eps = -1;
    lp_err err;
    assert_int_equal(lp_nn_attack_rows(net, &a, X, Y, 4, 0, A, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "eps=-1"));
    Y[2] = 5;
    a.eps = 0.1;
    assert_int_equal(lp_nn_attack_rows(net, &a, X, Y, 4, 0, A, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "row 2"));
    lp_nn_free(net);
}

static void test_bad_input(void **state)
{
    (void)state;
    lp_frame *f = make_data(300, 3, true, 71);
    const char *const gp[] = {"n_rounds=5", "task=classification", NULL};
    lp_model *gb = train(f, LP_MODEL_KIND_GBDT, gp);
    lp_err err;
    lp_explain_method meth;
    assert_int_equal(lp_explain_method_parse("shapley", &meth, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "'shapley'"));
    lp_explain_opts o = lp_explain_opts_default();
    lp_explanation e;
    o.method = LP_EXPLAIN_METHOD_IG;
    assert_int_equal(lp_explain_rows(gb, f, NULL, &o, &e, &err), LP_EUNSUPPORTED);
    assert_non_null(strstr(lp_err_text(&err), "method ig needs an nn model, this one is gbdt"));
    o.method = LP_EXPLAIN_METHOD_LINEAR;
    assert_int_equal(lp_explain_rows(gb, f, NULL, &o, &e, &err), LP_EUNSUPPORTED);
    o.method = LP_EXPLAIN_METHOD_KERNELSHAP;
    assert_int_equal(lp_explain_rows(gb, f, NULL, &o, &e, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "background"));
    o.method = LP_EXPLAIN_METHOD_AUTO;
    o.output = 3;
    assert_int_equal(lp_explain_rows(gb, f, NULL, &o, &e, &err), LP_EINVAL);
    o.output = -1;
    o.ig_steps = 0;
    assert_int_equal(lp_explain_rows(gb, f, NULL, &o, &e, &err), LP_EINVAL);
    o.ig_steps = 64;
    /* a missing column is named */
    lp_frame *g = NULL;
    assert_int_equal(lp_frame_clone(f, &g, NULL), LP_OK);
    size_t j;
    assert_int_equal(lp_frame_require(g, "x1", "t", &j, NULL), LP_OK);
    assert_int_equal(lp_frame_drop(g, j, NULL), LP_OK);
    assert_int_equal(lp_explain_rows(gb, g, NULL, &o, &e, &err), LP_ENOTFOUND);
    assert_non_null(strstr(lp_err_text(&err), "x1"));
    assert_null(e.phi);
    /* attacks need an nn */
    lp_attack_opts ao = lp_attack_opts_default();
    lp_attack_result r;
    assert_int_equal(lp_model_attack_eval(gb, f, &ao, &r, &err), LP_EUNSUPPORTED);
    assert_non_null(strstr(lp_err_text(&err), "differentiable"));
    lp_importance imp;
    assert_int_equal(lp_permutation_importance(gb, g, 2, true, 0, 1, &imp, &err), LP_ENOTFOUND);
    assert_int_equal(lp_permutation_importance(gb, f, 0, true, 0, 1, &imp, &err), LP_EINVAL);
    lp_frame_free(g);
    lp_model_free(gb);
    lp_frame_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernelshap_matches_linear),
        cmocka_unit_test(test_kernelshap_sampled_gbdt),
        cmocka_unit_test(test_completeness_and_unused),
        cmocka_unit_test(test_multiclass_predicted_class),
        cmocka_unit_test(test_permutation_importance),
        cmocka_unit_test(test_fgsm_and_adversarial_training),
        cmocka_unit_test(test_attack_stays_in_ball),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
