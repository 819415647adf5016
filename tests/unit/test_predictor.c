/*
 * test_predictor.c - the prepared predictor (lp_predictor, model.h) against lp_model_predict:
 * every family, every task, the default pipeline over numeric / integer / bool / date-time /
 * categorical (one-hot and hashed) / text columns, a custom pipeline (min-max, robust, PCA,
 * hashing, passthrough), rows with missing values and unseen categories, single rows and small
 * batches. Outputs must be equal bit for bit (memcmp): the row path applies the same helpers in
 * the same order, so there is no tolerance to name. Also the one-row cleaner against
 * lp_cleaner_apply, and the frame fallback of a model whose cleaner soft-imputes.
 */
#include "lp_test.h"

#include "clean/clean_internal.h"
#include "model/family.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define N_TRAIN 400
#define N_TEST 60

static const char *const colors[] = {"red", "green", "blue", "amber"};
static const char *const notes[] = {"urgent refund please", "just browsing today",
                                    "love it, great value", "broken on arrival, refund",
                                    "where is my parcel"};

/* Raw frame of n rows: x1 float, n_int integer, flag bool, when date-time, color categorical
 * (4 values), city categorical (60 values, hashed by the default pipeline), note text; each
 * with some missing cells. Labels: label (yes/no), cls3 (a/b/c), y (regression). seed 2 and up
 * also draws unseen categories. */
static lp_frame *make_data(size_t n, uint64_t seed)
{
    lp_rng r;
    lp_rng_seed(&r, seed);
    double *x1 = malloc(n * sizeof(double)), *ni = malloc(n * sizeof(double)),
           *fl = malloc(n * sizeof(double)), *when = malloc(n * sizeof(double)),
           *y = malloc(n * sizeof(double));
    const char **color = malloc(n * sizeof(char *)), **city = malloc(n * sizeof(char *)),
               **note = malloc(n * sizeof(char *)), **lab = malloc(n * sizeof(char *)),
               **c3 = malloc(n * sizeof(char *));
    char(*citybuf)[16] = malloc(n * sizeof *citybuf);
    static const char *const c3v[] = {"a", "b", "c"};
    for (size_t i = 0; i < n; i++) {
        double v1 = lp_rng_normal(&r);
        x1[i] = lp_rng_uniform(&r) < 0.1 ? NAN : v1;
        ni[i] = lp_rng_uniform(&r) < 0.05 ? NAN : (double)lp_rng_below(&r, 21);
        fl[i] = lp_rng_uniform(&r) < 0.05 ? NAN : (double)lp_rng_below(&r, 2);
        when[i] =
            lp_rng_uniform(&r) < 0.05 ? NAN : 1672531200.0 + (double)lp_rng_below(&r, 31536000);
        size_t c = lp_rng_below(&r, 4);
        color[i] = lp_rng_uniform(&r) < 0.05               ? NULL
                   : seed >= 2 && lp_rng_uniform(&r) < 0.1 ? "purple"
                                                           : colors[c];
        snprintf(citybuf[i], sizeof citybuf[i], "city%u",
                 (unsigned)lp_rng_below(&r, seed >= 2 ? 80 : 60));
        city[i] = lp_rng_uniform(&r) < 0.05 ? NULL : citybuf[i];
        note[i] = lp_rng_uniform(&r) < 0.1 ? NULL : notes[lp_rng_below(&r, 5)];
        double z = v1 + (c == 0) - 0.1 * (isnan(ni[i]) ? 0 : ni[i] - 10) + 0.3 * lp_rng_normal(&r);
        lab[i] = z > 0.3 ? "yes" : "no";
        c3[i] = c3v[(size_t)(z > 1) + (size_t)(z > -0.2)];
        y[i] = 2 * v1 + (c == 0 ? 1.5 : 0) + 0.2 * (isnan(ni[i]) ? 0 : ni[i]) +
               0.1 * lp_rng_normal(&r);
    }
    lp_frame *f = lp_frame_new();
    assert_int_equal(lp_frame_add_numeric(f, "x1", LP_COL_KIND_FLOAT, x1, NULL, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "n_int", LP_COL_KIND_INTEGER, ni, NULL, n, NULL),
                     LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "flag", LP_COL_KIND_BOOL, fl, NULL, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "when", LP_COL_KIND_DATETIME, when, NULL, n, NULL),
                     LP_OK);
    assert_int_equal(lp_frame_add_categorical(f, "color", color, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_categorical(f, "city", city, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_text(f, "note", note, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_categorical(f, "label", lab, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_categorical(f, "cls3", c3, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "y", LP_COL_KIND_FLOAT, y, NULL, n, NULL), LP_OK);
    free(x1);
    free(ni);
    free(fl);
    free(when);
    free(y);
    free(color);
    free(city);
    free(note);
    free(lab);
    free(c3);
    free(citybuf);
    return f;
}

static const char *const all_labels[] = {"label", "cls3", "y"};

/* Train kind on label, dropping the other two labels (and any of extra_drop). */
static lp_model *train(lp_model_kind kind, const char *label, const char *const *params,
                       const lp_pipeline *pipe)
{
    lp_frame *f = make_data(N_TRAIN, 1);
    const char *drop[2];
    size_t nd = 0;
    for (size_t i = 0; i < 3; i++)
        if (strcmp(all_labels[i], label))
            drop[nd++] = all_labels[i];
    lp_params *p = lp_params_new();
    for (size_t i = 0; params && params[i]; i++)
        assert_int_equal(lp_params_parse(p, params[i], NULL), LP_OK);
    lp_train_opts o = lp_train_opts_default();
    o.kind = kind;
    o.label = label;
    o.params = p;
    o.drop = drop;
    o.n_drop = nd;
    o.pipeline = pipe;
    lp_model *m = NULL;
    lp_err err;
    lp_err_clear(&err);
    lp_status st = lp_model_train(f, NULL, &o, &m, &err);
    if (st)
        fail_msg("training %s on %s: %s", lp_model_kind_name(kind), label, lp_err_text(&err));
    lp_params_free(p);
    lp_frame_free(f);
    return m;
}

/* Row views of f's model inputs (same kinds as in training): num/str arrays (n, k) the caller
 * frees; views (n,). */
static lp_row_view *views_of(const lp_model *m, const lp_frame *f, double **num, const char ***str)
{
    size_t n = lp_frame_nrows(f), k = lp_model_n_inputs(m);
    *num = calloc(n * k, sizeof **num);
    *str = calloc(n * k, sizeof **str);
    lp_row_view *v = calloc(n, sizeof *v);
    for (size_t j = 0; j < k; j++) {
        long c = lp_frame_find(f, lp_model_input_name(m, j));
        assert_true(c >= 0);
        const lp_column *col = lp_frame_col(f, (size_t)c);
        assert_int_equal(col->kind, lp_model_input_kind(m, j));
        for (size_t i = 0; i < n; i++) {
            (*num)[i * k + j] = col->type == LP_COL_TYPE_NUMERIC ? col->num[i] : NAN;
            (*str)[i * k + j] = col->missing[i]                        ? NULL
                                : col->type == LP_COL_TYPE_CATEGORICAL ? col->dict[col->codes[i]]
                                : col->type == LP_COL_TYPE_TEXT        ? col->text[i]
                                                                       : NULL;
        }
    }
    for (size_t i = 0; i < n; i++)
        v[i] = (lp_row_view){*num + i * k, *str + i * k};
    return v;
}

/* Every test row alone, then batches of 1..7 rows: predictor == lp_model_predict, bit for bit. */
static void check_model_chunk(const lp_model *m, const char *want_path, size_t chunk_rows);

static void check_model(const lp_model *m, const char *want_path)
{
    check_model_chunk(m, want_path, 0);
    /* batches of up to 7 rows scored 3 rows at a time (nn: through frames) */
    check_model_chunk(m, want_path, 3);
}

static void check_model_chunk(const lp_model *m, const char *want_path, size_t chunk_rows)
{
    lp_frame *f = make_data(N_TEST, 2);
    double *num;
    const char **str;
    lp_row_view *v = views_of(m, f, &num, &str);
    lp_predictor *pr = NULL;
    lp_err err;
    lp_err_clear(&err);
    assert_int_equal(lp_predictor_new(m, &pr, &err), LP_OK);
    assert_string_equal(lp_predictor_path(pr), want_path);
    if (chunk_rows)
        lp_predictor_set_chunk(pr, chunk_rows * lp_pipeline_n_features(lp_model_pipeline(m)));
    lp_predict_scratch *sc = lp_predict_scratch_new();
    assert_non_null(sc);
    size_t k = lp_predictor_n_outputs(pr);
    double out[8 * 8];
    int32_t cls[8];
    assert_true(k <= 8);
    size_t n = lp_frame_nrows(f);
    for (size_t i = 0; i < n;) {
        size_t b = i < n / 2 ? 1 : 1 + i % 7; /* singles, then batches */
        if (i + b > n)
            b = n - i;
        size_t idx[8];
        for (size_t q = 0; q < b; q++)
            idx[q] = i + q;
        lp_frame *rows = NULL;
        assert_int_equal(lp_frame_take_rows(f, idx, b, &rows, NULL), LP_OK);
        lp_predictions p = {0};
        lp_status st = lp_model_predict(m, rows, &p, &err);
        if (st)
            fail_msg("lp_model_predict rows %zu..%zu: %s", i, i + b, lp_err_text(&err));
        memset(cls, 0x5a, sizeof cls);
        st = lp_predictor_run(pr, v + i, b, sc, out, cls, &err);
        if (st)
            fail_msg("lp_predictor_run rows %zu..%zu: %s", i, i + b, lp_err_text(&err));
        assert_int_equal(p.k, k);
        for (size_t q = 0; q < b * k; q++)
            if (memcmp(&out[q], &p.out[q], sizeof(double)) != 0)
                fail_msg("row %zu output %zu: predictor %.17g, lp_model_predict %.17g", i + q / k,
                         q % k, out[q], p.out[q]);
        for (size_t q = 0; p.cls && q < b; q++)
            assert_int_equal(cls[q], p.cls[q]);
        lp_predictions_clear(&p);
        lp_frame_free(rows);
        i += b;
    }
    lp_predict_scratch_free(sc);
    lp_predictor_free(pr);
    free(v);
    free(num);
    free((void *)str);
    lp_frame_free(f);
}

static void test_gbdt_tasks(void **state)
{
    (void)state;
    static const char *const p[] = {"n_rounds=30", "max_leaves=15", NULL};
    const char *lab[] = {"label", "cls3", "y"};
    for (size_t t = 0; t < 3; t++) {
        lp_model *m = train(LP_MODEL_KIND_GBDT, lab[t], p, NULL);
        check_model(m, "row (text steps allocate)");
        lp_model_free(m);
    }
}

static void test_linear_families(void **state)
{
    (void)state;
    lp_model *m = train(LP_MODEL_KIND_LOGISTIC, "label", NULL, NULL);
    check_model(m, "row (text steps allocate)");
    lp_model_free(m);
    m = train(LP_MODEL_KIND_LOGISTIC, "cls3", NULL, NULL);
    check_model(m, "row (text steps allocate)");
    lp_model_free(m);
    m = train(LP_MODEL_KIND_LINEAR, "y", NULL, NULL);
    check_model(m, "row (text steps allocate)");
    lp_model_free(m);
}

static void test_nn(void **state)
{
    (void)state;
    static const char *const p[] = {"hidden=8", "epochs=3", "batch_size=64", NULL};
    lp_model *m = train(LP_MODEL_KIND_NN, "label", p, NULL);
    check_model(m, "row (text steps allocate)");
    lp_model_free(m);
}

/* Numeric-only steps with PCA, min-max and robust scaling, a hashed and a one-hot categorical
 * with an infrequent group, a passthrough and a dropped column: no text, so no allocation. */
static void test_custom_pipeline(void **state)
{
    (void)state;
    lp_pipeline *pl = lp_pipeline_new();
    lp_step_opts o = lp_step_opts_default(LP_STEP_KIND_SCALE);
    o.scaler = lp_scaler_opts_default(LP_SCALER_KIND_MINMAX);
    const char *c1[] = {"x1", "n_int"};
    assert_int_equal(lp_pipeline_add(pl, c1, 2, &o, NULL), LP_OK);
    o.scaler = lp_scaler_opts_default(LP_SCALER_KIND_ROBUST);
    const char *c2[] = {"n_int", "flag"};
    assert_int_equal(lp_pipeline_add(pl, c2, 2, &o, NULL), LP_OK);
    o = lp_step_opts_default(LP_STEP_KIND_SCALE);
    o.pca_components = 2;
    const char *c3[] = {"n_int", "flag", "when"};
    assert_int_equal(lp_pipeline_add(pl, c3, 3, &o, NULL), LP_OK);
    o = lp_step_opts_default(LP_STEP_KIND_DATETIME);
    const char *c4[] = {"when"};
    assert_int_equal(lp_pipeline_add(pl, c4, 1, &o, NULL), LP_OK);
    o = lp_step_opts_default(LP_STEP_KIND_HASH);
    o.hash_features = 16;
    const char *c5[] = {"city", "n_int"};
    assert_int_equal(lp_pipeline_add(pl, c5, 2, &o, NULL), LP_OK);
    o = lp_step_opts_default(LP_STEP_KIND_ONEHOT);
    o.onehot.min_frequency = 110;
    const char *c6[] = {"color"};
    assert_int_equal(lp_pipeline_add(pl, c6, 1, &o, NULL), LP_OK);
    o = lp_step_opts_default(LP_STEP_KIND_PASSTHROUGH);
    const char *c7[] = {"flag"};
    assert_int_equal(lp_pipeline_add(pl, c7, 1, &o, NULL), LP_OK);
    o = lp_step_opts_default(LP_STEP_KIND_DROP);
    const char *c8[] = {"note"};
    assert_int_equal(lp_pipeline_add(pl, c8, 1, &o, NULL), LP_OK);
    static const char *const p[] = {"n_rounds=20", NULL};
    lp_model *m = train(LP_MODEL_KIND_GBDT, "label", p, pl);
    check_model(m, "row");
    lp_model_free(m);
    m = train(LP_MODEL_KIND_LINEAR, "y", NULL, pl);
    check_model(m, "row");
    lp_model_free(m);
    lp_pipeline_free(pl);
}

/* A saved model whose "cleaner" section is replaced by a soft-impute cleaner fitted on its
 * inputs: the predictor says it goes through frames and still agrees with lp_model_predict. */
static void test_frame_fallback(void **state)
{
    (void)state;
    static const char *const p[] = {"n_rounds=10", NULL};
    lp_model *m = train(LP_MODEL_KIND_GBDT, "y", p, NULL);
    char *path = lp_test_tmpfile("m.lpm"), *path2 = lp_test_tmpfile("m2.lpm");
    assert_int_equal(lp_model_save(m, path, NULL), LP_OK);
    lp_frame *f = make_data(N_TRAIN, 1), *in = NULL;
    const char *names[16];
    size_t k = lp_model_n_inputs(m);
    for (size_t j = 0; j < k; j++)
        names[j] = lp_model_input_name(m, j);
    assert_int_equal(lp_frame_select(f, names, k, &in, NULL), LP_OK);
    lp_cleaner_opts co = lp_cleaner_opts_default();
    co.impute = LP_IMPUTE_METHOD_SOFT;
    co.dedupe = false;
    lp_cleaner *c = NULL;
    assert_int_equal(lp_cleaner_fit(in, &co, &c, NULL), LP_OK);
    lp_buf b;
    lp_buf_init(&b);
    assert_int_equal(lp_cleaner_save(c, &b, NULL), LP_OK);
    lp_lpm *file = NULL;
    assert_int_equal(lp_lpm_load(path, &file, NULL), LP_OK);
    lp_lpm_writer *w = lp_lpm_writer_new();
    for (size_t i = 0; i < lp_lpm_section_count(file); i++) {
        const char *name = lp_lpm_section_name(file, i);
        const void *d;
        size_t n;
        assert_int_equal(lp_lpm_section(file, name, -1, &d, &n, NULL), LP_OK);
        if (!strcmp(name, "cleaner")) {
            d = b.data;
            n = b.len;
        }
        assert_int_equal(lp_lpm_writer_add(w, name, LP_LPM_DTYPE_BYTES, d, n, NULL), LP_OK);
    }
    assert_int_equal(lp_lpm_writer_save(w, lp_lpm_header(file), path2, NULL), LP_OK);
    lp_model *m2 = NULL;
    assert_int_equal(lp_model_load(path2, &m2, NULL), LP_OK);
    check_model(m2, "frame: the cleaner soft-imputes (fold-in per row)");
    lp_model_free(m2);
    lp_lpm_writer_free(w);
    lp_lpm_free(file);
    lp_buf_free(&b);
    lp_cleaner_free(c);
    lp_frame_free(in);
    lp_frame_free(f);
    lp_model_free(m);
    free(path);
    free(path2);
}

/* Clean one row at a time with lp_cleaner_row_apply and compare every cell with
 * lp_cleaner_apply on the same frame: constant and most-frequent fills, IQR clipping. */
static void check_cleaner_rows(const lp_cleaner_opts *co)
{
    lp_frame *tr = make_data(N_TRAIN, 1), *te = make_data(N_TEST, 2);
    const char *cols[] = {"x1", "n_int", "flag", "when", "color", "city", "note"};
    lp_frame *x = NULL, *xt = NULL, *clean = NULL;
    assert_int_equal(lp_frame_select(tr, cols, 7, &x, NULL), LP_OK);
    assert_int_equal(lp_frame_select(te, cols, 7, &xt, NULL), LP_OK);
    lp_cleaner *c = NULL;
    assert_int_equal(lp_cleaner_fit(x, co, &c, NULL), LP_OK);
    assert_int_equal(lp_cleaner_apply(c, xt, &clean, NULL, NULL), LP_OK);
    lp_col_type types[7];
    for (size_t j = 0; j < 7; j++)
        types[j] = lp_frame_col(xt, j)->type;
    lp_cleaner_rowplan plan;
    bool ok = false;
    const char *why = NULL;
    assert_int_equal(lp_cleaner_rowplan_init(c, cols, types, 7, false, &plan, &ok, &why, NULL),
                     LP_OK);
    assert_true(ok);
    for (size_t i = 0; i < lp_frame_nrows(xt); i++) {
        double num[7];
        uint8_t miss[7];
        const char *str[7];
        for (size_t j = 0; j < 7; j++) {
            const lp_column *col = lp_frame_col(xt, j);
            num[j] = col->type == LP_COL_TYPE_NUMERIC ? col->num[i] : NAN;
            miss[j] = col->missing[i];
            str[j] = col->missing[i]                        ? NULL
                     : col->type == LP_COL_TYPE_CATEGORICAL ? col->dict[col->codes[i]]
                     : col->type == LP_COL_TYPE_TEXT        ? col->text[i]
                                                            : NULL;
        }
        lp_cleaner_row_apply(c, &plan, num, miss, str);
        for (size_t j = 0; j < 7; j++) {
            const lp_column *want = lp_frame_col(clean, j);
            assert_int_equal(miss[j], want->missing[i]);
            if (want->missing[i])
                continue;
            if (want->type == LP_COL_TYPE_NUMERIC)
                assert_memory_equal(&num[j], &want->num[i], sizeof(double));
            else
                assert_string_equal(str[j], want->type == LP_COL_TYPE_CATEGORICAL
                                                ? want->dict[want->codes[i]]
                                                : want->text[i]);
        }
    }
    lp_cleaner_rowplan_clear(&plan);
    lp_cleaner_free(c);
    lp_frame_free(clean);
    lp_frame_free(x);
    lp_frame_free(xt);
    lp_frame_free(tr);
    lp_frame_free(te);
}

static void test_cleaner_row(void **state)
{
    (void)state;
    lp_cleaner_opts co = lp_cleaner_opts_default();
    co.impute = LP_IMPUTE_METHOD_CONSTANT;
    co.fill_value = -7.5;
    co.outlier = LP_OUTLIER_METHOD_IQR;
    co.iqr_k = 0.5; /* tight fences, so some test cells are clipped */
    co.action = LP_OUTLIER_ACTION_CLIP;
    check_cleaner_rows(&co);
    co.impute = LP_IMPUTE_METHOD_MOST_FREQUENT;
    co.outlier = LP_OUTLIER_METHOD_ROBUST_Z;
    co.z_threshold = 1.0;
    check_cleaner_rows(&co);
    co.impute = LP_IMPUTE_METHOD_NONE;
    co.outlier = LP_OUTLIER_METHOD_NONE;
    check_cleaner_rows(&co);
}

/* The plan refuses what one row cannot reproduce: flagged outliers, and duplicates removed
 * across several rows. */
static void test_cleaner_row_refusals(void **state)
{
    (void)state;
    lp_frame *tr = make_data(N_TRAIN, 1);
    const char *cols[] = {"x1", "n_int"};
    lp_frame *x = NULL;
    assert_int_equal(lp_frame_select(tr, cols, 2, &x, NULL), LP_OK);
    lp_col_type types[2] = {LP_COL_TYPE_NUMERIC, LP_COL_TYPE_NUMERIC};
    lp_cleaner_opts co = lp_cleaner_opts_default();
    co.outlier = LP_OUTLIER_METHOD_IQR;
    co.action = LP_OUTLIER_ACTION_FLAG;
    lp_cleaner *c = NULL;
    assert_int_equal(lp_cleaner_fit(x, &co, &c, NULL), LP_OK);
    lp_cleaner_rowplan plan;
    bool ok = true;
    const char *why = NULL;
    assert_int_equal(lp_cleaner_rowplan_init(c, cols, types, 2, false, &plan, &ok, &why, NULL),
                     LP_OK);
    assert_false(ok);
    assert_non_null(strstr(why, "outliers"));
    lp_cleaner_rowplan_clear(&plan);
    lp_cleaner_free(c);
    co = lp_cleaner_opts_default(); /* dedupe on */
    assert_int_equal(lp_cleaner_fit(x, &co, &c, NULL), LP_OK);
    assert_int_equal(lp_cleaner_rowplan_init(c, cols, types, 2, false, &plan, &ok, &why, NULL),
                     LP_OK);
    assert_true(ok);
    lp_cleaner_rowplan_clear(&plan);
    assert_int_equal(lp_cleaner_rowplan_init(c, cols, types, 2, true, &plan, &ok, &why, NULL),
                     LP_OK);
    assert_false(ok);
    lp_cleaner_rowplan_clear(&plan);
    lp_cleaner_free(c);
    lp_frame_free(x);
    lp_frame_free(tr);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gbdt_tasks),
        cmocka_unit_test(test_linear_families),
        cmocka_unit_test(test_nn),
        cmocka_unit_test(test_custom_pipeline),
        cmocka_unit_test(test_frame_fallback),
        cmocka_unit_test(test_cleaner_row),
        cmocka_unit_test(test_cleaner_row_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
