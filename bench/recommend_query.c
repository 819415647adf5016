/*
 * recommend_query.c - one lp_mf_recommend call in process, as GET /v1/recommend makes it:
 * k = 10, 3 "because" items each, the user's history excluded; every trained user in turn,
 * first with their trained vector (the common request) and then by fold-in of their history
 * (a user with new events), then from the user's prepared state (lp_mf_user, made once, as the
 * service's cache keeps it). Prints one JSON line with the median, p90 and p99 per call in
 * microseconds for each path, on one thread, in thread CPU time (CLOCK_THREAD_CPUTIME_ID), so
 * that the other processes of a shared machine do not count. The HTTP side is
 * bench/recommend_wrk.sh's.
 *
 * usage: recommend_query MODEL.lpm [rounds=3]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "lepton/lepton.h"

static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* p50/p90/p99 of the n timings t (sorted in place), microseconds */
static void pct(uint64_t *t, size_t n, double *out)
{
    qsort(t, n, sizeof *t, cmp_u64);
    const double q[3] = {0.50, 0.90, 0.99};
    for (int i = 0; i < 3; i++) out[i] = t[(size_t)(q[i] * (double)(n - 1))] / 1e3;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: recommend_query MODEL.lpm [rounds=3]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    if (rounds < 1) rounds = 1;
    lp_err err;
    lp_mf *m = NULL;
    if (lp_mf_load(argv[1], &m, &err)) {
        fprintf(stderr, "recommend_query: %s\n", lp_err_text(&err));
        return 1;
    }
    size_t nu = lp_mf_n_users(m), n = 0;
    uint64_t *tv = malloc((size_t)rounds * nu * sizeof *tv);
    uint64_t *tf = malloc((size_t)rounds * nu * sizeof *tf);
    uint64_t *tp = malloc((size_t)rounds * nu * sizeof *tp);
    if (!tv || !tf || !tp) return 1;
    lp_mf_rec recs[10];
    double hist = 0;
    for (int r = 0; r < rounds; r++)
        for (size_t u = 0; u < nu; u++) {
            const int32_t *hi;
            const float *hw;
            size_t nh = lp_mf_user_history(m, u, &hi, &hw), got;
            if (!nh) continue;
            lp_mf_query q = {.user_vec = lp_mf_user_factors(m, u), .history = hi,
                             .history_w = hw, .n_history = nh, .exclude_history = true,
                             .k = 10, .n_because = 3};
            uint64_t t0 = cpu_ns();
            lp_status st = lp_mf_recommend(m, &q, recs, &got, &err);
            uint64_t t1 = cpu_ns();
            q.user_vec = NULL;
            if (!st) st = lp_mf_recommend(m, &q, recs, &got, &err);
            uint64_t t2 = cpu_ns();
            lp_mf_user *pu = NULL;
            if (!st) st = lp_mf_user_new(m, lp_mf_user_factors(m, u), hi, hw, nh, &pu, &err);
            lp_mf_query qp = {.user = pu, .exclude_history = true, .k = 10, .n_because = 3};
            uint64_t t3 = cpu_ns();
            if (!st) st = lp_mf_recommend(m, &qp, recs, &got, &err);
            uint64_t t4 = cpu_ns();
            lp_mf_user_free(pu);
            if (st) {
                fprintf(stderr, "recommend_query: user %zu: %s\n", u, lp_err_text(&err));
                return 1;
            }
            tv[n] = t1 - t0;
            tf[n] = t2 - t1;
            tp[n++] = t4 - t3;
            hist += (double)nh;
        }
    double a[3], b[3], c[3];
    pct(tv, n, a);
    pct(tf, n, b);
    pct(tp, n, c);
    printf("{\"calls\": %zu, \"mean_history\": %.1f, \"dim\": %zu, \"items\": %zu, "
           "\"trained_vector_us\": [%.1f, %.1f, %.1f], \"fold_in_us\": [%.1f, %.1f, %.1f], "
           "\"prepared_us\": [%.1f, %.1f, %.1f]}\n",
           n, hist / (double)n, lp_mf_dim(m), lp_mf_n_items(m), a[0], a[1], a[2], b[0], b[1],
           b[2], c[0], c[1], c[2]);
    free(tv), free(tf), free(tp);
    lp_mf_free(m);
    return 0;
}
