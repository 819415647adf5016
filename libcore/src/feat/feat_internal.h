/*
 * feat_internal.h - the fitted state of scalers, one-hot encoders and PCA, shared inside the
 * feat module so the pipeline can serialise it. Not public.
 */
#ifndef LEPTON_FEAT_INTERNAL_H
#define LEPTON_FEAT_INTERNAL_H

#include "lepton/feat.h"
#include "text/text_internal.h"

struct lp_scaler {
    lp_scaler_opts o;
    size_t d;
    double *center; /* (d,) */
    double *scale;  /* (d,) never 0 */
    double shift;
};

struct lp_onehot {
    lp_onehot_opts o;
    lp_strmap cats;   /* every category seen at fit, sorted; id -> output column in out_col */
    uint32_t *out_col; /* (cats.n,) */
    size_t n_out;
    bool has_infrequent; /* the last output is the infrequent group */
    char **out_name;  /* (n_out,) category of each output, NULL for infrequent (borrowed) */
};

struct lp_pca {
    size_t d, k;
    double *mean;  /* (d,) */
    double *comp;  /* (k, d) */
    double *ev, *evr, *sv; /* (k,) */
};

/* Allocate an empty scaler / onehot / pca of the given shape (arrays zeroed); NULL on failure. */
lp_scaler *lp_scaler_alloc(const lp_scaler_opts *o, size_t d);
lp_pca *lp_pca_alloc(size_t d, size_t k);
/* Rebuild out_col / out_name bookkeeping after out_col is filled; LP_ENOMEM on failure. */
lp_status lp_onehot_finish(lp_onehot *oh);

#endif
