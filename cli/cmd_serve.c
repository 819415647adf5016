/*
 * cmd_serve.c - `lepton serve --model MODEL.lpm [--port 8080] [--db monitor.db]`: the model over
 * HTTP. POST /v1/predict {"rows":[{...}]} answers predictions and class probabilities, each with a
 * prediction id; GET /v1/model describes the model and its input schema; POST /v1/feedback stores
 * true labels; GET /v1/monitor reports drift (PSI, KS) and live metrics. Every prediction is
 * logged to SQLite by a background writer; the model reloads on SIGHUP and POST
 * /v1/admin/reload by atomic swap. POST /v1/predict?explain=true adds each row's top 5
 * contributions ("explanation", explainjson.h; rows then also go through a frame for the
 * explainer). OpenAPI: docs/lepton-serve.openapi.yaml.
 *
 * LoRA adapters (--adapter NAME=FILE.lpa, repeatable) are loaded into the served object with
 * the model they point to, so a reload reloads them and they are swapped together. A predict
 * body's "adapter" picks one (null: the base model); without it the default adapter applies,
 * which POST /v1/adapters/default {"name": NAME | null} swaps atomically (its own lp_swap
 * holding the name, resolved per request in the served object). Adapter predictions go
 * through the frame path (lp_lora_predict) and are logged, but not counted in the drift
 * sketch.
 */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "modelserver.h"
#include "explainjson.h"
#include "rowparse.h"

#define MAX_ROWS 10000 /* rows per request */
#define LIVE_WINDOW 10000

typedef struct app {
    lp_swap *swap;
    lp_swap *def;                  /* the default adapter's name (char *; "" = the base) */
    const char *const *ad_specs;   /* --adapter values */
    size_t n_ad;
    lp_predlog *log;
    const char *model_path;
    double psi_threshold;
    lp_metric *scores, *info, *dropped;
    _Atomic uint64_t seq;
    _Atomic uint64_t rows_since_save;
    uint64_t boot;
} app;

static void destroy_served(void *obj, void *user)
{
    (void)user;
    served_free(obj);
}

static void new_id(app *a, char *buf, size_t cap)
{
    /* "p-<boot, 8 hex digits>-<sequence, at least 10 digits>", formatted by hand: this runs
     * once per prediction. The zero padding keeps ids in creation order as strings (boot is
     * the start time), so the prediction log's primary-key index is appended to at its end
     * rather than written all over. */
    static const char hexd[] = "0123456789abcdef";
    uint64_t n = atomic_fetch_add(&a->seq, 1), boot = a->boot & 0xffffffffULL;
    char dec[24];
    size_t nd = 0;
    do {
        dec[nd++] = (char)('0' + n % 10);
        n /= 10;
    } while (n || nd < 10);
    if (cap < 11 + nd + 1) {
        if (cap)
            buf[0] = '\0';
        return;
    }
    buf[0] = 'p';
    buf[1] = '-';
    for (int i = 0; i < 8; i++)
        buf[2 + i] = hexd[(boot >> (28 - 4 * i)) & 0xf];
    buf[10] = '-';
    for (size_t i = 0; i < nd; i++)
        buf[11 + i] = dec[nd - 1 - i];
    buf[11 + nd] = '\0';
}

/* Persist the live drift counts so `lepton monitor` can report offline: now, or (later) with
 * the prediction log's next batch, so that a request thread never waits for SQLite's write
 * lock while the log's writer holds it. */
static void save_sketch_how(app *a, const served *s, bool later)
{
    if (!a->log || !s->sk)
        return;
    lp_buf b;
    lp_buf_init(&b);
    char key[128];
    snprintf(key, sizeof key, "drift:%s", s->version);
    lp_err err;
    if (lp_drift_sketch_save(s->sk, &b, &err) ||
        (later ? lp_predlog_put_state_later : lp_predlog_put_state)(a->log, key, b.data, b.len,
                                                                   &err))
        lp_log_warn("saving the drift counts: %s", lp_err_text(&err));
    lp_buf_free(&b);
}

static void save_sketch(app *a, const served *s)
{
    save_sketch_how(a, s, false);
}

static const lp_field_spec predict_fields[] = {
    {.name = "rows", .type = LP_FIELD_TYPE_ARRAY, .required = true, .max_len = MAX_ROWS},
    {.name = "adapter", .type = LP_FIELD_TYPE_STRING, .max_len = 128},
    {.name = NULL},
};

static void destroy_name(void *obj, void *user)
{
    (void)user;
    free(obj);
}

/* Load the model at path with the configured adapters. */
static lp_status load_all(const app *a, served **out, lp_err *err)
{
    lp_status st = served_load(a->model_path, out, err);
    if (!st && (st = served_load_adapters(*out, a->ad_specs, a->n_ad, err))) {
        served_free(*out);
        *out = NULL;
    }
    return st;
}

/* Predict rows with adapter ad (named name) through the frame path; the reply as h_predict's
 * plus "adapter". */
static lp_status predict_adapter(app *a, const served *s, const lp_lora *ad, const char *name,
                                 const cJSON *rows, lp_res *res)
{
    lp_err err;
    lp_err_clear(&err);
    cJSON *ignored = cJSON_CreateArray();
    lp_frame *f = NULL;
    lp_predictions pr = {0};
    uint64_t t0 = lp_time_ns();
    lp_status st = rows_to_frame(s->m, rows, &f, ignored, &err);
    if (!st)
        st = lp_lora_predict(ad, f, &pr, &err);
    lp_frame_free(f);
    if (st) {
        cJSON_Delete(ignored);
        return lp_http_error_from(res, &err);
    }
    double lat_us = (double)(lp_time_ns() - t0) / 1e3 / (double)(pr.n ? pr.n : 1);
    lp_buf b;
    lp_buf_init(&b);
    lp_buf_put(&b, "{\"model_version\":", 17);
    json_put_str(&b, s->version);
    lp_buf_put(&b, ",\"adapter\":", 11);
    json_put_str(&b, name);
    lp_buf_put(&b, ",\"predictions\":[", 16);
    lp_metric_series *hist = lp_metric_series_get(a->scores, NULL);
    for (size_t i = 0; i < pr.n; i++) {
        char id[64], outbuf[64];
        new_id(a, id, sizeof id);
        const double *o = pr.out + i * pr.k;
        double score;
        const char *output;
        if (i)
            lp_buf_put(&b, ",", 1);
        lp_buf_put(&b, "{\"id\":", 6);
        json_put_str(&b, id);
        lp_buf_put(&b, ",\"prediction\":", 14);
        if (pr.task == LP_TASK_REGRESSION) {
            score = o[0];
            snprintf(outbuf, sizeof outbuf, "%.17g", score);
            output = outbuf;
            lp_json_write_cjson_num(&b, o[0]);
        } else {
            output = lp_lora_class(ad, (size_t)pr.cls[i]);
            score = pr.task == LP_TASK_BINARY ? o[1] : o[pr.cls[i]];
            json_put_str(&b, output);
            lp_buf_put(&b, ",\"probabilities\":{", 18);
            for (size_t c = 0; c < pr.k; c++) {
                if (c)
                    lp_buf_put(&b, ",", 1);
                json_put_str(&b, lp_lora_class(ad, c));
                lp_buf_put(&b, ":", 1);
                lp_json_write_cjson_num(&b, o[c]);
            }
            lp_buf_put(&b, "}", 1);
        }
        lp_buf_put(&b, "}", 1);
        if (a->log) {
            char version[160];
            snprintf(version, sizeof version, "%s+%s", s->version, name);
            lp_pred_record rec = {.id = id, .time = lp_time_wall(), .model_version = version,
                                  .inputs_hash = "", .output = output, .score = score,
                                  .latency_us = lat_us};
            lp_predlog_push(a->log, &rec);
        }
        lp_metric_series_observe(hist, score);
    }
    lp_buf_put(&b, "]", 1);
    if (cJSON_GetArraySize(ignored) > 0) {
        lp_buf_put(&b, ",\"ignored_fields\":[", 19);
        const cJSON *e;
        cJSON_ArrayForEach(e, ignored)
        {
            if (e != ignored->child)
                lp_buf_put(&b, ",", 1);
            json_put_str(&b, e->valuestring);
        }
        lp_buf_put(&b, "]", 1);
    }
    lp_buf_put(&b, "}", 1);
    cJSON_Delete(ignored);
    lp_predictions_clear(&pr);
    lp_status rst = b.failed ? lp_http_error(res, LP_ENOMEM, "out of memory")
                             : lp_res_bytes(res, 200, "application/json", b.data, b.len);
    lp_buf_free(&b);
    return rst;
}

/* The reply {"model_version", "predictions": [{"id", "prediction", "probabilities",
 * "explanation"}], "ignored_fields"} as text, member for member what the cJSON tree printed.
 * expl (nullable) is the row's explanation object. */
static void reply_prediction(lp_buf *b, const lp_model *m, lp_task task, const char *id,
                             const double *out, int32_t cls, size_t k, const cJSON *expl)
{
    lp_buf_put(b, "{\"id\":", 6);
    json_put_str(b, id);
    lp_buf_put(b, ",\"prediction\":", 14);
    if (task == LP_TASK_REGRESSION) {
        lp_json_write_cjson_num(b, out[0]);
    } else {
        json_put_str(b, lp_model_class(m, (size_t)cls));
        lp_buf_put(b, ",\"probabilities\":{", 18);
        for (size_t c = 0; c < k; c++) {
            if (c)
                lp_buf_put(b, ",", 1);
            json_put_str(b, lp_model_class(m, c));
            lp_buf_put(b, ":", 1);
            lp_json_write_cjson_num(b, out[c]);
        }
        lp_buf_put(b, "}", 1);
    }
    if (expl) {
        char *t = cJSON_PrintUnformatted(expl);
        if (t) {
            lp_buf_put(b, ",\"explanation\":", 15);
            lp_buf_put(b, t, strlen(t));
            free(t);
        } else {
            b->failed = true;
        }
    }
    lp_buf_put(b, "}", 1);
}

/* Run the base model of s on rows v[0..n) (parsed into rs; rs's ignored names listed) and
 * answer; ex: the rows' explanations, or NULL; t0: when the request's work began (the logged
 * latency per row). Sets res in every case. */
static lp_status predict_answer(app *a, served *s, row_scratch *rs, const lp_row_view *v,
                                size_t n, const lp_explanation *ex, uint64_t t0, lp_res *res)
{
    lp_err err;
    lp_err_clear(&err);
    size_t k = lp_predictor_n_outputs(s->pred);
    double *out = NULL;
    int32_t *cls = NULL;
    lp_status st = row_scratch_outputs(rs, n, k, &out, &cls, &err);
    if (!st)
        st = lp_predictor_run(s->pred, v, n, row_scratch_predict(rs), out, cls, &err);
    if (st)
        return lp_http_error_from(res, &err);
    double lat_us = (double)(lp_time_ns() - t0) / 1e3 / (double)n;
    lp_task task = lp_model_task(s->m);
    lp_buf *b = row_scratch_reply(rs);
    lp_buf_put(b, "{\"model_version\":", 17);
    json_put_str(b, s->version);
    lp_buf_put(b, ",\"predictions\":[", 16);
    lp_metric_series *hist = lp_metric_series_get(a->scores, NULL);
    long score_j = s->score_j;
    for (size_t i = 0; i < n; i++) {
        char id[64], outbuf[64], hash[33] = "";
        new_id(a, id, sizeof id);
        const double *o = out + i * k;
        double score;
        const char *output;
        if (task == LP_TASK_REGRESSION) {
            score = o[0];
            snprintf(outbuf, sizeof outbuf, "%.17g", score);
            output = outbuf;
        } else {
            output = lp_model_class(s->m, (size_t)cls[i]);
            score = task == LP_TASK_BINARY ? o[1] : o[cls[i]];
        }
        if (i)
            lp_buf_put(b, ",", 1);
        cJSON *expl = ex ? explain_row_json(s->m, ex, i, 5) : NULL;
        reply_prediction(b, s->m, task, id, o, task == LP_TASK_REGRESSION ? 0 : cls[i], k, expl);
        cJSON_Delete(expl);
        if (a->log) {
            row_inputs_hash(rs, s->m, &v[i], hash);
            lp_pred_record rec = {.id = id, .time = lp_time_wall(), .model_version = s->version,
                                  .inputs_hash = hash, .output = output, .score = score,
                                  .latency_us = lat_us};
            lp_predlog_push(a->log, &rec);
        }
        lp_metric_series_observe(hist, score);
        if (s->sk && score_j >= 0)
            lp_drift_sketch_add_num(s->sk, (size_t)score_j, score);
    }
    lp_buf_put(b, "]", 1);
    const char *const *ign;
    size_t n_ign = row_scratch_ignored(rs, &ign);
    if (n_ign) {
        lp_buf_put(b, ",\"ignored_fields\":[", 19);
        for (size_t i = 0; i < n_ign; i++) {
            if (i)
                lp_buf_put(b, ",", 1);
            json_put_str(b, ign[i]);
        }
        lp_buf_put(b, "]", 1);
    }
    lp_buf_put(b, "}", 1);
    served_sketch_rows(s, v, n);
    if (atomic_fetch_add(&a->rows_since_save, n) + n >= 1000) {
        atomic_store(&a->rows_since_save, 0);
        save_sketch_how(a, s, true);
    }
    return b->failed ? lp_http_error(res, LP_ENOMEM, "out of memory")
                     : lp_res_bytes(res, 200, "application/json", b->data, b->len);
}

/* POST /v1/predict's common case straight from the body's bytes (rows_scan): no adapter, no
 * explanations; anything else declines to h_predict. */
static bool fast_predict(const lp_req *req, lp_res *res, void *user)
{
    app *a = user;
    if (lp_req_query(req, "explain"))
        return false;
    uint64_t t0 = lp_time_ns();
    row_scratch *rs = row_scratch_get();
    if (!rs)
        return false;
    lp_swap_ref *dr = lp_swap_acquire(a->def);
    bool base = !((const char *)lp_swap_ref_object(dr))[0];
    lp_swap_release(dr);
    lp_swap_ref *ref = lp_swap_acquire(a->swap);
    served *s = lp_swap_ref_object(ref);
    const lp_row_view *v = NULL;
    size_t n = 0;
    bool ok = base && rows_scan(s->m, req->body, req->body_len, MAX_ROWS, rs, &v, &n);
    if (ok)
        predict_answer(a, s, rs, v, n, NULL, t0, res);
    lp_swap_release(ref);
    row_scratch_trim(rs);
    return ok;
}

static lp_status h_predict(const lp_req *req, lp_res *res, void *user)
{
    app *a = user;
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(req->json, "rows");
    if (cJSON_GetArraySize(rows) == 0)
        return lp_http_error(res, LP_EINVAL, "field 'rows': at least one row is needed");
    uint64_t t0 = lp_time_ns();
    row_scratch *rs = row_scratch_get();
    if (!rs)
        return lp_http_error(res, LP_ENOMEM, "out of memory");
    lp_swap_ref *ref = lp_swap_acquire(a->swap);
    served *s = lp_swap_ref_object(ref);
    /* the adapter: the body's, JSON null = the base, absent = the default */
    const cJSON *adj = cJSON_GetObjectItemCaseSensitive(req->json, "adapter");
    char name[160] = "";
    if (cJSON_IsString(adj)) {
        snprintf(name, sizeof name, "%s", adj->valuestring);
    } else if (!adj) {
        lp_swap_ref *dr = lp_swap_acquire(a->def);
        snprintf(name, sizeof name, "%s", (const char *)lp_swap_ref_object(dr));
        lp_swap_release(dr);
    }
    lp_err err;
    lp_err_clear(&err);
    bool explain = false;
    if (explain_query(lp_req_query(req, "explain"), &explain, &err)) {
        lp_swap_release(ref);
        row_scratch_trim(rs);
        return lp_http_error_from(res, &err);
    }
    if (name[0]) {
        const lp_lora *ad = served_adapter(s, name);
        lp_status ast = explain
                            ? lp_http_error(res, LP_EUNSUPPORTED,
                                            "explain=true is not available with adapter '%.64s': "
                                            "explanations cover the base model (send "
                                            "\"adapter\": null)", name)
                        : ad ? predict_adapter(a, s, ad, name, rows, res)
                           : lp_http_error(res, LP_EINVAL, "field 'adapter': '%.64s' is not a "
                                           "loaded adapter (%zu loaded)", name, s->n_adapters);
        lp_swap_release(ref);
        row_scratch_trim(rs);
        return ast;
    }
    const lp_row_view *v = NULL;
    size_t n = 0;
    lp_status st = rows_parse(s->m, rows, rs, &v, &n, &err);
    lp_explanation ex = {0};
    if (!st && explain) {
        lp_frame *f = NULL;
        cJSON *ign = cJSON_CreateArray(); /* already listed by rows_parse */
        st = rows_to_frame(s->m, rows, &f, ign, &err);
        cJSON_Delete(ign);
        if (!st)
            st = explain_serve_rows(s->m, f, &ex, &err);
        lp_frame_free(f);
    }
    lp_status rst = st ? lp_http_error_from(res, &err)
                       : predict_answer(a, s, rs, v, n, explain ? &ex : NULL, t0, res);
    lp_explanation_clear(&ex);
    lp_swap_release(ref);
    row_scratch_trim(rs);
    return rst;
}

static lp_status h_model(const lp_req *req, lp_res *res, void *user)
{
    (void)req;
    app *a = user;
    lp_swap_ref *ref = lp_swap_acquire(a->swap);
    served *s = lp_swap_ref_object(ref);
    cJSON *out = cJSON_Parse(lp_model_header(s->m));
    if (!out)
        out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "model_version", s->version);
    cJSON *in = cJSON_AddObjectToObject(out, "input_schema");
    cJSON_AddStringToObject(in, "type", "object");
    cJSON *props = cJSON_AddObjectToObject(in, "properties");
    for (size_t j = 0; j < lp_model_n_inputs(s->m); j++) {
        lp_col_kind k = lp_model_input_kind(s->m, j);
        cJSON *pj = cJSON_AddObjectToObject(props, lp_model_input_name(s->m, j));
        const char *type = k == LP_COL_KIND_INTEGER   ? "integer"
                           : k == LP_COL_KIND_FLOAT   ? "number"
                           : k == LP_COL_KIND_BOOL    ? "boolean"
                                                      : "string";
        cJSON_AddStringToObject(pj, "type", type);
        if (k == LP_COL_KIND_DATETIME)
            cJSON_AddStringToObject(pj, "format", "date-time");
        cJSON_AddBoolToObject(pj, "nullable", true);
    }
    lp_swap_release(ref);
    return lp_res_json(res, 200, out);
}

/* "label" may be a string, a number or a boolean, so only "id" has a spec; other members are
 * checked in the handler. */
static const lp_field_spec feedback_fields[] = {
    {.name = "id", .type = LP_FIELD_TYPE_STRING, .required = true, .max_len = 200},
    {.name = NULL},
};

static lp_status h_feedback(const lp_req *req, lp_res *res, void *user)
{
    app *a = user;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(req->json, "id");
    const cJSON *label = cJSON_GetObjectItemCaseSensitive(req->json, "label");
    char buf[64];
    const char *lab;
    if (cJSON_IsString(label)) {
        lab = label->valuestring;
    } else if (cJSON_IsNumber(label)) {
        snprintf(buf, sizeof buf, "%.17g", label->valuedouble);
        lab = buf;
    } else if (cJSON_IsBool(label)) {
        lab = cJSON_IsTrue(label) ? "true" : "false";
    } else {
        return lp_http_error(res, LP_EINVAL, "field 'label': expected a string or a number");
    }
    for (const cJSON *m = req->json->child; m; m = m->next)
        if (strcmp(m->string, "id") && strcmp(m->string, "label"))
            return lp_http_error(res, LP_EINVAL, "unknown field '%.60s'", m->string);
    if (!a->log)
        return lp_http_error(res, LP_ESTATE, "feedback needs the prediction log (--db)");
    lp_err err;
    lp_err_clear(&err);
    if (lp_predlog_feedback(a->log, id->valuestring, lab, &err))
        return lp_http_error_from(res, &err);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "id", id->valuestring);
    cJSON_AddStringToObject(out, "label", lab);
    cJSON_AddBoolToObject(out, "stored", true);
    return lp_res_json(res, 200, out);
}


static cJSON *num_or_null(double v) { return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(); }

static lp_status h_monitor(const lp_req *req, lp_res *res, void *user)
{
    (void)req;
    app *a = user;
    lp_swap_ref *ref = lp_swap_acquire(a->swap);
    served *s = lp_swap_ref_object(ref);
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "model_version", s->version);
    cJSON_AddNumberToObject(out, "psi_threshold", a->psi_threshold);
    cJSON *feats = cJSON_AddArrayToObject(out, "drift");
    save_sketch(a, s);
    if (s->sk) {
        size_t n = lp_drift_nfeatures(s->ref);
        lp_drift_stat *st = calloc(n ? n : 1, sizeof *st);
        if (st) {
            lp_drift_compare(s->sk, a->psi_threshold, st);
            for (size_t j = 0; j < n; j++) {
                cJSON *o = cJSON_CreateObject();
                cJSON_AddStringToObject(o, "feature", st[j].name);
                cJSON_AddNumberToObject(o, "n", (double)st[j].n);
                cJSON_AddItemToObject(o, "psi", num_or_null(st[j].psi));
                cJSON_AddItemToObject(o, "ks", num_or_null(st[j].ks));
                cJSON_AddBoolToObject(o, "drifted", st[j].drifted);
                if (!strcmp(st[j].name, "_score"))
                    cJSON_AddItemToObject(out, "score_drift", o);
                else
                    cJSON_AddItemToArray(feats, o);
            }
            free(st);
        }
    }
    if (a->log) {
        lp_live_metrics lm;
        const char *positive =
            lp_model_task(s->m) == LP_TASK_BINARY ? lp_model_class(s->m, 1) : NULL;
        cJSON *live = cJSON_AddObjectToObject(out, "live");
        if (lp_predlog_live(a->log, LIVE_WINDOW, positive, &lm, NULL) == LP_OK) {
            cJSON_AddNumberToObject(live, "labelled", (double)lm.n);
            cJSON_AddItemToObject(live, "accuracy", num_or_null(lm.accuracy));
            cJSON_AddItemToObject(live, "auroc", num_or_null(lm.auroc));
            cJSON_AddItemToObject(live, "rmse", num_or_null(lm.rmse));
        }
        cJSON_AddNumberToObject(out, "predictions_logged", (double)lp_predlog_written(a->log));
        cJSON_AddNumberToObject(out, "predictions_dropped", (double)lp_predlog_dropped(a->log));
    }
    lp_swap_release(ref);
    return lp_res_json(res, 200, out);
}

static lp_status reload(void *user, lp_err *err)
{
    app *a = user;
    served *s = NULL;
    lp_status st = load_all(a, &s, err);
    if (st)
        return st;
    lp_swap_ref *old = lp_swap_acquire(a->swap);
    save_sketch(a, lp_swap_ref_object(old));
    lp_swap_release(old);
    st = lp_swap_set(a->swap, s, err);
    if (st) {
        served_free(s);
        return st;
    }
    lp_log_info("reloaded %s as version %s", a->model_path, s->version);
    return LP_OK;
}

static void collect(lp_metrics *m, void *user)
{
    (void)m;
    app *a = user;
    if (a->log)
        lp_metric_series_set(lp_metric_series_get(a->dropped, NULL),
                             (double)lp_predlog_dropped(a->log));
    lp_swap_ref *ref = lp_swap_acquire(a->swap);
    served *s = lp_swap_ref_object(ref);
    const char *lv[1] = {s->version};
    lp_metric_series_set(lp_metric_series_get(a->info, lv), 1);
    lp_swap_release(ref);
}

static const lp_field_spec default_fields[] = {
    {.name = "name", .type = LP_FIELD_TYPE_STRING, .max_len = 128},
    {.name = NULL},
};

/* POST /v1/adapters/default {"name": NAME | null}: swap the default adapter (null or "" = the
 * base). The name must be a loaded adapter. */
static lp_status h_default(const lp_req *req, lp_res *res, void *user)
{
    app *a = user;
    const cJSON *nj = cJSON_GetObjectItemCaseSensitive(req->json, "name");
    if (nj && !cJSON_IsNull(nj) && !cJSON_IsString(nj))
        return lp_http_error(res, LP_EINVAL, "field 'name': expected a string or null");
    const char *name = cJSON_IsString(nj) ? nj->valuestring : "";
    lp_swap_ref *ref = lp_swap_acquire(a->swap);
    const served *s = lp_swap_ref_object(ref);
    bool known = !name[0] || served_adapter(s, name);
    size_t n = s->n_adapters;
    lp_swap_release(ref);
    if (!known)
        return lp_http_error(res, LP_EINVAL, "field 'name': '%.64s' is not a loaded adapter (%zu "
                             "loaded)", name, n);
    lp_err err;
    lp_err_clear(&err);
    char *copy = lp_strdup(name);
    lp_status st = copy ? lp_swap_set(a->def, copy, &err)
                        : lp_err_set(&err, LP_ENOMEM, "out of memory");
    if (st) {
        free(copy);
        return lp_http_error_from(res, &err);
    }
    cJSON *out = cJSON_CreateObject();
    if (name[0])
        cJSON_AddStringToObject(out, "default", name);
    else
        cJSON_AddNullToObject(out, "default");
    cJSON_AddNumberToObject(out, "generation", (double)lp_swap_generation(a->def));
    return lp_res_json(res, 200, out);
}

/* GET /v1/adapters: the loaded adapters and the default. */
static lp_status h_adapters(const lp_req *req, lp_res *res, void *user)
{
    (void)req;
    app *a = user;
    cJSON *out = cJSON_CreateObject();
    lp_swap_ref *dr = lp_swap_acquire(a->def);
    const char *d = lp_swap_ref_object(dr);
    if (d[0])
        cJSON_AddStringToObject(out, "default", d);
    else
        cJSON_AddNullToObject(out, "default");
    lp_swap_release(dr);
    lp_swap_ref *ref = lp_swap_acquire(a->swap);
    const served *s = lp_swap_ref_object(ref);
    cJSON *arr = cJSON_AddArrayToObject(out, "adapters");
    for (size_t i = 0; i < s->n_adapters; i++) {
        const lp_lora *ad = s->adapters[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", s->adapter_names[i]);
        cJSON_AddNumberToObject(o, "rank", (double)lp_lora_rank(ad));
        cJSON_AddNumberToObject(o, "params", (double)lp_lora_n_params(ad));
        cJSON_AddNumberToObject(o, "new_classes", (double)lp_lora_n_new_classes(ad));
        cJSON_AddStringToObject(o, "base_sha256", lp_lora_base_sha256(ad));
        cJSON_AddItemToArray(arr, o);
    }
    lp_swap_release(ref);
    return lp_res_json(res, 200, out);
}

static const lp_route routes[] = {
    {.method = "POST", .path = "/v1/adapters/default", .handler = h_default,
     .fields = default_fields, .auth = true},
    {.method = "GET", .path = "/v1/adapters", .handler = h_adapters},
    {.method = "POST", .path = "/v1/predict", .handler = h_predict, .fields = predict_fields,
     .fast = fast_predict},
    {.method = "GET", .path = "/v1/model", .handler = h_model},
    {.method = "POST", .path = "/v1/feedback", .handler = h_feedback, .fields = feedback_fields,
     .allow_unknown = true, .body_limit = 64 * 1024},
    {.method = "GET", .path = "/v1/monitor", .handler = h_monitor},
};

int cmd_serve(int argc, char **argv)
{
    const char *model = NULL, *db = NULL, *keys = NULL, *host = "127.0.0.1";
    long port = 8080, threads = 0;
    double psi = 0.2;
    arg_list adapters = {0};
    const arg_spec opts[] = {
        {"adapter", ARG_LIST, &adapters, "NAME=FILE.lpa",
         "a LoRA adapter for the model, picked per request by \"adapter\" (repeatable)"},
        {"model", ARG_STR, &model, "MODEL.lpm", "the model to serve"},
        {"port", ARG_INT, &port, "PORT", "TCP port (default 8080; 0 picks a free one)", 0, 65535},
        {"host", ARG_STR, &host, "ADDR", "address to bind (default 127.0.0.1)"},
        {"db", ARG_STR, &db, "DB", "SQLite prediction log and feedback (default: none)"},
        {"api-key-file", ARG_STR, &keys, "FILE", "keys for the admin routes, one per line"},
        {"threads", ARG_INT, &threads, "N", "request threads (default: the cores)", 0, 1024},
        {"psi-threshold", ARG_DOUBLE, &psi, "X", "flag drift above this PSI (default 0.2)", 0,
         100},
    };
    const arg_cmd cmd = {"serve", "--model MODEL.lpm [--port 8080] [--db monitor.db]",
                         "Serve a model over HTTP with monitoring.", opts,
                         sizeof opts / sizeof opts[0], 0, 0};
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, NULL, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (!model) {
        fprintf(stderr, "lepton serve: --model is required\n");
        return 2;
    }
    lp_err err;
    lp_err_clear(&err);
    app a = {.model_path = model, .psi_threshold = psi, .boot = (uint64_t)lp_time_wall(),
             .ad_specs = adapters.v, .n_ad = adapters.n};
    served *s = NULL;
    lp_server *srv = NULL;
    char **k = NULL;
    size_t nk = 0;
    lp_status st = load_all(&a, &s, &err);
    if (!st && !(a.swap = lp_swap_new(s, destroy_served, NULL))) {
        served_free(s);
        st = lp_err_set(&err, LP_ENOMEM, "out of memory");
    }
    char *def0 = st ? NULL : lp_strdup("");
    if (!st && (!def0 || !(a.def = lp_swap_new(def0, destroy_name, NULL)))) {
        free(def0);
        st = lp_err_set(&err, LP_ENOMEM, "out of memory");
    }
    if (!st && db)
        st = lp_predlog_open(db, NULL, &a.log, &err);
    lp_server_opts so = lp_server_opts_default();
    so.port = (unsigned)port;
    so.host = host;
    so.threads = (unsigned)threads;
    so.name = "lepton-serve";
    so.access_log = true;
    if (!st)
        st = lp_server_new(routes, sizeof routes / sizeof routes[0], &a, &so, &srv, &err);
    if (!st && keys && !(st = lp_api_keys_load(keys, &k, &nk, &err)))
        st = lp_server_set_api_keys(srv, k, nk, &err);
    if (!st) {
        lp_server_set_reload(srv, reload, &a);
        lp_metrics *mr = lp_server_metrics(srv);
        static const double buckets[] = {0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95};
        const char *vl[1] = {"version"};
        st = lp_metrics_register(mr, "lepton_prediction_score", "Scores of served predictions",
                                 LP_METRIC_TYPE_HISTOGRAM, NULL, 0, buckets, 11, &a.scores, &err);
        if (!st)
            st = lp_metrics_register(mr, "lepton_model_info", "The served model version",
                                     LP_METRIC_TYPE_GAUGE, vl, 1, NULL, 0, &a.info, &err);
        if (!st)
            st = lp_metrics_register(mr, "lepton_prediction_log_dropped_total",
                                     "Predictions the log could not keep up with",
                                     LP_METRIC_TYPE_COUNTER, NULL, 0, NULL, 0, &a.dropped, &err);
        if (!st)
            st = lp_metrics_on_collect(mr, collect, &a, &err);
    }
    if (!st)
        st = lp_server_start(srv, &err);
    if (!st) {
        lp_server_set_ready(srv, true);
        /* tests and scripts read the bound port from this line */
        printf("lepton serve: %s (version %s) on http://%s:%u\n", model, s->version, host,
               lp_server_port(srv));
        fflush(stdout);
        st = lp_server_run_until_signal(srv, &err);
    }
    if (st)
        rc = cli_fail("serve", &err);
    lp_server_free(srv);
    if (a.swap) {
        lp_swap_ref *last = lp_swap_acquire(a.swap);
        save_sketch(&a, lp_swap_ref_object(last));
        lp_swap_release(last);
    }
    lp_predlog_close(a.log, NULL);
    lp_swap_free(a.swap);
    lp_swap_free(a.def);
    lp_api_keys_free(k);
    arg_list_free(&adapters);
    return rc;
}
