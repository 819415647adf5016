/*
 * test_fraud_concurrent.c - lepton-fraud's POST /v1/score from several client threads at once
 * over loopback HTTP, on a few shared customers and terminals: every request is answered, the
 * decision log replays in its own order to exactly the scores that were answered (see
 * fraud_common.c), the per-entity velocity counts are exact, the group commit wrote every row,
 * and a restart rebuilds the same entity state.
 */
#include "lp_test.h"

#include "fraud.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http_client.c"
#include "fraud_common.c"

enum { CLIENTS = 8, PER_CLIENT = 150, CUSTOMERS = 5, TERMINALS = 3 };

static char *g_model_path, *g_db_path;
static lp_server *g_srv;
static fraud_service *g_svc;
static unsigned g_port;
static double g_t0;
static double g_answer[CLIENTS][PER_CLIENT]; /* answered scores */
static int g_status[CLIENTS][PER_CLIENT];

static void start(void)
{
    g_port = fc_start(g_model_path, g_db_path, CLIENTS, &g_svc, &g_srv);
}

static void stop(void)
{
    fc_stop(&g_svc, &g_srv);
}

static int setup(void **state)
{
    (void)state;
    g_model_path = fc_train_model("fraud_conc.lpm");
    g_db_path = lp_test_tmpfile("fraud_conc.db");
    remove(g_db_path);
    g_t0 = floor(lp_time_wall()) - 3000;
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

/* Client c's request i: customer and terminal shared with the other clients, times that
 * interleave across clients (so requests often arrive a little out of time order). */
static void tx_of(int c, int i, char *body, size_t cap)
{
    snprintf(body, cap,
             "{\"transaction_id\":\"c%d-%d\",\"time\":%.0f,\"amount\":%d.25,"
             "\"customer_id\":\"u%d\",\"terminal_id\":\"k%d\"}",
             c, i, g_t0 + i * 2 + c * 0.25, 1 + (c * 37 + i * 13) % 300, (c + i) % CUSTOMERS,
             (c * 3 + i) % TERMINALS);
}

/* One keep-alive connection per client, so requests of different clients overlap closely. */
static void *client(void *arg)
{
    int c = (int)(intptr_t)arg;
    int fd = http_connect(g_port);
    for (int i = 0; i < PER_CLIENT; i++) {
        char body[256];
        tx_of(c, i, body, sizeof body);
        http_resp r;
        memset(&r, 0, sizeof r);
        size_t len = 0;
        char *msg = http_format("POST", "/v1/score", "Content-Type: application/json\r\n", body,
                                strlen(body), true, &len);
        if (fd < 0 || !msg || !http_send_all(fd, msg, len) || !http_read_response(fd, &r, 20000))
            r.status = 0;
        free(msg);
        g_status[c][i] = r.status;
        cJSON *j = r.status == 200 ? cJSON_Parse(r.body) : NULL;
        g_answer[c][i] = j ? cJSON_GetNumberValue(cJSON_GetObjectItem(j, "score")) : NAN;
        cJSON_Delete(j);
        http_resp_free(&r);
    }
    if (fd >= 0)
        close(fd);
    return NULL;
}

/* transactions_total of customer u<k> as the service reports it */
static int customer_total(int k)
{
    char path[64];
    snprintf(path, sizeof path, "/v1/entities/u%d?entity=customer_id", k);
    http_resp r;
    assert_int_equal(http_request(g_port, "GET", path, NULL, NULL, 0, &r), 200);
    cJSON *j = cJSON_Parse(r.body);
    int n = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "transactions_total"));
    cJSON_Delete(j);
    http_resp_free(&r);
    return n;
}

static void test_concurrent_scoring_replays_exactly(void **state)
{
    (void)state;
    start();
    pthread_t th[CLIENTS];
    for (int c = 0; c < CLIENTS; c++)
        pthread_create(&th[c], NULL, client, (void *)(intptr_t)c);
    for (int c = 0; c < CLIENTS; c++)
        pthread_join(th[c], NULL);
    int sent[CUSTOMERS] = {0};
    for (int c = 0; c < CLIENTS; c++)
        for (int i = 0; i < PER_CLIENT; i++) {
            if (g_status[c][i] != 200)
                fail_msg("client %d request %d: status %d", c, i, g_status[c][i]);
            sent[(c + i) % CUSTOMERS]++;
        }
    /* every answered request was committed before its answer */
    fraud_dlog_stats ls = fraud_service_log_stats(g_svc);
    assert_int_equal(ls.rows, CLIENTS * PER_CLIENT);
    assert_true(ls.commits >= 1 && ls.commits <= ls.rows);
    /* the log, replayed in its order, gives the scores that were logged ... */
    assert_int_equal(fc_check_log_replay(g_db_path, g_model_path), CLIENTS * PER_CLIENT);
    /* ... and those are the answered ones */
    sqlite3 *db = NULL;
    sqlite3_open_v2(g_db_path, &db, SQLITE_OPEN_READONLY, NULL);
    sqlite3_stmt *q = NULL;
    sqlite3_prepare_v2(db, "SELECT id, score FROM decisions", -1, &q, NULL);
    while (sqlite3_step(q) == SQLITE_ROW) {
        int c = -1, i = -1;
        sscanf((const char *)sqlite3_column_text(q, 0), "c%d-%d", &c, &i);
        assert_true(c >= 0 && c < CLIENTS && i >= 0 && i < PER_CLIENT);
        double logged = sqlite3_column_double(q, 1);
        /* the answer prints 12 significant digits */
        assert_true(fabs(g_answer[c][i] - logged) <= 1e-11 * fmax(1e-3, logged));
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    /* per-entity velocity counts are exact, and survive a restart (rebuilt from the log) */
    for (int k = 0; k < CUSTOMERS; k++)
        assert_int_equal(customer_total(k), sent[k]);
    stop();
    start();
    for (int k = 0; k < CUSTOMERS; k++)
        assert_int_equal(customer_total(k), sent[k]);
    stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_concurrent_scoring_replays_exactly),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
