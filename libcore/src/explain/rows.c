/*
 * rows.c - lp_explain_rows, the one entry point over every family (explain.h): resolves the
 * method, maps raw rows and the background through the model's cleaner and pipeline, picks the
 * explained output per row, runs LINEAR / TREESHAP (lp_explainer), IG (ig.c) or KERNELSHAP
 * (kernelshap.c) in the design space, and sums design-column contributions into the reported
 * features (lp_xgroups).
 *
 * Invariant: base[i] + sum_j phi[i, j] == raw[i] for LINEAR, TREESHAP and KERNELSHAP up to
 * double rounding (of float leaf values / weights), and up to the trapezoid error for IG.
 */
#include "explain/explain_internal.h"

#include "lepton/linalg.h"
#include "model/family.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static const char *const method_names[] = {"auto", "linear", "treeshap", "ig", "kernelshap"};

const char *lp_explain_method_name(lp_explain_method m)
{
    return (unsigned)m < 5 ? method_names[m] : "?";
}

lp_status lp_explain_method_parse(const char *s, lp_explain_method *out, lp_err *err)
{
    for (unsigned i = 0; s && i < 5; i++)
        if (!strcmp(s, method_names[i])) {
            *out = (lp_explain_method)i;
            return LP_OK;
        }
    return lp_err_set(err, LP_EINVAL, "explain method '%s': expected auto, linear, treeshap, ig "
                      "or kernelshap", s ? s : "");
}

lp_status lp_explain_method_resolve(lp_explain_method method, lp_model_kind kind,
                                    lp_explain_method *out, lp_err *err)
{
    lp_explain_method exact = kind == LP_MODEL_KIND_GBDT ? LP_EXPLAIN_METHOD_TREESHAP
                              : kind == LP_MODEL_KIND_NN ? LP_EXPLAIN_METHOD_IG
                                                         : LP_EXPLAIN_METHOD_LINEAR;
    if (method == LP_EXPLAIN_METHOD_AUTO || method == LP_EXPLAIN_METHOD_KERNELSHAP ||
        method == exact) {
        *out = method == LP_EXPLAIN_METHOD_AUTO ? exact : method;
        return LP_OK;
    }
    if ((unsigned)method > LP_EXPLAIN_METHOD_KERNELSHAP)
        return lp_err_set(err, LP_EINVAL, "explain method %d is unknown", (int)method);
    static const char *const needs[] = {"", "a linear or logistic", "a gbdt", "an nn", ""};
    return lp_err_set(err, LP_EUNSUPPORTED, "explain method %s needs %s model, this one is %s "
                      "(use %s or kernelshap)", method_names[method], needs[method],
                      lp_model_kind_name(kind), method_names[exact]);
}

lp_explain_opts lp_explain_opts_default(void)
{
    lp_explain_opts o = {LP_EXPLAIN_METHOD_AUTO, -1, true, 100, 0, 64, 0, 0};
    return o;
}

lp_status lp_explain_opts_check(const lp_explain_opts *o, lp_err *err)
{
    if (!o)
        return lp_err_set(err, LP_EINVAL, "explain: options are NULL");
    if ((unsigned)o->method > LP_EXPLAIN_METHOD_KERNELSHAP)
        return lp_err_set(err, LP_EINVAL, "explain: method %d is unknown", (int)o->method);
    if (o->background < 1 || o->background > 100000)
        return lp_err_set(err, LP_EINVAL, "explain: background=%zu: must be in [1, 100000]",
                          o->background);
    if (o->samples > 10000000)
        return lp_err_set(err, LP_EINVAL, "explain: samples=%zu: must be at most 10000000 "
                          "(0 = 2 M + 2048)", o->samples);
    if (o->ig_steps < 1 || o->ig_steps > 100000)
        return lp_err_set(err, LP_EINVAL, "explain: ig_steps=%zu: must be in [1, 100000]",
                          o->ig_steps);
    if (o->output < -1)
        return lp_err_set(err, LP_EINVAL, "explain: output=%ld: must be -1 or an output index",
                          o->output);
    if (o->threads < 0)
        return lp_err_set(err, LP_EINVAL, "explain: threads=%d: must be >= 0", o->threads);
    return LP_OK;
}

void lp_explanation_clear(lp_explanation *e)
{
    if (!e)
        return;
    for (size_t j = 0; e->names && j < e->p; j++)
        free(e->names[j]);
    free(e->names);
    free(e->phi);
    free(e->raw);
    free(e->base);
    free(e->output);
    memset(e, 0, sizeof *e);
}

void lp_explanation_top(const lp_explanation *e, size_t i, size_t k, size_t *idx)
{
    const double *phi = e->phi + i * e->p;
    if (k > e->p)
        k = e->p;
    /* selection of the k largest |phi|, ties by the lower index; p is small */
    for (size_t t = 0; t < k; t++) {
        long best = -1;
        for (size_t j = 0; j < e->p; j++) {
            bool used = false;
            for (size_t u = 0; u < t && !used; u++)
                used = idx[u] == j;
            if (used)
                continue;
            if (best < 0 || fabs(phi[j]) > fabs(phi[best]))
                best = (long)j;
        }
        idx[t] = (size_t)best;
    }
}

/* At most want rows of the design of bg, drawn without replacement (seeded) when it has more:
 * *B (nb, d), new. */
static lp_status background_design(const lp_model *m, const lp_frame *bg, size_t want,
                                   uint64_t seed, size_t d, float **B, size_t *nb, lp_err *err)
{
    *B = NULL;
    *nb = 0;
    if (!bg)
        return LP_OK;
    lp_matf *X = NULL;
    lp_status st = lp_model_design(m, bg, &X, err);
    if (st)
        return lp_err_prefix(err, "background");
    size_t n = X->rows, k = n < want ? n : want;
    size_t *idx = lp_mallocarray(n + 1, sizeof(size_t));
    float *out = lp_mallocarray(k + 1, d * sizeof(float));
    if (!idx || !out) {
        st = lp_err_set(err, LP_ENOMEM, "explain: out of memory for the background");
    } else {
        lp_rng rng;
        lp_rng_seed(&rng, seed ^ 0xBAC6600D5EEDull);
        for (size_t i = 0; i < n; i++)
            idx[i] = i;
        for (size_t i = 0; i < k && k < n; i++) {
            size_t t = i + (size_t)lp_rng_below(&rng, n - i);
            size_t tmp = idx[i];
            idx[i] = idx[t];
            idx[t] = tmp;
        }
        for (size_t i = 0; i < k; i++)
            memcpy(out + i * d, X->v + idx[i] * d, d * sizeof(float));
    }
    free(idx);
    lp_matf_free(X);
    if (st) {
        free(out);
        return st;
    }
    *B = out;
    *nb = k;
    return LP_OK;
}

static void group_sum(const lp_xgroups *g, const double *phi_d, double *phi_g)
{
    memset(phi_g, 0, g->p * sizeof(double));
    for (size_t j = 0; j < g->d; j++)
        phi_g[g->group[j]] += phi_d[j];
}

/* TreeSHAP over chunks of rows through the batch path (trees outermost, treeshap.c). */
static lp_status tree_rows(const lp_xscorer *s, const lp_xgroups *g, const lp_matf *X,
                           int threads, lp_explanation *out, lp_err *err)
{
    enum { CHUNK = 4096 };
    size_t n = X->rows, d = s->d;
    double *pd = lp_mallocarray(CHUNK * d + 1, sizeof(double));
    if (!pd)
        return lp_err_set(err, LP_ENOMEM, "explain: out of memory for %zu rows", n);
    lp_status st = LP_OK;
    for (size_t r0 = 0; r0 < n && !st; r0 += CHUNK) {
        size_t m = n - r0 < CHUNK ? n - r0 : CHUNK;
        st = lp_treeshap_batch(s->ex, X->v + r0 * d, m, 0, out->output + r0, threads, pd,
                               out->raw + r0, err);
        for (size_t i = 0; !st && i < m; i++) {
            group_sum(g, pd + i * d, out->phi + (r0 + i) * g->p);
            out->base[r0 + i] = lp_explainer_base_value(s->ex, (size_t)out->output[r0 + i]);
        }
    }
    free(pd);
    return st;
}

static lp_status exact_rows(const lp_xscorer *s, const lp_xgroups *g, const lp_matf *X,
                            int threads, lp_explanation *out, lp_err *err)
{
    if (s->kind == LP_MODEL_KIND_GBDT)
        return tree_rows(s, g, X, threads, out, err);
    size_t n = X->rows, d = s->d;
    int failed = 0;
    int nth = threads > 0 ? threads : omp_get_max_threads();
    if (n < 64)
        nth = 1;
#pragma omp parallel num_threads(nth) reduction(| : failed)
    {
        lp_explain_ws *ws = lp_explain_ws_new(s->ex);
        double *pd = lp_mallocarray(d + 1, sizeof(double));
        if (!ws || !pd)
            failed = 1;
#pragma omp for schedule(dynamic, 16)
        for (long i = 0; i < (long)n; i++) {
            if (!ws || !pd)
                continue;
            size_t k = (size_t)out->output[i];
            double mg;
            if (lp_explainer_row(s->ex, ws, X->v + (size_t)i * d, k, pd, &mg, NULL)) {
                failed = 1;
                continue;
            }
            group_sum(g, pd, out->phi + (size_t)i * g->p);
            out->raw[i] = mg;
            out->base[i] = lp_explainer_base_value(s->ex, k);
        }
        lp_explain_ws_free(ws);
        free(pd);
    }
    if (failed)
        return lp_err_set(err, LP_ENOMEM, "explain: out of memory for %zu rows", n);
    return LP_OK;
}

static lp_status ig_rows(const lp_xscorer *s, const lp_xgroups *g, const lp_matf *X,
                         const float *B, size_t nb, size_t steps, lp_explanation *out, lp_err *err)
{
    size_t n = X->rows, d = s->d, k = s->nn_out;
    float *b = lp_calloc(d + 1, sizeof(float));
    float *W = lp_calloc(n * k + 1, sizeof(float));
    double *pd = lp_mallocarray(n * d + 1, sizeof(double));
    lp_status st = LP_OK;
    if (!b || !W || !pd) {
        st = lp_err_set(err, LP_ENOMEM, "integrated gradients: out of memory for %zu rows", n);
        goto done;
    }
    /* baseline: the background's mean design row, else zeros */
    for (size_t j = 0; j < d && nb; j++) {
        double m = 0.0;
        for (size_t r = 0; r < nb; r++)
            m += B[r * d + j];
        b[j] = (float)(m / (double)nb);
    }
    for (size_t i = 0; i < n; i++) {
        float *w = W + i * k;
        if (s->task == LP_TASK_REGRESSION) {
            w[0] = (float)s->y_std;
        } else if (s->task == LP_TASK_BINARY) {
            w[0] = -1.0f;
            w[1] = 1.0f;
        } else {
            w[out->output[i]] = 1.0f;
        }
    }
    st = lp_ig_rows(s, X->v, n, b, W, steps, pd, out->raw, out->base, err);
    for (size_t i = 0; !st && i < n; i++)
        group_sum(g, pd + i * d, out->phi + i * g->p);
done:
    free(b);
    free(W);
    free(pd);
    return st;
}

lp_status lp_explain_rows(const lp_model *m, const lp_frame *rows, const lp_frame *background,
                          const lp_explain_opts *o, lp_explanation *out, lp_err *err)
{
    memset(out, 0, sizeof *out);
    lp_explain_opts dflt = lp_explain_opts_default();
    if (!o)
        o = &dflt;
    lp_status st = lp_explain_opts_check(o, err);
    lp_explain_method method = LP_EXPLAIN_METHOD_AUTO;
    if (!st)
        st = lp_explain_method_resolve(o->method, lp_model_get_kind(m), &method, err);
    if (st)
        return st;
    lp_xscorer s;
    lp_xgroups g;
    memset(&g, 0, sizeof g);
    lp_matf *X = NULL;
    float *B = NULL;
    size_t nb = 0;
    double *R = NULL;
    memset(&s, 0, sizeof s);
    if ((st = lp_model_design(m, rows, &X, err)))
        goto done;
    /* TreeSHAP's tables pay for themselves after a few dozen rows */
    if ((st = lp_xscorer_init(&s, m, method == LP_EXPLAIN_METHOD_TREESHAP && X->rows >= 32,
                              err)))
        goto done;
    if (X->cols != s.d) {
        st = lp_err_set(err, LP_EINTERNAL, "explain: design has %zu columns, model %zu",
                        X->cols, s.d);
        goto done;
    }
    if ((st = lp_xgroups_init(&g, m, s.d, o->raw_columns, err)) ||
        (st = background_design(m, background, o->background, o->seed, s.d, &B, &nb, err)))
        goto done;
    if (method == LP_EXPLAIN_METHOD_KERNELSHAP && nb == 0) {
        st = lp_err_set(err, LP_EINVAL, "explain: kernelshap needs a background sample (none "
                        "given or it has no rows)");
        goto done;
    }
    size_t n = X->rows, K = s.K;
    out->method = method;
    out->n = n;
    out->p = g.p;
    out->phi = lp_calloc(n * g.p + 1, sizeof(double));
    out->raw = lp_calloc(n + 1, sizeof(double));
    out->base = lp_calloc(n + 1, sizeof(double));
    out->output = lp_calloc(n + 1, sizeof(int32_t));
    R = lp_mallocarray(n * K + 1, sizeof(double));
    if (!out->phi || !out->raw || !out->base || !out->output || !R) {
        st = lp_err_set(err, LP_ENOMEM, "explain: out of memory for %zu rows", n);
        goto done;
    }
    if (o->output >= 0 && (size_t)o->output >= K) {
        st = lp_err_set(err, LP_EINVAL, "explain: output %ld out of range (the model has %zu "
                        "raw output%s)", o->output, K, K == 1 ? "" : "s");
        goto done;
    }
    if ((st = lp_xscorer_raw(&s, X->v, n, o->threads, R, err)))
        goto done;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        if (o->output >= 0) {
            k = (size_t)o->output;
        } else if (K > 1) {
            for (size_t c = 1; c < K; c++)
                if (R[i * K + c] > R[i * K + k])
                    k = c;
        }
        out->output[i] = (int32_t)k;
    }
    switch (method) {
    case LP_EXPLAIN_METHOD_LINEAR:
        if (nb && (st = lp_explainer_set_background(s.ex, B, nb, s.d, err)))
            goto done;
        /* fall through */
    case LP_EXPLAIN_METHOD_TREESHAP:
        st = exact_rows(&s, &g, X, o->threads, out, err);
        break;
    case LP_EXPLAIN_METHOD_IG:
        st = ig_rows(&s, &g, X, B, nb, o->ig_steps, out, err);
        break;
    default: {
        size_t M = g.p, samples = o->samples ? o->samples : 2 * M + 2048;
        for (size_t i = 0; i < n && !st; i++)
            st = lp_kernelshap_row(&s, &g, X->v + i * s.d, B, nb, (size_t)out->output[i],
                                   samples, o->seed + i, o->threads, out->phi + i * g.p,
                                   &out->raw[i], &out->base[i], err);
        break;
    }
    }
    if (!st) {
        out->names = g.names;
        g.names = NULL;
        g.p = 0;
    }
done:
    if (st)
        lp_explanation_clear(out);
    lp_xgroups_clear(&g);
    lp_xscorer_clear(&s);
    lp_matf_free(X);
    free(B);
    free(R);
    return st;
}
