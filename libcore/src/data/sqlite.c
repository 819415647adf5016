/*
 * sqlite.c - frames to and from SQLite: lp_frame_to_sqlite appends a frame to a table in one
 * transaction (creating the table from the frame's schema), lp_frame_from_sql reads a query
 * result back as a frame with CSV-style type inference.
 *
 * Identifiers are always double-quoted with embedded quotes doubled, and values are bound to a
 * prepared statement, so table and column names with odd characters cannot inject SQL. The
 * writer turns on WAL and waits up to 5 s for a busy database. The reader opens the database
 * read-only and accepts exactly one statement that does not write.
 */
#include "data/data_internal.h"

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

static void put_ident(lp_buf *b, const char *s)
{
    lp_buf_u8(b, '"');
    for (; *s; s++) {
        if (*s == '"')
            lp_buf_u8(b, '"');
        lp_buf_u8(b, (uint8_t)*s);
    }
    lp_buf_u8(b, '"');
}

static lp_status db_fail(sqlite3 *db, const char *path, const char *what, lp_err *err)
{
    return lp_err_set(err, LP_EDB, "%s: %s: %s", path, what, db ? sqlite3_errmsg(db) : "failed");
}

static const char *sql_type(const lp_column *c)
{
    switch (c->kind) {
    case LP_COL_KIND_INTEGER:
    case LP_COL_KIND_BOOL:
        return "INTEGER";
    case LP_COL_KIND_FLOAT:
        return "REAL";
    default:
        return "TEXT";
    }
}

/* Names of table's columns into *names (NULL-terminated, caller frees each and the array);
 * *n = 0 when the table does not exist. */
static lp_status table_columns(sqlite3 *db, const char *path, const char *table, char ***names,
                               size_t *n, lp_err *err)
{
    *names = NULL;
    *n = 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info(?1)", -1, &st, NULL) !=
        SQLITE_OK)
        return db_fail(db, path, "reading the table schema", err);
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    size_t cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n + 1 >= cap) {
            cap = cap ? 2 * cap : 16;
            char **p = lp_reallocarray(*names, cap, sizeof *p);
            if (!p)
                break;
            *names = p;
        }
        (*names)[*n] = lp_strdup((const char *)sqlite3_column_text(st, 0));
        if (!(*names)[*n])
            break;
        (*n)++;
        (*names)[*n] = NULL;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        for (size_t k = 0; k < *n; k++)
            free((*names)[k]);
        free(*names);
        *names = NULL;
        *n = 0;
        return rc == SQLITE_ROW ? lp_err_set(err, LP_ENOMEM, "%s: out of memory", path)
                                : db_fail(db, path, "reading the table schema", err);
    }
    return LP_OK;
}

static int bind_cell(sqlite3_stmt *st, int k, const lp_column *c, size_t i, char *buf,
                     size_t cap)
{
    if (c->missing[i])
        return sqlite3_bind_null(st, k);
    if (c->type == LP_COL_TYPE_NUMERIC && c->kind != LP_COL_KIND_DATETIME) {
        double v = c->num[i];
        if (!isfinite(v))
            return isnan(v) ? sqlite3_bind_null(st, k) : sqlite3_bind_double(st, k, v);
        if (c->kind != LP_COL_KIND_FLOAT && v == floor(v) && fabs(v) < 9.2e18)
            return sqlite3_bind_int64(st, k, (sqlite3_int64)v);
        return sqlite3_bind_double(st, k, v);
    }
    const char *s = lp_column_cell_str(c, i, buf, cap);
    return sqlite3_bind_text(st, k, s, -1, SQLITE_TRANSIENT);
}

lp_status lp_frame_to_sqlite(const lp_frame *f, const char *db_path, const char *table,
                             size_t *appended, lp_err *err)
{
    if (appended)
        *appended = 0;
    size_t nc = lp_frame_ncols(f), nr = lp_frame_nrows(f);
    if (!table || !table[0])
        return lp_err_set(err, LP_EINVAL, "%s: empty table name", db_path);
    if (nc == 0)
        return lp_err_set(err, LP_EINVAL, "%s: frame has no columns to store in '%s'", db_path,
                          table);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        lp_status s = db_fail(db, db_path, "cannot open database", err);
        sqlite3_close(db);
        return s;
    }
    sqlite3_busy_timeout(db, 5000);
    lp_status st = LP_OK;
    char **have = NULL;
    size_t nhave = 0;
    lp_buf sql;
    lp_buf_init(&sql);
    sqlite3_stmt *ins = NULL;
    bool in_tx = false;
    if (sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) != SQLITE_OK)
        st = db_fail(db, db_path, "enabling WAL", err);
    if (!st && sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        st = db_fail(db, db_path, "starting a transaction", err);
    in_tx = !st;
    if (!st)
        st = table_columns(db, db_path, table, &have, &nhave, err);
    if (!st && nhave == 0) {
        lp_buf_printf(&sql, "CREATE TABLE ");
        put_ident(&sql, table);
        lp_buf_printf(&sql, " (");
        for (size_t j = 0; j < nc; j++) {
            const lp_column *c = lp_frame_col(f, j);
            if (j)
                lp_buf_printf(&sql, ", ");
            put_ident(&sql, c->name);
            lp_buf_printf(&sql, " %s", sql_type(c));
        }
        lp_buf_put(&sql, ")", 2); /* with the terminator */
        if (sql.failed)
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", db_path);
        else if (sqlite3_exec(db, (const char *)sql.data, NULL, NULL, NULL) != SQLITE_OK)
            st = db_fail(db, db_path, "creating the table", err);
    } else if (!st) {
        for (size_t j = 0; j < nc && !st; j++) {
            const char *name = lp_frame_col(f, j)->name;
            bool found = false;
            for (size_t k = 0; k < nhave && !found; k++)
                found = sqlite3_stricmp(have[k], name) == 0;
            if (!found)
                st = lp_err_set(err, LP_EINVAL, "%s: table '%s' has no column '%s'", db_path,
                                table, name);
        }
    }
    if (!st) {
        sql.len = 0;
        lp_buf_printf(&sql, "INSERT INTO ");
        put_ident(&sql, table);
        lp_buf_printf(&sql, " (");
        for (size_t j = 0; j < nc; j++) {
            if (j)
                lp_buf_printf(&sql, ", ");
            put_ident(&sql, lp_frame_col(f, j)->name);
        }
        lp_buf_printf(&sql, ") VALUES (");
        for (size_t j = 0; j < nc; j++)
            lp_buf_printf(&sql, j ? ", ?" : "?");
        lp_buf_put(&sql, ")", 2);
        if (sql.failed)
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", db_path);
        else if (sqlite3_prepare_v2(db, (const char *)sql.data, -1, &ins, NULL) != SQLITE_OK)
            st = db_fail(db, db_path, "preparing the insert", err);
    }
    char buf[64];
    for (size_t i = 0; i < nr && !st; i++) {
        for (size_t j = 0; j < nc && !st; j++)
            if (bind_cell(ins, (int)j + 1, lp_frame_col(f, j), i, buf, sizeof buf) != SQLITE_OK)
                st = db_fail(db, db_path, "binding a value", err);
        if (!st && sqlite3_step(ins) != SQLITE_DONE)
            st = lp_err_set(err, LP_EDB, "%s: inserting row %zu into '%s': %s", db_path, i + 1,
                            table, sqlite3_errmsg(db));
        sqlite3_reset(ins);
    }
    sqlite3_finalize(ins);
    if (!st && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        st = db_fail(db, db_path, "committing", err);
    else if (st && in_tx)
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    for (size_t k = 0; k < nhave; k++)
        free(have[k]);
    free(have);
    lp_buf_free(&sql);
    sqlite3_close(db);
    if (!st && appended)
        *appended = nr;
    return lp_err_oneline(err, st);
}

lp_status lp_frame_from_sql(const char *db_path, const char *sql, const lp_csv_opts *opts,
                            lp_frame **out, lp_err *err)
{
    *out = NULL;
    lp_csv_opts defaults = lp_csv_opts_default();
    if (!opts)
        opts = &defaults;
    lp_status st = lp_csv_opts_check(opts, err);
    if (st)
        return st;
    if (!sql)
        return lp_err_set(err, LP_EINVAL, "%s: no query", db_path);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        lp_status s = lp_err_set(err, LP_ENOTFOUND, "%s: cannot open database: %s", db_path,
                                 db ? sqlite3_errmsg(db) : "failed");
        sqlite3_close(db);
        return s;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *q = NULL;
    const char *tail = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &q, &tail) != SQLITE_OK) {
        st = lp_err_set(err, LP_EINVAL, "%s: bad query: %s", db_path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return st;
    }
    while (tail && (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == '\r' ||
                    *tail == ';'))
        tail++;
    if (!q)
        st = lp_err_set(err, LP_EINVAL, "%s: empty query", db_path);
    else if (tail && *tail)
        st = lp_err_set(err, LP_EINVAL, "%s: give one SQL statement (more follows '%.20s')",
                        db_path, tail);
    else if (!sqlite3_stmt_readonly(q))
        st = lp_err_set(err, LP_EINVAL, "%s: the query must not modify the database", db_path);
    lp_cellstore s;
    lp_cellstore_init(&s);
    int ncols = q ? sqlite3_column_count(q) : 0;
    for (int j = 0; j < ncols && !st; j++) {
        const char *name = sqlite3_column_name(q, j);
        if (!name || !name[0]) {
            st = lp_err_set(err, LP_EINVAL, "%s: query column %d has no name", db_path, j + 1);
            break;
        }
        for (int k = 0; k < j && !st; k++)
            if (strcmp(s.cols[k].name, name) == 0)
                st = lp_err_set(err, LP_EINVAL,
                                "%s: the query returns column '%s' twice (rename one with AS)",
                                db_path, name);
        if (!st && lp_cellstore_col(&s, name) < 0)
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", db_path);
    }
    int rc = SQLITE_DONE;
    char buf[64];
    while (!st && (!opts->max_rows || s.nrows < opts->max_rows) &&
           (rc = sqlite3_step(q)) == SQLITE_ROW) {
        if (!lp_cellstore_row(&s, s.nrows + 1)) {
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", db_path);
            break;
        }
        for (int j = 0; j < ncols && !st; j++) {
            const char *v = "";
            size_t len = 0;
            uint8_t flags = 0;
            switch (sqlite3_column_type(q, j)) {
            case SQLITE_NULL:
                flags = LP_CELL_NULL;
                break;
            case SQLITE_INTEGER:
                snprintf(buf, sizeof buf, "%lld", (long long)sqlite3_column_int64(q, j));
                v = buf;
                len = strlen(buf);
                break;
            case SQLITE_FLOAT:
                snprintf(buf, sizeof buf, "%.17g", sqlite3_column_double(q, j));
                v = buf;
                len = strlen(buf);
                break;
            case SQLITE_TEXT:
                v = (const char *)sqlite3_column_text(q, j);
                len = (size_t)sqlite3_column_bytes(q, j);
                flags = LP_CELL_TOKENS;
                if (!v)
                    st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", db_path);
                break;
            default:
                st = lp_err_set(err, LP_EUNSUPPORTED, "%s: row %zu, column '%s' is a BLOB",
                                db_path, s.nrows, s.cols[j].name);
                break;
            }
            if (!st && !lp_cellstore_put(&s, (size_t)j, v, len, flags))
                st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", db_path);
        }
    }
    if (!st && rc != SQLITE_DONE && rc != SQLITE_ROW)
        st = lp_err_set(err, LP_EDB, "%s: running the query: %s", db_path, sqlite3_errmsg(db));
    sqlite3_finalize(q);
    sqlite3_close(db);
    if (!st)
        st = lp_cellstore_frame(&s, opts, db_path, "row", out, err);
    lp_cellstore_free(&s);
    return lp_err_oneline(err, st);
}
