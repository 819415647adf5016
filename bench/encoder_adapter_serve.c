/*
 * encoder_adapter_serve.c - what serving a fine-tuned encoder costs, the two ways side by side
 * in one run: lp_encoder_adapter_predict (the training forward, LoRA unmerged) against the
 * adapter merged into an encoder once (lp_encoder_adapter_merge) and embedded on the inference
 * path (lp_encoder_embed), which is what the apps serve with. For each method (lora, full):
 * one adapter fine-tuned for 2 steps on the first texts (its values do not matter for speed),
 * then one sentence at a time (the services' per-request case) and batches of 64; the largest
 * embedding difference between the two paths is printed too.
 *
 * The encoder is loaded as lp_encoder_load does (LEPTON_ENCODER_PRECISION=bf16 for the apps'
 * precision on a CPU with AMX; float32 otherwise).
 * Usage: encoder_adapter_serve ENCODER.lpm TEXTS.tsv [N_TEXTS=256] [REPEATS=50]
 *        (TEXTS.tsv: a header line, then rows whose last tab-separated field is the text, e.g.
 *        clinc150/train.tsv)
 * Output: one JSON object a line per method and path.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lepton/lepton.h"

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int fail(const lp_err *err)
{
    fprintf(stderr, "encoder_adapter_serve: %s\n", err->msg);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: encoder_adapter_serve ENCODER.lpm TEXTS.tsv [N_TEXTS] [REPEATS]\n");
        return 2;
    }
    lp_process_tune(argv); /* as the apps start (OpenMP / OpenBLAS settings, base.h) */
    size_t n = argc > 3 ? (size_t)atol(argv[3]) : 256, reps = argc > 4 ? (size_t)atol(argv[4]) : 50;
    lp_err err = {0};
    lp_encoder *e;
    if (lp_encoder_load(argv[1], "cpu", &e, &err))
        return fail(&err);
    FILE *fp = fopen(argv[2], "r");
    if (!fp) {
        fprintf(stderr, "encoder_adapter_serve: cannot open %s\n", argv[2]);
        return 1;
    }
    const char **tx = calloc(n, sizeof *tx);
    char line[4096];
    size_t got = 0;
    for (bool header = true; tx && got < n && fgets(line, sizeof line, fp); header = false) {
        line[strcspn(line, "\r\n")] = 0;
        const char *t = strrchr(line, '\t');
        if (!header)
            tx[got++] = strdup(t ? t + 1 : line);
    }
    fclose(fp);
    if (got == 0) {
        fprintf(stderr, "encoder_adapter_serve: %s: no texts\n", argv[2]);
        return 1;
    }
    n = got;
    int32_t *y = calloc(n, sizeof *y);
    size_t D = lp_encoder_dim(e);
    float *za = malloc(n * D * sizeof(float)), *zm = malloc(n * D * sizeof(float));
    float *p = malloc(n * 2 * sizeof(float));
    if (!tx || !y || !za || !zm || !p)
        return 1;
    for (size_t i = 0; i < n; i++)
        y[i] = (int32_t)(i % 2);
    const lp_encoder_ft_method ms[2] = {LP_ENCODER_FT_METHOD_LORA, LP_ENCODER_FT_METHOD_FULL};
    for (int k = 0; k < 2; k++) {
        lp_encoder_ft_opts o = lp_encoder_ft_opts_for(ms[k]);
        o.max_steps = 2;
        o.batch_size = 8;
        lp_encoder_adapter *a;
        lp_encoder *m;
        if (lp_encoder_finetune(e, tx, y, n < 16 ? n : 16, 2, &o, &a, NULL, &err))
            return fail(&err);
        double t0 = lp_time_wall();
        if (lp_encoder_adapter_merge(a, e, &m, &err))
            return fail(&err);
        double merge_s = lp_time_wall() - t0;
        /* batches of 64 over the n texts */
        t0 = lp_time_wall();
        if (lp_encoder_adapter_predict(a, e, tx, n, p, za, &err))
            return fail(&err);
        double ta = lp_time_wall() - t0;
        t0 = lp_time_wall();
        if (lp_encoder_embed(m, tx, n, 64, zm, NULL, &err))
            return fail(&err);
        double tm = lp_time_wall() - t0;
        double worst = 1; /* smallest cosine between the two paths' embeddings */
        for (size_t i = 0; i < n; i++) {
            double dot = 0;
            for (size_t j = 0; j < D; j++)
                dot += (double)za[i * D + j] * zm[i * D + j];
            worst = fmin(worst, dot);
        }
        /* one sentence at a time */
        double *la = malloc(reps * sizeof(double)), *lm = malloc(reps * sizeof(double));
        for (size_t r = 0; r < reps; r++) {
            const char *one = tx[r % n];
            t0 = lp_time_wall();
            if (lp_encoder_adapter_predict(a, e, &one, 1, p, za, &err))
                return fail(&err);
            la[r] = (lp_time_wall() - t0) * 1e3;
            t0 = lp_time_wall();
            if (lp_encoder_embed(m, &one, 1, 1, zm, NULL, &err))
                return fail(&err);
            lm[r] = (lp_time_wall() - t0) * 1e3;
        }
        qsort(la, reps, sizeof *la, cmp_d);
        qsort(lm, reps, sizeof *lm, cmp_d);
        const char *name = lp_encoder_ft_method_name(ms[k]);
        printf("{\"method\":\"%s\",\"path\":\"adapter_predict\",\"batch64_sent_per_s\":%.1f,"
               "\"one_p50_ms\":%.2f,\"one_p90_ms\":%.2f}\n",
               name, n / ta, la[reps / 2], la[reps * 9 / 10]);
        printf("{\"method\":\"%s\",\"path\":\"merged\",\"batch64_sent_per_s\":%.1f,"
               "\"one_p50_ms\":%.2f,\"one_p90_ms\":%.2f,\"merge_s\":%.2f,"
               "\"min_cosine_to_adapter_predict\":%.6f,\"precision\":\"%s\"}\n",
               name, n / tm, lm[reps / 2], lm[reps * 9 / 10], merge_s, worst,
               lp_encoder_precision_of(m) == LP_ENCODER_BF16 ? "bf16" : "fp32");
        fflush(stdout);
        free(la);
        free(lm);
        lp_encoder_free(m);
        lp_encoder_adapter_free(a);
    }
    for (size_t i = 0; i < n; i++)
        free((char *)tx[i]);
    free(tx), free(y), free(za), free(zm), free(p);
    lp_encoder_free(e);
    return 0;
}
