/*
 * test_sgemm_batched.c - the sgemm_batched table member (backend.h): the "cpu" table against a
 * double-precision loop written here, in both modes (separate outputs, stride_c > 0, and the
 * batch reduction, stride_c == 0), with a shared operand (stride 0), transposes, leading
 * dimensions wider than the matrices, beta 0 over NaN, batch 0, and 2 OpenMP threads on a
 * batch large enough to be split (so the per-thread partial sums of the reduction run). The
 * "ref" table is checked against the same loop.
 */
#include "backend_util.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* OpenBLAS accumulates k (times batch in the reduction) float products of terms in [-1, 1]. */
#define TOL_ATOL_PER_TERM 2e-7
#define TOL_RTOL 1e-5

/* want = alpha sum op(A_i) op(B_i) + beta C, per output or summed, in double. */
static void want_batched(bool ta, bool tb, size_t m, size_t n, size_t k, float alpha,
                         const float *a, size_t lda, size_t sa, const float *b, size_t ldb,
                         size_t sb, float beta, float *c, size_t ldc, size_t sc, size_t batch)
{
    size_t outs = sc ? batch : 1;
    for (size_t o = 0; o < outs; o++)
        for (size_t i = 0; i < m; i++)
            for (size_t j = 0; j < n; j++) {
                double s = 0;
                size_t b0 = sc ? o : 0, b1 = sc ? o + 1 : batch;
                for (size_t e = b0; e < b1; e++)
                    for (size_t p = 0; p < k; p++) {
                        const float *ae = a + e * sa, *be = b + e * sb;
                        double av = ta ? ae[p * lda + i] : ae[i * lda + p];
                        double bv = tb ? be[j * ldb + p] : be[p * ldb + j];
                        s += av * bv;
                    }
                float *cij = c + o * sc + i * ldc + j;
                *cij = (float)(alpha * s + (beta == 0 ? 0.0 : (double)beta * *cij));
            }
}

static void check_case(const lp_backend *be, lp_rng *rng, bool ta, bool tb, size_t m, size_t n,
                       size_t k, bool share_a, bool reduce, float beta, size_t batch)
{
    size_t lda = (ta ? m : k) + 1, ldb = (tb ? k : n) + 2, ldc = n + 1;
    size_t asz = (ta ? k : m) * lda, bsz = (tb ? n : k) * ldb, csz = m * ldc;
    size_t sa = share_a ? 0 : asz, sb = bsz, sc = reduce ? 0 : csz;
    size_t nb = batch ? batch : 1;
    float *a = bu_rand(rng, share_a ? asz : asz * nb, -1, 1);
    float *b = bu_rand(rng, bsz * nb, -1, 1);
    size_t cn = reduce ? csz : csz * nb;
    float *c = bu_rand(rng, cn, -1, 1);
    if (beta == 0)
        c[0] = NAN; /* beta == 0 never reads C */
    float *got = malloc(cn * sizeof *got), *want = malloc(cn * sizeof *want);
    assert_non_null(got);
    assert_non_null(want);
    memcpy(got, c, cn * sizeof *got);
    memcpy(want, c, cn * sizeof *want);
    if (beta == 0)
        want[0] = 0;
    lp_err err = {0};
    assert_int_equal(be->sgemm_batched(be, ta, tb, m, n, k, 0.75f, a, lda, sa, b, ldb, sb, beta,
                                       got, ldc, sc, batch, &err),
                     LP_OK);
    want_batched(ta, tb, m, n, k, 0.75f, a, lda, sa, b, ldb, sb, beta, want, ldc, sc, batch);
    char what[128];
    snprintf(what, sizeof what, "%s sgemm_batched %zux%zux%zu x%zu ta=%d tb=%d %s beta=%g",
             be->name, m, n, k, batch, ta, tb, reduce ? "sum" : "each", beta);
    /* want keeps C's padding column (j = n) as given: the compare checks it is never written. */
    size_t terms = k * (reduce ? nb : 1);
    bu_close(got, want, cn, TOL_ATOL_PER_TERM * (double)terms, TOL_RTOL, what);
    free(a);
    free(b);
    free(c);
    free(got);
    free(want);
}

static void run_all(const lp_backend *be)
{
    lp_rng rng;
    lp_rng_seed(&rng, 8);
    /* small: on the calling thread; large: above the split threshold (m n k batch >= 2^21) */
    const size_t dims[][4] = {{3, 5, 4, 3}, {1, 1, 1, 1}, {32, 150, 27, 19}, {16, 97, 80, 17}};
    for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++)
        for (int tr = 0; tr < 4; tr++)
            for (int mode = 0; mode < 4; mode++) {
                bool reduce = mode & 1, share = mode & 2;
                float beta = (tr + mode) % 2 ? 0.0f : 0.5f;
                check_case(be, &rng, tr & 1, tr & 2, dims[s][0], dims[s][1], dims[s][2], share,
                           reduce, beta, dims[s][3]);
            }
    /* batch 0: the reduction sets C = beta C, separate outputs are left alone */
    check_case(be, &rng, false, false, 4, 3, 2, false, true, 0.5f, 0);
    check_case(be, &rng, false, false, 4, 3, 2, false, false, 0.5f, 0);
}

static void test_cpu(void **state)
{
    (void)state;
#ifdef _OPENMP
    omp_set_num_threads(2);
#endif
    run_all(lp_backend_cpu());
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    run_all(lp_backend_cpu());
}

static void test_ref(void **state)
{
    (void)state;
    run_all(lp_backend_ref());
}

static void test_bad_args(void **state)
{
    (void)state;
    const lp_backend *tabs[2] = {lp_backend_ref(), lp_backend_cpu()};
    float a[4] = {0}, b[4] = {0}, c[4] = {0};
    for (int t = 0; t < 2; t++) {
        const lp_backend *be = tabs[t];
        lp_err err = {0};
        assert_int_equal(be->sgemm_batched(be, false, false, 2, 2, 2, 1.0f, a, 1, 4, b, 2, 4,
                                           0.0f, c, 2, 4, 1, &err),
                         LP_EINVAL);
        assert_non_null(strstr(err.msg, "sgemm_batched: lda"));
        assert_int_equal(be->sgemm_batched(be, false, false, 2, 2, 2, 1.0f, NULL, 2, 4, b, 2, 4,
                                           0.0f, c, 2, 4, 1, &err),
                         LP_EINVAL);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu),
        cmocka_unit_test(test_ref),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
