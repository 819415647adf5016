/*
 * cleaner_io.c - a fitted lp_cleaner as bytes and as JSON.
 *
 * Blob layout (little-endian, lp_buf conventions): "LPCLEAN\0", u32 version, the options,
 * u64 fit rows, u64 fit duplicates, u32 columns and per column (name, u8 type, u8 kind,
 * u8 fill, f64 fill_num, str fill_str, u8 has_fence, f64 lo, f64 hi), the soft-impute state
 * (u32 p, p x u32 column, p x f64 mu, p x f64 sd, u32 r, f64 lambda, u64 iters, r x f64 s,
 * p*r x f64 V), the PCA detector (u32 p, p x u32 column, mu, sd, u32 k, p*k x f64 V,
 * f64 threshold, median, scale), then u32 CRC-32 of everything before it.
 * The loader checks the CRC first, then every count against the bytes left and every index,
 * enum and number it will later rely on, so a hostile blob with a valid CRC is still refused
 * rather than read out of bounds.
 */
#include "clean/clean_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char MAGIC[8] = "LPCLEAN";
#define MAX_NAME (1u << 16)

lp_status lp_cleaner_save(const lp_cleaner *c, lp_buf *b, lp_err *err)
{
    if (!c || !b)
        return lp_err_set(err, LP_EINVAL, "cleaner save: NULL cleaner or buffer");
    size_t start = b->len;
    const lp_cleaner_opts *o = &c->opts;
    lp_buf_put(b, MAGIC, sizeof MAGIC);
    lp_buf_u32(b, LP_CLEANER_VERSION);
    lp_buf_u8(b, (uint8_t)o->impute);
    lp_buf_f64(b, o->fill_value);
    lp_buf_str(b, c->fill_string);
    lp_buf_u8(b, (uint8_t)o->outlier);
    lp_buf_u8(b, (uint8_t)o->action);
    lp_buf_u8(b, o->dedupe);
    lp_buf_f64(b, o->z_threshold);
    lp_buf_f64(b, o->iqr_k);
    lp_buf_f64(b, o->pca_var);
    lp_buf_u64(b, o->pca_k);
    lp_buf_f64(b, o->pca_threshold);
    lp_buf_u64(b, o->svd_max_rank);
    lp_buf_u64(b, o->svd_max_iter);
    lp_buf_f64(b, o->svd_tol);
    lp_buf_f64(b, o->svd_lambda);
    lp_buf_u64(b, o->seed);
    lp_buf_u64(b, c->fit_rows);
    lp_buf_u64(b, c->fit_duplicates);
    lp_buf_u32(b, (uint32_t)c->ncols);
    for (size_t j = 0; j < c->ncols; j++) {
        const clean_col *cc = &c->col[j];
        lp_buf_str(b, cc->name);
        lp_buf_u8(b, (uint8_t)cc->type);
        lp_buf_u8(b, (uint8_t)cc->kind);
        lp_buf_u8(b, (uint8_t)cc->fill);
        lp_buf_f64(b, cc->fill_num);
        lp_buf_str(b, cc->fill_str);
        lp_buf_u8(b, cc->has_fence);
        lp_buf_f64(b, cc->lo);
        lp_buf_f64(b, cc->hi);
    }
    const lp_softimpute *si = &c->si;
    lp_buf_u32(b, (uint32_t)si->p);
    for (size_t k = 0; k < si->p; k++)
        lp_buf_u32(b, (uint32_t)c->si_cols[k]);
    for (size_t k = 0; k < si->p; k++)
        lp_buf_f64(b, si->mu[k]);
    for (size_t k = 0; k < si->p; k++)
        lp_buf_f64(b, si->sd[k]);
    lp_buf_u32(b, (uint32_t)si->r);
    lp_buf_f64(b, si->lambda);
    lp_buf_u64(b, si->iters);
    for (size_t k = 0; k < si->r; k++)
        lp_buf_f64(b, si->s[k]);
    for (size_t k = 0; k < si->p * si->r; k++)
        lp_buf_f64(b, si->v[k]);
    const lp_pca_detector *d = &c->pca;
    lp_buf_u32(b, (uint32_t)d->p);
    for (size_t k = 0; k < d->p; k++)
        lp_buf_u32(b, (uint32_t)c->pca_cols[k]);
    for (size_t k = 0; k < d->p; k++)
        lp_buf_f64(b, d->mu[k]);
    for (size_t k = 0; k < d->p; k++)
        lp_buf_f64(b, d->sd[k]);
    lp_buf_u32(b, (uint32_t)d->k);
    for (size_t k = 0; k < d->p * d->k; k++)
        lp_buf_f64(b, d->v[k]);
    lp_buf_f64(b, d->threshold);
    lp_buf_f64(b, d->err_med);
    lp_buf_f64(b, d->err_scale);
    lp_status st = lp_buf_status(b, err);
    if (st)
        return lp_err_prefix(err, "cleaner save");
    lp_buf_u32(b, lp_crc32(0, b->data + start, b->len - start));
    return lp_buf_status(b, err);
}

/* Read n doubles into a new array (n may be 0); counts are checked against the bytes left. */
static lp_status read_f64s(lp_reader *r, size_t n, double **out, lp_err *err)
{
    *out = NULL;
    if (n > (r->len - r->pos) / 8)
        return lp_err_set(err, LP_EFORMAT, "%s: %zu numbers announced at byte %zu, only %zu "
                          "bytes left", r->what, n, r->pos, r->len - r->pos);
    *out = lp_calloc(n ? n : 1, sizeof(double));
    if (!*out)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
    for (size_t i = 0; i < n; i++) {
        lp_status st = lp_reader_f64(r, &(*out)[i], err);
        if (st)
            return st;
    }
    return LP_OK;
}

/* p column indices, each < ncols and naming a numeric column. */
static lp_status read_cols(lp_reader *r, const lp_cleaner *c, size_t p, size_t **out,
                           lp_err *err)
{
    if (p > c->ncols)
        return lp_err_set(err, LP_EFORMAT, "%s: %zu columns referenced, cleaner has %zu",
                          r->what, p, c->ncols);
    *out = lp_calloc(c->ncols ? c->ncols : 1, sizeof(size_t));
    if (!*out)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
    for (size_t k = 0; k < p; k++) {
        uint32_t v;
        lp_status st = lp_reader_u32(r, &v, err);
        if (st)
            return st;
        if (v >= c->ncols || c->col[v].type != LP_COL_TYPE_NUMERIC)
            return lp_err_set(err, LP_EFORMAT, "%s: column index %u is not a numeric column",
                              r->what, v);
        (*out)[k] = v;
    }
    return LP_OK;
}

static bool all_pos(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!(v[i] > 0 && isfinite(v[i])))
            return false;
    return true;
}

static bool all_finite(const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i]))
            return false;
    return true;
}

#define TRY(x)                                                                                 \
    do {                                                                                       \
        if ((st = (x)))                                                                        \
            goto done;                                                                         \
    } while (0)
#define BAD(...)                                                                               \
    do {                                                                                       \
        st = lp_err_set(err, LP_EFORMAT, __VA_ARGS__);                                         \
        goto done;                                                                             \
    } while (0)

lp_status lp_cleaner_load(const void *data, size_t len, lp_cleaner **out, lp_err *err)
{
    if (out)
        *out = NULL;
    if (!data || !out)
        return lp_err_set(err, LP_EINVAL, "cleaner load: NULL data or output");
    const char *what = "cleaner blob";
    if (len < sizeof MAGIC + 8 || memcmp(data, MAGIC, sizeof MAGIC) != 0)
        return lp_err_set(err, LP_EFORMAT, "%s: not a cleaner (bad magic or only %zu bytes)",
                          what, len);
    lp_reader r;
    uint32_t version, crc, ncols, u32;
    uint8_t u8, enum_i, enum_o, enum_a;
    uint64_t u64;
    lp_reader_init(&r, data, len, what);
    r.pos = sizeof MAGIC;
    lp_status st = lp_reader_u32(&r, &version, err);
    if (st)
        return st;
    if (version != LP_CLEANER_VERSION)
        return lp_err_set(err, version > LP_CLEANER_VERSION ? LP_EVERSION : LP_EFORMAT,
                          "%s: version %u, this build reads version %u", what, version,
                          LP_CLEANER_VERSION);
    const uint8_t *bytes = data;
    crc = (uint32_t)bytes[len - 4] | (uint32_t)bytes[len - 3] << 8 |
          (uint32_t)bytes[len - 2] << 16 | (uint32_t)bytes[len - 1] << 24;
    if (lp_crc32(0, data, len - 4) != crc)
        return lp_err_set(err, LP_EFORMAT, "%s: CRC mismatch (truncated or corrupted, %zu bytes)",
                          what, len);
    r.len = len - 4;
    lp_cleaner *c = calloc(1, sizeof *c);
    if (!c)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
    lp_cleaner_opts *o = &c->opts;
    TRY(lp_reader_u8(&r, &enum_i, err));
    TRY(lp_reader_f64(&r, &o->fill_value, err));
    TRY(lp_reader_str(&r, &c->fill_string, MAX_NAME, err));
    TRY(lp_reader_u8(&r, &enum_o, err));
    TRY(lp_reader_u8(&r, &enum_a, err));
    TRY(lp_reader_u8(&r, &u8, err));
    o->impute = (lp_impute_method)enum_i;
    o->outlier = (lp_outlier_method)enum_o;
    o->action = (lp_outlier_action)enum_a;
    o->dedupe = u8 != 0;
    TRY(lp_reader_f64(&r, &o->z_threshold, err));
    TRY(lp_reader_f64(&r, &o->iqr_k, err));
    TRY(lp_reader_f64(&r, &o->pca_var, err));
    TRY(lp_reader_u64(&r, &u64, err));
    o->pca_k = (size_t)u64;
    TRY(lp_reader_f64(&r, &o->pca_threshold, err));
    TRY(lp_reader_u64(&r, &u64, err));
    o->svd_max_rank = (size_t)u64;
    TRY(lp_reader_u64(&r, &u64, err));
    o->svd_max_iter = (size_t)u64;
    TRY(lp_reader_f64(&r, &o->svd_tol, err));
    TRY(lp_reader_f64(&r, &o->svd_lambda, err));
    TRY(lp_reader_u64(&r, &o->seed, err));
    if (!c->fill_string)
        BAD("%s: fill string missing", what);
    o->fill_string = c->fill_string;
    if ((st = lp_cleaner_opts_check(o, err))) {
        st = lp_err_set(err, LP_EFORMAT, "%s: bad options (%s)", what, lp_err_text(err));
        goto done;
    }
    TRY(lp_reader_u64(&r, &u64, err));
    c->fit_rows = (size_t)u64;
    TRY(lp_reader_u64(&r, &u64, err));
    c->fit_duplicates = (size_t)u64;
    TRY(lp_reader_u32(&r, &ncols, err));
    /* each column takes at least 32 bytes: bound the allocation by the bytes left */
    if (!ncols || ncols > (r.len - r.pos) / 32)
        BAD("%s: %u columns cannot fit in %zu bytes", what, ncols, r.len - r.pos);
    c->col = lp_calloc(ncols, sizeof *c->col);
    if (!c->col)
        BAD("%s: out of memory", what);
    for (uint32_t j = 0; j < ncols; j++) {
        clean_col *cc = &c->col[j];
        c->ncols = j + 1;
        uint8_t ty, ki, fi, fe;
        TRY(lp_reader_str(&r, &cc->name, MAX_NAME, err));
        TRY(lp_reader_u8(&r, &ty, err));
        TRY(lp_reader_u8(&r, &ki, err));
        TRY(lp_reader_u8(&r, &fi, err));
        TRY(lp_reader_f64(&r, &cc->fill_num, err));
        TRY(lp_reader_str(&r, &cc->fill_str, MAX_NAME, err));
        TRY(lp_reader_u8(&r, &fe, err));
        TRY(lp_reader_f64(&r, &cc->lo, err));
        TRY(lp_reader_f64(&r, &cc->hi, err));
        if (!cc->name || !cc->name[0] || ki > LP_COL_KIND_TEXT || fi >= CLEAN_FILL_COUNT_ ||
            lp_col_kind_type((lp_col_kind)ki) != (lp_col_type)ty)
            BAD("%s: column %u has a bad name, kind, type or fill", what, j);
        cc->type = (lp_col_type)ty;
        cc->kind = (lp_col_kind)ki;
        cc->fill = (clean_fill)fi;
        cc->has_fence = fe != 0;
        bool num = cc->type == LP_COL_TYPE_NUMERIC;
        if ((cc->fill == CLEAN_FILL_STR && (num || !cc->fill_str)) ||
            ((cc->fill == CLEAN_FILL_NUM || cc->fill == CLEAN_FILL_SVD) && !num) ||
            (cc->fill == CLEAN_FILL_NUM && !isfinite(cc->fill_num)) ||
            (cc->has_fence && (!num || !(cc->lo <= cc->hi))))
            BAD("%s: column '%s' has an inconsistent fill or fence", what, cc->name);
    }
    lp_softimpute *si = &c->si;
    TRY(lp_reader_u32(&r, &u32, err));
    si->p = u32;
    TRY(read_cols(&r, c, si->p, &c->si_cols, err));
    TRY(read_f64s(&r, si->p, &si->mu, err));
    TRY(read_f64s(&r, si->p, &si->sd, err));
    TRY(lp_reader_u32(&r, &u32, err));
    si->r = u32;
    TRY(lp_reader_f64(&r, &si->lambda, err));
    TRY(lp_reader_u64(&r, &u64, err));
    si->iters = (size_t)u64;
    if (si->r > si->p)
        BAD("%s: soft-impute rank %zu above its %zu columns", what, si->r, si->p);
    TRY(read_f64s(&r, si->r, &si->s, err));
    TRY(read_f64s(&r, si->p * si->r, &si->v, err));
    if (!all_finite(si->mu, si->p) || !all_pos(si->sd, si->p) || !(si->lambda >= 0) ||
        !all_finite(si->v, si->p * si->r))
        BAD("%s: soft-impute state has non-finite or non-positive values", what);
    /* the fold-in needs s_k > lambda so its system stays positive definite */
    for (size_t k = 0; k < si->r; k++)
        if (!(si->s[k] > si->lambda) || !isfinite(si->s[k]))
            BAD("%s: soft-impute singular value %zu not above lambda", what, k);
    for (size_t j = 0, k = 0; j < c->ncols; j++) {
        bool in = k < si->p && c->si_cols[k] == j;
        if (in != (c->col[j].fill == CLEAN_FILL_SVD))
            BAD("%s: soft-impute columns disagree with the column fills", what);
        k += in;
    }
    lp_pca_detector *d = &c->pca;
    TRY(lp_reader_u32(&r, &u32, err));
    d->p = u32;
    TRY(read_cols(&r, c, d->p, &c->pca_cols, err));
    TRY(read_f64s(&r, d->p, &d->mu, err));
    TRY(read_f64s(&r, d->p, &d->sd, err));
    TRY(lp_reader_u32(&r, &u32, err));
    d->k = u32;
    if (d->k > d->p)
        BAD("%s: PCA keeps %zu components of %zu columns", what, d->k, d->p);
    TRY(read_f64s(&r, d->p * d->k, &d->v, err));
    TRY(lp_reader_f64(&r, &d->threshold, err));
    TRY(lp_reader_f64(&r, &d->err_med, err));
    TRY(lp_reader_f64(&r, &d->err_scale, err));
    if (!all_finite(d->mu, d->p) || !all_pos(d->sd, d->p) || !all_finite(d->v, d->p * d->k) ||
        isnan(d->threshold))
        BAD("%s: PCA state has non-finite or non-positive values", what);
    if (r.pos != r.len)
        BAD("%s: %zu unexpected bytes after the PCA state", what, r.len - r.pos);
done:
    if (st) {
        lp_cleaner_free(c);
        return st;
    }
    *out = c;
    return LP_OK;
}

/* ---- JSON ---------------------------------------------------------------------------------*/

static bool add(cJSON *obj, const char *key, cJSON *item)
{
    if (!item)
        return false;
    if (!cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

static bool push(cJSON *arr, cJSON *item)
{
    if (!item)
        return false;
    if (!cJSON_AddItemToArray(arr, item)) {
        cJSON_Delete(item);
        return false;
    }
    return true;
}

static cJSON *num(double v) { return lp_clean_json_num(v); }
static cJSON *cnt(size_t v) { return cJSON_CreateNumber((double)v); }

static const char *fill_name(const lp_cleaner *c, const clean_col *cc)
{
    switch (cc->fill) {
    case CLEAN_FILL_SVD:
        return "soft";
    case CLEAN_FILL_STR:
        return c->opts.impute == LP_IMPUTE_METHOD_CONSTANT ? "constant" : "most_frequent";
    case CLEAN_FILL_NUM:
        if (cc->kind == LP_COL_KIND_BOOL && c->opts.impute != LP_IMPUTE_METHOD_CONSTANT)
            return "most_frequent";
        return c->opts.impute == LP_IMPUTE_METHOD_SOFT ? "mean"
                                                       : lp_impute_method_name(c->opts.impute);
    default:
        return "none";
    }
}

static bool names_json(cJSON *parent, const lp_cleaner *c, const size_t *idx, size_t p)
{
    cJSON *a = cJSON_AddArrayToObject(parent, "columns");
    bool ok = a != NULL;
    for (size_t k = 0; ok && k < p; k++)
        ok = push(a, cJSON_CreateString(c->col[idx[k]].name));
    return ok;
}

/* Every container is attached to its parent when created, so deleting root frees all. */
static bool fitted_json(cJSON *root, const lp_cleaner *c)
{
    const lp_cleaner_opts *o = &c->opts;
    cJSON *op = cJSON_AddObjectToObject(root, "options");
    bool ok = add(root, "version", cnt(LP_CLEANER_VERSION)) && op &&
              add(op, "impute", cJSON_CreateString(lp_impute_method_name(o->impute))) &&
              add(op, "fill_value", num(o->fill_value)) &&
              add(op, "fill_string", cJSON_CreateString(c->fill_string)) &&
              add(op, "outlier", cJSON_CreateString(lp_outlier_method_name(o->outlier))) &&
              add(op, "action", cJSON_CreateString(lp_outlier_action_name(o->action))) &&
              add(op, "dedupe", cJSON_CreateBool(o->dedupe)) &&
              add(op, "z_threshold", num(o->z_threshold)) && add(op, "iqr_k", num(o->iqr_k)) &&
              add(op, "pca_var", num(o->pca_var)) && add(op, "pca_k", cnt(o->pca_k)) &&
              add(op, "pca_threshold", num(o->pca_threshold)) &&
              add(op, "svd_max_rank", cnt(o->svd_max_rank)) &&
              add(op, "svd_max_iter", cnt(o->svd_max_iter)) &&
              add(op, "svd_tol", num(o->svd_tol)) && add(op, "svd_lambda", num(o->svd_lambda)) &&
              add(op, "seed", cJSON_CreateNumber((double)o->seed)) &&
              add(root, "fit_rows", cnt(c->fit_rows)) &&
              add(root, "fit_duplicates_removed", cnt(c->fit_duplicates));
    cJSON *cols = ok ? cJSON_AddArrayToObject(root, "columns") : NULL;
    ok = ok && cols;
    for (size_t j = 0; ok && j < c->ncols; j++) {
        const clean_col *cc = &c->col[j];
        cJSON *x = cJSON_CreateObject();
        ok = push(cols, x) && add(x, "name", cJSON_CreateString(cc->name)) &&
             add(x, "type", cJSON_CreateString(lp_col_type_name(cc->type))) &&
             add(x, "kind", cJSON_CreateString(lp_col_kind_name(cc->kind))) &&
             add(x, "imputer", cJSON_CreateString(fill_name(c, cc))) &&
             add(x, "fill", cc->fill == CLEAN_FILL_STR   ? cJSON_CreateString(cc->fill_str)
                            : cc->fill == CLEAN_FILL_NUM ? num(cc->fill_num)
                                                         : cJSON_CreateNull()) &&
             add(x, "fence_low", cc->has_fence ? num(cc->lo) : cJSON_CreateNull()) &&
             add(x, "fence_high", cc->has_fence ? num(cc->hi) : cJSON_CreateNull());
    }
    if (ok && c->si.p) {
        cJSON *si = cJSON_AddObjectToObject(root, "soft_impute");
        ok = si && names_json(si, c, c->si_cols, c->si.p) && add(si, "rank", cnt(c->si.r)) &&
             add(si, "lambda", num(c->si.lambda)) && add(si, "iterations", cnt(c->si.iters));
        cJSON *sv = ok ? cJSON_AddArrayToObject(si, "singular_values") : NULL;
        ok = ok && sv;
        for (size_t k = 0; ok && k < c->si.r; k++)
            ok = push(sv, num(c->si.s[k]));
    }
    if (ok && c->pca.p) {
        cJSON *pc = cJSON_AddObjectToObject(root, "pca");
        ok = pc && names_json(pc, c, c->pca_cols, c->pca.p) &&
             add(pc, "components", cnt(c->pca.k)) && add(pc, "threshold", num(c->pca.threshold)) &&
             add(pc, "error_median", num(c->pca.err_med)) &&
             add(pc, "error_scale", num(c->pca.err_scale));
    }
    return ok;
}

static bool report_json(cJSON *o, const lp_clean_report *r)
{
    bool ok = add(o, "rows_in", cnt(r->rows_in)) && add(o, "rows_out", cnt(r->rows_out)) &&
              add(o, "duplicates_removed", cnt(r->duplicates_removed)) &&
              add(o, "outlier_rows", cnt(r->outlier_rows)) &&
              add(o, "rows_dropped", cnt(r->rows_dropped));
    cJSON *cols = ok ? cJSON_AddArrayToObject(o, "columns") : NULL;
    ok = ok && cols;
    for (size_t j = 0; ok && j < r->cols; j++) {
        const lp_clean_col_report *c = &r->col[j];
        cJSON *x = cJSON_CreateObject();
        ok = push(cols, x) && add(x, "name", cJSON_CreateString(c->name)) &&
             add(x, "missing", cnt(c->missing)) && add(x, "imputed", cnt(c->imputed)) &&
             add(x, "outliers", cnt(c->outliers)) && add(x, "clipped", cnt(c->clipped));
    }
    return ok;
}

lp_status lp_cleaner_to_json(const lp_cleaner *c, const lp_clean_report *r, char **json,
                             lp_err *err)
{
    *json = NULL;
    if (!c)
        return lp_err_set(err, LP_EINVAL, "cleaner JSON: NULL cleaner");
    cJSON *root = cJSON_CreateObject();
    cJSON *fit = root ? cJSON_AddObjectToObject(root, "fitted") : NULL;
    bool ok = fit && fitted_json(fit, c);
    if (ok && r) {
        cJSON *a = cJSON_AddObjectToObject(root, "applied");
        ok = a && report_json(a, r);
    }
    if (!ok) {
        cJSON_Delete(root);
        return lp_err_set(err, LP_ENOMEM, "cleaner JSON: out of memory");
    }
    return lp_clean_json_finish(root, json, err);
}
