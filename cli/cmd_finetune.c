/*
 * cmd_finetune.c - `lepton finetune --base MODEL.lpm --data NEW --method lora|head|full|boost|warm
 * --out FILE`: splits NEW into training and validation rows (seeded, --valid-fraction), adapts
 * the base on the training rows (finetune.h), writes the adapter (.lpa, lora) or the tuned model
 * (.lpm, the other methods), and reports the base's and the tuned model's metrics on the same
 * validation rows (accuracy and logloss for classification, rmse for regression), as text or
 * one JSON object (--json). The data is checked against the base before anything trains: new
 * columns, missing inputs and unseen labels are one-line errors naming them (exit 2).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "commands.h"
#include "io.h"
#include "lepton/finetune.h"
#include "modelio.h"

/* Metrics of the adapter's predictions on rows (labelled), in lp_eval's shape; a label none of
 * the adapter's classes has counts as wrong (probability 1e-15 in the log loss). */
static lp_status lora_eval(const lp_model *base, const lp_lora *a, const lp_frame *rows,
                           lp_eval *e, lp_err *err)
{
    lp_predictions p;
    lp_status st = lp_lora_predict(a, rows, &p, err);
    if (st)
        return st;
    size_t j;
    if ((st = lp_frame_require(rows, lp_model_label(base), "validation rows", &j, err))) {
        lp_predictions_clear(&p);
        return st;
    }
    const lp_column *c = lp_frame_col(rows, j);
    e->task = p.task;
    e->n = p.n;
    e->accuracy = e->macro_f1 = e->auroc = e->auprc = e->logloss = NAN;
    e->rmse = e->mae = e->r2 = NAN;
    double s1 = 0, s2 = 0;
    size_t ok = 0;
    char cell[64];
    for (size_t i = 0; i < p.n; i++) {
        if (p.task == LP_TASK_REGRESSION) {
            double d = p.out[i] - c->num[i];
            s1 += d * d;
            s2 += fabs(d);
            continue;
        }
        const char *s = lp_column_cell_str(c, i, cell, sizeof cell);
        size_t k = 0;
        while (k < p.k && strcmp(lp_lora_class(a, k), s))
            k++;
        ok += (size_t)p.cls[i] == k;
        s1 -= log(fmax(k < p.k ? p.out[i * p.k + k] : 0, 1e-15));
    }
    if (p.task == LP_TASK_REGRESSION) {
        e->rmse = sqrt(s1 / (double)p.n);
        e->mae = s2 / (double)p.n;
    } else {
        e->accuracy = (double)ok / (double)p.n;
        e->logloss = s1 / (double)p.n;
    }
    lp_predictions_clear(&p);
    return LP_OK;
}

static void print_eval(const char *who, const lp_eval *e)
{
    if (e->task == LP_TASK_REGRESSION)
        printf("%-6s rmse %.4f  mae %.4f  (n=%zu)\n", who, e->rmse, e->mae, e->n);
    else
        printf("%-6s accuracy %.4f  logloss %.4f  (n=%zu)\n", who, e->accuracy, e->logloss,
               e->n);
}

int cmd_finetune(int argc, char **argv)
{
    cli_read rd = {0};
    const char *base_path = NULL, *data = NULL, *method_s = NULL, *out = NULL, *targets = NULL;
    long rank = 8, epochs = 20, rounds = 50, seed = 42, batch = 32;
    double alpha = 16, lr = 0, valid_frac = 0.2, lambda = 1.0;
    bool json = false, new_classes = false;
    arg_list drop = {0};
    const arg_spec opts[] = {
        {"base", ARG_STR, &base_path, "MODEL.lpm", "the model to adapt"},
        {"data", ARG_STR, &data, "NEW", "new labelled data (the base's columns and label)"},
        {"method", ARG_STR, &method_s, "M", "lora | head | full (nn), boost (gbdt), warm "
                                             "(linear, logistic)"},
        {"out", ARG_STR, &out, "FILE", "the adapter (.lpa, lora) or tuned model (.lpm)"},
        {"rank", ARG_INT, &rank, "R", "lora rank (default 8)", 1, 65536, 0},
        {"alpha", ARG_DOUBLE, &alpha, "A", "lora scale: the update is (alpha/rank) B A "
                                           "(default 16)", 1e-9, 1e9, 0},
        {"targets", ARG_STR, &targets, "LIST", "lora target dense layers, e.g. 0,2 or "
                                               "dense0,dense2 (default all)"},
        {"epochs", ARG_INT, &epochs, "N", "passes over the data (default 20)", 1, 100000, 0},
        {"batch-size", ARG_INT, &batch, "B", "rows per step (default 32)", 1, 1048576, 0},
        {"lr", ARG_DOUBLE, &lr, "F", "learning rate (default 1e-2 lora, 1e-3 head/full, the "
                                     "base's for boost)", 1e-12, 10, 0},
        {"rounds", ARG_INT, &rounds, "N", "boost: new rounds (default 50)", 1, 100000, 0},
        {"new-classes", ARG_FLAG, &new_classes, NULL, "lora: labels the base never saw become "
                                                      "new classes (.lpa version 2)"},
        {"lambda", ARG_DOUBLE, &lambda, "L", "warm: pull towards the base weights (default 1)",
         0, 1e12, 0},
        {"valid-fraction", ARG_DOUBLE, &valid_frac, "F", "validation share of NEW (default "
                                                         "0.2)", 0.01, 0.9, 0},
        {"seed", ARG_INT, &seed, "S", "split, initialisation and shuffling (default 42)", 0,
         9.2e18, 0},
        {"drop", ARG_LIST, &drop, "COL", "a column of NEW to ignore (repeatable)"},
        {"json", ARG_FLAG, &json, NULL, "print one JSON object"},
        CLI_READ_SPECS(rd),
    };
    const arg_cmd cmd = {"finetune",
                         "--base MODEL.lpm --data NEW --method lora|head|full|boost|warm "
                         "--out FILE [--rank 8] [--alpha 16] [--epochs N] [--lr F] "
                         "[--valid-fraction 0.2] [--seed S] [--json]",
                         "Adapt a model to new data; report base and tuned metrics.", opts,
                         sizeof opts / sizeof opts[0], 0, 0};
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, NULL, &npos);
    if (rc) {
        arg_list_free(&drop);
        return rc == 1 ? 0 : rc;
    }
    if (!base_path || !data || !method_s || !out) {
        fprintf(stderr, "lepton finetune: --base, --data, --method and --out are required\n");
        arg_list_free(&drop);
        return 2;
    }
    lp_err err;
    lp_err_clear(&err);
    lp_finetune_opts o = lp_finetune_opts_default();
    lp_model *base = NULL, *tuned = NULL;
    lp_frame *f = NULL, *tr = NULL, *va = NULL;
    lp_lora *a = NULL;
    lp_split sp = {0};
    lp_eval eb, et;
    lp_finetune_stats stats = {0};
    lp_status st = lp_finetune_method_parse(method_s, &o.method, &err);
    o.rank = (int)rank;
    o.alpha = alpha;
    o.targets = targets;
    o.epochs = (int)epochs;
    o.batch_size = (int)batch;
    o.lr = lr;
    o.rounds = (int)rounds;
    o.lambda = lambda;
    o.seed = (uint64_t)seed;
    o.drop = drop.v;
    o.n_drop = drop.n;
    o.new_classes = new_classes;
    if (!st)
        st = lp_finetune_opts_check(&o, &err);
    if (!st)
        st = lp_model_load(base_path, &base, &err);
    if (!st)
        st = cli_read_frame(data, &rd, &f, &err);
    if (!st && !new_classes) /* with new classes lp_lora_train checks the columns */
        st = lp_finetune_check_frame(base, f, NULL, o.drop, o.n_drop, &err);
    if (!st)
        st = lp_split_random(lp_frame_nrows(f), valid_frac, o.seed, &sp, &err);
    if (!st && (sp.n_train == 0 || sp.n_test == 0))
        st = lp_err_set(&err, LP_EINVAL, "%s: %zu rows are too few to split into training and "
                        "validation rows", data, lp_frame_nrows(f));
    if (!st)
        st = lp_frame_take_rows(f, sp.train, sp.n_train, &tr, &err);
    if (!st)
        st = lp_frame_take_rows(f, sp.test, sp.n_test, &va, &err);
    if (!st && !new_classes) {
        st = lp_model_evaluate(base, va, &eb, &err);
    } else if (!st) { /* the base through a fresh adapter (B = 0: the base's outputs) */
        lp_lora *a0 = NULL;
        lp_finetune_opts o0 = o;
        o0.new_classes = false;
        if (!(st = lp_lora_new(base, &o0, &a0, &err)))
            st = lora_eval(base, a0, va, &eb, &err);
        lp_lora_free(a0);
    }
    if (!st && o.method == LP_FINETUNE_METHOD_LORA) {
        st = lp_lora_train(base, tr, &o, &a, &stats, &err);
        if (!st)
            st = lp_lora_save(a, out, &err);
        if (!st)
            st = lora_eval(base, a, va, &et, &err);
    } else if (!st) {
        st = lp_finetune_model(base, tr, &o, out, &stats, &err);
        if (!st)
            st = lp_model_load(out, &tuned, &err);
        if (!st)
            st = lp_model_evaluate(tuned, va, &et, &err);
    }
    if (st) {
        rc = cli_fail("finetune", &err);
    } else {
        struct stat sb;
        long long bytes = stat(out, &sb) == 0 ? (long long)sb.st_size : -1;
        if (json) {
            cJSON *j = cJSON_CreateObject();
            char *bj = lp_eval_to_json(&eb), *tj = lp_eval_to_json(&et);
            cJSON_AddStringToObject(j, "method", lp_finetune_method_name(o.method));
            cJSON_AddStringToObject(j, "out", out);
            cJSON_AddNumberToObject(j, "out_bytes", (double)bytes);
            cJSON_AddNumberToObject(j, "train_rows", (double)sp.n_train);
            cJSON_AddNumberToObject(j, "valid_rows", (double)sp.n_test);
            cJSON_AddNumberToObject(j, "trainable", (double)stats.trainable);
            cJSON_AddNumberToObject(j, "train_seconds", stats.train_seconds);
            cJSON_AddNumberToObject(j, "trainer_peak_bytes", (double)stats.peak_bytes);
            cJSON_AddItemToObject(j, "base", bj ? cJSON_Parse(bj) : cJSON_CreateNull());
            cJSON_AddItemToObject(j, "tuned", tj ? cJSON_Parse(tj) : cJSON_CreateNull());
            char *s = cJSON_PrintUnformatted(j);
            printf("%s\n", s ? s : "{}");
            free(s);
            free(bj);
            free(tj);
            cJSON_Delete(j);
        } else {
            printf("finetune %s: %zu training rows, %zu validation rows, %zu trainable "
                   "parameters, %.2f s, trainer peak %zu bytes\n",
                   lp_finetune_method_name(o.method), sp.n_train, sp.n_test, stats.trainable,
                   stats.train_seconds, stats.peak_bytes);
            print_eval("base", &eb);
            print_eval("tuned", &et);
            printf("wrote %s (%lld bytes)\n", out, bytes);
        }
    }
    lp_split_free(&sp);
    lp_lora_free(a);
    lp_model_free(tuned);
    lp_frame_free(tr);
    lp_frame_free(va);
    lp_frame_free(f);
    lp_model_free(base);
    arg_list_free(&drop);
    return rc;
}
