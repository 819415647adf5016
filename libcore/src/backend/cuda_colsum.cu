/*
 * cuda_colsum.cu - column sums out (d) = [out +] sum_i x (n, d)[i, :], accumulated in double:
 * bias_backward (accumulate) and sum_rows (overwrite).
 *
 * Launch: blocks of (32, 8) threads, grid.x = ceil(d / 32) column tiles. Thread (tx, ty) sums
 * rows ty, ty + 8, ... of column 32 bx + tx (a warp reads 32 consecutive floats of one row:
 * coalesced), then thread (tx, 0) adds the 8 partials in order. No atomics: deterministic.
 */
#include "backend/cuda_common.cuh"

#define COLS 32
#define ROWS 8

__global__ void k_colsum(size_t n, size_t d, const float *x, float *out, int accumulate)
{
    __shared__ double sh[ROWS][COLS];
    size_t j = (size_t)blockIdx.x * COLS + threadIdx.x;
    double acc = 0;
    if (j < d)
        for (size_t i = threadIdx.y; i < n; i += ROWS)
            acc += x[i * d + j];
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && j < d) {
        double t = accumulate ? (double)out[j] : 0.0;
        double s = 0;
        for (int r = 0; r < ROWS; r++)
            s += sh[r][threadIdx.x];
        out[j] = (float)(t + s);
    }
}

extern "C" cudaError_t lp_cu_colsum(cudaStream_t s, size_t n, size_t d, const float *x, float *out,
                                    int accumulate)
{
    if (d == 0)
        return cudaSuccess;
    dim3 block(COLS, ROWS);
    unsigned grid = (unsigned)((d + COLS - 1) / COLS);
    k_colsum<<<grid, block, 0, s>>>(n, d, x, out, accumulate);
    return LP_CU_LAUNCHED();
}
