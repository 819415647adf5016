/*
 * bm25.c - Okapi BM25 over an in-memory inverted index (term -> postings of (doc, tf)).
 *
 * Formula and defaults in text.h (k1 = 1.5, b = 0.75, idf = ln(1 + (N - df + 0.5)/(df + 0.5)),
 * which stays positive for every df, unlike the original Robertson-Sparck Jones idf).
 * The index is immutable after lp_bm25_build; scoring allocates per call and is thread-safe.
 * Not here: incremental updates, on-disk indexes, query expansion.
 */
#include "text/text_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct posting {
    uint32_t doc;
    uint32_t tf;
} posting;

struct lp_bm25 {
    lp_bm25_opts o;
    lp_analyzer *an;
    lp_strmap terms;   /* term -> id */
    posting **post;    /* (n_terms,) postings lists, doc ascending */
    size_t *npost;     /* (n_terms,) = df */
    size_t *cap;
    size_t tcap;       /* allocated length of post / npost / cap */
    double *doclen;    /* (n_docs,) */
    size_t n_docs;
    double avgdl;
};

lp_bm25_opts lp_bm25_opts_default(void)
{
    return (lp_bm25_opts){.analyzer = lp_analyzer_opts_default(), .k1 = 1.5, .b = 0.75};
}

lp_status lp_bm25_opts_check(const lp_bm25_opts *o, lp_err *err)
{
    if (!(o->k1 >= 0 && isfinite(o->k1)))
        return lp_err_set(err, LP_EINVAL, "bm25: k1 = %g, expected a finite value >= 0", o->k1);
    if (!(o->b >= 0 && o->b <= 1))
        return lp_err_set(err, LP_EINVAL, "bm25: b = %g, expected a value in [0, 1]", o->b);
    return lp_analyzer_opts_check(&o->analyzer, err);
}

void lp_bm25_free(lp_bm25 *idx)
{
    if (!idx)
        return;
    for (size_t i = 0; i < idx->tcap; i++)
        free(idx->post[i]);
    free(idx->post);
    free(idx->npost);
    free(idx->cap);
    free(idx->doclen);
    lp_strmap_free(&idx->terms);
    lp_analyzer_free(idx->an);
    free(idx);
}

static lp_status add_posting(lp_bm25 *idx, size_t id, uint32_t doc)
{
    size_t k = idx->npost[id];
    if (k && idx->post[id][k - 1].doc == doc) {
        idx->post[id][k - 1].tf++;
        return LP_OK;
    }
    if (k == idx->cap[id]) {
        size_t nc = k ? 2 * k : 4;
        posting *np = lp_reallocarray(idx->post[id], nc, sizeof(posting));
        if (!np)
            return LP_ENOMEM;
        idx->post[id] = np;
        idx->cap[id] = nc;
    }
    idx->post[id][k] = (posting){doc, 1};
    idx->npost[id] = k + 1;
    return LP_OK;
}

lp_status lp_bm25_build(const lp_bm25_opts *opts, const char *const *docs, size_t n,
                        lp_bm25 **out, lp_err *err)
{
    *out = NULL;
    lp_status st = lp_bm25_opts_check(opts, err);
    if (st)
        return st;
    if (n > UINT32_MAX)
        return lp_err_set(err, LP_ETOOBIG, "bm25: %zu documents, at most 2^32 - 1", n);
    lp_bm25 *idx = calloc(1, sizeof *idx);
    if (!idx)
        return lp_err_set(err, LP_ENOMEM, "bm25: out of memory");
    idx->o = *opts;
    idx->n_docs = n;
    lp_strmap_init(&idx->terms);
    st = lp_analyzer_new(&opts->analyzer, &idx->an, err);
    if (st) {
        lp_bm25_free(idx);
        return st;
    }
    idx->o.analyzer = *lp_analyzer_opts_of(idx->an);
    idx->doclen = lp_calloc(n ? n : 1, sizeof(double));
    if (!idx->doclen) {
        lp_bm25_free(idx);
        return lp_err_set(err, LP_ENOMEM, "bm25: out of memory");
    }
    lp_terms t = {0};
    double total = 0;
    for (size_t d = 0; d < n && !st; d++) {
        lp_terms_clear(&t);
        if (docs[d] && (st = lp_analyzer_run(idx->an, docs[d], strlen(docs[d]), &t, err))) {
            lp_err_prefix(err, "bm25 document %zu", d);
            break;
        }
        idx->doclen[d] = (double)t.n;
        total += (double)t.n;
        for (size_t i = 0; i < t.n; i++) {
            size_t id;
            bool added;
            if (lp_strmap_add(&idx->terms, t.v[i], strlen(t.v[i]), &id, &added)) {
                st = LP_ENOMEM;
                break;
            }
            if (idx->terms.n > idx->tcap) {
                size_t nc = idx->tcap ? 2 * idx->tcap : 1024;
                posting **np = lp_reallocarray(idx->post, nc, sizeof(posting *));
                if (np)
                    idx->post = np;
                size_t *nn = lp_reallocarray(idx->npost, nc, sizeof(size_t));
                if (nn)
                    idx->npost = nn;
                size_t *ncp = lp_reallocarray(idx->cap, nc, sizeof(size_t));
                if (ncp)
                    idx->cap = ncp;
                if (!np || !nn || !ncp) {
                    st = LP_ENOMEM;
                    break;
                }
                for (size_t j = idx->tcap; j < nc; j++) {
                    idx->post[j] = NULL;
                    idx->npost[j] = idx->cap[j] = 0;
                }
                idx->tcap = nc;
            }
            if (add_posting(idx, id, (uint32_t)d)) {
                st = LP_ENOMEM;
                break;
            }
        }
        if (st == LP_ENOMEM)
            lp_err_set(err, st, "bm25: out of memory indexing document %zu", d);
    }
    lp_terms_free(&t);
    if (st) {
        lp_bm25_free(idx);
        return st;
    }
    idx->avgdl = n ? total / (double)n : 0;
    *out = idx;
    return LP_OK;
}

size_t lp_bm25_n_docs(const lp_bm25 *idx) { return idx->n_docs; }

lp_status lp_bm25_scores(const lp_bm25 *idx, const char *query, double *scores, lp_err *err)
{
    memset(scores, 0, idx->n_docs * sizeof(double));
    lp_terms q = {0};
    lp_status st = lp_analyzer_run(idx->an, query, strlen(query), &q, err);
    if (st) {
        lp_err_prefix(err, "bm25 query");
        return st;
    }
    double k1 = idx->o.k1, b = idx->o.b, N = (double)idx->n_docs;
    double avgdl = idx->avgdl > 0 ? idx->avgdl : 1;
    for (size_t i = 0; i < q.n; i++) {
        long id = lp_strmap_find(&idx->terms, q.v[i], strlen(q.v[i]));
        if (id < 0)
            continue;
        double df = (double)idx->npost[id];
        double idf = log(1 + (N - df + 0.5) / (df + 0.5));
        for (size_t p = 0; p < idx->npost[id]; p++) {
            const posting *ps = &idx->post[id][p];
            double tf = ps->tf;
            double denom = tf + k1 * (1 - b + b * idx->doclen[ps->doc] / avgdl);
            scores[ps->doc] += idf * tf * (k1 + 1) / denom;
        }
    }
    lp_terms_free(&q);
    return LP_OK;
}

lp_status lp_bm25_top_k(const lp_bm25 *idx, const char *query, size_t k, size_t *ids,
                        double *scores, size_t *n_out, lp_err *err)
{
    *n_out = 0;
    double *all = lp_mallocarray(idx->n_docs ? idx->n_docs : 1, sizeof(double));
    if (!all)
        return lp_err_set(err, LP_ENOMEM, "bm25: out of memory for %zu scores", idx->n_docs);
    lp_status st = lp_bm25_scores(idx, query, all, err);
    if (st) {
        free(all);
        return st;
    }
    /* insertion into a sorted list of at most k: (score desc, id asc) */
    size_t m = 0;
    for (size_t d = 0; d < idx->n_docs && k; d++) {
        double s = all[d];
        if (!(s > 0))
            continue;
        if (m == k && s <= scores[m - 1])
            continue;
        size_t pos = m < k ? m : k - 1;
        while (pos > 0 && scores[pos - 1] < s) {
            if (pos < k) {
                scores[pos] = scores[pos - 1];
                ids[pos] = ids[pos - 1];
            }
            pos--;
        }
        scores[pos] = s;
        ids[pos] = d;
        if (m < k)
            m++;
    }
    free(all);
    *n_out = m;
    return LP_OK;
}
