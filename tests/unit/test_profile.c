/*
 * test_profile.c - the data-quality profile on frames with known answers: counts, distinct
 * values, numpy-linear quantiles, IQR outlier counts, top categories, every flag, duplicate
 * rows, the JSON shape (null for NaN) and the aligned table; a 0-row frame.
 */
#include "lp_test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 8

static lp_frame *known_frame(void)
{
    lp_frame *f = lp_frame_new();
    double x[N] = {1, 2, 3, 4, NAN, 100, 2, 3};
    double k[N] = {5, 5, 5, 5, 5, 5, 5, 5};
    double sparse[N] = {NAN, NAN, NAN, NAN, NAN, 1, 2, NAN};
    double uid[N] = {10, 11, 12, 13, 14, 15, 16, 17};
    double width[N] = {3, 1, 4, 15, 9, 2, 6, 5};
    double none[N] = {NAN, NAN, NAN, NAN, NAN, NAN, NAN, NAN};
    const char *color[N] = {"red", "blue", "red", NULL, "green", "red", "blue", NULL};
    const char *mixed[N] = {"1", "2", "abc", "3.5", "x", NULL, "7", "8"};
    assert_int_equal(lp_frame_add_numeric(f, "x", LP_COL_KIND_FLOAT, x, NULL, N, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "const", LP_COL_KIND_INTEGER, k, NULL, N, NULL), 0);
    assert_int_equal(lp_frame_add_categorical(f, "color", color, N, NULL), LP_OK);
    assert_int_equal(lp_frame_add_text(f, "mixed", mixed, N, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "sparse", LP_COL_KIND_FLOAT, sparse, NULL, N, NULL),
                     LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "user_id", LP_COL_KIND_INTEGER, uid, NULL, N, NULL),
                     LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "width", LP_COL_KIND_INTEGER, width, NULL, N, NULL),
                     LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "none", LP_COL_KIND_FLOAT, none, NULL, N, NULL), 0);
    return f;
}

static void test_known_counts(void **state)
{
    (void)state;
    lp_frame *f = known_frame();
    lp_profile *p = NULL;
    lp_err err;
    assert_int_equal(lp_profile_frame(f, NULL, &p, &err), LP_OK);
    assert_int_equal(p->rows, N);
    assert_int_equal(p->cols, 8);
    assert_int_equal(p->duplicate_rows, 0);
    assert_int_equal(p->missing_cells, 1 + 2 + 1 + 6 + 8);

    const lp_col_profile *x = &p->col[0];
    assert_int_equal(x->count, 7);
    assert_int_equal(x->missing, 1);
    assert_int_equal(x->distinct, 5);
    assert_true(x->min == 1 && x->max == 100);
    /* sorted 1 2 2 3 3 4 100; numpy linear: p01 = 1 + 0.06, p75 = 3 + 0.5, p99 = 4 + 0.94 * 96 */
    double want_q[LP_PROFILE_NQ] = {1.06, 2, 3, 3.5, 94.24};
    lp_assert_close(x->q, want_q, LP_PROFILE_NQ, 1e-12, 1e-12, "quantiles of x");
    double mean = 115.0 / 7, ss = 0, v[7] = {1, 2, 3, 4, 100, 2, 3};
    for (int i = 0; i < 7; i++)
        ss += (v[i] - mean) * (v[i] - mean);
    assert_true(fabs(x->mean - mean) < 1e-12);
    assert_true(fabs(x->std - sqrt(ss / 6)) < 1e-12);
    assert_int_equal(x->outliers, 1); /* fences -0.25, 5.75: only 100 */
    assert_false(x->constant || x->likely_id || x->high_missing || x->mixed_types);

    const lp_col_profile *k = &p->col[1];
    assert_true(k->constant);
    assert_int_equal(k->distinct, 1);
    assert_int_equal(k->outliers, 0);
    assert_false(k->likely_id);

    const lp_col_profile *c = &p->col[2];
    assert_int_equal(c->count, 6);
    assert_int_equal(c->missing, 2);
    assert_int_equal(c->distinct, 3);
    assert_int_equal(c->n_top, 3);
    assert_string_equal(c->top[0].value, "red");
    assert_int_equal(c->top[0].count, 3);
    assert_string_equal(c->top[1].value, "blue");
    assert_int_equal(c->top[1].count, 2);
    assert_string_equal(c->top[2].value, "green");
    assert_true(isnan(c->mean) && isnan(c->q[2]));
    assert_false(c->mixed_types || c->constant || c->likely_id);

    const lp_col_profile *m = &p->col[3];
    assert_int_equal(m->count, 7);
    assert_int_equal(m->distinct, 7);
    assert_true(fabs(m->numeric_share - 5.0 / 7) < 1e-12);
    assert_true(m->mixed_types);
    assert_false(m->likely_id); /* text, all distinct, but only 7 < 20 values */
    /* ties broken by value: all counts 1, so "1" "2" "3.5" "7" "8" */
    assert_int_equal(m->n_top, 5);
    assert_string_equal(m->top[0].value, "1");
    assert_string_equal(m->top[4].value, "8");

    assert_true(p->col[4].high_missing);
    assert_int_equal(p->col[4].missing, 6);
    assert_true(p->col[5].likely_id);  /* user_id: name */
    assert_false(p->col[6].likely_id); /* width: "id" inside a word, 8 rows */
    const lp_col_profile *none = &p->col[7];
    assert_int_equal(none->count, 0);
    assert_true(none->high_missing);
    assert_false(none->constant);
    assert_true(isnan(none->min) && isnan(none->std) && isnan(none->q[0]));
    lp_profile_free(p);
    lp_frame_free(f);
}

static void test_id_and_thresholds(void **state)
{
    (void)state;
    enum { M = 24 };
    char buf[M][8];
    const char *code[M];
    double v[M];
    for (int i = 0; i < M; i++) {
        snprintf(buf[i], sizeof buf[i], "c%02d", i);
        code[i] = buf[i];
        v[i] = i % 3 == 0 ? NAN : i;
    }
    lp_frame *f = lp_frame_new();
    assert_int_equal(lp_frame_add_text(f, "code", code, M, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "v", LP_COL_KIND_FLOAT, v, NULL, M, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "userId", LP_COL_KIND_FLOAT, v, NULL, M, NULL), 0);
    lp_profile *p = NULL;
    assert_int_equal(lp_profile_frame(f, NULL, &p, NULL), LP_OK);
    assert_true(p->col[0].likely_id);  /* 24 distinct texts */
    assert_false(p->col[1].likely_id); /* float kind, name without id */
    assert_true(p->col[2].likely_id);  /* camelCase "Id" */
    assert_false(p->col[1].high_missing); /* 8 / 24 missing */
    lp_profile_free(p);
    lp_profile_opts o = lp_profile_opts_default();
    o.high_missing_frac = 0.3;
    assert_int_equal(lp_profile_frame(f, &o, &p, NULL), LP_OK);
    assert_true(p->col[1].high_missing);
    lp_profile_free(p);
    lp_err err;
    o.top_k = 0;
    assert_int_equal(lp_profile_frame(f, &o, &p, &err), LP_EINVAL);
    assert_null(p);
    assert_non_null(strstr(err.msg, "top_k"));
    lp_frame_free(f);
}

/* Identifier columns a model leaves out: named as ids and all distinct, or one-word strings all
 * distinct over LP_ID_MIN_ROWS rows; never the label, free text or an unnamed number. */
static void test_identifier_cols(void **state)
{
    (void)state;
    enum { M = 24 };
    char code[M][16], text[M][32];
    const char *cp[M], *tp[M], *few[M];
    double v[M], uid[M], rep[M];
    for (int i = 0; i < M; i++) {
        snprintf(code[i], sizeof code[i], "%04d-AB%02d", 7000 + i, i);
        snprintf(text[i], sizeof text[i], "review number %d", i);
        cp[i] = code[i], tp[i] = text[i], few[i] = i < 3 ? code[i] : NULL;
        v[i] = i * 1.5;
        uid[i] = 100 + i;
        rep[i] = i % 5;
    }
    lp_frame *f = lp_frame_new();
    assert_int_equal(lp_frame_add_text(f, "customerID", cp, M, NULL), LP_OK);
    assert_int_equal(lp_frame_add_text(f, "review", tp, M, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "amount", LP_COL_KIND_FLOAT, v, NULL, M, NULL), 0);
    assert_int_equal(lp_frame_add_numeric(f, "user_id", LP_COL_KIND_INTEGER, uid, NULL, M, NULL),
                     0);
    assert_int_equal(lp_frame_add_numeric(f, "store_id", LP_COL_KIND_INTEGER, rep, NULL, M, NULL),
                     0);
    assert_int_equal(lp_frame_add_text(f, "ref", few, M, NULL), LP_OK);
    assert_int_equal(lp_frame_add_text(f, "label", cp, M, NULL), LP_OK);
    const char **ids = NULL;
    size_t n = 0;
    assert_int_equal(lp_frame_identifier_cols(f, "label", &ids, &n, NULL), LP_OK);
    /* customerID (one word, distinct), user_id (named, distinct); not review (spaces), amount
     * (a number not named as an id), store_id (repeats), ref (3 values < 20), label */
    assert_int_equal(n, 2);
    assert_string_equal(ids[0], "customerID");
    assert_string_equal(ids[1], "user_id");
    free(ids);
    lp_frame_free(f);
}

static void test_duplicates(void **state)
{
    (void)state;
    double x[7] = {1, 1, NAN, NAN, 0.0, -0.0, 1};
    const char *s[7] = {"a", "a", "a", "a", "b", "b", "b"};
    lp_frame *f = lp_frame_new();
    assert_int_equal(lp_frame_add_numeric(f, "x", LP_COL_KIND_FLOAT, x, NULL, 7, NULL), LP_OK);
    assert_int_equal(lp_frame_add_categorical(f, "s", s, 7, NULL), LP_OK);
    uint8_t dup[7];
    size_t n = 0;
    assert_int_equal(lp_frame_find_duplicates(f, dup, &n, NULL), LP_OK);
    assert_int_equal(n, 3);
    uint8_t want[7] = {0, 1, 0, 1, 0, 1, 0};
    assert_memory_equal(dup, want, 7);
    lp_profile *p = NULL;
    assert_int_equal(lp_profile_frame(f, NULL, &p, NULL), LP_OK);
    assert_int_equal(p->duplicate_rows, 3);
    lp_profile_free(p);
    lp_frame_free(f);
}

static void test_json_and_table(void **state)
{
    (void)state;
    lp_frame *f = known_frame();
    lp_profile *p = NULL;
    assert_int_equal(lp_profile_frame(f, NULL, &p, NULL), LP_OK);
    char *js = NULL;
    assert_int_equal(lp_profile_to_json(p, &js, NULL), LP_OK);
    assert_null(strstr(js, "nan"));
    assert_null(strstr(js, "inf"));
    cJSON *root = cJSON_Parse(js);
    assert_non_null(root);
    assert_int_equal(cJSON_GetObjectItem(root, "rows")->valueint, N);
    assert_int_equal(cJSON_GetObjectItem(root, "missing_cells")->valueint, 18);
    cJSON *cols = cJSON_GetObjectItem(root, "column_profiles");
    assert_int_equal(cJSON_GetArraySize(cols), 8);
    cJSON *x = cJSON_GetArrayItem(cols, 0);
    assert_string_equal(cJSON_GetObjectItem(x, "kind")->valuestring, "float");
    cJSON *q = cJSON_GetObjectItem(x, "quantiles");
    assert_true(fabs(cJSON_GetObjectItem(q, "p99")->valuedouble - 94.24) < 1e-9);
    cJSON *color = cJSON_GetArrayItem(cols, 2);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(color, "mean")));
    cJSON *top0 = cJSON_GetArrayItem(cJSON_GetObjectItem(color, "top"), 0);
    assert_string_equal(cJSON_GetObjectItem(top0, "value")->valuestring, "red");
    cJSON *flags = cJSON_GetObjectItem(cJSON_GetArrayItem(cols, 3), "flags");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(flags, "mixed_types")));
    cJSON *none = cJSON_GetArrayItem(cols, 7);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(none, "std")));
    cJSON_Delete(root);
    free(js);

    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    assert_int_equal(lp_profile_print(p, mem, NULL), LP_OK);
    fclose(mem);
    /* a summary line, a header, one line per column; every line puts the kind at the same
       offset (the name column is padded to the longest name, "user_id", 7 wide) */
    int lines = 0;
    const char *kinds[8] = {"float", "integer", "categorical", "text", "float", "integer",
                            "integer", "float"};
    char *save = NULL;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save), lines++) {
        if (lines == 1)
            assert_memory_equal(l + 9, "kind", 4);
        if (lines >= 2)
            assert_memory_equal(l + 9, kinds[lines - 2], strlen(kinds[lines - 2]));
    }
    assert_int_equal(lines, 10);
    free(text);
    lp_profile_free(p);
    lp_frame_free(f);
}

static void test_zero_rows(void **state)
{
    (void)state;
    lp_frame *f = lp_frame_new();
    double x[1] = {0};
    assert_int_equal(lp_frame_add_numeric(f, "x", LP_COL_KIND_FLOAT, x, NULL, 0, NULL), LP_OK);
    assert_int_equal(lp_frame_add_text(f, "t", NULL, 0, NULL), LP_OK);
    lp_profile *p = NULL;
    assert_int_equal(lp_profile_frame(f, NULL, &p, NULL), LP_OK);
    assert_int_equal(p->rows, 0);
    assert_int_equal(p->col[0].count, 0);
    assert_false(p->col[0].high_missing || p->col[0].constant);
    char *js = NULL;
    assert_int_equal(lp_profile_to_json(p, &js, NULL), LP_OK);
    assert_non_null(strstr(js, "\"missing_share\":null"));
    free(js);
    lp_profile_free(p);
    lp_profile_free(NULL);
    lp_frame_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_counts),  cmocka_unit_test(test_id_and_thresholds),
        cmocka_unit_test(test_duplicates),    cmocka_unit_test(test_json_and_table),
        cmocka_unit_test(test_zero_rows),     cmocka_unit_test(test_identifier_cols),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
