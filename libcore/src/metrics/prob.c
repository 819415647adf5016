/*
 * prob.c - metrics of predicted probabilities: log-loss (binary and multiclass, with
 * scikit-learn 1.2.1's clipping and renormalisation), Brier score and expected calibration
 * error. All are single passes over the data (O(n k) time); ECE keeps O(n_bins) scratch.
 */
#include "metrics/metrics_util.h"

#include <math.h>
#include <stdlib.h>

/* LP_EINVAL naming the first element of p (m) that is NaN or lies outside [0, hi]. */
static lp_status check_prob(const char *fn, const double *p, size_t m, double hi, lp_err *err)
{
    for (size_t i = 0; i < m; i++)
        if (!(p[i] >= 0 && p[i] <= hi))
            return lp_err_set(err, LP_EINVAL, "%s: probability p[%zu] = %g, expected 0..%g", fn,
                              i, p[i], hi);
    return LP_OK;
}

static double clip(double p)
{
    const double eps = LP_METRICS_LOGLOSS_EPS;
    return p < eps ? eps : (p > 1 - eps ? 1 - eps : p);
}

lp_status lp_metrics_log_loss(const int32_t *y, const double *probs, size_t n, size_t k,
                              double *out, lp_err *err)
{
    lp_status st = lp_metrics_check_n_("log_loss", n, y, probs, err);
    if (st)
        return st;
    if (k == 0 || k > (size_t)INT32_MAX || n > SIZE_MAX / k)
        return lp_err_set(err, LP_EINVAL, "log_loss: k = %zu columns, expected >= 1", k);
    double sum = 0;
    if (k == 1) {
        if ((st = lp_metrics_check_binary_("log_loss", y, n, NULL, err)) ||
            (st = check_prob("log_loss", probs, n, 1, err)))
            return st;
        for (size_t i = 0; i < n; i++) {
            /* sklearn clips p, builds the row (1 - p, p) and renormalises it */
            double p1 = clip(probs[i]), p0 = clip(1 - p1), z = p0 + p1;
            sum -= log((y[i] ? p1 : p0) / z);
        }
    } else {
        if ((st = lp_metrics_check_labels_("log_loss", "y", y, n, k, err)) ||
            (st = check_prob("log_loss", probs, n * k, INFINITY, err)))
            return st;
        for (size_t i = 0; i < n; i++) {
            const double *row = probs + i * k; /* (k) */
            double z = 0;
            for (size_t c = 0; c < k; c++)
                z += clip(row[c]);
            sum -= log(clip(row[y[i]]) / z);
        }
    }
    *out = sum / (double)n;
    return LP_OK;
}

lp_status lp_metrics_brier(const int32_t *y, const double *p, size_t n, double *out, lp_err *err)
{
    lp_status st = lp_metrics_check_n_("brier", n, y, p, err);
    if (st || (st = lp_metrics_check_binary_("brier", y, n, NULL, err)) ||
        (st = check_prob("brier", p, n, 1, err)))
        return st;
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (p[i] - y[i]) * (p[i] - y[i]);
    *out = sum / (double)n;
    return LP_OK;
}

lp_status lp_metrics_ece(const int32_t *y, const double *probs, size_t n, size_t k,
                         size_t n_bins, double *out, lp_err *err)
{
    lp_status st = lp_metrics_check_n_("ece", n, y, probs, err);
    if (st)
        return st;
    if (k == 0 || k > (size_t)INT32_MAX || n > SIZE_MAX / k)
        return lp_err_set(err, LP_EINVAL, "ece: k = %zu columns, expected >= 1", k);
    if (n_bins == 0 || n_bins > 1000000)
        return lp_err_set(err, LP_EINVAL, "ece: n_bins = %zu, expected 1..1000000", n_bins);
    if ((st = (k == 1 ? lp_metrics_check_binary_("ece", y, n, NULL, err)
                      : lp_metrics_check_labels_("ece", "y", y, n, k, err))) ||
        (st = check_prob("ece", probs, n * k, 1, err)))
        return st;
    /* per bin: [count, sum of correct, sum of confidence] */
    double *bins = lp_calloc(3 * n_bins, sizeof *bins);
    if (!bins)
        return lp_err_set(err, LP_ENOMEM, "ece: out of memory for %zu bins", n_bins);
    for (size_t i = 0; i < n; i++) {
        double conf;
        int32_t pred;
        if (k == 1) {
            pred = probs[i] >= 0.5;
            conf = pred ? probs[i] : 1 - probs[i];
        } else {
            const double *row = probs + i * k; /* (k) */
            size_t best = 0;
            for (size_t c = 1; c < k; c++)
                if (row[c] > row[best])
                    best = c;
            pred = (int32_t)best;
            conf = row[best];
        }
        /* bin b holds (b/M, (b+1)/M]: ceil(conf * M) - 1, with conf == 0 in bin 0 */
        double bf = ceil(conf * (double)n_bins) - 1;
        size_t b = bf < 0 ? 0 : (bf >= (double)n_bins ? n_bins - 1 : (size_t)bf);
        bins[3 * b] += 1;
        bins[3 * b + 1] += pred == y[i];
        bins[3 * b + 2] += conf;
    }
    double ece = 0;
    for (size_t b = 0; b < n_bins; b++)
        if (bins[3 * b] > 0)
            ece += fabs(bins[3 * b + 1] - bins[3 * b + 2]) / (double)n;
    free(bins);
    *out = ece;
    return LP_OK;
}
