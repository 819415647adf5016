/*
 * cuda_mf.cu - the recommender ops of the CUDA table: implicit-ALS half-steps (Hu, Koren &
 * Volinsky 2008) with every per-row normal equation built and solved on the device, and BPR
 * (Rendle et al. 2009) sampled-triple SGD with Philox draws on the device. Formulas and draws
 * are host_mf.c's (see backend.h: als_solve, bpr_epoch).
 *
 * ALS, per chunk of rows (the caller sizes the double workspace ws (chunk, k k + k)):
 *   k_als_build  one block (LP_CU_THREADS) per row; the lower triangle of A = G + lambda I +
 *                sum_t alpha w_t f_t f_t^T in 4x4 register tiles (float, the row's column
 *                order, as the CPU), b = sum_t (1 + alpha w_t) f_t; stored as double.
 *   k_als_chol   one block per row: right-looking Cholesky in double in the workspace (k steps,
 *                the trailing update spread over the block), then the two triangular solves;
 *                x_r = (float) solution. A non-positive pivot or a non-finite solution writes
 *                the row into head->bad (atomicMin on an integer: the first bad row wins).
 * BPR:
 *   k_bpr_hogwild  one warp per sample (grid-stride), lane 0 draws the triple, the warp forms
 *                  z by shuffles in double and updates its factors lock-free (Hogwild, Niu et
 *                  al. 2011: concurrent samples touching one item race, so runs differ).
 *                  Per-block loss / count partials go to part (2 per block, <= 512 blocks).
 *   batched        per mini-batch of B samples: k_bpr_grad (warp per sample) writes each
 *                  sample's three steps (3, k) from the factors at the batch start, with keys
 *                  (user; item of i, item of j) and row indices; cub's radix sort (stable,
 *                  its scratch allocated once per epoch by the caller) groups the keys keeping
 *                  sample order; k_bpr_apply gives each distinct key
 *                  to one warp that adds its steps in that order. No float atomics anywhere:
 *                  two runs are bit-identical.
 */
#include "backend/cuda_common.cuh"

#include <climits>
#include <cub/device/device_radix_sort.cuh>

#define ALS_T 4 /* register tile edge of k_als_build */

__global__ void k_als_build(size_t r0, size_t nr, size_t k, const int32_t *ptr, const int32_t *col,
                            const float *w, const float *f, const float *gram, float lambda,
                            float alpha, double *ws)
{
    size_t nt = (k + ALS_T - 1) / ALS_T, ntiles = nt * (nt + 1) / 2;
    for (size_t rr = blockIdx.x; rr < nr; rr += gridDim.x) {
        size_t r = r0 + rr;
        int32_t p0 = ptr[r], p1 = ptr[r + 1];
        double *a = ws + rr * (k * k + k), *b = a + k * k; /* (k, k), (k) */
        for (size_t q = threadIdx.x; q < ntiles; q += blockDim.x) {
            /* tile (ta, tb), ta >= tb, numbered row by row through the lower triangle */
            size_t ta = (size_t)((sqrt(8.0 * (double)q + 1.0) - 1.0) / 2.0);
            while (ta * (ta + 1) / 2 > q)
                ta--;
            while ((ta + 1) * (ta + 2) / 2 <= q)
                ta++;
            size_t tb = q - ta * (ta + 1) / 2;
            float acc[ALS_T][ALS_T];
#pragma unroll
            for (int i = 0; i < ALS_T; i++)
#pragma unroll
                for (int j = 0; j < ALS_T; j++) {
                    size_t ra = ta * ALS_T + i, cb = tb * ALS_T + j;
                    acc[i][j] =
                        ra < k && cb < k ? gram[ra * k + cb] + (ra == cb ? lambda : 0.0f) : 0.0f;
                }
            for (int32_t t = p0; t < p1; t++) {
                const float *fj = f + (size_t)col[t] * k; /* (k) */
                float c1 = alpha * w[t], fa[ALS_T], fb[ALS_T];
#pragma unroll
                for (int i = 0; i < ALS_T; i++) {
                    size_t ra = ta * ALS_T + i, cb = tb * ALS_T + i;
                    fa[i] = ra < k ? c1 * fj[ra] : 0.0f;
                    fb[i] = cb < k ? fj[cb] : 0.0f;
                }
#pragma unroll
                for (int i = 0; i < ALS_T; i++)
#pragma unroll
                    for (int j = 0; j < ALS_T; j++)
                        acc[i][j] += fa[i] * fb[j];
            }
#pragma unroll
            for (int i = 0; i < ALS_T; i++)
#pragma unroll
                for (int j = 0; j < ALS_T; j++) {
                    size_t ra = ta * ALS_T + i, cb = tb * ALS_T + j;
                    if (ra < k && cb <= ra)
                        a[ra * k + cb] = acc[i][j];
                }
        }
        for (size_t q = threadIdx.x; q < k; q += blockDim.x) {
            float s = 0.0f;
            for (int32_t t = p0; t < p1; t++)
                s += (1.0f + alpha * w[t]) * f[(size_t)col[t] * k + q];
            b[q] = s;
        }
    }
}

__global__ void k_als_chol(size_t r0, size_t nr, size_t k, double *ws, float *x, lp_cu_head *head)
{
    __shared__ double piv;
    __shared__ int ok;
    for (size_t rr = blockIdx.x; rr < nr; rr += gridDim.x) {
        double *a = ws + rr * (k * k + k), *b = a + k * k;
        if (threadIdx.x == 0)
            ok = 1;
        __syncthreads();
        for (size_t j = 0; j < k; j++) {
            if (threadIdx.x == 0) {
                double d = a[j * k + j];
                ok = d > 0;
                piv = ok ? sqrt(d) : 1.0;
                a[j * k + j] = piv;
            }
            __syncthreads();
            if (!ok)
                break;
            for (size_t i = j + 1 + threadIdx.x; i < k; i += blockDim.x)
                a[i * k + j] /= piv;
            __syncthreads();
            size_t m = k - j - 1;
            for (size_t e = threadIdx.x; e < m * m; e += blockDim.x) {
                size_t i = j + 1 + e / m, l = j + 1 + e % m;
                if (l <= i)
                    a[i * k + l] -= a[i * k + j] * a[l * k + j];
            }
            __syncthreads();
        }
        if (ok) {
            for (size_t i = 0; i < k; i++) { /* L y = b */
                if (threadIdx.x == 0)
                    b[i] /= a[i * k + i];
                __syncthreads();
                for (size_t l = i + 1 + threadIdx.x; l < k; l += blockDim.x)
                    b[l] -= a[l * k + i] * b[i];
                __syncthreads();
            }
            for (size_t i = k; i-- > 0;) { /* L^T x = y */
                if (threadIdx.x == 0)
                    b[i] /= a[i * k + i];
                __syncthreads();
                for (size_t l = threadIdx.x; l < i; l += blockDim.x)
                    b[l] -= a[i * k + l] * b[i];
                __syncthreads();
            }
            for (size_t q = threadIdx.x; q < k; q += blockDim.x) {
                if (!isfinite(b[q]))
                    ok = 0; /* benign race: every writer stores 0 */
                x[(r0 + rr) * k + q] = (float)b[q];
            }
            __syncthreads();
        }
        if (!ok && threadIdx.x == 0)
            atomicMin(&head->bad, (unsigned long long)(r0 + rr));
        __syncthreads();
    }
}

extern "C" cudaError_t lp_cu_als_solve(cudaStream_t s, size_t n_rows, size_t k, const int32_t *ptr,
                                       const int32_t *col, const float *w, const float *f,
                                       const float *gram, float lambda, float alpha, float *x,
                                       double *ws, size_t chunk, lp_cu_head *head)
{
    for (size_t r0 = 0; r0 < n_rows; r0 += chunk) {
        size_t nr = n_rows - r0 < chunk ? n_rows - r0 : chunk;
        unsigned grid = nr > LP_CU_MAX_GRID ? LP_CU_MAX_GRID : (unsigned)nr;
        k_als_build<<<grid, LP_CU_THREADS, 0, s>>>(r0, nr, k, ptr, col, w, f, gram, lambda, alpha,
                                                   ws);
        k_als_chol<<<grid, LP_CU_THREADS, 0, s>>>(r0, nr, k, ws, x, head);
        cudaError_t e = LP_CU_LAUNCHED();
        if (e != cudaSuccess)
            return e;
    }
    return cudaSuccess;
}

/* ---- BPR ------------------------------------------------------------------------------------ */

typedef struct bpr_args {
    size_t nnz, n_items, k;
    const int32_t *ptr, *col, *row_of;
    uint64_t seed, epoch;
    float lr, reg;
} bpr_args;

/* host_mf.c's lp_bk_bpr_sample, on one thread. */
__device__ bool bpr_draw(const bpr_args &A, uint64_t s, int32_t *u, int32_t *i, int32_t *j)
{
    uint32_t k0 = (uint32_t)A.seed, k1 = (uint32_t)(A.seed >> 32);
    uint32_t w[4] = {(uint32_t)s, (uint32_t)(s >> 32), (uint32_t)A.epoch, 0};
    lp_cu_philox4x32_10(w, k0, k1);
    size_t p = w[0] % A.nnz;
    *u = A.row_of[p];
    *i = A.col[p];
    const int32_t *h = A.col + A.ptr[*u];
    size_t nh = (size_t)(A.ptr[*u + 1] - A.ptr[*u]);
    for (uint32_t m = 1; m <= 16; m++) {
        if (m % 4 == 0) {
            w[0] = (uint32_t)s, w[1] = (uint32_t)(s >> 32), w[2] = (uint32_t)A.epoch, w[3] = m / 4;
            lp_cu_philox4x32_10(w, k0, k1);
        }
        int32_t c = (int32_t)(w[m % 4] % A.n_items);
        size_t lo = 0, hi = nh;
        bool found = false;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (h[mid] < c)
                lo = mid + 1;
            else if (h[mid] > c)
                hi = mid;
            else {
                found = true;
                break;
            }
        }
        if (!found) {
            *j = c;
            return true;
        }
    }
    return false;
}

__device__ __forceinline__ double warp_allsum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double bpr_nll(double z)
{
    return z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z));
}

/* Draw sample s on lane 0 and broadcast; false when it has no negative. */
__device__ bool warp_draw(const bpr_args &A, uint64_t s, int32_t *u, int32_t *i, int32_t *j)
{
    int lane = threadIdx.x & 31, ok = 0;
    int32_t t[3] = {0, 0, 0};
    if (lane == 0)
        ok = bpr_draw(A, s, t, t + 1, t + 2);
    ok = __shfl_sync(0xffffffffu, ok, 0);
    *u = __shfl_sync(0xffffffffu, t[0], 0);
    *i = __shfl_sync(0xffffffffu, t[1], 0);
    *j = __shfl_sync(0xffffffffu, t[2], 0);
    return ok;
}

__device__ double warp_z(const float *xu, const float *yi, const float *yj, size_t k)
{
    double z = 0;
    for (size_t a = threadIdx.x & 31; a < k; a += 32)
        z += (double)xu[a] * (yi[a] - yj[a]);
    return warp_allsum(z);
}

__global__ void k_bpr_hogwild(bpr_args A, size_t n_samples, float *xu, float *yi, double *part)
{
    size_t warps = (size_t)gridDim.x * (blockDim.x / 32);
    size_t wid = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    size_t k = A.k, kf = k - 1;
    double lsum = 0, cnt = 0;
    for (size_t s = wid; s < n_samples; s += warps) {
        int32_t u, i, j;
        if (!warp_draw(A, s, &u, &i, &j))
            continue;
        float *fu = xu + (size_t)u * k, *fi = yi + (size_t)i * k, *fj = yi + (size_t)j * k;
        double z = warp_z(fu, fi, fj, k);
        float g = (float)(1.0 / (1.0 + exp(z)));
        for (size_t a = threadIdx.x & 31; a < k; a += 32) {
            float xa = fu[a], ia = fi[a], ja = fj[a];
            if (a < kf) {
                fu[a] = xa + A.lr * (g * (ia - ja) - A.reg * xa);
                fi[a] = ia + A.lr * (g * xa - A.reg * ia);
                fj[a] = ja + A.lr * (-g * xa - A.reg * ja);
            } else {
                fi[a] = ia + A.lr * (g - A.reg * ia);
                fj[a] = ja + A.lr * (-g - A.reg * ja);
            }
        }
        if ((threadIdx.x & 31) == 0) {
            lsum += bpr_nll(z);
            cnt += 1;
        }
    }
    double t0 = lp_cu_block_sum(lsum);
    __syncthreads();
    double t1 = lp_cu_block_sum(cnt);
    if (threadIdx.x == 0) {
        part[2 * blockIdx.x] = t0;
        part[2 * blockIdx.x + 1] = t1;
    }
}

extern "C" cudaError_t lp_cu_bpr_hogwild(cudaStream_t s, size_t n_items, size_t k, size_t nnz,
                                         const int32_t *ptr, const int32_t *col,
                                         const int32_t *row_of, uint64_t seed, uint64_t epoch,
                                         size_t n_samples, float lr, float reg, float *xu,
                                         float *yi, double *part, unsigned *blocks)
{
    bpr_args A = {nnz, n_items, k, ptr, col, row_of, seed, epoch, lr, reg};
    size_t per_block = LP_CU_THREADS / 32;
    size_t b = (n_samples + per_block - 1) / per_block;
    unsigned grid = b < 1 ? 1 : b > LP_CU_MAX_PARTS / 2 ? LP_CU_MAX_PARTS / 2 : (unsigned)b;
    *blocks = grid;
    k_bpr_hogwild<<<grid, LP_CU_THREADS, 0, s>>>(A, n_samples, xu, yi, part);
    return LP_CU_LAUNCHED();
}

/* Batched: sample q of the batch (s0 + q) writes d (3, k) at rows 3q..3q+2, its keys and
 * rows, and its loss / used flag. A sample without a negative gets INT_MAX keys. */
__global__ void k_bpr_grad(bpr_args A, size_t s0, size_t m, const float *xu, const float *yi,
                           float *d, int32_t *key_u, int32_t *row_u, int32_t *key_i, int32_t *row_i,
                           double *lossv)
{
    size_t warps = (size_t)gridDim.x * (blockDim.x / 32);
    size_t k = A.k, kf = k - 1;
    for (size_t q = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; q < m; q += warps) {
        int32_t u, i, j;
        bool ok = warp_draw(A, s0 + q, &u, &i, &j);
        int lane = threadIdx.x & 31;
        if (lane == 0) {
            key_u[q] = ok ? u : INT_MAX;
            key_i[2 * q] = ok ? i : INT_MAX;
            key_i[2 * q + 1] = ok ? j : INT_MAX;
            row_u[q] = (int32_t)(3 * q);
            row_i[2 * q] = (int32_t)(3 * q + 1);
            row_i[2 * q + 1] = (int32_t)(3 * q + 2);
        }
        if (!ok) {
            if (lane == 0)
                lossv[2 * q] = 0, lossv[2 * q + 1] = 0;
            continue;
        }
        const float *fu = xu + (size_t)u * k, *fi = yi + (size_t)i * k, *fj = yi + (size_t)j * k;
        double z = warp_z(fu, fi, fj, k);
        float g = (float)(1.0 / (1.0 + exp(z)));
        float *du = d + 3 * q * k, *di = du + k, *dj = di + k;
        for (size_t a = lane; a < k; a += 32) {
            float xa = fu[a], ia = fi[a], ja = fj[a];
            if (a < kf) {
                du[a] = A.lr * (g * (ia - ja) - A.reg * xa);
                di[a] = A.lr * (g * xa - A.reg * ia);
                dj[a] = A.lr * (-g * xa - A.reg * ja);
            } else {
                du[a] = 0.0f;
                di[a] = A.lr * (g - A.reg * ia);
                dj[a] = A.lr * (-g - A.reg * ja);
            }
        }
        if (lane == 0)
            lossv[2 * q] = bpr_nll(z), lossv[2 * q + 1] = 1;
    }
}

/* Each run of equal keys (sorted, sample order kept) to one warp: param row key += the steps
 * d[row] in order. */
__global__ void k_bpr_apply(size_t n, size_t k, const int32_t *key, const int32_t *row,
                            const float *d, float *param)
{
    size_t warps = (size_t)gridDim.x * (blockDim.x / 32);
    for (size_t p = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; p < n; p += warps) {
        int32_t kk = key[p];
        if (kk == INT_MAX || (p > 0 && key[p - 1] == kk))
            continue;
        float *dst = param + (size_t)kk * k;
        for (size_t a = threadIdx.x & 31; a < k; a += 32) {
            float v = dst[a];
            for (size_t e = p; e < n && key[e] == kk; e++)
                v += d[(size_t)row[e] * k + a];
            dst[a] = v;
        }
    }
}

/* acc[0..1] = the sums of the batch's (loss, used) pairs, one block in a fixed order. */
__global__ void k_bpr_sum(size_t m, const double *lossv, double *acc)
{
    double l = 0, c = 0;
    for (size_t q = threadIdx.x; q < m; q += blockDim.x)
        l += lossv[2 * q], c += lossv[2 * q + 1];
    double t0 = lp_cu_block_sum(l);
    __syncthreads();
    double t1 = lp_cu_block_sum(c);
    if (threadIdx.x == 0)
        acc[0] = t0, acc[1] = t1;
}

extern "C" size_t lp_cu_bpr_sort_bytes(size_t batch)
{
    size_t bytes = 0;
    cub::DeviceRadixSort::SortPairs(nullptr, bytes, (const int32_t *)nullptr, (int32_t *)nullptr,
                                    (const int32_t *)nullptr, (int32_t *)nullptr, (int)(2 * batch));
    return bytes;
}

extern "C" cudaError_t lp_cu_bpr_batched(cudaStream_t s, size_t n_items, size_t k, size_t nnz,
                                         const int32_t *ptr, const int32_t *col,
                                         const int32_t *row_of, uint64_t seed, uint64_t epoch,
                                         size_t n_samples, float lr, float reg, size_t batch,
                                         float *xu, float *yi, float *d, int32_t *keys,
                                         void *sort_tmp, size_t sort_bytes, double *lossv,
                                         double *acc)
{
    bpr_args A = {nnz, n_items, k, ptr, col, row_of, seed, epoch, lr, reg};
    /* drawn (in) and sorted (out) keys and rows: users (batch), items (2 batch) */
    int32_t *key_u = keys, *row_u = key_u + batch, *key_i = row_u + batch,
            *row_i = key_i + 2 * batch, *key_u2 = row_i + 2 * batch, *row_u2 = key_u2 + batch,
            *key_i2 = row_u2 + batch, *row_i2 = key_i2 + 2 * batch;
    size_t per_block = LP_CU_THREADS / 32;
    for (size_t s0 = 0, b = 0; s0 < n_samples; s0 += batch, b++) {
        size_t m = n_samples - s0 < batch ? n_samples - s0 : batch;
        unsigned g1 = lp_cu_grid_for(m, per_block), g2 = lp_cu_grid_for(2 * m, per_block);
        k_bpr_grad<<<g1, LP_CU_THREADS, 0, s>>>(A, s0, m, xu, yi, d, key_u, row_u, key_i, row_i,
                                                lossv);
        size_t tb = sort_bytes;
        cudaError_t e = cub::DeviceRadixSort::SortPairs(sort_tmp, tb, key_u, key_u2, row_u, row_u2,
                                                        (int)m, 0, 32, s);
        tb = sort_bytes;
        if (e == cudaSuccess)
            e = cub::DeviceRadixSort::SortPairs(sort_tmp, tb, key_i, key_i2, row_i, row_i2,
                                                (int)(2 * m), 0, 32, s);
        if (e != cudaSuccess)
            return e;
        k_bpr_apply<<<g1, LP_CU_THREADS, 0, s>>>(m, k, key_u2, row_u2, d, xu);
        k_bpr_apply<<<g2, LP_CU_THREADS, 0, s>>>(2 * m, k, key_i2, row_i2, d, yi);
        k_bpr_sum<<<1, LP_CU_THREADS, 0, s>>>(m, lossv, acc + 2 * b);
        e = LP_CU_LAUNCHED();
        if (e != cudaSuccess)
            return e;
    }
    return cudaSuccess;
}
