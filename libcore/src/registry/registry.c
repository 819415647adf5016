/*
 * registry.c - the SQLite model registry (see registry.h). Schema version 1:
 *   models(name TEXT, version INTEGER, kind TEXT, path TEXT, sha256 TEXT, metrics TEXT,
 *          params TEXT, stage TEXT, created_at TEXT, PRIMARY KEY(name, version))
 * Every write is one transaction; versions are allocated inside it (BEGIN IMMEDIATE), so two
 * processes registering the same name at once get distinct versions.
 */
#include "lepton/registry.h"

#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct lp_registry {
    sqlite3 *db;
    char path[512];
};

static const char *stage_names[] = {"staging", "production", "archived"};

const char *lp_stage_name(lp_stage s) { return (unsigned)s < 3 ? stage_names[s] : "unknown"; }

lp_status lp_stage_parse(const char *s, lp_stage *out, lp_err *err)
{
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, stage_names[i]) == 0) {
            *out = (lp_stage)i;
            return LP_OK;
        }
    return lp_err_set(err, LP_EINVAL, "unknown stage '%s' (expected staging, production or archived)",
                      s ? s : "");
}

static lp_status db_fail(lp_registry *r, lp_err *err, const char *what)
{
    return lp_err_set(err, LP_EDB, "%s: %s: %s", r->path, what, sqlite3_errmsg(r->db));
}

static lp_status exec(lp_registry *r, const char *sql, lp_err *err)
{
    char *msg = NULL;
    if (sqlite3_exec(r->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        lp_err_set(err, LP_EDB, "%s: %s", r->path, msg ? msg : "sqlite error");
        sqlite3_free(msg);
        return LP_EDB;
    }
    return LP_OK;
}

lp_status lp_registry_open(const char *db_path, lp_registry **out, lp_err *err)
{
    *out = NULL;
    lp_registry *r = calloc(1, sizeof *r);
    if (!r)
        return lp_err_set(err, LP_ENOMEM, "out of memory opening registry");
    snprintf(r->path, sizeof r->path, "%s", db_path);
    if (sqlite3_open_v2(db_path, &r->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        lp_status st = lp_err_set(err, LP_EDB, "%s: cannot open registry: %s", db_path,
                                  r->db ? sqlite3_errmsg(r->db) : "out of memory");
        lp_registry_close(r);
        return st;
    }
    sqlite3_busy_timeout(r->db, 5000);
    lp_status st = exec(r, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", err);
    if (!st)
        st = exec(r,
                  "CREATE TABLE IF NOT EXISTS models(name TEXT NOT NULL, version INTEGER NOT NULL,"
                  " kind TEXT NOT NULL, path TEXT NOT NULL, sha256 TEXT NOT NULL, metrics TEXT,"
                  " params TEXT, stage TEXT NOT NULL DEFAULT 'staging', created_at TEXT NOT NULL,"
                  " PRIMARY KEY(name, version)); PRAGMA user_version=1;",
                  err);
    if (st) {
        lp_registry_close(r);
        return st;
    }
    *out = r;
    return LP_OK;
}

void lp_registry_close(lp_registry *r)
{
    if (!r)
        return;
    sqlite3_close(r->db);
    free(r);
}

static void now_iso(char *buf, size_t cap)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

lp_status lp_registry_add(lp_registry *r, const char *name, const char *kind, const char *path,
                          const char *metrics_json, const char *params_json, int64_t *version,
                          lp_err *err)
{
    if (!name || !*name || strlen(name) > 200)
        return lp_err_set(err, LP_EINVAL, "registry: model name must be 1-200 characters");
    char sha[65];
    lp_status st = lp_sha256_file(path, sha, err);
    if (st)
        return st;
    char when[32];
    now_iso(when, sizeof when);
    if ((st = exec(r, "BEGIN IMMEDIATE", err)))
        return st;
    sqlite3_stmt *q = NULL;
    int64_t v = 1;
    if (sqlite3_prepare_v2(r->db, "SELECT COALESCE(MAX(version),0)+1 FROM models WHERE name=?",
                           -1, &q, NULL) != SQLITE_OK) {
        st = db_fail(r, err, "registry query");
        goto rollback;
    }
    sqlite3_bind_text(q, 1, name, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(q) == SQLITE_ROW)
        v = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (sqlite3_prepare_v2(r->db,
                           "INSERT INTO models(name,version,kind,path,sha256,metrics,params,stage,"
                           "created_at) VALUES(?,?,?,?,?,?,?,'staging',?)",
                           -1, &q, NULL) != SQLITE_OK) {
        st = db_fail(r, err, "registry insert");
        goto rollback;
    }
    sqlite3_bind_text(q, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 2, v);
    sqlite3_bind_text(q, 3, kind ? kind : "", -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 4, path, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 5, sha, -1, SQLITE_TRANSIENT);
    if (metrics_json)
        sqlite3_bind_text(q, 6, metrics_json, -1, SQLITE_TRANSIENT);
    if (params_json)
        sqlite3_bind_text(q, 7, params_json, -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(q, 8, when, -1, SQLITE_TRANSIENT);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        st = db_fail(r, err, "registry insert");
        goto rollback;
    }
    if ((st = exec(r, "COMMIT", err)))
        goto rollback;
    if (version)
        *version = v;
    return LP_OK;
rollback:
    sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}

static char *col_dup(sqlite3_stmt *q, int i)
{
    const unsigned char *t = sqlite3_column_text(q, i);
    return t ? lp_strdup((const char *)t) : NULL;
}

static lp_status read_row(sqlite3_stmt *q, lp_registry_entry *e, lp_err *err)
{
    memset(e, 0, sizeof *e);
    e->name = col_dup(q, 0);
    e->version = sqlite3_column_int64(q, 1);
    e->kind = col_dup(q, 2);
    e->path = col_dup(q, 3);
    e->sha256 = col_dup(q, 4);
    e->metrics_json = col_dup(q, 5);
    e->params_json = col_dup(q, 6);
    const unsigned char *stage = sqlite3_column_text(q, 7);
    e->created_at = col_dup(q, 8);
    lp_stage s = LP_STAGE_STAGING;
    if (stage)
        lp_stage_parse((const char *)stage, &s, NULL);
    e->stage = s;
    if (!e->name || !e->path)
        return lp_err_set(err, LP_ENOMEM, "registry: out of memory reading an entry");
    return LP_OK;
}

void lp_registry_entry_clear(lp_registry_entry *e)
{
    if (!e)
        return;
    free(e->name);
    free(e->kind);
    free(e->path);
    free(e->sha256);
    free(e->metrics_json);
    free(e->params_json);
    free(e->created_at);
    memset(e, 0, sizeof *e);
}

void lp_registry_entries_free(lp_registry_entry *e, size_t n)
{
    if (!e)
        return;
    for (size_t i = 0; i < n; i++)
        lp_registry_entry_clear(&e[i]);
    free(e);
}

#define COLS "name,version,kind,path,sha256,metrics,params,stage,created_at"

lp_status lp_registry_list(lp_registry *r, const char *name, lp_registry_entry **out, size_t *n,
                           lp_err *err)
{
    *out = NULL;
    *n = 0;
    sqlite3_stmt *q = NULL;
    const char *sql = name ? "SELECT " COLS " FROM models WHERE name=? ORDER BY version DESC"
                           : "SELECT " COLS " FROM models ORDER BY name, version DESC";
    if (sqlite3_prepare_v2(r->db, sql, -1, &q, NULL) != SQLITE_OK)
        return db_fail(r, err, "registry list");
    if (name)
        sqlite3_bind_text(q, 1, name, -1, SQLITE_TRANSIENT);
    lp_registry_entry *v = NULL;
    size_t cnt = 0, cap = 0;
    lp_status st = LP_OK;
    int rc;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (cnt == cap) {
            cap = cap ? 2 * cap : 16;
            lp_registry_entry *nv = lp_reallocarray(v, cap, sizeof *v);
            if (!nv) {
                st = lp_err_set(err, LP_ENOMEM, "registry: out of memory listing");
                break;
            }
            v = nv;
        }
        st = read_row(q, &v[cnt], err);
        cnt++;
        if (st)
            break;
    }
    if (!st && rc != SQLITE_DONE)
        st = db_fail(r, err, "registry list");
    sqlite3_finalize(q);
    if (st) {
        lp_registry_entries_free(v, cnt);
        return st;
    }
    *out = v;
    *n = cnt;
    return LP_OK;
}

lp_status lp_registry_get(lp_registry *r, const char *name, int64_t version,
                          lp_registry_entry *out, lp_err *err)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *q = NULL;
    const char *sql =
        version > 0 ? "SELECT " COLS " FROM models WHERE name=? AND version=?"
                    : "SELECT " COLS " FROM models WHERE name=? ORDER BY stage='production' DESC, "
                      "version DESC LIMIT 1";
    if (sqlite3_prepare_v2(r->db, sql, -1, &q, NULL) != SQLITE_OK)
        return db_fail(r, err, "registry get");
    sqlite3_bind_text(q, 1, name, -1, SQLITE_TRANSIENT);
    if (version > 0)
        sqlite3_bind_int64(q, 2, version);
    lp_status st;
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW)
        st = read_row(q, out, err);
    else if (rc == SQLITE_DONE)
        st = version > 0 ? lp_err_set(err, LP_ENOTFOUND, "registry: no model '%s' version %lld",
                                      name, (long long)version)
                         : lp_err_set(err, LP_ENOTFOUND, "registry: no model named '%s'", name);
    else
        st = db_fail(r, err, "registry get");
    sqlite3_finalize(q);
    return st;
}

lp_status lp_registry_promote(lp_registry *r, const char *name, int64_t version, lp_stage stage,
                              lp_err *err)
{
    if ((unsigned)stage > LP_STAGE_ARCHIVED)
        return lp_err_set(err, LP_EINVAL, "registry: invalid stage %d", (int)stage);
    lp_status st = exec(r, "BEGIN IMMEDIATE", err);
    if (st)
        return st;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(r->db, "SELECT 1 FROM models WHERE name=? AND version=?", -1, &q,
                           NULL) != SQLITE_OK) {
        st = db_fail(r, err, "registry promote");
        goto rollback;
    }
    sqlite3_bind_text(q, 1, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 2, version);
    int found = sqlite3_step(q) == SQLITE_ROW;
    sqlite3_finalize(q);
    if (!found) {
        st = lp_err_set(err, LP_ENOTFOUND, "registry: no model '%s' version %lld", name,
                        (long long)version);
        goto rollback;
    }
    if (stage == LP_STAGE_PRODUCTION) {
        if (sqlite3_prepare_v2(r->db,
                               "UPDATE models SET stage='archived' WHERE name=? AND "
                               "stage='production' AND version<>?",
                               -1, &q, NULL) != SQLITE_OK) {
            st = db_fail(r, err, "registry promote");
            goto rollback;
        }
        sqlite3_bind_text(q, 1, name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 2, version);
        int rc = sqlite3_step(q);
        sqlite3_finalize(q);
        if (rc != SQLITE_DONE) {
            st = db_fail(r, err, "registry promote");
            goto rollback;
        }
    }
    if (sqlite3_prepare_v2(r->db, "UPDATE models SET stage=? WHERE name=? AND version=?", -1, &q,
                           NULL) != SQLITE_OK) {
        st = db_fail(r, err, "registry promote");
        goto rollback;
    }
    sqlite3_bind_text(q, 1, lp_stage_name(stage), -1, SQLITE_STATIC);
    sqlite3_bind_text(q, 2, name, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(q, 3, version);
    int rc = sqlite3_step(q);
    sqlite3_finalize(q);
    if (rc != SQLITE_DONE) {
        st = db_fail(r, err, "registry promote");
        goto rollback;
    }
    return exec(r, "COMMIT", err);
rollback:
    sqlite3_exec(r->db, "ROLLBACK", NULL, NULL, NULL);
    return st;
}
