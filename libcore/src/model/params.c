/*
 * params.c - lp_params: an ordered list of key=value strings with typed, range-checked getters.
 * The list is small (tens of keys), so lookups are linear scans.
 */
#include "lepton/model.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct kv {
    char *key, *value;
} kv;

struct lp_params {
    kv *v;
    size_t n, cap;
};

lp_params *lp_params_new(void) { return calloc(1, sizeof(lp_params)); }

void lp_params_free(lp_params *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n; i++) {
        free(p->v[i].key);
        free(p->v[i].value);
    }
    free(p->v);
    free(p);
}

lp_params *lp_params_clone(const lp_params *p)
{
    lp_params *c = lp_params_new();
    if (!c)
        return NULL;
    for (size_t i = 0; p && i < p->n; i++)
        if (lp_params_set(c, p->v[i].key, p->v[i].value, NULL)) {
            lp_params_free(c);
            return NULL;
        }
    return c;
}

static long find(const lp_params *p, const char *key)
{
    for (size_t i = 0; p && i < p->n; i++)
        if (strcmp(p->v[i].key, key) == 0)
            return (long)i;
    return -1;
}

lp_status lp_params_set(lp_params *p, const char *key, const char *value, lp_err *err)
{
    if (!key || !*key)
        return lp_err_set(err, LP_EINVAL, "parameter with an empty name");
    char *v = lp_strdup(value ? value : "");
    if (!v)
        return lp_err_set(err, LP_ENOMEM, "out of memory setting parameter '%s'", key);
    long i = find(p, key);
    if (i >= 0) {
        free(p->v[i].value);
        p->v[i].value = v;
        return LP_OK;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 8;
        kv *nv = lp_reallocarray(p->v, cap, sizeof *nv);
        if (!nv) {
            free(v);
            return lp_err_set(err, LP_ENOMEM, "out of memory setting parameter '%s'", key);
        }
        p->v = nv;
        p->cap = cap;
    }
    char *k = lp_strdup(key);
    if (!k) {
        free(v);
        return lp_err_set(err, LP_ENOMEM, "out of memory setting parameter '%s'", key);
    }
    p->v[p->n].key = k;
    p->v[p->n].value = v;
    p->n++;
    return LP_OK;
}

lp_status lp_params_parse(lp_params *p, const char *text, lp_err *err)
{
    const char *eq = text ? strchr(text, '=') : NULL;
    if (!eq || eq == text)
        return lp_err_set(err, LP_EINVAL, "parameter '%s' is not of the form key=value",
                          text ? text : "");
    char key[128];
    size_t n = (size_t)(eq - text);
    if (n >= sizeof key)
        return lp_err_set(err, LP_EINVAL, "parameter name too long in '%s'", text);
    memcpy(key, text, n);
    key[n] = '\0';
    return lp_params_set(p, key, eq + 1, err);
}

lp_status lp_params_set_double(lp_params *p, const char *key, double v, lp_err *err)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%.17g", v);
    return lp_params_set(p, key, buf, err);
}

size_t lp_params_count(const lp_params *p) { return p ? p->n : 0; }
const char *lp_params_key(const lp_params *p, size_t i) { return p && i < p->n ? p->v[i].key : NULL; }
const char *lp_params_value(const lp_params *p, size_t i)
{
    return p && i < p->n ? p->v[i].value : NULL;
}

const char *lp_params_get(const lp_params *p, const char *key)
{
    long i = find(p, key);
    return i >= 0 ? p->v[i].value : NULL;
}

lp_status lp_params_int(const lp_params *p, const char *key, long def, long min, long max,
                        long *out, lp_err *err)
{
    const char *s = lp_params_get(p, key);
    if (!s) {
        *out = def;
        return LP_OK;
    }
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return lp_err_set(err, LP_EINVAL, "%s=%s: must be an integer in [%ld, %ld]", key, s, min,
                          max);
    *out = v;
    return LP_OK;
}

lp_status lp_params_double(const lp_params *p, const char *key, double def, double min,
                           double max, double *out, lp_err *err)
{
    const char *s = lp_params_get(p, key);
    if (!s) {
        *out = def;
        return LP_OK;
    }
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        return lp_err_set(err, LP_EINVAL, "%s=%s: must be a number in [%g, %g]", key, s, min, max);
    *out = v;
    return LP_OK;
}

lp_status lp_params_bool(const lp_params *p, const char *key, bool def, bool *out, lp_err *err)
{
    const char *s = lp_params_get(p, key);
    if (!s) {
        *out = def;
        return LP_OK;
    }
    if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "yes")) {
        *out = true;
        return LP_OK;
    }
    if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "no")) {
        *out = false;
        return LP_OK;
    }
    return lp_err_set(err, LP_EINVAL, "%s=%s: must be true or false", key, s);
}

lp_status lp_params_choice(const lp_params *p, const char *key, const char *const *choices,
                           size_t def, size_t *out, lp_err *err)
{
    const char *s = lp_params_get(p, key);
    if (!s) {
        *out = def;
        return LP_OK;
    }
    char list[256] = "";
    size_t used = 0;
    for (size_t i = 0; choices[i]; i++) {
        if (!strcmp(s, choices[i])) {
            *out = i;
            return LP_OK;
        }
        int w = snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", choices[i]);
        if (w > 0 && (size_t)w < sizeof list - used)
            used += (size_t)w;
    }
    return lp_err_set(err, LP_EINVAL, "%s=%s: must be one of %s", key, s, list);
}

lp_status lp_params_check_unknown(const lp_params *p, const char *family,
                                  const char *const *known, lp_err *err)
{
    for (size_t i = 0; p && i < p->n; i++) {
        bool ok = false;
        for (size_t k = 0; known[k] && !ok; k++)
            ok = strcmp(p->v[i].key, known[k]) == 0;
        if (ok)
            continue;
        char list[400] = "";
        size_t used = 0;
        for (size_t k = 0; known[k]; k++) {
            int w = snprintf(list + used, sizeof list - used, "%s%s", k ? ", " : "", known[k]);
            if (w > 0 && (size_t)w < sizeof list - used)
                used += (size_t)w;
        }
        return lp_err_set(err, LP_EINVAL, "unknown parameter '%s' for %s (known: %s)",
                          p->v[i].key, family, list);
    }
    return LP_OK;
}

char *lp_params_to_json(const lp_params *p)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    for (size_t i = 0; p && i < p->n; i++) {
        char *end;
        double v = strtod(p->v[i].value, &end);
        if (*p->v[i].value && !*end && isfinite(v))
            cJSON_AddNumberToObject(o, p->v[i].key, v);
        else
            cJSON_AddStringToObject(o, p->v[i].key, p->v[i].value);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static const char *kind_names[] = {"linear", "logistic", "nn", "gbdt"};

const char *lp_model_kind_name(lp_model_kind k)
{
    return (unsigned)k < LP_MODEL_KIND_COUNT_ ? kind_names[k] : "unknown";
}

lp_status lp_model_kind_parse(const char *s, lp_model_kind *out, lp_err *err)
{
    for (int i = 0; i < LP_MODEL_KIND_COUNT_; i++)
        if (s && !strcmp(s, kind_names[i])) {
            *out = (lp_model_kind)i;
            return LP_OK;
        }
    return lp_err_set(err, LP_EINVAL, "unknown model '%s' (expected linear, logistic, nn or gbdt)",
                      s ? s : "");
}

const char *lp_task_name(lp_task t)
{
    static const char *names[] = {"regression", "binary", "multiclass"};
    return (unsigned)t < 3 ? names[t] : "unknown";
}
