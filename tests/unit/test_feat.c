/*
 * test_feat.c - the feat module against scikit-learn 1.2 fixtures (tests/fixtures/feat.txt from
 * gen_feat.py): Standard/MinMax/Robust scalers with NaN and a constant column, OneHotEncoder
 * with unknown values and infrequent grouping, PCA; then the column pipeline: feature names,
 * values, fit -> save -> load -> transform bit-identical, truncated/corrupted blobs, missing
 * and mistyped columns, and the default builder.
 */
#include "lp_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Scalers and PCA are computed in double on both sides; differences are summation order and
 * LAPACK vs numpy's SVD (~1e-15 relative), so 1e-10 leaves margin without hiding a wrong
 * formula (ddof, interpolation) which would differ at 1e-2. */
#define TOL_STAT 1e-10

static void test_scalers_vs_sklearn(void **state)
{
    (void)state;
    lp_fixture *fx = lp_fixture_load("feat.txt");
    size_t n, d, n2, d2;
    double *x = lp_fixture_array(fx, "scale_x", &n, &d);
    double *x2 = lp_fixture_array(fx, "scale_x2", &n2, &d2);
    struct {
        const char *name;
        lp_scaler_opts o;
    } cases[6];
    cases[0].name = "std";
    cases[0].o = lp_scaler_opts_default(LP_SCALER_KIND_STANDARD);
    cases[1].name = "std_nomean";
    cases[1].o = lp_scaler_opts_default(LP_SCALER_KIND_STANDARD);
    cases[1].o.with_mean = false;
    cases[2].name = "minmax";
    cases[2].o = lp_scaler_opts_default(LP_SCALER_KIND_MINMAX);
    cases[3].name = "minmax_m1_2";
    cases[3].o = lp_scaler_opts_default(LP_SCALER_KIND_MINMAX);
    cases[3].o.range_min = -1;
    cases[3].o.range_max = 2;
    cases[4].name = "robust";
    cases[4].o = lp_scaler_opts_default(LP_SCALER_KIND_ROBUST);
    cases[5].name = "robust_q10_90";
    cases[5].o = lp_scaler_opts_default(LP_SCALER_KIND_ROBUST);
    cases[5].o.q_lo = 10;
    cases[5].o.q_hi = 90;
    double *y = malloc(n * d * sizeof(double)), *back = malloc(n * d * sizeof(double));
    for (size_t c = 0; c < 6; c++) {
        lp_scaler *s;
        assert_int_equal(lp_scaler_fit(&cases[c].o, x, n, d, &s, NULL), LP_OK);
        char name[64];
        snprintf(name, sizeof name, "%s_x", cases[c].name);
        double *want = lp_fixture_array(fx, name, NULL, NULL);
        assert_int_equal(lp_scaler_transform(s, x, n, d, y, NULL), LP_OK);
        lp_assert_close(y, want, n * d, TOL_STAT, TOL_STAT, name);
        assert_int_equal(lp_scaler_inverse(s, y, n, d, back, NULL), LP_OK);
        lp_assert_close(back, x, n * d, 1e-9, 1e-12, "inverse");
        free(want);
        snprintf(name, sizeof name, "%s_x2", cases[c].name);
        want = lp_fixture_array(fx, name, NULL, NULL);
        assert_int_equal(lp_scaler_transform(s, x2, n2, d2, y, NULL), LP_OK);
        lp_assert_close(y, want, n2 * d2, TOL_STAT, TOL_STAT, name);
        free(want);
        lp_err err;
        assert_int_equal(lp_scaler_transform(s, x, n, d - 1, y, &err), LP_EINVAL);
        lp_scaler_free(s);
    }
    lp_scaler_opts bad = lp_scaler_opts_default(LP_SCALER_KIND_MINMAX);
    bad.range_min = 1;
    bad.range_max = 1;
    lp_scaler *s;
    assert_int_equal(lp_scaler_fit(&bad, x, n, d, &s, NULL), LP_EINVAL);
    free(y);
    free(back);
    free(x);
    free(x2);
    lp_fixture_free(fx);
}

static void test_onehot_vs_sklearn(void **state)
{
    (void)state;
    lp_fixture *fx = lp_fixture_load("feat.txt");
    size_t ntr, nte;
    char **train = lp_fixture_strings(fx, "oh_train", &ntr);
    char **test = lp_fixture_strings(fx, "oh_test", &nte);
    const char *names[] = {"oh", "oh_minf2", "oh_max3"};
    lp_onehot_opts opts[3] = {lp_onehot_opts_default(), lp_onehot_opts_default(),
                              lp_onehot_opts_default()};
    opts[1].min_frequency = 2;
    opts[2].max_categories = 3;
    for (size_t c = 0; c < 3; c++) {
        lp_onehot *oh;
        assert_int_equal(lp_onehot_fit(&opts[c], (const char *const *)train, ntr, &oh, NULL), LP_OK);
        char name[64];
        snprintf(name, sizeof name, "%s_names", names[c]);
        size_t nn;
        char **want_names = lp_fixture_strings(fx, name, &nn);
        assert_int_equal(lp_onehot_n_outputs(oh), nn);
        for (size_t j = 0; j < nn; j++) {
            const char *cat = lp_onehot_category(oh, j);
            char got[128];
            snprintf(got, sizeof got, "c_%s", cat ? cat : "infrequent_sklearn");
            assert_string_equal(got, want_names[j]);
        }
        snprintf(name, sizeof name, "%s_xt", names[c]);
        double *want = lp_fixture_array(fx, name, NULL, NULL);
        double *got = calloc(nte * nn, sizeof(double));
        for (size_t i = 0; i < nte; i++) {
            long j = lp_onehot_index(oh, test[i]);
            if (j >= 0)
                got[i * nn + (size_t)j] = 1;
        }
        lp_assert_close(got, want, nte * nn, 0, 0, name);
        free(got);
        free(want);
        assert_int_equal(lp_onehot_index(oh, NULL), -1);
        lp_onehot_free(oh);
    }
    const char *none[] = {NULL, NULL};
    lp_onehot *oh;
    lp_err err;
    assert_int_equal(lp_onehot_fit(&opts[0], none, 2, &oh, &err), LP_EINVAL);
    lp_fixture_free(fx);
}

static void test_pca_vs_sklearn(void **state)
{
    (void)state;
    lp_fixture *fx = lp_fixture_load("feat.txt");
    size_t n, d, nq;
    double *x = lp_fixture_array(fx, "pca_x", &n, &d);
    double *q = lp_fixture_array(fx, "pca_q", &nq, NULL);
    lp_pca *p;
    assert_int_equal(lp_pca_fit(x, n, d, 3, &p, NULL), LP_OK);
    const struct {
        const char *name;
        const double *got;
        size_t len;
    } parts[] = {{"pca_mean", lp_pca_mean(p), d},
                 {"pca_components", lp_pca_components(p), 3 * d},
                 {"pca_ev", lp_pca_explained_variance(p), 3},
                 {"pca_evr", lp_pca_explained_variance_ratio(p), 3},
                 {"pca_sv", lp_pca_singular_values(p), 3}};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        double *want = lp_fixture_array(fx, parts[i].name, NULL, NULL);
        lp_assert_close(parts[i].got, want, parts[i].len, TOL_STAT, 1e-9, parts[i].name);
        free(want);
    }
    double y[4 * 3], back[4 * 5];
    lp_pca_transform(p, q, nq, y);
    double *want = lp_fixture_array(fx, "pca_tq", NULL, NULL);
    lp_assert_close(y, want, nq * 3, TOL_STAT, 1e-9, "pca transform");
    free(want);
    lp_pca_inverse(p, y, nq, back);
    want = lp_fixture_array(fx, "pca_inv", NULL, NULL);
    lp_assert_close(back, want, nq * d, TOL_STAT, 1e-9, "pca inverse");
    free(want);
    lp_pca_free(p);
    lp_err err;
    assert_int_equal(lp_pca_fit(x, n, d, 6, &p, &err), LP_EINVAL);
    x[7] = NAN;
    assert_int_equal(lp_pca_fit(x, n, d, 2, &p, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "row 1 column 2"));
    free(x);
    free(q);
    lp_fixture_free(fx);
}

/* A frame with every kind: amount (float, one NaN), qty (integer), color (categorical), city
 * (categorical), note (text), ts (datetime). */
static lp_frame *shop_frame(size_t drop_col)
{
    enum { N = 6 };
    double amount[N] = {10, 20, NAN, 40, 50, 60};
    double qty[N] = {1, 2, 3, 4, 5, 6};
    const char *color[N] = {"red", "blue", "red", NULL, "green", "red"};
    const char *city[N] = {"oslo", "rome", "lima", "oslo", "kyiv", "rome"};
    const char *note[N] = {"refund please", "card declined", NULL, "refund my card",
                           "great service", "refund refund"};
    /* 1970-01-05T06:00Z (Monday), +1 day, ... */
    double ts[N] = {4 * 86400 + 6 * 3600, 5 * 86400 + 6 * 3600, 6 * 86400, 7 * 86400 + 12 * 3600,
                    8 * 86400 + 18 * 3600, 9 * 86400};
    lp_frame *f = lp_frame_new();
    if (drop_col != 0)
        assert_int_equal(lp_frame_add_numeric(f, "amount", LP_COL_KIND_FLOAT, amount, NULL, N, NULL), LP_OK);
    if (drop_col != 1)
        assert_int_equal(lp_frame_add_numeric(f, "qty", LP_COL_KIND_INTEGER, qty, NULL, N, NULL), LP_OK);
    if (drop_col != 2)
        assert_int_equal(lp_frame_add_categorical(f, "color", color, N, NULL), LP_OK);
    if (drop_col != 3)
        assert_int_equal(lp_frame_add_categorical(f, "city", city, N, NULL), LP_OK);
    if (drop_col != 4)
        assert_int_equal(lp_frame_add_text(f, "note", note, N, NULL), LP_OK);
    if (drop_col != 5)
        assert_int_equal(lp_frame_add_numeric(f, "ts", LP_COL_KIND_DATETIME, ts, NULL, N, NULL), LP_OK);
    return f;
}

static lp_pipeline *shop_pipeline(void)
{
    lp_pipeline *p = lp_pipeline_new();
    const char *num[] = {"amount", "qty"}, *color[] = {"color"}, *city[] = {"city"},
               *note[] = {"note"}, *ts[] = {"ts"};
    lp_step_opts o = lp_step_opts_default(LP_STEP_KIND_SCALE);
    assert_int_equal(lp_pipeline_add(p, num, 2, &o, NULL), LP_OK);
    o = lp_step_opts_default(LP_STEP_KIND_ONEHOT);
    assert_int_equal(lp_pipeline_add(p, color, 1, &o, NULL), LP_OK);
    o = lp_step_opts_default(LP_STEP_KIND_HASH);
    o.hash_features = 8;
    assert_int_equal(lp_pipeline_add(p, city, 1, &o, NULL), LP_OK);
    o = lp_step_opts_default(LP_STEP_KIND_TFIDF);
    o.text.analyzer.ngram_max = 1;
    assert_int_equal(lp_pipeline_add(p, note, 1, &o, NULL), LP_OK);
    o = lp_step_opts_default(LP_STEP_KIND_DATETIME);
    assert_int_equal(lp_pipeline_add(p, ts, 1, &o, NULL), LP_OK);
    return p;
}

static long feature(const lp_pipeline *p, const char *name)
{
    for (size_t j = 0; j < lp_pipeline_n_features(p); j++)
        if (!strcmp(lp_pipeline_feature_name(p, j), name))
            return (long)j;
    fail_msg("no feature '%s'", name);
    return -1;
}

static void test_pipeline_fit_transform(void **state)
{
    (void)state;
    lp_frame *f = shop_frame(99);
    lp_pipeline *p = shop_pipeline();
    lp_err err;
    assert_int_equal(lp_pipeline_fit(p, f, &err), LP_OK);
    /* 2 scaled + 3 colors + 8 buckets + 7 terms (card declined great my please refund service)
     * + 5 datetime */
    assert_int_equal(lp_pipeline_n_features(p), 2 + 3 + 8 + 7 + 5);
    assert_string_equal(lp_pipeline_feature_name(p, 0), "amount");
    assert_string_equal(lp_pipeline_feature_name(p, 2), "color=blue");
    assert_string_equal(lp_pipeline_feature_name(p, 5), "city:hash:0");
    assert_string_equal(lp_pipeline_feature_name(p, 13), "note:tfidf:card");
    assert_string_equal(lp_pipeline_feature_name(p, 20), "ts:hour_sin");
    assert_null(lp_pipeline_feature_name(p, 25));
    lp_matf *m;
    assert_int_equal(lp_pipeline_transform_dense(p, f, &m, &err), LP_OK);
    size_t d = m->cols;
    /* amount: mean of 10,20,40,50,60 = 36, population std sqrt(344) */
    assert_float_equal(m->v[0 * d + 0], (10 - 36) / sqrt(344.0), 1e-6);
    assert_true(isnan(m->v[2 * d + 0]));
    /* color: row 3 missing -> zeros; row 4 green */
    assert_float_equal(m->v[4 * d + feature(p, "color=green")], 1, 0);
    assert_float_equal(m->v[3 * d + 2] + m->v[3 * d + 3] + m->v[3 * d + 4], 0, 0);
    /* hashing: each row has exactly one +-1 among the city buckets */
    for (size_t i = 0; i < 6; i++) {
        double a = 0;
        for (size_t j = 5; j < 13; j++)
            a += fabs(m->v[i * d + j]);
        assert_float_equal(a, 1, 0);
    }
    /* datetime: row 0 is Monday 06:00 -> hour angle pi/2, weekday 0 */
    assert_float_equal(m->v[0 * d + feature(p, "ts:hour_sin")], 1, 1e-6);
    assert_float_equal(m->v[0 * d + feature(p, "ts:dow_sin")], 0, 1e-6);
    assert_float_equal(m->v[0 * d + feature(p, "ts:dow_cos")], 1, 1e-6);
    /* tfidf row 5 "refund refund" has only the refund term, l2-normalised */
    assert_float_equal(m->v[5 * d + feature(p, "note:tfidf:refund")], 1, 1e-6);
    lp_matf_free(m);

    /* a frame with columns in another order and an unseen category transforms fine */
    lp_frame *g = shop_frame(99);
    lp_column *cc = lp_frame_col(g, 2);
    assert_int_equal(lp_column_set_str(cc, 0, "purple", NULL), LP_OK);
    lp_csr *x;
    assert_int_equal(lp_pipeline_transform(p, g, &x, &err), LP_OK);
    assert_int_equal(lp_csr_check(x, "x", NULL), LP_OK);
    for (size_t q = x->indptr[0]; q < x->indptr[1]; q++)
        assert_true(x->indices[q] < 2 || x->indices[q] > 4);
    lp_csr_free(x);
    lp_frame_free(g);

    /* missing column: a clear error naming it */
    g = shop_frame(3);
    assert_int_equal(lp_pipeline_transform(p, g, &x, &err), LP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "'city'"));
    assert_null(x);
    lp_frame_free(g);
    /* a numeric step over a text column */
    lp_pipeline *bad = lp_pipeline_new();
    const char *note[] = {"note"};
    lp_step_opts o = lp_step_opts_default(LP_STEP_KIND_SCALE);
    assert_int_equal(lp_pipeline_add(bad, note, 1, &o, NULL), LP_OK);
    assert_int_equal(lp_pipeline_fit(bad, f, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "'note' is text"));
    lp_pipeline_free(bad);
    lp_pipeline_free(p);
    lp_frame_free(f);
}

static void test_pipeline_roundtrip(void **state)
{
    (void)state;
    lp_frame *f = shop_frame(99);
    lp_pipeline *p = shop_pipeline();
    /* PCA over the datetime block too */
    const char *ts[] = {"ts", "qty"};
    lp_step_opts o = lp_step_opts_default(LP_STEP_KIND_PASSTHROUGH);
    o.pca_components = 2;
    assert_int_equal(lp_pipeline_add(p, ts, 2, &o, NULL), LP_OK);
    lp_err err;
    assert_int_equal(lp_pipeline_fit(p, f, &err), LP_OK);
    assert_string_equal(lp_pipeline_feature_name(p, lp_pipeline_n_features(p) - 1), "pca5:1");
    lp_buf b;
    lp_buf_init(&b);
    assert_int_equal(lp_pipeline_save(p, &b, &err), LP_OK);
    lp_pipeline *q;
    assert_int_equal(lp_pipeline_load(b.data, b.len, &q, &err), LP_OK);
    lp_csr *x1, *x2;
    assert_int_equal(lp_pipeline_transform(p, f, &x1, NULL), LP_OK);
    assert_int_equal(lp_pipeline_transform(q, f, &x2, NULL), LP_OK);
    assert_int_equal(x1->nnz, x2->nnz);
    assert_int_equal(x1->cols, x2->cols);
    assert_memory_equal(x1->indptr, x2->indptr, (x1->rows + 1) * sizeof(size_t));
    assert_memory_equal(x1->indices, x2->indices, x1->nnz * sizeof(uint32_t));
    assert_memory_equal(x1->values, x2->values, x1->nnz * sizeof(float)); /* bit-identical */
    for (size_t j = 0; j < lp_pipeline_n_features(p); j++)
        assert_string_equal(lp_pipeline_feature_name(p, j), lp_pipeline_feature_name(q, j));
    lp_csr_free(x1);
    lp_csr_free(x2);
    lp_pipeline_free(q);

    /* every truncation and a flipped byte are clean errors */
    for (size_t cut = 0; cut < b.len; cut += (cut < 64 ? 1 : 7)) {
        q = (lp_pipeline *)1;
        assert_int_not_equal(lp_pipeline_load(b.data, cut, &q, &err), LP_OK);
        assert_null(q);
    }
    for (size_t pos = 8; pos < b.len; pos += 97) {
        b.data[pos] ^= 0x40;
        assert_int_equal(lp_pipeline_load(b.data, b.len, &q, &err), LP_EFORMAT);
        assert_non_null(strstr(err.msg, "CRC"));
        b.data[pos] ^= 0x40;
    }
    b.data[4] = 7;
    assert_int_equal(lp_pipeline_load(b.data, b.len, &q, &err), LP_EVERSION);
    lp_buf_free(&b);
    lp_pipeline_free(p);

    p = lp_pipeline_new();
    lp_buf_init(&b);
    assert_int_equal(lp_pipeline_save(p, &b, &err), LP_ESTATE);
    lp_buf_free(&b);
    lp_pipeline_free(p);
    lp_pipeline_free(NULL);
    lp_frame_free(f);
}

static void test_pipeline_default(void **state)
{
    (void)state;
    lp_frame *f = shop_frame(99);
    lp_pipeline_default_opts o = lp_pipeline_default_opts_default();
    const char *ex[] = {"qty"};
    o.exclude = ex;
    o.n_exclude = 1;
    o.onehot_max_card = 3; /* color (3 values) one-hot, city (4) hashed */
    o.hash_features = 16;
    lp_pipeline *p;
    lp_err err;
    assert_int_equal(lp_pipeline_default(f, &o, &p, &err), LP_OK);
    assert_int_equal(lp_pipeline_fit(p, f, &err), LP_OK);
    assert_string_equal(lp_pipeline_feature_name(p, 0), "amount");
    assert_string_equal(lp_pipeline_feature_name(p, 1), "color=blue");
    assert_string_equal(lp_pipeline_feature_name(p, 4), "city:hash:0");
    assert_string_equal(lp_pipeline_feature_name(p, 20), "ts:hour_sin");
    for (size_t j = 0; j < lp_pipeline_n_features(p); j++)
        assert_null(strstr(lp_pipeline_feature_name(p, j), "qty"));
    assert_string_equal(lp_pipeline_feature_name(p, lp_pipeline_n_features(p) - 1),
                        "note:tfidf:service");
    lp_pipeline_free(p);
    ex[0] = "qtty";
    assert_int_equal(lp_pipeline_default(f, &o, &p, &err), LP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "'qtty'"));
    lp_frame_free(f);

    /* a column with no value (a trailing comma's empty "Unnamed: 32") gets no step */
    const char csv[] = "x,label,\n1,a,\n2,b,\n3,a,\n";
    assert_int_equal(lp_frame_parse_csv(csv, strlen(csv), "t.csv", NULL, &f, &err), LP_OK);
    assert_int_equal(lp_frame_ncols(f), 3);
    const char *ex2[] = {"label"};
    o = lp_pipeline_default_opts_default();
    o.exclude = ex2;
    o.n_exclude = 1;
    assert_int_equal(lp_pipeline_default(f, &o, &p, &err), LP_OK);
    assert_int_equal(lp_pipeline_fit(p, f, &err), LP_OK);
    assert_int_equal(lp_pipeline_n_features(p), 1);
    assert_string_equal(lp_pipeline_feature_name(p, 0), "x");
    lp_pipeline_free(p);
    lp_frame_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalers_vs_sklearn),   cmocka_unit_test(test_onehot_vs_sklearn),
        cmocka_unit_test(test_pca_vs_sklearn),       cmocka_unit_test(test_pipeline_fit_transform),
        cmocka_unit_test(test_pipeline_roundtrip),   cmocka_unit_test(test_pipeline_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
