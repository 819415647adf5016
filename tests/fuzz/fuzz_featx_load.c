/*
 * fuzz_featx_load.c - libFuzzer target for the two feature deserialisers: the first byte picks
 * lp_textvec_load (no CRC, so the fuzzer reaches every field check) or lp_pipeline_load; a
 * loaded object is then used on a small input to prove it is consistent. Any crash, leak or
 * sanitizer report is a bug.
 */
#include "lepton/lepton.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *docs[] = {"refund my card", "Ωμέγα café 東京"};
    lp_err err;
    if (data[0] & 1) {
        lp_reader r;
        lp_textvec *v = NULL;
        lp_reader_init(&r, data + 1, size - 1, "fuzz");
        if (lp_textvec_load(&r, &v, &err) == LP_OK) {
            lp_csr *x = NULL;
            /* a hash vectorizer of 2^31 features would be a legal but huge allocation */
            if (lp_textvec_n_features(v) < (1u << 24) &&
                lp_textvec_transform(v, docs, 2, &x, &err) == LP_OK)
                lp_csr_free(x);
            lp_textvec_free(v);
        }
    } else {
        lp_pipeline *p = NULL;
        if (lp_pipeline_load(data + 1, size - 1, &p, &err) == LP_OK)
            lp_pipeline_free(p);
    }
    return 0;
}
