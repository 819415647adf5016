/*
 * kernelshap.c - Kernel SHAP for any model (Lundberg & Lee 2017, "A unified approach to
 * interpreting model predictions", Theorem 2 and the Kernel SHAP section; the sampling scheme
 * follows the shap package's KernelExplainer in spirit, not in its exact random stream).
 *
 * For one design row x, background rows B (nb, d) and features = groups of design columns:
 *   v(z) = mean_b F(h(z, b)), h taking the columns of the groups in z from x, the rest from b;
 *   v(0) = mean_b F(b) is the base value, v(1) = F(x).
 * Features whose columns equal every background row's (they cannot change v) are not varying
 * and get exactly 0; the M varying ones enter the regression. Coalitions: every z with
 * 0 < |z| < M, weighted by the Shapley kernel pi(z) = (M - 1) / (C(M, |z|) |z| (M - |z|)),
 * when 2^M - 2 <= samples (then the solution is the exact Shapley value of v); else `samples`
 * coalitions drawn in complementary pairs, the size s with probability proportional to
 * (M - 1) / (s (M - s)) and then a uniform subset of that size, each weighted equally (the
 * kernel is then in the sampling). The efficiency constraint sum phi = v(1) - v(0) is
 * eliminated exactly through the last varying feature, and the (M - 1)-square normal equations
 * are solved in double by Gaussian elimination with partial pivoting (a ridge of 1e-12 of the
 * diagonal's mean guards rank-deficient samples).
 *
 * Cost: (number of coalitions) x nb model evaluations per row, in chunks of at most ~4M floats.
 */
#include "explain/explain_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define KS_CHUNK_FLOATS ((size_t)1 << 22)

static bool same(float a, float b) { return a == b || (isnan(a) && isnan(b)); }

/* Solve A (m, m) u = r in place (A, r destroyed); false when singular. */
static bool solve(double *A, double *r, size_t m)
{
    for (size_t c = 0; c < m; c++) {
        size_t piv = c;
        for (size_t i = c + 1; i < m; i++)
            if (fabs(A[i * m + c]) > fabs(A[piv * m + c]))
                piv = i;
        if (!(fabs(A[piv * m + c]) > 0.0))
            return false;
        if (piv != c) {
            for (size_t j = 0; j < m; j++) {
                double t = A[c * m + j];
                A[c * m + j] = A[piv * m + j];
                A[piv * m + j] = t;
            }
            double t = r[c];
            r[c] = r[piv];
            r[piv] = t;
        }
        for (size_t i = c + 1; i < m; i++) {
            double f = A[i * m + c] / A[c * m + c];
            if (f == 0.0)
                continue;
            for (size_t j = c; j < m; j++)
                A[i * m + j] -= f * A[c * m + j];
            r[i] -= f * r[c];
        }
    }
    for (size_t c = m; c-- > 0;) {
        double s = r[c];
        for (size_t j = c + 1; j < m; j++)
            s -= A[c * m + j] * r[j];
        r[c] = s / A[c * m + c];
    }
    return true;
}

static double log_choose(size_t n, size_t k)
{
    return lgamma((double)n + 1) - lgamma((double)k + 1) - lgamma((double)(n - k) + 1);
}

lp_status lp_kernelshap_row(const lp_xscorer *s, const lp_xgroups *g, const float *x,
                            const float *B, size_t nb, size_t k, size_t samples, uint64_t seed,
                            int threads, double *phi, double *fx, double *base, lp_err *err)
{
    size_t d = s->d, K = s->K, p = g->p;
    if (nb == 0)
        return lp_err_set(err, LP_EINVAL, "kernelshap needs a background sample (0 rows given)");
    lp_status st = LP_OK;
    double *fb = lp_mallocarray(nb * K + K, sizeof(double));
    uint8_t *vary = lp_calloc(p + 1, 1);
    size_t *vid = lp_mallocarray(p + 1, sizeof(size_t));
    if (!fb || !vary || !vid) {
        st = lp_err_set(err, LP_ENOMEM, "kernelshap: out of memory");
        goto out0;
    }
    memset(phi, 0, p * sizeof(double));
    /* v(1), v(0) */
    st = lp_xscorer_raw(s, x, 1, 1, fb, err);
    if (st)
        goto out0;
    double v1 = fb[k];
    st = lp_xscorer_raw(s, B, nb, threads, fb, err);
    if (st)
        goto out0;
    double v0 = 0.0;
    for (size_t b = 0; b < nb; b++)
        v0 += fb[b * K + k];
    v0 /= (double)nb;
    *fx = v1;
    *base = v0;
    for (size_t j = 0; j < d; j++) {
        size_t gj = (size_t)g->group[j];
        for (size_t b = 0; b < nb && !vary[gj]; b++)
            if (!same(x[j], B[b * d + j]))
                vary[gj] = 1;
    }
    size_t M = 0;
    for (size_t q = 0; q < p; q++)
        if (vary[q])
            vid[M++] = q;
    if (M == 0)
        goto out0;
    if (M == 1) {
        phi[vid[0]] = v1 - v0;
        goto out0;
    }
    /* the coalitions: nz masks over the M varying features, (nz, M) bytes, and weights */
    bool exact = M < 31 && ((size_t)1 << M) - 2 <= samples;
    size_t nz = exact ? ((size_t)1 << M) - 2 : (samples + 1) / 2 * 2;
    uint8_t *Z = lp_mallocarray(nz, M);
    double *w = lp_mallocarray(nz, sizeof(double));
    double *v = lp_mallocarray(nz, sizeof(double));
    size_t *perm = lp_mallocarray(M, sizeof(size_t));
    double *cdf = lp_mallocarray(M, sizeof(double));
    size_t rows_per_chunk = KS_CHUNK_FLOATS / (nb * d + 1);
    if (rows_per_chunk < 1)
        rows_per_chunk = 1;
    float *H = lp_mallocarray(rows_per_chunk * nb, d * sizeof(float));
    double *out = lp_mallocarray(rows_per_chunk * nb, K * sizeof(double));
    size_t m1 = M - 1;
    double *A = lp_calloc(m1 * m1 + 1, sizeof(double));
    double *r = lp_calloc(m1 + 1, sizeof(double));
    uint8_t *inz = lp_mallocarray(p + 1, 1);
    if (!Z || !w || !v || !perm || !cdf || !H || !out || !A || !r || !inz) {
        st = lp_err_set(err, LP_ENOMEM, "kernelshap: out of memory for %zu coalitions", nz);
        goto out1;
    }
    if (exact) {
        for (size_t c = 0; c < nz; c++) {
            size_t mask = c + 1, sz = 0;
            for (size_t j = 0; j < M; j++) {
                Z[c * M + j] = (uint8_t)((mask >> j) & 1u);
                sz += Z[c * M + j];
            }
            w[c] = exp(log((double)(M - 1)) - log_choose(M, sz) - log((double)sz) -
                       log((double)(M - sz)));
        }
    } else {
        lp_rng rng;
        lp_rng_seed(&rng, seed ^ 0x4B45524E454CULL);
        /* cdf over sizes 1..M-1 of (M - 1) / (s (M - s)) */
        double tot = 0.0;
        for (size_t sz = 1; sz < M; sz++) {
            tot += 1.0 / ((double)sz * (double)(M - sz));
            cdf[sz] = tot;
        }
        for (size_t c = 0; c < nz; c += 2) {
            double u = lp_rng_uniform(&rng) * tot;
            size_t sz = 1;
            while (sz < M - 1 && cdf[sz] < u)
                sz++;
            for (size_t j = 0; j < M; j++)
                perm[j] = j;
            for (size_t j = 0; j < sz; j++) {
                size_t t = j + (size_t)lp_rng_below(&rng, M - j);
                size_t tmp = perm[j];
                perm[j] = perm[t];
                perm[t] = tmp;
            }
            memset(Z + c * M, 0, M);
            for (size_t j = 0; j < sz; j++)
                Z[c * M + perm[j]] = 1;
            for (size_t j = 0; j < M; j++)
                Z[(c + 1) * M + j] = (uint8_t)!Z[c * M + j];
            w[c] = w[c + 1] = 1.0;
        }
    }
    /* v(z) for every coalition, in chunks of rows_per_chunk coalitions */
    for (size_t c0 = 0; c0 < nz && !st; c0 += rows_per_chunk) {
        size_t nc = nz - c0 < rows_per_chunk ? nz - c0 : rows_per_chunk;
        for (size_t c = 0; c < nc; c++) {
            memset(inz, 0, p);
            for (size_t j = 0; j < M; j++)
                inz[vid[j]] = Z[(c0 + c) * M + j];
            for (size_t b = 0; b < nb; b++) {
                float *h = H + (c * nb + b) * d;
                const float *bb = B + b * d;
                for (size_t j = 0; j < d; j++)
                    h[j] = inz[g->group[j]] ? x[j] : bb[j];
            }
        }
        st = lp_xscorer_raw(s, H, nc * nb, threads, out, err);
        for (size_t c = 0; !st && c < nc; c++) {
            double m = 0.0;
            for (size_t b = 0; b < nb; b++)
                m += out[(c * nb + b) * K + k];
            v[c0 + c] = m / (double)nb;
        }
    }
    if (st)
        goto out1;
    /* constrained WLS: y = v - v0 - z_last (v1 - v0) ~ sum_{j < M-1} phi_j (z_j - z_last) */
    double delta = v1 - v0;
    for (size_t c = 0; c < nz; c++) {
        const uint8_t *z = Z + c * M;
        double zl = z[m1], y = v[c] - v0 - zl * delta;
        for (size_t a = 0; a < m1; a++) {
            double xa = (double)z[a] - zl;
            if (xa == 0.0)
                continue;
            r[a] += w[c] * xa * y;
            for (size_t b2 = 0; b2 < m1; b2++)
                A[a * m1 + b2] += w[c] * xa * ((double)z[b2] - zl);
        }
    }
    double tr = 0.0;
    for (size_t a = 0; a < m1; a++)
        tr += A[a * m1 + a];
    for (size_t a = 0; a < m1; a++)
        A[a * m1 + a] += 1e-12 * tr / (double)m1;
    if (!solve(A, r, m1)) {
        st = lp_err_set(err, LP_ENUMERIC, "kernelshap: singular system with %zu coalitions for "
                        "%zu features (raise --samples)", nz, M);
        goto out1;
    }
    double sum = 0.0;
    for (size_t a = 0; a < m1; a++) {
        phi[vid[a]] = r[a];
        sum += r[a];
    }
    phi[vid[m1]] = delta - sum;
out1:
    free(Z);
    free(w);
    free(v);
    free(perm);
    free(cdf);
    free(H);
    free(out);
    free(A);
    free(r);
    free(inz);
out0:
    free(fb);
    free(vary);
    free(vid);
    return st;
}
