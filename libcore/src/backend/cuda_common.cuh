/*
 * cuda_common.cuh - device-side helpers the CUDA kernels share (nvcc only): launch geometry
 * for grid-stride loops, warp reductions, and the launch-status idiom.
 *
 * Geometry: LP_CU_THREADS threads per block; grid_for(n) blocks, capped so that huge inputs
 * loop (grid-stride) instead of launching millions of blocks. Reductions combine in a fixed
 * order (shuffles, then shared memory, then one block over the partials): no atomics on
 * floats, so results repeat bit for bit.
 */
#ifndef LP_BACKEND_CUDA_COMMON_CUH
#define LP_BACKEND_CUDA_COMMON_CUH

#include "backend/cuda_kernels.h"

#define LP_CU_THREADS 256
#define LP_CU_MAX_GRID 65535u

static inline unsigned lp_cu_grid_for(size_t n, size_t per_block)
{
    size_t b = (n + per_block - 1) / per_block;
    if (b == 0)
        b = 1;
    return b > LP_CU_MAX_GRID ? LP_CU_MAX_GRID : (unsigned)b;
}

/* Grid-stride loop over [0, n) with a size_t index named i. */
#define LP_CU_FOR(i, n)                                                                            \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                        \
         i += (size_t)gridDim.x * blockDim.x)

/* The status of the last launch (also catches bad launch geometry). */
#define LP_CU_LAUNCHED() cudaGetLastError()

__device__ __forceinline__ double lp_cu_warp_sum(double v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_down_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float lp_cu_warp_max(float v)
{
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum of v over a block of LP_CU_THREADS threads, valid in thread 0 (fixed order). */
__device__ __forceinline__ double lp_cu_block_sum(double v)
{
    __shared__ double sh[LP_CU_THREADS / 32];
    v = lp_cu_warp_sum(v);
    if ((threadIdx.x & 31) == 0)
        sh[threadIdx.x >> 5] = v;
    __syncthreads();
    double t = 0;
    if (threadIdx.x == 0)
        for (int w = 0; w < LP_CU_THREADS / 32; w++)
            t += sh[w];
    return t;
}

/* Sum of v over a block of LP_CU_THREADS threads, returned to every thread (fixed order). Every
 * thread of the block must call it; it synchronises twice. */
__device__ __forceinline__ double lp_cu_block_sum_all(double v)
{
    __shared__ double res;
    double t = lp_cu_block_sum(v);
    if (threadIdx.x == 0)
        res = t;
    __syncthreads();
    double out = res;
    __syncthreads(); /* res (and lp_cu_block_sum's scratch) are reused by the next call */
    return out;
}

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* Philox-4x32-10 (Salmon et al. 2011) in place on the counter c with key {k0, k1}: the same
 * function as backend.c's lp_philox4x32. */
__device__ __forceinline__ void lp_cu_philox4x32_10(uint32_t c[4], uint32_t k0, uint32_t k1)
{
#pragma unroll
    for (int r = 0; r < 10; r++) {
        if (r > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        uint32_t hi0 = __umulhi(PHILOX_M0, c[0]), lo0 = PHILOX_M0 * c[0];
        uint32_t hi1 = __umulhi(PHILOX_M1, c[2]), lo1 = PHILOX_M1 * c[2];
        uint32_t n0 = hi1 ^ c[1] ^ k0, n2 = hi0 ^ c[3] ^ k1;
        c[0] = n0;
        c[1] = lo1;
        c[2] = n2;
        c[3] = lo0;
    }
}

#endif
