/*
 * metrics_util.h - checks and the sort shared by the metrics files (private to libcore).
 * Every check fills err with a message naming the function (`fn`), the array and the index.
 */
#ifndef LP_METRICS_UTIL_H
#define LP_METRICS_UTIL_H

#include "lepton/metrics.h"

/* A (score, label) pair; sorting these by decreasing score groups ties together. */
typedef struct lp_scored {
    double score;
    int32_t y;
} lp_scored;

/* LP_EINVAL when n == 0 or a pointer is NULL. */
lp_status lp_metrics_check_n_(const char *fn, size_t n, const void *a, const void *b,
                              lp_err *err);
/* LP_EINVAL naming the first index with y not in {0, 1}; *n_pos gets the count of 1s. */
lp_status lp_metrics_check_binary_(const char *fn, const int32_t *y, size_t n, size_t *n_pos,
                                   lp_err *err);
/* LP_EINVAL naming the first index with y not in [0, k). */
lp_status lp_metrics_check_labels_(const char *fn, const char *name, const int32_t *y, size_t n,
                                   size_t k, lp_err *err);
/* LP_EINVAL naming the first NaN in x (n) (Inf allowed: it still orders). */
lp_status lp_metrics_check_nan_(const char *fn, const char *name, const double *x, size_t n,
                                lp_err *err);
/* New array of n pairs (scores[i * stride], y[i] == pos) sorted by decreasing score; caller
 * frees. NULL on allocation failure. */
lp_scored *lp_metrics_sorted_(const int32_t *y, int32_t pos, const double *scores, size_t stride,
                              size_t n);

#endif
