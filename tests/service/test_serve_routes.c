/*
 * test_serve_routes.c - every route and error path of the demo route table over real loopback
 * HTTP: echo, field specs, path/query parameters, auth, raw bytes, handler-returned statuses,
 * 404/405, request ids, keep-alive, the shared endpoints, /metrics parsed as Prometheus text,
 * the access-log line, and hostile JSON bodies (each a 4xx with the error shape, and the server
 * still serving afterwards).
 */
#include "lp_test.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_client.c"
#include "serve_demo.h"

static lp_server *g_srv;
static unsigned g_port;
static char *const g_keys[] = {"key-one-0123456789", "key-two-abcdefghij"};

static int setup(void **state)
{
    lp_server_opts o = lp_server_opts_default();
    o.threads = 2;
    o.name = "demo";
    o.version = "9.9.9";
    lp_err err;
    if (lp_server_new(demo_routes, DEMO_N_ROUTES, NULL, &o, &g_srv, &err) != LP_OK) return -1;
    if (lp_server_set_api_keys(g_srv, g_keys, 2, &err) != LP_OK) return -1;
    if (lp_server_start(g_srv, &err) != LP_OK) return -1;
    g_port = lp_server_port(g_srv);
    return g_port ? 0 : -1;
}

static int teardown(void **state)
{
    lp_server_free(g_srv);
    return 0;
}

static int req(const char *method, const char *path, const char *headers, const char *body,
               http_resp *r)
{
    return http_request(g_port, method, path, headers, body, body ? strlen(body) : 0, r);
}

static int req_json(const char *method, const char *path, const char *body, http_resp *r)
{
    return req(method, path, "Content-Type: application/json\r\n", body, r);
}

/* The response is the one error shape with this code; returns the message (static copy). */
static const char *error_shape(const http_resp *r, const char *code)
{
    static char msg[600];
    cJSON *j = cJSON_Parse(r->body);
    assert_non_null(j);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_true(cJSON_IsObject(e));
    assert_int_equal(cJSON_GetArraySize(j), 1);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    assert_true(cJSON_IsString(c) && cJSON_IsString(m));
    assert_string_equal(c->valuestring, code);
    snprintf(msg, sizeof msg, "%s", m->valuestring);
    cJSON_Delete(j);
    char ct[128];
    assert_non_null(http_header(r, "Content-Type", ct, sizeof ct));
    assert_string_equal(ct, "application/json");
    return msg;
}

static void assert_still_serving(void)
{
    http_resp r;
    assert_int_equal(req("GET", "/healthz", NULL, NULL, &r), 200);
    assert_non_null(strstr(r.body, "\"ok\""));
    http_resp_free(&r);
}

static void test_echo_and_request_id(void **state)
{
    http_resp r;
    assert_int_equal(req_json("POST", "/v1/echo", "{\"a\":[1,2,{\"b\":\"\xc3\xa9\"}]}", &r), 200);
    cJSON *j = cJSON_Parse(r.body);
    assert_non_null(j);
    const cJSON *a = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "echo"), "a");
    assert_int_equal(cJSON_GetArraySize(a), 3);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(a, 2), "b")->valuestring,
                        "\xc3\xa9");
    char id[80];
    assert_non_null(http_header(&r, "X-Request-Id", id, sizeof id));
    assert_int_equal(strlen(id), 16);
    assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, id);
    cJSON_Delete(j);
    http_resp_free(&r);

    /* two generated ids differ */
    char id2[80];
    assert_int_equal(req_json("POST", "/v1/echo", "{}", &r), 200);
    http_header(&r, "X-Request-Id", id2, sizeof id2);
    assert_string_not_equal(id, id2);
    http_resp_free(&r);

    /* a sane client id is kept, an insane one replaced */
    assert_int_equal(req("GET", "/healthz", "X-Request-Id: trace-42.a:b_c\r\n", NULL, &r), 200);
    assert_string_equal(http_header(&r, "X-Request-Id", id, sizeof id), "trace-42.a:b_c");
    http_resp_free(&r);
    assert_int_equal(req("GET", "/healthz", "X-Request-Id: bad id\"<x>\r\n", NULL, &r), 200);
    assert_int_equal(strlen(http_header(&r, "X-Request-Id", id, sizeof id)), 16);
    http_resp_free(&r);
    /* error replies carry an id too */
    assert_int_equal(req("GET", "/nope", NULL, NULL, &r), 404);
    assert_non_null(http_header(&r, "X-Request-Id", id, sizeof id));
    http_resp_free(&r);
}

static void test_path_and_query_params(void **state)
{
    http_resp r;
    assert_int_equal(req("GET", "/v1/sessions/s-17/items/42?q=hello%20world&z=1", NULL, NULL, &r),
                     200);
    cJSON *j = cJSON_Parse(r.body);
    assert_string_equal(cJSON_GetObjectItem(j, "id")->valuestring, "s-17");
    assert_string_equal(cJSON_GetObjectItem(j, "item")->valuestring, "42");
    assert_string_equal(cJSON_GetObjectItem(j, "q")->valuestring, "hello world");
    cJSON_Delete(j);
    http_resp_free(&r);
    /* an empty parameter segment, or extra segments, do not match */
    assert_int_equal(req("GET", "/v1/sessions//items/42", NULL, NULL, &r), 404);
    error_shape(&r, "not_found");
    http_resp_free(&r);
    assert_int_equal(req("GET", "/v1/sessions/a/items/42/x", NULL, NULL, &r), 404);
    http_resp_free(&r);
}

static void test_not_found_and_method_not_allowed(void **state)
{
    http_resp r;
    assert_int_equal(req("GET", "/v2/unknown", NULL, NULL, &r), 404);
    assert_non_null(strstr(error_shape(&r, "not_found"), "/v2/unknown"));
    http_resp_free(&r);
    assert_int_equal(req("PUT", "/v1/raw", NULL, "x", &r), 405);
    error_shape(&r, "method_not_allowed");
    char allow[64];
    assert_non_null(http_header(&r, "Allow", allow, sizeof allow));
    assert_string_equal(allow, "POST, GET");
    http_resp_free(&r);
    assert_int_equal(req("POST", "/healthz", NULL, "{}", &r), 405);
    assert_string_equal(http_header(&r, "Allow", allow, sizeof allow), "GET");
    http_resp_free(&r);
}

static void test_field_specs(void **state)
{
    static const struct {
        const char *body;
        int status;
        const char *code, *needle;
    } cases[] = {
        {"{\"text\":\"abc\",\"k\":3,\"weight\":0.5,\"flag\":true,\"tags\":[1],\"meta\":{}}", 200,
         NULL, "\"length\":3"},
        {"{\"text\":\"abc\"}", 200, NULL, "\"k\":5"},
        {"{\"text\":\"abc\",\"k\":null}", 200, NULL, "\"k\":5"},
        {"{\"text\":12}", 400, "invalid_argument", "field 'text': expected a string, got a number"},
        {"{\"k\":2}", 400, "invalid_argument", "field 'text': missing"},
        {"{\"text\":null}", 400, "invalid_argument", "field 'text': missing"},
        {"{\"text\":\"a\",\"extra\":1}", 400, "invalid_argument", "field 'extra': unknown field"},
        {"{\"text\":\"a\",\"k\":0}", 400, "invalid_argument", "field 'k': 0 is below the minimum 1"},
        {"{\"text\":\"a\",\"k\":11}", 400, "invalid_argument", "field 'k': 11 is above"},
        {"{\"text\":\"a\",\"k\":2.5}", 400, "invalid_argument", "field 'k': expected an integer"},
        {"{\"text\":\"a\",\"k\":\"2\"}", 400, "invalid_argument", "field 'k': expected an integer, got a string"},
        {"{\"text\":\"a\",\"weight\":1.5}", 400, "invalid_argument", "field 'weight'"},
        {"{\"text\":\"a\",\"flag\":1}", 400, "invalid_argument", "field 'flag': expected a bool"},
        {"{\"text\":\"a\",\"tags\":[1,2,3,4]}", 400, "invalid_argument", "field 'tags': 4 items"},
        {"{\"text\":\"a\",\"tags\":{}}", 400, "invalid_argument", "field 'tags': expected an array"},
        {"{\"text\":\"a\",\"meta\":[]}", 400, "invalid_argument", "field 'meta': expected an object"},
        {"{\"text\":\"a\",\"text\":5}", 400, "invalid_argument", "field 'text': given more than once"},
        {"[1,2]", 400, "invalid_argument", "expected a JSON object, got an array"},
        {"\"text\"", 400, "invalid_argument", "expected a JSON object, got a string"},
        {"{\"text\":\"forbidden\"}", 400, "invalid_argument", "the word 'forbidden'"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        http_resp r;
        int st = req_json("POST", "/v1/score", cases[i].body, &r);
        if (st != cases[i].status || !strstr(cases[i].code ? error_shape(&r, cases[i].code) : r.body,
                                             cases[i].needle)) {
            fail_msg("case %zu %s: got %d %s", i, cases[i].body, st, r.body);
        }
        http_resp_free(&r);
    }
    /* a string longer than max_len */
    char body[300];
    memset(body, 0, sizeof body);
    strcpy(body, "{\"text\":\"");
    memset(body + strlen(body), 'x', 101);
    strcat(body, "\"}");
    http_resp r;
    assert_int_equal(req_json("POST", "/v1/score", body, &r), 400);
    assert_non_null(strstr(error_shape(&r, "invalid_argument"), "field 'text': 101 bytes"));
    http_resp_free(&r);
    assert_still_serving();
}

static void test_hostile_json(void **state)
{
    static const struct {
        const char *body;
        const char *needle;
    } cases[] = {
        {"{\"a\":", "unexpected end of input"},
        {"{\"a\" 1}", "invalid JSON at byte 5 (line 1, column 6)"},
        {"{\"a\":1,\n \"b\":}", "(line 2, column 6)"},
        {"{\"a\":1}garbage", "invalid JSON at byte 7"},
        {"{\"a\":NaN}", "invalid JSON"},
        {"{\"a\":Infinity}", "invalid JSON"},
        {"{\"a\":-Infinity}", "invalid JSON"},
        {"[nan]", "invalid JSON"},
        {"{\"a\":1e999}", "out of range"},
        {"{\"a\":-1e400}", "out of range"},
        {"{\"a\":\"\xff\"}", "invalid UTF-8 at byte 6"},
        {"{\"a\":\"\xc0\xaf\"}", "invalid UTF-8"},           /* overlong '/' */
        {"{\"a\":\"\xed\xa0\x80\"}", "invalid UTF-8"},       /* a UTF-16 surrogate */
        {"{\"a\":\"\xf4\x90\x80\x80\"}", "invalid UTF-8"},   /* above U+10FFFF */
        {"{\"a\":\"\xe2\x82\"}", "invalid UTF-8"},           /* truncated sequence */
        {"{\"a\":\"\\ud800\"}", "invalid JSON"},            /* lone surrogate escape */
        {"{\"a\":\"x\ty\"}", "raw control byte 0x09"},
        {"", "empty body"},
        {"   \n", "empty body"},
        {"{'a':1}", "invalid JSON"},
        {"{\"a\":01}", "malformed number"},
        {"{\"a\":1.}", "malformed number"},
        {"{\"a\":-}", "malformed number"},
        {"{\"a\":.5}", "invalid JSON"},
        {"{\"a\":1e+}", "malformed number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        http_resp r;
        int st = req_json("POST", "/v1/echo", cases[i].body, &r);
        const char *code = strstr(cases[i].needle, "empty") ? "invalid_argument" : "parse_error";
        if (st != 400 || !strstr(error_shape(&r, code), cases[i].needle)) {
            fail_msg("case %zu: got %d %s", i, st, r.body);
        }
        http_resp_free(&r);
        assert_still_serving();
    }
    /* a huge integer literal: 400 digits overflow a double */
    char big[512] = "{\"a\":";
    memset(big + 5, '9', 400);
    strcpy(big + 405, "}");
    http_resp r;
    assert_int_equal(req_json("POST", "/v1/echo", big, &r), 400);
    assert_non_null(strstr(error_shape(&r, "parse_error"), "out of range"));
    http_resp_free(&r);
    /* a big but finite number is fine */
    assert_int_equal(req_json("POST", "/v1/echo", "{\"a\":1e300}", &r), 200);
    http_resp_free(&r);

    /* 10,000 levels of nesting, arrays and objects */
    size_t depth = 10000;
    char *deep = malloc(depth * 6 + 16);
    size_t n = 0;
    for (size_t i = 0; i < depth; i++) deep[n++] = '[';
    for (size_t i = 0; i < depth; i++) deep[n++] = ']';
    deep[n] = '\0';
    assert_int_equal(req_json("POST", "/v1/echo", deep, &r), 400);
    assert_non_null(strstr(error_shape(&r, "parse_error"), "nesting deeper than 64"));
    http_resp_free(&r);
    n = 0;
    for (size_t i = 0; i < depth; i++) n += (size_t)sprintf(deep + n, "{\"a\":");
    deep[n++] = '1';
    for (size_t i = 0; i < depth; i++) deep[n++] = '}';
    deep[n] = '\0';
    assert_int_equal(req_json("POST", "/v1/echo", deep, &r), 400);
    assert_non_null(strstr(error_shape(&r, "parse_error"), "nesting deeper"));
    http_resp_free(&r);
    /* brackets inside strings do not count as nesting */
    n = (size_t)sprintf(deep, "{\"a\":\"");
    for (size_t i = 0; i < 5000; i++) deep[n++] = '[';
    n += (size_t)sprintf(deep + n, "\"}");
    assert_int_equal(req_json("POST", "/v1/echo", deep, &r), 200);
    http_resp_free(&r);
    free(deep);
    /* bytes that are not JSON with a JSON content type on a route without json */
    assert_int_equal(req_json("POST", "/v1/raw", "{nope", &r), 400);
    error_shape(&r, "parse_error");
    http_resp_free(&r);
    /* ... and other content is passed through raw */
    assert_int_equal(req("POST", "/v1/raw", "Content-Type: text/plain\r\n", "{nope", &r), 201);
    http_resp_free(&r);
    assert_still_serving();
}

static void test_auth(void **state)
{
    http_resp r;
    assert_int_equal(req_json("POST", "/v1/secret", "{}", &r), 401);
    error_shape(&r, "unauthorized");
    char v[64];
    assert_string_equal(http_header(&r, "WWW-Authenticate", v, sizeof v), "Bearer");
    http_resp_free(&r);
    assert_int_equal(req("POST", "/v1/secret", "Authorization: Basic eHg6eXk=\r\n", "{}", &r), 401);
    http_resp_free(&r);
    assert_int_equal(req("POST", "/v1/secret", "Authorization: Bearer key-one-0123456788\r\n", "{}",
                         &r), 403);
    error_shape(&r, "forbidden");
    http_resp_free(&r);
    assert_int_equal(req("POST", "/v1/secret", "Authorization: Bearer key-one-012345678\r\n", "{}",
                         &r), 403);
    http_resp_free(&r);
    assert_int_equal(req("POST", "/v1/secret", "Authorization: Bearer \r\n", "{}", &r), 403);
    http_resp_free(&r);
    assert_int_equal(req("POST", "/v1/secret", "Authorization: Bearer key-two-abcdefghij\r\n", "{}",
                         &r), 200);
    assert_non_null(strstr(r.body, "granted"));
    http_resp_free(&r);
    assert_int_equal(req("POST", "/v1/secret", "Authorization: bearer key-one-0123456789\r\n",
                         "{}", &r), 200);
    http_resp_free(&r);
    /* shared endpoints are open */
    assert_int_equal(req("GET", "/version", NULL, NULL, &r), 200);
    http_resp_free(&r);
}

static void test_raw_and_handler_statuses(void **state)
{
    http_resp r;
    assert_int_equal(req("GET", "/v1/raw", NULL, NULL, &r), 201);
    assert_string_equal(r.body, "hello");
    char v[64];
    assert_string_equal(http_header(&r, "X-Demo", v, sizeof v), "raw");
    assert_string_equal(http_header(&r, "Content-Type", v, sizeof v), "text/plain");
    http_resp_free(&r);
    assert_int_equal(req("GET", "/v1/state", NULL, NULL, &r), 409);
    assert_string_equal(error_shape(&r, "bad_state"), lp_strerror(LP_ESTATE));
    http_resp_free(&r);
    assert_int_equal(req("DELETE", "/v1/nothing", NULL, NULL, &r), 204);
    assert_int_equal(r.body_len, 0);
    http_resp_free(&r);
}

static void test_small_body_limit(void **state)
{
    char body[128];
    memset(body, ' ', 100);
    memcpy(body + 90, "{\"a\":1}", 8);
    http_resp r;
    assert_int_equal(req_json("POST", "/v1/small", body, &r), 413);
    assert_non_null(strstr(error_shape(&r, "too_large"), "limit is 64"));
    http_resp_free(&r);
    /* chunked, no Content-Length: stored up to the limit, then discarded, then 413 */
    int fd = http_connect(g_port);
    char chunked[512];
    char part[65];
    memset(part, 'x', 64);
    part[64] = '\0';
    snprintf(chunked, sizeof chunked,
             "POST /v1/small HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
             "Content-Type: application/json\r\n\r\n40\r\n%s\r\n10\r\n%.16s\r\n0\r\n\r\n",
             part, part);
    assert_true(http_send_all(fd, chunked, strlen(chunked)));
    assert_true(http_read_response(fd, &r, 5000));
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(error_shape(&r, "too_large"), "more than 64 bytes"));
    http_resp_free(&r);
    /* the connection stays usable (the body was read, not stored) */
    size_t n;
    char *again = http_format("GET", "/healthz", NULL, NULL, 0, true, &n);
    assert_true(http_send_all(fd, again, n));
    free(again);
    assert_true(http_read_response(fd, &r, 5000));
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    close(fd);
    /* exactly at the limit is fine */
    memset(body, ' ', 64);
    memcpy(body + 56, "{\"a\":1}", 8);
    assert_int_equal(req_json("POST", "/v1/small", body, &r), 200);
    http_resp_free(&r);
}

static void test_keep_alive(void **state)
{
    int fd = http_connect(g_port);
    assert_true(fd >= 0);
    for (int i = 0; i < 5; i++) {
        size_t n;
        char *q = http_format("POST", "/v1/echo", "Content-Type: application/json\r\n",
                              "{\"i\":1}", 7, true, &n);
        assert_true(http_send_all(fd, q, n));
        free(q);
        http_resp r;
        assert_true(http_read_response(fd, &r, 5000));
        assert_int_equal(r.status, 200);
        assert_false(r.closed);
        http_resp_free(&r);
    }
    close(fd);
}

static void test_shared_endpoints(void **state)
{
    http_resp r;
    assert_int_equal(req("GET", "/readyz", NULL, NULL, &r), 503);
    error_shape(&r, "not_ready");
    http_resp_free(&r);
    lp_server_set_ready(g_srv, true);
    assert_int_equal(req("GET", "/readyz", NULL, NULL, &r), 200);
    http_resp_free(&r);
    lp_server_set_ready(g_srv, false);
    assert_int_equal(req("GET", "/readyz", NULL, NULL, &r), 503);
    http_resp_free(&r);
    assert_int_equal(req("GET", "/version", NULL, NULL, &r), 200);
    cJSON *j = cJSON_Parse(r.body);
    assert_string_equal(cJSON_GetObjectItem(j, "name")->valuestring, "demo");
    assert_string_equal(cJSON_GetObjectItem(j, "version")->valuestring, "9.9.9");
    assert_string_equal(cJSON_GetObjectItem(j, "lepton")->valuestring, LP_VERSION_STRING);
    cJSON_Delete(j);
    http_resp_free(&r);
    /* no reload callback: no admin route */
    assert_int_equal(req("POST", "/v1/admin/reload", NULL, "", &r), 404);
    http_resp_free(&r);
}

/* Parse Prometheus text: every sample line must be `name{labels} value` of a family announced
 * by # TYPE; returns the value of the exact series, or -1 when absent. */
static double prom_value(const char *text, const char *series)
{
    double found = -1;
    char type_of[64][128];
    size_t n_types = 0;
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, '\n');
        assert_non_null(e); /* every line ends with \n */
        char line[1024];
        size_t n = (size_t)(e - p);
        assert_true(n < sizeof line);
        memcpy(line, p, n);
        line[n] = '\0';
        p = e + 1;
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[128], type[32];
            assert_int_equal(sscanf(line + 7, "%127s %31s", name, type), 2);
            assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
                        !strcmp(type, "histogram"));
            if (n_types < 64) snprintf(type_of[n_types++], 128, "%s", name);
            continue;
        }
        if (line[0] == '#') continue;
        char *sp = strrchr(line, ' ');
        assert_non_null(sp);
        char *end;
        double v = strtod(sp + 1, &end);
        assert_true(*end == '\0');
        *sp = '\0';
        size_t base = strcspn(line, "{");
        bool known = false;
        for (size_t i = 0; i < n_types && !known; i++) {
            size_t tl = strlen(type_of[i]);
            known = strncmp(line, type_of[i], tl) == 0 &&
                    (base == tl || !strncmp(line + tl, "_bucket", 7) ||
                     !strncmp(line + tl, "_sum", 4) || !strncmp(line + tl, "_count", 6));
        }
        if (!known) fail_msg("sample of an undeclared family: %s", line);
        if (line[base] == '{') assert_int_equal(line[strlen(line) - 1], '}');
        if (strcmp(line, series) == 0) found = v;
    }
    return found;
}

static char *get_metrics(void)
{
    http_resp r;
    assert_int_equal(req("GET", "/metrics", NULL, NULL, &r), 200);
    char ct[128];
    assert_string_equal(http_header(&r, "Content-Type", ct, sizeof ct),
                        "text/plain; version=0.0.4; charset=utf-8");
    free(r.head);
    return r.body;
}

static void test_metrics(void **state)
{
    static const char *ok = "lepton_http_requests_total{route=\"/v1/echo\",method=\"POST\","
                            "status=\"200\"}";
    static const char *bad = "lepton_http_requests_total{route=\"/v1/echo\",method=\"POST\","
                             "status=\"400\"}";
    static const char *perr = "lepton_http_errors_total{code=\"parse_error\"}";
    static const char *cnt = "lepton_http_request_duration_seconds_count{route=\"/v1/echo\"}";
    static const char *inf =
        "lepton_http_request_duration_seconds_bucket{route=\"/v1/echo\",le=\"+Inf\"}";
    /* the baseline once the earlier tests' requests are all counted (a completion may land
     * after its client had the reply, the later the slower the build, e.g. under ASan): two
     * reads 20 ms apart that agree */
    char *m0 = get_metrics();
    for (int tries = 0; tries < 50; tries++) {
        usleep(20000);
        char *again = get_metrics(); /* /metrics counts its own reads: compare /v1/echo's */
        bool same = prom_value(again, cnt) == prom_value(m0, cnt) &&
                    prom_value(again, ok) == prom_value(m0, ok) &&
                    prom_value(again, bad) == prom_value(m0, bad) &&
                    prom_value(again, perr) == prom_value(m0, perr);
        free(m0);
        m0 = again;
        if (same) break;
    }
    double ok0 = prom_value(m0, ok), bad0 = prom_value(m0, bad), perr0 = prom_value(m0, perr);
    double cnt0 = prom_value(m0, cnt);
    free(m0);
    http_resp r;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(req_json("POST", "/v1/echo", "{}", &r), 200);
        http_resp_free(&r);
    }
    assert_int_equal(req_json("POST", "/v1/echo", "{", &r), 400);
    http_resp_free(&r);
    /* metrics are recorded when MHD reports a request complete, which may come just after the
     * client has the reply: poll for a moment */
    char *m1 = NULL;
    for (int tries = 0; tries < 100; tries++) {
        free(m1);
        m1 = get_metrics();
        if (prom_value(m1, cnt) == (cnt0 < 0 ? 0 : cnt0) + 4 &&
            prom_value(m1, bad) == (bad0 < 0 ? 0 : bad0) + 1)
            break;
        usleep(10000);
    }
    assert_true(prom_value(m1, ok) == (ok0 < 0 ? 0 : ok0) + 3);
    assert_true(prom_value(m1, bad) == (bad0 < 0 ? 0 : bad0) + 1);
    assert_true(prom_value(m1, perr) == (perr0 < 0 ? 0 : perr0) + 1);
    assert_true(prom_value(m1, cnt) == (cnt0 < 0 ? 0 : cnt0) + 4);
    assert_true(prom_value(m1, inf) == prom_value(m1, cnt));
    /* buckets are cumulative */
    double prev = 0;
    for (const char *p = strstr(m1, "duration_seconds_bucket{route=\"/v1/echo\""); p;
         p = strstr(p + 1, "duration_seconds_bucket{route=\"/v1/echo\"")) {
        double v = strtod(strchr(p, '}') + 2, NULL);
        assert_true(v >= prev);
        prev = v;
    }
    /* the /metrics request itself is in flight while it is answered */
    assert_true(prom_value(m1, "lepton_http_in_flight") >= 1);
    assert_non_null(strstr(m1, "# TYPE lepton_http_request_duration_seconds histogram\n"));
    free(m1);
}

static void test_access_log(void **state)
{
    char *path = lp_test_tmpfile("access.log");
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    dup2(fileno(f), 2);
    lp_log_level lvl = lp_log_get_level();
    lp_log_set_level(LP_LOG_LEVEL_INFO);
    http_resp r;
    assert_int_equal(req("POST", "/v1/secret?token=QUERYSECRET",
                         "Authorization: Bearer key-one-0123456789\r\nX-Request-Id: log-test-1\r\n"
                         "Content-Type: application/json\r\n",
                         "{\"pw\":\"BODYSECRET\"}", &r),
                     200);
    http_resp_free(&r);
    assert_int_equal(req("GET", "/healthz", NULL, NULL, &r), 200); /* completes the first */
    http_resp_free(&r);
    usleep(50000);
    lp_log_set_level(lvl);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(f);
    uint8_t *data;
    size_t len;
    assert_int_equal(lp_file_read(path, &data, &len, NULL), LP_OK);
    const char *line = strstr((char *)data, "\"id\":\"log-test-1\"");
    assert_non_null(line);
    while (line > (char *)data && line[-1] != '\n') line--;
    cJSON *j = cJSON_ParseWithOpts(line, NULL, 0);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "method")->valuestring, "POST");
    assert_string_equal(cJSON_GetObjectItem(j, "path")->valuestring, "/v1/secret");
    assert_int_equal(cJSON_GetObjectItem(j, "status")->valueint, 200);
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "bytes")));
    assert_true(cJSON_IsNumber(cJSON_GetObjectItem(j, "latency_us")));
    assert_true(cJSON_IsString(cJSON_GetObjectItem(j, "ts")));
    cJSON_Delete(j);
    assert_null(strstr((char *)data, "BODYSECRET"));
    assert_null(strstr((char *)data, "QUERYSECRET"));
    assert_null(strstr((char *)data, "key-one-0123456789"));
    free(data);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_echo_and_request_id),
        cmocka_unit_test(test_path_and_query_params),
        cmocka_unit_test(test_not_found_and_method_not_allowed),
        cmocka_unit_test(test_field_specs),
        cmocka_unit_test(test_hostile_json),
        cmocka_unit_test(test_auth),
        cmocka_unit_test(test_raw_and_handler_statuses),
        cmocka_unit_test(test_small_body_limit),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_shared_endpoints),
        cmocka_unit_test(test_metrics),
        cmocka_unit_test(test_access_log),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
