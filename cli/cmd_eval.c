/*
 * cmd_eval.c - `lepton eval --model MODEL.lpm --data TEST [--json]`: the task's metrics on
 * labelled data (classification: accuracy, macro_f1, auroc, auprc, logloss; regression: rmse,
 * mae, r2), as one JSON object with --json. --attack fgsm|pgd --eps E adds the accuracy under
 * a gradient attack on the design rows (after the cleaner and pipeline) beside the clean
 * accuracy, JSON key "attack"; nn classifiers only (other families: a clear error).
 */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "modelio.h"

int cmd_eval(int argc, char **argv)
{
    cli_read rd = {0};
    const char *model = NULL, *data = NULL;
    bool json = false;
    const char *attack = NULL;
    double eps = 0.1, step_size = 0.0;
    long steps = 10, seed = 0;
    const arg_spec opts[] = {
        {"model", ARG_STR, &model, "MODEL.lpm", "the model file"},
        {"data", ARG_STR, &data, "TEST", "labelled data"},
        {"json", ARG_FLAG, &json, NULL, "print one JSON object"},
        {"attack", ARG_STR, &attack, "fgsm|pgd",
         "also report accuracy under a gradient attack on the design (nn classifiers only)"},
        {"eps", ARG_DOUBLE, &eps, "E", "attack L-inf radius in the design's units (default 0.1)",
         1e-12, 1e6},
        {"steps", ARG_INT, &steps, "N", "PGD iterations (default 10)", 1, 1000},
        {"step-size", ARG_DOUBLE, &step_size, "A", "PGD step (default 2.5 E / steps)", 0, 1e6},
        {"seed", ARG_INT, &seed, "S", "PGD random starts (default 0)", 0, 1e18},
        CLI_READ_SPECS(rd),
    };
    const arg_cmd cmd = {"eval",
                         "--model MODEL.lpm --data TEST [--json] [--attack fgsm|pgd --eps E]",
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
        st = cli_read_labelled(data, &rd, lp_model_label(m), &f, &err);
    if (!st)
        st = lp_model_evaluate(m, f, &e, &err);
    lp_attack_result ar = {0};
    lp_attack_opts ao = lp_attack_opts_default();
    if (!st && attack) {
        st = lp_attack_method_parse(attack, &ao.method, &err);
        ao.eps = eps;
        ao.steps = (int)steps;
        ao.step_size = step_size;
        ao.seed = (uint64_t)seed;
        if (!st)
            st = lp_model_attack_eval(m, f, &ao, &ar, &err);
    }
    if (st) {
        rc = cli_fail("eval", &err);
    } else if (json) {
        char *s = lp_eval_to_json(&e);
        if (s && attack) {
            /* {..., "attack": {...}} */
            size_t l = strlen(s);
            printf("%.*s,\"attack\":{\"method\":\"%s\",\"eps\":%.17g,\"n\":%zu,"
                   "\"clean_accuracy\":%.17g,\"adversarial_accuracy\":%.17g}}\n",
                   (int)(l - 1), s, attack, eps, ar.n, ar.clean_accuracy, ar.adv_accuracy);
        } else {
            printf("%s\n", s ? s : "{}");
        }
        free(s);
    } else {
        cli_print_eval(stdout, "eval:", &e);
        if (attack)
            printf("attack %s eps %g: clean accuracy %.4f  adversarial accuracy %.4f  (%zu rows)"
                   "\n", attack, eps, ar.clean_accuracy, ar.adv_accuracy, ar.n);
    }
    lp_frame_free(f);
    lp_model_free(m);
    return rc;
}
