/*
 * test_recommend_service.c - lepton-recommend's service over real loopback HTTP, in process:
 * recommendations for a known user (right taste, history excluded, explanations from the
 * history), similar items, popularity for an unknown user, events that change a new user's
 * list at once and are in SQLite when acknowledged, catalog filters (stock, category) and
 * attribute neighbours of a new item, retrain with hot swap behind auth, and hostile input
 * (bad ids, weights, k, JSON, oversized batches): each a clear 4xx, the server still serving.
 */
#include "lp_test.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http_client.c"
#include "../../apps/recommend/rec_service.c"
#include "../../apps/recommend/rec_ucache.c"
#include "../../apps/recommend/rec_catalog.c"

static rec_service *g_svc;
static unsigned g_port;
static char *g_db;
static char *const g_keys[] = {"rec-admin-key-0123456789"};

/* Two taste groups: users u0..u29 (group u % 2) with items of their group (i0..i19 or
 * i20..i39); i0 and i20 are each group's most popular item. With decay, the model records the
 * source of a file read with --time-col ts --half-life-days 1, its weights decayed to DECAY_T0
 * (the weights themselves are the same: the test knows them). The service starts on an
 * ephemeral port with its own database. */
#define DECAY_T0 1767225600.0
static int start_service(bool decay, double retrain_every, rec_service **svc, char **db)
{
    lp_mf_data *d = lp_mf_data_new();
    lp_rng rng;
    lp_rng_seed(&rng, 8);
    char u[16], it[16];
    for (int user = 0; user < 30; user++) {
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
    if (decay) {
        lp_mf_source src = {.user_col = "user_id", .item_col = "item_id", .time_col = "ts",
                            .ev = lp_mf_event_opts_default(), .time_ref = DECAY_T0};
        src.ev.half_life_s = 86400;
        if (lp_mf_set_source(m, &src, &err)) return -1;
    }
    char name[64];
    snprintf(name, sizeof name, "svc%s%s.lpm", decay ? "-decay" : "", retrain_every ? "-rt" : "");
    char *path = lp_test_tmpfile(name);
    snprintf(name, sizeof name, "svc%s%s.db", decay ? "-decay" : "", retrain_every ? "-rt" : "");
    *db = lp_test_tmpfile(name);
    if (lp_mf_save(m, path, &err)) return -1;
    lp_mf_free(m);
    rec_service_opts so = rec_service_opts_default();
    so.model_path = path;
    so.db_path = *db;
    so.port = 0;
    so.threads = 2;
    so.api_keys = g_keys;
    so.n_api_keys = 1;
    so.retrain_every_s = retrain_every;
    if (rec_service_new(&so, svc, &err) || rec_service_start(*svc, &err)) {
        fprintf(stderr, "service: %s\n", err.msg);
        return -1;
    }
    free(path);
    return 0;
}

static int setup(void **state)
{
    if (start_service(false, 0, &g_svc, &g_db)) return -1;
    g_port = rec_service_port(g_svc);
    return g_port ? 0 : -1;
}

static int teardown(void **state)
{
    rec_service_free(g_svc);
    free(g_db);
    return 0;
}

static cJSON *get(const char *path, int want_status)
{
    http_resp r = {0};
    int st = http_request(g_port, "GET", path, NULL, NULL, 0, &r);
    if (st != want_status) fail_msg("GET %s: status %d, want %d: %s", path, st, want_status, r.body);
    cJSON *j = cJSON_Parse(r.body);
    http_resp_free(&r);
    assert_non_null(j);
    return j;
}

static cJSON *post(const char *path, const char *body, const char *hdr, int want_status)
{
    http_resp r = {0};
    char headers[256];
    snprintf(headers, sizeof headers, "Content-Type: application/json\r\n%s", hdr ? hdr : "");
    int st = http_request(g_port, "POST", path, headers, body, body ? strlen(body) : 0, &r);
    if (st != want_status)
        fail_msg("POST %s %.80s: status %d, want %d: %s", path, body ? body : "", st, want_status,
                 r.body);
    cJSON *j = cJSON_Parse(r.body);
    http_resp_free(&r);
    assert_non_null(j);
    return j;
}

/* An error body with this code; its message must mention `needle`. */
static void expect_error(cJSON *j, const char *code, const char *needle)
{
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_true(cJSON_IsObject(e));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "code")->valuestring, code);
    const char *msg = cJSON_GetObjectItemCaseSensitive(e, "message")->valuestring;
    if (needle && !strstr(msg, needle)) fail_msg("message '%s' lacks '%s'", msg, needle);
    cJSON_Delete(j);
}

static const cJSON *items_of(const cJSON *j)
{
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "items");
    assert_true(cJSON_IsArray(a));
    return a;
}

static int group(const char *item)
{
    return atoi(item + 1) >= 20;
}

static const char *strategy(const cJSON *j)
{
    return cJSON_GetObjectItemCaseSensitive(j, "strategy")->valuestring;
}

static void test_known_user(void **state)
{
    cJSON *j = get("/v1/recommend?user=u1&k=5", 200);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "user")->valuestring, "u1");
    assert_string_equal(strategy(j), "als");
    const cJSON *a = items_of(j), *it;
    assert_int_equal(cJSON_GetArraySize(a), 5);
    /* the history of u1, from the model */
    lp_swap_ref *ref = lp_swap_acquire(g_svc->swap);
    const lp_mf *m = model_of(ref);
    const int32_t *hi;
    const float *hw;
    size_t nh = lp_mf_user_history(m, (size_t)lp_mf_user_index(m, "u1"), &hi, &hw);
    double prev = 1e30;
    cJSON_ArrayForEach(it, a) {
        const char *id = cJSON_GetObjectItemCaseSensitive(it, "item")->valuestring;
        double score = cJSON_GetObjectItemCaseSensitive(it, "score")->valuedouble;
        assert_true(score <= prev);
        prev = score;
        assert_int_equal(group(id), 1);
        for (size_t h = 0; h < nh; h++) assert_string_not_equal(id, lp_mf_item_id(m, (size_t)hi[h]));
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(it, "because"), *x;
        assert_true(cJSON_GetArraySize(b) >= 1);
        cJSON_ArrayForEach(x, b) {
            bool in = false;
            for (size_t h = 0; h < nh; h++) in |= strcmp(x->valuestring, lp_mf_item_id(m, (size_t)hi[h])) == 0;
            assert_true(in);
        }
    }
    lp_swap_release(ref);
    cJSON_Delete(j);
}

static void test_similar(void **state)
{
    cJSON *j = get("/v1/similar?item=i25&k=3", 200);
    const cJSON *a = items_of(j), *it;
    assert_int_equal(cJSON_GetArraySize(a), 3);
    cJSON_ArrayForEach(it, a) {
        const char *id = cJSON_GetObjectItemCaseSensitive(it, "item")->valuestring;
        assert_string_not_equal(id, "i25");
    }
    cJSON_Delete(j);
    expect_error(get("/v1/similar?item=nope&k=3", 404), "not_found", "nope");
    expect_error(get("/v1/similar?item=i5&k=0", 400), "invalid_argument", "'k'");
    expect_error(get("/v1/similar?item=i5&k=100000", 400), "invalid_argument", "'k'");
    expect_error(get("/v1/similar?k=3", 400), "invalid_argument", "'item'");
}

static void test_unknown_user_popularity(void **state)
{
    cJSON *j = get("/v1/recommend?user=nobody-at-all&k=2", 200);
    assert_string_equal(strategy(j), "popularity");
    const cJSON *a = items_of(j);
    assert_int_equal(cJSON_GetArraySize(a), 2);
    /* i0 and i20 are the most popular (15 users x 3 each) */
    const char *first = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(a, 0), "item")->valuestring;
    assert_true(strcmp(first, "i0") == 0 || strcmp(first, "i20") == 0);
    cJSON_Delete(j);
}

static int count_events(const char *user)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(g_db, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM events WHERE user = ?", -1, &q,
                                        NULL), SQLITE_OK);
    sqlite3_bind_text(q, 1, user, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    int n = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    sqlite3_close(db);
    return n;
}

static void test_events_change_list(void **state)
{
    cJSON *j = get("/v1/recommend?user=fresh&k=5", 200);
    assert_string_equal(strategy(j), "popularity");
    cJSON_Delete(j);
    j = post("/v1/events", "{\"user\":\"fresh\",\"item\":\"i21\",\"type\":\"view\"}", NULL, 200);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "accepted")->valueint, 1);
    cJSON_Delete(j);
    assert_int_equal(count_events("fresh"), 1); /* acknowledged means committed */
    j = post("/v1/events", "{\"events\":[{\"user\":\"fresh\",\"item\":\"i22\",\"type\":\"cart\"},"
             "{\"user\":\"fresh\",\"item\":\"i23\",\"weight\":5,\"timestamp\":1767225600}]}",
             NULL, 200);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "accepted")->valueint, 2);
    cJSON_Delete(j);
    assert_int_equal(count_events("fresh"), 3);
    /* an event dated a day ahead would be the next retrain's "now": refused, naming the field,
     * and nothing of its batch is stored */
    char fut[256];
    snprintf(fut, sizeof fut,
             "{\"events\":[{\"user\":\"fresh\",\"item\":\"i24\"},"
             "{\"user\":\"fresh\",\"item\":\"i25\",\"timestamp\":%.0f}]}",
             lp_time_wall() + 86400);
    j = post("/v1/events", fut, NULL, 400);
    char *msg = cJSON_PrintUnformatted(j);
    assert_non_null(strstr(msg, "timestamp"));
    free(msg);
    cJSON_Delete(j);
    assert_int_equal(count_events("fresh"), 3);
    /* after three clicks on group-1 items the list is personal, group 1, and excludes them */
    j = get("/v1/recommend?user=fresh&k=5", 200);
    assert_string_equal(strategy(j), "als");
    const cJSON *it;
    cJSON_ArrayForEach(it, items_of(j)) {
        const char *id = cJSON_GetObjectItemCaseSensitive(it, "item")->valuestring;
        assert_int_equal(group(id), 1);
        assert_true(strcmp(id, "i21") && strcmp(id, "i22") && strcmp(id, "i23"));
        assert_true(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(it, "because")) >= 1);
    }
    cJSON_Delete(j);
    /* exclude= drops items from the list */
    j = get("/v1/recommend?user=fresh&k=40&exclude=i24,i25,unknown", 200);
    cJSON_ArrayForEach(it, items_of(j)) {
        const char *id = cJSON_GetObjectItemCaseSensitive(it, "item")->valuestring;
        assert_true(strcmp(id, "i24") && strcmp(id, "i25"));
    }
    assert_int_equal(cJSON_GetArraySize(items_of(j)), 40 - 3 - 2);
    cJSON_Delete(j);
}

/* Six clients post events at once (group commit: several requests per transaction, answers
 * deferred to the writer): every request is acknowledged, and every acknowledged event is in the
 * database when its answer arrives; a request with an unknown item fails alone. */
#define EV_CLIENTS 6
#define EV_EACH 15
static void *post_events(void *arg)
{
    int c = (int)(intptr_t)arg;
    char body[160], user[32];
    snprintf(user, sizeof user, "burst%d", c);
    for (int t = 0; t < EV_EACH; t++) {
        snprintf(body, sizeof body, "{\"user\":\"%s\",\"item\":\"i%d\",\"weight\":2}", user,
                 (c * 7 + t) % 40);
        http_resp r = {0};
        int st = http_request(g_port, "POST", "/v1/events", "Content-Type: application/json\r\n",
                              body, strlen(body), &r);
        http_resp_free(&r);
        if (st != 200) return (void *)(intptr_t)st;
        if (count_events(user) != t + 1) return (void *)(intptr_t)-1; /* acked = committed */
    }
    return NULL;
}

static void test_events_concurrent(void **state)
{
    pthread_t th[EV_CLIENTS];
    for (int c = 0; c < EV_CLIENTS; c++)
        assert_int_equal(pthread_create(&th[c], NULL, post_events, (void *)(intptr_t)c), 0);
    /* meanwhile a bad request fails on its own */
    expect_error(post("/v1/events", "{\"user\":\"burst0\",\"item\":\"nope\"}", NULL, 404),
                 "not_found", "nope");
    for (int c = 0; c < EV_CLIENTS; c++) {
        void *rv;
        assert_int_equal(pthread_join(th[c], &rv), 0);
        assert_null(rv);
    }
    char user[32];
    for (int c = 0; c < EV_CLIENTS; c++) {
        snprintf(user, sizeof user, "burst%d", c);
        assert_int_equal(count_events(user), EV_EACH);
    }
}

/* (hits, misses, refreshed) of the prepared-user cache from GET /v1/monitor */
static void cache_counts3(double *hits, double *misses, double *refreshed)
{
    cJSON *j = get("/v1/monitor", 200);
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(j, "user_cache");
    assert_true(cJSON_IsObject(c));
    *hits = cJSON_GetObjectItemCaseSensitive(c, "hits")->valuedouble;
    *misses = cJSON_GetObjectItemCaseSensitive(c, "misses")->valuedouble;
    *refreshed = cJSON_GetObjectItemCaseSensitive(c, "refreshed")->valuedouble;
    cJSON_Delete(j);
}

static void cache_counts(double *hits, double *misses)
{
    double r;
    cache_counts3(hits, misses, &r);
}

/* A known user's second request is served from the prepared-user cache with the same list; an
 * event for that user invalidates it and the events' writer rebuilds it at once (the user was
 * active), so the next list comes from the cache and drops the new item. An event for a user
 * without a cached state only invalidates: that user's next list is rebuilt by the request. */
static void test_cache_follows_events(void **state)
{
    double h0, m0, h1, m1, h2, m2, r1, r2;
    cache_counts(&h0, &m0);
    cJSON *a = get("/v1/recommend?user=u17&k=5", 200);
    cJSON *b = get("/v1/recommend?user=u17&k=5", 200);
    cache_counts(&h1, &m1);
    assert_true(m1 >= m0 + 1);
    assert_true(h1 >= h0 + 1);
    char *ta = cJSON_PrintUnformatted(a), *tb = cJSON_PrintUnformatted(b);
    assert_string_equal(ta, tb);
    free(ta), free(tb);
    const char *first =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(items_of(a), 0), "item")->valuestring;
    char body[128];
    snprintf(body, sizeof body, "{\"user\":\"u17\",\"item\":\"%s\",\"weight\":5}", first);
    cache_counts3(&h1, &m1, &r1);
    cJSON_Delete(post("/v1/events", body, NULL, 200));
    /* the refresh follows the answer to the POST: wait for it (2 s at most) */
    for (int i = 0; i < 200; i++) {
        cache_counts3(&h2, &m2, &r2);
        if (r2 >= r1 + 1) break;
        usleep(10000);
    }
    assert_true(r2 >= r1 + 1);
    cJSON *c = get("/v1/recommend?user=u17&k=5", 200);
    cache_counts(&h2, &m2);
    assert_true(h2 >= h1 + 1); /* the refreshed entry, */
    assert_true(m2 == m1);     /* not a rebuild by the request */
    assert_string_equal(strategy(c), "als");
    const cJSON *it;
    cJSON_ArrayForEach(it, items_of(c))
        assert_string_not_equal(cJSON_GetObjectItemCaseSensitive(it, "item")->valuestring, first);
    /* a user never asked for has nothing to refresh: its request builds its state */
    double r3, h3, m3;
    cJSON_Delete(post("/v1/events", "{\"user\":\"never-asked\",\"item\":\"i3\",\"weight\":2}",
                      NULL, 200));
    cJSON *d = get("/v1/recommend?user=never-asked&k=5", 200);
    cache_counts3(&h3, &m3, &r3);
    assert_true(m3 >= m2 + 1);
    assert_true(r3 == r2); /* u18 had no cached state: nothing to refresh */
    cJSON_Delete(a), cJSON_Delete(b), cJSON_Delete(c), cJSON_Delete(d);
}

static void test_bad_input(void **state)
{
    int before = count_events("evil");
    expect_error(post("/v1/events", "{\"user\":\"evil\",\"item\":\"i1\",\"weight\":-1}", NULL, 400),
                 "invalid_argument", "weight");
    expect_error(post("/v1/events", "{\"user\":\"evil\",\"item\":\"i1\",\"weight\":0}", NULL, 400),
                 "invalid_argument", "weight");
    expect_error(post("/v1/events", "{\"user\":\"evil\",\"item\":\"i1\",\"weight\":NaN}", NULL, 400),
                 "parse_error", NULL);
    expect_error(post("/v1/events", "{\"user\":\"evil\",\"item\":\"i1\",\"weight\":1e999}", NULL,
                      400), "parse_error", NULL);
    expect_error(post("/v1/events", "{\"user\":\"evil\",\"item\":\"nope\"}", NULL, 404),
                 "not_found", "nope");
    expect_error(post("/v1/events", "{\"user\":\"evil\",\"item\":\"i1\",\"type\":\"refund\"}",
                      NULL, 400), "invalid_argument", "refund");
    expect_error(post("/v1/events", "{\"user\":\"evil\",\"item\":", NULL, 400), "parse_error", NULL);
    expect_error(post("/v1/events", "[1,2]", NULL, 400), "invalid_argument", "object");
    expect_error(post("/v1/events", "{\"user\":\"\",\"item\":\"i1\"}", NULL, 400),
                 "invalid_argument", "user");
    expect_error(post("/v1/events", "{\"user\":7,\"item\":\"i1\"}", NULL, 400),
                 "invalid_argument", "user");
    expect_error(post("/v1/events", "{\"events\":[]}", NULL, 400), "invalid_argument", "events");
    /* ids a query could never name are refused, as GET /v1/recommend refuses them */
    expect_error(post("/v1/events", "{\"user\":\"a\\tb\",\"item\":\"i1\"}", NULL, 400),
                 "invalid_argument", "field 'user': control character at byte 1");
    expect_error(post("/v1/events", "{\"events\":[{\"user\":\"ok\",\"item\":\"i1\"},"
                                    "{\"user\":\"ok\",\"item\":\"i\\u0001\"}]}",
                      NULL, 400),
                 "invalid_argument", "events[1]: field 'item': control character at byte 1");
    expect_error(post("/v1/items", "{\"item\":\"x\",\"category\":\"a\\nb\"}", NULL, 400),
                 "invalid_argument", "field 'category': control character");
    expect_error(post("/v1/events", "{\"user\":\"u\\u0085v\",\"item\":\"i1\"}", NULL, 400),
                 "invalid_argument", "field 'user': control character at byte 1"); /* C1 NEL */
    /* a batch with one bad event stores nothing */
    expect_error(post("/v1/events", "{\"events\":[{\"user\":\"evil\",\"item\":\"i1\"},"
                      "{\"user\":\"evil\",\"item\":\"i2\",\"weight\":-3}]}", NULL, 400),
                 "invalid_argument", "events[1]");
    assert_int_equal(count_events("evil"), before);
    /* oversized batch */
    lp_buf b;
    lp_buf_init(&b);
    lp_buf_printf(&b, "{\"events\":[");
    for (int t = 0; t < 1001; t++) lp_buf_printf(&b, "%s{\"user\":\"x\",\"item\":\"i1\"}", t ? "," : "");
    lp_buf_printf(&b, "]}");
    lp_buf_u8(&b, 0);
    expect_error(post("/v1/events", (const char *)b.data, NULL, 413), "too_large", "1001");
    lp_buf_free(&b);
    /* odd but valid ids are fine; control characters and bad UTF-8 are not */
    cJSON_Delete(post("/v1/events", "{\"user\":\"caf\\u00e9 \\\"o'k\\\"/?&=\",\"item\":\"i3\"}",
                      NULL, 200));
    cJSON *j = get("/v1/recommend?user=caf%C3%A9%20%22o'k%22%2F%3F%26%3D&k=3", 200);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "user")->valuestring,
                        "caf\xc3\xa9 \"o'k\"/?&=");
    cJSON_Delete(j);
    expect_error(get("/v1/recommend?user=a%01b", 400), "invalid_argument", "control");
    expect_error(get("/v1/recommend?user=a%FFb", 400), "invalid_argument", NULL);
    expect_error(get("/v1/recommend", 400), "invalid_argument", "user");
    expect_error(get("/v1/recommend?user=u1&k=0", 400), "invalid_argument", "'k'");
    expect_error(get("/v1/recommend?user=u1&k=100000", 400), "invalid_argument", "'k'");
    expect_error(get("/v1/recommend?user=u1&k=abc", 400), "invalid_argument", "'k'");
    expect_error(get("/v1/recommend?user=u1&k=-5", 400), "invalid_argument", "'k'");
    char longq[600] = "/v1/recommend?user=";
    memset(longq + strlen(longq), 'z', 300);
    expect_error(get(longq, 400), "invalid_argument", "user");
    /* still serving */
    cJSON_Delete(get("/v1/recommend?user=u2&k=3", 200));
}

static void test_catalog_filters(void **state)
{
    cJSON_Delete(post("/v1/items", "{\"items\":[{\"item\":\"i20\",\"category\":\"shoes\","
                      "\"in_stock\":false},{\"item\":\"i0\",\"category\":\"hats\"},"
                      "{\"item\":\"brandnew\",\"category\":\"hats\"}]}", NULL, 200));
    /* out of stock never shows; a category filter keeps only that category */
    cJSON *j = get("/v1/recommend?user=nobody&k=40", 200);
    const cJSON *it;
    cJSON_ArrayForEach(it, items_of(j))
        assert_string_not_equal(cJSON_GetObjectItemCaseSensitive(it, "item")->valuestring, "i20");
    cJSON_Delete(j);
    j = get("/v1/recommend?user=nobody&k=10&category=hats", 200);
    assert_int_equal(cJSON_GetArraySize(items_of(j)), 1);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(items_of(j), 0),
                                                         "item")->valuestring, "i0");
    cJSON_Delete(j);
    /* a new item has attribute neighbours and accepts events */
    j = get("/v1/similar?item=brandnew&k=5", 200);
    assert_string_equal(strategy(j), "attributes");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(items_of(j), 0),
                                                         "item")->valuestring, "i0");
    cJSON_Delete(j);
    cJSON_Delete(post("/v1/events", "{\"user\":\"fresh\",\"item\":\"brandnew\"}", NULL, 200));
    expect_error(post("/v1/items", "{\"item\":\"x\",\"in_stock\":\"yes\"}", NULL, 400),
                 "invalid_argument", "in_stock");
    expect_error(post("/v1/items", "{\"items\":{}}", NULL, 400), "invalid_argument", "items");
}

/* The weights w (n) of the given items in the history the service folds in for user (its
 * training history plus the stored events the model does not hold, decayed), which must count
 * want_events such events; an item absent from it is a failure. */
static void history_of(rec_service *svc, const char *user, const char *const *items, size_t n,
                       float *w, size_t want_events)
{
    lp_swap_ref *ref = lp_swap_acquire(svc->swap);
    const lp_mf *m = model_of(ref);
    int32_t *hi;
    float *hw;
    size_t nh, n_ev;
    lp_err err;
    assert_int_equal(user_history(svc, m, through_of(ref),
                                  user, lp_mf_user_index(m, user), &hi, &hw, &nh, &n_ev, &err),
                     LP_OK);
    assert_int_equal(n_ev, want_events);
    for (size_t k = 0; k < n; k++) {
        long i = lp_mf_item_index(m, items[k]);
        size_t t = 0;
        while (t < nh && hi[t] != i) t++;
        if (i < 0 || t == nh) fail_msg("%s: item %s not in the history", user, items[k]);
        w[k] = hw[t];
    }
    free(hi);
    free(hw);
    lp_swap_release(ref);
}

/* Start a second service (start_service) and point get / post at it; returns the port to
 * restore in g_port afterwards. */
static unsigned use_service(bool decay, double retrain_every, rec_service **svc, char **db)
{
    assert_int_equal(start_service(decay, retrain_every, svc, db), 0);
    unsigned main_port = g_port;
    g_port = rec_service_port(*svc);
    return main_port;
}

static void test_retrain(void **state)
{
    http_resp r = {0};
    assert_int_equal(http_request(g_port, "POST", "/v1/admin/retrain", NULL, NULL, 0, &r), 401);
    http_resp_free(&r);
    assert_int_equal(http_request(g_port, "POST", "/v1/admin/retrain",
                                  "Authorization: Bearer wrong-key-0000000\r\n", NULL, 0, &r), 403);
    http_resp_free(&r);
    cJSON *j = post("/v1/admin/retrain", NULL, "Authorization: Bearer rec-admin-key-0123456789\r\n",
                    200);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "generation")->valueint, 2);
    assert_true(cJSON_GetObjectItemCaseSensitive(j, "events")->valueint >= 5);
    cJSON_Delete(j);
    /* the new model knows the event-only user and item */
    j = get("/v1/similar?item=brandnew&k=3", 200);
    assert_string_equal(strategy(j), "als");
    cJSON_Delete(j);
    j = get("/v1/recommend?user=fresh&k=3", 200);
    assert_string_equal(strategy(j), "als");
    cJSON_Delete(j);
    /* the new model holds the stored events once: none is folded in again, and a second
     * retrain has no new event to add */
    float w[3];
    history_of(g_svc, "fresh", (const char *[]){"i21", "i22", "i23"}, 3, w, 0);
    assert_float_equal(w[0], 1, 0); /* a view */
    assert_float_equal(w[1], 3, 0); /* a cart */
    assert_float_equal(w[2], 5, 0);
    j = post("/v1/admin/retrain", NULL, "Authorization: Bearer rec-admin-key-0123456789\r\n",
             200);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "generation")->valueint, 3);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "events")->valueint, 0);
    cJSON_Delete(j);
    history_of(g_svc, "fresh", (const char *[]){"i21", "i22", "i23"}, 3, w, 0);
    assert_float_equal(w[0] + w[1] + w[2], 9, 0);
}

/* A model trained with time decay (half-life one day, weights decayed to DECAY_T0): a user's
 * events are decayed to the latest of the model's reference and their own latest event, the
 * training history by the time since the reference; the recommendations follow the recent
 * event; a retrain decays everything to the new events' latest time and records it. */
static void test_time_decay(void **state)
{
    rec_service *svc;
    char *db;
    unsigned main_port = use_service(true, 0, &svc, &db);
    char body[512];
    snprintf(body, sizeof body,
             "{\"events\":[{\"user\":\"dec\",\"item\":\"i21\",\"timestamp\":%.0f},"
             "{\"user\":\"dec\",\"item\":\"i3\",\"timestamp\":%.0f},"
             "{\"user\":\"u1\",\"item\":\"i25\",\"weight\":2,\"timestamp\":%.0f}]}",
             DECAY_T0 - 10 * 86400, DECAY_T0 + 86400, DECAY_T0 + 2 * 86400);
    cJSON_Delete(post("/v1/events", body, NULL, 200));
    /* dec: the reference is their latest event (T0 + 1 day); i21 is 11 days older */
    float w[2];
    history_of(svc, "dec", (const char *[]){"i3", "i21"}, 2, w, 2);
    assert_float_equal(w[0], 1, 1e-6);
    assert_float_equal(w[1], 1.0 / 2048, 1e-9);
    /* u1: the training history is two days older than u1's event */
    lp_swap_ref *ref = lp_swap_acquire(svc->swap);
    const lp_mf *m = model_of(ref);
    long u1 = lp_mf_user_index(m, "u1");
    const int32_t *hi;
    const float *hw;
    size_t nh = lp_mf_user_history(m, (size_t)u1, &hi, &hw);
    assert_true(nh > 0);
    char first[16];
    snprintf(first, sizeof first, "%s", lp_mf_item_id(m, (size_t)hi[0]));
    float w0 = hw[0], w25 = 0;
    for (size_t t = 0; t < nh; t++)
        if (!strcmp(lp_mf_item_id(m, (size_t)hi[t]), "i25")) w25 = hw[t];
    lp_swap_release(ref);
    float got[2];
    history_of(svc, "u1", (const char *[]){first, "i25"}, 2, got, 1);
    if (strcmp(first, "i25")) assert_float_equal(got[0], w0 / 4, 1e-6);
    assert_float_equal(got[1], w25 / 4 + 2, 1e-6);
    /* the recent click leads the list */
    cJSON *j = get("/v1/recommend?user=dec&k=3", 200);
    assert_string_equal(strategy(j), "als");
    const cJSON *top = cJSON_GetArrayItem(items_of(j), 0);
    assert_int_equal(group(cJSON_GetObjectItemCaseSensitive(top, "item")->valuestring), 0);
    cJSON_Delete(j);
    /* retrain: everything decayed to T0 + 2 days, which the new model records */
    j = post("/v1/admin/retrain", NULL, "Authorization: Bearer rec-admin-key-0123456789\r\n",
             200);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "events")->valueint, 3);
    cJSON_Delete(j);
    ref = lp_swap_acquire(svc->swap);
    assert_float_equal(lp_mf_model_source(model_of(ref))->time_ref, DECAY_T0 + 2 * 86400, 0);
    lp_swap_release(ref);
    history_of(svc, "dec", (const char *[]){"i3", "i21"}, 2, w, 0);
    assert_float_equal(w[0], 0.5, 1e-6);
    assert_float_equal(w[1], 1.0 / 4096, 1e-9);
    history_of(svc, "u1", (const char *[]){first, "i25"}, 2, got, 0);
    if (strcmp(first, "i25")) assert_float_equal(got[0], w0 / 4, 1e-6);
    assert_float_equal(got[1], w25 / 4 + 2, 1e-6);
    rec_service_free(svc);
    free(db);
    g_port = main_port;
}

/* The generation of svc's model once it differs from `from`, waiting up to `wait_s` seconds
 * (returns `from` when it did not change). */
static uint64_t generation_after(rec_service *svc, uint64_t from, double wait_s)
{
    for (double t = 0; t < wait_s; t += 0.05) {
        uint64_t g = lp_swap_generation(svc->swap);
        if (g != from) return g;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return lp_swap_generation(svc->swap);
}

/* --retrain-every: a model is retrained once events arrive, and not again until new ones do;
 * the retrained model holds the events (none left to fold in). */
static void test_periodic_retrain(void **state)
{
    rec_service *svc;
    char *db;
    unsigned main_port = use_service(false, 1, &svc, &db);
    assert_int_equal(generation_after(svc, 1, 1.5), 1); /* nothing stored: no retrain */
    /* two users with cached states: the retrain's swap makes them stale, and the retrainer
     * rebuilds them against the new model at once (user_cache.refreshed), so their next
     * requests are cache hits */
    cJSON_Delete(get("/v1/recommend?user=u17&k=3", 200));
    cJSON_Delete(get("/v1/recommend?user=u18&k=3", 200));
    double h0, m0, r0, h1, m1, r1 = 0;
    cache_counts3(&h0, &m0, &r0);
    cJSON_Delete(post("/v1/events", "{\"user\":\"p1\",\"item\":\"i3\"}", NULL, 200));
    assert_int_equal(generation_after(svc, 1, 10), 2);
    for (int i = 0; i < 500 && r1 < r0 + 2; i++) {
        cache_counts3(&h1, &m1, &r1);
        usleep(10000);
    }
    assert_true(r1 >= r0 + 2);
    cJSON_Delete(get("/v1/recommend?user=u17&k=3", 200));
    cJSON_Delete(get("/v1/recommend?user=u18&k=3", 200));
    cache_counts3(&h1, &m1, &r1);
    assert_true(h1 >= h0 + 2);
    assert_true(m1 == m0);
    float w;
    history_of(svc, "p1", (const char *[]){"i3"}, 1, &w, 0);
    assert_int_equal(generation_after(svc, 2, 2.5), 2); /* no new event: kept */
    cJSON_Delete(post("/v1/events", "{\"user\":\"p1\",\"item\":\"i4\"}", NULL, 200));
    assert_int_equal(generation_after(svc, 2, 10), 3);
    rec_service_free(svc);
    free(db);
    g_port = main_port;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_user),
        cmocka_unit_test(test_similar),
        cmocka_unit_test(test_unknown_user_popularity),
        cmocka_unit_test(test_events_change_list),
        cmocka_unit_test(test_cache_follows_events),
        cmocka_unit_test(test_events_concurrent),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_catalog_filters),
        cmocka_unit_test(test_retrain),
        cmocka_unit_test(test_time_decay),
        cmocka_unit_test(test_periodic_retrain),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
