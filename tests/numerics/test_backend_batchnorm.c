/*
 * test_backend_batchnorm.c - batchnorm_forward / batchnorm_backward of the kernel table: the
 * "cpu" table against the "ref" table on seeded random NCHW inputs (train and eval mode, sizes
 * below and above LP_BACKEND_OMP_MIN, in-place aliasing), ref against hand-computed values and
 * against central finite differences of a scalar loss (so a wrong ref fails too), the running
 * averages (PyTorch's unbiased update), and the argument errors. Inputs go through each table's
 * own alloc/copy members, so tests/gpu/test_cuda_batchnorm.c runs this file on the CUDA table.
 */
#include "backend_util.h"

/* The table under test against ref; the GPU test sets it to the CUDA table. */
#ifndef LP_BATCHNORM_TABLE
#define LP_BATCHNORM_TABLE lp_backend_cpu()
#endif

/* float outputs of double statistics: one float rounding of (x - mu) inv gamma + beta, and
 * sums of up to 150000 terms accumulated in double (order differs by table). */
#define TOL_ATOL 2e-5
#define TOL_RTOL 2e-5
/* dgamma / dbeta are sums over N values of O(1) terms: float rounding of the result only. */
#define TOL_SUM_RTOL 1e-5

#define EPS 1e-5f
#define MOM 0.1f

/* (n, c, hw): one value per channel, odd planes, and one above LP_BACKEND_OMP_MIN. */
static const size_t shapes[][3] = {{1, 1, 1}, {2, 3, 1}, {3, 5, 7}, {16, 8, 49}, {64, 4, 600}};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

typedef struct bn_out {
    float *y, *rm, *rv, *dx, *dg, *db;
} bn_out;

static void bn_out_free(bn_out *o)
{
    free(o->y), free(o->rm), free(o->rv), free(o->dx), free(o->dg), free(o->db);
}

/* Forward then backward on `be` in mode `train`; y in place over x, dx in place over dy. */
static bn_out run_bn(const lp_backend *be, size_t n, size_t c, size_t hw, bool train,
                     const float *x, const float *g, const float *b, const float *rm,
                     const float *rv, const float *dy)
{
    size_t nv = n * c * hw;
    float *dx_ = bu_upf(be, x, nv), *dxin = bu_upf(be, x, nv), *dg = bu_upf(be, g, c),
          *db = bu_upf(be, b, c), *drm = bu_upf(be, rm, c), *drv = bu_upf(be, rv, c),
          *ddy = bu_upf(be, dy, nv), *dgam = bu_upf(be, g, c), *dbet = bu_upf(be, g, c);
    float *rm0 = bu_upf(be, rm, c), *rv0 = bu_upf(be, rv, c);
    lp_err err;
    assert_int_equal(
        be->batchnorm_forward(be, n, c, hw, EPS, MOM, train, dx_, dg, db, drm, drv, dx_, &err),
        LP_OK);
    /* backward reads the forward INPUT (dxin) and the running statistics before the update */
    assert_int_equal(be->batchnorm_backward(be, n, c, hw, EPS, train, dxin, dg, rm0, rv0, ddy, ddy,
                                            dgam, dbet, &err),
                     LP_OK);
    bn_out o = {bu_downf(be, dx_, nv), bu_downf(be, drm, c),  bu_downf(be, drv, c),
                bu_downf(be, ddy, nv), bu_downf(be, dgam, c), bu_downf(be, dbet, c)};
    void *all[] = {dx_, dxin, dg, db, drm, drv, ddy, dgam, dbet, rm0, rv0};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        bu_free(be, all[i]);
    return o;
}

static void test_parity(void **state)
{
    (void)state;
    const lp_backend *ref = lp_backend_ref(), *be = LP_BATCHNORM_TABLE;
    lp_rng rng;
    lp_rng_seed(&rng, 17);
    for (size_t s = 0; s < NSHAPES; s++)
        for (int train = 0; train < 2; train++) {
            size_t n = shapes[s][0], c = shapes[s][1], hw = shapes[s][2], nv = n * c * hw;
            /* an offset mean (3) so a one-pass E[x^2] - E[x]^2 would lose digits */
            float *x = bu_rand(&rng, nv, 1, 5), *g = bu_rand(&rng, c, 0.5, 1.5),
                  *b = bu_rand(&rng, c, -1, 1), *rm = bu_rand(&rng, c, -1, 1),
                  *rv = bu_rand(&rng, c, 0.5, 2), *dy = bu_rand(&rng, nv, -1, 1);
            bn_out w = run_bn(ref, n, c, hw, train, x, g, b, rm, rv, dy);
            bn_out o = run_bn(be, n, c, hw, train, x, g, b, rm, rv, dy);
            bu_close(o.y, w.y, nv, TOL_ATOL, TOL_RTOL, "batchnorm y");
            bu_close(o.rm, w.rm, c, TOL_ATOL, TOL_RTOL, "batchnorm run_mean");
            bu_close(o.rv, w.rv, c, TOL_ATOL, TOL_RTOL, "batchnorm run_var");
            bu_close(o.dx, w.dx, nv, TOL_ATOL, TOL_RTOL, "batchnorm dx");
            bu_close(o.dg, w.dg, c, TOL_ATOL, TOL_SUM_RTOL, "batchnorm dgamma");
            bu_close(o.db, w.db, c, TOL_ATOL, TOL_SUM_RTOL, "batchnorm dbeta");
            if (!train) { /* eval leaves the running statistics alone */
                assert_memory_equal(o.rm, rm, c * sizeof(float));
                assert_memory_equal(o.rv, rv, c * sizeof(float));
            }
            bn_out_free(&w), bn_out_free(&o);
            free(x), free(g), free(b), free(rm), free(rv), free(dy);
        }
}

/* By hand, one channel, x = (1, 2, 3, 4): mean 2.5, biased var 1.25, unbiased 5/3. */
static void test_by_hand(void **state)
{
    (void)state;
    const lp_backend *ref = lp_backend_ref();
    float x[4] = {1, 2, 3, 4}, y[4], g = 2, b = 1, rm = 0.5f, rv = 2;
    assert_int_equal(
        ref->batchnorm_forward(ref, 2, 1, 2, EPS, MOM, true, x, &g, &b, &rm, &rv, y, NULL), LP_OK);
    for (int i = 0; i < 4; i++)
        assert_true(fabs(y[i] - (2 * (x[i] - 2.5) / sqrt(1.25 + EPS) + 1)) < 1e-5);
    assert_true(fabsf(rm - (0.9f * 0.5f + 0.1f * 2.5f)) < 1e-6f);
    assert_true(fabsf(rv - (float)(0.9 * 2 + 0.1 * 5.0 / 3.0)) < 1e-6f);
    /* eval with the running statistics rm = 0, rv = 1 - eps: y = 2 x + 1 */
    rm = 0, rv = 1 - EPS;
    assert_int_equal(
        ref->batchnorm_forward(ref, 4, 1, 1, EPS, MOM, false, x, &g, &b, &rm, &rv, y, NULL), LP_OK);
    for (int i = 0; i < 4; i++)
        assert_true(fabsf(y[i] - (2 * x[i] + 1)) < 1e-5f);
}

/* Finite differences of L = sum w_i y_i through the train-mode forward of ref, in double
 * via central differences with step 1e-2 on x in [1, 5] (the loss is smooth). */
static void test_fd(void **state)
{
    (void)state;
    const lp_backend *ref = lp_backend_ref();
    enum { FN = 3, FC = 2, FHW = 4, NV = FN * FC * FHW };
    lp_rng rng;
    lp_rng_seed(&rng, 5);
    float *x = bu_rand(&rng, NV, 1, 5), *w = bu_rand(&rng, NV, -1, 1);
    float g[FC] = {1.5f, 0.7f}, b[FC] = {0.2f, -0.3f}, rm[FC] = {0}, rv[FC] = {1, 1}, y[NV];
    float dx[NV], dg[FC], db[FC];
    assert_int_equal(
        ref->batchnorm_backward(ref, FN, FC, FHW, EPS, true, x, g, rm, rv, w, dx, dg, db, NULL),
        LP_OK);
    double h = 1e-2;
    for (size_t i = 0; i < NV; i++) {
        double l[2];
        float keep = x[i];
        for (int sgn = 0; sgn < 2; sgn++) {
            x[i] = (float)(keep + (sgn ? h : -h));
            assert_int_equal(
                ref->batchnorm_forward(ref, FN, FC, FHW, EPS, 0, true, x, g, b, rm, rv, y, NULL),
                LP_OK);
            l[sgn] = 0;
            for (size_t j = 0; j < NV; j++)
                l[sgn] += (double)w[j] * y[j];
        }
        x[i] = keep;
        double fd = (l[1] - l[0]) / (2 * h);
        /* float y: rounding 1e-7 / h ~ 1e-5 on the difference quotient */
        assert_true(fabs(fd - dx[i]) < 2e-3 * (1 + fabs(fd)));
    }
    /* dbeta = sum w per channel */
    for (size_t ch = 0; ch < FC; ch++) {
        double s = 0;
        for (size_t bb = 0; bb < FN; bb++)
            for (size_t p = 0; p < FHW; p++)
                s += w[(bb * FC + ch) * FHW + p];
        assert_true(fabs(db[ch] - s) < 1e-5);
    }
    free(x), free(w);
}

static void test_errors(void **state)
{
    (void)state;
    const lp_backend *be = LP_BATCHNORM_TABLE;
    float *x = bu_upf(be, (float[4]){1, 2, 3, 4}, 4), *p = bu_upf(be, (float[4]){1, 1, 1, 1}, 4);
    lp_err err;
    assert_int_equal(be->batchnorm_forward(be, 1, 0, 4, EPS, MOM, true, x, p, p, p, p, x, &err),
                     LP_EINVAL);
    assert_non_null(strstr(err.msg, "c is 0"));
    assert_int_equal(be->batchnorm_forward(be, 0, 1, 4, EPS, MOM, true, x, p, p, p, p, x, &err),
                     LP_EINVAL);
    assert_int_equal(be->batchnorm_forward(be, 1, 1, 4, 0, MOM, true, x, p, p, p, p, x, &err),
                     LP_EINVAL);
    assert_non_null(strstr(err.msg, "eps"));
    assert_int_equal(be->batchnorm_forward(be, 1, 1, 4, EPS, 1.5f, true, x, p, p, p, p, x, &err),
                     LP_EINVAL);
    assert_non_null(strstr(err.msg, "momentum"));
    assert_int_equal(be->batchnorm_forward(be, 1, 1, 4, EPS, MOM, true, x, p, NULL, p, p, x, &err),
                     LP_EINVAL);
    assert_non_null(strstr(err.msg, "beta"));
    assert_int_equal(
        be->batchnorm_backward(be, 1, 1, 4, EPS, false, x, p, NULL, p, x, x, p, p, &err),
        LP_EINVAL);
    assert_non_null(strstr(err.msg, "run_mean"));
    assert_int_equal(
        be->batchnorm_backward(be, 1, 1, 4, EPS, true, x, p, NULL, NULL, x, x, NULL, p, &err),
        LP_EINVAL);
    assert_non_null(strstr(err.msg, "dgamma"));
    /* train-mode backward needs no running statistics */
    assert_int_equal(
        be->batchnorm_backward(be, 1, 1, 4, EPS, true, x, p, NULL, NULL, x, NULL, p, p + 1, &err),
        LP_OK);
    bu_free(be, x);
    bu_free(be, p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parity),
        cmocka_unit_test(test_by_hand),
        cmocka_unit_test(test_fd),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
