/*
 * test_cleaner.c - lp_cleaner: outlier detectors on data with planted outliers (robust z, IQR,
 * PCA reconstruction error) and what flag / clip / drop do; de-duplication; imputation edge
 * cases (an all-missing column, a bool column, a 0-row frame, a constant column with MAD 0);
 * apply errors (a missing column, a changed type); options checks; the serialised blob
 * (round trip bit-identical, every truncation and a flipped byte refused, a newer version).
 */
#include "lp_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define ROWS 200
#define ROW_A 10   /* a = 50: far outside a's range */
#define ROW_C 20   /* c = -40 */
#define ROW_AB 30  /* a = 2.5, b = -5: each plausible alone, but b is about 2a elsewhere */

static lp_frame *planted(void)
{
    lp_rng rng;
    lp_rng_seed(&rng, 7);
    double a[ROWS], b[ROWS], c[ROWS];
    for (size_t i = 0; i < ROWS; i++) {
        a[i] = lp_rng_normal(&rng);
        b[i] = 2 * a[i] + 0.1 * lp_rng_normal(&rng);
        c[i] = lp_rng_normal(&rng);
    }
    a[ROW_A] = 50;
    c[ROW_C] = -40;
    a[ROW_AB] = 2.5;
    b[ROW_AB] = -5;
    lp_frame *f = lp_frame_new();
    assert_int_equal(lp_frame_add_numeric(f, "a", LP_COL_KIND_FLOAT, a, NULL, ROWS, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "b", LP_COL_KIND_FLOAT, b, NULL, ROWS, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "c", LP_COL_KIND_FLOAT, c, NULL, ROWS, NULL), LP_OK);
    return f;
}

static lp_frame *clean_with(const lp_frame *f, lp_outlier_method m, lp_outlier_action a,
                            lp_clean_report **rep)
{
    lp_cleaner_opts o = lp_cleaner_opts_default();
    o.outlier = m;
    o.action = a;
    lp_cleaner *c = NULL;
    lp_err err;
    assert_int_equal(lp_cleaner_fit(f, &o, &c, &err), LP_OK);
    lp_frame *g = NULL;
    assert_int_equal(lp_cleaner_apply(c, f, &g, rep, &err), LP_OK);
    lp_cleaner_free(c);
    return g;
}

static const lp_column *col(const lp_frame *f, const char *name)
{
    long j = lp_frame_find(f, name);
    assert_true(j >= 0);
    return lp_frame_col(f, (size_t)j);
}

static void test_robust_z_flag(void **state)
{
    (void)state;
    lp_frame *f = planted();
    lp_clean_report *rep = NULL;
    lp_frame *g = clean_with(f, LP_OUTLIER_METHOD_ROBUST_Z, LP_OUTLIER_ACTION_FLAG, &rep);
    const lp_column *fl = col(g, "_outlier");
    assert_int_equal(fl->kind, LP_COL_KIND_BOOL);
    assert_true(fl->num[ROW_A] == 1 && fl->num[ROW_C] == 1);
    assert_true(fl->num[ROW_AB] == 0); /* univariate z of 2.5 and -2.5 stay below 3.5 */
    size_t flagged = 0;
    for (size_t i = 0; i < ROWS; i++)
        flagged += fl->num[i] == 1;
    assert_int_equal(flagged, rep->outlier_rows);
    assert_true(flagged >= 2 && flagged <= 4);
    assert_true(rep->col[0].outliers >= 1 && rep->col[2].outliers >= 1);
    assert_int_equal(rep->rows_out, ROWS);
    /* values untouched under flag */
    assert_true(col(g, "a")->num[ROW_A] == 50);
    lp_clean_report_free(rep);
    lp_frame_free(g);
    /* applying to the flagged output replaces _outlier instead of adding a second one */
    lp_frame *g2 = clean_with(f, LP_OUTLIER_METHOD_ROBUST_Z, LP_OUTLIER_ACTION_FLAG, NULL);
    lp_frame *g3 = clean_with(g2, LP_OUTLIER_METHOD_ROBUST_Z, LP_OUTLIER_ACTION_FLAG, NULL);
    assert_int_equal(lp_frame_ncols(g3), 4);
    lp_frame_free(g2);
    lp_frame_free(g3);
    lp_frame_free(f);
}

static void test_iqr_clip(void **state)
{
    (void)state;
    lp_frame *f = planted();
    lp_clean_report *rep = NULL;
    lp_frame *g = clean_with(f, LP_OUTLIER_METHOD_IQR, LP_OUTLIER_ACTION_CLIP, &rep);
    assert_int_equal(lp_frame_find(g, "_outlier"), -1);
    const lp_column *a = col(g, "a"), *c = col(g, "c"), *a0 = col(f, "a");
    /* the planted cells are pulled to the fences, well inside the normal range */
    assert_true(a->num[ROW_A] < 5 && a->num[ROW_A] > 1);
    assert_true(c->num[ROW_C] > -5 && c->num[ROW_C] < -1);
    size_t changed = 0;
    double hi = -INFINITY;
    for (size_t i = 0; i < ROWS; i++) {
        changed += a->num[i] != a0->num[i];
        if (a->num[i] > hi)
            hi = a->num[i];
    }
    assert_int_equal(changed, rep->col[0].clipped);
    assert_int_equal(rep->col[0].clipped, rep->col[0].outliers);
    assert_true(a->num[ROW_A] == hi); /* clipped to the upper fence, the new maximum */
    assert_int_equal(rep->rows_out, ROWS);
    lp_clean_report_free(rep);
    lp_frame_free(g);
    lp_frame_free(f);
}

static void test_pca_drop(void **state)
{
    (void)state;
    lp_frame *f = planted();
    lp_clean_report *rep = NULL;
    lp_frame *g = clean_with(f, LP_OUTLIER_METHOD_PCA, LP_OUTLIER_ACTION_DROP, &rep);
    /* rows ROW_A and ROW_AB leave the (a, b) plane; c is independent of a and b, so its own
       direction is a kept component and c = -40 reconstructs well: PCA misses ROW_C by design */
    assert_true(rep->outlier_rows >= 2);
    assert_true(rep->outlier_rows <= 6);
    assert_int_equal(rep->rows_dropped, rep->outlier_rows);
    assert_int_equal(lp_frame_nrows(g), ROWS - rep->outlier_rows);
    const lp_column *a = col(g, "a"), *b = col(g, "b");
    for (size_t i = 0; i < lp_frame_nrows(g); i++) {
        assert_true(a->num[i] != 50);
        assert_false(a->num[i] == 2.5 && b->num[i] == -5); /* the multivariate outlier */
    }
    lp_clean_report_free(rep);
    lp_frame_free(g);
    /* the same row survives the per-column detectors */
    g = clean_with(f, LP_OUTLIER_METHOD_ROBUST_Z, LP_OUTLIER_ACTION_DROP, NULL);
    bool found = false;
    for (size_t i = 0; i < lp_frame_nrows(g); i++)
        found |= col(g, "a")->num[i] == 2.5 && col(g, "b")->num[i] == -5;
    assert_true(found);
    lp_frame_free(g);
    lp_frame_free(f);
}

static void test_constant_and_mad_zero(void **state)
{
    (void)state;
    double k[12], z[12];
    for (int i = 0; i < 12; i++) {
        k[i] = 3;
        z[i] = 0;
    }
    z[11] = 5; /* MAD 0, mean absolute deviation 5/12: the fallback scale flags it */
    lp_frame *f = lp_frame_new();
    assert_int_equal(lp_frame_add_numeric(f, "k", LP_COL_KIND_FLOAT, k, NULL, 12, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "z", LP_COL_KIND_FLOAT, z, NULL, 12, NULL), LP_OK);
    lp_cleaner_opts o = lp_cleaner_opts_default();
    o.outlier = LP_OUTLIER_METHOD_ROBUST_Z;
    o.dedupe = false;
    lp_cleaner *c = NULL;
    assert_int_equal(lp_cleaner_fit(f, &o, &c, NULL), LP_OK);
    lp_frame *g = NULL;
    lp_clean_report *rep = NULL;
    assert_int_equal(lp_cleaner_apply(c, f, &g, &rep, NULL), LP_OK);
    assert_int_equal(rep->col[0].outliers, 0);
    assert_int_equal(rep->col[1].outliers, 1);
    assert_true(col(g, "_outlier")->num[11] == 1);
    char *js = NULL;
    assert_int_equal(lp_cleaner_to_json(c, rep, &js, NULL), LP_OK);
    assert_null(strstr(js, "nan"));
    assert_non_null(strstr(js, "\"fence_low\":null")); /* the constant column has no fence */
    free(js);
    lp_clean_report_free(rep);
    lp_frame_free(g);
    lp_cleaner_free(c);
    lp_frame_free(f);
}

static void test_dedupe_and_edge_imputation(void **state)
{
    (void)state;
    double x[6] = {1, 1, NAN, 4, 5, 6};
    double none[6] = {NAN, NAN, NAN, NAN, NAN, NAN};
    double flag[6] = {1, 1, NAN, 0, 1, NAN};
    const char *s[6] = {"u", "u", NULL, "v", "v", "v"};
    lp_frame *f = lp_frame_new();
    assert_int_equal(lp_frame_add_numeric(f, "x", LP_COL_KIND_FLOAT, x, NULL, 6, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "none", LP_COL_KIND_FLOAT, none, NULL, 6, NULL), 0);
    assert_int_equal(lp_frame_add_numeric(f, "flag", LP_COL_KIND_BOOL, flag, NULL, 6, NULL), 0);
    assert_int_equal(lp_frame_add_text(f, "s", s, 6, NULL), LP_OK);
    lp_cleaner_opts o = lp_cleaner_opts_default();
    o.impute = LP_IMPUTE_METHOD_MEAN;
    lp_cleaner *c = NULL;
    lp_err err;
    assert_int_equal(lp_cleaner_fit(f, &o, &c, &err), LP_OK);
    lp_frame *g = NULL;
    lp_clean_report *rep = NULL;
    assert_int_equal(lp_cleaner_apply(c, f, &g, &rep, &err), LP_OK);
    assert_int_equal(rep->duplicates_removed, 1);
    assert_int_equal(lp_frame_nrows(g), 5);
    /* mean over the de-duplicated rows 1, 4, 5, 6 */
    assert_true(col(g, "x")->num[1] == 4);
    assert_int_equal(lp_column_count_missing(col(g, "none")), 5); /* nothing to learn from */
    assert_int_equal(rep->col[1].imputed, 0);
    const lp_column *fl = col(g, "flag");
    for (size_t i = 0; i < 5; i++)
        assert_true(fl->num[i] == 0 || fl->num[i] == 1); /* mode, not the mean 0.75 */
    assert_true(fl->num[1] == 1);
    assert_string_equal(col(g, "s")->text[1], "v");
    lp_clean_report_free(rep);
    lp_frame_free(g);
    lp_cleaner_free(c);
    /* constant fills even the all-missing column */
    o.impute = LP_IMPUTE_METHOD_CONSTANT;
    o.fill_value = -7;
    assert_int_equal(lp_cleaner_fit(f, &o, &c, &err), LP_OK);
    assert_int_equal(lp_cleaner_apply(c, f, &g, NULL, &err), LP_OK);
    assert_true(col(g, "none")->num[0] == -7);
    assert_string_equal(col(g, "s")->text[1], "missing");
    lp_frame_free(g);
    lp_cleaner_free(c);
    /* soft-impute with too little data falls back per column and does not fail */
    o.impute = LP_IMPUTE_METHOD_SOFT;
    o.outlier = LP_OUTLIER_METHOD_PCA;
    assert_int_equal(lp_cleaner_fit(f, &o, &c, &err), LP_OK);
    assert_int_equal(lp_cleaner_apply(c, f, &g, NULL, &err), LP_OK);
    assert_false(col(g, "x")->missing[1]);
    lp_frame_free(g);
    lp_cleaner_free(c);
    lp_frame_free(f);
}

/* Infinities (lp_parse_double accepts "inf") never turn into NaN cells marked present. */
static void test_infinities(void **state)
{
    (void)state;
    double a[8] = {1, 2, INFINITY, 4, NAN, 6, 7, 8}, b[8] = {2, 4, 6, 8, 10, NAN, 14, -INFINITY};
    double c[8] = {1, 3, 2, 5, 4, 6, NAN, 7};
    lp_frame *f = lp_frame_new();
    assert_int_equal(lp_frame_add_numeric(f, "a", LP_COL_KIND_FLOAT, a, NULL, 8, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "b", LP_COL_KIND_FLOAT, b, NULL, 8, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "c", LP_COL_KIND_FLOAT, c, NULL, 8, NULL), LP_OK);
    for (int m = LP_OUTLIER_METHOD_NONE; m < LP_OUTLIER_METHOD_COUNT_; m++) {
        lp_cleaner_opts o = lp_cleaner_opts_default();
        o.impute = LP_IMPUTE_METHOD_SOFT;
        o.outlier = (lp_outlier_method)m;
        lp_cleaner *cl = NULL;
        lp_err err;
        assert_int_equal(lp_cleaner_fit(f, &o, &cl, &err), LP_OK);
        lp_frame *g = NULL;
        assert_int_equal(lp_cleaner_apply(cl, f, &g, NULL, &err), LP_OK);
        for (size_t j = 0; j < 3; j++) {
            const lp_column *x = lp_frame_col(g, j);
            for (size_t i = 0; i < x->n; i++)
                assert_true(x->missing[i] == (uint8_t)isnan(x->num[i]));
        }
        assert_false(col(g, "c")->missing[6]); /* c is finite: soft-imputed */
        lp_frame_free(g);
        lp_cleaner_free(cl);
    }
    lp_frame_free(f);
}

static void test_zero_rows(void **state)
{
    (void)state;
    lp_frame *f = lp_frame_new();
    double x[1] = {0};
    assert_int_equal(lp_frame_add_numeric(f, "x", LP_COL_KIND_FLOAT, x, NULL, 0, NULL), LP_OK);
    for (int m = 0; m < LP_OUTLIER_METHOD_COUNT_; m++) {
        lp_cleaner_opts o = lp_cleaner_opts_default();
        o.impute = LP_IMPUTE_METHOD_SOFT;
        o.outlier = (lp_outlier_method)m;
        lp_cleaner *c = NULL;
        lp_err err;
        assert_int_equal(lp_cleaner_fit(f, &o, &c, &err), LP_OK);
        lp_frame *g = NULL;
        assert_int_equal(lp_cleaner_apply(c, f, &g, NULL, &err), LP_OK);
        assert_int_equal(lp_frame_nrows(g), 0);
        lp_frame_free(g);
        lp_cleaner_free(c);
    }
    lp_frame_free(f);
}

static void test_apply_errors_and_opts(void **state)
{
    (void)state;
    lp_frame *f = planted();
    lp_cleaner *c = NULL;
    lp_err err;
    assert_int_equal(lp_cleaner_fit(f, NULL, &c, &err), LP_OK);
    lp_frame *g = lp_frame_new(), *out = NULL;
    double v[3] = {1, 2, 3};
    const char *s[3] = {"x", "y", "z"};
    assert_int_equal(lp_frame_add_numeric(g, "a", LP_COL_KIND_FLOAT, v, NULL, 3, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(g, "c", LP_COL_KIND_FLOAT, v, NULL, 3, NULL), LP_OK);
    assert_int_equal(lp_cleaner_apply(c, g, &out, NULL, &err), LP_ENOTFOUND);
    assert_null(out);
    assert_non_null(strstr(err.msg, "'b'"));
    assert_int_equal(lp_frame_add_categorical(g, "b", s, 3, NULL), LP_OK);
    assert_int_equal(lp_cleaner_apply(c, g, &out, NULL, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "'b'"));
    lp_frame_free(g);
    lp_cleaner_free(c);

    lp_cleaner_opts o = lp_cleaner_opts_default();
    o.outlier = LP_OUTLIER_METHOD_PCA;
    o.action = LP_OUTLIER_ACTION_CLIP;
    assert_int_equal(lp_cleaner_fit(f, &o, &c, &err), LP_EINVAL);
    assert_null(c);
    assert_non_null(strstr(err.msg, "clip"));
    o = lp_cleaner_opts_default();
    o.z_threshold = 0;
    assert_int_equal(lp_cleaner_opts_check(&o, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "z_threshold"));
    o = lp_cleaner_opts_default();
    o.svd_lambda = 1.5;
    assert_int_equal(lp_cleaner_opts_check(&o, &err), LP_EINVAL);

    lp_impute_method im;
    lp_outlier_method om;
    lp_outlier_action oa;
    assert_int_equal(lp_impute_method_parse("soft", &im, NULL), LP_OK);
    assert_int_equal(im, LP_IMPUTE_METHOD_SOFT);
    assert_int_equal(lp_outlier_method_parse("robust_z", &om, NULL), LP_OK);
    assert_int_equal(om, LP_OUTLIER_METHOD_ROBUST_Z);
    assert_int_equal(lp_outlier_action_parse("drop", &oa, NULL), LP_OK);
    assert_int_equal(oa, LP_OUTLIER_ACTION_DROP);
    assert_int_equal(lp_outlier_method_parse("zscore", &om, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "'zscore'"));
    assert_string_equal(lp_impute_method_name(LP_IMPUTE_METHOD_MOST_FREQUENT), "most_frequent");
    lp_cleaner_free(NULL);
    lp_clean_report_free(NULL);
    lp_frame_free(f);
}

/* A frame with missing cells in every kind of column, for the round trip. */
static lp_frame *mixed_frame(void)
{
    lp_frame *f = planted();
    lp_rng rng;
    lp_rng_seed(&rng, 99);
    for (size_t j = 0; j < 3; j++)
        for (size_t i = 0; i < ROWS; i++)
            if (lp_rng_uniform(&rng) < 0.15)
                lp_column_set_missing(lp_frame_col(f, j), i);
    const char *cats[4] = {"p", "q", "r", NULL};
    const char *s[ROWS];
    for (size_t i = 0; i < ROWS; i++)
        s[i] = cats[lp_rng_below(&rng, 4)];
    assert_int_equal(lp_frame_add_categorical(f, "cat", s, ROWS, NULL), LP_OK);
    return f;
}

static void assert_frames_identical(const lp_frame *a, const lp_frame *b)
{
    assert_int_equal(lp_frame_nrows(a), lp_frame_nrows(b));
    assert_int_equal(lp_frame_ncols(a), lp_frame_ncols(b));
    for (size_t j = 0; j < lp_frame_ncols(a); j++) {
        const lp_column *x = lp_frame_col(a, j), *y = lp_frame_col(b, j);
        assert_string_equal(x->name, y->name);
        assert_memory_equal(x->missing, y->missing, x->n);
        for (size_t i = 0; i < x->n; i++) {
            char b1[64], b2[64];
            if (x->type == LP_COL_TYPE_NUMERIC)
                assert_memory_equal(&x->num[i], &y->num[i], sizeof(double));
            else
                assert_string_equal(lp_column_cell_str(x, i, b1, sizeof b1),
                                    lp_column_cell_str(y, i, b2, sizeof b2));
        }
    }
}

static void roundtrip(lp_impute_method im, lp_outlier_method om, lp_outlier_action oa)
{
    lp_frame *f = mixed_frame();
    lp_cleaner_opts o = lp_cleaner_opts_default();
    o.impute = im;
    o.outlier = om;
    o.action = oa;
    lp_cleaner *c = NULL, *c2 = NULL;
    lp_err err;
    assert_int_equal(lp_cleaner_fit(f, &o, &c, &err), LP_OK);
    lp_buf b;
    lp_buf_init(&b);
    assert_int_equal(lp_cleaner_save(c, &b, &err), LP_OK);
    assert_int_equal(lp_cleaner_load(b.data, b.len, &c2, &err), LP_OK);
    lp_frame *g1 = NULL, *g2 = NULL;
    lp_clean_report *r1 = NULL, *r2 = NULL;
    assert_int_equal(lp_cleaner_apply(c, f, &g1, &r1, &err), LP_OK);
    assert_int_equal(lp_cleaner_apply(c2, f, &g2, &r2, &err), LP_OK);
    assert_frames_identical(g1, g2);
    assert_int_equal(lp_column_count_missing(col(g1, "a")), 0);
    char *j1 = NULL, *j2 = NULL;
    assert_int_equal(lp_cleaner_to_json(c, r1, &j1, &err), LP_OK);
    assert_int_equal(lp_cleaner_to_json(c2, r2, &j2, &err), LP_OK);
    assert_string_equal(j1, j2);
    /* save(load(blob)) is the same bytes */
    lp_buf b2;
    lp_buf_init(&b2);
    assert_int_equal(lp_cleaner_save(c2, &b2, &err), LP_OK);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.data, b2.data, b.len);

    /* every truncation is refused with a message, never read past the end */
    for (size_t len = 0; len < b.len; len++) {
        lp_cleaner *bad = NULL;
        uint8_t *copy = malloc(len ? len : 1);
        memcpy(copy, b.data, len);
        assert_int_equal(lp_cleaner_load(copy, len, &bad, &err), LP_EFORMAT);
        assert_null(bad);
        assert_true(err.msg[0] != '\0');
        free(copy);
    }
    /* a flipped byte anywhere is caught (CRC) */
    for (size_t k = 8; k < b.len; k += 7) {
        lp_cleaner *bad = NULL;
        b.data[k] ^= 0x5a;
        assert_int_not_equal(lp_cleaner_load(b.data, b.len, &bad, &err), LP_OK);
        assert_null(bad);
        b.data[k] ^= 0x5a;
    }
    /* a newer version with a valid CRC is LP_EVERSION */
    b.data[8] = 9;
    uint32_t crc = lp_crc32(0, b.data, b.len - 4);
    for (int i = 0; i < 4; i++)
        b.data[b.len - 4 + (size_t)i] = (uint8_t)(crc >> (8 * i));
    lp_cleaner *c3 = NULL;
    assert_int_equal(lp_cleaner_load(b.data, b.len, &c3, &err),
                     LP_EVERSION);
    assert_null(c3);
    lp_cleaner_free(c2);
    free(j1);
    free(j2);
    lp_buf_free(&b);
    lp_buf_free(&b2);
    lp_clean_report_free(r1);
    lp_clean_report_free(r2);
    lp_frame_free(g1);
    lp_frame_free(g2);
    lp_cleaner_free(c);
    lp_frame_free(f);
}

static void test_roundtrip_soft_clip(void **state)
{
    (void)state;
    roundtrip(LP_IMPUTE_METHOD_SOFT, LP_OUTLIER_METHOD_ROBUST_Z, LP_OUTLIER_ACTION_CLIP);
}

static void test_roundtrip_median_pca(void **state)
{
    (void)state;
    roundtrip(LP_IMPUTE_METHOD_MEDIAN, LP_OUTLIER_METHOD_PCA, LP_OUTLIER_ACTION_FLAG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_robust_z_flag),
        cmocka_unit_test(test_iqr_clip),
        cmocka_unit_test(test_pca_drop),
        cmocka_unit_test(test_constant_and_mad_zero),
        cmocka_unit_test(test_dedupe_and_edge_imputation),
        cmocka_unit_test(test_infinities),
        cmocka_unit_test(test_zero_rows),
        cmocka_unit_test(test_apply_errors_and_opts),
        cmocka_unit_test(test_roundtrip_soft_clip),
        cmocka_unit_test(test_roundtrip_median_pca),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
