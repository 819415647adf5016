/*
 * jsonl.c - the JSONL reader: one flat JSON object per line (cJSON parses each line), keys
 * become columns in first-seen order, then types are inferred as for CSV (data.h).
 *
 * Values keep a text form in a cell store (numbers as the shortest exact decimal, booleans as
 * true/false, strings as they are), so inference and overrides work exactly as for CSV.
 * Blank lines are skipped, a trailing CR is dropped. Nested objects/arrays, duplicate or empty
 * keys, and lines that are not objects are LP_EPARSE naming the line (and key). Strings longer
 * than opts.max_field are LP_ETOOBIG.
 */
#include "data/data_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static lp_status put_value(lp_cellstore *s, const cJSON *it, size_t line, const char *name,
                           size_t max_field, lp_err *err)
{
    const char *key = it->string ? it->string : "";
    if (!key[0])
        return lp_err_set(err, LP_EPARSE, "%s line %zu: empty key", name, line);
    if (cJSON_IsObject(it) || cJSON_IsArray(it))
        return lp_err_set(err, LP_EPARSE,
                          "%s line %zu: key '%s' holds %s (only flat objects are supported)",
                          name, line, key, cJSON_IsObject(it) ? "an object" : "an array");
    long j = lp_cellstore_col(s, key);
    if (j < 0)
        return lp_err_set(err, LP_ENOMEM, "%s line %zu: out of memory", name, line);
    const lp_cellcol *c = &s->cols[j];
    if (c->n && c->cells[c->n - 1].row == s->nrows - 1)
        return lp_err_set(err, LP_EPARSE, "%s line %zu: duplicate key '%s'", name, line, key);
    char buf[64];
    const char *v;
    uint8_t flags = 0;
    if (cJSON_IsNull(it)) {
        v = "";
        flags = LP_CELL_NULL;
    } else if (cJSON_IsBool(it)) {
        v = cJSON_IsTrue(it) ? "true" : "false";
    } else if (cJSON_IsNumber(it)) {
        double d = it->valuedouble;
        if (d == floor(d) && fabs(d) < 9007199254740992.0)
            snprintf(buf, sizeof buf, "%.0f", d);
        else
            snprintf(buf, sizeof buf, "%.17g", d);
        v = buf;
    } else if (cJSON_IsString(it) && it->valuestring) {
        v = it->valuestring;
        flags = LP_CELL_TOKENS;
        if (strlen(v) > max_field)
            return lp_err_set(err, LP_ETOOBIG,
                              "%s line %zu: key '%s' holds %zu bytes, over the limit of %zu "
                              "(max_field)",
                              name, line, key, strlen(v), max_field);
    } else {
        return lp_err_set(err, LP_EPARSE, "%s line %zu: key '%s' has an unsupported value",
                          name, line, key);
    }
    if (!lp_cellstore_put(s, (size_t)j, v, strlen(v), flags))
        return lp_err_set(err, LP_ENOMEM, "%s line %zu: out of memory", name, line);
    return LP_OK;
}

lp_status lp_frame_parse_jsonl(const char *data, size_t len, const char *name,
                               const lp_csv_opts *opts, lp_frame **out, lp_err *err)
{
    *out = NULL;
    lp_csv_opts defaults = lp_csv_opts_default();
    if (!opts)
        opts = &defaults;
    if (!name)
        name = "<jsonl>";
    lp_status st = lp_csv_opts_check(opts, err);
    if (st)
        return st;
    if (!data && len)
        return lp_err_set(err, LP_EINVAL, "%s: no data", name);
    st = lp_text_validate(data, len, name, err);
    if (st)
        return st;
    size_t pos = 0, line = 0;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    lp_cellstore s;
    lp_cellstore_init(&s);
    while (!st && pos < len && (!opts->max_rows || s.nrows < opts->max_rows)) {
        line++;
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - data) : len, n = end - pos;
        const char *p = data + pos;
        pos = end + 1;
        if (n && p[n - 1] == '\r')
            n--;
        size_t k = 0;
        while (k < n && (p[k] == ' ' || p[k] == '\t'))
            k++;
        if (k == n)
            continue;
        const char *stop = NULL;
        cJSON *obj = cJSON_ParseWithLengthOpts(p, n, &stop, 0);
        if (!obj) {
            size_t at = stop && stop >= p && stop <= p + n ? (size_t)(stop - p) + 1 : 1;
            st = lp_err_set(err, LP_EPARSE, "%s line %zu, byte %zu: invalid JSON", name, line,
                            at);
            break;
        }
        if (!cJSON_IsObject(obj)) {
            st = lp_err_set(err, LP_EPARSE, "%s line %zu: expected a JSON object", name, line);
        } else if (!lp_cellstore_row(&s, line)) {
            st = lp_err_set(err, LP_ENOMEM, "%s line %zu: out of memory", name, line);
        } else {
            for (const cJSON *it = obj->child; it && !st; it = it->next)
                st = put_value(&s, it, line, name, opts->max_field, err);
        }
        cJSON_Delete(obj);
    }
    if (!st && s.nrows == 0 && s.ncols == 0)
        st = lp_err_set(err, LP_EPARSE, "%s: empty file (expected JSON objects, one per line)",
                        name);
    if (!st)
        st = lp_cellstore_frame(&s, opts, name, "line", out, err);
    lp_cellstore_free(&s);
    return lp_err_oneline(err, st);
}

lp_status lp_frame_read_jsonl(const char *path, const lp_csv_opts *opts, lp_frame **out,
                              lp_err *err)
{
    *out = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    lp_status st = lp_file_read(path, &data, &len, err);
    if (st)
        return st;
    st = lp_frame_parse_jsonl((const char *)data, len, path, opts, out, err);
    free(data);
    return st;
}
