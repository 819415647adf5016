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
#define MAX_IGNORED 100 /* ignored member names listed in a reply */

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
    char *copy;    /* rows_scan: the body, its strings terminated in place */
    size_t cap_copy;
    const char *ign[MAX_IGNORED]; /* members that are not inputs, each once */
    size_t n_ign;
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
    free(rs->copy);
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
    if (rs->cap_copy > ROW_SCRATCH_KEEP_CELLS * 8) {
        free(rs->copy);
        rs->copy = NULL;
        rs->cap_copy = 0;
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
            if (lp_parse_number_text(v->valuestring, strlen(v->valuestring), &x) && isfinite(x)) {
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

/* Note key as ignored (once, at most MAX_IGNORED names), as rows_to_frame does. */
static void note_ignored(row_scratch *rs, const char *key)
{
    for (size_t i = 0; i < rs->n_ign; i++)
        if (!strcmp(rs->ign[i], key))
            return;
    if (rs->n_ign < MAX_IGNORED)
        rs->ign[rs->n_ign++] = key;
}

size_t row_scratch_ignored(const row_scratch *rs, const char *const **names)
{
    *names = rs->ign;
    return rs->n_ign;
}

/* Start row i: every cell missing. */
static void row_begin(row_scratch *rs, size_t i, size_t k)
{
    for (size_t j = 0; j < k; j++) {
        rs->num[i * k + j] = NAN;
        rs->str[i * k + j] = NULL;
    }
}

/* Member key = v of row i into its cell; *next is the input after the last one matched
 * (members usually come in the model's input order: the next input is tried first). */
static lp_status put_member(const lp_model *m, row_scratch *rs, size_t i, const char *key,
                            const cJSON *v, size_t *next, lp_err *err)
{
    size_t k = lp_model_n_inputs(m), j = *next;
    if (j >= k || strcmp(lp_model_input_name(m, j), key) != 0) {
        for (j = 0; j < k && strcmp(lp_model_input_name(m, j), key) != 0; j++)
            ;
    }
    if (j == k) {
        /* not an input (an id, the label, a column dropped at training) */
        note_ignored(rs, key);
        return LP_OK;
    }
    *next = j + 1;
    /* a repeated key: the last non-null value wins, as in the frame path */
    lp_err cell;
    lp_err_clear(&cell);
    if (put_cell(lp_model_input_kind(m, j), v, &rs->num[i * k + j], &rs->str[i * k + j],
                 rs->text + (i * k + j) * NUM_TEXT, &cell))
        return lp_err_set(err, LP_EINVAL, "rows[%zu].%.60s: %s", i, key, lp_err_text(&cell));
    return LP_OK;
}

/* rows_parse and rows_scan: the views of rows 0..n). */
static void rows_finish(row_scratch *rs, size_t n, size_t k, const lp_row_view **views,
                        size_t *n_out)
{
    for (size_t i = 0; i < n; i++)
        rs->views[i] = (lp_row_view){rs->num + i * k, rs->str + i * k};
    *views = rs->views;
    *n_out = n;
}

lp_status rows_parse(const lp_model *m, const cJSON *rows, row_scratch *rs,
                     const lp_row_view **views, size_t *n_out, lp_err *err)
{
    *views = NULL;
    *n_out = 0;
    rs->n_ign = 0;
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
        row_begin(rs, i, k);
        size_t next = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, row)
        {
            if ((st = put_member(m, rs, i, v->string, v, &next, err)))
                return st;
        }
        i++;
    }
    rows_finish(rs, i, k, views, n_out);
    return LP_OK;
}

/* ---- rows_scan: the body's bytes straight into the cells ----------------------------------*/

typedef struct {
    char *p, *end;
} scan;

static void scan_ws(scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool scan_char(scan *s, char c)
{
    scan_ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

/* A string without escapes or control bytes, valid UTF-8, terminated in place (its closing
 * quote becomes the NUL); NULL otherwise. */
static char *scan_string(scan *s)
{
    if (!scan_char(s, '"'))
        return NULL;
    char *b = s->p;
    bool high = false;
    for (; s->p < s->end && *s->p != '"'; s->p++) {
        unsigned char c = (unsigned char)*s->p;
        if (c == '\\' || c < 0x20)
            return NULL;
        high |= c >= 0x80;
    }
    if (s->p == s->end || (high && !lp_utf8_valid(b, (size_t)(s->p - b), NULL)))
        return NULL;
    *s->p++ = '\0';
    return b;
}

static bool scan_word(scan *s, const char *w, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return false;
    s->p += n;
    return true;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A JSON number (RFC 8259 grammar) into *x, the double strtod gives (cJSON's value): exactly
 * m * 10^e or m / 10^-e when the significand m fits 53 bits and |e| <= 22 (Clinger's fast
 * path: both operands exact, one correctly rounded operation), else strtod itself. Non-finite
 * values and over-long spellings are refused (the checked path answers them). */
static bool scan_number(scan *s, double *x)
{
    static const double p10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    char *p = s->p, *b = p;
    bool neg = false, exact = true;
    uint64_t m = 0;
    int nd = 0, e10 = 0;
    if (p < s->end && *p == '-') {
        neg = true;
        p++;
    }
    if (p < s->end && *p == '0') {
        p++;
    } else if (p < s->end && *p >= '1' && *p <= '9') {
        for (; p < s->end && is_digit(*p); p++) {
            if (nd < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                nd++;
            } else {
                exact = false;
            }
        }
    } else {
        return false;
    }
    if (p < s->end && *p == '.') {
        p++;
        if (!(p < s->end && is_digit(*p)))
            return false;
        for (; p < s->end && is_digit(*p); p++) {
            if (m == 0 && *p == '0') {
                e10--;
            } else if (nd < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                nd++;
                e10--;
            } else {
                exact = false;
            }
        }
    }
    if (p < s->end && (*p == 'e' || *p == 'E')) {
        p++;
        int sign = 1, ev = 0;
        if (p < s->end && (*p == '+' || *p == '-'))
            sign = *p++ == '-' ? -1 : 1;
        if (!(p < s->end && is_digit(*p)))
            return false;
        for (; p < s->end && is_digit(*p); p++)
            if (ev < 100000)
                ev = ev * 10 + (*p - '0');
        e10 += sign * ev;
    }
    if (p - b > 63) /* cJSON reads at most 63 bytes of a number */
        return false;
    s->p = p;
    if (exact && m <= (UINT64_C(1) << 53) && e10 >= -22 && e10 <= 22) {
        double v = (double)m;
        v = e10 < 0 ? v / p10[-e10] : v * p10[e10];
        *x = neg ? -v : v;
        return true;
    }
    char *e;
    double v = strtod(b, &e);
    if (e != p || !isfinite(v))
        return false;
    *x = v;
    return true;
}

/* One member value (no objects or arrays) as a cJSON item on the stack, for put_cell. */
static bool scan_value(scan *s, cJSON *v)
{
    scan_ws(s);
    if (s->p == s->end)
        return false;
    memset(v, 0, sizeof *v);
    switch (*s->p) {
    case '"':
        v->type = cJSON_String;
        return (v->valuestring = scan_string(s)) != NULL;
    case 't':
        v->type = cJSON_True;
        return scan_word(s, "true", 4);
    case 'f':
        v->type = cJSON_False;
        return scan_word(s, "false", 5);
    case 'n':
        v->type = cJSON_NULL;
        return scan_word(s, "null", 4);
    default:
        v->type = cJSON_Number;
        return scan_number(s, &v->valuedouble);
    }
}

bool rows_scan(const lp_model *m, const char *body, size_t len, size_t max_rows, row_scratch *rs,
               const lp_row_view **views, size_t *n_out)
{
    size_t k = lp_model_n_inputs(m);
    lp_err err;
    rs->n_ign = 0;
    if (len + 1 > rs->cap_copy) {
        char *c = realloc(rs->copy, len + 1);
        if (!c)
            return false;
        rs->copy = c;
        rs->cap_copy = len + 1;
    }
    memcpy(rs->copy, body, len);
    rs->copy[len] = '\0';
    /* at most one row per '{' after the first: cells for them all, so none moves */
    size_t ub = 0;
    for (const char *q = memchr(body, '{', len); q; q = memchr(q + 1, '{', len - (size_t)(q + 1 - body)))
        ub++;
    if (ub < 2)
        return false;
    if (reserve(rs, ub - 1 < max_rows ? ub - 1 : max_rows, k, &err))
        return false;
    scan s = {rs->copy, rs->copy + len};
    char *key;
    if (!scan_char(&s, '{') || !(key = scan_string(&s)) || strcmp(key, "rows") != 0 ||
        !scan_char(&s, ':') || !scan_char(&s, '['))
        return false;
    size_t n = 0;
    do {
        if (n == max_rows || n == ub - 1 || !scan_char(&s, '{'))
            return false;
        row_begin(rs, n, k);
        size_t next = 0;
        if (!scan_char(&s, '}')) {
            do {
                cJSON v;
                if (!(key = scan_string(&s)) || !scan_char(&s, ':') || !scan_value(&s, &v) ||
                    put_member(m, rs, n, key, &v, &next, &err))
                    return false;
            } while (scan_char(&s, ','));
            if (!scan_char(&s, '}'))
                return false;
        }
        n++;
    } while (scan_char(&s, ','));
    if (!scan_char(&s, ']') || !scan_char(&s, '}'))
        return false;
    scan_ws(&s);
    if (s.p != s.end)
        return false;
    rows_finish(rs, n, k, views, n_out);
    return true;
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

