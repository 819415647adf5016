/*
 * gpu_util.h - what the GPU tests share (header-only, static): getting the CUDA table or
 * skipping the whole test program (exit 77, ctest SKIP_RETURN_CODE) when this build has no
 * CUDA backend or the machine has no usable device, and the NMSE the GPU tolerances are
 * stated in.
 */
#ifndef LP_TEST_GPU_UTIL_H
#define LP_TEST_GPU_UTIL_H

#include "lp_test.h"

#include "backend/backend_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The "cuda" table, or exit 77 saying why there is none. */
static inline const lp_backend *gpu_cuda_or_skip(void)
{
    const lp_backend *be = NULL;
    lp_err err;
    lp_err_clear(&err);
    if (lp_backend_get("cuda", &be, &err) != LP_OK)
        lp_test_skip("%s", lp_err_text(&err));
    return be;
}

/* sum (g - w)^2 / sum w^2 (0 when both are all zero). */
static inline double gpu_nmse(const float *got, const float *want, size_t n)
{
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - want[i];
        num += d * d;
        den += (double)want[i] * want[i];
    }
    return den > 0 ? num / den : num;
}

#endif
