/*
 * lda.c - latent Dirichlet allocation by collapsed Gibbs sampling (Griffiths & Steyvers 2004,
 * "Finding scientific topics", PNAS 101). See text.h for the sampling formula.
 * Counts are kept as integers (n_dt (D, K), n_tw (K, V), n_t (K)); after the last sweep the
 * point estimates phi (K, V) and theta (D, K) are computed once and the counts freed.
 * Does not: online/variational inference, hyper-parameter learning, parallel sampling.
 * Invariant: sum over t of n_tw[t][w] equals the number of tokens of word w.
 */
#include <stdlib.h>
#include <string.h>

#include "lepton/text.h"

struct lp_lda {
    size_t k, v, d;
    double *phi;   /* (K, V) */
    double *theta; /* (D, K) */
};

lp_lda_opts lp_lda_opts_default(void)
{
    return (lp_lda_opts){.k = 20, .alpha = 0.1, .beta = 0.01, .iters = 200, .seed = 42};
}

lp_status lp_lda_opts_check(const lp_lda_opts *o, lp_err *err)
{
    if (o->k < 2 || o->k > 100000)
        return lp_err_set(err, LP_EINVAL, "lda: k=%zu: must be in [2, 100000]", o->k);
    if (!(o->alpha > 0) || !(o->beta > 0) || o->alpha > 1e6 || o->beta > 1e6)
        return lp_err_set(err, LP_EINVAL, "lda: alpha and beta must be positive and finite");
    if (o->iters < 1)
        return lp_err_set(err, LP_EINVAL, "lda: iters must be at least 1");
    return LP_OK;
}

void lp_lda_free(lp_lda *m)
{
    if (!m)
        return;
    free(m->phi);
    free(m->theta);
    free(m);
}

size_t lp_lda_n_topics(const lp_lda *m)
{
    return m->k;
}
size_t lp_lda_n_docs(const lp_lda *m)
{
    return m->d;
}
const double *lp_lda_topic_word(const lp_lda *m, size_t t)
{
    return t < m->k ? m->phi + t * m->v : NULL;
}
const double *lp_lda_doc_topic(const lp_lda *m, size_t d)
{
    return d < m->d ? m->theta + d * m->k : NULL;
}

lp_status lp_lda_fit(const uint32_t *const *docs, const size_t *lens, size_t n_docs, size_t vocab,
                     const lp_lda_opts *o, lp_lda **out, lp_err *err)
{
    *out = NULL;
    lp_lda_opts opt = o ? *o : lp_lda_opts_default();
    lp_status st = lp_lda_opts_check(&opt, err);
    if (st != LP_OK)
        return st;
    if (vocab == 0 || vocab > UINT32_MAX)
        return lp_err_set(err, LP_EINVAL, "lda: vocabulary size %zu", vocab);
    size_t n_tok = 0;
    for (size_t d = 0; d < n_docs; d++)
        for (size_t i = 0; i < lens[d]; i++) {
            if (docs[d][i] >= vocab)
                return lp_err_set(err, LP_EINVAL,
                                  "lda: document %zu position %zu: word id %u "
                                  "is not below the vocabulary size %zu",
                                  d, i, docs[d][i], vocab);
            n_tok++;
        }
    if (n_tok == 0)
        return lp_err_set(err, LP_EINVAL, "lda: no tokens in %zu documents", n_docs);
    size_t K = opt.k, V = vocab;
    uint32_t *ndt = lp_calloc(n_docs * K, sizeof(uint32_t));
    uint32_t *ntw = lp_calloc(K * V, sizeof(uint32_t));
    uint32_t *nt = lp_calloc(K, sizeof(uint32_t));
    uint32_t *z = lp_mallocarray(n_tok, sizeof(uint32_t));
    double *p = lp_mallocarray(K, sizeof(double));
    lp_lda *m = lp_calloc(1, sizeof(*m));
    if (!ndt || !ntw || !nt || !z || !p || !m) {
        st = lp_err_set(err, LP_ENOMEM, "lda: out of memory (%zu topics x %zu words)", K, V);
        goto done;
    }
    lp_rng rng;
    lp_rng_seed(&rng, opt.seed);
    size_t pos = 0;
    for (size_t d = 0; d < n_docs; d++)
        for (size_t i = 0; i < lens[d]; i++, pos++) {
            uint32_t t = (uint32_t)lp_rng_below(&rng, K), w = docs[d][i];
            z[pos] = t;
            ndt[d * K + t]++;
            ntw[t * V + w]++;
            nt[t]++;
        }
    double vb = (double)V * opt.beta;
    for (unsigned it = 0; it < opt.iters; it++) {
        pos = 0;
        for (size_t d = 0; d < n_docs; d++)
            for (size_t i = 0; i < lens[d]; i++, pos++) {
                uint32_t w = docs[d][i], t = z[pos];
                ndt[d * K + t]--;
                ntw[t * V + w]--;
                nt[t]--;
                double s = 0;
                for (size_t q = 0; q < K; q++) {
                    s += ((double)ndt[d * K + q] + opt.alpha) *
                         ((double)ntw[q * V + w] + opt.beta) / ((double)nt[q] + vb);
                    p[q] = s; /* cumulative */
                }
                double u = lp_rng_uniform(&rng) * s;
                size_t q = 0;
                while (q + 1 < K && p[q] <= u)
                    q++;
                t = (uint32_t)q;
                z[pos] = t;
                ndt[d * K + t]++;
                ntw[t * V + w]++;
                nt[t]++;
            }
    }
    m->k = K;
    m->v = V;
    m->d = n_docs;
    m->phi = lp_mallocarray(K * V, sizeof(double));
    m->theta = lp_mallocarray(n_docs ? n_docs * K : 1, sizeof(double));
    if (!m->phi || !m->theta) {
        st = lp_err_set(err, LP_ENOMEM, "lda: out of memory");
        goto done;
    }
    for (size_t t = 0; t < K; t++)
        for (size_t w = 0; w < V; w++)
            m->phi[t * V + w] = ((double)ntw[t * V + w] + opt.beta) / ((double)nt[t] + vb);
    for (size_t d = 0; d < n_docs; d++)
        for (size_t t = 0; t < K; t++)
            m->theta[d * K + t] =
                ((double)ndt[d * K + t] + opt.alpha) / ((double)lens[d] + (double)K * opt.alpha);
    *out = m;
    m = NULL;
done:
    lp_lda_free(m);
    free(ndt);
    free(ntw);
    free(nt);
    free(z);
    free(p);
    return st;
}

size_t lp_lda_top_words(const lp_lda *m, size_t t, size_t n, uint32_t *ids)
{
    if (t >= m->k)
        return 0;
    if (n > m->v)
        n = m->v;
    const double *phi = m->phi + t * m->v;
    size_t got = 0;
    /* partial insertion sort: n is small (tens) */
    for (size_t w = 0; w < m->v; w++) {
        size_t at = got;
        while (at > 0 && phi[w] > phi[ids[at - 1]])
            at--;
        if (at >= n)
            continue;
        size_t last = got < n ? got : n - 1;
        for (size_t q = last; q > at; q--)
            ids[q] = ids[q - 1];
        ids[at] = (uint32_t)w;
        if (got < n)
            got++;
    }
    return got;
}
