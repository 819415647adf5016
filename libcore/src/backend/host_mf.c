/*
 * host_mf.c - the recommender ops of the kernel table (als_solve, bpr_epoch) for the two CPU
 * tables, their shared argument checks, and the BPR triple draw every table makes.
 *
 * als_solve follows mf.c's CPU solver formula for formula: the system of a row is accumulated
 * in float in the row's column order (G + lambda I, then alpha w_t f_t f_t^T per column) and
 * factored by Cholesky in double. bpr_epoch runs its samples in order on the calling thread
 * (batch 0), or in deterministic mini-batches (batch >= 1): each sample's step is computed
 * from the factors at the start of its batch, then the steps are added factor by factor in
 * sample order, the same order the CUDA table uses.
 *
 * What it does not do: touch mf model structs (the mf family calls these through the table),
 * or sample with lp_rng (the draws are Philox counters, identical on every table).
 */
#include "backend/backend_impl.h"

#include <stdlib.h>
#include <string.h>

lp_status lp_bk_check_als(size_t n_rows, size_t n_f, size_t k, size_t nnz, const int32_t *ptr,
                          const int32_t *col, const float *w, const float *f, const float *gram,
                          float lambda, float alpha, const float *x, bool host_csr, lp_err *err)
{
    const char *op = "als_solve";
    if (k == 0)
        return lp_err_set(err, LP_EINVAL, "%s: k is 0; expected >= 1 factor", op);
    if (nnz > INT32_MAX || n_f > INT32_MAX)
        return lp_err_set(err, LP_EINVAL, "%s: nnz %zu / n_f %zu exceed the int32 indices", op, nnz,
                          n_f);
    if (!(lambda >= 0) || isinf(lambda))
        return lp_err_set(err, LP_EINVAL, "%s: lambda is %g; expected finite >= 0", op,
                          (double)lambda);
    if (!(alpha >= 0) || isinf(alpha))
        return lp_err_set(err, LP_EINVAL, "%s: alpha is %g; expected finite >= 0", op,
                          (double)alpha);
    LP_BK_TRY(lp_bk_need(ptr, n_rows + 1, op, "ptr", err));
    LP_BK_TRY(lp_bk_need(col, nnz, op, "col", err));
    LP_BK_TRY(lp_bk_need(w, nnz, op, "w", err));
    LP_BK_TRY(lp_bk_need(f, nnz ? n_f * k : 0, op, "f", err));
    LP_BK_TRY(lp_bk_need(gram, n_rows ? k * k : 0, op, "gram", err));
    LP_BK_TRY(lp_bk_need(x, n_rows * k, op, "x", err));
    if (nnz && n_f == 0)
        return lp_err_set(err, LP_EINVAL, "%s: %zu entries but n_f is 0", op, nnz);
    if (!host_csr)
        return LP_OK;
    if (ptr[0] != 0 || (size_t)ptr[n_rows] != nnz)
        return lp_err_set(err, LP_EINVAL, "%s: ptr runs from %d to %d; expected 0 to nnz %zu", op,
                          (int)ptr[0], (int)ptr[n_rows], nnz);
    for (size_t r = 0; r < n_rows; r++) {
        if (ptr[r + 1] < ptr[r])
            return lp_err_set(err, LP_EINVAL, "%s: ptr[%zu] > ptr[%zu]; expected ascending", op, r,
                              r + 1);
        for (int32_t t = ptr[r]; t < ptr[r + 1]; t++)
            if (col[t] < 0 || (size_t)col[t] >= n_f)
                return lp_err_set(err, LP_EINVAL, "%s: col[%d] of row %zu is %d; expected 0..%zu",
                                  op, (int)t, r, (int)col[t], n_f - 1);
    }
    return LP_OK;
}

lp_status lp_bk_check_bpr(size_t n_users, size_t n_items, size_t k, size_t nnz, const int32_t *ptr,
                          const int32_t *col, const int32_t *row_of, float lr, float reg,
                          const float *xu, const float *yi, bool host_csr, lp_err *err)
{
    const char *op = "bpr_epoch";
    if (k < 2)
        return lp_err_set(err, LP_EINVAL, "%s: k is %zu; expected >= 2 (factors + the bias)", op,
                          k);
    if (nnz == 0 || n_items == 0 || n_users == 0)
        return lp_err_set(err, LP_EINVAL, "%s: no interactions (nnz %zu, %zu users, %zu items)", op,
                          nnz, n_users, n_items);
    if (nnz > INT32_MAX || n_items > INT32_MAX || n_users > INT32_MAX)
        return lp_err_set(err, LP_EINVAL, "%s: sizes exceed the int32 indices", op);
    if (!(lr > 0) || isinf(lr))
        return lp_err_set(err, LP_EINVAL, "%s: lr is %g; expected finite > 0", op, (double)lr);
    if (!(reg >= 0) || isinf(reg))
        return lp_err_set(err, LP_EINVAL, "%s: reg is %g; expected finite >= 0", op, (double)reg);
    LP_BK_TRY(lp_bk_need(ptr, n_users + 1, op, "ptr", err));
    LP_BK_TRY(lp_bk_need(col, nnz, op, "col", err));
    LP_BK_TRY(lp_bk_need(row_of, nnz, op, "row_of", err));
    LP_BK_TRY(lp_bk_need(xu, n_users * k, op, "xu", err));
    LP_BK_TRY(lp_bk_need(yi, n_items * k, op, "yi", err));
    if (!host_csr)
        return LP_OK;
    if (ptr[0] != 0 || (size_t)ptr[n_users] != nnz)
        return lp_err_set(err, LP_EINVAL, "%s: ptr runs from %d to %d; expected 0 to nnz %zu", op,
                          (int)ptr[0], (int)ptr[n_users], nnz);
    for (size_t u = 0; u < n_users; u++)
        for (int32_t t = ptr[u]; t < ptr[u + 1]; t++) {
            if (col[t] < 0 || (size_t)col[t] >= n_items || (t > ptr[u] && col[t] <= col[t - 1]))
                return lp_err_set(err, LP_EINVAL,
                                  "%s: col[%d] of user %zu is %d; expected ascending in 0..%zu", op,
                                  (int)t, u, (int)col[t], n_items - 1);
            if ((size_t)row_of[t] != u)
                return lp_err_set(err, LP_EINVAL, "%s: row_of[%d] is %d; expected %zu", op, (int)t,
                                  (int)row_of[t], u);
        }
    return LP_OK;
}

static bool sorted_has(const int32_t *a, size_t n, int32_t v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a[mid] < v)
            lo = mid + 1;
        else if (a[mid] > v)
            hi = mid;
        else
            return true;
    }
    return false;
}

bool lp_bk_bpr_sample(uint64_t seed, uint64_t epoch, uint64_t s, size_t nnz, size_t n_items,
                      const int32_t *ptr, const int32_t *col, const int32_t *row_of, int32_t *u,
                      int32_t *i, int32_t *j)
{
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)}, word[4];
    uint32_t ctr[4] = {(uint32_t)s, (uint32_t)(s >> 32), (uint32_t)epoch, 0};
    lp_philox4x32(ctr, key, word);
    size_t p = word[0] % nnz;
    *u = row_of[p];
    *i = col[p];
    const int32_t *h = col + ptr[*u];
    size_t nh = (size_t)(ptr[*u + 1] - ptr[*u]);
    for (uint32_t m = 1; m <= LP_BK_BPR_DRAWS; m++) {
        if (m % 4 == 0) {
            ctr[3] = m / 4;
            lp_philox4x32(ctr, key, word);
        }
        int32_t c = (int32_t)(word[m % 4] % n_items);
        if (!sorted_has(h, nh, c)) {
            *j = c;
            return true;
        }
    }
    return false;
}

/* ---- ALS ------------------------------------------------------------------------------------ */

/* Cholesky of the (k, k) SPD matrix a in place (lower), then the solve of L L^T x = b in b. */
static bool chol_solve(double *a, double *b, size_t k)
{
    for (size_t j = 0; j < k; j++) {
        double d = a[j * k + j];
        for (size_t l = 0; l < j; l++)
            d -= a[j * k + l] * a[j * k + l];
        if (!(d > 0))
            return false;
        d = sqrt(d);
        a[j * k + j] = d;
        for (size_t i = j + 1; i < k; i++) {
            double v = a[i * k + j];
            for (size_t l = 0; l < j; l++)
                v -= a[i * k + l] * a[j * k + l];
            a[i * k + j] = v / d;
        }
    }
    for (size_t i = 0; i < k; i++) {
        double v = b[i];
        for (size_t l = 0; l < i; l++)
            v -= a[i * k + l] * b[l];
        b[i] = v / a[i * k + i];
    }
    for (size_t i = k; i-- > 0;) {
        double v = b[i];
        for (size_t l = i + 1; l < k; l++)
            v -= a[l * k + i] * b[l];
        b[i] = v / a[i * k + i];
    }
    return true;
}

/* One row: af (k, k) float scratch, a (k, k) + b (k) double scratch, bf (k) float. */
static bool als_row(size_t k, const int32_t *cols, const float *w, size_t n, const float *f,
                    const float *gram, float lambda, float alpha, float *af, float *bf, double *a,
                    double *b, float *x)
{
    memcpy(af, gram, k * k * sizeof(float));
    for (size_t q = 0; q < k; q++)
        af[q * k + q] += lambda;
    memset(bf, 0, k * sizeof(float));
    for (size_t t = 0; t < n; t++) {
        const float *fj = f + (size_t)cols[t] * k; /* (k) */
        float c1 = alpha * w[t];
        for (size_t q = 0; q < k; q++)
            bf[q] += (1.0f + c1) * fj[q];
        for (size_t p = 0; p < k; p++) {
            float s = c1 * fj[p];
            for (size_t q = 0; q < k; q++)
                af[p * k + q] += s * fj[q];
        }
    }
    for (size_t t = 0; t < k * k; t++)
        a[t] = af[t];
    for (size_t q = 0; q < k; q++)
        b[q] = bf[q];
    if (!chol_solve(a, b, k))
        return false;
    for (size_t q = 0; q < k; q++) {
        if (!isfinite(b[q]))
            return false;
        x[q] = (float)b[q];
    }
    return true;
}

lp_status lp_bk_host_als_solve(size_t n_rows, size_t n_f, size_t k, size_t nnz, const int32_t *ptr,
                               const int32_t *col, const float *w, const float *f,
                               const float *gram, float lambda, float alpha, float *x,
                               bool parallel, lp_err *err)
{
    LP_BK_TRY(
        lp_bk_check_als(n_rows, n_f, k, nnz, ptr, col, w, f, gram, lambda, alpha, x, true, err));
    size_t bad = SIZE_MAX;
    int oom = 0;
#pragma omp parallel if (parallel && n_rows * k * k >= LP_BACKEND_OMP_MIN)
    {
        float *af = lp_mallocarray(k * k + k, sizeof(float));
        double *a = lp_mallocarray(k * k + k, sizeof(double));
        if (!af || !a) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(dynamic, 16)
        for (size_t r = 0; r < n_rows; r++) {
            if (!af || !a)
                continue;
            int32_t p0 = ptr[r];
            if (!als_row(k, col + p0, w + p0, (size_t)(ptr[r + 1] - p0), f, gram, lambda, alpha, af,
                         af + k * k, a, a + k * k, x + r * k)) {
#pragma omp critical(lp_bk_als_bad)
                bad = r < bad ? r : bad;
            }
        }
        free(af);
        free(a);
    }
    if (oom)
        return lp_err_set(err, LP_ENOMEM, "als_solve: out of memory for %zu-factor scratch", k);
    if (bad != SIZE_MAX)
        return lp_err_set(err, LP_ENUMERIC,
                          "als_solve: row %zu gave a non-finite or non-positive-definite system",
                          bad);
    return LP_OK;
}

/* ---- BPR ------------------------------------------------------------------------------------ */

/* z = x_u . (y_i - y_j) in double, and the sample's -log sigmoid(z) without overflow. */
static double bpr_z(const float *xu, const float *yi, const float *yj, size_t k)
{
    double z = 0;
    for (size_t a = 0; a < k; a++)
        z += (double)xu[a] * (yi[a] - yj[a]);
    return z;
}

static double bpr_nll(double z)
{
    return z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z));
}

/* The step of one sample into du, di, dj (k each) from the current factors. */
static void bpr_step(const float *xu, const float *yi, const float *yj, size_t k, float lr,
                     float reg, double z, float *du, float *di, float *dj)
{
    size_t kf = k - 1;
    float g = (float)(1.0 / (1.0 + exp(z))); /* sigmoid(-z) */
    for (size_t a = 0; a < kf; a++) {
        du[a] = lr * (g * (yi[a] - yj[a]) - reg * xu[a]);
        di[a] = lr * (g * xu[a] - reg * yi[a]);
        dj[a] = lr * (-g * xu[a] - reg * yj[a]);
    }
    du[kf] = 0;
    di[kf] = lr * (g - reg * yi[kf]);
    dj[kf] = lr * (-g - reg * yj[kf]);
}

lp_status lp_bk_host_bpr_epoch(size_t n_users, size_t n_items, size_t k, size_t nnz,
                               const int32_t *ptr, const int32_t *col, const int32_t *row_of,
                               uint64_t seed, uint64_t epoch, size_t n_samples, float lr, float reg,
                               size_t batch, float *xu, float *yi, double *loss, size_t *used,
                               lp_err *err)
{
    LP_BK_TRY(
        lp_bk_check_bpr(n_users, n_items, k, nnz, ptr, col, row_of, lr, reg, xu, yi, true, err));
    LP_BK_TRY(lp_bk_need(loss, 1, "bpr_epoch", "loss", err));
    LP_BK_TRY(lp_bk_need(used, 1, "bpr_epoch", "used", err));
    size_t nb = batch ? batch : 1;
    float *d = lp_mallocarray(nb * 3 * k, sizeof(float)); /* (nb, 3, k) steps */
    int32_t *t = lp_mallocarray(nb * 3, sizeof(int32_t)); /* (nb, 3) u, i, j; u -1 skipped */
    if (!d || !t) {
        free(d), free(t);
        return lp_err_set(err, LP_ENOMEM, "bpr_epoch: out of memory for a batch of %zu", nb);
    }
    double total = 0;
    size_t n_used = 0;
    for (size_t s0 = 0; s0 < n_samples; s0 += nb) {
        size_t m = n_samples - s0 < nb ? n_samples - s0 : nb;
        for (size_t q = 0; q < m; q++) {
            int32_t *tq = t + 3 * q;
            if (!lp_bk_bpr_sample(seed, epoch, s0 + q, nnz, n_items, ptr, col, row_of, tq, tq + 1,
                                  tq + 2)) {
                tq[0] = -1;
                continue;
            }
            float *fu = xu + (size_t)tq[0] * k, *fi = yi + (size_t)tq[1] * k,
                  *fj = yi + (size_t)tq[2] * k, *dq = d + 3 * k * q;
            double z = bpr_z(fu, fi, fj, k);
            total += bpr_nll(z);
            n_used++;
            bpr_step(fu, fi, fj, k, lr, reg, z, dq, dq + k, dq + 2 * k);
            if (!batch) /* sequential: apply at once */
                for (size_t a = 0; a < k; a++) {
                    fu[a] += dq[a];
                    fi[a] += dq[k + a];
                    fj[a] += dq[2 * k + a];
                }
        }
        if (!batch)
            continue;
        /* mini-batch: every step came from the factors at the batch start; add in order */
        for (size_t q = 0; q < m; q++) {
            const int32_t *tq = t + 3 * q;
            if (tq[0] < 0)
                continue;
            const float *dq = d + 3 * k * q;
            float *fu = xu + (size_t)tq[0] * k, *fi = yi + (size_t)tq[1] * k,
                  *fj = yi + (size_t)tq[2] * k;
            for (size_t a = 0; a < k; a++) {
                fu[a] += dq[a];
                fi[a] += dq[k + a];
                fj[a] += dq[2 * k + a];
            }
        }
    }
    free(d), free(t);
    *loss = total;
    *used = n_used;
    return LP_OK;
}
