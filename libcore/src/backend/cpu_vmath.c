/*
 * cpu_vmath.c - branch-free float exp and GELU for the cpu table (see cpu_vmath.h), written so
 * the compiler vectorises them: each element is a straight line of multiplies, adds, compares
 * and selects with no libm call, inside an `omp simd` loop. The loop is compiled three times
 * on x86-64 (target attributes avx512f, avx2 and the baseline) and the widest variant the CPU
 * reports is chosen per call with __builtin_cpu_supports; elsewhere only the baseline exists.
 *
 * Formulas. exp: Cephes expf (n = rint(x log2 e), r = x - n ln 2 in two parts, a degree-6
 * polynomial for e^r, 2^n put into the exponent bits). Phi(x) = 0.5 (1 + erf(z)), z = x / sqrt 2:
 *   |z| < 1:  erf(z) = z P(z^2), P of degree 6;
 *   |z| >= 1: erfc(a) = exp(-a^2 + g(a)), a = |z| clamped to [1, 5], g of degree 9 in
 *             s = (a - 3) / 2; Phi = 1 - erfc / 2 for z > 0, erfc / 2 for z < 0, so the left
 *             tail keeps its relative accuracy instead of cancelling in 1 + erf.
 * P and g are least-squares fits on Chebyshev nodes (800 points, numpy.polyfit in double) to
 * erf(z) / z and log(erfc(a)) + a^2; tests/numerics/test_cpu_vmath.c measures the errors the
 * header states against libm in double. The selects mean both branches are computed for
 * every element; that costs less than one scalar erff call.
 *
 * Invariant: every function here is pure; none forks threads.
 */
#include "backend/cpu_vmath.h"

#include <stdint.h>

/* The selects compute both arms. GCC if-converts them into vector blends only when FP
 * exceptions may be ignored (its default -ftrapping-math keeps them as branches, which stops
 * the AVX2 and baseline loops from vectorising); clang's default already ignores them. No
 * code here reads the FP exception flags. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC optimize("no-trapping-math")
#endif

#define VM_INLINE static inline __attribute__((always_inline))

/* The bits of a float and back (union punning is defined in C). */
typedef union vm_word {
    uint32_t u;
    float f;
} vm_word;

VM_INLINE float vm_from_bits(uint32_t u)
{
    return (vm_word){.u = u}.f;
}

VM_INLINE uint32_t vm_to_bits(float f)
{
    return (vm_word){.f = f}.u;
}

/* Below VM_EXP_LO, e^x < FLT_MIN: the result is 0. Above VM_EXP_HI the input is clamped so
 * 2^n stays a normal float (n <= 127); above VM_EXP_INF, e^x overflows: +inf. */
#define VM_EXP_LO -87.336544f
#define VM_EXP_HI 88.0f
#define VM_EXP_INF 88.72283f

VM_INLINE float vm_exp(float x)
{
    float xc = x < VM_EXP_LO ? VM_EXP_LO : x; /* NaN passes through both clamps */
    xc = xc > VM_EXP_HI ? VM_EXP_HI : xc;
    /* rint(x log2 e) without a float->int conversion: adding 1.5 2^23 leaves n in the low
     * mantissa bits of t (|n| < 2^22), exact in round-to-nearest. */
    float t = xc * 1.44269504088896341f + 12582912.0f;
    float n = t - 12582912.0f;
    /* r = x - n ln 2, ln 2 = C1 + C2 with C1 exact in 9 bits, so n C1 is exact */
    float r = xc - n * 0.693359375f;
    r = r + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    /* 2^n: the exponent field n + 127 (bits of t minus those of 1.5 2^23 give n) */
    float scale = vm_from_bits((vm_to_bits(t) - 0x4B400000u + 127u) << 23);
    float y = p * scale;
    y = x < VM_EXP_LO ? 0.0f : y;
    return x > VM_EXP_INF ? __builtin_inff() : y;
}

/* Phi(x), the standard normal CDF (see the file comment for the two pieces). */
VM_INLINE float vm_phi(float x)
{
    float z = x * 0.70710678118654752f, z2 = z * z;
    float a = __builtin_fabsf(z);
    /* |z| < 1: erf(z) = z P(z^2) */
    float p = 7.933485904e-05f;
    p = p * z2 - 8.034844068e-04f;
    p = p * z2 + 5.191218108e-03f;
    p = p * z2 - 2.685539983e-02f;
    p = p * z2 + 1.128362566e-01f;
    p = p * z2 - 3.761262894e-01f;
    p = p * z2 + 1.128379226e+00f;
    float small = 0.5f + 0.5f * z * p;
    /* |z| >= 1: erfc(a) = exp(-a^2 + g(a)) */
    float ac = a < 1.0f ? 1.0f : a;
    ac = ac > 5.0f ? 5.0f : ac;
    float s = (ac - 3.0f) * 0.5f;
    float g = -5.645094643e-05f;
    g = g * s + 2.880526008e-04f;
    g = g * s - 9.276569472e-04f;
    g = g * s + 2.749865875e-03f;
    g = g * s - 7.853926159e-03f;
    g = g * s + 2.165459841e-02f;
    g = g * s - 5.929669738e-02f;
    g = g * s + 1.704230011e-01f;
    g = g * s - 6.075072885e-01f;
    g = g * s - 1.720363021e+00f;
    float half_erfc = 0.5f * vm_exp(g - ac * ac);
    half_erfc = a > 5.0f ? 0.0f : half_erfc; /* erfc(5) / 2 = 7.7e-13 */
    float large = z > 0 ? 1.0f - half_erfc : half_erfc;
    return a < 1.0f ? small : large;
}

VM_INLINE void vm_exp_loop(size_t n, const float *x, float *y)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        y[i] = vm_exp(x[i]);
}

VM_INLINE void vm_gelu_loop(size_t n, const float *x, float *y)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        y[i] = x[i] * vm_phi(x[i]);
}

VM_INLINE void vm_gelu_backward_loop(size_t n, const float *x, const float *dy, float *dx)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        float dens = 0.39894228040143267794f * vm_exp(-0.5f * v * v);
        dx[i] = dy[i] * (vm_phi(v) + v * dens);
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define VM_X86 1
#define VM_VARIANT(isa, suffix)                                                                    \
    __attribute__((target(isa))) static void vm_exp_##suffix(size_t n, const float *x, float *y)   \
    {                                                                                              \
        vm_exp_loop(n, x, y);                                                                      \
    }                                                                                              \
    __attribute__((target(isa))) static void vm_gelu_##suffix(size_t n, const float *x, float *y)  \
    {                                                                                              \
        vm_gelu_loop(n, x, y);                                                                     \
    }                                                                                              \
    __attribute__((target(isa))) static void vm_gelu_bw_##suffix(size_t n, const float *x,         \
                                                                 const float *dy, float *dx)       \
    {                                                                                              \
        vm_gelu_backward_loop(n, x, dy, dx);                                                       \
    }
VM_VARIANT("avx512f", avx512)
VM_VARIANT("avx2", avx2)
#undef VM_VARIANT
#endif

static void vm_exp_generic(size_t n, const float *x, float *y)
{
    vm_exp_loop(n, x, y);
}

static void vm_gelu_generic(size_t n, const float *x, float *y)
{
    vm_gelu_loop(n, x, y);
}

static void vm_gelu_bw_generic(size_t n, const float *x, const float *dy, float *dx)
{
    vm_gelu_backward_loop(n, x, dy, dx);
}

static const lp_bk_vm_table vm_tables[] = {
    {"generic", vm_exp_generic, vm_gelu_generic, vm_gelu_bw_generic},
#ifdef VM_X86
    {"avx2", vm_exp_avx2, vm_gelu_avx2, vm_gelu_bw_avx2},
    {"avx512f", vm_exp_avx512, vm_gelu_avx512, vm_gelu_bw_avx512},
#endif
};

/* Widest level the CPU runs. __builtin_cpu_supports reads the CPU model libgcc filled in at
 * start-up: a load and a test, cheap next to any span worth calling. */
static int vm_best(void)
{
#ifdef VM_X86
    if (__builtin_cpu_supports("avx512f"))
        return 2;
    if (__builtin_cpu_supports("avx2"))
        return 1;
#endif
    return 0;
}

const lp_bk_vm_table *lp_bk_vm_get(int level)
{
    int best = vm_best();
    if (level < 0)
        level = best;
    return level <= best ? &vm_tables[level] : NULL;
}

void lp_bk_vm_exp(size_t n, const float *x, float *y)
{
    vm_tables[vm_best()].exp(n, x, y);
}

void lp_bk_vm_gelu(size_t n, const float *x, float *y)
{
    vm_tables[vm_best()].gelu(n, x, y);
}

void lp_bk_vm_gelu_backward(size_t n, const float *x, const float *dy, float *dx)
{
    vm_tables[vm_best()].gelu_backward(n, x, dy, dx);
}
