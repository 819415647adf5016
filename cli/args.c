/*
 * args.c - the option-table parser declared in args.h.
 */
#include "args.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void arg_list_free(arg_list *l)
{
    if (!l)
        return;
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

void args_usage(const arg_cmd *cmd, FILE *out)
{
    fprintf(out, "usage: lepton %s %s\n\n%s\n", cmd->name, cmd->synopsis, cmd->summary);
    if (cmd->nopts)
        fprintf(out, "\noptions:\n");
    for (size_t i = 0; i < cmd->nopts; i++) {
        const arg_spec *o = &cmd->opts[i];
        char left[64];
        char alias[8] = "";
        if (o->alias)
            snprintf(alias, sizeof alias, "-%c, ", o->alias);
        snprintf(left, sizeof left, "%s--%s%s%s", alias, o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        fprintf(out, "  %-28s %s\n", left, o->help);
    }
    fprintf(out, "  %-28s %s\n", "--help", "show this help");
}

static int usage_error(const arg_cmd *cmd, const char *fmt, const char *a, const char *b)
{
    fprintf(stderr, "lepton %s: ", cmd->name);
    fprintf(stderr, fmt, a, b);
    fprintf(stderr, "\n(see 'lepton %s --help')\n", cmd->name);
    return 2;
}

static int set_value(const arg_cmd *cmd, const arg_spec *o, const char *v)
{
    char *end = NULL;
    switch (o->type) {
    case ARG_STR:
        *(const char **)o->dest = v;
        return 0;
    case ARG_LIST: {
        arg_list *l = o->dest;
        const char **nv = realloc(l->v, (l->n + 1) * sizeof *nv);
        if (!nv)
            return usage_error(cmd, "out of memory at --%s%s", o->name, "");
        l->v = nv;
        l->v[l->n++] = v;
        return 0;
    }
    case ARG_INT: {
        errno = 0;
        long x = strtol(v, &end, 10);
        if (errno || end == v || *end)
            return usage_error(cmd, "--%s expects an integer, got '%s'", o->name, v);
        if (o->min < o->max && (x < o->min || x > o->max)) {
            char range[80];
            snprintf(range, sizeof range, "'%s' is outside [%g, %g]", v, o->min, o->max);
            return usage_error(cmd, "--%s: %s", o->name, range);
        }
        *(long *)o->dest = x;
        return 0;
    }
    case ARG_DOUBLE: {
        errno = 0;
        double x = strtod(v, &end);
        if (errno || end == v || *end || x != x)
            return usage_error(cmd, "--%s expects a number, got '%s'", o->name, v);
        if (o->min < o->max && (x < o->min || x > o->max)) {
            char range[80];
            snprintf(range, sizeof range, "'%s' is outside [%g, %g]", v, o->min, o->max);
            return usage_error(cmd, "--%s: %s", o->name, range);
        }
        *(double *)o->dest = x;
        return 0;
    }
    case ARG_FLAG:
        *(bool *)o->dest = true;
        return 0;
    }
    return 2;
}

int args_parse(const arg_cmd *cmd, int argc, char **argv, const char **pos, size_t *npos)
{
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            args_usage(cmd, stdout);
            return 1;
        }
        if (a[0] == '-' && a[1] && a[1] != '-' && a[2] == '\0') { /* -x short alias */
            const arg_spec *o = NULL;
            for (size_t k = 0; k < cmd->nopts; k++)
                if (cmd->opts[k].alias == a[1])
                    o = &cmd->opts[k];
            if (!o)
                return usage_error(cmd, "unknown option '%s'%s", a, "");
            if (o->type == ARG_FLAG) {
                set_value(cmd, o, NULL);
                continue;
            }
            if (i + 1 >= argc)
                return usage_error(cmd, "option %s needs a value (%s)", a,
                                   o->metavar ? o->metavar : "VALUE");
            int rc = set_value(cmd, o, argv[++i]);
            if (rc)
                return rc;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (*npos >= cmd->max_pos)
                return usage_error(cmd, "unexpected argument '%s'%s", a, "");
            pos[(*npos)++] = a;
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const arg_spec *o = NULL;
        for (size_t k = 0; k < cmd->nopts; k++)
            if (strlen(cmd->opts[k].name) == nlen && strncmp(cmd->opts[k].name, name, nlen) == 0)
                o = &cmd->opts[k];
        if (!o)
            return usage_error(cmd, "unknown option '%s'%s", a, "");
        if (o->type == ARG_FLAG) {
            if (eq)
                return usage_error(cmd, "option --%s takes no value%s", o->name, "");
            set_value(cmd, o, NULL);
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc)
                return usage_error(cmd, "option --%s needs a value (%s)", o->name,
                                   o->metavar ? o->metavar : "VALUE");
            v = argv[++i];
        }
        int rc = set_value(cmd, o, v);
        if (rc)
            return rc;
    }
    if (*npos < cmd->min_pos)
        return usage_error(cmd, "missing argument: %s%s", cmd->synopsis, "");
    return 0;
}

int cli_fail(const char *cmd, const lp_err *err)
{
    fprintf(stderr, "lepton %s: %s\n", cmd, lp_err_text(err));
    switch (err->status) {
    case LP_EINVAL:
        return 2;
    default:
        return 1;
    }
}
