/*
 * nn.h - dense neural networks (multi-layer perceptrons): private API of the model module.
 *
 * A network is a list of layers, each a small vtable (lp_nn_layer_ops: parameter registration,
 * forward, backward, host single-row forward). Kinds: dense (y = x W^T + b, W stored
 * (out, in) as PyTorch's nn.Linear), activation (relu, tanh, sigmoid, gelu, gelu_tanh),
 * inverted dropout (nn_layers.c), and over NCHW images 2-D convolution, max / average pooling,
 * global average pooling and batch normalization (nn_conv.c). A spec hidden="512,512",
 * activation="relu", dropout=0.1 builds
 *   dense(d,512) act drop dense(512,512) act drop dense(512,n_outputs);
 * an arch="conv32bn,pool,conv64,pool,fc128" over input_shape="1x28x28" builds
 *   conv(1->32) bn act maxpool conv(32->64) act maxpool dense(3136,128) act dense(128,out).
 * Batch-norm running statistics are not parameters: they live in a separate state block
 * (running mean and variance per channel), updated by training forwards, saved with the net.
 *
 * Memory (llm.c style): parameters, gradients, the optimizer state (Adam m and v, or the SGD
 * momentum buffer) and the best weights of early stopping are each ONE contiguous block laid
 * out by lp_param_layout (tensors "dense<k>.weight" (out, in) and "dense<k>.bias" (out)), so
 * zeroing, copying and saving are one call each. Every training op goes through the backend
 * table (backend.h) chosen by name ("cpu" default, "ref" for tests), so a device table slots in
 * without touching this code; the host keeps a mirror of the parameters for the single-row path
 * and for saving.
 *
 * Training: seeded Kaiming-uniform initialisation like PyTorch's nn.Linear default (weights and
 * biases U(-1/sqrt(fan_in), 1/sqrt(fan_in))), seeded mini-batch shuffling, SGD with momentum or
 * AdamW, learning-rate schedules, optional gradient clipping by global norm, early stopping on
 * a validation set that restores the best weights. A NaN or Inf in the loss or in a gradient
 * stops training with LP_ENUMERIC naming the step and the tensor.
 *
 * Invariants: a fitted lp_nn is immutable for prediction (lp_nn_predict and lp_nn_predict_row
 * only read it and may run on many threads at once); lp_nn_train / lp_nn_train_step /
 * lp_nn_loss_grad / lp_nn_set_params mutate it and must not run concurrently with anything
 * else on the same net.
 *
 * Determinism: the same data, options and seed give byte-identical parameters on the same
 * backend. The OpenMP thread count does not matter (tests/unit/test_nn.c checks 1 vs 2: the
 * cpu table's column sums split columns, not rows, across threads). OpenBLAS's thread count
 * and kernel (OPENBLAS_CORETYPE) gave identical bytes here too (1 vs 2 threads, Prescott vs
 * SkylakeX kernels, a 16-256-256-2 net), but OpenBLAS does not promise it, so compare runs
 * with the same OPENBLAS_NUM_THREADS. ref and cpu tables differ in the last bits.
 */
#ifndef LEPTON_MODEL_NN_H
#define LEPTON_MODEL_NN_H

#include "lepton/backend.h"
#include "lepton/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lp_nn_loss {
    LP_NN_LOSS_SOFTMAX_XENT = 0, /* multiclass, y = class index 0..n_outputs-1; predict gives
                                    softmax probabilities (n, n_outputs) */
    LP_NN_LOSS_BCE,              /* binary, y in [0, 1], one output (a logit); predict gives
                                    P(y = 1) */
    LP_NN_LOSS_MSE               /* regression, y (n, n_outputs); predict gives the values */
} lp_nn_loss;

typedef enum lp_nn_optim {
    LP_NN_OPTIM_ADAMW = 0, /* torch.optim.AdamW (weight_decay 0 is Adam) */
    LP_NN_OPTIM_SGD        /* torch.optim.SGD with momentum (dampening 0), optional Nesterov */
} lp_nn_optim;

typedef enum lp_nn_sched {
    LP_NN_SCHED_CONSTANT = 0, /* lr */
    LP_NN_SCHED_STEP,         /* lr gamma^floor(t / step_size), torch StepLR stepped per step */
    LP_NN_SCHED_COSINE        /* min_lr + (lr - min_lr) (1 + cos(pi t / T)) / 2, T = total
                                 steps (torch CosineAnnealingLR with eta_min = min_lr) */
} lp_nn_sched;

typedef struct lp_nn_opts {
    const char *hidden;        /* hidden widths "512,512" (each 1..1048576, at most 64 layers);
                                  "" or NULL for none (a linear model) */
    const char *activation;    /* "relu" (default), "tanh", "sigmoid", "gelu", "gelu_tanh" */
    float dropout;             /* drop probability after each hidden activation, [0, 1) */
    lp_nn_loss loss;           /* default SOFTMAX_XENT */
    int n_outputs;             /* SOFTMAX_XENT: classes 2..65536; BCE: 1; MSE: 1..65536 */
    const float *class_weight; /* SOFTMAX_XENT only: n_outputs finite weights > 0 (copied at
                                  fit), or NULL for equal weights (F.cross_entropy weight=) */
    lp_nn_optim optimizer;     /* default ADAMW */
    double lr;                 /* peak learning rate > 0 (default 1e-3) */
    double momentum;           /* SGD: [0, 1) (default 0.9) */
    bool nesterov;             /* SGD: needs momentum > 0 (default false) */
    double beta1, beta2;       /* ADAMW: [0, 1) (defaults 0.9, 0.999) */
    double eps;                /* ADAMW: > 0 (default 1e-8) */
    double weight_decay;       /* >= 0: decoupled for ADAMW, L2 for SGD (default 0) */
    lp_nn_sched schedule;      /* default CONSTANT */
    int step_size;             /* STEP: optimizer steps per decay, >= 1 (default 1000) */
    double gamma;              /* STEP: factor in (0, 1] (default 0.1) */
    double min_lr;             /* COSINE: floor in [0, lr] (default 0) */
    long total_steps;          /* COSINE: T; 0 = epochs x batches per epoch (default 0) */
    int warmup_steps;          /* linear warm-up: lr x min(1, (t + 1) / warmup_steps) over the
                                  first steps, multiplied onto any schedule; 0 off (default) */
    int epochs;                /* passes over the data, 1..100000 (default 10) */
    int batch_size;            /* rows per step, 1..1048576 (default 32) */
    bool shuffle;              /* reshuffle rows each epoch (seeded; default true) */
    int patience;              /* early stopping: stop after this many epochs without a lower
                                  validation loss and restore the best weights; 0 off
                                  (needs a validation set when > 0) */
    double clip_norm;          /* clip gradients to this global L2 norm, as
                                  torch.nn.utils.clip_grad_norm_; 0 off (default), else > 0 */
    uint64_t seed;             /* initialisation, shuffling, dropout masks (default 0) */
    const char *backend;       /* kernel table name: "cpu" (default), "ref", "cuda", "auto" */
    int n_threads;             /* OpenMP threads while training / batch predicting; 0 keeps
                                  the OpenMP default (0..1024) */
    const char *arch;          /* layer spec replacing `hidden` when set (see below); NULL or
                                  "" keeps the dense network of `hidden` */
    const char *input_shape;   /* "CxHxW" of each input row (NCHW order, C*H*W == d); needed
                                  when arch holds conv / pool / gap layers; NULL or "" treats a
                                  row as d flat features */
    const char *augment;       /* image augmentation applied to each training batch (needs
                                  input_shape): comma-separated "hflip", "vflip", "shift=P"
                                  (up to P pixels each way), "rotate=D" (up to D degrees),
                                  "brightness=B" (add U(-B, B) x the row's range); drawn
                                  from the seed and the step. NULL or "" off */
    double ema_decay;          /* exponential moving average of the weights (Polyak &
                                  Juditsky 1992; as timm's ModelEma): after every optimizer
                                  step of lp_nn_train, e = a e + (1 - a) w with
                                  a = min(ema_decay, (1 + t) / (10 + t)) at the t-th step of the
                                  call (e starts as the weights after step 0), the batch-norm
                                  running statistics averaged the same way; validation, early
                                  stopping and the trained net use the averaged weights. At the
                                  end the running statistics are re-estimated for the kept
                                  weights by training-mode forwards over the training rows in
                                  order, batch_size rows each (torch's swa_utils.update_bn, at
                                  batch norm's momentum). [0, 1); 0 off (default).
                                  lp_nn_train_step and adversarial training ignore it */
    double mixup_alpha;        /* mixup (Zhang et al. 2018) in lp_nn_train: each training
                                  batch (after augmentation) becomes x = l x + (1 - l) x[perm],
                                  the loss l L(y) + (1 - l) L(y[perm]) (soft targets mixed the
                                  same way for BCE / MSE), l ~ Beta(alpha, alpha) and perm a
                                  permutation of the batch, both drawn by lp_nn_mixup_draw.
                                  >= 0 and finite; 0 off (default) */
} lp_nn_opts;

/* The arch grammar: comma-separated tokens applied in order; the final dense layer to
 * n_outputs is appended.
 *   conv<F>[k<K>][s<S>][bn]  2-D convolution of F filters K x K (default 3), stride S
 *                            (default 1), zero padding K/2, then batch norm when "bn", then
 *                            the activation (F 1..4096, K 1..15 odd, S 1..8)
 *   pool[<K>] | maxpool[<K>] K x K max pooling, stride K (default 2)
 *   avgpool[<K>]             K x K average pooling, stride K (default 2)
 *   gap                      global average pooling: (C, H, W) -> (C)
 *   bn                       batch normalization over channels (or over flat features)
 *   fc<N>[bn]                dense to N, batch norm when "bn", then the activation
 *   drop                     dropout with probability opts.dropout (which must be > 0)
 * A dense layer after a spatial one flattens (C, H, W) in NCHW order. Batch norm
 * (Ioffe & Szegedy 2015) normalizes with the batch mean and biased variance in training,
 * keeps running averages (momentum 0.1, unbiased variance; PyTorch's BatchNorm defaults,
 * eps 1e-5) and uses them in eval mode. */

/* Defaults: hidden "64", relu, no dropout, softmax cross-entropy over 2 classes, AdamW lr 1e-3
 * without weight decay, constant schedule, 10 epochs of batch 32 shuffled, no early stopping,
 * no clipping, seed 0, the "cpu" table, the OpenMP default thread count. */
lp_nn_opts lp_nn_opts_default(void);

/* Validate every field; LP_EINVAL with one line naming the parameter, its value and the valid
 * range ("nn: dropout=1: must be in [0, 1)", "nn: hidden=\"0\": width 1 is 0, must be in
 * [1, 1048576]", "nn: activation=\"swish\": ..."). Thread-safe. */
lp_status lp_nn_opts_check(const lp_nn_opts *opts, lp_err *err);

typedef struct lp_nn lp_nn;

/* ---- layers: the vtable a layer kind implements ---------------------------------------------*/
typedef enum lp_nn_layer_kind {
    LP_NN_LAYER_KIND_DENSE = 0,
    LP_NN_LAYER_KIND_ACT,
    LP_NN_LAYER_KIND_DROPOUT,
    LP_NN_LAYER_KIND_CONV2D,
    LP_NN_LAYER_KIND_MAXPOOL,
    LP_NN_LAYER_KIND_AVGPOOL,
    LP_NN_LAYER_KIND_GAP,
    LP_NN_LAYER_KIND_BATCHNORM
} lp_nn_layer_kind;

typedef struct lp_nn_layer lp_nn_layer;

/* What a forward / backward call needs beyond its tensors. */
typedef struct lp_nn_ctx {
    const lp_backend *be;
    bool train;    /* dropout active, batch norm on batch statistics */
    uint64_t seed; /* network seed (dropout streams derive from it and the layer index) */
    uint64_t step; /* optimizer step: the dropout counter */
    float *ws;     /* device workspace of at least n x L->ws + L->ws_fixed floats */
    float *ones;   /* device vector of ones, at least max(n, widest plane) long */
    float *state;  /* device state block (batch-norm running statistics); training forwards
                      of batch norm update it */
} lp_nn_ctx;

typedef struct lp_nn_layer_ops {
    const char *name;
    /* Register the layer's tensors in the layout (none for act / dropout). */
    lp_status (*add_params)(lp_nn_layer *L, size_t index, lp_param_layout *lay, lp_err *err);
    /* y (n, out) from x (n, in); params is the parameter block (device). */
    lp_status (*forward)(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params, size_t n,
                         const float *x, float *y, lp_err *err);
    /* Given the forward x (n, in), y (n, out) and dy (n, out): write the layer's parameter
     * gradients into grads (same offsets as params, overwritten) and dx (n, in) unless dx is
     * NULL (the first layer's input needs no gradient). */
    lp_status (*backward)(const lp_nn_layer *L, const lp_nn_ctx *c, const float *params,
                          float *grads, size_t n, const float *x, const float *y, const float *dy,
                          float *dx, lp_err *err);
    /* One row on the host, no allocation, no threads: y (out) from x (in). Eval mode; state is
     * the host copy of the state block. */
    void (*forward_row)(const lp_nn_layer *L, const float *params, const float *state,
                        const float *x, float *y);
} lp_nn_layer_ops;

struct lp_nn_layer {
    const lp_nn_layer_ops *ops;
    lp_nn_layer_kind kind;
    size_t in, out;      /* widths of x and y */
    size_t w_off, b_off; /* DENSE: offsets of W (out, in) and b (out) in the blocks */
    lp_act_kind act;     /* ACT */
    float p;             /* DROPOUT: drop probability */
    uint64_t index;      /* position in the list (dropout stream) */
    /* spatial kinds: input (c, h, w) and output (oc, oh, ow); in = c h w, out = oc oh ow.
     * Flat kinds see (in, 1, 1). */
    size_t c, h, w, oc, oh, ow;
    lp_conv2d_geom g; /* CONV2D / pools: the window (g.n is set per call) */
    size_t s_off;     /* BATCHNORM: running mean (oc) at s_off, running variance (oc) after */
    size_t ws;        /* workspace floats per row the layer needs (forward and backward) */
    size_t ws_fixed;  /* plus this many per call */
};

/* ---- building and parameters ---------------------------------------------------------------*/

/* A new, untrained network for inputs of d features: layers from opts (checked), parameters
 * initialised from opts->seed as PyTorch's nn.Linear (rows of W in order, then b, layer by
 * layer, each from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with one seeded stream). Errors:
 * LP_EINVAL (opts, d == 0), LP_EUNSUPPORTED / LP_EDEVICE (backend), LP_ENOMEM. The opts
 * strings and class_weight are copied. *out is freed with lp_nn_free. */
lp_status lp_nn_new(size_t d, const lp_nn_opts *opts, lp_nn **out, lp_err *err);
void lp_nn_free(lp_nn *m);

size_t lp_nn_n_inputs(const lp_nn *m);
size_t lp_nn_n_outputs(const lp_nn *m);
lp_nn_loss lp_nn_loss_of(const lp_nn *m);
const lp_nn_opts *lp_nn_opts_of(const lp_nn *m); /* the copy the net holds */
size_t lp_nn_n_layers(const lp_nn *m);
const lp_nn_layer *lp_nn_layer_at(const lp_nn *m, size_t i); /* NULL when out of range */
/* The parameter layout (one view per tensor); owned by m. */
const lp_param_layout *lp_nn_layout(const lp_nn *m);
/* Number of parameters without alignment gaps: the length of the packed form below. */
size_t lp_nn_n_params(const lp_nn *m);

/* Packed form: the tensors in layout order (dense0.weight (out, in), dense0.bias, dense1...),
 * no gaps, exactly PyTorch's list(model.parameters()) flattened for the same MLP.
 * get copies n == lp_nn_n_params floats out; set copies them in (LP_EINVAL on a wrong n or a
 * non-finite value, naming the tensor and index). set resets the optimizer state and the step
 * counter, so training starts afresh from the given weights. */
lp_status lp_nn_get_params(const lp_nn *m, float *out, size_t n, lp_err *err);
lp_status lp_nn_set_params(lp_nn *m, const float *in, size_t n, lp_err *err);

/* ---- training ------------------------------------------------------------------------------*/

/* The learning rate of optimizer step t (0-based) under o's schedule and warm-up; total is T of
 * the cosine schedule. Pure; thread-safe. */
double lp_nn_lr_at(const lp_nn_opts *o, uint64_t t, uint64_t total);

/* Mean loss over n rows at the current parameters, and its gradient w.r.t. every parameter in
 * packed form (grad: lp_nn_n_params floats, or NULL for the loss only). train = true applies
 * dropout with the masks of the current step (so a finite-difference check sees a fixed
 * mask). X (n, d); y (n) class indices / 0-1 targets, or (n, n_outputs) for MSE. Errors:
 * LP_EINVAL (bad label, naming the row), LP_ENUMERIC, LP_ENOMEM. Not thread-safe. */
lp_status lp_nn_loss_grad(lp_nn *m, const float *X, const float *y, size_t n, bool train,
                          double *loss, float *grad, lp_err *err);

/* One optimizer step on the batch X (n, d), y: forward with dropout, loss, backward, optional
 * clipping, the scheduled learning rate of step t = steps taken so far (the cosine schedule
 * needs opts->total_steps > 0 here, else LP_EINVAL), the update. *loss
 * (nullable) gets the batch's mean loss before the update. LP_ENUMERIC "nn step 12: mse: loss
 * is NaN (...)" or "nn step 12: gradient of dense1.weight is Inf" leaves the parameters of before
 * the step. Not thread-safe. */
lp_status lp_nn_train_step(lp_nn *m, const float *X, const float *y, size_t n, double *loss,
                           lp_err *err);

/* Train for opts->epochs on X (n, d), y, in mini-batches of opts->batch_size rows (the last
 * batch of an epoch may be smaller), reshuffled each epoch from the seed when opts->shuffle.
 * X_valid (n_valid, d), y_valid: optional (NULL / 0); when given the validation loss (eval
 * mode) is recorded after every epoch, and with patience > 0 training stops after `patience`
 * epochs without improvement and the best epoch's weights are restored. Inputs are only read.
 * Errors as lp_nn_train_step, plus LP_EINVAL for shapes / labels naming the row. */
lp_status lp_nn_train(lp_nn *m, const float *X, const float *y, size_t n, const float *X_valid,
                      const float *y_valid, size_t n_valid, lp_err *err);

/* lp_nn_new + lp_nn_train (the same contract as lp_gbdt_fit). *out owns a new net. */
lp_status lp_nn_fit(const float *X, const float *y, size_t n, size_t d, const lp_nn_opts *opts,
                    const float *X_valid, const float *y_valid, size_t n_valid, lp_nn **out,
                    lp_err *err);

/* Optimizer steps taken; epochs trained; the best validation loss and its epoch (NaN and 0
 * without validation); the validation loss of every epoch trained (*n set). */
uint64_t lp_nn_steps(const lp_nn *m);
size_t lp_nn_epochs_run(const lp_nn *m);
double lp_nn_best_valid_loss(const lp_nn *m);
size_t lp_nn_best_epoch(const lp_nn *m);
const double *lp_nn_valid_history(const lp_nn *m, size_t *n);

/* ---- prediction ----------------------------------------------------------------------------*/

/* out (n, n_outputs) raw outputs (logits / values) for X (n, d), eval mode (no dropout), on
 * the net's backend in chunks. Allocates its own buffers, so several threads may predict at
 * once. LP_EINVAL on NULL arguments, LP_ENOMEM. */
lp_status lp_nn_predict_raw(const lp_nn *m, const float *X, size_t n, float *out, lp_err *err);
/* predict_raw, then the link: softmax (SOFTMAX_XENT), sigmoid (BCE), identity (MSE). */
lp_status lp_nn_predict(const lp_nn *m, const float *X, size_t n, float *out, lp_err *err);
/* One row on the calling thread from the host copy of the parameters: out (n_outputs) with
 * the link applied. scratch (2 x lp_nn_row_scratch floats) avoids any allocation; NULL
 * allocates (then LP_ENOMEM is possible). Thread-safe. */
size_t lp_nn_row_scratch(const lp_nn *m);
lp_status lp_nn_predict_row(const lp_nn *m, const float *x, float *out, float *scratch,
                            lp_err *err);

/* ---- attributions and features --------------------------------------------------------------*/

/* Gradient of raw output cls[i] (a logit) of each row w.r.t. its input, in eval mode:
 * grad (n, d); logits (n, n_outputs) gets the raw outputs (nullable). The backward pass of the
 * training path run from a one-hot output gradient. Overwrites the gradient block. Errors:
 * LP_EINVAL (NULL, class out of range naming the row), LP_ENOMEM. Not thread-safe. */
lp_status lp_nn_input_grad(lp_nn *m, const float *X, size_t n, const int32_t *cls, float *grad,
                           float *logits, lp_err *err);
/* The vector-Jacobian product of the raw outputs w.r.t. the input: grad (n, d) row i gets
 * d(sum_k dz[i, k] z_k(x_i)) / dx_i for output weights dz (n, n_out), e.g. softmax(z) - onehot
 * for the cross-entropy's input gradient (FGSM / PGD) or an output's coefficients for
 * integrated gradients. Eval mode; logits as lp_nn_input_grad. Same errors and the same
 * thread-safety as lp_nn_input_grad. */
lp_status lp_nn_input_vjp(lp_nn *m, const float *X, size_t n, const float *dz, float *grad,
                          float *logits, lp_err *err);
/* ---- adversarial examples and training (nn_adv.c) -------------------------------------------
 * Attacks perturb the input rows x (the design, after any feature pipeline) inside the L-inf
 * ball of radius eps around them, to increase the training loss of their labels:
 *   FGSM (Goodfellow, Shlens & Szegedy 2015): x' = x + eps sign(grad_x L(x, y)).
 *   PGD  (Madry et al. 2018): x_0 = x + U(-eps, eps)^d (seeded), then `steps` times
 *        x_{t+1} = clip_[x - eps, x + eps](x_t + alpha sign(grad_x L(x_t, y))).
 * The input gradient of the loss is the net's vector-Jacobian product with dL/dz: softmax(z) -
 * onehot(y) (cross-entropy; class weights scale a row's gradient and leave its sign alone),
 * sigmoid(z) - y (BCE), z - y (MSE). */
typedef enum lp_nn_attack {
    LP_NN_ATTACK_FGSM = 0,
    LP_NN_ATTACK_PGD
} lp_nn_attack;

typedef struct lp_nn_attack_opts {
    lp_nn_attack method; /* default FGSM */
    double eps;          /* L-inf radius, > 0 and finite (default 0.1) */
    int steps;           /* PGD iterations, 1..1000 (default 10) */
    double step_size;    /* PGD alpha; 0 = 2.5 eps / steps (Madry et al.'s choice) */
    bool random_start;   /* PGD: start at a uniform point of the ball (default true) */
    uint64_t seed;       /* PGD random starts (default 0) */
} lp_nn_attack_opts;

lp_nn_attack_opts lp_nn_attack_opts_default(void);
/* LP_EINVAL naming the field: "attack: eps=-1: must be a finite number > 0". */
lp_status lp_nn_attack_opts_check(const lp_nn_attack_opts *o, lp_err *err);
/* "fgsm" / "pgd"; parse gives LP_EINVAL naming the choices. */
const char *lp_nn_attack_name(lp_nn_attack a);
lp_status lp_nn_attack_parse(const char *s, lp_nn_attack *out, lp_err *err);

/* Adversarial rows Xadv (n, d) for X (n, d) with labels y as lp_nn_train takes them. stream
 * varies the PGD starts between calls (a batch number). Xadv may equal X (in place). Errors:
 * options, labels (naming the row), LP_ENOMEM. Not thread-safe (it uses the net's scratch). */
lp_status lp_nn_attack_rows(lp_nn *m, const lp_nn_attack_opts *a, const float *X,
                            const float *y, size_t n, uint64_t stream, float *Xadv, lp_err *err);

/* Adversarial training: lp_nn_train, except that every mini-batch B is trained as the batch
 * [B; attack(B)] of twice its rows, so the step minimises 0.5 L(clean) + 0.5 L(adversarial)
 * (Goodfellow et al. 2015's alpha = 0.5), the attack run at the current weights. Validation,
 * patience and best-weight restoring as lp_nn_train (on clean validation loss; batch-norm
 * running statistics are kept from the last epoch). A cosine schedule with total_steps 0 is
 * planned over epochs x batches. Errors as lp_nn_train and lp_nn_attack_opts_check. */
lp_status lp_nn_train_adversarial(lp_nn *m, const lp_nn_attack_opts *a, const float *X,
                                  const float *y, size_t n, const float *X_valid,
                                  const float *y_valid, size_t n_valid, lp_err *err);

/* Width of the input to the final dense layer (the penultimate features). */
size_t lp_nn_n_features(const lp_nn *m);
/* out (n, lp_nn_n_features) = the penultimate features of X (n, d) in eval mode. Allocates
 * its own buffers; thread-safe as lp_nn_predict_raw. */
lp_status lp_nn_features(const lp_nn *m, const float *X, size_t n, float *out, lp_err *err);
/* Floats of the state block (batch-norm running statistics), and a host copy of it. */
size_t lp_nn_n_state(const lp_nn *m);
const float *lp_nn_state(const lp_nn *m);

/* Apply opts->augment to nb rows of x (nb, C*H*W) in place, seeded by (seed, step): each row
 * gets its own flip / shift / rotation / brightness draw, bilinear resampling with zero fill
 * outside. LP_EINVAL for a bad augment spec or a missing input shape. Thread-safe. */
lp_status lp_nn_augment(const lp_nn_opts *o, float *x, size_t nb, uint64_t seed, uint64_t step,
                        lp_err *err);

/* The mixup draw of optimizer step `step` for a batch of nb rows: *lam ~ Beta(alpha, alpha)
 * (o->mixup_alpha > 0; Marsaglia-Tsang gamma variates) and perm (nb) a uniform permutation,
 * both from (o->seed, step). Pure; thread-safe. */
void lp_nn_mixup_draw(const lp_nn_opts *o, uint64_t step, size_t nb, double *lam, size_t *perm);

/* ---- serialization ---------------------------------------------------------------------------
 * Format (little-endian): "LPNN", u32 version (2), u64 d, u32 loss, u32 n_outputs,
 * str hidden, str activation, f32 dropout, str arch, str input_shape, u64 n_params,
 * f32 params[n_params] (packed form), u64 n_state, f32 state[n_state], f64 best_valid_loss,
 * u32 CRC-32 of every previous byte of the blob. Version 1 (no arch, input_shape, state) is
 * still read. Training options other than the architecture are not saved. */
lp_status lp_nn_save(const lp_nn *m, lp_buf *b, lp_err *err);
/* Read one net from r (advancing it) onto the named backend (NULL = "cpu"). Checks magic,
 * version, the architecture (as lp_nn_opts_check), the parameter count against the
 * architecture, finite parameters and the CRC: a truncated or corrupted blob is LP_EFORMAT /
 * LP_EVERSION naming r->what, never a crash. *out owns a new net. */
lp_status lp_nn_load(lp_reader *r, const char *backend, lp_nn **out, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
