/*
 * test_model.c - the lp_model handle over the gbdt, linear and logistic families: training from
 * raw frames (numeric, categorical, text, missing values), task and class inference, metrics,
 * save/load bit-identity, reproducible files, and every bad-input path named in the issue.
 */
#include "lp_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* n rows: x1, x2 numeric (x2 with 10% missing), color categorical, note text; label "yes" when
 * x1 + 0.5 x2 + (color == red) + noise > 0.5, plus a regression target y. */
static lp_frame *make_data(size_t n, uint64_t seed)
{
    lp_rng r;
    lp_rng_seed(&r, seed);
    double *x1 = malloc(n * sizeof(double)), *x2 = malloc(n * sizeof(double)),
           *y = malloc(n * sizeof(double));
    const char **color = malloc(n * sizeof(char *)), **note = malloc(n * sizeof(char *)),
               **lab = malloc(n * sizeof(char *));
    static const char *colors[] = {"red", "green", "blue"};
    static const char *notes[] = {"urgent refund please", "just browsing", "love it", NULL};
    for (size_t i = 0; i < n; i++) {
        x1[i] = lp_rng_normal(&r);
        double v2 = lp_rng_normal(&r);
        x2[i] = lp_rng_uniform(&r) < 0.1 ? NAN : v2;
        size_t c = lp_rng_below(&r, 3);
        color[i] = colors[c];
        note[i] = notes[lp_rng_below(&r, 4)];
        double z = x1[i] + 0.5 * v2 + (c == 0) + 0.3 * lp_rng_normal(&r);
        lab[i] = z > 0.5 ? "yes" : "no";
        y[i] = 3 * x1[i] - 2 * v2 + (c == 0 ? 1.5 : 0) + 0.1 * lp_rng_normal(&r);
    }
    lp_frame *f = lp_frame_new();
    assert_int_equal(lp_frame_add_numeric(f, "x1", LP_COL_KIND_FLOAT, x1, NULL, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "x2", LP_COL_KIND_FLOAT, x2, NULL, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_categorical(f, "color", color, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_text(f, "note", note, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_categorical(f, "label", lab, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "y", LP_COL_KIND_FLOAT, y, NULL, n, NULL), LP_OK);
    free(x1);
    free(x2);
    free(y);
    free(color);
    free(note);
    free(lab);
    return f;
}

static lp_model *train(const lp_frame *f, lp_model_kind kind, const char *label,
                       const char *drop, const char *param)
{
    lp_train_opts o = lp_train_opts_default();
    o.kind = kind;
    o.label = label;
    const char *d[1] = {drop};
    o.drop = d;
    o.n_drop = drop ? 1 : 0;
    lp_params *p = lp_params_new();
    if (param)
        assert_int_equal(lp_params_parse(p, param, NULL), LP_OK);
    o.params = p;
    lp_model *m = NULL;
    lp_err err;
    lp_status st = lp_model_train(f, NULL, &o, &m, &err);
    if (st)
        fail_msg("training failed: %s", err.msg);
    lp_params_free(p);
    return m;
}

static void test_gbdt_classifier_roundtrip(void **state)
{
    (void)state;
    setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
    lp_frame *f = make_data(2000, 1), *test = make_data(500, 2);
    lp_model *m = train(f, LP_MODEL_KIND_GBDT, "label", "y", "n_rounds=60");
    assert_int_equal(lp_model_task(m), LP_TASK_BINARY);
    assert_int_equal(lp_model_n_classes(m), 2);
    assert_string_equal(lp_model_class(m, 0), "no");
    assert_string_equal(lp_model_class(m, 1), "yes");
    assert_int_equal(lp_model_n_inputs(m), 4);
    assert_non_null(strstr(lp_model_header(m), "\"classes\":[\"no\",\"yes\"]"));
    lp_eval e;
    assert_int_equal(lp_model_evaluate(m, test, &e, NULL), LP_OK);
    assert_int_equal(e.n, 500);
    assert_true(e.accuracy > 0.85); /* Bayes rate is ~0.9 with this noise */
    assert_true(e.auroc > 0.9);
    assert_true(isnan(e.rmse));
    char *js = lp_eval_to_json(&e);
    assert_non_null(strstr(js, "\"auprc\""));
    free(js);

    char *p1 = lp_test_tmpfile("m1.lpm"), *p2 = lp_test_tmpfile("m2.lpm");
    assert_int_equal(lp_model_save(m, p1, NULL), LP_OK);
    lp_model *back;
    assert_int_equal(lp_model_load(p1, &back, NULL), LP_OK);
    lp_predictions a, b;
    assert_int_equal(lp_model_predict(m, test, &a, NULL), LP_OK);
    assert_int_equal(lp_model_predict(back, test, &b, NULL), LP_OK);
    assert_int_equal(a.n, 500);
    assert_int_equal(a.k, 2);
    assert_memory_equal(a.out, b.out, a.n * a.k * sizeof(double)); /* bit-identical */
    assert_memory_equal(a.cls, b.cls, a.n * sizeof(int32_t));
    lp_predictions_clear(&a);
    lp_predictions_clear(&b);

    /* the same seed again gives the same file, byte for byte */
    lp_model *again = train(f, LP_MODEL_KIND_GBDT, "label", "y", "n_rounds=60");
    assert_int_equal(lp_model_save(again, p2, NULL), LP_OK);
    uint8_t *d1, *d2;
    size_t n1, n2;
    assert_int_equal(lp_file_read(p1, &d1, &n1, NULL), LP_OK);
    assert_int_equal(lp_file_read(p2, &d2, &n2, NULL), LP_OK);
    assert_int_equal(n1, n2);
    assert_memory_equal(d1, d2, n1);

    /* a truncated or corrupted model file is an error naming the file, never a crash */
    lp_err err;
    lp_test_write(p2, d1, n1 / 2);
    lp_model *bad = NULL;
    assert_int_equal(lp_model_load(p2, &bad, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "m2.lpm"));
    d1[n1 / 3] ^= 0x40;
    lp_test_write(p2, d1, n1);
    assert_int_not_equal(lp_model_load(p2, &bad, &err), LP_OK);
    assert_null(bad);
    free(d1);
    free(d2);

    /* predicting without a needed column names it */
    size_t cj;
    assert_int_equal(lp_frame_require(test, "color", "t", &cj, NULL), LP_OK);
    lp_frame_drop(test, cj, NULL);
    assert_int_equal(lp_model_predict(m, test, &a, &err), LP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "'color'"));

    lp_model_free(m);
    lp_model_free(back);
    lp_model_free(again);
    lp_frame_free(f);
    lp_frame_free(test);
    free(p1);
    free(p2);
}

static void test_regression_and_logistic(void **state)
{
    (void)state;
    lp_frame *f = make_data(1500, 3), *test = make_data(400, 4);
    lp_model *lin = train(f, LP_MODEL_KIND_LINEAR, "y", "label", "penalty=l2");
    assert_int_equal(lp_model_task(lin), LP_TASK_REGRESSION);
    lp_eval e;
    assert_int_equal(lp_model_evaluate(lin, test, &e, NULL), LP_OK);
    assert_true(e.r2 > 0.95); /* y is linear in the features plus small noise */
    assert_true(isnan(e.accuracy));

    lp_model *gb = train(f, LP_MODEL_KIND_GBDT, "y", "label", NULL);
    assert_int_equal(lp_model_task(gb), LP_TASK_REGRESSION);
    assert_int_equal(lp_model_evaluate(gb, test, &e, NULL), LP_OK);
    assert_true(e.r2 > 0.8);

    lp_model *lr = train(f, LP_MODEL_KIND_LOGISTIC, "label", "y", "C=10");
    assert_int_equal(lp_model_evaluate(lr, test, &e, NULL), LP_OK);
    assert_true(e.accuracy > 0.85);
    lp_model *nn = train(f, LP_MODEL_KIND_NN, "label", "y", "hidden=16");
    assert_int_equal(lp_model_evaluate(nn, test, &e, NULL), LP_OK);
    assert_true(e.accuracy > 0.85);
    char *pn = lp_test_tmpfile("nn.lpm");
    assert_int_equal(lp_model_save(nn, pn, NULL), LP_OK);
    lp_model *nn2;
    assert_int_equal(lp_model_load(pn, &nn2, NULL), LP_OK);
    lp_predictions pa, pb;
    assert_int_equal(lp_model_predict(nn, test, &pa, NULL), LP_OK);
    assert_int_equal(lp_model_predict(nn2, test, &pb, NULL), LP_OK);
    assert_memory_equal(pa.out, pb.out, pa.n * pa.k * sizeof(double));
    lp_predictions_clear(&pa);
    lp_predictions_clear(&pb);
    lp_model *nnr = train(f, LP_MODEL_KIND_NN, "y", "label", "hidden=16");
    assert_int_equal(lp_model_evaluate(nnr, test, &e, NULL), LP_OK);
    assert_true(e.r2 > 0.9); /* target standardized inside, predictions back in its units */
    lp_model_free(nn);
    lp_model_free(nn2);
    lp_model_free(nnr);
    free(pn);

    size_t nv;
    const double *vs = lp_model_valid_scores(lr, &nv);
    assert_int_equal(nv, 300); /* 20% of 1500 held out */
    assert_true(vs[0] >= 0 && vs[0] <= 1);
    lp_model_free(lin);
    lp_model_free(gb);
    lp_model_free(lr);
    lp_frame_free(f);
    lp_frame_free(test);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    lp_frame *f = make_data(200, 5);
    lp_train_opts o = lp_train_opts_default();
    lp_model *m = NULL;
    lp_err err;
    o.label = "nope";
    assert_int_equal(lp_model_train(f, NULL, &o, &m, &err), LP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "'nope'"));

    o.label = "label";
    o.kind = LP_MODEL_KIND_LINEAR;
    assert_int_equal(lp_model_train(f, NULL, &o, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "not a number"));

    o.kind = LP_MODEL_KIND_GBDT;
    lp_params *p = lp_params_new();
    lp_params_parse(p, "max_depth=-3", NULL);
    o.params = p;
    assert_int_equal(lp_model_train(f, NULL, &o, &m, &err), LP_EINVAL);
    assert_string_equal(err.msg, "max_depth=-3: must be an integer in [0, 64]");
    lp_params_free(p);
    p = lp_params_new();
    lp_params_parse(p, "depth=3", NULL);
    o.params = p;
    assert_int_equal(lp_model_train(f, NULL, &o, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "unknown parameter 'depth'"));
    lp_params_free(p);
    o.params = NULL;

    /* one class only */
    const char *same[200];
    for (int i = 0; i < 200; i++)
        same[i] = "a";
    lp_frame_add_categorical(f, "one", same, 200, NULL);
    o.label = "one";
    assert_int_equal(lp_model_train(f, NULL, &o, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "only one class"));

    /* an empty training set */
    lp_frame *empty = NULL;
    assert_int_equal(lp_frame_take_rows(f, NULL, 0, &empty, NULL), LP_OK);
    o.label = "label";
    assert_int_not_equal(lp_model_train(empty, NULL, &o, &m, &err), LP_OK);
    assert_null(m);

    /* a label value never seen in training */
    lp_model *ok = train(f, LP_MODEL_KIND_GBDT, "label", "y", "n_rounds=5");
    size_t lj;
    lp_frame_require(f, "label", "f", &lj, NULL);
    lp_column_set_str(lp_frame_col(f, lj), 7, "maybe", NULL);
    lp_eval e;
    assert_int_equal(lp_model_evaluate(ok, f, &e, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "'maybe'"));
    lp_model_free(ok);
    lp_frame_free(empty);
    lp_frame_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gbdt_classifier_roundtrip),
        cmocka_unit_test(test_regression_and_logistic),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
