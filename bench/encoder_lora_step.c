/*
 * encoder_lora_step.c - LoRA fine-tuning step time of the encoder (lp_encoder_finetune, cpu
 * table) on CLINC150 utterances: mini-batches of BATCH texts drawn by the fine-tuning shuffle,
 * LoRA rank 8 (alpha 16) on q, k, v, attention output, ff1, ff2 of every layer plus a linear
 * head over the 150 intents, AdamW. The time per step is (t(S2) - t(S1)) / (S2 - S1) of two
 * runs stopped after S1 and S2 steps, which cancels the set-up (the weight fingerprint, buffer
 * allocation). A step includes tokenizing its batch. Prints a RESULT line; bench/RESULTS.md
 * carries the numbers, bench/encoder_lora_step.sh runs it beside bench/encoder_lora_torch.py.
 *
 * usage: encoder_lora_step ENCODER.lpm|FOLDER TRAIN.tsv [BATCH [S1 [S2 [BACKEND]]]]
 *   (defaults 32, 2, 12, cpu; a folder as in bench_encoder.h; on any table but cpu the RESULT
 *   line is labelled lepton-BACKEND: tests/gpu/run-device.sh runs it on the GPU)
 */
#include "bench_encoder.h"
#include "lepton/encoder.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_tsv(const char *path, char ***texts, int32_t **labels, size_t *n, size_t *nc)
{
    uint8_t *data;
    size_t len;
    lp_err err;
    if (lp_file_read(path, &data, &len, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char *s = (char *)data, **names = NULL;
    size_t cap = 0;
    *n = *nc = 0;
    *texts = NULL;
    *labels = NULL;
    char *save = NULL;
    bool header = true;
    for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (header) {
            header = false;
            continue;
        }
        char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        if (!t2)
            continue;
        *t1 = '\0';
        size_t c = 0;
        while (c < *nc && strcmp(names[c], line) != 0)
            c++;
        if (c == *nc) {
            names = realloc(names, (*nc + 1) * sizeof *names);
            names[(*nc)++] = strdup(line);
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 1024;
            *texts = realloc(*texts, cap * sizeof **texts);
            *labels = realloc(*labels, cap * sizeof **labels);
        }
        (*texts)[*n] = strdup(t2 + 1);
        (*labels)[(*n)++] = (int32_t)c;
    }
    for (size_t c = 0; c < *nc; c++)
        free(names[c]);
    free(names);
    free(data);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s ENCODER.lpm|FOLDER TRAIN.tsv [BATCH [S1 [S2 [BACKEND]]]]\n",
                argv[0]);
        return 2;
    }
    size_t batch = argc > 3 ? strtoul(argv[3], NULL, 10) : 32;
    size_t s1 = argc > 4 ? strtoul(argv[4], NULL, 10) : 2;
    size_t s2 = argc > 5 ? strtoul(argv[5], NULL, 10) : 12;
    if (batch < 1 || s2 <= s1) {
        fprintf(stderr, "need BATCH >= 1 and S2 > S1\n");
        return 2;
    }
    const char *backend = argc > 6 ? argv[6] : "cpu";
    bool cpu = strcmp(backend, "cpu") == 0;
    lp_err err;
    lp_encoder *e;
    if (bench_encoder_open(argv[1], backend, &e, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    char **texts;
    int32_t *labels;
    size_t n, nc;
    if (read_tsv(argv[2], &texts, &labels, &n, &nc))
        return 1;
    lp_encoder_ft_opts o = lp_encoder_ft_opts_default();
    o.method = LP_ENCODER_FT_METHOD_LORA;
    o.rank = 8;
    o.alpha = 16;
    o.batch_size = batch;
    o.epochs = 1;
    double t[2];
    const size_t steps[2] = {s1, s2};
    size_t adapter = 0;
    for (int k = 0; k < 2; k++) {
        o.max_steps = steps[k];
        lp_encoder_adapter *a = NULL;
        double loss;
        uint64_t t0 = lp_time_ns();
        if (lp_encoder_finetune(e, (const char *const *)texts, labels, n, nc, &o, &a, &loss,
                                &err)) {
            fprintf(stderr, "%s\n", err.msg);
            return 1;
        }
        t[k] = lp_time_since(t0);
        adapter = lp_encoder_adapter_n_params(a);
        lp_encoder_adapter_free(a);
    }
    double step_ms = (t[1] - t[0]) / (double)(s2 - s1) * 1e3;
    printf("RESULT lepton%s%s lora_step_ms=%.1f batch=%zu rank=8 classes=%zu adapter_floats=%zu "
           "encoder_floats=%zu adapter_pct=%.3f base_products=%s\n",
           cpu ? "" : "-", cpu ? "" : backend, step_ms, batch, nc, adapter,
           lp_encoder_n_params(lp_encoder_config_of(e)),
           100.0 * (double)adapter / (double)lp_encoder_n_params(lp_encoder_config_of(e)),
           lp_encoder_precision_of(e) == LP_ENCODER_BF16 ? "bf16" : "fp32");
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(labels);
    lp_encoder_free(e);
    return 0;
}
