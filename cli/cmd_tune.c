/*
 * cmd_tune.c - `lepton tune --data TRAIN --label COL --model ... --budget 60s --out MODEL.lpm`:
 * random search with successive halving over the family's parameters within a time (and
 * optionally trial) budget, every trial recorded in SQLite, the best re-fitted and saved.
 */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "tuning.h"

int cmd_tune(int argc, char **argv)
{
    cli_read rd = {0};
    const char *data = NULL, *label = NULL, *model = "gbdt", *out = NULL, *budget = "60s",
               *drop = NULL, *trials_db = NULL, *registry = "registry.db", *name = NULL;
    arg_list params = {0};
    long seed = 42, max_trials = 0;
    bool json = false, keep_ids = false;
    const arg_spec opts[] = {
        {"data", ARG_STR, &data, "TRAIN", "training data"},
        {"label", ARG_STR, &label, "COL", "the column to predict"},
        {"model", ARG_STR, &model, "KIND", "linear|logistic|gbdt (default gbdt)"},
        {"budget", ARG_STR, &budget, "TIME", "wall-clock budget: 60s, 5m, 1h (default 60s)"},
        {"trials", ARG_INT, &max_trials, "N", "stop after N trials too (default: time only)", 1,
         1e6},
        {"param", ARG_LIST, &params, "K=V", "fix a parameter (repeatable)"},
        {"out", ARG_STR, &out, "MODEL.lpm", "where to save the best model", 0, 0, 'o'},
        {"drop", ARG_STR, &drop, "A,B", "columns to leave out of the features"},
        {"keep-ids", ARG_FLAG, &keep_ids, NULL,
         "keep identifier columns as features (left out by default, as by train)"},
        {"trials-db", ARG_STR, &trials_db, "DB", "SQLite file for the trial log (default "
                                                 "OUT.trials.db)"},
        {"seed", ARG_INT, &seed, "N", "random seed (default 42)", 0, 1e18},
        {"register", ARG_STR, &name, "NAME", "also register the model under NAME"},
        {"registry", ARG_STR, &registry, "DB", "registry database (default registry.db)"},
        {"json", ARG_FLAG, &json, NULL, "print the result as JSON"},
        CLI_READ_SPECS(rd),
    };
    const arg_cmd cmd = {"tune",
                         "--data TRAIN --label COL --model ... --budget 60s --out MODEL.lpm",
                         "Search hyper-parameters (random search + successive halving), re-fit "
                         "the best and save it.",
                         opts, sizeof opts / sizeof opts[0], 0, 0};
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, NULL, &npos);
    if (rc) {
        arg_list_free(&params);
        return rc == 1 ? 0 : rc;
    }
    if (!data || !label || !out) {
        fprintf(stderr, "lepton tune: --data, --label and --out are required\n");
        arg_list_free(&params);
        return 2;
    }
    lp_err err;
    lp_err_clear(&err);
    cli_tune t = {.label = label, .seed = (uint64_t)seed, .max_trials = (size_t)max_trials};
    lp_params *base = NULL;
    lp_status st = lp_model_kind_parse(model, &t.kind, &err);
    if (!st)
        st = cli_parse_budget(budget, &t.budget_s, &err);
    if (!st)
        st = cli_params(&params, &base, &err);
    if (st) {
        fprintf(stderr, "lepton tune: %s\n", lp_err_text(&err));
        arg_list_free(&params);
        lp_params_free(base);
        return 2;
    }
    char dbbuf[1024];
    if (!trials_db) {
        snprintf(dbbuf, sizeof dbbuf, "%s.trials.db", out);
        trials_db = dbbuf;
    }
    char *dcopy = NULL;
    size_t ndrop = 0;
    char **dlist = cli_split(drop, &dcopy, &ndrop);
    const char **drops = NULL;
    size_t nd = 0;
    t.base = base;
    t.trials_db = trials_db;
    lp_frame *tr = NULL;
    lp_params *best = NULL;
    lp_model *m = NULL;
    double score = 0;
    size_t trials = 0;
    uint64_t t0 = lp_time_ns();
    st = cli_read_labelled(data, &rd, label, &tr, &err);
    if (!st)
        st = cli_drop_list(tr, label, dlist, ndrop, keep_ids, &drops, &nd, &err);
    t.drop = drops;
    t.n_drop = nd;
    if (!st)
        st = cli_tune_run(&t, tr, &best, &m, &score, &trials, &err);
    if (!st)
        st = cli_attach_drift(m, tr, &err);
    if (!st)
        st = lp_model_save(m, out, &err);
    if (!st && name)
        st = cli_register(m, registry, name, out, &err);
    if (st) {
        rc = cli_fail("tune", &err);
    } else {
        cli_drop_note("tune", drops, ndrop, nd);
        char *pj = lp_params_to_json(best), *mj = cli_valid_metrics_json(m);
        if (json)
            printf("{\"trials\":%zu,\"seconds\":%.2f,\"best_score\":%.6g,\"best_params\":%s,"
                   "\"valid\":%s,\"model\":\"%s\"}\n",
                   trials, lp_time_since(t0), score, pj, mj, out);
        else
            printf("tune: %zu trials in %.1f s (log: %s)\nbest parameters: %s\nvalidation of the "
                   "re-fitted model: %s\nsaved %s\n",
                   trials, lp_time_since(t0), trials_db, pj, mj, out);
        free(pj);
        free(mj);
    }
    lp_model_free(m);
    lp_params_free(best);
    lp_params_free(base);
    lp_frame_free(tr);
    arg_list_free(&params);
    free(drops);
    free(dlist);
    free(dcopy);
    return rc;
}
