/*
 * cuda_transformer.cu - the transformer ops of the backend table on the device: layer
 * normalization (Ba, Kiros & Hinton 2016) over each row, masked row softmax, and embedding
 * row gather, each matching ref.c's formula (statistics in double, results rounded to float).
 *
 * Launch: layernorm and softmax take one block of LP_CU_THREADS threads per row (grid-stride
 * over rows); each thread strides the row's columns, and the row statistic combines with
 * lp_cu_block_sum / a block max in a fixed order, so two runs repeat bit for bit. gather is a
 * flat grid-stride loop over the (n, d) output. The gather index check runs as its own kernel
 * first (atomicMin of the first bad position into head->bad, an integer atomic), so a bad index
 * is reported before anything is written, as the host tables do.
 */
#include "backend/cuda_common.cuh"

/* Max of v over a block of LP_CU_THREADS threads, returned to every thread. */
__device__ __forceinline__ float block_max_all(float v)
{
    __shared__ float sh[LP_CU_THREADS / 32];
    __shared__ float res;
    v = lp_cu_warp_max(v);
    if ((threadIdx.x & 31) == 0)
        sh[threadIdx.x >> 5] = v;
    __syncthreads();
    if (threadIdx.x == 0) {
        float m = sh[0];
        for (int w = 1; w < LP_CU_THREADS / 32; w++)
            m = fmaxf(m, sh[w]);
        res = m;
    }
    __syncthreads();
    float out = res;
    __syncthreads(); /* sh and res are reused by the next call */
    return out;
}

__global__ void k_layernorm(size_t n, size_t d, float eps, const float *x, const float *gamma,
                            const float *beta, float *y, float *mean, float *rstd)
{
    for (size_t i = blockIdx.x; i < n; i += gridDim.x) {
        const float *xi = x + i * d;
        double s = 0;
        for (size_t j = threadIdx.x; j < d; j += blockDim.x)
            s += xi[j];
        double mu = lp_cu_block_sum_all(s) / (double)d;
        double v = 0;
        for (size_t j = threadIdx.x; j < d; j += blockDim.x)
            v += (xi[j] - mu) * (xi[j] - mu);
        double rs = 1.0 / sqrt(lp_cu_block_sum_all(v) / (double)d + (double)eps);
        for (size_t j = threadIdx.x; j < d; j += blockDim.x)
            y[i * d + j] = (float)((xi[j] - mu) * rs * gamma[j] + beta[j]);
        if (threadIdx.x == 0) {
            if (mean)
                mean[i] = (float)mu;
            if (rstd)
                rstd[i] = (float)rs;
        }
        __syncthreads(); /* y may alias x: the next row is another row, but keep lanes together */
    }
}

__global__ void k_softmax_rows(size_t n, size_t d, size_t group, const float *mask,
                               const float *x, float *y)
{
    for (size_t i = blockIdx.x; i < n; i += gridDim.x) {
        const float *m = mask ? mask + (i / group) * d : NULL;
        const float *xi = x + i * d;
        float mx = -INFINITY;
        for (size_t j = threadIdx.x; j < d; j += blockDim.x)
            if (!m || m[j] != 0)
                mx = fmaxf(mx, xi[j]);
        mx = block_max_all(mx);
        double s = 0;
        for (size_t j = threadIdx.x; j < d; j += blockDim.x)
            if (!m || m[j] != 0)
                s += exp((double)xi[j] - (double)mx);
        double sum = lp_cu_block_sum_all(s);
        /* every read of row i is done (block_sum_all synchronises): y may alias x */
        for (size_t j = threadIdx.x; j < d; j += blockDim.x)
            y[i * d + j] =
                (!m || m[j] != 0) ? (float)(exp((double)xi[j] - (double)mx) / sum) : 0.0f;
        __syncthreads();
    }
}

__global__ void k_gather_check(size_t n, size_t rows, const int32_t *idx, lp_cu_head *head)
{
    LP_CU_FOR(i, n)
    {
        if (idx[i] < 0 || (size_t)idx[i] >= rows)
            atomicMin(&head->bad, (unsigned long long)i);
    }
}

__global__ void k_gather(size_t n, size_t d, const float *table, const int32_t *idx, float *out)
{
    LP_CU_FOR(t, n * d)
    {
        size_t i = t / d, j = t % d;
        out[t] = table[(size_t)idx[i] * d + j];
    }
}

extern "C" cudaError_t lp_cu_layernorm_forward(cudaStream_t s, size_t n, size_t d, float eps,
                                               const float *x, const float *gamma,
                                               const float *beta, float *y, float *mean,
                                               float *rstd)
{
    if (n)
        k_layernorm<<<lp_cu_grid_for(n, 1), LP_CU_THREADS, 0, s>>>(n, d, eps, x, gamma, beta, y,
                                                                     mean, rstd);
    return LP_CU_LAUNCHED();
}

extern "C" cudaError_t lp_cu_softmax_rows(cudaStream_t s, size_t n, size_t d, size_t group,
                                          const float *mask, const float *x, float *y)
{
    if (n && d)
        k_softmax_rows<<<lp_cu_grid_for(n, 1), LP_CU_THREADS, 0, s>>>(n, d, group, mask, x, y);
    return LP_CU_LAUNCHED();
}

extern "C" cudaError_t lp_cu_gather_check(cudaStream_t s, size_t n, size_t rows,
                                          const int32_t *idx, lp_cu_head *head)
{
    if (n)
        k_gather_check<<<lp_cu_grid_for(n, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(n, rows, idx,
                                                                                   head);
    return LP_CU_LAUNCHED();
}

extern "C" cudaError_t lp_cu_gather_rows(cudaStream_t s, size_t n, size_t d, const float *table,
                                         const int32_t *idx, float *out)
{
    if (n && d)
        k_gather<<<lp_cu_grid_for(n * d, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(n, d, table, idx,
                                                                                out);
    return LP_CU_LAUNCHED();
}
