/*
 * test_recommend_monitor.c - lepton-recommend's GET /v1/monitor over real loopback HTTP, in
 * process, on a two-taste-group model trained here: lists for the training users (the
 * reference's own question) do not drift in score; the hit rate counts exactly the served
 * lists that a later event of the same user for one of their items turned into hits (computed
 * here from the lists the service answered), not events for items outside the lists; a
 * popularity list for an unknown user is counted as a list but not in the score sketch.
 */
#include "lp_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.c"
#include "monitor_util.h"
#include "../../apps/recommend/rec_service.c"
#include "../../apps/recommend/rec_ucache.c"
#include "../../apps/recommend/rec_catalog.c"

#define N_USERS 30
#define ROUNDS 4
#define K 10

static rec_service *g_svc;
static unsigned g_port;
static char *g_db;
static char *const g_keys[] = {"rec-admin-key-0123456789"};

static int setup(void **state)
{
    (void)state;
    lp_mf_data *d = lp_mf_data_new();
    lp_rng rng;
    lp_rng_seed(&rng, 8);
    char u[16], it[16];
    for (int user = 0; user < N_USERS; user++) {
        int g = user % 2;
        snprintf(u, sizeof u, "u%d", user);
        snprintf(it, sizeof it, "i%d", g * 20);
        lp_mf_data_add(d, u, it, 3.0f, NULL);
        for (int t = 0; t < 8; t++) {
            snprintf(it, sizeof it, "i%d", g * 20 + 1 + (int)lp_rng_below(&rng, 19));
            lp_mf_data_add(d, u, it, 1.0f, NULL);
        }
    }
    lp_mf_opts o = lp_mf_opts_default();
    o.factors = 8;
    o.iterations = 10;
    o.threads = 1;
    lp_mf *m;
    lp_err err;
    if (lp_mf_fit(d, &o, &m, &err)) return -1;
    lp_mf_data_free(d);
    char *path = lp_test_tmpfile("recmon.lpm");
    g_db = lp_test_tmpfile("recmon.db");
    remove(g_db);
    if (lp_mf_save(m, path, &err)) return -1;
    lp_mf_free(m);
    rec_service_opts so = rec_service_opts_default();
    so.model_path = path;
    so.db_path = g_db;
    so.port = 0;
    so.threads = 2;
    so.api_keys = g_keys;
    so.n_api_keys = 1;
    if (rec_service_new(&so, &g_svc, &err) || rec_service_start(g_svc, &err)) {
        fprintf(stderr, "service: %s\n", err.msg);
        return -1;
    }
    free(path);
    g_port = rec_service_port(g_svc);
    return g_port ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    rec_service_free(g_svc);
    free(g_db);
    return 0;
}

static cJSON *get(const char *path)
{
    http_resp r = {0};
    int st = http_request(g_port, "GET", path, NULL, NULL, 0, &r);
    if (st != 200) fail_msg("GET %s: status %d: %s", path, st, r.body);
    cJSON *j = cJSON_Parse(r.body);
    http_resp_free(&r);
    assert_non_null(j);
    return j;
}

static void event(const char *user, const char *item)
{
    char body[128];
    snprintf(body, sizeof body, "{\"user\":\"%s\",\"item\":\"%s\",\"type\":\"view\"}", user,
             item);
    http_resp r = {0};
    int st = http_request(g_port, "POST", "/v1/events", "Content-Type: application/json\r\n",
                          body, strlen(body), &r);
    if (st != 200) fail_msg("event %s: %d %s", body, st, r.body);
    http_resp_free(&r);
}

/* The lists served here, to recount the hits: items[list][t]. */
static char g_items[N_USERS * ROUNDS][K][16];
static int g_user_of[N_USERS * ROUNDS];
static bool g_hit[N_USERS * ROUNDS];

static void test_monitor(void **state)
{
    (void)state;
    cJSON *m = get("/v1/monitor");
    const cJSON *live = cJSON_GetObjectItem(m, "live");
    assert_int_equal((int)num(live, "labelled"), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(live, "accuracy")));
    assert_int_equal((int)num(cJSON_GetObjectItem(m, "score_drift"), "n"), 0);
    assert_null(cJSON_GetObjectItem(m, "reason"));
    cJSON_Delete(m);

    /* the training users asked as the reference asks them: no drift */
    size_t nl = 0;
    for (int r = 0; r < ROUNDS; r++)
        for (int u = 0; u < N_USERS; u++, nl++) {
            char path[64];
            snprintf(path, sizeof path, "/v1/recommend?user=u%d&k=%d", u, K);
            cJSON *j = get(path);
            const cJSON *items = cJSON_GetObjectItem(j, "items");
            assert_int_equal(cJSON_GetArraySize(items), K);
            for (int t = 0; t < K; t++)
                snprintf(g_items[nl][t], 16, "%s",
                         cJSON_GetStringValue(cJSON_GetObjectItem(cJSON_GetArrayItem(items, t),
                                                                  "item")));
            g_user_of[nl] = u;
            cJSON_Delete(j);
        }
    m = get("/v1/monitor");
    const cJSON *sd = cJSON_GetObjectItem(m, "score_drift");
    assert_int_equal((int)num(sd, "n"), N_USERS * ROUNDS * K);
    if (cJSON_IsTrue(cJSON_GetObjectItem(sd, "drifted")) || !(num(sd, "psi") < 0.1))
        fail_msg("scores of the training users drifted: psi %g", num(sd, "psi"));
    live = cJSON_GetObjectItem(m, "live");
    assert_int_equal((int)num(live, "labelled"), N_USERS * ROUNDS);
    assert_true(num(live, "accuracy") == 0.0);
    cJSON_Delete(m);

    /* users u0..u9 view the 3rd item of their list: every list of theirs holding it is a hit */
    for (int u = 0; u < 10; u++) {
        const char *item = g_items[u][2]; /* round 0's list of user u */
        char uid[16];
        snprintf(uid, sizeof uid, "u%d", u);
        event(uid, item);
        for (size_t l = 0; l < nl; l++)
            if (g_user_of[l] == u)
                for (int t = 0; t < K; t++)
                    g_hit[l] |= !strcmp(g_items[l][t], item);
    }
    /* u10..u14 view their group's top item: in their history, so never in their lists */
    for (int u = 10; u < 15; u++) {
        char uid[16], item[16];
        snprintf(uid, sizeof uid, "u%d", u);
        snprintf(item, sizeof item, "i%d", (u % 2) * 20);
        event(uid, item);
        for (size_t l = 0; l < nl; l++)
            for (int t = 0; g_user_of[l] == u && t < K; t++)
                assert_true(strcmp(g_items[l][t], item) != 0);
    }
    size_t hits = 0;
    for (size_t l = 0; l < nl; l++)
        hits += g_hit[l];
    assert_true(hits >= 10 * ROUNDS / 2);
    m = get("/v1/monitor");
    live = cJSON_GetObjectItem(m, "live");
    assert_int_equal((size_t)num(live, "hits"), hits);
    assert_true(fabs(num(live, "accuracy") - (double)hits / (double)nl) < 1e-12);
    assert_true(num(live, "hit_window_s") == 1800);
    cJSON_Delete(m);

    /* an unknown user gets popularity: a list, not a score */
    cJSON *j = get("/v1/recommend?user=nobody-yet&k=5");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(j, "strategy")), "popularity");
    cJSON_Delete(j);
    m = get("/v1/monitor");
    assert_int_equal((int)num(cJSON_GetObjectItem(m, "live"), "labelled"), (int)nl + 1);
    assert_int_equal((int)num(m, "popularity_lists"), 1);
    assert_int_equal((int)num(cJSON_GetObjectItem(m, "score_drift"), "n"), N_USERS * ROUNDS * K);
    cJSON_Delete(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_monitor),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
