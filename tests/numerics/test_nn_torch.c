/*
 * test_nn_torch.c - the nn family against PyTorch: the 20-step loss curves and the final
 * weights of tests/fixtures/nn.txt (gen_nn.py), from the same initial weights and batches, on
 * the ref and the cpu tables. Covers dense + relu / gelu, softmax cross-entropy with class
 * weights, MSE over 2 targets, AdamW with decoupled weight decay, Adam with a linear warm-up,
 * SGD with Nesterov momentum, a step schedule and global-norm clipping, SGD with momentum and
 * a cosine schedule.
 */
#include "lp_test.h"

#include "model/nn.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Losses: float products summed in a different order than PyTorch's (MKL-DNN / its own gemm
 * blocking vs OpenBLAS or the ref loops) differ by ~1e-7 relative per step; 20 optimizer steps
 * amplify that, Adam's division by sqrt(v) most, to ~1e-5. */
#define LOSS_RTOL 1e-4
#define LOSS_ATOL 1e-5
/* Final weights after 20 steps: the same drift on parameters of size ~0.3. */
#define W_ATOL 2e-4
#define W_RTOL 1e-3

typedef struct run_spec {
    const char *name; /* fixture prefix */
    bool cls;
    lp_nn_optim optim;
    double lr;
} run_spec;

static void check_run(const char *backend, const run_spec *rs)
{
    lp_fixture *fx = lp_fixture_load("nn.txt");
    size_t r, c, n_init, np;
    double *X = lp_fixture_array(fx, "X", &r, &c);
    assert_int_equal(c, 8);
    double *y = lp_fixture_array(fx, rs->cls ? "y_cls" : "y_reg", &r, &c);
    size_t k = rs->cls ? 1 : 2;
    double *init = lp_fixture_array(fx, rs->cls ? "cls_init" : "reg_init", &r, &n_init);
    char name[64];
    snprintf(name, sizeof name, "%s_loss", rs->name);
    double *want_loss = lp_fixture_array(fx, name, &r, &c);
    assert_int_equal(c, 20);
    snprintf(name, sizeof name, "%s_final", rs->name);
    double *want_final = lp_fixture_array(fx, name, &r, &np);
    double *cw = lp_fixture_array(fx, "class_w", &r, &c);

    lp_nn_opts o = lp_nn_opts_default();
    o.backend = backend;
    o.optimizer = rs->optim;
    o.lr = rs->lr;
    float class_w[3] = {(float)cw[0], (float)cw[1], (float)cw[2]};
    if (rs->cls) {
        o.hidden = "16,16";
        o.activation = "relu";
        o.loss = LP_NN_LOSS_SOFTMAX_XENT;
        o.n_outputs = 3;
        o.class_weight = class_w;
    } else {
        o.hidden = "16";
        o.activation = "gelu";
        o.loss = LP_NN_LOSS_MSE;
        o.n_outputs = 2;
    }
    if (strcmp(rs->name, "cls_adam") == 0) {
        o.weight_decay = 0.01;
    } else if (strcmp(rs->name, "cls_sgd") == 0) {
        o.momentum = 0.9;
        o.nesterov = true;
        o.schedule = LP_NN_SCHED_STEP;
        o.step_size = 5;
        o.gamma = 0.5;
        o.clip_norm = 1.0;
    } else if (strcmp(rs->name, "reg_adam") == 0) {
        o.warmup_steps = 5;
    } else {
        o.momentum = 0.9;
        o.schedule = LP_NN_SCHED_COSINE;
        o.min_lr = 0.001;
        o.total_steps = 20;
    }
    lp_err err;
    lp_nn *m;
    assert_int_equal(lp_nn_new(8, &o, &m, &err), LP_OK);
    assert_int_equal(lp_nn_n_params(m), n_init);
    assert_int_equal(np, n_init);
    float *p = malloc(n_init * sizeof *p);
    for (size_t i = 0; i < n_init; i++)
        p[i] = (float)init[i];
    assert_int_equal(lp_nn_set_params(m, p, n_init, &err), LP_OK);

    float Xb[16 * 8], yb[16 * 2];
    double got_loss[20];
    for (size_t s = 0; s < 20; s++) {
        for (size_t i = 0; i < 16 * 8; i++)
            Xb[i] = (float)X[s * 16 * 8 + i];
        for (size_t i = 0; i < 16 * k; i++)
            yb[i] = (float)y[s * 16 * k + i];
        lp_status st = lp_nn_train_step(m, Xb, yb, 16, &got_loss[s], &err);
        if (st)
            fail_msg("%s %s step %zu: %s", backend, rs->name, s, err.msg);
    }
    assert_int_equal(lp_nn_steps(m), 20);
    snprintf(name, sizeof name, "%s %s losses", backend, rs->name);
    lp_assert_close(got_loss, want_loss, 20, LOSS_ATOL, LOSS_RTOL, name);
    /* the curve must move: a net that never updates would match only the first loss */
    assert_true(fabs(want_loss[19] - want_loss[0]) > 1e-2);

    assert_int_equal(lp_nn_get_params(m, p, n_init, &err), LP_OK);
    double *got = malloc(n_init * sizeof *got);
    for (size_t i = 0; i < n_init; i++)
        got[i] = p[i];
    snprintf(name, sizeof name, "%s %s final weights", backend, rs->name);
    lp_assert_close(got, want_final, n_init, W_ATOL, W_RTOL, name);

    lp_nn_free(m);
    free(got);
    free(p);
    free(X);
    free(y);
    free(init);
    free(want_loss);
    free(want_final);
    free(cw);
    lp_fixture_free(fx);
}

static const run_spec RUNS[] = {
    {"cls_adam", true, LP_NN_OPTIM_ADAMW, 1e-2},
    {"cls_sgd", true, LP_NN_OPTIM_SGD, 0.05},
    {"reg_adam", false, LP_NN_OPTIM_ADAMW, 5e-3},
    {"reg_sgd", false, LP_NN_OPTIM_SGD, 0.05},
};

static void test_ref(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof RUNS / sizeof RUNS[0]; i++)
        check_run("ref", &RUNS[i]);
}

static void test_cpu(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof RUNS / sizeof RUNS[0]; i++)
        check_run("cpu", &RUNS[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ref),
        cmocka_unit_test(test_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
