/*
 * backend.h - the kernel table every neural-network training path calls: device memory,
 * gemm, elementwise ops, activations, dropout, losses, reductions, optimizer steps, low-rank
 * updates, im2col/col2im and pooling.
 *
 * A backend is a table of function pointers (ggml / llm.c style) chosen at run time with
 * lp_backend_get(). Model code calls `be->op(be, ...)` and never sees `#ifdef CUDA`: a CUDA
 * table slots in beside the two CPU tables defined here:
 *   "ref"  plain scalar C loops, the reference every other table is tested against;
 *   "cpu"  OpenBLAS cblas_sgemm + OpenMP for elementwise ops above LP_BACKEND_OMP_MIN elements
 *          (smaller inputs run on the calling thread and never fork a team).
 *
 * Device pointers. Every float / int32 pointer an op takes is a DEVICE pointer obtained from
 * be->alloc (or an offset into such a block). Callers must not dereference it unless
 * be->host_visible is true (both CPU tables); they move data with copy_h2d / copy_d2h. Ops may
 * run asynchronously on a device: results are visible to the host after be->sync(). Loss
 * functions return their mean loss to the host and therefore synchronise.
 *
 * Errors. Every member except `name` returns lp_status and takes a trailing nullable lp_err.
 * Shapes, leading dimensions and hyper-parameters are checked (LP_EINVAL naming the op and the
 * bad argument); a NaN/Inf loss is LP_ENUMERIC naming the op. Nothing here aborts.
 *
 * Aliasing. Elementwise ops and activations allow out == an input (in place). Other ops
 * require distinct buffers unless their contract says otherwise.
 *
 * Threads. A backend table is immutable and may be shared; ops on distinct buffers may run
 * from several threads. The cpu table uses OpenMP: run with OMP_WAIT_POLICY=passive (libgomp
 * reads it once at start-up, so the library cannot set it afterwards); see DESIGN.md.
 *
 * Parameters, gradients and optimizer state each live in one contiguous block (llm.c);
 * lp_param_layout lays out named views (offsets) inside such a block.
 */
#ifndef LEPTON_BACKEND_H
#define LEPTON_BACKEND_H

#include "lepton/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Elementwise ops on the cpu table fork an OpenMP team only from this many elements up
 * (below it the fork costs more than the work). Row-wise ops use n*d. */
#define LP_BACKEND_OMP_MIN 32768

typedef enum lp_act_kind {
    LP_ACT_KIND_RELU = 0,  /* max(x, 0); backward given the forward INPUT x (x > 0 ? dy : 0) */
    LP_ACT_KIND_TANH,      /* tanh(x); backward given the forward OUTPUT y: dy (1 - y^2) */
    LP_ACT_KIND_SIGMOID,   /* 1 / (1 + e^-x); backward given the OUTPUT y: dy y (1 - y) */
    LP_ACT_KIND_GELU_ERF,  /* x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)) (Hendrycks & Gimpel 2016):
                            * PyTorch's default nn.GELU() (approximate='none'); backward given
                            * the INPUT x */
    LP_ACT_KIND_GELU_TANH, /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), PyTorch's
                            * approximate='tanh' (GPT-2); backward given the INPUT x */
    LP_ACT_KIND_COUNT_
} lp_act_kind;

/* "relu", "tanh", "sigmoid", "gelu" (the exact erf form), "gelu_tanh"; NULL for bad kinds. */
const char *lp_act_kind_name(lp_act_kind kind);
/* Parse a name above. LP_EINVAL listing the valid names otherwise. */
lp_status lp_act_kind_parse(const char *name, lp_act_kind *kind, lp_err *err);
/* True when act_backward wants the forward output y (tanh, sigmoid), false when it wants the
 * forward input x (relu, gelu). */
bool lp_act_backward_uses_output(lp_act_kind kind);

/* Geometry of a 2-D convolution or pooling window over NCHW tensors (no dilation).
 * Output size oh = (h + 2 pad_h - kh) / stride_h + 1 (floor), likewise ow. */
typedef struct lp_conv2d_geom {
    size_t n, c, h, w;         /* input (n, c, h, w) */
    size_t kh, kw;             /* window */
    size_t stride_h, stride_w; /* >= 1 */
    size_t pad_h, pad_w;       /* zero padding (conv) or -inf / ignored padding (pool) */
} lp_conv2d_geom;

/* Fill *oh, *ow (either may be NULL). LP_EINVAL naming `what` and the field when a size is 0,
 * a stride is 0, or the padded input is smaller than the window. */
lp_status lp_conv2d_geom_check(const lp_conv2d_geom *g, const char *what, size_t *oh, size_t *ow,
                               lp_err *err);

/* AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization"), PyTorch's
 * torch.optim.AdamW with amsgrad=False. Hyper-parameters are double, like PyTorch's Python
 * floats (beta2 = 0.999 rounded to float would move 1 - beta2 by 1.3e-5 relative). */
typedef struct lp_adamw_opts {
    double lr;           /* > 0; default 1e-3 */
    double beta1, beta2; /* in [0, 1); defaults 0.9, 0.999 */
    double eps;          /* > 0; default 1e-8 */
    double weight_decay; /* >= 0, decoupled; default 1e-2 (PyTorch's) */
} lp_adamw_opts;

lp_adamw_opts lp_adamw_opts_default(void);
lp_status lp_adamw_opts_check(const lp_adamw_opts *o, lp_err *err);

/* SGD with momentum, PyTorch's torch.optim.SGD with dampening 0:
 *   g = grad + wd p;  buf = mu buf + g;  g = nesterov ? g + mu buf : buf;  p -= lr g.
 * The momentum buffer starts at zero, which makes PyTorch's first step (buf = g) the same. */
typedef struct lp_sgd_opts {
    double lr;           /* > 0; default 1e-2 */
    double momentum;     /* >= 0; default 0.9 (0 gives plain SGD and ignores the buffer) */
    double weight_decay; /* >= 0, L2 added to the gradient (coupled); default 0 */
    bool nesterov;       /* needs momentum > 0; default false */
} lp_sgd_opts;

lp_sgd_opts lp_sgd_opts_default(void);
lp_status lp_sgd_opts_check(const lp_sgd_opts *o, lp_err *err);

typedef struct lp_backend lp_backend;

/* The kernel table. `be` is always the table itself (a device table keeps its stream and
 * library handles behind ctx). Shapes in comments are row-major (rows, cols). Unless stated,
 * an op overwrites its output. */
struct lp_backend {
    const char *name;  /* "ref", "cpu", "cuda" */
    bool host_visible; /* device pointers may be dereferenced by the host (CPU tables) */
    void *ctx;         /* backend private state; NULL for the CPU tables */

    /* ---- memory and synchronisation ---- */
    /* *p = nbytes of device memory (uninitialised, aligned to 64 bytes; nbytes 0 gives a valid
     * unique pointer). LP_ENOMEM / LP_EDEVICE on failure. Free with be->free. */
    lp_status (*alloc)(const lp_backend *be, size_t nbytes, void **p, lp_err *err);
    /* Release device memory from alloc; NULL is a no-op. Never fails on valid input. */
    lp_status (*free)(const lp_backend *be, void *p, lp_err *err);
    /* Set nbytes of device memory to the byte value (0 gives 0.0f floats). */
    lp_status (*memset)(const lp_backend *be, void *dst, int value, size_t nbytes, lp_err *err);
    /* Copy nbytes host -> device / device -> host / device -> device (non-overlapping). */
    lp_status (*copy_h2d)(const lp_backend *be, void *dst, const void *src, size_t nbytes,
                          lp_err *err);
    lp_status (*copy_d2h)(const lp_backend *be, void *dst, const void *src, size_t nbytes,
                          lp_err *err);
    lp_status (*copy_d2d)(const lp_backend *be, void *dst, const void *src, size_t nbytes,
                          lp_err *err);
    /* Wait for every queued op; asynchronous device errors surface here (LP_EDEVICE). */
    lp_status (*sync)(const lp_backend *be, lp_err *err);

    /* ---- matrix products ---- */
    /* C (m, n) = alpha op(A) (m, k) @ op(B) (k, n) + beta C, row-major; op(X) = X^T when
     * trans_x. lda >= cols of A as stored (k, or m when trans_a), ldb likewise, ldc >= n.
     * beta == 0 never reads C (NaN in C is ignored), as BLAS. */
    lp_status (*sgemm)(const lp_backend *be, bool trans_a, bool trans_b, size_t m, size_t n,
                       size_t k, float alpha, const float *a, size_t lda, const float *b,
                       size_t ldb, float beta, float *c, size_t ldc, lp_err *err);
    /* Strided batched product over i < batch, X_i = X + i stride_x (same rules as sgemm):
     *   stride_c > 0:  C_i (m, n) = alpha op(A_i) @ op(B_i) + beta C_i  (the C_i must not overlap)
     *   stride_c == 0: C (m, n)   = alpha sum_i op(A_i) @ op(B_i) + beta C  (a batch reduction)
     * stride_a or stride_b 0 shares one operand (a convolution's weight across images). batch 0
     * leaves C_i untouched, or sets C = beta C in the reduction. A table may leave it NULL;
     * callers then loop over sgemm. The cpu table splits the batch across OpenMP threads (a
     * reduction sums per-thread partials in a fixed order, so its rounding depends on the
     * thread count only); cuda uses cublasGemmStridedBatchedEx. */
    lp_status (*sgemm_batched)(const lp_backend *be, bool trans_a, bool trans_b, size_t m,
                               size_t n, size_t k, float alpha, const float *a, size_t lda,
                               size_t stride_a, const float *b, size_t ldb, size_t stride_b,
                               float beta, float *c, size_t ldc, size_t stride_c, size_t batch,
                               lp_err *err);
    /* bfloat16 inference products; optional (NULL on a table without them). For inference
     * only, where a few parts in a thousand of relative error are acceptable:
     * y (n, out) = x (n, in) @ W^T + bias (nullable) with x and W rounded to bfloat16 (nearest
     * even) and float32 accumulation. bf16_pack packs W (out, in) once into *packed (free with
     * bf16_free; NULL is a no-op); LP_EUNSUPPORTED when the table cannot here: the cpu table
     * needs Intel AMX (AMX-BF16 and AMX-TILE, Sapphire Rapids and later) with the tile state
     * granted by the kernel, not LEPTON_AMX=0 in the environment, and in and out multiples of
     * 32. bf16_linear checks the shapes against the packed ones (LP_EINVAL). Thread-safe; the
     * cpu table splits the blocks of y across OpenMP threads. */
    lp_status (*bf16_pack)(const lp_backend *be, size_t out, size_t in, const float *w,
                           void **packed, lp_err *err);
    lp_status (*bf16_linear)(const lp_backend *be, size_t n, size_t in, size_t out,
                             const float *x, const void *packed, const float *bias, float *y,
                             lp_err *err);
    void (*bf16_free)(const lp_backend *be, void *packed);
    /* Low-rank update W (m, n) += scale * B (m, r) @ A (r, n): merges (scale = alpha / r) or
     * unmerges (scale = -alpha / r) a LoRA adapter (Hu et al. 2021) into a frozen weight. */
    lp_status (*lowrank_update)(const lp_backend *be, size_t m, size_t n, size_t r, float scale,
                                const float *b, const float *a, float *w, lp_err *err);

    /* ---- elementwise over n floats ---- */
    lp_status (*add)(const lp_backend *be, size_t n, const float *x, const float *y, float *out,
                     lp_err *err); /* out = x + y */
    lp_status (*sub)(const lp_backend *be, size_t n, const float *x, const float *y, float *out,
                     lp_err *err); /* out = x - y */
    lp_status (*mul)(const lp_backend *be, size_t n, const float *x, const float *y, float *out,
                     lp_err *err); /* out = x * y (Hadamard) */
    lp_status (*scale)(const lp_backend *be, size_t n, float alpha, const float *x, float *out,
                       lp_err *err); /* out = alpha x */
    lp_status (*axpy)(const lp_backend *be, size_t n, float alpha, const float *x, float *y,
                      lp_err *err); /* y += alpha x */
    lp_status (*fill)(const lp_backend *be, size_t n, float value, float *x,
                      lp_err *err); /* x = value */

    /* ---- bias over rows ---- */
    /* y (n, d) += b (d) on every row. */
    lp_status (*bias_add)(const lp_backend *be, size_t n, size_t d, const float *b, float *y,
                          lp_err *err);
    /* db (d) += sum over rows of dy (n, d): the gradient of bias_add, ACCUMULATED (so several
     * uses of one bias add up, as PyTorch's .grad). */
    lp_status (*bias_backward)(const lp_backend *be, size_t n, size_t d, const float *dy, float *db,
                               lp_err *err);

    /* ---- activations over n floats (see lp_act_kind for each formula) ---- */
    lp_status (*act_forward)(const lp_backend *be, lp_act_kind kind, size_t n, const float *x,
                             float *y, lp_err *err); /* y = f(x) */
    /* dx = dy * f'(.). `fwd` is the forward INPUT x for relu / gelu and the forward OUTPUT y for
     * tanh / sigmoid (lp_act_backward_uses_output). dx may alias dy. */
    lp_status (*act_backward)(const lp_backend *be, lp_act_kind kind, size_t n, const float *fwd,
                              const float *dy, float *dx, lp_err *err);

    /* ---- dropout (inverted: kept values scaled by 1 / (1 - p)) ----
     * Element i of call (seed, step) is kept iff lp_dropout_keep(seed, step, i, p): a
     * Philox-4x32-10 draw (Salmon et al. 2011) that every backend computes identically, so
     * CPU and GPU masks agree bit for bit and backward needs no stored mask. p in [0, 1). */
    lp_status (*dropout_forward)(const lp_backend *be, size_t n, float p, uint64_t seed,
                                 uint64_t step, const float *x, float *y, lp_err *err);
    lp_status (*dropout_backward)(const lp_backend *be, size_t n, float p, uint64_t seed,
                                  uint64_t step, const float *dy, float *dx, lp_err *err);

    /* ---- losses: the mean loss goes to the HOST (*loss, double), its gradient to the device.
     * Each returns LP_ENUMERIC naming the op when the loss is NaN or Inf. ---- */
    /* Softmax cross-entropy over logits (n, c), targets (n) int32 in [0, c) (device),
     * class_w (c) or NULL (all 1). loss = sum_i w[t_i] l_i / sum_i w[t_i] with
     * l_i = logsumexp(z_i) - z_i[t_i] (max subtracted first), PyTorch's
     * F.cross_entropy(weight=w, reduction='mean'). dlogits (n, c) = w[t_i] (softmax(z_i) -
     * onehot(t_i)) / sum_i w[t_i]; may be NULL to skip the gradient. A target out of range is
     * LP_EINVAL naming the row. */
    lp_status (*softmax_xent)(const lp_backend *be, size_t n, size_t c, const float *logits,
                              const int32_t *targets, const float *class_w, double *loss,
                              float *dlogits, lp_err *err);
    /* Binary cross-entropy with logits over n values, targets y in [0, 1]:
     * l = max(z, 0) - z y + log1p(exp(-|z|)) (never overflows), mean over n;
     * dz = (sigmoid(z) - y) / n (dz may be NULL). PyTorch's binary_cross_entropy_with_logits. */
    lp_status (*bce_logits)(const lp_backend *be, size_t n, const float *z, const float *y,
                            double *loss, float *dz, lp_err *err);
    /* Mean squared error over n values: mean (p - y)^2; dp = 2 (p - y) / n (dp may be NULL). */
    lp_status (*mse)(const lp_backend *be, size_t n, const float *p, const float *y, double *loss,
                     float *dp, lp_err *err);

    /* ---- reductions (accumulated in double, stored as float) ---- */
    /* out (d) = sum over the n rows of x (n, d) (column sums). */
    lp_status (*sum_rows)(const lp_backend *be, size_t n, size_t d, const float *x, float *out,
                          lp_err *err);
    /* out (n) = sum over the d columns of each row of x (n, d) (row sums). */
    lp_status (*sum_cols)(const lp_backend *be, size_t n, size_t d, const float *x, float *out,
                          lp_err *err);
    /* out[0] = sum of all n values. */
    lp_status (*sum_all)(const lp_backend *be, size_t n, const float *x, float *out, lp_err *err);
    /* out[0] = max |x_i| (0 for n == 0; NaN if any x_i is NaN). */
    lp_status (*max_abs)(const lp_backend *be, size_t n, const float *x, float *out, lp_err *err);
    /* out (n) int32 = index of the largest value of each row of x (n, d), first on ties;
     * d >= 1. NaN rows give the index of the first NaN (NaN compares largest, as torch). */
    lp_status (*argmax_rows)(const lp_backend *be, size_t n, size_t d, const float *x, int32_t *out,
                             lp_err *err);

    /* ---- optimizer steps over one contiguous block of n parameters ---- */
    /* AdamW step number t >= 1 (bias correction 1 - beta^t):
     *   p -= lr wd p;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
     *   p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps).
     * m and v (n) are the optimizer state, zero before step 1. */
    lp_status (*adamw_step)(const lp_backend *be, size_t n, const lp_adamw_opts *o, uint64_t t,
                            float *params, const float *grads, float *m, float *v, lp_err *err);
    /* SGD step (see lp_sgd_opts); buf (n) is the momentum buffer (ignored when momentum 0). */
    lp_status (*sgd_step)(const lp_backend *be, size_t n, const lp_sgd_opts *o, float *params,
                          const float *grads, float *buf, lp_err *err);

    /* ---- convolution helpers (NCHW) and pooling; geometry per lp_conv2d_geom ---- */
    /* col (n, c*kh*kw, oh*ow) from x (n, c, h, w): row (ci*kh + i)*kw + j of image b holds
     * x[b, ci, oy*sh - ph + i, ox*sw - pw + j] (0 outside), so conv is W (f, c*kh*kw) @ col. */
    lp_status (*im2col)(const lp_backend *be, const lp_conv2d_geom *g, const float *x, float *col,
                        lp_err *err);
    /* The adjoint: x (n, c, h, w) = sum of the col entries that read each pixel (overwrites x). */
    lp_status (*col2im)(const lp_backend *be, const lp_conv2d_geom *g, const float *col, float *x,
                        lp_err *err);
    /* y (n, c, oh, ow) = window max (padding never wins; needs 2 pad <= k); argmax (same
     * shape, int32) = flat index h*w-plane offset iy*w + ix of the winner, first on ties. */
    lp_status (*maxpool_forward)(const lp_backend *be, const lp_conv2d_geom *g, const float *x,
                                 float *y, int32_t *argmax, lp_err *err);
    /* dx (n, c, h, w) = dy routed to each window's argmax (overwrites dx). */
    lp_status (*maxpool_backward)(const lp_backend *be, const lp_conv2d_geom *g, const float *dy,
                                  const int32_t *argmax, float *dx, lp_err *err);
    /* y = window mean with zero padding counted (divisor kh*kw), PyTorch's AvgPool2d default
     * count_include_pad=True; needs 2 pad <= k. */
    lp_status (*avgpool_forward)(const lp_backend *be, const lp_conv2d_geom *g, const float *x,
                                 float *y, lp_err *err);
    /* dx (n, c, h, w) = each dy spread evenly over its window (overwrites dx). */
    lp_status (*avgpool_backward)(const lp_backend *be, const lp_conv2d_geom *g, const float *dy,
                                  float *dx, lp_err *err);

    /* ---- transformer ops (the text encoder). A table may leave these NULL; callers report
     * LP_EUNSUPPORTED naming the table. ---- */
    /* LayerNorm over the rows of x (n, d) (Ba, Kiros & Hinton 2016), PyTorch's
     * nn.LayerNorm(d, eps): y = (x - mu_i) rstd_i gamma + beta with mu_i the row mean and
     * rstd_i = 1 / sqrt(var_i + eps), var_i the biased row variance (both accumulated in
     * double). gamma, beta (d). mean, rstd (n) are nullable outputs kept for a backward pass.
     * y may alias x. d >= 1, eps >= 0. */
    lp_status (*layernorm_forward)(const lp_backend *be, size_t n, size_t d, float eps,
                                   const float *x, const float *gamma, const float *beta,
                                   float *y, float *mean, float *rstd, lp_err *err);
    /* Softmax over each row of x (n, d) restricted to the columns where the row's mask is
     * non-zero: y_ij = exp(x_ij - m_i) / sum_{k: mask != 0} exp(x_ik - m_i), m_i the row max
     * over unmasked columns; masked entries get 0, and a row with no unmasked column is all 0.
     * mask (n / group, d) floats or NULL (nothing masked); row i reads mask row i / group, so
     * attention scores (B*H*T, T) share one key mask (B, T) with group = H*T. group >= 1 must
     * divide n. y may alias x. Equals PyTorch's softmax(x + (1 - mask) * -inf) on rows with an
     * unmasked column. */
    lp_status (*softmax_rows)(const lp_backend *be, size_t n, size_t d, size_t group,
                              const float *mask, const float *x, float *y, lp_err *err);
    /* Embedding lookup: out (n, d) row i = row idx[i] of table (rows, d); idx (n) int32 device
     * array. An index outside [0, rows) is LP_EINVAL naming the position (host-visible tables
     * check before writing; a device table reports it at its next sync). */
    lp_status (*gather_rows)(const lp_backend *be, size_t n, size_t d, size_t rows,
                             const float *table, const int32_t *idx, float *out, lp_err *err);
    /* The gradients of the three ops above (the encoder's backward pass, encoder_train.c).
     * A table may leave them NULL; training then reports LP_EUNSUPPORTED naming the table. */
    /* LayerNorm backward from the forward INPUT x (n, d) and its kept mean, rstd (n):
     * xhat = (x - mean) rstd, g = gamma dy; dx (n, d) = rstd (g - mean_j g - xhat mean_j(g xhat))
     * (overwritten, nullable); dgamma (d) += sum_i dy xhat and dbeta (d) += sum_i dy
     * (ACCUMULATED, as bias_backward; each nullable). Row sums in double. dx may alias dy. */
    lp_status (*layernorm_backward)(const lp_backend *be, size_t n, size_t d, const float *x,
                                    const float *gamma, const float *mean, const float *rstd,
                                    const float *dy, float *dx, float *dgamma, float *dbeta,
                                    lp_err *err);
    /* Softmax backward from the forward OUTPUT y (n, d): dx_ij = y_ij (dy_ij - sum_k y_ik dy_ik)
     * (row sum in double). Masked entries have y = 0 and get dx = 0, so the mask is not needed.
     * dx may alias dy. */
    lp_status (*softmax_rows_backward)(const lp_backend *be, size_t n, size_t d, const float *y,
                                       const float *dy, float *dx, lp_err *err);
    /* The adjoint of gather_rows: dtable (rows, d) row idx[i] += dy (n, d) row i, ACCUMULATED,
     * in increasing i (so repeated indices sum in a fixed order). Indices checked as
     * gather_rows. */
    lp_status (*scatter_add_rows)(const lp_backend *be, size_t n, size_t d, size_t rows,
                                  const float *dy, const int32_t *idx, float *dtable, lp_err *err);

    /* ---- batch normalization over NCHW channels (Ioffe & Szegedy 2015), PyTorch's
     * nn.BatchNorm2d(c, eps, momentum). x, y, dy, dx (n, c, hw); gamma, beta, run_mean,
     * run_var, dgamma, dbeta (c). Statistics per channel over N = n hw values, accumulated in
     * double (two passes: mean, then the centered squares). n hw >= 1, c >= 1, eps > 0 finite,
     * momentum in [0, 1]. A table may leave these NULL (callers report LP_EUNSUPPORTED). ---- */
    /* train: mu, var = the batch mean and BIASED variance; y = (x - mu) inv gamma + beta with
     * inv = 1 / sqrt(var + eps); then run_mean = (1 - mom) run_mean + mom mu and run_var =
     * (1 - mom) run_var + mom var N / (N - 1) (the unbiased variance; var when N == 1).
     * eval (train false): mu = run_mean, var = run_var, the running statistics untouched.
     * y may alias x. */
    lp_status (*batchnorm_forward)(const lp_backend *be, size_t n, size_t c, size_t hw,
                                   float eps, float momentum, bool train, const float *x,
                                   const float *gamma, const float *beta, float *run_mean,
                                   float *run_var, float *y, lp_err *err);
    /* The gradient of batchnorm_forward, recomputing mu and inv from x (train) or from the
     * running statistics (eval). xhat = (x - mu) inv; dbeta = sum dy, dgamma = sum dy xhat
     * (both OVERWRITTEN); dx (nullable) = gamma inv / N (N dy - dbeta - xhat dgamma) in train
     * mode, gamma inv dy in eval mode. dx may alias dy. */
    lp_status (*batchnorm_backward)(const lp_backend *be, size_t n, size_t c, size_t hw,
                                    float eps, bool train, const float *x, const float *gamma,
                                    const float *run_mean, const float *run_var, const float *dy,
                                    float *dx, float *dgamma, float *dbeta, lp_err *err);

    /* ---- recommender ops (the mf family's ALS and BPR on a table; see mf.h). A table may
     * leave these NULL. CSR arrays are int32 device arrays with ascending columns per row;
     * host-visible tables check them, device tables trust them (the mf code builds them). ---- */
    /* Implicit-ALS half-step (Hu, Koren & Volinsky 2008, the Y^T Y trick): for each of the
     * n_rows rows r of the CSR (ptr (n_rows + 1), col (nnz) in [0, n_f), w (nnz) > 0)
     *   x_r (k) = (G + lambda I + sum_t alpha w_t f_t f_t^T)^-1 sum_t (1 + alpha w_t) f_t,
     * f_t = row col[t] of f (n_f, k), G (k, k) = F^T F (symmetric; the caller forms it with
     * sgemm). The matrix is accumulated in float in the row's column order and factored by
     * Cholesky in double (as mf.c's CPU solver). x (n_rows, k) is overwritten; it must not
     * alias f. LP_ENUMERIC naming the first row whose system is not positive definite or whose
     * solution is not finite (x is then unspecified). nnz == ptr[n_rows], passed by the host. */
    lp_status (*als_solve)(const lp_backend *be, size_t n_rows, size_t n_f, size_t k, size_t nnz,
                           const int32_t *ptr, const int32_t *col, const float *w, const float *f,
                           const float *gram, float lambda, float alpha, float *x, lp_err *err);
    /* One epoch of BPR-Opt by SGD (Rendle et al. 2009) over n_samples sampled triples.
     * Sample s draws Philox-4x32-10 at counter {s lo, s hi, epoch lo, try} with key {seed lo,
     * seed hi}: word 0 picks the observed pair p = word0 mod nnz (user row_of[p], positive
     * col[p]); word 1 (then word 2, 3, then the next try's words, 16 draws at most) picks a
     * negative j = word mod n_items not in the user's row (ptr/col: the users' CSR); a sample
     * without a negative is skipped. With z = x_u . (y_i - y_j) over the dim k (the last
     * factor is the item bias; x_u's last factor stays 1) and g = sigmoid(-z):
     *   x_u[a] += lr (g (y_i - y_j)[a] - reg x_u[a])  (a < k - 1),
     *   y_i += lr (g x_u - reg y_i),  y_j += lr (-g x_u - reg y_j).
     * batch 0: samples applied as drawn (a sequential table: in order; a device table:
     * lock-free in parallel, Hogwild (Niu et al. 2011), so results vary run to run). batch
     * >= 1: deterministic mini-batches of `batch` samples, each sample's step computed from the
     * factors at the start of its batch, then added to each factor in sample order: bit-for-bit
     * repeatable on every table. *loss (host) = sum of -log sigmoid(z) over the used samples,
     * *used (host) their count. xu (n_users, k), yi (n_items, k), row_of (nnz). */
    lp_status (*bpr_epoch)(const lp_backend *be, size_t n_users, size_t n_items, size_t k,
                           size_t nnz, const int32_t *ptr, const int32_t *col,
                           const int32_t *row_of, uint64_t seed, uint64_t epoch, size_t n_samples,
                           float lr, float reg, size_t batch, float *xu, float *yi, double *loss,
                           size_t *used, lp_err *err);
};

/* The two CPU tables (static storage; never NULL, never freed). Thread-safe. */
const lp_backend *lp_backend_ref(void);
const lp_backend *lp_backend_cpu(void);

/* Pick a table by name: "ref", "cpu", "cuda", or "auto" (cuda when built with it and a device
 * is present, else cpu). "cuda" without LEPTON_HAVE_CUDA is LP_EUNSUPPORTED saying so; "cuda"
 * without a usable device is LP_EDEVICE "no CUDA device: <CUDA's reason>"; an unknown name is
 * LP_EINVAL listing the valid ones. The cuda table (src/backend/cuda.c) computes matrix
 * products in fp32; LEPTON_CUDA_TF32=1 in the environment switches them to TF32 tensor cores.
 * Thread-safe. */
lp_status lp_backend_get(const char *name, const lp_backend **be, lp_err *err);

/* Philox-4x32-10 (Salmon, Moraes, Dror & Shaw 2011, "Parallel random numbers: as easy as
 * 1, 2, 3"), the generator curand also implements: counter ctr[4], key key[2] -> out[4].
 * Pure function; thread-safe. */
void lp_philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* Dropout's keep decision for element i of call (seed, step) with drop probability p:
 * word (i mod 4) of Philox(ctr = {i / 4 low, i / 4 high, step low, step high},
 * key = {seed low, seed high}) is below floor((1 - p) 2^32) (computed in double).
 * Pure function; thread-safe. Defines the mask for every backend. */
bool lp_dropout_keep(uint64_t seed, uint64_t step, uint64_t i, float p);

/* ---- device buffers ---------------------------------------------------------------------- */
/* A device block of n floats owned by be. */
typedef struct lp_dbuf {
    float *ptr; /* device pointer (see host_visible) */
    size_t n;   /* size in floats */
} lp_dbuf;

/* Allocate n floats on be, zero-filled. On failure *buf is {NULL, 0}. */
lp_status lp_dbuf_alloc(const lp_backend *be, size_t n, lp_dbuf *buf, lp_err *err);
/* Free and reset to {NULL, 0}; a zeroed buf is a no-op. */
void lp_dbuf_free(const lp_backend *be, lp_dbuf *buf);

/* ---- parameter layout: named views inside one contiguous block ---------------------------
 * Add tensors in order; each gets an offset aligned to LP_PARAM_ALIGN floats (64 bytes), so
 * views can be vector-loaded on CPU and coalesced on GPU. The same layout serves the
 * parameter, gradient and optimizer-state blocks (one lp_dbuf each of lp_param_layout_total
 * floats). Not thread-safe while adding; read-only use may be shared. */
#define LP_PARAM_ALIGN 16
#define LP_PARAM_NAME_MAX 64
#define LP_PARAM_MAX_DIMS 4

typedef struct lp_param_view {
    char name[LP_PARAM_NAME_MAX];
    size_t offset; /* in floats from the block start */
    size_t n;      /* element count = product of shape */
    size_t ndim;
    size_t shape[LP_PARAM_MAX_DIMS];
} lp_param_view;

typedef struct lp_param_layout lp_param_layout;

/* NULL on allocation failure. Free with lp_param_layout_free (NULL is a no-op). */
lp_param_layout *lp_param_layout_new(void);
void lp_param_layout_free(lp_param_layout *l);
/* Append a tensor named `name` (copied; unique, 1..LP_PARAM_NAME_MAX-1 chars) of shape
 * (ndim in 1..LP_PARAM_MAX_DIMS, no zero dims). *offset (nullable) gets its offset.
 * LP_EINVAL for bad names/shapes, LP_EEXIST for a duplicate name, LP_ENOMEM. */
lp_status lp_param_layout_add(lp_param_layout *l, const char *name, size_t ndim,
                              const size_t *shape, size_t *offset, lp_err *err);
/* Total floats the block needs (sum of sizes plus alignment gaps). */
size_t lp_param_layout_total(const lp_param_layout *l);
size_t lp_param_layout_count(const lp_param_layout *l);
/* The i-th view (NULL when out of range); owned by the layout. */
const lp_param_view *lp_param_layout_at(const lp_param_layout *l, size_t i);
/* The view named `name`, or NULL. */
const lp_param_view *lp_param_layout_find(const lp_param_layout *l, const char *name);

#ifdef __cplusplus
}
#endif
#endif
