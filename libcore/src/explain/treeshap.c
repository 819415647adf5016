/*
 * treeshap.c - exact TreeSHAP over the gbdt family's trees (Lundberg et al. 2020, "From local
 * explanations to global understanding with explainable AI for trees", Algorithm 2; the same
 * recursion as the reference implementation in the shap package's tree_shap.h).
 *
 * For each tree, a depth-first walk keeps the "unique path" of features split on from the root
 * to the current node. Each element carries the share of the subsets S that exclude the feature
 * and still reach the node (zero_fraction: product of cover shares), whether x itself goes this
 * way (one_fraction: 1 or 0), and the Shapley permutation weights of all subset sizes
 * (pweight), grown by EXTEND. At a leaf, UNWOUND_PATH_SUM removes one feature's contribution to
 * get the weight of the subsets without it, and phi[feature] += w (one - zero) * leaf value.
 * A feature met twice on a path is first UNWOUND so that it occurs once.
 *
 * Cover shares are taken as cover[child] / (cover[left] + cover[right]), not / cover[parent],
 * so the two shares always sum to 1 even if the stored covers are rounded; this makes
 * base + sum(phi) equal the margin exactly up to float summation. A node whose children both
 * have zero cover splits 1/2 - 1/2.
 *
 * That recursion is the oracle and the fallback. Most trees take the "fast path" below:
 * contributions precomputed per group of leaves at explainer build time (see its note), exact
 * in double like the recursion, and a batch entry point that runs trees outermost over blocks
 * of rows. What this file does not do: interventional TreeSHAP (a background set), interaction
 * values, float tables.
 *
 * Invariants: node 0 is the root, children have larger indices (gbdt.h), so the recursion
 * terminates and its depth is at most max_depth + 1. The path buffer is a triangle: level l
 * uses l + 1 elements after the previous levels, (D + 2)(D + 3) / 2 elements in all. The fast
 * path's tables are read-only after lp_treeshap_precompute: any number of threads may share
 * them, each with its own scratch words.
 */
#include "explain/explain_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

size_t lp_treeshap_path_len(size_t max_depth)
{
    size_t m = max_depth + 2;
    return m * (m + 1) / 2;
}

static size_t tree_depth(const lp_gbdt_node *nodes, int32_t i, size_t nn)
{
    if (i < 0 || (size_t)i >= nn || nodes[i].feature < 0)
        return 0;
    size_t l = tree_depth(nodes, nodes[i].left, nn), r = tree_depth(nodes, nodes[i].right, nn);
    return 1 + (l > r ? l : r);
}

static void child_shares(const lp_gbdt_node *nodes, const lp_gbdt_node *n, double *left,
                         double *right)
{
    double cl = nodes[n->left].cover, cr = nodes[n->right].cover;
    if (!(cl > 0.0) && !(cr > 0.0)) {
        *left = *right = 0.5;
        return;
    }
    if (!(cl > 0.0))
        cl = 0.0;
    if (!(cr > 0.0))
        cr = 0.0;
    *left = cl / (cl + cr);
    *right = cr / (cl + cr);
}

static double node_mean(const lp_gbdt_node *nodes, int32_t i)
{
    const lp_gbdt_node *n = &nodes[i];
    if (n->feature < 0)
        return n->value;
    double wl, wr;
    child_shares(nodes, n, &wl, &wr);
    return wl * node_mean(nodes, n->left) + wr * node_mean(nodes, n->right);
}

double lp_treeshap_tree_mean(const lp_gbdt_node *nodes, size_t n_nodes)
{
    return n_nodes ? node_mean(nodes, 0) : 0.0;
}

lp_status lp_treeshap_init(lp_explainer *e, lp_err *err)
{
    size_t k = e->n_outputs, nt = lp_gbdt_n_trees(e->gbdt);
    e->base = lp_calloc(k, sizeof(double));
    if (!e->base)
        return lp_err_set(err, LP_ENOMEM, "treeshap: out of memory");
    for (size_t c = 0; c < k; c++)
        e->base[c] = lp_gbdt_base_score(e->gbdt, c);
    e->max_depth = 0;
    for (size_t t = 0; t < nt; t++) {
        size_t nn = 0;
        const lp_gbdt_node *nodes = lp_gbdt_tree(e->gbdt, t, &nn);
        size_t dep = tree_depth(nodes, 0, nn);
        if (nn > e->max_nodes)
            e->max_nodes = nn;
        if (dep > e->max_depth)
            e->max_depth = dep;
        e->base[t % k] += lp_treeshap_tree_mean(nodes, nn);
    }
    return LP_OK;
}

/* 1 / k for the small integers the recurrences divide by: the divisions, not the memory,
 * dominate TreeSHAP, and a multiply by a tabulated reciprocal is several times cheaper. */
#define RCP_N 130
static const double g_rcp[RCP_N] = {
    0.0, 1.0 / 1, 1.0 / 2, 1.0 / 3, 1.0 / 4, 1.0 / 5, 1.0 / 6, 1.0 / 7, 1.0 / 8, 1.0 / 9, 1.0 /
    10, 1.0 / 11, 1.0 / 12, 1.0 / 13, 1.0 / 14, 1.0 / 15, 1.0 / 16, 1.0 / 17, 1.0 / 18, 1.0 /
    19, 1.0 / 20, 1.0 / 21, 1.0 / 22, 1.0 / 23, 1.0 / 24, 1.0 / 25, 1.0 / 26, 1.0 / 27, 1.0 /
    28, 1.0 / 29, 1.0 / 30, 1.0 / 31, 1.0 / 32, 1.0 / 33, 1.0 / 34, 1.0 / 35, 1.0 / 36, 1.0 /
    37, 1.0 / 38, 1.0 / 39, 1.0 / 40, 1.0 / 41, 1.0 / 42, 1.0 / 43, 1.0 / 44, 1.0 / 45, 1.0 /
    46, 1.0 / 47, 1.0 / 48, 1.0 / 49, 1.0 / 50, 1.0 / 51, 1.0 / 52, 1.0 / 53, 1.0 / 54, 1.0 /
    55, 1.0 / 56, 1.0 / 57, 1.0 / 58, 1.0 / 59, 1.0 / 60, 1.0 / 61, 1.0 / 62, 1.0 / 63, 1.0 /
    64, 1.0 / 65, 1.0 / 66, 1.0 / 67, 1.0 / 68, 1.0 / 69, 1.0 / 70, 1.0 / 71, 1.0 / 72, 1.0 /
    73, 1.0 / 74, 1.0 / 75, 1.0 / 76, 1.0 / 77, 1.0 / 78, 1.0 / 79, 1.0 / 80, 1.0 / 81, 1.0 /
    82, 1.0 / 83, 1.0 / 84, 1.0 / 85, 1.0 / 86, 1.0 / 87, 1.0 / 88, 1.0 / 89, 1.0 / 90, 1.0 /
    91, 1.0 / 92, 1.0 / 93, 1.0 / 94, 1.0 / 95, 1.0 / 96, 1.0 / 97, 1.0 / 98, 1.0 / 99, 1.0 /
    100, 1.0 / 101, 1.0 / 102, 1.0 / 103, 1.0 / 104, 1.0 / 105, 1.0 / 106, 1.0 / 107, 1.0 / 108,
    1.0 / 109, 1.0 / 110, 1.0 / 111, 1.0 / 112, 1.0 / 113, 1.0 / 114, 1.0 / 115, 1.0 / 116, 1.0
    / 117, 1.0 / 118, 1.0 / 119, 1.0 / 120, 1.0 / 121, 1.0 / 122, 1.0 / 123, 1.0 / 124, 1.0 /
    125, 1.0 / 126, 1.0 / 127, 1.0 / 128, 1.0 / 129
};
static inline double rcp(size_t k) { return k < RCP_N ? g_rcp[k] : 1.0 / (double)k; }

/* EXTEND: add a feature with the given fractions at position depth. */
static void extend_path(lp_shap_path *p, size_t depth, double zero, double one, int32_t feat)
{
    p[depth].feature = feat;
    p[depth].zero_fraction = zero;
    p[depth].one_fraction = one;
    p[depth].pweight = depth == 0 ? 1.0 : 0.0;
    double r = rcp(depth + 1);
    for (size_t i = depth; i-- > 0;) {
        p[i + 1].pweight += one * p[i].pweight * (double)(i + 1) * r;
        p[i].pweight = zero * p[i].pweight * (double)(depth - i) * r;
    }
}

/* UNWIND: undo the EXTEND of element idx (the inverse of the recurrence above). */
static void unwind_path(lp_shap_path *p, size_t depth, size_t idx)
{
    double one = p[idx].one_fraction, zero = p[idx].zero_fraction;
    double next = p[depth].pweight, r = rcp(depth + 1), d1 = (double)(depth + 1);
    if (one != 0.0) {
        double ione = 1.0 / one;
        for (size_t i = depth; i-- > 0;) {
            double tmp = p[i].pweight;
            p[i].pweight = next * d1 * rcp(i + 1) * ione;
            next = tmp - p[i].pweight * zero * (double)(depth - i) * r;
        }
    } else {
        double izero = 1.0 / zero;
        for (size_t i = depth; i-- > 0;)
            p[i].pweight = p[i].pweight * d1 * rcp(depth - i) * izero;
    }
    for (size_t i = idx; i < depth; i++) {
        p[i].feature = p[i + 1].feature;
        p[i].zero_fraction = p[i + 1].zero_fraction;
        p[i].one_fraction = p[i + 1].one_fraction;
    }
}

/* UNWOUND_PATH_SUM: total permutation weight of the path with element idx removed. */
static double unwound_sum(const lp_shap_path *p, size_t depth, size_t idx)
{
    double one = p[idx].one_fraction, zero = p[idx].zero_fraction;
    double next = p[depth].pweight, total = 0.0, r = rcp(depth + 1), d1 = (double)(depth + 1);
    if (one != 0.0) {
        double ione = 1.0 / one;
        for (size_t i = depth; i-- > 0;) {
            double tmp = next * d1 * rcp(i + 1) * ione;
            total += tmp;
            next = p[i].pweight - tmp * zero * (double)(depth - i) * r;
        }
    } else if (zero != 0.0) {
        double izero = 1.0 / zero;
        for (size_t i = depth; i-- > 0;)
            total += p[i].pweight * izero * d1 * rcp(depth - i);
    }
    return total;
}

static void recurse(const lp_gbdt_node *nodes, const float *x, double *phi, int32_t node,
                    size_t depth, lp_shap_path *parent, double zero, double one, int32_t feat)
{
    /* this level's copy of the path sits right after the parent's depth + 1 elements */
    lp_shap_path *p = parent + depth + 1;
    if (depth)
        memcpy(p, parent, (depth + 1) * sizeof *p);
    extend_path(p, depth, zero, one, feat);
    const lp_gbdt_node *n = &nodes[node];
    if (n->feature < 0) {
        for (size_t i = 1; i <= depth; i++) {
            double w = unwound_sum(p, depth, i);
            phi[p[i].feature] += w * (p[i].one_fraction - p[i].zero_fraction) * (double)n->value;
        }
        return;
    }
    float v = x[n->feature];
    bool go_left = isnan(v) ? n->default_left != 0 : v <= n->threshold;
    int32_t hot = go_left ? n->left : n->right, cold = go_left ? n->right : n->left;
    double wl, wr;
    child_shares(nodes, n, &wl, &wr);
    double hot_zero = go_left ? wl : wr, cold_zero = go_left ? wr : wl;
    double in_zero = 1.0, in_one = 1.0;
    size_t idx = 0;
    while (idx <= depth && p[idx].feature != n->feature)
        idx++;
    if (idx <= depth) {
        in_zero = p[idx].zero_fraction;
        in_one = p[idx].one_fraction;
        unwind_path(p, depth, idx);
        depth--;
    }
    /* A child that neither x (one fraction 0) nor any cover share (zero fraction 0) reaches
     * adds exactly 0 to every attribution; skipping it also keeps UNWIND from dividing by a
     * zero fraction below it (a zero-cover child, where the reference code gives NaN). */
    if (hot_zero * in_zero != 0.0 || in_one != 0.0)
        recurse(nodes, x, phi, hot, depth + 1, p, hot_zero * in_zero, in_one, n->feature);
    if (cold_zero * in_zero != 0.0)
        recurse(nodes, x, phi, cold, depth + 1, p, cold_zero * in_zero, 0.0, n->feature);
}

/* ---- the fast path: precomputed tables per group of leaves ----------------------------------
 * At a leaf, Algorithm 2's unique path holds each feature split on once, with zero fraction
 * z_j (the product of the cover shares of the path's splits on it) and one fraction b_j in
 * {0, 1} (x follows the path at every split on it). The z_j are fixed by the tree; only the bits
 * b depend on x. So for a leaf with k unique features the contribution
 *   phi[u_j] += UNWOUND_SUM(path(b), j) (b_j - z_j) value
 * takes one of 2^k precomputable values per j (the EXTENDs commute, so the path's order does
 * not matter). Tabulating them is the idea of Yang 2021's Fast TreeSHAP v2.
 *
 * Three things make a row cheap here:
 * - Slots and fail words. A leaf's unique features are numbered ("slots") in the order they
 *   first occur on its path from the root, so the slot of a split depends only on the path
 *   above it. A node's 16-bit fail word (bit s: x left the path at a split on the slot-s
 *   feature) is its parent's word plus the one decision taken there: every node decides once
 *   per row, not once per leaf below it, and a leaf's pattern is b = (2^k - 1) & ~fail.
 * - Groups. The maximal subtrees of height <= LP_TS_GROUP_H (2: at most 3 splits, 4 leaves)
 *   are tabulated together: the sum of their leaves' contributions is a function of the fail
 *   word of the group's root (k_top bits) and of the group's own decisions (one bit each), so
 *   one table row of the union of their features replaces up to four leaf rows. For 64 leaves
 *   of depth 6 that is 16 rows of <= 7 features a tree instead of 64 rows of <= 6, and a
 *   smaller table (2^7 rows of 8 doubles per group against 4 leaves of 2^6 x 6). The row's
 *   last double is the leaf value x reaches in the group (0 elsewhere), so the tree's output
 *   comes free. Row sums regroup Algorithm 2's own terms in double: the attributions match it
 *   to rounding (1e-9 in the tests) and base + sum(phi) == margin as before.
 * - Trees outermost in the batch path (lp_treeshap_batch): one tree's table (~128 KiB for 64
 *   leaves of depth 6) stays in L2 while a block of LP_TS_BLOCK rows uses it, instead of each
 *   row walking all tables (~13 MiB for 100 such trees).
 * A row costs per tree one comparison per node plus one table row per group: O(N + G k)
 * against Algorithm 2's O(L D^2). Trees with a leaf of more than LP_TS_MAX_K unique features, or
 * past LP_TS_MAX_TABLE doubles in all, keep Algorithm 2 (the same tree in both paths gives the
 * same numbers up to rounding; the tests hold them to each other). */

typedef struct leaf_walk {
    const lp_gbdt_node *nodes;
    int32_t path[130];     /* nodes from the root to the current node's parent */
    uint8_t left[130];     /* the direction taken at each */
    size_t depth;
} leaf_walk;

/* The unique features of the path in w (first-occurrence order) into u, their zero fractions
 * into z, and each split's slot; returns k, or LP_TS_MAX_K + 1 when there are more. */
static size_t leaf_features(const leaf_walk *w, int32_t *u, double *z, uint8_t *slot)
{
    size_t k = 0;
    for (size_t i = 0; i < w->depth; i++) {
        const lp_gbdt_node *n = &w->nodes[w->path[i]];
        size_t j = 0;
        while (j < k && u[j] != n->feature)
            j++;
        if (j == k) {
            if (k == LP_TS_MAX_K)
                return LP_TS_MAX_K + 1;
            u[k] = n->feature;
            z[k++] = 1.0;
        }
        double wl, wr;
        child_shares(w->nodes, n, &wl, &wr);
        z[j] *= w->left[i] ? wl : wr;
        slot[i] = (uint8_t)j;
    }
    return k;
}

/* Visit the leaves below node in order; fn gets the walk at each leaf. */
typedef bool (*leaf_fn)(leaf_walk *w, int32_t leaf, void *ctx);
static bool walk(leaf_walk *w, int32_t node, leaf_fn fn, void *ctx)
{
    const lp_gbdt_node *n = &w->nodes[node];
    if (n->feature < 0)
        return fn(w, node, ctx);
    if (w->depth >= 128)
        return false;
    w->path[w->depth] = node;
    w->left[w->depth] = 1;
    w->depth++;
    bool ok = walk(w, n->left, fn, ctx);
    w->left[w->depth - 1] = 0;
    ok = ok && walk(w, n->right, fn, ctx);
    w->depth--;
    return ok;
}

/* The (2^k, k) contributions of a leaf of value v with unique features u (k,) and zero
 * fractions z (k,), for every pattern b of one fractions: T[b k + j] for feature u[j]. */
static void leaf_table(const int32_t *u, const double *z, size_t k, double v, double *T)
{
    lp_shap_path p[LP_TS_MAX_K + 2];
    for (uint32_t b = 0; b < (1u << k); b++) {
        extend_path(p, 0, 1.0, 1.0, -1);
        for (size_t j = 0; j < k; j++)
            extend_path(p, j + 1, z[j], (double)((b >> j) & 1u), u[j]);
        for (size_t j = 0; j < k; j++) {
            double one = (double)((b >> j) & 1u);
            T[(size_t)b * k + j] = unwound_sum(p, k, j + 1) * (one - z[j]) * v;
        }
    }
}

/* The plan of one tree: its renumbering, groups and leaves (scratch of the precompute). */
typedef struct ts_leafinfo {
    uint32_t group, k, n_sub;
    int32_t u[LP_TS_MAX_K];
    double z[LP_TS_MAX_K];
    uint8_t map[LP_TS_MAX_K];          /* leaf slot -> column of the group's row */
    uint8_t sub_pos[LP_TS_GROUP_SPLITS], sub_left[LP_TS_GROUP_SPLITS];
    uint8_t sub_slot[LP_TS_GROUP_SPLITS];
    double value;
} ts_leafinfo;

typedef struct ts_groupinfo {
    uint32_t k_top, n_sub, nu, leaf0, n_leaves;
    int32_t u[LP_TS_MAX_K + LP_TS_GROUP_SPLITS];
} ts_groupinfo;

typedef struct ts_plan {
    uint32_t *height, *parent, *group, *id; /* (n_nodes,) */
    uint8_t *slot;                          /* (n_nodes,) top: slot; sub: bit position */
    ts_leafinfo *leaf;                      /* (n_leaves,) in depth-first order */
    ts_groupinfo *grp;                      /* (n_groups,) */
    uint32_t n_top, n_leaves, n_groups;
    uint64_t feats, tab;                    /* sizes of the tree's columns and tables */
    double *scratch;                        /* (2^LP_TS_MAX_K, LP_TS_MAX_K) one leaf's table */
} ts_plan;

static bool plan_leaf(leaf_walk *w, int32_t leaf, void *ctx)
{
    ts_plan *p = ctx;
    ts_leafinfo *L = &p->leaf[p->n_leaves];
    uint8_t slot[130];
    size_t k = leaf_features(w, L->u, L->z, slot);
    if (k > LP_TS_MAX_K)
        return false;
    /* the group root: the first node of the path (or the leaf) low enough */
    size_t pm = 0;
    while (pm < w->depth && p->height[w->path[pm]] > LP_TS_GROUP_H)
        pm++;
    uint32_t k_top = 0;
    for (size_t i = 0; i < pm; i++) {
        p->slot[w->path[i]] = slot[i];
        if ((uint32_t)slot[i] + 1 > k_top)
            k_top = (uint32_t)slot[i] + 1;
    }
    uint32_t g = p->group[pm < w->depth ? w->path[pm] : leaf];
    ts_groupinfo *G = &p->grp[g];
    if (!G->n_leaves) {
        G->leaf0 = p->n_leaves;
        G->k_top = k_top;
        G->nu = k_top;
        memcpy(G->u, L->u, k_top * sizeof *G->u);
    }
    G->n_leaves++;
    L->group = g;
    L->k = (uint32_t)k;
    L->value = w->nodes[leaf].value;
    L->n_sub = (uint32_t)(w->depth - pm);
    for (size_t i = pm; i < w->depth; i++) {
        L->sub_pos[i - pm] = p->slot[w->path[i]];
        L->sub_left[i - pm] = w->left[i];
        L->sub_slot[i - pm] = slot[i];
    }
    for (size_t s = 0; s < k; s++) {
        uint32_t c = 0;
        while (c < G->nu && G->u[c] != L->u[s])
            c++;
        if (c == G->nu)
            G->u[G->nu++] = L->u[s];
        L->map[s] = (uint8_t)c;
    }
    p->n_leaves++;
    return true;
}

/* Doubles in a table row of a group with nu features: the contributions, then the leaf value,
 * padded to whole 64-byte lines so that a row read is one cache line (nu <= 7). */
static uint32_t row_width(uint32_t nu) { return (nu + 8u) & ~7u; }

/* Plan tree (nodes, nn): groups are the maximal subtrees of height <= LP_TS_GROUP_H, the "top"
 * nodes those above them. false when a leaf has more than LP_TS_MAX_K unique features or the
 * tree is deeper than the walk allows. */
static bool plan_tree(ts_plan *p, leaf_walk *w, const lp_gbdt_node *nodes, size_t nn)
{
    p->n_top = p->n_leaves = p->n_groups = 0;
    p->feats = p->tab = 0;
    for (size_t i = nn; i-- > 0;) {
        const lp_gbdt_node *n = &nodes[i];
        uint32_t hl = n->feature < 0 ? 0 : p->height[n->left];
        uint32_t hr = n->feature < 0 ? 0 : p->height[n->right];
        p->height[i] = n->feature < 0 ? 0 : 1 + (hl > hr ? hl : hr);
        if (n->feature >= 0)
            p->parent[n->left] = p->parent[n->right] = (uint32_t)i;
    }
    for (size_t i = 0; i < nn; i++) {
        bool low = p->height[i] <= LP_TS_GROUP_H;
        if (low && (i == 0 || p->height[p->parent[i]] > LP_TS_GROUP_H)) {
            p->group[i] = p->n_groups;
            p->grp[p->n_groups++] = (ts_groupinfo){0};
        } else if (low) {
            p->group[i] = p->group[p->parent[i]];
        }
        if (nodes[i].feature >= 0 && !low)
            p->id[i] = p->n_top++;
    }
    for (size_t i = 0; i < nn; i++) {
        if (nodes[i].feature < 0 || p->height[i] > LP_TS_GROUP_H)
            continue;
        p->slot[i] = (uint8_t)(p->grp[p->group[i]].n_sub++);
    }
    w->nodes = nodes;
    w->depth = 0;
    if (!walk(w, 0, plan_leaf, p))
        return false;
    for (uint32_t g = 0; g < p->n_groups; g++) {
        ts_groupinfo *G = &p->grp[g];
        p->feats += G->nu;
        p->tab += ((uint64_t)1 << (G->k_top + G->n_sub)) * row_width(G->nu);
    }
    return true;
}

/* Fill tree t's renumbered nodes, groups and tables from its plan (sizes reserved before). */
static void fill_tree(lp_explainer *e, ts_plan *p, const lp_gbdt_node *nodes, size_t nn,
                      const lp_ts_tree *tr, uint64_t feat, uint64_t tab)
{
    lp_ts_node *out = e->ts_nodes + tr->node0;
    lp_ts_group *gs = e->ts_groups + tr->group0;
    for (size_t i = 0; i < nn; i++) {
        const lp_gbdt_node *n = &nodes[i];
        if (n->feature < 0)
            continue;
        if (p->height[i] > LP_TS_GROUP_H) {
            /* a top node: its children are top nodes or group roots (their words) */
            uint32_t l = (uint32_t)n->left, r = (uint32_t)n->right;
            out[p->id[i]] = (lp_ts_node){
                n->feature, n->threshold,
                p->height[l] > LP_TS_GROUP_H ? p->id[l] : p->n_top + p->group[l],
                p->height[r] > LP_TS_GROUP_H ? p->id[r] : p->n_top + p->group[r], p->slot[i],
                n->default_left != 0};
        } else {
            /* a split inside a group: its decision is bit k_top + its position of the word */
            lp_ts_group *og = &gs[p->group[i]];
            uint32_t s = p->slot[i];
            og->feature[s] = n->feature;
            og->threshold[s] = n->threshold;
            og->dflt[s] = n->default_left != 0;
            og->bit[s] = (uint8_t)(p->grp[p->group[i]].k_top + s);
        }
    }
    for (uint32_t g = 0; g < p->n_groups; g++) {
        const ts_groupinfo *G = &p->grp[g];
        lp_ts_group *og = &gs[g];
        og->n_split = G->n_sub;
        og->full = (uint16_t)((1u << G->k_top) - 1u);
        size_t w = row_width(G->nu), rows = (size_t)1 << (G->k_top + G->n_sub);
        og->cols = (uint16_t)G->nu;
        og->stride = (uint16_t)w;
        og->feat = (uint32_t)feat;
        og->table = (uint32_t)tab;
        memcpy(e->ts_feat + feat, G->u, G->nu * sizeof *G->u);
        double *T = e->ts_tab + tab;
        memset(T, 0, rows * w * sizeof *T);
        for (uint32_t l = G->leaf0; l < G->leaf0 + G->n_leaves; l++) {
            const ts_leafinfo *L = &p->leaf[l];
            uint32_t k = L->k, all = (1u << k) - 1u;
            leaf_table(L->u, L->z, k, L->value, p->scratch);
            for (size_t idx = 0; idx < rows; idx++) {
                /* the leaf's pattern: the top slots from the index, the rest followed unless
                 * a split of the group on the way to the leaf goes the other way */
                uint32_t b = ((uint32_t)idx & og->full) | (all & ~(uint32_t)og->full);
                uint32_t dec = (uint32_t)(idx >> G->k_top);
                for (uint32_t s = 0; s < L->n_sub; s++)
                    if (((dec >> L->sub_pos[s]) & 1u) != L->sub_left[s])
                        b &= ~(1u << L->sub_slot[s]);
                const double *src = p->scratch + (size_t)b * k;
                double *row = T + idx * w;
                for (uint32_t j = 0; j < k; j++)
                    row[L->map[j]] += src[j];
                if (b == all)
                    row[w - 1] += L->value;
            }
        }
        feat += G->nu;
        tab += rows * w;
    }
}

void lp_treeshap_free(lp_explainer *e)
{
    free(e->ts_trees);
    free(e->ts_nodes);
    free(e->ts_groups);
    free(e->ts_feat);
    free(e->ts_tab);
    e->ts_trees = NULL;
    e->ts_nodes = NULL;
    e->ts_groups = NULL;
    e->ts_feat = NULL;
    e->ts_tab = NULL;
}

static void plan_free(ts_plan *p)
{
    if (!p)
        return;
    free(p->height);
    free(p->parent);
    free(p->group);
    free(p->id);
    free(p->slot);
    free(p->leaf);
    free(p->grp);
    free(p->scratch);
    free(p);
}

static ts_plan *plan_new(size_t max_nodes)
{
    ts_plan *p = lp_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    size_t n = max_nodes + 1;
    p->height = lp_mallocarray(n, sizeof *p->height);
    p->parent = lp_calloc(n, sizeof *p->parent);
    p->group = lp_calloc(n, sizeof *p->group);
    p->id = lp_calloc(n, sizeof *p->id);
    p->slot = lp_calloc(n, 1);
    p->leaf = lp_mallocarray(n, sizeof *p->leaf);
    p->grp = lp_mallocarray(n, sizeof *p->grp);
    p->scratch = lp_mallocarray((size_t)1 << LP_TS_MAX_K, LP_TS_MAX_K * sizeof(double));
    if (!p->height || !p->parent || !p->group || !p->id || !p->slot || !p->leaf || !p->grp ||
        !p->scratch) {
        plan_free(p);
        return NULL;
    }
    return p;
}

lp_status lp_treeshap_precompute(lp_explainer *e, lp_err *err)
{
    size_t nt = lp_gbdt_n_trees(e->gbdt);
    if (!nt)
        return LP_OK;
    e->ts_trees = lp_calloc(nt, sizeof *e->ts_trees);
    leaf_walk *w = lp_calloc(1, sizeof *w);
    ts_plan *p = plan_new(e->max_nodes);
    lp_status st = LP_OK;
    if (!e->ts_trees || !w || !p) {
        st = lp_err_set(err, LP_ENOMEM, "treeshap: out of memory");
        goto done;
    }
    uint64_t n_top = 0, groups = 0, feats = 0, tab = 0;
    for (size_t t = 0; t < nt; t++) {
        size_t nn = 0;
        const lp_gbdt_node *nodes = lp_gbdt_tree(e->gbdt, t, &nn);
        /* offsets are 32-bit: the table budget keeps them far below 2^32 */
        if (!nn || nn >= ((size_t)1 << 31) || !plan_tree(p, w, nodes, nn) ||
            tab + p->tab > LP_TS_MAX_TABLE)
            continue;
        lp_ts_tree *tr = &e->ts_trees[t];
        *tr = (lp_ts_tree){(uint32_t)n_top, p->n_top, (uint32_t)groups, p->n_groups, true};
        n_top += p->n_top;
        groups += p->n_groups;
        feats += p->feats;
        tab += p->tab;
    }
    e->ts_nodes = lp_mallocarray(n_top + 1, sizeof *e->ts_nodes);
    e->ts_groups = lp_mallocarray(groups + 1, sizeof *e->ts_groups);
    e->ts_feat = lp_mallocarray(feats + 1, sizeof *e->ts_feat);
    /* (tab + 8) doubles on a cache line: every table row starts on one */
    e->ts_tab = tab < ((uint64_t)1 << 40) ? aligned_alloc(64, (tab + 8) * sizeof(double)) : NULL;
    if (!e->ts_nodes || !e->ts_groups || !e->ts_feat || !e->ts_tab) {
        st = lp_err_set(err, LP_ENOMEM, "treeshap: out of memory for %llu table entries",
                        (unsigned long long)tab);
        goto done;
    }
    feats = tab = 0;
    for (size_t t = 0; t < nt; t++) {
        if (!e->ts_trees[t].fast)
            continue;
        size_t nn = 0;
        const lp_gbdt_node *nodes = lp_gbdt_tree(e->gbdt, t, &nn);
        plan_tree(p, w, nodes, nn);
        fill_tree(e, p, nodes, nn, &e->ts_trees[t], feats, tab);
        feats += p->feats;
        tab += p->tab;
    }
done:
    plan_free(p);
    free(w);
    if (st)
        lp_treeshap_free(e);
    return st;
}

/* The direction x takes at a split: 1 = left (x <= threshold, or missing and dflt). */
static inline unsigned goes_left(float v, float threshold, unsigned dflt)
{
    return (unsigned)(v <= threshold) | ((unsigned)(isnan(v) != 0) & dflt);
}

/* One precomputed tree on one row: phi (d,) += its contributions, returns its leaf value for
 * x. word (n_top + n_groups,) is scratch: the fail masks of the top nodes, then one per group
 * (its root's fail mask). */
static double fast_tree(const lp_explainer *e, const lp_ts_tree *tr, uint16_t *word,
                        const float *x, double *phi)
{
    const lp_ts_node *nd = e->ts_nodes + tr->node0;
    word[0] = 0;
    for (uint32_t i = 0; i < tr->n_top; i++) {
        const lp_ts_node *n = &nd[i];
        unsigned left = goes_left(x[n->feature], n->threshold, n->dflt), f = word[i];
        word[n->left] = (uint16_t)(f | (left ^ 1u) << n->slot);
        word[n->right] = (uint16_t)(f | left << n->slot);
    }
    const lp_ts_group *G = e->ts_groups + tr->group0;
    const uint16_t *gw = word + tr->n_top;
    double value = 0.0;
    for (uint32_t g = 0; g < tr->n_groups; g++, G++) {
        unsigned w = gw[g] ^ G->full;
        for (uint32_t s = 0; s < G->n_split; s++)
            w |= goes_left(x[G->feature[s]], G->threshold[s], G->dflt[s]) << G->bit[s];
        const double *row = e->ts_tab + G->table + (size_t)w * G->stride;
        const int32_t *u = e->ts_feat + G->feat;
        for (uint32_t j = 0; j < G->cols; j++)
            phi[u[j]] += row[j];
        value += row[G->stride - 1];
    }
    return value;
}

/* Algorithm 2 on one tree: phi += its contributions, returns its leaf value for x. */
static double slow_tree(const lp_gbdt_node *nodes, lp_shap_path *path, const float *x,
                        double *phi)
{
    /* the root level's path element 0 is the "no feature" sentinel (feature -1) */
    path[0].feature = -1;
    recurse(nodes, x, phi, 0, 0, path, 1.0, 1.0, -1);
    int32_t i = 0;
    while (nodes[i].feature >= 0) {
        float v = x[nodes[i].feature];
        bool l = isnan(v) ? nodes[i].default_left != 0 : v <= nodes[i].threshold;
        i = l ? nodes[i].left : nodes[i].right;
    }
    return nodes[i].value;
}

double lp_treeshap_row(const lp_explainer *e, lp_shap_path *path, uint16_t *fail,
                       const float *x, size_t k, double *phi)
{
    size_t nt = lp_gbdt_n_trees(e->gbdt), no = e->n_outputs;
    double margin = lp_gbdt_base_score(e->gbdt, k);
    for (size_t t = k; t < nt; t += no) {
        if (e->ts_trees && e->ts_trees[t].fast) {
            margin += fast_tree(e, &e->ts_trees[t], fail, x, phi);
            continue;
        }
        size_t nn = 0;
        const lp_gbdt_node *nodes = lp_gbdt_tree(e->gbdt, t, &nn);
        if (nn)
            margin += slow_tree(nodes, path, x, phi);
    }
    return margin;
}

/* Rows [r0, r1) of the batch, trees outermost (see the fast path's note). */
static void batch_block(const lp_explainer *e, const float *X, size_t r0, size_t r1, size_t k,
                        const int32_t *ks, lp_shap_path *path, uint16_t *fail, double *phi,
                        double *mg)
{
    size_t nt = lp_gbdt_n_trees(e->gbdt), no = e->n_outputs, d = e->d;
    memset(phi + r0 * d, 0, (r1 - r0) * d * sizeof(double));
    for (size_t r = r0; r < r1; r++)
        mg[r - r0] = lp_gbdt_base_score(e->gbdt, ks ? (size_t)ks[r] : k);
    for (size_t t = ks ? 0 : k; t < nt; t += ks ? 1 : no) {
        size_t c = t % no, nn = 0;
        const lp_gbdt_node *nodes = lp_gbdt_tree(e->gbdt, t, &nn);
        bool fast = e->ts_trees && e->ts_trees[t].fast;
        if (!nn)
            continue;
        for (size_t r = r0; r < r1; r++) {
            if (ks && (size_t)ks[r] != c)
                continue;
            const float *x = X + r * d;
            mg[r - r0] += fast ? fast_tree(e, &e->ts_trees[t], fail, x, phi + r * d)
                               : slow_tree(nodes, path, x, phi + r * d);
        }
    }
}

lp_status lp_treeshap_batch(const lp_explainer *e, const float *X, size_t n, size_t k,
                            const int32_t *ks, int threads, double *phi, double *margin,
                            lp_err *err)
{
    if (!ks && k >= e->n_outputs)
        return lp_err_set(err, LP_EINVAL, "explain: output %zu out of range (%zu outputs)", k,
                          e->n_outputs);
    for (size_t i = 0; ks && i < n; i++)
        if (ks[i] < 0 || (size_t)ks[i] >= e->n_outputs)
            return lp_err_set(err, LP_EINVAL, "explain: row %zu: output %d out of range (%zu "
                              "outputs)", i, (int)ks[i], e->n_outputs);
    size_t nb = (n + LP_TS_BLOCK - 1) / LP_TS_BLOCK;
    int nth = threads > 0 ? threads : omp_get_max_threads();
    if (nb < 2)
        nth = 1;
    int failed = 0;
#pragma omp parallel num_threads(nth) reduction(| : failed)
    {
        lp_shap_path *path = lp_calloc(lp_treeshap_path_len(e->max_depth), sizeof *path);
        uint16_t *fail = lp_calloc(e->max_nodes + 1, sizeof *fail);
        double *mg = lp_mallocarray(LP_TS_BLOCK, sizeof *mg);
        if (!path || !fail || !mg)
            failed = 1;
#pragma omp for schedule(dynamic, 1)
        for (long b = 0; b < (long)nb; b++) {
            if (failed)
                continue;
            size_t r0 = (size_t)b * LP_TS_BLOCK;
            size_t r1 = r0 + LP_TS_BLOCK < n ? r0 + LP_TS_BLOCK : n;
            batch_block(e, X, r0, r1, k, ks, path, fail, phi, mg);
            if (margin)
                memcpy(margin + r0, mg, (r1 - r0) * sizeof *mg);
        }
        free(path);
        free(fail);
        free(mg);
    }
    if (failed)
        return lp_err_set(err, LP_ENOMEM, "explain: out of memory for %zu rows", n);
    return LP_OK;
}
