/*
 * explain_internal.h - the explain module's private parts: the explainer object shared by the
 * linear path (explain.c) and TreeSHAP (treeshap.c).
 */
#ifndef LEPTON_EXPLAIN_INTERNAL_H
#define LEPTON_EXPLAIN_INTERNAL_H

#include "lepton/explain.h"
#include "model/gbdt.h"
#include "model/linear.h"

/* One element of a TreeSHAP unique path (Lundberg et al. 2020, Algorithm 2): the feature split
 * on, the fraction of "zero" paths (feature not in S: cover share) and "one" paths (feature in
 * S: 1 when x goes this way, else 0) flowing through, and the permutation weight. */
typedef struct lp_shap_path {
    int32_t feature;
    double zero_fraction, one_fraction, pweight;
} lp_shap_path;

/* Precomputed TreeSHAP (treeshap.c, "fast path"). A fast tree is cut into "groups", the
 * maximal subtrees of height <= LP_TS_GROUP_H, and the "top" nodes above them, kept in the
 * gbdt's order (parents first). A top node's children are the indices of their 16-bit words:
 * a top node's own, or n_top + the group. slot: the slot (0..k-1) of the node's feature among
 * the unique features of the path from the root to it (first-occurrence order). */
typedef struct lp_ts_node {
    int32_t feature;
    float threshold;
    uint32_t left, right;
    uint8_t slot, dflt;   /* dflt: 1 when a missing value goes left */
} lp_ts_node;

#define LP_TS_GROUP_SPLITS 3

/* One group: its splits, and its table, whose row (stride doubles, one 64-byte line for up to
 * 7 features) is indexed by the group's word (the fail mask of the k_top features above its
 * root, flipped by full = 2^k_top - 1) with each split's decision (1 = left) at its bit; a row
 * holds the contributions of the cols features e->ts_feat[feat ..], zeros up to the last
 * double, and there the leaf value x reaches (0 when x does not reach the group). */
typedef struct lp_ts_group {
    int32_t feature[LP_TS_GROUP_SPLITS];
    float threshold[LP_TS_GROUP_SPLITS];
    uint8_t bit[LP_TS_GROUP_SPLITS], dflt[LP_TS_GROUP_SPLITS];
    uint16_t full, cols, stride;
    uint16_t n_split;
    uint32_t feat;   /* offset into e->ts_feat of cols feature indices */
    uint32_t table;  /* offset into e->ts_tab of 2^(k_top + n_split) * stride doubles */
} lp_ts_group;

typedef struct lp_ts_tree {
    uint32_t node0, n_top;     /* top nodes in e->ts_nodes */
    uint32_t group0, n_groups; /* groups in e->ts_groups */
    bool fast;                 /* precomputed; else Algorithm 2 at run time */
} lp_ts_tree;

/* height of a group's subtree (it holds at most LP_TS_GROUP_SPLITS = 2^H - 1 splits) */
#define LP_TS_GROUP_H 2
/* a leaf's unique path features; LP_TS_MAX_K + LP_TS_GROUP_SPLITS must stay < 16 (words) */
#define LP_TS_MAX_K 12
/* doubles of precomputed tables over all trees (32 MiB); trees beyond it use Algorithm 2 */
#define LP_TS_MAX_TABLE ((uint64_t)1 << 22)
/* rows per block of the batch path: their phi (B, d) stays in cache while a tree's table is
 * reused across them */
#define LP_TS_BLOCK 128

struct lp_explainer {
    const lp_model *model;
    lp_model_kind kind;
    size_t d, n_outputs;
    /* gbdt */
    const lp_gbdt *gbdt;
    size_t max_depth;      /* deepest tree (edges from root to leaf) */
    double *base;          /* (n_outputs,) base score + sum of tree expectations */
    size_t max_nodes;      /* largest tree */
    lp_ts_tree *ts_trees;  /* (n_trees,) or NULL: precomputed TreeSHAP (treeshap.c) */
    lp_ts_node *ts_nodes;
    lp_ts_group *ts_groups;
    int32_t *ts_feat;
    double *ts_tab;
    /* linear */
    const float *coef;     /* (n_outputs, d) */
    const float *intercept;/* (n_outputs,) */
    double *mean;          /* (d,) background mean, zeros by default */
};

struct lp_explain_ws {
    const lp_explainer *owner;
    size_t cap;            /* path elements */
    lp_shap_path *path;
    uint16_t *dir;         /* (max_nodes,) the fast path's words (treeshap.c) */
};

/* TreeSHAP set-up for e->gbdt: max depth and base values. LP_ENOMEM. */
lp_status lp_treeshap_init(lp_explainer *e, lp_err *err);
/* Precompute the fast-path tables for e->gbdt (trees within the memory budget). LP_ENOMEM. */
lp_status lp_treeshap_precompute(lp_explainer *e, lp_err *err);
void lp_treeshap_free(lp_explainer *e);
/* Path elements a workspace needs for trees of depth max_depth. */
size_t lp_treeshap_path_len(size_t max_depth);
/* Accumulate the attributions of output k for x into phi (d,) (not cleared), returning the
 * margin of output k (base included). */
double lp_treeshap_row(const lp_explainer *e, lp_shap_path *path, uint16_t *fail,
                       const float *x, size_t k, double *phi);
/* TreeSHAP of n rows X (n, d) into phi (n, d) (cleared first) and margin (n,) (NULL: not
 * wanted): output k of every row, or output ks[i] of row i when ks (n,) is given. Trees
 * outermost over blocks of LP_TS_BLOCK rows; OpenMP over blocks with threads (0 = default).
 * Same arithmetic, in the same order, as lp_treeshap_row. LP_EINVAL for an output out of
 * range, LP_ENOMEM. */
lp_status lp_treeshap_batch(const lp_explainer *e, const float *X, size_t n, size_t k,
                            const int32_t *ks, int threads, double *phi, double *margin,
                            lp_err *err);
/* lp_explainer_new without the fast-path tables (cheap to build: for a few rows). */
lp_status lp_explainer_new_lite(const lp_model *m, lp_explainer **out, lp_err *err);
/* Cover-weighted mean leaf value of one tree (the path-dependent E[f_t]). */
double lp_treeshap_tree_mean(const lp_gbdt_node *nodes, size_t n_nodes);

/* ---- any family (scorer.c) ------------------------------------------------------------------
 * The raw scores F of a model over design rows, for every family: K outputs per row, 1 for
 * regression and binary (the log-odds), the class count for multiclass. */
struct lp_nn;
typedef struct lp_xscorer {
    const lp_model *m;
    lp_model_kind kind;
    lp_task task;
    size_t d, K;
    lp_explainer *ex;          /* linear, logistic, gbdt: their margins */
    const struct lp_nn *net;   /* nn */
    size_t nn_out;
    double y_mean, y_std;      /* nn regression scaling */
} lp_xscorer;

/* tables: build TreeSHAP's precomputed tables (worth it for many rows; margins never need
 * them). */
lp_status lp_xscorer_init(lp_xscorer *s, const lp_model *m, bool tables, lp_err *err);
void lp_xscorer_clear(lp_xscorer *s);
/* out (n, K) raw scores of X (n, d); OpenMP over rows for the tree and linear families with
 * threads (0 = default, 1 on a request path). */
lp_status lp_xscorer_raw(const lp_xscorer *s, const float *X, size_t n, int threads, double *out,
                         lp_err *err);

/* Features over design columns: group[j] of design column j in [0, p), names (p,) owned. */
typedef struct lp_xgroups {
    size_t d, p;
    int32_t *group; /* (d,) */
    char **names;   /* (p,) */
} lp_xgroups;

lp_status lp_xgroups_init(lp_xgroups *g, const lp_model *m, size_t d, bool raw_columns,
                          lp_err *err);
void lp_xgroups_clear(lp_xgroups *g);

/* The module lock serialising the nn's gradient passes (they use the net's scratch). */
void lp_explain_lock(void);
void lp_explain_unlock(void);

/* Integrated gradients (ig.c) of output weights w (nn_out,) for rows X (n, d): phi (n, d),
 * fb (n,) the weighted output at the baseline b (d,), fx (n,) at x. Takes the module lock. */
lp_status lp_ig_rows(const lp_xscorer *s, const float *X, size_t n, const float *b,
                     const float *w_rows, size_t steps, double *phi, double *fx, double *fb,
                     lp_err *err);

/* Kernel SHAP (kernelshap.c) of output k for one design row x (d,) against the background
 * B (nb, d), over the groups g: phi (p,), *fx F(x)_k, *base mean F(b)_k. */
lp_status lp_kernelshap_row(const lp_xscorer *s, const lp_xgroups *g, const float *x,
                            const float *B, size_t nb, size_t k, size_t samples, uint64_t seed,
                            int threads, double *phi, double *fx, double *base, lp_err *err);

#endif
