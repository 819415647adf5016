/*
 * stats.c - order statistics and small JSON helpers for the clean module. Quantiles follow
 * numpy's default linear interpolation so profile numbers match pandas/numpy exactly; NaN is
 * never passed to the sort (callers filter it), so the order is total.
 */
#include "clean/clean_internal.h"

#include <math.h>
#include <stdlib.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void lp_clean_sort(double *v, size_t n)
{
    if (n > 1)
        qsort(v, n, sizeof *v, cmp_double);
}

double lp_clean_quantile_sorted(const double *v, size_t n, double q)
{
    if (!n)
        return NAN;
    double h = q * (double)(n - 1);
    size_t lo = (size_t)floor(h);
    if (lo >= n - 1)
        return v[n - 1];
    double frac = h - (double)lo;
    return v[lo] + frac * (v[lo + 1] - v[lo]);
}

void lp_clean_median_mad(const double *x, size_t n, double *work, double *med, double *mad,
                         double *meanad)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(x[i]))
            work[m++] = x[i];
    if (!m) {
        *med = *mad = NAN;
        if (meanad)
            *meanad = NAN;
        return;
    }
    lp_clean_sort(work, m);
    double md = lp_clean_quantile_sorted(work, m, 0.5);
    double sum = 0;
    for (size_t i = 0; i < m; i++) {
        work[i] = fabs(work[i] - md);
        sum += work[i];
    }
    lp_clean_sort(work, m);
    *med = md;
    *mad = lp_clean_quantile_sorted(work, m, 0.5);
    if (meanad)
        *meanad = sum / (double)m;
}

cJSON *lp_clean_json_num(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

lp_status lp_clean_json_finish(cJSON *root, char **json, lp_err *err)
{
    *json = root ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!*json)
        return lp_err_set(err, LP_ENOMEM, "clean report: out of memory building JSON");
    return LP_OK;
}
