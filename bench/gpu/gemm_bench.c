/*
 * gemm_bench.c - sgemm throughput of a kernel table (C = A B, square n x n x n, row-major),
 * the Lepton side of the "gemm" lines of bench/gpu/mlp_torch.py: the ceiling the MLP steps
 * can approach. "cuda" is fp32 (CUBLAS_COMPUTE_32F); "cuda-tf32" is the opt-in TF32 table.
 *
 * Method: 3 warm-up products, then REPEATS timed groups of 10 products each ended by
 * be->sync (a host clock after a sync measures what CUDA events would); median TFLOP/s
 * (2 n^3 flops per product). Inputs are seeded uniform [-1, 1) (never zeros).
 *
 * usage: gemm_bench BACKEND N [REPEATS]      e.g. gemm_bench cuda-tf32 4096
 * Prints one line: RESULT lepton gemm BACKEND N tflops=.. min=.. max=..
 */
#include "lepton/lepton.h"

#include "backend/backend_impl.h"

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
        fprintf(stderr, "usage: gemm_bench BACKEND N [REPEATS]\n");
        return 2;
    }
    const char *name = argv[1];
    size_t n = (size_t)atol(argv[2]);
    int repeats = argc > 3 ? atoi(argv[3]) : 10;
    if (n == 0 || repeats < 1)
        return 2;
    const lp_backend *be = NULL;
    lp_err err;
    lp_status st;
    if (strcmp(name, "cuda-tf32") == 0) {
#ifdef LEPTON_HAVE_CUDA
        st = lp_backend_cuda_tf32_get(&be, &err);
#else
        st = lp_err_set(&err, LP_EUNSUPPORTED, "this build has no CUDA backend");
#endif
    } else {
        st = lp_backend_get(name, &be, &err);
    }
    if (st) {
        fprintf(stderr, "gemm_bench: %s\n", lp_err_text(&err));
        return 1;
    }
    float *h = malloc(n * n * sizeof *h);
    double *tf = malloc((size_t)repeats * sizeof *tf);
    if (!h || !tf)
        return 1;
    lp_rng rng;
    lp_rng_seed(&rng, 3);
    for (size_t i = 0; i < n * n; i++)
        h[i] = (float)(2 * lp_rng_uniform(&rng) - 1);
    void *a, *b, *c;
    if (be->alloc(be, n * n * 4, &a, &err) || be->alloc(be, n * n * 4, &b, &err) ||
        be->alloc(be, n * n * 4, &c, &err) || be->copy_h2d(be, a, h, n * n * 4, &err) ||
        be->copy_h2d(be, b, h, n * n * 4, &err)) {
        fprintf(stderr, "gemm_bench: %s\n", lp_err_text(&err));
        return 1;
    }
    for (int r = -3; r < repeats; r++) {
        int reps = r < 0 ? 1 : 10;
        uint64_t t0 = lp_time_ns();
        for (int k = 0; k < reps; k++)
            if (be->sgemm(be, false, false, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n, &err)) {
                fprintf(stderr, "gemm_bench: %s\n", lp_err_text(&err));
                return 1;
            }
        if (be->sync(be, &err)) {
            fprintf(stderr, "gemm_bench: %s\n", lp_err_text(&err));
            return 1;
        }
        if (r >= 0)
            tf[r] = reps * 2.0 * (double)n * n * n / ((double)(lp_time_ns() - t0) * 1e-9) / 1e12;
    }
    qsort(tf, (size_t)repeats, sizeof *tf, cmp_double);
    double med = repeats % 2 ? tf[repeats / 2] : 0.5 * (tf[repeats / 2 - 1] + tf[repeats / 2]);
    printf("RESULT lepton gemm %s %zu tflops=%.2f min=%.2f max=%.2f\n", name, n, med, tf[0],
           tf[repeats - 1]);
    be->free(be, a, NULL);
    be->free(be, b, NULL);
    be->free(be, c, NULL);
    free(h);
    free(tf);
    return 0;
}
