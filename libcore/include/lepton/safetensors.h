/*
 * safetensors.h - a reader for the safetensors checkpoint format (Hugging Face): an 8-byte
 * little-endian header length N, N bytes of JSON mapping each tensor name to
 * {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative to the byte after the
 * header), an optional "__metadata__" object of string pairs, then the raw little-endian data.
 *
 * The reader validates everything before it hands out a tensor: the header length against the
 * file, the JSON, every dtype (unknown ones are refused), every shape (non-negative integers,
 * element count without overflow), every data_offsets pair (begin <= end <= data length, end -
 * begin == elements x dtype size) and that no two tensors overlap. Errors name the file, the
 * tensor and what was expected; nothing crashes on a hostile file (there is a fuzz target).
 *
 * It does not write safetensors and does not memory-map: the file is read into memory once.
 * Float tensors (F32, F16, BF16, F64) convert to F32 with lp_safetensors_to_f32; integer and
 * bool tensors are exposed as raw little-endian bytes. Handles are immutable after parsing and
 * may be read from several threads.
 */
#ifndef LEPTON_SAFETENSORS_H
#define LEPTON_SAFETENSORS_H

#include "lepton/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest header accepted (the format's own reader uses 100 MB). */
#define LP_SAFETENSORS_HEADER_MAX (100u * 1024u * 1024u)
#define LP_SAFETENSORS_MAX_DIMS 8

typedef enum lp_st_dtype {
    LP_ST_DTYPE_F32 = 0,
    LP_ST_DTYPE_F16,
    LP_ST_DTYPE_BF16,
    LP_ST_DTYPE_F64,
    LP_ST_DTYPE_I64,
    LP_ST_DTYPE_I32,
    LP_ST_DTYPE_I16,
    LP_ST_DTYPE_I8,
    LP_ST_DTYPE_U8,
    LP_ST_DTYPE_BOOL,
    LP_ST_DTYPE_COUNT_
} lp_st_dtype;

/* The format's spelling ("F32", "BF16", ...); NULL for a bad value. */
const char *lp_st_dtype_name(lp_st_dtype d);
/* Bytes per element (0 for a bad value). */
size_t lp_st_dtype_size(lp_st_dtype d);

/* One tensor as the header describes it. Owned by the lp_safetensors handle. */
typedef struct lp_st_tensor {
    const char *name;
    lp_st_dtype dtype;
    size_t ndim; /* 0 for a scalar */
    size_t shape[LP_SAFETENSORS_MAX_DIMS];
    size_t numel;        /* product of shape (1 for a scalar) */
    const uint8_t *data; /* numel * dtype size bytes, little-endian, not aligned */
    size_t nbytes;
} lp_st_tensor;

typedef struct lp_safetensors lp_safetensors;

/* Parse and validate a safetensors image held in memory. The bytes are copied, so data may be
 * freed afterwards. name is used in messages (e.g. the file path). LP_EFORMAT for a structural
 * problem (header length, JSON, offsets), LP_EUNSUPPORTED for an unknown dtype or too many
 * dimensions, LP_ENOMEM. *out is NULL on failure; free with lp_safetensors_free. */
lp_status lp_safetensors_parse(const void *data, size_t len, const char *name, lp_safetensors **out,
                               lp_err *err);
/* Read path (gzip transparently, see lp_file_read) and parse it. Errors name the path. */
lp_status lp_safetensors_load(const char *path, lp_safetensors **out, lp_err *err);
void lp_safetensors_free(lp_safetensors *st); /* NULL is a no-op */

/* Tensors in header order (the JSON object order), excluding "__metadata__". */
size_t lp_safetensors_count(const lp_safetensors *st);
/* The i-th tensor, or NULL when out of range. */
const lp_st_tensor *lp_safetensors_at(const lp_safetensors *st, size_t i);
/* The tensor named `name`, or NULL. */
const lp_st_tensor *lp_safetensors_find(const lp_safetensors *st, const char *name);
/* A "__metadata__" string value, or NULL when absent (owned by st). */
const char *lp_safetensors_metadata(const lp_safetensors *st, const char *key);

/* Convert a float tensor to F32 into out (t->numel floats, caller-owned). F16 is IEEE-754
 * binary16 (subnormals, Inf and NaN kept), BF16 the top 16 bits of an F32, F64 rounded to
 * nearest. LP_EUNSUPPORTED naming the tensor for integer and bool dtypes. Thread-safe. */
lp_status lp_safetensors_to_f32(const lp_st_tensor *t, float *out, lp_err *err);

/* IEEE-754 half (binary16) and bfloat16 bit patterns to float. Pure functions. */
float lp_f16_to_f32(uint16_t h);
float lp_bf16_to_f32(uint16_t h);

#ifdef __cplusplus
}
#endif
#endif
