/*
 * base.h - status codes, error messages, logging, seeded RNG, timers, progress, byte buffers.
 *
 * Everything else in libcore stands on this header and nothing here knows about any other
 * module. Status codes are defined once in LP_STATUS_LIST (name, wire code, message, HTTP
 * status); lp_strerror(), lp_status_code() and lp_status_http() are generated from it.
 *
 * Error convention: a fallible function returns lp_status (LP_OK == 0) and takes a trailing
 * nullable `lp_err *`. On failure it fills err->msg with one line naming the input, the place
 * (file, line, column, field) and what was expected. The caller owns the lp_err (usually on
 * its stack); nothing in it needs freeing.
 */
#ifndef LEPTON_BASE_H
#define LEPTON_BASE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LP_VERSION_STRING "0.1.0"

#if defined(__GNUC__)
#define LP_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#define LP_NODISCARD __attribute__((warn_unused_result))
#else
#define LP_PRINTF(fmt_idx, arg_idx)
#define LP_NODISCARD
#endif

/* X(NAME, wire code, message, HTTP status) */
#define LP_STATUS_LIST(X)                                                           \
    X(OK, "ok", "success", 200)                                                     \
    X(EINVAL, "invalid_argument", "invalid argument", 400)                          \
    X(EPARSE, "parse_error", "malformed input", 400)                                \
    X(EFORMAT, "bad_format", "bad file format", 400)                                \
    X(EVERSION, "unsupported_version", "unsupported format version", 400)           \
    X(ENOTFOUND, "not_found", "not found", 404)                                     \
    X(EEXIST, "conflict", "already exists", 409)                                    \
    X(ESTATE, "bad_state", "operation not valid in the current state", 409)         \
    X(ETOOBIG, "too_large", "input exceeds a size limit", 413)                      \
    X(EUNSUPPORTED, "unsupported", "operation not supported", 422)                  \
    X(EAUTH, "unauthorized", "missing credentials", 401)                            \
    X(EFORBIDDEN, "forbidden", "credentials rejected", 403)                         \
    X(EIO, "io_error", "input/output error", 500)                                   \
    X(ENOMEM, "out_of_memory", "out of memory", 503)                                \
    X(ENUMERIC, "numeric_error", "numeric failure (NaN, Inf or singular system)", 500) \
    X(EDB, "database_error", "database error", 500)                                 \
    X(EDEVICE, "device_error", "compute device error", 500)                         \
    X(EINTERNAL, "internal_error", "internal error", 500)

typedef enum lp_status {
#define LP_STATUS_ENUM_(name, code, msg, http) LP_##name,
    LP_STATUS_LIST(LP_STATUS_ENUM_)
#undef LP_STATUS_ENUM_
        LP_STATUS_COUNT_
} lp_status;

/* Human message of a status ("malformed input"). Never NULL; unknown values give "unknown status". */
const char *lp_strerror(lp_status s);
/* Stable machine code for JSON error bodies ("parse_error"). Never NULL. */
const char *lp_status_code(lp_status s);
/* The HTTP status a service answers for s (e.g. 400 for LP_EPARSE). */
int lp_status_http(lp_status s);

#define LP_ERR_MSG_MAX 512

/* A status plus a one-line message. Caller-owned (stack is fine); no free needed. */
typedef struct lp_err {
    lp_status status;
    char msg[LP_ERR_MSG_MAX];
} lp_err;

/* Reset *err to LP_OK with an empty message. err may be NULL. */
void lp_err_clear(lp_err *err);
/* Fill err (if not NULL) with status s and a printf-style message; returns s so callers can
 * write `return lp_err_set(err, LP_EPARSE, "...")`. The arguments may include err's own
 * message (lp_err_text(err)) to wrap it. */
lp_status lp_err_set(lp_err *err, lp_status s, const char *fmt, ...) LP_PRINTF(3, 4);
/* Prefix an existing message: "ctx: old message". Keeps the status. Returns err->status. */
lp_status lp_err_prefix(lp_err *err, const char *fmt, ...) LP_PRINTF(2, 3);
/* The message of err, or lp_strerror(status) when the message is empty. */
const char *lp_err_text(const lp_err *err);

/* Allocation helpers: return NULL on overflow of n*size as well as on failure. */
void *lp_calloc(size_t n, size_t size);
void *lp_mallocarray(size_t n, size_t size);
void *lp_reallocarray(void *p, size_t n, size_t size);
char *lp_strdup(const char *s);          /* NULL in -> NULL out */
char *lp_strndup(const char *s, size_t n);

/* ---- logging ------------------------------------------------------------------------------
 * Lines go to stderr: "2026-11-27T10:00:00Z INFO  message" on a TTY, a JSON object per line
 * otherwise ({"ts":..,"level":..,"msg":..}). LEPTON_LOG=debug|info|warn|error|off sets the
 * level at first use; lp_log_set_level overrides. Thread-safe (one fputs per line). */
typedef enum lp_log_level {
    LP_LOG_LEVEL_DEBUG = 0,
    LP_LOG_LEVEL_INFO,
    LP_LOG_LEVEL_WARN,
    LP_LOG_LEVEL_ERROR,
    LP_LOG_LEVEL_OFF
} lp_log_level;

void lp_log_set_level(lp_log_level level);
lp_log_level lp_log_get_level(void);
/* Force JSON (1), text (0) or auto-detect from isatty (-1). */
void lp_log_set_json(int mode);
void lp_log(lp_log_level level, const char *fmt, ...) LP_PRINTF(2, 3);
void lp_logv(lp_log_level level, const char *fmt, va_list ap);
#define lp_log_debug(...) lp_log(LP_LOG_LEVEL_DEBUG, __VA_ARGS__)
#define lp_log_info(...) lp_log(LP_LOG_LEVEL_INFO, __VA_ARGS__)
#define lp_log_warn(...) lp_log(LP_LOG_LEVEL_WARN, __VA_ARGS__)
#define lp_log_error(...) lp_log(LP_LOG_LEVEL_ERROR, __VA_ARGS__)

/* ---- RNG: xoshiro256** (Blackman & Vigna 2018), seeded through splitmix64 ------------------
 * Not thread-safe per instance; give each thread its own (lp_rng_split). Same seed, same
 * stream on every platform. */
typedef struct lp_rng {
    uint64_t s[4];
} lp_rng;

void lp_rng_seed(lp_rng *rng, uint64_t seed);
uint64_t lp_rng_u64(lp_rng *rng);
uint32_t lp_rng_u32(lp_rng *rng);
/* Uniform double in [0, 1) with 53 random bits. */
double lp_rng_uniform(lp_rng *rng);
/* Uniform integer in [0, n) without modulo bias; n == 0 returns 0. */
uint64_t lp_rng_below(lp_rng *rng, uint64_t n);
/* Standard normal (Box-Muller, both values used alternately is NOT done: stateless, one
 * value per two uniforms, so the stream position is easy to reason about). */
double lp_rng_normal(lp_rng *rng);
/* Fisher-Yates shuffle of n indices. */
void lp_rng_shuffle_idx(lp_rng *rng, size_t *idx, size_t n);
/* A new independent stream derived from rng (for worker threads). */
lp_rng lp_rng_split(lp_rng *rng);

/* ---- time ---------------------------------------------------------------------------------*/
/* Monotonic clock in nanoseconds (CLOCK_MONOTONIC). */
uint64_t lp_time_ns(void);
/* Wall clock, seconds since the epoch (CLOCK_REALTIME) as double. */
double lp_time_wall(void);
/* Seconds elapsed since a lp_time_ns() reading. */
double lp_time_since(uint64_t start_ns);

/* ---- progress -----------------------------------------------------------------------------
 * A bar with rate and ETA on a TTY (stderr), else one line every few seconds. Silent when
 * LEPTON_PROGRESS=0 or the log level is above INFO. Not thread-safe: update from one thread. */
typedef struct lp_progress lp_progress;

/* total may be 0 when unknown. label is copied. Returns NULL on allocation failure, which
 * every other call accepts. */
lp_progress *lp_progress_begin(const char *label, uint64_t total);
void lp_progress_update(lp_progress *p, uint64_t done);
/* Final line ("label: done 100% in 1.2 s"), then frees p. NULL is a no-op. */
void lp_progress_end(lp_progress *p);

/* ---- byte buffers (serialization) ---------------------------------------------------------
 * lp_buf grows; on allocation failure it sets its `failed` flag and ignores later writes, so a
 * writer checks once at the end (lp_buf_status). Integers are little-endian, floats IEEE-754
 * bit patterns, strings length-prefixed (u32). */
typedef struct lp_buf {
    uint8_t *data;
    size_t len, cap;
    bool failed;
} lp_buf;

void lp_buf_init(lp_buf *b);
void lp_buf_free(lp_buf *b);          /* frees data; b itself is the caller's */
void lp_buf_put(lp_buf *b, const void *p, size_t n);
void lp_buf_u8(lp_buf *b, uint8_t v);
void lp_buf_u32(lp_buf *b, uint32_t v);
void lp_buf_u64(lp_buf *b, uint64_t v);
void lp_buf_f32(lp_buf *b, float v);
void lp_buf_f64(lp_buf *b, double v);
void lp_buf_str(lp_buf *b, const char *s); /* NULL written as length 0xFFFFFFFF */
void lp_buf_printf(lp_buf *b, const char *fmt, ...) LP_PRINTF(2, 3); /* no terminator kept */
/* LP_OK, or LP_ENOMEM when any write failed. */
lp_status lp_buf_status(const lp_buf *b, lp_err *err);
/* Take ownership of the bytes (NUL-terminated for text convenience); resets b. */
uint8_t *lp_buf_take(lp_buf *b, size_t *len);

/* Bounds-checked reader over bytes it does not own. Every getter returns LP_EFORMAT with a
 * message naming `what` when the data ends early, and leaves the reader failed. */
typedef struct lp_reader {
    const uint8_t *data;
    size_t len, pos;
    const char *what; /* name used in messages, e.g. "model file pipeline section" */
} lp_reader;

void lp_reader_init(lp_reader *r, const void *data, size_t len, const char *what);
lp_status lp_reader_get(lp_reader *r, void *out, size_t n, lp_err *err);
lp_status lp_reader_u8(lp_reader *r, uint8_t *v, lp_err *err);
lp_status lp_reader_u32(lp_reader *r, uint32_t *v, lp_err *err);
lp_status lp_reader_u64(lp_reader *r, uint64_t *v, lp_err *err);
lp_status lp_reader_f32(lp_reader *r, float *v, lp_err *err);
lp_status lp_reader_f64(lp_reader *r, double *v, lp_err *err);
/* *s is a new NUL-terminated string the caller frees (NULL if NULL was written).
 * Strings longer than max_len are rejected. */
lp_status lp_reader_str(lp_reader *r, char **s, size_t max_len, lp_err *err);

/* ---- files --------------------------------------------------------------------------------*/
/* Read a whole file (gzip transparently when it starts with the gzip magic). *data is
 * NUL-terminated; caller frees. Errors name the path. */
lp_status lp_file_read(const char *path, uint8_t **data, size_t *len, lp_err *err);
/* Write atomically: to path.tmp, fsync, rename. */
lp_status lp_file_write(const char *path, const void *data, size_t len, lp_err *err);

/* For main() only. libgomp and OpenBLAS read their settings once, when the program loads, and
 * three of their defaults cost a lot on a small machine; for each variable that is unset this
 * sets:
 * - OMP_WAIT_POLICY=passive: libgomp's default spins idle workers (measured: 10-50x slower fits
 *   when another process holds the other core);
 * - OPENBLAS_THREAD_TIMEOUT=4: OpenBLAS's idle workers otherwise spin with sched_yield for 2^28
 *   cycles (about 0.1 s) after every product and take a core from the OpenMP workers of the
 *   element-wise ops between products (measured: Fashion-MNIST MLP epoch 2.8 s -> 2.1 s at 2
 *   threads; bench/RESULTS.md);
 * - OPENBLAS_CORETYPE=SkylakeX (AVX-512) or Haswell (AVX2+FMA) when OpenBLAS did not recognise
 *   the CPU and fell back to a kernel without AVX (Debian's 0.3.21 on family 6 model 207 picks
 *   Prescott: sgemm 2.5-3x slower).
 * Then it re-executes the program once (/proc/self/exe, same argv; LEPTON_REEXEC=1 marks the
 * second start) so they take effect. It returns, doing nothing more, when nothing was unset,
 * on the second start, or when the exec fails. Never call it from library code or after
 * starting threads. */
void lp_process_tune(char **argv);

/* Whether a command line asks for help: "help" as the command, or "-h" / "--help" anywhere
 * after the program name (where a flag's value, "--help" would be no useful value either).
 * For main(): print the usage on stdout and exit 0 when it does. */
bool lp_cli_help_requested(int argc, char **argv);

/* CRC-32 (IEEE 802.3, zlib's polynomial), continuing from crc (start with 0). */
uint32_t lp_crc32(uint32_t crc, const void *data, size_t len);

#ifdef __cplusplus
}
#endif
#endif
