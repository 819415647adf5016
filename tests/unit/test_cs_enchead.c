/*
 * test_cs_enchead.c - the encoder head the apps share (apps/enchead): the softmax head learns
 * separable classes of unit vectors, its log-probabilities normalise, centroid cosines are 1
 * for a centroid's own direction and skip the skipped class, a saved head loads bit-identical
 * and a truncated one is refused; the two-threshold OOS fit catches OOS rows that only the
 * embedding distance exposes (protocol A) and keeps the target share in scope (protocol B);
 * options are checked; an encoder file that is not there is LP_ENOTFOUND naming it.
 */
#include "lp_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enchead.h"

#define D 16
#define K 4
#define PER 60

/* Rows of class c: unit vectors near basis direction 2c (noise 0.3 per dim before norming). */
static void make_data(float *x, int32_t *y, size_t n, uint64_t seed)
{
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        y[i] = (int32_t)(i % K);
        double s = 0;
        for (size_t j = 0; j < D; j++) {
            double v = 0.3 * lp_rng_normal(&rng) + (j == (size_t)(2 * y[i]) ? 1.0 : 0.0);
            x[i * D + j] = (float)v;
            s += v * v;
        }
        for (size_t j = 0; j < D; j++)
            x[i * D + j] = (float)(x[i * D + j] / sqrt(s));
    }
}

static void test_head_learns_and_roundtrips(void **state)
{
    (void)state;
    size_t n = K * PER;
    float *x = malloc(n * D * sizeof(float)), *xt = malloc(n * D * sizeof(float));
    int32_t *y = malloc(n * sizeof(int32_t)), *yt = malloc(n * sizeof(int32_t));
    make_data(x, y, n, 1);
    make_data(xt, yt, n, 2);
    eh_head *h = NULL;
    lp_err err = {0};
    assert_int_equal(eh_head_fit(x, y, n, D, K, NULL, &h, &err), LP_OK);
    assert_int_equal(eh_head_dim(h), D);
    assert_int_equal(eh_head_classes(h), K);
    double *z = malloc(n * K * sizeof(double));
    eh_head_logprob(h, xt, n, z);
    size_t right = 0;
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        size_t arg = 0;
        for (size_t c = 0; c < K; c++) {
            s += exp(z[i * K + c]);
            if (z[i * K + c] > z[i * K + arg])
                arg = c;
        }
        assert_true(fabs(s - 1) < 1e-9);
        right += (int32_t)arg == yt[i];
    }
    /* well-separated clusters: a wrong head (or labels misaligned) would be near 0.25 */
    printf("head: %zu of %zu right\n", right, n);
    assert_true(right >= n * 95 / 100);

    /* centroid cosines: the class direction itself scores about 1; skipping class 0 drops it */
    float probe[D] = {0};
    probe[0] = 1;
    double cs_all, cs_skip;
    eh_head_max_cos(h, probe, 1, -1, &cs_all);
    eh_head_max_cos(h, probe, 1, 0, &cs_skip);
    assert_true(cs_all > 0.9);
    assert_true(cs_skip < 0.5);

    lp_buf b;
    lp_buf_init(&b);
    eh_head_save(h, &b);
    assert_int_equal(lp_buf_status(&b, NULL), LP_OK);
    lp_reader r;
    lp_reader_init(&r, b.data, b.len, "head");
    eh_head *h2 = NULL;
    assert_int_equal(eh_head_load(&r, &h2, &err), LP_OK);
    double *z2 = malloc(n * K * sizeof(double));
    eh_head_logprob(h2, xt, n, z2);
    assert_memory_equal(z, z2, n * K * sizeof(double));
    eh_head_free(h2);
    lp_reader_init(&r, b.data, b.len / 2, "head");
    assert_int_equal(eh_head_load(&r, &h2, &err), LP_EFORMAT);
    assert_null(h2);
    b.data[0] = 'X';
    lp_reader_init(&r, b.data, b.len, "head");
    assert_int_equal(eh_head_load(&r, &h2, &err), LP_EFORMAT);
    lp_buf_free(&b);
    eh_head_free(h);
    eh_head_free(NULL);
    free(x), free(xt), free(y), free(yt), free(z), free(z2);
}

static void test_thresholds(void **state)
{
    (void)state;
    /* 200 in-scope rows: confident, near a centroid, right; 40 OOS rows: just as confident but
     * far from every centroid. Only the cosine threshold can catch them. */
    enum { NI = 200, NO = 40, N = NI + NO };
    double conf[N], cosv[N];
    uint8_t gold[N], right[N], pre[N];
    for (size_t i = 0; i < N; i++) {
        bool oos = i >= NI;
        conf[i] = 0.8 + 0.1 * (double)(i % 10) / 10.0;
        cosv[i] = oos ? 0.2 + 0.001 * (double)i / N : 0.7 + 0.2 * (double)(i % 50) / 50.0;
        gold[i] = oos;
        right[i] = !oos;
        pre[i] = 0;
    }
    double tp, tc;
    lp_err err = {0};
    assert_int_equal(eh_fit_thresholds(conf, cosv, gold, right, pre, N, 0.02, 0.95, &tp, &tc,
                                       &err), LP_OK);
    size_t caught = 0, kept = 0;
    for (size_t i = 0; i < N; i++) {
        bool rej = conf[i] < tp || cosv[i] < tc;
        if (gold[i])
            caught += rej;
        else
            kept += !rej;
    }
    assert_int_equal(caught, NO);
    assert_true(kept >= NI * 98 / 100);
    /* protocol B: no OOS rows; the union of the two thresholds keeps >= 95% in scope and
     * rejects something (a no-op threshold would keep 100%) */
    assert_int_equal(eh_fit_thresholds(conf, cosv, gold, right, pre, NI, 0.02, 0.95, &tp, &tc,
                                       &err), LP_OK);
    kept = 0;
    for (size_t i = 0; i < NI; i++)
        kept += !(conf[i] < tp || cosv[i] < tc);
    assert_true(kept >= NI * 95 / 100);
    assert_true(kept < NI);
    /* protocol B under the accuracy budget (target 0): every in-scope row is right here, so the
     * budget of 2 points keeps at least 98% of them in scope, and still rejects some */
    assert_int_equal(eh_fit_thresholds(conf, cosv, gold, right, pre, NI, 0.02, 0, &tp, &tc,
                                       &err), LP_OK);
    kept = 0;
    for (size_t i = 0; i < NI; i++)
        kept += !(conf[i] < tp || cosv[i] < tc);
    assert_true(kept >= NI * 98 / 100);
    assert_true(kept < NI);
}

static void test_errors(void **state)
{
    (void)state;
    lp_err err = {0};
    eh_head_opts o = eh_head_opts_default();
    assert_int_equal(eh_head_opts_check(&o, &err), LP_OK);
    o.lr = 0;
    assert_int_equal(eh_head_opts_check(&o, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "lr"));
    float x[D] = {1};
    int32_t y[1] = {7};
    eh_head *h = NULL;
    assert_int_equal(eh_head_fit(x, y, 1, D, K, NULL, &h, &err), LP_EINVAL);
    assert_null(h);
    lp_encoder *e = NULL;
    assert_int_equal(
        eh_encoder_open("/nonexistent/enc.lpm", NULL, "test", NULL, &e, NULL, &err),
        LP_ENOTFOUND);
    assert_null(e);
    assert_non_null(strstr(lp_err_text(&err), "/nonexistent/enc.lpm"));
    /* --device: a bad name names the flag and the value; cpu and auto resolve to a table */
    const char *dev = NULL;
    assert_int_equal(eh_device("test", "tpu", &dev, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "--device 'tpu'"));
    assert_null(dev);
    assert_int_equal(eh_device("test", NULL, &dev, &err), LP_OK);
    assert_string_equal(dev, "cpu");
    assert_int_equal(eh_device("test", "auto", &dev, &err), LP_OK);
    assert_non_null(dev);
    /* cuda: the table when a device is there, else its error under --device */
    dev = NULL;
    if (eh_device("test", "cuda", &dev, &err) == LP_OK)
        assert_string_equal(dev, "cuda");
    else
        assert_non_null(strstr(lp_err_text(&err), "--device"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_head_learns_and_roundtrips),
        cmocka_unit_test(test_thresholds),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
