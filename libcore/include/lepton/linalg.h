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

/* ---- sparse: compressed sparse rows (CSR) --------------------------------------------------
 * Row i holds the entries indices[indptr[i] .. indptr[i+1]) with values in values[...];
 * indptr has rows + 1 entries, indptr[0] == 0, indptr[rows] == nnz. Column indices inside a row
 * are strictly increasing and < cols. Values are float (model inputs); an explicit NaN entry
 * stands for a missing value. The struct owns its three arrays. */
typedef struct lp_csr {
    size_t rows, cols, nnz;
    size_t *indptr;    /* (rows + 1,) */
    uint32_t *indices; /* (nnz,) */
    float *values;     /* (nnz,) */
} lp_csr;

/* A CSR with room for nnz entries: indptr zero-filled, indices/values uninitialised (the
 * caller fills them and keeps the invariants). NULL on allocation failure. */
lp_csr *lp_csr_new(size_t rows, size_t cols, size_t nnz);
void lp_csr_free(lp_csr *m);
/* The transpose (cols, rows): row j holds column j's entries of m, in m's row order (so its
 * indices increase); m's nnz is indptr[rows]. NULL on allocation failure. */
lp_csr *lp_csr_transpose(const lp_csr *m);
/* Dense copy (rows, cols); absent entries are 0. NULL on allocation failure. */
lp_matf *lp_csr_to_dense(const lp_csr *m);
/* Scale each row to unit Euclidean norm (sum in double); all-zero rows stay zero. Rows with a
 * NaN entry become all NaN entries (the norm is undefined). */
void lp_csr_normalize_l2(lp_csr *m);
/* Check the invariants above; LP_EFORMAT naming `what` and the first broken place. */
lp_status lp_csr_check(const lp_csr *m, const char *what, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
