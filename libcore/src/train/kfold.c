/*
 * kfold.c - seeded k-fold and stratified k-fold assignments, and the train/test index lists of
 * one fold. An assignment gives each sample exactly one test fold, so the folds partition the
 * data by construction; sizes differ by at most one. The random stream is lp_rng (xoshiro256**)
 * seeded with the caller's seed, so results are the same on every platform (but are not
 * sklearn's numpy stream: the semantics match, not the exact split).
 */
#include "lepton/train.h"

#include <stdlib.h>

static lp_status check_args(const char *fn, size_t n, size_t k, const void *fold, lp_err *err)
{
    if (!fold)
        return lp_err_set(err, LP_EINVAL, "%s: NULL fold output", fn);
    if (k < 2 || k > (size_t)INT32_MAX)
        return lp_err_set(err, LP_EINVAL, "%s: k = %zu folds, expected >= 2", fn, k);
    if (k > n)
        return lp_err_set(err, LP_EINVAL, "%s: k = %zu folds but only n = %zu samples", fn, k,
                          n);
    return LP_OK;
}

lp_status lp_kfold_split(size_t n, size_t k, uint64_t seed, int32_t *fold, lp_err *err)
{
    lp_status st = check_args("kfold_split", n, k, fold, err);
    if (st)
        return st;
    size_t *perm = lp_mallocarray(n, sizeof *perm);
    if (!perm)
        return lp_err_set(err, LP_ENOMEM, "kfold_split: out of memory for %zu samples", n);
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    lp_rng_shuffle_idx(&rng, perm, n);
    /* chunks of n / k, the first n % k of them one longer (sklearn KFold) */
    size_t base = n / k, extra = n % k, pos = 0;
    for (size_t f = 0; f < k; f++) {
        size_t len = base + (f < extra);
        for (size_t j = 0; j < len; j++)
            fold[perm[pos++]] = (int32_t)f;
    }
    free(perm);
    return LP_OK;
}

/* (label, shuffled position): sorting by both keeps each class in its shuffled order. */
typedef struct strat_item {
    int32_t label;
    size_t pos, idx;
} strat_item;

static int cmp_strat(const void *a, const void *b)
{
    const strat_item *x = a, *y = b;
    if (x->label != y->label)
        return (x->label > y->label) - (x->label < y->label);
    return (x->pos > y->pos) - (x->pos < y->pos);
}

lp_status lp_kfold_stratified(const int32_t *y, size_t n, size_t k, uint64_t seed, int32_t *fold,
                              lp_err *err)
{
    lp_status st = check_args("kfold_stratified", n, k, fold, err);
    if (st)
        return st;
    if (!y)
        return lp_err_set(err, LP_EINVAL, "kfold_stratified: NULL labels");
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0)
            return lp_err_set(err, LP_EINVAL, "kfold_stratified: label y[%zu] = %d, expected >= 0",
                              i, (int)y[i]);
    size_t *perm = lp_mallocarray(n, sizeof *perm);
    strat_item *items = lp_mallocarray(n, sizeof *items);
    if (!perm || !items) {
        free(perm);
        free(items);
        return lp_err_set(err, LP_ENOMEM, "kfold_stratified: out of memory for %zu samples", n);
    }
    for (size_t i = 0; i < n; i++)
        perm[i] = i;
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    lp_rng_shuffle_idx(&rng, perm, n);
    for (size_t p = 0; p < n; p++)
        items[p] = (strat_item){y[perm[p]], p, perm[p]};
    qsort(items, n, sizeof *items, cmp_strat);
    /* position p -> fold p % k: each class is a contiguous run, so its per-fold counts differ
     * by at most one, and so do the totals */
    for (size_t p = 0; p < n; p++)
        fold[items[p].idx] = (int32_t)(p % k);
    for (size_t p = 0; p < n;) {
        size_t q = p;
        while (q < n && items[q].label == items[p].label)
            q++;
        if (q - p < k)
            lp_log_warn("kfold_stratified: class %d has %zu samples, fewer than k = %zu folds",
                        (int)items[p].label, q - p, k);
        p = q;
    }
    free(perm);
    free(items);
    return LP_OK;
}

lp_status lp_kfold_indices(const int32_t *fold, size_t n, size_t k, size_t f, size_t *train_idx,
                           size_t *n_train, size_t *test_idx, size_t *n_test, lp_err *err)
{
    if (!fold && n > 0)
        return lp_err_set(err, LP_EINVAL, "kfold_indices: NULL fold assignment");
    if (f >= k)
        return lp_err_set(err, LP_EINVAL, "kfold_indices: fold %zu, expected 0..%zu", f,
                          k ? k - 1 : 0);
    size_t a = 0, b = 0;
    for (size_t i = 0; i < n; i++) {
        if (fold[i] < 0 || (size_t)fold[i] >= k)
            return lp_err_set(err, LP_EINVAL, "kfold_indices: fold[%zu] = %d, expected 0..%zu", i,
                              (int)fold[i], k - 1);
    }
    for (size_t i = 0; i < n; i++) {
        if ((size_t)fold[i] == f) {
            if (test_idx)
                test_idx[b] = i;
            b++;
        } else {
            if (train_idx)
                train_idx[a] = i;
            a++;
        }
    }
    if (n_train)
        *n_train = a;
    if (n_test)
        *n_test = b;
    return LP_OK;
}
