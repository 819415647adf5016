/*
 * explainjson.h - the JSON shape of one explained row, shared by `lepton explain --json` and
 * `lepton serve`'s POST /v1/predict?explain=true:
 *   {"base_value": b, "raw_score": f, "contributions": {"feature": phi, ...}}
 * plus "class" (the explained class's label) for classification models, and "method".
 */
#ifndef LEPTON_CLI_EXPLAINJSON_H
#define LEPTON_CLI_EXPLAINJSON_H

#include <cjson/cJSON.h>

#include "lepton/lepton.h"

/* A new object for row i of e; top = 0 lists every feature in feature order, else the top
 * features by |phi| (largest first). NULL on allocation failure. */
cJSON *explain_row_json(const lp_model *m, const lp_explanation *e, size_t i, size_t top);

/* The ?explain= query value: absent, "false" or "0" -> false; "true" or "1" -> true; anything
 * else LP_EINVAL naming it. */
lp_status explain_query(const char *v, bool *out, lp_err *err);

/* The request path's explanation of rows: the family's exact method (linear, TreeSHAP,
 * integrated gradients from the zero baseline = the training mean of scaled columns) on the
 * calling thread, no background sample. */
lp_status explain_serve_rows(const lp_model *m, const lp_frame *rows, lp_explanation *out,
                             lp_err *err);

#endif
