/*
 * cuda.c - the CUDA backend table ("cuda"): device memory through cudaMalloc (never managed
 * memory), copies and kernels on ONE stream, matrix products through cuBLAS, every other op
 * through the kernels declared in cuda_kernels.h (one family per cuda_<op>.cu file).
 *
 * What it does not do: pick a device (always device 0), overlap streams, or check that a
 * pointer really is device memory (a host pointer faults on the device and surfaces as
 * LP_EDEVICE at the next sync).
 *
 * Invariants. Every op first runs the argument checks all tables share (backend_impl.h), so
 * ref, cpu and cuda reject the same inputs with the same messages; checks that need device
 * data (softmax targets, maxpool argmax) run on the device and the host formats the same
 * message from the first bad index. Launch errors come back at once; asynchronous faults at
 * the next sync, copy_d2h or loss (LP_EDEVICE with the CUDA error string). Nothing here exits.
 * Products are plain fp32 unless the TF32 table is chosen (lp_backend_cuda_tf32_get, or
 * LEPTON_CUDA_TF32=1 for "cuda"): tensor-core TF32 keeps 10 mantissa bits of each operand.
 * Kernels use no float atomics, so two runs of the same ops give bit-identical results.
 *
 * Threads: the context is created once (pthread_once) and shared; the stream serialises all
 * ops; the loss / check scratch is guarded by a mutex held until its result is on the host.
 */
#ifdef LEPTON_HAVE_CUDA

#include "backend/backend_impl.h"
#include "backend/cuda_kernels.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Turn a CUDA runtime error into LP_EDEVICE naming the call and CUDA's own words; return. */
#define LP_CUDA_CHECK(call, what, err)                                                             \
    do {                                                                                           \
        cudaError_t ce_ = (call);                                                                  \
        if (ce_ != cudaSuccess)                                                                    \
            return lp_err_set((err), LP_EDEVICE, "cuda %s: %s (%s)", (what),                       \
                              cudaGetErrorString(ce_), cudaGetErrorName(ce_));                     \
    } while (0)

#define LP_CUBLAS_CHECK(call, what, err)                                                           \
    do {                                                                                           \
        cublasStatus_t cs_ = (call);                                                               \
        if (cs_ != CUBLAS_STATUS_SUCCESS)                                                          \
            return lp_err_set((err), LP_EDEVICE, "cuda %s: cuBLAS %s", (what),                     \
                              cublasGetStatusString(cs_));                                         \
    } while (0)

typedef struct cuda_ctx {
    cudaStream_t stream;
    cublasHandle_t blas;
    lp_cu_head *head; /* device: loss results and first-bad index */
    double *part;     /* device: LP_CU_MAX_PARTS block partials */
    pthread_mutex_t scratch_lock;
    void *als_ws;        /* device: als_solve's double systems, grown on demand, kept for the
                            process (as head and part); guarded by scratch_lock */
    size_t als_ws_bytes;
    char device_name[256];
} cuda_ctx;

typedef struct cuda_table_ctx {
    cuda_ctx *shared;
    bool tf32;
} cuda_table_ctx;

static cuda_ctx g_ctx;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static lp_err g_init_err; /* status LP_OK once the context is up */

#define CTX(be) (((const cuda_table_ctx *)(be)->ctx)->shared)
#define STREAM(be) (CTX(be)->stream)

static lp_status init_ctx(lp_err *err)
{
    int count = 0;
    cudaError_t ce = cudaGetDeviceCount(&count);
    if (ce != cudaSuccess)
        return lp_err_set(err, LP_EDEVICE, "no CUDA device: cudaGetDeviceCount: %s (%s)",
                          cudaGetErrorString(ce), cudaGetErrorName(ce));
    if (count == 0)
        return lp_err_set(err, LP_EDEVICE, "no CUDA device: cudaGetDeviceCount found 0 devices");
    LP_CUDA_CHECK(cudaSetDevice(0), "cudaSetDevice(0)", err);
    struct cudaDeviceProp prop;
    LP_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties", err);
    snprintf(g_ctx.device_name, sizeof g_ctx.device_name, "%s (sm_%d%d, %zu MiB)", prop.name,
             prop.major, prop.minor, prop.totalGlobalMem >> 20);
    if (prop.major < 9)
        return lp_err_set(err, LP_EUNSUPPORTED,
                          "no usable CUDA device: %s has compute capability %d.%d; this build "
                          "targets sm_90",
                          prop.name, prop.major, prop.minor);
    LP_CUDA_CHECK(cudaStreamCreateWithFlags(&g_ctx.stream, cudaStreamNonBlocking),
                  "cudaStreamCreate", err);
    LP_CUBLAS_CHECK(cublasCreate(&g_ctx.blas), "cublasCreate", err);
    LP_CUBLAS_CHECK(cublasSetStream(g_ctx.blas, g_ctx.stream), "cublasSetStream", err);
    void *p = NULL;
    LP_CUDA_CHECK(cudaMalloc(&p, sizeof(lp_cu_head)), "cudaMalloc(scratch)", err);
    g_ctx.head = p;
    LP_CUDA_CHECK(cudaMalloc(&p, LP_CU_MAX_PARTS * sizeof(double)), "cudaMalloc(scratch)", err);
    g_ctx.part = p;
    if (pthread_mutex_init(&g_ctx.scratch_lock, NULL) != 0)
        return lp_err_set(err, LP_ENOMEM, "cuda: cannot create the scratch mutex");
    lp_log_info("backend cuda: %s", g_ctx.device_name);
    return LP_OK;
}

static void init_once(void)
{
    lp_err_clear(&g_init_err);
    init_ctx(&g_init_err);
}

/* ---- memory and synchronisation ----------------------------------------------------------- */

static lp_status cu_alloc(const lp_backend *be, size_t nbytes, void **p, lp_err *err)
{
    if (!p)
        return lp_err_set(err, LP_EINVAL, "%s alloc: output pointer is NULL", be->name);
    *p = NULL;
    /* cudaMalloc aligns to 256 bytes; 0 bytes still gets a unique block. */
    cudaError_t ce = cudaMalloc(p, nbytes ? nbytes : 256);
    if (ce == cudaErrorMemoryAllocation) {
        cudaGetLastError(); /* not sticky: clear it */
        return lp_err_set(err, LP_ENOMEM, "%s alloc: out of device memory for %zu bytes", be->name,
                          nbytes);
    }
    LP_CUDA_CHECK(ce, "cudaMalloc", err);
    return LP_OK;
}

static lp_status cu_free(const lp_backend *be, void *p, lp_err *err)
{
    if (p)
        LP_CUDA_CHECK(cudaFree(p), "cudaFree", err);
    return LP_OK;
}

static lp_status cu_memset(const lp_backend *be, void *dst, int value, size_t nbytes, lp_err *err)
{
    LP_BK_TRY(lp_bk_need(dst, nbytes, "memset", "dst", err));
    if (nbytes)
        LP_CUDA_CHECK(cudaMemsetAsync(dst, value, nbytes, STREAM(be)), "memset", err);
    return LP_OK;
}

/* Host memory from malloc (pageable): cudaMemcpyAsync returns once the source is staged, so
 * the caller may reuse it at once. */
static lp_status cu_copy_h2d(const lp_backend *be, void *dst, const void *src, size_t nbytes,
                             lp_err *err)
{
    LP_BK_TRY(lp_bk_need(dst, nbytes, "copy", "dst", err));
    LP_BK_TRY(lp_bk_need(src, nbytes, "copy", "src", err));
    if (nbytes)
        LP_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, STREAM(be)),
                      "copy_h2d", err);
    return LP_OK;
}

/* Waits: the host buffer holds the data on return (after every op queued before it). */
static lp_status cu_copy_d2h(const lp_backend *be, void *dst, const void *src, size_t nbytes,
                             lp_err *err)
{
    LP_BK_TRY(lp_bk_need(dst, nbytes, "copy", "dst", err));
    LP_BK_TRY(lp_bk_need(src, nbytes, "copy", "src", err));
    if (nbytes)
        LP_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToHost, STREAM(be)),
                      "copy_d2h", err);
    LP_CUDA_CHECK(cudaStreamSynchronize(STREAM(be)), "copy_d2h (sync)", err);
    return LP_OK;
}

static lp_status cu_copy_d2d(const lp_backend *be, void *dst, const void *src, size_t nbytes,
                             lp_err *err)
{
    LP_BK_TRY(lp_bk_need(dst, nbytes, "copy", "dst", err));
    LP_BK_TRY(lp_bk_need(src, nbytes, "copy", "src", err));
    if (nbytes && dst != src)
        LP_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDeviceToDevice, STREAM(be)),
                      "copy_d2d", err);
    return LP_OK;
}

static lp_status cu_sync(const lp_backend *be, lp_err *err)
{
    LP_CUDA_CHECK(cudaStreamSynchronize(STREAM(be)), "sync", err);
    LP_CUDA_CHECK(cudaGetLastError(), "sync", err);
    return LP_OK;
}

/* ---- matrix products (cuBLAS) -------------------------------------------------------------- */

/* Row-major C (m, n) = alpha op(A) op(B) + beta C is column-major C^T (n, m) =
 * alpha op(B)^T op(A)^T + beta C^T: the same buffers with A and B swapped. */
static lp_status cu_gemm(const lp_backend *be, const char *op, bool ta, bool tb, size_t m, size_t n,
                         size_t k, float alpha, const float *a, size_t lda, const float *b,
                         size_t ldb, float beta, float *c, size_t ldc, lp_err *err)
{
    if (m == 0 || n == 0)
        return LP_OK;
    if (k == 0) /* C = beta C (0 when beta is 0, never reading C) */
        LP_CUDA_CHECK(lp_cu_scale_matrix(STREAM(be), m, n, beta, c, ldc), op, err);
    else {
        const cuda_table_ctx *tc = be->ctx;
        cublasComputeType_t ct = tc->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
        LP_CUBLAS_CHECK(cublasGemmEx(tc->shared->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                     ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)m, (int)k, &alpha,
                                     b, CUDA_R_32F, (int)ldb, a, CUDA_R_32F, (int)lda, &beta, c,
                                     CUDA_R_32F, (int)ldc, ct, CUBLAS_GEMM_DEFAULT),
                        op, err);
    }
    return LP_OK;
}

static lp_status cu_sgemm(const lp_backend *be, bool ta, bool tb, size_t m, size_t n, size_t k,
                          float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                          float beta, float *c, size_t ldc, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_gemm("sgemm", ta, tb, m, n, k, a, lda, b, ldb, c, ldc, err));
    return cu_gemm(be, "sgemm", ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, err);
}

/* Separate outputs: one cublasGemmStridedBatchedEx (row-major handled as in cu_gemm). The
 * reduction (stride_c 0): one gemm per entry accumulating into C on the stream, in order. */
static lp_status cu_sgemm_batched(const lp_backend *be, bool ta, bool tb, size_t m, size_t n,
                                  size_t k, float alpha, const float *a, size_t lda, size_t sa,
                                  const float *b, size_t ldb, size_t sb, float beta, float *c,
                                  size_t ldc, size_t sc, size_t batch, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_gemm("sgemm_batched", ta, tb, m, n, k, a, lda, b, ldb, c, ldc, err));
    if (batch == 0 && sc == 0)
        return cu_gemm(be, "sgemm_batched", ta, tb, m, n, 0, alpha, a, lda, b, ldb, beta, c, ldc,
                       err);
    if (sc == 0 || k == 0 || batch > INT32_MAX) {
        for (size_t i = 0; i < batch; i++)
            LP_BK_TRY(cu_gemm(be, "sgemm_batched", ta, tb, m, n, k, alpha, a + i * sa, lda,
                              b + i * sb, ldb, sc == 0 && i > 0 ? 1.0f : beta, c + i * sc, ldc,
                              err));
        return LP_OK;
    }
    if (batch == 0 || m == 0 || n == 0)
        return LP_OK;
    const cuda_table_ctx *tc = be->ctx;
    cublasComputeType_t ct = tc->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    LP_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
                        tc->shared->blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                        ta ? CUBLAS_OP_T : CUBLAS_OP_N, (int)n, (int)m, (int)k, &alpha, b,
                        CUDA_R_32F, (int)ldb, (long long)sb, a, CUDA_R_32F, (int)lda,
                        (long long)sa, &beta, c, CUDA_R_32F, (int)ldc, (long long)sc, (int)batch,
                        ct, CUBLAS_GEMM_DEFAULT),
                    "sgemm_batched", err);
    return LP_OK;
}

static lp_status cu_lowrank_update(const lp_backend *be, size_t m, size_t n, size_t r, float scale,
                                   const float *b, const float *a, float *w, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_gemm("lowrank_update", false, false, m, n, r, b, r ? r : 1, a, n ? n : 1,
                               w, n ? n : 1, err));
    if (r == 0)
        return LP_OK;
    /* W (m, n) = scale B (m, r) @ A (r, n) + 1 W */
    return cu_gemm(be, "lowrank_update", false, false, m, n, r, scale, b, r, a, n, 1.0f, w, n, err);
}

/* ---- elementwise ---------------------------------------------------------------------------- */

static lp_status cu_binary(const lp_backend *be, const char *op, lp_cu_binop code, size_t n,
                           const float *x, const float *y, float *out, lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, op, "x", err));
    LP_BK_TRY(lp_bk_need(y, n, op, "y", err));
    LP_BK_TRY(lp_bk_need(out, n, op, "out", err));
    LP_CUDA_CHECK(lp_cu_binary(STREAM(be), code, n, x, y, out), op, err);
    return LP_OK;
}

static lp_status cu_add(const lp_backend *be, size_t n, const float *x, const float *y, float *out,
                        lp_err *err)
{
    return cu_binary(be, "add", LP_CU_BINOP_ADD, n, x, y, out, err);
}

static lp_status cu_sub(const lp_backend *be, size_t n, const float *x, const float *y, float *out,
                        lp_err *err)
{
    return cu_binary(be, "sub", LP_CU_BINOP_SUB, n, x, y, out, err);
}

static lp_status cu_mul(const lp_backend *be, size_t n, const float *x, const float *y, float *out,
                        lp_err *err)
{
    return cu_binary(be, "mul", LP_CU_BINOP_MUL, n, x, y, out, err);
}

static lp_status cu_scale(const lp_backend *be, size_t n, float alpha, const float *x, float *out,
                          lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, "scale", "x", err));
    LP_BK_TRY(lp_bk_need(out, n, "scale", "out", err));
    LP_CUDA_CHECK(lp_cu_scale(STREAM(be), n, alpha, x, out), "scale", err);
    return LP_OK;
}

static lp_status cu_axpy(const lp_backend *be, size_t n, float alpha, const float *x, float *y,
                         lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, "axpy", "x", err));
    LP_BK_TRY(lp_bk_need(y, n, "axpy", "y", err));
    LP_CUDA_CHECK(lp_cu_axpy(STREAM(be), n, alpha, x, y), "axpy", err);
    return LP_OK;
}

static lp_status cu_fill(const lp_backend *be, size_t n, float value, float *x, lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, "fill", "x", err));
    LP_CUDA_CHECK(lp_cu_fill(STREAM(be), n, value, x), "fill", err);
    return LP_OK;
}

/* ---- bias ----------------------------------------------------------------------------------- */

static lp_status cu_bias_add(const lp_backend *be, size_t n, size_t d, const float *b, float *y,
                             lp_err *err)
{
    LP_BK_TRY(lp_bk_need(b, n ? d : 0, "bias_add", "b", err));
    LP_BK_TRY(lp_bk_need(y, n * d, "bias_add", "y", err));
    LP_CUDA_CHECK(lp_cu_bias_add(STREAM(be), n, d, b, y), "bias_add", err);
    return LP_OK;
}

static lp_status cu_bias_backward(const lp_backend *be, size_t n, size_t d, const float *dy,
                                  float *db, lp_err *err)
{
    LP_BK_TRY(lp_bk_need(dy, n * d, "bias_backward", "dy", err));
    LP_BK_TRY(lp_bk_need(db, d, "bias_backward", "db", err));
    LP_CUDA_CHECK(lp_cu_colsum(STREAM(be), n, d, dy, db, 1), "bias_backward", err);
    return LP_OK;
}

/* ---- activations and dropout ---------------------------------------------------------------- */

static lp_status cu_act_forward(const lp_backend *be, lp_act_kind kind, size_t n, const float *x,
                                float *y, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_act("act_forward", kind, err));
    LP_BK_TRY(lp_bk_need(x, n, "act_forward", "x", err));
    LP_BK_TRY(lp_bk_need(y, n, "act_forward", "y", err));
    LP_CUDA_CHECK(lp_cu_act_forward(STREAM(be), (int)kind, n, x, y), "act_forward", err);
    return LP_OK;
}

static lp_status cu_act_backward(const lp_backend *be, lp_act_kind kind, size_t n, const float *fwd,
                                 const float *dy, float *dx, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_act("act_backward", kind, err));
    LP_BK_TRY(lp_bk_need(fwd, n, "act_backward", "fwd", err));
    LP_BK_TRY(lp_bk_need(dy, n, "act_backward", "dy", err));
    LP_BK_TRY(lp_bk_need(dx, n, "act_backward", "dx", err));
    LP_CUDA_CHECK(lp_cu_act_backward(STREAM(be), (int)kind, n, fwd, dy, dx), "act_backward", err);
    return LP_OK;
}

static lp_status cu_dropout(const lp_backend *be, const char *op, size_t n, float p, uint64_t seed,
                            uint64_t step, const float *x, float *y, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_dropout(op, p, err));
    LP_BK_TRY(lp_bk_need(x, n, op, "input", err));
    LP_BK_TRY(lp_bk_need(y, n, op, "output", err));
    /* The same float scale and integer threshold as the CPU tables. */
    float scale = 1.0f / (1.0f - p);
    LP_CUDA_CHECK(lp_cu_dropout(STREAM(be), n, scale, lp_bk_keep_threshold(p), seed, step, x, y),
                  op, err);
    return LP_OK;
}

static lp_status cu_dropout_forward(const lp_backend *be, size_t n, float p, uint64_t seed,
                                    uint64_t step, const float *x, float *y, lp_err *err)
{
    return cu_dropout(be, "dropout_forward", n, p, seed, step, x, y, err);
}

static lp_status cu_dropout_backward(const lp_backend *be, size_t n, float p, uint64_t seed,
                                     uint64_t step, const float *dy, float *dx, lp_err *err)
{
    return cu_dropout(be, "dropout_backward", n, p, seed, step, dy, dx, err);
}

/* ---- losses --------------------------------------------------------------------------------- */

/* Reset the scratch head (bad = ULLONG_MAX) before a loss or check; caller holds the lock. */
static lp_status head_reset(const lp_backend *be, lp_err *err)
{
    LP_CUDA_CHECK(cudaMemsetAsync(CTX(be)->head, 0xff, sizeof(lp_cu_head), STREAM(be)),
                  "memset(scratch)", err);
    return LP_OK;
}

/* Copy the head to the host and wait; caller holds the lock. */
static lp_status head_fetch(const lp_backend *be, const char *op, lp_cu_head *h, lp_err *err)
{
    LP_CUDA_CHECK(cudaMemcpyAsync(h, CTX(be)->head, sizeof *h, cudaMemcpyDeviceToHost, STREAM(be)),
                  op, err);
    LP_CUDA_CHECK(cudaStreamSynchronize(STREAM(be)), op, err);
    return LP_OK;
}

/* Under the scratch lock: reset the head, run `launch` (an expression giving the cudaError_t of
 * a launch that writes CTX(be)->head), then copy the head into h and wait. Sets st. */
#define HEAD_RUN(be, op, h, st, launch, err)                                                       \
    do {                                                                                           \
        cuda_ctx *cx_ = CTX(be);                                                                   \
        pthread_mutex_lock(&cx_->scratch_lock);                                                    \
        (st) = head_reset((be), (err));                                                            \
        if ((st) == LP_OK) {                                                                       \
            cudaError_t ce_ = (launch);                                                            \
            (st) = ce_ == cudaSuccess ? head_fetch((be), (op), &(h), (err))                        \
                                      : lp_err_set((err), LP_EDEVICE, "cuda %s: %s", (op),         \
                                                   cudaGetErrorString(ce_));                       \
        }                                                                                          \
        pthread_mutex_unlock(&cx_->scratch_lock);                                                  \
    } while (0)

static lp_status cu_softmax_xent(const lp_backend *be, size_t n, size_t c, const float *logits,
                                 const int32_t *targets, const float *class_w, double *loss,
                                 float *dlogits, lp_err *err)
{
    const char *op = "softmax_xent";
    if (n == 0 || c == 0)
        return lp_err_set(err, LP_EINVAL, "%s: empty logits (%zu, %zu)", op, n, c);
    LP_BK_TRY(lp_bk_need(logits, n * c, op, "logits", err));
    LP_BK_TRY(lp_bk_need(targets, n, op, "targets", err));
    LP_BK_TRY(lp_bk_need(loss, 1, op, "loss", err));
    lp_cu_head h;
    lp_status st;
    HEAD_RUN(be, op, h, st,
             lp_cu_softmax_xent(STREAM(be), n, c, logits, targets, class_w, dlogits, CTX(be)->head,
                                CTX(be)->part),
             err);
    if (st != LP_OK)
        return st;
    if (h.bad != ULLONG_MAX) {
        int32_t t = 0;
        LP_BK_TRY(cu_copy_d2h(be, &t, targets + h.bad, sizeof t, err));
        return lp_bk_bad_target(op, (size_t)h.bad, t, c, err);
    }
    *loss = h.result[0];
    return lp_bk_check_loss(op, *loss, err);
}

static lp_status cu_pointwise_loss(const lp_backend *be, const char *op, int which, size_t n,
                                   const float *p, const float *y, double *loss, float *dp,
                                   lp_err *err)
{
    if (n == 0)
        return lp_err_set(err, LP_EINVAL, "%s: no values", op);
    LP_BK_TRY(lp_bk_need(p, n, op, which ? "p" : "z", err));
    LP_BK_TRY(lp_bk_need(y, n, op, "y", err));
    LP_BK_TRY(lp_bk_need(loss, 1, op, "loss", err));
    lp_cu_head h;
    lp_status st;
    HEAD_RUN(be, op, h, st,
             which ? lp_cu_mse(STREAM(be), n, p, y, dp, CTX(be)->head, CTX(be)->part)
                   : lp_cu_bce_logits(STREAM(be), n, p, y, dp, CTX(be)->head, CTX(be)->part),
             err);
    if (st != LP_OK)
        return st;
    *loss = h.result[0];
    return lp_bk_check_loss(op, *loss, err);
}

static lp_status cu_bce_logits(const lp_backend *be, size_t n, const float *z, const float *y,
                               double *loss, float *dz, lp_err *err)
{
    return cu_pointwise_loss(be, "bce_logits", 0, n, z, y, loss, dz, err);
}

static lp_status cu_mse(const lp_backend *be, size_t n, const float *p, const float *y,
                        double *loss, float *dp, lp_err *err)
{
    return cu_pointwise_loss(be, "mse", 1, n, p, y, loss, dp, err);
}

/* ---- reductions ----------------------------------------------------------------------------- */

static lp_status cu_sum_rows(const lp_backend *be, size_t n, size_t d, const float *x, float *out,
                             lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n * d, "sum_rows", "x", err));
    LP_BK_TRY(lp_bk_need(out, d, "sum_rows", "out", err));
    LP_CUDA_CHECK(lp_cu_colsum(STREAM(be), n, d, x, out, 0), "sum_rows", err);
    return LP_OK;
}

static lp_status cu_sum_cols(const lp_backend *be, size_t n, size_t d, const float *x, float *out,
                             lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n * d, "sum_cols", "x", err));
    LP_BK_TRY(lp_bk_need(out, n, "sum_cols", "out", err));
    LP_CUDA_CHECK(lp_cu_rowsum(STREAM(be), n, d, x, out), "sum_cols", err);
    return LP_OK;
}

static lp_status cu_sum_all(const lp_backend *be, size_t n, const float *x, float *out, lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, "sum_all", "x", err));
    LP_BK_TRY(lp_bk_need(out, 1, "sum_all", "out", err));
    LP_CUDA_CHECK(lp_cu_sum_all(STREAM(be), n, x, out), "sum_all", err);
    return LP_OK;
}

static lp_status cu_max_abs(const lp_backend *be, size_t n, const float *x, float *out, lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, "max_abs", "x", err));
    LP_BK_TRY(lp_bk_need(out, 1, "max_abs", "out", err));
    LP_CUDA_CHECK(lp_cu_max_abs(STREAM(be), n, x, out), "max_abs", err);
    return LP_OK;
}

static lp_status cu_argmax_rows(const lp_backend *be, size_t n, size_t d, const float *x,
                                int32_t *out, lp_err *err)
{
    if (d == 0 || d > INT32_MAX)
        return lp_err_set(err, LP_EINVAL, "argmax_rows: d is %zu; expected 1..2^31-1", d);
    LP_BK_TRY(lp_bk_need(x, n * d, "argmax_rows", "x", err));
    LP_BK_TRY(lp_bk_need(out, n, "argmax_rows", "out", err));
    LP_CUDA_CHECK(lp_cu_argmax_rows(STREAM(be), n, d, x, out), "argmax_rows", err);
    return LP_OK;
}

/* ---- optimizers ----------------------------------------------------------------------------- */

static lp_status cu_adamw_step(const lp_backend *be, size_t n, const lp_adamw_opts *o, uint64_t t,
                               float *params, const float *grads, float *m, float *v, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_adamw(n, o, t, params, grads, m, v, err));
    /* The per-step scalars of cpu.c, in double once on the host. */
    float b1 = (float)o->beta1, c1 = (float)(1.0 - o->beta1);
    float b2 = (float)o->beta2, c2 = (float)(1.0 - o->beta2), eps = (float)o->eps;
    float decay = (float)(1.0 - o->lr * o->weight_decay);
    float step_size = (float)(o->lr / (1.0 - pow(o->beta1, (double)t)));
    float inv_sqrt_bc2 = (float)(1.0 / sqrt(1.0 - pow(o->beta2, (double)t)));
    LP_CUDA_CHECK(lp_cu_adamw(STREAM(be), n, b1, c1, b2, c2, eps, decay, step_size, inv_sqrt_bc2,
                              params, grads, m, v),
                  "adamw_step", err);
    return LP_OK;
}

static lp_status cu_sgd_step(const lp_backend *be, size_t n, const lp_sgd_opts *o, float *params,
                             const float *grads, float *buf, lp_err *err)
{
    LP_BK_TRY(lp_sgd_opts_check(o, err));
    LP_BK_TRY(lp_bk_need(params, n, "sgd_step", "params", err));
    LP_BK_TRY(lp_bk_need(grads, n, "sgd_step", "grads", err));
    float mu = (float)o->momentum;
    if (mu > 0)
        LP_BK_TRY(lp_bk_need(buf, n, "sgd_step", "buf", err));
    LP_CUDA_CHECK(lp_cu_sgd(STREAM(be), n, (float)o->lr, (float)o->weight_decay, mu,
                            o->nesterov ? 1 : 0, params, grads, buf),
                  "sgd_step", err);
    return LP_OK;
}

/* ---- convolution helpers and pooling -------------------------------------------------------- */

static lp_cu_geom cu_geom(const lp_conv2d_geom *g, size_t oh, size_t ow)
{
    return (lp_cu_geom){(long long)g->n,        (long long)g->c,        (long long)g->h,
                        (long long)g->w,        (long long)g->kh,       (long long)g->kw,
                        (long long)g->stride_h, (long long)g->stride_w, (long long)g->pad_h,
                        (long long)g->pad_w,    (long long)oh,          (long long)ow};
}

static lp_status cu_im2col(const lp_backend *be, const lp_conv2d_geom *g, const float *x,
                           float *col, lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_conv2d_geom_check(g, "im2col", &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(x, 1, "im2col", "x", err));
    LP_BK_TRY(lp_bk_need(col, 1, "im2col", "col", err));
    lp_cu_geom cg = cu_geom(g, oh, ow);
    LP_CUDA_CHECK(lp_cu_im2col(STREAM(be), &cg, x, col), "im2col", err);
    return LP_OK;
}

static lp_status cu_col2im(const lp_backend *be, const lp_conv2d_geom *g, const float *col,
                           float *x, lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_conv2d_geom_check(g, "col2im", &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(col, 1, "col2im", "col", err));
    LP_BK_TRY(lp_bk_need(x, 1, "col2im", "x", err));
    lp_cu_geom cg = cu_geom(g, oh, ow);
    LP_CUDA_CHECK(lp_cu_col2im(STREAM(be), &cg, col, x), "col2im", err);
    return LP_OK;
}

static lp_status cu_maxpool_forward(const lp_backend *be, const lp_conv2d_geom *g, const float *x,
                                    float *y, int32_t *argmax, lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_bk_check_pool("maxpool_forward", g, &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(x, 1, "maxpool_forward", "x", err));
    LP_BK_TRY(lp_bk_need(y, 1, "maxpool_forward", "y", err));
    LP_BK_TRY(lp_bk_need(argmax, 1, "maxpool_forward", "argmax", err));
    lp_cu_geom cg = cu_geom(g, oh, ow);
    LP_CUDA_CHECK(lp_cu_maxpool_forward(STREAM(be), &cg, x, y, argmax), "maxpool_forward", err);
    return LP_OK;
}

static lp_status cu_maxpool_backward(const lp_backend *be, const lp_conv2d_geom *g, const float *dy,
                                     const int32_t *argmax, float *dx, lp_err *err)
{
    const char *op = "maxpool_backward";
    size_t oh, ow;
    LP_BK_TRY(lp_bk_check_pool(op, g, &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(dy, 1, op, "dy", err));
    LP_BK_TRY(lp_bk_need(argmax, 1, op, "argmax", err));
    LP_BK_TRY(lp_bk_need(dx, 1, op, "dx", err));
    lp_cu_geom cg = cu_geom(g, oh, ow);
    /* Validate argmax on the device first (the CPU tables reject it before writing dx). */
    lp_cu_head h;
    lp_status st;
    HEAD_RUN(be, op, h, st, lp_cu_maxpool_check(STREAM(be), &cg, argmax, CTX(be)->head), err);
    if (st != LP_OK)
        return st;
    if (h.bad != ULLONG_MAX) {
        int32_t a = 0;
        LP_BK_TRY(cu_copy_d2h(be, &a, argmax + h.bad, sizeof a, err));
        return lp_bk_bad_argmax(op, a, (size_t)h.bad / (oh * ow), g->h * g->w, err);
    }
    LP_CUDA_CHECK(lp_cu_maxpool_backward(STREAM(be), &cg, dy, argmax, dx), op, err);
    return LP_OK;
}

static lp_status cu_avgpool_forward(const lp_backend *be, const lp_conv2d_geom *g, const float *x,
                                    float *y, lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_bk_check_pool("avgpool_forward", g, &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(x, 1, "avgpool_forward", "x", err));
    LP_BK_TRY(lp_bk_need(y, 1, "avgpool_forward", "y", err));
    lp_cu_geom cg = cu_geom(g, oh, ow);
    LP_CUDA_CHECK(lp_cu_avgpool_forward(STREAM(be), &cg, x, y), "avgpool_forward", err);
    return LP_OK;
}

static lp_status cu_avgpool_backward(const lp_backend *be, const lp_conv2d_geom *g, const float *dy,
                                     float *dx, lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_bk_check_pool("avgpool_backward", g, &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(dy, 1, "avgpool_backward", "dy", err));
    LP_BK_TRY(lp_bk_need(dx, 1, "avgpool_backward", "dx", err));
    lp_cu_geom cg = cu_geom(g, oh, ow);
    LP_CUDA_CHECK(lp_cu_avgpool_backward(STREAM(be), &cg, dy, dx), "avgpool_backward", err);
    return LP_OK;
}

/* ---- transformer ops ------------------------------------------------------------------------ */

static lp_status cu_layernorm_forward(const lp_backend *be, size_t n, size_t d, float eps,
                                      const float *x, const float *gamma, const float *beta,
                                      float *y, float *mean, float *rstd, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_layernorm(n, d, eps, x, gamma, beta, y, err));
    LP_CUDA_CHECK(lp_cu_layernorm_forward(STREAM(be), n, d, eps, x, gamma, beta, y, mean, rstd),
                  "layernorm_forward", err);
    return LP_OK;
}

static lp_status cu_softmax_rows(const lp_backend *be, size_t n, size_t d, size_t group,
                                 const float *mask, const float *x, float *y, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_softmax_rows(n, d, group, x, y, err));
    LP_CUDA_CHECK(lp_cu_softmax_rows(STREAM(be), n, d, group, mask, x, y), "softmax_rows", err);
    return LP_OK;
}

/* The index check of gather_rows / scatter_add_rows (op) runs on the device before the op, so
 * a bad index writes nothing (as in the host tables); it costs one small synchronous copy of
 * the scratch head. n >= 1. */
static lp_status cu_check_idx(const lp_backend *be, const char *op, size_t n, size_t rows,
                              const int32_t *idx, lp_err *err)
{
    lp_cu_head h;
    lp_status st;
    HEAD_RUN(be, op, h, st, lp_cu_gather_check(STREAM(be), n, rows, idx, CTX(be)->head), err);
    if (st != LP_OK)
        return st;
    if (h.bad != ULLONG_MAX) {
        int32_t a = 0;
        LP_BK_TRY(cu_copy_d2h(be, &a, idx + h.bad, sizeof a, err));
        return lp_err_set(err, LP_EINVAL, "%s: idx[%llu] is %d; expected 0..%zu", op, h.bad,
                          (int)a, rows - 1);
    }
    return LP_OK;
}

static lp_status cu_gather_rows(const lp_backend *be, size_t n, size_t d, size_t rows,
                                const float *table, const int32_t *idx, float *out, lp_err *err)
{
    const char *op = "gather_rows";
    LP_BK_TRY(lp_bk_check_gather(n, d, rows, table, idx, out, false, err));
    if (n == 0 || d == 0)
        return LP_OK;
    LP_BK_TRY(cu_check_idx(be, op, n, rows, idx, err));
    LP_CUDA_CHECK(lp_cu_gather_rows(STREAM(be), n, d, table, idx, out), op, err);
    return LP_OK;
}

static lp_status cu_layernorm_backward(const lp_backend *be, size_t n, size_t d, const float *x,
                                       const float *gamma, const float *mean, const float *rstd,
                                       const float *dy, float *dx, float *dgamma, float *dbeta,
                                       lp_err *err)
{
    LP_BK_TRY(lp_bk_check_layernorm_bwd(n, d, x, gamma, mean, rstd, dy, err));
    LP_CUDA_CHECK(lp_cu_layernorm_backward(STREAM(be), n, d, x, gamma, mean, rstd, dy, dx, dgamma,
                                           dbeta),
                  "layernorm_backward", err);
    return LP_OK;
}

static lp_status cu_softmax_rows_backward(const lp_backend *be, size_t n, size_t d,
                                          const float *y, const float *dy, float *dx, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_softmax_bwd(n, d, y, dy, dx, err));
    LP_CUDA_CHECK(lp_cu_softmax_rows_backward(STREAM(be), n, d, y, dy, dx),
                  "softmax_rows_backward", err);
    return LP_OK;
}

static lp_status cu_scatter_add_rows(const lp_backend *be, size_t n, size_t d, size_t rows,
                                     const float *dy, const int32_t *idx, float *dtable,
                                     lp_err *err)
{
    const char *op = "scatter_add_rows";
    LP_BK_TRY(lp_bk_check_scatter(n, d, rows, dy, idx, dtable, false, err));
    if (n == 0 || d == 0)
        return LP_OK;
    LP_BK_TRY(cu_check_idx(be, op, n, rows, idx, err));
    LP_CUDA_CHECK(lp_cu_scatter_add_rows(STREAM(be), n, d, dy, idx, dtable), op, err);
    return LP_OK;
}

/* ---- batch normalization -------------------------------------------------------------------- */

static lp_status cu_batchnorm_forward(const lp_backend *be, size_t n, size_t c, size_t hw,
                                      float eps, float momentum, bool train, const float *x,
                                      const float *gamma, const float *beta, float *run_mean,
                                      float *run_var, float *y, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_batchnorm("batchnorm_forward", n, c, hw, eps, momentum, train, x, gamma,
                                    beta, run_mean, run_var, y, NULL, err));
    LP_CUDA_CHECK(lp_cu_batchnorm_forward(STREAM(be), n, c, hw, eps, momentum, train, x, gamma,
                                          beta, run_mean, run_var, y),
                  "batchnorm_forward", err);
    return LP_OK;
}

static lp_status cu_batchnorm_backward(const lp_backend *be, size_t n, size_t c, size_t hw,
                                       float eps, bool train, const float *x, const float *gamma,
                                       const float *run_mean, const float *run_var,
                                       const float *dy, float *dx, float *dgamma, float *dbeta,
                                       lp_err *err)
{
    LP_BK_TRY(lp_bk_check_batchnorm("batchnorm_backward", n, c, hw, eps, 0, train, x, gamma,
                                    dbeta, run_mean, run_var, dy, dgamma, err));
    LP_CUDA_CHECK(lp_cu_batchnorm_backward(STREAM(be), n, c, hw, eps, train, x, gamma, run_mean,
                                           run_var, dy, dx, dgamma, dbeta),
                  "batchnorm_backward", err);
    return LP_OK;
}

/* ---- recommender ops ------------------------------------------------------------------------ */

/* Rows per ALS chunk: the double workspace stays near 256 MiB. */
#define ALS_WS_BYTES ((size_t)256 << 20)

static lp_status cu_als_solve(const lp_backend *be, size_t n_rows, size_t n_f, size_t k,
                              size_t nnz, const int32_t *ptr, const int32_t *col, const float *w,
                              const float *f, const float *gram, float lambda, float alpha,
                              float *x, lp_err *err)
{
    const char *op = "als_solve";
    LP_BK_TRY(lp_bk_check_als(n_rows, n_f, k, nnz, ptr, col, w, f, gram, lambda, alpha, x, false,
                              err));
    if (n_rows == 0)
        return LP_OK;
    size_t per_row = (k * k + k) * sizeof(double);
    size_t chunk = ALS_WS_BYTES / per_row;
    chunk = chunk < 1 ? 1 : chunk > n_rows ? n_rows : chunk;
    /* The workspace lives in the context (a cudaMalloc / cudaFree pair per half-step would
     * synchronise the device and cost more than a small solve). */
    cuda_ctx *cx = CTX(be);
    lp_cu_head h;
    lp_status st = LP_OK;
    pthread_mutex_lock(&cx->scratch_lock);
    if (cx->als_ws_bytes < chunk * per_row) {
        cudaFree(cx->als_ws);
        cx->als_ws = NULL;
        cx->als_ws_bytes = 0;
        cudaError_t ce = cudaMalloc(&cx->als_ws, chunk * per_row);
        if (ce != cudaSuccess)
            st = lp_err_set(err, LP_EDEVICE, "cuda cudaMalloc(als_solve workspace, %zu MiB): %s",
                            (chunk * per_row) >> 20, cudaGetErrorString(ce));
        else
            cx->als_ws_bytes = chunk * per_row;
    }
    if (st == LP_OK)
        st = head_reset(be, err);
    if (st == LP_OK) {
        cudaError_t ce = lp_cu_als_solve(STREAM(be), n_rows, k, ptr, col, w, f, gram, lambda,
                                         alpha, x, cx->als_ws, chunk, cx->head);
        st = ce == cudaSuccess ? head_fetch(be, op, &h, err)
                               : lp_err_set(err, LP_EDEVICE, "cuda %s: %s", op,
                                            cudaGetErrorString(ce));
    }
    pthread_mutex_unlock(&cx->scratch_lock);
    if (st != LP_OK)
        return st;
    if (h.bad != ULLONG_MAX)
        return lp_err_set(err, LP_ENUMERIC,
                          "als_solve: row %llu gave a non-finite or non-positive-definite system",
                          h.bad);
    return LP_OK;
}

/* Samples per deterministic BPR mini-batch is the caller's `batch`; buffers live for one call. */
static lp_status cu_bpr_epoch(const lp_backend *be, size_t n_users, size_t n_items, size_t k,
                              size_t nnz, const int32_t *ptr, const int32_t *col,
                              const int32_t *row_of, uint64_t seed, uint64_t epoch,
                              size_t n_samples, float lr, float reg, size_t batch, float *xu,
                              float *yi, double *loss, size_t *used, lp_err *err)
{
    const char *op = "bpr_epoch";
    LP_BK_TRY(lp_bk_check_bpr(n_users, n_items, k, nnz, ptr, col, row_of, lr, reg, xu, yi, false,
                              err));
    LP_BK_TRY(lp_bk_need(loss, 1, op, "loss", err));
    LP_BK_TRY(lp_bk_need(used, 1, op, "used", err));
    double l = 0, c = 0;
    if (batch == 0) {
        cuda_ctx *cx = CTX(be);
        double part[LP_CU_MAX_PARTS];
        unsigned blocks = 0;
        pthread_mutex_lock(&cx->scratch_lock);
        cudaError_t ce = lp_cu_bpr_hogwild(STREAM(be), n_items, k, nnz, ptr, col, row_of, seed,
                                           epoch, n_samples, lr, reg, xu, yi, cx->part, &blocks);
        if (ce == cudaSuccess)
            ce = cudaMemcpyAsync(part, cx->part, 2 * blocks * sizeof(double),
                                 cudaMemcpyDeviceToHost, STREAM(be));
        if (ce == cudaSuccess)
            ce = cudaStreamSynchronize(STREAM(be));
        pthread_mutex_unlock(&cx->scratch_lock);
        LP_CUDA_CHECK(ce, op, err);
        for (unsigned b = 0; b < blocks; b++)
            l += part[2 * b], c += part[2 * b + 1];
    } else {
        size_t nb = (n_samples + batch - 1) / batch;
        if (batch > INT_MAX / 2)
            return lp_err_set(err, LP_EINVAL, "%s: batch %zu exceeds %d", op, batch, INT_MAX / 2);
        size_t sort_bytes = (lp_cu_bpr_sort_bytes(batch) + 255) / 256 * 256;
        size_t bytes_l = 2 * batch * sizeof(double), bytes_a = 2 * (nb ? nb : 1) * sizeof(double),
               bytes_d = batch * 3 * k * sizeof(float), bytes_k = 12 * batch * sizeof(int32_t);
        char *buf = NULL;
        /* one allocation per epoch: the radix sort's scratch first (256-byte aligned), then
         * doubles, floats, ints */
        LP_CUDA_CHECK(cudaMalloc((void **)&buf, sort_bytes + bytes_l + bytes_a + bytes_d + bytes_k),
                      "cudaMalloc(bpr_epoch batch buffers)", err);
        double *lossv = (double *)(void *)(buf + sort_bytes), *acc = lossv + 2 * batch;
        float *d = (float *)(void *)(acc + 2 * (nb ? nb : 1));
        int32_t *keys = (int32_t *)(void *)(d + batch * 3 * k);
        double *host = lp_mallocarray(2 * (nb ? nb : 1), sizeof(double));
        cudaError_t ce = host ? lp_cu_bpr_batched(STREAM(be), n_items, k, nnz, ptr, col, row_of,
                                                  seed, epoch, n_samples, lr, reg, batch, xu, yi,
                                                  d, keys, buf, sort_bytes, lossv, acc)
                              : cudaErrorMemoryAllocation;
        if (ce == cudaSuccess && nb)
            ce = cudaMemcpyAsync(host, acc, 2 * nb * sizeof(double), cudaMemcpyDeviceToHost,
                                 STREAM(be));
        if (ce == cudaSuccess)
            ce = cudaStreamSynchronize(STREAM(be));
        cudaFree(buf);
        for (size_t b = 0; ce == cudaSuccess && b < nb; b++)
            l += host[2 * b], c += host[2 * b + 1];
        free(host);
        LP_CUDA_CHECK(ce, op, err);
    }
    *loss = l;
    *used = (size_t)c;
    return LP_OK;
}

/* ---- the tables ----------------------------------------------------------------------------- */

static cuda_table_ctx g_fp32 = {&g_ctx, false}, g_tf32 = {&g_ctx, true};

#define CUDA_TABLE(ctxp)                                                                           \
    {                                                                                              \
        .name = "cuda", .host_visible = false, .ctx = (ctxp), .alloc = cu_alloc, .free = cu_free,  \
        .memset = cu_memset, .copy_h2d = cu_copy_h2d, .copy_d2h = cu_copy_d2h,                     \
        .copy_d2d = cu_copy_d2d, .sync = cu_sync, .sgemm = cu_sgemm,                               \
        .sgemm_batched = cu_sgemm_batched, .lowrank_update = cu_lowrank_update,                    \
        .add = cu_add, .sub = cu_sub, .mul = cu_mul,                                               \
        .scale = cu_scale, .axpy = cu_axpy, .fill = cu_fill, .bias_add = cu_bias_add,              \
        .bias_backward = cu_bias_backward, .act_forward = cu_act_forward,                          \
        .act_backward = cu_act_backward, .dropout_forward = cu_dropout_forward,                    \
        .dropout_backward = cu_dropout_backward, .softmax_xent = cu_softmax_xent,                  \
        .bce_logits = cu_bce_logits, .mse = cu_mse, .sum_rows = cu_sum_rows,                       \
        .sum_cols = cu_sum_cols, .sum_all = cu_sum_all, .max_abs = cu_max_abs,                     \
        .argmax_rows = cu_argmax_rows, .adamw_step = cu_adamw_step, .sgd_step = cu_sgd_step,       \
        .im2col = cu_im2col, .col2im = cu_col2im, .maxpool_forward = cu_maxpool_forward,           \
        .maxpool_backward = cu_maxpool_backward, .avgpool_forward = cu_avgpool_forward,            \
        .avgpool_backward = cu_avgpool_backward, .layernorm_forward = cu_layernorm_forward,        \
        .softmax_rows = cu_softmax_rows, .gather_rows = cu_gather_rows,                            \
        .layernorm_backward = cu_layernorm_backward,                                               \
        .softmax_rows_backward = cu_softmax_rows_backward,                                         \
        .scatter_add_rows = cu_scatter_add_rows,                                                   \
        .batchnorm_forward = cu_batchnorm_forward, .batchnorm_backward = cu_batchnorm_backward,    \
        .als_solve = cu_als_solve, .bpr_epoch = cu_bpr_epoch,                                      \
    }

static const lp_backend cuda_fp32_table = CUDA_TABLE(&g_fp32);
static const lp_backend cuda_tf32_table = CUDA_TABLE(&g_tf32);

static lp_status ensure_ctx(lp_err *err)
{
    pthread_once(&g_once, init_once);
    if (g_init_err.status != LP_OK)
        return lp_err_set(err, g_init_err.status, "%s", lp_err_text(&g_init_err));
    return LP_OK;
}

lp_status lp_backend_cuda_get(const lp_backend **be, lp_err *err)
{
    *be = NULL;
    LP_BK_TRY(ensure_ctx(err));
    const char *tf = getenv("LEPTON_CUDA_TF32");
    bool tf32 = tf && strcmp(tf, "1") == 0;
    if (tf32)
        lp_log_info("backend cuda: LEPTON_CUDA_TF32=1, matrix products in TF32");
    *be = tf32 ? &cuda_tf32_table : &cuda_fp32_table;
    return LP_OK;
}

lp_status lp_backend_cuda_tf32_get(const lp_backend **be, lp_err *err)
{
    *be = NULL;
    LP_BK_TRY(ensure_ctx(err));
    *be = &cuda_tf32_table;
    return LP_OK;
}

const char *lp_backend_cuda_device_name(void)
{
    return g_init_err.status == LP_OK && g_ctx.stream ? g_ctx.device_name : "";
}

#else
/* Built without CUDA: this file is empty by design (backend.c reports "no CUDA backend"). */
typedef int lp_backend_cuda_unused_;
#endif
