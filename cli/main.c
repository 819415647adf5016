/*
 * main.c - `lepton`: the platform's generic command. Dispatches to the sub-commands listed in
 * commands.h; only this file (and each command's own exit status) decides how the process ends.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
#define LEPTON_CMD_ROW_(name, fn, summary) {#name, fn, summary},
    LEPTON_COMMANDS(LEPTON_CMD_ROW_)
#undef LEPTON_CMD_ROW_
};

static void usage(FILE *out)
{
    fprintf(out, "usage: lepton COMMAND [options]   (lepton COMMAND --help for details)\n\n"
                 "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("lepton %s (C11; CUDA backend %s)\n", LP_VERSION_STRING,
#ifdef LEPTON_HAVE_CUDA
           "built"
#else
           "not built"
#endif
    );
    return 0;
}

int main(int argc, char **argv)
{
    lp_process_tune(argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version"))
        return cmd_version(0, NULL);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "lepton: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
