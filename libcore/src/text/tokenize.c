/*
 * tokenize.c - the PCRE2 tokenizer and the analyzers (word n-grams, "char" and "char_wb"
 * character n-grams) with scikit-learn 1.2's exact term order and boundaries.
 *
 * The pattern is compiled once per lp_tokenizer (PCRE2_UTF | PCRE2_UCP) and never modified;
 * each call makes its own match data, so one tokenizer serves many threads. Text is validated
 * (or lower-cased, which validates) before matching, so PCRE2 runs with PCRE2_NO_UTF_CHECK.
 * Not here: stop words, accent stripping, stemming.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/text_internal.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

struct lp_tokenizer {
    pcre2_code *re;
    int group; /* 0: whole match; 1: the single capture group */
    bool lowercase;
};

lp_status lp_tokenizer_new(const char *pattern, bool lowercase, lp_tokenizer **out, lp_err *err)
{
    *out = NULL;
    if (!pattern)
        pattern = LP_TOKEN_PATTERN_DEFAULT;
    if (!strncmp(pattern, "(?u)", 4))
        pattern += 4;
    lp_tokenizer *t = calloc(1, sizeof *t);
    if (!t)
        return lp_err_set(err, LP_ENOMEM, "tokenizer: out of memory");
    int code;
    PCRE2_SIZE off;
    t->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP,
                          &code, &off, NULL);
    if (!t->re) {
        PCRE2_UCHAR msg[160];
        pcre2_get_error_message(code, msg, sizeof msg);
        free(t);
        return lp_err_set(err, LP_EINVAL, "token pattern '%s': %s at offset %zu", pattern,
                          (const char *)msg, (size_t)off);
    }
    uint32_t ncap = 0;
    pcre2_pattern_info(t->re, PCRE2_INFO_CAPTURECOUNT, &ncap);
    if (ncap > 1) {
        pcre2_code_free(t->re);
        free(t);
        return lp_err_set(err, LP_EINVAL,
                          "token pattern '%s' has %u capture groups; expected at most 1", pattern,
                          ncap);
    }
    t->group = ncap == 1;
    t->lowercase = lowercase;
    *out = t;
    return LP_OK;
}

void lp_tokenizer_free(lp_tokenizer *t)
{
    if (!t)
        return;
    pcre2_code_free(t->re);
    free(t);
}

/* Validate text, or lower-case it (which validates). *buf is the caller's to free (may stay
 * NULL when the original text is used). */
static lp_status prepare(const char *text, size_t len, bool lowercase, const char **s,
                         size_t *slen, char **buf, lp_err *err)
{
    *buf = NULL;
    lp_status st = lp_utf8_check(text, len, "text", err);
    if (st)
        return st;
    if (!lowercase) {
        *s = text;
        *slen = len;
        return LP_OK;
    }
    *buf = lp_utf8_lower(text, len, slen);
    if (!*buf)
        return lp_err_set(err, LP_ENOMEM, "text: out of memory lower-casing %zu bytes", len);
    *s = *buf;
    return LP_OK;
}

static lp_status match_all(const lp_tokenizer *t, const char *s, size_t len, lp_terms *out,
                           lp_err *err)
{
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!md)
        return lp_err_set(err, LP_ENOMEM, "tokenizer: out of memory");
    lp_status st = LP_OK;
    size_t pos = 0;
    while (pos <= len) {
        int rc = pcre2_match(t->re, (PCRE2_SPTR)s, len, pos, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH)
            break;
        if (rc < 0) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(rc, msg, sizeof msg);
            st = lp_err_set(err, LP_EINVAL, "tokenizer: match failed at byte %zu: %s", pos,
                            (const char *)msg);
            break;
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t a = ov[2 * t->group], b = ov[2 * t->group + 1];
        if (rc > t->group && a != PCRE2_UNSET && b > a && lp_terms_push(out, s + a, b - a)) {
            st = lp_err_set(err, LP_ENOMEM, "tokenizer: out of memory");
            break;
        }
        if (ov[1] > ov[0]) {
            pos = ov[1];
        } else { /* empty match: step one code point */
            if (ov[1] >= len)
                break;
            pos = ov[1];
            (void)lp_utf8_next(s, &pos);
        }
    }
    pcre2_match_data_free(md);
    return st;
}

lp_status lp_tokenizer_run(const lp_tokenizer *t, const char *text, size_t len, lp_terms *out,
                           lp_err *err)
{
    const char *s;
    size_t slen;
    char *buf;
    lp_status st = prepare(text, len, t->lowercase, &s, &slen, &buf, err);
    if (st)
        return st;
    size_t n0 = out->n;
    st = match_all(t, s, slen, out, err);
    if (st)
        lp_terms_truncate(out, n0);
    free(buf);
    return st;
}

/* ---- analyzers ------------------------------------------------------------------------------*/
struct lp_analyzer {
    lp_analyzer_opts o;
    char *pattern;
    lp_tokenizer *tok; /* WORD only */
};

lp_analyzer_opts lp_analyzer_opts_default(void)
{
    return (lp_analyzer_opts){.kind = LP_ANALYZER_KIND_WORD, .token_pattern = NULL,
                              .lowercase = true, .ngram_min = 1, .ngram_max = 1};
}

lp_status lp_analyzer_opts_check(const lp_analyzer_opts *o, lp_err *err)
{
    if (o->kind > LP_ANALYZER_KIND_CHAR_WB)
        return lp_err_set(err, LP_EINVAL, "analyzer: kind %d is not word, char or char_wb",
                          (int)o->kind);
    if (o->ngram_min < 1 || o->ngram_min > o->ngram_max || o->ngram_max > 16)
        return lp_err_set(err, LP_EINVAL,
                          "analyzer: ngram_range (%u, %u) invalid; expected 1 <= min <= max <= 16",
                          o->ngram_min, o->ngram_max);
    return LP_OK;
}

const char *lp_analyzer_kind_name(lp_analyzer_kind k)
{
    switch (k) {
    case LP_ANALYZER_KIND_WORD:
        return "word";
    case LP_ANALYZER_KIND_CHAR:
        return "char";
    case LP_ANALYZER_KIND_CHAR_WB:
        return "char_wb";
    }
    return "unknown";
}

lp_status lp_analyzer_new(const lp_analyzer_opts *opts, lp_analyzer **out, lp_err *err)
{
    *out = NULL;
    lp_status st = lp_analyzer_opts_check(opts, err);
    if (st)
        return st;
    lp_analyzer *a = calloc(1, sizeof *a);
    if (!a)
        return lp_err_set(err, LP_ENOMEM, "analyzer: out of memory");
    a->o = *opts;
    if (opts->token_pattern) {
        a->pattern = lp_strdup(opts->token_pattern);
        if (!a->pattern) {
            free(a);
            return lp_err_set(err, LP_ENOMEM, "analyzer: out of memory");
        }
    }
    a->o.token_pattern = a->pattern;
    if (opts->kind == LP_ANALYZER_KIND_WORD) {
        st = lp_tokenizer_new(a->pattern, opts->lowercase, &a->tok, err);
        if (st) {
            lp_analyzer_free(a);
            return st;
        }
    }
    *out = a;
    return LP_OK;
}

void lp_analyzer_free(lp_analyzer *a)
{
    if (!a)
        return;
    lp_tokenizer_free(a->tok);
    free(a->pattern);
    free(a);
}

const lp_analyzer_opts *lp_analyzer_opts_of(const lp_analyzer *a) { return &a->o; }

/* sklearn _word_ngrams: unigrams first (when min == 1), then each n in order. */
static lp_status word_ngrams(const lp_analyzer *a, lp_terms *out, size_t n0, lp_err *err)
{
    unsigned lo = a->o.ngram_min, hi = a->o.ngram_max;
    size_t ntok = out->n - n0;
    if (hi == 1 || ntok == 0)
        return LP_OK;
    char **tok = lp_mallocarray(ntok ? ntok : 1, sizeof(char *));
    if (!tok)
        return lp_err_set(err, LP_ENOMEM, "analyzer: out of memory");
    memcpy(tok, out->v + n0, ntok * sizeof(char *)); /* the strings stay in out's storage */
    size_t keep = lo == 1 ? ntok : 0;
    lp_terms_truncate(out, n0 + keep);
    lp_status st = LP_OK;
    lp_buf b;
    lp_buf_init(&b);
    for (unsigned n = lo < 2 ? 2 : lo; n <= hi && n <= ntok && !st; n++) {
        for (size_t i = 0; i + n <= ntok && !st; i++) {
            b.len = 0;
            for (unsigned k = 0; k < n; k++) {
                if (k)
                    lp_buf_u8(&b, ' ');
                lp_buf_put(&b, tok[i + k], strlen(tok[i + k]));
            }
            if (b.failed || lp_terms_push(out, (const char *)b.data, b.len))
                st = lp_err_set(err, LP_ENOMEM, "analyzer: out of memory");
        }
    }
    lp_buf_free(&b);
    free(tok);
    return st;
}

/* Character n-grams of s[0..len) with code point boundaries off[0..ncp]. */
static lp_status char_ngrams_of(const lp_analyzer *a, const char *s, const size_t *off,
                                size_t ncp, bool wb, lp_terms *out)
{
    for (unsigned n = a->o.ngram_min; n <= a->o.ngram_max; n++) {
        if (wb) {
            /* sklearn char_wb: the first n-gram always, more while they fit; a word no longer
             * than n ends the loop over n (it was counted once). */
            size_t e = n < ncp ? n : ncp;
            if (lp_terms_push(out, s, off[e]))
                return LP_ENOMEM;
            size_t start = 0;
            while (start + n < ncp) {
                start++;
                if (lp_terms_push(out, s + off[start], off[start + n] - off[start]))
                    return LP_ENOMEM;
            }
            if (start == 0)
                break;
        } else {
            if (n > ncp)
                break;
            for (size_t i = 0; i + n <= ncp; i++)
                if (lp_terms_push(out, s + off[i], off[i + n] - off[i]))
                    return LP_ENOMEM;
        }
    }
    return LP_OK;
}

static lp_status char_analyze(const lp_analyzer *a, const char *s, size_t len, lp_terms *out,
                              lp_err *err)
{
    bool wb = a->o.kind == LP_ANALYZER_KIND_CHAR_WB;
    /* work buffer: the (collapsed) text or one ' word ', plus code point offsets */
    char *w = malloc(len + 3);
    size_t *off = lp_mallocarray(len + 3, sizeof(size_t));
    if (!w || !off) {
        free(w);
        free(off);
        return lp_err_set(err, LP_ENOMEM, "analyzer: out of memory");
    }
    lp_status st = LP_OK;
    size_t i = 0;
    if (!wb) {
        /* re.sub(r"\s\s+", " "): runs of two or more whitespace become one space */
        size_t wl = 0, ncp = 0;
        while (i < len) {
            size_t p = i;
            uint32_t c = lp_utf8_next(s, &i);
            if (lp_unicode_isspace(c)) {
                size_t q = i, run = 1;
                while (q < len) {
                    size_t r = q;
                    if (!lp_unicode_isspace(lp_utf8_next(s, &r)))
                        break;
                    q = r;
                    run++;
                }
                if (run > 1) {
                    off[ncp++] = wl;
                    w[wl++] = ' ';
                    i = q;
                    continue;
                }
            }
            off[ncp++] = wl;
            memcpy(w + wl, s + p, i - p);
            wl += i - p;
        }
        off[ncp] = wl;
        if (char_ngrams_of(a, w, off, ncp, false, out))
            st = lp_err_set(err, LP_ENOMEM, "analyzer: out of memory");
    } else {
        while (i < len && !st) {
            size_t p = i;
            if (lp_unicode_isspace(lp_utf8_next(s, &i)))
                continue;
            /* a word: from p to the next whitespace */
            size_t wl = 0, ncp = 0, q = p;
            off[ncp++] = wl;
            w[wl++] = ' ';
            while (q < len) {
                size_t r = q;
                if (lp_unicode_isspace(lp_utf8_next(s, &r)))
                    break;
                off[ncp++] = wl;
                memcpy(w + wl, s + q, r - q);
                wl += r - q;
                q = r;
            }
            off[ncp++] = wl;
            w[wl++] = ' ';
            off[ncp] = wl;
            i = q;
            if (char_ngrams_of(a, w, off, ncp, true, out))
                st = lp_err_set(err, LP_ENOMEM, "analyzer: out of memory");
        }
    }
    free(w);
    free(off);
    return st;
}

lp_status lp_analyzer_run(const lp_analyzer *a, const char *text, size_t len, lp_terms *out,
                          lp_err *err)
{
    size_t n0 = out->n;
    lp_status st;
    if (a->o.kind == LP_ANALYZER_KIND_WORD) {
        st = lp_tokenizer_run(a->tok, text, len, out, err);
        if (!st)
            st = word_ngrams(a, out, n0, err);
    } else {
        const char *s;
        size_t slen;
        char *buf;
        st = prepare(text, len, a->o.lowercase, &s, &slen, &buf, err);
        if (!st)
            st = char_analyze(a, s, slen, out, err);
        free(buf);
    }
    if (st)
        lp_terms_truncate(out, n0);
    return st;
}
