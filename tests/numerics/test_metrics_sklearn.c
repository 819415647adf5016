/*
 * test_metrics_sklearn.c - every metric and calibrator against reference values written by
 * tests/fixtures/gen_metrics.py (scikit-learn 1.2.1, NumPy, SciPy) on seeded data with tied
 * scores. Tolerances are named below with the reason for each.
 */
#include "lp_test.h"

#include <math.h>
#include <stdlib.h>

/* Counting metrics (accuracy, P/R/F1, AUROC, AP, @k): the same rational numbers computed in a
 * different order; only the last bits of rounding may differ. */
#define TOL_COUNT 1e-12
/* Sums of n logs or squares (log-loss, Brier, RMSE, MAE, R^2, ECE): summation order differs
 * from NumPy's pairwise sums, error grows like n * eps. */
#define TOL_SUM 1e-10
/* Platt against sklearn, which stops BFGS at gradient norm 1e-5 of the summed loss: (A, B)
 * agree to about that relative accuracy only. */
#define TOL_PLATT_SKLEARN 1e-4
/* Platt against the NumPy Newton solve run to |grad| < 1e-12 n: both at the same optimum. */
#define TOL_PLATT_NEWTON 1e-8
/* Temperature: SciPy's bounded Brent stops at |d log T| 1e-12, our bisection far below; the
 * NLL is flat near its optimum, so T agrees to about sqrt of the NLL's rounding. */
#define TOL_TEMP 1e-6

static lp_fixture *fx;

static int setup(void **state)
{
    (void)state;
    fx = lp_fixture_load("metrics.txt");
    return fx ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    lp_fixture_free(fx);
    return 0;
}

static double *arr(const char *name, size_t *n)
{
    size_t r, c;
    double *a = lp_fixture_array(fx, name, &r, &c);
    if (n)
        *n = r * c;
    return a;
}

static int32_t *iarr(const char *name, size_t *n)
{
    size_t m;
    double *a = arr(name, &m);
    int32_t *v = malloc(m * sizeof *v);
    for (size_t i = 0; i < m; i++)
        v[i] = (int32_t)a[i];
    free(a);
    if (n)
        *n = m;
    return v;
}

static double scalar(const char *name)
{
    double *a = arr(name, NULL), v = a[0];
    free(a);
    return v;
}

static void check1(double got, double want, double tol, const char *what)
{
    lp_assert_close(&got, &want, 1, tol, tol, what);
}

static void test_classification(void **state)
{
    (void)state;
    size_t n, m;
    int32_t *yt = iarr("cls_y_true", &n), *yp = iarr("cls_y_pred", &m);
    assert_int_equal(n, m);
    lp_err err;
    double acc, p[5], r[5], f[5], sup[5];
    uint64_t s[5], cm[25];
    assert_int_equal(lp_metrics_accuracy(yt, yp, n, &acc, &err), LP_OK);
    check1(acc, scalar("cls_accuracy"), TOL_COUNT, "accuracy");
    assert_int_equal(lp_metrics_prf(yt, yp, n, 5, p, r, f, s, &err), LP_OK);
    double *wp = arr("cls_precision", NULL), *wr = arr("cls_recall", NULL);
    double *wf = arr("cls_f1", NULL), *ws = arr("cls_support", NULL), *wc = arr("cls_confusion", NULL);
    lp_assert_close(p, wp, 5, TOL_COUNT, TOL_COUNT, "per-class precision");
    lp_assert_close(r, wr, 5, TOL_COUNT, TOL_COUNT, "per-class recall");
    lp_assert_close(f, wf, 5, TOL_COUNT, TOL_COUNT, "per-class f1");
    for (size_t i = 0; i < 5; i++)
        sup[i] = (double)s[i];
    lp_assert_close(sup, ws, 5, 0, 0, "support");
    assert_int_equal(lp_metrics_confusion(yt, yp, n, 5, cm, &err), LP_OK);
    double cmd[25];
    for (size_t i = 0; i < 25; i++)
        cmd[i] = (double)cm[i];
    lp_assert_close(cmd, wc, 25, 0, 0, "confusion matrix");
    /* k = 5 but class 4 never occurs: macro averages over the 4 seen classes like sklearn */
    const char *names[2] = {"cls_macro_prf", "cls_micro_prf"};
    const char *f1names[2] = {"cls_macro_f1", "cls_micro_f1"};
    for (int a = 0; a < 2; a++) {
        double got[3], *want = arr(names[a], NULL);
        assert_int_equal(lp_metrics_prf_average(yt, yp, n, 5, a ? LP_AVERAGE_MICRO
                                                                 : LP_AVERAGE_MACRO,
                                                &got[0], &got[1], &got[2], &err),
                         LP_OK);
        lp_assert_close(got, want, 3, TOL_COUNT, TOL_COUNT, names[a]);
        check1(got[2], scalar(f1names[a]), TOL_COUNT, f1names[a]);
        free(want);
    }
    free(wp);
    free(wr);
    free(wf);
    free(ws);
    free(wc);
    free(yt);
    free(yp);
}

static void test_binary_scores(void **state)
{
    (void)state;
    size_t n;
    int32_t *y = iarr("bin_y", &n);
    double *s = arr("bin_scores", NULL), v;
    lp_err err;
    assert_int_equal(lp_metrics_auroc(y, s, n, &v, &err), LP_OK);
    check1(v, scalar("bin_auroc"), TOL_COUNT, "auroc with ties");
    assert_int_equal(lp_metrics_average_precision(y, s, n, &v, &err), LP_OK);
    check1(v, scalar("bin_ap"), TOL_COUNT, "average precision with ties");

    /* the alerting metrics use prob_y (the same scores, 4 labels flipped) */
    int32_t *ya = iarr("prob_y", NULL);
    size_t rows;
    double *rf = arr("alert_recall_at_fpr", &rows);
    for (size_t i = 0; i < rows / 3; i++) {
        double rec, thr;
        assert_int_equal(lp_metrics_recall_at_fpr(ya, s, n, rf[3 * i], &rec, &thr, &err), LP_OK);
        check1(rec, rf[3 * i + 1], TOL_COUNT, "recall at fpr");
        if (isinf(rf[3 * i + 2]))
            assert_true(isinf(thr) && thr > 0);
        else
            check1(thr, rf[3 * i + 2], 0, "threshold at fpr");
    }
    double *pt = arr("alert_precision_at_top", &rows);
    for (size_t i = 0; i < rows / 3; i++) {
        double prec;
        size_t alerts;
        assert_int_equal(lp_metrics_precision_at_top(ya, s, n, pt[3 * i], &prec, &alerts, &err),
                         LP_OK);
        check1(prec, pt[3 * i + 1], TOL_COUNT, "precision at top");
        assert_int_equal(alerts, (size_t)pt[3 * i + 2]);
    }
    free(rf);
    free(pt);
    free(ya);
    free(y);
    free(s);
}

static void test_probabilities(void **state)
{
    (void)state;
    size_t n;
    int32_t *y = iarr("prob_y", &n);
    double *p = arr("prob_p", NULL), v;
    lp_err err;
    assert_int_equal(lp_metrics_log_loss(y, p, n, 1, &v, &err), LP_OK);
    check1(v, scalar("prob_logloss"), TOL_SUM, "binary log-loss with p = 0 and 1 clipped");
    assert_int_equal(lp_metrics_brier(y, p, n, &v, &err), LP_OK);
    check1(v, scalar("prob_brier"), TOL_SUM, "brier");
    assert_int_equal(lp_metrics_ece(y, p, n, 1, LP_METRICS_ECE_BINS_DEFAULT, &v, &err), LP_OK);
    check1(v, scalar("prob_ece15"), TOL_SUM, "binary ece");

    size_t m, k = 4;
    int32_t *ym = iarr("mc_y", &m);
    double *pm = arr("mc_probs", NULL), *pr = arr("mc_probs_rounded", NULL);
    assert_int_equal(lp_metrics_auroc_ovr(ym, pm, m, k, &v, &err), LP_OK);
    check1(v, scalar("mc_auroc_ovr"), TOL_COUNT, "ovr macro auroc");
    assert_int_equal(lp_metrics_log_loss(ym, pr, m, k, &v, &err), LP_OK);
    check1(v, scalar("mc_logloss"), TOL_SUM, "multiclass log-loss (renormalised rows)");
    assert_int_equal(lp_metrics_ece(ym, pm, m, k, 15, &v, &err), LP_OK);
    check1(v, scalar("mc_ece15"), TOL_SUM, "ece 15 bins");
    assert_int_equal(lp_metrics_ece(ym, pm, m, k, 10, &v, &err), LP_OK);
    check1(v, scalar("mc_ece10"), TOL_SUM, "ece 10 bins");
    free(y);
    free(p);
    free(ym);
    free(pm);
    free(pr);
}

static void test_regression(void **state)
{
    (void)state;
    size_t n;
    double *y = arr("reg_y", &n), *yh = arr("reg_yhat", NULL), v;
    lp_err err;
    assert_int_equal(lp_metrics_rmse(y, yh, n, &v, &err), LP_OK);
    check1(v, scalar("reg_rmse"), TOL_SUM, "rmse");
    assert_int_equal(lp_metrics_mae(y, yh, n, &v, &err), LP_OK);
    check1(v, scalar("reg_mae"), TOL_SUM, "mae");
    assert_int_equal(lp_metrics_r2(y, yh, n, &v, &err), LP_OK);
    check1(v, scalar("reg_r2"), TOL_SUM, "r2");
    free(y);
    free(yh);
}

static size_t *offsets(const char *name, size_t *n)
{
    size_t m;
    double *a = arr(name, &m);
    size_t *o = malloc(m * sizeof *o);
    for (size_t i = 0; i < m; i++)
        o[i] = (size_t)a[i];
    free(a);
    *n = m - 1;
    return o;
}

static void test_ranking(void **state)
{
    (void)state;
    size_t rows, cols, users;
    double *rd = lp_fixture_array(fx, "rk_ranked", &rows, &cols);
    int32_t *ranked = malloc(rows * cols * sizeof *ranked);
    for (size_t i = 0; i < rows * cols; i++)
        ranked[i] = (int32_t)rd[i];
    free(rd);
    size_t *off = offsets("rk_rel_off", &users);
    int32_t *rel = iarr("rk_rel", NULL);
    assert_int_equal(users, rows);
    const char *names[3] = {"rk_at1", "rk_at5", "rk_at10"};
    const size_t ks[3] = {1, 5, 10};
    for (int t = 0; t < 3; t++) {
        lp_rank_metrics m;
        lp_err err;
        assert_int_equal(lp_metrics_rank_at_k(ranked, rows, cols, off, rel, ks[t], &m, &err),
                         LP_OK);
        double got[5] = {m.precision, m.recall, m.ndcg, m.map, (double)m.n_users};
        double *want = arr(names[t], NULL);
        lp_assert_close(got, want, 5, TOL_COUNT, TOL_COUNT, names[t]);
        free(want);
    }
    free(ranked);
    free(off);
    free(rel);

    /* sklearn ndcg_score on full rankings without ties, every user with a relevant item */
    rd = lp_fixture_array(fx, "rk_sk_ranked", &rows, &cols);
    ranked = malloc(rows * cols * sizeof *ranked);
    for (size_t i = 0; i < rows * cols; i++)
        ranked[i] = (int32_t)rd[i];
    free(rd);
    off = offsets("rk_sk_rel_off", &users);
    rel = iarr("rk_sk_rel", NULL);
    lp_rank_metrics m;
    assert_int_equal(lp_metrics_rank_at_k(ranked, rows, cols, off, rel, 5, &m, NULL), LP_OK);
    check1(m.ndcg, scalar("rk_sk_ndcg5"), TOL_COUNT, "ndcg@5 vs sklearn");
    assert_int_equal(lp_metrics_rank_at_k(ranked, rows, cols, off, rel, cols, &m, NULL), LP_OK);
    check1(m.ndcg, scalar("rk_sk_ndcg40"), TOL_COUNT, "ndcg@40 vs sklearn");
    check1(m.recall, 1.0, 0, "recall over the full list");
    free(ranked);
    free(off);
    free(rel);
}

static void test_platt(void **state)
{
    (void)state;
    size_t n, nq;
    int32_t *y = iarr("cal_y", &n);
    double *f = arr("cal_f", NULL), *q = arr("cal_query", &nq);
    double *sk = arr("cal_platt_sklearn", NULL), *nw = arr("cal_platt_newton", NULL);
    double *want = arr("cal_platt_pred", NULL);
    lp_calibrator *cal = NULL;
    lp_err err;
    assert_int_equal(lp_calibrator_fit_platt(f, y, n, &cal, &err), LP_OK);
    double ab[2], out[16];
    lp_calibrator_params(cal, &ab[0], &ab[1]);
    lp_assert_close(ab, sk, 2, TOL_PLATT_SKLEARN, TOL_PLATT_SKLEARN, "platt (A, B) vs sklearn");
    lp_assert_close(ab, nw, 2, TOL_PLATT_NEWTON, TOL_PLATT_NEWTON, "platt (A, B) vs newton");
    assert_int_equal(lp_calibrator_predict(cal, q, nq, 1, out, &err), LP_OK);
    lp_assert_close(out, want, nq, TOL_PLATT_NEWTON, TOL_PLATT_NEWTON, "platt predictions");
    lp_calibrator_free(cal);
    free(y);
    free(f);
    free(q);
    free(sk);
    free(nw);
    free(want);
}

static void test_isotonic(void **state)
{
    (void)state;
    size_t n, nk, nq;
    int32_t *y = iarr("cal_y", &n);
    double *f = arr("cal_f", NULL), *kx = arr("cal_iso_x", &nk), *ky = arr("cal_iso_y", NULL);
    double *q = arr("cal_iso_query", &nq), *want = arr("cal_iso_pred", NULL);
    lp_calibrator *cal = NULL;
    lp_err err;
    assert_int_equal(lp_calibrator_fit_isotonic(f, y, n, &cal, &err), LP_OK);
    double knots;
    lp_calibrator_params(cal, &knots, NULL);
    assert_int_equal((size_t)knots, nk); /* same trimmed knots as sklearn's X_thresholds_ */
    /* predicting at the knots returns their fitted values */
    double *got = malloc((nk > nq ? nk : nq) * sizeof *got);
    assert_int_equal(lp_calibrator_predict(cal, kx, nk, 1, got, &err), LP_OK);
    lp_assert_close(got, ky, nk, TOL_COUNT, TOL_COUNT, "isotonic y at sklearn's knots");
    assert_int_equal(lp_calibrator_predict(cal, q, nq, 1, got, &err), LP_OK);
    lp_assert_close(got, want, nq, TOL_COUNT, TOL_COUNT, "isotonic predict (interp + clip)");
    lp_calibrator_free(cal);
    free(got);
    free(y);
    free(f);
    free(kx);
    free(ky);
    free(q);
    free(want);
}

static void test_temperature(void **state)
{
    (void)state;
    size_t n, rows, k;
    int32_t *y = iarr("mc_y", &n);
    double *z = lp_fixture_array(fx, "cal_temp_logits", &rows, &k);
    assert_int_equal(rows, n);
    lp_calibrator *cal = NULL;
    lp_err err;
    assert_int_equal(lp_calibrator_fit_temperature(z, y, n, k, &cal, &err), LP_OK);
    double T;
    lp_calibrator_params(cal, &T, NULL);
    check1(T, scalar("cal_temp_T"), TOL_TEMP, "temperature vs scipy bounded Brent");
    lp_calibrator_free(cal);
    free(y);
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classification), cmocka_unit_test(test_binary_scores),
        cmocka_unit_test(test_probabilities),  cmocka_unit_test(test_regression),
        cmocka_unit_test(test_ranking),        cmocka_unit_test(test_platt),
        cmocka_unit_test(test_isotonic),       cmocka_unit_test(test_temperature),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
