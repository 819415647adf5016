/*
 * infer.c - type inference shared by every reader: missing tokens, the exact fast number
 * parser, "col:kind" overrides, the streaming column builder (data_internal.h), UTF-8/NUL
 * validation, the cell store used by JSONL and SQL, and lp_column_convert.
 *
 * The builder never keeps a numeric cell as a string and interns string cells, so a repeated
 * categorical value costs a 4-byte code, not a copy. The rules it applies are those written
 * in data.h above lp_csv_opts_default. Nothing here does I/O.
 */
#include "data/data_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- missing tokens ------------------------------------------------------------------------*/

lp_status lp_missing_init(lp_missing_set *m, const char *list, lp_err *err)
{
    memset(m, 0, sizeof *m);
    m->storage = lp_strdup(list ? list : ",NA,N/A,NaN,null,None,?");
    if (!m->storage)
        return lp_err_set(err, LP_ENOMEM, "out of memory for missing tokens");
    char *p = m->storage;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        size_t n = strlen(p);
        if (n == 0) {
            m->empty = true;
        } else {
            if (m->n == LP_MISSING_MAX) {
                lp_missing_free(m);
                return lp_err_set(err, LP_EINVAL, "missing tokens: more than %d given",
                                  LP_MISSING_MAX);
            }
            m->tok[m->n] = p;
            m->len[m->n++] = n;
            m->first[(unsigned char)p[0]] = 1;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return LP_OK;
}

void lp_missing_free(lp_missing_set *m)
{
    free(m->storage);
    m->storage = NULL;
    m->n = 0;
}

/* ---- numbers -------------------------------------------------------------------------------*/

static const double pow10_tab[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                     1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                     1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

bool lp_parse_number_fast(const char *s, size_t n, double *out, bool *is_int)
{
    const char *s0 = s;
    size_t n0 = n;
    while (n && (*s == ' ' || *s == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    size_t i = 0;
    bool neg = false;
    if (i < n && (s[i] == '-' || s[i] == '+')) {
        neg = s[i] == '-';
        i++;
    }
    uint64_t mant = 0;
    int ndig = 0, exp10 = 0;
    bool any = false, dropped = false, integer = true;
    for (; i < n; i++) {
        unsigned d = (unsigned char)s[i] - '0';
        if (d > 9)
            break;
        any = true;
        if (ndig < 19) {
            mant = mant * 10 + d;
            ndig += mant != 0;
        } else {
            exp10++;
            dropped = true;
        }
    }
    if (i < n && s[i] == '.') {
        integer = false;
        for (i++; i < n; i++) {
            unsigned d = (unsigned char)s[i] - '0';
            if (d > 9)
                break;
            any = true;
            if (ndig < 19) {
                mant = mant * 10 + d;
                ndig += mant != 0;
                exp10--;
            } else if (d) {
                dropped = true;
            }
        }
    }
    if (!any)
        return false;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        integer = false;
        i++;
        bool eneg = false;
        if (i < n && (s[i] == '-' || s[i] == '+')) {
            eneg = s[i] == '-';
            i++;
        }
        if (i == n)
            return false;
        int e = 0;
        for (; i < n; i++) {
            unsigned d = (unsigned char)s[i] - '0';
            if (d > 9)
                return false;
            if (e < 100000)
                e = e * 10 + (int)d;
        }
        exp10 += eneg ? -e : e;
    }
    if (i != n)
        return false;
    if (integer) {
        int64_t v;
        if (!dropped && mant <= (uint64_t)INT64_MAX) {
            *is_int = true;
            *out = neg ? -(double)mant : (double)mant;
            return true;
        }
        *is_int = lp_parse_int(s, n, &v);
        if (*is_int) {
            *out = (double)v;
            return true;
        }
    }
    *is_int = false;
    if (!dropped && mant <= (1ULL << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)mant;
        v = exp10 < 0 ? v / pow10_tab[-exp10] : v * pow10_tab[exp10];
        *out = neg ? -v : v;
        return true;
    }
    return lp_parse_double(s0, n0, out);
}

/* ---- overrides -----------------------------------------------------------------------------*/

lp_status lp_typespec_parse(lp_typespec *t, const char *spec, lp_err *err)
{
    memset(t, 0, sizeof *t);
    if (!spec || !*spec)
        return LP_OK;
    t->storage = lp_strdup(spec);
    size_t items = 1;
    for (const char *p = spec; *p; p++)
        items += *p == ',';
    t->names = lp_calloc(items, sizeof *t->names);
    t->kinds = lp_calloc(items, sizeof *t->kinds);
    t->used = lp_calloc(items, sizeof *t->used);
    if (!t->storage || !t->names || !t->kinds || !t->used) {
        lp_typespec_free(t);
        return lp_err_set(err, LP_ENOMEM, "out of memory for column types");
    }
    char *p = t->storage;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        if (*p) {
            char *colon = strrchr(p, ':');
            if (!colon || colon == p) {
                lp_err_set(err, LP_EINVAL, "column types: item '%s' is not 'column:kind'", p);
                lp_typespec_free(t);
                return LP_EINVAL;
            }
            *colon = '\0';
            lp_status st = lp_col_kind_parse(colon + 1, &t->kinds[t->n], err);
            if (st) {
                lp_err_prefix(err, "column types, column '%s'", p);
                lp_typespec_free(t);
                return st;
            }
            t->names[t->n++] = p;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return LP_OK;
}

void lp_typespec_free(lp_typespec *t)
{
    free(t->storage);
    free(t->names);
    free(t->kinds);
    free(t->used);
    memset(t, 0, sizeof *t);
}

long lp_typespec_find(lp_typespec *t, const char *name)
{
    for (size_t k = 0; k < t->n; k++)
        if (strcmp(t->names[k], name) == 0) {
            t->used[k] = true;
            return (long)k;
        }
    return -1;
}

lp_status lp_typespec_check_used(const lp_typespec *t, const char *what, lp_err *err)
{
    for (size_t k = 0; k < t->n; k++)
        if (!t->used[k])
            return lp_err_set(err, LP_EINVAL, "column types: %s has no column '%s'", what,
                              t->names[k]);
    return LP_OK;
}

/* ---- column builder ------------------------------------------------------------------------*/

lp_status lp_colbuild_init(lp_colbuild *b, const char *name, int fixed_kind, size_t cap_hint,
                           lp_err *err)
{
    memset(b, 0, sizeof *b);
    b->name = lp_strdup(name);
    b->cap = cap_hint ? cap_hint : 16;
    b->missing = malloc(b->cap);
    if (!b->name || !b->missing) {
        lp_colbuild_free(b);
        return lp_err_set(err, LP_ENOMEM, "out of memory for column '%s'", name);
    }
    if (fixed_kind >= 0) {
        b->fixed = true;
        b->fixed_kind = (lp_col_kind)fixed_kind;
        switch (b->fixed_kind) {
        case LP_COL_KIND_INTEGER:
            b->state = LP_CB_INT;
            break;
        case LP_COL_KIND_FLOAT:
            b->state = LP_CB_FLOAT;
            break;
        case LP_COL_KIND_BOOL:
            b->state = LP_CB_BOOL;
            break;
        case LP_COL_KIND_DATETIME:
            b->state = LP_CB_DATETIME;
            break;
        default:
            b->state = LP_CB_STRING;
            break;
        }
        if (b->state == LP_CB_STRING)
            b->codes = lp_mallocarray(b->cap, sizeof *b->codes);
        else
            b->num = lp_mallocarray(b->cap, sizeof *b->num);
        if (!b->codes && !b->num) {
            lp_colbuild_free(b);
            return lp_err_set(err, LP_ENOMEM, "out of memory for column '%s'", name);
        }
    }
    return LP_OK;
}

static void dict_clear(lp_colbuild *b)
{
    for (size_t k = 0; k < b->n_dict; k++)
        free(b->dict[k]);
    free(b->dict);
    free(b->dict_len);
    free(b->dict_hash);
    free(b->slots);
    b->dict = NULL;
    b->dict_len = b->dict_hash = b->slots = NULL;
    b->n_dict = b->dict_cap = b->dict_bytes = b->slot_cap = 0;
}

void lp_colbuild_free(lp_colbuild *b)
{
    free(b->name);
    free(b->missing);
    free(b->num);
    free(b->codes);
    dict_clear(b);
    memset(b, 0, sizeof *b);
}

static bool grow(lp_colbuild *b)
{
    size_t cap = b->cap * 2;
    uint8_t *m = realloc(b->missing, cap);
    if (!m)
        return false;
    b->missing = m;
    if (b->num) {
        double *v = lp_reallocarray(b->num, cap, sizeof *v);
        if (!v)
            return false;
        b->num = v;
    }
    if (b->codes) {
        uint32_t *c = lp_reallocarray(b->codes, cap, sizeof *c);
        if (!c)
            return false;
        b->codes = c;
    }
    b->cap = cap;
    return true;
}

static uint32_t hash_bytes(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 16777619u;
    }
    return h;
}

static bool slots_rebuild(lp_colbuild *b, size_t cap)
{
    uint32_t *s = lp_calloc(cap, sizeof *s);
    if (!s)
        return false;
    for (size_t k = 0; k < b->n_dict; k++) {
        size_t i = b->dict_hash[k] & (cap - 1);
        while (s[i])
            i = (i + 1) & (cap - 1);
        s[i] = (uint32_t)k + 1;
    }
    free(b->slots);
    b->slots = s;
    b->slot_cap = cap;
    return true;
}

/* Code of s[0..n), added when new; false on allocation failure or too many values. */
static bool intern(lp_colbuild *b, const char *s, size_t n, uint32_t *code)
{
    if (n > UINT32_MAX)
        return false;
    uint32_t h = hash_bytes(s, n);
    if (b->slot_cap) {
        size_t mask = b->slot_cap - 1, i = h & mask;
        for (uint32_t v; (v = b->slots[i]); i = (i + 1) & mask) {
            uint32_t k = v - 1;
            if (b->dict_hash[k] == h && b->dict_len[k] == n && memcmp(b->dict[k], s, n) == 0) {
                *code = k;
                return true;
            }
        }
    }
    if (b->n_dict >= LP_CODE_MISSING - 1)
        return false;
    if (b->n_dict == b->dict_cap) {
        size_t cap = b->dict_cap ? 2 * b->dict_cap : 8;
        char **d = lp_reallocarray(b->dict, cap, sizeof *d);
        if (!d)
            return false;
        b->dict = d;
        uint32_t *l = lp_reallocarray(b->dict_len, cap, sizeof *l);
        if (!l)
            return false;
        b->dict_len = l;
        uint32_t *hh = lp_reallocarray(b->dict_hash, cap, sizeof *hh);
        if (!hh)
            return false;
        b->dict_hash = hh;
        b->dict_cap = cap;
    }
    char *copy = lp_strndup(s, n);
    if (!copy)
        return false;
    size_t k = b->n_dict++;
    b->dict[k] = copy;
    b->dict_len[k] = (uint32_t)n;
    b->dict_hash[k] = h;
    b->dict_bytes += n;
    if (2 * b->n_dict + 2 > b->slot_cap) {
        if (!slots_rebuild(b, b->slot_cap ? 2 * b->slot_cap : 64)) {
            b->n_dict--;
            free(copy);
            return false;
        }
    } else {
        size_t mask = b->slot_cap - 1, i = h & mask;
        while (b->slots[i])
            i = (i + 1) & mask;
        b->slots[i] = (uint32_t)k + 1;
    }
    *code = (uint32_t)k;
    return true;
}

/* Leave the UNKNOWN state for state st; the rows so far are all missing. */
static bool enter(lp_colbuild *b, lp_cb_state st)
{
    b->state = st;
    if (st == LP_CB_STRING) {
        b->codes = lp_mallocarray(b->cap, sizeof *b->codes);
        if (!b->codes)
            return false;
        for (size_t i = 0; i < b->n; i++)
            b->codes[i] = LP_CODE_MISSING;
    } else {
        b->num = lp_mallocarray(b->cap, sizeof *b->num);
        if (!b->num)
            return false;
        for (size_t i = 0; i < b->n; i++)
            b->num[i] = NAN;
        b->only01 = true;
    }
    return true;
}

lp_cb_result lp_colbuild_push_missing(lp_colbuild *b)
{
    if (b->n == b->cap && !grow(b))
        return LP_CB_NOMEM;
    b->missing[b->n] = 1;
    if (b->num)
        b->num[b->n] = NAN;
    if (b->codes)
        b->codes[b->n] = LP_CODE_MISSING;
    b->n++;
    return LP_CB_OK;
}

lp_cb_result lp_colbuild_push(lp_colbuild *b, const char *s, size_t n)
{
    if (b->n == b->cap && !grow(b))
        return LP_CB_NOMEM;
    double v = 0;
    bool is_int = false, bv;
    switch (b->state) {
    case LP_CB_UNKNOWN: {
        lp_cb_state st;
        if (lp_parse_number_fast(s, n, &v, &is_int))
            st = !is_int ? LP_CB_FLOAT : fabs(v) > LP_EXACT_INT_MAX ? LP_CB_STRING : LP_CB_INT;
        else if (lp_parse_bool(s, n, false, &bv))
            st = LP_CB_BOOL;
        else if (lp_parse_datetime(s, n, &v))
            st = LP_CB_DATETIME;
        else
            st = LP_CB_STRING;
        if (!enter(b, st))
            return LP_CB_NOMEM;
        return lp_colbuild_push(b, s, n);
    }
    case LP_CB_INT:
        if (lp_parse_number_fast(s, n, &v, &is_int)) {
            if (is_int && fabs(v) > LP_EXACT_INT_MAX && !b->fixed)
                return LP_CB_REJECT; /* an id a double cannot hold: the column is strings */
            if (!is_int) {
                if (b->fixed)
                    return LP_CB_REJECT;
                b->state = LP_CB_FLOAT;
            }
            b->only01 = b->only01 && (v == 0 || v == 1);
            break;
        }
        if (b->fixed) {
            int64_t iv;
            if (!lp_parse_int(s, n, &iv))
                return LP_CB_REJECT;
            v = (double)iv;
            break;
        }
        if (b->only01 && lp_parse_bool(s, n, false, &bv)) {
            b->state = LP_CB_BOOL;
            v = bv;
            break;
        }
        return LP_CB_REJECT;
    case LP_CB_FLOAT:
        if (!lp_parse_number_fast(s, n, &v, &is_int) && !(b->fixed && lp_parse_double(s, n, &v)))
            return LP_CB_REJECT;
        break;
    case LP_CB_BOOL:
        if (!lp_parse_bool(s, n, true, &bv))
            return LP_CB_REJECT;
        v = bv;
        break;
    case LP_CB_DATETIME:
        if (!lp_parse_datetime(s, n, &v))
            return LP_CB_REJECT;
        break;
    case LP_CB_STRING: {
        uint32_t code;
        if (!intern(b, s, n, &code))
            return LP_CB_NOMEM;
        b->codes[b->n] = code;
        b->missing[b->n++] = 0;
        return LP_CB_OK;
    }
    }
    b->num[b->n] = v;
    b->missing[b->n++] = 0;
    return LP_CB_OK;
}

bool lp_colbuild_restart_string(lp_colbuild *b)
{
    free(b->num);
    b->num = NULL;
    free(b->codes);
    b->codes = NULL;
    dict_clear(b);
    b->n = 0;
    b->fixed = false;
    b->only01 = false;
    b->state = LP_CB_UNKNOWN;
    return enter(b, LP_CB_STRING);
}

const char *lp_colbuild_expected(const lp_colbuild *b)
{
    switch (b->state) {
    case LP_CB_INT:
        return "an integer";
    case LP_CB_FLOAT:
        return "a number";
    case LP_CB_BOOL:
        return "a boolean (true/false, yes/no, 1/0)";
    case LP_CB_DATETIME:
        return "an ISO-8601 date-time";
    default:
        return "a string";
    }
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 1;
    while (c < n)
        c *= 2;
    return c;
}

lp_status lp_colbuild_finish(lp_colbuild *b, const lp_csv_opts *opts, lp_column **out,
                             lp_err *err)
{
    *out = NULL;
    lp_column *c = calloc(1, sizeof *c);
    if (!c)
        return lp_err_set(err, LP_ENOMEM, "out of memory for column '%s'", b->name);
    size_t n = b->n;
    c->name = b->name;
    b->name = NULL;
    c->n = n;
    c->missing = b->missing;
    b->missing = NULL;
    if (n && n < b->cap) { /* give back the unused tail of the row-count estimate */
        uint8_t *m = realloc(c->missing, n);
        if (m)
            c->missing = m;
    }
    lp_cb_state st = b->state;
    if (st == LP_CB_UNKNOWN && b->fixed) /* an override on an all-missing column */
        st = b->fixed_kind == LP_COL_KIND_CATEGORICAL || b->fixed_kind == LP_COL_KIND_TEXT
                 ? LP_CB_STRING
                 : LP_CB_FLOAT;
    if (st == LP_CB_UNKNOWN) {
        c->kind = LP_COL_KIND_TEXT;
        c->type = LP_COL_TYPE_TEXT;
        c->text = lp_calloc(n, sizeof(char *));
        if (!c->text)
            goto nomem;
    } else if (st != LP_CB_STRING) {
        static const lp_col_kind kinds[] = {LP_COL_KIND_TEXT, LP_COL_KIND_INTEGER,
                                            LP_COL_KIND_FLOAT, LP_COL_KIND_BOOL,
                                            LP_COL_KIND_DATETIME};
        c->kind = b->fixed ? b->fixed_kind : kinds[st];
        c->type = LP_COL_TYPE_NUMERIC;
        if (!b->num) {
            b->num = lp_mallocarray(n, sizeof(double));
            if (!b->num)
                goto nomem;
            for (size_t i = 0; i < n; i++)
                b->num[i] = NAN;
        }
        c->num = b->num;
        b->num = NULL;
        if (n && n < b->cap) {
            double *v = lp_reallocarray(c->num, n, sizeof(double));
            if (v)
                c->num = v;
        }
    } else {
        size_t nonmiss = 0;
        for (size_t i = 0; i < n; i++)
            nonmiss += !c->missing[i];
        bool categorical;
        if (b->fixed && b->fixed_kind == LP_COL_KIND_CATEGORICAL)
            categorical = true;
        else if (b->fixed)
            categorical = false;
        else
            categorical = b->n_dict <= opts->cat_max_distinct &&
                          (double)b->n_dict <= opts->cat_max_unique * (double)nonmiss &&
                          b->dict_bytes <= opts->cat_max_len * b->n_dict;
        if (!b->codes) {
            b->codes = lp_mallocarray(n, sizeof(uint32_t));
            if (!b->codes)
                goto nomem;
            for (size_t i = 0; i < n; i++)
                b->codes[i] = LP_CODE_MISSING;
        }
        if (categorical) {
            c->kind = LP_COL_KIND_CATEGORICAL;
            c->type = LP_COL_TYPE_CATEGORICAL;
            /* frame.c's lp_column_dict_add grows dict when n_dict is a power of two, so the
             * array must hold the next power of two */
            size_t dcap = pow2_at_least(b->n_dict ? b->n_dict : 1);
            char **d = lp_reallocarray(b->dict, dcap, sizeof(char *));
            if (!d)
                goto nomem;
            b->dict = NULL;
            c->dict = d;
            c->n_dict = b->n_dict;
            b->n_dict = 0;
            c->codes = b->codes;
            b->codes = NULL;
            if (n && n < b->cap) {
                uint32_t *v = lp_reallocarray(c->codes, n, sizeof(uint32_t));
                if (v)
                    c->codes = v;
            }
        } else {
            c->kind = LP_COL_KIND_TEXT;
            c->type = LP_COL_TYPE_TEXT;
            c->text = lp_calloc(n, sizeof(char *));
            if (!c->text)
                goto nomem;
            for (size_t i = 0; i < n; i++) {
                if (b->codes[i] == LP_CODE_MISSING)
                    continue;
                uint32_t k = b->codes[i];
                c->text[i] = malloc(b->dict_len[k] + 1);
                if (!c->text[i])
                    goto nomem;
                memcpy(c->text[i], b->dict[k], b->dict_len[k] + 1);
            }
        }
    }
    *out = c;
    return LP_OK;
nomem:
    lp_column_free(c);
    return lp_err_set(err, LP_ENOMEM, "out of memory building column");
}

/* ---- validation ----------------------------------------------------------------------------*/

static lp_status locate(const char *data, size_t off, const char *name, const char *what,
                        lp_err *err)
{
    size_t line = 1, start = 0;
    for (size_t i = 0; i < off; i++)
        if (data[i] == '\n') {
            line++;
            start = i + 1;
        }
    return lp_err_set(err, LP_EPARSE, "%s line %zu, byte %zu: %s", name, line, off - start + 1,
                      what);
}

lp_status lp_text_validate(const char *data, size_t len, const char *name, lp_err *err)
{
    const unsigned char *s = (const unsigned char *)data;
    size_t i = 0;
    while (i < len) {
        if (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            uint64_t zero = (w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL;
            if (!(w & 0x8080808080808080ULL) && !zero) {
                i += 8;
                continue;
            }
        }
        unsigned c = s[i];
        if (c == 0)
            return locate(data, i, name, "NUL byte (binary data is not text)", err);
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return locate(data, i, name, "invalid UTF-8", err);
        }
        for (size_t j = 1; j <= k; j++) {
            if (i + j >= len || (s[i + j] & 0xC0) != 0x80)
                return locate(data, i, name, "invalid UTF-8", err);
            cp = (cp << 6) | (s[i + j] & 0x3F);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return locate(data, i, name, "invalid UTF-8", err);
        i += k + 1;
    }
    return LP_OK;
}

lp_status lp_err_oneline(lp_err *err, lp_status st)
{
    if (err && st)
        for (char *p = err->msg; *p; p++)
            if ((unsigned char)*p < 32)
                *p = ' ';
    return st;
}

const char *lp_msg_value(const char *v, size_t n, char *buf, size_t cap)
{
    size_t keep = n < 40 ? n : 40;
    if (keep >= cap)
        keep = cap - 1;
    while (keep < n && keep && ((unsigned char)v[keep] & 0xC0) == 0x80)
        keep--; /* do not cut a UTF-8 sequence */
    memcpy(buf, v, keep);
    buf[keep] = '\0';
    if (keep < n && keep + 4 < cap)
        memcpy(buf + keep, "...", 4);
    return buf;
}

/* ---- cell store ----------------------------------------------------------------------------*/

void lp_cellstore_init(lp_cellstore *s)
{
    memset(s, 0, sizeof *s);
    lp_buf_init(&s->bytes);
}

void lp_cellstore_free(lp_cellstore *s)
{
    for (size_t j = 0; j < s->ncols; j++) {
        free(s->cols[j].name);
        free(s->cols[j].cells);
    }
    free(s->cols);
    free(s->row_line);
    free(s->index);
    lp_buf_free(&s->bytes);
    memset(s, 0, sizeof *s);
}

static size_t name_hash(const char *s) /* 64-bit FNV-1a */
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return (size_t)h;
}

/* The index slot of name: its column's, or the empty one where it would go. */
static size_t index_slot(const lp_cellstore *s, const char *name)
{
    size_t mask = s->index_cap - 1, i = name_hash(name) & mask;
    while (s->index[i] && strcmp(s->cols[s->index[i] - 1].name, name) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Keep the index at most half full (doubling and re-inserting); false when out of memory. */
static bool index_reserve(lp_cellstore *s)
{
    if (2 * (s->ncols + 1) <= s->index_cap)
        return true;
    size_t cap = s->index_cap ? 2 * s->index_cap : 16;
    size_t *ix = lp_calloc(cap, sizeof *ix);
    if (!ix)
        return false;
    free(s->index);
    s->index = ix;
    s->index_cap = cap;
    for (size_t j = 0; j < s->ncols; j++)
        s->index[index_slot(s, s->cols[j].name)] = j + 1;
    return true;
}

/* A JSONL file (or a table) of many thousand keys looks each one up in the index, not by a
 * scan of every column: the scan made a row of n keys cost n^2 comparisons. */
long lp_cellstore_col(lp_cellstore *s, const char *name)
{
    if (!index_reserve(s))
        return -1;
    size_t slot = index_slot(s, name);
    if (s->index[slot])
        return (long)(s->index[slot] - 1);
    if (s->ncols == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 8;
        lp_cellcol *c = lp_reallocarray(s->cols, cap, sizeof *c);
        if (!c)
            return -1;
        s->cols = c;
        s->cap = cap;
    }
    lp_cellcol *c = &s->cols[s->ncols];
    memset(c, 0, sizeof *c);
    c->name = lp_strdup(name);
    if (!c->name)
        return -1;
    s->index[slot] = s->ncols + 1;
    return (long)s->ncols++;
}

bool lp_cellstore_row(lp_cellstore *s, size_t line)
{
    if (s->nrows == s->row_cap) {
        size_t cap = s->row_cap ? 2 * s->row_cap : 64;
        size_t *r = lp_reallocarray(s->row_line, cap, sizeof *r);
        if (!r)
            return false;
        s->row_line = r;
        s->row_cap = cap;
    }
    s->row_line[s->nrows++] = line;
    return true;
}

bool lp_cellstore_put(lp_cellstore *s, size_t col, const char *v, size_t len, uint8_t flags)
{
    lp_cellcol *c = &s->cols[col];
    if (len > UINT32_MAX)
        return false;
    if (c->n == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 16;
        lp_cell *p = lp_reallocarray(c->cells, cap, sizeof *p);
        if (!p)
            return false;
        c->cells = p;
        c->cap = cap;
    }
    lp_cell *cell = &c->cells[c->n++];
    cell->row = s->nrows - 1;
    cell->off = s->bytes.len;
    cell->len = (uint32_t)len;
    cell->flags = flags;
    lp_buf_put(&s->bytes, v, len);
    return !s->bytes.failed;
}

bool lp_name_listed(const char *list, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = list; p && *p;) {
        const char *e = strchr(p, ',');
        size_t k = e ? (size_t)(e - p) : strlen(p);
        if (k == n && memcmp(p, name, n) == 0)
            return true;
        p = e ? e + 1 : NULL;
    }
    return false;
}

/* Push column j's cells for rows [0, nrows) into b. literal: only an empty or null cell is
 * missing (lp_csv_opts.literal_cols). */
static lp_status cellcol_feed(const lp_cellstore *s, size_t j, const lp_missing_set *ms,
                              bool literal, lp_colbuild *b, const char *what,
                              const char *line_word, lp_err *err)
{
    const lp_cellcol *c = &s->cols[j];
    size_t k = 0;
    for (size_t r = 0; r < s->nrows; r++) {
        lp_cb_result res;
        const char *v = NULL;
        uint32_t len = 0;
        if (k < c->n && c->cells[k].row == r) {
            const lp_cell *cell = &c->cells[k++];
            v = s->bytes.data ? (const char *)s->bytes.data + cell->off : "";
            len = cell->len;
            if ((cell->flags & LP_CELL_NULL) ||
                ((cell->flags & LP_CELL_TOKENS) && (!literal || len == 0) &&
                 lp_missing_match(ms, v, len)))
                v = NULL;
        }
        res = v ? lp_colbuild_push(b, v, len) : lp_colbuild_push_missing(b);
        if (res == LP_CB_REJECT && !b->fixed) {
            if (!lp_colbuild_restart_string(b))
                return lp_err_set(err, LP_ENOMEM, "%s: out of memory in column '%s'", what,
                                  c->name);
            return cellcol_feed(s, j, ms, literal, b, what, line_word, err);
        }
        if (res == LP_CB_REJECT) {
            char vb[64];
            return lp_err_set(err, LP_EPARSE, "%s %s %zu: column '%s' is '%s', not %s", what,
                              line_word, s->row_line[r], c->name,
                              lp_msg_value(v, len, vb, sizeof vb), lp_colbuild_expected(b));
        }
        if (res == LP_CB_NOMEM)
            return lp_err_set(err, LP_ENOMEM, "%s: out of memory in column '%s'", what, c->name);
    }
    return LP_OK;
}

lp_status lp_cellstore_frame(lp_cellstore *s, const lp_csv_opts *opts, const char *what,
                             const char *line_word, lp_frame **out, lp_err *err)
{
    *out = NULL;
    if (s->bytes.failed)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
    /* a frame is dense: records that each bring their own keys (8,000 lines of one new key
     * each: 64 million cells, 600 MB, for 8,000 values) are refused, not allocated */
    size_t stored = 0;
    for (size_t j = 0; j < s->ncols; j++)
        stored += s->cols[j].n;
    double dense = (double)s->nrows * (double)s->ncols;
    if (dense > (double)LP_CELLSTORE_SPARSE_MIN && dense > LP_CELLSTORE_SPARSE_RATIO * (double)stored)
        return lp_err_set(err, LP_ETOOBIG, "%s: %zu %ss with %zu distinct keys (columns) but "
                          "%zu values: a table of %.0f cells, mostly empty; the records of a "
                          "data file should share their keys", what, s->nrows, line_word,
                          s->ncols, stored, dense);
    lp_missing_set ms;
    lp_typespec ts;
    lp_status st = lp_missing_init(&ms, opts->missing, err);
    if (st)
        return st;
    st = lp_typespec_parse(&ts, opts->types, err);
    if (st) {
        lp_missing_free(&ms);
        return st;
    }
    lp_frame *f = lp_frame_new();
    if (!f)
        st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
    for (size_t j = 0; !st && j < s->ncols; j++) {
        long o = lp_typespec_find(&ts, s->cols[j].name);
        lp_colbuild b;
        st = lp_colbuild_init(&b, s->cols[j].name, o >= 0 ? (int)ts.kinds[o] : -1, s->nrows,
                              err);
        if (st)
            break;
        st = cellcol_feed(s, j, &ms, lp_name_listed(opts->literal_cols, s->cols[j].name), &b,
                          what, line_word, err);
        lp_column *col = NULL;
        if (!st)
            st = lp_colbuild_finish(&b, opts, &col, err);
        lp_colbuild_free(&b);
        if (!st) {
            st = lp_frame_add_column(f, col, err);
            if (st)
                lp_err_prefix(err, "%s", what);
        }
    }
    if (!st)
        st = lp_typespec_check_used(&ts, what, err);
    lp_missing_free(&ms);
    lp_typespec_free(&ts);
    if (st) {
        lp_frame_free(f);
        return st;
    }
    *out = f;
    return LP_OK;
}

/* ---- lp_column_convert ---------------------------------------------------------------------*/

lp_status lp_column_convert(lp_column *c, lp_col_kind kind, lp_err *err)
{
    if ((unsigned)kind > LP_COL_KIND_TEXT)
        return lp_err_set(err, LP_EINVAL, "column '%s': unknown kind %d", c->name, (int)kind);
    if (c->kind == kind)
        return LP_OK;
    if (c->type == LP_COL_TYPE_NUMERIC && lp_col_kind_type(kind) == LP_COL_TYPE_NUMERIC) {
        for (size_t i = 0; i < c->n; i++) {
            if (c->missing[i])
                continue;
            double v = c->num[i];
            bool ok = kind == LP_COL_KIND_FLOAT || kind == LP_COL_KIND_DATETIME ||
                      (kind == LP_COL_KIND_INTEGER && v == floor(v) && fabs(v) < 9.3e18) ||
                      (kind == LP_COL_KIND_BOOL && (v == 0 || v == 1));
            if (!ok)
                return lp_err_set(err, LP_EPARSE, "column '%s' row %zu: %.17g is not %s",
                                  c->name, i + 1, v,
                                  kind == LP_COL_KIND_BOOL ? "0 or 1" : "an integer");
        }
        c->kind = kind;
        return LP_OK;
    }
    lp_colbuild b;
    lp_status st = lp_colbuild_init(&b, c->name, (int)kind, c->n, err);
    if (st)
        return st;
    char buf[64];
    for (size_t i = 0; i < c->n && !st; i++) {
        lp_cb_result r;
        const char *s = NULL;
        if (!c->missing[i])
            s = lp_column_cell_str(c, i, buf, sizeof buf);
        r = s ? lp_colbuild_push(&b, s, strlen(s)) : lp_colbuild_push_missing(&b);
        if (r == LP_CB_REJECT) {
            char vb[64];
            st = lp_err_set(err, LP_EPARSE, "column '%s' row %zu: '%s' is not %s", c->name, i + 1,
                            lp_msg_value(s, strlen(s), vb, sizeof vb), lp_colbuild_expected(&b));
        } else if (r == LP_CB_NOMEM) {
            st = lp_err_set(err, LP_ENOMEM, "column '%s': out of memory converting", c->name);
        }
    }
    lp_column *nc = NULL;
    if (!st) {
        lp_csv_opts o = lp_csv_opts_default();
        st = lp_colbuild_finish(&b, &o, &nc, err);
    }
    lp_colbuild_free(&b);
    if (st)
        return st;
    /* swap contents so the caller's pointer stays valid */
    lp_column old = *c;
    *c = *nc;
    *nc = old;
    lp_column_free(nc);
    return LP_OK;
}
