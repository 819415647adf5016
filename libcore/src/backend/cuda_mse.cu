/*
 * cuda_mse.cu - mean squared error over n values: loss = mean (p - y)^2, dp = 2 (p - y) / n;
 * the float formulas of cpu.c, the sum in double.
 *
 * Launch: grid-stride, LP_CU_THREADS per block, <= LP_CU_MAX_PARTS blocks each writing one
 * double partial; lp_cu_sum_parts then writes head->result[0] = sum / n.
 */
#include "backend/cuda_common.cuh"

__global__ void k_mse(size_t n, const float *p, const float *y, float *dp, float two_n,
                      double *part)
{
    double acc = 0;
    LP_CU_FOR(i, n)
    {
        float r = p[i] - y[i];
        acc += (double)r * r;
        if (dp)
            dp[i] = two_n * r;
    }
    acc = lp_cu_block_sum(acc);
    if (threadIdx.x == 0)
        part[blockIdx.x] = acc;
}

extern "C" cudaError_t lp_cu_mse(cudaStream_t s, size_t n, const float *p, const float *y,
                                 float *dp, lp_cu_head *head, double *part)
{
    unsigned g = lp_cu_grid_for(n, LP_CU_THREADS);
    g = g > LP_CU_MAX_PARTS ? LP_CU_MAX_PARTS : g;
    k_mse<<<g, LP_CU_THREADS, 0, s>>>(n, p, y, dp, (float)(2.0 / (double)n), part);
    cudaError_t e = LP_CU_LAUNCHED();
    return e != cudaSuccess ? e : lp_cu_sum_parts(s, g, part, NULL, (double)n, &head->result[0]);
}
