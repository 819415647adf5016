/*
 * encoder_train.c - the encoder's training path: a forward pass that keeps every activation,
 * the backward pass of every layer, and fine-tuning (head, LoRA, full) with a classification
 * head, plus the adapter's .lpa file and prediction (see encoder.h for the model and format).
 *
 * Not here: the inference forward (encoder.c, which this file never calls during training so
 * an optimised inference path cannot change gradients), dropout, contrastive objectives. The
 * one precision choice shared with inference: under an encoder set to bfloat16, head and LoRA
 * nets run the frozen base products (x W^T forward, dy W backward) through the table's bf16
 * products, as QLoRA-style training does with a low-precision frozen base; what is trained and
 * every gradient of it stays float32 (et_net.pk).
 *
 * Every device op goes through the backend table. The host only prepares ids, positions, the
 * key mask and pooling weights, and does the (B, D) L2 normalisation and its backward after a
 * copy, as the inference path does (B*D floats: cheaper than a kernel launch per row).
 *
 * Shapes: B sequences of T tokens, N = B*T rows, D hidden, H heads of dh = D / H, F the
 * feed-forward width, r the LoRA rank, C classes. Linear weights are (out, in).
 * Backward of y = x W^T + b + s (x A^T) B^T with u = x A^T (N, r):
 *   dW += dy^T x, db += sum_rows dy, dB += s dy^T u, g = dy B (N, r), dA += s g^T x,
 *   dx = dy W + s g A.
 * Post-LN layer: sum1 = x + O(attn(x)), x1 = LN1(sum1), sum2 = x1 + W2 gelu(W1 x1), out =
 * LN2(sum2); its backward runs those steps in reverse, adding the residual gradients.
 */
#include "encoder/encoder_train.h"
#include "lepton/registry.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        lp_status st_ = (expr);                                                                    \
        if (st_ != LP_OK)                                                                          \
            return st_;                                                                            \
    } while (0)

#define ROUND16(x) (((x) + 15) / 16 * 16)
#define LPEA_MAGIC 0x4145504Cu /* "LPEA" */
#define LPEA_VERSION 1u
#define ET_MAX_RANK 256
#define ET_PREDICT_BATCH 32

/* ---- names, options ----------------------------------------------------------------------- */

static const char *const method_names[] = {"head", "lora", "full"};

const char *lp_encoder_ft_method_name(lp_encoder_ft_method m)
{
    return (unsigned)m < LP_ENCODER_FT_METHOD_COUNT_ ? method_names[m] : NULL;
}

lp_status lp_encoder_ft_method_parse(const char *name, lp_encoder_ft_method *m, lp_err *err)
{
    for (unsigned i = 0; name && i < LP_ENCODER_FT_METHOD_COUNT_; i++)
        if (!strcmp(name, method_names[i])) {
            *m = (lp_encoder_ft_method)i;
            return LP_OK;
        }
    return lp_err_set(err, LP_EINVAL, "encoder finetune: method '%s'; expected head, lora or full",
                      name ? name : "(null)");
}

lp_encoder_ft_opts lp_encoder_ft_opts_default(void)
{
    lp_encoder_ft_opts o = {0};
    o.method = LP_ENCODER_FT_METHOD_LORA;
    o.rank = 8;
    o.alpha = 16;
    o.epochs = 3;
    o.batch_size = 32;
    o.adamw = lp_adamw_opts_default();
    o.head_lr = 1e-2;
    o.seed = 42;
    return o;
}

lp_encoder_ft_opts lp_encoder_ft_opts_for(lp_encoder_ft_method m)
{
    lp_encoder_ft_opts o = lp_encoder_ft_opts_default();
    o.method = m;
    if (m == LP_ENCODER_FT_METHOD_FULL)
        o.adamw.lr = LP_ENCODER_FT_FULL_LR;
    return o;
}

lp_status lp_encoder_ft_opts_check(const lp_encoder_ft_opts *o, lp_err *err)
{
    if (!o)
        return lp_err_set(err, LP_EINVAL, "encoder finetune: NULL options");
    if ((unsigned)o->method >= LP_ENCODER_FT_METHOD_COUNT_)
        return lp_err_set(err, LP_EINVAL,
                          "encoder finetune: method %d; expected head, lora or full",
                          (int)o->method);
    if (o->method == LP_ENCODER_FT_METHOD_LORA && (o->rank < 1 || o->rank > ET_MAX_RANK))
        return lp_err_set(err, LP_EINVAL, "encoder finetune: rank %zu; expected 1..%d", o->rank,
                          ET_MAX_RANK);
    if (!(o->alpha > 0) || !isfinite(o->alpha))
        return lp_err_set(err, LP_EINVAL, "encoder finetune: alpha %g; expected finite > 0",
                          o->alpha);
    if (o->epochs < 1)
        return lp_err_set(err, LP_EINVAL, "encoder finetune: epochs is 0; expected >= 1");
    if (o->batch_size < 1)
        return lp_err_set(err, LP_EINVAL, "encoder finetune: batch_size is 0; expected >= 1");
    if (!(o->head_lr > 0) || !isfinite(o->head_lr))
        return lp_err_set(err, LP_EINVAL, "encoder finetune: head_lr %g; expected finite > 0",
                          o->head_lr);
    TRY(lp_adamw_opts_check(&o->adamw, err));
    return LP_OK;
}

/* ---- sizes and layout --------------------------------------------------------------------- */

/* in / out of target t (q, k, v, o, ff1, ff2). */
static void target_dims(const lp_encoder_config *c, size_t t, size_t *in, size_t *out)
{
    *in = t == 5 ? c->intermediate : c->hidden;
    *out = t == 4 ? c->intermediate : c->hidden;
}

/* Floats of the encoder's parameter block as lp_param_layout lays it out (each tensor on a
 * 16-float boundary), or, with packed, the tensors alone. */
static size_t encoder_floats(const lp_encoder_config *c, bool packed)
{
    size_t D = c->hidden, F = c->intermediate;
#define T_(x) (packed ? (x) : ROUND16(x))
    size_t emb =
        T_(c->vocab_size * D) + T_(c->max_position * D) + T_(c->type_vocab * D) + 2 * T_(D);
    size_t layer =
        4 * T_(D * D) + 4 * T_(D) + 2 * T_(D) + T_(F * D) + T_(F) + T_(D * F) + T_(D) + 2 * T_(D);
#undef T_
    return emb + c->layers * layer;
}

size_t lp_encoder_n_params(const lp_encoder_config *c)
{
    return c ? encoder_floats(c, true) : 0;
}

/* Fill lay for (c, method, r, C); lay->a / lay->b allocated for lora only. */
static lp_status layout_of(const lp_encoder_config *c, lp_encoder_ft_method m, size_t r, size_t C,
                           et_layout *lay, lp_err *err)
{
    memset(lay, 0, sizeof *lay);
    size_t off = 0;
    if (m == LP_ENCODER_FT_METHOD_LORA) {
        lay->a = lp_calloc(c->layers * ET_TARGETS, sizeof *lay->a);
        lay->b = lp_calloc(c->layers * ET_TARGETS, sizeof *lay->b);
        if (!lay->a || !lay->b) {
            free(lay->a);
            free(lay->b);
            return lp_err_set(err, LP_ENOMEM, "encoder finetune: out of memory");
        }
        for (size_t i = 0; i < c->layers * ET_TARGETS; i++) {
            size_t in, out;
            target_dims(c, i % ET_TARGETS, &in, &out);
            lay->a[i] = off;
            off += ROUND16(r * in);
            lay->b[i] = off;
            off += ROUND16(out * r);
        }
    } else if (m == LP_ENCODER_FT_METHOD_FULL) {
        off = encoder_floats(c, false);
    }
    lay->enc_n = off;
    lay->head_w = off;
    off += ROUND16(C * c->hidden);
    lay->head_b = off;
    lay->total = off + ROUND16(C);
    return LP_OK;
}

static void layout_clear(et_layout *lay)
{
    free(lay->a);
    free(lay->b);
    memset(lay, 0, sizeof *lay);
}

size_t lp_encoder_adapter_size(const lp_encoder_config *c, lp_encoder_ft_method method, size_t rank,
                               size_t n_classes)
{
    et_layout lay;
    if (!c ||
        layout_of(c, method, method == LP_ENCODER_FT_METHOD_LORA ? rank : 0, n_classes, &lay, NULL))
        return 0;
    size_t n = lay.total;
    layout_clear(&lay);
    return n;
}

/* ---- adapter object ----------------------------------------------------------------------- */

void lp_encoder_adapter_free(lp_encoder_adapter *a)
{
    if (!a)
        return;
    free(a->block);
    free(a);
}

size_t lp_encoder_adapter_n_classes(const lp_encoder_adapter *a)
{
    return a ? a->n_classes : 0;
}

lp_encoder_ft_method lp_encoder_adapter_method(const lp_encoder_adapter *a)
{
    return a ? a->method : LP_ENCODER_FT_METHOD_COUNT_;
}

size_t lp_encoder_adapter_n_params(const lp_encoder_adapter *a)
{
    return a ? a->n_block : 0;
}

static lp_status fingerprint_compute(const lp_encoder *e, char hex[65], lp_err *err)
{
    const lp_backend *be = e->be;
    size_t nv = lp_param_layout_count(e->layout), big = 0;
    for (size_t i = 0; i < nv; i++) {
        size_t n = lp_param_layout_at(e->layout, i)->n;
        big = n > big ? n : big;
    }
    char *cat = lp_calloc(nv * 64 + 1, 1);
    float *host = be->host_visible ? NULL : lp_mallocarray(big ? big : 1, sizeof *host);
    if (!cat || (!be->host_visible && !host)) {
        free(cat);
        free(host);
        return lp_err_set(err, LP_ENOMEM, "encoder: out of memory");
    }
    lp_status s = LP_OK;
    for (size_t i = 0; !s && i < nv; i++) {
        const lp_param_view *v = lp_param_layout_at(e->layout, i);
        const float *src = e->params.ptr + v->offset;
        if (host) {
            s = be->copy_d2h(be, host, src, v->n * sizeof *host, err);
            src = host;
        }
        char h[65];
        if (!s) {
            lp_sha256_hex(src, v->n * sizeof *src, h);
            memcpy(cat + i * 64, h, 64);
        }
    }
    if (!s)
        lp_sha256_hex(cat, nv * 64, hex);
    free(cat);
    free(host);
    return s;
}

lp_status et_fingerprint(const lp_encoder *e, char hex[65], lp_err *err)
{
    lp_encoder *m = (lp_encoder *)e; /* the cache only: the weights are never written */
    pthread_mutex_lock(&m->fp_mu);
    lp_status s = LP_OK;
    if (!m->has_fp && (s = fingerprint_compute(e, m->fp, err)) == LP_OK)
        m->has_fp = true;
    if (!s)
        memcpy(hex, m->fp, 65);
    pthread_mutex_unlock(&m->fp_mu);
    return s;
}

lp_status et_adapter_new(const lp_encoder *e, lp_encoder_ft_method m, size_t r, double alpha,
                         size_t C, uint64_t seed, lp_encoder_adapter **out, lp_err *err)
{
    const lp_encoder_config *c = &e->cfg;
    lp_encoder_adapter *a = lp_calloc(1, sizeof *a);
    et_layout lay;
    if (!a)
        return lp_err_set(err, LP_ENOMEM, "encoder finetune: out of memory");
    a->cfg = *c;
    a->method = m;
    a->rank = m == LP_ENCODER_FT_METHOD_LORA ? r : 0;
    a->alpha = alpha;
    a->n_classes = C;
    lp_status s = layout_of(c, m, a->rank, C, &lay, err);
    if (!s) {
        a->n_block = lay.total;
        a->block = lp_calloc(lay.total, sizeof *a->block);
        if (!a->block)
            s = lp_err_set(err, LP_ENOMEM, "encoder finetune: out of memory");
    }
    if (!s)
        s = et_fingerprint(e, a->sha, err);
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    for (size_t i = 0; !s && lay.a && i < c->layers * ET_TARGETS; i++) {
        size_t in, o;
        target_dims(c, i % ET_TARGETS, &in, &o);
        double bound = 1.0 / sqrt((double)in);
        for (size_t j = 0; j < r * in; j++)
            a->block[lay.a[i] + j] = (float)((2 * lp_rng_uniform(&rng) - 1) * bound);
    }
    if (!s && m == LP_ENCODER_FT_METHOD_FULL) {
        if (lp_param_layout_total(e->layout) != lay.enc_n)
            s = lp_err_set(err, LP_EINVAL,
                           "encoder finetune: parameter block of %zu floats, "
                           "expected %zu from the config",
                           lp_param_layout_total(e->layout), lay.enc_n);
        for (size_t i = 0; !s && i < lp_param_layout_count(e->layout); i++) {
            const lp_param_view *v = lp_param_layout_at(e->layout, i);
            s = e->be->copy_d2h(e->be, a->block + v->offset, e->params.ptr + v->offset,
                                v->n * sizeof(float), err);
        }
    }
    double hb = 1.0 / sqrt((double)c->hidden);
    for (size_t j = 0; !s && j < C * c->hidden; j++)
        a->block[lay.head_w + j] = (float)((2 * lp_rng_uniform(&rng) - 1) * hb);
    layout_clear(&lay);
    if (s) {
        lp_encoder_adapter_free(a);
        return s;
    }
    *out = a;
    return LP_OK;
}

/* ---- the training net --------------------------------------------------------------------- */

/* net->pk: the frozen base weights packed for bf16_linear (see et_net). W^T only for lora,
 * whose backward needs dy W; a head net never propagates into the encoder. */
static lp_status pack_base(et_net *net, lp_err *err)
{
    const lp_encoder *e = net->e;
    const lp_backend *be = net->be;
    size_t L = e->cfg.layers, np = L * ET_TARGETS * 2, maxw = 0;
    bool lora = net->method == LP_ENCODER_FT_METHOD_LORA;
    for (size_t t = 0; t < ET_TARGETS; t++) {
        size_t in, out;
        target_dims(&e->cfg, t, &in, &out);
        maxw = in * out > maxw ? in * out : maxw;
    }
    net->pk = lp_calloc(np, sizeof *net->pk);
    float *wt = lora ? lp_mallocarray(maxw, sizeof *wt) : NULL;
    if (!net->pk || (lora && !wt)) {
        free(wt);
        return lp_err_set(err, LP_ENOMEM, "encoder finetune: out of memory");
    }
    lp_status s = LP_OK;
    for (size_t l = 0; l < L && !s; l++) {
        const enc_layer *W = &e->layer[l];
        const size_t wo[ET_TARGETS] = {W->wq, W->wk, W->wv, W->wo, W->w1, W->w2};
        for (size_t t = 0; t < ET_TARGETS && !s; t++) {
            size_t in, out, i = (l * ET_TARGETS + t) * 2;
            target_dims(&e->cfg, t, &in, &out);
            const float *w = net->P + wo[t];
            s = be->bf16_pack(be, out, in, w, &net->pk[i], err);
            if (!s && lora) {
                for (size_t o = 0; o < out; o++)
                    for (size_t j = 0; j < in; j++)
                        wt[j * out + o] = w[o * in + j];
                s = be->bf16_pack(be, in, out, wt, &net->pk[i + 1], err);
            }
        }
    }
    free(wt);
    return s;
}

/* et_net_new (train: a gradient buffer and a device copy of the block) or et_net_view. */
static lp_status net_init(const lp_encoder *e, const lp_encoder_adapter *a, bool train,
                          et_net *net, lp_err *err)
{
    const lp_backend *be = e->be;
    memset(net, 0, sizeof *net);
    if (!be->layernorm_backward || !be->softmax_rows_backward || !be->scatter_add_rows)
        return lp_err_set(err, LP_EUNSUPPORTED,
                          "backend '%s' lacks the encoder's backward ops (layernorm_backward, "
                          "softmax_rows_backward, scatter_add_rows)",
                          be->name);
    net->e = e;
    net->be = be;
    net->method = a->method;
    net->r = a->rank;
    net->C = a->n_classes;
    net->scale = a->rank ? (float)(a->alpha / (double)a->rank) : 0.0f;
    lp_status s = layout_of(&e->cfg, a->method, a->rank, a->n_classes, &net->lay, err);
    if (!s && net->lay.total != a->n_block)
        s = lp_err_set(err, LP_EINVAL, "encoder adapter: block of %zu floats, expected %zu",
                       a->n_block, net->lay.total);
    if (!s && !train && be->host_visible) { /* read in place: nothing writes the block */
        net->blk = (lp_dbuf){.ptr = a->block, .n = a->n_block};
        net->borrowed = true;
    } else if (!s) {
        s = lp_dbuf_alloc(be, net->lay.total, &net->blk, err);
        if (!s)
            s = be->copy_h2d(be, net->blk.ptr, a->block, a->n_block * sizeof(float), err);
    }
    if (!s && train)
        s = lp_dbuf_alloc(be, net->lay.total, &net->grad, err);
    if (s) {
        et_net_free(net);
        return s;
    }
    net->P = a->method == LP_ENCODER_FT_METHOD_FULL ? net->blk.ptr : e->params.ptr;
    return LP_OK;
}

lp_status et_net_new(const lp_encoder *e, const lp_encoder_adapter *a, et_net *net, lp_err *err)
{
    return net_init(e, a, true, net, err);
}

lp_status et_net_view(const lp_encoder *e, const lp_encoder_adapter *a, et_net *net, lp_err *err)
{
    return net_init(e, a, false, net, err);
}

static void pk_free(et_net *net)
{
    size_t np = net->pk ? net->e->cfg.layers * ET_TARGETS * 2 : 0;
    for (size_t i = 0; i < np; i++)
        net->be->bf16_free(net->be, net->pk[i]);
    free(net->pk);
    net->pk = NULL;
}

lp_status et_net_use_bf16(et_net *net, lp_err *err)
{
    const lp_encoder *e = net->e;
    const lp_backend *be = net->be;
    if (!e->bf16 || net->method == LP_ENCODER_FT_METHOD_FULL || !be->bf16_pack ||
        !be->host_visible || net->pk)
        return LP_OK;
    lp_err e2;
    lp_status s = pack_base(net, &e2);
    if (s == LP_EUNSUPPORTED) { /* shapes the products do not take: float32 throughout */
        lp_log_debug("encoder finetune: base products in float32 (%s)", lp_err_text(&e2));
        pk_free(net);
        return LP_OK;
    }
    if (s) {
        pk_free(net);
        if (err)
            *err = e2;
    }
    return s;
}

void et_net_free(et_net *net)
{
    if (!net || !net->be)
        return;
    pk_free(net);
    if (!net->borrowed)
        lp_dbuf_free(net->be, &net->blk);
    lp_dbuf_free(net->be, &net->grad);
    layout_clear(&net->lay);
    memset(net, 0, sizeof *net);
}

/* Activations of one layer, all kept for the backward pass. */
typedef struct et_layer_acts {
    float *x_in, *q, *k, *v, *ctx, *sum1, *x1, *sum2; /* (N, D) */
    float *probs;                                     /* (B, H, T, T) */
    float *h_pre, *h_act;                             /* (N, F) */
    float *mean1, *rstd1, *mean2, *rstd2;             /* (N) */
    float *u[ET_TARGETS];                             /* (N, r) x A^T per LoRA target */
} et_layer_acts;

typedef struct et_acts {
    float *block;
    et_layer_acts *layer;                 /* (layers) */
    float *emb, *tmp, *x_out;             /* (N, D) */
    float *mean0, *rstd0;                 /* (N) */
    float *pooled, *z, *dz;               /* (B, D) */
    float *logits, *dlogits;              /* (B, C) */
    float *mask, *poolw;                  /* (B, T) */
    int32_t *ids, *pos, *targets;         /* (N), (N), (B) */
    float *d0, *d1, *dctx, *dq, *dk, *dv, *dxs; /* (N, D) backward scratch */
    float *dh;                            /* (N, F) */
    float *dprobs;                        /* (B, H, T, T) */
    float *g;                             /* (N, r) */
    float *hz, *hnrm, *hpool;             /* host: z (B, D), ||pooled|| (B), scratch (B, D) */
} et_acts;

static void acts_free(const lp_backend *be, et_acts *a)
{
    if (a->block)
        be->free(be, a->block, NULL);
    free(a->layer);
    free(a->hz);
    free(a->hnrm);
    free(a->hpool);
    memset(a, 0, sizeof *a);
}

static lp_status acts_alloc(const et_net *net, size_t B, size_t T, bool grads, et_acts *a,
                            lp_err *err)
{
    const lp_encoder_config *c = &net->e->cfg;
    size_t N = B * T, D = c->hidden, F = c->intermediate, H = c->heads, C = net->C, r = net->r;
    size_t nl = net->method == LP_ENCODER_FT_METHOD_HEAD ? 1 : c->layers;
    memset(a, 0, sizeof *a);
    a->layer = lp_calloc(c->layers, sizeof *a->layer);
    a->hz = lp_mallocarray(B * D, sizeof *a->hz);
    a->hnrm = lp_mallocarray(B, sizeof *a->hnrm);
    a->hpool = lp_mallocarray(B * D, sizeof *a->hpool);
    if (!a->layer || !a->hz || !a->hnrm || !a->hpool) {
        acts_free(net->be, a);
        return lp_err_set(err, LP_ENOMEM, "encoder finetune: out of memory");
    }
    size_t per_layer = 8 * ROUND16(N * D) + ROUND16(B * H * T * T) + 2 * ROUND16(N * F) +
                       4 * ROUND16(N) + (r ? ET_TARGETS * ROUND16(N * r) : 0);
    size_t fixed = 3 * ROUND16(N * D) + 2 * ROUND16(N) + 3 * ROUND16(B * D) + 2 * ROUND16(B * C) +
                   2 * ROUND16(B * T) + 2 * ROUND16(N) + ROUND16(B);
    size_t scratch = grads ? 7 * ROUND16(N * D) + ROUND16(N * F) + ROUND16(B * H * T * T) +
                                 ROUND16(N * (r ? r : 1))
                           : 0;
    size_t total = fixed + nl * per_layer + scratch;
    lp_status s = net->be->alloc(net->be, total * sizeof(float), (void **)&a->block, err);
    if (s) {
        a->block = NULL;
        acts_free(net->be, a);
        return s;
    }
    float *p = a->block;
#define TAKE(n) (p += ROUND16(n), p - ROUND16(n))
    a->emb = TAKE(N * D);
    a->tmp = TAKE(N * D);
    a->x_out = TAKE(N * D);
    a->mean0 = TAKE(N);
    a->rstd0 = TAKE(N);
    a->pooled = TAKE(B * D);
    a->z = TAKE(B * D);
    a->dz = TAKE(B * D);
    a->logits = TAKE(B * C);
    a->dlogits = TAKE(B * C);
    a->mask = TAKE(B * T);
    a->poolw = TAKE(B * T);
    a->ids = (int32_t *)TAKE(N);
    a->pos = (int32_t *)TAKE(N);
    a->targets = (int32_t *)TAKE(B);
    for (size_t l = 0; l < nl; l++) {
        et_layer_acts *L = &a->layer[l];
        float **nd[] = {&L->x_in, &L->q, &L->k, &L->v, &L->ctx, &L->sum1, &L->x1, &L->sum2};
        for (size_t i = 0; i < sizeof nd / sizeof nd[0]; i++)
            *nd[i] = TAKE(N * D);
        L->probs = TAKE(B * H * T * T);
        L->h_pre = TAKE(N * F);
        L->h_act = TAKE(N * F);
        L->mean1 = TAKE(N);
        L->rstd1 = TAKE(N);
        L->mean2 = TAKE(N);
        L->rstd2 = TAKE(N);
        for (size_t t = 0; r && t < ET_TARGETS; t++)
            L->u[t] = TAKE(N * r);
    }
    for (size_t l = nl; l < c->layers; l++)
        a->layer[l] = a->layer[0];
    if (grads) {
        float **sd[] = {&a->d0, &a->d1, &a->dctx, &a->dq, &a->dk, &a->dv, &a->dxs};
        for (size_t i = 0; i < sizeof sd / sizeof sd[0]; i++)
            *sd[i] = TAKE(N * D);
        a->dh = TAKE(N * F);
        a->dprobs = TAKE(B * H * T * T);
        a->g = TAKE(N * (r ? r : 1));
    }
#undef TAKE
    return LP_OK;
}

/* ---- attention ---------------------------------------------------------------------------- */

/* C_h = alpha op(A_h) op(B_h) over the H heads of one sequence: head h's operands start h*sa /
 * h*sb floats in, its output h*sc. One batched call when the table has it, else a loop. */
static lp_status heads_gemm(const lp_backend *be, size_t H, bool ta, bool tb, size_t m, size_t n,
                            size_t k, float alpha, const float *A, size_t lda, size_t sa,
                            const float *Bm, size_t ldb, size_t sb, float *C, size_t ldc, size_t sc,
                            lp_err *err)
{
    if (be->sgemm_batched)
        return be->sgemm_batched(be, ta, tb, m, n, k, alpha, A, lda, sa, Bm, ldb, sb, 0.0f, C, ldc,
                                 sc, H, err);
    for (size_t h = 0; h < H; h++)
        TRY(be->sgemm(be, ta, tb, m, n, k, alpha, A + h * sa, lda, Bm + h * sb, ldb, 0.0f,
                      C + h * sc, ldc, err));
    return LP_OK;
}

lp_status et_attention_forward(const lp_backend *be, size_t B, size_t T, size_t H, size_t D,
                               const float *mask, const float *q, const float *k, const float *v,
                               float *probs, float *ctx, lp_err *err)
{
    size_t dh = D / H, TT = T * T;
    float sc = (float)(1.0 / sqrt((double)dh));
    /* scores_bh (T, T) = q_bh (T, dh) k_bh^T / sqrt(dh); head h = columns [h dh, (h+1) dh) */
    for (size_t b = 0; b < B; b++)
        TRY(heads_gemm(be, H, false, true, T, T, dh, sc, q + b * T * D, D, dh, k + b * T * D, D, dh,
                       probs + b * H * TT, T, TT, err));
    TRY(be->softmax_rows(be, B * H * T, T, H * T, mask, probs, probs, err));
    for (size_t b = 0; b < B; b++)
        TRY(heads_gemm(be, H, false, false, T, dh, T, 1.0f, probs + b * H * TT, T, TT,
                       v + b * T * D, D, dh, ctx + b * T * D, D, dh, err));
    return LP_OK;
}

lp_status et_attention_backward(const lp_backend *be, size_t B, size_t T, size_t H, size_t D,
                                const float *q, const float *k, const float *v, const float *probs,
                                const float *dctx, float *dprobs, float *dq, float *dk, float *dv,
                                lp_err *err)
{
    size_t dh = D / H, TT = T * T;
    float sc = (float)(1.0 / sqrt((double)dh));
    for (size_t b = 0; b < B; b++) {
        size_t o = b * T * D;
        /* dprobs_bh (T, T) = dctx_bh (T, dh) v_bh^T;  dv_bh (T, dh) = probs_bh^T dctx_bh */
        TRY(heads_gemm(be, H, false, true, T, T, dh, 1.0f, dctx + o, D, dh, v + o, D, dh,
                       dprobs + b * H * TT, T, TT, err));
        TRY(heads_gemm(be, H, true, false, T, dh, T, 1.0f, probs + b * H * TT, T, TT, dctx + o, D,
                       dh, dv + o, D, dh, err));
    }
    /* dscores = softmax backward (masked keys have probs 0, hence gradient 0) */
    TRY(be->softmax_rows_backward(be, B * H * T, T, probs, dprobs, dprobs, err));
    for (size_t b = 0; b < B; b++) {
        size_t o = b * T * D;
        /* dq_bh = dS k_bh / sqrt(dh);  dk_bh = dS^T q_bh / sqrt(dh) */
        TRY(heads_gemm(be, H, false, false, T, dh, T, sc, dprobs + b * H * TT, T, TT, k + o, D, dh,
                       dq + o, D, dh, err));
        TRY(heads_gemm(be, H, true, false, T, dh, T, sc, dprobs + b * H * TT, T, TT, q + o, D, dh,
                       dk + o, D, dh, err));
    }
    return LP_OK;
}

/* ---- linear layers with optional LoRA ----------------------------------------------------- */

/* One projection: its frozen or trainable weight and bias, and its LoRA pair. */
typedef struct et_lin {
    size_t in, out;
    const float *w, *b;   /* (out, in), (out) */
    float *dw, *db;       /* full only, else NULL */
    const float *la, *lb; /* LoRA A (r, in), B (out, r); NULL without LoRA */
    const void *pw, *pwt; /* W and W^T packed for bf16_linear (et_net.pk), or NULL */
    float *dla, *dlb;
    float *u; /* (N, r) kept x A^T */
} et_lin;

static et_lin lin_of(const et_net *net, size_t l, size_t t, et_layer_acts *L)
{
    const enc_layer *W = &net->e->layer[l];
    const size_t wo[ET_TARGETS] = {W->wq, W->wk, W->wv, W->wo, W->w1, W->w2};
    const size_t bo[ET_TARGETS] = {W->bq, W->bk, W->bv, W->bo, W->b1, W->b2};
    et_lin q = {0};
    target_dims(&net->e->cfg, t, &q.in, &q.out);
    q.w = net->P + wo[t];
    q.b = net->P + bo[t];
    if (net->pk) {
        q.pw = net->pk[(l * ET_TARGETS + t) * 2];
        q.pwt = net->pk[(l * ET_TARGETS + t) * 2 + 1];
    }
    float *G = net->grad.ptr; /* NULL in a prediction view */
    if (net->method == LP_ENCODER_FT_METHOD_FULL && G) {
        q.dw = G + wo[t];
        q.db = G + bo[t];
    }
    if (net->method == LP_ENCODER_FT_METHOD_LORA) {
        size_t i = l * ET_TARGETS + t;
        q.la = net->blk.ptr + net->lay.a[i];
        q.lb = net->blk.ptr + net->lay.b[i];
        q.dla = G ? G + net->lay.a[i] : NULL;
        q.dlb = G ? G + net->lay.b[i] : NULL;
        q.u = L->u[t];
    }
    return q;
}

/* y (N, out) = x W^T + b + s (x A^T) B^T, keeping u = x A^T. */
static lp_status lin_fwd(const et_net *net, const et_lin *f, size_t N, const float *x, float *y,
                         lp_err *err)
{
    const lp_backend *be = net->be;
    if (f->pw) {
        TRY(be->bf16_linear(be, N, f->in, f->out, x, f->pw, f->b, y, err));
    } else {
        TRY(be->sgemm(be, false, true, N, f->out, f->in, 1.0f, x, f->in, f->w, f->in, 0.0f, y,
                      f->out, err));
        TRY(be->bias_add(be, N, f->out, f->b, y, err));
    }
    if (!f->la)
        return LP_OK;
    TRY(be->sgemm(be, false, true, N, net->r, f->in, 1.0f, x, f->in, f->la, f->in, 0.0f, f->u,
                  net->r, err));
    return be->sgemm(be, false, true, N, f->out, net->r, net->scale, f->u, net->r, f->lb, net->r,
                     1.0f, y, f->out, err);
}

/* The backward of lin_fwd given dy (N, out) (see the file comment). dx (N, in) = dy W + s g A,
 * overwritten (beta_dx 0) or accumulated (1); NULL skips it. g (N, r) scratch; xs (N, in)
 * scratch for an accumulated dx through the bf16 product (may be NULL otherwise). */
static lp_status lin_bwd(const et_net *net, const et_lin *f, size_t N, const float *x,
                         const float *dy, float *g, float *dx, float beta_dx, float *xs,
                         lp_err *err)
{
    const lp_backend *be = net->be;
    size_t r = net->r;
    if (f->dw) {
        TRY(be->sgemm(be, true, false, f->out, f->in, N, 1.0f, dy, f->out, x, f->in, 1.0f, f->dw,
                      f->in, err));
        TRY(be->bias_backward(be, N, f->out, dy, f->db, err));
    }
    if (f->la) {
        TRY(be->sgemm(be, true, false, f->out, r, N, net->scale, dy, f->out, f->u, r, 1.0f, f->dlb,
                      r, err));
        TRY(be->sgemm(be, false, false, N, r, f->out, 1.0f, dy, f->out, f->lb, r, 0.0f, g, r, err));
        TRY(be->sgemm(be, true, false, r, f->in, N, net->scale, g, r, x, f->in, 1.0f, f->dla, f->in,
                      err));
    }
    if (!dx)
        return LP_OK;
    if (f->pwt && beta_dx == 0.0f) {
        TRY(be->bf16_linear(be, N, f->out, f->in, dy, f->pwt, NULL, dx, err));
    } else if (f->pwt) {
        TRY(be->bf16_linear(be, N, f->out, f->in, dy, f->pwt, NULL, xs, err));
        TRY(be->add(be, N * f->in, dx, xs, dx, err));
    } else {
        TRY(be->sgemm(be, false, false, N, f->in, f->out, 1.0f, dy, f->out, f->w, f->in, beta_dx,
                      dx, f->in, err));
    }
    if (f->la)
        TRY(be->sgemm(be, false, false, N, f->in, r, net->scale, g, r, f->la, f->in, 1.0f, dx,
                      f->in, err));
    return LP_OK;
}

/* ---- forward ------------------------------------------------------------------------------ */

static lp_status layer_fwd(const et_net *net, size_t l, et_acts *a, size_t B, size_t T, float *out,
                           lp_err *err)
{
    const lp_backend *be = net->be;
    const lp_encoder_config *c = &net->e->cfg;
    const enc_layer *W = &net->e->layer[l];
    et_layer_acts *L = &a->layer[l];
    size_t N = B * T, D = c->hidden, F = c->intermediate;
    et_lin f[ET_TARGETS];
    for (size_t t = 0; t < ET_TARGETS; t++)
        f[t] = lin_of(net, l, t, L);
    TRY(lin_fwd(net, &f[0], N, L->x_in, L->q, err));
    TRY(lin_fwd(net, &f[1], N, L->x_in, L->k, err));
    TRY(lin_fwd(net, &f[2], N, L->x_in, L->v, err));
    TRY(et_attention_forward(be, B, T, c->heads, D, a->mask, L->q, L->k, L->v, L->probs, L->ctx,
                             err));
    TRY(lin_fwd(net, &f[3], N, L->ctx, L->sum1, err));
    TRY(be->add(be, N * D, L->sum1, L->x_in, L->sum1, err));
    TRY(be->layernorm_forward(be, N, D, c->ln_eps, L->sum1, net->P + W->ln1_g, net->P + W->ln1_b,
                              L->x1, L->mean1, L->rstd1, err));
    TRY(lin_fwd(net, &f[4], N, L->x1, L->h_pre, err));
    TRY(be->act_forward(be, LP_ACT_KIND_GELU_ERF, N * F, L->h_pre, L->h_act, err));
    TRY(lin_fwd(net, &f[5], N, L->h_act, L->sum2, err));
    TRY(be->add(be, N * D, L->sum2, L->x1, L->sum2, err));
    return be->layernorm_forward(be, N, D, c->ln_eps, L->sum2, net->P + W->ln2_g, net->P + W->ln2_b,
                                 out, L->mean2, L->rstd2, err);
}

/* Upload ids, positions, the mask and the pooling weights (enc_pool_inputs). */
static lp_status upload_batch(const et_net *net, const lp_token_batch *tb, et_acts *a, lp_err *err)
{
    const lp_backend *be = net->be;
    size_t B = tb->n, T = tb->t, N = B * T;
    int32_t *pos = lp_mallocarray(N, sizeof *pos);
    float *w = lp_mallocarray(N, sizeof *w);
    lp_status s = pos && w ? LP_OK : lp_err_set(err, LP_ENOMEM, "encoder: out of memory");
    if (!s)
        enc_pool_inputs(tb, pos, w);
    if (!s)
        s = be->copy_h2d(be, a->ids, tb->ids, N * sizeof(int32_t), err);
    if (!s)
        s = be->copy_h2d(be, a->pos, pos, N * sizeof(int32_t), err);
    if (!s)
        s = be->copy_h2d(be, a->mask, tb->mask, N * sizeof(float), err);
    if (!s)
        s = be->copy_h2d(be, a->poolw, w, N * sizeof(float), err);
    free(pos);
    free(w);
    return s;
}

/* Forward to the head's logits (device) with every activation kept; a->hz gets z (host). */
static lp_status net_forward(const et_net *net, const lp_token_batch *tb, et_acts *a, lp_err *err)
{
    const lp_backend *be = net->be;
    const lp_encoder *e = net->e;
    const lp_encoder_config *c = &e->cfg;
    const float *P = net->P;
    size_t B = tb->n, T = tb->t, N = B * T, D = c->hidden;
    TRY(upload_batch(net, tb, a, err));
    float *x0 = a->layer[0].x_in;
    TRY(be->gather_rows(be, N, D, c->vocab_size, P + e->word, a->ids, a->emb, err));
    TRY(be->gather_rows(be, N, D, c->max_position, P + e->pos, a->pos, a->tmp, err));
    TRY(be->add(be, N * D, a->emb, a->tmp, a->emb, err));
    TRY(be->bias_add(be, N, D, P + e->type, a->emb, err)); /* token type 0 */
    TRY(be->layernorm_forward(be, N, D, c->ln_eps, a->emb, P + e->ln_g, P + e->ln_b, x0, a->mean0,
                              a->rstd0, err));
    for (size_t l = 0; l < c->layers; l++) {
        float *dst = l + 1 < c->layers ? a->layer[l + 1].x_in : a->x_out;
        TRY(layer_fwd(net, l, a, B, T, dst, err));
    }
    /* pooled_b (1, D) = poolw_b (1, T) @ x_out_b (T, D) */
    for (size_t b = 0; b < B; b++)
        TRY(be->sgemm(be, false, false, 1, D, T, 1.0f, a->poolw + b * T, T, a->x_out + b * T * D, D,
                      0.0f, a->pooled + b * D, D, err));
    TRY(be->sync(be, err));
    TRY(be->copy_d2h(be, a->hz, a->pooled, B * D * sizeof(float), err));
    enc_l2_rows(a->hz, B, D, a->hnrm);
    return LP_OK;
}

/* logits (B, C) = z W_h^T + b_h from host z. */
static lp_status head_forward(const et_net *net, size_t B, const float *hz, et_acts *a, lp_err *err)
{
    const lp_backend *be = net->be;
    size_t D = net->e->cfg.hidden, C = net->C;
    TRY(be->copy_h2d(be, a->z, hz, B * D * sizeof(float), err));
    TRY(be->sgemm(be, false, true, B, C, D, 1.0f, a->z, D, net->blk.ptr + net->lay.head_w, D, 0.0f,
                  a->logits, C, err));
    return be->bias_add(be, B, C, net->blk.ptr + net->lay.head_b, a->logits, err);
}

/* ---- backward ----------------------------------------------------------------------------- */

/* Gradient of layer l given dout (N, D) = d loss / d out; writes d loss / d x_in into din
 * (NULL skips it: layer 0 under LoRA). dout is clobbered. */
static lp_status layer_bwd(const et_net *net, size_t l, et_acts *a, size_t B, size_t T, float *dout,
                           float *din, lp_err *err)
{
    const lp_backend *be = net->be;
    const lp_encoder_config *c = &net->e->cfg;
    const enc_layer *W = &net->e->layer[l];
    et_layer_acts *L = &a->layer[l];
    size_t N = B * T, D = c->hidden, F = c->intermediate;
    bool full = net->method == LP_ENCODER_FT_METHOD_FULL;
    float *G = full ? net->grad.ptr : NULL;
    et_lin f[ET_TARGETS];
    for (size_t t = 0; t < ET_TARGETS; t++)
        f[t] = lin_of(net, l, t, L);
    /* dsum2 = LN2'(dout), in place; it is also d x1 through the residual */
    TRY(be->layernorm_backward(be, N, D, L->sum2, net->P + W->ln2_g, L->mean2, L->rstd2, dout, dout,
                               full ? G + W->ln2_g : NULL, full ? G + W->ln2_b : NULL, err));
    TRY(lin_bwd(net, &f[5], N, L->h_act, dout, a->g, a->dh, 0.0f, NULL, err));
    TRY(be->act_backward(be, LP_ACT_KIND_GELU_ERF, N * F, L->h_pre, a->dh, a->dh, err));
    TRY(lin_bwd(net, &f[4], N, L->x1, a->dh, a->g, dout, 1.0f, a->dxs, err)); /* dx1 = dsum2 + W1' */
    /* dsum1 = LN1'(dx1), also d x_in through the residual */
    TRY(be->layernorm_backward(be, N, D, L->sum1, net->P + W->ln1_g, L->mean1, L->rstd1, dout, dout,
                               full ? G + W->ln1_g : NULL, full ? G + W->ln1_b : NULL, err));
    TRY(lin_bwd(net, &f[3], N, L->ctx, dout, a->g, a->dctx, 0.0f, NULL, err));
    TRY(et_attention_backward(be, B, T, c->heads, D, L->q, L->k, L->v, L->probs, a->dctx, a->dprobs,
                              a->dq, a->dk, a->dv, err));
    if (din)
        TRY(be->copy_d2d(be, din, dout, N * D * sizeof(float), err));
    TRY(lin_bwd(net, &f[0], N, L->x_in, a->dq, a->g, din, 1.0f, a->dxs, err));
    TRY(lin_bwd(net, &f[1], N, L->x_in, a->dk, a->g, din, 1.0f, a->dxs, err));
    return lin_bwd(net, &f[2], N, L->x_in, a->dv, a->g, din, 1.0f, a->dxs, err);
}

/* From dlogits (device): head gradients, then (lora, full) the encoder's. */
static lp_status net_backward(const et_net *net, size_t B, size_t T, et_acts *a, lp_err *err)
{
    const lp_backend *be = net->be;
    const lp_encoder *e = net->e;
    const lp_encoder_config *c = &e->cfg;
    size_t N = B * T, D = c->hidden, C = net->C;
    float *G = net->grad.ptr;
    /* dW_h += dlogits^T z; db_h += sum dlogits; dz = dlogits W_h */
    TRY(be->sgemm(be, true, false, C, D, B, 1.0f, a->dlogits, C, a->z, D, 1.0f, G + net->lay.head_w,
                  D, err));
    TRY(be->bias_backward(be, B, C, a->dlogits, G + net->lay.head_b, err));
    if (net->method == LP_ENCODER_FT_METHOD_HEAD)
        return LP_OK;
    TRY(be->sgemm(be, false, false, B, D, C, 1.0f, a->dlogits, C, net->blk.ptr + net->lay.head_w, D,
                  0.0f, a->dz, D, err));
    TRY(be->sync(be, err));
    /* z = p / ||p||: dp = (dz - z (z . dz)) / ||p|| (host, (B, D)) */
    float *hd = a->hpool;
    TRY(be->copy_d2h(be, hd, a->dz, B * D * sizeof(float), err));
    for (size_t b = 0; b < B; b++) {
        double zd = 0;
        for (size_t j = 0; j < D; j++)
            zd += (double)a->hz[b * D + j] * hd[b * D + j];
        for (size_t j = 0; j < D; j++)
            hd[b * D + j] = (float)((hd[b * D + j] - a->hz[b * D + j] * zd) / a->hnrm[b]);
    }
    TRY(be->copy_h2d(be, a->dz, hd, B * D * sizeof(float), err));
    /* dx_out_b (T, D) = poolw_b^T (T, 1) @ dpooled_b (1, D) */
    for (size_t b = 0; b < B; b++)
        TRY(be->sgemm(be, true, false, T, D, 1, 1.0f, a->poolw + b * T, T, a->dz + b * D, D, 0.0f,
                      a->d0 + b * T * D, D, err));
    bool full = net->method == LP_ENCODER_FT_METHOD_FULL;
    float *dcur = a->d0, *dnext = a->d1;
    for (size_t l = c->layers; l-- > 0;) {
        TRY(layer_bwd(net, l, a, B, T, dcur, l > 0 || full ? dnext : NULL, err));
        float *t = dcur;
        dcur = dnext;
        dnext = t;
    }
    if (!full)
        return LP_OK;
    /* embeddings: demb = LN0'(dx0); word and position rows scatter-add, token type 0 sums */
    TRY(be->layernorm_backward(be, N, D, a->emb, net->P + e->ln_g, a->mean0, a->rstd0, dcur, dcur,
                               G + e->ln_g, G + e->ln_b, err));
    TRY(be->scatter_add_rows(be, N, D, c->vocab_size, dcur, a->ids, G + e->word, err));
    TRY(be->scatter_add_rows(be, N, D, c->max_position, dcur, a->pos, G + e->pos, err));
    return be->bias_backward(be, N, D, dcur, G + e->type, err);
}

/* Softmax of the logits (B, C) into probs on the host. */
static lp_status host_probs(const et_net *net, size_t B, const et_acts *a, float *probs,
                            lp_err *err)
{
    size_t C = net->C;
    TRY(net->be->sync(net->be, err));
    TRY(net->be->copy_d2h(net->be, probs, a->logits, B * C * sizeof(float), err));
    for (size_t b = 0; b < B; b++) {
        float *p = probs + b * C, mx = p[0];
        for (size_t j = 1; j < C; j++)
            mx = p[j] > mx ? p[j] : mx;
        double s = 0;
        for (size_t j = 0; j < C; j++)
            s += exp((double)p[j] - mx);
        for (size_t j = 0; j < C; j++)
            p[j] = (float)(exp((double)p[j] - mx) / s);
    }
    return LP_OK;
}

lp_status et_net_run(et_net *net, const lp_token_batch *tb, const int32_t *labels, bool grads,
                     double *loss, float *z, float *probs, lp_err *err)
{
    const lp_backend *be = net->be;
    size_t B = tb->n, D = net->e->cfg.hidden;
    if (B == 0)
        return lp_err_set(err, LP_EINVAL, "encoder finetune: empty batch");
    if (grads && !net->grad.ptr)
        return lp_err_set(err, LP_EINVAL, "encoder finetune: a prediction view has no gradients");
    TRY(enc_check_batch(net->e, tb, err));
    for (size_t i = 0; labels && i < B; i++)
        if (labels[i] < 0 || (size_t)labels[i] >= net->C)
            return lp_err_set(err, LP_EINVAL,
                              "encoder finetune: label %d of row %zu; expected "
                              "0..%zu",
                              (int)labels[i], i, net->C - 1);
    et_acts a;
    TRY(acts_alloc(net, B, tb->t, grads, &a, err));
    lp_status s = net_forward(net, tb, &a, err);
    if (!s)
        s = head_forward(net, B, a.hz, &a, err);
    if (!s && z)
        memcpy(z, a.hz, B * D * sizeof *z);
    if (!s && probs)
        s = host_probs(net, B, &a, probs, err);
    if (!s && labels) {
        s = be->copy_h2d(be, a.targets, labels, B * sizeof(int32_t), err);
        if (!s && grads)
            s = be->memset(be, net->grad.ptr, 0, net->grad.n * sizeof(float), err);
        if (!s)
            s = be->softmax_xent(be, B, net->C, a.logits, a.targets, NULL, loss,
                                 grads ? a.dlogits : NULL, err);
        if (!s && grads)
            s = net_backward(net, B, tb->t, &a, err);
    }
    acts_free(be, &a);
    return s;
}

/* ---- fine-tuning -------------------------------------------------------------------------- */

/* One AdamW step: the encoder-side part with o->adamw, the head with head_lr. */
static lp_status adamw(const et_net *net, const lp_encoder_ft_opts *o, uint64_t t, lp_dbuf *m,
                       lp_dbuf *v, lp_err *err)
{
    const lp_backend *be = net->be;
    size_t h = net->lay.head_w, n = net->lay.total;
    if (h)
        TRY(be->adamw_step(be, h, &o->adamw, t, net->blk.ptr, net->grad.ptr, m->ptr, v->ptr, err));
    lp_adamw_opts ho = o->adamw;
    ho.lr = o->head_lr;
    return be->adamw_step(be, n - h, &ho, t, net->blk.ptr + h, net->grad.ptr + h, m->ptr + h,
                          v->ptr + h, err);
}

/* Head-only training step on precomputed embeddings zs (B, D): the encoder is never run. */
static lp_status head_step(et_net *net, const float *zs, const int32_t *labels, size_t B,
                           double *loss, lp_err *err)
{
    const lp_backend *be = net->be;
    et_acts a;
    lp_token_batch one = {.n = B, .t = 1};
    TRY(acts_alloc(net, B, one.t, true, &a, err));
    lp_status s = head_forward(net, B, zs, &a, err);
    if (!s)
        s = be->copy_h2d(be, a.targets, labels, B * sizeof(int32_t), err);
    if (!s)
        s = be->memset(be, net->grad.ptr, 0, net->grad.n * sizeof(float), err);
    if (!s)
        s = be->softmax_xent(be, B, net->C, a.logits, a.targets, NULL, loss, a.dlogits, err);
    if (!s)
        s = net_backward(net, B, 1, &a, err);
    acts_free(be, &a);
    return s;
}

typedef struct ft_run {
    et_net net;
    lp_dbuf m, v;
    size_t *order;
    const char **bt;
    int32_t *bl;
    float *zall, *zb; /* head: (n, D) embeddings, (batch, D) */
} ft_run;

static void run_free(ft_run *r)
{
    lp_dbuf_free(r->net.be, &r->m);
    lp_dbuf_free(r->net.be, &r->v);
    et_net_free(&r->net);
    free(r->order);
    free(r->bt);
    free(r->bl);
    free(r->zall);
    free(r->zb);
}

static lp_status check_args(const lp_encoder *e, const char *const *texts, const int32_t *labels,
                            size_t n, size_t C, const lp_encoder_ft_opts *o, lp_err *err)
{
    if (!e || !texts || !labels)
        return lp_err_set(err, LP_EINVAL, "lp_encoder_finetune: NULL argument");
    if (n == 0)
        return lp_err_set(err, LP_EINVAL, "encoder finetune: no texts; expected n >= 1");
    if (C < 2 || C > 65536)
        return lp_err_set(err, LP_EINVAL, "encoder finetune: %zu classes; expected 2..65536", C);
    TRY(lp_encoder_ft_opts_check(o, err));
    size_t D = e->cfg.hidden;
    if (o->method == LP_ENCODER_FT_METHOD_LORA && o->rank > D)
        return lp_err_set(err, LP_EINVAL, "encoder finetune: rank %zu exceeds the hidden size %zu",
                          o->rank, D);
    for (size_t i = 0; i < n; i++)
        if (labels[i] < 0 || (size_t)labels[i] >= C)
            return lp_err_set(err, LP_EINVAL,
                              "encoder finetune: label %d of text %zu; expected "
                              "0..%zu",
                              (int)labels[i], i, C - 1);
    return LP_OK;
}

/* One mini-batch of rows order[start..start+m): its loss and, after the step, nothing else. */
static lp_status train_batch(ft_run *r, const lp_encoder_ft_opts *o, const char *const *texts,
                             const int32_t *labels, size_t start, size_t m, uint64_t step,
                             double *loss, lp_err *err)
{
    et_net *net = &r->net;
    size_t D = net->e->cfg.hidden;
    for (size_t j = 0; j < m; j++) {
        size_t i = r->order[start + j];
        r->bt[j] = texts[i];
        r->bl[j] = labels[i];
        if (r->zall)
            memcpy(r->zb + j * D, r->zall + i * D, D * sizeof(float));
    }
    lp_status s;
    if (r->zall) {
        s = head_step(net, r->zb, r->bl, m, loss, err);
    } else {
        lp_token_batch tb;
        s = lp_wordpiece_encode_batch(net->e->wp, r->bt, m, &tb, err);
        if (!s)
            s = et_net_run(net, &tb, r->bl, true, loss, NULL, NULL, err);
        lp_token_batch_clear(&tb);
    }
    if (!s)
        s = adamw(net, o, step, &r->m, &r->v, err);
    if (s)
        lp_err_prefix(err, "encoder finetune step %llu", (unsigned long long)step);
    return s;
}

lp_status lp_encoder_finetune(const lp_encoder *e, const char *const *texts, const int32_t *labels,
                              size_t n, size_t n_classes, const lp_encoder_ft_opts *o,
                              lp_encoder_adapter **out, double *final_loss, lp_err *err)
{
    lp_encoder_ft_opts def = lp_encoder_ft_opts_default();
    if (!o)
        o = &def;
    if (!out)
        return lp_err_set(err, LP_EINVAL, "lp_encoder_finetune: NULL out");
    *out = NULL;
    TRY(check_args(e, texts, labels, n, n_classes, o, err));
    lp_encoder_adapter *a = NULL;
    TRY(et_adapter_new(e, o->method, o->rank, o->alpha, n_classes, o->seed, &a, err));
    ft_run r = {0};
    size_t bs = o->batch_size < n ? o->batch_size : n, D = e->cfg.hidden;
    lp_status s = et_net_new(e, a, &r.net, err);
    if (!s) /* packing W and W^T once pays for itself over the run's steps */
        s = et_net_use_bf16(&r.net, err);
    if (!s)
        s = lp_dbuf_alloc(e->be, r.net.lay.total, &r.m, err);
    if (!s)
        s = lp_dbuf_alloc(e->be, r.net.lay.total, &r.v, err);
    if (!s) {
        r.order = lp_mallocarray(n, sizeof *r.order);
        r.bt = lp_calloc(bs, sizeof *r.bt);
        r.bl = lp_calloc(bs, sizeof *r.bl);
        if (o->method == LP_ENCODER_FT_METHOD_HEAD) {
            r.zall = lp_mallocarray(n * D, sizeof *r.zall);
            r.zb = lp_mallocarray(bs * D, sizeof *r.zb);
        }
        if (!r.order || !r.bt || !r.bl ||
            (o->method == LP_ENCODER_FT_METHOD_HEAD && (!r.zall || !r.zb)))
            s = lp_err_set(err, LP_ENOMEM, "encoder finetune: out of memory");
    }
    if (!s && r.zall)
        s = lp_encoder_embed(e, texts, n, bs, r.zall, NULL, err);
    lp_rng rng;
    lp_rng_seed(&rng, o->seed ^ 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; !s && i < n; i++)
        r.order[i] = i;
    uint64_t step = 0;
    double last = NAN;
    bool done = false;
    for (size_t ep = 0; !s && !done && ep < o->epochs; ep++) {
        lp_rng_shuffle_idx(&rng, r.order, n);
        double sum = 0;
        size_t nb = 0;
        for (size_t start = 0; !s && start < n; start += bs) {
            size_t m = n - start < bs ? n - start : bs;
            double loss = 0;
            s = train_batch(&r, o, texts, labels, start, m, ++step, &loss, err);
            sum += loss;
            nb++;
            if (o->max_steps && step >= o->max_steps) {
                done = true;
                break;
            }
        }
        if (!s) {
            last = sum / (double)nb;
            lp_log_info("encoder finetune (%s): epoch %zu loss %.5f", method_names[o->method],
                        ep + 1, last);
        }
    }
    if (!s)
        s = e->be->copy_d2h(e->be, a->block, r.net.blk.ptr, a->n_block * sizeof(float), err);
    run_free(&r);
    if (s) {
        lp_encoder_adapter_free(a);
        return s;
    }
    if (final_loss)
        *final_loss = last;
    *out = a;
    return LP_OK;
}

/* ---- prediction --------------------------------------------------------------------------- */

static lp_status check_binding(const lp_encoder_adapter *a, const lp_encoder *e, const char *what,
                               lp_err *err)
{
    const lp_encoder_config *x = &a->cfg, *y = &e->cfg;
    if (x->vocab_size != y->vocab_size || x->hidden != y->hidden || x->layers != y->layers ||
        x->heads != y->heads || x->intermediate != y->intermediate)
        return lp_err_set(err, LP_EINVAL,
                          "%s: adapter is for an encoder with vocab %zu, hidden "
                          "%zu, %zu layers, %zu heads, intermediate %zu; this encoder has %zu, "
                          "%zu, %zu, %zu, %zu",
                          what, x->vocab_size, x->hidden, x->layers, x->heads, x->intermediate,
                          y->vocab_size, y->hidden, y->layers, y->heads, y->intermediate);
    char sha[65];
    TRY(et_fingerprint(e, sha, err));
    if (strcmp(sha, a->sha) != 0)
        return lp_err_set(err, LP_EINVAL,
                          "%s: adapter was trained on encoder weights %s, but "
                          "this encoder's weights are %s",
                          what, a->sha, sha);
    return LP_OK;
}

lp_status lp_encoder_adapter_predict(const lp_encoder_adapter *a, const lp_encoder *e,
                                     const char *const *texts, size_t n, float *probs, float *emb,
                                     lp_err *err)
{
    if (!a || !e || (n && (!texts || !probs)))
        return lp_err_set(err, LP_EINVAL, "lp_encoder_adapter_predict: NULL argument");
    if (n == 0)
        return LP_OK;
    TRY(check_binding(a, e, "encoder adapter predict", err));
    et_net net;
    TRY(et_net_view(e, a, &net, err));
    size_t C = a->n_classes, D = e->cfg.hidden;
    const char *bt[ET_PREDICT_BATCH];
    lp_status s = LP_OK;
    for (size_t start = 0; !s && start < n; start += ET_PREDICT_BATCH) {
        size_t m = n - start < ET_PREDICT_BATCH ? n - start : ET_PREDICT_BATCH;
        for (size_t j = 0; j < m; j++)
            bt[j] = texts[start + j];
        lp_token_batch tb;
        s = lp_wordpiece_encode_batch(e->wp, bt, m, &tb, err);
        if (s)
            lp_err_prefix(err, "texts %zu..%zu", start, start + m - 1);
        if (!s)
            s = et_net_run(&net, &tb, NULL, false, NULL, emb ? emb + start * D : NULL,
                           probs + start * C, err);
        lp_token_batch_clear(&tb);
    }
    et_net_free(&net);
    return s;
}

lp_status lp_encoder_adapter_merge(const lp_encoder_adapter *a, const lp_encoder *e,
                                   lp_encoder **out, lp_err *err)
{
    if (!a || !e || !out)
        return lp_err_set(err, LP_EINVAL, "lp_encoder_adapter_merge: NULL argument");
    *out = NULL;
    TRY(check_binding(a, e, "encoder adapter merge", err));
    size_t n = e->params.n;
    float *P = lp_mallocarray(n, sizeof *P);
    if (!P)
        return lp_err_set(err, LP_ENOMEM, "encoder adapter merge: out of memory");
    lp_status s = LP_OK;
    if (a->method == LP_ENCODER_FT_METHOD_FULL) { /* the block starts with e's layout */
        if (a->n_block < n)
            s = lp_err_set(err, LP_EFORMAT, "encoder adapter merge: a full adapter of %zu "
                           "floats for a parameter block of %zu", a->n_block, n);
        else
            memcpy(P, a->block, n * sizeof *P);
    } else {
        s = e->be->copy_d2h(e->be, P, e->params.ptr, n * sizeof *P, err);
    }
    et_layout lay = {0};
    if (!s && a->method == LP_ENCODER_FT_METHOD_LORA &&
        (s = layout_of(&a->cfg, a->method, a->rank, a->n_classes, &lay, err)) == LP_OK) {
        /* W (out, in) += (alpha / r) B (out, r) A (r, in), per target, as lin_fwd adds it */
        size_t r = a->rank;
        float sc = (float)(a->alpha / (double)r);
        for (size_t l = 0; l < e->cfg.layers; l++) {
            const enc_layer *W = &e->layer[l];
            const size_t wo[ET_TARGETS] = {W->wq, W->wk, W->wv, W->wo, W->w1, W->w2};
            for (size_t t = 0; t < ET_TARGETS; t++) {
                size_t in, o, i = l * ET_TARGETS + t;
                target_dims(&e->cfg, t, &in, &o);
                const float *A = a->block + lay.a[i], *B = a->block + lay.b[i];
                float *w = P + wo[t];
                for (size_t row = 0; row < o; row++)
                    for (size_t k = 0; k < r; k++) {
                        float c = sc * B[row * r + k];
                        for (size_t j = 0; j < in; j++)
                            w[row * in + j] += c * A[k * in + j];
                    }
            }
        }
        layout_clear(&lay);
    }
    if (!s)
        s = enc_derive(e, P, out, err);
    free(P);
    return s;
}

/* ---- the .lpa file ------------------------------------------------------------------------ */

void lp_encoder_adapter_save_buf(const lp_encoder_adapter *a, lp_buf *out)
{
    lp_buf b; /* the image is built apart so that its CRC covers exactly its own bytes */
    lp_buf_init(&b);
    lp_buf_u32(&b, LPEA_MAGIC);
    lp_buf_u32(&b, LPEA_VERSION);
    lp_buf_str(&b, a->sha);
    lp_buf_u32(&b, (uint32_t)a->method);
    const size_t dims[] = {a->cfg.vocab_size, a->cfg.hidden, a->cfg.layers, a->cfg.heads,
                           a->cfg.intermediate};
    for (size_t i = 0; i < 5; i++)
        lp_buf_u64(&b, dims[i]);
    lp_buf_u32(&b, (uint32_t)a->rank);
    lp_buf_f64(&b, a->alpha);
    lp_buf_u32(&b, (uint32_t)a->n_classes);
    lp_buf_u64(&b, a->n_block);
    lp_buf_put(&b, a->block, a->n_block * sizeof(float)); /* little-endian hosts, as lp_buf_f32 */
    if (!b.failed)
        lp_buf_u32(&b, lp_crc32(0, b.data, b.len));
    if (b.failed)
        out->failed = true;
    else
        lp_buf_put(out, b.data, b.len);
    lp_buf_free(&b);
}

lp_status lp_encoder_adapter_save(const lp_encoder_adapter *a, const char *path, lp_err *err)
{
    if (!a || !path)
        return lp_err_set(err, LP_EINVAL, "lp_encoder_adapter_save: NULL argument");
    lp_buf b;
    lp_buf_init(&b);
    lp_encoder_adapter_save_buf(a, &b);
    lp_status st = lp_buf_status(&b, err);
    if (!st)
        st = lp_file_write(path, b.data, b.len, err);
    lp_buf_free(&b);
    return st;
}

/* Parse the fields after the CRC check into a (not yet bound to e). */
static lp_status parse_adapter(lp_reader *r, const char *path, lp_encoder_adapter *a, lp_err *err)
{
    char *sha = NULL;
    uint32_t method = 0, rank = 0, C = 0;
    uint64_t dims[5] = {0}, nb = 0;
    TRY(lp_reader_str(r, &sha, 64, err));
    if (!sha || strlen(sha) != 64) {
        free(sha);
        return lp_err_set(err, LP_EFORMAT, "%s: bad base fingerprint field", path);
    }
    memcpy(a->sha, sha, 65);
    free(sha);
    TRY(lp_reader_u32(r, &method, err));
    for (size_t i = 0; i < 5; i++)
        TRY(lp_reader_u64(r, &dims[i], err));
    TRY(lp_reader_u32(r, &rank, err));
    TRY(lp_reader_f64(r, &a->alpha, err));
    TRY(lp_reader_u32(r, &C, err));
    TRY(lp_reader_u64(r, &nb, err));
    if (method >= LP_ENCODER_FT_METHOD_COUNT_)
        return lp_err_set(err, LP_EFORMAT, "%s: field 'method' is %u; expected 0..2", path, method);
    if ((method == LP_ENCODER_FT_METHOD_LORA) != (rank > 0) || rank > ET_MAX_RANK)
        return lp_err_set(err, LP_EFORMAT, "%s: field 'rank' is %u for method %s", path, rank,
                          method_names[method]);
    if (!(a->alpha > 0) || !isfinite(a->alpha))
        return lp_err_set(err, LP_EFORMAT, "%s: field 'alpha' is %g; expected > 0", path, a->alpha);
    if (C < 2 || C > 65536)
        return lp_err_set(err, LP_EFORMAT, "%s: field 'n_classes' is %u; expected 2..65536", path,
                          C);
    a->method = (lp_encoder_ft_method)method;
    a->rank = rank;
    a->n_classes = C;
    size_t *cd[] = {&a->cfg.vocab_size, &a->cfg.hidden, &a->cfg.layers, &a->cfg.heads,
                    &a->cfg.intermediate};
    for (size_t i = 0; i < 5; i++)
        *cd[i] = (size_t)dims[i];
    size_t left = r->len - r->pos;
    if (left % sizeof(float) || nb != left / sizeof(float))
        return lp_err_set(err, LP_EFORMAT, "%s: field 'n_block' is %llu; the file holds %zu floats",
                          path, (unsigned long long)nb, left / sizeof(float));
    a->n_block = (size_t)nb;
    if (!(a->block = lp_mallocarray(a->n_block ? a->n_block : 1, sizeof *a->block)))
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
    TRY(lp_reader_get(r, a->block, a->n_block * sizeof(float), err));
    for (size_t i = 0; i < a->n_block; i++)
        if (!isfinite(a->block[i]))
            return lp_err_set(err, LP_EFORMAT, "%s: block value %zu is not finite", path, i);
    return LP_OK;
}

lp_status lp_encoder_adapter_load_mem(const void *image, size_t len, const char *path,
                                      const lp_encoder *e, lp_encoder_adapter **out, lp_err *err)
{
    if (!image || !path || !e || !out)
        return lp_err_set(err, LP_EINVAL, "lp_encoder_adapter_load_mem: NULL argument");
    *out = NULL;
    const uint8_t *data = image;
    uint32_t magic = 0, ver = 0, crc = 0;
    lp_status s = LP_OK;
    if (len >= 8) {
        memcpy(&magic, data, 4);
        memcpy(&ver, data + 4, 4);
    }
    if (len < 12 || magic != LPEA_MAGIC)
        s = lp_err_set(err, LP_EFORMAT, "%s: not an encoder adapter file (bad magic or too short)",
                       path);
    else if (ver != LPEA_VERSION)
        s = lp_err_set(err, LP_EVERSION,
                       "%s: encoder adapter format version %u, this build "
                       "reads %u",
                       path, ver, LPEA_VERSION);
    if (!s) {
        memcpy(&crc, data + len - 4, 4);
        if (lp_crc32(0, data, len - 4) != crc)
            s = lp_err_set(err, LP_EFORMAT, "%s: CRC mismatch (file damaged or truncated)", path);
    }
    lp_encoder_adapter *a = s ? NULL : lp_calloc(1, sizeof *a);
    if (!s && !a)
        s = lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
    if (!s) {
        lp_reader r;
        lp_reader_init(&r, data + 8, len - 12, path);
        s = parse_adapter(&r, path, a, err);
    }
    if (!s) {
        a->cfg.type_vocab = e->cfg.type_vocab;
        a->cfg.max_position = e->cfg.max_position;
        a->cfg.max_len = e->cfg.max_len;
        a->cfg.ln_eps = e->cfg.ln_eps;
        s = check_binding(a, e, path, err);
    }
    if (!s && lp_encoder_adapter_size(&a->cfg, a->method, a->rank, a->n_classes) != a->n_block)
        s = lp_err_set(err, LP_EFORMAT,
                       "%s: field 'n_block' is %zu; method %s rank %zu with %zu "
                       "classes needs %zu",
                       path, a->n_block, method_names[a->method], a->rank, a->n_classes,
                       lp_encoder_adapter_size(&a->cfg, a->method, a->rank, a->n_classes));
    if (s) {
        lp_encoder_adapter_free(a);
        return s;
    }
    *out = a;
    return LP_OK;
}

lp_status lp_encoder_adapter_load(const char *path, const lp_encoder *e, lp_encoder_adapter **out,
                                  lp_err *err)
{
    if (!path || !e || !out)
        return lp_err_set(err, LP_EINVAL, "lp_encoder_adapter_load: NULL argument");
    *out = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    TRY(lp_file_read(path, &data, &len, err));
    lp_status s = lp_encoder_adapter_load_mem(data, len, path, e, out, err);
    free(data);
    return s;
}
