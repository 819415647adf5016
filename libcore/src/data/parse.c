/*
 * parse.c - strict whole-field scalar parsers shared by every reader (CSV, JSONL, SQL,
 * request bodies). Leading and trailing ASCII spaces are allowed; anything else left over makes
 * the parse fail. No locale dependence: '.' is always the decimal point.
 */
#include "lepton/data.h"

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
