/*
 * test_backend_optim.c - optimizer steps and dropout randomness on every backend table.
 *
 * AdamW and SGD (momentum, Nesterov, plain) run 4 steps against tests/fixtures/backend.txt,
 * written by tests/fixtures/gen_backend.py: NumPy transcriptions of torch.optim.AdamW / SGD
 * (PyTorch itself is not installed where fixtures are generated). Dropout: Philox-4x32-10
 * known-answer vectors, mask reproducible from (seed, step), different for another step or
 * seed, keep rate within 5 standard deviations, and kept values scaled by 1 / (1 - p).
 */
#include "backend_util.h"

/* State is float32 on both sides; the fixture does each step in float64 and rounds, the C
 * tables in float (cpu) or double (ref). Four steps of lr ~ 1e-2 updates: a few float ulps of
 * values ~1 (1e-6), and 1e-5 relative for m and v (the 1 - beta products round once a step). */
#define TOL_OPT_ATOL 2e-6
#define TOL_OPT_RTOL 1e-5

static const lp_backend *tables[2];

static int setup(void **state)
{
    (void)state;
    tables[0] = lp_backend_ref();
    tables[1] = lp_backend_cpu();
    return 0;
}

static float *to_float(const double *v, size_t n)
{
    float *f = malloc(n * sizeof *f);
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        f[i] = (float)v[i];
    return f;
}

static void test_adamw_fixture(void **state)
{
    (void)state;
    lp_fixture *fx = lp_fixture_load("backend.txt");
    size_t r, n, steps;
    double *p0 = lp_fixture_array(fx, "p0", &r, &n);
    double *gr = lp_fixture_array(fx, "grads", &steps, &r);
    assert_int_equal(r, n);
    const char *cases[2] = {"adamw", "adamw_nowd"};
    for (int c = 0; c < 2; c++) {
        char key[64];
        snprintf(key, sizeof key, "%s_hp", cases[c]);
        double *hp = lp_fixture_array(fx, key, &r, &r);
        lp_adamw_opts o = {
            .lr = hp[0], .beta1 = hp[1], .beta2 = hp[2], .eps = hp[3], .weight_decay = hp[4]};
        assert_int_equal(lp_adamw_opts_check(&o, NULL), LP_OK);
        snprintf(key, sizeof key, "%s_params", cases[c]);
        double *want = lp_fixture_array(fx, key, &r, &r);
        snprintf(key, sizeof key, "%s_m", cases[c]);
        double *wm = lp_fixture_array(fx, key, &r, &r);
        snprintf(key, sizeof key, "%s_v", cases[c]);
        double *wv = lp_fixture_array(fx, key, &r, &r);
        for (int t = 0; t < 2; t++) {
            const lp_backend *be = tables[t];
            float *hp0 = to_float(p0, n);
            float *p = bu_upf(be, hp0, n), *g = bu_upf(be, hp0, n);
            lp_dbuf m, v;
            assert_int_equal(lp_dbuf_alloc(be, n, &m, NULL), LP_OK);
            assert_int_equal(lp_dbuf_alloc(be, n, &v, NULL), LP_OK);
            for (size_t s = 0; s < steps; s++) {
                float *hg = to_float(gr + s * n, n);
                assert_int_equal(be->copy_h2d(be, g, hg, n * sizeof(float), NULL), LP_OK);
                assert_int_equal(be->adamw_step(be, n, &o, s + 1, p, g, m.ptr, v.ptr, NULL), LP_OK);
                float *got = bu_downf(be, p, n);
                double gd[64];
                for (size_t i = 0; i < n; i++)
                    gd[i] = got[i];
                char what[96];
                snprintf(what, sizeof what, "%s step %zu [%s]", cases[c], s + 1, be->name);
                lp_assert_close(gd, want + s * n, n, TOL_OPT_ATOL, TOL_OPT_RTOL, what);
                free(got);
                free(hg);
            }
            float *gm = bu_downf(be, m.ptr, n), *gv = bu_downf(be, v.ptr, n);
            double dm[64], dv[64];
            for (size_t i = 0; i < n; i++) {
                dm[i] = gm[i];
                dv[i] = gv[i];
            }
            lp_assert_close(dm, wm, n, 1e-9, TOL_OPT_RTOL, "adamw m");
            lp_assert_close(dv, wv, n, 1e-12, TOL_OPT_RTOL, "adamw v");
            free(gm);
            free(gv);
            free(hp0);
            bu_free(be, p);
            bu_free(be, g);
            lp_dbuf_free(be, &m);
            lp_dbuf_free(be, &v);
        }
        free(hp);
        free(want);
        free(wm);
        free(wv);
    }
    free(p0);
    free(gr);
    lp_fixture_free(fx);
}

static void test_sgd_fixture(void **state)
{
    (void)state;
    lp_fixture *fx = lp_fixture_load("backend.txt");
    size_t r, n, steps;
    double *p0 = lp_fixture_array(fx, "p0", &r, &n);
    double *gr = lp_fixture_array(fx, "grads", &steps, &r);
    const char *cases[3] = {"sgd_momentum", "sgd_nesterov", "sgd_plain"};
    for (int c = 0; c < 3; c++) {
        char key[64];
        snprintf(key, sizeof key, "%s_hp", cases[c]);
        double *hp = lp_fixture_array(fx, key, &r, &r);
        lp_sgd_opts o = {
            .lr = hp[0], .momentum = hp[1], .weight_decay = hp[2], .nesterov = hp[3] != 0};
        assert_int_equal(lp_sgd_opts_check(&o, NULL), LP_OK);
        snprintf(key, sizeof key, "%s_params", cases[c]);
        double *want = lp_fixture_array(fx, key, &r, &r);
        for (int t = 0; t < 2; t++) {
            const lp_backend *be = tables[t];
            float *hp0 = to_float(p0, n);
            float *p = bu_upf(be, hp0, n), *g = bu_upf(be, hp0, n);
            lp_dbuf buf;
            assert_int_equal(lp_dbuf_alloc(be, n, &buf, NULL), LP_OK);
            for (size_t s = 0; s < steps; s++) {
                float *hg = to_float(gr + s * n, n);
                assert_int_equal(be->copy_h2d(be, g, hg, n * sizeof(float), NULL), LP_OK);
                /* plain SGD must work without a buffer */
                float *bp = o.momentum > 0 ? buf.ptr : NULL;
                assert_int_equal(be->sgd_step(be, n, &o, p, g, bp, NULL), LP_OK);
                float *got = bu_downf(be, p, n);
                double gd[64];
                for (size_t i = 0; i < n; i++)
                    gd[i] = got[i];
                char what[96];
                snprintf(what, sizeof what, "%s step %zu [%s]", cases[c], s + 1, be->name);
                lp_assert_close(gd, want + s * n, n, TOL_OPT_ATOL, TOL_OPT_RTOL, what);
                free(got);
                free(hg);
            }
            free(hp0);
            bu_free(be, p);
            bu_free(be, g);
            lp_dbuf_free(be, &buf);
        }
        free(hp);
        free(want);
    }
    free(p0);
    free(gr);
    lp_fixture_free(fx);
}

/* Known-answer vectors of Philox-4x32-10 from Random123 (kat_vectors). */
static void test_philox_kat(void **state)
{
    (void)state;
    const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int k = 0; k < 3; k++) {
        uint32_t out[4];
        lp_philox4x32(kat[k], kat[k] + 4, out);
        for (int j = 0; j < 4; j++)
            if (out[j] != kat[k][6 + j])
                fail_msg("philox KAT %d word %d: got %08x want %08x", k, j, out[j], kat[k][6 + j]);
    }
}

static void test_dropout_mask(void **state)
{
    (void)state;
    size_t n = 200003;
    float *ones = malloc(n * sizeof *ones);
    for (size_t i = 0; i < n; i++)
        ones[i] = 1.0f;
    const float ps[3] = {0.1f, 0.5f, 0.9f};
    for (int t = 0; t < 2; t++) {
        const lp_backend *be = tables[t];
        float *x = bu_upf(be, ones, n), *y = bu_upf(be, ones, n);
        for (int k = 0; k < 3; k++) {
            float p = ps[k], scale = 1.0f / (1.0f - p);
            assert_int_equal(be->dropout_forward(be, n, p, 1234, 5, x, y, NULL), LP_OK);
            float *a = bu_downf(be, y, n);
            assert_int_equal(be->dropout_forward(be, n, p, 1234, 5, x, y, NULL), LP_OK);
            float *b = bu_downf(be, y, n);
            assert_int_equal(be->dropout_forward(be, n, p, 1234, 6, x, y, NULL), LP_OK);
            float *c = bu_downf(be, y, n);
            assert_int_equal(be->dropout_forward(be, n, p, 1235, 5, x, y, NULL), LP_OK);
            float *d = bu_downf(be, y, n);
            assert_memory_equal(a, b, n * sizeof *a); /* same (seed, step): same mask */
            size_t kept = 0, diff_step = 0, diff_seed = 0;
            for (size_t i = 0; i < n; i++) {
                assert_true(a[i] == 0.0f || a[i] == scale);
                kept += a[i] != 0;
                diff_step += (a[i] != 0) != (c[i] != 0);
                diff_seed += (a[i] != 0) != (d[i] != 0);
            }
            /* Binomial(n, 1 - p): 5 sigma is a 1-in-3.5-million false alarm. */
            double mean = n * (1.0 - p), sd = sqrt(n * p * (1.0 - p));
            if (fabs((double)kept - mean) > 5 * sd)
                fail_msg("dropout p=%g [%s]: kept %zu of %zu, expected %.0f +- %.0f", (double)p,
                         be->name, kept, n, mean, 5 * sd);
            /* Independent masks disagree on a fraction 2 p (1 - p) of elements. */
            double dis = 2.0 * p * (1.0 - p) * n, dsd = sqrt(dis);
            assert_true(fabs((double)diff_step - dis) < 6 * dsd);
            assert_true(fabs((double)diff_seed - dis) < 6 * dsd);
            free(a);
            free(b);
            free(c);
            free(d);
        }
        /* p = 0 keeps everything unchanged */
        assert_int_equal(be->dropout_forward(be, n, 0.0f, 1, 1, x, y, NULL), LP_OK);
        float *e = bu_downf(be, y, n);
        assert_memory_equal(e, ones, n * sizeof *e);
        free(e);
        bu_free(be, x);
        bu_free(be, y);
    }
    /* Neighbouring words of one Philox block and successive blocks are not correlated in the
     * crude sense of all agreeing: a mask of 64 elements at p = 0.5 is never all-kept. */
    /* Every bit of seed, step and index enters the counter or key: flipping a high bit moves
     * the mask. */
    size_t hi_seed = 0, hi_step = 0, hi_idx = 0;
    for (uint64_t i = 0; i < 256; i++) {
        bool k0 = lp_dropout_keep(7, 3, i, 0.5f);
        hi_seed += k0 != lp_dropout_keep(7 | (1ull << 50), 3, i, 0.5f);
        hi_step += k0 != lp_dropout_keep(7, 3 | (1ull << 40), i, 0.5f);
        hi_idx += k0 != lp_dropout_keep(7, 3, i | (1ull << 45), 0.5f);
    }
    assert_true(hi_seed > 64 && hi_step > 64 && hi_idx > 64);
    size_t k64 = 0;
    for (uint64_t i = 0; i < 64; i++)
        k64 += lp_dropout_keep(7, 0, i, 0.5f);
    assert_true(k64 > 8 && k64 < 56);
    free(ones);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw_fixture),
        cmocka_unit_test(test_sgd_fixture),
        cmocka_unit_test(test_philox_kat),
        cmocka_unit_test(test_dropout_mask),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
