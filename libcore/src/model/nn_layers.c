/*
 * nn_layers.c - the flat layer kinds of the nn family (nn.h): dense, activation, dropout (the
 * image kinds are in nn_conv.c). Each is a const lp_nn_layer_ops table; the network code only
 * ever calls through it.
 *
 * Batch paths call the backend table only (no BLAS, no host loops over device memory), so a
 * device table runs them unchanged. The single-row path (forward_row) is plain host C on the
 * host mirror of the parameters; it agrees with the batch path to float rounding.
 *
 * Shapes: x (n, in), y (n, out), row-major. Dense W is (out, in) as PyTorch's nn.Linear, so
 * forward is one gemm with B transposed and the gradients are gemms without copies:
 *   y  (n, out) = x (n, in) @ W^T + b
 *   dW (out, in) = dy^T (out, n) @ x (n, in)
 *   db (out)     = column sums of dy
 *   dx (n, in)   = dy (n, out) @ W (out, in)
 */
#include "model/nn.h"
#include "model/nn_internal.h"

#include <math.h>
#include <stdio.h>

/* ---- dense ----------------------------------------------------------------------------------*/

static lp_status dense_add_params(lp_nn_layer *L, size_t index, lp_param_layout *lay, lp_err *err)
{
    char name[LP_PARAM_NAME_MAX];
    size_t wshape[2] = {L->out, L->in}, bshape[1] = {L->out};
    snprintf(name, sizeof name, "dense%zu.weight", index);
    lp_status st = lp_param_layout_add(lay, name, 2, wshape, &L->w_off, err);
    if (st)
        return st;
    snprintf(name, sizeof name, "dense%zu.bias", index);
    return lp_param_layout_add(lay, name, 1, bshape, &L->b_off, err);
}

static lp_status dense_forward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                               size_t n, const float *x, float *y, lp_err *err)
{
    const lp_backend *be = c->be;
    lp_status st = be->sgemm(be, false, true, n, L->out, L->in, 1.0f, x, L->in, params + L->w_off,
                             L->in, 0.0f, y, L->out, err);
    if (st)
        return st;
    return be->bias_add(be, n, L->out, params + L->b_off, y, err);
}

static lp_status dense_backward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                                float *grads, size_t n, const float *x, const float *y,
                                const float *dy, float *dx, lp_err *err)
{
    const lp_backend *be = c->be;
    lp_status st = be->sgemm(be, true, false, L->out, L->in, n, 1.0f, dy, L->out, x, L->in, 0.0f,
                             grads + L->w_off, L->in, err);
    if (!st)
        st = be->fill(be, L->out, 0.0f, grads + L->b_off, err); /* bias_backward accumulates */
    if (!st)
        st = be->bias_backward(be, n, L->out, dy, grads + L->b_off, err);
    if (!st && dx)
        st = be->sgemm(be, false, false, n, L->in, L->out, 1.0f, dy, L->out, params + L->w_off,
                       L->in, 0.0f, dx, L->in, err);
    return st;
}

static void dense_forward_row(const lp_nn_layer *L, const float *params, const float *state,
                              const float *x, float *y)
{
    const float *W = params + L->w_off, *b = params + L->b_off;
    for (size_t o = 0; o < L->out; o++) {
        const float *w = W + o * L->in;
        float s = 0.0f;
        for (size_t i = 0; i < L->in; i++)
            s += w[i] * x[i];
        y[o] = s + b[o];
    }
}

static const lp_nn_layer_ops DENSE_OPS = {"dense", dense_add_params, dense_forward, dense_backward,
                                          dense_forward_row};

/* ---- activation -----------------------------------------------------------------------------*/

static lp_status no_params(lp_nn_layer *L, size_t index, lp_param_layout *lay, lp_err *err)
{
    return LP_OK;
}

static lp_status act_forward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                             size_t n, const float *x, float *y, lp_err *err)
{
    return c->be->act_forward(c->be, L->act, n * L->out, x, y, err);
}

static lp_status act_backward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                              float *grads, size_t n, const float *x, const float *y,
                              const float *dy, float *dx, lp_err *err)
{
    if (!dx)
        return LP_OK;
    const float *fwd = lp_act_backward_uses_output(L->act) ? y : x;
    return c->be->act_backward(c->be, L->act, n * L->out, fwd, dy, dx, err);
}

float lp_nn_act_scalar(lp_act_kind kind, float x)
{
    switch (kind) {
    case LP_ACT_KIND_RELU:
        return x > 0.0f ? x : 0.0f;
    case LP_ACT_KIND_TANH:
        return tanhf(x);
    case LP_ACT_KIND_SIGMOID:
        return 1.0f / (1.0f + expf(-x));
    case LP_ACT_KIND_GELU_ERF:
        return 0.5f * x * (1.0f + erff(x * 0.70710678118654752440f));
    case LP_ACT_KIND_GELU_TANH:
        return 0.5f * x * (1.0f + tanhf(0.79788456080286535588f * (x + 0.044715f * x * x * x)));
    default:
        return x;
    }
}

static void act_forward_row(const lp_nn_layer *L, const float *params, const float *state,
                              const float *x, float *y)
{
    for (size_t i = 0; i < L->out; i++)
        y[i] = lp_nn_act_scalar(L->act, x[i]);
}

static const lp_nn_layer_ops ACT_OPS = {"activation", no_params, act_forward, act_backward,
                                        act_forward_row};

/* ---- dropout (inverted; masks from the backend's Philox, so backward stores nothing) ---------*/

/* One stream per dropout layer: splitmix64 of the net seed and the layer index. */
static uint64_t layer_seed(uint64_t seed, uint64_t index)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static lp_status drop_forward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                              size_t n, const float *x, float *y, lp_err *err)
{
    const lp_backend *be = c->be;
    if (!c->train || L->p == 0.0f)
        return be->copy_d2d(be, y, x, n * L->out * sizeof(float), err);
    return be->dropout_forward(be, n * L->out, L->p, layer_seed(c->seed, L->index), c->step, x, y,
                               err);
}

static lp_status drop_backward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                               float *grads, size_t n, const float *x, const float *y,
                               const float *dy, float *dx, lp_err *err)
{
    const lp_backend *be = c->be;
    if (!dx)
        return LP_OK;
    if (!c->train || L->p == 0.0f)
        return be->copy_d2d(be, dx, dy, n * L->out * sizeof(float), err);
    return be->dropout_backward(be, n * L->out, L->p, layer_seed(c->seed, L->index), c->step, dy,
                                dx, err);
}

static void drop_forward_row(const lp_nn_layer *L, const float *params, const float *state,
                              const float *x, float *y)
{
    for (size_t i = 0; i < L->out; i++)
        y[i] = x[i];
}

static const lp_nn_layer_ops DROPOUT_OPS = {"dropout", no_params, drop_forward, drop_backward,
                                            drop_forward_row};

const lp_nn_layer_ops *lp_nn_layer_ops_of(lp_nn_layer_kind kind)
{
    switch (kind) {
    case LP_NN_LAYER_KIND_DENSE:
        return &DENSE_OPS;
    case LP_NN_LAYER_KIND_ACT:
        return &ACT_OPS;
    case LP_NN_LAYER_KIND_DROPOUT:
        return &DROPOUT_OPS;
    default:
        return lp_nn_conv_layer_ops_of(kind);
    }
}
