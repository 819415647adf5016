/*
 * cuda_scatter.cu - scatter_add_rows on the device (backend.h), the adjoint of gather_rows:
 * dtable row idx[i] += dy row i, rows in increasing i.
 *
 * Launch: a grid-stride loop over the d columns; the thread of column j walks the n rows in
 * order, so repeated indices add in a fixed order without float atomics (bit-for-bit
 * repeatable, equal to the host tables' order). Parallelism is d threads: enough for the
 * embedding gradient (d = 384) next to the gemms of a training step. Indices are checked first
 * by lp_cu_gather_check (cuda.c).
 */
#include "backend/cuda_common.cuh"

__global__ void k_scatter_add(size_t n, size_t d, const float *dy, const int32_t *idx,
                              float *dtable)
{
    LP_CU_FOR(j, d)
    {
        for (size_t i = 0; i < n; i++)
            dtable[(size_t)idx[i] * d + j] += dy[i * d + j];
    }
}

extern "C" cudaError_t lp_cu_scatter_add_rows(cudaStream_t s, size_t n, size_t d, const float *dy,
                                              const int32_t *idx, float *dtable)
{
    if (n && d)
        k_scatter_add<<<lp_cu_grid_for(d, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(n, d, dy, idx,
                                                                                 dtable);
    return LP_CU_LAUNCHED();
}
