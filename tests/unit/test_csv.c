/*
 * test_csv.c - the CSV/TSV reader and writer: quoting, CRLF, BOM, delimiter sniffing, type
 * inference and overrides, missing tokens, every documented bad-input error (message names
 * file, line and column), gzip input, and write -> read round trips.
 */
#include "lp_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static lp_frame *parse(const char *text, const lp_csv_opts *o)
{
    lp_frame *f = NULL;
    lp_err err;
    lp_status st = lp_frame_parse_csv(text, strlen(text), "t.csv", o, &f, &err);
    if (st)
        fail_msg("parse failed: %s", lp_err_text(&err));
    return f;
}

/* Parse expecting failure with status want and every needle in the message. */
static void parse_fails(const char *text, size_t len, const lp_csv_opts *o, lp_status want,
                        const char *n1, const char *n2)
{
    lp_frame *f = NULL;
    lp_err err;
    lp_err_clear(&err);
    lp_status st = lp_frame_parse_csv(text, len, "data.csv", o, &f, &err);
    if (st != want)
        fail_msg("status %d (%s), wanted %d", st, err.msg, want);
    assert_null(f);
    assert_null(strchr(err.msg, '\n'));
    if (n1 && !strstr(err.msg, n1))
        fail_msg("'%s' not in '%s'", n1, err.msg);
    if (n2 && !strstr(err.msg, n2))
        fail_msg("'%s' not in '%s'", n2, err.msg);
}

static void test_quoting_crlf_bom(void **state)
{
    (void)state;
    const char *text = "\xEF\xBB\xBFid,name,note\r\n"
                       "1,\"Smith, J\",\"said \"\"hi\"\"\"\r\n"
                       "2,plain,\"two\nlines\"\r\n"
                       "3,x,\r\n";
    lp_frame *f = parse(text, NULL);
    assert_int_equal(lp_frame_nrows(f), 3);
    assert_int_equal(lp_frame_ncols(f), 3);
    assert_string_equal(lp_frame_col(f, 0)->name, "id");
    lp_column *name = lp_frame_col(f, 1), *note = lp_frame_col(f, 2);
    char buf[64];
    assert_string_equal(lp_column_cell_str(name, 0, buf, sizeof buf), "Smith, J");
    assert_string_equal(lp_column_cell_str(note, 0, buf, sizeof buf), "said \"hi\"");
    assert_string_equal(lp_column_cell_str(note, 1, buf, sizeof buf), "two\nlines");
    assert_int_equal(note->missing[2], 1);
    assert_int_equal(lp_frame_col(f, 0)->kind, LP_COL_KIND_INTEGER);
    assert_true(lp_frame_col(f, 0)->num[2] == 3);
    lp_frame_free(f);
}

static void test_sniff_delimiters(void **state)
{
    (void)state;
    const char *texts[] = {"a\tb\tc\n1\t2\t3\n", "a;b;c\n1;2;3\n", "a|b|c\n1|2|3\n",
                           "a,b,c\n1,2,3"};
    for (int k = 0; k < 4; k++) {
        lp_frame *f = parse(texts[k], NULL);
        assert_int_equal(lp_frame_ncols(f), 3);
        assert_int_equal(lp_frame_nrows(f), 1);
        assert_true(lp_frame_col(f, 2)->num[0] == 3);
        lp_frame_free(f);
    }
    /* a given delimiter wins over sniffing */
    lp_csv_opts o = lp_csv_opts_default();
    o.delim = ';';
    lp_frame *f = parse("a,b;c\n1,2;3\n", &o);
    assert_int_equal(lp_frame_ncols(f), 2);
    assert_string_equal(lp_frame_col(f, 0)->name, "a,b");
    lp_frame_free(f);
}

/* MovieLens .dat: "::" between fields, a single ':' inside one; headerless too */
static void test_double_colon(void **state)
{
    (void)state;
    lp_frame *f = parse("user::item::rating::note\n1::1193::5::a:b\n2::661::3::\"x::y\"\n", NULL);
    assert_int_equal(lp_frame_ncols(f), 4);
    assert_int_equal(lp_frame_nrows(f), 2);
    assert_string_equal(lp_frame_col(f, 3)->name, "note");
    assert_true(lp_frame_col(f, 1)->num[0] == 1193);
    char buf[32];
    assert_string_equal(lp_column_cell_str(lp_frame_col(f, 3), 0, buf, sizeof buf), "a:b");
    assert_string_equal(lp_column_cell_str(lp_frame_col(f, 3), 1, buf, sizeof buf), "x::y");
    lp_frame_free(f);
    lp_csv_opts o = lp_csv_opts_default();
    o.header = false;
    f = parse("1::1193::5::978300760\n1::661::3::978302109\n", &o);
    assert_int_equal(lp_frame_ncols(f), 4);
    assert_int_equal(lp_frame_nrows(f), 2);
    assert_true(lp_frame_col(f, 3)->num[1] == 978302109);
    lp_frame_free(f);
    /* a stray quote inside a field does not hide the separators after it */
    f = parse("a::b\n5\" screen::x\n1::y\n", NULL);
    assert_int_equal(lp_frame_nrows(f), 2);
    assert_string_equal(lp_column_cell_str(lp_frame_col(f, 0), 0, buf, sizeof buf), "5\" screen");
    assert_string_equal(lp_column_cell_str(lp_frame_col(f, 1), 1, buf, sizeof buf), "y");
    lp_frame_free(f);
    /* a comma on the first line keeps ',' (a time "12::30" is data) */
    f = parse("a,b\n1,12::30\n", NULL);
    assert_int_equal(lp_frame_ncols(f), 2);
    lp_frame_free(f);
    /* one column whose name holds "::" (its values do not) stays one column */
    f = parse("ns::name\nx\ny\n", NULL);
    assert_int_equal(lp_frame_ncols(f), 1);
    assert_string_equal(lp_frame_col(f, 0)->name, "ns::name");
    lp_frame_free(f);
    /* ragged "::" rows name the line */
    const char *ragged = "a::b\n1::2\n1::2::3\n";
    parse_fails(ragged, strlen(ragged), NULL, LP_EPARSE, "data.csv line 3: 3 fields", NULL);
}

/* TAB-separated data: a name such as '"weird al" yankovic' is read as written; a quoted
 * field holding a TAB is still quoted, and a comma-separated file keeps the strict error */
static void test_tsv_literal_quotes(void **state)
{
    (void)state;
    lp_frame *f = parse("a\tb\n\"weird al\" yankovic\t2\n\"q\tz\"\t3\n\"plain\"\t4\n", NULL);
    assert_int_equal(lp_frame_nrows(f), 3);
    char buf[32];
    const lp_column *a = lp_frame_col(f, 0);
    assert_string_equal(lp_column_cell_str(a, 0, buf, sizeof buf), "\"weird al\" yankovic");
    assert_string_equal(lp_column_cell_str(a, 1, buf, sizeof buf), "q\tz");
    assert_string_equal(lp_column_cell_str(a, 2, buf, sizeof buf), "plain");
    assert_true(lp_frame_col(f, 1)->num[2] == 4);
    lp_frame_free(f);
    const char *tsv_bad = "a\tb\n\"x\ty\"z\t2\n";
    parse_fails(tsv_bad, strlen(tsv_bad), NULL, LP_EPARSE, "line 2, column 1 ('a')",
                "after a closing quote");
}

/* The header sniff: names over numbers vote "names"; numbers over numbers, or strings of
 * one length over strings of that length, vote "data" */
static void test_first_row_is_data(void **state)
{
    (void)state;
    lp_csv_opts o = lp_csv_opts_default();
    o.header = false;
    struct {
        const char *text;
        bool data;
    } cases[] = {
        {"user_id,item_id,rating\n1,2,5\n3,4,1\n", false},
        {"1,2,5\n3,4,1\n5,6,2\n", true},
        {"u1,i2,5\nu3,i4,1\nu25,i6,2\n", true},
        {"userID\tartistID\tweight\n2\t51\t13883\n2\t52\t11690\n", false},
        /* Last.fm 360k: hashes and plays, no header */
        {"00000c28\tbetty blue\t2137\n00001a11\tdie arzte\t1099\n0000be19\tsigur ros\t11\n",
         true},
        {"id,name\nab12,x\ncd34,y\n", false},
        {"row,a\n", false},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        lp_frame *f = parse(cases[k].text, &o);
        if (lp_frame_first_row_is_data(f) != cases[k].data)
            fail_msg("case %zu ('%s'): expected %d", k, cases[k].text, cases[k].data);
        lp_frame_free(f);
    }
}

/* A temporary file holding text; the caller frees the path. */
static char *tmp_text(const char *name, const char *text)
{
    char *path = lp_test_tmpfile(name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    return path;
}

/* lp_frame_read_sniff_header: a wanted name missing from a headerless file reads it again
 * with c1..cN; a file with names keeps them (and its error when a name is missing) */
static void test_read_sniff_header(void **state)
{
    (void)state;
    char *path = tmp_text("ratings.dat",
                          "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n");
    const char *want[] = {"c2"};
    lp_frame *f = NULL;
    bool hl = false;
    lp_err err;
    assert_int_equal(lp_frame_read_sniff_header(path, NULL, want, 1, &f, &hl, &err), LP_OK);
    assert_true(hl);
    assert_int_equal(lp_frame_nrows(f), 3);
    assert_true(lp_frame_col(f, 1)->num[0] == 1193);
    lp_frame_free(f);
    /* nothing missing: the first line stays the header (names "1", "1193", ...) */
    assert_int_equal(lp_frame_read_sniff_header(path, NULL, NULL, 0, &f, &hl, &err), LP_OK);
    assert_false(hl);
    assert_int_equal(lp_frame_nrows(f), 2);
    lp_frame_free(f);
    free(path);
    path = tmp_text("named.csv", "a,b\n1,2\n3,4\n");
    const char *want2[] = {"x"};
    assert_int_equal(lp_frame_read_sniff_header(path, NULL, want2, 1, &f, &hl, &err), LP_OK);
    assert_false(hl);
    assert_true(lp_frame_find(f, "x") < 0);
    lp_frame_free(f);
    /* a positional name the first line lacks reads the file by position */
    const char *want3[] = {"a", "c2"};
    assert_int_equal(lp_frame_read_sniff_header(path, NULL, want3, 2, &f, &hl, &err), LP_OK);
    assert_true(hl);
    assert_int_equal(lp_frame_nrows(f), 3);
    lp_frame_free(f);
    const char *want4[] = {"c3"}; /* no third column */
    assert_int_equal(lp_frame_read_sniff_header(path, NULL, want4, 1, &f, &hl, &err), LP_OK);
    assert_false(hl);
    lp_frame_free(f);
    free(path);
    /* a header that fails (a duplicate name) keeps its error when nothing is positional */
    path = tmp_text("dup.csv", "name,age,name\nalice,30,bob\ncarol,41,dan\n");
    assert_int_equal(lp_frame_read_sniff_header(path, NULL, want2, 1, &f, &hl, &err), LP_EPARSE);
    assert_non_null(strstr(err.msg, "duplicate column name"));
    assert_null(f);
    free(path);
}

/* literal_cols: a missing token in those columns is a value, an empty cell still missing; and
 * lp_frame_reread_label turns a string label's tokens into class names, leaving a numeric
 * label's "NA" missing */
static void test_literal_label(void **state)
{
    (void)state;
    lp_csv_opts o = lp_csv_opts_default();
    o.literal_cols = "y";
    lp_frame *f = parse("x,y\nNA,None\n2,\n3,flu\n", &o);
    const lp_column *x = lp_frame_col(f, 0), *y = lp_frame_col(f, 1);
    assert_true(x->missing[0]);
    assert_false(y->missing[0]);
    assert_true(y->missing[1]);
    char buf[16];
    assert_string_equal(lp_column_cell_str(y, 0, buf, sizeof buf), "None");
    lp_frame_free(f);

    char *path = tmp_text("lab.csv", "x,y,z\n1,None,NA\n2,flu,3\n3,,4\n");
    lp_err err;
    assert_int_equal(lp_frame_read(path, NULL, &f, &err), LP_OK);
    assert_int_equal(lp_column_count_missing(lp_frame_col(f, 1)), 2);
    assert_int_equal(lp_frame_reread_label(path, NULL, "y", &f, &err), LP_OK);
    assert_int_equal(lp_column_count_missing(lp_frame_col(f, 1)), 1);
    assert_string_equal(lp_column_cell_str(lp_frame_col(f, 1), 0, buf, sizeof buf), "None");
    /* z is numeric: its NA stays missing */
    assert_int_equal(lp_frame_reread_label(path, NULL, "z", &f, &err), LP_OK);
    assert_int_equal(lp_frame_col(f, 2)->type, LP_COL_TYPE_NUMERIC);
    assert_true(lp_frame_col(f, 2)->missing[0]);
    lp_frame_free(f);
    free(path);
    /* JSONL: the string "None" becomes a class, a null stays missing */
    path = tmp_text("lab.jsonl", "{\"y\":\"None\"}\n{\"y\":\"flu\"}\n{\"y\":null}\n");
    assert_int_equal(lp_frame_read(path, NULL, &f, &err), LP_OK);
    assert_int_equal(lp_frame_reread_label(path, NULL, "y", &f, &err), LP_OK);
    assert_false(lp_frame_col(f, 0)->missing[0]);
    assert_true(lp_frame_col(f, 0)->missing[2]);
    lp_frame_free(f);
    free(path);
}

static void test_inference(void **state)
{
    (void)state;
    lp_buf b;
    lp_buf_init(&b);
    lp_buf_printf(&b, "i,f,flag,zo,when,color,note,empty\n");
    for (int r = 0; r < 40; r++)
        lp_buf_printf(&b, "%d,%d.25,%s,%d,2024-01-%02dT10:00:00Z,%s,free text number %d,\n",
                      r - 20, r, r % 2 ? "true" : "False", r % 2, r % 28 + 1,
                      r % 3 ? "red" : "blue", r);
    lp_buf_printf(&b, "NA,,N/A,?,null,None,NaN,\n");
    lp_buf_u8(&b, 0);
    lp_frame *f = parse((const char *)b.data, NULL);
    lp_buf_free(&b);
    assert_int_equal(lp_frame_nrows(f), 41);
    static const lp_col_kind want[] = {LP_COL_KIND_INTEGER, LP_COL_KIND_FLOAT,
                                       LP_COL_KIND_BOOL,    LP_COL_KIND_INTEGER,
                                       LP_COL_KIND_DATETIME, LP_COL_KIND_CATEGORICAL,
                                       LP_COL_KIND_TEXT,    LP_COL_KIND_TEXT};
    for (size_t j = 0; j < 8; j++) {
        lp_column *c = lp_frame_col(f, j);
        if (c->kind != want[j])
            fail_msg("column %s is %s, expected %s", c->name, lp_col_kind_name(c->kind),
                     lp_col_kind_name(want[j]));
        assert_int_equal(c->missing[40], 1);
    }
    assert_true(lp_frame_col(f, 0)->num[0] == -20);
    assert_true(lp_frame_col(f, 1)->num[3] == 3.25);
    assert_true(lp_frame_col(f, 2)->num[1] == 1 && lp_frame_col(f, 2)->num[0] == 0);
    assert_true(lp_frame_col(f, 4)->num[0] == 1704103200.0); /* 2024-01-01T10:00:00Z */
    assert_int_equal(lp_frame_col(f, 5)->n_dict, 2);
    assert_int_equal(lp_column_count_missing(lp_frame_col(f, 7)), 41);
    lp_frame_free(f);
}

static void test_fallback_to_strings(void **state)
{
    (void)state;
    /* numbers for many rows, then a word: the column must become strings, keeping every row */
    lp_buf b;
    lp_buf_init(&b);
    lp_buf_printf(&b, "code,n\n");
    for (int r = 0; r < 30; r++)
        lp_buf_printf(&b, "%d,%d\n", r % 3, r);
    lp_buf_printf(&b, "\"x\"\"y\",30\n");
    lp_buf_u8(&b, 0);
    lp_frame *f = parse((const char *)b.data, NULL);
    lp_buf_free(&b);
    lp_column *c = lp_frame_col(f, 0);
    assert_int_equal(c->kind, LP_COL_KIND_CATEGORICAL);
    assert_int_equal(c->n, 31);
    char buf[64];
    assert_string_equal(lp_column_cell_str(c, 4, buf, sizeof buf), "1");
    assert_string_equal(lp_column_cell_str(c, 30, buf, sizeof buf), "x\"y");
    assert_int_equal(c->n_dict, 4);
    assert_int_equal(lp_frame_col(f, 1)->kind, LP_COL_KIND_INTEGER);
    /* a categorical read from a file can still take new values through frame.c */
    uint32_t code;
    assert_int_equal(lp_column_dict_add(c, "new", &code, NULL), LP_OK);
    assert_int_equal(code, 4);
    assert_int_equal(lp_column_dict_find(c, "x\"y"), 3);
    lp_frame_free(f);
}

static void test_overrides_and_missing(void **state)
{
    (void)state;
    lp_csv_opts o = lp_csv_opts_default();
    o.types = "zo:bool,id:categorical,amount:float";
    o.missing = "-,missing";
    lp_frame *f = parse("id,zo,amount,s\n1,0,2.5,-\n2,1,-,NA\n3,missing,inf,x\n", &o);
    assert_int_equal(lp_frame_col(f, 0)->kind, LP_COL_KIND_CATEGORICAL);
    assert_int_equal(lp_frame_col(f, 1)->kind, LP_COL_KIND_BOOL);
    assert_int_equal(lp_frame_col(f, 1)->missing[2], 1);
    assert_true(isinf(lp_frame_col(f, 2)->num[2]));
    assert_int_equal(lp_frame_col(f, 2)->missing[1], 1);
    lp_column *s = lp_frame_col(f, 3);
    assert_int_equal(s->missing[0], 1);
    assert_int_equal(s->missing[1], 0); /* NA is not a token in this list */
    lp_frame_free(f);

    o.types = "amount:float";
    o.missing = NULL;
    parse_fails("id,amount\n1,2\n2,abc\n", 20, &o, LP_EPARSE, "data.csv line 3",
                "column 'amount' is 'abc', not a number");
    o.types = "nope:int";
    parse_fails("id,amount\n1,2\n", 14, &o, LP_EINVAL, "nope", NULL);
    o.types = "amount:complex";
    parse_fails("id,amount\n1,2\n", 14, &o, LP_EINVAL, "complex", NULL);
}

static void test_bad_input(void **state)
{
    (void)state;
    const char *ragged = "a,b,c,d\n1,2,3,4\n1,2,3,4,5\n";
    parse_fails(ragged, strlen(ragged), NULL, LP_EPARSE, "data.csv line 3: 5 fields",
                "expected 4 (header has 4)");
    const char *unterminated = "a,b\n1,2\n3,\"open\n4,5\n6,7\n";
    parse_fails(unterminated, strlen(unterminated), NULL, LP_EPARSE, "line 3, column 2",
                "unterminated quote");
    const char *badutf = "a,b\n1,ok\n2,caf\xC3(\n";
    parse_fails(badutf, strlen(badutf), NULL, LP_EPARSE, "line 3, byte 6", "invalid UTF-8");
    const char nul[] = "a,b\n1,x\0y\n";
    parse_fails(nul, sizeof nul - 1, NULL, LP_EPARSE, "line 2, byte 4", "NUL");
    parse_fails("", 0, NULL, LP_EPARSE, "empty file", NULL);
    parse_fails("\r\n\n", 3, NULL, LP_EPARSE, "empty file", NULL);
    parse_fails("a,b,a\n1,2,3\n", 12, NULL, LP_EPARSE, "line 1, column 3",
                "duplicate column name 'a'");
    /* an empty name is cJ, as without a header; a clash with a real cJ is still a duplicate */
    lp_frame *fe = parse(",a,c\n0,2,3\n", NULL);
    assert_string_equal(lp_frame_col(fe, 0)->name, "c1");
    assert_string_equal(lp_frame_col(fe, 1)->name, "a");
    lp_frame_free(fe);
    parse_fails("c2,,c\n1,2,3\n", 12, NULL, LP_EPARSE, "line 1, column 2",
                "duplicate column name 'c2'");
    parse_fails("a,b\n\"x\"y,2\n", 11, NULL, LP_EPARSE, "line 2, column 1 ('a')",
                "after a closing quote");
    /* a 200,000-column header whose last name repeats the first: found in well under a
     * second (comparing every pair of names took minutes) */
    size_t nw = 200000, wl = 0;
    char *wide = malloc(nw * 9 + 16);
    assert_non_null(wide);
    for (size_t j = 0; j + 1 < nw; j++)
        wl += (size_t)sprintf(wide + wl, "w%zu,", j);
    wl += (size_t)sprintf(wide + wl, "w0\n");
    uint64_t t0 = lp_time_ns();
    parse_fails(wide, wl, NULL, LP_EPARSE, "line 1, column 200000",
                "duplicate column name 'w0' (also column 1)");
    assert_true(lp_time_ns() - t0 < 20ull * 1000000000ull); /* generous for ASan builds */
    free(wide);

    /* a 10 MB field against the 1 MiB default limit */
    size_t big = 10u << 20;
    char *huge = malloc(big + 32);
    assert_non_null(huge);
    memcpy(huge, "a,b\n1,", 6);
    memset(huge + 6, 'x', big);
    memcpy(huge + 6 + big, "\n", 2);
    parse_fails(huge, strlen(huge), NULL, LP_ETOOBIG, "line 2, column 2 ('b')", "max_field");
    free(huge);

    /* header only: a 0-row frame with the header's columns */
    lp_frame *f = parse("x,y\n", NULL);
    assert_int_equal(lp_frame_nrows(f), 0);
    assert_int_equal(lp_frame_ncols(f), 2);
    lp_frame_free(f);
}

static void test_no_header_max_rows_blank_lines(void **state)
{
    (void)state;
    lp_csv_opts o = lp_csv_opts_default();
    o.header = false;
    o.max_rows = 2;
    lp_frame *f = parse("1,a\n\n2,b\n3,c\n", &o);
    assert_int_equal(lp_frame_nrows(f), 2);
    assert_string_equal(lp_frame_col(f, 1)->name, "c2");
    assert_true(lp_frame_col(f, 0)->num[1] == 2);
    lp_frame_free(f);
}

static void test_numbers_exact(void **state)
{
    (void)state;
    /* the fast path must agree with strtod bit for bit */
    const char *nums[] = {"0.1", "-2.5e-3", "123456789012345678.0", "1e22", "1e23", "3.14159",
                          "9007199254740993.0", "9007199254740992", "0.000001234",
                          "1.7976931348623157e308",
                          "  42  ", "+7", "4.9e-324"};
    for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
        char text[96];
        snprintf(text, sizeof text, "v\n%s\n", nums[k]);
        lp_frame *f = parse(text, NULL);
        double want = strtod(nums[k], NULL);
        if (lp_frame_col(f, 0)->type != LP_COL_TYPE_NUMERIC)
            fail_msg("%s is not numeric", nums[k]);
        if (lp_frame_col(f, 0)->num[0] != want)
            fail_msg("%s parsed as %.17g, want %.17g", nums[k], lp_frame_col(f, 0)->num[0],
                     want);
        lp_frame_free(f);
    }
}

/* Integers beyond 2^53 are ids a double would merge: the column is read as strings, whether
 * the big value comes first or after small ones (the re-read path); an int override keeps it. */
static void test_big_int_ids(void **state)
{
    (void)state;
    char buf[64];
    lp_frame *f = parse("card,late,n\n4000123412341234567,1,9007199254740992\n"
                        "4000123412341234568,2,-9007199254740992\n4000123412341234567,"
                        "76561197960265728,3\n",
                        NULL);
    lp_column *card = lp_frame_col(f, 0), *late = lp_frame_col(f, 1), *n = lp_frame_col(f, 2);
    assert_int_not_equal(card->type, LP_COL_TYPE_NUMERIC);
    assert_string_equal(lp_column_cell_str(card, 0, buf, sizeof buf), "4000123412341234567");
    assert_string_equal(lp_column_cell_str(card, 1, buf, sizeof buf), "4000123412341234568");
    assert_int_not_equal(late->type, LP_COL_TYPE_NUMERIC);
    assert_string_equal(lp_column_cell_str(late, 0, buf, sizeof buf), "1");
    assert_string_equal(lp_column_cell_str(late, 2, buf, sizeof buf), "76561197960265728");
    assert_int_equal(n->type, LP_COL_TYPE_NUMERIC); /* 2^53 itself is exact */
    lp_frame_free(f);

    lp_csv_opts o = lp_csv_opts_default();
    o.types = "card:int";
    f = parse("card\n4000123412341234567\n", &o);
    assert_int_equal(lp_frame_col(f, 0)->type, LP_COL_TYPE_NUMERIC);
    lp_frame_free(f);
}

/* ';'-separated data with decimal commas: numeric columns read them as decimal points; a
 * column that is strings after all (a later cell is a word) keeps its text as written. */
static void test_decimal_comma(void **state)
{
    (void)state;
    char buf[64];
    lp_frame *f = parse("radius;area;code;note\n12,5;-1,25;1,2;x\n3;100;1,2;y\n"
                        "0,75;2,0;a,b;z\n",
                        NULL);
    lp_column *radius = lp_frame_col(f, 0), *area = lp_frame_col(f, 1), *code = lp_frame_col(f, 2);
    assert_int_equal(radius->type, LP_COL_TYPE_NUMERIC);
    assert_true(radius->num[0] == 12.5 && radius->num[1] == 3 && radius->num[2] == 0.75);
    assert_int_equal(area->type, LP_COL_TYPE_NUMERIC);
    assert_true(area->num[0] == -1.25 && area->num[2] == 2.0);
    assert_int_not_equal(code->type, LP_COL_TYPE_NUMERIC);
    assert_string_equal(lp_column_cell_str(code, 0, buf, sizeof buf), "1,2");
    assert_string_equal(lp_column_cell_str(code, 2, buf, sizeof buf), "a,b");
    lp_frame_free(f);
    /* with ',' as the delimiter nothing changes: "1,5" quoted is a string */
    f = parse("a,b\n\"1,5\",2\n", NULL);
    assert_int_not_equal(lp_frame_col(f, 0)->type, LP_COL_TYPE_NUMERIC);
    lp_frame_free(f);
}

/* Numbers written for people read as numbers while the column is numeric; anything else, and
 * a column that turns out to be strings, keeps its text. */
static void test_formatted_numbers(void **state)
{
    (void)state;
    char buf[64];
    lp_frame *f = parse("price,off,eur,big,mixed,plain\n"
                        "\"$1,169.56\",31.3%,\u20ac 3.20,\"1,234,567\",\"$5\",7\n"
                        "-$2.50,0%,-\u20ac12,999,x,8.5\n"
                        "$-0.5, 100 % ,\u00a34,\"12,000\",\"$6\",-1\n",
                        NULL);
    lp_column *price = lp_frame_col(f, 0), *off = lp_frame_col(f, 1), *eur = lp_frame_col(f, 2);
    lp_column *big = lp_frame_col(f, 3), *mixed = lp_frame_col(f, 4), *plain = lp_frame_col(f, 5);
    assert_int_equal(price->type, LP_COL_TYPE_NUMERIC);
    assert_true(price->num[0] == 1169.56 && price->num[1] == -2.5 && price->num[2] == -0.5);
    assert_int_equal(off->type, LP_COL_TYPE_NUMERIC);
    assert_true(off->num[0] == 31.3 && off->num[1] == 0 && off->num[2] == 100);
    assert_int_equal(eur->type, LP_COL_TYPE_NUMERIC);
    assert_true(eur->num[0] == 3.2 && eur->num[1] == -12 && eur->num[2] == 4);
    assert_int_equal(big->type, LP_COL_TYPE_NUMERIC);
    assert_true(big->num[0] == 1234567 && big->num[1] == 999 && big->num[2] == 12000);
    assert_int_not_equal(mixed->type, LP_COL_TYPE_NUMERIC); /* "x": strings, as written */
    assert_string_equal(lp_column_cell_str(mixed, 0, buf, sizeof buf), "$5");
    assert_int_equal(plain->type, LP_COL_TYPE_NUMERIC);
    assert_true(plain->num[1] == 8.5);
    lp_frame_free(f);
    /* not numbers: bad groups, two signs, text around, a lone sign */
    const char *bad[] = {"\"1,23\"", "\"12,34,567\"", "$$5", "5$%", "US$5", "$", "%", "\"1,5\"",
                         "\"$1,2345\"", "--5%"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char csv[64];
        snprintf(csv, sizeof csv, "a\n%s\n", bad[i]);
        f = parse(csv, NULL);
        if (lp_frame_col(f, 0)->type == LP_COL_TYPE_NUMERIC)
            fail_msg("'%s' read as the number %g", bad[i], lp_frame_col(f, 0)->num[0]);
        lp_frame_free(f);
    }
    /* ';' data: the decimal comma with '.' or ' ' thousands; "1.234" alone is 1.234 */
    f = parse("a;b;c\n1.234,5;1.234;1 234,5 \u20ac\n2,0;0.5;3\n", NULL);
    assert_true(lp_frame_col(f, 0)->num[0] == 1234.5 && lp_frame_col(f, 0)->num[1] == 2);
    assert_true(lp_frame_col(f, 1)->num[0] == 1.234);
    assert_true(lp_frame_col(f, 2)->num[0] == 1234.5);
    lp_frame_free(f);
    /* request bodies: the same numbers as a ','-separated file holds them */
    double x;
    assert_true(lp_parse_number_text("$3,000.00", 9, &x) && x == 3000);
    assert_true(lp_parse_number_text(" 12% ", 5, &x) && x == 12);
    assert_true(lp_parse_number_text("-7.5", 4, &x) && x == -7.5);
    assert_false(lp_parse_number_text("12,5", 4, &x));
    assert_false(lp_parse_number_text("abc", 3, &x));
}

static void test_roundtrip(void **state)
{
    (void)state;
    lp_frame *f = lp_frame_new();
    double x[5] = {1.5, NAN, -3, 1e-300, 0.1};
    double when[5] = {0, 86400.5, 1704103200, NAN, 1e9};
    const char *cat[5] = {"a", "b,c", NULL, "a", "NA"};
    const char *txt[5] = {"say \"hi\"", "", NULL, " pad ", "line\nbreak"};
    assert_int_equal(lp_frame_add_numeric(f, "x", LP_COL_KIND_FLOAT, x, NULL, 5, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "when", LP_COL_KIND_DATETIME, when, NULL, 5, NULL),
                     LP_OK);
    assert_int_equal(lp_frame_add_categorical(f, "c,at", cat, 5, NULL), LP_OK);
    assert_int_equal(lp_frame_add_text(f, "t", txt, 5, NULL), LP_OK);
    char delims[2] = {',', '\t'};
    for (int d = 0; d < 2; d++) {
        char *path = lp_test_tmpfile(d ? "rt.tsv" : "rt.csv");
        lp_err err;
        assert_int_equal(lp_frame_write(f, path, &err), LP_OK);
        lp_frame *g = NULL;
        if (lp_frame_read(path, NULL, &g, &err))
            fail_msg("%s", err.msg);
        assert_int_equal(lp_frame_nrows(g), 5);
        for (size_t j = 0; j < 4; j++) {
            lp_column *a = lp_frame_col(f, j), *b = lp_frame_col(g, j);
            assert_string_equal(a->name, b->name);
            for (size_t i = 0; i < 5; i++) {
                char b1[64], b2[64];
                assert_int_equal(a->missing[i], b->missing[i]);
                assert_string_equal(lp_column_cell_str(a, i, b1, sizeof b1),
                                    lp_column_cell_str(b, i, b2, sizeof b2));
            }
        }
        assert_int_equal(lp_frame_col(g, 1)->kind, LP_COL_KIND_DATETIME);
        assert_true(lp_frame_col(g, 0)->num[3] == 1e-300);
        lp_frame_free(g);
        free(path);
        (void)delims[d];
    }
    lp_frame_free(f);
}

static void test_gzip_and_truncated(void **state)
{
    (void)state;
    char *path = lp_test_tmpfile("g.csv.gz");
    gzFile gz = gzopen(path, "wb");
    assert_non_null(gz);
    lp_buf b;
    lp_buf_init(&b);
    lp_buf_printf(&b, "k,v\n");
    for (int i = 0; i < 5000; i++)
        lp_buf_printf(&b, "%d,%d.5\n", i, i * 7);
    gzwrite(gz, b.data, (unsigned)b.len);
    gzclose(gz);
    lp_buf_free(&b);
    lp_frame *f = NULL;
    lp_err err;
    assert_int_equal(lp_frame_read_csv(path, NULL, &f, &err), LP_OK);
    assert_int_equal(lp_frame_nrows(f), 5000);
    assert_true(lp_frame_col(f, 1)->num[4999] == 4999 * 7 + 0.5);
    lp_frame_free(f);

    uint8_t *data;
    size_t len;
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    data = malloc(1 << 20);
    len = fread(data, 1, 1 << 20, fp);
    fclose(fp);
    char *cut = lp_test_tmpfile("cut.csv.gz");
    lp_test_write(cut, data, len / 2);
    free(data);
    f = NULL;
    lp_status st = lp_frame_read_csv(cut, NULL, &f, &err);
    assert_int_not_equal(st, LP_OK);
    assert_null(f);
    assert_non_null(strstr(err.msg, "cut.csv.gz"));
    assert_non_null(strstr(err.msg, "truncated"));
    assert_int_equal(lp_frame_read_csv("/nonexistent/x.csv", NULL, &f, &err), LP_ENOTFOUND);
    free(cut);
    free(path);
}

static void test_convert(void **state)
{
    (void)state;
    const char *codes[4] = {"1", "2", NULL, "10"};
    lp_frame *f = lp_frame_new();
    assert_int_equal(lp_frame_add_categorical(f, "c", codes, 4, NULL), LP_OK);
    lp_column *c = lp_frame_col(f, 0);
    assert_int_equal(lp_column_convert(c, LP_COL_KIND_INTEGER, NULL), LP_OK);
    assert_int_equal(c->type, LP_COL_TYPE_NUMERIC);
    assert_true(c->num[3] == 10 && c->missing[2] && isnan(c->num[2]));
    assert_int_equal(lp_column_convert(c, LP_COL_KIND_TEXT, NULL), LP_OK);
    assert_string_equal(c->text[1], "2");
    assert_null(c->text[2]);
    const char *words[2] = {"3", "abc"};
    assert_int_equal(lp_frame_add_text(f, "w", words, 2, NULL), LP_EINVAL); /* 2 != 4 rows */
    lp_frame *g = lp_frame_new();
    assert_int_equal(lp_frame_add_text(g, "w", words, 2, NULL), LP_OK);
    lp_err err;
    lp_column *w = lp_frame_col(g, 0);
    assert_int_equal(lp_column_convert(w, LP_COL_KIND_FLOAT, &err), LP_EPARSE);
    assert_non_null(strstr(err.msg, "column 'w' row 2: 'abc'"));
    assert_int_equal(w->type, LP_COL_TYPE_TEXT); /* unchanged */
    double v[2] = {1, 0.5};
    assert_int_equal(lp_frame_add_numeric(g, "v", LP_COL_KIND_FLOAT, v, NULL, 2, NULL), LP_OK);
    assert_int_equal(lp_column_convert(lp_frame_col(g, 1), LP_COL_KIND_INTEGER, &err), LP_EPARSE);
    lp_frame_free(f);
    lp_frame_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quoting_crlf_bom),
        cmocka_unit_test(test_sniff_delimiters),
        cmocka_unit_test(test_double_colon),
        cmocka_unit_test(test_tsv_literal_quotes),
        cmocka_unit_test(test_first_row_is_data),
        cmocka_unit_test(test_read_sniff_header),
        cmocka_unit_test(test_literal_label),
        cmocka_unit_test(test_inference),
        cmocka_unit_test(test_fallback_to_strings),
        cmocka_unit_test(test_overrides_and_missing),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_no_header_max_rows_blank_lines),
        cmocka_unit_test(test_numbers_exact),
        cmocka_unit_test(test_big_int_ids),
        cmocka_unit_test(test_decimal_comma),
        cmocka_unit_test(test_formatted_numbers),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_gzip_and_truncated),
        cmocka_unit_test(test_convert),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
