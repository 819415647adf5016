/*
 * predictor.c - lp_predictor (model.h): a fitted model prepared for predicting one row or a
 * few without frames. Preparation binds the model's inputs to slots, the cleaner's columns and
 * the pipeline's step columns to those slots (clean/cleaner_row.c, feat/pipeline_row.c); a run
 * copies each row into the scratch's slot arrays, cleans them in place, featurizes them into the
 * scratch's dense design (n, d) and calls the family's predict on it, then picks the class as
 * lp_model_predict does.
 *
 * What it does not do: convert kinds (a row view already holds each input in its model kind),
 * or look columns up by name per row.
 * Invariants: a predictor is read-only after lp_predictor_new; outputs equal lp_model_predict's
 * on the same rows bit for bit, because every value goes through the same helpers in the same
 * order and the family sees the same dense design (the frame path's dense design is the CSR
 * join made dense; gbdt and nn take it as is, linear models sum a row's dense entries in index
 * order, which adds only exact zeros to the sparse sum).
 */
#include "model/family.h"

#include "clean/clean_internal.h"
#include "feat/pipeline_internal.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* Floats of dense design a scratch holds at most (4 MiB): a batch of wide rows is scored in
 * chunks of rows so memory stays bounded whatever the request's size. */
#define LP_PREDICT_CHUNK_FLOATS ((size_t)1 << 20)

struct lp_predictor {
    uint64_t id; /* unique in the process: a scratch remembers whom it is bound to */
    const lp_model *m;
    const lp_family *fam;
    lp_task task;
    size_t n_in, d, k;
    const char **names; /* (n_in,) borrowed from m */
    lp_col_kind *kinds; /* (n_in,) */
    lp_col_type *types; /* (n_in,) */
    bool row;           /* false: through frames (lp_model_predict) */
    char path[96];
    lp_cleaner_rowplan cplan;
    lp_cleaner_rowplan cplan_multi; /* the same binding; ok for several rows */
    bool multi_ok;                  /* several rows may be cleaned one by one */
    lp_pipeline_rowplan pplan;
    size_t chunk_floats; /* LP_PREDICT_CHUNK_FLOATS (tests lower it) */
};

struct lp_predict_scratch {
    size_t cap_in;
    double *num;      /* (cap_in,) */
    uint8_t *miss;    /* (cap_in,) */
    const char **str; /* (cap_in,) */
    uint32_t *code;   /* (cap_in,) a categorical one-row column's code 0 */
    lp_column *col;   /* (cap_in,) one-row views over the arrays above */
    const lp_column **colp;
    size_t cap_x;
    float *x; /* (cap_x,) the dense design */
    lp_pipeline_rowwork pw;
    uint64_t bound; /* id of the predictor the column views are set up for (0: none) */
};

static _Atomic uint64_t next_id = 1;

void lp_predictor_free(lp_predictor *p)
{
    if (!p)
        return;
    free(p->names);
    free(p->kinds);
    free(p->types);
    lp_cleaner_rowplan_clear(&p->cplan);
    lp_cleaner_rowplan_clear(&p->cplan_multi);
    lp_pipeline_rowplan_clear(&p->pplan);
    free(p);
}

lp_status lp_predictor_new(const lp_model *m, lp_predictor **out, lp_err *err)
{
    *out = NULL;
    lp_predictor *p = calloc(1, sizeof *p);
    if (!p)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    p->id = atomic_fetch_add(&next_id, 1);
    p->chunk_floats = LP_PREDICT_CHUNK_FLOATS;
    p->m = m;
    p->fam = lp_model_family(m);
    p->task = lp_model_task(m);
    p->n_in = lp_model_n_inputs(m);
    p->k = p->task == LP_TASK_REGRESSION ? 1 : lp_model_n_classes(m);
    const lp_pipeline *pipe = lp_model_pipeline(m);
    p->d = lp_pipeline_n_features(pipe);
    size_t n = p->n_in ? p->n_in : 1;
    p->names = lp_mallocarray(n, sizeof *p->names);
    p->kinds = lp_mallocarray(n, sizeof *p->kinds);
    p->types = lp_mallocarray(n, sizeof *p->types);
    if (!p->names || !p->kinds || !p->types) {
        lp_predictor_free(p);
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    }
    for (size_t j = 0; j < p->n_in; j++) {
        p->names[j] = lp_model_input_name(m, j);
        p->kinds[j] = lp_model_input_kind(m, j);
        p->types[j] = lp_col_kind_type(p->kinds[j]);
    }
    bool cok = false, mok = false, pok = false;
    const char *why = NULL, *mwhy = NULL, *pwhy = NULL;
    const lp_cleaner *c = lp_model_cleaner(m);
    lp_status st =
        lp_cleaner_rowplan_init(c, p->names, p->types, p->n_in, false, &p->cplan, &cok, &why, err);
    if (!st)
        st = lp_cleaner_rowplan_init(c, p->names, p->types, p->n_in, true, &p->cplan_multi, &mok,
                                     &mwhy, err);
    if (!st && cok) {
        /* the cleaned frame has the inputs' names and types */
        st = lp_pipeline_rowplan_init(pipe, p->names, p->types, p->n_in, &p->pplan, &pok, &pwhy,
                                      err);
    }
    if (st) {
        lp_predictor_free(p);
        return st;
    }
    p->row = cok && pok;
    p->multi_ok = p->row && mok;
    if (!cok)
        snprintf(p->path, sizeof p->path, "frame: %s", why);
    else if (!pok)
        snprintf(p->path, sizeof p->path, "frame: %s", pwhy);
    else
        snprintf(p->path, sizeof p->path, "%s",
                 p->pplan.has_text ? "row (text steps allocate)" : "row");
    *out = p;
    return LP_OK;
}

const char *lp_predictor_path(const lp_predictor *p)
{
    return p->path;
}

void lp_predictor_set_chunk(lp_predictor *p, size_t floats)
{
    p->chunk_floats = floats ? floats : 1;
}
size_t lp_predictor_n_outputs(const lp_predictor *p)
{
    return p->k;
}

lp_predict_scratch *lp_predict_scratch_new(void)
{
    return calloc(1, sizeof(lp_predict_scratch));
}

void lp_predict_scratch_free(lp_predict_scratch *s)
{
    if (!s)
        return;
    free(s->num);
    free(s->miss);
    free(s->str);
    free(s->code);
    free(s->col);
    free(s->colp);
    free(s->x);
    lp_pipeline_rowwork_clear(&s->pw);
    free(s);
}

/* Grow the slot arrays to n inputs and the design to nx floats. */
static lp_status reserve(lp_predict_scratch *s, size_t n, size_t nx, lp_err *err)
{
    if (n > s->cap_in) {
        double *num = realloc(s->num, n * sizeof *num);
        if (num)
            s->num = num;
        uint8_t *miss = realloc(s->miss, n * sizeof *miss);
        if (miss)
            s->miss = miss;
        const char **str = realloc(s->str, n * sizeof *str);
        if (str)
            s->str = str;
        uint32_t *code = realloc(s->code, n * sizeof *code);
        if (code)
            s->code = code;
        lp_column *col = realloc(s->col, n * sizeof *col);
        if (col)
            s->col = col;
        const lp_column **colp = realloc(s->colp, n * sizeof *colp);
        if (colp)
            s->colp = colp;
        s->bound = 0; /* the views point into the old arrays */
        if (!num || !miss || !str || !code || !col || !colp)
            return lp_err_set(err, LP_ENOMEM, "predictor: out of memory");
        s->cap_in = n;
    }
    if (nx > s->cap_x) {
        float *x = realloc(s->x, nx * sizeof *x);
        if (!x)
            return lp_err_set(err, LP_ENOMEM, "predictor: out of memory");
        s->x = x;
        s->cap_x = nx;
    }
    return LP_OK;
}

/* Rows through frames: the model's inputs as columns of their kinds, then lp_model_predict. */
static lp_status run_frames(const lp_predictor *p, const lp_row_view *rows, size_t n, double *out,
                            int32_t *cls, lp_err *err)
{
    lp_frame *f = lp_frame_new();
    if (!f)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    lp_status st = LP_OK;
    for (size_t j = 0; j < p->n_in && !st; j++) {
        lp_column *c = lp_column_new(p->names[j], p->kinds[j], n);
        if (!c) {
            st = lp_err_set(err, LP_ENOMEM, "out of memory");
            break;
        }
        for (size_t i = 0; i < n && !st; i++) {
            if (p->types[j] == LP_COL_TYPE_NUMERIC) {
                double v = rows[i].num[j];
                if (!isnan(v))
                    st = lp_column_set_num(c, i, v, err);
            } else if (rows[i].str && rows[i].str[j]) {
                st = lp_column_set_str(c, i, rows[i].str[j], err);
            }
        }
        if (st)
            lp_column_free(c);
        else
            st = lp_frame_add_column(f, c, err);
    }
    lp_predictions pr = {0};
    if (!st)
        st = lp_model_predict(p->m, f, &pr, err);
    if (!st) {
        memcpy(out, pr.out, n * p->k * sizeof *out);
        if (cls && pr.cls)
            memcpy(cls, pr.cls, n * sizeof *cls);
    }
    lp_predictions_clear(&pr);
    lp_frame_free(f);
    return st;
}

/* One-row column views over the scratch's slot arrays (set up again only when the scratch
 * serves another predictor or its arrays moved). */
static void bind_columns(const lp_predictor *p, lp_predict_scratch *s)
{
    if (s->bound == p->id)
        return;
    s->bound = p->id;
    for (size_t j = 0; j < p->n_in; j++) {
        lp_column *c = &s->col[j];
        memset(c, 0, sizeof *c);
        c->name = (char *)p->names[j];
        c->kind = p->kinds[j];
        c->type = p->types[j];
        c->n = 1;
        c->missing = &s->miss[j];
        if (c->type == LP_COL_TYPE_NUMERIC) {
            c->num = &s->num[j];
        } else if (c->type == LP_COL_TYPE_CATEGORICAL) {
            s->code[j] = 0;
            c->codes = &s->code[j];
            c->dict = (char **)&s->str[j];
            c->n_dict = 1;
        } else {
            c->text = (char **)&s->str[j];
        }
        s->colp[j] = c;
    }
}

/* Featurize rows[0..n) into s->x (n, d). */
static lp_status featurize_rows(const lp_predictor *p, const lp_row_view *rows, size_t n,
                                lp_predict_scratch *s, lp_err *err)
{
    const lp_cleaner *c = lp_model_cleaner(p->m);
    const lp_pipeline *pipe = lp_model_pipeline(p->m);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < p->n_in; j++) {
            if (p->types[j] == LP_COL_TYPE_NUMERIC) {
                double v = rows[i].num[j];
                s->num[j] = v;
                s->miss[j] = isnan(v) != 0;
            } else {
                const char *v = rows[i].str ? rows[i].str[j] : NULL;
                s->str[j] = v;
                s->miss[j] = v == NULL;
            }
        }
        lp_cleaner_row_apply(c, &p->cplan, s->num, s->miss, s->str);
        /* a categorical view whose cell is missing keeps code LP_CODE_MISSING, as in frames */
        for (size_t j = 0; j < p->n_in; j++)
            if (p->types[j] == LP_COL_TYPE_CATEGORICAL)
                s->code[j] = s->miss[j] ? LP_CODE_MISSING : 0;
        lp_status st =
            lp_pipeline_row_transform(pipe, &p->pplan, s->colp, &s->pw, s->x + i * p->d, err);
        if (st)
            return st;
    }
    return LP_OK;
}

lp_status lp_predictor_run(const lp_predictor *p, const lp_row_view *rows, size_t n,
                           lp_predict_scratch *s, double *out, int32_t *cls, lp_err *err)
{
    if (!n)
        return LP_OK;
    /* the dense design is bounded: wide designs (TF-IDF) are predicted in chunks of rows, which
       gives the same outputs for the families that score rows independently (gbdt, linear,
       logistic); nn's batched matrix products might round differently, so a batch too wide for
       one chunk goes through frames there */
    size_t d = p->d ? p->d : 1, chunk = p->chunk_floats / d ? p->chunk_floats / d : 1;
    if (!p->row || (n > 1 && !p->multi_ok) || (n > chunk && p->fam->kind == LP_MODEL_KIND_NN))
        return run_frames(p, rows, n, out, cls, err);
    lp_status st = reserve(s, p->n_in ? p->n_in : 1, (n < chunk ? n : chunk) * d, err);
    if (st)
        return st;
    bind_columns(p, s);
    for (size_t lo = 0; lo < n; lo += chunk) {
        size_t m = n - lo < chunk ? n - lo : chunk;
        if ((st = featurize_rows(p, rows + lo, m, s, err)))
            return st;
        lp_design x = {.rows = m, .cols = p->d, .dense = s->x};
        if ((st = p->fam->predict(lp_model_impl(p->m), p->task, &x, out + lo * p->k, err)))
            return st;
    }
    for (size_t i = 0; cls && p->task != LP_TASK_REGRESSION && i < n; i++) {
        const double *r = out + i * p->k;
        size_t best = 0;
        for (size_t k = 1; k < p->k; k++)
            if (r[k] > r[best])
                best = k;
        cls[i] = (int32_t)best;
    }
    return LP_OK;
}
