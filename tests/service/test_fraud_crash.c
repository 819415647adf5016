/*
 * test_fraud_crash.c - a `lepton-fraud serve` process killed with SIGKILL in the middle of a
 * load of POST /v1/score from several clients loses no answered decision: after the kill every
 * transaction that got its 200 is in the decision log, the log replays in its own order to the
 * scores it holds (so the state a restart rebuilds is the one the answers saw), and a service
 * restarted on the same database refuses the answered ids as duplicates and scores new ones.
 * Needs the built binary ($LEPTON_BIN/lepton-fraud); skipped without it.
 */
#include "lp_test.h"

#include "fraud.h"

#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "http_client.c"
#include "fraud_common.c"

enum { CLIENTS = 4, MAX_ANSWERED = 100000, KILL_AFTER = 150 };

static char *g_model_path, *g_db_path, *g_log_path;
static char g_bin[1024];
static unsigned g_port;
static double g_t0;
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static char (*g_answered)[32];
static int g_n_answered, g_bad_status, g_stop;

static int setup(void **state)
{
    (void)state;
    const char *bin = getenv("LEPTON_BIN");
    snprintf(g_bin, sizeof g_bin, "%s/lepton-fraud", bin ? bin : "../bin");
    if (access(g_bin, X_OK) != 0) {
        fprintf(stderr, "test_fraud_crash: no %s, skipped\n", g_bin);
        exit(77);
    }
    g_model_path = fc_train_model("fraud_crash.lpm");
    g_db_path = lp_test_tmpfile("fraud_crash.db");
    g_log_path = lp_test_tmpfile("fraud_crash.log");
    char wal[1100];
    snprintf(wal, sizeof wal, "%s-wal", g_db_path);
    remove(g_db_path);
    remove(wal);
    g_answered = calloc(MAX_ANSWERED, sizeof *g_answered);
    g_t0 = floor(lp_time_wall()) - 3000;
    return g_model_path && g_answered ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(g_model_path);
    free(g_db_path);
    free(g_log_path);
    free(g_answered);
    return 0;
}

/* Start the server as a child process on a free port; its port is read from its log. */
static pid_t spawn_server(void)
{
    /* everything prepared before fork: the child only redirects stderr and execs */
    int fd = open(g_log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    setenv("LEPTON_LOG", "info", 1);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 2);
        execl(g_bin, g_bin, "serve", "--model", g_model_path, "--port", "0", "--db", g_db_path,
              "--threads", "4", (char *)NULL);
        _exit(127);
    }
    close(fd);
    assert_true(pid > 0);
    for (int tries = 0; tries < 600 && !g_port; tries++) {
        usleep(50000);
        FILE *f = fopen(g_log_path, "r");
        char line[2048];
        while (f && fgets(line, sizeof line, f)) {
            const char *p = strstr(line, "listening on http://127.0.0.1:");
            if (p)
                g_port = (unsigned)atoi(p + strlen("listening on http://127.0.0.1:"));
        }
        if (f)
            fclose(f);
    }
    if (!g_port)
        fail_msg("the server did not start (see %s)", g_log_path);
    return pid;
}

static void *client(void *arg)
{
    int c = (int)(intptr_t)arg;
    for (int i = 0; !__atomic_load_n(&g_stop, __ATOMIC_ACQUIRE) && i < MAX_ANSWERED / CLIENTS;
         i++) {
        char id[32], body[256];
        snprintf(id, sizeof id, "k%d-%d", c, i);
        snprintf(body, sizeof body,
                 "{\"transaction_id\":\"%s\",\"time\":%.0f,\"amount\":%d.5,"
                 "\"customer_id\":\"u%d\",\"terminal_id\":\"t%d\"}",
                 id, g_t0 + i + c * 0.25, 1 + (c * 31 + i * 17) % 250, (c + i) % 7, (i * 3) % 5);
        http_resp r;
        int st = http_request(g_port, "POST", "/v1/score", "Content-Type: application/json\r\n",
                              body, strlen(body), &r);
        http_resp_free(&r);
        if (st == 0)
            break; /* the server is gone */
        pthread_mutex_lock(&g_mu);
        if (st == 200)
            snprintf(g_answered[g_n_answered++], sizeof g_answered[0], "%s", id);
        else
            g_bad_status = st;
        pthread_mutex_unlock(&g_mu);
    }
    return NULL;
}

static void test_sigkill_loses_no_answered_decision(void **state)
{
    (void)state;
    pid_t pid = spawn_server();
    pthread_t th[CLIENTS];
    for (int c = 0; c < CLIENTS; c++)
        pthread_create(&th[c], NULL, client, (void *)(intptr_t)c);
    for (int waited = 0; waited < 6000; waited++) { /* at most 60 s */
        pthread_mutex_lock(&g_mu);
        int n = g_n_answered;
        pthread_mutex_unlock(&g_mu);
        if (n >= KILL_AFTER)
            break;
        usleep(10000);
    }
    assert_int_equal(kill(pid, SIGKILL), 0); /* in the middle of the load */
    int wst = 0;
    waitpid(pid, &wst, 0);
    __atomic_store_n(&g_stop, 1, __ATOMIC_RELEASE);
    for (int c = 0; c < CLIENTS; c++)
        pthread_join(th[c], NULL);
    assert_true(WIFSIGNALED(wst) && WTERMSIG(wst) == SIGKILL);
    assert_int_equal(g_bad_status, 0);
    assert_true(g_n_answered >= KILL_AFTER);

    /* every answered id is in the log */
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(g_db_path, &db), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    sqlite3_prepare_v2(db, "SELECT 1 FROM decisions WHERE id = ?", -1, &q, NULL);
    for (int i = 0; i < g_n_answered; i++) {
        sqlite3_bind_text(q, 1, g_answered[i], -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_ROW)
            fail_msg("answered transaction %s is not in the decision log", g_answered[i]);
        sqlite3_reset(q);
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    /* the log is a prefix of the state order: it replays to its own scores */
    size_t rows = fc_check_log_replay(g_db_path, g_model_path);
    assert_true(rows >= (size_t)g_n_answered);

    /* a restarted service holds exactly the logged transactions */
    fraud_service *svc = NULL;
    lp_server *srv = NULL;
    unsigned port = fc_start(g_model_path, g_db_path, 2, &svc, &srv);
    http_resp res;
    assert_int_equal(http_request(port, "GET", "/v1/model", NULL, NULL, 0, &res), 200);
    cJSON *j = cJSON_Parse(res.body);
    assert_int_equal((size_t)cJSON_GetNumberValue(cJSON_GetObjectItem(j, "transactions_in_state")),
                     rows);
    cJSON_Delete(j);
    http_resp_free(&res);
    char body[256];
    snprintf(body, sizeof body,
             "{\"transaction_id\":\"%s\",\"time\":%.0f,\"amount\":3,\"customer_id\":\"u1\","
             "\"terminal_id\":\"t1\"}",
             g_answered[g_n_answered - 1], g_t0 + 2000);
    assert_int_equal(http_request(port, "POST", "/v1/score", "Content-Type: application/json\r\n",
                                  body, strlen(body), &res),
                     409);
    http_resp_free(&res);
    snprintf(body, sizeof body,
             "{\"transaction_id\":\"after-restart\",\"time\":%.0f,\"amount\":3,"
             "\"customer_id\":\"u1\",\"terminal_id\":\"t1\"}",
             g_t0 + 2000);
    assert_int_equal(http_request(port, "POST", "/v1/score", "Content-Type: application/json\r\n",
                                  body, strlen(body), &res),
                     200);
    http_resp_free(&res);
    fc_stop(&svc, &srv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_loses_no_answered_decision),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
