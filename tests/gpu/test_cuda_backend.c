/*
 * test_cuda_backend.c - what the parity tests do not show about the CUDA table:
 *   - without a device (or without CUDA in the build): "cuda" is a clear error naming why, and
 *     "auto" falls back to cpu; then the program skips (exit 77);
 *   - bad inputs are rejected with the SAME status and message as the cpu table, including the
 *     checks that read device data (softmax targets, maxpool argmax) and a NaN loss;
 *   - sgemm NMSE against ref: fp32 under 1e-7; the opt-in TF32 table under a looser bound;
 *   - determinism: the same ops twice give bit-identical outputs (no float atomics).
 */
#include "../numerics/backend_util.h"
#include "gpu_util.h"

/* fp32 products: cuBLAS accumulates in float like OpenBLAS; NMSE ~ k eps^2 ~ 1e-12 for these
 * sizes, so 1e-7 (the bound) has a wide margin yet catches any wrong index. */
#define TOL_FP32_NMSE 1e-7
/* TF32 rounds each operand to a 10-bit mantissa (relative error up to 2^-11 = 4.9e-4); with
 * random signs the relative error of a sum is about that, so NMSE ~ 2.4e-7 expected (METHOD.md
 * measured ||out - ref|| / ||ref|| near 3e-4 on Hopper). 1e-5 leaves a 40x margin. */
#define TOL_TF32_NMSE 1e-5

static const lp_backend *cuda, *cpu;

/* ---- every member set ------------------------------------------------------------------ */

static void test_table_complete(void **state)
{
    (void)state;
    assert_string_equal(cuda->name, "cuda");
    assert_false(cuda->host_visible);
    size_t n = 0;
    for (size_t off = offsetof(lp_backend, alloc); off + sizeof(void (*)(void)) <= sizeof *cuda;
         off += sizeof(void (*)(void)), n++) {
        void (*fn)(void);
        memcpy(&fn, (const char *)cuda + off, sizeof fn);
        if (!fn)
            fail_msg("cuda table member %zu (byte offset %zu) is NULL", n, off);
    }
    assert_true(n >= 40);
}

/* ---- the same errors as the cpu table -------------------------------------------------- */

typedef lp_status (*bad_call)(const lp_backend *be, lp_err *err);

static lp_status bad_gemm_lda(const lp_backend *be, lp_err *err)
{
    float *a = bu_upf(be, (float[6]){0}, 6);
    lp_status st = be->sgemm(be, false, false, 2, 3, 3, 1.0f, a, 2, a, 3, 0.0f, a, 3, err);
    bu_free(be, a);
    return st;
}

static lp_status bad_target(const lp_backend *be, lp_err *err)
{
    float z[8 * 3];
    int32_t t[8] = {0, 1, 2, 0, 1, 7, 2, -1}; /* rows 5 and 7 are out of range: row 5 named */
    for (size_t i = 0; i < 24; i++)
        z[i] = (float)i / 10;
    float *dz = bu_upf(be, z, 24), *dg = bu_upf(be, z, 24);
    int32_t *dt = bu_up(be, t, sizeof t);
    double loss = 0;
    lp_status st = be->softmax_xent(be, 8, 3, dz, dt, NULL, &loss, dg, err);
    bu_free(be, dz);
    bu_free(be, dg);
    bu_free(be, dt);
    return st;
}

static lp_status bad_argmax(const lp_backend *be, lp_err *err)
{
    lp_conv2d_geom g = {1, 2, 4, 4, 2, 2, 2, 2, 0, 0}; /* 2 planes of 2x2 outputs */
    int32_t am[8] = {0, 2, 8, 10, 0, 2, 16, 10};       /* plane 1, value 16 >= 16 */
    float dy[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    float *ddy = bu_upf(be, dy, 8), *ddx = bu_upf(be, (float[32]){0}, 32);
    int32_t *dam = bu_up(be, am, sizeof am);
    lp_status st = be->maxpool_backward(be, &g, ddy, dam, ddx, err);
    bu_free(be, ddy);
    bu_free(be, ddx);
    bu_free(be, dam);
    return st;
}

static lp_status nan_loss(const lp_backend *be, lp_err *err)
{
    float z[4] = {0.5f, NAN, 1.0f, 2.0f}, y[4] = {0, 1, 1, 0};
    float *dz = bu_upf(be, z, 4), *dy = bu_upf(be, y, 4);
    double loss = 0;
    lp_status st = be->bce_logits(be, 4, dz, dy, &loss, NULL, err);
    bu_free(be, dz);
    bu_free(be, dy);
    return st;
}

static lp_status bad_dropout(const lp_backend *be, lp_err *err)
{
    float *x = bu_upf(be, (float[4]){1, 2, 3, 4}, 4);
    lp_status st = be->dropout_forward(be, 4, 1.0f, 1, 1, x, x, err);
    bu_free(be, x);
    return st;
}

static lp_status bad_adamw(const lp_backend *be, lp_err *err)
{
    float *x = bu_upf(be, (float[4]){1, 2, 3, 4}, 4);
    lp_adamw_opts o = lp_adamw_opts_default();
    lp_status st = be->adamw_step(be, 4, &o, 0, x, x, x, x, err);
    bu_free(be, x);
    return st;
}

static lp_status bad_pool(const lp_backend *be, lp_err *err)
{
    lp_conv2d_geom g = {1, 1, 4, 4, 2, 2, 1, 1, 2, 0}; /* pad 2 > half the window */
    float *x = bu_upf(be, (float[16]){0}, 16);
    lp_status st = be->avgpool_forward(be, &g, x, x, err);
    bu_free(be, x);
    return st;
}

static lp_status bad_argmax_rows(const lp_backend *be, lp_err *err)
{
    float *x = bu_upf(be, (float[4]){1, 2, 3, 4}, 4);
    lp_status st = be->argmax_rows(be, 4, 0, x, (int32_t *)x, err);
    bu_free(be, x);
    return st;
}

static void test_same_errors(void **state)
{
    (void)state;
    const struct {
        const char *what;
        bad_call fn;
        lp_status want;
    } cases[] = {
        {"sgemm lda", bad_gemm_lda, LP_EINVAL},    {"softmax target", bad_target, LP_EINVAL},
        {"maxpool argmax", bad_argmax, LP_EINVAL}, {"bce NaN", nan_loss, LP_ENUMERIC},
        {"dropout p", bad_dropout, LP_EINVAL},     {"adamw t", bad_adamw, LP_EINVAL},
        {"pool padding", bad_pool, LP_EINVAL},     {"argmax d", bad_argmax_rows, LP_EINVAL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        lp_err ec, eg;
        lp_err_clear(&ec);
        lp_err_clear(&eg);
        lp_status sc = cases[i].fn(cpu, &ec), sg = cases[i].fn(cuda, &eg);
        printf("%-16s cpu: %s\n%-16s cuda: %s\n", cases[i].what, ec.msg, "", eg.msg);
        assert_int_equal(sc, cases[i].want);
        assert_int_equal(sg, cases[i].want);
        assert_string_equal(eg.msg, ec.msg);
    }
    /* The device-side checks name the first bad row / plane, as the host loops do. */
    lp_err e;
    assert_int_equal(bad_target(cuda, &e), LP_EINVAL);
    assert_non_null(strstr(e.msg, "row 5 is 7"));
    assert_int_equal(bad_argmax(cuda, &e), LP_EINVAL);
    assert_non_null(strstr(e.msg, "argmax 16 of plane 1"));
    /* and the table still works after rejecting them */
    float *x = bu_upf(cuda, (float[3]){1, -2, 3}, 3), out;
    assert_int_equal(cuda->max_abs(cuda, 3, x, x, NULL), LP_OK);
    assert_int_equal(cuda->copy_d2h(cuda, &out, x, sizeof out, NULL), LP_OK);
    assert_true(out == 3.0f);
    bu_free(cuda, x);
}

/* ---- sgemm NMSE: fp32 and TF32 ---------------------------------------------------------- */

#ifdef LEPTON_HAVE_CUDA
static float *gemm_on(const lp_backend *be, bool ta, bool tb, size_t m, size_t n, size_t k,
                      const float *a, const float *b)
{
    float *da = bu_upf(be, a, m * k), *db = bu_upf(be, b, k * n);
    float *dc = bu_upf(be, a, m * n); /* garbage C: beta 0 must not read it */
    lp_err err;
    assert_int_equal(
        be->sgemm(be, ta, tb, m, n, k, 1.0f, da, ta ? m : k, db, tb ? k : n, 0.0f, dc, n, &err),
        LP_OK);
    float *c = bu_downf(be, dc, m * n);
    bu_free(be, da);
    bu_free(be, db);
    bu_free(be, dc);
    return c;
}
#endif

static void test_gemm_nmse(void **state)
{
    (void)state;
#ifdef LEPTON_HAVE_CUDA
    const lp_backend *tf32 = NULL;
    assert_int_equal(lp_backend_cuda_tf32_get(&tf32, NULL), LP_OK);
    lp_rng rng;
    lp_rng_seed(&rng, 31);
    const size_t shapes[][3] = {{256, 512, 784}, {255, 129, 513}, {1, 10, 512}, {64, 1, 7}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++) {
            size_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
            bool ta = t & 1, tb = t & 2;
            float *a = bu_rand(&rng, m * k, -1, 1), *b = bu_rand(&rng, k * n, -1, 1);
            float *want = gemm_on(lp_backend_ref(), ta, tb, m, n, k, a, b);
            float *g32 = gemm_on(cuda, ta, tb, m, n, k, a, b);
            float *gtf = gemm_on(tf32, ta, tb, m, n, k, a, b);
            double e32 = gpu_nmse(g32, want, m * n), etf = gpu_nmse(gtf, want, m * n);
            printf("sgemm %zux%zux%zu ta=%d tb=%d: NMSE fp32 %.3g, tf32 %.3g\n", m, n, k, ta, tb,
                   e32, etf);
            assert_true(e32 < TOL_FP32_NMSE);
            assert_true(etf < TOL_TF32_NMSE);
            free(a);
            free(b);
            free(want);
            free(g32);
            free(gtf);
        }
#endif
}

/* ---- determinism ------------------------------------------------------------------------ */

/* One forward/backward-like sequence; returns its outputs concatenated on the host. */
static float *sequence(const lp_backend *be, const float *x, const float *w, const int32_t *t,
                       size_t n, size_t d, size_t c, double *loss)
{
    float *dx = bu_upf(be, x, n * d), *dw = bu_upf(be, w, d * c);
    float *dz = bu_upf(be, x, n * c), *dg = bu_upf(be, x, n * c), *db = bu_upf(be, w, c);
    float *dgw = bu_upf(be, w, d * c), *ds = bu_upf(be, x, 1);
    int32_t *dt = bu_up(be, t, n * sizeof *t);
    lp_err err;
    assert_int_equal(be->sgemm(be, false, false, n, c, d, 1.0f, dx, d, dw, c, 0.0f, dz, c, &err),
                     LP_OK);
    assert_int_equal(be->softmax_xent(be, n, c, dz, dt, NULL, loss, dg, &err), LP_OK);
    assert_int_equal(be->bias_backward(be, n, c, dg, db, &err), LP_OK);
    assert_int_equal(be->sgemm(be, true, false, d, c, n, 1.0f, dx, d, dg, c, 0.0f, dgw, c, &err),
                     LP_OK);
    assert_int_equal(be->sum_all(be, n * d, dx, ds, &err), LP_OK);
    size_t tot = n * c + c + d * c + 1;
    float *h = malloc(tot * sizeof *h);
    assert_non_null(h);
    assert_int_equal(be->copy_d2h(be, h, dg, n * c * sizeof *h, &err), LP_OK);
    assert_int_equal(be->copy_d2h(be, h + n * c, db, c * sizeof *h, &err), LP_OK);
    assert_int_equal(be->copy_d2h(be, h + n * c + c, dgw, d * c * sizeof *h, &err), LP_OK);
    assert_int_equal(be->copy_d2h(be, h + tot - 1, ds, sizeof *h, &err), LP_OK);
    bu_free(be, dx);
    bu_free(be, dw);
    bu_free(be, dz);
    bu_free(be, dg);
    bu_free(be, db);
    bu_free(be, dgw);
    bu_free(be, ds);
    bu_free(be, dt);
    return h;
}

static void test_deterministic(void **state)
{
    (void)state;
    const size_t n = 20000, d = 33, c = 10; /* several blocks of partials in every reduction */
    lp_rng rng;
    lp_rng_seed(&rng, 41);
    float *x = bu_rand(&rng, n * d, -2, 2), *w = bu_rand(&rng, d * c, -0.5, 0.5);
    int32_t *t = malloc(n * sizeof *t);
    assert_non_null(t);
    for (size_t i = 0; i < n; i++)
        t[i] = (int32_t)lp_rng_below(&rng, c);
    double l1, l2, lr;
    float *r1 = sequence(cuda, x, w, t, n, d, c, &l1), *r2 = sequence(cuda, x, w, t, n, d, c, &l2);
    size_t tot = n * c + c + d * c + 1;
    assert_true(l1 == l2);
    assert_memory_equal(r1, r2, tot * sizeof *r1);
    /* and it is the right answer */
    float *rr = sequence(lp_backend_ref(), x, w, t, n, d, c, &lr);
    assert_true(fabs(l1 - lr) <= 1e-5 * fabs(lr));
    assert_true(gpu_nmse(r1, rr, tot) < TOL_FP32_NMSE);
    free(r1);
    free(r2);
    free(rr);
    free(x);
    free(w);
    free(t);
}

int main(void)
{
    const lp_backend *be = NULL;
    lp_err err;
    lp_err_clear(&err);
    lp_status st = lp_backend_get("cuda", &be, &err);
    if (st != LP_OK) {
        /* The no-device path is itself the contract (backend.h): a clear error, auto -> cpu. */
        printf("cuda: %s\n", err.msg);
        if (st != LP_EUNSUPPORTED && st != LP_EDEVICE)
            return 1;
        if (!strstr(err.msg, "cuda") || (st == LP_EDEVICE && !strstr(err.msg, "no ")))
            return 1;
        if (be != NULL || lp_backend_get("auto", &be, NULL) != LP_OK || be != lp_backend_cpu())
            return 1;
        lp_test_skip("no CUDA device: %s", err.msg);
    }
    cuda = be;
    cpu = lp_backend_cpu();
#ifdef LEPTON_HAVE_CUDA
    printf("device: %s\n", lp_backend_cuda_device_name());
#endif
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_complete), cmocka_unit_test(test_same_errors),
        cmocka_unit_test(test_gemm_nmse), cmocka_unit_test(test_deterministic)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
