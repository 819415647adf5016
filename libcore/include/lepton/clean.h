/*
 * clean.h - data governance over an lp_frame: profiling (a data-quality report as JSON or a
 * table), exact de-duplication, imputation (mean / median / most frequent / constant, and
 * low-rank soft-impute), outlier detection (robust z, IQR fences, PCA reconstruction error)
 * and one fitted, reusable, serialisable transform, lp_cleaner, that applies all of it.
 *
 * What it does not do: read or write files (data.h does), infer column kinds (the frame
 * carries them), or touch the rows of its input (every function returns a new frame).
 * Invariants: a fitted lp_cleaner is immutable, so one may be shared by threads; applying it
 * twice to the same frame gives bit-identical frames; nothing here draws a random number
 * without the seed in its options.
 */
#ifndef LEPTON_CLEAN_H
#define LEPTON_CLEAN_H

#include "lepton/base.h"
#include "lepton/data.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- profiling ------------------------------------------------------------------------------*/

typedef struct lp_profile_opts {
    double high_missing_frac; /* flag a column whose missing share is above this (0.5) */
    double mixed_min_frac;    /* a categorical/text column is "mixed" when at least this share
                                 (0.1) but not all of its non-missing values parse as numbers */
    size_t id_min_rows;       /* an all-distinct integer/categorical/text column with at least
                                 this many values (20) is a likely identifier */
    double iqr_k;             /* outlier fences q1 - k IQR, q3 + k IQR (1.5) */
    size_t top_k;             /* top categories kept per column, 1..LP_PROFILE_TOP_MAX (5) */
} lp_profile_opts;

#define LP_PROFILE_TOP_MAX 16
#define LP_PROFILE_NQ 5 /* quantiles p01, p25, p50, p75, p99 */

lp_profile_opts lp_profile_opts_default(void);
/* LP_EINVAL naming the first field out of range. */
lp_status lp_profile_opts_check(const lp_profile_opts *o, lp_err *err);

typedef struct lp_profile_top {
    char *value; /* owned */
    size_t count;
} lp_profile_top;

/* One column. Numeric statistics are NaN for categorical/text columns and for a numeric
 * column with no value; std is the sample standard deviation (n - 1, as pandas), NaN when
 * fewer than 2 values. Quantiles use numpy's default linear interpolation. */
typedef struct lp_col_profile {
    char *name; /* owned */
    lp_col_type type;
    lp_col_kind kind;
    size_t count;    /* non-missing cells */
    size_t missing;  /* missing cells */
    size_t distinct; /* distinct non-missing values */
    double min, max, mean, std;
    double q[LP_PROFILE_NQ];
    size_t outliers;         /* numeric cells outside the IQR fences (0 for bool and for
                                columns with at most 2 distinct values) */
    double numeric_share;    /* categorical/text: share of values that parse as numbers */
    lp_profile_top top[LP_PROFILE_TOP_MAX]; /* categorical/text: by count desc, value asc */
    size_t n_top;
    bool constant;     /* at least one value and exactly one distinct value */
    bool likely_id;    /* see lp_profile_opts.id_min_rows and lp_profile_frame */
    bool high_missing; /* missing / rows > high_missing_frac */
    bool mixed_types;  /* see lp_profile_opts.mixed_min_frac */
} lp_col_profile;

typedef struct lp_profile {
    size_t rows, cols;
    size_t duplicate_rows; /* rows equal to an earlier row in every column */
    size_t missing_cells;
    lp_col_profile *col; /* (cols,) owned */
} lp_profile;

/* Profile every column of f.
 * likely_id: every non-missing value distinct (at least 2 of them; from 100 values on, 99%
 * distinct is enough, as re-sent duplicate records repeat ids) and either the kind is
 * integer/categorical/text with count >= id_min_rows, or the name has "id" as a word ("id",
 * "user_id", "userId", "ID").
 * opts may be NULL for the defaults. *out is new; free with lp_profile_free.
 * Errors: LP_EINVAL (bad opts, NULL frame), LP_ENOMEM. Thread-safe over a frame nobody writes.
 * Cost: O(rows log rows) per column. */
lp_status lp_profile_frame(const lp_frame *f, const lp_profile_opts *opts, lp_profile **out,
                           lp_err *err);
void lp_profile_free(lp_profile *p);

/* Columns of f that name rows rather than describe them, to leave out of a model's features:
 * all distinct (two values at least; 99% of them from 100 values on, as lp_profile_frame) and
 * named as an id ("id", "user_id", "customerID"), or strings of one word each that are all
 * distinct over at least LP_ID_MIN_ROWS rows (order numbers, e-mails, "7590-VHVEG"). The label is never one; free text (values with spaces) and
 * numbers not named as ids are features however distinct. *out: a new array (caller frees)
 * of f's column names, *n its length. */
#define LP_ID_MIN_ROWS 20
lp_status lp_frame_identifier_cols(const lp_frame *f, const char *label, const char ***out,
                                   size_t *n, lp_err *err);
/* The profile as JSON (stable key names; NaN and Inf are written as null), a malloc'd
 * NUL-terminated string the caller frees. Keys: rows, columns, duplicate_rows, missing_cells,
 * column_profiles[] {name, type, kind, count, missing, missing_share, distinct, min, max, mean,
 * std, quantiles{p01,p25,p50,p75,p99}, outliers, numeric_share, top[]{value,count},
 * flags{constant, likely_id, high_missing, mixed_types}}. */
lp_status lp_profile_to_json(const lp_profile *p, char **json, lp_err *err);
/* A human table to out: a summary line, then one aligned row per column of the data.
 * LP_EIO when writing fails. */
lp_status lp_profile_print(const lp_profile *p, FILE *out, lp_err *err);

/* ---- de-duplication -------------------------------------------------------------------------*/

/* Mark exact duplicate rows: is_dup[i] = 1 when row i equals an earlier row in every column
 * (missing equals missing; numbers compare by value, so -0 == 0; categories by string).
 * Rows are hashed and compared cell by cell on a hash match. is_dup (n,) is the caller's and
 * may be NULL; *n_dup may be NULL. LP_ENOMEM on allocation failure. */
lp_status lp_frame_find_duplicates(const lp_frame *f, uint8_t *is_dup, size_t *n_dup,
                                   lp_err *err);

/* ---- the cleaner ----------------------------------------------------------------------------*/

typedef enum lp_impute_method {
    LP_IMPUTE_METHOD_NONE = 0,      /* leave missing cells missing */
    LP_IMPUTE_METHOD_MEAN,          /* numeric: column mean; strings: most frequent */
    LP_IMPUTE_METHOD_MEDIAN,        /* numeric: column median; strings: most frequent */
    LP_IMPUTE_METHOD_MOST_FREQUENT, /* smallest of the most frequent values (as scikit-learn) */
    LP_IMPUTE_METHOD_CONSTANT,      /* fill_value / fill_string */
    LP_IMPUTE_METHOD_SOFT,          /* numeric: soft-impute; strings: most frequent */
    LP_IMPUTE_METHOD_COUNT_
} lp_impute_method;

typedef enum lp_outlier_method {
    LP_OUTLIER_METHOD_NONE = 0,
    LP_OUTLIER_METHOD_ROBUST_Z, /* |0.6745 (x - median) / MAD| > z_threshold */
    LP_OUTLIER_METHOD_IQR,      /* x outside [q1 - iqr_k IQR, q3 + iqr_k IQR] */
    LP_OUTLIER_METHOD_PCA,      /* row reconstruction error above a robust threshold: columns
                                   standardised, error = ||z - V V^T z|| over the kept k <= p-1
                                   directions, outlier when (error - median) / (MAD / 0.6745)
                                   of the fitted rows' errors exceeds pca_threshold */
    LP_OUTLIER_METHOD_COUNT_
} lp_outlier_method;

typedef enum lp_outlier_action {
    LP_OUTLIER_ACTION_FLAG = 0, /* add a bool column "_outlier" (1 = outlier row) */
    LP_OUTLIER_ACTION_CLIP,     /* winsorize cells to the fitted fences (robust_z, iqr only) */
    LP_OUTLIER_ACTION_DROP,     /* remove outlier rows */
    LP_OUTLIER_ACTION_COUNT_
} lp_outlier_action;

/* "none", "mean", ... / "none", "robust_z", "iqr", "pca" / "flag", "clip", "drop";
 * the _parse functions accept exactly these words and give LP_EINVAL naming the word. */
const char *lp_impute_method_name(lp_impute_method m);
const char *lp_outlier_method_name(lp_outlier_method m);
const char *lp_outlier_action_name(lp_outlier_action a);
lp_status lp_impute_method_parse(const char *s, lp_impute_method *out, lp_err *err);
lp_status lp_outlier_method_parse(const char *s, lp_outlier_method *out, lp_err *err);
lp_status lp_outlier_action_parse(const char *s, lp_outlier_action *out, lp_err *err);

typedef struct lp_cleaner_opts {
    lp_impute_method impute;    /* MEDIAN */
    double fill_value;          /* CONSTANT, numeric columns (0) */
    const char *fill_string;    /* CONSTANT, categorical/text columns ("missing"); copied */
    lp_outlier_method outlier;  /* NONE */
    lp_outlier_action action;   /* FLAG */
    bool dedupe;                /* remove exact duplicate rows (true) */
    double z_threshold;         /* robust z cut-off (3.5, Iglewicz & Hoaglin 1993) */
    double iqr_k;               /* IQR fence multiplier (1.5, Tukey) */
    double pca_var;             /* PCA: keep components explaining >= this variance (0.9) */
    size_t pca_k;               /* PCA: a fixed number of components instead (0 = use var) */
    double pca_threshold;       /* PCA: modified z of a row's error above this is an outlier
                                   (3.5) */
    /* soft-impute (Mazumder, Hastie & Tibshirani 2010) */
    size_t svd_max_rank;        /* rank cap (0 = min(rows, numeric columns)) */
    size_t svd_max_iter;        /* iterations per lambda (100) */
    double svd_tol;             /* stop when ||Z_new - Z||_F^2 / ||Z||_F^2 < tol (1e-5) */
    double svd_lambda;          /* > 0: lambda as a fraction of the top singular value of the
                                   mean-filled standardised matrix; 0: chosen on a held-out
                                   10% of the observed cells from a grid (default 0) */
    uint64_t seed;              /* for the held-out cells (42) */
} lp_cleaner_opts;

lp_cleaner_opts lp_cleaner_opts_default(void);
/* LP_EINVAL naming the first bad field (enum out of range, non-positive threshold, pca_var not
 * in (0, 1], clip with pca, svd_lambda not in [0, 1), svd_tol <= 0, svd_max_iter 0). */
lp_status lp_cleaner_opts_check(const lp_cleaner_opts *o, lp_err *err);

typedef struct lp_cleaner lp_cleaner;

/* Per-column counts of one lp_cleaner_apply. */
typedef struct lp_clean_col_report {
    char *name;     /* owned */
    size_t missing; /* missing cells after de-duplication, before imputation */
    size_t imputed; /* cells filled */
    size_t outliers; /* cells outside the fences (robust_z, iqr) */
    size_t clipped; /* cells winsorized */
} lp_clean_col_report;

typedef struct lp_clean_report {
    size_t rows_in, rows_out;
    size_t duplicates_removed;
    size_t outlier_rows;   /* rows flagged by the detector */
    size_t rows_dropped;   /* outlier rows removed (action drop) */
    size_t cols;
    lp_clean_col_report *col; /* (cols,) in the cleaner's column order */
} lp_clean_report;

void lp_clean_report_free(lp_clean_report *r);

/* Fit a cleaner on f: de-duplicate (when opts->dedupe), fit the imputer on the remaining
 * rows, impute them, then fit the outlier detector on the imputed rows. Every column of f
 * takes part except one named "_outlier" (the flag column a previous apply added).
 * Soft-impute: numeric (non-bool) columns with at least 2 observed values and a non-zero
 * spread are standardised; missing cells start at the column mean; then Z <- U S_lambda(D) V^T
 * of the SVD of (observed cells of X, the rest from Z), singular values soft-thresholded by
 * lambda and capped at svd_max_rank, until the relative change is below svd_tol. Lambda:
 * see svd_lambda; the grid is {0.5, 0.3, 0.2, 0.12, 0.08, 0.05, 0.03, 0.02} x the top
 * singular value, run from large to small with warm starts as in the paper, scored by RMSE on
 * the held-out cells (0.1 x the top singular value when fewer than 10 cells can be held out).
 * Numeric columns left out of soft-impute (bool, fewer than 2 values, constant, infinite
 * values) get the mean. The fitted V, the
 * singular values and lambda are kept; a row is then imputed by folding it in: its missing
 * entries are the fixed point of z_M = (V diag(1 - lambda / s) V^T z)_M, solved exactly.
 * Bool columns are imputed with their most frequent value under mean/median/soft, so they
 * stay 0/1; integer columns are not rounded (as scikit-learn). Outlier detection looks at
 * integer and float columns only (not bool, not date-time); a missing cell is never an outlier.
 * Robust z with MAD 0 uses 1.253314 x the mean absolute deviation instead; a constant column
 * gets no fence. A column with no observed value keeps its missing cells (constant fills it).
 * opts may be NULL. *out is new; free with lp_cleaner_free.
 * Errors: LP_EINVAL (bad opts, no columns), LP_ENUMERIC (SVD failure), LP_ENOMEM.
 * Not thread-safe while fitting; the fitted cleaner is read-only afterwards. */
lp_status lp_cleaner_fit(const lp_frame *f, const lp_cleaner_opts *opts, lp_cleaner **out,
                         lp_err *err);
void lp_cleaner_free(lp_cleaner *c);

/* Apply a fitted cleaner to f (any rows, the fitted columns by name, in any order; other
 * columns pass through untouched): de-duplicate, impute with the fitted statistics / factors,
 * detect outliers with the fitted fences / components, then flag, clip or drop.
 * *out is a new frame; *report (may be NULL) a new report to free with lp_clean_report_free.
 * Errors: LP_ENOTFOUND naming a fitted column absent from f; LP_EINVAL when a column's
 * storage type differs from fitting; LP_ENUMERIC; LP_ENOMEM. Thread-safe: c is only read. */
lp_status lp_cleaner_apply(const lp_cleaner *c, const lp_frame *f, lp_frame **out,
                           lp_clean_report **report, lp_err *err);

/* What was fitted (options, per column the fill value and fences, the soft-impute rank,
 * lambda and iterations, the PCA components and threshold) and, when r is not NULL, what an
 * apply did. A malloc'd JSON string the caller frees; NaN/Inf written as null. */
lp_status lp_cleaner_to_json(const lp_cleaner *c, const lp_clean_report *r, char **json,
                             lp_err *err);

/* Serialise into out (appended; versioned, CRC-32 at the end). LP_ENOMEM via the buffer. */
lp_status lp_cleaner_save(const lp_cleaner *c, lp_buf *out, lp_err *err);
/* Rebuild a cleaner from bytes written by lp_cleaner_save. Every read is bounds-checked:
 * a truncated or corrupted blob is LP_EFORMAT (bad magic, CRC, sizes, enum values),
 * a newer version LP_EVERSION; never a crash. *out is new. */
lp_status lp_cleaner_load(const void *data, size_t len, lp_cleaner **out, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
