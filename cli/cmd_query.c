/*
 * cmd_query.c - `lepton query --db DB --sql "SELECT ..." [-o|--out OUT.csv|.tsv|.jsonl]
 * [--json]`: run one read-only statement and print the result as CSV on stdout (JSON lines
 * with --json), or write it to OUT by extension. "-o FILE" is accepted as a short form of
 * "--out FILE" (args.h only knows long options, so it is rewritten before parsing).
 * Exit 2 for usage errors and bad SQL, 1 for database and I/O errors.
 */
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"

int cmd_query(int argc, char **argv)
{
    const char *db = NULL, *sql = NULL, *out = NULL;
    bool json = false;
    const arg_spec opts[] = {
        {"db", ARG_STR, &db, "DB", "SQLite database file", 0, 0},
        {"sql", ARG_STR, &sql, "SQL", "one read-only statement", 0, 0},
        {"out", ARG_STR, &out, "FILE", "write to FILE (.csv, .tsv or .jsonl) instead of "
                                       "stdout; -o FILE also works", 0, 0},
        {"json", ARG_FLAG, &json, NULL, "print JSON lines instead of CSV", 0, 0},
    };
    const arg_cmd cmd = {"query", "--db DB --sql SQL [-o OUT] [--json]",
                         "Run a SQL query and print or save the result.", opts,
                         sizeof opts / sizeof opts[0], 0, 0};
    char **av = malloc(((size_t)argc + 1) * sizeof *av);
    if (!av) {
        fprintf(stderr, "lepton query: out of memory\n");
        return 1;
    }
    for (int i = 0; i < argc; i++)
        av[i] = strcmp(argv[i], "-o") == 0 && i > 0 ? "--out" : argv[i];
    av[argc] = NULL;
    size_t npos;
    int rc = args_parse(&cmd, argc, av, NULL, &npos);
    free(av);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (!db || !sql) {
        fprintf(stderr, "lepton query: --db and --sql are required (see 'lepton query "
                        "--help')\n");
        return 2;
    }
    lp_frame *f = NULL;
    lp_err err;
    lp_err_clear(&err);
    lp_status st = lp_frame_from_sql(db, sql, NULL, &f, &err);
    if (!st && out) {
        st = lp_frame_write(f, out, &err);
    } else if (!st) {
        lp_buf b;
        lp_buf_init(&b);
        st = json ? lp_frame_format_jsonl(f, &b, &err) : lp_frame_format_csv(f, ',', &b, &err);
        if (!st && b.len && fwrite(b.data, 1, b.len, stdout) != b.len)
            st = lp_err_set(&err, LP_EIO, "writing to stdout failed");
        lp_buf_free(&b);
    }
    lp_frame_free(f);
    if (st)
        return cli_fail("query", &err);
    return 0;
}
