/*
 * classify.c - metrics of hard class predictions: accuracy, confusion matrix, per-class and
 * averaged precision / recall / F1 with scikit-learn's zero_division=0 convention.
 * Everything is computed from the (k, k) confusion counts, so precision/recall/F1 cost O(n + k^2)
 * time and O(k^2) scratch.
 */
#include "metrics/metrics_util.h"

#include <stdlib.h>
#include <string.h>

/* Bounds the (k, k) confusion matrix to 32 GiB at most, well inside size_t. */
#define MAX_CLASSES 65536

lp_status lp_metrics_accuracy(const int32_t *y_true, const int32_t *y_pred, size_t n,
                              double *out, lp_err *err)
{
    lp_status st = lp_metrics_check_n_("accuracy", n, y_true, y_pred, err);
    if (st)
        return st;
    size_t ok = 0;
    for (size_t i = 0; i < n; i++)
        ok += y_true[i] == y_pred[i];
    *out = (double)ok / (double)n;
    return LP_OK;
}

static lp_status confusion(const char *fn, const int32_t *y_true, const int32_t *y_pred,
                           size_t n, size_t k, uint64_t *cm, lp_err *err)
{
    lp_status st = lp_metrics_check_n_(fn, n, y_true, y_pred, err);
    if (st)
        return st;
    if (k == 0 || k > MAX_CLASSES)
        return lp_err_set(err, LP_EINVAL, "%s: number of classes k = %zu, expected 1..%d", fn,
                          k, MAX_CLASSES);
    if ((st = lp_metrics_check_labels_(fn, "y_true", y_true, n, k, err)) ||
        (st = lp_metrics_check_labels_(fn, "y_pred", y_pred, n, k, err)))
        return st;
    memset(cm, 0, k * k * sizeof *cm);
    for (size_t i = 0; i < n; i++)
        cm[(size_t)y_true[i] * k + (size_t)y_pred[i]]++;
    return LP_OK;
}

lp_status lp_metrics_confusion(const int32_t *y_true, const int32_t *y_pred, size_t n, size_t k,
                               uint64_t *cm, lp_err *err)
{
    if (!cm)
        return lp_err_set(err, LP_EINVAL, "confusion: NULL output matrix");
    return confusion("confusion", y_true, y_pred, n, k, cm, err);
}

static double ratio0(uint64_t num, uint64_t den) { return den ? (double)num / (double)den : 0.0; }

static double f1_of(double p, double r) { return p + r > 0 ? 2 * p * r / (p + r) : 0.0; }

/* Per-class TP, predicted-positive and actual-positive counts, each (k), from a fresh
 * confusion matrix. *cm_out is the matrix (caller frees). */
static lp_status class_counts(const char *fn, const int32_t *y_true, const int32_t *y_pred,
                              size_t n, size_t k, uint64_t **cm_out, uint64_t **counts,
                              lp_err *err)
{
    *cm_out = NULL;
    *counts = NULL;
    if (k == 0 || k > MAX_CLASSES)
        return lp_err_set(err, LP_EINVAL, "%s: number of classes k = %zu, expected 1..%d", fn,
                          k, MAX_CLASSES);
    uint64_t *cm = lp_calloc(k * k, sizeof *cm), *c = lp_calloc(3 * k, sizeof *c);
    if (!cm || !c) {
        free(cm);
        free(c);
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory for %zu classes", fn, k);
    }
    lp_status st = confusion(fn, y_true, y_pred, n, k, cm, err);
    if (st) {
        free(cm);
        free(c);
        return st;
    }
    /* c = [tp (k) | predicted (k) | actual (k)] */
    for (size_t t = 0; t < k; t++)
        for (size_t p = 0; p < k; p++) {
            uint64_t v = cm[t * k + p];
            if (t == p)
                c[t] += v;
            c[k + p] += v;
            c[2 * k + t] += v;
        }
    *cm_out = cm;
    *counts = c;
    return LP_OK;
}

lp_status lp_metrics_prf(const int32_t *y_true, const int32_t *y_pred, size_t n, size_t k,
                         double *precision, double *recall, double *f1, uint64_t *support,
                         lp_err *err)
{
    uint64_t *cm, *c;
    lp_status st = class_counts("prf", y_true, y_pred, n, k, &cm, &c, err);
    if (st)
        return st;
    for (size_t j = 0; j < k; j++) {
        double p = ratio0(c[j], c[k + j]), r = ratio0(c[j], c[2 * k + j]);
        if (precision)
            precision[j] = p;
        if (recall)
            recall[j] = r;
        if (f1)
            f1[j] = f1_of(p, r);
        if (support)
            support[j] = c[2 * k + j];
    }
    free(cm);
    free(c);
    return LP_OK;
}

lp_status lp_metrics_prf_average(const int32_t *y_true, const int32_t *y_pred, size_t n, size_t k,
                                 lp_average avg, double *precision, double *recall, double *f1,
                                 lp_err *err)
{
    if (avg != LP_AVERAGE_MACRO && avg != LP_AVERAGE_MICRO)
        return lp_err_set(err, LP_EINVAL, "prf_average: unknown average %d", (int)avg);
    uint64_t *cm, *c;
    lp_status st = class_counts("prf_average", y_true, y_pred, n, k, &cm, &c, err);
    if (st)
        return st;
    double P = 0, R = 0, F = 0;
    if (avg == LP_AVERAGE_MICRO) {
        uint64_t tp = 0, pp = 0, ap = 0;
        for (size_t j = 0; j < k; j++) {
            tp += c[j];
            pp += c[k + j];
            ap += c[2 * k + j];
        }
        P = ratio0(tp, pp);
        R = ratio0(tp, ap);
        F = f1_of(P, R);
    } else {
        /* sklearn without `labels` averages over the labels seen in y_true or y_pred */
        size_t seen = 0;
        for (size_t j = 0; j < k; j++) {
            if (c[k + j] == 0 && c[2 * k + j] == 0)
                continue;
            double p = ratio0(c[j], c[k + j]), r = ratio0(c[j], c[2 * k + j]);
            P += p;
            R += r;
            F += f1_of(p, r);
            seen++;
        }
        P /= (double)seen; /* seen >= 1 because n >= 1 */
        R /= (double)seen;
        F /= (double)seen;
    }
    if (precision)
        *precision = P;
    if (recall)
        *recall = R;
    if (f1)
        *f1 = F;
    free(cm);
    free(c);
    return LP_OK;
}
