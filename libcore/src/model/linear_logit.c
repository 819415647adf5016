/*
 * linear_logit.c - logistic regression: the weighted log-loss objective and its gradient
 * (binary sigmoid or multinomial softmax), an L-BFGS solver for the L2 / unpenalised problem
 * and FISTA with adaptive restart for the L1 problem.
 *
 * Parameters are one vector theta = [W^T (d, k_out) row-major, b (k_out,)] (b only with an
 * intercept), in double: feature-major, so a nonzero x_ij touches k_out contiguous doubles
 * (the class-major layout made every nonzero a cache miss per class, ~10x slower on TF-IDF).
 * The solvers transpose to the model's W (k_out, d) at the end. The loss is summed in double
 * over rows; with more than one thread each thread accumulates its own gradient and the blocks
 * are added at the end (OpenMP over rows, only when the work pays for a team). Neither solver
 * allocates per iteration except the per-thread gradient blocks of a parallel evaluation.
 *
 * References: Nocedal & Wright, Numerical Optimization (2006), Alg. 7.4 (L-BFGS two-loop
 * recursion) and 3.1 (backtracking); Beck & Teboulle (2009) FISTA; O'Donoghue & Candes
 * (2015) adaptive restart.
 */
#include "model/linear.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Below this many multiply-adds per evaluation, a thread team costs more than it saves. */
#define LOGIT_PARALLEL_MIN_WORK 400000u

/* Softplus log(1 + e^z) without overflow. */
static inline double softplus(double z)
{
    return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
}

/* z (k,) += v * wt_j (k,): the inner loop runs over classes, contiguous in the (d, k) layout */
static inline void axpy_k(double *restrict z, double v, const double *restrict wt, size_t k)
{
#pragma omp simd
    for (size_t c = 0; c < k; c++)
        z[c] += v * wt[c];
}

/* Loss of row i with weight si; adds si * dloss/dtheta into g when g is non-NULL.
 * theta = [W^T (d, k_out), b (k_out,)]; z (k_out,) is scratch. */
static double row_loss(const lp_design *x, size_t i, int32_t label, double si, size_t k_out,
                       bool fi, const double *theta, double *g, double *z)
{
    size_t d = x->cols;
    const double *b = theta + k_out * d;
    for (size_t c = 0; c < k_out; c++)
        z[c] = fi ? b[c] : 0.0;
    if (x->dense) {
        const float *r = x->dense + i * d;
        for (size_t j = 0; j < d; j++)
            if (r[j] != 0)
                axpy_k(z, r[j], theta + j * k_out, k_out);
    } else {
        for (size_t p = x->indptr[i]; p < x->indptr[i + 1]; p++)
            axpy_k(z, x->values[p], theta + (size_t)x->indices[p] * k_out, k_out);
    }
    double loss;
    if (k_out == 1) {
        /* labels 0/1: loss = softplus(z) - y z, dloss/dz = sigma(z) - y */
        double y = label == 1 ? 1.0 : 0.0;
        loss = softplus(z[0]) - y * z[0];
        if (g) {
            double p = z[0] >= 0 ? 1.0 / (1.0 + exp(-z[0])) : exp(z[0]) / (1.0 + exp(z[0]));
            z[0] = si * (p - y);
        }
    } else {
        /* loss = logsumexp(z) - z_y with the max subtracted; dloss/dz = softmax(z) - e_y */
        double mx = z[0], sum = 0;
        for (size_t c = 1; c < k_out; c++)
            mx = z[c] > mx ? z[c] : mx;
        double zy = z[label];
        for (size_t c = 0; c < k_out; c++)
            sum += (z[c] = exp(z[c] - mx));
        loss = mx + log(sum) - zy;
        if (g) {
            double inv = si / sum;
            for (size_t c = 0; c < k_out; c++)
                z[c] *= inv;
            z[label] -= si;
        }
    }
    if (g) {
        if (x->dense) {
            const float *r = x->dense + i * d;
            for (size_t j = 0; j < d; j++)
                if (r[j] != 0)
                    axpy_k(g + j * k_out, r[j], z, k_out);
        } else {
            for (size_t p = x->indptr[i]; p < x->indptr[i + 1]; p++)
                axpy_k(g + (size_t)x->indices[p] * k_out, x->values[p], z, k_out);
        }
        if (fi)
            axpy_k(g + k_out * d, 1.0, z, k_out);
    }
    return si * loss;
}

double lp_linear_logistic_objective(const lp_design *x, const int32_t *labels, const double *s,
                                    size_t k_out, bool fit_intercept, double l2,
                                    const double *theta, double *grad, int threads)
{
    size_t n = x->rows, d = x->cols;
    size_t np = k_out * d + (fit_intercept ? k_out : 0);
    size_t nnz = x->dense ? n * d : x->indptr[n];
    int nt = threads > 0 ? threads : omp_get_max_threads();
    if (grad)
        memset(grad, 0, np * sizeof(double));
    double f = 0;
    bool failed = false;
    if (nt <= 1 || (double)nnz * (double)k_out < LOGIT_PARALLEL_MIN_WORK || n < 2 * (size_t)nt) {
        double zs[64], *z = k_out <= 64 ? zs : lp_mallocarray(k_out, sizeof(double));
        if (!z)
            return NAN;
        for (size_t i = 0; i < n; i++)
            f += row_loss(x, i, labels[i], s[i], k_out, fit_intercept, theta, grad, z);
        if (z != zs)
            free(z);
    } else {
#pragma omp parallel num_threads(nt) reduction(+ : f)
        {
            double *lg = grad ? lp_calloc(np, sizeof(double)) : NULL;
            double *z = lp_mallocarray(k_out, sizeof(double));
            bool ok = z && (!grad || lg);
            if (!ok) {
#pragma omp atomic write
                failed = true;
            }
#pragma omp for schedule(static)
            for (size_t i = 0; i < n; i++)
                if (ok)
                    f += row_loss(x, i, labels[i], s[i], k_out, fit_intercept, theta, lg, z);
            if (ok && grad) {
#pragma omp critical(lp_linear_grad_sum)
                for (size_t q = 0; q < np; q++)
                    grad[q] += lg[q];
            }
            free(lg);
            free(z);
        }
    }
    if (failed)
        return NAN;
    if (l2 > 0) {
        double sq = 0;
        for (size_t q = 0; q < k_out * d; q++) {
            sq += theta[q] * theta[q];
            if (grad)
                grad[q] += l2 * theta[q];
        }
        f += 0.5 * l2 * sq;
    }
    return f;
}

/* W^T (d, k) of the solver's layout to the model's W (k, d). */
static void transpose_out(const double *wt, size_t d, size_t k, double *w)
{
    for (size_t j = 0; j < d; j++)
        for (size_t c = 0; c < k; c++)
            w[c * d + j] = wt[j * k + c];
}

/* The vector helpers below carry `omp simd` (vectorised, reduction order changed): the
 * L-BFGS bookkeeping on k * d parameters costs as much as a pass over the data otherwise. */
static double dot(const double *a, const double *b, size_t n)
{
    double acc = 0;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < n; i++)
        acc += a[i] * b[i];
    return acc;
}

static double max_abs(const double *a, size_t n)
{
    double m = 0;
#pragma omp simd reduction(max : m)
    for (size_t i = 0; i < n; i++)
        m = m > fabs(a[i]) ? m : fabs(a[i]);
    return m;
}

/* y += a x */
static void axpy(double *restrict y, double a, const double *restrict x, size_t n)
{
#pragma omp simd
    for (size_t i = 0; i < n; i++)
        y[i] += a * x[i];
}

/* The L-BFGS pairs are kept in float (half the memory traffic of the two-loop recursion, which
 * on TF-IDF-sized problems streams 2 m vectors of k * d parameters twice per iteration); the
 * direction and the products stay in double. */
static double dot_f(const float *a, const double *b, size_t n)
{
    double acc = 0;
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < n; i++)
        acc += (double)a[i] * b[i];
    return acc;
}

/* y += a x, and return next . y (the new y) in the same pass; next may be NULL */
static double axpy_f_dot(double *restrict y, double a, const float *restrict x,
                         const float *restrict next, size_t n)
{
    double acc = 0;
    if (!next) {
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            y[i] += a * (double)x[i];
        return 0;
    }
#pragma omp simd reduction(+ : acc)
    for (size_t i = 0; i < n; i++) {
        y[i] += a * (double)x[i];
        acc += (double)next[i] * y[i];
    }
    return acc;
}

lp_status lp_linear_solve_lbfgs(const lp_linear_opts *o, const lp_design *x,
                                const int32_t *labels, const double *s, size_t k_out,
                                lp_linear_fit_out *fo, lp_err *err)
{
    size_t d = x->cols, np = k_out * d + (o->fit_intercept ? k_out : 0);
    size_t m = (size_t)o->lbfgs_memory;
    double l2 = o->penalty == LP_LINEAR_PENALTY_L2 ? 1.0 / o->C : 0.0;
    /* one block: theta, g, dir, theta_new, g_new, rho (m), alpha (m), y.y (m); the pairs
     * S (m, np), Y (m, np) in float */
    double *blk = lp_calloc(np * 5 + 3 * m, sizeof(double));
    float *pairs = lp_calloc(2 * m * np, sizeof(float));
    if (!blk || !pairs) {
        free(blk);
        free(pairs);
        return lp_err_set(err, LP_ENOMEM, "logistic lbfgs: out of memory for %zu parameters",
                          np);
    }
    double *th = blk, *g = th + np, *dir = g + np, *thn = dir + np, *gn = thn + np;
    double *rho = gn + np, *al = rho + m, *yys = al + m;
    float *S = pairs, *Y = S + m * np;
    size_t hist = 0, head = 0; /* number of stored pairs, index of the oldest */
    lp_status st = LP_OK;
    double f = lp_linear_logistic_objective(x, labels, s, k_out, o->fit_intercept, l2, th, g,
                                            o->threads);
    fo->converged = false;
    int it;
    for (it = 0; it < o->max_iter; it++) {
        if (!isfinite(f)) {
            st = lp_err_set(err, LP_ENUMERIC, "logistic lbfgs: objective is %g at iteration %d",
                            f, it);
            goto done;
        }
        double gmax = max_abs(g, np);
        if (gmax <= o->tol) {
            fo->converged = true;
            break;
        }
        /* two-loop recursion: dir = -H g, H0 = (s.y / y.y) I from the newest pair */
        for (size_t q = 0; q < np; q++)
            dir[q] = -g[q];
        /* each update of dir also takes the next pair's product with the new dir */
        if (hist) {
            size_t slot = (head + hist - 1) % m;
            double sd = dot_f(S + slot * np, dir, np);
            for (size_t t = hist; t-- > 0;) {
                slot = (head + t) % m;
                al[slot] = rho[slot] * sd;
                const float *nx = t ? S + ((head + t - 1) % m) * np : NULL;
                sd = axpy_f_dot(dir, -al[slot], Y + slot * np, nx, np);
            }
            size_t nw = (head + hist - 1) % m;
            double gamma = 1.0 / (rho[nw] * yys[nw]); /* s.y / y.y */
            slot = head % m;
            double yd = 0;
            const float *y0 = Y + slot * np;
#pragma omp simd reduction(+ : yd)
            for (size_t q = 0; q < np; q++) {
                dir[q] *= gamma;
                yd += (double)y0[q] * dir[q];
            }
            for (size_t t = 0; t < hist; t++) {
                slot = (head + t) % m;
                double beta = rho[slot] * yd;
                const float *nx = t + 1 < hist ? Y + ((head + t + 1) % m) * np : NULL;
                yd = axpy_f_dot(dir, al[slot] - beta, S + slot * np, nx, np);
            }
        }
        double gd = dot(g, dir, np);
        if (!(gd < 0)) {
            /* not a descent direction (numerical trouble): restart from steepest descent */
            hist = 0;
            for (size_t q = 0; q < np; q++)
                dir[q] = -g[q];
            gd = dot(g, dir, np);
        }
        /* first step of steepest descent is scaled to unit length, as in L-BFGS-B */
        double step = hist ? 1.0 : fmin(1.0, 1.0 / sqrt(-gd));
        double fn = f;
        bool accepted = false;
        for (int ls = 0; ls < 60; ls++) {
            memcpy(thn, th, np * sizeof(double));
            axpy(thn, step, dir, np);
            fn = lp_linear_logistic_objective(x, labels, s, k_out, o->fit_intercept, l2, thn, gn,
                                              o->threads);
            if (isfinite(fn)) {
                /* Armijo; or, once f differences are at rounding level, a step that still
                 * reduces the directional derivative (near the optimum f cannot resolve the
                 * progress that the gradient tolerance asks for) */
                double gdn = dot(gn, dir, np);
                if (fn <= f + 1e-4 * step * gd ||
                    (fn - f <= 1e-13 * fmax(1.0, fabs(f)) && fabs(gdn) <= 0.9 * fabs(gd))) {
                    accepted = true;
                    break;
                }
            }
            step *= 0.5;
        }
        if (!accepted)
            break; /* no progress possible at this precision: stop, converged stays false */
        /* store the pair (s, y) unless curvature is not positive */
        size_t slot = hist < m ? (head + hist) % m : head;
        float *sv = S + slot * np, *yv = Y + slot * np;
        double sy = 0, yy = 0;
#pragma omp simd reduction(+ : sy, yy)
        for (size_t q = 0; q < np; q++) {
            sv[q] = (float)(thn[q] - th[q]);
            yv[q] = (float)(gn[q] - g[q]);
            sy += (double)sv[q] * yv[q];
            yy += (double)yv[q] * yv[q];
        }
        if (sy > 1e-12 * yy) {
            rho[slot] = 1.0 / sy;
            yys[slot] = yy;
            if (hist < m)
                hist++;
            else
                head = (head + 1) % m;
        } else if (hist == m) { /* the slot held the oldest pair, now overwritten: drop it */
            head = (head + 1) % m;
            hist--;
        }
        memcpy(th, thn, np * sizeof(double));
        memcpy(g, gn, np * sizeof(double));
        f = fn;
    }
    fo->n_iter = it;
    transpose_out(th, d, k_out, fo->coef);
    if (o->fit_intercept)
        memcpy(fo->intercept, th + k_out * d, k_out * sizeof(double));
done:
    free(blk);
    free(pairs);
    return st;
}

/* prox of t * lam * ||W||_1 (soft threshold), intercepts untouched. */
static void prox_l1(double *v, size_t nw, double thr)
{
    for (size_t q = 0; q < nw; q++)
        v[q] = v[q] > thr ? v[q] - thr : v[q] < -thr ? v[q] + thr : 0.0;
}

lp_status lp_linear_solve_fista(const lp_linear_opts *o, const lp_design *x,
                                const int32_t *labels, const double *s, size_t k_out,
                                lp_linear_fit_out *fo, lp_err *err)
{
    size_t d = x->cols, nw = k_out * d, np = nw + (o->fit_intercept ? k_out : 0);
    double lam = 1.0 / o->C; /* objective / C: sum s logloss + (1/C) ||W||_1 */
    double *blk = lp_calloc(4 * np, sizeof(double));
    if (!blk)
        return lp_err_set(err, LP_ENOMEM, "logistic fista: out of memory for %zu parameters",
                          np);
    double *xk = blk, *yk = xk + np, *gy = yk + np, *xn = gy + np;
    double L = 1.0, t = 1.0;
    lp_status st = LP_OK;
    fo->converged = false;
    int it;
    for (it = 0; it < o->max_iter; it++) {
        double fy = lp_linear_logistic_objective(x, labels, s, k_out, o->fit_intercept, 0.0, yk,
                                                 gy, o->threads);
        if (!isfinite(fy)) {
            st = lp_err_set(err, LP_ENUMERIC, "logistic fista: objective is %g at iteration %d",
                            fy, it);
            goto done;
        }
        /* backtracking on the Lipschitz estimate L: the quadratic model at yk must majorise
         * the smooth loss at the prox step */
        double fx = fy, quad = 0;
        for (int bt = 0; bt < 80; bt++) {
            for (size_t q = 0; q < np; q++)
                xn[q] = yk[q] - gy[q] / L;
            prox_l1(xn, nw, lam / L);
            double lin = 0, sq = 0;
            for (size_t q = 0; q < np; q++) {
                double dq = xn[q] - yk[q];
                lin += gy[q] * dq;
                sq += dq * dq;
            }
            fx = lp_linear_logistic_objective(x, labels, s, k_out, o->fit_intercept, 0.0, xn,
                                              NULL, o->threads);
            quad = fy + lin + 0.5 * L * sq;
            if (isfinite(fx) && fx <= quad + 1e-12 * fmax(1.0, fabs(fy)))
                break;
            L *= 2.0;
        }
        /* optimality: the gradient mapping L (yk - xn) vanishes exactly at the minimiser */
        double gm = 0;
        for (size_t q = 0; q < np; q++)
            gm = fmax(gm, L * fabs(yk[q] - xn[q]));
        /* adaptive restart: momentum is dropped when it points uphill */
        double up = 0;
        for (size_t q = 0; q < np; q++)
            up += (yk[q] - xn[q]) * (xn[q] - xk[q]);
        double tn = up > 0 ? 1.0 : 0.5 * (1.0 + sqrt(1.0 + 4.0 * t * t));
        double mom = up > 0 ? 0.0 : (t - 1.0) / tn;
        for (size_t q = 0; q < np; q++) {
            double v = xn[q] + mom * (xn[q] - xk[q]);
            xk[q] = xn[q];
            yk[q] = v;
        }
        t = tn;
        if (gm <= o->tol) {
            fo->converged = true;
            it++;
            break;
        }
        /* let the step grow again after a conservative backtrack */
        L *= 0.95;
    }
    fo->n_iter = it;
    transpose_out(xk, d, k_out, fo->coef);
    if (o->fit_intercept)
        memcpy(fo->intercept, xk + nw, k_out * sizeof(double));
done:
    free(blk);
    return st;
}
