/*
 * fraud_dlog.c - the decision log's group commit: one writer thread, with its own SQLite
 * connection, commits the decision rows of many requests in one transaction.
 *
 * Protocol (fraud.h): a request takes a sequence number (fraud_dlog_reserve) at the moment its
 * transaction enters the velocity state, under the caller's state lock, so sequence order is
 * state order. It then scores without the lock, hands its row over (fraud_dlog_submit: copied
 * into slot seq % DLOG_SLOTS) and waits until the writer has committed it (fraud_dlog_wait)
 * before answering. The writer takes the longest run of submitted rows that starts at the
 * first uncommitted sequence number (never one with a gap before it), writes them in one
 * BEGIN IMMEDIATE ... COMMIT and wakes their waiters (or calls their completions); while it
 * commits, the next batch gathers. Two waits make batches larger under load: rows already
 * reserved (being scored on another thread) are waited for up to gather_us, and when the last
 * batch carried two or more rows the writer first sleeps linger_us; a lone request meets
 * neither. Hence: every answered decision is committed; the committed rows are always a
 * prefix of the state order, so a crash loses only a suffix of requests that were never
 * answered, and replaying the log rebuilds exactly the state the answered requests saw.
 *
 * Not done here: the row encoding (the caller builds the reasons and rules_hit texts), the
 * schema (the service creates the decisions table). A failed commit (I/O error, disk full) is
 * sticky: every row of that batch and every later submit gets LP_EDB, because the caller's
 * state already holds those transactions; restarting the service rebuilds state from the log.
 * Durability is SQLite's: synchronous=NORMAL in WAL survives a process crash (SIGKILL), and
 * synchronous=FULL also a power loss.
 */
#include "fraud.h"

#include <errno.h>
#include <stdatomic.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#define DLOG_SLOTS 4096 /* rows in flight at most; a submit past that waits for a free slot */

enum { SLOT_FREE, SLOT_FILLED, SLOT_DONE };

typedef struct dslot {
    _Atomic uint64_t seq; /* the sequence number this slot serves now (i, i + DLOG_SLOTS, ..) */
    _Atomic int state;  /* written under mu; read without it only by the slot's owner */
    bool waiting;       /* its owner sleeps on done (so the writer signals it) */
    pthread_cond_t done;
    lp_status result;
    bool skip;          /* the row could not be copied (out of memory): not written */
    lp_buf b;           /* id, request, reasons, rules_hit, model_version, each NUL-ended */
    size_t off[5], len[5];
    double t, score, latency_us, logged_at;
    const char *decision; /* a static name (fraud_decision_name) */
    fraud_dlog_done_fn done_fn; /* or NULL: the owner calls fraud_dlog_wait */
    void *done_arg;
} dslot;

typedef struct dcall {
    fraud_dlog_done_fn fn;
    void *arg;
    lp_status st;
} dcall;

struct fraud_dlog {
    pthread_mutex_t mu;
    pthread_cond_t filled, freed;
    size_t n_free_waiters; /* submitters waiting for their slot to be freed */
    dslot *slots;
    _Atomic uint64_t next_seq;
    uint64_t committed; /* every row below this was written (or failed); under mu */
    uint64_t want;      /* the row whose submit wakes the writer (under mu) */
    bool stop, started;
    pthread_t writer;
    sqlite3 *db;
    sqlite3_stmt *ins;
    fraud_dlog_opts o;
    dcall *calls; /* (max_batch,) completions of the current batch (writer only) */
    fraud_dlog_stats stats;
    lp_status fatal;
    char fatal_msg[240];
};

fraud_dlog_opts fraud_dlog_opts_default(void)
{
    return (fraud_dlog_opts){
        .max_batch = 512, .synchronous = 1, .autocheckpoint = 4000, .gather_us = 200,
        .linger_us = 500};
}

lp_status fraud_dlog_opts_check(const fraud_dlog_opts *o, lp_err *err)
{
    if (o->max_batch < 1 || o->max_batch > DLOG_SLOTS)
        return lp_err_set(err, LP_EINVAL, "decision log opts.max_batch: %zu, expected 1..%d",
                          o->max_batch, DLOG_SLOTS);
    if (o->synchronous < 0 || o->synchronous > 2)
        return lp_err_set(err, LP_EINVAL, "decision log opts.synchronous: %d, expected 0 "
                          "(off), 1 (normal) or 2 (full)", o->synchronous);
    if (o->linger_us > 100000)
        return lp_err_set(err, LP_EINVAL, "decision log opts.linger_us: %u, expected at most "
                          "100000 (0.1 s)", o->linger_us);
    if (o->gather_us > 100000)
        return lp_err_set(err, LP_EINVAL, "decision log opts.gather_us: %u, expected at most "
                          "100000 (0.1 s)", o->gather_us);
    if (o->autocheckpoint > 1000000)
        return lp_err_set(err, LP_EINVAL, "decision log opts.autocheckpoint: %u pages, "
                          "expected at most 1000000", o->autocheckpoint);
    return LP_OK;
}

/* Bind slot s to the INSERT and run it; SQLite's result code. */
static int write_row(fraud_dlog *dl, const dslot *s)
{
    sqlite3_stmt *q = dl->ins;
    const char *b = (const char *)s->b.data;
    sqlite3_bind_text(q, 1, b + s->off[0], (int)s->len[0], SQLITE_STATIC);
    sqlite3_bind_double(q, 2, s->t);
    sqlite3_bind_text(q, 3, b + s->off[1], (int)s->len[1], SQLITE_STATIC);
    sqlite3_bind_double(q, 4, s->score);
    sqlite3_bind_text(q, 5, s->decision, -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 6, b + s->off[2], (int)s->len[2], SQLITE_STATIC);
    sqlite3_bind_text(q, 7, b + s->off[3], (int)s->len[3], SQLITE_STATIC);
    sqlite3_bind_text(q, 8, b + s->off[4], (int)s->len[4], SQLITE_STATIC);
    sqlite3_bind_double(q, 9, s->latency_us);
    sqlite3_bind_double(q, 10, s->logged_at);
    int rc = sqlite3_step(q);
    sqlite3_reset(q);
    return rc;
}

/* Write rows [a, a + n) in one transaction, setting each slot's result. Outside mu: the slots
 * are FILLED, so nobody else touches them. Returns false when the batch failed as a whole. */
static bool write_batch(fraud_dlog *dl, uint64_t a, size_t n)
{
    char *msg = NULL;
    bool ok = sqlite3_exec(dl->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) == SQLITE_OK;
    for (size_t i = 0; ok && i < n; i++) {
        dslot *s = &dl->slots[(a + i) % DLOG_SLOTS];
        s->result = LP_OK;
        if (s->skip) {
            s->result = LP_ENOMEM;
            continue;
        }
        int rc = write_row(dl, s);
        if (rc == SQLITE_CONSTRAINT)
            s->result = LP_EEXIST; /* only this statement is undone; the batch goes on */
        else if (rc != SQLITE_DONE)
            ok = false;
    }
    if (ok && sqlite3_exec(dl->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK)
        ok = false;
    if (!ok) {
        snprintf(dl->fatal_msg, sizeof dl->fatal_msg, "decision log: %s",
                 msg ? msg : sqlite3_errmsg(dl->db));
        sqlite3_exec(dl->db, "ROLLBACK", NULL, NULL, NULL);
        for (size_t i = 0; i < n; i++)
            dl->slots[(a + i) % DLOG_SLOTS].result = LP_EDB;
    }
    sqlite3_free(msg);
    return ok;
}

/* The error line of a row's result (fatal_msg is written by the writer thread only). */
static void result_err(const fraud_dlog *dl, lp_status st, lp_err *err)
{
    if (st == LP_EDB)
        lp_err_set(err, st, "%s", dl->fatal_msg);
    else if (st == LP_EEXIST)
        lp_err_set(err, st, "decision log: a decision with this transaction id is already "
                   "logged");
    else if (st == LP_ENOMEM)
        lp_err_set(err, st, "decision log: out of memory copying the row");
    else
        lp_err_clear(err);
}

static void *writer_main(void *arg)
{
    fraud_dlog *dl = arg;
    size_t last_n = 0; /* rows of the previous batch */
    pthread_mutex_lock(&dl->mu);
    for (;;) {
        dslot *first = &dl->slots[dl->committed % DLOG_SLOTS];
        if (first->state != SLOT_FILLED) {
            if (dl->stop)
                break;
            dl->want = dl->committed;
            pthread_cond_wait(&dl->filled, &dl->mu);
            continue;
        }
        if (dl->o.linger_us && last_n >= 2 && !dl->stop) {
            /* linger, only under load (the last batch carried several rows): let more rows
             * arrive before this batch (one timer wake per batch, none per row); a lone
             * request never waits for it */
            pthread_mutex_unlock(&dl->mu);
            struct timespec ts = {0, (long)dl->o.linger_us * 1000};
            nanosleep(&ts, NULL);
            pthread_mutex_lock(&dl->mu);
        }
        uint64_t a = dl->committed;
        size_t n = 1;
        /* gather: rows already reserved (being scored right now) join this batch if they are
         * submitted within gather_us; each one saves a commit */
        struct timespec until = {0, 0};
        for (;;) {
            while (n < dl->o.max_batch && dl->slots[(a + n) % DLOG_SLOTS].state == SLOT_FILLED)
                n++;
            uint64_t reserved = atomic_load(&dl->next_seq);
            if (n == dl->o.max_batch || reserved <= a + n || !dl->o.gather_us || dl->stop)
                break;
            if (!until.tv_sec) {
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_nsec += (long)dl->o.gather_us * 1000;
                until.tv_sec += until.tv_nsec / 1000000000;
                until.tv_nsec %= 1000000000;
            }
            dl->want = a + n;
            if (pthread_cond_timedwait(&dl->filled, &dl->mu, &until) == ETIMEDOUT) {
                while (n < dl->o.max_batch &&
                       dl->slots[(a + n) % DLOG_SLOTS].state == SLOT_FILLED)
                    n++;
                break;
            }
        }
        last_n = n;
        bool failed = dl->fatal != LP_OK;
        pthread_mutex_unlock(&dl->mu);
        bool ok = false;
        if (!failed)
            ok = write_batch(dl, a, n);
        else
            for (size_t i = 0; i < n; i++)
                dl->slots[(a + i) % DLOG_SLOTS].result = LP_EDB;
        pthread_mutex_lock(&dl->mu);
        if (!ok && !failed)
            dl->fatal = LP_EDB;
        size_t nc = 0;
        for (size_t i = 0; i < n; i++) {
            dslot *s = &dl->slots[(a + i) % DLOG_SLOTS];
            if (s->done_fn) { /* completed by callback below: the slot is free at once */
                dl->calls[nc++] = (dcall){s->done_fn, s->done_arg, s->result};
                s->seq += DLOG_SLOTS;
                s->state = SLOT_FREE;
                continue;
            }
            s->state = SLOT_DONE;
            if (s->waiting) /* wake exactly the requests of this batch */
                pthread_cond_signal(&s->done);
        }
        if (nc && dl->n_free_waiters)
            pthread_cond_broadcast(&dl->freed);
        dl->committed = a + n;
        if (ok) {
            dl->stats.rows += n;
            dl->stats.commits++;
            if (n > dl->stats.max_batch)
                dl->stats.max_batch = n;
        }
        if (nc) {
            pthread_mutex_unlock(&dl->mu);
            for (size_t k = 0; k < nc; k++) {
                lp_err e;
                result_err(dl, dl->calls[k].st, &e);
                dl->calls[k].fn(dl->calls[k].arg, dl->calls[k].st, &e);
            }
            pthread_mutex_lock(&dl->mu);
        }
    }
    pthread_mutex_unlock(&dl->mu);
    return NULL;
}

lp_status fraud_dlog_open(const char *db_path, const fraud_dlog_opts *opts, fraud_dlog **out,
                          lp_err *err)
{
    *out = NULL;
    fraud_dlog_opts o = opts ? *opts : fraud_dlog_opts_default();
    lp_status st = fraud_dlog_opts_check(&o, err);
    if (st)
        return st;
    fraud_dlog *dl = lp_calloc(1, sizeof *dl);
    if (!dl || !(dl->slots = lp_calloc(DLOG_SLOTS, sizeof *dl->slots)) ||
        !(dl->calls = lp_calloc(o.max_batch, sizeof *dl->calls))) {
        if (dl)
            free(dl->slots);
        free(dl);
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    }
    dl->o = o;
    pthread_mutex_init(&dl->mu, NULL);
    pthread_cond_init(&dl->filled, NULL);
    pthread_cond_init(&dl->freed, NULL);
    for (size_t i = 0; i < DLOG_SLOTS; i++) {
        dl->slots[i].seq = i;
        pthread_cond_init(&dl->slots[i].done, NULL);
        lp_buf_init(&dl->slots[i].b);
    }
    /* the writer thread is the only user of this connection */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX;
    char pragmas[160];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%d; PRAGMA wal_autocheckpoint=%u;",
             o.synchronous, o.autocheckpoint);
    if (sqlite3_open_v2(db_path, &dl->db, flags, NULL) != SQLITE_OK ||
        sqlite3_busy_timeout(dl->db, 5000) != SQLITE_OK ||
        sqlite3_exec(dl->db, pragmas, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(dl->db,
                           "INSERT INTO decisions(id, t, request, score, decision, reasons,"
                           " rules_hit, model_version, latency_us, logged_at)"
                           " VALUES(?,?,?,?,?,?,?,?,?,?)",
                           -1, SQLITE_PREPARE_PERSISTENT, &dl->ins, NULL) != SQLITE_OK)
        st = lp_err_set(err, LP_EDB, "decision log %s: %s", db_path,
                        dl->db ? sqlite3_errmsg(dl->db) : "cannot open");
    if (!st && pthread_create(&dl->writer, NULL, writer_main, dl) != 0)
        st = lp_err_set(err, LP_EIO, "decision log: cannot start the writer thread");
    dl->started = !st;
    if (st) {
        fraud_dlog_free(dl);
        return st;
    }
    *out = dl;
    return LP_OK;
}

void fraud_dlog_free(fraud_dlog *dl)
{
    if (!dl)
        return;
    if (dl->started) {
        pthread_mutex_lock(&dl->mu);
        dl->stop = true;
        pthread_cond_signal(&dl->filled);
        pthread_mutex_unlock(&dl->mu);
        pthread_join(dl->writer, NULL);
    }
    for (size_t i = 0; dl->slots && i < DLOG_SLOTS; i++) {
        lp_buf_free(&dl->slots[i].b);
        pthread_cond_destroy(&dl->slots[i].done);
    }
    free(dl->slots);
    free(dl->calls);
    sqlite3_finalize(dl->ins);
    sqlite3_close(dl->db);
    pthread_cond_destroy(&dl->filled);
    pthread_cond_destroy(&dl->freed);
    pthread_mutex_destroy(&dl->mu);
    free(dl);
}

uint64_t fraud_dlog_reserve(fraud_dlog *dl)
{
    return atomic_fetch_add_explicit(&dl->next_seq, 1, memory_order_relaxed);
}

/* Append n bytes and a NUL to slot field k. */
static void slot_put(dslot *s, int k, const char *p, size_t n)
{
    s->off[k] = s->b.len;
    s->len[k] = n;
    lp_buf_put(&s->b, p ? p : "", n);
    lp_buf_u8(&s->b, 0);
}

void fraud_dlog_submit(fraud_dlog *dl, uint64_t seq, const fraud_dlog_row *row)
{
    dslot *s = &dl->slots[seq % DLOG_SLOTS];
    if (atomic_load(&s->state) != SLOT_FREE || s->seq != seq) {
        /* a whole ring of rows is in flight: wait for this row's slot (rare) */
        pthread_mutex_lock(&dl->mu);
        dl->n_free_waiters++;
        while (s->state != SLOT_FREE || s->seq != seq)
            pthread_cond_wait(&dl->freed, &dl->mu);
        dl->n_free_waiters--;
        pthread_mutex_unlock(&dl->mu);
    }
    /* the slot is this sequence number's alone until it is marked FILLED */
    s->b.len = 0;
    s->b.failed = false;
    slot_put(s, 0, row->id, strlen(row->id));
    slot_put(s, 1, row->request, row->request_len);
    slot_put(s, 2, row->reasons, row->reasons_len);
    slot_put(s, 3, row->rules_hit, row->rules_hit_len);
    slot_put(s, 4, row->model_version, strlen(row->model_version));
    s->skip = s->b.failed || row->request_len > INT32_MAX || row->reasons_len > INT32_MAX ||
              row->rules_hit_len > INT32_MAX;
    s->t = row->t;
    s->score = row->score;
    s->decision = row->decision;
    s->latency_us = row->latency_us;
    s->logged_at = row->logged_at;
    s->done_fn = row->done;
    s->done_arg = row->done_arg;
    pthread_mutex_lock(&dl->mu);
    s->state = SLOT_FILLED;
    if (seq == dl->want)
        pthread_cond_signal(&dl->filled);
    pthread_mutex_unlock(&dl->mu);
}

lp_status fraud_dlog_wait(fraud_dlog *dl, uint64_t seq, lp_err *err)
{
    dslot *s = &dl->slots[seq % DLOG_SLOTS];
    pthread_mutex_lock(&dl->mu);
    s->waiting = true;
    while (s->state != SLOT_DONE)
        pthread_cond_wait(&s->done, &dl->mu);
    s->waiting = false;
    lp_status st = s->result;
    s->seq += DLOG_SLOTS; /* before the state: an unlocked reader sees FREE with the new seq */
    s->state = SLOT_FREE;
    if (dl->n_free_waiters)
        pthread_cond_broadcast(&dl->freed);
    if (st)
        result_err(dl, st, err);
    pthread_mutex_unlock(&dl->mu);
    return st;
}

lp_status fraud_dlog_check(fraud_dlog *dl, lp_err *err)
{
    pthread_mutex_lock(&dl->mu);
    lp_status st = dl->fatal;
    if (st)
        lp_err_set(err, st, "%s; restart the service to rebuild its state from the log",
                   dl->fatal_msg);
    pthread_mutex_unlock(&dl->mu);
    return st;
}

fraud_dlog_stats fraud_dlog_get_stats(fraud_dlog *dl)
{
    pthread_mutex_lock(&dl->mu);
    fraud_dlog_stats s = dl->stats;
    pthread_mutex_unlock(&dl->mu);
    return s;
}
