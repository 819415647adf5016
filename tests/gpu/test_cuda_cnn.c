/*
 * test_cuda_cnn.c - a short CNN training run (conv, batch norm, max pool, avg pool, dense) on
 * the "cuda" table against the same run on "cpu": same seed, same batches, so the loss curves
 * must track step by step; two cuda runs must be bit-identical (no float atomics, cuBLAS on one
 * stream); the running batch-norm statistics and the predicted classes must agree.
 *
 * Data: seeded synthetic 1x16x16 images of 3 classes: a bright 4x4 square whose position
 * depends on the class (top-left band, centre, bottom-right band, jittered by up to 2 pixels)
 * over uniform noise. Net "conv8bn,pool,conv16bn,avgpool,fc32" (the token grammar of nn.h),
 * AdamW lr 3e-3, batch 32, 2 epochs over 768 images = 48 steps. Exit 77 without a device.
 */
#include "gpu_util.h"

#include "model/nn.h"

#define N 768
#define H 16
#define D (H * H)
#define C 3
#define BATCH 32
#define EPOCHS 2
#define STEPS (EPOCHS * (N / BATCH))
/* The conv products (im2col @ W) sum up to 144 terms in a different order on cuBLAS and
 * OpenBLAS, and batch norm divides by the batch standard deviation: each step differs by float
 * rounding (~1e-6 relative), which AdamW's 1/sqrt(v) amplifies slowly. A wrong kernel (a bad
 * batch-norm gradient, a wrong argmax routing) moves the loss by 1e-2 or more within a few
 * steps. */
#define TOL_LOSS_RTOL 5e-3
/* Running statistics: 48 exponential updates of per-channel means of O(1) values. */
#define TOL_STATE_RTOL 1e-3
#define MIN_AGREE 0.98

static float X[N * D], Y[N];

static void make_data(void)
{
    lp_rng rng;
    lp_rng_seed(&rng, 77);
    for (size_t i = 0; i < N; i++) {
        int c = (int)lp_rng_below(&rng, C);
        Y[i] = (float)c;
        float *img = X + i * D;
        for (size_t p = 0; p < D; p++)
            img[p] = (float)(0.4 * lp_rng_uniform(&rng));
        int base = 2 + 4 * c;
        int oy = base + (int)lp_rng_below(&rng, 5) - 2, ox = base + (int)lp_rng_below(&rng, 5) - 2;
        oy = oy < 0 ? 0 : oy > H - 4 ? H - 4 : oy;
        ox = ox < 0 ? 0 : ox > H - 4 ? H - 4 : ox;
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++)
                img[(oy + y) * H + ox + x] += 0.8f;
    }
}

static lp_nn *run(const char *backend, double *losses)
{
    lp_nn_opts o = lp_nn_opts_default();
    o.backend = backend;
    o.arch = "conv8bn,pool,conv16bn,avgpool,fc32";
    o.input_shape = "1x16x16";
    o.n_outputs = C;
    o.lr = 3e-3;
    o.weight_decay = 1e-4;
    o.seed = 9;
    o.n_threads = 1;
    lp_nn *m = NULL;
    lp_err err;
    if (lp_nn_new(D, &o, &m, &err) != LP_OK)
        fail_msg("%s: %s", backend, err.msg);
    size_t step = 0;
    for (int e = 0; e < EPOCHS; e++)
        for (size_t r = 0; r + BATCH <= N; r += BATCH) {
            lp_status st = lp_nn_train_step(m, X + r * D, Y + r, BATCH, &losses[step++], &err);
            if (st)
                fail_msg("%s step %zu: %s", backend, step, err.msg);
        }
    return m;
}

static void test_cnn_tracks_cpu(void **state)
{
    (void)state;
    make_data();
    static double lc[STEPS], lg[STEPS], lg2[STEPS];
    lp_nn *mc = run("cpu", lc), *mg = run("cuda", lg), *mg2 = run("cuda", lg2);
    double worst = 0;
    for (size_t s = 0; s < STEPS; s++) {
        double rel = fabs(lg[s] - lc[s]) / fabs(lc[s]);
        worst = rel > worst ? rel : worst;
        if (s % 8 == 0 || s == STEPS - 1)
            printf("step %3zu  loss cpu %.6f  cuda %.6f\n", s, lc[s], lg[s]);
        assert_true(rel <= TOL_LOSS_RTOL);
    }
    printf("worst relative loss difference over %d steps: %.3g (bound %.g)\n", STEPS, worst,
           TOL_LOSS_RTOL);
    assert_true(lc[STEPS - 1] < 0.7 * lc[0]); /* it learned */

    /* Determinism: two cuda runs, bit for bit (losses and parameters). */
    assert_memory_equal(lg, lg2, sizeof lg);
    size_t np = lp_nn_n_params(mg);
    float *p1 = malloc(np * sizeof *p1), *p2 = malloc(np * sizeof *p2);
    assert_non_null(p1);
    assert_non_null(p2);
    assert_int_equal(lp_nn_get_params(mg, p1, np, NULL), LP_OK);
    assert_int_equal(lp_nn_get_params(mg2, p2, np, NULL), LP_OK);
    assert_memory_equal(p1, p2, np * sizeof *p1);
    /* and close to the cpu parameters */
    float *p3 = malloc(np * sizeof *p3);
    assert_non_null(p3);
    assert_int_equal(lp_nn_get_params(mc, p3, np, NULL), LP_OK);
    double e = gpu_nmse(p1, p3, np);
    printf("parameter NMSE cuda vs cpu after %d steps: %.3g\n", STEPS, e);
    assert_true(e < TOL_STATE_RTOL);

    /* Eval-mode predictions (running batch-norm statistics) agree with the cpu net's. */
    float *oc = malloc(N * C * sizeof *oc), *og = malloc(N * C * sizeof *og);
    assert_non_null(oc);
    assert_non_null(og);
    assert_int_equal(lp_nn_predict_raw(mc, X, N, oc, NULL), LP_OK);
    assert_int_equal(lp_nn_predict_raw(mg, X, N, og, NULL), LP_OK);
    size_t agree = 0;
    for (size_t i = 0; i < N; i++) {
        size_t ac = 0, ag = 0;
        for (size_t c = 1; c < C; c++) {
            ac = oc[i * C + c] > oc[i * C + ac] ? c : ac;
            ag = og[i * C + c] > og[i * C + ag] ? c : ag;
        }
        agree += ac == ag;
    }
    printf("predicted classes agree on %zu / %d images; logits NMSE %.3g\n", agree, N,
           gpu_nmse(og, oc, N * C));
    assert_true((double)agree >= MIN_AGREE * N);
    assert_true(gpu_nmse(og, oc, N * C) < TOL_STATE_RTOL);
    free(p1), free(p2), free(p3), free(oc), free(og);
    lp_nn_free(mc);
    lp_nn_free(mg);
    lp_nn_free(mg2);
}

int main(void)
{
    gpu_cuda_or_skip();
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_cnn_tracks_cpu)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
