/*
 * test_gbdt_quality.c - gradient-boosted trees against reference numbers: breast-cancer
 * test accuracy at least scikit-learn's GradientBoostingClassifier (fixture gbdt.txt from
 * tests/fixtures/gen_gbdt.py), seeded multiclass and regression problems, early stopping.
 */
#include "lp_test.h"

#include "model/gbdt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Load a breast-cancer split as float X (n, 30) and y (n), dropping `row`. */
static void load_bcw(const char *rel, float **X, float **y, size_t *n, size_t *d)
{
    size_t rows, cols;
    char **names = NULL;
    double *a = lp_test_load_numeric_csv(lp_test_shared_or_skip(rel), &rows, &cols, &names);
    assert_non_null(a);
    size_t jrow = cols, jy = cols;
    for (size_t j = 0; j < cols; j++) {
        if (strcmp(names[j], "row") == 0)
            jrow = j;
        if (strcmp(names[j], "target") == 0)
            jy = j;
    }
    assert_true(jrow < cols && jy < cols);
    *d = cols - 2;
    *n = rows;
    *X = malloc(rows * *d * sizeof **X);
    *y = malloc(rows * sizeof **y);
    for (size_t i = 0; i < rows; i++) {
        size_t k = 0;
        for (size_t j = 0; j < cols; j++) {
            if (j == jrow || j == jy)
                continue;
            (*X)[i * *d + k++] = (float)a[i * cols + j];
        }
        (*y)[i] = (float)a[i * cols + jy];
    }
    lp_test_free_names(names, cols);
    free(a);
}

static void test_breast_cancer(void **state)
{
    (void)state;
    float *Xtr, *ytr, *Xte, *yte;
    size_t ntr, nte, d, d2;
    load_bcw("breast-cancer-wisconsin/train.csv", &Xtr, &ytr, &ntr, &d);
    load_bcw("breast-cancer-wisconsin/test.csv", &Xte, &yte, &nte, &d2);
    assert_int_equal(d, 30);
    assert_int_equal(d2, d);
    lp_fixture *fx = lp_fixture_load("gbdt.txt");
    size_t r, c;
    double *ref = lp_fixture_array(fx, "sklearn_gbc_bcw_test_accuracy", &r, &c);

    lp_gbdt_opts o = lp_gbdt_opts_default();
    o.loss = LP_GBDT_LOSS_LOGLOSS;
    o.n_rounds = 100;
    o.max_leaves = 8;
    o.max_depth = 3;
    o.learning_rate = 0.1f;
    o.min_child_weight = 1.0f;
    o.seed = 0;
    lp_gbdt *m = NULL;
    lp_err err;
    assert_int_equal(lp_gbdt_fit(Xtr, ytr, NULL, ntr, d, &o, NULL, NULL, 0, &m, &err), LP_OK);
    float *p = malloc(nte * sizeof *p);
    assert_int_equal(lp_gbdt_predict(m, Xte, nte, p, &err), LP_OK);
    size_t correct = 0;
    for (size_t i = 0; i < nte; i++) {
        assert_true(p[i] >= 0.0f && p[i] <= 1.0f);
        correct += (p[i] > 0.5f) == (yte[i] > 0.5f);
    }
    double acc = (double)correct / (double)nte;
    print_message("breast-cancer test accuracy %.4f (scikit-learn GBC %.4f)\n", acc, ref[0]);
    assert_true(acc >= ref[0]);
    free(ref);
    lp_fixture_free(fx);
    free(p);
    lp_gbdt_free(m);
    free(Xtr); free(ytr); free(Xte); free(yte);
}

/* Three Gaussian blobs in 5 dimensions (two informative, three noise), class = blob. */
static void make_blobs(size_t n, uint64_t seed, float *X, float *y)
{
    static const double centre[3][2] = {{0.0, 2.0}, {2.0, -1.0}, {-2.0, -1.0}};
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        int k = (int)lp_rng_below(&rng, 3);
        for (size_t j = 0; j < 5; j++)
            X[i * 5 + j] = (float)(lp_rng_normal(&rng) * 0.8 + (j < 2 ? centre[k][j] : 0.0));
        y[i] = (float)k;
    }
}

static void test_multiclass(void **state)
{
    (void)state;
    const size_t n = 3000, nt = 1000;
    float *X = malloc(n * 5 * sizeof *X), *y = malloc(n * sizeof *y);
    float *Xt = malloc(nt * 5 * sizeof *Xt), *yt = malloc(nt * sizeof *yt);
    make_blobs(n, 1, X, y);
    make_blobs(nt, 2, Xt, yt);
    lp_gbdt_opts o = lp_gbdt_opts_default();
    o.loss = LP_GBDT_LOSS_SOFTMAX;
    o.n_classes = 3;
    o.n_rounds = 40;
    o.max_leaves = 8;
    lp_gbdt *m = NULL;
    lp_err err;
    assert_int_equal(lp_gbdt_fit(X, y, NULL, n, 5, &o, NULL, NULL, 0, &m, &err), LP_OK);
    assert_int_equal(lp_gbdt_n_outputs(m), 3);
    assert_int_equal(lp_gbdt_n_trees(m), 120);
    float *p = malloc(nt * 3 * sizeof *p);
    assert_int_equal(lp_gbdt_predict(m, Xt, nt, p, &err), LP_OK);
    size_t correct = 0;
    for (size_t i = 0; i < nt; i++) {
        const float *r = p + i * 3;
        assert_true(fabsf(r[0] + r[1] + r[2] - 1.0f) < 1e-5f);
        int arg = r[1] > r[0] ? 1 : 0;
        arg = r[2] > r[arg] ? 2 : arg;
        correct += arg == (int)yt[i];
    }
    /* Bayes accuracy of these blobs is about 0.95; a broken softmax lands near 1/3. */
    double acc = (double)correct / (double)nt;
    print_message("multiclass test accuracy %.4f\n", acc);
    assert_true(acc > 0.9);
    /* the base score is the log class prior */
    assert_true(fabs(exp(lp_gbdt_base_score(m, 0)) - 1.0 / 3) < 0.05);
    lp_gbdt_free(m);
    free(X); free(y); free(Xt); free(yt); free(p);
}

/* y = sin(2 x0) + x1^2 / 2 + 0.1 noise: trees must beat the mean predictor by far. */
static void make_reg(size_t n, uint64_t seed, float *X, float *y)
{
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < 3; j++)
            X[i * 3 + j] = (float)(lp_rng_uniform(&rng) * 4.0 - 2.0);
        y[i] = (float)(sin(2.0 * X[i * 3]) + 0.5 * X[i * 3 + 1] * X[i * 3 + 1] +
                       0.1 * lp_rng_normal(&rng));
    }
}

static void test_regression_and_early_stopping(void **state)
{
    (void)state;
    const size_t n = 4000, nv = 1000;
    float *X = malloc(n * 3 * sizeof *X), *y = malloc(n * sizeof *y);
    float *Xv = malloc(nv * 3 * sizeof *Xv), *yv = malloc(nv * sizeof *yv);
    make_reg(n, 5, X, y);
    make_reg(nv, 6, Xv, yv);
    lp_gbdt_opts o = lp_gbdt_opts_default();
    o.n_rounds = 150;
    o.max_leaves = 16;
    lp_gbdt *m = NULL;
    lp_err err;
    assert_int_equal(lp_gbdt_fit(X, y, NULL, n, 3, &o, Xv, yv, nv, &m, &err), LP_OK);
    float *p = malloc(nv * sizeof *p);
    assert_int_equal(lp_gbdt_predict(m, Xv, nv, p, &err), LP_OK);
    double mean = 0, se = 0, sm = 0;
    for (size_t i = 0; i < n; i++)
        mean += y[i];
    mean /= (double)n;
    for (size_t i = 0; i < nv; i++) {
        se += (p[i] - yv[i]) * (p[i] - yv[i]);
        sm += (mean - yv[i]) * (mean - yv[i]);
    }
    double rmse = sqrt(se / (double)nv), rmse_mean = sqrt(sm / (double)nv);
    print_message("regression RMSE %.4f, mean predictor %.4f\n", rmse, rmse_mean);
    assert_true(rmse < 0.25 * rmse_mean);
    /* the recorded validation loss is the RMSE of the returned model */
    assert_true(fabs(lp_gbdt_best_valid_loss(m) - rmse) < 1e-4);
    lp_gbdt_free(m);

    /* Early stopping: deep trees, tiny leaves and a large step overfit 300 rows quickly. */
    const size_t ns = 300;
    o.n_rounds = 500;
    o.learning_rate = 0.5f;
    o.max_leaves = 64;
    o.min_child_weight = 0.0f;
    o.lambda = 0.0f;
    o.early_stopping_rounds = 10;
    assert_int_equal(lp_gbdt_fit(X, y, NULL, ns, 3, &o, Xv, yv, nv, &m, &err), LP_OK);
    size_t nh;
    const double *hist = lp_gbdt_valid_history(m, &nh);
    size_t kept = lp_gbdt_n_rounds(m);
    print_message("early stopping: kept %zu of %zu trained rounds\n", kept, nh);
    assert_true(nh < 500);
    assert_int_equal(nh, kept + 10);
    for (size_t i = 0; i < nh; i++)
        assert_true(hist[i] >= hist[kept - 1]);
    assert_true(lp_gbdt_best_valid_loss(m) == hist[kept - 1]);
    /* the kept model really is the best round's model */
    assert_int_equal(lp_gbdt_predict(m, Xv, nv, p, &err), LP_OK);
    se = 0;
    for (size_t i = 0; i < nv; i++)
        se += (p[i] - yv[i]) * (p[i] - yv[i]);
    assert_true(fabs(sqrt(se / (double)nv) - hist[kept - 1]) < 1e-4);
    lp_gbdt_free(m);
    free(X); free(y); free(Xv); free(yv); free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_breast_cancer),
        cmocka_unit_test(test_multiclass),
        cmocka_unit_test(test_regression_and_early_stopping),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
