/*
 * fuzz_image.c - libFuzzer target for the image readers (image.h): each input goes to
 * lp_image_decode (PNG or JPEG by magic, a 4-megapixel limit so the fuzzer cannot ask for
 * huge buffers) in keep / gray / RGB modes, and to the IDX images and labels parsers. A decoded
 * image is resized, which must not crash either. Seeds (tests/fuzz/seeds/image): a tiny gray
 * PNG, a gray and an RGB JPEG, an IDX images file and an IDX labels file, written by
 * tests/unit/test_image.c (LEPTON_WRITE_FUZZ_SEEDS=<dir>).
 */
#include "lepton/lepton.h"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    lp_err err;
    for (int ch = 0; ch <= 3; ch += (ch == 1 ? 2 : 1)) {
        lp_image_opts o = lp_image_opts_default();
        o.channels = ch;
        o.max_pixels = 4u << 20;
        lp_image img;
        if (lp_image_decode(data, len, "fuzz", &o, &img, &err) == LP_OK) {
            lp_image rs;
            if (lp_image_resize(&img, 7, 5, &rs, &err) == LP_OK)
                lp_image_clear(&rs);
            lp_image_clear(&img);
        }
    }
    lp_idx x;
    if (lp_idx_parse_images(data, len, "fuzz", &x, &err) == LP_OK)
        lp_idx_clear(&x);
    uint8_t *labels;
    size_t n;
    if (lp_idx_parse_labels(data, len, "fuzz", &labels, &n, &err) == LP_OK)
        free(labels);
    return 0;
}
