/*
 * test_serve_limits.c - resource limits over loopback: a 10 MB body refused with 413 before it is
 * read, a slow client that never finishes its body timed out while others are served, and many
 * idle connections held open while a normal request still succeeds; query strings with many
 * parameters or long URLs answered (414), not left hanging.
 */
#include "lp_test.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "http_client.c"
#include "serve_demo.h"

static lp_server *g_srv;
static unsigned g_port;
#define IDLE_WANTED 2000

static int setup(void **state)
{
    lp_server_opts o = lp_server_opts_default();
    o.threads = 2;
    o.connection_timeout_s = 1;
    o.connection_limit = IDLE_WANTED + 100;
    lp_err err;
    if (lp_server_new(demo_routes, DEMO_N_ROUTES, NULL, &o, &g_srv, &err) != LP_OK) return -1;
    if (lp_server_start(g_srv, &err) != LP_OK) return -1;
    g_port = lp_server_port(g_srv);
    return 0;
}

static int teardown(void **state)
{
    lp_server_free(g_srv);
    return 0;
}

static void assert_still_serving(void)
{
    http_resp r;
    assert_int_equal(http_request(g_port, "POST", "/v1/echo", "Content-Type: application/json\r\n",
                                  "{\"x\":1}", 7, &r),
                     200);
    http_resp_free(&r);
}

static void test_ten_megabyte_body(void **state)
{
    size_t big = 10u << 20;
    char *body = malloc(big);
    memset(body, ' ', big);
    int fd = http_connect(g_port);
    assert_true(fd >= 0);
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     big);
    assert_true(http_send_all(fd, head, (size_t)n));
    /* The reply comes after the headers, before (almost all of) the body: send the body in
     * pieces while watching for the reply; the server closes without reading the rest. */
    size_t sent = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT};
        assert_true(poll(&p, 1, 5000) > 0);
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) break;
        if (sent < big) {
            ssize_t w = send(fd, body + sent, big - sent > 65536 ? 65536 : big - sent,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w <= 0) break;
            sent += (size_t)w;
        }
    }
    http_resp r;
    assert_true(http_read_response(fd, &r, 5000));
    assert_int_equal(r.status, 413);
    assert_non_null(strstr(r.body, "\"code\":\"too_large\""));
    assert_non_null(strstr(r.body, "10485760 bytes, the limit is 1048576"));
    assert_true(sent < big); /* it was refused, not read */
    http_resp_free(&r);
    close(fd);
    free(body);
    assert_still_serving();
}

static void test_slow_client_times_out(void **state)
{
    int slow = http_connect(g_port);
    assert_true(slow >= 0);
    const char *head = "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Content-Length: 100\r\n\r\n{\"a\":";
    assert_true(http_send_all(slow, head, strlen(head)));
    /* others are served meanwhile */
    for (int i = 0; i < 5; i++) assert_still_serving();
    uint64_t t0 = lp_time_ns();
    assert_true(http_wait_closed(slow, 5000)); /* 1 s timeout, closed without a reply */
    double waited = lp_time_since(t0);
    assert_true(waited < 4.0);
    close(slow);
    /* a client that sends nothing at all is closed too */
    int idle = http_connect(g_port);
    assert_true(http_wait_closed(idle, 5000));
    close(idle);
    assert_still_serving();
}

static void test_many_idle_connections(void **state)
{
    /* Each connection is one fd here and one in the server (same process): raise the soft
     * limit towards the hard one, and scale down when the hard limit is too low. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rlim_t need = 2 * IDLE_WANTED + 200;
    if (rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max < need ? rl.rlim_max : need;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    size_t want = IDLE_WANTED;
    if (rl.rlim_cur < need) want = rl.rlim_cur > 400 ? (size_t)(rl.rlim_cur - 200) / 2 : 100;
    int *fds = calloc(want, sizeof *fds);
    size_t open_n = 0;
    for (; open_n < want; open_n++) {
        fds[open_n] = http_connect(g_port);
        if (fds[open_n] < 0) break;
    }
    assert_int_equal(open_n, want);
    /* a few of them send half a request line and stop */
    for (size_t i = 0; i < open_n; i += 100) http_send_all(fds[i], "GET /hea", 8);
    assert_still_serving();
    http_resp r;
    assert_int_equal(http_request(g_port, "GET", "/v1/sessions/a/items/b", NULL, NULL, 0, &r), 200);
    http_resp_free(&r);
    for (size_t i = 0; i < open_n; i++) close(fds[i]);
    free(fds);
    assert_still_serving();
}

/* A GET whose path is /v1/sessions/a/items/b plus n parameters of val_len bytes each. */
static int get_query(size_t n, size_t val_len, http_resp *r)
{
    size_t cap = 64 + n * (val_len + 16);
    char *path = malloc(cap);
    assert_non_null(path);
    size_t o = (size_t)snprintf(path, cap, "/v1/sessions/a/items/b");
    for (size_t i = 0; i < n; i++) {
        o += (size_t)snprintf(path + o, cap - o, "%cx%zu=", i ? '&' : '?', i);
        memset(path + o, 'v', val_len);
        o += val_len;
        path[o] = '\0';
    }
    int st = http_request(g_port, "GET", path, NULL, NULL, 0, r);
    free(path);
    return st;
}

static void test_query_limits(void **state)
{
    http_resp r;
    /* a few parameters, and one long one, are served */
    assert_int_equal(get_query(50, 8, &r), 200);
    http_resp_free(&r);
    assert_int_equal(get_query(1, 16000, &r), 200);
    http_resp_free(&r);
    /* libmicrohttpd alone leaves these connections hanging until the timeout (1 s here): the
     * server answers them at once with a JSON 414 that says why (5,000 parameters make a URL
     * longer than the pool, which libmicrohttpd refuses itself) */
    size_t many[] = {101, 1000, 5000};
    for (size_t i = 0; i < sizeof many / sizeof *many; i++) {
        uint64_t t0 = lp_time_ns();
        assert_int_equal(get_query(many[i], 1, &r), 414);
        assert_true(lp_time_since(t0) < 0.5);
        if (i < 2) assert_non_null(strstr(r.body, "query string: more than 100 parameters"));
        http_resp_free(&r);
    }
    /* 90 parameters of 250 bytes: few enough, but more than the 32 KiB pool holds parsed */
    assert_int_equal(get_query(90, 250, &r), 414);
    http_resp_free(&r);
    /* a URL longer than the pool: libmicrohttpd's own 414 */
    assert_int_equal(get_query(1, 40000, &r), 414);
    http_resp_free(&r);
    assert_still_serving();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ten_megabyte_body),
        cmocka_unit_test(test_slow_client_times_out),
        cmocka_unit_test(test_many_idle_connections),
        cmocka_unit_test(test_query_limits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
