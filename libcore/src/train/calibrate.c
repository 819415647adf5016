/*
 * calibrate.c - probability calibrators behind one handle: Platt scaling (Newton's method of
 * Lin, Lin & Weng 2007), isotonic regression (pool-adjacent-violators) and temperature scaling
 * (bisection on the convex NLL in 1/T); prediction; and a versioned, bounds-checked byte format.
 * Invariants of a fitted lp_calibrator: PLATT has finite A, B; ISOTONIC has n_knots >= 1 knots
 * with strictly increasing finite x and nondecreasing finite y; TEMPERATURE has finite T > 0
 * and k >= 2 columns. The loader re-checks all of these, so a loaded calibrator is as safe to
 * use as a fitted one. Formulas and references are in train.h.
 */
#include "lepton/train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CAL_MAGIC "LPCAL"
#define CAL_MAGIC_LEN 5
#define CAL_VERSION 1u

/* Platt: LIBSVM's line-search constants (Lin, Lin & Weng 2007, Algorithm 1). */
#define PLATT_MAX_ITER 100
#define PLATT_MIN_STEP 1e-10
#define PLATT_SIGMA 1e-12
/* Stop when |gradient| < PLATT_GTOL * n per component: LIBSVM's 1e-5 absolute is loose for
 * large n, and Newton reaches this in one or two more steps. */
#define PLATT_GTOL 1e-10

/* Temperature: 1/T searched in [1e-4, 1e4]; 64 halvings of the 18.4-wide log interval leave
 * an error far below double rounding of T. */
#define TEMP_BETA_MIN 1e-4
#define TEMP_BETA_MAX 1e4
#define TEMP_ITERS 64

struct lp_calibrator {
    lp_calibrator_kind kind;
    size_t k;       /* input columns: 1, or the number of classes for TEMPERATURE */
    double a, b;    /* PLATT: A, B of sigmoid(A f + B); TEMPERATURE: a = T */
    size_t n_knots; /* ISOTONIC */
    double *kx, *ky; /* ISOTONIC knots (n_knots), one allocation owned through kx */
};

void lp_calibrator_free(lp_calibrator *cal)
{
    if (!cal)
        return;
    free(cal->kx);
    free(cal);
}

lp_calibrator_kind lp_calibrator_get_kind(const lp_calibrator *cal) { return cal->kind; }

size_t lp_calibrator_n_cols(const lp_calibrator *cal) { return cal->k; }

void lp_calibrator_params(const lp_calibrator *cal, double *a, double *b)
{
    double va = NAN, vb = NAN;
    if (cal->kind == LP_CALIBRATOR_KIND_PLATT) {
        va = cal->a;
        vb = cal->b;
    } else if (cal->kind == LP_CALIBRATOR_KIND_TEMPERATURE) {
        va = cal->a;
    } else {
        va = (double)cal->n_knots;
    }
    if (a)
        *a = va;
    if (b)
        *b = vb;
}

static lp_calibrator *cal_new(lp_calibrator_kind kind, size_t k)
{
    lp_calibrator *c = calloc(1, sizeof *c);
    if (c) {
        c->kind = kind;
        c->k = k;
    }
    return c;
}

/* Shared checks of the binary fits: n, finite scores, 0/1 labels; *n_pos counts the 1s. */
static lp_status check_binary_fit(const char *fn, const double *s, const int32_t *y, size_t n,
                                  lp_calibrator **out, size_t *n_pos, lp_err *err)
{
    if (!out)
        return lp_err_set(err, LP_EINVAL, "%s: NULL output", fn);
    *out = NULL;
    if (n == 0)
        return lp_err_set(err, LP_EINVAL, "%s: empty input (n = 0)", fn);
    if (!s || !y)
        return lp_err_set(err, LP_EINVAL, "%s: NULL input array", fn);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(s[i]))
            return lp_err_set(err, LP_EINVAL, "%s: score[%zu] = %g, expected a finite number", fn,
                              i, s[i]);
        if (y[i] != 0 && y[i] != 1)
            return lp_err_set(err, LP_EINVAL, "%s: label y[%zu] = %d, expected 0 or 1", fn, i,
                              (int)y[i]);
        pos += (size_t)y[i];
    }
    *n_pos = pos;
    return LP_OK;
}

/* ---- Platt ----------------------------------------------------------------------------------
 * In LIBSVM's convention P = 1 / (1 + exp(a f + b)), so A = -a, B = -b. The objective is the
 * cross-entropy against smoothed targets t_i; every log(1 + exp(.)) is evaluated on the side
 * that cannot overflow. */
static double platt_objective(const double *f, const double *t, size_t n, double a, double b)
{
    double v = 0;
    for (size_t i = 0; i < n; i++) {
        double z = f[i] * a + b;
        v += z >= 0 ? t[i] * z + log1p(exp(-z)) : (t[i] - 1) * z + log1p(exp(z));
    }
    return v;
}

lp_status lp_calibrator_fit_platt(const double *scores, const int32_t *y, size_t n,
                                  lp_calibrator **out, lp_err *err)
{
    size_t n1;
    lp_status st = check_binary_fit("calibrator_fit_platt", scores, y, n, out, &n1, err);
    if (st)
        return st;
    if (n1 == 0 || n1 == n)
        return lp_err_set(err, LP_EINVAL,
                          "calibrator_fit_platt: only one class in y (%zu positives of %zu)", n1,
                          n);
    double prior1 = (double)n1, prior0 = (double)(n - n1);
    double hi = (prior1 + 1) / (prior1 + 2), lo = 1 / (prior0 + 2);
    double *t = lp_mallocarray(n, sizeof *t);
    lp_calibrator *cal = cal_new(LP_CALIBRATOR_KIND_PLATT, 1);
    if (!t || !cal) {
        free(t);
        free(cal);
        return lp_err_set(err, LP_ENOMEM, "calibrator_fit_platt: out of memory (n = %zu)", n);
    }
    for (size_t i = 0; i < n; i++)
        t[i] = y[i] ? hi : lo;
    double a = 0, b = log((prior0 + 1) / (prior1 + 1));
    double fval = platt_objective(scores, t, n, a, b), gtol = PLATT_GTOL * (double)n;
    for (int it = 0; it < PLATT_MAX_ITER; it++) {
        double h11 = PLATT_SIGMA, h22 = PLATT_SIGMA, h21 = 0, g1 = 0, g2 = 0;
        for (size_t i = 0; i < n; i++) {
            double z = scores[i] * a + b, p, q;
            if (z >= 0) {
                double e = exp(-z);
                p = e / (1 + e);
                q = 1 / (1 + e);
            } else {
                double e = exp(z);
                p = 1 / (1 + e);
                q = e / (1 + e);
            }
            double d2 = p * q, d1 = t[i] - p;
            h11 += scores[i] * scores[i] * d2;
            h22 += d2;
            h21 += scores[i] * d2;
            g1 += scores[i] * d1;
            g2 += d1;
        }
        if (fabs(g1) < gtol && fabs(g2) < gtol)
            break;
        double det = h11 * h22 - h21 * h21;
        double da = -(h22 * g1 - h21 * g2) / det, db = -(-h21 * g1 + h11 * g2) / det;
        double gd = g1 * da + g2 * db, step = 1;
        if (-gd <= 1e-12 * fval) {
            /* the predicted decrease is below the rounding of the n-term sum fval (relative
             * 1e-12 is n * eps for n ~ 1e4 and a safe margin above it beyond), so the
             * line search could only halve its way to PLATT_MIN_STEP: take the Newton step
             * (it is exact to second order here) and stop */
            a += da;
            b += db;
            break;
        }
        while (step >= PLATT_MIN_STEP) {
            double na = a + step * da, nb = b + step * db;
            double nf = platt_objective(scores, t, n, na, nb);
            if (nf < fval + 1e-4 * step * gd) {
                a = na;
                b = nb;
                fval = nf;
                break;
            }
            step /= 2;
        }
        if (step < PLATT_MIN_STEP)
            break; /* no descent left at double precision: (a, b) is the optimum we can reach */
    }
    free(t);
    if (!isfinite(a) || !isfinite(b)) {
        free(cal);
        return lp_err_set(err, LP_ENUMERIC, "calibrator_fit_platt: Newton diverged (a=%g b=%g)",
                          a, b);
    }
    cal->a = -a;
    cal->b = -b;
    *out = cal;
    return LP_OK;
}

/* ---- isotonic -------------------------------------------------------------------------------*/
typedef struct iso_pt {
    double x, y;
} iso_pt;

static int cmp_pt(const void *p, const void *q)
{
    double a = ((const iso_pt *)p)->x, b = ((const iso_pt *)q)->x;
    return (a > b) - (a < b);
}

lp_status lp_calibrator_fit_isotonic(const double *scores, const int32_t *y, size_t n,
                                     lp_calibrator **out, lp_err *err)
{
    size_t n1;
    lp_status st = check_binary_fit("calibrator_fit_isotonic", scores, y, n, out, &n1, err);
    if (st)
        return st;
    iso_pt *pt = lp_mallocarray(n, sizeof *pt);
    /* blocks of the PAV stack: weighted sum of y, weight, number of unique x pooled */
    double *bs = lp_mallocarray(n, sizeof *bs), *bw = lp_mallocarray(n, sizeof *bw);
    size_t *bc = lp_mallocarray(n, sizeof *bc);
    double *knots = lp_mallocarray(n, 2 * sizeof *knots);
    lp_calibrator *cal = cal_new(LP_CALIBRATOR_KIND_ISOTONIC, 1);
    if (!pt || !bs || !bw || !bc || !knots || !cal) {
        free(pt);
        free(bs);
        free(bw);
        free(bc);
        free(knots);
        free(cal);
        return lp_err_set(err, LP_ENOMEM, "calibrator_fit_isotonic: out of memory (n = %zu)", n);
    }
    for (size_t i = 0; i < n; i++)
        pt[i] = (iso_pt){scores[i], (double)y[i]};
    qsort(pt, n, sizeof *pt, cmp_pt);
    /* pool equal x first (sklearn _make_unique): ux (m) unique scores, weights and y sums */
    double *ux = knots, *uy = knots + n;
    size_t m = 0, nb = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        double s = 0;
        while (j < n && pt[j].x == pt[i].x)
            s += pt[j++].y;
        ux[m++] = pt[i].x;
        /* PAV: push the tie group as a block, merge while the previous block's mean is above */
        bs[nb] = s;
        bw[nb] = (double)(j - i);
        bc[nb] = 1;
        nb++;
        while (nb > 1 && bs[nb - 2] / bw[nb - 2] > bs[nb - 1] / bw[nb - 1]) {
            bs[nb - 2] += bs[nb - 1];
            bw[nb - 2] += bw[nb - 1];
            bc[nb - 2] += bc[nb - 1];
            nb--;
        }
        i = j;
    }
    for (size_t b = 0, u = 0; b < nb; b++)
        for (size_t c = 0; c < bc[b]; c++)
            uy[u++] = bs[b] / bw[b];
    /* keep the first and last knot and every knot whose y differs from a neighbour's (sklearn
     * trim_duplicates): interpolation through the dropped ones is unchanged */
    size_t kept = 0;
    for (size_t u = 0; u < m; u++) {
        bool keep = u == 0 || u == m - 1 || uy[u] != uy[u - 1] || uy[u] != uy[u + 1];
        if (keep) {
            pt[kept].x = ux[u];
            pt[kept].y = uy[u];
            kept++;
        }
    }
    free(bs);
    free(bw);
    free(bc);
    /* knots becomes the calibrator's [x (kept) | y (kept)] block */
    for (size_t u = 0; u < kept; u++) {
        knots[u] = pt[u].x;
        knots[kept + u] = pt[u].y;
    }
    free(pt);
    cal->n_knots = kept;
    cal->kx = knots;
    cal->ky = knots + kept;
    *out = cal;
    return LP_OK;
}

/* np.interp over the knots with x clipped to [x_0, x_last]. */
static double iso_eval(const lp_calibrator *c, double x)
{
    const double *kx = c->kx, *ky = c->ky;
    size_t m = c->n_knots;
    if (x <= kx[0])
        return ky[0];
    if (x >= kx[m - 1])
        return ky[m - 1];
    size_t lo = 0, hi = m - 1; /* invariant kx[lo] < x < kx[hi] or x == kx[lo] */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (kx[mid] <= x)
            lo = mid;
        else
            hi = mid;
    }
    if (x == kx[lo])
        return ky[lo];
    double slope = (ky[hi] - ky[lo]) / (kx[hi] - kx[lo]);
    return slope * (x - kx[lo]) + ky[lo];
}

/* ---- temperature ----------------------------------------------------------------------------
 * With beta = 1/T, NLL(beta) = mean_i [logsumexp(beta z_i) - beta z_{i,y_i}] is convex, and its
 * derivative is mean_i [E_{softmax(beta z_i)}[z] - z_{i,y_i}], nondecreasing in beta. */
static double temp_grad(const double *z, const int32_t *y, size_t n, size_t k, double beta)
{
    double g = 0;
    for (size_t i = 0; i < n; i++) {
        const double *row = z + i * k; /* (k) */
        double mx = row[0];
        for (size_t c = 1; c < k; c++)
            mx = row[c] > mx ? row[c] : mx;
        double se = 0, sz = 0;
        for (size_t c = 0; c < k; c++) {
            double e = exp(beta * (row[c] - mx)); /* shift by the max: no overflow */
            se += e;
            sz += e * row[c];
        }
        g += sz / se - row[y[i]];
    }
    return g / (double)n;
}

lp_status lp_calibrator_fit_temperature(const double *logits, const int32_t *y, size_t n,
                                        size_t k, lp_calibrator **out, lp_err *err)
{
    const char *fn = "calibrator_fit_temperature";
    if (!out)
        return lp_err_set(err, LP_EINVAL, "%s: NULL output", fn);
    *out = NULL;
    if (n == 0)
        return lp_err_set(err, LP_EINVAL, "%s: empty input (n = 0)", fn);
    if (!logits || !y)
        return lp_err_set(err, LP_EINVAL, "%s: NULL input array", fn);
    if (k < 2 || k > (size_t)INT32_MAX || n > SIZE_MAX / k)
        return lp_err_set(err, LP_EINVAL, "%s: k = %zu classes, expected >= 2", fn, k);
    for (size_t i = 0; i < n; i++) {
        if (y[i] < 0 || (size_t)y[i] >= k)
            return lp_err_set(err, LP_EINVAL, "%s: label y[%zu] = %d, expected 0..%zu", fn, i,
                              (int)y[i], k - 1);
        for (size_t c = 0; c < k; c++)
            if (!isfinite(logits[i * k + c]))
                return lp_err_set(err, LP_EINVAL,
                                  "%s: logit [%zu, %zu] = %g, expected a finite number", fn, i, c,
                                  logits[i * k + c]);
    }
    lp_calibrator *cal = cal_new(LP_CALIBRATOR_KIND_TEMPERATURE, k);
    if (!cal)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", fn);
    double lo = log(TEMP_BETA_MIN), hi = log(TEMP_BETA_MAX), beta;
    if (temp_grad(logits, y, n, k, TEMP_BETA_MIN) >= 0) {
        beta = TEMP_BETA_MIN; /* NLL increasing everywhere: as flat as allowed */
    } else if (temp_grad(logits, y, n, k, TEMP_BETA_MAX) <= 0) {
        beta = TEMP_BETA_MAX; /* separable data: NLL decreases to the bound */
    } else {
        for (int it = 0; it < TEMP_ITERS; it++) {
            double mid = 0.5 * (lo + hi);
            if (temp_grad(logits, y, n, k, exp(mid)) < 0)
                lo = mid;
            else
                hi = mid;
        }
        beta = exp(0.5 * (lo + hi));
    }
    cal->a = 1 / beta;
    *out = cal;
    return LP_OK;
}

/* ---- predict --------------------------------------------------------------------------------*/
lp_status lp_calibrator_predict(const lp_calibrator *cal, const double *x, size_t n, size_t cols,
                                double *out, lp_err *err)
{
    if (!cal || (n > 0 && (!x || !out)))
        return lp_err_set(err, LP_EINVAL, "calibrator_predict: NULL argument");
    if (cols != cal->k)
        return lp_err_set(err, LP_EINVAL, "calibrator_predict: %zu input columns, expected %zu",
                          cols, cal->k);
    for (size_t i = 0; i < n * cols; i++)
        if (isnan(x[i]))
            return lp_err_set(err, LP_EINVAL, "calibrator_predict: input [%zu, %zu] is NaN",
                              i / cols, i % cols);
    switch (cal->kind) {
    case LP_CALIBRATOR_KIND_PLATT:
        for (size_t i = 0; i < n; i++) {
            double z = cal->a * x[i] + cal->b;
            out[i] = z >= 0 ? 1 / (1 + exp(-z)) : exp(z) / (1 + exp(z));
        }
        break;
    case LP_CALIBRATOR_KIND_ISOTONIC:
        for (size_t i = 0; i < n; i++)
            out[i] = iso_eval(cal, x[i]);
        break;
    case LP_CALIBRATOR_KIND_TEMPERATURE:
        for (size_t i = 0; i < n; i++) {
            const double *row = x + i * cols; /* (k); out may alias x, read before write */
            double *o = out + i * cols;
            double mx = row[0], se = 0, inv_t = 1 / cal->a;
            for (size_t c = 1; c < cols; c++)
                mx = row[c] > mx ? row[c] : mx;
            if (isinf(mx)) /* +Inf logit: all mass on the infinite entries */
                for (size_t c = 0; c < cols; c++)
                    se += (o[c] = row[c] == mx ? 1.0 : 0.0);
            else
                for (size_t c = 0; c < cols; c++)
                    se += (o[c] = exp((row[c] - mx) * inv_t));
            for (size_t c = 0; c < cols; c++)
                o[c] /= se;
        }
        break;
    }
    return LP_OK;
}

/* ---- bytes ----------------------------------------------------------------------------------*/
void lp_calibrator_save(const lp_calibrator *cal, lp_buf *b)
{
    lp_buf_put(b, CAL_MAGIC, CAL_MAGIC_LEN);
    lp_buf_u32(b, CAL_VERSION);
    lp_buf_u8(b, (uint8_t)cal->kind);
    lp_buf_u64(b, (uint64_t)cal->k);
    switch (cal->kind) {
    case LP_CALIBRATOR_KIND_PLATT:
        lp_buf_f64(b, cal->a);
        lp_buf_f64(b, cal->b);
        break;
    case LP_CALIBRATOR_KIND_TEMPERATURE:
        lp_buf_f64(b, cal->a);
        break;
    case LP_CALIBRATOR_KIND_ISOTONIC:
        lp_buf_u64(b, (uint64_t)cal->n_knots);
        for (size_t i = 0; i < cal->n_knots; i++) {
            lp_buf_f64(b, cal->kx[i]);
            lp_buf_f64(b, cal->ky[i]);
        }
        break;
    }
}

static lp_status bad(lp_reader *r, lp_calibrator *cal, lp_err *err, const char *what)
{
    lp_calibrator_free(cal);
    return lp_err_set(err, LP_EFORMAT, "%s: calibrator at byte %zu: %s", r->what, r->pos, what);
}

lp_status lp_calibrator_load(lp_reader *r, lp_calibrator **out, lp_err *err)
{
    if (!out || !r)
        return lp_err_set(err, LP_EINVAL, "calibrator_load: NULL argument");
    *out = NULL;
    char magic[CAL_MAGIC_LEN];
    uint32_t version;
    uint8_t kind;
    uint64_t k;
    lp_status st;
    if ((st = lp_reader_get(r, magic, CAL_MAGIC_LEN, err)))
        return st;
    if (memcmp(magic, CAL_MAGIC, CAL_MAGIC_LEN) != 0)
        return bad(r, NULL, err, "bad magic, expected \"LPCAL\"");
    if ((st = lp_reader_u32(r, &version, err)))
        return st;
    if (version != CAL_VERSION)
        return lp_err_set(err, LP_EVERSION, "%s: calibrator format version %u, this build reads %u",
                          r->what, (unsigned)version, CAL_VERSION);
    if ((st = lp_reader_u8(r, &kind, err)) || (st = lp_reader_u64(r, &k, err)))
        return st;
    if (kind < LP_CALIBRATOR_KIND_PLATT || kind > LP_CALIBRATOR_KIND_TEMPERATURE)
        return bad(r, NULL, err, "unknown calibrator kind");
    bool multi = kind == LP_CALIBRATOR_KIND_TEMPERATURE;
    if (multi ? (k < 2 || k > (uint64_t)INT32_MAX) : k != 1)
        return bad(r, NULL, err, "column count does not fit the calibrator kind");
    lp_calibrator *cal = cal_new((lp_calibrator_kind)kind, (size_t)k);
    if (!cal)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
    if (kind == LP_CALIBRATOR_KIND_PLATT) {
        if ((st = lp_reader_f64(r, &cal->a, err)) || (st = lp_reader_f64(r, &cal->b, err))) {
            lp_calibrator_free(cal);
            return st;
        }
        if (!isfinite(cal->a) || !isfinite(cal->b))
            return bad(r, cal, err, "Platt parameters are not finite");
    } else if (multi) {
        if ((st = lp_reader_f64(r, &cal->a, err))) {
            lp_calibrator_free(cal);
            return st;
        }
        if (!(isfinite(cal->a) && cal->a > 0))
            return bad(r, cal, err, "temperature is not a finite positive number");
    } else {
        uint64_t m;
        if ((st = lp_reader_u64(r, &m, err))) {
            lp_calibrator_free(cal);
            return st;
        }
        /* each knot takes 16 bytes: reject counts the input cannot hold before allocating */
        if (m == 0 || m > (r->len - r->pos) / 16)
            return bad(r, cal, err, "isotonic knot count is 0 or exceeds the bytes left");
        cal->kx = lp_mallocarray((size_t)m, 2 * sizeof *cal->kx);
        if (!cal->kx) {
            lp_calibrator_free(cal);
            return lp_err_set(err, LP_ENOMEM, "%s: out of memory for %llu knots", r->what,
                              (unsigned long long)m);
        }
        cal->n_knots = (size_t)m;
        cal->ky = cal->kx + m;
        for (size_t i = 0; i < m; i++) {
            if ((st = lp_reader_f64(r, &cal->kx[i], err)) ||
                (st = lp_reader_f64(r, &cal->ky[i], err))) {
                lp_calibrator_free(cal);
                return st;
            }
            if (!isfinite(cal->kx[i]) || !isfinite(cal->ky[i]))
                return bad(r, cal, err, "isotonic knot is not finite");
            if (i > 0 && !(cal->kx[i] > cal->kx[i - 1] && cal->ky[i] >= cal->ky[i - 1]))
                return bad(r, cal, err, "isotonic knots are not increasing");
        }
    }
    *out = cal;
    return LP_OK;
}

/* ---- label shift ---------------------------------------------------------------------------- */

static lp_status prior_check(const double *q, size_t k, const char *name, lp_err *err)
{
    if (k < 2)
        return lp_err_set(err, LP_EINVAL, "prior shift: %zu classes; expected at least 2", k);
    if (!q)
        return lp_err_set(err, LP_EINVAL, "prior shift: no '%s' prior", name);
    double s = 0;
    for (size_t j = 0; j < k; j++) {
        if (!isfinite(q[j]) || !(q[j] > 0) || q[j] > 1)
            return lp_err_set(err, LP_EINVAL,
                              "prior shift: '%s' prior of class %zu is %g; expected (0, 1]", name,
                              j, q[j]);
        s += q[j];
    }
    if (fabs(s - 1) > 1e-6)
        return lp_err_set(err, LP_EINVAL, "prior shift: '%s' prior sums to %.9g, not 1", name, s);
    return LP_OK;
}

/* One row: out = p * w renormalised (out may alias p). */
static lp_status shift_row(const double *p, size_t i, size_t k, const double *w, double *out,
                           lp_err *err)
{
    double s = 0;
    for (size_t j = 0; j < k; j++) {
        if (!(p[j] >= 0)) /* also NaN */
            return lp_err_set(err, LP_EINVAL, "prior shift: row %zu, class %zu: probability %g",
                              i, j, p[j]);
        s += p[j] * w[j];
    }
    if (!(s > 0) || !isfinite(s))
        return lp_err_set(err, LP_EINVAL, "prior shift: row %zu has no probability mass", i);
    for (size_t j = 0; j < k; j++)
        out[j] = p[j] * w[j] / s;
    return LP_OK;
}

lp_status lp_prior_shift_apply(const double *p, size_t n, size_t k, const double *from,
                               const double *to, double *out, lp_err *err)
{
    lp_status st = prior_check(from, k, "from", err);
    if (!st)
        st = prior_check(to, k, "to", err);
    if (st)
        return st;
    if (n && (!p || !out))
        return lp_err_set(err, LP_EINVAL, "prior shift: no probabilities");
    double *w = malloc(k * sizeof *w);
    if (!w)
        return lp_err_set(err, LP_ENOMEM, "prior shift: out of memory");
    for (size_t j = 0; j < k; j++)
        w[j] = to[j] / from[j];
    for (size_t i = 0; i < n && !st; i++)
        st = shift_row(p + i * k, i, k, w, out + i * k, err);
    free(w);
    return st;
}

lp_status lp_prior_shift_em(const double *p, size_t n, size_t k, const double *from,
                            int max_iter, double tol, double *to, int *iters, lp_err *err)
{
    lp_status st = prior_check(from, k, "from", err);
    if (st)
        return st;
    if (n == 0 || !p || !to)
        return lp_err_set(err, LP_EINVAL, "prior shift: no rows to estimate a class mix from");
    if (max_iter < 1)
        return lp_err_set(err, LP_EINVAL, "prior shift: max_iter is %d; expected >= 1", max_iter);
    double *w = malloc(k * sizeof *w), *row = malloc(k * sizeof *row),
           *acc = malloc(k * sizeof *acc);
    if (!w || !row || !acc)
        st = lp_err_set(err, LP_ENOMEM, "prior shift: out of memory");
    for (size_t j = 0; j < k && !st; j++)
        to[j] = from[j];
    int it = 0;
    while (!st && it < max_iter) {
        it++;
        for (size_t j = 0; j < k; j++)
            w[j] = to[j] / from[j], acc[j] = 0;
        for (size_t i = 0; i < n && !st; i++) {
            st = shift_row(p + i * k, i, k, w, row, err);
            for (size_t j = 0; j < k && !st; j++)
                acc[j] += row[j];
        }
        if (st)
            break;
        double s = 0, moved = 0;
        for (size_t j = 0; j < k; j++)
            acc[j] = fmax(acc[j] / (double)n, 1e-6), s += acc[j];
        for (size_t j = 0; j < k; j++) {
            double v = acc[j] / s;
            moved = fmax(moved, fabs(v - to[j]));
            to[j] = v;
        }
        if (moved <= tol)
            break;
    }
    if (iters)
        *iters = it;
    free(w);
    free(row);
    free(acc);
    return st;
}
