/*
 * regress.c - regression metrics: RMSE, MAE and R^2 as scikit-learn computes them. One pass
 * each (two for R^2: the mean, then the sums of squares), O(1) scratch. NaN is rejected; Inf
 * is allowed and propagates into the result.
 */
#include "metrics/metrics_util.h"

#include <math.h>

static lp_status check(const char *fn, const double *y, const double *yhat, size_t n,
                       lp_err *err)
{
    lp_status st = lp_metrics_check_n_(fn, n, y, yhat, err);
    if (st || (st = lp_metrics_check_nan_(fn, "y", y, n, err)) ||
        (st = lp_metrics_check_nan_(fn, "yhat", yhat, n, err)))
        return st;
    return LP_OK;
}

lp_status lp_metrics_rmse(const double *y, const double *yhat, size_t n, double *out,
                          lp_err *err)
{
    lp_status st = check("rmse", y, yhat, n, err);
    if (st)
        return st;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (y[i] - yhat[i]) * (y[i] - yhat[i]);
    *out = sqrt(s / (double)n);
    return LP_OK;
}

lp_status lp_metrics_mae(const double *y, const double *yhat, size_t n, double *out, lp_err *err)
{
    lp_status st = check("mae", y, yhat, n, err);
    if (st)
        return st;
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += fabs(y[i] - yhat[i]);
    *out = s / (double)n;
    return LP_OK;
}

lp_status lp_metrics_r2(const double *y, const double *yhat, size_t n, double *out, lp_err *err)
{
    lp_status st = check("r2", y, yhat, n, err);
    if (st)
        return st;
    double mean = 0;
    for (size_t i = 0; i < n; i++)
        mean += y[i];
    mean /= (double)n;
    double ss_res = 0, ss_tot = 0;
    for (size_t i = 0; i < n; i++) {
        ss_res += (y[i] - yhat[i]) * (y[i] - yhat[i]);
        ss_tot += (y[i] - mean) * (y[i] - mean);
    }
    if (ss_tot == 0)
        *out = ss_res == 0 ? 1.0 : 0.0; /* sklearn force_finite=True */
    else
        *out = 1 - ss_res / ss_tot;
    return LP_OK;
}
