/*
 * parse.c - strict whole-field scalar parsers shared by every reader (CSV, JSONL, SQL,
 * request bodies). Leading and trailing ASCII spaces are allowed; anything else left over makes
 * the parse fail. No locale dependence: '.' is always the decimal point, except in
 * lp_number_unformat for ';'-separated data (the decimal comma).
 */
#include "data/data_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static void trim(const char **s, size_t *n)
{
    while (*n && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*n)--;
    }
    while (*n && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t'))
        (*n)--;
}

bool lp_parse_double(const char *s, size_t n, double *out)
{
    trim(&s, &n);
    if (!n || n > 400)
        return false;
    char buf[416];
    memcpy(buf, s, n);
    buf[n] = '\0';
    /* strtod accepts hex floats and "nan(...)"; keep to decimal, inf and nan words */
    for (size_t i = 0; i < n; i++)
        if (buf[i] == 'x' || buf[i] == 'X' || buf[i] == '(')
            return false;
    char *end;
    double v = strtod(buf, &end);
    if (end != buf + n)
        return false;
    /* ERANGE still leaves the correctly rounded result (inf, 0 or a subnormal): keep it */
    *out = v;
    return true;
}

bool lp_parse_int(const char *s, size_t n, int64_t *out)
{
    trim(&s, &n);
    if (!n)
        return false;
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n)
        return false;
    uint64_t v = 0;
    for (; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            return false;
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg ? v > (uint64_t)INT64_MAX + 1 : v > (uint64_t)INT64_MAX)
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

bool lp_parse_bool(const char *s, size_t n, bool allow_01, bool *out)
{
    trim(&s, &n);
    static const char *t[] = {"true", "yes", "t", "y"}, *f[] = {"false", "no", "f", "n"};
    for (int k = 0; k < 4; k++) {
        if (strlen(t[k]) == n && strncasecmp(s, t[k], n) == 0) {
            *out = true;
            return true;
        }
        if (strlen(f[k]) == n && strncasecmp(s, f[k], n) == 0) {
            *out = false;
            return true;
        }
    }
    if (allow_01 && n == 1 && (s[0] == '0' || s[0] == '1')) {
        *out = s[0] == '1';
        return true;
    }
    return false;
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (Howard Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

bool lp_parse_datetime(const char *s, size_t n, double *out)
{
    trim(&s, &n);
    int y, mo, d, h = 0, mi = 0, sec = 0;
    if (n < 10 || s[4] != '-' || s[7] != '-' || !digits(s, 4, &y) || !digits(s + 5, 2, &mo) ||
        !digits(s + 8, 2, &d))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return false;
    double frac = 0, offset = 0;
    size_t i = 10;
    if (i < n) {
        if ((s[i] != 'T' && s[i] != ' ') || n < i + 6)
            return false;
        i++;
        if (!digits(s + i, 2, &h) || s[i + 2] != ':' || !digits(s + i + 3, 2, &mi))
            return false;
        i += 5;
        if (i < n && s[i] == ':') {
            if (n < i + 3 || !digits(s + i + 1, 2, &sec))
                return false;
            i += 3;
            if (i < n && (s[i] == '.' || s[i] == ',')) {
                size_t j = i + 1;
                double scale = 0.1;
                while (j < n && s[j] >= '0' && s[j] <= '9') {
                    frac += (s[j] - '0') * scale;
                    scale *= 0.1;
                    j++;
                }
                if (j == i + 1)
                    return false;
                i = j;
            }
        }
        if (h > 23 || mi > 59 || sec > 60)
            return false;
        if (i < n) {
            if (s[i] == 'Z' && i + 1 == n) {
                i++;
            } else if ((s[i] == '+' || s[i] == '-') && (n - i == 6 || n - i == 5)) {
                int oh, om;
                size_t mpos = n - i == 6 ? i + 4 : i + 3;
                if (!digits(s + i + 1, 2, &oh) || (n - i == 6 && s[i + 3] != ':') ||
                    !digits(s + mpos, 2, &om) || oh > 23 || om > 59)
                    return false;
                offset = (s[i] == '+' ? 1 : -1) * (oh * 3600.0 + om * 60.0);
                i = n;
            } else {
                return false;
            }
        }
    }
    if (i != n)
        return false;
    *out = (double)days_from_civil(y, mo, d) * 86400.0 + h * 3600.0 + mi * 60.0 + sec + frac -
           offset;
    return true;
}

/* The length of the currency sign at s (n bytes): $, €, £, ¥; 0 when there is none. */
static size_t currency_sign(const char *s, size_t n)
{
    if (n >= 1 && s[0] == '$')
        return 1;
    if (n >= 3 && memcmp(s, "\xE2\x82\xAC", 3) == 0) /* € */
        return 3;
    if (n >= 2 && (memcmp(s, "\xC2\xA3", 2) == 0 || memcmp(s, "\xC2\xA5", 2) == 0)) /* £ ¥ */
        return 2;
    return 0;
}

/* A number written for people, read while its column is numeric: "$1,234.50" -> 1234.50,
 * "-€ 3.20" / "$-3.20" -> -3.20, "12.5%" -> 12.5 (percent stays in percent), "1,234" -> 1234,
 * and in ';'-separated data (the locales of the decimal comma) "12,5" -> 12.5, "1.234,5" /
 * "1 234,5" -> 1234.5. The parts: spaces, a sign, a currency sign ($ € £ ¥) before or after
 * the digits, digits in groups of three split by the thousands separator (',' ; in ';' data
 * '.' or a space, and '.' only beside a decimal comma or in two or more places, since "1.234"
 * there is 1.234), a decimal part ('.' ; ',' in ';' data), a '%' at the end. *out gets the
 * plain number when s (n) is one and is not plain already; false otherwise (also for a plain
 * number, which reads as it is). */
static bool plain_number(const char *s, size_t n, char delim, char *out, size_t cap)
{
    char dp = delim == ';' ? ',' : '.';
    size_t i = 0, o = 0, seps = 0, dots = 0;
    bool marked = false, sign = false, decimal = false;
    while (n && s[n - 1] == ' ')
        n--;
    while (i < n && s[i] == ' ')
        i++;
    for (int k = 0; k < 2 && i < n; k++) { /* "-$5" and "$-5" */
        size_t c = currency_sign(s + i, n - i);
        if (c && !marked) {
            marked = true;
            i += c;
            while (i < n && s[i] == ' ')
                i++;
        } else if (!sign && (s[i] == '-' || s[i] == '+')) {
            sign = true;
            if (o + 1 >= cap)
                return false;
            out[o++] = s[i++];
        }
    }
    size_t group = 0; /* digits in the current group */
    for (; i < n; i++) {
        char ch = s[i];
        if (ch >= '0' && ch <= '9') {
            if (o + 1 >= cap)
                return false;
            out[o++] = ch;
            group++;
        } else if (group && (ch == (delim == ';' ? '.' : ',') ||
                             (delim == ';' && ch == ' ' && i + 1 < n && s[i + 1] >= '0' &&
                              s[i + 1] <= '9'))) {
            if (seps ? group != 3 : group > 3)
                return false;
            seps++;
            dots += ch == '.';
            group = 0;
        } else {
            break;
        }
    }
    if (seps && group != 3)
        return false;
    if (i < n && s[i] == dp && o > (size_t)sign) {
        size_t d0 = ++i;
        if (o + 1 >= cap)
            return false;
        out[o++] = '.';
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
            if (o + 1 >= cap)
                return false;
            out[o++] = s[i];
        }
        if (i == d0)
            return false;
        decimal = true;
    }
    if (o == (size_t)sign)
        return false; /* no digits */
    while (i < n && s[i] == ' ')
        i++;
    if (i < n && s[i] == '%') {
        marked = true;
        i++;
    } else if (!marked && i < n && currency_sign(s + i, n - i)) {
        marked = true;
        i += currency_sign(s + i, n - i);
    }
    if (i != n)
        return false;
    if (dots == 1 && !decimal && !marked)
        return false; /* "1.234" in ';' data: the decimal point it was written with */
    if (!marked && !seps && !(decimal && dp == ','))
        return false; /* a plain number */
    out[o] = '\0';
    return true;
}

/* Whether s (n) may be a number plain_number rewrites: a cheap look at its ends and commas,
 * so that plain numbers pay (almost) nothing. */
static bool maybe_formatted(const char *s, size_t n, char delim)
{
    if (!n)
        return false;
    unsigned char a = (unsigned char)s[0], z = (unsigned char)s[n - 1];
    return a == '$' || z == '%' || a >= 0x80 || z >= 0x80 || a == ' ' || z == ' ' ||
           (n > 1 && (s[1] == '$' || (unsigned char)s[1] >= 0x80)) || memchr(s, ',', n) ||
           (delim == ';' && memchr(s, ' ', n));
}

bool lp_number_unformat(const char *s, size_t n, char delim, char *out, size_t cap)
{
    return maybe_formatted(s, n, delim) && plain_number(s, n, delim, out, cap);
}

bool lp_parse_number_text(const char *s, size_t n, double *out)
{
    char plain[64];
    if (lp_parse_double(s, n, out))
        return true;
    return lp_number_unformat(s, n, ',', plain, sizeof plain) &&
           lp_parse_double(plain, strlen(plain), out);
}
