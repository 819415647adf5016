/*
 * registry.h - the `.lpm` model file and the SQLite model registry.
 *
 * An .lpm file is one self-contained model: a JSON header (model kind, feature schema,
 * training metrics, data fingerprint, parameters) plus named binary sections (tensors,
 * serialized pipelines, trees), each 64-byte aligned, each with its own CRC-32, and a CRC-32 of
 * the whole file at the end. The layout is documented in docs/model-format.md. Readers check
 * magic, version, every offset and size against the file length, every CRC, and the JSON, and
 * reject a bad file with a message naming the file and what was wrong, never a crash.
 *
 * The registry is a SQLite database of registered model files: name, version (1, 2, ... per
 * name), kind, path, sha256, metrics and parameters (JSON text), stage
 * (staging|production|archived) and created-at. Promoting a version to production archives the
 * previous production version of that name in the same transaction.
 */
#ifndef LEPTON_REGISTRY_H
#define LEPTON_REGISTRY_H

#include "lepton/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define LP_LPM_VERSION 1u
#define LP_LPM_NAME_MAX 48 /* section names, including the terminating NUL */

typedef enum lp_lpm_dtype {
    LP_LPM_DTYPE_BYTES = 0, /* opaque serialized bytes (lp_buf) */
    LP_LPM_DTYPE_F32 = 1,
    LP_LPM_DTYPE_F64 = 2,
    LP_LPM_DTYPE_I32 = 3,
    LP_LPM_DTYPE_U8 = 4
} lp_lpm_dtype;

/* ---- writing -------------------------------------------------------------------------------*/
typedef struct lp_lpm_writer lp_lpm_writer;

lp_lpm_writer *lp_lpm_writer_new(void); /* NULL on allocation failure */
void lp_lpm_writer_free(lp_lpm_writer *w);
/* Add a section; data is copied. Names are unique, 1..47 bytes of [A-Za-z0-9_.:/-]. */
lp_status lp_lpm_writer_add(lp_lpm_writer *w, const char *name, lp_lpm_dtype dtype,
                            const void *data, size_t size, lp_err *err);
/* Serialize to bytes (caller frees *out) with the given JSON header text (must parse as a
 * JSON object). Deterministic: the same sections and header give the same bytes. */
lp_status lp_lpm_writer_finish(const lp_lpm_writer *w, const char *header_json, uint8_t **out,
                               size_t *len, lp_err *err);
/* Serialize and write atomically to path. */
lp_status lp_lpm_writer_save(const lp_lpm_writer *w, const char *header_json, const char *path,
                             lp_err *err);

/* ---- reading -------------------------------------------------------------------------------*/
typedef struct lp_lpm lp_lpm;

/* Parse and fully validate a model file held in memory (copied). name is used in messages. */
lp_status lp_lpm_parse(const void *data, size_t len, const char *name, lp_lpm **out, lp_err *err);
/* Read and validate a file. */
lp_status lp_lpm_load(const char *path, lp_lpm **out, lp_err *err);
void lp_lpm_free(lp_lpm *m);
/* The JSON header text (NUL-terminated, owned by m). */
const char *lp_lpm_header(const lp_lpm *m);
uint32_t lp_lpm_version(const lp_lpm *m);
size_t lp_lpm_section_count(const lp_lpm *m);
/* Section i's name (owned by m) or NULL when out of range. */
const char *lp_lpm_section_name(const lp_lpm *m, size_t i);
/* Find a section: data stays owned by m (64-byte aligned). LP_ENOTFOUND naming the file and
 * section when absent, LP_EFORMAT when dtype differs from want (pass -1 to accept any). */
lp_status lp_lpm_section(const lp_lpm *m, const char *name, int want_dtype, const void **data,
                         size_t *size, lp_err *err);

/* ---- hashing -------------------------------------------------------------------------------*/
/* SHA-256 (FIPS 180-4) of bytes, as 64 lowercase hex digits plus NUL in hex[65]. */
void lp_sha256_hex(const void *data, size_t len, char hex[65]);
/* SHA-256 of a file's bytes. */
lp_status lp_sha256_file(const char *path, char hex[65], lp_err *err);

/* ---- registry ------------------------------------------------------------------------------*/
typedef struct lp_registry lp_registry;

typedef enum lp_stage {
    LP_STAGE_STAGING = 0,
    LP_STAGE_PRODUCTION,
    LP_STAGE_ARCHIVED
} lp_stage;

const char *lp_stage_name(lp_stage s);
lp_status lp_stage_parse(const char *s, lp_stage *out, lp_err *err);

typedef struct lp_registry_entry {
    char *name, *kind, *path, *sha256, *metrics_json, *params_json, *created_at;
    int64_t version;
    lp_stage stage;
} lp_registry_entry;

void lp_registry_entry_clear(lp_registry_entry *e); /* frees the strings */

/* Open (creating when absent) a registry database; WAL mode, schema versioned with
 * PRAGMA user_version. One handle per thread. */
lp_status lp_registry_open(const char *db_path, lp_registry **out, lp_err *err);
void lp_registry_close(lp_registry *r);
/* Register a model file as the next version of name (stage staging). Computes the file's
 * sha256. metrics_json / params_json may be NULL. *version gets the new version. */
lp_status lp_registry_add(lp_registry *r, const char *name, const char *kind, const char *path,
                          const char *metrics_json, const char *params_json, int64_t *version,
                          lp_err *err);
/* All entries (name NULL) or those of one name, newest first. *out is an array of *n entries
 * the caller frees with lp_registry_entries_free. */
lp_status lp_registry_list(lp_registry *r, const char *name, lp_registry_entry **out, size_t *n,
                           lp_err *err);
void lp_registry_entries_free(lp_registry_entry *e, size_t n);
/* One entry; version 0 means the production version, else the latest. */
lp_status lp_registry_get(lp_registry *r, const char *name, int64_t version,
                          lp_registry_entry *out, lp_err *err);
/* Set a version's stage; promoting to production archives the previous production version of
 * the same name (one transaction). */
lp_status lp_registry_promote(lp_registry *r, const char *name, int64_t version, lp_stage stage,
                              lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
