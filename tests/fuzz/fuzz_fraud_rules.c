/*
 * fuzz_fraud_rules.c - libFuzzer target for the fraud rule language: any bytes compile to a
 * rule or fail with LP_EPARSE / LP_EINVAL and a message, never a crash; a compiled rule
 * evaluates to a finite value.
 */
#include "fraud.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"amount", "hour", "weekday", "customer_id:count_1h",
                                        "customer_id:mean_30d", "pair:count"};
    char *s = malloc(size + 1);
    if (!s)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    fraud_rule *r = NULL;
    lp_err err;
    if (fraud_rule_compile(s, names, 6, &r, &err) == LP_OK) {
        const float x[6] = {12.5f, 3, 1, 4, 0, 0};
        double v = fraud_rule_eval(r, x);
        if (!isfinite(v))
            abort();
        fraud_rule_free(r);
    } else if (!err.msg[0]) {
        abort();
    }
    free(s);
    return 0;
}
