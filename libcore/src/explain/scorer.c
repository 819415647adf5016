/*
 * scorer.c - what the model-agnostic explanations need from any family: the raw score F of
 * design rows (lp_xscorer) and the map from design columns to the features an explanation
 * reports (lp_xgroups: raw input columns or the design columns themselves), plus the module
 * lock that serialises the nn's gradient passes.
 *
 * Raw scores: linear, logistic and gbdt through the lp_explainer's margins (the same arithmetic
 * TreeSHAP and the linear attributions sum to); nn through lp_nn_predict_raw, mapped to the
 * explained scale: y_mean + y_std z_0 (regression), z_1 - z_0 (binary log-odds of the second
 * class), z_k (multiclass logits).
 *
 * Invariant: a scorer borrows the model; it is read-only after init and may be shared by
 * threads (lp_nn_predict_raw allocates its own buffers).
 */
#include "explain/explain_internal.h"

#include "lepton/feat.h"
#include "model/family.h"
#include "model/nn.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

void lp_explain_lock(void) { pthread_mutex_lock(&g_lock); }
void lp_explain_unlock(void) { pthread_mutex_unlock(&g_lock); }

lp_status lp_xscorer_init(lp_xscorer *s, const lp_model *m, bool tables, lp_err *err)
{
    memset(s, 0, sizeof *s);
    s->m = m;
    s->kind = lp_model_get_kind(m);
    s->task = lp_model_task(m);
    if (s->kind == LP_MODEL_KIND_NN) {
        s->net = lp_family_nn_net(m, &s->y_mean, &s->y_std);
        if (!s->net)
            return lp_err_set(err, LP_EINTERNAL, "explain: nn model without a net");
        s->d = lp_nn_n_inputs(s->net);
        s->nn_out = lp_nn_n_outputs(s->net);
        s->K = s->task == LP_TASK_MULTICLASS ? s->nn_out : 1;
        if (s->task == LP_TASK_BINARY && s->nn_out != 2)
            return lp_err_set(err, LP_EINTERNAL, "explain: binary nn with %zu outputs",
                              s->nn_out);
        return LP_OK;
    }
    lp_status st = tables ? lp_explainer_new(m, &s->ex, err)
                          : lp_explainer_new_lite(m, &s->ex, err);
    if (st)
        return st;
    s->d = lp_explainer_n_features(s->ex);
    s->K = lp_explainer_n_outputs(s->ex);
    return LP_OK;
}

void lp_xscorer_clear(lp_xscorer *s)
{
    if (!s)
        return;
    lp_explainer_free(s->ex);
    memset(s, 0, sizeof *s);
}

lp_status lp_xscorer_raw(const lp_xscorer *s, const float *X, size_t n, int threads, double *out,
                         lp_err *err)
{
    if (n == 0)
        return LP_OK;
    if (s->ex) {
        int nth = threads > 0 ? threads : 0;
        if (nth == 1 || n < 64) {
            for (size_t i = 0; i < n; i++)
                lp_explainer_margin(s->ex, X + i * s->d, out + i * s->K);
            return LP_OK;
        }
#pragma omp parallel for schedule(static) num_threads(nth > 0 ? nth : omp_get_max_threads())
        for (long i = 0; i < (long)n; i++)
            lp_explainer_margin(s->ex, X + (size_t)i * s->d, out + (size_t)i * s->K);
        return LP_OK;
    }
    size_t k = s->nn_out;
    float *z = lp_mallocarray(n, k * sizeof(float));
    if (!z)
        return lp_err_set(err, LP_ENOMEM, "explain: out of memory scoring %zu rows", n);
    lp_status st = lp_nn_predict_raw(s->net, X, n, z, err);
    for (size_t i = 0; !st && i < n; i++) {
        const float *zi = z + i * k;
        if (s->task == LP_TASK_REGRESSION)
            out[i] = s->y_mean + s->y_std * (double)zi[0];
        else if (s->task == LP_TASK_BINARY)
            out[i] = (double)zi[1] - (double)zi[0];
        else
            for (size_t c = 0; c < k; c++)
                out[i * k + c] = zi[c];
    }
    free(z);
    return st;
}

/* Does design name f derive from input name in ("in", "in=v", "in:..." )? */
static bool derives(const char *f, const char *in)
{
    size_t l = strlen(in);
    return !strncmp(f, in, l) && (f[l] == '\0' || f[l] == '=' || f[l] == ':');
}

void lp_xgroups_clear(lp_xgroups *g)
{
    if (!g)
        return;
    for (size_t i = 0; g->names && i < g->p; i++)
        free(g->names[i]);
    free(g->names);
    free(g->group);
    memset(g, 0, sizeof *g);
}

static char *dup_name(const char *s)
{
    size_t l = strlen(s ? s : "");
    char *c = malloc(l + 1);
    if (c)
        memcpy(c, s ? s : "", l + 1);
    return c;
}

lp_status lp_xgroups_init(lp_xgroups *g, const lp_model *m, size_t d, bool raw_columns,
                          lp_err *err)
{
    memset(g, 0, sizeof *g);
    const lp_pipeline *pipe = lp_model_pipeline(m);
    size_t ni = lp_model_n_inputs(m);
    g->d = d;
    g->group = lp_mallocarray(d + 1, sizeof(int32_t));
    g->names = lp_calloc(d + ni + 1, sizeof(char *));
    if (!g->group || !g->names) {
        lp_xgroups_clear(g);
        return lp_err_set(err, LP_ENOMEM, "explain: out of memory for feature names");
    }
    if (raw_columns) {
        for (size_t i = 0; i < ni; i++)
            g->names[g->p++] = dup_name(lp_model_input_name(m, i));
    }
    for (size_t j = 0; j < d; j++) {
        const char *f = pipe ? lp_pipeline_feature_name(pipe, j) : NULL;
        char tmp[32];
        if (!f) {
            snprintf(tmp, sizeof tmp, "x%zu", j);
            f = tmp;
        }
        long best = -1;
        size_t best_len = 0;
        for (size_t i = 0; raw_columns && i < ni; i++) {
            const char *in = lp_model_input_name(m, i);
            if (in && derives(f, in) && strlen(in) >= best_len) {
                best = (long)i;
                best_len = strlen(in);
            }
        }
        if (best >= 0) {
            g->group[j] = (int32_t)best;
        } else {
            g->group[j] = (int32_t)g->p;
            g->names[g->p++] = dup_name(f);
        }
    }
    for (size_t i = 0; i < g->p; i++)
        if (!g->names[i]) {
            lp_xgroups_clear(g);
            return lp_err_set(err, LP_ENOMEM, "explain: out of memory for feature names");
        }
    return LP_OK;
}
