/*
 * test_train_cv_calib.c - k-fold assignments (partition, sizes within one, stratification,
 * seed determinism), calibrators (never worse log-loss on their training data, monotone output,
 * save/load round trip, rejection of truncated and corrupted bytes) and their bad inputs; the
 * label-shift re-weighting (Saerens et al. 2002) against the exact posterior of a known mixture
 * and its EM estimate of a shifted class mix.
 */
#include "lp_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void test_kfold_partition(void **state)
{
    (void)state;
    enum { N = 103, K = 5 };
    int32_t fold[N], again[N], other[N];
    assert_int_equal(lp_kfold_split(N, K, 42, fold, NULL), LP_OK);
    size_t count[K] = {0};
    for (int i = 0; i < N; i++) {
        assert_true(fold[i] >= 0 && fold[i] < K);
        count[fold[i]]++;
    }
    for (int f = 0; f < K; f++)
        assert_true(count[f] == N / K || count[f] == N / K + 1);
    assert_int_equal(lp_kfold_split(N, K, 42, again, NULL), LP_OK);
    assert_memory_equal(fold, again, sizeof fold);
    assert_int_equal(lp_kfold_split(N, K, 43, other, NULL), LP_OK);
    assert_memory_not_equal(fold, other, sizeof fold);
    /* shuffled: the first fold is not simply the first N/K indices */
    int first_block = 0;
    for (int i = 0; i < N / K; i++)
        first_block += fold[i] == fold[0];
    assert_true(first_block < N / K);

    size_t tr[N], te[N], ntr, nte, seen[N] = {0};
    for (size_t f = 0; f < K; f++) {
        assert_int_equal(lp_kfold_indices(fold, N, K, f, tr, &ntr, te, &nte, NULL), LP_OK);
        assert_int_equal(ntr + nte, N);
        assert_int_equal(nte, count[f]);
        for (size_t j = 0; j < nte; j++) {
            seen[te[j]]++;
            if (j)
                assert_true(te[j] > te[j - 1]);
        }
        for (size_t j = 0; j < ntr; j++)
            assert_true((size_t)fold[tr[j]] != f);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(seen[i], 1); /* every index in exactly one test fold */
}

static void test_kfold_stratified(void **state)
{
    (void)state;
    enum { N = 211, K = 4, C = 3 };
    int32_t y[N], fold[N];
    for (int i = 0; i < N; i++)
        y[i] = i % 10 == 0 ? 2 : (i % 3 == 0 ? 1 : 0); /* unbalanced: about 10 / 30 / 60 % */
    assert_int_equal(lp_kfold_stratified(y, N, K, 9, fold, NULL), LP_OK);
    size_t cnt[K][C] = {{0}}, tot[K] = {0};
    for (int i = 0; i < N; i++) {
        cnt[fold[i]][y[i]]++;
        tot[fold[i]]++;
    }
    for (int f = 1; f < K; f++) {
        assert_true(labs((long)tot[f] - (long)tot[0]) <= 1);
        for (int c = 0; c < C; c++)
            for (int g = 0; g < f; g++)
                assert_true(labs((long)cnt[f][c] - (long)cnt[g][c]) <= 1);
    }
    int32_t again[N];
    assert_int_equal(lp_kfold_stratified(y, N, K, 9, again, NULL), LP_OK);
    assert_memory_equal(fold, again, sizeof fold);

    lp_err err;
    assert_int_equal(lp_kfold_split(3, 4, 1, fold, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "k = 4"));
    assert_int_equal(lp_kfold_split(10, 1, 1, fold, &err), LP_EINVAL);
    y[7] = -1;
    assert_int_equal(lp_kfold_stratified(y, N, K, 9, fold, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "y[7]"));
    int32_t bad[3] = {0, 5, 1};
    assert_int_equal(lp_kfold_indices(bad, 3, 2, 0, NULL, NULL, NULL, NULL, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "fold[1]"));
}

/* Miscalibrated binary data: true P(y=1) = sigmoid(t), the model reports sigmoid(3 t + 1). */
static void make_binary(size_t n, uint64_t seed, double *score, double *prob, int32_t *y)
{
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        double t = 2 * lp_rng_normal(&rng);
        y[i] = lp_rng_uniform(&rng) < 1 / (1 + exp(-t));
        score[i] = round((3 * t + 1) * 10) / 10; /* ties */
        prob[i] = 1 / (1 + exp(-score[i]));
    }
}

static void roundtrip(const lp_calibrator *cal, const double *x, size_t n, size_t cols)
{
    lp_buf b;
    lp_buf_init(&b);
    lp_calibrator_save(cal, &b);
    assert_int_equal(lp_buf_status(&b, NULL), LP_OK);
    lp_reader r;
    lp_reader_init(&r, b.data, b.len, "test calibrator");
    lp_calibrator *back = NULL;
    lp_err err;
    assert_int_equal(lp_calibrator_load(&r, &back, &err), LP_OK);
    assert_int_equal(r.pos, b.len);
    assert_int_equal(lp_calibrator_get_kind(back), lp_calibrator_get_kind(cal));
    double *p1 = malloc(n * cols * sizeof *p1), *p2 = malloc(n * cols * sizeof *p2);
    assert_int_equal(lp_calibrator_predict(cal, x, n, cols, p1, NULL), LP_OK);
    assert_int_equal(lp_calibrator_predict(back, x, n, cols, p2, NULL), LP_OK);
    assert_memory_equal(p1, p2, n * cols * sizeof *p1); /* bit-exact */
    lp_calibrator_free(back);
    /* every truncation is rejected with LP_EFORMAT, never a crash */
    for (size_t cut = 0; cut < b.len; cut++) {
        lp_reader_init(&r, b.data, cut, "truncated calibrator");
        back = (lp_calibrator *)&r; /* must be reset to NULL */
        assert_int_equal(lp_calibrator_load(&r, &back, &err), LP_EFORMAT);
        assert_null(back);
        assert_non_null(strstr(err.msg, "truncated calibrator"));
    }
    /* single-byte corruptions: rejected, or a valid calibrator (a flipped mantissa bit) */
    for (size_t at = 0; at < b.len; at++) {
        uint8_t *c = malloc(b.len);
        memcpy(c, b.data, b.len);
        c[at] ^= 0x80;
        lp_reader_init(&r, c, b.len, "corrupt calibrator");
        lp_status st = lp_calibrator_load(&r, &back, &err);
        assert_true(st == LP_OK || st == LP_EFORMAT || st == LP_EVERSION);
        if (at < 5)
            assert_int_equal(st, LP_EFORMAT); /* magic */
        if (st == LP_OK && lp_calibrator_n_cols(back) == cols) /* k itself may be hit */
            assert_int_equal(lp_calibrator_predict(back, x, 1, cols, p2, NULL), LP_OK);
        lp_calibrator_free(back);
        free(c);
    }
    free(p1);
    free(p2);
    lp_buf_free(&b);
}

static void test_binary_calibrators(void **state)
{
    (void)state;
    enum { N = 3000 };
    double *s = malloc(N * sizeof *s), *p = malloc(N * sizeof *p), *q = malloc(N * sizeof *q);
    int32_t *y = malloc(N * sizeof *y);
    make_binary(N, 11, s, p, y);
    double raw, cal_ll, raw_ece, cal_ece;
    assert_int_equal(lp_metrics_log_loss(y, p, N, 1, &raw, NULL), LP_OK);
    assert_int_equal(lp_metrics_ece(y, p, N, 1, 15, &raw_ece, NULL), LP_OK);
    for (int kind = 0; kind < 2; kind++) {
        lp_calibrator *cal = NULL;
        lp_err err;
        lp_status st = kind ? lp_calibrator_fit_isotonic(s, y, N, &cal, &err)
                            : lp_calibrator_fit_platt(s, y, N, &cal, &err);
        assert_int_equal(st, LP_OK);
        assert_int_equal(lp_calibrator_n_cols(cal), 1);
        assert_int_equal(lp_calibrator_predict(cal, s, N, 1, q, &err), LP_OK);
        assert_int_equal(lp_metrics_log_loss(y, q, N, 1, &cal_ll, NULL), LP_OK);
        assert_int_equal(lp_metrics_ece(y, q, N, 1, 15, &cal_ece, NULL), LP_OK);
        /* on its own training data calibration does not increase log-loss; here the raw
         * model is clearly overconfident so both must win by a margin */
        assert_true(cal_ll < raw - 0.05);
        assert_true(cal_ece < raw_ece);
        /* the map is monotone in the score */
        double grid[200], out[200];
        for (int i = 0; i < 200; i++)
            grid[i] = -20 + 0.2 * i;
        assert_int_equal(lp_calibrator_predict(cal, grid, 200, 1, out, NULL), LP_OK);
        for (int i = 1; i < 200; i++)
            assert_true(out[i] >= out[i - 1] && out[i] >= 0 && out[i] <= 1);
        if (!kind) {
            double A, B;
            lp_calibrator_params(cal, &A, &B);
            /* true map is sigmoid((s - 1) / 3): A near 1/3, B near -1/3 */
            assert_true(fabs(A - 1.0 / 3) < 0.05 && fabs(B + 1.0 / 3) < 0.1);
        }
        roundtrip(cal, s, 50, 1);
        double nan_in[2] = {0.5, NAN};
        assert_int_equal(lp_calibrator_predict(cal, nan_in, 2, 1, out, &err), LP_EINVAL);
        assert_non_null(strstr(err.msg, "[1, 0]"));
        assert_int_equal(lp_calibrator_predict(cal, grid, 2, 3, out, &err), LP_EINVAL);
        lp_calibrator_free(cal);
    }
    lp_calibrator_free(NULL);
    free(s);
    free(p);
    free(q);
    free(y);
}

static void test_temperature(void **state)
{
    (void)state;
    enum { N = 2000, K = 3 };
    double *z = malloc(N * K * sizeof *z), *pr = malloc(N * K * sizeof *pr);
    double *pc = malloc(N * K * sizeof *pc);
    int32_t *y = malloc(N * sizeof *y);
    lp_rng rng;
    lp_rng_seed(&rng, 5);
    for (int i = 0; i < N; i++) {
        y[i] = (int32_t)lp_rng_below(&rng, K);
        for (int c = 0; c < K; c++) /* calibrated at T = 1, then made 4x overconfident */
            z[i * K + c] = 4 * (lp_rng_normal(&rng) + (c == y[i] ? 1.0 : 0.0));
    }
    lp_calibrator *cal = NULL;
    lp_err err;
    assert_int_equal(lp_calibrator_fit_temperature(z, y, N, K, &cal, &err), LP_OK);
    double T, raw, cal_ll;
    lp_calibrator_params(cal, &T, NULL);
    assert_true(T > 2.5 && T < 6);
    /* T = 1 predictions are the plain softmax: compare log-loss with and without T */
    assert_int_equal(lp_calibrator_predict(cal, z, N, K, pc, NULL), LP_OK);
    for (int i = 0; i < N; i++) {
        double mx = fmax(fmax(z[i * K], z[i * K + 1]), z[i * K + 2]), se = 0;
        for (int c = 0; c < K; c++)
            se += (pr[i * K + c] = exp(z[i * K + c] - mx));
        for (int c = 0; c < K; c++)
            pr[i * K + c] /= se;
        assert_true(fabs(pc[i * K] + pc[i * K + 1] + pc[i * K + 2] - 1) < 1e-12);
    }
    assert_int_equal(lp_metrics_log_loss(y, pr, N, K, &raw, NULL), LP_OK);
    assert_int_equal(lp_metrics_log_loss(y, pc, N, K, &cal_ll, NULL), LP_OK);
    assert_true(cal_ll < raw);
    /* in-place prediction (out aliases x) gives the same numbers */
    memcpy(pr, z, N * K * sizeof *z);
    assert_int_equal(lp_calibrator_predict(cal, pr, N, K, pr, NULL), LP_OK);
    assert_memory_equal(pr, pc, N * K * sizeof *pr);
    roundtrip(cal, z, 20, K);
    assert_int_equal(lp_calibrator_predict(cal, z, N, 2, pc, &err), LP_EINVAL);
    lp_calibrator_free(cal);

    z[4] = INFINITY;
    assert_int_equal(lp_calibrator_fit_temperature(z, y, N, K, &cal, &err), LP_EINVAL);
    assert_null(cal);
    assert_non_null(strstr(err.msg, "[1, 1]"));
    assert_int_equal(lp_calibrator_fit_temperature(z, y, N, 1, &cal, &err), LP_EINVAL);
    free(z);
    free(pr);
    free(pc);
    free(y);
}

static void test_bad_fits(void **state)
{
    (void)state;
    double s[4] = {0.1, 0.2, NAN, 0.4};
    int32_t y[4] = {0, 1, 0, 1}, one[4] = {1, 1, 1, 1}, bad[4] = {0, 3, 0, 1};
    lp_calibrator *cal = NULL;
    lp_err err;
    assert_int_equal(lp_calibrator_fit_platt(s, y, 4, &cal, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "score[2]"));
    s[2] = 0.3;
    assert_int_equal(lp_calibrator_fit_platt(s, one, 4, &cal, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "one class"));
    assert_int_equal(lp_calibrator_fit_isotonic(s, bad, 4, &cal, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "y[1] = 3"));
    assert_int_equal(lp_calibrator_fit_isotonic(s, y, 0, &cal, &err), LP_EINVAL);
    assert_null(cal);
    /* one class is fine for isotonic: the fit is constant */
    assert_int_equal(lp_calibrator_fit_isotonic(s, one, 4, &cal, &err), LP_OK);
    double out[2], q[2] = {-5, 5};
    assert_int_equal(lp_calibrator_predict(cal, q, 2, 1, out, NULL), LP_OK);
    assert_true(out[0] == 1 && out[1] == 1);
    lp_calibrator_free(cal);
    /* a future format version is LP_EVERSION */
    uint8_t bytes[] = {'L', 'P', 'C', 'A', 'L', 9, 0, 0, 0, 1};
    lp_reader r;
    lp_reader_init(&r, bytes, sizeof bytes, "model.lpm calibrator");
    assert_int_equal(lp_calibrator_load(&r, &cal, &err), LP_EVERSION);
    assert_non_null(strstr(err.msg, "model.lpm calibrator"));
    /* a huge knot count with few bytes left is refused before allocating */
    lp_buf b;
    lp_buf_init(&b);
    lp_buf_put(&b, "LPCAL", 5);
    lp_buf_u32(&b, 1);
    lp_buf_u8(&b, LP_CALIBRATOR_KIND_ISOTONIC);
    lp_buf_u64(&b, 1);
    lp_buf_u64(&b, UINT64_MAX / 2);
    lp_buf_f64(&b, 0);
    lp_buf_f64(&b, 0);
    lp_reader_init(&r, b.data, b.len, "huge");
    assert_int_equal(lp_calibrator_load(&r, &cal, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "knot count"));
    lp_buf_free(&b);
}

/* Two 1-D Gaussian classes N(-1, 1) and N(+1, 1): the exact posterior under prior q is
 * q1 e^{x} / (q0 e^{-x} + q1 e^{x}) (the shared factors cancel). */
static void gauss_posterior(double x, const double *q, double *p)
{
    double a = q[0] * exp(-x), b = q[1] * exp(x);
    p[0] = a / (a + b), p[1] = b / (a + b);
}

static void test_prior_shift(void **state)
{
    (void)state;
    lp_err err;
    const double half[2] = {0.5, 0.5}, mix[2] = {0.8, 0.2};
    /* apply: the posterior under `half` re-weighted to `mix` is the posterior under `mix` */
    enum { NX = 9 };
    double p[NX * 2], want[NX * 2];
    for (int i = 0; i < NX; i++) {
        double x = -2.0 + 0.5 * i;
        gauss_posterior(x, half, p + 2 * i);
        gauss_posterior(x, mix, want + 2 * i);
    }
    assert_int_equal(lp_prior_shift_apply(p, NX, 2, half, mix, p, &err), LP_OK); /* in place */
    for (int i = 0; i < NX * 2; i++)
        assert_true(fabs(p[i] - want[i]) < 1e-12);
    /* from == to leaves the rows unchanged */
    double same[2 * NX];
    assert_int_equal(lp_prior_shift_apply(p, NX, 2, mix, mix, same, &err), LP_OK);
    for (int i = 0; i < NX * 2; i++)
        assert_true(fabs(same[i] - p[i]) < 1e-15);

    /* EM: 20,000 draws with 20% of class 1, posteriors computed under 50/50: the estimate
     * lands within sampling error (sd of the mix ~0.003 here) of 0.2, and starting from
     * the true mix it stays there */
    enum { N = 20000 };
    double *pp = malloc(N * 2 * sizeof *pp);
    assert_non_null(pp);
    lp_rng rng;
    lp_rng_seed(&rng, 7);
    size_t ones = 0;
    for (int i = 0; i < N; i++) {
        int c = lp_rng_uniform(&rng) < 0.2;
        ones += (size_t)c;
        gauss_posterior((c ? 1.0 : -1.0) + lp_rng_normal(&rng), half, pp + 2 * i);
    }
    double est[2];
    int iters = 0;
    assert_int_equal(lp_prior_shift_em(pp, N, 2, half, 1000, 1e-9, est, &iters, &err), LP_OK);
    assert_true(iters > 1 && iters < 1000);
    assert_true(fabs(est[0] + est[1] - 1) < 1e-12);
    assert_true(fabs(est[1] - (double)ones / N) < 0.015);
    /* the mean posterior under 50/50 is pulled toward 0.5: EM must move away from it */
    double mean1 = 0;
    for (int i = 0; i < N; i++)
        mean1 += pp[2 * i + 1] / N;
    assert_true(fabs(est[1] - 0.2) < fabs(mean1 - 0.2));
    /* one round from an unshifted sample (50/50 draws) stays near 50/50 */
    for (int i = 0; i < N; i++) {
        int c = lp_rng_uniform(&rng) < 0.5;
        gauss_posterior((c ? 1.0 : -1.0) + lp_rng_normal(&rng), half, pp + 2 * i);
    }
    assert_int_equal(lp_prior_shift_em(pp, N, 2, half, 1000, 1e-9, est, NULL, &err), LP_OK);
    assert_true(fabs(est[1] - 0.5) < 0.02);
    free(pp);

    /* bad input, each named */
    const double bad_sum[2] = {0.5, 0.6}, zero[2] = {0.0, 1.0};
    double q[2] = {0.5, 0.5}, out[2];
    assert_int_equal(lp_prior_shift_apply(q, 1, 2, bad_sum, half, out, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "sums to"));
    assert_int_equal(lp_prior_shift_apply(q, 1, 2, half, zero, out, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "'to' prior of class 0"));
    q[1] = NAN;
    assert_int_equal(lp_prior_shift_apply(q, 1, 2, half, mix, out, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "row 0, class 1"));
    q[0] = q[1] = 0;
    assert_int_equal(lp_prior_shift_apply(q, 1, 2, half, mix, out, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "no probability mass"));
    assert_int_equal(lp_prior_shift_em(q, 0, 2, half, 10, 1e-6, out, NULL, &err), LP_EINVAL);
    assert_int_equal(lp_prior_shift_em(q, 1, 1, half, 10, 1e-6, out, NULL, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "at least 2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kfold_partition),    cmocka_unit_test(test_kfold_stratified),
        cmocka_unit_test(test_binary_calibrators), cmocka_unit_test(test_temperature),
        cmocka_unit_test(test_bad_fits),           cmocka_unit_test(test_prior_shift),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
