/*
 * main.c - lepton-customer-service: the CLI (train, eval, train-slots, eval-slots, eval-faq,
 * retrain, finetune, topics, chat) and the HTTP service (serve). Domain logic lives in cs_*.c; this file
 * parses flags, prints results and decides exit codes: 0 success, 1 a failure (one line on
 * stderr naming the input), 2 a usage error.
 */
#include <math.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cs.h"
#include "enchead.h"

static const char usage[] =
    "usage: lepton-customer-service <command> [flags]\n"
    "  train --data TRAIN [--valid VALID] [--text-col text] [--label-col label] [--oos-label oos]\n"
    "        [--slots SLOTS_TRAIN] [--faq FAQ] [--bot BOT.json] [--c 1,10,100] [--char-ngrams]\n"
    "        [--oos-max-loss 0.02 (TF-IDF) | 0.01 (--encoder)]\n"
    "        [--encoder ENC.lpm [--finetune head|lora|full [--ft-epochs N] [--ft-steps N]]\n"
    "        [--device auto|cpu|cuda]] [--seed 42] [--refit | --no-refit]\n"
    "        --out MODEL.lpm\n"
    "        (TRAIN, VALID, TEST: TSV or CSV with a header line, ';' or '|' separated too, or\n"
    "        fastText's '__label__INTENT text' lines, read as the columns label and text;\n"
    "        without a column text / label: the one named like utterance, query, sentence /\n"
    "        intent, category, class, else the other column of two, with a warning)\n"
    "  eval --model MODEL.lpm --data TEST [--text-col ..] [--label-col ..] [--oos-label oos] "
    "--json\n"
    "       [--adapter TENANT.lpa] [--only LABEL,LABEL..]\n"
    "  train-slots --data TRAIN --out SLOTS.lpm [--trainer crf|perceptron]\n"
    "  eval-slots --model SLOTS.lpm --data TEST --json\n"
    "  eval-faq --faq FAQ --queries QUERIES [--encoder ENC.lpm] --json\n"
    "  retrain --model MODEL.lpm [--db cs.db] --out NEW.lpm\n"
    "  finetune --model BASE.lpm --data FEW.tsv [--rank 8] [--epochs 40] [--lr 0.01] [--seed 42]\n"
    "        [--text-col text] [--label-col label] --out TENANT.lpa\n"
    "  serve --model MODEL.lpm [--port 8081] [--db cs.db] [--api-keys FILE] [--hash-texts]\n"
    "        [--adapter NAME=TENANT.lpa]...\n"
    "  chat --model MODEL.lpm\n"
    "  topics --data UNLABELED.tsv [--k 20] [--text-col text] [--iters 200] [--seed 42]\n";

typedef struct flag {
    const char *name;
    const char *value; /* NULL when absent; "1" for a boolean flag present */
    bool boolean;
} flag;

/* Parse argv[2..] against flags (NULL-name terminated); unknown or valueless flags are usage
 * errors. */
static bool parse_flags(int argc, char **argv, flag *fl)
{
    for (int i = 2; i < argc; i++) {
        flag *f = fl;
        while (f->name && strcmp(f->name, argv[i]))
            f++;
        if (!f->name) {
            fprintf(stderr, "lepton-customer-service %s: unknown flag '%s'\n%s", argv[1], argv[i],
                    usage);
            return false;
        }
        if (f->boolean) {
            f->value = "1";
        } else if (i + 1 >= argc) {
            fprintf(stderr, "lepton-customer-service %s: flag %s needs a value\n", argv[1],
                    argv[i]);
            return false;
        } else {
            f->value = argv[++i];
        }
    }
    return true;
}

static const char *get(const flag *fl, const char *name)
{
    for (; fl->name; fl++)
        if (!strcmp(fl->name, name))
            return fl->value;
    return NULL;
}

static bool need(const flag *fl, const char *cmd, const char *name)
{
    if (get(fl, name))
        return true;
    fprintf(stderr, "lepton-customer-service %s: %s is required\n%s", cmd, name, usage);
    return false;
}

static int fail(const lp_err *err)
{
    fprintf(stderr, "error: %s\n", lp_err_text(err));
    return 1;
}

static void print_json(cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    if (s)
        puts(s);
    free(s);
    cJSON_Delete(o);
}

static bool int_flag(const flag *fl, const char *name, long def, long max, long *out);

static int cmd_train(int argc, char **argv)
{
    flag fl[] = {{"--data"},
                 {"--valid"},
                 {"--text-col"},
                 {"--label-col"},
                 {"--oos-label"},
                 {"--slots"},
                 {"--faq"},
                 {"--bot"},
                 {"--out"},
                 {"--c"},
                 {"--char-ngrams", NULL, true},
                 {"--oos-max-loss"},
                 {"--encoder"},
                 {"--finetune"},
                 {"--ft-epochs"},
                 {"--ft-steps"},
                 {"--device"},
                 {"--seed"},
                 {"--refit", NULL, true},
                 {"--no-refit", NULL, true},
                 {NULL}};
    if (!parse_flags(argc, argv, fl) || !need(fl, "train", "--data") || !need(fl, "train", "--out"))
        return 2;
    int ftc = eh_finetune_check("lepton-customer-service train", get(fl, "--finetune"),
                                get(fl, "--encoder") != NULL);
    if (ftc >= 0)
        return ftc;
    cs_train_spec sp = cs_train_spec_default();
    sp.data = get(fl, "--data");
    sp.valid = get(fl, "--valid");
    if (get(fl, "--text-col"))
        sp.text_col = get(fl, "--text-col");
    if (get(fl, "--label-col"))
        sp.label_col = get(fl, "--label-col");
    if (get(fl, "--oos-label"))
        sp.oos_label = get(fl, "--oos-label");
    sp.slots = get(fl, "--slots");
    sp.faq = get(fl, "--faq");
    sp.bot = get(fl, "--bot");
    sp.char_ngrams = get(fl, "--char-ngrams") != NULL;
    if (get(fl, "--oos-max-loss")) {
        char *end;
        const char *v = get(fl, "--oos-max-loss");
        sp.oos_max_loss = strtod(v, &end);
        if (end == v || *end || !(sp.oos_max_loss >= 0 && sp.oos_max_loss <= 0.5)) {
            fprintf(stderr, "lepton-customer-service train: --oos-max-loss '%s': expected a "
                    "fraction of in-scope accuracy in [0, 0.5], e.g. 0.01\n", v);
            return 2;
        }
    }
    sp.encoder = get(fl, "--encoder");
    sp.finetune = get(fl, "--finetune");
    long seed;
    if (!int_flag(fl, "--seed", 42, 1L << 30, &seed))
        return 2;
    sp.seed = (uint64_t)seed;
    if (get(fl, "--refit") && get(fl, "--no-refit")) {
        fprintf(stderr, "lepton-customer-service train: --refit and --no-refit together\n");
        return 2;
    }
    sp.refit = get(fl, "--refit") ? 1 : get(fl, "--no-refit") ? 0 : -1;
    if (get(fl, "--device")) { /* the encoder's table while training; without one, no use */
        lp_err derr;
        if (!sp.encoder) {
            fprintf(stderr, "lepton-customer-service train: --device needs --encoder (the "
                            "TF-IDF model trains on the CPU)\n");
            return 2;
        }
        if (eh_device("lepton-customer-service train", get(fl, "--device"), &sp.device,
                      &derr) != LP_OK) {
            fprintf(stderr, "lepton-customer-service train: %s\n", lp_err_text(&derr));
            return 1;
        }
    }
    int ftl = eh_ft_limits("lepton-customer-service train", sp.finetune, get(fl, "--ft-epochs"),
                           get(fl, "--ft-steps"), &sp.ft_epochs, &sp.ft_max_steps);
    if (ftl >= 0)
        return ftl;
    double grid[16];
    if (get(fl, "--c")) {
        const char *p = get(fl, "--c");
        while (*p && sp.n_c < 16) {
            char *end;
            double v = strtod(p, &end);
            if (end == p || !(v > 0) || !isfinite(v)) {
                fprintf(stderr,
                        "lepton-customer-service train: --c '%s': expected positive "
                        "numbers separated by commas\n",
                        get(fl, "--c"));
                return 2;
            }
            grid[sp.n_c++] = v;
            p = *end == ',' ? end + 1 : end;
        }
        sp.c_grid = grid;
    }
    lp_err err = {0};
    cs_bot *b;
    double t0 = lp_time_wall();
    if (cs_train_files(&sp, NULL, NULL, 0, &b, &err) != LP_OK)
        return fail(&err);
    double secs = lp_time_wall() - t0;
    if (cs_bot_save(b, get(fl, "--out"), &err) != LP_OK) {
        cs_bot_free(b);
        return fail(&err);
    }
    fprintf(stderr, "trained %zu intents (OOS: %s, T=%.3f, threshold %.4f)%s%s%s in %.1f s -> %s\n",
            cs_intent_n_classes(b->intent), cs_intent_protocol(b->intent),
            cs_intent_temperature(b->intent), cs_intent_threshold(b->intent),
            b->slots ? ", slots" : "", b->faq ? ", faq" : "", b->def ? ", bot" : "", secs,
            get(fl, "--out"));
    if (cs_intent_encoder(b->intent))
        fprintf(stderr, "encoder %s: head on %s embeddings, TF-IDF weight %.1f in the "
                "ensemble (chosen on validation), centroid cosine threshold %.4f\n",
                cs_intent_encoder(b->intent), cs_intent_finetune(b->intent),
                cs_intent_tfidf_weight(b->intent), cs_intent_cos_threshold(b->intent));
    cs_bot_free(b);
    return 0;
}

static int cmd_eval(int argc, char **argv)
{
    flag fl[] = {{"--model"},     {"--data"},      {"--text-col"}, {"--adapter"},
                 {"--label-col"}, {"--oos-label"}, {"--only"},     {"--json", NULL, true},
                 {NULL}};
    if (!parse_flags(argc, argv, fl) || !need(fl, "eval", "--model") || !need(fl, "eval", "--data"))
        return 2;
    lp_err err = {0};
    cs_bot *b;
    lp_lora *a = NULL;
    if (cs_bot_load(get(fl, "--model"), &b, &err) != LP_OK)
        return fail(&err);
    if (get(fl, "--adapter") && cs_tenant_load(b->intent, get(fl, "--adapter"), &a, &err)) {
        cs_bot_free(b);
        return fail(&err);
    }
    /* --only a,b,c: evaluate on the rows of those labels */
    char *only = get(fl, "--only") ? lp_strdup(get(fl, "--only")) : NULL;
    const char *labs[4096];
    size_t n_only = 0;
    for (char *sv = NULL, *tok = only ? strtok_r(only, ",", &sv) : NULL; tok && n_only < 4096;
         tok = strtok_r(NULL, ",", &sv))
        labs[n_only++] = tok;
    if (get(fl, "--oos-label") && strcmp(get(fl, "--oos-label"), cs_intent_oos_label(b->intent)))
        fprintf(stderr, "note: the model was trained with OOS label '%s'\n",
                cs_intent_oos_label(b->intent));
    cs_intent_eval e;
    lp_status st = cs_eval_file_with(
        b, a, get(fl, "--data"), get(fl, "--text-col") ? get(fl, "--text-col") : "text",
        get(fl, "--label-col") ? get(fl, "--label-col") : "label", only ? labs : NULL, n_only, &e,
        &err);
    free(only);
    lp_lora_free(a);
    cs_bot_free(b);
    if (st != LP_OK)
        return fail(&err);
    if (get(fl, "--json")) {
        print_json(cs_intent_eval_json(&e));
    } else {
        printf("n %zu  in-scope accuracy %.4f  OOS recall %.4f  OOS precision %.4f  macro F1 "
               "%.4f\n",
               e.n, e.in_scope_accuracy, e.oos_recall, e.oos_precision, e.macro_f1);
    }
    return 0;
}

static lp_status slots_cols(const cs_table *t, const char *path, const char ***tx, const char ***sp,
                            const char ***cx, lp_err *err)
{
    size_t jt, js;
    lp_status st = cs_table_require(t, "text", path, &jt, err);
    if (st == LP_OK)
        st = cs_table_require(t, "spans", path, &js, err);
    if (st != LP_OK)
        return st;
    long jc = cs_table_col(t, "requested_slots");
    *tx = lp_calloc(t->n_rows + 1, sizeof(char *));
    *sp = lp_calloc(t->n_rows + 1, sizeof(char *));
    *cx = jc >= 0 ? lp_calloc(t->n_rows + 1, sizeof(char *)) : NULL;
    if (!*tx || !*sp || (jc >= 0 && !*cx))
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < t->n_rows; i++) {
        (*tx)[i] = cs_table_cell(t, i, jt);
        (*sp)[i] = cs_table_cell(t, i, js);
        if (*cx)
            (*cx)[i] = cs_table_cell(t, i, (size_t)jc);
    }
    return LP_OK;
}

static int cmd_train_slots(int argc, char **argv)
{
    flag fl[] = {{"--data"}, {"--out"}, {"--trainer"}, {NULL}};
    if (!parse_flags(argc, argv, fl) || !need(fl, "train-slots", "--data") ||
        !need(fl, "train-slots", "--out"))
        return 2;
    cs_slots_opts so = cs_slots_opts_default();
    const char *trainer = get(fl, "--trainer");
    if (trainer && strcmp(trainer, "crf") == 0) {
        so.trainer = CS_SLOTS_TRAINER_CRF;
    } else if (trainer && strcmp(trainer, "perceptron") == 0) {
        so.trainer = CS_SLOTS_TRAINER_PERCEPTRON;
    } else if (trainer) {
        fprintf(stderr, "train-slots: --trainer '%s': expected crf or perceptron\n", trainer);
        return 2;
    }
    lp_err err = {0};
    cs_table t;
    if (cs_table_read(get(fl, "--data"), &t, &err) != LP_OK)
        return fail(&err);
    const char **tx = NULL, **sp = NULL, **cx = NULL;
    cs_slots *s = NULL;
    double t0 = lp_time_wall();
    lp_status st = slots_cols(&t, get(fl, "--data"), &tx, &sp, &cx, &err);
    if (st == LP_OK)
        st = cs_slots_train(tx, sp, cx, t.n_rows, &so, &s, &err);
    double secs = lp_time_wall() - t0;
    if (st == LP_OK) {
        lp_buf b;
        lp_buf_init(&b);
        cs_slots_save(s, &b);
        lp_lpm_writer *w = lp_lpm_writer_new();
        if (!w)
            st = lp_err_set(&err, LP_ENOMEM, "out of memory");
        if (st == LP_OK && (st = lp_buf_status(&b, &err)) == LP_OK &&
            (st = lp_lpm_writer_add(w, "cs.slots", LP_LPM_DTYPE_BYTES, b.data, b.len, &err)) ==
                LP_OK)
            st = lp_lpm_writer_save(w, so.trainer == CS_SLOTS_TRAINER_CRF
                                           ? "{\"kind\":\"cs-slots\",\"tagger\":\"linear_chain_crf\"}"
                                           : "{\"kind\":\"cs-slots\",\"tagger\":\"averaged_perceptron\"}",
                                    get(fl, "--out"), &err);
        lp_lpm_writer_free(w);
        lp_buf_free(&b);
    }
    if (st == LP_OK)
        fprintf(stderr, "trained a slot tagger (%zu slot types) on %zu rows in %.1f s -> %s\n",
                cs_slots_n_types(s), t.n_rows, secs, get(fl, "--out"));
    cs_slots_free(s);
    free(tx);
    free(sp);
    free(cx);
    cs_table_free(&t);
    return st == LP_OK ? 0 : fail(&err);
}

static lp_status load_slots(const char *path, cs_slots **out, lp_err *err)
{
    lp_lpm *m;
    lp_status st = lp_lpm_load(path, &m, err);
    if (st != LP_OK)
        return st;
    const void *d;
    size_t len;
    if ((st = lp_lpm_section(m, "cs.slots", -1, &d, &len, err)) == LP_OK) {
        lp_reader r;
        lp_reader_init(&r, d, len, path);
        st = cs_slots_load(&r, out, err);
    }
    lp_lpm_free(m);
    if (st != LP_OK) {
        /* a full bot model holds its tagger too */
        cs_bot *b;
        lp_err e2 = {0};
        if (cs_bot_load(path, &b, &e2) == LP_OK && b->slots) {
            *out = b->slots;
            b->slots = NULL;
            cs_bot_free(b);
            return LP_OK;
        }
        if (b)
            cs_bot_free(b);
    }
    return st;
}

static int cmd_eval_slots(int argc, char **argv)
{
    flag fl[] = {{"--model"}, {"--data"}, {"--json", NULL, true}, {NULL}};
    if (!parse_flags(argc, argv, fl) || !need(fl, "eval-slots", "--model") ||
        !need(fl, "eval-slots", "--data"))
        return 2;
    lp_err err = {0};
    cs_slots *s;
    if (load_slots(get(fl, "--model"), &s, &err) != LP_OK)
        return fail(&err);
    cs_table t;
    if (cs_table_read(get(fl, "--data"), &t, &err) != LP_OK) {
        cs_slots_free(s);
        return fail(&err);
    }
    const char **tx = NULL, **sp = NULL, **cx = NULL;
    cs_slot_eval mi, *per = lp_calloc(cs_slots_n_types(s), sizeof *per); /* one per type */
    lp_status st = per ? slots_cols(&t, get(fl, "--data"), &tx, &sp, &cx, &err)
                       : lp_err_set(&err, LP_ENOMEM, "eval-slots: out of memory");
    if (st == LP_OK)
        st = cs_slots_evaluate(s, tx, sp, cx, t.n_rows, &mi, per, &err);
    if (st == LP_OK) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "n", (double)t.n_rows);
        cJSON_AddNumberToObject(o, "precision", mi.precision);
        cJSON_AddNumberToObject(o, "recall", mi.recall);
        cJSON_AddNumberToObject(o, "f1", mi.f1);
        cJSON *ps = cJSON_AddObjectToObject(o, "per_slot");
        for (size_t k = 0; k < cs_slots_n_types(s); k++) {
            cJSON *x = cJSON_AddObjectToObject(ps, cs_slots_type(s, k));
            cJSON_AddNumberToObject(x, "precision", per[k].precision);
            cJSON_AddNumberToObject(x, "recall", per[k].recall);
            cJSON_AddNumberToObject(x, "f1", per[k].f1);
            cJSON_AddNumberToObject(x, "support", (double)(per[k].tp + per[k].fn));
        }
        /* gold slots the model never learned: all missed (counted in the micro recall), so
         * listed with their support rather than left out */
        for (size_t i = 0; i < t.n_rows; i++) {
            cs_entities g = {0};
            if (cs_spans_parse(sp[i], tx[i], strlen(tx[i]), &g, NULL) == LP_OK)
                for (size_t q = 0; q < g.n; q++) {
                    size_t k = 0;
                    while (k < cs_slots_n_types(s) && strcmp(cs_slots_type(s, k), g.v[q].type))
                        k++;
                    if (k < cs_slots_n_types(s))
                        continue;
                    cJSON *x = cJSON_GetObjectItemCaseSensitive(ps, g.v[q].type);
                    if (!x) {
                        x = cJSON_AddObjectToObject(ps, g.v[q].type);
                        cJSON_AddNumberToObject(x, "precision", 0);
                        cJSON_AddNumberToObject(x, "recall", 0);
                        cJSON_AddNumberToObject(x, "f1", 0);
                        cJSON_AddNumberToObject(x, "support", 0);
                        cJSON_AddBoolToObject(x, "unknown_to_model", true);
                    }
                    cJSON *sup = cJSON_GetObjectItemCaseSensitive(x, "support");
                    cJSON_SetNumberValue(sup, sup->valuedouble + 1);
                }
            cs_entities_clear(&g);
        }
        print_json(o);
    }
    free(per);
    free(tx);
    free(sp);
    free(cx);
    cs_table_free(&t);
    cs_slots_free(s);
    return st == LP_OK ? 0 : fail(&err);
}

static int cmd_eval_faq(int argc, char **argv)
{
    flag fl[] = {{"--faq"}, {"--queries"}, {"--encoder"}, {"--json", NULL, true}, {NULL}};
    if (!parse_flags(argc, argv, fl) || !need(fl, "eval-faq", "--faq") ||
        !need(fl, "eval-faq", "--queries"))
        return 2;
    lp_err err = {0};
    cs_table ft, qt;
    if (cs_table_read(get(fl, "--faq"), &ft, &err) != LP_OK)
        return fail(&err);
    if (cs_table_read(get(fl, "--queries"), &qt, &err) != LP_OK) {
        cs_table_free(&ft);
        return fail(&err);
    }
    long fid = cs_table_col(&ft, "id") >= 0 ? cs_table_col(&ft, "id") : cs_table_col(&ft, "faq_id");
    long fa = cs_table_col(&ft, "answer");
    long qid =
        cs_table_col(&qt, "faq_id") >= 0 ? cs_table_col(&qt, "faq_id") : cs_table_col(&qt, "id");
    long qq =
        cs_table_col(&qt, "query") >= 0 ? cs_table_col(&qt, "query") : cs_table_col(&qt, "text");
    size_t fq;
    lp_status st = cs_table_require(&ft, "question", get(fl, "--faq"), &fq, &err);
    if (st == LP_OK && (fid < 0 || qid < 0 || qq < 0))
        st = lp_err_set(&err, LP_ENOTFOUND,
                        "eval-faq: the FAQ needs 'id' (or 'faq_id') and "
                        "'question'; the queries 'faq_id' (or 'id') and "
                        "'query' (or 'text')");
    cs_faq *f = NULL;
    const char **ids = lp_calloc(ft.n_rows + 1, sizeof(char *)),
               **qs = lp_calloc(ft.n_rows + 1, sizeof(char *)),
               **as = lp_calloc(ft.n_rows + 1, sizeof(char *));
    cs_faq_hit *hits = lp_calloc(ft.n_rows + 1, sizeof(cs_faq_hit));
    if (st == LP_OK && (!ids || !qs || !as || !hits))
        st = lp_err_set(&err, LP_ENOMEM, "out of memory");
    if (st == LP_OK) {
        for (size_t i = 0; i < ft.n_rows; i++) {
            ids[i] = cs_table_cell(&ft, i, (size_t)fid);
            qs[i] = cs_table_cell(&ft, i, fq);
            as[i] = fa >= 0 ? cs_table_cell(&ft, i, (size_t)fa) : NULL;
        }
        st = cs_faq_build(ids, qs, as, ft.n_rows, &f, &err);
    }
    lp_encoder *enc = NULL;
    if (st == LP_OK && get(fl, "--encoder") &&
        (st = eh_encoder_open(get(fl, "--encoder"), NULL, "eval-faq --encoder", NULL, &enc,
                              NULL, &err)) == LP_OK)
        st = cs_faq_set_encoder(f, enc, &err);
    double top1 = 0, r5 = 0, mrr = 0;
    size_t n_absent = 0;
    const char *absent = NULL;
    for (size_t i = 0; st == LP_OK && i < qt.n_rows; i++) {
        size_t nh;
        const char *gold = cs_table_cell(&qt, i, (size_t)qid);
        bool known = false;
        for (size_t j = 0; j < ft.n_rows && !known; j++)
            known = !strcmp(ids[j], gold);
        if (!known && !n_absent++)
            absent = gold;
        st = cs_faq_search(f, cs_table_cell(&qt, i, (size_t)qq), ft.n_rows, hits, &nh, &err);
        for (size_t r = 0; st == LP_OK && r < nh; r++)
            if (!strcmp(cs_faq_id(f, hits[r].index), gold)) {
                top1 += r == 0;
                r5 += r < 5;
                mrr += 1.0 / (double)(r + 1);
                break;
            }
    }
    if (st == LP_OK && n_absent)
        lp_log_warn("eval-faq: %zu of %zu queries name an id the FAQ does not have (the first: "
                    "'%s'); they count as misses", n_absent, qt.n_rows, absent);
    if (st == LP_OK) {
        double n = qt.n_rows ? (double)qt.n_rows : 1;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "n", (double)qt.n_rows);
        cJSON_AddNumberToObject(o, "top1", top1 / n);
        cJSON_AddNumberToObject(o, "recall_at_5", r5 / n);
        cJSON_AddNumberToObject(o, "mrr", mrr / n);
        print_json(o);
    }
    cs_faq_free(f);
    lp_encoder_free(enc);
    free(ids);
    free(qs);
    free(as);
    free(hits);
    cs_table_free(&ft);
    cs_table_free(&qt);
    return st == LP_OK ? 0 : fail(&err);
}

static int cmd_retrain(int argc, char **argv)
{
    flag fl[] = {{"--model"}, {"--db"}, {"--out"}, {NULL}};
    if (!parse_flags(argc, argv, fl) || !need(fl, "retrain", "--model") ||
        !need(fl, "retrain", "--out"))
        return 2;
    lp_err err = {0};
    cs_bot *b, *nb = NULL;
    cs_store *st = NULL;
    if (cs_bot_load(get(fl, "--model"), &b, &err) != LP_OK)
        return fail(&err);
    cs_retrain_result rr;
    const char *db = get(fl, "--db") ? get(fl, "--db") : "cs.db";
    struct stat sb;
    lp_status s = LP_OK;
    if (stat(db, &sb) != 0) /* a mistyped path would retrain with no correction, silently */
        s = lp_err_set(&err, LP_ENOTFOUND, "%s: %s (the --db of serve, where the corrections "
                       "are)", db, strerror(errno));
    if (s == LP_OK)
        s = cs_store_open(db, false, &st, &err);
    if (s == LP_OK)
        s = cs_retrain(b, st, get(fl, "--out"), &nb, &rr, &err);
    if (s == LP_OK) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddBoolToObject(o, "swapped", rr.swapped);
        cJSON_AddNumberToObject(o, "corrections", (double)rr.n_corrections);
        cJSON_AddItemToObject(o, "before", cs_intent_eval_json(&rr.before));
        cJSON_AddItemToObject(o, "after", cs_intent_eval_json(&rr.after));
        print_json(o);
    }
    cs_bot_free(nb);
    cs_bot_free(b);
    cs_store_close(st);
    return s == LP_OK ? 0 : fail(&err);
}

/* A positive integer flag value in [1, max] (def when absent); false after a usage message. */
static bool int_flag(const flag *fl, const char *name, long def, long max, long *out)
{
    const char *v = get(fl, name);
    *out = def;
    if (!v)
        return true;
    char *end;
    long x = strtol(v, &end, 10);
    if (!*v || *end || x < 1 || x > max) {
        fprintf(stderr, "lepton-customer-service: %s '%s': expected an integer in 1..%ld\n", name,
                v, max);
        return false;
    }
    *out = x;
    return true;
}

static int cmd_finetune(int argc, char **argv)
{
    flag fl[] = {{"--model"},    {"--data"},      {"--rank"}, {"--epochs"}, {"--lr"},
                 {"--seed"},     {"--text-col"},  {"--label-col"}, {"--out"}, {NULL}};
    if (!parse_flags(argc, argv, fl) || !need(fl, "finetune", "--model") ||
        !need(fl, "finetune", "--data") || !need(fl, "finetune", "--out"))
        return 2;
    cs_tenant_opts o = cs_tenant_opts_default();
    long rank, epochs, seed;
    if (!int_flag(fl, "--rank", o.rank, 65536, &rank) ||
        !int_flag(fl, "--epochs", o.epochs, 100000, &epochs) ||
        !int_flag(fl, "--seed", (long)o.seed, 1L << 30, &seed))
        return 2;
    o.rank = (int)rank;
    o.epochs = (int)epochs;
    o.seed = (uint64_t)seed;
    if (get(fl, "--lr")) {
        char *end;
        o.lr = strtod(get(fl, "--lr"), &end);
        if (*end || !(o.lr > 0) || !isfinite(o.lr)) {
            fprintf(stderr, "lepton-customer-service finetune: --lr '%s': expected a number > 0\n",
                    get(fl, "--lr"));
            return 2;
        }
    }
    const char *tc = get(fl, "--text-col") ? get(fl, "--text-col") : "text";
    const char *lc = get(fl, "--label-col") ? get(fl, "--label-col") : "label";
    lp_err err = {0};
    cs_bot *b = NULL;
    cs_table t = {0};
    lp_lora *a = NULL;
    const char **tx = NULL, **lb = NULL;
    size_t jt, jl;
    lp_finetune_stats fs = {0};
    lp_status st = cs_bot_load(get(fl, "--model"), &b, &err);
    if (st == LP_OK)
        st = cs_table_read(get(fl, "--data"), &t, &err);
    if (st == LP_OK && (st = cs_table_require(&t, tc, get(fl, "--data"), &jt, &err)) == LP_OK)
        st = cs_table_require(&t, lc, get(fl, "--data"), &jl, &err);
    if (st == LP_OK) {
        tx = lp_calloc(t.n_rows + 1, sizeof *tx);
        lb = lp_calloc(t.n_rows + 1, sizeof *lb);
        if (!tx || !lb)
            st = lp_err_set(&err, LP_ENOMEM, "finetune: out of memory");
        for (size_t i = 0; st == LP_OK && i < t.n_rows; i++) {
            tx[i] = cs_table_cell(&t, i, jt);
            lb[i] = cs_table_cell(&t, i, jl);
        }
    }
    if (st == LP_OK)
        st = cs_tenant_train(b->intent, tx, lb, t.n_rows, &o, &a, &fs, &err);
    if (st == LP_OK)
        st = lp_lora_save(a, get(fl, "--out"), &err);
    if (st == LP_OK) {
        size_t base_params = 0;
        float *bp = NULL;
        if (lp_lora_base_params(a, &bp, &base_params, NULL) == LP_OK)
            free(bp);
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "adapter", get(fl, "--out"));
        cJSON_AddStringToObject(j, "base_sha256", lp_lora_base_sha256(a));
        cJSON_AddNumberToObject(j, "rows", (double)t.n_rows);
        cJSON_AddNumberToObject(j, "rank", (double)lp_lora_rank(a));
        cJSON *nc = cJSON_AddArrayToObject(j, "new_intents");
        for (size_t k = 0; k < lp_lora_n_new_classes(a); k++)
            cJSON_AddItemToArray(nc, cJSON_CreateString(lp_lora_class(
                                         a, lp_lora_n_classes(a) - lp_lora_n_new_classes(a) + k)));
        cJSON_AddNumberToObject(j, "adapter_params", (double)lp_lora_n_params(a));
        cJSON_AddNumberToObject(j, "base_params", (double)base_params);
        cJSON_AddNumberToObject(j, "train_seconds", fs.train_seconds);
        print_json(j);
    }
    lp_lora_free(a);
    free(tx);
    free(lb);
    cs_table_free(&t);
    cs_bot_free(b);
    return st == LP_OK ? 0 : fail(&err);
}

static int cmd_serve(int argc, char **argv)
{
    flag fl[] = {{"--model"},    {"--port"}, {"--db"},      {"--adapter"},
                 {"--api-keys"}, {"--host"}, {"--hash-texts", NULL, true},
                 {NULL}};
    if (!parse_flags(argc, argv, fl) || !need(fl, "serve", "--model"))
        return 2;
    cs_service_opts o = cs_service_opts_default();
    /* --adapter NAME=FILE.lpa is repeatable: parse_flags kept the last, take them all */
    const char *adapters[256];
    size_t n_ad = 0;
    for (int i = 2; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--adapter")) {
            if (n_ad == sizeof adapters / sizeof adapters[0]) {
                fprintf(stderr, "lepton-customer-service serve: at most 256 --adapter\n");
                return 2;
            }
            adapters[n_ad++] = argv[++i];
        } else if (strcmp(argv[i], "--hash-texts")) {
            i++; /* a flag's value, never a flag itself */
        }
    o.adapters = adapters;
    o.n_adapters = n_ad;
    o.model_path = get(fl, "--model");
    if (get(fl, "--db"))
        o.db_path = get(fl, "--db");
    if (get(fl, "--host"))
        o.server.host = get(fl, "--host");
    o.hashes_only = get(fl, "--hash-texts") != NULL;
    o.server.access_log = true;
    if (get(fl, "--port")) {
        char *end;
        long p = strtol(get(fl, "--port"), &end, 10);
        if (*end || p < 0 || p > 65535) {
            fprintf(stderr, "lepton-customer-service serve: --port '%s': expected 0..65535\n",
                    get(fl, "--port"));
            return 2;
        }
        o.server.port = (unsigned)p;
    }
    lp_err err = {0};
    char **keys = NULL;
    size_t nk = 0;
    if (get(fl, "--api-keys") && lp_api_keys_load(get(fl, "--api-keys"), &keys, &nk, &err) != LP_OK)
        return fail(&err);
    o.api_keys = keys;
    o.n_keys = nk;
    if (!nk)
        lp_log_warn("no --api-keys: POST /v1/admin/retrain is open to anyone who can connect");
    cs_service *s;
    if (cs_service_new(&o, &s, &err) != LP_OK) {
        lp_api_keys_free(keys);
        return fail(&err);
    }
    lp_server *srv = cs_service_server(s);
    lp_status st = lp_server_start(srv, &err);
    if (st == LP_OK) {
        fprintf(stderr, "serving %s on port %u\n", o.model_path, lp_server_port(srv));
        lp_server_set_ready(srv, true);
        st = lp_server_run_until_signal(srv, &err);
    }
    cs_service_free(s);
    lp_api_keys_free(keys);
    return st == LP_OK ? 0 : fail(&err);
}

static int cmd_chat(int argc, char **argv)
{
    flag fl[] = {{"--model"}, {NULL}};
    if (!parse_flags(argc, argv, fl) || !need(fl, "chat", "--model"))
        return 2;
    lp_err err = {0};
    cs_bot *b;
    if (cs_bot_load(get(fl, "--model"), &b, &err) != LP_OK)
        return fail(&err);
    cs_session s;
    cs_session_init(&s, "terminal");
    char line[8192];
    fprintf(stderr, "chat with the bot (an empty line or EOF ends)\n");
    while (fputs("> ", stderr), fgets(line, sizeof(line), stdin)) {
        size_t len = strcspn(line, "\r\n");
        line[len] = 0;
        if (!len)
            break;
        cJSON *o;
        cs_turn_out t;
        if (cs_bot_turn(b, &s, line, len, &o, &t, &err) != LP_OK) {
            fprintf(stderr, "error: %s\n", lp_err_text(&err));
            continue;
        }
        const cJSON *c = cJSON_GetObjectItem(o, "confidence");
        printf("bot: %s\n     [intent %s, confidence %.2f%s%s%s]\n", t.reply ? t.reply : "",
               cJSON_GetObjectItem(o, "intent")->valuestring, c->valuedouble,
               t.handoff ? ", hand-off: " : "", t.handoff ? t.reason : "",
               cJSON_IsTrue(cJSON_GetObjectItem(o, "out_of_scope")) ? ", out of scope" : "");
        fflush(stdout);
        cs_turn_out_clear(&t);
        cJSON_Delete(o);
    }
    cs_session_clear(&s);
    cs_bot_free(b);
    return 0;
}

int main(int argc, char **argv)
{
    lp_process_tune(argv); /* before any OpenMP: see base.h */
    const char *lvl = getenv("LEPTON_LOG");
    if (lvl && !strcmp(lvl, "warn"))
        lp_log_set_level(LP_LOG_LEVEL_WARN);
    if (argc < 2 || lp_cli_help_requested(argc, argv)) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"train", cmd_train},
                {"eval", cmd_eval},
                {"train-slots", cmd_train_slots},
                {"eval-slots", cmd_eval_slots},
                {"eval-faq", cmd_eval_faq},
                {"retrain", cmd_retrain},
                {"finetune", cmd_finetune},
                {"serve", cmd_serve},
                {"chat", cmd_chat},
                {"topics", cs_cmd_topics}};
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (!strcmp(argv[1], cmds[i].name))
            return cmds[i].fn(argc, argv);
    fprintf(stderr, "lepton-customer-service: unknown command '%s'\n%s", argv[1], usage);
    return 2;
}
