/*
 * model.c - lp_model: the one handle over every family (model.h). It owns the input schema,
 * the fitted imputer (clean.h) and feature pipeline (feat.h), the family's fitted state
 * (family.h), the label's classes and the header JSON, and moves them to and from one .lpm
 * file (registry.h): sections "cleaner", "pipeline", "model", plus any extras.
 */
#include "model/family.h"

#include "lepton/clean.h"
#include "lepton/feat.h"
#include "lepton/metrics.h"
#include "lepton/registry.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define AUTO_CLASS_MAX 20 /* an integer label with at most this many values is a class label */

typedef struct extra {
    char name[LP_LPM_NAME_MAX];
    uint8_t *data;
    size_t len;
} extra;

struct lp_model {
    lp_model_kind kind;
    lp_task task;
    const lp_family *fam;
    void *impl;
    char *label;
    char **classes;
    size_t n_classes;
    char **inputs;
    lp_col_kind *input_kinds;
    size_t n_inputs;
    lp_cleaner *cleaner;
    lp_pipeline *pipe;
    char *header;
    extra *extras;
    size_t n_extras;
    double *valid_scores;
    size_t n_valid;
};

const lp_family *lp_family_get(lp_model_kind kind)
{
    switch (kind) {
    case LP_MODEL_KIND_LINEAR:
        return &lp_family_linear;
    case LP_MODEL_KIND_LOGISTIC:
        return &lp_family_logistic;
    case LP_MODEL_KIND_GBDT:
        return &lp_family_gbdt;
    case LP_MODEL_KIND_NN:
        return &lp_family_nn;
    default:
        return NULL;
    }
}

lp_train_opts lp_train_opts_default(void)
{
    return (lp_train_opts){.kind = LP_MODEL_KIND_GBDT, .valid_frac = 0.2, .seed = 42};
}

void lp_model_free(lp_model *m)
{
    if (!m)
        return;
    if (m->fam && m->impl)
        m->fam->free(m->impl);
    free(m->label);
    for (size_t k = 0; k < m->n_classes; k++)
        free(m->classes[k]);
    free(m->classes);
    for (size_t j = 0; j < m->n_inputs; j++)
        free(m->inputs[j]);
    free(m->inputs);
    free(m->input_kinds);
    lp_cleaner_free(m->cleaner);
    lp_pipeline_free(m->pipe);
    free(m->header);
    for (size_t i = 0; i < m->n_extras; i++)
        free(m->extras[i].data);
    free(m->extras);
    free(m->valid_scores);
    free(m);
}

void lp_predictions_clear(lp_predictions *p)
{
    if (!p)
        return;
    free(p->out);
    free(p->cls);
    memset(p, 0, sizeof *p);
}

/* ---- labels --------------------------------------------------------------------------------*/

/* Text of label cell i, or NULL when missing. */
static const char *label_text(const lp_column *c, size_t i, char *buf, size_t cap)
{
    if (c->missing[i])
        return NULL;
    return lp_column_cell_str(c, i, buf, cap);
}

static int cmp_num_str(const void *a, const void *b)
{
    double x = strtod(*(char *const *)a, NULL), y = strtod(*(char *const *)b, NULL);
    return (x > y) - (x < y);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static lp_status decide_task(const lp_train_opts *o, const lp_column *lab, lp_task *task,
                             lp_err *err)
{
    static const char *const tasks[] = {"auto", "regression", "classification", NULL};
    size_t t = 0;
    lp_status st = lp_params_choice(o->params, "task", tasks, 0, &t, err);
    if (st)
        return st;
    bool numeric = lab->type == LP_COL_TYPE_NUMERIC && lab->kind != LP_COL_KIND_DATETIME;
    bool classify;
    if (o->kind == LP_MODEL_KIND_LINEAR)
        classify = false;
    else if (o->kind == LP_MODEL_KIND_LOGISTIC)
        classify = true;
    else if (t == 1)
        classify = false;
    else if (t == 2)
        classify = true;
    else if (!numeric || lab->kind == LP_COL_KIND_BOOL)
        classify = true;
    else if (lab->kind == LP_COL_KIND_INTEGER) {
        /* few distinct integers: classes */
        size_t distinct = 0;
        double seen[AUTO_CLASS_MAX + 1];
        for (size_t i = 0; i < lab->n && distinct <= AUTO_CLASS_MAX; i++) {
            if (lab->missing[i])
                continue;
            bool found = false;
            for (size_t k = 0; k < distinct && !found; k++)
                found = seen[k] == lab->num[i];
            if (!found)
                seen[distinct++] = lab->num[i];
        }
        classify = distinct <= AUTO_CLASS_MAX;
    } else
        classify = false;
    if (!classify && !numeric)
        return lp_err_set(err, LP_EINVAL,
                          "label '%s' is %s, not a number: %s needs a numeric label (or use "
                          "--param task=classification)",
                          lab->name, lp_col_kind_name(lab->kind),
                          o->kind == LP_MODEL_KIND_LINEAR ? "linear regression" : "regression");
    *task = classify ? LP_TASK_BINARY : LP_TASK_REGRESSION; /* binary vs multiclass set later */
    return LP_OK;
}

/* Collect the sorted distinct class labels of lab over rows idx. */
static lp_status collect_classes(lp_model *m, const lp_column *lab, lp_err *err)
{
    char buf[64];
    char **v = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < lab->n; i++) {
        const char *s = label_text(lab, i, buf, sizeof buf);
        if (!s)
            continue;
        bool found = false;
        for (size_t k = 0; k < n && !found; k++)
            found = strcmp(v[k], s) == 0;
        if (found)
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nv = lp_reallocarray(v, cap, sizeof *nv);
            if (!nv)
                goto oom;
            v = nv;
        }
        if (!(v[n] = lp_strdup(s)))
            goto oom;
        n++;
        if (n > 100000) {
            for (size_t k = 0; k < n; k++)
                free(v[k]);
            free(v);
            return lp_err_set(err, LP_EINVAL, "label '%s' has over 100000 distinct values",
                              lab->name);
        }
    }
    bool numeric = lab->type == LP_COL_TYPE_NUMERIC;
    qsort(v, n, sizeof *v, numeric ? cmp_num_str : cmp_str);
    m->classes = v;
    m->n_classes = n;
    if (n < 2)
        return lp_err_set(err, LP_EINVAL,
                          "label '%s' has %s class%s: a classifier needs at least two", lab->name,
                          n ? "only one" : "no", n == 1 ? "" : "es");
    m->task = n == 2 ? LP_TASK_BINARY : LP_TASK_MULTICLASS;
    return LP_OK;
oom:
    for (size_t k = 0; k < n; k++)
        free(v[k]);
    free(v);
    return lp_err_set(err, LP_ENOMEM, "out of memory reading label '%s'", lab->name);
}

static long class_index(const lp_model *m, const char *s)
{
    /* classes are few; a linear scan is fine for the sizes a label has */
    for (size_t k = 0; k < m->n_classes; k++)
        if (strcmp(m->classes[k], s) == 0)
            return (long)k;
    return -1;
}

/* Encode the label of rows idx[0..n) into y (and cls for classification). */
static lp_status encode_target(const lp_model *m, const lp_column *lab, const size_t *idx,
                               size_t n, double *y, int32_t *cls, const char *what, lp_err *err)
{
    char buf[64];
    for (size_t r = 0; r < n; r++) {
        size_t i = idx ? idx[r] : r;
        if (m->task == LP_TASK_REGRESSION) {
            y[r] = lab->num[i];
            if (!isfinite(y[r]))
                return lp_err_set(err, LP_EINVAL, "%s row %zu: label '%s' is not a finite number",
                                  what, i + 1, lab->name);
            continue;
        }
        const char *s = label_text(lab, i, buf, sizeof buf);
        long k = s ? class_index(m, s) : -1;
        if (k < 0)
            return lp_err_set(err, LP_EINVAL,
                              "%s row %zu: label value '%s' was not seen in training", what, i + 1,
                              s ? s : "");
        y[r] = (double)k;
        cls[r] = (int32_t)k;
    }
    return LP_OK;
}

/* ---- features ------------------------------------------------------------------------------*/

/* A frame of the model's input columns from rows, converted to the training kinds. */
static lp_status select_inputs(const lp_model *m, const lp_frame *rows, lp_frame **out,
                               lp_err *err)
{
    lp_frame *g = NULL;
    lp_status st = lp_frame_select(rows, (const char *const *)m->inputs, m->n_inputs, &g, err);
    if (st)
        return st;
    for (size_t j = 0; j < m->n_inputs && !st; j++) {
        lp_column *c = lp_frame_col(g, j);
        if (c->kind != m->input_kinds[j])
            st = lp_column_convert(c, m->input_kinds[j], err);
    }
    if (st) {
        lp_frame_free(g);
        return st;
    }
    *out = g;
    return LP_OK;
}

/* Clean + featurize rows into a design (dense when the family wants it). *dense or *csr is
 * set; the caller frees both. */
static lp_status featurize(const lp_model *m, const lp_frame *inputs, lp_matf **dense,
                           lp_csr **csr, lp_design *x, lp_err *err)
{
    *dense = NULL;
    *csr = NULL;
    lp_frame *clean = NULL;
    lp_status st = lp_cleaner_apply(m->cleaner, inputs, &clean, NULL, err);
    if (st)
        return st;
    memset(x, 0, sizeof *x);
    if (m->fam->wants_dense) {
        st = lp_pipeline_transform_dense(m->pipe, clean, dense, err);
        if (!st) {
            x->rows = (*dense)->rows;
            x->cols = (*dense)->cols;
            x->dense = (*dense)->v;
        }
    } else {
        st = lp_pipeline_transform(m->pipe, clean, csr, err);
        if (!st) {
            x->rows = (*csr)->rows;
            x->cols = (*csr)->cols;
            x->indptr = (*csr)->indptr;
            x->indices = (*csr)->indices;
            x->values = (*csr)->values;
        }
    }
    lp_frame_free(clean);
    return st;
}

static lp_status run_predict(const lp_model *m, const lp_design *x, lp_predictions *out,
                             lp_err *err)
{
    memset(out, 0, sizeof *out);
    out->task = m->task;
    out->n = x->rows;
    out->k = m->task == LP_TASK_REGRESSION ? 1 : m->n_classes;
    out->out = lp_mallocarray(out->n * out->k, sizeof(double));
    if (m->task != LP_TASK_REGRESSION)
        out->cls = lp_mallocarray(out->n, sizeof(int32_t));
    if (!out->out || (m->task != LP_TASK_REGRESSION && !out->cls)) {
        lp_predictions_clear(out);
        return lp_err_set(err, LP_ENOMEM, "out of memory predicting %zu rows", x->rows);
    }
    lp_status st = out->n ? m->fam->predict(m->impl, m->task, x, out->out, err) : LP_OK;
    if (st) {
        lp_predictions_clear(out);
        return st;
    }
    for (size_t i = 0; out->cls && i < out->n; i++) {
        const double *p = out->out + i * out->k;
        size_t best = 0;
        for (size_t c = 1; c < out->k; c++)
            if (p[c] > p[best])
                best = c;
        out->cls[i] = (int32_t)best;
    }
    return LP_OK;
}

/* ---- metrics -------------------------------------------------------------------------------*/

static lp_status eval_arrays(lp_task task, size_t k, const lp_predictions *p, const double *y,
                             const int32_t *cls, lp_eval *e, lp_err *err)
{
    memset(e, 0, sizeof *e);
    e->task = task;
    e->n = p->n;
    e->accuracy = e->macro_f1 = e->auroc = e->auprc = e->logloss = NAN;
    e->rmse = e->mae = e->r2 = NAN;
    if (!p->n)
        return lp_err_set(err, LP_EINVAL, "no rows to evaluate");
    lp_status st;
    if (task == LP_TASK_REGRESSION) {
        if ((st = lp_metrics_rmse(y, p->out, p->n, &e->rmse, err)) ||
            (st = lp_metrics_mae(y, p->out, p->n, &e->mae, err)) ||
            (st = lp_metrics_r2(y, p->out, p->n, &e->r2, err)))
            return st;
        return LP_OK;
    }
    if ((st = lp_metrics_accuracy(cls, p->cls, p->n, &e->accuracy, err)))
        return st;
    double prec, rec;
    if ((st = lp_metrics_prf_average(cls, p->cls, p->n, k, LP_AVERAGE_MACRO, &prec, &rec,
                                     &e->macro_f1, err)))
        return st;
    if (task == LP_TASK_BINARY) {
        double *s = lp_mallocarray(p->n, sizeof(double));
        if (!s)
            return lp_err_set(err, LP_ENOMEM, "out of memory evaluating");
        for (size_t i = 0; i < p->n; i++)
            s[i] = p->out[2 * i + 1];
        /* one class only in this data: AUROC and AUPRC stay undefined (NaN) */
        if (lp_metrics_auroc(cls, s, p->n, &e->auroc, NULL))
            e->auroc = NAN;
        if (lp_metrics_average_precision(cls, s, p->n, &e->auprc, NULL))
            e->auprc = NAN;
        free(s);
        st = lp_metrics_log_loss(cls, p->out + 0, p->n, 2, &e->logloss, err);
    } else {
        if (lp_metrics_auroc_ovr(cls, p->out, p->n, k, &e->auroc, NULL))
            e->auroc = NAN;
        /* macro one-vs-rest average precision over the classes present */
        double sum = 0;
        size_t used = 0;
        int32_t *yk = lp_mallocarray(p->n, sizeof(int32_t));
        double *sk = lp_mallocarray(p->n, sizeof(double));
        if (!yk || !sk) {
            free(yk);
            free(sk);
            return lp_err_set(err, LP_ENOMEM, "out of memory evaluating");
        }
        for (size_t c = 0; c < k; c++) {
            for (size_t i = 0; i < p->n; i++) {
                yk[i] = cls[i] == (int32_t)c;
                sk[i] = p->out[i * k + c];
            }
            double ap;
            if (lp_metrics_average_precision(yk, sk, p->n, &ap, NULL) == LP_OK) {
                sum += ap;
                used++;
            }
        }
        free(yk);
        free(sk);
        e->auprc = used ? sum / (double)used : NAN;
        st = lp_metrics_log_loss(cls, p->out, p->n, k, &e->logloss, err);
    }
    return st;
}

char *lp_eval_to_json(const lp_eval *e)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
#define NUM(key, v) cJSON_AddItemToObject(o, key, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull())
    cJSON_AddNumberToObject(o, "n", (double)e->n);
    if (e->task == LP_TASK_REGRESSION) {
        NUM("rmse", e->rmse);
        NUM("mae", e->mae);
        NUM("r2", e->r2);
    } else {
        NUM("accuracy", e->accuracy);
        NUM("macro_f1", e->macro_f1);
        NUM("auroc", e->auroc);
        NUM("auprc", e->auprc);
        NUM("logloss", e->logloss);
    }
#undef NUM
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

/* ---- header --------------------------------------------------------------------------------*/

static lp_status build_header(lp_model *m, const lp_train_opts *o, const lp_eval *ev,
                              size_t n_train, size_t n_valid, lp_err *err)
{
    cJSON *h = cJSON_CreateObject();
    if (!h)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    cJSON_AddStringToObject(h, "kind", lp_model_kind_name(m->kind));
    cJSON_AddStringToObject(h, "task", lp_task_name(m->task));
    cJSON *lab = cJSON_AddObjectToObject(h, "label");
    cJSON_AddStringToObject(lab, "name", m->label);
    if (m->n_classes) {
        cJSON *cl = cJSON_AddArrayToObject(lab, "classes");
        for (size_t k = 0; k < m->n_classes; k++)
            cJSON_AddItemToArray(cl, cJSON_CreateString(m->classes[k]));
    }
    cJSON *feats = cJSON_AddArrayToObject(h, "features");
    for (size_t j = 0; j < m->n_inputs; j++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "name", m->inputs[j]);
        cJSON_AddStringToObject(f, "kind", lp_col_kind_name(m->input_kinds[j]));
        cJSON_AddItemToArray(feats, f);
    }
    cJSON_AddNumberToObject(h, "n_features", (double)lp_pipeline_n_features(m->pipe));
    char *mj = lp_eval_to_json(ev);
    cJSON *metrics = cJSON_AddObjectToObject(h, "metrics");
    cJSON_AddItemToObject(metrics, "valid", mj ? cJSON_Parse(mj) : cJSON_CreateNull());
    free(mj);
    cJSON *data = cJSON_AddObjectToObject(h, "data");
    if (o->data_name)
        cJSON_AddStringToObject(data, "name", o->data_name);
    if (o->data_sha256)
        cJSON_AddStringToObject(data, "sha256", o->data_sha256);
    cJSON_AddNumberToObject(data, "train_rows", (double)n_train);
    cJSON_AddNumberToObject(data, "valid_rows", (double)n_valid);
    char *pj = lp_params_to_json(o->params);
    cJSON_AddItemToObject(h, "params", pj ? cJSON_Parse(pj) : cJSON_CreateObject());
    free(pj);
    char *dj = m->fam->describe(m->impl);
    cJSON_AddItemToObject(h, "model", dj ? cJSON_Parse(dj) : cJSON_CreateObject());
    free(dj);
    cJSON_AddNumberToObject(h, "seed", (double)o->seed);
    char when[32];
    /* SOURCE_DATE_EPOCH (the reproducible-builds convention) pins the time, so a seeded run
     * repeated gives a byte-identical file */
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    time_t t = sde && *sde ? (time_t)strtoll(sde, NULL, 10) : time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(h, "created_at", when);
    cJSON_AddStringToObject(h, "lepton_version", LP_VERSION_STRING);
    m->header = cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    return m->header ? LP_OK : lp_err_set(err, LP_ENOMEM, "out of memory");
}

/* ---- training ------------------------------------------------------------------------------*/

static const char *const generic_keys[] = {"task", "threads"};

static lp_status check_params(const lp_family *fam, const lp_params *p, lp_err *err)
{
    const char *known[64];
    size_t n = 0;
    for (size_t i = 0; fam->param_keys[i] && n < 60; i++)
        known[n++] = fam->param_keys[i];
    for (size_t i = 0; i < 2; i++)
        known[n++] = generic_keys[i];
    known[n] = NULL;
    return lp_params_check_unknown(p, fam->name, known, err);
}

lp_status lp_model_train(const lp_frame *train, const lp_frame *valid, const lp_train_opts *o,
                         lp_model **out, lp_err *err)
{
    *out = NULL;
    if (!o || !o->label)
        return lp_err_set(err, LP_EINVAL, "training needs a label column");
    const lp_family *fam = lp_family_get(o->kind);
    if (!fam)
        return lp_err_set(err, LP_EUNSUPPORTED, "model kind '%s' is not available in this build",
                          lp_model_kind_name(o->kind));
    lp_status st = check_params(fam, o->params, err);
    if (st)
        return st;
    long threads;
    if ((st = lp_params_int(o->params, "threads", 0, 0, 1024, &threads, err)))
        return st;
    if (!(o->valid_frac > 0 && o->valid_frac < 1))
        return lp_err_set(err, LP_EINVAL, "validation share %g: must be in (0, 1)", o->valid_frac);
    size_t lj;
    if ((st = lp_frame_require(train, o->label, "the training data", &lj, err)))
        return st;
    for (size_t k = 0; k < o->n_drop; k++) {
        size_t dj;
        if ((st = lp_frame_require(train, o->drop[k], "the training data", &dj, err)))
            return st;
    }
    const lp_column *lab = lp_frame_col(train, lj);

    lp_model *m = calloc(1, sizeof *m);
    if (!m)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    m->kind = o->kind;
    m->fam = fam;
    m->label = lp_strdup(o->label);
    lp_frame *tr = NULL, *va = NULL, *xtr = NULL, *xva = NULL, *ctr = NULL;
    lp_matf *dtr = NULL, *dva = NULL;
    lp_csr *str = NULL, *sva = NULL;
    double *ytr = NULL, *yva = NULL;
    int32_t *ctr_cls = NULL, *cva_cls = NULL;
    size_t *keep = NULL;
    lp_predictions pv = {0};
    lp_eval ev;

    if ((st = decide_task(o, lab, &m->task, err)))
        goto done;
    /* rows with a label */
    keep = lp_mallocarray(lp_frame_nrows(train), sizeof(size_t));
    if (!keep) {
        st = lp_err_set(err, LP_ENOMEM, "out of memory");
        goto done;
    }
    size_t nk = 0;
    for (size_t i = 0; i < lab->n; i++)
        if (!lab->missing[i])
            keep[nk++] = i;
    if (nk < 2) {
        st = lp_err_set(err, LP_EINVAL, "the training data has %zu rows with a label '%s'; need "
                                        "at least 2",
                        nk, o->label);
        goto done;
    }
    if (nk < lab->n)
        lp_log_warn("training: %zu rows without a label '%s' left out", lab->n - nk, o->label);
    lp_frame *labeled = NULL;
    if ((st = lp_frame_take_rows(train, keep, nk, &labeled, err)))
        goto done;
    lab = lp_frame_col(labeled, lj);
    if (m->task != LP_TASK_REGRESSION && (st = collect_classes(m, lab, err))) {
        lp_frame_free(labeled);
        goto done;
    }
    /* split */
    if (valid) {
        tr = labeled;
        if ((st = lp_frame_clone(valid, &va, err)))
            goto done;
    } else {
        lp_split sp = {0};
        st = m->task == LP_TASK_REGRESSION
                 ? lp_split_random(nk, o->valid_frac, o->seed, &sp, err)
                 : lp_split_stratified(lab, o->valid_frac, o->seed, &sp, err);
        if (!st)
            st = lp_frame_take_rows(labeled, sp.train, sp.n_train, &tr, err);
        if (!st)
            st = lp_frame_take_rows(labeled, sp.test, sp.n_test, &va, err);
        lp_split_free(&sp);
        lp_frame_free(labeled);
        if (st)
            goto done;
    }
    if (!lp_frame_nrows(tr) || !lp_frame_nrows(va)) {
        st = lp_err_set(err, LP_EINVAL, "too few rows to train and validate (%zu and %zu)",
                        lp_frame_nrows(tr), lp_frame_nrows(va));
        goto done;
    }
    /* inputs: every column but the label and the dropped ones */
    size_t nc = lp_frame_ncols(tr);
    m->inputs = lp_calloc(nc, sizeof(char *));
    m->input_kinds = lp_calloc(nc, sizeof(lp_col_kind));
    if (!m->inputs || !m->input_kinds) {
        st = lp_err_set(err, LP_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t j = 0; j < nc; j++) {
        const lp_column *c = lp_frame_col(tr, j);
        bool skip = strcmp(c->name, o->label) == 0;
        for (size_t k = 0; k < o->n_drop && !skip; k++)
            skip = strcmp(c->name, o->drop[k]) == 0;
        if (skip)
            continue;
        if (!(m->inputs[m->n_inputs] = lp_strdup(c->name))) {
            st = lp_err_set(err, LP_ENOMEM, "out of memory");
            goto done;
        }
        m->input_kinds[m->n_inputs++] = c->kind;
    }
    if (!m->n_inputs) {
        st = lp_err_set(err, LP_EINVAL, "no feature columns left besides the label '%s'",
                        o->label);
        goto done;
    }
    if ((st = select_inputs(m, tr, &xtr, err)) || (st = select_inputs(m, va, &xva, err)))
        goto done;
    /* imputer and feature pipeline, fitted on the training rows only */
    lp_cleaner_opts co = lp_cleaner_opts_default();
    co.impute = LP_IMPUTE_METHOD_MEDIAN;
    co.dedupe = false;
    co.outlier = LP_OUTLIER_METHOD_NONE;
    if ((st = lp_cleaner_fit(xtr, &co, &m->cleaner, err)) ||
        (st = lp_cleaner_apply(m->cleaner, xtr, &ctr, NULL, err)))
        goto done;
    if (o->pipeline) {
        /* a private copy of the caller's unfitted pipeline, through its serialized form */
        if ((st = lp_pipeline_clone_unfitted(o->pipeline, &m->pipe, err)))
            goto done;
    } else if ((st = lp_pipeline_default(ctr, NULL, &m->pipe, err))) {
        goto done;
    }
    if ((st = lp_pipeline_fit(m->pipe, ctr, err)))
        goto done;
    lp_design x, xv;
    if ((st = featurize(m, xtr, &dtr, &str, &x, err)) ||
        (st = featurize(m, xva, &dva, &sva, &xv, err)))
        goto done;
    /* targets */
    size_t ntr = lp_frame_nrows(tr), nva = lp_frame_nrows(va);
    ytr = lp_mallocarray(ntr, sizeof(double));
    yva = lp_mallocarray(nva, sizeof(double));
    ctr_cls = lp_mallocarray(ntr, sizeof(int32_t));
    cva_cls = lp_mallocarray(nva, sizeof(int32_t));
    if (!ytr || !yva || !ctr_cls || !cva_cls) {
        st = lp_err_set(err, LP_ENOMEM, "out of memory");
        goto done;
    }
    size_t vj;
    if ((st = lp_frame_require(va, o->label, "the validation data", &vj, err)))
        goto done;
    if ((st = encode_target(m, lp_frame_col(tr, lj), NULL, ntr, ytr, ctr_cls, "training", err)) ||
        (st = encode_target(m, lp_frame_col(va, vj), NULL, nva, yva, cva_cls, "validation", err)))
        goto done;
    lp_target ty = {m->task, ntr, m->n_classes, ytr, m->task ? ctr_cls : NULL};
    lp_target tv = {m->task, nva, m->n_classes, yva, m->task ? cva_cls : NULL};
    if ((st = fam->fit(&x, &ty, &xv, &tv, o->params, o->seed, (int)threads, &m->impl, err)))
        goto done;
    /* validation metrics and scores */
    if ((st = run_predict(m, &xv, &pv, err)) ||
        (st = eval_arrays(m->task, m->n_classes, &pv, yva, cva_cls, &ev, err)))
        goto done;
    m->valid_scores = lp_mallocarray(nva, sizeof(double));
    if (!m->valid_scores) {
        st = lp_err_set(err, LP_ENOMEM, "out of memory");
        goto done;
    }
    m->n_valid = nva;
    for (size_t i = 0; i < nva; i++) {
        const double *p = pv.out + i * pv.k;
        m->valid_scores[i] = m->task == LP_TASK_BINARY       ? p[1]
                             : m->task == LP_TASK_REGRESSION ? p[0]
                                                             : p[pv.cls[i]];
    }
    st = build_header(m, o, &ev, ntr, nva, err);
done:
    lp_predictions_clear(&pv);
    lp_frame_free(tr);
    lp_frame_free(va);
    lp_frame_free(xtr);
    lp_frame_free(xva);
    lp_frame_free(ctr);
    lp_matf_free(dtr);
    lp_matf_free(dva);
    lp_csr_free(str);
    lp_csr_free(sva);
    free(ytr);
    free(yva);
    free(ctr_cls);
    free(cva_cls);
    free(keep);
    if (st) {
        lp_model_free(m);
        return st;
    }
    *out = m;
    return LP_OK;
}

/* ---- prediction and evaluation --------------------------------------------------------------*/

lp_status lp_model_predict(const lp_model *m, const lp_frame *rows, lp_predictions *out,
                           lp_err *err)
{
    memset(out, 0, sizeof *out);
    lp_frame *in = NULL;
    lp_matf *d = NULL;
    lp_csr *s = NULL;
    lp_design x;
    lp_status st = select_inputs(m, rows, &in, err);
    if (!st)
        st = featurize(m, in, &d, &s, &x, err);
    if (!st)
        st = run_predict(m, &x, out, err);
    lp_frame_free(in);
    lp_matf_free(d);
    lp_csr_free(s);
    return st;
}

lp_status lp_model_evaluate(const lp_model *m, const lp_frame *data, lp_eval *out, lp_err *err)
{
    size_t lj;
    lp_status st = lp_frame_require(data, m->label, "the evaluation data", &lj, err);
    if (st)
        return st;
    lp_column *lab = lp_frame_col(data, lj);
    /* rows with a label only */
    size_t n = lp_frame_nrows(data), nk = 0;
    size_t *keep = lp_mallocarray(n, sizeof(size_t));
    if (!keep)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (!lab->missing[i])
            keep[nk++] = i;
    lp_frame *rows = NULL;
    double *y = lp_mallocarray(nk, sizeof(double));
    int32_t *cls = lp_mallocarray(nk, sizeof(int32_t));
    lp_predictions p = {0};
    if (!y || !cls)
        st = lp_err_set(err, LP_ENOMEM, "out of memory");
    if (!st)
        st = lp_frame_take_rows(data, keep, nk, &rows, err);
    if (!st && m->task == LP_TASK_REGRESSION && lab->type != LP_COL_TYPE_NUMERIC)
        st = lp_err_set(err, LP_EINVAL, "label '%s' is not numeric in the evaluation data",
                        m->label);
    if (!st)
        st = encode_target(m, lp_frame_col(rows, lj), NULL, nk, y, cls, "evaluation", err);
    if (!st)
        st = lp_model_predict(m, rows, &p, err);
    if (!st)
        st = eval_arrays(m->task, m->n_classes, &p, y, cls, out, err);
    lp_predictions_clear(&p);
    lp_frame_free(rows);
    free(keep);
    free(y);
    free(cls);
    return st;
}

/* ---- accessors -----------------------------------------------------------------------------*/

lp_model_kind lp_model_get_kind(const lp_model *m) { return m->kind; }
lp_task lp_model_task(const lp_model *m) { return m->task; }
const char *lp_model_label(const lp_model *m) { return m->label; }
size_t lp_model_n_classes(const lp_model *m) { return m->n_classes; }
const char *lp_model_class(const lp_model *m, size_t k)
{
    return k < m->n_classes ? m->classes[k] : NULL;
}
size_t lp_model_n_inputs(const lp_model *m) { return m->n_inputs; }
const char *lp_model_input_name(const lp_model *m, size_t j)
{
    return j < m->n_inputs ? m->inputs[j] : NULL;
}
lp_col_kind lp_model_input_kind(const lp_model *m, size_t j)
{
    return j < m->n_inputs ? m->input_kinds[j] : LP_COL_KIND_TEXT;
}
const char *lp_model_header(const lp_model *m) { return m->header; }
const void *lp_model_impl(const lp_model *m) { return m->impl; }
const lp_pipeline *lp_model_pipeline(const lp_model *m) { return m->pipe; }
const lp_cleaner *lp_model_cleaner(const lp_model *m) { return m->cleaner; }
const lp_family *lp_model_family(const lp_model *m) { return m->fam; }

lp_status lp_model_design(const lp_model *m, const lp_frame *rows, lp_matf **out, lp_err *err)
{
    *out = NULL;
    lp_frame *in = NULL, *clean = NULL;
    lp_status st = select_inputs(m, rows, &in, err);
    if (!st)
        st = lp_cleaner_apply(m->cleaner, in, &clean, NULL, err);
    if (!st)
        st = lp_pipeline_transform_dense(m->pipe, clean, out, err);
    lp_frame_free(in);
    lp_frame_free(clean);
    return st;
}

const double *lp_model_valid_scores(const lp_model *m, size_t *n)
{
    *n = m->n_valid;
    return m->valid_scores;
}

static bool reserved(const char *name)
{
    return !strcmp(name, "cleaner") || !strcmp(name, "pipeline") || !strcmp(name, "model");
}

lp_status lp_model_set_extra(lp_model *m, const char *name, const void *data, size_t len,
                             lp_err *err)
{
    if (!name || reserved(name) || strlen(name) >= LP_LPM_NAME_MAX)
        return lp_err_set(err, LP_EINVAL, "model section name '%s' is reserved or too long",
                          name ? name : "");
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    if (len)
        memcpy(copy, data, len);
    for (size_t i = 0; i < m->n_extras; i++)
        if (!strcmp(m->extras[i].name, name)) {
            free(m->extras[i].data);
            m->extras[i].data = copy;
            m->extras[i].len = len;
            return LP_OK;
        }
    extra *e = lp_reallocarray(m->extras, m->n_extras + 1, sizeof *e);
    if (!e) {
        free(copy);
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    }
    m->extras = e;
    snprintf(e[m->n_extras].name, LP_LPM_NAME_MAX, "%s", name);
    e[m->n_extras].data = copy;
    e[m->n_extras].len = len;
    m->n_extras++;
    return LP_OK;
}

lp_status lp_model_get_extra(const lp_model *m, const char *name, const void **data, size_t *len,
                             lp_err *err)
{
    for (size_t i = 0; i < m->n_extras; i++)
        if (!strcmp(m->extras[i].name, name)) {
            *data = m->extras[i].data;
            *len = m->extras[i].len;
            return LP_OK;
        }
    return lp_err_set(err, LP_ENOTFOUND, "model has no section '%s'", name);
}

/* ---- save / load ---------------------------------------------------------------------------*/

lp_status lp_model_save(const lp_model *m, const char *path, lp_err *err)
{
    lp_buf bc, bp, bm;
    lp_buf_init(&bc);
    lp_buf_init(&bp);
    lp_buf_init(&bm);
    lp_lpm_writer *w = lp_lpm_writer_new();
    lp_status st = w ? LP_OK : lp_err_set(err, LP_ENOMEM, "out of memory");
    if (!st)
        st = lp_cleaner_save(m->cleaner, &bc, err);
    if (!st)
        st = lp_pipeline_save(m->pipe, &bp, err);
    if (!st)
        st = m->fam->save(m->impl, &bm, err);
    if (!st)
        st = lp_lpm_writer_add(w, "cleaner", LP_LPM_DTYPE_BYTES, bc.data, bc.len, err);
    if (!st)
        st = lp_lpm_writer_add(w, "pipeline", LP_LPM_DTYPE_BYTES, bp.data, bp.len, err);
    if (!st)
        st = lp_lpm_writer_add(w, "model", LP_LPM_DTYPE_BYTES, bm.data, bm.len, err);
    for (size_t i = 0; i < m->n_extras && !st; i++)
        st = lp_lpm_writer_add(w, m->extras[i].name, LP_LPM_DTYPE_BYTES, m->extras[i].data,
                               m->extras[i].len, err);
    if (!st)
        st = lp_lpm_writer_save(w, m->header, path, err);
    lp_lpm_writer_free(w);
    lp_buf_free(&bc);
    lp_buf_free(&bp);
    lp_buf_free(&bm);
    return st;
}

static lp_status header_fail(const char *path, const char *what, lp_err *err)
{
    return lp_err_set(err, LP_EFORMAT, "%s: model header: %s", path, what);
}

static lp_status parse_header(lp_model *m, const char *path, lp_err *err)
{
    cJSON *h = cJSON_Parse(m->header);
    if (!h)
        return header_fail(path, "not JSON", err);
    lp_status st = LP_OK;
    const cJSON *kind = cJSON_GetObjectItemCaseSensitive(h, "kind");
    const cJSON *task = cJSON_GetObjectItemCaseSensitive(h, "task");
    const cJSON *lab = cJSON_GetObjectItemCaseSensitive(h, "label");
    const cJSON *lname = lab ? cJSON_GetObjectItemCaseSensitive(lab, "name") : NULL;
    const cJSON *classes = lab ? cJSON_GetObjectItemCaseSensitive(lab, "classes") : NULL;
    const cJSON *feats = cJSON_GetObjectItemCaseSensitive(h, "features");
    if (!cJSON_IsString(kind) || lp_model_kind_parse(kind->valuestring, &m->kind, NULL) ||
        !(m->fam = lp_family_get(m->kind))) {
        st = header_fail(path, "missing or unknown \"kind\"", err);
        goto done;
    }
    if (!cJSON_IsString(task)) {
        st = header_fail(path, "missing \"task\"", err);
        goto done;
    }
    if (!strcmp(task->valuestring, "regression"))
        m->task = LP_TASK_REGRESSION;
    else if (!strcmp(task->valuestring, "binary"))
        m->task = LP_TASK_BINARY;
    else if (!strcmp(task->valuestring, "multiclass"))
        m->task = LP_TASK_MULTICLASS;
    else {
        st = header_fail(path, "unknown \"task\"", err);
        goto done;
    }
    if (!cJSON_IsString(lname) || !cJSON_IsArray(feats)) {
        st = header_fail(path, "missing \"label\" or \"features\"", err);
        goto done;
    }
    m->label = lp_strdup(lname->valuestring);
    if (m->task != LP_TASK_REGRESSION) {
        int n = cJSON_GetArraySize(classes);
        if (!cJSON_IsArray(classes) || n < 2 || (m->task == LP_TASK_BINARY) != (n == 2)) {
            st = header_fail(path, "bad \"classes\"", err);
            goto done;
        }
        m->classes = lp_calloc((size_t)n, sizeof(char *));
        for (int k = 0; m->classes && k < n; k++) {
            const cJSON *c = cJSON_GetArrayItem(classes, k);
            if (!cJSON_IsString(c)) {
                st = header_fail(path, "bad \"classes\"", err);
                goto done;
            }
            m->classes[k] = lp_strdup(c->valuestring);
            m->n_classes = (size_t)k + 1;
        }
    }
    int nf = cJSON_GetArraySize(feats);
    m->inputs = lp_calloc((size_t)nf, sizeof(char *));
    m->input_kinds = lp_calloc((size_t)nf, sizeof(lp_col_kind));
    if (!m->inputs || !m->input_kinds || !m->label) {
        st = lp_err_set(err, LP_ENOMEM, "out of memory");
        goto done;
    }
    for (int j = 0; j < nf; j++) {
        const cJSON *f = cJSON_GetArrayItem(feats, j);
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(f, "name");
        const cJSON *fk = cJSON_GetObjectItemCaseSensitive(f, "kind");
        if (!cJSON_IsString(fn) || !cJSON_IsString(fk) ||
            lp_col_kind_parse(fk->valuestring, &m->input_kinds[j], NULL)) {
            st = header_fail(path, "bad entry in \"features\"", err);
            goto done;
        }
        m->inputs[j] = lp_strdup(fn->valuestring);
        m->n_inputs = (size_t)j + 1;
    }
done:
    cJSON_Delete(h);
    return st;
}

lp_status lp_model_load(const char *path, lp_model **out, lp_err *err)
{
    *out = NULL;
    lp_lpm *f = NULL;
    lp_status st = lp_lpm_load(path, &f, err);
    if (st)
        return st;
    lp_model *m = calloc(1, sizeof *m);
    if (!m) {
        lp_lpm_free(f);
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    }
    m->header = lp_strdup(lp_lpm_header(f));
    const void *d;
    size_t n;
    st = m->header ? parse_header(m, path, err) : lp_err_set(err, LP_ENOMEM, "out of memory");
    if (!st && !(st = lp_lpm_section(f, "cleaner", LP_LPM_DTYPE_BYTES, &d, &n, err)))
        st = lp_cleaner_load(d, n, &m->cleaner, err);
    if (!st && !(st = lp_lpm_section(f, "pipeline", LP_LPM_DTYPE_BYTES, &d, &n, err)))
        st = lp_pipeline_load(d, n, &m->pipe, err);
    if (!st && !(st = lp_lpm_section(f, "model", LP_LPM_DTYPE_BYTES, &d, &n, err)))
        st = m->fam->load(d, n, &m->impl, err);
    for (size_t i = 0; !st && i < lp_lpm_section_count(f); i++) {
        const char *name = lp_lpm_section_name(f, i);
        if (reserved(name))
            continue;
        if (!(st = lp_lpm_section(f, name, -1, &d, &n, err)))
            st = lp_model_set_extra(m, name, d, n, err);
    }
    lp_lpm_free(f);
    if (st) {
        if (err && !strstr(err->msg, path))
            lp_err_prefix(err, "%s", path);
        lp_model_free(m);
        return st;
    }
    *out = m;
    return LP_OK;
}
