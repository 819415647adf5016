/*
 * linalg.h - dense row-major matrices and thin wrappers over CBLAS / LAPACKE (OpenBLAS).
 *
 * lp_mat holds doubles (statistics, cleaning, PCA); lp_matf holds floats (model parameters).
 * Shapes are checked and reported as LP_EINVAL; LAPACK failures are LP_ENUMERIC. Nothing here
 * spawns threads of its own: OpenBLAS threading is set once with lp_linalg_set_threads.
 */
#ifndef LEPTON_LINALG_H
#define LEPTON_LINALG_H

#include "lepton/base.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lp_mat {
    size_t rows, cols;
    double *v; /* (rows, cols) row-major, owned */
} lp_mat;

typedef struct lp_matf {
    size_t rows, cols;
    float *v; /* (rows, cols) row-major, owned */
} lp_matf;

/* Zero-filled; NULL on allocation failure. _free(NULL) is a no-op. */
lp_mat *lp_mat_new(size_t rows, size_t cols);
void lp_mat_free(lp_mat *m);
lp_mat *lp_mat_clone(const lp_mat *m);
static inline double *lp_mat_row(const lp_mat *m, size_t i) { return m->v + i * m->cols; }

lp_matf *lp_matf_new(size_t rows, size_t cols);
void lp_matf_free(lp_matf *m);

/* C = alpha * op(A) op(B) + beta * C (dgemm). C must already have the result shape. */
lp_status lp_mat_gemm(bool trans_a, bool trans_b, double alpha, const lp_mat *a,
                      const lp_mat *b, double beta, lp_mat *c, lp_err *err);
/* Float version (sgemm). */
lp_status lp_matf_gemm(bool trans_a, bool trans_b, float alpha, const lp_matf *a,
                       const lp_matf *b, float beta, lp_matf *c, lp_err *err);

/* Thin SVD A = U diag(S) Vt with k = min(rows, cols) (LAPACKE_dgesdd):
 * U (rows, k), S (k,) descending, Vt (k, cols). A is not modified. Any output pointer may be
 * NULL when not wanted (U and Vt are still computed). */
lp_status lp_mat_svd(const lp_mat *a, lp_mat **u, double **s, lp_mat **vt, lp_err *err);

/* Solve the symmetric positive definite system A X = B in place (A overwritten by its
 * Cholesky factor, B by X). A (n, n), B (n, nrhs). LP_ENUMERIC when A is not SPD. */
lp_status lp_mat_cholesky_solve(lp_mat *a, lp_mat *b, lp_err *err);

/* Symmetric eigen-decomposition (LAPACKE_dsyevd): A (n, n) symmetric; w (n,) ascending;
 * vecs (n, n) with eigenvectors in columns. */
lp_status lp_mat_eigh(const lp_mat *a, double **w, lp_mat **vecs, lp_err *err);

/* Limit OpenBLAS to n threads (0 = its default). */
void lp_linalg_set_threads(int n);

#ifdef __cplusplus
}
#endif
#endif
