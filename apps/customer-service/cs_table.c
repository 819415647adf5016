/*
 * cs_table.c - read a small text table (TSV, or CSV with optional double quotes) keeping every
 * cell as text. The shared data sets are TSV without quoting; the project's own files may be
 * CSV, whose quoted fields may hold the delimiter, "" and newlines (RFC 4180; a quote opens a
 * field only as its first byte). A header line without a TAB is split at the most frequent of
 * , ; | (HWU64's NLU-Evaluation-Data is ';'-separated), quoted as CSV. A file whose first line
 * starts with "__label__" is fastText's format: columns label and text. A leading UTF-8
 * byte-order mark is skipped; CRLF is read as LF at record ends. No type inference: intent
 * labels such as "none" or "NA" stay labels.
 * Invariant: every row has exactly n_cols cells (a short row is an error naming its line).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cs.h"

void cs_table_free(cs_table *t)
{
    if (!t)
        return;
    for (size_t j = 0; j < t->n_cols && t->names; j++)
        free(t->names[j]);
    for (size_t i = 0; i < t->n_rows * t->n_cols && t->cells; i++)
        free(t->cells[i]);
    free(t->names);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* Split one line into fields; quotes honoured for CSV. Returns field count or -1 (ENOMEM). */
static long split_line(const char *s, size_t len, char delim, char ***out)
{
    size_t cap = 8, n = 0;
    char **v = malloc(cap * sizeof(char *));
    if (!v)
        return -1;
    size_t i = 0;
    for (;;) {
        lp_buf b;
        lp_buf_init(&b);
        if (delim != '\t' && i < len && s[i] == '"') {
            i++;
            while (i < len) {
                if (s[i] == '"' && i + 1 < len && s[i + 1] == '"') {
                    lp_buf_u8(&b, '"');
                    i += 2;
                } else if (s[i] == '"') {
                    i++;
                    break;
                } else {
                    lp_buf_u8(&b, (uint8_t)s[i++]);
                }
            }
            while (i < len && s[i] != delim)
                i++;
        } else {
            size_t st = i;
            while (i < len && s[i] != delim)
                i++;
            lp_buf_put(&b, s + st, i - st);
        }
        lp_buf_u8(&b, 0);
        size_t bl;
        char *cell = (char *)lp_buf_take(&b, &bl);
        if (!cell || n == cap) {
            char **nv = cell ? realloc(v, 2 * cap * sizeof(char *)) : NULL;
            if (!nv) {
                free(cell);
                for (size_t k = 0; k < n; k++)
                    free(v[k]);
                free(v);
                return -1;
            }
            v = nv;
            cap *= 2;
        }
        v[n++] = cell;
        if (i >= len)
            break;
        i++; /* delimiter */
    }
    *out = v;
    return (long)n;
}

/* The end of the record that starts at data + pos (len bytes in all): the first newline outside
 * a quoted CSV field (a quote opens one only as a field's first byte, as split_line reads it).
 * *lines gets the newlines inside the record; false when a quoted field never closes. */
static bool record_end(const char *data, size_t len, size_t pos, char delim, size_t *end,
                       size_t *lines)
{
    bool quoted = false, field_start = true;
    *lines = 0;
    for (size_t i = pos; i < len; i++) {
        char c = data[i];
        if (quoted) {
            if (c == '"' && i + 1 < len && data[i + 1] == '"')
                i++;
            else if (c == '"')
                quoted = false;
            else if (c == '\n')
                ++*lines;
            continue;
        }
        if (c == '\n') {
            *end = i;
            return true;
        }
        if (delim != '\t' && c == '"' && field_start)
            quoted = true;
        field_start = c == delim;
    }
    *end = len;
    return !quoted;
}

/* The header line's delimiter: TAB when it has one, else the most frequent of , ; | (',' on a
 * tie or when none is there: a one-column file). */
static char header_delim(const char *line, size_t n)
{
    if (memchr(line, '\t', n))
        return '\t';
    static const char cand[3] = {',', ';', '|'};
    size_t count[3] = {0};
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < 3; k++)
            count[k] += line[i] == cand[k];
    int best = 0;
    for (int k = 1; k < 3; k++)
        if (count[k] > count[best])
            best = k;
    return cand[best];
}

static lp_status set_cell(char **cell, const char *s, size_t n, const char *what, lp_err *err)
{
    *cell = malloc(n + 1);
    if (!*cell)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
    memcpy(*cell, s, n);
    (*cell)[n] = 0;
    return LP_OK;
}

/* fastText's supervised format, one example a line: "__label__X [__label__Y ...] text". Read
 * as the columns label (the first label) and text. */
static lp_status parse_fasttext(const char *data, size_t len, size_t pos, const char *what,
                                cs_table *out, lp_err *err)
{
    static const char pre[] = "__label__";
    const size_t np = sizeof pre - 1;
    size_t rows = 0;
    for (size_t i = pos; i < len; i++)
        rows += data[i] == '\n';
    out->n_cols = 2;
    out->names = calloc(2, sizeof(char *));
    out->cells = calloc(2 * (rows + 1), sizeof(char *));
    lp_status st = LP_OK;
    if (!out->names || !out->cells)
        st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
    if (st == LP_OK)
        st = set_cell(&out->names[0], "label", 5, what, err);
    if (st == LP_OK)
        st = set_cell(&out->names[1], "text", 4, what, err);
    for (size_t line_no = 1; st == LP_OK && pos < len; line_no++) {
        const char *line = data + pos, *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + 1;
        if (ll && line[ll - 1] == '\r')
            ll--;
        size_t a = 0;
        while (a < ll && (line[a] == ' ' || line[a] == '\t'))
            a++;
        if (a == ll)
            continue;
        if (ll - a < np || memcmp(line + a, pre, np)) {
            st = lp_err_set(err, LP_EPARSE, "%s line %zu: no __label__ prefix (the first line "
                            "made this a fastText file: '__label__INTENT text')", what, line_no);
            break;
        }
        size_t ls = a + np, le = ls;
        while (le < ll && line[le] != ' ' && line[le] != '\t')
            le++;
        size_t t = le; /* skip the other labels and the blanks before the text */
        for (;;) {
            while (t < ll && (line[t] == ' ' || line[t] == '\t'))
                t++;
            if (ll - t < np || memcmp(line + t, pre, np))
                break;
            while (t < ll && line[t] != ' ' && line[t] != '\t')
                t++;
        }
        if (le == ls || t == ll) {
            st = lp_err_set(err, LP_EPARSE, "%s line %zu: %s", what, line_no,
                            le == ls ? "an empty __label__" : "a label with no text");
            break;
        }
        char **row = out->cells + 2 * out->n_rows;
        st = set_cell(&row[0], line + ls, le - ls, what, err);
        out->n_rows++; /* so that cs_table_free frees row[0] if row[1] fails */
        if (st == LP_OK)
            st = set_cell(&row[1], line + t, ll - t, what, err);
    }
    if (st != LP_OK)
        cs_table_free(out);
    return st;
}

lp_status cs_table_parse(const char *data, size_t len, const char *what, cs_table *out, lp_err *err)
{
    memset(out, 0, sizeof(*out));
    if (lp_utf8_check(data, len, what, err) != LP_OK)
        return LP_EPARSE;
    size_t pos = 0, line_no = 1, cap = 0;
    if (len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3))
        pos = 3; /* a UTF-8 byte-order mark is not part of the first column's name */
    size_t first = pos;
    while (first < len && (data[first] == '\n' || data[first] == '\r' || data[first] == ' '))
        first++;
    if (len - first >= 9 && !memcmp(data + first, "__label__", 9))
        return parse_fasttext(data, len, pos, what, out, err);
    char delim = 0;
    while (pos < len) {
        const char *line = data + pos;
        if (!delim) { /* from the header: the first line that is not blank */
            const char *nl = memchr(line, '\n', len - pos);
            size_t hl = nl ? (size_t)(nl - line) : len - pos;
            if (hl == 0 || (hl == 1 && line[0] == '\r')) {
                pos += hl + 1;
                line_no++;
                continue;
            }
            delim = header_delim(line, hl);
        }
        size_t end, inner, at = line_no;
        if (!record_end(data, len, pos, delim, &end, &inner)) {
            cs_table_free(out);
            return lp_err_set(err, LP_EPARSE, "%s line %zu: a quoted field is never closed", what,
                              at);
        }
        size_t ll = end - pos;
        pos = end + 1;
        line_no += inner + 1;
        if (ll && line[ll - 1] == '\r')
            ll--;
        if (ll == 0)
            continue;
        char **f;
        long nf = split_line(line, ll, delim, &f);
        if (nf < 0) {
            cs_table_free(out);
            return lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
        }
        if (!out->names) {
            out->names = f;
            out->n_cols = (size_t)nf;
            continue;
        }
        if ((size_t)nf != out->n_cols) {
            size_t want = out->n_cols;
            for (long k = 0; k < nf; k++)
                free(f[k]);
            free(f);
            cs_table_free(out);
            return lp_err_set(err, LP_EPARSE, "%s line %zu: %ld fields, expected %zu", what, at,
                              nf, want);
        }
        if (out->n_rows == cap) {
            cap = cap ? cap * 2 : 256;
            char **nc = lp_reallocarray(out->cells, cap * out->n_cols, sizeof(char *));
            if (!nc) {
                for (long k = 0; k < nf; k++)
                    free(f[k]);
                free(f);
                cs_table_free(out);
                return lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
            }
            out->cells = nc;
        }
        memcpy(out->cells + out->n_rows * out->n_cols, f, (size_t)nf * sizeof(char *));
        free(f);
        out->n_rows++;
    }
    if (!out->names)
        return lp_err_set(err, LP_EINVAL, "%s: empty file (expected a header line)", what);
    return LP_OK;
}

lp_status cs_table_read(const char *path, cs_table *out, lp_err *err)
{
    uint8_t *data;
    size_t len;
    memset(out, 0, sizeof(*out));
    lp_status st = lp_file_read(path, &data, &len, err);
    if (st != LP_OK)
        return st;
    st = cs_table_parse((const char *)data, len, path, out, err);
    free(data);
    return st;
}

long cs_table_col(const cs_table *t, const char *name)
{
    for (size_t j = 0; j < t->n_cols; j++)
        if (!strcmp(t->names[j], name))
            return (long)j;
    long hit = -1; /* "Question", "TEXT": one column of that name in another case */
    for (size_t j = 0; j < t->n_cols; j++)
        if (!strcasecmp(t->names[j], name)) {
            if (hit >= 0)
                return -1;
            hit = (long)j;
        }
    return hit;
}

/* Other names public intent tables give the text and the label columns (banking77's
 * text,category; SNIPS-style text,intent; utterance / query / sentence). */
static const char *const text_alias[] = {"utterance", "sentence", "query", "question", "message",
                                         "input", NULL};
static const char *const label_alias[] = {"intent", "category", "class", "label_name", "target",
                                          "tag", NULL};

/* The one column named (any case) like one of alias, or -1. */
static long alias_col(const cs_table *t, const char *const *alias)
{
    long hit = -1;
    for (size_t j = 0; j < t->n_cols; j++)
        for (size_t k = 0; alias[k]; k++)
            if (!strcasecmp(t->names[j], alias[k])) {
                if (hit >= 0)
                    return -1;
                hit = (long)j;
            }
    return hit;
}

/* Column "text" or "label" when the table has none of that name: the one column named like it
 * (text_alias, label_alias), else in a two-column table the column beside the other one. */
static long text_label_fallback(const cs_table *t, const char *name)
{
    bool label = !strcmp(name, "label");
    if (!label && strcmp(name, "text"))
        return -1;
    long c = alias_col(t, label ? label_alias : text_alias);
    if (c < 0 && t->n_cols == 2) {
        long other = cs_table_col(t, label ? "text" : "label");
        if (other < 0)
            other = alias_col(t, label ? text_alias : label_alias);
        c = other >= 0 ? 1 - other : -1;
    }
    return c;
}

lp_status cs_table_require(const cs_table *t, const char *name, const char *what, size_t *j,
                           lp_err *err)
{
    long c = cs_table_col(t, name);
    if (c < 0 && (c = text_label_fallback(t, name)) >= 0)
        lp_log_warn("%s: no column '%s': reading '%s' as the %s (--%s-col to choose another)",
                    what, name, t->names[c], name, name);
    if (c >= 0) {
        *j = (size_t)c;
        return LP_OK;
    }
    char cols[256] = "";
    for (size_t k = 0; k < t->n_cols; k++) {
        if (strlen(cols) + strlen(t->names[k]) + 3 >= sizeof(cols))
            break;
        if (k)
            strcat(cols, ", ");
        strcat(cols, t->names[k]);
    }
    return lp_err_set(err, LP_ENOTFOUND, "%s: no column '%s' (columns: %s)", what, name, cols);
}

void cs_strs_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}
