/*
 * data.h - lp_frame, the columnar table every stage of the pipeline passes along, and its
 * readers and writers (CSV/TSV, JSONL, SQLite), type inference and train/test splits.
 *
 * A frame holds named columns of equal length. Each column has a storage type (numeric
 * double, dictionary-encoded categorical, or text) and an inferred kind (integer, float,
 * boolean, date-time, categorical, text), plus a missing-mask that is always allocated.
 * Invariants (every function keeps them):
 *   - missing[i] == 1  <=>  num[i] is NaN (numeric) / codes[i] == LP_CODE_MISSING
 *     (categorical) / text[i] == NULL (text);
 *   - categorical dictionary entries are distinct, in first-seen order;
 *   - date-times are numeric: seconds since 1970-01-01T00:00:00Z (no zone given = UTC);
 *   - booleans are numeric 0/1.
 * The frame owns its columns and their strings. Frames are not thread-safe for writes;
 * concurrent reads are fine.
 */
#ifndef LEPTON_DATA_H
#define LEPTON_DATA_H

#include "lepton/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lp_col_type {
    LP_COL_TYPE_NUMERIC = 0,
    LP_COL_TYPE_CATEGORICAL,
    LP_COL_TYPE_TEXT
} lp_col_type;

typedef enum lp_col_kind {
    LP_COL_KIND_INTEGER = 0,
    LP_COL_KIND_FLOAT,
    LP_COL_KIND_BOOL,
    LP_COL_KIND_DATETIME,
    LP_COL_KIND_CATEGORICAL,
    LP_COL_KIND_TEXT
} lp_col_kind;

#define LP_CODE_MISSING UINT32_MAX

typedef struct lp_dict_index lp_dict_index; /* private hash index over dict */

typedef struct lp_column {
    char *name;
    lp_col_type type;
    lp_col_kind kind;
    size_t n;          /* rows */
    uint8_t *missing;  /* (n,) 1 = missing */
    double *num;       /* NUMERIC: (n,) NaN where missing; else NULL */
    uint32_t *codes;   /* CATEGORICAL: (n,) index into dict, LP_CODE_MISSING where missing */
    char **dict;       /* CATEGORICAL: (n_dict,) distinct values */
    size_t n_dict;
    char **text;       /* TEXT: (n,) owned strings, NULL where missing */
    lp_dict_index *index; /* CATEGORICAL lookup, owned; use lp_column_dict_* */
} lp_column;

typedef struct lp_frame lp_frame;

/* "numeric", "categorical", "text" / "integer", "float", "bool", "datetime", ... */
const char *lp_col_type_name(lp_col_type t);
const char *lp_col_kind_name(lp_col_kind k);
/* Parse a kind name (also accepts "int", "double", "number", "boolean", "date", "category",
 * "string"). Returns LP_EINVAL naming the word otherwise. */
lp_status lp_col_kind_parse(const char *s, lp_col_kind *out, lp_err *err);
/* The storage type a kind uses. */
lp_col_type lp_col_kind_type(lp_col_kind k);

/* ---- frame ---------------------------------------------------------------------------------*/
lp_frame *lp_frame_new(void); /* NULL on allocation failure */
void lp_frame_free(lp_frame *f);
size_t lp_frame_nrows(const lp_frame *f);
size_t lp_frame_ncols(const lp_frame *f);
/* Column j (0-based); NULL when out of range. The frame keeps ownership. */
lp_column *lp_frame_col(const lp_frame *f, size_t j);
/* Index of the column named name, or -1. */
long lp_frame_find(const lp_frame *f, const char *name);
/* Index of the one column whose name, lower case without '_', '-' or spaces ("User-ID" ->
 * "userid"), is in names (given in that form; NULL-terminated); -1 when none or several are. */
long lp_frame_find_like(const lp_frame *f, const char *const *names);
/* Like lp_frame_find but fills err ("no column 'x' in <what>; columns are a, b, c"). */
lp_status lp_frame_require(const lp_frame *f, const char *name, const char *what, size_t *j,
                           lp_err *err);

/* Add columns (copying the values). The first column sets the row count; later columns must
 * match it (LP_EINVAL otherwise). Names must be unique and non-empty.
 * numeric: missing may be NULL (then NaN values are the missing ones).
 * categorical / text: NULL entries are missing. kind LP_COL_KIND_* must fit the storage. */
lp_status lp_frame_add_numeric(lp_frame *f, const char *name, lp_col_kind kind,
                               const double *vals, const uint8_t *missing, size_t n, lp_err *err);
lp_status lp_frame_add_categorical(lp_frame *f, const char *name, const char *const *vals,
                                   size_t n, lp_err *err);
lp_status lp_frame_add_text(lp_frame *f, const char *name, const char *const *vals, size_t n,
                            lp_err *err);
/* Take ownership of a column built by lp_column_new (freed on failure too). */
lp_status lp_frame_add_column(lp_frame *f, lp_column *col, lp_err *err);
/* Remove column j and free it. */
lp_status lp_frame_drop(lp_frame *f, size_t j, lp_err *err);
/* Replace column j with col (ownership taken; old one freed). Row count must match. */
lp_status lp_frame_replace(lp_frame *f, size_t j, lp_column *col, lp_err *err);
/* Rename column j to name; LP_EINVAL when another column has that name. */
lp_status lp_frame_rename(lp_frame *f, size_t j, const char *name, lp_err *err);
/* Detach column j from the frame without freeing it (caller owns the result). */
lp_column *lp_frame_detach(lp_frame *f, size_t j);

/* New frame of the rows idx[0..n) (repeats allowed), all columns, dictionaries kept. */
lp_status lp_frame_take_rows(const lp_frame *f, const size_t *idx, size_t n, lp_frame **out,
                             lp_err *err);
/* New frame of the named columns in the given order. */
lp_status lp_frame_select(const lp_frame *f, const char *const *names, size_t n,
                          lp_frame **out, lp_err *err);
lp_status lp_frame_clone(const lp_frame *f, lp_frame **out, lp_err *err);
/* Append the rows of src to dst; columns matched by name and type (dictionary codes are
 * remapped). LP_EINVAL naming the first mismatch. */
lp_status lp_frame_append(lp_frame *dst, const lp_frame *src, lp_err *err);

/* ---- columns -------------------------------------------------------------------------------*/
/* Empty column with n rows, all missing. NULL on allocation failure. */
lp_column *lp_column_new(const char *name, lp_col_kind kind, size_t n);
void lp_column_free(lp_column *c);
lp_column *lp_column_clone(const lp_column *c);
/* Categorical dictionary: code of s, or -1. */
long lp_column_dict_find(const lp_column *c, const char *s);
/* Code of s, adding it if new. LP_ENOMEM on failure. */
lp_status lp_column_dict_add(lp_column *c, const char *s, uint32_t *code, lp_err *err);
/* Set cell i (clears its missing flag). Strings are copied. */
lp_status lp_column_set_num(lp_column *c, size_t i, double v, lp_err *err);
lp_status lp_column_set_str(lp_column *c, size_t i, const char *s, lp_err *err);
void lp_column_set_missing(lp_column *c, size_t i);
/* Number of missing cells. */
size_t lp_column_count_missing(const lp_column *c);
/* Cell i as text for writers: numbers with %.17g trimmed (integers without ".0"), bools as
 * true/false, date-times ISO-8601 "YYYY-MM-DDTHH:MM:SS[.fff]Z", "" when missing.
 * Returns a pointer into buf or into the column (valid until it changes). */
const char *lp_column_cell_str(const lp_column *c, size_t i, char *buf, size_t cap);
/* Convert in place to another kind (e.g. categorical "1","2" to integer). Cells that do not
 * convert give LP_EPARSE naming column, row and value, leaving c unchanged. */
lp_status lp_column_convert(lp_column *c, lp_col_kind kind, lp_err *err);

/* ---- scalar parsing (shared by every reader) ------------------------------------------------*/
/* Whole-string strict parses; leading/trailing ASCII spaces allowed. */
bool lp_parse_double(const char *s, size_t n, double *out);
/* lp_parse_double, or else a number written for people as the CSV reader reads it in
 * ','-separated data: "$1,234.50", "-€3", "1,234", "12.5%" (12.5). For request bodies, so a
 * served model takes what its training file held. */
bool lp_parse_number_text(const char *s, size_t n, double *out);
bool lp_parse_int(const char *s, size_t n, int64_t *out);
/* true/false, yes/no, t/f, y/n (any case); 0/1 only when allow_01. */
bool lp_parse_bool(const char *s, size_t n, bool allow_01, bool *out);
/* ISO-8601: YYYY-MM-DD, YYYY-MM-DD[T ]HH:MM[:SS[.frac]][Z|+HH:MM|-HH:MM].
 * out = seconds since the epoch, UTC. */
bool lp_parse_datetime(const char *s, size_t n, double *out);

/* ---- CSV / TSV -----------------------------------------------------------------------------*/
typedef struct lp_csv_opts {
    char delim;              /* 0: sniff from the header line among , \t ; | */
    bool header;             /* first line names the columns (default true) */
    const char *missing;     /* comma-separated missing tokens; NULL = the default list:
                                "", NA, N/A, NaN, null, None, ? (case-sensitive) */
    const char *types;       /* per-column kind override "col:kind,col2:kind"; NULL = none */
    const char *literal_cols; /* comma-separated columns whose cells are missing only when
                                 empty: a label "None" or "NA" stays a value; NULL = none */
    size_t max_field;        /* bytes per field; default 1 MiB; longer is LP_ETOOBIG */
    size_t max_rows;         /* 0 = all */
    double cat_max_unique;   /* a string column with at most this share of distinct values
                                (and at most cat_max_distinct) is categorical, else text */
    size_t cat_max_distinct;
    size_t cat_max_len;      /* ... and whose distinct values average at most this many bytes
                                (long free text leans to text) */
} lp_csv_opts;

/* Type inference (CSV, JSONL, SQL results), per column, over its non-missing cells:
 *   integer   every cell is [sign]digits with magnitude at most 2^53 (stored as double, so
 *             exact). A column with a larger integer is read as strings (categorical or text):
 *             those are ids (card numbers, 64-bit user ids) that doubles would merge; an "int"
 *             override keeps it numeric (rounded to the nearest double).
 *             A column of only 0/1 stays integer: bool needs words or an override.
 *   float     every cell is a decimal number ([sign]digits[.digits][e[sign]digits]); words
 *             like inf/nan are not numbers here (they are under a float override).
 *   bool      every cell is true/false, yes/no, t/f, y/n (any case), or 0/1 mixed with those.
 *   datetime  every cell is ISO-8601 (see lp_parse_datetime).
 *   categorical / text   anything else. Categorical when the distinct values number at most
 *             cat_max_distinct, at most cat_max_unique of the non-missing cells, and average
 *             at most cat_max_len bytes; text otherwise. Defaults (lp_csv_opts_default):
 *             0.5, 1000 and 64.
 *   A column with no non-missing cell (all missing, or no rows) is text.
 * Missing cells: an unquoted CSV field equal to a missing token (so a quoted "NA" or "" is a
 * string, which is how the writer keeps strings that look like tokens); in JSONL, null, an
 * absent key, or a string equal to a token; in SQL results, NULL or TEXT equal to a token.
 * opts.types "col:kind,..." fixes a column's kind (names as in lp_col_kind_parse; the last ':'
 * separates name and kind); a cell that does not parse is LP_EPARSE naming file, line, column
 * and value, and an override naming no column is LP_EINVAL. */

lp_csv_opts lp_csv_opts_default(void);
lp_status lp_csv_opts_check(const lp_csv_opts *o, lp_err *err);

/* Read a CSV/TSV file (gzip read transparently). RFC 4180 quoting, CRLF, UTF-8 BOM.
 * The delimiter, when opts.delim is 0, is the one of , TAB ; | seen most often on the header
 * line outside quotes (',' on a tie or when none is seen); a header line with "::" outside
 * quotes and neither ',' nor TAB is split at "::" (MovieLens .dat: "1::1193::5::978300760").
 * Blank lines are skipped, except in
 * one-column data where a blank line is a missing cell. Without a header the columns are
 * named c1, c2, ..., and a header's empty name is cJ for column J (pandas' unnamed index).
 * With ';' as the delimiter, a decimal comma counts as a decimal point in numeric columns
 * ("12,5" is 12.5; a column read as strings keeps "12,5").
 * Types are inferred as described above lp_csv_opts_default.
 * Errors name file, line and column: ragged rows, an unterminated quote, invalid UTF-8,
 * NUL bytes, an empty file, a header with no rows (allowed: gives 0 rows), duplicate or empty
 * column names, fields over max_field, a truncated gzip. *out is new; caller frees. */
lp_status lp_frame_read_csv(const char *path, const lp_csv_opts *opts, lp_frame **out,
                            lp_err *err);
/* Same over bytes in memory; name is used in messages in place of the path. */
lp_status lp_frame_parse_csv(const char *data, size_t len, const char *name,
                             const lp_csv_opts *opts, lp_frame **out, lp_err *err);
/* Write with the given delimiter (',' or '\t'), quoting fields when needed (RFC 4180). */
lp_status lp_frame_write_csv(const lp_frame *f, const char *path, char delim, lp_err *err);
/* Same into a buffer. */
lp_status lp_frame_format_csv(const lp_frame *f, char delim, lp_buf *out, lp_err *err);

/* ---- JSONL ---------------------------------------------------------------------------------*/
/* One flat JSON object per line; keys become columns (union over rows, in first-seen order;
 * absent keys are missing). Values: numbers, strings, booleans, null. Nested objects or
 * arrays are LP_EPARSE naming line and key. opts: missing, types, max_rows, cat_* apply. */
lp_status lp_frame_read_jsonl(const char *path, const lp_csv_opts *opts, lp_frame **out,
                              lp_err *err);
lp_status lp_frame_parse_jsonl(const char *data, size_t len, const char *name,
                               const lp_csv_opts *opts, lp_frame **out, lp_err *err);
lp_status lp_frame_write_jsonl(const lp_frame *f, const char *path, lp_err *err);
/* Same into a buffer: one object per row, columns in order, missing and non-finite as null,
 * date-times as ISO-8601 strings. */
lp_status lp_frame_format_jsonl(const lp_frame *f, lp_buf *out, lp_err *err);

/* Read by extension: .jsonl/.ndjson (optionally .gz) as JSONL, everything else as CSV/TSV. */
lp_status lp_frame_read(const char *path, const lp_csv_opts *opts, lp_frame **out, lp_err *err);
/* lp_frame_read for files that may lack a header line (MovieLens ratings.dat, UCI .data
 * files): when opts asks for a header (NULL does) and the read fails or misses a name in
 * want[0..n_want), the file is read again without a header, and that frame (columns c1, c2,
 * ...) is taken when its first row reads as data (lp_frame_first_row_is_data) or when every
 * name the first line lacks is positional (c1, c2, ...) and present in that frame; else the
 * first read's result stands. *headerless says which was taken. JSONL files are read as by
 * lp_frame_read. */
lp_status lp_frame_read_sniff_header(const char *path, const lp_csv_opts *opts,
                                     const char *const *want, size_t n_want, lp_frame **out,
                                     bool *headerless, lp_err *err);
/* For a class label read from path with opts into *f: when column col is a string column with
 * missing cells, the file is read again with col in literal_cols, so that a missing-value
 * token in it ("None", "NA") is a class name and only an empty cell stays missing; the new
 * frame replaces *f, and a warning names the tokens and their rows (in JSONL a string "None"
 * becomes a class, a null stays missing). A numeric column or a column with no missing cell is
 * left as read. */
lp_status lp_frame_reread_label(const char *path, const lp_csv_opts *opts, const char *col,
                                lp_frame **f, lp_err *err);
/* The reading of a labelled table: lp_frame_read_sniff_header, then lp_frame_reread_label for
 * label (NULL: none) with the header setting the first step settled on. *out is NULL on error. */
lp_status lp_frame_read_labelled(const char *path, const lp_csv_opts *opts,
                                 const char *const *want, size_t n_want, const char *label,
                                 lp_frame **out, lp_err *err);
/* Whether the first row of a frame read without a header is data rather than column names,
 * by the vote of Python's csv.Sniffer.has_header over the first 200 rows: a column whose later
 * rows are all numbers votes "names" unless its first cell is a number too; a string column
 * whose later rows share one length votes "data" when the first cell has that length, "names"
 * otherwise. False for fewer than 2 rows. */
bool lp_frame_first_row_is_data(const lp_frame *f);
/* Write by extension: .jsonl as JSONL, .tsv as TSV, else CSV. */
lp_status lp_frame_write(const lp_frame *f, const char *path, lp_err *err);

/* ---- splits --------------------------------------------------------------------------------*/
typedef struct lp_split {
    size_t *train, *test; /* row indices, owned */
    size_t n_train, n_test;
} lp_split;

void lp_split_free(lp_split *s); /* frees the arrays, not s */
/* Seeded random split; test gets round(test_frac * n) rows. test_frac in (0,1). */
lp_status lp_split_random(size_t n, double test_frac, uint64_t seed, lp_split *out, lp_err *err);
/* Stratified by a categorical or integer/bool column: each class split in proportion (rows
 * with a missing label go to train). */
lp_status lp_split_stratified(const lp_column *label, double test_frac, uint64_t seed,
                              lp_split *out, lp_err *err);
/* By time: the latest test_frac of rows (by the numeric/date-time column) are test; ties at
 * the cut go to test. Missing times are LP_EINVAL. Indices come out in time order. */
lp_status lp_split_time(const lp_column *time, double test_frac, lp_split *out, lp_err *err);

/* ---- SQLite --------------------------------------------------------------------------------*/
/* Append f to table (created from the frame's schema when absent: INTEGER/REAL/TEXT columns;
 * date-times stored as ISO-8601 TEXT) in one transaction; an existing table must have every
 * column of the frame. WAL mode. *appended gets the row count (may be NULL). */
lp_status lp_frame_to_sqlite(const lp_frame *f, const char *db_path, const char *table,
                             size_t *appended, lp_err *err);
/* Run a query and return its result as a frame (types inferred as for CSV). */
lp_status lp_frame_from_sql(const char *db_path, const char *sql, const lp_csv_opts *opts,
                            lp_frame **out, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
