/*
 * cpu_vmath.h - private to the backend module: the vectorised float kernels of the cpu table
 * (exp, GELU forward and backward) over contiguous spans. cpu_vmath.c holds one loop body
 * compiled for AVX-512, AVX2 and baseline x86-64 (or the build's target elsewhere) and picks
 * the widest the running CPU supports on every call.
 *
 * Every span function is pure and reentrant: no state, no allocation, no OpenMP (callers
 * split large spans across threads). y may alias x; n may be 0.
 */
#ifndef LP_CPU_VMATH_H
#define LP_CPU_VMATH_H

#include <stddef.h>

/* y[i] = e^x[i]. Max relative error 3e-7 (Cephes expf polynomial) for x in [-87.3, 88];
 * 0 below -87.33 (where e^x < FLT_MIN), +inf above 88.72, NaN for NaN. */
void lp_bk_vm_exp(size_t n, const float *x, float *y);

/* y[i] = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2)), Phi the standard normal CDF (GELU, Hendrycks
 * & Gimpel 2016). Phi from a polynomial erf on |x / sqrt 2| < 1 (abs. error 1.3e-9) and
 * 0.5 erfc(a) = 0.5 exp(-a^2 + g(a)) with a polynomial g on [1, 5] (rel. error 5e-8), 0 beyond
 * 5 (erfc(5) = 1.5e-12): max abs. error 4e-7 over [-12, 12], float rounding of x Phi included.
 * NaN gives NaN. */
void lp_bk_vm_gelu(size_t n, const float *x, float *y);

/* dx[i] = dy[i] (Phi(x) + x phi(x)), phi the standard normal density: the GELU derivative at
 * the forward input x. dx may alias dy or x. */
void lp_bk_vm_gelu_backward(size_t n, const float *x, const float *dy, float *dx);

/* The span functions of one instruction-set level: 0 the baseline loop, 1 AVX2, 2 AVX-512F
 * (x86-64 only). lp_bk_vm_get(level) is NULL when this CPU (or build) lacks the level; level
 * -1 is the widest it has, the one the three functions above call. Tests run every level the
 * machine supports against libm. */
typedef struct lp_bk_vm_table {
    const char *name; /* "generic", "avx2", "avx512f" */
    void (*exp)(size_t n, const float *x, float *y);
    void (*gelu)(size_t n, const float *x, float *y);
    void (*gelu_backward)(size_t n, const float *x, const float *dy, float *dx);
} lp_bk_vm_table;
const lp_bk_vm_table *lp_bk_vm_get(int level);

#endif
