/*
 * cmd_train.c - `lepton train --data TRAIN --label COL --model linear|logistic|nn|gbdt
 * [--param k=v ...] [--device cuda|cpu|auto] [--valid VALID] --out MODEL.lpm`: train one model
 * on a CSV/TSV/JSONL file and save it as one .lpm file that carries its imputer, feature
 * pipeline and drift reference. --device is the nn family's "device" parameter as a flag:
 * resolved here (so `auto` can say what it picked and `cuda` without a GPU fails before any
 * data is read); other families train on the cpu and reject --device cuda.
 */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "modelio.h"

/* Check --device, resolve it to a table name and set the "device" parameter (nn only). */
static lp_status train_device(const char *device, lp_model_kind kind, lp_params *p, lp_err *err)
{
    if (strcmp(device, "cuda") != 0 && strcmp(device, "cpu") != 0 && strcmp(device, "auto") != 0)
        return lp_err_set(err, LP_EINVAL, "--device '%s': expected cuda, cpu or auto", device);
    const char *prev = lp_params_get(p, "device");
    if (prev && strcmp(prev, device) != 0)
        return lp_err_set(err, LP_EINVAL, "--device %s contradicts --param device=%s", device,
                          prev);
    if (kind != LP_MODEL_KIND_NN) {
        if (strcmp(device, "cuda") == 0)
            return lp_err_set(err, LP_EUNSUPPORTED,
                              "--device cuda: only --model nn trains on a GPU; %s trains on the "
                              "cpu",
                              lp_model_kind_name(kind));
        return LP_OK;
    }
    const lp_backend *be = NULL;
    lp_status st = lp_backend_get(device, &be, err);
    if (st)
        return lp_err_prefix(err, "--device");
    if (strcmp(device, "auto") == 0)
        fprintf(stderr, "lepton train: --device auto: training on %s\n", be->name);
    return lp_params_set(p, "device", be->name, err);
}

/* --adversarial and its options as the nn family's parameters (adversarial,
 * adversarial_method, pgd_steps, pgd_step_size); the family validates the values. */
static lp_status train_adversarial(lp_model_kind kind, const char *eps, const char *method,
                                   const char *steps, const char *step, lp_params *p,
                                   lp_err *err)
{
    if (!eps && !method && !steps && !step)
        return LP_OK;
    if (kind != LP_MODEL_KIND_NN)
        return lp_err_set(err, LP_EUNSUPPORTED, "--adversarial needs --model nn (adversarial "
                          "training perturbs inputs along the loss gradient), not %s",
                          lp_model_kind_name(kind));
    if (!eps)
        return lp_err_set(err, LP_EINVAL, "--adversarial-method, --pgd-steps and "
                          "--pgd-step-size need --adversarial EPS");
    lp_status st = lp_params_set(p, "adversarial", eps, err);
    if (!st && method)
        st = lp_params_set(p, "adversarial_method", method, err);
    if (!st && steps)
        st = lp_params_set(p, "pgd_steps", steps, err);
    if (!st && step)
        st = lp_params_set(p, "pgd_step_size", step, err);
    return st;
}

int cmd_train(int argc, char **argv)
{
    cli_read rd = {0};
    const char *data = NULL, *label = NULL, *model = "gbdt", *valid = NULL, *out = NULL,
               *drop = NULL, *registry = "registry.db", *name = NULL, *device = NULL;
    arg_list params = {0};
    long seed = 42;
    bool json = false, keep_ids = false;
    const char *adv = NULL, *adv_method = NULL, *pgd_steps = NULL, *pgd_step = NULL;
    const arg_spec opts[] = {
        {"data", ARG_STR, &data, "TRAIN", "training data (CSV, TSV or JSONL; gzip ok)"},
        {"label", ARG_STR, &label, "COL", "the column to predict"},
        {"model", ARG_STR, &model, "KIND", "linear|logistic|nn|gbdt (default gbdt)"},
        {"param", ARG_LIST, &params, "K=V", "a model parameter (repeatable)"},
        {"device", ARG_STR, &device, "DEV",
         "cuda|cpu|auto: where --model nn trains (the device parameter; auto = cuda when a GPU "
         "is usable, else cpu)"},
        {"valid", ARG_STR, &valid, "VALID", "validation data (default: 20% of TRAIN held out)"},
        {"adversarial", ARG_STR, &adv, "EPS",
         "nn: adversarial training, L-inf radius EPS in the design's units (after the pipeline: "
         "standard deviations of a scaled column); batches mix clean and attacked rows 50/50"},
        {"adversarial-method", ARG_STR, &adv_method, "M", "nn: fgsm (default) or pgd"},
        {"pgd-steps", ARG_STR, &pgd_steps, "N", "nn: PGD iterations (default 10)"},
        {"pgd-step-size", ARG_STR, &pgd_step, "A", "nn: PGD step (default 2.5 EPS / steps)"},
        {"out", ARG_STR, &out, "MODEL.lpm", "where to save the model", 0, 0, 'o'},
        {"drop", ARG_STR, &drop, "A,B", "columns to leave out of the features"},
        {"keep-ids", ARG_FLAG, &keep_ids, NULL,
         "keep identifier columns as features (a distinct value on every row, named as an id "
         "or one word each; left out by default, with a note)"},
        {"seed", ARG_INT, &seed, "N", "random seed (default 42)", 0, 1e18},
        {"register", ARG_STR, &name, "NAME", "also register the model under NAME"},
        {"registry", ARG_STR, &registry, "DB", "registry database (default registry.db)"},
        {"json", ARG_FLAG, &json, NULL, "print the validation metrics as JSON"},
        CLI_READ_SPECS(rd),
    };
    const arg_cmd cmd = {"train",
                         "--data TRAIN --label COL --model linear|logistic|nn|gbdt "
                         "[--param k=v ...] [--device cuda|cpu|auto] [--valid VALID] "
                         "--out MODEL.lpm",
                         "Train a model and save it with its cleaning and feature pipeline.",
                         opts, sizeof opts / sizeof opts[0], 0, 0};
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, NULL, &npos);
    if (rc) {
        arg_list_free(&params);
        return rc == 1 ? 0 : rc;
    }
    if (!data || !label || !out) {
        fprintf(stderr, "lepton train: --data, --label and --out are required\n");
        arg_list_free(&params);
        return 2;
    }
    lp_err err;
    lp_err_clear(&err);
    lp_train_opts o = lp_train_opts_default();
    lp_params *p = NULL;
    lp_frame *tr = NULL, *va = NULL;
    lp_model *m = NULL;
    char *dcopy = NULL, **dlist = NULL, sha[65];
    const char **drops = NULL;
    size_t ndrop = 0, nd = 0;
    lp_status st = lp_model_kind_parse(model, &o.kind, &err);
    if (!st)
        st = cli_params(&params, &p, &err);
    if (!st && device)
        st = train_device(device, o.kind, p, &err);
    if (!st)
        st = train_adversarial(o.kind, adv, adv_method, pgd_steps, pgd_step, p, &err);
    if (st) {
        fprintf(stderr, "lepton train: %s\n", lp_err_text(&err));
        arg_list_free(&params);
        lp_params_free(p);
        return 2;
    }
    dlist = cli_split(drop, &dcopy, &ndrop);
    o.label = label;
    o.params = p;
    o.seed = (uint64_t)seed;
    o.data_name = data;
    uint64_t t0 = lp_time_ns();
    st = cli_read_labelled(data, &rd, label, &tr, &err);
    if (!st)
        st = cli_drop_list(tr, label, dlist, ndrop, keep_ids, &drops, &nd, &err);
    o.drop = drops;
    o.n_drop = nd;
    if (!st && valid)
        st = cli_read_labelled(valid, &rd, label, &va, &err);
    if (!st && lp_sha256_file(data, sha, NULL) == LP_OK)
        o.data_sha256 = sha;
    if (!st)
        st = lp_model_train(tr, va, &o, &m, &err);
    if (!st)
        st = cli_attach_drift(m, tr, &err);
    if (!st)
        st = lp_model_save(m, out, &err);
    if (!st && name)
        st = cli_register(m, registry, name, out, &err);
    if (st) {
        rc = cli_fail("train", &err);
    } else {
        cli_drop_note("train", drops, ndrop, nd);
        char *mj = cli_valid_metrics_json(m);
        if (json) {
            printf("%s\n", mj);
        } else {
            printf("trained %s (%s) on %zu rows in %.2f s; validation: %s\nsaved %s\n", model,
                   lp_task_name(lp_model_task(m)), lp_frame_nrows(tr), lp_time_since(t0), mj,
                   out);
        }
        free(mj);
    }
    lp_model_free(m);
    lp_frame_free(tr);
    lp_frame_free(va);
    lp_params_free(p);
    arg_list_free(&params);
    free(drops);
    free(dlist);
    free(dcopy);
    return rc;
}
