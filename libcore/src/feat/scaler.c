/*
 * scaler.c - standard, min-max and robust scaling with scikit-learn 1.2's statistics (population
 * variance, numpy linear-interpolation percentiles, _handle_zeros_in_scale), NaN-aware.
 *
 * Fit is two-pass in double per column (mean, then sum of squared deviations) for accuracy.
 * Invariant: scale[j] is finite and non-zero, so transform never divides by zero.
 */
#include "feat/feat_internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

lp_scaler_opts lp_scaler_opts_default(lp_scaler_kind kind)
{
    return (lp_scaler_opts){.kind = kind, .with_mean = true, .with_std = true, .range_min = 0,
                            .range_max = 1, .with_centering = true, .with_scaling = true,
                            .q_lo = 25, .q_hi = 75};
}

lp_status lp_scaler_opts_check(const lp_scaler_opts *o, lp_err *err)
{
    if (o->kind > LP_SCALER_KIND_ROBUST)
        return lp_err_set(err, LP_EINVAL, "scaler: kind %d is not standard, minmax or robust",
                          (int)o->kind);
    if (o->kind == LP_SCALER_KIND_MINMAX && !(o->range_min < o->range_max))
        return lp_err_set(err, LP_EINVAL, "minmax scaler: range (%g, %g) needs min < max",
                          o->range_min, o->range_max);
    if (o->kind == LP_SCALER_KIND_ROBUST && !(o->q_lo >= 0 && o->q_lo < o->q_hi && o->q_hi <= 100))
        return lp_err_set(err, LP_EINVAL,
                          "robust scaler: quantile range (%g, %g) needs 0 <= lo < hi <= 100",
                          o->q_lo, o->q_hi);
    return LP_OK;
}

const char *lp_scaler_kind_name(lp_scaler_kind k)
{
    return k == LP_SCALER_KIND_STANDARD ? "standard"
           : k == LP_SCALER_KIND_MINMAX ? "minmax"
           : k == LP_SCALER_KIND_ROBUST ? "robust"
                                        : "unknown";
}

lp_status lp_scaler_kind_parse(const char *s, lp_scaler_kind *out, lp_err *err)
{
    for (int k = 0; k <= LP_SCALER_KIND_ROBUST; k++)
        if (s && !strcmp(s, lp_scaler_kind_name((lp_scaler_kind)k))) {
            *out = (lp_scaler_kind)k;
            return LP_OK;
        }
    return lp_err_set(err, LP_EINVAL, "scaler '%s': expected standard, minmax or robust",
                      s ? s : "(null)");
}

lp_scaler *lp_scaler_alloc(const lp_scaler_opts *o, size_t d)
{
    lp_scaler *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->o = *o;
    s->d = d;
    s->center = lp_calloc(d ? d : 1, sizeof(double));
    s->scale = lp_calloc(d ? d : 1, sizeof(double));
    if (!s->center || !s->scale) {
        lp_scaler_free(s);
        return NULL;
    }
    return s;
}

void lp_scaler_free(lp_scaler *s)
{
    if (!s)
        return;
    free(s->center);
    free(s->scale);
    free(s);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* numpy.percentile(method="linear") of sorted v[0..m), q in [0, 100]; numpy's _lerp form. */
static double percentile_sorted(const double *v, size_t m, double q)
{
    double pos = q / 100.0 * (double)(m - 1);
    size_t lo = (size_t)floor(pos);
    if (lo + 1 >= m)
        return v[m - 1];
    double t = pos - (double)lo, a = v[lo], b = v[lo + 1];
    double diff = b - a;
    return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

lp_status lp_scaler_fit(const lp_scaler_opts *o, const double *x, size_t n, size_t d,
                        lp_scaler **out, lp_err *err)
{
    *out = NULL;
    lp_status st = lp_scaler_opts_check(o, err);
    if (st)
        return st;
    if (!d)
        return lp_err_set(err, LP_EINVAL, "%s scaler: no columns", lp_scaler_kind_name(o->kind));
    lp_scaler *s = lp_scaler_alloc(o, d);
    double *col = lp_mallocarray(n ? n : 1, sizeof(double));
    if (!s || !col) {
        lp_scaler_free(s);
        free(col);
        return lp_err_set(err, LP_ENOMEM, "scaler: out of memory for (%zu, %zu)", n, d);
    }
    const double eps = DBL_EPSILON;
    for (size_t j = 0; j < d; j++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (!isnan(x[i * d + j]))
                col[m++] = x[i * d + j];
        double center = 0, scale = 1;
        if (m && o->kind == LP_SCALER_KIND_STANDARD) {
            double mean = 0, ss = 0;
            for (size_t i = 0; i < m; i++)
                mean += col[i];
            mean /= (double)m;
            for (size_t i = 0; i < m; i++)
                ss += (col[i] - mean) * (col[i] - mean);
            double var = ss / (double)m, fm = (double)m;
            /* sklearn _is_constant_feature: var within rounding of zero -> scale 1 */
            bool constant = var <= fm * eps * var + (fm * mean * eps) * (fm * mean * eps);
            center = o->with_mean ? mean : 0;
            scale = (!o->with_std || constant || sqrt(var) < 10 * eps) ? 1 : sqrt(var);
        } else if (m && o->kind == LP_SCALER_KIND_MINMAX) {
            double lo = col[0], hi = col[0];
            for (size_t i = 1; i < m; i++) {
                lo = col[i] < lo ? col[i] : lo;
                hi = col[i] > hi ? col[i] : hi;
            }
            double range = hi - lo;
            if (range < 10 * eps)
                range = 1;
            center = lo;
            scale = range / (o->range_max - o->range_min);
        } else if (m) {
            qsort(col, m, sizeof(double), cmp_double);
            center = o->with_centering ? percentile_sorted(col, m, 50) : 0;
            if (o->with_scaling) {
                scale = percentile_sorted(col, m, o->q_hi) - percentile_sorted(col, m, o->q_lo);
                if (scale < 10 * eps)
                    scale = 1;
            }
        }
        if (!isfinite(center) || !isfinite(scale)) {
            free(col);
            lp_scaler_free(s);
            return lp_err_set(err, LP_ENUMERIC, "%s scaler: column %zu has infinite values",
                              lp_scaler_kind_name(o->kind), j);
        }
        s->center[j] = center;
        s->scale[j] = scale;
    }
    s->shift = o->kind == LP_SCALER_KIND_MINMAX ? o->range_min : 0;
    free(col);
    *out = s;
    return LP_OK;
}

size_t lp_scaler_dim(const lp_scaler *s) { return s->d; }
const double *lp_scaler_center(const lp_scaler *s) { return s->center; }
const double *lp_scaler_scale(const lp_scaler *s) { return s->scale; }

lp_status lp_scaler_transform(const lp_scaler *s, const double *x, size_t n, size_t d, double *y,
                              lp_err *err)
{
    if (d != s->d)
        return lp_err_set(err, LP_EINVAL, "scaler: input has %zu columns, fitted on %zu", d,
                          s->d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            y[i * d + j] = (x[i * d + j] - s->center[j]) / s->scale[j] + s->shift;
    return LP_OK;
}

lp_status lp_scaler_inverse(const lp_scaler *s, const double *y, size_t n, size_t d, double *x,
                            lp_err *err)
{
    if (d != s->d)
        return lp_err_set(err, LP_EINVAL, "scaler: input has %zu columns, fitted on %zu", d,
                          s->d);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            x[i * d + j] = (y[i * d + j] - s->shift) * s->scale[j] + s->center[j];
    return LP_OK;
}
