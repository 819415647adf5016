/*
 * test_nn_conv_grad.c - finite-difference checks of the image layer kinds of the nn family
 * (conv2d with stride and padding, max / average / global average pooling, batch norm over
 * channels and over flat features): the loss gradient w.r.t. every parameter in training mode
 * (batch-norm batch statistics), and the gradient of a logit w.r.t. the input in eval mode
 * (running statistics, the path integrated gradients use), on the ref and cpu tables. Also:
 * the single-row host path agrees with the batch path, running statistics move toward the
 * batch statistics, and a save / load round trip keeps parameters and running statistics.
 *
 * The networks use tanh / sigmoid (smooth) and seeded inputs whose max-pool windows have
 * well-separated values, so the central difference is well defined everywhere. Max pooling
 * is checked on the input (after a convolution, a perturbed weight can switch a window's
 * winner within the finite-difference step, where the gradient is undefined).
 */
#include "lp_test.h"

#include "model/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Step and tolerances as test_nn_grad.c: h = 3e-3 keeps float rounding of the loss divided
 * by 2h near 1e-5 and the truncation error near 1e-6 on these O(1) nets; batch norm divides by
 * a batch standard deviation and roughly doubles the rounding, hence atol 1e-4. */
#define FD_H 3e-3
#define FD_ATOL 1e-4
#define FD_RTOL 2e-3

static const char *const ARCHS[] = {
    "pool,conv3bn,fc4",            /* max pool on the input, conv + batch norm, dense */
    "conv3,fc4",                   /* conv (3x3, pad 1) + dense */
    "conv3k3s2bn,avgpool,bn,fc4bn", /* strided conv, batch norm 2-D, avg pool, 1-D batch norm */
    "conv2k5bn,gap",               /* 5x5 conv, batch norm, global average pool */
};

static lp_nn *make(const char *backend, const char *arch, const char *act)
{
    lp_nn_opts o = lp_nn_opts_default();
    o.backend = backend;
    o.arch = arch;
    o.input_shape = "2x6x6";
    o.activation = act;
    o.n_outputs = 3;
    o.seed = 11;
    lp_err err;
    lp_nn *m = NULL;
    lp_status st = lp_nn_new(72, &o, &m, &err);
    if (st)
        fail_msg("%s: %s", arch, err.msg);
    return m;
}

/* Seeded values in [-1, 1.2) whose 2x2 windows (of 6x6 planes) hold four levels 0.5 apart
 * (in a random order per window) plus noise below 0.3: a max-pool on the input never switches
 * its winner under a step of FD_H, and rows differ enough for batch statistics. */
static void fill(float *X, size_t n, uint64_t seed)
{
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    for (size_t w0 = 0; w0 + 36 <= n; w0 += 36)
        for (size_t wy = 0; wy < 6; wy += 2)
            for (size_t wx = 0; wx < 6; wx += 2) {
                size_t rot = (size_t)lp_rng_below(&rng, 4);
                for (size_t k = 0; k < 4; k++) {
                    size_t i = w0 + (wy + k / 2) * 6 + wx + k % 2;
                    X[i] = (float)(-0.9 + 0.5 * (double)((k + rot) % 4) +
                                   0.3 * lp_rng_uniform(&rng));
                }
            }
}

static void check_params(const char *backend, const char *arch)
{
    const size_t n = 4, d = 72;
    lp_nn *m = make(backend, arch, "tanh");
    float X[4 * 72], y[4] = {0, 1, 2, 1};
    fill(X, n * d, 5);
    size_t np = lp_nn_n_params(m);
    float *p = malloc(np * sizeof *p), *g = malloc(np * sizeof *g);
    double *gd = malloc(np * sizeof *gd), *fd = malloc(np * sizeof *fd);
    lp_err err;
    assert_int_equal(lp_nn_get_params(m, p, np, &err), LP_OK);
    double l0;
    assert_int_equal(lp_nn_loss_grad(m, X, y, n, true, &l0, g, &err), LP_OK);
    for (size_t i = 0; i < np; i++) {
        float keep = p[i];
        double lpl, lmi;
        p[i] = keep + (float)FD_H;
        double hp = (double)p[i] - keep;
        assert_int_equal(lp_nn_set_params(m, p, np, &err), LP_OK);
        assert_int_equal(lp_nn_loss_grad(m, X, y, n, true, &lpl, NULL, &err), LP_OK);
        p[i] = keep - (float)FD_H;
        double hm = keep - (double)p[i];
        assert_int_equal(lp_nn_set_params(m, p, np, &err), LP_OK);
        assert_int_equal(lp_nn_loss_grad(m, X, y, n, true, &lmi, NULL, &err), LP_OK);
        p[i] = keep;
        fd[i] = (lpl - lmi) / (hp + hm);
        gd[i] = g[i];
    }
    double gmax = 0;
    for (size_t i = 0; i < np; i++)
        gmax = fmax(gmax, fabs(gd[i]));
    assert_true(gmax > 1e-3);
    char what[128];
    snprintf(what, sizeof what, "%s %s parameter grad", backend, arch);
    lp_assert_close(gd, fd, np, FD_ATOL, FD_RTOL, what);
    free(p);
    free(g);
    free(gd);
    free(fd);
    lp_nn_free(m);
}

/* d logit_c / d x in eval mode against central differences of lp_nn_predict_raw. */
static void check_input(const char *backend, const char *arch)
{
    const size_t n = 2, d = 72;
    lp_nn *m = make(backend, arch, "sigmoid");
    float X[2 * 72], y[2] = {2, 0};
    fill(X, n * d, 9);
    lp_err err;
    /* one training step so batch-norm running statistics are not the identity */
    double loss;
    assert_int_equal(lp_nn_train_step(m, X, y, n, &loss, &err), LP_OK);
    int32_t cls[2] = {2, 0};
    float grad[2 * 72], logit[2 * 3], lo[2 * 3], hi[2 * 3];
    assert_int_equal(lp_nn_input_grad(m, X, n, cls, grad, logit, &err), LP_OK);
    double gd[2 * 72], fd[2 * 72];
    for (size_t i = 0; i < n * d; i++) {
        float keep = X[i];
        X[i] = keep + (float)FD_H;
        double hp = (double)X[i] - keep;
        assert_int_equal(lp_nn_predict_raw(m, X, n, hi, &err), LP_OK);
        X[i] = keep - (float)FD_H;
        double hm = keep - (double)X[i];
        assert_int_equal(lp_nn_predict_raw(m, X, n, lo, &err), LP_OK);
        X[i] = keep;
        size_t r = i / d;
        fd[i] = ((double)hi[r * 3 + (size_t)cls[r]] - lo[r * 3 + (size_t)cls[r]]) / (hp + hm);
        gd[i] = grad[i];
    }
    double gmax = 0;
    for (size_t i = 0; i < n * d; i++)
        gmax = fmax(gmax, fabs(gd[i]));
    assert_true(gmax > 1e-4);
    char what[128];
    snprintf(what, sizeof what, "%s %s input grad", backend, arch);
    lp_assert_close(gd, fd, n * d, FD_ATOL, FD_RTOL, what);
    /* the logits returned are the eval-mode outputs */
    float raw[2 * 3];
    assert_int_equal(lp_nn_predict_raw(m, X, n, raw, &err), LP_OK);
    for (size_t i = 0; i < 6; i++)
        assert_true(fabsf(raw[i] - logit[i]) < 1e-5f);
    lp_nn_free(m);
}

static void test_param_grads(void **state)
{
    (void)state;
    for (size_t a = 0; a < sizeof ARCHS / sizeof ARCHS[0]; a++) {
        check_params("ref", ARCHS[a]);
        check_params("cpu", ARCHS[a]);
    }
}

static void test_input_grads(void **state)
{
    (void)state;
    for (size_t a = 0; a < sizeof ARCHS / sizeof ARCHS[0]; a++) {
        check_input("ref", ARCHS[a]);
        check_input("cpu", ARCHS[a]);
    }
}

/* Batch norm's running statistics move toward the batch's (momentum 0.1), the row path
 * matches the batch path, and save / load keeps both parameters and statistics. */
static void test_state_row_and_io(void **state)
{
    (void)state;
    lp_nn *m = make("cpu", "conv4bn,pool,fc6bn", "relu");
    float X[8 * 72], y[8];
    fill(X, 8 * 72, 3);
    for (size_t i = 0; i < 72 * 8; i++)
        X[i] = 3.0f + 2.0f * X[i]; /* mean 3: the running mean must move off 0 */
    for (size_t i = 0; i < 8; i++)
        y[i] = (float)(i % 3);
    lp_err err;
    assert_int_equal(lp_nn_n_state(m), 2 * 4 + 2 * 6);
    const float *s = lp_nn_state(m);
    assert_true(s[0] == 0.0f && s[4] == 1.0f);
    for (int t = 0; t < 3; t++)
        assert_int_equal(lp_nn_train_step(m, X, y, 8, NULL, &err), LP_OK);
    s = lp_nn_state(m);
    /* conv output mean is unknown, but three steps of momentum 0.1 move it from 0 */
    double moved = 0;
    for (size_t j = 0; j < 4; j++)
        moved += fabs(s[j]) + fabs(s[4 + j] - 1.0);
    assert_true(moved > 1e-3);
    float batch[8 * 3], row[3];
    assert_int_equal(lp_nn_predict(m, X, 8, batch, &err), LP_OK);
    for (size_t i = 0; i < 8; i++) {
        assert_int_equal(lp_nn_predict_row(m, X + i * 72, row, NULL, &err), LP_OK);
        for (size_t j = 0; j < 3; j++)
            assert_true(fabsf(row[j] - batch[i * 3 + j]) < 1e-5f);
    }
    lp_buf b;
    lp_buf_init(&b);
    assert_int_equal(lp_nn_save(m, &b, &err), LP_OK);
    lp_reader r;
    lp_reader_init(&r, b.data, b.len, "conv net");
    lp_nn *m2;
    assert_int_equal(lp_nn_load(&r, "cpu", &m2, &err), LP_OK);
    float again[8 * 3];
    assert_int_equal(lp_nn_predict(m2, X, 8, again, &err), LP_OK);
    assert_memory_equal(again, batch, sizeof batch);
    /* a flipped byte anywhere is refused */
    b.data[b.len / 2] ^= 0x40;
    lp_reader_init(&r, b.data, b.len, "conv net");
    lp_nn *m3 = NULL;
    assert_int_not_equal(lp_nn_load(&r, "cpu", &m3, &err), LP_OK);
    assert_null(m3);
    lp_buf_free(&b);
    lp_nn_free(m2);
    lp_nn_free(m);
}

static void test_arch_errors(void **state)
{
    (void)state;
    lp_nn_opts o = lp_nn_opts_default();
    lp_err err;
    lp_nn *m = NULL;
    const char *bad[] = {"conv0", "conv8k4", "pool", "fc", "conv8,,fc2", "swirl3", "drop"};
    o.input_shape = "1x4x4";
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        o.arch = bad[i];
        lp_status st = lp_nn_new(16, &o, &m, &err);
        if (strcmp(bad[i], "pool") == 0) {
            assert_int_equal(st, LP_OK); /* pool alone on 1x4x4 is fine */
            lp_nn_free(m);
            continue;
        }
        assert_int_equal(st, LP_EINVAL);
        assert_non_null(strstr(err.msg, "arch"));
    }
    o.arch = "conv4";
    o.input_shape = "1x4x5";
    assert_int_equal(lp_nn_new(16, &o, &m, &err), LP_EINVAL); /* 20 values, d 16 */
    o.input_shape = NULL;
    assert_int_equal(lp_nn_new(16, &o, &m, &err), LP_EINVAL); /* conv needs a shape */
    o.input_shape = "1x2x2";
    o.arch = "pool,pool";
    assert_int_equal(lp_nn_new(4, &o, &m, &err), LP_EINVAL); /* 1x1 cannot pool 2x2 */
    o.arch = "conv2";
    o.augment = "hflip,spin=3";
    assert_int_equal(lp_nn_new(4, &o, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "spin"));
}

/* Augmentation is seeded (same seed, same pixels), changes the image, and keeps a flipped
 * symmetric image's mass. */
static void test_augment(void **state)
{
    (void)state;
    lp_nn_opts o = lp_nn_opts_default();
    o.input_shape = "1x8x8";
    o.augment = "hflip,shift=1.5,rotate=10,brightness=0.1";
    float a[2 * 64], b[2 * 64], orig[2 * 64];
    lp_rng rng;
    lp_rng_seed(&rng, 4);
    for (size_t i = 0; i < 128; i++)
        orig[i] = (float)lp_rng_uniform(&rng);
    memcpy(a, orig, sizeof a);
    memcpy(b, orig, sizeof b);
    lp_err err;
    assert_int_equal(lp_nn_augment(&o, a, 2, 7, 3, &err), LP_OK);
    assert_int_equal(lp_nn_augment(&o, b, 2, 7, 3, &err), LP_OK);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, orig, sizeof a);
    memcpy(b, orig, sizeof b);
    assert_int_equal(lp_nn_augment(&o, b, 2, 7, 4, &err), LP_OK);
    assert_memory_not_equal(a, b, sizeof a);
    /* a pure flip is an exact permutation of the pixels */
    o.augment = "hflip";
    size_t flipped = 0;
    for (uint64_t step = 0; step < 8; step++) {
        memcpy(a, orig, sizeof a);
        assert_int_equal(lp_nn_augment(&o, a, 1, 1, step, &err), LP_OK);
        bool same = memcmp(a, orig, 64 * sizeof(float)) == 0;
        if (!same) {
            flipped++;
            for (size_t yy = 0; yy < 8; yy++)
                for (size_t xx = 0; xx < 8; xx++)
                    assert_true(fabsf(a[yy * 8 + xx] - orig[yy * 8 + 7 - xx]) < 1e-6f);
        }
    }
    assert_true(flipped > 0 && flipped < 8);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_grads),      cmocka_unit_test(test_input_grads),
        cmocka_unit_test(test_state_row_and_io), cmocka_unit_test(test_arch_errors),
        cmocka_unit_test(test_augment),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
