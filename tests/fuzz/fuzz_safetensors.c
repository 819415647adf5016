/*
 * fuzz_safetensors.c - libFuzzer target for lp_safetensors_parse (lepton/safetensors.h). A blob
 * that parses has every float tensor converted to F32, which reads each tensor's whole byte
 * range, so an offset check that let a range escape the file shows up under ASan.
 */
#include "lepton/lepton.h"
#include "lepton/safetensors.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    lp_safetensors *st = NULL;
    lp_err err;
    if (lp_safetensors_parse(data, len, "fuzz.safetensors", &st, &err) != LP_OK)
        return 0;
    for (size_t i = 0; i < lp_safetensors_count(st); i++) {
        const lp_st_tensor *t = lp_safetensors_at(st, i);
        float *out = malloc(t->numel ? t->numel * sizeof *out : 1);
        if (out)
            (void)lp_safetensors_to_f32(t, out, &err);
        free(out);
    }
    lp_safetensors_free(st);
    return 0;
}
