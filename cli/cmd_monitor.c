/*
 * cmd_monitor.c - `lepton monitor --db monitor.db --model MODEL.lpm [--json]`: the served model's
 * drift (per-feature PSI and KS against the training reference, and the score's) and its live
 * metrics from delayed labels, read offline from the service's database; an SVG chart per
 * drifted feature (reference vs current shares per bin) is written to --charts DIR.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "commands.h"
#include "modelserver.h"

static void svg_escape(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else
            fputc(*s, f);
    }
}

/* A grouped bar chart: reference (grey) and current (orange) share of each bin. */
static lp_status write_chart(const char *path, const lp_drift_stat *st, const double *ref,
                             const double *cur, size_t nb, const char **labels, lp_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return lp_err_set(err, LP_EIO, "%s: cannot create: %s", path, strerror(errno));
    const double W = 760, H = 300, L = 50, T = 40, B = 60, R = 20;
    double top = 0;
    for (size_t b = 0; b < nb; b++)
        top = fmax(top, fmax(ref[b], cur[b]));
    if (top <= 0)
        top = 1;
    double bw = (W - L - R) / (double)nb;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "font-family=\"sans-serif\" font-size=\"11\">\n",
            W, H);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n<text x=\"%.0f\" y=\"20\" "
               "font-size=\"14\">",
            L);
    svg_escape(f, st->name);
    fprintf(f, ": PSI %.3f, KS %.3f, %llu live values</text>\n", st->psi, st->ks,
            (unsigned long long)st->n);
    fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" stroke=\"black\"/>\n", L,
            H - B, W - R, H - B);
    for (size_t b = 0; b < nb; b++) {
        double x = L + (double)b * bw, hr = (H - T - B) * ref[b] / top,
               hc = (H - T - B) * cur[b] / top;
        fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#9e9e9e\"/>\n",
                x, H - B - hr, bw * 0.45, hr);
        fprintf(f, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"#f57c00\"/>\n",
                x + bw * 0.45, H - B - hc, bw * 0.45, hc);
        size_t every = nb > 12 ? nb / 6 : 1;
        if (b % every == 0 || b + 1 == nb) {
            fprintf(f, "<text x=\"%.2f\" y=\"%.0f\" transform=\"rotate(30 %.2f %.0f)\">", x,
                    H - B + 14, x, H - B + 14);
            svg_escape(f, labels[b]);
            fputs("</text>\n", f);
        }
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\">share %.3f</text>\n", 4.0, T + 4, top);
    fprintf(f, "<rect x=\"%.0f\" y=\"26\" width=\"10\" height=\"10\" fill=\"#9e9e9e\"/><text x=\"%.0f\" "
               "y=\"35\">reference (training)</text>\n",
            W - 260, W - 246);
    fprintf(f, "<rect x=\"%.0f\" y=\"26\" width=\"10\" height=\"10\" fill=\"#f57c00\"/><text x=\"%.0f\" "
               "y=\"35\">current (served)</text>\n",
            W - 120, W - 106);
    fputs("</svg>\n", f);
    if (fclose(f) != 0)
        return lp_err_set(err, LP_EIO, "%s: write failed", path);
    return LP_OK;
}

static cJSON *num(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

int cmd_monitor(int argc, char **argv)
{
    const char *db = NULL, *model = NULL, *charts = "monitor-charts";
    bool json = false;
    long window = 10000;
    double psi = 0.2;
    const arg_spec opts[] = {
        {"db", ARG_STR, &db, "DB", "the service's monitoring database (lepton serve --db)"},
        {"model", ARG_STR, &model, "MODEL.lpm", "the served model"},
        {"json", ARG_FLAG, &json, NULL, "print the report as JSON"},
        {"charts", ARG_STR, &charts, "DIR", "folder for the SVG charts (default monitor-charts)"},
        {"window", ARG_INT, &window, "N", "labelled predictions for live metrics (default 10000)",
         1, 1e9},
        {"psi-threshold", ARG_DOUBLE, &psi, "X", "flag drift above this PSI (default 0.2)", 0,
         100},
    };
    const arg_cmd cmd = {"monitor", "--db monitor.db --model MODEL.lpm [--json]",
                         "Drift and live metrics of a served model, offline.", opts,
                         sizeof opts / sizeof opts[0], 0, 0};
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, NULL, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (!db || !model) {
        fprintf(stderr, "lepton monitor: --db and --model are required\n");
        return 2;
    }
    lp_err err;
    lp_err_clear(&err);
    served *s = NULL;
    uint8_t *blob = NULL;
    size_t blen = 0;
    lp_live_metrics lm;
    lp_drift_stat *st = NULL;
    size_t nf = 0, nflag = 0;
    lp_status e = served_load(model, &s, &err);
    if (!e && !s->ref)
        e = lp_err_set(&err, LP_ENOTFOUND, "%s has no drift reference (train it with lepton "
                                           "train)",
                       model);
    char key[128];
    if (!e) {
        snprintf(key, sizeof key, "drift:%s", s->version);
        lp_status g = lp_predlog_get_state_offline(db, key, &blob, &blen, &err);
        if (g == LP_OK)
            e = lp_drift_sketch_add_saved(s->sk, blob, blen, &err);
        else if (g != LP_ENOTFOUND)
            e = g;
        if (!e)
            lp_err_clear(&err); /* no saved counts yet: not an error */
    }
    if (!e) {
        const char *positive =
            lp_model_task(s->m) == LP_TASK_BINARY ? lp_model_class(s->m, 1) : NULL;
        e = lp_predlog_live_offline(db, (size_t)window, positive, &lm, &err);
    }
    if (!e) {
        nf = lp_drift_nfeatures(s->ref);
        st = calloc(nf ? nf : 1, sizeof *st);
        if (!st)
            e = lp_err_set(&err, LP_ENOMEM, "out of memory");
        else
            lp_drift_compare(s->sk, psi, st);
    }
    if (!e) {
        for (size_t j = 0; j < nf; j++)
            nflag += st[j].drifted;
        if (nflag && mkdir(charts, 0755) != 0 && errno != EEXIST)
            e = lp_err_set(&err, LP_EIO, "%s: cannot create: %s", charts, strerror(errno));
    }
    cJSON *out = cJSON_CreateObject(), *feats = cJSON_CreateArray();
    for (size_t j = 0; !e && j < nf; j++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "feature", st[j].name);
        cJSON_AddNumberToObject(o, "n", (double)st[j].n);
        cJSON_AddItemToObject(o, "psi", num(st[j].psi));
        cJSON_AddItemToObject(o, "ks", num(st[j].ks));
        cJSON_AddBoolToObject(o, "drifted", st[j].drifted);
        if (st[j].drifted) {
            double ref[LP_DRIFT_EDGES + 2], cur[LP_DRIFT_EDGES + 2];
            const char *labels[LP_DRIFT_EDGES + 2];
            size_t nb;
            lp_drift_bins(s->sk, j, ref, cur, &nb, labels);
            char path[1024], safe[128];
            snprintf(safe, sizeof safe, "%s", st[j].name);
            for (char *c = safe; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
                      (*c >= '0' && *c <= '9') || *c == '_' || *c == '-'))
                    *c = '_';
            snprintf(path, sizeof path, "%s/%s.svg", charts, safe);
            e = write_chart(path, &st[j], ref, cur, nb, labels, &err);
            cJSON_AddStringToObject(o, "chart", path);
        }
        cJSON_AddItemToArray(feats, o);
    }
    if (e) {
        rc = cli_fail("monitor", &err);
    } else {
        cJSON_AddStringToObject(out, "model_version", s->version);
        cJSON_AddItemToObject(out, "drift", feats);
        feats = NULL;
        cJSON *live = cJSON_AddObjectToObject(out, "live");
        cJSON_AddNumberToObject(live, "labelled", (double)lm.n);
        cJSON_AddItemToObject(live, "accuracy", num(lm.accuracy));
        cJSON_AddItemToObject(live, "auroc", num(lm.auroc));
        cJSON_AddItemToObject(live, "rmse", num(lm.rmse));
        if (json) {
            char *t = cJSON_PrintUnformatted(out);
            printf("%s\n", t ? t : "{}");
            free(t);
        } else {
            printf("model %s (version %s); %zu features monitored, %zu drifted (PSI > %g)\n",
                   model, s->version, nf, nflag, psi);
            printf("%-28s %10s %8s %8s  %s\n", "feature", "live n", "PSI", "KS", "");
            for (size_t j = 0; j < nf; j++)
                printf("%-28.28s %10llu %8.4f %8.4f  %s\n", st[j].name,
                       (unsigned long long)st[j].n, st[j].psi, st[j].ks,
                       st[j].drifted ? "DRIFT" : "");
            printf("live metrics over %zu labelled predictions: accuracy %.4f  auroc %.4f  "
                   "rmse %.4g\n",
                   lm.n, lm.accuracy, lm.auroc, lm.rmse);
            if (nflag)
                printf("charts: %s/\n", charts);
        }
    }
    cJSON_Delete(out);
    cJSON_Delete(feats);
    free(st);
    free(blob);
    served_free(s);
    return rc;
}
