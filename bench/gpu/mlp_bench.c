/*
 * mlp_bench.c - training throughput of the nn family on one kernel table, the Lepton side of
 * bench/gpu/mlp_torch.py (same models, optimizer and batch sizes on the same GPU).
 *
 * Models: "mlp" 784-512-512-10 relu, "softmax" 784 -> 10 (softmax regression), "cnn" the
 * conv32-conv64-fc128 net on 1x28x28 (arch "conv32,pool,conv64,pool,fc128": 3x3 convs with
 * padding 1 and relu, 2x2 max pools, dense 3136 -> 128 relu -> 10); AdamW lr 1e-3, no weight
 * decay, softmax cross-entropy. Inputs are seeded uniform [0, 1) pixels and random
 * labels (throughput does not depend on the data); 8 distinct batches are cycled so repeated
 * steps do not reread one cached batch. Every lp_nn_train_step copies its batch host -> device
 * and brings the mean loss back to the host, so each step ends in a device sync: a host clock
 * around a group of steps measures what CUDA events around them would.
 *
 * Method: 10 warm-up steps (module load, cuBLAS handle and heuristics), then REPEATS timed
 * groups of STEPS steps; prints the median samples/s and ms/step and the spread (min, max).
 *
 * usage: mlp_bench BACKEND MODEL BATCH [STEPS [REPEATS]]   e.g. mlp_bench cuda mlp 256
 * Prints one line: RESULT lepton BACKEND MODEL BATCH samples_per_s=.. ms_per_step=.. min=.. max=..
 */
#include "lepton/lepton.h"
#include "model/nn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define D 784
#define C 10
#define NBATCH 8
#define WARMUP 10

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr,
                "usage: mlp_bench BACKEND MODEL(mlp|softmax|cnn) BATCH [STEPS [REPEATS]]\n");
        return 2;
    }
    const char *backend = argv[1], *model = argv[2];
    size_t batch = (size_t)atol(argv[3]);
    int steps = argc > 4 ? atoi(argv[4]) : 20, repeats = argc > 5 ? atoi(argv[5]) : 15;
    bool mlp = strcmp(model, "mlp") == 0, cnn = strcmp(model, "cnn") == 0;
    if ((!mlp && !cnn && strcmp(model, "softmax") != 0) || batch == 0 || steps < 1 ||
        repeats < 1) {
        fprintf(stderr, "mlp_bench: bad arguments\n");
        return 2;
    }
    size_t rows = NBATCH * batch;
    float *X = malloc(rows * D * sizeof *X), *y = malloc(rows * sizeof *y);
    double *rate = malloc((size_t)repeats * sizeof *rate);
    if (!X || !y || !rate)
        return 1;
    lp_rng rng;
    lp_rng_seed(&rng, 7);
    for (size_t i = 0; i < rows * D; i++)
        X[i] = (float)lp_rng_uniform(&rng);
    for (size_t i = 0; i < rows; i++)
        y[i] = (float)lp_rng_below(&rng, C);

    lp_nn_opts o = lp_nn_opts_default();
    o.backend = backend;
    o.hidden = mlp ? "512,512" : "";
    if (cnn) {
        o.arch = "conv32,pool,conv64,pool,fc128";
        o.input_shape = "1x28x28";
    }
    o.n_outputs = C;
    o.lr = 1e-3;
    o.weight_decay = 0;
    o.seed = 1;
    lp_nn *m = NULL;
    lp_err err;
    if (lp_nn_new(D, &o, &m, &err)) {
        fprintf(stderr, "mlp_bench: %s\n", lp_err_text(&err));
        return 1;
    }
    double loss = 0;
    size_t b = 0;
    for (int s = 0; s < WARMUP; s++, b = (b + 1) % NBATCH)
        if (lp_nn_train_step(m, X + b * batch * D, y + b * batch, batch, &loss, &err)) {
            fprintf(stderr, "mlp_bench: %s\n", lp_err_text(&err));
            return 1;
        }
    for (int r = 0; r < repeats; r++) {
        uint64_t t0 = lp_time_ns();
        for (int s = 0; s < steps; s++, b = (b + 1) % NBATCH)
            if (lp_nn_train_step(m, X + b * batch * D, y + b * batch, batch, &loss, &err)) {
                fprintf(stderr, "mlp_bench: %s\n", lp_err_text(&err));
                return 1;
            }
        double sec = (double)(lp_time_ns() - t0) * 1e-9;
        rate[r] = (double)steps * (double)batch / sec;
    }
    qsort(rate, (size_t)repeats, sizeof *rate, cmp_double);
    double med =
        repeats % 2 ? rate[repeats / 2] : 0.5 * (rate[repeats / 2 - 1] + rate[repeats / 2]);
    printf("RESULT lepton %s %s %zu samples_per_s=%.0f ms_per_step=%.4f min=%.0f max=%.0f "
           "loss=%.4f\n",
           backend, model, batch, med, 1e3 * (double)batch / med, rate[0], rate[repeats - 1], loss);
    lp_nn_free(m);
    free(X);
    free(y);
    free(rate);
    return 0;
}
