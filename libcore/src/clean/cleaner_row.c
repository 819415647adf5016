/*
 * cleaner_row.c - a fitted lp_cleaner applied to one row held in flat arrays (no frame), for
 * the prepared predictor (model/predictor.c).
 *
 * What it does not do: soft-impute fold-in, outlier flag/drop, PCA outliers or de-duplication;
 * the plan refuses those (ok = false) and the caller uses lp_cleaner_apply.
 * Invariant: every cell ends as lp_cleaner_apply leaves it for the same row - the same fill
 * value (lp_column_set_num / set_str clear the missing flag; a column with no fill stays
 * missing), then the same clip test (x outside [lo, hi] on a non-missing cell).
 */
#include "clean/clean_internal.h"

#include <stdlib.h>
#include <string.h>

void lp_cleaner_rowplan_clear(lp_cleaner_rowplan *plan)
{
    if (!plan)
        return;
    free(plan->slot);
    memset(plan, 0, sizeof *plan);
}

lp_status lp_cleaner_rowplan_init(const lp_cleaner *c, const char *const *names,
                                  const lp_col_type *types, size_t n, bool multi_row,
                                  lp_cleaner_rowplan *plan, bool *ok, const char **why, lp_err *err)
{
    memset(plan, 0, sizeof *plan);
    *ok = false;
    *why = NULL;
    if (c->si.p) {
        *why = "the cleaner soft-imputes (fold-in per row)";
        return LP_OK;
    }
    if (c->opts.outlier == LP_OUTLIER_METHOD_PCA ||
        (c->opts.outlier != LP_OUTLIER_METHOD_NONE && c->opts.action != LP_OUTLIER_ACTION_CLIP)) {
        *why = "the cleaner flags or drops outliers";
        return LP_OK;
    }
    if (multi_row && c->opts.dedupe) {
        *why = "the cleaner removes duplicate rows";
        return LP_OK;
    }
    plan->slot = lp_mallocarray(c->ncols ? c->ncols : 1, sizeof *plan->slot);
    if (!plan->slot)
        return lp_err_set(err, LP_ENOMEM, "cleaner: out of memory");
    plan->n = c->ncols;
    for (size_t j = 0; j < c->ncols; j++) {
        size_t s = 0;
        while (s < n && strcmp(names[s], c->col[j].name) != 0)
            s++;
        if (s == n || types[s] != c->col[j].type) {
            *why = "a cleaner column is not a model input of the same type";
            return LP_OK;
        }
        plan->slot[j] = (uint32_t)s;
    }
    *ok = true;
    return LP_OK;
}

void lp_cleaner_row_apply(const lp_cleaner *c, const lp_cleaner_rowplan *plan, double *num,
                          uint8_t *miss, const char **str)
{
    bool clip = c->opts.outlier != LP_OUTLIER_METHOD_NONE;
    for (size_t j = 0; j < plan->n; j++) {
        const clean_col *cc = &c->col[j];
        uint32_t s = plan->slot[j];
        if (miss[s] && cc->fill == CLEAN_FILL_NUM) {
            num[s] = cc->fill_num;
            miss[s] = 0;
        } else if (miss[s] && cc->fill == CLEAN_FILL_STR) {
            str[s] = cc->fill_str;
            miss[s] = 0;
        }
        if (clip && cc->has_fence && !miss[s]) {
            double x = num[s];
            if (!(x >= cc->lo && x <= cc->hi))
                num[s] = x < cc->lo ? cc->lo : cc->hi;
        }
    }
}
