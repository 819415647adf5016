/*
 * mf.c - fitting the mf family: options, ALS (Cholesky or conjugate gradient), BPR, item-kNN,
 * popularity, fold-in, and the model's accessors.
 *
 * ALS iteration order: items given users, then users given items, so the final user factors
 * are an exact (Cholesky) solve against the final item factors and folding a training user's
 * history back in reproduces their vector. Every row solve reads only the other side's factors
 * and writes only its own row, so ALS gives the same model for any thread count. BPR is
 * sequential SGD (one seeded stream), hence reproducible too. Nothing here serves requests.
 */
#include "model/mf_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>


static const char *const kind_names[] = {"als", "bpr", "itemknn", "popular"};
static const char *const weight_names[] = {"none", "log1p", "auto"};

/* The index of s in names (n), or -1. */
static int name_index(const char *const *names, int n, const char *s)
{
    for (int k = 0; s && k < n; k++)
        if (strcmp(s, names[k]) == 0)
            return k;
    return -1;
}

const char *lp_mf_kind_name(lp_mf_kind k)
{
    return (unsigned)k < 4 ? kind_names[k] : "unknown";
}

lp_status lp_mf_kind_parse(const char *s, lp_mf_kind *out, lp_err *err)
{
    int k = name_index(kind_names, 4, s);
    if (k >= 0) {
        *out = (lp_mf_kind)k;
        return LP_OK;
    }
    return lp_err_set(err, LP_EINVAL, "model kind '%.64s' is not one of als, bpr, itemknn, popular",
                      s ? s : "(null)");
}

const char *lp_mf_weight_name(lp_mf_weight t)
{
    return (unsigned)t < 3 ? weight_names[t] : "unknown";
}

lp_status lp_mf_weight_parse(const char *s, lp_mf_weight *out, lp_err *err)
{
    int t = name_index(weight_names, 3, s);
    if (t >= 0) {
        *out = (lp_mf_weight)t;
        return LP_OK;
    }
    return lp_err_set(err, LP_EINVAL, "weight transform '%.64s' is not one of none, log1p, auto",
                      s ? s : "(null)");
}

float *mf_tw_copy(lp_mf_weight t, const float *w, size_t n)
{
    float *c = lp_mallocarray(n ? n : 1, sizeof *c);
    if (c)
        for (size_t p = 0; p < n; p++) c[p] = mf_tw(t, w[p]);
    return c;
}

lp_mf_opts lp_mf_opts_default(void)
{
    lp_mf_opts o;
    memset(&o, 0, sizeof o);
    o.kind = LP_MF_KIND_ALS;
    o.factors = 64;
    o.iterations = 15;
    o.regularization = 0.05f;
    o.alpha = 1.0f;
    o.solver = LP_MF_SOLVER_CHOLESKY;
    o.cg_steps = 3;
    o.learning_rate = 0.05f;
    o.neighbors = 100;
    o.shrinkage = 10.0f;
    o.weight_transform = LP_MF_WEIGHT_AUTO;
    o.init_scale = 1.0f;
    o.seed = 42;
    return o;
}

lp_status lp_mf_opts_check(const lp_mf_opts *o, lp_err *err)
{
    if (!o) return lp_err_set(err, LP_EINVAL, "opts: NULL");
    if ((unsigned)o->kind > LP_MF_KIND_POPULAR)
        return lp_err_set(err, LP_EINVAL, "opts.kind: %d is not a model kind", (int)o->kind);
    if (o->factors < 1 || o->factors > 1024)
        return lp_err_set(err, LP_EINVAL, "opts.factors: %zu is not in 1..1024", o->factors);
    if (o->iterations < 1 || o->iterations > 10000)
        return lp_err_set(err, LP_EINVAL, "opts.iterations: %zu is not in 1..10000",
                          o->iterations);
    if (!isfinite(o->regularization) || o->regularization < 0)
        return lp_err_set(err, LP_EINVAL, "opts.regularization: %g is not >= 0",
                          o->regularization);
    if (!isfinite(o->alpha) || o->alpha < 0)
        return lp_err_set(err, LP_EINVAL, "opts.alpha: %g is not >= 0", o->alpha);
    if ((unsigned)o->solver > LP_MF_SOLVER_CG)
        return lp_err_set(err, LP_EINVAL, "opts.solver: %d is not a solver", (int)o->solver);
    if (o->cg_steps < 1 || o->cg_steps > 64)
        return lp_err_set(err, LP_EINVAL, "opts.cg_steps: %zu is not in 1..64", o->cg_steps);
    if (!isfinite(o->learning_rate) || o->learning_rate <= 0 || o->learning_rate > 10)
        return lp_err_set(err, LP_EINVAL, "opts.learning_rate: %g is not in (0, 10]",
                          o->learning_rate);
    if (o->neighbors < 1 || o->neighbors > 100000)
        return lp_err_set(err, LP_EINVAL, "opts.neighbors: %zu is not in 1..100000",
                          o->neighbors);
    if (!isfinite(o->shrinkage) || o->shrinkage < 0)
        return lp_err_set(err, LP_EINVAL, "opts.shrinkage: %g is not >= 0", o->shrinkage);
    if ((unsigned)o->weight_transform > LP_MF_WEIGHT_AUTO)
        return lp_err_set(err, LP_EINVAL, "opts.weight_transform: %d is not a transform",
                          (int)o->weight_transform);
    if (!isfinite(o->init_scale) || o->init_scale <= 0 || o->init_scale > 100)
        return lp_err_set(err, LP_EINVAL, "opts.init_scale: %g is not in (0, 100]",
                          o->init_scale);
    if (o->threads < 0 || o->threads > 1024)
        return lp_err_set(err, LP_EINVAL, "opts.threads: %d is not in 0..1024", o->threads);
    if (o->device && strcmp(o->device, "cpu") && strcmp(o->device, "cuda") &&
        strcmp(o->device, "auto") && strcmp(o->device, "ref"))
        return lp_err_set(err, LP_EINVAL, "opts.device: '%s' is not cpu, cuda, auto or ref",
                          o->device);
    return LP_OK;
}

/* ---- dense helpers ------------------------------------------------------------------------*/

MF_CLONES
bool mf_chol_upper(double *u, size_t k)
{
    double *rd = u + k * k;
    for (size_t j = 0; j < k; j++) { /* right-looking: every update is a contiguous row axpy */
        double *uj = u + j * k, d = uj[j];
        if (!(d > 0) || !isfinite(d)) return false;
        d = sqrt(d);
        uj[j] = d;
        double inv = 1.0 / d;
        rd[j] = inv;
MF_SIMD
        for (size_t c = j + 1; c < k; c++) uj[c] *= inv;
        for (size_t i = j + 1; i < k; i++) {
            double f = uj[i];
            double *ui = u + i * k;
MF_SIMD
            for (size_t c = i; c < k; c++) ui[c] -= f * uj[c];
        }
    }
    return true;
}

MF_CLONES
void mf_chol_upper_solve(const double *u, size_t k, double *x)
{
    const double *rd = u + k * k;
    for (size_t p = 0; p < k; p++) { /* U^T z = x, column form: z_p, then x[p+1..) -= U[p][.] z_p */
        const double *up = u + p * k;
        double z = x[p] * rd[p];
        x[p] = z;
MF_SIMD
        for (size_t c = p + 1; c < k; c++) x[c] -= up[c] * z;
    }
    for (size_t i = k; i-- > 0;) { /* U x = z, row form */
        const double *ui = u + i * k;
        double s = x[i];
MF_SIMD_SUB_S
        for (size_t c = i + 1; c < k; c++) s -= ui[c] * x[c];
        x[i] = s * rd[i];
    }
}

/* G = F^T F, (k, k) in double, F (n, k) row-major. Parallel over output rows. */
static void gram(const float *f, size_t n, size_t k, double *g, int nt)
{
#pragma omp parallel for num_threads(nt) schedule(static)
    for (size_t a = 0; a < k; a++) {
        for (size_t b = 0; b < k; b++) g[a * k + b] = 0;
        for (size_t r = 0; r < n; r++) {
            const float *row = f + r * k;
            double fa = row[a];
            if (fa == 0) continue;
            double *ga = g + a * k;
MF_SIMD
            for (size_t b = 0; b < k; b++) ga[b] += fa * row[b];
        }
    }
}

/* Scratch of one ALS row solve: a (k, k) doubles for the system and its factor, then the k
 * reciprocals of its diagonal, bd (k) the right-hand side, fd (4, k) factor rows in double;
 * af (k, k) and b, r, p, ap, t (k) floats for CG, whose hot loops run in float with `omp simd`
 * so they vectorize at -O2. */
typedef struct als_scratch {
    double *a, *bd, *fd;
    float *af, *b, *r, *p, *ap, *t;
} als_scratch;

static bool scratch_alloc(als_scratch *s, size_t k)
{
    s->a = lp_mallocarray(k * k + 6 * k, sizeof(double)); /* system, 1 / diag, rhs, 4 rows */
    s->af = lp_mallocarray(k * k + 5 * k, sizeof(float));
    if (!s->a || !s->af) {
        free(s->a), free(s->af);
        s->a = NULL;
        s->af = NULL;
        return false;
    }
    s->bd = s->a + k * k + k;
    s->fd = s->bd + k;
    s->b = s->af + k * k;
    s->r = s->b + k;
    s->p = s->r + k;
    s->ap = s->p + k;
    s->t = s->ap + k;
    return true;
}

static void scratch_free(als_scratch *s)
{
    free(s->a), free(s->af);
}

static inline float dotf(const float *x, const float *y, size_t k)
{
    float s = 0;
MF_SIMD_SUM_S
    for (size_t a = 0; a < k; a++) s += x[a] * y[a];
    return s;
}

static inline void axpyf(float alpha, const float *x, float *y, size_t k)
{
MF_SIMD
    for (size_t a = 0; a < k; a++) y[a] += alpha * x[a];
}

/* y = G x for the symmetric (k, k) float G. */
static inline void symvf(const float *g, const float *x, float *y, size_t k)
{
    for (size_t a = 0; a < k; a++) y[a] = dotf(g + a * k, x, k);
}

/* The exact row system of implicit ALS in double: a (upper triangle) = gd + jitter I +
 * sum_j (c_j - 1) f_j f_j^T and bd = sum_j c_j f_j, c_j = 1 + alpha w_j, factored in place by
 * mf_chol_upper. Accumulated in double because a row with thousands of items or weights in
 * the millions makes the sum many orders of magnitude larger than the ridge: in float its
 * rounding alone made such systems indefinite. False when still not positive definite. */
MF_CLONES
static bool als_chol(const float *f, const double *gd, double jitter, size_t k,
                     const int32_t *cols, const float *w, size_t n, float alpha, als_scratch *s)
{
    double *a = s->a, *b = s->bd, *fd = s->fd; /* fd: (4, k) rows in double */
    memcpy(a, gd, k * k * sizeof *a);
    for (size_t c = 0; c < k; c++) a[c * k + c] += jitter;
    memset(b, 0, k * sizeof *b);
    for (size_t t = 0; t < n; t += 4) { /* four rows per pass over the triangle */
        size_t nr = n - t < 4 ? n - t : 4;
        double c1[4] = {0, 0, 0, 0};
        for (size_t q = 0; q < 4; q++) {
            double *d = fd + q * k;
            if (q < nr) {
                const float *fj = f + (size_t)cols[t + q] * k;
                c1[q] = (double)alpha * w[t + q];
MF_SIMD
                for (size_t c = 0; c < k; c++) d[c] = fj[c];
MF_SIMD
                for (size_t c = 0; c < k; c++) b[c] += (1.0 + c1[q]) * d[c];
            } else {
                memset(d, 0, k * sizeof *d);
            }
        }
        const double *d0 = fd, *d1 = fd + k, *d2 = fd + 2 * k, *d3 = fd + 3 * k;
        for (size_t r = 0; r < k; r++) {
            double f0 = c1[0] * d0[r], f1 = c1[1] * d1[r], f2 = c1[2] * d2[r],
                   f3 = c1[3] * d3[r];
            double *row = a + r * k;
MF_SIMD
            for (size_t c = r; c < k; c++) row[c] += f0 * d0[c] + f1 * d1[c] + f2 * d2[c] +
                                                     f3 * d3[c];
        }
    }
    return mf_chol_upper(a, k);
}

/* One least-squares row of implicit ALS: x = (G + sum_j (c_j - 1) f_j f_j^T)^-1 sum_j c_j f_j,
 * where G = F^T F + lambda I (precomputed, (k, k): gd in double for Cholesky, g its float copy
 * for CG) and c_j = 1 + alpha w_j. Cholesky: exact, in double (als_chol); a system that is
 * still not positive definite (a zero ridge with too few items, or weights beyond double's
 * reach) is retried with a jitter of 1e-10 of its largest diagonal entry, then solved by CG
 * from the current x, then left at the current x, so training goes on (*fallback counts those
 * rows). CG: `steps` conjugate-gradient iterations from the current x (Takacs et al. 2011, the
 * form implicit uses), never forming the matrix. Returns false on NaN. */
static bool als_cg(const float *f, const float *g, size_t k, const int32_t *cols, const float *w,
                   size_t n, float alpha, size_t steps, float *x, als_scratch *s);

static bool als_row(const float *f, const double *gd, const float *g, size_t k,
                    const int32_t *cols, const float *w, size_t n, float alpha,
                    lp_mf_solver solver, size_t steps, float *x, als_scratch *s, int *fallback)
{
    if (solver == LP_MF_SOLVER_CG) return als_cg(f, g, k, cols, w, n, alpha, steps, x, s);
    bool ok = als_chol(f, gd, 0, k, cols, w, n, alpha, s);
    if (!ok) {
        double dmax = 0;
        for (size_t c = 0; c < k; c++) dmax = fmax(dmax, fabs(gd[c * k + c]));
        for (size_t t = 0; t < n; t++) /* the diagonal the rows add, from the raw weights */
            for (size_t c = 0; c < k; c++) {
                double v = f[(size_t)cols[t] * k + c];
                dmax = fmax(dmax, fabs((double)alpha * w[t]) * v * v);
            }
        ok = isfinite(dmax) && als_chol(f, gd, 1e-10 * dmax + 1e-12, k, cols, w, n, alpha, s);
    }
    if (ok) {
        mf_chol_upper_solve(s->a, k, s->bd);
        for (size_t a = 0; a < k; a++)
            if (!isfinite(s->bd[a])) ok = false;
    }
    if (ok) {
        for (size_t a = 0; a < k; a++) x[a] = (float)s->bd[a];
        return true;
    }
    if (fallback) (*fallback)++;
    float keep[1025]; /* dim <= 1025: 1024 factors and BPR's bias */
    size_t kk = k < 1025 ? k : 1025;
    memcpy(keep, x, kk * sizeof *x);
    if (als_cg(f, g, k, cols, w, n, alpha, k, x, s)) return true;
    memcpy(x, keep, kk * sizeof *x); /* the previous iterate: finite, so training goes on */
    return fallback != NULL;
}

MF_CLONES
static bool als_cg(const float *f, const float *g, size_t k, const int32_t *cols, const float *w,
                   size_t n, float alpha, size_t steps, float *x, als_scratch *s)
{
    /* r = b - A x */
    symvf(g, x, s->r, k);
    for (size_t a = 0; a < k; a++) s->r[a] = -s->r[a];
    for (size_t t = 0; t < n; t++) {
        const float *fj = f + (size_t)cols[t] * k;
        float c = 1.0f + alpha * w[t];
        axpyf(c - (c - 1.0f) * dotf(fj, x, k), fj, s->r, k);
    }
    memcpy(s->p, s->r, k * sizeof(float));
    float rs = dotf(s->r, s->r, k);
    for (size_t it = 0; it < steps && rs > 1e-20f; it++) {
        symvf(g, s->p, s->ap, k);
        for (size_t t = 0; t < n; t++) {
            const float *fj = f + (size_t)cols[t] * k;
            axpyf(alpha * w[t] * dotf(fj, s->p, k), fj, s->ap, k);
        }
        float pap = dotf(s->p, s->ap, k);
        if (!(pap > 0)) return pap == 0;
        float step = rs / pap;
        axpyf(step, s->p, x, k);
        axpyf(-step, s->ap, s->r, k);
        float rs_new = dotf(s->r, s->r, k);
        float beta = rs_new / rs;
MF_SIMD
        for (size_t a = 0; a < k; a++) s->p[a] = s->r[a] + beta * s->p[a];
        rs = rs_new;
    }
    for (size_t a = 0; a < k; a++)
        if (!isfinite(x[a])) return false;
    return true;
}

/* g32 = (float) g + lambda I. */
static void ridge_f32(const double *g, size_t k, double lambda, float *g32)
{
    for (size_t t = 0; t < k * k; t++) g32[t] = (float)g[t];
    for (size_t a = 0; a < k; a++) g32[a * k + a] += (float)lambda;
}

/* Solve every row of `side` (rows of csr) against the fixed factors f. */
static lp_status als_half(const mf_csr *csr, const float *f, size_t n_f, float *side,
                          size_t k, const lp_mf_opts *o, int nt, double *g, const char *what,
                          lp_err *err)
{
    gram(f, n_f, k, g, nt);
    float *g32 = (float *)(g + k * k); /* the caller allocates room for both */
    ridge_f32(g, k, o->regularization, g32);
    for (size_t a = 0; a < k; a++) g[a * k + a] += o->regularization;
    int bad = 0, oom = 0, fallback = 0;
    size_t bad_row = 0;
#pragma omp parallel num_threads(nt)
    {
        als_scratch s;
        int fb = 0;
        bool ok = scratch_alloc(&s, k);
        if (!ok) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(dynamic, 32)
        for (size_t r = 0; r < csr->n_rows; r++) {
            if (!ok) continue;
            int32_t p0 = csr->ptr[r], p1 = csr->ptr[r + 1];
            if (!als_row(f, g, g32, k, csr->col + p0, csr->w + p0, (size_t)(p1 - p0), o->alpha,
                         o->solver, o->cg_steps, side + r * k, &s, &fb)) {
#pragma omp critical(mf_bad)
                {
                    if (!bad || r < bad_row) bad_row = r;
                    bad = 1;
                }
            }
        }
        if (ok) scratch_free(&s);
#pragma omp atomic
        fallback += fb;
    }
    if (fallback)
        lp_log_debug("ALS: %d %s rows were not positive definite in double; solved by CG or "
                     "kept", fallback, what);
    if (oom) return lp_err_set(err, LP_ENOMEM, "ALS: out of memory for solver scratch");
    if (bad)
        return lp_err_set(err, LP_ENUMERIC,
                          "ALS: %s row %zu gave a non-finite solution",
                          what, bad_row);
    return LP_OK;
}

/* The implicit-ALS objective (Hu et al. eq. 3) without touching the unobserved pairs:
 * sum_{all u,i} (x_u.y_i)^2 = sum_u x_u^T (Y^T Y) x_u, plus for observed pairs
 * c (1 - s)^2 - s^2, plus the penalty. */
double mf_als_objective(const lp_mf *m, const float *x, const float *y, double *g, int nt)
{
    size_t k = m->dim;
    gram(y, m->n_items, k, g, nt);
    double total = 0;
#pragma omp parallel for num_threads(nt) reduction(+ : total) schedule(static)
    for (size_t u = 0; u < m->n_users; u++) {
        const float *xu = x + u * k;
        double q = 0, pen = 0;
        for (size_t a = 0; a < k; a++) {
            double v = 0;
            for (size_t b = 0; b < k; b++) v += g[a * k + b] * xu[b];
            q += v * xu[a];
            pen += (double)xu[a] * xu[a];
        }
        for (int32_t p = m->hist.ptr[u]; p < m->hist.ptr[u + 1]; p++) {
            const float *yi = y + (size_t)m->hist.col[p] * k;
            double s = 0, c = 1.0 + (double)m->opts.alpha * m->hist.w[p];
            for (size_t a = 0; a < k; a++) s += (double)xu[a] * yi[a];
            q += c * (1 - s) * (1 - s) - s * s;
        }
        total += q + m->opts.regularization * pen;
    }
    double py = 0;
    for (size_t t = 0; t < m->n_items * k; t++) py += (double)y[t] * y[t];
    return total + m->opts.regularization * py;
}

void mf_init_factors(float *f, size_t n, size_t k, double scale, lp_rng *rng)
{
    for (size_t t = 0; t < n * k; t++) f[t] = (float)(lp_rng_normal(rng) * scale);
}

static lp_status fit_als(lp_mf *m, int nt, lp_mf_iter_fn cb, void *cb_user, lp_err *err)
{
    size_t k = m->dim;
    mf_csr by_item;
    lp_status st = mf_csr_transpose(&m->hist, m->n_items, &by_item, err);
    if (st) return st;
    double *g = lp_mallocarray(k * k + (k * k + 1) / 2, sizeof *g); /* G and its float copy */
    if (!g) {
        mf_csr_free(&by_item);
        return lp_err_set(err, LP_ENOMEM, "ALS: out of memory");
    }
    lp_rng rng;
    lp_rng_seed(&rng, m->opts.seed);
    double scale = m->opts.init_scale / sqrt((double)k);
    mf_init_factors(m->xu, m->n_users, k, scale, &rng);
    mf_init_factors(m->yi, m->n_items, k, scale, &rng);
    for (size_t it = 1; it <= m->opts.iterations && !st; it++) {
        st = als_half(&by_item, m->xu, m->n_users, m->yi, k, &m->opts, nt, g, "item", err);
        if (!st) st = als_half(&m->hist, m->yi, m->n_items, m->xu, k, &m->opts, nt, g, "user", err);
        if (!st && cb) cb(it, mf_als_objective(m, m->xu, m->yi, g, nt), cb_user);
        if (st) lp_err_prefix(err, "iteration %zu", it);
    }
    free(g);
    mf_csr_free(&by_item);
    return st;
}

static bool in_sorted(const int32_t *a, size_t n, int32_t v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (a[mid] < v) lo = mid + 1;
        else if (a[mid] > v) hi = mid;
        else return true;
    }
    return false;
}

/* BPR-Opt by SGD (Rendle et al. 2009, Algorithm 1 with uniform sampling of the observed pair
 * and of the negative). x_uij = x_u . (y_i - y_j); the last factor is the item bias (the user's
 * last factor stays 1). */
static lp_status fit_bpr(lp_mf *m, lp_mf_iter_fn cb, void *cb_user, lp_err *err)
{
    size_t k = m->dim, kf = k - 1, nnz = m->hist.nnz;
    int32_t *row_of = lp_mallocarray(nnz ? nnz : 1, sizeof *row_of);
    if (!row_of) return lp_err_set(err, LP_ENOMEM, "BPR: out of memory");
    for (size_t u = 0; u < m->n_users; u++)
        for (int32_t p = m->hist.ptr[u]; p < m->hist.ptr[u + 1]; p++) row_of[p] = (int32_t)u;
    lp_rng rng;
    lp_rng_seed(&rng, m->opts.seed);
    double scale = 0.1 * m->opts.init_scale / sqrt((double)kf);
    mf_init_factors(m->xu, m->n_users, k, scale, &rng);
    mf_init_factors(m->yi, m->n_items, k, scale, &rng);
    for (size_t u = 0; u < m->n_users; u++) m->xu[u * k + kf] = 1.0f;
    for (size_t i = 0; i < m->n_items; i++) m->yi[i * k + kf] = 0.0f;
    float lr = m->opts.learning_rate, reg = m->opts.regularization;
    lp_status st = LP_OK;
    for (size_t ep = 1; ep <= m->opts.iterations && !st; ep++) {
        double loss = 0;
        size_t used = 0;
        for (size_t s = 0; s < nnz; s++) {
            size_t p = lp_rng_below(&rng, nnz);
            int32_t u = row_of[p], i = m->hist.col[p], j = -1;
            const int32_t *hu = m->hist.col + m->hist.ptr[u];
            size_t nu = (size_t)(m->hist.ptr[u + 1] - m->hist.ptr[u]);
            for (int tries = 0; tries < 16; tries++) {
                int32_t c = (int32_t)lp_rng_below(&rng, m->n_items);
                if (!in_sorted(hu, nu, c)) {
                    j = c;
                    break;
                }
            }
            if (j < 0) continue;
            float *xu = m->xu + (size_t)u * k, *yi = m->yi + (size_t)i * k,
                  *yj = m->yi + (size_t)j * k;
            double z = 0;
            for (size_t a = 0; a < k; a++) z += (double)xu[a] * (yi[a] - yj[a]);
            /* -log sigmoid(z), computed without overflow */
            loss += z > 0 ? log1p(exp(-z)) : -z + log1p(exp(z));
            used++;
            float gz = (float)(1.0 / (1.0 + exp(z))); /* sigmoid(-z) */
            for (size_t a = 0; a < kf; a++) {
                float xa = xu[a], ia = yi[a], ja = yj[a];
                xu[a] += lr * (gz * (ia - ja) - reg * xa);
                yi[a] += lr * (gz * xa - reg * ia);
                yj[a] += lr * (-gz * xa - reg * ja);
            }
            yi[kf] += lr * (gz - reg * yi[kf]);
            yj[kf] += lr * (-gz - reg * yj[kf]);
        }
        for (size_t t = 0; t < m->n_items * k; t++)
            if (!isfinite(m->yi[t])) {
                st = lp_err_set(err, LP_ENUMERIC, "BPR epoch %zu: item factor %zu is not finite "
                                "(lower the learning rate)", ep, t / k);
                break;
            }
        if (!st && cb) cb(ep, used ? loss / (double)used : 0, cb_user);
    }
    free(row_of);
    return st;
}

typedef struct knn_pair {
    int32_t j;
    float s;
} knn_pair;

/* Item-item cosine with shrinkage over the item columns of the user-item matrix. */
static lp_status fit_itemknn(lp_mf *m, int nt, lp_err *err)
{
    mf_csr by_item;
    lp_status st = mf_csr_transpose(&m->hist, m->n_items, &by_item, err);
    if (st) return st;
    size_t ni = m->n_items, nk = m->opts.neighbors < ni ? m->opts.neighbors : ni;
    double *norm = lp_mallocarray(ni, sizeof *norm);
    knn_pair *best = lp_mallocarray(ni * (nk ? nk : 1), sizeof *best);
    int32_t *cnt = lp_calloc(ni, sizeof *cnt);
    int oom = 0;
    if (!norm || !best || !cnt) {
        st = lp_err_set(err, LP_ENOMEM, "itemknn: out of memory for %zu items", ni);
        goto done;
    }
    for (size_t i = 0; i < ni; i++) {
        double s = 0;
        for (int32_t p = by_item.ptr[i]; p < by_item.ptr[i + 1]; p++)
            s += (double)by_item.w[p] * by_item.w[p];
        norm[i] = sqrt(s);
    }
    float shrink = m->opts.shrinkage;
#pragma omp parallel num_threads(nt)
    {
        double *acc = lp_calloc(ni, sizeof *acc);
        int32_t *touched = lp_mallocarray(ni, sizeof *touched);
        float *sc = lp_mallocarray(ni, sizeof *sc);
        int32_t *top = lp_mallocarray(nk ? nk : 1, sizeof *top);
        bool ok = acc && touched && sc && top;
        if (!ok) {
#pragma omp atomic write
            oom = 1;
        }
#pragma omp for schedule(dynamic, 16)
        for (size_t i = 0; i < ni; i++) {
            if (!ok) continue;
            size_t nt_ = 0;
            for (int32_t p = by_item.ptr[i]; p < by_item.ptr[i + 1]; p++) {
                int32_t u = by_item.col[p];
                double wi = by_item.w[p];
                for (int32_t q = m->hist.ptr[u]; q < m->hist.ptr[u + 1]; q++) {
                    int32_t j = m->hist.col[q];
                    if ((size_t)j == i) continue;
                    if (acc[j] == 0) touched[nt_++] = j;
                    acc[j] += wi * m->hist.w[q];
                }
            }
            /* scores over the touched items only: compact them into sc by position */
            for (size_t t = 0; t < nt_; t++) {
                int32_t j = touched[t];
                sc[t] = (float)(acc[j] / (norm[i] * norm[j] + shrink));
                acc[j] = 0;
            }
            size_t got = lp_mf_topk(sc, nt_, NULL, nk, top);
            for (size_t t = 0; t < got; t++)
                best[i * nk + t] = (knn_pair){touched[top[t]], sc[top[t]]};
            cnt[i] = (int32_t)got;
        }
        free(acc), free(touched), free(sc), free(top);
    }
    if (oom) {
        st = lp_err_set(err, LP_ENOMEM, "itemknn: out of memory for thread scratch");
        goto done;
    }
    size_t total = 0;
    for (size_t i = 0; i < ni; i++) total += (size_t)cnt[i];
    m->knn.n_rows = ni;
    m->knn.nnz = total;
    m->knn.ptr = lp_calloc(ni + 1, sizeof(int32_t));
    m->knn.col = lp_mallocarray(total ? total : 1, sizeof(int32_t));
    m->knn.w = lp_mallocarray(total ? total : 1, sizeof(float));
    if (!m->knn.ptr || !m->knn.col || !m->knn.w) {
        st = lp_err_set(err, LP_ENOMEM, "itemknn: out of memory for %zu neighbours", total);
        goto done;
    }
    size_t pos = 0;
    for (size_t i = 0; i < ni; i++) {
        m->knn.ptr[i] = (int32_t)pos;
        for (int32_t t = 0; t < cnt[i]; t++) {
            m->knn.col[pos] = best[i * nk + (size_t)t].j;
            m->knn.w[pos++] = best[i * nk + (size_t)t].s;
        }
    }
    m->knn.ptr[ni] = (int32_t)pos;
done:
    free(norm), free(best), free(cnt);
    mf_csr_free(&by_item);
    return st;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* LP_MF_WEIGHT_AUTO: LOG1P when the 99th percentile of the summed pair weights is above
 * LP_MF_WEIGHT_AUTO_RATIO times their median (play counts), else NONE (ratings, event weights). */
static lp_status weight_auto(const mf_csr *h, lp_mf_weight *out, lp_err *err)
{
    float *w = lp_mallocarray(h->nnz ? h->nnz : 1, sizeof *w);
    if (!w) return lp_err_set(err, LP_ENOMEM, "mf fit: out of memory");
    memcpy(w, h->w, h->nnz * sizeof *w);
    qsort(w, h->nnz, sizeof *w, cmp_float);
    double med = h->nnz ? w[h->nnz / 2] : 0, p99 = h->nnz ? w[(h->nnz * 99) / 100] : 0;
    free(w);
    *out = p99 > LP_MF_WEIGHT_AUTO_RATIO * med ? LP_MF_WEIGHT_LOG1P : LP_MF_WEIGHT_NONE;
    lp_log_debug("mf fit: weights' median %g, 99th percentile %g: weight transform %s", med, p99,
                 lp_mf_weight_name(*out));
    return LP_OK;
}

lp_status mf_finish(lp_mf *m, lp_err *err)
{
    free(m->pop_users);
    free(m->pop_score);
    free(m->yty);
    free(m->inorm);
    m->yty = m->inorm = NULL;
    m->pop_users = lp_calloc(m->n_items ? m->n_items : 1, sizeof(float));
    m->pop_score = lp_mallocarray(m->n_items ? m->n_items : 1, sizeof(float));
    if (!m->pop_users || !m->pop_score) return lp_err_set(err, LP_ENOMEM, "mf: out of memory");
    for (size_t p = 0; p < m->hist.nnz; p++) m->pop_users[m->hist.col[p]] += 1.0f;
    /* users first; the summed weight, scaled into [0, 0.5], only orders equal user counts */
    double pmax = 0;
    for (size_t i = 0; i < m->n_items; i++) pmax = fmax(pmax, m->pop[i]);
    for (size_t i = 0; i < m->n_items; i++)
        m->pop_score[i] = (float)(m->pop_users[i] + (pmax > 0 ? 0.5 * m->pop[i] / pmax : 0));
    if (!m->yi) return LP_OK;
    size_t k = m->dim;
    double *g = lp_mallocarray(k * k, sizeof *g);
    m->yty = lp_mallocarray(k * k, sizeof(float));
    m->inorm = lp_mallocarray(m->n_items ? m->n_items : 1, sizeof(float));
    if (!g || !m->yty || !m->inorm) {
        free(g);
        return lp_err_set(err, LP_ENOMEM, "mf: out of memory");
    }
    gram(m->yi, m->n_items, k, g, 1);
    for (size_t t = 0; t < k * k; t++) m->yty[t] = (float)g[t];
    free(g);
    /* BPR's bias column is not part of an item's direction */
    size_t kd = m->opts.kind == LP_MF_KIND_BPR ? k - 1 : k;
    for (size_t i = 0; i < m->n_items; i++) {
        double s = 0;
        for (size_t a = 0; a < kd; a++) s += (double)m->yi[i * k + a] * m->yi[i * k + a];
        m->inorm[i] = (float)sqrt(s);
    }
    return LP_OK;
}

lp_status lp_mf_fit(const lp_mf_data *d, const lp_mf_opts *o, lp_mf **out, lp_err *err)
{
    *out = NULL;
    lp_status st = lp_mf_opts_check(o, err);
    if (st) return st;
    if (!d || d->n_t == 0) return lp_err_set(err, LP_EINVAL, "mf fit: no interactions");
    lp_mf *m = lp_calloc(1, sizeof *m);
    if (!m) return lp_err_set(err, LP_ENOMEM, "mf fit: out of memory");
    m->opts = *o;
    m->opts.on_iter = NULL;
    m->opts.on_iter_user = NULL;
    m->opts.device = NULL;
    m->n_users = d->users.n;
    m->n_items = d->items.n;
    mf_ids_init(&m->users);
    mf_ids_init(&m->items);
    int32_t idx;
    for (size_t t = 0; t < d->users.n && !st; t++)
        st = mf_ids_add(&m->users, d->users.names[t], &idx, NULL, err);
    for (size_t t = 0; t < d->items.n && !st; t++)
        st = mf_ids_add(&m->items, d->items.names[t], &idx, NULL, err);
    if (!st) st = mf_data_csr(d, true, &m->hist, err);
    if (!st && o->weight_transform == LP_MF_WEIGHT_AUTO)
        st = weight_auto(&m->hist, &m->opts.weight_transform, err);
    /* the fit sees the transformed weights; the raw ones are put back into the history after */
    float *raw_w = NULL;
    if (!st && m->opts.weight_transform != LP_MF_WEIGHT_NONE) {
        float *tw = mf_tw_copy(m->opts.weight_transform, m->hist.w, m->hist.nnz);
        if (!tw) st = lp_err_set(err, LP_ENOMEM, "mf fit: out of memory");
        else raw_w = m->hist.w, m->hist.w = tw;
    }
    if (!st) {
        m->pop = lp_calloc(m->n_items, sizeof(float));
        if (!m->pop) st = lp_err_set(err, LP_ENOMEM, "mf fit: out of memory");
        else
            for (size_t p = 0; p < m->hist.nnz; p++) m->pop[m->hist.col[p]] += m->hist.w[p];
    }
    int nt = o->threads > 0 ? o->threads : omp_get_max_threads();
    if (!st && (o->kind == LP_MF_KIND_ALS || o->kind == LP_MF_KIND_BPR)) {
        m->dim = o->factors + (o->kind == LP_MF_KIND_BPR);
        m->xu = lp_mallocarray(m->n_users * m->dim, sizeof(float));
        m->yi = lp_mallocarray(m->n_items * m->dim, sizeof(float));
        if (!m->xu || !m->yi) st = lp_err_set(err, LP_ENOMEM, "mf fit: out of memory for factors");
        else {
            const lp_backend *be = NULL; /* NULL: the CPU solvers */
            st = mf_table_for(o->device, &be, err);
            if (!st && be)
                st = o->kind == LP_MF_KIND_ALS
                         ? mf_fit_als_table(m, be, nt, o->on_iter, o->on_iter_user, err)
                         : mf_fit_bpr_table(m, be, o->deterministic, o->on_iter, o->on_iter_user,
                                            err);
            else if (!st && o->kind == LP_MF_KIND_ALS)
                st = fit_als(m, nt, o->on_iter, o->on_iter_user, err);
            else if (!st)
                st = fit_bpr(m, o->on_iter, o->on_iter_user, err);
        }
    } else if (!st && o->kind == LP_MF_KIND_ITEMKNN) {
        st = fit_itemknn(m, nt, err);
    }
    if (raw_w) {
        free(m->hist.w);
        m->hist.w = raw_w;
    }
    if (!st) st = mf_finish(m, err);
    if (st) {
        lp_mf_free(m);
        return st;
    }
    *out = m;
    return LP_OK;
}

void lp_mf_free(lp_mf *m)
{
    if (!m) return;
    mf_ids_clear(&m->users);
    mf_ids_clear(&m->items);
    free(m->xu), free(m->yi), free(m->pop), free(m->pop_users), free(m->yty), free(m->inorm);
    free(m->pop_score);
    mf_csr_free(&m->hist);
    mf_csr_free(&m->knn);
    for (int c = 0; c < 5; c++) free(m->src_cols[c]);
    free(m);
}

lp_status lp_mf_set_source(lp_mf *m, const lp_mf_source *src, lp_err *err)
{
    if (!m || !src) return lp_err_set(err, LP_EINVAL, "source: NULL argument");
    const char *in[5] = {src->user_col, src->item_col, src->weight_col, src->type_col,
                         src->time_col};
    static const char *const names[5] = {"user_col", "item_col", "weight_col", "type_col",
                                         "time_col"};
    lp_status st = lp_mf_event_opts_check(&src->ev, err);
    if (st) return lp_err_prefix(err, "source");
    char *copy[5] = {0};
    for (int c = 0; c < 5 && !st; c++) {
        if (!in[c]) continue;
        size_t n = strlen(in[c]);
        if (n == 0 || n > 256)
            st = lp_err_set(err, LP_EINVAL, "source.%s: a name of %zu bytes is not 1..256", names[c],
                            n);
        else if (!(copy[c] = lp_strdup(in[c])))
            st = lp_err_set(err, LP_ENOMEM, "source: out of memory");
    }
    if (st) {
        for (int c = 0; c < 5; c++) free(copy[c]);
        return st;
    }
    for (int c = 0; c < 5; c++) {
        free(m->src_cols[c]);
        m->src_cols[c] = copy[c];
    }
    m->src.user_col = copy[0], m->src.item_col = copy[1], m->src.weight_col = copy[2];
    m->src.type_col = copy[3], m->src.time_col = copy[4];
    m->src.ev = src->ev;
    m->src.time_ref = isfinite(src->time_ref) ? src->time_ref : 0;
    m->has_source = true;
    return LP_OK;
}

const lp_mf_source *lp_mf_model_source(const lp_mf *m)
{
    return m && m->has_source ? &m->src : NULL;
}

/* ---- accessors ----------------------------------------------------------------------------*/

lp_mf_kind lp_mf_model_kind(const lp_mf *m) { return m->opts.kind; }
const lp_mf_opts *lp_mf_model_opts(const lp_mf *m) { return &m->opts; }
size_t lp_mf_n_users(const lp_mf *m) { return m ? m->n_users : 0; }
size_t lp_mf_n_items(const lp_mf *m) { return m ? m->n_items : 0; }
size_t lp_mf_dim(const lp_mf *m) { return m ? m->dim : 0; }
long lp_mf_user_index(const lp_mf *m, const char *id) { return m ? mf_ids_find(&m->users, id) : -1; }
long lp_mf_item_index(const lp_mf *m, const char *id) { return m ? mf_ids_find(&m->items, id) : -1; }

const char *lp_mf_user_id(const lp_mf *m, size_t u)
{
    return m && u < m->n_users ? m->users.names[u] : NULL;
}

const char *lp_mf_item_id(const lp_mf *m, size_t i)
{
    return m && i < m->n_items ? m->items.names[i] : NULL;
}

const float *lp_mf_user_factors(const lp_mf *m, size_t u)
{
    return m && m->xu && u < m->n_users ? m->xu + u * m->dim : NULL;
}

const float *lp_mf_item_factors(const lp_mf *m, size_t i)
{
    return m && m->yi && i < m->n_items ? m->yi + i * m->dim : NULL;
}

size_t lp_mf_user_history(const lp_mf *m, size_t u, const int32_t **items, const float **w)
{
    if (!m || u >= m->n_users) {
        *items = NULL;
        *w = NULL;
        return 0;
    }
    *items = m->hist.col + m->hist.ptr[u];
    *w = m->hist.w + m->hist.ptr[u];
    return (size_t)(m->hist.ptr[u + 1] - m->hist.ptr[u]);
}

float lp_mf_item_popularity(const lp_mf *m, size_t i)
{
    return m && i < m->n_items ? m->pop[i] : 0.0f;
}

lp_status lp_mf_to_data(const lp_mf *m, lp_mf_data **out, lp_err *err)
{
    lp_mf_data *d = lp_mf_data_new();
    if (!d) return lp_err_set(err, LP_ENOMEM, "mf: out of memory");
    lp_status st = LP_OK;
    for (size_t u = 0; u < m->n_users && !st; u++)
        for (int32_t p = m->hist.ptr[u]; p < m->hist.ptr[u + 1] && !st; p++)
            st = lp_mf_data_add(d, m->users.names[u], m->items.names[m->hist.col[p]],
                                m->hist.w[p], err);
    if (st) {
        lp_mf_data_free(d);
        return st;
    }
    *out = d;
    return LP_OK;
}

/* ---- fold-in ------------------------------------------------------------------------------*/

lp_status lp_mf_fold_in(const lp_mf *m, const int32_t *items, const float *w, size_t n,
                        float *out, lp_err *err)
{
    if (m->opts.weight_transform == LP_MF_WEIGHT_NONE || !m->yi)
        return mf_fold_in(m, items, w, n, out, err);
    for (size_t t = 0; t < n; t++) /* checked before the transform could hide a bad weight */
        if (!isfinite(w[t]) || w[t] <= 0)
            return lp_err_set(err, LP_EINVAL, "fold-in: weight %g of item %d is not > 0", w[t],
                              items[t]);
    float *tw = mf_tw_copy(m->opts.weight_transform, w, n);
    if (!tw) return lp_err_set(err, LP_ENOMEM, "fold-in: out of memory");
    lp_status st = mf_fold_in(m, items, tw, n, out, err);
    free(tw);
    return st;
}

lp_status mf_fold_in(const lp_mf *m, const int32_t *items, const float *w, size_t n, float *out,
                     lp_err *err)
{
    if (!m->yi)
        return lp_err_set(err, LP_EUNSUPPORTED, "fold-in: a %s model has no factors",
                          lp_mf_kind_name(m->opts.kind));
    for (size_t t = 0; t < n; t++) {
        if (items[t] < 0 || (size_t)items[t] >= m->n_items)
            return lp_err_set(err, LP_EINVAL, "fold-in: item index %d out of range", items[t]);
        if (!isfinite(w[t]) || w[t] <= 0)
            return lp_err_set(err, LP_EINVAL, "fold-in: weight %g of item %d is not > 0", w[t],
                              items[t]);
    }
    size_t k = m->dim;
    float *g = lp_mallocarray(k * k, sizeof *g);
    double *gd = lp_mallocarray(k * k, sizeof *gd);
    als_scratch s;
    if (!g || !gd || !scratch_alloc(&s, k)) {
        free(g), free(gd);
        return lp_err_set(err, LP_ENOMEM, "fold-in: out of memory");
    }
    memcpy(g, m->yty, k * k * sizeof *g);
    bool bpr = m->opts.kind == LP_MF_KIND_BPR;
    for (size_t a = 0; a < k; a++) g[a * k + a] += bpr ? 0.1f : m->opts.regularization;
    for (size_t t = 0; t < k * k; t++) gd[t] = g[t];
    float alpha = bpr ? 1.0f : m->opts.alpha;
    memset(out, 0, k * sizeof *out); /* the start of a CG fallback */
    bool ok = als_row(m->yi, gd, g, k, items, w, n, alpha, LP_MF_SOLVER_CHOLESKY, 0, out, &s,
                      NULL);
    free(g), free(gd);
    scratch_free(&s);
    if (!ok) return lp_err_set(err, LP_ENUMERIC, "fold-in: the system is not positive definite");
    return LP_OK;
}
