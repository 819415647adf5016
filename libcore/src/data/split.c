/*
 * split.c - train/test splits: seeded random, stratified by a label column, and by time.
 *
 * Random and stratified splits shuffle with lp_rng (xoshiro256**), so a seed gives the same
 * split on every platform; their index arrays come out sorted ascending. The time split sorts
 * by time (ties by row index) and returns indices in that order. Each array is allocated even
 * when empty, so lp_split_free always has something valid to free.
 */
#include "data/data_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lp_split_free(lp_split *s)
{
    if (!s)
        return;
    free(s->train);
    free(s->test);
    memset(s, 0, sizeof *s);
}

static lp_status split_alloc(lp_split *out, size_t n, lp_err *err)
{
    memset(out, 0, sizeof *out);
    out->train = lp_mallocarray(n, sizeof(size_t));
    out->test = lp_mallocarray(n, sizeof(size_t));
    if (!out->train || !out->test) {
        lp_split_free(out);
        return lp_err_set(err, LP_ENOMEM, "split: out of memory for %zu rows", n);
    }
    return LP_OK;
}

static lp_status check_frac(double f, lp_err *err)
{
    if (!(f > 0 && f < 1))
        return lp_err_set(err, LP_EINVAL, "split: test_frac %g is not in (0, 1)", f);
    return LP_OK;
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? -1 : x > y;
}

lp_status lp_split_random(size_t n, double test_frac, uint64_t seed, lp_split *out, lp_err *err)
{
    lp_status st = check_frac(test_frac, err);
    if (st)
        return st;
    st = split_alloc(out, n, err);
    if (st)
        return st;
    size_t *idx = lp_mallocarray(n, sizeof *idx);
    if (!idx) {
        lp_split_free(out);
        return lp_err_set(err, LP_ENOMEM, "split: out of memory for %zu rows", n);
    }
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    lp_rng_shuffle_idx(&rng, idx, n);
    size_t nt = (size_t)llround(test_frac * (double)n);
    memcpy(out->test, idx, nt * sizeof *idx);
    memcpy(out->train, idx + nt, (n - nt) * sizeof *idx);
    out->n_test = nt;
    out->n_train = n - nt;
    free(idx);
    qsort(out->test, out->n_test, sizeof(size_t), cmp_size);
    qsort(out->train, out->n_train, sizeof(size_t), cmp_size);
    return LP_OK;
}

typedef struct keyed {
    double key;
    size_t row;
} keyed;

static int cmp_keyed(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

lp_status lp_split_stratified(const lp_column *label, double test_frac, uint64_t seed,
                              lp_split *out, lp_err *err)
{
    lp_status st = check_frac(test_frac, err);
    if (st)
        return st;
    bool ok = label->type == LP_COL_TYPE_CATEGORICAL ||
              (label->type == LP_COL_TYPE_NUMERIC &&
               (label->kind == LP_COL_KIND_INTEGER || label->kind == LP_COL_KIND_BOOL));
    if (!ok)
        return lp_err_set(err, LP_EINVAL,
                          "stratified split: column '%s' is %s; expected a categorical, integer "
                          "or bool label",
                          label->name, lp_col_kind_name(label->kind));
    size_t n = label->n;
    st = split_alloc(out, n, err);
    if (st)
        return st;
    /* rows grouped by class (key), in row order within a class */
    keyed *k = lp_mallocarray(n, sizeof *k);
    if (!k) {
        lp_split_free(out);
        return lp_err_set(err, LP_ENOMEM, "split: out of memory for %zu rows", n);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (label->missing[i]) {
            out->train[out->n_train++] = i;
            continue;
        }
        k[m].key = label->type == LP_COL_TYPE_CATEGORICAL ? (double)label->codes[i]
                                                          : label->num[i];
        k[m++].row = i;
    }
    qsort(k, m, sizeof *k, cmp_keyed);
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    size_t *rows = lp_mallocarray(m, sizeof *rows);
    if (!rows) {
        free(k);
        lp_split_free(out);
        return lp_err_set(err, LP_ENOMEM, "split: out of memory for %zu rows", n);
    }
    for (size_t a = 0; a < m;) {
        size_t b = a;
        while (b < m && k[b].key == k[a].key)
            b++;
        size_t cnt = b - a;
        for (size_t i = 0; i < cnt; i++)
            rows[i] = k[a + i].row;
        lp_rng_shuffle_idx(&rng, rows, cnt);
        size_t nt = (size_t)llround(test_frac * (double)cnt);
        for (size_t i = 0; i < cnt; i++) {
            if (i < nt)
                out->test[out->n_test++] = rows[i];
            else
                out->train[out->n_train++] = rows[i];
        }
        a = b;
    }
    free(rows);
    free(k);
    qsort(out->test, out->n_test, sizeof(size_t), cmp_size);
    qsort(out->train, out->n_train, sizeof(size_t), cmp_size);
    return LP_OK;
}

lp_status lp_split_time(const lp_column *time, double test_frac, lp_split *out, lp_err *err)
{
    lp_status st = check_frac(test_frac, err);
    if (st)
        return st;
    if (time->type != LP_COL_TYPE_NUMERIC)
        return lp_err_set(err, LP_EINVAL,
                          "time split: column '%s' is %s; expected a numeric or date-time column",
                          time->name, lp_col_kind_name(time->kind));
    size_t n = time->n;
    for (size_t i = 0; i < n; i++)
        if (time->missing[i])
            return lp_err_set(err, LP_EINVAL, "time split: column '%s' row %zu is missing",
                              time->name, i + 1);
    st = split_alloc(out, n, err);
    if (st)
        return st;
    keyed *k = lp_mallocarray(n, sizeof *k);
    if (!k) {
        lp_split_free(out);
        return lp_err_set(err, LP_ENOMEM, "split: out of memory for %zu rows", n);
    }
    for (size_t i = 0; i < n; i++) {
        k[i].key = time->num[i];
        k[i].row = i;
    }
    qsort(k, n, sizeof *k, cmp_keyed);
    size_t nt = (size_t)llround(test_frac * (double)n), cut = n - nt;
    while (cut > 0 && cut < n && k[cut - 1].key == k[cut].key)
        cut--; /* ties at the cut go to test */
    for (size_t i = 0; i < n; i++) {
        if (i < cut)
            out->train[out->n_train++] = k[i].row;
        else
            out->test[out->n_test++] = k[i].row;
    }
    free(k);
    return LP_OK;
}
