/*
 * pipeline_internal.h - the fitted state of lp_pipeline, shared by pipeline.c (fit, frame
 * transform, serialisation) and pipeline_row.c (the one-row transform used by the prepared
 * predictor). Not public.
 *
 * The row transform reuses the frame path's per-cell helpers declared here (the raw block of a
 * numeric step, its scaling, the text of a cell), so both paths compute every value with the same
 * operations in the same order and agree bit for bit.
 */
#ifndef LEPTON_FEAT_PIPELINE_INTERNAL_H
#define LEPTON_FEAT_PIPELINE_INTERNAL_H

#include "feat/feat_internal.h"

#define DT_FEATURES 5

typedef struct step {
    lp_step_opts o;
    char *pattern;    /* owned copy of o.text.analyzer.token_pattern */
    char **cols;      /* (n_cols,) */
    size_t n_cols;
    uint8_t *col_type; /* (n_cols,) lp_col_type seen at fit */
    size_t n_out;
    char **names;     /* (n_out,) */
    lp_scaler *scaler; /* SCALE: over the columns; DATETIME: over their epoch seconds */
    lp_onehot **oh;   /* ONEHOT: (n_cols,) */
    lp_textvec **tv;  /* TFIDF: (n_cols,); HASH: (n_cols,), set for text columns only */
    lp_pca *pca;
} step;

struct lp_pipeline {
    step *steps;
    size_t n_steps;
    bool fitted;
    size_t n_out;
    const char **names; /* (n_out,) borrowed from the steps */
};

/* Cell i as a string (NULL when missing); numbers formatted by lp_column_cell_str into buf. */
const char *lp_step_cell_str(const lp_column *c, size_t i, char *buf, size_t cap);
/* PASSTHROUGH, SCALE and DATETIME: steps whose block is dense numeric. */
bool lp_step_is_numeric(lp_step_kind k);
/* Width of a numeric step's raw block: n_cols, or DT_FEATURES per column for DATETIME. */
size_t lp_step_block_width(const step *s);
/* Raw dense block x (n, w) of a numeric step before scaling: the values, or for DATETIME the
 * cyclic features with the raw epoch in the 5th slot. cols (n_cols,) are the step's columns. */
void lp_step_raw_block(const step *s, const lp_column **cols, size_t n, double *x);
/* Scale a raw block in place (SCALE: all columns; DATETIME: the epoch slots). */
void lp_step_scale_block(const step *s, double *x, size_t n);
/* LP_EINVAL when a numeric step's output y (n rows of k values) holds a finite value beyond
 * float's range (the designs are float: it would become an infinity, and a network's answer
 * NaN), naming the row and the input column (or PCA component). NaN (missing) passes. */
lp_status lp_step_check_range(const step *s, const double *y, size_t n, size_t k, lp_err *err);

/* ---- the one-row transform (pipeline_row.c) ---------------------------------------------- */

/* Step columns bound to the slots of an input row: slot[q] is the input of the q-th column
 * over all steps (steps in order, each step's columns in order). */
typedef struct lp_pipeline_rowplan {
    uint32_t *slot;    /* (total columns,) */
    size_t n_slots;
    size_t work_dbl;   /* doubles of work a row needs (largest numeric block plus its PCA) */
    bool has_text;     /* a TF-IDF or text HASH step (these allocate per row, see below) */
} lp_pipeline_rowplan;

/* Bind the fitted pipeline p to an input row of n columns named names[] with storage types
 * types[] (as the pipeline's frame would have them). ok is false, and why names the reason,
 * when a step column is not among the inputs or a numeric step's column is not numeric: the
 * caller then uses the frame path (which reports that error). LP_ENOMEM; LP_ESTATE before fit. */
lp_status lp_pipeline_rowplan_init(const lp_pipeline *p, const char *const *names,
                                   const lp_col_type *types, size_t n, lp_pipeline_rowplan *plan,
                                   bool *ok, const char **why, lp_err *err);
void lp_pipeline_rowplan_clear(lp_pipeline_rowplan *plan);

/* Per-call working memory the caller keeps between rows (zero-initialise; grows, never
 * shrinks; free with lp_pipeline_rowwork_clear). */
typedef struct lp_pipeline_rowwork {
    double *dbl;       /* (cap_dbl,) a numeric block and its PCA output */
    size_t cap_dbl;
    char *key;         /* hash key "<col>=<value>" */
    size_t cap_key;
} lp_pipeline_rowwork;

void lp_pipeline_rowwork_clear(lp_pipeline_rowwork *w);

/* Features of one row into out (n_features,), which the call overwrites entirely. cols (n,) are
 * one-row columns (n == 1) of the inputs the plan was bound to, cleaned as the frame path
 * cleans them. The values equal row i of lp_pipeline_transform_dense on the equivalent frame,
 * bit for bit (same operations in the same order; zeros as +0.0f as the CSR join makes them).
 * TF-IDF and text HASH steps call lp_textvec_transform on the one document, which allocates;
 * every other step runs in w without allocating once w has grown. LP_ENOMEM. Thread-safe for
 * distinct w. */
lp_status lp_pipeline_row_transform(const lp_pipeline *p, const lp_pipeline_rowplan *plan,
                                    const lp_column *const *cols, lp_pipeline_rowwork *w,
                                    float *out, lp_err *err);

#endif
