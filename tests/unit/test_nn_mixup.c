/*
 * test_nn_mixup.c - mixup in lp_nn_train (lp_nn_opts.mixup_alpha, Zhang et al. 2018): one plain
 * SGD step of lr 1 on a mixed batch moves the weights by exactly
 *   l grad L(x_mix, y) + (1 - l) grad L(x_mix, y[perm])
 * recomputed here from lp_nn_mixup_draw and lp_nn_loss_grad (softmax cross-entropy with two
 * classes' partner labels, and BCE with mixed soft targets); the draws are Beta(alpha, alpha)
 * (mean 1/2, variance 1 / (4 (2 alpha + 1))) and permutations; the option is range-checked.
 */
#include "lp_test.h"

#include "model/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The step is float arithmetic on gradients of size ~0.1-1; the reference sums two float
 * gradients in double. */
#define STEP_TOL 1e-5

enum { N = 24, D = 4 };

static lp_nn_opts opts(lp_nn_loss loss)
{
    lp_nn_opts o = lp_nn_opts_default();
    o.hidden = "6";
    o.activation = "tanh";
    o.loss = loss;
    o.n_outputs = loss == LP_NN_LOSS_BCE ? 1 : 3;
    o.optimizer = LP_NN_OPTIM_SGD;
    o.momentum = 0;
    o.lr = 1.0;
    o.epochs = 1;
    o.batch_size = N; /* one step */
    o.shuffle = false;
    o.seed = 9;
    o.mixup_alpha = 0.4;
    return o;
}

static void check_step(lp_nn_loss loss)
{
    float X[N * D], y[N], Xm[N * D], ya[N], yb[N];
    lp_rng r;
    lp_rng_seed(&r, 2);
    for (size_t i = 0; i < N * D; i++)
        X[i] = (float)lp_rng_normal(&r);
    for (size_t i = 0; i < N; i++)
        y[i] = loss == LP_NN_LOSS_BCE ? (float)lp_rng_uniform(&r) : (float)(i % 3);
    lp_nn_opts o = opts(loss);
    lp_err err;
    lp_nn *ref, *mixed;
    o.mixup_alpha = 0;
    assert_int_equal(lp_nn_new(D, &o, &ref, &err), LP_OK);
    o.mixup_alpha = 0.4;
    size_t np = lp_nn_n_params(ref);
    float *w0 = malloc(np * sizeof *w0), *ga = malloc(np * sizeof *ga);
    float *gb = malloc(np * sizeof *gb), *w1 = malloc(np * sizeof *w1);
    assert_non_null(w0);
    assert_non_null(ga);
    assert_non_null(gb);
    assert_non_null(w1);
    assert_int_equal(lp_nn_get_params(ref, w0, np, &err), LP_OK);
    double lam;
    size_t perm[N];
    lp_nn_mixup_draw(&o, 0, N, &lam, perm);
    assert_true(lam > 0 && lam < 1);
    for (size_t i = 0; i < N; i++) {
        for (size_t j = 0; j < D; j++)
            Xm[i * D + j] = (float)lam * X[i * D + j] + (float)(1 - lam) * X[perm[i] * D + j];
        ya[i] = y[i];
        yb[i] = y[perm[i]];
    }
    double l;
    if (loss == LP_NN_LOSS_BCE) { /* soft targets: one gradient at the mixed target */
        for (size_t i = 0; i < N; i++)
            ya[i] = (float)lam * y[i] + (float)(1 - lam) * y[perm[i]];
        assert_int_equal(lp_nn_loss_grad(ref, Xm, ya, N, true, &l, ga, &err), LP_OK);
        memset(gb, 0, np * sizeof *gb);
    } else {
        assert_int_equal(lp_nn_loss_grad(ref, Xm, ya, N, true, &l, ga, &err), LP_OK);
        assert_int_equal(lp_nn_loss_grad(ref, Xm, yb, N, true, &l, gb, &err), LP_OK);
    }
    assert_int_equal(lp_nn_fit(X, y, N, D, &o, NULL, NULL, 0, &mixed, &err), LP_OK);
    assert_int_equal(lp_nn_get_params(mixed, w1, np, &err), LP_OK);
    double moved = 0;
    for (size_t i = 0; i < np; i++) {
        double g = loss == LP_NN_LOSS_BCE ? ga[i] : lam * ga[i] + (1 - lam) * gb[i];
        assert_true(fabs(w1[i] - (w0[i] - g)) < STEP_TOL);
        moved = fmax(moved, fabs(g));
    }
    assert_true(moved > 1e-2);
    free(w0);
    free(ga);
    free(gb);
    free(w1);
    lp_nn_free(ref);
    lp_nn_free(mixed);
}

static void test_step_softmax(void **state)
{
    (void)state;
    check_step(LP_NN_LOSS_SOFTMAX_XENT);
}

static void test_step_bce(void **state)
{
    (void)state;
    check_step(LP_NN_LOSS_BCE);
}

static void test_draws(void **state)
{
    (void)state;
    lp_nn_opts o = opts(LP_NN_LOSS_SOFTMAX_XENT);
    enum { T = 4000 };
    for (int k = 0; k < 2; k++) {
        o.mixup_alpha = k ? 2.0 : 0.4; /* both branches of the gamma sampler */
        double s = 0, s2 = 0;
        size_t perm[8];
        for (uint64_t t = 0; t < T; t++) {
            double lam;
            lp_nn_mixup_draw(&o, t, 8, &lam, perm);
            s += lam, s2 += lam * lam;
            int seen = 0;
            for (int i = 0; i < 8; i++)
                seen |= 1 << perm[i];
            assert_int_equal(seen, 0xFF);
        }
        double mean = s / T, var = s2 / T - mean * mean, want = 1 / (4 * (2 * o.mixup_alpha + 1));
        /* standard errors: mean ~0.006, variance ~0.003 at T = 4000 */
        assert_true(fabs(mean - 0.5) < 0.02);
        assert_true(fabs(var - want) < 0.012);
    }
    lp_err err;
    o.mixup_alpha = -1;
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "mixup_alpha"));
    o.mixup_alpha = INFINITY;
    assert_int_equal(lp_nn_opts_check(&o, &err), LP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_step_softmax),
        cmocka_unit_test(test_step_bce),
        cmocka_unit_test(test_draws),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
