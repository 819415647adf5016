/*
 * fmt.c - lp_fmt (base.h): snprintf for the few conversions hot paths use, without the printf
 * family. While libquadmath is loaded (OpenBLAS brings it through libgfortran), its printf hooks
 * send every printf-family call in glibc through the slow positional-argument path (profiles:
 * a tenth of a chat turn, most of a fraud answer's reason texts). Floating point goes through
 * strfromd, which formats directly; integers are written by hand.
 */
#include "lepton/base.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct out_t {
    char *p;
    size_t cap, n; /* n: the length snprintf would report */
} out_t;

static void put(out_t *o, const char *s, size_t len)
{
    if (o->n + 1 < o->cap) {
        size_t room = o->cap - 1 - o->n;
        memcpy(o->p + o->n, s, len < room ? len : room);
    }
    o->n += len;
}

/* Unsigned v in decimal, at least width digits (zero-padded), after an optional '-'. */
static void put_int(out_t *o, bool neg, uintmax_t v, int width, bool zero)
{
    char t[48];
    size_t k = sizeof t;
    do {
        t[--k] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    size_t digits = sizeof t - k, pad = width > 0 && (size_t)width > digits + neg
                                            ? (size_t)width - digits - neg
                                            : 0;
    if (!zero)
        for (size_t i = 0; i < pad; i++)
            put(o, " ", 1);
    if (neg)
        put(o, "-", 1);
    if (zero)
        for (size_t i = 0; i < pad; i++)
            put(o, "0", 1);
    put(o, t + k, digits);
}

int lp_fmt(char *out, size_t cap, const char *fmt, ...)
{
    out_t o = {out, cap, 0};
    va_list ap;
    va_start(ap, fmt);
    for (const char *f = fmt; *f;) {
        const char *pct = strchr(f, '%');
        if (!pct) {
            put(&o, f, strlen(f));
            break;
        }
        put(&o, f, (size_t)(pct - f));
        f = pct + 1;
        bool zero = false;
        int width = 0, prec = -1;
        if (*f == '0')
            zero = true, f++;
        while (*f >= '0' && *f <= '9')
            width = width * 10 + (*f++ - '0');
        if (*f == '.') {
            prec = 0;
            for (f++; *f >= '0' && *f <= '9'; f++)
                prec = prec * 10 + (*f - '0');
        }
        int len = 0; /* 'l' or 'z' */
        if (*f == 'l' || *f == 'z')
            len = *f++;
        char c = *f ? *f++ : 0;
        if (c == '%') {
            put(&o, "%", 1);
        } else if (c == 's' && !len) {
            const char *s = va_arg(ap, const char *);
            if (!s)
                s = "(null)";
            size_t l = strlen(s);
            if (prec >= 0 && (size_t)prec < l)
                l = (size_t)prec;
            for (size_t i = l; width > 0 && i < (size_t)width; i++)
                put(&o, " ", 1);
            put(&o, s, l);
        } else if (c == 'd' || c == 'u') {
            intmax_t sv = 0;
            uintmax_t uv = 0;
            bool neg = false;
            if (c == 'd') {
                sv = len == 'l' ? va_arg(ap, long) : len == 'z' ? (intmax_t)va_arg(ap, size_t)
                                                                : va_arg(ap, int);
                neg = sv < 0;
                uv = neg ? (uintmax_t)0 - (uintmax_t)sv : (uintmax_t)sv;
            } else {
                uv = len == 'l' ? va_arg(ap, unsigned long)
                     : len == 'z' ? va_arg(ap, size_t)
                                  : va_arg(ap, unsigned);
            }
            put_int(&o, neg, uv, width, zero);
        } else if ((c == 'f' || c == 'g' || c == 'e') && !len && !width && !zero) {
            double v = va_arg(ap, double);
            char spec[8] = {'%', '.', 0}, t[360];
            int sp = 2;
            int pr = prec >= 0 ? prec : 6;
            if (pr > 99)
                pr = 99;
            if (pr >= 10)
                spec[sp++] = (char)('0' + pr / 10);
            spec[sp++] = (char)('0' + pr % 10);
            spec[sp++] = c;
            spec[sp] = 0;
            int n = strfromd(t, sizeof t, spec, v);
            if (n < 0 || (size_t)n >= sizeof t) {
                va_end(ap);
                return -1;
            }
            put(&o, t, (size_t)n);
        } else { /* not one of the conversions above */
            va_end(ap);
            if (cap)
                out[0] = 0;
            return -1;
        }
    }
    va_end(ap);
    if (cap)
        out[o.n < cap ? o.n : cap - 1] = 0;
    return o.n > (size_t)INT32_MAX ? -1 : (int)o.n;
}
