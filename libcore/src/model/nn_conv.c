/*
 * nn_conv.c - the image layer kinds of the nn family (nn.h): 2-D convolution, max and average
 * pooling, global average pooling, batch normalization. Tensors are NCHW: x (n, c, h, w),
 * y (n, oc, oh, ow), row-major, one image per row of the network's (n, in) activations.
 *
 * Batch paths call the backend table only (im2col / col2im, sgemm, pooling, elementwise ops,
 * row / column sums), so a device table runs them unchanged; per-channel statistics of batch
 * norm (C floats) make a round trip to the host, where the square roots and running averages
 * are computed. The single-row path (forward_row) is plain host C in eval mode.
 *
 * Layers keep no state between forward and backward: backward recomputes im2col (conv), the
 * argmax (max pool) and the batch statistics (batch norm) from the forward input, in the
 * workspace ctx->ws (sized by the plan: L->ws per row plus L->ws_fixed).
 *
 *   conv:  col (n, C k k, P) = im2col(x), P = oh ow
 *          y_b (F, P)        = W (F, C k k) @ col_b + b
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
    for (size_t b = 0; b < n; b++)
        TRY(be->sgemm(be, false, false, L->oc, P, ckk, 1.0f, params + L->w_off, ckk,
                      col + b * ckk * P, P, 0.0f, y + b * L->out, P, err));
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
    for (size_t b = 0; b < n; b++)
        TRY(be->sgemm(be, false, true, L->oc, ckk, P, 1.0f, dy + b * L->out, P, col + b * ckk * P,
                      P, b ? 1.0f : 0.0f, grads + L->w_off, ckk, err));
    TRY(chan_sum(be, n, L->oc, P, dy, tmp, grads + L->b_off, err));
    if (!dx)
        return LP_OK;
    for (size_t b = 0; b < n; b++)
        TRY(be->sgemm(be, true, false, ckk, P, L->oc, 1.0f, params + L->w_off, ckk,
                      dy + b * L->out, P, 0.0f, col + b * ckk * P, P, err));
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

/* Host scratch of one batch-norm call: C floats each. */
typedef struct bn_host {
    float *mu, *inv, *gamma, *beta, *t0, *t1, *rm, *rv;
    float *all;
} bn_host;

static lp_status bn_host_new(size_t C, bn_host *h, lp_err *err)
{
    h->all = lp_mallocarray(8 * C, sizeof(float));
    if (!h->all)
        return lp_err_set(err, LP_ENOMEM, "nn batch norm: out of memory for %zu channels", C);
    float **v[] = {&h->mu, &h->inv, &h->gamma, &h->beta, &h->t0, &h->t1, &h->rm, &h->rv};
    for (size_t i = 0; i < 8; i++)
        *v[i] = h->all + i * C;
    return LP_OK;
}

/* Workspace views of a batch-norm call over n rows. */
typedef struct bn_ws {
    float *A, *B, *Cb, *tmp, *vexp, *dev; /* dev: 8 C-vectors on the device */
} bn_ws;

static bn_ws bn_views(const lp_nn_layer *L, const lp_nn_ctx *c, size_t n)
{
    bn_ws w;
    w.A = c->ws;
    w.B = w.A + n * L->in;
    w.Cb = w.B + n * L->in;
    w.tmp = w.Cb + n * L->in;
    w.vexp = w.tmp + n * L->oc;
    w.dev = w.vexp + L->oc * L->oh * L->ow;
    return w;
}

/* Device -> host copy of C floats after a sync. */
static lp_status d2h(const lp_backend *be, float *dst, const float *src, size_t C, lp_err *err)
{
    TRY(be->sync(be, err));
    return be->copy_d2h(be, dst, src, C * sizeof(float), err);
}

/* mu, inv and (train) the batch variance into h->t1; x centered into w->A. Train mode uses
 * the batch statistics (biased variance, computed from centered values), eval mode the
 * running ones. */
static lp_status bn_stats(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                          size_t n, const float *x, bn_host *h, bn_ws *w, lp_err *err)
{
    const lp_backend *be = c->be;
    size_t C = L->oc, hw = L->oh * L->ow;
    double N = (double)(n * hw);
    TRY(d2h(be, h->gamma, params + L->w_off, C, err));
    TRY(d2h(be, h->beta, params + L->b_off, C, err));
    TRY(d2h(be, h->rm, c->state + L->s_off, C, err));
    TRY(d2h(be, h->rv, c->state + L->s_off + C, C, err));
    if (c->train) {
        TRY(chan_sum(be, n, C, hw, x, w->tmp, w->dev, err));
        TRY(d2h(be, h->t0, w->dev, C, err));
        for (size_t j = 0; j < C; j++)
            h->mu[j] = (float)(h->t0[j] / N);
    } else {
        memcpy(h->mu, h->rm, C * sizeof(float));
    }
    TRY(be->copy_h2d(be, w->dev, h->mu, C * sizeof(float), err));
    TRY(chan_bcast(be, n, C, hw, w->dev, c->ones, w->vexp, w->B, 0.0f, err));
    TRY(be->sub(be, n * L->in, x, w->B, w->A, err));
    if (c->train) {
        TRY(be->mul(be, n * L->in, w->A, w->A, w->B, err));
        TRY(chan_sum(be, n, C, hw, w->B, w->tmp, w->dev, err));
        TRY(d2h(be, h->t1, w->dev, C, err));
        for (size_t j = 0; j < C; j++) {
            h->t1[j] = (float)(h->t1[j] / N);
            h->inv[j] = (float)(1.0 / sqrt((double)h->t1[j] + BN_EPS));
        }
    } else {
        for (size_t j = 0; j < C; j++)
            h->inv[j] = (float)(1.0 / sqrt((double)h->rv[j] + BN_EPS));
    }
    return LP_OK;
}

static lp_status bn_forward_impl(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                                 size_t n, const float *x, float *y, bn_host *h, lp_err *err)
{
    const lp_backend *be = c->be;
    size_t C = L->oc, hw = L->oh * L->ow;
    bn_ws w = bn_views(L, c, n);
    TRY(bn_stats(L, c, params, n, x, h, &w, err));
    for (size_t j = 0; j < C; j++)
        h->t0[j] = h->gamma[j] * h->inv[j];
    TRY(be->copy_h2d(be, w.dev, h->t0, C * sizeof(float), err));
    TRY(be->copy_h2d(be, w.dev + C, h->beta, C * sizeof(float), err));
    TRY(chan_bcast(be, n, C, hw, w.dev, c->ones, w.vexp, w.B, 0.0f, err));
    TRY(be->mul(be, n * L->in, w.A, w.B, y, err));
    TRY(chan_bcast(be, n, C, hw, w.dev + C, c->ones, w.vexp, y, 1.0f, err));
    if (!c->train)
        return LP_OK;
    /* running averages, PyTorch's: unbiased batch variance N / (N - 1) */
    double N = (double)(n * hw), unb = N > 1 ? N / (N - 1) : 1.0;
    for (size_t j = 0; j < C; j++) {
        h->rm[j] = (float)((1 - BN_MOMENTUM) * h->rm[j] + BN_MOMENTUM * h->mu[j]);
        h->rv[j] = (float)((1 - BN_MOMENTUM) * h->rv[j] + BN_MOMENTUM * h->t1[j] * unb);
    }
    TRY(be->copy_h2d(be, c->state + L->s_off, h->rm, C * sizeof(float), err));
    return be->copy_h2d(be, c->state + L->s_off + C, h->rv, C * sizeof(float), err);
}

static lp_status bn_forward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                            size_t n, const float *x, float *y, lp_err *err)
{
    bn_host h;
    TRY(bn_host_new(L->oc, &h, err));
    lp_status st = bn_forward_impl(L, c, params, n, x, y, &h, err);
    free(h.all);
    return st;
}

static lp_status bn_backward_impl(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                                  float *grads, size_t n, const float *x, const float *dy,
                                  float *dx, bn_host *h, lp_err *err)
{
    const lp_backend *be = c->be;
    size_t C = L->oc, hw = L->oh * L->ow, nd = n * L->in;
    double N = (double)(n * hw);
    bn_ws w = bn_views(L, c, n);
    TRY(bn_stats(L, c, params, n, x, h, &w, err));
    /* A = xhat */
    TRY(be->copy_h2d(be, w.dev, h->inv, C * sizeof(float), err));
    TRY(chan_bcast(be, n, C, hw, w.dev, c->ones, w.vexp, w.B, 0.0f, err));
    TRY(be->mul(be, nd, w.A, w.B, w.A, err));
    TRY(chan_sum(be, n, C, hw, dy, w.tmp, grads + L->b_off, err));
    TRY(be->mul(be, nd, dy, w.A, w.B, err));
    TRY(chan_sum(be, n, C, hw, w.B, w.tmp, grads + L->w_off, err));
    if (!dx)
        return LP_OK;
    if (!c->train) {
        for (size_t j = 0; j < C; j++)
            h->t0[j] = h->gamma[j] * h->inv[j];
        TRY(be->copy_h2d(be, w.dev, h->t0, C * sizeof(float), err));
        TRY(chan_bcast(be, n, C, hw, w.dev, c->ones, w.vexp, w.B, 0.0f, err));
        return be->mul(be, nd, dy, w.B, dx, err);
    }
    /* B = xhat dgamma + dbeta (broadcast); Cb = N dy - B; dx = Cb gamma inv / N */
    TRY(chan_bcast(be, n, C, hw, grads + L->w_off, c->ones, w.vexp, w.B, 0.0f, err));
    TRY(be->mul(be, nd, w.A, w.B, w.B, err));
    TRY(chan_bcast(be, n, C, hw, grads + L->b_off, c->ones, w.vexp, w.B, 1.0f, err));
    TRY(be->scale(be, nd, (float)N, dy, w.Cb, err));
    TRY(be->sub(be, nd, w.Cb, w.B, w.Cb, err));
    for (size_t j = 0; j < C; j++)
        h->t0[j] = (float)((double)h->gamma[j] * h->inv[j] / N);
    TRY(be->copy_h2d(be, w.dev, h->t0, C * sizeof(float), err));
    TRY(chan_bcast(be, n, C, hw, w.dev, c->ones, w.vexp, w.B, 0.0f, err));
    return be->mul(be, nd, w.Cb, w.B, dx, err);
}

static lp_status bn_backward(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                             float *grads, size_t n, const float *x, const float *y,
                             const float *dy, float *dx, lp_err *err)
{
    bn_host h;
    TRY(bn_host_new(L->oc, &h, err));
    lp_status st = bn_backward_impl(L, c, params, grads, n, x, dy, dx, &h, err);
    free(h.all);
    return st;
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
