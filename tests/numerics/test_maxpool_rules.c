/*
 * test_maxpool_rules.c - max-pool forward of the "cpu" table against "ref" on inputs built to
 * hit its tie and NaN rules (backend.h: the first maximum in row-major window order wins, a NaN
 * wins over numbers and the first NaN sticks), for the unpadded fast paths (2x2 stride 2, 2x2
 * with other strides, 3x3) and a padded geometry, plus one window checked by hand. Values are
 * drawn from {-1, 0, 1, NaN} so most windows hold ties and many hold NaNs.
 */
#include "backend_util.h"

#include <stdint.h>

static void check_geom(const lp_conv2d_geom *g, lp_rng *rng)
{
    size_t oh, ow;
    assert_int_equal(lp_conv2d_geom_check(g, "test", &oh, &ow, NULL), LP_OK);
    size_t nx = g->n * g->c * g->h * g->w, ny = g->n * g->c * oh * ow;
    float *x = malloc(nx * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < nx; i++) {
        uint64_t r = lp_rng_below(rng, 8);
        x[i] = r == 0 ? NAN : (float)(r % 3) - 1.0f;
    }
    float *y[2];
    int32_t *am[2];
    const lp_backend *bes[2] = {lp_backend_ref(), lp_backend_cpu()};
    for (int b = 0; b < 2; b++) {
        y[b] = malloc(ny * sizeof *y[b]);
        am[b] = malloc(ny * sizeof *am[b]);
        assert_non_null(y[b]);
        assert_non_null(am[b]);
        lp_err err = {0};
        assert_int_equal(bes[b]->maxpool_forward(bes[b], g, x, y[b], am[b], &err), LP_OK);
    }
    for (size_t i = 0; i < ny; i++) {
        assert_int_equal(am[1][i], am[0][i]);
        if (isnan(y[0][i]))
            assert_true(isnan(y[1][i]));
        else
            assert_true(y[1][i] == y[0][i]);
        /* the value is the input at its argmax, in its plane */
        const float *xp = x + (i / (oh * ow)) * g->h * g->w;
        float at = xp[am[1][i]];
        assert_true(at == y[1][i] || (isnan(at) && isnan(y[1][i])));
    }
    for (int b = 0; b < 2; b++) {
        free(y[b]);
        free(am[b]);
    }
    free(x);
}

static void test_ties_and_nans(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 31);
    const lp_conv2d_geom geoms[] = {
        /* n  c   h   w kh kw sh sw ph pw */
        {4, 8, 28, 28, 2, 2, 2, 2, 0, 0}, /* > LP_BACKEND_OMP_MIN: the OpenMP path */
        {1, 3, 7, 9, 2, 2, 2, 2, 0, 0},   {2, 2, 6, 7, 2, 2, 1, 2, 0, 0},
        {2, 2, 6, 7, 2, 2, 2, 1, 0, 0},   {1, 3, 9, 8, 3, 3, 2, 2, 0, 0},
        {1, 2, 8, 8, 3, 3, 2, 2, 1, 1},
    };
    for (size_t s = 0; s < sizeof geoms / sizeof geoms[0]; s++)
        check_geom(&geoms[s], &rng);
}

/* One 2x2 window by hand: ties go to the first, a NaN beats every number, the first NaN
 * sticks. */
static void test_by_hand(void **state)
{
    (void)state;
    const lp_backend *cpu = lp_backend_cpu();
    lp_conv2d_geom g = {1, 1, 2, 6, 2, 2, 2, 2, 0, 0};
    /* row 0: [1 1 | 0 NaN | NaN 5], row 1: [0 1 | NaN 2 | 7 NaN] */
    float x[12] = {1, 1, 0, NAN, NAN, 5, 0, 1, NAN, 2, 7, NAN};
    float y[3];
    int32_t am[3];
    lp_err err = {0};
    assert_int_equal(cpu->maxpool_forward(cpu, &g, x, y, am, &err), LP_OK);
    assert_true(y[0] == 1.0f);
    assert_int_equal(am[0], 0);
    assert_true(isnan(y[1]));
    assert_int_equal(am[1], 3);
    assert_true(isnan(y[2]));
    assert_int_equal(am[2], 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ties_and_nans),
        cmocka_unit_test(test_by_hand),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
