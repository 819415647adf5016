/*
 * cuda_avgpool.cu - average pooling over NCHW planes with zero padding counted (divisor
 * kh kw, PyTorch's AvgPool2d count_include_pad=True; 2 pad <= k).
 *   forward:  y (n, c, oh, ow) = (sum of the in-image window) / (kh kw)
 *   backward: dx (n, c, h, w) = sum of dy / (kh kw) over the windows covering the pixel.
 *
 * Launch: forward one thread per output, backward one thread per input pixel (gather, no
 * atomics, windows visited in ascending output order as cpu.c scatters them).
 * LP_CU_THREADS per block, grid-stride.
 */
#include "backend/cuda_common.cuh"

__global__ void k_avgpool_fwd(lp_cu_geom g, float inv, const float *x, float *y)
{
    const size_t total = (size_t)(g.n * g.c * g.oh * g.ow);
    LP_CU_FOR(o, total)
    {
        long long ox = (long long)(o % g.ow), oy = (long long)((o / g.ow) % g.oh);
        long long p = (long long)(o / (g.oh * g.ow));
        const float *xp = x + p * g.h * g.w;
        long long ys = oy * g.sh - g.ph, xs = ox * g.sw - g.pw;
        long long ye = min(ys + g.kh, g.h), xe = min(xs + g.kw, g.w);
        ys = max(ys, 0LL);
        xs = max(xs, 0LL);
        float s = 0.0f;
        for (long long iy = ys; iy < ye; iy++)
            for (long long ix = xs; ix < xe; ix++)
                s += xp[iy * g.w + ix];
        y[o] = s * inv;
    }
}

__global__ void k_avgpool_bwd(lp_cu_geom g, float inv, const float *dy, float *dx)
{
    const size_t total = (size_t)(g.n * g.c * g.h * g.w);
    const long long ohw = g.oh * g.ow;
    LP_CU_FOR(idx, total)
    {
        long long ix = (long long)(idx % g.w), iy = (long long)((idx / g.w) % g.h);
        long long p = (long long)(idx / (g.h * g.w));
        long long ty = iy + g.ph, tx = ix + g.pw;
        long long oy0 = ty >= g.kh ? (ty - g.kh) / g.sh + 1 : 0, oy1 = min(ty / g.sh, g.oh - 1);
        long long ox0 = tx >= g.kw ? (tx - g.kw) / g.sw + 1 : 0, ox1 = min(tx / g.sw, g.ow - 1);
        float s = 0.0f;
        for (long long oy = oy0; oy <= oy1; oy++)
            for (long long ox = ox0; ox <= ox1; ox++) {
                float share = dy[p * ohw + oy * g.ow + ox] * inv;
                s += share;
            }
        dx[idx] = s;
    }
}

extern "C" cudaError_t lp_cu_avgpool_forward(cudaStream_t s, const lp_cu_geom *g, const float *x,
                                             float *y)
{
    size_t total = (size_t)(g->n * g->c * g->oh * g->ow);
    float inv = 1.0f / (float)(g->kh * g->kw);
    k_avgpool_fwd<<<lp_cu_grid_for(total, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(*g, inv, x, y);
    return LP_CU_LAUNCHED();
}

extern "C" cudaError_t lp_cu_avgpool_backward(cudaStream_t s, const lp_cu_geom *g, const float *dy,
                                              float *dx)
{
    size_t total = (size_t)(g->n * g->c * g->h * g->w);
    float inv = 1.0f / (float)(g->kh * g->kw);
    k_avgpool_bwd<<<lp_cu_grid_for(total, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(*g, inv, dy, dx);
    return LP_CU_LAUNCHED();
}
