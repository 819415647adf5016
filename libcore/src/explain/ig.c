/*
 * ig.c - integrated gradients for the nn family (Sundararajan, Taly & Yan 2017, "Axiomatic
 * attribution for deep networks", eq. 1 and its Riemann approximation, section 3), here with
 * the trapezoid rule:
 *   phi_i = (x_i - b_i) / m * sum_{s=0..m} c_s dF(b + (s/m)(x - b))/dx_i,  c_0 = c_m = 1/2, else 1,
 * where F = sum_k w_k z_k is the explained combination of the net's raw outputs z (one logit,
 * z_1 - z_0, or y_std z_0 for regression). The m + 1 points of one row go through the net as
 * one batch of lp_nn_input_vjp. Completeness (sum phi = F(x) - F(b)) is exact for a net that is
 * linear along the path, O(1/m^2) for a smooth one and O(1/m) across ReLU kinks (trapezoid
 * error); tests state the tolerance.
 *
 * The nn's gradient pass uses the net's scratch buffers, so the whole call holds the module
 * lock (lp_explain_lock); prediction elsewhere is unaffected.
 */
#include "explain/explain_internal.h"

#include "model/nn.h"

#include <stdlib.h>
#include <string.h>

lp_status lp_ig_rows(const lp_xscorer *s, const float *X, size_t n, const float *b,
                     const float *w_rows, size_t steps, double *phi, double *fx, double *fb,
                     lp_err *err)
{
    if (!s->net)
        return lp_err_set(err, LP_EUNSUPPORTED, "integrated gradients need an nn model");
    size_t d = s->d, k = s->nn_out, S = steps + 1;
    double off = s->task == LP_TASK_REGRESSION ? s->y_mean : 0.0;
    float *path = lp_mallocarray(S, d * sizeof(float));
    float *g = lp_mallocarray(S, d * sizeof(float));
    float *W = lp_mallocarray(S, k * sizeof(float));
    float *z = lp_mallocarray(S, k * sizeof(float));
    if (!path || !g || !W || !z) {
        free(path);
        free(g);
        free(W);
        free(z);
        return lp_err_set(err, LP_ENOMEM, "integrated gradients: out of memory (%zu steps)",
                          steps);
    }
    lp_status st = LP_OK;
    lp_explain_lock();
    for (size_t r = 0; r < n && !st; r++) {
        const float *x = X + r * d, *w = w_rows + r * k;
        /* (S, d): b + (s / m)(x - b) for s = 0..m; (S, k): the output weights */
        for (size_t t = 0; t < S; t++) {
            float a = (float)((double)t / (double)steps);
            for (size_t i = 0; i < d; i++)
                path[t * d + i] = b[i] + a * (x[i] - b[i]);
            memcpy(W + t * k, w, k * sizeof(float));
        }
        st = lp_nn_input_vjp((lp_nn *)s->net, path, S, W, g, z, err);
        if (st)
            break;
        for (size_t i = 0; i < d; i++) {
            double sum = 0.5 * ((double)g[i] + (double)g[steps * d + i]);
            for (size_t t = 1; t < steps; t++)
                sum += g[t * d + i];
            phi[r * d + i] = ((double)x[i] - (double)b[i]) * sum / (double)steps;
        }
        double f0 = off, f1 = off;
        for (size_t c = 0; c < k; c++) {
            f0 += (double)w[c] * z[c];
            f1 += (double)w[c] * z[steps * k + c];
        }
        if (fb)
            fb[r] = f0;
        if (fx)
            fx[r] = f1;
    }
    lp_explain_unlock();
    free(path);
    free(g);
    free(W);
    free(z);
    return st;
}
