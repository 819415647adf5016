/*
 * rec_data.c - lepton-recommend's offline side: reading interaction files into lp_mf_data,
 * the evaluation JSON, and tuning on a per-user validation split with lp_search_run.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rec.h"

rec_cols rec_cols_default(void)
{
    rec_cols c = {.user_col = "user_id", .item_col = "item_id"};
    c.ev = lp_mf_event_opts_default();
    return c;
}

rec_cols rec_cols_of_model(const lp_mf *m)
{
    rec_cols c = rec_cols_default();
    const lp_mf_source *src = lp_mf_model_source(m);
    if (!src) return c;
    if (src->user_col) c.user_col = src->user_col;
    if (src->item_col) c.item_col = src->item_col;
    c.weight_col = src->weight_col;
    c.type_col = src->type_col;
    c.time_col = src->time_col;
    c.ev = src->ev;
    return c;
}

lp_status rec_cols_store(lp_mf *m, const rec_cols *c, double time_ref, lp_err *err)
{
    lp_mf_source src = {.user_col = c->user_col, .item_col = c->item_col,
                        .weight_col = c->weight_col, .type_col = c->type_col,
                        .time_col = c->time_col, .ev = c->ev, .time_ref = time_ref};
    return lp_mf_set_source(m, &src, err);
}

static const char *col_flag(const char *flag, const char *base)
{
    if (!flag) return base;
    return strcmp(flag, "none") == 0 ? NULL : flag;
}

lp_status rec_cols_apply(const rec_cols *base, const rec_cols_flags *fl, rec_cols *c,
                         lp_err *err)
{
    *c = *base;
    if (fl->user_col) c->user_col = fl->user_col;
    if (fl->item_col) c->item_col = fl->item_col;
    c->weight_col = col_flag(fl->weight_col, base->weight_col);
    c->type_col = col_flag(fl->type_col, base->type_col);
    c->time_col = col_flag(fl->time_col, base->time_col);
    if (fl->half_life_days >= 0) c->ev.half_life_s = fl->half_life_days * 86400.0;
    if (fl->event_weights && lp_mf_event_weights_parse(&c->ev, fl->event_weights, err))
        return lp_err_prefix(err, "--event-weights");
    return LP_OK;
}

/* Names public interaction files give their user, item and weight columns, in
 * lp_frame_find_like's form (MovieLens' userId / movieId, Book-Crossing's User-ID / ISBN,
 * Amazon's reviewerID / asin, hetrec Last.fm's userID / artistID / weight). */
static const char *const user_names[] = {"userid", "user", "uid", "customerid", "customer",
                                         "visitorid", "memberid", "reviewerid", "readerid",
                                         "listenerid", "clientid", "accountid", NULL};
static const char *const item_names[] = {"itemid", "item", "movieid", "productid", "product",
                                         "artistid", "trackid", "songid", "bookid", "isbn",
                                         "asin", "parentasin", "sku", "animeid", "gameid",
                                         "recipeid", "articleid", "businessid", "contentid",
                                         NULL};
/* Looked at only when no item_names column is there: names that also label descriptive columns
 * beside an id (a title next to movieId), so they come second (Last.fm's artist-name). */
static const char *const item_names2[] = {"artistname", "artist", "trackname", "track", "song",
                                          "movie", "book", "anime", "game", "title", NULL};
static const char *const weight_names[] = {"rating", "weight", "plays", "playcount", "count",
                                           "score", "bookrating", "overall", "quantity", NULL};

/* A default user / item column (user_id, item_id) missing from f: the one column named like
 * it is renamed to it, so that every later reader of f (tune's split) finds it too. */
static lp_status adopt_default(lp_frame *f, const char *path, const char *col, const char *dflt,
                               const char *const *names, const char *const *names2,
                               const char *what, lp_err *err)
{
    if (strcmp(col, dflt) || lp_frame_find(f, col) >= 0) return LP_OK;
    long j = lp_frame_find_like(f, names);
    if (j < 0 && names2) j = lp_frame_find_like(f, names2);
    if (j < 0) return LP_OK; /* the reader's error names the missing column */
    lp_log_warn("%s: no column '%s': reading '%s' as the %s (--%s-col to choose another)", path,
                dflt, lp_frame_col(f, (size_t)j)->name, what, what);
    return lp_frame_rename(f, (size_t)j, dflt, err);
}

lp_status rec_read(const char *path, const rec_cols *c, lp_mf_data **out, lp_frame **frame,
                   lp_err *err)
{
    *out = NULL;
    if (frame) *frame = NULL;
    lp_csv_opts co = lp_csv_opts_default();
    /* ids stay strings whatever they look like only when read as-is; numbers print back as
     * integers, so "7" and 7 name the same user */
    lp_frame *f = NULL;
    const char *want[] = {c->user_col, c->item_col};
    bool headerless;
    lp_status st = lp_frame_read_sniff_header(path, &co, want, 2, &f, &headerless, err);
    if (st) return st;
    if (headerless) {
        /* MovieLens ratings.dat, Last.fm's plays TSV: columns c1, c2, ...; the default user
         * and item columns are c1 and c2 (renamed to the defaults, as a guessed name is) */
        bool du = strcmp(c->user_col, "user_id") == 0, di = strcmp(c->item_col, "item_id") == 0;
        size_t nc = lp_frame_ncols(f);
        lp_log_warn("%s: user column %s, item column %s%s", path, du ? "c1" : c->user_col,
                    di ? "c2" : c->item_col,
                    c->weight_col ? "" : " (--weight-col c3 scores the third column)");
        if (du && lp_frame_find(f, "c1") >= 0)
            st = lp_frame_rename(f, (size_t)lp_frame_find(f, "c1"), "user_id", err);
        if (!st && di && lp_frame_find(f, "c2") >= 0)
            st = lp_frame_rename(f, (size_t)lp_frame_find(f, "c2"), "item_id", err);
        if (st) {
            lp_frame_free(f);
            return st;
        }
        const char *all[] = {c->user_col, c->item_col, c->weight_col, c->type_col, c->time_col};
        for (size_t k = 0; k < sizeof all / sizeof *all; k++)
            if (all[k] && lp_frame_find(f, all[k]) < 0) {
                lp_frame_free(f);
                return lp_err_set(err, LP_EINVAL,
                                  "%s has no header line (its first line reads as data), so it "
                                  "has no column '%s': its columns are c1..c%zu (--user-col c1 "
                                  "--item-col c2 --weight-col c3 ...)", path, all[k], nc);
            }
    }
    if (!headerless) {
        st = adopt_default(f, path, c->user_col, "user_id", user_names, NULL, "user", err);
        if (!st)
            st = adopt_default(f, path, c->item_col, "item_id", item_names, item_names2, "item",
                               err);
        if (st) {
            lp_frame_free(f);
            return st;
        }
        long w = c->weight_col ? -1 : lp_frame_find_like(f, weight_names);
        if (w >= 0 && lp_frame_col(f, (size_t)w)->type == LP_COL_TYPE_NUMERIC)
            lp_log_warn("%s: every interaction counts 1; --weight-col %s would weight each by "
                        "that column", path, lp_frame_col(f, (size_t)w)->name);
    }
    size_t skipped = 0;
    st = lp_mf_data_from_frame(f, NULL, 0, c->user_col, c->item_col, c->weight_col, c->type_col,
                               c->time_col, &c->ev, path, out, &skipped, err);
    if (st && err && c->type_col && strstr(err->msg, "weighted types")) {
        char msg[sizeof err->msg];
        memcpy(msg, err->msg, sizeof msg);
        lp_err_set(err, st, "%s; give every type a weight with --event-weights TYPE=W,...", msg);
    }
    if (!st && lp_mf_data_n_pairs(*out) == 0) {
        lp_mf_data_free(*out);
        *out = NULL;
        st = lp_err_set(err, LP_EINVAL, "%s: no usable interactions (%zu rows skipped)", path,
                        skipped);
    }
    if (!st && skipped)
        lp_log_warn("%s: %zu rows skipped (missing user, item or weight, or weight 0)%s", path,
                    skipped, c->weight_col ? "; where 0 marks an interaction without a rating "
                    "(Book-Crossing's implicit 0), --weight-col none counts every row as 1" : "");
    if (!st && frame) *frame = f;
    else lp_frame_free(f);
    return st;
}

char *rec_eval_json(const lp_mf_eval *e, size_t k)
{
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "k", (double)k);
    cJSON_AddNumberToObject(o, "users", (double)e->users);
    cJSON_AddNumberToObject(o, "precision_at_k", e->precision);
    cJSON_AddNumberToObject(o, "recall_at_k", e->recall);
    cJSON_AddNumberToObject(o, "ndcg_at_k", e->ndcg);
    cJSON_AddNumberToObject(o, "map_at_k", e->map);
    cJSON_AddNumberToObject(o, "coverage", e->coverage);
    cJSON_AddNumberToObject(o, "novelty", e->novelty);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

rec_tune_opts rec_tune_opts_default(void)
{
    rec_tune_opts t = {.trials = 12, .time_budget_s = 0, .k = 10, .holdout = 2, .seed = 42};
    return t;
}

typedef struct tune_ctx {
    const lp_mf_data *train, *valid;
    lp_mf_opts base;
    size_t k;
} tune_ctx;

/* Options of one trial: base with the trial's values; iterations scaled by the resource. */
static lp_status trial_opts(const lp_params *p, double resource, const lp_mf_opts *base,
                            lp_mf_opts *o, lp_err *err)
{
    *o = *base;
    long v;
    double x;
    lp_status st;
    if ((st = lp_params_int(p, "factors", (long)base->factors, 1, 1024, &v, err))) return st;
    o->factors = (size_t)v;
    if ((st = lp_params_int(p, "iterations", (long)base->iterations, 1, 10000, &v, err)))
        return st;
    o->iterations = (size_t)fmax(1.0, round((double)v * resource));
    if ((st = lp_params_double(p, "regularization", base->regularization, 0, 1e6, &x, err)))
        return st;
    o->regularization = (float)x;
    if ((st = lp_params_double(p, "alpha", base->alpha, 0, 1e6, &x, err))) return st;
    o->alpha = (float)x;
    if ((st = lp_params_double(p, "learning_rate", base->learning_rate, 1e-6, 10, &x, err)))
        return st;
    o->learning_rate = (float)x;
    if ((st = lp_params_int(p, "neighbors", (long)base->neighbors, 1, 100000, &v, err))) return st;
    o->neighbors = (size_t)v;
    if ((st = lp_params_double(p, "shrinkage", base->shrinkage, 0, 1e6, &x, err))) return st;
    o->shrinkage = (float)x;
    return lp_mf_opts_check(o, err);
}

/* Fit o on tr and put its NDCG@k on va (tr's items left out of the lists) in *ndcg. */
static lp_status fit_score(const lp_mf_data *tr, const lp_mf_data *va, const lp_mf_opts *o,
                           size_t k, double *ndcg, lp_err *err)
{
    lp_mf *m;
    lp_status st = lp_mf_fit(tr, o, &m, err);
    if (st) return st;
    lp_mf_eval e;
    st = lp_mf_evaluate(m, tr, va, k, 0, &e, err);
    lp_mf_free(m);
    if (!st) *ndcg = e.ndcg;
    return st;
}

static lp_status tune_objective(const lp_params *p, double resource, double *score, void *vctx,
                                lp_err *err)
{
    tune_ctx *c = vctx;
    lp_mf_opts o;
    lp_status st = trial_opts(p, resource, &c->base, &o, err);
    return st ? st : fit_score(c->train, c->valid, &o, c->k, score, err);
}

/* The validation split of tune and --model auto: every user's last `holdout` interactions by
 * c->time_col in *va, the rest in *tr. Without a time column `holdout` of each user's rows
 * drawn at random (seeded): file order is often not time order (MovieLens' files are sorted by
 * user and item, so "the last" would be the highest item ids). */
static lp_status holdout_split(const lp_frame *frame, const rec_cols *c, size_t holdout,
                               uint64_t seed, const char *what, lp_mf_data **tr, lp_mf_data **va,
                               lp_err *err)
{
    *tr = *va = NULL;
    lp_frame *shuffled = NULL;
    if (!c->time_col) {
        size_t nr = lp_frame_nrows(frame), *perm = lp_mallocarray(nr + 1, sizeof *perm);
        if (!perm) return lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
        for (size_t i = 0; i < nr; i++) perm[i] = i;
        lp_rng r;
        lp_rng_seed(&r, seed);
        lp_rng_shuffle_idx(&r, perm, nr);
        lp_status s = lp_frame_take_rows(frame, perm, nr, &shuffled, err);
        free(perm);
        if (s) return s;
        frame = shuffled;
    }
    lp_split sp;
    lp_status st = lp_mf_split_last(frame, c->user_col, c->time_col, holdout, &sp, err);
    if (st) {
        lp_frame_free(shuffled);
        return st;
    }
    if (!sp.n_test) {
        lp_split_free(&sp);
        lp_frame_free(shuffled);
        return lp_err_set(err, LP_EINVAL, "%s: no user has more than %zu interactions to hold "
                          "out", what, holdout);
    }
    if (!(st = lp_mf_data_from_frame(frame, sp.train, sp.n_train, c->user_col, c->item_col,
                                     c->weight_col, c->type_col, c->time_col, &c->ev,
                                     "validation split, train part", tr, NULL, err)))
        st = lp_mf_data_from_frame(frame, sp.test, sp.n_test, c->user_col, c->item_col,
                                   c->weight_col, c->type_col, c->time_col, &c->ev,
                                   "validation split, held-out part", va, NULL, err);
    lp_split_free(&sp);
    lp_frame_free(shuffled);
    if (st) {
        lp_mf_data_free(*tr), lp_mf_data_free(*va);
        *tr = *va = NULL;
    }
    return st;
}

lp_status rec_choose(const lp_frame *frame, const rec_cols *c, const lp_mf_opts *cand, size_t n,
                     size_t holdout, size_t k, size_t *best, double *ndcg, lp_err *err)
{
    lp_mf_data *tr, *va;
    lp_status st = holdout_split(frame, c, holdout, cand[0].seed, "--model auto", &tr, &va, err);
    if (st) return st;
    bool any = false;
    lp_err e1;
    for (size_t i = 0; i < n; i++) {
        ndcg[i] = NAN;
        if (fit_score(tr, va, &cand[i], k, &ndcg[i], &e1)) {
            lp_log_warn("--model auto: %s left out: %s", lp_mf_kind_name(cand[i].kind), e1.msg);
            ndcg[i] = NAN;
            if (err) *err = e1;
            continue;
        }
        if (!any || ndcg[i] > ndcg[*best]) *best = i;
        any = true;
    }
    lp_mf_data_free(tr), lp_mf_data_free(va);
    return any ? LP_OK : e1.status;
}

lp_status rec_tune(const lp_frame *frame, const rec_cols *c, const lp_mf_opts *base,
                   const rec_tune_opts *t, lp_mf_opts *best, double *best_ndcg, lp_err *err)
{
    lp_mf_data *tr = NULL, *va = NULL;
    lp_status st = holdout_split(frame, c, t->holdout, t->seed, "tune", &tr, &va, err);
    if (st) return st;
    tune_ctx ctx = {.train = tr, .valid = va, .base = *base, .k = t->k};
    lp_search_param als_space[] = {
        {.name = "factors", .kind = LP_SPACE_KIND_INT, .lo = 8, .hi = 128},
        {.name = "regularization", .kind = LP_SPACE_KIND_LOG, .lo = 1e-3, .hi = 1},
        {.name = "alpha", .kind = LP_SPACE_KIND_LOG, .lo = 0.1, .hi = 40},
        {.name = "iterations", .kind = LP_SPACE_KIND_INT, .lo = 5, .hi = 30},
    };
    lp_search_param bpr_space[] = {
        {.name = "factors", .kind = LP_SPACE_KIND_INT, .lo = 8, .hi = 128},
        {.name = "regularization", .kind = LP_SPACE_KIND_LOG, .lo = 1e-4, .hi = 0.1},
        {.name = "learning_rate", .kind = LP_SPACE_KIND_LOG, .lo = 0.005, .hi = 0.2},
        {.name = "iterations", .kind = LP_SPACE_KIND_INT, .lo = 10, .hi = 100},
    };
    lp_search_param knn_space[] = {
        {.name = "neighbors", .kind = LP_SPACE_KIND_INT, .lo = 10, .hi = 400},
        {.name = "shrinkage", .kind = LP_SPACE_KIND_LOG, .lo = 0.1, .hi = 200},
    };
    const lp_search_param *space = als_space;
    size_t n_space = 4;
    if (base->kind == LP_MF_KIND_BPR) space = bpr_space;
    if (base->kind == LP_MF_KIND_ITEMKNN) space = knn_space, n_space = 2;
    if (base->kind == LP_MF_KIND_POPULAR) {
        lp_mf_data_free(tr), lp_mf_data_free(va);
        return lp_err_set(err, LP_EUNSUPPORTED, "tune: the popular model has no parameters");
    }
    lp_search_opts so = lp_search_opts_default();
    so.max_trials = t->trials;
    so.time_budget_s = t->time_budget_s;
    so.seed = t->seed;
    so.study = "recommend";
    lp_search_result res = {0};
    st = lp_search_run(space, n_space, NULL, &so, tune_objective, &ctx, &res, err);
    if (!st) {
        st = trial_opts(res.best, 1.0, base, best, err);
        *best_ndcg = res.best_score;
    }
    if (!st) {
        /* the defaults are a candidate too: a few short trials can all fall below them (BPR
         * at a handful of epochs) */
        double d;
        lp_err e1;
        if (!fit_score(tr, va, base, t->k, &d, &e1) && d > *best_ndcg) {
            lp_log_info("tune: the defaults (validation NDCG@%zu %.4f) beat the best trial "
                        "(%.4f)", t->k, d, *best_ndcg);
            *best = *base;
            *best_ndcg = d;
        }
    }
    lp_params_free(res.best);
    lp_mf_data_free(tr), lp_mf_data_free(va);
    return st;
}
