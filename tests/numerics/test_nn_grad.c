/*
 * test_nn_grad.c - finite-difference checks of the whole network's loss gradient w.r.t.
 * every parameter (every element of every tensor of the packed block), for each loss
 * (softmax cross-entropy with class weights, binary cross-entropy, MSE over 2 targets) and
 * each activation (relu, tanh, sigmoid, gelu, gelu_tanh), with and without dropout (a fixed
 * mask: the masks depend only on seed and step), on the ref and cpu tables.
 *
 * The network runs in float; the reference is the central difference
 * (L(p + h e_i) - L(p - h e_i)) / 2h of the float network's loss (accumulated in double).
 */
#include "lp_test.h"

#include "model/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Step: large enough that the float rounding of the logits (~1e-7 |z|) divided by 2h stays
 * ~1e-5, small enough that the truncation error h^2 |L'''| / 6 stays ~1e-6 on these O(1)
 * nets. Relu's kink is met only if a pre-activation lies within h of 0: the seeded data keep
 * all of them clear (the test would flag a crossing as a mismatch on that one parameter).
 * Measured worst case: 3e-5 absolute (cpu table, whose OpenBLAS products round differently
 * from one evaluation to the next of the perturbed nets), hence 5e-5. */
#define FD_H 3e-3
#define FD_ATOL 5e-5
#define FD_RTOL 1e-3

static void check(const char *backend, lp_nn_loss loss, const char *act, float dropout)
{
    const size_t n = 6, d = 3;
    lp_nn_opts o = lp_nn_opts_default();
    o.backend = backend;
    o.hidden = "5,4";
    o.activation = act;
    o.dropout = dropout;
    o.loss = loss;
    o.seed = 7;
    float cw[3] = {1.0f, 2.5f, 0.5f};
    o.n_outputs = loss == LP_NN_LOSS_SOFTMAX_XENT ? 3 : loss == LP_NN_LOSS_BCE ? 1 : 2;
    if (loss == LP_NN_LOSS_SOFTMAX_XENT)
        o.class_weight = cw;
    lp_err err;
    lp_nn *m;
    assert_int_equal(lp_nn_new(d, &o, &m, &err), LP_OK);
    lp_rng rng;
    lp_rng_seed(&rng, 99);
    float X[6 * 3], y[6 * 2];
    for (size_t i = 0; i < n * d; i++)
        X[i] = (float)(2.0 * lp_rng_uniform(&rng) - 1.0);
    for (size_t i = 0; i < n; i++) {
        if (loss == LP_NN_LOSS_SOFTMAX_XENT)
            y[i] = (float)(i % 3);
        else if (loss == LP_NN_LOSS_BCE)
            y[i] = (float)lp_rng_uniform(&rng);
        else
            y[2 * i] = (float)lp_rng_normal(&rng), y[2 * i + 1] = (float)lp_rng_normal(&rng);
    }
    size_t np = lp_nn_n_params(m);
    assert_int_equal(np, 5 * 3 + 5 + 4 * 5 + 4 + (size_t)o.n_outputs * 4 + (size_t)o.n_outputs);
    float *p = malloc(np * sizeof *p), *g = malloc(np * sizeof *g);
    double *gd = malloc(np * sizeof *gd), *fd = malloc(np * sizeof *fd);
    assert_int_equal(lp_nn_get_params(m, p, np, &err), LP_OK);
    bool train = dropout > 0;
    double l0;
    assert_int_equal(lp_nn_loss_grad(m, X, y, n, train, &l0, g, &err), LP_OK);
    for (size_t i = 0; i < np; i++) {
        float keep = p[i];
        double lp_, lm;
        p[i] = keep + (float)FD_H;
        double hp = (double)p[i] - keep;
        assert_int_equal(lp_nn_set_params(m, p, np, &err), LP_OK);
        assert_int_equal(lp_nn_loss_grad(m, X, y, n, train, &lp_, NULL, &err), LP_OK);
        p[i] = keep - (float)FD_H;
        double hm = keep - (double)p[i];
        assert_int_equal(lp_nn_set_params(m, p, np, &err), LP_OK);
        assert_int_equal(lp_nn_loss_grad(m, X, y, n, train, &lm, NULL, &err), LP_OK);
        p[i] = keep;
        fd[i] = (lp_ - lm) / (hp + hm);
        gd[i] = g[i];
    }
    double gmax = 0;
    for (size_t i = 0; i < np; i++)
        gmax = fmax(gmax, fabs(gd[i]));
    assert_true(gmax > 1e-3); /* a zero gradient would pass a loose comparison */
    char what[96];
    snprintf(what, sizeof what, "%s loss %d act %s dropout %.1f grad", backend, (int)loss, act,
             (double)dropout);
    lp_assert_close(gd, fd, np, FD_ATOL, FD_RTOL, what);
    free(p);
    free(g);
    free(gd);
    free(fd);
    lp_nn_free(m);
}

static void run_all(const char *backend)
{
    const char *acts[] = {"relu", "tanh", "sigmoid", "gelu", "gelu_tanh"};
    const lp_nn_loss losses[] = {LP_NN_LOSS_SOFTMAX_XENT, LP_NN_LOSS_BCE, LP_NN_LOSS_MSE};
    for (size_t l = 0; l < 3; l++)
        for (size_t a = 0; a < 5; a++)
            check(backend, losses[l], acts[a], 0.0f);
    /* dropout: the mask of step 0 is fixed across the perturbed evaluations */
    for (size_t l = 0; l < 3; l++)
        check(backend, losses[l], "tanh", 0.3f);
}

static void test_grad_ref(void **state)
{
    (void)state;
    run_all("ref");
}

/* The second table checked; tests/gpu/test_cuda_nn_grad.c includes this file with "cuda". */
#ifndef LP_NN_GRAD_TABLE
#define LP_NN_GRAD_TABLE "cpu"
#endif

static void test_grad_cpu(void **state)
{
    (void)state;
    run_all(LP_NN_GRAD_TABLE);
}

/* Dropout in training mode really drops: the loss with the mask differs from eval mode, and
 * entries of the first layer's gradient vanish for dropped units' rows. */
static void test_dropout_active(void **state)
{
    (void)state;
    lp_nn_opts o = lp_nn_opts_default();
    o.backend = "ref";
    o.hidden = "32";
    o.dropout = 0.5f;
    o.n_outputs = 2;
    lp_err err;
    lp_nn *m;
    assert_int_equal(lp_nn_new(4, &o, &m, &err), LP_OK);
    float X[8] = {0.5f, -1, 0.25f, 2, -0.5f, 1, 0.75f, -2}, y[2] = {0, 1};
    double lt, le;
    assert_int_equal(lp_nn_loss_grad(m, X, y, 2, true, &lt, NULL, &err), LP_OK);
    assert_int_equal(lp_nn_loss_grad(m, X, y, 2, false, &le, NULL, &err), LP_OK);
    assert_true(fabs(lt - le) > 1e-6);
    lp_nn_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grad_ref),
        cmocka_unit_test(test_grad_cpu),
        cmocka_unit_test(test_dropout_active),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
