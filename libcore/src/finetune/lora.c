/*
 * lora.c - LoRA adapters (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language
 * Models") on the dense layers of an nn model: y = W x + b + (alpha / r) B (A x), W and b
 * frozen, A (r, in) and B (out, r) in the adapter's own block. Creation, training (through
 * ft_net_train), the .lpa file, unmerged prediction, merge and unmerge.
 *
 * The base is an nn model (dense layers) or a multiclass logistic model, seen as one dense
 * layer d -> K (coef, intercept): the same adapter then adds a low-rank delta to its weights.
 *
 * New classes (opts.new_classes, .lpa version 2): label values the base never saw extend the
 * last dense layer to [W; 0] x + [b; c] + (alpha / r) B A x, B (out + m, r) trainable, c (m)
 * fixed at the mean of the base's biases; the base's logits for its own classes are unchanged
 * while B = 0. Only the rows of B of classes present in the training data train: a base
 * class without rows keeps its base logit exactly (without examples, its row would only learn
 * to fire less on the tenant's inputs: forgetting).
 *
 * Invariants: an adapter is bound to one base model (pointer, not owned) whose sha256 it
 * records; its block holds, per target in increasing dense-layer order, A then B, then the
 * new classes' biases c. The .lpa format (docs/model-format.md): "LPLA", u32 version (1 when
 * there are no new classes, else 2), str base sha256 (64 hex), u32 r, f64 alpha,
 * u32 n_targets, per target u32 dense index, u64 in, u64 out; version 2 only: u32 m, m strs
 * (the new class names); u64 n_block, f32 block[n_block]; u32 CRC-32 of every previous byte.
 */
#include "finetune/ft_internal.h"
#include "lepton/linalg.h"
#include "model/family.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LPA_MAGIC 0x414C504Cu /* "LPLA" */
#define LPA_VERSION 2u /* the newest this build reads; 1 is written without new classes */
#define LPA_MAX_NEW 65536u

struct lp_lora {
    const lp_model *base;
    char sha[65];
    lp_lpm *lpm;   /* the base's sections (for a merged save) */
    ft_net *net;   /* the base's dense net, frozen */
    ft_lora lo;
    size_t *targets; /* dense indices, increasing */
    size_t n_targets;
    double alpha;
    char **new_cls; /* (n_names) names of the new classes; n_names == lo.n_new once laid out */
    size_t n_names;
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
    ft_free_names(a->new_cls, a->n_names);
    free(a->lo.support);
    free(a);
}

static lp_status bind_base(const lp_model *base, lp_lora **out, lp_err *err)
{
    *out = NULL;
    if (!base)
        return lp_err_set(err, LP_EINVAL, "lora: the base model must not be NULL");
    const lp_model_kind kind = lp_model_get_kind(base);
    if (kind != LP_MODEL_KIND_NN && kind != LP_MODEL_KIND_LOGISTIC)
        return lp_err_set(err, LP_EUNSUPPORTED, "finetune: method lora applies to nn and "
                          "multiclass logistic models; this model is %s (use %s)",
                          lp_model_kind_name(kind), kind == LP_MODEL_KIND_GBDT ? "boost" : "warm");
    lp_lora *a = lp_calloc(1, sizeof *a);
    if (!a)
        return lp_err_set(err, LP_ENOMEM, "lora: out of memory");
    a->base = base;
    const void *d;
    size_t n;
    lp_status st = ft_snapshot(base, &a->lpm, a->sha, err);
    if (!st && kind == LP_MODEL_KIND_LOGISTIC)
        st = ft_net_from_linear(lp_model_impl(base), &a->net, err);
    else if (!st && !(st = lp_lpm_section(a->lpm, "model", -1, &d, &n, err)))
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

/* Lay out the block for rank r over the chosen targets (is_target (n_dense)) and n_new new
 * classes on the last dense layer (which must then be a target and the net's last layer);
 * checks ranks. */
static lp_status layout(lp_lora *a, size_t r, double alpha, const bool *is_target, size_t n_new,
                        lp_err *err)
{
    size_t off = 0;
    a->n_targets = 0;
    a->lo.ext = SIZE_MAX;
    a->lo.n_new = 0;
    if (n_new) {
        size_t k = a->net->n_dense - 1;
        if (lp_model_task(a->base) == LP_TASK_REGRESSION)
            return lp_err_set(err, LP_EINVAL, "lora: new classes need a classification base; "
                              "this one is a regression model");
        if (!is_target[k])
            return lp_err_set(err, LP_EINVAL, "lora: new classes extend the last dense layer "
                              "(dense%zu): it must be among the targets", k);
        if (a->net->L[a->net->nl - 1].kind != FT_LAYER_DENSE)
            return lp_err_set(err, LP_EUNSUPPORTED, "lora: new classes need a net that ends in "
                              "its dense output layer");
        a->lo.ext = k;
        a->lo.n_new = n_new;
    }
    for (size_t k = 0; k < a->net->n_dense; k++) {
        a->lo.a_off[k] = a->lo.b_off[k] = SIZE_MAX;
        if (!is_target[k])
            continue;
        const ft_layer *L = dense_layer(a->net, k);
        const size_t in = ft_lora_a_width(&a->lo, k, L->in);
        size_t mn = in < L->out ? in : L->out;
        if (r > mn)
            return lp_err_set(err, LP_EINVAL, "lora: rank %zu is larger than dense layer %zu "
                              "(%zu -> %zu) allows: at most min(in, out) = %zu (lower the rank or leave the "
                              "layer out of the targets)", r, k, L->in,
                              L->out, mn);
        a->lo.a_off[k] = off;
        off += r * in;
        a->lo.b_off[k] = off;
        off += (L->out + (k == a->lo.ext ? n_new : 0)) * r;
        a->targets[a->n_targets++] = k;
    }
    a->lo.nb_off = off;
    off += n_new;
    if (a->n_targets == 0)
        return lp_err_set(err, LP_EINVAL, "lora: no target layer");
    if (a->lo.support && (!is_target[0] || a->net->L[0].kind != FT_LAYER_DENSE))
        return lp_err_set(err, LP_EINVAL, "lora: an input support needs the first layer (dense0) "
                          "among the targets");
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

/* The input features non-zero in some row of X (n, d): *sup new (increasing), *ns of them. */
static lp_status find_support(const float *X, size_t n, size_t d, uint32_t **sup, size_t *ns,
                              lp_err *err)
{
    *sup = lp_mallocarray(d ? d : 1, sizeof **sup);
    if (!*sup)
        return lp_err_set(err, LP_ENOMEM, "lora: out of memory");
    *ns = 0;
    for (size_t j = 0; j < d; j++) {
        bool nz = false;
        for (size_t i = 0; i < n && !nz; i++)
            nz = X[i * d + j] != 0.0f;
        if (nz)
            (*sup)[(*ns)++] = (uint32_t)j;
    }
    if (*ns == 0)
        return lp_err_set(err, LP_EINVAL, "lora: every input feature is zero in the training "
                          "rows: no support for the adapter");
    return LP_OK;
}

/* A fresh adapter with n_new new classes named new_cls (taken over: freed on error too); with
 * o->input_support, X (n, d) are the training rows giving the support and A's scale. */
static lp_status create(const lp_model *base, const lp_finetune_opts *o, char **new_cls,
                        size_t n_new, const float *X, size_t n, size_t d, lp_lora **out,
                        lp_err *err)
{
    *out = NULL;
    lp_status st = lp_finetune_opts_check(o, err);
    lp_lora *a = NULL;
    if (st || (st = bind_base(base, &a, err))) {
        ft_free_names(new_cls, n_new);
        return st;
    }
    a->new_cls = new_cls;
    a->n_names = n_new;
    double sup_bound = 0;
    if (o->input_support && !X)
        st = lp_err_set(err, LP_EINVAL, "lora: an input support comes from training rows "
                        "(lp_lora_train)");
    else if (o->input_support)
        st = find_support(X, n, d, &a->lo.support, &a->lo.n_support, err);
    if (!st && o->input_support) {
        /* A ~ U(-b, b), b = sqrt(3 / mean ||x||^2): A x has unit variance on the rows */
        double ss = 0;
        for (size_t i = 0; i < n * d; i++)
            ss += (double)X[i] * X[i];
        sup_bound = ss > 0 ? sqrt(3.0 * (double)n / ss) : 1.0;
    }
    if (st) {
        lp_lora_free(a);
        return st;
    }
    bool *is_t = lp_calloc(a->net->n_dense, sizeof *is_t);
    if (!is_t)
        st = lp_err_set(err, LP_ENOMEM, "lora: out of memory");
    if (!st)
        st = parse_targets(o->targets, a->net->n_dense, is_t, err);
    if (!st)
        st = layout(a, (size_t)o->rank, o->alpha, is_t, n_new, err);
    free(is_t);
    if (st) {
        lp_lora_free(a);
        return st;
    }
    /* new classes: c = the mean of the extended layer's base biases, a prior like the old
     * classes' and not trained: rows of new classes alone say nothing of how often they occur
     * (trained, c learns that every input is new) */
    if (a->lo.n_new) {
        const ft_layer *L = dense_layer(a->net, a->lo.ext);
        double mb = 0;
        for (size_t j = 0; j < L->out; j++)
            mb += a->net->params[L->b + j];
        for (size_t j = 0; j < a->lo.n_new; j++)
            a->lo.block[a->lo.nb_off + j] = (float)(mb / (double)L->out);
    }
    /* A ~ U(-1/sqrt(in), 1/sqrt(in)) (a supported layer: see above); B stays 0 */
    lp_rng rng;
    lp_rng_seed(&rng, o->seed);
    for (size_t t = 0; t < a->n_targets; t++) {
        const size_t k = a->targets[t];
        const ft_layer *L = dense_layer(a->net, k);
        const size_t in = ft_lora_a_width(&a->lo, k, L->in);
        float *A = a->lo.block + a->lo.a_off[k];
        double bound = a->lo.support && k == 0 ? sup_bound : 1.0 / sqrt((double)L->in);
        for (size_t j = 0; j < a->lo.r * in; j++)
            A[j] = (float)((2.0 * lp_rng_uniform(&rng) - 1.0) * bound);
    }
    *out = a;
    return LP_OK;
}

lp_status lp_lora_new(const lp_model *base, const lp_finetune_opts *o, lp_lora **out,
                      lp_err *err)
{
    return create(base, o, NULL, 0, NULL, 0, 0, out, err);
}

lp_status lp_lora_train(const lp_model *base, const lp_frame *data, const lp_finetune_opts *o,
                        lp_lora **out, lp_finetune_stats *stats, lp_err *err)
{
    *out = NULL;
    lp_lora *a = NULL;
    float *X = NULL, *y = NULL;
    size_t n = 0, d = 0, n_new = 0;
    char **new_cls = NULL;
    lp_status st = lp_finetune_opts_check(o, err);
    if (!st && (!base || !data))
        st = lp_err_set(err, LP_EINVAL, "lora: base and data must not be NULL");
    if (!st)
        st = ft_design(base, data, o->label, o->drop, o->n_drop,
                       o->new_classes ? &new_cls : NULL, &n_new, &X, &y, &n, &d, err);
    if (!st)
        st = create(base, o, new_cls, n_new, X, n, d, &a, err);
    uint8_t *rows = NULL;
    if (!st && n_new) { /* B's rows of the classes in the data train; the others stay 0 */
        const size_t k = a->net->n_out + n_new;
        if (!(rows = lp_calloc(k, 1)))
            st = lp_err_set(err, LP_ENOMEM, "lora: out of memory");
        for (size_t i = 0; !st && i < n; i++)
            if (y[i] >= 0 && (size_t)y[i] < k)
                rows[(size_t)y[i]] = 1;
        a->lo.train_rows = rows;
    }
    if (!st)
        st = ft_net_train(a->net, &a->lo, FT_MODE_LORA, X, y, n, o, stats, err);
    if (a)
        a->lo.train_rows = NULL;
    free(rows);
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
size_t lp_lora_n_new_classes(const lp_lora *a) { return a->lo.n_new; }

size_t lp_lora_n_classes(const lp_lora *a)
{
    size_t k = lp_model_n_classes(a->base);
    return k ? k + a->lo.n_new : 0;
}

const char *lp_lora_class(const lp_lora *a, size_t k)
{
    size_t kb = lp_model_n_classes(a->base);
    if (k < kb)
        return lp_model_class(a->base, k);
    return k - kb < a->lo.n_new ? a->new_cls[k - kb] : NULL;
}

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
    const bool v2 = a->lo.n_new || a->lo.support;
    lp_buf_u32(&b, v2 ? 2u : 1u);
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
    if (v2) {
        lp_buf_u32(&b, (uint32_t)a->lo.n_new);
        for (size_t j = 0; j < a->lo.n_new; j++)
            lp_buf_str(&b, a->new_cls[j]);
        lp_buf_u64(&b, a->lo.n_support);
        for (size_t j = 0; j < a->lo.n_support; j++)
            lp_buf_u32(&b, a->lo.support[j]);
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

/* Version 2's new class names into a->new_cls (its count set in a->lo.n_new). */
static lp_status read_new_classes(lp_lora *a, lp_reader *r, const char *name, uint32_t *n_new,
                                  lp_err *err)
{
    lp_status st = lp_reader_u32(r, n_new, err);
    if (st)
        return st;
    if (*n_new == 0)
        return LP_OK;
    if (*n_new > LPA_MAX_NEW)
        return lp_err_set(err, LP_EFORMAT, "%s: bad new class count %u", name, *n_new);
    if (!(a->new_cls = lp_calloc(*n_new, sizeof *a->new_cls)))
        return lp_err_set(err, LP_ENOMEM, "lora: out of memory");
    a->n_names = *n_new;
    a->lo.n_new = *n_new; /* lp_lora_class reads the names while checking them */
    for (uint32_t j = 0; j < *n_new; j++) {
        if ((st = lp_reader_str(r, &a->new_cls[j], 4096, err)))
            return st;
        if (!a->new_cls[j] || !a->new_cls[j][0])
            return lp_err_set(err, LP_EFORMAT, "%s: new class %u has no name", name, j);
        for (size_t k = 0; k < lp_model_n_classes(a->base) + j; k++)
            if (!strcmp(lp_lora_class(a, k), a->new_cls[j]))
                return lp_err_set(err, LP_EFORMAT, "%s: new class '%s' repeats a class", name,
                                  a->new_cls[j]);
    }
    return LP_OK;
}

/* Version 2's input support of dense layer 0 (0 = none). */
static lp_status read_support(lp_lora *a, lp_reader *r, const char *name, lp_err *err)
{
    uint64_t ns = 0;
    lp_status st = lp_reader_u64(r, &ns, err);
    if (st || ns == 0)
        return st;
    const size_t d = a->net->L[0].in;
    if (ns > d || a->net->L[0].kind != FT_LAYER_DENSE)
        return lp_err_set(err, LP_EFORMAT, "%s: input support of %llu features, the first "
                          "layer has %zu", name, (unsigned long long)ns, d);
    if (!(a->lo.support = lp_mallocarray((size_t)ns, sizeof *a->lo.support)))
        return lp_err_set(err, LP_ENOMEM, "lora: out of memory");
    a->lo.n_support = (size_t)ns;
    for (size_t j = 0; j < ns; j++) {
        if ((st = lp_reader_u32(r, &a->lo.support[j], err)))
            return st;
        if (a->lo.support[j] >= d || (j && a->lo.support[j] <= a->lo.support[j - 1]))
            return lp_err_set(err, LP_EFORMAT, "%s: input support entry %zu (%u) is not an "
                              "increasing feature index below %zu", name, j, a->lo.support[j], d);
    }
    return LP_OK;
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
    if (ver < 1 || ver > LPA_VERSION)
        return lp_err_set(err, LP_EVERSION, "%s: adapter format version %u, this build reads 1 "
                          "to %u", name, ver, LPA_VERSION);
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
    uint32_t n_new = 0;
    if (ver >= 2 && ((st = read_new_classes(a, &r, name, &n_new, err)) ||
                     (st = read_support(a, &r, name, err))))
        goto done;
    if ((st = layout(a, rank, alpha, is_t, n_new, err)))
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

lp_status lp_lora_logits(const lp_lora *a, const lp_frame *rows, float **out, size_t *n,
                         size_t *k, lp_err *err)
{
    *out = NULL;
    *n = *k = 0;
    lp_matf *X = NULL;
    lp_status st = lp_model_design(a->base, rows, &X, err);
    if (st)
        return st;
    const size_t kk = a->net->n_out + a->lo.n_new;
    float *raw = lp_mallocarray(X->rows * kk + 1, sizeof *raw);
    if (!raw)
        st = lp_err_set(err, LP_ENOMEM, "lora: out of memory predicting %zu rows", X->rows);
    if (!st)
        st = ft_net_forward(a->net, &a->lo, X->v, X->rows, raw, err);
    if (!st) {
        *out = raw;
        *n = X->rows;
        *k = kk;
    } else {
        free(raw);
    }
    lp_matf_free(X);
    return st;
}

lp_status lp_lora_predict(const lp_lora *a, const lp_frame *rows, lp_predictions *out,
                          lp_err *err)
{
    memset(out, 0, sizeof *out);
    float *raw = NULL;
    size_t n = 0, k = 0;
    lp_status st = lp_lora_logits(a, rows, &raw, &n, &k, err);
    if (!st)
        st = ft_net_predictions(a->net, lp_model_task(a->base), raw, n, k, out, err);
    free(raw);
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
    if (a->lo.n_new)
        return lp_err_set(err, LP_EUNSUPPORTED, "lora merge: the adapter adds %zu classes, which "
                          "the base's layers cannot hold: predict unmerged", a->lo.n_new);
    if (!params || n != a->net->n_params)
        return lp_err_set(err, LP_EINVAL, "lora merge: %zu parameters given, the base net has "
                          "%zu", n, a->net->n_params);
    const lp_backend *be = lp_backend_cpu();
    lp_status st = LP_OK;
    for (size_t t = 0; !st && t < a->n_targets; t++) {
        size_t k = a->targets[t];
        const ft_layer *L = dense_layer(a->net, k);
        if (a->lo.support && k == 0) { /* W[:, S] += sign s B A */
            const size_t ns = a->lo.n_support, r = a->lo.r;
            const float *A = a->lo.block + a->lo.a_off[0], *B = a->lo.block + a->lo.b_off[0];
            for (size_t o = 0; o < L->out; o++)
                for (size_t j = 0; j < ns; j++) {
                    float acc = 0;
                    for (size_t q = 0; q < r; q++)
                        acc += B[o * r + q] * A[q * ns + j];
                    params[L->w + o * L->in + a->lo.support[j]] += sign * a->lo.scale * acc;
                }
            continue;
        }
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
