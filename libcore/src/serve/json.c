/*
 * json.c - checked parsing of JSON request bodies and declarative field specs.
 *
 * A body is scanned once before cJSON sees it: UTF-8 well-formedness (RFC 3629), no raw control
 * bytes, and nesting depth, so that hostile input (10,000 nested arrays, invalid bytes) is
 * rejected with a position without relying on cJSON's compile-time CJSON_NESTING_LIMIT and
 * without deep recursion. After cJSON parses, numbers that overflowed to +-Inf are rejected.
 * NaN and Infinity tokens are not JSON and cJSON already refuses them.
 * Field specs check one object level; handlers call lp_fields_check again for nested objects.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lepton/serve.h"

bool lp_utf8_valid(const char *data, size_t len, size_t *bad_at)
{
    const unsigned char *p = (const unsigned char *)data;
    size_t i = 0;
    while (i < len) {
        unsigned c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        unsigned lo = 0x80, hi = 0xBF; /* allowed range of the first continuation byte */
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1;
        } else if (c == 0xE0) {
            need = 2, lo = 0xA0;
        } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
            need = 2;
        } else if (c == 0xED) {
            need = 2, hi = 0x9F; /* no UTF-16 surrogates */
        } else if (c == 0xF0) {
            need = 3, lo = 0x90;
        } else if (c >= 0xF1 && c <= 0xF3) {
            need = 3;
        } else if (c == 0xF4) {
            need = 3, hi = 0x8F; /* nothing above U+10FFFF */
        } else {
            if (bad_at) *bad_at = i;
            return false;
        }
        if (len - i <= need) {
            if (bad_at) *bad_at = i;
            return false;
        }
        if (p[i + 1] < lo || p[i + 1] > hi) {
            if (bad_at) *bad_at = i;
            return false;
        }
        for (size_t k = 2; k <= need; k++) {
            if (p[i + k] < 0x80 || p[i + k] > 0xBF) {
                if (bad_at) *bad_at = i;
                return false;
            }
        }
        i += need + 1;
    }
    return true;
}

size_t lp_utf8_scrub(char *s)
{
    size_t n = strlen(s), fixed = 0, i = 0;
    /* each invalid byte is replaced, then the check resumes after it */
    while (i < n) {
        size_t bad;
        if (lp_utf8_valid(s + i, n - i, &bad))
            break;
        s[i + bad] = '?';
        fixed++;
        i += bad + 1;
    }
    return fixed;
}

/* line and column (1-based, columns in bytes) of offset pos */
static void line_col(const char *data, size_t pos, size_t *line, size_t *col)
{
    size_t l = 1, c = 1;
    for (size_t i = 0; i < pos; i++) {
        if (data[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Raw control bytes, number grammar and nesting depth, outside and inside strings. */
static lp_status prescan(const char *data, size_t len, unsigned max_depth, const char *what,
                         lp_err *err)
{
    unsigned depth = 0;
    bool in_str = false, esc = false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c < 0x20 && !(!in_str && (c == '\t' || c == '\n' || c == '\r'))) {
            size_t l, col;
            line_col(data, i, &l, &col);
            return lp_err_set(err, LP_EPARSE,
                              "%s: invalid JSON at byte %zu (line %zu, column %zu): raw control "
                              "byte 0x%02x",
                              what, i, l, col, c);
        }
        if (in_str) {
            if (esc) {
                esc = false;
                if (c == 'u' && len - i > 4 && !memcmp(data + i + 1, "0000", 4)) {
                    /* cJSON would end the string there: "a\u0000b" would read as "a" */
                    size_t l, col;
                    line_col(data, i - 1, &l, &col);
                    return lp_err_set(err, LP_EPARSE,
                                      "%s: invalid JSON at byte %zu (line %zu, column %zu): "
                                      "\\u0000 (NUL) in a string",
                                      what, i - 1, l, col);
                }
            } else if (c == '\\') {
                esc = true;
            } else if (c == '"') {
                in_str = false;
            }
            continue;
        }
        if (c == '"') {
            in_str = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                return lp_err_set(err, LP_EPARSE, "%s: nesting deeper than %u at byte %zu", what,
                                  max_depth, i);
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            /* RFC 8259 number grammar, which cJSON does not enforce (it takes 01, 1., .5):
             * -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
            size_t j = i + (c == '-');
            bool ok = j < len && is_digit(data[j]);
            if (ok && data[j] == '0') {
                j++;
            } else {
                while (j < len && is_digit(data[j])) j++;
            }
            if (ok && j < len && data[j] == '.') {
                size_t k = ++j;
                while (j < len && is_digit(data[j])) j++;
                ok = j > k;
            }
            if (ok && j < len && (data[j] == 'e' || data[j] == 'E')) {
                j++;
                if (j < len && (data[j] == '+' || data[j] == '-')) j++;
                size_t k = j;
                while (j < len && is_digit(data[j])) j++;
                ok = j > k;
            }
            if (ok && j < len && (is_digit(data[j]) || strchr(".eE+-", data[j]))) ok = false;
            if (!ok) {
                size_t l, col;
                line_col(data, i, &l, &col);
                return lp_err_set(err, LP_EPARSE,
                                  "%s: invalid JSON at byte %zu (line %zu, column %zu): malformed "
                                  "number",
                                  what, i, l, col);
            }
            i = j - 1;
        }
    }
    return LP_OK;
}

/* Depth is bounded by prescan, so recursion is bounded too. */
static const cJSON *first_nonfinite(const cJSON *j)
{
    for (; j; j = j->next) {
        if (cJSON_IsNumber(j) && !isfinite(j->valuedouble)) return j;
        if (j->child) {
            const cJSON *bad = first_nonfinite(j->child);
            if (bad) return bad;
        }
    }
    return NULL;
}

lp_status lp_json_parse_body(const char *data, size_t len, unsigned max_depth, const char *what,
                             cJSON **out, lp_err *err)
{
    *out = NULL;
    if (!what) what = "body";
    size_t i = 0;
    while (data && i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' ||
                               data[i] == '\r')) {
        i++;
    }
    if (!data || i == len) {
        return lp_err_set(err, LP_EINVAL, "%s: expected a JSON value, got an empty body", what);
    }
    size_t bad;
    if (!lp_utf8_valid(data, len, &bad)) {
        return lp_err_set(err, LP_EPARSE, "%s: invalid UTF-8 at byte %zu", what, bad);
    }
    lp_status st = prescan(data, len, max_depth, what, err);
    if (st != LP_OK) return st;

    /* cJSON needs a terminator to check that nothing trails the value, and data[len] may not
     * be ours to read: parse a terminated copy. */
    char *copy = malloc(len + 1);
    if (!copy) return lp_err_set(err, LP_ENOMEM, "%s: out of memory copying %zu bytes", what, len);
    memcpy(copy, data, len);
    copy[len] = '\0';
    const char *buf = copy;

    const char *end = NULL;
    cJSON *j = cJSON_ParseWithLengthOpts(buf, len + 1, &end, 1);
    if (!j) {
        size_t pos = end && end >= buf && end <= buf + len ? (size_t)(end - buf) : len;
        size_t l, col;
        line_col(buf, pos, &l, &col);
        free(copy);
        if (pos >= len) {
            return lp_err_set(err, LP_EPARSE,
                              "%s: invalid JSON at byte %zu (line %zu, column %zu): unexpected "
                              "end of input",
                              what, pos, l, col);
        }
        return lp_err_set(err, LP_EPARSE, "%s: invalid JSON at byte %zu (line %zu, column %zu)",
                          what, pos, l, col);
    }
    free(copy);
    const cJSON *nf = first_nonfinite(j);
    if (nf) {
        const char *name = nf->string;
        lp_err_set(err, LP_EPARSE, "%s: number%s%s%s is out of range (overflows a double)", what,
                   name ? " '" : "", name ? name : "", name ? "'" : "");
        cJSON_Delete(j);
        return LP_EPARSE;
    }
    *out = j;
    return LP_OK;
}

const char *lp_field_type_name(lp_field_type t)
{
    switch (t) {
    case LP_FIELD_TYPE_STRING: return "string";
    case LP_FIELD_TYPE_NUMBER: return "number";
    case LP_FIELD_TYPE_INTEGER: return "integer";
    case LP_FIELD_TYPE_BOOL: return "bool";
    case LP_FIELD_TYPE_OBJECT: return "object";
    case LP_FIELD_TYPE_ARRAY: return "array";
    }
    return "unknown";
}

static const char *json_kind(const cJSON *j)
{
    if (cJSON_IsString(j)) return "a string";
    if (cJSON_IsNumber(j)) return "a number";
    if (cJSON_IsBool(j)) return "a bool";
    if (cJSON_IsObject(j)) return "an object";
    if (cJSON_IsArray(j)) return "an array";
    if (cJSON_IsNull(j)) return "null";
    return "an invalid value";
}

static const char *type_article(lp_field_type t)
{
    return t == LP_FIELD_TYPE_INTEGER || t == LP_FIELD_TYPE_OBJECT || t == LP_FIELD_TYPE_ARRAY
               ? "an"
               : "a";
}

static lp_status check_one(const cJSON *v, const lp_field_spec *f, lp_err *err)
{
    bool ok;
    switch (f->type) {
    case LP_FIELD_TYPE_STRING: ok = cJSON_IsString(v); break;
    case LP_FIELD_TYPE_NUMBER: ok = cJSON_IsNumber(v); break;
    case LP_FIELD_TYPE_INTEGER: ok = cJSON_IsNumber(v); break;
    case LP_FIELD_TYPE_BOOL: ok = cJSON_IsBool(v); break;
    case LP_FIELD_TYPE_OBJECT: ok = cJSON_IsObject(v); break;
    case LP_FIELD_TYPE_ARRAY: ok = cJSON_IsArray(v); break;
    default: ok = false;
    }
    if (!ok) {
        return lp_err_set(err, LP_EINVAL, "field '%s': expected %s %s, got %s", f->name,
                          type_article(f->type), lp_field_type_name(f->type), json_kind(v));
    }
    if (f->type == LP_FIELD_TYPE_NUMBER || f->type == LP_FIELD_TYPE_INTEGER) {
        double x = v->valuedouble;
        if (!isfinite(x)) {
            return lp_err_set(err, LP_EINVAL, "field '%s': number out of range", f->name);
        }
        if (f->type == LP_FIELD_TYPE_INTEGER &&
            (x != floor(x) || fabs(x) > 9007199254740992.0)) {
            return lp_err_set(err, LP_EINVAL,
                              "field '%s': expected an integer, got %.17g", f->name, x);
        }
        if (f->ranged && x < f->min) {
            return lp_err_set(err, LP_EINVAL, "field '%s': %.17g is below the minimum %.17g",
                              f->name, x, f->min);
        }
        if (f->ranged && x > f->max) {
            return lp_err_set(err, LP_EINVAL, "field '%s': %.17g is above the maximum %.17g",
                              f->name, x, f->max);
        }
    }
    if (f->max_len > 0) {
        size_t n = 0;
        const char *unit = "items";
        if (f->type == LP_FIELD_TYPE_STRING) {
            n = strlen(v->valuestring);
            unit = "bytes";
        } else if (f->type == LP_FIELD_TYPE_ARRAY || f->type == LP_FIELD_TYPE_OBJECT) {
            n = (size_t)cJSON_GetArraySize(v);
            unit = f->type == LP_FIELD_TYPE_ARRAY ? "items" : "members";
        }
        if (n > f->max_len) {
            return lp_err_set(err, LP_EINVAL, "field '%s': %zu %s, at most %zu allowed", f->name,
                              n, unit, f->max_len);
        }
    }
    return LP_OK;
}

lp_status lp_fields_check(const cJSON *obj, const lp_field_spec *specs, bool allow_unknown,
                          lp_err *err)
{
    if (!cJSON_IsObject(obj)) {
        return lp_err_set(err, LP_EINVAL, "body: expected a JSON object, got %s",
                          obj ? json_kind(obj) : "nothing");
    }
    if (!specs) return LP_OK;
    for (const lp_field_spec *f = specs; f->name; f++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, f->name);
        if (!v || cJSON_IsNull(v)) {
            if (f->required) {
                return lp_err_set(err, LP_EINVAL, "field '%s': missing (required %s)", f->name,
                                  lp_field_type_name(f->type));
            }
            continue;
        }
        lp_status st = check_one(v, f, err);
        if (st != LP_OK) return st;
    }
    /* A duplicated member would let a second value bypass the checks of the first.
     * O(members * specs): no quadratic walk over a hostile object with many members. */
    for (const lp_field_spec *f = specs; f->name; f++) {
        size_t seen = 0;
        for (const cJSON *m = obj->child; m; m = m->next) {
            if (m->string && strcmp(m->string, f->name) == 0 && ++seen > 1) {
                return lp_err_set(err, LP_EINVAL, "field '%s': given more than once", f->name);
            }
        }
    }
    if (allow_unknown) return LP_OK;
    for (const cJSON *m = obj->child; m; m = m->next) {
        const char *name = m->string ? m->string : "";
        bool known = false;
        for (const lp_field_spec *f = specs; f->name && !known; f++) {
            known = strcmp(f->name, name) == 0;
        }
        if (!known) return lp_err_set(err, LP_EINVAL, "field '%.64s': unknown field", name);
    }
    return LP_OK;
}

/* 10^s for 0 <= s <= 18, exact */
static double pow10_exact(int s)
{
    static const double p10[19] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8, 1e9,
                                   1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18};
    return p10[s];
}

/* The common case of "%.Pg" without printf: P <= 15 significant digits of a finite v with
 * 1e-4 <= |v| < 10^P (fixed notation). y = |v| 10^s (s = P - 1 - E, E the decimal exponent) is
 * one rounded double product (the powers 10^0..10^18 are exact doubles), off the exact one by
 * at most y 2^-53, under 0.12 of the last digit at P = 15; the exact value rounds the same way
 * unless it lies within that distance of a half, so those (tol is twice the bound), and
 * everything else outside the case, return 0 for strfromd to print (round-half-even on exact
 * ties, exponent notation). E from log10 can be off by one only within a few ulps of a power
 * of ten, where both exponents print the same rounded digits; any other miss leaves y out of
 * [10^(P-1) - 1, 10^P) and falls back. Writes at most 24 bytes into num; its length, with the
 * P digits in *digits and the power of ten they were scaled by in *shift. */
static size_t format_fast_d(char *num, double v, int P, uint64_t *digits, int *shift)
{
    double a = fabs(v);
    if (P > 15 || !(a >= 1e-4) || !(a < pow10_exact(P)))
        return 0;
    int E = (int)floor(log10(a)); /* may be off by one near a power of ten: checked below */
    int sh = P - 1 - E;
    if (sh < 0 || sh > 18)
        return 0;
    double y = a * pow10_exact(sh), fl = floor(y), frac = y - fl;
    double tol = y * 0x1p-52;
    if (fabs(frac - 0.5) <= tol || fl < pow10_exact(P - 1) - 1 || y >= pow10_exact(P))
        return 0;
    uint64_t D = (uint64_t)fl + (frac > 0.5);
    if (D < (uint64_t)pow10_exact(P - 1) || D >= (uint64_t)pow10_exact(P))
        return 0; /* the exponent guess was off, or rounding carried into another digit */
    *digits = D;
    *shift = sh;
    char dig[16];
    for (int i = P - 1; i >= 0; i--, D /= 10)
        dig[i] = (char)('0' + D % 10);
    int last = P - 1; /* the last digit kept: trailing zeros of the fraction go */
    while (last > E && last > 0 && dig[last] == '0')
        last--;
    char *o = num;
    if (v < 0)
        *o++ = '-';
    if (E >= 0) {
        for (int i = 0; i <= E; i++)
            *o++ = dig[i];
        if (last > E) {
            *o++ = '.';
            for (int i = E + 1; i <= last; i++)
                *o++ = dig[i];
        }
    } else {
        *o++ = '0';
        *o++ = '.';
        for (int i = 0; i < -E - 1; i++)
            *o++ = '0';
        for (int i = 0; i <= last; i++)
            *o++ = dig[i];
    }
    *o = '\0';
    return (size_t)(o - num);
}

static size_t format_fast(char *num, double v, int P)
{
    uint64_t D;
    int sh;
    return format_fast_d(num, v, P, &D, &sh);
}

/* v with `digits` (clamped to 1..17) significant digits, as "%.*g" prints it, into num (40
 * bytes); its length. format_fast where it applies; else strfromd, not snprintf: with
 * libquadmath loaded (OpenBLAS's Fortran runtime brings it) glibc sends every printf-family
 * call through its positional-argument path, several times the cost of formatting the one
 * number (and strfromd itself was a tenth of a recommend request's CPU). */
size_t lp_json_format_num(char *num, double v, int digits)
{
    static const char *const fmt[18] = {"%.1g",  "%.1g",  "%.2g",  "%.3g",  "%.4g",  "%.5g",
                                        "%.6g",  "%.7g",  "%.8g",  "%.9g",  "%.10g", "%.11g",
                                        "%.12g", "%.13g", "%.14g", "%.15g", "%.16g", "%.17g"};
    digits = digits < 1 ? 1 : digits > 17 ? 17 : digits;
    size_t f = format_fast(num, v, digits);
    if (f)
        return f;
    int n = strfromd(num, 40, fmt[digits], v);
    return n > 0 && n < 40 ? (size_t)n : 0;
}


cJSON *lp_json_add_float(cJSON *o, const char *name, double v, int digits)
{
    if (!isfinite(v)) return cJSON_AddNullToObject(o, name);
    char num[40];
    lp_json_format_num(num, v, digits);
    return cJSON_AddRawToObject(o, name, num);
}

void lp_json_write_num(lp_buf *b, double v, int digits)
{
    if (!isfinite(v)) {
        lp_buf_put(b, "null", 4);
        return;
    }
    char num[40];
    lp_buf_put(b, num, lp_json_format_num(num, v, digits));
}

void lp_json_write_str(lp_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    lp_buf_u8(b, '"');
    const char *run = s;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch >= 0x20 && ch != '"' && ch != '\\')
            continue;
        lp_buf_put(b, run, (size_t)(s - run));
        run = s + 1;
        switch (ch) {
        case '"': lp_buf_put(b, "\\\"", 2); break;
        case '\\': lp_buf_put(b, "\\\\", 2); break;
        case '\b': lp_buf_put(b, "\\b", 2); break;
        case '\f': lp_buf_put(b, "\\f", 2); break;
        case '\n': lp_buf_put(b, "\\n", 2); break;
        case '\r': lp_buf_put(b, "\\r", 2); break;
        case '\t': lp_buf_put(b, "\\t", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[ch >> 4], hex[ch & 15]};
            lp_buf_put(b, u, 6);
        }
        }
    }
    lp_buf_put(b, run, (size_t)(s - run));
    lp_buf_u8(b, '"');
}

void lp_json_write_cjson_num(lp_buf *b, double d)
{
    char t[32];
    int n;
    if (isnan(d) || isinf(d)) {
        lp_buf_put(b, "null", 4);
        return;
    }
    /* cJSON 1.7.15 prints "%1.15g", or "%1.17g" when that does not read back (measured:
     * -0.0 gives "-0", 2^53 "9.00719925474099e+15"). Without printf where the result is sure:
     * an integer in int range as its digits; "%.15g" by format_fast, which reads back when the
     * 15 digits D over the power of ten 10^s it scaled by give d again (D < 2^53 and 10^s are
     * exact doubles, so the one division is the correctly rounded value of the decimal, which
     * is what strtod returns, and it gets cJSON's own test). strfromd, not snprintf, for the
     * rest: with libquadmath loaded (OpenBLAS brings it) glibc sends every printf-family call
     * through its positional path. */
    if (d == (double)(int)d && fabs(d) < 2147483647.0 && !(d == 0 && signbit(d))) {
        char r[12];
        long v = (long)d;
        unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
        size_t k = sizeof r;
        do
            r[--k] = (char)('0' + u % 10);
        while (u /= 10);
        if (v < 0)
            r[--k] = '-';
        lp_buf_put(b, r + k, sizeof r - k);
        return;
    }
    uint64_t D;
    int sh;
    size_t f = format_fast_d(t, d, 15, &D, &sh);
    if (f) {
        double back = (double)D / pow10_exact(sh), a = fabs(d), mx = back > a ? back : a;
        if (fabs(back - a) <= mx * DBL_EPSILON) { /* cJSON's test of the read-back */
            lp_buf_put(b, t, f);
            return;
        }
    }
    n = strfromd(t, sizeof t, "%.15g", d);
    double back = strtod(t, NULL);
    double mx = fabs(back) > fabs(d) ? fabs(back) : fabs(d);
    if (!(fabs(back - d) <= mx * DBL_EPSILON))
        n = strfromd(t, sizeof t, "%.17g", d);
    lp_buf_put(b, t, n > 0 ? (size_t)n : 0);
}

#define TREE_MAX_DEPTH 256

static bool write_tree(lp_buf *b, const cJSON *j, unsigned depth)
{
    if (depth > TREE_MAX_DEPTH)
        return false;
    switch (j->type & 0xff) {
    case cJSON_NULL:
        lp_buf_put(b, "null", 4);
        return true;
    case cJSON_False:
        lp_buf_put(b, "false", 5);
        return true;
    case cJSON_True:
        lp_buf_put(b, "true", 4);
        return true;
    case cJSON_Number:
        lp_json_write_cjson_num(b, j->valuedouble);
        return true;
    case cJSON_String:
        lp_json_write_str(b, j->valuestring ? j->valuestring : "");
        return true;
    case cJSON_Raw:
        if (!j->valuestring)
            return false;
        lp_buf_put(b, j->valuestring, strlen(j->valuestring));
        return true;
    case cJSON_Array:
    case cJSON_Object: {
        bool obj = (j->type & 0xff) == cJSON_Object;
        lp_buf_u8(b, obj ? '{' : '[');
        for (const cJSON *c = j->child; c; c = c->next) {
            if (c != j->child)
                lp_buf_u8(b, ',');
            if (obj) {
                lp_json_write_str(b, c->string ? c->string : "");
                lp_buf_u8(b, ':');
            }
            if (!write_tree(b, c, depth + 1))
                return false;
        }
        lp_buf_u8(b, obj ? '}' : ']');
        return true;
    }
    default:
        return false;
    }
}

bool lp_json_write_tree(lp_buf *b, const cJSON *j)
{
    return j && write_tree(b, j, 0) && !b->failed;
}
