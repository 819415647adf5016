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

#ifdef __cplusplus
}
#endif
#endif
