/*
 * test_cs_service.c - lepton-customer-service over real loopback HTTP: a conversation on the
 * default support bot (slot question, slot filled, hand-off by request and by repeated
 * misses), sessions, feedback and retrain, and hostile input (empty text, 1 MB text, invalid
 * UTF-8, emoji and non-Latin scripts, unknown session, malformed JSON) - each a clear 4xx error
 * or a sensible answer, never a crash.
 */
#include "lp_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cs.h"
#include "http_client.c"

static cs_service *g_svc;
static unsigned g_port;
static char *g_model, *g_db;

static int setup(void **state)
{
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
    g_model = lp_test_tmpfile("cs_service.lpm");
    g_db = lp_test_tmpfile("cs_service.db");
    remove(g_db);
    lp_status st = cs_bot_save(b, g_model, &err);
    cs_bot_free(b);
    if (st != LP_OK)
        return -1;
    cs_service_opts o = cs_service_opts_default();
    o.model_path = g_model;
    o.db_path = g_db;
    o.server.port = 0;
    o.server.threads = 2;
    if (cs_service_new(&o, &g_svc, &err) != LP_OK ||
        lp_server_start(cs_service_server(g_svc), &err) != LP_OK) {
        fprintf(stderr, "service: %s\n", err.msg);
        return -1;
    }
    lp_server_set_ready(cs_service_server(g_svc), true);
    g_port = lp_server_port(cs_service_server(g_svc));
    return 0;
}

static int teardown(void **state)
{
    cs_service_free(g_svc);
    free(g_model);
    free(g_db);
    return 0;
}

static int post(const char *path, const char *body, size_t len, http_resp *r)
{
    memset(r, 0, sizeof(*r));
    return http_request(g_port, "POST", path, "Content-Type: application/json\r\n", body, len, r);
}

/* POST /v1/chat and parse the answer (NULL unless 200). */
static cJSON *chat(const char *sid, const char *text, int *status)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "session_id", sid);
    cJSON_AddStringToObject(b, "text", text);
    char *s = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    http_resp r;
    *status = post("/v1/chat", s, strlen(s), &r);
    free(s);
    cJSON *o = *status == 200 ? cJSON_Parse(r.body) : NULL;
    http_resp_free(&r);
    return o;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static void assert_error_shape(const http_resp *r, int status, const char *needle)
{
    assert_int_equal(r->status, status);
    cJSON *o = cJSON_Parse(r->body);
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    assert_non_null(e);
    assert_non_null(jstr(e, "code"));
    if (needle && !strstr(jstr(e, "message"), needle))
        fail_msg("error message '%s' lacks '%s'", jstr(e, "message"), needle);
    cJSON_Delete(o);
}

static void test_conversation(void **state)
{
    int st;
    cJSON *o = chat("c1", "where is my order", &st);
    assert_int_equal(st, 200);
    assert_string_equal(jstr(o, "intent"), "order_status");
    assert_non_null(strstr(jstr(o, "reply"), "order number"));
    const cJSON *alts = cJSON_GetObjectItem(o, "alternatives");
    assert_true(cJSON_GetArraySize(alts) == 3);
    double c = cJSON_GetObjectItem(o, "confidence")->valuedouble;
    assert_true(c > 0 && c <= 1);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "handoff"), "needed")));
    cJSON_Delete(o);
    /* the order number fills the pending slot; entities carry byte offsets */
    o = chat("c1", "it is ORD-48213", &st);
    assert_int_equal(st, 200);
    assert_non_null(strstr(jstr(o, "reply"), "ORD-48213"));
    const cJSON *e = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "entities"), 0);
    assert_string_equal(jstr(e, "type"), "order_number");
    assert_int_equal(cJSON_GetObjectItem(e, "start")->valueint, 6);
    assert_int_equal(cJSON_GetObjectItem(e, "end")->valueint, 15);
    long turn = (long)cJSON_GetObjectItem(o, "turn_id")->valuedouble;
    cJSON_Delete(o);
    /* a bare number answers the bot's question for an order number, whatever the intent
     * classifier makes of it, and is no order number when nothing asked for one */
    o = chat("c3", "where is my order", &st);
    cJSON_Delete(o);
    o = chat("c3", "12345", &st);
    assert_int_equal(st, 200);
    assert_non_null(strstr(jstr(o, "reply"), "Order 12345 "));
    e = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "entities"), 0);
    assert_string_equal(jstr(e, "value"), "12345");
    cJSON_Delete(o);
    o = chat("c4", "12345", &st);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "entities")), 0);
    cJSON_Delete(o);
    /* asking for a person hands off with the reason */
    o = chat("c1", "can I talk to a real person please", &st);
    const cJSON *h = cJSON_GetObjectItem(o, "handoff");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(h, "needed")));
    assert_string_equal(jstr(h, "reason"), "user_requested");
    cJSON_Delete(o);
    /* the session shows three turns, the slot, and redacted text */
    o = chat("c2", "my email is jane@example.com and my phone 415-555-2671", &st);
    assert_int_equal(st, 200);
    cJSON_Delete(o);
    http_resp r = {0};
    assert_int_equal(http_request(g_port, "GET", "/v1/sessions/c1", NULL, NULL, 0, &r), 200);
    o = cJSON_Parse(r.body);
    assert_int_equal(cJSON_GetObjectItem(o, "turns")->valueint, 3);
    assert_string_equal(jstr(cJSON_GetObjectItem(o, "slots"), "order_number"), "ORD-48213");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "handed_off")));
    cJSON_Delete(o);
    http_resp_free(&r);
    /* ?limit= keeps the newest turns; a bad limit is a 400 naming it */
    assert_int_equal(http_request(g_port, "GET", "/v1/sessions/c1?limit=2", NULL, NULL, 0, &r),
                     200);
    o = cJSON_Parse(r.body);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "history")), 2);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "history_truncated")));
    cJSON_Delete(o);
    http_resp_free(&r);
    assert_int_equal(http_request(g_port, "GET", "/v1/sessions/c1?limit=0", NULL, NULL, 0, &r),
                     400);
    assert_error_shape(&r, 400, "limit");
    http_resp_free(&r);
    assert_int_equal(http_request(g_port, "GET", "/v1/sessions/c2", NULL, NULL, 0, &r), 200);
    assert_null(strstr(r.body, "jane@example.com"));
    assert_null(strstr(r.body, "555-2671"));
    assert_non_null(strstr(r.body, "[EMAIL]"));
    assert_non_null(strstr(r.body, "[PHONE]"));
    http_resp_free(&r);
    /* feedback on a turn: stored; unknown intent and unknown turn refused */
    char body[256];
    snprintf(body, sizeof(body),
             "{\"session_id\":\"c1\",\"turn_id\":%ld,\"intent\":\"order_status\"}", turn);
    assert_int_equal(post("/v1/feedback", body, strlen(body), &r), 200);
    http_resp_free(&r);
    snprintf(body, sizeof(body), "{\"session_id\":\"c1\",\"turn_id\":%ld,\"intent\":\"nope\"}",
             turn);
    post("/v1/feedback", body, strlen(body), &r);
    assert_error_shape(&r, 400, "intent");
    http_resp_free(&r);
    snprintf(body, sizeof(body),
             "{\"session_id\":\"c1\",\"turn_id\":999999,\"intent\":\"greeting\"}");
    post("/v1/feedback", body, strlen(body), &r);
    assert_error_shape(&r, 404, "999999");
    http_resp_free(&r);
    /* a turn id past 2^53 would be rounded to another turn's: refused */
    snprintf(body, sizeof(body),
             "{\"session_id\":\"c1\",\"turn_id\":9007199254740993,\"intent\":\"greeting\"}");
    post("/v1/feedback", body, strlen(body), &r);
    assert_error_shape(&r, 400, "turn_id");
    http_resp_free(&r);
    /* retrain with the correction: answers with before/after metrics and a swap decision */
    assert_int_equal(post("/v1/admin/retrain", "{}", 2, &r), 200);
    o = cJSON_Parse(r.body);
    assert_int_equal(cJSON_GetObjectItem(o, "corrections")->valueint, 1);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "after"), "macro_f1"));
    assert_true(cJSON_IsBool(cJSON_GetObjectItem(o, "swapped")));
    cJSON_Delete(o);
    http_resp_free(&r);
    /* still answering after the retrain */
    o = chat("c3", "hello", &st);
    assert_int_equal(st, 200);
    cJSON_Delete(o);
}

static void test_repeated_misses(void **state)
{
    int st;
    cJSON *o = chat("m1", "what is the capital of france", &st);
    assert_int_equal(st, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "out_of_scope")));
    cJSON_Delete(o);
    o = chat("m1", "recommend a movie about space", &st);
    const cJSON *h = cJSON_GetObjectItem(o, "handoff");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(h, "needed")));
    assert_string_equal(jstr(h, "reason"), "repeated_low_confidence");
    cJSON_Delete(o);
}

static void test_hostile(void **state)
{
    http_resp r;
    int st;
    /* empty and blank text */
    cJSON *o = chat("h1", "", &st);
    assert_int_equal(st, 400);
    o = chat("h1", "   \t ", &st);
    assert_int_equal(st, 400);
    o = chat("h1", "\xc2\xa0\xe3\x80\x80\xe2\x80\x8b", &st); /* U+00A0 U+3000 U+200B */
    assert_int_equal(st, 400);
    /* a session id GET /v1/sessions/{id} could not name */
    o = chat("a/b", "hello", &st);
    assert_int_equal(st, 400);
    o = chat("a\nb", "hello", &st);
    assert_int_equal(st, 400);
    /* 1 MB text: over the body limit */
    size_t big = 1 << 20;
    char *b = malloc(big + 64);
    int n = snprintf(b, 64, "{\"session_id\":\"h1\",\"text\":\"");
    memset(b + n, 'a', big);
    memcpy(b + n + big, "\"}", 3);
    memset(&r, 0, sizeof(r));
    st = post("/v1/chat", b, strlen(b), &r);
    /* The layer answers 413 as soon as the headers announce too much and closes without reading
     * the rest; a client still sending can see the connection reset before it reads that reply
     * (no status). Either is a refusal; the requests below check the server still serves. */
    assert_true(st == 413 || st == 400 || st <= 0);
    http_resp_free(&r);
    free(b);
    /* invalid UTF-8 */
    const char bad[] = "{\"session_id\":\"h1\",\"text\":\"caf\xc3\x28\"}";
    post("/v1/chat", bad, sizeof(bad) - 1, &r);
    assert_error_shape(&r, 400, "UTF-8");
    http_resp_free(&r);
    /* emoji and non-Latin scripts: a sensible answer */
    const char *texts[] = {"😀😀 where is my order 📦", "我的订单在哪里", "Где мой заказ?", "أين طلبي",
                           "\xe2\x80\x8b hi",        "ORD-11111 ✅"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        o = chat("h2", texts[i], &st);
        assert_int_equal(st, 200);
        assert_non_null(jstr(o, "reply"));
        assert_non_null(jstr(o, "intent"));
        cJSON_Delete(o);
    }
    /* unknown session */
    memset(&r, 0, sizeof(r));
    assert_int_equal(http_request(g_port, "GET", "/v1/sessions/nobody", NULL, NULL, 0, &r), 404);
    assert_error_shape(&r, 404, "nobody");
    http_resp_free(&r);
    /* malformed JSON, wrong types, missing and unknown fields */
    const char *bodies[] = {"{\"session_id\":\"x\",\"text\":",
                            "[1,2]",
                            "{\"session_id\":1,\"text\":\"hi\"}",
                            "{\"text\":\"hi\"}",
                            "{\"session_id\":\"x\",\"text\":\"hi\",\"z\":1}",
                            "{\"session_id\":\"\",\"text\":\"hi\"}",
                            ""};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        memset(&r, 0, sizeof(r));
        st = post("/v1/chat", bodies[i], strlen(bodies[i]), &r);
        if (st != 400)
            fail_msg("body '%s': status %d, expected 400", bodies[i], st);
        assert_error_shape(&r, 400, NULL);
        http_resp_free(&r);
    }
    /* an over-long session id */
    char sid[300];
    memset(sid, 's', sizeof(sid) - 1);
    sid[sizeof(sid) - 1] = 0;
    o = chat(sid, "hi", &st);
    assert_int_equal(st, 400);
    /* shared endpoints still answer */
    assert_int_equal(http_request(g_port, "GET", "/healthz", NULL, NULL, 0, &r), 200);
    http_resp_free(&r);
    assert_int_equal(http_request(g_port, "GET", "/metrics", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "cs_turns_total"));
    http_resp_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conversation),
        cmocka_unit_test(test_repeated_misses),
        cmocka_unit_test(test_hostile),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
