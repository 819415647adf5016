/*
 * backend_util.h - helpers the backend tests share (header-only, static): seeded random
 * inputs, moving arrays to and from a table's device memory through its copy members (so the
 * same tests run unchanged on a device table), and a float front end to lp_assert_close.
 */
#ifndef LP_TEST_BACKEND_UTIL_H
#define LP_TEST_BACKEND_UTIL_H

#include "lp_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static inline void bu_fill_uniform(lp_rng *rng, float *x, size_t n, double lo, double hi)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * lp_rng_uniform(rng));
}

static inline float *bu_rand(lp_rng *rng, size_t n, double lo, double hi)
{
    float *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    bu_fill_uniform(rng, x, n, lo, hi);
    return x;
}

/* A device copy of n host bytes (n may be 0). */
static inline void *bu_up(const lp_backend *be, const void *host, size_t nbytes)
{
    void *d = NULL;
    lp_err err;
    assert_int_equal(be->alloc(be, nbytes, &d, &err), LP_OK);
    if (nbytes)
        assert_int_equal(be->copy_h2d(be, d, host, nbytes, &err), LP_OK);
    return d;
}

static inline float *bu_upf(const lp_backend *be, const float *host, size_t n)
{
    return bu_up(be, host, n * sizeof(float));
}

/* A new host array with n floats copied back from the device (after sync). */
static inline float *bu_downf(const lp_backend *be, const float *dev, size_t n)
{
    float *h = malloc((n ? n : 1) * sizeof *h);
    assert_non_null(h);
    lp_err err;
    assert_int_equal(be->sync(be, &err), LP_OK);
    if (n)
        assert_int_equal(be->copy_d2h(be, h, dev, n * sizeof *h, &err), LP_OK);
    return h;
}

static inline void bu_free(const lp_backend *be, void *dev)
{
    be->free(be, dev, NULL);
}

/* lp_assert_close on float arrays (widened to double). */
#define bu_close(got, want, n, atol, rtol, what)                                                   \
    bu_close_((got), (want), (n), (atol), (rtol), (what), __FILE__, __LINE__)
static inline void bu_close_(const float *got, const float *want, size_t n, double atol,
                             double rtol, const char *what, const char *file, int line)
{
    double *g = malloc((n ? n : 1) * sizeof *g), *w = malloc((n ? n : 1) * sizeof *w);
    assert_non_null(g);
    assert_non_null(w);
    for (size_t i = 0; i < n; i++) {
        g[i] = got[i];
        w[i] = want[i];
    }
    lp_assert_close_(g, w, n, atol, rtol, what, file, line);
    free(g);
    free(w);
}

#endif
