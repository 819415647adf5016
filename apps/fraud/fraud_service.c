/*
 * fraud_service.c - the HTTP API of lepton-fraud (docs/fraud.openapi.yaml) and its SQLite
 * store. Routes: POST /v1/score, POST /v1/labels, GET /v1/entities/{id}, GET|PUT /v1/rules,
 * POST /v1/rules/backtest (when served with --history), GET|POST /v1/lists, GET /v1/model,
 * GET /v1/monitor, plus
 * the shared endpoints of the serve layer.
 *
 * Durability: the database (WAL) is the source of truth. A transaction's decision row (its
 * request, score, decision, reasons, rule hits, model version) is committed BEFORE the answer
 * is sent: the request waits for the group commit of the decision log's writer thread
 * (fraud_dlog.c), which writes the rows of all requests waiting at that moment in one SQLite
 * transaction. The state is updated when the features are taken, and the row's place in the
 * log is reserved in the same critical section, so the committed log is always a prefix of the
 * state order: a crash (even SIGKILL mid-load) loses only requests that were never answered,
 * and on start the state is rebuilt by replaying the decision rows in time order and then the
 * labels, through the same fraud_state code. If a commit fails (I/O error, disk full) the
 * state holds transactions the log lacks: the service then refuses to score (LP_EDB) until it
 * is restarted and rebuilt. Labels, rules and lists are stored with their own statements.
 *
 * Monitoring (GET /v1/monitor, lepton serve's shape): the model file's drift reference (section
 * "drift", written by fraud_train) against a sketch of the features and calibrated scores of
 * the transactions scored by this model version in this database (rebuilt on start from the
 * decision rows); live metrics from the labels joined to their decisions, over the latest
 * MON_WINDOW labelled ones: accuracy of "flagged" (score >= the review threshold) against
 * "fraud", and AUROC of the score.
 *
 * Concurrency: the service mutex mu guards the velocity state, the lists and the main database
 * connection; /v1/score holds it only for the check, the features, the state update and the
 * log reservation (a few microseconds). The model, TreeSHAP, reason texts, rules (under their
 * own read-write lock) and the response run outside it with per-request scratch from a pool;
 * the answer text is written by hand into that scratch (no cJSON tree), and the log row reuses
 * its reasons and rules_hit arrays. Handlers never crash on input: every field is checked and
 * every failure is one error line naming the field.
 */
#include "fraud.h"
#include "fraud_internal.h"

#include <ctype.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SCHEMA_VERSION 1
/* A transaction dated after now by more than a clock's skew is refused: the online state's
 * clock is the newest time seen, and one transaction dated a day ahead used to move it there,
 * after which every real one (dated now) was "late" and refused for that day, across restarts
 * (the state is rebuilt from the log). At most 5 minutes and half the lateness window, so that a
 * transaction dated now is always still inside the window. */
#define MAX_FUTURE_S 300.0

static double max_future_s(const fraud_config *c)
{
    double half = c->feat.max_lateness_s / 2;
    return half < MAX_FUTURE_S ? half : MAX_FUTURE_S;
}
#define MON_WINDOW 10000     /* live metrics over this many latest labelled transactions */
#define PSI_THRESHOLD 0.2

typedef struct listent {
    uint64_t h;  /* hash of (list, entity index, value) */
    char *entity, *value;
    int list;    /* 0 block, 1 allow */
} listent;

typedef struct scratch scratch;
/* A request's scratch: the feature vector, the TreeSHAP workspace and the response text, kept
 * in a pool (one per concurrent request, so about one per server thread) and reused. */
struct scratch {
    scratch *next;
    float *x;           /* (d,) */
    lp_explain_ws *ws;
    lp_buf out;         /* the response body */
    fraud_service *svc; /* for a deferred answer: where the scratch goes back */
    lp_deferred *d;     /* the deferred answer, or NULL */
    char id[160];       /* the transaction id (for the duplicate message) */
};
static void scratch_free(scratch *s);

struct fraud_service {
    pthread_mutex_t mu;     /* the state, the lists, the database connection db */
    pthread_rwlock_t rules_lock; /* rules: read by every score, swapped by PUT /v1/rules */
    pthread_mutex_t mon_mu; /* the drift sketch sk */
    pthread_mutex_t pool_mu;
    scratch *pool;          /* free per-request scratch blocks */
    fraud_scorer *sc;
    fraud_state *st;
    fraud_ruleset *rules;
    listent *lists;
    size_t n_lists, cap_lists;
    sqlite3 *db;            /* labels, rules, lists, reads; decision rows go through dlog */
    fraud_dlog *dlog;       /* the group-commit writer of the decision log (own connection) */
    float *x;               /* (d,) start-up scratch (rebuild) */
    size_t d;
    uint64_t n_scored;
    lp_frame *history; /* labelled transactions for rule backtests (serve --history), or NULL */
    lp_drift *ref;          /* the model's drift reference, or NULL (mon_reason says why) */
    lp_drift_sketch *sk;    /* live counts against ref */
    long *ref_j;            /* (d,) the drift feature of feature j, or -1 */
    long score_j;           /* the drift feature "_score", or -1 */
    char mon_reason[200];
};

bool fraud_parse_time(const cJSON *v, double *out)
{
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
        return isfinite(*out);
    }
    if (cJSON_IsString(v))
        return lp_parse_datetime(v->valuestring, strlen(v->valuestring), out);
    return false;
}

/* ---- SQLite ---------------------------------------------------------------------------------*/

static lp_status db_exec(sqlite3 *db, const char *sql, lp_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        lp_status st = lp_err_set(err, LP_EDB, "database: %s", msg ? msg : "error");
        sqlite3_free(msg);
        return st;
    }
    return LP_OK;
}

static lp_status db_open(const char *path, sqlite3 **db, lp_err *err)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX;
    if (sqlite3_open_v2(path, db, flags, NULL) != SQLITE_OK) {
        lp_status st = lp_err_set(err, LP_EDB, "database %s: %s", path,
                                  *db ? sqlite3_errmsg(*db) : "cannot open");
        sqlite3_close(*db);
        *db = NULL;
        return st;
    }
    sqlite3_busy_timeout(*db, 5000);
    lp_status st = db_exec(*db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err);
    sqlite3_stmt *q = NULL;
    int ver = -1;
    if (!st && sqlite3_prepare_v2(*db, "PRAGMA user_version", -1, &q, NULL) == SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        ver = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (!st && ver == 0)
        st = db_exec(*db,
                     "BEGIN;"
                     "CREATE TABLE IF NOT EXISTS decisions(id TEXT PRIMARY KEY, t REAL NOT NULL,"
                     " request TEXT NOT NULL, score REAL, decision TEXT, reasons TEXT,"
                     " rules_hit TEXT, model_version TEXT, latency_us REAL, logged_at REAL);"
                     "CREATE INDEX IF NOT EXISTS decisions_t ON decisions(t);"
                     "CREATE TABLE IF NOT EXISTS labels(id TEXT PRIMARY KEY, label INTEGER NOT"
                     " NULL, kind TEXT, received_at REAL);"
                     "CREATE TABLE IF NOT EXISTS rules(k INTEGER PRIMARY KEY CHECK(k = 1),"
                     " body TEXT NOT NULL);"
                     "CREATE TABLE IF NOT EXISTS lists(list TEXT, entity TEXT, value TEXT,"
                     " added_at REAL, PRIMARY KEY(list, entity, value));"
                     "PRAGMA user_version = 1; COMMIT;",
                     err);
    else if (!st && ver != SCHEMA_VERSION)
        st = lp_err_set(err, LP_EVERSION, "database %s: schema version %d, this build knows %d",
                        path, ver, SCHEMA_VERSION);
    if (st) {
        sqlite3_close(*db);
        *db = NULL;
    }
    return st;
}

/* ---- transactions from JSON ---------------------------------------------------------------- */

static bool id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr("-_.:@#", *s))
            return false;
    return true;
}

/* Text of an id-like member (string, or integer number) into buf. */
static bool id_text(const cJSON *v, char *buf, size_t cap)
{
    if (cJSON_IsString(v)) {
        size_t n = strlen(v->valuestring);
        if (n >= cap)
            return false;
        memcpy(buf, v->valuestring, n + 1);
        return true;
    }
    if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
        fabs(v->valuedouble) < 9e15) {
        snprintf(buf, cap, "%.0f", v->valuedouble);
        return true;
    }
    return false;
}

static const cJSON *member2(const cJSON *j, const char *a, const char *b)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, a);
    if ((!v || cJSON_IsNull(v)) && b && b[0])
        v = cJSON_GetObjectItemCaseSensitive(j, b);
    return v && !cJSON_IsNull(v) ? v : NULL;
}

/* Fill tx from a request object; bufs holds the id and key texts. now: wall clock (NaN in a
 * replay from the database, where the far-future check does not apply). */
static lp_status tx_from_json(const fraud_config *c, const cJSON *j, double now, fraud_tx *tx,
                              char (*bufs)[160], lp_err *err)
{
    memset(tx, 0, sizeof *tx);
    tx->label = -1;
    if (!cJSON_IsObject(j))
        return lp_err_set(err, LP_EINVAL, "body: expected a JSON object (a transaction)");
    const cJSON *v = member2(j, "transaction_id", c->id_col);
    if (!v || !id_text(v, bufs[0], 160) || !id_ok(bufs[0]))
        return lp_err_set(err, LP_EINVAL, "field 'transaction_id': expected a string of 1..128 "
                          "characters from [A-Za-z0-9-_.:@#] (or an integer)");
    tx->id = bufs[0];
    v = member2(j, "amount", c->amount_col);
    if (c->amount_col[0] || cJSON_GetObjectItemCaseSensitive(j, "amount")) {
        if (!v || !cJSON_IsNumber(v))
            return lp_err_set(err, LP_EINVAL, "field 'amount': missing or not a number");
        if (!(v->valuedouble >= 0) || !isfinite(v->valuedouble))
            return lp_err_set(err, LP_EINVAL, "field 'amount': %g is negative; expected a "
                              "number >= 0", v->valuedouble);
        tx->amount = v->valuedouble;
    }
    v = member2(j, "time", c->time_col);
    /* a model without a time column whose training file had a numeric column "time" (say,
     * seconds since the first row) reads it as that feature only, not as a clock */
    for (size_t k = 0; v && !c->time_col[0] && k < c->feat.n_extra; k++)
        if (!strcmp(c->feat.extra[k], "time"))
            v = NULL;
    if (v) {
        if (!fraud_parse_time(v, &tx->time))
            return lp_err_set(err, LP_EINVAL, "field 'time': expected ISO-8601 "
                              "(2026-01-31T12:00:00Z) or epoch seconds");
        /* a number under the training column's name is in that column's unit (the model's
         * time_unit_s, e.g. epoch ms); under "time" it is epoch seconds */
        bool col = v != cJSON_GetObjectItemCaseSensitive(j, "time") ||
                   !strcmp(c->time_col, "time");
        if (cJSON_IsNumber(v) && col)
            tx->time *= c->feat.time_unit_s;
        if (isfinite(now) && tx->time > now + max_future_s(c))
            return lp_err_set(err, LP_EINVAL, "field 'time': %.0f is %.0f s in the future (at "
                              "most %.0f s of clock skew is accepted)",
                              tx->time, tx->time - now, max_future_s(c));
    } else if (isfinite(now)) {
        tx->time = now;
    } else {
        return lp_err_set(err, LP_EINVAL, "field 'time': missing");
    }
    for (size_t e = 0; e < c->feat.n_entities; e++) {
        v = member2(j, c->feat.entity[e], NULL);
        if (!v || !id_text(v, bufs[1 + e], 160) || !id_ok(bufs[1 + e]))
            return lp_err_set(err, LP_EINVAL, "field '%s': expected an id (string of 1..128 "
                              "characters from [A-Za-z0-9-_.:@#], or an integer)",
                              c->feat.entity[e]);
        tx->keys[e] = bufs[1 + e];
    }
    for (size_t k = 0; k < c->feat.n_extra; k++) {
        v = member2(j, c->feat.extra[k], NULL);
        if (v && !cJSON_IsNumber(v))
            return lp_err_set(err, LP_EINVAL, "field '%s': expected a number", c->feat.extra[k]);
        if (v && fabs(v->valuedouble) > FLT_MAX) /* features are floats */
            return lp_err_set(err, LP_EINVAL, "field '%s': %g is beyond the float range (%g)",
                              c->feat.extra[k], v->valuedouble, (double)FLT_MAX);
        tx->extra[k] = v ? v->valuedouble : NAN;
    }
    /* text fields: a value the model did not see in training counts as missing (the feature
     * code maps it), so a new merchant category is scored, not refused */
    for (size_t k = 0; k < c->feat.n_text; k++) {
        v = member2(j, c->feat.text[k], NULL);
        if (v && !cJSON_IsString(v))
            return lp_err_set(err, LP_EINVAL, "field '%s': expected a string (a text value such "
                              "as '%s'; an unknown one counts as missing)", c->feat.text[k],
                              c->feat.values[k][0]);
        tx->text[k] = v ? v->valuestring : NULL;
    }
    return LP_OK;
}

/* ---- lists ----------------------------------------------------------------------------------*/

static uint64_t list_hash(int list, const char *entity, const char *value)
{
    return fraud_hash(value, fraud_hash(entity, (uint64_t)list + 1));
}

static long list_find(const fraud_service *svc, uint64_t h)
{
    for (size_t i = 0; i < svc->n_lists; i++)
        if (svc->lists[i].h == h)
            return (long)i;
    return -1;
}

static lp_status list_add_mem(fraud_service *svc, int list, const char *entity,
                              const char *value, lp_err *err)
{
    uint64_t h = list_hash(list, entity, value);
    if (list_find(svc, h) >= 0)
        return LP_OK;
    if (svc->n_lists == svc->cap_lists) {
        size_t nc = svc->cap_lists ? svc->cap_lists * 2 : 16;
        listent *g = lp_reallocarray(svc->lists, nc, sizeof *g);
        if (!g)
            return lp_err_set(err, LP_ENOMEM, "out of memory");
        svc->lists = g;
        svc->cap_lists = nc;
    }
    listent *l = &svc->lists[svc->n_lists];
    l->h = h;
    l->list = list;
    l->entity = lp_strdup(entity);
    l->value = lp_strdup(value);
    if (!l->entity || !l->value) {
        free(l->entity);
        free(l->value);
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    }
    svc->n_lists++;
    return LP_OK;
}

static void list_remove_mem(fraud_service *svc, int list, const char *entity, const char *value)
{
    long i = list_find(svc, list_hash(list, entity, value));
    if (i < 0)
        return;
    free(svc->lists[i].entity);
    free(svc->lists[i].value);
    svc->lists[i] = svc->lists[--svc->n_lists];
}

static bool on_list(const fraud_service *svc, int list, const fraud_tx *tx)
{
    const fraud_feat_opts *o = &fraud_scorer_config(svc->sc)->feat;
    for (size_t e = 0; svc->n_lists && e < o->n_entities; e++)
        if (list_find(svc, list_hash(list, o->entity[e], tx->keys[e])) >= 0)
            return true;
    return false;
}

/* ---- start-up: rebuild from the database ------------------------------------------------- */

/* ---- monitoring -----------------------------------------------------------------------------*/

/* Load the model's drift reference (absent in models trained before it existed: then the
 * reason is kept for GET /v1/monitor). Only an allocation failure is an error. */
static lp_status mon_init(fraud_service *svc, lp_err *err)
{
    svc->score_j = -1;
    const void *data;
    size_t len;
    lp_err e2;
    if (lp_model_get_extra(fraud_scorer_model(svc->sc), "drift", &data, &len, NULL)) {
        snprintf(svc->mon_reason, sizeof svc->mon_reason,
                 "the model has no drift reference (trained before monitoring): retrain it with "
                 "lepton-fraud train to get one");
        return LP_OK;
    }
    if (lp_drift_load(data, len, &svc->ref, &e2)) {
        snprintf(svc->mon_reason, sizeof svc->mon_reason, "the model's drift reference: %.150s",
                 lp_err_text(&e2));
        return LP_OK;
    }
    svc->sk = lp_drift_sketch_new(svc->ref);
    svc->ref_j = lp_mallocarray(svc->d + 1, sizeof(long));
    if (!svc->sk || !svc->ref_j)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    size_t d;
    const char *const *names = fraud_scorer_names(svc->sc, &d);
    for (size_t j = 0; j < d; j++)
        svc->ref_j[j] = lp_drift_find(svc->ref, names[j]);
    svc->score_j = lp_drift_find(svc->ref, "_score");
    return LP_OK;
}

/* Count one scored transaction (its features x and calibrated score) in the drift sketch. */
static void mon_count(fraud_service *svc, const float *x, double score)
{
    if (!svc->sk)
        return;
    for (size_t j = 0; j < svc->d; j++)
        if (svc->ref_j[j] >= 0)
            lp_drift_sketch_add_num(svc->sk, (size_t)svc->ref_j[j], x[j]);
    if (svc->score_j >= 0)
        lp_drift_sketch_add_num(svc->sk, (size_t)svc->score_j, score);
}

static lp_status rebuild(fraud_service *svc, const lp_frame *history, lp_err *err)
{
    const fraud_config *c = fraud_scorer_config(svc->sc);
    sqlite3_stmt *q = NULL;
    lp_status st = LP_OK;
    size_t n = 0, nh = 0;
    if (history) { /* older than the log's first decision: the log's own replay comes after */
        double first = NAN;
        if (sqlite3_prepare_v2(svc->db, "SELECT MIN(t) FROM decisions", -1, &q, NULL) !=
            SQLITE_OK)
            return lp_err_set(err, LP_EDB, "database: %s", sqlite3_errmsg(svc->db));
        if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL)
            first = sqlite3_column_double(q, 0);
        sqlite3_finalize(q);
        q = NULL;
        if ((st = fraud_state_warm(svc->st, svc->sc, history, first, &nh, err)))
            return lp_err_prefix(err, "--history");
    }
    if (sqlite3_prepare_v2(svc->db, "SELECT request, score, model_version FROM decisions"
                           " ORDER BY t, rowid", -1, &q, NULL) != SQLITE_OK)
        return lp_err_set(err, LP_EDB, "database: %s", sqlite3_errmsg(svc->db));
    while (!st && sqlite3_step(q) == SQLITE_ROW) {
        const char *body = (const char *)sqlite3_column_text(q, 0);
        const char *ver = (const char *)sqlite3_column_text(q, 2);
        cJSON *j = body ? cJSON_Parse(body) : NULL;
        fraud_tx tx;
        char bufs[1 + FRAUD_MAX_ENTITIES][160];
        lp_err e2;
        if (j && !tx_from_json(c, j, NAN, &tx, bufs, &e2) && !fraud_state_has_tx(svc->st, tx.id)) {
            /* the drift window: what this model version scored, with the features it saw */
            if (svc->sk && ver && !strcmp(ver, c->version)) {
                fraud_state_features(svc->st, &tx, svc->x);
                mon_count(svc, svc->x, sqlite3_column_double(q, 1));
            }
            st = fraud_state_update(svc->st, &tx, err);
        }
        cJSON_Delete(j);
        n++;
    }
    sqlite3_finalize(q);
    if (st)
        return st;
    size_t nl = 0;
    if (sqlite3_prepare_v2(svc->db, "SELECT id, label FROM labels", -1, &q, NULL) != SQLITE_OK)
        return lp_err_set(err, LP_EDB, "database: %s", sqlite3_errmsg(svc->db));
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(q, 0);
        nl += id && !fraud_state_label(svc->st, id, sqlite3_column_int(q, 1), NULL);
    }
    sqlite3_finalize(q);
    if (sqlite3_prepare_v2(svc->db, "SELECT body FROM rules WHERE k = 1", -1, &q, NULL) ==
            SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW) {
        cJSON *j = cJSON_Parse((const char *)sqlite3_column_text(q, 0));
        size_t d;
        const char *const *names = fraud_scorer_names(svc->sc, &d);
        lp_err e2;
        if (!j || fraud_ruleset_parse(j, names, d, &svc->rules, &e2))
            lp_log_warn("stored rules no longer parse for this model; serving without rules");
        cJSON_Delete(j);
    }
    sqlite3_finalize(q);
    if (sqlite3_prepare_v2(svc->db, "SELECT list, entity, value FROM lists", -1, &q, NULL) ==
        SQLITE_OK) {
        while (!st && sqlite3_step(q) == SQLITE_ROW)
            st = list_add_mem(svc, strcmp((const char *)sqlite3_column_text(q, 0), "block") != 0,
                              (const char *)sqlite3_column_text(q, 1),
                              (const char *)sqlite3_column_text(q, 2), err);
    }
    sqlite3_finalize(q);
    lp_log_info("fraud: state rebuilt from %zu history transactions, then %zu logged "
                "transactions and %zu labels", nh, n, nl);
    return st;
}

lp_status fraud_service_new(fraud_scorer *sc, const char *db_path, lp_frame *history,
                            fraud_service **out, lp_err *err)
{
    *out = NULL;
    fraud_service *svc = lp_calloc(1, sizeof *svc);
    if (!svc)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    pthread_mutex_init(&svc->mu, NULL);
    pthread_rwlock_init(&svc->rules_lock, NULL);
    pthread_mutex_init(&svc->mon_mu, NULL);
    pthread_mutex_init(&svc->pool_mu, NULL);
    svc->sc = sc;
    const fraud_config *c = fraud_scorer_config(sc);
    lp_status st = fraud_state_new(&c->feat, &svc->st, err);
    if (!st) {
        svc->d = fraud_state_n_features(svc->st);
        svc->x = lp_calloc(svc->d ? svc->d : 1, sizeof(float));
        if (!svc->x)
            st = lp_err_set(err, LP_ENOMEM, "out of memory");
    }
    if (!st)
        st = db_open(db_path, &svc->db, err);
    if (!st)
        st = mon_init(svc, err);
    if (!st)
        st = rebuild(svc, history, err);
    if (!st)
        st = fraud_dlog_open(db_path, NULL, &svc->dlog, err);
    if (st) {
        svc->sc = NULL; /* the caller keeps sc and history on failure */
        fraud_service_free(svc);
        return st;
    }
    svc->history = history;
    *out = svc;
    return LP_OK;
}

fraud_dlog_stats fraud_service_log_stats(fraud_service *svc)
{
    return fraud_dlog_get_stats(svc->dlog);
}

void fraud_service_free(fraud_service *svc)
{
    if (!svc)
        return;
    fraud_dlog_free(svc->dlog); /* writes what was submitted; no request is in flight */
    while (svc->pool) {
        scratch *next = svc->pool->next;
        scratch_free(svc->pool);
        svc->pool = next;
    }
    fraud_scorer_free(svc->sc);
    fraud_state_free(svc->st);
    fraud_ruleset_free(svc->rules);
    for (size_t i = 0; i < svc->n_lists; i++) {
        free(svc->lists[i].entity);
        free(svc->lists[i].value);
    }
    free(svc->lists);
    free(svc->x);
    lp_frame_free(svc->history);
    lp_drift_sketch_free(svc->sk);
    lp_drift_free(svc->ref);
    free(svc->ref_j);
    sqlite3_close(svc->db);
    pthread_rwlock_destroy(&svc->rules_lock);
    pthread_mutex_destroy(&svc->mon_mu);
    pthread_mutex_destroy(&svc->pool_mu);
    pthread_mutex_destroy(&svc->mu);
    free(svc);
}

/* ---- handlers -------------------------------------------------------------------------------*/

/* ---- the scoring path ---------------------------------------------------------------------- */

static void scratch_free(scratch *s)
{
    if (!s)
        return;
    free(s->x);
    lp_explain_ws_free(s->ws);
    lp_buf_free(&s->out);
    free(s);
}

static scratch *scratch_get(fraud_service *svc)
{
    pthread_mutex_lock(&svc->pool_mu);
    scratch *s = svc->pool;
    if (s)
        svc->pool = s->next;
    pthread_mutex_unlock(&svc->pool_mu);
    if (s)
        return s;
    s = lp_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    lp_buf_init(&s->out);
    s->x = lp_calloc(svc->d ? svc->d : 1, sizeof(float));
    s->ws = lp_explain_ws_new(fraud_scorer_explainer(svc->sc));
    if (!s->x || !s->ws) {
        scratch_free(s);
        return NULL;
    }
    return s;
}

static void scratch_put(fraud_service *svc, scratch *s)
{
    pthread_mutex_lock(&svc->pool_mu);
    s->next = svc->pool;
    svc->pool = s;
    pthread_mutex_unlock(&svc->pool_mu);
}

/* JSON text pieces for the hand-built response (the shape cJSON_PrintUnformatted gives; strings
 * and numbers through lp_json_write_str / lp_json_write_num). */
static void js_key(lp_buf *b, const char *k)
{
    lp_buf_put(b, k, strlen(k));
}

/* The decision log's completion of a deferred /v1/score (on the log's writer thread): the answer
 * built by h_score, or the log's error; then the scratch goes back to the pool. */
static void score_done(void *arg, lp_status st, const lp_err *err)
{
    scratch *s = arg;
    lp_res *res = lp_deferred_res(s->d);
    if (!st && s->out.failed)
        lp_http_error(res, LP_ENOMEM, "out of memory building the answer");
    else if (!st && lp_res_bytes(res, 200, "application/json", s->out.data, s->out.len))
        lp_http_error(res, LP_ENOMEM, "out of memory sending the answer");
    else if (st == LP_EEXIST)
        lp_http_error(res, LP_EEXIST, "transaction '%s' was already scored", s->id);
    else if (st)
        lp_http_error_from(res, err);
    lp_deferred *d = s->d;
    s->d = NULL;
    scratch_put(s->svc, s);
    lp_deferred_finish(d);
}

/* POST /v1/score. Under svc->mu only what must be ordered per entity: the duplicate / lateness
 * check, the features from the state, the state update, the lists and the decision log's
 * sequence number (so log order = state order). The model, TreeSHAP, reason texts, rules and
 * the response are computed outside it; then the row goes to the group-commit writer and the
 * answer waits for its commit, so an answered decision is always in the log. The wait is a
 * deferred answer (lp_req_defer): the server thread goes on with other connections and the
 * writer sends the answers of a whole batch after its commit (score_done); only when the
 * layer cannot defer does the handler block in fraud_dlog_wait. */
static lp_status h_score(const lp_req *req, lp_res *res, void *user)
{
    fraud_service *svc = user;
    uint64_t t0 = lp_time_ns();
    lp_err err;
    fraud_tx tx;
    char bufs[1 + FRAUD_MAX_ENTITIES][160];
    const fraud_config *c = fraud_scorer_config(svc->sc);
    lp_status st = tx_from_json(c, req->json, lp_time_wall(), &tx, bufs, &err);
    if (!st)
        st = fraud_dlog_check(svc->dlog, &err);
    if (st)
        return lp_http_error_from(res, &err);
    scratch *s = scratch_get(svc);
    if (!s)
        return lp_http_error(res, LP_ENOMEM, "out of memory");
    bool blocked = false, allowed = false;
    uint64_t seq = 0;
    pthread_mutex_lock(&svc->mu);
    st = fraud_state_check(svc->st, &tx, &err);
    if (!st) {
        fraud_state_features(svc->st, &tx, s->x);
        st = fraud_state_update(svc->st, &tx, &err);
    }
    if (!st) {
        blocked = on_list(svc, 0, &tx);
        allowed = !blocked && on_list(svc, 1, &tx);
        seq = fraud_dlog_reserve(svc->dlog);
        svc->n_scored++;
    }
    pthread_mutex_unlock(&svc->mu);
    if (st) {
        scratch_put(svc, s);
        return lp_http_error_from(res, &err);
    }

    fraud_reason rs[FRAUD_MAX_REASONS];
    size_t nr = 0;
    double score = fraud_scorer_explain(svc->sc, s->ws, s->x, rs, &nr);
    fraud_decision md = fraud_scorer_decide(svc->sc, score);
    bool hits[1000]; /* fraud_ruleset_parse allows 1000 rules at most */
    /* the rules are read under their lock until their names are written (PUT swaps them) */
    pthread_rwlock_rdlock(&svc->rules_lock);
    fraud_decision fd = fraud_combine(md, svc->rules, s->x, blocked, allowed, hits);
    lp_buf *b = &s->out;
    b->len = 0;
    b->failed = false;
    /* numbers with a fixed precision: 12 significant digits for the probability, 9 (float
     * precision) for feature values and contributions */
    js_key(b, "{\"transaction_id\":");
    lp_json_write_str(b, tx.id);
    js_key(b, ",\"score\":");
    lp_json_write_num(b, score, 12);
    js_key(b, ",\"decision\":");
    lp_json_write_str(b, fraud_decision_name(fd));
    js_key(b, ",\"model_decision\":");
    lp_json_write_str(b, fraud_decision_name(md));
    js_key(b, ",\"reasons\":");
    size_t r0 = b->len;
    lp_buf_u8(b, '[');
    for (size_t i = 0; i < nr; i++) {
        js_key(b, i ? ",{\"feature\":" : "{\"feature\":");
        lp_json_write_str(b, rs[i].feature);
        js_key(b, ",\"value\":");
        lp_json_write_num(b, rs[i].value, 9);
        js_key(b, ",\"contribution\":");
        lp_json_write_num(b, rs[i].contribution, 9);
        js_key(b, ",\"text\":");
        lp_json_write_str(b, rs[i].text);
        lp_buf_u8(b, '}');
    }
    lp_buf_u8(b, ']');
    size_t r1 = b->len;
    js_key(b, ",\"rules_hit\":");
    size_t h0 = b->len, nh = 0;
    lp_buf_u8(b, '[');
    for (size_t i = 0; svc->rules && i < svc->rules->n; i++)
        if (hits[i]) {
            if (nh++)
                lp_buf_u8(b, ',');
            lp_json_write_str(b, svc->rules->name[i]);
        }
    pthread_rwlock_unlock(&svc->rules_lock);
    if (blocked)
        js_key(b, nh++ ? ",\"list:block\"" : "\"list:block\"");
    if (allowed)
        js_key(b, nh++ ? ",\"list:allow\"" : "\"list:allow\"");
    lp_buf_u8(b, ']');
    size_t h1 = b->len;
    js_key(b, ",\"model_version\":");
    lp_json_write_str(b, c->version);
    double latency_us = (double)(lp_time_ns() - t0) / 1e3;
    js_key(b, ",\"latency_us\":");
    lp_json_write_num(b, round(latency_us * 10) / 10, 9);
    lp_buf_u8(b, '}');

    if (svc->sk) {
        pthread_mutex_lock(&svc->mon_mu);
        mon_count(svc, s->x, score);
        pthread_mutex_unlock(&svc->mon_mu);
    }
    const char *body = (const char *)b->data;
    fraud_dlog_row row = {.id = tx.id,
                          .t = tx.time,
                          .request = req->body,
                          .request_len = req->body_len,
                          .score = score,
                          .decision = fraud_decision_name(fd),
                          .reasons = b->failed ? "[]" : body + r0,
                          .reasons_len = b->failed ? 2 : r1 - r0,
                          .rules_hit = b->failed ? "[]" : body + h0,
                          .rules_hit_len = b->failed ? 2 : h1 - h0,
                          .model_version = c->version,
                          .latency_us = latency_us,
                          .logged_at = lp_time_wall()};
    s->d = lp_req_defer(req);
    if (s->d) {
        s->svc = svc;
        snprintf(s->id, sizeof s->id, "%s", tx.id);
        row.done = score_done;
        row.done_arg = s;
        fraud_dlog_submit(svc->dlog, seq, &row); /* s belongs to the writer from here */
        return LP_OK;
    }
    fraud_dlog_submit(svc->dlog, seq, &row);
    st = fraud_dlog_wait(svc->dlog, seq, &err);
    if (!st && b->failed)
        st = lp_err_set(&err, LP_ENOMEM, "out of memory building the answer");
    if (!st && lp_res_bytes(res, 200, "application/json", b->data, b->len))
        st = lp_err_set(&err, LP_ENOMEM, "out of memory sending the answer");
    scratch_put(svc, s);
    if (st == LP_EEXIST)
        return lp_http_error(res, LP_EEXIST, "transaction '%s' was already scored", bufs[0]);
    if (st)
        return lp_http_error_from(res, &err);
    return LP_OK;
}

static int label_value(const char *s)
{
    if (!strcmp(s, "fraud") || !strcmp(s, "chargeback") || !strcmp(s, "confirmed_fraud"))
        return 1;
    if (!strcmp(s, "genuine") || !strcmp(s, "confirmed_genuine"))
        return 0;
    return -1;
}

static lp_status h_labels(const lp_req *req, lp_res *res, void *user)
{
    fraud_service *svc = user;
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(req->json, "labels");
    cJSON *single = NULL;
    if (!arr && cJSON_IsObject(req->json)) {
        single = cJSON_CreateArray();
        cJSON_AddItemReferenceToArray(single, (cJSON *)req->json);
        arr = single;
    }
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0 || cJSON_GetArraySize(arr) > 10000) {
        cJSON_Delete(single);
        return lp_http_error(res, LP_EINVAL, "field 'labels': expected an array of 1..10000 "
                             "{transaction_id, label}");
    }
    pthread_mutex_lock(&svc->mu);
    /* validate everything first: a batch is applied whole or not at all */
    const cJSON *it;
    size_t i = 0;
    lp_status st = LP_OK;
    char msg[300] = "";
    cJSON_ArrayForEach(it, arr)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "transaction_id");
        const cJSON *lb = cJSON_GetObjectItemCaseSensitive(it, "label");
        char buf[160];
        if (!id || !id_text(id, buf, sizeof buf) || !id_ok(buf)) {
            st = LP_EINVAL;
            snprintf(msg, sizeof msg, "labels[%zu].transaction_id: expected an id", i);
        } else if (!cJSON_IsString(lb) || label_value(lb->valuestring) < 0) {
            st = LP_EINVAL;
            snprintf(msg, sizeof msg, "labels[%zu].label: expected one of fraud, chargeback, "
                     "confirmed_fraud, genuine, confirmed_genuine", i);
        } else if (!fraud_state_has_tx(svc->st, buf)) {
            st = LP_ENOTFOUND;
            snprintf(msg, sizeof msg, "labels[%zu]: transaction '%s' was never scored here", i,
                     buf);
        }
        if (st)
            break;
        i++;
    }
    if (st) {
        pthread_mutex_unlock(&svc->mu);
        cJSON_Delete(single);
        return lp_http_error(res, st, "%s", msg);
    }
    lp_err err;
    st = db_exec(svc->db, "BEGIN IMMEDIATE", &err);
    sqlite3_stmt *q = NULL;
    if (!st && sqlite3_prepare_v2(svc->db, "INSERT OR REPLACE INTO labels(id, label, kind, "
                                  "received_at) VALUES(?,?,?,?)", -1, &q, NULL) != SQLITE_OK)
        st = lp_err_set(&err, LP_EDB, "labels: %s", sqlite3_errmsg(svc->db));
    cJSON_ArrayForEach(it, arr)
    {
        if (st)
            break;
        char buf[160];
        id_text(cJSON_GetObjectItemCaseSensitive(it, "transaction_id"), buf, sizeof buf);
        const char *kind = cJSON_GetObjectItemCaseSensitive(it, "label")->valuestring;
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, buf, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(q, 2, label_value(kind));
        sqlite3_bind_text(q, 3, kind, -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(q, 4, lp_time_wall());
        if (sqlite3_step(q) != SQLITE_DONE)
            st = lp_err_set(&err, LP_EDB, "labels: %s", sqlite3_errmsg(svc->db));
    }
    sqlite3_finalize(q);
    if (!st)
        st = db_exec(svc->db, "COMMIT", &err);
    else
        db_exec(svc->db, "ROLLBACK", NULL);
    size_t n = 0;
    cJSON_ArrayForEach(it, arr)
    {
        if (st)
            break;
        char buf[160];
        id_text(cJSON_GetObjectItemCaseSensitive(it, "transaction_id"), buf, sizeof buf);
        fraud_state_label(svc->st, buf,
                          label_value(cJSON_GetObjectItemCaseSensitive(it, "label")->valuestring),
                          NULL);
        n++;
    }
    pthread_mutex_unlock(&svc->mu);
    cJSON_Delete(single);
    if (st)
        return lp_http_error_from(res, &err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "accepted", (double)n);
    return lp_res_json(res, 200, o);
}

static lp_status h_entity(const lp_req *req, lp_res *res, void *user)
{
    fraud_service *svc = user;
    const char *id = lp_req_param(req, "id"), *ent = lp_req_query(req, "entity");
    if (!id || !id_ok(id))
        return lp_http_error(res, LP_EINVAL, "path: entity id must be 1..128 characters from "
                             "[A-Za-z0-9-_.:@#]");
    pthread_mutex_lock(&svc->mu);
    const fraud_feat_opts *o = &fraud_scorer_config(svc->sc)->feat;
    size_t e = 0;
    if (ent) {
        while (e < o->n_entities && strcmp(o->entity[e], ent))
            e++;
        if (e == o->n_entities) {
            pthread_mutex_unlock(&svc->mu);
            return lp_http_error(res, LP_EINVAL, "query 'entity': '%.64s' is not an entity "
                                 "column of this model", ent);
        }
    }
    cJSON *j = o->n_entities ? fraud_state_entity_json(svc->st, e, id, NAN) : NULL;
    if (j) {
        cJSON_AddBoolToObject(j, "block_listed",
                              list_find(svc, list_hash(0, o->entity[e], id)) >= 0);
        cJSON_AddBoolToObject(j, "allow_listed",
                              list_find(svc, list_hash(1, o->entity[e], id)) >= 0);
    }
    pthread_mutex_unlock(&svc->mu);
    if (!j)
        return lp_http_error(res, LP_ENOTFOUND, "no transactions seen for %s '%s'",
                             o->n_entities ? o->entity[e] : "entity", id);
    return lp_res_json(res, 200, j);
}

/* GET /v1/decisions?limit=N (1..200, default 20): the latest logged decisions, newest first,
 * each {transaction_id, time, score, decision, reasons, rules_hit, model_version, logged_at,
 * transaction} as they were answered (read back from the decisions table; transaction is the
 * request body as received). */
static lp_status h_decisions(const lp_req *req, lp_res *res, void *user)
{
    fraud_service *svc = user;
    const char *lim = lp_req_query(req, "limit");
    long limit = 20;
    if (lim) {
        char *end = NULL;
        limit = strtol(lim, &end, 10);
        if (!*lim || *end || limit < 1 || limit > 200)
            return lp_http_error(res, LP_EINVAL, "query 'limit': '%.32s' is not an integer in "
                                 "1..200", lim);
    }
    cJSON *o = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(o, "decisions");
    pthread_mutex_lock(&svc->mu);
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(svc->db,
                                "SELECT id, t, score, decision, reasons, rules_hit, model_version,"
                                " logged_at, request FROM decisions"
                                " ORDER BY logged_at DESC, rowid DESC"
                                " LIMIT ?",
                                -1, &q, NULL);
    if (rc == SQLITE_OK)
        sqlite3_bind_int64(q, 1, limit);
    while (rc == SQLITE_OK && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        cJSON *d = cJSON_CreateObject();
        const char *txt;
        cJSON_AddStringToObject(d, "transaction_id", (const char *)sqlite3_column_text(q, 0));
        cJSON_AddNumberToObject(d, "time", sqlite3_column_double(q, 1));
        cJSON_AddNumberToObject(d, "score", sqlite3_column_double(q, 2));
        txt = (const char *)sqlite3_column_text(q, 3);
        cJSON_AddStringToObject(d, "decision", txt ? txt : "");
        txt = (const char *)sqlite3_column_text(q, 4);
        cJSON *r = txt ? cJSON_Parse(txt) : NULL;
        cJSON_AddItemToObject(d, "reasons", r ? r : cJSON_CreateArray());
        txt = (const char *)sqlite3_column_text(q, 5);
        r = txt ? cJSON_Parse(txt) : NULL;
        cJSON_AddItemToObject(d, "rules_hit", r ? r : cJSON_CreateArray());
        txt = (const char *)sqlite3_column_text(q, 6);
        cJSON_AddStringToObject(d, "model_version", txt ? txt : "");
        cJSON_AddNumberToObject(d, "logged_at", sqlite3_column_double(q, 7));
        txt = (const char *)sqlite3_column_text(q, 8);
        r = txt ? cJSON_Parse(txt) : NULL;
        cJSON_AddItemToObject(d, "transaction", r ? r : cJSON_CreateNull());
        cJSON_AddItemToArray(arr, d);
        rc = SQLITE_OK;
    }
    const char *msg = rc == SQLITE_DONE ? NULL : sqlite3_errmsg(svc->db);
    char why[160] = "";
    if (msg)
        snprintf(why, sizeof why, "%s", msg);
    sqlite3_finalize(q);
    pthread_mutex_unlock(&svc->mu);
    if (msg) {
        cJSON_Delete(o);
        return lp_http_error(res, LP_EIO, "reading the decision log: %s", why);
    }
    return lp_res_json(res, 200, o);
}

static lp_status h_rules_get(const lp_req *req, lp_res *res, void *user)
{
    (void)req;
    fraud_service *svc = user;
    pthread_rwlock_rdlock(&svc->rules_lock);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "rules", fraud_ruleset_to_json(svc->rules));
    pthread_rwlock_unlock(&svc->rules_lock);
    return lp_res_json(res, 200, o);
}

static lp_status h_rules_put(const lp_req *req, lp_res *res, void *user)
{
    fraud_service *svc = user;
    const cJSON *arr = cJSON_IsArray(req->json)
                           ? req->json
                           : cJSON_GetObjectItemCaseSensitive(req->json, "rules");
    lp_err err;
    pthread_mutex_lock(&svc->mu);
    size_t d;
    const char *const *names = fraud_scorer_names(svc->sc, &d);
    fraud_ruleset *rs = NULL;
    lp_status st = fraud_ruleset_parse(arr, names, d, &rs, &err);
    char *body = NULL;
    if (!st) {
        cJSON *j = fraud_ruleset_to_json(rs);
        body = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        sqlite3_stmt *q = NULL;
        if (!body || sqlite3_prepare_v2(svc->db, "INSERT OR REPLACE INTO rules(k, body) "
                                        "VALUES(1, ?)", -1, &q, NULL) != SQLITE_OK)
            st = lp_err_set(&err, LP_EDB, "rules: cannot store");
        else {
            sqlite3_bind_text(q, 1, body, -1, SQLITE_STATIC);
            if (sqlite3_step(q) != SQLITE_DONE)
                st = lp_err_set(&err, LP_EDB, "rules: %s", sqlite3_errmsg(svc->db));
        }
        sqlite3_finalize(q);
    }
    if (!st) {
        pthread_rwlock_wrlock(&svc->rules_lock);
        fraud_ruleset *old = svc->rules;
        svc->rules = rs;
        pthread_rwlock_unlock(&svc->rules_lock);
        rs = old; /* freed below */
    }
    size_t n = svc->rules ? svc->rules->n : 0;
    pthread_mutex_unlock(&svc->mu);
    free(body);
    fraud_ruleset_free(rs);
    if (st)
        return lp_http_error_from(res, &err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "rules", (double)n);
    return lp_res_json(res, 200, o);
}

static lp_status h_lists_get(const lp_req *req, lp_res *res, void *user)
{
    (void)req;
    fraud_service *svc = user;
    cJSON *o = cJSON_CreateObject();
    cJSON *b = cJSON_AddArrayToObject(o, "block"), *a = cJSON_AddArrayToObject(o, "allow");
    pthread_mutex_lock(&svc->mu);
    for (size_t i = 0; i < svc->n_lists; i++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "entity", svc->lists[i].entity);
        cJSON_AddStringToObject(e, "value", svc->lists[i].value);
        cJSON_AddItemToArray(svc->lists[i].list ? a : b, e);
    }
    pthread_mutex_unlock(&svc->mu);
    return lp_res_json(res, 200, o);
}

static lp_status h_lists_post(const lp_req *req, lp_res *res, void *user)
{
    fraud_service *svc = user;
    const cJSON *j = req->json;
    const char *list = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "list"));
    const char *ent = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "entity"));
    const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "op"));
    char val[160];
    if (!list || (strcmp(list, "block") && strcmp(list, "allow")))
        return lp_http_error(res, LP_EINVAL, "field 'list': expected \"block\" or \"allow\"");
    if (op && strcmp(op, "add") && strcmp(op, "remove"))
        return lp_http_error(res, LP_EINVAL, "field 'op': expected \"add\" or \"remove\"");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, "value");
    if (!v || !id_text(v, val, sizeof val) || !id_ok(val))
        return lp_http_error(res, LP_EINVAL, "field 'value': expected an entity id");
    pthread_mutex_lock(&svc->mu);
    const fraud_feat_opts *o = &fraud_scorer_config(svc->sc)->feat;
    size_t e = 0;
    while (ent && e < o->n_entities && strcmp(o->entity[e], ent))
        e++;
    if (!ent || e == o->n_entities) {
        pthread_mutex_unlock(&svc->mu);
        return lp_http_error(res, LP_EINVAL, "field 'entity': expected one of the model's "
                             "entity columns");
    }
    bool add = !op || !strcmp(op, "add");
    int li = strcmp(list, "block") != 0;
    sqlite3_stmt *q = NULL;
    lp_err err;
    lp_status st = LP_OK;
    if (sqlite3_prepare_v2(svc->db,
                           add ? "INSERT OR REPLACE INTO lists(list, entity, value, added_at) "
                                 "VALUES(?,?,?,?)"
                               : "DELETE FROM lists WHERE list = ? AND entity = ? AND value = ?",
                           -1, &q, NULL) != SQLITE_OK)
        st = lp_err_set(&err, LP_EDB, "lists: %s", sqlite3_errmsg(svc->db));
    else {
        sqlite3_bind_text(q, 1, list, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, o->entity[e], -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, val, -1, SQLITE_STATIC);
        if (add)
            sqlite3_bind_double(q, 4, lp_time_wall());
        if (sqlite3_step(q) != SQLITE_DONE)
            st = lp_err_set(&err, LP_EDB, "lists: %s", sqlite3_errmsg(svc->db));
    }
    sqlite3_finalize(q);
    if (!st && add)
        st = list_add_mem(svc, li, o->entity[e], val, &err);
    else if (!st)
        list_remove_mem(svc, li, o->entity[e], val);
    pthread_mutex_unlock(&svc->mu);
    if (st)
        return lp_http_error_from(res, &err);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "list", list);
    cJSON_AddStringToObject(r, "entity", ent);
    cJSON_AddStringToObject(r, "value", val);
    cJSON_AddStringToObject(r, "op", add ? "add" : "remove");
    return lp_res_json(res, 200, r);
}

/* POST /v1/rules/backtest: replay the --history transactions through the features with the
 * rules of the body (an array, or {"rules": [...]}) and the served model, without installing
 * them; answers what `lepton-fraud backtest` prints (fraud_backtest). Holds the service mutex
 * for the replay (the scorer's scratch is shared), so it is an operator's tool, not a hot
 * path. */
static lp_status h_backtest(const lp_req *req, lp_res *res, void *user)
{
    fraud_service *svc = user;
    if (!svc->history)
        return lp_http_error(res, LP_ESTATE, "backtest: the service was started without "
                                             "--history (a labelled transaction file)");
    const cJSON *arr = cJSON_IsArray(req->json)
                           ? req->json
                           : cJSON_GetObjectItemCaseSensitive(req->json, "rules");
    lp_err err;
    char *js = NULL;
    fraud_ruleset *rs = NULL;
    pthread_mutex_lock(&svc->mu);
    size_t d;
    const char *const *names = fraud_scorer_names(svc->sc, &d);
    lp_status st = fraud_ruleset_parse(arr, names, d, &rs, &err);
    if (!st)
        st = fraud_backtest(svc->sc, rs, svc->history, &js, &err);
    pthread_mutex_unlock(&svc->mu);
    fraud_ruleset_free(rs);
    if (st)
        return lp_http_error_from(res, &err);
    st = lp_res_bytes(res, 200, "application/json", js, strlen(js));
    free(js);
    return st;
}

static lp_status h_model(const lp_req *req, lp_res *res, void *user)
{
    (void)req;
    fraud_service *svc = user;
    pthread_mutex_lock(&svc->mu);
    cJSON *o = fraud_config_to_json(fraud_scorer_config(svc->sc));
    size_t d;
    const char *const *names = fraud_scorer_names(svc->sc, &d);
    cJSON *f = cJSON_AddArrayToObject(o, "feature_names");
    for (size_t j = 0; j < d; j++)
        cJSON_AddItemToArray(f, cJSON_CreateString(names[j]));
    cJSON_AddNumberToObject(o, "transactions_in_state", (double)fraud_state_n_tx(svc->st));
    pthread_mutex_unlock(&svc->mu);
    return lp_res_json(res, 200, o);
}

static cJSON *num_or_null(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

/* Live metrics over the latest MON_WINDOW labelled transactions (by transaction time): labels
 * joined to their decision rows. "flagged" (review or decline by the model's thresholds) is
 * the predicted positive for accuracy; AUROC ranks the calibrated score. Under svc->mu. */
static cJSON *mon_live(fraud_service *svc)
{
    cJSON *live = cJSON_CreateObject();
    sqlite3_stmt *q = NULL;
    size_t n = 0, cap = 0, right = 0;
    int32_t *y = NULL;
    double *sc = NULL;
    bool ok = sqlite3_prepare_v2(svc->db, "SELECT d.score, l.label FROM labels l JOIN decisions d"
                                 " ON d.id = l.id ORDER BY d.t DESC, d.rowid DESC LIMIT ?", -1,
                                 &q, NULL) == SQLITE_OK;
    if (ok)
        sqlite3_bind_int(q, 1, MON_WINDOW);
    while (ok && sqlite3_step(q) == SQLITE_ROW) {
        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            int32_t *y2 = realloc(y, cap * sizeof *y);
            if (y2)
                y = y2;
            double *s2 = realloc(sc, cap * sizeof *sc);
            if (s2)
                sc = s2;
            if (!y2 || !s2)
                break;
        }
        sc[n] = sqlite3_column_double(q, 0);
        y[n] = sqlite3_column_int(q, 1) != 0;
        bool flagged = fraud_scorer_decide(svc->sc, sc[n]) != FRAUD_DECISION_APPROVE;
        right += flagged == (y[n] != 0);
        n++;
    }
    sqlite3_finalize(q);
    double auroc = NAN;
    if (n && lp_metrics_auroc(y, sc, n, &auroc, NULL))
        auroc = NAN;
    cJSON_AddNumberToObject(live, "labelled", (double)n);
    cJSON_AddItemToObject(live, "accuracy", num_or_null(n ? (double)right / (double)n : NAN));
    cJSON_AddItemToObject(live, "auroc", num_or_null(auroc));
    cJSON_AddNullToObject(live, "rmse");
    cJSON_AddNumberToObject(live, "threshold", fraud_scorer_config(svc->sc)->review_threshold);
    cJSON_AddStringToObject(live, "accuracy_of",
                            "score >= threshold (review or decline) vs label fraud");
    free(y);
    free(sc);
    return live;
}

static lp_status h_monitor(const lp_req *req, lp_res *res, void *user)
{
    (void)req;
    fraud_service *svc = user;
    pthread_mutex_lock(&svc->mu);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "model_version", fraud_scorer_config(svc->sc)->version);
    cJSON_AddNumberToObject(o, "psi_threshold", PSI_THRESHOLD);
    cJSON *feats = cJSON_AddArrayToObject(o, "drift");
    size_t nf = svc->ref ? lp_drift_nfeatures(svc->ref) : 0;
    lp_drift_stat *st = svc->sk ? lp_calloc(nf + 1, sizeof *st) : NULL;
    if (!svc->sk)
        cJSON_AddStringToObject(o, "reason", svc->mon_reason);
    if (st) {
        pthread_mutex_lock(&svc->mon_mu);
        lp_drift_compare(svc->sk, PSI_THRESHOLD, st);
        pthread_mutex_unlock(&svc->mon_mu);
        for (size_t j = 0; j < nf; j++) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "feature", st[j].name);
            cJSON_AddNumberToObject(f, "n", (double)st[j].n);
            cJSON_AddItemToObject(f, "psi", num_or_null(st[j].psi));
            cJSON_AddItemToObject(f, "ks", num_or_null(st[j].ks));
            cJSON_AddBoolToObject(f, "drifted", st[j].drifted);
            if (!strcmp(st[j].name, "_score"))
                cJSON_AddItemToObject(o, "score_drift", f);
            else
                cJSON_AddItemToArray(feats, f);
        }
        free(st);
    }
    cJSON_AddItemToObject(o, "live", mon_live(svc));
    sqlite3_stmt *q = NULL;
    double logged = 0;
    if (sqlite3_prepare_v2(svc->db, "SELECT COUNT(*) FROM decisions", -1, &q, NULL) ==
            SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW)
        logged = (double)sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    pthread_mutex_unlock(&svc->mu);
    cJSON_AddNumberToObject(o, "predictions_logged", logged);
    cJSON_AddNumberToObject(o, "predictions_dropped", 0); /* answered = committed (group commit) */
    fraud_dlog_stats ls = fraud_dlog_get_stats(svc->dlog);
    cJSON *lg = cJSON_AddObjectToObject(o, "decision_log");
    cJSON_AddNumberToObject(lg, "rows", (double)ls.rows);
    cJSON_AddNumberToObject(lg, "commits", (double)ls.commits);
    cJSON_AddNumberToObject(lg, "max_batch", (double)ls.max_batch);
    return lp_res_json(res, 200, o);
}

static const lp_route routes[] = {
    {.method = "POST", .path = "/v1/score", .handler = h_score, .body_limit = 64 * 1024,
     .json = true},
    {.method = "POST", .path = "/v1/labels", .handler = h_labels, .body_limit = 4 << 20,
     .json = true},
    {.method = "GET", .path = "/v1/entities/{id}", .handler = h_entity},
    {.method = "GET", .path = "/v1/decisions", .handler = h_decisions},
    {.method = "GET", .path = "/v1/rules", .handler = h_rules_get},
    {.method = "PUT", .path = "/v1/rules", .handler = h_rules_put, .body_limit = 1 << 20,
     .json = true},
    {.method = "POST", .path = "/v1/rules/backtest", .handler = h_backtest,
     .body_limit = 1 << 20, .json = true},
    {.method = "GET", .path = "/v1/lists", .handler = h_lists_get},
    {.method = "POST", .path = "/v1/lists", .handler = h_lists_post, .body_limit = 16 * 1024,
     .json = true},
    {.method = "GET", .path = "/v1/model", .handler = h_model},
    {.method = "GET", .path = "/v1/monitor", .handler = h_monitor},
};

const lp_route *fraud_service_routes(size_t *n)
{
    *n = sizeof routes / sizeof routes[0];
    return routes;
}

/* Install a ruleset file given on the command line (replacing stored rules). */
static lp_status install_rules_file(fraud_service *svc, const char *path, lp_err *err)
{
    uint8_t *txt = NULL;
    size_t len = 0;
    lp_status st = lp_file_read(path, &txt, &len, err);
    cJSON *j = NULL;
    if (!st)
        st = lp_json_parse_body((const char *)txt, len, 64, path, &j, err);
    free(txt);
    if (st)
        return st;
    size_t d;
    const char *const *names = fraud_scorer_names(svc->sc, &d);
    fraud_ruleset *rs = NULL;
    st = fraud_ruleset_parse(j, names, d, &rs, err);
    cJSON_Delete(j);
    if (st)
        return lp_err_prefix(err, "%s", path);
    fraud_ruleset_free(svc->rules);
    svc->rules = rs;
    return LP_OK;
}

int fraud_main_serve(const char *model, const char *host, unsigned port, const char *db,
                     const char *rules, const char *history, unsigned threads)
{
    lp_err err;
    lp_model *m = NULL;
    fraud_scorer *sc = NULL;
    fraud_service *svc = NULL;
    lp_frame *hist = NULL;
    lp_status st = lp_model_load(model, &m, &err);
    if (!st && (st = fraud_scorer_new(m, &sc, &err)))
        lp_model_free(m);
    if (!st && history) { /* read as eval and backtest read it */
        const fraud_config *cf = fraud_scorer_config(sc);
        st = fraud_read_transactions(history, cf->label, cf->time_col, &hist, &err);
    }
    if (!st)
        st = fraud_service_new(sc, db, hist, &svc, &err);
    if (!svc) { /* sc and hist are still ours */
        fraud_scorer_free(sc);
        lp_frame_free(hist);
    }
    if (!st && rules)
        st = install_rules_file(svc, rules, &err);
    if (st) {
        fprintf(stderr, "lepton-fraud serve: %s\n", lp_err_text(&err));
        fraud_service_free(svc);
        return 1;
    }
    lp_server_opts o = lp_server_opts_default();
    o.host = host;
    o.port = port;
    o.threads = threads;
    o.name = "lepton-fraud";
    o.access_log = true;
    size_t nr;
    const lp_route *r = fraud_service_routes(&nr);
    lp_log_info("lepton-fraud: serving %s on %s:%u (db %s)", model, host, port, db);
    st = lp_serve(r, nr, svc, &o, &err);
    fraud_service_free(svc);
    if (st) {
        fprintf(stderr, "lepton-fraud serve: %s\n", lp_err_text(&err));
        return 1;
    }
    return 0;
}
