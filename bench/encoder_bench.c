/*
 * encoder_bench.c - sentence-embedding throughput and single-sentence latency of the C
 * MiniLM encoder (lepton/encoder.h) on the cpu table.
 *
 * usage: encoder_bench ENCODER.lpm TEXTS.tsv [N [BATCH]]  (text = last TAB field of each line
 * after the header; defaults N 2048, BATCH 64). Throughput is end to end (tokenization
 * included) over the first N texts, best of 3 runs after one warm-up; latency is the median
 * of 200 calls embedding one text each (texts cycled), on the calling thread's path (batch 1).
 * Prints RESULT lines bench/encoder_bench.sh reads.
 */
#include "lepton/lepton.h"

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
        fprintf(stderr, "usage: %s ENCODER.lpm TEXTS.tsv [N [BATCH]]\n", argv[0]);
        return 2;
    }
    size_t want = argc > 3 ? (size_t)atol(argv[3]) : 2048;
    size_t batch = argc > 4 ? (size_t)atol(argv[4]) : 64;
    lp_err err;
    lp_encoder *e = NULL;
    if (lp_encoder_load(argv[1], "cpu", &e, &err)) {
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
    printf("RESULT lepton sentences_per_s=%.1f latency_ms_p50=%.3f latency_ms_p90=%.3f\n",
           (double)n / best, lat[100], lat[180]);
    free(out);
    free(texts);
    free(data);
    lp_encoder_free(e);
    return 0;
}
