/*
 * cuda_reduce.cu - whole-array reductions: sum_all (double accumulation), max_abs (NaN wins),
 * and the final step of every loss (sum of the per-block partials, divided).
 *
 * Launch: ONE block of RED_THREADS threads, grid-stride over the input, then warp shuffles and
 * a fixed-order pass over the warp partials in shared memory. One block keeps these
 * deterministic without scratch memory or atomics; they run once per training step (gradient
 * norm clipping) or on <= LP_CU_MAX_PARTS partials, where one SM streams fast enough.
 */
#include "backend/cuda_common.cuh"

#define RED_THREADS 1024

__device__ __forceinline__ double block_sum_1k(double v)
{
    __shared__ double sh[RED_THREADS / 32];
    v = lp_cu_warp_sum(v);
    if ((threadIdx.x & 31) == 0)
        sh[threadIdx.x >> 5] = v;
    __syncthreads();
    double t = 0;
    if (threadIdx.x == 0)
        for (int w = 0; w < RED_THREADS / 32; w++)
            t += sh[w];
    return t;
}

__global__ void k_sum_all(size_t n, const float *x, float *out)
{
    double acc = 0;
    for (size_t i = threadIdx.x; i < n; i += RED_THREADS)
        acc += x[i];
    acc = block_sum_1k(acc);
    if (threadIdx.x == 0)
        out[0] = (float)acc;
}

__global__ void k_max_abs(size_t n, const float *x, float *out)
{
    __shared__ float sh[RED_THREADS / 32];
    __shared__ int nan_seen;
    if (threadIdx.x == 0)
        nan_seen = 0;
    __syncthreads();
    float m = 0;
    int nan_here = 0;
    for (size_t i = threadIdx.x; i < n; i += RED_THREADS) {
        float a = fabsf(x[i]);
        nan_here |= isnan(a);
        m = fmaxf(m, a); /* fmaxf drops NaN; the flag carries it */
    }
    if (nan_here)
        nan_seen = 1;
    m = lp_cu_warp_max(m);
    if ((threadIdx.x & 31) == 0)
        sh[threadIdx.x >> 5] = m;
    __syncthreads();
    if (threadIdx.x == 0) {
        float t = 0;
        for (int w = 0; w < RED_THREADS / 32; w++)
            t = fmaxf(t, sh[w]);
        out[0] = nan_seen ? __int_as_float(0x7fc00000) : t;
    }
}

__global__ void k_sum_parts(unsigned nparts, const double *part, const double *div_dev, double div,
                            double *out)
{
    double acc = 0;
    for (unsigned i = threadIdx.x; i < nparts; i += RED_THREADS)
        acc += part[i];
    acc = block_sum_1k(acc);
    if (threadIdx.x == 0)
        out[0] = acc / (div_dev ? *div_dev : div);
}

extern "C" cudaError_t lp_cu_sum_all(cudaStream_t s, size_t n, const float *x, float *out)
{
    k_sum_all<<<1, RED_THREADS, 0, s>>>(n, x, out);
    return LP_CU_LAUNCHED();
}

extern "C" cudaError_t lp_cu_max_abs(cudaStream_t s, size_t n, const float *x, float *out)
{
    k_max_abs<<<1, RED_THREADS, 0, s>>>(n, x, out);
    return LP_CU_LAUNCHED();
}

extern "C" cudaError_t lp_cu_sum_parts(cudaStream_t s, unsigned nparts, const double *part,
                                       const double *div_dev, double div, double *out)
{
    k_sum_parts<<<1, RED_THREADS, 0, s>>>(nparts, part, div_dev, div, out);
    return LP_CU_LAUNCHED();
}
