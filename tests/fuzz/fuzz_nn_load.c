/*
 * fuzz_nn_load.c - libFuzzer target for lp_nn_load (model/nn.h). Each input is tried twice: as
 * is (the CRC check refuses nearly all of it), and with a valid CRC-32 appended, so the
 * structural checks behind the CRC (header ranges, the architecture, the parameter count,
 * finite parameters) are what gets fuzzed. A blob that loads predicts one row through both
 * paths, which must not crash either.
 */
#include "lepton/lepton.h"
#include "../../libcore/src/model/nn.h"

#include <stdlib.h>
#include <string.h>

static void try_blob(const uint8_t *data, size_t len)
{
    lp_reader r;
    lp_reader_init(&r, data, len, "fuzz.nn");
    lp_nn *m = NULL;
    lp_err err;
    if (lp_nn_load(&r, "ref", &m, &err) != LP_OK)
        return;
    size_t d = lp_nn_n_inputs(m), k = lp_nn_n_outputs(m);
    float *x = calloc(d, sizeof *x), *out = calloc(k, sizeof *out);
    if (x && out && d * lp_nn_n_params(m) < (1u << 22)) {
        lp_nn_predict_row(m, x, out, NULL, &err);
        lp_nn_predict(m, x, 1, out, &err);
    }
    free(x);
    free(out);
    lp_nn_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    try_blob(data, len);
    uint8_t *fixed = malloc(len + 4);
    if (!fixed)
        return 0;
    memcpy(fixed, data, len);
    uint32_t crc = lp_crc32(0, data, len);
    for (int i = 0; i < 4; i++)
        fixed[len + i] = (uint8_t)(crc >> (8 * i));
    try_blob(fixed, len + 4);
    free(fixed);
    return 0;
}
