/*
 * test_rowscan.c - `lepton serve`'s predict bodies read straight from the bytes (cli/rowparse.c
 * rows_scan) against the checked path (lp_json_parse_body, the route's field specs, rows_parse
 * on the cJSON tree). Differential: many generated bodies (numbers of every spelling - short and
 * long significands, exponents, -0, underflow, 20+ digits -, strings, booleans, null, repeated
 * and ignored keys, whitespace, several rows) and a list of bodies the scanner must leave to the
 * checked path (other members, escapes, nesting, bad values, malformed JSON, non-finite
 * numbers). Whenever rows_scan takes a body, the checked path must accept it too and give the
 * same cells bit for bit (numbers memcmp'd, strings strcmp'd) and the same ignored names; the
 * plain bodies must be taken (else the fast path is dead code). The file is compiled in (the
 * lepton command's sources are no library).
 */
#include "lp_test.h"

#include "../../cli/rowparse.c"

#define MAX_ROWS 10000
#define N_TRAIN 200

static const lp_field_spec fields[] = {
    {.name = "rows", .type = LP_FIELD_TYPE_ARRAY, .required = true, .max_len = MAX_ROWS},
    {.name = "adapter", .type = LP_FIELD_TYPE_STRING, .max_len = 128},
    {.name = NULL},
};

/* A small model over x float, n integer, flag bool, when date-time, color categorical, note
 * text. */
static lp_model *make_model(void)
{
    lp_rng r;
    lp_rng_seed(&r, 5);
    double x[N_TRAIN], ni[N_TRAIN], fl[N_TRAIN], when[N_TRAIN];
    const char *color[N_TRAIN], *note[N_TRAIN], *lab[N_TRAIN];
    static const char *const colors[] = {"red", "green", "blue"};
    static const char *const notes[] = {"refund please", "just browsing", "great value"};
    for (size_t i = 0; i < N_TRAIN; i++) {
        x[i] = lp_rng_normal(&r);
        ni[i] = (double)lp_rng_below(&r, 10);
        fl[i] = (double)lp_rng_below(&r, 2);
        when[i] = 1672531200.0 + (double)lp_rng_below(&r, 31536000);
        size_t c = lp_rng_below(&r, 3);
        color[i] = colors[c];
        note[i] = notes[lp_rng_below(&r, 3)];
        lab[i] = x[i] + (c == 0) > 0.5 ? "yes" : "no";
    }
    lp_frame *f = lp_frame_new();
    assert_int_equal(lp_frame_add_numeric(f, "x", LP_COL_KIND_FLOAT, x, NULL, N_TRAIN, NULL), 0);
    assert_int_equal(lp_frame_add_numeric(f, "n", LP_COL_KIND_INTEGER, ni, NULL, N_TRAIN, NULL),
                     0);
    assert_int_equal(lp_frame_add_numeric(f, "flag", LP_COL_KIND_BOOL, fl, NULL, N_TRAIN, NULL),
                     0);
    assert_int_equal(
        lp_frame_add_numeric(f, "when", LP_COL_KIND_DATETIME, when, NULL, N_TRAIN, NULL), 0);
    assert_int_equal(lp_frame_add_categorical(f, "color", color, N_TRAIN, NULL), 0);
    assert_int_equal(lp_frame_add_text(f, "note", note, N_TRAIN, NULL), 0);
    assert_int_equal(lp_frame_add_categorical(f, "label", lab, N_TRAIN, NULL), 0);
    lp_params *p = lp_params_new();
    assert_int_equal(lp_params_parse(p, "n_rounds=5", NULL), 0);
    lp_train_opts o = lp_train_opts_default();
    o.kind = LP_MODEL_KIND_GBDT;
    o.label = "label";
    o.params = p;
    lp_model *m = NULL;
    lp_err err;
    lp_err_clear(&err);
    if (lp_model_train(f, NULL, &o, &m, &err))
        fail_msg("training: %s", lp_err_text(&err));
    lp_params_free(p);
    lp_frame_free(f);
    assert_int_equal(lp_model_n_inputs(m), 6);
    return m;
}

/* A copy of n rows of views (k cells each) and the ignored names. */
typedef struct {
    size_t n, k, n_ign;
    double *num;
    char **str;
    char **ign;
} cells;

static void cells_take(cells *c, const row_scratch *rs, const lp_row_view *v, size_t n,
                       size_t k)
{
    c->n = n;
    c->k = k;
    c->num = calloc(n * k + 1, sizeof *c->num);
    c->str = calloc(n * k + 1, sizeof *c->str);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < k; j++) {
            c->num[i * k + j] = v[i].num[j];
            c->str[i * k + j] = v[i].str[j] ? lp_strdup(v[i].str[j]) : NULL;
        }
    const char *const *ign;
    c->n_ign = row_scratch_ignored(rs, &ign);
    c->ign = calloc(c->n_ign + 1, sizeof *c->ign);
    for (size_t i = 0; i < c->n_ign; i++)
        c->ign[i] = lp_strdup(ign[i]);
}

static void cells_free(cells *c)
{
    for (size_t i = 0; i < c->n * c->k; i++)
        free(c->str[i]);
    for (size_t i = 0; i < c->n_ign; i++)
        free(c->ign[i]);
    free(c->num);
    free(c->str);
    free(c->ign);
}

/* The checked path: true with *c when it accepts body. */
static bool checked(const lp_model *m, row_scratch *rs, const char *body, cells *c)
{
    lp_err err;
    lp_err_clear(&err);
    cJSON *j = NULL;
    if (lp_json_parse_body(body, strlen(body), 64, "body", &j, &err))
        return false;
    bool ok = false;
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(j, "rows");
    const lp_row_view *v;
    size_t n;
    if (!lp_fields_check(j, fields, false, &err) && cJSON_GetArraySize(rows) > 0 &&
        !rows_parse(m, rows, rs, &v, &n, &err)) {
        cells_take(c, rs, v, n, lp_model_n_inputs(m));
        ok = true;
    }
    cJSON_Delete(j);
    return ok;
}

/* rows_scan on body; when it takes it, the checked path must agree cell for cell. Returns
 * whether rows_scan took it. */
static bool compare(const lp_model *m, row_scratch *rs, const char *body)
{
    const lp_row_view *v;
    size_t n;
    if (!rows_scan(m, body, strlen(body), MAX_ROWS, rs, &v, &n))
        return false;
    size_t k = lp_model_n_inputs(m);
    cells a = {0}, b = {0};
    cells_take(&a, rs, v, n, k);
    if (!checked(m, rs, body, &b))
        fail_msg("rows_scan took a body the checked path refuses: %s", body);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n * k; i++) {
        if (memcmp(&a.num[i], &b.num[i], sizeof(double)) != 0)
            fail_msg("cell %zu: %.17g vs %.17g in %s", i, a.num[i], b.num[i], body);
        if ((a.str[i] == NULL) != (b.str[i] == NULL) || (a.str[i] && strcmp(a.str[i], b.str[i])))
            fail_msg("cell %zu: '%s' vs '%s' in %s", i, a.str[i] ? a.str[i] : "(null)",
                     b.str[i] ? b.str[i] : "(null)", body);
    }
    assert_int_equal(a.n_ign, b.n_ign);
    for (size_t i = 0; i < a.n_ign; i++)
        assert_string_equal(a.ign[i], b.ign[i]);
    cells_free(&a);
    cells_free(&b);
    return true;
}

/* A JSON number of a random spelling. */
static void put_number(lp_buf *b, lp_rng *r)
{
    char t[96];
    int len = 0;
    switch (lp_rng_below(r, 8)) {
    case 0: /* short decimal */
        len = snprintf(t, sizeof t, "%.*f", (int)lp_rng_below(r, 6),
                       (lp_rng_uniform(r) - 0.5) * pow(10, (double)lp_rng_below(r, 7)));
        break;
    case 1: /* shortest round trip of a random double */
        len = snprintf(t, sizeof t, "%.17g", lp_rng_normal(r) * pow(10, lp_rng_normal(r) * 8));
        break;
    case 2: /* an integer, up to 2^63 */
        len = snprintf(t, sizeof t, "%lld", (long long)(lp_rng_u64(r) >> lp_rng_below(r, 64)));
        break;
    case 3: /* exponent form */
        len = snprintf(t, sizeof t, "%de%s%d", (int)lp_rng_below(r, 100000) - 50000,
                       lp_rng_below(r, 2) ? "-" : "+", (int)lp_rng_below(r, 330));
        break;
    case 4: { /* 15 to 30 digits with a point somewhere */
        int nd = 15 + (int)lp_rng_below(r, 16), dot = 1 + (int)lp_rng_below(r, (uint64_t)nd - 1);
        if (lp_rng_below(r, 2))
            t[len++] = '-';
        t[len++] = (char)('1' + lp_rng_below(r, 9));
        for (int i = 1; i < nd; i++) {
            if (i == dot)
                t[len++] = '.';
            t[len++] = (char)('0' + lp_rng_below(r, 10));
        }
        t[len] = '\0';
        break;
    }
    case 5: /* leading zeros after the point, exponent */
        len = snprintf(t, sizeof t, "0.000%uE%d", (unsigned)lp_rng_below(r, 1000000),
                       (int)lp_rng_below(r, 40) - 20);
        break;
    case 6: { /* special spellings */
        static const char *const sp[] = {"0",     "-0",      "0.0",     "-0.0",  "1e-400",
                                         "1E+22", "1e23",    "9007199254740993",
                                         "0e999", "4.9e-324", "2.2250738585072011e-308",
                                         "1.7976931348623157e308", "123456789012345678901234"};
        len = snprintf(t, sizeof t, "%s", sp[lp_rng_below(r, sizeof sp / sizeof *sp)]);
        break;
    }
    default: /* 0/1 (booleans and integers take them) */
        len = snprintf(t, sizeof t, "%d", (int)lp_rng_below(r, 2));
    }
    lp_buf_put(b, t, (size_t)len);
}

static void put_ws(lp_buf *b, lp_rng *r)
{
    static const char *const ws[] = {"", "", "", " ", "\n  ", "\t", "\r\n"};
    const char *w = ws[lp_rng_below(r, 7)];
    lp_buf_put(b, w, strlen(w));
}

/* One value for member name: of a kind its column takes, 1 time in 50 any. */
static void put_value(lp_buf *b, lp_rng *r, const char *name)
{
    static const char *const strs[] = {"\"red\"", "\"blue\"", "\"purple\"", "\"refund please\"",
                                       "\"2023-04-05T06:07:08Z\"", "\"2023-04-05\"", "\"12.5\"",
                                       "\"yes\"", "\"no\"", "\"true\"", "\"caf\xc3\xa9\"", "\"\""};
    const char *s = NULL;
    uint64_t u = lp_rng_below(r, 10);
    bool any = lp_rng_below(r, 50) == 0;
    if (u == 0) {
        s = "null";
    } else if (!any && !strcmp(name, "flag")) {
        static const char *const fl[] = {"true", "false", "0", "1", "\"yes\"", "\"no\""};
        s = fl[lp_rng_below(r, 6)];
    } else if (!any && !strcmp(name, "when") && u < 4) {
        s = u < 2 ? "\"2023-04-05T06:07:08Z\"" : "\"2023-04-05\"";
    } else if (!any && (!strcmp(name, "x") || !strcmp(name, "n") || !strcmp(name, "when"))) {
        if (u == 1)
            s = lp_rng_below(r, 2) ? "true" : "\"12.5\"";
    } else if (u < 7) {
        s = strs[lp_rng_below(r, sizeof strs / sizeof *strs)];
    } else if (u == 7) {
        s = lp_rng_below(r, 2) ? "true" : "false";
    }
    if (s)
        lp_buf_put(b, s, strlen(s));
    else
        put_number(b, r);
}

/* A plain body: 1-4 rows, members in a random order, some repeated, some ignored. */
static void plain_body(lp_buf *b, lp_rng *r)
{
    static const char *const names[] = {"x", "n", "flag", "when", "color", "note", "id", "label"};
    b->len = 0;
    lp_buf_put(b, "{", 1);
    put_ws(b, r);
    lp_buf_put(b, "\"rows\"", 6);
    put_ws(b, r);
    lp_buf_put(b, ":[", 2);
    size_t rows = 1 + lp_rng_below(r, 4);
    for (size_t i = 0; i < rows; i++) {
        if (i)
            lp_buf_put(b, ",", 1);
        put_ws(b, r);
        lp_buf_put(b, "{", 1);
        size_t members = lp_rng_below(r, 9);
        for (size_t j = 0; j < members; j++) {
            const char *name = names[lp_rng_below(r, 8)];
            if (j)
                lp_buf_put(b, ",", 1);
            put_ws(b, r);
            lp_buf_put(b, "\"", 1);
            lp_buf_put(b, name, strlen(name));
            lp_buf_put(b, "\":", 2);
            put_ws(b, r);
            put_value(b, r, name);
        }
        lp_buf_put(b, "}", 1);
    }
    lp_buf_put(b, "]", 1);
    put_ws(b, r);
    lp_buf_put(b, "}", 1);
    put_ws(b, r);
    lp_buf_u8(b, 0);
}

static void test_differential(void **state)
{
    (void)state;
    lp_model *m = make_model();
    row_scratch *rs = row_scratch_get();
    assert_non_null(rs);
    lp_rng r;
    lp_rng_seed(&r, 3);
    lp_buf b;
    lp_buf_init(&b);
    size_t taken = 0, total = 20000;
    for (size_t t = 0; t < total; t++) {
        plain_body(&b, &r);
        taken += compare(m, rs, (const char *)b.data);
    }
    /* declined: values put_cell refuses ("purple" is fine, "abc" for a number is not), non-finite
     * numbers; everything else generated is JSON the scanner reads */
    print_message("rows_scan took %zu of %zu generated bodies\n", taken, total);
    assert_true(taken > total / 2);
    /* every plain number, in a number column, is taken */
    for (size_t t = 0; t < 5000; t++) {
        b.len = 0;
        lp_buf_put(&b, "{\"rows\":[{\"x\":", 14);
        put_number(&b, &r);
        lp_buf_put(&b, "}]}", 3);
        lp_buf_u8(&b, 0);
        bool inf = strstr((const char *)b.data, "e+3") || strstr((const char *)b.data, "e+2") || strstr((const char *)b.data, "e23") ||
                   strstr((const char *)b.data, "e308");
        if (!compare(m, rs, (const char *)b.data) && !inf)
            fail_msg("not taken: %s", b.data);
    }
    lp_buf_free(&b);
    lp_model_free(m);
}

static void test_declined(void **state)
{
    (void)state;
    lp_model *m = make_model();
    row_scratch *rs = row_scratch_get();
    /* each of these must go to the checked path (which answers it, or its error) */
    static const char *const bodies[] = {
        "{\"rows\":[{\"x\":1}],\"adapter\":null}",
        "{\"adapter\":\"a\",\"rows\":[{\"x\":1}]}",
        "{\"rows\":[{\"x\":1}],\"extra\":1}",
        "{\"rows\":[]}",
        "{\"rows\":[{\"x\":1}]",
        "{\"rows\":[{\"x\":1}]}x",
        "{\"rows\":[{\"x\":1},]}",
        "{\"rows\":[{\"x\":1,}]}",
        "{\"rows\":[{\"x\":01}]}",
        "{\"rows\":[{\"x\":1.}]}",
        "{\"rows\":[{\"x\":.5}]}",
        "{\"rows\":[{\"x\":+1}]}",
        "{\"rows\":[{\"x\":1e}]}",
        "{\"rows\":[{\"x\":-}]}",
        "{\"rows\":[{\"x\":0x10}]}",
        "{\"rows\":[{\"x\":NaN}]}",
        "{\"rows\":[{\"x\":Infinity}]}",
        "{\"rows\":[{\"x\":1e999}]}",
        "{\"rows\":[{\"x\":-1e400}]}",
        "{\"rows\":[{\"x\":\"abc\"}]}",
        "{\"rows\":[{\"x\":[1]}]}",
        "{\"rows\":[{\"x\":{\"a\":1}}]}",
        "{\"rows\":[{\"color\":\"a\\\"b\"}]}",
        "{\"rows\":[{\"color\":\"\\u00e9\"}]}",
        "{\"rows\":[{\"col\\u006fr\":\"red\"}]}",
        "{\"rows\":[{\"color\":\"tab\there\"}]}",
        "{\"rows\":[{\"color\":\"\xc3\"}]}",
        "{\"rows\":[{\"color\":\"\xed\xa0\x80\"}]}",
        "{\"rows\":[1]}",
        "{\"rows\":[{\"x\":1}] , \"rows\":[{\"x\":2}]}",
        "{\"rows\":{\"x\":1}}",
        "[{\"x\":1}]",
        "{\"Rows\":[{\"x\":1}]}",
        "{\"rows\":[{\"x\":tru}]}",
        "{\"rows\":[{\"x\":nul}]}",
        "{\"rows\":[{\"flag\":2}]}",
        "{\"rows\":[{\"when\":\"not a date\"}]}",
        "{\"rows\":[{\"x\":1 2}]}",
        "{\"rows\":[{\"x\" 1}]}",
        "{\"rows\":[{x:1}]}",
        "",
        " ",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        const lp_row_view *v;
        size_t n;
        if (rows_scan(m, bodies[i], strlen(bodies[i]), MAX_ROWS, rs, &v, &n))
            fail_msg("rows_scan took %s", bodies[i]);
    }
    /* more rows than allowed: declined (the field spec answers 400) */
    lp_buf b;
    lp_buf_init(&b);
    lp_buf_put(&b, "{\"rows\":[{}", 11);
    for (int i = 0; i < 3; i++)
        lp_buf_put(&b, ",{}", 3);
    lp_buf_put(&b, "]}", 2);
    lp_buf_u8(&b, 0);
    const lp_row_view *v;
    size_t n;
    assert_false(rows_scan(m, (const char *)b.data, b.len - 1, 3, rs, &v, &n));
    assert_true(rows_scan(m, (const char *)b.data, b.len - 1, 4, rs, &v, &n));
    assert_int_equal(n, 4);
    assert_true(isnan(v[3].num[0]));
    /* taken, as the checked path reads them */
    assert_true(compare(m, rs, "{\"rows\":[{\"color\":\"caf\xc3\xa9\",\"x\":\"2.5\",\"flag\":true}]}"));
    assert_true(compare(m, rs, "{\"rows\":[{\"color\":7,\"n\":3,\"n\":null,\"id\":1,\"id\":2}]}"));
    assert_true(compare(m, rs, " {\n\"rows\" : [ { } , {\"x\":-0} ] } \n"));
    lp_buf_free(&b);
    lp_model_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_differential),
                                       cmocka_unit_test(test_declined)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
