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
    const char *arch;    /* nn arch (default "conv32bn,pool,conv64bn,pool,conv128bn,pool,fc128") */
    const char *augment; /* default "shift=2,rotate=10,brightness=0.1" */
    int epochs;          /* 0 (default): 12, fewer on a large training set (dx_image_epochs) */
    int batch_size;      /* default 64 */
    double lr;           /* default 2e-3 (AdamW, cosine to 0) */
    double weight_decay; /* default 1e-4 */
    double valid_frac;   /* held out when no validation set is given (default 0.1) */
    double abstain_p;    /* abstain below this calibrated top probability (default 0.6) */
    double ood_quantile; /* validation quantile of the OOD distance used as threshold (0.99) */
    uint64_t seed;       /* default 42 */
    int threads;         /* OpenMP threads, 0 = default */
    /* text model: inverse L2 strength of the logistic regression (default 0: chosen on the
     * validation split from {10, 100, 1000, 10000} by temperature-scaled log-likelihood;
     * short symptom texts are nearly separable and C = 1 underfits them), word n-grams
     * 1..ngram_max (default 1), sublinear tf (default false), and whether the final model is
     * refit on every row once the held-out split has chosen C, the temperature and the
     * thresholds (default true; only without an explicit validation file) */
    double text_c;
    unsigned text_ngram_max;
    bool text_sublinear;
    bool text_refit;
    const char *device;  /* nn kernel table: NULL / "cpu" (default), "cuda", "auto" */
    /* text model: a sentence encoder .lpm (NULL = none) whose frozen embeddings feed a head
     * ensembled with the TF-IDF model, plus an embedding-distance abstention (dx_text.c) */
    const char *encoder;
    /* text model with an encoder: "lora" or "full" fine-tunes the encoder on the training rows
     * first (lp_encoder_finetune; NULL or "head": frozen), ft_epochs (0: its default, 3) and
     * ft_max_steps (0: no limit) as lp_encoder_ft_opts' epochs and max_steps */
    const char *finetune;
    size_t ft_epochs, ft_max_steps;
    /* image model: exponential moving average of the weights during training (lp_nn_opts
     * ema_decay; default 0.995), and the test-time augmentation views averaged in probability
     * space at prediction (1..DX_TTA_MAX, default 5: view 0 is the image itself, views 1..4
     * shift it by one pixel right, left, down, up, views 5..8 diagonally; zero fill) */
    double ema_decay;
    int tta;
    double mixup_alpha; /* image model: mixup's Beta(alpha, alpha) (lp_nn_opts); default 0, off */
    bool keep_last;     /* image model: keep the last epoch's net instead of the epoch with the
                           lowest validation loss (default true) */
    /* tabular model: columns to leave out of the features besides those dropped as row
     * identifiers (dx_tabular_train); NULL / 0: none */
    const char *const *drop_cols;
    size_t n_drop_cols;
} dx_train_opts;

#define DX_TTA_MAX 9

dx_train_opts dx_train_opts_default(void);

/* The fitted temperature is kept in [DX_T_MIN, DX_T_MAX]: on a validation split the model
 * classifies perfectly, the likelihood keeps growing as T -> 0 and the fit would turn every
 * answer into a certainty; the floor keeps the probabilities graded (the card says so). */
#define DX_T_MIN 0.1
#define DX_T_MAX 10.0
double dx_temperature_clamp(double T);

typedef struct dx_image_model dx_image_model;

/* Test-time view v in [0, DX_TTA_MAX) of n images X (n, c, h, w) into out (n, c h w): view 0
 * is X, views 1..4 shift by one pixel (right, left, down, up), 5..8 diagonally; pixels the
 * shift uncovers are 0 (a v outside the range gives view 0). out must not alias X.
 * Thread-safe. */
void dx_tta_view(const float *X, size_t n, size_t c, size_t h, size_t w, int v, float *out);
/* p (n, k) = (1 / V) sum_v softmax(z_v / T), the probabilities of V views averaged (not their
 * logits); z (V, n, k) view-major; tmp (n, k) scratch. */
void dx_tta_probs(const float *z, int V, size_t n, size_t k, double T, double *p, double *tmp);
/* ECE (15 bins) of y under dx_tta_probs(z, V, ., T); p, tmp (n, k) scratch. NaN when y holds a
 * label outside [0, k). */
double dx_tta_ece(const float *z, int V, const int32_t *y, size_t n, size_t k, double T,
                  double *p, double *tmp);
/* The temperature T in [DX_T_MIN, DX_T_MAX] minimising the mean negative log-likelihood of y
 * under dx_tta_probs(z, V, ., T) (Guo et al. 2017's temperature scaling, applied to the
 * view-averaged probabilities): a 41-point grid over log T refined by golden-section search.
 * V = 1 is plain temperature scaling. *nll (nullable) gets that mean negative log-likelihood
 * at the returned T. LP_EINVAL (no rows, V outside 1..DX_TTA_MAX), LP_ENOMEM. Thread-safe. */
lp_status dx_fit_temperature(const float *z, int V, const int32_t *y, size_t n, size_t k,
                             double *T, double *nll, lp_err *err);

/* Train on X (n, c h w) floats in [0, 1] with labels y in [0, k); X_valid / y_valid (n_valid)
 * may be NULL, then valid_frac of the training rows (stratified-free seeded split) is held
 * out. Fits the network, a temperature on the validation logits (ECE before and after kept
 * for the model card), per-feature mean and variance of the penultimate features of the
 * training rows, and the OOD threshold. classes (k names) are copied. *out is new. */
/* Epochs of image training: o->epochs when set, else 12 up to 10,000 training images and,
 * above that, as many as make about 120,000 image passes (3 at the least). */
int dx_image_epochs(const dx_train_opts *o, size_t n_train);
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
/* Epochs the model was trained for. */
int dx_image_model_epochs(const dx_image_model *m);

/* One answer. probs are calibrated (softmax(z / T)); order ranks classes by probability;
 * labels[j] names class j (strings owned by the model that answered). */
/* The most classes a diagnosis model takes (image, text and tabular). */
#define DX_MAX_CLASSES 256
/* The most a text model asks of a text's known-word share: 3 of 4 words. */
#define DX_TEXT_MAX_KNOWN_SHARE 0.75
/* IDX images larger than this on a side are trained at 28x28 unless --size says otherwise */
#define DX_IDX_MAX_SIDE 64

typedef struct dx_answer {
    size_t k;
    double probs[DX_MAX_CLASSES];
    size_t order[DX_MAX_CLASSES];
    const char *labels[DX_MAX_CLASSES];
    double ood;         /* distance of the penultimate features to the training ones */
    bool abstain;
    bool out_of_dist;   /* abstaining because the input is unlike the training data */
    char reason[256];   /* empty when not abstaining */
} dx_answer;

/* The monitor's drift reference of a model (monitor.h): "top_probability" (the calibrated top
 * probability) and "ood_score" (the answer's ood) of the validation rows at training time; NULL
 * for a model saved before it existed. Owned by m. */
const lp_drift *dx_image_model_drift(const dx_image_model *m);

/* Prevalence (label shift). The class mix the model's probabilities are calibrated to (the
 * validation split's; NULL for a file saved before it was stored), and the one predictions are
 * made at (the calibrated one unless set). */
const double *dx_image_model_prior(const dx_image_model *m);
const double *dx_image_model_prevalence(const dx_image_model *m);
/* Predict at class mix `to` (k values in (0, 1) summing to 1; NULL: back to the calibrated
 * mix): probabilities re-weighted by to / prior (Saerens et al. 2002) before ranking and the
 * low-confidence abstention; the model card's calibration.prevalence says so, with `source`
 * ("given", "estimated ..."). LP_EUNSUPPORTED for a model without a stored prior. Not
 * thread-safe: call before predicting from several threads. */
lp_status dx_image_model_set_prevalence(dx_image_model *m, const double *to, const char *source,
                                        lp_err *err);
/* Parse "LABEL=P[,LABEL=P...]" into to (k): named classes get P in (0, 1); the others share
 * what is left in proportion to the calibrated mix (naming every class: the P must sum to 1).
 * Errors name the label or value. */
lp_status dx_prevalence_parse(const dx_image_model *m, const char *spec, double *to, lp_err *err);
/* Estimate the class mix of n unlabeled images X by EM over their calibrated probabilities
 * (lp_prior_shift_em, from the calibrated mix; at most 1000 rounds, tolerance 1e-8). */
lp_status dx_prevalence_estimate(const dx_image_model *m, const float *X, size_t n, double *to,
                                 int *iters, lp_err *err);

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
 * one-vs-rest over the classes present, see dx_auroc), ECE (15 bins, calibrated), top-3
 * accuracy, abstentions. */
typedef struct dx_eval {
    size_t n, abstained;
    double accuracy, macro_f1, auroc, ece, top3_accuracy;
    size_t auroc_classes;   /* classes the AUROC averages (0: auroc is NaN) */
    char auroc_note[160];   /* why auroc is NaN, or which classes it left out; "" otherwise */
} dx_eval;
/* AUROC of probabilities p (n, k) against y (n; rows outside [0, k) are skipped). Binary
 * (k == 2): of P(class 1), NaN when one class is absent. k > 2: the mean one-vs-rest AUROC of
 * column c against (y == c) over the classes c present in y (a class without a positive row
 * has no one-vs-rest curve; a test set often lacks a rare class, or IDX labels 0, 1, 5 leave
 * classes 2..4 empty), NaN when fewer than 2 are present: equal to sklearn's macro OvR when
 * every class is present. *used gets the classes averaged, note (cap bytes) the reason for a
 * NaN or the count of classes left out. LP_ENOMEM only. */
lp_status dx_auroc(const int32_t *y, const double *p, size_t n, size_t k, double *auroc,
                   size_t *used, char *note, size_t cap, lp_err *err);
lp_status dx_image_eval(const dx_image_model *m, const float *X, const int32_t *y, size_t n,
                        dx_eval *out, lp_err *err);
/* The same metrics from answers a (n) already computed, y (n) in [0, k). */
lp_status dx_eval_answers(const dx_answer *a, const int32_t *y, size_t n, size_t k,
                          dx_eval *out, lp_err *err);
/* Rank a->probs[0..k) into a->order (descending, stable). */
void dx_answer_rank(dx_answer *a);

/* ---- the text model ------------------------------------------------------------------------
 * Multinomial (binary: binary) logistic regression on TF-IDF features of one text column
 * (word 1..text_ngram_max grams: libcore's lp_model with a one-step pipeline), plus what
 * trust needs: a temperature fitted on the validation logits, the share of a text's words
 * the vocabulary knows (the out-of-distribution score: a text with no known word, or with a
 * share below the validation texts' (1 - ood_quantile) quantile or DX_TEXT_MAX_KNOWN_SHARE,
 * whichever is lower, abstains) and exact
 * per-token contributions. Saved as an ordinary lp_model .lpm with a "dx.text" section (JSON:
 * version, text column, temperature, thresholds, model card). Immutable after training /
 * loading; every call below is thread-safe. */
typedef struct dx_text_model dx_text_model;

/* Train on the file's text_col and label_col (CSV / TSV / JSONL; NULL: "text" / "label", or
 * when the file has no such column the one named like symptoms / description / transcription
 * or disease / diagnosis / condition, else the other of two columns, with a warning; the card
 * keeps the names read, and eval reads a file without them the same way); valid_path may be
 * NULL, then valid_frac of the rows (stratified, seeded) is held out to choose C (o->text_c 0),
 * fit the temperature and thresholds and measure the validation metrics, and the final model
 * is refit on every row with that C (o->text_refit). Rows with a missing label are skipped;
 * a missing text is the empty text. More than DX_MAX_CLASSES classes or fewer than 2 is
 * LP_EINVAL. *out is new. */
lp_status dx_text_train(const char *path, const char *valid_path, const char *text_col,
                        const char *label_col, const dx_train_opts *o, dx_text_model **out,
                        lp_err *err);
void dx_text_model_free(dx_text_model *m);
lp_status dx_text_model_save(const dx_text_model *m, const char *path, lp_err *err);
/* LP_EFORMAT "not a lepton-diagnosis text model" for an .lpm without the dx.text section. */
lp_status dx_text_model_load(const char *path, dx_text_model **out, lp_err *err);
size_t dx_text_model_classes(const dx_text_model *m);
const char *dx_text_model_class(const dx_text_model *m, size_t j);
const char *dx_text_model_version(const dx_text_model *m); /* "text-<12 hex>" */
const char *dx_text_model_card(const dx_text_model *m);    /* JSON text owned by m */
/* A drift reference from answers a (n): numeric features "top_probability" and "ood_score".
 * *out is new (lp_drift_free). */
lp_status dx_drift_fit(const dx_answer *a, size_t n, lp_drift **out, lp_err *err);
/* As dx_image_model_drift, for the text model (validation split; ood = 1 - known share). */
const lp_drift *dx_text_model_drift(const dx_text_model *m);

/* Answer one text. LP_EINVAL for an empty (or all-blank) text, LP_EPARSE for invalid UTF-8. A
 * text with no word the vocabulary knows (another language, another domain) is ANSWERED with
 * abstain = true and that reason (ood = 1 - known share). */
lp_status dx_text_predict(const dx_text_model *m, const char *text, dx_answer *out,
                          lp_err *err);

/* Exact linear attributions of class cls's logit (binary: its log-odds) for one text, per
 * token: the TF-IDF column of term t contributes coef[cls][t] * x_t (the linear model's
 * Shapley values against the empty text); a bigram's share is split equally between its two
 * words. tokens are the text's distinct words in order of first appearance (a word outside
 * the vocabulary gets 0); base + sum of contributions == logit within float rounding. */
typedef struct dx_token {
    char *token;
    double contribution;
} dx_token;
typedef struct dx_text_expl {
    size_t n;
    dx_token *tokens; /* (n), owned; release with dx_text_expl_clear */
    double base, logit;
} dx_text_expl;
lp_status dx_text_explain(const dx_text_model *m, const char *text, size_t cls,
                          dx_text_expl *out, lp_err *err);
void dx_text_expl_clear(dx_text_expl *e);

/* Metrics of m on the labelled rows of the file (a label the model never saw is LP_EINVAL
 * naming its row). Columns: text_col / label_col where given (non-NULL), else the training
 * file's names, else (neither present) `text` / `label` or guessed, with a warning. */
lp_status dx_text_eval(const dx_text_model *m, const char *path, const char *text_col,
                       const char *label_col, dx_eval *out, lp_err *err);

/* Late fusion of two calibrated answers a and b (image and text) over the labels they share
 * (matched by name): p(c) proportional to p_a(c) * p_b(c) (the product rule for modalities
 * conditionally independent given the class; each answer renormalised over the shared labels
 * first, which the final normalisation subsumes). out's labels point into a's. Abstains when
 * either answer abstained for being out of distribution, or when the fused top probability is
 * below abstain_p. LP_EUNSUPPORTED naming both label lists when fewer than 2 labels are shared;
 * *dropped (may be NULL) gets how many labels of a and b were left out. */
lp_status dx_fuse(const dx_answer *a, const dx_answer *b, double abstain_p, dx_answer *out,
                  size_t *dropped, lp_err *err);
/* The abstention threshold of a model (its calibrated top-probability floor). */
double dx_image_model_abstain_p(const dx_image_model *m);

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
/* Store the label a clinician confirmed for answer id (any non-empty text; replaces an
 * earlier one) in the feedback table, never in the chained rows. LP_ENOTFOUND when no answer
 * has that id. Durable before returning. Thread-safe. */
lp_status dx_audit_feedback(dx_audit *a, int64_t id, const char *label, lp_err *err);
/* Over the latest `window` answers with feedback (by answer id): *n of them, *correct whose
 * top-1 label (the first of the stored differential) equals the confirmed label. Thread-safe. */
lp_status dx_audit_live(dx_audit *a, size_t window, size_t *n, size_t *correct, lp_err *err);
/* Check the whole chain; LP_EFORMAT naming the first bad row ("row 7: hash does not match
 * its contents (edited)", "row 8: previous hash does not match row 6 (row 7 deleted?)"). */
lp_status dx_audit_verify(const char *path, size_t *n_rows, lp_err *err);

/* ---- the tabular model (dx_tabular.c) ------------------------------------------------------
 * Logistic regression (libcore's lp_model, default pipeline: standard scaling, one-hot) on a
 * CSV with a label column, its inverse regularization C chosen by 5-fold cross-validated
 * accuracy on the training file over {0.01, 0.03, 0.1, 0.3, 1, 3, 10} (the smallest C among
 * ties, sklearn LogisticRegressionCV's rule). Left out of the features: a column named "row",
 * the columns of o->drop_cols, and row identifiers as lepton train finds them
 * (lp_frame_identifier_cols: all distinct, and named as an id or one word per value over 20+
 * rows), plus in a file without a header line an all-distinct integer column cJ. The
 * final model is fitted with that C on every training row by lp_model_train (its header's
 * validation metrics are valid_path's, or without one the training rows' own).
 * Calibration: a temperature (p_c proportional to p_c^(1/T), i.e. softmax(log p / T)) fitted
 * by likelihood on the out-of-fold probabilities at that C, with their ECE before and after;
 * abstention below o->abstain_p of calibrated top probability. Saved with the model as its
 * "dx.tabular" section. Classification with 2..DX_MAX_CLASSES classes is calibrated; otherwise
 * T = 1. */
typedef struct dx_tabular_info {
    double C, cv_accuracy;       /* the chosen C and its mean fold accuracy */
    double T;                    /* temperature in [DX_T_MIN, DX_T_MAX] (1: none) */
    double ece_before, ece_after; /* out-of-fold ECE (15 bins) at T = 1 and at T (NaN: none) */
    double abstain_p;            /* abstain below this calibrated top probability */
    char dropped[512];           /* the columns left out, comma-separated ("" none) */
} dx_tabular_info;

/* *info gets what was chosen and fitted. *out is new. LP_ENOTFOUND naming a drop column the
 * file lacks; LP_EINVAL naming the file for fewer than 10 rows, a label with more than
 * DX_MAX_CLASSES distinct values (a numeric target: this is a classifier) or a class with a
 * single row (the folds need two). */
lp_status dx_tabular_train(const char *path, const char *valid_path, const char *label,
                           const dx_train_opts *o, lp_model **out, dx_tabular_info *info,
                           lp_err *err);
/* The section of a trained model: LP_ENOTFOUND for a model without one (then *out is T = 1,
 * no abstention), LP_EFORMAT for a damaged one. */
lp_status dx_tabular_info_get(const lp_model *m, dx_tabular_info *out, lp_err *err);
/* Calibrate probabilities p (n, k) in place: p_c^(1/T), renormalised per row. */
void dx_tabular_apply(const dx_tabular_info *info, double *p, size_t n, size_t k);

/* ---- the service (dx_service.c) ------------------------------------------------------------
 * State of lepton-diagnosis's HTTP API: the models (one per modality, either may be NULL, not
 * both) and the audit trail. Routes: POST /v1/diagnose, GET /v1/audit/{id}, GET
 * /v1/model-card, POST /v1/feedback, GET /v1/monitor (see docs/diagnosis.openapi.yaml);
 * lp_server adds the shared endpoints. */
typedef struct dx_service dx_service;
/* Takes ownership of img and txt (freed on failure too); opens the audit database db.
 * store_text: keep the request text (PCRE2-redacted) in the audit rows. */
lp_status dx_service_new(dx_image_model *img, dx_text_model *txt, const char *db,
                         bool store_text, dx_service **out, lp_err *err);
void dx_service_free(dx_service *s);
/* The static route table (user data: the dx_service). */
const lp_route *dx_service_routes(size_t *n);
/* Labels the image and text models share (0 unless both are loaded). */
size_t dx_service_shared_labels(const dx_service *s);
/* "cnn-...", "text-..." or "cnn-...+text-..." into buf. */
void dx_service_version(const dx_service *s, char *buf, size_t cap);

/* Redact e-mail addresses and phone numbers (PCRE2) into a new string (caller frees). */
char *dx_redact(const char *text);

#endif
