/*
 * bench_encoder.h - shared by the encoder benchmarks: open an encoder from an .lpm file, or
 * from an unpacked sentence-transformers folder (config.json, model.safetensors, vocab.txt),
 * converted first into FOLDER/encoder.lpm when that file is not there yet. The device runs use
 * the folder form: bench/gpu/minilm_random.py writes a MiniLM-shaped BERT with random weights
 * there, since the real weights (90 MB) do not fit what one device call carries.
 */
#ifndef LEPTON_BENCH_ENCODER_H
#define LEPTON_BENCH_ENCODER_H

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lepton/lepton.h"

static lp_status bench_encoder_open(const char *path, const char *backend, lp_encoder **e,
                                    lp_err *err)
{
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        char lpm[4096];
        snprintf(lpm, sizeof lpm, "%s/encoder.lpm", path);
        if (access(lpm, R_OK) != 0) {
            lp_status s = lp_encoder_convert(path, lpm, path, err);
            if (s)
                return s;
        }
        return lp_encoder_load(lpm, backend, e, err);
    }
    return lp_encoder_load(path, backend, e, err);
}

#endif
