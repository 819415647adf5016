/*
 * family.h - the table every model family fills so lp_model can train, predict, save and load
 * it without knowing which family it is (private to the model module).
 *
 * Families see features only: a design matrix (dense or CSR float, from the fitted feature
 * pipeline) and an encoded target. Outputs are in a fixed shape per task:
 *   regression: out (n, 1) the predicted value;
 *   binary:     out (n, 2) [P(class 0), P(class 1)];
 *   multiclass: out (n, k) class probabilities.
 */
#ifndef LEPTON_MODEL_FAMILY_H
#define LEPTON_MODEL_FAMILY_H

#include "lepton/model.h"
#include "model/linear.h"
#include "lepton/linalg.h"

typedef struct lp_target {
    lp_task task;
    size_t n;
    size_t n_classes;    /* 0 for regression */
    const double *y;     /* (n,) regression values, or class indices as doubles */
    const int32_t *cls;  /* (n,) class indices (classification), else NULL */
} lp_target;

typedef struct lp_family {
    lp_model_kind kind;
    const char *name;
    bool wants_dense;      /* false: accepts CSR designs (linear, logistic) */
    const char *const *param_keys; /* NULL-terminated, for lp_params_check_unknown */
    /* Fit on x / y; xv / yv (may be NULL) is the validation set for early stopping. */
    lp_status (*fit)(const lp_design *x, const lp_target *y, const lp_design *xv,
                     const lp_target *yv, const lp_params *p, uint64_t seed, int threads,
                     void **impl, lp_err *err);
    /* Outputs (see above) for x. */
    lp_status (*predict)(const void *impl, lp_task task, const lp_design *x, double *out,
                         lp_err *err);
    lp_status (*save)(const void *impl, lp_buf *b, lp_err *err);
    lp_status (*load)(const void *data, size_t len, void **impl, lp_err *err);
    void (*free)(void *impl);
    /* A short JSON object text describing the fitted model (sizes, iterations); caller frees. */
    char *(*describe)(const void *impl);
} lp_family;

extern const lp_family lp_family_linear;
extern const lp_family lp_family_logistic;
extern const lp_family lp_family_gbdt;
extern const lp_family lp_family_nn;

const lp_family *lp_family_get(lp_model_kind kind);

/* ---- private accessors of lp_model for modules beside it (explain) ---- */
/* The family's fitted state: lp_gbdt * (gbdt), lp_linear * (linear, logistic). Owned by m. */
const void *lp_model_impl(const lp_model *m);
/* The fitted feature pipeline (design column names); owned by m. */
const struct lp_pipeline *lp_model_pipeline(const lp_model *m);
/* Raw rows -> the dense design the family sees (n, n_features): input selection and kind
 * conversion, the fitted cleaner, the pipeline. *out is new (lp_matf_free). Errors as for
 * lp_model_predict. Thread-safe. */
lp_status lp_model_design(const lp_model *m, const lp_frame *rows, lp_matf **out,
                          lp_err *err);
/* The fitted cleaner and the family table of m (for the prepared predictor); owned by m. */
const struct lp_cleaner *lp_model_cleaner(const lp_model *m);
const lp_family *lp_model_family(const lp_model *m);
/* Floats of dense design one lp_predictor_run chunk holds (default 2^20); tests lower it to
 * exercise chunking. Not thread-safe against runs of p. */
void lp_predictor_set_chunk(lp_predictor *p, size_t floats);

#endif
