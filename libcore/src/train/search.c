/*
 * search.c - random search with successive halving and a SQLite trial log (see tune.h).
 * Trial log schema: trials(study TEXT, trial INTEGER, bracket INTEGER, rung INTEGER,
 * params TEXT (JSON), resource REAL, score REAL, seconds REAL, status TEXT, message TEXT,
 * created_at REAL).
 */
#include "lepton/tune.h"

#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

lp_search_opts lp_search_opts_default(void)
{
    return (lp_search_opts){.max_trials = 30, .time_budget_s = 0, .min_resource = 1.0 / 9,
                            .eta = 3, .bracket_size = 9, .seed = 42, .db_path = NULL,
                            .study = "study"};
}

lp_status lp_search_opts_check(const lp_search_opts *o, lp_err *err)
{
    if (!o->max_trials && !(o->time_budget_s > 0))
        return lp_err_set(err, LP_EINVAL, "search needs a trial budget or a time budget");
    if (o->time_budget_s < 0 || !isfinite(o->time_budget_s))
        return lp_err_set(err, LP_EINVAL, "time budget %g s: must be >= 0", o->time_budget_s);
    if (!(o->min_resource > 0 && o->min_resource <= 1))
        return lp_err_set(err, LP_EINVAL, "min_resource=%g: must be in (0, 1]", o->min_resource);
    if (!(o->eta >= 2 && o->eta <= 10))
        return lp_err_set(err, LP_EINVAL, "eta=%g: must be in [2, 10]", o->eta);
    if (o->bracket_size < 1 || o->bracket_size > 10000)
        return lp_err_set(err, LP_EINVAL, "bracket_size=%zu: must be in [1, 10000]",
                          o->bracket_size);
    return LP_OK;
}

static lp_status check_space(const lp_search_param *sp, size_t n, lp_err *err)
{
    for (size_t i = 0; i < n; i++) {
        const lp_search_param *p = &sp[i];
        if (!p->name || !*p->name)
            return lp_err_set(err, LP_EINVAL, "search space entry %zu has no name", i);
        switch (p->kind) {
        case LP_SPACE_KIND_INT:
        case LP_SPACE_KIND_FLOAT:
            if (!(p->lo <= p->hi))
                return lp_err_set(err, LP_EINVAL, "search range of '%s': lo %g > hi %g", p->name,
                                  p->lo, p->hi);
            break;
        case LP_SPACE_KIND_LOG:
            if (!(p->lo > 0 && p->lo <= p->hi))
                return lp_err_set(err, LP_EINVAL,
                                  "log search range of '%s' must have 0 < lo <= hi (%g, %g)",
                                  p->name, p->lo, p->hi);
            break;
        case LP_SPACE_KIND_CHOICE:
            if (!p->choices || !p->choices[0])
                return lp_err_set(err, LP_EINVAL, "search choices of '%s' are empty", p->name);
            break;
        default:
            return lp_err_set(err, LP_EINVAL, "search space entry '%s' has a bad kind", p->name);
        }
    }
    return LP_OK;
}

static lp_status sample(const lp_search_param *sp, size_t n, const lp_params *base, lp_rng *r,
                        lp_params **out, lp_err *err)
{
    lp_params *p = base ? lp_params_clone(base) : lp_params_new();
    if (!p)
        return lp_err_set(err, LP_ENOMEM, "search: out of memory");
    lp_status st = LP_OK;
    for (size_t i = 0; i < n && !st; i++) {
        const lp_search_param *s = &sp[i];
        char buf[64];
        switch (s->kind) {
        case LP_SPACE_KIND_INT: {
            long lo = (long)ceil(s->lo), hi = (long)floor(s->hi);
            long v = hi > lo ? lo + (long)lp_rng_below(r, (uint64_t)(hi - lo + 1)) : lo;
            snprintf(buf, sizeof buf, "%ld", v);
            st = lp_params_set(p, s->name, buf, err);
            break;
        }
        case LP_SPACE_KIND_FLOAT:
            st = lp_params_set_double(p, s->name, s->lo + (s->hi - s->lo) * lp_rng_uniform(r), err);
            break;
        case LP_SPACE_KIND_LOG:
            st = lp_params_set_double(
                p, s->name, exp(log(s->lo) + (log(s->hi) - log(s->lo)) * lp_rng_uniform(r)), err);
            break;
        case LP_SPACE_KIND_CHOICE: {
            size_t k = 0;
            while (s->choices[k])
                k++;
            st = lp_params_set(p, s->name, s->choices[lp_rng_below(r, k)], err);
            break;
        }
        }
    }
    if (st) {
        lp_params_free(p);
        return st;
    }
    *out = p;
    return LP_OK;
}

typedef struct cand {
    lp_params *p;
    double score;
    bool ok;
} cand;

static int cmp_cand(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    if (x->ok != y->ok)
        return x->ok ? -1 : 1;
    return (x->score < y->score) - (x->score > y->score); /* descending */
}

static lp_status log_open(const char *path, sqlite3 **db, lp_err *err)
{
    *db = NULL;
    if (!path)
        return LP_OK;
    if (sqlite3_open(path, db) != SQLITE_OK) {
        lp_status st = lp_err_set(err, LP_EDB, "%s: cannot open trial log: %s", path,
                                  *db ? sqlite3_errmsg(*db) : "out of memory");
        sqlite3_close(*db);
        *db = NULL;
        return st;
    }
    sqlite3_busy_timeout(*db, 5000);
    char *msg = NULL;
    if (sqlite3_exec(*db,
                     "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS trials(study TEXT, "
                     "trial INTEGER, bracket INTEGER, rung INTEGER, params TEXT, resource REAL, "
                     "score REAL, seconds REAL, status TEXT, message TEXT, created_at REAL);",
                     NULL, NULL, &msg) != SQLITE_OK) {
        lp_status st = lp_err_set(err, LP_EDB, "%s: %s", path, msg ? msg : "schema failed");
        sqlite3_free(msg);
        sqlite3_close(*db);
        *db = NULL;
        return st;
    }
    return LP_OK;
}

static lp_status log_trial(sqlite3 *db, const char *path, const char *study, size_t trial,
                           size_t bracket, size_t rung, const lp_params *p, double resource,
                           double score, double secs, bool ok, const char *msg, lp_err *err)
{
    if (!db)
        return LP_OK;
    sqlite3_stmt *q = NULL;
    char *pj = lp_params_to_json(p);
    int rc = sqlite3_prepare_v2(db,
                                "INSERT INTO trials VALUES(?,?,?,?,?,?,?,?,?,?,?)", -1, &q, NULL);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(q, 1, study, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)trial);
        sqlite3_bind_int64(q, 3, (sqlite3_int64)bracket);
        sqlite3_bind_int64(q, 4, (sqlite3_int64)rung);
        sqlite3_bind_text(q, 5, pj ? pj : "{}", -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(q, 6, resource);
        if (ok && isfinite(score))
            sqlite3_bind_double(q, 7, score);
        else
            sqlite3_bind_null(q, 7);
        sqlite3_bind_double(q, 8, secs);
        sqlite3_bind_text(q, 9, ok ? "ok" : "failed", -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 10, msg ? msg : "", -1, SQLITE_TRANSIENT);
        sqlite3_bind_double(q, 11, lp_time_wall());
        rc = sqlite3_step(q) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
    }
    sqlite3_finalize(q);
    free(pj);
    if (rc != SQLITE_OK)
        return lp_err_set(err, LP_EDB, "%s: cannot record trial: %s", path, sqlite3_errmsg(db));
    return LP_OK;
}

lp_status lp_search_run(const lp_search_param *space, size_t n, const lp_params *base,
                        const lp_search_opts *opts, lp_objective_fn fn, void *ctx,
                        lp_search_result *out, lp_err *err)
{
    memset(out, 0, sizeof *out);
    out->best_score = -INFINITY;
    lp_search_opts o = opts ? *opts : lp_search_opts_default();
    lp_status st = lp_search_opts_check(&o, err);
    if (!st)
        st = check_space(space, n, err);
    if (st)
        return st;
    sqlite3 *db = NULL;
    if ((st = log_open(o.db_path, &db, err)))
        return st;
    lp_rng rng;
    lp_rng_seed(&rng, o.seed);
    uint64_t t0 = lp_time_ns();
    lp_progress *prog = lp_progress_begin("tune", o.max_trials);
    lp_err last;
    lp_err_clear(&last);
    /* rungs: resources min_resource * eta^i capped at 1 */
    size_t n_rungs = 1;
    for (double r = o.min_resource; r < 1 - 1e-12; r *= o.eta)
        n_rungs++;
    size_t bracket = 0;
    bool stop = false;
    while (!stop) {
        size_t m = o.bracket_size;
        cand *c = lp_calloc(m, sizeof *c);
        if (!c) {
            st = lp_err_set(err, LP_ENOMEM, "search: out of memory");
            break;
        }
        for (size_t i = 0; i < m && !st; i++)
            st = sample(space, n, base, &rng, &c[i].p, err);
        double res = n_rungs > 1 ? o.min_resource : 1.0;
        for (size_t rung = 0; rung < n_rungs && !st && !stop && m > 0; rung++) {
            if (rung + 1 == n_rungs)
                res = 1.0;
            for (size_t i = 0; i < m && !st; i++) {
                if (o.max_trials && out->trials >= o.max_trials) {
                    stop = true;
                    m = i;
                    break;
                }
                if (o.time_budget_s > 0 && lp_time_since(t0) > o.time_budget_s && out->trials) {
                    stop = true;
                    m = i;
                    break;
                }
                uint64_t ts = lp_time_ns();
                lp_err terr;
                lp_err_clear(&terr);
                double score = NAN;
                lp_status ts_st = fn(c[i].p, res, &score, ctx, &terr);
                double secs = lp_time_since(ts);
                out->trials++;
                lp_progress_update(prog, out->trials);
                c[i].ok = ts_st == LP_OK && isfinite(score);
                c[i].score = c[i].ok ? score : -INFINITY;
                if (!c[i].ok) {
                    out->failed++;
                    if (ts_st == LP_OK)
                        lp_err_set(&terr, LP_ENUMERIC, "objective returned a non-finite score");
                    last = terr;
                    if (ts_st == LP_ENOMEM || ts_st == LP_EINTERNAL) {
                        st = lp_err_set(err, ts_st, "%s", lp_err_text(&terr));
                        break;
                    }
                }
                lp_status ls = log_trial(db, o.db_path, o.study ? o.study : "study", out->trials,
                                         bracket, rung, c[i].p, res, score, secs, c[i].ok,
                                         c[i].ok ? NULL : lp_err_text(&terr), err);
                if (ls) {
                    st = ls;
                    break;
                }
                bool better = c[i].ok && (res > out->best_resource + 1e-12 ||
                                          (fabs(res - out->best_resource) <= 1e-12 &&
                                           score > out->best_score));
                if (better) {
                    lp_params *copy = lp_params_clone(c[i].p);
                    if (!copy) {
                        st = lp_err_set(err, LP_ENOMEM, "search: out of memory");
                        break;
                    }
                    lp_params_free(out->best);
                    out->best = copy;
                    out->best_score = score;
                    out->best_resource = res;
                }
            }
            if (st || stop)
                break;
            /* keep the best 1/eta for the next rung */
            qsort(c, m, sizeof *c, cmp_cand);
            size_t keep = (size_t)floor((double)m / o.eta);
            if (keep < 1)
                keep = 1;
            for (size_t i = keep; i < m; i++) {
                lp_params_free(c[i].p);
                c[i].p = NULL;
            }
            m = keep;
            res *= o.eta;
            if (res > 1)
                res = 1;
        }
        for (size_t i = 0; i < o.bracket_size; i++)
            lp_params_free(c[i].p);
        free(c);
        bracket++;
        if (st)
            break;
        if (o.max_trials && out->trials >= o.max_trials)
            stop = true;
        if (o.time_budget_s > 0 && lp_time_since(t0) > o.time_budget_s)
            stop = true;
    }
    lp_progress_end(prog);
    sqlite3_close(db);
    out->seconds = lp_time_since(t0);
    if (!st && !out->best)
        st = lp_err_set(err, LP_ESTATE, "every trial failed; the last: %s", lp_err_text(&last));
    if (st) {
        lp_params_free(out->best);
        out->best = NULL;
    }
    return st;
}
