/*
 * feat.h - features from frames: scalers, one-hot encoding, the hashing trick, PCA, and the
 * fitted column pipeline (lp_pipeline) that a model file embeds so serving transforms exactly
 * as training did.
 *
 * Compatibility target: scikit-learn 1.2 (StandardScaler, MinMaxScaler, RobustScaler,
 * OneHotEncoder(handle_unknown="ignore"), PCA(svd_solver="full")). Statistics are double;
 * pipeline outputs are float (lp_csr / lp_matf). Missing numeric values are NaN in and NaN out;
 * a missing categorical or text cell encodes as all zeros. Fitted objects are immutable and
 * may be shared by threads.
 */
#ifndef LEPTON_FEAT_H
#define LEPTON_FEAT_H

#include "lepton/base.h"
#include "lepton/data.h"
#include "lepton/linalg.h"
#include "lepton/text.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- scalers ------------------------------------------------------------------------------
 * Every scaler is y = (x - center[j]) / scale[j] + shift:
 *   STANDARD: center = mean, scale = population std (ddof 0)   (with_mean / with_std)
 *   MINMAX:   center = min, scale = (max - min) / (range_max - range_min), shift = range_min
 *   ROBUST:   center = median, scale = percentile(q_hi) - percentile(q_lo), numpy's linear
 *             interpolation                                   (with_centering / with_scaling)
 * NaN cells are ignored when fitting and stay NaN. A constant column gets scale 1 (sklearn's
 * _handle_zeros_in_scale); an all-NaN column gets center 0, scale 1. */
typedef enum lp_scaler_kind {
    LP_SCALER_KIND_STANDARD = 0,
    LP_SCALER_KIND_MINMAX,
    LP_SCALER_KIND_ROBUST
} lp_scaler_kind;

typedef struct lp_scaler_opts {
    lp_scaler_kind kind;
    bool with_mean, with_std;          /* STANDARD, default true */
    double range_min, range_max;       /* MINMAX, default 0, 1; min < max */
    bool with_centering, with_scaling; /* ROBUST, default true */
    double q_lo, q_hi;                 /* ROBUST, default 25, 75; 0 <= lo < hi <= 100 */
} lp_scaler_opts;

lp_scaler_opts lp_scaler_opts_default(lp_scaler_kind kind);
lp_status lp_scaler_opts_check(const lp_scaler_opts *o, lp_err *err);
/* "standard", "minmax", "robust"; parse accepts the same words. */
const char *lp_scaler_kind_name(lp_scaler_kind k);
lp_status lp_scaler_kind_parse(const char *s, lp_scaler_kind *out, lp_err *err);

typedef struct lp_scaler lp_scaler;

/* Fit on x (n, d) row-major. *out is new; caller frees. LP_EINVAL for d == 0. */
lp_status lp_scaler_fit(const lp_scaler_opts *o, const double *x, size_t n, size_t d,
                        lp_scaler **out, lp_err *err);
void lp_scaler_free(lp_scaler *s);
size_t lp_scaler_dim(const lp_scaler *s);
/* y (n, d) = scaled x (n, d); y may equal x. LP_EINVAL when d differs from the fit. */
lp_status lp_scaler_transform(const lp_scaler *s, const double *x, size_t n, size_t d, double *y,
                              lp_err *err);
lp_status lp_scaler_inverse(const lp_scaler *s, const double *y, size_t n, size_t d, double *x,
                            lp_err *err);
/* The fitted center (d,) and scale (d,) arrays, owned by s. */
const double *lp_scaler_center(const lp_scaler *s);
const double *lp_scaler_scale(const lp_scaler *s);

/* ---- one-hot ------------------------------------------------------------------------------
 * Categories sorted by byte (= code point) order like sklearn's np.unique. Optional grouping of
 * rare categories into one trailing "infrequent" output (sklearn 1.2 _identify_infrequent):
 * count < min_frequency is infrequent; then, when more than max_categories outputs would
 * remain, the least frequent (stable by category order) join it until max_categories remain.
 * Unknown values encode as all zeros (handle_unknown="ignore"), as do missing (NULL) ones. */
typedef struct lp_onehot_opts {
    size_t min_frequency;  /* 0 = off */
    size_t max_categories; /* 0 = off; else >= 2 (one of them is the infrequent output) */
} lp_onehot_opts;

lp_onehot_opts lp_onehot_opts_default(void);
lp_status lp_onehot_opts_check(const lp_onehot_opts *o, lp_err *err);

typedef struct lp_onehot lp_onehot;

/* Fit on vals[0..n) (NULL = missing, ignored). LP_EINVAL when no value is present. */
lp_status lp_onehot_fit(const lp_onehot_opts *o, const char *const *vals, size_t n,
                        lp_onehot **out, lp_err *err);
void lp_onehot_free(lp_onehot *oh);
size_t lp_onehot_n_outputs(const lp_onehot *oh);
/* The category of output j, or NULL for the infrequent output (or j out of range). */
const char *lp_onehot_category(const lp_onehot *oh, size_t j);
/* Output column of val: its category, the infrequent output for a rare one seen at fit, or -1
 * for an unknown or NULL value. */
long lp_onehot_index(const lp_onehot *oh, const char *val);

/* ---- PCA ------------------------------------------------------------------------------------
 * sklearn PCA(svd_solver="full"): X centered by its mean, thin SVD Xc = U S Vt (lp_mat_svd),
 * signs fixed by svd_flip(u_based_decision=True) (the largest-|u| entry of each U column is
 * positive), components = first k rows of Vt, explained_variance = S^2 / (n - 1), ratio over
 * the sum of all min(n, d) variances. transform: (x - mean) components^T; inverse: y C + mean. */
typedef struct lp_pca lp_pca;

/* x (n, d) without NaN; 1 <= k <= min(n, d); n >= 2. *out is new; caller frees. */
lp_status lp_pca_fit(const double *x, size_t n, size_t d, size_t k, lp_pca **out, lp_err *err);
void lp_pca_free(lp_pca *p);
size_t lp_pca_dim(const lp_pca *p);          /* d */
size_t lp_pca_n_components(const lp_pca *p); /* k */
const double *lp_pca_mean(const lp_pca *p);  /* (d,) */
const double *lp_pca_components(const lp_pca *p);         /* (k, d) */
const double *lp_pca_explained_variance(const lp_pca *p); /* (k,) */
const double *lp_pca_explained_variance_ratio(const lp_pca *p); /* (k,) */
const double *lp_pca_singular_values(const lp_pca *p);    /* (k,) */
/* y (n, k) from x (n, d); a row with a NaN gives a NaN row. */
void lp_pca_transform(const lp_pca *p, const double *x, size_t n, double *y);
/* x (n, d) from y (n, k). */
void lp_pca_inverse(const lp_pca *p, const double *y, size_t n, double *x);

/* ---- column pipeline ------------------------------------------------------------------------
 * An ordered list of steps; each applies one transform to the named columns. Columns named by
 * no step are dropped (sklearn ColumnTransformer's remainder="drop"). The output is the steps'
 * blocks side by side, in step order, columns in the order given. Output feature names:
 *   SCALE / PASSTHROUGH   "<col>"                        (with PCA: "pca<step>:<k>")
 *   ONEHOT                "<col>=<value>", "<col>=<infrequent>"
 *   HASH                  "<col>:hash:<bucket>"  (categorical: "<col>=<value>" hashed with
 *                          MurmurHash3 and a sign; text columns: the text analyzer's terms)
 *   TFIDF                 "<col>:tfidf:<term>"
 *   DATETIME              "<col>:hour_sin", ":hour_cos", ":dow_sin", ":dow_cos" (cyclic hour of
 *                          day and day of week, UTC; Monday = 0) and "<col>:epoch" (seconds since
 *                          1970 standard-scaled) - cyclic so linear models see 23:00 near 00:00,
 *                          the scaled epoch for trends.
 * DROP consumes its columns and outputs nothing (documents intent; the remainder is dropped
 * anyway). */
typedef enum lp_step_kind {
    LP_STEP_KIND_PASSTHROUGH = 0,
    LP_STEP_KIND_DROP,
    LP_STEP_KIND_SCALE,
    LP_STEP_KIND_ONEHOT,
    LP_STEP_KIND_HASH,
    LP_STEP_KIND_TFIDF,
    LP_STEP_KIND_DATETIME
} lp_step_kind;

/* "passthrough", "drop", "scale", "onehot", "hash", "tfidf", "datetime" */
const char *lp_step_kind_name(lp_step_kind k);
lp_status lp_step_kind_parse(const char *s, lp_step_kind *out, lp_err *err);

typedef struct lp_step_opts {
    lp_step_kind kind;
    lp_scaler_opts scaler;  /* SCALE (DATETIME scales its epoch feature with STANDARD) */
    lp_onehot_opts onehot;  /* ONEHOT */
    uint32_t hash_features; /* HASH: buckets per column, default 1024 */
    lp_textvec_opts text;   /* TFIDF (kind forced to TFIDF); HASH on text columns: analyzer */
    size_t pca_components;  /* PASSTHROUGH / SCALE / DATETIME: 0 = none, else PCA of the block */
} lp_step_opts;

/* Defaults for a kind: standard scaling; TF-IDF of word 1-2 grams, sublinear tf,
 * max_features 20000. */
lp_step_opts lp_step_opts_default(lp_step_kind kind);
lp_status lp_step_opts_check(const lp_step_opts *o, lp_err *err);

typedef struct lp_pipeline lp_pipeline;

/* Empty, unfitted. NULL on allocation failure. */
lp_pipeline *lp_pipeline_new(void);
void lp_pipeline_free(lp_pipeline *p);
/* Append a step over cols[0..n_cols) (names copied; n_cols >= 1). LP_ESTATE once fitted. */
lp_status lp_pipeline_add(lp_pipeline *p, const char *const *cols, size_t n_cols,
                          const lp_step_opts *o, lp_err *err);
size_t lp_pipeline_n_steps(const lp_pipeline *p);
bool lp_pipeline_is_fitted(const lp_pipeline *p);
/* A new unfitted pipeline with the same steps (columns and options) as the unfitted p.
 * LP_ESTATE when p is fitted. */
lp_status lp_pipeline_clone_unfitted(const lp_pipeline *p, lp_pipeline **out, lp_err *err);

/* Fit every step on train. Errors name the step and column: LP_ENOTFOUND for a missing column,
 * LP_EINVAL for a column of the wrong type (numeric steps need numeric columns), no rows, PCA
 * over missing values, an empty TF-IDF vocabulary. Single-threaded; the pipeline is not usable
 * by other threads during fit. */
lp_status lp_pipeline_fit(lp_pipeline *p, const lp_frame *train, lp_err *err);
/* Features of f (n, n_features) as a new CSR the caller frees. Columns are found by name (any
 * order, extra columns ignored); a missing one is LP_ENOTFOUND naming it, a numeric step's
 * column that is not numeric is LP_EINVAL. LP_ESTATE before fit. Thread-safe. */
lp_status lp_pipeline_transform(const lp_pipeline *p, const lp_frame *f, lp_csr **out,
                                lp_err *err);
/* Same, dense (n, n_features). */
lp_status lp_pipeline_transform_dense(const lp_pipeline *p, const lp_frame *f, lp_matf **out,
                                      lp_err *err);
size_t lp_pipeline_n_features(const lp_pipeline *p);
/* Name of output feature j (owned by p); NULL when j is out of range or before fit. */
const char *lp_pipeline_feature_name(const lp_pipeline *p, size_t j);

/* Append the fitted pipeline to b: magic "LPPL", u32 version, the steps, CRC-32 of all that.
 * LP_ESTATE before fit, LP_ENOMEM when b failed. */
lp_status lp_pipeline_save(const lp_pipeline *p, lp_buf *b, lp_err *err);
/* Rebuild a fitted pipeline from data[0..len) (exactly one saved pipeline). Checks magic,
 * version (LP_EVERSION), CRC and every size (LP_EFORMAT naming the part); never reads out of
 * bounds. Transforms of the result are bit-identical to the saved pipeline's. */
lp_status lp_pipeline_load(const void *data, size_t len, lp_pipeline **out, lp_err *err);

/* ---- default pipeline from a frame's column kinds ---------------------------------------- */
typedef struct lp_pipeline_default_opts {
    const char *const *exclude; /* columns to leave out (the target, ids); may be NULL */
    size_t n_exclude;
    size_t onehot_max_card;     /* categorical with at most this many values: one-hot, else
                                   hash; default 32 */
    uint32_t hash_features;     /* default 1024 */
} lp_pipeline_default_opts;

lp_pipeline_default_opts lp_pipeline_default_opts_default(void);
/* An unfitted pipeline for f: integer/float/bool -> one SCALE (standard) step; categorical ->
 * ONEHOT (cardinality <= onehot_max_card) or HASH; text -> one TFIDF step per column (defaults
 * of lp_step_opts_default); datetime -> one DATETIME step. A column whose every cell is missing
 * gets no step (it carries nothing, and TFIDF could not fit on it). Excluded names that are
 * not in f are LP_ENOTFOUND (a typo would otherwise leak the target into the features). o may
 * be NULL for the defaults. */
lp_status lp_pipeline_default(const lp_frame *f, const lp_pipeline_default_opts *o,
                              lp_pipeline **out, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
