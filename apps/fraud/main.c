/*
 * main.c - the lepton-fraud command: train, eval, backtest, retrain, serve. Argument parsing
 * and file handling only; the logic lives in the fraud_*.c files (fraud.h).
 */
#include "fraud.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *usage =
    "usage: lepton-fraud <command> [options]\n"
    "  train    --data TRAIN --label COL [--time-col C] [--entity-cols A,B] [--amount-col C]\n"
    "           [--id-col C] [--drop-cols A,B] [--valid-days N] [--review-rate 1%]\n"
    "           [--positive-label VALUE] [--time-unit s|ms|h|d]\n"
    "           [--decline-rate 0.1%] [--target-fpr F] [--label-delay-days 7]\n"
    "           [--model-kind gbdt|logistic|auto] [--param k=v]... [--max-genuine N]\n"
    "           [--threads N] --out MODEL.lpm\n"
    "           (the other numeric columns are features as they are, text columns of at most\n"
    "           32 values as the index of the value; the rest are left out, with a note;\n"
    "           a file without a header line has columns c1, c2, ...: --label c31;\n"
    "           without --amount-col, a column called amount, or else amt, tx_amount or\n"
    "           TransactionAmt, any case, is the amount; without --time-col, the one\n"
    "           date-time column, or the one of several named like time or date;\n"
    "           --model-kind auto trains both kinds and keeps the better validation AUPRC)\n"
    "  eval     --model MODEL.lpm --data TEST [--history TRAIN] --json\n"
    "  backtest --model MODEL.lpm --rules RULES.json --data HISTORY\n"
    "  retrain  --model MODEL.lpm --data TRAIN --out NEW.lpm   (same columns and settings)\n"
    "  serve    --model MODEL.lpm [--port 8082] [--db fraud.db] [--host 127.0.0.1]\n"
    "           [--rules RULES.json] [--history LABELLED] [--threads N]\n"
    "           (--history: labelled transactions, e.g. the training file: the customer and\n"
    "           terminal state starts from them, on every start, and POST /v1/rules/backtest\n"
    "           replays them)\n";

typedef struct args {
    const char *v[32][2];
    size_t n;
    const char *params[64];
    size_t n_params;
    bool json;
} args;

static int parse_args(int argc, char **argv, args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) {
            a->json = true;
            continue;
        }
        if (strncmp(argv[i], "--", 2) || i + 1 >= argc) {
            fprintf(stderr, "lepton-fraud: unexpected argument '%s' (options take a value)\n%s",
                    argv[i], usage);
            return 2;
        }
        if (!strcmp(argv[i], "--param")) {
            if (a->n_params < 64)
                a->params[a->n_params++] = argv[i + 1];
        } else if (a->n < 32) {
            a->v[a->n][0] = argv[i] + 2;
            a->v[a->n][1] = argv[i + 1];
            a->n++;
        }
        i++;
    }
    return 0;
}

static const char *get(const args *a, const char *k)
{
    for (size_t i = a->n; i-- > 0;)
        if (!strcmp(a->v[i][0], k))
            return a->v[i][1];
    return NULL;
}

static int check_known(const args *a, const char *const *known)
{
    for (size_t i = 0; i < a->n; i++) {
        size_t k = 0;
        while (known[k] && strcmp(known[k], a->v[i][0]))
            k++;
        if (!known[k]) {
            fprintf(stderr, "lepton-fraud: unknown option --%s for this command\n%s",
                    a->v[i][0], usage);
            return 2;
        }
    }
    return 0;
}

/* "1%" -> 0.01, "0.01" -> 0.01 */
static bool parse_rate(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s)
        return false;
    if (*end == '%') {
        v /= 100;
        end++;
    }
    if (*end || !(v > 0 && v <= 1))
        return false;
    *out = v;
    return true;
}

/* Split "a,b,c" in place into up to max pointers. */
static size_t split_list(char *s, const char **out, size_t max)
{
    size_t n = 0;
    for (char *tok = strtok(s, ","); tok && n < max; tok = strtok(NULL, ","))
        if (*tok)
            out[n++] = tok;
    return n;
}

static int fail(const char *what, const lp_err *err)
{
    fprintf(stderr, "lepton-fraud %s: %s\n", what, lp_err_text(err));
    return 1;
}

static int cmd_train(const args *a, const fraud_config *from, const char *from_model,
                     lp_model_kind from_kind)
{
    static const char *const known[] = {"data", "label", "time-col", "entity-cols",
                                        "amount-col", "id-col", "drop-cols", "valid-days",
                                        "review-rate", "decline-rate", "target-fpr",
                                        "label-delay-days", "model-kind", "max-genuine",
                                        "threads", "out", "model", "positive-label",
                                        "time-unit", NULL};
    if (check_known(a, known))
        return 2;
    const char *data = get(a, "data"), *outp = get(a, "out");
    fraud_train_opts o = fraud_train_opts_default();
    o.label = from ? from->label : get(a, "label");
    if (!data || !outp || !o.label) {
        fprintf(stderr, "lepton-fraud train: --data, --label and --out are required\n%s", usage);
        return 2;
    }
    char ents[512] = "", drops[2048] = "";
    const char *ent_v[FRAUD_MAX_ENTITIES + 1], *drop_v[256];
    if (from) {
        o.time_col = from->time_col[0] ? from->time_col : NULL;
        o.amount_col = from->amount_col[0] ? from->amount_col : NULL;
        o.id_col = from->id_col[0] ? from->id_col : NULL;
        for (size_t e = 0; e < from->feat.n_entities; e++)
            ent_v[o.n_entity++] = from->feat.entity[e];
        o.label_delay_s = from->feat.label_delay_s;
        o.positive_label = from->positive_label[0] ? from->positive_label : NULL;
        o.time_unit_s = from->feat.time_unit_s;
    } else {
        o.time_col = get(a, "time-col");
        o.amount_col = get(a, "amount-col");
        o.id_col = get(a, "id-col");
        if (get(a, "entity-cols")) {
            snprintf(ents, sizeof ents, "%s", get(a, "entity-cols"));
            o.n_entity = split_list(ents, ent_v, FRAUD_MAX_ENTITIES + 1);
        }
    }
    o.entity_cols = ent_v;
    if (get(a, "drop-cols")) {
        snprintf(drops, sizeof drops, "%s", get(a, "drop-cols"));
        o.n_drop = split_list(drops, drop_v, 256);
    }
    o.drop = drop_v;
    const char *s;
    if ((s = get(a, "valid-days")) && !((o.valid_days = atof(s)) > 0)) {
        fprintf(stderr, "lepton-fraud train: --valid-days '%s': expected a positive number\n", s);
        return 2;
    }
    if ((s = get(a, "review-rate")) && !parse_rate(s, &o.review_rate)) {
        fprintf(stderr, "lepton-fraud train: --review-rate '%s': expected a share like 1%% or "
                "0.01\n", s);
        return 2;
    }
    if ((s = get(a, "decline-rate")) && !parse_rate(s, &o.decline_rate)) {
        fprintf(stderr, "lepton-fraud train: --decline-rate '%s': expected a share like 0.1%%\n",
                s);
        return 2;
    }
    if ((s = get(a, "target-fpr")) && !parse_rate(s, &o.target_fpr)) {
        fprintf(stderr, "lepton-fraud train: --target-fpr '%s': expected a share like 1%%\n", s);
        return 2;
    }
    if ((s = get(a, "label-delay-days")) && !((o.label_delay_s = atof(s) * 86400) >= 0)) {
        fprintf(stderr, "lepton-fraud train: --label-delay-days '%s': expected >= 0\n", s);
        return 2;
    }
    if ((s = get(a, "positive-label")))
        o.positive_label = s;
    if ((s = get(a, "time-unit"))) {
        static const char *const units[] = {"s", "ms", "h", "d"};
        static const double secs[] = {1, 1e-3, 3600, 86400};
        o.time_unit_s = 0;
        for (size_t i = 0; i < 4; i++)
            if (!strcmp(s, units[i]))
                o.time_unit_s = secs[i];
        if (!o.time_unit_s) {
            fprintf(stderr, "lepton-fraud train: --time-unit '%s': expected s, ms, h or d (the "
                    "unit of a numeric time column)\n", s);
            return 2;
        }
    }
    if ((s = get(a, "max-genuine")))
        o.max_genuine = (size_t)strtoull(s, NULL, 10);
    if ((s = get(a, "threads")))
        o.threads = atoi(s);
    lp_err err;
    lp_err_clear(&err);
    if (from)
        o.kind = from_kind; /* retrain: the kind the model has, unless --model-kind says */
    bool auto_kind = (s = get(a, "model-kind")) && !strcmp(s, "auto");
    if (s && !auto_kind && lp_model_kind_parse(s, &o.kind, &err))
        return fail("train", &err);
    lp_params *p = lp_params_new();
    for (size_t i = 0; p && i < a->n_params; i++)
        if (lp_params_parse(p, a->params[i], &err)) {
            lp_params_free(p);
            return fail("train", &err);
        }
    o.params = p;
    o.data_name = data;
    lp_frame *f = NULL;
    lp_model *m = NULL;
    fraud_train_report rep;
    rep.notes[0] = 0;
    lp_status st = fraud_read_transactions(data, o.label, o.time_col, &f, &err);
    if (!st)
        st = fraud_train(f, &o, &rep, &m, &err);
    if (!st && auto_kind) { /* the logistic model too; the better validation AUPRC is kept */
        fraud_train_opts ol = o;
        ol.kind = LP_MODEL_KIND_LOGISTIC;
        ol.params = NULL; /* --param is the gbdt's */
        fraud_train_report rl;
        lp_model *ml = NULL;
        st = fraud_train(f, &ol, &rl, &ml, &err);
        bool take = !st && rl.valid_auprc > rep.valid_auprc;
        fprintf(stderr, "lepton-fraud train: --model-kind auto: validation AUPRC gbdt %.4f, "
                "logistic %.4f: keeping the %s\n", rep.valid_auprc, rl.valid_auprc,
                take ? "logistic" : "gbdt");
        if (take) {
            lp_model_free(m);
            m = ml, rep = rl;
        } else {
            lp_model_free(ml);
        }
    }
    for (char *line = rep.notes, *nl; *line; line = nl + 1) {
        if (!(nl = strchr(line, '\n')))
            break;
        fprintf(stderr, "lepton-fraud %s: %.*s\n", from ? "retrain" : "train", (int)(nl - line),
                line);
    }
    if (!st)
        st = lp_model_save(m, outp, &err);
    lp_params_free(p);
    lp_frame_free(f);
    if (!st)
        fprintf(stderr, "lepton-fraud %s: wrote %s%s%s\n", from ? "retrain" : "train", outp,
                from ? " from the settings of " : "", from ? from_model : "");
    lp_model_free(m);
    return st ? fail(from ? "retrain" : "train", &err) : 0;
}

static lp_status load_scorer(const char *path, fraud_scorer **sc, lp_err *err)
{
    lp_model *m = NULL;
    lp_status st = lp_model_load(path, &m, err);
    if (st)
        return st;
    st = fraud_scorer_new(m, sc, err);
    if (st)
        lp_model_free(m);
    return st;
}

static int cmd_eval(const args *a)
{
    static const char *const known[] = {"model", "data", "history", NULL};
    if (check_known(a, known))
        return 2;
    const char *mp = get(a, "model"), *data = get(a, "data"), *hist = get(a, "history");
    if (!mp || !data) {
        fprintf(stderr, "lepton-fraud eval: --model and --data are required\n%s", usage);
        return 2;
    }
    lp_err err;
    fraud_scorer *sc = NULL;
    lp_frame *h = NULL, *t = NULL;
    fraud_eval ev;
    lp_status st = load_scorer(mp, &sc, &err);
    const fraud_config *cf = st ? NULL : fraud_scorer_config(sc);
    if (!st && hist)
        st = fraud_read_transactions(hist, cf->label, cf->time_col, &h, &err);
    if (!st)
        st = fraud_read_transactions(data, cf->label, cf->time_col, &t, &err);
    if (!st)
        st = fraud_evaluate(sc, h, t, &ev, &err);
    lp_frame_free(h);
    lp_frame_free(t);
    fraud_scorer_free(sc);
    if (st)
        return fail("eval", &err);
    char *js = fraud_eval_to_json(&ev);
    if (a->json)
        printf("%s\n", js ? js : "{}");
    else
        printf("n=%zu skipped=%zu auprc=%.4f auroc=%.4f recall@1%%fpr=%.4f "
               "precision@1%%alerts=%.4f\n", ev.n, ev.skipped, ev.auprc, ev.auroc,
               ev.recall_at_1pct_fpr, ev.precision_at_1pct_alerts);
    free(js);
    return 0;
}

static int cmd_backtest(const args *a)
{
    static const char *const known[] = {"model", "data", "rules", NULL};
    if (check_known(a, known))
        return 2;
    const char *mp = get(a, "model"), *data = get(a, "data"), *rules = get(a, "rules");
    if (!mp || !data || !rules) {
        fprintf(stderr, "lepton-fraud backtest: --model, --rules and --data are required\n%s",
                usage);
        return 2;
    }
    lp_err err;
    fraud_scorer *sc = NULL;
    lp_frame *f = NULL;
    fraud_ruleset *rs = NULL;
    uint8_t *txt = NULL;
    size_t len = 0;
    char *js = NULL;
    lp_status st = load_scorer(mp, &sc, &err);
    if (!st)
        st = lp_file_read(rules, &txt, &len, &err);
    if (!st) {
        cJSON *j = NULL;
        st = lp_json_parse_body((const char *)txt, len, 64, rules, &j, &err);
        if (!st) {
            size_t d;
            const char *const *names = fraud_scorer_names(sc, &d);
            st = fraud_ruleset_parse(j, names, d, &rs, &err);
            if (st)
                lp_err_prefix(&err, "%s", rules);
        }
        cJSON_Delete(j);
    }
    if (!st) {
        const fraud_config *cf = fraud_scorer_config(sc);
        st = fraud_read_transactions(data, cf->label, cf->time_col, &f, &err);
    }
    if (!st)
        st = fraud_backtest(sc, rs, f, &js, &err);
    if (!st)
        printf("%s\n", js);
    free(js);
    free(txt);
    fraud_ruleset_free(rs);
    lp_frame_free(f);
    fraud_scorer_free(sc);
    return st ? fail("backtest", &err) : 0;
}

static int cmd_retrain(const args *a)
{
    const char *mp = get(a, "model");
    if (!mp) {
        fprintf(stderr, "lepton-fraud retrain: --model is required\n%s", usage);
        return 2;
    }
    lp_err err;
    fraud_scorer *sc = NULL;
    if (load_scorer(mp, &sc, &err))
        return fail("retrain", &err);
    fraud_config cfg = *fraud_scorer_config(sc);
    cfg.n_scale = 0; /* the scales are refitted; the copy must not point into freed memory */
    cfg.center = cfg.scale = NULL;
    lp_model_kind kind = lp_model_get_kind(fraud_scorer_model(sc));
    fraud_scorer_free(sc);
    return cmd_train(a, &cfg, mp, kind);
}

int fraud_main_serve(const char *model, const char *host, unsigned port, const char *db,
                     const char *rules, const char *history, unsigned threads);

static int cmd_serve(const args *a)
{
    static const char *const known[] = {"model", "port",    "db",      "host",
                                        "rules", "history", "threads", NULL};
    if (check_known(a, known))
        return 2;
    const char *mp = get(a, "model");
    if (!mp) {
        fprintf(stderr, "lepton-fraud serve: --model is required\n%s", usage);
        return 2;
    }
    const char *ps = get(a, "port");
    char *end = NULL;
    long port = ps ? strtol(ps, &end, 10) : 8082;
    if ((ps && *end) || port < 0 || port > 65535) {
        fprintf(stderr, "lepton-fraud serve: --port '%s': expected 0..65535\n", ps);
        return 2;
    }
    const char *th = get(a, "threads");
    return fraud_main_serve(mp, get(a, "host") ? get(a, "host") : "127.0.0.1", (unsigned)port,
                            get(a, "db") ? get(a, "db") : "fraud.db", get(a, "rules"),
                            get(a, "history"), th ? (unsigned)atoi(th) : 4);
}

int main(int argc, char **argv)
{
    lp_process_tune(argv); /* before any OpenMP: see base.h */
    if (argc < 2 || lp_cli_help_requested(argc, argv)) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    args a;
    int rc = parse_args(argc, argv, &a);
    if (rc)
        return rc;
    if (!strcmp(argv[1], "train"))
        return cmd_train(&a, NULL, NULL, LP_MODEL_KIND_GBDT);
    if (!strcmp(argv[1], "eval"))
        return cmd_eval(&a);
    if (!strcmp(argv[1], "backtest"))
        return cmd_backtest(&a);
    if (!strcmp(argv[1], "retrain"))
        return cmd_retrain(&a);
    if (!strcmp(argv[1], "serve"))
        return cmd_serve(&a);
    fprintf(stderr, "lepton-fraud: unknown command '%s'\n%s", argv[1], usage);
    return 2;
}
