/*
 * cuda_layernorm_bwd.cu - layernorm_backward on the device (backend.h): with xhat = (x - mean)
 * rstd and g = gamma dy, dgamma (d) += sum_i dy xhat, dbeta (d) += sum_i dy, and
 * dx = rstd (g - mean_j g - xhat mean_j(g xhat)); sums in double as ref.c.
 *
 * Launch: the parameter gradients first (blocks of (32, 8) threads over 32-column tiles, as
 * cuda_colsum.cu: a warp reads 32 consecutive floats of a row; the 8 partials added in order),
 * then dx with one block of LP_CU_THREADS per row (grid-stride over rows), its two row sums
 * combined by lp_cu_block_sum in a fixed order. The order matters because dx may alias dy: the
 * column kernel reads dy before the row kernel overwrites it (same stream). No atomics.
 */
#include "backend/cuda_common.cuh"

#define COLS 32
#define ROWS 8

__global__ void k_ln_bwd_params(size_t n, size_t d, const float *x, const float *mean,
                                const float *rstd, const float *dy, float *dgamma, float *dbeta)
{
    __shared__ double sg[ROWS][COLS], sb[ROWS][COLS];
    size_t j = (size_t)blockIdx.x * COLS + threadIdx.x;
    double ag = 0, ab = 0;
    if (j < d)
        for (size_t i = threadIdx.y; i < n; i += ROWS) {
            double g = dy[i * d + j];
            ag += g * (((double)x[i * d + j] - mean[i]) * rstd[i]);
            ab += g;
        }
    sg[threadIdx.y][threadIdx.x] = ag;
    sb[threadIdx.y][threadIdx.x] = ab;
    __syncthreads();
    if (threadIdx.y == 0 && j < d) {
        double tg = 0, tb = 0;
        for (int r = 0; r < ROWS; r++) {
            tg += sg[r][threadIdx.x];
            tb += sb[r][threadIdx.x];
        }
        if (dgamma)
            dgamma[j] = (float)((double)dgamma[j] + tg);
        if (dbeta)
            dbeta[j] = (float)((double)dbeta[j] + tb);
    }
}

__global__ void k_ln_bwd_dx(size_t n, size_t d, const float *x, const float *gamma,
                            const float *mean, const float *rstd, const float *dy, float *dx)
{
    for (size_t i = blockIdx.x; i < n; i += gridDim.x) {
        const float *xi = x + i * d, *gi = dy + i * d;
        double mu = mean[i], rs = rstd[i], s = 0, sx = 0;
        for (size_t j = threadIdx.x; j < d; j += blockDim.x) {
            double g = (double)gamma[j] * gi[j];
            s += g;
            sx += g * ((xi[j] - mu) * rs);
        }
        double a = lp_cu_block_sum_all(s) / (double)d;
        double c = lp_cu_block_sum_all(sx) / (double)d;
        /* each thread rewrites only the columns it read: dx may alias dy */
        for (size_t j = threadIdx.x; j < d; j += blockDim.x) {
            double xh = (xi[j] - mu) * rs;
            dx[i * d + j] = (float)(rs * ((double)gamma[j] * gi[j] - a - xh * c));
        }
        __syncthreads();
    }
}

extern "C" cudaError_t lp_cu_layernorm_backward(cudaStream_t s, size_t n, size_t d, const float *x,
                                                const float *gamma, const float *mean,
                                                const float *rstd, const float *dy, float *dx,
                                                float *dgamma, float *dbeta)
{
    if (n == 0 || d == 0)
        return cudaSuccess;
    if (dgamma || dbeta) {
        dim3 block(COLS, ROWS);
        k_ln_bwd_params<<<(unsigned)((d + COLS - 1) / COLS), block, 0, s>>>(n, d, x, mean, rstd, dy,
                                                                            dgamma, dbeta);
        cudaError_t e = LP_CU_LAUNCHED();
        if (e != cudaSuccess)
            return e;
    }
    if (dx)
        k_ln_bwd_dx<<<lp_cu_grid_for(n, 1), LP_CU_THREADS, 0, s>>>(n, d, x, gamma, mean, rstd, dy,
                                                                   dx);
    return LP_CU_LAUNCHED();
}
