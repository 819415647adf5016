/*
 * metrics.h - evaluation metrics over plain arrays: classification (accuracy, confusion matrix,
 * precision/recall/F1), ranking of scores (AUROC, average precision, recall at a false-positive
 * rate, precision in the top fraction), probabilities (log-loss, Brier score, ECE), regression
 * (RMSE, MAE, R^2) and top-k recommendation lists (precision/recall/NDCG/MAP@k).
 *
 * Conventions shared by every function here:
 *   - Class labels are int32_t: 0/1 for binary metrics, 0..k-1 for multiclass ones. A label out
 *     of range is LP_EINVAL naming its index.
 *   - Scores and probabilities are double (metrics are statistics, DESIGN.md "Numbers"); a NaN
 *     (or Inf where a probability is expected) is LP_EINVAL naming its index.
 *   - Multiclass scores are row-major (n, k).
 *   - n == 0 is LP_EINVAL ("empty input"). Results are written to *out only on success.
 *   - The definitions follow scikit-learn 1.2.1 where it has the metric; each contract says
 *     where we differ or what we chose where scikit-learn has no equivalent.
 * Every function is pure (no global state) and thread-safe; none allocates memory that outlives
 * the call. Functions that sort allocate O(n) scratch and may return LP_ENOMEM.
 */
#ifndef LEPTON_METRICS_H
#define LEPTON_METRICS_H

#include "lepton/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- classification from hard predictions --------------------------------------------------*/

/* Fraction of i with y_pred[i] == y_true[i] (sklearn accuracy_score). Labels are compared as
 * integers; any values are allowed. Errors: n == 0. */
lp_status lp_metrics_accuracy(const int32_t *y_true, const int32_t *y_pred, size_t n,
                              double *out, lp_err *err);

/* Confusion matrix cm (k, k): cm[t * k + p] counts samples with true class t predicted as p
 * (sklearn confusion_matrix with labels=range(k)). Labels must lie in [0, k). */
lp_status lp_metrics_confusion(const int32_t *y_true, const int32_t *y_pred, size_t n, size_t k,
                               uint64_t *cm, lp_err *err);

/* Per-class precision, recall, F1 and support, each an array of k (any may be NULL), as sklearn
 * precision_recall_fscore_support(labels=range(k), zero_division=0): a ratio whose denominator
 * is 0 is 0, and F1 is 0 when precision + recall is 0. Labels must lie in [0, k). */
lp_status lp_metrics_prf(const int32_t *y_true, const int32_t *y_pred, size_t n, size_t k,
                         double *precision, double *recall, double *f1, uint64_t *support,
                         lp_err *err);

typedef enum lp_average {
    /* Unweighted mean of the per-class values over the classes that occur in y_true or y_pred
     * (sklearn average='macro' without `labels`; F1 is the mean of per-class F1, not the F1 of
     * mean precision and recall). */
    LP_AVERAGE_MACRO = 0,
    /* Global counts: sum TP / sum (TP + FP) etc. For single-label multiclass data all three
     * equal accuracy (sklearn average='micro'). */
    LP_AVERAGE_MICRO
} lp_average;

/* Averaged precision, recall and F1 (any out pointer may be NULL); zero_division=0 as above. */
lp_status lp_metrics_prf_average(const int32_t *y_true, const int32_t *y_pred, size_t n, size_t k,
                                 lp_average avg, double *precision, double *recall, double *f1,
                                 lp_err *err);

/* ---- binary scores ------------------------------------------------------------------------*/

/* Area under the ROC curve of scores (n) against labels y (n) in {0, 1}, exact with ties: tied
 * scores form one step of the curve and the area is the trapezoid rule over all distinct
 * thresholds, equal to sklearn roc_auc_score and to the Mann-Whitney U / (P N) with ties
 * counted 1/2. O(n log n). Errors: n == 0, NaN score, label not 0/1, only one class present. */
lp_status lp_metrics_auroc(const int32_t *y, const double *scores, size_t n, double *out,
                           lp_err *err);

/* Macro one-vs-rest AUROC for k >= 2 classes: the mean over classes c of the binary AUROC of
 * column c of scores (n, k) against (y == c) (sklearn roc_auc_score(multi_class='ovr',
 * average='macro')). Unlike sklearn the rows need not sum to 1 (any monotone score per class
 * works). Errors: as lp_metrics_auroc, plus a class in [0, k) absent from y. */
lp_status lp_metrics_auroc_ovr(const int32_t *y, const double *scores, size_t n, size_t k,
                               double *out, lp_err *err);
/* The same mean over only the classes with both positive and negative rows (an evaluation set
 * often lacks a rare class); *used (may be NULL) gets how many, and *out is NaN when none.
 * Equal to lp_metrics_auroc_ovr when every class has both. */
lp_status lp_metrics_auroc_ovr_present(const int32_t *y, const double *scores, size_t n,
                                       size_t k, double *out, size_t *used, lp_err *err);

/* Average precision (sklearn average_precision_score): AP = sum_t (R_t - R_{t-1}) P_t over the
 * distinct score thresholds t taken in decreasing order, with P_t, R_t the precision and
 * recall of predicting positive when score >= t. This is the step-function sum, not the
 * trapezoid area under the PR curve (which is optimistic). Errors: as lp_metrics_auroc except
 * that only negatives present is an error while only positives gives 1. */
lp_status lp_metrics_average_precision(const int32_t *y, const double *scores, size_t n,
                                       double *out, lp_err *err);

/* Fraud-style alerting: the largest recall (true-positive rate) over thresholds t (alert when
 * score >= t, t a distinct score value or +inf) whose false-positive rate FP / N is <= max_fpr.
 * *threshold (nullable) gets the chosen t (+INFINITY when no threshold qualifies, recall 0).
 * max_fpr in [0, 1]. Both classes must be present. */
lp_status lp_metrics_recall_at_fpr(const int32_t *y, const double *scores, size_t n,
                                   double max_fpr, double *recall, double *threshold,
                                   lp_err *err);

/* Precision among the alerts when the top fraction `top` (0, 1] of scores is flagged: with
 * m = ceil(top * n - 1e-9) (at least 1; the slack keeps 0.07 * 100 from rounding up to 8)
 * and t the m-th largest score, every sample with score >= t is
 * an alert, so ties at the cut are all included (a deployed threshold cannot split a tie).
 * *n_alerts (nullable) gets the alert count, which is >= m. */
lp_status lp_metrics_precision_at_top(const int32_t *y, const double *scores, size_t n,
                                      double top, double *precision, size_t *n_alerts,
                                      lp_err *err);

/* ---- probabilities ------------------------------------------------------------------------*/

/* sklearn 1.2.1 log_loss clipping: eps="auto" is the float64 machine epsilon; each probability
 * is clipped to [eps, 1 - eps] and each row renormalised to sum 1 before the log. */
#define LP_METRICS_LOGLOSS_EPS 2.220446049250313e-16

/* Mean negative log-likelihood. k == 1: probs (n) is P(y = 1) and y is 0/1 (binary). k >= 2:
 * probs (n, k) and y in [0, k). Clipping and renormalisation as LP_METRICS_LOGLOSS_EPS says.
 * Probabilities must lie in [0, 1] for k == 1 and be finite and >= 0 for k >= 2 (rows need not
 * sum to 1: they are renormalised, as sklearn 1.2.1 does). */
lp_status lp_metrics_log_loss(const int32_t *y, const double *probs, size_t n, size_t k,
                              double *out, lp_err *err);

/* Brier score mean (p_i - y_i)^2 for binary y in {0, 1} and p (n) = P(y = 1) in [0, 1]
 * (sklearn brier_score_loss with pos_label=1). */
lp_status lp_metrics_brier(const int32_t *y, const double *p, size_t n, double *out, lp_err *err);

#define LP_METRICS_ECE_BINS_DEFAULT 15

/* Expected calibration error of the top-class confidence (Guo et al. 2017, "On Calibration of
 * Modern Neural Networks"): for each sample, conf = max_c probs[i, c] and pred = the first
 * argmax; bin b in [0, n_bins) holds conf in (b/M, (b+1)/M] (conf == 0 goes to bin 0); then
 * ECE = sum_b (|B_b| / n) |acc(B_b) - mean conf(B_b)|. k == 1 means binary P(y = 1): the
 * confidence is max(p, 1 - p) and pred = (p >= 0.5). Probabilities must lie in [0, 1].
 * n_bins >= 1 (pass LP_METRICS_ECE_BINS_DEFAULT). */
lp_status lp_metrics_ece(const int32_t *y, const double *probs, size_t n, size_t k,
                         size_t n_bins, double *out, lp_err *err);

/* ---- regression ---------------------------------------------------------------------------*/

/* sqrt(mean (y - yhat)^2) (sklearn mean_squared_error(squared=False)). Errors: n == 0, NaN. */
lp_status lp_metrics_rmse(const double *y, const double *yhat, size_t n, double *out,
                          lp_err *err);
/* mean |y - yhat| (sklearn mean_absolute_error). */
lp_status lp_metrics_mae(const double *y, const double *yhat, size_t n, double *out, lp_err *err);
/* R^2 = 1 - SS_res / SS_tot (sklearn r2_score, force_finite=True): when y is constant
 * (SS_tot == 0) the result is 1 for a perfect fit and 0 otherwise. */
lp_status lp_metrics_r2(const double *y, const double *yhat, size_t n, double *out, lp_err *err);

/* ---- top-k recommendation lists -----------------------------------------------------------
 * Input per user u (0 <= u < n_users):
 *   ranked[u * list_len + r]  the item at rank r (0 = best), an id >= 0; -1 pads a short list
 *                             (and every later entry must be -1 too). An item may appear once.
 *   relevant[rel_off[u] .. rel_off[u+1])  the user's relevant item ids (binary relevance; a
 *                             duplicate is an error). rel_off has n_users + 1 entries.
 * For each user with at least one relevant item (users without any are skipped, since every
 * metric below is undefined for them), with hits h_r = 1 when the item at rank r is relevant
 * and R = |relevant|:
 *   precision@k = sum_{r<k} h_r / k              (padding counts as a miss)
 *   recall@k    = sum_{r<k} h_r / R
 *   NDCG@k      = DCG / IDCG, DCG = sum_{r<k} h_r / log2(r + 2),
 *                 IDCG = sum_{r < min(k, R)} 1 / log2(r + 2)
 *   AP@k        = (1 / min(k, R)) sum_{r<k} h_r * precision@(r+1)
 * and each is averaged over the evaluated users (MAP@k is the mean of AP@k). The AP
 * denominator min(k, R) makes a perfect top-k list score 1 even when R > k (the common
 * "MAP@k" of recommender benchmarks; sklearn has no MAP@k). */
typedef struct lp_rank_metrics {
    double precision, recall, ndcg, map;
    size_t n_users; /* users evaluated (with >= 1 relevant item) */
} lp_rank_metrics;

/* Compute the four @k metrics above. 1 <= k <= list_len. Errors: bad ids, duplicates, k out of
 * range, rel_off not nondecreasing, no user with a relevant item. */
lp_status lp_metrics_rank_at_k(const int32_t *ranked, size_t n_users, size_t list_len,
                               const size_t *rel_off, const int32_t *relevant, size_t k,
                               lp_rank_metrics *out, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
