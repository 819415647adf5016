/*
 * cmd_featurize.c - `lepton featurize FILE -o OUT`: fit the default feature pipeline (scaling,
 * one-hot or hashing of categories, TF-IDF of text, date-time features) and write the feature
 * matrix with named columns. --save keeps the fitted pipeline; --apply re-uses a saved one, so
 * new rows are featurized exactly as the training rows were.
 */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "io.h"

#define CSV_MAX_COLS 20000 /* wider than this is written as svmlight (sparse) */

static lp_status load_pipeline(const void *data, size_t len, void *out, lp_err *err)
{
    return lp_pipeline_load(data, len, out, err);
}

static lp_status write_features(const lp_pipeline *p, const lp_csr *x, const lp_column *label,
                                const char *path, bool svm, lp_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return lp_err_set(err, LP_EIO, "%s: cannot create", path);
    char buf[64];
    if (!svm) {
        for (size_t j = 0; j < x->cols; j++) {
            const char *name = lp_pipeline_feature_name(p, j);
            bool quote = strpbrk(name, ",\"\n\r") != NULL;
            if (j)
                fputc(',', f);
            if (quote) {
                fputc('"', f);
                for (const char *c = name; *c; c++) {
                    if (*c == '"')
                        fputc('"', f);
                    fputc(*c, f);
                }
                fputc('"', f);
            } else {
                fputs(name, f);
            }
        }
        if (label)
            fprintf(f, ",%s", label->name);
        fputc('\n', f);
    }
    for (size_t i = 0; i < x->rows; i++) {
        if (svm) {
            fputs(label ? lp_column_cell_str(label, i, buf, sizeof buf) : "0", f);
            for (size_t e = x->indptr[i]; e < x->indptr[i + 1]; e++)
                fprintf(f, " %u:%.9g", x->indices[e] + 1, (double)x->values[e]);
        } else {
            size_t e = x->indptr[i];
            for (size_t j = 0; j < x->cols; j++) {
                if (j)
                    fputc(',', f);
                if (e < x->indptr[i + 1] && x->indices[e] == j) {
                    if (x->values[e] == x->values[e])
                        fprintf(f, "%.9g", (double)x->values[e]);
                    e++;
                } else {
                    fputc('0', f);
                }
            }
            if (label)
                fprintf(f, ",%s", lp_column_cell_str(label, i, buf, sizeof buf));
        }
        fputc('\n', f);
    }
    if (fclose(f) != 0)
        return lp_err_set(err, LP_EIO, "%s: write failed", path);
    return LP_OK;
}

int cmd_featurize(int argc, char **argv)
{
    cli_read rd = {0};
    const char *out = NULL, *label = NULL, *drop = NULL, *save = NULL, *apply = NULL,
               *format = "auto";
    const arg_spec opts[] = {
        {"out", ARG_STR, &out, "OUT", "write the features here", 0, 0, 'o'},
        {"label", ARG_STR, &label, "COL", "keep this column out of the features, copy it last"},
        {"drop", ARG_STR, &drop, "A,B", "columns to leave out (identifiers, leaks)"},
        {"save", ARG_STR, &save, "FILE", "save the fitted pipeline (.lpm)"},
        {"apply", ARG_STR, &apply, "FILE", "apply a saved pipeline instead of fitting one"},
        {"format", ARG_STR, &format, "F", "csv|svmlight|auto (auto: csv up to 20000 columns)"},
        CLI_READ_SPECS(rd),
    };
    const arg_cmd cmd = {"featurize", "FILE -o OUT [--label COL] [--drop A,B] [--save P.lpm]",
                         "Turn raw columns into a numeric feature matrix with the default "
                         "pipeline (or a saved one).",
                         opts, sizeof opts / sizeof opts[0], 1, 1};
    const char *pos[1];
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, pos, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (!out) {
        fprintf(stderr, "lepton featurize: -o OUT is required\n");
        return 2;
    }
    if (strcmp(format, "csv") && strcmp(format, "svmlight") && strcmp(format, "auto")) {
        fprintf(stderr, "lepton featurize: --format '%s': expected csv, svmlight or auto\n",
                format);
        return 2;
    }
    lp_err err;
    lp_err_clear(&err);
    lp_frame *f = NULL;
    lp_pipeline *p = NULL;
    lp_csr *x = NULL;
    char *dcopy = NULL;
    size_t ndrop = 0;
    char **dlist = NULL;
    const lp_column *lab = NULL;
    lp_status st = cli_read_frame(pos[0], &rd, &f, &err);
    if (!st && label) {
        size_t j;
        if (!(st = lp_frame_require(f, label, pos[0], &j, &err)))
            lab = lp_frame_col(f, j);
    }
    if (!st && !apply) {
        dlist = cli_split(drop, &dcopy, &ndrop);
        if (!dlist)
            st = lp_err_set(&err, LP_ENOMEM, "out of memory");
        const char *excl[256];
        size_t ne = 0;
        if (label)
            excl[ne++] = label;
        for (size_t k = 0; k < ndrop && ne < 256; k++)
            excl[ne++] = dlist[k];
        lp_pipeline_default_opts po = lp_pipeline_default_opts_default();
        po.exclude = excl;
        po.n_exclude = ne;
        if (!st)
            st = lp_pipeline_default(f, &po, &p, &err);
        if (!st)
            st = lp_pipeline_fit(p, f, &err);
    } else if (!st) {
        st = cli_load_blob("pipeline", apply, load_pipeline, &p, &err);
    }
    if (!st)
        st = lp_pipeline_transform(p, f, &x, &err);
    bool svm = !strcmp(format, "svmlight") || (!strcmp(format, "auto") && x &&
                                               x->cols > CSV_MAX_COLS);
    if (!st && !strcmp(format, "csv") && x->cols > CSV_MAX_COLS)
        st = lp_err_set(&err, LP_EINVAL,
                        "%zu feature columns are too many for CSV; use --format svmlight", x->cols);
    if (!st)
        st = write_features(p, x, lab, out, svm, &err);
    if (!st && save) {
        lp_buf b;
        lp_buf_init(&b);
        st = lp_pipeline_save(p, &b, &err);
        if (!st)
            st = cli_save_blob("pipeline", &b, save, &err);
        lp_buf_free(&b);
    }
    if (st)
        rc = cli_fail("featurize", &err);
    else
        printf("featurize: %zu rows -> %zu features (%zu non-zero values) in %zu steps; wrote "
               "%s%s\n",
               x->rows, x->cols, x->nnz, lp_pipeline_n_steps(p), out, svm ? " (svmlight)" : "");
    lp_csr_free(x);
    lp_pipeline_free(p);
    lp_frame_free(f);
    free(dlist);
    free(dcopy);
    return rc;
}
