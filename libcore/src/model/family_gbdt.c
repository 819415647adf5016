/*
 * family_gbdt.c - the gbdt family behind lp_model: maps lp_params onto lp_gbdt_opts and the
 * task onto the loss. Parameters (XGBoost / LightGBM names where they exist):
 *   n_rounds (100), learning_rate (0.1), max_leaves (31), max_depth (0 = unlimited),
 *   max_bins (255), lambda (1), min_child_weight (1e-3), min_split_gain (0), subsample (1),
 *   colsample (1), early_stopping_rounds (0; needs a validation set), threads (0 = default).
 */
#include "model/family.h"
#include "model/gbdt.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static const char *const gbdt_keys[] = {"n_rounds", "learning_rate", "max_leaves", "max_depth",
                                        "max_bins", "lambda", "min_child_weight",
                                        "min_split_gain", "subsample", "colsample",
                                        "early_stopping_rounds", "threads", "base_score",
                                        NULL};

static lp_status opts_from_params(const lp_params *p, lp_gbdt_opts *o, lp_err *err)
{
    long v;
    double d;
    lp_status st;
#define GI(key, field, lo, hi)                                                                 \
    if ((st = lp_params_int(p, key, (long)o->field, lo, hi, &v, err)))                         \
        return st;                                                                             \
    o->field = (int)v;
#define GD(key, field, lo, hi)                                                                 \
    if ((st = lp_params_double(p, key, (double)o->field, lo, hi, &d, err)))                    \
        return st;                                                                             \
    o->field = (float)d;
    GI("n_rounds", n_rounds, 1, 100000)
    GD("learning_rate", learning_rate, 1e-6, 1)
    GI("max_leaves", max_leaves, 0, 1 << 20)
    GI("max_depth", max_depth, 0, 64)
    GI("max_bins", max_bins, 2, 255)
    GD("lambda", lambda, 0, 1e9)
    GD("min_child_weight", min_child_weight, 0, 1e9)
    GD("min_split_gain", min_split_gain, 0, 1e9)
    GD("subsample", subsample, 1e-6, 1)
    GD("colsample", colsample, 1e-6, 1)
    GI("early_stopping_rounds", early_stopping_rounds, 0, 100000)
    /* base_score: the starting prediction (a probability for binary, a mean for regression);
     * absent keeps the default, the training labels' log-odds / mean (lp_gbdt_opts_check
     * refuses a value that does not fit the loss). XGBoost 1.7 starts at 0.5. */
    if (lp_params_get(p, "base_score")) {
        if ((st = lp_params_double(p, "base_score", 0.5, -1e30, 1e30, &d, err)))
            return st;
        o->base_score = (float)d;
    }
#undef GI
#undef GD
    return lp_gbdt_opts_check(o, err);
}

static lp_status gbdt_fit(const lp_design *x, const lp_target *y, const lp_design *xv,
                          const lp_target *yv, const lp_params *p, uint64_t seed, int threads,
                          void **impl, lp_err *err)
{
    if (!x->dense || (xv && !xv->dense))
        return lp_err_set(err, LP_EINTERNAL, "gbdt needs a dense design");
    lp_gbdt_opts o = lp_gbdt_opts_default();
    o.seed = seed;
    o.n_threads = threads;
    lp_status st = opts_from_params(p, &o, err);
    if (st)
        return st;
    o.loss = y->task == LP_TASK_REGRESSION ? LP_GBDT_LOSS_L2
             : y->task == LP_TASK_BINARY   ? LP_GBDT_LOSS_LOGLOSS
                                           : LP_GBDT_LOSS_SOFTMAX;
    o.n_classes = (int)y->n_classes;
    float *fy = lp_mallocarray(y->n, sizeof(float));
    float *fyv = yv ? lp_mallocarray(yv->n, sizeof(float)) : NULL;
    if (!fy || (yv && !fyv)) {
        free(fy);
        free(fyv);
        return lp_err_set(err, LP_ENOMEM, "gbdt: out of memory");
    }
    for (size_t i = 0; i < y->n; i++)
        fy[i] = (float)y->y[i];
    for (size_t i = 0; yv && i < yv->n; i++)
        fyv[i] = (float)yv->y[i];
    lp_gbdt *m = NULL;
    st = lp_gbdt_fit(x->dense, fy, NULL, x->rows, x->cols, &o, xv ? xv->dense : NULL, fyv,
                     xv ? xv->rows : 0, &m, err);
    free(fy);
    free(fyv);
    if (st)
        return st;
    *impl = m;
    return LP_OK;
}

static lp_status gbdt_predict(const void *impl, lp_task task, const lp_design *x, double *out,
                              lp_err *err)
{
    const lp_gbdt *m = impl;
    if (!x->dense)
        return lp_err_set(err, LP_EINTERNAL, "gbdt needs a dense design");
    size_t k = lp_gbdt_n_outputs(m);
    /* a few rows (the serving path) on the stack: no allocation per request */
    float small[64];
    float *tmp = x->rows * k <= 64 ? small : lp_mallocarray(x->rows * k, sizeof(float));
    if (!tmp)
        return lp_err_set(err, LP_ENOMEM, "gbdt: out of memory predicting %zu rows", x->rows);
    lp_status st = lp_gbdt_predict(m, x->dense, x->rows, tmp, err);
    if (!st) {
        for (size_t i = 0; i < x->rows; i++) {
            if (task == LP_TASK_BINARY) {
                out[2 * i + 1] = tmp[i];
                out[2 * i] = 1.0 - (double)tmp[i];
            } else {
                for (size_t c = 0; c < k; c++)
                    out[i * k + c] = tmp[i * k + c];
            }
        }
    }
    if (tmp != small)
        free(tmp);
    return st;
}

static lp_status gbdt_save(const void *impl, lp_buf *b, lp_err *err)
{
    return lp_gbdt_save(impl, b, err);
}

static lp_status gbdt_load(const void *data, size_t len, void **impl, lp_err *err)
{
    lp_reader r;
    lp_reader_init(&r, data, len, "gbdt model");
    lp_gbdt *m = NULL;
    lp_status st = lp_gbdt_load(&r, &m, err);
    if (st)
        return st;
    *impl = m;
    return LP_OK;
}

static void gbdt_free(void *impl) { lp_gbdt_free(impl); }

static char *gbdt_describe(const void *impl)
{
    const lp_gbdt *m = impl;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "trees", (double)lp_gbdt_n_trees(m));
    cJSON_AddNumberToObject(o, "rounds", (double)lp_gbdt_n_rounds(m));
    cJSON_AddNumberToObject(o, "features", (double)lp_gbdt_n_features(m));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

const lp_family lp_family_gbdt = {
    .kind = LP_MODEL_KIND_GBDT, .name = "gbdt", .wants_dense = true, .param_keys = gbdt_keys,
    .fit = gbdt_fit, .predict = gbdt_predict, .save = gbdt_save, .load = gbdt_load,
    .free = gbdt_free, .describe = gbdt_describe,
};
