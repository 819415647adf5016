/*
 * cuda_softmax_bwd.cu - softmax_rows_backward on the device (backend.h): from the forward
 * output y (n, d), dx_ij = y_ij (dy_ij - sum_k y_ik dy_ik), the row sum in double as ref.c.
 *
 * Launch: one block of LP_CU_THREADS threads per row (grid-stride over rows); the row sum
 * combines with lp_cu_block_sum in a fixed order (deterministic). Each thread rewrites only the
 * columns it read, after the block-wide sum, so dx may alias dy.
 */
#include "backend/cuda_common.cuh"

__global__ void k_softmax_bwd(size_t n, size_t d, const float *y, const float *dy, float *dx)
{
    for (size_t i = blockIdx.x; i < n; i += gridDim.x) {
        const float *yi = y + i * d, *gi = dy + i * d;
        double s = 0;
        for (size_t j = threadIdx.x; j < d; j += blockDim.x)
            s += (double)yi[j] * gi[j];
        double sum = lp_cu_block_sum_all(s);
        for (size_t j = threadIdx.x; j < d; j += blockDim.x)
            dx[i * d + j] = (float)(yi[j] * ((double)gi[j] - sum));
    }
}

extern "C" cudaError_t lp_cu_softmax_rows_backward(cudaStream_t s, size_t n, size_t d,
                                                   const float *y, const float *dy, float *dx)
{
    if (n && d)
        k_softmax_bwd<<<lp_cu_grid_for(n, 1), LP_CU_THREADS, 0, s>>>(n, d, y, dy, dx);
    return LP_CU_LAUNCHED();
}
