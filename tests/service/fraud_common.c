/*
 * fraud_common.c - helpers of the fraud service tests that load it from several threads
 * (test_fraud_service.c, test_fraud_monitor.c, test_fraud_concurrent.c, test_fraud_crash.c;
 * included, one translation unit each, like http_client.c): a small model trained on the
 * project's simulator data, a started service, and the check that the decision log replays to
 * the answers it holds. The helpers have external linkage (each test is its own program) so
 * that a test need not use all of them.
 *
 * The replay check is what makes concurrent scoring testable: every answered transaction's
 * features must have come from the state made by exactly the rows logged before it, in log
 * (rowid) order. So a fresh fraud_state fed the logged requests one by one in rowid order must
 * give, for each row, features whose score is the score that row logged (and answered). A
 * service that took features outside the lock, or logged rows in another order than it
 * updated the state, fails it as soon as two requests of one customer race.
 */
#include "fraud.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The service tests' model: gbdt, 40 rounds, on f (data/fraud/transactions.csv) with the
 * simulator's columns. NULL (and a line on stderr) on failure. */
lp_model *fc_train(const lp_frame *f)
{
    static const char *const ents[] = {"customer_id", "terminal_id"};
    static const char *const drop[] = {"tx_fraud_scenario"};
    fraud_train_opts o = fraud_train_opts_default();
    o.label = "tx_fraud";
    o.time_col = "tx_datetime";
    o.amount_col = "tx_amount";
    o.id_col = "transaction_id";
    o.entity_cols = ents;
    o.n_entity = 2;
    o.drop = drop;
    o.n_drop = 1;
    o.threads = 2;
    lp_params *p = lp_params_new();
    lp_params_parse(p, "n_rounds=40", NULL);
    o.params = p;
    lp_model *m = NULL;
    lp_err err;
    lp_status st = fraud_train(f, &o, NULL, &m, &err);
    lp_params_free(p);
    if (st)
        fprintf(stderr, "train: %s\n", lp_err_text(&err));
    return st ? NULL : m;
}

/* data/fraud/transactions.csv as a frame (caller frees), or NULL. */
lp_frame *fc_read_data(void)
{
    const char *src = getenv("LEPTON_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/data/fraud/transactions.csv", src ? src : "..");
    lp_frame *f = NULL;
    lp_err err;
    lp_csv_opts co = lp_csv_opts_default();
    if (lp_frame_read(path, &co, &f, &err)) {
        fprintf(stderr, "%s\n", lp_err_text(&err));
        return NULL;
    }
    return f;
}

/* fc_train on the simulator data, saved to a new temporary file whose path is returned
 * (caller frees), or NULL. */
char *fc_train_model(const char *name)
{
    lp_frame *f = fc_read_data();
    lp_model *m = f ? fc_train(f) : NULL;
    lp_frame_free(f);
    if (!m)
        return NULL;
    char *out = lp_test_tmpfile(name);
    lp_err err;
    lp_status st = lp_model_save(m, out, &err);
    lp_model_free(m);
    if (st) {
        free(out);
        return NULL;
    }
    return out;
}

/* A fraud service on model_path and db_path behind a started server with `threads` pool
 * threads (both new, freed by the caller: server first); returns the port. */
unsigned fc_start(const char *model_path, const char *db_path, unsigned threads,
                  fraud_service **svc, lp_server **srv)
{
    lp_err err;
    lp_model *m = NULL;
    fraud_scorer *sc = NULL;
    if (lp_model_load(model_path, &m, &err))
        fail_msg("load: %s", lp_err_text(&err));
    if (fraud_scorer_new(m, &sc, &err))
        fail_msg("scorer: %s", lp_err_text(&err));
    if (fraud_service_new(sc, db_path, NULL, svc, &err))
        fail_msg("service: %s", lp_err_text(&err));
    lp_server_opts o = lp_server_opts_default();
    o.threads = threads;
    size_t nr;
    const lp_route *r = fraud_service_routes(&nr);
    assert_int_equal(lp_server_new(r, nr, *svc, &o, srv, &err), LP_OK);
    assert_int_equal(lp_server_start(*srv, &err), LP_OK);
    return lp_server_port(*srv);
}

/* Stop and free what fc_start made (server first: it waits for deferred answers); both
 * pointers are set to NULL. NULLs are fine. */
void fc_stop(fraud_service **svc, lp_server **srv)
{
    lp_server_free(*srv);
    fraud_service_free(*svc);
    *srv = NULL;
    *svc = NULL;
}

/* Replay the decision log of db_path (rowid order) through a fresh state and the model at
 * model_path; fails the test at the first row whose recomputed score differs from the logged
 * one. Returns the number of rows. */
size_t fc_check_log_replay(const char *db_path, const char *model_path)
{
    lp_err err;
    lp_model *m = NULL;
    fraud_scorer *sc = NULL;
    fraud_state *st = NULL;
    if (lp_model_load(model_path, &m, &err) || fraud_scorer_new(m, &sc, &err))
        fail_msg("model: %s", lp_err_text(&err));
    const fraud_config *c = fraud_scorer_config(sc);
    assert_int_equal(fraud_state_new(&c->feat, &st, &err), LP_OK);
    float *x = calloc(fraud_state_n_features(st), sizeof(float));
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *q = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT request, score, reasons FROM decisions"
                                        " ORDER BY rowid", -1, &q, NULL),
                     SQLITE_OK);
    size_t d = 0;
    const char *const *names = fraud_scorer_names(sc, &d);
    size_t n = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        cJSON *j = cJSON_Parse((const char *)sqlite3_column_text(q, 0));
        assert_non_null(j);
        fraud_tx tx;
        memset(&tx, 0, sizeof tx);
        tx.label = -1;
        tx.id = cJSON_GetStringValue(cJSON_GetObjectItem(j, "transaction_id"));
        tx.time = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "time"));
        tx.amount = cJSON_GetNumberValue(cJSON_GetObjectItem(j, "amount"));
        tx.keys[0] = cJSON_GetStringValue(cJSON_GetObjectItem(j, "customer_id"));
        tx.keys[1] = cJSON_GetStringValue(cJSON_GetObjectItem(j, "terminal_id"));
        for (size_t k = 0; k < c->feat.n_text; k++) /* a non-string or absent one: NULL */
            tx.text[k] = cJSON_GetStringValue(cJSON_GetObjectItem(j, c->feat.text[k]));
        if (fraud_state_step(st, &tx, x, &err))
            fail_msg("log row %zu (%s): %s", n, tx.id, lp_err_text(&err));
        double want = sqlite3_column_double(q, 1), got = fraud_scorer_score(sc, x);
        /* TreeSHAP's margin (the service) and the direct tree sum (here) add the same leaves
         * in another order: equal to rounding */
        if (!(fabs(got - want) <= 1e-9 * fmax(1e-3, fabs(want))))
            fail_msg("log row %zu (%s): logged score %.12g, replay in log order gives %.12g",
                     n, tx.id, want, got);
        /* the logged reasons name features and their values (printed with 9 digits: a float
         * reads back exactly): velocity features the model barely uses are checked too */
        cJSON *rs = cJSON_Parse((const char *)sqlite3_column_text(q, 2));
        const cJSON *it;
        cJSON_ArrayForEach(it, rs)
        {
            const char *f = cJSON_GetStringValue(cJSON_GetObjectItem(it, "feature"));
            size_t k = 0;
            while (f && k < d && strcmp(names[k], f))
                k++;
            assert_true(k < d);
            float v = (float)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "value"));
            if (v != x[k])
                fail_msg("log row %zu (%s): feature %s logged %.9g, replay in log order gives "
                         "%.9g", n, tx.id, f, (double)v, (double)x[k]);
        }
        cJSON_Delete(rs);
        cJSON_Delete(j);
        n++;
    }
    sqlite3_finalize(q);
    sqlite3_close(db);
    free(x);
    fraud_state_free(st);
    fraud_scorer_free(sc);
    return n;
}
