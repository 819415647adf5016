/*
 * cuda_maxpool.cu - max pooling over NCHW planes (padding never wins; 2 pad <= k).
 *   forward:  y (n, c, oh, ow) = window max, argmax = iy w + ix of the winner (first on ties;
 *             the first NaN wins and stops the scan, as cpu.c and PyTorch).
 *   check:    head->bad = first flat index of argmax outside [0, h w) (atomicMin on integers).
 *   backward: dx (n, c, h, w) = sum of dy over the windows whose argmax is this pixel.
 *
 * Launch: forward one thread per output, backward one thread per input pixel (gather, no
 * atomics: it visits the outputs whose windows cover the pixel in ascending order, the order
 * cpu.c scatters them, so the sums round alike). LP_CU_THREADS per block, grid-stride.
 */
#include "backend/cuda_common.cuh"

__global__ void k_maxpool_fwd(lp_cu_geom g, const float *x, float *y, int32_t *argmax)
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
        long long bi = ys * g.w + xs;
        float best = xp[bi];
        for (long long iy = ys; iy < ye && best == best; iy++)
            for (long long ix = xs; ix < xe; ix++) {
                float v = xp[iy * g.w + ix];
                if (v > best || v != v) {
                    best = v;
                    bi = iy * g.w + ix;
                    if (v != v)
                        break;
                }
            }
        y[o] = best;
        argmax[o] = (int32_t)bi;
    }
}

__global__ void k_maxpool_check(size_t total, long long hw, const int32_t *argmax, lp_cu_head *head)
{
    LP_CU_FOR(o, total)
    {
        if (argmax[o] < 0 || argmax[o] >= hw)
            atomicMin(&head->bad, (unsigned long long)o);
    }
}

__global__ void k_maxpool_bwd(lp_cu_geom g, const float *dy, const int32_t *argmax, float *dx)
{
    const size_t total = (size_t)(g.n * g.c * g.h * g.w);
    const long long ohw = g.oh * g.ow;
    LP_CU_FOR(idx, total)
    {
        long long ix = (long long)(idx % g.w), iy = (long long)((idx / g.w) % g.h);
        long long p = (long long)(idx / (g.h * g.w)), q = iy * g.w + ix;
        /* outputs oy with oy sh <= iy + ph < oy sh + kh */
        long long ty = iy + g.ph, tx = ix + g.pw;
        long long oy0 = ty >= g.kh ? (ty - g.kh) / g.sh + 1 : 0, oy1 = min(ty / g.sh, g.oh - 1);
        long long ox0 = tx >= g.kw ? (tx - g.kw) / g.sw + 1 : 0, ox1 = min(tx / g.sw, g.ow - 1);
        float s = 0.0f;
        for (long long oy = oy0; oy <= oy1; oy++)
            for (long long ox = ox0; ox <= ox1; ox++) {
                long long o = p * ohw + oy * g.ow + ox;
                if (argmax[o] == q)
                    s += dy[o];
            }
        dx[idx] = s;
    }
}

extern "C" cudaError_t lp_cu_maxpool_forward(cudaStream_t s, const lp_cu_geom *g, const float *x,
                                             float *y, int32_t *argmax)
{
    size_t total = (size_t)(g->n * g->c * g->oh * g->ow);
    k_maxpool_fwd<<<lp_cu_grid_for(total, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(*g, x, y, argmax);
    return LP_CU_LAUNCHED();
}

extern "C" cudaError_t lp_cu_maxpool_check(cudaStream_t s, const lp_cu_geom *g,
                                           const int32_t *argmax, lp_cu_head *head)
{
    size_t total = (size_t)(g->n * g->c * g->oh * g->ow);
    k_maxpool_check<<<lp_cu_grid_for(total, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(
        total, g->h * g->w, argmax, head);
    return LP_CU_LAUNCHED();
}

extern "C" cudaError_t lp_cu_maxpool_backward(cudaStream_t s, const lp_cu_geom *g, const float *dy,
                                              const int32_t *argmax, float *dx)
{
    size_t total = (size_t)(g->n * g->c * g->h * g->w);
    k_maxpool_bwd<<<lp_cu_grid_for(total, LP_CU_THREADS), LP_CU_THREADS, 0, s>>>(*g, dy, argmax,
                                                                                 dx);
    return LP_CU_LAUNCHED();
}
