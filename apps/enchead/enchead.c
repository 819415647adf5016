/*
 * enchead.c - encoder identity, batched embedding and the softmax + centroid head (enchead.h).
 *
 * The head is multinomial logistic regression trained by mini-batch AdamW (Loshchilov & Hutter
 * 2019) with a cosine-decayed step on x * sqrt(d); the scale is folded into W after training so
 * scoring is z = W x + b. Centroids are class means of the unit embeddings, re-normalised, so
 * x . c is a cosine. Single-threaded apart from OpenBLAS inside sgemm.
 */
#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "enchead.h"

#define EH_MAGIC "EHHD"
#define EH_VERSION 1u
#define EH_MAX_K 100000u
#define EH_MAX_D 65536u
#define EH_MIN_STEPS 500u

struct eh_head {
    size_t k, d;
    float *w;    /* (k, d) */
    float *b;    /* (k) */
    float *cent; /* (k, d) unit rows, zero where has[c] == 0 */
    uint8_t *has;
};

lp_status eh_device(const char *prog, const char *device, const char **name, lp_err *err)
{
    if (!device)
        device = "cpu";
    if (strcmp(device, "cuda") && strcmp(device, "cpu") && strcmp(device, "auto"))
        return lp_err_set(err, LP_EINVAL, "--device '%s': expected auto, cpu or cuda", device);
    const lp_backend *be = NULL;
    if (lp_backend_get(device, &be, err) != LP_OK)
        return lp_err_prefix(err, "--device");
    if (strcmp(device, "auto") == 0)
        fprintf(stderr, "%s: --device auto: training on %s\n", prog, be->name);
    *name = be->name;
    return LP_OK;
}

lp_status eh_encoder_open(const char *path, const eh_ident *want, const char *what,
                          const char *backend, lp_encoder **out, eh_ident *id, lp_err *err)
{
    *out = NULL;
    eh_ident me = {0};
    if (!path || !path[0])
        return lp_err_set(err, LP_EINVAL, "%s: no encoder file given", what);
    if (!realpath(path, me.path))
        return lp_err_set(err, LP_ENOTFOUND, "%s: encoder file %s not found (run `lepton encoder "
                          "install` or give the path of the .lpm it wrote)", what, path);
    lp_status st = lp_sha256_file(me.path, me.sha256, err);
    if (st != LP_OK)
        return st;
    if (want && strcmp(want->sha256, me.sha256))
        return lp_err_set(err, LP_EINVAL,
                          "%s: encoder %s has sha256 %.12s..., but the model was trained with "
                          "sha256 %.12s... (%s): give that encoder file or retrain",
                          what, me.path, me.sha256, want->sha256, want->path);
    lp_encoder *e;
    if ((st = lp_encoder_load(me.path, backend ? backend : "cpu", &e, err)) != LP_OK)
        return st;
    /* The apps embed in bfloat16 where the table can (the cpu table with Intel AMX: about 2x
     * faster, cosine to the float32 embeddings ~0.99995, the same CLINC150 accuracy in
     * bench/RESULTS.md), unless LEPTON_ENCODER_PRECISION (read by lp_encoder_load) says. */
    const char *pe = getenv("LEPTON_ENCODER_PRECISION");
    if (!pe || !pe[0]) {
        lp_err ignored;
        lp_err_clear(&ignored);
        lp_encoder_set_precision(e, LP_ENCODER_BF16, &ignored); /* else float32 stays */
    }
    me.dim = lp_encoder_dim(e);
    if (want && want->dim != me.dim) {
        lp_encoder_free(e);
        return lp_err_set(err, LP_EINVAL, "%s: encoder %s gives %zu dims, the model expects %zu",
                          what, me.path, me.dim, want->dim);
    }
    if (id)
        *id = me;
    *out = e;
    return LP_OK;
}

void eh_settings_add(cJSON *obj, const eh_ident *id, double w_tfidf, double min_cos)
{
    cJSON_AddStringToObject(obj, "path", id->path);
    cJSON_AddStringToObject(obj, "sha256", id->sha256);
    cJSON_AddNumberToObject(obj, "dim", (double)id->dim);
    cJSON_AddNumberToObject(obj, "tfidf_weight", w_tfidf);
    cJSON_AddNumberToObject(obj, "min_cosine", min_cos);
}

lp_status eh_settings_parse(const cJSON *e, const char *what, eh_ident *id, double *w_tfidf,
                            double *min_cos, lp_err *err)
{
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(e, "path");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(e, "sha256");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "dim");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(e, "tfidf_weight");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "min_cosine");
    if (!cJSON_IsString(p) || strlen(p->valuestring) >= sizeof id->path ||
        !cJSON_IsString(h) || strlen(h->valuestring) != 64 || !cJSON_IsNumber(d) ||
        !(d->valuedouble >= 1) || !(d->valuedouble <= EH_MAX_D) || !cJSON_IsNumber(w) ||
        !(w->valuedouble >= 0) || !(w->valuedouble <= 1) || !cJSON_IsNumber(c) ||
        !(c->valuedouble >= -1) || !(c->valuedouble <= 1))
        return lp_err_set(err, LP_EFORMAT, "%s: bad encoder settings", what);
    snprintf(id->path, sizeof id->path, "%s", p->valuestring);
    snprintf(id->sha256, sizeof id->sha256, "%s", h->valuestring);
    id->dim = (size_t)d->valuedouble;
    *w_tfidf = w->valuedouble;
    *min_cos = c->valuedouble;
    return LP_OK;
}

int eh_finetune_check(const char *prog, const char *mode, bool has_encoder)
{
    if (!mode)
        return -1;
    if (!has_encoder) {
        fprintf(stderr, "%s: --finetune needs --encoder\n", prog);
        return 2;
    }
    if (strcmp(mode, "head") && strcmp(mode, "lora") && strcmp(mode, "full")) {
        fprintf(stderr, "%s: --finetune '%s': expected head, lora or full\n", prog, mode);
        return 2;
    }
    return -1;
}

int eh_ft_limits(const char *prog, const char *mode, const char *epochs, const char *steps,
                 size_t *ft_epochs, size_t *ft_steps)
{
    const char *txt[2] = {epochs, steps}, *name[2] = {"--ft-epochs", "--ft-steps"};
    size_t *dst[2] = {ft_epochs, ft_steps};
    for (int i = 0; i < 2; i++) {
        if (!txt[i])
            continue;
        char *end;
        unsigned long long v = strtoull(txt[i], &end, 10);
        if (end == txt[i] || *end || v < 1 || v > 1000000) {
            fprintf(stderr, "%s: %s '%s': expected an integer in 1..1000000\n", prog, name[i],
                    txt[i]);
            return 2;
        }
        if (!mode || !strcmp(mode, "head")) {
            fprintf(stderr, "%s: %s needs --finetune lora or full\n", prog, name[i]);
            return 2;
        }
        *dst[i] = (size_t)v;
    }
    return -1;
}

void eh_log_softmax(double *r, size_t k)
{
    double mx = r[0], s = 0;
    for (size_t c = 1; c < k; c++)
        mx = fmax(mx, r[c]);
    for (size_t c = 0; c < k; c++)
        s += exp(r[c] - mx);
    double lse = mx + log(s);
    for (size_t c = 0; c < k; c++)
        r[c] -= lse;
}

lp_status eh_embed(const lp_encoder *enc, const char *const *texts, size_t n, float **out,
                   lp_err *err)
{
    *out = NULL;
    size_t d = lp_encoder_dim(enc), ntr = 0;
    float *x = lp_mallocarray(n ? n * d : 1, sizeof(float));
    if (!x)
        return lp_err_set(err, LP_ENOMEM, "embed: out of memory for %zu texts", n);
    lp_status st = n ? lp_encoder_embed(enc, texts, n, EH_BATCH, x, &ntr, err) : LP_OK;
    if (st != LP_OK) {
        free(x);
        return st;
    }
    if (ntr)
        lp_log_info("embed: %zu of %zu texts truncated to the encoder's %zu tokens", ntr, n,
                    lp_encoder_config_of(enc)->max_len);
    *out = x;
    return LP_OK;
}

eh_head_opts eh_head_opts_default(void)
{
    return (eh_head_opts){.epochs = 30, .batch = 256, .lr = 0.01, .l2 = 1e-4, .seed = 42};
}

lp_status eh_head_opts_check(const eh_head_opts *o, lp_err *err)
{
    if (o->epochs == 0)
        return lp_err_set(err, LP_EINVAL, "head options: epochs must be >= 1");
    if (o->batch == 0)
        return lp_err_set(err, LP_EINVAL, "head options: batch must be >= 1");
    if (!(o->lr > 0) || !isfinite(o->lr))
        return lp_err_set(err, LP_EINVAL, "head options: lr %g must be a positive number", o->lr);
    if (!(o->l2 >= 0) || !isfinite(o->l2))
        return lp_err_set(err, LP_EINVAL, "head options: l2 %g must be >= 0", o->l2);
    return LP_OK;
}

void eh_head_free(eh_head *h)
{
    if (!h)
        return;
    free(h->w);
    free(h->b);
    free(h->cent);
    free(h->has);
    free(h);
}

size_t eh_head_dim(const eh_head *h)
{
    return h->d;
}

size_t eh_head_classes(const eh_head *h)
{
    return h->k;
}

static eh_head *head_alloc(size_t k, size_t d)
{
    eh_head *h = lp_calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->k = k;
    h->d = d;
    h->w = lp_calloc(k * d, sizeof(float));
    h->b = lp_calloc(k, sizeof(float));
    h->cent = lp_calloc(k * d, sizeof(float));
    h->has = lp_calloc(k, 1);
    if (!h->w || !h->b || !h->cent || !h->has) {
        eh_head_free(h);
        return NULL;
    }
    return h;
}

static void adamw(float *p, const float *g, float *m, float *v, size_t len, double lr, double l2,
                  double bc1, double bc2)
{
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    for (size_t j = 0; j < len; j++) {
        m[j] = (float)(b1 * m[j] + (1 - b1) * g[j]);
        v[j] = (float)(b2 * v[j] + (1 - b2) * (double)g[j] * g[j]);
        double step = (m[j] / bc1) / (sqrt(v[j] / bc2) + eps);
        p[j] = (float)(p[j] - lr * (step + l2 * p[j]));
    }
}

lp_status eh_head_fit(const float *x, const int32_t *y, size_t n, size_t d, size_t k,
                      const eh_head_opts *opts, eh_head **out, lp_err *err)
{
    *out = NULL;
    eh_head_opts o = opts ? *opts : eh_head_opts_default();
    lp_status st = eh_head_opts_check(&o, err);
    if (st != LP_OK)
        return st;
    if (n == 0 || k < 2 || d == 0 || k > EH_MAX_K || d > EH_MAX_D)
        return lp_err_set(err, LP_EINVAL, "head: %zu rows, %zu classes, %zu dims: need rows, "
                          "2..%u classes and 1..%u dims", n, k, d, EH_MAX_K, EH_MAX_D);
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || (size_t)y[i] >= k)
            return lp_err_set(err, LP_EINVAL, "head: row %zu: label %d outside [0, %zu)", i,
                              (int)y[i], k);
    size_t bs = o.batch < n ? o.batch : n;
    eh_head *h = head_alloc(k, d);
    size_t *idx = lp_mallocarray(n, sizeof(size_t));
    float *xb = lp_mallocarray(bs * d, sizeof(float)), *z = lp_mallocarray(bs * k, sizeof(float));
    float *gw = lp_mallocarray(k * d, sizeof(float)), *gb = lp_mallocarray(k, sizeof(float));
    float *mw = lp_calloc(k * d, sizeof(float)), *vw = lp_calloc(k * d, sizeof(float));
    float *mb = lp_calloc(k, sizeof(float)), *vb = lp_calloc(k, sizeof(float));
    if (!h || !idx || !xb || !z || !gw || !gb || !mw || !vw || !mb || !vb) {
        st = lp_err_set(err, LP_ENOMEM, "head: out of memory (%zu x %zu)", k, d);
        goto done;
    }
    const float s = sqrtf((float)d);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    lp_rng rng;
    lp_rng_seed(&rng, o.seed);
    /* small sets get more passes: at least EH_MIN_STEPS Adam steps in all */
    size_t steps_per = (n + bs - 1) / bs, epochs = o.epochs;
    if (steps_per * epochs < EH_MIN_STEPS)
        epochs = (EH_MIN_STEPS + steps_per - 1) / steps_per;
    size_t total = steps_per * epochs, t = 0;
    for (size_t ep = 0; ep < epochs; ep++) {
        lp_rng_shuffle_idx(&rng, idx, n);
        for (size_t a = 0; a < n; a += bs) {
            size_t nb = n - a < bs ? n - a : bs;
            for (size_t r = 0; r < nb; r++)
                for (size_t j = 0; j < d; j++)
                    xb[r * d + j] = s * x[idx[a + r] * d + j];
            /* z (nb, k) = xb (nb, d) W^T (d, k) + b */
            for (size_t r = 0; r < nb; r++)
                memcpy(z + r * k, h->b, k * sizeof(float));
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)k, (int)d, 1.0f,
                        xb, (int)d, h->w, (int)d, 1.0f, z, (int)k);
            /* the cpu table's softmax (vectorised exp); its checks cannot fail here */
            lp_backend_cpu()->softmax_rows(lp_backend_cpu(), nb, k, 1, NULL, z, z, NULL);
            /* dL/dz = (p - onehot(y)) / nb */
            memset(gb, 0, k * sizeof(float));
            for (size_t r = 0; r < nb; r++) {
                z[r * k + (size_t)y[idx[a + r]]] -= 1.0f;
                for (size_t c = 0; c < k; c++)
                    gb[c] += (z[r * k + c] /= (float)nb);
            }
            /* gW (k, d) = dz^T (k, nb) xb (nb, d) */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)k, (int)d, (int)nb, 1.0f, z,
                        (int)k, xb, (int)d, 0.0f, gw, (int)d);
            t++;
            double lr = o.lr * 0.5 * (1 + cos(M_PI * (double)(t - 1) / (double)total));
            double bc1 = 1 - pow(0.9, (double)t), bc2 = 1 - pow(0.999, (double)t);
            adamw(h->w, gw, mw, vw, k * d, lr, o.l2, bc1, bc2);
            adamw(h->b, gb, mb, vb, k, lr, 0, bc1, bc2);
        }
    }
    for (size_t j = 0; j < k * d; j++)
        h->w[j] *= s;
    /* centroids: class means, re-normalised */
    for (size_t i = 0; i < n; i++) {
        float *c = h->cent + (size_t)y[i] * d;
        h->has[y[i]] = 1;
        for (size_t j = 0; j < d; j++)
            c[j] += x[i * d + j];
    }
    for (size_t c = 0; c < k; c++) {
        double nn = 0;
        for (size_t j = 0; j < d; j++)
            nn += (double)h->cent[c * d + j] * h->cent[c * d + j];
        nn = sqrt(nn);
        for (size_t j = 0; j < d && nn > 0; j++)
            h->cent[c * d + j] = (float)(h->cent[c * d + j] / nn);
    }
    *out = h;
    h = NULL;
done:
    eh_head_free(h);
    free(idx);
    free(xb);
    free(z);
    free(gw);
    free(gb);
    free(mw);
    free(vw);
    free(mb);
    free(vb);
    return st;
}

/* out (n, k) = a (n, d) B^T (d, k) [+ bias], in blocks of rows so the float scratch stays small;
 * written as doubles. */
static void scores(const float *a, size_t n, size_t d, const float *bm, const float *bias,
                   size_t k, double *out)
{
    enum { BLOCK = 256 };
    float z[BLOCK * 64];
    for (size_t r0 = 0; r0 < n; r0 += BLOCK) {
        size_t nb = n - r0 < BLOCK ? n - r0 : BLOCK;
        for (size_t c0 = 0; c0 < k; c0 += 64) {
            size_t kb = k - c0 < 64 ? k - c0 : 64;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)nb, (int)kb, (int)d, 1.0f,
                        a + r0 * d, (int)d, bm + c0 * d, (int)d, 0.0f, z, (int)kb);
            for (size_t r = 0; r < nb; r++)
                for (size_t c = 0; c < kb; c++)
                    out[(r0 + r) * k + c0 + c] = (double)z[r * kb + c] + (bias ? bias[c0 + c] : 0);
        }
    }
}

void eh_head_logprob(const eh_head *h, const float *x, size_t n, double *z)
{
    size_t k = h->k;
    scores(x, n, h->d, h->w, h->b, k, z);
    for (size_t i = 0; i < n; i++)
        eh_log_softmax(z + i * k, k);
}

void eh_head_max_cos(const eh_head *h, const float *x, size_t n, long skip, double *cos)
{
    size_t k = h->k;
    double row[64];
    for (size_t i = 0; i < n; i++) {
        double best = -1;
        for (size_t c0 = 0; c0 < k; c0 += 64) {
            size_t kb = k - c0 < 64 ? k - c0 : 64;
            scores(x + i * h->d, 1, h->d, h->cent + c0 * h->d, NULL, kb, row);
            for (size_t c = 0; c < kb; c++)
                if (h->has[c0 + c] && (long)(c0 + c) != skip && row[c] > best)
                    best = row[c];
        }
        cos[i] = best;
    }
}

void eh_head_save(const eh_head *h, lp_buf *b)
{
    lp_buf_put(b, EH_MAGIC, 4);
    lp_buf_u32(b, EH_VERSION);
    lp_buf_u64(b, h->k);
    lp_buf_u64(b, h->d);
    lp_buf_put(b, h->has, h->k);
    for (size_t j = 0; j < h->k * h->d; j++)
        lp_buf_f32(b, h->w[j]);
    for (size_t c = 0; c < h->k; c++)
        lp_buf_f32(b, h->b[c]);
    for (size_t j = 0; j < h->k * h->d; j++)
        lp_buf_f32(b, h->cent[j]);
}

lp_status eh_head_load(lp_reader *r, eh_head **out, lp_err *err)
{
    *out = NULL;
    char magic[4];
    uint32_t ver;
    uint64_t k, d;
    lp_status st;
    if ((st = lp_reader_get(r, magic, 4, err)) != LP_OK ||
        (st = lp_reader_u32(r, &ver, err)) != LP_OK || (st = lp_reader_u64(r, &k, err)) != LP_OK ||
        (st = lp_reader_u64(r, &d, err)) != LP_OK)
        return st;
    if (memcmp(magic, EH_MAGIC, 4))
        return lp_err_set(err, LP_EFORMAT, "%s: not an encoder head (magic)", r->what);
    if (ver != EH_VERSION)
        return lp_err_set(err, LP_EVERSION, "%s: encoder head version %u, expected %u", r->what,
                          ver, EH_VERSION);
    if (k < 2 || k > EH_MAX_K || d == 0 || d > EH_MAX_D)
        return lp_err_set(err, LP_EFORMAT, "%s: encoder head %llu x %llu out of range", r->what,
                          (unsigned long long)k, (unsigned long long)d);
    if ((r->len - r->pos) / 4 < k * d * 2 + k)
        return lp_err_set(err, LP_EFORMAT, "%s: encoder head truncated", r->what);
    eh_head *h = head_alloc(k, d);
    if (!h)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
    st = lp_reader_get(r, h->has, k, err);
    for (size_t j = 0; st == LP_OK && j < k * d; j++)
        st = lp_reader_f32(r, &h->w[j], err);
    for (size_t c = 0; st == LP_OK && c < k; c++)
        st = lp_reader_f32(r, &h->b[c], err);
    for (size_t j = 0; st == LP_OK && j < k * d; j++)
        st = lp_reader_f32(r, &h->cent[j], err);
    for (size_t j = 0; st == LP_OK && j < k * d; j++)
        if (!isfinite(h->w[j]) || !isfinite(h->cent[j]))
            st = lp_err_set(err, LP_EFORMAT, "%s: encoder head holds a non-finite weight",
                            r->what);
    if (st != LP_OK) {
        eh_head_free(h);
        return st;
    }
    *out = h;
    return LP_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Value at share q of sorted v (n): rejecting rows strictly below it rejects about q of them;
 * q == 0 gives -INFINITY (no threshold). */
static double quantile_of(const double *v, size_t n, double q)
{
    if (q <= 0 || n == 0)
        return -INFINITY;
    size_t i = (size_t)floor(q * (double)n);
    return v[i < n ? i : n - 1];
}

lp_status eh_fit_thresholds(const double *conf, const double *cos, const uint8_t *gold_oos,
                            const uint8_t *right, const uint8_t *pre_oos, size_t n,
                            double max_in_loss, double target_in_recall, double *tau_p,
                            double *tau_c, lp_err *err)
{
    *tau_p = *tau_c = -INFINITY;
    double *sp = lp_mallocarray(n + 1, sizeof(double)), *sc = lp_mallocarray(n + 1, sizeof(double));
    if (!sp || !sc) {
        free(sp);
        free(sc);
        return lp_err_set(err, LP_ENOMEM, "thresholds: out of memory");
    }
    size_t n_in = 0, n_oos = 0;
    for (size_t i = 0; i < n; i++) {
        if (gold_oos[i]) {
            n_oos++;
            continue;
        }
        sp[n_in] = conf[i];
        sc[n_in++] = cos[i];
    }
    qsort(sp, n_in, sizeof(double), cmp_double);
    qsort(sc, n_in, sizeof(double), cmp_double);
    if (n_in && n_oos) {
        double best_rec = -1, best_acc = -1, acc0 = -1;
        for (int a = 0; a <= 60; a++) {
            double tp = quantile_of(sp, n_in, a * 0.005);
            for (int c = 0; c <= 60; c++) {
                double tc = quantile_of(sc, n_in, c * 0.005);
                size_t ok = 0, caught = 0;
                for (size_t i = 0; i < n; i++) {
                    bool rej = pre_oos[i] || conf[i] < tp || cos[i] < tc;
                    if (gold_oos[i])
                        caught += rej;
                    else
                        ok += !rej && right[i];
                }
                double acc = (double)ok / (double)n_in, rec = (double)caught / (double)n_oos;
                if (acc0 < 0)
                    acc0 = acc; /* a = c = 0: no threshold */
                if (acc < acc0 - max_in_loss)
                    continue;
                if (rec > best_rec || (rec == best_rec && acc > best_acc)) {
                    best_rec = rec;
                    best_acc = acc;
                    *tau_p = tp;
                    *tau_c = tc;
                }
            }
        }
    } else if (n_in) {
        /* the largest equal quantile whose union keeps target_in_recall of the in-scope rows
         * (target_in_recall > 0), else whose in-scope accuracy stays within max_in_loss */
        double acc0 = -1;
        for (int a = 0; a <= 300; a++) {
            double tp = quantile_of(sp, n_in, a * 0.001), tc = quantile_of(sc, n_in, a * 0.001);
            size_t kept = 0, ok = 0;
            for (size_t i = 0; i < n; i++) {
                bool keep = !gold_oos[i] && !(pre_oos[i] || conf[i] < tp || cos[i] < tc);
                kept += keep;
                ok += keep && right[i];
            }
            double acc = (double)ok / (double)n_in;
            if (acc0 < 0)
                acc0 = acc;
            if (target_in_recall > 0 ? (double)kept < target_in_recall * (double)n_in
                                     : acc < acc0 - max_in_loss)
                break;
            *tau_p = tp;
            *tau_c = tc;
        }
    }
    /* finite stand-ins for "no threshold": conf >= 0 and cos >= -1 always */
    *tau_p = fmax(*tau_p, 0);
    *tau_c = fmax(*tau_c, -1);
    free(sp);
    free(sc);
    return LP_OK;
}
