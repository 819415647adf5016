/*
 * vectorize.c - TF-IDF and hashing vectorizers with scikit-learn 1.2's definitions
 * (TfidfVectorizer = CountVectorizer + TfidfTransformer, and HashingVectorizer).
 *
 * TF-IDF fit: count terms per document, keep those whose document frequency passes
 * min_df/max_df, then (max_features) the most frequent by total count with ties broken as
 * numpy 1.24's (unstable) introsort argsort breaks them in sklearn, then number the vocabulary in code-point order. idf = ln((1 + n) / (1 + df)) + 1 (smooth) or
 * ln(n / df) + 1. Transform: tf (optionally 1 + ln tf) * idf, then the row norm.
 * HASH: each term adds sign(h) (or 1) at column |h| mod n_features, then the row norm.
 * Fitted vectorizers are immutable; transform is thread-safe.
 */
#include "text/text_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TEXTVEC_MAGIC 0x43565854u /* "TXVC" */
#define TEXTVEC_VERSION 1u

struct lp_textvec {
    lp_textvec_opts o;
    char *pattern;
    lp_analyzer *an;
    lp_strmap vocab; /* term -> column, ids in column order */
    double *idf;     /* (n_terms,) */
};

lp_textvec_opts lp_textvec_opts_default(void)
{
    return (lp_textvec_opts){.kind = LP_TEXTVEC_KIND_TFIDF,
                             .analyzer = lp_analyzer_opts_default(),
                             .norm = LP_NORM_L2,
                             .min_df = 1,
                             .min_df_frac = 0,
                             .max_df_frac = 1,
                             .max_df = 0,
                             .max_features = 0,
                             .use_idf = true,
                             .smooth_idf = true,
                             .sublinear_tf = false,
                             .n_features = 1u << 20,
                             .alternate_sign = true};
}

lp_status lp_textvec_opts_check(const lp_textvec_opts *o, lp_err *err)
{
    if (o->kind > LP_TEXTVEC_KIND_HASH)
        return lp_err_set(err, LP_EINVAL, "text vectorizer: kind %d is not tfidf or hash",
                          (int)o->kind);
    if (o->norm > LP_NORM_NONE)
        return lp_err_set(err, LP_EINVAL, "text vectorizer: norm %d is not l2, l1 or none",
                          (int)o->norm);
    if (!(o->min_df_frac >= 0 && o->min_df_frac <= 1) ||
        !(o->max_df_frac >= 0 && o->max_df_frac <= 1))
        return lp_err_set(err, LP_EINVAL,
                          "text vectorizer: min_df_frac %g / max_df_frac %g must be in [0, 1]",
                          o->min_df_frac, o->max_df_frac);
    if (o->kind == LP_TEXTVEC_KIND_HASH && (o->n_features < 1 || o->n_features > INT32_MAX))
        return lp_err_set(err, LP_EINVAL, "text vectorizer: n_features %u must be in [1, 2^31)",
                          o->n_features);
    return lp_analyzer_opts_check(&o->analyzer, err);
}

void lp_textvec_free(lp_textvec *v)
{
    if (!v)
        return;
    lp_analyzer_free(v->an);
    lp_strmap_free(&v->vocab);
    free(v->idf);
    free(v->pattern);
    free(v);
}

static lp_status textvec_alloc(const lp_textvec_opts *opts, lp_textvec **out, lp_err *err)
{
    *out = NULL;
    lp_status st = lp_textvec_opts_check(opts, err);
    if (st)
        return st;
    lp_textvec *v = calloc(1, sizeof *v);
    if (!v)
        return lp_err_set(err, LP_ENOMEM, "text vectorizer: out of memory");
    v->o = *opts;
    lp_strmap_init(&v->vocab);
    st = lp_analyzer_new(&opts->analyzer, &v->an, err);
    if (st) {
        free(v);
        return st;
    }
    v->o.analyzer = *lp_analyzer_opts_of(v->an);
    *out = v;
    return LP_OK;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* Sort context for vocabulary ordering (qsort has no user pointer in C11). */
typedef struct term_ref {
    const char *term;
    size_t id;
    double total;
} term_ref;

static int cmp_term(const void *a, const void *b)
{
    return strcmp(((const term_ref *)a)->term, ((const term_ref *)b)->term);
}

/* numpy 1.24's argsort(kind="quicksort") on int64 keys: introsort (median-of-3 quicksort,
 * insertion sort for runs of at most 16, heapsort past depth 2 floor(log2 n)), reproduced step by
 * step so that max_features breaks ties among equal counts exactly as sklearn's
 * (-tfs).argsort()[:limit] does. It is not stable; only this exact sequence matches. */
static void np_aheapsort(const int64_t *v, size_t *tosort, size_t n)
{
    size_t *a = tosort - 1, i, j, l, tmp;
    for (l = n >> 1; l > 0; --l) {
        tmp = a[l];
        for (i = l, j = l << 1; j <= n;) {
            if (j < n && v[a[j]] < v[a[j + 1]])
                j += 1;
            if (v[tmp] < v[a[j]]) {
                a[i] = a[j];
                i = j;
                j += j;
            } else {
                break;
            }
        }
        a[i] = tmp;
    }
    for (; n > 1;) {
        tmp = a[n];
        a[n] = a[1];
        n -= 1;
        for (i = 1, j = 2; j <= n;) {
            if (j < n && v[a[j]] < v[a[j + 1]])
                j++;
            if (v[tmp] < v[a[j]]) {
                a[i] = a[j];
                i = j;
                j += j;
            } else {
                break;
            }
        }
        a[i] = tmp;
    }
}

#define NP_SWAP(x, y)      \
    do {                   \
        size_t t_ = (x);   \
        (x) = (y);         \
        (y) = t_;          \
    } while (0)

static void np_aquicksort(const int64_t *v, size_t *tosort, size_t num)
{
    if (num < 2)
        return;
    size_t *pl = tosort, *pr = tosort + num - 1;
    size_t *stack[128], **sptr = stack;
    size_t *pm, *pi, *pj, *pk, vi;
    int depth[64], *psdepth = depth;
    int msb = 0;
    for (size_t k = num; k > 1; k >>= 1)
        msb++;
    int cdepth = msb * 2;
    int64_t vp;
    for (;;) {
        if (cdepth < 0) {
            np_aheapsort(v, pl, (size_t)(pr - pl) + 1);
            goto stack_pop;
        }
        while (pr - pl > 16) {
            pm = pl + ((pr - pl) >> 1);
            if (v[*pm] < v[*pl])
                NP_SWAP(*pm, *pl);
            if (v[*pr] < v[*pm])
                NP_SWAP(*pr, *pm);
            if (v[*pm] < v[*pl])
                NP_SWAP(*pm, *pl);
            vp = v[*pm];
            pi = pl;
            pj = pr - 1;
            NP_SWAP(*pm, *pj);
            for (;;) {
                do
                    ++pi;
                while (v[*pi] < vp);
                do
                    --pj;
                while (vp < v[*pj]);
                if (pi >= pj)
                    break;
                NP_SWAP(*pi, *pj);
            }
            pk = pr - 1;
            NP_SWAP(*pi, *pk);
            if (pi - pl < pr - pi) {
                *sptr++ = pi + 1;
                *sptr++ = pr;
                pr = pi - 1;
            } else {
                *sptr++ = pl;
                *sptr++ = pi - 1;
                pl = pi + 1;
            }
            *psdepth++ = --cdepth;
        }
        for (pi = pl + 1; pi <= pr; ++pi) {
            vi = *pi;
            vp = v[vi];
            pj = pi;
            pk = pi - 1;
            while (pj > pl && vp < v[*pk])
                *pj-- = *pk--;
            *pj = vi;
        }
    stack_pop:
        if (sptr == stack)
            break;
        pr = *(--sptr);
        pl = *(--sptr);
        cdepth = *(--psdepth);
    }
}

/* Keep the max_features most frequent of refs[0..kept) (alphabetical on entry), numpy's way. */
static lp_status limit_features(term_ref *refs, size_t kept, size_t limit, lp_err *err)
{
    int64_t *key = lp_mallocarray(kept, sizeof(int64_t));
    size_t *order = lp_mallocarray(kept, sizeof(size_t));
    term_ref *tmp = lp_mallocarray(limit, sizeof(term_ref));
    if (!key || !order || !tmp) {
        free(key);
        free(order);
        free(tmp);
        return lp_err_set(err, LP_ENOMEM, "tfidf fit: out of memory");
    }
    for (size_t i = 0; i < kept; i++) {
        key[i] = -(int64_t)refs[i].total;
        order[i] = i;
    }
    np_aquicksort(key, order, kept);
    for (size_t i = 0; i < limit; i++)
        tmp[i] = refs[order[i]];
    memcpy(refs, tmp, limit * sizeof *refs);
    free(key);
    free(order);
    free(tmp);
    return LP_OK;
}

static lp_status fit_tfidf(lp_textvec *v, const char *const *docs, size_t n, lp_err *err)
{
    lp_strmap all;
    lp_strmap_init(&all);
    lp_terms t = {0};
    size_t *df = NULL, *ids = NULL, ids_cap = 0, cap = 0;
    double *tot = NULL;
    term_ref *refs = NULL;
    lp_status st = LP_OK;
    for (size_t d = 0; d < n && !st; d++) {
        lp_terms_clear(&t);
        if (docs[d]) {
            st = lp_analyzer_run(v->an, docs[d], strlen(docs[d]), &t, err);
            if (st) {
                lp_err_prefix(err, "document %zu", d);
                break;
            }
        }
        if (t.n > ids_cap) {
            size_t *ni = lp_reallocarray(ids, t.n, sizeof(size_t));
            if (!ni) {
                st = lp_err_set(err, LP_ENOMEM, "tfidf fit: out of memory");
                break;
            }
            ids = ni;
            ids_cap = t.n;
        }
        for (size_t i = 0; i < t.n && !st; i++) {
            if (lp_strmap_add(&all, t.v[i], strlen(t.v[i]), &ids[i], NULL)) {
                st = lp_err_set(err, LP_ENOMEM, "tfidf fit: out of memory");
                break;
            }
            if (all.n > cap) {
                size_t nc = cap ? 2 * cap : 1024;
                size_t *nd = lp_reallocarray(df, nc, sizeof(size_t));
                if (nd)
                    df = nd;
                double *nt = lp_reallocarray(tot, nc, sizeof(double));
                if (nt)
                    tot = nt;
                if (!nd || !nt) {
                    st = lp_err_set(err, LP_ENOMEM, "tfidf fit: out of memory");
                    break;
                }
                memset(df + cap, 0, (nc - cap) * sizeof(size_t));
                memset(tot + cap, 0, (nc - cap) * sizeof(double));
                cap = nc;
            }
            tot[ids[i]] += 1;
        }
        if (st)
            break;
        if (t.n > 1) /* ids is NULL for a document without terms */
            qsort(ids, t.n, sizeof(size_t), cmp_size);
        for (size_t i = 0; i < t.n; i++)
            if (i == 0 || ids[i] != ids[i - 1])
                df[ids[i]]++;
    }
    lp_terms_free(&t);
    free(ids);
    if (st)
        goto done;

    refs = lp_mallocarray(all.n ? all.n : 1, sizeof *refs);
    if (!refs) {
        st = lp_err_set(err, LP_ENOMEM, "tfidf fit: out of memory");
        goto done;
    }
    size_t kept = 0;
    double lo = v->o.min_df_frac * (double)n, hi = v->o.max_df_frac * (double)n;
    for (size_t id = 0; id < all.n; id++) {
        double f = (double)df[id];
        if (df[id] < v->o.min_df || f < lo || f > hi || (v->o.max_df && df[id] > v->o.max_df))
            continue;
        refs[kept++] = (term_ref){all.keys[id], id, tot[id]};
    }
    if (v->o.max_features && kept > v->o.max_features) {
        qsort(refs, kept, sizeof *refs, cmp_term);
        st = limit_features(refs, kept, v->o.max_features, err);
        if (st)
            goto done;
        kept = v->o.max_features;
    }
    if (!kept) {
        st = lp_err_set(err, LP_EINVAL,
                        "tfidf fit: after pruning, no terms remain (%zu documents, %zu distinct "
                        "terms); lower min_df or raise max_df",
                        n, all.n);
        goto done;
    }
    qsort(refs, kept, sizeof *refs, cmp_term);
    v->idf = lp_mallocarray(kept, sizeof(double));
    if (!v->idf) {
        st = lp_err_set(err, LP_ENOMEM, "tfidf fit: out of memory");
        goto done;
    }
    for (size_t j = 0; j < kept; j++) {
        size_t col;
        if (lp_strmap_add(&v->vocab, refs[j].term, strlen(refs[j].term), &col, NULL)) {
            st = lp_err_set(err, LP_ENOMEM, "tfidf fit: out of memory");
            goto done;
        }
        double dfj = (double)df[refs[j].id], nd = (double)n;
        if (!v->o.use_idf)
            v->idf[j] = 1;
        else if (v->o.smooth_idf)
            v->idf[j] = log((1 + nd) / (1 + dfj)) + 1;
        else
            v->idf[j] = log(nd / dfj) + 1;
    }
done:
    free(refs);
    free(df);
    free(tot);
    lp_strmap_free(&all);
    return st;
}

lp_status lp_textvec_fit(const lp_textvec_opts *opts, const char *const *docs, size_t n,
                         lp_textvec **out, lp_err *err)
{
    lp_textvec *v;
    lp_status st = textvec_alloc(opts, &v, err);
    if (st)
        return st;
    if (opts->kind == LP_TEXTVEC_KIND_TFIDF) {
        if (!n) {
            lp_textvec_free(v);
            return lp_err_set(err, LP_EINVAL, "tfidf fit: no documents");
        }
        st = fit_tfidf(v, docs, n, err);
        if (st) {
            lp_textvec_free(v);
            return st;
        }
    }
    *out = v;
    return LP_OK;
}

size_t lp_textvec_n_features(const lp_textvec *v)
{
    return v->o.kind == LP_TEXTVEC_KIND_HASH ? v->o.n_features : v->vocab.n;
}

const char *lp_textvec_term(const lp_textvec *v, size_t j)
{
    return v->o.kind == LP_TEXTVEC_KIND_TFIDF && j < v->vocab.n ? v->vocab.keys[j] : NULL;
}

double lp_textvec_idf(const lp_textvec *v, size_t j)
{
    return v->o.kind == LP_TEXTVEC_KIND_TFIDF && j < v->vocab.n ? v->idf[j] : NAN;
}

long lp_textvec_find(const lp_textvec *v, const char *term)
{
    return lp_strmap_find(&v->vocab, term, strlen(term));
}

const lp_textvec_opts *lp_textvec_opts_of(const lp_textvec *v) { return &v->o; }

/* The (column, value) pairs of one document before normalisation; *n gets the count. */
static lp_status doc_entries(const lp_textvec *v, const char *doc, lp_terms *t, lp_colval **e,
                             size_t *ecap, size_t *n, lp_err *err)
{
    *n = 0;
    lp_terms_clear(t);
    if (!doc)
        return LP_OK;
    lp_status st = lp_analyzer_run(v->an, doc, strlen(doc), t, err);
    if (st)
        return st;
    if (t->n > *ecap) {
        lp_colval *ne = lp_reallocarray(*e, t->n, sizeof **e);
        if (!ne)
            return lp_err_set(err, LP_ENOMEM, "text transform: out of memory");
        *e = ne;
        *ecap = t->n;
    }
    size_t k = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (v->o.kind == LP_TEXTVEC_KIND_HASH) {
            uint32_t col;
            int sign;
            lp_hash_feature(t->v[i], strlen(t->v[i]), v->o.n_features, &col, &sign);
            (*e)[k++] = (lp_colval){col, v->o.alternate_sign ? sign : 1};
        } else {
            long col = lp_strmap_find(&v->vocab, t->v[i], strlen(t->v[i]));
            if (col >= 0)
                (*e)[k++] = (lp_colval){(uint32_t)col, 1};
        }
    }
    k = lp_colval_merge(*e, k);
    if (v->o.kind == LP_TEXTVEC_KIND_TFIDF) {
        for (size_t i = 0; i < k; i++) {
            double tf = (*e)[i].v;
            if (v->o.sublinear_tf)
                tf = 1 + log(tf);
            (*e)[i].v = tf * v->idf[(*e)[i].col];
        }
    }
    double norm = 0;
    if (v->o.norm == LP_NORM_L2) {
        for (size_t i = 0; i < k; i++)
            norm += (*e)[i].v * (*e)[i].v;
        norm = sqrt(norm);
    } else if (v->o.norm == LP_NORM_L1) {
        for (size_t i = 0; i < k; i++)
            norm += fabs((*e)[i].v);
    }
    if (norm > 0)
        for (size_t i = 0; i < k; i++)
            (*e)[i].v /= norm;
    *n = k;
    return LP_OK;
}

lp_status lp_textvec_transform(const lp_textvec *v, const char *const *docs, size_t n,
                               lp_csr **out, lp_err *err)
{
    *out = NULL;
    lp_csrb b;
    if (lp_csrb_init(&b, n, lp_textvec_n_features(v)))
        return lp_err_set(err, LP_ENOMEM, "text transform: out of memory");
    lp_terms t = {0};
    lp_colval *e = NULL;
    size_t ecap = 0, k;
    lp_status st = LP_OK;
    for (size_t d = 0; d < n && !st; d++) {
        st = doc_entries(v, docs[d], &t, &e, &ecap, &k, err);
        if (st) {
            lp_err_prefix(err, "document %zu", d);
            break;
        }
        for (size_t i = 0; i < k; i++)
            lp_csrb_push(&b, e[i].col, (float)e[i].v);
        lp_csrb_end_row(&b);
    }
    lp_terms_free(&t);
    free(e);
    if (st) {
        lp_csrb_free(&b);
        return st;
    }
    *out = lp_csrb_finish(&b);
    if (!*out)
        return lp_err_set(err, LP_ENOMEM, "text transform: out of memory");
    return LP_OK;
}

/* ---- serialisation --------------------------------------------------------------------------*/
void lp_textvec_save(const lp_textvec *v, lp_buf *b)
{
    const lp_textvec_opts *o = &v->o;
    lp_buf_u32(b, TEXTVEC_MAGIC);
    lp_buf_u32(b, TEXTVEC_VERSION);
    lp_buf_u8(b, (uint8_t)o->kind);
    lp_buf_u8(b, (uint8_t)o->analyzer.kind);
    lp_buf_str(b, o->analyzer.token_pattern);
    lp_buf_u8(b, o->analyzer.lowercase);
    lp_buf_u32(b, o->analyzer.ngram_min);
    lp_buf_u32(b, o->analyzer.ngram_max);
    lp_buf_u8(b, (uint8_t)o->norm);
    lp_buf_u64(b, o->min_df);
    lp_buf_f64(b, o->min_df_frac);
    lp_buf_f64(b, o->max_df_frac);
    lp_buf_u64(b, o->max_df);
    lp_buf_u64(b, o->max_features);
    lp_buf_u8(b, o->use_idf);
    lp_buf_u8(b, o->smooth_idf);
    lp_buf_u8(b, o->sublinear_tf);
    lp_buf_u32(b, o->n_features);
    lp_buf_u8(b, o->alternate_sign);
    lp_buf_u64(b, v->vocab.n);
    for (size_t j = 0; j < v->vocab.n; j++) {
        lp_buf_str(b, v->vocab.keys[j]);
        lp_buf_f64(b, v->idf[j]);
    }
}

#define TRY(x)          \
    do {                \
        st = (x);       \
        if (st)         \
            goto fail;  \
    } while (0)

lp_status lp_textvec_load(lp_reader *r, lp_textvec **out, lp_err *err)
{
    *out = NULL;
    lp_status st;
    uint32_t magic, version, u32a, u32b, nfeat;
    uint8_t kind, akind, lower, norm, use_idf, smooth, sub, alt;
    uint64_t min_df, max_df, max_feat, nterms;
    char *pattern = NULL;
    lp_textvec *v = NULL;
    lp_textvec_opts o = lp_textvec_opts_default();
    TRY(lp_reader_u32(r, &magic, err));
    if (magic != TEXTVEC_MAGIC) {
        st = lp_err_set(err, LP_EFORMAT, "%s: not a text vectorizer (bad magic at byte %zu)",
                        r->what, r->pos - 4);
        goto fail;
    }
    TRY(lp_reader_u32(r, &version, err));
    if (version != TEXTVEC_VERSION) {
        st = lp_err_set(err, LP_EVERSION, "%s: text vectorizer version %u, expected %u", r->what,
                        version, TEXTVEC_VERSION);
        goto fail;
    }
    TRY(lp_reader_u8(r, &kind, err));
    TRY(lp_reader_u8(r, &akind, err));
    TRY(lp_reader_str(r, &pattern, 4096, err));
    TRY(lp_reader_u8(r, &lower, err));
    TRY(lp_reader_u32(r, &u32a, err));
    TRY(lp_reader_u32(r, &u32b, err));
    TRY(lp_reader_u8(r, &norm, err));
    TRY(lp_reader_u64(r, &min_df, err));
    TRY(lp_reader_f64(r, &o.min_df_frac, err));
    TRY(lp_reader_f64(r, &o.max_df_frac, err));
    TRY(lp_reader_u64(r, &max_df, err));
    TRY(lp_reader_u64(r, &max_feat, err));
    TRY(lp_reader_u8(r, &use_idf, err));
    TRY(lp_reader_u8(r, &smooth, err));
    TRY(lp_reader_u8(r, &sub, err));
    TRY(lp_reader_u32(r, &nfeat, err));
    TRY(lp_reader_u8(r, &alt, err));
    TRY(lp_reader_u64(r, &nterms, err));
    o.kind = (lp_textvec_kind)kind;
    o.analyzer.kind = (lp_analyzer_kind)akind;
    o.analyzer.token_pattern = pattern;
    o.analyzer.lowercase = lower != 0;
    o.analyzer.ngram_min = u32a;
    o.analyzer.ngram_max = u32b;
    o.norm = (lp_norm)norm;
    o.min_df = (size_t)min_df;
    o.max_df = (size_t)max_df;
    o.max_features = (size_t)max_feat;
    o.use_idf = use_idf != 0;
    o.smooth_idf = smooth != 0;
    o.sublinear_tf = sub != 0;
    o.n_features = nfeat;
    o.alternate_sign = alt != 0;
    if ((o.kind == LP_TEXTVEC_KIND_HASH && nterms) || nterms > r->len - r->pos) {
        st = lp_err_set(err, LP_EFORMAT, "%s: text vectorizer vocabulary size %llu is corrupt",
                        r->what, (unsigned long long)nterms);
        goto fail;
    }
    st = textvec_alloc(&o, &v, err);
    if (st) {
        lp_err_prefix(err, "%s", r->what);
        st = LP_EFORMAT;
        if (err)
            err->status = LP_EFORMAT;
        goto fail;
    }
    if (nterms) {
        v->idf = lp_mallocarray((size_t)nterms, sizeof(double));
        if (!v->idf) {
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
            goto fail;
        }
    }
    for (size_t j = 0; j < nterms; j++) {
        char *term = NULL;
        TRY(lp_reader_str(r, &term, 1u << 20, err));
        size_t col;
        bool added;
        st = term ? lp_strmap_add(&v->vocab, term, strlen(term), &col, &added) : LP_EFORMAT;
        free(term);
        if (st == LP_ENOMEM) {
            lp_err_set(err, st, "%s: out of memory", r->what);
            goto fail;
        }
        if (st || !added) {
            st = lp_err_set(err, LP_EFORMAT, "%s: vocabulary term %zu is null or repeated",
                            r->what, j);
            goto fail;
        }
        TRY(lp_reader_f64(r, &v->idf[j], err));
    }
    free(pattern);
    *out = v;
    return LP_OK;
fail:
    free(pattern);
    lp_textvec_free(v);
    return st;
}
