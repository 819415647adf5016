/*
 * fraud_eval.c - offline evaluation and rule backtests of lepton-fraud, run exactly as the
 * service runs: one fraud_state, transactions in time order, features from history only, the
 * state updated after each score, labels counting only after the configured delay.
 *
 * Also measured here, in process: replay speed (features + state update, no model) and the
 * per-transaction scoring cost (features + model + TreeSHAP reasons), p50 and p99.
 */
#include "fraud.h"
#include "fraud_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU time of the calling thread in ns: on a shared machine wall-clock timings mostly measure
 * the other processes (preemption); this measures the work itself. */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Bind f's columns as the model was trained; rows without an id column are named
 * "<role>:row<i>" so that two files of one run never share an id. */
static lp_status bind_cfg(const fraud_scorer *sc, const lp_frame *f, bool need_label,
                          const char *role, fraud_frame_map *map, lp_err *err)
{
    const fraud_config *c = fraud_scorer_config(sc);
    const char *id = c->id_col[0] && lp_frame_find(f, c->id_col) >= 0 ? c->id_col : NULL;
    lp_status st = fraud_frame_bind(f, &c->feat, id, c->time_col[0] ? c->time_col : NULL,
                                    c->amount_col[0] ? c->amount_col : NULL, NULL, map, err);
    if (!st && (need_label || lp_frame_find(f, c->label) >= 0))
        st = fraud_frame_bind_label(f, c->label, c->positive_label, map, NULL, err);
    map->id_prefix = role;
    return st;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Replay f's rows older than until (NAN: all) into s in time order without scoring; rows the
 * state refuses (a duplicate id, too late, invalid) are skipped. *n_in gets the rows taken;
 * *rate and *cpu_rate the rate in tx/s (NULL: not wanted). */
static lp_status warm(fraud_state *s, const fraud_scorer *sc, const lp_frame *f, double until,
                      size_t *n_in, double *rate, double *cpu_rate, lp_err *err)
{
    fraud_frame_map map;
    lp_status st = bind_cfg(sc, f, false, "history:row", &map, err);
    if (st)
        return lp_err_prefix(err, "history");
    size_t n = lp_frame_nrows(f), d = fraud_state_n_features(s);
    size_t *order = fraud_frame_time_order(f, &map);
    float *x = lp_mallocarray(d, sizeof(float));
    if (!order || !x) {
        free(order);
        free(x);
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    }
    char buf[FRAUD_ROW_BUF];
    uint64_t t0 = lp_time_ns(), c0 = cpu_ns();
    size_t taken = 0;
    for (size_t r = 0; r < n && !st; r++) {
        fraud_tx tx;
        fraud_frame_row(f, &map, &fraud_scorer_config(sc)->feat, order[r], &tx, buf, sizeof buf);
        if (!(tx.time < until) && !isnan(until))
            break; /* time order: every later row is as new */
        /* features are computed too, so the rate is that of a training replay */
        lp_err e2;
        lp_status s2 = fraud_state_step(s, &tx, x, &e2);
        if (s2 == LP_ENOMEM)
            st = lp_err_set(err, LP_ENOMEM, "%s", lp_err_text(&e2));
        taken += s2 == LP_OK;
    }
    double secs = lp_time_since(t0), csecs = (double)(cpu_ns() - c0) / 1e9;
    if (n_in)
        *n_in = taken;
    if (rate)
        *rate = secs > 0 ? (double)n / secs : 0;
    if (cpu_rate)
        *cpu_rate = csecs > 0 ? (double)n / csecs : 0;
    free(order);
    free(x);
    return st;
}

lp_status fraud_evaluate(fraud_scorer *sc, const lp_frame *history, const lp_frame *test,
                         fraud_eval *out, lp_err *err)
{
    memset(out, 0, sizeof *out);
    const fraud_config *c = fraud_scorer_config(sc);
    fraud_state *s = NULL;
    lp_status st = fraud_state_new(&c->feat, &s, err);
    if (st)
        return st;
    if (history &&
        (st = warm(s, sc, history, NAN, NULL, &out->replay_tx_per_s, &out->replay_cpu_tx_per_s,
                   err))) {
        fraud_state_free(s);
        return st;
    }
    fraud_frame_map map;
    if ((st = bind_cfg(sc, test, true, "test:row", &map, err))) {
        fraud_state_free(s);
        return st;
    }
    size_t n_hist = fraud_state_n_tx(s); /* transactions 0..n_hist-1 came from the history */
    size_t n = lp_frame_nrows(test), d = fraud_state_n_features(s);
    size_t *order = fraud_frame_time_order(test, &map);
    float *x = lp_mallocarray(d, sizeof(float));
    double *score = lp_mallocarray(n + 1, sizeof(double));
    int32_t *y = lp_mallocarray(n + 1, sizeof(int32_t));
    uint64_t *ns = lp_mallocarray(n + 1, sizeof(uint64_t));
    uint64_t *cns = lp_mallocarray(n + 1, sizeof(uint64_t));
    lp_explain_ws *ws = lp_explain_ws_new(fraud_scorer_explainer(sc));
    if (!order || !x || !score || !y || !ns || !cns || !ws) {
        st = lp_err_set(err, LP_ENOMEM, "out of memory");
        goto done;
    }
    char buf[FRAUD_ROW_BUF], alt[160];
    size_t k = 0;
    for (size_t r = 0; r < n; r++) {
        fraud_tx tx;
        fraud_frame_row(test, &map, &c->feat, order[r], &tx, buf, sizeof buf);
        if (tx.label < 0) {
            out->skipped_unlabelled++;
            continue;
        }
        lp_err e2;
        uint64_t t0 = lp_time_ns(), c0 = cpu_ns();
        lp_status s2 = fraud_state_check(s, &tx, &e2);
        size_t prev;
        double prev_t;
        if (s2 == LP_EEXIST && fraud_state_find_tx(s, tx.id, &prev, &prev_t) && prev < n_hist) {
            if (prev_t == tx.time) { /* the history holds this very transaction */
                out->skipped_in_history++;
                continue;
            }
            /* the same id for another transaction: ids numbered per file */
            snprintf(alt, sizeof alt, "%.120s#test", tx.id);
            tx.id = alt;
            s2 = fraud_state_check(s, &tx, &e2);
            out->ids_in_history += !s2;
        }
        if (s2 == LP_EEXIST) {
            out->skipped_duplicate++;
            continue;
        }
        if (s2) {
            if (out->skipped_invalid++ < 3)
                lp_log_warn("eval: test row %zu skipped: %s", order[r] + 1, lp_err_text(&e2));
            continue;
        }
        fraud_state_features(s, &tx, x);
        fraud_reason reasons[FRAUD_MAX_REASONS];
        size_t nr;
        double p = fraud_scorer_explain(sc, ws, x, reasons, &nr);
        ns[k] = lp_time_ns() - t0;
        cns[k] = cpu_ns() - c0;
        if ((st = fraud_state_update(s, &tx, err)))
            goto done;
        score[k] = p;
        y[k] = tx.label;
        out->n_fraud += (size_t)tx.label;
        out->decisions[fraud_scorer_decide(sc, p)]++;
        k++;
    }
    out->n = k;
    out->skipped = out->skipped_unlabelled + out->skipped_invalid + out->skipped_duplicate +
                   out->skipped_in_history;
    if (out->skipped_unlabelled)
        lp_log_warn("eval: %zu test rows skipped: no label in '%s'", out->skipped_unlabelled,
                    c->label);
    if (out->skipped_invalid)
        lp_log_warn("eval: %zu test rows skipped: invalid (amount, time or entity; the first "
                    "ones are named above)", out->skipped_invalid);
    if (out->skipped_duplicate)
        lp_log_warn("eval: %zu test rows skipped: their id appears earlier in the test data "
                    "(the service refuses a duplicate id too)", out->skipped_duplicate);
    if (out->skipped_in_history)
        lp_log_warn("eval: %zu test rows skipped: the history holds a transaction with the same "
                    "id and time (do the files overlap?)", out->skipped_in_history);
    if (out->ids_in_history)
        lp_log_warn("eval: %zu test rows have the id of a history transaction at another time "
                    "(ids numbered per file?): scored as distinct transactions",
                    out->ids_in_history);
    if (k == 0) {
        st = lp_err_set(err, LP_EINVAL, "eval: no test transaction could be scored (%zu rows: "
                        "%zu without a label, %zu invalid, %zu duplicate ids, %zu already in the "
                        "history)", n, out->skipped_unlabelled, out->skipped_invalid,
                        out->skipped_duplicate, out->skipped_in_history);
        goto done;
    }
    if ((st = lp_metrics_average_precision(y, score, k, &out->auprc, err)) ||
        (st = lp_metrics_auroc(y, score, k, &out->auroc, err)) ||
        (st = lp_metrics_recall_at_fpr(y, score, k, 0.01, &out->recall_at_1pct_fpr, NULL, err)) ||
        (st = lp_metrics_precision_at_top(y, score, k, 0.01, &out->precision_at_1pct_alerts,
                                          NULL, err)))
        goto done;
    qsort(ns, k, sizeof(uint64_t), cmp_u64);
    out->score_p50_us = (double)ns[k / 2] / 1e3;
    out->score_p99_us = (double)ns[(size_t)((double)(k - 1) * 0.99)] / 1e3;
    qsort(cns, k, sizeof(uint64_t), cmp_u64);
    out->score_cpu_p50_us = (double)cns[k / 2] / 1e3;
    out->score_cpu_p99_us = (double)cns[(size_t)((double)(k - 1) * 0.99)] / 1e3;
done:
    lp_explain_ws_free(ws);
    free(order);
    free(x);
    free(score);
    free(y);
    free(ns);
    free(cns);
    fraud_state_free(s);
    return st;
}

char *fraud_eval_to_json(const fraud_eval *e)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "n", (double)e->n);
    cJSON_AddNumberToObject(j, "n_fraud", (double)e->n_fraud);
    cJSON_AddNumberToObject(j, "skipped", (double)e->skipped);
    cJSON *sk = cJSON_AddObjectToObject(j, "skipped_why");
    cJSON_AddNumberToObject(sk, "unlabelled", (double)e->skipped_unlabelled);
    cJSON_AddNumberToObject(sk, "invalid", (double)e->skipped_invalid);
    cJSON_AddNumberToObject(sk, "duplicate_id", (double)e->skipped_duplicate);
    cJSON_AddNumberToObject(sk, "already_in_history", (double)e->skipped_in_history);
    cJSON_AddNumberToObject(j, "ids_also_in_history", (double)e->ids_in_history);
    cJSON_AddNumberToObject(j, "auprc", e->auprc);
    cJSON_AddNumberToObject(j, "auroc", e->auroc);
    cJSON_AddNumberToObject(j, "recall_at_1pct_fpr", e->recall_at_1pct_fpr);
    cJSON_AddNumberToObject(j, "precision_at_1pct_alerts", e->precision_at_1pct_alerts);
    cJSON *d = cJSON_AddObjectToObject(j, "decisions");
    for (int i = 0; i < 3; i++)
        cJSON_AddNumberToObject(d, fraud_decision_name((fraud_decision)i),
                                (double)e->decisions[i]);
    cJSON_AddNumberToObject(j, "replay_tx_per_s", round(e->replay_tx_per_s));
    cJSON_AddNumberToObject(j, "score_p50_us", round(e->score_p50_us * 10) / 10);
    cJSON_AddNumberToObject(j, "score_p99_us", round(e->score_p99_us * 10) / 10);
    cJSON_AddNumberToObject(j, "replay_cpu_tx_per_s", round(e->replay_cpu_tx_per_s));
    cJSON_AddNumberToObject(j, "score_cpu_p50_us", round(e->score_cpu_p50_us * 10) / 10);
    cJSON_AddNumberToObject(j, "score_cpu_p99_us", round(e->score_cpu_p99_us * 10) / 10);
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    return s;
}

lp_status fraud_backtest(fraud_scorer *sc, const fraud_ruleset *rs, const lp_frame *data,
                         char **json, lp_err *err)
{
    *json = NULL;
    const fraud_config *c = fraud_scorer_config(sc);
    fraud_frame_map map;
    lp_status st = bind_cfg(sc, data, true, "row", &map, err);
    if (st)
        return st;
    fraud_state *s = NULL;
    if ((st = fraud_state_new(&c->feat, &s, err)))
        return st;
    size_t n = lp_frame_nrows(data), d = fraud_state_n_features(s), nr = rs->n;
    size_t *order = fraud_frame_time_order(data, &map);
    float *x = lp_mallocarray(d, sizeof(float));
    size_t *hits = lp_calloc(nr + 1, sizeof(size_t)), *tp = lp_calloc(nr + 1, sizeof(size_t));
    size_t *chg = lp_calloc(nr + 1, sizeof(size_t));
    bool *h = lp_calloc(nr + 1, sizeof(bool));
    size_t moves[3][3] = {{0}}, frauds = 0, rows = 0;
    size_t caught_model = 0, caught_all = 0;
    if (!order || !x || !hits || !tp || !chg || !h) {
        st = lp_err_set(err, LP_ENOMEM, "out of memory");
        goto done;
    }
    char buf[FRAUD_ROW_BUF];
    for (size_t r = 0; r < n; r++) {
        fraud_tx tx;
        fraud_frame_row(data, &map, &c->feat, order[r], &tx, buf, sizeof buf);
        if (tx.label < 0 || fraud_state_check(s, &tx, NULL))
            continue;
        fraud_state_features(s, &tx, x);
        if ((st = fraud_state_update(s, &tx, err)))
            goto done;
        fraud_decision md = fraud_scorer_decide(sc, fraud_scorer_score(sc, x));
        fraud_decision all = fraud_combine(md, rs, x, false, false, h);
        rows++;
        frauds += (size_t)tx.label;
        moves[md][all]++;
        caught_model += tx.label && md != FRAUD_DECISION_APPROVE;
        caught_all += tx.label && all != FRAUD_DECISION_APPROVE;
        for (size_t i = 0; i < nr; i++) {
            if (!h[i])
                continue;
            hits[i]++;
            tp[i] += (size_t)tx.label;
            /* what this rule alone would change */
            fraud_decision alone = rs->action[i] == FRAUD_ACTION_BLOCK   ? FRAUD_DECISION_DECLINE
                                   : rs->action[i] == FRAUD_ACTION_ALLOW ? FRAUD_DECISION_APPROVE
                                   : md == FRAUD_DECISION_APPROVE ? FRAUD_DECISION_REVIEW
                                                                  : md;
            chg[i] += alone != md;
        }
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "n", (double)rows);
    cJSON_AddNumberToObject(j, "n_fraud", (double)frauds);
    cJSON *a = cJSON_AddArrayToObject(j, "rules");
    for (size_t i = 0; i < nr; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", rs->name[i]);
        cJSON_AddStringToObject(o, "action", fraud_action_name(rs->action[i]));
        cJSON_AddNumberToObject(o, "hits", (double)hits[i]);
        cJSON_AddNumberToObject(o, "frauds_hit", (double)tp[i]);
        if (hits[i])
            cJSON_AddNumberToObject(o, "precision", (double)tp[i] / (double)hits[i]);
        else
            cJSON_AddNullToObject(o, "precision");
        if (frauds)
            cJSON_AddNumberToObject(o, "recall", (double)tp[i] / (double)frauds);
        else
            cJSON_AddNullToObject(o, "recall");
        cJSON_AddNumberToObject(o, "decisions_changed", (double)chg[i]);
        cJSON_AddItemToArray(a, o);
    }
    cJSON *ch = cJSON_AddObjectToObject(j, "with_all_rules");
    for (int p = 0; p < 3; p++)
        for (int q = 0; q < 3; q++)
            if (p != q) {
                char key[48];
                snprintf(key, sizeof key, "%s_to_%s", fraud_decision_name((fraud_decision)p),
                         fraud_decision_name((fraud_decision)q));
                cJSON_AddNumberToObject(ch, key, (double)moves[p][q]);
            }
    cJSON_AddNumberToObject(ch, "frauds_stopped_model_only", (double)caught_model);
    cJSON_AddNumberToObject(ch, "frauds_stopped_with_rules", (double)caught_all);
    *json = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!*json)
        st = lp_err_set(err, LP_ENOMEM, "out of memory");
done:
    free(order);
    free(x);
    free(hits);
    free(tp);
    free(chg);
    free(h);
    fraud_state_free(s);
    return st;
}

lp_status fraud_state_warm(fraud_state *s, const fraud_scorer *sc, const lp_frame *history,
                           double until, size_t *n_in, lp_err *err)
{
    return warm(s, sc, history, until, n_in, NULL, NULL, err);
}
