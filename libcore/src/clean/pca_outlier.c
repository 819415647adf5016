/*
 * pca_outlier.c - multivariate outliers by PCA reconstruction error. Columns are standardised
 * (mean, population standard deviation; a constant column gets scale 1), the principal
 * directions come from the SVD of the standardised (n, p) matrix, and a row's error is
 * ||z - V V^T z|| over the k kept directions (the norm, not its square: the squared error is
 * chi-square-like with a long right tail that a median/MAD cut-off would over-flag, its root
 * is close to symmetric). The cut-off is robust to the outliers
 * themselves: median(error) + t * MAD(error) / 0.6745 (the modified z-score of the error is
 * above t), falling back to 1.2533 x the mean absolute deviation when the MAD is 0.
 * A missing or infinite cell counts as the column mean (0 after standardising). At most p - 1
 * directions are kept (with all p every error is 0).
 */
#include "clean/clean_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void lp_pca_detector_clear(lp_pca_detector *d)
{
    free(d->mu);
    free(d->sd);
    free(d->v);
    memset(d, 0, sizeof *d);
}

static void standardise(const lp_pca_detector *d, const double *row, double *z)
{
    for (size_t j = 0; j < d->p; j++)
        z[j] = isfinite(row[j]) ? (row[j] - d->mu[j]) / d->sd[j] : 0;
}

double lp_pca_detector_error(const lp_pca_detector *d, const double *row, double *work)
{
    size_t p = d->p, k = d->k;
    double *z = work;
    standardise(d, row, z);
    double total = 0, proj = 0;
    for (size_t j = 0; j < p; j++)
        total += z[j] * z[j];
    /* ||z - V V^T z||^2 = ||z||^2 - ||V^T z||^2 for orthonormal V; clamp rounding below 0 */
    for (size_t c = 0; c < k; c++) {
        double t = 0;
        for (size_t j = 0; j < p; j++)
            t += d->v[j * k + c] * z[j];
        proj += t * t;
    }
    double e = total - proj;
    return e > 0 ? sqrt(e) : 0;
}

lp_status lp_pca_detector_fit(const double *x, size_t n, size_t p, const lp_cleaner_opts *o,
                              lp_pca_detector *d, lp_err *err)
{
    memset(d, 0, sizeof *d);
    if (n < 2 || !p)
        return lp_err_set(err, LP_EINVAL, "PCA outliers: need at least 2 rows and 1 numeric "
                          "column, have (%zu, %zu)", n, p);
    d->p = p;
    d->mu = lp_calloc(p, sizeof(double));
    d->sd = lp_calloc(p, sizeof(double));
    lp_mat *xs = lp_mat_new(n, p), *vt = NULL;
    double *s = NULL, *e = lp_mallocarray(n, sizeof(double)), *work = NULL;
    lp_status st = LP_OK;
    if (!d->mu || !d->sd || !xs || !e) {
        st = lp_err_set(err, LP_ENOMEM, "PCA outliers: out of memory for (%zu, %zu)", n, p);
        goto done;
    }
    for (size_t j = 0; j < p; j++) {
        double sum = 0, ss = 0;
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (isfinite(x[i * p + j])) {
                sum += x[i * p + j];
                m++;
            }
        double mu = m ? sum / (double)m : 0;
        for (size_t i = 0; i < n; i++)
            if (isfinite(x[i * p + j]))
                ss += (x[i * p + j] - mu) * (x[i * p + j] - mu);
        double sd = m ? sqrt(ss / (double)m) : 0;
        d->mu[j] = mu;
        d->sd[j] = sd > 0 && isfinite(sd) ? sd : 1;
    }
    for (size_t i = 0; i < n; i++)
        standardise(d, x + i * p, xs->v + i * p);
    st = lp_mat_svd(xs, NULL, &s, &vt, err);
    if (st) {
        lp_err_prefix(err, "PCA outliers");
        goto done;
    }
    size_t kmax = vt->rows, k = 0;
    if (o->pca_k) {
        k = o->pca_k < kmax ? o->pca_k : kmax;
    } else {
        /* explained variance is proportional to s^2 */
        double tot = 0, cum = 0;
        for (size_t c = 0; c < kmax; c++)
            tot += s[c] * s[c];
        while (k < kmax) {
            cum += s[k] * s[k];
            k++;
            if (tot <= 0 || cum >= o->pca_var * tot)
                break;
        }
    }
    /* keeping every direction would make every error 0: leave at least one out */
    if (k >= p && p > 1)
        k = p - 1;
    d->k = k;
    d->v = lp_calloc(p * (k ? k : 1), sizeof(double));
    work = lp_mallocarray(n > p ? n : p, sizeof(double));
    if (!d->v || !work) {
        st = lp_err_set(err, LP_ENOMEM, "PCA outliers: out of memory");
        goto done;
    }
    for (size_t c = 0; c < k; c++)
        for (size_t j = 0; j < p; j++)
            d->v[j * k + c] = vt->v[c * p + j];
    for (size_t i = 0; i < n; i++)
        e[i] = lp_pca_detector_error(d, x + i * p, work);
    double med, mad, meanad;
    double *w2 = lp_mallocarray(n, sizeof(double));
    if (!w2) {
        st = lp_err_set(err, LP_ENOMEM, "PCA outliers: out of memory");
        goto done;
    }
    lp_clean_median_mad(e, n, w2, &med, &mad, &meanad);
    free(w2);
    double scale = mad > 0 ? mad / 0.6745 : 1.2533 * meanad;
    d->err_med = med;
    d->err_scale = scale;
    /* all errors equal: anything clearly above them is an outlier */
    d->threshold = scale > 0 ? med + o->pca_threshold * scale : med + 1e-9 * (1 + med);
done:
    lp_mat_free(xs);
    lp_mat_free(vt);
    free(s);
    free(e);
    free(work);
    if (st)
        lp_pca_detector_clear(d);
    return st;
}
