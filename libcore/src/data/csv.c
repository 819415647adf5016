/*
 * csv.c - the CSV/TSV reader: RFC 4180 quoting, CRLF, UTF-8 BOM, delimiter sniffing, and type
 * inference through the column builder (data_internal.h).
 *
 * One pass over the bytes: the tokenizer hands out (pointer, length) views of each record's
 * fields, so an unquoted field is never copied; a quoted field with "" escapes is unescaped
 * into one scratch buffer. Each view goes straight into its column's builder, which stores a
 * double or an interned dictionary code. Only a column whose inferred kind has to fall back to
 * strings is tokenized a second time (once, up to the row where that happened).
 * Documented choices: blank lines are skipped (except in one-column data, where a blank line
 * is a missing cell, so written frames read back row for row); a quote is special only as a field's first
 * byte; after a closing quote only the delimiter or a line end may follow, except in data
 * separated by TAB, '|' or "::", where a field like '"weird al" yankovic' (quote, text, quote,
 * more text, all on one line) is read as written; line numbers are
 * physical lines (a newline inside quotes counts); without a header, columns are c1, c2, ...,
 * and so is a header's empty name (column J is cJ: the unnamed index column pandas writes).
 * A first line with "::" and neither ',' nor TAB is read with "::" as the delimiter (MovieLens
 * .dat files). While a column is numeric, numbers written for people read as numbers:
 * "$1,234.50", "12.5%" (12.5), "-€3", and in ';'-separated data "12,5" and "1.234,5" (the
 * decimal comma); a column that turns out to be strings keeps the text as written.
 * The input is read-only and must outlive nothing: the frame owns copies of what it keeps.
 */
#include "data/data_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct csv_field {
    const char *p;
    size_t len;
    bool quoted, escaped;
} csv_field;

typedef struct csv_tok {
    const char *data;
    size_t len, pos, line;
    char delim;
    size_t max_field;
    const char *name;
    char **colnames; /* for messages; NULL while reading the header */
    size_t ncols;
    uint8_t special[256];
    bool skip_blank; /* false for one-column data, where a blank line is a missing cell */
    csv_field *f;
    size_t fcap;
} csv_tok;

lp_csv_opts lp_csv_opts_default(void)
{
    lp_csv_opts o;
    memset(&o, 0, sizeof o);
    o.delim = 0;
    o.header = true;
    o.missing = NULL;
    o.types = NULL;
    o.max_field = (size_t)1 << 20;
    o.max_rows = 0;
    o.cat_max_unique = 0.5;
    o.cat_max_distinct = 1000;
    o.cat_max_len = 64;
    return o;
}

lp_status lp_csv_opts_check(const lp_csv_opts *o, lp_err *err)
{
    if (o->delim == '"' || o->delim == '\n' || o->delim == '\r')
        return lp_err_set(err, LP_EINVAL, "csv options: delimiter cannot be a quote or line end");
    if (o->max_field == 0)
        return lp_err_set(err, LP_EINVAL, "csv options: max_field must be > 0");
    if (!(o->cat_max_unique >= 0 && o->cat_max_unique <= 1))
        return lp_err_set(err, LP_EINVAL, "csv options: cat_max_unique %g is not in [0, 1]",
                          o->cat_max_unique);
    return LP_OK;
}

static void col_label(const csv_tok *t, size_t j, char *buf, size_t cap)
{
    if (t->colnames && j < t->ncols)
        snprintf(buf, cap, "column %zu ('%s')", j + 1, t->colnames[j]);
    else
        snprintf(buf, cap, "column %zu", j + 1);
}

static size_t count_nl(const char *p, size_t n)
{
    size_t c = 0;
    const char *end = p + n;
    while ((p = memchr(p, '\n', (size_t)(end - p)))) {
        c++;
        p++;
    }
    return c;
}

static bool push_field(csv_tok *t, size_t nf, csv_field f)
{
    if (nf == t->fcap) {
        size_t cap = t->fcap ? 2 * t->fcap : 16;
        csv_field *nfp = lp_reallocarray(t->f, cap, sizeof *nfp);
        if (!nfp)
            return false;
        t->f = nfp;
        t->fcap = cap;
    }
    t->f[nf] = f;
    return true;
}

/* Next record into t->f[0..*nf). 1: a record, 0: end of input, -1: error (err filled). */
static int csv_next(csv_tok *t, size_t *nf, size_t *rec_line, lp_err *err)
{
    const char *d = t->data;
    size_t len = t->len, pos = t->pos;
    for (; t->skip_blank;) { /* skip blank lines */
        if (pos < len && d[pos] == '\n') {
            pos++;
            t->line++;
        } else if (pos + 1 < len && d[pos] == '\r' && d[pos + 1] == '\n') {
            pos += 2;
            t->line++;
        } else {
            break;
        }
    }
    if (pos >= len) {
        t->pos = pos;
        return 0;
    }
    *rec_line = t->line;
    size_t n = 0;
    char lab[300];
    for (;;) {
        csv_field f = {0};
        bool literal = false;
        if (pos < len && d[pos] == '"') {
            size_t open_line = t->line, start = pos + 1, q = start;
            for (;;) {
                const char *hit = q < len ? memchr(d + q, '"', len - q) : NULL;
                if (!hit) {
                    col_label(t, n, lab, sizeof lab);
                    lp_err_set(err, LP_EPARSE,
                               "%s line %zu, %s: unterminated quote (the quote opened on this "
                               "line is never closed)",
                               t->name, open_line, lab);
                    return -1;
                }
                q = (size_t)(hit - d);
                if (q + 1 < len && d[q + 1] == '"') {
                    f.escaped = true;
                    q += 2;
                    continue;
                }
                break;
            }
            f.p = d + start;
            f.len = q - start;
            f.quoted = true;
            t->line += count_nl(f.p, f.len);
            pos = q + 1;
            if (pos < len && d[pos] != t->delim && d[pos] != '\n' &&
                !(d[pos] == '\r' && (pos + 1 == len || d[pos + 1] == '\n')) &&
                t->delim != ',' && t->delim != ';' && !memchr(f.p, '\n', f.len) &&
                !memchr(f.p, t->delim, f.len)) {
                /* TAB- (or "::"-) separated data quotes little: '"weird al" yankovic' is a
                 * name, read as written */
                t->line = open_line;
                pos = start - 1;
                f = (csv_field){0};
                literal = true;
            } else if (pos < len && d[pos] != t->delim && d[pos] != '\n' &&
                       !(d[pos] == '\r' && (pos + 1 == len || d[pos + 1] == '\n'))) {
                col_label(t, n, lab, sizeof lab);
                lp_err_set(err, LP_EPARSE,
                           "%s line %zu, %s: unexpected '%c' after a closing quote (expected "
                           "the delimiter or a line end)",
                           t->name, t->line, lab, d[pos] >= 32 ? d[pos] : '?');
                return -1;
            }
        }
        if (literal || !f.quoted) {
            size_t start = pos;
            for (;;) {
                while (pos < len && !t->special[(unsigned char)d[pos]])
                    pos++;
                if (pos < len && d[pos] == '\r' && pos + 1 < len && d[pos + 1] != '\n') {
                    pos++; /* a lone CR is data */
                    continue;
                }
                break;
            }
            f.p = d + start;
            f.len = pos - start;
        }
        if (f.len > t->max_field) {
            col_label(t, n, lab, sizeof lab);
            lp_err_set(err, LP_ETOOBIG, "%s line %zu, %s: field of %zu bytes exceeds the limit "
                       "of %zu bytes (max_field)", t->name, t->line, lab, f.len, t->max_field);
            return -1;
        }
        if (!push_field(t, n, f)) {
            lp_err_set(err, LP_ENOMEM, "%s line %zu: out of memory", t->name, t->line);
            return -1;
        }
        n++;
        if (pos >= len)
            break;
        if (d[pos] == t->delim) {
            pos++;
            continue;
        }
        /* "\r\n", "\n", or a lone "\r" as the input's last byte */
        pos += d[pos] == '\r' && pos + 1 < len ? 2 : 1;
        t->line++;
        break;
    }
    t->pos = pos;
    *nf = n;
    return 1;
}

static void tok_init(csv_tok *t, const char *data, size_t len, size_t pos, size_t line,
                     char delim, size_t max_field, const char *name)
{
    memset(t, 0, sizeof *t);
    t->data = data;
    t->len = len;
    t->pos = pos;
    t->line = line;
    t->delim = delim;
    t->max_field = max_field;
    t->name = name;
    t->skip_blank = true;
    t->special[(unsigned char)delim] = 1;
    t->special['\n'] = 1;
    t->special['\r'] = 1;
}

/* The byte that stands for "::" between fields once the data is copied (double_colon_to_us). */
#define CSV_DOUBLE_COLON '\x1f'

/* Whether the line at d holds "::" outside quoted fields (a quote opens one only as a field's
 * first byte, as in double_colon_to_us). */
static bool line_has_double_colon(const char *d, size_t len)
{
    bool inq = false, field_start = true;
    for (size_t i = 0; i + 1 < len; i++) {
        char c = d[i];
        if (inq) {
            if (c == '"' && d[i + 1] == '"')
                i++;
            else if (c == '"')
                inq = false;
        } else if (c == '\n' || c == '\r') {
            return false;
        } else if (c == ':' && d[i + 1] == ':') {
            return true;
        } else {
            inq = c == '"' && field_start;
            field_start = false;
        }
    }
    return false;
}

/* The candidate among , TAB ; | seen most often outside quotes on the first record's lines;
 * CSV_DOUBLE_COLON when that line holds "::" and neither ',' nor TAB, and so does the next
 * line if there is one (MovieLens .dat: "1::1193::5::978300760"; a one-column file named
 * "ns::name" keeps its name). */
static char sniff(const char *d, size_t len)
{
    static const char cand[4] = {',', '\t', ';', '|'};
    size_t count[4] = {0}, i;
    bool inq = false;
    for (i = 0; i < len; i++) {
        char c = d[i];
        if (c == '"')
            inq = !inq;
        else if (!inq && (c == '\n' || c == '\r'))
            break;
        else if (!inq)
            for (int k = 0; k < 4; k++)
                count[k] += c == cand[k];
    }
    if (!count[0] && !count[1] && line_has_double_colon(d, len)) {
        while (i < len && (d[i] == '\n' || d[i] == '\r'))
            i++;
        if (i == len || line_has_double_colon(d + i, len - i))
            return CSV_DOUBLE_COLON;
    }
    int best = 0;
    for (int k = 1; k < 4; k++)
        if (count[k] > count[best])
            best = k;
    return cand[best];
}

/* A copy of d with each "::" outside quoted fields turned into the unit separator (0x1F), so
 * the one-byte tokenizer reads it; lines and field numbers stay as in the file. A quote opens
 * a quoted field only as the field's first byte, as the tokenizer reads it ("" inside is a
 * quote), so a stray quote (5" screen) does not hide the separators after it. NULL on
 * ENOMEM. */
static char *double_colon_to_us(const char *d, size_t len, size_t *out_len)
{
    char *o = malloc(len ? len : 1);
    if (!o)
        return NULL;
    size_t n = 0;
    bool inq = false, field_start = true;
    for (size_t i = 0; i < len; i++) {
        char c = d[i];
        if (inq) {
            if (c == '"' && i + 1 < len && d[i + 1] == '"')
                o[n++] = d[i++];
            else if (c == '"')
                inq = false;
            o[n++] = c;
        } else if (c == ':' && i + 1 < len && d[i + 1] == ':') {
            o[n++] = CSV_DOUBLE_COLON;
            i++;
            field_start = true;
        } else {
            inq = c == '"' && field_start;
            field_start = c == '\n' || c == '\r';
            o[n++] = c;
        }
    }
    *out_len = n;
    return o;
}

/* View of field f, unescaped into *scratch when needed. false on allocation failure. */
static bool field_view(const csv_field *f, char **scratch, size_t *scap, const char **s,
                       size_t *n)
{
    if (!f->escaped) {
        *s = f->p;
        *n = f->len;
        return true;
    }
    if (*scap < f->len + 1) {
        char *p = realloc(*scratch, f->len + 1);
        if (!p)
            return false;
        *scratch = p;
        *scap = f->len + 1;
    }
    size_t o = 0;
    for (size_t i = 0; i < f->len; i++) {
        (*scratch)[o++] = f->p[i];
        if (f->p[i] == '"')
            i++; /* "" -> " */
    }
    (*scratch)[o] = '\0';
    *s = *scratch;
    *n = o;
    return true;
}

typedef struct csv_read {
    const lp_csv_opts *opts;
    const char *name;
    const char *data;
    size_t len;
    char delim;
    size_t data_pos, data_line; /* where the first data record starts */
    lp_missing_set ms;
    lp_typespec ts;
    char **names;
    size_t ncols;
    lp_colbuild *b;
    bool *literal; /* (ncols,) lp_csv_opts.literal_cols: only an empty cell is missing */
    char *scratch;
    size_t scap;
} csv_read;

static void csv_read_free(csv_read *r)
{
    lp_missing_free(&r->ms);
    lp_typespec_free(&r->ts);
    free(r->literal);
    if (r->names)
        for (size_t j = 0; j < r->ncols; j++)
            free(r->names[j]);
    free(r->names);
    if (r->b)
        for (size_t j = 0; j < r->ncols; j++)
            lp_colbuild_free(&r->b[j]);
    free(r->b);
    free(r->scratch);
}

static lp_status push_cell(csv_read *r, size_t j, const csv_field *f, size_t line, size_t row,
                           lp_err *err);

/* Column j fell back to strings at data row `row`: push its cells of rows [0, row) again. */
static lp_status refeed(csv_read *r, size_t j, size_t row, lp_err *err)
{
    if (!lp_colbuild_restart_string(&r->b[j]))
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory in column '%s'", r->name,
                          r->names[j]);
    csv_tok t;
    tok_init(&t, r->data, r->len, r->data_pos, r->data_line, r->delim, r->opts->max_field,
             r->name);
    t.skip_blank = r->ncols != 1;
    lp_status st = LP_OK;
    for (size_t i = 0; i < row && !st; i++) {
        size_t nf = 0, line = 0;
        if (csv_next(&t, &nf, &line, err) != 1) {
            st = lp_err_set(err, LP_EINTERNAL, "%s: re-reading column '%s' failed", r->name,
                            r->names[j]);
            break;
        }
        st = push_cell(r, j, &t.f[j], line, i, err);
    }
    free(t.f);
    return st;
}

static lp_status push_cell(csv_read *r, size_t j, const csv_field *f, size_t line, size_t row,
                           lp_err *err)
{
    const char *s;
    size_t n;
    if (!field_view(f, &r->scratch, &r->scap, &s, &n))
        return lp_err_set(err, LP_ENOMEM, "%s line %zu: out of memory", r->name, line);
    lp_colbuild *b = &r->b[j];
    char dec[64]; /* a string column keeps its text as written */
    if (b->state != LP_CB_STRING && b->state != LP_CB_BOOL && b->state != LP_CB_DATETIME &&
        lp_number_unformat(s, n, r->delim, dec, sizeof dec)) {
        s = dec;
        n = strlen(dec);
    }
    bool missing = !f->quoted && (n == 0 || !r->literal[j]) && lp_missing_match(&r->ms, s, n);
    lp_cb_result res = missing ? lp_colbuild_push_missing(b) : lp_colbuild_push(b, s, n);
    if (res == LP_CB_OK)
        return LP_OK;
    if (res == LP_CB_NOMEM)
        return lp_err_set(err, LP_ENOMEM, "%s line %zu: out of memory in column '%s'", r->name,
                          line, r->names[j]);
    if (b->fixed) {
        char vb[64];
        return lp_err_set(err, LP_EPARSE, "%s line %zu: column '%s' is '%s', not %s", r->name,
                          line, r->names[j], lp_msg_value(s, n, vb, sizeof vb),
                          lp_colbuild_expected(b));
    }
    csv_field copy = *f; /* refeed reuses the scratch buffer; f points into the input */
    lp_status st = refeed(r, j, row, err);
    if (st)
        return st;
    return push_cell(r, j, &copy, line, row, err);
}

/* 64-bit FNV-1a of a column name, for read_header's duplicate check. */
static uint64_t name_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static lp_status read_header(csv_read *r, csv_tok *t, size_t nf, lp_err *err)
{
    r->ncols = nf;
    r->names = lp_calloc(nf, sizeof(char *));
    if (!r->names)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->name);
    /* the names seen so far, open addressing (slot = index + 1, 0 empty): a header of many
     * thousand columns is checked in linear time, not by comparing every pair */
    size_t cap = 16;
    while (cap < 2 * nf)
        cap *= 2;
    size_t *seen = lp_calloc(cap, sizeof *seen);
    if (!seen)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->name);
    lp_status st = LP_OK;
    for (size_t j = 0; j < nf && !st; j++) {
        if (r->opts->header) {
            const char *s;
            size_t n;
            if (!field_view(&t->f[j], &r->scratch, &r->scap, &s, &n)) {
                st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->name);
                break;
            }
            if (n > 0) {
                r->names[j] = lp_strndup(s, n);
            } else { /* an unnamed column (a pandas index): named as without a header */
                char buf[32];
                snprintf(buf, sizeof buf, "c%zu", j + 1);
                r->names[j] = lp_strdup(buf);
            }
        } else {
            char buf[32];
            snprintf(buf, sizeof buf, "c%zu", j + 1);
            r->names[j] = lp_strdup(buf);
        }
        if (!r->names[j]) {
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", r->name);
            break;
        }
        size_t i = (size_t)name_hash(r->names[j]) & (cap - 1);
        for (; seen[i] && strcmp(r->names[seen[i] - 1], r->names[j]); i = (i + 1) & (cap - 1))
            ;
        if (seen[i])
            st = lp_err_set(err, LP_EPARSE,
                            "%s line %zu, column %zu: duplicate column name '%s' (also column "
                            "%zu)",
                            r->name, r->data_line, j + 1, r->names[j], seen[i]);
        else
            seen[i] = j + 1;
    }
    free(seen);
    return st;
}

lp_status lp_frame_parse_csv(const char *data, size_t len, const char *name,
                             const lp_csv_opts *opts, lp_frame **out, lp_err *err)
{
    *out = NULL;
    lp_csv_opts defaults = lp_csv_opts_default();
    if (!opts)
        opts = &defaults;
    if (!name)
        name = "<csv>";
    lp_status st = lp_csv_opts_check(opts, err);
    if (st)
        return st;
    if (!data && len)
        return lp_err_set(err, LP_EINVAL, "%s: no data", name);
    st = lp_text_validate(data, len, name, err);
    if (st)
        return st;
    size_t pos = 0;
    if (len >= 3 && memcmp(data, "\xEF\xBB\xBF", 3) == 0)
        pos = 3;
    size_t k = pos;
    while (k < len && (data[k] == '\n' || data[k] == '\r'))
        k++;
    if (k == len)
        return lp_err_set(err, LP_EPARSE, "%s: empty file (expected a header line)", name);

    char delim = opts->delim ? opts->delim : sniff(data + k, len - k);
    if (delim == CSV_DOUBLE_COLON && !opts->delim) {
        size_t n2 = 0;
        char *d2 = double_colon_to_us(data, len, &n2);
        if (!d2)
            return lp_err_set(err, LP_ENOMEM, "%s: out of memory", name);
        lp_csv_opts o2 = *opts;
        o2.delim = CSV_DOUBLE_COLON;
        st = lp_frame_parse_csv(d2, n2, name, &o2, out, err);
        free(d2);
        return st;
    }

    csv_read r;
    memset(&r, 0, sizeof r);
    r.opts = opts;
    r.name = name;
    r.data = data;
    r.len = len;
    r.delim = delim;
    st = lp_missing_init(&r.ms, opts->missing, err);
    if (!st)
        st = lp_typespec_parse(&r.ts, opts->types, err);
    csv_tok t;
    tok_init(&t, data, len, pos, 1, r.delim, opts->max_field, name);
    size_t nf = 0, line = 0;
    if (!st) {
        size_t first_pos = t.pos;
        int got = csv_next(&t, &nf, &line, err);
        if (got < 0)
            st = err ? err->status : LP_EPARSE;
        r.data_line = line;
        if (!st)
            st = read_header(&r, &t, nf, err);
        if (!opts->header) { /* the first record is data: read it again below */
            t.pos = first_pos;
            t.line = line;
        }
        r.data_pos = t.pos;
        r.data_line = t.line;
    }
    size_t hint = 0;
    if (!st) {
        hint = count_nl(data + t.pos, len - t.pos) + 1;
        if (opts->max_rows && hint > opts->max_rows)
            hint = opts->max_rows;
        r.b = lp_calloc(r.ncols, sizeof *r.b);
        r.literal = lp_calloc(r.ncols + 1, sizeof *r.literal);
        if (!r.b || !r.literal)
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", name);
        for (size_t j = 0; !st && j < r.ncols; j++)
            r.literal[j] = lp_name_listed(opts->literal_cols, r.names[j]);
        for (size_t j = 0; !st && j < r.ncols; j++) {
            long o = lp_typespec_find(&r.ts, r.names[j]);
            st = lp_colbuild_init(&r.b[j], r.names[j], o >= 0 ? (int)r.ts.kinds[o] : -1, hint,
                                  err);
        }
        if (!st)
            st = lp_typespec_check_used(&r.ts, name, err);
    }
    t.colnames = r.names;
    t.ncols = r.ncols;
    t.skip_blank = r.ncols != 1;
    size_t rows = 0;
    while (!st && (!opts->max_rows || rows < opts->max_rows)) {
        int got = csv_next(&t, &nf, &line, err);
        if (got < 0) {
            st = err ? err->status : LP_EPARSE;
            break;
        }
        if (got == 0)
            break;
        if (nf != r.ncols) {
            st = lp_err_set(err, LP_EPARSE, "%s line %zu: %zu field%s, expected %zu (%s has %zu)",
                            name, line, nf, nf == 1 ? "" : "s", r.ncols,
                            opts->header ? "header" : "first row", r.ncols);
            break;
        }
        for (size_t j = 0; j < nf && !st; j++)
            st = push_cell(&r, j, &t.f[j], line, rows, err);
        rows++;
    }
    free(t.f);
    lp_frame *f = NULL;
    if (!st) {
        f = lp_frame_new();
        if (!f)
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", name);
    }
    for (size_t j = 0; !st && j < r.ncols; j++) {
        lp_column *c = NULL;
        st = lp_colbuild_finish(&r.b[j], opts, &c, err);
        lp_colbuild_free(&r.b[j]);
        if (!st)
            st = lp_frame_add_column(f, c, err);
    }
    csv_read_free(&r);
    if (st) {
        lp_frame_free(f);
        return lp_err_oneline(err, st);
    }
    *out = f;
    return LP_OK;
}

lp_status lp_frame_read_csv(const char *path, const lp_csv_opts *opts, lp_frame **out,
                            lp_err *err)
{
    *out = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    lp_status st = lp_file_read(path, &data, &len, err);
    if (st)
        return st;
    st = lp_frame_parse_csv((const char *)data, len, path, opts, out, err);
    free(data);
    return lp_err_oneline(err, st);
}
