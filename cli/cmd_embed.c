/*
 * cmd_embed.c - `lepton embed --encoder ENC.lpm --data TEXTS.tsv [--text-col text]
 * -o EMBEDDINGS.csv`: sentence embeddings of a text column with an encoder file (lepton
 * encoder install writes one). The output has the --keep columns, then e0..e{D-1}, one row per
 * input row in the input order; a missing text embeds as the empty string. Texts cut at the
 * encoder's max_len are counted on stderr.
 */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "modelio.h"

int cmd_embed(int argc, char **argv)
{
    cli_read rd = {0};
    const char *enc_path = NULL, *data = NULL, *out = NULL, *col = "text", *keep = NULL;
    const char *device = "cpu", *precision = NULL;
    long batch = 64;
    const arg_spec opts[] = {
        {"encoder", ARG_STR, &enc_path, "ENC.lpm", "the encoder file"},
        {"data", ARG_STR, &data, "TEXTS", "rows with a text column (.csv, .tsv, .jsonl)"},
        {"text-col", ARG_STR, &col, "NAME", "the column to embed (default text)"},
        {"out", ARG_STR, &out, "EMBEDDINGS.csv", "output (.csv, .tsv or .jsonl)", 0, 0, 'o'},
        {"keep", ARG_STR, &keep, "A,B", "input columns to copy into the output"},
        {"batch", ARG_INT, &batch, "N", "sentences per forward pass (default 64)", 1, 4096},
        {"device", ARG_STR, &device, "NAME", "backend table: cpu, ref, cuda, auto (default cpu)"},
        {"precision", ARG_STR, &precision, "P",
         "fp32 or bf16: the layers' weight products in bfloat16 (needs Intel AMX); default "
         "LEPTON_ENCODER_PRECISION, else fp32"},
        CLI_READ_SPECS(rd),
    };
    const arg_cmd cmd = {"embed",
                         "--encoder ENC.lpm --data TEXTS -o EMBEDDINGS.csv",
                         "Embed a text column with a sentence encoder.",
                         opts,
                         sizeof opts / sizeof opts[0],
                         0,
                         0};
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, NULL, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (!enc_path || !data || !out) {
        fprintf(stderr, "lepton embed: --encoder, --data and -o are required\n");
        return 2;
    }
    lp_err err;
    lp_err_clear(&err);
    lp_encoder *e = NULL;
    lp_frame *f = NULL, *res = NULL;
    char **texts = NULL, *kcopy = NULL, **klist = NULL;
    float *emb = NULL;
    double *colv = NULL;
    size_t n = 0, j = 0, nkeep = 0, ntr = 0, D = 0;
    uint64_t t0 = lp_time_ns();
    lp_encoder_precision prec = LP_ENCODER_FP32;
    lp_status st = precision ? lp_encoder_precision_parse(precision, &prec, &err) : LP_OK;
    if (!st)
        st = lp_encoder_load(enc_path, device, &e, &err);
    if (!st && precision)
        st = lp_encoder_set_precision(e, prec, &err);
    if (!st)
        st = cli_read_frame(data, &rd, &f, &err);
    if (!st)
        st = lp_frame_require(f, col, data, &j, &err);
    if (!st) {
        n = lp_frame_nrows(f);
        D = lp_encoder_dim(e);
        texts = lp_calloc(n ? n : 1, sizeof *texts);
        emb = lp_mallocarray(n ? n * D : 1, sizeof *emb);
        colv = lp_mallocarray(n ? n : 1, sizeof *colv);
        if (!texts || !emb || !colv)
            st = lp_err_set(&err, LP_ENOMEM, "out of memory");
    }
    const lp_column *c = st ? NULL : lp_frame_col(f, j);
    for (size_t i = 0; !st && i < n; i++) {
        char buf[64];
        if (!(texts[i] = lp_strdup(lp_column_cell_str(c, i, buf, sizeof buf))))
            st = lp_err_set(&err, LP_ENOMEM, "out of memory");
    }
    uint64_t t1 = lp_time_ns();
    if (!st)
        st = lp_encoder_embed(e, (const char *const *)texts, n, (size_t)batch, emb, &ntr, &err);
    double secs = lp_time_since(t1);
    klist = cli_split(keep, &kcopy, &nkeep);
    if (!st)
        st = lp_frame_select(f, (const char *const *)klist, nkeep, &res, &err);
    for (size_t k = 0; !st && k < D; k++) {
        char name[32];
        snprintf(name, sizeof name, "e%zu", k);
        for (size_t i = 0; i < n; i++)
            colv[i] = emb[i * D + k];
        st = lp_frame_add_numeric(res, name, LP_COL_KIND_FLOAT, colv, NULL, n, &err);
    }
    if (!st)
        st = lp_frame_write(res, out, &err);
    if (st) {
        rc = cli_fail("embed", &err);
    } else {
        if (ntr)
            fprintf(stderr, "lepton embed: %zu texts were cut at %zu tokens\n", ntr,
                    lp_encoder_config_of(e)->max_len);
        printf("embedded %zu texts (%zu dims) in %.2f s (%.0f texts/s, total %.2f s); wrote %s\n",
               n, D, secs, secs > 0 ? (double)n / secs : 0.0, lp_time_since(t0), out);
    }
    for (size_t i = 0; texts && i < n; i++)
        free(texts[i]);
    free(texts);
    free(emb);
    free(colv);
    free(klist);
    free(kcopy);
    lp_frame_free(res);
    lp_frame_free(f);
    lp_encoder_free(e);
    return rc;
}
