/*
 * tune.h - hyper-parameter search: random search plus successive halving (the synchronous
 * form of ASHA; Li et al. 2018, "Massively parallel hyperparameter tuning"; Jamieson &
 * Talwalkar 2016) under a trial or time budget, every trial recorded in SQLite.
 *
 * The caller gives a search space (lp_search_param), fixed base parameters, and an objective
 * that trains with one trial's parameters at a given resource (a fraction in (0, 1] of the
 * full budget: boosting rounds, epochs or training rows — the objective decides) and returns a
 * score where higher is better. A bracket samples n configurations at the smallest resource,
 * keeps the best 1/eta of them at eta times the resource, and so on up to resource 1;
 * brackets repeat until the trial budget or the time budget is spent. The best configuration
 * seen at full resource (or, failing that, at the largest resource reached) is returned; the
 * caller re-fits it on all its data.
 */
#ifndef LEPTON_TUNE_H
#define LEPTON_TUNE_H

#include "lepton/base.h"
#include "lepton/model.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum lp_space_kind {
    LP_SPACE_KIND_INT = 0,  /* uniform integer in [lo, hi] */
    LP_SPACE_KIND_FLOAT,    /* uniform in [lo, hi] */
    LP_SPACE_KIND_LOG,      /* log-uniform in [lo, hi], lo > 0 */
    LP_SPACE_KIND_CHOICE    /* one of choices (NULL-terminated) */
} lp_space_kind;

typedef struct lp_search_param {
    const char *name;
    lp_space_kind kind;
    double lo, hi;
    const char *const *choices;
} lp_search_param;

typedef struct lp_search_opts {
    size_t max_trials;     /* evaluations in all (0 = unlimited; then time_budget_s must be set) */
    double time_budget_s;  /* wall-clock budget (0 = none); a running trial is not interrupted */
    double min_resource;   /* smallest resource fraction (default 1/9) */
    double eta;            /* halving rate (default 3) */
    size_t bracket_size;   /* configurations per bracket (default 9) */
    uint64_t seed;         /* sampling seed (default 42) */
    const char *db_path;   /* SQLite file for the trial log, or NULL */
    const char *study;     /* study name in the log (default "study") */
} lp_search_opts;

lp_search_opts lp_search_opts_default(void);
lp_status lp_search_opts_check(const lp_search_opts *o, lp_err *err);

/* Train with params at resource in (0, 1] and put the score (higher is better) in *score.
 * A non-OK status marks the trial failed (recorded with its message) and the search goes on,
 * unless it is LP_ENOMEM or LP_EINTERNAL, which stop the search. */
typedef lp_status (*lp_objective_fn)(const lp_params *params, double resource, double *score,
                                     void *ctx, lp_err *err);

typedef struct lp_search_result {
    lp_params *best;       /* base + the best trial's values; caller frees */
    double best_score;
    double best_resource;
    size_t trials, failed;
    double seconds;
} lp_search_result;

/* Run the search. space (n entries) names the parameters tried; base holds fixed ones (may be
 * NULL). Progress goes through lp_progress. Errors: LP_EINVAL for a bad space or options,
 * LP_EDB when the trial log cannot be written, LP_ESTATE when every trial failed (the message
 * is the last failure's). Not thread-safe; the objective runs on the calling thread. */
lp_status lp_search_run(const lp_search_param *space, size_t n, const lp_params *base,
                        const lp_search_opts *opts, lp_objective_fn fn, void *ctx,
                        lp_search_result *out, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
