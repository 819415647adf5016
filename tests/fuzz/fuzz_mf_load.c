/*
 * fuzz_mf_load.c - libFuzzer target for lp_mf_parse behind a valid container. The input is a
 * JSON header line, then records [u8 section][u16 length, little-endian][bytes] naming one of
 * the mf sections; they are packed with lp_lpm_writer (so the CRCs pass) and the mf structural
 * checks (header numbers, section sizes, CSR offsets and indices, finite values, id lists) are
 * what gets fuzzed. A model that loads answers a recommendation and a similar-items query,
 * neither of which may crash.
 */
#include "lepton/lepton.h"

#include <stdlib.h>
#include <string.h>

static const char *const SECTIONS[] = {"mf/user_factors", "mf/item_factors", "mf/pop",
                                       "mf/hist_ptr",     "mf/hist_items",   "mf/hist_w",
                                       "mf/knn_ptr",      "mf/knn_items",    "mf/knn_sims",
                                       "mf/user_ids",     "mf/item_ids"};
static const lp_lpm_dtype DTYPES[] = {LP_LPM_DTYPE_F32, LP_LPM_DTYPE_F32, LP_LPM_DTYPE_F32,
                                      LP_LPM_DTYPE_I32, LP_LPM_DTYPE_I32, LP_LPM_DTYPE_F32,
                                      LP_LPM_DTYPE_I32, LP_LPM_DTYPE_I32, LP_LPM_DTYPE_F32,
                                      LP_LPM_DTYPE_BYTES, LP_LPM_DTYPE_BYTES};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    const uint8_t *nl = memchr(data, '\n', len);
    if (!nl) return 0;
    /* copied by hand: the input has no NUL, which strict_string_checks makes strndup read for */
    size_t hlen = (size_t)(nl - data);
    char *header = malloc(hlen + 1);
    lp_lpm_writer *w = lp_lpm_writer_new();
    if (!header || !w) goto out;
    memcpy(header, data, hlen);
    header[hlen] = 0;
    size_t pos = (size_t)(nl - data) + 1;
    while (pos + 3 <= len) {
        size_t s = data[pos] % (sizeof SECTIONS / sizeof *SECTIONS);
        size_t n = data[pos + 1] | (size_t)data[pos + 2] << 8;
        pos += 3;
        if (n > len - pos) n = len - pos;
        lp_lpm_writer_add(w, SECTIONS[s], DTYPES[s], data + pos, n, NULL); /* repeats refused */
        pos += n;
    }
    uint8_t *bytes;
    size_t blen;
    if (lp_lpm_writer_finish(w, header, &bytes, &blen, NULL) == LP_OK) {
        lp_mf *m = NULL;
        if (lp_mf_parse(bytes, blen, "fuzz.lpm", &m, NULL) == LP_OK) {
            lp_mf_rec recs[5];
            size_t got;
            const int32_t *hi;
            const float *hw;
            size_t nh = lp_mf_user_history(m, 0, &hi, &hw);
            lp_mf_query q = {.user_vec = lp_mf_user_factors(m, 0), .history = hi,
                             .history_w = hw, .n_history = nh, .exclude_history = true, .k = 5,
                             .n_because = 2};
            lp_mf_recommend(m, &q, recs, &got, NULL);
            q.user_vec = NULL;
            lp_mf_recommend(m, &q, recs, &got, NULL);
            lp_mf_similar(m, 0, 5, NULL, recs, &got, NULL);
            lp_mf_free(m);
        }
        free(bytes);
    }
out:
    free(header);
    lp_lpm_writer_free(w);
    return 0;
}
