/*
 * cuda_batchnorm.cu - batch normalization over the channels of NCHW tensors on the device
 * (Ioffe & Szegedy 2015), the formulas of ref.c's batchnorm_forward / batchnorm_backward:
 * per-channel mean and biased variance accumulated in double (two passes), results in float.
 *
 * Shapes: x, y, dy, dx (n, c, hw); gamma, beta, running statistics, dgamma, dbeta (c).
 * Launch: one block of LP_CU_THREADS threads per channel (grid c, c <= 65535 checked by the
 * caller through the grid cap: channels beyond the grid are looped). Each thread strides the
 * channel's N = n hw values; value t sits at ((t / hw) c + ch) hw + t % hw. Sums combine with
 * lp_cu_block_sum in a fixed order and thread 0 publishes them through shared memory, so two
 * runs repeat bit for bit (no atomics). Thread 0 updates the running statistics.
 */
#include "backend/cuda_common.cuh"

__device__ __forceinline__ size_t bn_at(size_t t, size_t c, size_t hw, size_t ch)
{
    return ((t / hw) * c + ch) * hw + t % hw;
}

/* mu and var of channel ch: batch statistics (train) or the running ones. */
__device__ void bn_stats(size_t n, size_t c, size_t hw, size_t ch, int train, const float *x,
                         const float *rm, const float *rv, double *mu, double *var)
{
    if (!train) {
        *mu = rm[ch];
        *var = rv[ch];
        return;
    }
    size_t N = n * hw;
    double s = 0;
    for (size_t t = threadIdx.x; t < N; t += blockDim.x)
        s += x[bn_at(t, c, hw, ch)];
    double m = lp_cu_block_sum_all(s) / (double)N;
    double q = 0;
    for (size_t t = threadIdx.x; t < N; t += blockDim.x) {
        double d = x[bn_at(t, c, hw, ch)] - m;
        q += d * d;
    }
    *mu = m;
    *var = lp_cu_block_sum_all(q) / (double)N;
}

__global__ void k_bn_forward(size_t n, size_t c, size_t hw, float eps, float momentum, int train,
                             const float *x, const float *gamma, const float *beta, float *rm,
                             float *rv, float *y)
{
    size_t N = n * hw;
    for (size_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double mu, var;
        bn_stats(n, c, hw, ch, train, x, rm, rv, &mu, &var);
        double inv = 1.0 / sqrt(var + (double)eps);
        float a = (float)(inv * gamma[ch]), fmu = (float)mu, sh = beta[ch];
        for (size_t t = threadIdx.x; t < N; t += blockDim.x) {
            size_t o = bn_at(t, c, hw, ch);
            y[o] = (x[o] - fmu) * a + sh;
        }
        if (train && threadIdx.x == 0) {
            double dN = (double)N, unb = N > 1 ? var * dN / (dN - 1) : var;
            rm[ch] = (float)((1.0 - momentum) * rm[ch] + momentum * mu);
            rv[ch] = (float)((1.0 - momentum) * rv[ch] + momentum * unb);
        }
        __syncthreads(); /* the block's shared scratch is reused by its next channel */
    }
}

__global__ void k_bn_backward(size_t n, size_t c, size_t hw, float eps, int train, const float *x,
                              const float *gamma, const float *rm, const float *rv, const float *dy,
                              float *dx, float *dgamma, float *dbeta)
{
    size_t N = n * hw;
    for (size_t ch = blockIdx.x; ch < c; ch += gridDim.x) {
        double mu, var;
        bn_stats(n, c, hw, ch, train, x, rm, rv, &mu, &var);
        double inv = 1.0 / sqrt(var + (double)eps);
        double sb = 0, sg = 0;
        for (size_t t = threadIdx.x; t < N; t += blockDim.x) {
            size_t o = bn_at(t, c, hw, ch);
            sb += dy[o];
            sg += dy[o] * (x[o] - mu);
        }
        sb = lp_cu_block_sum_all(sb);
        sg = lp_cu_block_sum_all(sg) * inv;
        if (threadIdx.x == 0) {
            dbeta[ch] = (float)sb;
            dgamma[ch] = (float)sg;
        }
        if (!dx)
            continue;
        double a = gamma[ch] * inv, dN = (double)N;
        float k1 = (float)a, k2 = (float)(train ? -a * sg * inv / dN : 0.0),
              k0 = (float)(train ? -a * sb / dN : 0.0), fmu = (float)mu;
        for (size_t t = threadIdx.x; t < N; t += blockDim.x) {
            size_t o = bn_at(t, c, hw, ch);
            dx[o] = k1 * dy[o] + k2 * (x[o] - fmu) + k0;
        }
    }
}

extern "C" cudaError_t lp_cu_batchnorm_forward(cudaStream_t s, size_t n, size_t c, size_t hw,
                                               float eps, float momentum, int train, const float *x,
                                               const float *gamma, const float *beta, float *rm,
                                               float *rv, float *y)
{
    unsigned grid = c > LP_CU_MAX_GRID ? LP_CU_MAX_GRID : (unsigned)c;
    k_bn_forward<<<grid, LP_CU_THREADS, 0, s>>>(n, c, hw, eps, momentum, train, x, gamma, beta, rm,
                                                rv, y);
    return LP_CU_LAUNCHED();
}

extern "C" cudaError_t lp_cu_batchnorm_backward(cudaStream_t s, size_t n, size_t c, size_t hw,
                                                float eps, int train, const float *x,
                                                const float *gamma, const float *rm,
                                                const float *rv, const float *dy, float *dx,
                                                float *dgamma, float *dbeta)
{
    unsigned grid = c > LP_CU_MAX_GRID ? LP_CU_MAX_GRID : (unsigned)c;
    k_bn_backward<<<grid, LP_CU_THREADS, 0, s>>>(n, c, hw, eps, train, x, gamma, rm, rv, dy, dx,
                                                 dgamma, dbeta);
    return LP_CU_LAUNCHED();
}
