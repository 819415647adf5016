/*
 * fraud.h - the domain logic of lepton-fraud, the real-time transaction risk scorer, usable
 * (and tested) without main:
 *
 *   fraud_state    velocity features per entity (customer, card, terminal, ...), exact and
 *                  online: ONE update/compute path serves training (replaying history in time
 *                  order) and the service (one transaction at a time), so they cannot disagree.
 *   fraud_rules    a small rule language (comparisons, and/or/not, arithmetic over transaction
 *                  fields and features) with actions allow / review / block.
 *   fraud_scorer   the model (an lp_model over the feature vector) plus decision thresholds,
 *                  Platt calibration and TreeSHAP reason codes in words.
 *   fraud_store    SQLite persistence of transactions, labels, decisions, rules and lists, so
 *                  a restart rebuilds the exact state.
 *
 * Time is seconds since the epoch (UTC). Amounts are doubles. Features are floats (the model's
 * design), computed in double and rounded once.
 */
#ifndef LEPTON_APPS_FRAUD_H
#define LEPTON_APPS_FRAUD_H

#include "lepton/lepton.h"

#include <pthread.h>
#include <sqlite3.h>

#define FRAUD_MAX_ENTITIES 4
#define FRAUD_MAX_WINDOWS 6
#define FRAUD_MAX_EXTRA 512 /* numeric columns used as is; a wider table needs --drop-cols */
#define FRAUD_MAX_TEXT 32   /* text columns fed as value codes; more are left out */
#define FRAUD_MAX_TEXT_VALUES 32 /* distinct values of such a column in the training data */
/* amount, hour, weekday, extras, texts, per entity 6 per window + 2, the pair count */
#define FRAUD_MAX_FEATURES \
    (3 + FRAUD_MAX_EXTRA + FRAUD_MAX_TEXT + FRAUD_MAX_ENTITIES * (6 * FRAUD_MAX_WINDOWS + 2) + 1)
#define FRAUD_NEVER_SEEN_S 1e8 /* "seconds since last" of an entity never seen (about 3 years) */

/* ---- feature configuration ----------------------------------------------------------------*/
typedef struct fraud_feat_opts {
    size_t n_entities;                          /* 0..FRAUD_MAX_ENTITIES */
    char entity[FRAUD_MAX_ENTITIES][64];        /* entity column names ("customer_id") */
    size_t n_windows;                           /* 1..FRAUD_MAX_WINDOWS, increasing */
    double window_s[FRAUD_MAX_WINDOWS];         /* default 1 h, 1 d, 7 d, 30 d */
    double label_delay_s;                       /* a label counts this long after its
                                                   transaction (default 7 d) */
    double max_lateness_s;                      /* an online transaction may be this much older
                                                   than the newest seen (default 3600) */
    size_t n_extra;                             /* numeric transaction fields used as is */
    char extra[FRAUD_MAX_EXTRA][64];
    size_t n_text;                              /* text fields fed as the index of their value
                                                   in a list learned at training */
    char text[FRAUD_MAX_TEXT][64];
    size_t n_values[FRAUD_MAX_TEXT];            /* 1..FRAUD_MAX_TEXT_VALUES */
    char values[FRAUD_MAX_TEXT][FRAUD_MAX_TEXT_VALUES][64]; /* strictly increasing (strcmp) */
    bool velocity;                              /* false: only amount and extras (no time or
                                                   entities given) */
    double time_unit_s;                         /* seconds per unit of a numeric time column
                                                   (1; 0.001 for epoch ms, 3600 for hour steps);
                                                   date-time text is always read as seconds */
} fraud_feat_opts;

fraud_feat_opts fraud_feat_opts_default(void);
/* LP_EINVAL naming the field: windows not increasing or not positive, negative delay, too many
 * entities / extras / texts, empty or duplicate names, a text value list empty, too long or not
 * strictly increasing. */
lp_status fraud_feat_opts_check(const fraud_feat_opts *o, lp_err *err);
/* To / from a JSON object (saved inside the model file; a file without "text", written before
 * text features existed, has none). */
cJSON *fraud_feat_opts_to_json(const fraud_feat_opts *o);
lp_status fraud_feat_opts_from_json(const cJSON *j, fraud_feat_opts *o, lp_err *err);

/* The feature value of text field k whose value is s: the index of s in o->values[k], or NaN
 * (missing, which the gbdt routes by each split's learned default) when s is NULL or not in the
 * list. The one mapping of text to numbers: the replay (fraud_frame_row's texts) and the
 * service (JSON strings) both reach it through fraud_state_features. */
float fraud_text_code(const fraud_feat_opts *o, size_t k, const char *s);

/* Feature names in vector order (owned by the returned array's caller: free with
 * fraud_names_free). Layout: amount, hour, weekday, extras, texts (named as their columns);
 * per entity E and window W:
 * E:count_W, E:sum_W, E:mean_W, E:max_W; per entity: E:secs_since_last, E:amount_ratio
 * (amount / mean over the largest window); per entity and window: E:fraud_rate_W,
 * E:labelled_count_W (transactions in [t - delay - W, t - delay)); with two or more
 * entities: pair:count (earlier transactions of the first two entities together). */
char **fraud_feature_names(const fraud_feat_opts *o, size_t *n);
void fraud_names_free(char **names, size_t n);

/* One transaction. keys[e] is the value of entity column e (any text; NULL is refused). */
typedef struct fraud_tx {
    const char *id;
    double time;
    double amount;
    const char *keys[FRAUD_MAX_ENTITIES];
    double extra[FRAUD_MAX_EXTRA]; /* NaN = missing */
    const char *text[FRAUD_MAX_TEXT]; /* values of the text fields, NULL = missing */
    int label;                     /* -1 unknown, 0 genuine, 1 fraud (replay knows it) */
} fraud_tx;

/* ---- state ----------------------------------------------------------------------------------*/
typedef struct fraud_state fraud_state;

lp_status fraud_state_new(const fraud_feat_opts *o, fraud_state **out, lp_err *err);
void fraud_state_free(fraud_state *s);
const fraud_feat_opts *fraud_state_opts(const fraud_state *s);
size_t fraud_state_n_features(const fraud_state *s);

/* Check a transaction against the state without changing it: a missing / empty / too long id
 * (LP_EINVAL), an id already seen (LP_EEXIST), a non-finite or negative amount, a non-finite
 * time, a time more than max_lateness_s before the newest transaction seen (LP_EINVAL, naming
 * both times), a missing entity key. */
lp_status fraud_state_check(const fraud_state *s, const fraud_tx *tx, lp_err *err);
/* Features of tx from the history only (transactions strictly before tx.time, labels whose
 * delay has passed at tx.time), into x (n_features). Does not change the state. */
void fraud_state_features(const fraud_state *s, const fraud_tx *tx, float *x);
/* Add tx to the history (after fraud_state_check). tx->label >= 0 records its label too (a
 * replay knows labels up front; the delay rule decides when they count). Errors: LP_ENOMEM. */
lp_status fraud_state_update(fraud_state *s, const fraud_tx *tx, lp_err *err);
/* check + features + update, the one online step. x may be NULL (replay to warm state). */
lp_status fraud_state_step(fraud_state *s, const fraud_tx *tx, float *x, lp_err *err);
/* Record a label for an earlier transaction (1 fraud, 0 genuine). LP_ENOTFOUND when the id
 * is unknown or its transaction has left the retained history. */
lp_status fraud_state_label(fraud_state *s, const char *id, int label, lp_err *err);
/* Whether id was ever added. */
bool fraud_state_has_tx(const fraud_state *s, const char *id);
/* The transaction of id: its index in order of addition (0-based) and time; false when id was
 * never added. */
bool fraud_state_find_tx(const fraud_state *s, const char *id, size_t *index, double *time);
/* Newest transaction time seen (NaN before any). */
double fraud_state_clock(const fraud_state *s);
size_t fraud_state_n_tx(const fraud_state *s);

/* An entity's summary as of time t (count/sum/max per window, last seen, frauds labelled):
 * a new JSON object, or NULL when the entity was never seen. */
cJSON *fraud_state_entity_json(const fraud_state *s, size_t entity, const char *key, double t);

/* ---- transactions from frames ------------------------------------------------------------- */
/* Column bindings of a frame for transactions. */
typedef struct fraud_frame_map {
    long id, time, amount, label;         /* column indices or -1 */
    long keys[FRAUD_MAX_ENTITIES];
    long extra[FRAUD_MAX_EXTRA];
    long text[FRAUD_MAX_TEXT];
    double time_scale;                    /* seconds per unit of the time column */
    const char *id_prefix;                /* without an id column the id of row i is
                                             "<id_prefix><i>" ("row" unless the caller names
                                             the file's role, e.g. "test:row") */
    int label_mode;                       /* FRAUD_LABEL_* */
    uint32_t label_code;                  /* _CODE: the dict code of the positive value */
    double label_value;                   /* _VALUE: the positive number */
} fraud_frame_map;

enum {
    FRAUD_LABEL_NONZERO = 0, /* numeric label: fraud when != 0 */
    FRAUD_LABEL_CODE,        /* text label: fraud when the value is the positive one */
    FRAUD_LABEL_VALUE        /* numeric label with a given positive value */
};

/* Read a CSV/TSV/JSONL of transactions (lp_frame_read_labelled): one without a header line is
 * read with columns c1, c2, ... when the label or time column named (NULL or "": none) is not
 * on its first line (`--label c31`). Used by train, eval, backtest and serve --history alike. */
lp_status fraud_read_transactions(const char *path, const char *label, const char *time_col,
                                  lp_frame **out, lp_err *err);

/* Bind the columns the options need (id_col may be NULL: row numbers are the ids; label may be
 * NULL; a text label is bound as fraud_frame_bind_label with positive NULL; a text field's
 * column may be of any type: its cells are read as text). LP_ENOTFOUND naming a missing column,
 * LP_EINVAL for a non-numeric amount/extra or a time column that is neither numeric nor
 * date-time. */
lp_status fraud_frame_bind(const lp_frame *f, const fraud_feat_opts *o, const char *id_col,
                           const char *time_col, const char *amount_col, const char *label,
                           fraud_frame_map *map, lp_err *err);
/* Bind (or rebind) the label column. positive (NULL or "": infer) is the value that means
 * fraud. A numeric label without positive: fraud when != 0; with it, when equal to it. A text
 * label needs two values at most, the positive one given or recognizable (true, yes, y, t, 1,
 * fraud, fraudulent, positive, pos, chargeback, ... against false, no, legit, genuine, ...;
 * case-insensitive): else LP_EINVAL naming the values and --positive-label. *used (may be NULL,
 * 64 bytes) gets the positive value used as text ("" for a numeric label without one). */
lp_status fraud_frame_bind_label(const lp_frame *f, const char *label, const char *positive,
                                 fraud_frame_map *map, char *used, lp_err *err);
/* Rows of f in time order (stable: ties keep file order). Caller frees. */
size_t *fraud_frame_time_order(const lp_frame *f, const fraud_frame_map *map);
/* Fill tx from row i; text buffers for keys/id (and texts of a column read as numbers) live in
 * buf (cap >= 512 bytes; FRAUD_ROW_BUF holds them all); texts of a text column point into the
 * frame's dictionary (valid while f lives). */
#define FRAUD_ROW_BUF (512 + FRAUD_MAX_TEXT * 32)
void fraud_frame_row(const lp_frame *f, const fraud_frame_map *map, const fraud_feat_opts *o,
                     size_t i, fraud_tx *tx, char *buf, size_t cap);

/* Replay f in time order (stable) through a fresh state - the training path: features
 * *X (kept, d), labels *y (0/1; rows with a missing label are skipped when label is given),
 * times *t, all new (caller frees), in time order. Invalid or duplicate rows are skipped with a
 * warning. *rate (may be NULL) gets the replay speed in rows/s. */
lp_status fraud_replay(const lp_frame *f, const fraud_feat_opts *o, const char *id_col,
                       const char *time_col, const char *amount_col, const char *label,
                       const char *positive, float **X, int32_t **y, double **t, size_t *kept,
                       double *rate, lp_err *err);

/* ---- rules ----------------------------------------------------------------------------------*/
typedef enum fraud_action {
    FRAUD_ACTION_ALLOW = 0,
    FRAUD_ACTION_REVIEW,
    FRAUD_ACTION_BLOCK
} fraud_action;

const char *fraud_action_name(fraud_action a);

typedef struct fraud_rule fraud_rule;
/* Compile an expression over the named features. Grammar (recursive descent):
 *   or   := and ('or' and)*          and := not ('and' not)*       not := 'not' not | cmp
 *   cmp  := sum (('<'|'<='|'>'|'>='|'=='|'!=') sum)?
 *   sum  := prod (('+'|'-') prod)*   prod := unary (('*'|'/') unary)*
 *   unary:= '-' unary | atom         atom := number | name | 'true' | 'false' | '(' or ')'
 * Names are [A-Za-z_][A-Za-z0-9_:.]*. Errors (LP_EPARSE) name the 1-based column:
 * "column 12: unknown feature 'amout'", "column 5: expected ')'". */
lp_status fraud_rule_compile(const char *expr, const char *const *names, size_t n_names,
                             fraud_rule **out, lp_err *err);
void fraud_rule_free(fraud_rule *r);
/* Value of the expression on x (comparisons and logic give 0/1; division by 0 gives 0). */
double fraud_rule_eval(const fraud_rule *r, const float *x);

typedef struct fraud_ruleset {
    size_t n;
    char **name, **expr;
    fraud_action *action;
    fraud_rule **rule;
} fraud_ruleset;

/* Parse a JSON array [{"name":..,"when":..,"action":"allow|review|block"}, ...]; errors name
 * the rule (index and name) and the column. *out is new (fraud_ruleset_free). */
lp_status fraud_ruleset_parse(const cJSON *arr, const char *const *names, size_t n_names,
                              fraud_ruleset **out, lp_err *err);
void fraud_ruleset_free(fraud_ruleset *rs);
cJSON *fraud_ruleset_to_json(const fraud_ruleset *rs);

/* ---- scorer ---------------------------------------------------------------------------------*/
typedef enum fraud_decision {
    FRAUD_DECISION_APPROVE = 0,
    FRAUD_DECISION_REVIEW,
    FRAUD_DECISION_DECLINE
} fraud_decision;
const char *fraud_decision_name(fraud_decision d);

typedef struct fraud_config {
    fraud_feat_opts feat;
    double review_threshold, decline_threshold; /* on the calibrated score */
    double platt_a, platt_b;                    /* score = sigmoid(a * margin + b) */
    char version[64];                           /* model version (training time stamp) */
    char id_col[64], time_col[64], amount_col[64], label[64]; /* training column names ("" if
                                                                 none) */
    char positive_label[64]; /* the label value meaning fraud ("": a numeric label, != 0) */
    /* linear families only: the model sees (x - center) / scale (fitted on the training
     * period), so its coefficients are comparable; trees see x as is. n_scale = 0: none. */
    size_t n_scale;
    double *center, *scale;
} fraud_config;
cJSON *fraud_config_to_json(const fraud_config *c);

typedef struct fraud_train_opts {
    const char *label;
    const char *time_col, *amount_col, *id_col;
    const char *const *entity_cols;
    size_t n_entity;
    const char *const *drop;
    size_t n_drop;
    const char *positive_label; /* the label value meaning fraud (NULL: inferred) */
    double time_unit_s;  /* seconds per unit of a numeric time column; 0 (default): epoch
                            milliseconds when the values look like them, else seconds */
    double valid_days;   /* last N days of TRAIN for validation / thresholds (default 7); when
                            that is half the rows or more, the last 20% of rows in time order */
    double review_rate;  /* share of validation transactions sent to review (default 0.01) */
    double decline_rate; /* share declined (default 0.001) */
    double target_fpr;   /* > 0: review threshold at this validation FPR instead */
    lp_model_kind kind;  /* gbdt (default) or logistic */
    const lp_params *params;
    double label_delay_s;
    size_t max_genuine;  /* genuine training rows kept at most (uniform sample; default
                            400000; 0 = all); calibration uses the full validation period */
    uint64_t seed;
    const char *data_name;
    int threads;
} fraud_train_opts;
fraud_train_opts fraud_train_opts_default(void);

typedef struct fraud_reason {
    char feature[96];
    double value, contribution;
    char text[160];
} fraud_reason;

#define FRAUD_MAX_REASONS 3

typedef struct fraud_scorer fraud_scorer;

/* What training chose for the user to see: one note a line (the validation split, the time
 * unit, the columns left out of the model and why). */
typedef struct fraud_train_report {
    char notes[4096];
    double valid_auprc; /* average precision of the calibrated validation scores (NaN: none) */
} fraud_train_report;

/* Replay train in time order, build the feature frame, train the model (last valid_days for
 * validation: early stopping, calibration, thresholds) and attach the configuration to it.
 * *out is the new model (lp_model_free). rep (may be NULL) gets the notes, also logged at
 * info. */
lp_status fraud_train(const lp_frame *train, const fraud_train_opts *o, fraud_train_report *rep,
                      lp_model **out, lp_err *err);
/* A scorer over a model made by fraud_train (it keeps m). LP_EFORMAT when the model has no
 * fraud section. */
lp_status fraud_scorer_new(lp_model *m, fraud_scorer **out, lp_err *err);
void fraud_scorer_free(fraud_scorer *sc); /* frees the model too */
const fraud_config *fraud_scorer_config(const fraud_scorer *sc);
const lp_model *fraud_scorer_model(const fraud_scorer *sc);
/* Calibrated score of a feature vector (no reasons). Thread-safe. */
double fraud_scorer_score(const fraud_scorer *sc, const float *x);
/* Score and the top positive reasons in words; ws is a per-thread workspace
 * (lp_explain_ws_new(fraud_scorer_explainer(sc))). *n_reasons <= FRAUD_MAX_REASONS. */
double fraud_scorer_explain(const fraud_scorer *sc, lp_explain_ws *ws, const float *x,
                            fraud_reason *reasons, size_t *n_reasons);
const lp_explainer *fraud_scorer_explainer(const fraud_scorer *sc);
/* Feature names in vector order (owned by sc). */
const char *const *fraud_scorer_names(const fraud_scorer *sc, size_t *d);
fraud_decision fraud_scorer_decide(const fraud_scorer *sc, double score);
/* Words for feature j at value x[j] (see fraud_feature_names). */
void fraud_reason_text(const fraud_feat_opts *o, const char *feature, const float *x,
                       size_t j, const char *const *names, size_t n, char *out, size_t cap);

/* Final decision from the model's, rule hits and lists: block-list > allow-list > block rule >
 * allow rule > (review rule raises approve to review) > model. */
fraud_decision fraud_combine(fraud_decision model, const fraud_ruleset *rs, const float *x,
                             bool blocked, bool allowed, bool *hits);

/* ---- evaluation & backtest -----------------------------------------------------------------*/
typedef struct fraud_eval {
    size_t n, n_fraud, skipped; /* skipped: the sum of the four reasons below */
    size_t skipped_unlabelled;  /* test rows without a label */
    size_t skipped_invalid;     /* refused by the state check (amount, time, entity) */
    size_t skipped_duplicate;   /* an id seen earlier in the test data */
    size_t skipped_in_history;  /* an id of a history transaction at the same time: the same
                                   transaction (the files overlap) */
    size_t ids_in_history;      /* scored although the id names a history transaction at
                                   another time (per-file ids): scored as "<id>#test" */
    double auprc, auroc, recall_at_1pct_fpr, precision_at_1pct_alerts;
    size_t decisions[3];
    double replay_tx_per_s, score_p50_us, score_p99_us; /* in-process costs, wall clock */
    double replay_cpu_tx_per_s, score_cpu_p50_us, score_cpu_p99_us; /* thread CPU time */
} fraud_eval;

/* Warm a fresh state with history (may be NULL; no scoring), then score test in time order as
 * the service would (features, model, TreeSHAP reasons, state update). Rows without an id
 * column are "history:row<i>" / "test:row<i>", so the files cannot collide. A test id that
 * names a history transaction is the same transaction when the times agree (skipped, counted)
 * and else a per-file id (scored, counted); a test id repeated within the test data is skipped
 * as the service refuses it. Each count above zero is also logged as a warning. */
lp_status fraud_evaluate(fraud_scorer *sc, const lp_frame *history, const lp_frame *test,
                         fraud_eval *out, lp_err *err);
char *fraud_eval_to_json(const fraud_eval *e);

/* Replay history's transactions older than until (NAN: all of them) into s in time order, as
 * fraud_evaluate warms its state: no scoring; labels recorded up front (the label delay hides
 * them from features until due); rows the state refuses (a duplicate id, too late) skipped.
 * *n_in (may be NULL) gets the rows taken. */
lp_status fraud_state_warm(fraud_state *s, const fraud_scorer *sc, const lp_frame *history,
                           double until, size_t *n_in, lp_err *err);

/* Replay data through the features and report per rule hits, precision, recall and how many
 * model decisions it would change, as a JSON object (caller frees). */
lp_status fraud_backtest(fraud_scorer *sc, const fraud_ruleset *rs, const lp_frame *data,
                         char **json, lp_err *err);

/* ---- decision log (group commit) ----------------------------------------------------------- */
/* A writer thread with its own connection commits the decision rows of many requests in one
 * transaction (fraud_dlog.c). Per request: seq = fraud_dlog_reserve() under the lock that
 * orders the velocity state, then (without it) fraud_dlog_submit(seq, row) exactly once, then
 * fraud_dlog_wait(seq) exactly once before answering, or give the row a completion (done) that
 * the writer calls after the commit. Rows are committed in seq order and never
 * past a gap, so the log is always a prefix of the state order. Thread-safe. */
typedef struct fraud_dlog fraud_dlog;

typedef struct fraud_dlog_opts {
    size_t max_batch;        /* rows per transaction at most (default 512, 1..4096) */
    int synchronous;         /* PRAGMA synchronous: 0 off, 1 normal (default: survives a
                                process crash), 2 full (also a power loss) */
    unsigned autocheckpoint; /* PRAGMA wal_autocheckpoint pages (default 4000; 0 = never) */
    unsigned gather_us;      /* a batch waits up to this long for rows already reserved (being
                                scored) to be submitted (default 200; 0 = never waits) */
    unsigned linger_us;      /* under load (the previous batch had 2+ rows) the writer sleeps
                                this long before a batch so that more rows join it (default
                                500; 0 = never) */
} fraud_dlog_opts;
fraud_dlog_opts fraud_dlog_opts_default(void);
lp_status fraud_dlog_opts_check(const fraud_dlog_opts *o, lp_err *err);

/* Called by the writer thread once the row is committed (or failed: st, err as
 * fraud_dlog_wait gives them). It must not block on the log. */
typedef void (*fraud_dlog_done_fn)(void *arg, lp_status st, const lp_err *err);

/* One decision row; every text is copied by fraud_dlog_submit. decision is a static name.
 * done (may be NULL): the completion; with it, the row's seq is not waited for. */
typedef struct fraud_dlog_row {
    const char *id;
    double t;
    const char *request; /* the body as received (JSON) */
    size_t request_len;
    double score;
    const char *decision;
    const char *reasons, *rules_hit; /* JSON arrays as text */
    size_t reasons_len, rules_hit_len;
    const char *model_version;
    double latency_us, logged_at;
    fraud_dlog_done_fn done;
    void *done_arg;
} fraud_dlog_row;

typedef struct fraud_dlog_stats {
    uint64_t rows, commits; /* rows written, transactions committed */
    size_t max_batch;       /* most rows one commit carried */
} fraud_dlog_stats;

/* Open a second connection to db_path (its decisions table must exist) and start the writer.
 * opts may be NULL (defaults). LP_EDB naming the path, LP_EINVAL for bad opts. */
lp_status fraud_dlog_open(const char *db_path, const fraud_dlog_opts *opts, fraud_dlog **out,
                          lp_err *err);
/* Writes every submitted row, stops the writer and closes. NULL is a no-op. Call only when no
 * request is between reserve and wait. */
void fraud_dlog_free(fraud_dlog *dl);
uint64_t fraud_dlog_reserve(fraud_dlog *dl);
/* Copy row into the slot of seq (waits while the ring of 4096 rows in flight is full). An
 * allocation failure is reported by fraud_dlog_wait (LP_ENOMEM), the row then being skipped. */
void fraud_dlog_submit(fraud_dlog *dl, uint64_t seq, const fraud_dlog_row *row);
/* Wait until the row of seq is committed: LP_OK; LP_EEXIST (the id is already logged: only that
 * row is refused); LP_EDB (its batch failed; sticky, see fraud_dlog_check); LP_ENOMEM. */
lp_status fraud_dlog_wait(fraud_dlog *dl, uint64_t seq, lp_err *err);
/* LP_OK, or LP_EDB once a batch has failed to commit (nothing is written after it). */
lp_status fraud_dlog_check(fraud_dlog *dl, lp_err *err);
fraud_dlog_stats fraud_dlog_get_stats(fraud_dlog *dl);

/* ---- service ------------------------------------------------------------------------------- */
typedef struct fraud_service fraud_service;

/* Open (creating) the SQLite database at db_path, rebuild state from history's transactions
 * older than the first logged decision (history may be NULL: the labelled transactions of serve
 * --history, so customers and terminals are not new on the first day of service), then the
 * database's transactions and labels; load rules and lists. The service takes sc, and history
 * (kept for rule backtests), on success only. */
lp_status fraud_service_new(fraud_scorer *sc, const char *db_path, lp_frame *history,
                            fraud_service **out, lp_err *err);
void fraud_service_free(fraud_service *svc);
/* Counters of the decision log's group commit (rows, commits, largest batch). */
fraud_dlog_stats fraud_service_log_stats(fraud_service *svc);
/* The route table (static) and its length. */
const lp_route *fraud_service_routes(size_t *n);

#endif
