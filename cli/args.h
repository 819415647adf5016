/*
 * args.h - one option table per sub-command drives parsing, validation and --help
 * (the redis config-table idea). Options are "--name value" or "--name=value" (or "-x value"
 * when the option has a one-letter alias); flags take no value; ARG_LIST options may repeat
 * and collect every value. Anything else is positional ("-" alone is positional: stdin). Parsing errors name the option and what was expected.
 */
#ifndef LEPTON_CLI_ARGS_H
#define LEPTON_CLI_ARGS_H

#include "lepton/lepton.h"

typedef enum arg_type { ARG_STR, ARG_INT, ARG_DOUBLE, ARG_FLAG, ARG_LIST } arg_type;

typedef struct arg_list {
    const char **v; /* pointers into argv; the array is malloc'd (free with arg_list_free) */
    size_t n;
} arg_list;

typedef struct arg_spec {
    const char *name;    /* without the leading "--" */
    arg_type type;
    void *dest;          /* const char ** / long * / double * / bool * / arg_list * */
    const char *metavar; /* e.g. "FILE"; NULL for flags */
    const char *help;
    double min, max;     /* bounds for ARG_INT / ARG_DOUBLE when min < max */
    char alias;          /* a one-letter short form ('o' for -o), or 0 */
} arg_spec;

typedef struct arg_cmd {
    const char *name;     /* "profile" */
    const char *synopsis; /* "FILE [--json]" */
    const char *summary;  /* one line */
    const arg_spec *opts;
    size_t nopts;
    size_t min_pos, max_pos;
} arg_cmd;

/* Parse argv[1..argc) (argv[0] is the sub-command name). Positionals go to pos (size max_pos).
 * Returns 0 on success, 1 after printing --help, 2 on a usage error (message printed to
 * stderr, prefixed "lepton CMD: "). */
int args_parse(const arg_cmd *cmd, int argc, char **argv, const char **pos, size_t *npos);
void args_usage(const arg_cmd *cmd, FILE *out);
void arg_list_free(arg_list *l);

/* Print "lepton: <message>" to stderr and return the exit code for status s (2 for usage and
 * invalid input, 1 otherwise). */
int cli_fail(const char *cmd, const lp_err *err);

#endif
