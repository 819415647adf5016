/*
 * cuda_adamw.cu - one AdamW step (Loshchilov & Hutter 2019) over n parameters, the float loop
 * of cpu.c with the per-step scalars computed once on the host in double:
 *   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
 *   p = p (1 - lr wd) - step_size m / (sqrt(v) / sqrt(1 - b2^t) + eps),  step_size = lr / (1 -
 * b1^t).
 *
 * Launch: one element per thread, LP_CU_THREADS per block, grid-stride.
 */
#include "backend/cuda_common.cuh"

__global__ void k_adamw(size_t n, float b1, float c1, float b2, float c2, float eps, float decay,
                        float step_size, float inv_sqrt_bc2, float *p, const float *g, float *m,
                        float *v)
{
    LP_CU_FOR(i, n)
    {
        float gi = g[i];
        float mi = b1 * m[i] + c1 * gi;
        float vi = b2 * v[i] + c2 * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
}

extern "C" cudaError_t lp_cu_adamw(cudaStream_t s, size_t n, float b1, float c1, float b2, float c2,
                                   float eps, float decay, float step_size, float inv_sqrt_bc2,
                                   float *p, const float *g, float *m, float *v)
{
    if (n)
        k_adamw<<<lp_cu_grid_for(n, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(
            n, b1, c1, b2, c2, eps, decay, step_size, inv_sqrt_bc2, p, g, m, v);
    return LP_CU_LAUNCHED();
}
