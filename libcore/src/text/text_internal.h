/*
 * text_internal.h - helpers shared inside the text and feat modules, not public: UTF-8 decoding,
 * Python's whitespace set, and a string -> index hash map.
 */
#ifndef LEPTON_TEXT_INTERNAL_H
#define LEPTON_TEXT_INTERNAL_H

#include "lepton/text.h"

/* Decode the code point at s[*i] (valid UTF-8 assumed: checked before) and advance *i. */
uint32_t lp_utf8_next(const char *s, size_t *i);
/* Python's str.isspace() set. */
bool lp_unicode_isspace(uint32_t c);
/* Append a copy of s[0..len) to t. LP_ENOMEM on failure. */
lp_status lp_terms_push(lp_terms *t, const char *s, size_t len);
/* Drop the strings after the first n (their storage is reused after the next clear). */
void lp_terms_truncate(lp_terms *t, size_t n);

/* Open-addressing map from strings (copied, owned) to dense ids 0, 1, 2, ... in insertion
 * order. keys[id] is the string of id. */
typedef struct lp_strmap {
    uint64_t *slots; /* (cap,) the key's hash << 32 | (id + 1); 0 = empty */
    size_t cap;    /* power of two */
    char **keys;   /* (n,) */
    size_t n, keys_cap;
} lp_strmap;

void lp_strmap_init(lp_strmap *m);
void lp_strmap_free(lp_strmap *m);
/* id of key or -1. */
long lp_strmap_find(const lp_strmap *m, const char *key, size_t len);
/* id of key, inserting it when new (*added set when given). LP_ENOMEM on failure. */
lp_status lp_strmap_add(lp_strmap *m, const char *key, size_t len, size_t *id, bool *added);

#endif

/* Row-by-row CSR builder (for transforms that do not know nnz in advance). */
typedef struct lp_csrb {
    lp_csr *m; /* indptr sized rows + 1; indices/values grow */
    size_t cap, row;
    bool failed;
} lp_csrb;

/* One (column, value) pair of a row being assembled. */
typedef struct lp_colval {
    uint32_t col;
    double v;
} lp_colval;

lp_status lp_csrb_init(lp_csrb *b, size_t rows, size_t cols);
void lp_csrb_push(lp_csrb *b, uint32_t col, float v); /* columns increasing within a row */
void lp_csrb_end_row(lp_csrb *b);
/* Sort e[0..n) by column, sum duplicates, drop exact zeros; returns the new n. */
size_t lp_colval_merge(lp_colval *e, size_t n);
/* The finished matrix (NULL after a failed push: LP_ENOMEM is the caller's to report). */
lp_csr *lp_csrb_finish(lp_csrb *b);
void lp_csrb_free(lp_csrb *b);
