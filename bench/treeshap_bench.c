/*
 * treeshap_bench.c - TreeSHAP throughput of lp_explainer on a 100-tree, 64-leaf gbdt over the
 * seeded synthetic data bench/treeshap_xgboost.py writes (raw float32 under DIR), so the peer's
 * pred_contribs sees identical bytes and the same model shape. Trains through lp_model_train
 * (the pipeline standard-scales the 30 float columns: trees are unchanged by that), then times
 * lp_explainer_batch over all explain rows with `threads` threads (best of 3) and
 * lp_explainer_row one row at a time on one thread (the request path, as apps/fraud calls it),
 * with the precomputed tables and with Algorithm 2 alone (lp_explainer_new_lite, private).
 * Beside the wall-clock numbers it reports CPU time (the batch's process CPU per row, the single
 * row's thread CPU), which a machine loaded by other work inflates far less.
 * Not a test: prints one JSON line.
 *
 * usage: treeshap_bench DIR [threads=2] [max_depth=6] [max_leaves=64] [rounds=100]
 *   (max_depth 0 = unlimited, lossguide; apps/fraud's shape is depth 4, 15 leaves, 150 rounds)
 */
#include "lepton/explain.h"
#include "lepton/linalg.h"
#include "model/family.h"
#include "explain/explain_internal.h"
#include "model/gbdt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU time of the calling thread (or of the process, for the threaded batch): on a machine
 * shared with other work, wall-clock time is inflated by preemption; CPU time is what the
 * rows themselves took. */
static uint64_t cpu_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
static uint64_t thread_ns(void) { return cpu_ns(CLOCK_THREAD_CPUTIME_ID); }

static float *read_f32(const char *dir, const char *name, size_t count)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *data;
    size_t len;
    lp_err err;
    if (lp_file_read(path, &data, &len, &err)) {
        fprintf(stderr, "treeshap_bench: %s\n", lp_err_text(&err));
        return NULL;
    }
    if (len != count * sizeof(float)) {
        fprintf(stderr, "treeshap_bench: %s has %zu bytes, expected %zu\n", path, len,
                count * sizeof(float));
        free(data);
        return NULL;
    }
    return (float *)data;
}

static lp_frame *to_frame(const float *X, const float *y, size_t n, size_t d)
{
    lp_frame *f = lp_frame_new();
    double *c = malloc(n * sizeof(double));
    for (size_t j = 0; j < d && f && c; j++) {
        char name[16];
        snprintf(name, sizeof name, "f%02zu", j);
        for (size_t i = 0; i < n; i++)
            c[i] = X[i * d + j];
        lp_frame_add_numeric(f, name, LP_COL_KIND_FLOAT, c, NULL, n, NULL);
    }
    if (y) {
        for (size_t i = 0; i < n; i++)
            c[i] = y[i];
        lp_frame_add_numeric(f, "y", LP_COL_KIND_INTEGER, c, NULL, n, NULL);
    }
    free(c);
    return f;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: treeshap_bench DIR [threads]\n");
        return 2;
    }
    const char *dir = argv[1];
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    int depth = argc > 3 ? atoi(argv[3]) : 6;
    int leaves = argc > 4 ? atoi(argv[4]) : 64;
    int rounds = argc > 5 ? atoi(argv[5]) : 100;
    char path[4096];
    snprintf(path, sizeof path, "%s/ts_meta.txt", dir);
    FILE *mf = fopen(path, "r");
    size_t ntr, nex, d;
    if (!mf || fscanf(mf, "%zu %zu %zu", &ntr, &nex, &d) != 3) {
        fprintf(stderr, "treeshap_bench: cannot read %s (run treeshap_xgboost.py first)\n", path);
        return 1;
    }
    fclose(mf);
    float *Xtr = read_f32(dir, "ts_train_X.f32", ntr * d);
    float *ytr = read_f32(dir, "ts_train_y.f32", ntr);
    float *Xex = read_f32(dir, "ts_explain_X.f32", nex * d);
    if (!Xtr || !ytr || !Xex)
        return 1;
    lp_frame *tr = to_frame(Xtr, ytr, ntr, d), *ex = to_frame(Xex, NULL, nex, d);
    lp_params *p = lp_params_new();
    const char *kv[] = {"learning_rate=0.1", "task=classification", NULL};
    lp_err err;
    for (size_t i = 0; kv[i]; i++)
        if (lp_params_parse(p, kv[i], &err)) {
            fprintf(stderr, "treeshap_bench: %s\n", lp_err_text(&err));
            return 1;
        }
    char th[32];
    snprintf(th, sizeof th, "threads=%d", threads);
    lp_params_parse(p, th, NULL);
    char dp[32];
    snprintf(dp, sizeof dp, "max_depth=%d", depth);
    lp_params_parse(p, dp, NULL);
    snprintf(dp, sizeof dp, "max_leaves=%d", leaves);
    lp_params_parse(p, dp, NULL);
    snprintf(dp, sizeof dp, "n_rounds=%d", rounds);
    lp_params_parse(p, dp, NULL);
    lp_train_opts o = lp_train_opts_default();
    o.kind = LP_MODEL_KIND_GBDT;
    o.label = "y";
    o.params = p;
    o.valid_frac = 0.1;
    o.seed = 1;
    lp_model *m = NULL;
    if (lp_model_train(tr, NULL, &o, &m, &err)) {
        fprintf(stderr, "treeshap_bench: %s\n", lp_err_text(&err));
        return 1;
    }
    lp_matf *X = NULL;
    lp_explainer *e = NULL;
    if (lp_model_design(m, ex, &X, &err) || lp_explainer_new(m, &e, &err)) {
        fprintf(stderr, "treeshap_bench: %s\n", lp_err_text(&err));
        return 1;
    }
    const lp_gbdt *g = lp_model_impl(m);
    size_t nt = lp_gbdt_n_trees(g), max_leaves = 0, sum_leaves = 0, max_d = 0;
    for (size_t t = 0; t < nt; t++) {
        size_t nn = 0, l = 0;
        const lp_gbdt_node *nodes = lp_gbdt_tree(g, t, &nn);
        size_t *dep = calloc(nn + 1, sizeof(size_t));
        for (size_t i = 0; i < nn; i++) {
            l += nodes[i].feature < 0;
            if (nodes[i].feature >= 0)
                dep[nodes[i].left] = dep[nodes[i].right] = dep[i] + 1;
            max_d = dep[i] > max_d ? dep[i] : max_d;
        }
        free(dep);
        max_leaves = l > max_leaves ? l : max_leaves;
        sum_leaves += l;
    }
    double *phi = malloc(nex * d * sizeof(double)), *mg = malloc(nex * sizeof(double));
    double best = INFINITY, best_cpu = INFINITY;
    for (int r = 0; r < 3; r++) {
        uint64_t t0 = lp_time_ns(), c0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
        if (lp_explainer_batch(e, X->v, nex, 0, threads, phi, mg, &err)) {
            fprintf(stderr, "treeshap_bench: %s\n", lp_err_text(&err));
            return 1;
        }
        double s = (double)(lp_time_ns() - t0) / 1e9;
        double c = (double)(cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - c0) / 1e9;
        best = s < best ? s : best;
        best_cpu = c < best_cpu ? c : best_cpu;
    }
    double gap = 0.0, base = lp_explainer_base_value(e, 0);
    for (size_t i = 0; i < nex; i++) {
        double s = base;
        for (size_t j = 0; j < d; j++)
            s += phi[i * d + j];
        gap = fmax(gap, fabs(s - mg[i]));
    }
    /* the request path: one row at a time, one thread, a reused workspace */
    lp_explain_ws *ws = lp_explain_ws_new(e);
    size_t n1 = nex < 2000 ? nex : 2000;
    uint64_t t0 = lp_time_ns(), c0 = thread_ns();
    for (size_t i = 0; i < n1; i++)
        lp_explainer_row(e, ws, X->v + i * d, 0, phi, mg, NULL);
    double row_us = (double)(lp_time_ns() - t0) / 1e3 / (double)n1;
    double row_cpu_us = (double)(thread_ns() - c0) / 1e3 / (double)n1;
    /* the same with Algorithm 2 alone (no precomputed tables: the code before the fast path),
     * on fewer rows; and the time to build the tables */
    lp_explainer *e2 = NULL;
    lp_explainer_new_lite(m, &e2, NULL);
    lp_explain_ws *ws2 = lp_explain_ws_new(e2);
    size_t n2 = n1 < 300 ? n1 : 300;
    t0 = lp_time_ns();
    for (size_t i = 0; i < n2; i++)
        lp_explainer_row(e2, ws2, X->v + i * d, 0, phi, mg, NULL);
    double row2_us = (double)(lp_time_ns() - t0) / 1e3 / (double)n2;
    t0 = lp_time_ns();
    lp_explainer *e3 = NULL;
    lp_explainer_new(m, &e3, NULL);
    double build_ms = (double)(lp_time_ns() - t0) / 1e6;
    lp_explainer_free(e3);
    lp_explain_ws_free(ws2);
    lp_explainer_free(e2);
    printf("{\"tool\":\"lepton\",\"threads\":%d,\"trees\":%zu,\"max_leaves_seen\":%zu,"
           "\"mean_leaves\":%.1f,\"max_depth\":%zu,\"rows\":%zu,\"d\":%zu,\"rows_per_s\":%.0f,"
           "\"batch_cpu_us_per_row\":%.2f,\"single_row_us\":%.1f,\"single_row_cpu_us\":%.1f,"
           "\"single_row_us_algorithm2\":%.1f,\"tables_ms\":%.1f,"
           "\"completeness_gap\":%.3g}\n",
           threads, nt, max_leaves, (double)sum_leaves / (double)nt, max_d, nex, d,
           (double)nex / best, best_cpu * 1e6 / (double)nex, row_us, row_cpu_us, row2_us,
           build_ms, gap);
    lp_explain_ws_free(ws);
    free(phi);
    free(mg);
    lp_matf_free(X);
    lp_explainer_free(e);
    lp_model_free(m);
    lp_params_free(p);
    lp_frame_free(tr);
    lp_frame_free(ex);
    free(Xtr);
    free(ytr);
    free(Xex);
    return 0;
}
