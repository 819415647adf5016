/*
 * test_mf_table.c - the mf family trained through a kernel table (device = a table name:
 * mf_device.c over als_solve / bpr_epoch) against the CPU solvers of mf.c, and the two table
 * ops themselves: ALS factors match the CPU solver's on a seeded problem; every als_solve row
 * satisfies its normal equations; BPR on the table reaches the CPU solver's held-out AUC in
 * both modes, deterministic runs are bit-identical; the shared BPR draw gives negatives outside
 * the user's history; bpr_epoch with batch 1 is the sequential epoch (host tables); bad
 * arguments are refused. Runs on "ref" here; tests/gpu/test_cuda_mf.c runs it on "cuda".
 */
#include "backend_util.h"

#include "backend/backend_impl.h"
#include "lepton/mf.h"

#ifndef LP_MF_TABLE
#define LP_MF_TABLE "ref"
#endif
/* Run first in main (the GPU test skips there without a device). */
#ifndef LP_MF_TABLE_SETUP
#define LP_MF_TABLE_SETUP() ((void)0)
#endif

#define U 150
#define I 90
#define PER_USER 12
/* ALS factors after 3 sweeps, table against the CPU solver: G from a float sgemm instead of a
 * double Gram rounded to float, and a different Cholesky order (right-looking on the device),
 * each ~1e-7 relative per solve; three sweeps of well-conditioned solves (lambda 0.05 on a
 * 16-factor Gram of O(10)) keep the NMSE near 1e-10, bounded here with room. A wrong system (a
 * missing alpha, the ridge on the wrong side) is off by 1e-2 or more. */
#define TOL_ALS_NMSE 1e-7
/* BPR on the table may differ from the CPU solver by sampling noise only. */
#define TOL_AUC_DROP 0.03
#define MIN_AUC 0.75

static int32_t g_test[U]; /* held-out item per user */

/* Two taste groups: user u likes items of group u % 2 (10 of their 12 items), 2 at random. */
static lp_mf_data *make_data(void)
{
    lp_mf_data *d = lp_mf_data_new();
    assert_non_null(d);
    lp_rng rng;
    lp_rng_seed(&rng, 11);
    for (int u = 0; u < U; u++) {
        char us[16], is[16];
        snprintf(us, sizeof us, "u%d", u);
        int seen[I] = {0};
        for (int t = 0; t <= PER_USER; t++) {
            int it;
            do {
                it = t < 10 || t == PER_USER ? 2 * (int)lp_rng_below(&rng, I / 2) + u % 2
                                             : (int)lp_rng_below(&rng, I);
            } while (seen[it]);
            seen[it] = 1;
            if (t == PER_USER) { /* held out */
                g_test[u] = it;
                break;
            }
            snprintf(is, sizeof is, "i%d", it);
            assert_int_equal(lp_mf_data_add(d, us, is, 1.0f + (float)lp_rng_below(&rng, 3), NULL),
                             LP_OK);
        }
    }
    return d;
}

static lp_mf *fit(const lp_mf_data *d, lp_mf_kind kind, const char *device, bool det)
{
    lp_mf_opts o = lp_mf_opts_default();
    o.kind = kind;
    o.factors = 16;
    o.iterations = kind == LP_MF_KIND_ALS ? 3 : 30;
    if (kind == LP_MF_KIND_BPR)
        o.regularization = 0.01f;
    o.seed = 7;
    o.threads = 1;
    o.device = device;
    o.deterministic = det;
    lp_mf *m = NULL;
    lp_err err;
    if (lp_mf_fit(d, &o, &m, &err) != LP_OK)
        fail_msg("fit %s on %s: %s", lp_mf_kind_name(kind), device ? device : "cpu", err.msg);
    assert_null(lp_mf_model_opts(m)->device); /* no dangling pointer in the model */
    return m;
}

/* sum (g - w)^2 / sum w^2. */
static double nmse(const float *got, const float *want, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)got[i] - want[i];
        num += e * e;
        den += (double)want[i] * want[i];
    }
    return den > 0 ? num / den : num;
}

static double factor_nmse(const lp_mf *a, const lp_mf *b)
{
    size_t k = lp_mf_dim(a), nu = lp_mf_n_users(a), ni = lp_mf_n_items(a);
    double e = nmse(lp_mf_user_factors(a, 0), lp_mf_user_factors(b, 0), nu * k);
    double f = nmse(lp_mf_item_factors(a, 0), lp_mf_item_factors(b, 0), ni * k);
    return e > f ? e : f;
}

/* Held-out AUC: per user, the share of items outside the training history ranked below the
 * held-out item by x_u . y_i. */
static double auc(const lp_mf *m, const lp_mf_data *d)
{
    double total = 0;
    size_t k = lp_mf_dim(m);
    for (int u = 0; u < U; u++) {
        char us[16], is[16];
        snprintf(us, sizeof us, "u%d", u);
        snprintf(is, sizeof is, "i%d", g_test[u]);
        long mu = lp_mf_user_index(m, us), mt = lp_mf_item_index(m, is);
        assert_true(mu >= 0);
        if (mt < 0) { /* never trained on: counts as chance */
            total += 0.5;
            continue;
        }
        const int32_t *hist;
        const float *hw;
        size_t nh = lp_mf_user_history(m, (size_t)mu, &hist, &hw);
        const float *x = lp_mf_user_factors(m, (size_t)mu);
        double st = 0, below = 0, n = 0;
        for (size_t a = 0; a < k; a++)
            st += (double)x[a] * lp_mf_item_factors(m, (size_t)mt)[a];
        for (size_t i = 0; i < lp_mf_n_items(m); i++) {
            bool in = (long)i == mt;
            for (size_t h = 0; h < nh && !in; h++)
                in = hist[h] == (int32_t)i;
            if (in)
                continue;
            double s = 0;
            for (size_t a = 0; a < k; a++)
                s += (double)x[a] * lp_mf_item_factors(m, i)[a];
            below += s < st ? 1 : s == st ? 0.5 : 0;
            n++;
        }
        total += n ? below / n : 0.5;
    }
    (void)d;
    return total / U;
}

static void test_als_matches_cpu_solver(void **state)
{
    (void)state;
    lp_mf_data *d = make_data();
    lp_mf *c = fit(d, LP_MF_KIND_ALS, NULL, false), *t = fit(d, LP_MF_KIND_ALS, LP_MF_TABLE, false);
    double e = factor_nmse(t, c);
    printf("ALS on %s vs the CPU solver: factor NMSE %.3g (bound %.g)\n", LP_MF_TABLE, e,
           TOL_ALS_NMSE);
    assert_true(e < TOL_ALS_NMSE);
    /* ALS on a table is repeatable */
    lp_mf *t2 = fit(d, LP_MF_KIND_ALS, LP_MF_TABLE, false);
    assert_memory_equal(lp_mf_user_factors(t, 0), lp_mf_user_factors(t2, 0),
                        U * lp_mf_dim(t) * sizeof(float));
    lp_mf_free(c), lp_mf_free(t), lp_mf_free(t2);
    lp_mf_data_free(d);
}

/* Random CSR problem: every solved row must satisfy (G + lambda I + sum alpha w f f^T) x = b. */
static void test_als_normal_equations(void **state)
{
    (void)state;
    const lp_backend *be = NULL;
    assert_int_equal(lp_backend_get(LP_MF_TABLE, &be, NULL), LP_OK);
    enum { NR = 40, NF = 30, K = 9 };
    lp_rng rng;
    lp_rng_seed(&rng, 21);
    int32_t ptr[NR + 1], col[NR * NF];
    float w[NR * NF];
    size_t nnz = 0;
    ptr[0] = 0;
    for (int r = 0; r < NR; r++) {
        for (int c = 0; c < NF; c++)
            if (lp_rng_uniform(&rng) < 0.2 || r == 0) { /* row 0 dense; some rows empty */
                col[nnz] = c;
                w[nnz++] = (float)(0.5 + 3 * lp_rng_uniform(&rng));
            }
        ptr[r + 1] = (int32_t)nnz;
    }
    float *f = bu_rand(&rng, NF * K, -1, 1), g[K * K], x[NR * K] = {0};
    for (int a = 0; a < K; a++)
        for (int b = 0; b < K; b++) {
            double s = 0;
            for (int t = 0; t < NF; t++)
                s += (double)f[t * K + a] * f[t * K + b];
            g[a * K + b] = (float)s;
        }
    float lambda = 0.1f, alpha = 1.5f;
    int32_t *dp = bu_up(be, ptr, sizeof ptr), *dc = bu_up(be, col, nnz * sizeof(int32_t));
    float *dw = bu_upf(be, w, nnz), *df = bu_upf(be, f, NF * K), *dg = bu_upf(be, g, K * K),
          *dx = bu_upf(be, x, NR * K);
    lp_err err;
    assert_int_equal(be->als_solve(be, NR, NF, K, nnz, dp, dc, dw, df, dg, lambda, alpha, dx, &err),
                     LP_OK);
    float *got = bu_downf(be, dx, NR * K);
    memcpy(x, got, sizeof x);
    free(got);
    double worst = 0;
    for (int r = 0; r < NR; r++) {
        double A[K][K], b[K] = {0};
        for (int a = 0; a < K; a++)
            for (int c = 0; c < K; c++)
                A[a][c] = g[a * K + c] + (a == c ? lambda : 0);
        for (int32_t t = ptr[r]; t < ptr[r + 1]; t++) {
            const float *fj = f + col[t] * K;
            for (int a = 0; a < K; a++) {
                b[a] += (1 + alpha * w[t]) * fj[a];
                for (int c = 0; c < K; c++)
                    A[a][c] += alpha * w[t] * fj[a] * fj[c];
            }
        }
        double num = 0, den = 0;
        for (int a = 0; a < K; a++) {
            double s = 0;
            for (int c = 0; c < K; c++)
                s += A[a][c] * x[r * K + c];
            num += (s - b[a]) * (s - b[a]);
            den += b[a] * b[a] + 1e-30;
        }
        double rel = sqrt(num / den);
        worst = rel > worst ? rel : worst;
    }
    printf("als_solve on %s: worst relative residual %.3g\n", LP_MF_TABLE, worst);
    assert_true(worst < 1e-5); /* float accumulation and float x: ~1e-7 */
    void *all[] = {dp, dc, dw, df, dg, dx};
    for (size_t i = 0; i < 6; i++)
        bu_free(be, all[i]);
    free(f);
    /* an SPD failure is LP_ENUMERIC naming the row: lambda 0 and an empty row make A = G, whose
     * rank is at most NF = 30 >= K: use a rank-deficient G instead (all zero) */
    float zero[K * K] = {0};
    int32_t p2[2] = {0, 0};
    dp = bu_up(be, p2, sizeof p2);
    dg = bu_upf(be, zero, K * K);
    dx = bu_upf(be, zero, K);
    df = bu_upf(be, zero, K);
    assert_int_equal(be->als_solve(be, 1, 1, K, 0, dp, NULL, NULL, df, dg, 0, 1, dx, &err),
                     LP_ENUMERIC);
    assert_non_null(strstr(err.msg, "row 0"));
    bu_free(be, dp), bu_free(be, dg), bu_free(be, dx), bu_free(be, df);
}

static void test_bpr_quality(void **state)
{
    (void)state;
    lp_mf_data *d = make_data();
    lp_mf *c = fit(d, LP_MF_KIND_BPR, NULL, false);
    lp_mf *h = fit(d, LP_MF_KIND_BPR, LP_MF_TABLE, false);
    lp_mf *t = fit(d, LP_MF_KIND_BPR, LP_MF_TABLE, true),
          *t2 = fit(d, LP_MF_KIND_BPR, LP_MF_TABLE, true);
    double ac = auc(c, d), ah = auc(h, d), at = auc(t, d);
    printf("BPR held-out AUC: cpu solver %.4f, %s %.4f, %s deterministic %.4f\n", ac, LP_MF_TABLE,
           ah, LP_MF_TABLE, at);
    assert_true(ac > MIN_AUC);
    assert_true(ah > ac - TOL_AUC_DROP);
    assert_true(at > ac - TOL_AUC_DROP);
    /* deterministic: bit-identical runs */
    size_t k = lp_mf_dim(t);
    assert_memory_equal(lp_mf_user_factors(t, 0), lp_mf_user_factors(t2, 0),
                        lp_mf_n_users(t) * k * sizeof(float));
    assert_memory_equal(lp_mf_item_factors(t, 0), lp_mf_item_factors(t2, 0),
                        lp_mf_n_items(t) * k * sizeof(float));
    /* the user bias column stays exactly 1 */
    for (size_t u = 0; u < lp_mf_n_users(t); u++)
        assert_true(lp_mf_user_factors(t, u)[k - 1] == 1.0f &&
                    lp_mf_user_factors(h, u)[k - 1] == 1.0f);
    lp_mf_free(c), lp_mf_free(h), lp_mf_free(t), lp_mf_free(t2);
    lp_mf_data_free(d);
}

static void test_bpr_draw(void **state)
{
    (void)state;
    /* users 0..2 with histories {0,1,2}, {3}, {0..8} of 10 items */
    int32_t ptr[4] = {0, 3, 4, 13}, col[13] = {0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    int32_t row_of[13] = {0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2};
    size_t found = 0, by_epoch_differs = 0;
    for (uint64_t s = 0; s < 2000; s++) {
        int32_t u, i, j, u2, i2, j2;
        bool ok = lp_bk_bpr_sample(3, 1, s, 13, 10, ptr, col, row_of, &u, &i, &j);
        assert_true(ok == lp_bk_bpr_sample(3, 1, s, 13, 10, ptr, col, row_of, &u2, &i2, &j2));
        bool in_i = false;
        for (int32_t t = ptr[u]; t < ptr[u + 1]; t++)
            in_i |= col[t] == i;
        assert_true(in_i);
        if (ok) {
            assert_true(u == u2 && i == i2 && j == j2);
            for (int32_t t = ptr[u]; t < ptr[u + 1]; t++)
                assert_int_not_equal(col[t], j);
            assert_true(j >= 0 && j < 10);
            found++;
        }
        int32_t u3, i3, j3;
        lp_bk_bpr_sample(3, 2, s, 13, 10, ptr, col, row_of, &u3, &i3, &j3);
        by_epoch_differs += u3 != u || i3 != i;
    }
    /* user 2 leaves one negative of 10: P(no hit in 16) = 0.9^16 = 0.19 of its 9/13 share */
    assert_true(found > 1500 && found < 2000);
    assert_true(by_epoch_differs > 1000);
}

/* bpr_epoch in deterministic mini-batches on the table against ref: the same draws and the same
 * update order, so the factors differ by the rounding of z (double sums in another order) and
 * of fused multiply-adds only. A wrong step (sign, the bias column, a stale read) is O(1e-2). */
#define TOL_BPR_EPOCH_NMSE 1e-9

static void test_bpr_epoch_parity(void **state)
{
    (void)state;
    const lp_backend *ref = lp_backend_ref(), *be = NULL;
    assert_int_equal(lp_backend_get(LP_MF_TABLE, &be, NULL), LP_OK);
    enum { NU = 50, NI = 40, K = 9 };
    lp_rng rng;
    lp_rng_seed(&rng, 8);
    int32_t ptr[NU + 1], col[NU * NI], row_of[NU * NI];
    size_t nnz = 0;
    ptr[0] = 0;
    for (int u = 0; u < NU; u++) {
        for (int i = 0; i < NI; i++)
            if (lp_rng_uniform(&rng) < 0.25 || i == u % NI) {
                row_of[nnz] = u;
                col[nnz++] = i;
            }
        ptr[u + 1] = (int32_t)nnz;
    }
    float *x0 = bu_rand(&rng, NU * K, -0.3, 0.3), *y0 = bu_rand(&rng, NI * K, -0.3, 0.3);
    for (int u = 0; u < NU; u++)
        x0[u * K + K - 1] = 1.0f;
    float *xr[2], *yr[2];
    double loss[2];
    size_t used[2];
    const lp_backend *tabs[2] = {ref, be};
    for (int t = 0; t < 2; t++) {
        const lp_backend *b = tabs[t];
        int32_t *dp = bu_up(b, ptr, sizeof ptr), *dc = bu_up(b, col, nnz * sizeof(int32_t)),
                *dr = bu_up(b, row_of, nnz * sizeof(int32_t));
        float *dx = bu_upf(b, x0, NU * K), *dy = bu_upf(b, y0, NI * K);
        lp_err err;
        for (uint64_t ep = 1; ep <= 3; ep++)
            assert_int_equal(b->bpr_epoch(b, NU, NI, K, nnz, dp, dc, dr, 5, ep, 3 * nnz, 0.05f,
                                          0.01f, 100, dx, dy, &loss[t], &used[t], &err),
                             LP_OK);
        xr[t] = bu_downf(b, dx, NU * K);
        yr[t] = bu_downf(b, dy, NI * K);
        bu_free(b, dp), bu_free(b, dc), bu_free(b, dr), bu_free(b, dx), bu_free(b, dy);
    }
    double ex = nmse(xr[1], xr[0], NU * K), ey = nmse(yr[1], yr[0], NI * K);
    printf("bpr_epoch batched %s vs ref: NMSE users %.3g items %.3g; loss %.9g vs %.9g\n",
           LP_MF_TABLE, ex, ey, loss[1], loss[0]);
    assert_true(ex < TOL_BPR_EPOCH_NMSE && ey < TOL_BPR_EPOCH_NMSE);
    assert_true(used[0] == used[1] && used[0] > 0);
    assert_true(fabs(loss[1] - loss[0]) <= 1e-9 * (double)used[0] + 1e-6 * fabs(loss[0]));
    for (int t = 0; t < 2; t++)
        free(xr[t]), free(yr[t]);
    free(x0), free(y0);
}

#ifndef LP_MF_TABLE_IS_DEVICE
/* Host tables: batch 1 (each step from the factors left by the previous one) is the
 * sequential epoch bit for bit; a larger batch is not. */
static void test_bpr_batch1_sequential(void **state)
{
    (void)state;
    const lp_backend *be = lp_backend_ref();
    int32_t ptr[4] = {0, 3, 4, 13}, col[13] = {0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    int32_t row_of[13] = {0, 0, 0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2};
    enum { K = 5 };
    lp_rng rng;
    lp_rng_seed(&rng, 4);
    float *x0 = bu_rand(&rng, 3 * K, -0.3, 0.3), *y0 = bu_rand(&rng, 10 * K, -0.3, 0.3);
    float xa[3 * K], ya[10 * K], xb[3 * K], yb[10 * K], xc[3 * K], yc[10 * K];
    memcpy(xa, x0, sizeof xa), memcpy(xb, x0, sizeof xb), memcpy(xc, x0, sizeof xc);
    memcpy(ya, y0, sizeof ya), memcpy(yb, y0, sizeof yb), memcpy(yc, y0, sizeof yc);
    double la, lb, lc;
    size_t na, nb, nc;
    lp_err err;
    assert_int_equal(be->bpr_epoch(be, 3, 10, K, 13, ptr, col, row_of, 9, 1, 200, 0.1f, 0.01f, 0,
                                   xa, ya, &la, &na, &err),
                     LP_OK);
    assert_int_equal(be->bpr_epoch(be, 3, 10, K, 13, ptr, col, row_of, 9, 1, 200, 0.1f, 0.01f, 1,
                                   xb, yb, &lb, &nb, &err),
                     LP_OK);
    assert_int_equal(be->bpr_epoch(be, 3, 10, K, 13, ptr, col, row_of, 9, 1, 200, 0.1f, 0.01f, 64,
                                   xc, yc, &lc, &nc, &err),
                     LP_OK);
    assert_memory_equal(xa, xb, sizeof xa);
    assert_memory_equal(ya, yb, sizeof ya);
    assert_true(la == lb && na == nb && na > 100);
    assert_true(memcmp(ya, yc, sizeof ya) != 0);
    assert_true(na == nc); /* same draws */
    free(x0), free(y0);
    /* bad CSR and sizes on a host table */
    int32_t bad_col[13];
    memcpy(bad_col, col, sizeof bad_col);
    bad_col[5] = 77;
    assert_int_equal(be->bpr_epoch(be, 3, 10, K, 13, ptr, bad_col, row_of, 9, 1, 10, 0.1f, 0.01f, 0,
                                   xa, ya, &la, &na, &err),
                     LP_EINVAL);
    assert_non_null(strstr(err.msg, "col[5]"));
    assert_int_equal(be->bpr_epoch(be, 3, 10, 1, 13, ptr, col, row_of, 9, 1, 10, 0.1f, 0.01f, 0, xa,
                                   ya, &la, &na, &err),
                     LP_EINVAL);
    assert_int_equal(
        be->als_solve(be, 3, 10, K, 13, ptr, bad_col, (float *)ya, ya, ya, 0.1f, 1, xa, &err),
        LP_EINVAL);
    assert_non_null(strstr(err.msg, "col[5]"));
}
#endif

static void test_opts(void **state)
{
    (void)state;
    lp_mf_opts o = lp_mf_opts_default();
    lp_err err;
    o.device = "tpu";
    assert_int_equal(lp_mf_opts_check(&o, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "opts.device"));
    o.device = "auto";
    assert_int_equal(lp_mf_opts_check(&o, &err), LP_OK);
}

int main(void)
{
    LP_MF_TABLE_SETUP();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_als_matches_cpu_solver),
        cmocka_unit_test(test_als_normal_equations),
        cmocka_unit_test(test_bpr_quality),
        cmocka_unit_test(test_bpr_draw),
        cmocka_unit_test(test_bpr_epoch_parity),
#ifndef LP_MF_TABLE_IS_DEVICE
        cmocka_unit_test(test_bpr_batch1_sequential),
#endif
        cmocka_unit_test(test_opts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
