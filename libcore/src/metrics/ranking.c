/*
 * ranking.c - precision@k, recall@k, NDCG@k and MAP@k of top-k recommendation lists against
 * sets of relevant items (binary relevance), per user then averaged over users that have at
 * least one relevant item. Definitions are in metrics.h. Per user the relevant ids are sorted
 * into scratch and looked up by binary search: O(R log R + L log L) per user, O(max R + L)
 * scratch. Input is validated completely (ids, padding, duplicates) before anything is summed.
 */
#include "metrics/metrics_util.h"

#include <math.h>
#include <stdlib.h>

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

static bool contains(const int32_t *sorted, size_t n, int32_t v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && sorted[lo] == v;
}

/* Sort a copy of a (n) into tmp and name the first duplicate, if any. */
static lp_status sorted_unique(const char *what, size_t u, const int32_t *a, size_t n,
                               int32_t *tmp, lp_err *err)
{
    for (size_t i = 0; i < n; i++)
        tmp[i] = a[i];
    qsort(tmp, n, sizeof *tmp, cmp_i32);
    for (size_t i = 1; i < n; i++)
        if (tmp[i] == tmp[i - 1])
            return lp_err_set(err, LP_EINVAL, "rank_at_k: user %zu: item %d appears twice in %s",
                              u, (int)tmp[i], what);
    return LP_OK;
}

lp_status lp_metrics_rank_at_k(const int32_t *ranked, size_t n_users, size_t list_len,
                               const size_t *rel_off, const int32_t *relevant, size_t k,
                               lp_rank_metrics *out, lp_err *err)
{
    if (n_users == 0)
        return lp_err_set(err, LP_EINVAL, "rank_at_k: empty input (n_users = 0)");
    if (!ranked || !rel_off || !out || (rel_off[n_users] > 0 && !relevant))
        return lp_err_set(err, LP_EINVAL, "rank_at_k: NULL input array");
    if (k == 0 || k > list_len)
        return lp_err_set(err, LP_EINVAL, "rank_at_k: k = %zu, expected 1..list_len (%zu)", k,
                          list_len);
    if (n_users > SIZE_MAX / list_len)
        return lp_err_set(err, LP_EINVAL, "rank_at_k: n_users * list_len overflows");
    size_t max_r = 0;
    for (size_t u = 0; u < n_users; u++) {
        if (rel_off[u + 1] < rel_off[u])
            return lp_err_set(err, LP_EINVAL,
                              "rank_at_k: rel_off[%zu] = %zu < rel_off[%zu] = %zu, expected "
                              "nondecreasing offsets",
                              u + 1, rel_off[u + 1], u, rel_off[u]);
        size_t r = rel_off[u + 1] - rel_off[u];
        max_r = r > max_r ? r : max_r;
    }
    int32_t *tmp = lp_mallocarray((max_r > list_len ? max_r : list_len) + 1, sizeof *tmp);
    if (!tmp)
        return lp_err_set(err, LP_ENOMEM, "rank_at_k: out of memory");
    lp_status st = LP_OK;
    /* pass 1: validate every list */
    for (size_t u = 0; u < n_users && !st; u++) {
        const int32_t *row = ranked + u * list_len; /* (list_len) */
        size_t len = 0;
        while (len < list_len && row[len] != -1) {
            if (row[len] < 0)
                st = lp_err_set(err, LP_EINVAL,
                                "rank_at_k: ranked[%zu][%zu] = %d, expected an item id >= 0 or "
                                "-1 padding",
                                u, len, (int)row[len]);
            len++;
        }
        for (size_t r = len; r < list_len && !st; r++)
            if (row[r] != -1)
                st = lp_err_set(err, LP_EINVAL,
                                "rank_at_k: ranked[%zu][%zu] = %d after -1 padding, expected -1",
                                u, r, (int)row[r]);
        const int32_t *rel = relevant + rel_off[u];
        size_t R = rel_off[u + 1] - rel_off[u];
        for (size_t j = 0; j < R && !st; j++)
            if (rel[j] < 0)
                st = lp_err_set(err, LP_EINVAL, "rank_at_k: relevant[%zu] = %d, expected >= 0",
                                rel_off[u] + j, (int)rel[j]);
        if (!st)
            st = sorted_unique("its ranked list", u, row, len, tmp, err);
        if (!st)
            st = sorted_unique("its relevant items", u, rel, R, tmp, err);
    }
    /* pass 2: the metrics (tmp holds the user's sorted relevant ids) */
    double sp = 0, sr = 0, sn = 0, sm = 0;
    size_t users = 0;
    for (size_t u = 0; u < n_users && !st; u++) {
        size_t R = rel_off[u + 1] - rel_off[u];
        if (R == 0)
            continue;
        for (size_t j = 0; j < R; j++)
            tmp[j] = relevant[rel_off[u] + j];
        qsort(tmp, R, sizeof *tmp, cmp_i32);
        const int32_t *row = ranked + u * list_len;
        double hits = 0, dcg = 0, idcg = 0, ap = 0;
        for (size_t r = 0; r < k && row[r] != -1; r++) {
            if (!contains(tmp, R, row[r]))
                continue;
            hits += 1;
            dcg += 1 / log2((double)r + 2);
            ap += hits / (double)(r + 1);
        }
        size_t cap = R < k ? R : k;
        for (size_t r = 0; r < cap; r++)
            idcg += 1 / log2((double)r + 2);
        sp += hits / (double)k;
        sr += hits / (double)R;
        sn += dcg / idcg;
        sm += ap / (double)cap;
        users++;
    }
    free(tmp);
    if (st)
        return st;
    if (users == 0)
        return lp_err_set(err, LP_EINVAL,
                          "rank_at_k: none of the %zu users has a relevant item; the metrics are "
                          "undefined",
                          n_users);
    out->precision = sp / (double)users;
    out->recall = sr / (double)users;
    out->ndcg = sn / (double)users;
    out->map = sm / (double)users;
    out->n_users = users;
    return LP_OK;
}
