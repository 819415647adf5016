/*
 * cs_oos_curve.c - the out-of-scope operating curve of a trained customer-service model: for
 * each in-scope accuracy budget (train's --oos-max-loss), the thresholds fitted on the
 * validation file by the same rule as train (eh_fit_thresholds for encoder models; the
 * one-threshold rule otherwise is approximated by the same function with no cosine), then
 * in-scope accuracy and OOS recall on the test file. Also the model's own fitted thresholds
 * and no threshold at all. The test file is only scored, never used to choose anything.
 *
 * Usage: cs_oos_curve MODEL.lpm[,MODEL2.lpm..] VALID.tsv TEST.tsv [BUDGET ...]   (budgets as
 *        fractions, default 0 0.0025 0.005 0.0075 0.01 0.015 0.02)
 *
 * Several models (comma-separated, at most 8) are scored as an ensemble: the mean of their
 * top-CS_TOPK calibrated in-scope probabilities (a class outside a member's top CS_TOPK counts
 * 0 for it, so this approximates the mean of the full distributions), the mean of their centroid
 * cosines, and the trained OOS class when at least CS_ENS_PRE (default: half, rounded up) of the
 * members predict it. The "model" row is then the first model's thresholds.
 *
 * CALIB=MODEL.lpm scores every model with that model's temperature and TF-IDF weight, and the
 * budgets' thresholds are the ones fitted on VALID.tsv with CALIB's own predictions: the
 * settings chosen on validation by a model trained without it, applied to a model refitted
 * on training + validation (whose own validation fit would be biased).
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

/* Fold the members m[0..nm) into m[0] (see the header). */
static void merge(rows *m, size_t nm, size_t need_pre)
{
    rows *d = &m[0];
    for (size_t i = 0; i < d->n; i++) {
        const char *lab[8 * CS_TOPK];
        double p[8 * CS_TOPK], cs = 0;
        size_t nl = 0, npre = 0;
        for (size_t j = 0; j < nm; j++) {
            const cs_intent_result *r = &m[j].r[i];
            cs += m[j].cos[i];
            npre += m[j].pre[i];
            for (size_t a = 0; a < r->n_alt; a++) {
                size_t q = 0;
                while (q < nl && strcmp(lab[q], r->alt[a]))
                    q++;
                if (q == nl) {
                    lab[nl] = r->alt[a];
                    p[nl++] = 0;
                }
                p[q] += r->alt_p[a] / (double)nm;
            }
        }
        size_t best = 0;
        for (size_t q = 1; q < nl; q++)
            if (p[q] > p[best])
                best = q;
        d->conf[i] = nl ? p[best] : 0;
        d->right[i] = nl && !strcmp(lab[best], d->lb[i]);
        d->cos[i] = cs / (double)nm;
        d->pre[i] = npre >= need_pre;
    }
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
    cs_bot *b[8];
    rows vm[8], tm[8];
    size_t nm = 0;
    double tau0 = 0, tc0 = -1;
    cs_bot *cal = NULL;
    rows cv;
    if (getenv("CALIB")) {
        if (cs_bot_load(getenv("CALIB"), &cal, &err) != LP_OK) {
            fprintf(stderr, "cs_oos_curve: %s\n", err.msg);
            return 1;
        }
        cs_intent_set_thresholds(cal->intent, 0, -1);
        if (load(cal, argv[2], &cv))
            return 1;
    }
    char *list = strdup(argv[1]), *save = NULL;
    for (char *path = strtok_r(list, ",", &save); path; path = strtok_r(NULL, ",", &save)) {
        if (nm == 8) {
            fprintf(stderr, "cs_oos_curve: at most 8 models\n");
            return 2;
        }
        if (cs_bot_load(path, &b[nm], &err) != LP_OK) {
            fprintf(stderr, "cs_oos_curve: %s\n", err.msg);
            return 1;
        }
        if (!nm) {
            tau0 = cs_intent_threshold(b[0]->intent);
            tc0 = cs_intent_cos_threshold(b[0]->intent);
            if (tc0 != tc0)
                tc0 = -1; /* NaN: no encoder */
        }
        cs_intent_set_thresholds(b[nm]->intent, 0, -1);
        if (cal)
            cs_intent_set_calibration(b[nm]->intent, cs_intent_temperature(cal->intent),
                                      cs_intent_tfidf_weight(cal->intent));
        if (load(b[nm], argv[2], &vm[nm]) || load(b[nm], argv[3], &tm[nm]))
            return 1;
        nm++;
    }
    free(list);
    size_t need_pre = (nm + 1) / 2;
    if (getenv("CS_ENS_PRE"))
        need_pre = (size_t)strtoul(getenv("CS_ENS_PRE"), NULL, 10);
    if (nm > 1) {
        merge(vm, nm, need_pre);
        merge(tm, nm, need_pre);
    }
    rows v = vm[0], t = tm[0];
    row("none", 0, &v, &t, 0, -1);
    row("model", -1, &v, &t, tau0, tc0);
    static const double dflt[] = {0, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02};
    size_t nb = argc > 4 ? (size_t)(argc - 4) : sizeof(dflt) / sizeof(dflt[0]);
    for (size_t k = 0; k < nb; k++) {
        double budget = argc > 4 ? strtod(argv[4 + k], NULL) : dflt[k], tau, tau_c;
        const rows *f = cal ? &cv : &v;
        if (eh_fit_thresholds(f->conf, f->cos, f->gold, f->right, f->pre, f->n, budget, 0, &tau,
                              &tau_c, &err) != LP_OK) {
            fprintf(stderr, "cs_oos_curve: %s\n", err.msg);
            return 1;
        }
        row("fitted on valid", budget, &v, &t, tau, tau_c);
    }
    for (size_t j = 0; j < nm; j++)
        cs_bot_free(b[j]);
    return 0;
}
