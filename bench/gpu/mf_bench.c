/*
 * mf_bench.c - the recommender's kernel-table ops on an ML-1M-shaped interaction table, the
 * Lepton side of bench/gpu/mf_torch.py (which reads the same table from the file written here).
 *
 * Data: 6040 users x 3706 items, about 1.0 M distinct pairs (MovieLens-1M's shape; synthetic
 * and seeded, since the device machine carries no data set): each user has 20 + Exp(mean 146)
 * items (at most 2314), drawn with popularity skew (item = 3706 U^2.5), weights 1..5.
 *
 * Modes (FACTORS latent factors; BPR adds the item-bias column, as the mf family does):
 *   bpr      one bpr_epoch of nnz sampled triples, lock-free (Hogwild) on the table
 *   bpr-det  the same in deterministic mini-batches of LP_MF_BPR_BATCH samples
 *   als      one implicit-ALS user half-step: G = Y^T Y by sgemm, then als_solve for every
 *            user's normal equations (alpha 2, lambda 0.05)
 * Method: 2 warm-up runs, then REPEATS timed runs, each ended by a table sync (bpr_epoch
 * returns its loss to the host, so it synchronises), timed by the host clock: for one call
 * that waits for its own device work, the same as CUDA events around it. Median and spread.
 *
 * usage: mf_bench BACKEND MODE FACTORS [REPEATS [DATA_FILE]]
 * DATA_FILE (written when given): int32 n_users, n_items, nnz; ptr (n_users + 1), col (nnz)
 * int32; w (nnz) float32; little-endian.
 * Prints: RESULT lepton BACKEND MODE FACTORS triples_per_s=.. ms=.. min=.. max=..
 */
#include "lepton/lepton.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NU 6040
#define NI 3706
#define MAX_PER_USER 2314
#define WARMUP 2

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

/* The CSR (users' rows, ascending items) of the synthetic table; caller frees. */
static size_t make_data(int32_t **ptr_out, int32_t **col_out, float **w_out)
{
    lp_rng rng;
    lp_rng_seed(&rng, 1000209);
    size_t cap = 1400000, nnz = 0;
    int32_t *ptr = malloc((NU + 1) * sizeof *ptr), *col = malloc(cap * sizeof *col);
    float *w = malloc(cap * sizeof *w);
    unsigned char *seen = calloc(NI, 1);
    if (!ptr || !col || !w || !seen)
        exit(1);
    ptr[0] = 0;
    for (size_t u = 0; u < NU; u++) {
        size_t n = 20 + (size_t)(-146.0 * log(1.0 - lp_rng_uniform(&rng)));
        n = n > MAX_PER_USER ? MAX_PER_USER : n;
        if (nnz + n > cap)
            n = cap - nnz;
        size_t start = nnz;
        while (nnz - start < n) {
            int32_t it = (int32_t)(NI * pow(lp_rng_uniform(&rng), 2.5));
            it = it >= NI ? NI - 1 : it;
            if (seen[it])
                continue;
            seen[it] = 1;
            col[nnz++] = it;
        }
        qsort(col + start, n, sizeof *col, cmp_i32);
        for (size_t t = start; t < nnz; t++) {
            seen[col[t]] = 0;
            w[t] = (float)(1 + lp_rng_below(&rng, 5));
        }
        ptr[u + 1] = (int32_t)nnz;
    }
    free(seen);
    *ptr_out = ptr, *col_out = col, *w_out = w;
    return nnz;
}

static void write_data(const char *path, const int32_t *ptr, const int32_t *col, const float *w,
                       size_t nnz)
{
    FILE *f = fopen(path, "wb");
    int32_t head[3] = {NU, NI, (int32_t)nnz};
    if (!f || fwrite(head, sizeof head, 1, f) != 1 ||
        fwrite(ptr, sizeof *ptr, NU + 1, f) != NU + 1 || fwrite(col, sizeof *col, nnz, f) != nnz ||
        fwrite(w, sizeof *w, nnz, f) != nnz || fclose(f) != 0) {
        fprintf(stderr, "mf_bench: cannot write %s\n", path);
        exit(1);
    }
}

static void *up(const lp_backend *be, const void *src, size_t nbytes)
{
    void *p = NULL;
    lp_err err;
    if (be->alloc(be, nbytes, &p, &err) || (nbytes && be->copy_h2d(be, p, src, nbytes, &err))) {
        fprintf(stderr, "mf_bench: %s\n", lp_err_text(&err));
        exit(1);
    }
    return p;
}

/* CSR transpose (items' rows), for nothing but the row_of array here: row_of[t] = user of t. */
static int32_t *rows_of(const int32_t *ptr, size_t nnz)
{
    int32_t *r = malloc(nnz * sizeof *r);
    if (!r)
        exit(1);
    for (size_t u = 0; u < NU; u++)
        for (int32_t t = ptr[u]; t < ptr[u + 1]; t++)
            r[t] = (int32_t)u;
    return r;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: mf_bench BACKEND bpr|bpr-det|als FACTORS [REPEATS [DATA_FILE]]\n");
        return 2;
    }
    const char *backend = argv[1], *mode = argv[2];
    size_t factors = (size_t)atol(argv[3]);
    int repeats = argc > 4 ? atoi(argv[4]) : 10;
    bool bpr = strncmp(mode, "bpr", 3) == 0, det = strcmp(mode, "bpr-det") == 0;
    if ((!bpr && strcmp(mode, "als") != 0) || factors < 1 || factors > 1024 || repeats < 1) {
        fprintf(stderr, "mf_bench: bad arguments\n");
        return 2;
    }
    int32_t *ptr, *col;
    float *w;
    size_t nnz = make_data(&ptr, &col, &w);
    if (argc > 5)
        write_data(argv[5], ptr, col, w, nnz);
    const lp_backend *be = NULL;
    lp_err err;
    if (lp_backend_get(backend, &be, &err)) {
        fprintf(stderr, "mf_bench: %s\n", lp_err_text(&err));
        return 1;
    }
    if (!be->als_solve || !be->bpr_epoch) {
        fprintf(stderr, "mf_bench: table %s has no recommender ops\n", be->name);
        return 1;
    }
    size_t k = bpr ? factors + 1 : factors;
    lp_rng rng;
    lp_rng_seed(&rng, 5);
    float *x = malloc(NU * k * sizeof *x), *y = malloc(NI * k * sizeof *y);
    double *t = malloc((size_t)repeats * sizeof *t);
    if (!x || !y || !t)
        return 1;
    double sc = (bpr ? 0.1 : 1.0) / sqrt((double)factors);
    for (size_t i = 0; i < NU * k; i++)
        x[i] = (float)(lp_rng_normal(&rng) * sc);
    for (size_t i = 0; i < NI * k; i++)
        y[i] = (float)(lp_rng_normal(&rng) * sc);
    if (bpr)
        for (size_t u = 0; u < NU; u++)
            x[u * k + factors] = 1.0f, y[(u % NI) * k + factors] = 0.0f;
    int32_t *dptr = up(be, ptr, (NU + 1) * sizeof *ptr), *dcol = up(be, col, nnz * sizeof *col);
    float *dw = up(be, w, nnz * sizeof *w), *dx = up(be, x, NU * k * sizeof *x),
          *dy = up(be, y, NI * k * sizeof *y), *dg = up(be, y, k * k * sizeof *y);
    int32_t *row_of = rows_of(ptr, nnz), *drow = up(be, row_of, nnz * sizeof *row_of);
    double loss = 0;
    size_t used = 0;
    for (int r = -WARMUP; r < repeats; r++) {
        uint64_t t0 = lp_time_ns();
        lp_status st;
        if (bpr) {
            st = be->bpr_epoch(be, NU, NI, k, nnz, dptr, dcol, drow, 42, (uint64_t)(r + 10), nnz,
                               0.05f, 0.01f, det ? LP_MF_BPR_BATCH : 0, dx, dy, &loss, &used, &err);
        } else {
            st = be->sgemm(be, true, false, k, k, NI, 1.0f, dy, k, dy, k, 0.0f, dg, k, &err);
            if (!st)
                st = be->als_solve(be, NU, NI, k, nnz, dptr, dcol, dw, dy, dg, 0.05f, 2.0f, dx,
                                   &err);
            if (!st)
                st = be->sync(be, &err);
        }
        if (st) {
            fprintf(stderr, "mf_bench: %s\n", lp_err_text(&err));
            return 1;
        }
        if (r >= 0)
            t[r] = (double)(lp_time_ns() - t0) * 1e-6; /* ms */
    }
    qsort(t, (size_t)repeats, sizeof *t, cmp_double);
    double med = repeats % 2 ? t[repeats / 2] : 0.5 * (t[repeats / 2 - 1] + t[repeats / 2]);
    if (bpr)
        printf("RESULT lepton %s %s %zu triples_per_s=%.0f ms=%.3f min=%.3f max=%.3f nnz=%zu "
               "loss=%.4f\n",
               backend, mode, factors, (double)nnz / (med * 1e-3), med, t[0], t[repeats - 1], nnz,
               used ? loss / (double)used : 0.0);
    else
        printf("RESULT lepton %s als-user-half %zu ms=%.3f min=%.3f max=%.3f nnz=%zu\n", backend,
               factors, med, t[0], t[repeats - 1], nnz);
    void *dev[] = {dptr, dcol, dw, dx, dy, dg, drow};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        be->free(be, dev[i], NULL);
    free(ptr), free(col), free(w), free(x), free(y), free(t), free(row_of);
    return 0;
}
