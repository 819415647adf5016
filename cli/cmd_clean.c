/*
 * cmd_clean.c - `lepton clean FILE -o OUT`: de-duplicate, impute and treat outliers with a
 * fitted, reusable transform. --save keeps the fitted transform as a model file; --apply uses a
 * saved one on new rows, so they are cleaned exactly as the training rows were.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "io.h"

static lp_status parse_impute(const char *s, lp_impute_method *m, lp_err *err)
{
    if (!strcmp(s, "svd")) {
        *m = LP_IMPUTE_METHOD_SOFT;
        return LP_OK;
    }
    if (!strcmp(s, "mode")) {
        *m = LP_IMPUTE_METHOD_MOST_FREQUENT;
        return LP_OK;
    }
    if (lp_impute_method_parse(s, m, NULL) == LP_OK)
        return LP_OK;
    return lp_err_set(err, LP_EINVAL,
                      "--impute '%s': expected svd, median, mean, mode, constant or none", s);
}

static lp_status load_cleaner(const void *data, size_t len, void *out, lp_err *err)
{
    return lp_cleaner_load(data, len, out, err);
}

int cmd_clean(int argc, char **argv)
{
    cli_read rd = {0};
    const char *out = NULL, *impute = "median", *outliers = NULL, *method = NULL,
               *report = NULL, *save = NULL, *apply = NULL, *fill = NULL;
    bool no_dedupe = false;
    const arg_spec opts[] = {
        {"out", ARG_STR, &out, "OUT", "write the cleaned rows here (.csv, .tsv or .jsonl)", 0, 0,
         'o'},
        {"impute", ARG_STR, &impute, "M", "svd|median|mean|mode|constant|none (default median)"},
        {"fill", ARG_STR, &fill, "VALUE", "the value for --impute constant"},
        {"outliers", ARG_STR, &outliers, "A", "flag|clip|drop outliers (default: leave them)"},
        {"outlier-method", ARG_STR, &method, "M", "robust_z|iqr|pca (default robust_z)"},
        {"no-dedupe", ARG_FLAG, &no_dedupe, NULL, "keep exact duplicate rows"},
        {"report", ARG_STR, &report, "FILE", "write what was fitted and done as JSON"},
        {"save", ARG_STR, &save, "FILE", "save the fitted transform (.lpm) for new rows"},
        {"apply", ARG_STR, &apply, "FILE", "apply a saved transform instead of fitting one"},
        CLI_READ_SPECS(rd),
    };
    const arg_cmd cmd = {"clean",
                         "FILE -o OUT [--impute svd|median|mean|mode] [--outliers flag|clip|drop] "
                         "[--report REPORT.json]",
                         "Remove exact duplicates, impute missing values and flag, clip or drop "
                         "outliers, with a transform that can be saved and re-applied.",
                         opts, sizeof opts / sizeof opts[0], 1, 1};
    const char *pos[1];
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, pos, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (!out) {
        fprintf(stderr, "lepton clean: -o OUT is required\n");
        return 2;
    }
    lp_err err;
    lp_err_clear(&err);
    lp_cleaner_opts co = lp_cleaner_opts_default();
    co.dedupe = !no_dedupe;
    lp_status st = parse_impute(impute, &co.impute, &err);
    if (!st && fill) {
        char *end;
        double v = strtod(fill, &end);
        if (*fill && !*end)
            co.fill_value = v;
        co.fill_string = fill;
    }
    if (!st && outliers) {
        st = lp_outlier_action_parse(outliers, &co.action, &err);
        co.outlier = LP_OUTLIER_METHOD_ROBUST_Z;
    }
    if (!st && method) {
        st = lp_outlier_method_parse(method, &co.outlier, &err);
        if (!st && !outliers)
            co.action = LP_OUTLIER_ACTION_FLAG;
    }
    if (!st)
        st = lp_cleaner_opts_check(&co, &err);
    if (st) {
        fprintf(stderr, "lepton clean: %s\n", lp_err_text(&err));
        return 2;
    }

    lp_frame *f = NULL, *g = NULL;
    lp_cleaner *c = NULL;
    lp_clean_report *r = NULL;
    char *js = NULL;
    st = cli_read_frame(pos[0], &rd, &f, &err);
    if (!st)
        st = apply ? cli_load_blob("cleaner", apply, load_cleaner, &c, &err)
                   : lp_cleaner_fit(f, &co, &c, &err);
    if (!st)
        st = lp_cleaner_apply(c, f, &g, &r, &err);
    if (!st)
        st = lp_frame_write(g, out, &err);
    if (!st && save) {
        lp_buf b;
        lp_buf_init(&b);
        st = lp_cleaner_save(c, &b, &err);
        if (!st)
            st = cli_save_blob("cleaner", &b, save, &err);
        lp_buf_free(&b);
    }
    if (!st && report) {
        st = lp_cleaner_to_json(c, r, &js, &err);
        if (!st)
            st = lp_file_write(report, js, strlen(js), &err);
    }
    if (st) {
        rc = cli_fail("clean", &err);
    } else {
        size_t imputed = 0, clipped = 0;
        for (size_t j = 0; j < r->cols; j++) {
            imputed += r->col[j].imputed;
            clipped += r->col[j].clipped;
        }
        printf("clean: %zu rows in, %zu out: %zu duplicates removed, %zu cells imputed, "
               "%zu outlier rows (%zu cells clipped, %zu rows dropped); wrote %s\n",
               r->rows_in, r->rows_out, r->duplicates_removed, imputed, r->outlier_rows, clipped,
               r->rows_dropped, out);
    }
    free(js);
    lp_clean_report_free(r);
    lp_cleaner_free(c);
    lp_frame_free(f);
    lp_frame_free(g);
    return rc;
}
