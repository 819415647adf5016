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
/* f(x) of an activation on the host, as the backend computes it (float). */
float lp_nn_act_scalar(lp_act_kind kind, float x);

#endif
