/*
 * nn.c - the nn family (nn.h): options, building the layer list from a spec, seeded
 * initialisation, the parameter / gradient / optimizer-state blocks, the training loop
 * (mini-batches, schedules, clipping, early stopping) and prediction.
 *
 * Every tensor op goes through the backend table m->be; host code only stages batches,
 * converts labels and applies the output link (softmax / sigmoid) to predictions already
 * copied back. Blocks have alignment gaps between tensors (lp_param_layout); the gaps of the
 * gradient block are never written, stay zero, and so leave norms and optimizer steps over the
 * whole block unchanged.
 *
 * Not here: the layer kinds (nn_layers.c), saving and loading (nn_io.c).
 */
#include "model/nn_internal.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        lp_status st_ = (expr);                                                                    \
        if (st_ != LP_OK)                                                                          \
            return st_;                                                                            \
    } while (0)

/* Rows per chunk in batch prediction and validation passes. */
#define PREDICT_CHUNK 1024

lp_nn_opts lp_nn_opts_default(void)
{
    lp_nn_opts o;
    memset(&o, 0, sizeof o);
    o.hidden = "64";
    o.activation = "relu";
    o.dropout = 0.0f;
    o.loss = LP_NN_LOSS_SOFTMAX_XENT;
    o.n_outputs = 2;
    o.class_weight = NULL;
    o.optimizer = LP_NN_OPTIM_ADAMW;
    o.lr = 1e-3;
    o.momentum = 0.9;
    o.nesterov = false;
    o.beta1 = 0.9;
    o.beta2 = 0.999;
    o.eps = 1e-8;
    o.weight_decay = 0.0;
    o.schedule = LP_NN_SCHED_CONSTANT;
    o.step_size = 1000;
    o.gamma = 0.1;
    o.min_lr = 0.0;
    o.total_steps = 0;
    o.warmup_steps = 0;
    o.epochs = 10;
    o.batch_size = 32;
    o.shuffle = true;
    o.patience = 0;
    o.clip_norm = 0.0;
    o.seed = 0;
    o.backend = "cpu";
    o.n_threads = 0;
    o.arch = NULL;
    o.input_shape = NULL;
    o.augment = NULL;
    o.ema_decay = 0.0;
    o.mixup_alpha = 0.0;
    return o;
}

lp_status lp_nn_opts_check(const lp_nn_opts *o, lp_err *err)
{
    if (!o)
        return lp_err_set(err, LP_EINVAL, "nn: options are NULL");
    size_t k;
    lp_nn_spec specs[LP_NN_MAX_SPEC];
    TRY(lp_nn_parse_arch(o, specs, &k, err));
    if (o->augment && *o->augment) {
        float probe = 0.0f;
        lp_nn_opts q = *o;
        q.input_shape = "1x1x1";
        TRY(lp_nn_augment(&q, &probe, 0, 0, 0, err));
    }
    lp_act_kind act;
    lp_err e2;
    if (lp_act_kind_parse(o->activation ? o->activation : "", &act, &e2))
        return lp_err_set(err, LP_EINVAL,
                          "nn: activation=\"%s\": must be one of relu, tanh, sigmoid, gelu, "
                          "gelu_tanh",
                          o->activation ? o->activation : "(null)");
    if (!(o->dropout >= 0.0f && o->dropout < 1.0f))
        return lp_err_set(err, LP_EINVAL, "nn: dropout=%g: must be in [0, 1)", (double)o->dropout);
    switch (o->loss) {
    case LP_NN_LOSS_SOFTMAX_XENT:
        if (o->n_outputs < 2 || o->n_outputs > LP_NN_MAX_OUTPUTS)
            return lp_err_set(err, LP_EINVAL,
                              "nn: n_outputs=%d: softmax cross-entropy needs classes in [2, %d]",
                              o->n_outputs, LP_NN_MAX_OUTPUTS);
        break;
    case LP_NN_LOSS_BCE:
        if (o->n_outputs != 1)
            return lp_err_set(err, LP_EINVAL,
                              "nn: n_outputs=%d: binary cross-entropy has exactly 1 output",
                              o->n_outputs);
        break;
    case LP_NN_LOSS_MSE:
        if (o->n_outputs < 1 || o->n_outputs > LP_NN_MAX_OUTPUTS)
            return lp_err_set(err, LP_EINVAL, "nn: n_outputs=%d: must be in [1, %d]", o->n_outputs,
                              LP_NN_MAX_OUTPUTS);
        break;
    default:
        return lp_err_set(err, LP_EINVAL,
                          "nn: loss=%d: must be softmax_xent (0), bce (1) or mse (2)",
                          (int)o->loss);
    }
    if (o->class_weight) {
        if (o->loss != LP_NN_LOSS_SOFTMAX_XENT)
            return lp_err_set(err, LP_EINVAL,
                              "nn: class_weight: only the softmax cross-entropy loss takes class "
                              "weights");
        for (int c = 0; c < o->n_outputs; c++)
            if (!(o->class_weight[c] > 0.0f) || !isfinite(o->class_weight[c]))
                return lp_err_set(err, LP_EINVAL, "nn: class_weight[%d]=%g: must be finite and > 0",
                                  c, (double)o->class_weight[c]);
    }
    if (o->optimizer != LP_NN_OPTIM_ADAMW && o->optimizer != LP_NN_OPTIM_SGD)
        return lp_err_set(err, LP_EINVAL, "nn: optimizer=%d: must be adamw (0) or sgd (1)",
                          (int)o->optimizer);
    if (!(o->lr > 0.0) || !isfinite(o->lr))
        return lp_err_set(err, LP_EINVAL, "nn: lr=%g: must be finite and > 0", o->lr);
    if (!(o->momentum >= 0.0 && o->momentum < 1.0))
        return lp_err_set(err, LP_EINVAL, "nn: momentum=%g: must be in [0, 1)", o->momentum);
    if (o->nesterov && o->optimizer == LP_NN_OPTIM_SGD && o->momentum == 0.0)
        return lp_err_set(err, LP_EINVAL, "nn: nesterov=true: needs momentum > 0");
    if (!(o->beta1 >= 0.0 && o->beta1 < 1.0))
        return lp_err_set(err, LP_EINVAL, "nn: beta1=%g: must be in [0, 1)", o->beta1);
    if (!(o->beta2 >= 0.0 && o->beta2 < 1.0))
        return lp_err_set(err, LP_EINVAL, "nn: beta2=%g: must be in [0, 1)", o->beta2);
    if (!(o->eps > 0.0) || !isfinite(o->eps))
        return lp_err_set(err, LP_EINVAL, "nn: eps=%g: must be finite and > 0", o->eps);
    if (!(o->weight_decay >= 0.0) || !isfinite(o->weight_decay))
        return lp_err_set(err, LP_EINVAL, "nn: weight_decay=%g: must be finite and >= 0",
                          o->weight_decay);
    if (o->schedule != LP_NN_SCHED_CONSTANT && o->schedule != LP_NN_SCHED_STEP &&
        o->schedule != LP_NN_SCHED_COSINE)
        return lp_err_set(err, LP_EINVAL,
                          "nn: schedule=%d: must be constant (0), step (1) or cosine (2)",
                          (int)o->schedule);
    if (o->step_size < 1)
        return lp_err_set(err, LP_EINVAL, "nn: step_size=%d: must be >= 1", o->step_size);
    if (!(o->gamma > 0.0 && o->gamma <= 1.0))
        return lp_err_set(err, LP_EINVAL, "nn: gamma=%g: must be in (0, 1]", o->gamma);
    if (!(o->min_lr >= 0.0 && o->min_lr <= o->lr))
        return lp_err_set(err, LP_EINVAL, "nn: min_lr=%g: must be in [0, lr=%g]", o->min_lr, o->lr);
    if (o->total_steps < 0)
        return lp_err_set(err, LP_EINVAL, "nn: total_steps=%ld: must be >= 0 (0 = from epochs)",
                          o->total_steps);
    if (o->warmup_steps < 0)
        return lp_err_set(err, LP_EINVAL, "nn: warmup_steps=%d: must be >= 0", o->warmup_steps);
    if (o->epochs < 1 || o->epochs > 100000)
        return lp_err_set(err, LP_EINVAL, "nn: epochs=%d: must be in [1, 100000]", o->epochs);
    if (o->batch_size < 1 || o->batch_size > LP_NN_MAX_WIDTH)
        return lp_err_set(err, LP_EINVAL, "nn: batch_size=%d: must be in [1, %d]", o->batch_size,
                          LP_NN_MAX_WIDTH);
    if (o->patience < 0)
        return lp_err_set(err, LP_EINVAL, "nn: patience=%d: must be >= 0 (0 = off)", o->patience);
    if (!(o->clip_norm >= 0.0) || !isfinite(o->clip_norm))
        return lp_err_set(err, LP_EINVAL, "nn: clip_norm=%g: must be finite and >= 0 (0 = off)",
                          o->clip_norm);
    if (!(o->ema_decay >= 0.0 && o->ema_decay < 1.0))
        return lp_err_set(err, LP_EINVAL, "nn: ema_decay=%g: must be in [0, 1) (0 = off)",
                          o->ema_decay);
    if (!(o->mixup_alpha >= 0.0) || !isfinite(o->mixup_alpha))
        return lp_err_set(err, LP_EINVAL, "nn: mixup_alpha=%g: must be finite and >= 0 (0 = off)",
                          o->mixup_alpha);
    if (o->n_threads < 0 || o->n_threads > 1024)
        return lp_err_set(err, LP_EINVAL, "nn: n_threads=%d: must be in [0, 1024]", o->n_threads);
    return LP_OK;
}

lp_status lp_nn_arch_params(size_t d, const lp_nn_opts *o, uint64_t *n, lp_err *err)
{
    size_t n_layers;
    /* each term is below 2^40 (widths and d <= 2^20): no overflow in 64 bits */
    return lp_nn_plan(d, o, NULL, 0, &n_layers, n, NULL, err);
}

double lp_nn_lr_at(const lp_nn_opts *o, uint64_t t, uint64_t total)
{
    double lr = o->lr;
    switch (o->schedule) {
    case LP_NN_SCHED_STEP:
        lr = o->lr * pow(o->gamma, (double)(t / (uint64_t)o->step_size));
        break;
    case LP_NN_SCHED_COSINE: {
        double T = total ? (double)total : 1.0;
        double f = (double)t >= T ? 1.0 : (double)t / T;
        lr = o->min_lr + (o->lr - o->min_lr) * 0.5 * (1.0 + cos(M_PI * f));
        break;
    }
    default:
        break;
    }
    if (o->warmup_steps > 0 && t < (uint64_t)o->warmup_steps)
        lr *= (double)(t + 1) / (double)o->warmup_steps;
    return lr;
}

/* ---- building ----------------------------------------------------------------------------- */

void lp_nn_free(lp_nn *m)
{
    if (!m)
        return;
    const lp_backend *be = m->be;
    if (be) {
        lp_dbuf *bufs[] = {&m->params, &m->grads, &m->opt_m, &m->opt_v,      &m->best,
                           &m->sq,     &m->red,   &m->class_w, &m->acts,     &m->g0,
                           &m->g1,     &m->yb,    &m->state, &m->best_state, &m->ws,
                           &m->ones,   &m->ema,   &m->ema_state};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            lp_dbuf_free(be, bufs[i]);
        be->free(be, m->tb, NULL);
        be->free(be, m->tb2, NULL);
    }
    lp_param_layout_free(m->lay);
    free(m->layers);
    free(m->act_off);
    free(m->host);
    free(m->stage);
    free(m->stage_y);
    free(m->stage_t);
    free(m->stage_t2);
    free(m->hist);
    free(m->hidden);
    free(m->arch);
    free(m->input_shape);
    free(m->augment);
    free(m->state_host);
    free(m->activation);
    free(m->backend_name);
    free(m->class_w_host);
    free(m);
}

/* Build the layer list (lp_nn_plan), the layout, the parameter and state blocks; initialise
 * dense and conv layers as PyTorch's nn.Linear / nn.Conv2d, batch norm with gamma 1, beta 0,
 * running mean 0 and variance 1. */
static lp_status build(lp_nn *m, lp_err *err)
{
    size_t n_layers;
    uint64_t np;
    TRY(lp_nn_plan(m->d, &m->o, NULL, 0, &n_layers, &np, &m->n_state, err));
    m->layers = calloc(n_layers, sizeof *m->layers);
    m->act_off = calloc(n_layers + 1, sizeof *m->act_off);
    m->lay = lp_param_layout_new();
    if (!m->layers || !m->act_off || !m->lay)
        return lp_err_set(err, LP_ENOMEM, "nn: out of memory building %zu layers", n_layers);
    TRY(lp_nn_plan(m->d, &m->o, m->layers, n_layers, &m->n_layers, NULL, NULL, err));
    size_t counter[LP_NN_LAYER_KIND_BATCHNORM + 1] = {0};
    m->max_width = m->d;
    m->max_plane = 1;
    for (size_t i = 0; i < m->n_layers; i++) {
        lp_nn_layer *L = &m->layers[i];
        TRY(L->ops->add_params(L, counter[L->kind]++, m->lay, err));
        if (L->out > m->max_width)
            m->max_width = L->out;
        if (L->h * L->w > m->max_plane)
            m->max_plane = L->h * L->w;
        if (L->oh * L->ow > m->max_plane)
            m->max_plane = L->oh * L->ow;
        if (L->ws > m->ws_row)
            m->ws_row = L->ws;
        if (L->ws_fixed > m->ws_fixed)
            m->ws_fixed = L->ws_fixed;
    }
    m->n_block = lp_param_layout_total(m->lay);
    m->n_packed = 0;
    for (size_t i = 0; i < lp_param_layout_count(m->lay); i++)
        m->n_packed += lp_param_layout_at(m->lay, i)->n;
    m->host = calloc(m->n_block ? m->n_block : 1, sizeof *m->host);
    m->state_host = calloc(m->n_state ? m->n_state : 1, sizeof *m->state_host);
    if (!m->host || !m->state_host)
        return lp_err_set(err, LP_ENOMEM, "nn: out of memory for %zu parameters", m->n_block);
    TRY(lp_dbuf_alloc(m->be, m->n_block, &m->params, err));
    TRY(lp_dbuf_alloc(m->be, m->n_state ? m->n_state : 1, &m->state, err));

    /* PyTorch nn.Linear / nn.Conv2d reset_parameters: kaiming_uniform_(W, a=sqrt(5)) gives
     * bound gain sqrt(3 / fan_in) with gain sqrt(2 / (1 + 5)), i.e. 1 / sqrt(fan_in), fan_in =
     * in (dense) or C k k (conv); the bias uses the same bound. One stream, tensors in layout
     * order. */
    lp_rng rng;
    lp_rng_seed(&rng, m->o.seed);
    for (size_t i = 0; i < m->n_layers; i++) {
        const lp_nn_layer *L = &m->layers[i];
        if (L->kind == LP_NN_LAYER_KIND_BATCHNORM) {
            for (size_t j = 0; j < L->oc; j++) {
                m->host[L->w_off + j] = 1.0f;
                m->host[L->b_off + j] = 0.0f;
                m->state_host[L->s_off + j] = 0.0f;
                m->state_host[L->s_off + L->oc + j] = 1.0f;
            }
            continue;
        }
        if (L->kind != LP_NN_LAYER_KIND_DENSE && L->kind != LP_NN_LAYER_KIND_CONV2D)
            continue;
        size_t fan_in = L->kind == LP_NN_LAYER_KIND_DENSE ? L->in : L->c * L->g.kh * L->g.kw;
        double bound = 1.0 / sqrt((double)fan_in);
        for (size_t j = 0; j < L->oc * fan_in; j++)
            m->host[L->w_off + j] = (float)(bound * (2.0 * lp_rng_uniform(&rng) - 1.0));
        for (size_t j = 0; j < L->oc; j++)
            m->host[L->b_off + j] = (float)(bound * (2.0 * lp_rng_uniform(&rng) - 1.0));
    }
    if (m->n_state)
        TRY(m->be->copy_h2d(m->be, m->state.ptr, m->state_host, m->n_state * sizeof(float), err));
    return m->be->copy_h2d(m->be, m->params.ptr, m->host, m->n_block * sizeof(float), err);
}

lp_status lp_nn_new(size_t d, const lp_nn_opts *opts, lp_nn **out, lp_err *err)
{
    if (!out)
        return lp_err_set(err, LP_EINVAL, "nn: out is NULL");
    *out = NULL;
    TRY(lp_nn_opts_check(opts, err));
    if (d == 0 || d > LP_NN_MAX_WIDTH)
        return lp_err_set(err, LP_EINVAL, "nn: d=%zu input features: must be in [1, %d]", d,
                          LP_NN_MAX_WIDTH);
    const lp_backend *be;
    TRY(lp_backend_get(opts->backend ? opts->backend : "cpu", &be, err));
    lp_nn *m = calloc(1, sizeof *m);
    if (!m)
        return lp_err_set(err, LP_ENOMEM, "nn: out of memory");
    m->o = *opts;
    m->be = be;
    m->mix_lam = 1.0;
    m->d = d;
    m->n_out = (size_t)opts->n_outputs;
    m->best_valid = NAN;
    m->hidden = lp_strdup(opts->hidden ? opts->hidden : "");
    m->arch = lp_strdup(opts->arch ? opts->arch : "");
    m->input_shape = lp_strdup(opts->input_shape ? opts->input_shape : "");
    m->augment = lp_strdup(opts->augment ? opts->augment : "");
    m->activation = lp_strdup(opts->activation);
    m->backend_name = lp_strdup(be->name);
    if (opts->class_weight) {
        m->class_w_host = malloc(m->n_out * sizeof *m->class_w_host);
        if (m->class_w_host)
            memcpy(m->class_w_host, opts->class_weight, m->n_out * sizeof *m->class_w_host);
    }
    if (!m->hidden || !m->activation || !m->backend_name || !m->arch || !m->input_shape ||
        !m->augment ||
        (opts->class_weight && !m->class_w_host)) {
        lp_nn_free(m);
        return lp_err_set(err, LP_ENOMEM, "nn: out of memory");
    }
    m->o.hidden = m->hidden;
    m->o.arch = m->arch;
    m->o.input_shape = m->input_shape;
    m->o.augment = m->augment;
    m->o.activation = m->activation;
    m->o.backend = m->backend_name;
    m->o.class_weight = m->class_w_host;
    lp_status st = build(m, err);
    if (st) {
        lp_nn_free(m);
        return st;
    }
    *out = m;
    return LP_OK;
}

size_t lp_nn_n_inputs(const lp_nn *m)
{
    return m->d;
}
size_t lp_nn_n_outputs(const lp_nn *m)
{
    return m->n_out;
}
lp_nn_loss lp_nn_loss_of(const lp_nn *m)
{
    return m->o.loss;
}
const lp_nn_opts *lp_nn_opts_of(const lp_nn *m)
{
    return &m->o;
}
size_t lp_nn_n_layers(const lp_nn *m)
{
    return m->n_layers;
}
const lp_nn_layer *lp_nn_layer_at(const lp_nn *m, size_t i)
{
    return i < m->n_layers ? &m->layers[i] : NULL;
}
const lp_param_layout *lp_nn_layout(const lp_nn *m)
{
    return m->lay;
}
size_t lp_nn_n_params(const lp_nn *m)
{
    return m->n_packed;
}
uint64_t lp_nn_steps(const lp_nn *m)
{
    return m->step;
}
size_t lp_nn_epochs_run(const lp_nn *m)
{
    return m->epochs_run;
}
double lp_nn_best_valid_loss(const lp_nn *m)
{
    return m->best_valid;
}
size_t lp_nn_best_epoch(const lp_nn *m)
{
    return m->best_epoch;
}
const double *lp_nn_valid_history(const lp_nn *m, size_t *n)
{
    if (n)
        *n = m->n_hist;
    return m->hist;
}

/* Copy a block (n_block floats, device) into the packed form (host). */
static lp_status pack_block(const lp_nn *m, const float *dev, float *out, lp_err *err)
{
    const lp_backend *be = m->be;
    TRY(be->sync(be, err));
    size_t pos = 0;
    for (size_t i = 0; i < lp_param_layout_count(m->lay); i++) {
        const lp_param_view *v = lp_param_layout_at(m->lay, i);
        TRY(be->copy_d2h(be, out + pos, dev + v->offset, v->n * sizeof(float), err));
        pos += v->n;
    }
    return LP_OK;
}

lp_status lp_nn_get_params(const lp_nn *m, float *out, size_t n, lp_err *err)
{
    if (!m || !out)
        return lp_err_set(err, LP_EINVAL, "nn_get_params: net or out is NULL");
    if (n != m->n_packed)
        return lp_err_set(err, LP_EINVAL, "nn_get_params: n=%zu, the net has %zu parameters", n,
                          m->n_packed);
    return pack_block(m, m->params.ptr, out, err);
}

/* Make the host mirror equal to the device parameters. */
static lp_status sync_host(lp_nn *m, lp_err *err)
{
    TRY(m->be->sync(m->be, err));
    if (m->n_state)
        TRY(m->be->copy_d2h(m->be, m->state_host, m->state.ptr, m->n_state * sizeof(float), err));
    return m->be->copy_d2h(m->be, m->host, m->params.ptr, m->n_block * sizeof(float), err);
}

lp_status lp_nn_set_params(lp_nn *m, const float *in, size_t n, lp_err *err)
{
    if (!m || !in)
        return lp_err_set(err, LP_EINVAL, "nn_set_params: net or in is NULL");
    if (n != m->n_packed)
        return lp_err_set(err, LP_EINVAL, "nn_set_params: n=%zu, the net has %zu parameters", n,
                          m->n_packed);
    size_t pos = 0;
    for (size_t i = 0; i < lp_param_layout_count(m->lay); i++) {
        const lp_param_view *v = lp_param_layout_at(m->lay, i);
        for (size_t j = 0; j < v->n; j++)
            if (!isfinite(in[pos + j]))
                return lp_err_set(err, LP_EINVAL, "nn_set_params: %s[%zu] is %g, not finite",
                                  v->name, j, (double)in[pos + j]);
        pos += v->n;
    }
    pos = 0;
    for (size_t i = 0; i < lp_param_layout_count(m->lay); i++) {
        const lp_param_view *v = lp_param_layout_at(m->lay, i);
        memcpy(m->host + v->offset, in + pos, v->n * sizeof(float));
        pos += v->n;
    }
    const lp_backend *be = m->be;
    TRY(be->copy_h2d(be, m->params.ptr, m->host, m->n_block * sizeof(float), err));
    if (m->opt_m.ptr)
        TRY(be->memset(be, m->opt_m.ptr, 0, m->n_block * sizeof(float), err));
    if (m->opt_v.ptr)
        TRY(be->memset(be, m->opt_v.ptr, 0, m->n_block * sizeof(float), err));
    m->step = 0;
    return LP_OK;
}

/* ---- training state ----------------------------------------------------------------------- */

/* Gradient and optimizer blocks, allocated once. */
static lp_status ensure_state(lp_nn *m, lp_err *err)
{
    const lp_backend *be = m->be;
    if (!m->grads.ptr)
        TRY(lp_dbuf_alloc(be, m->n_block, &m->grads, err));
    if (!m->opt_m.ptr)
        TRY(lp_dbuf_alloc(be, m->n_block, &m->opt_m, err));
    if (m->o.optimizer == LP_NN_OPTIM_ADAMW && !m->opt_v.ptr)
        TRY(lp_dbuf_alloc(be, m->n_block, &m->opt_v, err));
    if (!m->red.ptr)
        TRY(lp_dbuf_alloc(be, 16, &m->red, err));
    if (m->o.clip_norm > 0 && !m->sq.ptr)
        TRY(lp_dbuf_alloc(be, m->n_block, &m->sq, err));
    if (m->class_w_host && !m->class_w.ptr) {
        TRY(lp_dbuf_alloc(be, m->n_out, &m->class_w, err));
        TRY(be->copy_h2d(be, m->class_w.ptr, m->class_w_host, m->n_out * sizeof(float), err));
    }
    return LP_OK;
}

/* Batch buffers for `rows` rows (grown, never shrunk). */
static lp_status ensure_cap(lp_nn *m, size_t rows, lp_err *err)
{
    if (rows <= m->cap)
        return LP_OK;
    const lp_backend *be = m->be;
    lp_dbuf *bufs[] = {&m->acts, &m->g0, &m->g1, &m->yb, &m->ws, &m->ones};
    for (size_t i = 0; i < 6; i++)
        lp_dbuf_free(be, bufs[i]);
    be->free(be, m->tb, NULL);
    be->free(be, m->tb2, NULL);
    m->tb = m->tb2 = NULL;
    free(m->stage_t2);
    m->stage_t2 = NULL;
    free(m->stage);
    free(m->stage_y);
    free(m->stage_t);
    m->cap = 0;
    size_t total = rows * m->d;
    m->act_off[0] = 0;
    for (size_t i = 0; i < m->n_layers; i++) {
        m->act_off[i + 1] = total;
        total += rows * m->layers[i].out;
    }
    TRY(lp_dbuf_alloc(be, total, &m->acts, err));
    TRY(lp_dbuf_alloc(be, rows * m->max_width, &m->g0, err));
    TRY(lp_dbuf_alloc(be, rows * m->max_width, &m->g1, err));
    TRY(lp_dbuf_alloc(be, rows * m->n_out, &m->yb, err));
    TRY(lp_dbuf_alloc(be, rows * m->ws_row + m->ws_fixed + 1, &m->ws, err));
    size_t n_ones = rows > m->max_plane ? rows : m->max_plane;
    TRY(lp_dbuf_alloc(be, n_ones, &m->ones, err));
    TRY(be->fill(be, n_ones, 1.0f, m->ones.ptr, err));
    void *tb = NULL;
    TRY(be->alloc(be, rows * sizeof(int32_t), &tb, err));
    m->tb = tb;
    if (m->o.mixup_alpha > 0) {
        TRY(be->alloc(be, rows * sizeof(int32_t), &tb, err));
        m->tb2 = tb;
        m->stage_t2 = malloc(rows * sizeof *m->stage_t2);
        if (!m->stage_t2)
            return lp_err_set(err, LP_ENOMEM, "nn: out of memory for a batch of %zu rows", rows);
    }
    m->stage = malloc(rows * m->d * sizeof *m->stage);
    m->stage_y = malloc(rows * m->n_out * sizeof *m->stage_y);
    m->stage_t = malloc(rows * sizeof *m->stage_t);
    if (!m->stage || !m->stage_y || !m->stage_t)
        return lp_err_set(err, LP_ENOMEM, "nn: out of memory for a batch of %zu rows", rows);
    m->cap = rows;
    return LP_OK;
}

/* Check the label of one row: class index, 0..1 target, or finite values. */
static lp_status check_label(const lp_nn *m, const float *y, size_t row, const char *what,
                             lp_err *err)
{
    switch (m->o.loss) {
    case LP_NN_LOSS_SOFTMAX_XENT: {
        float v = y[row];
        if (!(v >= 0.0f && v < (float)m->n_out) || v != floorf(v))
            return lp_err_set(err, LP_EINVAL,
                              "nn: %s label of row %zu is %g, expected a class index in [0, %zu]",
                              what, row, (double)v, m->n_out - 1);
        return LP_OK;
    }
    case LP_NN_LOSS_BCE: {
        float v = y[row];
        if (!(v >= 0.0f && v <= 1.0f))
            return lp_err_set(err, LP_EINVAL,
                              "nn: %s label of row %zu is %g, expected a target in [0, 1]", what,
                              row, (double)v);
        return LP_OK;
    }
    default:
        for (size_t j = 0; j < m->n_out; j++)
            if (!isfinite(y[row * m->n_out + j]))
                return lp_err_set(err, LP_EINVAL,
                                  "nn: %s target %zu of row %zu is %g, expected a finite value",
                                  what, j, row, (double)y[row * m->n_out + j]);
        return LP_OK;
    }
}

static lp_status check_rows(const lp_nn *m, const float *X, const float *y, size_t n,
                            const char *what, lp_err *err)
{
    if (n && (!X || !y))
        return lp_err_set(err, LP_EINVAL, "nn: %s X or y is NULL", what);
    for (size_t i = 0; i < n; i++)
        TRY(check_label(m, y, i, what, err));
    return LP_OK;
}

/* A Gamma(a, 1) variate: Marsaglia & Tsang (2000) for a >= 1, and Gamma(a + 1) U^(1 / a) below. */
static double gamma_draw(lp_rng *r, double a)
{
    if (a < 1.0) {
        double u = lp_rng_uniform(r);
        return gamma_draw(r, a + 1.0) * pow(u > 0 ? u : 1e-300, 1.0 / a);
    }
    double d = a - 1.0 / 3.0, c = 1.0 / sqrt(9.0 * d);
    for (;;) {
        double x = lp_rng_normal(r), v = 1.0 + c * x;
        if (v <= 0)
            continue;
        v = v * v * v;
        double u = lp_rng_uniform(r);
        if (u > 0 && log(u) < 0.5 * x * x + d - d * v + d * log(v))
            return d * v;
    }
}

void lp_nn_mixup_draw(const lp_nn_opts *o, uint64_t step, size_t nb, double *lam, size_t *perm)
{
    lp_rng r;
    lp_rng_seed(&r, o->seed ^ 0x6D69787570ull ^ (step * 0xD1B54A32D192ED03ull));
    double a = o->mixup_alpha > 0 ? o->mixup_alpha : 1.0;
    double g1 = gamma_draw(&r, a), g2 = gamma_draw(&r, a);
    *lam = g1 + g2 > 0 ? g1 / (g1 + g2) : 0.5;
    for (size_t i = 0; i < nb; i++)
        perm[i] = i;
    lp_rng_shuffle_idx(&r, perm, nb);
}

/* Mix the staged batch rows x (nb, d) (host) with a permutation of themselves, and the targets
 * the same way (mixup_alpha): the classes of the partners go to stage_t2, soft targets are
 * mixed in place. Sets m->mix_lam. */
static lp_status mixup(lp_nn *m, float *x, size_t nb, lp_err *err)
{
    size_t d = m->d, k = m->n_out;
    size_t *perm = lp_mallocarray(nb, sizeof *perm);
    float *orig = lp_mallocarray(nb, (d > k ? d : k) * sizeof *orig);
    if (!perm || !orig) {
        free(perm);
        free(orig);
        return lp_err_set(err, LP_ENOMEM, "nn: out of memory for mixup of %zu rows", nb);
    }
    double lam;
    lp_nn_mixup_draw(&m->o, m->step, nb, &lam, perm);
    float l = (float)lam, l1 = (float)(1.0 - lam);
    memcpy(orig, x, nb * d * sizeof *orig);
    for (size_t r = 0; r < nb; r++)
        for (size_t j = 0; j < d; j++)
            x[r * d + j] = l * orig[r * d + j] + l1 * orig[perm[r] * d + j];
    if (m->o.loss == LP_NN_LOSS_SOFTMAX_XENT) {
        for (size_t r = 0; r < nb; r++)
            m->stage_t2[r] = m->stage_t[perm[r]];
    } else {
        memcpy(orig, m->stage_y, nb * k * sizeof *orig);
        for (size_t r = 0; r < nb; r++)
            for (size_t j = 0; j < k; j++)
                m->stage_y[r * k + j] = l * orig[r * k + j] + l1 * orig[perm[r] * k + j];
    }
    m->mix_lam = lam;
    free(perm);
    free(orig);
    return LP_OK;
}

/* Stage rows idx[0..nb) (or rows first..first+nb when idx is NULL) of X, y into the input
 * activations and the target buffers. */
static lp_status upload(lp_nn *m, const float *X, const float *y, const size_t *idx, size_t first,
                        size_t nb, bool augment, lp_err *err)
{
    const lp_backend *be = m->be;
    size_t d = m->d, k = m->n_out;
    /* A host-visible table reads the rows where they are gathered: one copy, not two. */
    float *dst = be->host_visible ? m->acts.ptr : m->stage;
    for (size_t r = 0; r < nb; r++) {
        size_t i = idx ? idx[first + r] : first + r;
        memcpy(dst + r * d, X + i * d, d * sizeof(float));
        if (m->o.loss == LP_NN_LOSS_SOFTMAX_XENT)
            m->stage_t[r] = (int32_t)y[i];
        else
            memcpy(m->stage_y + r * k, y + i * k, k * sizeof(float));
    }
    if (augment && m->augment[0])
        TRY(lp_nn_augment(&m->o, dst, nb, m->o.seed, m->step, err));
    m->mix_lam = 1.0;
    if (augment && m->o.mixup_alpha > 0 && nb > 1)
        TRY(mixup(m, dst, nb, err));
    if (!be->host_visible)
        TRY(be->copy_h2d(be, m->acts.ptr, m->stage, nb * d * sizeof(float), err));
    if (m->o.loss == LP_NN_LOSS_SOFTMAX_XENT && m->mix_lam < 1.0)
        TRY(be->copy_h2d(be, m->tb2, m->stage_t2, nb * sizeof(int32_t), err));
    if (m->o.loss == LP_NN_LOSS_SOFTMAX_XENT)
        return be->copy_h2d(be, m->tb, m->stage_t, nb * sizeof(int32_t), err);
    return be->copy_h2d(be, m->yb.ptr, m->stage_y, nb * k * sizeof(float), err);
}

/* Mean loss of the staged targets at out (nb, n_out); dout (nullable) its gradient. */
static lp_status loss_of(lp_nn *m, size_t nb, const float *out, double *loss, float *dout,
                         lp_err *err)
{
    const lp_backend *be = m->be;
    switch (m->o.loss) {
    case LP_NN_LOSS_SOFTMAX_XENT: {
        TRY(be->softmax_xent(be, nb, m->n_out, out, m->tb, m->class_w.ptr, loss, dout, err));
        if (m->mix_lam >= 1.0)
            return LP_OK;
        /* mixup: l L(y) + (1 - l) L(y[perm]); the partner gradient goes through g1, which the
         * backward pass only uses after this */
        double l2, lam = m->mix_lam;
        float *d2 = dout ? m->g1.ptr : NULL;
        TRY(be->softmax_xent(be, nb, m->n_out, out, m->tb2, m->class_w.ptr, &l2, d2, err));
        *loss = lam * *loss + (1.0 - lam) * l2;
        if (!dout)
            return LP_OK;
        TRY(be->scale(be, nb * m->n_out, (float)lam, dout, dout, err));
        return be->axpy(be, nb * m->n_out, (float)(1.0 - lam), d2, dout, err);
    }
    case LP_NN_LOSS_BCE:
        return be->bce_logits(be, nb, out, m->yb.ptr, loss, dout, err);
    default:
        return be->mse(be, nb * m->n_out, out, m->yb.ptr, loss, dout, err);
    }
}

/* Forward over the staged batch of nb rows, the loss and (want_grad) the backward pass into
 * the gradient block. */
static lp_status forward_backward(lp_nn *m, size_t nb, bool train, bool want_grad, double *loss,
                                  lp_err *err)
{
    lp_nn_ctx c = {m->be, train, m->o.seed, m->step, m->ws.ptr, m->ones.ptr, m->state.ptr};
    float *acts = m->acts.ptr;
    for (size_t i = 0; i < m->n_layers; i++) {
        const lp_nn_layer *L = &m->layers[i];
        TRY(L->ops->forward(L, &c, m->params.ptr, nb, acts + m->act_off[i],
                            acts + m->act_off[i + 1], err));
    }
    float *dy = want_grad ? m->g0.ptr : NULL;
    TRY(loss_of(m, nb, acts + m->act_off[m->n_layers], loss, dy, err));
    if (!want_grad)
        return LP_OK;
    for (size_t i = m->n_layers; i-- > 0;) {
        const lp_nn_layer *L = &m->layers[i];
        float *dx = i == 0 ? NULL : (dy == m->g0.ptr ? m->g1.ptr : m->g0.ptr);
        TRY(L->ops->backward(L, &c, m->params.ptr, m->grads.ptr, nb, acts + m->act_off[i],
                             acts + m->act_off[i + 1], dy, dx, err));
        dy = dx;
    }
    return LP_OK;
}

lp_status lp_nn_loss_grad(lp_nn *m, const float *X, const float *y, size_t n, bool train,
                          double *loss, float *grad, lp_err *err)
{
    if (!m || !loss || n == 0)
        return lp_err_set(err, LP_EINVAL, "nn_loss_grad: net or loss is NULL, or n is 0");
    TRY(check_rows(m, X, y, n, "batch", err));
    TRY(ensure_state(m, err));
    TRY(ensure_cap(m, n, err));
    TRY(upload(m, X, y, NULL, 0, n, false, err));
    TRY(forward_backward(m, n, train, grad != NULL, loss, err));
    return grad ? pack_block(m, m->grads.ptr, grad, err) : LP_OK;
}

/* LP_ENUMERIC naming the first tensor of the gradient block holding a NaN or Inf. */
static lp_status check_grads(lp_nn *m, lp_err *err)
{
    const lp_backend *be = m->be;
    float mx;
    TRY(be->max_abs(be, m->n_block, m->grads.ptr, m->red.ptr, err));
    TRY(be->sync(be, err));
    TRY(be->copy_d2h(be, &mx, m->red.ptr, sizeof mx, err));
    if (isfinite(mx))
        return LP_OK;
    for (size_t i = 0; i < lp_param_layout_count(m->lay); i++) {
        const lp_param_view *v = lp_param_layout_at(m->lay, i);
        TRY(be->max_abs(be, v->n, m->grads.ptr + v->offset, m->red.ptr, err));
        TRY(be->sync(be, err));
        TRY(be->copy_d2h(be, &mx, m->red.ptr, sizeof mx, err));
        if (!isfinite(mx))
            return lp_err_set(err, LP_ENUMERIC, "nn step %llu: gradient of %s is %s",
                              (unsigned long long)m->step, v->name, isnan(mx) ? "NaN" : "Inf");
    }
    return lp_err_set(err, LP_ENUMERIC, "nn step %llu: gradient is not finite",
                      (unsigned long long)m->step);
}

/* torch.nn.utils.clip_grad_norm_: g *= max_norm / (||g||_2 + 1e-6) when that is < 1. */
static lp_status clip_grads(lp_nn *m, lp_err *err)
{
    const lp_backend *be = m->be;
    float s;
    TRY(be->mul(be, m->n_block, m->grads.ptr, m->grads.ptr, m->sq.ptr, err));
    TRY(be->sum_all(be, m->n_block, m->sq.ptr, m->red.ptr, err));
    TRY(be->sync(be, err));
    TRY(be->copy_d2h(be, &s, m->red.ptr, sizeof s, err));
    double coef = m->o.clip_norm / (sqrt((double)s) + 1e-6);
    if (coef < 1.0)
        TRY(be->scale(be, m->n_block, (float)coef, m->grads.ptr, m->grads.ptr, err));
    return LP_OK;
}

/* x = a x + (1 - a) y over n floats: two backend calls. */
static lp_status ema_mix(const lp_backend *be, size_t n, double a, float *x, const float *y,
                         lp_err *err)
{
    TRY(be->scale(be, n, (float)a, x, x, err));
    return be->axpy(be, n, (float)(1.0 - a), y, x, err);
}

/* The averaging update after an optimizer step (opts.ema_decay): the first update copies the
 * weights and the batch-norm state, later ones mix them in at a = min(decay, (1 + t) / (10 + t)),
 * t the updates so far, so the average forgets the random initialisation quickly. */
static lp_status ema_update(lp_nn *m, lp_err *err)
{
    const lp_backend *be = m->be;
    if (m->ema_steps == 0) {
        TRY(be->copy_d2d(be, m->ema.ptr, m->params.ptr, m->n_block * sizeof(float), err));
        if (m->n_state)
            TRY(be->copy_d2d(be, m->ema_state.ptr, m->state.ptr, m->n_state * sizeof(float),
                             err));
    } else {
        double t = (double)m->ema_steps, a = fmin(m->o.ema_decay, (1.0 + t) / (10.0 + t));
        TRY(ema_mix(be, m->n_block, a, m->ema.ptr, m->params.ptr, err));
        if (m->n_state)
            TRY(ema_mix(be, m->n_state, a, m->ema_state.ptr, m->state.ptr, err));
    }
    m->ema_steps++;
    return LP_OK;
}

/* Exchange the live weights (and state) with the averaged ones: a pointer swap, no copy. */
static void ema_swap(lp_nn *m)
{
    lp_dbuf t = m->params;
    m->params = m->ema;
    m->ema = t;
    t = m->state;
    m->state = m->ema_state;
    m->ema_state = t;
}

/* One step on the staged batch; total = T of the cosine schedule. */
static lp_status step_staged(lp_nn *m, size_t nb, uint64_t total, double *loss, lp_err *err)
{
    const lp_backend *be = m->be;
    double l = NAN;
    lp_status st = forward_backward(m, nb, true, true, &l, err);
    if (st == LP_ENUMERIC)
        return lp_err_prefix(err, "nn step %llu", (unsigned long long)m->step);
    if (st)
        return st;
    TRY(check_grads(m, err));
    if (m->o.clip_norm > 0)
        TRY(clip_grads(m, err));
    double lr = lp_nn_lr_at(&m->o, m->step, total);
    if (m->o.optimizer == LP_NN_OPTIM_ADAMW) {
        lp_adamw_opts a = {lr, m->o.beta1, m->o.beta2, m->o.eps, m->o.weight_decay};
        TRY(be->adamw_step(be, m->n_block, &a, m->step + 1, m->params.ptr, m->grads.ptr,
                           m->opt_m.ptr, m->opt_v.ptr, err));
    } else {
        lp_sgd_opts s = {lr, m->o.momentum, m->o.weight_decay, m->o.nesterov};
        TRY(be->sgd_step(be, m->n_block, &s, m->params.ptr, m->grads.ptr, m->opt_m.ptr, err));
    }
    m->step++;
    if (m->ema_on)
        TRY(ema_update(m, err));
    if (loss)
        *loss = l;
    return LP_OK;
}

lp_status lp_nn_train_step(lp_nn *m, const float *X, const float *y, size_t n, double *loss,
                           lp_err *err)
{
    if (!m || n == 0)
        return lp_err_set(err, LP_EINVAL, "nn_train_step: net is NULL or n is 0");
    TRY(check_rows(m, X, y, n, "batch", err));
    TRY(ensure_state(m, err));
    TRY(ensure_cap(m, n, err));
    TRY(upload(m, X, y, NULL, 0, n, false, err));
    if (m->o.schedule == LP_NN_SCHED_COSINE && m->o.total_steps == 0)
        return lp_err_set(err, LP_EINVAL,
                          "nn: schedule=cosine: a single train step needs total_steps > 0");
    TRY(step_staged(m, n, (uint64_t)m->o.total_steps, loss, err));
    return sync_host(m, err);
}

/* Mean loss over a whole data set in eval mode (weighted as the loss's own mean). */
static lp_status eval_loss(lp_nn *m, const float *X, const float *y, size_t n, double *out,
                           lp_err *err)
{
    double num = 0.0, den = 0.0;
    for (size_t r0 = 0; r0 < n; r0 += m->cap) {
        size_t nb = n - r0 < m->cap ? n - r0 : m->cap;
        TRY(upload(m, X, y, NULL, r0, nb, false, err));
        double l;
        TRY(forward_backward(m, nb, false, false, &l, err));
        double w = 0.0;
        if (m->o.loss == LP_NN_LOSS_SOFTMAX_XENT && m->class_w_host)
            for (size_t i = 0; i < nb; i++)
                w += m->class_w_host[(size_t)y[r0 + i]];
        else
            w = (double)nb;
        num += l * w;
        den += w;
    }
    *out = num / den;
    return LP_OK;
}

static lp_status push_hist(lp_nn *m, double v, lp_err *err)
{
    if (m->n_hist == m->cap_hist) {
        size_t cap = m->cap_hist ? 2 * m->cap_hist : 16;
        double *h = lp_reallocarray(m->hist, cap, sizeof *h);
        if (!h)
            return lp_err_set(err, LP_ENOMEM, "nn: out of memory for the validation history");
        m->hist = h;
        m->cap_hist = cap;
    }
    m->hist[m->n_hist++] = v;
    return LP_OK;
}

/* Re-estimate the batch-norm running statistics for the current (averaged) weights, as
 * torch.optim.swa_utils.update_bn: training-mode forwards (no backward, no augmentation) over
 * X in order, in batches of opts.batch_size rows; a last partial batch is skipped when a full
 * one exists. Averaged weights are not the weights whose activations the running statistics
 * of training followed. */
static lp_status bn_reestimate(lp_nn *m, const float *X, const float *y, size_t n, lp_err *err)
{
    size_t bs = (size_t)m->o.batch_size < n ? (size_t)m->o.batch_size : n;
    for (size_t r0 = 0; r0 < n; r0 += bs) {
        size_t nb = n - r0 < bs ? n - r0 : bs;
        if (nb < bs && r0 > 0)
            break;
        double l;
        TRY(upload(m, X, y, NULL, r0, nb, false, err));
        TRY(forward_backward(m, nb, true, false, &l, err));
    }
    return LP_OK;
}

static lp_status train_loop(lp_nn *m, const float *X, const float *y, size_t n, const float *Xv,
                            const float *yv, size_t nv, size_t *idx, lp_err *err)
{
    const lp_backend *be = m->be;
    size_t bs = (size_t)m->o.batch_size;
    size_t per_epoch = (n + bs - 1) / bs;
    uint64_t total =
        m->o.total_steps > 0 ? (uint64_t)m->o.total_steps : (uint64_t)m->o.epochs * per_epoch;
    size_t cap = bs < n ? bs : n;
    if (nv) {
        size_t ev = nv < PREDICT_CHUNK ? nv : PREDICT_CHUNK;
        if (ev > cap)
            cap = ev;
    }
    TRY(ensure_state(m, err));
    TRY(ensure_cap(m, cap, err));
    if (nv && !m->best.ptr && m->o.patience > 0) {
        TRY(lp_dbuf_alloc(be, m->n_block, &m->best, err));
        TRY(lp_dbuf_alloc(be, m->n_state ? m->n_state : 1, &m->best_state, err));
    }
    if (m->o.ema_decay > 0 && !m->ema.ptr) {
        TRY(lp_dbuf_alloc(be, m->n_block, &m->ema, err));
        TRY(lp_dbuf_alloc(be, m->n_state ? m->n_state : 1, &m->ema_state, err));
    }
    m->ema_on = m->o.ema_decay > 0;
    m->ema_steps = 0;
    lp_rng rng;
    /* the step count makes a further lp_nn_train call on the same net draw new orders */
    lp_rng_seed(&rng, m->o.seed ^ 0x5DEECE66Dull ^ (m->step * 0x9E3779B97F4A7C15ull));
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    m->best_valid = NAN;
    m->best_epoch = 0;
    m->n_hist = 0;
    lp_progress *prog = lp_progress_begin("nn train", (uint64_t)m->o.epochs * per_epoch);
    lp_status st = LP_OK;
    for (int e = 0; e < m->o.epochs && !st; e++) {
        if (m->o.shuffle)
            lp_rng_shuffle_idx(&rng, idx, n);
        double sum = 0.0;
        for (size_t b = 0; b < per_epoch && !st; b++) {
            size_t r0 = b * bs, nb = n - r0 < bs ? n - r0 : bs;
            double l = 0.0;
            st = upload(m, X, y, idx, r0, nb, true, err);
            if (!st)
                st = step_staged(m, nb, total, &l, err);
            sum += l * (double)nb;
            lp_progress_update(prog, (uint64_t)e * per_epoch + b + 1);
        }
        if (st)
            break;
        m->epochs_run = (size_t)e + 1;
        if (!nv) {
            lp_log_debug("nn epoch %d: train loss %.6f", e + 1, sum / (double)n);
            continue;
        }
        double vl;
        if (m->ema_on) /* validate (and keep as best) the averaged weights */
            ema_swap(m);
        st = eval_loss(m, Xv, yv, nv, &vl, err);
        if (!st)
            st = push_hist(m, vl, err);
        if (st) {
            if (m->ema_on)
                ema_swap(m);
            break;
        }
        lp_log_debug("nn epoch %d: train loss %.6f, valid loss %.6f", e + 1, sum / (double)n, vl);
        if (isnan(m->best_valid) || vl < m->best_valid) {
            m->best_valid = vl;
            m->best_epoch = (size_t)e + 1;
            if (m->best.ptr)
                st = be->copy_d2d(be, m->best.ptr, m->params.ptr, m->n_block * sizeof(float), err);
            if (!st && m->best.ptr && m->n_state)
                st = be->copy_d2d(be, m->best_state.ptr, m->state.ptr, m->n_state * sizeof(float),
                                  err);
        } else if (m->o.patience > 0 && (size_t)e + 1 - m->best_epoch >= (size_t)m->o.patience) {
            if (m->ema_on)
                ema_swap(m);
            break;
        }
        if (m->ema_on)
            ema_swap(m);
    }
    lp_progress_end(prog);
    /* the trained net is the average (the best epoch's average is restored below) */
    if (!st && m->ema_on && m->ema_steps > 0) {
        st = be->copy_d2d(be, m->params.ptr, m->ema.ptr, m->n_block * sizeof(float), err);
        if (!st && m->n_state)
            st = be->copy_d2d(be, m->state.ptr, m->ema_state.ptr, m->n_state * sizeof(float),
                              err);
    }
    bool averaged = m->ema_on && m->ema_steps > 0;
    m->ema_on = false;
    if (!st && m->best.ptr && m->best_epoch > 0 && m->best_epoch < m->epochs_run) {
        st = be->copy_d2d(be, m->params.ptr, m->best.ptr, m->n_block * sizeof(float), err);
        if (!st && m->n_state)
            st = be->copy_d2d(be, m->state.ptr, m->best_state.ptr, m->n_state * sizeof(float),
                              err);
    }
    if (!st && averaged && m->n_state)
        st = bn_reestimate(m, X, y, n, err);
    return st;
}

lp_status lp_nn_train(lp_nn *m, const float *X, const float *y, size_t n, const float *X_valid,
                      const float *y_valid, size_t n_valid, lp_err *err)
{
    if (!m)
        return lp_err_set(err, LP_EINVAL, "nn_train: net is NULL");
    if (n == 0)
        return lp_err_set(err, LP_EINVAL, "nn_train: no training rows");
    TRY(check_rows(m, X, y, n, "training", err));
    TRY(check_rows(m, X_valid, y_valid, n_valid, "validation", err));
    if (m->o.patience > 0 && n_valid == 0)
        return lp_err_set(err, LP_EINVAL, "nn: patience=%d: early stopping needs a validation set",
                          m->o.patience);
    size_t *idx = lp_mallocarray(n, sizeof *idx);
    if (!idx)
        return lp_err_set(err, LP_ENOMEM, "nn_train: out of memory for %zu row indices", n);
    int prev_threads = omp_get_max_threads();
    if (m->o.n_threads > 0)
        omp_set_num_threads(m->o.n_threads);
    lp_status st = train_loop(m, X, y, n, X_valid, y_valid, n_valid, idx, err);
    if (m->o.n_threads > 0)
        omp_set_num_threads(prev_threads);
    free(idx);
    lp_status st2 = sync_host(m, st ? NULL : err);
    return st ? st : st2;
}

lp_status lp_nn_fit(const float *X, const float *y, size_t n, size_t d, const lp_nn_opts *opts,
                    const float *X_valid, const float *y_valid, size_t n_valid, lp_nn **out,
                    lp_err *err)
{
    if (!out)
        return lp_err_set(err, LP_EINVAL, "nn_fit: out is NULL");
    *out = NULL;
    lp_nn *m;
    TRY(lp_nn_new(d, opts, &m, err));
    lp_status st = lp_nn_train(m, X, y, n, X_valid, y_valid, n_valid, err);
    if (st) {
        lp_nn_free(m);
        return st;
    }
    *out = m;
    return LP_OK;
}

/* ---- prediction --------------------------------------------------------------------------- */

/* Eval-mode forward of X (n, d) through layers [0, upto), chunked; out (n, width of layer
 * upto - 1's output). */
static lp_status forward_eval(const lp_nn *m, const float *X, size_t n, size_t upto, float *out,
                              lp_err *err)
{
    if (!m || (n && (!X || !out)))
        return lp_err_set(err, LP_EINVAL, "nn_predict: net, X or out is NULL");
    if (n == 0)
        return LP_OK;
    const lp_backend *be = m->be;
    size_t chunk = n < PREDICT_CHUNK ? n : PREDICT_CHUNK;
    size_t width = upto ? m->layers[upto - 1].out : m->d;
    size_t n_ones = chunk > m->max_plane ? chunk : m->max_plane;
    lp_dbuf xin = {0}, A = {0}, B = {0}, ws = {0}, ones = {0};
    lp_status st = lp_dbuf_alloc(be, chunk * m->d, &xin, err);
    if (!st)
        st = lp_dbuf_alloc(be, chunk * m->max_width, &A, err);
    if (!st)
        st = lp_dbuf_alloc(be, chunk * m->max_width, &B, err);
    if (!st)
        st = lp_dbuf_alloc(be, chunk * m->ws_row + m->ws_fixed + 1, &ws, err);
    if (!st)
        st = lp_dbuf_alloc(be, n_ones, &ones, err);
    if (!st)
        st = be->fill(be, n_ones, 1.0f, ones.ptr, err);
    lp_nn_ctx c = {be, false, m->o.seed, 0, ws.ptr, ones.ptr, m->state.ptr};
    for (size_t r0 = 0; r0 < n && !st; r0 += chunk) {
        size_t nb = n - r0 < chunk ? n - r0 : chunk;
        st = be->copy_h2d(be, xin.ptr, X + r0 * m->d, nb * m->d * sizeof(float), err);
        const float *cur = xin.ptr;
        for (size_t i = 0; i < upto && !st; i++) {
            const lp_nn_layer *L = &m->layers[i];
            if (L->kind == LP_NN_LAYER_KIND_DROPOUT)
                continue; /* identity in eval mode */
            /* activations run in place; other layers write the other ping-pong buffer */
            float *y = (L->kind == LP_NN_LAYER_KIND_ACT && cur != xin.ptr)
                           ? (float *)cur
                           : (cur == A.ptr ? B.ptr : A.ptr);
            st = L->ops->forward(L, &c, m->params.ptr, nb, cur, y, err);
            cur = y;
        }
        if (!st)
            st = be->sync(be, err);
        if (!st)
            st = be->copy_d2h(be, out + r0 * width, cur, nb * width * sizeof(float), err);
    }
    lp_dbuf_free(be, &xin);
    lp_dbuf_free(be, &A);
    lp_dbuf_free(be, &B);
    lp_dbuf_free(be, &ws);
    lp_dbuf_free(be, &ones);
    return st;
}

lp_status lp_nn_predict_raw(const lp_nn *m, const float *X, size_t n, float *out, lp_err *err)
{
    if (!m)
        return lp_err_set(err, LP_EINVAL, "nn_predict: net is NULL");
    return forward_eval(m, X, n, m->n_layers, out, err);
}

size_t lp_nn_n_features(const lp_nn *m)
{
    return m->layers[m->n_layers - 1].in;
}

lp_status lp_nn_features(const lp_nn *m, const float *X, size_t n, float *out, lp_err *err)
{
    if (!m)
        return lp_err_set(err, LP_EINVAL, "nn_features: net is NULL");
    return forward_eval(m, X, n, m->n_layers - 1, out, err);
}

size_t lp_nn_n_state(const lp_nn *m)
{
    return m->n_state;
}

const float *lp_nn_state(const lp_nn *m)
{
    return m->state_host;
}

/* The input gradient of sum_k w[i, k] z_k for each row i, where w is one-hot of cls (cls
 * non-NULL) or the given output weights dz (n, n_out). */
static lp_status input_backward(lp_nn *m, const float *X, size_t n, const int32_t *cls,
                                const float *dz, float *grad, float *logits, lp_err *err);

lp_status lp_nn_input_grad(lp_nn *m, const float *X, size_t n, const int32_t *cls, float *grad,
                           float *logits, lp_err *err)
{
    if (!m || !X || !cls || !grad || n == 0)
        return lp_err_set(err, LP_EINVAL, "nn_input_grad: net, X, cls or grad is NULL, or n is 0");
    for (size_t i = 0; i < n; i++)
        if (cls[i] < 0 || (size_t)cls[i] >= m->n_out)
            return lp_err_set(err, LP_EINVAL, "nn_input_grad: row %zu: class %d not in [0, %zu)",
                              i, cls[i], m->n_out);
    return input_backward(m, X, n, cls, NULL, grad, logits, err);
}

lp_status lp_nn_input_vjp(lp_nn *m, const float *X, size_t n, const float *dz, float *grad,
                          float *logits, lp_err *err)
{
    if (!m || !X || !dz || !grad || n == 0)
        return lp_err_set(err, LP_EINVAL, "nn_input_vjp: net, X, dz or grad is NULL, or n is 0");
    return input_backward(m, X, n, NULL, dz, grad, logits, err);
}

static lp_status input_backward(lp_nn *m, const float *X, size_t n, const int32_t *cls,
                                const float *dz, float *grad, float *logits, lp_err *err)
{
    const lp_backend *be = m->be;
    TRY(ensure_state(m, err));
    size_t chunk = n < PREDICT_CHUNK ? n : PREDICT_CHUNK;
    TRY(ensure_cap(m, chunk, err));
    float *hot = lp_calloc(chunk * m->n_out, sizeof *hot);
    lp_dbuf dx = {0};
    lp_status st = hot ? lp_dbuf_alloc(be, chunk * m->d, &dx, err)
                       : lp_err_set(err, LP_ENOMEM, "nn_input_grad: out of memory");
    lp_nn_ctx c = {be, false, m->o.seed, m->step, m->ws.ptr, m->ones.ptr, m->state.ptr};
    float *acts = m->acts.ptr;
    for (size_t r0 = 0; r0 < n && !st; r0 += chunk) {
        size_t nb = n - r0 < chunk ? n - r0 : chunk;
        st = be->copy_h2d(be, acts, X + r0 * m->d, nb * m->d * sizeof(float), err);
        for (size_t i = 0; i < m->n_layers && !st; i++) {
            const lp_nn_layer *L = &m->layers[i];
            st = L->ops->forward(L, &c, m->params.ptr, nb, acts + m->act_off[i],
                                 acts + m->act_off[i + 1], err);
        }
        if (cls) {
            memset(hot, 0, nb * m->n_out * sizeof *hot);
            for (size_t i = 0; i < nb; i++)
                hot[i * m->n_out + (size_t)cls[r0 + i]] = 1.0f;
        } else {
            memcpy(hot, dz + r0 * m->n_out, nb * m->n_out * sizeof *hot);
        }
        if (!st)
            st = be->copy_h2d(be, m->g0.ptr, hot, nb * m->n_out * sizeof(float), err);
        float *dy = m->g0.ptr;
        for (size_t i = m->n_layers; i-- > 0 && !st;) {
            const lp_nn_layer *L = &m->layers[i];
            float *dxi = i == 0 ? dx.ptr : (dy == m->g0.ptr ? m->g1.ptr : m->g0.ptr);
            st = L->ops->backward(L, &c, m->params.ptr, m->grads.ptr, nb, acts + m->act_off[i],
                                  acts + m->act_off[i + 1], dy, dxi, err);
            dy = dxi;
        }
        if (!st)
            st = be->sync(be, err);
        if (!st)
            st = be->copy_d2h(be, grad + r0 * m->d, dx.ptr, nb * m->d * sizeof(float), err);
        if (!st && logits)
            st = be->copy_d2h(be, logits + r0 * m->n_out, acts + m->act_off[m->n_layers],
                              nb * m->n_out * sizeof(float), err);
    }
    free(hot);
    lp_dbuf_free(be, &dx);
    return st;
}

/* The output link on one row of raw outputs, in place. */
static void link_row(const lp_nn *m, float *z)
{
    if (m->o.loss == LP_NN_LOSS_SOFTMAX_XENT) {
        float mx = z[0];
        for (size_t j = 1; j < m->n_out; j++)
            if (z[j] > mx)
                mx = z[j];
        double s = 0.0;
        for (size_t j = 0; j < m->n_out; j++) {
            z[j] = expf(z[j] - mx);
            s += z[j];
        }
        for (size_t j = 0; j < m->n_out; j++)
            z[j] = (float)(z[j] / s);
    } else if (m->o.loss == LP_NN_LOSS_BCE) {
        z[0] = lp_nn_act_scalar(LP_ACT_KIND_SIGMOID, z[0]);
    }
}

lp_status lp_nn_predict(const lp_nn *m, const float *X, size_t n, float *out, lp_err *err)
{
    TRY(lp_nn_predict_raw(m, X, n, out, err));
    for (size_t i = 0; i < n; i++)
        link_row(m, out + i * m->n_out);
    return LP_OK;
}

size_t lp_nn_row_scratch(const lp_nn *m)
{
    return m->max_width;
}

lp_status lp_nn_predict_row(const lp_nn *m, const float *x, float *out, float *scratch, lp_err *err)
{
    if (!m || !x || !out)
        return lp_err_set(err, LP_EINVAL, "nn_predict_row: net, x or out is NULL");
    float *own = NULL;
    if (!scratch) {
        own = lp_mallocarray(2 * m->max_width, sizeof *own);
        if (!own)
            return lp_err_set(err, LP_ENOMEM, "nn_predict_row: out of memory");
        scratch = own;
    }
    float *A = scratch, *B = scratch + m->max_width;
    const float *cur = x;
    for (size_t i = 0; i < m->n_layers; i++) {
        const lp_nn_layer *L = &m->layers[i];
        if (L->kind == LP_NN_LAYER_KIND_DROPOUT)
            continue;
        float *y =
            (L->kind == LP_NN_LAYER_KIND_ACT && cur != x) ? (float *)cur : (cur == A ? B : A);
        L->ops->forward_row(L, m->host, m->state_host, cur, y);
        cur = y;
    }
    memcpy(out, cur, m->n_out * sizeof *out);
    link_row(m, out);
    free(own);
    return LP_OK;
}
