/*
 * modelio.c - shared helpers of the model sub-commands (see modelio.h).
 */
#include "modelio.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

lp_status cli_params(const arg_list *l, lp_params **out, lp_err *err)
{
    lp_params *p = lp_params_new();
    if (!p)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    for (size_t i = 0; i < l->n; i++) {
        lp_status st = lp_params_parse(p, l->v[i], err);
        if (st) {
            lp_params_free(p);
            return lp_err_prefix(err, "--param");
        }
    }
    *out = p;
    return LP_OK;
}

lp_status cli_attach_drift(lp_model *m, const lp_frame *train, lp_err *err)
{
    size_t n = lp_model_n_inputs(m);
    const char **names = calloc(n ? n : 1, sizeof(char *));
    if (!names)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    for (size_t j = 0; j < n; j++)
        names[j] = lp_model_input_name(m, j);
    lp_frame *in = NULL;
    lp_drift *d = NULL;
    lp_buf b;
    lp_buf_init(&b);
    lp_status st = lp_frame_select(train, names, n, &in, err);
    if (!st)
        st = lp_drift_fit(in, &d, err);
    size_t nv = 0;
    const double *vs = lp_model_valid_scores(m, &nv);
    if (!st && nv)
        st = lp_drift_add_numeric(d, "_score", vs, nv, err);
    if (!st)
        st = lp_drift_save(d, &b, err);
    if (!st)
        st = lp_model_set_extra(m, "drift", b.data, b.len, err);
    lp_buf_free(&b);
    lp_drift_free(d);
    lp_frame_free(in);
    free(names);
    return st;
}

char *cli_valid_metrics_json(const lp_model *m)
{
    cJSON *h = cJSON_Parse(lp_model_header(m));
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(h, "metrics");
    const cJSON *v = mt ? cJSON_GetObjectItemCaseSensitive(mt, "valid") : NULL;
    char *s = v ? cJSON_PrintUnformatted(v) : lp_strdup("{}");
    cJSON_Delete(h);
    return s;
}

lp_status cli_register(const lp_model *m, const char *db, const char *name, const char *path,
                       lp_err *err)
{
    cJSON *h = cJSON_Parse(lp_model_header(m));
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(h, "params");
    char *pj = params ? cJSON_PrintUnformatted(params) : NULL;
    cJSON_Delete(h);
    char *mj = cli_valid_metrics_json(m);
    lp_registry *r = NULL;
    int64_t version = 0;
    lp_status st = lp_registry_open(db, &r, err);
    if (!st)
        st = lp_registry_add(r, name, lp_model_kind_name(lp_model_get_kind(m)), path, mj, pj,
                             &version, err);
    lp_registry_close(r);
    free(pj);
    free(mj);
    if (!st)
        printf("registered %s version %lld in %s\n", name, (long long)version, db);
    return st;
}

void cli_print_eval(FILE *out, const char *prefix, const lp_eval *e)
{
    fprintf(out, "%s n %zu", prefix, e->n);
    if (e->task == LP_TASK_REGRESSION)
        fprintf(out, "  rmse %.6g  mae %.6g  r2 %.4f\n", e->rmse, e->mae, e->r2);
    else
        fprintf(out, "  accuracy %.4f  macro_f1 %.4f  auroc %.4f  auprc %.4f  logloss %.4f\n",
                e->accuracy, e->macro_f1, e->auroc, e->auprc, e->logloss);
}
