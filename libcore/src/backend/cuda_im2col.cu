/*
 * cuda_im2col.cu - col (n, c kh kw, oh ow) from x (n, c, h, w): row (ci kh + i) kw + j of image
 * b holds x[b, ci, oy sh - ph + i, ox sw - pw + j], 0 outside the image (backend.h).
 *
 * Launch: one thread per col element, LP_CU_THREADS per block, grid-stride; consecutive
 * threads write consecutive output pixels q (coalesced writes, reads strided by sw).
 */
#include "backend/cuda_common.cuh"

__global__ void k_im2col(lp_cu_geom g, const float *x, float *col)
{
    const long long kk = g.kh * g.kw, ohw = g.oh * g.ow;
    const size_t total = (size_t)(g.n * g.c * kk * ohw);
    LP_CU_FOR(idx, total)
    {
        long long q = (long long)(idx % ohw), r = (long long)((idx / ohw) % (g.c * kk));
        long long b = (long long)(idx / (ohw * g.c * kk));
        long long ci = r / kk, ki = (r % kk) / g.kw, kj = r % g.kw;
        long long iy = (q / g.ow) * g.sh - g.ph + ki, ix = (q % g.ow) * g.sw - g.pw + kj;
        float v = 0.0f;
        if (iy >= 0 && ix >= 0 && iy < g.h && ix < g.w)
            v = x[((b * g.c + ci) * g.h + iy) * g.w + ix];
        col[idx] = v;
    }
}

extern "C" cudaError_t lp_cu_im2col(cudaStream_t s, const lp_cu_geom *g, const float *x, float *col)
{
    size_t total = (size_t)(g->n * g->c * g->kh * g->kw * g->oh * g->ow);
    k_im2col<<<lp_cu_grid_for(total, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(*g, x, col);
    return LP_CU_LAUNCHED();
}
