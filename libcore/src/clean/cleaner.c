/*
 * cleaner.c - lp_cleaner: fit the imputer and outlier detector on a frame, apply them to any
 * frame with the same columns, and describe both as JSON. Fit order: de-duplicate, fit the
 * imputer, impute, fit the detector on the imputed rows. Apply order is the same, with the
 * fitted state only (nothing is re-estimated on the applied frame).
 * Invariants: a fitted cleaner is never written after lp_cleaner_fit returns; every apply
 * returns a new frame and leaves its input alone.
 */
#include "clean/clean_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define OUTLIER_COL "_outlier"
/* 1 / 0.6745: MAD to standard deviation under normality (Iglewicz & Hoaglin 1993). */
#define MAD_TO_SD (1.0 / 0.6745)
/* Mean absolute deviation to standard deviation under normality, sqrt(pi / 2); used when the
 * MAD is 0 (more than half the values equal), as IBM SPSS does for the modified z-score. */
#define MEANAD_TO_SD 1.253314

static const char *const impute_names[] = {"none", "mean", "median", "most_frequent", "constant",
                                           "soft"};
static const char *const outlier_names[] = {"none", "robust_z", "iqr", "pca"};
static const char *const action_names[] = {"flag", "clip", "drop"};

const char *lp_impute_method_name(lp_impute_method m)
{
    return (unsigned)m < LP_IMPUTE_METHOD_COUNT_ ? impute_names[m] : "unknown";
}
const char *lp_outlier_method_name(lp_outlier_method m)
{
    return (unsigned)m < LP_OUTLIER_METHOD_COUNT_ ? outlier_names[m] : "unknown";
}
const char *lp_outlier_action_name(lp_outlier_action a)
{
    return (unsigned)a < LP_OUTLIER_ACTION_COUNT_ ? action_names[a] : "unknown";
}

static lp_status parse_word(const char *s, const char *const *names, int n, const char *what,
                            int *out, lp_err *err)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = i;
            return LP_OK;
        }
    char list[128] = "";
    size_t l = 0;
    for (int i = 0; i < n && l < sizeof list; i++)
        l += (size_t)snprintf(list + l, sizeof list - l, "%s%s", i ? ", " : "", names[i]);
    return lp_err_set(err, LP_EINVAL, "%s '%s' is not one of: %s", what, s ? s : "(null)", list);
}

lp_status lp_impute_method_parse(const char *s, lp_impute_method *out, lp_err *err)
{
    int v;
    lp_status st = parse_word(s, impute_names, LP_IMPUTE_METHOD_COUNT_, "impute method", &v, err);
    if (!st)
        *out = (lp_impute_method)v;
    return st;
}
lp_status lp_outlier_method_parse(const char *s, lp_outlier_method *out, lp_err *err)
{
    int v;
    lp_status st =
        parse_word(s, outlier_names, LP_OUTLIER_METHOD_COUNT_, "outlier method", &v, err);
    if (!st)
        *out = (lp_outlier_method)v;
    return st;
}
lp_status lp_outlier_action_parse(const char *s, lp_outlier_action *out, lp_err *err)
{
    int v;
    lp_status st =
        parse_word(s, action_names, LP_OUTLIER_ACTION_COUNT_, "outlier action", &v, err);
    if (!st)
        *out = (lp_outlier_action)v;
    return st;
}

lp_cleaner_opts lp_cleaner_opts_default(void)
{
    lp_cleaner_opts o = {.impute = LP_IMPUTE_METHOD_MEDIAN,
                         .fill_value = 0,
                         .fill_string = "missing",
                         .outlier = LP_OUTLIER_METHOD_NONE,
                         .action = LP_OUTLIER_ACTION_FLAG,
                         .dedupe = true,
                         .z_threshold = 3.5,
                         .iqr_k = 1.5,
                         .pca_var = 0.9,
                         .pca_k = 0,
                         .pca_threshold = 3.5,
                         .svd_max_rank = 0,
                         .svd_max_iter = 100,
                         .svd_tol = 1e-5,
                         .svd_lambda = 0,
                         .seed = 42};
    return o;
}

static bool pos(double v) { return v > 0 && isfinite(v); }

lp_status lp_cleaner_opts_check(const lp_cleaner_opts *o, lp_err *err)
{
    const char *w = "cleaner options";
    if (!o)
        return lp_err_set(err, LP_EINVAL, "%s: NULL", w);
    if ((unsigned)o->impute >= LP_IMPUTE_METHOD_COUNT_)
        return lp_err_set(err, LP_EINVAL, "%s: impute %d out of range", w, (int)o->impute);
    if ((unsigned)o->outlier >= LP_OUTLIER_METHOD_COUNT_)
        return lp_err_set(err, LP_EINVAL, "%s: outlier %d out of range", w, (int)o->outlier);
    if ((unsigned)o->action >= LP_OUTLIER_ACTION_COUNT_)
        return lp_err_set(err, LP_EINVAL, "%s: action %d out of range", w, (int)o->action);
    if (o->outlier == LP_OUTLIER_METHOD_PCA && o->action == LP_OUTLIER_ACTION_CLIP)
        return lp_err_set(err, LP_EINVAL, "%s: action clip needs per-column fences (robust_z or "
                          "iqr), not pca; use flag or drop", w);
    if (!isfinite(o->fill_value))
        return lp_err_set(err, LP_EINVAL, "%s: fill_value must be finite", w);
    if (o->impute == LP_IMPUTE_METHOD_CONSTANT && !o->fill_string)
        return lp_err_set(err, LP_EINVAL, "%s: fill_string is NULL with impute constant", w);
    if (!pos(o->z_threshold))
        return lp_err_set(err, LP_EINVAL, "%s: z_threshold %g not positive", w, o->z_threshold);
    if (!pos(o->iqr_k))
        return lp_err_set(err, LP_EINVAL, "%s: iqr_k %g not positive", w, o->iqr_k);
    if (!(o->pca_var > 0 && o->pca_var <= 1))
        return lp_err_set(err, LP_EINVAL, "%s: pca_var %g not in (0, 1]", w, o->pca_var);
    if (!pos(o->pca_threshold))
        return lp_err_set(err, LP_EINVAL, "%s: pca_threshold %g not positive", w,
                          o->pca_threshold);
    if (!o->svd_max_iter || o->svd_max_iter > 100000)
        return lp_err_set(err, LP_EINVAL, "%s: svd_max_iter %zu not in [1, 100000]", w,
                          o->svd_max_iter);
    if (!pos(o->svd_tol))
        return lp_err_set(err, LP_EINVAL, "%s: svd_tol %g not positive", w, o->svd_tol);
    if (!(o->svd_lambda >= 0 && o->svd_lambda < 1))
        return lp_err_set(err, LP_EINVAL, "%s: svd_lambda %g not in [0, 1)", w, o->svd_lambda);
    return LP_OK;
}

void lp_cleaner_free(lp_cleaner *c)
{
    if (!c)
        return;
    for (size_t j = 0; c->col && j < c->ncols; j++) {
        free(c->col[j].name);
        free(c->col[j].fill_str);
    }
    free(c->col);
    free(c->fill_string);
    free(c->si_cols);
    free(c->pca_cols);
    lp_softimpute_clear(&c->si);
    lp_pca_detector_clear(&c->pca);
    free(c);
}

void lp_clean_report_free(lp_clean_report *r)
{
    if (!r)
        return;
    for (size_t j = 0; r->col && j < r->cols; j++)
        free(r->col[j].name);
    free(r->col);
    free(r);
}

/* Columns that get fences / PCA: numeric values that are not flags or times. */
static bool outlier_col(const clean_col *cc)
{
    return cc->type == LP_COL_TYPE_NUMERIC &&
           (cc->kind == LP_COL_KIND_INTEGER || cc->kind == LP_COL_KIND_FLOAT);
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Smallest of the most frequent values of sorted v (m > 0). */
static double mode_sorted(const double *v, size_t m)
{
    double best = v[0];
    size_t best_n = 0;
    for (size_t i = 0; i < m;) {
        size_t k = i;
        while (k < m && v[k] == v[i])
            k++;
        if (k - i > best_n) {
            best_n = k - i;
            best = v[i];
        }
        i = k;
    }
    return best;
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Smallest of the most frequent strings of column c, or NULL when all missing. */
static lp_status mode_string(const lp_column *c, char **out, lp_err *err)
{
    *out = NULL;
    const char **v = lp_mallocarray(c->n ? c->n : 1, sizeof *v);
    if (!v)
        return lp_err_set(err, LP_ENOMEM, "cleaner: out of memory for column '%s'", c->name);
    size_t m = 0;
    for (size_t i = 0; i < c->n; i++)
        if (!c->missing[i])
            v[m++] = c->type == LP_COL_TYPE_CATEGORICAL ? c->dict[c->codes[i]] : c->text[i];
    if (m > 1)
        qsort(v, m, sizeof *v, cmp_cstr);
    const char *best = NULL;
    size_t best_n = 0;
    for (size_t i = 0; i < m;) {
        size_t k = i;
        while (k < m && strcmp(v[k], v[i]) == 0)
            k++;
        if (k - i > best_n) {
            best_n = k - i;
            best = v[i];
        }
        i = k;
    }
    lp_status st = LP_OK;
    if (best && !(*out = lp_strdup(best)))
        st = lp_err_set(err, LP_ENOMEM, "cleaner: out of memory for column '%s'", c->name);
    free(v);
    return st;
}

/* Fit the fill of one column from frame column c. soft: whether c goes to soft-impute. */
static lp_status fit_fill(const lp_cleaner_opts *o, const lp_column *c, clean_col *cc,
                          bool *soft, lp_err *err)
{
    *soft = false;
    cc->fill = CLEAN_FILL_NONE;
    cc->fill_num = NAN;
    lp_impute_method m = o->impute;
    if (m == LP_IMPUTE_METHOD_NONE)
        return LP_OK;
    if (c->type != LP_COL_TYPE_NUMERIC) {
        if (m == LP_IMPUTE_METHOD_CONSTANT) {
            cc->fill_str = lp_strdup(o->fill_string);
            if (!cc->fill_str)
                return lp_err_set(err, LP_ENOMEM, "cleaner: out of memory");
        } else {
            lp_status st = mode_string(c, &cc->fill_str, err);
            if (st)
                return st;
        }
        cc->fill = cc->fill_str ? CLEAN_FILL_STR : CLEAN_FILL_NONE;
        return LP_OK;
    }
    if (m == LP_IMPUTE_METHOD_CONSTANT) {
        cc->fill = CLEAN_FILL_NUM;
        cc->fill_num = o->fill_value;
        return LP_OK;
    }
    double *v = lp_mallocarray(c->n ? c->n : 1, sizeof *v);
    if (!v)
        return lp_err_set(err, LP_ENOMEM, "cleaner: out of memory for column '%s'", c->name);
    size_t m_obs = 0;
    double sum = 0;
    for (size_t i = 0; i < c->n; i++)
        if (!c->missing[i]) {
            v[m_obs++] = c->num[i];
            sum += c->num[i];
        }
    if (m_obs) {
        if (m_obs > 1)
            qsort(v, m_obs, sizeof *v, cmp_dbl);
        if (c->kind == LP_COL_KIND_BOOL || m == LP_IMPUTE_METHOD_MOST_FREQUENT)
            cc->fill_num = mode_sorted(v, m_obs);
        else if (m == LP_IMPUTE_METHOD_MEDIAN)
            cc->fill_num = lp_clean_quantile_sorted(v, m_obs, 0.5);
        else
            cc->fill_num = sum / (double)m_obs;
        cc->fill = CLEAN_FILL_NUM;
        /* soft-impute needs a spread to standardise and two values to estimate it; other
           numeric columns (and any holding an infinity) keep the mean fill */
        if (m == LP_IMPUTE_METHOD_SOFT && c->kind != LP_COL_KIND_BOOL && m_obs >= 2 &&
            v[0] != v[m_obs - 1] && isfinite(v[0]) && isfinite(v[m_obs - 1])) {
            cc->fill = CLEAN_FILL_SVD;
            *soft = true;
        }
    }
    free(v);
    return LP_OK;
}

/* Per-apply working state: where each fitted column lives in the frame being cleaned. */
typedef struct apply_ctx {
    const lp_cleaner *c;
    lp_frame *f;    /* frame being modified (owned by the caller of the helpers) */
    size_t *where;  /* (c->ncols,) frame column of fitted column j */
    lp_clean_report *rep;
} apply_ctx;

static lp_status impute_frame(apply_ctx *a, lp_err *err)
{
    const lp_cleaner *c = a->c;
    size_t n = lp_frame_nrows(a->f);
    lp_status st;
    for (size_t j = 0; j < c->ncols; j++) {
        const clean_col *cc = &c->col[j];
        lp_column *col = lp_frame_col(a->f, a->where[j]);
        size_t miss = lp_column_count_missing(col);
        a->rep->col[j].missing = miss;
        if (!miss || (cc->fill != CLEAN_FILL_NUM && cc->fill != CLEAN_FILL_STR))
            continue;
        for (size_t i = 0; i < n; i++) {
            if (!col->missing[i])
                continue;
            st = cc->fill == CLEAN_FILL_NUM ? lp_column_set_num(col, i, cc->fill_num, err)
                                            : lp_column_set_str(col, i, cc->fill_str, err);
            if (st)
                return st;
        }
        a->rep->col[j].imputed = miss;
    }
    size_t p = c->si.p;
    if (!p)
        return LP_OK;
    double *row = lp_mallocarray(p, sizeof(double)),
           *work = lp_mallocarray(p * p + 2 * p, sizeof(double));
    size_t *iwork = lp_mallocarray(p, sizeof(size_t));
    st = LP_OK;
    if (!row || !work || !iwork)
        st = lp_err_set(err, LP_ENOMEM, "cleaner: out of memory for soft-impute");
    for (size_t i = 0; !st && i < n; i++) {
        bool any = false;
        for (size_t k = 0; k < p; k++) {
            const lp_column *col = lp_frame_col(a->f, a->where[c->si_cols[k]]);
            row[k] = col->missing[i] ? NAN : col->num[i];
            any |= col->missing[i] != 0;
        }
        if (!any)
            continue;
        st = lp_softimpute_row(&c->si, row, work, iwork, err);
        if (st) {
            lp_err_prefix(err, "row %zu", i);
            break;
        }
        for (size_t k = 0; k < p; k++) {
            lp_column *col = lp_frame_col(a->f, a->where[c->si_cols[k]]);
            if (col->missing[i] && isfinite(row[k])) {
                col->num[i] = row[k];
                col->missing[i] = 0;
                a->rep->col[c->si_cols[k]].imputed++;
            }
        }
    }
    free(row);
    free(work);
    free(iwork);
    return st;
}

/* Mark outlier rows in flag (n,); clip cells when the action says so. */
static lp_status detect(apply_ctx *a, uint8_t *flag, lp_err *err)
{
    const lp_cleaner *c = a->c;
    size_t n = lp_frame_nrows(a->f);
    bool clip = c->opts.action == LP_OUTLIER_ACTION_CLIP;
    if (c->opts.outlier == LP_OUTLIER_METHOD_ROBUST_Z || c->opts.outlier == LP_OUTLIER_METHOD_IQR) {
        for (size_t j = 0; j < c->ncols; j++) {
            const clean_col *cc = &c->col[j];
            if (!cc->has_fence)
                continue;
            lp_column *col = lp_frame_col(a->f, a->where[j]);
            for (size_t i = 0; i < n; i++) {
                double x = col->num[i];
                if (col->missing[i] || (x >= cc->lo && x <= cc->hi))
                    continue;
                flag[i] = 1;
                a->rep->col[j].outliers++;
                if (clip) {
                    col->num[i] = x < cc->lo ? cc->lo : cc->hi;
                    a->rep->col[j].clipped++;
                }
            }
        }
    } else if (c->opts.outlier == LP_OUTLIER_METHOD_PCA && c->pca.p) {
        size_t p = c->pca.p;
        double *row = lp_mallocarray(p, sizeof(double)), *work = lp_mallocarray(p, sizeof(double));
        if (!row || !work) {
            free(row);
            free(work);
            return lp_err_set(err, LP_ENOMEM, "cleaner: out of memory for PCA outliers");
        }
        for (size_t i = 0; i < n; i++) {
            for (size_t k = 0; k < p; k++) {
                const lp_column *col = lp_frame_col(a->f, a->where[c->pca_cols[k]]);
                row[k] = col->missing[i] ? NAN : col->num[i];
            }
            if (lp_pca_detector_error(&c->pca, row, work) > c->pca.threshold)
                flag[i] = 1;
        }
        free(row);
        free(work);
    }
    for (size_t i = 0; i < n; i++)
        a->rep->outlier_rows += flag[i];
    return LP_OK;
}

/* Replace frame *fp by its rows where keep[i] (n,) is set. */
static lp_status keep_rows(lp_frame **fp, const uint8_t *keep, lp_err *err)
{
    size_t n = lp_frame_nrows(*fp), m = 0;
    size_t *idx = lp_mallocarray(n ? n : 1, sizeof *idx);
    if (!idx)
        return lp_err_set(err, LP_ENOMEM, "cleaner: out of memory selecting rows");
    for (size_t i = 0; i < n; i++)
        if (keep[i])
            idx[m++] = i;
    lp_frame *g = NULL;
    lp_status st = lp_frame_take_rows(*fp, idx, m, &g, err);
    free(idx);
    if (st)
        return st;
    lp_frame_free(*fp);
    *fp = g;
    return LP_OK;
}

/* The shared body of fit and apply. stop_after_impute: fit uses the imputed rows to fit the
 * detector before detecting. */
static lp_status run(const lp_cleaner *c, const lp_frame *f, bool stop_after_impute,
                     lp_frame **out, lp_clean_report **report, size_t **where_out, lp_err *err)
{
    *out = NULL;
    lp_status st = LP_OK;
    lp_clean_report *rep = calloc(1, sizeof *rep);
    size_t *where = lp_calloc(c->ncols ? c->ncols : 1, sizeof *where);
    uint8_t *mark = NULL;
    lp_frame *g = NULL;
    if (!rep || !where || !(rep->col = lp_calloc(c->ncols ? c->ncols : 1, sizeof *rep->col))) {
        st = lp_err_set(err, LP_ENOMEM, "cleaner: out of memory");
        goto done;
    }
    rep->cols = c->ncols;
    for (size_t j = 0; j < c->ncols; j++) {
        if (!(rep->col[j].name = lp_strdup(c->col[j].name))) {
            st = lp_err_set(err, LP_ENOMEM, "cleaner: out of memory");
            goto done;
        }
        st = lp_frame_require(f, c->col[j].name, "frame to clean", &where[j], err);
        if (st)
            goto done;
        const lp_column *col = lp_frame_col(f, where[j]);
        if (col->type != c->col[j].type) {
            st = lp_err_set(err, LP_EINVAL, "frame to clean: column '%s' is %s, but the cleaner "
                            "was fitted on %s values", col->name, lp_col_type_name(col->type),
                            lp_col_type_name(c->col[j].type));
            goto done;
        }
    }
    size_t n = lp_frame_nrows(f);
    rep->rows_in = n;
    mark = lp_calloc(n ? n : 1, 1);
    if (!mark) {
        st = lp_err_set(err, LP_ENOMEM, "cleaner: out of memory for %zu rows", n);
        goto done;
    }
    if ((st = lp_frame_clone(f, &g, err)))
        goto done;
    if (c->opts.dedupe) {
        if ((st = lp_frame_find_duplicates(g, mark, &rep->duplicates_removed, err)))
            goto done;
        if (rep->duplicates_removed) {
            for (size_t i = 0; i < n; i++)
                mark[i] = !mark[i];
            if ((st = keep_rows(&g, mark, err)))
                goto done;
        }
    }
    apply_ctx a = {c, g, where, rep};
    if ((st = impute_frame(&a, err)))
        goto done;
    if (!stop_after_impute && c->opts.outlier != LP_OUTLIER_METHOD_NONE) {
        size_t m = lp_frame_nrows(g);
        memset(mark, 0, n ? n : 1);
        if ((st = detect(&a, mark, err)))
            goto done;
        if (c->opts.action == LP_OUTLIER_ACTION_DROP) {
            rep->rows_dropped = rep->outlier_rows;
            for (size_t i = 0; i < m; i++)
                mark[i] = !mark[i];
            if ((st = keep_rows(&g, mark, err)))
                goto done;
        } else if (c->opts.action == LP_OUTLIER_ACTION_FLAG) {
            double *v = lp_mallocarray(m ? m : 1, sizeof *v);
            if (!v) {
                st = lp_err_set(err, LP_ENOMEM, "cleaner: out of memory");
                goto done;
            }
            for (size_t i = 0; i < m; i++)
                v[i] = mark[i];
            long old = lp_frame_find(g, OUTLIER_COL);
            if (old >= 0 && (st = lp_frame_drop(g, (size_t)old, err))) {
                free(v);
                goto done;
            }
            st = lp_frame_add_numeric(g, OUTLIER_COL, LP_COL_KIND_BOOL, v, NULL, m, err);
            free(v);
            if (st)
                goto done;
        }
    }
    rep->rows_out = lp_frame_nrows(g);
done:
    free(mark);
    if (st) {
        lp_frame_free(g);
        lp_clean_report_free(rep);
        free(where);
        return st;
    }
    *out = g;
    if (report)
        *report = rep;
    else
        lp_clean_report_free(rep);
    if (where_out)
        *where_out = where;
    else
        free(where);
    return LP_OK;
}

lp_status lp_cleaner_apply(const lp_cleaner *c, const lp_frame *f, lp_frame **out,
                           lp_clean_report **report, lp_err *err)
{
    if (out)
        *out = NULL;
    if (report)
        *report = NULL;
    if (!c || !f || !out)
        return lp_err_set(err, LP_EINVAL, "cleaner apply: NULL cleaner, frame or output");
    return run(c, f, false, out, report, NULL, err);
}

/* Gather the columns idx (p,) of g into a (n, p) row-major matrix with NaN for missing. */
static double *gather(const lp_frame *g, const size_t *where, const size_t *idx, size_t p)
{
    size_t n = lp_frame_nrows(g);
    double *x = lp_mallocarray(n && p ? n * p : 1, sizeof *x);
    if (!x)
        return NULL;
    for (size_t k = 0; k < p; k++) {
        const lp_column *col = lp_frame_col(g, where[idx[k]]);
        for (size_t i = 0; i < n; i++)
            x[i * p + k] = col->missing[i] ? NAN : col->num[i];
    }
    return x;
}

static lp_status fit_fences(lp_cleaner *c, const lp_frame *g, const size_t *where, lp_err *err)
{
    size_t n = lp_frame_nrows(g);
    double *w = lp_mallocarray(n ? n : 1, sizeof *w);
    if (!w)
        return lp_err_set(err, LP_ENOMEM, "cleaner: out of memory fitting fences");
    for (size_t j = 0; j < c->ncols; j++) {
        clean_col *cc = &c->col[j];
        if (!outlier_col(cc))
            continue;
        const lp_column *col = lp_frame_col(g, where[j]);
        if (c->opts.outlier == LP_OUTLIER_METHOD_ROBUST_Z) {
            double med, mad, meanad;
            lp_clean_median_mad(col->num, n, w, &med, &mad, &meanad);
            double scale = mad > 0 ? mad * MAD_TO_SD : MEANAD_TO_SD * meanad;
            /* scale 0 (constant column) or no value: no fence, nothing is an outlier */
            if (!(scale > 0) || !isfinite(scale))
                continue;
            cc->lo = med - c->opts.z_threshold * scale;
            cc->hi = med + c->opts.z_threshold * scale;
        } else {
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                if (!col->missing[i])
                    w[m++] = col->num[i];
            if (!m)
                continue;
            lp_clean_sort(w, m);
            double q1 = lp_clean_quantile_sorted(w, m, 0.25),
                   q3 = lp_clean_quantile_sorted(w, m, 0.75);
            cc->lo = q1 - c->opts.iqr_k * (q3 - q1);
            cc->hi = q3 + c->opts.iqr_k * (q3 - q1);
            if (!isfinite(cc->lo) || !isfinite(cc->hi))
                continue; /* infinite quartiles: no usable fence */
        }
        cc->has_fence = true;
    }
    free(w);
    return LP_OK;
}

lp_status lp_cleaner_fit(const lp_frame *f, const lp_cleaner_opts *opts, lp_cleaner **out,
                         lp_err *err)
{
    if (out)
        *out = NULL;
    lp_cleaner_opts o = opts ? *opts : lp_cleaner_opts_default();
    lp_status st = lp_cleaner_opts_check(&o, err);
    if (st)
        return st;
    if (!f || !out)
        return lp_err_set(err, LP_EINVAL, "cleaner fit: NULL frame or output");
    lp_cleaner *c = calloc(1, sizeof *c);
    if (!c)
        return lp_err_set(err, LP_ENOMEM, "cleaner fit: out of memory");
    lp_frame *g = NULL, *imp = NULL;
    size_t *where = NULL;
    double *x = NULL;
    lp_clean_report *rep = NULL;
    c->fill_string = lp_strdup(o.fill_string ? o.fill_string : "missing");
    c->opts = o;
    c->opts.fill_string = c->fill_string;
    size_t nf = lp_frame_ncols(f);
    c->col = lp_calloc(nf ? nf : 1, sizeof *c->col);
    c->si_cols = lp_calloc(nf ? nf : 1, sizeof *c->si_cols);
    c->pca_cols = lp_calloc(nf ? nf : 1, sizeof *c->pca_cols);
    if (!c->fill_string || !c->col || !c->si_cols || !c->pca_cols) {
        st = lp_err_set(err, LP_ENOMEM, "cleaner fit: out of memory");
        goto done;
    }
    for (size_t j = 0; j < nf; j++) {
        const lp_column *col = lp_frame_col(f, j);
        if (strcmp(col->name, OUTLIER_COL) == 0)
            continue;
        clean_col *cc = &c->col[c->ncols++];
        cc->name = lp_strdup(col->name);
        cc->type = col->type;
        cc->kind = col->kind;
        cc->fill_num = NAN;
        if (!cc->name) {
            st = lp_err_set(err, LP_ENOMEM, "cleaner fit: out of memory");
            goto done;
        }
    }
    if (!c->ncols) {
        st = lp_err_set(err, LP_EINVAL, "cleaner fit: the frame has no columns to clean");
        goto done;
    }
    /* de-duplicated training rows (fills not fitted yet, so run only removes duplicates) */
    if ((st = run(c, f, true, &g, NULL, &where, err)))
        goto done;
    c->fit_rows = lp_frame_nrows(g);
    c->fit_duplicates = lp_frame_nrows(f) - c->fit_rows;
    for (size_t j = 0; j < c->ncols; j++) {
        bool soft;
        if ((st = fit_fill(&c->opts, lp_frame_col(g, where[j]), &c->col[j], &soft, err)))
            goto done;
        if (soft)
            c->si_cols[c->si.p++] = j;
    }
    if (c->si.p) {
        size_t p = c->si.p;
        if (!(x = gather(g, where, c->si_cols, p))) {
            st = lp_err_set(err, LP_ENOMEM, "cleaner fit: out of memory");
            goto done;
        }
        lp_softimpute si;
        if ((st = lp_softimpute_fit(x, lp_frame_nrows(g), p, &c->opts, &si, err)))
            goto done;
        c->si = si;
        free(x);
        x = NULL;
    }
    if (c->opts.outlier != LP_OUTLIER_METHOD_NONE) {
        lp_cleaner_opts keep = c->opts;
        c->opts.dedupe = false;
        st = run(c, g, true, &imp, &rep, NULL, err);
        c->opts = keep;
        if (st)
            goto done;
        if (c->opts.outlier == LP_OUTLIER_METHOD_PCA) {
            size_t p = 0;
            for (size_t j = 0; j < c->ncols; j++)
                if (outlier_col(&c->col[j]))
                    c->pca_cols[p++] = j;
            if (p && lp_frame_nrows(imp) >= 2) {
                if (!(x = gather(imp, where, c->pca_cols, p))) {
                    st = lp_err_set(err, LP_ENOMEM, "cleaner fit: out of memory");
                    goto done;
                }
                if ((st = lp_pca_detector_fit(x, lp_frame_nrows(imp), p, &c->opts, &c->pca, err)))
                    goto done;
            }
        } else if ((st = fit_fences(c, imp, where, err))) {
            goto done;
        }
    }
done:
    lp_frame_free(g);
    lp_frame_free(imp);
    lp_clean_report_free(rep);
    free(where);
    free(x);
    if (st) {
        lp_cleaner_free(c);
        return st;
    }
    *out = c;
    return LP_OK;
}
