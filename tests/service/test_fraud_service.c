/*
 * test_fraud_service.c - lepton-fraud's HTTP API over real loopback HTTP, on a model trained
 * from the project's simulator data (data/fraud/transactions.csv): scoring (score, decision,
 * reasons in words, rules hit, version, latency), labels, entity state, rules and lists, and
 * hostile input - missing / negative amounts, malformed ids, timestamps too late or in the far
 * future, duplicate transaction ids, labels for unknown transactions, a rule that does not
 * parse, malformed JSON - each a 4xx with one clear message and nothing accepted lost. A
 * restart on the same database keeps the state, labels, rules and lists. A text feature
 * column (a merchant category carrying the fraud signal): its value moves the score and is
 * named in the reasons, an unknown value and an absent field both count as missing, a number
 * is a 400 naming the field, and the log replays to the same scores.
 */
#include "lp_test.h"

#include "fraud.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.c"
#include "fraud_common.c"

static char *g_model_path, *g_db_path;
static lp_server *g_srv;
static fraud_service *g_svc;
static unsigned g_port;

static void start(void)
{
    g_port = fc_start(g_model_path, g_db_path, 2, &g_svc, &g_srv);
}

static void stop(void)
{
    fc_stop(&g_svc, &g_srv);
}

static int setup(void **state)
{
    (void)state;
    g_model_path = fc_train_model("fraud.lpm");
    g_db_path = lp_test_tmpfile("fraud.db");
    remove(g_db_path);
    return g_model_path ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    stop();
    free(g_model_path);
    free(g_db_path);
    return 0;
}

static int post(const char *path, const char *body, http_resp *r)
{
    return http_request(g_port, "POST", path, "Content-Type: application/json\r\n", body,
                        strlen(body), r);
}

static cJSON *body_json(const http_resp *r)
{
    cJSON *j = cJSON_Parse(r->body);
    assert_non_null(j);
    return j;
}

/* The error shape with this code; the message must contain `needle`. */
static void expect_error(const http_resp *r, int status, const char *code, const char *needle)
{
    if (r->status != status)
        fail_msg("status %d, expected %d: %s", r->status, status, r->body);
    cJSON *j = body_json(r);
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(e, "code")), code);
    const char *msg = cJSON_GetStringValue(cJSON_GetObjectItem(e, "message"));
    if (!strstr(msg, needle))
        fail_msg("message '%s' lacks '%s'", msg, needle);
    cJSON_Delete(j);
}

static double now_s(void) { return floor(lp_time_wall()); }

static char *tx_body(const char *id, double t, const char *amount, const char *cust,
                     const char *term)
{
    static char b[512];
    snprintf(b, sizeof b,
             "{\"transaction_id\":\"%s\",\"time\":%.0f,\"amount\":%s,\"customer_id\":\"%s\","
             "\"terminal_id\":\"%s\"}",
             id, t, amount, cust, term);
    return b;
}

static void test_score_and_hostile(void **state)
{
    (void)state;
    start();
    double t = now_s() - 3000;
    http_resp r;
    double usual = 0;
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof id, "t%d", i);
        assert_int_equal(post("/v1/score", tx_body(id, t + i * 60, "25.5", "c1", "k1"), &r), 200);
        cJSON *u = body_json(&r);
        usual = cJSON_GetNumberValue(cJSON_GetObjectItem(u, "score"));
        cJSON_Delete(u);
        http_resp_free(&r);
    }
    assert_int_equal(post("/v1/score", tx_body("big", t + 400, "2000", "c1", "k2"), &r), 200);
    cJSON *j = body_json(&r);
    double score = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "score"));
    assert_true(score >= 0 && score <= 1);
    const char *dec = cJSON_GetStringValue(cJSON_GetObjectItem(j, "decision"));
    assert_true(!strcmp(dec, "approve") || !strcmp(dec, "review") || !strcmp(dec, "decline"));
    /* an amount 80x this customer's usual one is far riskier and says why in words */
    assert_true(score > 5 * usual);
    const cJSON *reasons = cJSON_GetObjectItem(j, "reasons");
    assert_true(cJSON_GetArraySize(reasons) >= 1);
    bool amount_reason = false;
    const cJSON *it;
    cJSON_ArrayForEach(it, reasons)
    {
        assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(it, "contribution")) > 0);
        const char *txt = cJSON_GetStringValue(cJSON_GetObjectItem(it, "text"));
        assert_non_null(txt);
        amount_reason |= strstr(txt, "x this customer's 30d mean") != NULL;
    }
    assert_true(amount_reason);
    assert_true(cJSON_IsArray(cJSON_GetObjectItem(j, "rules_hit")));
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(j, "model_version")),
                           "fraud-"));
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(j, "latency_us")) > 0);
    cJSON_Delete(j);
    http_resp_free(&r);

    /* hostile input: each a clear 4xx */
    post("/v1/score", tx_body("big", t + 500, "1", "c1", "k1"), &r);
    expect_error(&r, 409, "conflict", "already scored");
    http_resp_free(&r);
    post("/v1/score", "{\"transaction_id\":\"m1\",\"customer_id\":\"c\",\"terminal_id\":\"k\"}",
         &r);
    expect_error(&r, 400, "invalid_argument", "amount");
    http_resp_free(&r);
    post("/v1/score", tx_body("neg", t + 500, "-5", "c1", "k1"), &r);
    expect_error(&r, 400, "invalid_argument", "negative");
    http_resp_free(&r);
    post("/v1/score", tx_body("huge", t + 500, "1e308", "c1", "k1"), &r);
    expect_error(&r, 400, "invalid_argument", "above 1e15");
    http_resp_free(&r);
    post("/v1/score", tx_body("bad id with spaces", t + 500, "5", "c1", "k1"), &r);
    expect_error(&r, 400, "invalid_argument", "transaction_id");
    http_resp_free(&r);
    post("/v1/score", tx_body("late", t - 7200, "5", "c1", "k1"), &r);
    expect_error(&r, 400, "invalid_argument", "lateness");
    http_resp_free(&r);
    post("/v1/score", tx_body("future", now_s() + 10 * 86400, "5", "c1", "k1"), &r);
    expect_error(&r, 400, "invalid_argument", "future");
    http_resp_free(&r);
    /* a transaction dated an hour ahead would move the state's clock there and make every real
     * one "late": refused; a few minutes of clock skew is fine, and a transaction dated now
     * (no time given) is still taken after it */
    post("/v1/score", tx_body("ahead", now_s() + 3600, "5", "c1", "k1"), &r);
    expect_error(&r, 400, "invalid_argument", "clock skew");
    http_resp_free(&r);
    assert_int_equal(post("/v1/score", tx_body("skewed", now_s() + 200, "5", "c9", "k9"), &r), 200);
    http_resp_free(&r);
    assert_int_equal(post("/v1/score", "{\"transaction_id\":\"dated-now\",\"amount\":3,"
                                       "\"customer_id\":\"c9\",\"terminal_id\":\"k9\"}", &r),
                     200);
    http_resp_free(&r);
    post("/v1/score", "{\"transaction_id\":\"nocust\",\"amount\":3,\"terminal_id\":\"k\"}", &r);
    expect_error(&r, 400, "invalid_argument", "customer_id");
    http_resp_free(&r);
    post("/v1/score", "{\"transaction_id\":", &r);
    assert_int_equal(r.status, 400);
    http_resp_free(&r);
    post("/v1/score", "[1,2,3]", &r);
    assert_int_equal(r.status, 400);
    http_resp_free(&r);

    /* labels: unknown id rejects the whole batch; known ids are stored */
    post("/v1/labels", "{\"labels\":[{\"transaction_id\":\"t0\",\"label\":\"chargeback\"},"
                       "{\"transaction_id\":\"ghost\",\"label\":\"fraud\"}]}",
         &r);
    expect_error(&r, 404, "not_found", "ghost");
    http_resp_free(&r);
    post("/v1/labels", "{\"labels\":[{\"transaction_id\":\"t0\",\"label\":\"maybe\"}]}", &r);
    expect_error(&r, 400, "invalid_argument", "label");
    http_resp_free(&r);
    assert_int_equal(post("/v1/labels", "{\"labels\":[{\"transaction_id\":\"t0\",\"label\":"
                                        "\"chargeback\"},{\"transaction_id\":\"t1\",\"label\":"
                                        "\"confirmed_genuine\"}]}",
                          &r),
                     200);
    assert_non_null(strstr(r.body, "\"accepted\":2"));
    http_resp_free(&r);

    /* entity state */
    assert_int_equal(http_request(g_port, "GET", "/v1/entities/c1?entity=customer_id", NULL, NULL,
                                  0, &r),
                     200);
    j = body_json(&r);
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "transactions_total")), 6);
    cJSON_Delete(j);
    http_resp_free(&r);
    http_request(g_port, "GET", "/v1/entities/nobody", NULL, NULL, 0, &r);
    expect_error(&r, 404, "not_found", "nobody");
    http_resp_free(&r);
    http_request(g_port, "GET", "/v1/entities/c1?entity=colour", NULL, NULL, 0, &r);
    expect_error(&r, 400, "invalid_argument", "colour");
    http_resp_free(&r);

    /* rules: a bad one names the column and the unknown feature; a good one applies */
    const char *bad = "[{\"name\":\"r1\",\"when\":\"amout > 5\",\"action\":\"block\"}]";
    http_request(g_port, "PUT", "/v1/rules", "Content-Type: application/json\r\n", bad,
                 strlen(bad), &r);
    expect_error(&r, 400, "parse_error", "column 1: unknown feature 'amout'");
    http_resp_free(&r);
    /* client bytes in a message: the body stays valid UTF-8 JSON (a cut character or a raw
     * query byte becomes '?') */
    const char *accent = "[{\"name\":\"r\",\"when\":\"amount > 1 \xc3\xa9\xc3\xa9\xc3\xa9"
                         "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\",\"action\":\"block\"}]";
    http_request(g_port, "PUT", "/v1/rules", "Content-Type: application/json\r\n", accent,
                 strlen(accent), &r);
    assert_true(lp_utf8_valid(r.body, strlen(r.body), NULL));
    expect_error(&r, 400, "parse_error", "after the expression");
    http_resp_free(&r);
    http_request(g_port, "GET", "/v1/decisions?limit=%ff", NULL, NULL, 0, &r);
    assert_true(lp_utf8_valid(r.body, strlen(r.body), NULL));
    expect_error(&r, 400, "invalid_argument", "limit");
    http_resp_free(&r);
    /* a rule too long to evaluate safely is refused, not stored */
    size_t terms = 5000;
    char *chain = malloc(2 * terms + 128);
    assert_non_null(chain);
    char *w = chain + sprintf(chain, "[{\"name\":\"long\",\"when\":\"amount > 1");
    for (size_t k = 0; k < terms; k++, w += 2)
        memcpy(w, "+1", 2);
    strcpy(w, "\",\"action\":\"review\"}]");
    http_request(g_port, "PUT", "/v1/rules", "Content-Type: application/json\r\n", chain,
                 strlen(chain), &r);
    expect_error(&r, 400, "parse_error", "more than 1024 terms");
    http_resp_free(&r);
    free(chain);
    const char *good = "[{\"name\":\"huge\",\"when\":\"amount > 4000 and hour >= 0\","
                       "\"action\":\"block\"}]";
    assert_int_equal(http_request(g_port, "PUT", "/v1/rules", "Content-Type: application/json\r\n",
                                  good, strlen(good), &r),
                     200);
    http_resp_free(&r);
    assert_int_equal(post("/v1/score", tx_body("huge1", t + 600, "5000", "c2", "k1"), &r), 200);
    assert_non_null(strstr(r.body, "\"decision\":\"decline\""));
    assert_non_null(strstr(r.body, "\"huge\""));
    http_resp_free(&r);

    /* lists */
    const char *bl = "{\"list\":\"block\",\"entity\":\"customer_id\",\"value\":\"c3\"}";
    assert_int_equal(post("/v1/lists", bl, &r), 200);
    http_resp_free(&r);
    assert_int_equal(post("/v1/score", tx_body("c3tx", t + 700, "3", "c3", "k1"), &r), 200);
    assert_non_null(strstr(r.body, "\"decision\":\"decline\""));
    assert_non_null(strstr(r.body, "list:block"));
    http_resp_free(&r);
    post("/v1/lists", "{\"list\":\"grey\",\"entity\":\"customer_id\",\"value\":\"c3\"}", &r);
    expect_error(&r, 400, "invalid_argument", "list");
    http_resp_free(&r);
    stop();
}

static void test_restart_keeps_state(void **state)
{
    (void)state;
    start(); /* same database as the previous test */
    http_resp r;
    assert_int_equal(http_request(g_port, "GET", "/v1/entities/c1?entity=customer_id", NULL, NULL,
                                  0, &r),
                     200);
    cJSON *j = body_json(&r);
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "transactions_total")), 6);
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(j, "block_listed")));
    cJSON_Delete(j);
    http_resp_free(&r);
    /* ids, rules and lists survived */
    post("/v1/score", tx_body("t3", now_s(), "1", "c1", "k1"), &r);
    expect_error(&r, 409, "conflict", "already scored");
    http_resp_free(&r);
    assert_int_equal(http_request(g_port, "GET", "/v1/rules", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "\"huge\""));
    http_resp_free(&r);
    assert_int_equal(http_request(g_port, "GET", "/v1/lists", NULL, NULL, 0, &r), 200);
    assert_non_null(strstr(r.body, "c3"));
    http_resp_free(&r);
    /* labels survived: a late label for t0 exists, so labelling again still works and an
     * unknown id is still refused */
    post("/v1/labels", "{\"transaction_id\":\"t0\",\"label\":\"fraud\"}", &r);
    assert_int_equal(r.status, 200);
    http_resp_free(&r);
    assert_int_equal(http_request(g_port, "GET", "/healthz", NULL, NULL, 0, &r), 200);
    http_resp_free(&r);
    stop();
}

/* The simulator data plus a text column "category" that carries the fraud signal: 70% of the
 * frauds are "shopping_net", the rest of the rows spread over 8 categories (lp_rng, fixed). */
static lp_frame *category_data(void)
{
    static const char *const cats[] = {"entertainment", "food_dining", "gas_transport",
                                       "grocery_pos",   "health_fitness", "home",
                                       "shopping_net",  "travel"};
    lp_frame *f = fc_read_data();
    assert_non_null(f);
    long jl = lp_frame_find(f, "tx_fraud");
    assert_true(jl >= 0);
    const lp_column *lab = lp_frame_col(f, (size_t)jl);
    size_t n = lp_frame_nrows(f);
    const char **v = calloc(n, sizeof(char *));
    lp_rng rng;
    lp_rng_seed(&rng, 11);
    for (size_t i = 0; i < n; i++) {
        double u = lp_rng_uniform(&rng);
        v[i] = lab->num[i] != 0 && u < 0.7 ? "shopping_net"
                                           : cats[(size_t)(lp_rng_uniform(&rng) * 8) % 8];
    }
    lp_err err;
    assert_int_equal(lp_frame_add_categorical(f, "category", v, n, &err), LP_OK);
    free(v);
    double *risk = calloc(n, sizeof(double)); /* a numeric extra column, constant: no split */
    for (size_t i = 0; i < n; i++)
        risk[i] = 0.5;
    assert_int_equal(lp_frame_add_numeric(f, "device_risk", LP_COL_KIND_FLOAT, risk, NULL, n,
                                          &err),
                     LP_OK);
    free(risk);
    return f;
}

static double score_of(const http_resp *r, char *reasons, size_t cap)
{
    if (r->status != 200)
        fail_msg("status %d: %s", r->status, r->body);
    cJSON *j = body_json(r);
    double s = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "score"));
    char *rs = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "reasons"));
    snprintf(reasons, cap, "%s", rs);
    free(rs);
    cJSON_Delete(j);
    return s;
}

static void test_text_field(void **state)
{
    (void)state;
    lp_frame *f = category_data();
    lp_model *m = fc_train(f);
    lp_frame_free(f);
    assert_non_null(m);
    char *model = lp_test_tmpfile("fraud_cat.lpm"), *db = lp_test_tmpfile("fraud_cat.db");
    remove(db);
    lp_err err;
    assert_int_equal(lp_model_save(m, model, &err), LP_OK);
    fraud_scorer *fs = NULL;
    assert_int_equal(fraud_scorer_new(m, &fs, &err), LP_OK); /* takes m */
    const fraud_config *c = fraud_scorer_config(fs);
    assert_int_equal((int)c->feat.n_text, 1);
    assert_string_equal(c->feat.text[0], "category");
    assert_int_equal((int)c->feat.n_values[0], 8);
    assert_string_equal(c->feat.values[0][0], "entertainment"); /* sorted */
    assert_string_equal(c->feat.values[0][6], "shopping_net");
    fraud_scorer_free(fs);
    fraud_service *svc = NULL;
    lp_server *srv = NULL;
    g_port = fc_start(model, db, 2, &svc, &srv);
    /* the same time, each a new customer and terminal: only the category differs */
    double t = now_s() - 600;
    static const char *const cat[] = {"\"category\":\"shopping_net\",",
                                      "\"category\":\"crypto_atm\",", "",
                                      "\"category\":null,", "\"category\":\"home\","};
    double sc[5];
    char rs[5][2048], body[512];
    http_resp r;
    for (int i = 0; i < 5; i++) {
        snprintf(body, sizeof body,
                 "{\"transaction_id\":\"cat%d\",\"time\":%.0f,\"amount\":40,%s"
                 "\"customer_id\":\"cc%d\",\"terminal_id\":\"ct%d\"}",
                 i, t, cat[i], i, i);
        post("/v1/score", body, &r);
        sc[i] = score_of(&r, rs[i], sizeof rs[i]);
        http_resp_free(&r);
    }
    /* an unknown value, an absent field and null are all the missing value */
    assert_true(sc[1] == sc[2] && sc[2] == sc[3]);
    /* the fraud category is riskier than an ordinary one, and the reason says it in words */
    if (!(sc[0] > 2 * sc[4]))
        fail_msg("score with shopping_net %g, with home %g", sc[0], sc[4]);
    if (!strstr(rs[0], "category is 'shopping_net'"))
        fail_msg("reasons lack the category: %s", rs[0]);
    /* a number as the text field, and a numeric field beyond what a float feature holds, are
     * refused naming the field */
    static const char *const bad[][2] = {
        {"\"category\":3", "field 'category': expected a string"},
        {"\"device_risk\":1e300", "field 'device_risk': 1e+300 is beyond the float"}};
    for (int i = 0; i < 2; i++) {
        snprintf(body, sizeof body,
                 "{\"transaction_id\":\"bad%d\",\"time\":%.0f,\"amount\":40,%s,"
                 "\"customer_id\":\"cb%d\",\"terminal_id\":\"tb%d\"}",
                 i, t, bad[i][0], i, i);
        post("/v1/score", body, &r);
        expect_error(&r, 400, "invalid_argument", bad[i][1]);
        http_resp_free(&r);
    }
    fc_stop(&svc, &srv);
    /* the logged requests replayed through a fresh state give the logged scores */
    assert_int_equal((int)fc_check_log_replay(db, model), 5);
    remove(db);
    remove(model);
    free(db);
    free(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_score_and_hostile),
        cmocka_unit_test(test_restart_keeps_state),
        cmocka_unit_test(test_text_field),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
