/*
 * rng.c - xoshiro256** 1.0 (Blackman & Vigna, "Scrambled linear pseudorandom number
 * generators", 2018), seeded by splitmix64 so any 64-bit seed (0 included) gives a good state.
 */
#include "lepton/base.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void lp_rng_seed(lp_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&x);
}

uint64_t lp_rng_u64(lp_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint32_t lp_rng_u32(lp_rng *rng) { return (uint32_t)(lp_rng_u64(rng) >> 32); }

double lp_rng_uniform(lp_rng *rng) { return (double)(lp_rng_u64(rng) >> 11) * 0x1.0p-53; }

uint64_t lp_rng_below(lp_rng *rng, uint64_t n)
{
    if (n == 0)
        return 0;
    /* Lemire's rejection on the 128-bit product: unbiased. */
    uint64_t x = lp_rng_u64(rng);
    __uint128_t m = (__uint128_t)x * n;
    uint64_t l = (uint64_t)m;
    if (l < n) {
        uint64_t t = -n % n;
        while (l < t) {
            x = lp_rng_u64(rng);
            m = (__uint128_t)x * n;
            l = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double lp_rng_normal(lp_rng *rng)
{
    double u1 = lp_rng_uniform(rng), u2 = lp_rng_uniform(rng);
    if (u1 < 1e-300)
        u1 = 1e-300; /* log(0) guard */
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void lp_rng_shuffle_idx(lp_rng *rng, size_t *idx, size_t n)
{
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)lp_rng_below(rng, i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
}

lp_rng lp_rng_split(lp_rng *rng)
{
    lp_rng r;
    lp_rng_seed(&r, lp_rng_u64(rng));
    return r;
}
