/*
 * cuda_bias_add.cu - y (n, d) += b (d) on every row (the bias of a dense layer).
 *
 * Launch: one thread per element of y, LP_CU_THREADS per block, grid-stride; column j = i mod d,
 * so a warp reads 32 consecutive floats of y and of b (coalesced; b stays in L1/L2).
 */
#include "backend/cuda_common.cuh"

__global__ void k_bias_add(size_t n, size_t d, const float *b, float *y)
{
    LP_CU_FOR(i, n * d) y[i] += b[i % d];
}

extern "C" cudaError_t lp_cu_bias_add(cudaStream_t s, size_t n, size_t d, const float *b, float *y)
{
    if (n * d != 0)
        k_bias_add<<<lp_cu_grid_for(n * d, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(n, d, b, y);
    return LP_CU_LAUNCHED();
}
