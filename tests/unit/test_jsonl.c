/*
 * test_jsonl.c - the JSONL reader and writer: key union in first-seen order, absent keys and
 * null as missing, type inference over JSON values, the documented errors (nested values,
 * duplicate keys, invalid JSON, not an object), and a write -> read round trip.
 */
#include "lp_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_read_union(void **state)
{
    (void)state;
    const char *text = "{\"a\": 1, \"b\": \"x\", \"when\": \"2024-02-29\"}\r\n"
                       "\n"
                       "{\"b\": \"y\", \"c\": true, \"a\": null, \"when\": \"2024-03-01T00:00:00Z\"}\n"
                       "{\"a\": 2.5, \"c\": false, \"b\": \"NA\"}";
    lp_frame *f = NULL;
    lp_err err;
    if (lp_frame_parse_jsonl(text, strlen(text), "t.jsonl", NULL, &f, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(lp_frame_nrows(f), 3);
    assert_int_equal(lp_frame_ncols(f), 4);
    const char *names[] = {"a", "b", "when", "c"};
    for (size_t j = 0; j < 4; j++)
        assert_string_equal(lp_frame_col(f, j)->name, names[j]);
    lp_column *a = lp_frame_col(f, 0), *b = lp_frame_col(f, 1), *w = lp_frame_col(f, 2),
              *c = lp_frame_col(f, 3);
    assert_int_equal(a->kind, LP_COL_KIND_FLOAT);
    assert_true(a->num[0] == 1 && a->missing[1] && a->num[2] == 2.5);
    assert_int_equal(b->missing[2], 1); /* "NA" is a missing token */
    assert_int_equal(w->kind, LP_COL_KIND_DATETIME);
    assert_true(w->missing[2]);
    assert_true(w->num[1] - w->num[0] == 86400);
    assert_int_equal(c->kind, LP_COL_KIND_BOOL);
    assert_true(c->missing[0] && c->num[1] == 1 && c->num[2] == 0);
    lp_frame_free(f);
}

static void fails(const char *text, lp_status want, const char *needle)
{
    lp_frame *f = NULL;
    lp_err err;
    lp_status st = lp_frame_parse_jsonl(text, strlen(text), "in.jsonl", NULL, &f, &err);
    if (st != want || !strstr(err.msg, needle))
        fail_msg("status %d '%s', wanted %d with '%s'", st, err.msg, want, needle);
    assert_null(f);
}

static void test_errors(void **state)
{
    (void)state;
    fails("{\"a\":1}\n{\"a\":{\"x\":1}}\n", LP_EPARSE, "in.jsonl line 2: key 'a' holds an object");
    fails("{\"a\":[1]}\n", LP_EPARSE, "line 1: key 'a' holds an array");
    fails("{\"a\":1,\"a\":2}\n", LP_EPARSE, "line 1: duplicate key 'a'");
    fails("{\"a\":1}\n{\"a\":\n", LP_EPARSE, "line 2");
    fails("[1,2]\n", LP_EPARSE, "line 1: expected a JSON object");
    fails("", LP_EPARSE, "empty file");
    fails("{\"\":1}\n", LP_EPARSE, "empty key");
    fails("{\"a\":\"\xff\"}\n", LP_EPARSE, "invalid UTF-8");
    /* a line of 200,000 keys whose last repeats the first: each key is found by the index
     * in well under a second (a scan of all the columns per key took minutes) */
    size_t nk = 200000, wl = 0;
    char *wide = malloc(nk * 14 + 16);
    assert_non_null(wide);
    wl += (size_t)sprintf(wide + wl, "{");
    for (size_t j = 0; j + 1 < nk; j++)
        wl += (size_t)sprintf(wide + wl, "\"k%zu\":1,", j);
    wl += (size_t)sprintf(wide + wl, "\"k0\":2}\n");
    uint64_t t0 = lp_time_ns();
    fails(wide, LP_EPARSE, "line 1: duplicate key 'k0'");
    assert_true(lp_time_ns() - t0 < 20ull * 1000000000ull); /* generous for ASan builds */
    free(wide);
    /* 5,000 lines of one new key each: a 25-million-cell table for 5,000 values is refused */
    char *sparse = malloc(5000 * 24 + 1);
    assert_non_null(sparse);
    wl = 0;
    for (size_t j = 0; j < 5000; j++)
        wl += (size_t)sprintf(sparse + wl, "{\"k%zu\":1}\n", j);
    fails(sparse, LP_ETOOBIG, "5000 lines with 5000 distinct keys (columns) but 5000 values");
    free(sparse);
    lp_csv_opts o = lp_csv_opts_default();
    o.types = "a:int";
    lp_frame *f = NULL;
    lp_err err;
    const char *t = "{\"a\":1}\n{\"a\":\"seven\"}\n";
    assert_int_equal(lp_frame_parse_jsonl(t, strlen(t), "in.jsonl", &o, &f, &err), LP_EPARSE);
    assert_non_null(strstr(err.msg, "in.jsonl line 2: column 'a' is 'seven', not an integer"));
}

static void test_roundtrip(void **state)
{
    (void)state;
    lp_frame *f = lp_frame_new();
    double x[4] = {1.25, NAN, -7, 3};
    double flag[4] = {1, 0, NAN, 1};
    const char *s[4] = {"tab\there", "quote \" and \\", NULL, "ünïcode"};
    assert_int_equal(lp_frame_add_numeric(f, "x", LP_COL_KIND_FLOAT, x, NULL, 4, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "flag", LP_COL_KIND_BOOL, flag, NULL, 4, NULL),
                     LP_OK);
    assert_int_equal(lp_frame_add_text(f, "s", s, 4, NULL), LP_OK);
    char *path = lp_test_tmpfile("rt.jsonl");
    lp_err err;
    assert_int_equal(lp_frame_write(f, path, &err), LP_OK);
    lp_frame *g = NULL;
    if (lp_frame_read(path, NULL, &g, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(lp_frame_nrows(g), 4);
    assert_int_equal(lp_frame_col(g, 1)->kind, LP_COL_KIND_BOOL);
    for (size_t j = 0; j < 3; j++)
        for (size_t i = 0; i < 4; i++) {
            char b1[64], b2[64];
            lp_column *a = lp_frame_col(f, j), *b = lp_frame_col(g, j);
            assert_int_equal(a->missing[i], b->missing[i]);
            assert_string_equal(lp_column_cell_str(a, i, b1, sizeof b1),
                                lp_column_cell_str(b, i, b2, sizeof b2));
        }
    lp_frame_free(g);
    lp_frame_free(f);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_union),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
