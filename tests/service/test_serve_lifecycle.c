/*
 * test_serve_lifecycle.c - graceful stop (an in-flight request finishes, new connections are
 * refused), lp_server_run_until_signal under SIGTERM and SIGHUP, and the reload route with a
 * hot-swapped object: a good reload installs the new generation, a failed one keeps the old.
 */
#include "lp_test.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_client.c"
#include "serve_demo.h"

typedef struct slow_call {
    unsigned port;
    int status;
    char body[256];
} slow_call;

static void *call_slow(void *arg)
{
    slow_call *c = arg;
    http_resp r;
    c->status = http_request(c->port, "GET", "/v1/slow", NULL, NULL, 0, &r);
    if (r.body) snprintf(c->body, sizeof c->body, "%s", r.body);
    http_resp_free(&r);
    return NULL;
}

static lp_server *start_demo(void)
{
    lp_server_opts o = lp_server_opts_default();
    o.threads = 2;
    lp_server *s;
    lp_err err;
    assert_int_equal(lp_server_new(demo_routes, DEMO_N_ROUTES, NULL, &o, &s, &err), LP_OK);
    assert_int_equal(lp_server_start(s, &err), LP_OK);
    return s;
}

/* Waits up to 5 s (2500 x 2 ms): generous, since a loaded 2-core CI machine can stall a thread
 * for over a second. */
static void wait_in_flight(lp_server *s)
{
    for (int i = 0; i < 2500 && lp_server_in_flight(s) == 0; i++) usleep(2000);
    assert_true(lp_server_in_flight(s) >= 1);
}

static void test_graceful_stop_finishes_in_flight(void **state)
{
    lp_server *s = start_demo();
    slow_call c = {.port = lp_server_port(s)};
    pthread_t t;
    pthread_create(&t, NULL, call_slow, &c);
    wait_in_flight(s);
    lp_server_stop(s); /* returns after the slow handler (400 ms) has answered */
    pthread_join(t, NULL);
    assert_int_equal(c.status, 200);
    assert_non_null(strstr(c.body, "done"));
    assert_int_equal(lp_server_in_flight(s), 0);
    /* no longer listening */
    int fd = http_connect(c.port);
    assert_true(fd < 0);
    lp_server_stop(s); /* idempotent */
    lp_server_free(s);
}

typedef struct runner {
    lp_server *s;
    lp_status st;
    atomic_bool done;
} runner;

static void *run_server(void *arg)
{
    runner *r = arg;
    r->st = lp_server_run_until_signal(r->s, NULL);
    atomic_store(&r->done, true);
    return NULL;
}

/* Wait until run_until_signal (on its own thread) has installed its handler for sig: a signal
 * sent before that takes the default action and ends the test process. */
static void wait_handler(int sig)
{
    struct sigaction cur;
    for (int i = 0; i < 5000; i++) {
        sigaction(sig, NULL, &cur);
        if (cur.sa_handler != SIG_DFL && cur.sa_handler != SIG_IGN)
            return;
        usleep(1000);
    }
    fail_msg("no handler for signal %d after 5 s", sig);
}

static atomic_int g_reloads;
static lp_swap *g_swap;
static atomic_bool g_fail_next;
static atomic_int g_destroyed;

static void destroy_obj(void *obj, void *user)
{
    atomic_fetch_add(&g_destroyed, 1);
    free(obj);
}

static lp_status reload_cb(void *user, lp_err *err)
{
    atomic_fetch_add(&g_reloads, 1);
    if (atomic_load(&g_fail_next)) {
        return lp_err_set(err, LP_EFORMAT, "model.lpm: bad magic (not a Lepton model)");
    }
    int *obj = malloc(sizeof *obj);
    *obj = 1000 + atomic_load(&g_reloads);
    lp_status st = lp_swap_set(g_swap, obj, err);
    if (st != LP_OK) free(obj);
    return st;
}

static lp_status model_handler(const lp_req *req, lp_res *res, void *user)
{
    lp_swap_ref *ref = lp_swap_acquire(user);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "model", *(int *)lp_swap_ref_object(ref));
    cJSON_AddNumberToObject(o, "generation", (double)lp_swap_ref_generation(ref));
    lp_swap_release(ref);
    return lp_res_json(res, 200, o);
}

static const lp_route model_routes[] = {
    {.method = "GET", .path = "/v1/model", .handler = model_handler},
};

static int model_value(unsigned port)
{
    http_resp r;
    assert_int_equal(http_request(port, "GET", "/v1/model", NULL, NULL, 0, &r), 200);
    cJSON *j = cJSON_Parse(r.body);
    int v = cJSON_GetObjectItem(j, "model")->valueint;
    cJSON_Delete(j);
    http_resp_free(&r);
    return v;
}

static void test_reload_route_and_sighup(void **state)
{
    int *first = malloc(sizeof *first);
    *first = 1;
    g_swap = lp_swap_new(first, destroy_obj, NULL);
    lp_server *s;
    lp_err err;
    assert_int_equal(lp_server_new(model_routes, 1, g_swap, NULL, &s, &err), LP_OK);
    char *keys[] = {"admin-key-123456"};
    assert_int_equal(lp_server_set_api_keys(s, keys, 1, &err), LP_OK);
    lp_server_set_reload(s, reload_cb, NULL);
    runner rn = {.s = s};
    pthread_t t;
    pthread_create(&t, NULL, run_server, &rn);
    unsigned port = 0;
    for (int i = 0; i < 2500 && !(port = lp_server_port(s)); i++) usleep(2000);
    assert_true(port > 0);
    assert_int_equal(model_value(port), 1);

    http_resp r;
    assert_int_equal(http_request(port, "POST", "/v1/admin/reload", NULL, "", 0, &r), 401);
    http_resp_free(&r);
    assert_int_equal(http_request(port, "POST", "/v1/admin/reload",
                                  "Authorization: Bearer admin-key-123456\r\n", "", 0, &r),
                     200);
    assert_non_null(strstr(r.body, "\"reloaded\":true"));
    http_resp_free(&r);
    assert_int_equal(model_value(port), 1001);
    assert_int_equal(atomic_load(&g_destroyed), 1);

    /* a failed reload answers why and keeps the old object */
    atomic_store(&g_fail_next, true);
    assert_int_equal(http_request(port, "POST", "/v1/admin/reload",
                                  "Authorization: Bearer admin-key-123456\r\n", "", 0, &r),
                     400);
    assert_non_null(strstr(r.body, "\"code\":\"bad_format\""));
    assert_non_null(strstr(r.body, "still serving the previous version: model.lpm: bad magic"));
    http_resp_free(&r);
    assert_int_equal(model_value(port), 1001);
    assert_int_equal(atomic_load(&g_destroyed), 1);

    /* SIGHUP reloads */
    atomic_store(&g_fail_next, false);
    int before = atomic_load(&g_reloads);
    wait_handler(SIGHUP);
    kill(getpid(), SIGHUP);
    for (int i = 0; i < 2500 && atomic_load(&g_reloads) == before; i++) usleep(2000);
    assert_int_equal(atomic_load(&g_reloads), before + 1);
    assert_int_equal(model_value(port), 1000 + before + 1);

    /* SIGTERM with a request in flight: it finishes, then run_until_signal returns */
    lp_server_shutdown(s); /* the same path without a signal */
    pthread_join(t, NULL);
    assert_int_equal(rn.st, LP_OK);
    assert_true(http_connect(port) < 0);
    lp_server_free(s);
    lp_swap_free(g_swap);
    assert_int_equal(atomic_load(&g_destroyed), 3);
}

static void test_sigterm_finishes_in_flight(void **state)
{
    lp_server *s;
    lp_err err;
    lp_server_opts o = lp_server_opts_default();
    o.threads = 2;
    assert_int_equal(lp_server_new(demo_routes, DEMO_N_ROUTES, NULL, &o, &s, &err), LP_OK);
    assert_int_equal(lp_server_start(s, &err), LP_OK);
    runner rn = {.s = s};
    pthread_t t, c;
    pthread_create(&t, NULL, run_server, &rn);
    slow_call sc = {.port = lp_server_port(s)};
    pthread_create(&c, NULL, call_slow, &sc);
    wait_in_flight(s);
    wait_handler(SIGTERM);
    kill(getpid(), SIGTERM);
    pthread_join(c, NULL);
    pthread_join(t, NULL);
    assert_int_equal(sc.status, 200);
    assert_true(atomic_load(&rn.done));
    /* the default disposition is back */
    struct sigaction cur;
    sigaction(SIGTERM, NULL, &cur);
    assert_true(cur.sa_handler == SIG_DFL);
    lp_server_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_graceful_stop_finishes_in_flight),
        cmocka_unit_test(test_reload_route_and_sighup),
        cmocka_unit_test(test_sigterm_finishes_in_flight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
