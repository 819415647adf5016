/*
 * test_treeshap.c - property tests of the exact attributions (explain.h): local accuracy
 * (base + sum(phi) == raw margin) for binary and multiclass gbdt and for logistic models, an
 * unused feature gets exactly 0, and TreeSHAP equals brute-force Shapley values (enumeration of
 * all 2^4 subsets of the path-dependent conditional expectation) on a small ensemble; and the
 * precomputed fast path against Algorithm 2 on randomized trees (see its section below).
 */
#include "lp_test.h"

#include "explain/explain_internal.h"
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

/* ---- the fast path (treeshap.c: fail words, tables per group of leaves, the trees-outer
 * batch) against Algorithm 2 alone (lp_explainer_new_lite, the oracle) on randomized trees:
 * trained gbdts whose splits are then rewritten with a seeded RNG so that paths repeat
 * features, missing values go either way, some covers are zero, and (in the deep test) some
 * trees have leaves with more unique features than the tables take, so that they fall back to
 * Algorithm 2 inside one model. Also: the batch path equals the row path bit for bit, per-row
 * outputs (multiclass) through lp_treeshap_batch and lp_explain_rows. ------------------------*/

/* The tables hold Algorithm 2's own arithmetic regrouped (sums of up to four leaves' table
 * entries): agreement to 1e-9 of the attributions' scale is rounding only; a wrong pattern bit
 * or column moves an attribution by a sizeable share of a leaf value (>= 1e-3 here). */
#define FAST_TOL 1e-9

/* n rows of d uniform [-1, 1] features (about 10% missing in every column but the last),
 * label from a nonlinear rule with interactions: 2 or 3 classes. */
static lp_frame *make_wide_data(size_t n, size_t d, int classes, uint64_t seed)
{
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    double *v = malloc(n * d * sizeof(double)), *y = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            v[j * n + i] = 2 * lp_rng_uniform(&rng) - 1;
        double s = v[i] + v[n + i] * v[2 * n + i] * 2 - v[(d - 1) * n + i] +
                   0.5 * lp_rng_normal(&rng);
        y[i] = classes > 2 ? (s < -0.5 ? 0 : s < 0.5 ? 1 : 2) : (s > 0);
        for (size_t j = 0; j + 1 < d; j++)
            if (lp_rng_uniform(&rng) < 0.1)
                v[j * n + i] = NAN;
    }
    lp_frame *f = lp_frame_new();
    for (size_t j = 0; j < d; j++) {
        char name[16];
        snprintf(name, sizeof name, "x%02zu", j);
        assert_int_equal(lp_frame_add_numeric(f, name, LP_COL_KIND_FLOAT, v + j * n, NULL, n,
                                              NULL), LP_OK);
    }
    assert_int_equal(lp_frame_add_numeric(f, "y", LP_COL_KIND_INTEGER, y, NULL, n, NULL), LP_OK);
    free(v);
    free(y);
    return f;
}

/* Rewrite the splits of every tree of m (the model is the test's own, heap-allocated): tree t
 * splits on depth % deep_d when deep_d and t is odd, else on a random one of the first 3
 * features (so features repeat along paths); random thresholds, default directions and covers
 * (one node in 8 with zero cover). Leaves keep their values. */
static void randomize_trees(lp_model *m, uint64_t seed, size_t deep_d)
{
    const lp_gbdt *g = lp_model_impl(m);
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    for (size_t t = 0; t < lp_gbdt_n_trees(g); t++) {
        size_t nn = 0;
        lp_gbdt_node *nodes = (lp_gbdt_node *)lp_gbdt_tree(g, t, &nn);
        size_t *depth = calloc(nn, sizeof(size_t));
        for (size_t i = 0; i < nn; i++) {
            lp_gbdt_node *n = &nodes[i];
            n->cover = lp_rng_below(&rng, 8) == 0 ? 0.0 : 0.1 + 10 * lp_rng_uniform(&rng);
            if (n->feature < 0)
                continue;
            depth[n->left] = depth[n->right] = depth[i] + 1;
            n->feature = deep_d && t % 2 ? (int32_t)(depth[i] % deep_d)
                                         : (int32_t)lp_rng_below(&rng, 3);
            n->threshold = (float)(1.6 * lp_rng_uniform(&rng) - 0.8);
            n->default_left = (uint8_t)lp_rng_below(&rng, 2);
        }
        free(depth);
    }
}

/* The fast explainer *e and Algorithm 2 alone *e2 of m. */
static void explainer_pair(const lp_model *m, lp_explainer **e, lp_explainer **e2)
{
    lp_err err;
    assert_int_equal(lp_explainer_new(m, e, &err), LP_OK);
    assert_int_equal(lp_explainer_new_lite(m, e2, &err), LP_OK);
}

/* (n, d) design rows: uniform [-1.2, 1.2], one value in 6 missing. */
static float *random_rows(size_t n, size_t d, uint64_t seed)
{
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    float *X = malloc(n * d * sizeof(float));
    for (size_t i = 0; i < n * d; i++)
        X[i] = lp_rng_below(&rng, 6) == 0 ? NAN : (float)(2.4 * lp_rng_uniform(&rng) - 1.2);
    return X;
}

/* Every row and output of X: fast explainer e against Algorithm 2 (e2), completeness of both,
 * and lp_explainer_batch equal to the row path bit for bit. Returns max |phi| seen. */
static double compare_all(const lp_explainer *e, const lp_explainer *e2, const float *X,
                          size_t n)
{
    size_t d = lp_explainer_n_features(e), K = lp_explainer_n_outputs(e);
    lp_explain_ws *ws = lp_explain_ws_new(e), *ws2 = lp_explain_ws_new(e2);
    double *phi = malloc(d * sizeof(double)), *want = malloc(d * sizeof(double));
    double *bphi = malloc(n * d * sizeof(double)), *bmg = malloc(n * sizeof(double));
    double scale = 0.0;
    lp_err err;
    for (size_t k = 0; k < K; k++) {
        assert_int_equal(lp_explainer_batch(e, X, n, k, 2, bphi, bmg, &err), LP_OK);
        for (size_t i = 0; i < n; i++) {
            const float *x = X + i * d;
            double mg, mg2;
            assert_int_equal(lp_explainer_row(e, ws, x, k, phi, &mg, &err), LP_OK);
            assert_int_equal(lp_explainer_row(e2, ws2, x, k, want, &mg2, &err), LP_OK);
            double big = 0.0, s = lp_explainer_base_value(e, k);
            for (size_t j = 0; j < d; j++) {
                big = fmax(big, fabs(want[j]));
                s += phi[j];
            }
            scale = fmax(scale, big);
            lp_assert_close(phi, want, d, FAST_TOL * (1 + big), 0.0, "fast vs Algorithm 2");
            assert_true(fabs(mg - mg2) <= 1e-12 * (1 + fabs(mg2)));
            assert_true(fabs(s - mg) <= FAST_TOL * (1 + fabs(mg)));
            assert_memory_equal(phi, bphi + i * d, d * sizeof(double));
            assert_true(mg == bmg[i]);
        }
    }
    free(phi);
    free(want);
    free(bphi);
    free(bmg);
    lp_explain_ws_free(ws);
    lp_explain_ws_free(ws2);
    return scale;
}

/* Trees of <= 40 leaves split only on 3 features: every path repeats features, missing values
 * take random default sides, some covers are zero. All trees take the fast path. */
static void test_random_trees_repeated_features(void **state)
{
    (void)state;
    lp_frame *f = make_wide_data(500, 6, 2, 11);
    static const char *const ps[] = {"n_rounds=8", "max_leaves=40", "max_depth=7",
                                     "min_child_weight=0.001", "learning_rate=0.5",
                                     "threads=1", NULL};
    lp_model *m = train(f, LP_MODEL_KIND_GBDT, ps);
    randomize_trees(m, 12, 0);
    lp_explainer *e = NULL, *e2 = NULL;
    explainer_pair(m, &e, &e2);
    const lp_gbdt *g = lp_model_impl(m);
    size_t nt = lp_gbdt_n_trees(g), groups = 0, multi = 0;
    for (size_t t = 0; t < nt; t++) {
        assert_true(e->ts_trees[t].fast);
        groups += e->ts_trees[t].n_groups;
        for (uint32_t q = 0; q < e->ts_trees[t].n_groups; q++)
            multi += e->ts_groups[e->ts_trees[t].group0 + q].full != 0;
    }
    /* the trees are big enough to have top nodes and groups below them */
    assert_true(groups > nt);
    assert_true(multi > 0);
    float *X = random_rows(150, lp_explainer_n_features(e), 13);
    assert_true(compare_all(e, e2, X, 150) > 1e-3);
    free(X);
    lp_explainer_free(e);
    lp_explainer_free(e2);
    lp_model_free(m);
    lp_frame_free(f);
}

/* Three classes: per-row outputs through lp_treeshap_batch (ks) and lp_explain_rows. */
static void test_multiclass_per_row_outputs(void **state)
{
    (void)state;
    lp_frame *f = make_wide_data(600, 5, 3, 21);
    static const char *const ps[] = {"n_rounds=6", "max_leaves=20", "learning_rate=0.4",
                                     "threads=1", NULL};
    lp_model *m = train(f, LP_MODEL_KIND_GBDT, ps);
    randomize_trees(m, 22, 0);
    lp_explainer *e = NULL, *e2 = NULL;
    lp_err err;
    explainer_pair(m, &e, &e2);
    assert_int_equal(lp_explainer_n_outputs(e), 3);
    size_t n = 300, d = lp_explainer_n_features(e);
    float *X = random_rows(n, d, 23);
    compare_all(e, e2, X, n);
    int32_t *ks = malloc(n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++)
        ks[i] = (int32_t)((i * 7 + i / 3) % 3);
    double *phi = malloc(n * d * sizeof(double)), *mg = malloc(n * sizeof(double));
    double *one = malloc(d * sizeof(double));
    assert_int_equal(lp_treeshap_batch(e, X, n, 0, ks, 2, phi, mg, &err), LP_OK);
    lp_explain_ws *ws = lp_explain_ws_new(e);
    for (size_t i = 0; i < n; i++) {
        double m1;
        assert_int_equal(lp_explainer_row(e, ws, X + i * d, (size_t)ks[i], one, &m1, &err),
                         LP_OK);
        assert_memory_equal(one, phi + i * d, d * sizeof(double));
        assert_true(m1 == mg[i]);
    }
    ks[7] = 3;
    assert_int_equal(lp_treeshap_batch(e, X, n, 0, ks, 2, phi, mg, &err), LP_EINVAL);
    assert_int_equal(lp_treeshap_batch(e, X, n, 3, NULL, 2, phi, mg, &err), LP_EINVAL);
    /* the public entry point: each row explains its argmax class, base + sum = raw */
    lp_frame *rows = make_wide_data(120, 5, 3, 24);
    lp_explanation ex;
    lp_explain_opts o = lp_explain_opts_default();
    o.threads = 2;
    assert_int_equal(lp_explain_rows(m, rows, NULL, &o, &ex, &err), LP_OK);
    lp_matf *D = NULL;
    assert_int_equal(lp_model_design(m, rows, &D, &err), LP_OK);
    size_t seen[3] = {0};
    for (size_t i = 0; i < ex.n; i++) {
        double raw[3], s = ex.base[i];
        lp_explainer_margin(e, D->v + i * d, raw);
        size_t k = (size_t)ex.output[i];
        seen[k]++;
        for (size_t c = 0; c < 3; c++)
            assert_true(raw[c] <= raw[k] + 1e-6);
        assert_true(fabs(ex.raw[i] - raw[k]) <= 1e-12 * (1 + fabs(raw[k])));
        for (size_t j = 0; j < ex.p; j++)
            s += ex.phi[i * ex.p + j];
        assert_true(fabs(s - ex.raw[i]) <= FAST_TOL * (1 + fabs(ex.raw[i])));
    }
    assert_true((seen[0] > 0) + (seen[1] > 0) + (seen[2] > 0) >= 2);
    lp_matf_free(D);
    lp_explanation_clear(&ex);
    lp_frame_free(rows);
    lp_explain_ws_free(ws);
    free(one);
    free(phi);
    free(mg);
    free(ks);
    free(X);
    lp_explainer_free(e);
    lp_explainer_free(e2);
    lp_model_free(m);
    lp_frame_free(f);
}

/* Deep trees: odd trees split on depth % 16, so a leaf 13 deep has more unique features than
 * LP_TS_MAX_K and its tree falls back to Algorithm 2; even trees repeat 3 features and stay on
 * the fast path. Both kinds in one model, one row. */
static void test_deep_trees_fallback(void **state)
{
    (void)state;
    lp_frame *f = make_wide_data(800, 16, 2, 31);
    static const char *const ps[] = {"n_rounds=4", "max_leaves=0", "max_depth=16",
                                     "min_child_weight=0", "lambda=0.1", "learning_rate=0.5",
                                     "threads=1", NULL};
    lp_model *m = train(f, LP_MODEL_KIND_GBDT, ps);
    randomize_trees(m, 32, 16);
    lp_explainer *e = NULL, *e2 = NULL;
    explainer_pair(m, &e, &e2);
    assert_true(e->max_depth > LP_TS_MAX_K);
    size_t nt = lp_gbdt_n_trees(lp_model_impl(m)), fast = 0, slow = 0;
    for (size_t t = 0; t < nt; t++) {
        fast += e->ts_trees[t].fast;
        slow += !e->ts_trees[t].fast;
    }
    assert_true(fast > 0);
    assert_true(slow > 0);
    float *X = random_rows(60, 16, 33);
    compare_all(e, e2, X, 60);
    free(X);
    lp_explainer_free(e);
    lp_explainer_free(e2);
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
        cmocka_unit_test(test_random_trees_repeated_features),
        cmocka_unit_test(test_multiclass_per_row_outputs),
        cmocka_unit_test(test_deep_trees_fallback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
