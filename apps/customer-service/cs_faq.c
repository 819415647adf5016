/*
 * cs_faq.c - FAQ retrieval: each entry's question plus answer is indexed twice, by Okapi BM25
 * (lp_bm25) and by TF-IDF (word 1-2 grams and char_wb 3-5 grams, lp_textvec); a query is
 * ranked by the mean of the two cosines and the BM25 score divided by the best BM25 score of
 * that query. The cosine alone decides whether the top answer is confident enough to give.
 * Only the entry texts are saved; the indexes are rebuilt on load (FAQs are small).
 *
 * With a sentence encoder (cs_faq_set_encoder, borrowed from the intent model) each entry's
 * question is embedded too, and the rank score becomes the mean of the three lexical scores
 * and the query's embedding cosine to the question, weighted CS_FAQ_EMB_WEIGHT against their
 * mean. The confidence gate stays the TF-IDF cosine. The embeddings are recomputed whenever
 * the encoder is set (on load too), never saved.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs.h"
#include "enchead.h"

#define FAQ_MAGIC "CSFQ"
#define FAQ_VERSION 1u
/* Share of the embedding cosine in the fused rank score with an encoder: an equal split, not
 * tuned (on stackfaq's queries_train.tsv it took top-1 from 0.647 to 0.888 with MiniLM). */
#ifndef CS_FAQ_EMB_WEIGHT
#define CS_FAQ_EMB_WEIGHT 0.5
#endif

struct cs_faq {
    size_t n;
    char **ids, **qs, **as;
    lp_bm25 *bm;
    lp_textvec *tv[2];
    lp_csr *post[2]; /* (features, n): each term's entries and weights, in entry order */
    const lp_encoder *enc; /* borrowed; NULL = lexical only */
    float *emb;            /* (n, D) question embeddings when enc is set */
};

void cs_faq_free(cs_faq *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n; i++) {
        free(f->ids[i]);
        free(f->qs[i]);
        free(f->as[i]);
    }
    free(f->ids);
    free(f->qs);
    free(f->as);
    lp_bm25_free(f->bm);
    free(f->emb);
    for (int k = 0; k < 2; k++) {
        lp_textvec_free(f->tv[k]);
        lp_csr_free(f->post[k]);
    }
    free(f);
}

size_t cs_faq_size(const cs_faq *f)
{
    return f->n;
}
const char *cs_faq_id(const cs_faq *f, size_t i)
{
    return i < f->n ? f->ids[i] : NULL;
}
const char *cs_faq_question(const cs_faq *f, size_t i)
{
    return i < f->n ? f->qs[i] : NULL;
}
const char *cs_faq_answer(const cs_faq *f, size_t i)
{
    return i < f->n ? f->as[i] : NULL;
}

lp_status cs_faq_build(const char *const *ids, const char *const *questions,
                       const char *const *answers, size_t n, cs_faq **out, lp_err *err)
{
    *out = NULL;
    if (n == 0)
        return lp_err_set(err, LP_EINVAL, "faq: no entries");
    cs_faq *f = lp_calloc(1, sizeof(*f));
    char **docs = lp_calloc(n, sizeof(char *));
    lp_status st = LP_OK;
    if (!f || !docs || !(f->ids = lp_calloc(n, sizeof(char *))) ||
        !(f->qs = lp_calloc(n, sizeof(char *))) || !(f->as = lp_calloc(n, sizeof(char *)))) {
        free(docs);
        cs_faq_free(f);
        return lp_err_set(err, LP_ENOMEM, "faq: out of memory");
    }
    f->n = n;
    for (size_t i = 0; i < n && st == LP_OK; i++) {
        const char *a = answers && answers[i] && answers[i][0] ? answers[i] : NULL;
        if (!questions[i] || !questions[i][0]) {
            st = lp_err_set(err, LP_EINVAL, "faq entry %zu: empty question", i + 1);
            break;
        }
        f->ids[i] = lp_strdup(ids ? ids[i] : "");
        f->qs[i] = lp_strdup(questions[i]);
        f->as[i] = a ? lp_strdup(a) : NULL;
        size_t lq = strlen(questions[i]), la = a ? strlen(a) : 0;
        docs[i] = malloc(lq + la + 2);
        if (!f->ids[i] || !f->qs[i] || (a && !f->as[i]) || !docs[i]) {
            st = lp_err_set(err, LP_ENOMEM, "faq: out of memory");
            break;
        }
        memcpy(docs[i], questions[i], lq);
        docs[i][lq] = ' ';
        if (a)
            memcpy(docs[i] + lq + 1, a, la);
        docs[i][lq + 1 + la] = 0;
    }
    if (st == LP_OK) {
        lp_bm25_opts bo = lp_bm25_opts_default();
        st = lp_bm25_build(&bo, (const char *const *)docs, n, &f->bm, err);
    }
    for (int k = 0; k < 2 && st == LP_OK; k++) {
        lp_textvec_opts to = lp_textvec_opts_default();
        to.sublinear_tf = true;
        if (k == 0) {
            to.analyzer.ngram_max = 2;
        } else {
            to.analyzer.kind = LP_ANALYZER_KIND_CHAR_WB;
            to.analyzer.ngram_min = 3;
            to.analyzer.ngram_max = 5;
        }
        st = lp_textvec_fit(&to, (const char *const *)docs, n, &f->tv[k], err);
        lp_csr *d = NULL;
        if (st == LP_OK)
            st = lp_textvec_transform(f->tv[k], (const char *const *)docs, n, &d, err);
        if (st == LP_OK && !(f->post[k] = lp_csr_transpose(d)))
            st = lp_err_set(err, LP_ENOMEM, "faq: out of memory");
        lp_csr_free(d);
    }
    for (size_t i = 0; i < n; i++)
        free(docs[i]);
    free(docs);
    if (st != LP_OK) {
        cs_faq_free(f);
        return st;
    }
    *out = f;
    return LP_OK;
}

lp_status cs_faq_set_encoder(cs_faq *f, const lp_encoder *enc, lp_err *err)
{
    float *e = NULL;
    lp_status st = enc ? eh_embed(enc, (const char *const *)f->qs, f->n, &e, err) : LP_OK;
    if (st != LP_OK)
        return lp_err_prefix(err, "faq");
    free(f->emb);
    f->emb = e;
    f->enc = enc;
    return LP_OK;
}

/* ce (n): the query's embedding cosine to each entry's question (unit vectors). */
static lp_status emb_cosines(const cs_faq *f, const char *query, double *ce, lp_err *err)
{
    float *q;
    lp_status st = eh_embed(f->enc, &query, 1, &q, err);
    if (st != LP_OK)
        return st;
    size_t d = lp_encoder_dim(f->enc);
    for (size_t i = 0; i < f->n; i++) {
        double s = 0;
        for (size_t j = 0; j < d; j++)
            s += (double)q[j] * f->emb[i * d + j];
        ce[i] = s;
    }
    free(q);
    return LP_OK;
}

/* cos (n) of the query against every entry for vectorizer k (rows are L2-normalised): each
 * query term adds its weight times the entry's to the entries that hold it, through the
 * term's posting list, so a query costs its terms' postings, not the whole FAQ (for one entry
 * the terms come in increasing order, as in a merge of the two rows: the same sums). */
static lp_status cosines(const cs_faq *f, int k, const char *query, double *cos, lp_err *err)
{
    lp_csr *q;
    lp_status st = lp_textvec_transform(f->tv[k], &query, 1, &q, err);
    if (st != LP_OK)
        return st;
    const lp_csr *P = f->post[k];
    for (size_t i = 0; i < f->n; i++)
        cos[i] = 0;
    for (size_t a = q->indptr[0]; a < q->indptr[1]; a++) {
        uint32_t t = q->indices[a];
        double w = q->values[a];
        if (t >= P->rows)
            continue;
        for (size_t p = P->indptr[t]; p < P->indptr[t + 1]; p++)
            cos[P->indices[p]] += (double)P->values[p] * w;
    }
    lp_csr_free(q);
    return LP_OK;
}

lp_status cs_faq_search(const cs_faq *f, const char *query, size_t k, cs_faq_hit *hits,
                        size_t *n_hits, lp_err *err)
{
    *n_hits = 0;
    if (k == 0)
        return LP_OK;
    double *bm = lp_calloc(f->n, sizeof(double)), *c0 = lp_calloc(f->n, sizeof(double)),
           *c1 = lp_calloc(f->n, sizeof(double)), *ce = lp_calloc(f->n, sizeof(double));
    lp_status st = LP_OK;
    if (!bm || !c0 || !c1 || !ce)
        st = lp_err_set(err, LP_ENOMEM, "faq: out of memory");
    if (st == LP_OK && f->enc)
        st = emb_cosines(f, query, ce, err);
    if (st == LP_OK)
        st = lp_bm25_scores(f->bm, query, bm, err);
    if (st == LP_OK)
        st = cosines(f, 0, query, c0, err);
    if (st == LP_OK)
        st = cosines(f, 1, query, c1, err);
    if (st == LP_OK) {
        double top = 0;
        for (size_t i = 0; i < f->n; i++)
            top = fmax(top, bm[i]);
        for (size_t i = 0; i < f->n; i++) {
            double s = (c0[i] + c1[i] + (top > 0 ? bm[i] / top : 0)) / 3;
            if (f->enc)
                s = (1 - CS_FAQ_EMB_WEIGHT) * s + CS_FAQ_EMB_WEIGHT * fmax(ce[i], 0);
            if (!(s > 0))
                continue;
            size_t pos = *n_hits;
            while (pos > 0 && s > hits[pos - 1].score)
                pos--;
            if (pos >= k)
                continue;
            size_t last = *n_hits < k ? *n_hits : k - 1;
            for (size_t q = last; q > pos; q--)
                hits[q] = hits[q - 1];
            hits[pos] = (cs_faq_hit){i, s, (c0[i] + c1[i]) / 2};
            if (*n_hits < k)
                (*n_hits)++;
        }
    }
    free(bm);
    free(c0);
    free(c1);
    free(ce);
    return st;
}

void cs_faq_save(const cs_faq *f, lp_buf *b)
{
    lp_buf_put(b, FAQ_MAGIC, 4);
    lp_buf_u32(b, FAQ_VERSION);
    lp_buf_u64(b, f->n);
    for (size_t i = 0; i < f->n; i++) {
        lp_buf_str(b, f->ids[i]);
        lp_buf_str(b, f->qs[i]);
        lp_buf_str(b, f->as[i]);
    }
}

lp_status cs_faq_load(lp_reader *r, cs_faq **out, lp_err *err)
{
    *out = NULL;
    char magic[4];
    uint32_t ver;
    uint64_t n;
    lp_status st = lp_reader_get(r, magic, 4, err);
    if (st != LP_OK)
        return st;
    if (memcmp(magic, FAQ_MAGIC, 4))
        return lp_err_set(err, LP_EFORMAT, "%s: not an FAQ section (bad magic)", r->what);
    if ((st = lp_reader_u32(r, &ver, err)) != LP_OK || (st = lp_reader_u64(r, &n, err)) != LP_OK)
        return st;
    if (ver != FAQ_VERSION)
        return lp_err_set(err, LP_EVERSION, "%s: FAQ version %u, expected %u", r->what, ver,
                          FAQ_VERSION);
    if (n == 0 || n > 1000000 || 3 * 4 * n > r->len - r->pos) /* 3 strings of >= 4 bytes each */
        return lp_err_set(err, LP_EFORMAT, "%s: %llu FAQ entries", r->what, (unsigned long long)n);
    char **v = lp_calloc(3 * n, sizeof(char *));
    if (!v)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
    for (size_t i = 0; i < 3 * n && st == LP_OK; i++)
        st = lp_reader_str(r, &v[i], 1 << 20, err);
    if (st == LP_OK) {
        char **ids = lp_calloc(n, sizeof(char *)), **qs = lp_calloc(n, sizeof(char *)),
             **as = lp_calloc(n, sizeof(char *));
        if (!ids || !qs || !as) {
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
        } else {
            for (size_t i = 0; i < n; i++) {
                ids[i] = v[3 * i];
                qs[i] = v[3 * i + 1];
                as[i] = v[3 * i + 2];
                if (!qs[i])
                    st = lp_err_set(err, LP_EFORMAT, "%s: FAQ entry %zu has no question", r->what,
                                    i + 1);
            }
            if (st == LP_OK)
                st = cs_faq_build((const char *const *)ids, (const char *const *)qs,
                                  (const char *const *)as, n, out, err);
        }
        free(ids);
        free(qs);
        free(as);
    }
    cs_strs_free(v, 3 * n);
    return st;
}
