/*
 * dx_tabular.c - the tabular model of lepton-diagnosis (dx.h): logistic regression with its
 * regularization chosen by k-fold cross-validation on the training file, and a temperature
 * fitted on the out-of-fold probabilities of that choice.
 *
 * Folds are seeded and stratified by the label (make_folds); every fold fits the same default
 * pipeline on its own training part, so no statistic of a test fold leaks into its model. The
 * temperature is fitted on the folds' held-out predictions at the chosen C (every training row
 * predicted once, by a model that did not see it), not on a validation split: a tabular file
 * is small (breast-cancer-wisconsin has 455 training rows) and a 10% split would fit T on ~45
 * rows. The out-of-fold predictions come from models fitted on 80% of the rows, slightly less
 * confident than the final model, so the fitted T leans a little towards sharpening. The
 * settings, including how T was fitted, travel with the model as the "dx.tabular" section
 * (JSON).
 */
#include "dx.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DX_CV_FOLDS 5
#define DX_TAB_SECTION "dx.tabular"

static const double C_GRID[] = {0.01, 0.03, 0.1, 0.3, 1, 3, 10};

/* One fit with inverse regularization C on train (valid: explicit validation frame or NULL),
 * leaving out o->drop_cols (every column of them in train). */
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
    to.drop = o->drop_cols, to.n_drop = o->n_drop_cols;
    if (!st)
        st = lp_model_train(train, valid, &to, out, err);
    lp_params_free(p);
    return st;
}

/* Class index of row i's label in m (-1: missing or unknown). */
static int32_t class_of(const lp_model *m, const lp_column *col, size_t i)
{
    char buf[256];
    const char *s = lp_column_cell_str(col, i, buf, sizeof buf);
    for (size_t c = 0; s && c < lp_model_n_classes(m); c++)
        if (strcmp(s, lp_model_class(m, c)) == 0)
            return (int32_t)c;
    return -1;
}

/* The k-fold work of one training file: its folds and index scratch. */
typedef struct cv {
    const lp_frame *f;
    const char *path, *label;
    const dx_train_opts *o;
    size_t n;
    int32_t *fold;
    size_t *tr, *te;
} cv;

/* Fold k's model at C; *fte gets the held-out rows (caller frees both). */
static lp_status fold_fit(const cv *v, size_t k, double C, lp_model **m, lp_frame **fte,
                          lp_err *err)
{
    size_t ntr, nte;
    lp_frame *ftr = NULL;
    lp_status st = lp_kfold_indices(v->fold, v->n, DX_CV_FOLDS, k, v->tr, &ntr, v->te, &nte, err);
    if (!st)
        st = lp_frame_take_rows(v->f, v->tr, ntr, &ftr, err);
    if (!st)
        st = lp_frame_take_rows(v->f, v->te, nte, fte, err);
    if (!st)
        st = fit(ftr, *fte, v->label, C, v->path, v->o, m, err);
    lp_frame_free(ftr);
    return st;
}

/* Out-of-fold log-probabilities z (n, k) over the classes of the final model fm at C, and the
 * labels y (n; -1 where the row has none the model knows). A class a fold's model never saw
 * gets probability 1e-12 (log -27.6), the floor of every probability here. */
static lp_status oof_logits(const cv *v, double C, const lp_model *fm, float *z, int32_t *y,
                            lp_err *err)
{
    size_t K = lp_model_n_classes(fm), jl;
    lp_status st = lp_frame_require(v->f, v->label, v->path, &jl, err);
    for (size_t k = 0; k < DX_CV_FOLDS && !st; k++) {
        lp_model *m = NULL;
        lp_frame *fte = NULL;
        lp_predictions p = {0};
        st = fold_fit(v, k, C, &m, &fte, err);
        if (!st)
            st = lp_model_predict(m, fte, &p, err);
        if (!st && p.k > DX_MAX_CLASSES)
            st = lp_err_set(err, LP_EINVAL, "%s: more than %d classes", v->path, DX_MAX_CLASSES);
        size_t map[DX_MAX_CLASSES];
        for (size_t c = 0; !st && c < p.k; c++) {
            map[c] = SIZE_MAX;
            for (size_t g = 0; g < K; g++)
                if (strcmp(lp_model_class(m, c), lp_model_class(fm, g)) == 0)
                    map[c] = g;
        }
        for (size_t i = 0; !st && i < p.n; i++) {
            size_t r = v->te[i];
            for (size_t g = 0; g < K; g++)
                z[r * K + g] = (float)log(1e-12);
            for (size_t c = 0; c < p.k; c++)
                if (map[c] != SIZE_MAX)
                    z[r * K + map[c]] = (float)log(fmax(p.out[i * p.k + c], 1e-12));
            y[r] = class_of(fm, lp_frame_col(v->f, jl), r);
        }
        lp_predictions_clear(&p);
        lp_model_free(m);
        lp_frame_free(fte);
    }
    return st;
}

/* Temperature and ECE before / after on the out-of-fold predictions (rows with y >= 0). */
static lp_status calibrate(const cv *v, double C, const lp_model *fm, dx_tabular_info *info,
                           lp_err *err)
{
    size_t K = lp_model_n_classes(fm), n = v->n, m = 0;
    float *z = lp_mallocarray(n, K * sizeof *z);
    int32_t *y = lp_mallocarray(n, sizeof *y);
    double *p = lp_mallocarray(n, K * sizeof *p), *tmp = lp_mallocarray(n, K * sizeof *tmp);
    lp_status st = z && y && p && tmp ? LP_OK : lp_err_set(err, LP_ENOMEM, "tabular: out of memory");
    for (size_t i = 0; !st && i < n; i++)
        y[i] = -1;
    if (!st)
        st = oof_logits(v, C, fm, z, y, err);
    for (size_t i = 0; !st && i < n; i++) /* keep the labelled rows, in order */
        if (y[i] >= 0) {
            memmove(z + m * K, z + i * K, K * sizeof *z);
            y[m++] = y[i];
        }
    if (!st && m == 0)
        st = lp_err_set(err, LP_EINVAL, "%s: no labelled row to calibrate on", v->path);
    if (!st)
        st = dx_fit_temperature(z, 1, y, m, K, &info->T, NULL, err);
    if (!st) {
        info->ece_before = dx_tta_ece(z, 1, y, m, K, 1.0, p, tmp);
        info->ece_after = dx_tta_ece(z, 1, y, m, K, info->T, p, tmp);
    }
    free(z);
    free(y);
    free(p);
    free(tmp);
    return st;
}

static lp_status save_info(lp_model *m, const dx_tabular_info *info, lp_err *err)
{
    cJSON *c = cJSON_CreateObject();
    cJSON_AddNumberToObject(c, "version", 1);
    cJSON_AddNumberToObject(c, "C", info->C);
    cJSON_AddNumberToObject(c, "cv_folds", DX_CV_FOLDS);
    cJSON_AddNumberToObject(c, "cv_accuracy", info->cv_accuracy);
    cJSON_AddNumberToObject(c, "temperature", info->T);
    cJSON_AddStringToObject(c, "temperature_fitted_on", "out-of-fold predictions at C");
    cJSON_AddNumberToObject(c, "cv_ece_before", info->ece_before);
    cJSON_AddNumberToObject(c, "cv_ece_after", info->ece_after);
    cJSON_AddNumberToObject(c, "abstain_below", info->abstain_p);
    char *s = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    lp_status st = s ? lp_model_set_extra(m, DX_TAB_SECTION, s, strlen(s), err)
                     : lp_err_set(err, LP_ENOMEM, "tabular: out of memory");
    free(s);
    return st;
}

lp_status dx_tabular_info_get(const lp_model *m, dx_tabular_info *out, lp_err *err)
{
    *out = (dx_tabular_info){.C = NAN, .cv_accuracy = NAN, .T = 1, .ece_before = NAN,
                             .ece_after = NAN, .abstain_p = 0};
    const void *data;
    size_t len;
    lp_status st = lp_model_get_extra(m, DX_TAB_SECTION, &data, &len, err);
    if (st)
        return st;
    cJSON *c = cJSON_ParseWithLength(data, len);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(c, "temperature");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(c, "abstain_below");
    if (!cJSON_IsNumber(t) || !(t->valuedouble >= DX_T_MIN && t->valuedouble <= DX_T_MAX) ||
        !cJSON_IsNumber(a) || !(a->valuedouble >= 0 && a->valuedouble < 1)) {
        cJSON_Delete(c);
        return lp_err_set(err, LP_EFORMAT, "model: bad %s section", DX_TAB_SECTION);
    }
    out->T = t->valuedouble;
    out->abstain_p = a->valuedouble;
    const char *keys[4] = {"C", "cv_accuracy", "cv_ece_before", "cv_ece_after"};
    double *dst[4] = {&out->C, &out->cv_accuracy, &out->ece_before, &out->ece_after};
    for (int i = 0; i < 4; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(c, keys[i]);
        if (cJSON_IsNumber(v))
            *dst[i] = v->valuedouble;
    }
    cJSON_Delete(c);
    return LP_OK;
}

void dx_tabular_apply(const dx_tabular_info *info, double *p, size_t n, size_t k)
{
    for (size_t i = 0; i < n; i++) {
        double *r = p + i * k, s = 0;
        for (size_t c = 0; c < k; c++)
            s += r[c] = pow(r[c], 1.0 / info->T);
        for (size_t c = 0; s > 0 && c < k; c++)
            r[c] /= s;
    }
}

/* Folds stratified by the label (sklearn's StratifiedKFold, as its LogisticRegressionCV uses
 * for classifiers): each fold keeps the class mix, so the fold accuracies that choose C vary
 * less. A missing label is a group of its own. LP_EINVAL for a label with more than
 * DX_MAX_CLASSES (256) distinct values or a class with one row (a numeric target, an id),
 * naming it. */
static lp_status make_folds(const lp_frame *f, size_t jl, size_t n, uint64_t seed, int32_t *fold,
                            lp_err *err)
{
    enum { MAXK = DX_MAX_CLASSES };
    char *seen[MAXK];
    size_t k = 0;
    int32_t *y = lp_mallocarray(n, sizeof *y);
    if (!y)
        return lp_err_set(err, LP_ENOMEM, "tabular: out of memory");
    const lp_column *col = lp_frame_col(f, jl);
    bool strat = true, oom = false;
    for (size_t i = 0; i < n && strat; i++) {
        char buf[256];
        const char *s = lp_column_cell_str(col, i, buf, sizeof buf);
        if (!s)
            s = "";
        size_t c = 0;
        while (c < k && strcmp(seen[c], s) != 0)
            c++;
        if (c == k && k == MAXK)
            strat = false;
        else if (c == k && !(seen[k++] = strdup(s)))
            strat = false, oom = true, k--;
        y[i] = (int32_t)c;
    }
    /* a class with one row cannot be both trained on and held out */
    size_t cnt[MAXK] = {0};
    for (size_t i = 0; strat && i < n; i++)
        cnt[y[i]]++;
    lp_status st = LP_OK;
    for (size_t c = 0; strat && c < k && !st; c++)
        if (cnt[c] < 2)
            st = lp_err_set(err, LP_EINVAL, "label '%s' has %zu row; the tabular model is a "
                            "classifier and cross-validation needs at least 2 rows of each class",
                            seen[c], cnt[c]);
    if (!st && oom)
        st = lp_err_set(err, LP_ENOMEM, "tabular: out of memory");
    else if (!st)
        st = strat ? lp_kfold_stratified(y, n, DX_CV_FOLDS, seed, fold, err)
                   : lp_err_set(err, LP_EINVAL, "the label has more than %d distinct values; the "
                                "tabular model is a classifier (2..%d classes)", MAXK, MAXK);
    for (size_t c = 0; c < k; c++)
        free(seen[c]);
    free(y);
    return st;
}

static bool listed(const char *const *v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

/* The columns of f to leave out (dx.h): *out (new array of names owned by f or o) and *n;
 * info->dropped lists them. */
static lp_status drop_columns(const lp_frame *f, const char *label, const char *path,
                              const dx_train_opts *o, const char ***out, size_t *n,
                              dx_tabular_info *info, lp_err *err)
{
    *out = NULL;
    *n = 0;
    size_t nc = lp_frame_ncols(f);
    const char **v = lp_calloc(nc + o->n_drop_cols + 1, sizeof *v);
    if (!v)
        return lp_err_set(err, LP_ENOMEM, "tabular: out of memory");
    lp_status st = LP_OK;
    for (size_t i = 0; i < o->n_drop_cols && !st; i++) {
        if (lp_frame_find(f, o->drop_cols[i]) < 0)
            st = lp_err_set(err, LP_ENOTFOUND, "%s: no column '%s' to drop", path,
                            o->drop_cols[i]);
        else if (strcmp(o->drop_cols[i], label) == 0)
            st = lp_err_set(err, LP_EINVAL, "%s: '%s' is the label; it cannot be dropped", path,
                            label);
        else if (!listed(v, *n, o->drop_cols[i]))
            v[(*n)++] = o->drop_cols[i];
    }
    if (!st && lp_frame_find(f, "row") >= 0 && strcmp(label, "row") != 0 && !listed(v, *n, "row"))
        v[(*n)++] = "row";
    /* identifiers, as lepton train leaves them out (lp_frame_identifier_cols) */
    const char **ids = NULL;
    size_t n_ids = 0;
    if (!st)
        st = lp_frame_identifier_cols(f, label, &ids, &n_ids, err);
    for (size_t i = 0; i < n_ids; i++)
        if (!listed(v, *n, ids[i]))
            v[(*n)++] = ids[i];
    free(ids);
    /* a file without a header line (UCI's wdbc.data starts with the patient number): an
     * integer column named cJ by position with a value per row */
    lp_profile_opts po = lp_profile_opts_default();
    po.id_min_rows = SIZE_MAX;
    lp_profile *pr = NULL;
    if (!st)
        st = lp_profile_frame(f, &po, &pr, err);
    for (size_t j = 0; !st && j < pr->cols; j++) {
        const lp_col_profile *c = &pr->col[j];
        char pos_name[32];
        snprintf(pos_name, sizeof pos_name, "c%zu", j + 1);
        bool numbered = c->kind == LP_COL_KIND_INTEGER && strcmp(c->name, pos_name) == 0 &&
                        c->count >= LP_ID_MIN_ROWS && c->distinct == c->count;
        if (numbered && strcmp(c->name, label) != 0 && !listed(v, *n, c->name))
            v[(*n)++] = lp_frame_col(f, j)->name;
    }
    lp_profile_free(pr);
    info->dropped[0] = '\0';
    for (size_t i = 0, len = 0; !st && i < *n && len < sizeof info->dropped; i++)
        len += (size_t)snprintf(info->dropped + len, sizeof info->dropped - len, "%s%s",
                                i ? ", " : "", v[i]);
    if (st) {
        free(v);
        *n = 0;
        return st;
    }
    *out = v;
    return LP_OK;
}

lp_status dx_tabular_train(const char *path, const char *valid_path, const char *label,
                           const dx_train_opts *o, lp_model **out, dx_tabular_info *info,
                           lp_err *err)
{
    *out = NULL;
    *info = (dx_tabular_info){.C = NAN, .cv_accuracy = NAN, .T = 1, .ece_before = NAN,
                              .ece_after = NAN, .abstain_p = o->abstain_p};
    lp_frame *f = NULL, *va = NULL;
    /* a file without a header line by position; a class named "None" is a class */
    lp_status st = lp_frame_read_labelled(path, NULL, &label, 1, label, &f, err);
    if (!st && valid_path)
        st = lp_frame_read_labelled(valid_path, NULL, &label, 1, label, &va, err);
    size_t n = st ? 0 : lp_frame_nrows(f), j;
    if (!st)
        st = lp_frame_require(f, label, path, &j, err);
    if (!st && n < 2 * DX_CV_FOLDS)
        st = lp_err_set(err, LP_EINVAL, "%s: %zu rows; cross-validation needs at least %d", path,
                        n, 2 * DX_CV_FOLDS);
    const char **drop = NULL;
    size_t n_drop = 0;
    if (!st)
        st = drop_columns(f, label, path, o, &drop, &n_drop, info, err);
    dx_train_opts od = *o;
    od.drop_cols = drop, od.n_drop_cols = n_drop;
    o = &od;
    cv v = {.f = f, .path = path, .label = label, .o = o, .n = n};
    v.fold = st ? NULL : lp_mallocarray(n, sizeof *v.fold);
    v.tr = st ? NULL : lp_mallocarray(n, sizeof *v.tr);
    v.te = st ? NULL : lp_mallocarray(n, sizeof *v.te);
    if (!st && (!v.fold || !v.tr || !v.te))
        st = lp_err_set(err, LP_ENOMEM, "tabular: out of memory");
    if (!st && (st = make_folds(f, j, n, o->seed, v.fold, err)) != LP_OK)
        lp_err_prefix(err, "%s", path);
    double best = -1, best_c = 1;
    size_t ng = sizeof C_GRID / sizeof C_GRID[0];
    for (size_t g = 0; g < ng && !st; g++) {
        double acc = 0;
        for (size_t k = 0; k < DX_CV_FOLDS && !st; k++) {
            lp_frame *fte = NULL;
            lp_model *m = NULL;
            lp_eval ev;
            st = fold_fit(&v, k, C_GRID[g], &m, &fte, err);
            if (!st)
                st = lp_model_evaluate(m, fte, &ev, err);
            if (!st)
                acc += ev.accuracy / DX_CV_FOLDS;
            lp_model_free(m);
            lp_frame_free(fte);
        }
        if (!st && acc > best + 1e-12)
            best = acc, best_c = C_GRID[g];
    }
    /* the final model sees every training row: without a validation file the frame is its own
     * "validation" (lp_model_train would otherwise hold out a fifth of a small file); the
     * honest estimates are the fold accuracy and the out-of-fold ECE */
    lp_model *m = NULL;
    if (!st)
        st = fit(f, va ? va : f, label, best_c, path, o, &m, err);
    if (!st) {
        info->C = best_c;
        info->cv_accuracy = best;
    }
    if (!st && lp_model_n_classes(m) >= 2 && lp_model_n_classes(m) <= DX_MAX_CLASSES)
        st = calibrate(&v, best_c, m, info, err);
    if (!st)
        st = save_info(m, info, err);
    if (st)
        lp_model_free(m);
    else
        *out = m;
    free(v.fold);
    free(v.tr);
    free(v.te);
    free(drop);
    lp_frame_free(f);
    lp_frame_free(va);
    return st;
}
