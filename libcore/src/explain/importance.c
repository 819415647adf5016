/*
 * importance.c - permutation importance (Breiman 2001, "Random forests", section 10; the
 * model-reliance form of Fisher, Rudin & Dominici 2019): the model's score on labelled data
 * minus its score after one feature's values are shuffled across the rows, averaged over
 * `repeats` seeded shuffles. The shuffle is done in the design space: all design columns of a
 * feature (a raw column's one-hot block, its TF-IDF terms) move together with the same row
 * permutation, which is the same as shuffling the raw column. Score: accuracy from the raw
 * scores' argmax (classification; binary: log-odds > 0) or R^2 (regression).
 *
 * Each (feature, repeat) draws its own stream from (seed, feature, repeat), so the result does
 * not depend on the thread count. OpenMP over features, each thread with its own copy of X.
 */
#include "explain/explain_internal.h"

#include "lepton/linalg.h"
#include "model/family.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static double score_of(const lp_xscorer *s, const double *R, size_t n, const double *y)
{
    size_t K = s->K;
    if (s->task == LP_TASK_REGRESSION) {
        double mean = 0.0, ss = 0.0, se = 0.0;
        for (size_t i = 0; i < n; i++)
            mean += y[i];
        mean /= (double)n;
        for (size_t i = 0; i < n; i++) {
            ss += (y[i] - mean) * (y[i] - mean);
            se += (y[i] - R[i]) * (y[i] - R[i]);
        }
        return ss > 0 ? 1.0 - se / ss : (se > 0 ? -INFINITY : 1.0);
    }
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        if (K == 1) {
            k = R[i] > 0.0;
        } else {
            for (size_t c = 1; c < K; c++)
                if (R[i * K + c] > R[i * K + k])
                    k = c;
        }
        ok += (double)k == y[i];
    }
    return (double)ok / (double)n;
}

void lp_importance_clear(lp_importance *imp)
{
    if (!imp)
        return;
    for (size_t j = 0; imp->names && j < imp->p; j++)
        free(imp->names[j]);
    free(imp->names);
    free(imp->importance);
    free(imp->std);
    memset(imp, 0, sizeof *imp);
}

lp_status lp_permutation_importance(const lp_model *m, const lp_frame *data, size_t repeats,
                                    bool raw_columns, uint64_t seed, int threads,
                                    lp_importance *out, lp_err *err)
{
    memset(out, 0, sizeof *out);
    if (repeats < 1 || repeats > 1000)
        return lp_err_set(err, LP_EINVAL, "permutation importance: repeats=%zu: must be in "
                          "[1, 1000]", repeats);
    lp_xscorer s;
    lp_xgroups g;
    memset(&g, 0, sizeof g);
    lp_matf *X = NULL;
    double *y = NULL, *R = NULL;
    int32_t *cls = NULL;
    lp_status st = lp_xscorer_init(&s, m, false, err);
    if (st)
        return st;
    if ((st = lp_model_design_labeled(m, data, &X, &y, &cls, err)) ||
        (st = lp_xgroups_init(&g, m, s.d, raw_columns, err)))
        goto done;
    size_t n = X->rows, d = s.d, p = g.p;
    if (n < 2) {
        st = lp_err_set(err, LP_EINVAL, "permutation importance needs at least 2 labelled rows, "
                        "got %zu", n);
        goto done;
    }
    out->p = p;
    out->importance = lp_calloc(p + 1, sizeof(double));
    out->std = lp_calloc(p + 1, sizeof(double));
    R = lp_mallocarray(n * s.K + 1, sizeof(double));
    if (!out->importance || !out->std || !R) {
        st = lp_err_set(err, LP_ENOMEM, "permutation importance: out of memory");
        goto done;
    }
    if ((st = lp_xscorer_raw(&s, X->v, n, threads, R, err)))
        goto done;
    out->score = score_of(&s, R, n, y);
    out->metric = s.task == LP_TASK_REGRESSION ? "r2" : "accuracy";
    int nth = threads > 0 ? threads : omp_get_max_threads();
    int failed = 0;
    lp_err terr;
    lp_err_clear(&terr);
#pragma omp parallel num_threads(nth) reduction(| : failed)
    {
        float *Xp = lp_mallocarray(n * d, sizeof(float));
        double *Rp = lp_mallocarray(n * s.K, sizeof(double));
        size_t *perm = lp_mallocarray(n, sizeof(size_t));
        uint8_t *cols = lp_mallocarray(d, 1);
        if (!Xp || !Rp || !perm || !cols)
            failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (long q = 0; q < (long)p; q++) {
            if (!Xp || !Rp || !perm || !cols || failed)
                continue;
            size_t nc = 0;
            for (size_t j = 0; j < d; j++) {
                cols[j] = g.group[j] == (int32_t)q;
                nc += cols[j];
            }
            if (!nc)
                continue; /* no design column: importance 0 */
            double sum = 0.0, sum2 = 0.0;
            memcpy(Xp, X->v, n * d * sizeof(float));
            for (size_t r = 0; r < repeats; r++) {
                lp_rng rng;
                lp_rng_seed(&rng, seed ^ ((uint64_t)q * 0x9E3779B97F4A7C15ull) ^
                                      ((uint64_t)(r + 1) * 0xD1B54A32D192ED03ull));
                for (size_t i = 0; i < n; i++)
                    perm[i] = i;
                lp_rng_shuffle_idx(&rng, perm, n);
                for (size_t i = 0; i < n; i++)
                    for (size_t j = 0; j < d; j++)
                        if (cols[j])
                            Xp[i * d + j] = X->v[perm[i] * d + j];
                lp_err e2;
                if (lp_xscorer_raw(&s, Xp, n, 1, Rp, &e2)) {
#pragma omp critical(lp_perm_err)
                    terr = e2;
                    failed = 1;
                    break;
                }
                double drop = out->score - score_of(&s, Rp, n, y);
                sum += drop;
                sum2 += drop * drop;
            }
            double mean = sum / (double)repeats;
            out->importance[q] = mean;
            double var = repeats > 1 ? (sum2 - (double)repeats * mean * mean) /
                                           (double)(repeats - 1) : 0.0;
            out->std[q] = var > 0 ? sqrt(var) : 0.0;
        }
        free(Xp);
        free(Rp);
        free(perm);
        free(cols);
    }
    if (failed) {
        st = terr.status ? terr.status : LP_ENOMEM;
        if (err)
            *err = terr.status ? terr : *err;
        if (!terr.status)
            lp_err_set(err, LP_ENOMEM, "permutation importance: out of memory");
        goto done;
    }
    out->names = g.names;
    g.names = NULL;
    g.p = 0;
done:
    if (st)
        lp_importance_clear(out);
    lp_xgroups_clear(&g);
    lp_xscorer_clear(&s);
    lp_matf_free(X);
    free(y);
    free(cls);
    free(R);
    return st;
}
