/*
 * murmur3.c - MurmurHash3_x86_32 (Austin Appleby, 2011; the algorithm is public domain, this is
 * an independent implementation from its description) and scikit-learn's feature hashing.
 *
 * Byte order: blocks are read little-endian whatever the host, so hashes are portable and equal
 * to sklearn.utils.murmurhash3_32 on x86.
 */
#include "lepton/text.h"

#include <string.h>

static uint32_t rotl32(uint32_t x, int r) { return (x << r) | (x >> (32 - r)); }

uint32_t lp_murmur3_32(const void *key, size_t len, uint32_t seed)
{
    const uint8_t *p = key;
    const uint32_t c1 = 0xcc9e2d51u, c2 = 0x1b873593u;
    uint32_t h = seed;
    size_t nblocks = len / 4;
    for (size_t i = 0; i < nblocks; i++) {
        const uint8_t *b = p + 4 * i;
        uint32_t k = (uint32_t)b[0] | ((uint32_t)b[1] << 8) | ((uint32_t)b[2] << 16) |
                     ((uint32_t)b[3] << 24);
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
        h = rotl32(h, 13);
        h = h * 5 + 0xe6546b64u;
    }
    const uint8_t *tail = p + 4 * nblocks;
    uint32_t k = 0;
    switch (len & 3) {
    case 3:
        k ^= (uint32_t)tail[2] << 16;
        /* fall through */
    case 2:
        k ^= (uint32_t)tail[1] << 8;
        /* fall through */
    case 1:
        k ^= tail[0];
        k *= c1;
        k = rotl32(k, 15);
        k *= c2;
        h ^= k;
    }
    h ^= (uint32_t)len;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

void lp_hash_feature(const char *term, size_t len, uint32_t n_features, uint32_t *col, int *sign)
{
    uint32_t h = lp_murmur3_32(term, len, 0);
    /* h as int32: negative when the top bit is set; |h| = 2^32 - h then (2^31 for INT32_MIN). */
    bool neg = (h & 0x80000000u) != 0;
    uint32_t mag = neg ? (uint32_t)(0u - h) : h;
    *col = n_features ? mag % n_features : 0;
    *sign = neg ? -1 : 1;
}
