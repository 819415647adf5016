/*
 * modelserver.c - loading a served model and turning JSON rows into frames (modelserver.h).
 */
#include "modelserver.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void free_adapters(served *s)
{
    for (size_t i = 0; i < s->n_adapters; i++) {
        lp_lora_free(s->adapters[i]);
        free(s->adapter_names[i]);
    }
    free(s->adapters);
    free(s->adapter_names);
    s->adapters = NULL;
    s->adapter_names = NULL;
    s->n_adapters = 0;
}

void served_free(served *s)
{
    if (!s)
        return;
    free_adapters(s);
    lp_predictor_free(s->pred);
    free(s->drift_j);
    lp_drift_sketch_free(s->sk);
    lp_drift_free(s->ref);
    lp_model_free(s->m);
    free(s);
}

lp_status served_load(const char *path, served **out, lp_err *err)
{
    *out = NULL;
    served *s = calloc(1, sizeof *s);
    if (!s)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    snprintf(s->path, sizeof s->path, "%s", path);
    char sha[65];
    lp_status st = lp_sha256_file(path, sha, err);
    if (!st)
        st = lp_model_load(path, &s->m, err);
    if (!st) {
        snprintf(s->version, sizeof s->version, "%.12s", sha);
        const void *d;
        size_t n;
        if (lp_model_get_extra(s->m, "drift", &d, &n, NULL) == LP_OK) {
            st = lp_drift_load(d, n, &s->ref, err);
            if (!st && !(s->sk = lp_drift_sketch_new(s->ref)))
                st = lp_err_set(err, LP_ENOMEM, "out of memory");
        }
    }
    s->score_j = s->ref ? lp_drift_find(s->ref, "_score") : -1;
    if (!st)
        st = lp_predictor_new(s->m, &s->pred, err);
    if (!st && s->ref) {
        size_t k = lp_model_n_inputs(s->m);
        if (!(s->drift_j = lp_mallocarray(k ? k : 1, sizeof *s->drift_j)))
            st = lp_err_set(err, LP_ENOMEM, "out of memory");
        for (size_t j = 0; !st && j < k; j++)
            s->drift_j[j] = lp_drift_find(s->ref, lp_model_input_name(s->m, j));
    }
    if (st) {
        served_free(s);
        return st;
    }
    *out = s;
    return LP_OK;
}

lp_status served_load_adapters(served *s, const char *const *specs, size_t n, lp_err *err)
{
    free_adapters(s);
    if (n == 0)
        return LP_OK;
    s->adapters = calloc(n, sizeof *s->adapters);
    s->adapter_names = calloc(n, sizeof *s->adapter_names);
    lp_status st = s->adapters && s->adapter_names ? LP_OK
                                                   : lp_err_set(err, LP_ENOMEM, "out of memory");
    for (size_t i = 0; !st && i < n; i++) {
        const char *eq = strchr(specs[i], '=');
        size_t nl = eq ? (size_t)(eq - specs[i]) : 0;
        if (!eq || nl == 0 || nl > 128 || !eq[1]) {
            st = lp_err_set(err, LP_EINVAL, "--adapter '%s': expected NAME=FILE.lpa (a name of 1 "
                            "to 128 characters)", specs[i]);
            break;
        }
        for (size_t k = 0; k < s->n_adapters && !st; k++)
            if (strlen(s->adapter_names[k]) == nl && !strncmp(s->adapter_names[k], specs[i], nl))
                st = lp_err_set(err, LP_EINVAL, "--adapter '%s': the name is given twice",
                                specs[i]);
        if (st)
            break;
        if (!(s->adapter_names[i] = lp_strndup(specs[i], nl))) {
            st = lp_err_set(err, LP_ENOMEM, "out of memory");
            break;
        }
        s->n_adapters++;
        st = lp_lora_load(s->m, eq + 1, &s->adapters[i], err);
        if (st)
            lp_err_prefix(err, "adapter '%s'", s->adapter_names[i]);
    }
    if (st)
        free_adapters(s);
    return st;
}

const lp_lora *served_adapter(const served *s, const char *name)
{
    for (size_t i = 0; name && i < s->n_adapters; i++)
        if (!strcmp(s->adapter_names[i], name))
            return s->adapters[i];
    return NULL;
}

void served_sketch_rows(const served *s, const lp_row_view *rows, size_t n)
{
    if (!s->sk)
        return;
    /* add_num ignores a categorical reference feature and add_cat a numeric one, which is the
       type matching lp_drift_sketch_add_frame does */
    size_t k = lp_model_n_inputs(s->m);
    for (size_t j = 0; j < k; j++) {
        if (s->drift_j[j] < 0)
            continue;
        size_t f = (size_t)s->drift_j[j];
        bool numeric = lp_col_kind_type(lp_model_input_kind(s->m, j)) == LP_COL_TYPE_NUMERIC;
        for (size_t i = 0; i < n; i++) {
            if (numeric)
                lp_drift_sketch_add_num(s->sk, f, rows[i].num[j]);
            else
                lp_drift_sketch_add_cat(s->sk, f, rows[i].str ? rows[i].str[j] : NULL);
        }
    }
}

static const char *json_type(const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsBool(v))
        return "a boolean";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsObject(v))
        return "an object";
    return "null";
}

static lp_status set_cell(lp_column *c, size_t i, const cJSON *v, lp_err *err)
{
    if (!v || cJSON_IsNull(v))
        return LP_OK; /* missing */
    char buf[64];
    switch (c->kind) {
    case LP_COL_KIND_INTEGER:
    case LP_COL_KIND_FLOAT:
        if (cJSON_IsNumber(v))
            return lp_column_set_num(c, i, v->valuedouble, err);
        if (cJSON_IsBool(v))
            return lp_column_set_num(c, i, cJSON_IsTrue(v) ? 1 : 0, err);
        if (cJSON_IsString(v)) {
            double x;
            if (lp_parse_number_text(v->valuestring, strlen(v->valuestring), &x) && isfinite(x))
                return lp_column_set_num(c, i, x, err);
            return lp_err_set(err, LP_EINVAL, "expected a number, got '%.40s'", v->valuestring);
        }
        return lp_err_set(err, LP_EINVAL, "expected a number, got %s", json_type(v));
    case LP_COL_KIND_BOOL:
        if (cJSON_IsBool(v))
            return lp_column_set_num(c, i, cJSON_IsTrue(v) ? 1 : 0, err);
        if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1))
            return lp_column_set_num(c, i, v->valuedouble, err);
        if (cJSON_IsString(v)) {
            bool b;
            if (lp_parse_bool(v->valuestring, strlen(v->valuestring), true, &b))
                return lp_column_set_num(c, i, b, err);
        }
        return lp_err_set(err, LP_EINVAL, "expected true or false, got %s", json_type(v));
    case LP_COL_KIND_DATETIME:
        if (cJSON_IsNumber(v))
            return lp_column_set_num(c, i, v->valuedouble, err);
        if (cJSON_IsString(v)) {
            double t;
            if (lp_parse_datetime(v->valuestring, strlen(v->valuestring), &t))
                return lp_column_set_num(c, i, t, err);
            return lp_err_set(err, LP_EINVAL, "expected an ISO-8601 date-time, got '%.40s'",
                              v->valuestring);
        }
        return lp_err_set(err, LP_EINVAL, "expected a date-time, got %s", json_type(v));
    case LP_COL_KIND_CATEGORICAL:
    case LP_COL_KIND_TEXT:
        if (cJSON_IsString(v))
            return lp_column_set_str(c, i, v->valuestring, err);
        if (cJSON_IsNumber(v)) {
            snprintf(buf, sizeof buf, "%.17g", v->valuedouble);
            return lp_column_set_str(c, i, buf, err);
        }
        if (cJSON_IsBool(v))
            return lp_column_set_str(c, i, cJSON_IsTrue(v) ? "true" : "false", err);
        return lp_err_set(err, LP_EINVAL, "expected a string, got %s", json_type(v));
    }
    return LP_OK;
}

lp_status rows_to_frame(const lp_model *m, const cJSON *rows, lp_frame **out, cJSON *ignored,
                        lp_err *err)
{
    *out = NULL;
    size_t n = (size_t)cJSON_GetArraySize(rows), k = lp_model_n_inputs(m);
    lp_frame *f = lp_frame_new();
    if (!f)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    lp_status st = LP_OK;
    for (size_t j = 0; j < k && !st; j++)
        st = lp_frame_add_column(
            f, lp_column_new(lp_model_input_name(m, j), lp_model_input_kind(m, j), n), err);
    size_t i = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        if (st)
            break;
        if (!cJSON_IsObject(row)) {
            st = lp_err_set(err, LP_EINVAL, "rows[%zu]: expected an object, got %s", i,
                            json_type(row));
            break;
        }
        const cJSON *v;
        cJSON_ArrayForEach(v, row)
        {
            long j = lp_frame_find(f, v->string);
            if (j < 0) {
                /* not an input (an id, the label, a column dropped at training): reported once */
                bool seen = false;
                const cJSON *e;
                cJSON_ArrayForEach(e, ignored) seen = seen || !strcmp(e->valuestring, v->string);
                if (ignored && !seen && cJSON_GetArraySize(ignored) < 100)
                    cJSON_AddItemToArray(ignored, cJSON_CreateString(v->string));
                continue;
            }
            lp_err cell;
            lp_err_clear(&cell);
            if (set_cell(lp_frame_col(f, (size_t)j), i, v, &cell)) {
                st = lp_err_set(err, LP_EINVAL, "rows[%zu].%.60s: %s", i, v->string,
                                lp_err_text(&cell));
                break;
            }
        }
        i++;
    }
    if (st) {
        lp_frame_free(f);
        return st;
    }
    *out = f;
    return LP_OK;
}
