/*
 * test_backend_transformer.c - the transformer ops of the kernel table (layernorm_forward,
 * softmax_rows, gather_rows): the "cpu" table against the "ref" table on seeded random inputs
 * at sizes below and above LP_BACKEND_OMP_MIN, hand-computed values for the formulas (so a
 * wrong ref fails too), masking and aliasing semantics, and the argument errors. Inputs go
 * through each table's own alloc/copy members, so a device table can join `tables` unchanged.
 */
#include "backend_util.h"

/* The table under test against ref; tests/gpu/test_cuda_transformer.c sets it to the CUDA
 * table and includes this file. `cpu` below names whichever table this is. */
#ifndef LP_TRANSFORMER_TABLE
#define LP_TRANSFORMER_TABLE lp_backend_cpu()
#endif

/* float (cpu) against double (ref): one expf / float rounding per term, sums in double. */
#define TOL_ATOL 1e-6
#define TOL_RTOL 1e-5

static const size_t shapes[][2] = {{1, 1}, {3, 7}, {17, 384}, {1200, 65}};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static float *run_layernorm(const lp_backend *be, size_t n, size_t d, const float *x,
                            const float *g, const float *b, float **mean, float **rstd)
{
    float *dx = bu_upf(be, x, n * d), *dg = bu_upf(be, g, d), *db = bu_upf(be, b, d);
    float *dm = bu_upf(be, x, n), *dr = bu_upf(be, x, n);
    lp_err err;
    /* in place: y aliases x */
    assert_int_equal(be->layernorm_forward(be, n, d, 1e-12f, dx, dg, db, dx, dm, dr, &err), LP_OK);
    float *y = bu_downf(be, dx, n * d);
    *mean = bu_downf(be, dm, n);
    *rstd = bu_downf(be, dr, n);
    bu_free(be, dx);
    bu_free(be, dg);
    bu_free(be, db);
    bu_free(be, dm);
    bu_free(be, dr);
    return y;
}

static void test_layernorm(void **state)
{
    (void)state;
    const lp_backend *ref = lp_backend_ref(), *cpu = LP_TRANSFORMER_TABLE;
    lp_rng rng;
    lp_rng_seed(&rng, 3);
    for (size_t s = 0; s < NSHAPES; s++) {
        size_t n = shapes[s][0], d = shapes[s][1];
        float *x = bu_rand(&rng, n * d, -4, 6), *g = bu_rand(&rng, d, 0.5, 1.5),
              *b = bu_rand(&rng, d, -1, 1);
        float *m1, *r1, *m2, *r2;
        float *y1 = run_layernorm(ref, n, d, x, g, b, &m1, &r1);
        float *y2 = run_layernorm(cpu, n, d, x, g, b, &m2, &r2);
        bu_close(y2, y1, n * d, 1e-5, TOL_RTOL, "layernorm y");
        bu_close(m2, m1, n, TOL_ATOL, TOL_RTOL, "layernorm mean");
        bu_close(r2, r1, n, TOL_ATOL, TOL_RTOL, "layernorm rstd");
        free(x), free(g), free(b), free(y1), free(y2), free(m1), free(m2), free(r1), free(r2);
    }
    /* By hand: x = (1, 2, 3, 4), mean 2.5, biased var 1.25, gamma 2, beta 1, eps 0. */
    float x[4] = {1, 2, 3, 4}, g[4] = {2, 2, 2, 2}, b[4] = {1, 1, 1, 1}, y[4], mu, rs;
    assert_int_equal(ref->layernorm_forward(ref, 1, 4, 0, x, g, b, y, &mu, &rs, NULL), LP_OK);
    float want[4];
    for (int j = 0; j < 4; j++)
        want[j] = (float)(2 * (x[j] - 2.5) / sqrt(1.25) + 1);
    bu_close(y, want, 4, 1e-6, 1e-6, "layernorm by hand");
    assert_true(fabsf(mu - 2.5f) < 1e-7f && fabsf(rs - (float)(1 / sqrt(1.25))) < 1e-6f);
    lp_err err;
    assert_int_equal(cpu->layernorm_forward(cpu, 1, 0, 0, x, g, b, y, NULL, NULL, &err), LP_EINVAL);
    assert_int_equal(cpu->layernorm_forward(cpu, 1, 4, -1, x, g, b, y, NULL, NULL, &err),
                     LP_EINVAL);
    assert_non_null(strstr(err.msg, "eps"));
    assert_int_equal(ref->layernorm_forward(ref, 1, 4, 0, x, NULL, b, y, NULL, NULL, &err),
                     LP_EINVAL);
    assert_non_null(strstr(err.msg, "gamma"));
}

static float *run_softmax(const lp_backend *be, size_t n, size_t d, size_t group, const float *x,
                          const float *mask)
{
    float *dx = bu_upf(be, x, n * d), *dm = mask ? bu_upf(be, mask, n / group * d) : NULL;
    lp_err err;
    assert_int_equal(be->softmax_rows(be, n, d, group, dm, dx, dx, &err), LP_OK);
    float *y = bu_downf(be, dx, n * d);
    bu_free(be, dx);
    if (dm)
        bu_free(be, dm);
    return y;
}

static void test_softmax_rows(void **state)
{
    (void)state;
    const lp_backend *ref = lp_backend_ref(), *cpu = LP_TRANSFORMER_TABLE;
    lp_rng rng;
    lp_rng_seed(&rng, 5);
    /* (B*H*T, T) attention shapes: group = H*T rows share one key mask row. */
    const size_t cases[][3] = {{1, 1, 1}, {4, 9, 2}, {12 * 30 * 4, 30, 12 * 30}, {6, 5, 6}};
    for (size_t c = 0; c < 4; c++) {
        size_t n = cases[c][0], d = cases[c][1], group = cases[c][2];
        float *x = bu_rand(&rng, n * d, -8, 8);
        float *mask = malloc(n / group * d * sizeof *mask);
        for (size_t i = 0; i < n / group * d; i++)
            mask[i] = (i % d) == 0 || lp_rng_uniform(&rng) < 0.7 ? 1.0f : 0.0f;
        for (int masked = 0; masked < 2; masked++) {
            float *y1 = run_softmax(ref, n, d, group, x, masked ? mask : NULL);
            float *y2 = run_softmax(cpu, n, d, group, x, masked ? mask : NULL);
            bu_close(y2, y1, n * d, TOL_ATOL, TOL_RTOL, "softmax_rows");
            for (size_t i = 0; i < n; i++) {
                double sum = 0;
                for (size_t j = 0; j < d; j++) {
                    sum += y2[i * d + j];
                    if (masked && mask[(i / group) * d + j] == 0)
                        assert_true(y2[i * d + j] == 0.0f);
                }
                assert_true(fabs(sum - 1) < 1e-5);
            }
            free(y1), free(y2);
        }
        free(x), free(mask);
    }
    /* By hand: softmax(0, ln 3, masked 100) = (1/4, 3/4, 0); an all-masked row is all 0. */
    float x[6] = {0, logf(3), 100, 1, 2, 3}, m[6] = {1, 1, 0, 0, 0, 0}, y[6];
    float *yh = run_softmax(cpu, 2, 3, 1, x, m);
    float want[6] = {0.25f, 0.75f, 0, 0, 0, 0};
    bu_close(yh, want, 6, 1e-6, 1e-6, "softmax by hand");
    free(yh);
    lp_err err;
    assert_int_equal(ref->softmax_rows(ref, 3, 2, 2, NULL, x, y, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "group"));
    assert_int_equal(cpu->softmax_rows(cpu, 3, 2, 0, NULL, x, y, &err), LP_EINVAL);
}

static void test_gather_rows(void **state)
{
    (void)state;
    const lp_backend *tables[] = {lp_backend_ref(), LP_TRANSFORMER_TABLE};
    lp_rng rng;
    lp_rng_seed(&rng, 9);
    size_t rows = 500, d = 96, n = 700; /* n * d > LP_BACKEND_OMP_MIN */
    float *table = bu_rand(&rng, rows * d, -1, 1);
    int32_t *idx = malloc(n * sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = (int32_t)lp_rng_below(&rng, rows);
    for (size_t t = 0; t < 2; t++) {
        const lp_backend *be = tables[t];
        float *zero = calloc(n * d, sizeof *zero);
        float *dt = bu_upf(be, table, rows * d), *dout = bu_upf(be, zero, n * d);
        free(zero);
        int32_t *di = bu_up(be, idx, n * sizeof *idx);
        lp_err err;
        assert_int_equal(be->gather_rows(be, n, d, rows, dt, di, dout, &err), LP_OK);
        float *out = bu_downf(be, dout, n * d);
        for (size_t i = 0; i < n; i++)
            assert_memory_equal(out + i * d, table + (size_t)idx[i] * d, d * sizeof(float));
        int32_t bad = (int32_t)rows;
        assert_int_equal(be->copy_h2d(be, di + 3, &bad, sizeof bad, NULL), LP_OK);
        assert_int_equal(be->gather_rows(be, n, d, rows, dt, di, dout, &err), LP_EINVAL);
        assert_non_null(strstr(err.msg, "idx[3] is 500"));
        free(out);
        bu_free(be, dt), bu_free(be, dout), bu_free(be, di);
    }
    free(table), free(idx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_softmax_rows),
        cmocka_unit_test(test_gather_rows),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
