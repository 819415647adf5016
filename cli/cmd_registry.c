/*
 * cmd_registry.c - `lepton registry list|show|promote`: the SQLite model registry from the
 * command line. Output is a human table, or JSON with --json.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"

static cJSON *entry_json(const lp_registry_entry *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", e->name);
    cJSON_AddNumberToObject(o, "version", (double)e->version);
    cJSON_AddStringToObject(o, "kind", e->kind ? e->kind : "");
    cJSON_AddStringToObject(o, "stage", lp_stage_name(e->stage));
    cJSON_AddStringToObject(o, "path", e->path);
    cJSON_AddStringToObject(o, "sha256", e->sha256 ? e->sha256 : "");
    cJSON_AddStringToObject(o, "created_at", e->created_at ? e->created_at : "");
    cJSON *m = e->metrics_json ? cJSON_Parse(e->metrics_json) : NULL;
    cJSON_AddItemToObject(o, "metrics", m ? m : cJSON_CreateNull());
    cJSON *p = e->params_json ? cJSON_Parse(e->params_json) : NULL;
    cJSON_AddItemToObject(o, "params", p ? p : cJSON_CreateNull());
    return o;
}

static void print_json(cJSON *j)
{
    char *s = cJSON_Print(j);
    if (s)
        puts(s);
    free(s);
}

int cmd_registry(int argc, char **argv)
{
    const char *db = "registry.db", *name = NULL, *stage_s = NULL;
    long version = 0;
    bool json = false;
    const arg_spec opts[] = {
        {"db", ARG_STR, &db, "DB", "registry database (default registry.db)", 0, 0},
        {"name", ARG_STR, &name, "NAME", "model name", 0, 0},
        {"version", ARG_INT, &version, "N", "version (show: default production, else latest)", 1,
         1e15},
        {"stage", ARG_STR, &stage_s, "STAGE", "promote: staging|production|archived (default "
                                              "production)", 0, 0},
        {"json", ARG_FLAG, &json, NULL, "print JSON", 0, 0},
    };
    const arg_cmd cmd = {"registry", "list|show|promote [--db DB] [--name NAME] [--version N] "
                                     "[--stage STAGE] [--json]",
                         "List, show and promote registered models.", opts,
                         sizeof opts / sizeof opts[0], 1, 2};
    const char *pos[2];
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, pos, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    const char *verb = pos[0];
    if (npos == 2 && !name)
        name = pos[1];
    lp_err err;
    lp_err_clear(&err);
    lp_registry *r;
    if (lp_registry_open(db, &r, &err))
        return cli_fail("registry", &err);
    int out = 0;
    if (!strcmp(verb, "list")) {
        lp_registry_entry *e;
        size_t n;
        if (lp_registry_list(r, name, &e, &n, &err)) {
            out = cli_fail("registry", &err);
        } else if (json) {
            cJSON *a = cJSON_CreateArray();
            for (size_t i = 0; i < n; i++)
                cJSON_AddItemToArray(a, entry_json(&e[i]));
            print_json(a);
            cJSON_Delete(a);
        } else {
            printf("%-24s %7s %-10s %-10s %-20s %s\n", "NAME", "VERSION", "KIND", "STAGE",
                   "CREATED", "PATH");
            for (size_t i = 0; i < n; i++)
                printf("%-24s %7lld %-10s %-10s %-20s %s\n", e[i].name, (long long)e[i].version,
                       e[i].kind, lp_stage_name(e[i].stage), e[i].created_at, e[i].path);
        }
        if (!out)
            lp_registry_entries_free(e, n);
    } else if (!strcmp(verb, "show") || !strcmp(verb, "promote")) {
        if (!name) {
            fprintf(stderr, "lepton registry %s: --name is required\n", verb);
            lp_registry_close(r);
            return 2;
        }
        if (!strcmp(verb, "promote")) {
            lp_stage stage = LP_STAGE_PRODUCTION;
            if (stage_s && lp_stage_parse(stage_s, &stage, &err)) {
                lp_registry_close(r);
                return cli_fail("registry", &err);
            }
            if (!version) {
                fprintf(stderr, "lepton registry promote: --version is required\n");
                lp_registry_close(r);
                return 2;
            }
            if (lp_registry_promote(r, name, version, stage, &err)) {
                lp_registry_close(r);
                return cli_fail("registry", &err);
            }
            if (!json)
                printf("%s version %ld is now %s\n", name, version, lp_stage_name(stage));
        }
        lp_registry_entry e;
        if (lp_registry_get(r, name, version, &e, &err)) {
            out = cli_fail("registry", &err);
        } else {
            if (json || !strcmp(verb, "show")) {
                cJSON *o = entry_json(&e);
                print_json(o);
                cJSON_Delete(o);
            }
            lp_registry_entry_clear(&e);
        }
    } else {
        fprintf(stderr, "lepton registry: unknown action '%s' (expected list, show or promote)\n",
                verb);
        out = 2;
    }
    lp_registry_close(r);
    return out;
}
