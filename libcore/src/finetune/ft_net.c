/*
 * ft_net.c - the host view of an nn model's dense network and the one trainer behind lora,
 * head and full fine-tuning.
 *
 * Every op goes through the cpu kernel table (backend.h), with the same calls as the nn
 * module's dense and activation layers (sgemm x W^T, bias_add, act_forward), so with no
 * adapter the forward pass is the nn module's. Dropout is the identity: the frozen body runs
 * in eval mode. A LoRA target adds (alpha / r) (x A^T) B^T after W x + b (Hu et al. 2021,
 * eq. 3); with B = 0 that adds exact zeros, so the output equals the base's bit for bit.
 *
 * The trainer keeps one trainable vector theta (the adapter block for lora, the last dense
 * layer's W and b for head, every parameter for full) with gradients and AdamW state of the
 * same length; everything else is read-only. Backward (shapes (n, .) for a batch of n rows):
 *   dense:  dW = dy^T x (out, in), db = colsum dy, dx = dy W (+ dh A for a target)
 *   LoRA:   h = x A^T (n, r), dB = s dy^T h (out, r), dh = s dy B (n, r), dA = dh^T x (r, in)
 *   act:    dx = dy f'(.)
 * Gradients stop at the lowest layer that has a trainable parameter.
 * New classes (lora only): the last layer outputs [W; 0] x + [b; c] + s B A x (B has out + m
 * rows), so the first out logits are the base's plus the adapter's; dx takes only
 * dy[:, :out] through W. The new biases c are not trained, nor the rows of B of classes
 * absent from the training rows (train_rows; see lora.c).
 * Support (lora only, dense layer 0): A (r, |S|) reads the input features S only:
 * h = x[:, S] A^T, dA = dh^T x[:, S] (plain loops: S is small, the input sparse).
 */
#include "finetune/ft_internal.h"
#include "model/linear.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NNF_MAGIC 0x464E504Cu /* "LPNF": the nn family blob (family_nn.c) */
#define NNF_VERSION 1u

void ft_net_free(ft_net *net)
{
    if (!net)
        return;
    lp_nn_free(net->nn);
    free(net->L);
    free(net->params);
    free(net);
}

lp_status ft_net_from_blob(const void *data, size_t len, ft_net **out, lp_err *err)
{
    *out = NULL;
    lp_reader r;
    lp_reader_init(&r, data, len, "nn model");
    uint32_t magic = 0, ver = 0;
    ft_net *net = lp_calloc(1, sizeof *net);
    if (!net)
        return lp_err_set(err, LP_ENOMEM, "finetune: out of memory");
    lp_status st = lp_reader_u32(&r, &magic, err);
    if (!st)
        st = lp_reader_u32(&r, &ver, err);
    if (!st && (magic != NNF_MAGIC || ver != NNF_VERSION))
        st = lp_err_set(err, LP_EFORMAT, "finetune: the model section is not an nn model of "
                        "version %u", NNF_VERSION);
    if (!st)
        st = lp_reader_f64(&r, &net->y_mean, err);
    if (!st)
        st = lp_reader_f64(&r, &net->y_std, err);
    if (!st)
        st = lp_nn_load(&r, "cpu", &net->nn, err);
    if (st)
        goto fail;
    net->d = lp_nn_n_inputs(net->nn);
    net->n_out = lp_nn_n_outputs(net->nn);
    net->loss = lp_nn_loss_of(net->nn);
    net->nl = lp_nn_n_layers(net->nn);
    net->n_params = lp_nn_n_params(net->nn);
    net->L = lp_calloc(net->nl, sizeof *net->L);
    net->params = lp_mallocarray(net->n_params, sizeof *net->params);
    if (!net->L || !net->params) {
        st = lp_err_set(err, LP_ENOMEM, "finetune: out of memory (%zu parameters)",
                        net->n_params);
        goto fail;
    }
    if ((st = lp_nn_get_params(net->nn, net->params, net->n_params, err)))
        goto fail;
    size_t off = 0;
    net->max_width = net->d;
    for (size_t i = 0; i < net->nl; i++) {
        const lp_nn_layer *l = lp_nn_layer_at(net->nn, i);
        ft_layer *L = &net->L[i];
        L->in = l->in;
        L->out = l->out;
        if (l->out > net->max_width)
            net->max_width = l->out;
        switch (l->kind) {
        case LP_NN_LAYER_KIND_DENSE:
            L->kind = FT_LAYER_DENSE;
            L->w = off;
            L->b = off + l->in * l->out;
            off += l->in * l->out + l->out;
            L->dense = net->n_dense++;
            break;
        case LP_NN_LAYER_KIND_ACT:
            L->kind = FT_LAYER_ACT;
            L->act = l->act;
            break;
        case LP_NN_LAYER_KIND_DROPOUT:
            L->kind = FT_LAYER_IDENTITY;
            break;
        default:
            st = lp_err_set(err, LP_EUNSUPPORTED, "finetune: nn layer %zu is a %s layer: "
                            "fine-tuning supports dense networks only (dense, activation, "
                            "dropout)", i, l->ops ? l->ops->name : "spatial");
            goto fail;
        }
    }
    if (off != net->n_params) {
        st = lp_err_set(err, LP_EINTERNAL, "finetune: dense layers hold %zu parameters, the "
                        "net %zu", off, net->n_params);
        goto fail;
    }
    *out = net;
    return LP_OK;
fail:
    ft_net_free(net);
    return st;
}

lp_status ft_net_from_linear(const void *impl, ft_net **out, lp_err *err)
{
    *out = NULL;
    const lp_linear *lin = impl;
    size_t d = lp_linear_n_features(lin), k = lp_linear_n_outputs(lin);
    if (lp_linear_n_classes(lin) < 3 || k != lp_linear_n_classes(lin))
        return lp_err_set(err, LP_EUNSUPPORTED, "lora: a logistic base must be multiclass (3 or "
                          "more classes, one weight row each); this one has %zu classes",
                          lp_linear_n_classes(lin));
    ft_net *net = lp_calloc(1, sizeof *net);
    if (!net)
        return lp_err_set(err, LP_ENOMEM, "finetune: out of memory");
    net->y_mean = 0;
    net->y_std = 1;
    net->d = d;
    net->n_out = k;
    net->nl = 1;
    net->n_dense = 1;
    net->n_params = k * d + k;
    net->max_width = d > k ? d : k;
    net->loss = LP_NN_LOSS_SOFTMAX_XENT;
    net->L = lp_calloc(1, sizeof *net->L);
    net->params = lp_mallocarray(net->n_params, sizeof *net->params);
    if (!net->L || !net->params) {
        ft_net_free(net);
        return lp_err_set(err, LP_ENOMEM, "finetune: out of memory (%zu parameters)", k * d + k);
    }
    net->L[0] = (ft_layer){.kind = FT_LAYER_DENSE, .in = d, .out = k, .w = 0, .b = k * d};
    memcpy(net->params, lp_linear_coef(lin), k * d * sizeof *net->params);
    memcpy(net->params + k * d, lp_linear_intercept(lin), k * sizeof *net->params);
    *out = net;
    return LP_OK;
}

lp_status ft_net_to_blob(ft_net *net, lp_buf *b, lp_err *err)
{
    if (!net->nn)
        return lp_err_set(err, LP_EUNSUPPORTED, "finetune: the base is not an nn model");
    lp_status st = lp_nn_set_params(net->nn, net->params, net->n_params, err);
    if (st)
        return st;
    lp_buf_u32(b, NNF_MAGIC);
    lp_buf_u32(b, NNF_VERSION);
    lp_buf_f64(b, net->y_mean);
    lp_buf_f64(b, net->y_std);
    return lp_nn_save(net->nn, b, err);
}

/* ---- forward -------------------------------------------------------------------------------*/

/* Layer i forward on n rows: x (n, in) -> y (n, out); h (n, r) gets x A^T at a target (the
 * backward pass needs it), may be NULL when not a target. */
size_t ft_lora_a_width(const ft_lora *lo, size_t k, size_t in)
{
    return lo->support && k == 0 ? lo->n_support : in;
}

/* h (n, r) = x[:, S] A^T for A (r, |S|) over the support S of x (n, d). */
static void support_h(const ft_lora *lo, const float *A, const float *x, size_t n, size_t d,
                      float *h)
{
    const size_t r = lo->r;
    for (size_t i = 0; i < n; i++) {
        const float *xi = x + i * d;
        float *hi = h + i * r;
        for (size_t q = 0; q < r; q++)
            hi[q] = 0;
        for (size_t j = 0; j < lo->n_support; j++) {
            float v = xi[lo->support[j]];
            if (v == 0.0f)
                continue;
            for (size_t q = 0; q < r; q++)
                hi[q] += v * A[q * lo->n_support + j];
        }
    }
}

static bool is_ext(const ft_lora *lo, const ft_layer *L)
{
    return lo && lo->n_new && L->kind == FT_LAYER_DENSE && L->dense == lo->ext;
}

/* Layer i's output width: out, plus the new classes at an extended layer. */
static size_t out_width(const ft_lora *lo, const ft_layer *L)
{
    return L->out + (is_ext(lo, L) ? lo->n_new : 0);
}

static lp_status layer_forward(const lp_backend *be, const ft_net *net, const ft_lora *lo,
                               const float *params, size_t i, size_t n, const float *x, float *y,
                               float *h, lp_err *err)
{
    const ft_layer *L = &net->L[i];
    lp_status st = LP_OK;
    switch (L->kind) {
    case FT_LAYER_DENSE: {
        const size_t ld = out_width(lo, L);
        st = be->sgemm(be, false, true, n, L->out, L->in, 1.0f, x, L->in, params + L->w, L->in,
                       0.0f, y, ld, err);
        if (!st && ld == L->out) {
            st = be->bias_add(be, n, L->out, params + L->b, y, err);
        } else if (!st) { /* [b; c], the new classes' rows of [W; 0] giving 0 */
            const float *b = params + L->b, *c = lo->block + lo->nb_off;
            for (size_t r = 0; r < n; r++) {
                float *yr = y + r * ld;
                for (size_t j = 0; j < L->out; j++)
                    yr[j] += b[j];
                for (size_t j = 0; j < lo->n_new; j++)
                    yr[L->out + j] = c[j];
            }
        }
        if (!st && lo && lo->a_off[L->dense] != SIZE_MAX) {
            const float *A = lo->block + lo->a_off[L->dense], *B = lo->block + lo->b_off[L->dense];
            if (lo->support && L->dense == 0)
                support_h(lo, A, x, n, L->in, h);
            else
                st = be->sgemm(be, false, true, n, lo->r, L->in, 1.0f, x, L->in, A, L->in, 0.0f,
                               h, lo->r, err);
            if (!st)
                st = be->sgemm(be, false, true, n, ld, lo->r, lo->scale, h, lo->r, B, lo->r,
                               1.0f, y, ld, err);
        }
        return st;
    }
    case FT_LAYER_ACT:
        return be->act_forward(be, L->act, n * L->out, x, y, err);
    default:
        memcpy(y, x, n * L->out * sizeof *y);
        return LP_OK;
    }
}

lp_status ft_net_forward(const ft_net *net, const ft_lora *lora, const float *X, size_t n,
                         float *out, lp_err *err)
{
    const lp_backend *be = lp_backend_cpu();
    const size_t chunk = 1024; /* the nn module's predict chunk */
    const size_t r = lora ? lora->r : 1;
    const size_t kout = net->n_out + (lora ? lora->n_new : 0);
    float *a = lp_mallocarray(chunk * net->max_width, sizeof *a);
    float *b = lp_mallocarray(chunk * net->max_width, sizeof *b);
    float *h = lp_mallocarray(chunk * r, sizeof *h);
    lp_status st = LP_OK;
    if (!a || !b || !h)
        st = lp_err_set(err, LP_ENOMEM, "finetune: out of memory predicting %zu rows", n);
    for (size_t i0 = 0; !st && i0 < n; i0 += chunk) {
        size_t m = n - i0 < chunk ? n - i0 : chunk;
        const float *x = X + i0 * net->d;
        float *cur = a, *nxt = b;
        for (size_t i = 0; !st && i < net->nl; i++) {
            float *y = i + 1 == net->nl ? out + i0 * kout : nxt;
            st = layer_forward(be, net, lora, net->params, i, m, x, y, h, err);
            x = y;
            nxt = cur;
            cur = y;
        }
    }
    free(a);
    free(b);
    free(h);
    return st;
}

lp_status ft_net_predictions(const ft_net *net, lp_task task, const float *raw, size_t n,
                             size_t k, lp_predictions *p, lp_err *err)
{
    memset(p, 0, sizeof *p);
    p->task = task;
    p->n = n;
    if (task == LP_TASK_REGRESSION) {
        p->k = 1;
        p->out = lp_mallocarray(n ? n : 1, sizeof *p->out);
        if (!p->out)
            return lp_err_set(err, LP_ENOMEM, "finetune: out of memory");
        for (size_t i = 0; i < n; i++)
            p->out[i] = raw[i * k] * net->y_std + net->y_mean;
        return LP_OK;
    }
    if (net->loss != LP_NN_LOSS_SOFTMAX_XENT)
        return lp_err_set(err, LP_EUNSUPPORTED, "finetune: classification expects a softmax "
                          "net");
    p->k = k;
    p->out = lp_mallocarray(n > 0 ? n * k : 1, sizeof *p->out);
    p->cls = lp_mallocarray(n ? n : 1, sizeof *p->cls);
    if (!p->out || !p->cls) {
        lp_predictions_clear(p);
        return lp_err_set(err, LP_ENOMEM, "finetune: out of memory");
    }
    /* the nn module's link (float exp, double sum), so a zero adapter reproduces its bits */
    for (size_t i = 0; i < n; i++) {
        const float *z = raw + i * k;
        float mx = z[0], e[k];
        for (size_t j = 1; j < k; j++)
            if (z[j] > mx)
                mx = z[j];
        double s = 0.0;
        for (size_t j = 0; j < k; j++) {
            e[j] = expf(z[j] - mx);
            s += e[j];
        }
        for (size_t j = 0; j < k; j++)
            p->out[i * k + j] = (float)(e[j] / s);
        size_t best = 0; /* lp_model_predict's rule: the first largest probability */
        for (size_t j = 1; j < k; j++)
            if (p->out[i * k + j] > p->out[i * k + best])
                best = j;
        p->cls[i] = (int32_t)best;
    }
    return LP_OK;
}

/* ---- training ------------------------------------------------------------------------------*/

typedef struct ft_mem {
    size_t now, peak;
} ft_mem;

static void *mem_alloc(ft_mem *m, size_t n, size_t size)
{
    void *p = lp_calloc(n ? n : 1, size);
    if (p) {
        m->now += (n ? n : 1) * size;
        if (m->now > m->peak)
            m->peak = m->now;
    }
    return p;
}

lp_status ft_net_train(ft_net *net, ft_lora *lora, ft_mode mode, const float *X, const float *y,
                       size_t n, const lp_finetune_opts *o, lp_finetune_stats *stats,
                       lp_err *err)
{
    const lp_backend *be = lp_backend_cpu();
    const uint64_t t0 = lp_time_ns();
    ft_mem mem = {0, 0};
    lp_status st = LP_OK;
    const size_t K = net->n_out + (lora ? lora->n_new : 0), nl = net->nl;
    size_t last = nl;
    for (size_t i = 0; i < nl; i++)
        if (net->L[i].kind == FT_LAYER_DENSE)
            last = i;
    /* theta: the trainable vector */
    float *theta;
    const float *params = net->params;
    size_t n_theta, lowest; /* lowest layer with a trainable parameter */
    if (mode == FT_MODE_LORA) {
        theta = lora->block;
        n_theta = lora->n_block;
        lowest = nl;
        for (size_t i = 0; i < nl && lowest == nl; i++)
            if (net->L[i].kind == FT_LAYER_DENSE && lora->a_off[net->L[i].dense] != SIZE_MAX)
                lowest = i;
    } else if (mode == FT_MODE_HEAD) {
        theta = net->params + net->L[last].w;
        n_theta = net->n_params - net->L[last].w;
        lowest = last;
    } else {
        /* in place: the net is the caller's private copy of the base */
        theta = net->params;
        n_theta = net->n_params;
        lowest = 0;
    }
    const size_t B = (size_t)o->batch_size < n ? (size_t)o->batch_size : n;
    const size_t r = lora ? lora->r : 1;
    size_t acts_len = net->d;
    for (size_t i = 0; i < nl; i++)
        acts_len += net->L[i].out;
    float *grad = mem_alloc(&mem, n_theta, sizeof *grad);
    float *m1 = mem_alloc(&mem, n_theta, sizeof *m1);
    float *m2 = mem_alloc(&mem, n_theta, sizeof *m2);
    float *acts = mem_alloc(&mem, B * acts_len, sizeof *acts);
    float *hs = mode == FT_MODE_LORA ? mem_alloc(&mem, B * r * net->n_dense, sizeof *hs) : NULL;
    float *dh = mem_alloc(&mem, B * r, sizeof *dh);
    const size_t gwid = net->max_width > K ? net->max_width : K;
    float *g0 = mem_alloc(&mem, B * gwid, sizeof *g0);
    float *g1 = mem_alloc(&mem, B * gwid, sizeof *g1);
    float *yb = mem_alloc(&mem, B * K, sizeof *yb);
    int32_t *tb = mem_alloc(&mem, B, sizeof *tb);
    size_t *idx = mem_alloc(&mem, n, sizeof *idx);
    size_t *aoff = mem_alloc(&mem, nl + 1, sizeof *aoff);
    if (!theta || !grad || !m1 || !m2 || !acts || (mode == FT_MODE_LORA && !hs) || !dh || !g0 ||
        !g1 || !yb || !tb || !idx || !aoff) {
        st = lp_err_set(err, LP_ENOMEM, "finetune: out of memory (%zu trainable parameters)",
                        n_theta);
        goto done;
    }
    aoff[0] = 0;
    for (size_t i = 0; i < nl; i++)
        aoff[i + 1] = aoff[i] + B * (i ? net->L[i - 1].out : net->d);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    lp_adamw_opts ao = lp_adamw_opts_default();
    ao.lr = o->lr > 0 ? o->lr : mode == FT_MODE_LORA ? 1e-2 : 1e-3;
    ao.weight_decay = 0;
    lp_rng rng;
    lp_rng_seed(&rng, o->seed ^ 0x5851F42D4C957F2DULL);
    uint64_t step = 0;
    for (int ep = 0; !st && ep < o->epochs; ep++) {
        lp_rng_shuffle_idx(&rng, idx, n);
        for (size_t s0 = 0; !st && s0 < n; s0 += B) {
            size_t nb = n - s0 < B ? n - s0 : B;
            float *x0 = acts + aoff[0];
            for (size_t i = 0; i < nb; i++) {
                size_t row = idx[s0 + i];
                memcpy(x0 + i * net->d, X + row * net->d, net->d * sizeof *x0);
                if (net->loss == LP_NN_LOSS_SOFTMAX_XENT)
                    tb[i] = (int32_t)y[row];
                else
                    yb[i] = (float)(((double)y[row] - net->y_mean) / net->y_std);
            }
            /* forward, keeping every layer's input; the output goes to g0 */
            for (size_t i = 0; !st && i < nl; i++) {
                float *xin = acts + aoff[i];
                float *yout = i + 1 == nl ? g0 : acts + aoff[i + 1];
                float *h = hs && net->L[i].kind == FT_LAYER_DENSE
                               ? hs + net->L[i].dense * B * r : NULL;
                st = layer_forward(be, net, lora, params, i, nb, xin, yout, h, err);
            }
            double loss = 0;
            if (!st) {
                if (net->loss == LP_NN_LOSS_SOFTMAX_XENT)
                    st = be->softmax_xent(be, nb, K, g0, tb, NULL, &loss, g1, err);
                else if (net->loss == LP_NN_LOSS_BCE)
                    st = be->bce_logits(be, nb, g0, yb, &loss, g1, err);
                else
                    st = be->mse(be, nb * K, g0, yb, &loss, g1, err);
            }
            if (!st && !isfinite(loss))
                st = lp_err_set(err, LP_ENUMERIC, "finetune step %llu: loss is %g",
                                (unsigned long long)step, loss);
            /* backward: dy in g1, the layer's output (for act) at acts[i + 1] or g0 */
            float *dy = g1, *dx = g0; /* the logits in g0 are consumed: nets end in dense */
            memset(grad, 0, n_theta * sizeof *grad);
            for (size_t i = nl; !st && i-- > lowest;) {
                const ft_layer *L = &net->L[i];
                const float *xin = acts + aoff[i];
                bool need_dx = i > lowest;
                const size_t ld = out_width(lora, L); /* dy's row stride */
                if (L->kind == FT_LAYER_DENSE) {
                    bool tw = mode == FT_MODE_FULL || (mode == FT_MODE_HEAD && i == last);
                    if (tw) {
                        float *gw = grad + (params + L->w - theta);
                        float *gb = grad + (params + L->b - theta);
                        st = be->sgemm(be, true, false, L->out, L->in, nb, 1.0f, dy, L->out,
                                       xin, L->in, 0.0f, gw, L->in, err);
                        if (!st)
                            st = be->sum_rows(be, nb, L->out, dy, gb, err);
                    }
                    bool tgt = lora && lora->a_off[L->dense] != SIZE_MAX;
                    if (!st && tgt) {
                        const float *Bm = lora->block + lora->b_off[L->dense];
                        const float *h = hs + L->dense * B * r;
                        float *gA = grad + lora->a_off[L->dense];
                        float *gB = grad + lora->b_off[L->dense];
                        st = be->sgemm(be, true, false, ld, r, nb, lora->scale, dy, ld, h, r,
                                       0.0f, gB, r, err);
                        if (!st)
                            st = be->sgemm(be, false, false, nb, r, ld, lora->scale, dy, ld, Bm,
                                           r, 0.0f, dh, r, err);
                        if (!st && ld != L->out && lora->train_rows) /* absent classes */
                            for (size_t q = 0; q < ld; q++)
                                if (!lora->train_rows[q])
                                    memset(gB + q * r, 0, r * sizeof *gB);
                        if (!st && lora->support && L->dense == 0) {
                            const size_t ns = lora->n_support;
                            for (size_t q = 0; q < nb; q++)
                                for (size_t j = 0; j < ns; j++) {
                                    float v = xin[q * L->in + lora->support[j]];
                                    for (size_t t = 0; v != 0.0f && t < r; t++)
                                        gA[t * ns + j] += dh[q * r + t] * v;
                                }
                        } else if (!st) {
                            st = be->sgemm(be, true, false, r, L->in, nb, 1.0f, dh, r, xin,
                                           L->in, 0.0f, gA, L->in, err);
                        }
                    }
                    if (!st && need_dx) {
                        st = be->sgemm(be, false, false, nb, L->in, L->out, 1.0f, dy, ld,
                                       params + L->w, L->in, 0.0f, dx, L->in, err);
                        if (!st && tgt)
                            st = be->sgemm(be, false, false, nb, L->in, r, 1.0f, dh, r,
                                           lora->block + lora->a_off[L->dense], L->in, 1.0f, dx,
                                           L->in, err);
                    }
                } else if (need_dx && L->kind == FT_LAYER_ACT) {
                    const float *fwd = lp_act_backward_uses_output(L->act) ? acts + aoff[i + 1]
                                                                           : xin;
                    st = be->act_backward(be, L->act, nb * L->out, fwd, dy, dx, err);
                } else if (need_dx) {
                    memcpy(dx, dy, nb * L->out * sizeof *dx);
                }
                float *t = dy;
                dy = dx;
                dx = t;
            }
            for (size_t j = 0; !st && j < n_theta; j++)
                if (!isfinite(grad[j]))
                    st = lp_err_set(err, LP_ENUMERIC, "finetune step %llu: gradient %zu is %g",
                                    (unsigned long long)step, j, (double)grad[j]);
            if (!st)
                st = be->adamw_step(be, n_theta, &ao, ++step, theta, grad, m1, m2, err);
        }
    }
done:
    if (stats) {
        stats->train_seconds = lp_time_since(t0);
        stats->trainable = n_theta;
        stats->peak_bytes = mem.peak;
        stats->n_train = n;
    }
    free(grad);
    free(m1);
    free(m2);
    free(acts);
    free(hs);
    free(dh);
    free(g0);
    free(g1);
    free(yb);
    free(tb);
    free(idx);
    free(aoff);
    return st;
}
