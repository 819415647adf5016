/*
 * data_internal.h - what the data module's readers share and nothing outside it needs: the
 * missing-token set, the per-column builder that infers a column's kind while cells stream in,
 * the "col:kind" override list, a UTF-8/NUL validator, and a cell store for readers that see
 * cells out of column order (JSONL, SQL).
 *
 * The builder is the heart of type inference. Cells are pushed one at a time, row order; the
 * builder keeps one guess (integer, float, bool, date-time, string) and stores values directly
 * in its final form (doubles, or dictionary codes for strings), so numeric columns never hold a
 * string. When a cell does not fit a numeric guess the builder answers LP_CB_REJECT and the
 * reader restarts that column as strings (lp_colbuild_restart_string) and pushes the column's
 * earlier cells again; that happens at most once per column.
 */
#ifndef LEPTON_DATA_INTERNAL_H
#define LEPTON_DATA_INTERNAL_H

#include "lepton/data.h"

/* ---- missing tokens ------------------------------------------------------------------------*/
#define LP_MISSING_MAX 64

typedef struct lp_missing_set {
    char *storage;                    /* owned copy of the list */
    const char *tok[LP_MISSING_MAX];  /* pointers into storage */
    size_t len[LP_MISSING_MAX];
    size_t n;
    bool empty;        /* "" is a missing token */
    uint8_t first[256]; /* 1 when some non-empty token starts with that byte */
} lp_missing_set;

/* list NULL = the default list of data.h. LP_EINVAL when it has more than LP_MISSING_MAX. */
lp_status lp_missing_init(lp_missing_set *m, const char *list, lp_err *err);
void lp_missing_free(lp_missing_set *m);

/* Whether name is one of the comma-separated names in list (NULL: none). */
bool lp_name_listed(const char *list, const char *name);

static inline bool lp_missing_match(const lp_missing_set *m, const char *s, size_t n)
{
    if (n == 0)
        return m->empty;
    if (!m->first[(unsigned char)s[0]])
        return false;
    for (size_t k = 0; k < m->n; k++)
        if (m->len[k] == n && __builtin_memcmp(m->tok[k], s, n) == 0)
            return true;
    return false;
}

/* ---- number parsing ------------------------------------------------------------------------*/
/* Decimal number syntax only ([sign]digits[.digits][(e|E)[sign]digits], spaces around allowed;
 * no inf/nan/hex). Exact: Clinger's fast path when the mantissa fits 2^53 and |exp| <= 22,
 * strtod otherwise. *is_int: no '.', no exponent and within int64. */
bool lp_parse_number_fast(const char *s, size_t n, double *out, bool *is_int);
/* The largest integer magnitude below which every integer is a double exactly (2^53). An
 * inferred integer column with a larger value is read as strings: such values are ids (card
 * numbers, 64-bit user ids) that a double would merge. An int override keeps them numbers. */
#define LP_EXACT_INT_MAX 9007199254740992.0

/* ---- column kind overrides ("col:kind,col2:kind") --------------------------------------------*/
typedef struct lp_typespec {
    char *storage;
    size_t n;
    const char **names;
    lp_col_kind *kinds;
    bool *used;
} lp_typespec;

/* spec NULL or "" = no overrides. LP_EINVAL naming the bad item. */
lp_status lp_typespec_parse(lp_typespec *t, const char *spec, lp_err *err);
void lp_typespec_free(lp_typespec *t);
/* Index of the override for column name, or -1 (marks it used). */
long lp_typespec_find(lp_typespec *t, const char *name);
/* LP_EINVAL naming the first override that matched no column of `what`. */
lp_status lp_typespec_check_used(const lp_typespec *t, const char *what, lp_err *err);

/* ---- column builder -------------------------------------------------------------------------*/
typedef enum lp_cb_state {
    LP_CB_UNKNOWN = 0, /* only missing cells so far */
    LP_CB_INT,
    LP_CB_FLOAT,
    LP_CB_BOOL,
    LP_CB_DATETIME,
    LP_CB_STRING
} lp_cb_state;

typedef enum lp_cb_result { LP_CB_OK = 0, LP_CB_REJECT, LP_CB_NOMEM } lp_cb_result;

typedef struct lp_colbuild {
    char *name;
    lp_cb_state state;
    bool fixed;           /* kind given by an override: cells that do not parse are rejected */
    lp_col_kind fixed_kind;
    bool only01;          /* INT state: every value so far is 0 or 1 */
    size_t n, cap;        /* rows pushed, allocated */
    uint8_t *missing;     /* (cap,) */
    double *num;          /* (cap,) numeric states */
    uint32_t *codes;      /* (cap,) STRING state */
    /* STRING state dictionary: distinct values in first-seen order, open-addressing index */
    char **dict;
    uint32_t *dict_len;
    uint32_t *dict_hash;
    size_t n_dict, dict_cap, dict_bytes;
    uint32_t *slots; /* code + 1, 0 = empty */
    size_t slot_cap;
} lp_colbuild;

/* name is copied. fixed_kind < 0: infer. cap_hint: expected rows (0 is fine). */
lp_status lp_colbuild_init(lp_colbuild *b, const char *name, int fixed_kind, size_t cap_hint,
                           lp_err *err);
void lp_colbuild_free(lp_colbuild *b);
lp_cb_result lp_colbuild_push(lp_colbuild *b, const char *s, size_t n);
lp_cb_result lp_colbuild_push_missing(lp_colbuild *b);
/* Forget every row and switch to strings (after LP_CB_REJECT of an inferred column). false on
 * allocation failure. */
bool lp_colbuild_restart_string(lp_colbuild *b);
/* What a rejected cell was expected to be ("a number", "an integer", ...). */
const char *lp_colbuild_expected(const lp_colbuild *b);
/* Turn the builder into a column (categorical vs text decided from opts). The builder is left
 * empty (free it anyway). */
lp_status lp_colbuild_finish(lp_colbuild *b, const lp_csv_opts *opts, lp_column **out,
                             lp_err *err);

/* ---- validation ----------------------------------------------------------------------------*/
/* Check data is valid UTF-8 without NUL bytes. On failure fill err (LP_EPARSE) with
 * "<name> line L, byte B: invalid UTF-8" / "...: NUL byte" and return it. */
lp_status lp_text_validate(const char *data, size_t len, const char *name, lp_err *err);

/* ---- cell store (JSONL, SQL) ------------------------------------------------------------------*/
typedef struct lp_cell {
    size_t row;
    size_t off;    /* into the store's bytes */
    uint32_t len;
    uint8_t flags; /* LP_CELL_* */
} lp_cell;

enum { LP_CELL_NULL = 1, LP_CELL_TOKENS = 2 /* may match a missing token */ };

typedef struct lp_cellcol {
    char *name;
    lp_cell *cells;
    size_t n, cap;
} lp_cellcol;

typedef struct lp_cellstore {
    lp_buf bytes;
    lp_cellcol *cols;
    size_t ncols, cap;
    size_t nrows;
    size_t *row_line; /* (nrows,) source line or row number for messages */
    size_t row_cap;
    size_t *index;     /* cols by name, open addressing: slot = column + 1, 0 empty */
    size_t index_cap;  /* a power of two above twice ncols; 0 before the first column */
} lp_cellstore;

void lp_cellstore_init(lp_cellstore *s);
void lp_cellstore_free(lp_cellstore *s);
/* Column index for name, added when new; -1 on allocation failure. */
long lp_cellstore_col(lp_cellstore *s, const char *name);
/* Start a new row (line is kept for messages). false on allocation failure. */
bool lp_cellstore_row(lp_cellstore *s, size_t line);
/* Add a cell to the current row. false on allocation failure. */
bool lp_cellstore_put(lp_cellstore *s, size_t col, const char *v, size_t len, uint8_t flags);
/* A frame of more than LP_CELLSTORE_SPARSE_MIN cells that would hold under one value in
 * LP_CELLSTORE_SPARSE_RATIO of them is refused (LP_ETOOBIG): every distinct key is a dense
 * column. */
#define LP_CELLSTORE_SPARSE_MIN (16u << 20)
#define LP_CELLSTORE_SPARSE_RATIO 64.0
/* Build a frame, inferring each column. what names the input in messages; line_word is
 * "line" or "row". */
lp_status lp_cellstore_frame(lp_cellstore *s, const lp_csv_opts *opts, const char *what,
                             const char *line_word, lp_frame **out, lp_err *err);

/* Replace control characters in err's message (a column name or value may hold a newline) so
 * it stays one line. Returns st. */
lp_status lp_err_oneline(lp_err *err, lp_status st);

/* Shorten v to at most 40 bytes for a message, into buf. */
const char *lp_msg_value(const char *v, size_t n, char *buf, size_t cap);

/* A number written for people ("$1,234.50", "12.5%", "-€3"; in ';'-separated data (delim)
 * the decimal comma, "12,5", "1.234,5") rewritten into out as a plain one ("1234.50"); false
 * when s (n) is no such number, or is plain already. parse.c. */
bool lp_number_unformat(const char *s, size_t n, char delim, char *out, size_t cap);

#endif
