/*
 * fuzz_serve_json.c - libFuzzer target for the request-body path of the serve layer: the
 * UTF-8 / control byte / number grammar / depth pre-scan, cJSON parsing, the non-finite check
 * and a field-spec check of the result. Must never crash, leak or read out of bounds; on
 * success the tree must satisfy what the checks promise (finite numbers).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "lepton/serve.h"

static const lp_field_spec spec[] = {
    {.name = "text", .type = LP_FIELD_TYPE_STRING, .required = true, .max_len = 64},
    {.name = "k", .type = LP_FIELD_TYPE_INTEGER, .ranged = true, .min = 1, .max = 10},
    {.name = "w", .type = LP_FIELD_TYPE_NUMBER},
    {.name = "tags", .type = LP_FIELD_TYPE_ARRAY, .max_len = 4},
    {.name = NULL},
};

static void check_finite(const cJSON *j)
{
    for (; j; j = j->next) {
        if (cJSON_IsNumber(j) && !isfinite(j->valuedouble)) abort();
        check_finite(j->child);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cJSON *j = NULL;
    lp_err err;
    if (lp_json_parse_body((const char *)data, size, 64, "body", &j, &err) == LP_OK) {
        if (!j) abort();
        check_finite(j);
        lp_fields_check(j, spec, size & 1, &err);
        cJSON_Delete(j);
    } else if (j) {
        abort();
    }
    return 0;
}
