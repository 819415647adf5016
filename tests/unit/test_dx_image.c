/*
 * test_dx_image.c - the image model's test-time augmentation and its calibration
 * (dx_image.c): each view is the image shifted by the pixel the table says, with zero fill;
 * views are averaged as probabilities, not as logits; the temperature fitted on view-averaged
 * probabilities minimises their validation likelihood and, with one view, agrees with libcore's
 * temperature scaling; a trained model answers with the mean of its single-view answers over
 * the views, keeps doing so after save / load; a file of format 1 (no views) still loads as one
 * view; a newer format or a bad view count is refused with a message; the card names the kept
 * epoch, the last one with keep_last; AUROC averages the classes present.
 */
#include "lp_test.h"

#include "dx.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* One view's probabilities summed over views in the same order as dx_image_predict: the
 * two paths differ only where the model reads its file back (not at all). */
#define PROB_TOL 1e-12
/* Golden-section search stops at a bracket of about 1e-8 in log T; the likelihood around
 * its minimum is flat to second order, so neighbours 1% away score higher. */
#define T_REL_TOL 1e-3

static void test_views(void **state)
{
    (void)state;
    enum { C = 2, H = 3, W = 4 };
    float x[C * H * W], v[C * H * W];
    for (int i = 0; i < C * H * W; i++)
        x[i] = (float)(i + 1);
    dx_tta_view(x, 1, C, H, W, 0, v);
    assert_memory_equal(x, v, sizeof x);
    /* view 1: one pixel right: out(i, j) = x(i, j - 1), column 0 uncovered */
    dx_tta_view(x, 1, C, H, W, 1, v);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                assert_true(v[(c * H + i) * W + j] == (j ? x[(c * H + i) * W + j - 1] : 0.0f));
    /* view 4: one pixel up: out(i, j) = x(i + 1, j), the last row uncovered */
    dx_tta_view(x, 1, C, H, W, 4, v);
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++)
                assert_true(v[(c * H + i) * W + j] ==
                            (i + 1 < H ? x[(c * H + i + 1) * W + j] : 0.0f));
    /* view 5: right and down */
    dx_tta_view(x, 1, C, H, W, 5, v);
    assert_true(v[0] == 0.0f && v[W] == 0.0f && v[1] == 0.0f);
    assert_true(v[W + 1] == x[0] && v[2 * W + 3] == x[W + 2]);
    /* every view of two images is two images' views */
    float x2[2 * C * H * W], v2[2 * C * H * W];
    memcpy(x2, x, sizeof x);
    memcpy(x2 + C * H * W, x, sizeof x);
    for (int k = 0; k < DX_TTA_MAX; k++) {
        dx_tta_view(x2, 2, C, H, W, k, v2);
        dx_tta_view(x, 1, C, H, W, k, v);
        assert_memory_equal(v2, v, sizeof v);
        assert_memory_equal(v2 + C * H * W, v, sizeof v);
    }
}

static void test_probability_average(void **state)
{
    (void)state;
    /* two views of one row, logits (0, 0) and (4, 0): the mean of the softmaxes is
     * (0.5 + s) / 2 with s = 1 / (1 + e^-4); softmax of the mean logits would give
     * 1 / (1 + e^-2), a different number */
    float z[4] = {0, 0, 4, 0};
    double p[2], tmp[2];
    dx_tta_probs(z, 2, 1, 2, 1.0, p, tmp);
    double s = 1 / (1 + exp(-4.0));
    assert_true(fabs(p[0] - (0.5 + s) / 2) < 1e-12);
    assert_true(fabs(p[0] + p[1] - 1) < 1e-12);
    /* temperature 2 divides the logits: view 2 gives 1 / (1 + e^-2) */
    dx_tta_probs(z, 2, 1, 2, 2.0, p, tmp);
    assert_true(fabs(p[0] - (0.5 + 1 / (1 + exp(-2.0))) / 2) < 1e-12);
}

static double nll(const float *z, int V, const int32_t *y, size_t n, size_t k, double T)
{
    double *p = malloc(n * k * sizeof *p), *tmp = malloc(n * k * sizeof *tmp), s = 0;
    dx_tta_probs(z, V, n, k, T, p, tmp);
    for (size_t i = 0; i < n; i++)
        s -= log(p[i * k + (size_t)y[i]]);
    free(p);
    free(tmp);
    return s / (double)n;
}

static void test_temperature(void **state)
{
    (void)state;
    enum { N = 400, K = 3, V = 3 };
    static float z[V * N * K];
    static double zd[N * K];
    int32_t y[N];
    lp_rng r;
    lp_rng_seed(&r, 5);
    /* overconfident logits: the true class gets +3 most of the time, a wrong one sometimes */
    for (size_t i = 0; i < N; i++) {
        y[i] = (int32_t)(i % K);
        size_t hot = lp_rng_uniform(&r) < 0.75 ? (size_t)y[i] : (size_t)(y[i] + 1) % K;
        for (int v = 0; v < V; v++)
            for (size_t j = 0; j < K; j++)
                z[((size_t)v * N + i) * K + j] =
                    (float)((j == hot ? 6.0 : 0.0) + (v ? 1.5 : 0.5) * lp_rng_normal(&r));
    }
    lp_err err;
    double T1, Tv;
    /* one view: libcore's temperature scaling (an independent implementation) */
    assert_int_equal(dx_fit_temperature(z, 1, y, N, K, &T1, NULL, &err), LP_OK);
    for (size_t i = 0; i < N * K; i++)
        zd[i] = z[i];
    lp_calibrator *cal;
    assert_int_equal(lp_calibrator_fit_temperature(zd, y, N, K, &cal, &err), LP_OK);
    double Tref;
    lp_calibrator_params(cal, &Tref, NULL);
    lp_calibrator_free(cal);
    assert_true(T1 > 1.2); /* overconfident: softened */
    assert_true(fabs(T1 - Tref) < T_REL_TOL * Tref);
    /* three views: a minimum of the averaged likelihood, not of one view's */
    assert_int_equal(dx_fit_temperature(z, V, y, N, K, &Tv, NULL, &err), LP_OK);
    double f = nll(z, V, y, N, K, Tv);
    assert_true(f < nll(z, V, y, N, K, Tv * 1.01));
    assert_true(f < nll(z, V, y, N, K, Tv / 1.01));
    assert_true(fabs(Tv - T1) > 0.01 * T1);
    assert_int_equal(dx_fit_temperature(z, 0, y, N, K, &Tv, NULL, &err), LP_EINVAL);
    assert_int_equal(dx_fit_temperature(z, DX_TTA_MAX + 1, y, N, K, &Tv, NULL, &err), LP_EINVAL);
}

/* Bars that tell the classes apart: class 0 a horizontal bar, class 1 a vertical one. */
enum { S = 8, D = S * S, NTR = 96, NTE = 12 };
static void bars(size_t n, uint64_t seed, float *X, int32_t *y)
{
    lp_rng r;
    lp_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        y[i] = (int32_t)(i % 2);
        size_t at = 2 + lp_rng_below(&r, S - 4);
        for (size_t p = 0; p < D; p++) {
            size_t row = p / S, col = p % S;
            bool on = y[i] ? col == at : row == at;
            X[i * D + p] = (float)((on ? 0.8 : 0.1) + 0.1 * lp_rng_uniform(&r));
        }
    }
}

static const char *bar_classes[2] = {"horizontal", "vertical"};

/* Training options for the bars: a tiny net, one thread, a quarter held out. */
static dx_train_opts bars_opts(int epochs, int tta)
{
    dx_train_opts o = dx_train_opts_default();
    o.arch = "conv4,pool,fc8";
    o.epochs = epochs;
    o.threads = 1;
    o.valid_frac = 0.25;
    o.tta = tta;
    return o;
}

/* Rewrite the model file at path with its "dx" header edited by fn. */
static void rewrite(const char *path, const char *out, void (*fn)(cJSON *dx))
{
    lp_err err;
    lp_lpm *f;
    assert_int_equal(lp_lpm_load(path, &f, &err), LP_OK);
    cJSON *h = cJSON_Parse(lp_lpm_header(f));
    fn(cJSON_GetObjectItem(h, "dx"));
    char *text = cJSON_PrintUnformatted(h);
    lp_lpm_writer *w = lp_lpm_writer_new();
    static const struct {
        const char *name;
        lp_lpm_dtype t;
    } sec[] = {{"dx.nn", LP_LPM_DTYPE_BYTES},
               {"dx.ood", LP_LPM_DTYPE_F32},
               {"dx.drift", LP_LPM_DTYPE_BYTES}};
    for (size_t i = 0; i < 3; i++) {
        const void *d;
        size_t n;
        assert_int_equal(lp_lpm_section(f, sec[i].name, (int)sec[i].t, &d, &n, &err), LP_OK);
        assert_int_equal(lp_lpm_writer_add(w, sec[i].name, sec[i].t, d, n, &err), LP_OK);
    }
    assert_int_equal(lp_lpm_writer_save(w, text, out, &err), LP_OK);
    lp_lpm_writer_free(w);
    cJSON_free(text);
    cJSON_Delete(h);
    lp_lpm_free(f);
}

static void to_format1(cJSON *dx)
{
    cJSON_DeleteItemFromObject(dx, "format");
    cJSON_DeleteItemFromObject(dx, "tta");
}
static void to_format3(cJSON *dx)
{
    cJSON_ReplaceItemInObject(dx, "format", cJSON_CreateNumber(3));
}
static void to_tta0(cJSON *dx)
{
    cJSON_ReplaceItemInObject(dx, "tta", cJSON_CreateNumber(0));
}

static void test_model_views_and_file(void **state)
{
    (void)state;
    static float X[NTR * D], Xt[NTE * D], xv[NTE * D];
    int32_t y[NTR], yt[NTE];
    bars(NTR, 1, X, y);
    bars(NTE, 2, Xt, yt);
    const char **classes = bar_classes;
    dx_train_opts o = bars_opts(3, 5);
    lp_err err;
    dx_image_model *m;
    o.tta = 0;
    assert_int_equal(dx_image_train(X, y, NTR, NULL, NULL, 0, 1, S, S, classes, 2, &o, &m, &err),
                     LP_EINVAL);
    assert_non_null(strstr(err.msg, "tta=0"));
    o.tta = 5;
    assert_int_equal(dx_image_train(X, y, NTR, NULL, NULL, 0, 1, S, S, classes, 2, &o, &m, &err),
                     LP_OK);
    cJSON *card = cJSON_Parse(dx_image_model_card(m));
    const cJSON *arch = cJSON_GetObjectItem(card, "model");
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(arch, "test_time_views")), 5);
    double kept = cJSON_GetNumberValue(cJSON_GetObjectItem(arch, "kept_epoch"));
    assert_true(kept >= 1 && kept <= 3);
    cJSON_Delete(card);
    /* keep_last: the last epoch whatever the validation loss says */
    dx_image_model *last;
    o.keep_last = true;
    o.epochs = 4;
    assert_int_equal(
        dx_image_train(X, y, NTR, NULL, NULL, 0, 1, S, S, classes, 2, &o, &last, &err), LP_OK);
    card = cJSON_Parse(dx_image_model_card(last));
    arch = cJSON_GetObjectItem(card, "model");
    assert_int_equal(cJSON_GetNumberValue(cJSON_GetObjectItem(arch, "kept_epoch")), 4);
    cJSON_Delete(card);
    dx_image_model_free(last);
    char *path = lp_test_tmpfile("dx_tta.lpm"), *old = lp_test_tmpfile("dx_tta_v1.lpm");
    char *bad = lp_test_tmpfile("dx_tta_bad.lpm");
    assert_int_equal(dx_image_model_save(m, path, &err), LP_OK);
    dx_image_model *m5, *m1, *x;
    assert_int_equal(dx_image_model_load(path, &m5, &err), LP_OK);
    rewrite(path, old, to_format1);
    assert_int_equal(dx_image_model_load(old, &m1, &err), LP_OK);

    dx_answer a[NTE], b[NTE], one[NTE], back[NTE];
    assert_int_equal(dx_image_predict(m, Xt, NTE, a, &err), LP_OK);
    assert_int_equal(dx_image_predict(m5, Xt, NTE, back, &err), LP_OK);
    double mean[NTE * 2] = {0}, diff = 0;
    for (int v = 0; v < 5; v++) {
        dx_tta_view(Xt, NTE, 1, S, S, v, xv);
        assert_int_equal(dx_image_predict(m1, xv, NTE, one, &err), LP_OK);
        for (size_t i = 0; i < NTE; i++)
            for (size_t j = 0; j < 2; j++)
                mean[i * 2 + j] += one[i].probs[j] / 5;
        if (v == 0)
            memcpy(b, one, sizeof b);
    }
    for (size_t i = 0; i < NTE; i++)
        for (size_t j = 0; j < 2; j++) {
            assert_true(fabs(a[i].probs[j] - mean[i * 2 + j]) < PROB_TOL);
            /* loaded: the default thread count, so sums may differ in their last bits */
            assert_true(fabs(a[i].probs[j] - back[i].probs[j]) < 1e-12);
            diff = fmax(diff, fabs(a[i].probs[j] - b[i].probs[j]));
        }
    assert_true(diff > 1e-6); /* the views matter: one view answers otherwise */

    rewrite(path, bad, to_format3);
    assert_int_equal(dx_image_model_load(bad, &x, &err), LP_EVERSION);
    assert_non_null(strstr(err.msg, "newer"));
    rewrite(path, bad, to_tta0);
    assert_int_equal(dx_image_model_load(bad, &x, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "tta"));
    dx_image_model_free(m);
    dx_image_model_free(m5);
    dx_image_model_free(m1);
    free(path);
    free(old);
    free(bad);
}

static void to_noprior(cJSON *dx)
{
    cJSON_DeleteItemFromObject(dx, "class_prior");
}

/* Prevalence: the stored calibrated mix, predictions re-weighted to a given mix exactly as
 * lp_prior_shift_apply does, the spec parser's errors, the EM estimate, and files. */
static void test_prevalence(void **state)
{
    (void)state;
    static float X[NTR * D], Xt[NTE * D];
    int32_t y[NTR], yt[NTE];
    bars(NTR, 3, X, y);
    bars(NTE, 4, Xt, yt);
    const char **classes = bar_classes;
    dx_train_opts o = bars_opts(10, 1);
    o.batch_size = 8;
    o.ema_decay = 0; /* a few dozen steps: the average would sit near the start */
    o.augment = "";
    lp_err err;
    dx_image_model *m;
    assert_int_equal(dx_image_train(X, y, NTR, NULL, NULL, 0, 1, S, S, classes, 2, &o, &m, &err),
                     LP_OK);
    const double *prior = dx_image_model_prior(m);
    assert_non_null(prior);
    assert_true(fabs(prior[0] + prior[1] - 1) < 1e-12 && prior[0] > 0.3 && prior[0] < 0.7);
    assert_ptr_equal(dx_image_model_prevalence(m), prior);

    double to[2];
    assert_int_equal(dx_prevalence_parse(m, "vertical=0.2", to, &err), LP_OK);
    assert_true(fabs(to[1] - 0.2) < 1e-15 && fabs(to[0] - 0.8) < 1e-15);
    dx_answer before[NTE], after[NTE];
    assert_int_equal(dx_image_predict(m, Xt, NTE, before, &err), LP_OK);
    assert_int_equal(dx_image_model_set_prevalence(m, to, "given", &err), LP_OK);
    assert_true(dx_image_model_prevalence(m)[1] == 0.2);
    assert_non_null(strstr(dx_image_model_card(m), "\"prevalence\""));
    assert_int_equal(dx_image_predict(m, Xt, NTE, after, &err), LP_OK);
    for (size_t i = 0; i < NTE; i++) {
        double p[2] = {before[i].probs[0], before[i].probs[1]};
        assert_int_equal(lp_prior_shift_apply(p, 1, 2, prior, to, p, &err), LP_OK);
        assert_true(fabs(after[i].probs[0] - p[0]) < 1e-12);
        assert_true(after[i].probs[1] <= before[i].probs[1] + 1e-12); /* fewer "vertical" */
        assert_true(after[i].probs[after[i].order[0]] >= after[i].probs[after[i].order[1]]);
    }
    /* the saved file keeps the calibrated mix, not the serving one */
    char *path = lp_test_tmpfile("dx_prev.lpm"), *old = lp_test_tmpfile("dx_prev_old.lpm");
    assert_int_equal(dx_image_model_save(m, path, &err), LP_OK);
    dx_image_model *back, *older;
    assert_int_equal(dx_image_model_load(path, &back, &err), LP_OK);
    assert_true(dx_image_model_prior(back)[0] == prior[0]);
    assert_ptr_equal(dx_image_model_prevalence(back), dx_image_model_prior(back));
    assert_null(strstr(dx_image_model_card(back), "\"prevalence\""));
    dx_answer again[NTE];
    assert_int_equal(dx_image_predict(back, Xt, NTE, again, &err), LP_OK);
    for (size_t i = 0; i < NTE; i++) /* (loaded: default threads, last bits may differ) */
        assert_true(fabs(again[i].probs[1] - before[i].probs[1]) < 1e-12);
    /* NULL goes back to the calibrated mix */
    assert_int_equal(dx_image_model_set_prevalence(m, NULL, NULL, &err), LP_OK);
    assert_int_equal(dx_image_predict(m, Xt, NTE, again, &err), LP_OK);
    assert_true(fabs(again[0].probs[1] - before[0].probs[1]) < 1e-12);

    /* EM on 200 fresh images, half of each class: the estimate lands near 50/50 */
    enum { NEM = 200 };
    static float Xe[NEM * D];
    int32_t ye[NEM];
    bars(NEM, 5, Xe, ye);
    int iters = 0;
    assert_int_equal(dx_prevalence_estimate(back, Xe, NEM, to, &iters, &err), LP_OK);
    assert_true(iters >= 1 && fabs(to[0] + to[1] - 1) < 1e-12 && to[0] > 0.4 && to[0] < 0.6);

    /* the spec's errors name what was wrong */
    assert_int_equal(dx_prevalence_parse(m, "diagonal=0.2", to, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "no class 'diagonal'"));
    assert_int_equal(dx_prevalence_parse(m, "vertical=1.5", to, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "(0, 1)"));
    assert_int_equal(dx_prevalence_parse(m, "vertical", to, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "LABEL=P"));
    assert_int_equal(dx_prevalence_parse(m, "vertical=0.2,vertical=0.3", to, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "twice"));
    assert_int_equal(dx_prevalence_parse(m, "vertical=0.2,horizontal=0.3", to, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "sum to 0.5"));
    assert_int_equal(dx_prevalence_parse(m, "vertical=0.25,horizontal=0.75", to, &err), LP_OK);
    assert_int_equal(dx_prevalence_parse(m, "", to, &err), LP_EINVAL);
    /* a file from before the stored mix: refused with what to do */
    rewrite(path, old, to_noprior);
    assert_int_equal(dx_image_model_load(old, &older, &err), LP_OK);
    assert_null(dx_image_model_prior(older));
    assert_int_equal(dx_prevalence_parse(older, "vertical=0.2", to, &err), LP_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "retrain"));
    to[0] = 0.8, to[1] = 0.2;
    assert_int_equal(dx_image_model_set_prevalence(older, to, "given", &err), LP_EUNSUPPORTED);
    dx_image_model_free(older);
    dx_image_model_free(back);
    dx_image_model_free(m);
    free(path);
    free(old);
}

/* AUROC over the classes present: with every class present it is libcore's macro one-vs-rest
 * (and binary AUROC for two); IDX labels 0, 1, 5 of a six-class model (2..4 empty) average the
 * three present classes instead of giving up; one class present is NaN with a reason. */
static void test_auroc_present(void **state)
{
    (void)state;
    lp_err err;
    enum { N = 12, K = 6 };
    int32_t y[N] = {0, 1, 5, 0, 1, 5, 0, 1, 5, 0, 1, 5};
    double p[N * K];
    lp_rng r;
    lp_rng_seed(&r, 7);
    for (size_t i = 0; i < N; i++) {
        double s = 0;
        for (size_t c = 0; c < K; c++)
            s += p[i * K + c] = lp_rng_uniform(&r) + (c == (size_t)y[i] ? 0.5 : 0);
        for (size_t c = 0; c < K; c++)
            p[i * K + c] /= s;
    }
    double a, want = 0, ac;
    size_t used;
    char note[160];
    assert_int_equal(dx_auroc(y, p, N, K, &a, &used, note, sizeof note, &err), LP_OK);
    assert_int_equal(used, 3);
    assert_non_null(strstr(note, "3 classes present"));
    int32_t yc[N];
    double sc[N];
    for (int c = 0; c < K; c += c == 1 ? 4 : 1) {
        for (size_t i = 0; i < N; i++)
            yc[i] = y[i] == c, sc[i] = p[i * K + (size_t)c];
        assert_int_equal(lp_metrics_auroc(yc, sc, N, &ac, &err), LP_OK);
        want += ac / 3;
    }
    assert_true(fabs(a - want) < 1e-12);
    /* all present: libcore's macro one-vs-rest exactly */
    int32_t y3[N];
    double p3[N * 3];
    for (size_t i = 0; i < N; i++) {
        y3[i] = (int32_t)(i % 3);
        for (size_t c = 0; c < 3; c++)
            p3[i * 3 + c] = p[i * K + c];
    }
    assert_int_equal(dx_auroc(y3, p3, N, 3, &a, &used, note, sizeof note, &err), LP_OK);
    assert_int_equal(lp_metrics_auroc_ovr(y3, p3, N, 3, &want, &err), LP_OK);
    assert_true(fabs(a - want) < 1e-12 && used == 3 && note[0] == '\0');
    /* binary with one class: NaN and why */
    int32_t y1[N] = {0};
    double p2[N * 2];
    for (size_t i = 0; i < N; i++)
        p2[2 * i] = p[i * K], p2[2 * i + 1] = 1 - p[i * K];
    assert_int_equal(dx_auroc(y1, p2, N, 2, &a, &used, note, sizeof note, &err), LP_OK);
    assert_true(isnan(a) && used == 0);
    assert_non_null(strstr(note, "one class present"));
}

/* The default epochs: 12 up to 10,000 training images, then about 120,000 image passes with 3
 * at the least; an explicit count always wins. */
static void test_default_epochs(void **state)
{
    (void)state;
    dx_train_opts o = dx_train_opts_default();
    assert_int_equal(o.epochs, 0);
    assert_int_equal(dx_image_epochs(&o, 4708), 12);
    assert_int_equal(dx_image_epochs(&o, 10000), 12);
    assert_int_equal(dx_image_epochs(&o, 10001), 12);
    assert_int_equal(dx_image_epochs(&o, 11500), 10);
    assert_int_equal(dx_image_epochs(&o, 20000), 6);
    assert_int_equal(dx_image_epochs(&o, 54000), 3);
    assert_int_equal(dx_image_epochs(&o, 1000000), 3);
    o.epochs = 20;
    assert_int_equal(dx_image_epochs(&o, 1000000), 20);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_views),
        cmocka_unit_test(test_probability_average),
        cmocka_unit_test(test_temperature),
        cmocka_unit_test(test_model_views_and_file),
        cmocka_unit_test(test_prevalence),
        cmocka_unit_test(test_auroc_present),
        cmocka_unit_test(test_default_epochs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
