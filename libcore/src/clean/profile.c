/*
 * profile.c - the data-quality profile of a frame: per-column counts, numeric summaries
 * (numpy-linear quantiles, IQR outlier counts), top categories, flags (constant, likely
 * identifier, high missing share, mixed types), frame-level duplicate and missing counts; and
 * its two renderings, JSON (cJSON; NaN/Inf as null) and an aligned text table.
 * It reads the frame only; kinds come from the frame, never re-inferred here.
 */
#include "clean/clean_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const q_names[LP_PROFILE_NQ] = {"p01", "p25", "p50", "p75", "p99"};
static const double q_levels[LP_PROFILE_NQ] = {0.01, 0.25, 0.50, 0.75, 0.99};

lp_profile_opts lp_profile_opts_default(void)
{
    lp_profile_opts o = {.high_missing_frac = 0.5, .mixed_min_frac = 0.1, .id_min_rows = 20,
                         .iqr_k = 1.5, .top_k = 5};
    return o;
}

lp_status lp_profile_opts_check(const lp_profile_opts *o, lp_err *err)
{
    if (!o)
        return lp_err_set(err, LP_EINVAL, "profile options: NULL");
    if (!(o->high_missing_frac >= 0 && o->high_missing_frac <= 1))
        return lp_err_set(err, LP_EINVAL, "profile options: high_missing_frac %g not in [0, 1]",
                          o->high_missing_frac);
    if (!(o->mixed_min_frac > 0 && o->mixed_min_frac < 1))
        return lp_err_set(err, LP_EINVAL, "profile options: mixed_min_frac %g not in (0, 1)",
                          o->mixed_min_frac);
    if (!(o->iqr_k > 0 && isfinite(o->iqr_k)))
        return lp_err_set(err, LP_EINVAL, "profile options: iqr_k %g not a positive number",
                          o->iqr_k);
    if (o->top_k < 1 || o->top_k > LP_PROFILE_TOP_MAX)
        return lp_err_set(err, LP_EINVAL, "profile options: top_k %zu not in [1, %d]", o->top_k,
                          LP_PROFILE_TOP_MAX);
    return LP_OK;
}

/* "id" as a word: bounded by non-letters or a lower-to-upper case change ("userId"). */
static bool name_has_id(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i + 2 <= n; i++) {
        if (tolower((unsigned char)s[i]) != 'i' || tolower((unsigned char)s[i + 1]) != 'd')
            continue;
        bool camel = s[i] == 'I' && i > 0 && islower((unsigned char)s[i - 1]);
        bool left = i == 0 || !isalpha((unsigned char)s[i - 1]) || camel;
        bool right = i + 2 == n || !isalpha((unsigned char)s[i + 2]) ||
                     (isupper((unsigned char)s[i + 2]) && islower((unsigned char)s[i + 1]));
        if (left && right)
            return true;
    }
    return false;
}

typedef struct str_count {
    const char *s;
    size_t count;
} str_count;

static int cmp_top(const void *a, const void *b)
{
    const str_count *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return strcmp(x->s, y->s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Distinct values, top_k and numeric share from (value, count) pairs; sorts sc. */
static lp_status finish_strings(lp_col_profile *cp, str_count *sc, size_t n_sc, size_t top_k,
                                lp_err *err)
{
    size_t numeric = 0;
    cp->distinct = n_sc;
    for (size_t k = 0; k < n_sc; k++) {
        double d;
        if (lp_parse_double(sc[k].s, strlen(sc[k].s), &d))
            numeric += sc[k].count;
    }
    cp->numeric_share = cp->count ? (double)numeric / (double)cp->count : NAN;
    if (n_sc > 1)
        qsort(sc, n_sc, sizeof *sc, cmp_top);
    for (size_t k = 0; k < n_sc && k < top_k; k++) {
        cp->top[k].value = lp_strdup(sc[k].s);
        if (!cp->top[k].value)
            return lp_err_set(err, LP_ENOMEM, "profile: out of memory for column '%s'",
                              cp->name);
        cp->top[k].count = sc[k].count;
        cp->n_top = k + 1;
    }
    return LP_OK;
}

static lp_status profile_strings(const lp_column *c, lp_col_profile *cp, size_t top_k,
                                 lp_err *err)
{
    lp_status st = LP_OK;
    str_count *sc = NULL;
    size_t n_sc = 0;
    if (c->type == LP_COL_TYPE_CATEGORICAL) {
        size_t *cnt = lp_calloc(c->n_dict ? c->n_dict : 1, sizeof *cnt);
        sc = lp_mallocarray(c->n_dict ? c->n_dict : 1, sizeof *sc);
        if (!cnt || !sc) {
            free(cnt);
            free(sc);
            return lp_err_set(err, LP_ENOMEM, "profile: out of memory for column '%s'", c->name);
        }
        for (size_t i = 0; i < c->n; i++)
            if (!c->missing[i])
                cnt[c->codes[i]]++;
        for (size_t k = 0; k < c->n_dict; k++)
            if (cnt[k])
                sc[n_sc++] = (str_count){c->dict[k], cnt[k]};
        free(cnt);
    } else {
        const char **v = lp_mallocarray(cp->count ? cp->count : 1, sizeof *v);
        sc = lp_mallocarray(cp->count ? cp->count : 1, sizeof *sc);
        if (!v || !sc) {
            free(v);
            free(sc);
            return lp_err_set(err, LP_ENOMEM, "profile: out of memory for column '%s'", c->name);
        }
        size_t m = 0;
        for (size_t i = 0; i < c->n; i++)
            if (!c->missing[i])
                v[m++] = c->text[i];
        if (m > 1)
            qsort(v, m, sizeof *v, cmp_str);
        for (size_t i = 0; i < m; i++) {
            if (n_sc && strcmp(sc[n_sc - 1].s, v[i]) == 0)
                sc[n_sc - 1].count++;
            else
                sc[n_sc++] = (str_count){v[i], 1};
        }
        free(v);
    }
    st = finish_strings(cp, sc, n_sc, top_k, err);
    free(sc);
    return st;
}

static lp_status profile_numeric(const lp_column *c, lp_col_profile *cp, double iqr_k,
                                 lp_err *err)
{
    double *v = lp_mallocarray(cp->count ? cp->count : 1, sizeof *v);
    if (!v)
        return lp_err_set(err, LP_ENOMEM, "profile: out of memory for column '%s'", c->name);
    size_t m = 0;
    double sum = 0;
    for (size_t i = 0; i < c->n; i++)
        if (!c->missing[i]) {
            v[m++] = c->num[i];
            sum += c->num[i];
        }
    if (m) {
        lp_clean_sort(v, m);
        cp->min = v[0];
        cp->max = v[m - 1];
        cp->mean = sum / (double)m;
        double ss = 0;
        for (size_t i = 0; i < m; i++)
            ss += (v[i] - cp->mean) * (v[i] - cp->mean);
        cp->std = m > 1 ? sqrt(ss / (double)(m - 1)) : NAN;
        for (int k = 0; k < LP_PROFILE_NQ; k++)
            cp->q[k] = lp_clean_quantile_sorted(v, m, q_levels[k]);
        cp->distinct = 1;
        for (size_t i = 1; i < m; i++)
            cp->distinct += v[i] != v[i - 1];
        /* a two-valued column (0/1 flags, labels) has no outliers: its IQR says nothing */
        if (c->kind != LP_COL_KIND_BOOL && cp->distinct > 2) {
            double q1 = cp->q[1], q3 = cp->q[3], lo = q1 - iqr_k * (q3 - q1),
                   hi = q3 + iqr_k * (q3 - q1);
            for (size_t i = 0; i < m; i++)
                cp->outliers += v[i] < lo || v[i] > hi;
        }
    }
    free(v);
    return LP_OK;
}

void lp_profile_free(lp_profile *p)
{
    if (!p)
        return;
    for (size_t j = 0; p->col && j < p->cols; j++) {
        free(p->col[j].name);
        for (size_t k = 0; k < p->col[j].n_top; k++)
            free(p->col[j].top[k].value);
    }
    free(p->col);
    free(p);
}

lp_status lp_profile_frame(const lp_frame *f, const lp_profile_opts *opts, lp_profile **out,
                           lp_err *err)
{
    *out = NULL;
    lp_profile_opts o = opts ? *opts : lp_profile_opts_default();
    lp_status st = lp_profile_opts_check(&o, err);
    if (st)
        return st;
    if (!f)
        return lp_err_set(err, LP_EINVAL, "profile: frame is NULL");
    lp_profile *p = calloc(1, sizeof *p);
    if (!p)
        return lp_err_set(err, LP_ENOMEM, "profile: out of memory");
    p->rows = lp_frame_nrows(f);
    p->cols = lp_frame_ncols(f);
    p->col = lp_calloc(p->cols ? p->cols : 1, sizeof *p->col);
    if (!p->col) {
        lp_profile_free(p);
        return lp_err_set(err, LP_ENOMEM, "profile: out of memory");
    }
    for (size_t j = 0; j < p->cols; j++) {
        const lp_column *c = lp_frame_col(f, j);
        lp_col_profile *cp = &p->col[j];
        cp->min = cp->max = cp->mean = cp->std = cp->numeric_share = NAN;
        for (int k = 0; k < LP_PROFILE_NQ; k++)
            cp->q[k] = NAN;
        cp->name = lp_strdup(c->name);
        if (!cp->name) {
            lp_profile_free(p);
            return lp_err_set(err, LP_ENOMEM, "profile: out of memory");
        }
        cp->type = c->type;
        cp->kind = c->kind;
        cp->missing = lp_column_count_missing(c);
        cp->count = c->n - cp->missing;
        p->missing_cells += cp->missing;
        st = c->type == LP_COL_TYPE_NUMERIC ? profile_numeric(c, cp, o.iqr_k, err)
                                            : profile_strings(c, cp, o.top_k, err);
        if (st) {
            lp_profile_free(p);
            return st;
        }
        cp->constant = cp->count > 0 && cp->distinct == 1;
        bool id_kind = c->kind == LP_COL_KIND_INTEGER || c->kind == LP_COL_KIND_CATEGORICAL ||
                       c->kind == LP_COL_KIND_TEXT;
        /* all distinct, or nearly so in a large column (re-sent duplicate records repeat an id) */
        bool all_distinct = cp->distinct == cp->count ||
                            (cp->count >= 100 && (double)cp->distinct >= 0.99 * (double)cp->count);
        cp->likely_id = cp->count >= 2 && all_distinct &&
                        ((id_kind && cp->count >= o.id_min_rows) || name_has_id(c->name));
        cp->high_missing = p->rows > 0 &&
                           (double)cp->missing / (double)p->rows > o.high_missing_frac;
        cp->mixed_types = c->type != LP_COL_TYPE_NUMERIC && cp->count > 0 &&
                          cp->numeric_share >= o.mixed_min_frac && cp->numeric_share < 1;
    }
    st = lp_frame_find_duplicates(f, NULL, &p->duplicate_rows, err);
    if (st) {
        lp_profile_free(p);
        return st;
    }
    *out = p;
    return LP_OK;
}

/* Attach item (false when it is NULL; it is freed when attaching fails). */
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

static cJSON *col_json(const lp_col_profile *cp, size_t rows)
{
    cJSON *o = cJSON_CreateObject(), *q = cJSON_CreateObject(), *top = cJSON_CreateArray(),
          *flags = cJSON_CreateObject();
    bool ok = o && q && top && flags;
    ok = ok && add(o, "name", cJSON_CreateString(cp->name)) &&
         add(o, "type", cJSON_CreateString(lp_col_type_name(cp->type))) &&
         add(o, "kind", cJSON_CreateString(lp_col_kind_name(cp->kind))) &&
         add(o, "count", cJSON_CreateNumber((double)cp->count)) &&
         add(o, "missing", cJSON_CreateNumber((double)cp->missing)) &&
         add(o, "missing_share",
             lp_clean_json_num(rows ? (double)cp->missing / (double)rows : NAN)) &&
         add(o, "distinct", cJSON_CreateNumber((double)cp->distinct)) &&
         add(o, "min", lp_clean_json_num(cp->min)) && add(o, "max", lp_clean_json_num(cp->max)) &&
         add(o, "mean", lp_clean_json_num(cp->mean)) &&
         add(o, "std", lp_clean_json_num(cp->std));
    for (int k = 0; ok && k < LP_PROFILE_NQ; k++)
        ok = add(q, q_names[k], lp_clean_json_num(cp->q[k]));
    if (ok) {
        ok = cJSON_AddItemToObject(o, "quantiles", q);
        q = NULL;
    }
    ok = ok && add(o, "outliers", cJSON_CreateNumber((double)cp->outliers)) &&
         add(o, "numeric_share", lp_clean_json_num(cp->numeric_share));
    for (size_t k = 0; ok && k < cp->n_top; k++) {
        cJSON *t = cJSON_CreateObject();
        ok = t && add(t, "value", cJSON_CreateString(cp->top[k].value)) &&
             add(t, "count", cJSON_CreateNumber((double)cp->top[k].count));
        if (t && !cJSON_AddItemToArray(top, t)) {
            cJSON_Delete(t);
            ok = false;
        }
    }
    if (ok) {
        ok = cJSON_AddItemToObject(o, "top", top);
        top = NULL;
    }
    ok = ok && add(flags, "constant", cJSON_CreateBool(cp->constant)) &&
         add(flags, "likely_id", cJSON_CreateBool(cp->likely_id)) &&
         add(flags, "high_missing", cJSON_CreateBool(cp->high_missing)) &&
         add(flags, "mixed_types", cJSON_CreateBool(cp->mixed_types));
    if (ok) {
        ok = cJSON_AddItemToObject(o, "flags", flags);
        flags = NULL;
    }
    cJSON_Delete(q);
    cJSON_Delete(top);
    cJSON_Delete(flags);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

lp_status lp_profile_to_json(const lp_profile *p, char **json, lp_err *err)
{
    *json = NULL;
    if (!p)
        return lp_err_set(err, LP_EINVAL, "profile JSON: profile is NULL");
    cJSON *root = cJSON_CreateObject(), *cols = cJSON_CreateArray();
    bool ok = root && cols && add(root, "rows", cJSON_CreateNumber((double)p->rows)) &&
              add(root, "columns", cJSON_CreateNumber((double)p->cols)) &&
              add(root, "duplicate_rows", cJSON_CreateNumber((double)p->duplicate_rows)) &&
              add(root, "missing_cells", cJSON_CreateNumber((double)p->missing_cells));
    for (size_t j = 0; ok && j < p->cols; j++) {
        cJSON *c = col_json(&p->col[j], p->rows);
        ok = c && cJSON_AddItemToArray(cols, c);
        if (c && !ok)
            cJSON_Delete(c);
    }
    if (ok) {
        ok = cJSON_AddItemToObject(root, "column_profiles", cols);
        cols = NULL;
    }
    cJSON_Delete(cols);
    if (!ok) {
        cJSON_Delete(root);
        return lp_err_set(err, LP_ENOMEM, "profile JSON: out of memory");
    }
    return lp_clean_json_finish(root, json, err);
}

static void fmt_num(char *buf, size_t cap, double v)
{
    if (isnan(v))
        snprintf(buf, cap, "-");
    else
        snprintf(buf, cap, "%.6g", v);
}

/* A date-time (seconds since the epoch) as YYYY-MM-DD, with the time when it is not midnight. */
static void fmt_date(char *buf, size_t cap, double v)
{
    if (isnan(v) || fabs(v) > 1e13) {
        fmt_num(buf, cap, v);
        return;
    }
    time_t t = (time_t)floor(v);
    struct tm tm;
    gmtime_r(&t, &tm);
    if (tm.tm_hour || tm.tm_min || tm.tm_sec)
        strftime(buf, cap, "%Y-%m-%dT%H:%M", &tm);
    else
        strftime(buf, cap, "%Y-%m-%d", &tm);
}

lp_status lp_profile_print(const lp_profile *p, FILE *out, lp_err *err)
{
    if (!p || !out)
        return lp_err_set(err, LP_EINVAL, "profile table: NULL profile or stream");
    int nw = 6;
    for (size_t j = 0; j < p->cols; j++) {
        int l = (int)strlen(p->col[j].name);
        if (l > nw)
            nw = l > 40 ? 40 : l;
    }
    fprintf(out, "%zu rows, %zu columns, %zu duplicate rows, %zu missing cells\n", p->rows,
            p->cols, p->duplicate_rows, p->missing_cells);
    fprintf(out, "%-*s  %-11s  %8s  %8s  %8s  %12s  %12s  %12s  %12s  %8s  %s\n", nw, "column",
            "kind", "count", "missing", "distinct", "min", "median", "max", "mean", "outliers",
            "flags / top");
    for (size_t j = 0; j < p->cols; j++) {
        const lp_col_profile *c = &p->col[j];
        char mn[32], md[32], mx[32], me[32], flags[256];
        void (*fmt)(char *, size_t, double) = c->kind == LP_COL_KIND_DATETIME ? fmt_date : fmt_num;
        fmt(mn, sizeof mn, c->min);
        fmt(md, sizeof md, c->q[2]);
        fmt(mx, sizeof mx, c->max);
        fmt(me, sizeof me, c->mean);
        size_t fl = 0;
        flags[0] = '\0';
        const char *names[4] = {"constant", "id", "high-missing", "mixed"};
        bool on[4] = {c->constant, c->likely_id, c->high_missing, c->mixed_types};
        for (int k = 0; k < 4; k++)
            if (on[k] && fl < sizeof flags)
                fl += (size_t)snprintf(flags + fl, sizeof flags - fl, "%s%s", fl ? "," : "",
                                       names[k]);
        if (c->n_top && fl < sizeof flags)
            snprintf(flags + fl, sizeof flags - fl, "%stop %.24s (%zu)", fl ? " " : "",
                     c->top[0].value, c->top[0].count);
        fprintf(out, "%-*.*s  %-11s  %8zu  %8zu  %8zu  %12s  %12s  %12s  %12s  %8zu  %s\n", nw,
                nw, c->name, lp_col_kind_name(c->kind), c->count, c->missing, c->distinct, mn, md,
                mx, me, c->outliers, flags);
    }
    if (ferror(out))
        return lp_err_set(err, LP_EIO, "profile table: write failed");
    return LP_OK;
}

/* The number of distinct non-missing values of c (numeric or strings; *one_word: no string
 * value holds a space); SIZE_MAX on allocation failure. */
static size_t distinct_values(const lp_column *c, bool *one_word)
{
    size_t n = c->n, k = 0, d = 0;
    *one_word = true;
    if (c->type == LP_COL_TYPE_NUMERIC) {
        double *v = lp_mallocarray(n ? n : 1, sizeof *v);
        if (!v)
            return SIZE_MAX;
        for (size_t i = 0; i < n; i++)
            if (!isnan(c->num[i]))
                v[k++] = c->num[i];
        lp_clean_sort(v, k);
        for (size_t i = 0; i < k; i++)
            d += i == 0 || v[i] != v[i - 1];
        free(v);
        return d;
    }
    const char **v = lp_mallocarray(n ? n : 1, sizeof *v);
    if (!v)
        return SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        const char *s = c->type == LP_COL_TYPE_CATEGORICAL
                            ? (c->codes[i] == LP_CODE_MISSING ? NULL : c->dict[c->codes[i]])
                            : c->text[i];
        if (!s)
            continue;
        v[k++] = s;
        for (const char *p = s; *one_word && *p; p++)
            *one_word = !isspace((unsigned char)*p);
    }
    qsort(v, k, sizeof *v, cmp_str);
    for (size_t i = 0; i < k; i++)
        d += i == 0 || strcmp(v[i], v[i - 1]) != 0;
    free(v);
    return d;
}

lp_status lp_frame_identifier_cols(const lp_frame *f, const char *label, const char ***out,
                                   size_t *n, lp_err *err)
{
    *out = NULL;
    *n = 0;
    size_t nc = lp_frame_ncols(f);
    const char **v = lp_calloc(nc + 1, sizeof *v);
    if (!v)
        return lp_err_set(err, LP_ENOMEM, "identifiers: out of memory");
    for (size_t j = 0; j < nc; j++) {
        const lp_column *c = lp_frame_col(f, j);
        size_t count = c->n - lp_column_count_missing(c);
        bool str = c->type != LP_COL_TYPE_NUMERIC, named = name_has_id(c->name);
        if ((label && strcmp(c->name, label) == 0) || count < 2 ||
            (!named && (!str || count < LP_ID_MIN_ROWS)) || c->kind == LP_COL_KIND_BOOL ||
            c->kind == LP_COL_KIND_DATETIME)
            continue;
        bool one_word;
        size_t d = distinct_values(c, &one_word);
        if (d == SIZE_MAX) {
            free(v);
            return lp_err_set(err, LP_ENOMEM, "identifiers: out of memory");
        }
        /* all distinct, or nearly so in a large column (re-sent records repeat an id), as
         * lp_profile_frame's likely_id */
        bool distinct = d == count || (count >= 100 && (double)d >= 0.99 * (double)count);
        if (distinct && (named || one_word))
            v[(*n)++] = c->name;
    }
    *out = v;
    return LP_OK;
}
