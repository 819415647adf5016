/*
 * test_mf_als.c - numerics of implicit ALS (Hu, Koren & Volinsky 2008): the weighted objective
 * never rises with exact (Cholesky) solves; conjugate gradient with enough steps follows the
 * Cholesky trajectory and with 3 steps reaches nearly the same objective; folding a training
 * user's history back in reproduces their vector; the item-based explanation of a score
 * (section 5) sums to the score and ranks the largest contribution first; a prepared user
 * (lp_mf_user) answers bit for bit as the plain query; the fit is the same for 1 and 2 threads.
 */
#include "lp_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 60 users x 50 items with 3 latent tastes and weights 1..5 */
static lp_mf_data *latent_data(void)
{
    lp_mf_data *d = lp_mf_data_new();
    lp_rng rng;
    lp_rng_seed(&rng, 11);
    char u[16], it[16];
    for (int user = 0; user < 60; user++) {
        int g = user % 3;
        snprintf(u, sizeof u, "u%d", user);
        for (int t = 0; t < 12; t++) {
            int item = lp_rng_below(&rng, 5) == 0 ? (int)lp_rng_below(&rng, 50)
                                                   : g * 16 + (int)lp_rng_below(&rng, 16);
            snprintf(it, sizeof it, "i%d", item);
            assert_int_equal(lp_mf_data_add(d, u, it, 1.0f + (float)lp_rng_below(&rng, 5), NULL),
                             LP_OK);
        }
    }
    return d;
}

static void record(size_t it, double obj, void *user)
{
    ((double *)user)[it - 1] = obj;
}

static size_t g_factors = 8; /* the factors of the next fit */

static lp_mf *fit(const lp_mf_data *d, lp_mf_solver solver, size_t steps, size_t iters,
                  int threads, double *obj)
{
    lp_mf_opts o = lp_mf_opts_default();
    o.factors = g_factors;
    o.iterations = iters;
    o.regularization = 0.1f;
    o.alpha = 2;
    o.solver = solver;
    o.cg_steps = steps;
    o.threads = threads;
    o.on_iter = obj ? record : NULL;
    o.on_iter_user = obj;
    lp_mf *m;
    lp_err err;
    if (lp_mf_fit(d, &o, &m, &err)) fail_msg("fit: %s", err.msg);
    return m;
}

/* Each half-step is an exact minimization, so the objective is non-increasing; a relative
 * slack of 1e-6 absorbs float rounding of the factors. */
#define OBJ_SLACK 1e-6

static void test_objective_decreases(void **state)
{
    lp_mf_data *d = latent_data();
    double obj[20];
    lp_mf *m = fit(d, LP_MF_SOLVER_CHOLESKY, 3, 20, 2, obj);
    for (int t = 1; t < 20; t++) {
        if (obj[t] > obj[t - 1] * (1 + OBJ_SLACK)) fail_msg("iteration %d: %g > %g", t + 1, obj[t], obj[t - 1]);
    }
    assert_true(obj[19] < obj[0]);
    lp_mf_free(m);
    lp_mf_data_free(d);
}

/* Scores x_u . y_i of every pair, in double. */
static double *all_scores(const lp_mf *m)
{
    size_t nu = lp_mf_n_users(m), ni = lp_mf_n_items(m), k = lp_mf_dim(m);
    double *s = malloc(nu * ni * sizeof *s);
    for (size_t u = 0; u < nu; u++)
        for (size_t i = 0; i < ni; i++) {
            double v = 0;
            for (size_t a = 0; a < k; a++)
                v += lp_mf_user_factors(m, u)[a] * lp_mf_item_factors(m, i)[a];
            s[u * ni + i] = v;
        }
    return s;
}

static void test_cg_agrees_with_cholesky(void **state)
{
    lp_mf_data *d = latent_data();
    double oc[8], og[8], o3[8];
    lp_mf *chol = fit(d, LP_MF_SOLVER_CHOLESKY, 3, 8, 1, oc);
    /* with as many CG steps as unknowns (twice, for rounding) each solve is exact too */
    lp_mf *cg = fit(d, LP_MF_SOLVER_CG, 16, 8, 1, og);
    lp_mf *cg3 = fit(d, LP_MF_SOLVER_CG, 3, 8, 1, o3);
    double *a = all_scores(chol), *b = all_scores(cg);
    size_t n = lp_mf_n_users(chol) * lp_mf_n_items(chol);
    /* float factors through 8 alternations: 2e-3 absolute on scores of order 1 */
    lp_assert_close(b, a, n, 2e-3, 1e-3, "CG(16) vs Cholesky scores");
    lp_assert_close(og, oc, 8, 0, 1e-4, "CG(16) vs Cholesky objective");
    /* 3 warm-started steps (the default) end within 1% of the exact objective */
    assert_true(fabs(o3[7] - oc[7]) <= 0.01 * oc[7]);
    free(a), free(b);
    lp_mf_free(chol), lp_mf_free(cg), lp_mf_free(cg3);
    lp_mf_data_free(d);
}

static void test_fold_in_reproduces_user(void **state)
{
    lp_mf_data *d = latent_data();
    lp_mf *m = fit(d, LP_MF_SOLVER_CHOLESKY, 3, 10, 2, NULL);
    size_t k = lp_mf_dim(m);
    float x[8];
    double got[8], want[8];
    for (size_t u = 0; u < lp_mf_n_users(m); u += 5) {
        const int32_t *hi;
        const float *hw;
        size_t nh = lp_mf_user_history(m, u, &hi, &hw);
        lp_err err;
        assert_int_equal(lp_mf_fold_in(m, hi, hw, nh, x, &err), LP_OK);
        for (size_t a = 0; a < k; a++) got[a] = x[a], want[a] = lp_mf_user_factors(m, u)[a];
        /* the same solve as the last user half-step, but with Y^T Y rounded to float once */
        lp_assert_close(got, want, k, 1e-4, 1e-3, "fold-in vs trained user vector");
    }
    lp_mf_free(m);
    lp_mf_data_free(d);
}

/* Solve (k, k) A z = b by Gaussian elimination with partial pivoting (test reference). */
static void gauss(double *a, double *b, size_t k)
{
    for (size_t c = 0; c < k; c++) {
        size_t p = c;
        for (size_t r = c + 1; r < k; r++)
            if (fabs(a[r * k + c]) > fabs(a[p * k + c])) p = r;
        for (size_t j = 0; j < k; j++) {
            double t = a[c * k + j];
            a[c * k + j] = a[p * k + j];
            a[p * k + j] = t;
        }
        double t = b[c];
        b[c] = b[p];
        b[p] = t;
        for (size_t r = c + 1; r < k; r++) {
            double f = a[r * k + c] / a[c * k + c];
            for (size_t j = c; j < k; j++) a[r * k + j] -= f * a[c * k + j];
            b[r] -= f * b[c];
        }
    }
    for (size_t c = k; c-- > 0;) {
        for (size_t j = c + 1; j < k; j++) b[c] -= a[c * k + j] * b[j];
        b[c] /= a[c * k + c];
    }
}

/* For users 0..5 of m: the list of `len` items, by fold-in of the training history (or from
 * the trained vector), explained against a Gaussian-elimination reference of W^u y_i. */
static void check_explanations(const lp_mf *m, size_t len, bool trained_vec, bool prepared)
{
    size_t k = lp_mf_dim(m), ni = lp_mf_n_items(m);
    const lp_mf_opts *o = lp_mf_model_opts(m);
    double *a = malloc(k * k * sizeof *a), *acopy = malloc(k * k * sizeof *a);
    double *z = malloc(k * sizeof *z);
    lp_mf_rec *r = malloc(len * sizeof *r);
    assert_non_null(a), assert_non_null(acopy), assert_non_null(z), assert_non_null(r);
    for (size_t u = 0; u < 6; u++) {
        const int32_t *hi;
        const float *hw;
        size_t nh = lp_mf_user_history(m, u, &hi, &hw);
        size_t n;
        lp_mf_query q = {.history = hi, .history_w = hw, .n_history = nh,
                         .exclude_history = true, .k = len, .n_because = LP_MF_BECAUSE_MAX,
                         .user_vec = trained_vec ? lp_mf_user_factors(m, u) : NULL};
        lp_mf_user *pu = NULL;
        if (prepared) {
            assert_int_equal(lp_mf_user_new(m, q.user_vec, hi, hw, nh, &pu, NULL), LP_OK);
            q.user = pu;
        }
        assert_int_equal(lp_mf_recommend(m, &q, r, &n, NULL), LP_OK);
        lp_mf_user_free(pu);
        assert_int_equal(n, len);
        /* A_u = Y^T Y + lambda I + sum_j alpha w_j y_j y_j^T */
        for (size_t p = 0; p < k; p++)
            for (size_t s = 0; s < k; s++) {
                double v = p == s ? o->regularization : 0;
                for (size_t i = 0; i < ni; i++)
                    v += (double)lp_mf_item_factors(m, i)[p] * lp_mf_item_factors(m, i)[s];
                for (size_t t = 0; t < nh; t++)
                    v += o->alpha * hw[t] * lp_mf_item_factors(m, (size_t)hi[t])[p] *
                         lp_mf_item_factors(m, (size_t)hi[t])[s];
                a[p * k + s] = v;
            }
        for (size_t t = 0; t < len; t++) {
            memcpy(acopy, a, k * k * sizeof *a);
            for (size_t p = 0; p < k; p++) z[p] = lp_mf_item_factors(m, (size_t)r[t].item)[p];
            gauss(acopy, z, k);
            double sum = 0, best = -INFINITY, second = -INFINITY;
            int32_t best_j = -1;
            for (size_t j = 0; j < nh; j++) {
                double c = 0;
                for (size_t p = 0; p < k; p++) c += z[p] * lp_mf_item_factors(m, (size_t)hi[j])[p];
                c *= 1 + o->alpha * hw[j];
                sum += c;
                if (c > best) second = best, best = c, best_j = hi[j];
                else if (c > second) second = c;
            }
            /* Hu et al. section 5: score = sum_j s_ij c_j exactly (float fold-in: 1e-3); the
             * trained vector is the last ALS half-step's, which the sum only approximates */
            if (!trained_vec) assert_true(fabs(sum - r[t].score) <= 1e-3 + 1e-3 * fabs(sum));
            assert_true(r[t].n_because >= 1);
            /* the largest contribution first, unless the runner-up is within float rounding */
            if (best - second > 1e-4 * fabs(best)) assert_int_equal(r[t].because[0], best_j);
        }
    }
    free(a), free(acopy), free(z), free(r);
}

static void test_explanation_decomposes_score(void **state)
{
    lp_mf_data *d = latent_data();
    lp_mf *m = fit(d, LP_MF_SOLVER_CHOLESKY, 3, 10, 2, NULL);
    for (int prepared = 0; prepared < 2; prepared++) {
        check_explanations(m, 3, false, prepared);
        check_explanations(m, 3, true, prepared);
    }
    lp_mf_free(m);
    /* a factor count off the vector widths and a list longer than one block of right-hand
     * sides (16) */
    g_factors = 21;
    m = fit(d, LP_MF_SOLVER_CHOLESKY, 3, 10, 2, NULL);
    g_factors = 8;
    for (int prepared = 0; prepared < 2; prepared++) {
        check_explanations(m, 20, false, prepared);
        check_explanations(m, 20, true, prepared);
    }
    lp_mf_free(m);
    lp_mf_data_free(d);
}

/* A prepared user (lp_mf_user) lists exactly what the plain query lists: same items,
 * bit-identical scores, and (but for ALS, whose explanations check_explanations holds to the
 * reference) the same explanations; for the trained vector and a fold-in, with no filter, with
 * exclusions, and with an allowed set so small that the stored ranking runs short. */
static void check_prepared(const lp_mf *m, const lp_mf *other)
{
    lp_mf_rec a[12], b[12];
    size_t ni = lp_mf_n_items(m);
    uint8_t *few = calloc(ni, 1);
    assert_non_null(few);
    for (size_t i = 0; i < ni; i += 9) few[i] = 1;
    int32_t excl[3] = {0, 5, 7};
    bool als = lp_mf_model_kind(m) == LP_MF_KIND_ALS;
    for (size_t u = 0; u < lp_mf_n_users(m); u += 7)
        for (int trained = 0; trained < 6; trained++) {
            const int32_t *hi;
            const float *hw;
            size_t nh = lp_mf_user_history(m, u, &hi, &hw), na, nb;
            const float *vec = trained % 2 ? lp_mf_user_factors(m, u) : NULL;
            lp_mf_query q = {.user_vec = vec, .history = hi, .history_w = hw, .n_history = nh,
                             .exclude_history = true, .k = 12, .n_because = LP_MF_BECAUSE_MAX};
            if (trained / 2 == 1) q.exclude = excl, q.n_exclude = 3;
            if (trained / 2 == 2) q.allowed = few;
            assert_int_equal(lp_mf_recommend(m, &q, a, &na, NULL), LP_OK);
            lp_mf_user *pu;
            lp_err err;
            assert_int_equal(lp_mf_user_new(m, vec, hi, hw, nh, &pu, &err), LP_OK);
            assert_true(lp_mf_user_bytes(pu) > nh * 8);
            lp_mf_query qp = q;
            qp.user = pu;
            qp.history = NULL, qp.history_w = NULL, qp.n_history = 0, qp.user_vec = NULL;
            assert_int_equal(lp_mf_recommend(m, &qp, b, &nb, NULL), LP_OK);
            assert_int_equal(na, nb);
            for (size_t r = 0; r < na; r++) {
                assert_int_equal(a[r].item, b[r].item);
                assert_memory_equal(&a[r].score, &b[r].score, sizeof a[r].score);
                if (als) continue;
                assert_int_equal(a[r].n_because, b[r].n_because);
                assert_memory_equal(a[r].because, b[r].because,
                                    a[r].n_because * sizeof *a[r].because);
            }
            /* a prepared user belongs to its model */
            if (other) {
                assert_int_equal(lp_mf_recommend(other, &qp, b, &nb, &err), LP_EINVAL);
                assert_non_null(strstr(err.msg, "another model"));
            }
            lp_mf_user_free(pu);
        }
    free(few);
}

/* A prepared ALS user keeps the explanations of its first ranked items (REC_PRE_BECAUSE in
 * mf_rec.c): they equal, id for id, those computed per request, which a query that keeps the
 * history in the list makes for every item (it cannot use the stored ranking), for every
 * explanation count, and a list longer than the kept places mixes both paths. */
static void test_prepared_kept_explanations(void **state)
{
    (void)state;
    lp_mf_data *d = latent_data();
    lp_mf *m = fit(d, LP_MF_SOLVER_CHOLESKY, 3, 10, 2, NULL);
    size_t ni = lp_mf_n_items(m);
    lp_mf_rec *a = calloc(ni, sizeof *a), *b = calloc(ni, sizeof *b);
    assert_non_null(a), assert_non_null(b);
    size_t compared = 0;
    for (size_t u = 0; u < lp_mf_n_users(m); u += 5)
        for (size_t nbc = 1; nbc <= LP_MF_BECAUSE_MAX; nbc += 2) {
            const int32_t *hi;
            const float *hw;
            size_t nh = lp_mf_user_history(m, u, &hi, &hw), na, nb;
            lp_mf_user *pu;
            assert_int_equal(lp_mf_user_new(m, NULL, hi, hw, nh, &pu, NULL), LP_OK);
            lp_mf_query q = {.user = pu, .exclude_history = true, .k = ni, .n_because = nbc};
            assert_int_equal(lp_mf_recommend(m, &q, a, &na, NULL), LP_OK);
            q.exclude_history = false;
            assert_int_equal(lp_mf_recommend(m, &q, b, &nb, NULL), LP_OK);
            assert_true(na > 32); /* past the kept places too */
            for (size_t r = 0; r < na; r++) {
                size_t s = 0;
                while (s < nb && b[s].item != a[r].item) s++;
                assert_true(s < nb);
                assert_int_equal(a[r].n_because, b[s].n_because);
                assert_true(a[r].n_because >= 1 && a[r].n_because <= nbc);
                assert_memory_equal(a[r].because, b[s].because,
                                    a[r].n_because * sizeof *a[r].because);
                compared++;
            }
            lp_mf_user_free(pu);
        }
    assert_true(compared > 300);
    free(a), free(b);
    lp_mf_free(m);
    lp_mf_data_free(d);
}

static void test_prepared_user_same_answer(void **state)
{
    lp_mf_data *d = latent_data();
    lp_mf *m = fit(d, LP_MF_SOLVER_CHOLESKY, 3, 10, 2, NULL);
    lp_mf_opts o = lp_mf_opts_default();
    o.kind = LP_MF_KIND_BPR;
    o.factors = 8;
    o.iterations = 5;
    lp_mf *bpr;
    assert_int_equal(lp_mf_fit(d, &o, &bpr, NULL), LP_OK);
    o.kind = LP_MF_KIND_ITEMKNN;
    lp_mf *knn;
    assert_int_equal(lp_mf_fit(d, &o, &knn, NULL), LP_OK);
    check_prepared(m, bpr);
    check_prepared(bpr, m);
    check_prepared(knn, NULL);
    /* bad history is refused when preparing, as when recommending */
    int32_t bad_item = 999;
    float w = 1;
    lp_mf_user *pu = (lp_mf_user *)&w;
    lp_err err;
    assert_int_equal(lp_mf_user_new(m, NULL, &bad_item, &w, 1, &pu, &err), LP_EINVAL);
    assert_null(pu);
    lp_mf_free(m), lp_mf_free(bpr), lp_mf_free(knn);
    lp_mf_data_free(d);
}

/* 600 items, more than a prepared user's stored ranking (256): an allowed set that leaves fewer
 * than k of the stored items must fall back to scoring every item, and list what the plain
 * query lists. */
static void test_prepared_ranking_runs_short(void **state)
{
    lp_mf_data *d = lp_mf_data_new();
    lp_rng rng;
    lp_rng_seed(&rng, 5);
    char u[16], it[16];
    for (int user = 0; user < 80; user++)
        for (int t = 0; t < 15; t++) {
            snprintf(u, sizeof u, "u%d", user);
            snprintf(it, sizeof it, "i%d", (int)lp_rng_below(&rng, 600));
            assert_int_equal(lp_mf_data_add(d, u, it, 1.0f, NULL), LP_OK);
        }
    lp_mf *m = fit(d, LP_MF_SOLVER_CHOLESKY, 3, 3, 1, NULL);
    size_t ni = lp_mf_n_items(m);
    assert_true(ni > 300);
    uint8_t *few = calloc(ni, 1);
    lp_mf_rec *top = malloc(256 * sizeof *top), a[12], b[12];
    assert_non_null(few), assert_non_null(top);
    for (size_t i = 0; i < ni; i += 50) few[i] = 1;
    for (size_t user = 0; user < 80; user += 9) {
        const int32_t *hi;
        const float *hw;
        size_t nh = lp_mf_user_history(m, user, &hi, &hw), na, nb, nt, in_top = 0;
        lp_mf_query q = {.user_vec = lp_mf_user_factors(m, user), .history = hi, .history_w = hw,
                         .n_history = nh, .exclude_history = true, .k = 256};
        assert_int_equal(lp_mf_recommend(m, &q, top, &nt, NULL), LP_OK);
        for (size_t r = 0; r < nt; r++) in_top += few[top[r].item];
        q.k = 12;
        q.allowed = few;
        q.n_because = 3;
        assert_int_equal(lp_mf_recommend(m, &q, a, &na, NULL), LP_OK);
        assert_true(in_top < na); /* the stored ranking alone cannot answer */
        lp_mf_user *pu;
        assert_int_equal(lp_mf_user_new(m, q.user_vec, hi, hw, nh, &pu, NULL), LP_OK);
        lp_mf_query qp = {.user = pu, .exclude_history = true, .k = 12, .allowed = few,
                          .n_because = 3};
        assert_int_equal(lp_mf_recommend(m, &qp, b, &nb, NULL), LP_OK);
        assert_int_equal(na, nb);
        for (size_t r = 0; r < na; r++) {
            assert_int_equal(a[r].item, b[r].item);
            assert_memory_equal(&a[r].score, &b[r].score, sizeof a[r].score);
            assert_true(b[r].n_because <= 3);
        }
        lp_mf_user_free(pu);
    }
    free(few), free(top);
    lp_mf_free(m);
    lp_mf_data_free(d);
}

static void test_threads_same_model(void **state)
{
    lp_mf_data *d = latent_data();
    lp_mf *a = fit(d, LP_MF_SOLVER_CG, 3, 5, 1, NULL), *b = fit(d, LP_MF_SOLVER_CG, 3, 5, 2, NULL);
    double *sa = all_scores(a), *sb = all_scores(b);
    size_t n = lp_mf_n_users(a) * lp_mf_n_items(a);
    lp_assert_close(sb, sa, n, 0, 0, "1 vs 2 threads");
    free(sa), free(sb);
    lp_mf_free(a), lp_mf_free(b);
    lp_mf_data_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_objective_decreases),
        cmocka_unit_test(test_cg_agrees_with_cholesky),
        cmocka_unit_test(test_fold_in_reproduces_user),
        cmocka_unit_test(test_explanation_decomposes_score),
        cmocka_unit_test(test_prepared_user_same_answer),
        cmocka_unit_test(test_prepared_kept_explanations),
        cmocka_unit_test(test_prepared_ranking_runs_short),
        cmocka_unit_test(test_threads_same_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
