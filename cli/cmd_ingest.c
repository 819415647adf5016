/*
 * cmd_ingest.c - `lepton ingest FILE --db DB --table T [--delim C] [--types SPEC]
 * [--missing LIST]`: read a CSV/TSV/JSONL file (gzip too) with type inference and append it to
 * a SQLite table in one transaction, creating the table when absent. Prints
 * "ingested N rows into DB:T". Exit 2 for usage errors (bad options, an unknown kind in
 * --types), 1 for data and database errors, each with one line on stderr.
 */
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"

/* --delim: one character, or "tab" / "\t" */
static int parse_delim(const char *s, char *out)
{
    if (!strcmp(s, "tab") || !strcmp(s, "\\t") || !strcmp(s, "\t"))
        *out = '\t';
    else if (strlen(s) == 1 && s[0] != '"' && s[0] != '\n' && s[0] != '\r')
        *out = s[0];
    else
        return -1;
    return 0;
}

/* Every item of --types is "column:kind" with a known kind. */
static int check_types(const char *spec)
{
    char *copy = lp_strdup(spec);
    if (!copy)
        return -1;
    int rc = 0;
    for (char *item = strtok(copy, ","); item && !rc; item = strtok(NULL, ",")) {
        char *colon = strrchr(item, ':');
        lp_col_kind k;
        lp_err err;
        if (!colon || colon == item) {
            fprintf(stderr, "lepton ingest: --types item '%s' is not 'column:kind'\n", item);
            rc = -1;
        } else if (lp_col_kind_parse(colon + 1, &k, &err)) {
            fprintf(stderr, "lepton ingest: --types: %s\n", err.msg);
            rc = -1;
        }
    }
    free(copy);
    return rc;
}

int cmd_ingest(int argc, char **argv)
{
    const char *db = NULL, *table = NULL, *delim = NULL, *types = NULL, *missing = NULL;
    const arg_spec opts[] = {
        {"db", ARG_STR, &db, "DB", "SQLite database file (created when absent)", 0, 0},
        {"table", ARG_STR, &table, "T", "table to append to (created when absent)", 0, 0},
        {"delim", ARG_STR, &delim, "C", "field delimiter: one character or 'tab' (default: "
                                        "sniffed among , TAB ; |)", 0, 0},
        {"types", ARG_STR, &types, "SPEC", "column kinds, e.g. 'id:categorical,amount:float'",
         0, 0},
        {"missing", ARG_STR, &missing, "LIST", "comma-separated missing tokens (default: "
                                               "empty,NA,N/A,NaN,null,None,?)", 0, 0},
    };
    const arg_cmd cmd = {"ingest", "FILE --db DB --table T [options]",
                         "Append a CSV/TSV/JSONL file to a SQLite table in one transaction.",
                         opts, sizeof opts / sizeof opts[0], 1, 1};
    const char *pos[1];
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, pos, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (!db || !table) {
        fprintf(stderr, "lepton ingest: --db and --table are required (see 'lepton ingest "
                        "--help')\n");
        return 2;
    }
    lp_csv_opts o = lp_csv_opts_default();
    if (delim && parse_delim(delim, &o.delim)) {
        fprintf(stderr, "lepton ingest: --delim expects one character or 'tab', got '%s'\n",
                delim);
        return 2;
    }
    if (types && check_types(types))
        return 2;
    o.types = types;
    o.missing = missing;
    lp_frame *f = NULL;
    lp_err err;
    lp_err_clear(&err);
    size_t n = 0;
    lp_status st = lp_frame_read(pos[0], &o, &f, &err);
    if (!st)
        st = lp_frame_to_sqlite(f, db, table, &n, &err);
    lp_frame_free(f);
    if (st) {
        fprintf(stderr, "lepton ingest: %s\n", lp_err_text(&err));
        return 1;
    }
    printf("ingested %zu rows into %s:%s\n", n, db, table);
    return 0;
}
