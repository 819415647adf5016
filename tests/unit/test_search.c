/*
 * test_search.c - random search with successive halving: finds the optimum of a known
 * function, halves as specified (9 -> 3 -> 1 per bracket), respects trial and time budgets,
 * records every trial in SQLite, survives failing trials and reports when all fail.
 */
#include "lp_test.h"

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    size_t calls;
    double max_res_seen;
    int fail_every; /* 0: never */
} obj_ctx;

/* Best at x = 0.3, lr = 0.01, kind = b; low resources see a noisier, biased score. */
static lp_status objective(const lp_params *p, double resource, double *score, void *vctx,
                           lp_err *err)
{
    obj_ctx *c = vctx;
    c->calls++;
    if (resource > c->max_res_seen)
        c->max_res_seen = resource;
    if (c->fail_every && c->calls % (size_t)c->fail_every == 0)
        return lp_err_set(err, LP_ENUMERIC, "trial diverged");
    double x, lr;
    lp_params_double(p, "x", 0, -10, 10, &x, NULL);
    lp_params_double(p, "lr", 0.1, 1e-9, 10, &lr, NULL);
    const char *kind = lp_params_get(p, "kind");
    const char *fixed = lp_params_get(p, "fixed");
    assert_non_null(fixed);
    assert_string_equal(fixed, "yes"); /* base parameters reach every trial */
    double s = -(x - 0.3) * (x - 0.3) - pow(log10(lr) + 2, 2) - (strcmp(kind, "b") ? 0.5 : 0);
    *score = s - 0.1 * (1 - resource);
    return LP_OK;
}

static const char *kinds[] = {"a", "b", "c", NULL};
static const lp_search_param space[] = {
    {"x", LP_SPACE_KIND_FLOAT, -1, 1, NULL},
    {"lr", LP_SPACE_KIND_LOG, 1e-4, 1, NULL},
    {"kind", LP_SPACE_KIND_CHOICE, 0, 0, kinds},
    {"depth", LP_SPACE_KIND_INT, 2, 8, NULL},
};

static void test_finds_optimum_and_halves(void **state)
{
    (void)state;
    char *db = lp_test_tmpfile("trials.db");
    lp_params *base = lp_params_new();
    lp_params_set(base, "fixed", "yes", NULL);
    lp_search_opts o = lp_search_opts_default();
    o.max_trials = 13 * 12; /* 12 whole brackets of 9 + 3 + 1 */
    o.db_path = db;
    o.study = "t1";
    obj_ctx ctx = {0};
    lp_search_result r;
    assert_int_equal(lp_search_run(space, 4, base, &o, objective, &ctx, &r, NULL), LP_OK);
    assert_int_equal(r.trials, 156);
    assert_int_equal(ctx.calls, 156);
    assert_true(r.best_resource == 1.0);
    double x, lr;
    long depth;
    lp_params_double(r.best, "x", 0, -10, 10, &x, NULL);
    lp_params_double(r.best, "lr", 0, 1e-9, 10, &lr, NULL);
    assert_int_equal(lp_params_int(r.best, "depth", 0, 2, 8, &depth, NULL), LP_OK);
    assert_string_equal(lp_params_get(r.best, "kind"), "b");
    assert_true(fabs(x - 0.3) < 0.3);
    assert_true(fabs(log10(lr) + 2) < 0.6);
    assert_true(r.best_score > -0.3);
    lp_params_free(r.best);

    /* the trial log: per bracket 9 at rung 0, 3 at rung 1, 1 at rung 2 */
    sqlite3 *h;
    assert_int_equal(sqlite3_open(db, &h), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(h, "SELECT rung, COUNT(*), MIN(resource), MAX(resource) "
                                           "FROM trials WHERE study='t1' GROUP BY rung ORDER BY rung",
                                        -1, &q, NULL),
                     SQLITE_OK);
    int want[3] = {108, 36, 12};
    double res[3] = {1.0 / 9, 1.0 / 3, 1.0};
    for (int k = 0; k < 3; k++) {
        assert_int_equal(sqlite3_step(q), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(q, 0), k);
        assert_int_equal(sqlite3_column_int(q, 1), want[k]);
        assert_true(fabs(sqlite3_column_double(q, 2) - res[k]) < 1e-9);
    }
    sqlite3_finalize(q);
    sqlite3_close(h);
    lp_params_free(base);
    free(db);
}

static void test_failures_and_budgets(void **state)
{
    (void)state;
    lp_params *base = lp_params_new();
    lp_params_set(base, "fixed", "yes", NULL);
    lp_search_opts o = lp_search_opts_default();
    o.max_trials = 20;
    obj_ctx ctx = {.fail_every = 3};
    lp_search_result r;
    assert_int_equal(lp_search_run(space, 4, base, &o, objective, &ctx, &r, NULL), LP_OK);
    assert_int_equal(r.trials, 20);
    assert_int_equal(r.failed, 6);
    lp_params_free(r.best);

    obj_ctx all = {.fail_every = 1};
    lp_err err;
    assert_int_equal(lp_search_run(space, 4, base, &o, objective, &all, &r, &err), LP_ESTATE);
    assert_non_null(strstr(err.msg, "trial diverged"));
    assert_null(r.best);

    /* time budget: stops after the first trial past the budget */
    o.max_trials = 0;
    o.time_budget_s = 0.05;
    obj_ctx t = {0};
    assert_int_equal(lp_search_run(space, 4, base, &o, objective, &t, &r, NULL), LP_OK);
    assert_true(r.trials >= 1);
    lp_params_free(r.best);

    /* bad options and spaces */
    o.time_budget_s = 0;
    assert_int_equal(lp_search_run(space, 4, base, &o, objective, &t, &r, &err), LP_EINVAL);
    lp_search_param bad = {"lr", LP_SPACE_KIND_LOG, 0, 1, NULL};
    o.max_trials = 5;
    assert_int_equal(lp_search_run(&bad, 1, base, &o, objective, &t, &r, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "'lr'"));
    lp_params_free(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_finds_optimum_and_halves),
        cmocka_unit_test(test_failures_and_budgets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
