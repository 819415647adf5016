/*
 * test_gbdt.c - gradient-boosted trees on small hand-built data: exact split thresholds,
 * hand-computed leaf values and covers, learned missing-value directions, loss gradients
 * against finite differences, option validation, save/load round trips, corrupted blobs,
 * reproducibility (same seed, different thread counts) and feature importance.
 */
#include "lp_test.h"

#include "model/gbdt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static lp_gbdt_opts exact_opts(void)
{
    lp_gbdt_opts o = lp_gbdt_opts_default();
    o.n_rounds = 1;
    o.max_leaves = 2;
    o.learning_rate = 0.3f;
    o.lambda = 1.0f;
    o.min_child_weight = 0.0f;
    o.n_threads = 1;
    return o;
}

/* x = 1..10, y = 0 for x <= 5, 1 above: one L2 split at a threshold in [5, 6). */
static void test_single_split(void **state)
{
    (void)state;
    float X[10], y[10];
    for (int i = 0; i < 10; i++) {
        X[i] = (float)(i + 1);
        y[i] = i < 5 ? 0.0f : 1.0f;
    }
    lp_gbdt_opts o = exact_opts();
    lp_gbdt *m = NULL;
    lp_err err;
    assert_int_equal(lp_gbdt_fit(X, y, NULL, 10, 1, &o, NULL, NULL, 0, &m, &err), LP_OK);
    assert_int_equal(lp_gbdt_n_trees(m), 1);
    assert_true(fabs(lp_gbdt_base_score(m, 0) - 0.5) < 1e-12);
    size_t nn;
    const lp_gbdt_node *t = lp_gbdt_tree(m, 0, &nn);
    assert_int_equal(nn, 3);
    assert_int_equal(t[0].feature, 0);
    assert_true(t[0].threshold >= 5.0f && t[0].threshold < 6.0f);
    /* left: 5 rows with gradient 0.5 - 0 = 0.5, hessian 1: G = 2.5, H = 5;
     * leaf value -G / (H + lambda) * lr = -2.5 / 6 * 0.3 */
    const lp_gbdt_node *l = &t[t[0].left], *r = &t[t[0].right];
    assert_int_equal(l->feature, -1);
    assert_true(fabsf(l->value - (float)(-2.5 / 6.0 * 0.3)) < 1e-7f);
    assert_true(fabsf(r->value - (float)(2.5 / 6.0 * 0.3)) < 1e-7f);
    assert_true(fabs(l->cover - 5.0) < 1e-9 && fabs(r->cover - 5.0) < 1e-9);
    assert_true(fabs(t[0].cover - 10.0) < 1e-9);
    /* gain 0.5 * (2.5^2/6 + 2.5^2/6 - 0) */
    assert_true(fabsf(t[0].gain - (float)(0.5 * (6.25 / 6 * 2))) < 1e-5f);
    float x5 = 5.0f, x6 = 6.0f, out;
    lp_gbdt_predict_row_raw(m, &x5, &out);
    assert_true(fabsf(out - (float)(0.5 - 0.125)) < 1e-6f);
    lp_gbdt_predict_row_raw(m, &x6, &out);
    assert_true(fabsf(out - (float)(0.5 + 0.125)) < 1e-6f);
    lp_gbdt_free(m);
}

/* Missing rows behave like the high values (right) in one data set, like the low values
 * (left) in the other: the learned default side must follow, at train and predict time. */
static void test_missing_direction(void **state)
{
    (void)state;
    for (int side = 0; side < 2; side++) {
        float X[16], y[16];
        for (int i = 0; i < 12; i++) {
            X[i] = (float)i;
            y[i] = i < 6 ? 0.0f : 1.0f;
        }
        for (int i = 12; i < 16; i++) {
            X[i] = NAN;
            y[i] = side == 0 ? 1.0f : 0.0f; /* side 0: like the high values */
        }
        lp_gbdt_opts o = exact_opts();
        lp_gbdt *m = NULL;
        assert_int_equal(lp_gbdt_fit(X, y, NULL, 16, 1, &o, NULL, NULL, 0, &m, NULL), LP_OK);
        size_t nn;
        const lp_gbdt_node *t = lp_gbdt_tree(m, 0, &nn);
        assert_int_equal(nn, 3);
        assert_true(t[0].threshold >= 5.0f && t[0].threshold < 6.0f);
        assert_int_equal(t[0].default_left, side == 0 ? 0 : 1);
        /* the missing rows joined the child with the same label: left has 6 (+4) rows */
        assert_true(fabs(t[t[0].left].cover - (side == 0 ? 6.0 : 10.0)) < 1e-9);
        float nan = NAN, hi = 100.0f, lo = -100.0f, pn, ph, pl;
        lp_gbdt_predict_row_raw(m, &nan, &pn);
        lp_gbdt_predict_row_raw(m, &hi, &ph);
        lp_gbdt_predict_row_raw(m, &lo, &pl);
        assert_true(pn == (side == 0 ? ph : pl));
        assert_true(ph > pl);
        lp_gbdt_free(m);
    }
}

/* Finite-difference check of every loss's gradient, and the hessians in closed form. */
static double loss_value(lp_gbdt_loss loss, int K, const double *m, float y)
{
    if (loss == LP_GBDT_LOSS_L2)
        return 0.5 * (m[0] - y) * (m[0] - y);
    if (loss == LP_GBDT_LOSS_LOGLOSS) {
        double p = 1.0 / (1.0 + exp(-m[0]));
        return -(y * log(p) + (1 - y) * log(1 - p));
    }
    double s = 0.0;
    for (int k = 0; k < K; k++)
        s += exp(m[k]);
    return log(s) - m[(int)y];
}

static void test_loss_gradients(void **state)
{
    (void)state;
    const double eps = 1e-6;
    double g[4], h[4];
    double m2[1] = {0.0};
    lp_gbdt_loss_grad(LP_GBDT_LOSS_LOGLOSS, 1, m2, 1.0f, g, h);
    assert_true(fabs(g[0] + 0.5) < 1e-12 && fabs(h[0] - 0.25) < 1e-12);
    double m3[1] = {1.5};
    lp_gbdt_loss_grad(LP_GBDT_LOSS_L2, 1, m3, 4.0f, g, h);
    assert_true(fabs(g[0] + 2.5) < 1e-12 && h[0] == 1.0);

    struct { lp_gbdt_loss loss; int K; double m[4]; float y; } cases[] = {
        {LP_GBDT_LOSS_L2, 1, {0.3}, -1.2f},
        {LP_GBDT_LOSS_LOGLOSS, 1, {-2.0}, 1.0f},
        {LP_GBDT_LOSS_LOGLOSS, 1, {0.7}, 0.0f},
        {LP_GBDT_LOSS_SOFTMAX, 3, {0.1, -0.5, 1.2}, 1.0f},
        {LP_GBDT_LOSS_SOFTMAX, 4, {2.0, 0.0, -1.0, 0.5}, 3.0f},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int K = cases[c].K;
        lp_gbdt_loss_grad(cases[c].loss, K, cases[c].m, cases[c].y, g, h);
        double mm[4], p[4], s = 0.0;
        for (int k = 0; k < K; k++) {
            memcpy(mm, cases[c].m, sizeof mm);
            mm[k] += eps;
            double up = loss_value(cases[c].loss, K, mm, cases[c].y);
            mm[k] -= 2 * eps;
            double dn = loss_value(cases[c].loss, K, mm, cases[c].y);
            assert_true(fabs(g[k] - (up - dn) / (2 * eps)) < 1e-6);
            s += exp(cases[c].m[k]);
        }
        for (int k = 0; k < K; k++)
            p[k] = exp(cases[c].m[k]) / s;
        if (cases[c].loss == LP_GBDT_LOSS_LOGLOSS) {
            double q = 1.0 / (1.0 + exp(-cases[c].m[0]));
            assert_true(fabs(h[0] - q * (1 - q)) < 1e-12);
        } else if (cases[c].loss == LP_GBDT_LOSS_SOFTMAX) {
            for (int k = 0; k < K; k++)
                assert_true(fabs(h[k] - 2 * p[k] * (1 - p[k])) < 1e-12);
        }
    }
}

static void expect_bad(lp_gbdt_opts o, const char *needle)
{
    lp_err err;
    assert_int_equal(lp_gbdt_opts_check(&o, &err), LP_EINVAL);
    if (!strstr(err.msg, needle)) {
        print_error("message '%s' does not name '%s'\n", err.msg, needle);
        fail();
    }
}

/* base_score: NaN starts from the labels (log-odds of the positive rate 0.3); a probability
 * starts LOGLOSS from its log-odds (0.5: margin 0, XGBoost 1.x), a number starts L2 from itself.
 * The first tree then fits the gradients at that start: at margin 0 each of the 7 rows x <= 7
 * (y = 0) has g = 0.5, h = 0.25, so its leaf is -7 * 0.5 / (7 * 0.25 + 1) * lr. */
static void test_base_score(void **state)
{
    (void)state;
    float X[10], y[10];
    for (int i = 0; i < 10; i++) {
        X[i] = (float)(i + 1);
        y[i] = i < 7 ? 0.0f : 1.0f;
    }
    lp_gbdt_opts o = exact_opts();
    o.loss = LP_GBDT_LOSS_LOGLOSS;
    lp_gbdt *m = NULL;
    assert_int_equal(lp_gbdt_fit(X, y, NULL, 10, 1, &o, NULL, NULL, 0, &m, NULL), LP_OK);
    assert_true(fabs(lp_gbdt_base_score(m, 0) - log(0.3 / 0.7)) < 1e-9);
    lp_gbdt_free(m);
    m = NULL;
    o.base_score = 0.5f;
    assert_int_equal(lp_gbdt_fit(X, y, NULL, 10, 1, &o, NULL, NULL, 0, &m, NULL), LP_OK);
    assert_true(fabs(lp_gbdt_base_score(m, 0)) < 1e-12);
    size_t nn;
    const lp_gbdt_node *t = lp_gbdt_tree(m, 0, &nn);
    assert_int_equal(nn, 3);
    assert_true(t[0].threshold >= 7.0f && t[0].threshold < 8.0f);
    const lp_gbdt_node *l = &t[t[0].left];
    assert_true(fabsf(l->value - (float)(-3.5 / 2.75 * 0.3)) < 1e-6f);
    assert_true(fabs(l->cover - 1.75) < 1e-6);
    lp_gbdt_free(m);
    m = NULL;
    o.loss = LP_GBDT_LOSS_L2;
    o.base_score = 3.0f;
    assert_int_equal(lp_gbdt_fit(X, y, NULL, 10, 1, &o, NULL, NULL, 0, &m, NULL), LP_OK);
    assert_true(fabs(lp_gbdt_base_score(m, 0) - 3.0) < 1e-12);
    lp_gbdt_free(m);
}

static void test_bad_options(void **state)
{
    (void)state;
    lp_gbdt_opts d = lp_gbdt_opts_default(), o;
    assert_int_equal(lp_gbdt_opts_check(&d, NULL), LP_OK);
    o = d; o.max_depth = -3; expect_bad(o, "max_depth=-3: must be in [1, 30] or 0 for unlimited");
    o = d; o.max_leaves = 1; expect_bad(o, "max_leaves=1");
    o = d; o.max_leaves = 0; o.max_depth = 0; expect_bad(o, "max_leaves=0 and max_depth=0");
    o = d; o.n_rounds = 0; expect_bad(o, "n_rounds=0");
    o = d; o.learning_rate = 0.0f; expect_bad(o, "learning_rate=0");
    o = d; o.learning_rate = NAN; expect_bad(o, "learning_rate=nan");
    o = d; o.max_bins = 256; expect_bad(o, "max_bins=256: must be in [2, 255]");
    o = d; o.max_bins = 1; expect_bad(o, "max_bins=1");
    o = d; o.lambda = -1.0f; expect_bad(o, "lambda=-1");
    o = d; o.min_child_weight = -0.5f; expect_bad(o, "min_child_weight=-0.5");
    o = d; o.min_split_gain = INFINITY; expect_bad(o, "min_split_gain=inf");
    o = d; o.subsample = 1.5f; expect_bad(o, "subsample=1.5: must be in (0, 1]");
    o = d; o.colsample = 0.0f; expect_bad(o, "colsample=0");
    o = d; o.early_stopping_rounds = -1; expect_bad(o, "early_stopping_rounds=-1");
    o = d; o.bin_sample = 0; expect_bad(o, "bin_sample=0");
    o = d; o.n_threads = -2; expect_bad(o, "n_threads=-2");
    o = d; o.loss = LP_GBDT_LOSS_SOFTMAX; o.n_classes = 1; expect_bad(o, "n_classes=1");
    o = d; o.loss = (lp_gbdt_loss)7; expect_bad(o, "loss=7");
    o = d; o.base_score = INFINITY; expect_bad(o, "base_score=inf");
    o = d; o.loss = LP_GBDT_LOSS_LOGLOSS; o.base_score = 1.0f; expect_bad(o, "base_score=1:");
    o = d; o.loss = LP_GBDT_LOSS_SOFTMAX; o.base_score = 0.5f; expect_bad(o, "base_score=0.5");

    /* bad data */
    float X[4] = {1, 2, 3, 4}, y[4] = {0, 1, 2, 1}, w[4] = {1, 1, -1, 1};
    lp_gbdt *m = NULL;
    lp_err err;
    o = d;
    o.loss = LP_GBDT_LOSS_LOGLOSS;
    assert_int_equal(lp_gbdt_fit(X, y, NULL, 4, 1, &o, NULL, NULL, 0, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "row 2"));
    assert_null(m);
    o = d;
    assert_int_equal(lp_gbdt_fit(X, y, w, 4, 1, &o, NULL, NULL, 0, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "weight of row 2"));
    o.early_stopping_rounds = 3;
    assert_int_equal(lp_gbdt_fit(X, y, NULL, 4, 1, &o, NULL, NULL, 0, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "validation"));
    o = d;
    o.loss = LP_GBDT_LOSS_SOFTMAX;
    o.n_classes = 2;
    assert_int_equal(lp_gbdt_fit(X, y, NULL, 4, 1, &o, NULL, NULL, 0, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "class index in 0..1"));
    assert_int_equal(lp_gbdt_fit(X, y, NULL, 0, 1, &d, NULL, NULL, 0, &m, &err), LP_EINVAL);
    lp_gbdt_free(NULL);
}

/* A seeded data set: (n, d) features with a few NaNs, label from a non-linear rule. */
static void make_data(size_t n, size_t d, uint64_t seed, float *X, float *y, int binary)
{
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            X[i * d + j] = (float)lp_rng_normal(&rng);
        double f = X[i * d] * 1.5 + (X[i * d + 1] > 0.3 ? 1.0 : -0.5) * X[i * d + 2];
        if (lp_rng_uniform(&rng) < 0.05)
            X[i * d + 1] = NAN;
        f += 0.3 * lp_rng_normal(&rng);
        y[i] = binary ? (float)(f > 0) : (float)f;
    }
}

static lp_gbdt *fit_small(const float *X, const float *y, size_t n, size_t d, int threads,
                          uint64_t seed)
{
    lp_gbdt_opts o = lp_gbdt_opts_default();
    o.loss = LP_GBDT_LOSS_LOGLOSS;
    o.n_rounds = 20;
    o.max_leaves = 15;
    o.max_depth = 6;
    o.subsample = 0.8f;
    o.colsample = 0.75f;
    o.bin_sample = 5000;
    o.seed = seed;
    o.n_threads = threads;
    lp_gbdt *m = NULL;
    lp_err err;
    lp_status st = lp_gbdt_fit(X, y, NULL, n, d, &o, NULL, NULL, 0, &m, &err);
    if (st)
        print_error("fit: %s\n", lp_err_text(&err));
    assert_int_equal(st, LP_OK);
    return m;
}

static uint8_t *save(const lp_gbdt *m, size_t *len)
{
    lp_buf b;
    lp_buf_init(&b);
    assert_int_equal(lp_gbdt_save(m, &b, NULL), LP_OK);
    return lp_buf_take(&b, len);
}

/* Save -> load -> predict is bit-identical; same seed -> same bytes; 1 vs 2 threads -> same
 * bytes (the row count spans several histogram blocks); another seed -> other bytes. */
static void test_save_load_reproducible(void **state)
{
    (void)state;
    const size_t n = 70000, d = 4;
    float *X = malloc(n * d * sizeof *X), *y = malloc(n * sizeof *y);
    make_data(n, d, 7, X, y, 1);
    lp_gbdt *a = fit_small(X, y, n, d, 2, 11), *b = fit_small(X, y, n, d, 2, 11);
    lp_gbdt *c = fit_small(X, y, n, d, 1, 11), *e = fit_small(X, y, n, d, 2, 12);
    size_t la, lb, lc, le;
    uint8_t *ba = save(a, &la), *bb = save(b, &lb), *bc = save(c, &lc), *be = save(e, &le);
    assert_true(la == lb && memcmp(ba, bb, la) == 0);
    assert_true(la == lc && memcmp(ba, bc, la) == 0);
    assert_false(la == le && memcmp(ba, be, la) == 0);

    lp_reader r;
    lp_reader_init(&r, ba, la, "test blob");
    lp_gbdt *l = NULL;
    lp_err err;
    assert_int_equal(lp_gbdt_load(&r, &l, &err), LP_OK);
    assert_int_equal(r.pos, la);
    const size_t np = 2000;
    float *pa = malloc(np * sizeof *pa), *pl = malloc(np * sizeof *pl);
    assert_int_equal(lp_gbdt_predict_raw(a, X, np, pa, NULL), LP_OK);
    assert_int_equal(lp_gbdt_predict_raw(l, X, np, pl, NULL), LP_OK);
    assert_memory_equal(pa, pl, np * sizeof *pa);
    for (size_t i = 0; i < 50; i++) {
        float one;
        lp_gbdt_predict_row_raw(l, X + i * d, &one);
        assert_memory_equal(&one, &pa[i], sizeof one);
    }
    /* the saved model separates the classes */
    size_t correct = 0;
    for (size_t i = 0; i < np; i++)
        correct += (pa[i] > 0) == (y[i] > 0.5f);
    assert_true(correct > np * 9 / 10);
    /* the model's own tree walk agrees with the node accessors */
    size_t nn;
    const lp_gbdt_node *t0 = lp_gbdt_tree(l, 0, &nn);
    assert_true(nn >= 3 && nn <= 29);
    assert_null(lp_gbdt_tree(l, lp_gbdt_n_trees(l), &nn));
    lp_gbdt_free(l);
    (void)t0;

    /* every truncation and every single-byte corruption is rejected, never a crash */
    for (size_t cut = 0; cut < la; cut += (cut < 64 ? 1 : 37)) {
        lp_reader_init(&r, ba, cut, "truncated blob");
        assert_int_not_equal(lp_gbdt_load(&r, &l, &err), LP_OK);
        assert_null(l);
        assert_non_null(strstr(err.msg, "blob"));
    }
    uint8_t *cp = malloc(la);
    for (size_t pos = 0; pos < la; pos += (pos < 96 ? 1 : 53)) {
        memcpy(cp, ba, la);
        cp[pos] ^= 0x5a;
        lp_reader_init(&r, cp, la, "corrupted blob");
        assert_int_not_equal(lp_gbdt_load(&r, &l, &err), LP_OK);
        assert_null(l);
    }
    free(cp);
    free(ba); free(bb); free(bc); free(be);
    free(pa); free(pl);
    lp_gbdt_free(a); lp_gbdt_free(b); lp_gbdt_free(c); lp_gbdt_free(e);
    free(X);
    free(y);
}

/* Only features 0, 1, 2 carry signal: the noise feature 3 gets (almost) no gain. */
static void test_importance(void **state)
{
    (void)state;
    const size_t n = 4000, d = 4;
    float *X = malloc(n * d * sizeof *X), *y = malloc(n * sizeof *y);
    make_data(n, d, 3, X, y, 0);
    lp_gbdt_opts o = lp_gbdt_opts_default();
    o.n_rounds = 30;
    o.max_leaves = 8;
    o.min_child_weight = 20.0f;
    o.n_threads = 1;
    lp_gbdt *m = NULL;
    assert_int_equal(lp_gbdt_fit(X, y, NULL, n, d, &o, NULL, NULL, 0, &m, NULL), LP_OK);
    double gain[4], split[4];
    lp_gbdt_feature_importance(m, LP_GBDT_IMPORTANCE_GAIN, gain);
    lp_gbdt_feature_importance(m, LP_GBDT_IMPORTANCE_SPLIT, split);
    double tot = gain[0] + gain[1] + gain[2] + gain[3];
    assert_true(gain[0] > 0.3 * tot);
    assert_true(gain[3] < 0.02 * tot);
    double nsplit = 0;
    size_t nt = lp_gbdt_n_trees(m);
    for (size_t t = 0; t < nt; t++) {
        size_t nn;
        lp_gbdt_tree(m, t, &nn);
        nsplit += (double)(nn - 1) / 2;
    }
    assert_true(fabs(split[0] + split[1] + split[2] + split[3] - nsplit) < 1e-9);
    lp_gbdt_free(m);
    free(X);
    free(y);
}

/* 1000 distinct values, max_bins 4: every threshold is one of at most 3 cuts, placed near
 * the quartiles of x (equal-count bins), and the missing bin is extra. */
static void test_binning_limit(void **state)
{
    (void)state;
    const size_t n = 1000;
    float *X = malloc(n * sizeof *X), *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        X[i] = (float)((i * 7919) % n); /* a permutation of 0..999 */
        y[i] = (float)sin(X[i] / 50.0);
    }
    X[3] = NAN;
    lp_gbdt_opts o = lp_gbdt_opts_default();
    o.max_bins = 4;
    o.n_rounds = 20;
    o.max_leaves = 4;
    o.n_threads = 1;
    lp_gbdt *m = NULL;
    assert_int_equal(lp_gbdt_fit(X, y, NULL, n, 1, &o, NULL, NULL, 0, &m, NULL), LP_OK);
    float seen[8];
    size_t nseen = 0;
    for (size_t t = 0; t < lp_gbdt_n_trees(m); t++) {
        size_t nn;
        const lp_gbdt_node *tn = lp_gbdt_tree(m, t, &nn);
        for (size_t i = 0; i < nn; i++) {
            if (tn[i].feature < 0)
                continue;
            size_t k = 0;
            while (k < nseen && seen[k] != tn[i].threshold)
                k++;
            if (k == nseen) {
                assert_true(nseen < 3);
                seen[nseen++] = tn[i].threshold;
            }
        }
    }
    assert_true(nseen >= 2);
    for (size_t k = 0; k < nseen; k++) {
        /* each cut sits half-way between two neighbouring integers near a quartile */
        float q = seen[k];
        assert_true(q - floorf(q) == 0.5f);
        assert_true(fabsf(q - 249.5f) < 2 || fabsf(q - 499.5f) < 2 || fabsf(q - 749.5f) < 2);
    }
    lp_gbdt_free(m);
    free(X);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_split),
        cmocka_unit_test(test_missing_direction),
        cmocka_unit_test(test_loss_gradients),
        cmocka_unit_test(test_base_score),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_save_load_reproducible),
        cmocka_unit_test(test_importance),
        cmocka_unit_test(test_binning_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
