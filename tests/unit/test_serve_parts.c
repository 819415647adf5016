/*
 * test_serve_parts.c - the serve module's parts without HTTP: the hot-swap pointer under
 * concurrent acquire/release/swap (each old object destroyed exactly once, never while in use),
 * the metrics registry (exact totals from concurrent updates, exposition format), UTF-8
 * validation, field specs, API key files and matching, options checks.
 */
#include "lp_test.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SWAP_OBJECTS 2000
#define SWAP_READERS 4

typedef struct obj {
    uint64_t magic;
    int index;
} obj;

static atomic_int g_destroy_count[SWAP_OBJECTS];
static atomic_bool g_stop;

static void destroy_obj(void *p, void *user)
{
    obj *o = p;
    assert_true(o->magic == 0xC0FFEEull);
    atomic_fetch_add(&g_destroy_count[o->index], 1);
    o->magic = 0xDEADull; /* a reader still holding it would see this */
    free(o);
}

static void *reader(void *arg)
{
    lp_swap *s = arg;
    uint64_t last_gen = 0;
    while (!atomic_load(&g_stop)) {
        lp_swap_ref *r = lp_swap_acquire(s);
        obj *o = lp_swap_ref_object(r);
        if (o->magic != 0xC0FFEEull) abort(); /* freed under a reader */
        uint64_t g = lp_swap_ref_generation(r);
        if (g < last_gen) abort(); /* generations never go back */
        last_gen = g;
        lp_swap_release(r);
    }
    return NULL;
}

static obj *make_obj(int i)
{
    obj *o = malloc(sizeof *o);
    o->magic = 0xC0FFEEull;
    o->index = i;
    return o;
}

static void test_swap_concurrent(void **state)
{
    lp_swap *s = lp_swap_new(make_obj(0), destroy_obj, NULL);
    pthread_t t[SWAP_READERS];
    for (int i = 0; i < SWAP_READERS; i++) pthread_create(&t[i], NULL, reader, s);
    for (int i = 1; i < SWAP_OBJECTS; i++) {
        assert_int_equal(lp_swap_set(s, make_obj(i), NULL), LP_OK);
        /* every object before the current one is gone or about to go, never twice */
        assert_true(atomic_load(&g_destroy_count[i - 1]) <= 1);
    }
    atomic_store(&g_stop, true);
    for (int i = 0; i < SWAP_READERS; i++) pthread_join(t[i], NULL);
    assert_int_equal(lp_swap_generation(s), SWAP_OBJECTS);
    for (int i = 0; i < SWAP_OBJECTS - 1; i++) assert_int_equal(atomic_load(&g_destroy_count[i]), 1);
    assert_int_equal(atomic_load(&g_destroy_count[SWAP_OBJECTS - 1]), 0);
    lp_swap_free(s);
    assert_int_equal(atomic_load(&g_destroy_count[SWAP_OBJECTS - 1]), 1);
}

static void test_swap_held_reference_outlives_swap(void **state)
{
    memset(g_destroy_count, 0, sizeof g_destroy_count);
    lp_swap *s = lp_swap_new(make_obj(0), destroy_obj, NULL);
    lp_swap_ref *held = lp_swap_acquire(s);
    lp_swap_set(s, make_obj(1), NULL);
    lp_swap_set(s, make_obj(2), NULL);
    assert_int_equal(atomic_load(&g_destroy_count[0]), 0); /* still held */
    assert_int_equal(atomic_load(&g_destroy_count[1]), 1); /* never acquired */
    assert_int_equal(((obj *)lp_swap_ref_object(held))->index, 0);
    lp_swap_release(held);
    assert_int_equal(atomic_load(&g_destroy_count[0]), 1);
    lp_swap_free(s);
    assert_int_equal(atomic_load(&g_destroy_count[2]), 1);
    lp_swap_free(NULL);
    lp_swap_release(NULL);
}

typedef struct mt {
    lp_metric *c, *h;
} mt;

static void *hammer(void *arg)
{
    mt *m = arg;
    const char *a[2] = {"/v1/a", "200"}, *b[2] = {"/v1/b", "500"};
    for (int i = 0; i < 20000; i++) {
        lp_metric_series_add(lp_metric_series_get(m->c, (i & 1) ? a : b), 1.0);
        lp_metric_series_observe(lp_metric_series_get(m->h, NULL), (i % 4) * 0.5);
    }
    return NULL;
}

static void test_metrics_registry(void **state)
{
    lp_metrics *m = lp_metrics_new();
    mt x;
    const char *labels[2] = {"route", "status"};
    const double buckets[3] = {0.25, 0.75, 1.25};
    assert_int_equal(lp_metrics_register(m, "req_total", "Requests \\ by \"route\"\nand status",
                                         LP_METRIC_TYPE_COUNTER, labels, 2, NULL, 0, &x.c, NULL),
                     LP_OK);
    assert_int_equal(lp_metrics_register(m, "lat_seconds", "Latency", LP_METRIC_TYPE_HISTOGRAM,
                                         NULL, 0, buckets, 3, &x.h, NULL),
                     LP_OK);
    lp_err err;
    assert_int_equal(lp_metrics_register(m, "req_total", "", LP_METRIC_TYPE_GAUGE, NULL, 0, NULL, 0,
                                         NULL, &err),
                     LP_EEXIST);
    assert_int_equal(lp_metrics_register(m, "9bad", "", LP_METRIC_TYPE_GAUGE, NULL, 0, NULL, 0,
                                         NULL, &err),
                     LP_EINVAL);
    const double unsorted[2] = {1, 0.5};
    assert_int_equal(lp_metrics_register(m, "h2", "", LP_METRIC_TYPE_HISTOGRAM, NULL, 0, unsorted,
                                         2, NULL, &err),
                     LP_EINVAL);
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, hammer, &x);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    const char *a[2] = {"/v1/a", "200"};
    assert_true(lp_metric_series_value(lp_metric_series_get(x.c, a)) == 40000.0);
    assert_true(lp_metric_series_value(lp_metric_series_get(x.h, NULL)) == 80000.0);
    const char *q[2] = {"a\"b\\c\nd", "x"};
    lp_metric_series_add(lp_metric_series_get(x.c, q), 2.5);
    lp_metric_series_add(lp_metric_series_get(x.c, q), -7); /* counters never go down */
    lp_buf b;
    lp_buf_init(&b);
    lp_metrics_write(m, &b);
    lp_buf_put(&b, "", 1);
    const char *text = (const char *)b.data;
    assert_non_null(strstr(text, "# HELP req_total Requests \\\\ by \"route\"\\nand status\n"));
    assert_non_null(strstr(text, "# TYPE req_total counter\n"));
    assert_non_null(strstr(text, "req_total{route=\"/v1/a\",status=\"200\"} 40000\n"));
    assert_non_null(strstr(text, "req_total{route=\"/v1/b\",status=\"500\"} 40000\n"));
    assert_non_null(strstr(text, "req_total{route=\"a\\\"b\\\\c\\nd\",status=\"x\"} 2.5\n"));
    /* values 0, 0.5, 1, 1.5 in equal parts: cumulative 1/4, 2/4, 3/4, all */
    assert_non_null(strstr(text, "lat_seconds_bucket{le=\"0.25\"} 20000\n"));
    assert_non_null(strstr(text, "lat_seconds_bucket{le=\"0.75\"} 40000\n"));
    assert_non_null(strstr(text, "lat_seconds_bucket{le=\"1.25\"} 60000\n"));
    assert_non_null(strstr(text, "lat_seconds_bucket{le=\"+Inf\"} 80000\n"));
    assert_non_null(strstr(text, "lat_seconds_sum 60000\n"));
    assert_non_null(strstr(text, "lat_seconds_count 80000\n"));
    assert_true(strstr(text, "# TYPE req_total") < strstr(text, "# TYPE lat_seconds"));
    lp_buf_free(&b);
    lp_metrics_free(m);
    lp_metrics_free(NULL);
}

static void test_utf8(void **state)
{
    size_t at;
    assert_true(lp_utf8_valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10, &at));
    assert_false(lp_utf8_valid("ab\x80", 3, &at));
    assert_int_equal(at, 2);
    assert_false(lp_utf8_valid("\xe0\x80\xaf", 3, &at)); /* overlong */
    assert_false(lp_utf8_valid("\xed\xbf\xbf", 3, &at)); /* surrogate */
    assert_false(lp_utf8_valid("x\xf0\x9f\x98", 4, &at)); /* truncated */
    assert_int_equal(at, 1);
    assert_true(lp_utf8_valid("\xf4\x8f\xbf\xbf", 4, &at)); /* U+10FFFF */
    assert_false(lp_utf8_valid("\xf5\x80\x80\x80", 4, &at));
    /* scrub: each byte that starts no valid sequence becomes '?'; valid text is untouched */
    char cut[] = "ok \xc3\xa9 \xc3", raw[] = "P\xff\xfeST", fine[] = "caf\xc3\xa9 \xf0\x9f\x98\x80";
    assert_int_equal(lp_utf8_scrub(cut), 1);
    assert_string_equal(cut, "ok \xc3\xa9 ?");
    assert_int_equal(lp_utf8_scrub(raw), 2);
    assert_string_equal(raw, "P??ST");
    assert_int_equal(lp_utf8_scrub(fine), 0);
    assert_string_equal(fine, "caf\xc3\xa9 \xf0\x9f\x98\x80");
}

static void test_json_body_and_fields(void **state)
{
    cJSON *j;
    lp_err err;
    assert_int_equal(lp_json_parse_body("{\"a\":[1,2]}", 11, 2, "body", &j, &err), LP_OK);
    cJSON_Delete(j);
    assert_int_equal(lp_json_parse_body("{\"a\":[[1]]}", 11, 2, "req", &j, &err), LP_EPARSE);
    assert_string_equal(err.msg, "req: nesting deeper than 2 at byte 6");
    assert_null(j);
    /* an escaped NUL would cut the string short in cJSON: refused, naming where */
    assert_int_equal(lp_json_parse_body("{\"id\":\"a\\u0000b\"}", 17, 8, "body", &j, &err),
                     LP_EPARSE);
    assert_non_null(strstr(err.msg, "byte 8"));
    assert_non_null(strstr(err.msg, "(NUL) in a string"));
    assert_null(j);
    assert_int_equal(lp_json_parse_body("{\"id\":\"a\\\\u0000b\"}", 18, 8, "body", &j, &err),
                     LP_OK); /* an escaped backslash then "u0000" is text */
    cJSON_Delete(j);
    /* the length is honoured: bytes after len are not read */
    assert_int_equal(lp_json_parse_body("[1]]", 3, 8, "body", &j, &err), LP_OK);
    cJSON_Delete(j);
    static const lp_field_spec spec[] = {
        {.name = "n", .type = LP_FIELD_TYPE_INTEGER, .required = true},
        {.name = "s", .type = LP_FIELD_TYPE_STRING, .max_len = 3},
        {.name = NULL},
    };
    j = cJSON_Parse("{\"n\":9007199254740993e3,\"x\":1}");
    assert_int_equal(lp_fields_check(j, spec, true, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "field 'n': expected an integer"));
    cJSON_Delete(j);
    j = cJSON_Parse("{\"n\":-4,\"x\":1,\"s\":\"abc\"}");
    assert_int_equal(lp_fields_check(j, spec, true, NULL), LP_OK);
    assert_int_equal(lp_fields_check(j, spec, false, &err), LP_EINVAL);
    assert_string_equal(err.msg, "field 'x': unknown field");
    cJSON_Delete(j);
}

static void test_json_add_float(void **state)
{
    (void)state;
    cJSON *o = cJSON_CreateObject();
    assert_non_null(lp_json_add_float(o, "f", 0.1f, 9));     /* the float nearest 0.1 */
    assert_non_null(lp_json_add_float(o, "d", 1.0 / 3.0, 17)); /* round-trips a double */
    assert_non_null(lp_json_add_float(o, "n", NAN, 9));
    assert_non_null(lp_json_add_float(o, "c", 123456.0, 0));  /* digits clamped to 1 */
    char *txt = cJSON_PrintUnformatted(o);
    assert_string_equal(txt, "{\"f\":0.100000001,\"d\":0.33333333333333331,\"n\":null,"
                             "\"c\":1e+05}");
    cJSON *back = cJSON_Parse(txt);
    assert_non_null(back);
    assert_true(cJSON_GetObjectItem(back, "d")->valuedouble == 1.0 / 3.0);
    assert_true((float)cJSON_GetObjectItem(back, "f")->valuedouble == 0.1f);
    cJSON_Delete(back);
    free(txt);
    cJSON_Delete(o);
    /* every precision writes what "%.*g" writes */
    const double vals[] = {0.0, -0.0, 1e-310, 2.5e-7, 0.123456789012345678, 42, -7.75e12, 1e300};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++)
        for (int d = 1; d <= 17; d++) {
            char want[40];
            snprintf(want, sizeof want, "%.*g", d, vals[i]);
            o = cJSON_CreateObject();
            lp_json_add_float(o, "v", vals[i], d);
            assert_string_equal(cJSON_GetObjectItem(o, "v")->valuestring, want);
            cJSON_Delete(o);
        }
}

/* The hand-built JSON writers give what cJSON prints for the same values. */
static void test_json_write(void **state)
{
    (void)state;
    char raw[64];
    size_t n = 0;
    for (int c = 1; c < 0x20; c++) raw[n++] = (char)c;
    memcpy(raw + n, "\"\\ a/\xc3\xa9\x7f", 9);
    raw[n + 9] = 0;
    const char *strs[] = {"", "plain", "Zo\xc3\xab \"quoted\" \\ back", raw};
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
        lp_buf b;
        lp_buf_init(&b);
        lp_json_write_str(&b, strs[i]);
        cJSON *j = cJSON_CreateString(strs[i]);
        char *want = cJSON_PrintUnformatted(j);
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.data, want, b.len);
        free(want);
        cJSON_Delete(j);
        lp_buf_free(&b);
    }
    const double vals[] = {0.1f, 1.0 / 3.0, -2.5e-9, NAN, INFINITY};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        lp_buf b;
        lp_buf_init(&b);
        lp_json_write_num(&b, vals[i], 9);
        cJSON *o = cJSON_CreateObject();
        lp_json_add_float(o, "v", vals[i], 9);
        char *txt = cJSON_PrintUnformatted(o); /* {"v":...} */
        assert_int_equal(b.len, strlen(txt) - 6);
        assert_memory_equal(b.data, txt + 5, b.len);
        free(txt);
        cJSON_Delete(o);
        lp_buf_free(&b);
    }
}

/* A random tree of depth <= d: every item type, numbers of every magnitude and the integer and
 * int-saturation edges, strings with escapes, UTF-8 and control bytes, empty containers. */
static cJSON *random_tree(lp_rng *r, int d)
{
    static const char *const strs[] = {"", "plain", "Zo\xc3\xab \"q\" \\ b", "tab\there\n",
                                       "\x01\x1f ctl", "caf\xc3\xa9 \xe2\x82\xac"};
    static const double nums[] = {0.0, -0.0, 1.0, -1.0, 0.1, 1.0 / 3.0, 2147483647.0,
                                  2147483648.0, -2147483648.0, -2147483649.0, 1e300, 5e-324,
                                  NAN, INFINITY, -INFINITY, 123456789012.0, 0.30000000000000004};
    uint64_t t = lp_rng_below(r, d > 0 ? 9 : 6);
    switch (t) {
    case 0:
        return cJSON_CreateNull();
    case 1:
        return cJSON_CreateBool(lp_rng_below(r, 2));
    case 2:
        return cJSON_CreateNumber(nums[lp_rng_below(r, sizeof nums / sizeof *nums)]);
    case 3:
        return cJSON_CreateNumber((lp_rng_uniform(r) - 0.5) * pow(10, (double)lp_rng_below(r, 40) - 20));
    case 4:
        return cJSON_CreateString(strs[lp_rng_below(r, sizeof strs / sizeof *strs)]);
    case 5:
        return cJSON_CreateRaw("{\"raw\":1}");
    case 6:
    case 7: {
        cJSON *a = cJSON_CreateArray();
        size_t n = lp_rng_below(r, 4);
        for (size_t i = 0; i < n; i++)
            cJSON_AddItemToArray(a, random_tree(r, d - 1));
        return a;
    }
    default: {
        cJSON *o = cJSON_CreateObject();
        size_t n = lp_rng_below(r, 4);
        for (size_t i = 0; i < n; i++)
            cJSON_AddItemToObject(o, strs[lp_rng_below(r, sizeof strs / sizeof *strs)],
                                  random_tree(r, d - 1));
        return o;
    }
    }
}

static void test_json_write_tree(void **state)
{
    (void)state;
    lp_rng r;
    lp_rng_seed(&r, 17);
    for (int i = 0; i < 3000; i++) {
        cJSON *j = random_tree(&r, 4);
        lp_buf b;
        lp_buf_init(&b);
        assert_true(lp_json_write_tree(&b, j));
        char *want = cJSON_PrintUnformatted(j);
        if (b.len != strlen(want) || memcmp(b.data, want, b.len) != 0)
            fail_msg("tree %d: got %.*s want %s", i, (int)b.len, (const char *)b.data, want);
        free(want);
        cJSON_Delete(j);
        lp_buf_free(&b);
    }
    /* what it refuses: NULL, an invalid item, a raw item without text, very deep nesting */
    lp_buf b;
    lp_buf_init(&b);
    assert_false(lp_json_write_tree(&b, NULL));
    cJSON bad = {0};
    assert_false(lp_json_write_tree(&b, &bad));
    cJSON raw = {.type = cJSON_Raw};
    assert_false(lp_json_write_tree(&b, &raw));
    cJSON *deep = cJSON_CreateArray(), *cur = deep;
    for (int i = 0; i < 300; i++) {
        cJSON *next = cJSON_CreateArray();
        cJSON_AddItemToArray(cur, next);
        cur = next;
    }
    assert_false(lp_json_write_tree(&b, deep));
    cJSON_Delete(deep);
    lp_buf_free(&b);
}

static void test_api_keys(void **state)
{
    char *path = lp_test_tmpfile("keys.txt");
    const char *text = "# service keys\n\n  alpha-key-0001  \nbeta-key-0002\r\n";
    lp_test_write(path, text, strlen(text));
    char **keys;
    size_t n;
    assert_int_equal(lp_api_keys_load(path, &keys, &n, NULL), LP_OK);
    assert_int_equal(n, 2);
    assert_string_equal(keys[0], "alpha-key-0001");
    assert_string_equal(keys[1], "beta-key-0002");
    assert_true(lp_api_key_match("beta-key-0002", keys, n));
    assert_true(lp_api_key_match("alpha-key-0001", keys, n));
    assert_false(lp_api_key_match("alpha-key-000", keys, n));
    assert_false(lp_api_key_match("alpha-key-00011", keys, n));
    assert_false(lp_api_key_match("", keys, n));
    assert_false(lp_api_key_match(NULL, keys, n));
    lp_api_keys_free(keys);
    /* a bad line is named, the key is not */
    const char *bad = "good-key-00001\nshort\n";
    lp_test_write(path, bad, strlen(bad));
    lp_err err;
    assert_int_equal(lp_api_keys_load(path, &keys, &n, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "line 2"));
    assert_null(strstr(err.msg, "short"));
    lp_test_write(path, "# nothing\n", 10);
    assert_int_equal(lp_api_keys_load(path, &keys, &n, &err), LP_EINVAL);
    free(path);
}

static void test_opts_and_routes(void **state)
{
    lp_server_opts o = lp_server_opts_default();
    assert_int_equal(lp_server_opts_check(&o, NULL), LP_OK);
    lp_err err;
    o.port = 70000;
    assert_int_equal(lp_server_opts_check(&o, &err), LP_EINVAL);
    assert_string_equal(err.msg, "opts.port: 70000 is above 65535");
    o = lp_server_opts_default();
    o.host = "localhost";
    assert_int_equal(lp_server_opts_check(&o, &err), LP_EINVAL);
    o = lp_server_opts_default();
    o.json_max_depth = 0;
    assert_int_equal(lp_server_opts_check(&o, &err), LP_EINVAL);
    static const lp_route bad[] = {{.method = "GET", .path = "/v1/x{id}", .handler = NULL}};
    lp_server *s = NULL;
    assert_int_equal(lp_server_new(bad, 1, NULL, NULL, &s, &err), LP_EINVAL);
    assert_null(s);
    static const lp_route dup[] = {
        {.method = "GET", .path = "/healthz", .handler = (lp_handler_fn)1},
    };
    assert_int_equal(lp_server_new(dup, 1, NULL, NULL, &s, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "shared endpoint"));
    lp_server_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swap_concurrent),
        cmocka_unit_test(test_swap_held_reference_outlives_swap),
        cmocka_unit_test(test_metrics_registry),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_json_body_and_fields),
        cmocka_unit_test(test_json_add_float),
        cmocka_unit_test(test_json_write),
        cmocka_unit_test(test_json_write_tree),
        cmocka_unit_test(test_api_keys),
        cmocka_unit_test(test_opts_and_routes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
