/*
 * predlog.c - the prediction log (see monitor.h): a bounded ring of owned records, one writer
 * thread committing batches to SQLite (WAL), synchronous feedback on a second connection, and
 * live metrics from the join of predictions and feedback.
 *
 * Schema (PRAGMA user_version 1):
 *   predictions(id TEXT PRIMARY KEY, time REAL, model_version TEXT, inputs_hash TEXT,
 *               output TEXT, score REAL, latency_us REAL)
 *   feedback(id TEXT PRIMARY KEY, label TEXT NOT NULL, time REAL NOT NULL)
 */
#include "lepton/metrics.h"
#include "lepton/monitor.h"

#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct rec {
    char *id, *model_version, *inputs_hash, *output;
    double time, score, latency_us;
} rec;

/* A state value waiting for the writer's next transaction (lp_predlog_put_state_later). */
typedef struct pending_state {
    char *key;
    void *data;
    size_t len;
    double time;
} pending_state;
#define PENDING_MAX 16

struct lp_predlog {
    char path[512];
    lp_predlog_opts o;
    sqlite3 *wdb;  /* writer thread's connection */
    sqlite3_stmt *ins, *put; /* on wdb, prepared once: INSERT_PREDICTION, PUT_STATE */
    sqlite3 *fdb;  /* feedback / live metrics connection */
    pthread_mutex_t fmu;
    pthread_mutex_t mu;
    pthread_cond_t wake, idle;
    rec *ring;
    size_t head, count;  /* ring[head .. head + count) mod cap */
    bool writing, stop;
    int flushing; /* callers waiting in lp_predlog_flush: write now, do not wait for the timer */
    pending_state pend[PENDING_MAX]; /* latest value per key, written with the next batch */
    size_t npend;
    pthread_t thread;
    bool thread_started;
    _Atomic uint64_t dropped, written;
    char last_error[256];
};

static const char *const INSERT_PREDICTION =
    "INSERT OR IGNORE INTO predictions(id,time,model_version,inputs_hash,output,score,"
    "latency_us) VALUES(?,?,?,?,?,?,?)";
static const char *const PUT_STATE =
    "INSERT OR REPLACE INTO state(key,value,updated) VALUES(?,?,?)";

static const char *SCHEMA =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS predictions(id TEXT PRIMARY KEY, time REAL, model_version TEXT,"
    " inputs_hash TEXT, output TEXT, score REAL, latency_us REAL);"
    "CREATE TABLE IF NOT EXISTS feedback(id TEXT PRIMARY KEY, label TEXT NOT NULL,"
    " time REAL NOT NULL);"
    "CREATE TABLE IF NOT EXISTS state(key TEXT PRIMARY KEY, value BLOB NOT NULL,"
    " updated REAL NOT NULL);"
    "PRAGMA user_version=1;";

lp_predlog_opts lp_predlog_opts_default(void)
{
    return (lp_predlog_opts){.queue_cap = 65536, .batch_max = 2048, .flush_ms = 5};
}

lp_status lp_predlog_opts_check(const lp_predlog_opts *o, lp_err *err)
{
    if (o->queue_cap < 1 || o->queue_cap > (1u << 26))
        return lp_err_set(err, LP_EINVAL, "predlog queue_cap=%zu: must be in [1, 2^26]",
                          o->queue_cap);
    if (o->batch_max < 1)
        return lp_err_set(err, LP_EINVAL, "predlog batch_max must be >= 1");
    if (!(o->flush_ms > 0 && o->flush_ms <= 60000))
        return lp_err_set(err, LP_EINVAL, "predlog flush_ms=%g: must be in (0, 60000]",
                          o->flush_ms);
    return LP_OK;
}

static void rec_free(rec *r)
{
    free(r->id);
    free(r->model_version);
    free(r->inputs_hash);
    free(r->output);
    memset(r, 0, sizeof *r);
}

static lp_status open_db(const char *path, sqlite3 **db, lp_err *err)
{
    if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        lp_status st = lp_err_set(err, LP_EDB, "%s: cannot open: %s", path,
                                  *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return st;
    }
    sqlite3_busy_timeout(*db, 10000);
    char *msg = NULL;
    if (sqlite3_exec(*db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
        lp_status st = lp_err_set(err, LP_EDB, "%s: %s", path, msg ? msg : "schema failed");
        sqlite3_free(msg);
        sqlite3_close(*db);
        *db = NULL;
        return st;
    }
    return LP_OK;
}

static void pending_free(pending_state *p)
{
    free(p->key);
    free(p->data);
    memset(p, 0, sizeof *p);
}

/* Write recs[0..n) and the states st[0..ns) in one transaction. */
static int write_batch(lp_predlog *l, rec *recs, size_t n, const pending_state *st, size_t ns)
{
    sqlite3_stmt *q = l->ins;
    int rc = sqlite3_exec(l->wdb, "BEGIN", NULL, NULL, NULL);
    for (size_t i = 0; i < n && rc == SQLITE_OK; i++) {
        rec *r = &recs[i];
        sqlite3_bind_text(q, 1, r->id, -1, SQLITE_STATIC);
        sqlite3_bind_double(q, 2, r->time);
        sqlite3_bind_text(q, 3, r->model_version, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 4, r->inputs_hash, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 5, r->output, -1, SQLITE_STATIC);
        if (isfinite(r->score))
            sqlite3_bind_double(q, 6, r->score);
        else
            sqlite3_bind_null(q, 6);
        sqlite3_bind_double(q, 7, r->latency_us);
        rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(q);
    }
    q = l->put;
    for (size_t i = 0; i < ns && rc == SQLITE_OK; i++) {
        sqlite3_bind_text(q, 1, st[i].key, -1, SQLITE_STATIC);
        sqlite3_bind_blob(q, 2, st[i].data, (int)st[i].len, SQLITE_STATIC);
        sqlite3_bind_double(q, 3, st[i].time);
        rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        sqlite3_reset(q);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(l->wdb, "COMMIT", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(l->last_error, sizeof l->last_error, "%s", sqlite3_errmsg(l->wdb));
        sqlite3_exec(l->wdb, "ROLLBACK", NULL, NULL, NULL);
    }
    return rc;
}

static struct timespec ts_after(struct timespec t, double ms)
{
    long ns = t.tv_nsec + (long)(ms * 1e6);
    t.tv_sec += ns / 1000000000L;
    t.tv_nsec = ns % 1000000000L;
    return t;
}

static bool ts_reached(struct timespec now, struct timespec due)
{
    return now.tv_sec > due.tv_sec || (now.tv_sec == due.tv_sec && now.tv_nsec >= due.tv_nsec);
}

/* The writer commits at most one batch per flush_ms: it sleeps until flush_ms after the last
 * batch began, unless batch_max records are queued, a flush is waiting, or the log closes.
 * (Writing again as soon as a batch ends would, under steady traffic, run one small
 * transaction after another and keep a core busy for the log.) With nothing queued it sleeps
 * until a record or a state arrives (push and put_state_later wake it on the first one), so
 * an idle service has no timer running. */
static void *writer_main(void *arg)
{
    lp_predlog *l = arg;
    size_t cap = l->o.queue_cap;
    rec *batch = lp_calloc(l->o.batch_max, sizeof(rec));
    struct timespec due; /* the earliest time the next batch may begin */
    clock_gettime(CLOCK_REALTIME, &due);
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->stop && !l->flushing && l->count < l->o.batch_max) {
            if (!l->count && !l->npend) { /* idle: until the first record or state */
                pthread_cond_wait(&l->wake, &l->mu);
                continue;
            }
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            if (ts_reached(now, due))
                break;
            pthread_cond_timedwait(&l->wake, &l->mu, &due);
        }
        if (!l->count && !l->npend && l->stop)
            break;
        if (!l->count && !l->npend) { /* a flush with nothing queued */
            pthread_cond_broadcast(&l->idle);
            pthread_cond_wait(&l->wake, &l->mu);
            continue;
        }
        clock_gettime(CLOCK_REALTIME, &due);
        due = ts_after(due, l->o.flush_ms);
        size_t n = 0;
        while (l->count && n < l->o.batch_max && batch) {
            batch[n++] = l->ring[l->head];
            memset(&l->ring[l->head], 0, sizeof(rec));
            l->head = (l->head + 1) % cap;
            l->count--;
        }
        pending_state st[PENDING_MAX];
        size_t ns = l->npend;
        memcpy(st, l->pend, ns * sizeof *st);
        memset(l->pend, 0, sizeof l->pend);
        l->npend = 0;
        l->writing = true;
        pthread_mutex_unlock(&l->mu);
        if (write_batch(l, batch, n, st, ns) == SQLITE_OK)
            atomic_fetch_add(&l->written, n);
        else
            atomic_fetch_add(&l->dropped, n); /* counted, and the error kept for flush */
        for (size_t i = 0; i < n; i++)
            rec_free(&batch[i]);
        for (size_t i = 0; i < ns; i++)
            pending_free(&st[i]);
        pthread_mutex_lock(&l->mu);
        l->writing = false;
        pthread_cond_broadcast(&l->idle);
    }
    pthread_cond_broadcast(&l->idle);
    pthread_mutex_unlock(&l->mu);
    free(batch);
    return NULL;
}

lp_status lp_predlog_open(const char *db_path, const lp_predlog_opts *opts, lp_predlog **out,
                          lp_err *err)
{
    *out = NULL;
    lp_predlog_opts o = opts ? *opts : lp_predlog_opts_default();
    lp_status st = lp_predlog_opts_check(&o, err);
    if (st)
        return st;
    lp_predlog *l = calloc(1, sizeof *l);
    if (!l)
        return lp_err_set(err, LP_ENOMEM, "predlog: out of memory");
    snprintf(l->path, sizeof l->path, "%s", db_path);
    l->o = o;
    pthread_mutex_init(&l->mu, NULL);
    pthread_mutex_init(&l->fmu, NULL);
    pthread_cond_init(&l->wake, NULL);
    pthread_cond_init(&l->idle, NULL);
    l->ring = lp_calloc(o.queue_cap, sizeof(rec));
    if (!l->ring)
        st = lp_err_set(err, LP_ENOMEM, "predlog: out of memory for %zu records", o.queue_cap);
    if (!st)
        st = open_db(db_path, &l->wdb, err);
    if (!st && (sqlite3_prepare_v3(l->wdb, INSERT_PREDICTION, -1, SQLITE_PREPARE_PERSISTENT,
                                   &l->ins, NULL) != SQLITE_OK ||
                sqlite3_prepare_v3(l->wdb, PUT_STATE, -1, SQLITE_PREPARE_PERSISTENT, &l->put,
                                   NULL) != SQLITE_OK))
        st = lp_err_set(err, LP_EDB, "%s: %s", db_path, sqlite3_errmsg(l->wdb));
    if (!st)
        st = open_db(db_path, &l->fdb, err);
    if (!st) {
        if (pthread_create(&l->thread, NULL, writer_main, l) != 0)
            st = lp_err_set(err, LP_EINTERNAL, "predlog: cannot start the writer thread");
        else
            l->thread_started = true;
    }
    if (st) {
        lp_predlog_close(l, NULL);
        return st;
    }
    *out = l;
    return LP_OK;
}

lp_status lp_predlog_close(lp_predlog *l, lp_err *err)
{
    if (!l)
        return LP_OK;
    if (l->thread_started) {
        pthread_mutex_lock(&l->mu);
        l->stop = true;
        pthread_cond_signal(&l->wake);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    for (size_t i = 0; l->ring && i < l->o.queue_cap; i++)
        rec_free(&l->ring[i]);
    for (size_t i = 0; i < l->npend; i++)
        pending_free(&l->pend[i]);
    free(l->ring);
    sqlite3_finalize(l->ins);
    sqlite3_finalize(l->put);
    sqlite3_close(l->wdb);
    sqlite3_close(l->fdb);
    pthread_mutex_destroy(&l->mu);
    pthread_mutex_destroy(&l->fmu);
    pthread_cond_destroy(&l->wake);
    pthread_cond_destroy(&l->idle);
    lp_status st = l->last_error[0] ? lp_err_set(err, LP_EDB, "%s: %s", l->path, l->last_error)
                                    : LP_OK;
    free(l);
    return st;
}

bool lp_predlog_push(lp_predlog *l, const lp_pred_record *r)
{
    rec x = {0};
    x.id = lp_strdup(r->id ? r->id : "");
    x.model_version = lp_strdup(r->model_version ? r->model_version : "");
    x.inputs_hash = lp_strdup(r->inputs_hash ? r->inputs_hash : "");
    x.output = lp_strdup(r->output ? r->output : "");
    x.time = r->time;
    x.score = r->score;
    x.latency_us = r->latency_us;
    if (!x.id || !x.model_version || !x.inputs_hash || !x.output) {
        rec_free(&x);
        atomic_fetch_add(&l->dropped, 1);
        return false;
    }
    pthread_mutex_lock(&l->mu);
    if (l->count == l->o.queue_cap || l->stop) {
        pthread_mutex_unlock(&l->mu);
        rec_free(&x);
        atomic_fetch_add(&l->dropped, 1);
        return false;
    }
    l->ring[(l->head + l->count) % l->o.queue_cap] = x;
    l->count++;
    if (l->count >= l->o.batch_max || (l->count == 1 && !l->npend)) /* full, or the writer idle */
        pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->mu);
    return true;
}

lp_status lp_predlog_flush(lp_predlog *l, lp_err *err)
{
    pthread_mutex_lock(&l->mu);
    l->flushing++;
    pthread_cond_signal(&l->wake);
    while (l->count || l->npend || l->writing)
        pthread_cond_wait(&l->idle, &l->mu);
    l->flushing--;
    pthread_mutex_unlock(&l->mu);
    if (l->last_error[0])
        return lp_err_set(err, LP_EDB, "%s: %s", l->path, l->last_error);
    return LP_OK;
}

uint64_t lp_predlog_dropped(const lp_predlog *l) { return atomic_load(&l->dropped); }
uint64_t lp_predlog_written(const lp_predlog *l) { return atomic_load(&l->written); }

size_t lp_predlog_queued(const lp_predlog *l)
{
    pthread_mutex_lock((pthread_mutex_t *)&l->mu);
    size_t n = l->count;
    pthread_mutex_unlock((pthread_mutex_t *)&l->mu);
    return n;
}

static int exists(sqlite3 *db, const char *id)
{
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM predictions WHERE id=?", -1, &q, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

lp_status lp_predlog_feedback(lp_predlog *l, const char *id, const char *label, lp_err *err)
{
    if (!id || !*id || !label)
        return lp_err_set(err, LP_EINVAL, "feedback needs a prediction id and a label");
    pthread_mutex_lock(&l->fmu);
    int e = exists(l->fdb, id);
    if (e == 0) { /* maybe still queued */
        pthread_mutex_unlock(&l->fmu);
        lp_status st = lp_predlog_flush(l, err);
        if (st)
            return st;
        pthread_mutex_lock(&l->fmu);
        e = exists(l->fdb, id);
    }
    lp_status st = LP_OK;
    if (e < 0) {
        st = lp_err_set(err, LP_EDB, "%s: %s", l->path, sqlite3_errmsg(l->fdb));
    } else if (e == 0) {
        st = lp_err_set(err, LP_ENOTFOUND, "no prediction with id '%s'", id);
    } else {
        sqlite3_stmt *q = NULL;
        int rc = sqlite3_prepare_v2(l->fdb,
                                    "INSERT OR REPLACE INTO feedback(id,label,time) VALUES(?,?,?)",
                                    -1, &q, NULL);
        if (rc == SQLITE_OK) {
            sqlite3_bind_text(q, 1, id, -1, SQLITE_STATIC);
            sqlite3_bind_text(q, 2, label, -1, SQLITE_STATIC);
            sqlite3_bind_double(q, 3, lp_time_wall());
            rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        }
        sqlite3_finalize(q);
        if (rc != SQLITE_OK)
            st = lp_err_set(err, LP_EDB, "%s: %s", l->path, sqlite3_errmsg(l->fdb));
    }
    pthread_mutex_unlock(&l->fmu);
    return st;
}

static lp_status live(sqlite3 *db, const char *path, size_t window, const char *positive,
                      lp_live_metrics *out, lp_err *err)
{
    out->n = 0;
    out->accuracy = out->auroc = out->rmse = NAN;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT p.output, p.score, f.label FROM feedback f JOIN predictions p "
                           "ON p.id = f.id ORDER BY p.time DESC LIMIT ?",
                           -1, &q, NULL) != SQLITE_OK)
        return lp_err_set(err, LP_EDB, "%s: %s", path, sqlite3_errmsg(db));
    sqlite3_bind_int64(q, 1, (sqlite3_int64)window);
    size_t cap = 1024, n = 0, correct = 0, nnum = 0;
    double se = 0;
    int32_t *y = malloc(cap * sizeof *y);
    double *s = malloc(cap * sizeof *s);
    bool scores_ok = true;
    lp_status st = LP_OK;
    while (sqlite3_step(q) == SQLITE_ROW) {
        if (n == cap) {
            cap *= 2;
            int32_t *ny = realloc(y, cap * sizeof *y);
            double *ns = realloc(s, cap * sizeof *s);
            if (ny)
                y = ny;
            if (ns)
                s = ns;
            if (!ny || !ns) {
                st = lp_err_set(err, LP_ENOMEM, "live metrics: out of memory");
                break;
            }
        }
        const char *o = (const char *)sqlite3_column_text(q, 0);
        const char *lab = (const char *)sqlite3_column_text(q, 2);
        if (!o || !lab)
            continue;
        correct += strcmp(o, lab) == 0;
        char *e1, *e2;
        double ov = strtod(o, &e1), lv = strtod(lab, &e2);
        if (*o && !*e1 && *lab && !*e2) {
            se += (ov - lv) * (ov - lv);
            nnum++;
        }
        if (sqlite3_column_type(q, 1) == SQLITE_NULL)
            scores_ok = false;
        s[n] = sqlite3_column_double(q, 1);
        y[n] = positive && strcmp(lab, positive) == 0;
        n++;
    }
    sqlite3_finalize(q);
    if (!st && n) {
        out->n = n;
        out->accuracy = (double)correct / (double)n;
        if (nnum == n)
            out->rmse = sqrt(se / (double)nnum);
        double auc;
        if (positive && scores_ok && lp_metrics_auroc(y, s, n, &auc, NULL) == LP_OK)
            out->auroc = auc;
    }
    free(y);
    free(s);
    return st;
}

lp_status lp_predlog_live(lp_predlog *l, size_t window, const char *positive,
                          lp_live_metrics *out, lp_err *err)
{
    pthread_mutex_lock(&l->fmu);
    lp_status st = live(l->fdb, l->path, window, positive, out, err);
    pthread_mutex_unlock(&l->fmu);
    return st;
}

lp_status lp_predlog_live_offline(const char *db_path, size_t window, const char *positive,
                                  lp_live_metrics *out, lp_err *err)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        lp_status st = lp_err_set(err, LP_EDB, "%s: cannot open: %s", db_path,
                                  db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return st;
    }
    lp_status st = live(db, db_path, window, positive, out, err);
    sqlite3_close(db);
    return st;
}

lp_status lp_predlog_put_state(lp_predlog *l, const char *key, const void *data, size_t len,
                               lp_err *err)
{
    pthread_mutex_lock(&l->fmu);
    sqlite3_stmt *q = NULL;
    int rc = sqlite3_prepare_v2(l->fdb, PUT_STATE, -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_blob(q, 2, data, (int)len, SQLITE_STATIC);
        sqlite3_bind_double(q, 3, lp_time_wall());
        rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(q);
    lp_status st = rc == SQLITE_OK ? LP_OK
                                   : lp_err_set(err, LP_EDB, "%s: %s", l->path,
                                                sqlite3_errmsg(l->fdb));
    pthread_mutex_unlock(&l->fmu);
    return st;
}

lp_status lp_predlog_put_state_later(lp_predlog *l, const char *key, const void *data,
                                     size_t len, lp_err *err)
{
    pending_state p = {.key = lp_strdup(key), .data = malloc(len ? len : 1), .len = len,
                       .time = lp_time_wall()};
    if (!p.key || !p.data) {
        pending_free(&p);
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory for state '%s'", l->path, key);
    }
    if (len)
        memcpy(p.data, data, len);
    pthread_mutex_lock(&l->mu);
    size_t i = 0;
    while (i < l->npend && strcmp(l->pend[i].key, key) != 0)
        i++;
    lp_status st = LP_OK;
    if (l->stop) {
        st = lp_err_set(err, LP_EINVAL, "%s: the prediction log is closing", l->path);
    } else if (i < l->npend) { /* a newer value of a key still waiting replaces it */
        pending_free(&l->pend[i]);
        l->pend[i] = p;
        p.key = NULL, p.data = NULL;
    } else if (l->npend < PENDING_MAX) {
        l->pend[l->npend++] = p;
        p.key = NULL, p.data = NULL;
        if (l->npend == 1 && !l->count) /* the writer is idle: wake it */
            pthread_cond_signal(&l->wake);
    } else {
        st = lp_err_set(err, LP_EINVAL, "%s: %d state keys already wait for the writer", l->path,
                        PENDING_MAX);
    }
    pthread_mutex_unlock(&l->mu);
    pending_free(&p);
    return st;
}

lp_status lp_predlog_get_state_offline(const char *db_path, const char *key, uint8_t **data,
                                       size_t *len, lp_err *err)
{
    *data = NULL;
    *len = 0;
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        lp_status st = lp_err_set(err, LP_EDB, "%s: cannot open: %s", db_path,
                                  db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return st;
    }
    sqlite3_stmt *q = NULL;
    lp_status st = LP_OK;
    if (sqlite3_prepare_v2(db, "SELECT value FROM state WHERE key=?", -1, &q, NULL) != SQLITE_OK) {
        st = lp_err_set(err, LP_EDB, "%s: %s", db_path, sqlite3_errmsg(db));
    } else {
        sqlite3_bind_text(q, 1, key, -1, SQLITE_STATIC);
        if (sqlite3_step(q) == SQLITE_ROW) {
            int n = sqlite3_column_bytes(q, 0);
            uint8_t *d = malloc(n > 0 ? (size_t)n : 1);
            if (!d)
                st = lp_err_set(err, LP_ENOMEM, "out of memory");
            else {
                if (n > 0)
                    memcpy(d, sqlite3_column_blob(q, 0), (size_t)n);
                *data = d;
                *len = (size_t)n;
            }
        } else {
            st = lp_err_set(err, LP_ENOTFOUND, "%s: no saved state '%s'", db_path, key);
        }
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    return st;
}
