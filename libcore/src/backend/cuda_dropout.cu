/*
 * cuda_dropout.cu - inverted dropout y = keep ? x / (1 - p) : 0 over n floats, with the mask of
 * lp_dropout_keep(): element i is kept iff word (i mod 4) of Philox-4x32-10 (Salmon et al.
 * 2011) at counter {i/4 lo, i/4 hi, step lo, step hi} and key {seed lo, seed hi} is below
 * thr = floor((1 - p) 2^32). The same function as backend.c's lp_philox4x32, so CPU and GPU
 * masks agree bit for bit; backward is the same call on dy (diagonal Jacobian).
 *
 * Launch: one thread per group of 4 elements (one Philox call), LP_CU_THREADS per block,
 * grid-stride. In place (y == x) is fine. The generator is lp_cu_philox4x32_10
 * (cuda_common.cuh).
 */
#include "backend/cuda_common.cuh"

__global__ void k_dropout(size_t n, float scale, uint64_t thr, uint64_t seed, uint64_t step,
                          const float *x, float *y)
{
    LP_CU_FOR(blk, (n + 3) / 4)
    {
        uint32_t w[4] = {(uint32_t)blk, (uint32_t)((uint64_t)blk >> 32), (uint32_t)step,
                         (uint32_t)(step >> 32)};
        lp_cu_philox4x32_10(w, (uint32_t)seed, (uint32_t)(seed >> 32));
#pragma unroll
        for (int k = 0; k < 4; k++) {
            size_t i = 4 * blk + k;
            if (i < n)
                y[i] = (uint64_t)w[k] < thr ? x[i] * scale : 0.0f;
        }
    }
}

extern "C" cudaError_t lp_cu_dropout(cudaStream_t s, size_t n, float scale, uint64_t thr,
                                     uint64_t seed, uint64_t step, const float *x, float *y)
{
    if (n)
        k_dropout<<<lp_cu_grid_for((n + 3) / 4, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(
            n, scale, thr, seed, step, x, y);
    return LP_CU_LAUNCHED();
}
