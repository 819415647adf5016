/*
 * test_backend_api.c - the backend's contract outside the numbers: choosing a table by name,
 * complete tables, argument errors with messages that name the op and the argument, LP_ENUMERIC
 * from non-finite losses, tie and NaN rules, device buffers and the parameter layout.
 */
#include "lp_test.h"

#include <dirent.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static const lp_backend *tables[2];

static int setup(void **state)
{
    (void)state;
    tables[0] = lp_backend_ref();
    tables[1] = lp_backend_cpu();
    return 0;
}

static size_t thread_count(void)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* Runs first, in a fresh process: small inputs must not fork an OpenMP team (no new thread
 * appears), while an input above LP_BACKEND_OMP_MIN does when more than one thread is
 * allowed, which shows the count can move. */
static void test_no_threads_on_small_inputs(void **state)
{
    (void)state;
    if (thread_count() == 0)
        skip();
    const lp_backend *be = lp_backend_cpu();
    size_t before = thread_count();
    enum { N = 1000 };
    float *x = calloc(N, sizeof *x), *y = calloc(N, sizeof *y);
    int32_t t[10] = {0}, am[25]; /* 10 argmax rows, 5x5 pooled outputs */
    double loss;
    lp_conv2d_geom g = {1, 1, 10, 10, 2, 2, 2, 2, 0, 0};
    assert_int_equal(be->add(be, N, x, y, y, NULL), LP_OK);
    assert_int_equal(be->act_forward(be, LP_ACT_KIND_GELU_ERF, N, x, y, NULL), LP_OK);
    assert_int_equal(be->dropout_forward(be, N, 0.5f, 1, 1, x, y, NULL), LP_OK);
    assert_int_equal(be->softmax_xent(be, 10, 100, x, t, NULL, &loss, y, NULL), LP_OK);
    assert_int_equal(be->sum_rows(be, 10, 100, x, y, NULL), LP_OK);
    assert_int_equal(be->sum_all(be, N, x, y, NULL), LP_OK);
    assert_int_equal(be->argmax_rows(be, 10, 100, x, am, NULL), LP_OK);
    assert_int_equal(be->im2col(be, &g, x, y, NULL), LP_OK);
    assert_int_equal(be->maxpool_forward(be, &g, x, y, am, NULL), LP_OK);
    lp_adamw_opts o = lp_adamw_opts_default();
    assert_int_equal(be->adamw_step(be, N / 4, &o, 1, x, y, x + N / 4, x + N / 2, NULL), LP_OK);
    assert_int_equal(thread_count(), before);
    free(x);
    free(y);
    if (omp_get_max_threads() > 1) {
        size_t big = 4 * LP_BACKEND_OMP_MIN;
        float *bx = calloc(big, sizeof *bx);
        assert_int_equal(be->fill(be, big, 1.0f, bx, NULL), LP_OK);
        assert_true(thread_count() > before);
        free(bx);
    }
}

static void test_get(void **state)
{
    (void)state;
    const lp_backend *be = NULL;
    lp_err err;
    assert_int_equal(lp_backend_get("cpu", &be, &err), LP_OK);
    assert_ptr_equal(be, lp_backend_cpu());
    assert_string_equal(be->name, "cpu");
    assert_int_equal(lp_backend_get("ref", &be, &err), LP_OK);
    assert_string_equal(be->name, "ref");
    assert_int_equal(lp_backend_get("auto", &be, &err), LP_OK);
#ifndef LEPTON_HAVE_CUDA
    assert_ptr_equal(be, lp_backend_cpu());
    assert_int_equal(lp_backend_get("cuda", &be, &err), LP_EUNSUPPORTED);
    assert_null(be);
    assert_non_null(strstr(err.msg, "CUDA"));
#endif
    assert_int_equal(lp_backend_get("tpu", &be, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "'tpu'"));
    assert_int_equal(lp_backend_get(NULL, &be, &err), LP_EINVAL);
}

/* Every member of both tables is set (a missing one would crash model code). */
static void test_tables_complete(void **state)
{
    (void)state;
    for (int t = 0; t < 2; t++) {
        const lp_backend *be = tables[t];
        assert_true(be->host_visible);
        const char *p = (const char *)&be->alloc, *end = (const char *)(be + 1);
        /* the bfloat16 products are optional (backend.h): the cpu table has them, ref not */
        const char *opt0 = (const char *)&be->bf16_pack, *opt1 = (const char *)&be->bf16_free;
        size_t members = 0;
        for (; p + sizeof(void (*)(void)) <= end; p += sizeof(void (*)(void))) {
            void (*fn)(void);
            memcpy(&fn, p, sizeof fn);
            if (p >= opt0 && p <= opt1)
                assert_true(t == 1 ? fn != NULL : fn == NULL);
            else
                assert_non_null(fn);
            members++;
        }
        assert_int_equal(members, 51); /* every function member from alloc on */
    }
}

static void test_argument_errors(void **state)
{
    (void)state;
    float a[16] = {0}, b[16] = {0}, c[16] = {0};
    int32_t t2[2] = {0, 5}, am[4];
    lp_err err;
    for (int i = 0; i < 2; i++) {
        const lp_backend *be = tables[i];
        assert_int_equal(be->sgemm(be, false, false, 2, 2, 3, 1, a, 2, b, 2, 0, c, 2, &err),
                         LP_EINVAL);
        assert_non_null(strstr(err.msg, "lda"));
        assert_int_equal(be->sgemm(be, false, true, 2, 2, 3, 1, a, 3, b, 2, 0, c, 2, &err),
                         LP_EINVAL);
        assert_non_null(strstr(err.msg, "ldb"));
        assert_int_equal(be->add(be, 4, a, NULL, c, &err), LP_EINVAL);
        assert_non_null(strstr(err.msg, "add: y is NULL"));
        assert_int_equal(be->add(be, 0, NULL, NULL, NULL, &err), LP_OK); /* n = 0: nothing */
        assert_int_equal(be->act_forward(be, (lp_act_kind)99, 4, a, c, &err), LP_EINVAL);
        assert_int_equal(be->dropout_forward(be, 4, 1.0f, 1, 1, a, c, &err), LP_EINVAL);
        assert_non_null(strstr(err.msg, "p is 1"));
        assert_int_equal(be->dropout_forward(be, 4, NAN, 1, 1, a, c, &err), LP_EINVAL);
        double loss;
        assert_int_equal(be->softmax_xent(be, 2, 3, a, t2, NULL, &loss, c, &err), LP_EINVAL);
        assert_non_null(strstr(err.msg, "row 1"));
        assert_int_equal(be->softmax_xent(be, 0, 3, a, t2, NULL, &loss, c, &err), LP_EINVAL);
        assert_int_equal(be->mse(be, 0, a, b, &loss, c, &err), LP_EINVAL);
        assert_int_equal(be->argmax_rows(be, 2, 0, a, am, &err), LP_EINVAL);
        lp_adamw_opts ao = lp_adamw_opts_default();
        assert_int_equal(be->adamw_step(be, 4, &ao, 0, a, b, c, c, &err), LP_EINVAL);
        ao.beta2 = 1.0;
        assert_int_equal(be->adamw_step(be, 4, &ao, 1, a, b, c, c, &err), LP_EINVAL);
        assert_non_null(strstr(err.msg, "beta2"));
        lp_sgd_opts so = lp_sgd_opts_default();
        assert_int_equal(be->sgd_step(be, 4, &so, a, b, NULL, &err), LP_EINVAL); /* needs buf */
        so.momentum = 0;
        so.nesterov = true;
        assert_int_equal(be->sgd_step(be, 4, &so, a, b, NULL, &err), LP_EINVAL);
        assert_non_null(strstr(err.msg, "nesterov"));

        lp_conv2d_geom g = {1, 1, 4, 4, 3, 3, 0, 1, 0, 0};
        assert_int_equal(be->im2col(be, &g, a, c, &err), LP_EINVAL);
        assert_non_null(strstr(err.msg, "stride_h"));
        g = (lp_conv2d_geom){1, 1, 2, 2, 5, 5, 1, 1, 1, 1};
        assert_int_equal(be->im2col(be, &g, a, c, &err), LP_EINVAL);
        assert_non_null(strstr(err.msg, "larger than"));
        g = (lp_conv2d_geom){1, 1, 4, 4, 2, 2, 1, 1, 2, 0};
        assert_int_equal(be->maxpool_forward(be, &g, a, c, am, &err), LP_EINVAL);
        assert_non_null(strstr(err.msg, "padding"));
        g = (lp_conv2d_geom){1, 1, 2, 2, 2, 2, 2, 2, 0, 0};
        int32_t bad = 7;
        assert_int_equal(be->maxpool_backward(be, &g, a, &bad, c, &err), LP_EINVAL);
        assert_non_null(strstr(err.msg, "argmax 7"));
    }
}

static void test_nonfinite_losses(void **state)
{
    (void)state;
    lp_err err;
    for (int i = 0; i < 2; i++) {
        const lp_backend *be = tables[i];
        float z[6] = {0.5f, NAN, 1, 2, 3, 4}, y[6] = {0, 1, 0, 1, 0, 1}, g[6];
        int32_t t[2] = {0, 1};
        double loss;
        assert_int_equal(be->softmax_xent(be, 2, 3, z, t, NULL, &loss, g, &err), LP_ENUMERIC);
        assert_non_null(strstr(err.msg, "softmax_xent"));
        assert_int_equal(be->bce_logits(be, 6, z, y, &loss, g, &err), LP_ENUMERIC);
        assert_non_null(strstr(err.msg, "bce_logits"));
        z[1] = INFINITY;
        assert_int_equal(be->mse(be, 6, z, y, &loss, g, &err), LP_ENUMERIC);
        assert_non_null(strstr(err.msg, "mse: loss is Inf"));
        /* all class weights zero: 0 / 0 */
        float w[3] = {0, 0, 0};
        z[1] = 0;
        assert_int_equal(be->softmax_xent(be, 2, 3, z, t, w, &loss, NULL, &err), LP_ENUMERIC);
    }
}

static void test_ties_and_nan(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        const lp_backend *be = tables[i];
        float x[8] = {1, 3, 3, 0, /* row 2 */ 2, NAN, 5, NAN};
        int32_t am[2];
        assert_int_equal(be->argmax_rows(be, 2, 4, x, am, NULL), LP_OK);
        assert_int_equal(am[0], 1); /* first of the ties */
        assert_int_equal(am[1], 1); /* first NaN */
        float m;
        assert_int_equal(be->max_abs(be, 8, x, &m, NULL), LP_OK);
        assert_true(isnan(m));
        assert_int_equal(be->max_abs(be, 4, x, &m, NULL), LP_OK);
        assert_true(m == 3);
        assert_int_equal(be->max_abs(be, 0, x, &m, NULL), LP_OK);
        assert_true(m == 0);
        /* past the threading threshold, with a lone NaN or Inf in the vector tail */
        size_t nb = 3 * LP_BACKEND_OMP_MIN + 5;
        float *big = calloc(nb, sizeof *big);
        assert_non_null(big);
        for (size_t j = 0; j < nb; j++)
            big[j] = (float)(j % 97) - 48.0f;
        assert_int_equal(be->max_abs(be, nb, big, &m, NULL), LP_OK);
        assert_true(m == 48.0f);
        big[nb - 1] = NAN;
        assert_int_equal(be->max_abs(be, nb, big, &m, NULL), LP_OK);
        assert_true(isnan(m));
        big[nb - 1] = -INFINITY;
        assert_int_equal(be->max_abs(be, nb, big, &m, NULL), LP_OK);
        assert_true(isinf(m));
        free(big);
        /* maxpool 2x2 over a 2x2 image of ties: the first (top-left) wins */
        float img[4] = {7, 7, 7, 7}, y;
        lp_conv2d_geom g = {1, 1, 2, 2, 2, 2, 2, 2, 0, 0};
        assert_int_equal(be->maxpool_forward(be, &g, img, &y, am, NULL), LP_OK);
        assert_int_equal(am[0], 0);
        img[2] = NAN;
        assert_int_equal(be->maxpool_forward(be, &g, img, &y, am, NULL), LP_OK);
        assert_true(isnan(y));
        assert_int_equal(am[0], 2);
        /* a padded window: padding never wins even when every real value is negative */
        float neg[4] = {-5, -4, -3, -2};
        lp_conv2d_geom gp = {1, 1, 2, 2, 2, 2, 1, 1, 1, 1};
        float yp[9];
        int32_t ap[9];
        assert_int_equal(be->maxpool_forward(be, &gp, neg, yp, ap, NULL), LP_OK);
        assert_true(yp[0] == -5 && yp[4] == -2 && yp[8] == -2);
        /* sgemm with k = 0 scales C by beta */
        float c[2] = {2, 4};
        assert_int_equal(
            be->sgemm(be, false, false, 1, 2, 0, 1, NULL, 1, NULL, 2, 0.5f, c, 2, NULL), LP_OK);
        assert_true(c[0] == 1 && c[1] == 2);
    }
}

static void test_act_names(void **state)
{
    (void)state;
    for (int k = 0; k < LP_ACT_KIND_COUNT_; k++) {
        lp_act_kind back;
        assert_int_equal(lp_act_kind_parse(lp_act_kind_name((lp_act_kind)k), &back, NULL), LP_OK);
        assert_int_equal(back, k);
    }
    lp_act_kind kk;
    lp_err err;
    assert_int_equal(lp_act_kind_parse("swish", &kk, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "'swish'"));
    assert_null(lp_act_kind_name(LP_ACT_KIND_COUNT_));
    assert_true(lp_act_backward_uses_output(LP_ACT_KIND_TANH));
    assert_false(lp_act_backward_uses_output(LP_ACT_KIND_GELU_ERF));
}

static void test_dbuf_and_layout(void **state)
{
    (void)state;
    lp_err err;
    lp_param_layout *l = lp_param_layout_new();
    assert_non_null(l);
    size_t off;
    size_t s1[2] = {3, 5}, s2[1] = {7}, s3[3] = {2, 2, 2};
    assert_int_equal(lp_param_layout_add(l, "fc1.weight", 2, s1, &off, &err), LP_OK);
    assert_int_equal(off, 0);
    assert_int_equal(lp_param_layout_add(l, "fc1.bias", 1, s2, &off, &err), LP_OK);
    assert_int_equal(off, 16); /* 15 rounded up to LP_PARAM_ALIGN */
    assert_int_equal(lp_param_layout_add(l, "conv", 3, s3, &off, &err), LP_OK);
    assert_int_equal(off, 32);
    assert_int_equal(lp_param_layout_total(l), 48);
    assert_int_equal(lp_param_layout_count(l), 3);
    assert_int_equal(lp_param_layout_add(l, "fc1.bias", 1, s2, NULL, &err), LP_EEXIST);
    size_t z[2] = {3, 0};
    assert_int_equal(lp_param_layout_add(l, "zero", 2, z, NULL, &err), LP_EINVAL);
    assert_int_equal(lp_param_layout_add(l, "five", 5, s1, NULL, &err), LP_EINVAL);
    assert_int_equal(lp_param_layout_add(l, "", 1, s2, NULL, &err), LP_EINVAL);
    const lp_param_view *v = lp_param_layout_find(l, "fc1.bias");
    assert_non_null(v);
    assert_int_equal(v->n, 7);
    assert_int_equal(v->shape[0], 7);
    assert_ptr_equal(lp_param_layout_at(l, 1), v);
    assert_null(lp_param_layout_at(l, 3));
    assert_null(lp_param_layout_find(l, "nope"));

    /* One block per role; a view writes only its own slice. */
    for (int t = 0; t < 2; t++) {
        const lp_backend *be = tables[t];
        lp_dbuf params;
        assert_int_equal(lp_dbuf_alloc(be, lp_param_layout_total(l), &params, &err), LP_OK);
        assert_int_equal(params.n, 48);
        assert_int_equal((uintptr_t)params.ptr % 64, 0);
        assert_int_equal(be->fill(be, v->n, 1.5f, params.ptr + v->offset, &err), LP_OK);
        float host[48];
        assert_int_equal(be->copy_d2h(be, host, params.ptr, sizeof host, &err), LP_OK);
        for (size_t i = 0; i < 48; i++)
            assert_true(host[i] == (i >= 16 && i < 23 ? 1.5f : 0.0f)); /* alloc zero-fills */
        lp_dbuf_free(be, &params);
        assert_null(params.ptr);
        lp_dbuf_free(be, &params); /* no-op */
        /* d2d copy and byte memset on device memory */
        lp_dbuf a, b;
        assert_int_equal(lp_dbuf_alloc(be, 5, &a, &err), LP_OK);
        assert_int_equal(lp_dbuf_alloc(be, 5, &b, &err), LP_OK);
        assert_int_equal(be->fill(be, 5, -2.0f, a.ptr, &err), LP_OK);
        assert_int_equal(be->memset(be, a.ptr + 1, 0, 2 * sizeof(float), &err), LP_OK);
        assert_int_equal(be->copy_d2d(be, b.ptr, a.ptr, 5 * sizeof(float), &err), LP_OK);
        float hb[5];
        assert_int_equal(be->copy_d2h(be, hb, b.ptr, sizeof hb, &err), LP_OK);
        assert_true(hb[0] == -2 && hb[1] == 0 && hb[2] == 0 && hb[3] == -2 && hb[4] == -2);
        lp_dbuf_free(be, &a);
        lp_dbuf_free(be, &b);
        assert_int_equal(lp_dbuf_alloc(be, SIZE_MAX / 2, &a, &err), LP_ETOOBIG);
        assert_null(a.ptr);
        void *p0 = NULL;
        assert_int_equal(be->alloc(be, 0, &p0, &err), LP_OK);
        assert_non_null(p0);
        assert_int_equal(be->free(be, p0, &err), LP_OK);
        assert_int_equal(be->free(be, NULL, &err), LP_OK);
    }
    lp_param_layout_free(l);
    lp_param_layout_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_threads_on_small_inputs), /* first: a fresh process */
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_tables_complete),
        cmocka_unit_test(test_argument_errors),
        cmocka_unit_test(test_nonfinite_losses),
        cmocka_unit_test(test_ties_and_nan),
        cmocka_unit_test(test_act_names),
        cmocka_unit_test(test_dbuf_and_layout),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
