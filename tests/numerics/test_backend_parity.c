/*
 * test_backend_parity.c - every op of the "cpu" table against the "ref" table on fresh seeded
 * random inputs, at sizes 1, odd, and above LP_BACKEND_OMP_MIN (so the OpenMP paths run).
 * Inputs go through each table's own alloc/copy members, so a device table can be added to
 * `others` unchanged.
 */
#include "backend_util.h"

/* ---- tolerances (|got - want| <= atol + rtol |want|) ------------------------------------ */
/* Same float operation on both sides, but a device may contract a*b+c into an FMA: a few
 * ulps of the result. */
#define TOL_ELEM_ATOL 1e-6
#define TOL_ELEM_RTOL 1e-6
/* float (cpu) against double (ref) transcendental functions: libm's float functions are
 * within ~2 ulps, plus one rounding of the double result; 1e-5 relative leaves margin. */
#define TOL_TRANS_ATOL 1e-6
#define TOL_TRANS_RTOL 1e-5
/* Sums accumulated in double on both sides, only the final float rounding (and the order)
 * differ. */
#define TOL_SUM_ATOL 1e-5
#define TOL_SUM_RTOL 1e-6
/* sgemm: OpenBLAS accumulates k products in float; the float error grows like k eps for
 * inputs in [-1, 1] (|terms| <= 1), so atol scales with k. */
#define TOL_GEMM_ATOL_PER_K 2e-7
#define TOL_GEMM_RTOL 1e-5
/* Losses: cpu computes per-row terms in float (exp, log), the mean in double. */
#define TOL_LOSS_RTOL 1e-5
/* AdamW in float vs double: one rounding per state update plus sqrt and divide. */
#define TOL_OPT_ATOL 1e-6
#define TOL_OPT_RTOL 1e-5

static const size_t sizes[] = {1, 7, 1000, 100003}; /* 100003 > LP_BACKEND_OMP_MIN, odd */
#define NSIZES (sizeof sizes / sizeof sizes[0])

/* (n, d) shapes for row-wise ops; the last ones exceed the OpenMP threshold. */
static const size_t shapes[][2] = {{1, 1}, {1, 13}, {5, 1}, {7, 3}, {300, 129}, {1025, 65}};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

/* The table compared with ref; tests/gpu/test_cuda_parity.c includes this file with the CUDA
 * table here (the variable keeps its name `cpu`). */
#ifndef LP_PARITY_TABLE
#define LP_PARITY_TABLE lp_backend_cpu()
#endif

static const lp_backend *ref, *cpu;

static int setup(void **state)
{
    (void)state;
    ref = lp_backend_ref();
    cpu = LP_PARITY_TABLE;
    return 0;
}

/* ---- elementwise ------------------------------------------------------------------------- */

typedef lp_status (*binary_fn)(const lp_backend *, size_t, const float *, const float *, float *,
                               lp_err *);

static float *run_binary(const lp_backend *be, size_t off, const float *x, const float *y, size_t n)
{
    float *dx = bu_upf(be, x, n), *dy = bu_upf(be, y, n), *dout = bu_upf(be, x, n);
    binary_fn fn = *(const binary_fn *)((const char *)be + off);
    lp_err err;
    assert_int_equal(fn(be, n, dx, dy, dout, &err), LP_OK);
    float *h = bu_downf(be, dout, n);
    bu_free(be, dx);
    bu_free(be, dy);
    bu_free(be, dout);
    return h;
}

static void test_elementwise(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 11);
    const struct {
        const char *name;
        size_t off;
    } ops[] = {{"add", offsetof(lp_backend, add)},
               {"sub", offsetof(lp_backend, sub)},
               {"mul", offsetof(lp_backend, mul)}};
    for (size_t s = 0; s < NSIZES; s++) {
        size_t n = sizes[s];
        float *x = bu_rand(&rng, n, -3, 3), *y = bu_rand(&rng, n, -3, 3);
        for (size_t o = 0; o < 3; o++) {
            float *a = run_binary(ref, ops[o].off, x, y, n),
                  *b = run_binary(cpu, ops[o].off, x, y, n);
            bu_close(b, a, n, TOL_ELEM_ATOL, TOL_ELEM_RTOL, ops[o].name);
            /* and the ref itself is the formula */
            float want = o == 0   ? x[n - 1] + y[n - 1]
                         : o == 1 ? x[n - 1] - y[n - 1]
                                  : x[n - 1] * y[n - 1];
            assert_true(a[n - 1] == want);
            free(a);
            free(b);
        }
        /* scale, axpy, fill */
        float *r[2];
        const lp_backend *bes[2] = {ref, cpu};
        for (int k = 0; k < 2; k++) {
            const lp_backend *be = bes[k];
            float *dx = bu_upf(be, x, n), *dy = bu_upf(be, y, n), *dz = bu_upf(be, x, n);
            lp_err err;
            assert_int_equal(be->scale(be, n, -1.75f, dx, dz, &err), LP_OK);
            assert_int_equal(be->axpy(be, n, 0.5f, dz, dy, &err), LP_OK); /* y += 0.5 (-1.75 x) */
            assert_int_equal(be->fill(be, n / 2, 2.5f, dx, &err), LP_OK);
            assert_int_equal(be->axpy(be, n, 1.0f, dx, dy, &err), LP_OK);
            r[k] = bu_downf(be, dy, n);
            bu_free(be, dx);
            bu_free(be, dy);
            bu_free(be, dz);
        }
        bu_close(r[1], r[0], n, TOL_ELEM_ATOL, TOL_ELEM_RTOL, "scale+axpy+fill");
        double want = y[0] + 0.5 * (-1.75 * x[0]) + (n / 2 > 0 ? 2.5 : x[0]);
        assert_true(fabs(r[0][0] - want) < 1e-5);
        free(r[0]);
        free(r[1]);
        free(x);
        free(y);
    }
}

/* ---- activations ------------------------------------------------------------------------- */

static void test_activations(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 12);
    for (size_t s = 0; s < NSIZES; s++) {
        size_t n = sizes[s];
        /* [-12, 12] reaches tanh / sigmoid saturation and gelu's far tails. */
        float *x = bu_rand(&rng, n, -12, 12), *dy = bu_rand(&rng, n, -1, 1);
        for (int k = 0; k < LP_ACT_KIND_COUNT_; k++) {
            float *fw[2], *bw[2];
            const lp_backend *bes[2] = {ref, cpu};
            for (int t = 0; t < 2; t++) {
                const lp_backend *be = bes[t];
                float *dxv = bu_upf(be, x, n), *dyv = bu_upf(be, dy, n), *y = bu_upf(be, x, n);
                float *g = bu_upf(be, x, n);
                lp_err err;
                assert_int_equal(be->act_forward(be, (lp_act_kind)k, n, dxv, y, &err), LP_OK);
                const float *fwd = lp_act_backward_uses_output((lp_act_kind)k) ? y : dxv;
                assert_int_equal(be->act_backward(be, (lp_act_kind)k, n, fwd, dyv, g, &err), LP_OK);
                fw[t] = bu_downf(be, y, n);
                bw[t] = bu_downf(be, g, n);
                bu_free(be, dxv);
                bu_free(be, dyv);
                bu_free(be, y);
                bu_free(be, g);
            }
            char what[64];
            snprintf(what, sizeof what, "%s forward n=%zu", lp_act_kind_name((lp_act_kind)k), n);
            bu_close(fw[1], fw[0], n, TOL_TRANS_ATOL, TOL_TRANS_RTOL, what);
            snprintf(what, sizeof what, "%s backward n=%zu", lp_act_kind_name((lp_act_kind)k), n);
            /* tanh/sigmoid backward read float y: 1 - y^2 cancels near saturation, so the
             * absolute error is that of y (1 ulp of 1) times |dy| <= 1. */
            bu_close(bw[1], bw[0], n, 2e-7 + TOL_TRANS_ATOL, TOL_TRANS_RTOL, what);
            for (int t = 0; t < 2; t++) {
                free(fw[t]);
                free(bw[t]);
            }
        }
        free(x);
        free(dy);
    }
}

/* In-place use (out == input) is allowed for activations and elementwise ops. */
static void test_in_place(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 13);
    size_t n = 40000;
    float *x = bu_rand(&rng, n, -4, 4);
    const lp_backend *bes[2] = {ref, cpu};
    for (int t = 0; t < 2; t++) {
        const lp_backend *be = bes[t];
        float *a = bu_upf(be, x, n), *b = bu_upf(be, x, n);
        lp_err err;
        assert_int_equal(be->act_forward(be, LP_ACT_KIND_GELU_ERF, n, a, a, &err), LP_OK);
        float *c = bu_upf(be, x, n);
        assert_int_equal(be->act_forward(be, LP_ACT_KIND_GELU_ERF, n, b, c, &err), LP_OK);
        float *ha = bu_downf(be, a, n), *hc = bu_downf(be, c, n);
        bu_close(ha, hc, n, 0, 0, "gelu in place");
        free(ha);
        free(hc);
        bu_free(be, a);
        bu_free(be, b);
        bu_free(be, c);
    }
    free(x);
}

/* ---- gemm and low-rank ------------------------------------------------------------------- */

static float *run_gemm(const lp_backend *be, bool ta, bool tb, size_t m, size_t n, size_t k,
                       float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                       float beta, const float *c, size_t ldc)
{
    size_t arows = ta ? k : m, brows = tb ? n : k;
    float *da = bu_upf(be, a, arows * lda), *db = bu_upf(be, b, brows * ldb);
    float *dc = bu_upf(be, c, m * ldc);
    lp_err err;
    assert_int_equal(be->sgemm(be, ta, tb, m, n, k, alpha, da, lda, db, ldb, beta, dc, ldc, &err),
                     LP_OK);
    float *h = bu_downf(be, dc, m * ldc);
    bu_free(be, da);
    bu_free(be, db);
    bu_free(be, dc);
    return h;
}

static void test_sgemm(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 14);
    const size_t dims[][3] = {{1, 1, 1},    {1, 5, 3},     {7, 1, 9},
                              {13, 11, 17}, {64, 33, 129}, {150, 90, 200}};
    for (size_t s = 0; s < sizeof dims / sizeof dims[0]; s++)
        for (int tr = 0; tr < 4; tr++) {
            bool ta = tr & 1, tb = tr & 2;
            size_t m = dims[s][0], n = dims[s][1], k = dims[s][2];
            /* Leading dimensions larger than the logical width exercise the strides. */
            size_t lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
            float *a = bu_rand(&rng, (ta ? k : m) * lda, -1, 1);
            float *b = bu_rand(&rng, (tb ? n : k) * ldb, -1, 1);
            float *c = bu_rand(&rng, m * ldc, -1, 1);
            float beta = (s % 2) ? 0.0f : 0.5f;
            if (beta == 0)
                c[0] = NAN; /* beta == 0 must not read C */
            float *r0 = run_gemm(ref, ta, tb, m, n, k, 1.25f, a, lda, b, ldb, beta, c, ldc);
            float *r1 = run_gemm(cpu, ta, tb, m, n, k, 1.25f, a, lda, b, ldb, beta, c, ldc);
            char what[64];
            snprintf(what, sizeof what, "sgemm %zux%zux%zu ta=%d tb=%d", m, n, k, ta, tb);
            bu_close(r1, r0, m * ldc, TOL_GEMM_ATOL_PER_K * (double)k, TOL_GEMM_RTOL, what);
            /* One entry by hand, so the reference itself is checked. */
            double want = beta * (double)c[0];
            if (beta == 0)
                want = 0;
            for (size_t p = 0; p < k; p++)
                want += 1.25 * (double)(ta ? a[p * lda] : a[p]) * (tb ? b[p] : b[p * ldb]);
            assert_true(fabs(r0[0] - want) <= 1e-5 * (1 + fabs(want)));
            /* padding columns of C beyond n are untouched */
            if (ldc > n)
                assert_true(r1[n] == c[n] || (isnan(r1[n]) && isnan(c[n])));
            free(a);
            free(b);
            free(c);
            free(r0);
            free(r1);
        }
}

static void test_lowrank(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 15);
    const size_t dims[][3] = {{1, 1, 1}, {9, 7, 2}, {96, 130, 8}};
    for (size_t s = 0; s < 3; s++) {
        size_t m = dims[s][0], n = dims[s][1], r = dims[s][2];
        float *w = bu_rand(&rng, m * n, -1, 1), *b = bu_rand(&rng, m * r, -1, 1);
        float *a = bu_rand(&rng, r * n, -1, 1);
        float *out[2];
        const lp_backend *bes[2] = {ref, cpu};
        for (int t = 0; t < 2; t++) {
            const lp_backend *be = bes[t];
            float *dw = bu_upf(be, w, m * n), *db = bu_upf(be, b, m * r),
                  *da = bu_upf(be, a, r * n);
            lp_err err;
            assert_int_equal(be->lowrank_update(be, m, n, r, 0.75f, db, da, dw, &err), LP_OK);
            out[t] = bu_downf(be, dw, m * n);
            /* merge then unmerge restores W (LoRA merge / unmerge) */
            assert_int_equal(be->lowrank_update(be, m, n, r, -0.75f, db, da, dw, &err), LP_OK);
            float *back = bu_downf(be, dw, m * n);
            bu_close(back, w, m * n, 1e-6 * (double)r, 0, "lowrank merge/unmerge");
            free(back);
            bu_free(be, dw);
            bu_free(be, db);
            bu_free(be, da);
        }
        bu_close(out[1], out[0], m * n, TOL_GEMM_ATOL_PER_K * (double)r, TOL_GEMM_RTOL, "lowrank");
        double want = w[m * n - 1];
        for (size_t p = 0; p < r; p++)
            want += 0.75 * (double)b[(m - 1) * r + p] * a[p * n + n - 1];
        assert_true(fabs(out[0][m * n - 1] - want) < 1e-5);
        free(out[0]);
        free(out[1]);
        free(w);
        free(b);
        free(a);
    }
}

/* ---- bias and reductions ------------------------------------------------------------------ */

static void test_bias_and_reductions(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 16);
    for (size_t s = 0; s < NSHAPES; s++) {
        size_t n = shapes[s][0], d = shapes[s][1];
        float *x = bu_rand(&rng, n * d, -2, 2), *b = bu_rand(&rng, d, -1, 1);
        float *res[2][6];
        int32_t am[2][1025];
        const lp_backend *bes[2] = {ref, cpu};
        for (int t = 0; t < 2; t++) {
            const lp_backend *be = bes[t];
            float *dx = bu_upf(be, x, n * d), *dbias = bu_upf(be, b, d), *db = bu_upf(be, b, d);
            const float zero2[2] = {0, 0};
            float *rows = bu_upf(be, b, d), *cols = bu_upf(be, x, n), *all = bu_upf(be, zero2, 2);
            int32_t *dam = bu_up(be, x, n * sizeof(int32_t));
            lp_err err;
            /* db starts at b: bias_backward accumulates */
            assert_int_equal(be->bias_backward(be, n, d, dx, db, &err), LP_OK);
            assert_int_equal(be->sum_rows(be, n, d, dx, rows, &err), LP_OK);
            assert_int_equal(be->sum_cols(be, n, d, dx, cols, &err), LP_OK);
            assert_int_equal(be->sum_all(be, n * d, dx, all, &err), LP_OK);
            assert_int_equal(be->max_abs(be, n * d, dx, all + 1, &err), LP_OK);
            assert_int_equal(be->argmax_rows(be, n, d, dx, dam, &err), LP_OK);
            assert_int_equal(be->bias_add(be, n, d, dbias, dx, &err), LP_OK);
            res[t][0] = bu_downf(be, db, d);
            res[t][1] = bu_downf(be, rows, d);
            res[t][2] = bu_downf(be, cols, n);
            res[t][3] = bu_downf(be, all, 2);
            res[t][4] = bu_downf(be, dx, n * d);
            assert_int_equal(be->copy_d2h(be, am[t], dam, n * sizeof(int32_t), &err), LP_OK);
            bu_free(be, dx);
            bu_free(be, dbias);
            bu_free(be, db);
            bu_free(be, rows);
            bu_free(be, cols);
            bu_free(be, all);
            bu_free(be, dam);
        }
        bu_close(res[1][0], res[0][0], d, TOL_SUM_ATOL, TOL_SUM_RTOL, "bias_backward");
        bu_close(res[1][1], res[0][1], d, TOL_SUM_ATOL, TOL_SUM_RTOL, "sum_rows");
        bu_close(res[1][2], res[0][2], n, TOL_SUM_ATOL, TOL_SUM_RTOL, "sum_cols");
        bu_close(res[1][3], res[0][3], 2, TOL_SUM_ATOL * (double)n, TOL_SUM_RTOL,
                 "sum_all/max_abs");
        bu_close(res[1][4], res[0][4], n * d, TOL_ELEM_ATOL, TOL_ELEM_RTOL, "bias_add");
        /* Properties the reference must have: bias_backward = b + sum_rows; sum_all = sum of
         * sum_rows; max_abs is attained; argmax is a maximum. */
        for (size_t j = 0; j < d; j++)
            assert_true(fabsf(res[0][0][j] - (b[j] + res[0][1][j])) < 1e-5f);
        double tot = 0, mx = 0;
        for (size_t i = 0; i < n * d; i++) {
            tot += x[i];
            mx = fabs(x[i]) > mx ? fabs(x[i]) : mx;
        }
        assert_true(fabs(res[0][3][0] - tot) < 1e-4 * (1 + fabs(tot)));
        assert_true(res[0][3][1] == (float)mx);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(am[0][i], am[1][i]);
            for (size_t j = 0; j < d; j++)
                assert_true(x[i * d + j] <= x[i * d + (size_t)am[0][i]]);
        }
        assert_true(res[0][4][d - 1] == x[d - 1] + b[d - 1]);
        for (int t = 0; t < 2; t++)
            for (int q = 0; q < 5; q++)
                free(res[t][q]);
        free(x);
        free(b);
    }
}

/* ---- losses -------------------------------------------------------------------------------- */

static void test_losses(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 17);
    const size_t xs[][2] = {{1, 1}, {1, 2}, {9, 5}, {1000, 37}};
    for (size_t s = 0; s < 4; s++) {
        size_t n = xs[s][0], c = xs[s][1];
        /* Large logits: without max subtraction exp would overflow to Inf. */
        float *z = bu_rand(&rng, n * c, -60, 120), *w = bu_rand(&rng, c, 0.2, 3);
        float *y01 = bu_rand(&rng, n * c, 0, 1);
        int32_t *t = malloc(n * sizeof *t);
        for (size_t i = 0; i < n; i++)
            t[i] = (int32_t)lp_rng_below(&rng, c);
        double loss[2][4];
        float *grad[2][4];
        const lp_backend *bes[2] = {ref, cpu};
        for (int b = 0; b < 2; b++) {
            const lp_backend *be = bes[b];
            float *dz = bu_upf(be, z, n * c), *dw = bu_upf(be, w, c), *dy = bu_upf(be, y01, n * c);
            int32_t *dt = bu_up(be, t, n * sizeof *t);
            float *g[4];
            for (int q = 0; q < 4; q++)
                g[q] = bu_upf(be, z, n * c);
            lp_err err;
            assert_int_equal(be->softmax_xent(be, n, c, dz, dt, NULL, &loss[b][0], g[0], &err),
                             LP_OK);
            assert_int_equal(be->softmax_xent(be, n, c, dz, dt, dw, &loss[b][1], g[1], &err),
                             LP_OK);
            assert_int_equal(be->bce_logits(be, n * c, dz, dy, &loss[b][2], g[2], &err), LP_OK);
            assert_int_equal(be->mse(be, n * c, dz, dy, &loss[b][3], g[3], &err), LP_OK);
            for (int q = 0; q < 4; q++) {
                grad[b][q] = bu_downf(be, g[q], n * c);
                bu_free(be, g[q]);
            }
            /* the gradient is optional */
            double l2;
            assert_int_equal(be->softmax_xent(be, n, c, dz, dt, dw, &l2, NULL, &err), LP_OK);
            assert_true(l2 == loss[b][1]);
            bu_free(be, dz);
            bu_free(be, dw);
            bu_free(be, dy);
            bu_free(be, dt);
        }
        const char *names[4] = {"softmax_xent", "softmax_xent weighted", "bce_logits", "mse"};
        for (int q = 0; q < 4; q++) {
            bu_close(grad[1][q], grad[0][q], n * c, TOL_TRANS_ATOL, TOL_LOSS_RTOL, names[q]);
            assert_true(fabs(loss[1][q] - loss[0][q]) <= TOL_LOSS_RTOL * (1e-6 + fabs(loss[0][q])));
            assert_true(isfinite(loss[0][q]) && loss[0][q] >= 0);
        }
        /* softmax-xent gradient rows sum to 0 */
        for (size_t i = 0; i < n; i++) {
            double rs = 0;
            for (size_t j = 0; j < c; j++)
                rs += grad[0][0][i * c + j];
            assert_true(fabs(rs) < 1e-6);
        }
        /* mse by hand */
        double m = 0;
        for (size_t i = 0; i < n * c; i++)
            m += ((double)z[i] - y01[i]) * ((double)z[i] - y01[i]);
        assert_true(fabs(loss[0][3] - m / (double)(n * c)) < 1e-9 * m);
        for (int b = 0; b < 2; b++)
            for (int q = 0; q < 4; q++)
                free(grad[b][q]);
        free(z);
        free(w);
        free(y01);
        free(t);
    }
}

/* ---- optimizers ---------------------------------------------------------------------------- */

static void test_optimizers(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 18);
    for (size_t s = 0; s < NSIZES; s++) {
        size_t n = sizes[s];
        float *p0 = bu_rand(&rng, n, -1, 1);
        float *g[3];
        for (int k = 0; k < 3; k++)
            g[k] = bu_rand(&rng, n, -0.1, 0.1);
        lp_adamw_opts ao = lp_adamw_opts_default();
        ao.lr = 1e-2f;
        ao.weight_decay = 0.1f;
        lp_sgd_opts so = lp_sgd_opts_default();
        so.nesterov = true;
        so.weight_decay = 1e-3f;
        float *out[2][4];
        const lp_backend *bes[2] = {ref, cpu};
        for (int b = 0; b < 2; b++) {
            const lp_backend *be = bes[b];
            float *pa = bu_upf(be, p0, n), *ps = bu_upf(be, p0, n), *dg = bu_upf(be, p0, n);
            lp_dbuf m, v, mb;
            lp_err err;
            assert_int_equal(lp_dbuf_alloc(be, n, &m, &err), LP_OK);
            assert_int_equal(lp_dbuf_alloc(be, n, &v, &err), LP_OK);
            assert_int_equal(lp_dbuf_alloc(be, n, &mb, &err), LP_OK);
            for (uint64_t t = 1; t <= 3; t++) {
                assert_int_equal(be->copy_h2d(be, dg, g[t - 1], n * sizeof(float), &err), LP_OK);
                assert_int_equal(be->adamw_step(be, n, &ao, t, pa, dg, m.ptr, v.ptr, &err), LP_OK);
                assert_int_equal(be->sgd_step(be, n, &so, ps, dg, mb.ptr, &err), LP_OK);
            }
            out[b][0] = bu_downf(be, pa, n);
            out[b][1] = bu_downf(be, ps, n);
            out[b][2] = bu_downf(be, v.ptr, n);
            out[b][3] = bu_downf(be, mb.ptr, n);
            bu_free(be, pa);
            bu_free(be, ps);
            bu_free(be, dg);
            lp_dbuf_free(be, &m);
            lp_dbuf_free(be, &v);
            lp_dbuf_free(be, &mb);
        }
        bu_close(out[1][0], out[0][0], n, TOL_OPT_ATOL, TOL_OPT_RTOL, "adamw params");
        bu_close(out[1][1], out[0][1], n, TOL_OPT_ATOL, TOL_OPT_RTOL, "sgd params");
        bu_close(out[1][2], out[0][2], n, 1e-12, TOL_OPT_RTOL, "adamw v");
        bu_close(out[1][3], out[0][3], n, TOL_OPT_ATOL, TOL_OPT_RTOL, "sgd momentum buffer");
        for (int b = 0; b < 2; b++)
            for (int q = 0; q < 4; q++)
                free(out[b][q]);
        for (int k = 0; k < 3; k++)
            free(g[k]);
        free(p0);
    }
}

/* ---- dropout ------------------------------------------------------------------------------- */

static void test_dropout(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 19);
    for (size_t s = 0; s < NSIZES; s++) {
        size_t n = sizes[s];
        float *x = bu_rand(&rng, n, -1, 1);
        float *out[2][2];
        const lp_backend *bes[2] = {ref, cpu};
        for (int b = 0; b < 2; b++) {
            const lp_backend *be = bes[b];
            float *dx = bu_upf(be, x, n), *y = bu_upf(be, x, n), *g = bu_upf(be, x, n);
            lp_err err;
            assert_int_equal(be->dropout_forward(be, n, 0.3f, 42, 7, dx, y, &err), LP_OK);
            assert_int_equal(be->dropout_backward(be, n, 0.3f, 42, 7, dx, g, &err), LP_OK);
            out[b][0] = bu_downf(be, y, n);
            out[b][1] = bu_downf(be, g, n);
            bu_free(be, dx);
            bu_free(be, y);
            bu_free(be, g);
        }
        /* Bit for bit: the mask is defined by Philox counters, the scale is one float. */
        bu_close(out[1][0], out[0][0], n, 0, 0, "dropout forward");
        bu_close(out[1][1], out[0][1], n, 0, 0, "dropout backward");
        for (size_t i = 0; i < n; i++)
            assert_true(out[0][0][i] ==
                        (lp_dropout_keep(42, 7, i, 0.3f) ? x[i] * (1.0f / (1.0f - 0.3f)) : 0.0f));
        for (int b = 0; b < 2; b++) {
            free(out[b][0]);
            free(out[b][1]);
        }
        free(x);
    }
}

/* ---- im2col / col2im / pooling ------------------------------------------------------------- */

static const lp_conv2d_geom geoms[] = {
    /* n c  h  w kh kw sh sw ph pw */
    {1, 1, 1, 1, 1, 1, 1, 1, 0, 0},   {1, 2, 5, 4, 3, 2, 1, 1, 1, 1},
    {2, 3, 7, 9, 3, 3, 2, 2, 1, 0},   {1, 1, 6, 6, 2, 2, 2, 2, 0, 0},
    {2, 3, 33, 31, 3, 3, 1, 1, 1, 1}, /* im2col size 2*27*33*31 > OMP threshold */
    {3, 4, 20, 19, 4, 3, 2, 3, 2, 1},
};
#define NGEOMS (sizeof geoms / sizeof geoms[0])

static void test_conv_and_pool(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 20);
    for (size_t s = 0; s < NGEOMS; s++) {
        const lp_conv2d_geom *g = &geoms[s];
        size_t oh, ow;
        assert_int_equal(lp_conv2d_geom_check(g, "test", &oh, &ow, NULL), LP_OK);
        size_t nx = g->n * g->c * g->h * g->w, ny = g->n * g->c * oh * ow;
        size_t ncol = g->n * g->c * g->kh * g->kw * oh * ow;
        float *x = bu_rand(&rng, nx, -1, 1), *col = bu_rand(&rng, ncol, -1, 1);
        float *dy = bu_rand(&rng, ny, -1, 1);
        float *out[2][7];
        int32_t *am[2];
        const lp_backend *bes[2] = {ref, cpu};
        for (int b = 0; b < 2; b++) {
            const lp_backend *be = bes[b];
            float *dx = bu_upf(be, x, nx), *dcol = bu_upf(be, col, ncol),
                  *c2 = bu_upf(be, col, ncol);
            float *xi = bu_upf(be, x, nx), *ddy = bu_upf(be, dy, ny);
            float *ym = bu_upf(be, dy, ny), *ya = bu_upf(be, dy, ny);
            float *gm = bu_upf(be, x, nx), *ga = bu_upf(be, x, nx);
            int32_t *dam = bu_up(be, dy, ny * sizeof(int32_t));
            lp_err err;
            assert_int_equal(be->im2col(be, g, dx, c2, &err), LP_OK);
            assert_int_equal(be->col2im(be, g, dcol, xi, &err), LP_OK);
            lp_status pst = be->maxpool_forward(be, g, dx, ym, dam, &err);
            bool pool_ok = 2 * g->pad_h <= g->kh && 2 * g->pad_w <= g->kw;
            assert_int_equal(pst, pool_ok ? LP_OK : LP_EINVAL);
            if (pool_ok) {
                assert_int_equal(be->maxpool_backward(be, g, ddy, dam, gm, &err), LP_OK);
                assert_int_equal(be->avgpool_forward(be, g, dx, ya, &err), LP_OK);
                assert_int_equal(be->avgpool_backward(be, g, ddy, ga, &err), LP_OK);
            }
            out[b][0] = bu_downf(be, c2, ncol);
            out[b][1] = bu_downf(be, xi, nx);
            out[b][2] = bu_downf(be, ym, ny);
            out[b][3] = bu_downf(be, gm, nx);
            out[b][4] = bu_downf(be, ya, ny);
            out[b][5] = bu_downf(be, ga, nx);
            am[b] = malloc(ny * sizeof(int32_t));
            assert_int_equal(be->copy_d2h(be, am[b], dam, ny * sizeof(int32_t), &err), LP_OK);
            bu_free(be, dx);
            bu_free(be, dcol);
            bu_free(be, c2);
            bu_free(be, xi);
            bu_free(be, ddy);
            bu_free(be, ym);
            bu_free(be, ya);
            bu_free(be, gm);
            bu_free(be, ga);
            bu_free(be, dam);
        }
        /* im2col is a copy: exact. col2im sums up to kh*kw values in different orders. */
        bu_close(out[1][0], out[0][0], ncol, 0, 0, "im2col");
        bu_close(out[1][1], out[0][1], nx, 1e-6, 1e-6, "col2im");
        bu_close(out[1][2], out[0][2], ny, 0, 0, "maxpool forward");
        bu_close(out[1][3], out[0][3], nx, 1e-6, 1e-6, "maxpool backward");
        bu_close(out[1][4], out[0][4], ny, 1e-6, 1e-6, "avgpool forward");
        bu_close(out[1][5], out[0][5], nx, 1e-6, 1e-6, "avgpool backward");
        if (2 * g->pad_h <= g->kh && 2 * g->pad_w <= g->kw)
            for (size_t i = 0; i < ny; i++)
                assert_int_equal(am[0][i], am[1][i]);
        /* the ref's first im2col entry by hand: row 0 = (ci 0, ki 0, kj 0), pixel (0, 0) */
        float want0 = (g->pad_h == 0 && g->pad_w == 0) ? x[0] : 0.0f;
        assert_true(out[0][0][0] == want0);
        for (int b = 0; b < 2; b++) {
            for (int q = 0; q < 6; q++)
                free(out[b][q]);
            free(am[b]);
        }
        free(x);
        free(col);
        free(dy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elementwise), cmocka_unit_test(test_activations),
        cmocka_unit_test(test_in_place),    cmocka_unit_test(test_sgemm),
        cmocka_unit_test(test_lowrank),     cmocka_unit_test(test_bias_and_reductions),
        cmocka_unit_test(test_losses),      cmocka_unit_test(test_optimizers),
        cmocka_unit_test(test_dropout),     cmocka_unit_test(test_conv_and_pool),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
