/*
 * fraud_feat.c - the feature configuration of lepton-fraud: defaults, validation, JSON form
 * (saved in the model file, so serving computes exactly the training features), the feature
 * names in vector order, and binding frame columns to transaction fields (the label too: numeric,
 * or two text values of which one is recognizably "fraud" or named by --positive-label).
 *
 * Text fields (low-cardinality text columns such as a merchant category) enter the model as the
 * index of their value in a sorted list learned at training and saved with the options;
 * fraud_text_code is the only place that maps a text to that number, for replay and service
 * alike. A value missing or not in the list is NaN: missing to the gbdt.
 */
#include "fraud.h"

#include <strings.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

fraud_feat_opts fraud_feat_opts_default(void)
{
    fraud_feat_opts o;
    memset(&o, 0, sizeof o);
    o.n_windows = 4;
    o.window_s[0] = 3600;
    o.window_s[1] = 86400;
    o.window_s[2] = 7 * 86400;
    o.window_s[3] = 30 * 86400;
    o.label_delay_s = 7 * 86400;
    o.max_lateness_s = 3600;
    o.velocity = true;
    o.time_unit_s = 1;
    return o;
}

lp_status fraud_feat_opts_check(const fraud_feat_opts *o, lp_err *err)
{
    if (o->n_entities > FRAUD_MAX_ENTITIES)
        return lp_err_set(err, LP_EINVAL, "entities: %zu given, at most %d", o->n_entities,
                          FRAUD_MAX_ENTITIES);
    if (o->n_extra > FRAUD_MAX_EXTRA)
        return lp_err_set(err, LP_EINVAL, "extra features: %zu given, at most %d", o->n_extra,
                          FRAUD_MAX_EXTRA);
    if (o->n_text > FRAUD_MAX_TEXT)
        return lp_err_set(err, LP_EINVAL, "text features: %zu given, at most %d", o->n_text,
                          FRAUD_MAX_TEXT);
    if (o->n_windows < 1 || o->n_windows > FRAUD_MAX_WINDOWS)
        return lp_err_set(err, LP_EINVAL, "windows: %zu given, expected 1..%d", o->n_windows,
                          FRAUD_MAX_WINDOWS);
    for (size_t w = 0; w < o->n_windows; w++)
        if (!(o->window_s[w] > 0) || (w && o->window_s[w] <= o->window_s[w - 1]))
            return lp_err_set(err, LP_EINVAL, "window %zu: %g s; windows must be positive and "
                              "increasing", w, o->window_s[w]);
    if (!(o->time_unit_s > 0) || !isfinite(o->time_unit_s))
        return lp_err_set(err, LP_EINVAL, "time unit %g s: expected a positive number of "
                          "seconds", o->time_unit_s);
    if (!(o->label_delay_s >= 0) || !(o->max_lateness_s >= 0))
        return lp_err_set(err, LP_EINVAL, "label delay %g s / max lateness %g s: expected >= 0",
                          o->label_delay_s, o->max_lateness_s);
    for (size_t e = 0; e < o->n_entities; e++) {
        if (!o->entity[e][0])
            return lp_err_set(err, LP_EINVAL, "entity %zu: empty column name", e);
        for (size_t f = 0; f < e; f++)
            if (!strcmp(o->entity[e], o->entity[f]))
                return lp_err_set(err, LP_EINVAL, "entity '%s' given twice", o->entity[e]);
    }
    for (size_t j = 0; j < o->n_extra; j++)
        if (!o->extra[j][0])
            return lp_err_set(err, LP_EINVAL, "extra feature %zu: empty column name", j);
    for (size_t k = 0; k < o->n_text; k++) {
        if (!o->text[k][0])
            return lp_err_set(err, LP_EINVAL, "text feature %zu: empty column name", k);
        if (o->n_values[k] < 1 || o->n_values[k] > FRAUD_MAX_TEXT_VALUES)
            return lp_err_set(err, LP_EINVAL, "text feature '%s': %zu values, expected 1..%d",
                              o->text[k], o->n_values[k], FRAUD_MAX_TEXT_VALUES);
        for (size_t v = 1; v < o->n_values[k]; v++)
            if (strcmp(o->values[k][v - 1], o->values[k][v]) >= 0)
                return lp_err_set(err, LP_EINVAL, "text feature '%s': values '%s' and '%s' not "
                                  "in strictly increasing order", o->text[k],
                                  o->values[k][v - 1], o->values[k][v]);
    }
    return LP_OK;
}

cJSON *fraud_feat_opts_to_json(const fraud_feat_opts *o)
{
    cJSON *j = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(j, "entities");
    for (size_t e = 0; e < o->n_entities; e++)
        cJSON_AddItemToArray(a, cJSON_CreateString(o->entity[e]));
    a = cJSON_AddArrayToObject(j, "windows_s");
    for (size_t w = 0; w < o->n_windows; w++)
        cJSON_AddItemToArray(a, cJSON_CreateNumber(o->window_s[w]));
    a = cJSON_AddArrayToObject(j, "extra");
    for (size_t e = 0; e < o->n_extra; e++)
        cJSON_AddItemToArray(a, cJSON_CreateString(o->extra[e]));
    if (o->n_text) {
        a = cJSON_AddArrayToObject(j, "text");
        for (size_t k = 0; k < o->n_text; k++) {
            cJSON *t = cJSON_CreateObject();
            cJSON_AddStringToObject(t, "name", o->text[k]);
            cJSON *v = cJSON_AddArrayToObject(t, "values");
            for (size_t i = 0; i < o->n_values[k]; i++)
                cJSON_AddItemToArray(v, cJSON_CreateString(o->values[k][i]));
            cJSON_AddItemToArray(a, t);
        }
    }
    cJSON_AddNumberToObject(j, "label_delay_s", o->label_delay_s);
    cJSON_AddNumberToObject(j, "max_lateness_s", o->max_lateness_s);
    cJSON_AddBoolToObject(j, "velocity", o->velocity);
    cJSON_AddNumberToObject(j, "time_unit_s", o->time_unit_s);
    return j;
}

static lp_status names_from(const cJSON *a, char (*dst)[64], size_t max, size_t *n,
                            const char *what, lp_err *err)
{
    if (!cJSON_IsArray(a))
        return lp_err_set(err, LP_EFORMAT, "fraud config: '%s' is not an array", what);
    *n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, a)
    {
        if (!cJSON_IsString(it) || strlen(it->valuestring) >= 64 || *n >= max)
            return lp_err_set(err, LP_EFORMAT, "fraud config: bad entry %zu in '%s'", *n, what);
        snprintf(dst[(*n)++], 64, "%s", it->valuestring);
    }
    return LP_OK;
}

lp_status fraud_feat_opts_from_json(const cJSON *j, fraud_feat_opts *o, lp_err *err)
{
    *o = fraud_feat_opts_default();
    lp_status st = names_from(cJSON_GetObjectItem(j, "entities"), o->entity, FRAUD_MAX_ENTITIES,
                              &o->n_entities, "entities", err);
    if (!st)
        st = names_from(cJSON_GetObjectItem(j, "extra"), o->extra, FRAUD_MAX_EXTRA, &o->n_extra,
                        "extra", err);
    if (st)
        return st;
    const cJSON *tx = cJSON_GetObjectItem(j, "text"), *it; /* absent before text features */
    if (tx && !cJSON_IsArray(tx))
        return lp_err_set(err, LP_EFORMAT, "fraud config: 'text' is not an array");
    cJSON_ArrayForEach(it, tx)
    {
        const cJSON *nm = cJSON_GetObjectItem(it, "name");
        if (!cJSON_IsString(nm) || strlen(nm->valuestring) >= 64 || o->n_text >= FRAUD_MAX_TEXT)
            return lp_err_set(err, LP_EFORMAT, "fraud config: bad text feature %zu", o->n_text);
        size_t k = o->n_text++;
        snprintf(o->text[k], sizeof o->text[k], "%s", nm->valuestring);
        char what[96];
        snprintf(what, sizeof what, "text '%s' values", o->text[k]);
        if ((st = names_from(cJSON_GetObjectItem(it, "values"), o->values[k],
                             FRAUD_MAX_TEXT_VALUES, &o->n_values[k], what, err)))
            return st;
    }
    const cJSON *w = cJSON_GetObjectItem(j, "windows_s");
    if (!cJSON_IsArray(w))
        return lp_err_set(err, LP_EFORMAT, "fraud config: 'windows_s' is not an array");
    o->n_windows = 0;
    cJSON_ArrayForEach(it, w)
    {
        if (!cJSON_IsNumber(it) || o->n_windows >= FRAUD_MAX_WINDOWS)
            return lp_err_set(err, LP_EFORMAT, "fraud config: bad window %zu", o->n_windows);
        o->window_s[o->n_windows++] = it->valuedouble;
    }
    const cJSON *d = cJSON_GetObjectItem(j, "label_delay_s");
    const cJSON *l = cJSON_GetObjectItem(j, "max_lateness_s");
    if (!cJSON_IsNumber(d) || !cJSON_IsNumber(l))
        return lp_err_set(err, LP_EFORMAT, "fraud config: label_delay_s / max_lateness_s missing");
    o->label_delay_s = d->valuedouble;
    o->max_lateness_s = l->valuedouble;
    o->velocity = cJSON_IsTrue(cJSON_GetObjectItem(j, "velocity"));
    const cJSON *u = cJSON_GetObjectItem(j, "time_unit_s"); /* absent before the flag: seconds */
    if (u && !cJSON_IsNumber(u))
        return lp_err_set(err, LP_EFORMAT, "fraud config: time_unit_s is not a number");
    o->time_unit_s = u ? u->valuedouble : 1.0;
    return fraud_feat_opts_check(o, err);
}

/* "3600" -> "1h", "86400" -> "1d" */
void fraud_window_label(double s, char *out, size_t cap)
{
    if (fmod(s, 86400) == 0)
        snprintf(out, cap, "%gd", s / 86400);
    else if (fmod(s, 3600) == 0)
        snprintf(out, cap, "%gh", s / 3600);
    else if (fmod(s, 60) == 0)
        snprintf(out, cap, "%gm", s / 60);
    else
        snprintf(out, cap, "%gs", s);
}

float fraud_text_code(const fraud_feat_opts *o, size_t k, const char *s)
{
    if (!s)
        return NAN;
    /* binary search: the list is strictly increasing (fraud_feat_opts_check) */
    size_t lo = 0, hi = o->n_values[k];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(o->values[k][mid], s);
        if (!c)
            return (float)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NAN;
}

char **fraud_feature_names(const fraud_feat_opts *o, size_t *n)
{
    size_t cap = 3 + o->n_extra + o->n_text + o->n_entities * (6 * o->n_windows + 2) + 1;
    char **v = lp_calloc(cap, sizeof(char *));
    if (!v)
        return NULL;
    size_t k = 0;
    char buf[160], wl[32];
    v[k++] = lp_strdup("amount");
    v[k++] = lp_strdup("hour");
    v[k++] = lp_strdup("weekday");
    for (size_t j = 0; j < o->n_extra; j++)
        v[k++] = lp_strdup(o->extra[j]);
    for (size_t j = 0; j < o->n_text; j++)
        v[k++] = lp_strdup(o->text[j]);
    if (o->velocity) {
        static const char *const agg[] = {"count", "sum", "mean", "max"};
        for (size_t e = 0; e < o->n_entities; e++) {
            for (size_t w = 0; w < o->n_windows; w++) {
                fraud_window_label(o->window_s[w], wl, sizeof wl);
                for (size_t a = 0; a < 4; a++) {
                    snprintf(buf, sizeof buf, "%s:%s_%s", o->entity[e], agg[a], wl);
                    v[k++] = lp_strdup(buf);
                }
            }
            snprintf(buf, sizeof buf, "%s:secs_since_last", o->entity[e]);
            v[k++] = lp_strdup(buf);
            snprintf(buf, sizeof buf, "%s:amount_ratio", o->entity[e]);
            v[k++] = lp_strdup(buf);
            for (size_t w = 0; w < o->n_windows; w++) {
                fraud_window_label(o->window_s[w], wl, sizeof wl);
                snprintf(buf, sizeof buf, "%s:fraud_rate_%s", o->entity[e], wl);
                v[k++] = lp_strdup(buf);
                snprintf(buf, sizeof buf, "%s:labelled_count_%s", o->entity[e], wl);
                v[k++] = lp_strdup(buf);
            }
        }
        if (o->n_entities >= 2)
            v[k++] = lp_strdup("pair:count");
    }
    for (size_t i = 0; i < k; i++)
        if (!v[i]) {
            fraud_names_free(v, k);
            return NULL;
        }
    *n = k;
    return v;
}

void fraud_names_free(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static lp_status bind_num(const lp_frame *f, const char *name, bool allow_dt, long *j,
                          lp_err *err)
{
    size_t k;
    lp_status st = lp_frame_require(f, name, "the data", &k, err);
    if (st)
        return st;
    const lp_column *c = lp_frame_col(f, k);
    if (c->type != LP_COL_TYPE_NUMERIC || (!allow_dt && c->kind == LP_COL_KIND_DATETIME))
        return lp_err_set(err, LP_EINVAL, "column '%s' is %s, expected numbers%s", name,
                          lp_col_kind_name(c->kind), allow_dt ? " or date-times" : "");
    *j = (long)k;
    return LP_OK;
}

/* Label words, lower case: a value in the first list means fraud, in the second genuine. */
static const char *const pos_words[] = {"1", "true", "t", "yes", "y", "fraud", "fraudulent",
                                        "positive", "pos", "chargeback", "bad", "is_fraud",
                                        NULL};
static const char *const neg_words[] = {"0", "false", "f", "no", "n", "legit", "legitimate",
                                        "genuine", "negative", "neg", "ok", "good", "normal",
                                        "clean", "not_fraud", "non-fraud", "nonfraud", NULL};

static bool word_in(const char *s, const char *const *list)
{
    for (; *list; list++)
        if (!strcasecmp(s, *list))
            return true;
    return false;
}

lp_status fraud_read_transactions(const char *path, const char *label, const char *time_col,
                                  lp_frame **out, lp_err *err)
{
    const char *want[] = {label && *label ? label : NULL, time_col && *time_col ? time_col : NULL};
    return lp_frame_read_labelled(path, NULL, want, 2, NULL, out, err);
}

lp_status fraud_frame_bind_label(const lp_frame *f, const char *label, const char *positive,
                                 fraud_frame_map *map, char *used, lp_err *err)
{
    size_t k;
    lp_status st = lp_frame_require(f, label, "the data", &k, err);
    if (st)
        return st;
    const lp_column *c = lp_frame_col(f, k);
    bool given = positive && positive[0];
    if (used)
        used[0] = 0;
    map->label = (long)k;
    if (c->type == LP_COL_TYPE_NUMERIC && c->kind != LP_COL_KIND_DATETIME) {
        map->label_mode = FRAUD_LABEL_NONZERO;
        if (!given)
            return LP_OK;
        char *end;
        double v = strtod(positive, &end);
        if (end == positive || *end || !isfinite(v))
            return lp_err_set(err, LP_EINVAL, "label '%s' is numeric; --positive-label '%s' "
                              "is not a number", label, positive);
        map->label_mode = FRAUD_LABEL_VALUE;
        map->label_value = v;
        if (used)
            snprintf(used, 64, "%s", positive);
        return LP_OK;
    }
    if (c->type != LP_COL_TYPE_CATEGORICAL)
        return lp_err_set(err, LP_EINVAL, "label '%s' is %s; expected numbers (1 = fraud) or "
                          "two values such as fraud/legit", label, lp_col_kind_name(c->kind));
    if (c->n_dict > 2)
        return lp_err_set(err, LP_EINVAL, "label '%s' has %zu distinct values ('%s', '%s', "
                          "'%s'...); expected two (fraud and genuine)", label, c->n_dict,
                          c->dict[0], c->dict[1], c->dict[2]);
    map->label_mode = FRAUD_LABEL_CODE;
    map->label_code = UINT32_MAX - 1; /* matches no row: the positive value never appears */
    if (given) {
        for (size_t d = 0; d < c->n_dict; d++)
            if (!strcmp(c->dict[d], positive))
                map->label_code = (uint32_t)d;
        if (used)
            snprintf(used, 64, "%s", positive);
        return LP_OK;
    }
    /* infer: the one value that reads as fraud, else the other of one that reads as genuine */
    long pos = -1;
    size_t npos = 0, nneg = 0;
    for (size_t d = 0; d < c->n_dict; d++)
        if (word_in(c->dict[d], pos_words)) {
            pos = (long)d;
            npos++;
        }
    for (size_t d = 0; d < c->n_dict; d++)
        nneg += word_in(c->dict[d], neg_words);
    if (npos != 1 && c->n_dict == 2 && nneg == 1)
        pos = word_in(c->dict[0], neg_words) ? 1 : 0;
    else if (npos != 1)
        pos = -1;
    if (pos < 0)
        return lp_err_set(err, LP_EINVAL, "label '%s' has the values '%s'%s%s%s: which one means "
                          "fraud? pass --positive-label VALUE", label,
                          c->n_dict ? c->dict[0] : "", c->n_dict > 1 ? " and '" : "",
                          c->n_dict > 1 ? c->dict[1] : "", c->n_dict > 1 ? "'" : "");
    map->label_code = (uint32_t)pos;
    if (used)
        snprintf(used, 64, "%s", c->dict[pos]);
    return LP_OK;
}

lp_status fraud_frame_bind(const lp_frame *f, const fraud_feat_opts *o, const char *id_col,
                           const char *time_col, const char *amount_col, const char *label,
                           fraud_frame_map *map, lp_err *err)
{
    memset(map, 0xff, sizeof *map); /* every index -1 */
    lp_status st = LP_OK;
    size_t k;
    if (id_col && (st = lp_frame_require(f, id_col, "the data", &k, err)))
        return st;
    if (id_col)
        map->id = (long)k;
    if (time_col && (st = bind_num(f, time_col, true, &map->time, err)))
        return st;
    if (amount_col && (st = bind_num(f, amount_col, false, &map->amount, err)))
        return st;
    map->time_scale = 1.0;
    if (map->time >= 0 && lp_frame_col(f, (size_t)map->time)->kind != LP_COL_KIND_DATETIME)
        map->time_scale = o->time_unit_s;
    map->id_prefix = "row";
    map->label_mode = FRAUD_LABEL_NONZERO;
    if (label && (st = fraud_frame_bind_label(f, label, NULL, map, NULL, err)))
        return st;
    for (size_t e = 0; e < o->n_entities; e++) {
        if ((st = lp_frame_require(f, o->entity[e], "the data", &k, err)))
            return st;
        map->keys[e] = (long)k;
    }
    for (size_t j = 0; j < o->n_extra; j++)
        if ((st = bind_num(f, o->extra[j], false, &map->extra[j], err)))
            return st;
    for (size_t j = 0; j < o->n_text; j++) {
        if ((st = lp_frame_require(f, o->text[j], "the data", &k, err)))
            return st;
        map->text[j] = (long)k;
    }
    return LP_OK;
}

static const double *g_sort_t;
static int cmp_time(const void *a, const void *b)
{
    size_t i = *(const size_t *)a, j = *(const size_t *)b;
    double x = g_sort_t[i], y = g_sort_t[j];
    if (x < y)
        return -1;
    if (x > y)
        return 1;
    return (i > j) - (i < j);
}

size_t *fraud_frame_time_order(const lp_frame *f, const fraud_frame_map *map)
{
    size_t n = lp_frame_nrows(f);
    size_t *idx = lp_mallocarray(n + 1, sizeof(size_t));
    if (!idx)
        return NULL;
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    if (map->time >= 0) {
        /* qsort with a file-scope key: this runs on the CLI / training path only */
        g_sort_t = lp_frame_col(f, (size_t)map->time)->num;
        qsort(idx, n, sizeof(size_t), cmp_time);
        g_sort_t = NULL;
    }
    return idx;
}

/* Cell text for ids and keys: integral numbers take a fast path (no printf), so a replay of
 * integer-keyed data is not dominated by number formatting. Same text as lp_column_cell_str. */
static const char *cell_text(const lp_column *c, size_t i, char *buf, size_t cap)
{
    if (c->type == LP_COL_TYPE_NUMERIC && c->kind != LP_COL_KIND_DATETIME &&
        c->kind != LP_COL_KIND_BOOL && !c->missing[i]) {
        double v = c->num[i];
        if (v == floor(v) && fabs(v) < 1e15 && cap >= 24) {
            char tmp[24];
            size_t n = 0;
            uint64_t u = (uint64_t)fabs(v);
            do {
                tmp[n++] = (char)('0' + u % 10);
                u /= 10;
            } while (u);
            size_t k = 0;
            if (v < 0)
                buf[k++] = '-';
            while (n)
                buf[k++] = tmp[--n];
            buf[k] = 0;
            return buf;
        }
    }
    return lp_column_cell_str(c, i, buf, cap);
}

void fraud_frame_row(const lp_frame *f, const fraud_frame_map *map, const fraud_feat_opts *o,
                     size_t i, fraud_tx *tx, char *buf, size_t cap)
{
    memset(tx, 0, sizeof *tx);
    size_t used = 0;
    char cell[64];
    if (map->id >= 0) {
        const char *s = cell_text(lp_frame_col(f, (size_t)map->id), i, cell, sizeof cell);
        int w = snprintf(buf, cap, "%s", s);
        tx->id = buf;
        used = (size_t)w + 1;
    } else {
        int w = snprintf(buf, cap, "%s%zu", map->id_prefix ? map->id_prefix : "row", i);
        tx->id = buf;
        used = (size_t)w + 1;
    }
    tx->time = map->time >= 0 ? lp_frame_col(f, (size_t)map->time)->num[i] * map->time_scale
                              : (double)i;
    tx->amount = map->amount >= 0 ? lp_frame_col(f, (size_t)map->amount)->num[i] : 0.0;
    for (size_t e = 0; e < o->n_entities; e++) {
        const lp_column *c = lp_frame_col(f, (size_t)map->keys[e]);
        const char *s = c->missing[i] ? "" : cell_text(c, i, cell, sizeof cell);
        if (used < cap) {
            int w = snprintf(buf + used, cap - used, "%s", s);
            tx->keys[e] = buf + used;
            used += (size_t)w + 1;
        }
    }
    for (size_t j = 0; j < o->n_extra; j++)
        tx->extra[j] = lp_frame_col(f, (size_t)map->extra[j])->num[i];
    for (size_t j = 0; j < o->n_text; j++) {
        const lp_column *c = lp_frame_col(f, (size_t)map->text[j]);
        if (c->missing[i])
            continue; /* NULL: missing */
        if (c->type == LP_COL_TYPE_CATEGORICAL) {
            tx->text[j] = c->dict[c->codes[i]];
        } else if (c->type == LP_COL_TYPE_TEXT) {
            tx->text[j] = c->text[i];
        } else if (used < cap) { /* a column of numbers (in this file): their text */
            const char *s = cell_text(c, i, cell, sizeof cell);
            int w = snprintf(buf + used, cap - used, "%s", s);
            if (w >= 0 && used + (size_t)w < cap)
                tx->text[j] = buf + used;
            used += (size_t)w + 1;
        }
    }
    tx->label = -1;
    if (map->label >= 0) {
        const lp_column *c = lp_frame_col(f, (size_t)map->label);
        if (!c->missing[i])
            tx->label = map->label_mode == FRAUD_LABEL_CODE    ? c->codes[i] == map->label_code
                        : map->label_mode == FRAUD_LABEL_VALUE ? c->num[i] == map->label_value
                                                               : c->num[i] != 0.0;
    }
}
