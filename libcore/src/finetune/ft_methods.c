/*
 * ft_methods.c - fine-tuning that gives a new model file: head-only and full fine-tuning of
 * an nn (ft_net_train), continued boosting of a gbdt (lp_gbdt_fit_continue: new trees fitted
 * from the base's raw scores, appended to its trees), and warm-started linear / logistic
 * models with an L2 pull towards the base weights:
 *   linear:   min_w,b  1/(2n) ||y - X w - b||^2 + (lambda/2) ||w - w0||^2, solved exactly:
 *             (Xc^T Xc / n + lambda I) w = Xc^T yc / n + lambda w0 on centered data,
 *             b = mean(y) - mean(X) w (the intercept is not pulled);
 *   logistic: min_W,b  1/n sum_i CE(softmax(W x_i + b), y_i) + (lambda/2) ||W - W0||^2
 *             (sigmoid for binary), by Nesterov-accelerated gradient descent from (W0, b0)
 *             with step 1/L, L = ||[X 1]||_2^2 / (2n) + lambda (a bound on the Hessian).
 * The result keeps the base's schema, cleaner, pipeline and extra sections; only the "model"
 * section and the header's "finetune" entry change.
 */
#include "finetune/ft_internal.h"
#include "model/family.h"
#include "model/gbdt.h"
#include "model/linear.h"

#include <cjson/cJSON.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static lp_status check_method(const lp_model *base, lp_finetune_method m, lp_err *err)
{
    lp_model_kind k = lp_model_get_kind(base);
    bool ok = ((m == LP_FINETUNE_METHOD_HEAD || m == LP_FINETUNE_METHOD_FULL ||
                m == LP_FINETUNE_METHOD_LORA) && k == LP_MODEL_KIND_NN) ||
              (m == LP_FINETUNE_METHOD_BOOST && k == LP_MODEL_KIND_GBDT) ||
              (m == LP_FINETUNE_METHOD_WARM &&
               (k == LP_MODEL_KIND_LINEAR || k == LP_MODEL_KIND_LOGISTIC));
    if (ok)
        return LP_OK;
    const char *fits = k == LP_MODEL_KIND_NN     ? "lora, head or full"
                       : k == LP_MODEL_KIND_GBDT ? "boost"
                                                 : "warm";
    return lp_err_set(err, LP_EUNSUPPORTED, "finetune: method %s does not apply to a %s model "
                      "(use %s)", lp_finetune_method_name(m), lp_model_kind_name(k), fits);
}

/* ---- nn: head, full ------------------------------------------------------------------------*/

static lp_status tune_nn(const lp_lpm *lpm, const void *blob, size_t len, const float *X,
                         const float *y, size_t n, const lp_finetune_opts *o, lp_buf *out,
                         lp_finetune_stats *stats, lp_err *err)
{
    ft_net *net = NULL;
    lp_status st = ft_net_from_blob(blob, len, &net, err);
    (void)lpm;
    if (!st)
        st = ft_net_train(net, NULL, o->method == LP_FINETUNE_METHOD_HEAD ? FT_MODE_HEAD
                                                                          : FT_MODE_FULL,
                          X, y, n, o, stats, err);
    if (!st)
        st = ft_net_to_blob(net, out, err);
    ft_net_free(net);
    return st;
}

/* ---- gbdt: continued boosting --------------------------------------------------------------*/

static double header_param(const lp_model *base, const char *key, double def)
{
    cJSON *h = cJSON_Parse(lp_model_header(base));
    cJSON *p = h ? cJSON_GetObjectItemCaseSensitive(h, "params") : NULL;
    cJSON *v = p ? cJSON_GetObjectItemCaseSensitive(p, key) : NULL;
    double out = def;
    if (cJSON_IsNumber(v))
        out = v->valuedouble;
    else if (cJSON_IsString(v))
        out = strtod(v->valuestring, NULL);
    cJSON_Delete(h);
    return isfinite(out) ? out : def;
}

static lp_status tune_gbdt(const lp_model *base, const float *X, const float *y, size_t n,
                           size_t d, const lp_finetune_opts *o, lp_buf *out,
                           lp_finetune_stats *stats, lp_err *err)
{
    const lp_gbdt *g = lp_model_impl(base);
    lp_gbdt_opts go = lp_gbdt_opts_default();
    go.loss = lp_gbdt_loss_of(g);
    go.n_classes = go.loss == LP_GBDT_LOSS_SOFTMAX ? (int)lp_gbdt_n_outputs(g) : 0;
    go.n_rounds = o->rounds;
    go.learning_rate = (float)(o->lr > 0 ? fmin(o->lr, 1.0) : header_param(base,
                                                                          "learning_rate", 0.1));
    go.max_leaves = (int)header_param(base, "max_leaves", go.max_leaves);
    go.max_depth = (int)header_param(base, "max_depth", go.max_depth);
    go.max_bins = (int)header_param(base, "max_bins", go.max_bins);
    go.lambda = (float)header_param(base, "lambda", go.lambda);
    go.min_child_weight = (float)header_param(base, "min_child_weight", go.min_child_weight);
    go.seed = o->seed;
    uint64_t t0 = lp_time_ns();
    lp_gbdt *m = NULL;
    lp_status st = lp_gbdt_fit_continue(g, X, y, NULL, n, d, &go, NULL, NULL, 0, &m, err);
    if (stats) {
        stats->train_seconds = lp_time_since(t0);
        stats->n_train = n;
        stats->trainable = 0;
        stats->peak_bytes = 0;
    }
    if (!st)
        st = lp_gbdt_save(m, out, err);
    lp_gbdt_free(m);
    return st;
}

/* ---- linear / logistic: warm start with an L2 pull -----------------------------------------*/

#define LIN_HEAD_BYTES 57 /* lp_linear_save's fields before coef (linear.h) */

static lp_status warm_regression(const float *X, const float *y, size_t n, size_t d,
                                 bool intercept, double lambda, const float *w0, float *w,
                                 float *b, lp_err *err)
{
    double *M = lp_calloc(d * d, sizeof *M), *rhs = lp_calloc(d, sizeof *rhs);
    double *xm = lp_calloc(d, sizeof *xm), *xc = lp_calloc(d, sizeof *xc);
    lp_status st = LP_OK;
    if (!M || !rhs || !xm || !xc) {
        st = lp_err_set(err, LP_ENOMEM, "finetune warm: out of memory (%zu features)", d);
        goto done;
    }
    double ym = 0;
    if (intercept) {
        for (size_t i = 0; i < n; i++) {
            ym += y[i];
            for (size_t j = 0; j < d; j++)
                xm[j] += X[i * d + j];
        }
        ym /= (double)n;
        for (size_t j = 0; j < d; j++)
            xm[j] /= (double)n;
    }
    /* M = Xc^T Xc / n (upper triangle), rhs = Xc^T yc / n */
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < d; j++)
            xc[j] = X[i * d + j] - xm[j];
        double yc = y[i] - ym;
        for (size_t j = 0; j < d; j++) {
            rhs[j] += xc[j] * yc / (double)n;
            for (size_t k = j; k < d; k++)
                M[j * d + k] += xc[j] * xc[k] / (double)n;
        }
    }
    for (size_t j = 0; j < d; j++) {
        M[j * d + j] += lambda;
        rhs[j] += lambda * w0[j];
    }
    lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'U', (lapack_int)d, 1, M, (lapack_int)d,
                                    rhs, 1);
    if (info != 0) {
        st = lp_err_set(err, LP_ENUMERIC, "finetune warm: the system X^T X / n + lambda I is "
                        "singular (lambda=%g, %zu rows, %zu features): use lambda > 0", lambda,
                        n, d);
        goto done;
    }
    double bb = ym;
    for (size_t j = 0; j < d; j++) {
        w[j] = (float)rhs[j];
        bb -= xm[j] * rhs[j];
    }
    *b = intercept ? (float)bb : 0.0f;
done:
    free(M);
    free(rhs);
    free(xm);
    free(xc);
    return st;
}

/* Mean cross-entropy gradient at theta = [W (k, d), b (k)] plus the pull on W. */
static double logit_grad(const float *X, const int32_t *cls, size_t n, size_t d, size_t k,
                         bool intercept, double lambda, const double *w0, const double *th,
                         double *g, double *z)
{
    const size_t kk = k == 1 ? 2 : k;
    memset(g, 0, (k * d + k) * sizeof *g);
    double f = 0;
    for (size_t i = 0; i < n; i++) {
        const float *x = X + i * d;
        for (size_t c = 0; c < k; c++) {
            double s = intercept ? th[k * d + c] : 0;
            for (size_t j = 0; j < d; j++)
                s += th[c * d + j] * x[j];
            z[c] = s;
        }
        double p[kk > 0 ? kk : 1];
        if (k == 1) {
            p[1] = 1.0 / (1.0 + exp(-z[0]));
            p[0] = 1.0 - p[1];
            f -= log(fmax(p[cls[i]], 1e-300));
            double r = p[1] - (cls[i] == 1);
            for (size_t j = 0; j < d; j++)
                g[j] += r * x[j];
            if (intercept)
                g[d] += r;
            continue;
        }
        double mx = z[0], s = 0;
        for (size_t c = 1; c < k; c++)
            mx = fmax(mx, z[c]);
        for (size_t c = 0; c < k; c++)
            s += exp(z[c] - mx);
        f -= z[cls[i]] - mx - log(s);
        for (size_t c = 0; c < k; c++) {
            double r = exp(z[c] - mx) / s - (cls[i] == (int32_t)c);
            for (size_t j = 0; j < d; j++)
                g[c * d + j] += r * x[j];
            if (intercept)
                g[k * d + c] += r;
        }
    }
    f /= (double)n;
    for (size_t j = 0; j < k * d + k; j++)
        g[j] /= (double)n;
    for (size_t j = 0; j < k * d; j++) {
        double dw = th[j] - w0[j];
        g[j] += lambda * dw;
        f += 0.5 * lambda * dw * dw;
    }
    return f;
}

static lp_status warm_logistic(const float *X, const float *y, size_t n, size_t d, size_t k,
                               bool intercept, double lambda, int iters, const float *w0f,
                               const float *b0f, float *w, float *b, lp_err *err)
{
    const size_t np = k * d + k;
    double *th = lp_calloc(np, sizeof *th), *prev = lp_calloc(np, sizeof *prev);
    double *v = lp_calloc(np, sizeof *v), *g = lp_calloc(np, sizeof *g);
    double *w0 = lp_calloc(np, sizeof *w0), *z = lp_calloc(k, sizeof *z);
    double *u = lp_calloc(d + 1, sizeof *u), *xu = lp_calloc(n, sizeof *xu);
    int32_t *cls = lp_calloc(n, sizeof *cls);
    lp_status st = LP_OK;
    if (!th || !prev || !v || !g || !w0 || !z || !u || !xu || !cls) {
        st = lp_err_set(err, LP_ENOMEM, "finetune warm: out of memory (%zu features)", d);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        cls[i] = (int32_t)y[i];
    for (size_t j = 0; j < k * d; j++)
        th[j] = w0[j] = w0f[j];
    for (size_t c = 0; c < k; c++)
        th[k * d + c] = intercept ? b0f[c] : 0;
    /* ||[X 1]||_2^2 by power iteration (30 steps from a fixed start: deterministic) */
    for (size_t j = 0; j <= d; j++)
        u[j] = 1.0 / sqrt((double)d + 1);
    double sig = 0;
    for (int it = 0; it < 30; it++) {
        for (size_t i = 0; i < n; i++) {
            double s = u[d];
            for (size_t j = 0; j < d; j++)
                s += X[i * d + j] * u[j];
            xu[i] = s;
        }
        double nn = 0;
        for (size_t j = 0; j <= d; j++) {
            double s = 0;
            for (size_t i = 0; i < n; i++)
                s += (j < d ? X[i * d + j] : 1.0) * xu[i];
            u[j] = s;
            nn += s * s;
        }
        nn = sqrt(nn);
        if (!(nn > 0))
            break;
        sig = nn;
        for (size_t j = 0; j <= d; j++)
            u[j] /= nn;
    }
    double L = sig / (2.0 * (double)n) + lambda;
    if (!(L > 0))
        L = 1;
    double step = 1.0 / L;
    memcpy(prev, th, np * sizeof *th);
    memcpy(v, th, np * sizeof *th);
    for (int it = 1; it <= iters; it++) {
        logit_grad(X, cls, n, d, k, intercept, lambda, w0, v, g, z);
        double gn = 0;
        for (size_t j = 0; j < np; j++) {
            th[j] = v[j] - step * g[j];
            gn += g[j] * g[j];
        }
        if (!isfinite(gn)) {
            st = lp_err_set(err, LP_ENUMERIC, "finetune warm: iteration %d: gradient is not "
                            "finite", it);
            goto done;
        }
        double mom = (double)(it - 1) / (double)(it + 2);
        for (size_t j = 0; j < np; j++) {
            v[j] = th[j] + mom * (th[j] - prev[j]);
            prev[j] = th[j];
        }
        if (sqrt(gn) < 1e-7)
            break;
    }
    for (size_t j = 0; j < k * d; j++)
        w[j] = (float)th[j];
    for (size_t c = 0; c < k; c++)
        b[c] = (float)th[k * d + c];
done:
    free(th);
    free(prev);
    free(v);
    free(g);
    free(w0);
    free(z);
    free(u);
    free(xu);
    free(cls);
    return st;
}

static lp_status tune_linear(const lp_model *base, const void *blob, size_t len, const float *X,
                             const float *y, size_t n, size_t d, const lp_finetune_opts *o,
                             lp_buf *out, lp_finetune_stats *stats, lp_err *err)
{
    const lp_linear *lin = lp_model_impl(base);
    const size_t k = lp_linear_n_outputs(lin);
    if (len < LIN_HEAD_BYTES || lp_linear_n_features(lin) != d)
        return lp_err_set(err, LP_EFORMAT, "finetune warm: unexpected linear model section");
    const bool intercept = ((const uint8_t *)blob)[16] != 0;
    float *w = lp_calloc(k * d, sizeof *w), *b = lp_calloc(k, sizeof *b);
    if (!w || !b) {
        free(w);
        free(b);
        return lp_err_set(err, LP_ENOMEM, "finetune warm: out of memory");
    }
    uint64_t t0 = lp_time_ns();
    lp_status st;
    if (lp_model_task(base) == LP_TASK_REGRESSION)
        st = warm_regression(X, y, n, d, intercept, o->lambda, lp_linear_coef(lin), w, b, err);
    else
        st = warm_logistic(X, y, n, d, k, intercept, o->lambda, 50 * o->epochs,
                           lp_linear_coef(lin), lp_linear_intercept(lin), w, b, err);
    if (stats) {
        stats->train_seconds = lp_time_since(t0);
        stats->trainable = k * d + k;
        stats->n_train = n;
        stats->peak_bytes = 0;
    }
    if (!st) {
        size_t start = out->len;
        lp_buf_put(out, blob, LIN_HEAD_BYTES);
        for (size_t j = 0; j < k * d; j++)
            lp_buf_f32(out, w[j]);
        for (size_t c = 0; c < k; c++)
            lp_buf_f32(out, b[c]);
        if (!out->failed)
            lp_buf_u32(out, lp_crc32(0, out->data + start, out->len - start));
        st = lp_buf_status(out, err);
    }
    if (!st) { /* the record must read back as a linear model */
        lp_reader r;
        lp_linear *chk = NULL;
        lp_reader_init(&r, out->data, out->len, "warm-started linear model");
        st = lp_linear_load(&r, &chk, err);
        lp_linear_free(chk);
    }
    free(w);
    free(b);
    return st;
}

lp_status lp_finetune_model(const lp_model *base, const lp_frame *data, const lp_finetune_opts *o,
                            const char *out_path, lp_finetune_stats *stats, lp_err *err)
{
    if (!base || !data || !out_path)
        return lp_err_set(err, LP_EINVAL, "finetune: base, data and out_path must not be NULL");
    lp_status st = lp_finetune_opts_check(o, err);
    if (st)
        return st;
    if ((st = check_method(base, o->method, err)))
        return st;
    if (o->method == LP_FINETUNE_METHOD_LORA)
        return lp_err_set(err, LP_EUNSUPPORTED, "finetune: method lora gives an adapter, not a "
                          "model: use lp_lora_train");
    lp_lpm *lpm = NULL;
    char sha[65];
    float *X = NULL, *y = NULL;
    size_t n = 0, d = 0;
    const void *blob = NULL;
    size_t blen = 0;
    lp_buf out;
    lp_buf_init(&out);
    if (!(st = ft_design(base, data, o->label, o->drop, o->n_drop, NULL, NULL, &X, &y, &n, &d,
                         err)) &&
        !(st = ft_snapshot(base, &lpm, sha, err)))
        st = lp_lpm_section(lpm, "model", -1, &blob, &blen, err);
    if (!st) {
        switch (o->method) {
        case LP_FINETUNE_METHOD_BOOST:
            st = tune_gbdt(base, X, y, n, d, o, &out, stats, err);
            break;
        case LP_FINETUNE_METHOD_WARM:
            st = tune_linear(base, blob, blen, X, y, n, d, o, &out, stats, err);
            break;
        default:
            st = tune_nn(lpm, blob, blen, X, y, n, o, &out, stats, err);
            break;
        }
    }
    if (!st) {
        char js[256];
        snprintf(js, sizeof js, "{\"method\":\"%s\",\"base_sha256\":\"%s\",\"rows\":%zu}",
                 lp_finetune_method_name(o->method), sha, n);
        st = ft_write_model(lpm, out.data, out.len, js, out_path, err);
    }
    lp_buf_free(&out);
    lp_lpm_free(lpm);
    free(X);
    free(y);
    return st;
}
