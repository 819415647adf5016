/*
 * pca.c - principal component analysis like scikit-learn 1.2 PCA(svd_solver="full"): thin SVD
 * of the centered data through lp_mat_svd (LAPACK dgesdd), svd_flip signs, explained variance.
 *
 * The sign convention makes components deterministic across LAPACK builds: for component i
 * the entry of U[:, i] with the largest magnitude (first on ties) is made positive, and Vt[i]
 * flips with it. Fit is O(n d min(n, d)); transform/inverse are plain loops in double.
 */
#include "feat/feat_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

lp_pca *lp_pca_alloc(size_t d, size_t k)
{
    lp_pca *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->d = d;
    p->k = k;
    p->mean = lp_calloc(d ? d : 1, sizeof(double));
    p->comp = lp_calloc((k * d) != 0 ? k * d : 1, sizeof(double));
    p->ev = lp_calloc(k ? k : 1, sizeof(double));
    p->evr = lp_calloc(k ? k : 1, sizeof(double));
    p->sv = lp_calloc(k ? k : 1, sizeof(double));
    if (!p->mean || !p->comp || !p->ev || !p->evr || !p->sv) {
        lp_pca_free(p);
        return NULL;
    }
    return p;
}

void lp_pca_free(lp_pca *p)
{
    if (!p)
        return;
    free(p->mean);
    free(p->comp);
    free(p->ev);
    free(p->evr);
    free(p->sv);
    free(p);
}

lp_status lp_pca_fit(const double *x, size_t n, size_t d, size_t k, lp_pca **out, lp_err *err)
{
    *out = NULL;
    size_t r = n < d ? n : d;
    if (n < 2 || d < 1 || k < 1 || k > r)
        return lp_err_set(err, LP_EINVAL,
                          "pca: %zu components of (%zu, %zu) data; expected n >= 2 and "
                          "1 <= k <= min(n, d)",
                          k, n, d);
    for (size_t i = 0; i < n * d; i++)
        if (!isfinite(x[i]))
            return lp_err_set(err, LP_EINVAL,
                              "pca: row %zu column %zu is %g; impute missing values first",
                              i / d, i % d, x[i]);
    lp_pca *p = lp_pca_alloc(d, k);
    lp_mat *xc = lp_mat_new(n, d), *u = NULL, *vt = NULL;
    double *s = NULL;
    lp_status st = LP_OK;
    if (!p || !xc) {
        st = lp_err_set(err, LP_ENOMEM, "pca: out of memory for (%zu, %zu)", n, d);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            p->mean[j] += x[i * d + j];
    for (size_t j = 0; j < d; j++)
        p->mean[j] /= (double)n;
    /* Xc (n, d) = X - mean */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            xc->v[i * d + j] = x[i * d + j] - p->mean[j];
    st = lp_mat_svd(xc, &u, &s, &vt, err); /* U (n, r), S (r,), Vt (r, d) */
    if (st) {
        lp_err_prefix(err, "pca");
        goto done;
    }
    double total = 0;
    for (size_t i = 0; i < r; i++)
        total += s[i] * s[i] / (double)(n - 1);
    for (size_t c = 0; c < k; c++) {
        size_t best = 0;
        double bmax = -1;
        for (size_t i = 0; i < n; i++) {
            double a = fabs(u->v[i * r + c]);
            if (a > bmax) {
                bmax = a;
                best = i;
            }
        }
        double sign = u->v[best * r + c] < 0 ? -1 : 1;
        for (size_t j = 0; j < d; j++)
            p->comp[c * d + j] = sign * vt->v[c * d + j];
        p->sv[c] = s[c];
        p->ev[c] = s[c] * s[c] / (double)(n - 1);
        p->evr[c] = total > 0 ? p->ev[c] / total : 0;
    }
done:
    lp_mat_free(xc);
    lp_mat_free(u);
    lp_mat_free(vt);
    free(s);
    if (st) {
        lp_pca_free(p);
        return st;
    }
    *out = p;
    return LP_OK;
}

size_t lp_pca_dim(const lp_pca *p) { return p->d; }
size_t lp_pca_n_components(const lp_pca *p) { return p->k; }
const double *lp_pca_mean(const lp_pca *p) { return p->mean; }
const double *lp_pca_components(const lp_pca *p) { return p->comp; }
const double *lp_pca_explained_variance(const lp_pca *p) { return p->ev; }
const double *lp_pca_explained_variance_ratio(const lp_pca *p) { return p->evr; }
const double *lp_pca_singular_values(const lp_pca *p) { return p->sv; }

void lp_pca_transform(const lp_pca *p, const double *x, size_t n, double *y)
{
    size_t d = p->d, k = p->k;
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < k; c++) {
            double acc = 0;
            for (size_t j = 0; j < d; j++)
                acc += (x[i * d + j] - p->mean[j]) * p->comp[c * d + j];
            y[i * k + c] = acc;
        }
}

void lp_pca_inverse(const lp_pca *p, const double *y, size_t n, double *x)
{
    size_t d = p->d, k = p->k;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++) {
            double acc = p->mean[j];
            for (size_t c = 0; c < k; c++)
                acc += y[i * k + c] * p->comp[c * d + j];
            x[i * d + j] = acc;
        }
}
