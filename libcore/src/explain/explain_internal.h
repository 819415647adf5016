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

struct lp_explainer {
    const lp_model *model;
    lp_model_kind kind;
    size_t d, n_outputs;
    /* gbdt */
    const lp_gbdt *gbdt;
    size_t max_depth;      /* deepest tree (edges from root to leaf) */
    double *base;          /* (n_outputs,) base score + sum of tree expectations */
    /* linear */
    const float *coef;     /* (n_outputs, d) */
    const float *intercept;/* (n_outputs,) */
    double *mean;          /* (d,) background mean, zeros by default */
};

struct lp_explain_ws {
    const lp_explainer *owner;
    size_t cap;            /* path elements */
    lp_shap_path *path;
};

/* TreeSHAP set-up for e->gbdt: max depth and base values. LP_ENOMEM. */
lp_status lp_treeshap_init(lp_explainer *e, lp_err *err);
/* Path elements a workspace needs for trees of depth max_depth. */
size_t lp_treeshap_path_len(size_t max_depth);
/* Accumulate the attributions of output k for x into phi (d,) (not cleared), returning the
 * margin of output k (base included). */
double lp_treeshap_row(const lp_explainer *e, lp_shap_path *path, const float *x, size_t k,
                       double *phi);
/* Cover-weighted mean leaf value of one tree (the path-dependent E[f_t]). */
double lp_treeshap_tree_mean(const lp_gbdt_node *nodes, size_t n_nodes);

#endif
