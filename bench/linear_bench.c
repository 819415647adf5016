/*
 * linear_bench.c - Lepton's side of the logistic-regression benchmark on CLINC150 TF-IDF.
 *
 *   linear_bench <out dir> <C> <tol> <max_iter> <threads>
 *
 * Reads <out>/clinc_{train,test}.csr written by bench/linear_sklearn.py (format in that
 * script), fits multinomial L2 logistic regression (L-BFGS; the same objective and gradient
 * tolerance as scikit-learn's lbfgs) on the training CSR, times the fit and prints one line
 * "lepton: fit S s (T s CPU), test accuracy A, N iterations". Driven by bench/linear_bench.sh.
 * Not a test: it exits non-zero only when the files are missing or malformed.
 */
#include "lepton/lepton.h"

#include "../libcore/src/model/linear.h"

#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

typedef struct csr_file {
    uint8_t *raw;
    lp_design x;
    const int32_t *labels;
} csr_file;

static lp_status read_csr(const char *path, csr_file *cf, lp_err *err)
{
    size_t len;
    lp_status st = lp_file_read(path, &cf->raw, &len, err);
    if (st)
        return st;
    lp_reader r;
    lp_reader_init(&r, cf->raw, len, path);
    char magic[8];
    uint64_t rows, cols, nnz;
    if ((st = lp_reader_get(&r, magic, 8, err)) || (st = lp_reader_u64(&r, &rows, err)) ||
        (st = lp_reader_u64(&r, &cols, err)) || (st = lp_reader_u64(&r, &nnz, err)))
        return st;
    if (memcmp(magic, "LPCSR01", 8) != 0)
        return lp_err_set(err, LP_EFORMAT, "%s: bad magic, not a LPCSR01 file", path);
    uint64_t need = (rows + 1) * 8 + nnz * 8 + rows * 4;
    if (rows == 0 || rows > len || nnz > len || need != len - r.pos)
        return lp_err_set(err, LP_EFORMAT, "%s: sizes (%llu rows, %llu nnz) do not match the "
                          "file length %zu", path, (unsigned long long)rows,
                          (unsigned long long)nnz, len);
    /* the header is 32 bytes and every array length is a multiple of its element size, so
     * each array starts aligned within lp_file_read's malloc'd buffer */
    const uint8_t *p = cf->raw + r.pos;
    cf->x.rows = rows;
    cf->x.cols = cols;
    cf->x.dense = NULL;
    cf->x.indptr = (const size_t *)p;
    p += (rows + 1) * 8;
    cf->x.indices = (const uint32_t *)p;
    p += nnz * 4;
    cf->x.values = (const float *)p;
    p += nnz * 4;
    cf->labels = (const int32_t *)p;
    return lp_design_check(&cf->x, path, err);
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: %s <out dir> <C> <tol> <max_iter> <threads>\n", argv[0]);
        return 2;
    }
    char path[4096];
    csr_file tr = {0}, te = {0};
    lp_err err;
    snprintf(path, sizeof path, "%s/clinc_train.csr", argv[1]);
    if (read_csr(path, &tr, &err) != LP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    snprintf(path, sizeof path, "%s/clinc_test.csr", argv[1]);
    if (read_csr(path, &te, &err) != LP_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    lp_linear_opts o = lp_linear_opts_default();
    o.kind = LP_LINEAR_KIND_LOGISTIC;
    o.C = atof(argv[2]);
    o.tol = atof(argv[3]);
    o.max_iter = atoi(argv[4]);
    o.threads = atoi(argv[5]);
    lp_linear *m = NULL;
    uint64_t t0 = lp_time_ns();
    clock_t c0 = clock();
    if (lp_linear_fit_classifier(&o, &tr.x, tr.labels, 0, NULL, &m, &err) != LP_OK) {
        fprintf(stderr, "fit: %s\n", err.msg);
        return 1;
    }
    double fit_s = lp_time_since(t0);
    double cpu_s = (double)(clock() - c0) / CLOCKS_PER_SEC;
    if (lp_linear_n_features(m) != te.x.cols) {
        fprintf(stderr, "test matrix has %zu columns, train %zu\n", te.x.cols,
                lp_linear_n_features(m));
        return 1;
    }
    double *pred = malloc(te.x.rows * sizeof(double));
    if (!pred || lp_linear_predict(m, &te.x, pred, &err) != LP_OK) {
        fprintf(stderr, "predict: %s\n", pred ? err.msg : "out of memory");
        return 1;
    }
    size_t ok = 0;
    for (size_t i = 0; i < te.x.rows; i++)
        ok += (int32_t)pred[i] == te.labels[i];
    printf("lepton: fit %.3f s (%.3f s CPU), test accuracy %.4f, %d iterations%s\n", fit_s,
           cpu_s, (double)ok / (double)te.x.rows, lp_linear_n_iter(m),
           lp_linear_converged(m) ? "" : " (tol not reached)");
    free(pred);
    lp_linear_free(m);
    free(tr.raw);
    free(te.raw);
    return 0;
}
