/*
 * cuda_argmax.cu - out (n) int32 = index of the largest value in each row of x (n, d): first
 * index on ties, the first NaN when the row has one (NaN compares largest, as torch.argmax).
 *
 * Launch: one warp per row (LP_CU_THREADS / 32 rows per block, grid-stride). Each lane scans
 * columns lane, lane + 32, ...; the 32 candidates merge with shuffles under a total order
 * (NaN first, then value, then lower index), so the result does not depend on the merge tree.
 */
#include "backend/cuda_common.cuh"

/* True when candidate (va, ia) beats (vb, ib). */
__device__ __forceinline__ bool beats(float va, long long ia, float vb, long long ib)
{
    bool na = isnan(va), nb = isnan(vb);
    if (na != nb)
        return na;
    if (!na && va != vb)
        return va > vb;
    return ia < ib;
}

__global__ void k_argmax(size_t n, size_t d, const float *x, int32_t *out)
{
    const size_t warps = (size_t)gridDim.x * (LP_CU_THREADS / 32);
    const unsigned lane = threadIdx.x & 31;
    for (size_t i = (size_t)blockIdx.x * (LP_CU_THREADS / 32) + (threadIdx.x >> 5); i < n;
         i += warps) {
        const float *r = x + i * d;
        float bv = 0;
        long long bi = -1; /* -1: no candidate (lane beyond d) */
        for (size_t j = lane; j < d; j += 32) {
            float v = r[j];
            if (bi < 0 || beats(v, (long long)j, bv, bi)) {
                bv = v;
                bi = (long long)j;
            }
        }
        for (int o = 16; o > 0; o >>= 1) {
            float ov = __shfl_xor_sync(0xffffffffu, bv, o);
            long long oi = __shfl_xor_sync(0xffffffffu, bi, o);
            if (oi >= 0 && (bi < 0 || beats(ov, oi, bv, bi))) {
                bv = ov;
                bi = oi;
            }
        }
        if (lane == 0)
            out[i] = (int32_t)bi;
    }
}

extern "C" cudaError_t lp_cu_argmax_rows(cudaStream_t s, size_t n, size_t d, const float *x,
                                         int32_t *out)
{
    if (n)
        k_argmax<<<lp_cu_grid_for(n, LP_CU_THREADS / 32), LP_CU_THREADS, 0, s>>>(n, d, x, out);
    return LP_CU_LAUNCHED();
}
