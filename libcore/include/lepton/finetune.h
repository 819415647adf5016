/*
 * finetune.h - adapting a fitted model to a small new data set without retraining it.
 *
 * Methods, by model family:
 *   nn        lora  LoRA adapters (Hu et al. 2021) on dense layers: W x + (alpha/r) B A x with
 *                   the base frozen; the adapter is its own small file (.lpa) that names the
 *                   base model's sha256;
 *             head  only the last dense layer trains (the rest frozen);
 *             full  every dense layer trains, starting from the base weights;
 *   gbdt      boost continued boosting: new trees fitted on the new data starting from the
 *                   base model's raw scores, appended to the base's trees;
 *   linear /  warm  warm start with an L2 pull towards the base weights,
 *   logistic        minimising mean loss + (lambda / 2) ||w - w_base||^2.
 * head, full, boost and warm give a new .lpm model carrying the base's input schema, cleaner
 * and feature pipeline unchanged (the new data is featurized by the base's fitted pipeline).
 *
 * LoRA also applies to a multiclass logistic model, seen as one dense layer (coef, intercept)
 * on its fitted features. With opts.new_classes a LoRA adapter may add output classes: label
 * values the base never saw extend the last dense layer to [W; 0] x + [b; c] + (alpha/r) B A x
 * (B covers old and new classes, c the new classes' biases), saved as .lpa version 2.
 *
 * What it is not: nn fine-tuning supports dense networks (hidden=..., or fc/drop arch tokens);
 * conv / batch-norm nets are refused. Fine-tuning runs the frozen body in eval mode (dropout
 * off). Except for LoRA with new_classes, the label set of the new data must be a subset of
 * the base's classes. New classes see only the base's fitted features (for text: its
 * vocabulary; a word the base never saw is invisible to the adapter).
 *
 * Bad input, each one line (LP_EINVAL unless stated): new data with columns the base never
 * saw or without some of its inputs (naming them); label values the base never saw (naming
 * them); a method that does not apply to the family (LP_EUNSUPPORTED); an adapter for another
 * base (naming both sha256); a rank larger than min(in, out) of a target layer.
 *
 * Threads: training calls are not thread-safe on one adapter; lp_lora_predict on a trained or
 * loaded adapter is (it only reads). The base model must outlive every adapter bound to it.
 */
#ifndef LEPTON_FINETUNE_H
#define LEPTON_FINETUNE_H

#include "lepton/base.h"
#include "lepton/data.h"
#include "lepton/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lp_finetune_method {
    LP_FINETUNE_METHOD_LORA = 0,
    LP_FINETUNE_METHOD_HEAD,
    LP_FINETUNE_METHOD_FULL,
    LP_FINETUNE_METHOD_BOOST,
    LP_FINETUNE_METHOD_WARM,
    LP_FINETUNE_METHOD_COUNT_
} lp_finetune_method;

/* "lora", "head", "full", "boost", "warm"; NULL for a bad value. */
const char *lp_finetune_method_name(lp_finetune_method m);
/* LP_EINVAL listing the valid names. */
lp_status lp_finetune_method_parse(const char *s, lp_finetune_method *out, lp_err *err);

typedef struct lp_finetune_opts {
    lp_finetune_method method;
    int rank;             /* lora: r >= 1 (default 8) */
    double alpha;         /* lora: scale numerator, > 0; the update is (alpha / r) B A (16) */
    const char *targets;  /* lora: comma-separated dense layers by index among the dense layers
                             ("0,2") or name ("dense0,dense2"); NULL or "" = all (default) */
    int epochs;           /* lora / head / full: passes over the data, 1..100000 (default 20);
                             warm logistic: gradient iterations = 50 x epochs */
    double lr;            /* lora / head / full: AdamW learning rate > 0 (default 1e-2 for
                             lora, 1e-3 otherwise when 0); boost: shrinkage (0 = 0.1) */
    int batch_size;       /* lora / head / full: rows per step, >= 1 (default 32) */
    int rounds;           /* boost: new boosting rounds, 1..100000 (default 50) */
    double lambda;        /* warm: pull strength >= 0 (default 1.0) */
    uint64_t seed;        /* A's initialisation, shuffling (default 42) */
    const char *label;    /* the label column (default: the base's label) */
    const char *const *drop; /* columns of the new data to ignore (ids), may be NULL */
    size_t n_drop;
    bool new_classes;     /* lora only: label values the base never saw become new classes
                             (default false: they are an error) */
    bool input_support;   /* lora only: A of the first dense layer covers only the input
                             features non-zero in some training row (sparse inputs such as
                             TF-IDF: the others would get no gradient and keep their random
                             init), with A ~ U(-b, b), b = sqrt(3 / mean ||x||^2), so A x has
                             unit variance on those rows (default false) */
} lp_finetune_opts;

lp_finetune_opts lp_finetune_opts_default(void);
/* LP_EINVAL naming the first bad field and its valid range. Thread-safe. */
lp_status lp_finetune_opts_check(const lp_finetune_opts *o, lp_err *err);

typedef struct lp_finetune_stats {
    double train_seconds;  /* wall time of the training loop */
    size_t trainable;      /* parameters the optimizer updated */
    size_t peak_bytes;     /* bytes the trainer itself allocated at most at once (trainable
                              copy, gradients, optimizer state, activations, batch buffers):
                              the base model and the data are not counted */
    size_t n_train;        /* rows trained on */
} lp_finetune_stats;

/* Check that data fits base: every input column of base present, no other column than the
 * label and the dropped ones, every label value (classification) one of base's classes.
 * label may be NULL (the base's label). Errors name the columns or values (at most 8). */
lp_status lp_finetune_check_frame(const lp_model *base, const lp_frame *data, const char *label,
                                  const char *const *drop, size_t n_drop, lp_err *err);

/* head, full, boost or warm: fine-tune base on data (raw rows with the label) and write the
 * tuned model to out_path (.lpm, atomic). Its header gains "finetune": {method, base_sha256,
 * rows}. stats is nullable. LP_EUNSUPPORTED for lora (use lp_lora_train) or a method that does
 * not apply to base's family; frame errors as lp_finetune_check_frame. */
lp_status lp_finetune_model(const lp_model *base, const lp_frame *data, const lp_finetune_opts *o,
                            const char *out_path, lp_finetune_stats *stats, lp_err *err);

/* SHA-256 (hex) of base as lp_model_save writes it: for a model loaded from a file, the
 * file's own sha256 (a loaded model saves back byte for byte). */
lp_status lp_model_sha256(const lp_model *base, char hex[65], lp_err *err);

/* ---- LoRA adapters ---------------------------------------------------------------------- */
typedef struct lp_lora lp_lora;

/* A fresh adapter on base (an nn model): for each target dense layer (in -> out), A (r, in)
 * ~ U(-1/sqrt(in), 1/sqrt(in)) from the seed (loralib's kaiming_uniform_(a=sqrt(5))) and
 * B (out, r) = 0, so the adapted model starts equal to the base. Errors: LP_EUNSUPPORTED (not nn, conv net), LP_EINVAL (rank larger
 * than min(in, out) of a target, naming the layer; unknown target). *out is freed with
 * lp_lora_free; base must outlive it. */
lp_status lp_lora_new(const lp_model *base, const lp_finetune_opts *o, lp_lora **out,
                      lp_err *err);
/* Train a fresh adapter on data (raw rows with the label): AdamW over the adapter block only
 * (the base weights never change), seeded shuffling. stats nullable. With o->new_classes,
 * unseen label values become new classes (in order of first appearance; the last dense layer
 * must be a target); their biases are the mean of the base's biases for that layer, fixed (a
 * class prior like the others': rows of new classes alone would teach a bias that every input
 * is new), and the rows of B of base classes absent from data stay 0, so those classes keep
 * the base's logits exactly. */
lp_status lp_lora_train(const lp_model *base, const lp_frame *data, const lp_finetune_opts *o,
                        lp_lora **out, lp_finetune_stats *stats, lp_err *err);
void lp_lora_free(lp_lora *a);

/* Save as a .lpa file (docs/model-format.md; atomic) / load one for base: checks magic,
 * version, sizes, CRC, the base sha256 (a mismatch is LP_EINVAL naming both hashes) and the
 * target shapes against base's layers. */
lp_status lp_lora_save(const lp_lora *a, const char *path, lp_err *err);
lp_status lp_lora_load(const lp_model *base, const char *path, lp_lora **out, lp_err *err);
/* The same from bytes; name is used in messages. */
lp_status lp_lora_parse(const lp_model *base, const void *data, size_t len, const char *name,
                        lp_lora **out, lp_err *err);

size_t lp_lora_rank(const lp_lora *a);
double lp_lora_alpha(const lp_lora *a);
size_t lp_lora_n_targets(const lp_lora *a);
size_t lp_lora_target(const lp_lora *a, size_t i); /* index among the dense layers */
size_t lp_lora_n_params(const lp_lora *a);         /* floats of the adapter block */
const char *lp_lora_base_sha256(const lp_lora *a);
/* The adapter block: per target, A (r, in) then B (out, r) (A (r, |support|) on dense0 with
 * an input support; B (out + m, r) with m new classes), then the m new biases; owned by a. set copies n floats
 * in (LP_EINVAL on a wrong n or a non-finite value). */
const float *lp_lora_params(const lp_lora *a);
lp_status lp_lora_set_params(lp_lora *a, const float *p, size_t n, lp_err *err);

/* Classes of the adapted model: the base's, then the adapter's new ones (0 for regression);
 * lp_lora_class is NULL out of range. */
size_t lp_lora_n_classes(const lp_lora *a);
size_t lp_lora_n_new_classes(const lp_lora *a);
const char *lp_lora_class(const lp_lora *a, size_t k);

/* Predict raw rows with base + adapter (unmerged: y = W x + b + (alpha/r) B (A x) at each
 * target), outputs as lp_model_predict but over lp_lora_n_classes classes. Thread-safe. */
lp_status lp_lora_predict(const lp_lora *a, const lp_frame *rows, lp_predictions *out,
                          lp_err *err);
/* The raw outputs (logits, or standardized values for regression) before the link: *out
 * (n, k) new (free), k = base outputs + new classes. With B = 0 the base's own outputs are
 * the base net's bit for bit. Thread-safe. */
lp_status lp_lora_logits(const lp_lora *a, const lp_frame *rows, float **out, size_t *n,
                         size_t *k, lp_err *err);

/* The base net's parameters in packed form (dense0.weight (out, in), dense0.bias, dense1...);
 * *out is new (free), *n its length. */
lp_status lp_lora_base_params(const lp_lora *a, float **out, size_t *n, lp_err *err);
/* Merge (W += (alpha/r) B A) / unmerge (W -= (alpha/r) B A) the adapter into params, a packed
 * copy of the base's parameters (n floats, as lp_lora_base_params). LP_EUNSUPPORTED for an
 * adapter with new classes (the base's layers cannot hold them). */
lp_status lp_lora_merge(const lp_lora *a, float *params, size_t n, lp_err *err);
lp_status lp_lora_unmerge(const lp_lora *a, float *params, size_t n, lp_err *err);
/* Write base with the adapter merged as a standalone .lpm (header "finetune": lora-merged);
 * nn bases without new classes only (LP_EUNSUPPORTED otherwise).
 * It merges into the adapter's own view of the base and restores it: not thread-safe against
 * other calls on a. */
lp_status lp_lora_save_merged(const lp_lora *a, const char *path, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
