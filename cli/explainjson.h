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

#endif
