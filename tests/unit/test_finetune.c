/*
 * test_finetune.c - the finetune module: LoRA adapters on nn models (zero B equals the base bit
 * for bit, merged equals unmerged within float rounding, only adapter parameters train, .lpa
 * round trip, wrong base and too-large rank refused), head-only tuning leaves the body frozen,
 * continued boosting, warm-started linear and logistic models, and the bad-input paths.
 */
#include "lp_test.h"
#include "lepton/finetune.h"
#include "lepton/registry.h"
#include "model/family.h"
#include "model/gbdt.h"
#include "model/linear.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* n rows of x1..x3 and a 3-class label from a linear score (x1 - x2 + tilt x3) with noise;
 * shift moves x1, so a "new" data set differs from the base's. Regression target y = 2 x1 - x2 + 0.5 x3 + noise. */
static lp_frame *make_data_tilt(size_t n, uint64_t seed, double shift, double tilt)
{
    lp_rng r;
    lp_rng_seed(&r, seed);
    double *x[3], *y = malloc(n * sizeof *y);
    const char **lab = malloc(n * sizeof *lab);
    static const char *cls[] = {"a", "b", "c"};
    for (int j = 0; j < 3; j++)
        x[j] = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < 3; j++)
            x[j][i] = lp_rng_normal(&r) + (j == 0 ? shift : 0);
        double z = x[0][i] - x[1][i] + tilt * x[2][i] + 0.4 * lp_rng_normal(&r);
        lab[i] = cls[z < -0.5 ? 0 : z < 0.5 ? 1 : 2];
        y[i] = 2 * x[0][i] - x[1][i] + 0.5 * x[2][i] + 0.1 * lp_rng_normal(&r);
    }
    lp_frame *f = lp_frame_new();
    static const char *names[] = {"x1", "x2", "x3"};
    for (int j = 0; j < 3; j++)
        assert_int_equal(lp_frame_add_numeric(f, names[j], LP_COL_KIND_FLOAT, x[j], NULL, n,
                                              NULL), LP_OK);
    assert_int_equal(lp_frame_add_categorical(f, "label", lab, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "y", LP_COL_KIND_FLOAT, y, NULL, n, NULL), LP_OK);
    for (int j = 0; j < 3; j++)
        free(x[j]);
    free(y);
    free(lab);
    return f;
}

static lp_frame *make_data(size_t n, uint64_t seed, double shift)
{
    return make_data_tilt(n, seed, shift, 0);
}

static lp_frame *without(const lp_frame *f, const char *col)
{
    lp_frame *g = NULL;
    assert_int_equal(lp_frame_clone(f, &g, NULL), LP_OK);
    size_t j;
    assert_int_equal(lp_frame_require(g, col, "test", &j, NULL), LP_OK);
    assert_int_equal(lp_frame_drop(g, j, NULL), LP_OK);
    return g;
}

static lp_model *train(const lp_frame *f, lp_model_kind kind, const char *label,
                       const char *const *kv, uint64_t seed)
{
    lp_frame *g = without(f, strcmp(label, "y") ? "y" : "label");
    lp_params *p = lp_params_new();
    for (size_t i = 0; kv && kv[i]; i++)
        assert_int_equal(lp_params_parse(p, kv[i], NULL), LP_OK);
    lp_train_opts o = lp_train_opts_default();
    o.kind = kind;
    o.label = label;
    o.params = p;
    o.seed = seed;
    lp_model *m = NULL;
    lp_err err;
    lp_status st = lp_model_train(g, NULL, &o, &m, &err);
    if (st)
        fail_msg("train: %s", lp_err_text(&err));
    lp_params_free(p);
    lp_frame_free(g);
    return m;
}

static const char *const nn_params[] = {"hidden=16,8", "epochs=30", "patience=0", NULL};

static lp_model *nn_base(uint64_t seed)
{
    lp_frame *f = make_data(600, 1, 0);
    lp_model *m = train(f, LP_MODEL_KIND_NN, "label", nn_params, seed);
    lp_frame_free(f);
    return m;
}

/* The new data for the classification tests: shifted, without the regression column. */
static lp_frame *new_data(size_t n)
{
    lp_frame *f = make_data(n, 2, 0.8);
    lp_frame *g = without(f, "y");
    lp_frame_free(f);
    return g;
}

static void test_zero_b_is_base(void **state)
{
    (void)state;
    lp_model *m = nn_base(7);
    lp_frame *rows = new_data(200);
    lp_finetune_opts o = lp_finetune_opts_default();
    o.rank = 2; /* at most min(in, out) of every layer: 3 inputs */
    lp_lora *a = NULL;
    lp_err err;
    if (lp_lora_new(m, &o, &a, &err))
        fail_msg("%s", lp_err_text(&err));
    /* B = 0, A random: the adapter's delta is exactly zero */
    lp_predictions pa, pb, p0;
    assert_int_equal(lp_lora_predict(a, rows, &pa, NULL), LP_OK);
    assert_int_equal(lp_model_predict(m, rows, &pb, NULL), LP_OK);
    assert_int_equal(pa.n * pa.k, pb.n * pb.k);
    /* the same forward without any adapter (all-zero block) and the model's own path */
    float *zero = calloc(lp_lora_n_params(a), sizeof(float));
    const float *pa_blk = lp_lora_params(a);
    bool any_a = false;
    for (size_t i = 0; i < lp_lora_n_params(a); i++)
        any_a |= pa_blk[i] != 0.0f;
    assert_true(any_a); /* A is not zero: only B's zeros make the delta vanish */
    assert_int_equal(lp_lora_set_params(a, zero, lp_lora_n_params(a), NULL), LP_OK);
    assert_int_equal(lp_lora_predict(a, rows, &p0, NULL), LP_OK);
    assert_memory_equal(pa.out, p0.out, pa.n * pa.k * sizeof(double));
    assert_memory_equal(pa.out, pb.out, pa.n * pa.k * sizeof(double));
    assert_memory_equal(pa.cls, pb.cls, pa.n * sizeof(int32_t));
    free(zero);
    lp_predictions_clear(&pa);
    lp_predictions_clear(&pb);
    lp_predictions_clear(&p0);
    lp_lora_free(a);
    lp_frame_free(rows);
    lp_model_free(m);
}

/* Merged and unmerged outputs differ only by float rounding of W + s B A against
 * W x + s B (A x): probabilities within 1e-5 (they are ~1e-7 apart here). */
#define MERGE_TOL 1e-5

static void test_train_merge_roundtrip(void **state)
{
    (void)state;
    lp_model *m = nn_base(7);
    char sha_before[65], sha_after[65];
    assert_int_equal(lp_model_sha256(m, sha_before, NULL), LP_OK);
    lp_frame *tr = new_data(300), *va = new_data(200);
    lp_finetune_opts o = lp_finetune_opts_default();
    o.rank = 3;
    o.epochs = 30;
    lp_lora *fresh = NULL, *a = NULL;
    lp_finetune_stats stats;
    lp_err err;
    assert_int_equal(lp_lora_new(m, &o, &fresh, NULL), LP_OK);
    lp_status st = lp_lora_train(m, tr, &o, &a, &stats, &err);
    if (st)
        fail_msg("%s", lp_err_text(&err));
    /* only adapter parameters changed: the base view is bitwise the fresh one's */
    float *p0 = NULL, *p1 = NULL;
    size_t n0 = 0, n1 = 0;
    assert_int_equal(lp_lora_base_params(fresh, &p0, &n0, NULL), LP_OK);
    assert_int_equal(lp_lora_base_params(a, &p1, &n1, NULL), LP_OK);
    assert_int_equal(n0, n1);
    assert_memory_equal(p0, p1, n0 * sizeof(float));
    assert_int_equal(lp_model_sha256(m, sha_after, NULL), LP_OK);
    assert_string_equal(sha_before, sha_after);
    assert_int_equal(stats.trainable, lp_lora_n_params(a));
    assert_int_equal(stats.trainable, 3 * (3 + 16) + 3 * (16 + 8) + 3 * (8 + 3));
    assert_true(stats.trainable < n0);
    bool b_moved = false;
    const float *blk = lp_lora_params(a), *blk0 = lp_lora_params(fresh);
    for (size_t i = 0; i < lp_lora_n_params(a); i++)
        b_moved |= blk[i] != blk0[i];
    assert_true(b_moved);

    /* the adapter helps on the shifted data */
    lp_predictions pb, pa;
    assert_int_equal(lp_model_predict(m, va, &pb, NULL), LP_OK);
    assert_int_equal(lp_lora_predict(a, va, &pa, NULL), LP_OK);

    /* merged model == unmerged adapter within float rounding */
    char *merged = lp_test_tmpfile("merged.lpm");
    assert_int_equal(lp_lora_save_merged(a, merged, &err), LP_OK);
    lp_model *mm = NULL;
    assert_int_equal(lp_model_load(merged, &mm, &err), LP_OK);
    lp_predictions pm;
    assert_int_equal(lp_model_predict(mm, va, &pm, NULL), LP_OK);
    lp_assert_close(pm.out, pa.out, pa.n * pa.k, MERGE_TOL, 0, "merged vs unmerged");
    /* merge then unmerge gives the base weights back within rounding */
    float *pw = NULL;
    size_t nw = 0;
    assert_int_equal(lp_lora_base_params(a, &pw, &nw, NULL), LP_OK);
    assert_int_equal(lp_lora_merge(a, pw, nw, NULL), LP_OK);
    double moved = 0, back = 0;
    for (size_t i = 0; i < nw; i++)
        moved = fmax(moved, fabs((double)pw[i] - p0[i]));
    assert_int_equal(lp_lora_unmerge(a, pw, nw, NULL), LP_OK);
    for (size_t i = 0; i < nw; i++)
        back = fmax(back, fabs((double)pw[i] - p0[i]));
    assert_true(moved > 1e-3);
    assert_true(back < 1e-5);
    assert_int_equal(lp_lora_unmerge(a, pw, nw - 1, &err), LP_EINVAL);

    /* .lpa round trip: same parameters, same predictions */
    char *path = lp_test_tmpfile("a.lpa");
    assert_int_equal(lp_lora_save(a, path, &err), LP_OK);
    lp_lora *b = NULL;
    st = lp_lora_load(m, path, &b, &err);
    if (st)
        fail_msg("%s", lp_err_text(&err));
    assert_int_equal(lp_lora_n_params(b), lp_lora_n_params(a));
    assert_memory_equal(lp_lora_params(b), lp_lora_params(a), lp_lora_n_params(a) * 4);
    assert_int_equal(lp_lora_rank(b), 3);
    assert_string_equal(lp_lora_base_sha256(b), sha_before);
    lp_predictions pl;
    assert_int_equal(lp_lora_predict(b, va, &pl, NULL), LP_OK);
    assert_memory_equal(pl.out, pa.out, pa.n * pa.k * sizeof(double));

    /* a damaged file is refused, never a crash */
    uint8_t *bytes = NULL;
    size_t len = 0;
    assert_int_equal(lp_file_read(path, &bytes, &len, NULL), LP_OK);
    for (size_t cut = 0; cut < len; cut += len / 13 + 1) {
        lp_lora *c = NULL;
        assert_int_not_equal(lp_lora_parse(m, bytes, cut, "cut", &c, NULL), LP_OK);
        assert_null(c);
    }
    bytes[len / 2] ^= 0x40;
    lp_lora *c = NULL;
    assert_int_equal(lp_lora_parse(m, bytes, len, "flipped", &c, &err), LP_EFORMAT);
    assert_non_null(strstr(lp_err_text(&err), "CRC"));
    free(bytes);

    /* wrong base: both hashes named */
    lp_model *other = nn_base(8);
    char sha_other[65];
    assert_int_equal(lp_model_sha256(other, sha_other, NULL), LP_OK);
    assert_string_not_equal(sha_other, sha_before);
    assert_int_equal(lp_lora_load(other, path, &c, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), sha_before));
    assert_non_null(strstr(lp_err_text(&err), sha_other));

    lp_model_free(other);
    lp_predictions_clear(&pb);
    lp_predictions_clear(&pa);
    lp_predictions_clear(&pm);
    lp_predictions_clear(&pl);
    lp_model_free(mm);
    lp_lora_free(a);
    lp_lora_free(b);
    lp_lora_free(fresh);
    free(p0);
    free(p1);
    free(pw);
    free(merged);
    free(path);
    lp_frame_free(tr);
    lp_frame_free(va);
    lp_model_free(m);
}

static void test_lora_training_helps(void **state)
{
    (void)state;
    lp_model *m = nn_base(7);
    lp_frame *tr = new_data(400), *va = new_data(300);
    lp_eval eb;
    assert_int_equal(lp_model_evaluate(m, va, &eb, NULL), LP_OK);
    lp_finetune_opts o = lp_finetune_opts_default();
    o.rank = 3;
    o.epochs = 40;
    lp_lora *a = NULL;
    assert_int_equal(lp_lora_train(m, tr, &o, &a, NULL, NULL), LP_OK);
    lp_predictions p;
    assert_int_equal(lp_lora_predict(a, va, &p, NULL), LP_OK);
    size_t j, ok = 0;
    assert_int_equal(lp_frame_require(va, "label", "t", &j, NULL), LP_OK);
    const lp_column *c = lp_frame_col(va, j);
    for (size_t i = 0; i < p.n; i++)
        ok += !strcmp(lp_model_class(m, (size_t)p.cls[i]), c->dict[c->codes[i]]);
    double acc = (double)ok / (double)p.n;
    /* the base never saw the shift; the adapter learns it (measured: base ~0.80, tuned ~0.9) */
    assert_true(acc > eb.accuracy + 0.02);
    lp_predictions_clear(&p);
    lp_lora_free(a);
    lp_frame_free(tr);
    lp_frame_free(va);
    lp_model_free(m);
}

static void test_rank_and_targets(void **state)
{
    (void)state;
    lp_model *m = nn_base(7);
    lp_finetune_opts o = lp_finetune_opts_default();
    lp_lora *a = NULL;
    lp_err err;
    o.rank = 9; /* dense1 is 16 -> 8 */
    assert_int_equal(lp_lora_new(m, &o, &a, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "rank 9"));
    assert_null(a);
    o.rank = 2;
    o.targets = "dense0,2";
    assert_int_equal(lp_lora_new(m, &o, &a, &err), LP_OK);
    assert_int_equal(lp_lora_n_targets(a), 2);
    assert_int_equal(lp_lora_target(a, 0), 0);
    assert_int_equal(lp_lora_target(a, 1), 2);
    assert_int_equal(lp_lora_n_params(a), 2 * 3 + 16 * 2 + 2 * 8 + 3 * 2);
    lp_lora_free(a);
    o.targets = "dense7";
    assert_int_equal(lp_lora_new(m, &o, &a, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "dense7"));
    lp_model_free(m);
}

static void test_bad_frames_and_methods(void **state)
{
    (void)state;
    lp_model *m = nn_base(7);
    lp_frame *f = make_data(50, 3, 0); /* has the regression column y the base never saw */
    lp_err err;
    lp_finetune_opts o = lp_finetune_opts_default();
    o.rank = 2;
    lp_lora *a = NULL;
    assert_int_equal(lp_lora_train(m, f, &o, &a, NULL, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "'y'"));
    const char *drop[] = {"y"};
    o.drop = drop;
    o.n_drop = 1;
    assert_int_equal(lp_finetune_check_frame(m, f, NULL, drop, 1, &err), LP_OK);
    lp_frame *g = without(f, "x2");
    assert_int_equal(lp_finetune_check_frame(m, g, NULL, drop, 1, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "'x2'"));
    lp_frame_free(g);
    /* an unseen label */
    g = without(f, "label");
    const char *labs[50];
    for (int i = 0; i < 50; i++)
        labs[i] = i == 17 ? "zebra" : "a";
    assert_int_equal(lp_frame_add_categorical(g, "label", labs, 50, NULL), LP_OK);
    assert_int_equal(lp_finetune_check_frame(m, g, NULL, drop, 1, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "'zebra'"));
    lp_frame_free(g);
    /* methods that do not apply */
    char *out = lp_test_tmpfile("bad.lpm");
    o.method = LP_FINETUNE_METHOD_BOOST;
    assert_int_equal(lp_finetune_model(m, f, &o, out, NULL, &err), LP_EUNSUPPORTED);
    assert_non_null(strstr(lp_err_text(&err), "boost"));
    static const char *const few[] = {"n_rounds=10", NULL};
    lp_model *gb = train(f, LP_MODEL_KIND_GBDT, "label", few, 1);
    assert_int_equal(lp_lora_new(gb, &o, &a, &err), LP_EUNSUPPORTED);
    assert_non_null(strstr(lp_err_text(&err), "gbdt"));
    o.method = LP_FINETUNE_METHOD_HEAD;
    assert_int_equal(lp_finetune_model(gb, f, &o, out, NULL, &err), LP_EUNSUPPORTED);
    lp_finetune_method meth;
    assert_int_equal(lp_finetune_method_parse("lora", &meth, NULL), LP_OK);
    assert_int_equal(meth, LP_FINETUNE_METHOD_LORA);
    assert_int_equal(lp_finetune_method_parse("magic", &meth, &err), LP_EINVAL);
    o.rank = 0;
    assert_int_equal(lp_finetune_opts_check(&o, &err), LP_EINVAL);
    free(out);
    lp_model_free(gb);
    lp_frame_free(f);
    lp_model_free(m);
}

static void test_head_keeps_body(void **state)
{
    (void)state;
    lp_model *m = nn_base(7);
    lp_frame *tr = new_data(300);
    lp_finetune_opts o = lp_finetune_opts_default();
    o.method = LP_FINETUNE_METHOD_HEAD;
    o.epochs = 10;
    char *out = lp_test_tmpfile("head.lpm");
    lp_err err;
    lp_finetune_stats st;
    if (lp_finetune_model(m, tr, &o, out, &st, &err))
        fail_msg("%s", lp_err_text(&err));
    assert_int_equal(st.trainable, 8 * 3 + 3);
    lp_model *h = NULL;
    assert_int_equal(lp_model_load(out, &h, &err), LP_OK);
    /* the body is bitwise the base's: views through zero adapters expose both nets */
    o.method = LP_FINETUNE_METHOD_LORA;
    o.rank = 1;
    lp_lora *a = NULL, *b = NULL;
    assert_int_equal(lp_lora_new(m, &o, &a, NULL), LP_OK);
    assert_int_equal(lp_lora_new(h, &o, &b, NULL), LP_OK);
    float *pa, *pb;
    size_t na, nb;
    assert_int_equal(lp_lora_base_params(a, &pa, &na, NULL), LP_OK);
    assert_int_equal(lp_lora_base_params(b, &pb, &nb, NULL), LP_OK);
    assert_int_equal(na, nb);
    size_t head = 8 * 3 + 3;
    assert_memory_equal(pa, pb, (na - head) * sizeof(float));
    assert_memory_not_equal(pa + na - head, pb + na - head, head * sizeof(float));
    /* full moves the body too, and keeps the schema */
    o.method = LP_FINETUNE_METHOD_FULL;
    assert_int_equal(lp_finetune_model(m, tr, &o, out, &st, &err), LP_OK);
    assert_int_equal(st.trainable, na);
    assert_true(strstr(lp_model_header(h), "\"finetune\"") != NULL);
    free(pa);
    free(pb);
    lp_lora_free(a);
    lp_lora_free(b);
    lp_model_free(h);
    free(out);
    lp_frame_free(tr);
    lp_model_free(m);
}

/* Continued boosting on the very data the base was fitted on: the validation loss may move by
 * noise only. 30 extra rounds at lr 0.1 on 600 rows; the bound 0.05 nats is ~3x the spread of
 * the validation logloss over base seeds measured here. */
#define BOOST_NOISE 0.05

static void test_boost(void **state)
{
    (void)state;
    lp_frame *f = make_data(600, 1, 0), *v = make_data(400, 9, 0);
    lp_frame *fl = without(f, "y"), *vl = without(v, "y");
    static const char *const gp[] = {"n_rounds=40", NULL};
    lp_model *m = train(f, LP_MODEL_KIND_GBDT, "label", gp, 1);
    lp_finetune_opts o = lp_finetune_opts_default();
    o.method = LP_FINETUNE_METHOD_BOOST;
    o.rounds = 30;
    char *out = lp_test_tmpfile("boost.lpm");
    lp_err err;
    if (lp_finetune_model(m, fl, &o, out, NULL, &err))
        fail_msg("%s", lp_err_text(&err));
    lp_model *t = NULL;
    assert_int_equal(lp_model_load(out, &t, &err), LP_OK);
    const lp_gbdt *g0 = lp_model_impl(m), *g1 = lp_model_impl(t);
    assert_int_equal(lp_gbdt_n_rounds(g1), lp_gbdt_n_rounds(g0) + 30);
    /* the base's trees come first, unchanged */
    size_t n0, n1;
    const lp_gbdt_node *a = lp_gbdt_tree(g0, 5, &n0), *b = lp_gbdt_tree(g1, 5, &n1);
    assert_int_equal(n0, n1);
    for (size_t k = 0; k < n0; k++) { /* field by field: the struct has padding */
        assert_int_equal(a[k].feature, b[k].feature);
        assert_true(a[k].threshold == b[k].threshold && a[k].value == b[k].value);
        assert_int_equal(a[k].left, b[k].left);
    }
    lp_eval e0, e1;
    assert_int_equal(lp_model_evaluate(m, vl, &e0, NULL), LP_OK);
    assert_int_equal(lp_model_evaluate(t, vl, &e1, NULL), LP_OK);
    assert_true(e1.logloss <= e0.logloss + BOOST_NOISE);
    /* where the label's relation changed (x3 now matters), continued boosting learns it */
    o.rounds = 20;
    lp_frame *s = make_data_tilt(600, 4, 0, 1.5), *sv = make_data_tilt(400, 5, 0, 1.5);
    lp_frame *sl = without(s, "y"), *svl = without(sv, "y");
    assert_int_equal(lp_finetune_model(m, sl, &o, out, NULL, &err), LP_OK);
    lp_model_free(t);
    assert_int_equal(lp_model_load(out, &t, &err), LP_OK);
    assert_int_equal(lp_model_evaluate(m, svl, &e0, NULL), LP_OK);
    assert_int_equal(lp_model_evaluate(t, svl, &e1, NULL), LP_OK);
    assert_true(e1.logloss < e0.logloss);
    lp_frame_free(s);
    lp_frame_free(sv);
    lp_frame_free(sl);
    lp_frame_free(svl);
    lp_model_free(t);
    lp_model_free(m);
    free(out);
    lp_frame_free(f);
    lp_frame_free(v);
    lp_frame_free(fl);
    lp_frame_free(vl);
}

static double cosine(const float *a, const float *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

static void test_warm_linear(void **state)
{
    (void)state;
    lp_frame *f = make_data(500, 1, 0), *s = make_data(300, 6, 0.5);
    /* the new data has another relation: y2 = -x1 + 3 x3 */
    size_t j;
    assert_int_equal(lp_frame_require(s, "y", "t", &j, NULL), LP_OK);
    lp_column *y = lp_frame_col(s, j);
    size_t j1, j3;
    assert_int_equal(lp_frame_require(s, "x1", "t", &j1, NULL), LP_OK);
    assert_int_equal(lp_frame_require(s, "x3", "t", &j3, NULL), LP_OK);
    for (size_t i = 0; i < y->n; i++)
        y->num[i] = -lp_frame_col(s, j1)->num[i] + 3 * lp_frame_col(s, j3)->num[i];
    static const char *const lp[] = {"penalty=none", NULL};
    lp_model *m = train(f, LP_MODEL_KIND_LINEAR, "y", lp, 1);
    lp_frame *sl = without(s, "label");
    char *out = lp_test_tmpfile("warm.lpm");
    lp_finetune_opts o = lp_finetune_opts_default();
    o.method = LP_FINETUNE_METHOD_WARM;
    lp_err err;
    const lp_linear *b = lp_model_impl(m);
    size_t d = lp_linear_n_features(b);
    /* a huge pull keeps the base weights */
    o.lambda = 1e9;
    if (lp_finetune_model(m, sl, &o, out, NULL, &err))
        fail_msg("%s", lp_err_text(&err));
    lp_model *t = NULL;
    assert_int_equal(lp_model_load(out, &t, NULL), LP_OK);
    const lp_linear *w = lp_model_impl(t);
    for (size_t k = 0; k < d; k++)
        assert_true(fabs(lp_linear_coef(w)[k] - lp_linear_coef(b)[k]) < 1e-6);
    lp_model_free(t);
    /* no pull: the least-squares fit of the new data */
    o.lambda = 0;
    assert_int_equal(lp_finetune_model(m, sl, &o, out, NULL, &err), LP_OK);
    assert_int_equal(lp_model_load(out, &t, NULL), LP_OK);
    lp_model *fresh = train(s, LP_MODEL_KIND_LINEAR, "y", lp, 1);
    w = lp_model_impl(t);
    const lp_linear *fr = lp_model_impl(fresh);
    /* the fresh fit uses its own 80% split and scaler; the direction must agree closely */
    double c = cosine(lp_linear_coef(w), lp_linear_coef(fr), d);
    assert_true(c > 0.999);
    assert_true(cosine(lp_linear_coef(w), lp_linear_coef(b), d) < 0.5);
    lp_model_free(t);
    lp_model_free(fresh);

    /* logistic: a huge pull stays, a moderate one moves towards the new data */
    lp_model *lg = train(f, LP_MODEL_KIND_LOGISTIC, "label", NULL, 1);
    lp_frame *cl = make_data(300, 6, 1.0);
    lp_frame *cll = without(cl, "y");
    o.lambda = 1e9;
    assert_int_equal(lp_finetune_model(lg, cll, &o, out, NULL, &err), LP_OK);
    assert_int_equal(lp_model_load(out, &t, NULL), LP_OK);
    const lp_linear *l0 = lp_model_impl(lg), *l1 = lp_model_impl(t);
    size_t nw = lp_linear_n_outputs(l0) * lp_linear_n_features(l0);
    for (size_t k = 0; k < nw; k++)
        assert_true(fabs(lp_linear_coef(l1)[k] - lp_linear_coef(l0)[k]) < 1e-5);
    lp_model_free(t);
    o.lambda = 1e-3;
    assert_int_equal(lp_finetune_model(lg, cll, &o, out, NULL, &err), LP_OK);
    assert_int_equal(lp_model_load(out, &t, NULL), LP_OK);
    lp_eval e0, e1;
    assert_int_equal(lp_model_evaluate(lg, cll, &e0, NULL), LP_OK);
    assert_int_equal(lp_model_evaluate(t, cll, &e1, NULL), LP_OK);
    assert_true(e1.logloss < e0.logloss);
    lp_model_free(t);
    lp_model_free(lg);
    lp_frame_free(cl);
    lp_frame_free(cll);
    free(out);
    lp_frame_free(sl);
    lp_model_free(m);
    lp_frame_free(f);
    lp_frame_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_b_is_base),
        cmocka_unit_test(test_train_merge_roundtrip),
        cmocka_unit_test(test_lora_training_helps),
        cmocka_unit_test(test_rank_and_targets),
        cmocka_unit_test(test_bad_frames_and_methods),
        cmocka_unit_test(test_head_keeps_body),
        cmocka_unit_test(test_boost),
        cmocka_unit_test(test_warm_linear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
