/*
 * tuning.h - hyper-parameter search for `lepton tune` and `lepton pipeline`: a search space per
 * model family and an objective that trains on part of the training rows and scores on a
 * held-out validation split.
 */
#ifndef LEPTON_CLI_TUNING_H
#define LEPTON_CLI_TUNING_H

#include "modelio.h"

typedef struct cli_tune {
    lp_model_kind kind;
    const char *label;
    const lp_params *base;       /* fixed parameters (may be NULL) */
    const char *const *drop;
    size_t n_drop;
    uint64_t seed;
    double budget_s;             /* wall-clock budget */
    size_t max_trials;           /* 0 = time budget only */
    const char *trials_db;       /* SQLite trial log, or NULL */
} cli_tune;

/* Parse "60s", "2m", "1h" or plain seconds into *secs. */
lp_status cli_parse_budget(const char *s, double *secs, lp_err *err);

/* Search on train (a validation split is carved out of it, stratified for classification),
 * then re-fit the best parameters on all of train. *best_params (caller frees) and *model
 * (caller frees) are the result; *score the best validation score (higher is better:
 * -logloss for classification, -rmse for regression); *trials the number of trials. */
lp_status cli_tune_run(const cli_tune *t, const lp_frame *train, lp_params **best_params,
                       lp_model **model, double *score, size_t *trials, lp_err *err);

#endif
