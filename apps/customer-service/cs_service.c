/*
 * cs_service.c - training a bot from files, retraining with feedback corrections, and the HTTP
 * service (route table over lp_serve): POST /v1/chat, GET /v1/sessions/{id}, POST /v1/feedback,
 * POST /v1/admin/retrain, GET /v1/monitor (cs_monitor.c), plus the shared endpoints of the serve
 * layer.
 *
 * The current bot sits behind an lp_swap: a request holds a reference for its duration, a
 * retrain installs the new bot only when it is not worse on validation, and the old one is
 * freed when its last request ends. User text is redacted (emails, phones, cards) before it is
 * stored; in hash-only mode only its SHA-256 is kept. Nothing here logs user text.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs.h"

#define SEC_TRAIN "cs.train"
/* Training sets up to this many rows get char_wb n-grams even without --char-ngrams. */
#define CS_CHAR_NGRAMS_AUTO_ROWS 5000

cs_train_spec cs_train_spec_default(void)
{
    return (cs_train_spec){
        .text_col = "text", .label_col = "label", .oos_label = "oos", .char_ngrams = false,
        .oos_max_loss = -1, .seed = 42, .refit = -1};
}

static lp_status col_of(const cs_table *t, const char *name, const char *what, const char ***out,
                        lp_err *err)
{
    size_t j;
    lp_status st = cs_table_require(t, name, what, &j, err);
    if (st != LP_OK)
        return st;
    *out = lp_mallocarray(t->n_rows ? t->n_rows : 1, sizeof(char *));
    if (!*out)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
    for (size_t i = 0; i < t->n_rows; i++)
        (*out)[i] = cs_table_cell(t, i, j);
    return LP_OK;
}

static lp_status load_faq(const char *path, cs_faq **out, lp_err *err)
{
    cs_table t;
    lp_status st = cs_table_read(path, &t, err);
    if (st != LP_OK)
        return st;
    long ji = cs_table_col(&t, "id") >= 0 ? cs_table_col(&t, "id") : cs_table_col(&t, "faq_id");
    long ja = cs_table_col(&t, "answer");
    size_t jq;
    const char **ids = NULL, **qs = NULL, **as = NULL;
    if ((st = cs_table_require(&t, "question", path, &jq, err)) == LP_OK) {
        ids = lp_calloc(t.n_rows + 1, sizeof(char *));
        qs = lp_calloc(t.n_rows + 1, sizeof(char *));
        as = lp_calloc(t.n_rows + 1, sizeof(char *));
        if (!ids || !qs || !as) {
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
        } else {
            char num[32];
            for (size_t i = 0; i < t.n_rows; i++) {
                snprintf(num, sizeof(num), "%zu", i + 1);
                ids[i] = ji >= 0 ? cs_table_cell(&t, i, (size_t)ji) : NULL;
                qs[i] = cs_table_cell(&t, i, jq);
                as[i] = ja >= 0 ? cs_table_cell(&t, i, (size_t)ja) : NULL;
            }
            st = cs_faq_build(ids, qs, as, t.n_rows, out, err);
            if (st != LP_OK)
                lp_err_prefix(err, "%s", path);
        }
    }
    free(ids);
    free(qs);
    free(as);
    cs_table_free(&t);
    return st;
}

static lp_status train_slots_file(const char *path, cs_slots **out, lp_err *err)
{
    cs_table t;
    lp_status st = cs_table_read(path, &t, err);
    if (st != LP_OK)
        return st;
    const char **tx = NULL, **sp = NULL, **cx = NULL;
    if ((st = col_of(&t, "text", path, &tx, err)) == LP_OK &&
        (st = col_of(&t, "spans", path, &sp, err)) == LP_OK) {
        if (cs_table_col(&t, "requested_slots") >= 0)
            st = col_of(&t, "requested_slots", path, &cx, err);
        if (st == LP_OK)
            st = cs_slots_train(tx, sp, cx, t.n_rows, NULL, out, err);
    }
    free(tx);
    free(sp);
    free(cx);
    cs_table_free(&t);
    return st;
}

static cJSON *spec_json(const cs_train_spec *s)
{
    cJSON *o = cJSON_CreateObject();
    const char *k[] = {"data",      "valid", "text_col", "label_col", "oos_label",
                       "slots",     "faq",   "bot",      "encoder",   "finetune"};
    const char *v[] = {s->data,  s->valid, s->text_col, s->label_col, s->oos_label,
                       s->slots, s->faq,   s->bot,      s->encoder,   s->finetune};
    for (int i = 0; i < 10; i++)
        if (v[i])
            cJSON_AddStringToObject(o, k[i], v[i]);
    if (s->ft_epochs)
        cJSON_AddNumberToObject(o, "ft_epochs", (double)s->ft_epochs);
    if (s->ft_max_steps)
        cJSON_AddNumberToObject(o, "ft_max_steps", (double)s->ft_max_steps);
    cJSON_AddBoolToObject(o, "char_ngrams", s->char_ngrams);
    cJSON_AddNumberToObject(o, "seed", (double)s->seed);
    if (s->refit >= 0) /* absent: the default (refit when validation is split off) */
        cJSON_AddBoolToObject(o, "refit", s->refit > 0);
    if (s->oos_max_loss >= 0)
        cJSON_AddNumberToObject(o, "oos_max_loss", s->oos_max_loss);
    cJSON *c = cJSON_AddArrayToObject(o, "c_grid");
    for (size_t i = 0; i < s->n_c; i++)
        cJSON_AddItemToArray(c, cJSON_CreateNumber(s->c_grid[i]));
    return o;
}

lp_status cs_train_files(const cs_train_spec *spec, char *const *extra_texts,
                         char *const *extra_labels, size_t n_extra, cs_bot **out, lp_err *err)
{
    *out = NULL;
    cs_table tr = {0}, va = {0};
    const char **t = NULL, **l = NULL, **vt = NULL, **vl = NULL;
    cs_bot *b = lp_calloc(1, sizeof(*b));
    lp_status st = b ? LP_OK : lp_err_set(err, LP_ENOMEM, "train: out of memory");
    if (st == LP_OK && (st = cs_table_read(spec->data, &tr, err)) == LP_OK &&
        (st = col_of(&tr, spec->text_col, spec->data, &t, err)) == LP_OK)
        st = col_of(&tr, spec->label_col, spec->data, &l, err);
    size_t n = tr.n_rows;
    if (st == LP_OK && n_extra) {
        const char **t2 = lp_reallocarray(t, n + n_extra, sizeof(char *));
        if (t2)
            t = t2;
        const char **l2 = lp_reallocarray(l, n + n_extra, sizeof(char *));
        if (l2)
            l = l2;
        if (!t2 || !l2)
            st = lp_err_set(err, LP_ENOMEM, "train: out of memory");
        for (size_t i = 0; st == LP_OK && i < n_extra; i++) {
            t[n + i] = extra_texts[i];
            l[n + i] = extra_labels[i];
        }
        n += n_extra;
    }
    if (st == LP_OK && spec->valid && (st = cs_table_read(spec->valid, &va, err)) == LP_OK &&
        (st = col_of(&va, spec->text_col, spec->valid, &vt, err)) == LP_OK)
        st = col_of(&va, spec->label_col, spec->valid, &vl, err);
    /* the bot definition first: a mistake in it is found before the training time is spent */
    if (st == LP_OK && spec->bot) {
        uint8_t *d;
        size_t len;
        if ((st = lp_file_read(spec->bot, &d, &len, err)) == LP_OK) {
            st = cs_bot_def_parse((const char *)d, len, spec->bot, &b->def, err);
            free(d);
        }
    }
    if (st == LP_OK) {
        st = cs_patterns_new(cs_bot_def_order_pattern(b->def), &b->patterns, err);
        if (st != LP_OK && spec->bot) /* the bot definition's order_pattern */
            lp_err_prefix(err, "%s", spec->bot);
    }
    if (st == LP_OK) {
        cs_intent_opts io = cs_intent_opts_default();
        io.oos_label = spec->oos_label;
        io.c_grid = spec->c_grid;
        io.n_c = spec->n_c;
        /* char n-grams help most where examples are few, and cost most where they are many */
        io.char_ngrams = spec->char_ngrams || n <= CS_CHAR_NGRAMS_AUTO_ROWS;
        io.encoder = spec->encoder;
        io.finetune = spec->finetune;
        io.ft_epochs = spec->ft_epochs;
        io.ft_max_steps = spec->ft_max_steps;
        io.encoder_device = spec->device;
        io.seed = spec->seed;
        io.refit = spec->refit;
        if (spec->oos_max_loss >= 0)
            io.oos_max_loss = spec->oos_max_loss;
        st = cs_intent_train(t, l, n, vt, vl, va.n_rows, &io, &b->intent, err);
    }
    if (st == LP_OK && spec->slots)
        st = train_slots_file(spec->slots, &b->slots, err);
    if (st == LP_OK && spec->faq)
        st = load_faq(spec->faq, &b->faq, err);
    if (st == LP_OK && b->faq && cs_intent_encoder_handle(b->intent))
        st = cs_faq_set_encoder(b->faq, cs_intent_encoder_handle(b->intent), err);
    if (st == LP_OK) {
        cJSON *j = spec_json(spec);
        char *s = cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        st = s ? lp_model_set_extra(cs_intent_model(b->intent), SEC_TRAIN, s, strlen(s), err)
               : lp_err_set(err, LP_ENOMEM, "train: out of memory");
        free(s);
    }
    free(t);
    free(l);
    free(vt);
    free(vl);
    cs_table_free(&tr);
    cs_table_free(&va);
    if (st != LP_OK) {
        cs_bot_free(b);
        return st;
    }
    *out = b;
    return LP_OK;
}

lp_status cs_eval_file(const cs_bot *b, const char *path, const char *text_col,
                       const char *label_col, cs_intent_eval *e, lp_err *err)
{
    return cs_eval_file_with(b, NULL, path, text_col, label_col, NULL, 0, e, err);
}

lp_status cs_eval_file_with(const cs_bot *b, const lp_lora *a, const char *path,
                            const char *text_col, const char *label_col,
                            const char *const *only_labels, size_t n_only, cs_intent_eval *e,
                            lp_err *err)
{
    cs_table t;
    lp_status st = cs_table_read(path, &t, err);
    if (st != LP_OK)
        return st;
    const char **tx = NULL, **lb = NULL;
    size_t n = t.n_rows;
    if ((st = col_of(&t, text_col, path, &tx, err)) == LP_OK &&
        (st = col_of(&t, label_col, path, &lb, err)) == LP_OK) {
        if (only_labels) { /* keep the chosen labels' rows, in place */
            n = 0;
            for (size_t i = 0; i < t.n_rows; i++) {
                bool keep = false;
                for (size_t k = 0; k < n_only && !keep; k++)
                    keep = !strcmp(lb[i], only_labels[k]);
                if (keep) {
                    tx[n] = tx[i];
                    lb[n++] = lb[i];
                }
            }
        }
        st = cs_intent_evaluate_with(b->intent, a, tx, lb, n, e, err);
    }
    free(tx);
    free(lb);
    cs_table_free(&t);
    return st;
}

static void add_num(cJSON *o, const char *k, double v)
{
    if (isfinite(v))
        cJSON_AddNumberToObject(o, k, v);
    else
        cJSON_AddNullToObject(o, k);
}

cJSON *cs_intent_eval_json(const cs_intent_eval *e)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "n", (double)e->n);
    add_num(o, "in_scope_accuracy", e->in_scope_accuracy);
    add_num(o, "oos_recall", e->oos_recall);
    add_num(o, "oos_precision", e->oos_precision);
    add_num(o, "macro_f1", e->macro_f1);
    return o;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

lp_status cs_retrain(const cs_bot *cur, cs_store *store, const char *out_path, cs_bot **out_bot,
                     cs_retrain_result *res, lp_err *err)
{
    *out_bot = NULL;
    memset(res, 0, sizeof(*res));
    const void *d;
    size_t len;
    lp_status st = lp_model_get_extra(cs_intent_model(cur->intent), SEC_TRAIN, &d, &len, err);
    if (st != LP_OK)
        return lp_err_set(err, LP_ESTATE, "retrain: the model records no training data");
    cJSON *j = cJSON_ParseWithLength(d, len);
    cs_train_spec sp = cs_train_spec_default();
    sp.data = jstr(j, "data");
    sp.valid = jstr(j, "valid");
    if (jstr(j, "text_col"))
        sp.text_col = jstr(j, "text_col");
    if (jstr(j, "label_col"))
        sp.label_col = jstr(j, "label_col");
    if (jstr(j, "oos_label"))
        sp.oos_label = jstr(j, "oos_label");
    sp.slots = jstr(j, "slots");
    sp.faq = jstr(j, "faq");
    sp.bot = jstr(j, "bot");
    sp.encoder = jstr(j, "encoder");
    sp.finetune = jstr(j, "finetune");
    const cJSON *fe = cJSON_GetObjectItemCaseSensitive(j, "ft_epochs");
    const cJSON *fs = cJSON_GetObjectItemCaseSensitive(j, "ft_max_steps");
    sp.ft_epochs = cJSON_IsNumber(fe) && fe->valuedouble >= 1 && fe->valuedouble <= 1000
                       ? (size_t)fe->valuedouble
                       : 0;
    sp.ft_max_steps = cJSON_IsNumber(fs) && fs->valuedouble >= 1 && fs->valuedouble <= 1e9
                          ? (size_t)fs->valuedouble
                          : 0;
    sp.char_ngrams = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "char_ngrams"));
    const cJSON *rf = cJSON_GetObjectItemCaseSensitive(j, "refit");
    sp.refit = cJSON_IsBool(rf) ? cJSON_IsTrue(rf) : -1;
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(j, "seed"); /* absent before: 42 */
    if (cJSON_IsNumber(sd) && sd->valuedouble >= 0 && sd->valuedouble <= 1073741824.0)
        sp.seed = (uint64_t)sd->valuedouble;
    const cJSON *ml = cJSON_GetObjectItemCaseSensitive(j, "oos_max_loss");
    if (cJSON_IsNumber(ml) && ml->valuedouble >= 0 && ml->valuedouble <= 0.5)
        sp.oos_max_loss = ml->valuedouble;
    const cJSON *cg = cJSON_GetObjectItemCaseSensitive(j, "c_grid"), *x;
    double grid[16];
    cJSON_ArrayForEach(x, cg) if (cJSON_IsNumber(x) && sp.n_c < 16) grid[sp.n_c++] = x->valuedouble;
    sp.c_grid = sp.n_c ? grid : NULL;
    char **ct = NULL, **cl = NULL;
    size_t nc = 0;
    cs_bot *nb = NULL;
    if (!sp.data) {
        st = lp_err_set(err, LP_ESTATE, "retrain: the model records no training data");
        goto done;
    }
    if ((st = cs_store_corrections(store, &ct, &cl, &nc, err)) != LP_OK)
        goto done;
    res->n_corrections = nc;
    if ((st = cs_train_files(&sp, ct, cl, nc, &nb, err)) != LP_OK)
        goto done;
    const char *vpath = sp.valid ? sp.valid : sp.data;
    if ((st = cs_eval_file(cur, vpath, sp.text_col, sp.label_col, &res->before, err)) != LP_OK ||
        (st = cs_eval_file(nb, vpath, sp.text_col, sp.label_col, &res->after, err)) != LP_OK)
        goto done;
    double eps = 1e-9;
    bool worse = res->after.macro_f1 < res->before.macro_f1 - eps ||
                 (isfinite(res->before.in_scope_accuracy) &&
                  res->after.in_scope_accuracy < res->before.in_scope_accuracy - eps);
    if (!worse) {
        if ((st = cs_bot_save(nb, out_path, err)) != LP_OK)
            goto done;
        res->swapped = true;
        *out_bot = nb;
        nb = NULL;
    }
done:
    cs_bot_free(nb);
    cs_strs_free(ct, nc);
    cs_strs_free(cl, nc);
    cJSON_Delete(j);
    return st;
}

/* ---- the HTTP service ------------------------------------------------------------------- */
/* What the swap holds: the bot and the tenant adapters bound to its intent model (they point
 * to it, so they are loaded, swapped and freed together). */
typedef struct cs_live {
    cs_bot *bot;
    size_t n_adapters;
    lp_lora **adapters; /* (n_adapters), names in the service's adapter_names */
} cs_live;

struct cs_service {
    lp_swap *swap;
    cs_store *store;
    lp_server *server;
    char *model_path;
    pthread_mutex_t retrain_mu;
    lp_metric_series *turns, *handoffs, *oos;
    size_t n_adapters;
    char **adapter_names, **adapter_paths; /* (n_adapters) */
    cs_monitor *mon; /* GET /v1/monitor (cs_monitor.c) */
};

static void live_free(cs_live *l)
{
    if (!l)
        return;
    for (size_t i = 0; i < l->n_adapters; i++)
        lp_lora_free(l->adapters[i]);
    free(l->adapters);
    cs_bot_free(l->bot);
    free(l);
}

static void bot_destroy(void *obj, void *user)
{
    (void)user;
    live_free(obj);
}

/* Load the bot at path and every configured adapter for it (an adapter for another base is an
 * error naming the adapter and both hashes). */
static lp_status live_load(const cs_service *s, const char *path, cs_live **out, lp_err *err)
{
    *out = NULL;
    cs_live *l = lp_calloc(1, sizeof *l);
    if (!l || (s->n_adapters && !(l->adapters = lp_calloc(s->n_adapters, sizeof(lp_lora *))))) {
        free(l);
        return lp_err_set(err, LP_ENOMEM, "service: out of memory");
    }
    lp_status st = cs_bot_load(path, &l->bot, err);
    for (size_t i = 0; st == LP_OK && i < s->n_adapters; i++) {
        st = cs_tenant_load(l->bot->intent, s->adapter_paths[i], &l->adapters[i], err);
        if (st == LP_OK)
            l->n_adapters++;
        else
            lp_err_prefix(err, "adapter '%s'", s->adapter_names[i]);
    }
    if (st != LP_OK) {
        live_free(l);
        return st;
    }
    *out = l;
    return LP_OK;
}

/* The request's "adapter" (absent or null: the base): *a, or a 400 naming it. */
static bool pick_adapter(const cs_service *s, const cs_live *l, const lp_req *req,
                         const lp_lora **a, lp_res *res)
{
    *a = NULL;
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(req->json, "adapter");
    if (!cJSON_IsString(j))
        return true;
    for (size_t i = 0; i < l->n_adapters; i++)
        if (!strcmp(s->adapter_names[i], j->valuestring)) {
            *a = l->adapters[i];
            return true;
        }
    lp_http_error(res, LP_EINVAL, "field 'adapter': '%.64s' is not a loaded adapter (%zu loaded)",
                  j->valuestring, l->n_adapters);
    return false;
}

/* A chat answer waiting for its turn's COMMIT. */
typedef struct chat_job {
    lp_deferred *d;
    cJSON *out; /* the answer without turn_id */
} chat_job;

/* cs_store_put_async's report (the store's writer thread): answer the deferred request. */
static void chat_done(void *arg, lp_status st, long turn_id, const lp_err *err)
{
    chat_job *cj = arg;
    lp_res *res = lp_deferred_res(cj->d);
    if (st != LP_OK) {
        cJSON_Delete(cj->out);
        lp_http_error_from(res, err);
    } else {
        cJSON_AddNumberToObject(cj->out, "turn_id", (double)turn_id);
        lp_res_json(res, 200, cj->out);
    }
    lp_deferred *d = cj->d;
    free(cj);
    lp_deferred_finish(d);
}

static lp_status h_chat(const lp_req *req, lp_res *res, void *user)
{
    cs_service *s = user;
    const char *sid = cJSON_GetObjectItemCaseSensitive(req->json, "session_id")->valuestring;
    const cJSON *tx = cJSON_GetObjectItemCaseSensitive(req->json, "text");
    if (!sid[0])
        return lp_http_error(res, LP_EINVAL, "field 'session_id': empty");
    /* an id GET /v1/sessions/{id} can name: no '/', no control character */
    for (const char *p = sid; *p; p++)
        if (*p == '/' || (unsigned char)*p < 0x20 || *p == 0x7f)
            return lp_http_error(res, LP_EINVAL, "field 'session_id': %s at byte %zu (GET "
                                 "/v1/sessions/{id} could not name it)",
                                 *p == '/' ? "'/'" : "a control character", (size_t)(p - sid));
    lp_swap_ref *ref = lp_swap_acquire(s->swap);
    const cs_live *live = lp_swap_ref_object(ref);
    const cs_bot *bot = live->bot;
    const lp_lora *ad = NULL;
    if (!pick_adapter(s, live, req, &ad, res)) {
        lp_swap_release(ref);
        return LP_OK;
    }
    lp_err err = {0};
    cs_session ses;
    lp_status st = cs_store_get(s->store, sid, &ses, &err);
    if (st == LP_ENOTFOUND)
        st = LP_OK;
    cJSON *out = NULL;
    cs_turn_out turn = {0};
    if (st == LP_OK)
        st = cs_bot_turn_with(bot, ad, &ses, tx->valuestring, strlen(tx->valuestring), &out, &turn,
                              &err);
    if (st == LP_OK && ad)
        cJSON_AddStringToObject(out, "adapter",
                                cJSON_GetObjectItemCaseSensitive(req->json, "adapter")->valuestring);
    if (st == LP_OK) {
        /* nothing personal reaches the store: text, reply and slot values are redacted */
        char *red = cs_redact(bot->patterns, tx->valuestring, strlen(tx->valuestring));
        char *red_reply =
            turn.reply ? cs_redact(bot->patterns, turn.reply, strlen(turn.reply)) : NULL;
        cJSON *sv;
        cJSON_ArrayForEach(sv, ses.slots) if (cJSON_IsString(sv))
        {
            char *rv = cs_redact(bot->patterns, sv->valuestring, strlen(sv->valuestring));
            if (rv) {
                cJSON_free(sv->valuestring);
                sv->valuestring = cJSON_malloc(strlen(rv) + 1);
                if (sv->valuestring)
                    memcpy(sv->valuestring, rv, strlen(rv) + 1);
                else
                    sv->type = cJSON_NULL;
                free(rv);
            }
        }
        long turn_id = 0;
        const cJSON *in = cJSON_GetObjectItemCaseSensitive(out, "intent");
        const cJSON *cf = cJSON_GetObjectItemCaseSensitive(out, "confidence");
        cs_monitor_count(s->mon, bot, lp_swap_generation(s->swap), in->valuestring,
                         cf->valuedouble);
        lp_metric_series_add(s->turns, 1);
        if (turn.handoff)
            lp_metric_series_add(s->handoffs, 1);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(out, "out_of_scope")))
            lp_metric_series_add(s->oos, 1);
        /* the turn is group-committed (cs_store_put_async) and answered after its COMMIT, its
         * pool thread serving other connections meanwhile; in-line where the layer cannot
         * defer */
        chat_job *cj = red ? lp_calloc(1, sizeof *cj) : NULL;
        if (cj && (cj->d = lp_req_defer(req))) {
            cj->out = out;
            lp_err qerr = {0};
            if (cs_store_put_async(s->store, &ses, red, in->valuestring, cf->valuedouble,
                                   red_reply ? red_reply : "", turn.handoff, turn.reason,
                                   chat_done, cj, &qerr) != LP_OK)
                chat_done(cj, qerr.status, 0, &qerr);
            free(red);
            free(red_reply);
            cs_turn_out_clear(&turn);
            cs_session_clear(&ses);
            lp_swap_release(ref);
            return LP_OK;
        }
        free(cj);
        st = red ? cs_store_put(s->store, &ses, red, in->valuestring, cf->valuedouble,
                                red_reply ? red_reply : "", turn.handoff, turn.reason, &turn_id,
                                &err)
                 : lp_err_set(&err, LP_ENOMEM, "chat: out of memory");
        free(red);
        free(red_reply);
        cJSON_AddNumberToObject(out, "turn_id", (double)turn_id);
    }
    cs_turn_out_clear(&turn);
    cs_session_clear(&ses);
    lp_swap_release(ref);
    if (st != LP_OK) {
        cJSON_Delete(out);
        return lp_http_error_from(res, &err);
    }
    return lp_res_json(res, 200, out);
}

static lp_status h_session(const lp_req *req, lp_res *res, void *user)
{
    cs_service *s = user;
    lp_err err = {0};
    cJSON *o;
    /* the history's most recent `limit` turns (1..10,000, default 1,000): a session of
     * thousands of long turns would otherwise make a reply of many megabytes */
    const char *v = lp_req_query(req, "limit");
    int64_t limit = 1000;
    if (v && (!lp_parse_int(v, strlen(v), &limit) || limit < 1 || limit > 10000))
        return lp_http_error(res, LP_EINVAL,
                             "parameter 'limit': '%.32s' is not an integer in 1..10000", v);
    if (cs_store_session_json(s->store, lp_req_param(req, "id"), (long)limit, &o, &err) != LP_OK)
        return lp_http_error_from(res, &err);
    return lp_res_json(res, 200, o);
}

static lp_status h_feedback(const lp_req *req, lp_res *res, void *user)
{
    cs_service *s = user;
    const char *sid = cJSON_GetObjectItemCaseSensitive(req->json, "session_id")->valuestring;
    long turn = (long)cJSON_GetObjectItemCaseSensitive(req->json, "turn_id")->valuedouble;
    const char *intent = cJSON_GetObjectItemCaseSensitive(req->json, "intent")->valuestring;
    lp_swap_ref *ref = lp_swap_acquire(s->swap);
    const cs_bot *bot = ((const cs_live *)lp_swap_ref_object(ref))->bot;
    bool known = !strcmp(intent, cs_intent_oos_label(bot->intent));
    for (size_t k = 0; k < cs_intent_n_classes(bot->intent) && !known; k++)
        known = !strcmp(intent, cs_intent_class(bot->intent, k));
    lp_swap_release(ref);
    if (!known)
        return lp_http_error(res, LP_EINVAL,
                             "field 'intent': '%.64s' is not an intent of the "
                             "model",
                             intent);
    lp_err err = {0};
    if (cs_store_feedback(s->store, sid, turn, intent, &err) != LP_OK)
        return lp_http_error_from(res, &err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "stored", true);
    return lp_res_json(res, 200, o);
}

static lp_status h_retrain(const lp_req *req, lp_res *res, void *user)
{
    cs_service *s = user;
    if (s->n_adapters)
        return lp_http_error_raw(res, 409, "adapters_loaded",
                                 "retrain is off while tenant adapters are loaded: they name the "
                                 "base model's sha256, which a retrained model changes");
    if (pthread_mutex_trylock(&s->retrain_mu) != 0)
        return lp_http_error_raw(res, 409, "busy", "a retrain is already running");
    lp_swap_ref *ref = lp_swap_acquire(s->swap);
    lp_err err = {0};
    cs_bot *nb = NULL;
    cs_retrain_result rr;
    const cs_live *cur = lp_swap_ref_object(ref);
    lp_status st = cs_retrain(cur->bot, s->store, s->model_path, &nb, &rr, &err);
    lp_swap_release(ref);
    cs_live *nl = NULL;
    if (st == LP_OK && nb && !(nl = lp_calloc(1, sizeof *nl))) {
        cs_bot_free(nb);
        st = lp_err_set(&err, LP_ENOMEM, "retrain: out of memory");
    } else if (nl) {
        nl->bot = nb;
    }
    if (st == LP_OK && nl && (st = lp_swap_set(s->swap, nl, &err)) != LP_OK)
        live_free(nl);
    pthread_mutex_unlock(&s->retrain_mu);
    if (st != LP_OK)
        return lp_http_error_from(res, &err);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "swapped", rr.swapped);
    cJSON_AddNumberToObject(o, "corrections", (double)rr.n_corrections);
    cJSON_AddItemToObject(o, "before", cs_intent_eval_json(&rr.before));
    cJSON_AddItemToObject(o, "after", cs_intent_eval_json(&rr.after));
    cJSON_AddNumberToObject(o, "generation", (double)lp_swap_generation(s->swap));
    return lp_res_json(res, 200, o);
}

/* POST /v1/intent: classify one text (no session, no dialogue, nothing stored). */
static lp_status h_intent(const lp_req *req, lp_res *res, void *user)
{
    cs_service *s = user;
    const char *text = cJSON_GetObjectItemCaseSensitive(req->json, "text")->valuestring;
    size_t len = strlen(text);
    if (lp_utf8_blank(text, len))
        return lp_http_error(res, LP_EINVAL, "field 'text': empty");
    lp_swap_ref *ref = lp_swap_acquire(s->swap);
    const cs_live *live = lp_swap_ref_object(ref);
    const lp_lora *ad = NULL;
    if (!pick_adapter(s, live, req, &ad, res)) {
        lp_swap_release(ref);
        return LP_OK;
    }
    lp_err err = {0};
    cs_intent_result ir;
    lp_status st = lp_utf8_check(text, len, "text", &err) != LP_OK
                       ? LP_EPARSE
                       : cs_intent_predict_with(live->bot->intent, ad, &text, 1, &ir, &err);
    cJSON *o = NULL;
    if (st == LP_OK) { /* the strings belong to the model or the adapter: copy before release */
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "intent", ir.intent);
        cJSON_AddNumberToObject(o, "confidence", ir.confidence);
        cJSON *alts = cJSON_AddArrayToObject(o, "alternatives");
        for (size_t k = 0; k < ir.n_alt; k++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "intent", ir.alt[k]);
            cJSON_AddNumberToObject(x, "confidence", ir.alt_p[k]);
            cJSON_AddItemToArray(alts, x);
        }
        cJSON_AddBoolToObject(o, "out_of_scope", ir.out_of_scope);
        if (ad)
            cJSON_AddStringToObject(
                o, "adapter", cJSON_GetObjectItemCaseSensitive(req->json, "adapter")->valuestring);
        else
            cJSON_AddNullToObject(o, "adapter");
    }
    lp_swap_release(ref);
    if (st != LP_OK)
        return lp_http_error_from(res, &err);
    return lp_res_json(res, 200, o);
}

static lp_status h_monitor(const lp_req *req, lp_res *res, void *user)
{
    (void)req;
    cs_service *s = user;
    lp_swap_ref *ref = lp_swap_acquire(s->swap);
    const cs_live *live = lp_swap_ref_object(ref);
    cJSON *o = cs_monitor_report(s->mon, live->bot, lp_swap_generation(s->swap));
    lp_swap_release(ref);
    return lp_res_json(res, 200, o);
}

static const lp_field_spec chat_fields[] = {
    {"session_id", LP_FIELD_TYPE_STRING, true, false, 0, 0, 128},
    {"text", LP_FIELD_TYPE_STRING, true, false, 0, 0, 8192},
    {"adapter", LP_FIELD_TYPE_STRING, false, false, 0, 0, 128},
    {NULL}};
static const lp_field_spec intent_fields[] = {
    {"text", LP_FIELD_TYPE_STRING, true, false, 0, 0, 8192},
    {"adapter", LP_FIELD_TYPE_STRING, false, false, 0, 0, 128},
    {NULL}};
static const lp_field_spec feedback_fields[] = {
    {"session_id", LP_FIELD_TYPE_STRING, true, false, 0, 0, 128},
    {"turn_id", LP_FIELD_TYPE_INTEGER, true, true, 1, 9007199254740991.0, 0}, /* 2^53 - 1 */
    {"intent", LP_FIELD_TYPE_STRING, true, false, 0, 0, 128},
    {NULL}};

#define CS_ROUTES(AUTH)                                                                            \
    {"POST", "/v1/chat", h_chat, 64 * 1024, false, true, chat_fields, false},                      \
        {"POST", "/v1/intent", h_intent, 64 * 1024, false, true, intent_fields, false},            \
        {"GET", "/v1/sessions/{id}", h_session, 0, false, false, NULL, false},                     \
        {"POST", "/v1/feedback", h_feedback, 16 * 1024, false, true, feedback_fields, false},      \
        {"GET", "/v1/monitor", h_monitor, 0, false, false, NULL, false},                           \
    {                                                                                              \
        "POST", "/v1/admin/retrain", h_retrain, 16 * 1024, AUTH, false, NULL, false                \
    }

static const lp_route routes_open[] = {CS_ROUTES(false)};
static const lp_route routes_auth[] = {CS_ROUTES(true)};

cs_service_opts cs_service_opts_default(void)
{
    cs_service_opts o = {.db_path = "cs.db", .server = lp_server_opts_default()};
    o.server.name = "lepton-customer-service";
    o.server.port = 8081;
    return o;
}

lp_server *cs_service_server(cs_service *s)
{
    return s->server;
}

void cs_service_free(cs_service *s)
{
    if (!s)
        return;
    lp_server_free(s->server);
    lp_swap_free(s->swap);
    cs_store_close(s->store);
    cs_monitor_free(s->mon);
    free(s->model_path);
    for (size_t i = 0; i < s->n_adapters; i++) {
        free(s->adapter_names[i]);
        free(s->adapter_paths[i]);
    }
    free(s->adapter_names);
    free(s->adapter_paths);
    pthread_mutex_destroy(&s->retrain_mu);
    free(s);
}

static lp_status reload(void *user, lp_err *err)
{
    cs_service *s = user;
    cs_live *l;
    lp_status st = live_load(s, s->model_path, &l, err);
    if (st == LP_OK && (st = lp_swap_set(s->swap, l, err)) != LP_OK)
        live_free(l);
    return st;
}

lp_status cs_service_new(const cs_service_opts *o, cs_service **out, lp_err *err)
{
    *out = NULL;
    cs_service *s = lp_calloc(1, sizeof(*s));
    if (!s || !(s->model_path = lp_strdup(o->model_path))) {
        free(s);
        return lp_err_set(err, LP_ENOMEM, "service: out of memory");
    }
    pthread_mutex_init(&s->retrain_mu, NULL);
    lp_status st = LP_OK;
    if (o->n_adapters) {
        s->adapter_names = lp_calloc(o->n_adapters, sizeof(char *));
        s->adapter_paths = lp_calloc(o->n_adapters, sizeof(char *));
        if (!s->adapter_names || !s->adapter_paths)
            st = lp_err_set(err, LP_ENOMEM, "service: out of memory");
    }
    for (size_t i = 0; st == LP_OK && i < o->n_adapters; i++) {
        const char *spec = o->adapters[i], *eq = strchr(spec, '=');
        size_t nl = eq ? (size_t)(eq - spec) : 0;
        if (!eq || nl == 0 || nl > 128 || !eq[1]) {
            st = lp_err_set(err, LP_EINVAL, "adapter '%s': expected NAME=FILE.lpa (a name of 1 "
                            "to 128 characters)", spec);
            break;
        }
        for (size_t k = 0; k < s->n_adapters && st == LP_OK; k++)
            if (strlen(s->adapter_names[k]) == nl && !strncmp(s->adapter_names[k], spec, nl))
                st = lp_err_set(err, LP_EINVAL, "adapter '%s': the name is given twice", spec);
        if (st != LP_OK)
            break;
        s->adapter_names[i] = lp_strndup(spec, nl);
        s->adapter_paths[i] = lp_strdup(eq + 1);
        s->n_adapters++;
        if (!s->adapter_names[i] || !s->adapter_paths[i])
            st = lp_err_set(err, LP_ENOMEM, "service: out of memory");
    }
    cs_live *b = NULL;
    if (st == LP_OK)
        st = live_load(s, o->model_path, &b, err);
    if (st == LP_OK && !(s->swap = lp_swap_new(b, bot_destroy, NULL))) {
        live_free(b);
        st = lp_err_set(err, LP_ENOMEM, "service: out of memory");
    }
    if (st == LP_OK)
        st = cs_store_open(o->db_path ? o->db_path : "cs.db", o->hashes_only, &s->store, err);
    if (st == LP_OK)
        st = cs_store_claim(s->store, o->db_path ? o->db_path : "cs.db", err);
    if (st == LP_OK)
        st = cs_monitor_new(o->db_path ? o->db_path : "cs.db", &s->mon, err);
    if (st == LP_OK) {
        const lp_route *r = o->n_keys ? routes_auth : routes_open;
        st = lp_server_new(r, sizeof(routes_open) / sizeof(routes_open[0]), s, &o->server,
                           &s->server, err);
    }
    if (st == LP_OK && o->n_keys)
        st = lp_server_set_api_keys(s->server, o->api_keys, o->n_keys, err);
    if (st == LP_OK) {
        lp_server_set_reload(s->server, reload, s);
        lp_metrics *m = lp_server_metrics(s->server);
        lp_metric *f;
        if (lp_metrics_register(m, "cs_turns_total", "Chat turns answered", LP_METRIC_TYPE_COUNTER,
                                NULL, 0, NULL, 0, &f, err) == LP_OK)
            s->turns = lp_metric_series_get(f, NULL);
        if (lp_metrics_register(m, "cs_handoffs_total", "Turns handed off to a human",
                                LP_METRIC_TYPE_COUNTER, NULL, 0, NULL, 0, &f, err) == LP_OK)
            s->handoffs = lp_metric_series_get(f, NULL);
        if (lp_metrics_register(m, "cs_out_of_scope_total", "Turns judged out of scope",
                                LP_METRIC_TYPE_COUNTER, NULL, 0, NULL, 0, &f, err) == LP_OK)
            s->oos = lp_metric_series_get(f, NULL);
    }
    if (st != LP_OK) {
        cs_service_free(s);
        return st;
    }
    *out = s;
    return LP_OK;
}
