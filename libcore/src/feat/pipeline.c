/*
 * pipeline.c - the fitted column pipeline: steps over named frame columns, fit on a training
 * frame, transform any frame with those columns into a CSR (or dense) float matrix with named
 * features, and an exact, versioned, CRC-checked binary form.
 *
 * Each step's block is computed separately ((n, n_out) CSR) and the blocks are joined side by
 * side. Dense blocks (PASSTHROUGH, SCALE, DATETIME) are computed in double and rounded to float
 * once, so a loaded pipeline (doubles stored bit-exactly) transforms bit-identically.
 * Loading validates every count against the bytes left and every fitted shape against the
 * step's declared output width, so a crafted blob with a valid CRC still cannot index out of
 * bounds at transform time.
 */
#include "feat/pipeline_internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PIPE_MAGIC 0x4C50504Cu /* "LPPL" little-endian */
#define PIPE_VERSION 1u

static const char *const STEP_NAMES[] = {"passthrough", "drop", "scale", "onehot",
                                         "hash", "tfidf", "datetime"};

const char *lp_step_kind_name(lp_step_kind k)
{
    return (unsigned)k <= LP_STEP_KIND_DATETIME ? STEP_NAMES[k] : "unknown";
}

lp_status lp_step_kind_parse(const char *s, lp_step_kind *out, lp_err *err)
{
    for (int k = 0; k <= LP_STEP_KIND_DATETIME; k++)
        if (s && !strcmp(s, STEP_NAMES[k])) {
            *out = (lp_step_kind)k;
            return LP_OK;
        }
    return lp_err_set(err, LP_EINVAL,
                      "step '%s': expected passthrough, drop, scale, onehot, hash, tfidf or "
                      "datetime",
                      s ? s : "(null)");
}

lp_step_opts lp_step_opts_default(lp_step_kind kind)
{
    lp_step_opts o = {.kind = kind,
                      .scaler = lp_scaler_opts_default(LP_SCALER_KIND_STANDARD),
                      .onehot = lp_onehot_opts_default(),
                      .hash_features = 1024,
                      .text = lp_textvec_opts_default(),
                      .pca_components = 0};
    o.text.analyzer.ngram_max = 2;
    o.text.sublinear_tf = true;
    o.text.max_features = 20000;
    return o;
}

lp_status lp_step_opts_check(const lp_step_opts *o, lp_err *err)
{
    if ((unsigned)o->kind > LP_STEP_KIND_DATETIME)
        return lp_err_set(err, LP_EINVAL, "step kind %d is not valid", (int)o->kind);
    lp_status st = LP_OK;
    if (o->kind == LP_STEP_KIND_SCALE)
        st = lp_scaler_opts_check(&o->scaler, err);
    else if (o->kind == LP_STEP_KIND_ONEHOT)
        st = lp_onehot_opts_check(&o->onehot, err);
    else if (o->kind == LP_STEP_KIND_HASH && (o->hash_features < 1 || o->hash_features > INT32_MAX))
        st = lp_err_set(err, LP_EINVAL, "hash step: hash_features %u must be in [1, 2^31)",
                        o->hash_features);
    else if (o->kind == LP_STEP_KIND_TFIDF || o->kind == LP_STEP_KIND_HASH)
        st = lp_analyzer_opts_check(&o->text.analyzer, err);
    if (!st && o->pca_components && o->kind != LP_STEP_KIND_SCALE &&
        o->kind != LP_STEP_KIND_PASSTHROUGH && o->kind != LP_STEP_KIND_DATETIME)
        st = lp_err_set(err, LP_EINVAL, "%s step: PCA applies to passthrough, scale and datetime",
                        lp_step_kind_name(o->kind));
    return st;
}

static void step_clear_fit(step *s)
{
    for (size_t j = 0; j < s->n_out && s->names; j++)
        free(s->names[j]);
    free(s->names);
    s->names = NULL;
    s->n_out = 0;
    lp_scaler_free(s->scaler);
    s->scaler = NULL;
    for (size_t c = 0; c < s->n_cols; c++) {
        if (s->oh)
            lp_onehot_free(s->oh[c]);
        if (s->tv)
            lp_textvec_free(s->tv[c]);
    }
    free(s->oh);
    free(s->tv);
    s->oh = NULL;
    s->tv = NULL;
    lp_pca_free(s->pca);
    s->pca = NULL;
}

static void step_free(step *s)
{
    step_clear_fit(s);
    for (size_t c = 0; c < s->n_cols; c++)
        free(s->cols[c]);
    free(s->cols);
    free(s->col_type);
    free(s->pattern);
}

lp_pipeline *lp_pipeline_new(void) { return calloc(1, sizeof(lp_pipeline)); }

void lp_pipeline_free(lp_pipeline *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_steps; i++)
        step_free(&p->steps[i]);
    free(p->steps);
    free(p->names);
    free(p);
}

size_t lp_pipeline_n_steps(const lp_pipeline *p) { return p->n_steps; }
bool lp_pipeline_is_fitted(const lp_pipeline *p) { return p->fitted; }
size_t lp_pipeline_n_features(const lp_pipeline *p) { return p->fitted ? p->n_out : 0; }

const char *lp_pipeline_feature_name(const lp_pipeline *p, size_t j)
{
    return p->fitted && j < p->n_out ? p->names[j] : NULL;
}

static step *push_step(lp_pipeline *p)
{
    step *ns = lp_reallocarray(p->steps, p->n_steps + 1, sizeof(step));
    if (!ns)
        return NULL;
    p->steps = ns;
    step *s = &p->steps[p->n_steps++];
    memset(s, 0, sizeof *s);
    return s;
}

lp_status lp_pipeline_add(lp_pipeline *p, const char *const *cols, size_t n_cols,
                          const lp_step_opts *o, lp_err *err)
{
    if (p->fitted)
        return lp_err_set(err, LP_ESTATE, "pipeline: cannot add a step after fit");
    lp_status st = lp_step_opts_check(o, err);
    if (st)
        return st;
    if (!n_cols)
        return lp_err_set(err, LP_EINVAL, "%s step: no columns", lp_step_kind_name(o->kind));
    for (size_t c = 0; c < n_cols; c++)
        if (!cols[c] || !cols[c][0])
            return lp_err_set(err, LP_EINVAL, "%s step: column %zu has no name",
                              lp_step_kind_name(o->kind), c);
    step *s = push_step(p);
    if (!s)
        return lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
    s->o = *o;
    s->o.text.kind = LP_TEXTVEC_KIND_TFIDF;
    s->cols = lp_calloc(n_cols, sizeof(char *));
    s->col_type = lp_calloc(n_cols, 1);
    bool ok = s->cols && s->col_type;
    s->n_cols = s->cols ? n_cols : 0;
    for (size_t c = 0; ok && c < n_cols; c++)
        ok = (s->cols[c] = lp_strdup(cols[c])) != NULL;
    if (ok && o->text.analyzer.token_pattern)
        ok = (s->pattern = lp_strdup(o->text.analyzer.token_pattern)) != NULL;
    s->o.text.analyzer.token_pattern = s->pattern;
    if (!ok) {
        step_free(s);
        p->n_steps--;
        return lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
    }
    return LP_OK;
}

/* ---- per-cell access ----------------------------------------------------------------------- */
/* Cell i as a string (NULL when missing); numbers formatted by lp_column_cell_str into buf. */
const char *lp_step_cell_str(const lp_column *c, size_t i, char *buf, size_t cap)
{
    if (c->missing[i])
        return NULL;
    if (c->type == LP_COL_TYPE_CATEGORICAL)
        return c->dict[c->codes[i]];
    if (c->type == LP_COL_TYPE_TEXT)
        return c->text[i];
    return lp_column_cell_str(c, i, buf, cap);
}

bool lp_step_is_numeric(lp_step_kind k)
{
    return k == LP_STEP_KIND_PASSTHROUGH || k == LP_STEP_KIND_SCALE || k == LP_STEP_KIND_DATETIME;
}

/* Resolve the step's columns in f; checks numeric-ness for numeric steps. */
static lp_status resolve(const step *s, size_t si, const lp_frame *f, const lp_column **cols,
                         lp_err *err)
{
    for (size_t c = 0; c < s->n_cols; c++) {
        size_t j;
        lp_status st = lp_frame_require(f, s->cols[c], "the frame", &j, err);
        if (st)
            return lp_err_prefix(err, "pipeline step %zu (%s)", si, lp_step_kind_name(s->o.kind));
        cols[c] = lp_frame_col(f, j);
        if (lp_step_is_numeric(s->o.kind) && cols[c]->type != LP_COL_TYPE_NUMERIC)
            return lp_err_set(err, LP_EINVAL,
                              "pipeline step %zu (%s): column '%s' is %s, expected numeric", si,
                              lp_step_kind_name(s->o.kind), s->cols[c],
                              lp_col_type_name(cols[c]->type));
    }
    return LP_OK;
}

/* Raw dense block (n, w) of a numeric step before scaling: the values, or for DATETIME the
 * cyclic features with the raw epoch in the 5th slot. */
void lp_step_raw_block(const step *s, const lp_column **cols, size_t n, double *x)
{
    size_t w = s->o.kind == LP_STEP_KIND_DATETIME ? DT_FEATURES * s->n_cols : s->n_cols;
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < s->n_cols; c++) {
            double t = cols[c]->num[i];
            if (s->o.kind != LP_STEP_KIND_DATETIME) {
                x[i * w + c] = t;
                continue;
            }
            double *o = x + i * w + c * DT_FEATURES;
            if (isnan(t)) {
                for (int k = 0; k < DT_FEATURES; k++)
                    o[k] = NAN;
                continue;
            }
            double days = floor(t / 86400.0);
            double hour = (t - days * 86400.0) / 3600.0;
            double dow = fmod(days + 3.0, 7.0); /* 1970-01-01 was a Thursday; Monday = 0 */
            if (dow < 0)
                dow += 7;
            o[0] = sin(2 * M_PI * hour / 24);
            o[1] = cos(2 * M_PI * hour / 24);
            o[2] = sin(2 * M_PI * dow / 7);
            o[3] = cos(2 * M_PI * dow / 7);
            o[4] = t;
        }
}

size_t lp_step_block_width(const step *s)
{
    return s->o.kind == LP_STEP_KIND_DATETIME ? DT_FEATURES * s->n_cols : s->n_cols;
}

/* Scale a raw block in place (SCALE: all columns; DATETIME: the epoch slots). */
void lp_step_scale_block(const step *s, double *x, size_t n)
{
    if (!s->scaler)
        return;
    if (s->o.kind == LP_STEP_KIND_SCALE) {
        lp_scaler_transform(s->scaler, x, n, s->n_cols, x, NULL);
        return;
    }
    size_t w = lp_step_block_width(s);
    for (size_t i = 0; i < n; i++)
        for (size_t c = 0; c < s->n_cols; c++) {
            double *e = x + i * w + c * DT_FEATURES + 4;
            *e = (*e - s->scaler->center[c]) / s->scaler->scale[c];
        }
}

lp_status lp_step_check_range(const step *s, const double *y, size_t n, size_t k, lp_err *err)
{
    size_t w = lp_step_block_width(s);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < k; j++) {
            double v = y[i * k + j];
            if (!(fabs(v) > FLT_MAX) || isnan(v))
                continue;
            if (s->pca)
                return lp_err_set(err, LP_EINVAL, "row %zu: PCA component %zu of the numeric "
                                  "columns is %g, beyond what a float holds (the input is out of "
                                  "range)", i, j, v);
            return lp_err_set(err, LP_EINVAL, "row %zu, column '%s': %g after scaling, beyond "
                              "what a float holds (the input is out of range)", i,
                              s->cols[w ? j * s->n_cols / w : 0], v);
        }
    return LP_OK;
}

/* ---- fit ----------------------------------------------------------------------------------- */
static lp_status add_name(step *s, size_t *k, lp_err *err, const char *fmt, ...) LP_PRINTF(4, 5);
static lp_status add_name(step *s, size_t *k, lp_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lp_buf b;
    lp_buf_init(&b);
    char tmp[1];
    int len = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    char *name = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!name)
        return lp_err_set(err, LP_ENOMEM, "pipeline: out of memory for feature names");
    va_start(ap, fmt);
    vsnprintf(name, (size_t)len + 1, fmt, ap);
    va_end(ap);
    s->names[(*k)++] = name;
    return LP_OK;
}

static lp_status fit_names(step *s, size_t si, lp_err *err)
{
    s->names = lp_calloc(s->n_out ? s->n_out : 1, sizeof(char *));
    if (!s->names)
        return lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
    size_t k = 0;
    lp_status st = LP_OK;
    static const char *const dt[DT_FEATURES] = {"hour_sin", "hour_cos", "dow_sin", "dow_cos",
                                                "epoch"};
    if (s->pca) {
        for (size_t c = 0; c < s->pca->k && !st; c++)
            st = add_name(s, &k, err, "pca%zu:%zu", si, c);
        return st;
    }
    for (size_t c = 0; c < s->n_cols && !st; c++) {
        const char *col = s->cols[c];
        switch (s->o.kind) {
        case LP_STEP_KIND_PASSTHROUGH:
        case LP_STEP_KIND_SCALE:
            st = add_name(s, &k, err, "%s", col);
            break;
        case LP_STEP_KIND_DATETIME:
            for (int f = 0; f < DT_FEATURES && !st; f++)
                st = add_name(s, &k, err, "%s:%s", col, dt[f]);
            break;
        case LP_STEP_KIND_ONEHOT:
            for (size_t j = 0; j < s->oh[c]->n_out && !st; j++) {
                const char *cat = lp_onehot_category(s->oh[c], j);
                st = add_name(s, &k, err, "%s=%s", col, cat ? cat : "<infrequent>");
            }
            break;
        case LP_STEP_KIND_HASH:
            for (uint32_t j = 0; j < s->o.hash_features && !st; j++)
                st = add_name(s, &k, err, "%s:hash:%u", col, j);
            break;
        case LP_STEP_KIND_TFIDF:
            for (size_t j = 0; j < lp_textvec_n_features(s->tv[c]) && !st; j++)
                st = add_name(s, &k, err, "%s:tfidf:%s", col, lp_textvec_term(s->tv[c], j));
            break;
        case LP_STEP_KIND_DROP:
            break;
        }
    }
    return st;
}

/* The output width the fitted state implies; 0 with *bad set when it is inconsistent. */
static size_t expected_out(const step *s, bool *bad)
{
    *bad = false;
    size_t w = lp_step_block_width(s), out = 0;
    switch (s->o.kind) {
    case LP_STEP_KIND_DROP:
        return 0;
    case LP_STEP_KIND_PASSTHROUGH:
    case LP_STEP_KIND_SCALE:
    case LP_STEP_KIND_DATETIME:
        if (s->scaler && s->scaler->d != s->n_cols)
            *bad = true;
        if ((s->o.kind == LP_STEP_KIND_DATETIME) != (s->scaler != NULL) &&
            s->o.kind != LP_STEP_KIND_SCALE)
            *bad = true;
        if (s->o.kind == LP_STEP_KIND_SCALE && !s->scaler)
            *bad = true;
        if (s->pca && s->pca->d != w)
            *bad = true;
        return s->pca ? s->pca->k : w;
    case LP_STEP_KIND_ONEHOT:
        for (size_t c = 0; c < s->n_cols; c++) {
            if (!s->oh || !s->oh[c]) {
                *bad = true;
                return 0;
            }
            out += s->oh[c]->n_out;
        }
        return out;
    case LP_STEP_KIND_HASH:
        for (size_t c = 0; c < s->n_cols; c++)
            if (s->tv && s->tv[c] && lp_textvec_n_features(s->tv[c]) != s->o.hash_features)
                *bad = true;
        return s->n_cols * s->o.hash_features;
    case LP_STEP_KIND_TFIDF:
        for (size_t c = 0; c < s->n_cols; c++) {
            if (!s->tv || !s->tv[c] || lp_textvec_opts_of(s->tv[c])->kind != LP_TEXTVEC_KIND_TFIDF) {
                *bad = true;
                return 0;
            }
            out += lp_textvec_n_features(s->tv[c]);
        }
        return out;
    }
    *bad = true;
    return 0;
}

static const char **column_strings(const lp_column *c, size_t n, char **numbuf)
{
    const char **v = lp_mallocarray(n ? n : 1, sizeof(char *));
    *numbuf = NULL;
    if (!v)
        return NULL;
    if (c->type == LP_COL_TYPE_NUMERIC) {
        *numbuf = lp_mallocarray(n ? n : 1, 40);
        if (!*numbuf) {
            free(v);
            return NULL;
        }
    }
    for (size_t i = 0; i < n; i++)
        v[i] = lp_step_cell_str(c, i, *numbuf ? *numbuf + 40 * i : NULL, 40);
    return v;
}

static lp_status fit_step(step *s, size_t si, const lp_frame *f, lp_err *err)
{
    size_t n = lp_frame_nrows(f);
    const lp_column **cols = lp_calloc(s->n_cols, sizeof *cols);
    if (!cols)
        return lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
    lp_status st = resolve(s, si, f, cols, err);
    if (st)
        goto done;
    for (size_t c = 0; c < s->n_cols; c++)
        s->col_type[c] = (uint8_t)cols[c]->type;
    const char *kn = lp_step_kind_name(s->o.kind);
    if (lp_step_is_numeric(s->o.kind)) {
        size_t w = lp_step_block_width(s);
        double *x = lp_mallocarray(n * w + 1, sizeof(double));
        double *ep = lp_mallocarray(n * s->n_cols + 1, sizeof(double));
        if (!x || !ep) {
            free(x);
            free(ep);
            st = lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
            goto done;
        }
        lp_step_raw_block(s, cols, n, x);
        if (s->o.kind == LP_STEP_KIND_SCALE) {
            st = lp_scaler_fit(&s->o.scaler, x, n, w, &s->scaler, err);
        } else if (s->o.kind == LP_STEP_KIND_DATETIME) {
            for (size_t i = 0; i < n; i++)
                for (size_t c = 0; c < s->n_cols; c++)
                    ep[i * s->n_cols + c] = x[i * w + c * DT_FEATURES + 4];
            lp_scaler_opts so = lp_scaler_opts_default(LP_SCALER_KIND_STANDARD);
            st = lp_scaler_fit(&so, ep, n, s->n_cols, &s->scaler, err);
        }
        if (!st && s->o.pca_components) {
            lp_step_scale_block(s, x, n);
            st = lp_pca_fit(x, n, w, s->o.pca_components, &s->pca, err);
        }
        free(x);
        free(ep);
        if (st) {
            lp_err_prefix(err, "pipeline step %zu (%s)", si, kn);
            goto done;
        }
    } else if (s->o.kind == LP_STEP_KIND_ONEHOT || s->o.kind == LP_STEP_KIND_TFIDF ||
               s->o.kind == LP_STEP_KIND_HASH) {
        bool oh = s->o.kind == LP_STEP_KIND_ONEHOT;
        if (oh)
            s->oh = lp_calloc(s->n_cols, sizeof(lp_onehot *));
        else
            s->tv = lp_calloc(s->n_cols, sizeof(lp_textvec *));
        if (oh ? !s->oh : !s->tv) {
            st = lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
            goto done;
        }
        for (size_t c = 0; c < s->n_cols && !st; c++) {
            if (s->o.kind == LP_STEP_KIND_HASH && cols[c]->type != LP_COL_TYPE_TEXT)
                continue;
            char *numbuf;
            const char **v = column_strings(cols[c], n, &numbuf);
            if (!v) {
                st = lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
                break;
            }
            if (oh) {
                st = lp_onehot_fit(&s->o.onehot, v, n, &s->oh[c], err);
            } else {
                lp_textvec_opts to = s->o.text;
                if (s->o.kind == LP_STEP_KIND_HASH) {
                    to.kind = LP_TEXTVEC_KIND_HASH;
                    to.n_features = s->o.hash_features;
                }
                st = lp_textvec_fit(&to, v, n, &s->tv[c], err);
            }
            free(v);
            free(numbuf);
            if (st)
                lp_err_prefix(err, "pipeline step %zu (%s) column '%s'", si, kn, s->cols[c]);
        }
        if (st)
            goto done;
    }
    bool bad;
    s->n_out = expected_out(s, &bad);
    st = fit_names(s, si, err);
done:
    free(cols);
    return st;
}

static lp_status collect_names(lp_pipeline *p, lp_err *err)
{
    size_t total = 0;
    for (size_t i = 0; i < p->n_steps; i++)
        total += p->steps[i].n_out;
    free(p->names);
    p->names = lp_mallocarray(total ? total : 1, sizeof(char *));
    if (!p->names)
        return lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
    size_t k = 0;
    for (size_t i = 0; i < p->n_steps; i++)
        for (size_t j = 0; j < p->steps[i].n_out; j++)
            p->names[k++] = p->steps[i].names[j];
    p->n_out = total;
    return LP_OK;
}

lp_status lp_pipeline_fit(lp_pipeline *p, const lp_frame *train, lp_err *err)
{
    if (!p->n_steps)
        return lp_err_set(err, LP_EINVAL, "pipeline: no steps to fit");
    if (!lp_frame_nrows(train))
        return lp_err_set(err, LP_EINVAL, "pipeline: the training frame has no rows");
    for (size_t i = 0; i < p->n_steps; i++)
        step_clear_fit(&p->steps[i]);
    p->fitted = false;
    for (size_t i = 0; i < p->n_steps; i++) {
        lp_status st = fit_step(&p->steps[i], i, train, err);
        if (st)
            return st;
    }
    lp_status st = collect_names(p, err);
    if (st)
        return st;
    p->fitted = true;
    return LP_OK;
}

/* ---- transform ----------------------------------------------------------------------------- */
static lp_status step_block(const step *s, size_t si, const lp_frame *f, lp_csr **out,
                            lp_err *err)
{
    size_t n = lp_frame_nrows(f);
    *out = NULL;
    const lp_column **cols = lp_calloc(s->n_cols, sizeof *cols);
    if (!cols)
        return lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
    lp_status st = resolve(s, si, f, cols, err);
    if (st) {
        free(cols);
        return st;
    }
    lp_csrb b;
    if (lp_csrb_init(&b, n, s->n_out)) {
        free(cols);
        return lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
    }
    if (lp_step_is_numeric(s->o.kind)) {
        size_t w = lp_step_block_width(s), k = s->pca ? s->pca->k : w;
        double *x = lp_mallocarray(n * w + 1, sizeof(double));
        double *y = s->pca ? lp_mallocarray(n * k + 1, sizeof(double)) : x;
        if (!x || !y) {
            st = lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
        } else {
            lp_step_raw_block(s, cols, n, x);
            lp_step_scale_block(s, x, n);
            if (s->pca)
                lp_pca_transform(s->pca, x, n, y);
            st = lp_step_check_range(s, y, n, k, err);
            for (size_t i = 0; !st && i < n; i++) {
                for (size_t j = 0; j < k; j++)
                    if (y[i * k + j] != 0)
                        lp_csrb_push(&b, (uint32_t)j, (float)y[i * k + j]);
                lp_csrb_end_row(&b);
            }
        }
        if (y != x)
            free(y);
        free(x);
    } else if (s->o.kind == LP_STEP_KIND_DROP) {
        for (size_t i = 0; i < n; i++)
            lp_csrb_end_row(&b);
    } else {
        /* per-column sub-blocks side by side */
        lp_csr **sub = lp_calloc(s->n_cols, sizeof(lp_csr *));
        size_t *off = lp_calloc(s->n_cols + 1, sizeof(size_t));
        lp_colval *e = NULL;
        if (!sub || !off)
            st = lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
        for (size_t c = 0; c < s->n_cols && !st; c++) {
            char *numbuf = NULL;
            const char **v = column_strings(cols[c], n, &numbuf);
            if (!v) {
                st = lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
                break;
            }
            if (s->o.kind == LP_STEP_KIND_ONEHOT) {
                off[c + 1] = off[c] + s->oh[c]->n_out;
            } else if (s->tv && s->tv[c]) {
                off[c + 1] = off[c] + lp_textvec_n_features(s->tv[c]);
                st = lp_textvec_transform(s->tv[c], v, n, &sub[c], err);
                if (st)
                    lp_err_prefix(err, "pipeline step %zu (%s) column '%s'", si,
                                  lp_step_kind_name(s->o.kind), s->cols[c]);
            } else {
                off[c + 1] = off[c] + s->o.hash_features;
            }
            if (!st && !sub[c]) {
                /* ONEHOT or categorical HASH: one entry (or none) per row */
                lp_csrb cb;
                size_t w = off[c + 1] - off[c];
                if (lp_csrb_init(&cb, n, w)) {
                    st = lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
                } else {
                    lp_buf key;
                    lp_buf_init(&key);
                    for (size_t i = 0; i < n; i++) {
                        if (v[i] && s->o.kind == LP_STEP_KIND_ONEHOT) {
                            long j = lp_onehot_index(s->oh[c], v[i]);
                            if (j >= 0)
                                lp_csrb_push(&cb, (uint32_t)j, 1.0f);
                        } else if (v[i]) {
                            key.len = 0;
                            lp_buf_printf(&key, "%s=%s", s->cols[c], v[i]);
                            uint32_t j = 0;
                            int sign = 1;
                            if (!key.failed)
                                lp_hash_feature((const char *)key.data, key.len,
                                                s->o.hash_features, &j, &sign);
                            lp_csrb_push(&cb, j, (float)sign);
                        }
                        lp_csrb_end_row(&cb);
                    }
                    if (key.failed)
                        cb.failed = true;
                    lp_buf_free(&key);
                    sub[c] = lp_csrb_finish(&cb);
                    if (!sub[c])
                        st = lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
                }
            }
            free(v);
            free(numbuf);
        }
        for (size_t i = 0; i < n && !st; i++) {
            for (size_t c = 0; c < s->n_cols; c++)
                for (size_t q = sub[c]->indptr[i]; q < sub[c]->indptr[i + 1]; q++)
                    lp_csrb_push(&b, (uint32_t)(off[c] + sub[c]->indices[q]), sub[c]->values[q]);
            lp_csrb_end_row(&b);
        }
        for (size_t c = 0; sub && c < s->n_cols; c++)
            lp_csr_free(sub[c]);
        free(sub);
        free(off);
        free(e);
    }
    free(cols);
    if (st) {
        lp_csrb_free(&b);
        return st;
    }
    *out = lp_csrb_finish(&b);
    return *out ? LP_OK : lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
}

lp_status lp_pipeline_transform(const lp_pipeline *p, const lp_frame *f, lp_csr **out,
                                lp_err *err)
{
    *out = NULL;
    if (!p->fitted)
        return lp_err_set(err, LP_ESTATE, "pipeline: transform before fit");
    size_t n = lp_frame_nrows(f);
    lp_csr **blocks = lp_calloc(p->n_steps, sizeof(lp_csr *));
    if (!blocks)
        return lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
    lp_status st = LP_OK;
    size_t nnz = 0;
    for (size_t i = 0; i < p->n_steps && !st; i++) {
        st = step_block(&p->steps[i], i, f, &blocks[i], err);
        if (!st)
            nnz += blocks[i]->nnz;
    }
    lp_csr *m = NULL;
    if (!st) {
        m = lp_csr_new(n, p->n_out, nnz);
        if (!m)
            st = lp_err_set(err, LP_ENOMEM, "pipeline: out of memory for %zu entries", nnz);
    }
    if (!st) {
        size_t w = 0;
        for (size_t r = 0; r < n; r++) {
            size_t off = 0;
            for (size_t i = 0; i < p->n_steps; i++) {
                const lp_csr *bk = blocks[i];
                for (size_t q = bk->indptr[r]; q < bk->indptr[r + 1]; q++) {
                    m->indices[w] = (uint32_t)(off + bk->indices[q]);
                    m->values[w++] = bk->values[q];
                }
                off += p->steps[i].n_out;
            }
            m->indptr[r + 1] = w;
        }
    }
    for (size_t i = 0; i < p->n_steps; i++)
        lp_csr_free(blocks[i]);
    free(blocks);
    if (st)
        return st;
    *out = m;
    return LP_OK;
}

lp_status lp_pipeline_transform_dense(const lp_pipeline *p, const lp_frame *f, lp_matf **out,
                                      lp_err *err)
{
    *out = NULL;
    lp_csr *m;
    lp_status st = lp_pipeline_transform(p, f, &m, err);
    if (st)
        return st;
    *out = lp_csr_to_dense(m);
    lp_csr_free(m);
    return *out ? LP_OK
                : lp_err_set(err, LP_ENOMEM, "pipeline: out of memory for a dense (%zu, %zu)",
                             lp_frame_nrows(f), p->n_out);
}

/* ---- serialisation ------------------------------------------------------------------------- */
static void put_f64s(lp_buf *b, const double *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        lp_buf_f64(b, v[i]);
}

static void save_step(const step *s, lp_buf *b)
{
    const lp_step_opts *o = &s->o;
    lp_buf_u8(b, (uint8_t)o->kind);
    lp_buf_u32(b, (uint32_t)s->n_cols);
    for (size_t c = 0; c < s->n_cols; c++) {
        lp_buf_str(b, s->cols[c]);
        lp_buf_u8(b, s->col_type[c]);
    }
    lp_buf_u8(b, (uint8_t)o->scaler.kind);
    lp_buf_u8(b, o->scaler.with_mean);
    lp_buf_u8(b, o->scaler.with_std);
    lp_buf_f64(b, o->scaler.range_min);
    lp_buf_f64(b, o->scaler.range_max);
    lp_buf_u8(b, o->scaler.with_centering);
    lp_buf_u8(b, o->scaler.with_scaling);
    lp_buf_f64(b, o->scaler.q_lo);
    lp_buf_f64(b, o->scaler.q_hi);
    lp_buf_u64(b, o->onehot.min_frequency);
    lp_buf_u64(b, o->onehot.max_categories);
    lp_buf_u32(b, o->hash_features);
    lp_buf_u64(b, o->pca_components);
    lp_buf_u64(b, s->n_out);
    for (size_t j = 0; j < s->n_out; j++)
        lp_buf_str(b, s->names[j]);
    lp_buf_u8(b, s->scaler != NULL);
    if (s->scaler) {
        lp_buf_u8(b, (uint8_t)s->scaler->o.kind);
        lp_buf_u64(b, s->scaler->d);
        put_f64s(b, s->scaler->center, s->scaler->d);
        put_f64s(b, s->scaler->scale, s->scaler->d);
        lp_buf_f64(b, s->scaler->shift);
    }
    for (size_t c = 0; c < s->n_cols; c++) {
        const lp_onehot *oh = s->oh ? s->oh[c] : NULL;
        lp_buf_u8(b, oh != NULL);
        if (oh) {
            lp_buf_u64(b, oh->cats.n);
            for (size_t i = 0; i < oh->cats.n; i++) {
                lp_buf_str(b, oh->cats.keys[i]);
                lp_buf_u32(b, oh->out_col[i]);
            }
            lp_buf_u64(b, oh->n_out);
            lp_buf_u8(b, oh->has_infrequent);
        }
        const lp_textvec *tv = s->tv ? s->tv[c] : NULL;
        lp_buf_u8(b, tv != NULL);
        if (tv)
            lp_textvec_save(tv, b);
    }
    lp_buf_u8(b, s->pca != NULL);
    if (s->pca) {
        const lp_pca *p = s->pca;
        lp_buf_u64(b, p->d);
        lp_buf_u64(b, p->k);
        put_f64s(b, p->mean, p->d);
        put_f64s(b, p->comp, p->k * p->d);
        put_f64s(b, p->ev, p->k);
        put_f64s(b, p->evr, p->k);
        put_f64s(b, p->sv, p->k);
    }
}

lp_status lp_pipeline_save(const lp_pipeline *p, lp_buf *b, lp_err *err)
{
    if (!p->fitted)
        return lp_err_set(err, LP_ESTATE, "pipeline: save before fit");
    size_t start = b->len;
    lp_buf_u32(b, PIPE_MAGIC);
    lp_buf_u32(b, PIPE_VERSION);
    lp_buf_u32(b, (uint32_t)p->n_steps);
    for (size_t i = 0; i < p->n_steps; i++)
        save_step(&p->steps[i], b);
    if (!b->failed)
        lp_buf_u32(b, lp_crc32(0, b->data + start, b->len - start));
    return lp_buf_status(b, err);
}

#define TRY(x)         \
    do {               \
        st = (x);      \
        if (st)        \
            goto fail; \
    } while (0)

/* LP_EFORMAT unless count elements of elem bytes can still be in r. */
static lp_status need(lp_reader *r, uint64_t count, size_t elem, const char *part, lp_err *err)
{
    if (count > (r->len - r->pos) / (elem ? elem : 1))
        return lp_err_set(err, LP_EFORMAT, "%s: %s count %llu exceeds the %zu bytes left",
                          r->what, part, (unsigned long long)count, r->len - r->pos);
    return LP_OK;
}

static lp_status get_f64s(lp_reader *r, double *v, size_t n, lp_err *err)
{
    for (size_t i = 0; i < n; i++) {
        lp_status st = lp_reader_f64(r, &v[i], err);
        if (st)
            return st;
    }
    return LP_OK;
}

static lp_status get_bool(lp_reader *r, bool *v, lp_err *err)
{
    uint8_t u;
    lp_status st = lp_reader_u8(r, &u, err);
    *v = u != 0;
    return st;
}

static lp_status load_step(lp_reader *r, step *s, lp_err *err)
{
    lp_status st;
    uint8_t u8;
    uint32_t u32;
    uint64_t u64, k64;
    TRY(lp_reader_u8(r, &u8, err));
    if (u8 > LP_STEP_KIND_DATETIME)
        return lp_err_set(err, LP_EFORMAT, "%s: step kind %u is unknown", r->what, u8);
    s->o = lp_step_opts_default((lp_step_kind)u8);
    TRY(lp_reader_u32(r, &u32, err));
    TRY(need(r, u32, 5, "column", err));
    if (!u32)
        return lp_err_set(err, LP_EFORMAT, "%s: a step has no columns", r->what);
    s->cols = lp_calloc(u32, sizeof(char *));
    s->col_type = lp_calloc(u32, 1);
    if (!s->cols || !s->col_type)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
    s->n_cols = u32;
    for (size_t c = 0; c < s->n_cols; c++) {
        TRY(lp_reader_str(r, &s->cols[c], 4096, err));
        TRY(lp_reader_u8(r, &s->col_type[c], err));
        if (!s->cols[c] || s->col_type[c] > LP_COL_TYPE_TEXT)
            return lp_err_set(err, LP_EFORMAT, "%s: column %zu of a step is corrupt", r->what, c);
    }
    lp_scaler_opts *so = &s->o.scaler;
    TRY(lp_reader_u8(r, &u8, err));
    so->kind = (lp_scaler_kind)u8;
    TRY(get_bool(r, &so->with_mean, err));
    TRY(get_bool(r, &so->with_std, err));
    TRY(lp_reader_f64(r, &so->range_min, err));
    TRY(lp_reader_f64(r, &so->range_max, err));
    TRY(get_bool(r, &so->with_centering, err));
    TRY(get_bool(r, &so->with_scaling, err));
    TRY(lp_reader_f64(r, &so->q_lo, err));
    TRY(lp_reader_f64(r, &so->q_hi, err));
    TRY(lp_reader_u64(r, &u64, err));
    s->o.onehot.min_frequency = (size_t)u64;
    TRY(lp_reader_u64(r, &u64, err));
    s->o.onehot.max_categories = (size_t)u64;
    TRY(lp_reader_u32(r, &s->o.hash_features, err));
    TRY(lp_reader_u64(r, &u64, err));
    s->o.pca_components = (size_t)u64;
    if (lp_step_opts_check(&s->o, NULL))
        return lp_err_set(err, LP_EFORMAT, "%s: options of a %s step are invalid", r->what,
                          lp_step_kind_name(s->o.kind));
    TRY(lp_reader_u64(r, &u64, err));
    TRY(need(r, u64, 4, "feature name", err));
    s->names = lp_calloc(u64 + 1, sizeof(char *));
    if (!s->names)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
    s->n_out = (size_t)u64;
    for (size_t j = 0; j < s->n_out; j++) {
        TRY(lp_reader_str(r, &s->names[j], 1u << 20, err));
        if (!s->names[j])
            return lp_err_set(err, LP_EFORMAT, "%s: feature name %zu is null", r->what, j);
    }
    bool has;
    TRY(get_bool(r, &has, err));
    if (has) {
        TRY(lp_reader_u8(r, &u8, err));
        lp_scaler_opts sco = *so;
        sco.kind = (lp_scaler_kind)u8;
        TRY(lp_reader_u64(r, &u64, err));
        TRY(need(r, u64, 16, "scaler", err));
        if (lp_scaler_opts_check(&sco, NULL) || !u64)
            return lp_err_set(err, LP_EFORMAT, "%s: scaler is corrupt", r->what);
        s->scaler = lp_scaler_alloc(&sco, (size_t)u64);
        if (!s->scaler)
            return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
        TRY(get_f64s(r, s->scaler->center, s->scaler->d, err));
        TRY(get_f64s(r, s->scaler->scale, s->scaler->d, err));
        TRY(lp_reader_f64(r, &s->scaler->shift, err));
    }
    s->oh = lp_calloc(s->n_cols, sizeof(lp_onehot *));
    s->tv = lp_calloc(s->n_cols, sizeof(lp_textvec *));
    if (!s->oh || !s->tv)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
    for (size_t c = 0; c < s->n_cols; c++) {
        TRY(get_bool(r, &has, err));
        if (has) {
            lp_onehot *oh = calloc(1, sizeof *oh);
            if (!oh)
                return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
            s->oh[c] = oh;
            oh->o = s->o.onehot;
            lp_strmap_init(&oh->cats);
            TRY(lp_reader_u64(r, &k64, err));
            TRY(need(r, k64, 8, "category", err));
            oh->out_col = lp_mallocarray(k64 + 1, sizeof(uint32_t));
            if (!oh->out_col)
                return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
            for (size_t i = 0; i < k64; i++) {
                char *cat = NULL;
                TRY(lp_reader_str(r, &cat, 1u << 20, err));
                size_t id;
                bool added = false;
                st = cat ? lp_strmap_add(&oh->cats, cat, strlen(cat), &id, &added) : LP_EFORMAT;
                free(cat);
                if (st || !added)
                    return lp_err_set(err, st == LP_ENOMEM ? LP_ENOMEM : LP_EFORMAT,
                                      "%s: one-hot category %zu is null or repeated", r->what, i);
                TRY(lp_reader_u32(r, &oh->out_col[id], err));
            }
            TRY(lp_reader_u64(r, &u64, err));
            oh->n_out = (size_t)u64;
            TRY(get_bool(r, &oh->has_infrequent, err));
            if (!k64 || u64 > k64 || !u64)
                return lp_err_set(err, LP_EFORMAT, "%s: one-hot sizes are corrupt", r->what);
            for (size_t i = 0; i < k64; i++)
                if (oh->out_col[i] >= oh->n_out)
                    return lp_err_set(err, LP_EFORMAT, "%s: one-hot output %u out of range",
                                      r->what, oh->out_col[i]);
            if (lp_onehot_finish(oh))
                return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
        }
        TRY(get_bool(r, &has, err));
        if (has)
            TRY(lp_textvec_load(r, &s->tv[c], err));
    }
    TRY(get_bool(r, &has, err));
    if (has) {
        TRY(lp_reader_u64(r, &u64, err));
        TRY(lp_reader_u64(r, &k64, err));
        if (!u64 || !k64 || k64 > u64 || need(r, u64, 8, "PCA", NULL) ||
            need(r, k64 * u64, 8, "PCA", NULL))
            return lp_err_set(err, LP_EFORMAT, "%s: PCA shape (%llu, %llu) is corrupt", r->what,
                              (unsigned long long)k64, (unsigned long long)u64);
        s->pca = lp_pca_alloc((size_t)u64, (size_t)k64);
        if (!s->pca)
            return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
        TRY(get_f64s(r, s->pca->mean, s->pca->d, err));
        TRY(get_f64s(r, s->pca->comp, s->pca->k * s->pca->d, err));
        TRY(get_f64s(r, s->pca->ev, s->pca->k, err));
        TRY(get_f64s(r, s->pca->evr, s->pca->k, err));
        TRY(get_f64s(r, s->pca->sv, s->pca->k, err));
    }
    bool bad;
    size_t want = expected_out(s, &bad);
    if (bad || want != s->n_out)
        return lp_err_set(err, LP_EFORMAT,
                          "%s: %s step over '%s' declares %zu outputs, its fitted state gives %zu",
                          r->what, lp_step_kind_name(s->o.kind), s->cols[0], s->n_out, want);
    return LP_OK;
fail:
    return st;
}

lp_status lp_pipeline_load(const void *data, size_t len, lp_pipeline **out, lp_err *err)
{
    *out = NULL;
    lp_reader r;
    lp_reader_init(&r, data, len, "feature pipeline");
    lp_status st;
    uint32_t magic, version, nsteps, crc;
    lp_pipeline *p = NULL;
    TRY(lp_reader_u32(&r, &magic, err));
    if (magic != PIPE_MAGIC)
        return lp_err_set(err, LP_EFORMAT, "feature pipeline: bad magic 0x%08x, expected \"LPPL\"",
                          magic);
    TRY(lp_reader_u32(&r, &version, err));
    if (version != PIPE_VERSION)
        return lp_err_set(err, LP_EVERSION, "feature pipeline: version %u, this build reads %u",
                          version, PIPE_VERSION);
    if (len < 12)
        return lp_err_set(err, LP_EFORMAT, "feature pipeline: truncated (%zu bytes)", len);
    const uint8_t *bytes = data;
    crc = (uint32_t)bytes[len - 4] | ((uint32_t)bytes[len - 3] << 8) |
          ((uint32_t)bytes[len - 2] << 16) | ((uint32_t)bytes[len - 1] << 24);
    if (crc != lp_crc32(0, data, len - 4))
        return lp_err_set(err, LP_EFORMAT,
                          "feature pipeline: CRC mismatch over %zu bytes (truncated or corrupted)",
                          len - 4);
    r.len = len - 4;
    TRY(lp_reader_u32(&r, &nsteps, err));
    TRY(need(&r, nsteps, 10, "step", err));
    p = lp_pipeline_new();
    if (!p)
        return lp_err_set(err, LP_ENOMEM, "feature pipeline: out of memory");
    for (uint32_t i = 0; i < nsteps; i++) {
        step *s = push_step(p);
        if (!s) {
            st = lp_err_set(err, LP_ENOMEM, "feature pipeline: out of memory");
            goto fail;
        }
        st = load_step(&r, s, err);
        if (st) {
            lp_err_prefix(err, "step %u", i);
            goto fail;
        }
    }
    if (r.pos != r.len) {
        st = lp_err_set(err, LP_EFORMAT, "feature pipeline: %zu unexpected bytes after the steps",
                        r.len - r.pos);
        goto fail;
    }
    TRY(collect_names(p, err));
    p->fitted = true;
    *out = p;
    return LP_OK;
fail:
    lp_pipeline_free(p);
    return st;
}

/* ---- default pipeline ---------------------------------------------------------------------- */
lp_pipeline_default_opts lp_pipeline_default_opts_default(void)
{
    return (lp_pipeline_default_opts){.exclude = NULL, .n_exclude = 0, .onehot_max_card = 32,
                                      .hash_features = 1024};
}

lp_status lp_pipeline_default(const lp_frame *f, const lp_pipeline_default_opts *opts,
                              lp_pipeline **out, lp_err *err)
{
    *out = NULL;
    lp_pipeline_default_opts defaults = lp_pipeline_default_opts_default();
    const lp_pipeline_default_opts *o = opts ? opts : &defaults;
    for (size_t e = 0; e < o->n_exclude; e++) {
        size_t j;
        lp_status st = lp_frame_require(f, o->exclude[e], "the frame", &j, err);
        if (st)
            return lp_err_prefix(err, "default pipeline: excluded column");
    }
    size_t nc = lp_frame_ncols(f);
    const char **groups[4]; /* numeric, onehot, hash, datetime */
    size_t ng[4] = {0};
    for (int g = 0; g < 4; g++)
        groups[g] = lp_calloc(nc + 1, sizeof(char *));
    lp_pipeline *p = lp_pipeline_new();
    lp_status st = LP_OK;
    if (!p || !groups[0] || !groups[1] || !groups[2] || !groups[3]) {
        st = lp_err_set(err, LP_ENOMEM, "default pipeline: out of memory");
        goto done;
    }
    for (size_t j = 0; j < nc; j++) {
        const lp_column *c = lp_frame_col(f, j);
        bool skip = false;
        for (size_t e = 0; e < o->n_exclude; e++)
            skip |= !strcmp(o->exclude[e], c->name);
        /* a column with no value at all (the empty "Unnamed: 32" a trailing comma makes) says
         * nothing, and a text step could not fit on it */
        if (skip || (c->n && lp_column_count_missing(c) == c->n))
            continue;
        switch (c->kind) {
        case LP_COL_KIND_INTEGER:
        case LP_COL_KIND_FLOAT:
        case LP_COL_KIND_BOOL:
            groups[0][ng[0]++] = c->name;
            break;
        case LP_COL_KIND_CATEGORICAL:
            if (c->n_dict <= o->onehot_max_card)
                groups[1][ng[1]++] = c->name;
            else
                groups[2][ng[2]++] = c->name;
            break;
        case LP_COL_KIND_DATETIME:
            groups[3][ng[3]++] = c->name;
            break;
        case LP_COL_KIND_TEXT: {
            lp_step_opts so = lp_step_opts_default(LP_STEP_KIND_TFIDF);
            const char *name = c->name;
            st = lp_pipeline_add(p, &name, 1, &so, err);
            break;
        }
        }
        if (st)
            goto done;
    }
    const lp_step_kind kinds[4] = {LP_STEP_KIND_SCALE, LP_STEP_KIND_ONEHOT, LP_STEP_KIND_HASH,
                                   LP_STEP_KIND_DATETIME};
    /* numeric, categorical and datetime blocks first, then the text steps added above */
    size_t n_text = p->n_steps;
    for (int g = 0; g < 4 && !st; g++) {
        if (!ng[g])
            continue;
        lp_step_opts so = lp_step_opts_default(kinds[g]);
        so.hash_features = o->hash_features;
        st = lp_pipeline_add(p, groups[g], ng[g], &so, err);
    }
    if (!st && p->n_steps > n_text && n_text) {
        step *tmp = lp_mallocarray(p->n_steps, sizeof(step));
        if (!tmp) {
            st = lp_err_set(err, LP_ENOMEM, "default pipeline: out of memory");
            goto done;
        }
        memcpy(tmp, p->steps + n_text, (p->n_steps - n_text) * sizeof(step));
        memcpy(tmp + (p->n_steps - n_text), p->steps, n_text * sizeof(step));
        memcpy(p->steps, tmp, p->n_steps * sizeof(step));
        free(tmp);
    }
    if (!st && !p->n_steps)
        st = lp_err_set(err, LP_EINVAL, "default pipeline: no feature columns left");
done:
    for (int g = 0; g < 4; g++)
        free(groups[g]);
    if (st) {
        lp_pipeline_free(p);
        return st;
    }
    *out = p;
    return LP_OK;
}

lp_status lp_pipeline_clone_unfitted(const lp_pipeline *p, lp_pipeline **out, lp_err *err)
{
    *out = NULL;
    if (p->fitted)
        return lp_err_set(err, LP_ESTATE, "pipeline: only an unfitted pipeline can be cloned");
    lp_pipeline *c = lp_pipeline_new();
    if (!c)
        return lp_err_set(err, LP_ENOMEM, "pipeline: out of memory");
    for (size_t i = 0; i < p->n_steps; i++) {
        const step *s = &p->steps[i];
        lp_status st = lp_pipeline_add(c, (const char *const *)s->cols, s->n_cols, &s->o, err);
        if (st) {
            lp_pipeline_free(c);
            return st;
        }
    }
    *out = c;
    return LP_OK;
}
