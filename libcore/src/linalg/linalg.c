/*
 * linalg.c - lp_mat / lp_matf and the CBLAS / LAPACKE wrappers declared in linalg.h.
 * Every wrapper checks shapes before calling into OpenBLAS, which would otherwise read out of
 * bounds or print to stderr and carry on.
 */
#include "lepton/linalg.h"

#include <cblas.h>
#include <lapacke.h>
#include <stdlib.h>
#include <string.h>

lp_mat *lp_mat_new(size_t rows, size_t cols)
{
    lp_mat *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->rows = rows;
    m->cols = cols;
    m->v = lp_calloc(rows * cols, sizeof(double));
    if (!m->v || (cols && rows > SIZE_MAX / cols)) {
        free(m->v);
        free(m);
        return NULL;
    }
    return m;
}

void lp_mat_free(lp_mat *m)
{
    if (!m)
        return;
    free(m->v);
    free(m);
}

lp_mat *lp_mat_clone(const lp_mat *m)
{
    lp_mat *c = lp_mat_new(m->rows, m->cols);
    if (c && m->rows && m->cols)
        memcpy(c->v, m->v, m->rows * m->cols * sizeof(double));
    return c;
}

lp_matf *lp_matf_new(size_t rows, size_t cols)
{
    lp_matf *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->rows = rows;
    m->cols = cols;
    m->v = lp_calloc(rows * cols, sizeof(float));
    if (!m->v || (cols && rows > SIZE_MAX / cols)) {
        free(m->v);
        free(m);
        return NULL;
    }
    return m;
}

void lp_matf_free(lp_matf *m)
{
    if (!m)
        return;
    free(m->v);
    free(m);
}

static lp_status gemm_shapes(bool ta, bool tb, size_t ar, size_t ac, size_t br, size_t bc,
                             size_t cr, size_t cc, size_t *m, size_t *n, size_t *k, lp_err *err)
{
    *m = ta ? ac : ar;
    *k = ta ? ar : ac;
    size_t kb = tb ? bc : br;
    *n = tb ? br : bc;
    if (*k != kb || cr != *m || cc != *n)
        return lp_err_set(err, LP_EINVAL,
                          "gemm: shapes do not agree: op(A) is (%zu, %zu), op(B) is (%zu, %zu), "
                          "C is (%zu, %zu)",
                          *m, *k, kb, *n, cr, cc);
    if (*m > INT32_MAX || *n > INT32_MAX || *k > INT32_MAX)
        return lp_err_set(err, LP_ETOOBIG, "gemm: dimension over 2^31");
    return LP_OK;
}

lp_status lp_mat_gemm(bool trans_a, bool trans_b, double alpha, const lp_mat *a,
                      const lp_mat *b, double beta, lp_mat *c, lp_err *err)
{
    size_t m, n, k;
    lp_status s = gemm_shapes(trans_a, trans_b, a->rows, a->cols, b->rows, b->cols, c->rows,
                              c->cols, &m, &n, &k, err);
    if (s)
        return s;
    if (!m || !n)
        return LP_OK;
    cblas_dgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a->v,
                (int)(a->cols ? a->cols : 1), b->v, (int)(b->cols ? b->cols : 1), beta, c->v,
                (int)(c->cols ? c->cols : 1));
    return LP_OK;
}

lp_status lp_matf_gemm(bool trans_a, bool trans_b, float alpha, const lp_matf *a,
                       const lp_matf *b, float beta, lp_matf *c, lp_err *err)
{
    size_t m, n, k;
    lp_status s = gemm_shapes(trans_a, trans_b, a->rows, a->cols, b->rows, b->cols, c->rows,
                              c->cols, &m, &n, &k, err);
    if (s)
        return s;
    if (!m || !n)
        return LP_OK;
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha, a->v,
                (int)(a->cols ? a->cols : 1), b->v, (int)(b->cols ? b->cols : 1), beta, c->v,
                (int)(c->cols ? c->cols : 1));
    return LP_OK;
}

lp_status lp_mat_svd(const lp_mat *a, lp_mat **u, double **s, lp_mat **vt, lp_err *err)
{
    if (u)
        *u = NULL;
    if (s)
        *s = NULL;
    if (vt)
        *vt = NULL;
    size_t m = a->rows, n = a->cols, k = m < n ? m : n;
    if (!k)
        return lp_err_set(err, LP_EINVAL, "svd: empty matrix (%zu, %zu)", m, n);
    lp_mat *work = lp_mat_clone(a);
    lp_mat *uu = lp_mat_new(m, k), *vv = lp_mat_new(k, n);
    double *ss = lp_mallocarray(k, sizeof(double));
    lp_status st = LP_OK;
    if (!work || !uu || !vv || !ss) {
        st = lp_err_set(err, LP_ENOMEM, "svd: out of memory for (%zu, %zu)", m, n);
        goto done;
    }
    lapack_int info = LAPACKE_dgesdd(LAPACK_ROW_MAJOR, 'S', (lapack_int)m, (lapack_int)n,
                                     work->v, (lapack_int)n, ss, uu->v, (lapack_int)k, vv->v,
                                     (lapack_int)n);
    if (info != 0) {
        st = lp_err_set(err, LP_ENUMERIC, "svd: LAPACK dgesdd failed (info %d) on (%zu, %zu)",
                        (int)info, m, n);
        goto done;
    }
    if (u) {
        *u = uu;
        uu = NULL;
    }
    if (s) {
        *s = ss;
        ss = NULL;
    }
    if (vt) {
        *vt = vv;
        vv = NULL;
    }
done:
    lp_mat_free(work);
    lp_mat_free(uu);
    lp_mat_free(vv);
    free(ss);
    return st;
}

lp_status lp_mat_cholesky_solve(lp_mat *a, lp_mat *b, lp_err *err)
{
    size_t n = a->rows;
    if (a->cols != n || b->rows != n)
        return lp_err_set(err, LP_EINVAL, "cholesky: A is (%zu, %zu), B is (%zu, %zu)", a->rows,
                          a->cols, b->rows, b->cols);
    if (!n)
        return LP_OK;
    lapack_int info = LAPACKE_dposv(LAPACK_ROW_MAJOR, 'L', (lapack_int)n, (lapack_int)b->cols,
                                    a->v, (lapack_int)n, b->v, (lapack_int)(b->cols ? b->cols : 1));
    if (info > 0)
        return lp_err_set(err, LP_ENUMERIC,
                          "cholesky: matrix not positive definite (minor %d of %zu)", (int)info, n);
    if (info < 0)
        return lp_err_set(err, LP_EINVAL, "cholesky: bad argument %d", (int)-info);
    return LP_OK;
}

lp_status lp_mat_eigh(const lp_mat *a, double **w, lp_mat **vecs, lp_err *err)
{
    *w = NULL;
    *vecs = NULL;
    size_t n = a->rows;
    if (a->cols != n || !n)
        return lp_err_set(err, LP_EINVAL, "eigh: matrix is (%zu, %zu), need square non-empty",
                          a->rows, a->cols);
    lp_mat *v = lp_mat_clone(a);
    double *ww = lp_mallocarray(n, sizeof(double));
    if (!v || !ww) {
        lp_mat_free(v);
        free(ww);
        return lp_err_set(err, LP_ENOMEM, "eigh: out of memory for (%zu, %zu)", n, n);
    }
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'L', (lapack_int)n, v->v,
                                     (lapack_int)n, ww);
    if (info != 0) {
        lp_mat_free(v);
        free(ww);
        return lp_err_set(err, LP_ENUMERIC, "eigh: LAPACK dsyevd failed (info %d)", (int)info);
    }
    *w = ww;
    *vecs = v;
    return LP_OK;
}

void lp_linalg_set_threads(int n)
{
    if (n > 0)
        openblas_set_num_threads(n);
}
