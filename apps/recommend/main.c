/*
 * main.c - the lepton-recommend command: train, eval, tune and serve. Parses flags, calls the
 * domain logic in rec_*.c and libcore, prints results. Exit status: 0 success, 1 failure (one
 * line on stderr naming the input), 2 usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rec.h"

static const char *const USAGE =
    "usage: lepton-recommend <command> [flags]\n"
    "  train --data TRAIN [--user-col user_id] [--item-col item_id] [--weight-col COL]\n"
    "        [--type-col|--event-col COL] [--event-weights view=1,cart=3,purchase=5]\n"
    "        [--time-col COL] [--half-life-days D] [--weight-transform auto|none|log1p]\n"
    "        [--model auto|als|bpr|itemknn|popular] [--factors 64] [--iterations 15 (bpr: 100)]\n"
    "        [--regularization R] [--alpha A] [--solver cholesky|cg] [--learning-rate L]\n"
    "        [--neighbors N] [--shrinkage S] [--threads T] [--seed S]\n"
    "        [--device cpu|cuda|auto] [--deterministic] --out MODEL.lpm\n"
    "        The column, event and decay flags are stored in the model: eval and serve read\n"
    "        files and events the same way unless given again (a weight, type or time column\n"
    "        of 'none' turns it off). --weight-transform log1p scores log(1 + weight) of each\n"
    "        user-item pair's summed weight, for heavy-tailed counts (plays); auto (the\n"
    "        default) picks log1p when the 99th percentile of those weights is above 20x\n"
    "        their median, else none, and the model keeps what it picked.\n"
    "        Time columns above 1e11 are read as epoch milliseconds.\n"
    "        --model auto (the default; als with --device cuda|auto) fits als, bpr and\n"
    "        itemknn on all but each user's last 2 interactions (by --time-col; without\n"
    "        one, 2 drawn at random), keeps the best NDCG@10 on those and refits it on\n"
    "        everything.\n"
    "  eval  --model MODEL.lpm --train TRAIN --test TEST [--k 10] [--min-weight W] [--json]\n"
    "        (plus the column flags of train, which override the model's)\n"
    "  tune  --data TRAIN --out MODEL.lpm [--model auto] [--trials 12] [--time-budget S]\n"
    "        [--k 10] [--holdout 2] (plus the column and model flags of train; auto, the\n"
    "        default, tunes als, bpr and itemknn, --trials each, and keeps the best)\n"
    "  serve --model MODEL.lpm [--port 8083] [--db recommend.db] [--host 127.0.0.1]\n"
    "        [--threads N] [--api-keys FILE] [--user-cache-mb 128] [--retrain-every S]\n"
    "        [--items CATALOG]\n"
    "        --retrain-every S: retrain from the stored events every S seconds when new\n"
    "        ones arrived (as POST /v1/admin/retrain does; default: on demand only).\n"
    "        --items CATALOG: a CSV of the catalog (the item column, category, in_stock)\n"
    "        upserted at start as POST /v1/items would, for ?category= filters and new items.\n";

typedef struct flags {
    int argc;
    char **argv;
    bool *used;
} flags;

/* The value of --name, or NULL; a flag given without a value is a usage error. */
static const char *flag(flags *f, const char *name, bool *bad)
{
    for (int i = 2; i < f->argc; i++)
        if (strcmp(f->argv[i], name) == 0) {
            f->used[i] = true;
            if (i + 1 >= f->argc) {
                fprintf(stderr, "lepton-recommend: %s needs a value\n", name);
                *bad = true;
                return NULL;
            }
            f->used[i + 1] = true;
            return f->argv[i + 1];
        }
    return NULL;
}

static bool has(flags *f, const char *name)
{
    for (int i = 2; i < f->argc; i++)
        if (strcmp(f->argv[i], name) == 0) return f->used[i] = true;
    return false;
}

static bool num(const char *v, const char *name, double lo, double hi, double *out, bool *bad)
{
    if (!v) return false;
    if (!lp_parse_double(v, strlen(v), out) || !(*out >= lo && *out <= hi)) { /* NaN too */
        fprintf(stderr, "lepton-recommend: %s '%s' is not a number in [%g, %g]\n", name, v, lo, hi);
        *bad = true;
        return false;
    }
    return true;
}

static bool unknown_flags(flags *f)
{
    for (int i = 2; i < f->argc; i++)
        if (!f->used[i]) {
            /* flag() takes the first of a flag given twice: the second is left unused */
            for (int j = 2; j < i; j++)
                if (f->used[j] && f->argv[i][0] == '-' && strcmp(f->argv[j], f->argv[i]) == 0) {
                    fprintf(stderr, "lepton-recommend: %s is given twice\n", f->argv[i]);
                    return true;
                }
            fprintf(stderr, "lepton-recommend: unknown argument '%s'\n%s", f->argv[i], USAGE);
            return true;
        }
    return false;
}

/* The reading flags as given (rec_cols_flags: NULL / -1 = not given). */
static void read_cols(flags *f, rec_cols_flags *c, bool *bad)
{
    *c = (rec_cols_flags){.half_life_days = -1};
    c->user_col = flag(f, "--user-col", bad);
    c->item_col = flag(f, "--item-col", bad);
    c->weight_col = flag(f, "--weight-col", bad);
    c->type_col = flag(f, "--type-col", bad);
    const char *ev = flag(f, "--event-col", bad);
    if (ev && c->type_col && strcmp(ev, c->type_col)) {
        fprintf(stderr, "lepton-recommend: --event-col and --type-col name the same column; "
                "give one\n");
        *bad = true;
    }
    if (ev) c->type_col = ev;
    c->time_col = flag(f, "--time-col", bad);
    c->event_weights = flag(f, "--event-weights", bad);
    num(flag(f, "--half-life-days", bad), "--half-life-days", 0, 1e6, &c->half_life_days, bad);
}

/* The columns to read with: the flags over base. */
static bool cols_from(const rec_cols *base, const rec_cols_flags *fl, rec_cols *c)
{
    lp_err err;
    if (!rec_cols_apply(base, fl, c, &err)) return true;
    fprintf(stderr, "lepton-recommend: %s\n", err.msg);
    return false;
}

/* The model flags over lp_mf_opts_default. *kind_auto (may be NULL: "auto" refused): 1 for
 * --model auto, 2 for no --model (auto too, unless a GPU is asked for), else 0; o is then
 * ALS's, and read_model_opts_kind gives the other candidates. */
static void read_model_opts_kind(flags *f, lp_mf_opts *o, lp_mf_kind kind, bool *bad);

/* The families --model auto compares, in the order its messages name them. */
static const lp_mf_kind AUTO_KINDS[3] = {LP_MF_KIND_ALS, LP_MF_KIND_BPR, LP_MF_KIND_ITEMKNN};

static void read_model_opts(flags *f, lp_mf_opts *o, int *kind_auto, bool *bad)
{
    const char *v = flag(f, "--model", bad);
    lp_mf_kind kind = LP_MF_KIND_ALS;
    lp_err err;
    if (kind_auto) *kind_auto = !v ? 2 : !strcmp(v, "auto");
    if (v && !(kind_auto && *kind_auto) && lp_mf_kind_parse(v, &kind, &err)) {
        fprintf(stderr, "lepton-recommend: --model: %s%s\n", err.msg,
                kind_auto ? " (or auto)" : "");
        *bad = true;
    }
    read_model_opts_kind(f, o, kind, bad);
}

static void read_model_opts_kind(flags *f, lp_mf_opts *o, lp_mf_kind kind, bool *bad)
{
    const char *v;
    double d;
    lp_err err;
    *o = lp_mf_opts_default();
    o->kind = kind;
    /* BPR's own defaults (the implicit library's): regularization 0.01 and 100 epochs; 15
     * epochs of SGD left it under-trained (bench/RESULTS.md "recommend: `--model auto`") */
    if (o->kind == LP_MF_KIND_BPR) o->regularization = 0.01f, o->iterations = 100;
    if (num(flag(f, "--factors", bad), "--factors", 1, 1024, &d, bad)) o->factors = (size_t)d;
    if (num(flag(f, "--iterations", bad), "--iterations", 1, 10000, &d, bad))
        o->iterations = (size_t)d;
    if (num(flag(f, "--regularization", bad), "--regularization", 0, 1e6, &d, bad))
        o->regularization = (float)d;
    if (num(flag(f, "--alpha", bad), "--alpha", 0, 1e6, &d, bad)) o->alpha = (float)d;
    if (num(flag(f, "--learning-rate", bad), "--learning-rate", 1e-9, 10, &d, bad))
        o->learning_rate = (float)d;
    if (num(flag(f, "--neighbors", bad), "--neighbors", 1, 100000, &d, bad))
        o->neighbors = (size_t)d;
    if (num(flag(f, "--shrinkage", bad), "--shrinkage", 0, 1e6, &d, bad)) o->shrinkage = (float)d;
    if ((v = flag(f, "--weight-transform", bad)) &&
        lp_mf_weight_parse(v, &o->weight_transform, &err)) {
        fprintf(stderr, "lepton-recommend: --weight-transform: %s\n", err.msg);
        *bad = true;
    }
    if (num(flag(f, "--threads", bad), "--threads", 0, 1024, &d, bad)) o->threads = (int)d;
    if (num(flag(f, "--seed", bad), "--seed", 0, 9e15, &d, bad)) o->seed = (uint64_t)d;
    if ((v = flag(f, "--device", bad))) {
        if (strcmp(v, "cpu") && strcmp(v, "cuda") && strcmp(v, "auto")) {
            fprintf(stderr, "lepton-recommend: --device '%s' is not cpu, cuda or auto\n", v);
            *bad = true;
        } else {
            o->device = v;
        }
    }
    if (has(f, "--deterministic")) o->deterministic = true;
    if ((v = flag(f, "--solver", bad))) {
        if (strcmp(v, "cg") == 0) o->solver = LP_MF_SOLVER_CG;
        else if (strcmp(v, "cholesky") == 0) o->solver = LP_MF_SOLVER_CHOLESKY;
        else {
            fprintf(stderr, "lepton-recommend: --solver '%s' is not cholesky or cg\n", v);
            *bad = true;
        }
    }
}

static int fail(const lp_err *err)
{
    fprintf(stderr, "lepton-recommend: %s\n", lp_err_text(err));
    return 1;
}

static int cmd_train(flags *f)
{
    bool bad = false;
    rec_cols c, base = rec_cols_default();
    rec_cols_flags cf;
    lp_mf_opts o;
    int kind_auto = 0;
    const char *data = flag(f, "--data", &bad), *out = flag(f, "--out", &bad);
    read_cols(f, &cf, &bad);
    read_model_opts(f, &o, &kind_auto, &bad);
    if (kind_auto == 2 && o.device && strcmp(o.device, "cpu"))
        kind_auto = 0; /* --device cuda|auto without --model: ALS, which trains there */
    if (bad || unknown_flags(f)) return 2;
    if (!cols_from(&base, &cf, &c)) return 2;
    if (!data || !out) {
        fprintf(stderr, "lepton-recommend train: --data and --out are required\n%s", USAGE);
        return 2;
    }
    lp_err err;
    if (o.device && strcmp(o.device, "cpu")) { /* ALS / BPR only; say what auto picks */
        const lp_backend *be = NULL;
        if (kind_auto || (o.kind != LP_MF_KIND_ALS && o.kind != LP_MF_KIND_BPR)) {
            fprintf(stderr, "lepton-recommend train: --device %s: only als and bpr train on a "
                    "GPU; %s trains on the cpu\n", o.device,
                    kind_auto ? "auto" : lp_mf_kind_name(o.kind));
            return 2;
        }
        if (lp_backend_get(o.device, &be, &err)) return fail(&err);
        if (strcmp(o.device, "auto") == 0)
            fprintf(stderr, "lepton-recommend train: --device auto: training on %s\n", be->name);
    }
    lp_mf_data *d;
    lp_frame *frame = NULL;
    if (rec_read(data, &c, &d, kind_auto ? &frame : NULL, &err)) return fail(&err);
    lp_mf *m;
    uint64_t t0 = lp_time_ns();
    lp_status st = LP_OK;
    if (kind_auto) {
        /* ALS, BPR and item-kNN, each with its defaults and the flags given, scored on every
         * user's last interactions; the best refit on everything */
        lp_mf_opts cand[3];
        for (size_t i = 0; i < 3; i++) read_model_opts_kind(f, &cand[i], AUTO_KINDS[i], &bad);
        double ndcg[3];
        size_t best = 0;
        st = rec_choose(frame, &c, cand, 3, 2, 10, &best, ndcg, &err);
        if (st == LP_EINVAL && strstr(err.msg, "hold out")) {
            lp_log_warn("%s; training als", err.msg);
            st = LP_OK, best = 0;
        } else if (!st) {
            fprintf(stderr, "lepton-recommend train: --model auto: validation NDCG@10 als "
                    "%.4f, bpr %.4f, itemknn %.4f: %s\n", ndcg[0], ndcg[1], ndcg[2],
                    lp_mf_kind_name(AUTO_KINDS[best]));
        }
        o = cand[best];
    }
    lp_frame_free(frame);
    if (!st) st = lp_mf_fit(d, &o, &m, &err);
    double secs = lp_time_since(t0), time_ref = lp_mf_data_time_ref(d);
    lp_mf_data_free(d);
    if (st) return fail(&err);
    st = rec_cols_store(m, &c, time_ref, &err);
    if (!st) st = lp_mf_save(m, out, &err);
    if (!st)
        printf("trained %s on %zu users x %zu items in %.2f s -> %s\n", lp_mf_kind_name(o.kind),
               lp_mf_n_users(m), lp_mf_n_items(m), secs, out);
    lp_mf_free(m);
    return st ? fail(&err) : 0;
}

static int cmd_eval(flags *f)
{
    bool bad = false;
    rec_cols c, base;
    rec_cols_flags cf;
    const char *model = flag(f, "--model", &bad), *train = flag(f, "--train", &bad),
               *test = flag(f, "--test", &bad);
    double k = 10, minw = 0;
    num(flag(f, "--k", &bad), "--k", 1, 10000, &k, &bad);
    num(flag(f, "--min-weight", &bad), "--min-weight", -1e30, 1e30, &minw, &bad);
    bool json = has(f, "--json");
    read_cols(f, &cf, &bad);
    if (bad || unknown_flags(f)) return 2;
    if (!model || !train || !test) {
        fprintf(stderr, "lepton-recommend eval: --model, --train and --test are required\n%s",
                USAGE);
        return 2;
    }
    lp_err err;
    lp_mf *m;
    lp_mf_data *tr = NULL, *te = NULL;
    if (lp_mf_load(model, &m, &err)) return fail(&err);
    base = rec_cols_of_model(m); /* read the files as train did, unless a flag says otherwise */
    if (!cols_from(&base, &cf, &c)) {
        lp_mf_free(m);
        return 2;
    }
    lp_status st = rec_read(train, &c, &tr, NULL, &err);
    if (!st) st = rec_read(test, &c, &te, NULL, &err);
    lp_mf_eval e;
    if (!st) st = lp_mf_evaluate(m, tr, te, (size_t)k, (float)minw, &e, &err);
    lp_mf_free(m);
    lp_mf_data_free(tr), lp_mf_data_free(te);
    if (st) return fail(&err);
    if (json) {
        char *s = rec_eval_json(&e, (size_t)k);
        if (!s) return 1;
        printf("%s\n", s);
        free(s);
    } else {
        printf("users %zu\nprecision@%g %.4f\nrecall@%g %.4f\nndcg@%g %.4f\nmap@%g %.4f\n"
               "coverage %.4f\nnovelty %.3f\n", e.users, k, e.precision, k, e.recall, k, e.ndcg,
               k, e.map, e.coverage, e.novelty);
    }
    return 0;
}

static int cmd_tune(flags *f)
{
    bool bad = false;
    rec_cols c, base = rec_cols_default();
    rec_cols_flags cf;
    lp_mf_opts o;
    rec_tune_opts t = rec_tune_opts_default();
    const char *data = flag(f, "--data", &bad), *out = flag(f, "--out", &bad);
    double d;
    if (num(flag(f, "--trials", &bad), "--trials", 1, 10000, &d, &bad)) t.trials = (size_t)d;
    if (num(flag(f, "--time-budget", &bad), "--time-budget", 0, 1e7, &d, &bad)) t.time_budget_s = d;
    if (num(flag(f, "--k", &bad), "--k", 1, 10000, &d, &bad)) t.k = (size_t)d;
    if (num(flag(f, "--holdout", &bad), "--holdout", 1, 1000, &d, &bad)) t.holdout = (size_t)d;
    read_cols(f, &cf, &bad);
    int kind_auto = 0;
    read_model_opts(f, &o, &kind_auto, &bad);
    if (bad || unknown_flags(f)) return 2;
    if (!cols_from(&base, &cf, &c)) return 2;
    if (!data || !out) {
        fprintf(stderr, "lepton-recommend tune: --data and --out are required\n%s", USAGE);
        return 2;
    }
    lp_err err;
    lp_mf_data *all;
    lp_frame *fr;
    if (rec_read(data, &c, &all, &fr, &err)) return fail(&err);
    lp_mf_opts best;
    double ndcg = 0;
    lp_status st;
    if (kind_auto) {
        /* each family tuned on the same split (--trials each, a third of --time-budget each);
         * the best validation NDCG wins */
        double got[3];
        rec_tune_opts tk = t;
        tk.time_budget_s = t.time_budget_s / 3;
        st = LP_OK;
        for (size_t i = 0; i < 3 && !st; i++) {
            lp_mf_opts base_k, best_k;
            read_model_opts_kind(f, &base_k, AUTO_KINDS[i], &bad);
            st = rec_tune(fr, &c, &base_k, &tk, &best_k, &got[i], &err);
            if (!st && (i == 0 || got[i] > ndcg)) best = best_k, ndcg = got[i];
        }
        if (!st)
            fprintf(stderr, "lepton-recommend tune: validation NDCG@%zu after tuning: als "
                    "%.4f, bpr %.4f, itemknn %.4f: %s\n", t.k, got[0], got[1], got[2],
                    lp_mf_kind_name(best.kind));
    } else {
        st = rec_tune(fr, &c, &o, &t, &best, &ndcg, &err);
    }
    lp_frame_free(fr);
    lp_mf *m = NULL;
    if (!st) st = lp_mf_fit(all, &best, &m, &err);
    double time_ref = lp_mf_data_time_ref(all);
    lp_mf_data_free(all);
    if (!st) st = rec_cols_store(m, &c, time_ref, &err);
    if (!st) st = lp_mf_save(m, out, &err);
    lp_mf_free(m);
    if (st) return fail(&err);
    printf("{\"model\":\"%s\",\"validation_ndcg_at_k\":%.6f,\"factors\":%zu,\"iterations\":%zu,"
           "\"regularization\":%.6g,\"alpha\":%.6g,\"learning_rate\":%.6g,\"neighbors\":%zu,"
           "\"shrinkage\":%.6g,\"out\":\"%s\"}\n", lp_mf_kind_name(best.kind), ndcg, best.factors,
           best.iterations, best.regularization, best.alpha, best.learning_rate, best.neighbors,
           best.shrinkage, out);
    return 0;
}

static int cmd_serve(flags *f)
{
    bool bad = false;
    rec_service_opts o = rec_service_opts_default();
    const char *v, *keys_path;
    double d;
    o.model_path = flag(f, "--model", &bad);
    if ((v = flag(f, "--db", &bad))) o.db_path = v;
    if ((v = flag(f, "--host", &bad))) o.host = v;
    if (num(flag(f, "--port", &bad), "--port", 0, 65535, &d, &bad)) o.port = (unsigned)d;
    if (num(flag(f, "--threads", &bad), "--threads", 0, 1024, &d, &bad)) o.threads = (unsigned)d;
    if (num(flag(f, "--user-cache-mb", &bad), "--user-cache-mb", 0, 1 << 20, &d, &bad))
        o.user_cache_mb = (size_t)d;
    if (num(flag(f, "--retrain-every", &bad), "--retrain-every", 1, 1e7, &d, &bad))
        o.retrain_every_s = d;
    keys_path = flag(f, "--api-keys", &bad);
    o.items_path = flag(f, "--items", &bad);
    if (bad || unknown_flags(f)) return 2;
    if (!o.model_path) {
        fprintf(stderr, "lepton-recommend serve: --model is required\n%s", USAGE);
        return 2;
    }
    lp_err err;
    char **keys = NULL;
    size_t n_keys = 0;
    if (keys_path && lp_api_keys_load(keys_path, &keys, &n_keys, &err)) return fail(&err);
    o.api_keys = keys;
    o.n_api_keys = n_keys;
    rec_service *s;
    lp_status st = rec_service_new(&o, &s, &err);
    if (!st) st = rec_service_start(s, &err);
    if (!st) {
        lp_log_info("lepton-recommend listening on %s:%u", o.host ? o.host : "127.0.0.1",
                    rec_service_port(s));
        st = lp_server_run_until_signal(rec_service_server(s), &err);
    }
    rec_service_free(s);
    lp_api_keys_free(keys);
    return st ? fail(&err) : 0;
}

int main(int argc, char **argv)
{
    lp_process_tune(argv); /* before any OpenMP: see base.h */
    if (argc < 2 || lp_cli_help_requested(argc, argv)) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    bool *used = calloc((size_t)argc, sizeof *used);
    if (!used) return 1;
    flags f = {argc, argv, used};
    int rc;
    if (strcmp(argv[1], "train") == 0) rc = cmd_train(&f);
    else if (strcmp(argv[1], "eval") == 0) rc = cmd_eval(&f);
    else if (strcmp(argv[1], "tune") == 0) rc = cmd_tune(&f);
    else if (strcmp(argv[1], "serve") == 0) rc = cmd_serve(&f);
    else {
        fprintf(stderr, "lepton-recommend: unknown command '%s'\n%s", argv[1], USAGE);
        rc = 2;
    }
    free(used);
    return rc;
}
