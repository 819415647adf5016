/*
 * io.h - reading and writing data files the same way in every sub-command: one set of options
 * (--delim, --types, --missing, --no-header) and one error style.
 */
#ifndef LEPTON_CLI_IO_H
#define LEPTON_CLI_IO_H

#include "args.h"

typedef struct cli_read {
    const char *delim;   /* "," "tab" ";" "|" or NULL to sniff */
    const char *types;   /* "col:kind,..." */
    const char *missing; /* "NA,?,..." */
    bool no_header;
} cli_read;

/* The option-table rows for a cli_read r (use inside an arg_spec array initializer). */
#define CLI_READ_SPECS(r)                                                                    \
    {"delim", ARG_STR, &(r).delim, "C", "field separator: , tab ; | (default: sniffed)"},     \
        {"types", ARG_STR, &(r).types, "SPEC", "column types, e.g. id:categorical,amt:float"}, \
        {"missing", ARG_STR, &(r).missing, "LIST",                                           \
         "missing-value tokens (default: empty,NA,N/A,NaN,null,None,?)"},                    \
        {"no-header", ARG_FLAG, &(r).no_header, NULL, "the first line is data, not names"}

/* Read a CSV/TSV/JSONL file (gzip transparently) with the options of r. */
lp_status cli_read_frame(const char *path, const cli_read *r, lp_frame **out, lp_err *err);

#endif
