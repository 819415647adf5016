/*
 * ft_internal.h - private to the finetune module: a snapshot of a model's file sections, the
 * host view of an nn model's dense network, and the trainer shared by lora / head / full.
 *
 * The model module gives no accessor for the nn family's net, so the module reads it from
 * the model's own "model" section (the nn family blob: "LPNF", u32 version 1, f64 y_mean,
 * f64 y_std, then lp_nn_save's record; family_nn.c) taken from a save of the model. A tuned
 * model is written the same way: the base's sections with "model" replaced.
 */
#ifndef LEPTON_FINETUNE_INTERNAL_H
#define LEPTON_FINETUNE_INTERNAL_H

#include "lepton/backend.h"
#include "lepton/finetune.h"
#include "lepton/registry.h"
#include "model/nn.h"

/* ---- snapshots ------------------------------------------------------------------------------*/
/* base saved to a private temporary file and read back: *lpm (lp_lpm_free) and its sha256. */
lp_status ft_snapshot(const lp_model *base, lp_lpm **lpm, char sha[65], lp_err *err);
/* Write lpm's sections to path with "model" replaced by blob, and the header gaining
 * "finetune": {extra JSON object text}. Atomic. */
lp_status ft_write_model(const lp_lpm *lpm, const void *blob, size_t len, const char *ft_json,
                         const char *path, lp_err *err);

/* ---- data ----------------------------------------------------------------------------------*/
/* The dense design of data under base's pipeline, *X (n, d) new, and the targets: class
 * indices (classification) or values (regression) as floats in *y (n) new. Checks the frame
 * first (lp_finetune_check_frame); rows with a missing label are an error naming the row.
 * new_cls NULL: every label must be a base class. Else label values the base never saw become
 * new classes K, K+1, ... in order of first appearance, their names in *new_cls (*n_new of
 * them, ft_free_names). */
lp_status ft_design(const lp_model *base, const lp_frame *data, const char *label,
                    const char *const *drop, size_t n_drop, char ***new_cls, size_t *n_new,
                    float **X, float **y, size_t *n, size_t *d, lp_err *err);
void ft_free_names(char **v, size_t n);

/* ---- the host dense net --------------------------------------------------------------------*/
typedef enum ft_layer_kind { FT_LAYER_DENSE = 0, FT_LAYER_ACT, FT_LAYER_IDENTITY } ft_layer_kind;

typedef struct ft_layer {
    ft_layer_kind kind;
    size_t in, out;
    lp_act_kind act;
    size_t w, b;    /* DENSE: offsets of W (out, in) and b (out) in the packed parameters */
    size_t dense;   /* DENSE: index among the dense layers */
} ft_layer;

typedef struct ft_net {
    lp_nn *nn;           /* the loaded net (its opts and loss) */
    double y_mean, y_std;
    size_t d, n_out, nl, n_dense;
    ft_layer *L;         /* (nl) */
    float *params;       /* (n_params) packed, host */
    size_t n_params;
    size_t max_width;
    lp_nn_loss loss;
} ft_net;

/* Parse the nn family blob into a host net. LP_EUNSUPPORTED for conv / batch-norm layers. */
lp_status ft_net_from_blob(const void *data, size_t len, ft_net **out, lp_err *err);
/* The nn family blob of net with its current parameters. */
lp_status ft_net_to_blob(ft_net *net, lp_buf *b, lp_err *err);
void ft_net_free(ft_net *net);

/* The net of a multiclass logistic model (lp_linear, lp_model_impl): one dense layer
 * (d -> K) holding coef and intercept, softmax cross-entropy, no lp_nn (nn = NULL). */
lp_status ft_net_from_linear(const void *lin, ft_net **out, lp_err *err);

/* A LoRA configuration over a net: per dense layer, a (r, in) and b (out, r) offsets into
 * block, or SIZE_MAX when the layer is not a target. With n_new > 0 new output classes, the
 * net's last layer (dense index ext, a target) is extended to out + n_new outputs:
 * y = [W; 0] x + [b; c] + scale B A x with B (out + n_new, r) and the new biases c (n_new) at
 * block[nb_off]. */
typedef struct ft_lora {
    size_t r;
    float scale;       /* alpha / r */
    size_t *a_off, *b_off; /* (n_dense) */
    float *block;
    size_t n_block;
    size_t n_new, ext, nb_off;
    /* support: A of dense layer 0 (the net's first layer) covers only these input features
     * (increasing; n_support of them), A (r, n_support); NULL = every input */
    uint32_t *support;
    size_t n_support;
    /* during training with new classes: (out + n_new) flags, 0 = that output's row of B at
     * the extended layer gets no update; NULL = every row trains */
    const uint8_t *train_rows;
} ft_lora;

/* A's width at dense layer k: in, or n_support for layer 0 with a support. */
size_t ft_lora_a_width(const ft_lora *lo, size_t k, size_t in);

/* out (n, n_out + n_new) raw outputs (logits / standardized values) of X (n, d), eval mode, with the
 * adapter lora (nullable) applied unmerged. */
lp_status ft_net_forward(const ft_net *net, const ft_lora *lora, const float *X, size_t n,
                         float *out, lp_err *err);
/* The link and de-standardization onto lp_predictions (task; k outputs per row of raw). */
lp_status ft_net_predictions(const ft_net *net, lp_task task, const float *raw, size_t n,
                             size_t k, lp_predictions *p, lp_err *err);

typedef enum ft_mode { FT_MODE_LORA = 0, FT_MODE_HEAD, FT_MODE_FULL } ft_mode;

/* Train: lora's block (LORA), the last dense layer (HEAD) or every parameter (FULL) of net
 * with AdamW on X (n, d), y (n) (class indices, or raw regression values standardized here
 * with the net's y_mean / y_std). stats nullable (peak_bytes, trainable, seconds). */
lp_status ft_net_train(ft_net *net, ft_lora *lora, ft_mode mode, const float *X, const float *y,
                       size_t n, const lp_finetune_opts *o, lp_finetune_stats *stats,
                       lp_err *err);

#endif
