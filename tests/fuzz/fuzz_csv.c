/*
 * fuzz_csv.c - libFuzzer target over lp_frame_parse_csv: any bytes must give a frame or a
 * one-line error, never a crash, leak or sanitizer report. The first byte picks options
 * (delimiter, header, a type override, a small max_field) so those paths are fuzzed too;
 * a parsed frame is written back and re-parsed, which must succeed.
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
        static const char delims[4] = {0, ',', '\t', ';'};
        o.delim = delims[k & 3];
        o.header = !(k & 4);
        if (k & 8)
            o.types = "a:int,b:float";
        if (k & 16)
            o.max_field = 8;
        if (k & 32)
            o.missing = "x,,-";
        data++;
        size--;
    }
    lp_frame *f = NULL;
    lp_err err;
    lp_status st = lp_frame_parse_csv((const char *)data, size, "fuzz.csv", &o, &f, &err);
    if (st == LP_OK) {
        if (strchr(err.msg, '\n'))
            abort();
        lp_buf b;
        lp_buf_init(&b);
        if (lp_frame_ncols(f) && lp_frame_format_csv(f, ',', &b, NULL) == LP_OK) {
            lp_frame *g = NULL;
            lp_csv_opts again = lp_csv_opts_default();
            again.delim = ','; /* what was written; sniffing could pick another */
            if (lp_frame_parse_csv((const char *)b.data, b.len, "again.csv", &again, &g, &err) !=
                    LP_OK ||
                lp_frame_nrows(g) != lp_frame_nrows(f))
                abort();
            lp_frame_free(g);
        }
        lp_buf_free(&b);
    } else if (f || strchr(err.msg, '\n')) {
        abort();
    }
    lp_frame_free(f);
    return 0;
}
