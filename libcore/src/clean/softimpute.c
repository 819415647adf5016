/*
 * softimpute.c - low-rank matrix completion by soft-impute (Mazumder, Hastie & Tibshirani,
 * "Spectral regularization algorithms for learning large incomplete matrices", JMLR 11, 2010,
 * Algorithm 1) and the fold-in of new rows against the fitted factors.
 *
 * Work is in standardised units (each column minus its mean, over its population standard
 * deviation), so lambda and the tolerance do not depend on the columns' scales and a
 * missing cell starts at the column mean (0). Each iteration takes the SVD (LAPACK dgesdd via
 * lp_mat_svd) of F = P_obs(X) + P_miss(Z), soft-thresholds its singular values,
 * d_k <- max(d_k - lambda, 0) for k < rank cap, else 0, and sets Z = U diag(d) V^T.
 * Invariants: the fitted state is (mu, sd, V, s, lambda) only; imputing a row depends on
 * nothing else, so results are reproducible bit for bit.
 */
#include "clean/clean_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Grid of lambda / s_max tried, largest first (warm starts follow the paper's path). */
static const double lambda_grid[] = {0.5, 0.3, 0.2, 0.12, 0.08, 0.05, 0.03, 0.02};
#define N_GRID (sizeof lambda_grid / sizeof lambda_grid[0])
/* Share of observed cells held out to choose lambda. */
#define HOLDOUT_FRAC 0.1

void lp_softimpute_clear(lp_softimpute *si)
{
    free(si->mu);
    free(si->sd);
    free(si->v);
    free(si->s);
    memset(si, 0, sizeof *si);
}

typedef struct si_run {
    size_t n, p, rank_cap;
    const double *x;    /* (n, p) standardised, NaN where missing */
    const uint8_t *obs; /* (n, p) 1 where the cell is used as observed */
    double *z;          /* (n, p) current estimate */
    lp_mat *f;          /* (n, p) scratch */
    lp_mat *vt;         /* (k, p) last right singular vectors (owned) */
    double *s;          /* (k,) last singular values (owned) */
    size_t iters;
} si_run;

/* One soft-impute path at lambda from the warm start in r->z. */
static lp_status si_solve(si_run *r, double lambda, size_t max_iter, double tol, lp_err *err)
{
    size_t n = r->n, p = r->p, np = n * p;
    r->iters = 0;
    for (size_t it = 0; it < max_iter; it++) {
        for (size_t i = 0; i < np; i++)
            r->f->v[i] = r->obs[i] ? r->x[i] : r->z[i];
        lp_mat *u = NULL, *vt = NULL;
        double *s = NULL;
        lp_status st = lp_mat_svd(r->f, &u, &s, &vt, err);
        if (st)
            return lp_err_prefix(err, "soft-impute iteration %zu", it + 1);
        size_t k = u->cols;
        /* U diag(shrunk d) -> (n, k), then Z_new = that times Vt (k, p) */
        for (size_t c = 0; c < k; c++) {
            double d = c < r->rank_cap && s[c] > lambda ? s[c] - lambda : 0;
            for (size_t i = 0; i < n; i++)
                u->v[i * k + c] *= d;
        }
        lp_mat zn = {n, p, r->f->v};
        st = lp_mat_gemm(false, false, 1.0, u, vt, 0.0, &zn, err);
        lp_mat_free(u);
        if (st) {
            lp_mat_free(vt);
            free(s);
            return st;
        }
        double num = 0, den = 0;
        for (size_t i = 0; i < np; i++) {
            double dz = zn.v[i] - r->z[i];
            num += dz * dz;
            den += r->z[i] * r->z[i];
            r->z[i] = zn.v[i];
        }
        lp_mat_free(r->vt);
        free(r->s);
        r->vt = vt;
        r->s = s;
        r->iters = it + 1;
        if (!isfinite(num))
            return lp_err_set(err, LP_ENUMERIC, "soft-impute: non-finite estimate at iteration "
                              "%zu (lambda %g)", it + 1, lambda);
        if (den > 0 && num / den < tol)
            break;
    }
    return LP_OK;
}

lp_status lp_softimpute_fit(const double *x, size_t n, size_t p, const lp_cleaner_opts *o,
                            lp_softimpute *si, lp_err *err)
{
    memset(si, 0, sizeof *si);
    if (!n || !p)
        return lp_err_set(err, LP_EINVAL, "soft-impute: empty matrix (%zu, %zu)", n, p);
    size_t np = n * p;
    si->p = p;
    si->mu = lp_calloc(p, sizeof(double));
    si->sd = lp_calloc(p, sizeof(double));
    double *xs = lp_mallocarray(np, sizeof(double));
    uint8_t *obs = lp_calloc(np, 1), *train = lp_calloc(np, 1);
    si_run r = {.n = n, .p = p, .x = xs, .z = lp_calloc(np, sizeof(double)),
                .f = lp_mat_new(n, p)};
    lp_status st = LP_OK;
    if (!si->mu || !si->sd || !xs || !obs || !train || !r.z || !r.f) {
        st = lp_err_set(err, LP_ENOMEM, "soft-impute: out of memory for (%zu, %zu)", n, p);
        goto done;
    }
    /* column means and population standard deviations over observed cells, (p,) */
    for (size_t j = 0; j < p; j++) {
        double sum = 0, ss = 0;
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (!isnan(x[i * p + j])) {
                sum += x[i * p + j];
                m++;
            }
        double mu = m ? sum / (double)m : 0;
        for (size_t i = 0; i < n; i++)
            if (!isnan(x[i * p + j]))
                ss += (x[i * p + j] - mu) * (x[i * p + j] - mu);
        double sd = m ? sqrt(ss / (double)m) : 0;
        si->mu[j] = mu;
        si->sd[j] = sd > 0 && isfinite(sd) ? sd : 1;
    }
    for (size_t i = 0; i < np; i++) {
        size_t j = i % p;
        obs[i] = !isnan(x[i]);
        xs[i] = obs[i] ? (x[i] - si->mu[j]) / si->sd[j] : NAN;
    }
    size_t kmax = n < p ? n : p;
    r.rank_cap = o->svd_max_rank && o->svd_max_rank < kmax ? o->svd_max_rank : kmax;

    /* top singular value of the mean-filled matrix scales lambda */
    r.obs = obs;
    st = si_solve(&r, INFINITY, 1, 0, err);
    if (st)
        goto done;
    double smax = r.s[0];
    memset(r.z, 0, np * sizeof(double));

    double frac = o->svd_lambda;
    if (frac <= 0) {
        /* hold out HOLDOUT_FRAC of the observed cells, pick the grid value whose fit predicts
           them best (RMSE, standardised units) */
        lp_rng rng;
        lp_rng_seed(&rng, o->seed);
        size_t n_held = 0;
        for (size_t i = 0; i < np; i++) {
            bool held = obs[i] && lp_rng_uniform(&rng) < HOLDOUT_FRAC;
            train[i] = obs[i] && !held;
            n_held += held;
        }
        frac = 0.1;
        if (n_held >= 10) {
            r.obs = train;
            double best = INFINITY;
            for (size_t g = 0; g < N_GRID; g++) {
                st = si_solve(&r, lambda_grid[g] * smax, o->svd_max_iter, o->svd_tol, err);
                if (st)
                    goto done;
                double sse = 0;
                for (size_t i = 0; i < np; i++)
                    if (obs[i] && !train[i])
                        sse += (r.z[i] - xs[i]) * (r.z[i] - xs[i]);
                if (sse < best) {
                    best = sse;
                    frac = lambda_grid[g];
                }
            }
            memset(r.z, 0, np * sizeof(double));
        }
    }
    r.obs = obs;
    si->lambda = frac * smax;
    st = si_solve(&r, si->lambda, o->svd_max_iter, o->svd_tol, err);
    if (st)
        goto done;
    si->iters = r.iters;
    size_t k = r.vt->rows, kept = 0;
    for (size_t c = 0; c < k && c < r.rank_cap; c++)
        kept += r.s[c] > si->lambda;
    si->r = kept;
    si->v = lp_calloc(p * (kept ? kept : 1), sizeof(double));
    si->s = lp_calloc(kept ? kept : 1, sizeof(double));
    if (!si->v || !si->s) {
        st = lp_err_set(err, LP_ENOMEM, "soft-impute: out of memory");
        goto done;
    }
    for (size_t c = 0; c < kept; c++) {
        si->s[c] = r.s[c];
        for (size_t j = 0; j < p; j++)
            si->v[j * kept + c] = r.vt->v[c * p + j];
    }
done:
    free(xs);
    free(obs);
    free(train);
    free(r.z);
    lp_mat_free(r.f);
    lp_mat_free(r.vt);
    free(r.s);
    if (st)
        lp_softimpute_clear(si);
    return st;
}

/* The fold-in iterates z_M <- (P z)_M with P = V diag(w) V^T, w_k = 1 - lambda / s_k in
 * (0, 1): the same map that takes a training row's fill to its soft-impute estimate at
 * convergence (Z = F V diag(w) V^T). Its fixed point solves (I - P_MM) z_M = P_MO z_O; the
 * matrix is symmetric positive definite (eigenvalues >= lambda / s_1 > 0), so the limit is
 * computed directly by Cholesky instead of iterating. */
lp_status lp_softimpute_row(const lp_softimpute *si, double *row, double *work, size_t *iwork,
                            lp_err *err)
{
    size_t p = si->p, r = si->r, m = 0;
    double *z = work, *a = work + p, *b = work + p + p * p;
    size_t *miss = iwork;
    for (size_t j = 0; j < p; j++) {
        if (isnan(row[j])) {
            miss[m++] = j;
            z[j] = 0;
        } else {
            /* an infinite value carries no usable information: treat it as unobserved */
            z[j] = isfinite(row[j]) ? (row[j] - si->mu[j]) / si->sd[j] : 0;
        }
    }
    if (!m)
        return LP_OK;
    if (r) {
        /* A = I - P_MM (m, m), b = P_MO z_O (m,) */
        for (size_t a_i = 0; a_i < m; a_i++) {
            const double *va = si->v + miss[a_i] * r;
            for (size_t b_i = 0; b_i < m; b_i++) {
                const double *vb = si->v + miss[b_i] * r;
                double pij = 0;
                for (size_t k = 0; k < r; k++)
                    pij += va[k] * (1 - si->lambda / si->s[k]) * vb[k];
                a[a_i * m + b_i] = (a_i == b_i) - pij;
            }
            double bi = 0;
            for (size_t j = 0; j < p; j++) {
                if (!isfinite(row[j]))
                    continue;
                const double *vj = si->v + j * r;
                double pij = 0;
                for (size_t k = 0; k < r; k++)
                    pij += va[k] * (1 - si->lambda / si->s[k]) * vj[k];
                bi += pij * z[j];
            }
            b[a_i] = bi;
        }
        lp_mat am = {m, m, a}, bm = {m, 1, b};
        lp_status st = lp_mat_cholesky_solve(&am, &bm, err);
        if (st)
            return lp_err_prefix(err, "soft-impute fold-in");
        for (size_t i = 0; i < m; i++)
            z[miss[i]] = b[i];
    }
    for (size_t i = 0; i < m; i++) {
        size_t j = miss[i];
        row[j] = si->mu[j] + si->sd[j] * z[j];
    }
    return LP_OK;
}
