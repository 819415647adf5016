/*
 * cpu_amx.c - the cpu table's bfloat16 inference products (backend.h bf16_pack / bf16_linear)
 * on Intel AMX: y (n, out) = x (n, in) @ W^T + bias with x and W rounded to bfloat16 (nearest
 * even) and float32 accumulation in the tile unit (TDPBF16PS).
 *
 * Layout. W^T is the B operand (K = in, N = out). bf16_pack stores it once as the tiles B is
 * read in: tile (nb, kb), for 16 output columns nb and 32 input rows kb, is 16 rows of 64
 * bytes, row r holding the pairs (W[nb 16 + c][kb 32 + 2r], W[nb 16 + c][kb 32 + 2r + 1]) for
 * c = 0..15 (the "VNNI" pairing TDPBF16PS expects); tiles of one nb are contiguous in kb. x is
 * rounded into a per-thread bfloat16 copy (rows padded with zeros to a multiple of 32), read
 * as A tiles of 16 rows x 32 values straight from it (stride = in * 2 bytes).
 *
 * Kernel. Each work item is a 32 x 32 block of y: tiles 0-3 accumulate it over K from two A
 * tiles (4, 5) and two B tiles (6, 7), four TDPBF16PS per 32 values of K. Items are ordered
 * column-block-major, so a thread keeps one column pair's B tiles (K / 32 * 2 KiB) hot while it
 * walks down x. The bias is added to each block right after its tiles are stored.
 *
 * Availability. Linux grants the AMX tile state per process on request
 * (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)); it is asked once, when the CPU reports
 * AMX-BF16, AMX-TILE, AVX512F and AVX512_BF16 and LEPTON_AMX is not 0. Without it bf16_pack
 * answers LP_EUNSUPPORTED and callers keep their float32 path. The functions that touch tiles
 * carry target attributes, so the rest of the library builds for the baseline CPU.
 *
 * Speed on the shared 2-vCPU Sapphire Rapids VM: MiniLM embeddings about 2x faster than with
 * OpenBLAS sgemm (bench/RESULTS.md); in a scratch probe of the kernel alone, 2.0-3.5x sgemm on
 * the encoder's shapes, and the two vCPUs appeared to share one tile unit (2 threads ~1.1x one).
 */
#include "backend/backend_impl.h"

#include <omp.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__linux__) && (defined(__GNUC__) || defined(__clang__))
#define LP_AMX_BUILD 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* The packed weight: out x in floats as bfloat16 tiles. */
typedef struct amx_packed {
    size_t out, in;
    uint16_t *tiles; /* (out / 16) * (in / 32) tiles of 512 values, 64-byte aligned */
} amx_packed;

#ifdef LP_AMX_BUILD

#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static bool amx_ok;
static pthread_once_t amx_once = PTHREAD_ONCE_INIT;

static void amx_probe(void)
{
    const char *env = getenv("LEPTON_AMX");
    if (env && !strcmp(env, "0"))
        return;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return;
    bool bf16 = d & (1u << 22), tile = d & (1u << 24), avx512f = b & (1u << 16);
    if (!bf16 || !tile || !avx512f)
        return;
    /* AVX512_BF16 (leaf 7.1 EAX bit 5) rounds the rows of x to bfloat16: a VM may hide it */
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !(a & (1u << 5)))
        return;
    amx_ok = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

static bool amx_usable(void)
{
    pthread_once(&amx_once, amx_probe);
    return amx_ok;
}

/* Round to nearest even (NaN stays NaN: its quiet bit survives the shift). */
static inline uint16_t to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

typedef struct tile_cfg {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_cfg;

/* x (n, in) into bf (rows padded to np with zeros), in a multiple of 32. */
__attribute__((target("avx512f,avx512bf16"))) static void rows_to_bf16(const float *x, size_t n,
                                                                        size_t np, size_t in,
                                                                        uint16_t *bf)
{
    for (size_t i = 0; i < n; i++) {
        const float *xr = x + i * in;
        uint16_t *o = bf + i * in;
        for (size_t k = 0; k < in; k += 32) {
            __m512bh h = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(xr + k + 16), _mm512_loadu_ps(xr + k));
            _mm512_storeu_si512((void *)(o + k), (__m512i)h);
        }
    }
    memset(bf + n * in, 0, (np - n) * in * sizeof *bf);
}

/* y block (rows m0.., cols c0.., 32 x 32 clipped to n rows) from tiles 0-3, plus bias. */
__attribute__((target("amx-tile,avx512f"))) static void store_block(float *y, size_t n,
                                                                     size_t out, size_t m0,
                                                                     size_t c0, const float *bias)
{
    float *yb = y + m0 * out + c0;
    size_t rows = n - m0 < 32 ? n - m0 : 32;
    if (rows == 32) {
        _tile_stored(0, yb, out * sizeof(float));
        _tile_stored(1, yb + 16, out * sizeof(float));
        _tile_stored(2, yb + 16 * out, out * sizeof(float));
        _tile_stored(3, yb + 16 * out + 16, out * sizeof(float));
    } else {
        float tmp[32 * 32];
        _tile_stored(0, tmp, 32 * sizeof(float));
        _tile_stored(1, tmp + 16, 32 * sizeof(float));
        _tile_stored(2, tmp + 16 * 32, 32 * sizeof(float));
        _tile_stored(3, tmp + 16 * 32 + 16, 32 * sizeof(float));
        for (size_t r = 0; r < rows; r++)
            memcpy(yb + r * out, tmp + r * 32, 32 * sizeof(float));
    }
    if (bias) {
        __m512 b0 = _mm512_loadu_ps(bias + c0), b1 = _mm512_loadu_ps(bias + c0 + 16);
        for (size_t r = 0; r < rows; r++) {
            float *yr = yb + r * out;
            _mm512_storeu_ps(yr, _mm512_add_ps(_mm512_loadu_ps(yr), b0));
            _mm512_storeu_ps(yr + 16, _mm512_add_ps(_mm512_loadu_ps(yr + 16), b1));
        }
    }
}

/* Work items [lo, hi) of the column-block-major order on this thread. Its own function with the
 * target attribute: an OpenMP region's outlined body does not inherit one (clang). */
__attribute__((target("amx-tile,amx-bf16,avx512f"))) static void
amx_items(const uint16_t *xb, size_t n, size_t in, const amx_packed *p, const float *bias,
          float *y, size_t lo, size_t hi)
{
    size_t kb_n = in / 32, mb_n = (n + 31) / 32;
    tile_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.rows[t] = 16;
        cfg.colsb[t] = 64;
    }
    _tile_loadconfig(&cfg);
    for (size_t item = lo; item < hi; item++) {
        size_t nb = item / mb_n, mb = item % mb_n, m0 = mb * 32;
        const uint16_t *a0 = xb + m0 * in, *a1 = a0 + 16 * in;
        const uint16_t *b0 = p->tiles + (2 * nb) * kb_n * 512, *b1 = b0 + kb_n * 512;
        _tile_zero(0);
        _tile_zero(1);
        _tile_zero(2);
        _tile_zero(3);
        for (size_t kb = 0; kb < kb_n; kb++) {
            _tile_loadd(4, a0 + kb * 32, in * sizeof(uint16_t));
            _tile_loadd(5, a1 + kb * 32, in * sizeof(uint16_t));
            _tile_loadd(6, b0 + kb * 512, 64);
            _tile_loadd(7, b1 + kb * 512, 64);
            _tile_dpbf16ps(0, 4, 6);
            _tile_dpbf16ps(1, 4, 7);
            _tile_dpbf16ps(2, 5, 6);
            _tile_dpbf16ps(3, 5, 7);
        }
        store_block(y, n, p->out, m0, nb * 32, bias);
    }
    _tile_release();
}

static void amx_blocks(const uint16_t *xb, size_t n, size_t in, const amx_packed *p,
                       const float *bias, float *y)
{
    size_t items = (n + 31) / 32 * (p->out / 32);
    int nt = omp_get_max_threads();
    if ((size_t)nt > items)
        nt = (int)items;
    if (nt <= 1) {
        amx_items(xb, n, in, p, bias, y, 0, items);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        size_t t = (size_t)omp_get_thread_num(), k = (size_t)omp_get_num_threads();
        amx_items(xb, n, in, p, bias, y, items * t / k, items * (t + 1) / k);
    }
}

/* The calling thread's bfloat16 copy of x, grown as needed, freed at thread exit. */
static pthread_key_t xbuf_key;
static pthread_once_t xbuf_once = PTHREAD_ONCE_INIT;
typedef struct xbuf {
    uint16_t *p;
    size_t cap;
} xbuf;

static void xbuf_free(void *v)
{
    xbuf *b = v;
    if (b)
        free(b->p);
    free(b);
}

static void xbuf_init(void)
{
    pthread_key_create(&xbuf_key, xbuf_free);
}

static uint16_t *xbuf_get(size_t n)
{
    pthread_once(&xbuf_once, xbuf_init);
    xbuf *b = pthread_getspecific(xbuf_key);
    if (!b) {
        if (!(b = calloc(1, sizeof *b)) || pthread_setspecific(xbuf_key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    if (n > b->cap) {
        free(b->p);
        b->cap = 0;
        if (!(b->p = aligned_alloc(64, (n * sizeof(uint16_t) + 63) / 64 * 64)))
            return NULL;
        b->cap = n;
    }
    return b->p;
}

#endif /* LP_AMX_BUILD */

lp_status lp_bk_cpu_bf16_pack(const lp_backend *be, size_t out, size_t in, const float *w,
                              void **packed, lp_err *err)
{
    (void)be;
    *packed = NULL;
    LP_BK_TRY(lp_bk_need(w, out * in, "bf16_pack", "w", err));
#ifdef LP_AMX_BUILD
    if (!amx_usable())
        return lp_err_set(err, LP_EUNSUPPORTED,
                          "bf16_pack: no AMX-BF16 on this CPU (or LEPTON_AMX=0, or the kernel "
                          "refused the tile state)");
    if (out == 0 || in == 0 || out % 32 || in % 32)
        return lp_err_set(err, LP_EUNSUPPORTED,
                          "bf16_pack: a %zu x %zu weight; the AMX path needs both sides a "
                          "multiple of 32", out, in);
    amx_packed *p = calloc(1, sizeof *p);
    uint16_t *t = aligned_alloc(64, out * in * sizeof *t);
    if (!p || !t) {
        free(p);
        free(t);
        return lp_err_set(err, LP_ENOMEM, "bf16_pack: out of memory for a %zu x %zu weight",
                          out, in);
    }
    size_t kb_n = in / 32;
    for (size_t nb = 0; nb < out / 16; nb++)
        for (size_t kb = 0; kb < kb_n; kb++) {
            uint16_t *tile = t + (nb * kb_n + kb) * 512;
            for (size_t r = 0; r < 16; r++)
                for (size_t c = 0; c < 16; c++)
                    for (size_t q = 0; q < 2; q++)
                        tile[r * 32 + c * 2 + q] =
                            to_bf16(w[(nb * 16 + c) * in + kb * 32 + 2 * r + q]);
        }
    p->out = out;
    p->in = in;
    p->tiles = t;
    *packed = p;
    return LP_OK;
#else
    (void)out;
    (void)in;
    return lp_err_set(err, LP_EUNSUPPORTED, "bf16_pack: AMX is an x86-64 Linux feature");
#endif
}

lp_status lp_bk_cpu_bf16_linear(const lp_backend *be, size_t n, size_t in, size_t out,
                                const float *x, const void *packed, const float *bias, float *y,
                                lp_err *err)
{
    (void)be;
    const amx_packed *p = packed;
    if (!p)
        return lp_err_set(err, LP_EINVAL, "bf16_linear: packed is NULL");
    if (p->in != in || p->out != out)
        return lp_err_set(err, LP_EINVAL,
                          "bf16_linear: weight packed as %zu x %zu, called with %zu x %zu",
                          p->out, p->in, out, in);
    LP_BK_TRY(lp_bk_need(x, n * in, "bf16_linear", "x", err));
    LP_BK_TRY(lp_bk_need(y, n * out, "bf16_linear", "y", err));
    if (n == 0)
        return LP_OK;
#ifdef LP_AMX_BUILD
    size_t np = (n + 31) / 32 * 32;
    uint16_t *xb = xbuf_get(np * in);
    if (!xb)
        return lp_err_set(err, LP_ENOMEM, "bf16_linear: out of memory for %zu rows", n);
    rows_to_bf16(x, n, np, in, xb);
    amx_blocks(xb, n, in, p, bias, y);
    return LP_OK;
#else
    (void)bias;
    return lp_err_set(err, LP_EUNSUPPORTED, "bf16_linear: AMX is an x86-64 Linux feature");
#endif
}

void lp_bk_cpu_bf16_free(const lp_backend *be, void *packed)
{
    (void)be;
    amx_packed *p = packed;
    if (p)
        free(p->tiles);
    free(p);
}
