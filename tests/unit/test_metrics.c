/*
 * test_metrics.c - properties of the metrics that hold for any correct implementation
 * (perfect / reversed scores, tie handling, calibrated data has small ECE, short lists) and the
 * bad-input contract: every rejected input is LP_EINVAL with a message naming the place.
 */
#include "lp_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_perfect_and_reversed(void **state)
{
    (void)state;
    int32_t y[8] = {0, 1, 0, 1, 1, 0, 0, 1};
    double s[8], r[8], v;
    for (int i = 0; i < 8; i++) {
        s[i] = y[i] ? 10 + i : i; /* every positive above every negative */
        r[i] = -s[i];
    }
    assert_int_equal(lp_metrics_auroc(y, s, 8, &v, NULL), LP_OK);
    assert_true(v == 1.0);
    assert_int_equal(lp_metrics_average_precision(y, s, 8, &v, NULL), LP_OK);
    assert_true(v == 1.0);
    assert_int_equal(lp_metrics_auroc(y, r, 8, &v, NULL), LP_OK);
    assert_true(v == 0.0);
    /* reversed: positives come last; AP = mean over positives of j / (4 + j), j = 1..4 */
    assert_int_equal(lp_metrics_average_precision(y, r, 8, &v, NULL), LP_OK);
    double want = (1.0 / 5 + 2.0 / 6 + 3.0 / 7 + 4.0 / 8) / 4;
    assert_true(fabs(v - want) < 1e-15);
    /* all tied: the ROC is the diagonal, AP is the positive rate */
    double c[8] = {0};
    assert_int_equal(lp_metrics_auroc(y, c, 8, &v, NULL), LP_OK);
    assert_true(v == 0.5);
    assert_int_equal(lp_metrics_average_precision(y, c, 8, &v, NULL), LP_OK);
    assert_true(v == 0.5);
    double rec, thr;
    assert_int_equal(lp_metrics_recall_at_fpr(y, s, 8, 0.0, &rec, &thr, NULL), LP_OK);
    assert_true(rec == 1.0 && thr == 10 + 1); /* lowest positive score, y[1] */
    size_t alerts;
    assert_int_equal(lp_metrics_precision_at_top(y, s, 8, 0.5, &v, &alerts, NULL), LP_OK);
    assert_true(v == 1.0 && alerts == 4);
    /* ties at the cut are all alerted */
    assert_int_equal(lp_metrics_precision_at_top(y, c, 8, 0.1, &v, &alerts, NULL), LP_OK);
    assert_true(v == 0.5 && alerts == 8);
}

static void test_ties_exact(void **state)
{
    (void)state;
    /* hand count: pairs (pos, neg) = 2 * 2; scores pos {1, 0.5}, neg {0.5, 0}: wins 1+1+0.5+1 */
    int32_t y[4] = {1, 1, 0, 0};
    double s[4] = {1, 0.5, 0.5, 0}, v;
    assert_int_equal(lp_metrics_auroc(y, s, 4, &v, NULL), LP_OK);
    assert_true(fabs(v - 3.5 / 4) < 1e-15);
    /* AP: thresholds 1 (P=1, R=.5), 0.5 (P=2/3, R=1) -> .5 * 1 + .5 * 2/3 */
    assert_int_equal(lp_metrics_average_precision(y, s, 4, &v, NULL), LP_OK);
    assert_true(fabs(v - (0.5 + 1.0 / 3)) < 1e-15);
}

static void test_ece_calibrated(void **state)
{
    (void)state;
    /* labels drawn with exactly the predicted probability: ECE -> 0 as n grows (about
     * sqrt(bins / n)); a model that is always 0.3 too confident has ECE about 0.3 */
    enum { N = 20000 };
    int32_t *y = malloc(N * sizeof *y);
    double *p = malloc(N * sizeof *p), *q = malloc(N * sizeof *q), v, w;
    lp_rng rng;
    lp_rng_seed(&rng, 7);
    for (int i = 0; i < N; i++) {
        p[i] = lp_rng_uniform(&rng);
        y[i] = lp_rng_uniform(&rng) < p[i];
        q[i] = p[i] >= 0.5 ? fmin(1, p[i] + 0.3) : fmax(0, p[i] - 0.3);
    }
    assert_int_equal(lp_metrics_ece(y, p, N, 1, 15, &v, NULL), LP_OK);
    assert_true(v < 0.02);
    assert_int_equal(lp_metrics_ece(y, q, N, 1, 15, &w, NULL), LP_OK);
    assert_true(w > 0.2);
    /* multiclass form of the same binary data gives the same ECE */
    double *pm = malloc(2 * N * sizeof *pm);
    for (int i = 0; i < N; i++) {
        pm[2 * i] = 1 - p[i];
        pm[2 * i + 1] = p[i];
    }
    double vm;
    assert_int_equal(lp_metrics_ece(y, pm, N, 2, 15, &vm, NULL), LP_OK);
    /* only p == 0.5 exactly differs (argmax takes class 0, the binary form class 1) */
    assert_true(fabs(vm - v) < 1e-3);
    free(y);
    free(p);
    free(q);
    free(pm);
}

static void test_classification_edges(void **state)
{
    (void)state;
    int32_t yt[4] = {0, 0, 1, 1}, yp[4] = {0, 0, 0, 0};
    double p[2], r[2], f[2], P, R, F;
    assert_int_equal(lp_metrics_prf(yt, yp, 4, 2, p, r, f, NULL, NULL), LP_OK);
    /* class 1 never predicted: precision 0/0 -> 0 (zero_division=0), F1 0 */
    assert_true(p[1] == 0 && r[1] == 0 && f[1] == 0);
    assert_true(p[0] == 0.5 && r[0] == 1 && fabs(f[0] - 2.0 / 3) < 1e-15);
    assert_int_equal(lp_metrics_prf_average(yt, yp, 4, 2, LP_AVERAGE_MICRO, &P, &R, &F, NULL),
                     LP_OK);
    assert_true(P == 0.5 && R == 0.5 && F == 0.5);
    assert_int_equal(lp_metrics_prf_average(yt, yp, 4, 2, LP_AVERAGE_MACRO, &P, &R, &F, NULL),
                     LP_OK);
    assert_true(P == 0.25 && R == 0.5 && fabs(F - 1.0 / 3) < 1e-15);
    double y[3] = {2, 2, 2}, h[3] = {2, 2, 2}, v;
    assert_int_equal(lp_metrics_r2(y, h, 3, &v, NULL), LP_OK);
    assert_true(v == 1.0);
    h[0] = 3;
    assert_int_equal(lp_metrics_r2(y, h, 3, &v, NULL), LP_OK);
    assert_true(v == 0.0);
}

static void test_ranking_hand(void **state)
{
    (void)state;
    /* user 0: relevant {3, 7}; list 3 9 7 -> hits at ranks 0, 2
     * user 1: relevant {} -> skipped;  user 2: relevant {5}; list padded, 5 absent */
    int32_t ranked[9] = {3, 9, 7, 1, 2, -1, 8, -1, -1};
    int32_t rel[3] = {7, 3, 5};
    size_t off[4] = {0, 2, 2, 3};
    lp_rank_metrics m;
    assert_int_equal(lp_metrics_rank_at_k(ranked, 3, 3, off, rel, 3, &m, NULL), LP_OK);
    assert_int_equal(m.n_users, 2);
    double dcg = 1 + 1 / log2(4.0), idcg = 1 + 1 / log2(3.0);
    assert_true(fabs(m.precision - (2.0 / 3 + 0) / 2) < 1e-15);
    assert_true(fabs(m.recall - (1.0 + 0) / 2) < 1e-15);
    assert_true(fabs(m.ndcg - (dcg / idcg) / 2) < 1e-15);
    assert_true(fabs(m.map - ((1 + 2.0 / 3) / 2) / 2) < 1e-15);
}

static void expect_einval(lp_status st, const lp_err *err, const char *needle)
{
    assert_int_equal(st, LP_EINVAL);
    if (!strstr(err->msg, needle)) {
        print_error("message '%s' lacks '%s'\n", err->msg, needle);
        fail();
    }
}

static void test_bad_input(void **state)
{
    (void)state;
    lp_err err;
    double v, s[4] = {0.1, NAN, 0.3, 0.4}, ok[4] = {0.1, 0.2, 0.3, 0.4};
    int32_t y[4] = {0, 1, 0, 1}, one[4] = {1, 1, 1, 1}, bad[4] = {0, 1, 2, 1};
    v = -7;
    expect_einval(lp_metrics_auroc(y, s, 4, &v, &err), &err, "scores[1] is NaN");
    assert_true(v == -7); /* untouched on error */
    expect_einval(lp_metrics_auroc(y, ok, 0, &v, &err), &err, "empty");
    expect_einval(lp_metrics_auroc(one, ok, 4, &v, &err), &err, "one class");
    expect_einval(lp_metrics_auroc(bad, ok, 4, &v, &err), &err, "y[2] = 2");
    expect_einval(lp_metrics_average_precision(y, s, 4, &v, &err), &err, "[1]");
    int32_t zero[4] = {0};
    expect_einval(lp_metrics_average_precision(zero, ok, 4, &v, &err), &err, "no positive");
    assert_int_equal(lp_metrics_average_precision(one, ok, 4, &v, NULL), LP_OK);
    assert_true(v == 1.0);
    expect_einval(lp_metrics_recall_at_fpr(y, ok, 4, 1.5, &v, NULL, &err), &err, "max_fpr");
    expect_einval(lp_metrics_precision_at_top(y, ok, 4, 0, &v, NULL, &err), &err, "top");
    expect_einval(lp_metrics_log_loss(y, s, 4, 1, &v, &err), &err, "p[1]");
    double big[4] = {0.1, 1.2, 0.3, 0.4};
    expect_einval(lp_metrics_brier(y, big, 4, &v, &err), &err, "p[1] = 1.2");
    expect_einval(lp_metrics_ece(y, ok, 4, 1, 0, &v, &err), &err, "n_bins");
    expect_einval(lp_metrics_accuracy(y, y, 0, &v, &err), &err, "empty");
    uint64_t cm[4];
    expect_einval(lp_metrics_confusion(y, bad, 4, 2, cm, &err), &err, "y_pred[2] = 2");
    expect_einval(lp_metrics_prf_average(y, y, 4, 2, (lp_average)9, &v, NULL, NULL, &err), &err,
                  "average");
    double sc[8] = {0.5, 0.5, 0.2, 0.8, 0.9, 0.1, 0.3, 0.7};
    int32_t y3[4] = {0, 1, 0, 1};
    assert_int_equal(lp_metrics_auroc_ovr(y3, sc, 4, 2, &v, &err), LP_OK);
    sc[5] = NAN;
    expect_einval(lp_metrics_auroc_ovr(y3, sc, 4, 2, &v, &err), &err, "scores[5] is NaN");
    sc[5] = 0.1;
    int32_t y4[4] = {0, 0, 0, 0};
    expect_einval(lp_metrics_auroc_ovr(y4, sc, 4, 2, &v, &err), &err, "class 0");
    /* over the classes present: the same as auroc_ovr when all are, NaN and 0 used when none */
    double w;
    size_t used;
    assert_int_equal(lp_metrics_auroc_ovr(y3, sc, 4, 2, &v, &err), LP_OK);
    assert_int_equal(lp_metrics_auroc_ovr_present(y3, sc, 4, 2, &w, &used, &err), LP_OK);
    assert_true(w == v && used == 2);
    assert_int_equal(lp_metrics_auroc_ovr_present(y4, sc, 4, 2, &w, &used, &err), LP_OK);
    assert_true(isnan(w) && used == 0);
    double s3[12] = {0.8, 0.1, 0.1, 0.6, 0.3, 0.1, 0.2, 0.1, 0.7, 0.1, 0.2, 0.7};
    int32_t y5[4] = {0, 0, 2, 2}; /* class 1 absent: the mean over classes 0 and 2 */
    assert_int_equal(lp_metrics_auroc_ovr_present(y5, s3, 4, 3, &w, &used, &err), LP_OK);
    assert_true(w == 1 && used == 2);
    double yn[2] = {1, NAN};
    expect_einval(lp_metrics_rmse(yn, yn, 2, &v, &err), &err, "y[1] is NaN");

    int32_t ranked[4] = {1, 1, 2, -1};
    int32_t rel[2] = {1, 2};
    size_t off[3] = {0, 1, 2};
    lp_rank_metrics m;
    expect_einval(lp_metrics_rank_at_k(ranked, 2, 2, off, rel, 2, &m, &err), &err,
                  "item 1 appears twice");
    int32_t gap[4] = {1, -1, -1, 2};
    expect_einval(lp_metrics_rank_at_k(gap, 2, 2, off, rel, 2, &m, &err), &err, "padding");
    int32_t fine[4] = {1, 0, 2, -1};
    expect_einval(lp_metrics_rank_at_k(fine, 2, 2, off, rel, 3, &m, &err), &err, "k = 3");
    size_t none[3] = {0, 0, 0};
    expect_einval(lp_metrics_rank_at_k(fine, 2, 2, none, rel, 2, &m, &err), &err,
                  "relevant item");
    int32_t dup[2] = {2, 2};
    size_t off2[3] = {0, 0, 2};
    expect_einval(lp_metrics_rank_at_k(fine, 2, 2, off2, dup, 2, &m, &err), &err,
                  "relevant items");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_perfect_and_reversed), cmocka_unit_test(test_ties_exact),
        cmocka_unit_test(test_ece_calibrated),       cmocka_unit_test(test_classification_edges),
        cmocka_unit_test(test_ranking_hand),         cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
