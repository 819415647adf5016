/*
 * test_predlog.c - the prediction log: batched background writes, flush, drops counted when the
 * ring is full, feedback for known and unknown ids, live metrics, and durability: a process
 * killed with SIGKILL while taking feedback loses no acknowledged label; state values written
 * now and with the writer's next batch (the newest value of a key wins, a flush waits for it,
 * the key limit and the closing log are refused), and the writer's timer: a trickle of
 * predictions is committed within flush_ms without a flush.
 */
#include "lp_test.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void push_n(lp_predlog *l, int from, int to)
{
    for (int i = from; i < to; i++) {
        char id[32], out[8];
        snprintf(id, sizeof id, "p%d", i);
        snprintf(out, sizeof out, "%d", i % 2);
        lp_pred_record r = {.id = id, .time = 1000.0 + i, .model_version = "m1",
                            .inputs_hash = "h", .output = out,
                            .score = (i % 2) ? 0.8 : 0.3, .latency_us = 12};
        assert_true(lp_predlog_push(l, &r));
    }
}

static void test_log_feedback_live(void **state)
{
    (void)state;
    char *db = lp_test_tmpfile("log.db");
    lp_predlog *l;
    assert_int_equal(lp_predlog_open(db, NULL, &l, NULL), LP_OK);
    push_n(l, 0, 1000);
    assert_int_equal(lp_predlog_flush(l, NULL), LP_OK);
    assert_int_equal(lp_predlog_written(l), 1000);
    assert_int_equal(lp_predlog_dropped(l), 0);
    assert_int_equal(lp_predlog_queued(l), 0);

    /* labels: the first 100 predictions; 90 correct (label == output), 10 wrong */
    for (int i = 0; i < 100; i++) {
        char id[32], lab[8];
        snprintf(id, sizeof id, "p%d", i);
        snprintf(lab, sizeof lab, "%d", i < 90 ? i % 2 : 1 - i % 2);
        assert_int_equal(lp_predlog_feedback(l, id, lab, NULL), LP_OK);
    }
    lp_err err;
    assert_int_equal(lp_predlog_feedback(l, "nope", "1", &err), LP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "'nope'"));
    assert_int_equal(lp_predlog_feedback(l, "", "1", &err), LP_EINVAL);

    /* a prediction still queued is found: feedback flushes first */
    push_n(l, 1000, 1001);
    assert_int_equal(lp_predlog_feedback(l, "p1000", "0", NULL), LP_OK);

    lp_live_metrics m;
    assert_int_equal(lp_predlog_live(l, 1000, "1", &m, NULL), LP_OK);
    assert_int_equal(m.n, 101);
    assert_true(fabs(m.accuracy - 91.0 / 101) < 1e-12); /* 90 of the first 100, and p1000 */
    assert_true(m.auroc > 0.5 && m.auroc < 1.0);
    assert_true(isfinite(m.rmse));
    /* window of 1: only the newest labelled prediction (p1000, output 0, label 0) */
    assert_int_equal(lp_predlog_live(l, 1, NULL, &m, NULL), LP_OK);
    assert_int_equal(m.n, 1);
    assert_true(m.accuracy == 1.0);
    assert_true(isnan(m.auroc));
    assert_int_equal(lp_predlog_close(l, NULL), LP_OK);

    assert_int_equal(lp_predlog_live_offline(db, 1000, "1", &m, NULL), LP_OK);
    assert_int_equal(m.n, 101);
    free(db);
}

static void test_drops_counted(void **state)
{
    (void)state;
    char *db = lp_test_tmpfile("drops.db");
    lp_predlog_opts o = lp_predlog_opts_default();
    o.queue_cap = 4;
    o.batch_max = 2;
    lp_predlog *l;
    assert_int_equal(lp_predlog_open(db, &o, &l, NULL), LP_OK);
    size_t refused = 0, n = 20000;
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "d%zu", i);
        lp_pred_record r = {.id = id, .time = (double)i, .output = "x", .score = 0.5};
        refused += !lp_predlog_push(l, &r);
    }
    assert_int_equal(lp_predlog_flush(l, NULL), LP_OK);
    assert_int_equal(lp_predlog_dropped(l), refused);
    assert_int_equal(lp_predlog_written(l) + lp_predlog_dropped(l), n);
    assert_true(refused > 0); /* 20,000 pushes into a ring of 4 outrun any disk */
    assert_int_equal(lp_predlog_close(l, NULL), LP_OK);
    lp_predlog_opts bad = o;
    bad.queue_cap = 0;
    lp_err err;
    assert_int_equal(lp_predlog_open(db, &bad, &l, &err), LP_EINVAL);
    free(db);
}

static void test_kill_loses_no_acknowledged_feedback(void **state)
{
    (void)state;
    char *db = lp_test_tmpfile("kill.db");
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        lp_predlog *l;
        if (lp_predlog_open(db, NULL, &l, NULL))
            _exit(3);
        push_n(l, 0, 5000);
        lp_predlog_flush(l, NULL);
        for (int i = 0;; i = (i + 1) % 5000) {
            char id[32];
            snprintf(id, sizeof id, "p%d", i);
            if (lp_predlog_feedback(l, id, "1", NULL) == LP_OK) {
                int ack = i;
                if (write(fds[1], &ack, sizeof ack) != sizeof ack)
                    _exit(4);
            }
        }
    }
    close(fds[1]);
    int acked[400], n = 0;
    while (n < 400 && read(fds[0], &acked[n], sizeof(int)) == sizeof(int))
        n++;
    kill(pid, SIGKILL);
    int status;
    waitpid(pid, &status, 0);
    close(fds[0]);
    assert_int_equal(n, 400);
    /* reopen: every acknowledged label is there */
    lp_predlog *l;
    assert_int_equal(lp_predlog_open(db, NULL, &l, NULL), LP_OK);
    lp_live_metrics m;
    assert_int_equal(lp_predlog_live(l, 100000, NULL, &m, NULL), LP_OK);
    assert_true(m.n >= 400);
    for (int k = 0; k < n; k++) {
        char id[32];
        snprintf(id, sizeof id, "p%d", acked[k]);
        /* re-labelling a known id succeeds: the prediction row survived too */
        assert_int_equal(lp_predlog_feedback(l, id, "1", NULL), LP_OK);
    }
    assert_int_equal(lp_predlog_close(l, NULL), LP_OK);
    free(db);
}

static void test_state_later_and_timer(void **state)
{
    (void)state;
    char *db = lp_test_tmpfile("state.db");
    lp_predlog *l;
    lp_predlog_opts o = lp_predlog_opts_default();
    o.flush_ms = 60000; /* the writer only writes when asked, in this first part */
    assert_int_equal(lp_predlog_open(db, &o, &l, NULL), LP_OK);
    lp_err err;
    assert_int_equal(lp_predlog_put_state_later(l, "drift:a", "one", 3, &err), LP_OK);
    assert_int_equal(lp_predlog_put_state_later(l, "drift:a", "two!", 4, &err), LP_OK);
    assert_int_equal(lp_predlog_put_state_later(l, "drift:b", "", 0, &err), LP_OK);
    assert_int_equal(lp_predlog_flush(l, NULL), LP_OK);
    uint8_t *v;
    size_t n;
    assert_int_equal(lp_predlog_get_state_offline(db, "drift:a", &v, &n, NULL), LP_OK);
    assert_int_equal(n, 4);
    assert_memory_equal(v, "two!", 4);
    free(v);
    assert_int_equal(lp_predlog_get_state_offline(db, "drift:b", &v, &n, NULL), LP_OK);
    assert_int_equal(n, 0);
    free(v);
    /* 16 distinct keys may wait; the 17th is refused with a reason, the others kept */
    char key[32];
    int refused = 0;
    for (int i = 0; i < 17; i++) {
        snprintf(key, sizeof key, "k%d", i);
        lp_status st = lp_predlog_put_state_later(l, key, "x", 1, &err);
        if (st) {
            refused++;
            assert_int_equal(i, 16);
            assert_non_null(strstr(err.msg, "wait for the writer"));
        }
    }
    assert_int_equal(refused, 1);
    assert_int_equal(lp_predlog_flush(l, NULL), LP_OK);
    assert_int_equal(lp_predlog_get_state_offline(db, "k15", &v, &n, NULL), LP_OK);
    free(v);
    assert_int_equal(lp_predlog_close(l, NULL), LP_OK);
    /* the timer: three predictions, no flush, committed within a few flush_ms */
    o.flush_ms = 20;
    assert_int_equal(lp_predlog_open(db, &o, &l, NULL), LP_OK);
    push_n(l, 0, 3);
    for (int t = 0; t < 200 && lp_predlog_written(l) < 3; t++)
        usleep(10000);
    assert_int_equal(lp_predlog_written(l), 3);
    /* states given just before close are written by it */
    assert_int_equal(lp_predlog_put_state_later(l, "drift:c", "end", 3, &err), LP_OK);
    assert_int_equal(lp_predlog_close(l, NULL), LP_OK);
    assert_int_equal(lp_predlog_get_state_offline(db, "drift:c", &v, &n, NULL), LP_OK);
    free(v);
    free(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_feedback_live),
        cmocka_unit_test(test_drops_counted),
        cmocka_unit_test(test_kill_loses_no_acknowledged_feedback),
        cmocka_unit_test(test_state_later_and_timer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
