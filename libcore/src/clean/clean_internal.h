/*
 * clean_internal.h - helpers shared by the files of the clean module (not public): order
 * statistics, robust scale, JSON number output, and the soft-impute / PCA cores.
 */
#ifndef LEPTON_CLEAN_INTERNAL_H
#define LEPTON_CLEAN_INTERNAL_H

#include "lepton/clean.h"
#include "lepton/linalg.h"

#include <cjson/cJSON.h>

/* Sort v (n,) ascending in place (NaN must not be present). */
void lp_clean_sort(double *v, size_t n);
/* Quantile q in [0, 1] of sorted v (n > 0), numpy's default "linear" method:
 * h = q (n - 1), v[floor h] + (h - floor h) (v[floor h + 1] - v[floor h]). */
double lp_clean_quantile_sorted(const double *v, size_t n, double q);
/* Median and MAD (median of |x - median|, unscaled) of x (n,) ignoring NaN; work (n,) is
 * scratch. Both NaN when no value. Also the mean absolute deviation from the median. */
void lp_clean_median_mad(const double *x, size_t n, double *work, double *med, double *mad,
                         double *meanad);

/* cJSON number that writes null for NaN/Inf. NULL on allocation failure. */
cJSON *lp_clean_json_num(double v);
/* cJSON_Print without formatting, as a malloc'd string; LP_ENOMEM on failure. Frees root. */
lp_status lp_clean_json_finish(cJSON *root, char **json, lp_err *err);

/* Soft-impute fitted state over p numeric columns. */
typedef struct lp_softimpute {
    size_t p;       /* columns */
    size_t r;       /* kept components (s > lambda) */
    double *mu;     /* (p,) column means */
    double *sd;     /* (p,) column standard deviations (population; never 0) */
    double *v;      /* (p, r) right singular vectors, column k = component k */
    double *s;      /* (r,) singular values before thresholding */
    double lambda;  /* soft threshold, standardised units */
    size_t iters;   /* iterations of the final fit */
} lp_softimpute;

void lp_softimpute_clear(lp_softimpute *si);
/* Fit on x (n, p) row-major with NaN for missing (every column has >= 2 observed values).
 * See lp_cleaner_fit for the algorithm. */
lp_status lp_softimpute_fit(const double *x, size_t n, size_t p, const lp_cleaner_opts *o,
                            lp_softimpute *si, lp_err *err);
/* Fill the NaN entries of row (p,) in place by folding it into the fitted factors.
 * work needs p*p + 2p doubles and p size_t. */
lp_status lp_softimpute_row(const lp_softimpute *si, double *row, double *work, size_t *iwork,
                            lp_err *err);

/* PCA reconstruction-error detector over p columns. */
typedef struct lp_pca_detector {
    size_t p, k;
    double *mu, *sd; /* (p,) */
    double *v;       /* (p, k) principal directions in columns */
    double threshold; /* reconstruction error above which a row is an outlier */
    double err_med, err_scale;
} lp_pca_detector;

void lp_pca_detector_clear(lp_pca_detector *d);
/* Fit on x (n, p) complete (no NaN). */
lp_status lp_pca_detector_fit(const double *x, size_t n, size_t p, const lp_cleaner_opts *o,
                              lp_pca_detector *d, lp_err *err);
/* Reconstruction error ||z - V V^T z|| of row (p,) in standardised units; work (p,). */
double lp_pca_detector_error(const lp_pca_detector *d, const double *row, double *work);

#endif

/* ---- the fitted cleaner (shared by cleaner.c and cleaner_io.c) ----------------------------*/

typedef enum clean_fill {
    CLEAN_FILL_NONE = 0, /* leave missing */
    CLEAN_FILL_NUM,      /* fill_num */
    CLEAN_FILL_STR,      /* fill_str */
    CLEAN_FILL_SVD,      /* soft-impute fold-in */
    CLEAN_FILL_COUNT_
} clean_fill;

typedef struct clean_col {
    char *name;
    lp_col_type type;
    lp_col_kind kind;
    clean_fill fill;
    double fill_num;  /* NaN unless fill == NUM */
    char *fill_str;   /* NULL unless fill == STR */
    bool has_fence;   /* robust_z / iqr fences fitted */
    double lo, hi;    /* a cell outside [lo, hi] is an outlier */
} clean_col;

struct lp_cleaner {
    lp_cleaner_opts opts; /* opts.fill_string points at fill_string */
    char *fill_string;
    size_t fit_rows, fit_duplicates;
    size_t ncols;
    clean_col *col;
    size_t *si_cols; /* (si.p,) indices into col */
    lp_softimpute si;
    size_t *pca_cols; /* (pca.p,) indices into col */
    lp_pca_detector pca;
};

#define LP_CLEANER_VERSION 1u

/* ---- the one-row apply (cleaner_row.c), for the prepared predictor -------------------------*/

/* Cleaner columns bound to the slots of an input row: slot[j] is the input of fitted column j. */
typedef struct lp_cleaner_rowplan {
    uint32_t *slot; /* (c->ncols,) */
    size_t n;
} lp_cleaner_rowplan;

/* Bind c to an input row of n columns named names[] with storage types types[]. ok is false
 * and why names the reason when rows cannot be cleaned one at a time exactly as
 * lp_cleaner_apply cleans them: soft-impute fills (fold-in needs per-row LAPACK work), an
 * outlier action other than clip (flag adds a column, drop removes rows), PCA outliers,
 * de-duplication of several rows (multi_row), or a fitted column that is not an input or has
 * another storage type (the frame path reports those). LP_ENOMEM. */
lp_status lp_cleaner_rowplan_init(const lp_cleaner *c, const char *const *names,
                                  const lp_col_type *types, size_t n, bool multi_row,
                                  lp_cleaner_rowplan *plan, bool *ok, const char **why,
                                  lp_err *err);
void lp_cleaner_rowplan_clear(lp_cleaner_rowplan *plan);
/* Clean one row in place: num (NaN = missing) and miss for numeric slots, str (NULL = missing)
 * for string slots, all indexed by slot. Imputes with the fitted fill, then clips to the fitted
 * fences, as lp_cleaner_apply does cell by cell. Never allocates; fill strings point into c. */
void lp_cleaner_row_apply(const lp_cleaner *c, const lp_cleaner_rowplan *plan, double *num,
                          uint8_t *miss, const char **str);
