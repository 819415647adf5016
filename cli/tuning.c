/*
 * tuning.c - search spaces per family and the train-and-score objective (see tuning.h).
 * The resource of a trial (tune.h) is the share of boosting rounds for gbdt and the share of
 * training rows for the other families.
 */
#include "tuning.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GBDT_FULL_ROUNDS 300 /* rounds at resource 1 unless n_rounds is fixed */
#define NN_FULL_EPOCHS 50    /* epochs at resource 1 unless epochs is fixed */

static const lp_search_param gbdt_space[] = {
    {"learning_rate", LP_SPACE_KIND_LOG, 0.02, 0.3, NULL},
    {"max_leaves", LP_SPACE_KIND_INT, 8, 128, NULL},
    {"min_child_weight", LP_SPACE_KIND_LOG, 1e-3, 10, NULL},
    {"lambda", LP_SPACE_KIND_LOG, 1e-3, 10, NULL},
    {"subsample", LP_SPACE_KIND_FLOAT, 0.6, 1, NULL},
    {"colsample", LP_SPACE_KIND_FLOAT, 0.5, 1, NULL},
};
static const char *const linear_pens[] = {"none", "l2", "l1", "elasticnet", NULL};
static const lp_search_param linear_space[] = {
    {"penalty", LP_SPACE_KIND_CHOICE, 0, 0, linear_pens},
    {"alpha", LP_SPACE_KIND_LOG, 1e-4, 10, NULL},
    {"l1_ratio", LP_SPACE_KIND_FLOAT, 0, 1, NULL},
};
static const char *const nn_hidden[] = {"32", "64,64", "128,64", "256,128", NULL};
static const lp_search_param nn_space[] = {
    {"hidden", LP_SPACE_KIND_CHOICE, 0, 0, nn_hidden},
    {"lr", LP_SPACE_KIND_LOG, 1e-4, 1e-2, NULL},
    {"dropout", LP_SPACE_KIND_FLOAT, 0, 0.3, NULL},
    {"weight_decay", LP_SPACE_KIND_LOG, 1e-6, 1e-2, NULL},
};
static const lp_search_param logistic_space[] = {
    {"C", LP_SPACE_KIND_LOG, 1e-3, 1e3, NULL},
};

lp_status cli_parse_budget(const char *s, double *secs, lp_err *err)
{
    char *end;
    double v = strtod(s ? s : "", &end);
    double mult = 1;
    if (end && *end) {
        if (!strcmp(end, "s"))
            mult = 1;
        else if (!strcmp(end, "m"))
            mult = 60;
        else if (!strcmp(end, "h"))
            mult = 3600;
        else
            mult = -1;
    }
    if (!s || end == s || mult < 0 || !(v > 0) || !isfinite(v * mult)) /* 1e308h: inf s */
        return lp_err_set(err, LP_EINVAL, "--budget '%s': expected a duration like 60s, 5m or 1h",
                          s ? s : "");
    *secs = v * mult;
    return LP_OK;
}

typedef struct ctx {
    const cli_tune *t;
    const lp_frame *fit, *valid;
    size_t *order; /* shuffled row indices of fit, for row-share resources */
} ctx;

static double score_of(const lp_eval *e)
{
    return e->task == LP_TASK_REGRESSION ? -e->rmse : -e->logloss;
}

static lp_status objective(const lp_params *p, double resource, double *score, void *vctx,
                           lp_err *err)
{
    ctx *c = vctx;
    lp_params *q = lp_params_clone(p);
    if (!q)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    lp_frame *sub = NULL;
    const lp_frame *use = c->fit;
    lp_status st = LP_OK;
    if (c->t->kind == LP_MODEL_KIND_GBDT) {
        long full;
        st = lp_params_int(c->t->base, "n_rounds", GBDT_FULL_ROUNDS, 1, 100000, &full, err);
        long r = (long)ceil((double)full * resource);
        if (!st)
            st = lp_params_set_double(q, "n_rounds", (double)(r < 5 ? 5 : r), err);
    } else if (c->t->kind == LP_MODEL_KIND_NN) {
        long full;
        st = lp_params_int(c->t->base, "epochs", NN_FULL_EPOCHS, 1, 100000, &full, err);
        long r = (long)ceil((double)full * resource);
        if (!st)
            st = lp_params_set_double(q, "epochs", (double)(r < 2 ? 2 : r), err);
    } else if (resource < 1) {
        size_t n = lp_frame_nrows(c->fit), k = (size_t)ceil((double)n * resource);
        if (k < 20)
            k = n < 20 ? n : 20;
        st = lp_frame_take_rows(c->fit, c->order, k, &sub, err);
        use = sub;
    }
    lp_train_opts o = lp_train_opts_default();
    o.kind = c->t->kind;
    o.label = c->t->label;
    o.params = q;
    o.seed = c->t->seed;
    o.drop = c->t->drop;
    o.n_drop = c->t->n_drop;
    lp_model *m = NULL;
    lp_eval e;
    if (!st)
        st = lp_model_train(use, c->valid, &o, &m, err);
    if (!st)
        st = lp_model_evaluate(m, c->valid, &e, err);
    if (!st)
        *score = score_of(&e);
    lp_model_free(m);
    lp_frame_free(sub);
    lp_params_free(q);
    return st;
}

lp_status cli_tune_run(const cli_tune *t, const lp_frame *train, lp_params **best_params,
                       lp_model **model, double *score, size_t *trials, lp_err *err)
{
    *best_params = NULL;
    *model = NULL;
    const lp_search_param *space;
    size_t n_space;
    switch (t->kind) {
    case LP_MODEL_KIND_GBDT:
        space = gbdt_space;
        n_space = sizeof gbdt_space / sizeof gbdt_space[0];
        break;
    case LP_MODEL_KIND_LINEAR:
        space = linear_space;
        n_space = sizeof linear_space / sizeof linear_space[0];
        break;
    case LP_MODEL_KIND_NN:
        space = nn_space;
        n_space = sizeof nn_space / sizeof nn_space[0];
        break;
    case LP_MODEL_KIND_LOGISTIC:
        space = logistic_space;
        n_space = sizeof logistic_space / sizeof logistic_space[0];
        break;
    default:
        return lp_err_set(err, LP_EUNSUPPORTED, "tuning %s is not supported",
                          lp_model_kind_name(t->kind));
    }
    /* drop searched keys the user fixed */
    lp_search_param sp[16];
    size_t ns = 0;
    for (size_t i = 0; i < n_space; i++)
        if (!lp_params_get(t->base, space[i].name))
            sp[ns++] = space[i];
    size_t lj;
    lp_status st = lp_frame_require(train, t->label, "the training data", &lj, err);
    if (st)
        return st;
    const lp_column *lab = lp_frame_col(train, lj);
    bool classify = t->kind == LP_MODEL_KIND_LOGISTIC ||
                    (t->kind != LP_MODEL_KIND_LINEAR &&
                     (lab->type != LP_COL_TYPE_NUMERIC || lab->kind != LP_COL_KIND_FLOAT));
    lp_split s = {0};
    st = classify ? lp_split_stratified(lab, 0.2, t->seed, &s, err)
                  : lp_split_random(lp_frame_nrows(train), 0.2, t->seed, &s, err);
    ctx c = {.t = t};
    lp_frame *fit = NULL, *valid = NULL;
    if (!st)
        st = lp_frame_take_rows(train, s.train, s.n_train, &fit, err);
    if (!st)
        st = lp_frame_take_rows(train, s.test, s.n_test, &valid, err);
    lp_split_free(&s);
    if (!st) {
        c.fit = fit;
        c.valid = valid;
        size_t n = lp_frame_nrows(fit);
        c.order = lp_mallocarray(n, sizeof(size_t));
        if (!c.order)
            st = lp_err_set(err, LP_ENOMEM, "out of memory");
        for (size_t i = 0; !st && i < n; i++)
            c.order[i] = i;
        lp_rng r;
        lp_rng_seed(&r, t->seed);
        if (!st)
            lp_rng_shuffle_idx(&r, c.order, n);
    }
    lp_search_opts so = lp_search_opts_default();
    so.max_trials = t->max_trials;
    so.time_budget_s = t->budget_s;
    so.seed = t->seed;
    so.db_path = t->trials_db;
    so.study = lp_model_kind_name(t->kind);
    lp_search_result res = {0};
    if (!st)
        st = lp_search_run(sp, ns, t->base, &so, objective, &c, &res, err);
    if (!st && t->kind == LP_MODEL_KIND_GBDT && !lp_params_get(t->base, "n_rounds"))
        st = lp_params_set_double(res.best, "n_rounds", GBDT_FULL_ROUNDS, err);
    if (!st && t->kind == LP_MODEL_KIND_NN && !lp_params_get(t->base, "epochs"))
        st = lp_params_set_double(res.best, "epochs", NN_FULL_EPOCHS, err);
    if (!st) {
        /* re-fit the best on all of train (the model's own 20% split validates it) */
        lp_train_opts o = lp_train_opts_default();
        o.kind = t->kind;
        o.label = t->label;
        o.params = res.best;
        o.seed = t->seed;
        o.drop = t->drop;
        o.n_drop = t->n_drop;
        st = lp_model_train(train, NULL, &o, model, err);
    }
    if (!st) {
        *best_params = res.best;
        res.best = NULL;
        *score = res.best_score;
        *trials = res.trials;
    }
    lp_params_free(res.best);
    free(c.order);
    lp_frame_free(fit);
    lp_frame_free(valid);
    return st;
}
