/*
 * dx_tabular.c - the tabular model of lepton-diagnosis (dx.h): logistic regression with its
 * regularization chosen by k-fold cross-validation on the training file.
 *
 * Folds are seeded (lp_kfold_split, shuffled); every fold fits the same default pipeline on
 * its own training part, so no statistic of a test fold leaks into its model. Not here:
 * temperature scaling and abstention for tabular inputs (the service takes text and images).
 */
#include "dx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DX_CV_FOLDS 5

static const double C_GRID[] = {0.01, 0.03, 0.1, 0.3, 1, 3, 10};

/* One fit with inverse regularization C on train (valid: explicit validation frame or NULL). */
static lp_status fit(const lp_frame *train, const lp_frame *valid, const char *label, double C,
                     const char *path, const dx_train_opts *o, lp_model **out, lp_err *err)
{
    lp_params *p = lp_params_new();
    if (!p)
        return lp_err_set(err, LP_ENOMEM, "tabular: out of memory");
    lp_status st = lp_params_set_double(p, "C", C, err);
    lp_train_opts to = lp_train_opts_default();
    to.kind = LP_MODEL_KIND_LOGISTIC;
    to.label = label;
    to.params = p;
    to.seed = o->seed;
    to.data_name = path;
    const char *drop[1] = {"row"};
    if (lp_frame_find(train, "row") >= 0)
        to.drop = drop, to.n_drop = 1;
    if (!st)
        st = lp_model_train(train, valid, &to, out, err);
    lp_params_free(p);
    return st;
}

lp_status dx_tabular_train(const char *path, const char *valid_path, const char *label,
                           const dx_train_opts *o, lp_model **out, double *C, double *cv_acc,
                           lp_err *err)
{
    *out = NULL;
    lp_frame *f = NULL, *va = NULL;
    lp_status st = lp_frame_read(path, NULL, &f, err);
    if (!st && valid_path)
        st = lp_frame_read(valid_path, NULL, &va, err);
    size_t n = st ? 0 : lp_frame_nrows(f), j;
    if (!st)
        st = lp_frame_require(f, label, path, &j, err);
    if (!st && n < 2 * DX_CV_FOLDS)
        st = lp_err_set(err, LP_EINVAL, "%s: %zu rows; cross-validation needs at least %d", path,
                        n, 2 * DX_CV_FOLDS);
    int32_t *fold = st ? NULL : lp_mallocarray(n, sizeof *fold);
    size_t *tr = st ? NULL : lp_mallocarray(n, sizeof *tr);
    size_t *te = st ? NULL : lp_mallocarray(n, sizeof *te);
    if (!st && (!fold || !tr || !te))
        st = lp_err_set(err, LP_ENOMEM, "tabular: out of memory");
    if (!st)
        st = lp_kfold_split(n, DX_CV_FOLDS, o->seed, fold, err);
    double best = -1, best_c = 1;
    size_t ng = sizeof C_GRID / sizeof C_GRID[0];
    for (size_t g = 0; g < ng && !st; g++) {
        double acc = 0;
        for (size_t k = 0; k < DX_CV_FOLDS && !st; k++) {
            size_t ntr, nte;
            lp_frame *ftr = NULL, *fte = NULL;
            lp_model *m = NULL;
            lp_eval ev;
            st = lp_kfold_indices(fold, n, DX_CV_FOLDS, k, tr, &ntr, te, &nte, err);
            if (!st)
                st = lp_frame_take_rows(f, tr, ntr, &ftr, err);
            if (!st)
                st = lp_frame_take_rows(f, te, nte, &fte, err);
            if (!st)
                st = fit(ftr, fte, label, C_GRID[g], path, o, &m, err);
            if (!st)
                st = lp_model_evaluate(m, fte, &ev, err);
            if (!st)
                acc += ev.accuracy / DX_CV_FOLDS;
            lp_model_free(m);
            lp_frame_free(ftr);
            lp_frame_free(fte);
        }
        if (!st && acc > best + 1e-12)
            best = acc, best_c = C_GRID[g];
    }
    if (!st)
        st = fit(f, va, label, best_c, path, o, out, err);
    if (!st) {
        *C = best_c;
        if (cv_acc)
            *cv_acc = best;
    }
    free(fold);
    free(tr);
    free(te);
    lp_frame_free(f);
    lp_frame_free(va);
    return st;
}
