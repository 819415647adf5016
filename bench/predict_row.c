/*
 * predict_row.c - single-row prediction in process: lp_model_predict on a one-row frame (the
 * frame path: input selection, the cleaner's copy, the pipeline's blocks) against the prepared
 * predictor (lp_predictor_run over flat arrays), both cycling over the first rows of a CSV. It
 * checks the two agree bit for bit on those rows and prints ns per row for each, as the thread's
 * CPU time (what a busy machine disturbs least) and as wall-clock time.
 * usage: predict_row MODEL.lpm DATA.csv [N (200000)] [ROWS (64)] [FRAME_DIV (10)]
 *   the row path runs N times, the (slower) frame path N / FRAME_DIV times
 */
#include "lepton/lepton.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t cpu_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.lpm DATA.csv [N] [ROWS] [FRAME_DIV]\n", argv[0]);
        return 2;
    }
    long n_iter = argc > 3 ? atol(argv[3]) : 200000;
    long n_rows = argc > 4 ? atol(argv[4]) : 64;
    long frame_div = argc > 5 ? atol(argv[5]) : 10;
    if (n_iter < 1 || n_rows < 1 || frame_div < 1) {
        fprintf(stderr, "%s: N, ROWS and FRAME_DIV must be positive\n", argv[0]);
        return 2;
    }
    lp_err err;
    lp_err_clear(&err);
    lp_model *m = NULL;
    lp_frame *data = NULL, *in = NULL;
    if (lp_model_load(argv[1], &m, &err) || lp_frame_read_csv(argv[2], NULL, &data, &err)) {
        fprintf(stderr, "predict_row: %s\n", lp_err_text(&err));
        return 1;
    }
    size_t k_in = lp_model_n_inputs(m);
    const char **names = malloc(k_in * sizeof *names);
    for (size_t j = 0; j < k_in; j++)
        names[j] = lp_model_input_name(m, j);
    if (lp_frame_select(data, names, k_in, &in, &err)) {
        fprintf(stderr, "predict_row: %s\n", lp_err_text(&err));
        return 1;
    }
    for (size_t j = 0; j < k_in; j++) {
        lp_column *c = lp_frame_col(in, j);
        if (c->kind != lp_model_input_kind(m, j) &&
            lp_column_convert(c, lp_model_input_kind(m, j), &err)) {
            fprintf(stderr, "predict_row: %s\n", lp_err_text(&err));
            return 1;
        }
    }
    size_t nr = lp_frame_nrows(in) < (size_t)n_rows ? lp_frame_nrows(in) : (size_t)n_rows;
    /* one-row frames and row views of the first nr rows */
    lp_frame **one = calloc(nr, sizeof *one);
    double *num = calloc(nr * k_in, sizeof *num);
    const char **str = calloc(nr * k_in, sizeof *str);
    lp_row_view *rv = calloc(nr, sizeof *rv);
    for (size_t i = 0; i < nr; i++) {
        if (lp_frame_take_rows(data, &i, 1, &one[i], &err)) {
            fprintf(stderr, "predict_row: %s\n", lp_err_text(&err));
            return 1;
        }
        for (size_t j = 0; j < k_in; j++) {
            const lp_column *c = lp_frame_col(in, j);
            num[i * k_in + j] = c->type == LP_COL_TYPE_NUMERIC ? c->num[i] : NAN;
            str[i * k_in + j] = c->missing[i]                        ? NULL
                                : c->type == LP_COL_TYPE_CATEGORICAL ? c->dict[c->codes[i]]
                                : c->type == LP_COL_TYPE_TEXT        ? c->text[i]
                                                                     : NULL;
        }
        rv[i] = (lp_row_view){num + i * k_in, str + i * k_in};
    }
    lp_predictor *pr = NULL;
    lp_predict_scratch *sc = lp_predict_scratch_new();
    if (!sc || lp_predictor_new(m, &pr, &err)) {
        fprintf(stderr, "predict_row: %s\n", lp_err_text(&err));
        return 1;
    }
    size_t k = lp_predictor_n_outputs(pr);
    double out[256];
    int32_t cls[1];
    if (k > 256) {
        fprintf(stderr, "predict_row: %zu outputs, at most 256 here\n", k);
        return 1;
    }
    /* agreement first */
    for (size_t i = 0; i < nr; i++) {
        lp_predictions p = {0};
        if (lp_model_predict(m, one[i], &p, &err) ||
            lp_predictor_run(pr, &rv[i], 1, sc, out, cls, &err)) {
            fprintf(stderr, "predict_row: %s\n", lp_err_text(&err));
            return 1;
        }
        if (memcmp(out, p.out, k * sizeof *out) != 0) {
            fprintf(stderr, "predict_row: row %zu differs: %.17g vs %.17g\n", i, out[0], p.out[0]);
            return 1;
        }
        lp_predictions_clear(&p);
    }
    double sink = 0;
    long n_frame = n_iter / frame_div ? n_iter / frame_div : 1;
    uint64_t t0 = lp_time_ns(), c0 = cpu_ns();
    for (long it = 0; it < n_frame; it++) {
        lp_predictions p = {0};
        lp_model_predict(m, one[(size_t)it % nr], &p, NULL);
        sink += p.out[0];
        lp_predictions_clear(&p);
    }
    double frame_ns = (double)(lp_time_ns() - t0) / (double)n_frame;
    double frame_cpu = (double)(cpu_ns() - c0) / (double)n_frame;
    t0 = lp_time_ns();
    c0 = cpu_ns();
    for (long it = 0; it < n_iter; it++) {
        lp_predictor_run(pr, &rv[(size_t)it % nr], 1, sc, out, cls, NULL);
        sink += out[0];
    }
    double row_ns = (double)(lp_time_ns() - t0) / (double)n_iter;
    double row_cpu = (double)(cpu_ns() - c0) / (double)n_iter;
    printf("model: %s, %zu inputs, path: %s\n", lp_model_kind_name(lp_model_get_kind(m)), k_in,
           lp_predictor_path(pr));
    printf("lp_model_predict (1-row frame): %8.0f ns/row CPU  %8.0f ns/row wall\n", frame_cpu,
           frame_ns);
    printf("lp_predictor_run (row view):    %8.0f ns/row CPU  %8.0f ns/row wall  (%.1fx less CPU)"
           "   [checksum %.6g]\n",
           row_cpu, row_ns, frame_cpu / row_cpu, sink);
    lp_predictor_free(pr);
    lp_predict_scratch_free(sc);
    for (size_t i = 0; i < nr; i++)
        lp_frame_free(one[i]);
    free(one);
    free(num);
    free(str);
    free(rv);
    free(names);
    lp_frame_free(in);
    lp_frame_free(data);
    lp_model_free(m);
    return 0;
}
