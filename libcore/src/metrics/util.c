/*
 * util.c - argument checks and the descending (score, label) sort used by the metrics.
 * Nothing here computes a metric.
 */
#include "metrics/metrics_util.h"

#include <math.h>
#include <stdlib.h>

lp_status lp_metrics_check_n_(const char *fn, size_t n, const void *a, const void *b,
                              lp_err *err)
{
    if (n == 0)
        return lp_err_set(err, LP_EINVAL, "%s: empty input (n = 0)", fn);
    if (!a || !b)
        return lp_err_set(err, LP_EINVAL, "%s: NULL input array", fn);
    return LP_OK;
}

lp_status lp_metrics_check_binary_(const char *fn, const int32_t *y, size_t n, size_t *n_pos,
                                   lp_err *err)
{
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (y[i] != 0 && y[i] != 1)
            return lp_err_set(err, LP_EINVAL, "%s: label y[%zu] = %d, expected 0 or 1", fn, i,
                              (int)y[i]);
        pos += (size_t)y[i];
    }
    if (n_pos)
        *n_pos = pos;
    return LP_OK;
}

lp_status lp_metrics_check_labels_(const char *fn, const char *name, const int32_t *y, size_t n,
                                   size_t k, lp_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || (size_t)y[i] >= k)
            return lp_err_set(err, LP_EINVAL, "%s: label %s[%zu] = %d, expected 0..%zu", fn,
                              name, i, (int)y[i], k - 1);
    return LP_OK;
}

lp_status lp_metrics_check_nan_(const char *fn, const char *name, const double *x, size_t n,
                                lp_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (isnan(x[i]))
            return lp_err_set(err, LP_EINVAL, "%s: %s[%zu] is NaN", fn, name, i);
    return LP_OK;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = ((const lp_scored *)a)->score, y = ((const lp_scored *)b)->score;
    return (x < y) - (x > y);
}

lp_scored *lp_metrics_sorted_(const int32_t *y, int32_t pos, const double *scores, size_t stride,
                              size_t n)
{
    lp_scored *s = lp_mallocarray(n, sizeof *s);
    if (!s)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        s[i].score = scores[i * stride];
        s[i].y = y[i] == pos;
    }
    qsort(s, n, sizeof *s, cmp_desc);
    return s;
}
