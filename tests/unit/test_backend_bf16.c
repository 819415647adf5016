/*
 * test_backend_bf16.c - the cpu table's bfloat16 inference products (bf16_pack / bf16_linear,
 * Intel AMX): against a double-precision sum over the same bfloat16-rounded operands, for row
 * counts around the 16/32-row tiles (1, 15, 16, 17, 31, 32, 33, 100) and the encoder's shapes,
 * with and without bias; rows of y past n untouched; the same bits with 1 and 2 threads (each
 * 32 x 32 block is one thread's, summed in one order); shape errors. On a CPU without AMX the
 * pack must say LP_EUNSUPPORTED, and the numeric cases are skipped with a message (the error
 * paths still run).
 */
#include "lp_test.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static float bf16_round(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&f, &u, sizeof f);
    return f;
}

static bool have_amx(const lp_backend *be)
{
    float w[32 * 32] = {0};
    void *p = NULL;
    lp_err err;
    lp_err_clear(&err);
    lp_status st = be->bf16_pack(be, 32, 32, w, &p, &err);
    be->bf16_free(be, p);
    if (st == LP_EUNSUPPORTED)
        print_message("no AMX here (%s): numeric cases skipped\n", lp_err_text(&err));
    else
        assert_int_equal(st, LP_OK);
    return st == LP_OK;
}

static void check_case(const lp_backend *be, size_t n, size_t in, size_t out, bool with_bias,
                       lp_rng *r)
{
    float *x = malloc(n * in * sizeof *x), *w = malloc(out * in * sizeof *w);
    float *b = malloc(out * sizeof *b), *y = malloc((n + 1) * out * sizeof *y);
    for (size_t i = 0; i < n * in; i++)
        x[i] = (float)lp_rng_normal(r);
    for (size_t i = 0; i < out * in; i++)
        w[i] = (float)(lp_rng_normal(r) * 0.05);
    for (size_t i = 0; i < out; i++)
        b[i] = (float)lp_rng_normal(r);
    for (size_t i = 0; i < (n + 1) * out; i++)
        y[i] = -7.0f; /* the row past n must keep this */
    void *p = NULL;
    lp_err err;
    lp_err_clear(&err);
    assert_int_equal(be->bf16_pack(be, out, in, w, &p, &err), LP_OK);
    assert_int_equal(be->bf16_linear(be, n, in, out, x, p, with_bias ? b : NULL, y, &err), LP_OK);
    for (size_t i = 0; i < n; i++)
        for (size_t o = 0; o < out; o++) {
            double s = with_bias ? b[o] : 0, mag = fabs(s);
            for (size_t k = 0; k < in; k++) {
                double t = (double)bf16_round(x[i * in + k]) * bf16_round(w[o * in + k]);
                s += t;
                mag += fabs(t);
            }
            /* float32 accumulation of `in` terms */
            double tol = 4e-7 * (double)in * mag / sqrt((double)in) + 1e-6;
            if (fabs(y[i * out + o] - s) > tol)
                fail_msg("n=%zu in=%zu out=%zu row %zu col %zu: %.8g vs %.8g (tol %.3g)", n, in,
                         out, i, o, y[i * out + o], s, tol);
        }
    for (size_t o = 0; o < out; o++)
        assert_true(y[n * out + o] == -7.0f);
    /* 1 thread and 2 threads: the same bits */
    float *y1 = malloc(n * out * sizeof *y1);
    int keep = omp_get_max_threads();
    omp_set_num_threads(1);
    assert_int_equal(be->bf16_linear(be, n, in, out, x, p, with_bias ? b : NULL, y1, &err), LP_OK);
    omp_set_num_threads(keep);
    assert_memory_equal(y, y1, n * out * sizeof *y1);
    be->bf16_free(be, p);
    free(x);
    free(w);
    free(b);
    free(y);
    free(y1);
}

static void test_products(void **state)
{
    (void)state;
    const lp_backend *be = lp_backend_cpu();
    assert_non_null(be->bf16_pack);
    if (!have_amx(be))
        return;
    lp_rng r;
    lp_rng_seed(&r, 9);
    static const size_t rows[] = {1, 15, 16, 17, 31, 32, 33, 100};
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        check_case(be, rows[i], 32, 32, i % 2, &r);
        check_case(be, rows[i], 96, 64, true, &r);
    }
    /* the MiniLM shapes: q|k|v, attention output, feed-forward in and out */
    check_case(be, 70, 384, 1152, true, &r);
    check_case(be, 70, 384, 384, true, &r);
    check_case(be, 45, 384, 1536, true, &r);
    check_case(be, 45, 1536, 384, true, &r);
}

static void test_errors(void **state)
{
    (void)state;
    const lp_backend *be = lp_backend_cpu();
    lp_err err;
    lp_err_clear(&err);
    float w[64 * 64] = {0}, x[64] = {0}, y[64] = {0};
    void *p = NULL;
    /* a side that is not a multiple of 32 (or no AMX): unsupported, nothing packed */
    assert_int_equal(be->bf16_pack(be, 48, 32, w, &p, &err), LP_EUNSUPPORTED);
    assert_null(p);
    assert_int_equal(be->bf16_pack(be, 32, 40, w, &p, &err), LP_EUNSUPPORTED);
    assert_int_equal(be->bf16_linear(be, 1, 32, 32, x, NULL, NULL, y, &err), LP_EINVAL);
    be->bf16_free(be, NULL);
    if (be->bf16_pack(be, 32, 64, w, &p, &err) != LP_OK)
        return;
    assert_int_equal(be->bf16_linear(be, 1, 32, 32, x, p, NULL, y, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "packed as 32 x 64"));
    assert_int_equal(be->bf16_linear(be, 0, 64, 32, x, p, NULL, y, &err), LP_OK);
    be->bf16_free(be, p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_products),
                                       cmocka_unit_test(test_errors)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
