/*
 * gbdt_bench.c - training time, test AUC and single-row latency of lp_gbdt on the seeded
 * synthetic binary data that bench/gbdt_xgboost.py writes (raw little-endian float32 files
 * under bench/out/), so both tools see identical bytes. Not a test: it prints one JSON line.
 *
 * usage: gbdt_bench DIR [threads=2] [rounds=100] [max_leaves=31] [max_depth=8]
 *   DIR/gbdt_meta.txt      "n_train n_test d"
 *   DIR/gbdt_train_X.f32   (n_train, d)   DIR/gbdt_train_y.f32 (n_train)
 *   DIR/gbdt_test_X.f32    (n_test, d)    DIR/gbdt_test_y.f32  (n_test)
 */
#include "../libcore/src/model/gbdt.h"
#include "lepton/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static float *read_f32(const char *dir, const char *name, size_t count)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    uint8_t *data;
    size_t len;
    lp_err err;
    if (lp_file_read(path, &data, &len, &err)) {
        fprintf(stderr, "gbdt_bench: %s\n", lp_err_text(&err));
        return NULL;
    }
    if (len != count * sizeof(float)) {
        fprintf(stderr, "gbdt_bench: %s has %zu bytes, expected %zu\n", path, len,
                count * sizeof(float));
        free(data);
        return NULL;
    }
    return (float *)data;
}

typedef struct scored {
    float p;
    float y;
} scored;

static int cmp_scored(const void *a, const void *b)
{
    float x = ((const scored *)a)->p, y = ((const scored *)b)->p;
    return (x > y) - (x < y);
}

/* AUROC by the rank-sum (Mann-Whitney) formula, ties given their mean rank. */
static double auc(const float *p, const float *y, size_t n)
{
    scored *s = malloc(n * sizeof *s);
    for (size_t i = 0; i < n; i++)
        s[i] = (scored){p[i], y[i]};
    qsort(s, n, sizeof *s, cmp_scored);
    double rank_pos = 0.0, npos = 0.0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j].p == s[i].p)
            j++;
        double mean_rank = 0.5 * (double)(i + 1 + j);
        for (size_t k = i; k < j; k++)
            if (s[k].y > 0.5f) {
                rank_pos += mean_rank;
                npos += 1.0;
            }
        i = j;
    }
    double nneg = (double)n - npos;
    free(s);
    return (rank_pos - npos * (npos + 1.0) / 2.0) / (npos * nneg);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: gbdt_bench DIR [threads] [rounds] [max_leaves] [max_depth]\n");
        return 2;
    }
    const char *dir = argv[1];
    int threads = argc > 2 ? atoi(argv[2]) : 2;
    int rounds = argc > 3 ? atoi(argv[3]) : 100;
    int leaves = argc > 4 ? atoi(argv[4]) : 31;
    int depth = argc > 5 ? atoi(argv[5]) : 8;
    char path[4096];
    snprintf(path, sizeof path, "%s/gbdt_meta.txt", dir);
    FILE *f = fopen(path, "r");
    size_t ntr, nte, d;
    if (!f || fscanf(f, "%zu %zu %zu", &ntr, &nte, &d) != 3) {
        fprintf(stderr, "gbdt_bench: cannot read %s (run bench/gbdt_xgboost.py first)\n", path);
        return 1;
    }
    fclose(f);
    float *Xtr = read_f32(dir, "gbdt_train_X.f32", ntr * d);
    float *ytr = read_f32(dir, "gbdt_train_y.f32", ntr);
    float *Xte = read_f32(dir, "gbdt_test_X.f32", nte * d);
    float *yte = read_f32(dir, "gbdt_test_y.f32", nte);
    if (!Xtr || !ytr || !Xte || !yte)
        return 1;

    lp_gbdt_opts o = lp_gbdt_opts_default();
    o.loss = LP_GBDT_LOSS_LOGLOSS;
    o.n_rounds = rounds;
    o.max_leaves = leaves;
    o.max_depth = depth;
    o.learning_rate = 0.1f;
    o.lambda = 1.0f;
    o.min_child_weight = 1.0f;
    o.max_bins = 255;
    o.n_threads = threads;
    o.seed = 1;
    if (getenv("BASE_SCORE")) /* starting probability (default: the training fraud rate) */
        o.base_score = strtof(getenv("BASE_SCORE"), NULL);
    if (getenv("BIN_SAMPLE")) /* rows sampled to place bin boundaries (default 200000) */
        o.bin_sample = (size_t)strtoull(getenv("BIN_SAMPLE"), NULL, 10);
    lp_gbdt *m = NULL;
    lp_err err;
    uint64_t t0 = lp_time_ns();
    if (lp_gbdt_fit(Xtr, ytr, NULL, ntr, d, &o, NULL, NULL, 0, &m, &err)) {
        fprintf(stderr, "gbdt_bench: %s\n", lp_err_text(&err));
        return 1;
    }
    double fit_s = lp_time_since(t0);

    float *p = malloc(nte * sizeof *p);
    t0 = lp_time_ns();
    lp_gbdt_predict(m, Xte, nte, p, NULL);
    double pred_s = lp_time_since(t0);
    double test_auc = auc(p, yte, nte);
    /* average precision (AUPRC) with libcore's metric */
    int32_t *yi = malloc(nte * sizeof *yi);
    double *pd = malloc(nte * sizeof *pd);
    for (size_t i = 0; i < nte; i++) {
        yi[i] = yte[i] > 0.5f;
        pd[i] = p[i];
    }
    double test_auprc = 0;
    lp_metrics_average_precision(yi, pd, nte, &test_auprc, NULL);
    free(yi);
    free(pd);

    /* single-row latency: each call timed alone, median over 20000 test rows */
    const size_t nl = nte < 20000 ? nte : 20000;
    uint64_t *lat = malloc(nl * sizeof *lat);
    float sink = 0.0f, out;
    for (size_t i = 0; i < nl; i++) {
        uint64_t a = lp_time_ns();
        lp_gbdt_predict_row_raw(m, Xte + i * d, &out);
        lat[i] = lp_time_ns() - a;
        sink += out;
    }
    qsort(lat, nl, sizeof *lat, cmp_u64);
    printf("{\"tool\":\"lepton\",\"threads\":%d,\"rounds\":%d,\"max_leaves\":%d,\"max_depth\":%d,"
           "\"n_train\":%zu,\"d\":%zu,\"fit_s\":%.3f,\"predict_batch_s\":%.3f,\"test_auc\":%.5f,"
           "\"test_auprc\":%.5f,\"trees\":%zu,\"row_latency_median_us\":%.3f,"
           "\"row_latency_p99_us\":%.3f,\"checksum\":%g}\n",
           threads, rounds, leaves, depth, ntr, d, fit_s, pred_s, test_auc, test_auprc,
           lp_gbdt_n_trees(m),
           (double)lat[nl / 2] / 1e3, (double)lat[nl * 99 / 100] / 1e3, (double)sink);
    free(lat);
    free(p);
    lp_gbdt_free(m);
    free(Xtr);
    free(ytr);
    free(Xte);
    free(yte);
    return 0;
}
