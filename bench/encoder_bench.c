/*
 * encoder_bench.c - sentence-embedding throughput and single-sentence latency of the C
 * MiniLM encoder (lepton/encoder.h) on the cpu table.
 *
 * usage: encoder_bench ENCODER.lpm TEXTS.tsv [N [BATCH]]  (text = last TAB field of each line
 * after the header; defaults N 2048, BATCH 64). Throughput is end to end (tokenization
 * included) over the first N texts, best of 3 runs after one warm-up; latency is the median
 * of 200 calls embedding one text each (texts cycled), on the calling thread's path (batch 1).
 * Prints RESULT lines bench/encoder_bench.sh reads.
 *
 * BACKEND (default cpu) names the kernel table; ENCODER may also be a sentence-transformers
 * folder (bench_encoder.h). On any table but cpu the RESULT line is labelled lepton-BACKEND,
 * and a parity line follows: the first min(N, 512) texts embedded on that table and on the cpu
 * table, the smallest cosine between the two embeddings of a text and the largest component
 * difference (tests/gpu/run-device.sh runs it on the GPU).
 */
#include "bench_encoder.h"
#include "lepton/lepton.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s ENCODER.lpm|FOLDER TEXTS.tsv [N [BATCH [BACKEND]]]\n",
                argv[0]);
        return 2;
    }
    size_t want = argc > 3 ? (size_t)atol(argv[3]) : 2048;
    size_t batch = argc > 4 ? (size_t)atol(argv[4]) : 64;
    const char *backend = argc > 5 ? argv[5] : "cpu";
    bool cpu = strcmp(backend, "cpu") == 0;
    lp_err err;
    lp_encoder *e = NULL;
    if (bench_encoder_open(argv[1], backend, &e, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    uint8_t *data;
    size_t len;
    if (lp_file_read(argv[2], &data, &len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char **texts = calloc(want, sizeof *texts);
    size_t n = 0;
    char *save = NULL, *line = strtok_r((char *)data, "\n", &save); /* header */
    while (n < want && (line = strtok_r(NULL, "\n", &save))) {
        char *tab = strrchr(line, '\t');
        texts[n++] = tab ? tab + 1 : line;
    }
    size_t D = lp_encoder_dim(e), tokens = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t ids[256];
        size_t k;
        lp_wordpiece_encode(lp_encoder_tokenizer(e), texts[i], strlen(texts[i]), ids, 256, &k, NULL,
                            NULL);
        tokens += k;
    }
    float *out = malloc(n * D * sizeof *out);
    double best = 1e30;
    for (int r = 0; r < 4; r++) {
        uint64_t t0 = lp_time_ns();
        if (lp_encoder_embed(e, (const char *const *)texts, n, batch, out, NULL, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        double s = lp_time_since(t0);
        if (r > 0 && s < best)
            best = s;
    }
    double lat[200];
    for (int r = 0; r < 200; r++) {
        const char *one = texts[r % n];
        uint64_t t0 = lp_time_ns();
        if (lp_encoder_embed(e, &one, 1, 1, out, NULL, &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        lat[r] = lp_time_since(t0) * 1e3;
    }
    qsort(lat, 200, sizeof lat[0], cmp_double);
    printf("texts %zu, mean %.1f tokens (with [CLS]/[SEP]), batch %zu\n", n,
           (double)tokens / (double)n, batch);
    printf("RESULT lepton%s%s sentences_per_s=%.1f latency_ms_p50=%.3f latency_ms_p90=%.3f\n",
           cpu ? "" : "-", cpu ? "" : backend, (double)n / best, lat[100], lat[180]);
    if (!cpu) { /* the same texts on the cpu table */
        size_t m = n < 512 ? n : 512;
        lp_encoder *c = NULL;
        float *ref = malloc(m * D * sizeof *ref);
        if (!ref || bench_encoder_open(argv[1], "cpu", &c, &err) ||
            lp_encoder_embed(e, (const char *const *)texts, m, batch, out, NULL, &err) ||
            lp_encoder_embed(c, (const char *const *)texts, m, batch, ref, NULL, &err)) {
            fprintf(stderr, "parity: %s\n", ref ? err.msg : "out of memory");
            return 1;
        }
        double min_cos = 1, max_abs = 0;
        for (size_t i = 0; i < m; i++) {
            double dot = 0, na = 0, nb = 0;
            for (size_t d = 0; d < D; d++) {
                double a = out[i * D + d], b = ref[i * D + d];
                dot += a * b, na += a * a, nb += b * b;
                if (fabs(a - b) > max_abs)
                    max_abs = fabs(a - b);
            }
            double cs = dot / sqrt(na * nb + 1e-300);
            if (cs < min_cos)
                min_cos = cs;
        }
        printf("RESULT parity-%s texts=%zu min_cosine=%.8f max_abs_diff=%.3g\n", backend, m,
               min_cos, max_abs);
        free(ref);
        lp_encoder_free(c);
    }
    free(out);
    free(texts);
    free(data);
    lp_encoder_free(e);
    return 0;
}
