/*
 * cmd_pipeline.c - `lepton pipeline --data RAW --label COL --out MODEL.lpm`: the whole flow in
 * one command — profile, clean (exact duplicates out), hold out a test split, tune, train,
 * evaluate on the held-out rows, register — and a JSON report of every step.
 */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "tuning.h"

static cJSON *parse_or_null(const char *s)
{
    cJSON *j = s ? cJSON_Parse(s) : NULL;
    return j ? j : cJSON_CreateNull();
}

int cmd_pipeline(int argc, char **argv)
{
    cli_read rd = {0};
    const char *data = NULL, *label = NULL, *model = "gbdt", *out = NULL, *budget = "30s",
               *drop = NULL, *registry = "registry.db", *name = NULL, *report = NULL;
    long seed = 42;
    double test_frac = 0.2;
    const arg_spec opts[] = {
        {"data", ARG_STR, &data, "RAW", "raw data (CSV, TSV or JSONL)"},
        {"label", ARG_STR, &label, "COL", "the column to predict"},
        {"out", ARG_STR, &out, "MODEL.lpm", "where to save the model", 0, 0, 'o'},
        {"model", ARG_STR, &model, "KIND", "linear|logistic|gbdt (default gbdt)"},
        {"budget", ARG_STR, &budget, "TIME", "tuning budget (default 30s)"},
        {"test", ARG_DOUBLE, &test_frac, "FRAC", "held-out test share (default 0.2)", 0.01, 0.9},
        {"drop", ARG_STR, &drop, "A,B", "columns to leave out (ids flagged by the profile are "
                                        "left out too)"},
        {"name", ARG_STR, &name, "NAME", "registry name (default: the file's base name)"},
        {"registry", ARG_STR, &registry, "DB", "registry database (default registry.db)"},
        {"report", ARG_STR, &report, "FILE", "write the JSON report here (default OUT.report.json)"},
        {"seed", ARG_INT, &seed, "N", "random seed (default 42)", 0, 1e18},
        CLI_READ_SPECS(rd),
    };
    const arg_cmd cmd = {"pipeline", "--data RAW --label COL --out MODEL.lpm",
                         "Profile, clean, tune, train, evaluate on a held-out split and register, "
                         "with a report.",
                         opts, sizeof opts / sizeof opts[0], 0, 0};
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, NULL, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (!data || !label || !out) {
        fprintf(stderr, "lepton pipeline: --data, --label and --out are required\n");
        return 2;
    }
    lp_err err;
    lp_err_clear(&err);
    cli_tune t = {.label = label, .seed = (uint64_t)seed};
    lp_status st = lp_model_kind_parse(model, &t.kind, &err);
    if (!st)
        st = cli_parse_budget(budget, &t.budget_s, &err);
    if (st) {
        fprintf(stderr, "lepton pipeline: %s\n", lp_err_text(&err));
        return 2;
    }
    char repbuf[1024], dbbuf[1024], namebuf[256];
    if (!report) {
        snprintf(repbuf, sizeof repbuf, "%s.report.json", out);
        report = repbuf;
    }
    snprintf(dbbuf, sizeof dbbuf, "%s.trials.db", out);
    t.trials_db = dbbuf;
    if (!name) {
        const char *b = strrchr(data, '/');
        snprintf(namebuf, sizeof namebuf, "%s", b ? b + 1 : data);
        char *dot = strchr(namebuf, '.');
        if (dot && dot != namebuf)
            *dot = '\0';
        name = namebuf;
    }
    lp_frame *raw = NULL, *clean = NULL, *train = NULL, *test = NULL;
    lp_profile *prof = NULL;
    lp_cleaner *cl = NULL;
    lp_clean_report *crep = NULL;
    lp_params *best = NULL;
    lp_model *m = NULL;
    char *pjs = NULL, *cjs = NULL, *dcopy = NULL;
    const char **drops = NULL;
    size_t ndrop = 0, trials = 0;
    double score = 0;
    lp_eval ev;
    lp_split sp = {0};
    uint64_t t0 = lp_time_ns();

    printf("== 1/6 profile %s\n", data);
    st = cli_read_frame(data, &rd, &raw, &err);
    if (!st)
        st = lp_profile_frame(raw, NULL, &prof, &err);
    if (!st)
        st = lp_profile_print(prof, stdout, &err);
    if (!st)
        st = lp_profile_to_json(prof, &pjs, &err);
    /* drop list: the user's, plus likely identifiers and constants the profile found */
    char **ulist = NULL;
    if (!st) {
        ulist = cli_split(drop, &dcopy, &ndrop);
        drops = calloc(ndrop + prof->cols + 1, sizeof(char *));
        if (!ulist || !drops)
            st = lp_err_set(&err, LP_ENOMEM, "out of memory");
        for (size_t k = 0; !st && k < ndrop; k++)
            drops[k] = ulist[k];
        for (size_t j = 0; !st && j < prof->cols; j++) {
            const lp_col_profile *c = &prof->col[j];
            if (strcmp(c->name, label) && (c->likely_id || c->constant)) {
                bool dup = false;
                for (size_t k = 0; k < ndrop && !dup; k++)
                    dup = !strcmp(drops[k], c->name);
                if (!dup) {
                    drops[ndrop++] = c->name;
                    printf("   leaving out '%s' (%s)\n", c->name,
                           c->likely_id ? "likely an identifier" : "constant");
                }
            }
        }
    }
    if (!st) {
        printf("== 2/6 clean: exact duplicates out (imputation happens inside the model)\n");
        lp_cleaner_opts co = lp_cleaner_opts_default();
        co.impute = LP_IMPUTE_METHOD_NONE;
        st = lp_cleaner_fit(raw, &co, &cl, &err);
    }
    if (!st)
        st = lp_cleaner_apply(cl, raw, &clean, &crep, &err);
    if (!st)
        st = lp_cleaner_to_json(cl, crep, &cjs, &err);
    if (!st)
        printf("   %zu rows in, %zu out (%zu duplicates removed)\n", crep->rows_in,
               crep->rows_out, crep->duplicates_removed);
    size_t lj = 0;
    if (!st)
        st = lp_frame_require(clean, label, data, &lj, &err);
    if (!st) {
        printf("== 3/6 hold out %.0f%% of the rows for the final test\n", 100 * test_frac);
        const lp_column *lab = lp_frame_col(clean, lj);
        bool strat = t.kind != LP_MODEL_KIND_LINEAR && lab->kind != LP_COL_KIND_FLOAT;
        st = strat ? lp_split_stratified(lab, test_frac, t.seed, &sp, &err)
                   : lp_split_random(lp_frame_nrows(clean), test_frac, t.seed, &sp, &err);
    }
    if (!st)
        st = lp_frame_take_rows(clean, sp.train, sp.n_train, &train, &err);
    if (!st)
        st = lp_frame_take_rows(clean, sp.test, sp.n_test, &test, &err);
    if (!st) {
        printf("== 4/6 tune %s for %s and train the best\n", model, budget);
        t.drop = drops;
        t.n_drop = ndrop;
        st = cli_tune_run(&t, train, &best, &m, &score, &trials, &err);
    }
    if (!st) {
        char *bp = lp_params_to_json(best);
        printf("   %zu trials; best parameters %s\n", trials, bp);
        free(bp);
        printf("== 5/6 evaluate on the %zu held-out rows\n", lp_frame_nrows(test));
        st = lp_model_evaluate(m, test, &ev, &err);
    }
    if (!st) {
        cli_print_eval(stdout, "  ", &ev);
        st = cli_attach_drift(m, train, &err);
    }
    if (!st)
        st = lp_model_save(m, out, &err);
    if (!st) {
        printf("== 6/6 register\n   ");
        st = cli_register(m, registry, name, out, &err);
    }
    if (!st) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "data", data);
        cJSON_AddStringToObject(r, "label", label);
        cJSON_AddItemToObject(r, "profile", parse_or_null(pjs));
        cJSON_AddItemToObject(r, "cleaning", parse_or_null(cjs));
        cJSON *dl = cJSON_AddArrayToObject(r, "dropped_columns");
        for (size_t k = 0; k < ndrop; k++)
            cJSON_AddItemToArray(dl, cJSON_CreateString(drops[k]));
        cJSON *tu = cJSON_AddObjectToObject(r, "tuning");
        cJSON_AddNumberToObject(tu, "trials", (double)trials);
        cJSON_AddNumberToObject(tu, "best_validation_score", score);
        char *bp = lp_params_to_json(best);
        cJSON_AddItemToObject(tu, "best_params", parse_or_null(bp));
        free(bp);
        cJSON_AddStringToObject(tu, "trial_log", dbbuf);
        char *ej = lp_eval_to_json(&ev);
        cJSON_AddItemToObject(r, "test_metrics", parse_or_null(ej));
        free(ej);
        cJSON_AddStringToObject(r, "model", out);
        cJSON_AddStringToObject(r, "registry", registry);
        cJSON_AddStringToObject(r, "registered_as", name);
        cJSON_AddNumberToObject(r, "seconds", lp_time_since(t0));
        char *txt = cJSON_Print(r);
        cJSON_Delete(r);
        st = txt ? lp_file_write(report, txt, strlen(txt), &err)
                 : lp_err_set(&err, LP_ENOMEM, "out of memory");
        free(txt);
        if (!st)
            printf("report: %s (%.1f s in all)\n", report, lp_time_since(t0));
    }
    if (st)
        rc = cli_fail("pipeline", &err);
    lp_split_free(&sp);
    lp_model_free(m);
    lp_params_free(best);
    lp_clean_report_free(crep);
    lp_cleaner_free(cl);
    lp_profile_free(prof);
    lp_frame_free(raw);
    lp_frame_free(clean);
    lp_frame_free(train);
    lp_frame_free(test);
    free(pjs);
    free(cjs);
    free(drops);
    free(ulist);
    free(dcopy);
    return rc;
}
