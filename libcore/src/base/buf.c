/*
 * buf.c - growable byte buffer for serialization and its bounds-checked reader.
 * Encoding: little-endian integers, IEEE-754 floats by bit pattern, u32-length-prefixed
 * strings (0xFFFFFFFF = NULL). The reader never reads past its end: every getter checks.
 */
#include "lepton/base.h"

#include <stdlib.h>
#include <string.h>

#define LP_STR_NULL 0xFFFFFFFFu

void lp_buf_init(lp_buf *b) { memset(b, 0, sizeof *b); }

void lp_buf_free(lp_buf *b)
{
    if (!b)
        return;
    free(b->data);
    memset(b, 0, sizeof *b);
}

static bool reserve(lp_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (extra > SIZE_MAX - b->len - 1) {
        b->failed = true;
        return false;
    }
    size_t need = b->len + extra + 1; /* +1 keeps room for a terminator in lp_buf_take */
    if (need <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void lp_buf_put(lp_buf *b, const void *p, size_t n)
{
    if (!n || !reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void lp_buf_u8(lp_buf *b, uint8_t v) { lp_buf_put(b, &v, 1); }

void lp_buf_u32(lp_buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    lp_buf_put(b, x, 4);
}

void lp_buf_u64(lp_buf *b, uint64_t v)
{
    lp_buf_u32(b, (uint32_t)v);
    lp_buf_u32(b, (uint32_t)(v >> 32));
}

void lp_buf_f32(lp_buf *b, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    lp_buf_u32(b, u);
}

void lp_buf_f64(lp_buf *b, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    lp_buf_u64(b, u);
}

void lp_buf_str(lp_buf *b, const char *s)
{
    if (!s) {
        lp_buf_u32(b, LP_STR_NULL);
        return;
    }
    size_t n = strlen(s);
    if (n >= LP_STR_NULL) {
        b->failed = true;
        return;
    }
    lp_buf_u32(b, (uint32_t)n);
    lp_buf_put(b, s, n);
}

void lp_buf_printf(lp_buf *b, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n > 0 && reserve(b, (size_t)n)) {
        vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap2);
        b->len += (size_t)n;
    }
    va_end(ap2);
}

lp_status lp_buf_status(const lp_buf *b, lp_err *err)
{
    if (b->failed)
        return lp_err_set(err, LP_ENOMEM, "out of memory while serializing (%zu bytes written)",
                          b->len);
    return LP_OK;
}

uint8_t *lp_buf_take(lp_buf *b, size_t *len)
{
    if (b->failed) {
        lp_buf_free(b);
        if (len)
            *len = 0;
        return NULL;
    }
    if (!reserve(b, 0)) {
        lp_buf_free(b);
        return NULL;
    }
    b->data[b->len] = '\0';
    uint8_t *d = b->data;
    if (len)
        *len = b->len;
    memset(b, 0, sizeof *b);
    return d;
}

void lp_reader_init(lp_reader *r, const void *data, size_t len, const char *what)
{
    r->data = data;
    r->len = len;
    r->pos = 0;
    r->what = what ? what : "buffer";
}

lp_status lp_reader_get(lp_reader *r, void *out, size_t n, lp_err *err)
{
    if (r->pos > r->len || n > r->len - r->pos) {
        size_t at = r->pos;
        r->pos = r->len + 1; /* stays failed */
        return lp_err_set(err, LP_EFORMAT, "%s: truncated at byte %zu (needed %zu more bytes)",
                          r->what, at, n);
    }
    if (n)
        memcpy(out, r->data + r->pos, n);
    r->pos += n;
    return LP_OK;
}

lp_status lp_reader_u8(lp_reader *r, uint8_t *v, lp_err *err) { return lp_reader_get(r, v, 1, err); }

lp_status lp_reader_u32(lp_reader *r, uint32_t *v, lp_err *err)
{
    uint8_t x[4] = {0, 0, 0, 0};
    lp_status s = lp_reader_get(r, x, 4, err);
    if (s)
        return s;
    *v = (uint32_t)x[0] | (uint32_t)x[1] << 8 | (uint32_t)x[2] << 16 | (uint32_t)x[3] << 24;
    return LP_OK;
}

lp_status lp_reader_u64(lp_reader *r, uint64_t *v, lp_err *err)
{
    uint32_t lo, hi;
    lp_status s = lp_reader_u32(r, &lo, err);
    if (!s)
        s = lp_reader_u32(r, &hi, err);
    if (!s)
        *v = (uint64_t)hi << 32 | lo;
    return s;
}

lp_status lp_reader_f32(lp_reader *r, float *v, lp_err *err)
{
    uint32_t u;
    lp_status s = lp_reader_u32(r, &u, err);
    if (!s)
        memcpy(v, &u, 4);
    return s;
}

lp_status lp_reader_f64(lp_reader *r, double *v, lp_err *err)
{
    uint64_t u;
    lp_status s = lp_reader_u64(r, &u, err);
    if (!s)
        memcpy(v, &u, 8);
    return s;
}

lp_status lp_reader_str(lp_reader *r, char **s, size_t max_len, lp_err *err)
{
    *s = NULL;
    uint32_t n;
    lp_status st = lp_reader_u32(r, &n, err);
    if (st)
        return st;
    if (n == LP_STR_NULL)
        return LP_OK;
    if (n > max_len)
        return lp_err_set(err, LP_EFORMAT, "%s: string of %u bytes at byte %zu exceeds limit %zu",
                          r->what, n, r->pos - 4, max_len);
    if (n > r->len - r->pos)
        return lp_reader_get(r, NULL, n, err);
    char *d = lp_strndup((const char *)r->data + r->pos, n);
    if (!d)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
    r->pos += n;
    *s = d;
    return LP_OK;
}
