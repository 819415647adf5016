/*
 * io.c - the shared reading options of the sub-commands (see io.h).
 */
#include "io.h"

#include "lepton/clean.h"

#include <stdlib.h>
#include <string.h>

static lp_status read_opts(const cli_read *r, lp_csv_opts *out, lp_err *err)
{
    lp_csv_opts o = lp_csv_opts_default();
    if (r->delim) {
        if (!strcmp(r->delim, "tab") || !strcmp(r->delim, "\\t") || !strcmp(r->delim, "\t"))
            o.delim = '\t';
        else if (!strcmp(r->delim, "::"))
            o.delim = 0; /* the reader splits at "::" when the first line has no ',' or TAB */
        else if (strlen(r->delim) == 1)
            o.delim = r->delim[0];
        else
            return lp_err_set(err, LP_EINVAL, "--delim '%s': expected one character, 'tab' or '::'",
                              r->delim);
    }
    o.types = r->types;
    o.missing = r->missing;
    o.header = !r->no_header;
    *out = o;
    return lp_csv_opts_check(&o, err);
}

lp_status cli_read_frame(const char *path, const cli_read *r, lp_frame **out, lp_err *err)
{
    lp_csv_opts o;
    lp_status st = read_opts(r, &o, err);
    return st ? st : lp_frame_read(path, &o, out, err);
}

lp_status cli_read_named(const char *path, const cli_read *r, const char *name, lp_frame **out,
                         lp_err *err)
{
    lp_csv_opts o;
    lp_status st = read_opts(r, &o, err);
    return st ? st : lp_frame_read_labelled(path, &o, &name, 1, NULL, out, err);
}

lp_status cli_read_labelled(const char *path, const cli_read *r, const char *label,
                            lp_frame **out, lp_err *err)
{
    lp_csv_opts o;
    lp_status st = read_opts(r, &o, err);
    /* a --missing list given says what is missing, labels included */
    return st ? st
              : lp_frame_read_labelled(path, &o, &label, 1, r->missing ? NULL : label, out, err);
}

lp_status cli_save_blob(const char *kind, const lp_buf *blob, const char *path, lp_err *err)
{
    lp_lpm_writer *w = lp_lpm_writer_new();
    if (!w)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    lp_status st = lp_lpm_writer_add(w, kind, LP_LPM_DTYPE_BYTES, blob->data, blob->len, err);
    char header[160];
    snprintf(header, sizeof header, "{\"kind\":\"%s\",\"lepton_version\":\"%s\"}", kind,
             LP_VERSION_STRING);
    if (!st)
        st = lp_lpm_writer_save(w, header, path, err);
    lp_lpm_writer_free(w);
    return st;
}

lp_status cli_load_blob(const char *kind, const char *path, cli_blob_loader load, void *out,
                        lp_err *err)
{
    lp_lpm *m;
    lp_status st = lp_lpm_load(path, &m, err);
    if (st)
        return st;
    const void *d;
    size_t n;
    st = lp_lpm_section(m, kind, LP_LPM_DTYPE_BYTES, &d, &n, err);
    if (!st && (st = load(d, n, out, err)))
        lp_err_prefix(err, "%s", path);
    lp_lpm_free(m);
    return st;
}

char **cli_split(const char *s, char **copy, size_t *n)
{
    *n = 0;
    *copy = lp_strdup(s ? s : "");
    if (!*copy)
        return NULL;
    size_t cap = 1;
    for (const char *p = *copy; *p; p++)
        cap += *p == ',';
    char **v = calloc(cap + 1, sizeof(char *));
    if (!v)
        return NULL;
    char *save = NULL;
    for (char *t = strtok_r(*copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
        v[(*n)++] = t;
    return v;
}

lp_status cli_drop_list(const lp_frame *f, const char *label, char **user, size_t n_user,
                        bool keep_ids, const char ***out, size_t *n, lp_err *err)
{
    *out = NULL;
    *n = 0;
    const char **ids = NULL;
    size_t n_ids = 0;
    lp_status st = keep_ids ? LP_OK : lp_frame_identifier_cols(f, label, &ids, &n_ids, err);
    const char **v = st ? NULL : calloc(n_user + n_ids + 1, sizeof *v);
    if (!st && !v)
        st = lp_err_set(err, LP_ENOMEM, "out of memory");
    for (size_t i = 0; !st && i < n_user; i++)
        v[(*n)++] = user[i];
    for (size_t i = 0; !st && i < n_ids; i++) {
        bool given = false;
        for (size_t k = 0; k < n_user && !given; k++)
            given = strcmp(user[k], ids[i]) == 0;
        if (!given)
            v[(*n)++] = ids[i];
    }
    free(ids);
    if (st) {
        free(v);
        *n = 0;
        return st;
    }
    *out = v;
    return LP_OK;
}

void cli_drop_note(const char *cmd, const char *const *drops, size_t n_user, size_t n)
{
    for (size_t i = n_user; i < n; i++)
        fprintf(stderr, "lepton %s: left out '%s': a distinct value on every row (an identifier; "
                "--keep-ids keeps it)\n", cmd, drops[i]);
}
