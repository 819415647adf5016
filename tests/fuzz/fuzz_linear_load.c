/*
 * fuzz_linear_load.c - libFuzzer target for lp_linear_load. Each input is tried twice: as is
 * (the CRC check refuses nearly all of it), and with a valid CRC-32 appended, so the
 * structural checks behind the CRC (magic, version, kind, shapes, finite parameters) are what
 * gets fuzzed. A model that loads predicts one row, saves and loads again, none of which may
 * crash, and the second load must succeed.
 */
#include "lepton/lepton.h"

#include "../../libcore/src/model/linear.h"

#include <stdlib.h>
#include <string.h>

static void try_blob(const uint8_t *data, size_t len)
{
    lp_reader r;
    lp_reader_init(&r, data, len, "fuzz blob");
    lp_linear *m = NULL;
    if (lp_linear_load(&r, &m, NULL) != LP_OK)
        return;
    size_t d = lp_linear_n_features(m), k = lp_linear_n_outputs(m);
    if (d <= 4096 && k <= 4096) {
        float *x = calloc(d, sizeof(float));
        double *out = calloc(k + 2, sizeof(double));
        if (x && out) {
            x[0] = 1.0f;
            lp_linear_proba_row(m, x, out);
        }
        free(x);
        free(out);
    }
    lp_buf b;
    lp_buf_init(&b);
    if (lp_linear_save(m, &b, NULL) == LP_OK) {
        lp_reader r2;
        lp_reader_init(&r2, b.data, b.len, "fuzz re-save");
        lp_linear *m2 = NULL;
        if (lp_linear_load(&r2, &m2, NULL) != LP_OK)
            abort(); /* a model that loaded must round-trip */
        lp_linear_free(m2);
    }
    lp_buf_free(&b);
    lp_linear_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_blob(data, size);
    uint8_t *copy = malloc(size + 4);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    uint32_t crc = lp_crc32(0, data, size);
    for (int i = 0; i < 4; i++)
        copy[size + i] = (uint8_t)(crc >> (8 * i));
    try_blob(copy, size + 4);
    free(copy);
    return 0;
}
