/*
 * test_cs_monitor.c - lepton-customer-service's GET /v1/monitor over real loopback HTTP, on the
 * default support bot trained here (data/support-bot): the validation texts asked again (the
 * reference's own distribution) drift neither in intent nor in confidence; the same number of
 * turns all asking one thing flags the intent distribution; live accuracy from /v1/feedback
 * equals the share of turns whose answered intent matches the intent the feedback gave,
 * counted here from the answers.
 */
#include "lp_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs.h"
#include "http_client.c"
#include "monitor_util.h"

#define N_TURNS 144

static cs_service *g_svc;
static unsigned g_port;
static char *g_model, *g_db;
static char **g_texts, **g_labels;
static size_t g_n;

static void start(const char *db_name)
{
    lp_err err = {0};
    free(g_db);
    g_db = lp_test_tmpfile(db_name);
    remove(g_db);
    cs_service_opts o = cs_service_opts_default();
    o.model_path = g_model;
    o.db_path = g_db;
    o.server.port = 0;
    o.server.threads = 2;
    if (cs_service_new(&o, &g_svc, &err) != LP_OK ||
        lp_server_start(cs_service_server(g_svc), &err) != LP_OK)
        fail_msg("service: %s", err.msg);
    g_port = lp_server_port(cs_service_server(g_svc));
}

static void stop(void)
{
    cs_service_free(g_svc);
    g_svc = NULL;
}

static int setup(void **state)
{
    (void)state;
    const char *src = getenv("LEPTON_SOURCE_DIR");
    if (!src)
        return -1;
    char p[5][512];
    const char *names[5] = {"intents_train.tsv", "intents_valid.tsv", "slots.tsv", "faq.tsv",
                            "bot.json"};
    for (int i = 0; i < 5; i++)
        snprintf(p[i], sizeof(p[i]), "%s/data/support-bot/%s", src, names[i]);
    cs_train_spec sp = cs_train_spec_default();
    sp.data = p[0];
    sp.valid = p[1];
    sp.slots = p[2];
    sp.faq = p[3];
    sp.bot = p[4];
    lp_err err = {0};
    cs_bot *b;
    if (cs_train_files(&sp, NULL, NULL, 0, &b, &err) != LP_OK) {
        fprintf(stderr, "train: %s\n", err.msg);
        return -1;
    }
    g_model = lp_test_tmpfile("cs_monitor.lpm");
    lp_status st = cs_bot_save(b, g_model, &err);
    cs_bot_free(b);
    if (st != LP_OK)
        return -1;
    /* the validation texts and labels (the reference's inputs) */
    cs_table t;
    if (cs_table_read(p[1], &t, &err) != LP_OK)
        return -1;
    long jt = cs_table_col(&t, "text"), jl = cs_table_col(&t, "label");
    g_n = t.n_rows;
    g_texts = calloc(g_n, sizeof(char *));
    g_labels = calloc(g_n, sizeof(char *));
    for (size_t i = 0; i < g_n; i++) {
        g_texts[i] = lp_strdup(cs_table_cell(&t, i, (size_t)jt));
        g_labels[i] = lp_strdup(cs_table_cell(&t, i, (size_t)jl));
    }
    cs_table_free(&t);
    return g_n > 10 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    stop();
    cs_strs_free(g_texts, g_n);
    cs_strs_free(g_labels, g_n);
    free(g_model);
    free(g_db);
    return 0;
}

static int post(const char *path, const char *body, http_resp *r)
{
    return http_request(g_port, "POST", path, "Content-Type: application/json\r\n", body,
                        strlen(body), r);
}

/* One turn in a fresh session; the answered intent into intent (cap 64); the turn id. */
static long chat(const char *sid, const char *text, char *intent)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "session_id", sid);
    cJSON_AddStringToObject(b, "text", text);
    char *s = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    http_resp r;
    int status = post("/v1/chat", s, &r);
    free(s);
    if (status != 200)
        fail_msg("chat %d: %s", status, r.body);
    cJSON *o = cJSON_Parse(r.body);
    snprintf(intent, 64, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(o, "intent")));
    long turn = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(o, "turn_id"));
    cJSON_Delete(o);
    http_resp_free(&r);
    return turn;
}

static void test_reference_traffic_and_feedback(void **state)
{
    (void)state;
    start("cs_monitor1.db");
    cJSON *m = get_json_at(g_port, "/v1/monitor");
    assert_int_equal((int)num(drift_of(m, "intent"), "n"), 0);
    assert_int_equal((int)num(cJSON_GetObjectItem(m, "score_drift"), "n"), 0);
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(m, "model_version")),
                           "intent-"));
    assert_null(cJSON_GetObjectItem(m, "reason"));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "live"), "accuracy")));
    cJSON_Delete(m);

    size_t right = 0, labelled = 0;
    for (size_t i = 0; i < N_TURNS; i++) {
        char sid[32], intent[64], body[256];
        snprintf(sid, sizeof sid, "m%zu", i);
        size_t k = i % g_n;
        long turn = chat(sid, g_texts[k], intent);
        if (i % 2 == 0) { /* feedback with the true intent for every other turn */
            snprintf(body, sizeof body,
                     "{\"session_id\":\"%s\",\"turn_id\":%ld,\"intent\":\"%s\"}", sid, turn,
                     g_labels[k]);
            http_resp r;
            assert_int_equal(post("/v1/feedback", body, &r), 200);
            http_resp_free(&r);
            labelled++;
            right += !strcmp(intent, g_labels[k]);
        }
    }
    m = get_json_at(g_port, "/v1/monitor");
    const cJSON *in = drift_of(m, "intent"), *sc = cJSON_GetObjectItem(m, "score_drift");
    assert_int_equal((int)num(in, "n"), N_TURNS);
    assert_int_equal((int)num(sc, "n"), N_TURNS);
    if (cJSON_IsTrue(cJSON_GetObjectItem(in, "drifted")) || !(num(in, "psi") < 0.1))
        fail_msg("intents of the validation texts drifted: psi %g", num(in, "psi"));
    if (cJSON_IsTrue(cJSON_GetObjectItem(sc, "drifted")) || !(num(sc, "psi") < 0.2))
        fail_msg("confidence of the validation texts drifted: psi %g", num(sc, "psi"));
    const cJSON *live = cJSON_GetObjectItem(m, "live");
    assert_int_equal((size_t)num(live, "labelled"), labelled);
    assert_true(fabs(num(live, "accuracy") - (double)right / (double)labelled) < 1e-12);
    assert_true(right < labelled || num(live, "accuracy") == 1.0);
    cJSON_Delete(m);
    stop();
}

static void test_one_intent_drifts(void **state)
{
    (void)state;
    start("cs_monitor2.db");
    for (size_t i = 0; i < N_TURNS; i++) {
        char sid[32], intent[64];
        snprintf(sid, sizeof sid, "s%zu", i);
        chat(sid, i % 2 ? "where is my order" : "when will my order arrive", intent);
    }
    cJSON *m = get_json_at(g_port, "/v1/monitor");
    const cJSON *in = drift_of(m, "intent");
    assert_int_equal((int)num(in, "n"), N_TURNS);
    if (!cJSON_IsTrue(cJSON_GetObjectItem(in, "drifted")) || !(num(in, "psi") > 0.2))
        fail_msg("one intent asked %d times not flagged: psi %g", N_TURNS, num(in, "psi"));
    assert_true(num(in, "ks") > 0.3);
    cJSON_Delete(m);
    stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_traffic_and_feedback),
        cmocka_unit_test(test_one_intent_drifts),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
