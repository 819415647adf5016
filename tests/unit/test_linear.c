/*
 * test_linear.c - properties of the linear model family that need no reference tool: the
 * logistic gradient against central finite differences (binary / multinomial, dense / CSR,
 * serial / threaded), gradient descent reaching the closed form, integer weights equal to
 * duplicated rows for every solver, save -> load -> bit-identical predictions, rejection of
 * truncated and corrupted records, and clear errors on bad inputs and options.
 */
#include "lp_test.h"

#include "model/linear.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Central differences with h = 1e-5 on an objective of size ~100 leave ~1e-6 of error. */
#define FD_H 1e-5
#define FD_ATOL 1e-5
#define FD_RTOL 1e-5
/* Two solvers driven to tiny tolerances on the same convex problem agree this closely; the
 * parameters are stored as float (~6e-8 relative). */
#define SAME_RTOL 1e-5
#define SAME_ATOL 1e-6

typedef struct dataset {
    size_t n, d;
    float *x;     /* (n, d) */
    double *y;    /* (n,) regression target */
    int32_t *cls; /* (n,) labels in 0..k-1 */
} dataset;

/* Seeded Gaussian features (about a third zeroed, so CSR is sparse), a linear target with
 * noise and k classes from the argmax of noisy linear scores. */
static dataset make_data(size_t n, size_t d, size_t k, uint64_t seed)
{
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    dataset ds = {n, d, malloc(n * d * sizeof(float)), malloc(n * sizeof(double)),
                  malloc(n * sizeof(int32_t))};
    for (size_t i = 0; i < n; i++) {
        double t = 0.3, best = -1e300;
        for (size_t j = 0; j < d; j++) {
            double v = lp_rng_uniform(&rng) < 0.33 ? 0.0 : lp_rng_normal(&rng);
            ds.x[i * d + j] = (float)v;
            t += v * ((double)(j % 3) - 0.8);
        }
        ds.y[i] = t + 0.2 * lp_rng_normal(&rng);
        for (size_t c = 0; c < k; c++) {
            double sc = (c < d ? ds.x[i * d + c] : 0.0) + lp_rng_normal(&rng);
            if (sc > best) {
                best = sc;
                ds.cls[i] = (int32_t)c;
            }
        }
    }
    return ds;
}

static void free_data(dataset *ds)
{
    free(ds->x);
    free(ds->y);
    free(ds->cls);
}

static lp_design dense_of(const dataset *ds)
{
    return (lp_design){ds->n, ds->d, ds->x, NULL, NULL, NULL};
}

static lp_design csr_of(const dataset *ds)
{
    size_t *ip = calloc(ds->n + 1, sizeof(size_t));
    uint32_t *idx = malloc(ds->n * ds->d * sizeof(uint32_t));
    float *val = malloc(ds->n * ds->d * sizeof(float));
    size_t nnz = 0;
    for (size_t i = 0; i < ds->n; i++) {
        for (size_t j = 0; j < ds->d; j++)
            if (ds->x[i * ds->d + j] != 0) {
                idx[nnz] = (uint32_t)j;
                val[nnz++] = ds->x[i * ds->d + j];
            }
        ip[i + 1] = nnz;
    }
    return (lp_design){ds->n, ds->d, NULL, ip, idx, val};
}

static void free_csr(lp_design *x)
{
    free((void *)x->indptr);
    free((void *)x->indices);
    free((void *)x->values);
}

static void check_gradient(const lp_design *x, const int32_t *lab, size_t k_out, int threads)
{
    size_t n = x->rows, d = x->cols, np = k_out * (d + 1);
    double *s = malloc(n * sizeof(double)), *th = malloc(np * sizeof(double));
    double *g = malloc(np * sizeof(double)), *fd = malloc(np * sizeof(double));
    int32_t *l01 = malloc(n * sizeof(int32_t));
    lp_rng rng;
    lp_rng_seed(&rng, 7);
    for (size_t i = 0; i < n; i++) {
        s[i] = 0.5 + lp_rng_uniform(&rng);
        l01[i] = k_out == 1 ? lab[i] % 2 : lab[i];
    }
    for (size_t q = 0; q < np; q++)
        th[q] = 0.5 * lp_rng_normal(&rng);
    double l2 = 0.7;
    lp_linear_logistic_objective(x, l01, s, k_out, true, l2, th, g, threads);
    for (size_t q = 0; q < np; q++) {
        double keep = th[q];
        th[q] = keep + FD_H;
        double fp = lp_linear_logistic_objective(x, l01, s, k_out, true, l2, th, NULL, threads);
        th[q] = keep - FD_H;
        double fm = lp_linear_logistic_objective(x, l01, s, k_out, true, l2, th, NULL, threads);
        th[q] = keep;
        fd[q] = (fp - fm) / (2 * FD_H);
    }
    lp_assert_close(g, fd, np, FD_ATOL, FD_RTOL, "logistic gradient vs finite differences");
    free(s);
    free(th);
    free(g);
    free(fd);
    free(l01);
}

static void test_gradient_fd(void **state)
{
    (void)state;
    dataset ds = make_data(120, 6, 4, 11);
    lp_design xd = dense_of(&ds), xs = csr_of(&ds);
    check_gradient(&xd, ds.cls, 1, 1);
    check_gradient(&xd, ds.cls, 4, 1);
    check_gradient(&xs, ds.cls, 1, 1);
    check_gradient(&xs, ds.cls, 4, 1);
    free_csr(&xs);
    free_data(&ds);
}

static void test_threaded_objective(void **state)
{
    (void)state;
    /* big enough that the threaded path is taken (n * d * k above the threshold) */
    dataset ds = make_data(4000, 40, 5, 12);
    lp_design x = csr_of(&ds);
    size_t np = 5 * 41;
    double *th = calloc(np, sizeof(double)), *g1 = malloc(np * sizeof(double));
    double *g2 = malloc(np * sizeof(double)), *s = malloc(ds.n * sizeof(double));
    for (size_t q = 0; q < np; q++)
        th[q] = 0.01 * (double)(q % 7) - 0.03;
    for (size_t i = 0; i < ds.n; i++)
        s[i] = 1.0 + (double)(i % 3);
    double f1 = lp_linear_logistic_objective(&x, ds.cls, s, 5, true, 0.1, th, g1, 1);
    double f2 = lp_linear_logistic_objective(&x, ds.cls, s, 5, true, 0.1, th, g2, 2);
    assert_true(fabs(f1 - f2) <= 1e-10 * fabs(f1));
    lp_assert_close(g2, g1, np, 1e-9, 1e-10, "threaded gradient vs serial");
    free(th);
    free(g1);
    free(g2);
    free(s);
    free_csr(&x);
    free_data(&ds);
}

static lp_linear *fit_reg(const lp_linear_opts *o, const lp_design *x, const double *y,
                          const double *w)
{
    lp_linear *m = NULL;
    lp_err err;
    if (lp_linear_fit_regression(o, x, y, w, &m, &err) != LP_OK)
        fail_msg("fit failed: %s", err.msg);
    return m;
}

static lp_linear *fit_clf(const lp_linear_opts *o, const lp_design *x, const int32_t *lab,
                          const double *w)
{
    lp_linear *m = NULL;
    lp_err err;
    if (lp_linear_fit_classifier(o, x, lab, 0, w, &m, &err) != LP_OK)
        fail_msg("fit failed: %s", err.msg);
    return m;
}

static void assert_same_model(const lp_linear *a, const lp_linear *b, const char *what)
{
    size_t np = lp_linear_n_outputs(a) * lp_linear_n_features(a), k = lp_linear_n_outputs(a);
    assert_int_equal(np, lp_linear_n_outputs(b) * lp_linear_n_features(b));
    double *ga = malloc((np + k) * sizeof(double)), *gb = malloc((np + k) * sizeof(double));
    for (size_t q = 0; q < np; q++) {
        ga[q] = lp_linear_coef(a)[q];
        gb[q] = lp_linear_coef(b)[q];
    }
    for (size_t c = 0; c < k; c++) {
        ga[np + c] = lp_linear_intercept(a)[c];
        gb[np + c] = lp_linear_intercept(b)[c];
    }
    lp_assert_close(ga, gb, np + k, SAME_ATOL, SAME_RTOL, what);
    free(ga);
    free(gb);
}

static void test_gd_reaches_closed_form(void **state)
{
    (void)state;
    dataset ds = make_data(150, 5, 2, 21);
    lp_design x = dense_of(&ds);
    for (int ridge = 0; ridge < 2; ridge++) {
        for (int fi = 0; fi < 2; fi++) {
            lp_linear_opts o = lp_linear_opts_default();
            o.kind = ridge ? LP_LINEAR_KIND_RIDGE : LP_LINEAR_KIND_LEAST_SQUARES;
            o.alpha = 3.0;
            o.fit_intercept = fi;
            lp_linear *closed = fit_reg(&o, &x, ds.y, NULL);
            o.solver = LP_LINEAR_SOLVER_GD;
            o.tol = 1e-11;
            o.max_iter = 100000;
            lp_linear *gd = fit_reg(&o, &x, ds.y, NULL);
            assert_true(lp_linear_converged(gd));
            assert_true(lp_linear_n_iter(gd) > 1);
            assert_same_model(gd, closed, "gd vs closed form");
            if (!fi)
                assert_true(lp_linear_intercept(gd)[0] == 0 && lp_linear_intercept(closed)[0] == 0);
            lp_linear_free(closed);
            lp_linear_free(gd);
        }
    }
    /* a too-large fixed step diverges and says so instead of returning garbage */
    lp_linear_opts o = lp_linear_opts_default();
    o.solver = LP_LINEAR_SOLVER_GD;
    o.learning_rate = 50;
    o.max_iter = 5000;
    lp_linear *m = NULL;
    lp_err err;
    assert_int_equal(lp_linear_fit_regression(&o, &x, ds.y, NULL, &m, &err), LP_ENUMERIC);
    assert_null(m);
    assert_non_null(strstr(err.msg, "learning_rate"));
    free_data(&ds);
}

/* Every row with weight 2 must give the model fitted on that row duplicated. */
static void test_weights_equal_duplicates(void **state)
{
    (void)state;
    dataset ds = make_data(90, 5, 3, 31);
    size_t n = ds.n, d = ds.d, n2 = n;
    double *w = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        w[i] = i % 3 == 0 ? 2.0 : 1.0;
        n2 += i % 3 == 0;
    }
    dataset dup = {n2, d, malloc(n2 * d * sizeof(float)), malloc(n2 * sizeof(double)),
                   malloc(n2 * sizeof(int32_t))};
    size_t r = 0;
    for (size_t i = 0; i < n; i++)
        for (int rep = 0; rep < (int)w[i]; rep++, r++) {
            memcpy(dup.x + r * d, ds.x + i * d, d * sizeof(float));
            dup.y[r] = ds.y[i];
            dup.cls[r] = ds.cls[i];
        }
    lp_design xa = csr_of(&ds), xb = dense_of(&dup);
    const struct {
        lp_linear_kind kind;
        lp_linear_penalty pen;
        bool balanced;
    } v[] = {
        {LP_LINEAR_KIND_LEAST_SQUARES, LP_LINEAR_PENALTY_L2, false},
        {LP_LINEAR_KIND_RIDGE, LP_LINEAR_PENALTY_L2, false},
        {LP_LINEAR_KIND_LASSO, LP_LINEAR_PENALTY_L2, false},
        {LP_LINEAR_KIND_ELASTIC_NET, LP_LINEAR_PENALTY_L2, false},
        {LP_LINEAR_KIND_LOGISTIC, LP_LINEAR_PENALTY_L2, false},
        {LP_LINEAR_KIND_LOGISTIC, LP_LINEAR_PENALTY_L1, false},
    };
    for (size_t t = 0; t < sizeof v / sizeof v[0]; t++) {
        lp_linear_opts o = lp_linear_opts_default();
        o.kind = v[t].kind;
        o.penalty = v[t].pen;
        o.alpha = 0.05;
        o.C = 0.8;
        o.tol = o.kind == LP_LINEAR_KIND_LOGISTIC ? 1e-9 : 1e-12;
        o.max_iter = 100000;
        lp_linear *a, *b;
        if (o.kind == LP_LINEAR_KIND_LOGISTIC) {
            a = fit_clf(&o, &xa, ds.cls, w);
            b = fit_clf(&o, &xb, dup.cls, NULL);
        } else {
            a = fit_reg(&o, &xa, ds.y, w);
            b = fit_reg(&o, &xb, dup.y, NULL);
        }
        assert_same_model(a, b, "weights 2 vs duplicated rows");
        lp_linear_free(a);
        lp_linear_free(b);
    }
    free_csr(&xa);
    free(w);
    free_data(&dup);
    free_data(&ds);
}

static void test_balanced_weights_change_fit(void **state)
{
    (void)state;
    /* imbalanced labels: balanced class weights must equal explicit per-row weights
     * n / (k * count_c), and differ from the unweighted fit */
    dataset ds = make_data(100, 4, 2, 41);
    size_t cnt[2] = {0, 0};
    for (size_t i = 0; i < ds.n; i++) {
        ds.cls[i] = i < 80 ? 0 : ds.cls[i];
        cnt[ds.cls[i]]++;
    }
    double *w = malloc(ds.n * sizeof(double));
    for (size_t i = 0; i < ds.n; i++)
        w[i] = (double)ds.n / (2.0 * (double)cnt[ds.cls[i]]);
    lp_design x = dense_of(&ds);
    lp_linear_opts o = lp_linear_opts_default();
    o.kind = LP_LINEAR_KIND_LOGISTIC;
    o.tol = 1e-9;
    lp_linear *plain = fit_clf(&o, &x, ds.cls, NULL), *expl = fit_clf(&o, &x, ds.cls, w);
    o.class_weight = LP_LINEAR_CLASS_WEIGHT_BALANCED;
    lp_linear *bal = fit_clf(&o, &x, ds.cls, NULL);
    assert_same_model(bal, expl, "balanced vs explicit weights");
    assert_true(fabs(lp_linear_intercept(bal)[0] - lp_linear_intercept(plain)[0]) > 0.1);
    lp_linear_free(plain);
    lp_linear_free(expl);
    lp_linear_free(bal);
    free(w);
    free_data(&ds);
}

static void test_save_load(void **state)
{
    (void)state;
    dataset ds = make_data(80, 6, 3, 51);
    lp_design x = dense_of(&ds);
    lp_linear_opts o = lp_linear_opts_default();
    o.kind = LP_LINEAR_KIND_LOGISTIC;
    lp_linear *m = fit_clf(&o, &x, ds.cls, NULL);
    lp_buf b;
    lp_buf_init(&b);
    lp_buf_u8(&b, 0xAB); /* the record may sit inside a larger blob */
    assert_int_equal(lp_linear_save(m, &b, NULL), LP_OK);
    lp_reader r;
    lp_reader_init(&r, b.data, b.len, "test blob");
    uint8_t lead;
    assert_int_equal(lp_reader_u8(&r, &lead, NULL), LP_OK);
    lp_linear *m2 = NULL;
    lp_err err;
    if (lp_linear_load(&r, &m2, &err) != LP_OK)
        fail_msg("load: %s", err.msg);
    assert_int_equal(r.pos, b.len);
    size_t k = 3;
    double *p1 = malloc(ds.n * k * sizeof(double)), *p2 = malloc(ds.n * k * sizeof(double));
    assert_int_equal(lp_linear_predict_proba(m, &x, p1, NULL), LP_OK);
    assert_int_equal(lp_linear_predict_proba(m2, &x, p2, NULL), LP_OK);
    assert_memory_equal(p1, p2, ds.n * k * sizeof(double));
    assert_int_equal(lp_linear_n_classes(m2), 3);

    /* every truncation is rejected cleanly */
    for (size_t len = 1; len < b.len; len++) {
        lp_reader_init(&r, b.data + 1, len - 1, "truncated blob");
        lp_linear *bad = NULL;
        assert_int_not_equal(lp_linear_load(&r, &bad, &err), LP_OK);
        assert_null(bad);
        assert_non_null(strstr(err.msg, "truncated blob"));
    }
    /* a flipped bit anywhere is rejected (magic, version, sizes or CRC) */
    uint8_t *copy = malloc(b.len);
    for (size_t pos = 1; pos < b.len; pos++) {
        memcpy(copy, b.data, b.len);
        copy[pos] ^= 0x10;
        lp_reader_init(&r, copy + 1, b.len - 1, "corrupt blob");
        lp_linear *bad = NULL;
        assert_int_not_equal(lp_linear_load(&r, &bad, &err), LP_OK);
        assert_null(bad);
    }
    memcpy(copy, b.data, b.len);
    copy[5] = 9; /* version field */
    lp_reader_init(&r, copy + 1, b.len - 1, "future blob");
    lp_linear *bad = NULL;
    assert_int_equal(lp_linear_load(&r, &bad, &err), LP_EVERSION);
    assert_non_null(strstr(err.msg, "version 9"));
    free(copy);
    free(p1);
    free(p2);
    lp_buf_free(&b);
    lp_linear_free(m);
    lp_linear_free(m2);
    lp_linear_free(NULL);
    free_data(&ds);
}

static void expect_opts_error(lp_linear_opts o, const char *needle)
{
    lp_err err;
    assert_int_equal(lp_linear_opts_check(&o, &err), LP_EINVAL);
    if (!strstr(err.msg, needle))
        fail_msg("message '%s' lacks '%s'", err.msg, needle);
}

static void test_bad_options(void **state)
{
    (void)state;
    lp_linear_opts d = lp_linear_opts_default(), o;
    assert_int_equal(lp_linear_opts_check(&d, NULL), LP_OK);
    o = d, o.alpha = -1, expect_opts_error(o, "alpha is -1");
    o = d, o.l1_ratio = 1.5, expect_opts_error(o, "l1_ratio is 1.5, expected a value in [0, 1]");
    o = d, o.l1_ratio = -0.1, expect_opts_error(o, "l1_ratio");
    o = d, o.C = 0, expect_opts_error(o, "C is 0");
    o = d, o.tol = 0, expect_opts_error(o, "tol");
    o = d, o.max_iter = 0, expect_opts_error(o, "max_iter");
    o = d, o.alpha = NAN, expect_opts_error(o, "alpha");
    o = d, o.lbfgs_memory = 0, expect_opts_error(o, "lbfgs_memory");
    o = d, o.kind = LP_LINEAR_KIND_LOGISTIC, o.solver = LP_LINEAR_SOLVER_CD,
    expect_opts_error(o, "solver cd does not fit kind logistic");
    o = d, o.kind = LP_LINEAR_KIND_LASSO, o.solver = LP_LINEAR_SOLVER_GD,
    expect_opts_error(o, "solver gd");
}

static void test_bad_inputs(void **state)
{
    (void)state;
    dataset ds = make_data(30, 3, 2, 61);
    lp_design x = dense_of(&ds);
    lp_linear_opts o = lp_linear_opts_default();
    lp_linear *m = NULL;
    lp_err err;

    /* NaN in X names the row and column */
    ds.x[7 * 3 + 2] = NAN;
    assert_int_equal(lp_linear_fit_regression(&o, &x, ds.y, NULL, &m, &err), LP_EINVAL);
    assert_null(m);
    assert_non_null(strstr(err.msg, "row 7, column 2"));
    ds.x[7 * 3 + 2] = 1;
    /* non-finite target, negative weight, all-zero weights */
    ds.y[4] = INFINITY;
    assert_int_equal(lp_linear_fit_regression(&o, &x, ds.y, NULL, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "row 4"));
    ds.y[4] = 0;
    double w[30] = {0};
    assert_int_equal(lp_linear_fit_regression(&o, &x, ds.y, w, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "positive sum"));
    w[3] = -1;
    assert_int_equal(lp_linear_fit_regression(&o, &x, ds.y, w, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "sample_weight row 3"));
    /* bad options reach the fit */
    o.l1_ratio = 2;
    assert_int_equal(lp_linear_fit_regression(&o, &x, ds.y, NULL, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "l1_ratio"));
    o = lp_linear_opts_default();

    /* one class only; labels out of range; regression kind on the classifier entry */
    o.kind = LP_LINEAR_KIND_LOGISTIC;
    int32_t one[30] = {0};
    for (size_t i = 0; i < 30; i++)
        one[i] = 1;
    assert_int_equal(lp_linear_fit_classifier(&o, &x, one, 2, NULL, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "only class 1"));
    one[5] = 7;
    assert_int_equal(lp_linear_fit_classifier(&o, &x, one, 3, NULL, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "labels row 5: class 7"));
    one[5] = -1;
    assert_int_equal(lp_linear_fit_classifier(&o, &x, one, 0, NULL, &m, &err), LP_EINVAL);
    o.kind = LP_LINEAR_KIND_RIDGE;
    assert_int_equal(lp_linear_fit_classifier(&o, &x, ds.cls, 2, NULL, &m, &err), LP_EINVAL);
    assert_int_equal(lp_linear_fit_regression(&o, &x, ds.y, NULL, NULL, &err), LP_EINVAL);

    /* broken CSR */
    lp_design xs = csr_of(&ds);
    uint32_t *idx = (uint32_t *)xs.indices;
    size_t a = xs.indptr[2];
    assert_true(xs.indptr[3] - a >= 2);
    uint32_t keep = idx[a + 1];
    idx[a + 1] = idx[a];
    assert_int_equal(lp_linear_fit_regression(&o, &xs, ds.y, NULL, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "row 2: column indices not strictly increasing"));
    idx[a + 1] = 99;
    assert_int_equal(lp_linear_fit_regression(&o, &xs, ds.y, NULL, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "column index 99"));
    idx[a + 1] = keep;
    lp_design empty = {0, 3, ds.x, NULL, NULL, NULL};
    assert_int_equal(lp_linear_fit_regression(&o, &empty, ds.y, NULL, &m, &err), LP_EINVAL);

    /* predictions: wrong width, proba from a regression model */
    m = fit_reg(&o, &xs, ds.y, NULL);
    lp_design wide = {10, 2, ds.x, NULL, NULL, NULL};
    double out[60];
    assert_int_equal(lp_linear_predict(m, &wide, out, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "2 columns"));
    assert_int_equal(lp_linear_predict_proba(m, &x, out, &err), LP_ESTATE);
    /* CSR and dense inputs predict the same */
    double o1[30], o2[30];
    assert_int_equal(lp_linear_predict(m, &x, o1, NULL), LP_OK);
    assert_int_equal(lp_linear_predict(m, &xs, o2, NULL), LP_OK);
    lp_assert_close(o1, o2, 30, 1e-12, 1e-12, "dense vs csr prediction");
    lp_linear_free(m);
    free_csr(&xs);
    free_data(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_fd),
        cmocka_unit_test(test_threaded_objective),
        cmocka_unit_test(test_gd_reaches_closed_form),
        cmocka_unit_test(test_weights_equal_duplicates),
        cmocka_unit_test(test_balanced_weights_change_fit),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_bad_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
