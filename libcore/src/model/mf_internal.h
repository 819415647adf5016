/*
 * mf_internal.h - private to the mf family: the string id map, the interaction store and the
 * fitted model struct shared by mf_data.c, mf.c, mf_rec.c and mf_io.c.
 *
 * Invariants: an id map holds distinct strings in insertion order, index == position; the
 * model's histories are CSR with ascending item indices per user and finite weights > 0; the
 * kNN lists are CSR with neighbour indices != the row item and similarities in [0, 1].
 */
#ifndef LP_MODEL_MF_INTERNAL_H
#define LP_MODEL_MF_INTERNAL_H

#include "lepton/backend.h"
#include "lepton/mf.h"

#include <math.h>

/* String -> dense index, open addressing with linear probing (power-of-two slots). */
typedef struct mf_ids {
    char **names;     /* (n,) owned */
    size_t n, cap;    /* names used / allocated */
    int32_t *slots;   /* (n_slots,) index or -1 */
    size_t n_slots;
} mf_ids;

void mf_ids_init(mf_ids *m);
void mf_ids_clear(mf_ids *m);
long mf_ids_find(const mf_ids *m, const char *s);
/* Index of s, adding it when new (*added may be NULL). LP_ENOMEM on failure. */
lp_status mf_ids_add(mf_ids *m, const char *s, int32_t *idx, bool *added, lp_err *err);

typedef struct mf_triple {
    int32_t u, i;
    float w;
} mf_triple;

struct lp_mf_data {
    mf_ids users, items;
    mf_triple *t; /* (n_t,) unsorted, may repeat pairs until mf_data_csr */
    size_t n_t, cap_t;
    double time_ref; /* lp_mf_data_time_ref */
};

/* CSR of interactions: rows (users or items), ascending columns, repeated pairs summed. */
typedef struct mf_csr {
    size_t n_rows, nnz;
    int32_t *ptr; /* (n_rows + 1,) */
    int32_t *col; /* (nnz,) */
    float *w;     /* (nnz,) */
} mf_csr;

void mf_csr_free(mf_csr *c);
/* by_user: rows are users; else rows are items (the transpose). */
lp_status mf_data_csr(const lp_mf_data *d, bool by_user, mf_csr *out, lp_err *err);
/* Transpose a CSR with n_cols columns. */
lp_status mf_csr_transpose(const mf_csr *a, size_t n_cols, mf_csr *out, lp_err *err);

struct lp_mf {
    lp_mf_opts opts;   /* on_iter cleared */
    size_t n_users, n_items, dim;
    mf_ids users, items;
    float *xu;         /* (n_users, dim) ALS/BPR, else NULL */
    float *yi;         /* (n_items, dim) ALS/BPR, else NULL */
    float *pop;        /* (n_items,) summed weight */
    float *pop_users;  /* (n_items,) users who interacted */
    float *pop_score;  /* (n_items,) the popular ranking: pop_users, ties by pop (mf_finish) */
    mf_csr hist;       /* (n_users rows) training history */
    mf_csr knn;        /* (n_items rows) itemknn neighbours, col = item, w = similarity */
    float *yty;        /* (dim, dim) Y^T Y of the item factors, for fold-in; NULL w/o factors */
    float *inorm;      /* (n_items,) |y_i| for similar(); NULL w/o factors */
    bool has_source;   /* src recorded (lp_mf_set_source or the file's "source") */
    lp_mf_source src;  /* strings point into src_cols */
    char *src_cols[5]; /* owned copies: user, item, weight, type, time column (NULL = none) */
};

/* The model's weight transform of one summed pair weight (lp_mf_weight). */
static inline float mf_tw(lp_mf_weight t, float w)
{
    return t == LP_MF_WEIGHT_LOG1P ? log1pf(w) : w;
}

/* Transformed copy of n weights (caller frees), or NULL when out of memory. */
float *mf_tw_copy(lp_mf_weight t, const float *w, size_t n);

/* lp_mf_fold_in over weights already transformed (the library's own callers). */
lp_status mf_fold_in(const lp_mf *m, const int32_t *items, const float *w, size_t n, float *out,
                     lp_err *err);

/* The implicit-ALS objective of factors x (n_users, dim), y (n_items, dim) (mf.h); g is
 * (dim, dim) double scratch; nt OpenMP threads. */
double mf_als_objective(const lp_mf *m, const float *x, const float *y, double *g, int nt);
/* f (n, k) ~ N(0, scale^2) from rng, row-major order (the CPU solvers' initialisation). */
void mf_init_factors(float *f, size_t n, size_t k, double scale, lp_rng *rng);

/* ALS / BPR through a kernel table (mf_device.c). mf_table_for maps opts.device to a table:
 * *be = NULL for the CPU solvers (NULL, "cpu", or "auto" without a device); LP_EUNSUPPORTED /
 * LP_EDEVICE from lp_backend_get for "cuda" without one. The fits start from the same
 * initial factors as the CPU solvers and fill m->xu, m->yi. */
lp_status mf_table_for(const char *device, const lp_backend **be, lp_err *err);
lp_status mf_fit_als_table(lp_mf *m, const lp_backend *be, int nt, lp_mf_iter_fn cb,
                           void *cb_user, lp_err *err);
lp_status mf_fit_bpr_table(lp_mf *m, const lp_backend *be, bool deterministic, lp_mf_iter_fn cb,
                           void *cb_user, lp_err *err);

/* `omp simd` hints for GCC, which needs them to vectorize these loops at -O2; clang vectorizes
 * them on its own and warns when a hint cannot be honoured, so it gets none. */
#if defined(__GNUC__) && !defined(__clang__)
#define MF_SIMD _Pragma("omp simd")
#define MF_SIMD_SUM_S _Pragma("omp simd reduction(+ : s)")
#define MF_SIMD_SUB_S _Pragma("omp simd reduction(- : s)")
#define MF_SIMD_SUM_4 _Pragma("omp simd reduction(+ : s0, s1, s2, s3)")
#else
#define MF_SIMD
#define MF_SIMD_SUM_S
#define MF_SIMD_SUB_S
#define MF_SIMD_SUM_4
#endif

/* x86-64: one clone per ISA level (AVX2/FMA and baseline), picked at load time (ifunc); the
 * static helpers a cloned function calls are inlined into each clone. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define MF_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define MF_CLONES
#endif

/* Derived fields (yty, inorm, pop_users) from the stored ones; used by fit and load. */
lp_status mf_finish(lp_mf *m, lp_err *err);
/* Cholesky A = U^T U of the (k, k) SPD matrix in u, in place, double: reads and writes the
 * upper triangle only (the lower one may hold anything) and writes the k reciprocals of U's
 * diagonal after it, so u holds k * k + k doubles. Right-looking, so every update is a
 * contiguous row axpy. False when A is not positive definite. */
bool mf_chol_upper(double *u, size_t k);
/* Solve U^T U x = b in place in x given the factor (and reciprocals) from mf_chol_upper. */
void mf_chol_upper_solve(const double *u, size_t k, double *x);

#endif
