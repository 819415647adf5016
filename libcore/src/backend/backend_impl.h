/*
 * backend_impl.h - private to the backend module: argument checks every table shares (so the
 * ref, cpu and a future cuda table reject the same inputs with the same messages), host memory
 * members for the CPU tables, and scalar math shared by formula (not by loop).
 *
 * The checks only read sizes and host-side options, never device memory.
 */
#ifndef LP_BACKEND_IMPL_H
#define LP_BACKEND_IMPL_H

#include "lepton/backend.h"

#include <math.h>

/* Return the status of a check when it failed. Needs `lp_err *err` in scope. */
#define LP_BK_TRY(expr)                                                                            \
    do {                                                                                           \
        lp_status st_ = (expr);                                                                    \
        if (st_ != LP_OK)                                                                          \
            return st_;                                                                            \
    } while (0)

/* LP_EINVAL "<op>: <arg> is NULL" when p is NULL and n > 0. */
lp_status lp_bk_need(const void *p, size_t n, const char *op, const char *arg, lp_err *err);
/* Shape and pointer checks of sgemm (also used by lowrank_update). */
lp_status lp_bk_check_gemm(const char *op, bool ta, bool tb, size_t m, size_t n, size_t k,
                           const float *a, size_t lda, const float *b, size_t ldb, const float *c,
                           size_t ldc, lp_err *err);
lp_status lp_bk_check_act(const char *op, lp_act_kind kind, lp_err *err);
lp_status lp_bk_check_dropout(const char *op, float p, lp_err *err);
/* Pooling geometry: lp_conv2d_geom_check plus 2 pad <= k (no window all padding). */
lp_status lp_bk_check_pool(const char *op, const lp_conv2d_geom *g, size_t *oh, size_t *ow,
                           lp_err *err);
/* LP_ENUMERIC "<op>: loss is nan" when loss is not finite. */
lp_status lp_bk_check_loss(const char *op, double loss, lp_err *err);
/* LP_EINVAL naming the row when a target is outside [0, c). Host-visible targets only. */
lp_status lp_bk_check_targets(const char *op, size_t n, size_t c, const int32_t *t, lp_err *err);
/* The messages of those two device-data checks, for tables that find the bad index on the
 * device: LP_EINVAL "<op>: target of row R is V; expected 0..c-1" and
 * "<op>: argmax A of plane P is outside 0..hw-1". */
lp_status lp_bk_bad_target(const char *op, size_t row, int32_t value, size_t c, lp_err *err);
lp_status lp_bk_bad_argmax(const char *op, int32_t value, size_t plane, size_t hw, lp_err *err);

/* Argument checks of adamw_step shared by every table: the options, step t >= 1 and the four
 * (n) buffers. */
lp_status lp_bk_check_adamw(size_t n, const lp_adamw_opts *o, uint64_t t, const float *params,
                            const float *grads, const float *m, const float *v, lp_err *err);
/* Argument checks of the transformer ops (layernorm_forward, softmax_rows, gather_rows). */
lp_status lp_bk_check_layernorm(size_t n, size_t d, float eps, const float *x, const float *gamma,
                                const float *beta, const float *y, lp_err *err);
lp_status lp_bk_check_softmax_rows(size_t n, size_t d, size_t group, const float *x,
                                   const float *y, lp_err *err);
/* Also checks every index against rows: host-visible idx only. */
lp_status lp_bk_check_gather(size_t n, size_t d, size_t rows, const float *table,
                             const int32_t *idx, const float *out, bool host_idx, lp_err *err);
/* Argument checks of layernorm_backward, softmax_rows_backward and scatter_add_rows (the last
 * also checks every index against rows when host_idx). */
lp_status lp_bk_check_layernorm_bwd(size_t n, size_t d, const float *x, const float *gamma,
                                    const float *mean, const float *rstd, const float *dy,
                                    lp_err *err);
lp_status lp_bk_check_softmax_bwd(size_t n, size_t d, const float *y, const float *dy,
                                  const float *dx, lp_err *err);
lp_status lp_bk_check_scatter(size_t n, size_t d, size_t rows, const float *dy,
                              const int32_t *idx, const float *dtable, bool host_idx, lp_err *err);
/* Argument checks of batchnorm_forward / batchnorm_backward (op names the member). The
 * pointers checked are x, gamma, the two running statistics (eval mode, or forward with
 * train), y (forward: out; backward: dy), and beta (forward) or dgamma, dbeta (backward). */
lp_status lp_bk_check_batchnorm(const char *op, size_t n, size_t c, size_t hw, float eps,
                                float momentum, bool train, const float *x, const float *gamma,
                                const float *beta_or_dbeta, const float *run_mean,
                                const float *run_var, const float *y_or_dy, const float *dgamma,
                                lp_err *err);

/* Argument checks of als_solve / bpr_epoch (sizes, pointers, hyper-parameters); with
 * host_csr the CSR contents too (ptr monotone from 0 to nnz, columns in range). */
lp_status lp_bk_check_als(size_t n_rows, size_t n_f, size_t k, size_t nnz, const int32_t *ptr,
                          const int32_t *col, const float *w, const float *f, const float *gram,
                          float lambda, float alpha, const float *x, bool host_csr, lp_err *err);
lp_status lp_bk_check_bpr(size_t n_users, size_t n_items, size_t k, size_t nnz,
                          const int32_t *ptr, const int32_t *col, const int32_t *row_of,
                          float lr, float reg, const float *xu, const float *yi, bool host_csr,
                          lp_err *err);
/* The host implementations both CPU tables use (host_mf.c): als_solve with OpenMP over rows
 * when parallel; bpr_epoch sequential (batch 0 in sample order). */
lp_status lp_bk_host_als_solve(size_t n_rows, size_t n_f, size_t k, size_t nnz,
                               const int32_t *ptr, const int32_t *col, const float *w,
                               const float *f, const float *gram, float lambda, float alpha,
                               float *x, bool parallel, lp_err *err);
lp_status lp_bk_host_bpr_epoch(size_t n_users, size_t n_items, size_t k, size_t nnz,
                               const int32_t *ptr, const int32_t *col, const int32_t *row_of,
                               uint64_t seed, uint64_t epoch, size_t n_samples, float lr,
                               float reg, size_t batch, float *xu, float *yi, double *loss,
                               size_t *used, lp_err *err);
/* The triple of BPR sample s (the draw bpr_epoch documents): *u, *i, *j, or false when no
 * negative was found in 16 draws. Pure; every table draws the same triples. */
bool lp_bk_bpr_sample(uint64_t seed, uint64_t epoch, uint64_t s, size_t nnz, size_t n_items,
                      const int32_t *ptr, const int32_t *col, const int32_t *row_of, int32_t *u,
                      int32_t *i, int32_t *j);
/* Philox-drawn BPR tries per sample (4 words each: word 0 of try 0 is the pair). */
#define LP_BK_BPR_DRAWS 16

#ifdef LEPTON_HAVE_CUDA
/* The CUDA table's entry point, defined by the CUDA backend (a .cu file in src/backend/) when the
 * library is built with CUDA: *be = the table, or LP_EDEVICE / LP_EUNSUPPORTED saying why
 * there is no usable device. lp_backend_get("cuda" | "auto") calls it. */
lp_status lp_backend_cuda_get(const lp_backend **be, lp_err *err);
/* The same table with matrix products in TF32 on the tensor cores (10-bit mantissa operands,
 * fp32 accumulation): opt-in, for tests and benchmarks (LEPTON_CUDA_TF32=1 makes "cuda" use
 * it). Errors as lp_backend_cuda_get. */
lp_status lp_backend_cuda_tf32_get(const lp_backend **be, lp_err *err);
/* "NVIDIA H100 80GB HBM3 (sm_90, 81079 MiB)" once a table was obtained, else "". */
const char *lp_backend_cuda_device_name(void);
#endif

/* Philox keep threshold: keep iff word < thr, thr = floor((1 - p) 2^32). */
uint64_t lp_bk_keep_threshold(float p);

/* Host-memory members shared by the CPU tables (64-byte aligned allocations). */
lp_status lp_bk_host_alloc(const lp_backend *be, size_t nbytes, void **p, lp_err *err);
lp_status lp_bk_host_free(const lp_backend *be, void *p, lp_err *err);
lp_status lp_bk_host_memset(const lp_backend *be, void *dst, int value, size_t nbytes, lp_err *err);
lp_status lp_bk_host_copy(const lp_backend *be, void *dst, const void *src, size_t nbytes,
                          lp_err *err);
lp_status lp_bk_host_sync(const lp_backend *be, lp_err *err);

/* sqrt(2 / pi) and 1 / sqrt(2), for the two GELU forms. */
#define LP_BK_SQRT_2_OVER_PI 0.79788456080286535588
#define LP_BK_INV_SQRT2 0.70710678118654752440
#define LP_BK_INV_SQRT_2PI 0.39894228040143267794

/* cpu_amx.c: the cpu table's bf16_pack / bf16_linear / bf16_free (Intel AMX). */
lp_status lp_bk_cpu_bf16_pack(const lp_backend *be, size_t out, size_t in, const float *w,
                              void **packed, lp_err *err);
lp_status lp_bk_cpu_bf16_linear(const lp_backend *be, size_t n, size_t in, size_t out,
                                const float *x, const void *packed, const float *bias, float *y,
                                lp_err *err);
void lp_bk_cpu_bf16_free(const lp_backend *be, void *packed);

#endif
