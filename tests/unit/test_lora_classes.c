/*
 * test_lora_classes.c - LoRA adapters that add output classes (.lpa version 2) and LoRA on a
 * multiclass logistic base: zero B keeps the base's logits exactly, only the adapter trains,
 * the new class is learned, the file round-trips, version 1 still loads, and bad uses fail;
 * an input support (A over the features non-zero in training) merges and round-trips.
 */
#include "lp_test.h"
#include "lepton/finetune.h"
#include "model/family.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* 3 features; base classes a, b, c by z = x1 - x2; with_d: rows with x3 > 1 are class "d". */
static lp_frame *make_data(size_t n, uint64_t seed, bool with_d)
{
    lp_rng r;
    lp_rng_seed(&r, seed);
    double *x[3];
    const char **lab = malloc(n * sizeof *lab);
    static const char *cls[] = {"a", "b", "c"};
    for (int j = 0; j < 3; j++)
        x[j] = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < 3; j++)
            x[j][i] = lp_rng_normal(&r);
        double z = x[0][i] - x[1][i] + 0.3 * lp_rng_normal(&r);
        lab[i] = with_d && x[2][i] > 1.0 ? "d" : cls[z < -0.5 ? 0 : z < 0.5 ? 1 : 2];
    }
    lp_frame *f = lp_frame_new();
    static const char *names[] = {"x1", "x2", "x3"};
    for (int j = 0; j < 3; j++)
        assert_int_equal(lp_frame_add_numeric(f, names[j], LP_COL_KIND_FLOAT, x[j], NULL, n,
                                              NULL), LP_OK);
    assert_int_equal(lp_frame_add_categorical(f, "label", lab, n, NULL), LP_OK);
    for (int j = 0; j < 3; j++)
        free(x[j]);
    free(lab);
    return f;
}

static lp_model *train(lp_model_kind kind, const char *const *kv)
{
    lp_frame *f = make_data(600, 1, false);
    lp_params *p = lp_params_new();
    for (size_t i = 0; kv && kv[i]; i++)
        assert_int_equal(lp_params_parse(p, kv[i], NULL), LP_OK);
    lp_train_opts o = lp_train_opts_default();
    o.kind = kind;
    o.label = "label";
    o.params = p;
    o.seed = 3;
    lp_model *m = NULL;
    lp_err err;
    if (lp_model_train(f, NULL, &o, &m, &err))
        fail_msg("train: %s", lp_err_text(&err));
    lp_params_free(p);
    lp_frame_free(f);
    return m;
}

static const char *const nn_params[] = {"hidden=16,8", "epochs=30", "patience=0", NULL};

/* Accuracy of p on the frame's labels, over rows whose label is (is_d) or is not "d". */
static double acc_of(const lp_lora *a, const lp_predictions *p, const lp_frame *f, bool is_d)
{
    size_t j, ok = 0, n = 0;
    assert_int_equal(lp_frame_require(f, "label", "t", &j, NULL), LP_OK);
    const lp_column *c = lp_frame_col(f, j);
    for (size_t i = 0; i < p->n; i++) {
        const char *g = c->dict[c->codes[i]];
        if ((strcmp(g, "d") == 0) != is_d)
            continue;
        n++;
        ok += !strcmp(lp_lora_class(a, (size_t)p->cls[i]), g);
    }
    assert_true(n > 20);
    return (double)ok / (double)n;
}

/* The block with every B (and, when zero_c, the new biases) set to 0; layer dims dims[0..nd]. */
static float *zero_b(const lp_lora *a, const size_t *dims, size_t nd, size_t m, bool zero_c)
{
    size_t r = lp_lora_rank(a), off = 0, n = lp_lora_n_params(a);
    float *p = malloc(n * sizeof *p);
    memcpy(p, lp_lora_params(a), n * sizeof *p);
    for (size_t k = 0; k < nd; k++) {
        size_t out = dims[k + 1] + (k + 1 == nd ? m : 0);
        off += r * dims[k];
        memset(p + off, 0, out * r * sizeof *p);
        off += out * r;
    }
    assert_int_equal(off + m, n); /* the documented layout: A, B per target, then c */
    if (zero_c)
        memset(p + off, 0, m * sizeof *p);
    return p;
}

static void test_nn_new_class(void **state)
{
    (void)state;
    lp_model *m = train(LP_MODEL_KIND_NN, nn_params);
    lp_frame *tr = make_data(600, 2, true), *va = make_data(600, 3, true);
    lp_finetune_opts o = lp_finetune_opts_default();
    o.rank = 2;
    o.epochs = 60;
    lp_lora *a = NULL, *fresh = NULL;
    lp_err err;
    /* without the flag an unseen label is an error naming it */
    assert_int_equal(lp_lora_train(m, tr, &o, &a, NULL, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "'d'"));
    o.new_classes = true;
    if (lp_lora_train(m, tr, &o, &a, NULL, &err))
        fail_msg("%s", lp_err_text(&err));
    assert_int_equal(lp_lora_n_classes(a), 4);
    assert_int_equal(lp_lora_n_new_classes(a), 1);
    assert_string_equal(lp_lora_class(a, 3), "d");
    assert_null(lp_lora_class(a, 4));

    /* only the adapter trained: the adapter's view of the base is the model's own */
    assert_int_equal(lp_lora_new(m, &o, &fresh, NULL), LP_OK);
    float *pb = NULL, *pf = NULL;
    size_t nb = 0, nf = 0;
    assert_int_equal(lp_lora_base_params(a, &pb, &nb, NULL), LP_OK);
    assert_int_equal(lp_lora_base_params(fresh, &pf, &nf, NULL), LP_OK);
    assert_int_equal(nb, nf);
    assert_memory_equal(pb, pf, nb * sizeof(float));

    /* the new class is learned, the old ones are kept (measured 0.83 / 0.90) */
    lp_predictions p;
    assert_int_equal(lp_lora_predict(a, va, &p, NULL), LP_OK);
    assert_int_equal(p.k, 4);
    double acc_d = acc_of(a, &p, va, true), acc_old = acc_of(a, &p, va, false);
    assert_true(acc_d > 0.7);
    assert_true(acc_old > 0.75);

    /* zero B: the old classes' logits are the base's bit for bit, the new one is its bias */
    lp_matf *X = NULL;
    assert_int_equal(lp_model_design(m, va, &X, NULL), LP_OK);
    size_t dims[] = {X->cols, 16, 8, 3};
    lp_matf_free(X);
    float *zb = zero_b(a, dims, 3, 1, false);
    float c = zb[lp_lora_n_params(a) - 1];
    assert_true(c != 0.0f);
    lp_lora *z = NULL;
    char *path = lp_test_tmpfile("v2.lpa");
    assert_int_equal(lp_lora_save(a, path, NULL), LP_OK);
    assert_int_equal(lp_lora_load(m, path, &z, NULL), LP_OK);
    assert_int_equal(lp_lora_set_params(z, zb, lp_lora_n_params(z), NULL), LP_OK);
    float *lz = NULL, *l0 = NULL;
    size_t n1, k1, n0, k0;
    assert_int_equal(lp_lora_logits(z, va, &lz, &n1, &k1, NULL), LP_OK);
    assert_int_equal(lp_lora_logits(fresh, va, &l0, &n0, &k0, NULL), LP_OK);
    assert_int_equal(n1, n0);
    assert_int_equal(k1, 4);
    assert_int_equal(k0, 3);
    for (size_t i = 0; i < n1; i++) {
        assert_memory_equal(lz + i * 4, l0 + i * 3, 3 * sizeof(float));
        assert_true(lz[i * 4 + 3] == c);
    }
    /* and the fresh (B = 0) adapter is the model itself */
    lp_predictions pm, pfr;
    assert_int_equal(lp_model_predict(m, va, &pm, NULL), LP_OK);
    assert_int_equal(lp_lora_predict(fresh, va, &pfr, NULL), LP_OK);
    assert_memory_equal(pm.out, pfr.out, pm.n * pm.k * sizeof(double));

    /* the file: version 2, and a loaded adapter predicts as the saved one */
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_int_equal(lp_file_read(path, &bytes, &len, NULL), LP_OK);
    uint32_t ver;
    memcpy(&ver, bytes + 4, 4);
    assert_int_equal(ver, 2);
    free(bytes);
    lp_lora *b = NULL;
    lp_predictions p2;
    assert_int_equal(lp_lora_load(m, path, &b, NULL), LP_OK);
    assert_string_equal(lp_lora_class(b, 3), "d");
    assert_int_equal(lp_lora_predict(b, va, &p2, NULL), LP_OK);
    assert_memory_equal(p.out, p2.out, p.n * p.k * sizeof(double));
    /* version 1 (no new classes) is still what an adapter without them writes and reads */
    char *p1 = lp_test_tmpfile("v1.lpa");
    lp_lora *f1 = NULL;
    assert_int_equal(lp_lora_save(fresh, p1, NULL), LP_OK);
    assert_int_equal(lp_file_read(p1, &bytes, &len, NULL), LP_OK);
    memcpy(&ver, bytes + 4, 4);
    assert_int_equal(ver, 1);
    free(bytes);
    assert_int_equal(lp_lora_load(m, p1, &f1, NULL), LP_OK);
    assert_int_equal(lp_lora_n_classes(f1), 3);

    /* merging cannot hold new classes; the last layer must be a target */
    float *mp = NULL;
    size_t mn = 0;
    assert_int_equal(lp_lora_base_params(a, &mp, &mn, NULL), LP_OK);
    assert_int_equal(lp_lora_merge(a, mp, mn, &err), LP_EUNSUPPORTED);
    lp_lora *bad = NULL;
    o.targets = "0,1";
    assert_int_equal(lp_lora_train(m, tr, &o, &bad, NULL, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "dense2"));
    assert_null(bad);

    free(mp);
    free(lz);
    free(l0);
    free(zb);
    free(pb);
    free(pf);
    free(path);
    free(p1);
    lp_predictions_clear(&p);
    lp_predictions_clear(&p2);
    lp_predictions_clear(&pm);
    lp_predictions_clear(&pfr);
    lp_lora_free(a);
    lp_lora_free(b);
    lp_lora_free(z);
    lp_lora_free(f1);
    lp_lora_free(fresh);
    lp_frame_free(tr);
    lp_frame_free(va);
    lp_model_free(m);
}

static void test_logistic_base(void **state)
{
    (void)state;
    lp_model *m = train(LP_MODEL_KIND_LOGISTIC, NULL);
    lp_frame *tr = make_data(600, 2, true), *va = make_data(600, 3, true);
    lp_finetune_opts o = lp_finetune_opts_default();
    o.rank = 2;
    lp_lora *fresh = NULL, *a = NULL;
    lp_err err;
    if (lp_lora_new(m, &o, &fresh, &err))
        fail_msg("%s", lp_err_text(&err));
    /* B = 0: the logistic model's probabilities (its own double-precision link vs the float
     * one here: within 1e-6) */
    lp_predictions pm, pf;
    assert_int_equal(lp_model_predict(m, va, &pm, NULL), LP_OK);
    assert_int_equal(lp_lora_predict(fresh, va, &pf, NULL), LP_OK);
    assert_int_equal(pm.k, pf.k);
    for (size_t i = 0; i < pm.n * pm.k; i++)
        assert_true(fabs(pm.out[i] - pf.out[i]) < 1e-6);
    o.new_classes = true;
    o.epochs = 60;
    if (lp_lora_train(m, tr, &o, &a, NULL, &err))
        fail_msg("%s", lp_err_text(&err));
    lp_predictions p;
    assert_int_equal(lp_lora_predict(a, va, &p, NULL), LP_OK);
    assert_int_equal(p.k, 4);
    /* the class "d" depends on x3 alone, which a rank-2 delta on the linear layer can use */
    assert_true(acc_of(a, &p, va, true) > 0.7);
    assert_true(acc_of(a, &p, va, false) > 0.75);
    /* a logistic base has no merged nn to write */
    char *path = lp_test_tmpfile("merged.lpm");
    lp_lora_free(fresh);
    fresh = NULL;
    o.new_classes = false;
    assert_int_equal(lp_lora_new(m, &o, &fresh, NULL), LP_OK);
    assert_int_equal(lp_lora_save_merged(fresh, path, &err), LP_EUNSUPPORTED);
    free(path);
    lp_predictions_clear(&pm);
    lp_predictions_clear(&pf);
    lp_predictions_clear(&p);
    lp_lora_free(a);
    lp_lora_free(fresh);
    lp_frame_free(tr);
    lp_frame_free(va);
    lp_model_free(m);
}

/* An input support on an nn whose first layer reads every feature: the support is all of
 * them, A is (r, d); merged and unmerged outputs agree within float rounding, and the v2 file
 * round-trips. On a logistic base with a feature never non-zero in training, the support
 * leaves it out and the adapter is smaller. */
static void test_input_support(void **state)
{
    (void)state;
    lp_model *m = train(LP_MODEL_KIND_NN, nn_params);
    lp_frame *tr = make_data(400, 2, false), *va = make_data(300, 3, false);
    lp_finetune_opts o = lp_finetune_opts_default();
    o.rank = 2;
    o.epochs = 20;
    o.input_support = true;
    lp_lora *a = NULL, *full = NULL, *b = NULL;
    lp_err err;
    if (lp_lora_train(m, tr, &o, &a, NULL, &err))
        fail_msg("%s", lp_err_text(&err));
    o.input_support = false;
    assert_int_equal(lp_lora_train(m, tr, &o, &full, NULL, NULL), LP_OK);
    assert_int_equal(lp_lora_n_params(a), lp_lora_n_params(full)); /* every feature used */
    char *lpa = lp_test_tmpfile("sup.lpa"), *lpm = lp_test_tmpfile("sup_merged.lpm");
    assert_int_equal(lp_lora_save(a, lpa, NULL), LP_OK);
    assert_int_equal(lp_lora_load(m, lpa, &b, NULL), LP_OK);
    assert_memory_equal(lp_lora_params(a), lp_lora_params(b),
                        lp_lora_n_params(a) * sizeof(float));
    assert_int_equal(lp_lora_save_merged(a, lpm, &err), LP_OK);
    lp_model *merged = NULL;
    assert_int_equal(lp_model_load(lpm, &merged, NULL), LP_OK);
    lp_predictions pu, pm, p0;
    assert_int_equal(lp_lora_predict(b, va, &pu, NULL), LP_OK);
    assert_int_equal(lp_model_predict(merged, va, &pm, NULL), LP_OK);
    assert_int_equal(lp_model_predict(m, va, &p0, NULL), LP_OK);
    double moved = 0;
    for (size_t i = 0; i < pu.n * pu.k; i++) {
        assert_true(fabs(pu.out[i] - pm.out[i]) < 1e-5);
        moved = fmax(moved, fabs(pu.out[i] - p0.out[i]));
    }
    assert_true(moved > 1e-3); /* the adapter did change the outputs */
    /* logistic base: the support is exactly the design columns non-zero in the rows (x3 held
     * constant, so whatever its design value it is one value for every row) */
    lp_model *lg = train(LP_MODEL_KIND_LOGISTIC, NULL);
    lp_frame *tz = make_data(200, 4, false);
    size_t j;
    assert_int_equal(lp_frame_require(tz, "x3", "t", &j, NULL), LP_OK);
    lp_column *c = (lp_column *)lp_frame_col(tz, j);
    lp_matf *X = NULL;
    for (size_t i = 0; i < c->n; i++)
        c->num[i] = 0;
    assert_int_equal(lp_model_design(lg, tz, &X, NULL), LP_OK);
    size_t d = X->cols, nz = 0;
    for (size_t q = 0; q < d; q++) {
        bool any = false;
        for (size_t i = 0; i < X->rows; i++)
            any |= X->v[i * d + q] != 0.0f;
        nz += any;
    }
    lp_matf_free(X);
    lp_lora *s = NULL;
    o.input_support = true;
    assert_int_equal(lp_lora_train(lg, tz, &o, &s, NULL, NULL), LP_OK);
    assert_true(nz >= 1 && nz <= d);
    /* per the layout: r |S| + K r */
    assert_int_equal(lp_lora_n_params(s), 2 * nz + 3 * 2);
    lp_lora_free(s);
    lp_model_free(lg);
    lp_frame_free(tz);
    free(lpa);
    free(lpm);
    lp_predictions_clear(&pu);
    lp_predictions_clear(&pm);
    lp_predictions_clear(&p0);
    lp_model_free(merged);
    lp_lora_free(a);
    lp_lora_free(b);
    lp_lora_free(full);
    lp_frame_free(tr);
    lp_frame_free(va);
    lp_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nn_new_class),
        cmocka_unit_test(test_logistic_base),
        cmocka_unit_test(test_input_support),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
