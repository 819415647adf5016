/*
 * test_encoder_train_cuda.c - the encoder's backward ops and a whole LoRA gradient on the cuda
 * table against the ref table, and an adapter merged into an encoder on the cuda table. Exits 77 (skipped) when the build has no CUDA or no device is
 * present, so it runs only on a device machine.
 *
 * Tolerances: the device sums rows and columns in double, like ref, but in another order and
 * with fused multiply-adds: ~1e-6 relative on the ops; the whole-model gradient goes through
 * cuBLAS fp32 gemms of the 2-layer D = 8 model: ~1e-5.
 */
#include "lp_test.h"

#include "encoder/encoder_train.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OP_ATOL 1e-5
#define OP_RTOL 1e-5
#define NET_ATOL 1e-5
#define NET_RTOL 1e-4

static const lp_backend *cuda;

static float *up(const float *h, size_t n)
{
    float *d;
    lp_err err;
    if (cuda->alloc(cuda, (n ? n : 1) * sizeof *d, (void **)&d, &err) ||
        cuda->copy_h2d(cuda, d, h, n * sizeof *d, &err))
        fail_msg("%s", err.msg);
    return d;
}

static void down_cmp(const float *d, const float *want, size_t n, double atol, double rtol,
                     const char *what)
{
    float *h = malloc(n * sizeof *h);
    double *g = malloc(n * sizeof *g), *w = malloc(n * sizeof *w);
    lp_err err;
    if (cuda->sync(cuda, &err) || cuda->copy_d2h(cuda, h, d, n * sizeof *h, &err))
        fail_msg("%s", err.msg);
    for (size_t i = 0; i < n; i++) {
        g[i] = h[i];
        w[i] = want[i];
    }
    lp_assert_close(g, w, n, atol, rtol, what);
    free(h);
    free(g);
    free(w);
}

static void test_ops_match_ref(void **state)
{
    (void)state;
    enum { N = 37, D = 50, R = 11 };
    const lp_backend *ref = lp_backend_ref();
    lp_rng rng;
    lp_rng_seed(&rng, 5);
    float x[N * D], dy[N * D], g[D], b[D], y[N * D], mean[N], rstd[N], dx[N * D], dg[D], db[D];
    for (size_t i = 0; i < N * D; i++) {
        x[i] = (float)(3 * lp_rng_uniform(&rng) - 1);
        dy[i] = (float)(lp_rng_uniform(&rng) - 0.5);
    }
    for (size_t j = 0; j < D; j++) {
        g[j] = (float)(0.5 + lp_rng_uniform(&rng));
        b[j] = (float)(lp_rng_uniform(&rng) - 0.5);
        dg[j] = db[j] = 0.125f;
    }
    lp_err err;
    assert_int_equal(ref->layernorm_forward(ref, N, D, 1e-5f, x, g, b, y, mean, rstd, &err), 0);
    float *dx_d = up(dy, N * D), *dg_d = up(dg, D), *db_d = up(db, D);
    float *x_d = up(x, N * D), *g_d = up(g, D), *m_d = up(mean, N), *r_d = up(rstd, N);
    assert_int_equal(ref->layernorm_backward(ref, N, D, x, g, mean, rstd, dy, dx, dg, db, &err), 0);
    /* in place on the device: dx aliases dy */
    if (cuda->layernorm_backward(cuda, N, D, x_d, g_d, m_d, r_d, dx_d, dx_d, dg_d, db_d, &err))
        fail_msg("%s", err.msg);
    down_cmp(dx_d, dx, N * D, OP_ATOL, OP_RTOL, "cuda layernorm dx");
    down_cmp(dg_d, dg, D, OP_ATOL, OP_RTOL, "cuda layernorm dgamma");
    down_cmp(db_d, db, D, OP_ATOL, OP_RTOL, "cuda layernorm dbeta");

    /* softmax backward on masked probabilities */
    float mask[D];
    for (size_t j = 0; j < D; j++)
        mask[j] = j % 7 == 3 ? 0.0f : 1.0f;
    assert_int_equal(ref->softmax_rows(ref, N, D, N, mask, x, y, &err), 0);
    float *y_d = up(y, N * D), *s_d = up(dy, N * D);
    assert_int_equal(ref->softmax_rows_backward(ref, N, D, y, dy, dx, &err), 0);
    assert_int_equal(cuda->softmax_rows_backward(cuda, N, D, y_d, s_d, s_d, &err), 0);
    down_cmp(s_d, dx, N * D, OP_ATOL, OP_RTOL, "cuda softmax dx");

    /* scatter-add with repeats: the same order as the host, so the same floats */
    int32_t idx[N];
    for (size_t i = 0; i < N; i++)
        idx[i] = (int32_t)(lp_rng_below(&rng, R));
    float tab[R * D];
    for (size_t i = 0; i < R * D; i++)
        tab[i] = 1.0f;
    float *t_d = up(tab, R * D), *dy_d = up(dy, N * D);
    int32_t *i_d;
    assert_int_equal(cuda->alloc(cuda, sizeof idx, (void **)&i_d, &err), 0);
    assert_int_equal(cuda->copy_h2d(cuda, i_d, idx, sizeof idx, &err), 0);
    assert_int_equal(ref->scatter_add_rows(ref, N, D, R, dy, idx, tab, &err), 0);
    assert_int_equal(cuda->scatter_add_rows(cuda, N, D, R, dy_d, i_d, t_d, &err), 0);
    down_cmp(t_d, tab, R * D, 0, 0, "cuda scatter_add_rows");
    idx[4] = R;
    assert_int_equal(cuda->copy_h2d(cuda, i_d, idx, sizeof idx, &err), 0);
    assert_int_equal(cuda->scatter_add_rows(cuda, N, D, R, dy_d, i_d, t_d, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "idx[4]"));
    void *bufs[] = {dx_d, dg_d, db_d, x_d, g_d, m_d, r_d, y_d, s_d, t_d, dy_d, i_d};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        cuda->free(cuda, bufs[i], NULL);
}

/* The tiny random BERT fixture converted once and loaded on `table`. */
static lp_encoder *tiny_on(const char *table)
{
    static char *path;
    lp_err err;
    if (!path) {
        path = lp_test_tmpfile("tiny_cuda.lpm");
        if (lp_encoder_convert(lp_test_fixture("tiny_bert"), path, "tiny test model", &err))
            fail_msg("%s", err.msg);
    }
    lp_encoder *e = NULL;
    if (lp_encoder_load(path, table, &e, &err))
        fail_msg("%s: %s", table, err.msg);
    return e;
}

static void test_lora_gradient_matches_ref(void **state)
{
    (void)state;
    lp_err err;
    lp_encoder *er = tiny_on("ref"), *ec = tiny_on("cuda");
    lp_encoder_adapter *a = NULL;
    assert_int_equal(et_adapter_new(er, LP_ENCODER_FT_METHOD_LORA, 4, 8.0, 3, 7, &a, &err), 0);
    for (size_t i = 0; i < a->n_block; i++) /* give B a size so A's gradients are not zero */
        a->block[i] = a->block[i] == 0.0f ? 0.1f * (float)((i % 7) - 3) : a->block[i];
    et_net nr, nc;
    assert_int_equal(et_net_new(er, a, &nr, &err), LP_OK);
    assert_int_equal(et_net_new(ec, a, &nc, &err), LP_OK);
    const char *texts[] = {"a b c", "x y z x y", "hello there"};
    const int32_t y[] = {0, 2, 1};
    lp_token_batch tb;
    assert_int_equal(lp_wordpiece_encode_batch(lp_encoder_tokenizer(er), texts, 3, &tb, &err), 0);
    double lr, lc;
    assert_int_equal(et_net_run(&nr, &tb, y, true, &lr, NULL, NULL, &err), LP_OK);
    if (et_net_run(&nc, &tb, y, true, &lc, NULL, NULL, &err))
        fail_msg("%s", err.msg);
    assert_true(fabs(lr - lc) < 1e-5 * fabs(lr) + 1e-6);
    down_cmp(nc.grad.ptr, nr.grad.ptr, nr.grad.n, NET_ATOL, NET_RTOL, "cuda LoRA gradient");
    lp_token_batch_clear(&tb);
    et_net_free(&nr);
    et_net_free(&nc);
    lp_encoder_adapter_free(a);
    lp_encoder_free(er);
    lp_encoder_free(ec);
}

/* lp_encoder_adapter_merge on the cuda table: the merged encoder (its weights merged on the
 * host, then copied to the device) embeds as the adapter's training forward does, for LoRA and
 * full adapters with moved weights. */
static void test_merge_on_cuda(void **state)
{
    (void)state;
    lp_err err;
    lp_encoder *ec = tiny_on("cuda");
    const char *texts[] = {"a b c", "x y z x y", "hello there"};
    const lp_encoder_ft_method ms[2] = {LP_ENCODER_FT_METHOD_LORA, LP_ENCODER_FT_METHOD_FULL};
    for (int k = 0; k < 2; k++) {
        lp_encoder_adapter *a = NULL;
        assert_int_equal(et_adapter_new(ec, ms[k], 4, 8.0, 3, 7, &a, &err), 0);
        for (size_t i = 0; i < a->n_block; i += 5)
            a->block[i] += 0.05f * (float)((i % 7) - 3);
        float za[3 * 8], zm[3 * 8], p[3 * 3];
        assert_int_equal(lp_encoder_adapter_predict(a, ec, texts, 3, p, za, &err), LP_OK);
        lp_encoder *m = NULL;
        if (lp_encoder_adapter_merge(a, ec, &m, &err))
            fail_msg("%s", err.msg);
        assert_int_equal(lp_encoder_embed(m, texts, 3, 3, zm, NULL, &err), LP_OK);
        double g[3 * 8], w[3 * 8];
        for (size_t i = 0; i < 3 * 8; i++)
            g[i] = zm[i], w[i] = za[i];
        lp_assert_close(g, w, 3 * 8, NET_ATOL, NET_RTOL, "merged encoder on cuda vs adapter");
        lp_encoder_free(m);
        lp_encoder_adapter_free(a);
    }
    lp_encoder_free(ec);
}

int main(void)
{
    lp_err err;
    if (lp_backend_get("cuda", &cuda, &err)) {
        printf("skip: %s\n", err.msg);
        return 77;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ops_match_ref),
        cmocka_unit_test(test_lora_gradient_matches_ref),
        cmocka_unit_test(test_merge_on_cuda),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
