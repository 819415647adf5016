/*
 * cuda_rowsum.cu - row sums out (n) = sum_j x (n, d)[:, j], accumulated in double (sum_cols).
 *
 * Launch: one warp per row (LP_CU_THREADS / 32 rows per block, grid-stride over row groups);
 * lanes read consecutive columns (coalesced) and combine with shuffles in a fixed order.
 */
#include "backend/cuda_common.cuh"

__global__ void k_rowsum(size_t n, size_t d, const float *x, float *out)
{
    const size_t warps = (size_t)gridDim.x * (LP_CU_THREADS / 32);
    const unsigned lane = threadIdx.x & 31;
    for (size_t i = (size_t)blockIdx.x * (LP_CU_THREADS / 32) + (threadIdx.x >> 5); i < n;
         i += warps) {
        const float *r = x + i * d;
        double acc = 0;
        for (size_t j = lane; j < d; j += 32)
            acc += r[j];
        acc = lp_cu_warp_sum(acc);
        if (lane == 0)
            out[i] = (float)acc;
    }
}

extern "C" cudaError_t lp_cu_rowsum(cudaStream_t s, size_t n, size_t d, const float *x, float *out)
{
    if (n)
        k_rowsum<<<lp_cu_grid_for(n, LP_CU_THREADS / 32), LP_CU_THREADS, 0, s>>>(n, d, x, out);
    return LP_CU_LAUNCHED();
}
