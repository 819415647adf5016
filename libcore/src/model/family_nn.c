/*
 * family_nn.c - the nn family behind lp_model. Classification trains a softmax network over the
 * classes (binary included: two outputs); regression trains an MSE network on the standardized
 * target (mean and standard deviation kept with the net, so predictions come back in the
 * target's units). Parameters: hidden ("64,64"), activation (relu), dropout (0), optimizer
 * (adamw|sgd), lr (1e-3), momentum (0.9), weight_decay (0), schedule (constant|step|cosine),
 * warmup_steps (0), epochs (50), batch_size (64), patience (5; early stopping on the model's
 * validation split), clip_norm (0), class_weight (none|balanced), device (cpu|cuda|auto),
 * adversarial (0: off; else the L-inf radius eps of adversarial training in the design's units,
 * nn.h), adversarial_method (fgsm|pgd), pgd_steps (10), pgd_step_size (0 = 2.5 eps / steps).
 */
#include "model/family.h"
#include "model/nn.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NNF_MAGIC 0x464E504Cu /* "LPNF" */
#define NNF_VERSION 1u

static const char *const nn_keys[] = {"hidden", "activation", "dropout", "optimizer", "lr",
                                      "momentum", "weight_decay", "schedule", "warmup_steps",
                                      "epochs", "batch_size", "patience", "clip_norm",
                                      "class_weight", "device", "adversarial",
                                      "adversarial_method", "pgd_steps", "pgd_step_size", NULL};

typedef struct nnf {
    lp_nn *net;
    double y_mean, y_std; /* regression target scaling (0, 1 for classification) */
} nnf;

static lp_status opts_from_params(const lp_params *p, lp_nn_opts *o, size_t *balanced,
                                  lp_err *err)
{
    static const char *const optims[] = {"adamw", "sgd", NULL};
    static const char *const scheds[] = {"constant", "step", "cosine", NULL};
    static const char *const cws[] = {"none", "balanced", NULL};
    static const char *const devices[] = {"cpu", "cuda", "auto", "ref", NULL};
    size_t opt, sch, dev;
    long epochs, batch, patience, warm;
    double d;
    lp_status st;
    o->hidden = lp_params_get(p, "hidden") ? lp_params_get(p, "hidden") : "64,64";
    o->activation = lp_params_get(p, "activation") ? lp_params_get(p, "activation") : "relu";
    if ((st = lp_params_double(p, "dropout", 0, 0, 0.99, &d, err)))
        return st;
    o->dropout = (float)d;
    if ((st = lp_params_choice(p, "optimizer", optims, 0, &opt, err)) ||
        (st = lp_params_choice(p, "schedule", scheds, 0, &sch, err)) ||
        (st = lp_params_choice(p, "class_weight", cws, 0, balanced, err)) ||
        (st = lp_params_choice(p, "device", devices, 0, &dev, err)) ||
        (st = lp_params_double(p, "lr", 1e-3, 1e-9, 10, &o->lr, err)) ||
        (st = lp_params_double(p, "momentum", 0.9, 0, 0.999, &o->momentum, err)) ||
        (st = lp_params_double(p, "weight_decay", 0, 0, 10, &o->weight_decay, err)) ||
        (st = lp_params_double(p, "clip_norm", 0, 0, 1e9, &o->clip_norm, err)) ||
        (st = lp_params_int(p, "epochs", 50, 1, 100000, &epochs, err)) ||
        (st = lp_params_int(p, "batch_size", 64, 1, 1 << 20, &batch, err)) ||
        (st = lp_params_int(p, "patience", 5, 0, 100000, &patience, err)) ||
        (st = lp_params_int(p, "warmup_steps", 0, 0, 100000000, &warm, err)))
        return st;
    o->optimizer = opt ? LP_NN_OPTIM_SGD : LP_NN_OPTIM_ADAMW;
    o->schedule = sch == 1 ? LP_NN_SCHED_STEP : sch == 2 ? LP_NN_SCHED_COSINE : LP_NN_SCHED_CONSTANT;
    o->epochs = (int)epochs;
    o->batch_size = (int)batch;
    o->patience = (int)patience;
    o->warmup_steps = (int)warm;
    o->backend = devices[dev];
    return LP_OK;
}

/* The adversarial-training parameters; eps 0 (the default) means off. */
static lp_status adv_from_params(const lp_params *p, uint64_t seed, lp_nn_attack_opts *a,
                                 lp_err *err)
{
    static const char *const methods[] = {"fgsm", "pgd", NULL};
    size_t meth;
    long steps;
    lp_status st;
    if ((st = lp_params_double(p, "adversarial", 0, 0, 1e6, &a->eps, err)) ||
        (st = lp_params_choice(p, "adversarial_method", methods, 0, &meth, err)) ||
        (st = lp_params_int(p, "pgd_steps", 10, 1, 1000, &steps, err)) ||
        (st = lp_params_double(p, "pgd_step_size", 0, 0, 1e6, &a->step_size, err)))
        return st;
    a->method = meth ? LP_NN_ATTACK_PGD : LP_NN_ATTACK_FGSM;
    a->steps = (int)steps;
    a->seed = seed;
    return LP_OK;
}

static lp_status nn_fit(const lp_design *x, const lp_target *y, const lp_design *xv,
                        const lp_target *yv, const lp_params *p, uint64_t seed, int threads,
                        void **impl, lp_err *err)
{
    if (!x->dense || (xv && !xv->dense))
        return lp_err_set(err, LP_EINTERNAL, "nn needs a dense design");
    lp_nn_opts o = lp_nn_opts_default();
    size_t balanced = 0;
    lp_status st = opts_from_params(p, &o, &balanced, err);
    if (st)
        return st;
    o.seed = seed;
    o.n_threads = threads;
    nnf *f = calloc(1, sizeof *f);
    float *fy = lp_mallocarray(y->n, sizeof(float));
    float *fyv = yv ? lp_mallocarray(yv->n, sizeof(float)) : NULL;
    float *cw = NULL;
    if (!f || !fy || (yv && !fyv)) {
        st = lp_err_set(err, LP_ENOMEM, "nn: out of memory");
        goto done;
    }
    f->y_mean = 0;
    f->y_std = 1;
    if (y->task == LP_TASK_REGRESSION) {
        double s = 0, s2 = 0;
        for (size_t i = 0; i < y->n; i++) {
            s += y->y[i];
            s2 += y->y[i] * y->y[i];
        }
        f->y_mean = s / (double)y->n;
        double var = s2 / (double)y->n - f->y_mean * f->y_mean;
        f->y_std = var > 1e-24 ? sqrt(var) : 1;
        o.loss = LP_NN_LOSS_MSE;
        o.n_outputs = 1;
    } else {
        o.loss = LP_NN_LOSS_SOFTMAX_XENT;
        o.n_outputs = (int)y->n_classes;
        if (balanced) {
            cw = calloc(y->n_classes, sizeof(float));
            size_t *cnt = calloc(y->n_classes, sizeof(size_t));
            if (!cw || !cnt) {
                free(cnt);
                st = lp_err_set(err, LP_ENOMEM, "nn: out of memory");
                goto done;
            }
            for (size_t i = 0; i < y->n; i++)
                cnt[y->cls[i]]++;
            for (size_t k = 0; k < y->n_classes; k++)
                cw[k] = cnt[k] ? (float)((double)y->n / ((double)y->n_classes * (double)cnt[k]))
                               : 1.0f;
            free(cnt);
            o.class_weight = cw;
        }
    }
    for (size_t i = 0; i < y->n; i++)
        fy[i] = (float)((y->y[i] - f->y_mean) / f->y_std);
    for (size_t i = 0; yv && i < yv->n; i++)
        fyv[i] = (float)((yv->y[i] - f->y_mean) / f->y_std);
    if (!xv)
        o.patience = 0;
    if ((st = lp_nn_opts_check(&o, err)))
        goto done;
    lp_nn_attack_opts adv = lp_nn_attack_opts_default();
    if ((st = adv_from_params(p, seed, &adv, err)))
        goto done;
    if (adv.eps > 0) {
        st = lp_nn_new(x->cols, &o, &f->net, err);
        if (!st)
            st = lp_nn_train_adversarial(f->net, &adv, x->dense, fy, x->rows,
                                         xv ? xv->dense : NULL, fyv, xv ? xv->rows : 0, err);
    } else {
        st = lp_nn_fit(x->dense, fy, x->rows, x->cols, &o, xv ? xv->dense : NULL, fyv,
                       xv ? xv->rows : 0, &f->net, err);
    }
done:
    free(fy);
    free(fyv);
    free(cw);
    if (st) {
        if (f)
            lp_nn_free(f->net);
        free(f);
        return st;
    }
    *impl = f;
    return LP_OK;
}

static lp_status nn_predict(const void *impl, lp_task task, const lp_design *x, double *out,
                            lp_err *err)
{
    const nnf *f = impl;
    if (!x->dense)
        return lp_err_set(err, LP_EINTERNAL, "nn needs a dense design");
    size_t k = lp_nn_n_outputs(f->net);
    float *tmp = lp_mallocarray(x->rows * k, sizeof(float));
    if (!tmp)
        return lp_err_set(err, LP_ENOMEM, "nn: out of memory predicting %zu rows", x->rows);
    lp_status st = lp_nn_predict(f->net, x->dense, x->rows, tmp, err);
    for (size_t i = 0; !st && i < x->rows * k; i++)
        out[i] = task == LP_TASK_REGRESSION ? tmp[i] * f->y_std + f->y_mean : tmp[i];
    free(tmp);
    return st;
}

static lp_status nn_save(const void *impl, lp_buf *b, lp_err *err)
{
    const nnf *f = impl;
    lp_buf_u32(b, NNF_MAGIC);
    lp_buf_u32(b, NNF_VERSION);
    lp_buf_f64(b, f->y_mean);
    lp_buf_f64(b, f->y_std);
    return lp_nn_save(f->net, b, err);
}

static lp_status nn_load(const void *data, size_t len, void **impl, lp_err *err)
{
    lp_reader r;
    lp_reader_init(&r, data, len, "nn model");
    uint32_t magic = 0, ver = 0;
    nnf *f = calloc(1, sizeof *f);
    if (!f)
        return lp_err_set(err, LP_ENOMEM, "nn: out of memory");
    lp_status st = lp_reader_u32(&r, &magic, err);
    if (!st)
        st = lp_reader_u32(&r, &ver, err);
    if (!st && (magic != NNF_MAGIC || ver != NNF_VERSION))
        st = lp_err_set(err, ver > NNF_VERSION && magic == NNF_MAGIC ? LP_EVERSION : LP_EFORMAT,
                        "nn model: bad magic or version %u", ver);
    if (!st)
        st = lp_reader_f64(&r, &f->y_mean, err);
    if (!st)
        st = lp_reader_f64(&r, &f->y_std, err);
    if (!st && (!isfinite(f->y_mean) || !isfinite(f->y_std) || f->y_std <= 0))
        st = lp_err_set(err, LP_EFORMAT, "nn model: bad target scaling");
    if (!st)
        st = lp_nn_load(&r, "cpu", &f->net, err);
    if (st) {
        free(f);
        return st;
    }
    *impl = f;
    return LP_OK;
}

static void nn_free(void *impl)
{
    nnf *f = impl;
    if (!f)
        return;
    lp_nn_free(f->net);
    free(f);
}

static char *nn_describe(const void *impl)
{
    const nnf *f = impl;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "outputs", (double)lp_nn_n_outputs(f->net));
    cJSON_AddNumberToObject(o, "epochs_run", (double)lp_nn_epochs_run(f->net));
    cJSON_AddNumberToObject(o, "best_epoch", (double)lp_nn_best_epoch(f->net));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

const lp_family lp_family_nn = {
    .kind = LP_MODEL_KIND_NN, .name = "nn", .wants_dense = true, .param_keys = nn_keys,
    .fit = nn_fit, .predict = nn_predict, .save = nn_save, .load = nn_load, .free = nn_free,
    .describe = nn_describe,
};

const lp_nn *lp_family_nn_net(const lp_model *m, double *y_mean, double *y_std)
{
    if (lp_model_get_kind(m) != LP_MODEL_KIND_NN)
        return NULL;
    const nnf *f = lp_model_impl(m);
    if (y_mean)
        *y_mean = f->y_mean;
    if (y_std)
        *y_std = f->y_std;
    return f->net;
}
