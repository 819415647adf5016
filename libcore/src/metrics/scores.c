/*
 * scores.c - metrics of binary scores against 0/1 labels: AUROC (binary and macro one-vs-rest),
 * average precision, recall at a false-positive rate and precision in the top fraction.
 * Each sorts (score, label) pairs once by decreasing score and walks groups of tied scores, so
 * ties are exact (a tied group is one step of the ROC / PR curve) and the cost is O(n log n)
 * time, O(n) scratch. Scores may be +-Inf; NaN is rejected.
 */
#include "metrics/metrics_util.h"

#include <math.h>
#include <stdlib.h>

/* Check inputs, sort, count positives. *s is the sorted array (caller frees). */
static lp_status prepare(const char *fn, const int32_t *y, const double *scores, size_t n,
                         lp_scored **s, size_t *n_pos, lp_err *err)
{
    *s = NULL;
    lp_status st = lp_metrics_check_n_(fn, n, y, scores, err);
    if (st || (st = lp_metrics_check_binary_(fn, y, n, n_pos, err)) ||
        (st = lp_metrics_check_nan_(fn, "scores", scores, n, err)))
        return st;
    *s = lp_metrics_sorted_(y, 1, scores, 1, n);
    if (!*s)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory sorting %zu scores", fn, n);
    return LP_OK;
}

/* Exact AUROC of sorted pairs with P positives, N negatives (both > 0): the trapezoid over
 * each tied group adds fp_g * (tp_before + tp_g / 2), i.e. Mann-Whitney U with ties as 1/2. */
static double auroc_sorted(const lp_scored *s, size_t n, size_t P, size_t N)
{
    double area = 0, tp = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double tg = 0, fg = 0;
        while (j < n && s[j].score == s[i].score) {
            tg += s[j].y;
            fg += 1 - s[j].y;
            j++;
        }
        area += fg * (tp + 0.5 * tg);
        tp += tg;
        i = j;
    }
    return area / ((double)P * (double)N);
}

lp_status lp_metrics_auroc(const int32_t *y, const double *scores, size_t n, double *out,
                           lp_err *err)
{
    lp_scored *s;
    size_t P;
    lp_status st = prepare("auroc", y, scores, n, &s, &P, err);
    if (st)
        return st;
    if (P == 0 || P == n) {
        free(s);
        return lp_err_set(err, LP_EINVAL,
                          "auroc: only one class present in y (%zu positives of %zu); AUROC is "
                          "undefined",
                          P, n);
    }
    *out = auroc_sorted(s, n, P, n - P);
    free(s);
    return LP_OK;
}

/* Macro one-vs-rest AUROC; present_only: over the classes with both positives and negatives
 * (their count in *used), else every class must have both. */
static lp_status auroc_ovr(const char *what, const int32_t *y, const double *scores, size_t n,
                           size_t k, bool present_only, double *out, size_t *used, lp_err *err)
{
    lp_status st = lp_metrics_check_n_(what, n, y, scores, err);
    if (st)
        return st;
    if (k < 2 || k > (size_t)INT32_MAX || n > SIZE_MAX / k)
        return lp_err_set(err, LP_EINVAL, "%s: k = %zu classes, expected >= 2", what, k);
    if ((st = lp_metrics_check_labels_(what, "y", y, n, k, err)) ||
        (st = lp_metrics_check_nan_(what, "scores", scores, n * k, err)))
        return st;
    double sum = 0;
    size_t m = 0;
    for (size_t c = 0; c < k; c++) {
        size_t P = 0;
        for (size_t i = 0; i < n; i++)
            P += y[i] == (int32_t)c;
        if ((P == 0 || P == n) && present_only)
            continue;
        if (P == 0 || P == n)
            return lp_err_set(err, LP_EINVAL,
                              "%s: class %zu has %zu of %zu samples; one-vs-rest AUROC "
                              "needs both the class and the rest present",
                              what, c, P, n);
        lp_scored *s = lp_metrics_sorted_(y, (int32_t)c, scores + c, k, n);
        if (!s)
            return lp_err_set(err, LP_ENOMEM, "%s: out of memory sorting %zu scores", what, n);
        sum += auroc_sorted(s, n, P, n - P);
        m++;
        free(s);
    }
    *out = m ? sum / (double)m : NAN;
    if (used)
        *used = m;
    return LP_OK;
}

lp_status lp_metrics_auroc_ovr(const int32_t *y, const double *scores, size_t n, size_t k,
                               double *out, lp_err *err)
{
    return auroc_ovr("auroc_ovr", y, scores, n, k, false, out, NULL, err);
}

lp_status lp_metrics_auroc_ovr_present(const int32_t *y, const double *scores, size_t n,
                                       size_t k, double *out, size_t *used, lp_err *err)
{
    return auroc_ovr("auroc_ovr_present", y, scores, n, k, true, out, used, err);
}

lp_status lp_metrics_average_precision(const int32_t *y, const double *scores, size_t n,
                                       double *out, lp_err *err)
{
    lp_scored *s;
    size_t P;
    lp_status st = prepare("average_precision", y, scores, n, &s, &P, err);
    if (st)
        return st;
    if (P == 0) {
        free(s);
        return lp_err_set(err, LP_EINVAL,
                          "average_precision: no positive label among %zu samples; recall is "
                          "undefined",
                          n);
    }
    double ap = 0, tp = 0, seen = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double tg = 0;
        while (j < n && s[j].score == s[i].score) {
            tg += s[j].y;
            j++;
        }
        tp += tg;
        seen += (double)(j - i);
        /* (R_t - R_{t-1}) P_t with R_t - R_{t-1} = tg / P */
        ap += (tg / (double)P) * (tp / seen);
        i = j;
    }
    free(s);
    *out = ap;
    return LP_OK;
}

lp_status lp_metrics_recall_at_fpr(const int32_t *y, const double *scores, size_t n,
                                   double max_fpr, double *recall, double *threshold,
                                   lp_err *err)
{
    if (!(max_fpr >= 0 && max_fpr <= 1))
        return lp_err_set(err, LP_EINVAL, "recall_at_fpr: max_fpr = %g, expected 0..1", max_fpr);
    lp_scored *s;
    size_t P;
    lp_status st = prepare("recall_at_fpr", y, scores, n, &s, &P, err);
    if (st)
        return st;
    if (P == 0 || P == n) {
        free(s);
        return lp_err_set(err, LP_EINVAL,
                          "recall_at_fpr: only one class present in y (%zu positives of %zu)", P,
                          n);
    }
    double N = (double)(n - P), tp = 0, fp = 0, best = 0, thr = INFINITY;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && s[j].score == s[i].score) {
            tp += s[j].y;
            fp += 1 - s[j].y;
            j++;
        }
        if (fp / N > max_fpr)
            break; /* FPR only grows as the threshold falls */
        best = tp / (double)P;
        thr = s[i].score;
        i = j;
    }
    free(s);
    if (recall)
        *recall = best;
    if (threshold)
        *threshold = thr;
    return LP_OK;
}

lp_status lp_metrics_precision_at_top(const int32_t *y, const double *scores, size_t n,
                                      double top, double *precision, size_t *n_alerts,
                                      lp_err *err)
{
    if (!(top > 0 && top <= 1))
        return lp_err_set(err, LP_EINVAL, "precision_at_top: top = %g, expected (0, 1]", top);
    lp_scored *s;
    size_t P;
    lp_status st = prepare("precision_at_top", y, scores, n, &s, &P, err);
    if (st)
        return st;
    /* the 1e-9 slack keeps e.g. 0.07 * 100 = 7.000000000000001 from becoming 8 */
    double mf = ceil(top * (double)n - 1e-9);
    size_t m = mf < 1 ? 1 : (mf >= (double)n ? n : (size_t)mf);
    double t = s[m - 1].score, tp = 0;
    size_t j = 0;
    while (j < n && s[j].score >= t)
        tp += s[j++].y;
    free(s);
    if (precision)
        *precision = tp / (double)j;
    if (n_alerts)
        *n_alerts = j;
    return LP_OK;
}
