/*
 * pipeline_row.c - the fitted pipeline applied to one row, into a dense float vector, for the
 * prepared predictor (model/predictor.c). The frame path (pipeline.c) builds one CSR block per
 * step and joins them; here every step writes its slice of the output directly.
 *
 * What it does not do: find columns by name per row (a plan binds them once), or allocate
 * (except inside lp_textvec_transform for TF-IDF and text HASH steps).
 * Invariant: for every step, the value written at a feature index is the value the frame path
 * puts there for the same row - computed by the same helpers (lp_step_raw_block,
 * lp_step_scale_block, lp_pca_transform, lp_onehot_index, lp_hash_feature,
 * lp_textvec_transform) - and +0.0f where the frame path stores nothing (the CSR keeps only
 * values != 0, and a dense copy of it is zero-filled).
 */
#include "feat/pipeline_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void lp_pipeline_rowplan_clear(lp_pipeline_rowplan *plan)
{
    if (!plan)
        return;
    free(plan->slot);
    memset(plan, 0, sizeof *plan);
}

void lp_pipeline_rowwork_clear(lp_pipeline_rowwork *w)
{
    if (!w)
        return;
    free(w->dbl);
    free(w->key);
    memset(w, 0, sizeof *w);
}

lp_status lp_pipeline_rowplan_init(const lp_pipeline *p, const char *const *names,
                                   const lp_col_type *types, size_t n, lp_pipeline_rowplan *plan,
                                   bool *ok, const char **why, lp_err *err)
{
    memset(plan, 0, sizeof *plan);
    *ok = false;
    *why = NULL;
    if (!p->fitted)
        return lp_err_set(err, LP_ESTATE, "pipeline: transform before fit");
    size_t total = 0;
    for (size_t i = 0; i < p->n_steps; i++)
        total += p->steps[i].n_cols;
    plan->slot = lp_mallocarray(total ? total : 1, sizeof *plan->slot);
    if (!plan->slot)
        return lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
    plan->n_slots = total;
    size_t q = 0;
    for (size_t i = 0; i < p->n_steps; i++) {
        const step *s = &p->steps[i];
        for (size_t c = 0; c < s->n_cols; c++, q++) {
            size_t j = 0;
            while (j < n && strcmp(names[j], s->cols[c]) != 0)
                j++;
            if (j == n) {
                *why = "a pipeline column is not a model input";
                return LP_OK;
            }
            if (lp_step_is_numeric(s->o.kind) && types[j] != LP_COL_TYPE_NUMERIC) {
                *why = "a numeric pipeline step reads a non-numeric input";
                return LP_OK;
            }
            plan->slot[q] = (uint32_t)j;
        }
        if (lp_step_is_numeric(s->o.kind)) {
            size_t w = lp_step_block_width(s), need = w + (s->pca ? s->pca->k : 0);
            if (need > plan->work_dbl)
                plan->work_dbl = need;
        }
        for (size_t c = 0; s->tv && c < s->n_cols; c++)
            plan->has_text |= s->tv[c] != NULL; /* TF-IDF, or HASH of a text column */
    }
    *ok = true;
    return LP_OK;
}

/* Grow w->key to hold n bytes. */
static bool key_reserve(lp_pipeline_rowwork *w, size_t n)
{
    if (n <= w->cap_key)
        return true;
    size_t cap = w->cap_key ? w->cap_key : 256;
    while (cap < n)
        cap *= 2;
    char *k = realloc(w->key, cap);
    if (!k)
        return false;
    w->key = k;
    w->cap_key = cap;
    return true;
}

/* Store v at out[j] as the CSR join does: nothing (+0) for 0, else the float. */
static inline void put(float *out, size_t j, double v)
{
    out[j] = v != 0 ? (float)v : 0.0f;
}

lp_status lp_pipeline_row_transform(const lp_pipeline *p, const lp_pipeline_rowplan *plan,
                                    const lp_column *const *cols, lp_pipeline_rowwork *w,
                                    float *out, lp_err *err)
{
    if (plan->work_dbl > w->cap_dbl) {
        double *d = realloc(w->dbl, plan->work_dbl * sizeof *d);
        if (!d)
            return lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
        w->dbl = d;
        w->cap_dbl = plan->work_dbl;
    }
    memset(out, 0, p->n_out * sizeof *out);
    const lp_column *sc[64];
    const uint32_t *slot = plan->slot;
    size_t off = 0;
    for (size_t i = 0; i < p->n_steps; i++) {
        const step *s = &p->steps[i];
        float *o = out + off;
        if (lp_step_is_numeric(s->o.kind)) {
            /* the step's columns in its order; wide steps (rare) in a heap array */
            const lp_column **cs = s->n_cols <= 64 ? sc : lp_mallocarray(s->n_cols, sizeof *cs);
            if (!cs)
                return lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
            for (size_t c = 0; c < s->n_cols; c++)
                cs[c] = cols[slot[c]];
            size_t bw = lp_step_block_width(s), k = s->pca ? s->pca->k : bw;
            double *x = w->dbl, *y = s->pca ? w->dbl + bw : x;
            lp_step_raw_block(s, cs, 1, x);
            lp_step_scale_block(s, x, 1);
            if (s->pca)
                lp_pca_transform(s->pca, x, 1, y);
            for (size_t j = 0; j < k; j++)
                put(o, j, y[j]);
            if (cs != sc)
                free(cs);
            lp_status st = lp_step_check_range(s, y, 1, k, err);
            if (st)
                return st;
        } else if (s->o.kind != LP_STEP_KIND_DROP) {
            size_t coff = 0;
            for (size_t c = 0; c < s->n_cols; c++) {
                char numbuf[40];
                const char *v = lp_step_cell_str(cols[slot[c]], 0, numbuf, sizeof numbuf);
                if (s->o.kind == LP_STEP_KIND_ONEHOT) {
                    long j = v ? lp_onehot_index(s->oh[c], v) : -1;
                    if (j >= 0)
                        o[coff + (size_t)j] = 1.0f;
                    coff += s->oh[c]->n_out;
                } else if (s->tv && s->tv[c]) {
                    lp_csr *sub = NULL;
                    lp_status st = lp_textvec_transform(s->tv[c], &v, 1, &sub, err);
                    if (st)
                        return lp_err_prefix(err, "pipeline step %zu (%s) column '%s'", i,
                                             lp_step_kind_name(s->o.kind), s->cols[c]);
                    for (size_t q = sub->indptr[0]; q < sub->indptr[1]; q++)
                        o[coff + sub->indices[q]] = sub->values[q];
                    coff += lp_textvec_n_features(s->tv[c]);
                    lp_csr_free(sub);
                } else {
                    if (v) {
                        /* categorical HASH: "<col>=<value>" hashed, as the frame path */
                        size_t len = strlen(s->cols[c]) + 1 + strlen(v);
                        if (!key_reserve(w, len + 1))
                            return lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
                        snprintf(w->key, w->cap_key, "%s=%s", s->cols[c], v);
                        uint32_t j = 0;
                        int sign = 1;
                        lp_hash_feature(w->key, len, s->o.hash_features, &j, &sign);
                        o[coff + j] = (float)sign;
                    }
                    coff += s->o.hash_features;
                }
            }
        }
        slot += s->n_cols;
        off += s->n_out;
    }
    return LP_OK;
}
