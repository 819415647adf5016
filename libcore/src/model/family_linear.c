/*
 * family_linear.c - the linear (regression) and logistic (classification) families behind
 * lp_model. Parameters:
 *   linear:   penalty none|l2|l1|elasticnet (none: least squares; l2: ridge; l1: lasso),
 *             alpha (1), l1_ratio (0.5), solver auto|closed|gd|cd, tol (1e-4), max_iter (1000),
 *             fit_intercept (true)
 *   logistic: penalty l2|l1|none, C (1), class_weight none|balanced, tol, max_iter,
 *             fit_intercept
 */
#include "model/family.h"

#include <cjson/cJSON.h>
#include <stdlib.h>

static const char *const linear_keys[] = {"penalty", "alpha", "l1_ratio", "solver", "tol",
                                          "max_iter", "fit_intercept", NULL};
static const char *const logistic_keys[] = {"penalty", "C", "class_weight", "tol", "max_iter",
                                            "fit_intercept", NULL};

static lp_status common(const lp_params *p, lp_linear_opts *o, lp_err *err)
{
    long it;
    lp_status st = lp_params_double(p, "tol", o->tol, 1e-15, 1, &o->tol, err);
    if (!st)
        st = lp_params_int(p, "max_iter", o->max_iter, 1, 10000000, &it, err);
    if (!st)
        o->max_iter = (int)it;
    if (!st)
        st = lp_params_bool(p, "fit_intercept", o->fit_intercept, &o->fit_intercept, err);
    return st;
}

static lp_status linear_fit(const lp_design *x, const lp_target *y, const lp_design *xv,
                            const lp_target *yv, const lp_params *p, uint64_t seed, int threads,
                            void **impl, lp_err *err)
{
    (void)xv;
    (void)yv;
    (void)seed;
    lp_linear_opts o = lp_linear_opts_default();
    o.threads = threads;
    static const char *const pens[] = {"none", "l2", "l1", "elasticnet", NULL};
    static const char *const solvers[] = {"auto", "closed", "gd", "cd", NULL};
    size_t pen, sol;
    lp_status st = lp_params_choice(p, "penalty", pens, 0, &pen, err);
    if (!st)
        st = lp_params_choice(p, "solver", solvers, 0, &sol, err);
    if (!st)
        st = lp_params_double(p, "alpha", o.alpha, 0, 1e12, &o.alpha, err);
    if (!st)
        st = lp_params_double(p, "l1_ratio", o.l1_ratio, 0, 1, &o.l1_ratio, err);
    if (!st)
        st = common(p, &o, err);
    if (st)
        return st;
    static const lp_linear_kind kinds[] = {LP_LINEAR_KIND_LEAST_SQUARES, LP_LINEAR_KIND_RIDGE,
                                           LP_LINEAR_KIND_LASSO, LP_LINEAR_KIND_ELASTIC_NET};
    static const lp_linear_solver sv[] = {LP_LINEAR_SOLVER_AUTO, LP_LINEAR_SOLVER_CLOSED,
                                          LP_LINEAR_SOLVER_GD, LP_LINEAR_SOLVER_CD};
    o.kind = kinds[pen];
    o.solver = sv[sol];
    if ((st = lp_linear_opts_check(&o, err)))
        return st;
    lp_linear *m = NULL;
    st = lp_linear_fit_regression(&o, x, y->y, NULL, &m, err);
    if (!st)
        *impl = m;
    return st;
}

static lp_status logistic_fit(const lp_design *x, const lp_target *y, const lp_design *xv,
                              const lp_target *yv, const lp_params *p, uint64_t seed,
                              int threads, void **impl, lp_err *err)
{
    (void)xv;
    (void)yv;
    (void)seed;
    lp_linear_opts o = lp_linear_opts_default();
    o.kind = LP_LINEAR_KIND_LOGISTIC;
    o.threads = threads;
    static const char *const pens[] = {"l2", "l1", "none", NULL};
    static const char *const cws[] = {"none", "balanced", NULL};
    size_t pen, cw;
    lp_status st = lp_params_choice(p, "penalty", pens, 0, &pen, err);
    if (!st)
        st = lp_params_choice(p, "class_weight", cws, 0, &cw, err);
    if (!st)
        st = lp_params_double(p, "C", o.C, 1e-12, 1e12, &o.C, err);
    if (!st)
        st = common(p, &o, err);
    if (st)
        return st;
    o.penalty = pen == 0 ? LP_LINEAR_PENALTY_L2 : pen == 1 ? LP_LINEAR_PENALTY_L1
                                                           : LP_LINEAR_PENALTY_NONE;
    o.class_weight = cw ? LP_LINEAR_CLASS_WEIGHT_BALANCED : LP_LINEAR_CLASS_WEIGHT_NONE;
    if ((st = lp_linear_opts_check(&o, err)))
        return st;
    lp_linear *m = NULL;
    st = lp_linear_fit_classifier(&o, x, y->cls, y->n_classes, NULL, &m, err);
    if (!st)
        *impl = m;
    return st;
}

static lp_status linear_predict(const void *impl, lp_task task, const lp_design *x, double *out,
                                lp_err *err)
{
    if (task == LP_TASK_REGRESSION)
        return lp_linear_predict(impl, x, out, err);
    return lp_linear_predict_proba(impl, x, out, err);
}

static lp_status linear_save(const void *impl, lp_buf *b, lp_err *err)
{
    return lp_linear_save(impl, b, err);
}

static lp_status linear_load(const void *data, size_t len, void **impl, lp_err *err)
{
    lp_reader r;
    lp_reader_init(&r, data, len, "linear model");
    lp_linear *m = NULL;
    lp_status st = lp_linear_load(&r, &m, err);
    if (!st)
        *impl = m;
    return st;
}

static void linear_free(void *impl) { lp_linear_free(impl); }

static char *linear_describe(const void *impl)
{
    const lp_linear *m = impl;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "features", (double)lp_linear_n_features(m));
    cJSON_AddNumberToObject(o, "outputs", (double)lp_linear_n_outputs(m));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

const lp_family lp_family_linear = {
    .kind = LP_MODEL_KIND_LINEAR, .name = "linear", .wants_dense = false,
    .param_keys = linear_keys, .fit = linear_fit, .predict = linear_predict,
    .save = linear_save, .load = linear_load, .free = linear_free, .describe = linear_describe,
};

const lp_family lp_family_logistic = {
    .kind = LP_MODEL_KIND_LOGISTIC, .name = "logistic", .wants_dense = false,
    .param_keys = logistic_keys, .fit = logistic_fit, .predict = linear_predict,
    .save = linear_save, .load = linear_load, .free = linear_free, .describe = linear_describe,
};
