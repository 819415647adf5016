/*
 * fuzz_cleaner_load.c - libFuzzer target for lp_cleaner_load. Each input is tried twice: as
 * is (the CRC check refuses nearly all of it), and with a valid CRC-32 appended, so the
 * structural checks behind the CRC (counts, indices, enums, numbers) are what gets fuzzed.
 * A blob that loads is applied to a small frame, which must not crash either.
 */
#include "lepton/lepton.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void try_blob(const uint8_t *data, size_t len)
{
    lp_cleaner *c = NULL;
    lp_err err;
    if (lp_cleaner_load(data, len, &c, &err) != LP_OK)
        return;
    lp_frame *f = lp_frame_new();
    double v[3] = {1, NAN, 3};
    /* columns named as the seed's fitted ones, so a loaded cleaner gets applied */
    lp_frame_add_numeric(f, "a", LP_COL_KIND_FLOAT, v, NULL, 3, NULL);
    lp_frame_add_numeric(f, "b", LP_COL_KIND_FLOAT, v, NULL, 3, NULL);
    lp_frame *g = NULL;
    lp_clean_report *r = NULL;
    if (lp_cleaner_apply(c, f, &g, &r, &err) == LP_OK) {
        char *js = NULL;
        if (lp_cleaner_to_json(c, r, &js, NULL) == LP_OK)
            free(js);
    }
    lp_clean_report_free(r);
    lp_frame_free(g);
    lp_frame_free(f);
    lp_cleaner_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    try_blob(data, len);
    uint8_t *copy = malloc(len + 4);
    if (!copy)
        return 0;
    memcpy(copy, data, len);
    uint32_t crc = lp_crc32(0, data, len);
    for (int i = 0; i < 4; i++)
        copy[len + (size_t)i] = (uint8_t)(crc >> (8 * i));
    try_blob(copy, len + 4);
    free(copy);
    return 0;
}
