/*
 * mf.h - the `mf` model family: collaborative filtering over implicit feedback.
 *
 * Interactions are (user, item, weight) triples with string ids; lp_mf_data maps ids to dense
 * indices (first-seen order) and sums repeated pairs. Four recommenders are fitted from it:
 *   ALS      implicit-feedback matrix factorization (Hu, Koren & Volinsky 2008, "Collaborative
 *            filtering for implicit feedback datasets"): preference p_ui = 1 for every observed
 *            pair, confidence c_ui = 1 + alpha * w_ui, minimizing
 *              sum_{u,i} c_ui (p_ui - x_u . y_i)^2 + lambda (sum_u |x_u|^2 + sum_i |y_i|^2)
 *            by alternating exact solves (Cholesky on YtY + Yu^T (Cu - I) Yu + lambda I, the
 *            YtY precomputation trick) or a few conjugate-gradient steps warm-started from the
 *            previous iterate (Takacs, Pilaszy & Tikk 2011, "Applications of the conjugate
 *            gradient method for implicit feedback collaborative filtering").
 *   BPR      Bayesian personalized ranking (Rendle et al. 2009) by SGD over sampled (u, i, j)
 *            triples, seeded; item biases ride in the last factor (the user's is fixed at 1).
 *   itemknn  item-item cosine with shrinkage, sim(i, j) = <r_i, r_j> / (|r_i| |r_j| + shrink),
 *            the top `neighbors` kept per item; a user's score is sum_j sim(i, j) w_uj.
 *   popular  the number of distinct users per item, ties broken by the summed (transformed)
 *            weight: robust to a few huge weights, where a plain sum lets one heavy user
 *            decide (and on MovieLens ratings it also ranks better than the sum).
 * A fitted model is immutable and may be shared by threads. It keeps the training history of
 * every user (to exclude seen items, fold in, explain and retrain) and the id maps, and is
 * saved into one .lpm file (registry.h) whose every section is bounds-checked on load.
 */
#ifndef LEPTON_MF_H
#define LEPTON_MF_H

#include "lepton/base.h"
#include "lepton/data.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP_MF_ID_MAX 256 /* bytes of a user or item id, excluding the NUL */

/* ==== interactions ========================================================================== */

typedef struct lp_mf_data lp_mf_data;

lp_mf_data *lp_mf_data_new(void); /* NULL on allocation failure */
void lp_mf_data_free(lp_mf_data *d);
/* Add one interaction; ids are copied (1..LP_MF_ID_MAX bytes, valid UTF-8), weight finite and
 * > 0 (LP_EINVAL naming the field otherwise). Repeated (user, item) pairs are summed. */
lp_status lp_mf_data_add(lp_mf_data *d, const char *user, const char *item, float weight,
                         lp_err *err);
size_t lp_mf_data_n_users(const lp_mf_data *d);
size_t lp_mf_data_n_items(const lp_mf_data *d);
size_t lp_mf_data_n_pairs(const lp_mf_data *d); /* distinct (user, item) pairs */
/* Every weight of d times factor (> 0), none below FLT_MIN (a decayed weight stays > 0). */
void lp_mf_data_scale(lp_mf_data *d, float factor);
/* Index of an id, or -1. */
long lp_mf_data_user_index(const lp_mf_data *d, const char *id);
long lp_mf_data_item_index(const lp_mf_data *d, const char *id);

/* Event-type weights and exponential time decay used when reading event logs. The type table
 * is a plain value (copyable, nothing owned); the default holds view 1, cart 3, purchase 5. */
#define LP_MF_EVENT_TYPES_MAX 16 /* event types in a table */
#define LP_MF_EVENT_NAME_MAX 32  /* bytes of an event type name, excluding the NUL */

typedef struct lp_mf_event_opts {
    size_t n_types;                                            /* 1..LP_MF_EVENT_TYPES_MAX */
    char type_name[LP_MF_EVENT_TYPES_MAX][LP_MF_EVENT_NAME_MAX + 1]; /* distinct, non-empty */
    float type_weight[LP_MF_EVENT_TYPES_MAX];                  /* finite, > 0 */
    double half_life_s; /* 0 = no decay; else weight * 2^(-(now - t) / half_life_s) */
    double now;         /* reference time (seconds); 0 = the latest timestamp seen */
} lp_mf_event_opts;

lp_mf_event_opts lp_mf_event_opts_default(void);
lp_status lp_mf_event_opts_check(const lp_mf_event_opts *o, lp_err *err);
/* Replace o's type table by "TYPE=W,TYPE=W,..." (names as above, weights finite > 0, at most
 * LP_MF_EVENT_TYPES_MAX, no repeats). LP_EINVAL naming the bad entry; o is unchanged then. */
lp_status lp_mf_event_weights_parse(lp_mf_event_opts *o, const char *spec, lp_err *err);
/* Weight of one event type from o's table; LP_EINVAL naming the type and the known ones else. */
lp_status lp_mf_event_type_weight(const lp_mf_event_opts *o, const char *type, float *w,
                                  lp_err *err);

/* Timestamps above this (seconds would be past the year 5000) are read as milliseconds. */
#define LP_MF_TIME_MS_ABOVE 1e11

/* Build interactions from frame rows (all rows when rows == NULL, else rows[0..n_rows)).
 * user_col / item_col: any column kind (numbers are printed as ids, "7" not "7.0").
 * weight_col: numeric weights (NULL: 1 per row). type_col: event types mapped through ev
 * (NULL: none; multiplies the weight). time_col: numeric/date-time for decay (NULL: none);
 * epoch timestamps whose latest value is above LP_MF_TIME_MS_ABOVE are taken as milliseconds,
 * and a decay factor never goes below LP_MF_DECAY_MIN, so an old event keeps a tiny weight > 0.
 * Rows with a missing user or item, or a weight <= 0 or missing, are skipped (counted in
 * *skipped, may be NULL); a non-finite or negative weight is LP_EINVAL naming the row.
 * what names the input in messages. *out is new; caller frees. */
lp_status lp_mf_data_from_frame(const lp_frame *f, const size_t *rows, size_t n_rows,
                                const char *user_col, const char *item_col,
                                const char *weight_col, const char *type_col,
                                const char *time_col, const lp_mf_event_opts *ev,
                                const char *what, lp_mf_data **out, size_t *skipped,
                                lp_err *err);

/* Smallest decay factor: far below any weight that matters, far above float underflow. */
#define LP_MF_DECAY_MIN 1e-20

/* The decay factor of an event at time t (seconds) seen from time ref: 2^(-(ref - t) /
 * half_life_s), never below LP_MF_DECAY_MIN (above 1 when t is after ref). half_life_s > 0. */
double lp_mf_decay(double ref, double t, double half_life_s);
/* The reference time (seconds) lp_mf_data_from_frame decayed d's weights to (ev->now, or the
 * latest time read when that is 0); 0 when it applied no decay or d was built otherwise. */
double lp_mf_data_time_ref(const lp_mf_data *d);

/* Per-user hold-out split of frame rows: for each user the last n_last rows (by time_col when
 * given, ties and the no-time case by row order) go to test, the rest to train; users with at
 * most n_last rows stay wholly in train. n_last = 1 is leave-last-out. Time-based global splits
 * are lp_split_time (data.h). out is filled (lp_split_free). */
lp_status lp_mf_split_last(const lp_frame *f, const char *user_col, const char *time_col,
                           size_t n_last, lp_split *out, lp_err *err);

/* ==== fitting =============================================================================== */

typedef enum lp_mf_kind {
    LP_MF_KIND_ALS = 0,
    LP_MF_KIND_BPR,
    LP_MF_KIND_ITEMKNN,
    LP_MF_KIND_POPULAR
} lp_mf_kind;

typedef enum lp_mf_solver {
    LP_MF_SOLVER_CHOLESKY = 0, /* exact solve per user/item */
    LP_MF_SOLVER_CG            /* cg_steps conjugate-gradient steps, warm-started */
} lp_mf_solver;

/* How interaction weights enter a model. The transform is applied inside the model to each
 * (user, item) pair's summed weight wherever weights are used: fitting (ALS confidence, BPR
 * sampling is unweighted, kNN vectors, popularity), fold-in, scoring and explanations; the
 * stored training history and every weight passed in stay raw, so a history (a service's
 * training history plus new events) is summed first and transformed once. */
typedef enum lp_mf_weight {
    LP_MF_WEIGHT_NONE = 0, /* w as given */
    LP_MF_WEIGHT_LOG1P,    /* log(1 + w): for heavy-tailed counts such as plays */
    LP_MF_WEIGHT_AUTO      /* fit picks LOG1P when the summed pair weights are heavy-tailed (the
                            * 99th percentile above LP_MF_WEIGHT_AUTO_RATIO times the median),
                            * else NONE; a fitted model holds the transform it picked */
} lp_mf_weight;

#define LP_MF_WEIGHT_AUTO_RATIO 20.0 /* ratings 1..5: 1.25; play counts: about 70 */

const char *lp_mf_weight_name(lp_mf_weight t); /* "none", "log1p", "auto" */
lp_status lp_mf_weight_parse(const char *s, lp_mf_weight *out, lp_err *err);

/* Called after each ALS iteration (both half-steps) or BPR epoch with the 1-based iteration and
 * the objective (ALS: the weighted loss above including the penalty; BPR: the mean
 * -log sigmoid(x_uij) over the epoch's samples). */
typedef void (*lp_mf_iter_fn)(size_t iter, double objective, void *user);

typedef struct lp_mf_opts {
    lp_mf_kind kind;
    size_t factors;       /* ALS/BPR latent dimension; default 64; 1..1024 */
    size_t iterations;    /* ALS sweeps or BPR epochs; default 15; 1..10000 */
    float regularization; /* ALS lambda (default 0.05), BPR L2 (default 0.01); >= 0 */
    float alpha;          /* ALS confidence slope, >= 0; default 1 (implicit's default; tune
                           * picked 1.09 on a MovieLens-100k validation split) */
    lp_mf_solver solver;  /* ALS; default CHOLESKY */
    size_t cg_steps;      /* default 3; 1..64 */
    float learning_rate;  /* BPR; default 0.05; > 0 */
    size_t neighbors;     /* itemknn neighbours kept per item; default 100; >= 1 */
    float shrinkage;      /* itemknn; default 10; >= 0 */
    lp_mf_weight weight_transform; /* default AUTO (see lp_mf_weight) */
    float init_scale;     /* initial factors ~ N(0, init_scale^2 / factors); default 1 (ALS),
                           * BPR uses init_scale / 10 */
    uint64_t seed;        /* default 42 */
    int threads;          /* OpenMP threads for ALS/itemknn; 0 = the OpenMP default */
    lp_mf_iter_fn on_iter;/* optional; ALS pays one extra pass per iteration to compute it */
    void *on_iter_user;
    const char *device;   /* ALS/BPR: NULL or "cpu" = the CPU solvers above (default); "cuda",
                           * "ref", or "auto" (cuda when there is a device, else the CPU
                           * solvers) train through that kernel table's als_solve / bpr_epoch
                           * (backend.h): the same ALS model up to float rounding (always exact
                           * Cholesky solves, whatever `solver` says), and BPR with the table's
                           * Philox draws (so not the CPU solver's samples). NULL in a fitted
                           * model. */
    bool deterministic;   /* table path, BPR: deterministic mini-batches of LP_MF_BPR_BATCH
                           * samples, bit-identical runs; false = lock-free parallel SGD on a
                           * device (fastest, not repeatable). ALS is always repeatable. */
} lp_mf_opts;

/* Samples per deterministic BPR mini-batch on a kernel table (see lp_mf_opts.deterministic). */
#define LP_MF_BPR_BATCH 8192

lp_mf_opts lp_mf_opts_default(void);
/* LP_EINVAL naming the field ("opts.factors: 0 is below 1"). */
lp_status lp_mf_opts_check(const lp_mf_opts *o, lp_err *err);
const char *lp_mf_kind_name(lp_mf_kind k); /* "als", "bpr", "itemknn", "popular" */
lp_status lp_mf_kind_parse(const char *s, lp_mf_kind *out, lp_err *err);

typedef struct lp_mf lp_mf;

/* Fit a model. Errors: LP_EINVAL for bad options or empty data, LP_ENUMERIC when a factor
 * becomes non-finite or a system is not positive definite, LP_ENOMEM. *out is new; caller
 * frees. Reproducible: same data, options and seed give the same model (ALS also for any
 * thread count; BPR is sequential). Parallel over users/items with OpenMP. */
lp_status lp_mf_fit(const lp_mf_data *d, const lp_mf_opts *o, lp_mf **out, lp_err *err);
void lp_mf_free(lp_mf *m);

/* How the training interactions were read (columns, event-type weights, decay), kept in the
 * model file so that evaluation, tuning and serving read files and events the same way. The
 * strings are NULL for "none" (weight, type, time) or "not recorded". */
typedef struct lp_mf_source {
    const char *user_col, *item_col, *weight_col, *type_col, *time_col;
    lp_mf_event_opts ev;
    double time_ref; /* seconds: the time the training weights were decayed to (ev.now, or the
                        data's latest time; lp_mf_data_time_ref); 0 = none or not recorded */
} lp_mf_source;

/* Record src in m (strings copied; a column name is 1..256 bytes). Call before m is shared or
 * saved. LP_EINVAL naming the field, LP_ENOMEM. */
lp_status lp_mf_set_source(lp_mf *m, const lp_mf_source *src, lp_err *err);
/* The recorded source (owned by m), or NULL when none was recorded (files from before it). */
const lp_mf_source *lp_mf_model_source(const lp_mf *m);

lp_mf_kind lp_mf_model_kind(const lp_mf *m);
const lp_mf_opts *lp_mf_model_opts(const lp_mf *m); /* on_iter is NULL in a fitted model */
size_t lp_mf_n_users(const lp_mf *m);
size_t lp_mf_n_items(const lp_mf *m);
/* Length of a factor vector (factors, plus 1 for BPR's bias column; 0 for itemknn/popular). */
size_t lp_mf_dim(const lp_mf *m);
long lp_mf_user_index(const lp_mf *m, const char *id); /* -1 when unknown */
long lp_mf_item_index(const lp_mf *m, const char *id);
const char *lp_mf_user_id(const lp_mf *m, size_t u); /* NULL when out of range */
const char *lp_mf_item_id(const lp_mf *m, size_t i);
/* Factor rows (dim floats, owned by m) or NULL (out of range, or a kind without factors). */
const float *lp_mf_user_factors(const lp_mf *m, size_t u);
const float *lp_mf_item_factors(const lp_mf *m, size_t i);
/* Training history of user u: items (ascending) and summed weights, owned by m. */
size_t lp_mf_user_history(const lp_mf *m, size_t u, const int32_t **items, const float **w);
/* Popularity (summed weight, after the weight transform) of item i; 0 when out of range. */
float lp_mf_item_popularity(const lp_mf *m, size_t i);
/* All interactions of the model (its training history) as a new lp_mf_data, for retraining with
 * added events. */
lp_status lp_mf_to_data(const lp_mf *m, lp_mf_data **out, lp_err *err);

/* ==== fold-in, scoring, recommending ======================================================== */

/* A user vector from a history (item indices and weights) against the fixed item factors: one
 * least-squares solve x = (YtY + Yh^T (C - I) Yh + lambda I)^-1 Yh^T c, the same solve as an ALS
 * user step, so folding in a training user's own history reproduces their vector up to the
 * last item half-step. For BPR the same solve is used with alpha = 1. out: dim floats.
 * Errors: LP_EUNSUPPORTED for itemknn/popular, LP_EINVAL for an out-of-range item or a bad
 * weight, LP_ENUMERIC. Thread-safe. */
lp_status lp_mf_fold_in(const lp_mf *m, const int32_t *items, const float *w, size_t n,
                        float *out, lp_err *err);

#define LP_MF_BECAUSE_MAX 5

typedef struct lp_mf_rec {
    int32_t item;
    float score;
    int32_t because[LP_MF_BECAUSE_MAX]; /* history items that contribute most, best first */
    uint8_t n_because;
} lp_mf_rec;

/* A user's prepared state against one model: their history, their vector (given or folded in),
 * their best REC_TOP (256) items in order (history excluded), and for ALS the rows
 * p_t = (1 + alpha w_t) A_u^-1 y_t that the explanations rest on. Making it costs about what a
 * few recommendations cost; a service keeps it per active user and then answers each of that
 * user's requests by filtering the stored ranking (exclusions, allowed items) and explaining the
 * listed items with one dot product per history item, without scoring every item, rebuilding
 * A_u or folding in again; for ALS the explanations of the first 32 stored items are kept
 * too (computed once, as a request would), so a page of recommendations is answered by copying
 * them. A filter that leaves fewer than k of the stored items scores every item as the plain
 * query does. Immutable once made, so one prepared user may serve several threads at once. */
typedef struct lp_mf_user lp_mf_user;

/* Prepare a user: history (items, weights) copied; user_vec (dim floats) copied when given, else
 * folded in from the history as lp_mf_recommend would (none for itemknn/popular or an empty
 * history). lp_mf_recommend then lists the same items with the same scores, bit for bit, as
 * the same query without it (an ALS fold-in being the one the query with explanations,
 * n_because > 0, makes); ALS explanations are the same contributions rounded differently, so
 * only items whose contributions tie within float rounding may be ordered otherwise.
 * Errors: LP_EINVAL (NULL m/out, bad history as for lp_mf_recommend), LP_ENUMERIC (a fold-in
 * whose system is not positive definite), LP_ENOMEM. Thread-safe. */
lp_status lp_mf_user_new(const lp_mf *m, const float *user_vec, const int32_t *history,
                         const float *history_w, size_t n_history, lp_mf_user **out,
                         lp_err *err);
void lp_mf_user_free(lp_mf_user *u);
/* Bytes held by u (for a cache's budget); 0 for NULL. */
size_t lp_mf_user_bytes(const lp_mf_user *u);
/* The prepared history: its length, with *items / *w pointing into u. */
size_t lp_mf_user_prepared_history(const lp_mf_user *u, const int32_t **items, const float **w);

typedef struct lp_mf_query {
    const lp_mf_user *user;    /* a prepared user of the same model, or NULL; when given,
                                * user_vec and the history below are ignored and taken from it */
    const float *user_vec;     /* ALS/BPR: the user's vector (dim floats); NULL = fold in the
                                * history (or popularity when the history is empty too) */
    const int32_t *history;    /* the user's items and weights (may be NULL with n_history 0) */
    const float *history_w;
    size_t n_history;
    bool exclude_history;      /* drop history items from the list (default use: true) */
    const int32_t *exclude;    /* more items to drop */
    size_t n_exclude;
    const uint8_t *allowed;    /* n_items flags (1 = may be recommended) or NULL = all */
    size_t k;                  /* list length, >= 1 */
    size_t n_because;          /* explanations per item, 0..LP_MF_BECAUSE_MAX */
} lp_mf_query;

/* Top-k items for one user, best first (a partial sort: O(n_items log k)). Scores: ALS/BPR the
 * dot product x_u . y_i; itemknn sum_j sim(i, j) w_uj (w under the weight transform); popular
 * the distinct users of the item plus its summed weight scaled into [0, 0.5] as a tie-break
 * (also the fallback of every kind when the user has neither a vector nor a history).
 * Explanations ("because you liked X"): ALS the item-based decomposition of Hu et al. section 5,
 * score_ui = sum_j s^u_ij c_uj with s^u_ij = y_i^T W^u y_j, W^u = (Y^T C^u Y + lambda I)^-1,
 * ranked by the contribution s^u_ij c_uj; BPR the history items whose factors have the largest
 * dot product with y_i; itemknn the neighbours in the history by sim(i, j) w_uj; popular none.
 * out has room for q->k entries; *n_out may be less when fewer items are allowed.
 * Errors: LP_EINVAL (k 0, bad indices, non-finite weights), LP_ENUMERIC. Thread-safe. */
lp_status lp_mf_recommend(const lp_mf *m, const lp_mf_query *q, lp_mf_rec *out, size_t *n_out,
                          lp_err *err);

/* The k items most similar to item (cosine of item factors for ALS/BPR, the stored neighbour
 * list for itemknn, the popular ranking's score for popular), excluding item itself; allowed as above. score is
 * the similarity. Errors: LP_EINVAL for an out-of-range item or k 0. Thread-safe. */
lp_status lp_mf_similar(const lp_mf *m, size_t item, size_t k, const uint8_t *allowed,
                        lp_mf_rec *out, size_t *n_out, lp_err *err);

/* Top-k of n scores into idx (best first; ties by lower index); entries with skip[i] != 0 or
 * score -Inf are ignored; skip may be NULL. Returns how many were written (<= k). */
size_t lp_mf_topk(const float *scores, size_t n, const uint8_t *skip, size_t k, int32_t *idx);

/* ==== evaluation ============================================================================ */

typedef struct lp_mf_eval {
    size_t users;    /* users with >= 1 relevant test item */
    double precision, recall, ndcg, map; /* @k, lp_metrics_rank_at_k (metrics.h) */
    double coverage; /* distinct recommended items / n_items */
    double novelty;  /* mean -log2(pop share) of recommended items, pop share = users who
                      * interacted with the item / users in the model (unseen items count 1) */
} lp_mf_eval;

/* Evaluate top-k lists against held-out interactions. train gives each user's history (items
 * excluded from the list; also the fold-in input for users the model does not know); test
 * gives the relevant items, those with weight >= min_weight. Test users or items unknown to
 * train/model still count (an unknown item is relevant but can never be hit). Parallel over
 * users. Errors: LP_EINVAL (k 0, no user with a relevant item). */
lp_status lp_mf_evaluate(const lp_mf *m, const lp_mf_data *train, const lp_mf_data *test,
                         size_t k, float min_weight, lp_mf_eval *out, lp_err *err);

/* ==== files ================================================================================= */

/* Save into an .lpm file (registry.h): header JSON {"family":"mf","kind",...,"opts"} and the
 * sections mf/user_factors, mf/item_factors (F32), mf/pop (F32), mf/hist_ptr, mf/hist_items
 * (I32), mf/hist_w (F32), mf/knn_ptr, mf/knn_items (I32), mf/knn_sims (F32), mf/user_ids,
 * mf/item_ids (BYTES: u32 count then length-prefixed strings). Written atomically. */
lp_status lp_mf_save(const lp_mf *m, const char *path, lp_err *err);
/* Load and validate (every size, index and value is checked against the header; LP_EFORMAT
 * naming the file and section otherwise). *out is new; caller frees. */
lp_status lp_mf_load(const char *path, lp_mf **out, lp_err *err);
/* The same over bytes in memory; name is used in messages. */
lp_status lp_mf_parse(const void *data, size_t len, const char *name, lp_mf **out, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
