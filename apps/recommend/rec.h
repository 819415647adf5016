/*
 * rec.h - lepton-recommend's domain logic, testable without main: reading interaction files,
 * training, offline evaluation, hyper-parameter tuning, and the HTTP service (events in SQLite,
 * catalog filters, fold-in at request time, popularity fallback, retrain with hot swap).
 *
 * Everything fallible returns lp_status with an lp_err; nothing here exits. The service is
 * thread-safe: the model is an immutable lp_mf behind lp_swap, the catalog sits under a
 * read-write lock and the SQLite connection under a mutex.
 */
#ifndef REC_H
#define REC_H

#include "lepton/lepton.h"

/* Columns and weighting used to read an interaction file. */
typedef struct rec_cols {
    const char *user_col;   /* default "user_id" */
    const char *item_col;   /* default "item_id" */
    const char *weight_col; /* NULL: 1 per row */
    const char *type_col;   /* NULL: none; else event types weighted by ev */
    const char *time_col;   /* NULL: none; decay when ev.half_life_s > 0 */
    lp_mf_event_opts ev;
} rec_cols;

rec_cols rec_cols_default(void);
/* The columns a model was trained with (lp_mf_model_source), or the defaults for a model file
 * that records none. The strings point into m. */
rec_cols rec_cols_of_model(const lp_mf *m);
/* Record c in m (lp_mf_set_source), so eval, tune and serve read as train did; time_ref is
 * the time the training weights were decayed to (lp_mf_data_time_ref of the data m was fitted
 * on; 0 = no decay), from which the service decays the events posted since. */
lp_status rec_cols_store(lp_mf *m, const rec_cols *c, double time_ref, lp_err *err);

/* Reading flags given on a command line, each applied over a base (a model's columns or the
 * defaults) only when given: NULL / < 0 = not given. "none" as a weight, type or time column
 * turns that column off. */
typedef struct rec_cols_flags {
    const char *user_col, *item_col, *weight_col, *type_col, *time_col;
    const char *event_weights; /* "TYPE=W,..." */
    double half_life_days;
} rec_cols_flags;

/* c = base with the flags applied; LP_EINVAL naming the flag (a bad --event-weights). */
lp_status rec_cols_apply(const rec_cols *base, const rec_cols_flags *fl, rec_cols *c,
                         lp_err *err);

/* Read a CSV/TSV/JSONL file of interactions (lp_frame_read) into *out (caller frees). When
 * frame is not NULL the frame is handed over too (caller frees), else freed here. */
lp_status rec_read(const char *path, const rec_cols *c, lp_mf_data **out, lp_frame **frame,
                   lp_err *err);

/* Evaluation as the CLI prints it: one JSON object text (caller frees). */
char *rec_eval_json(const lp_mf_eval *e, size_t k);

/* Tune factors, regularization, alpha and iterations of base (kind ALS or BPR; itemknn tunes
 * neighbors and shrinkage) by lp_search_run on a validation split carved from frame (the last
 * `holdout` interactions of every user by c->time_col; without one, `holdout` drawn at random,
 * seeded by t->seed), scoring NDCG@k; base itself, fitted on the same split, is kept when it
 * beats every trial. The best
 * options are written to *best; *best_ndcg gets their validation NDCG@k. */
typedef struct rec_tune_opts {
    size_t trials;       /* default 12 */
    double time_budget_s;/* default 0 (none) */
    size_t k;            /* default 10 */
    size_t holdout;      /* default 2 */
    uint64_t seed;       /* default 42 */
} rec_tune_opts;

rec_tune_opts rec_tune_opts_default(void);
/* --model auto: fit each of cand (n) on all but every user's last `holdout` interactions (by
 * c->time_col when set, else `holdout` drawn at random, seeded by cand[0].seed) and score
 * NDCG@k on those; ndcg[i] each score (NAN for
 * a candidate that failed, with a warning), *best the index of the highest (the first on ties).
 * LP_EINVAL "no user has more than N interactions to hold out" when the split is empty; the
 * last candidate's error when all failed. */
lp_status rec_choose(const lp_frame *frame, const rec_cols *c, const lp_mf_opts *cand, size_t n,
                     size_t holdout, size_t k, size_t *best, double *ndcg, lp_err *err);
lp_status rec_tune(const lp_frame *frame, const rec_cols *c, const lp_mf_opts *base,
                   const rec_tune_opts *t, lp_mf_opts *best, double *best_ndcg, lp_err *err);

/* FNV-1a of a NUL-terminated id (the catalog's and the prepared-user cache's tables, the
 * monitor's list keys). */
static inline uint64_t rec_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

/* ---- item catalog (rec_catalog.c) -----------------------------------------------------------*/

typedef struct rec_item {
    char *id, *category;
    bool in_stock;
} rec_item;

typedef struct rec_catalog {
    rec_item *items;
    size_t n, cap;
    int32_t *slots;
    size_t n_slots;
    size_t out_of_stock; /* items with in_stock false */
} rec_catalog;

/* The item of id, or NULL. */
const rec_item *rec_cat_find(const rec_catalog *c, const char *id);
/* Insert or update id: category when not NULL, in_stock when >= 0 (1 in stock, 0 out). */
lp_status rec_cat_put(rec_catalog *c, const char *id, const char *category, int in_stock,
                      lp_err *err);
/* Free everything; c is empty (and reusable) afterwards. */
void rec_cat_clear(rec_catalog *c);

/* The offset of v's first control character (C0, DEL, or C1: U+0080..U+009F, UTF-8 C2 80..9F),
 * or -1: ids never hold one (a query could not name them). */
long rec_id_control_at(const char *v);

/* The rows of a catalog file (serve --items): ids with their category (NULL: the row says
 * none) and in_stock (1, 0, or -1: the row says nothing), and the columns they came from. */
typedef struct rec_cat_file {
    char **ids, **cats;
    int *stock;
    size_t n, skipped; /* rows kept; rows without a usable id (empty, a control character,
                          over LP_MF_ID_MAX bytes) */
    char id_col[64], cat_col[64], stock_col[64]; /* quoted names, or "none" */
} rec_cat_file;

/* Read path (CSV, TSV or JSONL). The item column is item_col (the model's) when the file has
 * it, else the one named like item_id, item, product_id, asin or isbn, else id, else the
 * first; category the one named like category, genre or department; in_stock the one named
 * like in_stock (0 / 1, true / false). */
lp_status rec_cat_file_read(const char *path, const char *item_col, rec_cat_file *out,
                            lp_err *err);
void rec_cat_file_free(rec_cat_file *f);

/* ---- prepared users (rec_ucache.c) ----------------------------------------------------------*/

/* A cache of lp_mf_user per (user id, model generation) under a byte budget, least recently used
 * out first; thread-safe. get returns a held entry's prepared user or NULL (a miss), and always
 * a token: read it BEFORE reading the user's history, and pass it to put, which caches the new
 * prepared user only if no event for a user of the same bucket came in between (invalidate).
 * put takes pu (freed on failure: then it returns NULL) and returns it held. Every held entry is
 * given back with release, after which its prepared user must not be used. */
typedef struct rec_ucache rec_ucache;
typedef struct rec_uentry rec_uentry;
typedef struct rec_ucache_stats {
    size_t entries, bytes, budget;
    uint64_t hits, misses;
} rec_ucache_stats;

rec_ucache *rec_ucache_new(size_t budget_bytes); /* budget 0: nothing is kept */
void rec_ucache_free(rec_ucache *c);             /* no entry may be held */
const lp_mf_user *rec_ucache_get(rec_ucache *c, const char *uid, uint64_t gen, uint64_t *token,
                                 rec_uentry **held);
const lp_mf_user *rec_ucache_put(rec_ucache *c, const char *uid, uint64_t gen, uint64_t token,
                                 lp_mf_user *pu, rec_uentry **held);
void rec_ucache_release(rec_ucache *c, rec_uentry *e); /* NULL is a no-op */
/* The user's events changed (call after they are committed). True when the user had a valid
 * entry, i.e. is active enough that rebuilding it at once is worth the work. */
bool rec_ucache_invalidate(rec_ucache *c, const char *uid);
/* True when no valid entry of (uid, gen) is cached, with the token for a put as get gives it;
 * counts neither a hit nor a miss (for the service's own refresh after events). */
bool rec_ucache_missing(rec_ucache *c, const char *uid, uint64_t gen, uint64_t *token);
/* Copies of the ids of the max most recently used entries, newest first (the caller frees each);
 * their count. */
size_t rec_ucache_recent(rec_ucache *c, char **uids, size_t max);
rec_ucache_stats rec_ucache_stats_get(rec_ucache *c);

/* ---- the service ----------------------------------------------------------------------------*/

typedef struct rec_service rec_service;

typedef struct rec_service_opts {
    const char *model_path; /* required */
    const char *db_path;    /* default "recommend.db" */
    const char *host;       /* default 127.0.0.1 */
    unsigned port;          /* default 8083; 0 = any free port */
    unsigned threads;       /* default 0 (CPU count) */
    char *const *api_keys;  /* for the admin routes; may be NULL (then they fail closed) */
    size_t n_api_keys;
    lp_mf_event_opts ev;    /* event weights */
    double hit_window_s;    /* GET /v1/monitor: an event this long after a list counts as its
                               hit (default 1800; <= 0 = the default) */
    size_t user_cache_mb;   /* prepared-user cache budget (default 128; 0 = no cache) */
    double retrain_every_s; /* > 0: retrain this often when events were stored since the model
                               (POST /v1/admin/retrain's work); 0 = on demand only (default) */
    const char *items_path; /* a catalog file upserted at start (serve --items), or NULL */
} rec_service_opts;

rec_service_opts rec_service_opts_default(void);
/* Load the model, open (creating) the database, load the catalog, build the server (not yet
 * listening). */
lp_status rec_service_new(const rec_service_opts *o, rec_service **out, lp_err *err);
lp_status rec_service_start(rec_service *s, lp_err *err);
unsigned rec_service_port(const rec_service *s);
lp_server *rec_service_server(rec_service *s);
/* Stops the server if running, closes everything. NULL is a no-op. */
void rec_service_free(rec_service *s);

#endif
