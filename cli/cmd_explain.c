/*
 * cmd_explain.c - `lepton explain --model MODEL.lpm --data ROWS [--method auto|linear|treeshap|
 * ig|kernelshap] [--json] [--global] [--svg OUT.svg] [--background N] [--samples N] [--seed S]
 * [--top K]`: why a model scores each row as it does (lp_explain_rows), or which features
 * matter over a data set (--global: mean |contribution| per feature, or with
 * --importance permutation the permutation importance on labelled rows).
 *
 * Per row: the base value, the raw score (value, log-odds or class logit / margin) and each
 * feature's contribution; base + sum = raw (integrated gradients: up to the trapezoid error).
 * --json prints ONE JSON array with an object per row: {"row", "method", ["class"],
 * "base_value", "raw_score", "contributions": {feature: value}}; --global --json one object
 * {"method", "metric"?, "importance": {feature: value}} (features by decreasing importance).
 * The background (KernelSHAP's sample, the IG / linear baseline with --baseline mean) is drawn
 * from --background-data, else from the explained rows themselves.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "explainjson.h"
#include "modelio.h"

typedef struct gitem {
    const char *name;
    double v;
} gitem;

static int gitem_cmp(const void *a, const void *b)
{
    double x = ((const gitem *)a)->v, y = ((const gitem *)b)->v;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void xml_text(FILE *f, const char *s)
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

/* A horizontal bar chart of the first n items (sorted) as an SVG file. */
static lp_status write_svg(const char *path, const char *title, const gitem *it, size_t n,
                           lp_err *err)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return lp_err_set(err, LP_EIO, "%s: cannot open for writing", path);
    const int bar_h = 22, left = 220, width = 760, chart_w = width - left - 90;
    int height = 50 + (int)n * bar_h + 20;
    double mx = 0.0;
    for (size_t i = 0; i < n; i++)
        mx = fabs(it[i].v) > mx ? fabs(it[i].v) : mx;
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n", width, height);
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"10\" y=\"24\" font-size=\"15\">");
    xml_text(f, title);
    fprintf(f, "</text>\n");
    for (size_t i = 0; i < n; i++) {
        int y = 40 + (int)i * bar_h;
        double w = mx > 0 ? fabs(it[i].v) / mx * chart_w : 0.0;
        fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 8, y + 15);
        xml_text(f, it[i].name);
        fprintf(f, "</text>\n<rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%.2f\" height=\"%d\" "
                   "fill=\"%s\"/>\n", left, y + 3, w, bar_h - 6,
                it[i].v >= 0 ? "#3b75af" : "#c03d3e");
        fprintf(f, "<text x=\"%.2f\" y=\"%d\">%.4g</text>\n", left + w + 6, y + 15, it[i].v);
    }
    fprintf(f, "</svg>\n");
    if (fclose(f) != 0)
        return lp_err_set(err, LP_EIO, "%s: write failed", path);
    return LP_OK;
}

static void print_rows(const lp_model *m, const lp_explanation *e, size_t top)
{
    size_t *idx = malloc((e->p + 1) * sizeof *idx);
    if (!idx)
        return;
    size_t k = top && top < e->p ? top : e->p;
    for (size_t i = 0; i < e->n; i++) {
        printf("row %zu", i);
        if (lp_model_task(m) != LP_TASK_REGRESSION) {
            size_t c = lp_model_task(m) == LP_TASK_BINARY ? 1 : (size_t)e->output[i];
            printf("  class %s", lp_model_class(m, c));
        }
        printf("  base %.6g  raw %.6g  (%s)\n", e->base[i], e->raw[i],
               lp_explain_method_name(e->method));
        lp_explanation_top(e, i, k, idx);
        for (size_t t = 0; t < k; t++)
            printf("  %-32s %+.6g\n", e->names[idx[t]], e->phi[i * e->p + idx[t]]);
    }
    free(idx);
}

static lp_status global_out(const char *title, const char *method, const char *metric,
                            char **names, const double *v, size_t p, size_t top, bool json,
                            const char *svg, lp_err *err)
{
    gitem *it = malloc((p + 1) * sizeof *it);
    if (!it)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    for (size_t j = 0; j < p; j++)
        it[j] = (gitem){names[j], v[j]};
    qsort(it, p, sizeof *it, gitem_cmp);
    size_t k = top && top < p ? top : p;
    if (json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "method", method);
        if (metric)
            cJSON_AddStringToObject(o, "metric", metric);
        cJSON *imp = cJSON_AddObjectToObject(o, "importance");
        for (size_t j = 0; j < k; j++)
            cJSON_AddNumberToObject(imp, it[j].name, it[j].v);
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(o);
    } else {
        printf("%s\n", title);
        for (size_t j = 0; j < k; j++)
            printf("  %-32s %.6g\n", it[j].name, it[j].v);
    }
    lp_status st = svg ? write_svg(svg, title, it, k ? k : 0, err) : LP_OK;
    free(it);
    return st;
}

int cmd_explain(int argc, char **argv)
{
    cli_read rd = {0};
    const char *model = NULL, *data = NULL, *method = "auto", *svg = NULL, *bgdata = NULL;
    const char *baseline = "zeros", *importance = "shap";
    bool json = false, global = false, design = false;
    long background = 100, samples = 0, seed = 0, top = 0, steps = 64, repeats = 5;
    long threads = 0;
    const arg_spec opts[] = {
        {"model", ARG_STR, &model, "MODEL.lpm", "the model file"},
        {"data", ARG_STR, &data, "ROWS", "rows to explain (CSV, TSV or JSONL)"},
        {"method", ARG_STR, &method, "M",
         "auto|linear|treeshap|ig|kernelshap (default auto: the family's exact method)"},
        {"json", ARG_FLAG, &json, NULL, "print one JSON array (or object with --global)"},
        {"global", ARG_FLAG, &global, NULL, "importance over the data set instead of per row"},
        {"importance", ARG_STR, &importance, "KIND",
         "--global: shap (mean |contribution|, default) or permutation (needs the label)"},
        {"repeats", ARG_INT, &repeats, "N", "permutation shuffles per feature (default 5)", 1,
         1000},
        {"svg", ARG_STR, &svg, "OUT.svg", "--global: write a bar chart"},
        {"background", ARG_INT, &background, "N", "background rows (default 100)", 1, 100000},
        {"background-data", ARG_STR, &bgdata, "FILE",
         "background rows (default: drawn from --data)"},
        {"baseline", ARG_STR, &baseline, "B",
         "ig and linear: zeros (the training mean of scaled columns, default) or mean (of the "
         "background)"},
        {"samples", ARG_INT, &samples, "N", "kernelshap coalitions (default 2 M + 2048)", 0,
         10000000},
        {"steps", ARG_INT, &steps, "N", "ig trapezoid steps (default 64)", 1, 100000},
        {"seed", ARG_INT, &seed, "S", "background draw, coalitions, shuffles (default 0)", 0,
         1e18},
        {"top", ARG_INT, &top, "K", "show the K largest contributions (default: all; text 10)",
         0, 1e9},
        {"design", ARG_FLAG, &design, NULL,
         "explain the design columns (one-hot, TF-IDF ...) instead of raw columns"},
        {"threads", ARG_INT, &threads, "N", "OpenMP threads (default: all)", 0, 1024},
        CLI_READ_SPECS(rd),
    };
    const arg_cmd cmd = {"explain",
                         "--model MODEL.lpm --data ROWS [--method auto|linear|treeshap|ig|"
                         "kernelshap] [--json] [--global] [--svg OUT.svg] [--background N] "
                         "[--samples N] [--seed S] [--top K]",
                         "Explain a model's scores: per-row contributions or global importance.",
                         opts, sizeof opts / sizeof opts[0], 0, 0};
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, NULL, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (!model || !data) {
        fprintf(stderr, "lepton explain: --model and --data are required\n");
        return 2;
    }
    if (strcmp(baseline, "zeros") && strcmp(baseline, "mean")) {
        fprintf(stderr, "lepton explain: --baseline %s: expected zeros or mean\n", baseline);
        return 2;
    }
    if (strcmp(importance, "shap") && strcmp(importance, "permutation")) {
        fprintf(stderr, "lepton explain: --importance %s: expected shap or permutation\n",
                importance);
        return 2;
    }
    if (svg && !global) {
        fprintf(stderr, "lepton explain: --svg needs --global\n");
        return 2;
    }
    lp_err err;
    lp_err_clear(&err);
    lp_model *m = NULL;
    lp_frame *f = NULL, *bg = NULL;
    lp_explanation e = {0};
    lp_importance imp = {0};
    lp_explain_opts o = lp_explain_opts_default();
    lp_status st = lp_explain_method_parse(method, &o.method, &err);
    if (!st)
        st = lp_model_load(model, &m, &err);
    lp_explain_method resolved = LP_EXPLAIN_METHOD_AUTO;
    if (!st)
        st = lp_explain_method_resolve(o.method, lp_model_get_kind(m), &resolved, &err);
    if (!st)
        st = cli_read_frame(data, &rd, &f, &err);
    if (!st && bgdata)
        st = cli_read_frame(bgdata, &rd, &bg, &err);
    if (st)
        goto done;
    o.raw_columns = !design;
    o.background = (size_t)background;
    o.samples = (size_t)samples;
    o.ig_steps = (size_t)steps;
    o.seed = (uint64_t)seed;
    o.threads = (int)threads;
    bool want_bg = resolved == LP_EXPLAIN_METHOD_KERNELSHAP || !strcmp(baseline, "mean");
    const lp_frame *bgf = want_bg ? (bg ? bg : f) : NULL;
    if (global && !strcmp(importance, "permutation")) {
        st = lp_permutation_importance(m, f, (size_t)repeats, !design, (uint64_t)seed,
                                       (int)threads, &imp, &err);
        if (!st) {
            char title[128];
            snprintf(title, sizeof title, "permutation importance (%s drop, %ld repeats)",
                     imp.metric, repeats);
            st = global_out(title, "permutation", imp.metric, imp.names, imp.importance, imp.p,
                            (size_t)top, json, svg, &err);
        }
        goto done;
    }
    st = lp_explain_rows(m, f, bgf, &o, &e, &err);
    if (st)
        goto done;
    if (global) {
        double *mean = calloc(e.p + 1, sizeof(double));
        if (!mean) {
            st = lp_err_set(&err, LP_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < e.n; i++)
            for (size_t j = 0; j < e.p; j++)
                mean[j] += fabs(e.phi[i * e.p + j]) / (double)e.n;
        char title[128];
        snprintf(title, sizeof title, "mean |contribution| over %zu rows (%s)", e.n,
                 lp_explain_method_name(e.method));
        st = global_out(title, lp_explain_method_name(e.method), NULL, e.names, mean, e.p,
                        (size_t)top, json, svg, &err);
        free(mean);
    } else if (json) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; i < e.n && arr; i++) {
            cJSON *o1 = explain_row_json(m, &e, i, (size_t)top);
            if (!o1) {
                st = lp_err_set(&err, LP_ENOMEM, "out of memory");
                break;
            }
            cJSON_AddNumberToObject(o1, "row", (double)i);
            cJSON_AddItemToArray(arr, o1);
        }
        char *s = st ? NULL : cJSON_PrintUnformatted(arr);
        if (s)
            printf("%s\n", s);
        free(s);
        cJSON_Delete(arr);
    } else {
        print_rows(m, &e, top ? (size_t)top : 10);
    }
done:
    if (st)
        rc = cli_fail("explain", &err);
    lp_explanation_clear(&e);
    lp_importance_clear(&imp);
    lp_frame_free(f);
    lp_frame_free(bg);
    lp_model_free(m);
    return rc;
}
