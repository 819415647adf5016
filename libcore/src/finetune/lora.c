/*
 * lora.c - LoRA adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language
 * Models") on the dense layers of an nn model: y = W x + b + (alpha / r) B (A x), W and b
 * frozen, A (r, in) and B (out, r) in the adapter's own block. Creation, training (through
 * ft_net_train), the .lpa file, unmerged prediction, merge and unmerge.
 *
 * Invariants: an adapter is bound to one base model (pointer, not owned) whose sha256 it
 * records; its block holds, per target in increasing dense-layer order, A then B. The .lpa
 * format (docs/model-format.md): "LPLA", u32 version 1, str base sha256 (64 hex), u32 r,
 * f64 alpha, u32 n_targets, per target u32 dense index, u64 in, u64 out; u64 n_block,
 * f32 block[n_block]; u32 CRC-32 of every previous byte.
 */
#include "finetune/ft_internal.h"
#include "lepton/linalg.h"
#include "model/family.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LPA_MAGIC 0x414C504Cu /* "LPLA" */
#define LPA_VERSION 1u

struct lp_lora {
    const lp_model *base;
    char sha[65];
    lp_lpm *lpm;   /* the base's sections (for a merged save) */
    ft_net *net;   /* the base's dense net, frozen */
    ft_lora lo;
    size_t *targets; /* dense indices, increasing */
    size_t n_targets;
    double alpha;
};

void lp_lora_free(lp_lora *a)
{
    if (!a)
        return;
    lp_lpm_free(a->lpm);
    ft_net_free(a->net);
    free(a->lo.a_off);
    free(a->lo.b_off);
    free(a->lo.block);
    free(a->targets);
    free(a);
}

static lp_status bind_base(const lp_model *base, lp_lora **out, lp_err *err)
{
    *out = NULL;
    if (!base)
        return lp_err_set(err, LP_EINVAL, "lora: the base model must not be NULL");
    if (lp_model_get_kind(base) != LP_MODEL_KIND_NN)
        return lp_err_set(err, LP_EUNSUPPORTED, "finetune: method lora applies to nn models; "
                          "this model is %s (use %s)", lp_model_kind_name(lp_model_get_kind(base)),
                          lp_model_get_kind(base) == LP_MODEL_KIND_GBDT ? "boost" : "warm");
    lp_lora *a = lp_calloc(1, sizeof *a);
    if (!a)
        return lp_err_set(err, LP_ENOMEM, "lora: out of memory");
    a->base = base;
    const void *d;
    size_t n;
    lp_status st = ft_snapshot(base, &a->lpm, a->sha, err);
    if (!st)
        st = lp_lpm_section(a->lpm, "model", -1, &d, &n, err);
    if (!st)
        st = ft_net_from_blob(d, n, &a->net, err);
    if (!st) {
        a->lo.a_off = lp_mallocarray(a->net->n_dense, sizeof *a->lo.a_off);
        a->lo.b_off = lp_mallocarray(a->net->n_dense, sizeof *a->lo.b_off);
        a->targets = lp_mallocarray(a->net->n_dense, sizeof *a->targets);
        if (!a->lo.a_off || !a->lo.b_off || !a->targets)
            st = lp_err_set(err, LP_ENOMEM, "lora: out of memory");
    }
    if (st) {
        lp_lora_free(a);
        return st;
    }
    *out = a;
    return LP_OK;
}

static const ft_layer *dense_layer(const ft_net *net, size_t k)
{
    for (size_t i = 0; i < net->nl; i++)
        if (net->L[i].kind == FT_LAYER_DENSE && net->L[i].dense == k)
            return &net->L[i];
    return NULL;
}

/* Lay out the block for rank r over the chosen targets (is_target (n_dense)); checks ranks. */
static lp_status layout(lp_lora *a, size_t r, double alpha, const bool *is_target, lp_err *err)
{
    size_t off = 0;
    a->n_targets = 0;
    for (size_t k = 0; k < a->net->n_dense; k++) {
        a->lo.a_off[k] = a->lo.b_off[k] = SIZE_MAX;
        if (!is_target[k])
            continue;
        const ft_layer *L = dense_layer(a->net, k);
        size_t mn = L->in < L->out ? L->in : L->out;
        if (r > mn)
            return lp_err_set(err, LP_EINVAL, "lora: rank %zu is larger than dense layer %zu "
                              "(%zu -> %zu) allows: at most min(in, out) = %zu (lower the rank or leave the "
                              "layer out of the targets)", r, k, L->in,
                              L->out, mn);
        a->lo.a_off[k] = off;
        off += r * L->in;
        a->lo.b_off[k] = off;
        off += L->out * r;
        a->targets[a->n_targets++] = k;
    }
    if (a->n_targets == 0)
        return lp_err_set(err, LP_EINVAL, "lora: no target layer");
    a->lo.r = r;
    a->alpha = alpha;
    a->lo.scale = (float)(alpha / (double)r);
    a->lo.n_block = off;
    a->lo.block = lp_calloc(off, sizeof *a->lo.block);
    if (!a->lo.block)
        return lp_err_set(err, LP_ENOMEM, "lora: out of memory (%zu adapter parameters)", off);
    return LP_OK;
}

static lp_status parse_targets(const char *spec, size_t n_dense, bool *is_target, lp_err *err)
{
    if (!spec || !*spec) {
        for (size_t k = 0; k < n_dense; k++)
            is_target[k] = true;
        return LP_OK;
    }
    memset(is_target, 0, n_dense * sizeof *is_target);
    const char *p = spec;
    while (*p) {
        size_t len = strcspn(p, ",");
        char tok[64];
        if (len == 0 || len >= sizeof tok)
            return lp_err_set(err, LP_EINVAL, "lora: targets \"%s\": empty or overlong entry",
                              spec);
        memcpy(tok, p, len);
        tok[len] = 0;
        const char *num = strncmp(tok, "dense", 5) == 0 ? tok + 5 : tok;
        char *end;
        unsigned long k = strtoul(num, &end, 10);
        if (!*num || *end || k >= n_dense)
            return lp_err_set(err, LP_EINVAL, "lora: target '%s': expected a dense layer index "
                              "0..%zu or its name dense0..dense%zu", tok, n_dense - 1,
                              n_dense - 1);
        is_target[k] = true;
        p += len;
        if (*p == ',')
            p++;
    }
    return LP_OK;
}

lp_status lp_lora_new(const lp_model *base, const lp_finetune_opts *o, lp_lora **out,
                      lp_err *err)
{
    *out = NULL;
    lp_status st = lp_finetune_opts_check(o, err);
    if (st)
        return st;
    lp_lora *a = NULL;
    if ((st = bind_base(base, &a, err)))
        return st;
    bool *is_t = lp_calloc(a->net->n_dense, sizeof *is_t);
    if (!is_t)
        st = lp_err_set(err, LP_ENOMEM, "lora: out of memory");
    if (!st)
        st = parse_targets(o->targets, a->net->n_dense, is_t, err);
    if (!st)
        st = layout(a, (size_t)o->rank, o->alpha, is_t, err);
    free(is_t);
    if (st) {
        lp_lora_free(a);
        return st;
    }
    /* A ~ U(-1/sqrt(in), 1/sqrt(in)); B stays 0 */
    lp_rng rng;
    lp_rng_seed(&rng, o->seed);
    for (size_t t = 0; t < a->n_targets; t++) {
        const ft_layer *L = dense_layer(a->net, a->targets[t]);
        float *A = a->lo.block + a->lo.a_off[a->targets[t]];
        double bound = 1.0 / sqrt((double)L->in);
        for (size_t j = 0; j < a->lo.r * L->in; j++)
            A[j] = (float)((2.0 * lp_rng_uniform(&rng) - 1.0) * bound);
    }
    *out = a;
    return LP_OK;
}

lp_status lp_lora_train(const lp_model *base, const lp_frame *data, const lp_finetune_opts *o,
                        lp_lora **out, lp_finetune_stats *stats, lp_err *err)
{
    *out = NULL;
    lp_lora *a = NULL;
    float *X = NULL, *y = NULL;
    size_t n = 0, d = 0;
    lp_status st = lp_lora_new(base, o, &a, err);
    if (!st)
        st = ft_design(base, data, o->label, o->drop, o->n_drop, &X, &y, &n, &d, err);
    if (!st)
        st = ft_net_train(a->net, &a->lo, FT_MODE_LORA, X, y, n, o, stats, err);
    free(X);
    free(y);
    if (st) {
        lp_lora_free(a);
        return st;
    }
    *out = a;
    return LP_OK;
}

size_t lp_lora_rank(const lp_lora *a) { return a->lo.r; }
double lp_lora_alpha(const lp_lora *a) { return a->alpha; }
size_t lp_lora_n_targets(const lp_lora *a) { return a->n_targets; }
size_t lp_lora_target(const lp_lora *a, size_t i) { return i < a->n_targets ? a->targets[i] : 0; }
size_t lp_lora_n_params(const lp_lora *a) { return a->lo.n_block; }
const char *lp_lora_base_sha256(const lp_lora *a) { return a->sha; }
const float *lp_lora_params(const lp_lora *a) { return a->lo.block; }

lp_status lp_lora_set_params(lp_lora *a, const float *p, size_t n, lp_err *err)
{
    if (n != a->lo.n_block)
        return lp_err_set(err, LP_EINVAL, "lora: %zu parameters given, the adapter has %zu", n,
                          a->lo.n_block);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(p[i]))
            return lp_err_set(err, LP_EINVAL, "lora: parameter %zu is not finite", i);
    memcpy(a->lo.block, p, n * sizeof *p);
    return LP_OK;
}

/* ---- the .lpa file -------------------------------------------------------------------------*/

lp_status lp_lora_save(const lp_lora *a, const char *path, lp_err *err)
{
    lp_buf b;
    lp_buf_init(&b);
    lp_buf_u32(&b, LPA_MAGIC);
    lp_buf_u32(&b, LPA_VERSION);
    lp_buf_str(&b, a->sha);
    lp_buf_u32(&b, (uint32_t)a->lo.r);
    lp_buf_f64(&b, a->alpha);
    lp_buf_u32(&b, (uint32_t)a->n_targets);
    for (size_t t = 0; t < a->n_targets; t++) {
        const ft_layer *L = dense_layer(a->net, a->targets[t]);
        lp_buf_u32(&b, (uint32_t)a->targets[t]);
        lp_buf_u64(&b, L->in);
        lp_buf_u64(&b, L->out);
    }
    lp_buf_u64(&b, a->lo.n_block);
    for (size_t i = 0; i < a->lo.n_block; i++)
        lp_buf_f32(&b, a->lo.block[i]);
    if (!b.failed)
        lp_buf_u32(&b, lp_crc32(0, b.data, b.len));
    lp_status st = lp_buf_status(&b, err);
    if (!st)
        st = lp_file_write(path, b.data, b.len, err);
    lp_buf_free(&b);
    return st;
}

lp_status lp_lora_parse(const lp_model *base, const void *data, size_t len, const char *name,
                        lp_lora **out, lp_err *err)
{
    *out = NULL;
    if (!data)
        return lp_err_set(err, LP_EINVAL, "lora: no data");
    lp_reader r;
    lp_reader_init(&r, data, len, name);
    uint32_t magic = 0, ver = 0, rank = 0, nt = 0, crc = 0;
    double alpha = 0;
    char *sha = NULL;
    lp_lora *a = NULL;
    bool *is_t = NULL;
    lp_status st;
    if (len < 8 || (st = lp_reader_u32(&r, &magic, err)) || (st = lp_reader_u32(&r, &ver, err)))
        return lp_err_set(err, LP_EFORMAT, "%s: not a LoRA adapter file (too short)", name);
    if (magic != LPA_MAGIC)
        return lp_err_set(err, LP_EFORMAT, "%s: not a LoRA adapter file (bad magic)", name);
    if (ver != LPA_VERSION)
        return lp_err_set(err, LP_EVERSION, "%s: adapter format version %u, this build reads %u",
                          name, ver, LPA_VERSION);
    if (len < 12)
        return lp_err_set(err, LP_EFORMAT, "%s: truncated", name);
    memcpy(&crc, (const uint8_t *)data + len - 4, 4);
    if (lp_crc32(0, data, len - 4) != crc)
        return lp_err_set(err, LP_EFORMAT, "%s: CRC mismatch (file damaged or truncated)", name);
    r.len = len - 4;
    if ((st = lp_reader_str(&r, &sha, 64, err)))
        return st;
    if (!sha || strlen(sha) != 64) {
        free(sha);
        return lp_err_set(err, LP_EFORMAT, "%s: bad base sha256 field", name);
    }
    if ((st = bind_base(base, &a, err)))
        goto done;
    if (strcmp(sha, a->sha) != 0) {
        st = lp_err_set(err, LP_EINVAL, "%s: adapter was trained for base model sha256 %s, but "
                        "this model's sha256 is %s", name, sha, a->sha);
        goto done;
    }
    if ((st = lp_reader_u32(&r, &rank, err)) || (st = lp_reader_f64(&r, &alpha, err)) ||
        (st = lp_reader_u32(&r, &nt, err)))
        goto done;
    if (rank < 1 || rank > 65536 || !(alpha > 0) || !isfinite(alpha) || nt < 1 ||
        nt > a->net->n_dense) {
        st = lp_err_set(err, LP_EFORMAT, "%s: bad rank %u, alpha %g or target count %u", name,
                        rank, alpha, nt);
        goto done;
    }
    is_t = lp_calloc(a->net->n_dense, sizeof *is_t);
    if (!is_t) {
        st = lp_err_set(err, LP_ENOMEM, "lora: out of memory");
        goto done;
    }
    for (uint32_t t = 0; t < nt; t++) {
        uint32_t k;
        uint64_t in, o;
        if ((st = lp_reader_u32(&r, &k, err)) || (st = lp_reader_u64(&r, &in, err)) ||
            (st = lp_reader_u64(&r, &o, err)))
            goto done;
        const ft_layer *L = k < a->net->n_dense ? dense_layer(a->net, k) : NULL;
        if (!L || L->in != in || L->out != o || is_t[k]) {
            st = lp_err_set(err, LP_EFORMAT, "%s: target %u (%llu -> %llu) does not match the "
                            "base model's dense layers", name, k, (unsigned long long)in,
                            (unsigned long long)o);
            goto done;
        }
        is_t[k] = true;
    }
    if ((st = layout(a, rank, alpha, is_t, err)))
        goto done;
    uint64_t nb = 0;
    if ((st = lp_reader_u64(&r, &nb, err)))
        goto done;
    if (nb != a->lo.n_block || r.len - r.pos != nb * 4) {
        st = lp_err_set(err, LP_EFORMAT, "%s: %llu adapter parameters, the targets need %zu",
                        name, (unsigned long long)nb, a->lo.n_block);
        goto done;
    }
    for (size_t i = 0; !st && i < a->lo.n_block; i++) {
        st = lp_reader_f32(&r, &a->lo.block[i], err);
        if (!st && !isfinite(a->lo.block[i]))
            st = lp_err_set(err, LP_EFORMAT, "%s: adapter parameter %zu is not finite", name, i);
    }
done:
    free(sha);
    free(is_t);
    if (st) {
        lp_lora_free(a);
        return st;
    }
    *out = a;
    return LP_OK;
}

lp_status lp_lora_load(const lp_model *base, const char *path, lp_lora **out, lp_err *err)
{
    *out = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    lp_status st = lp_file_read(path, &data, &len, err);
    if (!st)
        st = lp_lora_parse(base, data, len, path, out, err);
    free(data);
    return st;
}

/* ---- prediction, merge ---------------------------------------------------------------------*/

lp_status lp_lora_predict(const lp_lora *a, const lp_frame *rows, lp_predictions *out,
                          lp_err *err)
{
    memset(out, 0, sizeof *out);
    lp_matf *X = NULL;
    lp_status st = lp_model_design(a->base, rows, &X, err);
    if (st)
        return st;
    float *raw = lp_mallocarray(X->rows * a->net->n_out + 1, sizeof *raw);
    if (!raw)
        st = lp_err_set(err, LP_ENOMEM, "lora: out of memory predicting %zu rows", X->rows);
    if (!st)
        st = ft_net_forward(a->net, &a->lo, X->v, X->rows, raw, err);
    if (!st)
        st = ft_net_predictions(a->net, lp_model_task(a->base), raw, X->rows, out, err);
    free(raw);
    lp_matf_free(X);
    return st;
}

lp_status lp_lora_base_params(const lp_lora *a, float **out, size_t *n, lp_err *err)
{
    *out = lp_mallocarray(a->net->n_params, sizeof **out);
    if (!*out)
        return lp_err_set(err, LP_ENOMEM, "lora: out of memory");
    memcpy(*out, a->net->params, a->net->n_params * sizeof **out);
    *n = a->net->n_params;
    return LP_OK;
}

static lp_status merge(const lp_lora *a, float *params, size_t n, float sign, lp_err *err)
{
    if (!params || n != a->net->n_params)
        return lp_err_set(err, LP_EINVAL, "lora merge: %zu parameters given, the base net has "
                          "%zu", n, a->net->n_params);
    const lp_backend *be = lp_backend_cpu();
    lp_status st = LP_OK;
    for (size_t t = 0; !st && t < a->n_targets; t++) {
        size_t k = a->targets[t];
        const ft_layer *L = dense_layer(a->net, k);
        st = be->lowrank_update(be, L->out, L->in, a->lo.r, sign * a->lo.scale,
                                a->lo.block + a->lo.b_off[k], a->lo.block + a->lo.a_off[k],
                                params + L->w, err);
    }
    return st;
}

lp_status lp_lora_merge(const lp_lora *a, float *params, size_t n, lp_err *err)
{
    return merge(a, params, n, 1.0f, err);
}

lp_status lp_lora_unmerge(const lp_lora *a, float *params, size_t n, lp_err *err)
{
    return merge(a, params, n, -1.0f, err);
}

lp_status lp_lora_save_merged(const lp_lora *a, const char *path, lp_err *err)
{
    float *saved = NULL;
    size_t n = 0;
    lp_buf b;
    lp_buf_init(&b);
    lp_status st = lp_lora_base_params(a, &saved, &n, err);
    if (!st)
        st = merge(a, a->net->params, n, 1.0f, err);
    if (!st)
        st = ft_net_to_blob(a->net, &b, err);
    if (saved) /* the adapter's base view stays frozen */
        memcpy(a->net->params, saved, n * sizeof *saved);
    if (!st) {
        char js[160];
        snprintf(js, sizeof js, "{\"method\":\"lora-merged\",\"base_sha256\":\"%s\",\"rank\":%zu}",
                 a->sha, a->lo.r);
        st = ft_write_model(a->lpm, b.data, b.len, js, path, err);
    }
    free(saved);
    lp_buf_free(&b);
    return st;
}
