/*
 * dx_audit.c - the hash-chained audit trail of lepton-diagnosis (dx.h) in SQLite, and the
 * PCRE2 redaction applied to any text stored in it.
 *
 * Each row's hash covers the previous row's hash and every field of the row, so editing a
 * field breaks that row's hash and deleting a row breaks the next row's link; the head table
 * holds the last row's id and hash, so deleting the last row is caught as well. (Someone who
 * can rewrite the whole chain and the head can forge it: anchor the head hash elsewhere for
 * that.) Appends are serialized by a mutex and run in one transaction each (WAL).
 *
 * Feedback (the label a clinician confirmed for an answer) lives in its own table, keyed by
 * the answer's id: it never touches the chained rows, so the chain verifies with or without
 * it. A second label for the same answer replaces the first.
 */
#include "dx.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <cjson/cJSON.h>
#include <pcre2.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GENESIS "0000000000000000000000000000000000000000000000000000000000000000"

struct dx_audit {
    sqlite3 *db;
    pthread_mutex_t mu;
};

static const char *SCHEMA =
    "PRAGMA journal_mode=WAL;"
    "CREATE TABLE IF NOT EXISTS answers(id INTEGER PRIMARY KEY, ts TEXT NOT NULL,"
    " model_version TEXT NOT NULL, input_sha256 TEXT NOT NULL, text TEXT,"
    " differential TEXT NOT NULL, explanation TEXT NOT NULL, abstain TEXT NOT NULL,"
    " prev_hash TEXT NOT NULL, hash TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS head(one INTEGER PRIMARY KEY CHECK(one = 1), n INTEGER NOT NULL,"
    " hash TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS feedback(audit_id INTEGER PRIMARY KEY, label TEXT NOT NULL,"
    " received_at REAL NOT NULL);"
    "PRAGMA user_version=1;";

lp_status dx_audit_open(const char *path, dx_audit **out, lp_err *err)
{
    *out = NULL;
    dx_audit *a = lp_calloc(1, sizeof *a);
    if (!a)
        return lp_err_set(err, LP_ENOMEM, "audit: out of memory");
    if (sqlite3_open(path, &a->db) != SQLITE_OK) {
        lp_status st = lp_err_set(err, LP_EDB, "%s: cannot open audit database: %s", path,
                                  a->db ? sqlite3_errmsg(a->db) : "out of memory");
        sqlite3_close(a->db);
        free(a);
        return st;
    }
    sqlite3_busy_timeout(a->db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(a->db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK) {
        lp_status st = lp_err_set(err, LP_EDB, "%s: audit schema: %s", path, msg ? msg : "?");
        sqlite3_free(msg);
        sqlite3_close(a->db);
        free(a);
        return st;
    }
    pthread_mutex_init(&a->mu, NULL);
    *out = a;
    return LP_OK;
}

void dx_audit_close(dx_audit *a)
{
    if (!a)
        return;
    sqlite3_close(a->db);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* SHA-256 over prev_hash and the fields joined by 0x1f (a NULL text is the empty field plus a
 * 0x1e marker, so NULL and "" differ). */
static void row_hash(const char *prev, int64_t id, const char *ts, const char *ver,
                     const char *in_hash, const char *text, const char *diff, const char *expl,
                     const char *abst, char hex[65])
{
    lp_buf b;
    lp_buf_init(&b);
    lp_buf_printf(&b, "%s\x1f%lld\x1f%s\x1f%s\x1f%s\x1f%s%s\x1f%s\x1f%s\x1f%s", prev, (long long)id,
                  ts, ver, in_hash, text ? text : "", text ? "" : "\x1e", diff, expl, abst);
    lp_sha256_hex(b.data, b.len, hex);
    lp_buf_free(&b);
}

lp_status dx_audit_append(dx_audit *a, const char *model_version, const char *input_sha256,
                          const char *text, const char *differential_json,
                          const char *explanation_json, const char *abstain_json, int64_t *id,
                          lp_err *err)
{
    char ts[32];
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct tm tm;
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, now.tv_nsec / 1000000);
    pthread_mutex_lock(&a->mu);
    lp_status st = LP_OK;
    sqlite3_stmt *q = NULL;
    char prev[65] = GENESIS, hex[65];
    int64_t next = 1;
    if (sqlite3_exec(a->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        st = lp_err_set(err, LP_EDB, "audit: begin: %s", sqlite3_errmsg(a->db));
    if (!st && sqlite3_prepare_v2(a->db, "SELECT n, hash FROM head WHERE one = 1", -1, &q, NULL) ==
                   SQLITE_OK &&
        sqlite3_step(q) == SQLITE_ROW) {
        next = sqlite3_column_int64(q, 0) + 1;
        snprintf(prev, sizeof prev, "%s", (const char *)sqlite3_column_text(q, 1));
    }
    sqlite3_finalize(q);
    q = NULL;
    if (!st) {
        row_hash(prev, next, ts, model_version, input_sha256, text, differential_json,
                 explanation_json, abstain_json, hex);
        const char *sql = "INSERT INTO answers(id, ts, model_version, input_sha256, text,"
                          " differential, explanation, abstain, prev_hash, hash)"
                          " VALUES(?,?,?,?,?,?,?,?,?,?)";
        if (sqlite3_prepare_v2(a->db, sql, -1, &q, NULL) != SQLITE_OK)
            st = lp_err_set(err, LP_EDB, "audit: %s", sqlite3_errmsg(a->db));
    }
    if (!st) {
        sqlite3_bind_int64(q, 1, next);
        const char *vals[] = {ts,           model_version,     input_sha256,
                              text,         differential_json, explanation_json,
                              abstain_json, prev,              hex};
        for (int i = 0; i < 9; i++)
            if (vals[i])
                sqlite3_bind_text(q, i + 2, vals[i], -1, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(q, i + 2);
        if (sqlite3_step(q) != SQLITE_DONE)
            st = lp_err_set(err, LP_EDB, "audit: insert: %s", sqlite3_errmsg(a->db));
    }
    sqlite3_finalize(q);
    q = NULL;
    if (!st) {
        if (sqlite3_prepare_v2(a->db, "INSERT OR REPLACE INTO head(one, n, hash) VALUES(1, ?, ?)",
                               -1, &q, NULL) != SQLITE_OK)
            st = lp_err_set(err, LP_EDB, "audit: %s", sqlite3_errmsg(a->db));
        else {
            sqlite3_bind_int64(q, 1, next);
            sqlite3_bind_text(q, 2, hex, -1, SQLITE_TRANSIENT);
            if (sqlite3_step(q) != SQLITE_DONE)
                st = lp_err_set(err, LP_EDB, "audit: head: %s", sqlite3_errmsg(a->db));
        }
        sqlite3_finalize(q);
    }
    if (!st && sqlite3_exec(a->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        st = lp_err_set(err, LP_EDB, "audit: commit: %s", sqlite3_errmsg(a->db));
    if (st)
        sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_unlock(&a->mu);
    if (!st && id)
        *id = next;
    return st;
}

lp_status dx_audit_get(dx_audit *a, int64_t id, char **json, lp_err *err)
{
    *json = NULL;
    pthread_mutex_lock(&a->mu);
    sqlite3_stmt *q = NULL;
    lp_status st = LP_OK;
    if (sqlite3_prepare_v2(a->db,
                           "SELECT id, ts, model_version, input_sha256, text, differential,"
                           " explanation, abstain, prev_hash, hash FROM answers WHERE id = ?",
                           -1, &q, NULL) != SQLITE_OK)
        st = lp_err_set(err, LP_EDB, "audit: %s", sqlite3_errmsg(a->db));
    if (!st) {
        sqlite3_bind_int64(q, 1, id);
        if (sqlite3_step(q) != SQLITE_ROW)
            st = lp_err_set(err, LP_ENOTFOUND, "audit record %lld not found", (long long)id);
    }
    if (!st) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)sqlite3_column_int64(q, 0));
        const char *names[] = {"time", "model_version", "input_sha256", "text"};
        for (int i = 0; i < 4; i++) {
            const char *v = (const char *)sqlite3_column_text(q, i + 1);
            cJSON_AddItemToObject(o, names[i], v ? cJSON_CreateString(v) : cJSON_CreateNull());
        }
        const char *jnames[] = {"differential", "explanation", "abstain"};
        for (int i = 0; i < 3; i++) {
            cJSON *v = cJSON_Parse((const char *)sqlite3_column_text(q, i + 5));
            cJSON_AddItemToObject(o, jnames[i], v ? v : cJSON_CreateNull());
        }
        cJSON_AddStringToObject(o, "prev_hash", (const char *)sqlite3_column_text(q, 8));
        cJSON_AddStringToObject(o, "hash", (const char *)sqlite3_column_text(q, 9));
        *json = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        if (!*json)
            st = lp_err_set(err, LP_ENOMEM, "audit: out of memory");
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&a->mu);
    return st;
}

lp_status dx_audit_verify(const char *path, size_t *n_rows, lp_err *err)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        lp_status st = lp_err_set(err, LP_EDB, "%s: cannot open: %s", path,
                                  db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return st;
    }
    sqlite3_stmt *q = NULL;
    lp_status st = LP_OK;
    char prev[65] = GENESIS;
    int64_t last = 0;
    size_t n = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, ts, model_version, input_sha256, text, differential,"
                           " explanation, abstain, prev_hash, hash FROM answers ORDER BY id",
                           -1, &q, NULL) != SQLITE_OK)
        st = lp_err_set(err, LP_EFORMAT, "%s: not an audit database: %s", path,
                        sqlite3_errmsg(db));
    while (!st && sqlite3_step(q) == SQLITE_ROW) {
        int64_t id = sqlite3_column_int64(q, 0);
        const char *f[9];
        for (int i = 0; i < 9; i++)
            f[i] = (const char *)sqlite3_column_text(q, i + 1);
        if (!f[0] || !f[1] || !f[2] || !f[4] || !f[5] || !f[6] || !f[7] || !f[8]) {
            st = lp_err_set(err, LP_EFORMAT, "%s: row %lld: a required field is NULL (edited)",
                            path, (long long)id);
            break;
        }
        if (strcmp(f[7], prev) != 0) {
            st = lp_err_set(err, LP_EFORMAT,
                            "%s: row %lld: previous hash does not match row %lld (row%s deleted "
                            "or edited before it)",
                            path, (long long)id, (long long)last, id > last + 1 ? "s" : "");
            break;
        }
        char hex[65];
        row_hash(f[7], id, f[0], f[1], f[2], f[3], f[4], f[5], f[6], hex);
        if (strcmp(hex, f[8]) != 0) {
            st = lp_err_set(err, LP_EFORMAT, "%s: row %lld: hash does not match its contents "
                            "(edited)", path, (long long)id);
            break;
        }
        snprintf(prev, sizeof prev, "%s", f[8]);
        last = id;
        n++;
    }
    sqlite3_finalize(q);
    q = NULL;
    if (!st && sqlite3_prepare_v2(db, "SELECT n, hash FROM head WHERE one = 1", -1, &q, NULL) ==
                   SQLITE_OK) {
        if (sqlite3_step(q) == SQLITE_ROW) {
            int64_t hn = sqlite3_column_int64(q, 0);
            const char *hh = (const char *)sqlite3_column_text(q, 1);
            if (hn != last || !hh || strcmp(hh, prev) != 0)
                st = lp_err_set(err, LP_EFORMAT,
                                "%s: the chain ends at row %lld but the head records row %lld "
                                "(row %lld deleted?)",
                                path, (long long)last, (long long)hn, (long long)hn);
        } else if (n > 0) {
            st = lp_err_set(err, LP_EFORMAT, "%s: the head record is missing", path);
        }
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    if (n_rows)
        *n_rows = n;
    return st;
}

char *dx_redact(const char *text)
{
    static const char *pats[2] = {
        "[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\\.[A-Za-z]{2,}",
        "(?:\\+?\\d{1,3}[ .-]?)?(?:\\(\\d{2,4}\\)|\\d{2,4})[ .-]?\\d{3,4}[ .-]?\\d{3,4}"};
    static const char *repl[2] = {"[EMAIL]", "[PHONE]"};
    char *cur = lp_strdup(text);
    for (int i = 0; i < 2 && cur; i++) {
        int ec;
        PCRE2_SIZE eo;
        pcre2_code *re = pcre2_compile((PCRE2_SPTR)pats[i], PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec,
                                       &eo, NULL);
        if (!re) {
            free(cur);
            return NULL;
        }
        size_t cap = strlen(cur) * 2 + 64;
        char *outb = malloc(cap);
        PCRE2_SIZE olen = cap;
        int rc = outb ? pcre2_substitute(re, (PCRE2_SPTR)cur, PCRE2_ZERO_TERMINATED, 0,
                                         PCRE2_SUBSTITUTE_GLOBAL, NULL, NULL, (PCRE2_SPTR)repl[i],
                                         PCRE2_ZERO_TERMINATED, (PCRE2_UCHAR *)outb, &olen)
                      : -1;
        pcre2_code_free(re);
        free(cur);
        if (rc < 0) {
            free(outb);
            return NULL;
        }
        cur = outb;
    }
    return cur;
}

lp_status dx_audit_feedback(dx_audit *a, int64_t id, const char *label, lp_err *err)
{
    pthread_mutex_lock(&a->mu);
    sqlite3_stmt *q = NULL;
    lp_status st = LP_OK;
    bool found = false;
    if (sqlite3_prepare_v2(a->db, "SELECT 1 FROM answers WHERE id = ?", -1, &q, NULL) !=
        SQLITE_OK)
        st = lp_err_set(err, LP_EDB, "audit: %s", sqlite3_errmsg(a->db));
    if (!st) {
        sqlite3_bind_int64(q, 1, id);
        found = sqlite3_step(q) == SQLITE_ROW;
    }
    sqlite3_finalize(q);
    q = NULL;
    if (!st && !found)
        st = lp_err_set(err, LP_ENOTFOUND, "audit id %lld: no such answer", (long long)id);
    if (!st && sqlite3_prepare_v2(a->db, "INSERT OR REPLACE INTO feedback(audit_id, label,"
                                  " received_at) VALUES(?,?,?)", -1, &q, NULL) != SQLITE_OK)
        st = lp_err_set(err, LP_EDB, "audit: %s", sqlite3_errmsg(a->db));
    if (!st) {
        sqlite3_bind_int64(q, 1, id);
        sqlite3_bind_text(q, 2, label, -1, SQLITE_STATIC);
        sqlite3_bind_double(q, 3, lp_time_wall());
        if (sqlite3_step(q) != SQLITE_DONE)
            st = lp_err_set(err, LP_EDB, "audit feedback: %s", sqlite3_errmsg(a->db));
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&a->mu);
    return st;
}

lp_status dx_audit_live(dx_audit *a, size_t window, size_t *n, size_t *correct, lp_err *err)
{
    *n = *correct = 0;
    pthread_mutex_lock(&a->mu);
    sqlite3_stmt *q = NULL;
    lp_status st = LP_OK;
    if (sqlite3_prepare_v2(a->db, "SELECT f.label, a.differential FROM feedback f JOIN answers a"
                           " ON a.id = f.audit_id ORDER BY f.audit_id DESC LIMIT ?", -1, &q,
                           NULL) != SQLITE_OK)
        st = lp_err_set(err, LP_EDB, "audit: %s", sqlite3_errmsg(a->db));
    if (!st)
        sqlite3_bind_int64(q, 1, (sqlite3_int64)(window > INT64_MAX ? INT64_MAX : window));
    while (!st && sqlite3_step(q) == SQLITE_ROW) {
        const char *label = (const char *)sqlite3_column_text(q, 0);
        const char *diff = (const char *)sqlite3_column_text(q, 1);
        cJSON *d = diff ? cJSON_Parse(diff) : NULL;
        const cJSON *top = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(d, 0), "label");
        (*n)++;
        *correct += label && cJSON_IsString(top) && !strcmp(top->valuestring, label);
        cJSON_Delete(d);
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&a->mu);
    return st;
}
