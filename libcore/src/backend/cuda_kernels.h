/*
 * cuda_kernels.h - private to the CUDA backend: the launchers of its own kernels, one family
 * per .cu file (cuda_<op>.cu), each called by the host-side table in cuda.c.
 *
 * This header is read by both gcc (cuda.c, C11) and nvcc (the .cu files, C++), so it holds
 * plain C declarations only. Every pointer is a device pointer; every launcher enqueues on
 * stream `s` and returns the launch status (cudaGetLastError), never waits and never checks
 * arguments: cuda.c has already run the checks every table shares (backend_impl.h).
 * Kernels use no float atomics, so every result is bit-for-bit reproducible run to run.
 */
#ifndef LP_BACKEND_CUDA_KERNELS_H
#define LP_BACKEND_CUDA_KERNELS_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* NCHW window geometry with the output size filled in (checked by lp_conv2d_geom_check). */
typedef struct lp_cu_geom {
    long long n, c, h, w, kh, kw, sh, sw, ph, pw, oh, ow;
} lp_cu_geom;

/* Loss scratch: the host copies `head` back in one transfer after the launch. */
typedef struct lp_cu_head {
    double result[2];       /* [0] mean loss, [1] weight sum (softmax_xent) */
    unsigned long long bad; /* first invalid row / index, ULLONG_MAX when none */
    unsigned long long pad_;
} lp_cu_head;

/* Block partials a loss writes before its final reduction (grids are capped to this). */
#define LP_CU_MAX_PARTS 1024

typedef enum lp_cu_binop { LP_CU_BINOP_ADD = 0, LP_CU_BINOP_SUB, LP_CU_BINOP_MUL } lp_cu_binop;

/* cuda_elementwise.cu: out = x op y; out = alpha x; y += alpha x; x = v; C (m, n, ldc) *= beta
 * (beta 0 writes 0). */
cudaError_t lp_cu_binary(cudaStream_t s, lp_cu_binop op, size_t n, const float *x, const float *y,
                         float *out);
cudaError_t lp_cu_scale(cudaStream_t s, size_t n, float alpha, const float *x, float *out);
cudaError_t lp_cu_axpy(cudaStream_t s, size_t n, float alpha, const float *x, float *y);
cudaError_t lp_cu_fill(cudaStream_t s, size_t n, float v, float *x);
cudaError_t lp_cu_scale_matrix(cudaStream_t s, size_t m, size_t n, float beta, float *c,
                               size_t ldc);

/* cuda_bias_add.cu: y (n, d) += b (d). */
cudaError_t lp_cu_bias_add(cudaStream_t s, size_t n, size_t d, const float *b, float *y);
/* cuda_colsum.cu: out (d) = (accumulate ? out : 0) + column sums of x (n, d), in double. */
cudaError_t lp_cu_colsum(cudaStream_t s, size_t n, size_t d, const float *x, float *out,
                         int accumulate);
/* cuda_rowsum.cu: out (n) = row sums of x (n, d), in double. */
cudaError_t lp_cu_rowsum(cudaStream_t s, size_t n, size_t d, const float *x, float *out);
/* cuda_reduce.cu: out[0] = sum of x (n) in double; out[0] = max |x| (NaN wins);
 * *out = sum of part[0..nparts) / (div_dev ? *div_dev : div) (one block, fixed order). */
cudaError_t lp_cu_sum_all(cudaStream_t s, size_t n, const float *x, float *out);
cudaError_t lp_cu_max_abs(cudaStream_t s, size_t n, const float *x, float *out);
cudaError_t lp_cu_sum_parts(cudaStream_t s, unsigned nparts, const double *part,
                            const double *div_dev, double div, double *out);
/* cuda_argmax.cu: out (n) = first index of the row maximum of x (n, d) (first NaN wins). */
cudaError_t lp_cu_argmax_rows(cudaStream_t s, size_t n, size_t d, const float *x, int32_t *out);

/* cuda_act.cu: kind is an lp_act_kind value. */
cudaError_t lp_cu_act_forward(cudaStream_t s, int kind, size_t n, const float *x, float *y);
cudaError_t lp_cu_act_backward(cudaStream_t s, int kind, size_t n, const float *fwd,
                               const float *dy, float *dx);

/* cuda_dropout.cu: y_i = keep(seed, step, i) ? x_i scale : 0, keep iff Philox word < thr. */
cudaError_t lp_cu_dropout(cudaStream_t s, size_t n, float scale, uint64_t thr, uint64_t seed,
                          uint64_t step, const float *x, float *y);

/* Losses write head->result[0] (mean loss), head->bad; part has LP_CU_MAX_PARTS doubles. */
/* cuda_softmax_xent.cu (dlogits and class_w nullable). */
cudaError_t lp_cu_softmax_xent(cudaStream_t s, size_t n, size_t c, const float *logits,
                               const int32_t *targets, const float *class_w, float *dlogits,
                               lp_cu_head *head, double *part);
/* cuda_bce.cu (dz nullable). */
cudaError_t lp_cu_bce_logits(cudaStream_t s, size_t n, const float *z, const float *y, float *dz,
                             lp_cu_head *head, double *part);
/* cuda_mse.cu (dp nullable). */
cudaError_t lp_cu_mse(cudaStream_t s, size_t n, const float *p, const float *y, float *dp,
                      lp_cu_head *head, double *part);

/* cuda_adamw.cu: the float loop of cpu.c's AdamW with the per-step scalars from the host. */
cudaError_t lp_cu_adamw(cudaStream_t s, size_t n, float b1, float c1, float b2, float c2, float eps,
                        float decay, float step_size, float inv_sqrt_bc2, float *p, const float *g,
                        float *m, float *v);
/* cuda_sgd.cu: momentum mu (0: plain SGD, buf unused). */
cudaError_t lp_cu_sgd(cudaStream_t s, size_t n, float lr, float wd, float mu, int nesterov,
                      float *p, const float *g, float *buf);

/* cuda_im2col.cu / cuda_col2im.cu. */
cudaError_t lp_cu_im2col(cudaStream_t s, const lp_cu_geom *g, const float *x, float *col);
cudaError_t lp_cu_col2im(cudaStream_t s, const lp_cu_geom *g, const float *col, float *x);
/* cuda_maxpool.cu: check writes the first argmax outside [0, h w) into head->bad. */
cudaError_t lp_cu_maxpool_forward(cudaStream_t s, const lp_cu_geom *g, const float *x, float *y,
                                  int32_t *argmax);
cudaError_t lp_cu_maxpool_check(cudaStream_t s, const lp_cu_geom *g, const int32_t *argmax,
                                lp_cu_head *head);
cudaError_t lp_cu_maxpool_backward(cudaStream_t s, const lp_cu_geom *g, const float *dy,
                                   const int32_t *argmax, float *dx);
/* cuda_avgpool.cu. */
cudaError_t lp_cu_avgpool_forward(cudaStream_t s, const lp_cu_geom *g, const float *x, float *y);
cudaError_t lp_cu_avgpool_backward(cudaStream_t s, const lp_cu_geom *g, const float *dy, float *dx);
/* cuda_transformer.cu: gather_check writes the first index outside [0, rows) into head->bad. */
cudaError_t lp_cu_layernorm_forward(cudaStream_t s, size_t n, size_t d, float eps, const float *x,
                                    const float *gamma, const float *beta, float *y, float *mean,
                                    float *rstd);
cudaError_t lp_cu_softmax_rows(cudaStream_t s, size_t n, size_t d, size_t group,
                               const float *mask, const float *x, float *y);
cudaError_t lp_cu_gather_check(cudaStream_t s, size_t n, size_t rows, const int32_t *idx,
                               lp_cu_head *head);
cudaError_t lp_cu_gather_rows(cudaStream_t s, size_t n, size_t d, const float *table,
                              const int32_t *idx, float *out);
/* cuda_layernorm_bwd.cu, cuda_softmax_bwd.cu, cuda_scatter.cu: the encoder's backward ops
 * (backend.h); dx, dgamma, dbeta nullable; scatter's indices checked with lp_cu_gather_check. */
cudaError_t lp_cu_layernorm_backward(cudaStream_t s, size_t n, size_t d, const float *x,
                                     const float *gamma, const float *mean, const float *rstd,
                                     const float *dy, float *dx, float *dgamma, float *dbeta);
cudaError_t lp_cu_softmax_rows_backward(cudaStream_t s, size_t n, size_t d, const float *y,
                                        const float *dy, float *dx);
cudaError_t lp_cu_scatter_add_rows(cudaStream_t s, size_t n, size_t d, const float *dy,
                                   const int32_t *idx, float *dtable);
/* cuda_batchnorm.cu: train is 0 / 1; rm, rv are the running statistics (updated in train
 * forward); dx nullable. */
cudaError_t lp_cu_batchnorm_forward(cudaStream_t s, size_t n, size_t c, size_t hw, float eps,
                                    float momentum, int train, const float *x, const float *gamma,
                                    const float *beta, float *rm, float *rv, float *y);
cudaError_t lp_cu_batchnorm_backward(cudaStream_t s, size_t n, size_t c, size_t hw, float eps,
                                     int train, const float *x, const float *gamma,
                                     const float *rm, const float *rv, const float *dy, float *dx,
                                     float *dgamma, float *dbeta);
/* cuda_mf.cu: ALS half-step over n_rows rows in chunks of `chunk` rows, ws (chunk, k k + k)
 * doubles; the first bad row goes to head->bad. */
cudaError_t lp_cu_als_solve(cudaStream_t s, size_t n_rows, size_t k, const int32_t *ptr,
                            const int32_t *col, const float *w, const float *f, const float *gram,
                            float lambda, float alpha, float *x, double *ws, size_t chunk,
                            lp_cu_head *head);
/* BPR epoch, Hogwild: part gets (loss, used) per block, *blocks the block count (<= 512). */
cudaError_t lp_cu_bpr_hogwild(cudaStream_t s, size_t n_items, size_t k, size_t nnz,
                              const int32_t *ptr, const int32_t *col, const int32_t *row_of,
                              uint64_t seed, uint64_t epoch, size_t n_samples, float lr, float reg,
                              float *xu, float *yi, double *part, unsigned *blocks);
/* BPR epoch in deterministic mini-batches: d (batch, 3, k) floats, keys (12 batch) int32,
 * sort_tmp (sort_bytes >= lp_cu_bpr_sort_bytes(batch)) the radix sort's scratch, lossv
 * (2 batch) doubles, acc (2 ceil(n_samples / batch)) doubles of (loss, used) per batch. */
size_t lp_cu_bpr_sort_bytes(size_t batch);
cudaError_t lp_cu_bpr_batched(cudaStream_t s, size_t n_items, size_t k, size_t nnz,
                              const int32_t *ptr, const int32_t *col, const int32_t *row_of,
                              uint64_t seed, uint64_t epoch, size_t n_samples, float lr, float reg,
                              size_t batch, float *xu, float *yi, float *d, int32_t *keys,
                              void *sort_tmp, size_t sort_bytes, double *lossv, double *acc);

#ifdef __cplusplus
}
#endif
#endif
