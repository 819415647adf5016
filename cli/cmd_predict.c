/*
 * cmd_predict.c - `lepton predict --model MODEL.lpm --data NEW -o PREDICTIONS.csv`: predictions
 * for raw rows. Classification writes `prediction` (the class label) and one `proba_<class>`
 * column per class; regression writes `prediction`. --keep copies input columns (e.g. an id).
 */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "modelio.h"

int cmd_predict(int argc, char **argv)
{
    cli_read rd = {0};
    const char *model = NULL, *data = NULL, *out = NULL, *keep = NULL;
    const arg_spec opts[] = {
        {"model", ARG_STR, &model, "MODEL.lpm", "the model file"},
        {"data", ARG_STR, &data, "NEW", "rows to predict"},
        {"out", ARG_STR, &out, "PREDICTIONS.csv", "output (.csv, .tsv or .jsonl)", 0, 0, 'o'},
        {"keep", ARG_STR, &keep, "A,B", "input columns to copy into the output"},
        CLI_READ_SPECS(rd),
    };
    const arg_cmd cmd = {"predict", "--model MODEL.lpm --data NEW -o PREDICTIONS.csv",
                         "Predict raw rows with a saved model.", opts,
                         sizeof opts / sizeof opts[0], 0, 0};
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, NULL, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (!model || !data || !out) {
        fprintf(stderr, "lepton predict: --model, --data and -o are required\n");
        return 2;
    }
    lp_err err;
    lp_err_clear(&err);
    lp_model *m = NULL;
    lp_frame *f = NULL, *res = NULL;
    lp_predictions p = {0};
    char *kcopy = NULL, **klist = NULL;
    size_t nkeep = 0;
    lp_status st = lp_model_load(model, &m, &err);
    if (!st) /* a model trained on a file without a header line has inputs c1, c2, ... */
        st = cli_read_named(data, &rd, lp_model_n_inputs(m) ? lp_model_input_name(m, 0) : NULL,
                            &f, &err);
    if (!st)
        st = lp_model_predict(m, f, &p, &err);
    klist = cli_split(keep, &kcopy, &nkeep);
    if (!st)
        st = lp_frame_select(f, (const char *const *)klist, nkeep, &res, &err);
    if (!st) {
        if (p.task == LP_TASK_REGRESSION) {
            st = lp_frame_add_numeric(res, "prediction", LP_COL_KIND_FLOAT, p.out, NULL, p.n,
                                      &err);
        } else {
            const char **labels = lp_mallocarray(p.n, sizeof(char *));
            double *col = lp_mallocarray(p.n, sizeof(double));
            if (!labels || !col)
                st = lp_err_set(&err, LP_ENOMEM, "out of memory");
            for (size_t i = 0; !st && i < p.n; i++)
                labels[i] = lp_model_class(m, (size_t)p.cls[i]);
            if (!st)
                st = lp_frame_add_categorical(res, "prediction", labels, p.n, &err);
            for (size_t k = 0; !st && k < p.k; k++) {
                char name[256];
                snprintf(name, sizeof name, "proba_%s", lp_model_class(m, k));
                for (size_t i = 0; i < p.n; i++)
                    col[i] = p.out[i * p.k + k];
                st = lp_frame_add_numeric(res, name, LP_COL_KIND_FLOAT, col, NULL, p.n, &err);
            }
            free(labels);
            free(col);
        }
    }
    if (!st)
        st = lp_frame_write(res, out, &err);
    if (st)
        rc = cli_fail("predict", &err);
    else
        printf("predicted %zu rows; wrote %s\n", p.n, out);
    lp_predictions_clear(&p);
    lp_frame_free(res);
    lp_frame_free(f);
    lp_model_free(m);
    free(klist);
    free(kcopy);
    return rc;
}
