/*
 * test_encoder_train_ops.c - the encoder's backward ops against central finite differences of a
 * double-precision host forward, on the ref and cpu tables: layernorm_backward (dx, dgamma,
 * dbeta, in place), softmax_rows_backward with a key mask, GELU (erf) act_backward,
 * scatter_add_rows with repeated indices, and masked multi-head attention
 * (et_attention_backward), whose padded keys must get exactly zero gradient.
 *
 * The analytic gradients are float; the differences are taken in double (step 1e-5), so the
 * reference is accurate to ~1e-9 and the tolerance covers float rounding of the op only.
 */
#include "lp_test.h"

#include "encoder/encoder_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* float ops on O(1) inputs with double row sums: ~1e-6 relative; FD in double: ~1e-9 */
#define TOL_ATOL 2e-5
#define TOL_RTOL 1e-4
#define FD_H 1e-5

static const char *const tables[] = {"ref", "cpu"};

static double urand(lp_rng *r)
{
    return 2 * lp_rng_uniform(r) - 1;
}

/* got (n) float against want (n) double within the ops' tolerance. */
static void close_f(const float *got, const double *want, size_t n, const char *what)
{
    double *g = malloc(n * sizeof *g);
    for (size_t i = 0; i < n; i++)
        g[i] = got[i];
    lp_assert_close(g, want, n, TOL_ATOL, TOL_RTOL, what);
    free(g);
}

/* ---- LayerNorm ---------------------------------------------------------------------------- */

/* f = sum_ij w_ij LN(x)_ij in double (gamma, beta as given). */
static double ln_obj(size_t n, size_t d, const double *x, const double *g, const double *b,
                     const double *w, double eps)
{
    double f = 0;
    for (size_t i = 0; i < n; i++) {
        double mu = 0, var = 0;
        for (size_t j = 0; j < d; j++)
            mu += x[i * d + j];
        mu /= (double)d;
        for (size_t j = 0; j < d; j++)
            var += (x[i * d + j] - mu) * (x[i * d + j] - mu);
        double rs = 1 / sqrt(var / (double)d + eps);
        for (size_t j = 0; j < d; j++)
            f += w[i * d + j] * ((x[i * d + j] - mu) * rs * g[j] + b[j]);
    }
    return f;
}

/* d f / d p[k] by central differences, p one of the three double arrays. */
static double fd(double *p, size_t k, double (*obj)(void *), void *ctx)
{
    double keep = p[k];
    p[k] = keep + FD_H;
    double up = obj(ctx);
    p[k] = keep - FD_H;
    double dn = obj(ctx);
    p[k] = keep;
    return (up - dn) / (2 * FD_H);
}

typedef struct ln_ctx {
    size_t n, d;
    double *x, *g, *b, *w;
} ln_ctx;

static double ln_call(void *c)
{
    ln_ctx *l = c;
    return ln_obj(l->n, l->d, l->x, l->g, l->b, l->w, 1e-5);
}

static void test_layernorm_backward(void **state)
{
    (void)state;
    enum { N = 5, D = 7 };
    lp_rng rng;
    lp_rng_seed(&rng, 1);
    double x[N * D], g[D], b[D], w[N * D];
    float xf[N * D], gf[D], bf[D], wf[N * D];
    for (size_t i = 0; i < N * D; i++) {
        x[i] = xf[i] = (float)(urand(&rng) * 3 + 1); /* a non-zero mean */
        w[i] = wf[i] = (float)urand(&rng);
    }
    for (size_t j = 0; j < D; j++) {
        g[j] = gf[j] = (float)(1 + 0.5 * urand(&rng));
        b[j] = bf[j] = (float)urand(&rng);
    }
    ln_ctx c = {N, D, x, g, b, w};
    double want_dx[N * D], want_dg[D], want_db[D];
    for (size_t i = 0; i < N * D; i++)
        want_dx[i] = fd(x, i, ln_call, &c);
    for (size_t j = 0; j < D; j++) {
        want_dg[j] = fd(g, j, ln_call, &c) + 0.25; /* dgamma accumulates onto 0.25 */
        want_db[j] = fd(b, j, ln_call, &c) + 0.25;
    }
    for (int t = 0; t < 2; t++) {
        const lp_backend *be;
        lp_err err;
        assert_int_equal(lp_backend_get(tables[t], &be, &err), LP_OK);
        float y[N * D], mean[N], rstd[N], dx[N * D], dg[D], db[D];
        assert_int_equal(be->layernorm_forward(be, N, D, 1e-5f, xf, gf, bf, y, mean, rstd, &err),
                         LP_OK);
        for (size_t j = 0; j < D; j++)
            dg[j] = db[j] = 0.25f;
        memcpy(dx, wf, sizeof dx); /* in place: dx aliases dy */
        if (be->layernorm_backward(be, N, D, xf, gf, mean, rstd, dx, dx, dg, db, &err))
            fail_msg("%s", err.msg);
        close_f(dx, want_dx, N * D, "layernorm dx");
        close_f(dg, want_dg, D, "layernorm dgamma");
        close_f(db, want_db, D, "layernorm dbeta");
        /* a mismatched buffer is refused, not read */
        assert_int_equal(
            be->layernorm_backward(be, N, 0, xf, gf, mean, rstd, dx, dx, NULL, NULL, &err),
            LP_EINVAL);
    }
}

/* ---- softmax with a mask ------------------------------------------------------------------ */

typedef struct sm_ctx {
    size_t n, d;
    double *x, *w;
    const float *mask;
} sm_ctx;

static double sm_call(void *c)
{
    sm_ctx *s = c;
    double f = 0;
    for (size_t i = 0; i < s->n; i++) {
        double mx = -INFINITY, z = 0;
        for (size_t j = 0; j < s->d; j++)
            if (s->mask[j] != 0 && s->x[i * s->d + j] > mx)
                mx = s->x[i * s->d + j];
        for (size_t j = 0; j < s->d; j++)
            if (s->mask[j] != 0)
                z += exp(s->x[i * s->d + j] - mx);
        for (size_t j = 0; j < s->d; j++)
            if (s->mask[j] != 0)
                f += s->w[i * s->d + j] * exp(s->x[i * s->d + j] - mx) / z;
    }
    return f;
}

static void test_softmax_backward(void **state)
{
    (void)state;
    enum { N = 4, D = 6 };
    const float mask[D] = {1, 1, 0, 1, 1, 0};
    lp_rng rng;
    lp_rng_seed(&rng, 2);
    double x[N * D], w[N * D];
    float xf[N * D], wf[N * D];
    for (size_t i = 0; i < N * D; i++) {
        x[i] = xf[i] = (float)(2 * urand(&rng));
        w[i] = wf[i] = (float)urand(&rng);
    }
    sm_ctx c = {N, D, x, w, mask};
    double want[N * D];
    for (size_t i = 0; i < N * D; i++)
        want[i] = fd(x, i, sm_call, &c);
    for (int t = 0; t < 2; t++) {
        const lp_backend *be;
        lp_err err;
        assert_int_equal(lp_backend_get(tables[t], &be, &err), LP_OK);
        float y[N * D], dx[N * D];
        assert_int_equal(be->softmax_rows(be, N, D, N, mask, xf, y, &err), LP_OK);
        if (be->softmax_rows_backward(be, N, D, y, wf, dx, &err))
            fail_msg("%s", err.msg);
        close_f(dx, want, N * D, "softmax dx");
        for (size_t i = 0; i < N; i++)
            assert_true(dx[i * D + 2] == 0.0f && dx[i * D + 5] == 0.0f);
    }
}

/* ---- GELU (erf) --------------------------------------------------------------------------- */

static double gelu_d(double x)
{
    return 0.5 * x * (1 + erf(x / sqrt(2.0)));
}

static void test_gelu_backward(void **state)
{
    (void)state;
    enum { N = 41 };
    float x[N], dy[N], dx[N];
    double want[N];
    for (size_t i = 0; i < N; i++) {
        x[i] = (float)(-5.0 + 0.25 * (double)i); /* both tails and the bend near 0 */
        dy[i] = (float)(0.5 + 0.01 * (double)i);
        double h = FD_H;
        want[i] = dy[i] * (gelu_d((double)x[i] + h) - gelu_d((double)x[i] - h)) / (2 * h);
    }
    for (int t = 0; t < 2; t++) {
        const lp_backend *be;
        lp_err err;
        assert_int_equal(lp_backend_get(tables[t], &be, &err), LP_OK);
        assert_int_equal(be->act_backward(be, LP_ACT_KIND_GELU_ERF, N, x, dy, dx, &err), LP_OK);
        close_f(dx, want, N, "gelu dx");
    }
}

/* ---- scatter-add -------------------------------------------------------------------------- */

static void test_scatter_add(void **state)
{
    (void)state;
    const int32_t idx[5] = {2, 0, 2, 3, 2};
    float dy[5 * 3], tab[4 * 3];
    for (size_t i = 0; i < 15; i++)
        dy[i] = (float)(i + 1);
    for (int t = 0; t < 2; t++) {
        const lp_backend *be;
        lp_err err;
        assert_int_equal(lp_backend_get(tables[t], &be, &err), LP_OK);
        for (size_t i = 0; i < 12; i++)
            tab[i] = 1.0f;
        assert_int_equal(be->scatter_add_rows(be, 5, 3, 4, dy, idx, tab, &err), LP_OK);
        /* row 2 gets rows 0, 2, 4 of dy; row 1 nothing; rows are accumulated onto 1 */
        const float want[12] = {5,  6,  7, 1, 1, 1, 1 + 1 + 7 + 13, 1 + 2 + 8 + 14, 1 + 3 + 9 + 15,
                                11, 12, 13};
        for (size_t i = 0; i < 12; i++)
            assert_true(tab[i] == want[i]);
        const int32_t bad[1] = {4};
        assert_int_equal(be->scatter_add_rows(be, 1, 3, 4, dy, bad, tab, &err), LP_EINVAL);
        assert_non_null(strstr(err.msg, "idx[0]"));
    }
}

/* ---- attention ---------------------------------------------------------------------------- */

enum { AB = 2, AT = 4, AH = 2, AD = 6 };

typedef struct att_ctx {
    double *q, *k, *v, *w; /* (AB*AT, AD) */
    const float *mask;     /* (AB, AT) */
} att_ctx;

/* f = sum w . ctx, ctx from the double attention with the key mask */
static double att_call(void *c)
{
    att_ctx *a = c;
    size_t dh = AD / AH;
    double f = 0;
    for (size_t b = 0; b < AB; b++)
        for (size_t h = 0; h < AH; h++)
            for (size_t i = 0; i < AT; i++) {
                double s[AT], mx = -INFINITY, z = 0;
                for (size_t j = 0; j < AT; j++) {
                    s[j] = 0;
                    for (size_t e = 0; e < dh; e++)
                        s[j] += a->q[(b * AT + i) * AD + h * dh + e] *
                                a->k[(b * AT + j) * AD + h * dh + e];
                    s[j] /= sqrt((double)dh);
                    if (a->mask[b * AT + j] != 0 && s[j] > mx)
                        mx = s[j];
                }
                for (size_t j = 0; j < AT; j++)
                    z += a->mask[b * AT + j] != 0 ? exp(s[j] - mx) : 0;
                for (size_t e = 0; e < dh; e++) {
                    double o = 0;
                    for (size_t j = 0; j < AT; j++)
                        if (a->mask[b * AT + j] != 0)
                            o += exp(s[j] - mx) / z * a->v[(b * AT + j) * AD + h * dh + e];
                    f += a->w[(b * AT + i) * AD + h * dh + e] * o;
                }
            }
    return f;
}

static void test_attention_backward(void **state)
{
    (void)state;
    enum { M = AB * AT * AD };
    const float mask[AB * AT] = {1, 1, 1, 1, 1, 1, 0, 0}; /* sequence 1 has 2 padded keys */
    lp_rng rng;
    lp_rng_seed(&rng, 3);
    double q[M], k[M], v[M], w[M];
    float qf[M], kf[M], vf[M], wf[M];
    for (size_t i = 0; i < M; i++) {
        q[i] = qf[i] = (float)urand(&rng);
        k[i] = kf[i] = (float)urand(&rng);
        v[i] = vf[i] = (float)urand(&rng);
        w[i] = wf[i] = (float)urand(&rng);
    }
    att_ctx c = {q, k, v, w, mask};
    double wq[M], wk[M], wv[M];
    for (size_t i = 0; i < M; i++) {
        wq[i] = fd(q, i, att_call, &c);
        wk[i] = fd(k, i, att_call, &c);
        wv[i] = fd(v, i, att_call, &c);
    }
    for (int t = 0; t < 2; t++) {
        const lp_backend *be;
        lp_err err;
        assert_int_equal(lp_backend_get(tables[t], &be, &err), LP_OK);
        float probs[AB * AH * AT * AT], ctx[M], dprobs[AB * AH * AT * AT], dq[M], dk[M], dv[M];
        if (et_attention_forward(be, AB, AT, AH, AD, mask, qf, kf, vf, probs, ctx, &err) ||
            et_attention_backward(be, AB, AT, AH, AD, qf, kf, vf, probs, wf, dprobs, dq, dk, dv,
                                  &err))
            fail_msg("%s", err.msg);
        close_f(dq, wq, M, "attention dq");
        close_f(dk, wk, M, "attention dk");
        close_f(dv, wv, M, "attention dv");
        /* padded keys (sequence 1, positions 2 and 3) never influence anything */
        for (size_t p = 2; p < 4; p++)
            for (size_t e = 0; e < AD; e++) {
                assert_true(dk[(AT + p) * AD + e] == 0.0f);
                assert_true(dv[(AT + p) * AD + e] == 0.0f);
            }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layernorm_backward), cmocka_unit_test(test_softmax_backward),
        cmocka_unit_test(test_gelu_backward),      cmocka_unit_test(test_scatter_add),
        cmocka_unit_test(test_attention_backward),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
