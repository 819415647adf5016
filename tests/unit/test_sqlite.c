/*
 * test_sqlite.c - frames into SQLite and back: table created from the schema, appends in one
 * transaction, hostile table/column names stay identifiers (no SQL injection), a failing
 * append leaves the table unchanged, WAL mode, and query results read back with inference.
 */
#include "lp_test.h"

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

static lp_frame *sample(void)
{
    lp_frame *f = NULL;
    const char *csv = "id,amount,when,city,ok\n"
                      "1,2.5,2024-01-01T00:00:00Z,Paris,true\n"
                      "2,NA,2024-01-02T12:30:00Z,Oslo,false\n"
                      "3,-1e3,,Paris,true\n";
    lp_err err;
    if (lp_frame_parse_csv(csv, strlen(csv), "s.csv", NULL, &f, &err))
        fail_msg("%s", err.msg);
    return f;
}

static void test_roundtrip(void **state)
{
    (void)state;
    char *db = lp_test_tmpfile("rt.db");
    lp_frame *f = sample();
    lp_err err;
    size_t n = 0;
    assert_int_equal(lp_frame_to_sqlite(f, db, "tx", &n, &err), LP_OK);
    assert_int_equal(n, 3);
    assert_int_equal(lp_frame_to_sqlite(f, db, "tx", &n, &err), LP_OK);
    lp_frame *g = NULL;
    if (lp_frame_from_sql(db, "SELECT * FROM tx ORDER BY rowid;", NULL, &g, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(lp_frame_nrows(g), 6);
    assert_int_equal(lp_frame_col(g, 0)->kind, LP_COL_KIND_INTEGER);
    assert_int_equal(lp_frame_col(g, 1)->kind, LP_COL_KIND_FLOAT);
    assert_int_equal(lp_frame_col(g, 2)->kind, LP_COL_KIND_DATETIME);
    assert_int_equal(lp_frame_col(g, 4)->kind, LP_COL_KIND_INTEGER); /* bools stored as 0/1 */
    for (size_t j = 0; j < 4; j++)
        for (size_t i = 0; i < 6; i++) {
            char b1[64], b2[64];
            lp_column *a = lp_frame_col(f, j), *b = lp_frame_col(g, j);
            assert_int_equal(a->missing[i % 3], b->missing[i]);
            assert_string_equal(lp_column_cell_str(a, i % 3, b1, sizeof b1),
                                lp_column_cell_str(b, i, b2, sizeof b2));
        }
    lp_frame_free(g);

    /* WAL was turned on */
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(h, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(h);

    /* errors: missing column, bad query, writes refused, several statements */
    lp_frame *h2 = lp_frame_new();
    double x[1] = {1};
    assert_int_equal(lp_frame_add_numeric(h2, "other", LP_COL_KIND_FLOAT, x, NULL, 1, NULL),
                     LP_OK);
    assert_int_equal(lp_frame_to_sqlite(h2, db, "tx", &n, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "no column 'other'"));
    assert_int_equal(lp_frame_from_sql(db, "SELEKT 1", NULL, &g, &err), LP_EINVAL);
    assert_int_equal(lp_frame_from_sql(db, "DELETE FROM tx", NULL, &g, &err), LP_EINVAL);
    assert_int_equal(lp_frame_from_sql(db, "SELECT 1; DROP TABLE tx", NULL, &g, &err),
                     LP_EINVAL);
    assert_int_equal(lp_frame_from_sql(db, "SELECT id, id FROM tx", NULL, &g, &err), LP_EINVAL);
    assert_int_equal(lp_frame_from_sql("/nonexistent/x.db", "SELECT 1", NULL, &g, &err),
                     LP_ENOTFOUND);
    assert_int_equal(lp_frame_from_sql(db, "SELECT count(*) AS n FROM tx", NULL, &g, &err),
                     LP_OK);
    assert_true(lp_frame_col(g, 0)->num[0] == 6);
    lp_frame_free(g);
    assert_int_equal(lp_frame_from_sql(db, "SELECT * FROM tx WHERE id > 99", NULL, &g, &err),
                     LP_OK);
    assert_int_equal(lp_frame_nrows(g), 0);
    assert_int_equal(lp_frame_ncols(g), 5);
    lp_frame_free(g);
    lp_frame_free(h2);
    lp_frame_free(f);
    free(db);
}

static void test_hostile_names(void **state)
{
    (void)state;
    char *db = lp_test_tmpfile("evil.db");
    lp_frame *f = lp_frame_new();
    double x[2] = {1, 2};
    const char *s[2] = {"'); DROP TABLE victim; --", "ok"};
    assert_int_equal(lp_frame_add_numeric(f, "a\"; DROP TABLE victim; --", LP_COL_KIND_INTEGER,
                                          x, NULL, 2, NULL),
                     LP_OK);
    assert_int_equal(lp_frame_add_text(f, "b c", s, 2, NULL), LP_OK);
    lp_err err;
    lp_frame *v = lp_frame_new();
    assert_int_equal(lp_frame_add_numeric(v, "k", LP_COL_KIND_INTEGER, x, NULL, 2, NULL), LP_OK);
    assert_int_equal(lp_frame_to_sqlite(v, db, "victim", NULL, &err), LP_OK);
    size_t n;
    if (lp_frame_to_sqlite(f, db, "t\"; DROP TABLE victim; --", &n, &err))
        fail_msg("%s", err.msg);
    lp_frame *g = NULL;
    assert_int_equal(lp_frame_from_sql(db, "SELECT count(*) AS n FROM victim", NULL, &g, &err),
                     LP_OK);
    assert_true(lp_frame_col(g, 0)->num[0] == 2);
    lp_frame_free(g);
    if (lp_frame_from_sql(db, "SELECT * FROM \"t\"\"; DROP TABLE victim; --\"", NULL, &g, &err))
        fail_msg("%s", err.msg);
    assert_string_equal(lp_frame_col(g, 0)->name, "a\"; DROP TABLE victim; --");
    assert_string_equal(lp_frame_col(g, 1)->text[0], "'); DROP TABLE victim; --");
    lp_frame_free(g);

    /* a failing append (NOT NULL violated on row 2) leaves nothing behind */
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    assert_int_equal(sqlite3_exec(h, "CREATE TABLE strict_t (k INTEGER NOT NULL)", NULL, NULL,
                                  NULL),
                     SQLITE_OK);
    sqlite3_close(h);
    double y[3] = {1, NAN, 3};
    lp_frame *bad = lp_frame_new();
    assert_int_equal(lp_frame_add_numeric(bad, "k", LP_COL_KIND_INTEGER, y, NULL, 3, NULL), LP_OK);
    assert_int_equal(lp_frame_to_sqlite(bad, db, "strict_t", &n, &err), LP_EDB);
    assert_non_null(strstr(err.msg, "row 2"));
    assert_int_equal(lp_frame_from_sql(db, "SELECT count(*) AS n FROM strict_t", NULL, &g, &err),
                     LP_OK);
    assert_true(lp_frame_col(g, 0)->num[0] == 0);
    lp_frame_free(g);
    lp_frame_free(bad);
    lp_frame_free(v);
    lp_frame_free(f);
    free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_hostile_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
