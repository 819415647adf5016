/*
 * model.h - one handle for every model family: linear (least squares, ridge, lasso,
 * elastic-net), logistic, nn, gbdt (and mf, for recommendations, in its own header).
 *
 * An lp_model is a fitted, immutable object holding everything prediction needs: the input
 * schema (column names and kinds as in the training data), the fitted cleaner (imputation) and
 * feature pipeline, the family's parameters, the label's classes, and the metrics measured on
 * the validation split at training time. It is saved as one .lpm file (docs/model-format.md),
 * so `predict` and `serve` take raw rows. Fitted models may be shared by threads.
 *
 * Hyper-parameters travel as lp_params, a list of "key=value" strings, so the CLI's
 * `--param k=v` and a tuner's trials need no per-family structs; each family validates its
 * keys and rejects unknown ones, naming the key and the ones it knows.
 */
#ifndef LEPTON_MODEL_H
#define LEPTON_MODEL_H

#include "lepton/base.h"
#include "lepton/data.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lp_model_kind {
    LP_MODEL_KIND_LINEAR = 0, /* regression: least squares, ridge, lasso, elastic-net */
    LP_MODEL_KIND_LOGISTIC,   /* classification: binary or multinomial */
    LP_MODEL_KIND_NN,         /* dense network, classification or regression */
    LP_MODEL_KIND_GBDT,       /* histogram gradient boosting, classification or regression */
    LP_MODEL_KIND_COUNT_
} lp_model_kind;

typedef enum lp_task {
    LP_TASK_REGRESSION = 0,
    LP_TASK_BINARY,
    LP_TASK_MULTICLASS
} lp_task;

const char *lp_model_kind_name(lp_model_kind k); /* "linear", "logistic", "nn", "gbdt" */
lp_status lp_model_kind_parse(const char *s, lp_model_kind *out, lp_err *err);
const char *lp_task_name(lp_task t); /* "regression", "binary", "multiclass" */

/* ---- parameters ----------------------------------------------------------------------------*/
typedef struct lp_params lp_params;

lp_params *lp_params_new(void);
void lp_params_free(lp_params *p);
lp_params *lp_params_clone(const lp_params *p);
/* Add "key=value" (a later value for the same key replaces the earlier). LP_EINVAL when the
 * text has no '=' or an empty key. */
lp_status lp_params_parse(lp_params *p, const char *kv, lp_err *err);
lp_status lp_params_set(lp_params *p, const char *key, const char *value, lp_err *err);
lp_status lp_params_set_double(lp_params *p, const char *key, double v, lp_err *err);
size_t lp_params_count(const lp_params *p);
const char *lp_params_key(const lp_params *p, size_t i);
const char *lp_params_value(const lp_params *p, size_t i);
/* The raw value of key, or NULL. */
const char *lp_params_get(const lp_params *p, const char *key);
/* Typed getters: *out keeps def when the key is absent; a present value must parse and lie in
 * [min, max], else LP_EINVAL "max_depth=-3: must be an integer in [0, 64]". */
lp_status lp_params_int(const lp_params *p, const char *key, long def, long min, long max,
                        long *out, lp_err *err);
lp_status lp_params_double(const lp_params *p, const char *key, double def, double min,
                           double max, double *out, lp_err *err);
lp_status lp_params_bool(const lp_params *p, const char *key, bool def, bool *out, lp_err *err);
/* One of choices (NULL-terminated); *out is the index. */
lp_status lp_params_choice(const lp_params *p, const char *key, const char *const *choices,
                           size_t def, size_t *out, lp_err *err);
/* LP_EINVAL naming the first key no getter asked for: "unknown parameter 'foo' for gbdt
 * (known: learning_rate, max_depth, ...)". known is a NULL-terminated list. */
lp_status lp_params_check_unknown(const lp_params *p, const char *family,
                                  const char *const *known, lp_err *err);
/* The parameters as a JSON object text (values that parse as numbers written as numbers).
 * Caller frees. NULL on allocation failure. */
char *lp_params_to_json(const lp_params *p);


/* ---- the model handle ----------------------------------------------------------------------*/
typedef struct lp_model lp_model;

typedef struct lp_train_opts {
    lp_model_kind kind;
    const char *label;          /* the label column (required) */
    const lp_params *params;    /* family parameters, plus the generic "task" (auto |
                                   regression | classification; gbdt and nn only) and
                                   "threads"; may be NULL */
    const char *const *drop;    /* columns to leave out of the features (ids, leaks) */
    size_t n_drop;
    double valid_frac;          /* with no validation frame: share of rows held out, stratified
                                   for classification (default 0.2) */
    uint64_t seed;              /* every random choice (default 42) */
    const char *data_name;      /* provenance for the header (e.g. the file path); may be NULL */
    const char *data_sha256;    /* fingerprint of the training file; may be NULL */
    /* An unfitted feature pipeline (feat.h) to use instead of the default one built from the
     * column kinds; the model fits and keeps a copy, the caller keeps this one. May be NULL. */
    const struct lp_pipeline *pipeline;
} lp_train_opts;

lp_train_opts lp_train_opts_default(void);

/* Train a model on train (raw columns as read from CSV: the label and the features).
 * The flow: drop rows whose label is missing; split off a validation set unless valid is given;
 * fit an imputer (median / most frequent) and the default feature pipeline (feat.h) on the
 * training rows; fit the family; measure validation metrics; keep a drift reference of the
 * training features and the validation scores (monitor.h).
 * Task: linear is regression, logistic classification; gbdt and nn follow the "task" parameter,
 * whose "auto" makes a categorical, text or bool label, or an integer label with at most 20
 * distinct values, a classification (binary with 2 classes) and anything else a regression.
 * Classes are the label's distinct values as text, in sorted order (numeric order for numbers).
 * Errors (one line each): LP_ENOTFOUND for a missing label or drop column; LP_EINVAL for one
 * class only, a non-numeric label for regression, an empty training set, bad parameters
 * ("max_depth=-3: must be an integer in [0, 64]"); LP_ENUMERIC; LP_ENOMEM.
 * *out is new; free with lp_model_free. */
lp_status lp_model_train(const lp_frame *train, const lp_frame *valid, const lp_train_opts *o,
                         lp_model **out, lp_err *err);
void lp_model_free(lp_model *m);

/* Save as one .lpm file (atomic write) / load and validate one. A seeded training run repeated
 * gives the same file except for the header's created_at, which SOURCE_DATE_EPOCH pins. */
lp_status lp_model_save(const lp_model *m, const char *path, lp_err *err);
lp_status lp_model_load(const char *path, lp_model **out, lp_err *err);

lp_model_kind lp_model_get_kind(const lp_model *m);
lp_task lp_model_task(const lp_model *m);
const char *lp_model_label(const lp_model *m);
size_t lp_model_n_classes(const lp_model *m);          /* 0 for regression */
const char *lp_model_class(const lp_model *m, size_t k); /* class k's label text */
size_t lp_model_n_inputs(const lp_model *m);            /* raw input columns */
const char *lp_model_input_name(const lp_model *m, size_t j);
lp_col_kind lp_model_input_kind(const lp_model *m, size_t j);
/* The model file's JSON header (kind, task, label, classes, features, metrics, params, data,
 * created_at); owned by m. */
const char *lp_model_header(const lp_model *m);
/* Extra named sections saved with the model, for layers above this one (the monitor's drift
 * reference, an app's settings): set copies the bytes (replacing a section of that name);
 * get gives a pointer owned by m or LP_ENOTFOUND. Names as for .lpm sections; the model's own
 * names (header, cleaner, pipeline, model) are refused. set is not thread-safe. */
lp_status lp_model_set_extra(lp_model *m, const char *name, const void *data, size_t len,
                             lp_err *err);
lp_status lp_model_get_extra(const lp_model *m, const char *name, const void **data, size_t *len,
                             lp_err *err);
/* Scores of the validation rows measured at training time (P(class 1) for binary, the top
 * probability for multiclass, the value for regression), for reference distributions. Only
 * after lp_model_train (not saved): *n is 0 for a loaded model. */
const double *lp_model_valid_scores(const lp_model *m, size_t *n);

typedef struct lp_predictions {
    lp_task task;
    size_t n, k;   /* rows; outputs per row: 1 (regression) or the class count */
    double *out;   /* (n, k): values, or class probabilities */
    int32_t *cls;  /* (n,) most probable class (classification), else NULL */
} lp_predictions;

void lp_predictions_clear(lp_predictions *p);

/* Predict raw rows (columns by name as in training; extra columns ignored; a column typed
 * differently is converted, e.g. "01234" read as an integer becomes the category "1234" only if
 * it cannot be kept as text — see lp_column_convert). Errors: LP_ENOTFOUND naming a missing
 * input column, LP_EPARSE naming a cell that does not convert. Thread-safe. */
lp_status lp_model_predict(const lp_model *m, const lp_frame *rows, lp_predictions *out,
                           lp_err *err);

/* ---- prepared predictor: one row (or a few) without frames ------------------------------------
 * lp_model_predict builds frames per call (input selection, the cleaner's copy, the pipeline's
 * blocks): tens of mallocs and ~20 us for one row. A predictor is prepared once per model: the
 * input columns, the cleaner's fills and fences and the pipeline's steps are bound to input
 * slots, so a row given as flat arrays is cleaned and featurized in place into a per-thread
 * scratch and handed to the family as a dense design. Results equal lp_model_predict on the
 * same rows bit for bit (same operations in the same order; tests/unit/test_predictor.c).
 * Steady state (a scratch that has seen the model): no allocation per row for gbdt, linear
 * and logistic models without text columns. Text columns (TF-IDF, text hashing) allocate inside
 * the tokenizer; nn allocates in its forward pass. A model whose cleaner soft-imputes, flags or
 * drops outliers (not made by lp_model_train) is predicted through frames (correct, slower);
 * lp_predictor_path says which. A scratch holds at most 4 MiB of dense design: wider batches
 * are scored in chunks of rows (nn: through frames). */
typedef struct lp_predictor lp_predictor;
typedef struct lp_predict_scratch lp_predict_scratch;

/* One raw row by input slot j = 0..lp_model_n_inputs(m)-1 (lp_model_input_name / _kind). */
typedef struct lp_row_view {
    const double *num;      /* (n_inputs,) numeric inputs (integer, float, bool 0/1, date-time
                               as epoch seconds); NaN = missing; string slots are ignored */
    const char *const *str; /* (n_inputs,) categorical and text inputs; NULL = missing; numeric
                               slots are ignored; may be NULL when no input is a string */
} lp_row_view;

/* Prepare m for row prediction. m must outlive the predictor. LP_ENOMEM. *out is new; free with
 * lp_predictor_free. The predictor is immutable and may be shared by threads. */
lp_status lp_predictor_new(const lp_model *m, lp_predictor **out, lp_err *err);
void lp_predictor_free(lp_predictor *p);
/* "row", "row (text steps allocate)" or "frame: <reason>" - the path rows take. Owned by p. */
const char *lp_predictor_path(const lp_predictor *p);
/* Outputs per row: 1 (regression) or the class count, as lp_predictions.k. */
size_t lp_predictor_n_outputs(const lp_predictor *p);

/* Per-thread working memory; it grows to the largest model and batch it has seen and never
 * shrinks. Not thread-safe: one per thread. NULL on allocation failure. */
lp_predict_scratch *lp_predict_scratch_new(void);
void lp_predict_scratch_free(lp_predict_scratch *s);

/* Predict rows[0..n) into out (n, k) (values or class probabilities, as lp_predictions.out)
 * and cls (n,) (the most probable class; may be NULL; untouched for regression). Errors as
 * lp_model_predict (LP_EINVAL from a family rejecting a value, LP_ENOMEM). Thread-safe for
 * distinct scratches. */
lp_status lp_predictor_run(const lp_predictor *p, const lp_row_view *rows, size_t n,
                           lp_predict_scratch *s, double *out, int32_t *cls, lp_err *err);

typedef struct lp_eval {
    lp_task task;
    size_t n;
    double accuracy, macro_f1, auroc, auprc, logloss; /* classification (NaN otherwise) */
    double rmse, mae, r2;                             /* regression (NaN otherwise) */
} lp_eval;

/* Metrics of m on data (which holds the label column). Multiclass AUROC and AUPRC are
 * one-vs-rest macro averages. A label value never seen in training is LP_EINVAL naming it
 * and its row. */
lp_status lp_model_evaluate(const lp_model *m, const lp_frame *data, lp_eval *out, lp_err *err);
/* The metrics as a JSON object (classification: n, accuracy, macro_f1, auroc, auprc, logloss;
 * regression: n, rmse, mae, r2; NaN as null). Caller frees. */
char *lp_eval_to_json(const lp_eval *e);

#ifdef __cplusplus
}
#endif
#endif
