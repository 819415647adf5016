/*
 * cs_entity.c - built-in entity patterns (PCRE2, compiled once), the Luhn check and PII
 * redaction. Patterns are matched over the raw UTF-8 text; offsets are byte offsets.
 * Overlaps are resolved by pattern order: an earlier pattern keeps its span and a later match
 * overlapping it is dropped (card before phone, email before url).
 * A pattern with a group named "value" that took part in the match reports that group as the
 * entity ("order 12345" -> 12345); otherwise the whole match.
 * Does not: normalise values (a date stays as written), or look at context beyond the one
 * answer pattern per type that cs_patterns_answer applies to a reply the bot asked for.
 * Thread safety: a compiled cs_patterns is immutable; every call makes its own match data.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs.h"

/* ORD-12345, TICKET#1234 (as written), and the number alone of #12345, "order 12345", "order
 * no. 12345", "my order number is 12345", "ticket: 12345" (a branch reset: one group "value") */
#define DEFAULT_ORDER                                                                           \
    "\\b(?:ORD|ORDER|TCK|TICKET)[-#]?\\d{4,12}\\b|(?|(?<![\\w#])#(?<value>\\d{5,12})\\b|"            \
    "\\b(?:order|ticket)(?:\\s+(?:no\\.?|nr\\.?|number|num|id))?(?:\\s+is)?\\s*[:#]?\\s*"       \
    "(\\d{4,12})\\b)"

/* A whole reply that is only a number (the answer to "what is your order number?"): an order
 * number in the context of that question, when no order pattern matched it. */
#define ANSWER_ORDER                                                                            \
    "^\\s*(?:(?:it'?s|it\\s+is|that'?s|number|no\\.?)\\s*)?[:#]?\\s*(?<value>[a-z]{0,6}-?\\d{4,12})"  \
    "\\s*[.!]?\\s*$"

typedef struct pat {
    const char *type;
    const char *src;
    pcre2_code *re;
    bool luhn;   /* keep only Luhn-valid digit runs */
    bool redact; /* replaced by cs_redact */
    int value;   /* the number of the group named "value", or 0 */
} pat;

enum { N_PATS = 8 };

struct cs_patterns {
    pat p[N_PATS];
    pat answer_order; /* ANSWER_ORDER */
};

static const pat builtin[N_PATS] = {
    {"email", "[\\w.+-]+@[\\w-]+(?:\\.[\\w-]+)+", NULL, false, true},
    {"url", "\\b(?:https?://|www\\.)[^\\s<>\"]+[^\\s<>\".,;:!?)]", NULL, false, false},
    {"card", "\\b\\d(?:[ -]?\\d){12,18}\\b", NULL, true, true},
    {"order_number", NULL, NULL, false, false},
    {"money",
     "(?:[$€£¥]\\s?\\d[\\d,]*(?:\\.\\d{1,2})?|\\b\\d[\\d,]*(?:\\.\\d{1,2})?\\s?"
     "(?:dollars?|euros?|pounds?|usd|eur|gbp|bucks)\\b)",
     NULL, false, false},
    {"phone",
     "(?<![\\w+])(?:\\+\\d{1,3}[ .-]?)?(?:\\(\\d{2,4}\\)[ .-]?|\\d{2,4}[ .-])"
     "\\d{3,4}[ .-]?\\d{3,4}\\b",
     NULL, false, true},
    {"date",
     "\\b(?:\\d{4}-\\d{2}-\\d{2}|\\d{1,2}/\\d{1,2}(?:/\\d{2,4})?|"
     "(?:today|tomorrow|yesterday|tonight)|"
     "(?:next |this |last )?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|"
     "\\d{1,2}(?:st|nd|rd|th)?\\s+(?:of\\s+)?(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|"
     "oct|nov|dec)[a-z]*|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*"
     "\\.?\\s+\\d{1,2}(?:st|nd|rd|th)?(?:,?\\s+\\d{4})?)\\b",
     NULL, false, false},
    {"time",
     "\\b(?:(?:[01]?\\d|2[0-3]):[0-5]\\d(?:\\s?[ap]\\.?m\\.?)?|(?:1[0-2]|0?[1-9])\\s?"
     "[ap]\\.?m\\.?|noon|midnight)(?!\\w)",
     NULL, false, false},
};

bool cs_luhn_valid(const char *s, size_t len)
{
    int sum = 0, nd = 0;
    for (size_t i = len; i-- > 0;) {
        if (s[i] < '0' || s[i] > '9')
            continue;
        int d = s[i] - '0';
        if (nd % 2 == 1) {
            d *= 2;
            if (d > 9)
                d -= 9;
        }
        sum += d;
        nd++;
    }
    return nd >= 2 && sum % 10 == 0;
}

void cs_patterns_free(cs_patterns *p)
{
    if (!p)
        return;
    for (int i = 0; i < N_PATS; i++)
        pcre2_code_free(p->p[i].re);
    pcre2_code_free(p->answer_order.re);
    free(p);
}

lp_status cs_patterns_new(const char *order_pattern, cs_patterns **out, lp_err *err)
{
    *out = NULL;
    cs_patterns *p = lp_calloc(1, sizeof(*p));
    if (!p)
        return lp_err_set(err, LP_ENOMEM, "patterns: out of memory");
    memcpy(p->p, builtin, sizeof(builtin));
    p->answer_order = (pat){"order_number", ANSWER_ORDER, NULL, false, false, 0};
    for (int i = 0; i <= N_PATS; i++) {
        pat *q = i < N_PATS ? &p->p[i] : &p->answer_order;
        const char *src = q->src ? q->src : order_pattern ? order_pattern : DEFAULT_ORDER;
        int ec;
        PCRE2_SIZE off;
        q->re = pcre2_compile((PCRE2_SPTR)src, PCRE2_ZERO_TERMINATED,
                              PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS, &ec, &off, NULL);
        if (!q->re) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof(msg));
            lp_err_set(err, LP_EINVAL, "%s pattern '%s': %s at offset %zu",
                       src == order_pattern ? "order" : q->type, src, (const char *)msg,
                       (size_t)off);
            cs_patterns_free(p);
            return LP_EINVAL;
        }
        int g = pcre2_substring_number_from_name(q->re, (PCRE2_SPTR) "value");
        q->value = g > 0 ? g : 0;
        pcre2_jit_compile(q->re, PCRE2_JIT_COMPLETE);
    }
    *out = p;
    return LP_OK;
}

void cs_entities_clear(cs_entities *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->v[i].value);
    free(e->v);
    memset(e, 0, sizeof(*e));
}

lp_status cs_entities_push(cs_entities *e, const char *type, const char *text, size_t start,
                           size_t end)
{
    if (e->n == e->cap) {
        size_t cap = e->cap ? 2 * e->cap : 8;
        cs_entity *v = lp_reallocarray(e->v, cap, sizeof(*v));
        if (!v)
            return LP_ENOMEM;
        e->v = v;
        e->cap = cap;
    }
    cs_entity *x = &e->v[e->n];
    memset(x, 0, sizeof(*x));
    snprintf(x->type, sizeof(x->type), "%s", type);
    x->start = start;
    x->end = end;
    if (!(x->value = lp_strndup(text + start, end - start)))
        return LP_ENOMEM;
    e->n++;
    return LP_OK;
}

static bool overlaps(const cs_entities *e, size_t from, size_t s, size_t t)
{
    for (size_t i = from; i < e->n; i++)
        if (s < e->v[i].end && e->v[i].start < t)
            return true;
    return false;
}

static int by_start(const void *a, const void *b)
{
    const cs_entity *x = a, *y = b;
    return (x->start > y->start) - (x->start < y->start);
}

/* Matches of all patterns (or only redacting ones) appended to out from index base. */
static lp_status find_all(const cs_patterns *p, const char *text, size_t len, bool only_redact,
                          cs_entities *out, lp_err *err)
{
    size_t base = out->n;
    for (int k = 0; k < N_PATS; k++) {
        const pat *q = &p->p[k];
        if (only_redact && !q->redact)
            continue;
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(q->re, NULL);
        if (!md)
            return lp_err_set(err, LP_ENOMEM, "entities: out of memory");
        size_t off = 0;
        while (off <= len) {
            int rc = pcre2_match(q->re, (PCRE2_SPTR)text, len, off, 0, md, NULL);
            if (rc < 0)
                break;
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
            size_t s = ov[0], t = ov[1];
            if (t == s) {
                off = t + 1;
                while (off < len && ((unsigned char)text[off] & 0xC0) == 0x80)
                    off++;
                continue;
            }
            off = t;
            if (q->value && q->value < rc && ov[2 * q->value] != PCRE2_UNSET)
                s = ov[2 * q->value], t = ov[2 * q->value + 1];
            if (q->luhn && !cs_luhn_valid(text + s, t - s))
                continue;
            if (overlaps(out, base, s, t))
                continue;
            if (cs_entities_push(out, q->type, text, s, t) != LP_OK) {
                pcre2_match_data_free(md);
                return lp_err_set(err, LP_ENOMEM, "entities: out of memory");
            }
        }
        pcre2_match_data_free(md);
    }
    if (out->n - base > 1)
        qsort(out->v + base, out->n - base, sizeof(cs_entity), by_start);
    return LP_OK;
}

lp_status cs_patterns_find(const cs_patterns *p, const char *text, size_t len, cs_entities *out,
                           lp_err *err)
{
    if (lp_utf8_check(text, len, "text", err) != LP_OK)
        return LP_EPARSE;
    return find_all(p, text, len, false, out, err);
}

lp_status cs_patterns_answer(const cs_patterns *p, const char *type, const char *text, size_t len,
                             cs_entities *out, lp_err *err)
{
    const pat *q = &p->answer_order;
    if (strcmp(type, q->type) != 0)
        return LP_OK;
    for (size_t i = 0; i < out->n; i++)
        if (strcmp(out->v[i].type, type) == 0)
            return LP_OK;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(q->re, NULL);
    if (!md)
        return lp_err_set(err, LP_ENOMEM, "entities: out of memory");
    int rc = pcre2_match(q->re, (PCRE2_SPTR)text, len, 0, 0, md, NULL);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    lp_status st = LP_OK;
    if (rc > q->value && ov[2 * q->value] != PCRE2_UNSET) {
        size_t s = ov[2 * q->value], t = ov[2 * q->value + 1];
        bool clash = false; /* a phone number or a card is not an order number */
        for (size_t i = 0; i < out->n && !clash; i++)
            clash = s < out->v[i].end && out->v[i].start < t;
        if (!clash && cs_entities_push(out, type, text, s, t) != LP_OK)
            st = lp_err_set(err, LP_ENOMEM, "entities: out of memory");
    }
    pcre2_match_data_free(md);
    return st;
}

char *cs_redact(const cs_patterns *p, const char *text, size_t len)
{
    if (lp_utf8_check(text, len, "text", NULL) != LP_OK)
        return NULL;
    cs_entities e = {0};
    if (find_all(p, text, len, true, &e, NULL) != LP_OK) {
        cs_entities_clear(&e);
        return NULL;
    }
    lp_buf b;
    lp_buf_init(&b);
    size_t at = 0;
    for (size_t i = 0; i < e.n; i++) {
        lp_buf_put(&b, text + at, e.v[i].start - at);
        const char *tag = !strcmp(e.v[i].type, "email")  ? "[EMAIL]"
                          : !strcmp(e.v[i].type, "card") ? "[CARD]"
                                                         : "[PHONE]";
        lp_buf_put(&b, tag, strlen(tag));
        at = e.v[i].end;
    }
    lp_buf_put(&b, text + at, len - at);
    lp_buf_u8(&b, 0);
    cs_entities_clear(&e);
    size_t bl;
    return (char *)lp_buf_take(&b, &bl);
}
