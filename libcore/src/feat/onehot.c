/*
 * onehot.c - one-hot encoding of string categories with scikit-learn 1.2's ordering and its
 * infrequent-category grouping (min_frequency, max_categories); unknown values encode as zeros.
 *
 * Invariant: out_col[id] < n_out for every fitted category; when has_infrequent, output
 * n_out - 1 is the infrequent group and out_name[n_out - 1] is NULL.
 */
#include "feat/feat_internal.h"

#include <stdlib.h>
#include <string.h>

lp_onehot_opts lp_onehot_opts_default(void)
{
    return (lp_onehot_opts){.min_frequency = 0, .max_categories = 0};
}

lp_status lp_onehot_opts_check(const lp_onehot_opts *o, lp_err *err)
{
    if (o->max_categories == 1)
        return lp_err_set(err, LP_EINVAL, "onehot: max_categories 1; expected 0 (off) or >= 2");
    return LP_OK;
}

void lp_onehot_free(lp_onehot *oh)
{
    if (!oh)
        return;
    lp_strmap_free(&oh->cats);
    free(oh->out_col);
    free(oh->out_name);
    free(oh);
}

typedef struct cat_count {
    const char *s;
    size_t count;
} cat_count;

static int cmp_cat(const void *a, const void *b)
{
    return strcmp(((const cat_count *)a)->s, ((const cat_count *)b)->s);
}

lp_status lp_onehot_finish(lp_onehot *oh)
{
    free(oh->out_name);
    oh->out_name = lp_calloc(oh->n_out ? oh->n_out : 1, sizeof(char *));
    if (!oh->out_name)
        return LP_ENOMEM;
    for (size_t id = 0; id < oh->cats.n; id++) {
        uint32_t c = oh->out_col[id];
        if (!(oh->has_infrequent && c == oh->n_out - 1))
            oh->out_name[c] = oh->cats.keys[id];
    }
    return LP_OK;
}

lp_status lp_onehot_fit(const lp_onehot_opts *o, const char *const *vals, size_t n,
                        lp_onehot **out, lp_err *err)
{
    *out = NULL;
    lp_status st = lp_onehot_opts_check(o, err);
    if (st)
        return st;
    lp_strmap seen;
    lp_strmap_init(&seen);
    size_t *cnt = NULL, cap = 0;
    cat_count *cc = NULL;
    size_t *order = NULL;
    lp_onehot *oh = calloc(1, sizeof *oh);
    if (!oh)
        goto nomem;
    oh->o = *o;
    lp_strmap_init(&oh->cats);
    for (size_t i = 0; i < n; i++) {
        if (!vals[i])
            continue;
        size_t id;
        if (lp_strmap_add(&seen, vals[i], strlen(vals[i]), &id, NULL))
            goto nomem;
        if (seen.n > cap) {
            size_t nc = cap ? 2 * cap : 64;
            size_t *nn = lp_reallocarray(cnt, nc, sizeof(size_t));
            if (!nn)
                goto nomem;
            cnt = nn;
            memset(cnt + cap, 0, (nc - cap) * sizeof(size_t));
            cap = nc;
        }
        cnt[id]++;
    }
    size_t k = seen.n;
    if (!k) {
        lp_onehot_free(oh);
        lp_strmap_free(&seen);
        free(cnt);
        return lp_err_set(err, LP_EINVAL, "onehot: no non-missing value to learn categories from");
    }
    cc = lp_mallocarray(k, sizeof *cc);
    order = lp_mallocarray(k, sizeof(size_t));
    oh->out_col = lp_mallocarray(k, sizeof(uint32_t));
    if (!cc || !order || !oh->out_col)
        goto nomem;
    for (size_t id = 0; id < k; id++)
        cc[id] = (cat_count){seen.keys[id], cnt[id]};
    qsort(cc, k, sizeof *cc, cmp_cat);
    bool *infreq = (bool *)order; /* reuse: k bools fit in k size_t */
    memset(infreq, 0, k);
    size_t n_infreq = 0;
    for (size_t i = 0; i < k; i++)
        if (o->min_frequency && cc[i].count < o->min_frequency) {
            infreq[i] = true;
            n_infreq++;
        }
    size_t n_current = k - n_infreq + 1;
    if (o->max_categories && o->max_categories < n_current) {
        /* np.argsort(counts, kind="mergesort")[:-max_categories + 1]: stable ascending */
        size_t *idx = lp_mallocarray(k, sizeof(size_t));
        if (!idx)
            goto nomem;
        for (size_t i = 0; i < k; i++)
            idx[i] = i;
        for (size_t i = 1; i < k; i++) { /* insertion sort: stable */
            size_t v = idx[i], j = i;
            while (j > 0 && cc[idx[j - 1]].count > cc[v].count) {
                idx[j] = idx[j - 1];
                j--;
            }
            idx[j] = v;
        }
        size_t take = k > o->max_categories - 1 ? k - (o->max_categories - 1) : 0;
        for (size_t i = 0; i < take; i++)
            infreq[idx[i]] = true;
        free(idx);
        n_infreq = 0;
        for (size_t i = 0; i < k; i++)
            n_infreq += infreq[i];
    }
    oh->has_infrequent = n_infreq > 0;
    oh->n_out = k - n_infreq + (n_infreq > 0);
    uint32_t next = 0;
    for (size_t i = 0; i < k; i++) {
        size_t id;
        if (lp_strmap_add(&oh->cats, cc[i].s, strlen(cc[i].s), &id, NULL))
            goto nomem;
        oh->out_col[id] = infreq[i] ? (uint32_t)(oh->n_out - 1) : next++;
    }
    if (lp_onehot_finish(oh))
        goto nomem;
    lp_strmap_free(&seen);
    free(cnt);
    free(cc);
    free(order);
    *out = oh;
    return LP_OK;
nomem:
    lp_onehot_free(oh);
    lp_strmap_free(&seen);
    free(cnt);
    free(cc);
    free(order);
    return lp_err_set(err, LP_ENOMEM, "onehot: out of memory for %zu values", n);
}

size_t lp_onehot_n_outputs(const lp_onehot *oh) { return oh->n_out; }

const char *lp_onehot_category(const lp_onehot *oh, size_t j)
{
    return j < oh->n_out ? oh->out_name[j] : NULL;
}

long lp_onehot_index(const lp_onehot *oh, const char *val)
{
    if (!val)
        return -1;
    long id = lp_strmap_find(&oh->cats, val, strlen(val));
    return id < 0 ? -1 : (long)oh->out_col[id];
}
