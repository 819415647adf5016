/*
 * mf_io.c - saving and loading mf models as .lpm files (registry.h does the container: magic,
 * version, offsets, CRCs). This file checks everything the container cannot: the header's
 * numbers, every section's size against them, every index against its range, every value's
 * finiteness, and the id lists (count, distinctness, length, UTF-8 through lp_mf_data rules).
 */
#include "model/mf_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lepton/registry.h"

#define MF_MAX_ROWS ((size_t)1 << 28) /* ids per side accepted from a file */

static lp_status add_ids(lp_lpm_writer *w, const char *name, const mf_ids *ids, lp_err *err)
{
    lp_buf b;
    lp_buf_init(&b);
    lp_buf_u32(&b, (uint32_t)ids->n);
    for (size_t t = 0; t < ids->n; t++) lp_buf_str(&b, ids->names[t]);
    lp_status st = lp_buf_status(&b, err);
    if (!st) st = lp_lpm_writer_add(w, name, LP_LPM_DTYPE_BYTES, b.data, b.len, err);
    lp_buf_free(&b);
    return st;
}

/* The header's "source": {"user_col", "item_col", "weight_col"?, "type_col"?, "time_col"?,
 * "event_weights": [[type, weight], ...], "half_life_s", "now"}. */
static void add_source(cJSON *h, const lp_mf_source *src)
{
    cJSON *sj = cJSON_AddObjectToObject(h, "source");
    if (!sj) return;
    const char *keys[5] = {"user_col", "item_col", "weight_col", "type_col", "time_col"};
    const char *vals[5] = {src->user_col, src->item_col, src->weight_col, src->type_col,
                           src->time_col};
    for (int c = 0; c < 5; c++)
        if (vals[c]) cJSON_AddStringToObject(sj, keys[c], vals[c]);
    cJSON *ew = cJSON_AddArrayToObject(sj, "event_weights");
    for (size_t t = 0; ew && t < src->ev.n_types; t++) {
        cJSON *pair = cJSON_CreateArray();
        if (!pair) break;
        cJSON_AddItemToArray(pair, cJSON_CreateString(src->ev.type_name[t]));
        cJSON_AddItemToArray(pair, cJSON_CreateNumber(src->ev.type_weight[t]));
        cJSON_AddItemToArray(ew, pair);
    }
    cJSON_AddNumberToObject(sj, "half_life_s", src->ev.half_life_s);
    cJSON_AddNumberToObject(sj, "now", src->ev.now);
    cJSON_AddNumberToObject(sj, "time_ref", src->time_ref);
}

lp_status lp_mf_save(const lp_mf *m, const char *path, lp_err *err)
{
    lp_lpm_writer *w = lp_lpm_writer_new();
    cJSON *h = cJSON_CreateObject();
    if (!w || !h) {
        lp_lpm_writer_free(w);
        cJSON_Delete(h);
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
    }
    const lp_mf_opts *o = &m->opts;
    cJSON_AddStringToObject(h, "family", "mf");
    cJSON_AddStringToObject(h, "kind", lp_mf_kind_name(o->kind));
    cJSON_AddNumberToObject(h, "n_users", (double)m->n_users);
    cJSON_AddNumberToObject(h, "n_items", (double)m->n_items);
    cJSON_AddNumberToObject(h, "dim", (double)m->dim);
    cJSON_AddNumberToObject(h, "n_pairs", (double)m->hist.nnz);
    cJSON_AddNumberToObject(h, "n_neighbors", (double)m->knn.nnz);
    cJSON *oj = cJSON_AddObjectToObject(h, "opts");
    if (oj) {
        cJSON_AddNumberToObject(oj, "factors", (double)o->factors);
        cJSON_AddNumberToObject(oj, "iterations", (double)o->iterations);
        cJSON_AddNumberToObject(oj, "regularization", o->regularization);
        cJSON_AddNumberToObject(oj, "alpha", o->alpha);
        cJSON_AddStringToObject(oj, "solver", o->solver == LP_MF_SOLVER_CG ? "cg" : "cholesky");
        cJSON_AddNumberToObject(oj, "cg_steps", (double)o->cg_steps);
        cJSON_AddNumberToObject(oj, "learning_rate", o->learning_rate);
        cJSON_AddNumberToObject(oj, "neighbors", (double)o->neighbors);
        cJSON_AddNumberToObject(oj, "shrinkage", o->shrinkage);
        cJSON_AddNumberToObject(oj, "init_scale", o->init_scale);
        cJSON_AddNumberToObject(oj, "seed", (double)o->seed);
        cJSON_AddStringToObject(oj, "weight_transform", lp_mf_weight_name(o->weight_transform));
    }
    if (m->has_source) add_source(h, &m->src);
    char *hs = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    lp_status st = hs ? LP_OK : lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
    size_t nf = m->dim;
    if (!st && m->xu)
        st = lp_lpm_writer_add(w, "mf/user_factors", LP_LPM_DTYPE_F32, m->xu,
                               m->n_users * nf * sizeof(float), err);
    if (!st && m->yi)
        st = lp_lpm_writer_add(w, "mf/item_factors", LP_LPM_DTYPE_F32, m->yi,
                               m->n_items * nf * sizeof(float), err);
    if (!st) st = lp_lpm_writer_add(w, "mf/pop", LP_LPM_DTYPE_F32, m->pop,
                                    m->n_items * sizeof(float), err);
    if (!st) st = lp_lpm_writer_add(w, "mf/hist_ptr", LP_LPM_DTYPE_I32, m->hist.ptr,
                                    (m->n_users + 1) * sizeof(int32_t), err);
    if (!st) st = lp_lpm_writer_add(w, "mf/hist_items", LP_LPM_DTYPE_I32, m->hist.col,
                                    m->hist.nnz * sizeof(int32_t), err);
    if (!st) st = lp_lpm_writer_add(w, "mf/hist_w", LP_LPM_DTYPE_F32, m->hist.w,
                                    m->hist.nnz * sizeof(float), err);
    if (!st && m->knn.ptr) {
        st = lp_lpm_writer_add(w, "mf/knn_ptr", LP_LPM_DTYPE_I32, m->knn.ptr,
                               (m->n_items + 1) * sizeof(int32_t), err);
        if (!st) st = lp_lpm_writer_add(w, "mf/knn_items", LP_LPM_DTYPE_I32, m->knn.col,
                                        m->knn.nnz * sizeof(int32_t), err);
        if (!st) st = lp_lpm_writer_add(w, "mf/knn_sims", LP_LPM_DTYPE_F32, m->knn.w,
                                        m->knn.nnz * sizeof(float), err);
    }
    if (!st) st = add_ids(w, "mf/user_ids", &m->users, err);
    if (!st) st = add_ids(w, "mf/item_ids", &m->items, err);
    if (!st) st = lp_lpm_writer_save(w, hs, path, err);
    free(hs);
    lp_lpm_writer_free(w);
    return st;
}

/* ---- loading ------------------------------------------------------------------------------*/

static lp_status hnum(const cJSON *o, const char *key, double lo, double hi, const char *name,
                      double *v, lp_err *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble) || j->valuedouble < lo ||
        j->valuedouble > hi || floor(j->valuedouble) != j->valuedouble)
        return lp_err_set(err, LP_EFORMAT, "%s: header field '%s' is missing or not an integer "
                          "in [%.0f, %.0f]", name, key, lo, hi);
    *v = j->valuedouble;
    return LP_OK;
}

static lp_status hreal(const cJSON *o, const char *key, const char *name, float *v, lp_err *err)
{
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(j) || !isfinite(j->valuedouble))
        return lp_err_set(err, LP_EFORMAT, "%s: header field 'opts.%s' is missing or not finite",
                          name, key);
    *v = (float)j->valuedouble;
    return LP_OK;
}

/* Copy a section of exactly `count` elements of `elem` bytes into a new array. */
static lp_status sect(const lp_lpm *f, const char *name, const char *sec, lp_lpm_dtype dt,
                      size_t count, size_t elem, void **out, lp_err *err)
{
    const void *d;
    size_t n;
    lp_status st = lp_lpm_section(f, sec, (int)dt, &d, &n, err);
    if (st) return st;
    if (n != count * elem)
        return lp_err_set(err, LP_EFORMAT, "%s: section %s has %zu bytes, expected %zu", name,
                          sec, n, count * elem);
    *out = lp_mallocarray(count ? count : 1, elem);
    if (!*out) return lp_err_set(err, LP_ENOMEM, "%s: out of memory for %s", name, sec);
    if (n) memcpy(*out, d, n);
    return LP_OK;
}

static lp_status check_finite(const float *v, size_t n, const char *name, const char *sec,
                              lp_err *err)
{
    for (size_t t = 0; t < n; t++)
        if (!isfinite(v[t]))
            return lp_err_set(err, LP_EFORMAT, "%s: section %s value %zu is not finite", name,
                              sec, t);
    return LP_OK;
}

/* CSR ptr must start at 0, be nondecreasing and end at nnz; columns in [0, n_cols). Every
 * offset is checked against nnz before a row's entries are read (an offset past the end
 * followed by a smaller one would otherwise read past the column array). */
static lp_status check_csr(const mf_csr *c, size_t n_cols, bool ascending, const char *name,
                           const char *sec, lp_err *err)
{
    if (c->ptr[0] != 0 || (size_t)c->ptr[c->n_rows] != c->nnz)
        return lp_err_set(err, LP_EFORMAT, "%s: section %s offsets do not span the entries",
                          name, sec);
    for (size_t r = 0; r < c->n_rows; r++) {
        if (c->ptr[r + 1] < c->ptr[r] || (size_t)c->ptr[r + 1] > c->nnz)
            return lp_err_set(err, LP_EFORMAT, "%s: section %s offset %zu decreases or passes "
                              "the %zu entries", name, sec, r + 1, c->nnz);
        for (int32_t p = c->ptr[r]; p < c->ptr[r + 1]; p++) {
            if (c->col[p] < 0 || (size_t)c->col[p] >= n_cols ||
                (ascending && p > c->ptr[r] && c->col[p] <= c->col[p - 1]) ||
                (!ascending && (size_t)c->col[p] == r))
                return lp_err_set(err, LP_EFORMAT, "%s: section %s entry %d (row %zu) has a bad "
                                  "index %d", name, sec, p, r, c->col[p]);
        }
    }
    return LP_OK;
}

static lp_status load_ids(const lp_lpm *f, const char *name, const char *sec, size_t want,
                          mf_ids *ids, lp_err *err)
{
    const void *d;
    size_t n;
    lp_status st = lp_lpm_section(f, sec, LP_LPM_DTYPE_BYTES, &d, &n, err);
    if (st) return st;
    lp_reader r;
    lp_reader_init(&r, d, n, sec);
    uint32_t cnt;
    if ((st = lp_reader_u32(&r, &cnt, err))) return lp_err_prefix(err, "%s", name);
    if (cnt != want)
        return lp_err_set(err, LP_EFORMAT, "%s: section %s holds %u ids, expected %zu", name, sec,
                          cnt, want);
    lp_mf_data *probe = lp_mf_data_new();
    if (!probe) return lp_err_set(err, LP_ENOMEM, "%s: out of memory", name);
    for (uint32_t t = 0; t < cnt && !st; t++) {
        char *s = NULL;
        int32_t idx;
        bool added;
        if ((st = lp_reader_str(&r, &s, LP_MF_ID_MAX, err))) {
            lp_err_prefix(err, "%s", name);
        } else if (!s || (st = lp_mf_data_add(probe, s, "x", 1, err))) {
            st = lp_err_set(err, LP_EFORMAT, "%s: section %s id %u is not a valid id", name, sec,
                            t);
        } else if ((st = mf_ids_add(ids, s, &idx, &added, err)) == LP_OK && !added) {
            st = lp_err_set(err, LP_EFORMAT, "%s: section %s id %u repeats an earlier id", name,
                            sec, t);
        }
        free(s);
    }
    lp_mf_data_free(probe);
    if (!st && r.pos != r.len)
        st = lp_err_set(err, LP_EFORMAT, "%s: section %s has %zu trailing bytes", name, sec,
                        r.len - r.pos);
    return st;
}

/* The header's optional "source" (add_source) into m; absent: none recorded. */
static lp_status load_source(const cJSON *h, const char *name, lp_mf *m, lp_err *err)
{
    const cJSON *sj = cJSON_GetObjectItemCaseSensitive(h, "source");
    if (!sj) return LP_OK;
    if (!cJSON_IsObject(sj))
        return lp_err_set(err, LP_EFORMAT, "%s: header field 'source' is not an object", name);
    lp_mf_source src = {.ev = lp_mf_event_opts_default()};
    const char *keys[5] = {"user_col", "item_col", "weight_col", "type_col", "time_col"};
    const char **vals[5] = {&src.user_col, &src.item_col, &src.weight_col, &src.type_col,
                            &src.time_col};
    for (int c = 0; c < 5; c++) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(sj, keys[c]);
        if (!j) continue;
        if (!cJSON_IsString(j))
            return lp_err_set(err, LP_EFORMAT, "%s: header field 'source.%s' is not a string",
                              name, keys[c]);
        *vals[c] = j->valuestring;
    }
    const cJSON *ew = cJSON_GetObjectItemCaseSensitive(sj, "event_weights");
    if (ew) {
        int n = cJSON_GetArraySize(ew);
        if (!cJSON_IsArray(ew) || n < 1 || n > LP_MF_EVENT_TYPES_MAX)
            return lp_err_set(err, LP_EFORMAT, "%s: header field 'source.event_weights' is not "
                              "an array of 1..%d [type, weight] pairs", name,
                              LP_MF_EVENT_TYPES_MAX);
        src.ev.n_types = (size_t)n;
        for (int t = 0; t < n; t++) {
            const cJSON *pair = cJSON_GetArrayItem(ew, t);
            const cJSON *tn = cJSON_GetArrayItem(pair, 0), *tw = cJSON_GetArrayItem(pair, 1);
            if (!cJSON_IsArray(pair) || !cJSON_IsString(tn) || !cJSON_IsNumber(tw) ||
                strlen(tn->valuestring) > LP_MF_EVENT_NAME_MAX)
                return lp_err_set(err, LP_EFORMAT, "%s: header field 'source.event_weights' "
                                  "entry %d is not a [type, weight] pair", name, t);
            strcpy(src.ev.type_name[t], tn->valuestring);
            src.ev.type_weight[t] = (float)tw->valuedouble;
        }
    }
    const cJSON *hl = cJSON_GetObjectItemCaseSensitive(sj, "half_life_s");
    const cJSON *now = cJSON_GetObjectItemCaseSensitive(sj, "now");
    if (cJSON_IsNumber(hl)) src.ev.half_life_s = hl->valuedouble;
    if (cJSON_IsNumber(now)) src.ev.now = now->valuedouble;
    const cJSON *tref = cJSON_GetObjectItemCaseSensitive(sj, "time_ref");
    if (cJSON_IsNumber(tref)) src.time_ref = tref->valuedouble; /* absent in older files: 0 */
    lp_status st = lp_mf_set_source(m, &src, err);
    if (st) {
        lp_err_prefix(err, "%s: header field 'source'", name);
        if (err) err->status = LP_EFORMAT;
        return LP_EFORMAT;
    }
    return LP_OK;
}

static lp_status from_lpm(const lp_lpm *f, const char *name, lp_mf **out, lp_err *err)
{
    *out = NULL;
    cJSON *h = cJSON_Parse(lp_lpm_header(f));
    if (!h) return lp_err_set(err, LP_EFORMAT, "%s: header is not JSON", name);
    lp_status st = LP_OK;
    lp_mf *m = lp_calloc(1, sizeof *m);
    if (!m) {
        cJSON_Delete(h);
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", name);
    }
    mf_ids_init(&m->users);
    mf_ids_init(&m->items);
    m->opts = lp_mf_opts_default();
    const cJSON *fam = cJSON_GetObjectItemCaseSensitive(h, "family");
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(h, "kind");
    const cJSON *oj = cJSON_GetObjectItemCaseSensitive(h, "opts");
    double nu, ni, dim, npairs, nknn, v;
    if (!cJSON_IsString(fam) || strcmp(fam->valuestring, "mf") != 0) {
        st = lp_err_set(err, LP_EFORMAT, "%s: not an mf model (header field 'family')", name);
        goto fail;
    }
    if (!cJSON_IsString(kind) || lp_mf_kind_parse(kind->valuestring, &m->opts.kind, NULL) ||
        !cJSON_IsObject(oj)) {
        st = lp_err_set(err, LP_EFORMAT, "%s: header field 'kind' or 'opts' is bad", name);
        goto fail;
    }
    if ((st = hnum(h, "n_users", 1, (double)MF_MAX_ROWS, name, &nu, err)) ||
        (st = hnum(h, "n_items", 1, (double)MF_MAX_ROWS, name, &ni, err)) ||
        (st = hnum(h, "dim", 0, 1025, name, &dim, err)) ||
        (st = hnum(h, "n_pairs", 1, (double)INT32_MAX, name, &npairs, err)) ||
        (st = hnum(h, "n_neighbors", 0, (double)INT32_MAX, name, &nknn, err)) ||
        (st = hnum(oj, "factors", 1, 1024, name, &v, err)))
        goto fail;
    m->opts.factors = (size_t)v;
    if ((st = hnum(oj, "iterations", 1, 10000, name, &v, err))) goto fail;
    m->opts.iterations = (size_t)v;
    if ((st = hnum(oj, "cg_steps", 1, 64, name, &v, err))) goto fail;
    m->opts.cg_steps = (size_t)v;
    if ((st = hnum(oj, "neighbors", 1, 100000, name, &v, err))) goto fail;
    m->opts.neighbors = (size_t)v;
    if ((st = hnum(oj, "seed", 0, 9007199254740992.0, name, &v, err))) goto fail;
    m->opts.seed = (uint64_t)v;
    if ((st = hreal(oj, "regularization", name, &m->opts.regularization, err)) ||
        (st = hreal(oj, "alpha", name, &m->opts.alpha, err)) ||
        (st = hreal(oj, "learning_rate", name, &m->opts.learning_rate, err)) ||
        (st = hreal(oj, "shrinkage", name, &m->opts.shrinkage, err)) ||
        (st = hreal(oj, "init_scale", name, &m->opts.init_scale, err)))
        goto fail;
    const cJSON *sol = cJSON_GetObjectItemCaseSensitive(oj, "solver");
    m->opts.solver = cJSON_IsString(sol) && strcmp(sol->valuestring, "cg") == 0
                         ? LP_MF_SOLVER_CG : LP_MF_SOLVER_CHOLESKY;
    const cJSON *wt = cJSON_GetObjectItemCaseSensitive(oj, "weight_transform");
    m->opts.weight_transform = LP_MF_WEIGHT_NONE; /* files from before the field */
    if (wt && (!cJSON_IsString(wt) ||
               lp_mf_weight_parse(wt->valuestring, &m->opts.weight_transform, NULL) ||
               m->opts.weight_transform == LP_MF_WEIGHT_AUTO)) {
        st = lp_err_set(err, LP_EFORMAT, "%s: header field 'opts.weight_transform' is not none "
                        "or log1p", name);
        goto fail;
    }
    if ((st = load_source(h, name, m, err))) goto fail;
    if ((st = lp_mf_opts_check(&m->opts, err))) {
        lp_err_prefix(err, "%s", name);
        if (err) err->status = st = LP_EFORMAT;
        goto fail;
    }
    m->n_users = (size_t)nu;
    m->n_items = (size_t)ni;
    m->dim = (size_t)dim;
    bool factors = m->opts.kind == LP_MF_KIND_ALS || m->opts.kind == LP_MF_KIND_BPR;
    size_t want_dim = factors ? m->opts.factors + (m->opts.kind == LP_MF_KIND_BPR) : 0;
    if (m->dim != want_dim) {
        st = lp_err_set(err, LP_EFORMAT, "%s: header dim %zu does not fit kind %s with %zu "
                        "factors", name, m->dim, lp_mf_kind_name(m->opts.kind), m->opts.factors);
        goto fail;
    }
    m->hist.n_rows = m->n_users;
    m->hist.nnz = (size_t)npairs;
    if ((st = sect(f, name, "mf/pop", LP_LPM_DTYPE_F32, m->n_items, 4, (void **)&m->pop, err)) ||
        (st = check_finite(m->pop, m->n_items, name, "mf/pop", err)) ||
        (st = sect(f, name, "mf/hist_ptr", LP_LPM_DTYPE_I32, m->n_users + 1, 4,
                   (void **)&m->hist.ptr, err)) ||
        (st = sect(f, name, "mf/hist_items", LP_LPM_DTYPE_I32, m->hist.nnz, 4,
                   (void **)&m->hist.col, err)) ||
        (st = sect(f, name, "mf/hist_w", LP_LPM_DTYPE_F32, m->hist.nnz, 4, (void **)&m->hist.w,
                   err)) ||
        (st = check_csr(&m->hist, m->n_items, true, name, "mf/hist_items", err)))
        goto fail;
    for (size_t p = 0; p < m->hist.nnz; p++)
        if (!isfinite(m->hist.w[p]) || m->hist.w[p] <= 0) {
            st = lp_err_set(err, LP_EFORMAT, "%s: section mf/hist_w value %zu is not > 0", name, p);
            goto fail;
        }
    if (factors) {
        if ((st = sect(f, name, "mf/user_factors", LP_LPM_DTYPE_F32, m->n_users * m->dim, 4,
                       (void **)&m->xu, err)) ||
            (st = check_finite(m->xu, m->n_users * m->dim, name, "mf/user_factors", err)) ||
            (st = sect(f, name, "mf/item_factors", LP_LPM_DTYPE_F32, m->n_items * m->dim, 4,
                       (void **)&m->yi, err)) ||
            (st = check_finite(m->yi, m->n_items * m->dim, name, "mf/item_factors", err)))
            goto fail;
    }
    if (m->opts.kind == LP_MF_KIND_ITEMKNN) {
        m->knn.n_rows = m->n_items;
        m->knn.nnz = (size_t)nknn;
        if ((st = sect(f, name, "mf/knn_ptr", LP_LPM_DTYPE_I32, m->n_items + 1, 4,
                       (void **)&m->knn.ptr, err)) ||
            (st = sect(f, name, "mf/knn_items", LP_LPM_DTYPE_I32, m->knn.nnz, 4,
                       (void **)&m->knn.col, err)) ||
            (st = sect(f, name, "mf/knn_sims", LP_LPM_DTYPE_F32, m->knn.nnz, 4,
                       (void **)&m->knn.w, err)) ||
            (st = check_csr(&m->knn, m->n_items, false, name, "mf/knn_items", err)) ||
            (st = check_finite(m->knn.w, m->knn.nnz, name, "mf/knn_sims", err)))
            goto fail;
    }
    if ((st = load_ids(f, name, "mf/user_ids", m->n_users, &m->users, err)) ||
        (st = load_ids(f, name, "mf/item_ids", m->n_items, &m->items, err)) ||
        (st = mf_finish(m, err)))
        goto fail;
    cJSON_Delete(h);
    *out = m;
    return LP_OK;
fail:
    cJSON_Delete(h);
    lp_mf_free(m);
    return st;
}

lp_status lp_mf_parse(const void *data, size_t len, const char *name, lp_mf **out, lp_err *err)
{
    *out = NULL;
    lp_lpm *f;
    lp_status st = lp_lpm_parse(data, len, name, &f, err);
    if (st) return st;
    st = from_lpm(f, name, out, err);
    lp_lpm_free(f);
    return st;
}

lp_status lp_mf_load(const char *path, lp_mf **out, lp_err *err)
{
    *out = NULL;
    lp_lpm *f;
    lp_status st = lp_lpm_load(path, &f, err);
    if (st) return st;
    st = from_lpm(f, path, out, err);
    lp_lpm_free(f);
    return st;
}
