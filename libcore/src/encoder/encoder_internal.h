/*
 * encoder_internal.h - the lp_encoder struct, shared by encoder.c (loading, inference forward)
 * and encoder_train.c (training forward, backward, fine-tuning). Not a public header.
 *
 * Invariants: params is one device block on be laid out by layout under the file's section
 * names; the offsets below (in floats) point into it; a loaded encoder is never modified.
 */
#ifndef LEPTON_ENCODER_INTERNAL_H
#define LEPTON_ENCODER_INTERNAL_H

#include "lepton/encoder.h"

#include <pthread.h>

/* Offsets (in floats) of one layer's tensors inside the parameter block; wqkv, bqkv inside
 * the fused block (lp_encoder.qkv). */
typedef struct enc_layer {
    size_t wq, bq, wk, bk, wv, bv, wo, bo, ln1_g, ln1_b, w1, b1, w2, b2, ln2_g, ln2_b;
    size_t wqkv, bqkv;
} enc_layer;

struct lp_encoder {
    lp_encoder_config cfg;
    const lp_backend *be;
    lp_param_layout *layout;
    lp_dbuf params;
    lp_wordpiece *wp;
    size_t word, pos, type, ln_g, ln_b; /* embedding offsets */
    enc_layer *layer;                   /* (layers) */
    /* Per layer [Wq; Wk; Wv] (3D, D) and [bq; bk; bv] (3D): copies of the parameter block's
     * q/k/v tensors, made at load, so inference projects x (N, D) to q|k|v (N, 3D) in one
     * product. The parameters stay the source of truth: code that changes wq..bv in `params`
     * must call enc_qkv_fuse (encoder.c) again. */
    lp_dbuf qkv;
    /* LP_ENCODER_BF16 (lp_encoder_set_precision): per layer the packed bfloat16 weights of
     * [Wq; Wk; Wv], Wo, W1, W2 (table bf16_pack), layers * ENC_BF16_PER; NULL in float32. */
    void **bf16;
    /* The weight fingerprint (et_fingerprint), computed on first use under fp_mu and kept:
     * the weights never change, and hashing ~90 MB per adapter prediction cost ~0.5 s. */
    pthread_mutex_t fp_mu;
    bool has_fp;
    char fp[65];
    bool borrowed; /* layout and wp are another encoder's (enc_derive) */
};

/* A new encoder with e's config, table, offsets and tokenizer (borrowed: e must outlive it)
 * over the parameter block host_params (e->params.n host floats in e's layout), its q|k|v
 * fused, and at e's precision. LP_ENOMEM, or the table's errors. */
lp_status enc_derive(const lp_encoder *e, const float *host_params, lp_encoder **out,
                     lp_err *err);
#define ENC_BF16_PER 4

/* encoder_batch.c: host steps shared by the inference and training forwards. */
/* LP_EINVAL unless 1 <= b->t <= max_position and every id is inside the vocabulary. */
lp_status enc_check_batch(const lp_encoder *e, const lp_token_batch *b, lp_err *err);
/* pos (n*t) = each token's position; poolw (n*t) = mask / max(token count, 1e-9), the
 * weights of mean pooling (sentence-transformers). */
void enc_pool_inputs(const lp_token_batch *tb, int32_t *pos, float *poolw);
/* Each row of x (B, D) times one float 1 / max(||row||, 1e-12) (F.normalize up to rounding);
 * nrm (B) nullable gets the clamped norms. */
void enc_l2_rows(float *x, size_t B, size_t D, float *nrm);

#endif
