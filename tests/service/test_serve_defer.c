/*
 * test_serve_defer.c - deferred answers of the serve layer (lp_req_defer, lp_deferred_finish)
 * over loopback HTTP: an answer finished later by another thread arrives with its status,
 * body and request id; one finished before the handler even returned arrives too; several
 * deferred requests on one pool thread do not block each other (the pool thread is free while
 * they wait); an unset deferred response answers 500; stopping the server waits for a pending
 * deferred answer instead of dropping the suspended connection.
 */
#include "lp_test.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_client.c"

typedef struct job {
    lp_deferred *d;
    int delay_ms;
    int mode; /* 0 body, 1 error, 2 unset */
} job;

static void *finisher(void *arg)
{
    job *j = arg;
    usleep((useconds_t)j->delay_ms * 1000);
    lp_res *res = lp_deferred_res(j->d);
    if (j->mode == 0)
        lp_res_bytes(res, 200, "text/plain", "late", 4);
    else if (j->mode == 1)
        lp_http_error(res, LP_EEXIST, "deferred conflict");
    lp_deferred_finish(j->d);
    free(j);
    return NULL;
}

/* /later?ms=N&mode=M: deferred, finished by a detached thread after N ms; ms=0 finishes in the
 * handler itself, before it returns. */
static lp_status h_later(const lp_req *req, lp_res *res, void *user)
{
    (void)res;
    (void)user;
    const char *ms = lp_req_query(req, "ms"), *mode = lp_req_query(req, "mode");
    job *j = calloc(1, sizeof *j);
    j->delay_ms = ms ? atoi(ms) : 0;
    j->mode = mode ? atoi(mode) : 0;
    j->d = lp_req_defer(req);
    assert_non_null(j->d);
    lp_res_bytes(res, 200, "text/plain", "ignored", 7); /* dropped: the answer is deferred */
    if (j->delay_ms == 0) {
        finisher(j);
        return LP_OK;
    }
    pthread_t t;
    pthread_create(&t, NULL, finisher, j);
    pthread_detach(t);
    return LP_OK;
}

static const lp_route routes[] = {{.method = "GET", .path = "/later", .handler = h_later}};

static lp_server *start(void)
{
    lp_err err;
    lp_server *s = NULL;
    lp_server_opts o = lp_server_opts_default();
    o.threads = 1; /* one pool thread: deferred requests must not hold it */
    assert_int_equal(lp_server_new(routes, 1, NULL, &o, &s, &err), LP_OK);
    assert_int_equal(lp_server_start(s, &err), LP_OK);
    return s;
}

typedef struct get_arg {
    unsigned port;
    const char *path;
    int status;
    char body[64];
    double ms;
} get_arg;

static void *get_thread(void *arg)
{
    get_arg *g = arg;
    http_resp r;
    uint64_t t0 = lp_time_ns();
    g->status = http_request(g->port, "GET", g->path, NULL, NULL, 0, &r);
    g->ms = (double)(lp_time_ns() - t0) / 1e6;
    snprintf(g->body, sizeof g->body, "%s", r.body ? r.body : "");
    http_resp_free(&r);
    return NULL;
}

static void test_deferred_answers(void **state)
{
    (void)state;
    lp_server *s = start();
    unsigned port = lp_server_port(s);
    http_resp r;
    assert_int_equal(http_request(port, "GET", "/later?ms=30", NULL, NULL, 0, &r), 200);
    assert_string_equal(r.body, "late");
    char id[64];
    assert_non_null(http_header(&r, "X-Request-Id", id, sizeof id));
    http_resp_free(&r);
    assert_int_equal(http_request(port, "GET", "/later?ms=0", NULL, NULL, 0, &r), 200);
    assert_string_equal(r.body, "late");
    http_resp_free(&r);
    assert_int_equal(http_request(port, "GET", "/later?ms=5&mode=1", NULL, NULL, 0, &r), 409);
    assert_non_null(strstr(r.body, "deferred conflict"));
    http_resp_free(&r);
    assert_int_equal(http_request(port, "GET", "/later?ms=5&mode=2", NULL, NULL, 0, &r), 500);
    assert_non_null(strstr(r.body, "internal_error"));
    http_resp_free(&r);

    /* four requests of 300 ms each on one pool thread: together well under 4 x 300 ms */
    get_arg g[4];
    pthread_t t[4];
    uint64_t t0 = lp_time_ns();
    for (int i = 0; i < 4; i++) {
        g[i] = (get_arg){.port = port, .path = "/later?ms=300"};
        pthread_create(&t[i], NULL, get_thread, &g[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(g[i].status, 200);
        assert_string_equal(g[i].body, "late");
    }
    assert_true((double)(lp_time_ns() - t0) / 1e6 < 1000);

    /* stop while one is pending: the stop waits for it, the client gets its answer */
    get_arg p = {.port = port, .path = "/later?ms=400"};
    pthread_t pt;
    pthread_create(&pt, NULL, get_thread, &p);
    usleep(100000);
    lp_server_free(s);
    pthread_join(pt, NULL);
    assert_int_equal(p.status, 200);
    assert_string_equal(p.body, "late");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deferred_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
