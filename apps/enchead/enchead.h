/*
 * enchead.h - what the apps need to build models on a frozen sentence encoder (prefix eh_):
 * opening an encoder file checked against the identity a model recorded (its sha256), embedding
 * texts, and an "encoder head": a multinomial logistic regression on the L2-normalised
 * embeddings plus one unit centroid per class, whose cosine to an input is the embedding-
 * distance out-of-scope score (Larson et al. 2019 report OOS recall as the weak point of
 * softmax confidence; distance to the training classes is the complementary signal).
 *
 * Does not: fine-tune the encoder (head only; LoRA / full fine-tuning is libcore's finetune
 * work), or keep training embeddings (centroids only, so a model file stays small).
 * Invariants: a loaded head scores bit-identically to the saved one; a head is immutable after
 * fit / load and may be shared by threads.
 */
#ifndef ENCHEAD_H
#define ENCHEAD_H

#include <cjson/cJSON.h>

#include "lepton/encoder.h"
#include "lepton/lepton.h"

/* Sentences per lp_encoder_embed batch. */
#define EH_BATCH 64

/* The identity of an encoder file as a model records it. */
typedef struct eh_ident {
    char path[4096];  /* absolute path at training time */
    char sha256[65];  /* hex of the whole file */
    size_t dim;       /* embedding width */
} eh_ident;

/* Open the encoder at path on the kernel table `backend` ("cpu" when NULL: inference in the
 * services; training may ask for "cuda" or "auto", lp_backend_get's names), its products in
 * bfloat16 where the table can (the cpu table with Intel AMX) unless LEPTON_ENCODER_PRECISION
 * says otherwise (encoder.h). When want (nullable) is given, the
 * file's sha256 must equal want->sha256 and its width want->dim: otherwise LP_EINVAL naming
 * what (the model), the path and both sha256 prefixes; no encoder is loaded then. *id (nullable)
 * gets the file's identity (path made absolute). A missing file is LP_ENOTFOUND naming it; a
 * file that is not an encoder is lp_encoder_load's error. *out is new; lp_encoder_free it. */
lp_status eh_encoder_open(const char *path, const eh_ident *want, const char *what,
                          const char *backend, lp_encoder **out, eh_ident *id, lp_err *err);
/* A training program's --device value (NULL: "cpu") checked and resolved to a table name in
 * *name: LP_EINVAL naming the flag for anything but auto, cpu or cuda, the table's own error
 * (e.g. no CUDA device) prefixed with --device; for auto, prog says on stderr what it picked. */
lp_status eh_device(const char *prog, const char *device, const char **name, lp_err *err);

/* The encoder part of a model's settings JSON: {"path", "sha256", "dim", "tfidf_weight",
 * "min_cosine"} added to obj (the ensemble's TF-IDF weight and the centroid-cosine threshold). */
void eh_settings_add(cJSON *obj, const eh_ident *id, double w_tfidf, double min_cos);
/* Read them back from e; LP_EFORMAT "<what>: bad encoder settings" when a member is missing or
 * out of range (w in [0, 1], min_cos in [-1, 1], dim >= 1, a 64-hex sha256). */
lp_status eh_settings_parse(const cJSON *e, const char *what, eh_ident *id, double *w_tfidf,
                            double *min_cos, lp_err *err);

/* `--finetune MODE` of an app's train command: -1 when fine (NULL, or "head", "lora" or
 * "full" with an encoder); else prints why on stderr and returns the exit code 2 (usage):
 * --finetune without --encoder, or an unknown mode. prog names the command in messages. */
int eh_finetune_check(const char *prog, const char *mode, bool has_encoder);

/* `--ft-epochs N` / `--ft-steps N` (either NULL when absent) of a train command with
 * `--finetune mode`: -1 when fine (the values stored in *ft_epochs / *ft_steps), else prints
 * why on stderr and returns 2 (a value outside 1..1000000, or either flag without
 * --finetune lora|full). */
int eh_ft_limits(const char *prog, const char *mode, const char *epochs, const char *steps,
                 size_t *ft_epochs, size_t *ft_steps);

/* r (k) := r - logsumexp(r), the log-softmax, in place. */
void eh_log_softmax(double *r, size_t k);

/* Embed n texts (NULL or "" allowed: embedded as empty text) in batches of EH_BATCH: *out
 * (n, D) new floats the caller frees, unit rows. Texts longer than the encoder's max_len are
 * truncated and counted in one info log line. Errors name the text index. Thread-safe. */
lp_status eh_embed(const lp_encoder *enc, const char *const *texts, size_t n, float **out,
                   lp_err *err);
/* A fine-tuned model embeds through its adapter merged into a second encoder
 * (lp_encoder_adapter_merge), with eh_embed. */

typedef struct eh_head_opts {
    unsigned epochs; /* passes of mini-batch AdamW (default 30; more on a small set, so that
                        there are at least 500 steps) */
    size_t batch;    /* rows per step (default 256) */
    double lr;       /* Adam step, cosine-decayed to 0 (default 0.01) */
    double l2;       /* weight decay of W (AdamW style, default 1e-4) */
    uint64_t seed;   /* shuffling (default 42) */
} eh_head_opts;

eh_head_opts eh_head_opts_default(void);
/* LP_EINVAL naming the field: epochs 0, batch 0, lr or l2 not finite / lr <= 0 / l2 < 0. */
lp_status eh_head_opts_check(const eh_head_opts *o, lp_err *err);

typedef struct eh_head eh_head;

/* Fit softmax(W (s x) + b) on x (n, d) unit rows with labels y in [0, k) by mini-batch AdamW
 * on the mean cross-entropy (s = sqrt(d) puts the features at unit scale), and the centroid of
 * each class (mean of its rows, L2-normalised; a class without rows has none). Classes with no
 * rows keep logit b only. *out is new. LP_EINVAL for n == 0, k < 2 or a label out of range. */
lp_status eh_head_fit(const float *x, const int32_t *y, size_t n, size_t d, size_t k,
                      const eh_head_opts *o, eh_head **out, lp_err *err);
void eh_head_free(eh_head *h); /* NULL is a no-op */
size_t eh_head_dim(const eh_head *h);
size_t eh_head_classes(const eh_head *h);
/* Log-probabilities z (n, k) (log softmax of the head's logits) of x (n, d). */
void eh_head_logprob(const eh_head *h, const float *x, size_t n, double *z);
/* cos (n): the largest cosine between each row of x and a class centroid, over classes with a
 * centroid other than skip (-1 = none skipped); -1 when there is none. */
void eh_head_max_cos(const eh_head *h, const float *x, size_t n, long skip, double *cos);
/* Append the head (magic "EHHD", u32 version, k, d, W, b, centroids) to b. */
void eh_head_save(const eh_head *h, lp_buf *b);
/* Read one head; LP_EFORMAT naming the part, never out of bounds. */
lp_status eh_head_load(lp_reader *r, eh_head **out, lp_err *err);

/* Fit the two out-of-scope thresholds of a "reject when conf < tau_p or cos < tau_c" rule on
 * validation rows (n): conf the calibrated top in-scope probability, cos the max centroid
 * cosine, gold_oos whether the row is out of scope, right whether the top in-scope intent is
 * the gold one, pre_oos whether the model already calls it out of scope (trained OOS class).
 * With OOS rows: the pair (from the 0..30% quantiles of each score over in-scope rows) with the
 * most OOS recall whose in-scope accuracy stays within max_in_loss of no threshold (ties: the
 * higher accuracy). Without: the largest equal-quantile pair (0..30%, steps of 0.1%) whose
 * in-scope accuracy stays within max_in_loss of no threshold, or, when target_in_recall > 0,
 * the largest whose union keeps that share of the in-scope rows. "No threshold" comes back as
 * tau_p = 0, tau_c = -1. LP_ENOMEM only. */
lp_status eh_fit_thresholds(const double *conf, const double *cos, const uint8_t *gold_oos,
                            const uint8_t *right, const uint8_t *pre_oos, size_t n,
                            double max_in_loss, double target_in_recall, double *tau_p,
                            double *tau_c, lp_err *err);

#endif
