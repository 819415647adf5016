/*
 * test_nn_ema.c - the exponential moving average of an nn's weights (lp_nn_opts.ema_decay):
 * the net lp_nn_train returns equals the average recomputed here from the raw trajectory of the
 * same steps taken one by one (through both the warm-up and the decay regime of
 * a = min(decay, (1 + t) / (10 + t))), and its batch-norm running statistics are the averaged
 * ones carried through one pass of training-mode batch statistics of the averaged weights
 * (momentum 0.1, unbiased variance), recomputed here; validation during training scores the
 * averaged weights; the option is range-checked.
 */
#include "lp_test.h"

#include "model/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The net averages in float (scale then axpy on the backend); this test in double: 20 steps
 * of rounding at |w| < 2. */
#define EMA_TOL 2e-5

enum { N = 320, D = 3, H = 8, BS = 16, STEPS = N / BS, NV = 64 };

static void data(size_t n, uint64_t seed, float *X, float *y)
{
    lp_rng r;
    lp_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < D; j++)
            s += (X[i * D + j] = (float)lp_rng_normal(&r)) * (double)(j + 1);
        y[i] = s + 0.3 * lp_rng_normal(&r) > 0 ? 1.0f : 0.0f;
    }
}

static lp_nn_opts opts(double decay)
{
    lp_nn_opts o = lp_nn_opts_default();
    o.arch = "fc8bn,fc8"; /* batch norm: the running statistics are averaged too */
    o.n_outputs = 2;
    o.lr = 5e-2;
    o.epochs = 1;
    o.batch_size = BS;
    o.shuffle = false;
    o.seed = 7;
    o.ema_decay = decay;
    return o;
}

static void test_matches_trajectory(void **state)
{
    (void)state;
    static float X[N * D], y[N];
    data(N, 1, X, y);
    const double decay = 0.6; /* (1 + t) / (10 + t) passes 0.6 at t = 13.5 < STEPS */
    lp_err err;
    lp_nn *raw, *avg;
    lp_nn_opts o = opts(0);
    assert_int_equal(lp_nn_new(D, &o, &raw, &err), LP_OK);
    size_t np = lp_nn_n_params(raw), ns = lp_nn_n_state(raw);
    assert_true(ns > 0);
    double *e = calloc(np + ns, sizeof *e);
    float *w = malloc(np * sizeof *w);
    assert_non_null(e);
    assert_non_null(w);
    for (size_t s = 0; s < STEPS; s++) {
        assert_int_equal(lp_nn_train_step(raw, X + s * BS * D, y + s * BS, BS, NULL, &err), LP_OK);
        assert_int_equal(lp_nn_get_params(raw, w, np, &err), LP_OK);
        const float *st = lp_nn_state(raw);
        double a = s == 0 ? 0.0 : fmin(decay, (1.0 + (double)s) / (10.0 + (double)s));
        for (size_t i = 0; i < np; i++)
            e[i] = a * e[i] + (1 - a) * w[i];
        for (size_t i = 0; i < ns; i++)
            e[np + i] = a * e[np + i] + (1 - a) * st[i];
    }
    o = opts(decay);
    assert_int_equal(lp_nn_fit(X, y, N, D, &o, NULL, NULL, 0, &avg, &err), LP_OK);
    assert_int_equal(lp_nn_steps(avg), STEPS);
    float *got = malloc(np * sizeof *got);
    assert_non_null(got);
    assert_int_equal(lp_nn_get_params(avg, got, np, &err), LP_OK);
    double moved = 0; /* the average must be far from the last raw weights */
    for (size_t i = 0; i < np; i++) {
        assert_true(fabs(got[i] - e[i]) < EMA_TOL);
        moved = fmax(moved, fabs((double)w[i] - e[i]));
    }
    assert_true(moved > 100 * EMA_TOL);
    /* running statistics: from the averaged ones, one pass over the rows in order, the first
     * layer's pre-norm activations h = x W^T + b of the averaged dense0 (W (8, 3), then b) */
    assert_int_equal(ns, 2 * H);
    double rm[H], rv[H];
    for (size_t j = 0; j < H; j++)
        rm[j] = e[np + j], rv[j] = e[np + H + j];
    for (size_t s = 0; s < STEPS; s++) {
        double mu[H] = {0}, m2[H] = {0}, h[BS][H];
        for (size_t r = 0; r < BS; r++)
            for (size_t j = 0; j < H; j++) {
                const float *x = X + (s * BS + r) * D;
                h[r][j] = got[H * D + j];
                for (size_t q = 0; q < D; q++)
                    h[r][j] += (double)got[j * D + q] * x[q];
                mu[j] += h[r][j] / BS;
            }
        for (size_t r = 0; r < BS; r++)
            for (size_t j = 0; j < H; j++)
                m2[j] += (h[r][j] - mu[j]) * (h[r][j] - mu[j]);
        for (size_t j = 0; j < H; j++) {
            rm[j] = 0.9 * rm[j] + 0.1 * mu[j];
            rv[j] = 0.9 * rv[j] + 0.1 * m2[j] / (BS - 1);
        }
    }
    const float *st = lp_nn_state(avg), *st_raw = lp_nn_state(raw);
    double from_raw = 0, from_avg = 0; /* neither the raw nor the averaged statistics */
    for (size_t j = 0; j < H; j++) {
        assert_true(fabs(st[j] - rm[j]) < EMA_TOL);
        assert_true(fabs(st[H + j] - rv[j]) < EMA_TOL * fmax(1, rv[j]));
        from_raw = fmax(from_raw, fabs((double)st_raw[j] - rm[j]));
        from_avg = fmax(from_avg, fabs(e[np + j] - rm[j]));
    }
    assert_true(from_raw > 100 * EMA_TOL);
    assert_true(from_avg > 100 * EMA_TOL);
    free(e);
    free(w);
    free(got);
    lp_nn_free(raw);
    lp_nn_free(avg);
}

static void test_validation_scores_average(void **state)
{
    (void)state;
    static float X[N * D], y[N], Xv[NV * D], yv[NV];
    data(N, 2, X, y);
    data(NV, 3, Xv, yv);
    lp_err err;
    lp_nn *m;
    lp_nn_opts o = opts(0.9);
    o.arch = "fc8,fc8"; /* no batch norm: the trained net is the last validated average */
    o.epochs = 3;
    assert_int_equal(lp_nn_fit(X, y, N, D, &o, Xv, yv, NV, &m, &err), LP_OK);
    size_t nh;
    const double *h = lp_nn_valid_history(m, &nh);
    assert_int_equal(nh, 3);
    /* the returned net is the average of the last epoch: its loss is the recorded one */
    double vl;
    assert_int_equal(lp_nn_loss_grad(m, Xv, yv, NV, false, &vl, NULL, &err), LP_OK);
    assert_true(fabs(vl - h[2]) < 1e-9);
    /* and the same training without averaging ends elsewhere */
    lp_nn *r;
    o.ema_decay = 0;
    assert_int_equal(lp_nn_fit(X, y, N, D, &o, Xv, yv, NV, &r, &err), LP_OK);
    size_t nr;
    const double *hr = lp_nn_valid_history(r, &nr);
    assert_true(fabs(hr[2] - h[2]) > 1e-6);
    lp_nn_free(m);
    lp_nn_free(r);
}

static void test_opts_range(void **state)
{
    (void)state;
    lp_err err;
    lp_nn_opts o = opts(1.0);
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "ema_decay=1"));
    o.ema_decay = -0.1;
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
    o.ema_decay = NAN;
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
    o.ema_decay = 0.999;
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_trajectory),
        cmocka_unit_test(test_validation_scores_average),
        cmocka_unit_test(test_opts_range),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
