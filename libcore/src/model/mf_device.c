/*
 * mf_device.c - ALS and BPR of the mf family through a kernel table (backend.h), so that
 * `device = "cuda"` trains the recommender on the GPU: the factors, the interaction CSRs and
 * G = F^T F live in the table's memory for the whole fit, and each half-step / epoch is one or
 * two table calls (sgemm for G, als_solve for every row's normal equations; bpr_epoch for a
 * whole epoch of sampled triples). The host sees data only to start, to report the objective
 * when a callback asks for it, and to copy the fitted factors back.
 *
 * Initial factors come from the same seeded lp_rng draws as mf.c's CPU solvers, so ALS on a
 * table gives the CPU solver's model up to float rounding (G by sgemm in float instead of a
 * double Gram; exact Cholesky solves always). BPR draws its triples by Philox counters on the
 * table (backend.h: bpr_epoch), which the CPU solver's lp_rng stream does not reproduce: the
 * two BPR models are different samples of the same procedure.
 *
 * Not thread-safe on one lp_mf (fit fills it); separate fits may run in parallel.
 */
#include "model/mf_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        st = (expr);                                                                               \
        if (st != LP_OK)                                                                           \
            goto done;                                                                             \
    } while (0)

lp_status mf_table_for(const char *device, const lp_backend **be, lp_err *err)
{
    *be = NULL;
    if (!device || strcmp(device, "cpu") == 0)
        return LP_OK;
    const lp_backend *t = NULL;
    lp_status st = lp_backend_get(device, &t, err);
    if (st)
        return lp_err_prefix(err, "mf fit: device");
    if (strcmp(device, "auto") == 0) {
        lp_log_info("mf fit: device auto: training on %s", t->name);
        if (strcmp(t->name, "cpu") == 0)
            return LP_OK;
    }
    if (!t->als_solve || !t->bpr_epoch)
        return lp_err_set(err, LP_EUNSUPPORTED, "mf fit: the %s table has no als_solve/bpr_epoch",
                          t->name);
    *be = t;
    return LP_OK;
}

/* A device copy of n host bytes into *dst (allocated on be). */
static lp_status up(const lp_backend *be, void **dst, const void *src, size_t nbytes, lp_err *err)
{
    lp_status st = be->alloc(be, nbytes, dst, err);
    if (!st && nbytes)
        st = be->copy_h2d(be, *dst, src, nbytes, err);
    return st;
}

static lp_status down(const lp_backend *be, void *dst, const void *src, size_t nbytes, lp_err *err)
{
    lp_status st = be->sync(be, err);
    if (!st && nbytes)
        st = be->copy_d2h(be, dst, src, nbytes, err);
    return st;
}

/* The CSR arrays of one side on the table. */
typedef struct dev_csr {
    int32_t *ptr, *col;
    float *w;
} dev_csr;

static lp_status csr_up(const lp_backend *be, const mf_csr *c, dev_csr *d, lp_err *err)
{
    lp_status st = up(be, (void **)&d->ptr, c->ptr, (c->n_rows + 1) * sizeof(int32_t), err);
    if (!st)
        st = up(be, (void **)&d->col, c->col, c->nnz * sizeof(int32_t), err);
    if (!st)
        st = up(be, (void **)&d->w, c->w, c->nnz * sizeof(float), err);
    return st;
}

static void csr_free(const lp_backend *be, dev_csr *d)
{
    be->free(be, d->ptr, NULL);
    be->free(be, d->col, NULL);
    be->free(be, d->w, NULL);
}

/* One half-step: G (k, k) = F^T F of the fixed side f (n_f, k), then every row of `side`. */
static lp_status half(const lp_backend *be, const dev_csr *c, size_t n_rows, size_t nnz,
                      const float *f, size_t n_f, float *side, float *g, size_t k,
                      const lp_mf_opts *o, const char *what, lp_err *err)
{
    lp_status st = be->sgemm(be, true, false, k, k, n_f, 1.0f, f, k, f, k, 0.0f, g, k, err);
    if (!st)
        st = be->als_solve(be, n_rows, n_f, k, nnz, c->ptr, c->col, c->w, f, g, o->regularization,
                           o->alpha, side, err);
    if (st)
        lp_err_prefix(err, "ALS %s half-step", what);
    return st;
}

lp_status mf_fit_als_table(lp_mf *m, const lp_backend *be, int nt, lp_mf_iter_fn cb, void *cb_user,
                           lp_err *err)
{
    size_t k = m->dim, nu = m->n_users, ni = m->n_items, nnz = m->hist.nnz;
    mf_csr by_item;
    lp_status st = mf_csr_transpose(&m->hist, ni, &by_item, err);
    if (st)
        return st;
    dev_csr du = {0}, di = {0};
    float *x = NULL, *y = NULL, *g = NULL;
    double *gh = lp_mallocarray(k * k, sizeof(double)); /* objective scratch */
    if (!gh) {
        mf_csr_free(&by_item);
        return lp_err_set(err, LP_ENOMEM, "ALS: out of memory");
    }
    lp_rng rng;
    lp_rng_seed(&rng, m->opts.seed);
    double scale = m->opts.init_scale / sqrt((double)k);
    mf_init_factors(m->xu, nu, k, scale, &rng);
    mf_init_factors(m->yi, ni, k, scale, &rng);
    TRY(csr_up(be, &m->hist, &du, err));
    TRY(csr_up(be, &by_item, &di, err));
    TRY(up(be, (void **)&x, m->xu, nu * k * sizeof(float), err));
    TRY(up(be, (void **)&y, m->yi, ni * k * sizeof(float), err));
    TRY(be->alloc(be, k * k * sizeof(float), (void **)&g, err));
    for (size_t it = 1; it <= m->opts.iterations; it++) {
        st = half(be, &di, ni, nnz, x, nu, y, g, k, &m->opts, "item", err);
        if (!st)
            st = half(be, &du, nu, nnz, y, ni, x, g, k, &m->opts, "user", err);
        if (st) {
            lp_err_prefix(err, "iteration %zu", it);
            goto done;
        }
        if (cb) {
            TRY(down(be, m->xu, x, nu * k * sizeof(float), err));
            TRY(down(be, m->yi, y, ni * k * sizeof(float), err));
            cb(it, mf_als_objective(m, m->xu, m->yi, gh, nt), cb_user);
        }
    }
    TRY(down(be, m->xu, x, nu * k * sizeof(float), err));
    TRY(down(be, m->yi, y, ni * k * sizeof(float), err));
done:
    csr_free(be, &du);
    csr_free(be, &di);
    be->free(be, x, NULL);
    be->free(be, y, NULL);
    be->free(be, g, NULL);
    free(gh);
    mf_csr_free(&by_item);
    return st;
}

lp_status mf_fit_bpr_table(lp_mf *m, const lp_backend *be, bool deterministic, lp_mf_iter_fn cb,
                           void *cb_user, lp_err *err)
{
    size_t k = m->dim, kf = k - 1, nu = m->n_users, ni = m->n_items, nnz = m->hist.nnz;
    int32_t *row_of = lp_mallocarray(nnz ? nnz : 1, sizeof *row_of);
    if (!row_of)
        return lp_err_set(err, LP_ENOMEM, "BPR: out of memory");
    for (size_t u = 0; u < nu; u++)
        for (int32_t p = m->hist.ptr[u]; p < m->hist.ptr[u + 1]; p++)
            row_of[p] = (int32_t)u;
    /* the CPU solver's initialisation (mf.c fit_bpr) */
    lp_rng rng;
    lp_rng_seed(&rng, m->opts.seed);
    double scale = 0.1 * m->opts.init_scale / sqrt((double)kf);
    mf_init_factors(m->xu, nu, k, scale, &rng);
    mf_init_factors(m->yi, ni, k, scale, &rng);
    for (size_t u = 0; u < nu; u++)
        m->xu[u * k + kf] = 1.0f;
    for (size_t i = 0; i < ni; i++)
        m->yi[i * k + kf] = 0.0f;
    int32_t *dptr = NULL, *dcol = NULL, *drow = NULL;
    float *x = NULL, *y = NULL, *mx = NULL;
    lp_status st;
    TRY(up(be, (void **)&dptr, m->hist.ptr, (nu + 1) * sizeof(int32_t), err));
    TRY(up(be, (void **)&dcol, m->hist.col, nnz * sizeof(int32_t), err));
    TRY(up(be, (void **)&drow, row_of, nnz * sizeof(int32_t), err));
    TRY(up(be, (void **)&x, m->xu, nu * k * sizeof(float), err));
    TRY(up(be, (void **)&y, m->yi, ni * k * sizeof(float), err));
    TRY(be->alloc(be, sizeof(float), (void **)&mx, err));
    size_t batch = deterministic ? LP_MF_BPR_BATCH : 0;
    for (size_t ep = 1; ep <= m->opts.iterations; ep++) {
        double loss = 0;
        size_t used = 0;
        float big = 0;
        TRY(be->bpr_epoch(be, nu, ni, k, nnz, dptr, dcol, drow, m->opts.seed, ep, nnz,
                          m->opts.learning_rate, m->opts.regularization, batch, x, y, &loss, &used,
                          err));
        /* one float back per epoch: the largest |item factor| (NaN when any is NaN) */
        TRY(be->max_abs(be, ni * k, y, mx, err));
        TRY(down(be, &big, mx, sizeof big, err));
        if (!isfinite(big)) {
            st = lp_err_set(err, LP_ENUMERIC,
                            "BPR epoch %zu on %s: an item factor is not finite (lower the "
                            "learning rate)",
                            ep, be->name);
            goto done;
        }
        if (cb)
            cb(ep, used ? loss / (double)used : 0, cb_user);
    }
    TRY(down(be, m->xu, x, nu * k * sizeof(float), err));
    TRY(down(be, m->yi, y, ni * k * sizeof(float), err));
done:
    be->free(be, dptr, NULL);
    be->free(be, dcol, NULL);
    be->free(be, drow, NULL);
    be->free(be, x, NULL);
    be->free(be, y, NULL);
    be->free(be, mx, NULL);
    free(row_of);
    return st;
}
