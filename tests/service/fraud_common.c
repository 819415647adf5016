/*
 * fraud_common.c - helpers of the fraud service tests that load it from several threads
 * (test_fraud_concurrent.c, test_fraud_crash.c; included, one translation unit each, like
 * http_client.c): a small model trained on the project's simulator data, and the check that
 * the decision log replays to the answers it holds.
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

/* The model of test_fraud_service.c (40 rounds on data/fraud/transactions.csv), saved to a new
 * temporary file whose path is returned (caller frees), or NULL. */
static char *fc_train_model(const char *name)
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
    lp_status st = fraud_train(f, &o, &m, &err);
    lp_params_free(p);
    lp_frame_free(f);
    if (st) {
        fprintf(stderr, "train: %s\n", lp_err_text(&err));
        return NULL;
    }
    char *out = lp_test_tmpfile(name);
    st = lp_model_save(m, out, &err);
    lp_model_free(m);
    if (st) {
        free(out);
        return NULL;
    }
    return out;
}

/* Replay the decision log of db_path (rowid order) through a fresh state and the model at
 * model_path; fails the test at the first row whose recomputed score differs from the logged
 * one. Returns the number of rows. */
static size_t fc_check_log_replay(const char *db_path, const char *model_path)
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
