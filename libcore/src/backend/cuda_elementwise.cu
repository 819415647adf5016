/*
 * cuda_elementwise.cu - add / sub / mul, scale, axpy, fill over n floats, and C *= beta on a
 * strided (m, n) matrix (sgemm with k = 0).
 *
 * Shapes: x, y, out (n). Launch: LP_CU_THREADS threads per block, grid_for(n) blocks,
 * grid-stride; one element per thread per step. In place (out == x or y) is fine: each element
 * is read before it is written by the same thread.
 */
#include "backend/cuda_common.cuh"

__global__ void k_binary(int op, size_t n, const float *x, const float *y, float *out)
{
    LP_CU_FOR(i, n)
    {
        float a = x[i], b = y[i];
        out[i] = op == LP_CU_BINOP_ADD ? a + b : op == LP_CU_BINOP_SUB ? a - b : a * b;
    }
}

__global__ void k_scale(size_t n, float alpha, const float *x, float *out)
{
    LP_CU_FOR(i, n) out[i] = alpha * x[i];
}

__global__ void k_axpy(size_t n, float alpha, const float *x, float *y)
{
    LP_CU_FOR(i, n) y[i] += alpha * x[i];
}

__global__ void k_fill(size_t n, float v, float *x)
{
    LP_CU_FOR(i, n) x[i] = v;
}

__global__ void k_scale_matrix(size_t m, size_t n, float beta, float *c, size_t ldc)
{
    LP_CU_FOR(i, m * n)
    {
        float *p = c + (i / n) * ldc + i % n;
        *p = beta == 0.0f ? 0.0f : beta * *p;
    }
}

extern "C" cudaError_t lp_cu_binary(cudaStream_t s, lp_cu_binop op, size_t n, const float *x,
                                    const float *y, float *out)
{
    if (n)
        k_binary<<<lp_cu_grid_for(n, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>((int)op, n, x, y, out);
    return LP_CU_LAUNCHED();
}

extern "C" cudaError_t lp_cu_scale(cudaStream_t s, size_t n, float alpha, const float *x,
                                   float *out)
{
    if (n)
        k_scale<<<lp_cu_grid_for(n, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(n, alpha, x, out);
    return LP_CU_LAUNCHED();
}

extern "C" cudaError_t lp_cu_axpy(cudaStream_t s, size_t n, float alpha, const float *x, float *y)
{
    if (n)
        k_axpy<<<lp_cu_grid_for(n, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(n, alpha, x, y);
    return LP_CU_LAUNCHED();
}

extern "C" cudaError_t lp_cu_fill(cudaStream_t s, size_t n, float v, float *x)
{
    if (n)
        k_fill<<<lp_cu_grid_for(n, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(n, v, x);
    return LP_CU_LAUNCHED();
}

extern "C" cudaError_t lp_cu_scale_matrix(cudaStream_t s, size_t m, size_t n, float beta, float *c,
                                          size_t ldc)
{
    if (m * n != 0)
        k_scale_matrix<<<lp_cu_grid_for(m * n, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(m, n, beta, c,
                                                                                      ldc);
    return LP_CU_LAUNCHED();
}
