/*
 * test_backend_grad.c - finite-difference gradient checks of every backward op in the backend
 * tables (ref and cpu): activations, the three losses, bias, dropout with a fixed mask, max
 * and average pooling; and the adjoint identity <im2col(x), y> == <x, col2im(y)>.
 *
 * Method: a scalar objective F(x) = sum_j w_j out_j(x) (w random, fixed) computed from the op
 * in float and summed in double; the analytic gradient is the backward op applied to w. Each
 * input is moved by +-h and the central difference (F(x+) - F(x-)) / (x+_i - x-_i) uses the
 * float-rounded step actually taken. Only the perturbed element's outputs change between the
 * two evaluations (the op is deterministic), so the float noise is about
 * eps |out| / h ~ 6e-8 * 4 / 1e-2 ~ 3e-5, and the truncation error h^2 |f'''| / 6 ~ 3e-5:
 * TOL_FD_ATOL = 5e-4 sits above both and far below a wrong derivative (a missing factor, the
 * other GELU form, a sign) which is off by 1e-2 or more.
 */
#include "backend_util.h"

#define FD_H 1e-2
#define TOL_FD_ATOL 5e-4
#define TOL_FD_RTOL 2e-3
/* The adjoint identity only reorders float sums of <= kh*kw terms (each in double here). */
#define TOL_ADJOINT_RTOL 1e-6

typedef double (*objective)(const lp_backend *be, const float *x, size_t n, void *ctx);

/* The central-difference gradient of obj at x (n floats) into fd (n doubles). */
static void fd_grad(const lp_backend *be, objective obj, void *ctx, const float *x, size_t n,
                    double h, double *fd)
{
    float *xp = malloc(n * sizeof *xp);
    assert_non_null(xp);
    memcpy(xp, x, n * sizeof *xp);
    for (size_t i = 0; i < n; i++) {
        float hi = (float)(x[i] + h), lo = (float)(x[i] - h);
        xp[i] = hi;
        double fp = obj(be, xp, n, ctx);
        xp[i] = lo;
        double fm = obj(be, xp, n, ctx);
        xp[i] = x[i];
        fd[i] = (fp - fm) / ((double)hi - (double)lo);
    }
    free(xp);
}

static void check_grad(const lp_backend *be, objective obj, void *ctx, const float *x, size_t n,
                       const float *analytic, const char *what)
{
    double *fd = malloc(n * sizeof *fd), *an = malloc(n * sizeof *an);
    assert_non_null(fd);
    assert_non_null(an);
    fd_grad(be, obj, ctx, x, n, FD_H, fd);
    for (size_t i = 0; i < n; i++)
        an[i] = analytic[i];
    char label[96];
    snprintf(label, sizeof label, "%s [%s]", what, be->name);
    lp_assert_close(an, fd, n, TOL_FD_ATOL, TOL_FD_RTOL, label);
    free(fd);
    free(an);
}

static double dot_dev(const lp_backend *be, const float *dev, const float *w, size_t n)
{
    float *h = bu_downf(be, dev, n);
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += (double)w[i] * h[i];
    free(h);
    return s;
}

/* The second table checked; tests/gpu/test_cuda_grad.c includes this file with the CUDA
 * table here. */
#ifndef LP_GRAD_TABLE
#define LP_GRAD_TABLE lp_backend_cpu()
#endif

static const lp_backend *tables[2];

static int setup(void **state)
{
    (void)state;
    tables[0] = lp_backend_ref();
    tables[1] = LP_GRAD_TABLE;
    return 0;
}

/* ---- activations ------------------------------------------------------------------------- */

struct act_ctx {
    lp_act_kind kind;
    const float *w;
};

static double act_obj(const lp_backend *be, const float *x, size_t n, void *vctx)
{
    struct act_ctx *c = vctx;
    float *dx = bu_upf(be, x, n), *y = bu_upf(be, x, n);
    assert_int_equal(be->act_forward(be, c->kind, n, dx, y, NULL), LP_OK);
    double s = dot_dev(be, y, c->w, n);
    bu_free(be, dx);
    bu_free(be, y);
    return s;
}

static void test_activation_grads(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 31);
    size_t n = 64;
    float *x = bu_rand(&rng, n, -4, 4), *w = bu_rand(&rng, n, -1, 1);
    for (size_t i = 0; i < n; i++)
        if (fabsf(x[i]) < 0.05f) /* keep relu's kink out of the +-h window */
            x[i] = 0.5f;
    for (int t = 0; t < 2; t++) {
        const lp_backend *be = tables[t];
        for (int k = 0; k < LP_ACT_KIND_COUNT_; k++) {
            struct act_ctx c = {(lp_act_kind)k, w};
            float *dx = bu_upf(be, x, n), *y = bu_upf(be, x, n), *dw = bu_upf(be, w, n);
            float *g = bu_upf(be, x, n);
            lp_err err;
            assert_int_equal(be->act_forward(be, c.kind, n, dx, y, &err), LP_OK);
            const float *fwd = lp_act_backward_uses_output(c.kind) ? y : dx;
            assert_int_equal(be->act_backward(be, c.kind, n, fwd, dw, g, &err), LP_OK);
            float *gh = bu_downf(be, g, n);
            check_grad(be, act_obj, &c, x, n, gh, lp_act_kind_name(c.kind));
            free(gh);
            bu_free(be, dx);
            bu_free(be, y);
            bu_free(be, dw);
            bu_free(be, g);
        }
    }
    free(x);
    free(w);
}

/* The two GELU forms differ (by up to ~5e-4 in value): the exact one is PyTorch's default. */
static void test_gelu_forms(void **state)
{
    (void)state;
    const lp_backend *be = lp_backend_ref();
    float x[3] = {-1.5f, 0.7f, 2.0f}, ye[3], yt[3];
    assert_int_equal(be->act_forward(be, LP_ACT_KIND_GELU_ERF, 3, x, ye, NULL), LP_OK);
    assert_int_equal(be->act_forward(be, LP_ACT_KIND_GELU_TANH, 3, x, yt, NULL), LP_OK);
    /* torch.nn.functional.gelu(torch.tensor(0.7)) = 0.5302..., x Phi(x) with Phi(0.7) =
     * 0.758036... */
    assert_true(fabs(ye[1] - 0.7 * 0.7580363478) < 1e-6);
    assert_true(fabs(ye[2] - 2.0 * 0.9772498681) < 1e-6);
    assert_true(fabsf(ye[0] - yt[0]) > 1e-5f);
}

/* ---- losses ------------------------------------------------------------------------------ */

struct loss_ctx {
    int which; /* 0 xent, 1 weighted xent, 2 bce, 3 mse */
    size_t n, c;
    const int32_t *t;
    const float *cw, *y;
};

static double loss_eval(const lp_backend *be, const float *z, struct loss_ctx *c, float *grad)
{
    size_t nz = c->n * c->c;
    float *dz = bu_upf(be, z, nz), *dg = grad ? bu_upf(be, z, nz) : NULL;
    int32_t *dt = bu_up(be, c->t, c->n * sizeof(int32_t));
    float *dcw = bu_upf(be, c->cw, c->c), *dy = bu_upf(be, c->y, nz);
    double loss = NAN;
    lp_err err;
    lp_status st;
    if (c->which < 2)
        st = be->softmax_xent(be, c->n, c->c, dz, dt, c->which ? dcw : NULL, &loss, dg, &err);
    else if (c->which == 2)
        st = be->bce_logits(be, nz, dz, dy, &loss, dg, &err);
    else
        st = be->mse(be, nz, dz, dy, &loss, dg, &err);
    assert_int_equal(st, LP_OK);
    if (grad) {
        float *h = bu_downf(be, dg, nz);
        memcpy(grad, h, nz * sizeof *grad);
        free(h);
        bu_free(be, dg);
    }
    bu_free(be, dz);
    bu_free(be, dt);
    bu_free(be, dcw);
    bu_free(be, dy);
    return loss;
}

static double loss_obj(const lp_backend *be, const float *z, size_t n, void *ctx)
{
    return loss_eval(be, z, ctx, NULL);
}

static void test_loss_grads(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 32);
    size_t n = 6, c = 5, nz = n * c;
    float *z = bu_rand(&rng, nz, -3, 3), *cw = bu_rand(&rng, c, 0.2, 2),
          *y = bu_rand(&rng, nz, 0, 1);
    int32_t t[6];
    for (size_t i = 0; i < n; i++)
        t[i] = (int32_t)lp_rng_below(&rng, c);
    const char *names[4] = {"softmax_xent", "softmax_xent weighted", "bce_logits", "mse"};
    float g[30];
    for (int b = 0; b < 2; b++)
        for (int k = 0; k < 4; k++) {
            struct loss_ctx ctx = {k, n, c, t, cw, y};
            loss_eval(tables[b], z, &ctx, g);
            check_grad(tables[b], loss_obj, &ctx, z, nz, g, names[k]);
        }
    free(z);
    free(cw);
    free(y);
}

/* Known values: uniform logits give log(c); a huge logit does not overflow. */
static void test_loss_values(void **state)
{
    (void)state;
    for (int b = 0; b < 2; b++) {
        const lp_backend *be = tables[b];
        float z[8] = {0, 0, 0, 0, 1000, 0, -1000, 0};
        int32_t t[2] = {2, 0};
        double loss;
        assert_int_equal(be->softmax_xent(be, 1, 4, z, t, NULL, &loss, NULL, NULL), LP_OK);
        assert_true(fabs(loss - log(4.0)) < 1e-6);
        assert_int_equal(be->softmax_xent(be, 2, 4, z, t, NULL, &loss, NULL, NULL), LP_OK);
        assert_true(fabs(loss - 0.5 * log(4.0)) < 1e-5); /* row 2 is certain and right */
        float bz[2] = {80, -80}, by[2] = {0, 1};
        assert_int_equal(be->bce_logits(be, 2, bz, by, &loss, NULL, NULL), LP_OK);
        assert_true(fabs(loss - 80.0) < 1e-4); /* exp(80) would overflow a float */
    }
}

/* ---- bias -------------------------------------------------------------------------------- */

struct bias_ctx {
    size_t n, d;
    const float *y0, *w;
};

static double bias_obj(const lp_backend *be, const float *b, size_t d, void *vctx)
{
    struct bias_ctx *c = vctx;
    float *dy = bu_upf(be, c->y0, c->n * d), *db = bu_upf(be, b, d);
    assert_int_equal(be->bias_add(be, c->n, d, db, dy, NULL), LP_OK);
    double s = dot_dev(be, dy, c->w, c->n * d);
    bu_free(be, dy);
    bu_free(be, db);
    return s;
}

static void test_bias_grad(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 33);
    size_t n = 7, d = 5;
    float *y0 = bu_rand(&rng, n * d, -1, 1), *w = bu_rand(&rng, n * d, -1, 1);
    float *b = bu_rand(&rng, d, -1, 1);
    for (int t = 0; t < 2; t++) {
        const lp_backend *be = tables[t];
        lp_dbuf db;
        assert_int_equal(lp_dbuf_alloc(be, d, &db, NULL), LP_OK);
        float *dw = bu_upf(be, w, n * d);
        assert_int_equal(be->bias_backward(be, n, d, dw, db.ptr, NULL), LP_OK);
        float *g = bu_downf(be, db.ptr, d);
        struct bias_ctx c = {n, d, y0, w};
        check_grad(be, bias_obj, &c, b, d, g, "bias");
        free(g);
        bu_free(be, dw);
        lp_dbuf_free(be, &db);
    }
    free(y0);
    free(w);
    free(b);
}

/* ---- dropout (mask fixed by seed and step) ---------------------------------------------- */

struct drop_ctx {
    float p;
    const float *w;
};

static double drop_obj(const lp_backend *be, const float *x, size_t n, void *vctx)
{
    struct drop_ctx *c = vctx;
    float *dx = bu_upf(be, x, n), *y = bu_upf(be, x, n);
    assert_int_equal(be->dropout_forward(be, n, c->p, 99, 3, dx, y, NULL), LP_OK);
    double s = dot_dev(be, y, c->w, n);
    bu_free(be, dx);
    bu_free(be, y);
    return s;
}

static void test_dropout_grad(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 34);
    size_t n = 50;
    float *x = bu_rand(&rng, n, -2, 2), *w = bu_rand(&rng, n, -1, 1);
    for (int t = 0; t < 2; t++) {
        const lp_backend *be = tables[t];
        struct drop_ctx c = {0.4f, w};
        float *dw = bu_upf(be, w, n), *g = bu_upf(be, w, n);
        assert_int_equal(be->dropout_backward(be, n, c.p, 99, 3, dw, g, NULL), LP_OK);
        float *gh = bu_downf(be, g, n);
        size_t zeros = 0;
        for (size_t i = 0; i < n; i++)
            zeros += gh[i] == 0;
        assert_true(zeros > 5 && zeros < 45); /* the mask really drops some and keeps some */
        check_grad(be, drop_obj, &c, x, n, gh, "dropout");
        free(gh);
        bu_free(be, dw);
        bu_free(be, g);
    }
    free(x);
    free(w);
}

/* ---- pooling ----------------------------------------------------------------------------- */

struct pool_ctx {
    const lp_conv2d_geom *g;
    bool max;
    const float *w;
    size_t ny;
};

static double pool_obj(const lp_backend *be, const float *x, size_t nx, void *vctx)
{
    struct pool_ctx *c = vctx;
    float *dx = bu_upf(be, x, nx), *y = bu_upf(be, c->w, c->ny);
    int32_t *am = bu_up(be, c->w, c->ny * sizeof(int32_t));
    if (c->max)
        assert_int_equal(be->maxpool_forward(be, c->g, dx, y, am, NULL), LP_OK);
    else
        assert_int_equal(be->avgpool_forward(be, c->g, dx, y, NULL), LP_OK);
    double s = dot_dev(be, y, c->w, c->ny);
    bu_free(be, dx);
    bu_free(be, y);
    bu_free(be, am);
    return s;
}

static void test_pool_grads(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 35);
    const lp_conv2d_geom geoms[] = {
        {1, 2, 5, 6, 2, 2, 2, 2, 0, 0}, /* plain 2x2 / 2 */
        {2, 1, 5, 5, 3, 3, 2, 2, 1, 1}, /* padded, overlapping windows */
        {1, 1, 4, 7, 3, 2, 1, 3, 1, 1},
    };
    for (size_t s = 0; s < 3; s++) {
        const lp_conv2d_geom *g = &geoms[s];
        size_t oh, ow;
        assert_int_equal(lp_conv2d_geom_check(g, "pool", &oh, &ow, NULL), LP_OK);
        size_t nx = g->n * g->c * g->h * g->w, ny = g->n * g->c * oh * ow;
        /* Distinct values 0.1 apart (a shuffled grid): a +-h step never changes a window's max. */
        size_t *perm = malloc(nx * sizeof *perm);
        float *x = malloc(nx * sizeof *x);
        for (size_t i = 0; i < nx; i++)
            perm[i] = i;
        lp_rng_shuffle_idx(&rng, perm, nx);
        for (size_t i = 0; i < nx; i++)
            x[i] = 0.1f * (float)perm[i] - 2.0f;
        float *w = bu_rand(&rng, ny, -1, 1);
        for (int t = 0; t < 2; t++) {
            const lp_backend *be = tables[t];
            for (int mx = 0; mx < 2; mx++) {
                float *dx = bu_upf(be, x, nx), *y = bu_upf(be, w, ny), *dw = bu_upf(be, w, ny);
                float *gx = bu_upf(be, x, nx);
                int32_t *am = bu_up(be, w, ny * sizeof(int32_t));
                if (mx) {
                    assert_int_equal(be->maxpool_forward(be, g, dx, y, am, NULL), LP_OK);
                    assert_int_equal(be->maxpool_backward(be, g, dw, am, gx, NULL), LP_OK);
                } else {
                    assert_int_equal(be->avgpool_forward(be, g, dx, y, NULL), LP_OK);
                    assert_int_equal(be->avgpool_backward(be, g, dw, gx, NULL), LP_OK);
                }
                float *gh = bu_downf(be, gx, nx);
                struct pool_ctx c = {g, mx != 0, w, ny};
                check_grad(be, pool_obj, &c, x, nx, gh, mx ? "maxpool" : "avgpool");
                free(gh);
                bu_free(be, dx);
                bu_free(be, y);
                bu_free(be, dw);
                bu_free(be, gx);
                bu_free(be, am);
            }
        }
        free(perm);
        free(x);
        free(w);
    }
}

/* ---- im2col / col2im adjoint ------------------------------------------------------------- */

static void test_im2col_adjoint(void **state)
{
    (void)state;
    lp_rng rng;
    lp_rng_seed(&rng, 36);
    const lp_conv2d_geom geoms[] = {
        {1, 1, 3, 3, 3, 3, 1, 1, 1, 1},
        {2, 3, 7, 6, 3, 2, 2, 1, 1, 0},
        {1, 2, 9, 11, 5, 5, 3, 2, 2, 4},
        {3, 2, 4, 4, 1, 1, 1, 1, 0, 0},
    };
    for (size_t s = 0; s < 4; s++) {
        const lp_conv2d_geom *g = &geoms[s];
        size_t oh, ow;
        assert_int_equal(lp_conv2d_geom_check(g, "conv", &oh, &ow, NULL), LP_OK);
        size_t nx = g->n * g->c * g->h * g->w, ncol = g->n * g->c * g->kh * g->kw * oh * ow;
        float *x = bu_rand(&rng, nx, -1, 1), *y = bu_rand(&rng, ncol, -1, 1);
        for (int t = 0; t < 2; t++) {
            const lp_backend *be = tables[t];
            float *dx = bu_upf(be, x, nx), *dy = bu_upf(be, y, ncol);
            float *col = bu_upf(be, y, ncol), *back = bu_upf(be, x, nx);
            assert_int_equal(be->im2col(be, g, dx, col, NULL), LP_OK);
            assert_int_equal(be->col2im(be, g, dy, back, NULL), LP_OK);
            double lhs = dot_dev(be, col, y, ncol), rhs = dot_dev(be, back, x, nx);
            if (fabs(lhs - rhs) > TOL_ADJOINT_RTOL * (fabs(lhs) + 1.0))
                fail_msg("im2col adjoint [%s] geom %zu: <im2col x, y> = %.9g, <x, col2im y> = %.9g",
                         be->name, s, lhs, rhs);
            bu_free(be, dx);
            bu_free(be, dy);
            bu_free(be, col);
            bu_free(be, back);
        }
        free(x);
        free(y);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_activation_grads), cmocka_unit_test(test_gelu_forms),
        cmocka_unit_test(test_loss_grads),       cmocka_unit_test(test_loss_values),
        cmocka_unit_test(test_bias_grad),        cmocka_unit_test(test_dropout_grad),
        cmocka_unit_test(test_pool_grads),       cmocka_unit_test(test_im2col_adjoint),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
