/*
 * monitor.h - watching a model in production: feature and score drift against the training
 * data (PSI and Kolmogorov-Smirnov), and a durable prediction log in SQLite with delayed
 * labels (feedback) from which live metrics are computed.
 *
 * Drift. lp_drift_fit summarises the training data once (stored in the model file): for each
 * numeric column up to LP_DRIFT_EDGES quantile edges and the share of reference values in each
 * bin (plus a missing bin); for each categorical column its most frequent categories and their
 * shares (plus "other" and missing). At serving time an lp_drift_sketch counts the live values
 * into the same bins with atomic increments (many request threads, no lock), and
 * lp_drift_compare turns the counts into per-feature statistics:
 *   PSI = sum_b (c_b - r_b) ln(c_b / r_b) over bins b (shares floored at 1e-4 so empty bins do
 *         not give infinities), computed over 10 equal-mass groups of the reference bins for
 *         numeric columns (the usual decile PSI) and over the categories for categorical ones;
 *   KS  = max_b |C_cur(b) - C_ref(b)| over the cumulative shares at every reference edge (the
 *         two-sample statistic evaluated on the binned CDFs; exact for values on the edges).
 * A feature is flagged when PSI > threshold (0.2 by default: the common "significant shift").
 *
 * Prediction log. lp_predlog queues records in a bounded ring and one background thread
 * writes them in batched transactions (WAL); when the ring is full a record is dropped and
 * counted, never silently. Feedback is written synchronously, so a 2xx answered after
 * lp_predlog_feedback returned survives a crash of the process.
 */
#ifndef LEPTON_MONITOR_H
#define LEPTON_MONITOR_H

#include "lepton/base.h"
#include "lepton/data.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP_DRIFT_EDGES 99   /* numeric reference: up to 99 edges (percentiles) -> 100 bins */
#define LP_DRIFT_TOP_CATS 32 /* categorical reference: top categories kept, the rest "other" */
#define LP_DRIFT_MIN_N 100   /* a feature is flagged only once this many live values are in */

/* ---- drift ---------------------------------------------------------------------------------*/
typedef struct lp_drift lp_drift;

/* Summarise the columns of f (numeric and categorical; text columns are skipped). The score
 * column, if any, is just another numeric column (e.g. named "_score"). *out is new. */
lp_status lp_drift_fit(const lp_frame *f, lp_drift **out, lp_err *err);
/* Add one numeric reference column from raw values (NaN = missing), e.g. validation scores. */
lp_status lp_drift_add_numeric(lp_drift *d, const char *name, const double *v, size_t n,
                               lp_err *err);
void lp_drift_free(lp_drift *d);
size_t lp_drift_nfeatures(const lp_drift *d);
const char *lp_drift_feature_name(const lp_drift *d, size_t j);
/* Index of a feature by name, or -1. */
long lp_drift_find(const lp_drift *d, const char *name);
/* Serialize (versioned) into b / rebuild from bytes (bounds-checked; LP_EFORMAT on corruption). */
lp_status lp_drift_save(const lp_drift *d, lp_buf *b, lp_err *err);
lp_status lp_drift_load(const void *data, size_t len, lp_drift **out, lp_err *err);

typedef struct lp_drift_sketch lp_drift_sketch;

/* Live counts in the bins of ref (which must outlive the sketch). NULL on allocation failure. */
lp_drift_sketch *lp_drift_sketch_new(const lp_drift *ref);
void lp_drift_sketch_free(lp_drift_sketch *s);
/* Count one value of feature j (NaN = missing). Thread-safe (atomic), lock-free. */
void lp_drift_sketch_add_num(lp_drift_sketch *s, size_t j, double v);
/* Count one category of feature j (NULL = missing). Thread-safe. */
void lp_drift_sketch_add_cat(lp_drift_sketch *s, size_t j, const char *v);
/* Count every row of f for the features present in it by name (others are ignored). */
void lp_drift_sketch_add_frame(lp_drift_sketch *s, const lp_frame *f);
/* Forget all counts (e.g. to start a new window). Not atomic with concurrent adds. */
void lp_drift_sketch_reset(lp_drift_sketch *s);

/* The live counts as bytes (for persisting a window) / add saved counts back into a sketch of
 * the same reference (LP_EFORMAT when the blob does not match the reference's bins). */
lp_status lp_drift_sketch_save(const lp_drift_sketch *s, lp_buf *b, lp_err *err);
lp_status lp_drift_sketch_add_saved(lp_drift_sketch *s, const void *data, size_t len,
                                    lp_err *err);

typedef struct lp_drift_stat {
    const char *name; /* owned by the reference */
    bool categorical;
    uint64_t n;       /* live values counted (missing included) */
    double psi, ks;
    double missing_ref, missing_cur; /* shares */
    bool drifted;     /* psi > threshold */
} lp_drift_stat;

/* Compare the sketch with its reference: out (lp_drift_nfeatures entries, caller's array).
 * Features with no live values get n = 0, psi = ks = 0; a feature with fewer than
 * LP_DRIFT_MIN_N live values is never flagged (a handful of rows makes PSI meaningless). */
void lp_drift_compare(const lp_drift_sketch *s, double psi_threshold, lp_drift_stat *out);

/* Reference and current shares of feature j's bins, for charts: *nbins gets the count;
 * ref/cur (caller's arrays of at least LP_DRIFT_EDGES + 2 entries); labels[b] names bin b
 * ("<= 12.5", "red", "other", "missing") in a static per-call buffer set owned by the sketch
 * until the next call. */
void lp_drift_bins(const lp_drift_sketch *s, size_t j, double *ref, double *cur, size_t *nbins,
                   const char **labels);

/* ---- prediction log ------------------------------------------------------------------------*/
typedef struct lp_predlog lp_predlog;

typedef struct lp_pred_record {
    const char *id;            /* unique prediction id */
    double time;               /* seconds since the epoch */
    const char *model_version;
    const char *inputs_hash;   /* e.g. SHA-256 of the canonical inputs */
    const char *output;        /* predicted label or value, as text */
    double score;              /* probability of the positive / top class, or the value */
    double latency_us;
} lp_pred_record;

typedef struct lp_predlog_opts {
    size_t queue_cap;   /* records the ring holds before dropping (default 65536) */
    size_t batch_max;   /* records per transaction at most (default 2048) */
    double flush_ms;    /* the writer commits once per flush_ms (default 5: short bursts of
                           SQLite work beside the request threads), sooner only when
                           batch_max records wait, a flush is asked for, or the log closes */
} lp_predlog_opts;

lp_predlog_opts lp_predlog_opts_default(void);
lp_status lp_predlog_opts_check(const lp_predlog_opts *o, lp_err *err);

/* Open (creating) the log database and start the writer thread. Schema versioned with
 * PRAGMA user_version; WAL. */
lp_status lp_predlog_open(const char *db_path, const lp_predlog_opts *opts, lp_predlog **out,
                          lp_err *err);
/* Flush what is queued, stop the writer, close. NULL is a no-op. */
lp_status lp_predlog_close(lp_predlog *l, lp_err *err);
/* Queue a copy of rec; false (and the drop counter +1) when the ring is full. Thread-safe,
 * never blocks on I/O. */
bool lp_predlog_push(lp_predlog *l, const lp_pred_record *rec);
/* Block until everything pushed so far is written (tests, shutdown). */
lp_status lp_predlog_flush(lp_predlog *l, lp_err *err);
uint64_t lp_predlog_dropped(const lp_predlog *l);
uint64_t lp_predlog_written(const lp_predlog *l);
size_t lp_predlog_queued(const lp_predlog *l);

/* Store the true label of prediction id (text; numbers as text), durably, before returning.
 * LP_ENOTFOUND when no such prediction was logged (after flushing the queue). A second label
 * for the same id replaces the first. Thread-safe (serialized on its own connection). */
lp_status lp_predlog_feedback(lp_predlog *l, const char *id, const char *label, lp_err *err);

typedef struct lp_live_metrics {
    size_t n;          /* labelled predictions in the window */
    double accuracy;   /* share where output == label (NaN when n == 0) */
    double auroc;      /* binary only: score vs label == positive (NaN when undefined) */
    double rmse;       /* regression: label and output parsed as numbers (NaN otherwise) */
} lp_live_metrics;

/* Metrics over the latest `window` labelled predictions (by prediction time). positive is the
 * label counted as positive for AUROC (NULL: skip AUROC). Reads on its own connection. */
lp_status lp_predlog_live(lp_predlog *l, size_t window, const char *positive,
                          lp_live_metrics *out, lp_err *err);

/* A small key -> bytes store in the same database (table state), e.g. the drift sketch of a
 * model version, so `lepton monitor` can report offline. put replaces; synchronous. */
lp_status lp_predlog_put_state(lp_predlog *l, const char *key, const void *data, size_t len,
                               lp_err *err);
/* The same, written by the writer thread in its next batch's transaction (within flush_ms;
 * lp_predlog_flush waits for it): the caller copies the bytes and never waits for SQLite's
 * write lock, which the writer may hold for a batch. A newer value for a key still waiting
 * replaces it. Errors: out of memory, 16 distinct keys already waiting, the log closing. */
lp_status lp_predlog_put_state_later(lp_predlog *l, const char *key, const void *data,
                                     size_t len, lp_err *err);
/* Read key from a log database opened read-only; *data is malloc'd (caller frees).
 * LP_ENOTFOUND when absent. */
lp_status lp_predlog_get_state_offline(const char *db_path, const char *key, uint8_t **data,
                                       size_t *len, lp_err *err);

/* Offline access for `lepton monitor`: open read-only and compute live metrics. */
lp_status lp_predlog_live_offline(const char *db_path, size_t window, const char *positive,
                                  lp_live_metrics *out, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
