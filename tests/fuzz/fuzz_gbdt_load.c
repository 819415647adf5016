/*
 * fuzz_gbdt_load.c - libFuzzer target for the gbdt model reader: any bytes either load into a
 * model that predicts (finite base, terminating tree walks) or are rejected with a message;
 * never a crash, hang or leak. Seeds: tests/fuzz/seeds/gbdt_load/ (small saved models).
 */
#include "../../libcore/src/model/gbdt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lp_reader r;
    lp_reader_init(&r, data, size, "fuzz input");
    lp_gbdt *m = NULL;
    lp_err err;
    if (lp_gbdt_load(&r, &m, &err) != LP_OK) {
        if (m || err.msg[0] == '\0')
            abort(); /* a failed load must leave no model and say why */
        return 0;
    }
    size_t d = lp_gbdt_n_features(m), k = lp_gbdt_n_outputs(m);
    if (d <= 4096) {
        float *x = calloc(d, sizeof *x), *out = calloc(k, sizeof *out);
        if (x && out) {
            lp_gbdt_predict_row_raw(m, x, out);
            for (size_t j = 0; j < d; j++)
                x[j] = NAN;
            lp_gbdt_predict(m, x, 1, out, NULL);
        }
        free(x);
        free(out);
    }
    lp_buf b;
    lp_buf_init(&b);
    if (lp_gbdt_save(m, &b, NULL) == LP_OK && (b.len != r.pos || memcmp(b.data, data, b.len)))
        abort(); /* what loads must save back to the same bytes */
    lp_buf_free(&b);
    lp_gbdt_free(m);
    return 0;
}
