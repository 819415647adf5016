/*
 * linear_reg.c - solvers of the regression kinds: closed-form least squares and ridge
 * (LAPACK), batch gradient descent, and cyclic coordinate descent for lasso / elastic-net.
 *
 * The intercept is never penalised. It is handled by centring: with S = sum s_i, weighted
 * means xm = X^T s / S and ym = y.s / S, the slope solves the centred problem and
 * b = ym - xm.w. Dense inputs are centred explicitly; CSR inputs are never densified, the
 * centring is carried implicitly (Gram correction, or a running intercept in CD).
 * Inputs arrive validated (finite, shapes consistent, weights >= 0 with S > 0).
 */
#include "model/linear.h"
#include "lepton/linalg.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Weighted column means xm (d,) and target mean ym; zeros without intercept. Returns S. */
static double weighted_means(const lp_design *x, const double *y, const double *s, bool fi,
                             double *xm, double *ym)
{
    size_t n = x->rows, d = x->cols;
    double S = 0, sy = 0;
    memset(xm, 0, d * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        S += s[i];
        sy += s[i] * y[i];
        lp_design_row_axpy(x, i, s[i], xm);
    }
    for (size_t j = 0; j < d; j++)
        xm[j] = fi ? xm[j] / S : 0.0;
    *ym = fi ? sy / S : 0.0;
    return S;
}

/* (n, d) row-major sqrt(s_i) (x_i - xm) and (max(n, d),) sqrt(s_i) (y_i - ym), dense only. */
static void centred_scaled(const lp_design *x, const double *y, const double *s, const double *xm,
                           double ym, double *a, double *bv)
{
    size_t n = x->rows, d = x->cols;
    for (size_t i = 0; i < n; i++) {
        double r = sqrt(s[i]);
        const float *row = x->dense + i * d;
        for (size_t j = 0; j < d; j++)
            a[i * d + j] = r * ((double)row[j] - xm[j]);
        bv[i] = r * (y[i] - ym);
    }
}

lp_status lp_linear_solve_closed(const lp_linear_opts *o, const lp_design *x, const double *y,
                                 const double *s, lp_linear_fit_out *fo, lp_err *err)
{
    size_t n = x->rows, d = x->cols;
    bool ridge = o->kind == LP_LINEAR_KIND_RIDGE && o->alpha > 0;
    double *xm = lp_calloc(d, sizeof(double)), ym;
    double *w = fo->coef;
    lp_status st = LP_OK;
    double *a = NULL, *bv = NULL, *g = NULL, *sv = NULL;
    if (!xm)
        return lp_err_set(err, LP_ENOMEM, "linear closed form: out of memory");
    weighted_means(x, y, s, o->fit_intercept, xm, &ym);
    size_t mx = n > d ? n : d;
    lapack_int rank, info;
    if (x->dense && !ridge) {
        /* least squares straight on the data: min-norm solution by SVD (dgelsd), which keeps
         * the conditioning of X instead of squaring it in the normal equations */
        a = lp_mallocarray(n * d, sizeof(double));
        bv = lp_calloc(mx, sizeof(double));
        sv = lp_mallocarray(mx, sizeof(double));
        if (!a || !bv || !sv) {
            st = lp_err_set(err, LP_ENOMEM, "linear closed form: out of memory for %zu x %zu",
                            n, d);
            goto done;
        }
        centred_scaled(x, y, s, xm, ym, a, bv);
        info = LAPACKE_dgelsd(LAPACK_ROW_MAJOR, (lapack_int)n, (lapack_int)d, 1, a,
                              (lapack_int)d, bv, 1, sv, -1.0, &rank);
        if (info != 0) {
            st = lp_err_set(err, LP_ENUMERIC, "least squares: LAPACK dgelsd failed (info %d)",
                            (int)info);
            goto done;
        }
        memcpy(w, bv, d * sizeof(double));
    } else {
        /* normal equations of the centred problem: (Xc^T diag(s) Xc + alpha I) w = Xc^T s yc,
         * G (d, d), rhs (d,) */
        g = lp_calloc(d * d, sizeof(double));
        bv = lp_calloc(d, sizeof(double));
        if (!g || !bv) {
            st = lp_err_set(err, LP_ENOMEM, "linear closed form: out of memory for a %zu x %zu "
                            "Gram matrix", d, d);
            goto done;
        }
        if (x->dense) {
            a = lp_mallocarray(n * d, sizeof(double));
            double *yc = lp_mallocarray(n, sizeof(double));
            if (!a || !yc) {
                free(yc);
                st = lp_err_set(err, LP_ENOMEM, "linear closed form: out of memory");
                goto done;
            }
            centred_scaled(x, y, s, xm, ym, a, yc);
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)d, (int)n, 1.0, a, (int)d,
                        0.0, g, (int)d);
            cblas_dgemv(CblasRowMajor, CblasTrans, (int)n, (int)d, 1.0, a, (int)d, yc, 1, 0.0,
                        bv, 1);
            free(yc);
        } else {
            /* sum_i s_i x_i x_i^T - S xm xm^T over the nonzeros of each row (upper triangle) */
            double S = 0;
            for (size_t i = 0; i < n; i++) {
                S += s[i];
                for (size_t p = x->indptr[i]; p < x->indptr[i + 1]; p++) {
                    double v = s[i] * x->values[p];
                    size_t jp = x->indices[p];
                    bv[jp] += v * (y[i] - ym);
                    for (size_t q = p; q < x->indptr[i + 1]; q++)
                        g[jp * d + x->indices[q]] += v * x->values[q];
                }
            }
            for (size_t j = 0; j < d; j++)
                for (size_t k = j; k < d; k++)
                    g[j * d + k] -= S * xm[j] * xm[k];
        }
        for (size_t j = 0; j < d; j++)
            for (size_t k = 0; k < j; k++)
                g[j * d + k] = g[k * d + j];
        if (ridge) {
            for (size_t j = 0; j < d; j++)
                g[j * d + j] += o->alpha;
            info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', (lapack_int)d, 1, g, (lapack_int)d, bv, 1);
            if (info != 0) {
                st = lp_err_set(err, LP_ENUMERIC, "ridge: the regularised Gram matrix is not "
                                "positive definite (LAPACK dposv info %d)", (int)info);
                goto done;
            }
        } else {
            sv = lp_mallocarray(d, sizeof(double));
            if (!sv) {
                st = lp_err_set(err, LP_ENOMEM, "linear closed form: out of memory");
                goto done;
            }
            info = LAPACKE_dgelsd(LAPACK_ROW_MAJOR, (lapack_int)d, (lapack_int)d, 1, g,
                                  (lapack_int)d, bv, 1, sv, -1.0, &rank);
            if (info != 0) {
                st = lp_err_set(err, LP_ENUMERIC, "least squares: LAPACK dgelsd on the normal "
                                "equations failed (info %d)", (int)info);
                goto done;
            }
        }
        memcpy(w, bv, d * sizeof(double));
    }
    fo->intercept[0] = o->fit_intercept ? ym - cblas_ddot((int)d, xm, 1, w, 1) : 0.0;
    fo->n_iter = 0;
    fo->converged = true;
done:
    free(xm);
    free(a);
    free(bv);
    free(g);
    free(sv);
    return st;
}

/* Mean-squared-loss gradient at (w, b): gw = Xu^T s r / S + (alpha / S) w with r = Xw + b - y,
 * gb = s.r / S. Returns max |g|. */
static double gd_gradient(const lp_design *x, const double *y, const double *s, double S,
                          double alpha, bool fi, const double *w, double b, double *gw,
                          double *gb)
{
    size_t n = x->rows, d = x->cols;
    memset(gw, 0, d * sizeof(double));
    double sb = 0;
    for (size_t i = 0; i < n; i++) {
        double r = s[i] * (lp_design_row_dot(x, i, w) + b - y[i]);
        sb += r;
        lp_design_row_axpy(x, i, r, gw);
    }
    double gmax = 0;
    for (size_t j = 0; j < d; j++) {
        gw[j] = gw[j] / S + alpha / S * w[j];
        gmax = fmax(gmax, fabs(gw[j]));
    }
    *gb = fi ? sb / S : 0.0;
    return fmax(gmax, fabs(*gb));
}

lp_status lp_linear_solve_gd(const lp_linear_opts *o, const lp_design *x, const double *y,
                             const double *s, lp_linear_fit_out *fo, lp_err *err)
{
    size_t n = x->rows, d = x->cols;
    double alpha = o->kind == LP_LINEAR_KIND_RIDGE ? o->alpha : 0.0;
    double S = 0;
    for (size_t i = 0; i < n; i++)
        S += s[i];
    double *gw = lp_mallocarray(d + 1, sizeof(double));
    double *v = lp_mallocarray(d + 1, sizeof(double));
    double *hv = lp_mallocarray(d + 1, sizeof(double));
    if (!gw || !v || !hv) {
        free(gw);
        free(v);
        free(hv);
        return lp_err_set(err, LP_ENOMEM, "linear gd: out of memory");
    }
    double lr = o->learning_rate;
    if (lr == 0) {
        /* L = largest eigenvalue of the Hessian H = [X 1]^T diag(s) [X 1] / S + alpha / S,
         * by power iteration from a fixed start; the step 1 / (1.05 L) keeps GD monotone. */
        for (size_t j = 0; j <= d; j++)
            v[j] = 1.0 / sqrt((double)(d + 1));
        double lam = 0;
        for (int it = 0; it < 100; it++) {
            memset(hv, 0, (d + 1) * sizeof(double));
            for (size_t i = 0; i < n; i++) {
                double t = s[i] * (lp_design_row_dot(x, i, v) + (o->fit_intercept ? v[d] : 0));
                lp_design_row_axpy(x, i, t, hv);
                hv[d] += o->fit_intercept ? t : 0;
            }
            double nrm = 0;
            for (size_t j = 0; j <= d; j++) {
                hv[j] = hv[j] / S + (j < d ? alpha / S * v[j] : 0);
                nrm += hv[j] * hv[j];
            }
            nrm = sqrt(nrm);
            if (!(nrm > 0))
                break;
            double prev = lam;
            lam = nrm;
            for (size_t j = 0; j <= d; j++)
                v[j] = hv[j] / nrm;
            if (fabs(lam - prev) <= 1e-6 * lam)
                break;
        }
        lr = lam > 0 ? 1.0 / (1.05 * lam) : 1.0;
    }
    double *w = fo->coef, b = 0, gb;
    fo->converged = false;
    int it;
    for (it = 0; it < o->max_iter; it++) {
        double gmax = gd_gradient(x, y, s, S, alpha, o->fit_intercept, w, b, gw, &gb);
        if (!isfinite(gmax)) {
            free(gw);
            free(v);
            free(hv);
            return lp_err_set(err, LP_ENUMERIC, "linear gd: gradient is not finite at step %d "
                              "(learning_rate %g too large?)", it, lr);
        }
        if (gmax <= o->tol) {
            fo->converged = true;
            break;
        }
        for (size_t j = 0; j < d; j++)
            w[j] -= lr * gw[j];
        b -= lr * gb;
    }
    fo->intercept[0] = b;
    fo->n_iter = it;
    free(gw);
    free(v);
    free(hv);
    return LP_OK;
}

lp_status lp_linear_solve_cd(const lp_linear_opts *o, const lp_design *x, const double *y,
                             const double *s, lp_linear_fit_out *fo, lp_err *err)
{
    size_t n = x->rows, d = x->cols;
    double rho = o->kind == LP_LINEAR_KIND_LASSO ? 1.0 : o->l1_ratio;
    double *xm = lp_calloc(d, sizeof(double)), ym;
    double *h = lp_calloc(d, sizeof(double)), *r = lp_mallocarray(n, sizeof(double));
    double *cm = lp_calloc(d, sizeof(double));
    size_t *colptr = lp_calloc(d + 1, sizeof(size_t));
    size_t nnz = x->dense ? n * d : x->indptr[n];
    uint32_t *rowidx = x->dense ? NULL : lp_mallocarray(nnz ? nnz : 1, sizeof(uint32_t));
    double *cv = lp_mallocarray(nnz ? nnz : 1, sizeof(double));
    lp_status st = LP_OK;
    if (!xm || !h || !r || !cm || !colptr || !cv || (!x->dense && !rowidx)) {
        st = lp_err_set(err, LP_ENOMEM, "coordinate descent: out of memory for %zu x %zu", n, d);
        goto done;
    }
    double S = weighted_means(x, y, s, o->fit_intercept, xm, &ym);
    /* Column-major copy: dense columns centred explicitly (cm = 0, r = y - ym, b = 0); CSR
     * transposed to CSC and centred implicitly: the centred residual is r_i - b with
     * r = y - X w and b = ym - xm.w, and since s.(r - b) = 0 always, the coordinate gradient
     * sum_i s_i (x_ij - xm_j)(r_i - b) = sum_{i in col j} s_i x_ij r_i - b S xm_j. */
    if (x->dense) {
        for (size_t j = 0; j <= d; j++)
            colptr[j] = j * n;
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                cv[j * n + i] = (double)x->dense[i * d + j] - xm[j];
    } else {
        lp_csr rows = {n, d, nnz, (size_t *)x->indptr, (uint32_t *)x->indices,
                       (float *)x->values};
        lp_csr *t = lp_csr_transpose(&rows);
        if (!t) {
            st = lp_err_set(err, LP_ENOMEM, "coordinate descent: out of memory");
            goto done;
        }
        memcpy(colptr, t->indptr, (d + 1) * sizeof(size_t));
        memcpy(rowidx, t->indices, nnz * sizeof(uint32_t));
        for (size_t q = 0; q < nnz; q++)
            cv[q] = t->values[q];
        lp_csr_free(t);
        memcpy(cm, xm, d * sizeof(double));
    }
    double b = x->dense ? 0.0 : ym;
    for (size_t i = 0; i < n; i++)
        r[i] = x->dense ? y[i] - ym : y[i];
    /* h_j = sum_i s_i (x_ij - xm_j)^2 */
    for (size_t j = 0; j < d; j++) {
        double acc = 0;
        for (size_t p = colptr[j]; p < colptr[j + 1]; p++) {
            size_t i = rowidx ? rowidx[p] : p - colptr[j];
            acc += s[i] * cv[p] * cv[p];
        }
        h[j] = fmax(acc - S * cm[j] * cm[j], 0.0);
    }
    /* objective times S: 0.5 sum s r^2 + l1 |w|_1 + 0.5 l2 |w|^2 */
    double l1 = S * o->alpha * rho, l2 = S * o->alpha * (1.0 - rho);
    double *w = fo->coef;
    fo->converged = false;
    int it;
    for (it = 0; it < o->max_iter; it++) {
        double max_dw = 0, max_w = 0;
        for (size_t j = 0; j < d; j++) {
            if (h[j] + l2 <= 0)
                continue;
            double gj = 0;
            for (size_t p = colptr[j]; p < colptr[j + 1]; p++) {
                size_t i = rowidx ? rowidx[p] : p - colptr[j];
                gj += s[i] * cv[p] * r[i];
            }
            gj -= b * S * cm[j];
            double t = gj + h[j] * w[j];
            double wn = (t > l1 ? t - l1 : t < -l1 ? t + l1 : 0.0) / (h[j] + l2);
            double dw = wn - w[j];
            if (dw != 0) {
                for (size_t p = colptr[j]; p < colptr[j + 1]; p++) {
                    size_t i = rowidx ? rowidx[p] : p - colptr[j];
                    r[i] -= cv[p] * dw;
                }
                b -= cm[j] * dw;
                w[j] = wn;
            }
            max_dw = fmax(max_dw, fabs(dw));
            max_w = fmax(max_w, fabs(wn));
        }
        if (!isfinite(max_dw)) {
            st = lp_err_set(err, LP_ENUMERIC, "coordinate descent: weights not finite at epoch "
                            "%d", it);
            goto done;
        }
        if (max_w == 0 || max_dw <= o->tol * max_w) {
            fo->converged = true;
            it++;
            break;
        }
    }
    fo->n_iter = it;
    fo->intercept[0] = o->fit_intercept ? ym - cblas_ddot((int)d, xm, 1, w, 1) : 0.0;
done:
    free(xm);
    free(h);
    free(r);
    free(cm);
    free(colptr);
    free(rowidx);
    free(cv);
    return st;
}
