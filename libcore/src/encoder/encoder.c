/*
 * encoder.c - loading an encoder .lpm file onto a backend table and the BERT forward pass
 * (see encoder.h for the model and the file).
 *
 * Parameters live in one device block laid out by lp_param_layout under the file's section
 * names, so a future LoRA or gradient block reuses the same offsets. The forward pass calls the
 * kernel table only (sgemm, bias_add, add, act_forward, layernorm_forward, softmax_rows,
 * gather_rows, copies): no host loop touches device memory, so a device table runs it
 * unchanged. The host prepares ids, position ids, the key mask and the pooling weights, and
 * L2-normalises the pooled (n, D) result after copying it back.
 *
 * Activations. enc_acts holds every tensor a backward pass would need, per layer (layer input,
 * q/k/v, attention probabilities, context, the pre-LayerNorm sums with their mean/rstd, the
 * feed-forward pre-activation and GELU output). Inference points every layer at one set of
 * buffers (keep_all false), so memory does not grow with depth; a training path sets keep_all
 * and gets one set per layer.
 *
 * Speed. Inference (keep_all false) takes q|k|v from one (N, 3D) product over per-layer
 * [Wq; Wk; Wv] copies made at load (lp_encoder.qkv; the parameter block keeps its meaning, and
 * keep_all keeps its three (N, D) buffers). Both modes run the per-head attention products and
 * the pooling as sgemm_batched calls over the B sequences (one per head), products with
 * N <= 32 rows in column blocks (see linear); lp_encoder_embed carves every batch from one
 * activation block.
 *
 * Shapes: B sequences of T tokens, N = B*T rows, D hidden, H heads of dh = D / H, F the
 * feed-forward width. Linear weights are (out, in): y (N, out) = x (N, in) @ W^T + b.
 */
#include "encoder/encoder_internal.h"
#include "lepton/registry.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        lp_status st_ = (expr);                                                                    \
        if (st_ != LP_OK)                                                                          \
            return st_;                                                                            \
    } while (0)

static void bf16_drop(lp_encoder *e)
{
    if (!e->bf16)
        return;
    for (size_t i = 0; i < e->cfg.layers * ENC_BF16_PER; i++)
        e->be->bf16_free(e->be, e->bf16[i]);
    free(e->bf16);
    e->bf16 = NULL;
}

lp_status lp_encoder_set_precision(lp_encoder *e, lp_encoder_precision p, lp_err *err)
{
    if (!e)
        return lp_err_set(err, LP_EINVAL, "lp_encoder_set_precision: NULL encoder");
    if (p == LP_ENCODER_FP32) {
        bf16_drop(e);
        return LP_OK;
    }
    if (p != LP_ENCODER_BF16)
        return lp_err_set(err, LP_EINVAL, "lp_encoder_set_precision: unknown precision %d",
                          (int)p);
    if (e->bf16)
        return LP_OK;
    const lp_backend *be = e->be;
    if (!be->bf16_pack || !be->host_visible)
        return lp_err_set(err, LP_EUNSUPPORTED,
                          "encoder: the '%s' table has no bfloat16 products", be->name);
    size_t D = e->cfg.hidden, F = e->cfg.intermediate, nl = e->cfg.layers;
    void **pk = lp_calloc(nl * ENC_BF16_PER, sizeof *pk);
    if (!pk)
        return lp_err_set(err, LP_ENOMEM, "encoder: out of memory");
    e->bf16 = pk;
    const float *P = e->params.ptr;
    for (size_t l = 0; l < nl; l++) {
        const enc_layer *W = &e->layer[l];
        const struct {
            size_t out, in;
            const float *w;
        } m[ENC_BF16_PER] = {{3 * D, D, e->qkv.ptr + W->wqkv},
                             {D, D, P + W->wo},
                             {F, D, P + W->w1},
                             {D, F, P + W->w2}};
        for (size_t j = 0; j < ENC_BF16_PER; j++) {
            lp_status st = be->bf16_pack(be, m[j].out, m[j].in, m[j].w, &pk[l * ENC_BF16_PER + j],
                                         err);
            if (st) {
                bf16_drop(e);
                return st;
            }
        }
    }
    return LP_OK;
}

lp_encoder_precision lp_encoder_precision_of(const lp_encoder *e)
{
    return e && e->bf16 ? LP_ENCODER_BF16 : LP_ENCODER_FP32;
}

lp_status lp_encoder_precision_parse(const char *s, lp_encoder_precision *p, lp_err *err)
{
    if (s && !strcmp(s, "fp32")) {
        *p = LP_ENCODER_FP32;
        return LP_OK;
    }
    if (s && !strcmp(s, "bf16")) {
        *p = LP_ENCODER_BF16;
        return LP_OK;
    }
    return lp_err_set(err, LP_EINVAL, "encoder precision '%.32s': expected fp32 or bf16",
                      s ? s : "(null)");
}

void lp_encoder_free(lp_encoder *e)
{
    if (!e)
        return;
    bf16_drop(e);
    lp_dbuf_free(e->be, &e->params);
    lp_dbuf_free(e->be, &e->qkv);
    if (!e->borrowed) {
        lp_param_layout_free(e->layout);
        lp_wordpiece_free(e->wp);
    }
    free(e->layer);
    pthread_mutex_destroy(&e->fp_mu);
    free(e);
}

const lp_encoder_config *lp_encoder_config_of(const lp_encoder *e)
{
    return e ? &e->cfg : NULL;
}

const lp_wordpiece *lp_encoder_tokenizer(const lp_encoder *e)
{
    return e ? e->wp : NULL;
}

size_t lp_encoder_dim(const lp_encoder *e)
{
    return e ? e->cfg.hidden : 0;
}

/* ---- loading ------------------------------------------------------------------------------ */

static lp_status cfg_size(const cJSON *root, const char *key, size_t lo, size_t hi, size_t *out,
                          const char *path, lp_err *err)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!cJSON_IsNumber(v) || v->valuedouble < (double)lo || v->valuedouble > (double)hi ||
        floor(v->valuedouble) != v->valuedouble)
        return lp_err_set(err, LP_EFORMAT, "%s: header field '%s' must be an integer in %zu..%zu",
                          path, key, lo, hi);
    *out = (size_t)v->valuedouble;
    return LP_OK;
}

static lp_status parse_config(const char *json, const char *path, lp_encoder_config *c, lp_err *err)
{
    cJSON *root = cJSON_Parse(json);
    if (!root)
        return lp_err_set(err, LP_EFORMAT, "%s: header is not JSON", path);
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(root, "kind");
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(root, "ln_eps");
    lp_status s = LP_OK;
    if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "encoder") != 0)
        s = lp_err_set(err, LP_EFORMAT, "%s: not an encoder file (header kind is not 'encoder')",
                       path);
    if (!s)
        s = cfg_size(root, "vocab_size", 5, 1u << 22, &c->vocab_size, path, err);
    if (!s)
        s = cfg_size(root, "hidden", 1, 8192, &c->hidden, path, err);
    if (!s)
        s = cfg_size(root, "layers", 1, 96, &c->layers, path, err);
    if (!s)
        s = cfg_size(root, "heads", 1, 256, &c->heads, path, err);
    if (!s)
        s = cfg_size(root, "intermediate", 1, 65536, &c->intermediate, path, err);
    if (!s)
        s = cfg_size(root, "max_position", 2, 65536, &c->max_position, path, err);
    if (!s)
        s = cfg_size(root, "type_vocab", 1, 1024, &c->type_vocab, path, err);
    if (!s)
        s = cfg_size(root, "max_len", 2, c->max_position, &c->max_len, path, err);
    if (!s && (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0) || eps->valuedouble > 1))
        s = lp_err_set(err, LP_EFORMAT, "%s: header field 'ln_eps' must be in (0, 1]", path);
    if (!s)
        c->ln_eps = (float)eps->valuedouble;
    if (!s && c->hidden % c->heads)
        s = lp_err_set(err, LP_EFORMAT, "%s: hidden %zu is not a multiple of heads %zu", path,
                       c->hidden, c->heads);
    cJSON_Delete(root);
    return s;
}

/* Add tensor `name` of shape (r, c) (c == 0: a vector of r) to the layout, copy it from the
 * file's section into the host staging block, and return its offset. */
static lp_status add_tensor(lp_encoder *e, const lp_lpm *f, const char *path, const char *name,
                            size_t r, size_t c, float **stage, size_t *stage_cap, size_t *off,
                            lp_err *err)
{
    size_t shape[2] = {r, c}, want = c ? r * c : r;
    TRY(lp_param_layout_add(e->layout, name, c ? 2 : 1, shape, off, err));
    const void *data;
    size_t size;
    TRY(lp_lpm_section(f, name, LP_LPM_DTYPE_F32, &data, &size, err));
    if (size != want * sizeof(float))
        return lp_err_set(err, LP_EFORMAT, "%s: tensor '%s' has %zu floats, config needs %zu", path,
                          name, size / sizeof(float), want);
    size_t total = lp_param_layout_total(e->layout);
    if (total > *stage_cap) {
        size_t cap = total * 2;
        float *p = lp_reallocarray(*stage, cap, sizeof(float));
        if (!p)
            return lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
        *stage = p;
        *stage_cap = cap;
    }
    memcpy(*stage + *off, data, size);
    for (size_t i = 0; i < want; i++)
        if (!isfinite((*stage)[*off + i]))
            return lp_err_set(err, LP_EFORMAT, "%s: tensor '%s' holds a non-finite value at %zu",
                              path, name, i);
    return LP_OK;
}

static lp_status load_tensors(lp_encoder *e, const lp_lpm *f, const char *path, float **stage,
                              size_t *cap, lp_err *err)
{
    const lp_encoder_config *c = &e->cfg;
    size_t D = c->hidden, F = c->intermediate;
    TRY(add_tensor(e, f, path, "embeddings.word_embeddings.weight", c->vocab_size, D, stage, cap,
                   &e->word, err));
    TRY(add_tensor(e, f, path, "embeddings.position_embeddings.weight", c->max_position, D, stage,
                   cap, &e->pos, err));
    TRY(add_tensor(e, f, path, "embeddings.token_type_embeddings.weight", c->type_vocab, D, stage,
                   cap, &e->type, err));
    TRY(add_tensor(e, f, path, "embeddings.LayerNorm.weight", D, 0, stage, cap, &e->ln_g, err));
    TRY(add_tensor(e, f, path, "embeddings.LayerNorm.bias", D, 0, stage, cap, &e->ln_b, err));
    for (size_t l = 0; l < c->layers; l++) {
        enc_layer *L = &e->layer[l];
        const struct {
            const char *suffix;
            size_t r, c;
            size_t *off;
        } t[] = {
            {"attention.self.query.weight", D, D, &L->wq},
            {"attention.self.query.bias", D, 0, &L->bq},
            {"attention.self.key.weight", D, D, &L->wk},
            {"attention.self.key.bias", D, 0, &L->bk},
            {"attention.self.value.weight", D, D, &L->wv},
            {"attention.self.value.bias", D, 0, &L->bv},
            {"attention.output.dense.weight", D, D, &L->wo},
            {"attention.output.dense.bias", D, 0, &L->bo},
            {"attention.output.LayerNorm.weight", D, 0, &L->ln1_g},
            {"attention.output.LayerNorm.bias", D, 0, &L->ln1_b},
            {"intermediate.dense.weight", F, D, &L->w1},
            {"intermediate.dense.bias", F, 0, &L->b1},
            {"output.dense.weight", D, F, &L->w2},
            {"output.dense.bias", D, 0, &L->b2},
            {"output.LayerNorm.weight", D, 0, &L->ln2_g},
            {"output.LayerNorm.bias", D, 0, &L->ln2_b},
        };
        for (size_t k = 0; k < sizeof t / sizeof t[0]; k++) {
            char name[LP_LPM_NAME_MAX];
            snprintf(name, sizeof name, "layer.%zu.%s", l, t[k].suffix);
            TRY(add_tensor(e, f, path, name, t[k].r, t[k].c, stage, cap, t[k].off, err));
        }
    }
    return LP_OK;
}

/* (Re)build e->qkv from the q/k/v tensors of e->params: device-to-device copies, so it runs
 * on any table, after load or after anything that rewrote those tensors. */
static lp_status enc_qkv_fuse(lp_encoder *e, lp_err *err)
{
    const lp_backend *be = e->be;
    size_t D = e->cfg.hidden, per = 3 * D * D + 3 * D;
    if (!e->qkv.ptr)
        TRY(lp_dbuf_alloc(be, e->cfg.layers * per, &e->qkv, err));
    for (size_t l = 0; l < e->cfg.layers; l++) {
        enc_layer *L = &e->layer[l];
        L->wqkv = l * per;
        L->bqkv = L->wqkv + 3 * D * D;
        const size_t w[3] = {L->wq, L->wk, L->wv}, b[3] = {L->bq, L->bk, L->bv};
        for (size_t j = 0; j < 3; j++) {
            TRY(be->copy_d2d(be, e->qkv.ptr + L->wqkv + j * D * D, e->params.ptr + w[j],
                             D * D * sizeof(float), err));
            TRY(be->copy_d2d(be, e->qkv.ptr + L->bqkv + j * D, e->params.ptr + b[j],
                             D * sizeof(float), err));
        }
    }
    return LP_OK;
}

lp_status lp_encoder_load(const char *path, const char *backend, lp_encoder **out, lp_err *err)
{
    if (!path || !out)
        return lp_err_set(err, LP_EINVAL, "lp_encoder_load: NULL argument");
    *out = NULL;
    const lp_backend *be;
    TRY(lp_backend_get(backend ? backend : "cpu", &be, err));
    if (!be->layernorm_forward || !be->softmax_rows || !be->gather_rows)
        return lp_err_set(err, LP_EUNSUPPORTED,
                          "backend '%s' lacks the transformer ops (layernorm_forward, "
                          "softmax_rows, gather_rows) the encoder needs",
                          be->name);
    lp_lpm *f = NULL;
    TRY(lp_lpm_load(path, &f, err));
    lp_encoder *e = lp_calloc(1, sizeof *e);
    float *stage = NULL;
    size_t cap = 0;
    lp_status s = e ? LP_OK : lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
    if (!s) {
        pthread_mutex_init(&e->fp_mu, NULL);
        e->be = be;
        s = parse_config(lp_lpm_header(f), path, &e->cfg, err);
    }
    if (!s) {
        e->layout = lp_param_layout_new();
        e->layer = lp_calloc(e->cfg.layers, sizeof *e->layer);
        if (!e->layout || !e->layer)
            s = lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
    }
    if (!s)
        s = load_tensors(e, f, path, &stage, &cap, err);
    if (!s) {
        const void *v;
        size_t vn;
        lp_wordpiece_opts o = lp_wordpiece_opts_default();
        o.max_len = e->cfg.max_len;
        s = lp_lpm_section(f, "vocab", LP_LPM_DTYPE_BYTES, &v, &vn, err);
        if (!s)
            s = lp_wordpiece_new(v, vn, &o, &e->wp, err);
        if (!s && lp_wordpiece_vocab_size(e->wp) != e->cfg.vocab_size)
            s = lp_err_set(err, LP_EFORMAT, "%s: vocabulary has %zu tokens, config says %zu", path,
                           lp_wordpiece_vocab_size(e->wp), e->cfg.vocab_size);
        if (s)
            lp_err_prefix(err, "%s", path);
    }
    if (!s)
        s = lp_dbuf_alloc(be, lp_param_layout_total(e->layout), &e->params, err);
    if (!s)
        s = be->copy_h2d(be, e->params.ptr, stage, e->params.n * sizeof(float), err);
    if (!s)
        s = enc_qkv_fuse(e, err);
    const char *pe = getenv("LEPTON_ENCODER_PRECISION");
    if (!s && pe && *pe) {
        lp_encoder_precision p;
        s = lp_encoder_precision_parse(pe, &p, err);
        if (s)
            lp_err_prefix(err, "LEPTON_ENCODER_PRECISION");
        else if (p == LP_ENCODER_BF16 && lp_encoder_set_precision(e, p, err) != LP_OK)
            lp_err_clear(err); /* a preference: float32 where bfloat16 cannot run */
    }
    free(stage);
    lp_lpm_free(f);
    if (s) {
        lp_encoder_free(e);
        return s;
    }
    *out = e;
    return LP_OK;
}

lp_status enc_derive(const lp_encoder *e, const float *host_params, lp_encoder **out,
                     lp_err *err)
{
    *out = NULL;
    lp_encoder *d = lp_calloc(1, sizeof *d);
    if (!d)
        return lp_err_set(err, LP_ENOMEM, "encoder: out of memory");
    pthread_mutex_init(&d->fp_mu, NULL);
    d->cfg = e->cfg;
    d->be = e->be;
    d->layout = e->layout;
    d->wp = e->wp;
    d->borrowed = true;
    d->word = e->word, d->pos = e->pos, d->type = e->type, d->ln_g = e->ln_g, d->ln_b = e->ln_b;
    d->layer = lp_mallocarray(e->cfg.layers, sizeof *d->layer);
    lp_status s = d->layer ? LP_OK : lp_err_set(err, LP_ENOMEM, "encoder: out of memory");
    if (!s) {
        memcpy(d->layer, e->layer, e->cfg.layers * sizeof *d->layer);
        s = lp_dbuf_alloc(d->be, e->params.n, &d->params, err);
    }
    if (!s)
        s = d->be->copy_h2d(d->be, d->params.ptr, host_params, e->params.n * sizeof(float), err);
    if (!s)
        s = enc_qkv_fuse(d, err);
    if (!s && e->bf16)
        s = lp_encoder_set_precision(d, LP_ENCODER_BF16, err);
    if (s) {
        lp_encoder_free(d);
        return s;
    }
    *out = d;
    return LP_OK;
}

/* ---- forward ------------------------------------------------------------------------------ */

/* Activations of one layer (device pointers into enc_acts.block). */
typedef struct enc_layer_acts {
    float *x_in;          /* (N, D) layer input */
    float *q, *k, *v;     /* (N, D) (keep_all), else NULL */
    float *qkv;           /* (N, 3D) one fused product q|k|v (inference), else NULL */
    float *probs;         /* (B, H, T, T) attention probabilities */
    float *ctx;           /* (N, D) concatenated head outputs */
    float *sum1;          /* (N, D) x_in + attention output, before LayerNorm 1 */
    float *x1;            /* (N, D) after LayerNorm 1 */
    float *mean1, *rstd1; /* (N) */
    float *h_pre;         /* (N, F) feed-forward pre-activation */
    float *h_act;         /* (N, F) GELU output */
    float *sum2;          /* (N, D) x1 + feed-forward output, before LayerNorm 2 */
    float *mean2, *rstd2; /* (N) */
} enc_layer_acts;

typedef struct enc_acts {
    lp_dbuf block;
    size_t nl;  /* layers with their own buffers: layers (keep_all) or 1 */
    bool fused; /* inference: q|k|v from one (N, 3D) product into layer->qkv */
    enc_layer_acts *layer;
    float *emb;         /* (N, D) embedding sum before LayerNorm */
    float *tmp;         /* (N, D) position rows */
    float *x_out;       /* (N, D) last hidden states */
    float *pooled;      /* (B, D) */
    float *mask;        /* (B, T) key mask */
    float *poolw;       /* (B, T) mask / count */
    int32_t *ids, *pos; /* (N) */
} enc_acts;

/* Free and zero (a zeroed `a` is a no-op). */
static void acts_free(const lp_backend *be, enc_acts *a)
{
    if (a->block.ptr)
        be->free(be, a->block.ptr, NULL);
    free(a->layer);
    memset(a, 0, sizeof *a);
}

/* Every view starts on a 16-float boundary (64 bytes), like lp_param_layout. */
#define ROUND(x) (((x) + 15) / 16 * 16)

/* Floats of the activations of B sequences of T tokens (monotone in B and T, so a block sized
 * for the largest batch holds every smaller one). */
static size_t acts_floats(const lp_encoder_config *c, size_t B, size_t T, size_t nl)
{
    size_t N = B * T, D = c->hidden, F = c->intermediate, H = c->heads;
    size_t per_layer = 8 * ROUND(N * D) + ROUND(B * H * T * T) + 2 * ROUND(N * F) + 4 * ROUND(N);
    size_t fixed = 3 * ROUND(N * D) + ROUND(B * D) + 2 * ROUND(B * T) + 2 * ROUND(N);
    return fixed + nl * per_layer;
}

/* Point the views of `a` (block and layer array allocated, nl set) at B sequences of T. */
static void acts_carve(const lp_encoder *e, size_t B, size_t T, enc_acts *a)
{
    const lp_encoder_config *c = &e->cfg;
    size_t N = B * T, D = c->hidden, F = c->intermediate, H = c->heads;
    float *p = a->block.ptr;
#define TAKE(n) (p += ROUND(n), p - ROUND(n))
    a->emb = TAKE(N * D);
    a->tmp = TAKE(N * D);
    a->x_out = TAKE(N * D);
    a->pooled = TAKE(B * D);
    a->mask = TAKE(B * T);
    a->poolw = TAKE(B * T);
    a->ids = (int32_t *)TAKE(N);
    a->pos = (int32_t *)TAKE(N);
    for (size_t l = 0; l < a->nl; l++) {
        enc_layer_acts *L = &a->layer[l];
        L->x_in = TAKE(N * D);
        if (!a->fused) {
            L->q = TAKE(N * D);
            L->k = TAKE(N * D);
            L->v = TAKE(N * D);
            L->qkv = NULL;
        } else { /* ROUND(3 N D) <= 3 ROUND(N D): fits the room of q, k, v */
            L->qkv = TAKE(3 * N * D);
            L->q = L->k = L->v = NULL;
        }
        L->ctx = TAKE(N * D);
        L->sum1 = TAKE(N * D);
        L->sum2 = TAKE(N * D);
        L->x1 = TAKE(N * D);
        L->probs = TAKE(B * H * T * T);
        L->h_pre = TAKE(N * F);
        L->h_act = TAKE(N * F);
        L->mean1 = TAKE(N);
        L->rstd1 = TAKE(N);
        L->mean2 = TAKE(N);
        L->rstd2 = TAKE(N);
    }
#undef TAKE
    for (size_t l = a->nl; l < c->layers; l++)
        a->layer[l] = a->layer[0];
}

/* Allocate activations for up to B sequences of T tokens and carve them for exactly that.
 * keep_all: one set per layer (training); else one shared set with the fused q|k|v. */
static lp_status acts_alloc(const lp_encoder *e, size_t B, size_t T, bool keep_all, enc_acts *a,
                            lp_err *err)
{
    const lp_encoder_config *c = &e->cfg;
    memset(a, 0, sizeof *a);
    a->nl = keep_all ? c->layers : 1;
    a->fused = !keep_all;
    a->layer = lp_calloc(c->layers, sizeof *a->layer);
    if (!a->layer)
        return lp_err_set(err, LP_ENOMEM, "encoder: out of memory");
    /* Uninitialised (no zero-fill pass over tens of MB per batch): every view is written in
     * full by its op (gathers, copies, gemms with beta 0, LayerNorm) before anything reads it. */
    a->block.n = acts_floats(c, B, T, a->nl);
    TRY(e->be->alloc(e->be, a->block.n * sizeof(float), (void **)&a->block.ptr, err));
    acts_carve(e, B, T, a);
    return LP_OK;
}
#undef ROUND

/* Few rows (one short sentence) on a host table: OpenBLAS packs all of W for a product with
 * m = N rows, which for N ~ 10 costs as much as the product and streams the weights three
 * times. Cut into column blocks of c outputs, it runs its unpacked small-matrix kernel instead
 * (OpenBLAS 0.3.21 sgemm_small_kernel_permit_skylakex.c, our x @ W^T being its "TN" case:
 * taken while c N <= 1200 and c N in <= 1e6), and sgemm_batched spreads the blocks over the
 * OpenMP threads. A probe timing one sentence's 36 weight products on the shared 2-core VM
 * (2 threads, loaded) found the blocks about 2x faster at N = 11 and no slower at N = 32, so
 * they are used up to N = 32 only; bench/RESULTS.md has the end-to-end latency. */
#define LINEAR_SMALL_ROWS 32
#define LINEAR_SMALL_MN 1200.0
#define LINEAR_SMALL_MNK 1e6

/* y (N, out) = x (N, in) @ W^T + b */
static lp_status linear(const lp_backend *be, size_t N, size_t in, size_t outd, const float *x,
                        const float *w, const float *b, float *y, lp_err *err)
{
    size_t cols = 0; /* columns per block, a multiple of 16 (one AVX-512 register of floats) */
    if (be->host_visible && be->sgemm_batched && N <= LINEAR_SMALL_ROWS) {
        double lim = LINEAR_SMALL_MN / (double)N, lim2 = LINEAR_SMALL_MNK / ((double)N * in);
        cols = (size_t)(lim < lim2 ? lim : lim2) / 16 * 16;
    }
    if (cols >= 16 && cols < outd) {
        /* block j: y[:, j c..] (N, c) = x (N, in) @ W[j c.., :]^T; x shared (stride 0) */
        size_t nb = outd / cols, rest = outd - nb * cols;
        TRY(be->sgemm_batched(be, false, true, N, cols, in, 1.0f, x, in, 0, w, in, cols * in,
                              0.0f, y, outd, cols, nb, err));
        if (rest)
            TRY(be->sgemm(be, false, true, N, rest, in, 1.0f, x, in, w + nb * cols * in, in, 0.0f,
                          y + nb * cols, outd, err));
    } else {
        TRY(be->sgemm(be, false, true, N, outd, in, 1.0f, x, in, w, in, 0.0f, y, outd, err));
    }
    return be->bias_add(be, N, outd, b, y, err);
}

/* C_b (m, n) = alpha op(A_b) @ op(B_b) for b < batch (beta 0, X_b = X + b stride_x): the
 * table's sgemm_batched, or one sgemm per b on a table without it. */
static lp_status gemm_seqs(const lp_backend *be, bool ta, bool tb, size_t m, size_t n, size_t k,
                           float alpha, const float *a, size_t lda, size_t sa, const float *b,
                           size_t ldb, size_t sb, float *c, size_t ldc, size_t sc, size_t batch,
                           lp_err *err)
{
    if (be->sgemm_batched)
        return be->sgemm_batched(be, ta, tb, m, n, k, alpha, a, lda, sa, b, ldb, sb, 0.0f, c, ldc,
                                 sc, batch, err);
    for (size_t i = 0; i < batch; i++)
        TRY(be->sgemm(be, ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, 0.0f,
                      c + i * sc, ldc, err));
    return LP_OK;
}

/* One post-LN transformer layer: reads L->x_in, writes `out` (N, D) (may be the next layer's
 * x_in). */
static lp_status layer_forward(const lp_encoder *e, const enc_layer *W, enc_layer_acts *L,
                               const enc_acts *a, size_t B, size_t T, float *out, lp_err *err)
{
    const lp_backend *be = e->be;
    const lp_encoder_config *c = &e->cfg;
    const float *P = e->params.ptr;
    size_t N = B * T, D = c->hidden, H = c->heads, dh = D / H, F = c->intermediate;
    /* q, k, v (N, D) with row stride ld: one (N, 3D) product over the fused weights in
     * inference, three (N, D) buffers when every activation is kept for a backward pass. */
    const float *q, *k, *v;
    size_t ld;
    /* inference with packed bfloat16 weights: the four products of the layer through them */
    void *const *pk = e->bf16 && L->qkv ? e->bf16 + (size_t)(W - e->layer) * ENC_BF16_PER : NULL;
    if (pk) {
        TRY(be->bf16_linear(be, N, D, 3 * D, L->x_in, pk[0], e->qkv.ptr + W->bqkv, L->qkv, err));
        q = L->qkv, k = L->qkv + D, v = L->qkv + 2 * D, ld = 3 * D;
    } else if (L->qkv) {
        TRY(linear(be, N, D, 3 * D, L->x_in, e->qkv.ptr + W->wqkv, e->qkv.ptr + W->bqkv, L->qkv,
                   err));
        q = L->qkv, k = L->qkv + D, v = L->qkv + 2 * D, ld = 3 * D;
    } else {
        TRY(linear(be, N, D, D, L->x_in, P + W->wq, P + W->bq, L->q, err));
        TRY(linear(be, N, D, D, L->x_in, P + W->wk, P + W->bk, L->k, err));
        TRY(linear(be, N, D, D, L->x_in, P + W->wv, P + W->bv, L->v, err));
        q = L->q, k = L->k, v = L->v, ld = D;
    }
    /* Per sequence b and head h: scores (T, T) = q_bh (T, dh) @ k_bh^T / sqrt(dh), where head
     * h is columns [h dh, (h+1) dh) of the projections. One batched product per head over the
     * B sequences: sequence b is T rows further (stride T ld), its scores H T T further. */
    float scale = (float)(1.0 / sqrt((double)dh));
    for (size_t h = 0; h < H; h++)
        TRY(gemm_seqs(be, false, true, T, T, dh, scale, q + h * dh, ld, T * ld, k + h * dh, ld,
                      T * ld, L->probs + h * T * T, T, H * T * T, B, err));
    /* Rows of sequence b (H*T of them) share key mask row b. */
    TRY(be->softmax_rows(be, B * H * T, T, H * T, a->mask, L->probs, L->probs, err));
    /* ctx_bh (T, dh) = probs_bh (T, T) @ v_bh (T, dh), written into columns of head h */
    for (size_t h = 0; h < H; h++)
        TRY(gemm_seqs(be, false, false, T, dh, T, 1.0f, L->probs + h * T * T, T, H * T * T,
                      v + h * dh, ld, T * ld, L->ctx + h * dh, D, T * D, B, err));
    /* sum1 = x_in + ctx Wo^T + bo; x1 = LayerNorm(sum1) */
    TRY(pk ? be->bf16_linear(be, N, D, D, L->ctx, pk[1], P + W->bo, L->sum1, err)
           : linear(be, N, D, D, L->ctx, P + W->wo, P + W->bo, L->sum1, err));
    TRY(be->add(be, N * D, L->sum1, L->x_in, L->sum1, err));
    TRY(be->layernorm_forward(be, N, D, c->ln_eps, L->sum1, P + W->ln1_g, P + W->ln1_b, L->x1,
                              L->mean1, L->rstd1, err));
    /* feed-forward: sum2 = x1 + W2 GELU(W1 x1 + b1) + b2; out = LayerNorm(sum2) */
    TRY(pk ? be->bf16_linear(be, N, D, F, L->x1, pk[2], P + W->b1, L->h_pre, err)
           : linear(be, N, D, F, L->x1, P + W->w1, P + W->b1, L->h_pre, err));
    TRY(be->act_forward(be, LP_ACT_KIND_GELU_ERF, N * F, L->h_pre, L->h_act, err));
    TRY(pk ? be->bf16_linear(be, N, F, D, L->h_act, pk[3], P + W->b2, L->sum2, err)
           : linear(be, N, F, D, L->h_act, P + W->w2, P + W->b2, L->sum2, err));
    TRY(be->add(be, N * D, L->sum2, L->x1, L->sum2, err));
    return be->layernorm_forward(be, N, D, c->ln_eps, L->sum2, P + W->ln2_g, P + W->ln2_b, out,
                                 L->mean2, L->rstd2, err);
}

static lp_status forward_acts(const lp_encoder *e, const lp_token_batch *tb, enc_acts *a,
                              float *out, lp_err *err)
{
    const lp_backend *be = e->be;
    const lp_encoder_config *c = &e->cfg;
    const float *P = e->params.ptr;
    size_t B = tb->n, T = tb->t, N = B * T, D = c->hidden;
    /* Host side: position ids, pooling weights mask / count. */
    int32_t *pos = lp_mallocarray(N, sizeof *pos);
    float *poolw = lp_mallocarray(N, sizeof *poolw);
    if (!pos || !poolw) {
        free(pos);
        free(poolw);
        return lp_err_set(err, LP_ENOMEM, "encoder: out of memory");
    }
    enc_pool_inputs(tb, pos, poolw);
    lp_status s = be->copy_h2d(be, a->ids, tb->ids, N * sizeof(int32_t), err);
    if (!s)
        s = be->copy_h2d(be, a->pos, pos, N * sizeof(int32_t), err);
    if (!s)
        s = be->copy_h2d(be, a->mask, tb->mask, N * sizeof(float), err);
    if (!s)
        s = be->copy_h2d(be, a->poolw, poolw, N * sizeof(float), err);
    free(pos);
    free(poolw);
    if (s)
        return s;
    /* embeddings: word[ids] + position[0..T) + token_type[0], then LayerNorm */
    float *x = a->layer[0].x_in;
    TRY(be->gather_rows(be, N, D, c->vocab_size, P + e->word, a->ids, a->emb, err));
    TRY(be->gather_rows(be, N, D, c->max_position, P + e->pos, a->pos, a->tmp, err));
    TRY(be->add(be, N * D, a->emb, a->tmp, a->emb, err));
    TRY(be->bias_add(be, N, D, P + e->type, a->emb, err));
    TRY(be->layernorm_forward(be, N, D, c->ln_eps, a->emb, P + e->ln_g, P + e->ln_b, x, NULL, NULL,
                              err));
    for (size_t l = 0; l < c->layers; l++) {
        /* With shared buffers dst is this layer's own x_in, which layer_forward last reads in
         * the first residual sum, before it writes dst. */
        float *dst = l + 1 < c->layers ? a->layer[l + 1].x_in : a->x_out;
        TRY(layer_forward(e, &e->layer[l], &a->layer[l], a, B, T, dst, err));
    }
    /* mean pooling: pooled_b (1, D) = poolw_b (1, T) @ x_out_b (T, D) */
    TRY(gemm_seqs(be, false, false, 1, D, T, 1.0f, a->poolw, T, T, a->x_out, D, T * D, a->pooled,
                  D, D, B, err));
    TRY(be->sync(be, err));
    TRY(be->copy_d2h(be, out, a->pooled, B * D * sizeof(float), err));
    enc_l2_rows(out, B, D, NULL);
    return LP_OK;
}

/* Point `a` (from acts_alloc, inference) at B sequences of T, growing its block when the
 * batch is larger than any before: one allocation serves every batch of an embed call. */
static lp_status acts_fit(const lp_encoder *e, size_t B, size_t T, enc_acts *a, lp_err *err)
{
    if (acts_floats(&e->cfg, B, T, a->nl) <= a->block.n) {
        acts_carve(e, B, T, a);
        return LP_OK;
    }
    acts_free(e->be, a);
    return acts_alloc(e, B, T, false, a, err);
}

lp_status lp_encoder_forward(const lp_encoder *e, const lp_token_batch *b, float *out, lp_err *err)
{
    if (!e || !b || (!out && b->n))
        return lp_err_set(err, LP_EINVAL, "lp_encoder_forward: NULL argument");
    if (b->n == 0)
        return LP_OK;
    TRY(enc_check_batch(e, b, err));
    enc_acts a;
    lp_status s = acts_alloc(e, b->n, b->t, false, &a, err);
    if (!s)
        s = forward_acts(e, b, &a, out, err);
    acts_free(e->be, &a);
    return s;
}

/* ---- embedding many texts ----------------------------------------------------------------- */

typedef struct len_idx {
    size_t len, idx;
} len_idx;

static int cmp_len(const void *x, const void *y)
{
    const len_idx *a = x, *b = y;
    if (a->len != b->len)
        return a->len < b->len ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

lp_status lp_encoder_embed(const lp_encoder *e, const char *const *texts, size_t n,
                           size_t batch_size, float *out, size_t *n_truncated, lp_err *err)
{
    if (!e || (!texts && n) || (!out && n))
        return lp_err_set(err, LP_EINVAL, "lp_encoder_embed: NULL argument");
    if (batch_size == 0)
        return lp_err_set(err, LP_EINVAL, "lp_encoder_embed: batch_size is 0; expected >= 1");
    size_t D = e->cfg.hidden, ntr = 0;
    /* Tokenize everything once to sort by length, then batch in that order. */
    len_idx *order = lp_calloc(n ? n : 1, sizeof *order);
    const char **bt = lp_calloc(batch_size, sizeof *bt);
    float *bo = lp_mallocarray(batch_size * D, sizeof *bo);
    int32_t *ids = lp_mallocarray(e->cfg.max_len, sizeof *ids);
    lp_status s =
        order && bt && bo && ids ? LP_OK : lp_err_set(err, LP_ENOMEM, "encoder: out of memory");
    for (size_t i = 0; !s && i < n; i++) {
        const char *t = texts[i] ? texts[i] : "";
        s = lp_wordpiece_encode(e->wp, t, strlen(t), ids, e->cfg.max_len, &order[i].len, NULL, err);
        if (s)
            lp_err_prefix(err, "text %zu", i);
        order[i].idx = i;
    }
    if (!s)
        qsort(order, n, sizeof *order, cmp_len);
    /* One activation block for the whole call, sized for the longest batch: the last, since
     * the texts are sorted by length and a batch pads to its longest text. */
    enc_acts a;
    memset(&a, 0, sizeof a);
    if (!s && n)
        s = acts_alloc(e, n < batch_size ? n : batch_size,
                       order[n - 1].len ? order[n - 1].len : 1, false, &a, err);
    for (size_t start = 0; !s && start < n; start += batch_size) {
        size_t m = n - start < batch_size ? n - start : batch_size;
        for (size_t j = 0; j < m; j++)
            bt[j] = texts[order[start + j].idx];
        lp_token_batch tb;
        s = lp_wordpiece_encode_batch(e->wp, bt, m, &tb, err);
        if (!s) {
            ntr += tb.n_truncated;
            s = enc_check_batch(e, &tb, err);
        }
        if (!s)
            s = acts_fit(e, tb.n, tb.t, &a, err);
        if (!s)
            s = forward_acts(e, &tb, &a, bo, err);
        lp_token_batch_clear(&tb);
        for (size_t j = 0; !s && j < m; j++)
            memcpy(out + order[start + j].idx * D, bo + j * D, D * sizeof *out);
    }
    if (!s && n_truncated)
        *n_truncated = ntr;
    acts_free(e->be, &a);
    free(order);
    free(bt);
    free(bo);
    free(ids);
    return s;
}
