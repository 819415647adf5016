/*
 * test_fraud_monitor.c - lepton-fraud's GET /v1/monitor over real loopback HTTP, on a model
 * trained from data/fraud/transactions.csv: the last rows of that file, replayed as they are
 * (times moved by whole weeks, so hour and weekday keep their values), report no drift of the
 * amount or the hour; the same rows with amounts x10 flag the amount and not the hour; a
 * restart on the same database rebuilds the drift counts; live accuracy and AUROC come from
 * the labels posted to /v1/labels (accuracy checked against a count made here from the scores
 * the service answered); a model whose drift section does not load reports an empty drift with
 * a reason.
 */
#include "lp_test.h"

#include "fraud.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.c"
#include "fraud_common.c"
#include "monitor_util.h"

#define N_ROWS 1200

static char *g_model_path, *g_bad_model_path;
static lp_server *g_srv;
static fraud_service *g_svc;
static unsigned g_port;
static lp_frame *g_data;
static size_t g_first; /* first of the N_ROWS rows replayed (the file is in time order) */

static void start(const char *model_path, const char *db_path)
{
    g_port = fc_start(model_path, db_path, 2, &g_svc, &g_srv);
}

static void stop(void)
{
    fc_stop(&g_svc, &g_srv);
}

static int setup(void **state)
{
    (void)state;
    g_data = fc_read_data();
    lp_model *m = g_data ? fc_train(g_data) : NULL;
    if (!m)
        return -1;
    lp_err err;
    g_model_path = lp_test_tmpfile("fraudmon.lpm");
    g_bad_model_path = lp_test_tmpfile("fraudmon_bad.lpm");
    lp_status st = lp_model_save(m, g_model_path, &err);
    /* the same model with a drift section that does not parse */
    if (!st)
        st = lp_model_set_extra(m, "drift", "not a drift reference", 21, &err);
    if (!st)
        st = lp_model_save(m, g_bad_model_path, &err);
    lp_model_free(m);
    g_first = lp_frame_nrows(g_data) - N_ROWS;
    return st ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    stop();
    lp_frame_free(g_data);
    free(g_model_path);
    free(g_bad_model_path);
    return 0;
}

/* Replay the last N_ROWS rows with amounts times amount_mul, ids prefixed; scores[i] gets the
 * score the service answered. Times move by whole weeks to end within the last week. */
static void replay(const char *prefix, double amount_mul, double *scores)
{
    const lp_column *tc = lp_frame_col(g_data, lp_frame_find(g_data, "tx_datetime"));
    const lp_column *ac = lp_frame_col(g_data, lp_frame_find(g_data, "tx_amount"));
    const lp_column *cc = lp_frame_col(g_data, lp_frame_find(g_data, "customer_id"));
    const lp_column *kc = lp_frame_col(g_data, lp_frame_find(g_data, "terminal_id"));
    size_t n = lp_frame_nrows(g_data);
    double week = 7 * 86400.0;
    double shift = floor((floor(lp_time_wall()) - tc->num[n - 1]) / week) * week;
    for (size_t i = 0; i < N_ROWS; i++) {
        size_t r = g_first + i;
        char body[512];
        snprintf(body, sizeof body,
                 "{\"transaction_id\":\"%s%zu\",\"time\":%.0f,\"amount\":%.2f,"
                 "\"customer_id\":\"%.0f\",\"terminal_id\":\"%.0f\"}",
                 prefix, r, tc->num[r] + shift, ac->num[r] * amount_mul, cc->num[r], kc->num[r]);
        http_resp res;
        int s = http_request(g_port, "POST", "/v1/score", "Content-Type: application/json\r\n",
                             body, strlen(body), &res);
        if (s != 200)
            fail_msg("row %zu: status %d: %s", r, s, res.body);
        cJSON *j = cJSON_Parse(res.body);
        scores[i] = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "score"));
        cJSON_Delete(j);
        http_resp_free(&res);
    }
}

static void test_drift_and_live(void **state)
{
    (void)state;
    char *db = lp_test_tmpfile("fraudmon.db");
    remove(db);
    start(g_model_path, db);

    /* before any traffic: every feature listed with n = 0, nothing flagged, live all null */
    cJSON *m = get_json_at(g_port, "/v1/monitor");
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(m, "drift")) > 10);
    assert_int_equal((int)num(drift_of(m, "amount"), "n"), 0);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(drift_of(m, "amount"), "drifted")));
    assert_non_null(cJSON_GetObjectItem(m, "score_drift"));
    assert_int_equal((int)num(cJSON_GetObjectItem(m, "live"), "labelled"), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "live"), "accuracy")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "live"), "auroc")));
    assert_null(cJSON_GetObjectItem(m, "reason"));
    cJSON_Delete(m);

    /* rows from the training data: amount and hour not drifted */
    double *scores = malloc(N_ROWS * sizeof(double));
    assert_non_null(scores);
    replay("a", 1.0, scores);
    m = get_json_at(g_port, "/v1/monitor");
    const cJSON *amt = drift_of(m, "amount"), *hour = drift_of(m, "hour");
    assert_int_equal((int)num(amt, "n"), N_ROWS);
    if (!(num(amt, "psi") < 0.1) || cJSON_IsTrue(cJSON_GetObjectItem(amt, "drifted")))
        fail_msg("amount from the training data drifted: psi %g", num(amt, "psi"));
    if (!(num(hour, "psi") < 0.1) || cJSON_IsTrue(cJSON_GetObjectItem(hour, "drifted")))
        fail_msg("hour from the training data drifted: psi %g", num(hour, "psi"));
    assert_true(num(amt, "ks") >= 0 && num(amt, "ks") < 0.1);
    assert_int_equal((int)num(cJSON_GetObjectItem(m, "score_drift"), "n"), N_ROWS);
    assert_int_equal((int)num(m, "predictions_logged"), N_ROWS);
    const char *version = cJSON_GetStringValue(cJSON_GetObjectItem(m, "model_version"));
    assert_non_null(strstr(version, "fraud-"));
    cJSON_Delete(m);

    /* labels: live accuracy of "score >= threshold" against fraud, and AUROC */
    const lp_column *yc = lp_frame_col(g_data, lp_frame_find(g_data, "tx_fraud"));
    lp_buf b;
    lp_buf_init(&b);
    lp_buf_printf(&b, "{\"labels\":[");
    for (size_t i = 0; i < N_ROWS; i++)
        lp_buf_printf(&b, "%s{\"transaction_id\":\"a%zu\",\"label\":\"%s\"}", i ? "," : "",
                      g_first + i, yc->num[g_first + i] != 0 ? "fraud" : "genuine");
    lp_buf_printf(&b, "]}");
    http_resp r;
    assert_int_equal(http_request(g_port, "POST", "/v1/labels",
                                  "Content-Type: application/json\r\n", (const char *)b.data,
                                  b.len, &r),
                     200);
    http_resp_free(&r);
    lp_buf_free(&b);
    m = get_json_at(g_port, "/v1/monitor");
    const cJSON *live = cJSON_GetObjectItem(m, "live");
    assert_int_equal((int)num(live, "labelled"), N_ROWS);
    double thr = num(live, "threshold");
    size_t right = 0, pos = 0;
    for (size_t i = 0; i < N_ROWS; i++) {
        int y = yc->num[g_first + i] != 0;
        right += (scores[i] >= thr) == y;
        pos += (size_t)y;
    }
    assert_true(pos > 0 && pos < N_ROWS);
    assert_true(fabs(num(live, "accuracy") - (double)right / N_ROWS) < 1e-12);
    /* the model ranks these frauds well above the genuine ones */
    if (!(num(live, "auroc") > 0.7))
        fail_msg("live auroc %g", num(live, "auroc"));
    cJSON_Delete(m);
    stop();

    /* amounts x10 on a fresh database: the amount drifts, the hour does not */
    char *db2 = lp_test_tmpfile("fraudmon2.db");
    remove(db2);
    start(g_model_path, db2);
    replay("b", 10.0, scores);
    m = get_json_at(g_port, "/v1/monitor");
    amt = drift_of(m, "amount");
    hour = drift_of(m, "hour");
    if (!(num(amt, "psi") > 0.2) || !cJSON_IsTrue(cJSON_GetObjectItem(amt, "drifted")))
        fail_msg("amount x10 not flagged: psi %g", num(amt, "psi"));
    assert_true(num(amt, "ks") > 0.5);
    if (!(num(hour, "psi") < 0.1) || cJSON_IsTrue(cJSON_GetObjectItem(hour, "drifted")))
        fail_msg("hour drifted with the amount: psi %g", num(hour, "psi"));
    double psi_before = num(amt, "psi");
    cJSON_Delete(m);
    stop();

    /* a restart on the same database rebuilds the same counts from the decision rows */
    start(g_model_path, db2);
    m = get_json_at(g_port, "/v1/monitor");
    amt = drift_of(m, "amount");
    assert_int_equal((int)num(amt, "n"), N_ROWS);
    assert_true(fabs(num(amt, "psi") - psi_before) < 1e-12);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(amt, "drifted")));
    cJSON_Delete(m);
    stop();
    free(scores);
    free(db);
    free(db2);
}

static void test_no_reference(void **state)
{
    (void)state;
    char *db = lp_test_tmpfile("fraudmon3.db");
    remove(db);
    start(g_bad_model_path, db);
    cJSON *m = get_json_at(g_port, "/v1/monitor");
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(m, "drift")), 0);
    assert_null(cJSON_GetObjectItem(m, "score_drift"));
    const char *why = cJSON_GetStringValue(cJSON_GetObjectItem(m, "reason"));
    assert_non_null(why);
    assert_non_null(strstr(why, "drift reference"));
    assert_non_null(cJSON_GetObjectItem(m, "live"));
    cJSON_Delete(m);
    stop();
    free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drift_and_live),
        cmocka_unit_test(test_no_reference),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
