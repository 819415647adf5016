/*
 * cmd_eval.c - `lepton eval --model MODEL.lpm --data TEST [--json]`: the task's metrics on
 * labelled data (classification: accuracy, macro_f1, auroc, auprc, logloss; regression: rmse,
 * mae, r2), as one JSON object with --json.
 */
#include <stdlib.h>

#include "commands.h"
#include "modelio.h"

int cmd_eval(int argc, char **argv)
{
    cli_read rd = {0};
    const char *model = NULL, *data = NULL;
    bool json = false;
    const arg_spec opts[] = {
        {"model", ARG_STR, &model, "MODEL.lpm", "the model file"},
        {"data", ARG_STR, &data, "TEST", "labelled data"},
        {"json", ARG_FLAG, &json, NULL, "print one JSON object"},
        CLI_READ_SPECS(rd),
    };
    const arg_cmd cmd = {"eval", "--model MODEL.lpm --data TEST [--json]",
                         "Evaluate a model on labelled data.", opts, sizeof opts / sizeof opts[0],
                         0, 0};
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, NULL, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (!model || !data) {
        fprintf(stderr, "lepton eval: --model and --data are required\n");
        return 2;
    }
    lp_err err;
    lp_err_clear(&err);
    lp_model *m = NULL;
    lp_frame *f = NULL;
    lp_eval e;
    lp_status st = lp_model_load(model, &m, &err);
    if (!st)
        st = cli_read_frame(data, &rd, &f, &err);
    if (!st)
        st = lp_model_evaluate(m, f, &e, &err);
    if (st) {
        rc = cli_fail("eval", &err);
    } else if (json) {
        char *s = lp_eval_to_json(&e);
        printf("%s\n", s ? s : "{}");
        free(s);
    } else {
        cli_print_eval(stdout, "eval:", &e);
    }
    lp_frame_free(f);
    lp_model_free(m);
    return rc;
}
