/*
 * nn_conv.c - the image layer kinds of the nn family (nn.h): 2-D convolution, max and average
 * pooling, global average pooling, batch normalization. Tensors are NCHW: x (n, c, h, w),
 * y (n, oc, oh, ow), row-major, one image per row of the network's (n, in) activations.
 *
 * Batch paths call the backend table only (im2col / col2im, sgemm, pooling, row / column sums,
 * batchnorm_forward / batchnorm_backward), so a device table runs them unchanged with no host
 * round trip. The single-row path (forward_row) is plain host C in eval mode.
 *
 * Layers keep no state between forward and backward: backward recomputes im2col (conv), the
 * argmax (max pool) and the batch statistics (batch norm) from the forward input, in the
 * workspace ctx->ws (sized by the plan: L->ws per row plus L->ws_fixed).
 *
 *   conv:  col (n, C k k, P) = im2col(x), P = oh ow
 *          y_b (F, P)        = W (F, C k k) @ col_b + b   (one strided batched gemm per pass)
 *          dW  (F, C k k)    = sum_b dy_b (F, P) @ col_b^T
 *          db  (F)           = sum over b and P of dy
 *          dx                = col2im(W^T @ dy_b)
 *   batch norm over N = n h w values per channel (Ioffe & Szegedy 2015):
 *          xhat = (x - mu) inv,  inv = 1 / sqrt(var + eps),  y = gamma xhat + beta
 *          dbeta = sum dy,  dgamma = sum dy xhat
 *          dx (train) = gamma inv / N (N dy - dbeta - xhat dgamma);  dx (eval) = gamma inv dy
 */
#include "model/nn_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        lp_status st_ = (expr);                                                                    \
        if (st_ != LP_OK)                                                                          \
            return st_;                                                                            \
    } while (0)

/* PyTorch's BatchNorm2d defaults. */
#define BN_EPS 1e-5
#define BN_MOMENTUM 0.1

/* out (C) = per-channel sums of x (n, C, hw); tmp (n C). */
static lp_status chan_sum(const lp_backend *be, size_t n, size_t C, size_t hw, const float *x,
                          float *tmp, float *out, lp_err *err)
{
    TRY(be->sum_cols(be, n * C, hw, x, tmp, err));
    return be->sum_rows(be, n, C, tmp, out, err);
}

/* out (n, C, hw) = beta out + v[c] broadcast; vexp (C hw) scratch, ones >= max(n, hw). */
static lp_status chan_bcast(const lp_backend *be, size_t n, size_t C, size_t hw, const float *v,
                            const float *ones, float *vexp, float *out, float beta, lp_err *err)
{
    const float *row = v;
    if (hw > 1) {
        TRY(be->sgemm(be, false, false, C, hw, 1, 1.0f, v, 1, ones, hw, 0.0f, vexp, hw, err));
        row = vexp;
    }
    return be->sgemm(be, false, false, n, C * hw, 1, 1.0f, ones, 1, row, C * hw, beta, out,
                     C * hw, err);
}

/* ---- conv2d ---------------------------------------------------------------------------------*/

/* C_b = op(A_b) @ op(B_b) (+ beta C_b) over the n images, X_b = X + b stride_x; stride_c 0
 * sums the n products into one C (the weight gradient). One sgemm_batched call when the table
 * has it, else one sgemm per image. */
static lp_status conv_gemm(const lp_backend *be, bool ta, bool tb, size_t m, size_t nn, size_t k,
                           const float *a, size_t lda, size_t sa, const float *b, size_t ldb,
                           size_t sb, float *c, size_t ldc, size_t sc, size_t n, lp_err *err)
{
    if (be->sgemm_batched)
        return be->sgemm_batched(be, ta, tb, m, nn, k, 1.0f, a, lda, sa, b, ldb, sb, 0.0f, c, ldc,
                                 sc, n, err);
    for (size_t i = 0; i < n; i++)
        TRY(be->sgemm(be, ta, tb, m, nn, k, 1.0f, a + i * sa, lda, b + i * sb, ldb,
                      sc == 0 && i > 0 ? 1.0f : 0.0f, c + i * sc, ldc, err));
    return LP_OK;
}

static lp_status conv_add_params(lp_nn_layer *L, size_t index, lp_param_layout *lay, lp_err *err)
{
    char name[LP_PARAM_NAME_MAX];
    size_t wshape[4] = {L->oc, L->c, L->g.kh, L->g.kw}, bshape[1] = {L->oc};
    snprintf(name, sizeof name, "conv%zu.weight", index);
    TRY(lp_param_layout_add(lay, name, 4, wshape, &L->w_off, err));
    snprintf(name, sizeof name, "conv%zu.bias", index);
    return lp_param_layout_add(lay, name, 1, bshape, &L->b_off, err);
}

static lp_status conv_forward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                              size_t n, const float *x, float *y, lp_err *err)
{
    const lp_backend *be = c->be;
    lp_conv2d_geom g = L->g;
    g.n = n;
    size_t ckk = L->c * g.kh * g.kw, P = L->oh * L->ow;
    float *col = c->ws, *vexp = c->ws + n * ckk * P + n * L->oc;
    TRY(be->im2col(be, &g, x, col, err));
    TRY(conv_gemm(be, false, false, L->oc, P, ckk, params + L->w_off, ckk, 0, col, P, ckk * P, y,
                  P, L->out, n, err));
    return chan_bcast(be, n, L->oc, P, params + L->b_off, c->ones, vexp, y, 1.0f, err);
}

static lp_status conv_backward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                               float *grads, size_t n, const float *x, const float *y,
                               const float *dy, float *dx, lp_err *err)
{
    const lp_backend *be = c->be;
    lp_conv2d_geom g = L->g;
    g.n = n;
    size_t ckk = L->c * g.kh * g.kw, P = L->oh * L->ow;
    float *col = c->ws, *tmp = c->ws + n * ckk * P;
    TRY(be->im2col(be, &g, x, col, err));
    if (n > 0)
        TRY(conv_gemm(be, false, true, L->oc, ckk, P, dy, P, L->out, col, P, ckk * P,
                      grads + L->w_off, ckk, 0, n, err));
    TRY(chan_sum(be, n, L->oc, P, dy, tmp, grads + L->b_off, err));
    if (!dx)
        return LP_OK;
    TRY(conv_gemm(be, true, false, ckk, P, L->oc, params + L->w_off, ckk, 0, dy, P, L->out, col,
                  P, ckk * P, n, err));
    return be->col2im(be, &g, col, dx, err);
}

static void conv_forward_row(const lp_nn_layer *L, const float *params, const float *state,
                             const float *x, float *y)
{
    const float *W = params + L->w_off, *bias = params + L->b_off;
    const lp_conv2d_geom *g = &L->g;
    for (size_t f = 0; f < L->oc; f++)
        for (size_t oy = 0; oy < L->oh; oy++)
            for (size_t ox = 0; ox < L->ow; ox++) {
                float s = bias[f];
                for (size_t ci = 0; ci < L->c; ci++)
                    for (size_t i = 0; i < g->kh; i++) {
                        long iy = (long)(oy * g->stride_h + i) - (long)g->pad_h;
                        if (iy < 0 || iy >= (long)L->h)
                            continue;
                        for (size_t j = 0; j < g->kw; j++) {
                            long ix = (long)(ox * g->stride_w + j) - (long)g->pad_w;
                            if (ix < 0 || ix >= (long)L->w)
                                continue;
                            s += W[((f * L->c + ci) * g->kh + i) * g->kw + j] *
                                 x[(ci * L->h + (size_t)iy) * L->w + (size_t)ix];
                        }
                    }
                y[(f * L->oh + oy) * L->ow + ox] = s;
            }
}

static const lp_nn_layer_ops CONV_OPS = {"conv2d", conv_add_params, conv_forward, conv_backward,
                                         conv_forward_row};

/* ---- pooling --------------------------------------------------------------------------------*/

static lp_status no_params(lp_nn_layer *L, size_t index, lp_param_layout *lay, lp_err *err)
{
    return LP_OK;
}

static lp_status maxpool_forward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                                 size_t n, const float *x, float *y, lp_err *err)
{
    lp_conv2d_geom g = L->g;
    g.n = n;
    return c->be->maxpool_forward(c->be, &g, x, y, (int32_t *)(void *)c->ws, err);
}

static lp_status maxpool_backward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                                  float *grads, size_t n, const float *x, const float *y,
                                  const float *dy, float *dx, lp_err *err)
{
    if (!dx)
        return LP_OK;
    lp_conv2d_geom g = L->g;
    g.n = n;
    float *ytmp = c->ws;
    int32_t *argmax = (int32_t *)(void *)(c->ws + n * L->out);
    TRY(c->be->maxpool_forward(c->be, &g, x, ytmp, argmax, err));
    return c->be->maxpool_backward(c->be, &g, dy, argmax, dx, err);
}

static void maxpool_forward_row(const lp_nn_layer *L, const float *params, const float *state,
                                const float *x, float *y)
{
    const lp_conv2d_geom *g = &L->g;
    for (size_t ci = 0; ci < L->c; ci++)
        for (size_t oy = 0; oy < L->oh; oy++)
            for (size_t ox = 0; ox < L->ow; ox++) {
                float best = -INFINITY;
                for (size_t i = 0; i < g->kh; i++)
                    for (size_t j = 0; j < g->kw; j++) {
                        long iy = (long)(oy * g->stride_h + i) - (long)g->pad_h;
                        long ix = (long)(ox * g->stride_w + j) - (long)g->pad_w;
                        if (iy < 0 || iy >= (long)L->h || ix < 0 || ix >= (long)L->w)
                            continue;
                        float v = x[(ci * L->h + (size_t)iy) * L->w + (size_t)ix];
                        if (v > best || isnan(v))
                            best = v;
                    }
                y[(ci * L->oh + oy) * L->ow + ox] = best;
            }
}

static lp_status avgpool_forward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                                 size_t n, const float *x, float *y, lp_err *err)
{
    lp_conv2d_geom g = L->g;
    g.n = n;
    return c->be->avgpool_forward(c->be, &g, x, y, err);
}

static lp_status avgpool_backward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                                  float *grads, size_t n, const float *x, const float *y,
                                  const float *dy, float *dx, lp_err *err)
{
    if (!dx)
        return LP_OK;
    lp_conv2d_geom g = L->g;
    g.n = n;
    return c->be->avgpool_backward(c->be, &g, dy, dx, err);
}

static void avgpool_forward_row(const lp_nn_layer *L, const float *params, const float *state,
                                const float *x, float *y)
{
    const lp_conv2d_geom *g = &L->g;
    double inv = 1.0 / (double)(g->kh * g->kw);
    for (size_t ci = 0; ci < L->c; ci++)
        for (size_t oy = 0; oy < L->oh; oy++)
            for (size_t ox = 0; ox < L->ow; ox++) {
                double s = 0.0;
                for (size_t i = 0; i < g->kh; i++)
                    for (size_t j = 0; j < g->kw; j++) {
                        long iy = (long)(oy * g->stride_h + i) - (long)g->pad_h;
                        long ix = (long)(ox * g->stride_w + j) - (long)g->pad_w;
                        if (iy >= 0 && iy < (long)L->h && ix >= 0 && ix < (long)L->w)
                            s += x[(ci * L->h + (size_t)iy) * L->w + (size_t)ix];
                    }
                y[(ci * L->oh + oy) * L->ow + ox] = (float)(s * inv);
            }
}

static const lp_nn_layer_ops MAXPOOL_OPS = {"maxpool", no_params, maxpool_forward,
                                            maxpool_backward, maxpool_forward_row};
static const lp_nn_layer_ops AVGPOOL_OPS = {"avgpool", no_params, avgpool_forward,
                                            avgpool_backward, avgpool_forward_row};
/* Global average pooling is average pooling with the whole plane as its window. */
static const lp_nn_layer_ops GAP_OPS = {"gap", no_params, avgpool_forward, avgpool_backward,
                                        avgpool_forward_row};

/* ---- batch normalization --------------------------------------------------------------------*/

static lp_status bn_add_params(lp_nn_layer *L, size_t index, lp_param_layout *lay, lp_err *err)
{
    char name[LP_PARAM_NAME_MAX];
    size_t shape[1] = {L->oc};
    snprintf(name, sizeof name, "bn%zu.weight", index);
    TRY(lp_param_layout_add(lay, name, 1, shape, &L->w_off, err));
    snprintf(name, sizeof name, "bn%zu.bias", index);
    return lp_param_layout_add(lay, name, 1, shape, &L->b_off, err);
}

/* Both passes are one backend call each (batchnorm_forward / batchnorm_backward): the batch
 * statistics, the running averages and every per-channel constant stay on the device. */
static lp_status bn_need(const lp_backend *be, bool have, const char *member, lp_err *err)
{
    if (have)
        return LP_OK;
    return lp_err_set(err, LP_EUNSUPPORTED, "nn batch norm: the %s backend has no %s", be->name,
                      member);
}

static lp_status bn_forward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                            size_t n, const float *x, float *y, lp_err *err)
{
    const lp_backend *be = c->be;
    TRY(bn_need(be, be->batchnorm_forward != NULL, "batchnorm_forward", err));
    return be->batchnorm_forward(be, n, L->oc, L->oh * L->ow, (float)BN_EPS, (float)BN_MOMENTUM,
                                 c->train, x, params + L->w_off, params + L->b_off,
                                 c->state + L->s_off, c->state + L->s_off + L->oc, y, err);
}

static lp_status bn_backward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                             float *grads, size_t n, const float *x, const float *y,
                             const float *dy, float *dx, lp_err *err)
{
    const lp_backend *be = c->be;
    TRY(bn_need(be, be->batchnorm_backward != NULL, "batchnorm_backward", err));
    return be->batchnorm_backward(be, n, L->oc, L->oh * L->ow, (float)BN_EPS, c->train, x,
                                  params + L->w_off, c->state + L->s_off,
                                  c->state + L->s_off + L->oc, dy, dx, grads + L->w_off,
                                  grads + L->b_off, err);
}

static void bn_forward_row(const lp_nn_layer *L, const float *params, const float *state,
                           const float *x, float *y)
{
    const float *gamma = params + L->w_off, *beta = params + L->b_off;
    const float *rm = state + L->s_off, *rv = state + L->s_off + L->oc;
    size_t hw = L->oh * L->ow;
    for (size_t j = 0; j < L->oc; j++) {
        float a = gamma[j] * (float)(1.0 / sqrt((double)rv[j] + BN_EPS));
        for (size_t i = 0; i < hw; i++)
            y[j * hw + i] = (x[j * hw + i] - rm[j]) * a + beta[j];
    }
}

static const lp_nn_layer_ops BN_OPS = {"batchnorm", bn_add_params, bn_forward, bn_backward,
                                       bn_forward_row};

const lp_nn_layer_ops *lp_nn_conv_layer_ops_of(lp_nn_layer_kind kind)
{
    switch (kind) {
    case LP_NN_LAYER_KIND_CONV2D:
        return &CONV_OPS;
    case LP_NN_LAYER_KIND_MAXPOOL:
        return &MAXPOOL_OPS;
    case LP_NN_LAYER_KIND_AVGPOOL:
        return &AVGPOOL_OPS;
    case LP_NN_LAYER_KIND_GAP:
        return &GAP_OPS;
    case LP_NN_LAYER_KIND_BATCHNORM:
        return &BN_OPS;
    default:
        return NULL;
    }
}
