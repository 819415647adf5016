/*
 * explainjson.c - one explained row as a JSON object (explainjson.h).
 */
#include "explainjson.h"

#include <stdlib.h>
#include <string.h>

cJSON *explain_row_json(const lp_model *m, const lp_explanation *e, size_t i, size_t top)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "method", lp_explain_method_name(e->method));
    if (lp_model_task(m) != LP_TASK_REGRESSION) {
        /* binary: the log-odds of the second class; multiclass: the explained class */
        size_t k = lp_model_task(m) == LP_TASK_BINARY ? 1 : (size_t)e->output[i];
        const char *c = lp_model_class(m, k);
        cJSON_AddStringToObject(o, "class", c ? c : "");
    }
    cJSON_AddNumberToObject(o, "base_value", e->base[i]);
    cJSON_AddNumberToObject(o, "raw_score", e->raw[i]);
    cJSON *c = cJSON_AddObjectToObject(o, "contributions");
    if (!top || top >= e->p) {
        for (size_t j = 0; j < e->p; j++)
            cJSON_AddNumberToObject(c, e->names[j], e->phi[i * e->p + j]);
        return o;
    }
    size_t *idx = malloc(top * sizeof *idx);
    if (!idx) {
        cJSON_Delete(o);
        return NULL;
    }
    lp_explanation_top(e, i, top, idx);
    for (size_t t = 0; t < top; t++)
        cJSON_AddNumberToObject(c, e->names[idx[t]], e->phi[i * e->p + idx[t]]);
    free(idx);
    return o;
}

lp_status explain_query(const char *v, bool *out, lp_err *err)
{
    *out = false;
    if (!v || !strcmp(v, "false") || !strcmp(v, "0"))
        return LP_OK;
    if (!strcmp(v, "true") || !strcmp(v, "1")) {
        *out = true;
        return LP_OK;
    }
    return lp_err_set(err, LP_EINVAL, "query parameter 'explain': expected true or false, got "
                      "'%.64s'", v);
}

lp_status explain_serve_rows(const lp_model *m, const lp_frame *rows, lp_explanation *out,
                             lp_err *err)
{
    lp_explain_opts o = lp_explain_opts_default();
    o.threads = 1;
    return lp_explain_rows(m, rows, NULL, &o, out, err);
}
