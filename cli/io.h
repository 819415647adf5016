/*
 * io.h - reading and writing data files the same way in every sub-command: one set of options
 * (--delim, --types, --missing, --no-header) and one error style.
 */
#ifndef LEPTON_CLI_IO_H
#define LEPTON_CLI_IO_H

#include "args.h"

typedef struct cli_read {
    const char *delim;   /* "," "tab" ";" "|" "::" or NULL to sniff */
    const char *types;   /* "col:kind,..." */
    const char *missing; /* "NA,?,..." */
    bool no_header;
} cli_read;

/* The option-table rows for a cli_read r (use inside an arg_spec array initializer). */
#define CLI_READ_SPECS(r)                                                                    \
    {"delim", ARG_STR, &(r).delim, "C", "field separator: , tab ; | :: (default: sniffed)"}, \
        {"types", ARG_STR, &(r).types, "SPEC", "column types, e.g. id:categorical,amt:float"}, \
        {"missing", ARG_STR, &(r).missing, "LIST",                                           \
         "missing-value tokens (default: empty,NA,N/A,NaN,null,None,?)"},                    \
        {"no-header", ARG_FLAG, &(r).no_header, NULL, "the first line is data, not names"}

/* Read a CSV/TSV/JSONL file (gzip transparently) with the options of r. */
lp_status cli_read_frame(const char *path, const cli_read *r, lp_frame **out, lp_err *err);

/* cli_read_frame for a file that should have a column called name: a file without a header
 * line is read by position (c1, c2, ...) when name is not on its first line
 * (lp_frame_read_sniff_header). */
lp_status cli_read_named(const char *path, const cli_read *r, const char *name, lp_frame **out,
                         lp_err *err);
/* cli_read_frame for a file with a label column: a file without a header line is read by
 * position (columns c1, c2, ...) when the label is not on its first line
 * (lp_frame_read_sniff_header), and a string label's missing-value tokens ("None", "NA") are
 * class names (lp_frame_reread_label) unless --missing was given. */
lp_status cli_read_labelled(const char *path, const cli_read *r, const char *label,
                            lp_frame **out, lp_err *err);

/* Save one serialized transform (a cleaner, a pipeline) as an .lpm file whose header says
 * {"kind": kind} and whose only section is named kind; load it back (the section's bytes are
 * given to the caller's loader). Errors name the file. */
lp_status cli_save_blob(const char *kind, const lp_buf *blob, const char *path, lp_err *err);
typedef lp_status (*cli_blob_loader)(const void *data, size_t len, void *out, lp_err *err);
lp_status cli_load_blob(const char *kind, const char *path, cli_blob_loader load, void *out,
                        lp_err *err);

/* Split "a,b" into an array of pointers into *copy (both caller-freed); *n gets the count. */
char **cli_split(const char *s, char **copy, size_t *n);
/* The columns train and tune leave out of the features: the user's (user, n_user: --drop) and,
 * unless keep_ids, the identifier columns of f (lp_frame_identifier_cols) not among them.
 * *out: a new array (caller frees), names owned by user or f; the identifiers come after the
 * user's n_user. */
lp_status cli_drop_list(const lp_frame *f, const char *label, char **user, size_t n_user,
                        bool keep_ids, const char ***out, size_t *n, lp_err *err);
/* The note of cmd, on stderr, for each identifier cli_drop_list added (drops[n_user..n)):
 * after a success, so that a failure stays one line. */
void cli_drop_note(const char *cmd, const char *const *drops, size_t n_user, size_t n);

#endif
