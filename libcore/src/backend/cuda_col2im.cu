/*
 * cuda_col2im.cu - the adjoint of im2col: x (n, c, h, w) = sum of the col (n, c kh kw, oh ow)
 * entries that read each pixel (overwrites x).
 *
 * Launch: one thread per PIXEL of x (gather, no atomics), LP_CU_THREADS per block,
 * grid-stride. A pixel (iy, ix) is read by window offset (i, j) of output (oy, ox) iff
 * oy sh = iy + ph - i and ox sw = ix + pw - j; the thread adds those entries in (i, j) order,
 * the order cpu.c accumulates them, so both round alike.
 */
#include "backend/cuda_common.cuh"

__global__ void k_col2im(lp_cu_geom g, const float *col, float *x)
{
    const long long kk = g.kh * g.kw, ohw = g.oh * g.ow;
    const size_t total = (size_t)(g.n * g.c * g.h * g.w);
    LP_CU_FOR(idx, total)
    {
        long long ix = (long long)(idx % g.w), iy = (long long)((idx / g.w) % g.h);
        long long p = (long long)(idx / (g.h * g.w)); /* plane b c + ci */
        const float *cp = col + p * kk * ohw;         /* rows of this plane: (kk, oh ow) */
        float s = 0.0f;
        for (long long i = 0; i < g.kh; i++) {
            long long ty = iy + g.ph - i;
            if (ty < 0 || ty % g.sh != 0 || ty / g.sh >= g.oh)
                continue;
            for (long long j = 0; j < g.kw; j++) {
                long long tx = ix + g.pw - j;
                if (tx < 0 || tx % g.sw != 0 || tx / g.sw >= g.ow)
                    continue;
                s += cp[(i * g.kw + j) * ohw + (ty / g.sh) * g.ow + tx / g.sw];
            }
        }
        x[idx] = s;
    }
}

extern "C" cudaError_t lp_cu_col2im(cudaStream_t s, const lp_cu_geom *g, const float *col, float *x)
{
    size_t total = (size_t)(g->n * g->c * g->h * g->w);
    k_col2im<<<lp_cu_grid_for(total, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(*g, col, x);
    return LP_CU_LAUNCHED();
}
