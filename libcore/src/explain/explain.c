/*
 * explain.c - the lp_explainer object (explain.h): picks the exact method by the model's
 * family, owns per-output base values, hands out per-thread workspaces, and maps raw rows
 * through the model's cleaner and pipeline (lp_model_explain). Linear attributions
 * phi_j = coef_j (x_j - mean_j) live here; TreeSHAP is in treeshap.c.
 *
 * Invariant: the explainer only borrows the model's trees / coefficients, so it must not
 * outlive the model; everything it computes at build time is read-only afterwards.
 */
#include "explain/explain_internal.h"

#include "lepton/feat.h"
#include "lepton/linalg.h"
#include "model/family.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

static lp_status explainer_new(const lp_model *m, bool tables, lp_explainer **out,
                               lp_err *err);

lp_status lp_explainer_new(const lp_model *m, lp_explainer **out, lp_err *err)
{
    return explainer_new(m, true, out, err);
}

lp_status lp_explainer_new_lite(const lp_model *m, lp_explainer **out, lp_err *err)
{
    return explainer_new(m, false, out, err);
}

static lp_status explainer_new(const lp_model *m, bool tables, lp_explainer **out,
                               lp_err *err)
{
    *out = NULL;
    lp_explainer *e = lp_calloc(1, sizeof *e);
    if (!e)
        return lp_err_set(err, LP_ENOMEM, "explainer: out of memory");
    e->model = m;
    e->kind = lp_model_get_kind(m);
    lp_status st = LP_OK;
    if (e->kind == LP_MODEL_KIND_GBDT) {
        e->gbdt = lp_model_impl(m);
        e->d = lp_gbdt_n_features(e->gbdt);
        e->n_outputs = lp_gbdt_n_outputs(e->gbdt);
        st = lp_treeshap_init(e, err);
        if (!st && tables)
            st = lp_treeshap_precompute(e, err);
    } else if (e->kind == LP_MODEL_KIND_LINEAR || e->kind == LP_MODEL_KIND_LOGISTIC) {
        const lp_linear *lin = lp_model_impl(m);
        e->d = lp_linear_n_features(lin);
        e->n_outputs = lp_linear_n_outputs(lin);
        e->coef = lp_linear_coef(lin);
        e->intercept = lp_linear_intercept(lin);
        e->mean = lp_calloc(e->d ? e->d : 1, sizeof(double));
        e->base = lp_calloc(e->n_outputs, sizeof(double));
        if (!e->mean || !e->base)
            st = lp_err_set(err, LP_ENOMEM, "explainer: out of memory");
        for (size_t k = 0; !st && k < e->n_outputs; k++)
            e->base[k] = e->intercept[k];
    } else {
        st = lp_err_set(err, LP_EUNSUPPORTED, "explainer: no exact attribution method for the "
                        "'%s' family (gbdt, linear and logistic have one)",
                        lp_model_kind_name(e->kind));
    }
    if (st) {
        lp_explainer_free(e);
        return st;
    }
    *out = e;
    return LP_OK;
}

void lp_explainer_free(lp_explainer *e)
{
    if (!e)
        return;
    free(e->base);
    free(e->mean);
    lp_treeshap_free(e);
    free(e);
}

size_t lp_explainer_n_features(const lp_explainer *e) { return e->d; }
size_t lp_explainer_n_outputs(const lp_explainer *e) { return e->n_outputs; }

const char *lp_explainer_feature_name(const lp_explainer *e, size_t j)
{
    const lp_pipeline *p = lp_model_pipeline(e->model);
    return p ? lp_pipeline_feature_name(p, j) : NULL;
}

lp_status lp_explainer_set_background(lp_explainer *e, const float *X, size_t n, size_t d,
                                      lp_err *err)
{
    if (!e->mean)
        return lp_err_set(err, LP_EUNSUPPORTED, "explainer background: trees use their "
                          "training covers, not a background set");
    if (d != e->d || n == 0 || !X)
        return lp_err_set(err, LP_EINVAL, "explainer background: got (%zu, %zu), expected "
                          "(n >= 1, %zu)", n, d, e->d);
    /* (d,) column means in double */
    memset(e->mean, 0, e->d * sizeof(double));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < d; j++)
            e->mean[j] += X[i * d + j];
    for (size_t j = 0; j < d; j++)
        e->mean[j] /= (double)n;
    for (size_t k = 0; k < e->n_outputs; k++) {
        double b = e->intercept[k];
        for (size_t j = 0; j < d; j++)
            b += (double)e->coef[k * d + j] * e->mean[j];
        e->base[k] = b;
    }
    return LP_OK;
}

double lp_explainer_base_value(const lp_explainer *e, size_t k)
{
    return k < e->n_outputs ? e->base[k] : NAN;
}

lp_explain_ws *lp_explain_ws_new(const lp_explainer *e)
{
    lp_explain_ws *ws = lp_calloc(1, sizeof *ws);
    if (!ws)
        return NULL;
    ws->owner = e;
    ws->cap = e->gbdt ? lp_treeshap_path_len(e->max_depth) : 1;
    ws->path = lp_calloc(ws->cap, sizeof *ws->path);
    ws->dir = lp_calloc(e->max_nodes + 1, sizeof *ws->dir);
    if (!ws->path || !ws->dir) {
        free(ws->path);
        free(ws->dir);
        free(ws);
        return NULL;
    }
    return ws;
}

void lp_explain_ws_free(lp_explain_ws *ws)
{
    if (!ws)
        return;
    free(ws->path);
    free(ws->dir);
    free(ws);
}

static double linear_row(const lp_explainer *e, const float *x, size_t k, double *phi)
{
    const float *w = e->coef + k * e->d;
    double margin = e->intercept[k];
    for (size_t j = 0; j < e->d; j++) {
        margin += (double)w[j] * x[j];
        if (phi)
            phi[j] = (double)w[j] * ((double)x[j] - e->mean[j]);
    }
    return margin;
}

lp_status lp_explainer_row(const lp_explainer *e, lp_explain_ws *ws, const float *x, size_t k,
                           double *phi, double *margin, lp_err *err)
{
    if (k >= e->n_outputs)
        return lp_err_set(err, LP_EINVAL, "explain: output %zu out of range (%zu outputs)", k,
                          e->n_outputs);
    if (!ws || ws->owner != e)
        return lp_err_set(err, LP_EINVAL, "explain: workspace belongs to another explainer");
    double mg;
    if (e->gbdt) {
        memset(phi, 0, e->d * sizeof(double));
        mg = lp_treeshap_row(e, ws->path, ws->dir, x, k, phi);
    } else {
        mg = linear_row(e, x, k, phi);
    }
    if (margin)
        *margin = mg;
    return LP_OK;
}

void lp_explainer_margin(const lp_explainer *e, const float *x, double *out)
{
    if (e->gbdt) {
        size_t no = e->n_outputs, nt = lp_gbdt_n_trees(e->gbdt);
        for (size_t k = 0; k < no; k++)
            out[k] = lp_gbdt_base_score(e->gbdt, k);
        for (size_t t = 0; t < nt; t++) {
            size_t nn = 0;
            const lp_gbdt_node *nodes = lp_gbdt_tree(e->gbdt, t, &nn);
            if (!nn)
                continue;
            int32_t i = 0;
            while (nodes[i].feature >= 0) {
                float v = x[nodes[i].feature];
                bool l = isnan(v) ? nodes[i].default_left != 0 : v <= nodes[i].threshold;
                i = l ? nodes[i].left : nodes[i].right;
            }
            out[t % no] += nodes[i].value;
        }
    } else {
        for (size_t k = 0; k < e->n_outputs; k++)
            out[k] = linear_row(e, x, k, NULL);
    }
}

lp_status lp_explainer_batch(const lp_explainer *e, const float *X, size_t n, size_t k,
                             int threads, double *phi, double *margin, lp_err *err)
{
    if (k >= e->n_outputs)
        return lp_err_set(err, LP_EINVAL, "explain: output %zu out of range (%zu outputs)", k,
                          e->n_outputs);
    if (e->gbdt)
        return lp_treeshap_batch(e, X, n, k, NULL, threads, phi, margin, err);
    int failed = 0;
    size_t d = e->d;
    int nth = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel num_threads(nth) reduction(| : failed)
    {
        lp_explain_ws *ws = lp_explain_ws_new(e);
        if (!ws)
            failed = 1;
#pragma omp for schedule(dynamic, 16)
        for (long i = 0; i < (long)n; i++) {
            if (!ws)
                continue;
            double mg;
            (void)lp_explainer_row(e, ws, X + i * d, k, phi + i * d, &mg, NULL);
            if (margin)
                margin[i] = mg;
        }
        lp_explain_ws_free(ws);
    }
    if (failed)
        return lp_err_set(err, LP_ENOMEM, "explain: out of memory for %zu rows", n);
    return LP_OK;
}

void lp_attributions_clear(lp_attributions *a)
{
    if (!a)
        return;
    free(a->phi);
    free(a->margin);
    free(a->names);
    memset(a, 0, sizeof *a);
}

lp_status lp_model_explain(const lp_model *m, const lp_frame *rows, size_t k, int threads,
                           lp_attributions *out, lp_err *err)
{
    memset(out, 0, sizeof *out);
    lp_explainer *e = NULL;
    lp_matf *X = NULL;
    lp_status st = lp_explainer_new(m, &e, err);
    if (!st)
        st = lp_model_design(m, rows, &X, err);
    if (!st && X->cols != e->d)
        st = lp_err_set(err, LP_EINTERNAL, "explain: design has %zu columns, model %zu",
                        X->cols, e->d);
    if (!st) {
        out->n = X->rows;
        out->d = e->d;
        out->phi = lp_mallocarray(out->n * out->d + 1, sizeof(double));
        out->margin = lp_mallocarray(out->n + 1, sizeof(double));
        out->names = lp_mallocarray(out->d + 1, sizeof(char *));
        if (!out->phi || !out->margin || !out->names)
            st = lp_err_set(err, LP_ENOMEM, "explain: out of memory for %zu rows", out->n);
    }
    if (!st)
        st = lp_explainer_batch(e, X->v, X->rows, k, threads, out->phi, out->margin, err);
    if (!st) {
        out->base = lp_explainer_base_value(e, k);
        for (size_t j = 0; j < out->d; j++)
            out->names[j] = lp_explainer_feature_name(e, j);
    }
    lp_matf_free(X);
    lp_explainer_free(e);
    if (st)
        lp_attributions_clear(out);
    return st;
}
