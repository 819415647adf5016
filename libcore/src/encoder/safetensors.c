/*
 * safetensors.c - the safetensors reader (see safetensors.h for the format and the checks).
 *
 * Invariants after a successful parse: every tensor's [data, data + nbytes) lies inside the
 * owned copy of the file, nbytes == numel * dtype size, no two tensors share a byte, and names
 * are unique. Offsets are parsed from JSON doubles and must be integers below 2^53.
 */
#include "lepton/safetensors.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct lp_safetensors {
    uint8_t *bytes; /* the whole file */
    size_t len;
    lp_st_tensor *t;
    char **names; /* owned names, parallel to t */
    size_t n;
    char **meta_k, **meta_v;
    size_t n_meta;
};

static const struct {
    const char *name;
    size_t size;
} DTYPES[LP_ST_DTYPE_COUNT_] = {
    [LP_ST_DTYPE_F32] = {"F32", 4},   [LP_ST_DTYPE_F16] = {"F16", 2},
    [LP_ST_DTYPE_BF16] = {"BF16", 2}, [LP_ST_DTYPE_F64] = {"F64", 8},
    [LP_ST_DTYPE_I64] = {"I64", 8},   [LP_ST_DTYPE_I32] = {"I32", 4},
    [LP_ST_DTYPE_I16] = {"I16", 2},   [LP_ST_DTYPE_I8] = {"I8", 1},
    [LP_ST_DTYPE_U8] = {"U8", 1},     [LP_ST_DTYPE_BOOL] = {"BOOL", 1},
};

const char *lp_st_dtype_name(lp_st_dtype d)
{
    return (unsigned)d < LP_ST_DTYPE_COUNT_ ? DTYPES[d].name : NULL;
}

size_t lp_st_dtype_size(lp_st_dtype d)
{
    return (unsigned)d < LP_ST_DTYPE_COUNT_ ? DTYPES[d].size : 0;
}

void lp_safetensors_free(lp_safetensors *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n; i++)
        free(st->names[i]);
    for (size_t i = 0; i < st->n_meta; i++) {
        free(st->meta_k[i]);
        free(st->meta_v[i]);
    }
    free(st->names);
    free(st->t);
    free(st->meta_k);
    free(st->meta_v);
    free(st->bytes);
    free(st);
}

/* A JSON number that is a non-negative integer below 2^53 (exact in a double). */
static bool json_size(const cJSON *v, size_t *out)
{
    if (!cJSON_IsNumber(v))
        return false;
    double d = v->valuedouble;
    if (!(d >= 0 && d < 9007199254740992.0) || floor(d) != d)
        return false;
    *out = (size_t)d;
    return true;
}

static int cmp_by_begin(const void *a, const void *b)
{
    const lp_st_tensor *x = *(const lp_st_tensor *const *)a, *y = *(const lp_st_tensor *const *)b;
    return x->data < y->data ? -1 : x->data > y->data;
}

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp((*(const lp_st_tensor *const *)a)->name, (*(const lp_st_tensor *const *)b)->name);
}

static lp_status parse_tensor(const cJSON *e, const uint8_t *base, size_t data_len,
                              const char *name, lp_st_tensor *t, lp_err *err)
{
    const char *tn = e->string;
    if (!cJSON_IsObject(e))
        return lp_err_set(err, LP_EFORMAT, "%s: tensor '%s': expected a JSON object", name, tn);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt))
        return lp_err_set(err, LP_EFORMAT, "%s: tensor '%s': missing string field 'dtype'", name,
                          tn);
    int d = -1;
    for (int i = 0; i < LP_ST_DTYPE_COUNT_; i++)
        if (strcmp(dt->valuestring, DTYPES[i].name) == 0)
            d = i;
    if (d < 0)
        return lp_err_set(err, LP_EUNSUPPORTED,
                          "%s: tensor '%s': unknown dtype '%.32s' (expected F32, F16, BF16, F64, "
                          "I64, I32, I16, I8, U8 or BOOL)",
                          name, tn, dt->valuestring);
    t->dtype = (lp_st_dtype)d;
    if (!cJSON_IsArray(sh))
        return lp_err_set(err, LP_EFORMAT, "%s: tensor '%s': missing array field 'shape'", name,
                          tn);
    int nd = cJSON_GetArraySize(sh);
    if (nd > LP_SAFETENSORS_MAX_DIMS)
        return lp_err_set(err, LP_EUNSUPPORTED, "%s: tensor '%s': %d dimensions (at most %d)", name,
                          tn, nd, LP_SAFETENSORS_MAX_DIMS);
    t->ndim = (size_t)nd;
    t->numel = 1;
    size_t k = 0;
    for (const cJSON *s = sh->child; s; s = s->next, k++) {
        if (!json_size(s, &t->shape[k]))
            return lp_err_set(err, LP_EFORMAT,
                              "%s: tensor '%s': shape[%zu] is not a non-negative integer", name, tn,
                              k);
        if (t->shape[k] && t->numel > SIZE_MAX / t->shape[k])
            return lp_err_set(err, LP_EFORMAT, "%s: tensor '%s': element count overflows", name,
                              tn);
        t->numel *= t->shape[k];
    }
    size_t b, en;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !json_size(off->child, &b) ||
        !json_size(off->child->next, &en))
        return lp_err_set(err, LP_EFORMAT,
                          "%s: tensor '%s': 'data_offsets' must be [begin, end] integers", name,
                          tn);
    if (b > en || en > data_len)
        return lp_err_set(err, LP_EFORMAT,
                          "%s: tensor '%s': data_offsets [%zu, %zu] outside the %zu data bytes",
                          name, tn, b, en, data_len);
    size_t es = DTYPES[d].size;
    if (t->numel > SIZE_MAX / es || en - b != t->numel * es)
        return lp_err_set(err, LP_EFORMAT,
                          "%s: tensor '%s': %zu data bytes but shape and dtype %s need %zu", name,
                          tn, en - b, DTYPES[d].name, t->numel > SIZE_MAX / es ? 0 : t->numel * es);
    t->data = base + b;
    t->nbytes = en - b;
    return LP_OK;
}

static lp_status parse_metadata(lp_safetensors *st, const cJSON *m, const char *name, lp_err *err)
{
    if (!cJSON_IsObject(m))
        return lp_err_set(err, LP_EFORMAT, "%s: '__metadata__' must be an object", name);
    size_t n = (size_t)cJSON_GetArraySize(m);
    st->meta_k = lp_calloc(n ? n : 1, sizeof(char *));
    st->meta_v = lp_calloc(n ? n : 1, sizeof(char *));
    if (!st->meta_k || !st->meta_v)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", name);
    for (const cJSON *e = m->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return lp_err_set(err, LP_EFORMAT, "%s: __metadata__ '%s' is not a string", name,
                              e->string);
        st->meta_k[st->n_meta] = lp_strdup(e->string);
        st->meta_v[st->n_meta] = lp_strdup(e->valuestring);
        if (!st->meta_k[st->n_meta++] || !st->meta_v[st->n_meta - 1])
            return lp_err_set(err, LP_ENOMEM, "%s: out of memory", name);
    }
    return LP_OK;
}

/* Parse st->bytes[0..len) in place (st owns them). */
static lp_status parse_owned(lp_safetensors *st, const char *name, lp_err *err)
{
    if (st->len < 8)
        return lp_err_set(err, LP_EFORMAT, "%s: %zu bytes, too short for the 8-byte header length",
                          name, st->len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | st->bytes[i];
    if (hlen > LP_SAFETENSORS_HEADER_MAX || hlen > st->len - 8)
        return lp_err_set(
            err, LP_EFORMAT,
            "%s: header length %llu exceeds the file (%zu bytes) or the %u-byte limit", name,
            (unsigned long long)hlen, st->len, LP_SAFETENSORS_HEADER_MAX);
    const char *json = (const char *)st->bytes + 8;
    cJSON *root = cJSON_ParseWithLength(json, (size_t)hlen);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return lp_err_set(err, LP_EFORMAT, "%s: the %llu-byte header is not a JSON object", name,
                          (unsigned long long)hlen);
    }
    const uint8_t *base = st->bytes + 8 + hlen;
    size_t data_len = st->len - 8 - (size_t)hlen;
    size_t cap = (size_t)cJSON_GetArraySize(root);
    lp_status s = LP_OK;
    st->t = lp_calloc(cap ? cap : 1, sizeof *st->t);
    st->names = lp_calloc(cap ? cap : 1, sizeof(char *));
    if (!st->t || !st->names)
        s = lp_err_set(err, LP_ENOMEM, "%s: out of memory", name);
    for (const cJSON *e = root->child; !s && e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            s = st->n_meta || st->meta_k ? lp_err_set(err, LP_EFORMAT, "%s: two __metadata__", name)
                                         : parse_metadata(st, e, name, err);
            continue;
        }
        lp_st_tensor *t = &st->t[st->n];
        s = parse_tensor(e, base, data_len, name, t, err);
        if (!s) {
            st->names[st->n] = lp_strdup(e->string);
            if (!st->names[st->n])
                s = lp_err_set(err, LP_ENOMEM, "%s: out of memory", name);
            t->name = st->names[st->n];
            st->n++;
        }
    }
    cJSON_Delete(root);
    if (s || st->n < 2)
        return s;
    /* Unique names and no overlapping byte ranges: sort pointers, compare neighbours. */
    const lp_st_tensor **p = lp_mallocarray(st->n, sizeof *p);
    if (!p)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", name);
    for (size_t i = 0; i < st->n; i++)
        p[i] = &st->t[i];
    qsort(p, st->n, sizeof *p, cmp_by_name);
    for (size_t i = 1; !s && i < st->n; i++)
        if (strcmp(p[i - 1]->name, p[i]->name) == 0)
            s = lp_err_set(err, LP_EFORMAT, "%s: tensor '%s' appears twice", name, p[i]->name);
    qsort(p, st->n, sizeof *p, cmp_by_begin);
    for (size_t i = 1; !s && i < st->n; i++)
        if (p[i - 1]->data + p[i - 1]->nbytes > p[i]->data)
            s = lp_err_set(err, LP_EFORMAT, "%s: tensors '%s' and '%s' overlap (bytes %zu..%zu)",
                           name, p[i - 1]->name, p[i]->name, (size_t)(p[i]->data - base),
                           (size_t)(p[i - 1]->data - base + p[i - 1]->nbytes));
    free(p);
    return s;
}

lp_status lp_safetensors_parse(const void *data, size_t len, const char *name, lp_safetensors **out,
                               lp_err *err)
{
    if (!out)
        return lp_err_set(err, LP_EINVAL, "lp_safetensors_parse: out is NULL");
    *out = NULL;
    if (!name)
        name = "safetensors";
    if (!data && len)
        return lp_err_set(err, LP_EINVAL, "%s: data is NULL", name);
    lp_safetensors *st = lp_calloc(1, sizeof *st);
    if (!st || !(st->bytes = malloc(len ? len : 1))) {
        free(st);
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", name);
    }
    if (len)
        memcpy(st->bytes, data, len);
    st->len = len;
    lp_status s = parse_owned(st, name, err);
    if (s) {
        lp_safetensors_free(st);
        return s;
    }
    *out = st;
    return LP_OK;
}

lp_status lp_safetensors_load(const char *path, lp_safetensors **out, lp_err *err)
{
    if (!out || !path)
        return lp_err_set(err, LP_EINVAL, "lp_safetensors_load: NULL argument");
    *out = NULL;
    lp_safetensors *st = lp_calloc(1, sizeof *st);
    if (!st)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
    lp_status s = lp_file_read(path, &st->bytes, &st->len, err);
    if (!s)
        s = parse_owned(st, path, err);
    if (s) {
        lp_safetensors_free(st);
        return s;
    }
    *out = st;
    return LP_OK;
}

size_t lp_safetensors_count(const lp_safetensors *st)
{
    return st ? st->n : 0;
}

const lp_st_tensor *lp_safetensors_at(const lp_safetensors *st, size_t i)
{
    return st && i < st->n ? &st->t[i] : NULL;
}

const lp_st_tensor *lp_safetensors_find(const lp_safetensors *st, const char *name)
{
    for (size_t i = 0; st && name && i < st->n; i++)
        if (strcmp(st->t[i].name, name) == 0)
            return &st->t[i];
    return NULL;
}

const char *lp_safetensors_metadata(const lp_safetensors *st, const char *key)
{
    for (size_t i = 0; st && key && i < st->n_meta; i++)
        if (strcmp(st->meta_k[i], key) == 0)
            return st->meta_v[i];
    return NULL;
}

float lp_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
    if (e == 0x1f) {
        bits = sign | 0x7f800000u | (m << 13); /* Inf or NaN (payload kept) */
    } else if (e) {
        bits = sign | ((e + 112) << 23) | (m << 13); /* rebias 15 -> 127 */
    } else {
        /* zero or subnormal: m * 2^-24 exactly */
        float f = ldexpf((float)m, -24);
        return sign ? -f : f;
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

float lp_bf16_to_f32(uint16_t h)
{
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

lp_status lp_safetensors_to_f32(const lp_st_tensor *t, float *out, lp_err *err)
{
    if (!t || (!out && t->numel))
        return lp_err_set(err, LP_EINVAL, "lp_safetensors_to_f32: NULL argument");
    const uint8_t *p = t->data;
    switch (t->dtype) {
    case LP_ST_DTYPE_F32:
        for (size_t i = 0; i < t->numel; i++) {
            uint32_t u = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                         (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
            memcpy(&out[i], &u, 4);
        }
        return LP_OK;
    case LP_ST_DTYPE_F16:
    case LP_ST_DTYPE_BF16:
        for (size_t i = 0; i < t->numel; i++) {
            uint16_t u = (uint16_t)(p[2 * i] | p[2 * i + 1] << 8);
            out[i] = t->dtype == LP_ST_DTYPE_F16 ? lp_f16_to_f32(u) : lp_bf16_to_f32(u);
        }
        return LP_OK;
    case LP_ST_DTYPE_F64:
        for (size_t i = 0; i < t->numel; i++) {
            uint64_t u = 0;
            for (int b = 7; b >= 0; b--)
                u = u << 8 | p[8 * i + (size_t)b];
            double d;
            memcpy(&d, &u, 8);
            out[i] = (float)d;
        }
        return LP_OK;
    default:
        return lp_err_set(err, LP_EUNSUPPORTED, "tensor '%s': dtype %s is not a float type",
                          t->name, lp_st_dtype_name(t->dtype));
    }
}
