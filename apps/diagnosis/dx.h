/*
 * dx.h - domain logic of lepton-diagnosis (no main, testable): the image model (a CNN from the
 * nn family with temperature scaling, an out-of-distribution score and integrated gradients),
 * the answer it gives (a calibrated differential, abstention with its reason, an explanation),
 * and the hash-chained audit trail in SQLite.
 *
 * This is clinical decision SUPPORT: every answer carries that statement; nothing here
 * decides for a clinician. A model is immutable after training / loading and may be shared by
 * threads for prediction; explanations (integrated gradients) mutate the net's scratch
 * buffers, so callers serialize them (the service holds a mutex).
 */
#ifndef DX_H
#define DX_H

#include "lepton/lepton.h"

#define DX_STATEMENT                                                                               \
    "Decision support only: a ranked differential with calibrated probabilities for a "           \
    "clinician to review, not a diagnosis."

typedef struct dx_train_opts {
    const char *arch;    /* nn arch (default "conv32bn,pool,conv64bn,pool,fc128") */
    const char *augment; /* default "shift=2,rotate=10,brightness=0.1" */
    int epochs;          /* default 12 */
    int batch_size;      /* default 64 */
    double lr;           /* default 2e-3 (AdamW, cosine to 0) */
    double weight_decay; /* default 1e-4 */
    double valid_frac;   /* held out when no validation set is given (default 0.1) */
    double abstain_p;    /* abstain below this calibrated top probability (default 0.6) */
    double ood_quantile; /* validation quantile of the OOD distance used as threshold (0.99) */
    uint64_t seed;       /* default 42 */
    int threads;         /* OpenMP threads, 0 = default */
    const char *device;  /* nn kernel table: NULL / "cpu" (default), "cuda", "auto" */
} dx_train_opts;

dx_train_opts dx_train_opts_default(void);

typedef struct dx_image_model dx_image_model;

/* Train on X (n, c h w) floats in [0, 1] with labels y in [0, k); X_valid / y_valid (n_valid)
 * may be NULL, then valid_frac of the training rows (stratified-free seeded split) is held
 * out. Fits the network, a temperature on the validation logits (ECE before and after kept
 * for the model card), per-feature mean and variance of the penultimate features of the
 * training rows, and the OOD threshold. classes (k names) are copied. *out is new. */
lp_status dx_image_train(const float *X, const int32_t *y, size_t n, const float *X_valid,
                         const int32_t *y_valid, size_t n_valid, size_t c, size_t h, size_t w,
                         const char *const *classes, size_t k, const dx_train_opts *o,
                         dx_image_model **out, lp_err *err);
void dx_image_model_free(dx_image_model *m);
lp_status dx_image_model_save(const dx_image_model *m, const char *path, lp_err *err);
lp_status dx_image_model_load(const char *path, dx_image_model **out, lp_err *err);

size_t dx_image_model_classes(const dx_image_model *m);
const char *dx_image_model_class(const dx_image_model *m, size_t j);
void dx_image_model_shape(const dx_image_model *m, size_t *c, size_t *h, size_t *w);
/* "sha256-prefix" of the model file / training run: identifies the model in answers. */
const char *dx_image_model_version(const dx_image_model *m);
/* The model card as JSON text (training data summary, validation metrics, calibration,
 * intended use, limits); owned by m. */
const char *dx_image_model_card(const dx_image_model *m);

/* One answer. probs are calibrated (softmax(z / T)); order ranks classes by probability. */
typedef struct dx_answer {
    size_t k;
    double probs[64];
    size_t order[64];
    double ood;         /* distance of the penultimate features to the training ones */
    bool abstain;
    char reason[160];   /* empty when not abstaining */
} dx_answer;

/* Predict n images X (n, c h w): answers (n). Thread-safe. */
lp_status dx_image_predict(const dx_image_model *m, const float *X, size_t n, dx_answer *out,
                           lp_err *err);

/* Integrated gradients (Sundararajan, Taly & Yan 2017) of class cls's logit for one image x
 * (c h w) from the black baseline (zeros): attr_i = x_i * mean over s = 1..steps of
 * dF/dx_i(s/steps x) (right Riemann sum). *fx, *fb get F(x), F(baseline). Not thread-safe
 * per model (see the file comment). */
lp_status dx_image_ig(dx_image_model *m, const float *x, int cls, int steps, float *attr,
                      double *fx, double *fb, lp_err *err);
/* A heat-map PNG: the image in gray with |attr| (normalised to its max) blended in red. */
lp_status dx_heatmap_png(const float *x, const float *attr, size_t c, size_t h, size_t w,
                         lp_buf *png, lp_err *err);

/* Metrics of m on X, y (n): accuracy, macro F1, AUROC (binary: P(class 1); else macro
 * one-vs-rest), ECE (15 bins, calibrated), top-3 accuracy, abstentions. */
typedef struct dx_eval {
    size_t n, abstained;
    double accuracy, macro_f1, auroc, ece, top3_accuracy;
} dx_eval;
lp_status dx_image_eval(const dx_image_model *m, const float *X, const int32_t *y, size_t n,
                        dx_eval *out, lp_err *err);

/* ---- the audit trail -----------------------------------------------------------------------
 * Table answers(id, ts, model_version, input_sha256, text, differential, explanation,
 * abstain, prev_hash, hash): hash = SHA-256 of prev_hash and every other field of the row
 * joined with '\x1f'; prev_hash of the first row is 64 zeros. A table head(n, hash) keeps the
 * last row, so deleting the last row is detected too. WAL, one transaction per answer. */
typedef struct dx_audit dx_audit;
lp_status dx_audit_open(const char *path, dx_audit **out, lp_err *err);
void dx_audit_close(dx_audit *a);
/* Append one answer; *id gets its row id. text may be NULL (not stored). Thread-safe. */
lp_status dx_audit_append(dx_audit *a, const char *model_version, const char *input_sha256,
                          const char *text, const char *differential_json,
                          const char *explanation_json, const char *abstain_json, int64_t *id,
                          lp_err *err);
/* The row as a JSON object text (caller frees); LP_ENOTFOUND. Thread-safe. */
lp_status dx_audit_get(dx_audit *a, int64_t id, char **json, lp_err *err);
/* Check the whole chain; LP_EFORMAT naming the first bad row ("row 7: hash does not match
 * its contents (edited)", "row 8: previous hash does not match row 6 (row 7 deleted?)"). */
lp_status dx_audit_verify(const char *path, size_t *n_rows, lp_err *err);

/* Redact e-mail addresses and phone numbers (PCRE2) into a new string (caller frees). */
char *dx_redact(const char *text);

#endif
