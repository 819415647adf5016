/*
 * test_cpu_vmath.c - the vectorised exp and GELU of the cpu table (backend/cpu_vmath.c) at
 * every instruction-set level this machine runs (baseline, AVX2, AVX-512F), against libm in
 * double on dense grids: the error bounds cpu_vmath.h states, the special values (underflow to
 * 0, overflow to +inf, NaN), the left GELU tail's relative accuracy (which 0.5 x (1 + erf)
 * computed in float loses), lengths that are not a multiple of any vector width, aliasing, and
 * the levels agreeing with each other. Then the table ops built on them: GELU forward/backward
 * through act_forward / act_backward and softmax_rows on long rows with masks.
 */
#include "backend_util.h"

#include "backend/cpu_vmath.h"

#include <math.h>

/* exp: Cephes expf is within 2 ulp (1.2e-7) plus the float rounding of the argument
 * reduction; 3e-7 relative leaves room, a degree-5 polynomial or a wrong ln 2 split is 1e-6 or
 * worse. */
#define TOL_EXP_REL 3e-7
/* GELU: |x Phi(x)| rounds to float with half an ulp of |x| <= 12 (4.8e-7 at 12); the erf
 * pieces add ~1e-8. */
#define TOL_GELU_ABS 5e-7
/* Left tail x in [-7, -1]: x Phi(x) from erfc = exp(-a^2 + g(a)) inherits the float rounding
 * of a^2 (a = |x| / sqrt 2 rounded, then squared: ~2 a^2 2^-24, 3e-6 at x = -7) and of g,
 * measured up to 2e-5; from 1 + erf(z) in float the error is 1e-3 at x = -4 and 1e-1 at
 * x = -5.5. */
#define TOL_GELU_TAIL_REL 5e-5
/* Derivative Phi(x) + x phi(x) in [-0.13, 1.13]: float rounding of the sum. */
#define TOL_GELU_BW_ABS 5e-7

#define NGRID 400001

static double gelu_ref(double x)
{
    return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440));
}

static double gelu_deriv_ref(double x)
{
    return 0.5 * (1.0 + erf(x * 0.70710678118654752440)) +
           x * 0.39894228040143267794 * exp(-0.5 * x * x);
}

static float *grid(double lo, double hi, size_t n)
{
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * (double)i / (double)(n - 1));
    return x;
}

static void test_exp(void **state)
{
    (void)state;
    float *x = grid(-87.3, 88.0, NGRID), *y = malloc(NGRID * sizeof *y);
    assert_non_null(y);
    for (int lv = 0; lv < 3; lv++) {
        const lp_bk_vm_table *t = lp_bk_vm_get(lv);
        if (!t)
            continue;
        t->exp(NGRID, x, y);
        double worst = 0;
        size_t at = 0;
        for (size_t i = 0; i < NGRID; i++) {
            double want = exp((double)x[i]), rel = fabs(y[i] - want) / want;
            if (rel > worst)
                worst = rel, at = i;
        }
        if (worst > TOL_EXP_REL)
            fail_msg("exp (%s): relative error %.3g at x = %.9g", t->name, worst, (double)x[at]);
        /* special values, at an odd length so the tail of a vector loop runs them too */
        float sx[7] = {0.0f, -88.0f, -1e30f, -INFINITY, 89.0f, INFINITY, NAN}, sy[7];
        t->exp(7, sx, sy);
        assert_true(sy[0] == 1.0f);
        assert_true(sy[1] == 0.0f && sy[2] == 0.0f && sy[3] == 0.0f);
        assert_true(isinf(sy[4]) && sy[4] > 0 && isinf(sy[5]) && sy[5] > 0);
        assert_true(isnan(sy[6]));
        /* in place */
        float a[3] = {1.0f, -1.0f, 2.0f};
        t->exp(3, a, a);
        assert_true(fabs(a[0] - exp(1.0)) < 1e-6 && fabs(a[1] - exp(-1.0)) < 1e-7 &&
                    fabs(a[2] - exp(2.0)) < 2e-6);
    }
    free(x);
    free(y);
}

static void test_gelu(void **state)
{
    (void)state;
    float *x = grid(-12, 12, NGRID), *y = malloc(NGRID * sizeof *y);
    float *tail = grid(-7, -1, NGRID), *dy = malloc(NGRID * sizeof *dy);
    float *dx = malloc(NGRID * sizeof *dx), *best = malloc(NGRID * sizeof *best);
    assert_non_null(y), assert_non_null(dy), assert_non_null(dx), assert_non_null(best);
    for (size_t i = 0; i < NGRID; i++)
        dy[i] = 1.0f;
    lp_bk_vm_get(-1)->gelu(NGRID, x, best);
    for (int lv = 0; lv < 3; lv++) {
        const lp_bk_vm_table *t = lp_bk_vm_get(lv);
        if (!t)
            continue;
        t->gelu(NGRID, x, y);
        for (size_t i = 0; i < NGRID; i++) {
            double e = fabs(y[i] - gelu_ref(x[i]));
            if (e > TOL_GELU_ABS)
                fail_msg("gelu (%s): error %.3g at x = %.9g", t->name, e, (double)x[i]);
            /* every level evaluates the same float operations (no FMA contraction in C11) */
            if (fabsf(y[i] - best[i]) > 2e-7f * (1 + fabsf(best[i])))
                fail_msg("gelu (%s) vs widest level: %.9g vs %.9g at x = %.9g", t->name,
                         (double)y[i], (double)best[i], (double)x[i]);
        }
        t->gelu(NGRID, tail, y);
        for (size_t i = 0; i < NGRID; i++) {
            double want = gelu_ref(tail[i]), rel = fabs(y[i] - want) / fabs(want);
            if (rel > TOL_GELU_TAIL_REL)
                fail_msg("gelu (%s): tail relative error %.3g at x = %.9g", t->name, rel,
                         (double)tail[i]);
        }
        t->gelu_backward(NGRID, x, dy, dx);
        for (size_t i = 0; i < NGRID; i++) {
            double e = fabs(dx[i] - gelu_deriv_ref(x[i]));
            if (e > TOL_GELU_BW_ABS)
                fail_msg("gelu backward (%s): error %.3g at x = %.9g", t->name, e, (double)x[i]);
        }
        /* the two pieces meet at |z| = 1 (x = +-sqrt 2) without a step */
        float edge[4] = {-1.41421354f, -1.41421342f, 1.41421342f, 1.41421354f}, ey[4];
        t->gelu(4, edge, ey);
        for (int k = 0; k < 4; k++)
            assert_true(fabs(ey[k] - gelu_ref(edge[k])) < 2e-7);
        float sx[5] = {0.0f, 40.0f, -40.0f, NAN, 3.0f}, sy[5];
        t->gelu(5, sx, sx); /* in place */
        memcpy(sy, sx, sizeof sy);
        assert_true(sy[0] == 0.0f && sy[1] == 40.0f && fabsf(sy[2]) < 1e-30f && isnan(sy[3]));
        assert_true(fabs(sy[4] - gelu_ref(3.0)) < 5e-7);
    }
    free(x), free(y), free(tail), free(dy), free(dx), free(best);
}

/* The table ops: act_forward / act_backward GELU_ERF at sizes that do and do not fork a team
 * (the chunked loop must cover every element once), softmax_rows on rows longer than a vector
 * with masks and -inf scores. */
static void test_table_ops(void **state)
{
    (void)state;
    const lp_backend *cpu = lp_backend_cpu();
    lp_rng rng;
    lp_rng_seed(&rng, 41);
    const size_t sizes[] = {1, 15, 4097, 70001};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        float *x = bu_rand(&rng, n, -8, 8), *dy = bu_rand(&rng, n, -1, 1);
        float *y = malloc(n * sizeof *y), *dx = malloc(n * sizeof *dx);
        assert_non_null(y), assert_non_null(dx);
        lp_err err;
        assert_int_equal(cpu->act_forward(cpu, LP_ACT_KIND_GELU_ERF, n, x, y, &err), LP_OK);
        assert_int_equal(cpu->act_backward(cpu, LP_ACT_KIND_GELU_ERF, n, x, dy, dx, &err), LP_OK);
        for (size_t i = 0; i < n; i++) {
            if (fabs(y[i] - gelu_ref(x[i])) > TOL_GELU_ABS)
                fail_msg("act_forward gelu n=%zu: %.9g at x[%zu] = %.9g", n, (double)y[i], i,
                         (double)x[i]);
            if (fabs(dx[i] - dy[i] * gelu_deriv_ref(x[i])) > TOL_GELU_BW_ABS)
                fail_msg("act_backward gelu n=%zu: %.9g at x[%zu] = %.9g", n, (double)dx[i], i,
                         (double)x[i]);
        }
        free(x), free(dy), free(y), free(dx);
    }
    /* softmax_rows: 130 rows of 37 in groups of 10 (13 mask rows), scores in [-60, 20] */
    size_t n = 130, d = 37, group = 10;
    float *x = bu_rand(&rng, n * d, -60, 20), *mask = malloc(n / group * d * sizeof *mask);
    float *y = malloc(n * d * sizeof *y);
    assert_non_null(mask), assert_non_null(y);
    for (size_t r = 0; r < n / group; r++)
        for (size_t j = 0; j < d; j++)
            mask[r * d + j] = r == 3 ? 0.0f : (float)((j + r) % 4 != 0); /* row 3 all masked */
    x[5 * d + 2] = -INFINITY;
    lp_err err;
    assert_int_equal(cpu->softmax_rows(cpu, n, d, group, mask, x, y, &err), LP_OK);
    for (size_t i = 0; i < n; i++) {
        const float *m = mask + (i / group) * d;
        double mx = -INFINITY, sum = 0;
        for (size_t j = 0; j < d; j++)
            if (m[j] != 0 && x[i * d + j] > mx)
                mx = x[i * d + j];
        for (size_t j = 0; j < d; j++)
            sum += m[j] != 0 ? exp((double)x[i * d + j] - mx) : 0;
        for (size_t j = 0; j < d; j++) {
            double want = m[j] != 0 ? exp((double)x[i * d + j] - mx) / sum : 0;
            if (fabs(y[i * d + j] - want) > 1e-7 + 1e-6 * want)
                fail_msg("softmax_rows (%zu, %zu): %.9g, want %.9g", i, j, (double)y[i * d + j],
                         want);
        }
    }
    for (size_t j = 0; j < d; j++)
        assert_true(y[30 * d + j] == 0.0f); /* row 30 reads the all-masked mask row 3 */
    assert_true(y[5 * d + 2] == 0.0f);
    free(x), free(mask), free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exp),
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_table_ops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
