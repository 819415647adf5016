/*
 * dx_ensemble_ece.c - does averaging several image models' calibrated probabilities (a deep
 * ensemble, Lakshminarayanan et al. 2017) lower the test ECE that no temperature brings under
 * 0.03 on PneumoniaMNIST (bench/RESULTS.md)? Scores each model on a labelled IDX split as
 * `lepton-diagnosis eval` does (dx_image_predict: test-time views, temperature, the model's
 * prevalence), then the mean of their probabilities; accuracy and ECE (lp_metrics_ece, 15
 * bins, as the eval) for each.
 *
 * Usage: dx_ensemble_ece IMAGES.idx LABELS.idx MODEL.lpm [MODEL.lpm ...]
 * Output: one JSON object a line (each model, then "ensemble").
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "dx.h"
#include "lepton/image.h"
#include "lepton/metrics.h"

/* Accuracy of the top class of p (n, k) and its ECE (lp_metrics_ece, 15 bins, as the eval). */
static double score(const double *p, const int32_t *y, size_t n, size_t k, double *acc)
{
    size_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        const double *r = p + i * k;
        size_t top = 0;
        for (size_t j = 1; j < k; j++)
            top = r[j] > r[top] ? j : top;
        ok += top == (size_t)y[i];
    }
    *acc = (double)ok / (double)n;
    double e = NAN;
    lp_err err;
    if (lp_metrics_ece(y, p, n, k, LP_METRICS_ECE_BINS_DEFAULT, &e, &err))
        fprintf(stderr, "dx_ensemble_ece: %s\n", err.msg);
    return e;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: dx_ensemble_ece IMAGES.idx LABELS.idx MODEL.lpm [MODEL.lpm ...]\n");
        return 2;
    }
    lp_process_tune(argv);
    lp_err err = {0};
    lp_idx x;
    if (lp_idx_read(argv[1], argv[2], &x, &err)) {
        fprintf(stderr, "dx_ensemble_ece: %s\n", err.msg);
        return 1;
    }
    size_t n = x.n, d = x.h * x.w * x.c, k = 0;
    float *X = malloc(n * d * sizeof(float));
    int32_t *y = malloc(n * sizeof(int32_t));
    dx_answer *a = calloc(n, sizeof *a);
    double *avg = NULL, *one = NULL;
    if (!X || !y || !a)
        return 1;
    for (size_t i = 0; i < n * d; i++)
        X[i] = (float)x.px[i] / 255.0f;
    for (size_t i = 0; i < n; i++)
        y[i] = x.labels[i];
    int nm = argc - 3;
    for (int m = 0; m < nm; m++) {
        dx_image_model *md;
        if (dx_image_model_load(argv[3 + m], &md, &err) || dx_image_predict(md, X, n, a, &err)) {
            fprintf(stderr, "dx_ensemble_ece: %s: %s\n", argv[3 + m], err.msg);
            return 1;
        }
        if (!k) {
            k = a[0].k;
            avg = calloc(n * k, sizeof(double));
            one = calloc(n * k, sizeof(double));
            if (!avg || !one)
                return 1;
        } else if (a[0].k != k) {
            fprintf(stderr, "dx_ensemble_ece: %s has %zu classes, not %zu\n", argv[3 + m],
                    a[0].k, k);
            return 1;
        }
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < k; j++) {
                one[i * k + j] = a[i].probs[j];
                avg[i * k + j] += a[i].probs[j] / nm;
            }
        double acc, e = score(one, y, n, k, &acc);
        printf("{\"model\":\"%s\",\"accuracy\":%.4f,\"ece\":%.4f}\n", argv[3 + m], acc, e);
        dx_image_model_free(md);
    }
    double acc, e = score(avg, y, n, k, &acc);
    printf("{\"model\":\"ensemble\",\"members\":%d,\"accuracy\":%.4f,\"ece\":%.4f}\n", nm, acc, e);
    free(X), free(y), free(a), free(avg), free(one);
    lp_idx_clear(&x);
    return 0;
}
