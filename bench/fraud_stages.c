/*
 * fraud_stages.c - where the in-process scoring time of lepton-fraud goes, per stage and per
 * percentile: replays HISTORY (no scoring) to warm the velocity state, then scores TEST in
 * time order as `lepton-fraud eval` does, timing each stage with the thread's CPU clock:
 * check + features (fraud_state_check, fraud_state_features), TreeSHAP alone
 * (lp_explainer_row), the full explanation with reason texts (fraud_scorer_explain, which runs
 * TreeSHAP again: texts = this minus TreeSHAP), and the state update. Prints p50 / p90 / p99 /
 * p99.9 per stage and for features + explanation (what eval's score_cpu_* measure).
 *   usage: fraud_stages MODEL.lpm HISTORY.csv[.gz] TEST.csv[.gz]
 */
#include "fraud.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void report(const char *name, uint64_t *v, size_t k)
{
    qsort(v, k, sizeof *v, cmp_u64);
    printf("%-22s p50 %6.1f  p90 %6.1f  p99 %6.1f  p99.9 %6.1f us\n", name, (double)v[k / 2] / 1e3,
           (double)v[(size_t)((double)(k - 1) * 0.9)] / 1e3,
           (double)v[(size_t)((double)(k - 1) * 0.99)] / 1e3,
           (double)v[(size_t)((double)(k - 1) * 0.999)] / 1e3);
}

/* Bind f with the model's columns and return its rows in time order (caller frees). */
static size_t *bind_ordered(const lp_frame *f, const fraud_config *c, fraud_frame_map *map)
{
    lp_err err;
    if (fraud_frame_bind(f, &c->feat, c->id_col[0] ? c->id_col : NULL, c->time_col,
                         c->amount_col, NULL, map, &err)) {
        fprintf(stderr, "fraud_stages: %s\n", lp_err_text(&err));
        return NULL;
    }
    return fraud_frame_time_order(f, map);
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: fraud_stages MODEL.lpm HISTORY.csv TEST.csv\n");
        return 2;
    }
    lp_err err;
    lp_model *m = NULL;
    fraud_scorer *sc = NULL;
    lp_frame *hist = NULL, *test = NULL;
    fraud_state *st = NULL;
    lp_csv_opts co = lp_csv_opts_default();
    if (lp_model_load(argv[1], &m, &err) || fraud_scorer_new(m, &sc, &err) ||
        lp_frame_read(argv[2], &co, &hist, &err) || lp_frame_read(argv[3], &co, &test, &err) ||
        fraud_state_new(&fraud_scorer_config(sc)->feat, &st, &err)) {
        fprintf(stderr, "fraud_stages: %s\n", lp_err_text(&err));
        return 1;
    }
    const fraud_config *c = fraud_scorer_config(sc);
    fraud_frame_map map;
    char buf[512];
    size_t *order = bind_ordered(hist, c, &map);
    size_t n = lp_frame_nrows(hist);
    for (size_t r = 0; order && r < n; r++) {
        fraud_tx tx;
        fraud_frame_row(hist, &map, &c->feat, order[r], &tx, buf, sizeof buf);
        fraud_state_step(st, &tx, NULL, NULL);
    }
    free(order);
    order = bind_ordered(test, c, &map);
    n = lp_frame_nrows(test);
    size_t d = fraud_state_n_features(st), k = 0;
    float *x = calloc(d, sizeof *x);
    double *phi = calloc(d, sizeof *phi);
    uint64_t *t_feat = calloc(n + 1, 8), *t_shap = calloc(n + 1, 8), *t_expl = calloc(n + 1, 8),
             *t_upd = calloc(n + 1, 8), *t_all = calloc(n + 1, 8);
    lp_explain_ws *ws = lp_explain_ws_new(fraud_scorer_explainer(sc));
    if (!order || !x || !phi || !t_feat || !t_shap || !t_expl || !t_upd || !t_all || !ws)
        return 1;
    for (size_t r = 0; r < n; r++) {
        fraud_tx tx;
        fraud_frame_row(test, &map, &c->feat, order[r], &tx, buf, sizeof buf);
        uint64_t t0 = cpu_ns();
        if (fraud_state_check(st, &tx, NULL))
            continue;
        fraud_state_features(st, &tx, x);
        uint64_t t1 = cpu_ns();
        double margin;
        lp_explainer_row(fraud_scorer_explainer(sc), ws, x, 0, phi, &margin, NULL);
        uint64_t t2 = cpu_ns();
        fraud_reason rs[FRAUD_MAX_REASONS];
        size_t nr;
        fraud_scorer_explain(sc, ws, x, rs, &nr);
        uint64_t t3 = cpu_ns();
        fraud_state_update(st, &tx, NULL);
        uint64_t t4 = cpu_ns();
        t_feat[k] = t1 - t0;
        t_shap[k] = t2 - t1;
        t_expl[k] = t3 - t2;
        t_upd[k] = t4 - t3;
        t_all[k] = (t1 - t0) + (t3 - t2);
        k++;
    }
    printf("# %zu test transactions scored, thread CPU time per stage\n", k);
    report("check + features", t_feat, k);
    report("TreeSHAP", t_shap, k);
    report("TreeSHAP + texts", t_expl, k);
    report("state update", t_upd, k);
    report("features + explain", t_all, k);
    free(order);
    free(x);
    free(phi);
    free(t_feat);
    free(t_shap);
    free(t_expl);
    free(t_upd);
    free(t_all);
    lp_explain_ws_free(ws);
    fraud_state_free(st);
    fraud_scorer_free(sc);
    lp_frame_free(hist);
    lp_frame_free(test);
    return 0;
}
