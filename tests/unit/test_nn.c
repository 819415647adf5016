/*
 * test_nn.c - the nn family end to end: option checks, learning a seeded two-moons problem,
 * binary and regression fits, save -> load -> predict bit-identical, the single-row path,
 * seeded reproducibility, early stopping restoring the best weights, NaN / Inf detection,
 * and corrupted or truncated model blobs.
 */
#include "lp_test.h"

#include "model/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Two interleaved half circles (scikit-learn's make_moons) with Gaussian noise. */
static void moons(size_t n, uint64_t seed, double noise, float *X, float *y)
{
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        double t = M_PI * lp_rng_uniform(&rng);
        int c = (int)(i % 2);
        double a = c ? 1.0 - cos(t) : cos(t), b = c ? 0.5 - sin(t) : sin(t);
        X[2 * i] = (float)(a + noise * lp_rng_normal(&rng));
        X[2 * i + 1] = (float)(b + noise * lp_rng_normal(&rng));
        y[i] = (float)c;
    }
}

static lp_nn_opts moons_opts(void)
{
    lp_nn_opts o = lp_nn_opts_default();
    o.hidden = "32,32";
    o.activation = "tanh";
    o.n_outputs = 2;
    o.lr = 1e-2;
    o.epochs = 40;
    o.batch_size = 32;
    o.seed = 3;
    return o;
}

static void test_opts(void **state)
{
    (void)state;
    lp_err err;
    lp_nn_opts o = lp_nn_opts_default();
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_OK);
    o.hidden = "0";
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "hidden=\"0\""));
    o.hidden = "16,,4";
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
    o.hidden = "16x";
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
    o.hidden = "99999999999999999999";
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
    o = lp_nn_opts_default();
    o.lr = 0;
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "lr=0"));
    o.lr = -1;
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
    o = lp_nn_opts_default();
    o.dropout = 1.0f;
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
    assert_string_equal(err.msg, "nn: dropout=1: must be in [0, 1)");
    o = lp_nn_opts_default();
    o.activation = "swish";
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "swish"));
    o = lp_nn_opts_default();
    o.loss = LP_NN_LOSS_BCE; /* n_outputs 2 by default */
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
    o = lp_nn_opts_default();
    float w[2] = {1, 1};
    o.loss = LP_NN_LOSS_MSE;
    o.class_weight = w;
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
    o = lp_nn_opts_default();
    o.optimizer = LP_NN_OPTIM_SGD;
    o.momentum = 0;
    o.nesterov = true;
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
    o = lp_nn_opts_default();
    o.backend = "nosuch";
    lp_nn *m = NULL;
    assert_int_equal(lp_nn_new(2, &o, &m, &err), LP_EINVAL);
    assert_null(m);
    o = lp_nn_opts_default();
    assert_int_equal(lp_nn_new(0, &o, &m, &err), LP_EINVAL);
    /* an empty spec is a linear model: one dense layer */
    o.hidden = "";
    assert_int_equal(lp_nn_new(3, &o, &m, &err), LP_OK);
    assert_int_equal(lp_nn_n_layers(m), 1);
    assert_int_equal(lp_nn_n_params(m), 3 * 2 + 2);
    lp_nn_free(m);
    lp_nn_free(NULL);
}

static void test_layers_and_init(void **state)
{
    (void)state;
    lp_nn_opts o = lp_nn_opts_default();
    o.hidden = "8,4";
    o.dropout = 0.25f;
    o.n_outputs = 3;
    lp_err err;
    lp_nn *m;
    assert_int_equal(lp_nn_new(5, &o, &m, &err), LP_OK);
    /* dense act drop dense act drop dense */
    assert_int_equal(lp_nn_n_layers(m), 7);
    assert_int_equal(lp_nn_layer_at(m, 2)->kind, LP_NN_LAYER_KIND_DROPOUT);
    assert_int_equal(lp_nn_layer_at(m, 6)->out, 3);
    assert_non_null(lp_param_layout_find(lp_nn_layout(m), "dense2.bias"));
    size_t np = lp_nn_n_params(m);
    assert_int_equal(np, 8 * 5 + 8 + 4 * 8 + 4 + 3 * 4 + 3);
    float *p = malloc(np * sizeof *p);
    assert_int_equal(lp_nn_get_params(m, p, np, &err), LP_OK);
    /* nn.Linear bounds: 1/sqrt(5) for the first layer, 1/sqrt(8), 1/sqrt(4) */
    double b0 = 0, b1 = 0;
    for (size_t i = 0; i < 48; i++)
        b0 = fmax(b0, fabs(p[i]));
    for (size_t i = 48; i < 84; i++)
        b1 = fmax(b1, fabs(p[i]));
    assert_true(b0 <= 1 / sqrt(5.0) && b0 > 0.8 / sqrt(5.0));
    assert_true(b1 <= 1 / sqrt(8.0) && b1 > 0.8 / sqrt(8.0));
    assert_int_equal(lp_nn_get_params(m, p, np - 1, &err), LP_EINVAL);
    p[3] = NAN;
    assert_int_equal(lp_nn_set_params(m, p, np, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "dense0.weight[3]"));
    free(p);
    lp_nn_free(m);
}

static double accuracy(const lp_nn *m, const float *X, const float *y, size_t n, size_t k)
{
    float *pr = malloc(n * k * sizeof *pr);
    assert_int_equal(lp_nn_predict(m, X, n, pr, NULL), LP_OK);
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        size_t c = 0;
        if (k == 1)
            c = pr[i] > 0.5f;
        else
            for (size_t j = 1; j < k; j++)
                if (pr[i * k + j] > pr[i * k + c])
                    c = j;
        ok += (float)c == y[i];
    }
    free(pr);
    return (double)ok / (double)n;
}

static void test_moons(void **state)
{
    (void)state;
    enum { N = 800, NT = 400 };
    static float X[N * 2], y[N], Xt[NT * 2], yt[NT];
    moons(N, 1, 0.15, X, y);
    moons(NT, 2, 0.15, Xt, yt);
    lp_nn_opts o = moons_opts();
    lp_err err;
    lp_nn *m;
    assert_int_equal(lp_nn_fit(X, y, N, 2, &o, NULL, NULL, 0, &m, &err), LP_OK);
    double acc = accuracy(m, Xt, yt, NT, 2);
    assert_true(acc > 0.95);
    /* probabilities sum to 1 */
    float pr[2];
    assert_int_equal(lp_nn_predict(m, Xt, 1, pr, &err), LP_OK);
    assert_true(fabs(pr[0] + pr[1] - 1.0) < 1e-6);
    lp_nn_free(m);

    /* the same problem as binary cross-entropy, SGD with momentum, cosine schedule, warm-up,
     * dropout and clipping */
    o.loss = LP_NN_LOSS_BCE;
    o.n_outputs = 1;
    o.optimizer = LP_NN_OPTIM_SGD;
    o.lr = 0.1;
    o.schedule = LP_NN_SCHED_COSINE;
    o.warmup_steps = 20;
    o.dropout = 0.1f;
    o.clip_norm = 5.0;
    o.backend = "ref";
    assert_int_equal(lp_nn_fit(X, y, N, 2, &o, NULL, NULL, 0, &m, &err), LP_OK);
    assert_true(accuracy(m, Xt, yt, NT, 1) > 0.95);
    assert_int_equal(lp_nn_steps(m), 40 * (N / 32));
    lp_nn_free(m);
}

static void test_regression(void **state)
{
    (void)state;
    enum { N = 512 };
    static float X[N * 2], y[N];
    lp_rng rng;
    lp_rng_seed(&rng, 5);
    for (size_t i = 0; i < N; i++) {
        X[2 * i] = (float)(4 * lp_rng_uniform(&rng) - 2);
        X[2 * i + 1] = (float)(4 * lp_rng_uniform(&rng) - 2);
        y[i] = sinf(X[2 * i]) + 0.5f * X[2 * i + 1] * X[2 * i + 1];
    }
    lp_nn_opts o = lp_nn_opts_default();
    o.hidden = "32,32";
    o.activation = "gelu";
    o.loss = LP_NN_LOSS_MSE;
    o.n_outputs = 1;
    o.lr = 5e-3;
    o.epochs = 60;
    lp_err err;
    lp_nn *m;
    assert_int_equal(lp_nn_fit(X, y, N, 2, &o, NULL, NULL, 0, &m, &err), LP_OK);
    float *pr = malloc(N * sizeof *pr);
    assert_int_equal(lp_nn_predict(m, X, N, pr, &err), LP_OK);
    double se = 0, var = 0, mean = 0;
    for (size_t i = 0; i < N; i++)
        mean += y[i] / (double)N;
    for (size_t i = 0; i < N; i++) {
        se += (pr[i] - y[i]) * (double)(pr[i] - y[i]);
        var += (y[i] - mean) * (y[i] - mean);
    }
    assert_true(1 - se / var > 0.95); /* R^2 */
    free(pr);
    lp_nn_free(m);
}

static uint8_t *save(const lp_nn *m, size_t *len)
{
    lp_buf b;
    lp_buf_init(&b);
    assert_int_equal(lp_nn_save(m, &b, NULL), LP_OK);
    return lp_buf_take(&b, len);
}

static void test_save_load_determinism(void **state)
{
    (void)state;
    enum { N = 256 };
    static float X[N * 2], y[N];
    moons(N, 9, 0.2, X, y);
    lp_nn_opts o = moons_opts();
    o.epochs = 5;
    o.dropout = 0.2f;
    lp_err err;
    lp_nn *a, *b;
    assert_int_equal(lp_nn_fit(X, y, N, 2, &o, NULL, NULL, 0, &a, &err), LP_OK);
    assert_int_equal(lp_nn_fit(X, y, N, 2, &o, NULL, NULL, 0, &b, &err), LP_OK);
    size_t la, lb;
    uint8_t *ba = save(a, &la), *bb = save(b, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ba, bb, la);
    free(bb);
    lp_nn_free(b);
    /* another seed gives other weights */
    o.seed = 4;
    assert_int_equal(lp_nn_fit(X, y, N, 2, &o, NULL, NULL, 0, &b, &err), LP_OK);
    bb = save(b, &lb);
    assert_int_equal(la, lb);
    assert_true(memcmp(ba, bb, la) != 0);
    free(bb);
    lp_nn_free(b);

    lp_reader r;
    lp_reader_init(&r, ba, la, "moons.nn");
    lp_nn *c;
    assert_int_equal(lp_nn_load(&r, NULL, &c, &err), LP_OK);
    assert_int_equal(r.pos, la);
    float *pa = malloc(N * 2 * sizeof *pa), *pc = malloc(N * 2 * sizeof *pc);
    assert_int_equal(lp_nn_predict(a, X, N, pa, &err), LP_OK);
    assert_int_equal(lp_nn_predict(c, X, N, pc, &err), LP_OK);
    assert_memory_equal(pa, pc, N * 2 * sizeof *pa);
    /* the single-row path agrees with the batch path to float rounding */
    float *scratch = malloc(2 * lp_nn_row_scratch(c) * sizeof *scratch);
    for (size_t i = 0; i < N; i++) {
        float row[2];
        assert_int_equal(lp_nn_predict_row(c, X + 2 * i, row, i % 2 ? scratch : NULL, &err), LP_OK);
        assert_true(fabsf(row[0] - pa[2 * i]) < 1e-5f && fabsf(row[1] - pa[2 * i + 1]) < 1e-5f);
    }
    free(scratch);
    free(pa);
    free(pc);
    lp_nn_free(c);
    lp_nn_free(a);

    /* every truncation and every single-byte corruption is an error, never a crash */
    lp_nn *bad = NULL;
    for (size_t cut = 0; cut < la; cut += (cut < 64 ? 1 : 37)) {
        lp_reader_init(&r, ba, cut, "moons.nn");
        assert_int_not_equal(lp_nn_load(&r, NULL, &bad, &err), LP_OK);
        assert_null(bad);
    }
    for (size_t i = 0; i < la; i += (i < 80 ? 1 : 53)) {
        ba[i] ^= 0x5A;
        lp_reader_init(&r, ba, la, "moons.nn");
        lp_status st = lp_nn_load(&r, NULL, &bad, &err);
        assert_true(st == LP_EFORMAT || st == LP_EVERSION);
        assert_non_null(strstr(err.msg, "moons.nn"));
        ba[i] ^= 0x5A;
    }
    free(ba);
}

/* The OpenMP thread count does not change the trained bytes: the cpu table forks a team for
 * these sizes (256 x 256 activations > LP_BACKEND_OMP_MIN) and its column sums split columns,
 * not rows, across threads. */
static void test_threads_deterministic(void **state)
{
    (void)state;
    enum { N = 1024, D = 16 };
    static float X[N * D], y[N];
    lp_rng rng;
    lp_rng_seed(&rng, 21);
    for (size_t i = 0; i < N * D; i++)
        X[i] = (float)lp_rng_normal(&rng);
    for (size_t i = 0; i < N; i++)
        y[i] = (float)(X[i * D] + X[i * D + 1] > 0);
    uint8_t *blob[2];
    size_t len[2];
    for (int t = 0; t < 2; t++) {
        lp_nn_opts o = lp_nn_opts_default();
        o.hidden = "256,256";
        o.batch_size = 256;
        o.epochs = 1;
        o.dropout = 0.1f;
        o.n_threads = t + 1;
        lp_nn *m;
        assert_int_equal(lp_nn_fit(X, y, N, D, &o, NULL, NULL, 0, &m, NULL), LP_OK);
        blob[t] = save(m, &len[t]);
        lp_nn_free(m);
    }
    assert_int_equal(len[0], len[1]);
    assert_memory_equal(blob[0], blob[1], len[0]);
    free(blob[0]);
    free(blob[1]);
}

static void test_early_stopping(void **state)
{
    (void)state;
    /* few noisy rows and a large net overfit: the validation loss rises after a few epochs */
    enum { N = 64, NV = 256 };
    static float X[N * 2], y[N], Xv[NV * 2], yv[NV];
    moons(N, 11, 0.5, X, y);
    moons(NV, 12, 0.5, Xv, yv);
    lp_nn_opts o = moons_opts();
    o.hidden = "128,128";
    o.lr = 3e-2;
    o.epochs = 300;
    o.batch_size = 16;
    o.patience = 5;
    lp_err err;
    lp_nn *m;
    assert_int_equal(lp_nn_fit(X, y, N, 2, &o, NULL, NULL, 0, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "patience"));
    assert_int_equal(lp_nn_fit(X, y, N, 2, &o, Xv, yv, NV, &m, &err), LP_OK);
    size_t run = lp_nn_epochs_run(m), best = lp_nn_best_epoch(m), nh;
    const double *h = lp_nn_valid_history(m, &nh);
    assert_true(run < 300);
    assert_int_equal(run, best + 5);
    assert_int_equal(nh, run);
    for (size_t e = 0; e < nh; e++)
        assert_true(h[e] >= lp_nn_best_valid_loss(m));
    /* the kept weights are the best epoch's: their validation loss is the best one */
    double vl;
    assert_int_equal(lp_nn_loss_grad(m, Xv, yv, NV, false, &vl, NULL, &err), LP_OK);
    assert_true(fabs(vl - lp_nn_best_valid_loss(m)) < 1e-9);
    assert_true(h[run - 1] > vl);
    lp_nn_free(m);
}

static void test_numeric_errors(void **state)
{
    (void)state;
    lp_nn_opts o = lp_nn_opts_default();
    o.hidden = "4";
    o.activation = "tanh"; /* relu would map a NaN to 0 and leave only the gradient NaN */
    o.loss = LP_NN_LOSS_MSE;
    o.n_outputs = 1;
    lp_err err;
    lp_nn *m;
    assert_int_equal(lp_nn_new(2, &o, &m, &err), LP_OK);
    size_t np = lp_nn_n_params(m);
    float *p0 = malloc(np * sizeof *p0), *p1 = malloc(np * sizeof *p1);
    assert_int_equal(lp_nn_get_params(m, p0, np, &err), LP_OK);
    /* a NaN input makes the loss NaN */
    float X[4] = {1, NAN, 0.5f, 2}, y[2] = {1, 2};
    assert_int_equal(lp_nn_train_step(m, X, y, 2, NULL, &err), LP_ENUMERIC);
    assert_non_null(strstr(err.msg, "nn step 0"));
    assert_non_null(strstr(err.msg, "mse: loss is NaN"));
    /* a target near FLT_MAX keeps the (double) loss finite but overflows the float gradient
     * 2 (p - y) / n of one row */
    float X2[4] = {1, 0.5f, 0.5f, 2}, y2[2] = {3e38f, 1};
    assert_int_equal(lp_nn_train_step(m, X2, y2, 1, NULL, &err), LP_ENUMERIC);
    assert_non_null(strstr(err.msg, "nn step 0: gradient of dense"));
    assert_int_equal(lp_nn_get_params(m, p1, np, &err), LP_OK);
    assert_memory_equal(p0, p1, np * sizeof *p0); /* no update was applied */
    assert_int_equal(lp_nn_steps(m), 0);
    /* labels are checked */
    float yc[2] = {0, 2};
    lp_nn_free(m);
    o = lp_nn_opts_default();
    assert_int_equal(lp_nn_new(2, &o, &m, &err), LP_OK);
    assert_int_equal(lp_nn_train_step(m, X2, yc, 2, NULL, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "row 1"));
    o.schedule = LP_NN_SCHED_COSINE;
    lp_nn_free(m);
    assert_int_equal(lp_nn_new(2, &o, &m, &err), LP_OK);
    yc[1] = 1;
    assert_int_equal(lp_nn_train_step(m, X2, yc, 2, NULL, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "total_steps"));
    lp_nn_free(m);
    free(p0);
    free(p1);
}

static void test_schedules(void **state)
{
    (void)state;
    lp_nn_opts o = lp_nn_opts_default();
    o.lr = 0.1;
    assert_true(lp_nn_lr_at(&o, 1000, 10) == 0.1);
    o.schedule = LP_NN_SCHED_STEP;
    o.step_size = 10;
    o.gamma = 0.5;
    assert_true(fabs(lp_nn_lr_at(&o, 9, 0) - 0.1) < 1e-15);
    assert_true(fabs(lp_nn_lr_at(&o, 25, 0) - 0.025) < 1e-15);
    o.schedule = LP_NN_SCHED_COSINE;
    o.min_lr = 0.01;
    assert_true(fabs(lp_nn_lr_at(&o, 0, 100) - 0.1) < 1e-15);
    assert_true(fabs(lp_nn_lr_at(&o, 50, 100) - 0.055) < 1e-15);
    assert_true(fabs(lp_nn_lr_at(&o, 100, 100) - 0.01) < 1e-15);
    assert_true(fabs(lp_nn_lr_at(&o, 200, 100) - 0.01) < 1e-15);
    o.warmup_steps = 4;
    assert_true(fabs(lp_nn_lr_at(&o, 0, 100) - 0.025) < 1e-15);
    assert_true(fabs(lp_nn_lr_at(&o, 3, 100) - lp_nn_lr_at(&o, 3, 100)) < 1e-15);
    assert_true(lp_nn_lr_at(&o, 3, 100) > lp_nn_lr_at(&o, 2, 100));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts),
        cmocka_unit_test(test_layers_and_init),
        cmocka_unit_test(test_moons),
        cmocka_unit_test(test_regression),
        cmocka_unit_test(test_save_load_determinism),
        cmocka_unit_test(test_threads_deterministic),
        cmocka_unit_test(test_early_stopping),
        cmocka_unit_test(test_numeric_errors),
        cmocka_unit_test(test_schedules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
