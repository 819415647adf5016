/*
 * backend.c - what every backend table shares: choosing a table by name, the activation and
 * optimizer option helpers, convolution geometry, the Philox-4x32-10 generator that defines
 * dropout masks, device buffers, the parameter layout, argument checks and the host-memory
 * members of the CPU tables.
 *
 * No kernels live here (ref.c and cpu.c hold them). Everything is stateless or owned by the
 * caller's handle, hence thread-safe.
 */
#include "backend/backend_impl.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- activations ------------------------------------------------------------------------ */

static const char *const act_names[LP_ACT_KIND_COUNT_] = {"relu", "tanh", "sigmoid", "gelu",
                                                          "gelu_tanh"};

const char *lp_act_kind_name(lp_act_kind kind)
{
    return (int)kind >= 0 && kind < LP_ACT_KIND_COUNT_ ? act_names[kind] : NULL;
}

lp_status lp_act_kind_parse(const char *name, lp_act_kind *kind, lp_err *err)
{
    for (int k = 0; name && k < LP_ACT_KIND_COUNT_; k++)
        if (strcmp(name, act_names[k]) == 0) {
            *kind = (lp_act_kind)k;
            return LP_OK;
        }
    return lp_err_set(err, LP_EINVAL,
                      "activation '%s' is unknown; expected relu, tanh, sigmoid, gelu or "
                      "gelu_tanh",
                      name ? name : "(null)");
}

bool lp_act_backward_uses_output(lp_act_kind kind)
{
    return kind == LP_ACT_KIND_TANH || kind == LP_ACT_KIND_SIGMOID;
}

/* ---- geometry and options ---------------------------------------------------------------- */

lp_status lp_conv2d_geom_check(const lp_conv2d_geom *g, const char *what, size_t *oh, size_t *ow,
                               lp_err *err)
{
    what = what ? what : "conv2d";
    if (!g)
        return lp_err_set(err, LP_EINVAL, "%s: geometry is NULL", what);
    const struct {
        const char *name;
        size_t v;
    } pos[] = {{"n", g->n},
               {"c", g->c},
               {"h", g->h},
               {"w", g->w},
               {"kh", g->kh},
               {"kw", g->kw},
               {"stride_h", g->stride_h},
               {"stride_w", g->stride_w}};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v == 0)
            return lp_err_set(err, LP_EINVAL, "%s: %s is 0; expected >= 1", what, pos[i].name);
    if (g->h + 2 * g->pad_h < g->kh || g->w + 2 * g->pad_w < g->kw)
        return lp_err_set(err, LP_EINVAL,
                          "%s: window %zux%zu is larger than the padded input %zux%zu", what, g->kh,
                          g->kw, g->h + 2 * g->pad_h, g->w + 2 * g->pad_w);
    size_t h = (g->h + 2 * g->pad_h - g->kh) / g->stride_h + 1;
    size_t w = (g->w + 2 * g->pad_w - g->kw) / g->stride_w + 1;
    if (h > INT32_MAX || w > INT32_MAX || g->h * g->w > INT32_MAX)
        return lp_err_set(err, LP_EINVAL, "%s: image %zux%zu is too large", what, g->h, g->w);
    if (oh)
        *oh = h;
    if (ow)
        *ow = w;
    return LP_OK;
}

lp_adamw_opts lp_adamw_opts_default(void)
{
    return (lp_adamw_opts){
        .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 1e-2};
}

lp_status lp_adamw_opts_check(const lp_adamw_opts *o, lp_err *err)
{
    if (!o)
        return lp_err_set(err, LP_EINVAL, "adamw: options are NULL");
    if (!(o->lr > 0) || !isfinite(o->lr))
        return lp_err_set(err, LP_EINVAL, "adamw: lr is %g; expected a finite value > 0", o->lr);
    if (!(o->beta1 >= 0 && o->beta1 < 1))
        return lp_err_set(err, LP_EINVAL, "adamw: beta1 is %g; expected [0, 1)", o->beta1);
    if (!(o->beta2 >= 0 && o->beta2 < 1))
        return lp_err_set(err, LP_EINVAL, "adamw: beta2 is %g; expected [0, 1)", o->beta2);
    if (!(o->eps > 0) || !isfinite(o->eps))
        return lp_err_set(err, LP_EINVAL, "adamw: eps is %g; expected a finite value > 0", o->eps);
    if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay))
        return lp_err_set(err, LP_EINVAL, "adamw: weight_decay is %g; expected >= 0",
                          o->weight_decay);
    return LP_OK;
}

lp_sgd_opts lp_sgd_opts_default(void)
{
    return (lp_sgd_opts){.lr = 1e-2, .momentum = 0.9, .weight_decay = 0, .nesterov = false};
}

lp_status lp_sgd_opts_check(const lp_sgd_opts *o, lp_err *err)
{
    if (!o)
        return lp_err_set(err, LP_EINVAL, "sgd: options are NULL");
    if (!(o->lr > 0) || !isfinite(o->lr))
        return lp_err_set(err, LP_EINVAL, "sgd: lr is %g; expected a finite value > 0", o->lr);
    if (!(o->momentum >= 0) || !isfinite(o->momentum))
        return lp_err_set(err, LP_EINVAL, "sgd: momentum is %g; expected >= 0", o->momentum);
    if (!(o->weight_decay >= 0) || !isfinite(o->weight_decay))
        return lp_err_set(err, LP_EINVAL, "sgd: weight_decay is %g; expected >= 0",
                          o->weight_decay);
    if (o->nesterov && !(o->momentum > 0))
        return lp_err_set(err, LP_EINVAL, "sgd: nesterov needs momentum > 0 (momentum is %g)",
                          o->momentum);
    return LP_OK;
}

/* ---- choosing a table -------------------------------------------------------------------- */

/* libgomp reads OMP_WAIT_POLICY once when it loads, so the library cannot make idle workers
 * wait passively itself; it says so once when the OpenMP table is chosen without it. */
static void warn_wait_policy(void)
{
    static atomic_int warned;
    const char *w = getenv("OMP_WAIT_POLICY");
    if (w && strcmp(w, "passive") == 0 && !getenv("GOMP_SPINCOUNT"))
        return;
    if (atomic_exchange(&warned, 1) == 0)
        lp_log_warn("backend cpu: OMP_WAIT_POLICY is '%s', not 'passive'; idle OpenMP workers "
                    "may spin and slow other processes (export OMP_WAIT_POLICY=passive)",
                    w ? w : "(unset)");
}

lp_status lp_backend_get(const char *name, const lp_backend **be, lp_err *err)
{
    if (!be)
        return lp_err_set(err, LP_EINVAL, "backend: output pointer is NULL");
    *be = NULL;
    if (!name)
        return lp_err_set(err, LP_EINVAL, "backend name is NULL; expected cpu, ref, cuda or auto");
    bool is_auto = strcmp(name, "auto") == 0;
    if (strcmp(name, "cuda") == 0 || is_auto) {
#ifdef LEPTON_HAVE_CUDA
        lp_err cerr;
        lp_err_clear(&cerr);
        if (lp_backend_cuda_get(be, &cerr) == LP_OK)
            return LP_OK;
        if (!is_auto)
            return lp_err_set(err, cerr.status, "backend 'cuda': %s", lp_err_text(&cerr));
        lp_log_info("backend auto: no usable CUDA device (%s); using cpu", lp_err_text(&cerr));
#else
        if (!is_auto)
            return lp_err_set(err, LP_EUNSUPPORTED,
                              "backend 'cuda': this build of liblepton has no CUDA backend "
                              "(LEPTON_HAVE_CUDA undefined); use cpu");
#endif
    }
    if (strcmp(name, "cpu") == 0 || is_auto) {
        *be = lp_backend_cpu();
        warn_wait_policy();
        return LP_OK;
    }
    if (strcmp(name, "ref") == 0) {
        *be = lp_backend_ref();
        return LP_OK;
    }
    return lp_err_set(err, LP_EINVAL, "backend '%s' is unknown; expected cpu, ref, cuda or auto",
                      name);
}

/* ---- Philox-4x32-10 ---------------------------------------------------------------------- */

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* golden ratio */
#define PHILOX_W1 0xBB67AE85u /* sqrt(3) - 1 */

void lp_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0, p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
        uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
        c0 = hi1 ^ c1 ^ k0;
        c1 = lo1;
        c2 = hi0 ^ c3 ^ k1;
        c3 = lo0;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

uint64_t lp_bk_keep_threshold(float p)
{
    /* (1 - p) in double, then floor: the same integer on every device. p = 0 keeps all. */
    return (uint64_t)floor((1.0 - (double)p) * 4294967296.0);
}

bool lp_dropout_keep(uint64_t seed, uint64_t step, uint64_t i, float p)
{
    uint64_t blk = i / 4;
    uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)(blk >> 32), (uint32_t)step,
                       (uint32_t)(step >> 32)};
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, out[4];
    lp_philox4x32(ctr, key, out);
    return out[i % 4] < lp_bk_keep_threshold(p);
}

/* ---- device buffers ---------------------------------------------------------------------- */

lp_status lp_dbuf_alloc(const lp_backend *be, size_t n, lp_dbuf *buf, lp_err *err)
{
    if (!be || !buf)
        return lp_err_set(err, LP_EINVAL, "dbuf_alloc: backend or buffer is NULL");
    buf->ptr = NULL;
    buf->n = 0;
    if (n > SIZE_MAX / sizeof(float))
        return lp_err_set(err, LP_ETOOBIG, "dbuf_alloc: %zu floats overflow the address space", n);
    void *p = NULL;
    LP_BK_TRY(be->alloc(be, n * sizeof(float), &p, err));
    lp_status s = be->memset(be, p, 0, n * sizeof(float), err);
    if (s != LP_OK) {
        be->free(be, p, NULL);
        return s;
    }
    buf->ptr = p;
    buf->n = n;
    return LP_OK;
}

void lp_dbuf_free(const lp_backend *be, lp_dbuf *buf)
{
    if (!be || !buf || !buf->ptr)
        return;
    be->free(be, buf->ptr, NULL);
    buf->ptr = NULL;
    buf->n = 0;
}

/* ---- parameter layout -------------------------------------------------------------------- */

struct lp_param_layout {
    lp_param_view *v;
    size_t count, cap, total;
};

lp_param_layout *lp_param_layout_new(void)
{
    return lp_calloc(1, sizeof(lp_param_layout));
}

void lp_param_layout_free(lp_param_layout *l)
{
    if (!l)
        return;
    free(l->v);
    free(l);
}

lp_status lp_param_layout_add(lp_param_layout *l, const char *name, size_t ndim,
                              const size_t *shape, size_t *offset, lp_err *err)
{
    if (!l || !name || !shape)
        return lp_err_set(err, LP_EINVAL, "param layout: layout, name or shape is NULL");
    size_t len = strlen(name);
    if (len == 0 || len >= LP_PARAM_NAME_MAX)
        return lp_err_set(err, LP_EINVAL, "param layout: name '%s' has %zu chars; expected 1..%d",
                          name, len, LP_PARAM_NAME_MAX - 1);
    if (ndim == 0 || ndim > LP_PARAM_MAX_DIMS)
        return lp_err_set(err, LP_EINVAL, "param layout: '%s' has %zu dims; expected 1..%d", name,
                          ndim, LP_PARAM_MAX_DIMS);
    if (lp_param_layout_find(l, name))
        return lp_err_set(err, LP_EEXIST, "param layout: '%s' is already defined", name);
    size_t n = 1;
    for (size_t i = 0; i < ndim; i++) {
        if (shape[i] == 0)
            return lp_err_set(err, LP_EINVAL, "param layout: '%s' dim %zu is 0", name, i);
        if (n > SIZE_MAX / 4 / shape[i])
            return lp_err_set(err, LP_ETOOBIG, "param layout: '%s' is too large", name);
        n *= shape[i];
    }
    size_t off = (l->total + LP_PARAM_ALIGN - 1) / LP_PARAM_ALIGN * LP_PARAM_ALIGN;
    if (off > SIZE_MAX / 4 - n)
        return lp_err_set(err, LP_ETOOBIG, "param layout: block exceeds the address space at '%s'",
                          name);
    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        lp_param_view *v = lp_reallocarray(l->v, cap, sizeof *v);
        if (!v)
            return lp_err_set(err, LP_ENOMEM, "param layout: out of memory adding '%s'", name);
        l->v = v;
        l->cap = cap;
    }
    lp_param_view *pv = &l->v[l->count++];
    memset(pv, 0, sizeof *pv);
    memcpy(pv->name, name, len + 1);
    pv->offset = off;
    pv->n = n;
    pv->ndim = ndim;
    memcpy(pv->shape, shape, ndim * sizeof *shape);
    l->total = off + n;
    if (offset)
        *offset = off;
    return LP_OK;
}

size_t lp_param_layout_total(const lp_param_layout *l)
{
    /* Round the end up too, so blocks placed back to back stay aligned. */
    return l ? (l->total + LP_PARAM_ALIGN - 1) / LP_PARAM_ALIGN * LP_PARAM_ALIGN : 0;
}

size_t lp_param_layout_count(const lp_param_layout *l)
{
    return l ? l->count : 0;
}

const lp_param_view *lp_param_layout_at(const lp_param_layout *l, size_t i)
{
    return l && i < l->count ? &l->v[i] : NULL;
}

const lp_param_view *lp_param_layout_find(const lp_param_layout *l, const char *name)
{
    for (size_t i = 0; l && name && i < l->count; i++)
        if (strcmp(l->v[i].name, name) == 0)
            return &l->v[i];
    return NULL;
}

/* ---- shared checks ----------------------------------------------------------------------- */

lp_status lp_bk_need(const void *p, size_t n, const char *op, const char *arg, lp_err *err)
{
    if (!p && n > 0)
        return lp_err_set(err, LP_EINVAL, "%s: %s is NULL", op, arg);
    return LP_OK;
}

lp_status lp_bk_check_gemm(const char *op, bool ta, bool tb, size_t m, size_t n, size_t k,
                           const float *a, size_t lda, const float *b, size_t ldb, const float *c,
                           size_t ldc, lp_err *err)
{
    size_t a_cols = ta ? m : k, b_cols = tb ? k : n;
    if (m > INT32_MAX || n > INT32_MAX || k > INT32_MAX || lda > INT32_MAX || ldb > INT32_MAX ||
        ldc > INT32_MAX)
        return lp_err_set(err, LP_ETOOBIG, "%s: a dimension exceeds 2^31-1 (BLAS int)", op);
    if (m > 0 && k > 0 && lda < (a_cols ? a_cols : 1))
        return lp_err_set(err, LP_EINVAL, "%s: lda %zu < %zu columns of A%s", op, lda, a_cols,
                          ta ? " (transposed)" : "");
    if (n > 0 && k > 0 && ldb < (b_cols ? b_cols : 1))
        return lp_err_set(err, LP_EINVAL, "%s: ldb %zu < %zu columns of B%s", op, ldb, b_cols,
                          tb ? " (transposed)" : "");
    if (m > 0 && ldc < (n ? n : 1))
        return lp_err_set(err, LP_EINVAL, "%s: ldc %zu < n %zu", op, ldc, n);
    LP_BK_TRY(lp_bk_need(a, m * k, op, "A", err));
    LP_BK_TRY(lp_bk_need(b, k * n, op, "B", err));
    LP_BK_TRY(lp_bk_need(c, m * n, op, "C", err));
    return LP_OK;
}

lp_status lp_bk_check_act(const char *op, lp_act_kind kind, lp_err *err)
{
    if (!lp_act_kind_name(kind))
        return lp_err_set(err, LP_EINVAL, "%s: activation kind %d is unknown", op, (int)kind);
    return LP_OK;
}

lp_status lp_bk_check_dropout(const char *op, float p, lp_err *err)
{
    if (!(p >= 0 && p < 1))
        return lp_err_set(err, LP_EINVAL, "%s: p is %g; expected [0, 1)", op, (double)p);
    return LP_OK;
}

lp_status lp_bk_check_pool(const char *op, const lp_conv2d_geom *g, size_t *oh, size_t *ow,
                           lp_err *err)
{
    LP_BK_TRY(lp_conv2d_geom_check(g, op, oh, ow, err));
    if (2 * g->pad_h > g->kh || 2 * g->pad_w > g->kw)
        return lp_err_set(err, LP_EINVAL, "%s: padding %zux%zu exceeds half the window %zux%zu", op,
                          g->pad_h, g->pad_w, g->kh, g->kw);
    return LP_OK;
}

lp_status lp_bk_check_loss(const char *op, double loss, lp_err *err)
{
    if (!isfinite(loss))
        return lp_err_set(err, LP_ENUMERIC, "%s: loss is %s (non-finite input or overflow)", op,
                          isnan(loss) ? "NaN" : "Inf");
    return LP_OK;
}

lp_status lp_bk_check_targets(const char *op, size_t n, size_t c, const int32_t *t, lp_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (t[i] < 0 || (size_t)t[i] >= c)
            return lp_bk_bad_target(op, i, t[i], c, err);
    return LP_OK;
}

lp_status lp_bk_bad_target(const char *op, size_t row, int32_t value, size_t c, lp_err *err)
{
    return lp_err_set(err, LP_EINVAL, "%s: target of row %zu is %d; expected 0..%zu", op, row,
                      (int)value, c - 1);
}

lp_status lp_bk_bad_argmax(const char *op, int32_t value, size_t plane, size_t hw, lp_err *err)
{
    return lp_err_set(err, LP_EINVAL, "%s: argmax %d of plane %zu is outside 0..%zu", op,
                      (int)value, plane, hw - 1);
}

lp_status lp_bk_check_layernorm(size_t n, size_t d, float eps, const float *x, const float *gamma,
                                const float *beta, const float *y, lp_err *err)
{
    if (d == 0)
        return lp_err_set(err, LP_EINVAL, "layernorm_forward: d is 0; expected >= 1");
    if (!(eps >= 0) || isinf(eps))
        return lp_err_set(err, LP_EINVAL, "layernorm_forward: eps is %g; expected finite >= 0",
                          (double)eps);
    LP_BK_TRY(lp_bk_need(x, n * d, "layernorm_forward", "x", err));
    LP_BK_TRY(lp_bk_need(gamma, n ? d : 0, "layernorm_forward", "gamma", err));
    LP_BK_TRY(lp_bk_need(beta, n ? d : 0, "layernorm_forward", "beta", err));
    return lp_bk_need(y, n * d, "layernorm_forward", "y", err);
}

lp_status lp_bk_check_adamw(size_t n, const lp_adamw_opts *o, uint64_t t, const float *params,
                            const float *grads, const float *m, const float *v, lp_err *err)
{
    LP_BK_TRY(lp_adamw_opts_check(o, err));
    if (t == 0)
        return lp_err_set(err, LP_EINVAL, "adamw_step: step t is 0; expected >= 1");
    LP_BK_TRY(lp_bk_need(params, n, "adamw_step", "params", err));
    LP_BK_TRY(lp_bk_need(grads, n, "adamw_step", "grads", err));
    LP_BK_TRY(lp_bk_need(m, n, "adamw_step", "m", err));
    return lp_bk_need(v, n, "adamw_step", "v", err);
}

lp_status lp_bk_check_softmax_rows(size_t n, size_t d, size_t group, const float *x,
                                   const float *y, lp_err *err)
{
    if (group == 0 || n % group)
        return lp_err_set(err, LP_EINVAL,
                          "softmax_rows: group is %zu; expected a divisor of n = %zu", group, n);
    LP_BK_TRY(lp_bk_need(x, n * d, "softmax_rows", "x", err));
    return lp_bk_need(y, n * d, "softmax_rows", "y", err);
}

/* gather_rows / scatter_add_rows (op): the table (rows, d) named tname, the rows (n, d) named
 * rname, and idx (n) (each index checked against rows when host_idx). */
static lp_status check_rows_op(const char *op, size_t n, size_t d, size_t rows,
                               const float *table, const char *tname, const int32_t *idx,
                               const float *rws, const char *rname, bool host_idx, lp_err *err)
{
    LP_BK_TRY(lp_bk_need(table, n ? rows * d : 0, op, tname, err));
    LP_BK_TRY(lp_bk_need(idx, n, op, "idx", err));
    LP_BK_TRY(lp_bk_need(rws, n * d, op, rname, err));
    if (n && d && rows == 0)
        return lp_err_set(err, LP_EINVAL, "%s: the table has 0 rows", op);
    for (size_t i = 0; host_idx && i < n; i++)
        if (idx[i] < 0 || (size_t)idx[i] >= rows)
            return lp_err_set(err, LP_EINVAL, "%s: idx[%zu] is %d; expected 0..%zu", op, i,
                              (int)idx[i], rows - 1);
    return LP_OK;
}

lp_status lp_bk_check_gather(size_t n, size_t d, size_t rows, const float *table,
                             const int32_t *idx, const float *out, bool host_idx, lp_err *err)
{
    return check_rows_op("gather_rows", n, d, rows, table, "table", idx, out, "out", host_idx,
                         err);
}

lp_status lp_bk_check_layernorm_bwd(size_t n, size_t d, const float *x, const float *gamma,
                                    const float *mean, const float *rstd, const float *dy,
                                    lp_err *err)
{
    if (d == 0)
        return lp_err_set(err, LP_EINVAL, "layernorm_backward: d is 0; expected >= 1");
    LP_BK_TRY(lp_bk_need(x, n * d, "layernorm_backward", "x", err));
    LP_BK_TRY(lp_bk_need(gamma, n ? d : 0, "layernorm_backward", "gamma", err));
    LP_BK_TRY(lp_bk_need(mean, n, "layernorm_backward", "mean", err));
    LP_BK_TRY(lp_bk_need(rstd, n, "layernorm_backward", "rstd", err));
    return lp_bk_need(dy, n * d, "layernorm_backward", "dy", err);
}

lp_status lp_bk_check_softmax_bwd(size_t n, size_t d, const float *y, const float *dy,
                                  const float *dx, lp_err *err)
{
    LP_BK_TRY(lp_bk_need(y, n * d, "softmax_rows_backward", "y", err));
    LP_BK_TRY(lp_bk_need(dy, n * d, "softmax_rows_backward", "dy", err));
    return lp_bk_need(dx, n * d, "softmax_rows_backward", "dx", err);
}

lp_status lp_bk_check_scatter(size_t n, size_t d, size_t rows, const float *dy,
                              const int32_t *idx, const float *dtable, bool host_idx, lp_err *err)
{
    return check_rows_op("scatter_add_rows", n, d, rows, dtable, "dtable", idx, dy, "dy",
                         host_idx, err);
}

lp_status lp_bk_check_batchnorm(const char *op, size_t n, size_t c, size_t hw, float eps,
                                float momentum, bool train, const float *x, const float *gamma,
                                const float *beta_or_dbeta, const float *run_mean,
                                const float *run_var, const float *y_or_dy, const float *dgamma,
                                lp_err *err)
{
    bool fwd = strcmp(op, "batchnorm_forward") == 0;
    if (c == 0)
        return lp_err_set(err, LP_EINVAL, "%s: c is 0; expected >= 1 channel", op);
    if (n == 0 || hw == 0)
        return lp_err_set(err, LP_EINVAL, "%s: n * hw is 0 (n %zu, hw %zu); expected >= 1 value "
                          "per channel", op, n, hw);
    if (!(eps > 0) || isinf(eps))
        return lp_err_set(err, LP_EINVAL, "%s: eps is %g; expected finite > 0", op, (double)eps);
    if (fwd && !(momentum >= 0 && momentum <= 1))
        return lp_err_set(err, LP_EINVAL, "%s: momentum is %g; expected in [0, 1]", op,
                          (double)momentum);
    size_t nv = n * c * hw;
    LP_BK_TRY(lp_bk_need(x, nv, op, "x", err));
    LP_BK_TRY(lp_bk_need(gamma, c, op, "gamma", err));
    LP_BK_TRY(lp_bk_need(beta_or_dbeta, c, op, fwd ? "beta" : "dbeta", err));
    if (!fwd)
        LP_BK_TRY(lp_bk_need(dgamma, c, op, "dgamma", err));
    if (!train || fwd) {
        LP_BK_TRY(lp_bk_need(run_mean, c, op, "run_mean", err));
        LP_BK_TRY(lp_bk_need(run_var, c, op, "run_var", err));
    }
    return lp_bk_need(y_or_dy, nv, op, fwd ? "y" : "dy", err);
}

/* ---- host memory for the CPU tables ------------------------------------------------------ */

lp_status lp_bk_host_alloc(const lp_backend *be, size_t nbytes, void **p, lp_err *err)
{
    if (!p)
        return lp_err_set(err, LP_EINVAL, "%s alloc: output pointer is NULL", be->name);
    /* aligned_alloc needs a multiple of the alignment; 0 bytes still gives a unique block. */
    size_t rounded = (nbytes + 63) / 64 * 64;
    if (rounded < nbytes)
        return lp_err_set(err, LP_ETOOBIG, "%s alloc: %zu bytes overflow", be->name, nbytes);
    *p = aligned_alloc(64, rounded ? rounded : 64);
    if (!*p)
        return lp_err_set(err, LP_ENOMEM, "%s alloc: out of memory for %zu bytes", be->name,
                          nbytes);
    return LP_OK;
}

lp_status lp_bk_host_free(const lp_backend *be, void *p, lp_err *err)
{
    free(p);
    return LP_OK;
}

lp_status lp_bk_host_memset(const lp_backend *be, void *dst, int value, size_t nbytes, lp_err *err)
{
    LP_BK_TRY(lp_bk_need(dst, nbytes, "memset", "dst", err));
    if (nbytes)
        memset(dst, value, nbytes);
    return LP_OK;
}

lp_status lp_bk_host_copy(const lp_backend *be, void *dst, const void *src, size_t nbytes,
                          lp_err *err)
{
    LP_BK_TRY(lp_bk_need(dst, nbytes, "copy", "dst", err));
    LP_BK_TRY(lp_bk_need(src, nbytes, "copy", "src", err));
    if (nbytes && dst != src)
        memmove(dst, src, nbytes);
    return LP_OK;
}

lp_status lp_bk_host_sync(const lp_backend *be, lp_err *err)
{
    return LP_OK;
}
