/*
 * gbdt_int.h - what the gbdt*.c files share and nothing else sees: the layout of a fitted
 * lp_gbdt and the quantile binning of a feature matrix (gbdt_bin.c).
 *
 * Binned matrix invariant: bins (n, d) row-major uint8, 0 = missing (NaN), 1..nb[j] value
 * bins; value v of feature j lies in bin 1 + #{cuts[j][k] < v}, so bins <= b hold exactly the
 * values v <= cuts[j][b-1]. `cols` holds the same bins transposed. A histogram keeps
 * nb[j] + 1 entries for feature j starting at off[j] (entry 0 is the missing bin).
 */
#ifndef LEPTON_MODEL_GBDT_INT_H
#define LEPTON_MODEL_GBDT_INT_H

#include "model/gbdt.h"

struct lp_gbdt {
    lp_gbdt_loss loss;
    size_t d;            /* features */
    size_t n_out;        /* outputs: 1, or n_classes for SOFTMAX */
    size_t n_rounds;     /* rounds kept; trees = n_rounds * n_out */
    double *base;        /* (n_out) base margins */
    lp_gbdt_node *nodes; /* all trees' nodes, tree t in [tree_off[t], tree_off[t + 1]) */
    size_t *tree_off;    /* (n_trees + 1) */
    double best_valid;   /* validation loss of the kept round, NaN without validation */
    double *valid_hist;  /* (n_valid_hist) validation loss per trained round, or NULL */
    size_t n_valid_hist;
    int n_threads;       /* batch predict threads (0 = OpenMP default); not serialised */
    /* Prediction layout derived from `nodes` by gb_model_finish (not serialised): per tree,
     * its internal nodes renumbered 0.. (root first) and its leaf values; a child >= 1 is an
     * internal node, a child < 0 the leaf ~child; a tree that is a single leaf has no
     * internal node and its value in leaf slot 0. */
    struct gb_pnode *pnodes; /* all trees' internal nodes, tree t from pnode_off[t] */
    size_t *pnode_off;       /* (n_trees + 1) */
    float *leafv;            /* all trees' leaf values, tree t from leaf_off[t] */
    size_t *leaf_off;        /* (n_trees + 1) */
};

/* 16 bytes: feature | default_left << 31, threshold, children [left, right]. */
typedef struct gb_pnode {
    uint32_t fdl;
    float thr;
    int32_t child[2];
} gb_pnode;

/* Build the prediction layout of a model whose nodes and tree_off are set. LP_ENOMEM. */
lp_status gb_model_finish(lp_gbdt *m, lp_err *err);

/* One level of descent: x <= thr goes to child[0], greater or NaN-with-default-right to
 * child[1], without a data-dependent branch. */
static inline int32_t gb_step(const gb_pnode *p, int32_t i, const float *x)
{
    const gb_pnode *nd = p + i;
    float v = x[nd->fdl & 0x7fffffffu];
    unsigned right = !(v <= nd->thr) ^ ((v != v) & (nd->fdl >> 31));
    return nd->child[right];
}

/* Leaf value of row x in tree t. Internal nodes have index >= 0 (root 0), leaves ~k < 0. */
static inline float gb_tree_value(const lp_gbdt *m, size_t t, const float *x)
{
    const gb_pnode *p = m->pnodes + m->pnode_off[t];
    int32_t i = m->pnode_off[t + 1] == m->pnode_off[t] ? -1 : 0;
    while (i >= 0)
        i = gb_step(p, i, x);
    return m->leafv[m->leaf_off[t] + (size_t)~i];
}

/* Sum of the leaf values of row x over trees [t0, t0 + 4 * n4) of a single-output model, four
 * walks interleaved (trees t, t+1, t+2, t+3), so the dependent loads of one overlap those of
 * the others; s[j] accumulates trees t0 + j (mod 4). */
static inline void gb_tree_sum4(const lp_gbdt *m, size_t t0, size_t n4, const float *x,
                                double s[4])
{
    for (size_t q = 0; q < n4; q++) {
        size_t t = t0 + 4 * q;
        const gb_pnode *p[4];
        int32_t i[4];
        for (int j = 0; j < 4; j++) {
            p[j] = m->pnodes + m->pnode_off[t + j];
            i[j] = m->pnode_off[t + j + 1] == m->pnode_off[t + j] ? -1 : 0;
        }
        while ((i[0] | i[1] | i[2] | i[3]) >= 0) { /* all four still inside their trees */
            for (int j = 0; j < 4; j++)
                i[j] = gb_step(p[j], i[j], x);
        }
        for (int j = 0; j < 4; j++) {
            while (i[j] >= 0)
                i[j] = gb_step(p[j], i[j], x);
            s[j] += m->leafv[m->leaf_off[t + j] + (size_t)~i[j]];
        }
    }
}

/* Allocate an empty model shell (all arrays NULL); NULL on allocation failure. */
lp_gbdt *gb_model_new(lp_gbdt_loss loss, size_t d, size_t n_out);

typedef struct gb_bins {
    size_t n, d;
    uint8_t *bins;     /* (n, d) row-major: histogram building reads whole rows */
    uint8_t *cols;     /* (d, n) the same bins column-major: partitioning reads one feature */
    uint16_t *nb;      /* (d) value bins of each feature, 1..255 */
    uint32_t *off;     /* (d + 1) histogram offsets; off[d] = total histogram entries */
    float *cuts;       /* all features' cuts, feature j at cut_off[j], nb[j] - 1 of them */
    uint32_t *cut_off; /* (d + 1) */
} gb_bins;

/* Quantile-bin X (n, d): cut points from at most `sample` rows drawn with `seed` (all rows
 * when n <= sample), at most max_bins value bins per feature (distinct values get their own
 * bin when there are few enough), then every cell mapped to its bin. Uses n_threads OpenMP
 * threads; the result does not depend on the thread count. */
lp_status gb_bins_build(const float *X, size_t n, size_t d, int max_bins, size_t sample,
                        uint64_t seed, int n_threads, gb_bins *out, lp_err *err);
void gb_bins_free(gb_bins *b);

/* Leaf reached by row x (d floats, NaN = missing) in the tree starting at nodes. */
static inline int32_t gb_tree_leaf(const lp_gbdt_node *nodes, const float *x)
{
    int32_t i = 0;
    while (nodes[i].feature >= 0) {
        const lp_gbdt_node *nd = &nodes[i];
        float v = x[nd->feature];
        if (v != v)
            i = nd->default_left ? nd->left : nd->right;
        else
            i = v <= nd->threshold ? nd->left : nd->right;
    }
    return i;
}

#endif
