/*
 * dedupe.c - exact duplicate rows. Each row is hashed (FNV-1a over the cells: the bit pattern
 * of numbers with -0 folded into 0, the string of categories and texts, a marker for missing)
 * into an open-addressing table of row indices; on a hash match the rows are compared cell by
 * cell, so a collision never merges distinct rows. The first occurrence of a row is kept.
 */
#include "clean/clean_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FNV_OFFSET 1469598103934665603ULL
#define FNV_PRIME 1099511628211ULL

static uint64_t fnv_bytes(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= FNV_PRIME;
    }
    return h;
}

static const char *cell_string(const lp_column *c, size_t i)
{
    if (c->type == LP_COL_TYPE_CATEGORICAL)
        return c->dict[c->codes[i]];
    return c->text[i];
}

static uint64_t row_hash(const lp_frame *f, size_t i)
{
    uint64_t h = FNV_OFFSET;
    for (size_t j = 0; j < lp_frame_ncols(f); j++) {
        const lp_column *c = lp_frame_col(f, j);
        uint8_t tag = c->missing[i] ? 0 : 1;
        h = fnv_bytes(h, &tag, 1);
        if (c->missing[i])
            continue;
        if (c->type == LP_COL_TYPE_NUMERIC) {
            double v = c->num[i] == 0 ? 0.0 : c->num[i];
            h = fnv_bytes(h, &v, sizeof v);
        } else {
            const char *s = cell_string(c, i);
            h = fnv_bytes(h, s, strlen(s) + 1);
        }
    }
    return h ? h : 1;
}

static bool rows_equal(const lp_frame *f, size_t a, size_t b)
{
    for (size_t j = 0; j < lp_frame_ncols(f); j++) {
        const lp_column *c = lp_frame_col(f, j);
        if (c->missing[a] != c->missing[b])
            return false;
        if (c->missing[a])
            continue;
        switch (c->type) {
        case LP_COL_TYPE_NUMERIC:
            if (c->num[a] != c->num[b])
                return false;
            break;
        case LP_COL_TYPE_CATEGORICAL:
            if (c->codes[a] != c->codes[b])
                return false;
            break;
        case LP_COL_TYPE_TEXT:
            if (strcmp(c->text[a], c->text[b]) != 0)
                return false;
            break;
        }
    }
    return true;
}

lp_status lp_frame_find_duplicates(const lp_frame *f, uint8_t *is_dup, size_t *n_dup,
                                   lp_err *err)
{
    if (n_dup)
        *n_dup = 0;
    if (!f)
        return lp_err_set(err, LP_EINVAL, "find duplicates: frame is NULL");
    size_t n = lp_frame_nrows(f), cap = 16;
    if (is_dup && n)
        memset(is_dup, 0, n);
    if (n < 2 || !lp_frame_ncols(f))
        return LP_OK;
    while (cap < 2 * n)
        cap *= 2;
    uint64_t *hash = lp_calloc(cap, sizeof *hash);
    size_t *slot = lp_mallocarray(cap, sizeof *slot);
    if (!hash || !slot) {
        free(hash);
        free(slot);
        return lp_err_set(err, LP_ENOMEM, "find duplicates: out of memory for %zu rows", n);
    }
    size_t dups = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t h = row_hash(f, i);
        size_t k = (size_t)h & (cap - 1);
        bool dup = false;
        while (hash[k]) {
            if (hash[k] == h && rows_equal(f, slot[k], i)) {
                dup = true;
                break;
            }
            k = (k + 1) & (cap - 1);
        }
        if (dup) {
            dups++;
            if (is_dup)
                is_dup[i] = 1;
        } else {
            hash[k] = h;
            slot[k] = i;
        }
    }
    free(hash);
    free(slot);
    if (n_dup)
        *n_dup = dups;
    return LP_OK;
}
