/*
 * fuzz_jsonl.c - libFuzzer target over lp_frame_parse_jsonl: any bytes must give a frame or a
 * one-line error, never a crash, leak or sanitizer report. The first byte picks options (a type
 * override, other missing tokens, max_rows).
 */
#include <stdlib.h>
#include <string.h>

#include "lepton/lepton.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lp_csv_opts o = lp_csv_opts_default();
    if (size) {
        uint8_t k = data[0];
        if (k & 1)
            o.types = "a:int,b:datetime";
        if (k & 2)
            o.missing = "x,";
        if (k & 4)
            o.max_rows = 3;
        data++;
        size--;
    }
    lp_frame *f = NULL;
    lp_err err;
    lp_status st = lp_frame_parse_jsonl((const char *)data, size, "fuzz.jsonl", &o, &f, &err);
    if ((st != LP_OK && f) || (st != LP_OK && strchr(err.msg, '\n')))
        abort();
    lp_frame_free(f);
    return 0;
}
