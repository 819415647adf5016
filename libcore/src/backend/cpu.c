/*
 * cpu.c - the fast CPU backend table ("cpu"): cblas_sgemm (OpenBLAS) for matrix products and
 * low-rank updates, float arithmetic written for auto-vectorisation, and OpenMP across
 * elements, rows or image planes once an op touches LP_BACKEND_OMP_MIN values. Below that the
 * `if` clause keeps the op on the calling thread: no team is forked for small inputs.
 *
 * Results agree with the ref table to float rounding (tests/numerics/test_backend_parity.c
 * states the tolerances); dropout masks agree bit for bit (same Philox counters). Sums are
 * accumulated in double per thread, so reductions depend on the thread count only in their
 * last float rounding.
 *
 * Run with OMP_WAIT_POLICY=passive (set by scripts/test and the services): libgomp reads it at
 * start-up, after which the library cannot change how idle workers wait.
 */
#include "backend/backend_impl.h"
#include "backend/cpu_vmath.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define OMP_MIN LP_BACKEND_OMP_MIN
/* Columns per task in column reductions: 64 floats = 4 cache lines read per row. */
#define COL_BLOCK 64
/* Floats per task of the vectorised GELU (cpu_vmath.c): 16 KiB in, 16 KiB out, a few
 * microseconds each; a team is forked from OMP_MIN floats (8 tasks) as for every op. */
#define VM_CHUNK 4096
/* Rows per softmax_rows task: one vectorised exp over (SOFTMAX_ROWS, d) contiguous scores. */
#define SOFTMAX_ROWS 64

/* ---- matrix products ---------------------------------------------------------------------- */

static lp_status cpu_sgemm(const lp_backend *be, bool ta, bool tb, size_t m, size_t n, size_t k,
                           float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                           float beta, float *c, size_t ldc, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_gemm("sgemm", ta, tb, m, n, k, a, lda, b, ldb, c, ldc, err));
    if (m == 0 || n == 0)
        return LP_OK;
    if (k == 0) {
        /* BLAS may not touch C for k == 0 with beta == 1; make beta semantics explicit. */
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++)
                c[i * ldc + j] = beta == 0 ? 0.0f : beta * c[i * ldc + j];
        return LP_OK;
    }
    /* beta == 0: OpenBLAS stores zeros before accumulating (its beta kernel never multiplies
     * C by 0), so NaN or Inf left in C does not leak into the product; no memset here. */
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
    return LP_OK;
}

/* The batch is cut into one contiguous chunk per OpenMP thread; each chunk is a run of
 * single-call cblas_sgemm (OpenBLAS runs them on the calling thread at these sizes, and the
 * benchmarks pin OPENBLAS_NUM_THREADS=1). In the reduction (stride_c 0) thread 0 accumulates
 * straight into C and thread t > 0 into its own (m, n) partial; the partials are then added to
 * C in thread order, so the sum's rounding depends on the thread count only. A batch whose
 * total work is under LP_BACKEND_OMP_MIN multiply-adds stays on the calling thread. */
static lp_status cpu_sgemm_batched(const lp_backend *be, bool ta, bool tb, size_t m, size_t n,
                                   size_t k, float alpha, const float *a, size_t lda, size_t sa,
                                   const float *b, size_t ldb, size_t sb, float beta, float *c,
                                   size_t ldc, size_t sc, size_t batch, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_gemm("sgemm_batched", ta, tb, m, n, k, a, lda, b, ldb, c, ldc, err));
    if (batch == 0 && sc == 0) /* C = beta C */
        return cpu_sgemm(be, ta, tb, m, n, 0, alpha, a, lda, b, ldb, beta, c, ldc, err);
    if (batch == 0 || m == 0 || n == 0)
        return LP_OK;
    size_t T = 1;
#ifdef _OPENMP
    if ((double)m * (double)n * (double)k * (double)batch >= (double)OMP_MIN * 64.0)
        T = (size_t)omp_get_max_threads();
#endif
    T = T < batch ? T : batch;
    if (T <= 1 || k == 0) {
        for (size_t i = 0; i < batch; i++)
            LP_BK_TRY(cpu_sgemm(be, ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb,
                                sc == 0 && i > 0 ? 1.0f : beta, c + i * sc, ldc, err));
        return LP_OK;
    }
    float *part = NULL; /* (T - 1, m, n) partial sums of the reduction */
    if (sc == 0) {
        part = malloc((T - 1) * m * n * sizeof *part);
        if (!part)
            return lp_err_set(err, LP_ENOMEM, "sgemm_batched: %zu partial sums of %zu x %zu",
                              T - 1, m, n);
    }
    if (beta == 0 && sc > 0)
        for (size_t i = 0; i < batch; i++)
            for (size_t r = 0; r < m; r++)
                memset(c + i * sc + r * ldc, 0, n * sizeof *c); /* BLAS: C is never read */
    else if (beta == 0)
        for (size_t r = 0; r < m; r++)
            memset(c + r * ldc, 0, n * sizeof *c);
    CBLAS_TRANSPOSE oa = ta ? CblasTrans : CblasNoTrans, ob = tb ? CblasTrans : CblasNoTrans;
#pragma omp parallel for schedule(static, 1) num_threads((int)T)
    for (size_t t = 0; t < T; t++) {
        size_t i0 = batch * t / T, i1 = batch * (t + 1) / T;
        for (size_t i = i0; i < i1; i++) {
            float *ci = c + i * sc, bi = beta;
            size_t ldci = ldc;
            if (sc == 0 && t > 0) {
                ci = part + (t - 1) * m * n, ldci = n;
                bi = i > i0 ? 1.0f : 0.0f;
                if (i == i0)
                    memset(ci, 0, m * n * sizeof *ci);
            } else if (sc == 0 && i > i0) {
                bi = 1.0f;
            }
            cblas_sgemm(CblasRowMajor, oa, ob, (int)m, (int)n, (int)k, alpha, a + i * sa, (int)lda,
                        b + i * sb, (int)ldb, bi, ci, (int)ldci);
        }
    }
    if (part) {
        /* C += partials in thread order; rows of C are independent. */
#pragma omp parallel for schedule(static) num_threads((int)T) if (m * n * (T - 1) >= OMP_MIN)
        for (size_t r = 0; r < m; r++)
            for (size_t t = 0; t + 1 < T; t++) {
                const float *pr = part + t * m * n + r * n;
                float *cr = c + r * ldc;
#pragma omp simd
                for (size_t j = 0; j < n; j++)
                    cr[j] += pr[j];
            }
        free(part);
    }
    return LP_OK;
}

static lp_status cpu_lowrank_update(const lp_backend *be, size_t m, size_t n, size_t r, float scale,
                                    const float *b, const float *a, float *w, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_gemm("lowrank_update", false, false, m, n, r, b, r ? r : 1, a, n ? n : 1,
                               w, n ? n : 1, err));
    if (m == 0 || n == 0 || r == 0)
        return LP_OK;
    /* W (m, n) = scale B (m, r) @ A (r, n) + 1 W */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)r, scale, b, (int)r,
                a, (int)n, 1.0f, w, (int)n);
    return LP_OK;
}

/* ---- elementwise -------------------------------------------------------------------------- */

#define CPU_BINARY(fname, opname, expr)                                                            \
    static lp_status fname(const lp_backend *be, size_t n, const float *x, const float *y,         \
                           float *out, lp_err *err)                                                \
    {                                                                                              \
        LP_BK_TRY(lp_bk_need(x, n, opname, "x", err));                                             \
        LP_BK_TRY(lp_bk_need(y, n, opname, "y", err));                                             \
        LP_BK_TRY(lp_bk_need(out, n, opname, "out", err));                                         \
        _Pragma("omp parallel for simd schedule(static) if(n >= OMP_MIN)") for (size_t i = 0;      \
                                                                                i < n; i++)        \
            out[i] = (expr);                                                                       \
        return LP_OK;                                                                              \
    }

CPU_BINARY(cpu_add, "add", x[i] + y[i])
CPU_BINARY(cpu_sub, "sub", x[i] - y[i])
CPU_BINARY(cpu_mul, "mul", x[i] * y[i])

static lp_status cpu_scale(const lp_backend *be, size_t n, float alpha, const float *x, float *out,
                           lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, "scale", "x", err));
    LP_BK_TRY(lp_bk_need(out, n, "scale", "out", err));
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN)
    for (size_t i = 0; i < n; i++)
        out[i] = alpha * x[i];
    return LP_OK;
}

static lp_status cpu_axpy(const lp_backend *be, size_t n, float alpha, const float *x, float *y,
                          lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, "axpy", "x", err));
    LP_BK_TRY(lp_bk_need(y, n, "axpy", "y", err));
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN)
    for (size_t i = 0; i < n; i++)
        y[i] += alpha * x[i];
    return LP_OK;
}

static lp_status cpu_fill(const lp_backend *be, size_t n, float value, float *x, lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, "fill", "x", err));
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN)
    for (size_t i = 0; i < n; i++)
        x[i] = value;
    return LP_OK;
}

/* ---- bias and column reductions ----------------------------------------------------------- */

static lp_status cpu_bias_add(const lp_backend *be, size_t n, size_t d, const float *b, float *y,
                              lp_err *err)
{
    LP_BK_TRY(lp_bk_need(b, n ? d : 0, "bias_add", "b", err));
    LP_BK_TRY(lp_bk_need(y, n * d, "bias_add", "y", err));
#pragma omp parallel for schedule(static) if (n * d >= OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        float *row = y + i * d;
#pragma omp simd
        for (size_t j = 0; j < d; j++)
            row[j] += b[j];
    }
    return LP_OK;
}

/* out[j] = (accumulate ? out[j] : 0) + sum_i x[i, j] for x (n, d). Tasks own blocks of
 * COL_BLOCK columns and walk the rows, so every read is contiguous and no partials merge. */
static void col_sums(size_t n, size_t d, const float *x, float *out, bool accumulate)
{
    size_t nblk = (d + COL_BLOCK - 1) / COL_BLOCK;
#pragma omp parallel for schedule(static) if (n * d >= OMP_MIN)
    for (size_t bk = 0; bk < nblk; bk++) {
        size_t j0 = bk * COL_BLOCK, j1 = j0 + COL_BLOCK < d ? j0 + COL_BLOCK : d;
        double acc[COL_BLOCK] = {0};
        for (size_t i = 0; i < n; i++) {
            const float *row = x + i * d;
            for (size_t j = j0; j < j1; j++)
                acc[j - j0] += row[j];
        }
        for (size_t j = j0; j < j1; j++)
            out[j] = (float)((accumulate ? (double)out[j] : 0.0) + acc[j - j0]);
    }
}

static lp_status cpu_bias_backward(const lp_backend *be, size_t n, size_t d, const float *dy,
                                   float *db, lp_err *err)
{
    LP_BK_TRY(lp_bk_need(dy, n * d, "bias_backward", "dy", err));
    LP_BK_TRY(lp_bk_need(db, d, "bias_backward", "db", err));
    col_sums(n, d, dy, db, true);
    return LP_OK;
}

/* ---- activations -------------------------------------------------------------------------- */

static inline float cpu_sigmoid(float x)
{
    if (x >= 0)
        return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

static lp_status cpu_act_forward(const lp_backend *be, lp_act_kind kind, size_t n, const float *x,
                                 float *y, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_act("act_forward", kind, err));
    LP_BK_TRY(lp_bk_need(x, n, "act_forward", "x", err));
    LP_BK_TRY(lp_bk_need(y, n, "act_forward", "y", err));
    const float s2pi = (float)LP_BK_SQRT_2_OVER_PI;
    switch (kind) {
    case LP_ACT_KIND_RELU:
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN)
        for (size_t i = 0; i < n; i++)
            y[i] = x[i] > 0 ? x[i] : 0.0f;
        break;
    case LP_ACT_KIND_TANH:
#pragma omp parallel for schedule(static) if (n >= OMP_MIN)
        for (size_t i = 0; i < n; i++)
            y[i] = tanhf(x[i]);
        break;
    case LP_ACT_KIND_SIGMOID:
#pragma omp parallel for schedule(static) if (n >= OMP_MIN)
        for (size_t i = 0; i < n; i++)
            y[i] = cpu_sigmoid(x[i]);
        break;
    case LP_ACT_KIND_GELU_ERF: {
        /* vectorised polynomial erf (cpu_vmath.c), VM_CHUNK floats per task */
        size_t nc = (n + VM_CHUNK - 1) / VM_CHUNK;
#pragma omp parallel for schedule(static) if (n >= OMP_MIN)
        for (size_t c = 0; c < nc; c++)
            lp_bk_vm_gelu(c + 1 < nc ? VM_CHUNK : n - c * VM_CHUNK, x + c * VM_CHUNK,
                          y + c * VM_CHUNK);
        break;
    }
    default: /* LP_ACT_KIND_GELU_TANH */
#pragma omp parallel for schedule(static) if (n >= OMP_MIN)
        for (size_t i = 0; i < n; i++) {
            float v = x[i];
            y[i] = 0.5f * v * (1.0f + tanhf(s2pi * (v + 0.044715f * v * v * v)));
        }
        break;
    }
    return LP_OK;
}

static lp_status cpu_act_backward(const lp_backend *be, lp_act_kind kind, size_t n,
                                  const float *fwd, const float *dy, float *dx, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_act("act_backward", kind, err));
    LP_BK_TRY(lp_bk_need(fwd, n, "act_backward", "fwd", err));
    LP_BK_TRY(lp_bk_need(dy, n, "act_backward", "dy", err));
    LP_BK_TRY(lp_bk_need(dx, n, "act_backward", "dx", err));
    const float s2pi = (float)LP_BK_SQRT_2_OVER_PI;
    switch (kind) {
    case LP_ACT_KIND_RELU: /* fwd = x */
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN)
        for (size_t i = 0; i < n; i++) {
            float g = dy[i]; /* read whatever the sign: a select, not a branch, vectorises */
            dx[i] = fwd[i] > 0 ? g : 0.0f;
        }
        break;
    case LP_ACT_KIND_TANH: /* fwd = y */
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN)
        for (size_t i = 0; i < n; i++)
            dx[i] = dy[i] * (1.0f - fwd[i] * fwd[i]);
        break;
    case LP_ACT_KIND_SIGMOID: /* fwd = y */
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN)
        for (size_t i = 0; i < n; i++)
            dx[i] = dy[i] * fwd[i] * (1.0f - fwd[i]);
        break;
    case LP_ACT_KIND_GELU_ERF: { /* fwd = x: Phi(x) + x phi(x) */
        size_t nc = (n + VM_CHUNK - 1) / VM_CHUNK;
#pragma omp parallel for schedule(static) if (n >= OMP_MIN)
        for (size_t c = 0; c < nc; c++)
            lp_bk_vm_gelu_backward(c + 1 < nc ? VM_CHUNK : n - c * VM_CHUNK, fwd + c * VM_CHUNK,
                                   dy + c * VM_CHUNK, dx + c * VM_CHUNK);
        break;
    }
    default: /* LP_ACT_KIND_GELU_TANH, fwd = x */
#pragma omp parallel for schedule(static) if (n >= OMP_MIN)
        for (size_t i = 0; i < n; i++) {
            float v = fwd[i];
            float t = tanhf(s2pi * (v + 0.044715f * v * v * v));
            float du = s2pi * (1.0f + 3 * 0.044715f * v * v);
            dx[i] = dy[i] * (0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * du);
        }
        break;
    }
    return LP_OK;
}

/* ---- dropout ------------------------------------------------------------------------------ */

static lp_status cpu_dropout(const char *op, size_t n, float p, uint64_t seed, uint64_t step,
                             const float *x, float *y, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_dropout(op, p, err));
    LP_BK_TRY(lp_bk_need(x, n, op, "input", err));
    LP_BK_TRY(lp_bk_need(y, n, op, "output", err));
    float scale = 1.0f / (1.0f - p);
    uint64_t thr = lp_bk_keep_threshold(p);
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    size_t nblk = (n + 3) / 4;
    /* One Philox call gives the four words of elements 4 blk .. 4 blk + 3 (lp_dropout_keep). */
#pragma omp parallel for schedule(static) if (n >= OMP_MIN)
    for (size_t blk = 0; blk < nblk; blk++) {
        uint32_t ctr[4] = {(uint32_t)blk, (uint32_t)((uint64_t)blk >> 32), (uint32_t)step,
                           (uint32_t)(step >> 32)},
                 w[4];
        lp_philox4x32(ctr, key, w);
        for (size_t k = 0; k < 4 && 4 * blk + k < n; k++) {
            size_t i = 4 * blk + k;
            y[i] = w[k] < thr ? x[i] * scale : 0.0f;
        }
    }
    return LP_OK;
}

static lp_status cpu_dropout_forward(const lp_backend *be, size_t n, float p, uint64_t seed,
                                     uint64_t step, const float *x, float *y, lp_err *err)
{
    return cpu_dropout("dropout_forward", n, p, seed, step, x, y, err);
}

static lp_status cpu_dropout_backward(const lp_backend *be, size_t n, float p, uint64_t seed,
                                      uint64_t step, const float *dy, float *dx, lp_err *err)
{
    return cpu_dropout("dropout_backward", n, p, seed, step, dy, dx, err);
}

/* ---- losses ------------------------------------------------------------------------------- */

static lp_status cpu_softmax_xent(const lp_backend *be, size_t n, size_t c, const float *logits,
                                  const int32_t *targets, const float *class_w, double *loss,
                                  float *dlogits, lp_err *err)
{
    const char *op = "softmax_xent";
    if (n == 0 || c == 0)
        return lp_err_set(err, LP_EINVAL, "%s: empty logits (%zu, %zu)", op, n, c);
    LP_BK_TRY(lp_bk_need(logits, n * c, op, "logits", err));
    LP_BK_TRY(lp_bk_need(targets, n, op, "targets", err));
    LP_BK_TRY(lp_bk_need(loss, 1, op, "loss", err));
    LP_BK_TRY(lp_bk_check_targets(op, n, c, targets, err));
    double wsum = 0, total = 0;
    for (size_t i = 0; i < n; i++)
        wsum += class_w ? class_w[targets[i]] : 1.0;
    float inv_wsum = (float)(1.0 / wsum);
#pragma omp parallel for schedule(static) reduction(+ : total) if (n * c >= OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        const float *z = logits + i * c; /* (c) */
        size_t t = (size_t)targets[i];
        float w = class_w ? class_w[t] : 1.0f;
        /* Subtract the row max so expf never overflows; sum the exps in double. */
        float mx = z[0];
        for (size_t j = 1; j < c; j++)
            mx = z[j] > mx ? z[j] : mx;
        double s = 0;
        for (size_t j = 0; j < c; j++)
            s += expf(z[j] - mx);
        float lse = mx + (float)log(s);
        total += (double)w * ((double)lse - z[t]);
        if (dlogits) {
            float *g = dlogits + i * c, gw = w * inv_wsum;
            for (size_t j = 0; j < c; j++)
                g[j] = gw * expf(z[j] - lse);
            g[t] -= gw;
        }
    }
    *loss = total / wsum;
    return lp_bk_check_loss(op, *loss, err);
}

static lp_status cpu_bce_logits(const lp_backend *be, size_t n, const float *z, const float *y,
                                double *loss, float *dz, lp_err *err)
{
    const char *op = "bce_logits";
    if (n == 0)
        return lp_err_set(err, LP_EINVAL, "%s: no values", op);
    LP_BK_TRY(lp_bk_need(z, n, op, "z", err));
    LP_BK_TRY(lp_bk_need(y, n, op, "y", err));
    LP_BK_TRY(lp_bk_need(loss, 1, op, "loss", err));
    double total = 0;
    float inv_n = (float)(1.0 / (double)n);
#pragma omp parallel for schedule(static) reduction(+ : total) if (n >= OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        float zi = z[i], yi = y[i];
        total += (double)((zi > 0 ? zi : 0.0f) - zi * yi + log1pf(expf(-fabsf(zi))));
        if (dz)
            dz[i] = (cpu_sigmoid(zi) - yi) * inv_n;
    }
    *loss = total / (double)n;
    return lp_bk_check_loss(op, *loss, err);
}

static lp_status cpu_mse(const lp_backend *be, size_t n, const float *p, const float *y,
                         double *loss, float *dp, lp_err *err)
{
    const char *op = "mse";
    if (n == 0)
        return lp_err_set(err, LP_EINVAL, "%s: no values", op);
    LP_BK_TRY(lp_bk_need(p, n, op, "p", err));
    LP_BK_TRY(lp_bk_need(y, n, op, "y", err));
    LP_BK_TRY(lp_bk_need(loss, 1, op, "loss", err));
    double total = 0;
    float two_n = (float)(2.0 / (double)n);
#pragma omp parallel for simd schedule(static) reduction(+ : total) if (n >= OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        float r = p[i] - y[i];
        total += (double)r * r;
        if (dp)
            dp[i] = two_n * r;
    }
    *loss = total / (double)n;
    return lp_bk_check_loss(op, *loss, err);
}

/* ---- reductions --------------------------------------------------------------------------- */

static lp_status cpu_sum_rows(const lp_backend *be, size_t n, size_t d, const float *x, float *out,
                              lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n * d, "sum_rows", "x", err));
    LP_BK_TRY(lp_bk_need(out, d, "sum_rows", "out", err));
    col_sums(n, d, x, out, false);
    return LP_OK;
}

static lp_status cpu_sum_cols(const lp_backend *be, size_t n, size_t d, const float *x, float *out,
                              lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n * d, "sum_cols", "x", err));
    LP_BK_TRY(lp_bk_need(out, n, "sum_cols", "out", err));
#pragma omp parallel for schedule(static) if (n * d >= OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        const float *row = x + i * d;
        double s = 0;
#pragma omp simd reduction(+ : s)
        for (size_t j = 0; j < d; j++)
            s += row[j];
        out[i] = (float)s;
    }
    return LP_OK;
}

static lp_status cpu_sum_all(const lp_backend *be, size_t n, const float *x, float *out,
                             lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, "sum_all", "x", err));
    LP_BK_TRY(lp_bk_need(out, 1, "sum_all", "out", err));
    double s = 0;
#pragma omp parallel for simd schedule(static) reduction(+ : s) if (n >= OMP_MIN)
    for (size_t i = 0; i < n; i++)
        s += x[i];
    out[0] = (float)s;
    return LP_OK;
}

static lp_status cpu_max_abs(const lp_backend *be, size_t n, const float *x, float *out,
                             lp_err *err)
{
    LP_BK_TRY(lp_bk_need(x, n, "max_abs", "x", err));
    LP_BK_TRY(lp_bk_need(out, 1, "max_abs", "out", err));
    float m = 0;
    int nan_seen = 0;
    /* a != a is the NaN test in a form the simd loop keeps vectorised (the nn trainer checks
     * its whole gradient block with this every step) */
#pragma omp parallel for simd schedule(static) reduction(max : m) reduction(| : nan_seen)          \
    if (n >= OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        nan_seen |= a != a;
        m = a > m ? a : m;
    }
    out[0] = nan_seen ? NAN : m;
    return LP_OK;
}

static lp_status cpu_argmax_rows(const lp_backend *be, size_t n, size_t d, const float *x,
                                 int32_t *out, lp_err *err)
{
    if (d == 0 || d > INT32_MAX)
        return lp_err_set(err, LP_EINVAL, "argmax_rows: d is %zu; expected 1..2^31-1", d);
    LP_BK_TRY(lp_bk_need(x, n * d, "argmax_rows", "x", err));
    LP_BK_TRY(lp_bk_need(out, n, "argmax_rows", "out", err));
#pragma omp parallel for schedule(static) if (n * d >= OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        const float *r = x + i * d;
        size_t best = 0;
        float bv = r[0];
        for (size_t j = 1; j < d && bv == bv; j++) /* bv == bv: stop at the first NaN */
            if (r[j] > bv || r[j] != r[j]) {
                best = j;
                bv = r[j];
            }
        out[i] = (int32_t)best;
    }
    return LP_OK;
}

/* ---- optimizers --------------------------------------------------------------------------- */

static lp_status cpu_adamw_step(const lp_backend *be, size_t n, const lp_adamw_opts *o, uint64_t t,
                                float *params, const float *grads, float *m, float *v, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_adamw(n, o, t, params, grads, m, v, err));
    /* Per-step scalars in double once (as PyTorch does on the host), the loop in float. */
    const float b1 = (float)o->beta1, c1 = (float)(1.0 - o->beta1);
    const float b2 = (float)o->beta2, c2 = (float)(1.0 - o->beta2), eps = (float)o->eps;
    const float decay = (float)(1.0 - o->lr * o->weight_decay);
    const float step_size = (float)(o->lr / (1.0 - pow(o->beta1, (double)t)));
    const float inv_sqrt_bc2 = (float)(1.0 / sqrt(1.0 - pow(o->beta2, (double)t)));
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        float g = grads[i];
        float mi = b1 * m[i] + c1 * g;
        float vi = b2 * v[i] + c2 * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] = params[i] * decay - step_size * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
    return LP_OK;
}

static lp_status cpu_sgd_step(const lp_backend *be, size_t n, const lp_sgd_opts *o, float *params,
                              const float *grads, float *buf, lp_err *err)
{
    LP_BK_TRY(lp_sgd_opts_check(o, err));
    LP_BK_TRY(lp_bk_need(params, n, "sgd_step", "params", err));
    LP_BK_TRY(lp_bk_need(grads, n, "sgd_step", "grads", err));
    const float lr = (float)o->lr, wd = (float)o->weight_decay, mu = (float)o->momentum;
    if (mu > 0) {
        LP_BK_TRY(lp_bk_need(buf, n, "sgd_step", "buf", err));
        const bool nesterov = o->nesterov;
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN)
        for (size_t i = 0; i < n; i++) {
            float g = grads[i] + wd * params[i];
            float b = mu * buf[i] + g;
            buf[i] = b;
            params[i] -= lr * (nesterov ? g + mu * b : b);
        }
    } else {
#pragma omp parallel for simd schedule(static) if (n >= OMP_MIN)
        for (size_t i = 0; i < n; i++)
            params[i] -= lr * (grads[i] + wd * params[i]);
    }
    return LP_OK;
}

/* ---- im2col / col2im ---------------------------------------------------------------------- */

/* Valid output range [lo, hi) along one axis for kernel offset k: the o with
 * 0 <= o*s + k - pad < size. Lets the inner loops run without bounds tests. */
static void valid_range(size_t k, size_t pad, size_t s, size_t size, size_t out, size_t *lo,
                        size_t *hi)
{
    size_t a = k >= pad ? 0 : (pad - k + s - 1) / s; /* first o with o*s + k >= pad */
    size_t b = 0;                                    /* first o with o*s + k >= pad + size */
    if (pad + size > k)
        b = (pad + size - k + s - 1) / s;
    *lo = a < out ? a : out;
    *hi = b < out ? b : out;
    if (*hi < *lo)
        *hi = *lo;
}

static lp_status cpu_im2col(const lp_backend *be, const lp_conv2d_geom *g, const float *x,
                            float *col, lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_conv2d_geom_check(g, "im2col", &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(x, 1, "im2col", "x", err));
    LP_BK_TRY(lp_bk_need(col, 1, "im2col", "col", err));
    size_t planes = g->n * g->c, kk = g->kh * g->kw, ohw = oh * ow;
    /* Plane p = (b, ci) writes rows ci*kk .. ci*kk + kk - 1 of image b: disjoint per plane. */
#pragma omp parallel for schedule(static) if (planes * kk * ohw >= OMP_MIN)
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * g->h * g->w; /* (h, w) */
        float *cp = col + p * kk * ohw;        /* (kk, oh*ow) */
        for (size_t ki = 0; ki < g->kh; ki++) {
            size_t y0, y1;
            valid_range(ki, g->pad_h, g->stride_h, g->h, oh, &y0, &y1);
            for (size_t kj = 0; kj < g->kw; kj++) {
                size_t x0, x1;
                valid_range(kj, g->pad_w, g->stride_w, g->w, ow, &x0, &x1);
                float *row = cp + (ki * g->kw + kj) * ohw;
                memset(row, 0, ohw * sizeof *row);
                for (size_t oy = y0; oy < y1; oy++) {
                    const float *src = xp + (oy * g->stride_h + ki - g->pad_h) * g->w;
                    for (size_t ox = x0; ox < x1; ox++)
                        row[oy * ow + ox] = src[ox * g->stride_w + kj - g->pad_w];
                }
            }
        }
    }
    return LP_OK;
}

static lp_status cpu_col2im(const lp_backend *be, const lp_conv2d_geom *g, const float *col,
                            float *x, lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_conv2d_geom_check(g, "col2im", &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(col, 1, "col2im", "col", err));
    LP_BK_TRY(lp_bk_need(x, 1, "col2im", "x", err));
    size_t planes = g->n * g->c, kk = g->kh * g->kw, ohw = oh * ow;
    /* Each plane gathers only from its own col rows, so planes run in parallel race-free. */
#pragma omp parallel for schedule(static) if (planes * kk * ohw >= OMP_MIN)
    for (size_t p = 0; p < planes; p++) {
        float *xp = x + p * g->h * g->w;
        const float *cp = col + p * kk * ohw;
        memset(xp, 0, g->h * g->w * sizeof *xp);
        for (size_t ki = 0; ki < g->kh; ki++) {
            size_t y0, y1;
            valid_range(ki, g->pad_h, g->stride_h, g->h, oh, &y0, &y1);
            for (size_t kj = 0; kj < g->kw; kj++) {
                size_t x0, x1;
                valid_range(kj, g->pad_w, g->stride_w, g->w, ow, &x0, &x1);
                const float *row = cp + (ki * g->kw + kj) * ohw;
                for (size_t oy = y0; oy < y1; oy++) {
                    float *dst = xp + (oy * g->stride_h + ki - g->pad_h) * g->w;
                    for (size_t ox = x0; ox < x1; ox++)
                        dst[ox * g->stride_w + kj - g->pad_w] += row[oy * ow + ox];
                }
            }
        }
    }
    return LP_OK;
}

/* ---- pooling ------------------------------------------------------------------------------ */

/* Window of output (oy, ox) clipped to the image: rows [*ys, *ye), cols [*xs, *xe). */
static void pool_window(const lp_conv2d_geom *g, size_t oy, size_t ox, size_t *ys, size_t *ye,
                        size_t *xs, size_t *xe)
{
    size_t y = oy * g->stride_h, xx = ox * g->stride_w; /* in padded coordinates */
    *ys = y > g->pad_h ? y - g->pad_h : 0;
    *ye = y + g->kh > g->pad_h ? y + g->kh - g->pad_h : 0;
    *ye = *ye < g->h ? *ye : g->h;
    *xs = xx > g->pad_w ? xx - g->pad_w : 0;
    *xe = xx + g->kw > g->pad_w ? xx + g->kw - g->pad_w : 0;
    *xe = *xe < g->w ? *xe : g->w;
}

static lp_status cpu_maxpool_forward(const lp_backend *be, const lp_conv2d_geom *g, const float *x,
                                     float *y, int32_t *argmax, lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_bk_check_pool("maxpool_forward", g, &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(x, 1, "maxpool_forward", "x", err));
    LP_BK_TRY(lp_bk_need(y, 1, "maxpool_forward", "y", err));
    LP_BK_TRY(lp_bk_need(argmax, 1, "maxpool_forward", "argmax", err));
    size_t planes = g->n * g->c;
    if (g->pad_h == 0 && g->pad_w == 0) {
        /* No padding: every window lies inside the plane, so the loops need no clipping, and
         * the scan is branch-free (selects, not jumps: the winner of random data is
         * unpredictable). Same order (row-major in the window) and rules as below: a value
         * wins when it is greater, or NaN while the best is not; the first NaN sticks. */
        size_t w = g->w, kh = g->kh, kw = g->kw, sh = g->stride_h, sw = g->stride_w;
#pragma omp parallel for schedule(static) if (planes * oh * ow * kh * kw >= OMP_MIN)
        for (size_t p = 0; p < planes; p++) {
            const float *xp = x + p * g->h * w;
            float *yp = y + p * oh * ow;
            int32_t *ap = argmax + p * oh * ow;
            for (size_t oy = 0; oy < oh; oy++) {
                if (kh == 2 && kw == 2 && sw == 2) {
                    const float *r0 = xp + oy * sh * w, *r1 = r0 + w;
                    int32_t base = (int32_t)(oy * sh * w);
                    for (size_t ox = 0; ox < ow; ox++) {
                        float v1 = r0[2 * ox + 1], v2 = r1[2 * ox], v3 = r1[2 * ox + 1];
                        float best = r0[2 * ox];
                        int32_t bi = 0;
                        bool t = v1 > best || (v1 != v1 && best == best);
                        best = t ? v1 : best, bi = t ? 1 : bi;
                        t = v2 > best || (v2 != v2 && best == best);
                        best = t ? v2 : best, bi = t ? (int32_t)w : bi;
                        t = v3 > best || (v3 != v3 && best == best);
                        best = t ? v3 : best, bi = t ? (int32_t)w + 1 : bi;
                        yp[oy * ow + ox] = best;
                        ap[oy * ow + ox] = base + (int32_t)(2 * ox) + bi;
                    }
                    continue;
                }
                for (size_t ox = 0; ox < ow; ox++) {
                    size_t bi = oy * sh * w + ox * sw;
                    float best = xp[bi];
                    for (size_t i = 0; i < kh; i++) {
                        size_t r = (oy * sh + i) * w + ox * sw;
                        for (size_t j = 0; j < kw; j++) {
                            float v = xp[r + j];
                            bool t = v > best || (v != v && best == best);
                            best = t ? v : best, bi = t ? r + j : bi;
                        }
                    }
                    yp[oy * ow + ox] = best;
                    ap[oy * ow + ox] = (int32_t)bi;
                }
            }
        }
        return LP_OK;
    }
#pragma omp parallel for schedule(static) if (planes * oh * ow * g->kh * g->kw >= OMP_MIN)
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * g->h * g->w;
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++) {
                size_t ys, ye, xs, xe;
                pool_window(g, oy, ox, &ys, &ye, &xs, &xe);
                /* 2 pad <= k guarantees a non-empty window. */
                size_t bi = ys * g->w + xs;
                float best = xp[bi];
                for (size_t iy = ys; iy < ye && best == best; iy++)
                    for (size_t ix = xs; ix < xe; ix++) {
                        float v = xp[iy * g->w + ix];
                        if (v > best || v != v) {
                            best = v;
                            bi = iy * g->w + ix;
                            if (v != v)
                                break;
                        }
                    }
                y[(p * oh + oy) * ow + ox] = best;
                argmax[(p * oh + oy) * ow + ox] = (int32_t)bi;
            }
    }
    return LP_OK;
}

static lp_status cpu_maxpool_backward(const lp_backend *be, const lp_conv2d_geom *g,
                                      const float *dy, const int32_t *argmax, float *dx,
                                      lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_bk_check_pool("maxpool_backward", g, &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(dy, 1, "maxpool_backward", "dy", err));
    LP_BK_TRY(lp_bk_need(argmax, 1, "maxpool_backward", "argmax", err));
    LP_BK_TRY(lp_bk_need(dx, 1, "maxpool_backward", "dx", err));
    size_t planes = g->n * g->c, hw = g->h * g->w, ohw = oh * ow;
    for (size_t i = 0; i < planes * ohw; i++)
        if (argmax[i] < 0 || (size_t)argmax[i] >= hw)
            return lp_bk_bad_argmax("maxpool_backward", argmax[i], i / ohw, hw, err);
#pragma omp parallel for schedule(static) if (planes * hw >= OMP_MIN)
    for (size_t p = 0; p < planes; p++) {
        float *dxp = dx + p * hw;
        memset(dxp, 0, hw * sizeof *dxp);
        for (size_t o = 0; o < ohw; o++)
            dxp[argmax[p * ohw + o]] += dy[p * ohw + o];
    }
    return LP_OK;
}

static lp_status cpu_avgpool_forward(const lp_backend *be, const lp_conv2d_geom *g, const float *x,
                                     float *y, lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_bk_check_pool("avgpool_forward", g, &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(x, 1, "avgpool_forward", "x", err));
    LP_BK_TRY(lp_bk_need(y, 1, "avgpool_forward", "y", err));
    size_t planes = g->n * g->c;
    float inv = 1.0f / (float)(g->kh * g->kw);
#pragma omp parallel for schedule(static) if (planes * oh * ow * g->kh * g->kw >= OMP_MIN)
    for (size_t p = 0; p < planes; p++) {
        const float *xp = x + p * g->h * g->w;
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++) {
                size_t ys, ye, xs, xe;
                pool_window(g, oy, ox, &ys, &ye, &xs, &xe);
                float s = 0;
                for (size_t iy = ys; iy < ye; iy++)
                    for (size_t ix = xs; ix < xe; ix++)
                        s += xp[iy * g->w + ix];
                y[(p * oh + oy) * ow + ox] = s * inv;
            }
    }
    return LP_OK;
}

static lp_status cpu_avgpool_backward(const lp_backend *be, const lp_conv2d_geom *g,
                                      const float *dy, float *dx, lp_err *err)
{
    size_t oh, ow;
    LP_BK_TRY(lp_bk_check_pool("avgpool_backward", g, &oh, &ow, err));
    LP_BK_TRY(lp_bk_need(dy, 1, "avgpool_backward", "dy", err));
    LP_BK_TRY(lp_bk_need(dx, 1, "avgpool_backward", "dx", err));
    size_t planes = g->n * g->c, hw = g->h * g->w;
    float inv = 1.0f / (float)(g->kh * g->kw);
#pragma omp parallel for schedule(static) if (planes * oh * ow * g->kh * g->kw >= OMP_MIN)
    for (size_t p = 0; p < planes; p++) {
        float *dxp = dx + p * hw;
        memset(dxp, 0, hw * sizeof *dxp);
        for (size_t oy = 0; oy < oh; oy++)
            for (size_t ox = 0; ox < ow; ox++) {
                size_t ys, ye, xs, xe;
                pool_window(g, oy, ox, &ys, &ye, &xs, &xe);
                float share = dy[(p * oh + oy) * ow + ox] * inv;
                for (size_t iy = ys; iy < ye; iy++)
                    for (size_t ix = xs; ix < xe; ix++)
                        dxp[iy * g->w + ix] += share;
            }
    }
    return LP_OK;
}

/* ---- the table ---------------------------------------------------------------------------- */

/* ---- transformer ops ---------------------------------------------------------------------- */

static lp_status cpu_layernorm_forward(const lp_backend *be, size_t n, size_t d, float eps,
                                       const float *x, const float *gamma, const float *beta,
                                       float *y, float *mean, float *rstd, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_layernorm(n, d, eps, x, gamma, beta, y, err));
#pragma omp parallel for schedule(static) if (n * d >= OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d; /* (d) */
        float *yi = y + i * d;
        /* Two passes in double: the one-pass E[x^2] - E[x]^2 cancels badly when |mean| >> std. */
        double mu = 0, var = 0;
        for (size_t j = 0; j < d; j++)
            mu += xi[j];
        mu /= (double)d;
        for (size_t j = 0; j < d; j++) {
            double c = xi[j] - mu;
            var += c * c;
        }
        float rs = (float)(1.0 / sqrt(var / (double)d + (double)eps)), fmu = (float)mu;
        if (mean)
            mean[i] = fmu;
        if (rstd)
            rstd[i] = rs;
#pragma omp simd
        for (size_t j = 0; j < d; j++)
            yi[j] = (xi[j] - fmu) * rs * gamma[j] + beta[j];
    }
    return LP_OK;
}

/* Per block of SOFTMAX_ROWS rows: row maxima and shifted scores (masked entries -inf), one
 * vectorised exp over the block's contiguous (rows, d) span (short attention rows vectorise
 * poorly one by one), then the row sums in double and the scaling. */
static lp_status cpu_softmax_rows(const lp_backend *be, size_t n, size_t d, size_t group,
                                  const float *mask, const float *x, float *y, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_softmax_rows(n, d, group, x, y, err));
    size_t nb = (n + SOFTMAX_ROWS - 1) / SOFTMAX_ROWS;
#pragma omp parallel for schedule(static) if (n * d >= OMP_MIN)
    for (size_t bk = 0; bk < nb; bk++) {
        size_t i0 = bk * SOFTMAX_ROWS, i1 = i0 + SOFTMAX_ROWS < n ? i0 + SOFTMAX_ROWS : n;
        for (size_t i = i0; i < i1; i++) {
            const float *m = mask ? mask + (i / group) * d : NULL; /* (d) */
            const float *xi = x + i * d;
            float *yi = y + i * d;
            float mx = -INFINITY;
            for (size_t j = 0; j < d; j++)
                if ((!m || m[j] != 0) && xi[j] > mx)
                    mx = xi[j];
            if (m) {
#pragma omp simd
                for (size_t j = 0; j < d; j++)
                    yi[j] = m[j] != 0 ? xi[j] - mx : -INFINITY;
            } else {
#pragma omp simd
                for (size_t j = 0; j < d; j++)
                    yi[j] = xi[j] - mx;
            }
        }
        lp_bk_vm_exp((i1 - i0) * d, y + i0 * d, y + i0 * d);
        for (size_t i = i0; i < i1; i++) {
            float *yi = y + i * d;
            double sum = 0;
#pragma omp simd reduction(+ : sum)
            for (size_t j = 0; j < d; j++)
                sum += yi[j];
            float inv = sum > 0 ? (float)(1.0 / sum) : 0.0f;
#pragma omp simd
            for (size_t j = 0; j < d; j++)
                yi[j] *= inv;
        }
    }
    return LP_OK;
}

static lp_status cpu_gather_rows(const lp_backend *be, size_t n, size_t d, size_t rows,
                                 const float *table, const int32_t *idx, float *out, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_gather(n, d, rows, table, idx, out, true, err));
#pragma omp parallel for schedule(static) if (n * d >= OMP_MIN)
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * d, table + (size_t)idx[i] * d, d * sizeof *out);
    return LP_OK;
}

/* Rows in parallel for dx; dgamma/dbeta in a column-parallel pass FIRST (each thread owns
 * columns, so the accumulation has no race and a fixed row order), since dx may overwrite dy. */
static lp_status cpu_layernorm_backward(const lp_backend *be, size_t n, size_t d, const float *x,
                                        const float *gamma, const float *mean, const float *rstd,
                                        const float *dy, float *dx, float *dgamma, float *dbeta,
                                        lp_err *err)
{
    LP_BK_TRY(lp_bk_check_layernorm_bwd(n, d, x, gamma, mean, rstd, dy, err));
    if (dgamma || dbeta) {
#pragma omp parallel for schedule(static) if (n * d >= OMP_MIN)
        for (size_t j = 0; j < d; j++) {
            double sg = 0, sb = 0;
            for (size_t i = 0; i < n; i++) {
                sg += (double)dy[i * d + j] * ((x[i * d + j] - mean[i]) * rstd[i]);
                sb += dy[i * d + j];
            }
            if (dgamma)
                dgamma[j] += (float)sg;
            if (dbeta)
                dbeta[j] += (float)sb;
        }
    }
    if (!dx)
        return LP_OK;
#pragma omp parallel for schedule(static) if (n * d >= OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d, *gi = dy + i * d; /* (d) */
        float mu = mean[i], rs = rstd[i];
        double sg = 0, sgx = 0;
        for (size_t j = 0; j < d; j++) {
            float g = gamma[j] * gi[j];
            sg += g;
            sgx += (double)g * ((xi[j] - mu) * rs);
        }
        float a = (float)(sg / (double)d), c = (float)(sgx / (double)d);
        float *di = dx + i * d;
#pragma omp simd
        for (size_t j = 0; j < d; j++)
            di[j] = rs * (gamma[j] * gi[j] - a - (xi[j] - mu) * rs * c);
    }
    return LP_OK;
}

static lp_status cpu_softmax_rows_backward(const lp_backend *be, size_t n, size_t d,
                                           const float *y, const float *dy, float *dx, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_softmax_bwd(n, d, y, dy, dx, err));
#pragma omp parallel for schedule(static) if (n * d >= OMP_MIN)
    for (size_t i = 0; i < n; i++) {
        const float *yi = y + i * d, *gi = dy + i * d; /* (d) */
        double s = 0;
        for (size_t j = 0; j < d; j++)
            s += (double)yi[j] * gi[j];
        float fs = (float)s;
        float *di = dx + i * d;
#pragma omp simd
        for (size_t j = 0; j < d; j++)
            di[j] = yi[j] * (gi[j] - fs);
    }
    return LP_OK;
}

/* Serial over rows (repeated indices must add in order); the inner row add vectorises. */
static lp_status cpu_scatter_add_rows(const lp_backend *be, size_t n, size_t d, size_t rows,
                                      const float *dy, const int32_t *idx, float *dtable,
                                      lp_err *err)
{
    LP_BK_TRY(lp_bk_check_scatter(n, d, rows, dy, idx, dtable, true, err));
    for (size_t i = 0; i < n; i++) {
        float *t = dtable + (size_t)idx[i] * d;
        const float *g = dy + i * d;
#pragma omp simd
        for (size_t j = 0; j < d; j++)
            t[j] += g[j];
    }
    return LP_OK;
}

/* ---- batch normalization (NCHW channels) ------------------------------------------------ */

/* Channel ch over n planes of hw contiguous floats: plane b starts at (b c + ch) hw. One thread
 * per channel (channels are independent); within a channel the sums run in plane order. */
static void cpu_bn_stats(size_t n, size_t c, size_t hw, size_t ch, float eps, bool train,
                         const float *x, const float *rm, const float *rv, double *mu,
                         double *inv, double *var)
{
    if (train) {
        double s = 0, q = 0, N = (double)(n * hw);
        for (size_t b = 0; b < n; b++) {
            const float *xp = x + (b * c + ch) * hw; /* (hw) */
            for (size_t p = 0; p < hw; p++)
                s += xp[p];
        }
        *mu = s / N;
        for (size_t b = 0; b < n; b++) {
            const float *xp = x + (b * c + ch) * hw;
            for (size_t p = 0; p < hw; p++)
                q += (xp[p] - *mu) * (xp[p] - *mu);
        }
        *var = q / N;
    } else {
        *mu = rm[ch];
        *var = rv[ch];
    }
    *inv = 1.0 / sqrt(*var + (double)eps);
}

static lp_status cpu_batchnorm_forward(const lp_backend *be, size_t n, size_t c, size_t hw,
                                       float eps, float momentum, bool train, const float *x,
                                       const float *gamma, const float *beta, float *run_mean,
                                       float *run_var, float *y, lp_err *err)
{
    LP_BK_TRY(lp_bk_check_batchnorm("batchnorm_forward", n, c, hw, eps, momentum, train, x, gamma,
                                    beta, run_mean, run_var, y, NULL, err));
    double N = (double)(n * hw);
#pragma omp parallel for schedule(static) if (n * c * hw >= OMP_MIN)
    for (size_t ch = 0; ch < c; ch++) {
        double mu, inv, var;
        cpu_bn_stats(n, c, hw, ch, eps, train, x, run_mean, run_var, &mu, &inv, &var);
        float a = (float)(inv * gamma[ch]), fmu = (float)mu, sh = beta[ch];
        for (size_t b = 0; b < n; b++) {
            const float *xp = x + (b * c + ch) * hw;
            float *yp = y + (b * c + ch) * hw;
#pragma omp simd
            for (size_t p = 0; p < hw; p++)
                yp[p] = (xp[p] - fmu) * a + sh;
        }
        if (train) {
            double unb = N > 1 ? var * N / (N - 1) : var;
            run_mean[ch] = (float)((1.0 - momentum) * run_mean[ch] + momentum * mu);
            run_var[ch] = (float)((1.0 - momentum) * run_var[ch] + momentum * unb);
        }
    }
    return LP_OK;
}

static lp_status cpu_batchnorm_backward(const lp_backend *be, size_t n, size_t c, size_t hw,
                                        float eps, bool train, const float *x, const float *gamma,
                                        const float *run_mean, const float *run_var,
                                        const float *dy, float *dx, float *dgamma, float *dbeta,
                                        lp_err *err)
{
    LP_BK_TRY(lp_bk_check_batchnorm("batchnorm_backward", n, c, hw, eps, 0, train, x, gamma,
                                    dbeta, run_mean, run_var, dy, dgamma, err));
    double N = (double)(n * hw);
#pragma omp parallel for schedule(static) if (n * c * hw >= OMP_MIN)
    for (size_t ch = 0; ch < c; ch++) {
        double mu, inv, var, sb = 0, sg = 0;
        cpu_bn_stats(n, c, hw, ch, eps, train, x, run_mean, run_var, &mu, &inv, &var);
        for (size_t b = 0; b < n; b++) {
            const float *xp = x + (b * c + ch) * hw, *gp = dy + (b * c + ch) * hw;
            for (size_t p = 0; p < hw; p++) {
                sb += gp[p];
                sg += gp[p] * (xp[p] - mu);
            }
        }
        sg *= inv;
        dbeta[ch] = (float)sb;
        dgamma[ch] = (float)sg;
        if (!dx)
            continue;
        /* train: dx = k1 dy + k2 (x - mu) + k0, the per-channel constants folded in double
         * (x is centered first so k0 does not cancel against k2 mu) */
        double a = gamma[ch] * inv;
        float k1 = (float)a, k2 = (float)(train ? -a * sg * inv / N : 0.0),
              k0 = (float)(train ? -a * sb / N : 0.0), fmu = (float)mu;
        for (size_t b = 0; b < n; b++) {
            const float *xp = x + (b * c + ch) * hw, *gp = dy + (b * c + ch) * hw;
            float *dp = dx + (b * c + ch) * hw;
#pragma omp simd
            for (size_t p = 0; p < hw; p++)
                dp[p] = k1 * gp[p] + k2 * (xp[p] - fmu) + k0;
        }
    }
    return LP_OK;
}

/* ---- recommender ops (host_mf.c; ALS rows in parallel) ------------------------------------- */

static lp_status cpu_als_solve(const lp_backend *be, size_t n_rows, size_t n_f, size_t k,
                              size_t nnz, const int32_t *ptr, const int32_t *col, const float *w,
                              const float *f, const float *gram, float lambda, float alpha,
                              float *x, lp_err *err)
{
    return lp_bk_host_als_solve(n_rows, n_f, k, nnz, ptr, col, w, f, gram, lambda, alpha, x, true,
                                err);
}

static lp_status cpu_bpr_epoch(const lp_backend *be, size_t n_users, size_t n_items, size_t k,
                              size_t nnz, const int32_t *ptr, const int32_t *col,
                              const int32_t *row_of, uint64_t seed, uint64_t epoch,
                              size_t n_samples, float lr, float reg, size_t batch, float *xu,
                              float *yi, double *loss, size_t *used, lp_err *err)
{
    return lp_bk_host_bpr_epoch(n_users, n_items, k, nnz, ptr, col, row_of, seed, epoch,
                                n_samples, lr, reg, batch, xu, yi, loss, used, err);
}

static const lp_backend cpu_table = {
    .name = "cpu",
    .host_visible = true,
    .ctx = NULL,
    .alloc = lp_bk_host_alloc,
    .free = lp_bk_host_free,
    .memset = lp_bk_host_memset,
    .copy_h2d = lp_bk_host_copy,
    .copy_d2h = lp_bk_host_copy,
    .copy_d2d = lp_bk_host_copy,
    .sync = lp_bk_host_sync,
    .sgemm = cpu_sgemm,
    .sgemm_batched = cpu_sgemm_batched,
    .lowrank_update = cpu_lowrank_update,
    .bf16_pack = lp_bk_cpu_bf16_pack,
    .bf16_linear = lp_bk_cpu_bf16_linear,
    .bf16_free = lp_bk_cpu_bf16_free,
    .add = cpu_add,
    .sub = cpu_sub,
    .mul = cpu_mul,
    .scale = cpu_scale,
    .axpy = cpu_axpy,
    .fill = cpu_fill,
    .bias_add = cpu_bias_add,
    .bias_backward = cpu_bias_backward,
    .act_forward = cpu_act_forward,
    .act_backward = cpu_act_backward,
    .dropout_forward = cpu_dropout_forward,
    .dropout_backward = cpu_dropout_backward,
    .softmax_xent = cpu_softmax_xent,
    .bce_logits = cpu_bce_logits,
    .mse = cpu_mse,
    .sum_rows = cpu_sum_rows,
    .sum_cols = cpu_sum_cols,
    .sum_all = cpu_sum_all,
    .max_abs = cpu_max_abs,
    .argmax_rows = cpu_argmax_rows,
    .adamw_step = cpu_adamw_step,
    .sgd_step = cpu_sgd_step,
    .im2col = cpu_im2col,
    .col2im = cpu_col2im,
    .maxpool_forward = cpu_maxpool_forward,
    .maxpool_backward = cpu_maxpool_backward,
    .avgpool_forward = cpu_avgpool_forward,
    .avgpool_backward = cpu_avgpool_backward,
    .layernorm_forward = cpu_layernorm_forward,
    .softmax_rows = cpu_softmax_rows,
    .gather_rows = cpu_gather_rows,
    .layernorm_backward = cpu_layernorm_backward,
    .softmax_rows_backward = cpu_softmax_rows_backward,
    .scatter_add_rows = cpu_scatter_add_rows,
    .batchnorm_forward = cpu_batchnorm_forward,
    .batchnorm_backward = cpu_batchnorm_backward,
    .als_solve = cpu_als_solve,
    .bpr_epoch = cpu_bpr_epoch,
};

const lp_backend *lp_backend_cpu(void)
{
    return &cpu_table;
}
