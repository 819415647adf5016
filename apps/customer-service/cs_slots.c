/*
 * cs_slots.c - trainable slot tagger: an averaged perceptron (Collins 2002) over BIO tags,
 * decoded greedily left to right with the previous predicted tag as a feature (the tagger of
 * Honnibal's "A good POS tagger in about 200 lines"). Features are hashed (MurmurHash3) into a
 * table of 2^hash_bits rows, one weight per tag per row, so no vocabulary is stored.
 * Tokens are runs of letters/digits (any non-ASCII byte counts as a letter) or single other
 * non-space characters; spans are UTF-8 byte offsets, END exclusive.
 * Does not: Viterbi decoding, nested or overlapping spans.
 * Invariant: tags are 0 = O, 1 + 2k = B-type k, 2 + 2k = I-type k.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs.h"

#define SLOTS_MAGIC "CSSL"
#define SLOTS_VERSION 1u
#define MAX_TYPES 64
#define MAX_TOK 512
#define MAX_FEATS 48

struct cs_slots {
    size_t n_types, n_tags;
    char **types;
    unsigned bits;
    float *w; /* (2^bits, n_tags) */
};

cs_slots_opts cs_slots_opts_default(void)
{
    return (cs_slots_opts){.epochs = 10, .hash_bits = 18, .seed = 42};
}

void cs_slots_free(cs_slots *s)
{
    if (!s)
        return;
    for (size_t k = 0; k < s->n_types; k++)
        free(s->types[k]);
    free(s->types);
    free(s->w);
    free(s);
}

size_t cs_slots_n_types(const cs_slots *s)
{
    return s->n_types;
}
const char *cs_slots_type(const cs_slots *s, size_t k)
{
    return k < s->n_types ? s->types[k] : NULL;
}

typedef struct tok {
    size_t s, e;
} tok;

static bool is_word_byte(unsigned char c)
{
    return isalnum(c) || c >= 0x80;
}

static size_t tokenize(const char *t, size_t len, tok *out, size_t cap)
{
    size_t n = 0, i = 0;
    while (i < len && n < cap) {
        unsigned char c = (unsigned char)t[i];
        if (isspace(c)) {
            i++;
            continue;
        }
        size_t s = i;
        if (is_word_byte(c))
            while (i < len && is_word_byte((unsigned char)t[i]))
                i++;
        else
            i++;
        out[n++] = (tok){s, i};
    }
    return n;
}

lp_status cs_spans_parse(const char *spans, const char *text, size_t len, cs_entities *out,
                         lp_err *err)
{
    if (!spans || !strcmp(spans, "-") || !spans[0])
        return LP_OK;
    const char *p = spans;
    size_t item = 0;
    while (*p) {
        item++;
        char type[32];
        long s, e;
        int used = 0;
        if (sscanf(p, "%31s %ld %ld%n", type, &s, &e, &used) != 3 || s < 0 || e <= s ||
            (size_t)e > len)
            return lp_err_set(err, LP_EPARSE,
                              "spans item %zu '%.40s': expected 'SLOT START END' "
                              "with 0 <= START < END <= %zu",
                              item, p, len);
        if (cs_entities_push(out, type, text, (size_t)s, (size_t)e) != LP_OK)
            return lp_err_set(err, LP_ENOMEM, "spans: out of memory");
        p += used;
        while (*p == ' ')
            p++;
        if (*p == ';')
            p++;
        else if (*p)
            return lp_err_set(err, LP_EPARSE, "spans item %zu: expected ';' at '%.20s'", item, p);
    }
    return LP_OK;
}

/* ---- features ---------------------------------------------------------------------------- */
typedef struct sent {
    const char *text;
    size_t n;
    tok t[MAX_TOK];
    char low[MAX_TOK][24];   /* lower-cased token, truncated */
    char shape[MAX_TOK][12]; /* collapsed shape: Xx, d, x. ... */
    const char *ctx;
} sent;

static void prepare(sent *S, const char *text, size_t len, const char *ctx)
{
    S->text = text;
    S->n = tokenize(text, len, S->t, MAX_TOK);
    S->ctx = ctx && strcmp(ctx, "-") ? ctx : NULL;
    for (size_t i = 0; i < S->n; i++) {
        size_t l = S->t[i].e - S->t[i].s, q = 0, r = 0;
        for (size_t k = 0; k < l && q < sizeof(S->low[i]) - 1; k++)
            S->low[i][q++] = (char)tolower((unsigned char)text[S->t[i].s + k]);
        S->low[i][q] = 0;
        char last = 0;
        for (size_t k = 0; k < l && r < sizeof(S->shape[i]) - 1; k++) {
            unsigned char c = (unsigned char)text[S->t[i].s + k];
            char sc = isdigit(c) ? 'd' : isupper(c) ? 'X' : islower(c) || c >= 0x80 ? 'x' : (char)c;
            if (sc != last)
                S->shape[i][r++] = sc;
            last = sc;
        }
        S->shape[i][r] = 0;
    }
}

static uint32_t fh(const char *a, const char *b, const char *c)
{
    char buf[160];
    int n = snprintf(buf, sizeof(buf), "%s\x1f%s\x1f%s", a, b ? b : "", c ? c : "");
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(buf))
        n = sizeof(buf) - 1;
    return lp_murmur3_32(buf, (size_t)n, 0x5107u);
}

/* Hashed feature rows of token i given the previous tag name prev. Returns the count. */
static size_t features(const sent *S, size_t i, const char *prev, uint32_t *f)
{
    size_t n = 0;
    const char *w = S->low[i];
    const char *wp = i > 0 ? S->low[i - 1] : "<s>", *wn = i + 1 < S->n ? S->low[i + 1] : "</s>";
    const char *wp2 = i > 1 ? S->low[i - 2] : "<s>", *wn2 = i + 2 < S->n ? S->low[i + 2] : "</s>";
    const char *sp = i > 0 ? S->shape[i - 1] : "<s>", *sn = i + 1 < S->n ? S->shape[i + 1] : "</s>";
    char pre[4][8], suf[4][8];
    size_t l = strlen(w);
    for (size_t k = 1; k <= 3; k++) {
        snprintf(pre[k], sizeof(pre[k]), "%.*s", (int)(k < l ? k : l), w);
        snprintf(suf[k], sizeof(suf[k]), "%s", w + (l > k ? l - k : 0));
    }
    f[n++] = fh("bias", NULL, NULL);
    f[n++] = fh("w", w, NULL);
    f[n++] = fh("sh", S->shape[i], NULL);
    f[n++] = fh("w-1", wp, NULL);
    f[n++] = fh("w+1", wn, NULL);
    f[n++] = fh("w-2", wp2, NULL);
    f[n++] = fh("w+2", wn2, NULL);
    f[n++] = fh("sh-1", sp, NULL);
    f[n++] = fh("sh+1", sn, NULL);
    f[n++] = fh("w-1w", wp, w);
    f[n++] = fh("ww+1", w, wn);
    f[n++] = fh("w-1w+1", wp, wn);
    f[n++] = fh("shsh+1", S->shape[i], sn);
    f[n++] = fh("sh-1sh", sp, S->shape[i]);
    for (size_t k = 1; k <= 3; k++) {
        f[n++] = fh("pre", pre[k], NULL);
        f[n++] = fh("suf", suf[k], NULL);
    }
    f[n++] = fh("p", prev, NULL);
    f[n++] = fh("pw", prev, w);
    f[n++] = fh("psh", prev, S->shape[i]);
    f[n++] = fh("first", i == 0 ? "1" : "0", S->shape[i]);
    f[n++] = fh("pw-1", prev, wp);
    f[n++] = fh("w-1sh", wp, S->shape[i]);
    f[n++] = fh("shw+1", S->shape[i], wn);
    f[n++] = fh("suf-1", sp, suf[2]);
    if (S->ctx) {
        char one[32];
        const char *c = S->ctx;
        while (*c && n + 4 <= MAX_FEATS) {
            size_t m = strcspn(c, ",");
            snprintf(one, sizeof(one), "%.*s", (int)(m < 31 ? m : 31), c);
            f[n++] = fh("req", one, NULL);
            f[n++] = fh("reqsh", one, S->shape[i]);
            f[n++] = fh("reqw", one, w);
            f[n++] = fh("reqw-1", one, wp);
            c += m;
            if (*c == ',')
                c++;
        }
    } else {
        f[n++] = fh("req", "-", NULL);
    }
    return n;
}

static void tag_name(const cs_slots *s, int tag, char *buf, size_t cap)
{
    if (tag <= 0)
        snprintf(buf, cap, "O");
    else
        snprintf(buf, cap, "%c-%s", (tag - 1) % 2 ? 'I' : 'B', s->types[(tag - 1) / 2]);
}

static int best_tag(const cs_slots *s, const float *w, const uint32_t *f, size_t nf, int prev)
{
    double sc[2 * MAX_TYPES + 1] = {0};
    uint32_t mask = (1u << s->bits) - 1;
    for (size_t k = 0; k < nf; k++) {
        const float *row = w + (size_t)(f[k] & mask) * s->n_tags;
        for (size_t t = 0; t < s->n_tags; t++)
            sc[t] += row[t];
    }
    int best = 0;
    for (size_t t = 1; t < s->n_tags; t++) {
        /* I-x may only follow B-x or I-x */
        if ((t - 1) % 2 == 1 && !(prev > 0 && (size_t)(prev - 1) / 2 == (t - 1) / 2))
            continue;
        if (sc[t] > sc[best])
            best = (int)t;
    }
    return best;
}

static lp_status gold_tags(const cs_slots *s, const sent *S, const cs_entities *sp, int *g,
                           size_t item, lp_err *err)
{
    for (size_t i = 0; i < S->n; i++)
        g[i] = 0;
    for (size_t k = 0; k < sp->n; k++) {
        size_t ty = 0;
        while (ty < s->n_types && strcmp(s->types[ty], sp->v[k].type))
            ty++;
        if (ty == s->n_types)
            return lp_err_set(err, LP_EINVAL, "row %zu: unknown slot '%s'", item, sp->v[k].type);
        bool first = true;
        for (size_t i = 0; i < S->n; i++)
            if (S->t[i].s < sp->v[k].end && sp->v[k].start < S->t[i].e) {
                g[i] = (int)(1 + 2 * ty + (first ? 0 : 1));
                first = false;
            }
    }
    return LP_OK;
}

lp_status cs_slots_train(const char *const *texts, const char *const *spans,
                         const char *const *context, size_t n, const cs_slots_opts *o,
                         cs_slots **out, lp_err *err)
{
    cs_slots_opts opt = o ? *o : cs_slots_opts_default();
    *out = NULL;
    if (opt.hash_bits < 10 || opt.hash_bits > 24 || opt.epochs < 1 || opt.epochs > 100)
        return lp_err_set(err, LP_EINVAL,
                          "slots options: hash_bits must be in [10, 24] and "
                          "epochs in [1, 100]");
    cs_slots *s = lp_calloc(1, sizeof(*s));
    sent *S = lp_calloc(1, sizeof(*S));
    cs_entities *sp = lp_calloc(n ? n : 1, sizeof(cs_entities));
    lp_status st = LP_OK;
    float *u = NULL;
    size_t *order = NULL;
    if (!s || !S || !sp || !(s->types = lp_calloc(MAX_TYPES, sizeof(char *)))) {
        st = lp_err_set(err, LP_ENOMEM, "slots: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(texts[i]);
        if ((st = cs_spans_parse(spans[i], texts[i], len, &sp[i], err)) != LP_OK) {
            lp_err_prefix(err, "slots row %zu: ", i + 1);
            goto done;
        }
        for (size_t k = 0; k < sp[i].n; k++) {
            size_t ty = 0;
            while (ty < s->n_types && strcmp(s->types[ty], sp[i].v[k].type))
                ty++;
            if (ty == s->n_types) {
                if (s->n_types == MAX_TYPES) {
                    st = lp_err_set(err, LP_EINVAL, "slots: more than %d slot types", MAX_TYPES);
                    goto done;
                }
                if (!(s->types[s->n_types++] = lp_strdup(sp[i].v[k].type))) {
                    st = lp_err_set(err, LP_ENOMEM, "slots: out of memory");
                    goto done;
                }
            }
        }
    }
    if (s->n_types == 0) {
        st = lp_err_set(err, LP_EINVAL, "slots: no labelled span in %zu rows", n);
        goto done;
    }
    s->n_tags = 1 + 2 * s->n_types;
    s->bits = opt.hash_bits;
    size_t rows = (size_t)1 << s->bits;
    s->w = lp_calloc(rows * s->n_tags, sizeof(float));
    u = lp_calloc(rows * s->n_tags, sizeof(float));
    order = lp_mallocarray(n, sizeof(size_t));
    if (!s->w || !u || !order) {
        st = lp_err_set(err, LP_ENOMEM, "slots: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    lp_rng rng;
    lp_rng_seed(&rng, opt.seed);
    uint32_t mask = (uint32_t)rows - 1;
    double c = 1; /* update counter for averaging: avg = w - u / c */
    int g[MAX_TOK];
    uint32_t f[MAX_FEATS];
    for (unsigned ep = 0; ep < opt.epochs; ep++) {
        lp_rng_shuffle_idx(&rng, order, n);
        for (size_t a = 0; a < n; a++) {
            size_t i = order[a];
            prepare(S, texts[i], strlen(texts[i]), context ? context[i] : NULL);
            if ((st = gold_tags(s, S, &sp[i], g, i + 1, err)) != LP_OK)
                goto done;
            int prev = 0;
            for (size_t t = 0; t < S->n; t++) {
                char pn[48];
                tag_name(s, prev, pn, sizeof(pn));
                size_t nf = features(S, t, pn, f);
                int p = best_tag(s, s->w, f, nf, prev);
                if (p != g[t])
                    for (size_t k = 0; k < nf; k++) {
                        size_t r = (size_t)(f[k] & mask) * s->n_tags;
                        s->w[r + (size_t)g[t]] += 1;
                        s->w[r + (size_t)p] -= 1;
                        u[r + (size_t)g[t]] += (float)c;
                        u[r + (size_t)p] -= (float)c;
                    }
                c++;
                prev = p;
            }
        }
    }
    for (size_t k = 0; k < rows * s->n_tags; k++)
        s->w[k] -= (float)(u[k] / c);
    *out = s;
    s = NULL;
done:
    for (size_t i = 0; sp && i < n; i++)
        cs_entities_clear(&sp[i]);
    free(sp);
    free(S);
    free(u);
    free(order);
    cs_slots_free(s);
    return st;
}

lp_status cs_slots_tag(const cs_slots *s, const char *text, size_t len, const char *context,
                       cs_entities *out, lp_err *err)
{
    if (lp_utf8_check(text, len, "text", err) != LP_OK)
        return LP_EPARSE;
    sent *S = lp_calloc(1, sizeof(*S));
    if (!S)
        return lp_err_set(err, LP_ENOMEM, "slots: out of memory");
    prepare(S, text, len, context);
    uint32_t f[MAX_FEATS];
    int prev = 0;
    long open_ty = -1;
    size_t open_s = 0, open_e = 0;
    lp_status st = LP_OK;
    for (size_t t = 0; t <= S->n && st == LP_OK; t++) {
        int p = 0;
        if (t < S->n) {
            char pn[48];
            tag_name(s, prev, pn, sizeof(pn));
            size_t nf = features(S, t, pn, f);
            p = best_tag(s, s->w, f, nf, prev);
        }
        bool cont = p > 0 && (p - 1) % 2 == 1 && open_ty == (p - 1) / 2;
        if (!cont && open_ty >= 0) {
            if (cs_entities_push(out, s->types[open_ty], text, open_s, open_e) != LP_OK)
                st = lp_err_set(err, LP_ENOMEM, "slots: out of memory");
            open_ty = -1;
        }
        if (p > 0 && !cont) {
            open_ty = (p - 1) / 2;
            open_s = S->t[t].s;
        }
        if (p > 0)
            open_e = S->t[t].e;
        prev = p;
    }
    free(S);
    return st;
}

void cs_slots_save(const cs_slots *s, lp_buf *b)
{
    lp_buf_put(b, SLOTS_MAGIC, 4);
    lp_buf_u32(b, SLOTS_VERSION);
    lp_buf_u32(b, (uint32_t)s->n_types);
    for (size_t k = 0; k < s->n_types; k++)
        lp_buf_str(b, s->types[k]);
    lp_buf_u32(b, s->bits);
    size_t cnt = ((size_t)1 << s->bits) * s->n_tags;
    lp_buf_put(b, s->w, cnt * sizeof(float));
    lp_buf_u32(b, lp_crc32(0, s->w, cnt * sizeof(float)));
}

lp_status cs_slots_load(lp_reader *r, cs_slots **out, lp_err *err)
{
    *out = NULL;
    char magic[4];
    uint32_t ver, nt, bits, crc;
    lp_status st = lp_reader_get(r, magic, 4, err);
    if (st != LP_OK)
        return st;
    if (memcmp(magic, SLOTS_MAGIC, 4))
        return lp_err_set(err, LP_EFORMAT, "%s: not a slot tagger (bad magic)", r->what);
    if ((st = lp_reader_u32(r, &ver, err)) != LP_OK)
        return st;
    if (ver != SLOTS_VERSION)
        return lp_err_set(err, LP_EVERSION, "%s: slot tagger version %u, expected %u", r->what, ver,
                          SLOTS_VERSION);
    if ((st = lp_reader_u32(r, &nt, err)) != LP_OK)
        return st;
    if (nt == 0 || nt > MAX_TYPES)
        return lp_err_set(err, LP_EFORMAT, "%s: %u slot types (1..%d)", r->what, nt, MAX_TYPES);
    cs_slots *s = lp_calloc(1, sizeof(*s));
    if (!s || !(s->types = lp_calloc(nt, sizeof(char *)))) {
        free(s);
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
    }
    for (; s->n_types < nt; s->n_types++)
        if ((st = lp_reader_str(r, &s->types[s->n_types], 31, err)) != LP_OK ||
            !s->types[s->n_types])
            goto fail;
    s->n_tags = 1 + 2 * nt;
    if ((st = lp_reader_u32(r, &bits, err)) != LP_OK)
        goto fail;
    if (bits < 10 || bits > 24) {
        st = lp_err_set(err, LP_EFORMAT, "%s: hash_bits %u outside [10, 24]", r->what, bits);
        goto fail;
    }
    s->bits = bits;
    size_t cnt = ((size_t)1 << bits) * s->n_tags;
    if (cnt * sizeof(float) > r->len - r->pos) { /* before allocating: a short input says so */
        st = lp_err_set(err, LP_EFORMAT, "%s: %zu slot weights announced, %zu bytes left",
                        r->what, cnt, r->len - r->pos);
        goto fail;
    }
    if (!(s->w = lp_mallocarray(cnt, sizeof(float)))) {
        st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
        goto fail;
    }
    if ((st = lp_reader_get(r, s->w, cnt * sizeof(float), err)) != LP_OK ||
        (st = lp_reader_u32(r, &crc, err)) != LP_OK)
        goto fail;
    if (crc != lp_crc32(0, s->w, cnt * sizeof(float))) {
        st = lp_err_set(err, LP_EFORMAT, "%s: slot weights fail their CRC", r->what);
        goto fail;
    }
    *out = s;
    return LP_OK;
fail:
    if (st == LP_OK)
        st = lp_err_set(err, LP_EFORMAT, "%s: missing slot type name", r->what);
    cs_slots_free(s);
    return st;
}

lp_status cs_slots_evaluate(const cs_slots *s, const char *const *texts, const char *const *spans,
                            const char *const *context, size_t n, cs_slot_eval *micro,
                            cs_slot_eval *per, lp_err *err)
{
    memset(micro, 0, sizeof(*micro));
    if (per)
        memset(per, 0, s->n_types * sizeof(*per));
    for (size_t i = 0; i < n; i++) {
        cs_entities gold = {0}, pred = {0};
        size_t len = strlen(texts[i]);
        lp_status st = cs_spans_parse(spans[i], texts[i], len, &gold, err);
        if (st == LP_OK)
            st = cs_slots_tag(s, texts[i], len, context ? context[i] : NULL, &pred, err);
        if (st != LP_OK) {
            lp_err_prefix(err, "row %zu: ", i + 1);
            cs_entities_clear(&gold);
            cs_entities_clear(&pred);
            return st;
        }
        for (int side = 0; side < 2; side++) {
            const cs_entities *a = side ? &gold : &pred, *b = side ? &pred : &gold;
            for (size_t k = 0; k < a->n; k++) {
                bool hit = false;
                for (size_t q = 0; q < b->n && !hit; q++)
                    hit = a->v[k].start == b->v[q].start && a->v[k].end == b->v[q].end &&
                          !strcmp(a->v[k].type, b->v[q].type);
                size_t ty = 0;
                while (ty < s->n_types && strcmp(s->types[ty], a->v[k].type))
                    ty++;
                cs_slot_eval *pe = per && ty < s->n_types ? &per[ty] : NULL;
                if (side == 0) {
                    if (hit) {
                        micro->tp++;
                        if (pe)
                            pe->tp++;
                    } else {
                        micro->fp++;
                        if (pe)
                            pe->fp++;
                    }
                } else if (!hit) {
                    micro->fn++;
                    if (pe)
                        pe->fn++;
                }
            }
        }
        cs_entities_clear(&gold);
        cs_entities_clear(&pred);
    }
    for (size_t k = 0; k <= (per ? s->n_types : 0); k++) {
        cs_slot_eval *e = k == 0 ? micro : &per[k - 1];
        e->precision = e->tp + e->fp ? (double)e->tp / (double)(e->tp + e->fp) : 0;
        e->recall = e->tp + e->fn ? (double)e->tp / (double)(e->tp + e->fn) : 0;
        e->f1 = e->tp ? 2 * e->precision * e->recall / (e->precision + e->recall) : 0;
    }
    return LP_OK;
}
