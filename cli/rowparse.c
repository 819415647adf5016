/*
 * rowparse.c - JSON rows into predictor row views in per-thread scratch, and the reply's JSON
 * text (rowparse.h). The conversions mirror set_cell in modelserver.c value for value and
 * message for message; tests/cli/test_serve.sh and tests/service/test_serve_*.c run both the
 * good and the bad inputs through the server.
 */
#include "rowparse.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NUM_TEXT 32 /* "%.17g" of a double fits in 25 bytes */
/* Cells (rows x inputs) a thread keeps between requests; a bigger request's arrays are freed
 * after it (row_scratch_trim), so a 10,000-row request does not pin megabytes per thread. */
#define ROW_SCRATCH_KEEP_CELLS 65536

struct row_scratch {
    lp_predict_scratch *ps;
    size_t cap_cells; /* rows * inputs the arrays below hold */
    double *num;      /* (cap_cells,) */
    const char **str; /* (cap_cells,) */
    char *text;       /* (cap_cells, NUM_TEXT) numbers given for string inputs, as text */
    size_t cap_rows;
    lp_row_view *views; /* (cap_rows,) */
    size_t cap_out;
    double *out;  /* (cap_out,) */
    int32_t *cls; /* (cap_rows,) */
    lp_buf reply;
    lp_buf hashin; /* the canonical inputs being hashed */
};

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
    row_scratch *rs = p;
    if (!rs)
        return;
    lp_predict_scratch_free(rs->ps);
    free(rs->num);
    free(rs->str);
    free(rs->text);
    free(rs->views);
    free(rs->out);
    free(rs->cls);
    lp_buf_free(&rs->reply);
    lp_buf_free(&rs->hashin);
    free(rs);
}

static void scratch_key_init(void)
{
    pthread_key_create(&scratch_key, scratch_free);
}

row_scratch *row_scratch_get(void)
{
    pthread_once(&scratch_once, scratch_key_init);
    row_scratch *rs = pthread_getspecific(scratch_key);
    if (rs)
        return rs;
    rs = calloc(1, sizeof *rs);
    if (!rs)
        return NULL;
    lp_buf_init(&rs->reply);
    lp_buf_init(&rs->hashin);
    if (!(rs->ps = lp_predict_scratch_new()) || pthread_setspecific(scratch_key, rs) != 0) {
        scratch_free(rs);
        return NULL;
    }
    return rs;
}

void row_scratch_trim(row_scratch *rs)
{
    if (rs->cap_cells > ROW_SCRATCH_KEEP_CELLS) {
        free(rs->num);
        free(rs->str);
        free(rs->text);
        rs->num = NULL;
        rs->str = NULL;
        rs->text = NULL;
        rs->cap_cells = 0;
    }
    if (rs->cap_rows > ROW_SCRATCH_KEEP_CELLS / 16 || rs->cap_out > ROW_SCRATCH_KEEP_CELLS) {
        free(rs->views);
        free(rs->out);
        free(rs->cls);
        rs->views = NULL;
        rs->out = NULL;
        rs->cls = NULL;
        rs->cap_rows = rs->cap_out = 0;
    }
    if (rs->reply.cap > ROW_SCRATCH_KEEP_CELLS * 8) {
        lp_buf_free(&rs->reply);
        lp_buf_init(&rs->reply);
    }
}

lp_predict_scratch *row_scratch_predict(row_scratch *rs)
{
    return rs->ps;
}

lp_buf *row_scratch_reply(row_scratch *rs)
{
    rs->reply.len = 0;
    rs->reply.failed = false;
    return &rs->reply;
}

static lp_status reserve(row_scratch *rs, size_t rows, size_t k, lp_err *err)
{
    size_t cells = rows * (k ? k : 1);
    if (cells > rs->cap_cells) {
        double *num = realloc(rs->num, cells * sizeof *num);
        if (num)
            rs->num = num;
        const char **str = realloc(rs->str, cells * sizeof *str);
        if (str)
            rs->str = str;
        char *text = realloc(rs->text, cells * NUM_TEXT);
        if (text)
            rs->text = text;
        if (!num || !str || !text)
            return lp_err_set(err, LP_ENOMEM, "out of memory");
        rs->cap_cells = cells;
    }
    if (rows > rs->cap_rows) {
        lp_row_view *v = realloc(rs->views, rows * sizeof *v);
        if (!v)
            return lp_err_set(err, LP_ENOMEM, "out of memory");
        rs->views = v;
        int32_t *cls = realloc(rs->cls, rows * sizeof *cls);
        if (!cls)
            return lp_err_set(err, LP_ENOMEM, "out of memory");
        rs->cls = cls;
        rs->cap_rows = rows;
    }
    return LP_OK;
}

lp_status row_scratch_outputs(row_scratch *rs, size_t n, size_t k, double **out, int32_t **cls,
                              lp_err *err)
{
    lp_status st = reserve(rs, n, 1, err);
    if (st)
        return st;
    if (n * k > rs->cap_out) {
        double *o = realloc(rs->out, n * k * sizeof *o);
        if (!o)
            return lp_err_set(err, LP_ENOMEM, "out of memory");
        rs->out = o;
        rs->cap_out = n * k;
    }
    *out = rs->out;
    *cls = rs->cls;
    return LP_OK;
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

/* One value into cell (*num for numeric kinds, *str for strings; text is the cell's NUM_TEXT
 * bytes), as set_cell in modelserver.c stores it in a frame column. NULL/null leaves the cell
 * missing. */
static lp_status put_cell(lp_col_kind kind, const cJSON *v, double *num, const char **str,
                          char *text, lp_err *err)
{
    if (!v || cJSON_IsNull(v))
        return LP_OK;
    switch (kind) {
    case LP_COL_KIND_INTEGER:
    case LP_COL_KIND_FLOAT:
        if (cJSON_IsNumber(v)) {
            *num = v->valuedouble;
            return LP_OK;
        }
        if (cJSON_IsBool(v)) {
            *num = cJSON_IsTrue(v) ? 1 : 0;
            return LP_OK;
        }
        if (cJSON_IsString(v)) {
            double x;
            if (lp_parse_double(v->valuestring, strlen(v->valuestring), &x) && isfinite(x)) {
                *num = x;
                return LP_OK;
            }
            return lp_err_set(err, LP_EINVAL, "expected a number, got '%.40s'", v->valuestring);
        }
        return lp_err_set(err, LP_EINVAL, "expected a number, got %s", json_type(v));
    case LP_COL_KIND_BOOL:
        if (cJSON_IsBool(v)) {
            *num = cJSON_IsTrue(v) ? 1 : 0;
            return LP_OK;
        }
        if (cJSON_IsNumber(v) && (v->valuedouble == 0 || v->valuedouble == 1)) {
            *num = v->valuedouble;
            return LP_OK;
        }
        if (cJSON_IsString(v)) {
            bool b;
            if (lp_parse_bool(v->valuestring, strlen(v->valuestring), true, &b)) {
                *num = b;
                return LP_OK;
            }
        }
        return lp_err_set(err, LP_EINVAL, "expected true or false, got %s", json_type(v));
    case LP_COL_KIND_DATETIME:
        if (cJSON_IsNumber(v)) {
            *num = v->valuedouble;
            return LP_OK;
        }
        if (cJSON_IsString(v)) {
            double t;
            if (lp_parse_datetime(v->valuestring, strlen(v->valuestring), &t)) {
                *num = t;
                return LP_OK;
            }
            return lp_err_set(err, LP_EINVAL, "expected an ISO-8601 date-time, got '%.40s'",
                              v->valuestring);
        }
        return lp_err_set(err, LP_EINVAL, "expected a date-time, got %s", json_type(v));
    case LP_COL_KIND_CATEGORICAL:
    case LP_COL_KIND_TEXT:
        if (cJSON_IsString(v)) {
            *str = v->valuestring;
            return LP_OK;
        }
        if (cJSON_IsNumber(v)) {
            snprintf(text, NUM_TEXT, "%.17g", v->valuedouble);
            *str = text;
            return LP_OK;
        }
        if (cJSON_IsBool(v)) {
            *str = cJSON_IsTrue(v) ? "true" : "false";
            return LP_OK;
        }
        return lp_err_set(err, LP_EINVAL, "expected a string, got %s", json_type(v));
    }
    return LP_OK;
}

/* Note key as ignored (once, at most 100 names), as rows_to_frame does. */
static void note_ignored(cJSON **ignored, const char *key)
{
    if (!*ignored && !(*ignored = cJSON_CreateArray()))
        return;
    const cJSON *e;
    cJSON_ArrayForEach(e, *ignored) if (!strcmp(e->valuestring, key)) return;
    if (cJSON_GetArraySize(*ignored) < 100)
        cJSON_AddItemToArray(*ignored, cJSON_CreateString(key));
}

lp_status rows_parse(const lp_model *m, const cJSON *rows, row_scratch *rs,
                     const lp_row_view **views, size_t *n_out, cJSON **ignored, lp_err *err)
{
    *views = NULL;
    *n_out = 0;
    size_t n = (size_t)cJSON_GetArraySize(rows), k = lp_model_n_inputs(m);
    lp_status st = reserve(rs, n ? n : 1, k, err);
    if (st)
        return st;
    size_t i = 0;
    const cJSON *row;
    cJSON_ArrayForEach(row, rows)
    {
        if (!cJSON_IsObject(row))
            return lp_err_set(err, LP_EINVAL, "rows[%zu]: expected an object, got %s", i,
                              json_type(row));
        double *num = rs->num + i * k;
        const char **str = rs->str + i * k;
        char *text = rs->text + i * k * NUM_TEXT;
        for (size_t j = 0; j < k; j++) {
            num[j] = NAN;
            str[j] = NULL;
        }
        /* members usually come in the model's input order: try the next input first */
        size_t next = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, row)
        {
            size_t j = next;
            if (j >= k || strcmp(lp_model_input_name(m, j), v->string) != 0) {
                for (j = 0; j < k && strcmp(lp_model_input_name(m, j), v->string) != 0; j++)
                    ;
            }
            if (j == k) {
                /* not an input (an id, the label, a column dropped at training) */
                note_ignored(ignored, v->string);
                continue;
            }
            next = j + 1;
            /* a repeated key: the last non-null value wins, as in the frame path */
            lp_err cell;
            lp_err_clear(&cell);
            if (put_cell(lp_model_input_kind(m, j), v, &num[j], &str[j], text + j * NUM_TEXT,
                         &cell))
                return lp_err_set(err, LP_EINVAL, "rows[%zu].%.60s: %s", i, v->string,
                                  lp_err_text(&cell));
        }
        rs->views[i] = (lp_row_view){num, str};
        i++;
    }
    *views = rs->views;
    *n_out = i;
    return LP_OK;
}

/* ---- inputs hash --------------------------------------------------------------------------*/

static inline uint64_t rotl64(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static inline uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

/* MurmurHash3_x64_128 (Austin Appleby, public domain), little-endian reads. */
static void murmur3_128(const uint8_t *data, size_t len, uint64_t out[2])
{
    const uint64_t c1 = 0x87c37b91114253d5ULL, c2 = 0x4cf5ad432745937fULL;
    uint64_t h1 = 0, h2 = 0, k1, k2;
    size_t nb = len / 16;
    for (size_t i = 0; i < nb; i++) {
        memcpy(&k1, data + 16 * i, 8);
        memcpy(&k2, data + 16 * i + 8, 8);
        k1 *= c1;
        k1 = rotl64(k1, 31);
        k1 *= c2;
        h1 ^= k1;
        h1 = rotl64(h1, 27);
        h1 += h2;
        h1 = h1 * 5 + 0x52dce729;
        k2 *= c2;
        k2 = rotl64(k2, 33);
        k2 *= c1;
        h2 ^= k2;
        h2 = rotl64(h2, 31);
        h2 += h1;
        h2 = h2 * 5 + 0x38495ab5;
    }
    /* the tail, zero-padded: the reference's byte switch assembles the same two words */
    uint8_t t[16] = {0};
    size_t rest = len & 15;
    if (rest)
        memcpy(t, data + 16 * nb, rest);
    memcpy(&k1, t, 8);
    memcpy(&k2, t + 8, 8);
    if (rest > 8) {
        k2 *= c2;
        k2 = rotl64(k2, 33);
        k2 *= c1;
        h2 ^= k2;
    }
    if (rest > 0) {
        k1 *= c1;
        k1 = rotl64(k1, 31);
        k1 *= c2;
        h1 ^= k1;
    }
    h1 ^= (uint64_t)len;
    h2 ^= (uint64_t)len;
    h1 += h2;
    h2 += h1;
    h1 = fmix64(h1);
    h2 = fmix64(h2);
    h1 += h2;
    h2 += h1;
    out[0] = h1;
    out[1] = h2;
}

void row_inputs_hash(row_scratch *rs, const lp_model *m, const lp_row_view *v, char hex[33])
{
    lp_buf *b = &rs->hashin;
    b->len = 0;
    b->failed = false;
    size_t k = lp_model_n_inputs(m);
    for (size_t j = 0; j < k; j++) {
        if (lp_col_kind_type(lp_model_input_kind(m, j)) == LP_COL_TYPE_NUMERIC) {
            uint8_t t[9];
            double x = v->num[j];
            t[0] = isnan(x) ? 'm' : 'n';
            memcpy(t + 1, &x, 8);
            lp_buf_put(b, t, isnan(x) ? 1 : 9);
        } else if (v->str && v->str[j]) {
            lp_buf_put(b, "s", 1);
            lp_buf_put(b, v->str[j], strlen(v->str[j]) + 1);
        } else {
            lp_buf_put(b, "m", 1);
        }
    }
    uint64_t h[2] = {0, 0};
    if (!b->failed)
        murmur3_128(b->data, b->len, h);
    static const char hexd[] = "0123456789abcdef";
    for (int w = 0; w < 2; w++)
        for (int q = 0; q < 16; q++)
            hex[16 * w + q] = hexd[(h[w] >> (60 - 4 * q)) & 0xf];
    hex[32] = '\0';
}

/* ---- reply text ---------------------------------------------------------------------------*/

void json_put_str(lp_buf *b, const char *s)
{
    lp_json_write_str(b, s ? s : "");
}

void json_put_num(lp_buf *b, double d)
{
    char t[32];
    int n;
    if (isnan(d) || isinf(d)) {
        lp_buf_put(b, "null", 4);
        return;
    }
    /* cJSON 1.7's print_number: valueint saturates at INT_MIN / INT_MAX. strfromd, not
     * snprintf: with libquadmath loaded (OpenBLAS brings it) glibc sends every printf-family
     * call through its positional-argument path (see lp_json_write_num). */
    int vi = d >= INT_MAX ? INT_MAX : d <= (double)INT_MIN ? INT_MIN : (int)d;
    if (d == (double)vi) {
        n = strfromd(t, sizeof t, "%.0f", (double)vi); /* (double)vi: -0.0 prints as "0" */
    } else {
        n = strfromd(t, sizeof t, "%.15g", d);
        double back = strtod(t, NULL);
        double mx = fabs(back) > fabs(d) ? fabs(back) : fabs(d);
        if (!(fabs(back - d) <= mx * DBL_EPSILON))
            n = strfromd(t, sizeof t, "%.17g", d);
    }
    lp_buf_put(b, t, (size_t)n);
}
