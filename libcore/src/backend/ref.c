/*
 * ref.c - the reference backend table ("ref"): plain scalar C, one straightforward loop nest
 * per op, intermediate sums and transcendental functions in double. It is slow on purpose and
 * is what every other table (cpu, cuda) is tested against.
 *
 * No threads, no BLAS. Memory members are plain aligned host allocations (host_visible).
 * Shapes in comments are row-major; every op checks its arguments through backend_impl.h.
 */
#include "backend/backend_impl.h"

#include <string.h>

/* ---- matrix products ---------------------------------------------------------------------- */

static lp_status ref_sgemm(const lp_backend *be, bool ta, bool tb, size_t m, size_t n, size_t k,
                           float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                           float beta, float *c, size_t ldc, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_gemm("sgemm", ta, tb, m, n, k, a, lda, b, ldb, c, ldc, err));
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t p = 0; p < k; p++) {
                double av = ta ? a[p * lda + i] : a[i * lda + p]; /* op(A)[i, p] */
                double bv = tb ? b[j * ldb + p] : b[p * ldb + j]; /* op(B)[p, j] */
                s += av * bv;
            }
            double prev = beta == 0 ? 0.0 : (double)beta * c[i * ldc + j];
            c[i * ldc + j] = (float)((double)alpha * s + prev);
        }
    return LP_OK;
}

/* One sgemm per batch entry; the reduction (stride_c 0) accumulates into C with beta 1 after
 * the first. */
static lp_status ref_sgemm_batched(const lp_backend *be, bool ta, bool tb, size_t m, size_t n,
                                   size_t k, float alpha, const float *a, size_t lda, size_t sa,
                                   const float *b, size_t ldb, size_t sb, float beta, float *c,
                                   size_t ldc, size_t sc, size_t batch, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_gemm("sgemm_batched", ta, tb, m, n, k, a, lda, b, ldb, c, ldc, err));
    if (batch == 0 && sc == 0) /* C = beta C */
        return ref_sgemm(be, ta, tb, m, n, 0, alpha, a, lda, b, ldb, beta, c, ldc, err);
    for (size_t i = 0; i < batch; i++)
        LP_BK_TRY(ref_sgemm(be, ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb,
                            sc == 0 && i > 0 ? 1.0f : beta, c + i * sc, ldc, err));
    return LP_OK;
}

static lp_status ref_lowrank_update(const lp_backend *be, size_t m, size_t n, size_t r, float scale,
                                    const float *b, const float *a, float *w, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_gemm("lowrank_update", false, false, m, n, r, b, r ? r : 1, a, n ? n : 1,
                               w, n ? n : 1, err));
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < n; j++) {
            double s = 0;
            for (size_t p = 0; p < r; p++)
                s += (double)b[i * r + p] * a[p * n + j];
            w[i * n + j] = (float)(w[i * n + j] + (double)scale * s);
        }
    return LP_OK;
}

/* ---- elementwise -------------------------------------------------------------------------- */

#define REF_BINARY(fname, opname, expr)                                                            \
    static lp_status fname(const lp_backend *be, size_t n, const float *x, const float *y,         \
                           float *out, lp_err *err)                                                \
    {                                                                                              \
        LP_BK_TRY(lp_bk_need(x, n, opname, "x", err));                                             \
        LP_BK_TRY(lp_bk_need(y, n, opname, "y", err));                                             \
        LP_BK_TRY(lp_bk_need(out, n, opname, "out", err));                                         \
        for (size_t i = 0; i < n; i++)                                                             \
            out[i] = (expr);                                                                       \
        return LP_OK;                                                                              \
    }

REF_BINARY(ref_add, "add", x[i] + y[i])
REF_BINARY(ref_sub, "sub", x[i] - y[i])
REF_BINARY(ref_mul, "mul", x[i] * y[i])

static lp_status ref_scale(const lp_backend *be, size_t n, float alpha, const float *x, float *out,
                           lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, "scale", "x", err));
    LP_BK_TRY(lp_bk_need(out, n, "scale", "out", err));
    for (size_t i = 0; i < n; i++)
        out[i] = alpha * x[i];
    return LP_OK;
}

static lp_status ref_axpy(const lp_backend *be, size_t n, float alpha, const float *x, float *y,
                          lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, "axpy", "x", err));
    LP_BK_TRY(lp_bk_need(y, n, "axpy", "y", err));
    for (size_t i = 0; i < n; i++)
        y[i] += alpha * x[i];
    return LP_OK;
}

static lp_status ref_fill(const lp_backend *be, size_t n, float value, float *x, lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, "fill", "x", err));
    for (size_t i = 0; i < n; i++)
        x[i] = value;
    return LP_OK;
}

/* ---- bias --------------------------------------------------------------------------------- */

static lp_status ref_bias_add(const lp_backend *be, size_t n, size_t d, const float *b, float *y,
                              lp_err *err)
{
    LP_BK_TRY(lp_bk_need(b, n ? d : 0, "bias_add", "b", err));
    LP_BK_TRY(lp_bk_need(y, n * d, "bias_add", "y", err));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            y[i * d + j] += b[j];
    return LP_OK;
}

static lp_status ref_bias_backward(const lp_backend *be, size_t n, size_t d, const float *dy,
                                   float *db, lp_err *err)
{
    LP_BK_TRY(lp_bk_need(dy, n * d, "bias_backward", "dy", err));
    LP_BK_TRY(lp_bk_need(db, d, "bias_backward", "db", err));
    for (size_t j = 0; j < d; j++) {
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += dy[i * d + j];
        db[j] = (float)(db[j] + s);
    }
    return LP_OK;
}

/* ---- activations -------------------------------------------------------------------------- */

static double ref_sigmoid(double x)
{
    /* exp of a non-positive argument only: no overflow for large |x|. */
    if (x >= 0)
        return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

static double ref_act(lp_act_kind kind, double x)
{
    switch (kind) {
    case LP_ACT_KIND_RELU:
        return x > 0 ? x : 0;
    case LP_ACT_KIND_TANH:
        return tanh(x);
    case LP_ACT_KIND_SIGMOID:
        return ref_sigmoid(x);
    case LP_ACT_KIND_GELU_ERF:
        return 0.5 * x * (1.0 + erf(x * LP_BK_INV_SQRT2));
    case LP_ACT_KIND_GELU_TANH:
        return 0.5 * x * (1.0 + tanh(LP_BK_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    default:
        return 0;
    }
}

/* f'(.) from the forward input x (relu, gelu) or output y (tanh, sigmoid). */
static double ref_act_deriv(lp_act_kind kind, double f)
{
    switch (kind) {
    case LP_ACT_KIND_RELU:
        return f > 0 ? 1.0 : 0.0;
    case LP_ACT_KIND_TANH:
        return 1.0 - f * f;
    case LP_ACT_KIND_SIGMOID:
        return f * (1.0 - f);
    case LP_ACT_KIND_GELU_ERF:
        /* d/dx x Phi(x) = Phi(x) + x phi(x) */
        return 0.5 * (1.0 + erf(f * LP_BK_INV_SQRT2)) + f * LP_BK_INV_SQRT_2PI * exp(-0.5 * f * f);
    case LP_ACT_KIND_GELU_TANH: {
        double u = LP_BK_SQRT_2_OVER_PI * (f + 0.044715 * f * f * f);
        double t = tanh(u);
        return 0.5 * (1.0 + t) +
               0.5 * f * (1.0 - t * t) * LP_BK_SQRT_2_OVER_PI * (1.0 + 3 * 0.044715 * f * f);
    }
    default:
        return 0;
    }
}

static lp_status ref_act_forward(const lp_backend *be, lp_act_kind kind, size_t n, const float *x,
                                 float *y, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_act("act_forward", kind, err));
    LP_BK_TRY(lp_bk_need(x, n, "act_forward", "x", err));
    LP_BK_TRY(lp_bk_need(y, n, "act_forward", "y", err));
    for (size_t i = 0; i < n; i++)
        y[i] = (float)ref_act(kind, x[i]);
    return LP_OK;
}

static lp_status ref_act_backward(const lp_backend *be, lp_act_kind kind, size_t n,
                                  const float *fwd, const float *dy, float *dx, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_act("act_backward", kind, err));
    LP_BK_TRY(lp_bk_need(fwd, n, "act_backward", "fwd", err));
    LP_BK_TRY(lp_bk_need(dy, n, "act_backward", "dy", err));
    LP_BK_TRY(lp_bk_need(dx, n, "act_backward", "dx", err));
    for (size_t i = 0; i < n; i++)
        dx[i] = (float)(dy[i] * ref_act_deriv(kind, fwd[i]));
    return LP_OK;
}

/* ---- dropout ------------------------------------------------------------------------------ */

static lp_status ref_dropout(const char *op, size_t n, float p, uint64_t seed, uint64_t step,
                             const float *x, float *y, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_dropout(op, p, err));
    LP_BK_TRY(lp_bk_need(x, n, op, "input", err));
    LP_BK_TRY(lp_bk_need(y, n, op, "output", err));
    /* The scale is rounded to float once, so every backend multiplies by the same value. */
    float scale = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++)
        y[i] = lp_dropout_keep(seed, step, i, p) ? x[i] * scale : 0.0f;
    return LP_OK;
}

static lp_status ref_dropout_forward(const lp_backend *be, size_t n, float p, uint64_t seed,
                                     uint64_t step, const float *x, float *y, lp_err *err)
{
    return ref_dropout("dropout_forward", n, p, seed, step, x, y, err);
}

static lp_status ref_dropout_backward(const lp_backend *be, size_t n, float p, uint64_t seed,
                                      uint64_t step, const float *dy, float *dx, lp_err *err)
{
    /* The op is linear with a diagonal Jacobian: backward applies the same mask and scale. */
    return ref_dropout("dropout_backward", n, p, seed, step, dy, dx, err);
}

/* ---- losses ------------------------------------------------------------------------------- */

static lp_status ref_softmax_xent(const lp_backend *be, size_t n, size_t c, const float *logits,
                                  const int32_t *targets, const float *class_w, double *loss,
                                  float *dlogits, lp_err *err)
{
    const char *op = "softmax_xent";
    if (n == 0 || c == 0)
        return lp_err_set(err, LP_EINVAL, "%s: empty logits (%zu, %zu)", op, n, c);
    LP_BK_TRY(lp_bk_need(logits, n * c, op, "logits", err));
    LP_BK_TRY(lp_bk_need(targets, n, op, "targets", err));
    LP_BK_TRY(lp_bk_need(loss, 1, op, "loss", err));
    LP_BK_TRY(lp_bk_check_targets(op, n, c, targets, err));
    double wsum = 0, total = 0;
    for (size_t i = 0; i < n; i++)
        wsum += class_w ? class_w[targets[i]] : 1.0;
    for (size_t i = 0; i < n; i++) {
        const float *z = logits + i * c; /* (c) */
        size_t t = (size_t)targets[i];
        double w = class_w ? class_w[t] : 1.0;
        /* log-sum-exp after subtracting the row max: every exp argument is <= 0. */
        double mx = z[0];
        for (size_t j = 1; j < c; j++)
            mx = z[j] > mx ? z[j] : mx;
        double s = 0;
        for (size_t j = 0; j < c; j++)
            s += exp(z[j] - mx);
        double lse = mx + log(s);
        total += w * (lse - z[t]);
        if (dlogits)
            for (size_t j = 0; j < c; j++)
                dlogits[i * c + j] = (float)(w * (exp(z[j] - lse) - (j == t)) / wsum);
    }
    *loss = total / wsum;
    return lp_bk_check_loss(op, *loss, err);
}

static lp_status ref_bce_logits(const lp_backend *be, size_t n, const float *z, const float *y,
                                double *loss, float *dz, lp_err *err)
{
    const char *op = "bce_logits";
    if (n == 0)
        return lp_err_set(err, LP_EINVAL, "%s: no values", op);
    LP_BK_TRY(lp_bk_need(z, n, op, "z", err));
    LP_BK_TRY(lp_bk_need(y, n, op, "y", err));
    LP_BK_TRY(lp_bk_need(loss, 1, op, "loss", err));
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double zi = z[i], yi = y[i];
        total += (zi > 0 ? zi : 0) - zi * yi + log1p(exp(-fabs(zi)));
        if (dz)
            dz[i] = (float)((ref_sigmoid(zi) - yi) / (double)n);
    }
    *loss = total / (double)n;
    return lp_bk_check_loss(op, *loss, err);
}

static lp_status ref_mse(const lp_backend *be, size_t n, const float *p, const float *y,
                         double *loss, float *dp, lp_err *err)
{
    const char *op = "mse";
    if (n == 0)
        return lp_err_set(err, LP_EINVAL, "%s: no values", op);
    LP_BK_TRY(lp_bk_need(p, n, op, "p", err));
    LP_BK_TRY(lp_bk_need(y, n, op, "y", err));
    LP_BK_TRY(lp_bk_need(loss, 1, op, "loss", err));
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double r = (double)p[i] - y[i];
        total += r * r;
        if (dp)
            dp[i] = (float)(2.0 * r / (double)n);
    }
    *loss = total / (double)n;
    return lp_bk_check_loss(op, *loss, err);
}

/* ---- reductions --------------------------------------------------------------------------- */

static lp_status ref_sum_rows(const lp_backend *be, size_t n, size_t d, const float *x, float *out,
                              lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n * d, "sum_rows", "x", err));
    LP_BK_TRY(lp_bk_need(out, d, "sum_rows", "out", err));
    for (size_t j = 0; j < d; j++) {
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += x[i * d + j];
        out[j] = (float)s;
    }
    return LP_OK;
}

static lp_status ref_sum_cols(const lp_backend *be, size_t n, size_t d, const float *x, float *out,
                              lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n * d, "sum_cols", "x", err));
    LP_BK_TRY(lp_bk_need(out, n, "sum_cols", "out", err));
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++)
            s += x[i * d + j];
        out[i] = (float)s;
    }
    return LP_OK;
}

static lp_status ref_sum_all(const lp_backend *be, size_t n, const float *x, float *out,
                             lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, "sum_all", "x", err));
    LP_BK_TRY(lp_bk_need(out, 1, "sum_all", "out", err));
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i];
    out[0] = (float)s;
    return LP_OK;
}

static lp_status ref_max_abs(const lp_backend *be, size_t n, const float *x, float *out,
                             lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, "max_abs", "x", err));
    LP_BK_TRY(lp_bk_need(out, 1, "max_abs", "out", err));
    float m = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(x[i])) {
            m = x[i];
            break;
        }
        m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
    }
    out[0] = m;
    return LP_OK;
}

static lp_status ref_argmax_rows(const lp_backend *be, size_t n, size_t d, const float *x,
                                 int32_t *out, lp_err *err)
{
    if (d == 0 || d > INT32_MAX)
        return lp_err_set(err, LP_EINVAL, "argmax_rows: d is %zu; expected 1..2^31-1", d);
    LP_BK_TRY(lp_bk_need(x, n * d, "argmax_rows", "x", err));
    LP_BK_TRY(lp_bk_need(out, n, "argmax_rows", "out", err));
    for (size_t i = 0; i < n; i++) {
        const float *r = x + i * d;
        size_t best = 0;
        for (size_t j = 1; j < d && !isnan(r[best]); j++)
            if (r[j] > r[best] || isnan(r[j]))
                best = j;
        out[i] = (int32_t)best;
    }
    return LP_OK;
}

/* ---- optimizers --------------------------------------------------------------------------- */

static lp_status ref_adamw_step(const lp_backend *be, size_t n, const lp_adamw_opts *o, uint64_t t,
                                float *params, const float *grads, float *m, float *v, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_adamw(n, o, t, params, grads, m, v, err));
    double b1 = o->beta1, b2 = o->beta2, lr = o->lr;
    double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    for (size_t i = 0; i < n; i++) {
        double g = grads[i];
        double p = params[i] * (1.0 - lr * o->weight_decay);
        double mi = b1 * m[i] + (1.0 - b1) * g;
        double vi = b2 * v[i] + (1.0 - b2) * g * g;
        p -= lr * (mi / bc1) / (sqrt(vi / bc2) + o->eps);
        m[i] = (float)mi;
        v[i] = (float)vi;
        params[i] = (float)p;
    }
    return LP_OK;
}

static lp_status ref_sgd_step(const lp_backend *be, size_t n, const lp_sgd_opts *o, float *params,
                              const float *grads, float *buf, lp_err *err)
{
    LP_BK_TRY(lp_sgd_opts_check(o, err));
    LP_BK_TRY(lp_bk_need(params, n, "sgd_step", "params", err));
    LP_BK_TRY(lp_bk_need(grads, n, "sgd_step", "grads", err));
    if (o->momentum > 0)
        LP_BK_TRY(lp_bk_need(buf, n, "sgd_step", "buf", err));
    double mu = o->momentum;
    for (size_t i = 0; i < n; i++) {
        double g = grads[i] + o->weight_decay * params[i];
        if (mu > 0) {
            double b = mu * buf[i] + g;
            buf[i] = (float)b;
            g = o->nesterov ? g + mu * b : b;
        }
        params[i] = (float)(params[i] - o->lr * g);
    }
    return LP_OK;
}

/* ---- im2col / col2im ---------------------------------------------------------------------- */

/* Visit every (image b, column row r, output pixel q) with the input offset it reads, or -1
 * when it reads padding. col index = (b * rows + r) * (oh * ow) + q. */
#define REF_CONV_LOOP(g, oh, ow, BODY)                                                             \
    for (size_t b_ = 0; b_ < (g)->n; b_++)                                                         \
        for (size_t ci_ = 0; ci_ < (g)->c; ci_++)                                                  \
            for (size_t ki_ = 0; ki_ < (g)->kh; ki_++)                                             \
                for (size_t kj_ = 0; kj_ < (g)->kw; kj_++)                                         \
                    for (size_t oy_ = 0; oy_ < (oh); oy_++)                                        \
                        for (size_t ox_ = 0; ox_ < (ow); ox_++) {                                  \
                            ptrdiff_t iy_ =                                                        \
                                (ptrdiff_t)(oy_ * (g)->stride_h + ki_) - (ptrdiff_t)(g)->pad_h;    \
                            ptrdiff_t ix_ =                                                        \
                                (ptrdiff_t)(ox_ * (g)->stride_w + kj_) - (ptrdiff_t)(g)->pad_w;    \
                            size_t r_ = (ci_ * (g)->kh + ki_) * (g)->kw + kj_;                     \
                            size_t ci2_ = (b_ * (g)->c * (g)->kh * (g)->kw + r_) * (oh) * (ow) +   \
                                          oy_ * (ow) + ox_;                                        \
                            ptrdiff_t xi_ = -1;                                                    \
                            if (iy_ >= 0 && ix_ >= 0 && iy_ < (ptrdiff_t)(g)->h &&                 \
                                ix_ < (ptrdiff_t)(g)->w)                                           \
                                xi_ = (ptrdiff_t)(((b_ * (g)->c + ci_) * (g)->h + (size_t)iy_) *   \
                                                      (g)->w +                                     \
                                                  (size_t)ix_);                                    \
                            BODY                                                                   \
                        }

static lp_status ref_im2col(const lp_backend *be, const lp_conv2d_geom *g, const float *x,
                            float *col, lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_conv2d_geom_check(g, "im2col", &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(x, 1, "im2col", "x", err));
    LP_BK_TRY(lp_bk_need(col, 1, "im2col", "col", err));
    REF_CONV_LOOP(g, oh, ow, { col[ci2_] = xi_ >= 0 ? x[xi_] : 0.0f; })
    return LP_OK;
}

static lp_status ref_col2im(const lp_backend *be, const lp_conv2d_geom *g, const float *col,
                            float *x, lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_conv2d_geom_check(g, "col2im", &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(col, 1, "col2im", "col", err));
    LP_BK_TRY(lp_bk_need(x, 1, "col2im", "x", err));
    memset(x, 0, g->n * g->c * g->h * g->w * sizeof *x);
    REF_CONV_LOOP(g, oh, ow, {
        if (xi_ >= 0)
            x[xi_] += col[ci2_];
    })
    return LP_OK;
}

/* ---- pooling ------------------------------------------------------------------------------ */

/* Visit each output pixel (plane p = b*c + ci, offset o in the (oh, ow) plane) and, inside,
 * each in-bounds input offset q = iy*w + ix of its window. */
#define REF_POOL_LOOP(g, oh, ow, OUTER_PRE, INNER, OUTER_POST)                                     \
    for (size_t p_ = 0; p_ < (g)->n * (g)->c; p_++)                                                \
        for (size_t oy_ = 0; oy_ < (oh); oy_++)                                                    \
            for (size_t ox_ = 0; ox_ < (ow); ox_++) {                                              \
                size_t o_ = p_ * (oh) * (ow) + oy_ * (ow) + ox_;                                   \
                OUTER_PRE                                                                          \
                for (size_t ki_ = 0; ki_ < (g)->kh; ki_++)                                         \
                    for (size_t kj_ = 0; kj_ < (g)->kw; kj_++) {                                   \
                        ptrdiff_t iy_ =                                                            \
                            (ptrdiff_t)(oy_ * (g)->stride_h + ki_) - (ptrdiff_t)(g)->pad_h;        \
                        ptrdiff_t ix_ =                                                            \
                            (ptrdiff_t)(ox_ * (g)->stride_w + kj_) - (ptrdiff_t)(g)->pad_w;        \
                        if (iy_ < 0 || ix_ < 0 || iy_ >= (ptrdiff_t)(g)->h ||                      \
                            ix_ >= (ptrdiff_t)(g)->w)                                              \
                            continue;                                                              \
                        size_t q_ = (size_t)iy_ * (g)->w + (size_t)ix_;                            \
                        size_t xo_ = p_ * (g)->h * (g)->w + q_;                                    \
                        INNER                                                                      \
                    }                                                                              \
                OUTER_POST                                                                         \
            }

static lp_status ref_maxpool_forward(const lp_backend *be, const lp_conv2d_geom *g, const float *x,
                                     float *y, int32_t *argmax, lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_bk_check_pool("maxpool_forward", g, &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(x, 1, "maxpool_forward", "x", err));
    LP_BK_TRY(lp_bk_need(y, 1, "maxpool_forward", "y", err));
    LP_BK_TRY(lp_bk_need(argmax, 1, "maxpool_forward", "argmax", err));
    REF_POOL_LOOP(
        g, oh, ow, float best = 0; ptrdiff_t bi = -1;
        ,
        {
            float v = x[xo_];
            /* NaN wins and sticks, as in PyTorch. */
            if (bi < 0 || (!isnan(best) && (v > best || isnan(v)))) {
                best = v;
                bi = (ptrdiff_t)q_;
            }
        },
        y[o_] = best;
        argmax[o_] = (int32_t)bi;)
    return LP_OK;
}

static lp_status ref_maxpool_backward(const lp_backend *be, const lp_conv2d_geom *g,
                                      const float *dy, const int32_t *argmax, float *dx,
                                      lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_bk_check_pool("maxpool_backward", g, &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(dy, 1, "maxpool_backward", "dy", err));
    LP_BK_TRY(lp_bk_need(argmax, 1, "maxpool_backward", "argmax", err));
    LP_BK_TRY(lp_bk_need(dx, 1, "maxpool_backward", "dx", err));
    size_t planes = g->n * g->c, hw = g->h * g->w;
    memset(dx, 0, planes * hw * sizeof *dx);
    for (size_t p = 0; p < planes; p++)
        for (size_t o = 0; o < oh * ow; o++) {
            int32_t a = argmax[p * oh * ow + o];
            if (a < 0 || (size_t)a >= hw)
                return lp_bk_bad_argmax("maxpool_backward", a, p, hw, err);
            dx[p * hw + (size_t)a] += dy[p * oh * ow + o];
        }
    return LP_OK;
}

static lp_status ref_avgpool_forward(const lp_backend *be, const lp_conv2d_geom *g, const float *x,
                                     float *y, lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_bk_check_pool("avgpool_forward", g, &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(x, 1, "avgpool_forward", "x", err));
    LP_BK_TRY(lp_bk_need(y, 1, "avgpool_forward", "y", err));
    double div = (double)(g->kh * g->kw);
    REF_POOL_LOOP(
        g, oh, ow, double s = 0;, { s += x[xo_]; }, y[o_] = (float)(s / div);)
    return LP_OK;
}

static lp_status ref_avgpool_backward(const lp_backend *be, const lp_conv2d_geom *g,
                                      const float *dy, float *dx, lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_bk_check_pool("avgpool_backward", g, &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(dy, 1, "avgpool_backward", "dy", err));
    LP_BK_TRY(lp_bk_need(dx, 1, "avgpool_backward", "dx", err));
    memset(dx, 0, g->n * g->c * g->h * g->w * sizeof *dx);
    double div = (double)(g->kh * g->kw);
    REF_POOL_LOOP(
        g, oh, ow, double share = dy[o_] / div;, { dx[xo_] += (float)share; }, )
    return LP_OK;
}

/* ---- the table ---------------------------------------------------------------------------- */

/* ---- transformer ops ---------------------------------------------------------------------- */

static lp_status ref_layernorm_forward(const lp_backend *be, size_t n, size_t d, float eps,
                                       const float *x, const float *gamma, const float *beta,
                                       float *y, float *mean, float *rstd, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_layernorm(n, d, eps, x, gamma, beta, y, err));
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        double mu = 0, var = 0;
        for (size_t j = 0; j < d; j++)
            mu += xi[j];
        mu /= (double)d;
        for (size_t j = 0; j < d; j++)
            var += (xi[j] - mu) * (xi[j] - mu);
        double rs = 1.0 / sqrt(var / (double)d + (double)eps);
        for (size_t j = 0; j < d; j++)
            y[i * d + j] = (float)((x[i * d + j] - mu) * rs * gamma[j] + beta[j]);
        if (mean)
            mean[i] = (float)mu;
        if (rstd)
            rstd[i] = (float)rs;
    }
    return LP_OK;
}

static lp_status ref_softmax_rows(const lp_backend *be, size_t n, size_t d, size_t group,
                                  const float *mask, const float *x, float *y, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_softmax_rows(n, d, group, x, y, err));
    for (size_t i = 0; i < n; i++) {
        const float *m = mask ? mask + (i / group) * d : NULL; /* (d) */
        double mx = -INFINITY, sum = 0;
        for (size_t j = 0; j < d; j++)
            if (!m || m[j] != 0)
                mx = x[i * d + j] > mx ? x[i * d + j] : mx;
        for (size_t j = 0; j < d; j++)
            if (!m || m[j] != 0)
                sum += exp(x[i * d + j] - mx);
        for (size_t j = 0; j < d; j++)
            y[i * d + j] = (!m || m[j] != 0) ? (float)(exp(x[i * d + j] - mx) / sum) : 0.0f;
    }
    return LP_OK;
}

static lp_status ref_gather_rows(const lp_backend *be, size_t n, size_t d, size_t rows,
                                 const float *table, const int32_t *idx, float *out, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_gather(n, d, rows, table, idx, out, true, err));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            out[i * d + j] = table[(size_t)idx[i] * d + j];
    return LP_OK;
}

/* Plain per-row double sums (the formulas of backend.h); the reference for the cpu table. */
static lp_status ref_layernorm_backward(const lp_backend *be, size_t n, size_t d, const float *x,
                                        const float *gamma, const float *mean, const float *rstd,
                                        const float *dy, float *dx, float *dgamma, float *dbeta,
                                        lp_err *err)
{
    LP_BK_TRY(lp_bk_check_layernorm_bwd(n, d, x, gamma, mean, rstd, dy, err));
    for (size_t i = 0; i < n; i++) {
        double sg = 0, sgx = 0;
        for (size_t j = 0; j < d; j++) {
            double xh = ((double)x[i * d + j] - mean[i]) * rstd[i];
            double g = (double)gamma[j] * dy[i * d + j];
            sg += g;
            sgx += g * xh;
            if (dgamma)
                dgamma[j] += (float)(dy[i * d + j] * xh);
            if (dbeta)
                dbeta[j] += dy[i * d + j];
        }
        for (size_t j = 0; dx && j < d; j++) {
            double xh = ((double)x[i * d + j] - mean[i]) * rstd[i];
            double g = (double)gamma[j] * dy[i * d + j];
            dx[i * d + j] = (float)(rstd[i] * (g - sg / (double)d - xh * sgx / (double)d));
        }
    }
    return LP_OK;
}

static lp_status ref_softmax_rows_backward(const lp_backend *be, size_t n, size_t d,
                                           const float *y, const float *dy, float *dx, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_softmax_bwd(n, d, y, dy, dx, err));
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++)
            s += (double)y[i * d + j] * dy[i * d + j];
        for (size_t j = 0; j < d; j++)
            dx[i * d + j] = (float)(y[i * d + j] * (dy[i * d + j] - s));
    }
    return LP_OK;
}

static lp_status ref_scatter_add_rows(const lp_backend *be, size_t n, size_t d, size_t rows,
                                      const float *dy, const int32_t *idx, float *dtable,
                                      lp_err *err)
{
    LP_BK_TRY(lp_bk_check_scatter(n, d, rows, dy, idx, dtable, true, err));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            dtable[(size_t)idx[i] * d + j] += dy[i * d + j];
    return LP_OK;
}

/* ---- batch normalization (NCHW channels) ------------------------------------------------ */

/* Channel ch of x (n, c, hw): value t of N = n hw is x[(t / hw) c hw + ch hw + t % hw]. */
#define REF_BN_AT(x, b, ch, p) ((x)[((b) * c + (ch)) * hw + (p)])

/* mu, inv of channel ch: batch statistics (train, biased variance into *var) or running. */
static void ref_bn_stats(size_t n, size_t c, size_t hw, size_t ch, float eps, bool train,
                         const float *x, const float *rm, const float *rv, double *mu,
                         double *inv, double *var)
{
    if (train) {
        double s = 0, q = 0, N = (double)(n * hw);
        for (size_t b = 0; b < n; b++)
            for (size_t p = 0; p < hw; p++)
                s += REF_BN_AT(x, b, ch, p);
        *mu = s / N;
        for (size_t b = 0; b < n; b++)
            for (size_t p = 0; p < hw; p++) {
                double d = REF_BN_AT(x, b, ch, p) - *mu;
                q += d * d;
            }
        *var = q / N;
    } else {
        *mu = rm[ch];
        *var = rv[ch];
    }
    *inv = 1.0 / sqrt(*var + (double)eps);
}

static lp_status ref_batchnorm_forward(const lp_backend *be, size_t n, size_t c, size_t hw,
                                       float eps, float momentum, bool train, const float *x,
                                       const float *gamma, const float *beta, float *run_mean,
                                       float *run_var, float *y, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_batchnorm("batchnorm_forward", n, c, hw, eps, momentum, train, x, gamma,
                                    beta, run_mean, run_var, y, NULL, err));
    double N = (double)(n * hw);
    for (size_t ch = 0; ch < c; ch++) {
        double mu, inv, var;
        ref_bn_stats(n, c, hw, ch, eps, train, x, run_mean, run_var, &mu, &inv, &var);
        for (size_t b = 0; b < n; b++)
            for (size_t p = 0; p < hw; p++)
                REF_BN_AT(y, b, ch, p) =
                    (float)((REF_BN_AT(x, b, ch, p) - mu) * inv * gamma[ch] + beta[ch]);
        if (train) {
            double unb = N > 1 ? var * N / (N - 1) : var;
            run_mean[ch] = (float)((1.0 - momentum) * run_mean[ch] + momentum * mu);
            run_var[ch] = (float)((1.0 - momentum) * run_var[ch] + momentum * unb);
        }
    }
    return LP_OK;
}

static lp_status ref_batchnorm_backward(const lp_backend *be, size_t n, size_t c, size_t hw,
                                        float eps, bool train, const float *x, const float *gamma,
                                        const float *run_mean, const float *run_var,
                                        const float *dy, float *dx, float *dgamma, float *dbeta,
                                        lp_err *err)
{
    LP_BK_TRY(lp_bk_check_batchnorm("batchnorm_backward", n, c, hw, eps, 0, train, x, gamma,
                                    dbeta, run_mean, run_var, dy, dgamma, err));
    double N = (double)(n * hw);
    for (size_t ch = 0; ch < c; ch++) {
        double mu, inv, var, sb = 0, sg = 0;
        ref_bn_stats(n, c, hw, ch, eps, train, x, run_mean, run_var, &mu, &inv, &var);
        for (size_t b = 0; b < n; b++)
            for (size_t p = 0; p < hw; p++) {
                double g = REF_BN_AT(dy, b, ch, p);
                sb += g;
                sg += g * (REF_BN_AT(x, b, ch, p) - mu) * inv;
            }
        dbeta[ch] = (float)sb;
        dgamma[ch] = (float)sg;
        if (!dx)
            continue;
        double a = gamma[ch] * inv;
        for (size_t b = 0; b < n; b++)
            for (size_t p = 0; p < hw; p++) {
                double g = REF_BN_AT(dy, b, ch, p);
                double xh = (REF_BN_AT(x, b, ch, p) - mu) * inv;
                REF_BN_AT(dx, b, ch, p) =
                    (float)(train ? a / N * (N * g - sb - xh * sg) : a * g);
            }
    }
    return LP_OK;
}

/* ---- recommender ops (host_mf.c; ALS rows in order) ---------------------------------------- */

static lp_status ref_als_solve(const lp_backend *be, size_t n_rows, size_t n_f, size_t k,
                              size_t nnz, const int32_t *ptr, const int32_t *col, const float *w,
                              const float *f, const float *gram, float lambda, float alpha,
                              float *x, lp_err *err)
{
    return lp_bk_host_als_solve(n_rows, n_f, k, nnz, ptr, col, w, f, gram, lambda, alpha, x, false,
                                err);
}

static lp_status ref_bpr_epoch(const lp_backend *be, size_t n_users, size_t n_items, size_t k,
                              size_t nnz, const int32_t *ptr, const int32_t *col,
                              const int32_t *row_of, uint64_t seed, uint64_t epoch,
                              size_t n_samples, float lr, float reg, size_t batch, float *xu,
                              float *yi, double *loss, size_t *used, lp_err *err)
{
    return lp_bk_host_bpr_epoch(n_users, n_items, k, nnz, ptr, col, row_of, seed, epoch,
                                n_samples, lr, reg, batch, xu, yi, loss, used, err);
}

static const lp_backend ref_table = {
    .name = "ref",
    .host_visible = true,
    .ctx = NULL,
    .alloc = lp_bk_host_alloc,
    .free = lp_bk_host_free,
    .memset = lp_bk_host_memset,
    .copy_h2d = lp_bk_host_copy,
    .copy_d2h = lp_bk_host_copy,
    .copy_d2d = lp_bk_host_copy,
    .sync = lp_bk_host_sync,
    .sgemm = ref_sgemm,
    .sgemm_batched = ref_sgemm_batched,
    .lowrank_update = ref_lowrank_update,
    .add = ref_add,
    .sub = ref_sub,
    .mul = ref_mul,
    .scale = ref_scale,
    .axpy = ref_axpy,
    .fill = ref_fill,
    .bias_add = ref_bias_add,
    .bias_backward = ref_bias_backward,
    .act_forward = ref_act_forward,
    .act_backward = ref_act_backward,
    .dropout_forward = ref_dropout_forward,
    .dropout_backward = ref_dropout_backward,
    .softmax_xent = ref_softmax_xent,
    .bce_logits = ref_bce_logits,
    .mse = ref_mse,
    .sum_rows = ref_sum_rows,
    .sum_cols = ref_sum_cols,
    .sum_all = ref_sum_all,
    .max_abs = ref_max_abs,
    .argmax_rows = ref_argmax_rows,
    .adamw_step = ref_adamw_step,
    .sgd_step = ref_sgd_step,
    .im2col = ref_im2col,
    .col2im = ref_col2im,
    .maxpool_forward = ref_maxpool_forward,
    .maxpool_backward = ref_maxpool_backward,
    .avgpool_forward = ref_avgpool_forward,
    .avgpool_backward = ref_avgpool_backward,
    .layernorm_forward = ref_layernorm_forward,
    .softmax_rows = ref_softmax_rows,
    .gather_rows = ref_gather_rows,
    .layernorm_backward = ref_layernorm_backward,
    .softmax_rows_backward = ref_softmax_rows_backward,
    .scatter_add_rows = ref_scatter_add_rows,
    .batchnorm_forward = ref_batchnorm_forward,
    .batchnorm_backward = ref_batchnorm_backward,
    .als_solve = ref_als_solve,
    .bpr_epoch = ref_bpr_epoch,
};

const lp_backend *lp_backend_ref(void)
{
    return &ref_table;
}
