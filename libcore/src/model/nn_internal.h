/*
 * nn_internal.h - private to the nn files (nn.c, nn_layers.c, nn_io.c): the lp_nn struct and
 * helpers they share. Not for tests or other modules: they use nn.h.
 */
#ifndef LEPTON_MODEL_NN_INTERNAL_H
#define LEPTON_MODEL_NN_INTERNAL_H

#include "model/nn.h"

#define LP_NN_MAX_HIDDEN 64
#define LP_NN_MAX_WIDTH 1048576
#define LP_NN_MAX_OUTPUTS 65536

struct lp_nn {
    lp_nn_opts o; /* copy; its strings point at the fields below */
    char *hidden, *activation, *backend_name;
    float *class_w_host; /* (n_out) or NULL */
    const lp_backend *be;
    size_t d, n_out;
    lp_nn_layer *layers;
    size_t n_layers;
    lp_param_layout *lay;
    size_t n_block;   /* floats in each block (with alignment gaps) */
    size_t n_packed;  /* parameters without gaps */
    size_t max_width; /* widest of d and every layer output */
    lp_dbuf params;   /* (n_block) on the backend */
    float *host;      /* (n_block) host mirror of params */
    char *arch, *input_shape, *augment; /* copies of the opts strings */
    size_t n_state;     /* batch-norm running statistics */
    lp_dbuf state;      /* (n_state) on the backend */
    float *state_host;  /* (n_state) host mirror */
    lp_dbuf best_state; /* (n_state) state of the best epoch */
    size_t ws_row, ws_fixed, max_plane; /* workspace per row / per call; widest h*w */
    lp_dbuf ws, ones;   /* training workspace (cap rows) and ones */

    /* training state, allocated on first use */
    lp_dbuf grads, opt_m, opt_v, best, sq, red, class_w;
    size_t cap;       /* rows the batch buffers hold */
    lp_dbuf acts;     /* acts of layer i at act_off[i] ((cap, width_i)); i = 0 is
                         the input batch */
    size_t *act_off;  /* (n_layers + 1) */
    lp_dbuf g0, g1;   /* (cap, max_width) gradient ping-pong */
    lp_dbuf yb;       /* (cap, n_out) float targets (BCE, MSE) */
    int32_t *tb;      /* (cap) int32 targets (SOFTMAX_XENT), device */
    float *stage;     /* host staging (cap, d) */
    float *stage_y;   /* host staging (cap, n_out) */
    int32_t *stage_t; /* host staging (cap) */
    int32_t *tb2;       /* (cap) device: the partner rows' classes of a mixup batch */
    int32_t *stage_t2;  /* host staging (cap) */
    double mix_lam;     /* lambda of the staged batch's mixup; 1 when not mixed */

    lp_dbuf ema, ema_state; /* (n_block), (n_state): the averaged weights (opts.ema_decay) */
    bool ema_on;            /* lp_nn_train is averaging: step_staged updates ema */
    uint64_t ema_steps;     /* averaging updates since the start of the lp_nn_train call */

    uint64_t step;
    size_t epochs_run, best_epoch;
    double best_valid;
    double *hist;
    size_t n_hist, cap_hist;
};

/* Parameters (packed) of the architecture d, opts->hidden, opts->n_outputs, without building it
 * (a loader checks a blob's count before allocating). LP_EINVAL for a bad hidden spec. */
lp_status lp_nn_arch_params(size_t d, const lp_nn_opts *o, uint64_t *n, lp_err *err);
/* The table of a layer kind; NULL for an unknown kind. */
const lp_nn_layer_ops *lp_nn_layer_ops_of(lp_nn_layer_kind kind);
/* The tables of the image kinds (nn_conv.c); NULL for others. */
const lp_nn_layer_ops *lp_nn_conv_layer_ops_of(lp_nn_layer_kind kind);

/* One parsed arch token (nn_arch.c). */
typedef struct lp_nn_spec {
    lp_nn_layer_kind kind;
    size_t width;  /* DENSE: units; CONV2D: filters */
    size_t k, s;   /* CONV2D / pools: window and stride */
    bool bn;       /* CONV2D / DENSE: followed by batch norm */
} lp_nn_spec;
#define LP_NN_MAX_SPEC 128
/* Parse opts->arch (or hidden + dropout when arch is empty) into specs (at most
 * LP_NN_MAX_SPEC, the final dense excluded); *k gets the count. Shapes are checked by
 * lp_nn_plan. LP_EINVAL naming the token. */
lp_status lp_nn_parse_arch(const lp_nn_opts *o, lp_nn_spec *specs, size_t *k, lp_err *err);
/* Parse "CxHxW" (NULL or "" gives (d, 1, 1)); checks C*H*W == d. */
lp_status lp_nn_parse_shape(const char *s, size_t d, size_t *c, size_t *h, size_t *w,
                            lp_err *err);
/* Lay out the whole layer list for input width d: fill layers (capacity cap, may be NULL to
 * count only) with kinds, shapes, windows and workspace sizes, without parameters; *n_layers
 * gets the count, *n_params the packed parameter count, *n_state the state floats. LP_EINVAL
 * when a window does not fit its input, naming the token. */
lp_status lp_nn_plan(size_t d, const lp_nn_opts *o, lp_nn_layer *layers, size_t cap,
                     size_t *n_layers, uint64_t *n_params, size_t *n_state, lp_err *err);
/* f(x) of an activation on the host, as the backend computes it (float). */
float lp_nn_act_scalar(lp_act_kind kind, float x);

#endif
