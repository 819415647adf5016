/*
 * cs_oos_curve.c - the out-of-scope operating curve of a trained customer-service model: for
 * each in-scope accuracy budget (train's --oos-max-loss), the thresholds fitted on the
 * validation file by the same rule as train (eh_fit_thresholds for encoder models; the
 * one-threshold rule otherwise is approximated by the same function with no cosine), then
 * in-scope accuracy and OOS recall on the test file. Also the model's own fitted thresholds
 * and no threshold at all. The test file is only scored, never used to choose anything.
 *
 * Usage: cs_oos_curve MODEL.lpm VALID.tsv TEST.tsv [BUDGET ...]   (budgets as fractions,
 *        default 0 0.0025 0.005 0.0075 0.01 0.015 0.02)
 * Output: one JSON object a line.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs.h"
#include "enchead.h"

typedef struct rows {
    cs_table t;
    const char **tx, **lb;
    size_t n;
    cs_intent_result *r;
    double *conf, *cos;
    uint8_t *gold, *right, *pre;
} rows;

static int load(cs_bot *b, const char *path, rows *d)
{
    lp_err err = {0};
    memset(d, 0, sizeof(*d));
    size_t jt, jl;
    if (cs_table_read(path, &d->t, &err) != LP_OK ||
        cs_table_require(&d->t, "text", path, &jt, &err) != LP_OK ||
        cs_table_require(&d->t, "label", path, &jl, &err) != LP_OK) {
        fprintf(stderr, "cs_oos_curve: %s\n", err.msg);
        return -1;
    }
    size_t n = d->n = d->t.n_rows;
    d->tx = calloc(n, sizeof(char *));
    d->lb = calloc(n, sizeof(char *));
    d->r = calloc(n, sizeof(cs_intent_result));
    d->conf = calloc(n, sizeof(double));
    d->cos = calloc(n, sizeof(double));
    d->gold = calloc(n, 1);
    d->right = calloc(n, 1);
    d->pre = calloc(n, 1);
    if (!d->tx || !d->lb || !d->r || !d->conf || !d->cos || !d->gold || !d->right || !d->pre) {
        fprintf(stderr, "cs_oos_curve: out of memory\n");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        d->tx[i] = cs_table_cell(&d->t, i, jt);
        d->lb[i] = cs_table_cell(&d->t, i, jl);
    }
    if (cs_intent_predict_cos(b->intent, d->tx, n, d->r, d->cos, &err) != LP_OK) {
        fprintf(stderr, "cs_oos_curve: %s: %s\n", path, err.msg);
        return -1;
    }
    const char *oos = cs_intent_oos_label(b->intent);
    for (size_t i = 0; i < n; i++) {
        d->conf[i] = d->r[i].confidence;
        d->gold[i] = !strcmp(d->lb[i], oos);
        d->pre[i] = d->r[i].out_of_scope; /* thresholds are off: the trained OOS class */
        d->right[i] = d->r[i].n_alt && !strcmp(d->r[i].alt[0], d->lb[i]);
    }
    return 0;
}

/* In-scope accuracy and OOS recall of d under "OOS when pre, conf < tau or cos < tau_c". */
static void score(const rows *d, double tau, double tau_c, double *acc, double *rec)
{
    size_t n_in = 0, ok = 0, n_oos = 0, hit = 0;
    for (size_t i = 0; i < d->n; i++) {
        int oos = d->pre[i] || d->conf[i] < tau || d->cos[i] < tau_c;
        if (d->gold[i]) {
            n_oos++;
            hit += oos;
        } else {
            n_in++;
            ok += !oos && d->right[i];
        }
    }
    *acc = n_in ? (double)ok / (double)n_in : 0;
    *rec = n_oos ? (double)hit / (double)n_oos : 0;
}

static void row(const char *what, double budget, const rows *v, const rows *t, double tau,
                double tau_c)
{
    double va, vr, ta, tr;
    score(v, tau, tau_c, &va, &vr);
    score(t, tau, tau_c, &ta, &tr);
    printf("{\"thresholds\":\"%s\",\"budget\":%.4f,\"tau\":%.5f,\"tau_c\":%.5f,"
           "\"valid_in_scope_accuracy\":%.4f,\"valid_oos_recall\":%.4f,"
           "\"test_in_scope_accuracy\":%.4f,\"test_oos_recall\":%.4f}\n",
           what, budget, tau, tau_c, va, vr, ta, tr);
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: cs_oos_curve MODEL.lpm VALID.tsv TEST.tsv [BUDGET ...]\n");
        return 2;
    }
    lp_err err = {0};
    cs_bot *b;
    if (cs_bot_load(argv[1], &b, &err) != LP_OK) {
        fprintf(stderr, "cs_oos_curve: %s\n", err.msg);
        return 1;
    }
    double tau0 = cs_intent_threshold(b->intent), tc0 = cs_intent_cos_threshold(b->intent);
    if (tc0 != tc0)
        tc0 = -1; /* NaN: no encoder */
    cs_intent_set_thresholds(b->intent, 0, -1);
    rows v, t;
    if (load(b, argv[2], &v) || load(b, argv[3], &t))
        return 1;
    row("none", 0, &v, &t, 0, -1);
    row("model", -1, &v, &t, tau0, tc0);
    static const double dflt[] = {0, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02};
    size_t nb = argc > 4 ? (size_t)(argc - 4) : sizeof(dflt) / sizeof(dflt[0]);
    for (size_t k = 0; k < nb; k++) {
        double budget = argc > 4 ? strtod(argv[4 + k], NULL) : dflt[k], tau, tau_c;
        if (eh_fit_thresholds(v.conf, v.cos, v.gold, v.right, v.pre, v.n, budget, 0, &tau,
                              &tau_c, &err) != LP_OK) {
            fprintf(stderr, "cs_oos_curve: %s\n", err.msg);
            return 1;
        }
        row("fitted on valid", budget, &v, &t, tau, tau_c);
    }
    cs_bot_free(b);
    return 0;
}
