/*
 * cs_slots.c - trainable slot tagger: a first-order linear-chain model over BIO tags, decoded
 * exactly by Viterbi under the BIO constraint (I-x only after B-x or I-x). Two trainers:
 * a CRF (Lafferty et al. 2001) fitted by SGD on the L2-penalised log-likelihood with
 * forward-backward marginals (the default: it won on validation data carved from train), and
 * an averaged structured perceptron (Collins 2002: decode, add the gold sequence's features,
 * subtract the predicted one's, average every weight over all steps).
 * A sequence y of n tags over tokens x scores
 *     score(y) = sum_t trans[y_{t-1}][y_t] + emit_t[y_t],   y_{-1} = START,
 *     emit_t[y] = sum_{f in F(x, t)} w[f][y],
 * where F(x, t) are hashed (MurmurHash3) observation features of token t: lower-cased word,
 * shape, prefixes and suffixes, a +-2 window with word bigrams, the `requested_slots` context,
 * and a gazetteer learned from the training spans (tokens seen inside spans of a label, built
 * leave-one-out on the training rows). The table has 2^hash_bits rows, one weight per tag, so
 * no vocabulary is stored; the gazetteer is a hashed bit set per label.
 * Tokens are runs of letters/digits (any non-ASCII byte counts as a letter) or single other
 * non-space characters, at most MAX_TOK per text (later ones get no span); spans are UTF-8 byte
 * offsets, END exclusive. Two types on the very same span get a pair label that emits both.
 * Does not: nested or partly overlapping spans (the shorter one wins in training), spans that
 * start or end inside a token.
 * Invariants: tags are 0 = O, 1 + 2k = B-label k, 2 + 2k = I-label k; trans is
 * (n_tags + 1, n_tags) with row n_tags the START state; a decoded sequence never holds I-x
 * after anything but B-x or I-x, so spans are read off it without repair. A fitted tagger is
 * immutable: tagging is thread-safe.
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs.h"

#define SLOTS_MAGIC "CSSL"
/* 1: greedy perceptron with previous-tag features (no transition table); 2: linear chain. */
#define SLOTS_VERSION 2u
#define MAX_TYPES 128 /* slot types, and labels (types plus pairs on one span) */
#define GAZ_WORDS (MAX_TYPES / 64)
#define MAX_TOK 512
#define MAX_FEATS 96
#define GAZ_BITS 16 /* gazetteer bit set per slot: 2^16 bits, 8 KiB */

/* Labels: the n_types slot types, then n_labels - n_types pair labels, one for each pair of
 * types the training data puts on the very same span (restaurant8k marks "in an hour" and "now"
 * both date and time). A pair label is tagged like any other and emits both spans. */
struct cs_slots {
    size_t n_types, n_labels, n_tags; /* n_tags = 1 + 2 * n_labels */
    char **types;                     /* (n_types) */
    uint32_t *pair;                   /* (n_labels - n_types, 2) type indices, first < second */
    unsigned bits;
    float *w;     /* (2^bits, n_tags) observation weights */
    float *trans; /* (n_tags + 1, n_tags) transition weights, row n_tags = START */
    uint8_t *gaz; /* (n_labels, 2^GAZ_BITS / 8) bit sets of lower-cased span tokens */
};

/* Chosen by 4-fold cross-validation on restaurant8k's train.tsv (pooled micro-F1; the test
 * file never used): CRF 0.950 against the perceptron's 0.949 (15 epochs each); for the CRF,
 * l2 0.3 over {0.1, 0.3, 1}, learning rate 0.1 over {0.03, 0.1, 0.2, 0.3}, 15 epochs over
 * {10, 15, 20}; 2^18 rows matched 2^20. */
cs_slots_opts cs_slots_opts_default(void)
{
    return (cs_slots_opts){.trainer = CS_SLOTS_TRAINER_CRF,
                           .epochs = 15,
                           .hash_bits = 18,
                           .seed = 42,
                           .l2 = 0.3,
                           .learning_rate = 0.1};
}

lp_status cs_slots_opts_check(const cs_slots_opts *o, lp_err *err)
{
    if (o->trainer != CS_SLOTS_TRAINER_PERCEPTRON && o->trainer != CS_SLOTS_TRAINER_CRF)
        return lp_err_set(err, LP_EINVAL, "slots options: trainer %d is neither perceptron nor crf",
                          (int)o->trainer);
    if (o->hash_bits < 10 || o->hash_bits > 24 || o->epochs < 1 || o->epochs > 100)
        return lp_err_set(err, LP_EINVAL,
                          "slots options: hash_bits %u must be in [10, 24] and "
                          "epochs %u in [1, 100]",
                          o->hash_bits, o->epochs);
    if (!(o->l2 >= 0 && o->l2 < 1e6) || !(o->learning_rate > 0 && o->learning_rate <= 10))
        return lp_err_set(err, LP_EINVAL,
                          "slots options: l2 %g must be in [0, 1e6) and "
                          "learning_rate %g in (0, 10]",
                          o->l2, o->learning_rate);
    return LP_OK;
}

void cs_slots_free(cs_slots *s)
{
    if (!s)
        return;
    for (size_t k = 0; k < s->n_types; k++)
        free(s->types[k]);
    free(s->types);
    free(s->pair);
    free(s->w);
    free(s->trans);
    free(s->gaz);
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
                              "(SLOT one word, no spaces) with 0 <= START < END <= %zu",
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
    uint64_t gaz[MAX_TOK][GAZ_WORDS]; /* bit k: the token is in label k's gazetteer */
    const char *ctx;
} sent;

static uint32_t gaz_hash(const char *low)
{
    return lp_murmur3_32(low, strlen(low), 0x6a2u) & ((1u << GAZ_BITS) - 1);
}

static bool gaz_has(const uint8_t *set, uint32_t h)
{
    return set[h >> 3] & (1u << (h & 7));
}

static void prepare(sent *S, const char *text, size_t len, const char *ctx)
{
    S->text = text;
    S->n = tokenize(text, len, S->t, MAX_TOK);
    S->ctx = ctx && strcmp(ctx, "-") && ctx[0] ? ctx : NULL;
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
        memset(S->gaz[i], 0, sizeof S->gaz[i]);
    }
}

/* Gazetteer bits of every token from the model's sets. */
static void prepare_gaz(sent *S, const cs_slots *s)
{
    for (size_t i = 0; i < S->n; i++) {
        uint32_t h = gaz_hash(S->low[i]);
        for (size_t k = 0; k < s->n_labels; k++)
            if (gaz_has(s->gaz + k * ((1u << GAZ_BITS) / 8), h))
                S->gaz[i][k / 64] |= (uint64_t)1 << (k % 64);
    }
}

/* Append s to buf[*q..cap - 1) (truncating; buf is not terminated). */
static void put_str(char *buf, size_t cap, size_t *q, const char *s)
{
    size_t l = strlen(s), room = cap - 1 - *q;
    if (l > room)
        l = room;
    memcpy(buf + *q, s, l);
    *q += l;
}

/* The hash of "a\x1f" "b\x1f" "c" cut to 159 bytes (what snprintf into 160 bytes gave: the
 * trained weights are indexed by these hashes, so the bytes must not change). Written by hand:
 * snprintf was a tenth of a chat turn. */
static uint32_t fh(const char *a, const char *b, const char *c)
{
    char buf[160];
    size_t q = 0;
    put_str(buf, sizeof(buf), &q, a);
    put_str(buf, sizeof(buf), &q, "\x1f");
    put_str(buf, sizeof(buf), &q, b ? b : "");
    put_str(buf, sizeof(buf), &q, "\x1f");
    put_str(buf, sizeof(buf), &q, c ? c : "");
    return lp_murmur3_32(buf, q, 0x5107u);
}

/* Gazetteer membership of token j as a short string: "" when none, else the slot indices, each
 * followed by a dot ("3.17."). */
static void gaz_str(const sent *S, size_t j, bool in, char *buf, size_t cap)
{
    size_t q = 0;
    buf[0] = 0;
    if (!in)
        return;
    for (size_t k = 0; k < MAX_TYPES && q + 4 < cap; k++)
        if (S->gaz[j][k / 64] & ((uint64_t)1 << (k % 64))) {
            char t[4];
            size_t m = 0;
            if (k >= 100)
                t[m++] = (char)('0' + k / 100);
            if (k >= 10)
                t[m++] = (char)('0' + k / 10 % 10);
            t[m++] = (char)('0' + k % 10);
            t[m++] = '.';
            memcpy(buf + q, t, m); /* fits: q + 4 < cap */
            q += m;
            buf[q] = 0;
        }
}

/* Hashed observation features of token i (no tag information). Returns the count. */
static size_t features(const sent *S, size_t i, uint32_t *f)
{
    size_t n = 0;
    const char *w = S->low[i];
    const char *wp = i > 0 ? S->low[i - 1] : "<s>", *wn = i + 1 < S->n ? S->low[i + 1] : "</s>";
    const char *wp2 = i > 1 ? S->low[i - 2] : "<s>", *wn2 = i + 2 < S->n ? S->low[i + 2] : "</s>";
    const char *wp3 = i > 2 ? S->low[i - 3] : "<s>";
    const char *sp = i > 0 ? S->shape[i - 1] : "<s>", *sn = i + 1 < S->n ? S->shape[i + 1] : "</s>";
    const char *sh = S->shape[i];
    char pre[5][8], suf[5][8];
    size_t l = strlen(w);
    for (size_t k = 1; k <= 4; k++) {
        size_t m = k < l ? k : l; /* the first and last m bytes of w */
        memcpy(pre[k], w, m);
        pre[k][m] = 0;
        memcpy(suf[k], w + l - m, m);
        suf[k][m] = 0;
    }
    /* utterance length bucket (0-3, 4 or 8): short answers to a question behave apart */
    char len_b[2] = {(char)('0' + (S->n < 4 ? S->n : S->n < 8 ? 4 : 8)), 0};
    f[n++] = fh("bias", NULL, NULL);
    f[n++] = fh("w", w, NULL);
    f[n++] = fh("sh", sh, NULL);
    f[n++] = fh("w-1", wp, NULL);
    f[n++] = fh("w+1", wn, NULL);
    f[n++] = fh("w-2", wp2, NULL);
    f[n++] = fh("w+2", wn2, NULL);
    f[n++] = fh("sh-1", sp, NULL);
    f[n++] = fh("sh+1", sn, NULL);
    f[n++] = fh("w-1w", wp, w);
    f[n++] = fh("ww+1", w, wn);
    f[n++] = fh("w-1w+1", wp, wn);
    f[n++] = fh("w-2w-1", wp2, wp);
    f[n++] = fh("w-3w", wp3, w); /* "12 : 30 pm": the hour decides whether pm is in the span */
    f[n++] = fh("w+1w+2", wn, wn2);
    f[n++] = fh("shsh+1", sh, sn);
    f[n++] = fh("sh-1sh", sp, sh);
    for (size_t k = 1; k <= 4; k++) {
        f[n++] = fh("pre", pre[k], NULL);
        f[n++] = fh("suf", suf[k], NULL);
    }
    f[n++] = fh("first", i == 0 ? "1" : "0", sh);
    f[n++] = fh("last", i + 1 == S->n ? "1" : "0", sh);
    f[n++] = fh("len", len_b, sh);
    f[n++] = fh("w-1sh", wp, sh);
    f[n++] = fh("shw+1", sh, wn);
    f[n++] = fh("w-2sh", wp2, sh);
    f[n++] = fh("suf-1", sp, suf[2]);
    char g0[200], gp[200], gn[200];
    gaz_str(S, i, true, g0, sizeof(g0));
    gaz_str(S, i - 1, i > 0, gp, sizeof(gp));
    gaz_str(S, i + 1, i + 1 < S->n, gn, sizeof(gn));
    f[n++] = fh("gaz", g0, NULL);
    f[n++] = fh("gazsh", g0, sh);
    f[n++] = fh("gaz-1", gp, g0);
    f[n++] = fh("gaz+1", g0, gn);
    f[n++] = fh("gazw-1", g0, wp);
    if (S->ctx) {
        char one[32];
        const char *c = S->ctx;
        while (*c && n + 8 <= MAX_FEATS) {
            size_t m = strcspn(c, ",");
            memcpy(one, c, m < 31 ? m : 31);
            one[m < 31 ? m : 31] = 0;
            f[n++] = fh("req", one, NULL);
            f[n++] = fh("reqsh", one, sh);
            f[n++] = fh("reqw", one, w);
            f[n++] = fh("reqw-1", one, wp);
            f[n++] = fh("reqw+1", one, wn);
            f[n++] = fh("reqlen", one, len_b);
            f[n++] = fh("reqgaz", one, g0);
            c += m;
            if (*c == ',')
                c++;
        }
    } else {
        f[n++] = fh("req", "-", NULL);
    }
    return n;
}

/* emit (n, n_tags) = sum of the weight rows of each token's features. */
static void emissions(const cs_slots *s, const uint32_t *const *f, const size_t *nf, size_t n,
                      double *emit)
{
    uint32_t mask = (1u << s->bits) - 1;
    for (size_t t = 0; t < n; t++) {
        double *e = emit + t * s->n_tags;
        for (size_t y = 0; y < s->n_tags; y++)
            e[y] = 0;
        for (size_t k = 0; k < nf[t]; k++) {
            const float *row = s->w + (size_t)(f[t][k] & mask) * s->n_tags;
            for (size_t y = 0; y < s->n_tags; y++)
                e[y] += row[y];
        }
    }
}

bool cs_slots_bio_allowed(size_t n_types, size_t prev, size_t tag)
{
    size_t n_tags = 1 + 2 * n_types;
    if (tag == 0 || tag >= n_tags || (tag - 1) % 2 == 0)
        return tag < n_tags;
    return prev > 0 && prev < n_tags && (prev - 1) / 2 == (tag - 1) / 2;
}

lp_status cs_slots_viterbi(const double *emit, const float *trans, size_t n, size_t n_types,
                           int *tags, double *score, lp_err *err)
{
    size_t T = 1 + 2 * n_types;
    if (score)
        *score = 0;
    if (n == 0)
        return LP_OK;
    if (n_types == 0 || n_types > MAX_TYPES)
        return lp_err_set(err, LP_EINVAL, "viterbi: %zu slot types (1..%d)", n_types, MAX_TYPES);
    double *delta = lp_mallocarray(2 * T, sizeof(double));
    int *back = lp_mallocarray(n * T, sizeof(int));
    if (!delta || !back) {
        free(delta);
        free(back);
        return lp_err_set(err, LP_ENOMEM, "viterbi: out of memory for %zu tokens", n);
    }
    double *cur = delta, *nxt = delta + T;
    /* position 0: from START; a forbidden tag scores -inf and never wins */
    for (size_t y = 0; y < T; y++) {
        cur[y] = cs_slots_bio_allowed(n_types, T, y) ? 0.0 + trans[T * T + y] + emit[y] : -INFINITY;
        back[y] = -1;
    }
    for (size_t t = 1; t < n; t++) {
        for (size_t y = 0; y < T; y++) {
            double best = -INFINITY;
            int arg = -1;
            for (size_t p = 0; p < T; p++) {
                if (!cs_slots_bio_allowed(n_types, p, y))
                    continue;
                double c = cur[p] + trans[p * T + y];
                if (arg < 0 || c > best) {
                    best = c;
                    arg = (int)p;
                }
            }
            nxt[y] = arg < 0 ? -INFINITY : best + emit[t * T + y];
            back[t * T + y] = arg;
        }
        double *sw = cur;
        cur = nxt;
        nxt = sw;
    }
    size_t y = 0;
    for (size_t k = 1; k < T; k++)
        if (cur[k] > cur[y])
            y = k;
    if (score)
        *score = cur[y];
    for (size_t t = n; t-- > 0;) {
        tags[t] = (int)y;
        if (t > 0)
            y = (size_t)back[t * T + y];
    }
    free(delta);
    free(back);
    return LP_OK;
}

static long type_index(const cs_slots *s, const char *type)
{
    for (size_t k = 0; k < s->n_types; k++)
        if (!strcmp(s->types[k], type))
            return (long)k;
    return -1;
}

/* Index of the pair label of types a != b, or -1. */
static long pair_index(const cs_slots *s, size_t a, size_t b)
{
    uint32_t lo = (uint32_t)(a < b ? a : b), hi = (uint32_t)(a < b ? b : a);
    for (size_t k = 0; k < s->n_labels - s->n_types; k++)
        if (s->pair[2 * k] == lo && s->pair[2 * k + 1] == hi)
            return (long)(s->n_types + k);
    return -1;
}

/* The partner of span k: another span on the same bytes with a different known type. */
static size_t span_partner(const cs_slots *s, const cs_entities *sp, size_t k, const bool *done)
{
    for (size_t q = 0; q < sp->n; q++)
        if (q != k && !done[q] && sp->v[q].start == sp->v[k].start &&
            sp->v[q].end == sp->v[k].end && strcmp(sp->v[q].type, sp->v[k].type) &&
            type_index(s, sp->v[q].type) >= 0)
            return q;
    return sp->n;
}

/* Gold BIO tags of a sentence. Spans may overlap in the data (restaurant8k labels "in an
 * hour" both date and time, "8:45 tonight" time around the date "tonight"): longer spans are
 * laid down first and shorter ones over them, then an I-x left behind a different tag becomes
 * B-x, so the sequence is BIO-valid and reachable by the decoder. */
static lp_status gold_tags(const cs_slots *s, const sent *S, const cs_entities *sp, int *g,
                           size_t item, lp_err *err)
{
    for (size_t i = 0; i < S->n; i++)
        g[i] = 0;
    bool *done = sp->n ? lp_calloc(sp->n, sizeof(bool)) : NULL;
    if (sp->n && !done)
        return lp_err_set(err, LP_ENOMEM, "slots: out of memory");
    for (size_t round = 0; round < sp->n; round++) {
        size_t k = sp->n;
        for (size_t q = 0; q < sp->n; q++)
            if (!done[q] &&
                (k == sp->n || sp->v[q].end - sp->v[q].start > sp->v[k].end - sp->v[k].start))
                k = q;
        if (k == sp->n) /* every span laid (pairs take two) */
            break;
        done[k] = true;
        long ty = type_index(s, sp->v[k].type);
        if (ty < 0) {
            free(done);
            return lp_err_set(err, LP_EINVAL, "row %zu: unknown slot '%s'", item, sp->v[k].type);
        }
        size_t q = span_partner(s, sp, k, done);
        long pl = q < sp->n ? pair_index(s, (size_t)ty, (size_t)type_index(s, sp->v[q].type)) : -1;
        if (pl >= 0) {
            done[q] = true;
            ty = pl;
        }
        bool first = true;
        for (size_t i = 0; i < S->n; i++)
            if (S->t[i].s < sp->v[k].end && sp->v[k].start < S->t[i].e) {
                g[i] = (int)(1 + 2 * (size_t)ty + (first ? 0 : 1));
                first = false;
            }
    }
    free(done);
    for (size_t i = 0; i < S->n; i++)
        if (!cs_slots_bio_allowed(s->n_labels, i ? (size_t)g[i - 1] : s->n_tags, (size_t)g[i]))
            g[i]--;
    return LP_OK;
}

/* Training corpus: every sentence's token features computed once. */
typedef struct corpus {
    size_t n_sent, n_tok, n_feat;
    size_t *sent_off; /* (n_sent + 1) into tokens */
    size_t *tok_off;  /* (n_tok + 1) into feats */
    uint32_t *feats;  /* (n_feat) */
    int *gold;        /* (n_tok) */
} corpus;

static void corpus_free(corpus *C)
{
    free(C->sent_off);
    free(C->tok_off);
    free(C->feats);
    free(C->gold);
}

static bool grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (!q)
        return false;
    *p = q;
    *cap = c;
    return true;
}

/* Leave-one-out gazetteer counts: cnt (n_types, 2^GAZ_BITS) holds in how many training
 * sentences a lower-cased token appears inside a span of slot k. A training sentence sees the
 * set built from the OTHER sentences (count minus its own), so the feature is as reliable on
 * training rows as it will be on new text; the saved set is count > 0. */
static void sent_gaz_keys(const cs_slots *s, const sent *S, const int *g, uint32_t *keys,
                          size_t *nk)
{
    *nk = 0;
    for (size_t i = 0; i < S->n; i++) {
        if (g[i] <= 0)
            continue;
        uint32_t key = (uint32_t)((size_t)(g[i] - 1) / 2 << GAZ_BITS) | gaz_hash(S->low[i]);
        /* labels < 128 and GAZ_BITS = 16: the key fits 23 bits */
        bool seen = false;
        for (size_t q = 0; q < *nk && !seen; q++)
            seen = keys[q] == key;
        if (!seen)
            keys[(*nk)++] = key;
    }
    (void)s;
}

static lp_status build_corpus(cs_slots *s, const char *const *texts, const cs_entities *sp,
                              const char *const *context, size_t n, corpus *C, lp_err *err)
{
    size_t rows = (size_t)1 << GAZ_BITS, cap_t = 0, cap_f = 0;
    uint32_t *cnt = lp_calloc(s->n_labels * rows, sizeof(uint32_t));
    sent *S = lp_calloc(1, sizeof(*S));
    int *g = lp_mallocarray(MAX_TOK, sizeof(int));
    uint32_t *keys = lp_mallocarray(MAX_TOK, sizeof(uint32_t)), f[MAX_FEATS];
    lp_status st = LP_OK;
    memset(C, 0, sizeof(*C));
    C->n_sent = n;
    C->sent_off = lp_calloc(n + 1, sizeof(size_t));
    s->gaz = lp_calloc(s->n_labels, rows / 8);
    if (!cnt || !S || !g || !keys || !C->sent_off || !s->gaz) {
        st = lp_err_set(err, LP_ENOMEM, "slots: out of memory");
        goto done;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            prepare(S, texts[i], strlen(texts[i]), context ? context[i] : NULL);
            if ((st = gold_tags(s, S, &sp[i], g, i + 1, err)) != LP_OK)
                goto done;
            size_t nk;
            sent_gaz_keys(s, S, g, keys, &nk);
            if (pass == 0) {
                for (size_t q = 0; q < nk; q++)
                    cnt[keys[q]]++;
                continue;
            }
            for (size_t t = 0; t < S->n; t++) {
                uint32_t h = gaz_hash(S->low[t]);
                for (size_t k = 0; k < s->n_labels; k++) {
                    uint32_t key = (uint32_t)(k << GAZ_BITS) | h, own = 0;
                    for (size_t q = 0; q < nk; q++)
                        own += keys[q] == key;
                    if (cnt[key] > own)
                        S->gaz[t][k / 64] |= (uint64_t)1 << (k % 64);
                }
            }
            size_t cap_t0 = cap_t;
            if (!grow((void **)&C->tok_off, &cap_t, C->n_tok + S->n + 1, sizeof(size_t)) ||
                !grow((void **)&C->gold, &cap_t0, cap_t, sizeof(int))) {
                st = lp_err_set(err, LP_ENOMEM, "slots: out of memory");
                goto done;
            }
            for (size_t t = 0; t < S->n; t++) {
                size_t nf = features(S, t, f);
                if (!grow((void **)&C->feats, &cap_f, C->n_feat + nf, sizeof(uint32_t))) {
                    st = lp_err_set(err, LP_ENOMEM, "slots: out of memory");
                    goto done;
                }
                C->tok_off[C->n_tok] = C->n_feat;
                memcpy(C->feats + C->n_feat, f, nf * sizeof(uint32_t));
                C->n_feat += nf;
                C->gold[C->n_tok++] = g[t];
            }
            C->sent_off[i + 1] = C->n_tok;
        }
    }
    if (C->tok_off)
        C->tok_off[C->n_tok] = C->n_feat;
    for (size_t k = 0; k < s->n_labels * rows; k++)
        if (cnt[k])
            s->gaz[k >> 3] |= (uint8_t)(1u << (k & 7));
done:
    free(cnt);
    free(S);
    free(g);
    free(keys);
    return st;
}

/* One averaged-perceptron step on sentence i (Collins 2002): Viterbi under the current
 * weights; where the prediction differs from gold, +1 to gold features/transitions and -1 to
 * predicted ones, with u accumulating c * update so that the average is w - u / c. */
static lp_status perceptron_step(cs_slots *s, const corpus *C, size_t i, double c, double *u,
                                 double *ut, double *emit, int *pred, const uint32_t **fp,
                                 size_t *nf, lp_err *err)
{
    size_t a = C->sent_off[i], n = C->sent_off[i + 1] - a, T = s->n_tags;
    if (n == 0)
        return LP_OK;
    for (size_t t = 0; t < n; t++) {
        fp[t] = C->feats + C->tok_off[a + t];
        nf[t] = C->tok_off[a + t + 1] - C->tok_off[a + t];
    }
    emissions(s, fp, nf, n, emit);
    lp_status st = cs_slots_viterbi(emit, s->trans, n, s->n_labels, pred, NULL, err);
    if (st != LP_OK)
        return st;
    uint32_t mask = (1u << s->bits) - 1;
    const int *gold = C->gold + a;
    for (size_t t = 0; t < n; t++) {
        size_t pg = t ? (size_t)gold[t - 1] : T, pp = t ? (size_t)pred[t - 1] : T;
        size_t yg = (size_t)gold[t], yp = (size_t)pred[t];
        if (pg != pp || yg != yp) {
            s->trans[pg * T + yg] += 1;
            s->trans[pp * T + yp] -= 1;
            ut[pg * T + yg] += c;
            ut[pp * T + yp] -= c;
        }
        if (yg == yp)
            continue;
        for (size_t k = 0; k < nf[t]; k++) {
            size_t r = (size_t)(fp[t][k] & mask) * T;
            s->w[r + yg] += 1;
            s->w[r + yp] -= 1;
            u[r + yg] += c;
            u[r + yp] -= c;
        }
    }
    return LP_OK;
}

lp_status cs_slots_forward_backward(const double *emit, const double *trans, size_t n,
                                    size_t n_labels, double *node, double *edge, double *logz,
                                    lp_err *err)
{
    size_t T = 1 + 2 * n_labels;
    *logz = 0;
    if (n_labels == 0 || n_labels > MAX_TYPES)
        return lp_err_set(err, LP_EINVAL, "forward-backward: %zu labels (1..%d)", n_labels,
                          MAX_TYPES);
    memset(edge, 0, (T + 1) * T * sizeof(double));
    if (n == 0)
        return LP_OK;
    double *beta = lp_mallocarray(n * T, sizeof(double)),
           *pot = lp_mallocarray(n * T, sizeof(double));
    double *c = lp_mallocarray(n, sizeof(double)),
           *tr = lp_mallocarray((T + 1) * T, sizeof(double));
    double *alpha = node; /* alpha lives in node until the marginals replace it */
    lp_status st = LP_OK;
    if (!beta || !pot || !c || !tr) {
        st = lp_err_set(err, LP_ENOMEM, "forward-backward: out of memory for %zu tokens", n);
        goto done;
    }
    for (size_t t = 0; t < n; t++) {
        double mx = -INFINITY;
        for (size_t y = 0; y < T; y++)
            mx = emit[t * T + y] > mx ? emit[t * T + y] : mx;
        for (size_t y = 0; y < T; y++)
            pot[t * T + y] = exp(emit[t * T + y] - mx);
        *logz += mx;
    }
    for (size_t p = 0; p <= T; p++)
        for (size_t y = 0; y < T; y++)
            tr[p * T + y] = cs_slots_bio_allowed(n_labels, p, y) ? exp(trans[p * T + y]) : 0;
    /* alpha_t(y) = p(y_t = y, x_0..t) / (c_0 ... c_t); beta_t such that alpha_t beta_t is the
     * marginal p(y_t = y | x) */
    for (size_t t = 0; t < n; t++) {
        double *al = alpha + t * T, sum = 0;
        for (size_t y = 0; y < T; y++) {
            double v = 0;
            if (t == 0)
                v = tr[T * T + y];
            else
                for (size_t p = 0; p < T; p++)
                    v += alpha[(t - 1) * T + p] * tr[p * T + y];
            al[y] = v * pot[t * T + y];
            sum += al[y];
        }
        if (!(sum > 0) || !isfinite(sum)) {
            st = lp_err_set(err, LP_ENUMERIC,
                            "forward-backward: scaling factor %g at token %zu (weights too large)",
                            sum, t);
            goto done;
        }
        c[t] = sum;
        for (size_t y = 0; y < T; y++)
            al[y] /= sum;
        *logz += log(sum);
    }
    for (size_t y = 0; y < T; y++)
        beta[(n - 1) * T + y] = 1;
    for (size_t t = n - 1; t-- > 0;)
        for (size_t p = 0; p < T; p++) {
            double v = 0;
            for (size_t y = 0; y < T; y++)
                v += tr[p * T + y] * pot[(t + 1) * T + y] * beta[(t + 1) * T + y];
            beta[t * T + p] = v / c[t + 1];
        }
    /* p(y_{t-1} = p, y_t = y | x) = alpha_{t-1}(p) tr(p, y) pot_t(y) beta_t(y) / c_t, before
     * alpha is overwritten (backwards, so alpha_{t-1} is still intact at step t) */
    for (size_t t = n; t-- > 0;) {
        if (t == 0)
            for (size_t y = 0; y < T; y++)
                edge[T * T + y] += alpha[y] * beta[y];
        else
            for (size_t p = 0; p < T; p++) {
                double ap = alpha[(t - 1) * T + p] / c[t];
                for (size_t y = 0; y < T; y++)
                    edge[p * T + y] += ap * tr[p * T + y] * pot[t * T + y] * beta[t * T + y];
            }
        for (size_t y = 0; y < T; y++)
            node[t * T + y] = alpha[t * T + y] * beta[t * T + y];
    }
done:
    free(beta);
    free(pot);
    free(c);
    free(tr);
    return st;
}

/* Scratch of one CRF step, sized for MAX_TOK tokens. */
typedef struct crf_work {
    double *node; /* (MAX_TOK, n_tags) marginals */
    double *edge; /* (n_tags + 1, n_tags) summed edge marginals */
    double *tr;   /* (n_tags + 1, n_tags) transitions scale * td */
} crf_work;

/* One stochastic-gradient step of a linear-chain CRF (Lafferty et al. 2001) on sentence i,
 * with L2 as in Bottou's SGD: the weights are scale * (wd, td); decay multiplies scale by
 * (1 - eta * lambda), the gradient  phi(x, gold) - E_p[phi(x, y)]  (marginals from
 * cs_slots_forward_backward) is added as eta / scale * g. *loss gets -log p(gold | x).
 * LP_ENUMERIC when log Z or the gold score is not finite. */
static lp_status crf_step(cs_slots *s, const corpus *C, size_t i, double eta, double lambda,
                          double *scale, double *wd, double *td, double *emit, crf_work *W,
                          const uint32_t **fp, size_t *nf, double *loss, lp_err *err)
{
    size_t a = C->sent_off[i], n = C->sent_off[i + 1] - a, T = s->n_tags;
    *loss = 0;
    if (n == 0)
        return LP_OK;
    uint32_t mask = (1u << s->bits) - 1;
    const int *gold = C->gold + a;
    for (size_t t = 0; t < n; t++) {
        fp[t] = C->feats + C->tok_off[a + t];
        nf[t] = C->tok_off[a + t + 1] - C->tok_off[a + t];
        double *e = emit + t * T;
        for (size_t y = 0; y < T; y++)
            e[y] = 0;
        for (size_t k = 0; k < nf[t]; k++) {
            const double *row = wd + (size_t)(fp[t][k] & mask) * T;
            for (size_t y = 0; y < T; y++)
                e[y] += row[y];
        }
        for (size_t y = 0; y < T; y++)
            e[y] *= *scale;
    }
    for (size_t k = 0; k < (T + 1) * T; k++)
        W->tr[k] = *scale * td[k];
    double logz, g = 0;
    lp_status st =
        cs_slots_forward_backward(emit, W->tr, n, s->n_labels, W->node, W->edge, &logz, err);
    if (st != LP_OK) {
        lp_err_prefix(err, "slots CRF sentence %zu", i + 1);
        return st;
    }
    for (size_t t = 0; t < n; t++)
        g += W->tr[(t ? (size_t)gold[t - 1] : T) * T + (size_t)gold[t]] + emit[t * T + gold[t]];
    if (!isfinite(logz) || !isfinite(g))
        return lp_err_set(err, LP_ENUMERIC,
                          "slots CRF: log partition %g, gold score %g at sentence %zu "
                          "(learning rate too high?)",
                          logz, g, i + 1);
    *loss = logz - g;
    *scale *= 1 - eta * lambda;
    double step = eta / *scale;
    for (size_t t = 0; t < n; t++) {
        double m[2 * MAX_TYPES + 1];
        for (size_t y = 0; y < T; y++)
            m[y] = step * (((int)y == gold[t] ? 1.0 : 0.0) - W->node[t * T + y]);
        for (size_t k = 0; k < nf[t]; k++) {
            double *row = wd + (size_t)(fp[t][k] & mask) * T;
            for (size_t y = 0; y < T; y++)
                row[y] += m[y];
        }
        td[(t ? (size_t)gold[t - 1] : T) * T + (size_t)gold[t]] += step;
    }
    for (size_t k = 0; k < (T + 1) * T; k++)
        td[k] -= step * W->edge[k];
    if (*scale < 1e-6) { /* fold the scale back into the weights before it underflows */
        size_t rows = (size_t)1 << s->bits;
        for (size_t k = 0; k < rows * T; k++)
            wd[k] *= *scale;
        for (size_t k = 0; k < (T + 1) * T; k++)
            td[k] *= *scale;
        *scale = 1;
    }
    return LP_OK;
}

/* The CRF trainer: epochs of SGD in a seeded order, the step decaying linearly from eta0 to 0
 * over the run (steadier final weights than eta0 / (1 + lambda eta0 t), which barely decays
 * here), lambda = 2 l2 / n (each sentence's share of  l2 ||w||^2 ); weights written to s. */
static lp_status crf_train(cs_slots *s, const corpus *C, const cs_slots_opts *o, size_t *order,
                           double *emit, const uint32_t **fp, size_t *nf, lp_err *err)
{
    size_t rows = (size_t)1 << s->bits, T = s->n_tags, n = C->n_sent;
    double *wd = lp_calloc(rows * T, sizeof(double)), *td = lp_calloc((T + 1) * T, sizeof(double));
    crf_work W = {lp_mallocarray(MAX_TOK * T, sizeof(double)),
                  lp_mallocarray((T + 1) * T, sizeof(double)),
                  lp_mallocarray((T + 1) * T, sizeof(double))};
    lp_status st = LP_OK;
    if (!wd || !td || !W.node || !W.edge || !W.tr) {
        st = lp_err_set(err, LP_ENOMEM, "slots: out of memory");
        goto done;
    }
    lp_rng rng;
    lp_rng_seed(&rng, o->seed);
    double lambda = 2.0 * o->l2 / (double)(n ? n : 1), scale = 1, step = 0;
    double total_steps = (double)o->epochs * (double)n + 1;
    for (unsigned ep = 0; ep < o->epochs; ep++) {
        lp_rng_shuffle_idx(&rng, order, n);
        double total = 0, loss;
        for (size_t a = 0; a < n; a++, step++) {
            double eta = o->learning_rate * (1 - step / total_steps);
            if ((st = crf_step(s, C, order[a], eta, lambda, &scale, wd, td, emit, &W, fp, nf, &loss,
                               err)) != LP_OK)
                goto done;
            total += loss;
        }
        lp_log_debug("slots CRF epoch %u: mean -log p(gold) %.4f", ep + 1,
                     total / (double)(n ? n : 1));
    }
    for (size_t k = 0; k < rows * T; k++)
        s->w[k] = (float)(scale * wd[k]);
    for (size_t k = 0; k < (T + 1) * T; k++)
        s->trans[k] = (float)(scale * td[k]);
done:
    free(wd);
    free(td);
    free(W.node);
    free(W.edge);
    free(W.tr);
    return st;
}

/* Pair labels for every two types found on the same span, while labels stay <= MAX_TYPES. */
static lp_status find_pairs(cs_slots *s, const cs_entities *sp, size_t n, lp_err *err)
{
    s->n_labels = s->n_types;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < sp[i].n; k++)
            for (size_t q = k + 1; q < sp[i].n; q++) {
                size_t a = (size_t)type_index(s, sp[i].v[k].type);
                size_t b = (size_t)type_index(s, sp[i].v[q].type);
                if (a == b || sp[i].v[k].start != sp[i].v[q].start ||
                    sp[i].v[k].end != sp[i].v[q].end || pair_index(s, a, b) >= 0 ||
                    s->n_labels == MAX_TYPES)
                    continue;
                size_t np = s->n_labels - s->n_types;
                uint32_t *p = realloc(s->pair, 2 * (np + 1) * sizeof(uint32_t));
                if (!p)
                    return lp_err_set(err, LP_ENOMEM, "slots: out of memory");
                s->pair = p;
                p[2 * np] = (uint32_t)(a < b ? a : b);
                p[2 * np + 1] = (uint32_t)(a < b ? b : a);
                s->n_labels++;
            }
    return LP_OK;
}

lp_status cs_slots_train(const char *const *texts, const char *const *spans,
                         const char *const *context, size_t n, const cs_slots_opts *o,
                         cs_slots **out, lp_err *err)
{
    cs_slots_opts opt = o ? *o : cs_slots_opts_default();
    *out = NULL;
    lp_status st = cs_slots_opts_check(&opt, err);
    if (st != LP_OK)
        return st;
    cs_slots *s = lp_calloc(1, sizeof(*s));
    cs_entities *sp = lp_calloc(n ? n : 1, sizeof(cs_entities));
    corpus C = {0};
    double *u = NULL, *ut = NULL, *emit = NULL;
    size_t *order = NULL, *nf = NULL;
    int *pred = NULL;
    const uint32_t **fp = NULL;
    if (!s || !sp || !(s->types = lp_calloc(MAX_TYPES, sizeof(char *)))) {
        st = lp_err_set(err, LP_ENOMEM, "slots: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(texts[i]);
        if ((st = cs_spans_parse(spans[i], texts[i], len, &sp[i], err)) != LP_OK) {
            lp_err_prefix(err, "slots row %zu", i + 1);
            goto done;
        }
        for (size_t k = 0; k < sp[i].n; k++) {
            if (type_index(s, sp[i].v[k].type) >= 0)
                continue;
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
    if (s->n_types == 0) {
        st = lp_err_set(err, LP_EINVAL, "slots: no labelled span in %zu rows", n);
        goto done;
    }
    if ((st = find_pairs(s, sp, n, err)) != LP_OK)
        goto done;
    s->n_tags = 1 + 2 * s->n_labels;
    s->bits = opt.hash_bits;
    /* past 64 labels the table (2^bits rows of n_tags weights, and a double of each while
     * training) would pass the size it has at 64 labels: fewer rows instead */
    while (s->bits > 10 && ((size_t)1 << s->bits) * s->n_tags > ((size_t)1 << 18) * 129)
        s->bits--;
    if (s->bits != opt.hash_bits)
        lp_log_info("slots: %zu labels, hash_bits %u -> %u to bound the weight table",
                    s->n_labels, opt.hash_bits, s->bits);
    if ((st = build_corpus(s, texts, sp, context, n, &C, err)) != LP_OK)
        goto done;
    size_t rows = (size_t)1 << s->bits, T = s->n_tags;
    s->w = lp_calloc(rows * T, sizeof(float));
    s->trans = lp_calloc((T + 1) * T, sizeof(float));
    u = lp_calloc(rows * T, sizeof(double));
    ut = lp_calloc((T + 1) * T, sizeof(double));
    emit = lp_mallocarray(MAX_TOK * T, sizeof(double));
    pred = lp_mallocarray(MAX_TOK, sizeof(int));
    nf = lp_mallocarray(MAX_TOK, sizeof(size_t));
    fp = lp_mallocarray(MAX_TOK, sizeof(*fp));
    order = lp_mallocarray(n, sizeof(size_t));
    if (!s->w || !s->trans || !u || !ut || !emit || !pred || !nf || !fp || !order) {
        st = lp_err_set(err, LP_ENOMEM, "slots: out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    if (opt.trainer == CS_SLOTS_TRAINER_CRF) {
        if ((st = crf_train(s, &C, &opt, order, emit, fp, nf, err)) != LP_OK)
            goto done;
        *out = s;
        s = NULL;
        goto done;
    }
    lp_rng rng;
    lp_rng_seed(&rng, opt.seed);
    double c = 1; /* step counter for averaging: avg = w - u / c */
    for (unsigned ep = 0; ep < opt.epochs; ep++) {
        lp_rng_shuffle_idx(&rng, order, n);
        for (size_t a = 0; a < n; a++, c++)
            if ((st = perceptron_step(s, &C, order[a], c, u, ut, emit, pred, fp, nf, err)) != LP_OK)
                goto done;
    }
    for (size_t k = 0; k < rows * T; k++)
        s->w[k] -= (float)(u[k] / c);
    for (size_t k = 0; k < (T + 1) * T; k++)
        s->trans[k] -= (float)(ut[k] / c);
    *out = s;
    s = NULL;
done:
    for (size_t i = 0; sp && i < n; i++)
        cs_entities_clear(&sp[i]);
    free(sp);
    corpus_free(&C);
    free(u);
    free(ut);
    free(emit);
    free(pred);
    free(nf);
    free(fp);
    free(order);
    cs_slots_free(s);
    return st;
}

lp_status cs_slots_tag(const cs_slots *s, const char *text, size_t len, const char *context,
                       cs_entities *out, lp_err *err)
{
    if (lp_utf8_check(text, len, "text", err) != LP_OK)
        return LP_EPARSE;
    size_t T = s->n_tags;
    sent *S = lp_calloc(1, sizeof(*S));
    uint32_t *f = NULL;
    const uint32_t **fp = NULL;
    size_t *nf = NULL;
    double *emit = NULL;
    int *tags = NULL;
    lp_status st = LP_OK;
    if (!S) {
        st = lp_err_set(err, LP_ENOMEM, "slots: out of memory");
        goto done;
    }
    prepare(S, text, len, context);
    prepare_gaz(S, s);
    size_t n = S->n;
    f = lp_mallocarray(n * MAX_FEATS + 1, sizeof(uint32_t));
    fp = lp_mallocarray(n + 1, sizeof(*fp));
    nf = lp_mallocarray(n + 1, sizeof(size_t));
    emit = lp_mallocarray(n * T + 1, sizeof(double));
    tags = lp_mallocarray(n + 1, sizeof(int));
    if (!f || !fp || !nf || !emit || !tags) {
        st = lp_err_set(err, LP_ENOMEM, "slots: out of memory");
        goto done;
    }
    for (size_t t = 0; t < n; t++) {
        fp[t] = f + t * MAX_FEATS;
        nf[t] = features(S, t, f + t * MAX_FEATS);
    }
    emissions(s, fp, nf, n, emit);
    if ((st = cs_slots_viterbi(emit, s->trans, n, s->n_labels, tags, NULL, err)) != LP_OK)
        goto done;
    /* BIO-valid by construction: a span opens at B-x and runs over the following I-x; a pair
     * label gives its two types' spans */
    for (size_t t = 0; t < n && st == LP_OK; t++) {
        if (tags[t] <= 0 || (tags[t] - 1) % 2 == 1)
            continue;
        size_t e = t + 1, l = (size_t)(tags[t] - 1) / 2;
        while (e < n && tags[e] == tags[t] + 1)
            e++;
        for (size_t h = 0; h < (l < s->n_types ? 1u : 2u) && st == LP_OK; h++) {
            const char *ty =
                l < s->n_types ? s->types[l] : s->types[s->pair[2 * (l - s->n_types) + h]];
            if (cs_entities_push(out, ty, text, S->t[t].s, S->t[e - 1].e) != LP_OK)
                st = lp_err_set(err, LP_ENOMEM, "slots: out of memory");
        }
    }
done:
    free(S);
    free(f);
    free(fp);
    free(nf);
    free(emit);
    free(tags);
    return st;
}

void cs_slots_save(const cs_slots *s, lp_buf *b)
{
    size_t T = s->n_tags, cnt = ((size_t)1 << s->bits) * T, ct = (T + 1) * T;
    size_t cg = s->n_labels * (((size_t)1 << GAZ_BITS) / 8);
    lp_buf_put(b, SLOTS_MAGIC, 4);
    lp_buf_u32(b, SLOTS_VERSION);
    lp_buf_u32(b, (uint32_t)s->n_types);
    for (size_t k = 0; k < s->n_types; k++)
        lp_buf_str(b, s->types[k]);
    lp_buf_u32(b, (uint32_t)(s->n_labels - s->n_types));
    for (size_t k = 0; k < 2 * (s->n_labels - s->n_types); k++)
        lp_buf_u32(b, s->pair[k]);
    lp_buf_u32(b, s->bits);
    lp_buf_u32(b, GAZ_BITS);
    lp_buf_put(b, s->trans, ct * sizeof(float));
    lp_buf_put(b, s->gaz, cg);
    lp_buf_put(b, s->w, cnt * sizeof(float));
    uint32_t crc = lp_crc32(0, s->trans, ct * sizeof(float));
    crc = lp_crc32(crc, s->gaz, cg);
    lp_buf_u32(b, lp_crc32(crc, s->w, cnt * sizeof(float)));
}

/* Read n bytes into a new block, checking first that the input holds them. */
static lp_status read_block(lp_reader *r, void **out, size_t n, const char *what, lp_err *err)
{
    *out = NULL;
    if (n > r->len - r->pos)
        return lp_err_set(err, LP_EFORMAT, "%s: %zu bytes of %s announced, %zu left", r->what, n,
                          what, r->len - r->pos);
    if (!(*out = lp_mallocarray(n ? n : 1, 1)))
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
    return lp_reader_get(r, *out, n, err);
}

lp_status cs_slots_load(lp_reader *r, cs_slots **out, lp_err *err)
{
    *out = NULL;
    char magic[4];
    uint32_t ver, nt, bits, gbits, crc;
    lp_status st = lp_reader_get(r, magic, 4, err);
    if (st != LP_OK)
        return st;
    if (memcmp(magic, SLOTS_MAGIC, 4))
        return lp_err_set(err, LP_EFORMAT, "%s: not a slot tagger (bad magic)", r->what);
    if ((st = lp_reader_u32(r, &ver, err)) != LP_OK)
        return st;
    if (ver == 1)
        return lp_err_set(err, LP_EVERSION,
                          "%s: slot tagger version 1 (greedy perceptron) is no longer read; "
                          "this build reads version %u: retrain with train-slots",
                          r->what, SLOTS_VERSION);
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
    uint32_t np;
    if ((st = lp_reader_u32(r, &np, err)) != LP_OK)
        goto fail;
    if (np > MAX_TYPES - nt) {
        st = lp_err_set(err, LP_EFORMAT, "%s: %u pair labels over %u types (at most %d labels)",
                        r->what, np, nt, MAX_TYPES);
        goto fail;
    }
    if (np && !(s->pair = lp_mallocarray(2 * np, sizeof(uint32_t)))) {
        st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->what);
        goto fail;
    }
    for (size_t k = 0; k < np; k++) {
        if ((st = lp_reader_u32(r, &s->pair[2 * k], err)) != LP_OK ||
            (st = lp_reader_u32(r, &s->pair[2 * k + 1], err)) != LP_OK)
            goto fail;
        if (s->pair[2 * k] >= s->pair[2 * k + 1] || s->pair[2 * k + 1] >= nt) {
            st = lp_err_set(err, LP_EFORMAT, "%s: pair label %zu names types %u and %u of %u",
                            r->what, k, s->pair[2 * k], s->pair[2 * k + 1], nt);
            goto fail;
        }
    }
    s->n_labels = nt + np;
    s->n_tags = 1 + 2 * s->n_labels;
    if ((st = lp_reader_u32(r, &bits, err)) != LP_OK ||
        (st = lp_reader_u32(r, &gbits, err)) != LP_OK)
        goto fail;
    if (bits < 10 || bits > 24 || gbits != GAZ_BITS) {
        st = lp_err_set(err, LP_EFORMAT, "%s: hash_bits %u outside [10, 24] or gazetteer bits %u",
                        r->what, bits, gbits);
        goto fail;
    }
    s->bits = bits;
    size_t T = s->n_tags, cnt = ((size_t)1 << bits) * T, ct = (T + 1) * T;
    size_t cg = s->n_labels * (((size_t)1 << GAZ_BITS) / 8);
    if ((st = read_block(r, (void **)&s->trans, ct * sizeof(float), "transitions", err)) != LP_OK ||
        (st = read_block(r, (void **)&s->gaz, cg, "gazetteer", err)) != LP_OK ||
        (st = read_block(r, (void **)&s->w, cnt * sizeof(float), "slot weights", err)) != LP_OK ||
        (st = lp_reader_u32(r, &crc, err)) != LP_OK)
        goto fail;
    uint32_t want = lp_crc32(0, s->trans, ct * sizeof(float));
    want = lp_crc32(want, s->gaz, cg);
    if (crc != lp_crc32(want, s->w, cnt * sizeof(float))) {
        st = lp_err_set(err, LP_EFORMAT, "%s: slot weights fail their CRC", r->what);
        goto fail;
    }
    /* finite weights keep every Viterbi score finite, so only forbidden tags are -inf */
    for (size_t k = 0; k < ct + cnt; k++)
        if (!isfinite(k < ct ? s->trans[k] : s->w[k - ct])) {
            st = lp_err_set(err, LP_EFORMAT, "%s: slot weight %zu is not finite", r->what, k);
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
            lp_err_prefix(err, "row %zu", i + 1);
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
