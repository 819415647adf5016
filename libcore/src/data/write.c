/*
 * write.c - CSV/TSV and JSONL writers, and lp_frame_read / lp_frame_write, which pick a format
 * by file extension.
 *
 * CSV cells come from lp_column_cell_str. A field is quoted (RFC 4180, "" for a quote) when it
 * holds the delimiter, a quote, CR, LF or "::", starts or ends with a space or starts with a UTF-8
 * byte-order mark, or is a string cell that
 * the reader would take for missing (empty or a default missing token) - so written frames
 * read back with the same values and missing cells. Missing cells are written empty and
 * unquoted. JSONL writes missing cells and non-finite numbers as null. Files are written
 * atomically (lp_file_write).
 */
#include "data/data_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool looks_missing(const char *s)
{
    static const char *tok[] = {"", "NA", "N/A", "NaN", "null", "None", "?"};
    for (size_t k = 0; k < sizeof tok / sizeof tok[0]; k++)
        if (strcmp(s, tok[k]) == 0)
            return true;
    return false;
}

static void put_csv_field(lp_buf *b, const char *s, char delim, bool is_string)
{
    size_t n = strlen(s);
    bool quote = is_string && looks_missing(s);
    if (n && (s[0] == ' ' || s[n - 1] == ' '))
        quote = true;
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        quote = true; /* would read back as a byte-order mark */
    for (size_t i = 0; i < n && !quote; i++)
        quote = s[i] == delim || s[i] == '"' || s[i] == '\n' || s[i] == '\r' ||
                (s[i] == ':' && s[i + 1] == ':'); /* the reader may split a line at "::" */
    if (!quote) {
        lp_buf_put(b, s, n);
        return;
    }
    lp_buf_u8(b, '"');
    const char *p = s;
    for (const char *q; (q = strchr(p, '"')); p = q + 1) {
        lp_buf_put(b, p, (size_t)(q - p) + 1);
        lp_buf_u8(b, '"');
    }
    lp_buf_put(b, p, strlen(p));
    lp_buf_u8(b, '"');
}

lp_status lp_frame_format_csv(const lp_frame *f, char delim, lp_buf *out, lp_err *err)
{
    if (delim != ',' && delim != '\t' && delim != ';' && delim != '|')
        return lp_err_set(err, LP_EINVAL, "csv writer: delimiter must be , TAB ; or |");
    size_t nc = lp_frame_ncols(f), nr = lp_frame_nrows(f);
    for (size_t j = 0; j < nc; j++) {
        if (j)
            lp_buf_u8(out, (uint8_t)delim);
        put_csv_field(out, lp_frame_col(f, j)->name, delim, false);
    }
    lp_buf_u8(out, '\n');
    char buf[64];
    for (size_t i = 0; i < nr && !out->failed; i++) {
        for (size_t j = 0; j < nc; j++) {
            const lp_column *c = lp_frame_col(f, j);
            if (j)
                lp_buf_u8(out, (uint8_t)delim);
            if (c->missing[i])
                continue;
            put_csv_field(out, lp_column_cell_str(c, i, buf, sizeof buf), delim,
                          c->type != LP_COL_TYPE_NUMERIC);
        }
        lp_buf_u8(out, '\n');
    }
    return lp_buf_status(out, err);
}

static lp_status write_buf(lp_buf *b, const char *path, lp_err *err)
{
    lp_status st = lp_buf_status(b, err);
    if (!st)
        st = lp_file_write(path, b->data ? (const void *)b->data : "", b->len, err);
    lp_buf_free(b);
    return st;
}

lp_status lp_frame_write_csv(const lp_frame *f, const char *path, char delim, lp_err *err)
{
    lp_buf b;
    lp_buf_init(&b);
    lp_status st = lp_frame_format_csv(f, delim, &b, err);
    if (st) {
        lp_buf_free(&b);
        return lp_err_prefix(err, "%s", path);
    }
    return write_buf(&b, path, err);
}

static void put_json_string(lp_buf *b, const char *s)
{
    lp_buf_u8(b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            lp_buf_u8(b, '\\');
            lp_buf_u8(b, (uint8_t)c);
        } else if (c == '\n') {
            lp_buf_put(b, "\\n", 2);
        } else if (c == '\r') {
            lp_buf_put(b, "\\r", 2);
        } else if (c == '\t') {
            lp_buf_put(b, "\\t", 2);
        } else if (c < 0x20) {
            lp_buf_printf(b, "\\u%04x", c);
        } else {
            lp_buf_u8(b, (uint8_t)c);
        }
    }
    lp_buf_u8(b, '"');
}

/* The frame as JSON lines into out. */
static lp_status format_jsonl(const lp_frame *f, lp_buf *out, lp_err *err)
{
    size_t nc = lp_frame_ncols(f), nr = lp_frame_nrows(f);
    char buf[64];
    for (size_t i = 0; i < nr && !out->failed; i++) {
        lp_buf_u8(out, '{');
        for (size_t j = 0; j < nc; j++) {
            const lp_column *c = lp_frame_col(f, j);
            if (j)
                lp_buf_u8(out, ',');
            put_json_string(out, c->name);
            lp_buf_u8(out, ':');
            if (c->missing[i] || (c->type == LP_COL_TYPE_NUMERIC && !isfinite(c->num[i]))) {
                lp_buf_put(out, "null", 4);
                continue;
            }
            const char *s = lp_column_cell_str(c, i, buf, sizeof buf);
            if (c->type != LP_COL_TYPE_NUMERIC || c->kind == LP_COL_KIND_DATETIME)
                put_json_string(out, s);
            else
                lp_buf_put(out, s, strlen(s));
        }
        lp_buf_put(out, "}\n", 2);
    }
    return lp_buf_status(out, err);
}

lp_status lp_frame_write_jsonl(const lp_frame *f, const char *path, lp_err *err)
{
    lp_buf b;
    lp_buf_init(&b);
    lp_status st = format_jsonl(f, &b, err);
    if (st) {
        lp_buf_free(&b);
        return lp_err_prefix(err, "%s", path);
    }
    return write_buf(&b, path, err);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static bool is_jsonl(const char *path)
{
    return ends_with(path, ".jsonl") || ends_with(path, ".ndjson") ||
           ends_with(path, ".jsonl.gz") || ends_with(path, ".ndjson.gz");
}

lp_status lp_frame_read(const char *path, const lp_csv_opts *opts, lp_frame **out, lp_err *err)
{
    if (is_jsonl(path))
        return lp_frame_read_jsonl(path, opts, out, err);
    return lp_frame_read_csv(path, opts, out, err);
}

static bool cell_is_num(const lp_column *col, size_t i)
{
    if (col->missing[i])
        return false;
    if (col->type == LP_COL_TYPE_NUMERIC)
        return true;
    char buf[64];
    const char *v = lp_column_cell_str(col, i, buf, sizeof buf);
    double d;
    return lp_parse_double(v, strlen(v), &d);
}

bool lp_frame_first_row_is_data(const lp_frame *f)
{
    size_t n = lp_frame_nrows(f);
    if (n < 2)
        return false;
    size_t look = n < 201 ? n : 201;
    int vote = 0;
    char buf[64];
    for (size_t j = 0; j < lp_frame_ncols(f); j++) {
        const lp_column *col = lp_frame_col(f, j);
        bool rest_num = true, same_len = true;
        size_t len = 0, seen = 0;
        for (size_t i = 1; i < look; i++) {
            if (col->missing[i])
                continue;
            rest_num = rest_num && cell_is_num(col, i);
            size_t l = strlen(lp_column_cell_str(col, i, buf, sizeof buf));
            if (seen++ == 0)
                len = l;
            else if (l != len)
                same_len = false;
        }
        if (!seen || col->missing[0])
            continue;
        if (rest_num)
            vote += cell_is_num(col, 0) ? 1 : -1;
        else if (same_len)
            vote += strlen(lp_column_cell_str(col, 0, buf, sizeof buf)) == len ? 1 : -1;
    }
    return vote > 0;
}

lp_status lp_frame_read_sniff_header(const char *path, const lp_csv_opts *opts,
                                     const char *const *want, size_t n_want, lp_frame **out,
                                     bool *headerless, lp_err *err)
{
    *headerless = false;
    lp_status st = lp_frame_read(path, opts, out, err);
    if (is_jsonl(path) || (opts && !opts->header))
        return st;
    bool missing = st != LP_OK;
    for (size_t k = 0; !missing && k < n_want; k++)
        missing = want[k] && lp_frame_find(*out, want[k]) < 0;
    if (!missing)
        return st;
    lp_csv_opts o = opts ? *opts : lp_csv_opts_default();
    o.header = false;
    lp_frame *g = NULL;
    lp_err e2;
    lp_err_clear(&e2);
    if (lp_frame_read(path, &o, &g, &e2))
        return st;
    /* the names the first line lacks are all positional (c1, c2, ...) and the file has those
     * columns: the caller reads it by position, whatever the first line looks like */
    size_t n_pos = 0, n_other = 0;
    for (size_t k = 0; k < n_want; k++) {
        const char *w = want[k];
        if (!w || (*out && lp_frame_find(*out, w) >= 0))
            continue;
        bool pos = w[0] == 'c' && w[1] >= '1' && w[1] <= '9' &&
                   strspn(w + 1, "0123456789") == strlen(w + 1) && lp_frame_find(g, w) >= 0;
        n_pos += pos;
        n_other += !pos;
    }
    bool positional = n_pos && !n_other;
    bool data = lp_frame_first_row_is_data(g);
    if (lp_frame_ncols(g) < 2 || !(data || positional)) {
        lp_frame_free(g);
        return st;
    }
    lp_frame_free(*out);
    *out = g;
    *headerless = true;
    lp_log_warn("%s: no header line (%s): columns named c1..c%zu", path,
                data ? "its first line reads as data" : "the columns are named by position",
                lp_frame_ncols(g));
    if (err)
        lp_err_clear(err);
    return LP_OK;
}

lp_status lp_frame_reread_label(const char *path, const lp_csv_opts *opts, const char *col,
                                lp_frame **f, lp_err *err)
{
    long j = col ? lp_frame_find(*f, col) : -1;
    if (j < 0)
        return LP_OK;
    const lp_column *c = lp_frame_col(*f, (size_t)j);
    if (c->type == LP_COL_TYPE_NUMERIC || !lp_column_count_missing(c))
        return LP_OK;
    lp_csv_opts o = opts ? *opts : lp_csv_opts_default();
    o.literal_cols = col;
    lp_frame *g = NULL;
    lp_status st = lp_frame_read(path, &o, &g, err);
    if (st)
        return st;
    const lp_column *d = lp_frame_col(g, (size_t)j);
    if (lp_frame_nrows(g) != lp_frame_nrows(*f) || !d || strcmp(d->name, col)) {
        lp_frame_free(g);
        return LP_OK;
    }
    /* the cells that were missing and are values now, for the warning */
    char seen[160] = "";
    size_t n = 0, len = 0;
    char buf[64];
    for (size_t i = 0; i < d->n; i++) {
        if (!c->missing[i] || d->missing[i])
            continue;
        n++;
        const char *v = lp_column_cell_str(d, i, buf, sizeof buf);
        char quoted[80];
        snprintf(quoted, sizeof quoted, "'%s'", v);
        if (!strstr(seen, quoted) && len + strlen(quoted) + 3 < sizeof seen)
            len += (size_t)snprintf(seen + len, sizeof seen - len, "%s%s", len ? ", " : "",
                                    quoted);
    }
    if (n)
        lp_log_warn("%s: label '%s': %s read as class names (%zu rows), not as missing values",
                    path, col, seen, n);
    lp_frame_free(*f);
    *f = g;
    return LP_OK;
}

lp_status lp_frame_read_labelled(const char *path, const lp_csv_opts *opts,
                                 const char *const *want, size_t n_want, const char *label,
                                 lp_frame **out, lp_err *err)
{
    bool headerless;
    lp_status st = lp_frame_read_sniff_header(path, opts, want, n_want, out, &headerless, err);
    lp_csv_opts o = opts ? *opts : lp_csv_opts_default();
    if (headerless)
        o.header = false;
    if (!st && label)
        st = lp_frame_reread_label(path, &o, label, out, err);
    if (st) {
        lp_frame_free(*out);
        *out = NULL;
    }
    return st;
}

lp_status lp_frame_write(const lp_frame *f, const char *path, lp_err *err)
{
    if (ends_with(path, ".jsonl") || ends_with(path, ".ndjson"))
        return lp_frame_write_jsonl(f, path, err);
    return lp_frame_write_csv(f, path, ends_with(path, ".tsv") ? '\t' : ',', err);
}

lp_status lp_frame_format_jsonl(const lp_frame *f, lp_buf *out, lp_err *err)
{
    return format_jsonl(f, out, err);
}
