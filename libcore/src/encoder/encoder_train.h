/*
 * encoder_train.h - internals of the encoder's training path (encoder_train.c), shared with
 * its tests: the trainable block layout, the training net (forward with every activation kept,
 * backward of every layer) and masked multi-head attention forward/backward.
 *
 * Invariants: an et_net's block (device) has exactly the layout of its adapter's host block
 * (lp_encoder_adapter, see encoder.h); grad, m and v mirror it. For lora and head, the encoder
 * weights P are the base's (never written); for full, P is the start of the block (a copy).
 */
#ifndef LEPTON_ENCODER_TRAIN_H
#define LEPTON_ENCODER_TRAIN_H

#include "encoder/encoder_internal.h"

#define ET_TARGETS 6 /* LoRA targets per layer: q, k, v, attention output, ff1, ff2 */

struct lp_encoder_adapter {
    lp_encoder_config cfg; /* of the base */
    char sha[65];          /* the base's weight fingerprint */
    lp_encoder_ft_method method;
    size_t rank; /* 0 unless lora */
    double alpha;
    size_t n_classes;
    size_t n_block;
    float *block; /* (n_block) host */
};

/* Offsets (floats) inside the block. a[l * ET_TARGETS + t] / b[...]: LoRA A (r, in) and
 * B (out, r) of target t of layer l (lora only); head_w (C, D), head_b (C). enc_n: floats of
 * the encoder-side part [0, enc_n) (0 for head). */
typedef struct et_layout {
    size_t *a, *b; /* (layers * ET_TARGETS) or NULL */
    size_t head_w, head_b, enc_n, total;
} et_layout;

typedef struct et_net {
    const lp_encoder *e;
    const lp_backend *be;
    lp_encoder_ft_method method;
    size_t r, C;
    float scale; /* alpha / r */
    et_layout lay;
    lp_dbuf blk;    /* (lay.total) trainable block */
    lp_dbuf grad;   /* (lay.total) its gradient */
    const float *P; /* encoder weights: base params (head, lora) or blk.ptr (full) */
    /* Frozen base weights packed for the table's bfloat16 products (et_net_use_bf16):
     * pk[(l * ET_TARGETS + t) * 2] holds W (out, in) of target t of layer l for the forward
     * product, [.. + 1] W^T (in, out) for the input gradient dy W (lora only). NULL: every
     * product in float32. */
    void **pk;
    bool borrowed; /* blk is the adapter's host block, read in place (et_net_view) */
} et_net;

/* A fresh adapter for e: LoRA A ~ U(-1/sqrt(in), 1/sqrt(in)), B = 0; full: a copy of e's
 * parameter block (gaps zero); head W ~ U(-1/sqrt(D), 1/sqrt(D)), b = 0; drawn from seed. */
lp_status et_adapter_new(const lp_encoder *e, lp_encoder_ft_method m, size_t r, double alpha,
                         size_t C, uint64_t seed, lp_encoder_adapter **out, lp_err *err);

/* A net on e whose block is a's (a->block copied to the device). grad zeroed. Every product
 * in float32 until et_net_use_bf16. */
lp_status et_net_new(const lp_encoder *e, const lp_encoder_adapter *a, et_net *net, lp_err *err);
/* A net for prediction only (et_net_run with grads false): no gradient buffer, and on a table
 * whose memory the host sees the adapter's block is read in place instead of copied (a full
 * adapter is the whole encoder, ~90 MB for MiniLM, and the services predict per request). a
 * must outlive the net and not change while it is used. */
lp_status et_net_view(const lp_encoder *e, const lp_encoder_adapter *a, et_net *net, lp_err *err);
/* Under an encoder set to bfloat16 (lp_encoder_set_precision), pack the frozen base weights of
 * a head or lora net (net->pk) so its base products run through the table's bf16 products (x
 * and W rounded to bfloat16, float32 accumulation); the trained parts (LoRA A and B, the head)
 * and their gradients stay float32. A no-op for full nets, a float32 encoder or a table without
 * the products; float32 stays when the shapes do not fit them. Packing reads the weights once
 * (tens of ms for MiniLM): fine-tuning does it once per run; adapter prediction, called per
 * request by the services, does not. LP_ENOMEM. */
lp_status et_net_use_bf16(et_net *net, lp_err *err);
void et_net_free(et_net *net);

/* The mean softmax cross-entropy of one token batch with labels (tb->n) in [0, C) through
 * the net; with grads, net->grad is zeroed and then holds d loss / d block. z (tb->n, D)
 * nullable host output: the pooled, normalised embeddings; probs (tb->n, C) nullable host
 * output: the class probabilities (labels may then be NULL and *loss is not computed). */
lp_status et_net_run(et_net *net, const lp_token_batch *tb, const int32_t *labels, bool grads,
                     double *loss, float *z, float *probs, lp_err *err);

/* Masked multi-head self-attention on projections q, k, v (B*T, D), H heads of dh = D / H:
 * probs (B, H, T, T) = softmax_masked(q_bh k_bh^T / sqrt dh), ctx (B*T, D) head h columns =
 * probs_bh v_bh. mask (B, T). */
lp_status et_attention_forward(const lp_backend *be, size_t B, size_t T, size_t H, size_t D,
                               const float *mask, const float *q, const float *k, const float *v,
                               float *probs, float *ctx, lp_err *err);
/* Its backward given dctx (B*T, D): dq, dk, dv (B*T, D) overwritten; dprobs (B, H, T, T)
 * scratch. */
lp_status et_attention_backward(const lp_backend *be, size_t B, size_t T, size_t H, size_t D,
                                const float *q, const float *k, const float *v, const float *probs,
                                const float *dctx, float *dprobs, float *dq, float *dk, float *dv,
                                lp_err *err);

/* The base's weight fingerprint: sha256 hex of the concatenated per-tensor sha256 hex
 * digests of e's parameters in layout order; computed on the first call and kept in e
 * (thread-safe). */
lp_status et_fingerprint(const lp_encoder *e, char hex[65], lp_err *err);

#endif
