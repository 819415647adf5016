/*
 * cmd_profile.c - `lepton profile FILE [--json]`: per column the inferred type, counts,
 * statistics, top categories, outliers and quality flags, as a table or as JSON.
 */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "io.h"

int cmd_profile(int argc, char **argv)
{
    cli_read rd = {0};
    bool json = false;
    const char *out_path = NULL;
    lp_profile_opts po = lp_profile_opts_default();
    long top = (long)po.top_k;
    const arg_spec opts[] = {
        {"json", ARG_FLAG, &json, NULL, "print the report as JSON"},
        {"out", ARG_STR, &out_path, "FILE", "also write the JSON report to FILE", 0, 0, 'o'},
        {"top", ARG_INT, &top, "K", "top categories per column (default 5)", 1,
         LP_PROFILE_TOP_MAX},
        CLI_READ_SPECS(rd),
    };
    const arg_cmd cmd = {"profile", "FILE [--json] [-o REPORT.json] [--top K]",
                         "Profile a CSV/TSV/JSONL file: types, counts, missing, distinct, "
                         "min/max/mean/std/quantiles, top categories, outliers and flags.",
                         opts, sizeof opts / sizeof opts[0], 1, 1};
    const char *pos[1];
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, pos, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    po.top_k = (size_t)top;
    lp_err err;
    lp_err_clear(&err);
    lp_frame *f = NULL;
    lp_profile *p = NULL;
    char *js = NULL;
    if (cli_read_frame(pos[0], &rd, &f, &err) || lp_profile_frame(f, &po, &p, &err) ||
        ((json || out_path) && lp_profile_to_json(p, &js, &err))) {
        rc = cli_fail("profile", &err);
    } else {
        if (out_path && lp_file_write(out_path, js, strlen(js), &err))
            rc = cli_fail("profile", &err);
        else if (json)
            puts(js);
        else if (lp_profile_print(p, stdout, &err))
            rc = cli_fail("profile", &err);
    }
    free(js);
    lp_profile_free(p);
    lp_frame_free(f);
    return rc;
}
