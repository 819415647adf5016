/*
 * test_cs_adapters.c - tenant intent adapters in lepton-customer-service over real loopback
 * HTTP: a base intent model trained here on six intents (+ OOS), a tenant's two new intents
 * learned from eight examples each as a LoRA adapter (.lpa v2), served with
 * adapters = {"tenant-a=FILE"}; per request "adapter" picks it on /v1/intent and /v1/chat, the
 * base answers without it, an unknown adapter is a 400 naming it, OOS still detected under the
 * adapter, an adapter for another base is refused at start, reload keeps the adapters, retrain
 * is refused while they are loaded.
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
static char *g_model, *g_db, *g_lpa, *g_other;

/* Keyword sets per intent; a row is a template around one or two of its words. */
typedef struct intent_words {
    const char *label;
    const char *w[4];
} intent_words;

static const intent_words base_intents[] = {
    {"order_status", {"order", "parcel", "tracking", "shipped"}},
    {"refund", {"refund", "money", "reimburse", "repaid"}},
    {"password", {"password", "login", "locked", "reset"}},
    {"delivery", {"delivery", "courier", "weekend", "arrive"}},
    {"greeting", {"hello", "hi", "morning", "hey"}},
    {"goodbye", {"bye", "goodbye", "later", "thanks"}},
};
/* OOS rows; they also bring the tenant's words into the base vocabulary (min_df 2) */
static const char *const oos_rows[] = {
    "recommend a movie",         "what is the weather tomorrow", "tell me a joke",
    "who won the football game", "play some music",              "what is the capital of peru",
    "gift ideas for my mother",  "is a gift wrapped nicely",     "the card game rules",
    "my card collection",        "repair my bike",               "bike repair shop near me",
    "warranty of my toaster",    "extended warranty on cars",    "balance my diet",
    "yoga for balance",          "a broken heart song",          "broken window repair",
};
static const char *const templates[] = {"%s", "my %s please", "question about %s",
                                        "can you help with %s", "i need %s now",
                                        "%s help", "about the %s"};

static const intent_words tenant_intents[] = {
    {"gift_card", {"gift", "card", "balance", "gift card"}},
    {"warranty", {"warranty", "repair", "broken", "warranty repair"}},
};

static void add_rows(const intent_words *iw, size_t n_rows, char ***tx, char ***lb, size_t *n)
{
    for (size_t i = 0; i < n_rows; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, templates[i % 7], iw->w[(i + i / 7) % 4]);
        *tx = realloc(*tx, (*n + 1) * sizeof(char *));
        *lb = realloc(*lb, (*n + 1) * sizeof(char *));
        (*tx)[*n] = strdup(buf);
        (*lb)[(*n)++] = strdup(iw->label);
    }
}

static void free_rows(char **tx, char **lb, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(tx[i]);
        free(lb[i]);
    }
    free(tx);
    free(lb);
}

static cs_intent *train_base(uint64_t seed)
{
    char **tx = NULL, **lb = NULL;
    size_t n = 0;
    for (size_t k = 0; k < 6; k++)
        add_rows(&base_intents[k], 14, &tx, &lb, &n);
    for (size_t i = 0; i < sizeof oos_rows / sizeof *oos_rows; i++) {
        tx = realloc(tx, (n + 1) * sizeof(char *));
        lb = realloc(lb, (n + 1) * sizeof(char *));
        tx[n] = strdup(oos_rows[i]);
        lb[n++] = strdup("oos");
    }
    cs_intent_opts o = cs_intent_opts_default();
    o.seed = seed;
    cs_intent *m = NULL;
    lp_err err = {0};
    if (cs_intent_train((const char *const *)tx, (const char *const *)lb, n, NULL, NULL, 0, &o,
                        &m, &err) != LP_OK)
        fprintf(stderr, "train: %s\n", err.msg);
    free_rows(tx, lb, n);
    return m;
}

static int save_bot(cs_intent *m, const char *path)
{
    cs_bot b = {.intent = m};
    lp_err err = {0};
    if (cs_bot_save(&b, path, &err) != LP_OK) {
        fprintf(stderr, "save: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int setup(void **state)
{
    (void)state;
    g_model = lp_test_tmpfile("cs_ad_base.lpm");
    g_other = lp_test_tmpfile("cs_ad_other.lpa");
    g_lpa = lp_test_tmpfile("cs_ad_tenant.lpa");
    g_db = lp_test_tmpfile("cs_ad.db");
    remove(g_db);
    cs_intent *m = train_base(42);
    if (!m || save_bot(m, g_model))
        return -1;
    cs_intent_free(m);
    /* reload from the file: the adapter names the saved file's sha256 */
    cs_bot *b = NULL;
    lp_err err = {0};
    if (cs_bot_load(g_model, &b, &err) != LP_OK)
        return -1;
    char **tx = NULL, **lb = NULL;
    size_t n = 0;
    for (size_t k = 0; k < 2; k++)
        add_rows(&tenant_intents[k], 8, &tx, &lb, &n);
    for (size_t k = 0; k < 6; k++) /* a couple of anchors of the existing intents */
        add_rows(&base_intents[k], 2, &tx, &lb, &n);
    /* and of OOS: the base learned the tenant's words as out of scope, and only the classes in
     * the tenant's rows have their rows of B trained */
    for (size_t i = 0; i < 4; i++) {
        tx = realloc(tx, (n + 1) * sizeof(char *));
        lb = realloc(lb, (n + 1) * sizeof(char *));
        tx[n] = strdup(oos_rows[i]);
        lb[n++] = strdup("oos");
    }
    cs_tenant_opts to = cs_tenant_opts_default();
    to.rank = 4;
    lp_lora *a = NULL;
    lp_status st = cs_tenant_train(b->intent, (const char *const *)tx, (const char *const *)lb,
                                   n, &to, &a, NULL, &err);
    if (st == LP_OK)
        st = lp_lora_save(a, g_lpa, &err);
    lp_lora_free(a);
    free_rows(tx, lb, n);
    cs_bot_free(b);
    if (st != LP_OK) {
        fprintf(stderr, "tenant: %s\n", err.msg);
        return -1;
    }
    const char *ads[] = {NULL};
    char spec[600];
    snprintf(spec, sizeof spec, "tenant-a=%s", g_lpa);
    ads[0] = spec;
    cs_service_opts o = cs_service_opts_default();
    o.model_path = g_model;
    o.db_path = g_db;
    o.server.port = 0;
    o.server.threads = 2;
    o.adapters = ads;
    o.n_adapters = 1;
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
    (void)state;
    cs_service_free(g_svc);
    free(g_model);
    free(g_db);
    free(g_lpa);
    free(g_other);
    return 0;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

/* POST path with {"text", "adapter" (NULL = absent)[, "session_id"]}; the parsed body. */
static cJSON *ask(const char *path, const char *text, const char *adapter, int *status)
{
    cJSON *b = cJSON_CreateObject();
    cJSON_AddStringToObject(b, "text", text);
    if (adapter)
        cJSON_AddStringToObject(b, "adapter", adapter);
    if (!strcmp(path, "/v1/chat"))
        cJSON_AddStringToObject(b, "session_id", "s1");
    char *s = cJSON_PrintUnformatted(b);
    cJSON_Delete(b);
    http_resp r;
    memset(&r, 0, sizeof r);
    *status = http_request(g_port, "POST", path, "Content-Type: application/json\r\n", s,
                           strlen(s), &r);
    free(s);
    cJSON *o = cJSON_Parse(r.body ? r.body : "");
    http_resp_free(&r);
    return o;
}

/* The answer's intent, or with top_alt its most probable in-scope intent (alternatives[0]),
 * which a text the base would call out of scope can still show. */
static const char *intent_of_x(const char *path, const char *text, const char *adapter,
                               bool top_alt)
{
    static char out[128];
    int st;
    cJSON *o = ask(path, text, adapter, &st);
    assert_int_equal(st, 200);
    const cJSON *alt0 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "alternatives"), 0);
    snprintf(out, sizeof out, "%s", top_alt ? jstr(alt0, "intent") : jstr(o, "intent"));
    if (adapter)
        assert_string_equal(jstr(o, "adapter"), adapter);
    if (getenv("CS_AD_DEBUG")) {
        char *t = cJSON_PrintUnformatted(o);
        fprintf(stderr, "%s -> %s\n", text, t);
        free(t);
    }
    cJSON_Delete(o);
    return out;
}

static const char *intent_of(const char *path, const char *text, const char *adapter)
{
    return intent_of_x(path, text, adapter, false);
}

static void test_adapter_picks_new_intents(void **state)
{
    (void)state;
    /* the tenant's intents, on texts not in its training rows (the base learned "gift",
     * "card", "repair", ... from out-of-scope rows: longer texts may stay out of scope, but
     * their best in-scope intent is the tenant's) */
    assert_string_equal(intent_of("/v1/intent", "gift card balance", "tenant-a"), "gift_card");
    assert_string_equal(intent_of("/v1/intent", "broken warranty repair", "tenant-a"),
                        "warranty");
    assert_string_equal(intent_of("/v1/chat", "the gift card balance", "tenant-a"),
                        "gift_card");
    assert_string_equal(intent_of_x("/v1/intent", "what balance is left on my gift card",
                                    "tenant-a", true), "gift_card");
    assert_string_equal(intent_of_x("/v1/intent", "is the repair covered by warranty",
                                    "tenant-a", true), "warranty");
    /* the base cannot answer them: it has no such intents */
    assert_string_not_equal(intent_of_x("/v1/intent", "gift card balance", NULL, true),
                            "gift_card");
    int st;
    cJSON *o = ask("/v1/intent", "warranty repair", NULL, &st);
    assert_int_equal(st, 200);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(o, "adapter")));
    cJSON_Delete(o);
    /* the base's own intents still answer under the adapter */
    assert_string_equal(intent_of("/v1/intent", "where is my parcel tracking", "tenant-a"),
                        "order_status");
    assert_string_equal(intent_of("/v1/intent", "reset my password", "tenant-a"), "password");
}

static void test_oos_under_adapter(void **state)
{
    (void)state;
    int st;
    cJSON *o = ask("/v1/intent", "recommend a movie", "tenant-a", &st);
    assert_int_equal(st, 200);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "out_of_scope")));
    assert_string_equal(jstr(o, "intent"), "oos");
    cJSON_Delete(o);
}

static void test_unknown_adapter(void **state)
{
    (void)state;
    int st;
    const char *paths[] = {"/v1/intent", "/v1/chat"};
    for (int i = 0; i < 2; i++) {
        cJSON *o = ask(paths[i], "gift card", "tenant-zz", &st);
        assert_int_equal(st, 400);
        const cJSON *e = cJSON_GetObjectItem(o, "error");
        assert_non_null(strstr(jstr(e, "message"), "tenant-zz"));
        cJSON_Delete(o);
    }
}

static void test_reload_and_retrain(void **state)
{
    (void)state;
    /* what SIGHUP and the (key-protected) admin route run */
    lp_err err = {0};
    assert_int_equal(lp_server_reload(cs_service_server(g_svc), &err), LP_OK);
    assert_string_equal(intent_of("/v1/intent", "gift card balance", "tenant-a"), "gift_card");
    http_resp r;
    memset(&r, 0, sizeof r);
    int st = http_request(g_port, "POST", "/v1/admin/retrain", "Content-Type: application/json\r\n",
                      "{}", 2, &r);
    assert_int_equal(st, 409);
    assert_non_null(strstr(r.body, "adapter"));
    http_resp_free(&r);
}

static void test_other_base_refused(void **state)
{
    (void)state;
    /* an adapter trained for another base (another seed) is refused at start, naming it */
    cs_intent *m2 = train_base(7);
    assert_non_null(m2);
    char *p2 = lp_test_tmpfile("cs_ad_base2.lpm");
    assert_int_equal(save_bot(m2, p2), 0);
    cs_intent_free(m2);
    char spec[600];
    snprintf(spec, sizeof spec, "tenant-a=%s", g_lpa);
    const char *ads[] = {spec};
    cs_service_opts o = cs_service_opts_default();
    o.model_path = p2;
    o.db_path = g_db;
    o.server.port = 0;
    o.adapters = ads;
    o.n_adapters = 1;
    cs_service *s = NULL;
    lp_err err = {0};
    assert_int_equal(cs_service_new(&o, &s, &err), LP_EINVAL);
    assert_null(s);
    assert_non_null(strstr(err.msg, "tenant-a"));
    assert_non_null(strstr(err.msg, "sha256"));
    /* a malformed spec */
    const char *bad[] = {"no-equals-sign"};
    o.adapters = bad;
    assert_int_equal(cs_service_new(&o, &s, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "NAME=FILE"));
    free(p2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adapter_picks_new_intents),
        cmocka_unit_test(test_oos_under_adapter),
        cmocka_unit_test(test_unknown_adapter),
        cmocka_unit_test(test_reload_and_retrain),
        cmocka_unit_test(test_other_base_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
