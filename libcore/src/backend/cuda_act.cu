/*
 * cuda_act.cu - activations forward y = f(x) and backward dx = dy f'(.) over n floats, the
 * float formulas of cpu.c (relu, tanh, sigmoid, gelu erf form, gelu tanh form). Backward takes
 * the forward input x (relu, gelu) or output y (tanh, sigmoid), see lp_act_kind.
 *
 * Launch: one element per thread, LP_CU_THREADS per block, grid-stride; `kind` is uniform
 * across the grid, so the switch never diverges. In place (y == x, dx == dy) is fine.
 */
#include "backend/cuda_common.cuh"

#include "lepton/backend.h"

#define S2PI 0.79788456080286535588f  /* sqrt(2 / pi) */
#define IS2 0.70710678118654752440f   /* 1 / sqrt(2) */
#define IS2PI 0.39894228040143267794f /* 1 / sqrt(2 pi) */

__device__ __forceinline__ float sigmoidf_(float x)
{
    /* exp of a non-positive argument only: no overflow for large |x|. */
    if (x >= 0)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

__global__ void k_act_forward(int kind, size_t n, const float *x, float *y)
{
    LP_CU_FOR(i, n)
    {
        float v = x[i], r;
        switch (kind) {
        case LP_ACT_KIND_RELU:
            r = v > 0 ? v : 0.0f;
            break;
        case LP_ACT_KIND_TANH:
            r = tanhf(v);
            break;
        case LP_ACT_KIND_SIGMOID:
            r = sigmoidf_(v);
            break;
        case LP_ACT_KIND_GELU_ERF:
            r = 0.5f * v * (1.0f + erff(v * IS2));
            break;
        default: /* LP_ACT_KIND_GELU_TANH */
            r = 0.5f * v * (1.0f + tanhf(S2PI * (v + 0.044715f * v * v * v)));
            break;
        }
        y[i] = r;
    }
}

__global__ void k_act_backward(int kind, size_t n, const float *fwd, const float *dy, float *dx)
{
    LP_CU_FOR(i, n)
    {
        float f = fwd[i], g = dy[i], r;
        switch (kind) {
        case LP_ACT_KIND_RELU:
            r = f > 0 ? g : 0.0f;
            break;
        case LP_ACT_KIND_TANH:
            r = g * (1.0f - f * f);
            break;
        case LP_ACT_KIND_SIGMOID:
            r = g * f * (1.0f - f);
            break;
        case LP_ACT_KIND_GELU_ERF: /* Phi(x) + x phi(x) */
            r = g * (0.5f * (1.0f + erff(f * IS2)) + f * IS2PI * expf(-0.5f * f * f));
            break;
        default: { /* LP_ACT_KIND_GELU_TANH */
            float t = tanhf(S2PI * (f + 0.044715f * f * f * f));
            float du = S2PI * (1.0f + 3 * 0.044715f * f * f);
            r = g * (0.5f * (1.0f + t) + 0.5f * f * (1.0f - t * t) * du);
            break;
        }
        }
        dx[i] = r;
    }
}

extern "C" cudaError_t lp_cu_act_forward(cudaStream_t s, int kind, size_t n, const float *x,
                                         float *y)
{
    if (n)
        k_act_forward<<<lp_cu_grid_for(n, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(kind, n, x, y);
    return LP_CU_LAUNCHED();
}

extern "C" cudaError_t lp_cu_act_backward(cudaStream_t s, int kind, size_t n, const float *fwd,
                                          const float *dy, float *dx)
{
    if (n)
        k_act_backward<<<lp_cu_grid_for(n, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(kind, n, fwd, dy,
                                                                                  dx);
    return LP_CU_LAUNCHED();
}
