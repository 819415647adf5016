/*
 * utf8.c - UTF-8 validation and decoding, locale-free lower-casing, Python's whitespace set,
 * the lp_terms string list and the private string map used by the vectorizers.
 *
 * Lower-casing maps code points 1:1 (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic); other
 * code points are copied unchanged, so the output is valid UTF-8 whenever the input is. The one
 * 1:2 mapping is U+0130 (capital I with dot, 2 bytes) -> "i" U+0307 (3 bytes), as Python's
 * str.lower() does, so the output is at most 3/2 the input's length.
 */
#include "text/text_internal.h"

#include <stdlib.h>
#include <string.h>

lp_status lp_utf8_check(const char *s, size_t len, const char *what, lp_err *err)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned c = u[i];
        size_t need;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            need = 1, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            need = 2, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            need = 3, cp = c & 0x07, min = 0x10000;
        } else {
            goto bad;
        }
        if (len - i <= need)
            goto bad;
        for (size_t k = 1; k <= need; k++) {
            if ((u[i + k] & 0xC0) != 0x80)
                goto bad;
            cp = (cp << 6) | (u[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            goto bad;
        i += need + 1;
    }
    return LP_OK;
bad:
    return lp_err_set(err, LP_EPARSE, "%s: invalid UTF-8 at byte %zu", what ? what : "text", i);
}

bool lp_utf8_blank(const char *s, size_t len)
{
    if (lp_utf8_check(s, len, NULL, NULL) != LP_OK)
        return false;
    for (size_t i = 0; i < len;) {
        uint32_t c = lp_utf8_next(s, &i);
        if (!lp_unicode_isspace(c) && !(c >= 0x200B && c <= 0x200D) && c != 0x2060 &&
            c != 0xFEFF)
            return false;
    }
    return true;
}

uint32_t lp_utf8_next(const char *s, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s + *i;
    uint32_t c = u[0];
    if (c < 0x80) {
        *i += 1;
        return c;
    }
    if ((c & 0xE0) == 0xC0) {
        *i += 2;
        return ((c & 0x1F) << 6) | (u[1] & 0x3F);
    }
    if ((c & 0xF0) == 0xE0) {
        *i += 3;
        return ((c & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
    }
    *i += 4;
    return ((c & 0x07) << 18) | ((uint32_t)(u[1] & 0x3F) << 12) | ((uint32_t)(u[2] & 0x3F) << 6) |
           (u[3] & 0x3F);
}

static size_t utf8_put(char *o, uint32_t c)
{
    unsigned char *u = (unsigned char *)o;
    if (c < 0x80) {
        u[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        u[0] = (unsigned char)(0xC0 | (c >> 6));
        u[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        u[0] = (unsigned char)(0xE0 | (c >> 12));
        u[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        u[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    u[0] = (unsigned char)(0xF0 | (c >> 18));
    u[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    u[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    u[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* Unicode simple lower-case mapping (UnicodeData.txt field 13) for the covered blocks. */
static uint32_t lower_cp(uint32_t c)
{
    if (c < 0x80)
        return (c >= 'A' && c <= 'Z') ? c + 32 : c;
    if (c < 0x100)
        return (c >= 0xC0 && c <= 0xDE && c != 0xD7) ? c + 32 : c;
    if (c < 0x180) {
        if (c == 0x178)
            return 0xFF;
        if ((c < 0x138 || (c >= 0x14A && c < 0x178)) && !(c & 1))
            return c + 1;
        if (((c >= 0x139 && c < 0x149) || (c >= 0x179 && c < 0x17F)) && (c & 1))
            return c + 1;
        return c;
    }
    if (c >= 0x370 && c < 0x400) {
        if (c == 0x386)
            return 0x3AC;
        if (c >= 0x388 && c <= 0x38A)
            return c + 37;
        if (c == 0x38C)
            return 0x3CC;
        if (c == 0x38E || c == 0x38F)
            return c + 63;
        if ((c >= 0x391 && c <= 0x3A1) || (c >= 0x3A3 && c <= 0x3AB))
            return c + 32;
        return c;
    }
    if (c >= 0x400 && c < 0x530) {
        if (c < 0x410)
            return c + 80;
        if (c < 0x430)
            return c + 32;
        if (((c >= 0x460 && c <= 0x481) || (c >= 0x48A && c <= 0x4BF) || c >= 0x4D0) && !(c & 1))
            return c + 1;
        if (c == 0x4C0)
            return 0x4CF;
        if (c >= 0x4C1 && c <= 0x4CE && (c & 1))
            return c + 1;
        return c;
    }
    return c;
}

char *lp_utf8_lower(const char *s, size_t len, size_t *out_len)
{
    if (lp_utf8_check(s, len, NULL, NULL) != LP_OK)
        return NULL;
    char *o = malloc(len + len / 2 + 1);
    if (!o)
        return NULL;
    size_t i = 0, w = 0;
    while (i < len) {
        uint32_t c = lp_utf8_next(s, &i);
        if (c == 0x130) {
            w += utf8_put(o + w, 'i');
            w += utf8_put(o + w, 0x307);
            continue;
        }
        w += utf8_put(o + w, lower_cp(c));
    }
    o[w] = '\0';
    if (out_len)
        *out_len = w;
    return o;
}

bool lp_unicode_isspace(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* ---- lp_terms -------------------------------------------------------------------------------*/
/* The strings' storage: a chain of blocks filled in order; a clear rewinds to the first, and a
 * block is emptied when the fill moves into it again. */
typedef struct terms_block {
    struct terms_block *next;
    size_t cap, used;
    char data[];
} terms_block;

typedef struct terms_store {
    terms_block *head, *cur;
} terms_store;

#define TERMS_BLOCK 4096

/* Room for need bytes in t's storage; NULL on allocation failure. */
static char *terms_room(lp_terms *t, size_t need)
{
    terms_store *ts = t->store;
    if (!ts && !(ts = t->store = calloc(1, sizeof *ts)))
        return NULL;
    terms_block *b = ts->cur, *last = NULL;
    while (b && b->cap - b->used < need) {
        last = b;
        if ((b = b->next))
            b->used = 0;
    }
    if (!b) {
        size_t cap = need > TERMS_BLOCK ? need : TERMS_BLOCK;
        if (!(b = malloc(sizeof *b + cap)))
            return NULL;
        *b = (terms_block){.next = NULL, .cap = cap, .used = 0};
        if (last)
            last->next = b;
        else
            ts->head = b;
    }
    ts->cur = b;
    char *p = b->data + b->used;
    b->used += need;
    return p;
}

lp_status lp_terms_push(lp_terms *t, const char *s, size_t len)
{
    if (t->n == t->cap) {
        size_t nc = t->cap ? 2 * t->cap : 16;
        char **nv = lp_reallocarray(t->v, nc, sizeof(char *));
        if (!nv)
            return LP_ENOMEM;
        t->v = nv;
        t->cap = nc;
    }
    char *c = terms_room(t, len + 1);
    if (!c)
        return LP_ENOMEM;
    memcpy(c, s, len);
    c[len] = '\0';
    t->v[t->n++] = c;
    return LP_OK;
}

void lp_terms_truncate(lp_terms *t, size_t n)
{
    if (n < t->n)
        t->n = n;
}

void lp_terms_clear(lp_terms *t)
{
    if (!t)
        return;
    t->n = 0;
    terms_store *ts = t->store;
    if (ts && ts->head) {
        ts->cur = ts->head;
        ts->head->used = 0;
    }
}

void lp_terms_free(lp_terms *t)
{
    if (!t)
        return;
    terms_store *ts = t->store;
    for (terms_block *b = ts ? ts->head : NULL, *nx; b; b = nx) {
        nx = b->next;
        free(b);
    }
    free(ts);
    free(t->v);
    t->v = NULL;
    t->store = NULL;
    t->n = t->cap = 0;
}

/* ---- lp_strmap ------------------------------------------------------------------------------*/
void lp_strmap_init(lp_strmap *m) { memset(m, 0, sizeof *m); }

void lp_strmap_free(lp_strmap *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static uint32_t key_hash(const char *key, size_t len)
{
    return lp_murmur3_32(key, len, 0x9747b28c);
}

/* The slot of key (hash hv): its own, or the empty one where it would go. A slot keeps the
 * key's hash beside its id, so a probe past another key compares strings only when the 32-bit
 * hashes agree (it used to read every key it passed, a cache miss each). */
static size_t slot_of(const lp_strmap *m, const char *key, size_t len, uint32_t hv)
{
    size_t mask = m->cap - 1, h = hv & mask;
    for (;;) {
        uint64_t s = m->slots[h];
        if (!s)
            return h;
        if ((uint32_t)(s >> 32) == hv) {
            const char *k = m->keys[(uint32_t)s - 1];
            if (strncmp(k, key, len) == 0 && k[len] == '\0')
                return h;
        }
        h = (h + 1) & mask;
    }
}

long lp_strmap_find(const lp_strmap *m, const char *key, size_t len)
{
    if (!m->cap)
        return -1;
    uint64_t s = m->slots[slot_of(m, key, len, key_hash(key, len))];
    return s ? (long)((uint32_t)s - 1) : -1;
}

static lp_status grow(lp_strmap *m)
{
    size_t nc = m->cap ? 2 * m->cap : 64;
    uint64_t *ns = lp_calloc(nc, sizeof(uint64_t));
    if (!ns)
        return LP_ENOMEM;
    uint64_t *old = m->slots;
    size_t oc = m->cap, mask = nc - 1;
    for (size_t i = 0; i < oc; i++) { /* the stored hashes place the keys again */
        if (!old[i])
            continue;
        size_t h = (uint32_t)(old[i] >> 32) & mask;
        while (ns[h])
            h = (h + 1) & mask;
        ns[h] = old[i];
    }
    free(old);
    m->slots = ns;
    m->cap = nc;
    return LP_OK;
}

lp_status lp_strmap_add(lp_strmap *m, const char *key, size_t len, size_t *id, bool *added)
{
    if (added)
        *added = false;
    if (m->n >= UINT32_MAX - 1 || (2 * (m->n + 1) > m->cap && grow(m) != LP_OK))
        return LP_ENOMEM;
    uint32_t hv = key_hash(key, len);
    size_t h = slot_of(m, key, len, hv);
    if (m->slots[h]) {
        *id = (uint32_t)m->slots[h] - 1;
        return LP_OK;
    }
    if (m->n == m->keys_cap) {
        size_t nc = m->keys_cap ? 2 * m->keys_cap : 64;
        char **nk = lp_reallocarray(m->keys, nc, sizeof(char *));
        if (!nk)
            return LP_ENOMEM;
        m->keys = nk;
        m->keys_cap = nc;
    }
    char *k = lp_strndup(key, len);
    if (!k)
        return LP_ENOMEM;
    m->keys[m->n] = k;
    m->slots[h] = (uint64_t)hv << 32 | (uint64_t)(m->n + 1);
    *id = m->n++;
    if (added)
        *added = true;
    return LP_OK;
}
