/*
 * cuda_softmax_xent.cu - softmax cross-entropy over logits (n, c) with int32 targets (n) and
 * optional class weights (c): PyTorch's F.cross_entropy(weight=w, reduction='mean').
 *   loss = sum_i w[t_i] (lse_i - z_i[t_i]) / sum_i w[t_i],  lse_i = max_i + log sum_j e^(z_ij -
 * max_i) dlogits (n, c) = w[t_i] (softmax(z_i) - onehot(t_i)) / sum_i w[t_i] The float formulas of
 * cpu.c (exp in float, the row sum and the mean in double).
 *
 * Three launches, all on one stream:
 *   1. k_wsum: grid-stride over rows, per-block partial of sum w[t_i] (double) into part[];
 *      rows whose target is outside [0, c) record the first such row in head->bad (atomicMin
 *      on an integer: the minimum does not depend on timing).
 *   2. lp_cu_sum_parts: head->result[1] = the weight sum.
 *   3. k_xent: one warp per row (8 rows per block, <= LP_CU_MAX_PARTS blocks, grid-stride);
 *      lanes stride the c columns; per-block partial of the weighted row losses into part[].
 *   4. lp_cu_sum_parts: head->result[0] = sum / head->result[1].
 * Rows with a bad target are skipped (no out-of-bounds read); the host reports them.
 */
#include "backend/cuda_common.cuh"

#define WARPS (LP_CU_THREADS / 32)

__global__ void k_wsum(size_t n, size_t c, const int32_t *t, const float *w, double *part,
                       lp_cu_head *head)
{
    double acc = 0;
    LP_CU_FOR(i, n)
    {
        int32_t ti = t[i];
        if (ti < 0 || (size_t)ti >= c)
            atomicMin(&head->bad, (unsigned long long)i);
        else
            acc += w ? (double)w[ti] : 1.0;
    }
    acc = lp_cu_block_sum(acc);
    if (threadIdx.x == 0)
        part[blockIdx.x] = acc;
}

__global__ void k_xent(size_t n, size_t c, const float *logits, const int32_t *t, const float *w,
                       float *dlogits, const lp_cu_head *head, double *part)
{
    __shared__ double sh[WARPS];
    const unsigned lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const double wsum = head->result[1];
    const float inv_wsum = (float)(1.0 / wsum);
    double total = 0;
    for (size_t i = (size_t)blockIdx.x * WARPS + warp; i < n; i += (size_t)gridDim.x * WARPS) {
        int32_t ti = t[i];
        if (ti < 0 || (size_t)ti >= c)
            continue; /* uniform across the warp */
        const float *z = logits + i * c;
        float wi = w ? w[ti] : 1.0f;
        float mx = -INFINITY;
        for (size_t j = lane; j < c; j += 32)
            mx = fmaxf(mx, z[j]);
        mx = lp_cu_warp_max(mx);
        double s = 0;
        for (size_t j = lane; j < c; j += 32)
            s += expf(z[j] - mx);
        s = lp_cu_warp_sum(s);
        s = __shfl_sync(0xffffffffu, s, 0);
        float lse = mx + (float)log(s);
        if (lane == 0)
            total += (double)wi * ((double)lse - z[ti]);
        if (dlogits) {
            float *g = dlogits + i * c, gw = wi * inv_wsum;
            for (size_t j = lane; j < c; j += 32) {
                float e = gw * expf(z[j] - lse);
                g[j] = j == (size_t)ti ? e - gw : e;
            }
        }
    }
    if (lane == 0)
        sh[warp] = total;
    __syncthreads();
    if (threadIdx.x == 0) {
        double b = 0;
        for (int k = 0; k < WARPS; k++)
            b += sh[k];
        part[blockIdx.x] = b;
    }
}

extern "C" cudaError_t lp_cu_softmax_xent(cudaStream_t s, size_t n, size_t c, const float *logits,
                                          const int32_t *targets, const float *class_w,
                                          float *dlogits, lp_cu_head *head, double *part)
{
    unsigned g1 = lp_cu_grid_for(n, LP_CU_THREADS);
    g1 = g1 > LP_CU_MAX_PARTS ? LP_CU_MAX_PARTS : g1;
    k_wsum<<<g1, LP_CU_THREADS, 0, s>>>(n, c, targets, class_w, part, head);
    cudaError_t e = LP_CU_LAUNCHED();
    if (e == cudaSuccess)
        e = lp_cu_sum_parts(s, g1, part, NULL, 1.0, &head->result[1]);
    if (e != cudaSuccess)
        return e;
    unsigned g2 = lp_cu_grid_for(n, WARPS);
    g2 = g2 > LP_CU_MAX_PARTS ? LP_CU_MAX_PARTS : g2;
    k_xent<<<g2, LP_CU_THREADS, 0, s>>>(n, c, logits, targets, class_w, dlogits, head, part);
    e = LP_CU_LAUNCHED();
    if (e == cudaSuccess)
        e = lp_cu_sum_parts(s, g2, part, &head->result[1], 1.0, &head->result[0]);
    return e;
}
