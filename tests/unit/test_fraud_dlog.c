/*
 * test_fraud_dlog.c - the decision log's group commit (apps/fraud/fraud_dlog.c): rows queued
 * while the writer is held commit in one or two transactions, in sequence order; a row past a
 * gap waits for the gap; a duplicate id refuses only its own row; rows reserved under a lock by
 * several threads land in the log in reservation order; a failed commit is sticky.
 */
#include "lp_test.h"

#include "fraud.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const ddl =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE decisions(id TEXT PRIMARY KEY, t REAL NOT NULL, request TEXT NOT NULL,"
    " score REAL, decision TEXT, reasons TEXT, rules_hit TEXT, model_version TEXT,"
    " latency_us REAL, logged_at REAL);";

static char *new_db(const char *name, sqlite3 **db)
{
    char *path = lp_test_tmpfile(name);
    char wal[1100];
    remove(path);
    snprintf(wal, sizeof wal, "%s-wal", path);
    remove(wal);
    assert_int_equal(sqlite3_open(path, db), SQLITE_OK);
    sqlite3_busy_timeout(*db, 5000);
    assert_int_equal(sqlite3_exec(*db, ddl, NULL, NULL, NULL), SQLITE_OK);
    return path;
}

static void submit(fraud_dlog *dl, uint64_t seq, const char *id, double score)
{
    char req[200];
    int n = snprintf(req, sizeof req, "{\"transaction_id\":\"%s\"}", id);
    fraud_dlog_row r = {.id = id, .t = 1e9 + (double)seq, .request = req,
                        .request_len = (size_t)n, .score = score, .decision = "approve",
                        .reasons = "[]", .reasons_len = 2, .rules_hit = "[\"x\"]",
                        .rules_hit_len = 5, .model_version = "v1", .latency_us = 1,
                        .logged_at = 2e9};
    fraud_dlog_submit(dl, seq, &r);
}

/* ids of the decisions table in rowid order, joined by ',' */
static void ids_in_order(sqlite3 *db, char *out, size_t cap)
{
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT id FROM decisions ORDER BY rowid", -1, &q,
                                        NULL),
                     SQLITE_OK);
    size_t len = 0;
    out[0] = 0;
    while (sqlite3_step(q) == SQLITE_ROW)
        len += (size_t)snprintf(out + len, cap - len, "%s%s", len ? "," : "",
                                (const char *)sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
}

static void test_batches_while_held(void **state)
{
    (void)state;
    sqlite3 *db = NULL;
    char *path = new_db("dlog_batch.db", &db);
    lp_err err;
    fraud_dlog *dl = NULL;
    assert_int_equal(fraud_dlog_open(path, NULL, &dl, &err), LP_OK);
    /* another connection holds the write lock: the writer's first BEGIN IMMEDIATE waits */
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    enum { N = 300 };
    uint64_t seq[N];
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof id, "b%d", i);
        seq[i] = fraud_dlog_reserve(dl);
        assert_int_equal(seq[i], (uint64_t)i);
        submit(dl, seq[i], id, i / 1000.0);
    }
    usleep(20000);
    assert_int_equal(fraud_dlog_get_stats(dl).rows, 0); /* nothing can commit yet */
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 0; i < N; i++)
        assert_int_equal(fraud_dlog_wait(dl, seq[i], &err), LP_OK);
    fraud_dlog_stats s = fraud_dlog_get_stats(dl);
    assert_int_equal(s.rows, N);
    /* the writer may have taken a first batch before the rest were queued (it then waited for
     * the lock); everything queued behind it went in one more commit */
    assert_true(s.commits <= 2);
    assert_true(s.max_batch >= N / 2);
    sqlite3_stmt *q = NULL;
    sqlite3_prepare_v2(db, "SELECT COUNT(*), SUM(score), MIN(rowid) FROM decisions", -1, &q,
                       NULL);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(q, 0), N);
    assert_true(fabs(sqlite3_column_double(q, 1) - (N - 1) * N / 2 / 1000.0) < 1e-9);
    int64_t r0 = sqlite3_column_int64(q, 2);
    sqlite3_finalize(q);
    /* sequence order is rowid order */
    sqlite3_prepare_v2(db, "SELECT id, rowid, request, rules_hit FROM decisions", -1, &q, NULL);
    while (sqlite3_step(q) == SQLITE_ROW) {
        int i = atoi((const char *)sqlite3_column_text(q, 0) + 1);
        assert_int_equal(sqlite3_column_int64(q, 1), r0 + i);
        char want[64];
        snprintf(want, sizeof want, "{\"transaction_id\":\"b%d\"}", i);
        assert_string_equal((const char *)sqlite3_column_text(q, 2), want);
        assert_string_equal((const char *)sqlite3_column_text(q, 3), "[\"x\"]");
    }
    sqlite3_finalize(q);
    fraud_dlog_free(dl);
    sqlite3_close(db);
    free(path);
}

static void test_gap_and_duplicate(void **state)
{
    (void)state;
    sqlite3 *db = NULL;
    char *path = new_db("dlog_gap.db", &db);
    lp_err err;
    fraud_dlog *dl = NULL;
    fraud_dlog_opts o = fraud_dlog_opts_default();
    o.synchronous = 2;
    assert_int_equal(fraud_dlog_open(path, &o, &dl, &err), LP_OK);
    uint64_t a = fraud_dlog_reserve(dl), b = fraud_dlog_reserve(dl);
    submit(dl, b, "second", 0.2); /* b is ready, a is not: b must not be written first */
    usleep(30000);
    assert_int_equal(fraud_dlog_get_stats(dl).rows, 0);
    submit(dl, a, "first", 0.1);
    assert_int_equal(fraud_dlog_wait(dl, b, &err), LP_OK);
    assert_int_equal(fraud_dlog_wait(dl, a, &err), LP_OK);
    char ids[256];
    ids_in_order(db, ids, sizeof ids);
    assert_string_equal(ids, "first,second");

    /* a duplicate id refuses its own row only; the rows around it are written */
    uint64_t c = fraud_dlog_reserve(dl), d = fraud_dlog_reserve(dl), e = fraud_dlog_reserve(dl);
    submit(dl, c, "third", 0.3);
    submit(dl, d, "first", 0.4);
    submit(dl, e, "fourth", 0.5);
    assert_int_equal(fraud_dlog_wait(dl, c, &err), LP_OK);
    assert_int_equal(fraud_dlog_wait(dl, d, &err), LP_EEXIST);
    assert_int_equal(fraud_dlog_wait(dl, e, &err), LP_OK);
    ids_in_order(db, ids, sizeof ids);
    assert_string_equal(ids, "first,second,third,fourth");
    assert_int_equal(fraud_dlog_check(dl, &err), LP_OK);

    /* a failed commit is sticky: that row and every later one get LP_EDB */
    assert_int_equal(sqlite3_exec(db, "DROP TABLE decisions", NULL, NULL, NULL), SQLITE_OK);
    uint64_t f = fraud_dlog_reserve(dl);
    submit(dl, f, "fifth", 0.6);
    assert_int_equal(fraud_dlog_wait(dl, f, &err), LP_EDB);
    assert_int_equal(fraud_dlog_check(dl, &err), LP_EDB);
    assert_non_null(strstr(lp_err_text(&err), "restart"));
    uint64_t g = fraud_dlog_reserve(dl);
    submit(dl, g, "sixth", 0.7);
    assert_int_equal(fraud_dlog_wait(dl, g, &err), LP_EDB);
    fraud_dlog_free(dl);

    o.max_batch = 0;
    assert_int_equal(fraud_dlog_open(path, &o, &dl, &err), LP_EINVAL);
    assert_null(dl);
    sqlite3_close(db);
    free(path);
}

/* Several threads: reserve under a shared lock (recording the order), submit and wait outside
 * it, as the service does. */
enum { THREADS = 4, PER_THREAD = 400 };
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static fraud_dlog *g_dl;
static int g_order[THREADS * PER_THREAD]; /* seq -> thread * PER_THREAD + i */
static int g_fail;

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        char id[32];
        snprintf(id, sizeof id, "w%d", t * PER_THREAD + i);
        pthread_mutex_lock(&g_mu);
        uint64_t seq = fraud_dlog_reserve(g_dl);
        g_order[seq] = t * PER_THREAD + i;
        pthread_mutex_unlock(&g_mu);
        submit(g_dl, seq, id, 0.5);
        lp_err err;
        if (fraud_dlog_wait(g_dl, seq, &err))
            __atomic_add_fetch(&g_fail, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_threads_keep_reservation_order(void **state)
{
    (void)state;
    sqlite3 *db = NULL;
    char *path = new_db("dlog_threads.db", &db);
    lp_err err;
    assert_int_equal(fraud_dlog_open(path, NULL, &g_dl, &err), LP_OK);
    pthread_t th[THREADS];
    for (int t = 0; t < THREADS; t++)
        pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t);
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    assert_int_equal(g_fail, 0);
    fraud_dlog_stats s = fraud_dlog_get_stats(g_dl);
    assert_int_equal(s.rows, THREADS * PER_THREAD);
    assert_true(s.commits >= 1 && s.commits <= s.rows);
    sqlite3_stmt *q = NULL;
    sqlite3_prepare_v2(db, "SELECT id FROM decisions ORDER BY rowid", -1, &q, NULL);
    int k = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        assert_int_equal(atoi((const char *)sqlite3_column_text(q, 0) + 1), g_order[k]);
        k++;
    }
    sqlite3_finalize(q);
    assert_int_equal(k, THREADS * PER_THREAD);
    fraud_dlog_free(g_dl);
    sqlite3_close(db);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batches_while_held),
        cmocka_unit_test(test_gap_and_duplicate),
        cmocka_unit_test(test_threads_keep_reservation_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
