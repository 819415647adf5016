/*
 * nn_adv.c - adversarial examples (FGSM, PGD) and adversarial training for the nn family
 * (nn.h, "adversarial examples and training").
 *
 * The attacks need only two public operations of the net: the raw outputs z of a batch
 * (lp_nn_predict_raw) and the vector-Jacobian product of z with dL/dz (lp_nn_input_vjp), so
 * they run on any backend the net uses. Adversarial training reuses lp_nn_train_step on the
 * doubled batch [clean; adversarial], so the optimizer, schedule, clipping and NaN checks are
 * exactly those of lp_nn_train.
 *
 * Invariants: every attacked row stays within eps (L-inf) of its clean row; the same net,
 * data, options and seed give the same adversarial rows and the same trained weights.
 */
#include "model/nn_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

lp_nn_attack_opts lp_nn_attack_opts_default(void)
{
    lp_nn_attack_opts o = {LP_NN_ATTACK_FGSM, 0.1, 10, 0.0, true, 0};
    return o;
}

lp_status lp_nn_attack_opts_check(const lp_nn_attack_opts *o, lp_err *err)
{
    if (!o)
        return lp_err_set(err, LP_EINVAL, "attack: options are NULL");
    if (o->method != LP_NN_ATTACK_FGSM && o->method != LP_NN_ATTACK_PGD)
        return lp_err_set(err, LP_EINVAL, "attack: method %d: expected fgsm or pgd",
                          (int)o->method);
    if (!(o->eps > 0.0) || !isfinite(o->eps))
        return lp_err_set(err, LP_EINVAL, "attack: eps=%g: must be a finite number > 0", o->eps);
    if (o->method == LP_NN_ATTACK_PGD && (o->steps < 1 || o->steps > 1000))
        return lp_err_set(err, LP_EINVAL, "attack: steps=%d: must be an integer in [1, 1000]",
                          o->steps);
    if (!(o->step_size >= 0.0) || !isfinite(o->step_size))
        return lp_err_set(err, LP_EINVAL,
                          "attack: step_size=%g: must be a finite number >= 0 (0 = 2.5 eps / "
                          "steps)", o->step_size);
    return LP_OK;
}

const char *lp_nn_attack_name(lp_nn_attack a)
{
    return a == LP_NN_ATTACK_PGD ? "pgd" : "fgsm";
}

lp_status lp_nn_attack_parse(const char *s, lp_nn_attack *out, lp_err *err)
{
    if (s && !strcmp(s, "fgsm")) {
        *out = LP_NN_ATTACK_FGSM;
        return LP_OK;
    }
    if (s && !strcmp(s, "pgd")) {
        *out = LP_NN_ATTACK_PGD;
        return LP_OK;
    }
    return lp_err_set(err, LP_EINVAL, "attack method '%s': expected fgsm or pgd", s ? s : "");
}

/* dz (n, n_out) = dL/dz of the loss at raw outputs z (n, n_out) for labels y, each row up to a
 * positive factor (only the sign of the input gradient is used). */
static void loss_dz(const lp_nn *m, const float *z, const float *y, size_t n, float *dz)
{
    size_t k = m->n_out;
    for (size_t i = 0; i < n; i++) {
        const float *zi = z + i * k;
        float *g = dz + i * k;
        if (m->o.loss == LP_NN_LOSS_SOFTMAX_XENT) {
            double mx = zi[0], s = 0.0;
            for (size_t c = 1; c < k; c++)
                mx = zi[c] > mx ? zi[c] : mx;
            for (size_t c = 0; c < k; c++)
                s += exp((double)zi[c] - mx);
            for (size_t c = 0; c < k; c++)
                g[c] = (float)(exp((double)zi[c] - mx) / s);
            g[(size_t)y[i]] -= 1.0f;
        } else if (m->o.loss == LP_NN_LOSS_BCE) {
            g[0] = (float)(1.0 / (1.0 + exp(-(double)zi[0]))) - y[i];
        } else {
            for (size_t c = 0; c < k; c++)
                g[c] = zi[c] - y[i * k + c];
        }
    }
}

static float sgnf(float v) { return v > 0.0f ? 1.0f : v < 0.0f ? -1.0f : 0.0f; }

lp_status lp_nn_attack_rows(lp_nn *m, const lp_nn_attack_opts *a, const float *X,
                            const float *y, size_t n, uint64_t stream, float *Xadv, lp_err *err)
{
    if (!m || !X || !y || !Xadv)
        return lp_err_set(err, LP_EINVAL, "attack: net, X, y or Xadv is NULL");
    lp_status st = lp_nn_attack_opts_check(a, err);
    if (st || n == 0)
        return st;
    size_t d = m->d, k = m->n_out;
    for (size_t i = 0; i < n && m->o.loss == LP_NN_LOSS_SOFTMAX_XENT; i++)
        if (!(y[i] >= 0.0f && y[i] < (float)k) || y[i] != floorf(y[i]))
            return lp_err_set(err, LP_EINVAL, "attack: label of row %zu is %g, expected a class "
                              "index in [0, %zu]", i, (double)y[i], k - 1);
    float *x0 = lp_mallocarray(n * d, sizeof(float));
    float *g = lp_mallocarray(n * d, sizeof(float));
    float *z = lp_mallocarray(n * k, sizeof(float));
    float *dz = lp_mallocarray(n * k, sizeof(float));
    if (!x0 || !g || !z || !dz) {
        st = lp_err_set(err, LP_ENOMEM, "attack: out of memory for %zu rows", n);
        goto done;
    }
    memcpy(x0, X, n * d * sizeof(float));
    memcpy(Xadv, X, n * d * sizeof(float));
    float eps = (float)a->eps;
    int iters = 1;
    float alpha = eps;
    if (a->method == LP_NN_ATTACK_PGD) {
        iters = a->steps;
        alpha = a->step_size > 0 ? (float)a->step_size : (float)(2.5 * a->eps / a->steps);
        if (a->random_start) {
            lp_rng rng;
            lp_rng_seed(&rng, a->seed ^ (stream * 0x9E3779B97F4A7C15ull) ^ 0xA5A5F00Dull);
            for (size_t i = 0; i < n * d; i++)
                Xadv[i] = x0[i] + eps * (float)(2.0 * lp_rng_uniform(&rng) - 1.0);
        }
    }
    for (int t = 0; t < iters && !st; t++) {
        st = lp_nn_predict_raw(m, Xadv, n, z, err);
        if (st)
            break;
        loss_dz(m, z, y, n, dz);
        st = lp_nn_input_vjp(m, Xadv, n, dz, g, NULL, err);
        for (size_t i = 0; !st && i < n * d; i++) {
            float v = Xadv[i] + alpha * sgnf(g[i]);
            float lo = x0[i] - eps, hi = x0[i] + eps;
            Xadv[i] = v < lo ? lo : v > hi ? hi : v;
        }
    }
done:
    free(x0);
    free(g);
    free(z);
    free(dz);
    return st;
}

/* Mean clean loss over the validation rows (eval mode). */
static lp_status valid_loss(lp_nn *m, const float *Xv, const float *yv, size_t nv, double *out,
                            lp_err *err)
{
    return lp_nn_loss_grad(m, Xv, yv, nv, false, out, NULL, err);
}

lp_status lp_nn_train_adversarial(lp_nn *m, const lp_nn_attack_opts *a, const float *X,
                                  const float *y, size_t n, const float *X_valid,
                                  const float *y_valid, size_t n_valid, lp_err *err)
{
    if (!m || !X || !y || n == 0)
        return lp_err_set(err, LP_EINVAL, "nn adversarial training: no training rows");
    lp_status st = lp_nn_attack_opts_check(a, err);
    if (st)
        return st;
    if (m->o.patience > 0 && n_valid == 0)
        return lp_err_set(err, LP_EINVAL, "nn: patience=%d: early stopping needs a validation set",
                          m->o.patience);
    size_t d = m->d, ky = m->o.loss == LP_NN_LOSS_MSE ? m->n_out : 1;
    size_t bs = (size_t)m->o.batch_size < n ? (size_t)m->o.batch_size : n;
    size_t per_epoch = (n + bs - 1) / bs;
    long saved_total = m->o.total_steps;
    if (m->o.schedule == LP_NN_SCHED_COSINE && m->o.total_steps == 0)
        m->o.total_steps = (long)((uint64_t)m->o.epochs * per_epoch);
    size_t *idx = lp_mallocarray(n, sizeof *idx);
    float *xb = lp_mallocarray(2 * bs * d, sizeof(float));
    float *yb = lp_mallocarray(2 * bs * ky, sizeof(float));
    size_t np = lp_nn_n_params(m);
    float *best = n_valid && m->o.patience > 0 ? lp_mallocarray(np, sizeof(float)) : NULL;
    if (!idx || !xb || !yb || (n_valid && m->o.patience > 0 && !best)) {
        st = lp_err_set(err, LP_ENOMEM, "nn adversarial training: out of memory");
        goto done;
    }
    lp_rng rng;
    lp_rng_seed(&rng, m->o.seed ^ 0xAD5E55A1ull ^ (m->step * 0x9E3779B97F4A7C15ull));
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    m->best_valid = NAN;
    m->best_epoch = 0;
    m->n_hist = 0;
    lp_progress *prog = lp_progress_begin("nn adversarial train",
                                          (uint64_t)m->o.epochs * per_epoch);
    for (int e = 0; e < m->o.epochs && !st; e++) {
        if (m->o.shuffle)
            lp_rng_shuffle_idx(&rng, idx, n);
        double sum = 0.0;
        for (size_t b = 0; b < per_epoch && !st; b++) {
            size_t r0 = b * bs, nb = n - r0 < bs ? n - r0 : bs;
            /* (2 nb, d): rows [0, nb) clean, [nb, 2 nb) their adversarial copies */
            for (size_t r = 0; r < nb; r++) {
                size_t i = idx[r0 + r];
                memcpy(xb + r * d, X + i * d, d * sizeof(float));
                memcpy(yb + r * ky, y + i * ky, ky * sizeof(float));
                memcpy(yb + (nb + r) * ky, y + i * ky, ky * sizeof(float));
            }
            st = lp_nn_attack_rows(m, a, xb, yb, nb, m->step, xb + nb * d, err);
            double l = 0.0;
            if (!st)
                st = lp_nn_train_step(m, xb, yb, 2 * nb, &l, err);
            sum += l * (double)nb;
            lp_progress_update(prog, (uint64_t)e * per_epoch + b + 1);
        }
        if (st)
            break;
        m->epochs_run = (size_t)e + 1;
        if (!n_valid) {
            lp_log_debug("nn adversarial epoch %d: mixed loss %.6f", e + 1, sum / (double)n);
            continue;
        }
        double vl;
        st = valid_loss(m, X_valid, y_valid, n_valid, &vl, err);
        if (st)
            break;
        lp_log_debug("nn adversarial epoch %d: mixed loss %.6f, clean valid loss %.6f", e + 1,
                     sum / (double)n, vl);
        if (isnan(m->best_valid) || vl < m->best_valid) {
            m->best_valid = vl;
            m->best_epoch = (size_t)e + 1;
            if (best)
                st = lp_nn_get_params(m, best, np, err);
        } else if (m->o.patience > 0 && (size_t)e + 1 - m->best_epoch >= (size_t)m->o.patience) {
            break;
        }
    }
    lp_progress_end(prog);
    if (!st && best && m->best_epoch > 0 && m->best_epoch < m->epochs_run) {
        uint64_t steps = m->step;
        st = lp_nn_set_params(m, best, np, err);
        m->step = steps;
    }
done:
    m->o.total_steps = saved_total;
    free(idx);
    free(xb);
    free(yb);
    free(best);
    return st;
}
