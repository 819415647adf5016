/*
 * cuda_bce.cu - binary cross-entropy with logits over n values, targets y in [0, 1]:
 *   l_i = max(z, 0) - z y + log1p(exp(-|z|)) (never overflows), loss = mean l_i,
 *   dz_i = (sigmoid(z_i) - y_i) / n. PyTorch's binary_cross_entropy_with_logits; the float
 * formulas of cpu.c, the sum in double.
 *
 * Launch: grid-stride, LP_CU_THREADS per block, <= LP_CU_MAX_PARTS blocks each writing one
 * double partial; lp_cu_sum_parts then writes head->result[0] = sum / n.
 */
#include "backend/cuda_common.cuh"

__device__ __forceinline__ float sigmoid_(float x)
{
    if (x >= 0)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

__global__ void k_bce(size_t n, const float *z, const float *y, float *dz, float inv_n,
                      double *part)
{
    double acc = 0;
    LP_CU_FOR(i, n)
    {
        float zi = z[i], yi = y[i];
        acc += (double)((zi > 0 ? zi : 0.0f) - zi * yi + log1pf(expf(-fabsf(zi))));
        if (dz)
            dz[i] = (sigmoid_(zi) - yi) * inv_n;
    }
    acc = lp_cu_block_sum(acc);
    if (threadIdx.x == 0)
        part[blockIdx.x] = acc;
}

extern "C" cudaError_t lp_cu_bce_logits(cudaStream_t s, size_t n, const float *z, const float *y,
                                        float *dz, lp_cu_head *head, double *part)
{
    unsigned g = lp_cu_grid_for(n, LP_CU_THREADS);
    g = g > LP_CU_MAX_PARTS ? LP_CU_MAX_PARTS : g;
    k_bce<<<g, LP_CU_THREADS, 0, s>>>(n, z, y, dz, (float)(1.0 / (double)n), part);
    cudaError_t e = LP_CU_LAUNCHED();
    return e != cudaSuccess ? e : lp_cu_sum_parts(s, g, part, NULL, (double)n, &head->result[0]);
}
