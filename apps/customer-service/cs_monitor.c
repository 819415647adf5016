/*
 * cs_monitor.c - monitoring of lepton-customer-service (GET /v1/monitor, lepton serve's JSON
 * shape): drift of the top-intent confidence ("_score") and of the predicted intent (a
 * categorical PSI over the intents, the feature "intent") against the validation split's
 * answers at training time, and live accuracy from POST /v1/feedback.
 *
 * The reference is fitted by cs_monitor_fit_reference inside cs_intent_train (the validation
 * texts exist only there) and travels in the model file as the extra section "drift"; a model
 * trained before it has none, and the report says so. Live counts are kept in memory for the
 * bot being served: a retrain or reload (a new lp_swap generation) starts a new window on the
 * new bot's reference. Live accuracy reads the session store through its own read-only SQLite
 * connection: over the latest CS_MON_WINDOW turns with feedback, the share whose predicted
 * intent equals the intent the feedback gives (feedback often arrives only for mistakes, so
 * this is a floor on accuracy rather than an unbiased estimate; the report says which).
 *
 * Thread safety: every call takes the monitor's mutex (a count is a few atomic adds).
 */
#include <math.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs.h"

#define CS_MON_WINDOW 10000
#define CS_PSI_THRESHOLD 0.2

struct cs_monitor {
    pthread_mutex_t mu;
    uint64_t gen;           /* lp_swap generation of the bot the sketch counts */
    bool bound;
    lp_drift *ref;          /* NULL: reason says why */
    lp_drift_sketch *sk;
    long score_j, intent_j; /* features of ref, or -1 */
    char reason[160];
    char version[48];
    sqlite3 *db;            /* read-only view of the session store */
};

lp_status cs_monitor_fit_reference(cs_intent *m, const char *const *vtexts, size_t nv,
                                   lp_err *err)
{
    if (nv == 0)
        return LP_OK;
    cs_intent_result *res = lp_mallocarray(nv, sizeof *res);
    double *conf = lp_mallocarray(nv, sizeof *conf);
    const char **intent = lp_mallocarray(nv, sizeof *intent);
    lp_frame *f = lp_frame_new();
    lp_drift *d = NULL;
    lp_buf b;
    lp_buf_init(&b);
    lp_status st = res && conf && intent && f
                       ? cs_intent_predict(m, vtexts, nv, res, err)
                       : lp_err_set(err, LP_ENOMEM, "intent drift reference: out of memory");
    for (size_t i = 0; st == LP_OK && i < nv; i++) {
        conf[i] = res[i].confidence;
        intent[i] = res[i].intent;
    }
    if (st == LP_OK)
        st = lp_frame_add_numeric(f, "_score", LP_COL_KIND_FLOAT, conf, NULL, nv, err);
    if (st == LP_OK)
        st = lp_frame_add_categorical(f, "intent", intent, nv, err);
    if (st == LP_OK)
        st = lp_drift_fit(f, &d, err);
    if (st == LP_OK)
        st = lp_drift_save(d, &b, err);
    if (st == LP_OK)
        st = lp_model_set_extra(cs_intent_model(m), "drift", b.data, b.len, err);
    lp_buf_free(&b);
    lp_drift_free(d);
    lp_frame_free(f);
    free(intent);
    free(conf);
    free(res);
    return st;
}

lp_status cs_monitor_copy_reference(cs_intent *from, cs_intent *to, lp_err *err)
{
    const void *d;
    size_t len;
    if (lp_model_get_extra(cs_intent_model(from), "drift", &d, &len, NULL) != LP_OK)
        return LP_OK;
    return lp_model_set_extra(cs_intent_model(to), "drift", d, len, err);
}

lp_status cs_monitor_new(const char *db_path, cs_monitor **out, lp_err *err)
{
    *out = NULL;
    cs_monitor *mon = lp_calloc(1, sizeof *mon);
    if (!mon)
        return lp_err_set(err, LP_ENOMEM, "monitor: out of memory");
    if (sqlite3_open_v2(db_path, &mon->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        lp_status st = lp_err_set(err, LP_EDB, "monitor: %s: %s", db_path,
                                  mon->db ? sqlite3_errmsg(mon->db) : "cannot open");
        sqlite3_close(mon->db);
        free(mon);
        return st;
    }
    sqlite3_busy_timeout(mon->db, 5000);
    pthread_mutex_init(&mon->mu, NULL);
    *out = mon;
    return LP_OK;
}

static void unbind(cs_monitor *mon)
{
    lp_drift_sketch_free(mon->sk);
    lp_drift_free(mon->ref);
    mon->sk = NULL;
    mon->ref = NULL;
    mon->bound = false;
}

void cs_monitor_free(cs_monitor *mon)
{
    if (!mon)
        return;
    unbind(mon);
    sqlite3_close(mon->db);
    pthread_mutex_destroy(&mon->mu);
    free(mon);
}

/* Point the monitor at bot (generation gen): load its reference, start an empty window. */
static void bind(cs_monitor *mon, const cs_bot *bot, uint64_t gen)
{
    unbind(mon);
    mon->bound = true;
    mon->gen = gen;
    mon->score_j = mon->intent_j = -1;
    mon->reason[0] = '\0';
    lp_model *m = cs_intent_model(bot->intent);
    char hex[65];
    const char *h = lp_model_header(m);
    lp_sha256_hex(h, strlen(h), hex);
    snprintf(mon->version, sizeof mon->version, "intent-%.12s", hex);
    const void *data;
    size_t len;
    lp_err e2;
    if (lp_model_get_extra(m, "drift", &data, &len, NULL) != LP_OK) {
        snprintf(mon->reason, sizeof mon->reason,
                 "the model has no drift reference (trained before monitoring): retrain it to "
                 "get one");
        return;
    }
    if (lp_drift_load(data, len, &mon->ref, &e2) != LP_OK) {
        snprintf(mon->reason, sizeof mon->reason, "the model's drift reference: %.120s",
                 lp_err_text(&e2));
        return;
    }
    if (!(mon->sk = lp_drift_sketch_new(mon->ref))) {
        snprintf(mon->reason, sizeof mon->reason, "out of memory");
        return;
    }
    mon->score_j = lp_drift_find(mon->ref, "_score");
    mon->intent_j = lp_drift_find(mon->ref, "intent");
}

void cs_monitor_count(cs_monitor *mon, const cs_bot *bot, uint64_t gen, const char *intent,
                      double confidence)
{
    if (!mon)
        return;
    pthread_mutex_lock(&mon->mu);
    if (!mon->bound || mon->gen != gen)
        bind(mon, bot, gen);
    if (mon->sk && mon->score_j >= 0)
        lp_drift_sketch_add_num(mon->sk, (size_t)mon->score_j, confidence);
    if (mon->sk && mon->intent_j >= 0)
        lp_drift_sketch_add_cat(mon->sk, (size_t)mon->intent_j, intent);
    pthread_mutex_unlock(&mon->mu);
}

static cJSON *num_or_null(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static cJSON *stat_json(const lp_drift_stat *s)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "feature", s->name);
    cJSON_AddNumberToObject(o, "n", (double)s->n);
    cJSON_AddItemToObject(o, "psi", num_or_null(s->psi));
    cJSON_AddItemToObject(o, "ks", num_or_null(s->ks));
    cJSON_AddBoolToObject(o, "drifted", s->drifted);
    return o;
}

cJSON *cs_monitor_report(cs_monitor *mon, const cs_bot *bot, uint64_t gen)
{
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&mon->mu);
    if (!mon->bound || mon->gen != gen)
        bind(mon, bot, gen);
    cJSON_AddStringToObject(o, "model_version", mon->version);
    cJSON_AddNumberToObject(o, "psi_threshold", CS_PSI_THRESHOLD);
    cJSON *arr = cJSON_AddArrayToObject(o, "drift");
    size_t nf = mon->ref ? lp_drift_nfeatures(mon->ref) : 0;
    lp_drift_stat *st = mon->sk ? lp_calloc(nf + 1, sizeof *st) : NULL;
    if (st) {
        lp_drift_compare(mon->sk, CS_PSI_THRESHOLD, st);
        for (size_t j = 0; j < nf; j++) {
            if ((long)j == mon->score_j)
                cJSON_AddItemToObject(o, "score_drift", stat_json(&st[j]));
            else
                cJSON_AddItemToArray(arr, stat_json(&st[j]));
        }
        free(st);
    }
    if (mon->reason[0])
        cJSON_AddStringToObject(o, "reason", mon->reason);
    pthread_mutex_unlock(&mon->mu);

    /* live accuracy: predicted intent of a turn vs the intent its feedback gives */
    size_t n = 0, right = 0;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(mon->db, "SELECT t.intent = f.intent FROM feedback f JOIN turns t ON"
                           " t.id = f.turn_id ORDER BY f.turn_id DESC LIMIT ?", -1, &q, NULL) ==
        SQLITE_OK) {
        sqlite3_bind_int(q, 1, CS_MON_WINDOW);
        while (sqlite3_step(q) == SQLITE_ROW) {
            n++;
            right += sqlite3_column_int(q, 0) == 1;
        }
    }
    sqlite3_finalize(q);
    cJSON *live = cJSON_AddObjectToObject(o, "live");
    cJSON_AddNumberToObject(live, "labelled", (double)n);
    cJSON_AddItemToObject(live, "accuracy", num_or_null(n ? (double)right / (double)n : NAN));
    cJSON_AddNullToObject(live, "auroc");
    cJSON_AddNullToObject(live, "rmse");
    cJSON_AddStringToObject(live, "accuracy_of",
                            "predicted intent vs the intent POST /v1/feedback gave for the turn "
                            "(feedback is often sent for mistakes only: a floor)");
    return o;
}
