/*
 * gbdt_bin.c - quantile binning of a float feature matrix for histogram boosting.
 *
 * Cut points come from a seeded row sample (at most `sample` rows). A feature with at most
 * max_bins distinct sampled values gets one bin per value; otherwise the sorted sample is cut
 * greedily into bins of about equal counts, the target re-computed from what is left after
 * every cut (LightGBM's GreedyFindBin), so a value repeated by most rows keeps one bin of its
 * own without starving the rest of the range. Cuts are midpoints
 * between neighbouring distinct values, rounded to float so that the lower value stays <= cut
 * and the upper value stays > cut. NaN goes to bin 0; +-Inf are ordinary values.
 *
 * Not here: weighted quantile sketches (weights do not move cuts, as in LightGBM), categorical
 * features. Every feature is processed independently, so results do not depend on threads.
 */
#include "model/gbdt_int.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Order-preserving map of a non-NaN float to an unsigned key (flip negatives entirely,
 * set the sign bit of positives), and back. */
static inline uint32_t float_key(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u & 0x80000000u ? ~u : u | 0x80000000u;
}

static inline float key_float(uint32_t k)
{
    uint32_t u = k & 0x80000000u ? k & 0x7fffffffu : ~k;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Sort m non-NaN floats ascending: LSD radix sort on keys, 4 passes of 8 bits. tmp has m
 * slots. -0.0 sorts before +0.0, which compare equal and so share a bin. */
static void sort_floats(float *v, uint32_t *tmp, size_t m)
{
    uint32_t *a = (uint32_t *)(void *)v, *b = tmp;
    for (size_t i = 0; i < m; i++)
        a[i] = float_key(v[i]);
    for (int shift = 0; shift < 32; shift += 8) {
        size_t count[257] = {0};
        for (size_t i = 0; i < m; i++)
            count[((a[i] >> shift) & 0xffu) + 1]++;
        for (int k = 0; k < 256; k++)
            count[k + 1] += count[k];
        for (size_t i = 0; i < m; i++)
            b[count[(a[i] >> shift) & 0xffu]++] = a[i];
        uint32_t *t = a;
        a = b;
        b = t;
    }
    /* four passes: the keys are back in v's storage */
    for (size_t i = 0; i < m; i++)
        v[i] = key_float(a[i]);
}

static int cmp_size(const void *a, const void *b)
{
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return (x > y) - (x < y);
}

/* A float c with lo <= c < hi (lo < hi): the midpoint when it rounds inside, else lo. */
static float cut_between(float lo, float hi)
{
    float mid = (float)(((double)lo + (double)hi) * 0.5);
    if (!(mid >= lo && mid < hi))
        mid = lo;
    return mid;
}

/* Cuts of one feature from its m sorted non-NaN sample values v; returns the cut count
 * (<= max_bins - 1) written to cuts. */
static size_t feature_cuts(const float *v, size_t m, int max_bins, float *cuts)
{
    if (m == 0)
        return 0;
    size_t nd = 1;
    for (size_t i = 1; i < m; i++)
        nd += v[i] != v[i - 1];
    size_t nc = 0;
    if (nd <= (size_t)max_bins) {
        for (size_t i = 1; i < m; i++)
            if (v[i] != v[i - 1])
                cuts[nc++] = cut_between(v[i - 1], v[i]);
        return nc;
    }
    /* Greedy equal-count bins over the distinct values, re-balancing as we go (LightGBM's
     * GreedyFindBin): the target size is what is left divided by the bins left, so a value
     * repeated by most rows (zero in a sparse risk feature) takes one bin and the remaining
     * bins are spread over the rest instead of being used up by that one value. A value that
     * alone fills a bin is cut off on both sides. */
    size_t rest = m, bins_left = (size_t)max_bins, cur = 0;
    for (size_t i = 0; i + 1 < m && nc + 1 < (size_t)max_bins;) {
        size_t j = i + 1; /* [i, j) is the run of value v[i] */
        while (j < m && v[j] == v[i])
            j++;
        if (j >= m)
            break;
        size_t next = j + 1; /* the run of the following value */
        while (next < m && v[next] == v[j])
            next++;
        cur += j - i;
        double target = (double)rest / (double)bins_left;
        if ((double)cur >= target || (double)(next - j) >= target) {
            cuts[nc++] = cut_between(v[j - 1], v[j]);
            rest -= cur;
            if (bins_left > 1)
                bins_left--;
            cur = 0;
        }
        i = j;
    }
    return nc;
}

/* 1 + number of cuts strictly below v (first k with cuts[k] >= v), or 0 for NaN. Branch-free
 * lower bound (the step is arithmetic, not a jump), as the comparisons are unpredictable. */
static inline uint8_t bin_of(const float *cuts, uint32_t nc, float v)
{
    if (v != v)
        return 0;
    if (nc == 0)
        return 1;
    const float *b = cuts;
    uint32_t len = nc;
    while (len > 1) {
        uint32_t half = len >> 1;
        b += (size_t)(b[half - 1] < v) * half;
        len -= half;
    }
    return (uint8_t)((b - cuts) + (*b < v) + 1);
}

void gb_bins_free(gb_bins *b)
{
    if (!b)
        return;
    free(b->bins);
    free(b->cols);
    free(b->nb);
    free(b->off);
    free(b->cuts);
    free(b->cut_off);
    memset(b, 0, sizeof *b);
}

lp_status gb_bins_build(const float *X, size_t n, size_t d, int max_bins, size_t sample,
                        uint64_t seed, int n_threads, gb_bins *out, lp_err *err)
{
    memset(out, 0, sizeof *out);
    if (max_bins < 2 || max_bins > 255 || n == 0 || d == 0 || sample == 0)
        return lp_err_set(err, LP_EINVAL, "gbdt binning: bad sizes (n=%zu, d=%zu, max_bins=%d)",
                          n, d, max_bins);
    size_t m = n <= sample ? n : sample;
    size_t *rows = lp_mallocarray(n <= sample ? 1 : n, sizeof *rows);
    float *allcuts = lp_mallocarray(d, (size_t)max_bins * sizeof(float));
    uint32_t *ncut = lp_calloc(d, sizeof *ncut);
    out->n = n;
    out->d = d;
    out->nb = lp_calloc(d, sizeof *out->nb);
    out->off = lp_calloc(d + 1, sizeof *out->off);
    out->cut_off = lp_calloc(d + 1, sizeof *out->cut_off);
    out->bins = lp_mallocarray(n, d);
    out->cols = lp_mallocarray(n, d);
    if (!rows || !allcuts || !ncut || !out->nb || !out->off || !out->cut_off || !out->bins ||
        !out->cols)
        goto nomem;
    if (n > sample) {
        /* A seeded uniform subset of m rows, sorted so the gather below walks memory forward. */
        lp_rng rng;
        lp_rng_seed(&rng, seed);
        for (size_t i = 0; i < n; i++)
            rows[i] = i;
        for (size_t i = 0; i < m; i++) { /* partial Fisher-Yates */
            size_t j = i + (size_t)lp_rng_below(&rng, n - i);
            size_t t = rows[i];
            rows[i] = rows[j];
            rows[j] = t;
        }
        qsort(rows, m, sizeof *rows, cmp_size);
    }

    int failed = 0;
#pragma omp parallel num_threads(n_threads > 0 ? n_threads : omp_get_max_threads())
    {
        float *buf = lp_mallocarray(m, sizeof *buf);
        uint32_t *tmp = lp_mallocarray(m, sizeof *tmp);
        if (!buf || !tmp) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp for schedule(dynamic, 1)
        for (size_t j = 0; j < d; j++) {
            if (!buf || !tmp)
                continue;
            size_t cnt = 0;
            for (size_t i = 0; i < m; i++) {
                float v = X[(n > sample ? rows[i] : i) * d + j];
                if (v == v)
                    buf[cnt++] = v;
            }
            sort_floats(buf, tmp, cnt);
            ncut[j] = (uint32_t)feature_cuts(buf, cnt, max_bins, allcuts + j * (size_t)max_bins);
        }
        free(buf);
        free(tmp);
    }
    if (failed)
        goto nomem;

    size_t total_cuts = 0;
    for (size_t j = 0; j < d; j++) {
        out->nb[j] = (uint16_t)(ncut[j] + 1);
        out->off[j + 1] = out->off[j] + out->nb[j] + 1;
        out->cut_off[j] = (uint32_t)total_cuts;
        total_cuts += ncut[j];
    }
    out->cut_off[d] = (uint32_t)total_cuts;
    out->cuts = lp_mallocarray(total_cuts ? total_cuts : 1, sizeof *out->cuts);
    if (!out->cuts)
        goto nomem;
    for (size_t j = 0; j < d; j++)
        memcpy(out->cuts + out->cut_off[j], allcuts + j * (size_t)max_bins,
               ncut[j] * sizeof(float));

    const float *cuts = out->cuts;
    const uint32_t *coff = out->cut_off;
    uint8_t *bins = out->bins, *cols = out->cols;
    int nt = n_threads > 0 ? n_threads : omp_get_max_threads();
#pragma omp parallel num_threads(nt)
    {
#pragma omp for schedule(static)
        for (size_t i = 0; i < n; i++) {
            const float *x = X + i * d;
            uint8_t *b = bins + i * d;
            for (size_t j = 0; j < d; j++)
                b[j] = bin_of(cuts + coff[j], ncut[j], x[j]);
        }
        /* transpose in tiles of 64 rows so both sides stay in cache */
#pragma omp for schedule(static)
        for (size_t i0 = 0; i0 < n; i0 += 64) {
            size_t i1 = i0 + 64 < n ? i0 + 64 : n;
            for (size_t j = 0; j < d; j++)
                for (size_t i = i0; i < i1; i++)
                    cols[j * n + i] = bins[i * d + j];
        }
    }
    free(rows);
    free(allcuts);
    free(ncut);
    return LP_OK;

nomem:
    free(rows);
    free(allcuts);
    free(ncut);
    gb_bins_free(out);
    return lp_err_set(err, LP_ENOMEM, "gbdt binning: out of memory for %zu x %zu features", n,
                      d);
}
