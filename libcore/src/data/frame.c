/*
 * frame.c - the lp_frame container: columns, their dictionaries and missing-masks, row
 * selection and appends. Readers and writers live in their own files; this one parses nothing.
 *
 * Invariants are those of data.h. A categorical column's `index` is an open-addressing hash
 * table (linear probing, power-of-two capacity, load <= 1/2) of dictionary codes keyed by the
 * strings' FNV-1a hashes; it is rebuilt lazily when absent (e.g. after a clone).
 */
#include "lepton/data.h"

#include <math.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct lp_dict_index {
    uint32_t *slots; /* code + 1, 0 = empty */
    size_t cap;      /* power of two */
};

struct lp_frame {
    lp_column **cols;
    size_t ncols, cap;
    size_t nrows;
    /* column-name hash index (column + 1, 0 = empty; linear probing, power-of-two capacity,
     * load <= 1/2); NULL until first needed, dropped when columns are removed or replaced */
    uint32_t *names;
    size_t names_cap;
};

static const char *type_names[] = {"numeric", "categorical", "text"};
static const char *kind_names[] = {"integer", "float", "bool", "datetime", "categorical", "text"};

const char *lp_col_type_name(lp_col_type t)
{
    return (unsigned)t < 3 ? type_names[t] : "unknown";
}

const char *lp_col_kind_name(lp_col_kind k)
{
    return (unsigned)k < 6 ? kind_names[k] : "unknown";
}

lp_col_type lp_col_kind_type(lp_col_kind k)
{
    switch (k) {
    case LP_COL_KIND_CATEGORICAL:
        return LP_COL_TYPE_CATEGORICAL;
    case LP_COL_KIND_TEXT:
        return LP_COL_TYPE_TEXT;
    default:
        return LP_COL_TYPE_NUMERIC;
    }
}

lp_status lp_col_kind_parse(const char *s, lp_col_kind *out, lp_err *err)
{
    static const struct {
        const char *name;
        lp_col_kind kind;
    } names[] = {
        {"integer", LP_COL_KIND_INTEGER}, {"int", LP_COL_KIND_INTEGER},
        {"float", LP_COL_KIND_FLOAT},     {"double", LP_COL_KIND_FLOAT},
        {"number", LP_COL_KIND_FLOAT},    {"numeric", LP_COL_KIND_FLOAT},
        {"bool", LP_COL_KIND_BOOL},       {"boolean", LP_COL_KIND_BOOL},
        {"datetime", LP_COL_KIND_DATETIME}, {"date", LP_COL_KIND_DATETIME},
        {"categorical", LP_COL_KIND_CATEGORICAL}, {"category", LP_COL_KIND_CATEGORICAL},
        {"text", LP_COL_KIND_TEXT},       {"string", LP_COL_KIND_TEXT},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (s && strcmp(s, names[i].name) == 0) {
            *out = names[i].kind;
            return LP_OK;
        }
    return lp_err_set(err, LP_EINVAL,
                      "unknown column type '%s' (expected integer, float, bool, datetime, "
                      "categorical or text)",
                      s ? s : "");
}

/* ---- dictionary index ----------------------------------------------------------------------*/

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static void index_free(lp_dict_index *ix)
{
    if (!ix)
        return;
    free(ix->slots);
    free(ix);
}

static bool index_insert(lp_dict_index *ix, char **dict, uint32_t code)
{
    size_t mask = ix->cap - 1, i = (size_t)fnv1a(dict[code]) & mask;
    while (ix->slots[i])
        i = (i + 1) & mask;
    ix->slots[i] = code + 1;
    return true;
}

static bool index_build(lp_column *c, size_t want)
{
    size_t cap = 16;
    while (cap < 2 * want + 2)
        cap *= 2;
    lp_dict_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return false;
    ix->slots = calloc(cap, sizeof(uint32_t));
    if (!ix->slots) {
        free(ix);
        return false;
    }
    ix->cap = cap;
    for (size_t k = 0; k < c->n_dict; k++)
        index_insert(ix, c->dict, (uint32_t)k);
    index_free(c->index);
    c->index = ix;
    return true;
}

long lp_column_dict_find(const lp_column *c, const char *s)
{
    if (c->type != LP_COL_TYPE_CATEGORICAL || !s)
        return -1;
    if (!c->index) {
        /* const in spirit: building the lookup table does not change the column's contents */
        if (!index_build((lp_column *)c, c->n_dict)) {
            for (size_t k = 0; k < c->n_dict; k++)
                if (strcmp(c->dict[k], s) == 0)
                    return (long)k;
            return -1;
        }
    }
    size_t mask = c->index->cap - 1, i = (size_t)fnv1a(s) & mask;
    for (uint32_t v; (v = c->index->slots[i]); i = (i + 1) & mask)
        if (strcmp(c->dict[v - 1], s) == 0)
            return (long)(v - 1);
    return -1;
}

lp_status lp_column_dict_add(lp_column *c, const char *s, uint32_t *code, lp_err *err)
{
    if (c->type != LP_COL_TYPE_CATEGORICAL)
        return lp_err_set(err, LP_EINVAL, "column '%s' is not categorical", c->name);
    long k = lp_column_dict_find(c, s);
    if (k >= 0) {
        *code = (uint32_t)k;
        return LP_OK;
    }
    if (c->n_dict >= LP_CODE_MISSING - 1)
        return lp_err_set(err, LP_ETOOBIG, "column '%s': too many categories", c->name);
    if ((c->n_dict & (c->n_dict - 1)) == 0) { /* grow at powers of two */
        char **d = lp_reallocarray(c->dict, c->n_dict ? 2 * c->n_dict : 8, sizeof(char *));
        if (!d)
            return lp_err_set(err, LP_ENOMEM, "column '%s': out of memory", c->name);
        c->dict = d;
    }
    char *copy = lp_strdup(s);
    if (!copy)
        return lp_err_set(err, LP_ENOMEM, "column '%s': out of memory", c->name);
    c->dict[c->n_dict] = copy;
    uint32_t nc = (uint32_t)c->n_dict++;
    if (!c->index || 2 * c->n_dict + 2 > c->index->cap) {
        if (!index_build(c, c->n_dict * 2)) {
            index_free(c->index);
            c->index = NULL; /* lookups fall back to a scan */
        }
    } else {
        index_insert(c->index, c->dict, nc);
    }
    *code = nc;
    return LP_OK;
}

/* ---- columns -------------------------------------------------------------------------------*/

lp_column *lp_column_new(const char *name, lp_col_kind kind, size_t n)
{
    lp_column *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->name = lp_strdup(name ? name : "");
    c->kind = kind;
    c->type = lp_col_kind_type(kind);
    c->n = n;
    c->missing = malloc(n ? n : 1);
    bool ok = c->name && c->missing;
    if (ok)
        memset(c->missing, 1, n);
    switch (c->type) {
    case LP_COL_TYPE_NUMERIC:
        c->num = lp_mallocarray(n, sizeof(double));
        ok = ok && c->num;
        if (c->num)
            for (size_t i = 0; i < n; i++)
                c->num[i] = NAN;
        break;
    case LP_COL_TYPE_CATEGORICAL:
        c->codes = lp_mallocarray(n, sizeof(uint32_t));
        ok = ok && c->codes;
        if (c->codes)
            for (size_t i = 0; i < n; i++)
                c->codes[i] = LP_CODE_MISSING;
        break;
    case LP_COL_TYPE_TEXT:
        c->text = lp_calloc(n, sizeof(char *));
        ok = ok && c->text;
        break;
    }
    if (!ok) {
        lp_column_free(c);
        return NULL;
    }
    return c;
}

void lp_column_free(lp_column *c)
{
    if (!c)
        return;
    free(c->name);
    free(c->missing);
    free(c->num);
    free(c->codes);
    if (c->dict)
        for (size_t k = 0; k < c->n_dict; k++)
            free(c->dict[k]);
    free(c->dict);
    if (c->text)
        for (size_t i = 0; i < c->n; i++)
            free(c->text[i]);
    free(c->text);
    index_free(c->index);
    free(c);
}

/* A column with the rows idx[0..n) of src (all rows when idx is NULL and n == src->n). */
static lp_column *column_take(const lp_column *src, const size_t *idx, size_t n)
{
    lp_column *c = lp_column_new(src->name, src->kind, n);
    if (!c)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        size_t r = idx ? idx[i] : i;
        c->missing[i] = src->missing[r];
    }
    switch (src->type) {
    case LP_COL_TYPE_NUMERIC:
        for (size_t i = 0; i < n; i++)
            c->num[i] = src->num[idx ? idx[i] : i];
        break;
    case LP_COL_TYPE_CATEGORICAL:
        for (size_t i = 0; i < n; i++)
            c->codes[i] = src->codes[idx ? idx[i] : i];
        if (src->n_dict) {
            size_t cap = 8;
            while (cap < src->n_dict)
                cap *= 2;
            c->dict = lp_calloc(cap, sizeof(char *));
            if (!c->dict)
                goto fail;
            for (size_t k = 0; k < src->n_dict; k++) {
                c->dict[k] = lp_strdup(src->dict[k]);
                if (!c->dict[k])
                    goto fail;
                c->n_dict = k + 1;
            }
        }
        break;
    case LP_COL_TYPE_TEXT:
        for (size_t i = 0; i < n; i++) {
            const char *s = src->text[idx ? idx[i] : i];
            if (s && !(c->text[i] = lp_strdup(s)))
                goto fail;
        }
        break;
    }
    return c;
fail:
    lp_column_free(c);
    return NULL;
}

lp_column *lp_column_clone(const lp_column *c) { return column_take(c, NULL, c->n); }

lp_status lp_column_set_num(lp_column *c, size_t i, double v, lp_err *err)
{
    if (c->type != LP_COL_TYPE_NUMERIC)
        return lp_err_set(err, LP_EINVAL, "column '%s' is %s, not numeric", c->name,
                          lp_col_type_name(c->type));
    if (i >= c->n)
        return lp_err_set(err, LP_EINVAL, "column '%s': row %zu out of range (%zu rows)",
                          c->name, i, c->n);
    c->num[i] = v;
    c->missing[i] = isnan(v) ? 1 : 0;
    return LP_OK;
}

lp_status lp_column_set_str(lp_column *c, size_t i, const char *s, lp_err *err)
{
    if (i >= c->n)
        return lp_err_set(err, LP_EINVAL, "column '%s': row %zu out of range (%zu rows)",
                          c->name, i, c->n);
    if (!s) {
        lp_column_set_missing(c, i);
        return LP_OK;
    }
    if (c->type == LP_COL_TYPE_CATEGORICAL) {
        uint32_t code;
        lp_status st = lp_column_dict_add(c, s, &code, err);
        if (st)
            return st;
        c->codes[i] = code;
    } else if (c->type == LP_COL_TYPE_TEXT) {
        char *d = lp_strdup(s);
        if (!d)
            return lp_err_set(err, LP_ENOMEM, "column '%s': out of memory", c->name);
        free(c->text[i]);
        c->text[i] = d;
    } else {
        return lp_err_set(err, LP_EINVAL, "column '%s' is numeric; cannot store text '%s'",
                          c->name, s);
    }
    c->missing[i] = 0;
    return LP_OK;
}

void lp_column_set_missing(lp_column *c, size_t i)
{
    if (i >= c->n)
        return;
    c->missing[i] = 1;
    if (c->num)
        c->num[i] = NAN;
    if (c->codes)
        c->codes[i] = LP_CODE_MISSING;
    if (c->text) {
        free(c->text[i]);
        c->text[i] = NULL;
    }
}

size_t lp_column_count_missing(const lp_column *c)
{
    size_t m = 0;
    for (size_t i = 0; i < c->n; i++)
        m += c->missing[i];
    return m;
}

static void format_datetime(double t, char *buf, size_t cap)
{
    double whole = floor(t);
    time_t secs = (time_t)whole;
    struct tm tm;
    gmtime_r(&secs, &tm);
    int ms = (int)llround((t - whole) * 1000.0);
    if (ms >= 1000)
        ms = 999;
    if (ms)
        snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    else
        snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

const char *lp_column_cell_str(const lp_column *c, size_t i, char *buf, size_t cap)
{
    if (i >= c->n || c->missing[i]) {
        if (cap)
            buf[0] = '\0';
        return buf;
    }
    switch (c->type) {
    case LP_COL_TYPE_CATEGORICAL:
        return c->dict[c->codes[i]];
    case LP_COL_TYPE_TEXT:
        return c->text[i];
    case LP_COL_TYPE_NUMERIC:
        break;
    }
    double v = c->num[i];
    if (c->kind == LP_COL_KIND_BOOL) {
        snprintf(buf, cap, "%s", v != 0 ? "true" : "false");
    } else if (c->kind == LP_COL_KIND_DATETIME) {
        format_datetime(v, buf, cap);
    } else if (isinf(v)) {
        snprintf(buf, cap, "%s", v > 0 ? "inf" : "-inf");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(buf, cap, "%.0f", v);
    } else {
        /* shortest of %.15g / %.17g that round-trips */
        snprintf(buf, cap, "%.15g", v);
        if (strtod(buf, NULL) != v)
            snprintf(buf, cap, "%.17g", v);
    }
    return buf;
}

/* ---- frame ---------------------------------------------------------------------------------*/

lp_frame *lp_frame_new(void) { return calloc(1, sizeof(lp_frame)); }

void lp_frame_free(lp_frame *f)
{
    if (!f)
        return;
    for (size_t j = 0; j < f->ncols; j++)
        lp_column_free(f->cols[j]);
    free(f->cols);
    free(f->names);
    free(f);
}

static void names_drop(lp_frame *f)
{
    free(f->names);
    f->names = NULL;
    f->names_cap = 0;
}

static void names_insert(lp_frame *f, size_t j)
{
    size_t mask = f->names_cap - 1, i = (size_t)fnv1a(f->cols[j]->name) & mask;
    while (f->names[i])
        i = (i + 1) & mask;
    f->names[i] = (uint32_t)j + 1;
}

/* (Re)build the index for at least `want` columns; false on allocation failure (then the
 * index stays absent and lookups scan). */
static bool names_build(lp_frame *f, size_t want)
{
    size_t cap = 16;
    while (cap < 2 * want + 2)
        cap *= 2;
    uint32_t *slots = calloc(cap, sizeof(uint32_t));
    if (!slots)
        return false;
    free(f->names);
    f->names = slots;
    f->names_cap = cap;
    for (size_t j = 0; j < f->ncols; j++)
        names_insert(f, j);
    return true;
}

size_t lp_frame_nrows(const lp_frame *f) { return f->nrows; }
size_t lp_frame_ncols(const lp_frame *f) { return f->ncols; }

lp_column *lp_frame_col(const lp_frame *f, size_t j) { return j < f->ncols ? f->cols[j] : NULL; }

long lp_frame_find(const lp_frame *f, const char *name)
{
    if (!name)
        return -1;
    if (!f->names) { /* small frames (or an index that could not be allocated): a scan */
        for (size_t j = 0; j < f->ncols; j++)
            if (strcmp(f->cols[j]->name, name) == 0)
                return (long)j;
        return -1;
    }
    size_t mask = f->names_cap - 1, i = (size_t)fnv1a(name) & mask;
    for (uint32_t v; (v = f->names[i]); i = (i + 1) & mask)
        if (strcmp(f->cols[v - 1]->name, name) == 0)
            return (long)(v - 1);
    return -1;
}

lp_status lp_frame_require(const lp_frame *f, const char *name, const char *what, size_t *j,
                           lp_err *err)
{
    long k = lp_frame_find(f, name);
    if (k >= 0) {
        *j = (size_t)k;
        return LP_OK;
    }
    char list[300] = "";
    size_t used = 0;
    for (size_t c = 0; c < f->ncols && used < sizeof list - 8; c++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", c ? ", " : "", f->cols[c]->name);
        if (w < 0 || (size_t)w >= sizeof list - used) {
            snprintf(list + (sizeof list - 5), 5, "...");
            break;
        }
        used += (size_t)w;
    }
    return lp_err_set(err, LP_ENOTFOUND, "no column '%s' in %s; columns are: %s", name ? name : "",
                      what ? what : "the data", list);
}

lp_status lp_frame_add_column(lp_frame *f, lp_column *col, lp_err *err)
{
    if (!col)
        return lp_err_set(err, LP_ENOMEM, "out of memory adding a column");
    lp_status st = LP_OK;
    if (!col->name || !col->name[0])
        st = lp_err_set(err, LP_EINVAL, "column %zu has an empty name", f->ncols + 1);
    else if (lp_frame_find(f, col->name) >= 0)
        st = lp_err_set(err, LP_EINVAL, "duplicate column name '%s'", col->name);
    else if (f->ncols && col->n != f->nrows)
        st = lp_err_set(err, LP_EINVAL, "column '%s' has %zu rows, the frame has %zu", col->name,
                        col->n, f->nrows);
    if (!st && f->ncols == f->cap) {
        size_t cap = f->cap ? 2 * f->cap : 8;
        lp_column **c = lp_reallocarray(f->cols, cap, sizeof *c);
        if (!c)
            st = lp_err_set(err, LP_ENOMEM, "out of memory adding column '%s'", col->name);
        else {
            f->cols = c;
            f->cap = cap;
        }
    }
    if (st) {
        lp_column_free(col);
        return st;
    }
    if (!f->ncols)
        f->nrows = col->n;
    f->cols[f->ncols++] = col;
    /* the index is kept up to date here, never built lazily by a lookup, so concurrent
     * readers of a frame never write to it */
    if (f->names && 2 * f->ncols + 2 <= f->names_cap)
        names_insert(f, f->ncols - 1);
    else if (f->ncols > 8 && !names_build(f, 2 * f->ncols))
        names_drop(f); /* lookups fall back to a scan */
    return LP_OK;
}

lp_status lp_frame_add_numeric(lp_frame *f, const char *name, lp_col_kind kind,
                               const double *vals, const uint8_t *missing, size_t n, lp_err *err)
{
    if (lp_col_kind_type(kind) != LP_COL_TYPE_NUMERIC)
        return lp_err_set(err, LP_EINVAL, "column '%s': kind %s is not numeric", name,
                          lp_col_kind_name(kind));
    lp_column *c = lp_column_new(name, kind, n);
    if (!c)
        return lp_err_set(err, LP_ENOMEM, "out of memory for column '%s'", name);
    for (size_t i = 0; i < n; i++) {
        bool miss = missing ? missing[i] != 0 : isnan(vals[i]);
        c->missing[i] = miss;
        c->num[i] = miss ? NAN : vals[i];
    }
    return lp_frame_add_column(f, c, err);
}

static lp_status add_strings(lp_frame *f, const char *name, lp_col_kind kind,
                             const char *const *vals, size_t n, lp_err *err)
{
    lp_column *c = lp_column_new(name, kind, n);
    if (!c)
        return lp_err_set(err, LP_ENOMEM, "out of memory for column '%s'", name);
    for (size_t i = 0; i < n; i++) {
        lp_status st = lp_column_set_str(c, i, vals[i], err);
        if (st) {
            lp_column_free(c);
            return st;
        }
    }
    return lp_frame_add_column(f, c, err);
}

lp_status lp_frame_add_categorical(lp_frame *f, const char *name, const char *const *vals,
                                   size_t n, lp_err *err)
{
    return add_strings(f, name, LP_COL_KIND_CATEGORICAL, vals, n, err);
}

lp_status lp_frame_add_text(lp_frame *f, const char *name, const char *const *vals, size_t n,
                            lp_err *err)
{
    return add_strings(f, name, LP_COL_KIND_TEXT, vals, n, err);
}

lp_column *lp_frame_detach(lp_frame *f, size_t j)
{
    if (j >= f->ncols)
        return NULL;
    lp_column *c = f->cols[j];
    memmove(f->cols + j, f->cols + j + 1, (f->ncols - j - 1) * sizeof *f->cols);
    f->ncols--;
    names_drop(f);
    if (f->ncols > 8)
        names_build(f, f->ncols);
    if (!f->ncols)
        f->nrows = 0;
    return c;
}

lp_status lp_frame_drop(lp_frame *f, size_t j, lp_err *err)
{
    if (j >= f->ncols)
        return lp_err_set(err, LP_EINVAL, "no column %zu (frame has %zu)", j, f->ncols);
    lp_column_free(lp_frame_detach(f, j));
    return LP_OK;
}

lp_status lp_frame_replace(lp_frame *f, size_t j, lp_column *col, lp_err *err)
{
    lp_status st = LP_OK;
    if (!col)
        return lp_err_set(err, LP_ENOMEM, "out of memory replacing column %zu", j);
    if (j >= f->ncols)
        st = lp_err_set(err, LP_EINVAL, "no column %zu (frame has %zu)", j, f->ncols);
    else if (col->n != f->nrows)
        st = lp_err_set(err, LP_EINVAL, "column '%s' has %zu rows, the frame has %zu", col->name,
                        col->n, f->nrows);
    else {
        long k = lp_frame_find(f, col->name);
        if (k >= 0 && (size_t)k != j)
            st = lp_err_set(err, LP_EINVAL, "duplicate column name '%s'", col->name);
    }
    if (st) {
        lp_column_free(col);
        return st;
    }
    lp_column_free(f->cols[j]);
    f->cols[j] = col;
    names_drop(f);
    if (f->ncols > 8)
        names_build(f, f->ncols);
    return LP_OK;
}

long lp_frame_find_like(const lp_frame *f, const char *const *names)
{
    long hit = -1;
    for (size_t j = 0; j < f->ncols; j++) {
        char sq[64];
        size_t n = 0;
        for (const char *p = f->cols[j]->name; *p && n + 1 < sizeof sq; p++)
            if (*p != '_' && *p != '-' && *p != ' ')
                sq[n++] = (char)tolower((unsigned char)*p);
        sq[n] = 0;
        for (size_t k = 0; names[k]; k++)
            if (!strcmp(sq, names[k])) {
                if (hit >= 0)
                    return -1;
                hit = (long)j;
            }
    }
    return hit;
}

lp_status lp_frame_rename(lp_frame *f, size_t j, const char *name, lp_err *err)
{
    if (j >= f->ncols)
        return lp_err_set(err, LP_EINVAL, "no column %zu (frame has %zu)", j, f->ncols);
    if (!name || !*name)
        return lp_err_set(err, LP_EINVAL, "column %zu: empty name", j);
    long k = lp_frame_find(f, name);
    if (k >= 0 && (size_t)k != j)
        return lp_err_set(err, LP_EINVAL, "duplicate column name '%s'", name);
    char *s = lp_strdup(name);
    if (!s)
        return lp_err_set(err, LP_ENOMEM, "out of memory renaming column %zu", j);
    free(f->cols[j]->name);
    f->cols[j]->name = s;
    names_drop(f);
    if (f->ncols > 8)
        names_build(f, f->ncols);
    return LP_OK;
}

lp_status lp_frame_take_rows(const lp_frame *f, const size_t *idx, size_t n, lp_frame **out,
                             lp_err *err)
{
    *out = NULL;
    for (size_t i = 0; i < n; i++)
        if (idx[i] >= f->nrows)
            return lp_err_set(err, LP_EINVAL, "row index %zu out of range (%zu rows)", idx[i],
                              f->nrows);
    lp_frame *g = lp_frame_new();
    if (!g)
        return lp_err_set(err, LP_ENOMEM, "out of memory selecting %zu rows", n);
    for (size_t j = 0; j < f->ncols; j++) {
        lp_status st = lp_frame_add_column(g, column_take(f->cols[j], idx, n), err);
        if (st) {
            lp_frame_free(g);
            return st;
        }
    }
    g->nrows = n;
    *out = g;
    return LP_OK;
}

lp_status lp_frame_select(const lp_frame *f, const char *const *names, size_t n,
                          lp_frame **out, lp_err *err)
{
    *out = NULL;
    lp_frame *g = lp_frame_new();
    if (!g)
        return lp_err_set(err, LP_ENOMEM, "out of memory selecting columns");
    for (size_t k = 0; k < n; k++) {
        size_t j = 0;
        lp_status st = lp_frame_require(f, names[k], "the frame", &j, err);
        if (!st)
            st = lp_frame_add_column(g, lp_column_clone(f->cols[j]), err);
        if (st) {
            lp_frame_free(g);
            return st;
        }
    }
    *out = g;
    return LP_OK;
}

lp_status lp_frame_clone(const lp_frame *f, lp_frame **out, lp_err *err)
{
    *out = NULL;
    lp_frame *g = lp_frame_new();
    if (!g)
        return lp_err_set(err, LP_ENOMEM, "out of memory cloning a frame");
    for (size_t j = 0; j < f->ncols; j++) {
        lp_status st = lp_frame_add_column(g, lp_column_clone(f->cols[j]), err);
        if (st) {
            lp_frame_free(g);
            return st;
        }
    }
    g->nrows = f->nrows;
    *out = g;
    return LP_OK;
}

/* Grow c to n rows (new rows missing). */
static bool column_grow(lp_column *c, size_t n)
{
    uint8_t *m = realloc(c->missing, n ? n : 1);
    if (!m)
        return false;
    c->missing = m;
    memset(c->missing + c->n, 1, n - c->n);
    if (c->num) {
        double *v = lp_reallocarray(c->num, n, sizeof(double));
        if (!v)
            return false;
        c->num = v;
        for (size_t i = c->n; i < n; i++)
            v[i] = NAN;
    }
    if (c->codes) {
        uint32_t *v = lp_reallocarray(c->codes, n, sizeof(uint32_t));
        if (!v)
            return false;
        c->codes = v;
        for (size_t i = c->n; i < n; i++)
            v[i] = LP_CODE_MISSING;
    }
    if (c->text) {
        char **v = lp_reallocarray(c->text, n, sizeof(char *));
        if (!v)
            return false;
        c->text = v;
        for (size_t i = c->n; i < n; i++)
            v[i] = NULL;
    }
    c->n = n;
    return true;
}

lp_status lp_frame_append(lp_frame *dst, const lp_frame *src, lp_err *err)
{
    if (!dst->ncols) {
        for (size_t j = 0; j < src->ncols; j++) {
            lp_status st = lp_frame_add_column(dst, lp_column_clone(src->cols[j]), err);
            if (st)
                return st;
        }
        dst->nrows = src->nrows;
        return LP_OK;
    }
    if (src->ncols != dst->ncols)
        return lp_err_set(err, LP_EINVAL, "cannot append: %zu columns onto %zu", src->ncols,
                          dst->ncols);
    size_t *map = lp_mallocarray(dst->ncols, sizeof(size_t));
    if (!map)
        return lp_err_set(err, LP_ENOMEM, "out of memory appending rows");
    for (size_t j = 0; j < dst->ncols; j++) {
        size_t k = 0;
        lp_status st = lp_frame_require(src, dst->cols[j]->name, "the appended rows", &k, err);
        if (!st && src->cols[k]->type != dst->cols[j]->type)
            st = lp_err_set(err, LP_EINVAL, "cannot append: column '%s' is %s here and %s there",
                            dst->cols[j]->name, lp_col_type_name(dst->cols[j]->type),
                            lp_col_type_name(src->cols[k]->type));
        if (st) {
            free(map);
            return st;
        }
        map[j] = k;
    }
    size_t n0 = dst->nrows, n = n0 + src->nrows;
    lp_status st = LP_OK;
    for (size_t j = 0; j < dst->ncols && !st; j++) {
        lp_column *d = dst->cols[j];
        const lp_column *s = src->cols[map[j]];
        if (!column_grow(d, n)) {
            st = lp_err_set(err, LP_ENOMEM, "out of memory appending rows");
            break;
        }
        for (size_t i = 0; i < s->n && !st; i++) {
            if (s->missing[i])
                continue;
            if (d->type == LP_COL_TYPE_NUMERIC)
                st = lp_column_set_num(d, n0 + i, s->num[i], err);
            else
                st = lp_column_set_str(d, n0 + i,
                                       s->type == LP_COL_TYPE_TEXT ? s->text[i]
                                                                   : s->dict[s->codes[i]],
                                       err);
        }
    }
    free(map);
    if (st) { /* roll back to the old row count */
        for (size_t j = 0; j < dst->ncols; j++) {
            lp_column *d = dst->cols[j];
            if (d->n > n0) {
                if (d->text)
                    for (size_t i = n0; i < d->n; i++) {
                        free(d->text[i]);
                        d->text[i] = NULL;
                    }
                d->n = n0;
            }
        }
        return st;
    }
    dst->nrows = n;
    return LP_OK;
}
