/*
 * dx_service.c - the HTTP API of lepton-diagnosis (dx.h, docs/diagnosis.openapi.yaml):
 * POST /v1/diagnose (text and/or image -> calibrated differential, abstention, explanation,
 * audit id), GET /v1/audit/{id}, GET /v1/model-card; the shared endpoints (healthz, readyz,
 * metrics) come from libcore's serve layer.
 *
 * One request, one thread: no OpenMP here (the CNN's batch of one runs single-threaded as
 * called from a server thread; integrated gradients hold a mutex because they use the net's
 * scratch buffers). An answer is written to the audit trail before it is sent; a request that
 * fails (4xx / 5xx) writes nothing. Input limits: the body 8 MiB, an image 4 megapixels
 * (413 above), gray or RGB PNG / JPEG (converted to the model's channels; CMYK JPEG 400).
 *
 * Monitoring: POST /v1/feedback stores the label a clinician confirmed for an audit id (its own
 * table, the chain untouched); GET /v1/monitor reports, per modality, the drift of each
 * answer's calibrated top probability and OOD score (before fusion) against the model's
 * validation answers at training time, counted since this process started, and the live
 * top-1 accuracy over the latest MON_WINDOW answers with feedback (abstentions included: the
 * differential's first label is what a clinician saw first).
 */
#include "dx.h"

#include <errno.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


#define DX_MAX_PIXELS (4u << 20) /* 4 megapixels: a larger upload is refused (413) */
#define DX_IG_STEPS 32
#define DX_TOP_K 5
#define MON_WINDOW 10000
#define PSI_THRESHOLD 0.2

struct dx_service {
    dx_image_model *img; /* either may be NULL, not both */
    dx_text_model *txt;
    dx_audit *audit;
    bool store_text;
    pthread_mutex_t ig_mu; /* integrated gradients use the net's scratch buffers */
    lp_drift_sketch *sk_img, *sk_txt; /* live counts against each model's reference, or NULL */
};
typedef struct dx_service app;

/* Decode standard base64 (whitespace ignored); NULL on a bad character or length. */
static uint8_t *b64_decode(const char *s, size_t len, size_t *out_len)
{
    uint8_t *out = malloc(len / 4 * 3 + 3);
    if (!out)
        return NULL;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        int v;
        if (ch >= 'A' && ch <= 'Z')
            v = ch - 'A';
        else if (ch >= 'a' && ch <= 'z')
            v = ch - 'a' + 26;
        else if (ch >= '0' && ch <= '9')
            v = ch - '0' + 52;
        else if (ch == '+')
            v = 62;
        else if (ch == '/')
            v = 63;
        else if (ch == '=') {
            pad++;
            continue;
        } else if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
            continue;
        else {
            free(out);
            return NULL;
        }
        if (pad) {
            free(out);
            return NULL;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (uint8_t)(acc >> bits);
        }
    }
    if (pad > 2 || bits >= 6) {
        free(out);
        return NULL;
    }
    *out_len = n;
    return out;
}

static char *b64_encode(const uint8_t *d, size_t n)
{
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc((n + 2) / 3 * 4 + 1);
    if (!o)
        return NULL;
    size_t j = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) |
                     (i + 2 < n ? d[i + 2] : 0);
        o[j++] = T[v >> 18 & 63];
        o[j++] = T[v >> 12 & 63];
        o[j++] = i + 1 < n ? T[v >> 6 & 63] : '=';
        o[j++] = i + 2 < n ? T[v & 63] : '=';
    }
    o[j] = '\0';
    return o;
}

/* The decoded, resized image (c h w) of a base64 PNG / JPEG; *hash gets its SHA-256. */
static lp_status decode_image(const app *a, const char *b64, float **x, char hash[65],
                              lp_err *err)
{
    size_t raw_len;
    uint8_t *raw = b64_decode(b64, strlen(b64), &raw_len);
    if (!raw)
        return lp_err_set(err, LP_EPARSE, "'image' is not valid base64");
    lp_image img, rs;
    lp_image_opts io = lp_image_opts_default();
    size_t c, h, w;
    dx_image_model_shape(a->img, &c, &h, &w);
    io.channels = c == 3 ? 3 : 1; /* gray or RGB input is converted to the model's channels */
    io.max_pixels = DX_MAX_PIXELS;
    io.min_w = w, io.min_h = h; /* as the folder reader decodes training JPEGs */
    lp_status st = lp_image_decode(raw, raw_len, "'image'", &io, &img, err);
    lp_sha256_hex(raw, raw_len, hash);
    free(raw);
    if (st)
        return st;
    st = lp_image_resize(&img, w, h, &rs, err);
    lp_image_clear(&img);
    if (st)
        return st;
    *x = malloc(c * h * w * sizeof **x);
    if (*x)
        lp_image_to_chw(&rs, *x);
    lp_image_clear(&rs);
    return *x ? LP_OK : lp_err_set(err, LP_ENOMEM, "out of memory");
}

/* The image's explanation: IG heat map (base64 PNG) into expl, a summary into sum. */
static lp_status explain_image(app *a, const float *x, size_t cls, cJSON *expl, cJSON *sum,
                               lp_err *err)
{
    size_t c, h, w;
    dx_image_model_shape(a->img, &c, &h, &w);
    float *attr = malloc(c * h * w * sizeof *attr);
    if (!attr)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    double fx = 0, fb = 0;
    pthread_mutex_lock(&a->ig_mu);
    lp_status st = dx_image_ig(a->img, x, (int)cls, DX_IG_STEPS, attr, &fx, &fb, err);
    pthread_mutex_unlock(&a->ig_mu);
    lp_buf png;
    lp_buf_init(&png);
    if (!st)
        st = dx_heatmap_png(x, attr, c, h, w, &png, err);
    if (!st) {
        double attr_sum = 0;
        for (size_t i = 0; i < c * h * w; i++)
            attr_sum += attr[i];
        char *hm = b64_encode(png.data, png.len);
        cJSON_AddStringToObject(expl, "heatmap_png", hm ? hm : "");
        free(hm);
        cJSON *im = cJSON_AddObjectToObject(sum, "image");
        cJSON_AddStringToObject(im, "method", "integrated gradients, 32 steps, black baseline");
        cJSON_AddStringToObject(im, "class", dx_image_model_class(a->img, cls));
        cJSON_AddNumberToObject(im, "attribution_sum", attr_sum);
        cJSON_AddNumberToObject(im, "logit_minus_baseline", fx - fb);
    }
    lp_buf_free(&png);
    free(attr);
    return st;
}

/* The text's explanation: tokens into expl, a summary (top 5 by |contribution|) into sum. */
static lp_status explain_text(app *a, const char *text, size_t cls, cJSON *expl, cJSON *sum,
                              lp_err *err)
{
    dx_text_expl te;
    lp_status st = dx_text_explain(a->txt, text, cls, &te, err);
    if (st)
        return st;
    cJSON *toks = cJSON_AddArrayToObject(expl, "tokens");
    double total = 0;
    for (size_t i = 0; i < te.n; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "token", te.tokens[i].token);
        cJSON_AddNumberToObject(t, "contribution", te.tokens[i].contribution);
        cJSON_AddItemToArray(toks, t);
        total += te.tokens[i].contribution;
    }
    cJSON *tx = cJSON_AddObjectToObject(sum, "text");
    cJSON_AddStringToObject(tx, "method", "exact linear contributions coef * tf-idf per term "
                                          "(bigrams split equally between their words)");
    cJSON_AddStringToObject(tx, "class", dx_text_model_class(a->txt, cls));
    cJSON_AddNumberToObject(tx, "base", te.base);
    cJSON_AddNumberToObject(tx, "contribution_sum", total);
    cJSON_AddNumberToObject(tx, "logit", te.logit);
    cJSON *top = cJSON_AddArrayToObject(tx, "top_tokens");
    bool used[64] = {0};
    /* the 5 strongest (|contribution|) for the audit row: vocabulary words only (a word
     * outside it contributes 0 and may be a name or a number: it is never stored) */
    for (int r = 0; r < 5; r++) {
        size_t best = te.n;
        for (size_t i = 0; i < te.n && i < 64; i++)
            if (!used[i] && te.tokens[i].contribution != 0 &&
                (best == te.n ||
                 fabs(te.tokens[i].contribution) > fabs(te.tokens[best].contribution)))
                best = i;
        if (best == te.n)
            break;
        used[best] = true;
        cJSON_AddItemToArray(top, cJSON_CreateString(te.tokens[best].token));
    }
    dx_text_expl_clear(&te);
    return LP_OK;
}

/* Class index of label in the text model, or -1. */
static long text_class(const app *a, const char *label)
{
    for (size_t j = 0; j < dx_text_model_classes(a->txt); j++)
        if (strcmp(dx_text_model_class(a->txt, j), label) == 0)
            return (long)j;
    return -1;
}

static long image_class(const app *a, const char *label)
{
    for (size_t j = 0; j < dx_image_model_classes(a->img); j++)
        if (strcmp(dx_image_model_class(a->img, j), label) == 0)
            return (long)j;
    return -1;
}

/* POST /v1/diagnose: {"text"?, "image"?, "explain"? (default true)}. */
/* Count one modality's answer in its drift sketch (features 0 and 1 of dx_drift_fit). */
static void mon_count(lp_drift_sketch *sk, const dx_answer *ans)
{
    if (!sk)
        return;
    lp_drift_sketch_add_num(sk, 0, ans->probs[ans->order[0]]);
    lp_drift_sketch_add_num(sk, 1, ans->ood);
}

static lp_status h_diagnose(const lp_req *req, lp_res *res, void *user)
{
    app *a = user;
    omp_set_num_threads(1); /* this thread's ICV: the CNN's ops run without forking a team */
    if (!cJSON_IsObject(req->json))
        return lp_http_error(res, LP_EINVAL, "body must be a JSON object");
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(req->json, "text");
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(req->json, "image");
    const cJSON *want = cJSON_GetObjectItemCaseSensitive(req->json, "explain");
    if ((text && !cJSON_IsString(text)) || (image && !cJSON_IsString(image)))
        return lp_http_error(res, LP_EINVAL, "'text' and 'image' must be strings");
    if (want && !cJSON_IsBool(want))
        return lp_http_error(res, LP_EINVAL, "'explain' must be true or false");
    bool explain = !want || cJSON_IsTrue(want);
    if (!text && !image)
        return lp_http_error(res, LP_EINVAL, "give 'text' (symptoms) and/or 'image' (base64 PNG "
                                             "or JPEG)");
    if (text && lp_utf8_blank(text->valuestring, strlen(text->valuestring)))
        return lp_http_error(res, LP_EINVAL, "'text' is empty");
    if (image && !a->img)
        return lp_http_error(res, LP_EUNSUPPORTED, "'image' given but this service has no image "
                                                   "model (start it with --image-model)");
    if (text && !a->txt)
        return lp_http_error(res, LP_EUNSUPPORTED, "'text' given but this service has no text "
                                                   "model (start it with --text-model)");
    lp_err err;
    lp_status st = LP_OK;
    dx_answer ai, at, ans;
    float *x = NULL;
    char ih[65] = "", th[65] = "";
    if (text)
        st = dx_text_predict(a->txt, text->valuestring, &at, &err);
    if (!st && image)
        st = decode_image(a, image->valuestring, &x, ih, &err);
    if (!st && image)
        st = dx_image_predict(a->img, x, 1, &ai, &err);
    size_t dropped = 0;
    if (!st)
        st = text && image ? dx_fuse(&ai, &at, dx_image_model_abstain_p(a->img), &ans, &dropped,
                                     &err)
                           : LP_OK;
    if (!st && !(text && image))
        ans = text ? at : ai;
    cJSON *expl = cJSON_CreateObject(), *sum = cJSON_CreateObject();
    if (!st && explain && image) {
        long c = image_class(a, ans.labels[ans.order[0]]);
        st = explain_image(a, x, (size_t)c, expl, sum, &err);
    }
    if (!st && explain && text) {
        long c = text_class(a, ans.labels[ans.order[0]]);
        st = explain_text(a, text->valuestring, (size_t)c, expl, sum, &err);
    }
    free(x);
    if (st) {
        cJSON_Delete(expl);
        cJSON_Delete(sum);
        return lp_http_error_from(res, &err);
    }
    if (!cJSON_HasObjectItem(expl, "tokens"))
        cJSON_AddArrayToObject(expl, "tokens");
    if (!cJSON_HasObjectItem(expl, "heatmap_png"))
        cJSON_AddNullToObject(expl, "heatmap_png");
    if (!explain)
        cJSON_AddStringToObject(sum, "skipped", "explain=false");
    cJSON *diff = cJSON_CreateArray();
    for (size_t t = 0; t < ans.k && t < DX_TOP_K; t++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "label", ans.labels[ans.order[t]]);
        cJSON_AddNumberToObject(e, "probability", ans.probs[ans.order[t]]);
        cJSON_AddItemToArray(diff, e);
    }
    cJSON *abst = cJSON_CreateObject();
    cJSON_AddBoolToObject(abst, "value", ans.abstain);
    if (ans.abstain)
        cJSON_AddStringToObject(abst, "reason", ans.reason);
    else
        cJSON_AddNullToObject(abst, "reason");
    cJSON_AddNumberToObject(abst, "ood_score", ans.ood);
    char version[96];
    snprintf(version, sizeof version, "%s%s%s", image ? dx_image_model_version(a->img) : "",
             image && text ? "+" : "", text ? dx_text_model_version(a->txt) : "");
    if (text)
        lp_sha256_hex(text->valuestring, strlen(text->valuestring), th);
    char in_hash[160];
    snprintf(in_hash, sizeof in_hash, "%s%s%s%s%s", image ? "image:" : "", ih,
             image && text ? " " : "", text ? "text:" : "", th);
    char *diff_s = cJSON_PrintUnformatted(diff), *abst_s = cJSON_PrintUnformatted(abst);
    char *sum_s = cJSON_PrintUnformatted(sum);
    char *stored = text && a->store_text ? dx_redact(text->valuestring) : NULL;
    int64_t id = 0;
    st = diff_s && abst_s && sum_s
             ? dx_audit_append(a->audit, version, in_hash, stored, diff_s, sum_s, abst_s, &id,
                               &err)
             : lp_err_set(&err, LP_ENOMEM, "out of memory");
    free(stored);
    cJSON_free(diff_s);
    cJSON_free(abst_s);
    cJSON_free(sum_s);
    if (st) {
        cJSON_Delete(diff);
        cJSON_Delete(abst);
        cJSON_Delete(expl);
        cJSON_Delete(sum);
        return lp_http_error_from(res, &err);
    }
    if (image)
        mon_count(a->sk_img, &ai);
    if (text)
        mon_count(a->sk_txt, &at);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "differential", diff);
    cJSON_AddItemToObject(body, "abstain", abst);
    cJSON_AddItemToObject(expl, "summary", sum);
    cJSON_AddItemToObject(body, "explanation", expl);
    if (text && image) {
        cJSON *fu = cJSON_AddObjectToObject(body, "fusion");
        cJSON_AddStringToObject(fu, "method", "product of the calibrated image and text "
                                              "probabilities over their shared labels, "
                                              "renormalised");
        cJSON_AddNumberToObject(fu, "shared_labels", (double)ans.k);
        cJSON_AddNumberToObject(fu, "dropped_labels", (double)dropped);
    }
    cJSON_AddStringToObject(body, "model_version", version);
    cJSON_AddNumberToObject(body, "audit_id", (double)id);
    cJSON_AddStringToObject(body, "statement", DX_STATEMENT);
    return lp_res_json(res, 200, body);
}

static lp_status h_audit(const lp_req *req, lp_res *res, void *user)
{
    app *a = user;
    const char *ids = lp_req_param(req, "id");
    char *end = NULL;
    /* digits only: strtoll alone would take " 1", "+1" and "\n1" for 1 and clamp an overflow */
    errno = 0;
    long long id = ids && *ids >= '1' && *ids <= '9' ? strtoll(ids, &end, 10) : 0;
    if (!ids || !*ids || id < 1 || *end || errno == ERANGE)
        return lp_http_error(res, LP_EINVAL, "audit id '%s' is not a positive integer",
                             ids ? ids : "");
    char *json;
    lp_err err;
    if (dx_audit_get(a->audit, id, &json, &err))
        return lp_http_error_from(res, &err);
    lp_status st = lp_res_bytes(res, 200, "application/json", json, strlen(json));
    cJSON_free(json);
    return st;
}

/* GET /v1/model-card: {"image": card, "text": card} for the loaded models. */
static lp_status h_card(const lp_req *req, lp_res *res, void *user)
{
    (void)req;
    app *a = user;
    cJSON *body = cJSON_CreateObject();
    if (a->img) {
        cJSON *c = cJSON_Parse(dx_image_model_card(a->img));
        cJSON_AddStringToObject(c, "model_version", dx_image_model_version(a->img));
        cJSON_AddItemToObject(body, "image", c);
    }
    if (a->txt) {
        cJSON *c = cJSON_Parse(dx_text_model_card(a->txt));
        cJSON_AddStringToObject(c, "model_version", dx_text_model_version(a->txt));
        cJSON_AddItemToObject(body, "text", c);
    }
    if (a->img && a->txt)
        cJSON_AddStringToObject(body, "fusion",
                                "image + text: product of the calibrated probabilities over the "
                                "labels both models share, renormalised");
    cJSON_AddStringToObject(body, "statement", DX_STATEMENT);
    return lp_res_json(res, 200, body);
}


static const lp_field_spec FEEDBACK_FIELDS[] = {
    {.name = "audit_id", .type = LP_FIELD_TYPE_INTEGER, .required = true, .ranged = true,
     .min = 1, .max = 9007199254740991.0}, /* 2^53 - 1: beyond, ids round */
    {.name = "label", .type = LP_FIELD_TYPE_STRING, .required = true, .max_len = 200},
    {.name = NULL},
};

/* POST /v1/feedback {"audit_id": N, "label": "..."}: the confirmed label of an answer. */
static lp_status h_feedback(const lp_req *req, lp_res *res, void *user)
{
    app *a = user;
    for (const cJSON *m = req->json->child; m; m = m->next)
        if (strcmp(m->string, "audit_id") && strcmp(m->string, "label"))
            return lp_http_error(res, LP_EINVAL, "unknown field '%.60s' (expected audit_id and "
                                                 "label)", m->string);
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(req->json, "audit_id");
    const char *label = cJSON_GetObjectItemCaseSensitive(req->json, "label")->valuestring;
    if (lp_utf8_blank(label, strlen(label)))
        return lp_http_error(res, LP_EINVAL, "field 'label': expected the confirmed label, "
                                             "got an empty text");
    lp_err err;
    int64_t aid = (int64_t)id->valuedouble;
    if (dx_audit_feedback(a->audit, aid, label, &err))
        return lp_http_error_from(res, &err);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddNumberToObject(body, "audit_id", (double)aid);
    cJSON_AddStringToObject(body, "label", label);
    cJSON_AddBoolToObject(body, "stored", true);
    return lp_res_json(res, 200, body);
}

static cJSON *num_or_null(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

/* The drift rows of one modality ("image:top_probability", ...) into arr; the first (top
 * probability) also into *primary when that is still NULL. */
static void mon_drift(lp_drift_sketch *sk, const char *modality, cJSON *arr, cJSON **primary)
{
    lp_drift_stat st[2];
    lp_drift_compare(sk, PSI_THRESHOLD, st);
    for (size_t j = 0; j < 2; j++) {
        cJSON *o = cJSON_CreateObject();
        char name[64];
        snprintf(name, sizeof name, "%s:%s", modality, st[j].name);
        cJSON_AddStringToObject(o, "feature", name);
        cJSON_AddNumberToObject(o, "n", (double)st[j].n);
        cJSON_AddItemToObject(o, "psi", num_or_null(st[j].psi));
        cJSON_AddItemToObject(o, "ks", num_or_null(st[j].ks));
        cJSON_AddBoolToObject(o, "drifted", st[j].drifted);
        if (j == 0 && !*primary)
            *primary = cJSON_Duplicate(o, true);
        cJSON_AddItemToArray(arr, o);
    }
}

static lp_status h_monitor(const lp_req *req, lp_res *res, void *user)
{
    (void)req;
    app *a = user;
    cJSON *body = cJSON_CreateObject();
    char version[96];
    dx_service_version(a, version, sizeof version);
    cJSON_AddStringToObject(body, "model_version", version);
    cJSON_AddNumberToObject(body, "psi_threshold", PSI_THRESHOLD);
    cJSON *arr = cJSON_AddArrayToObject(body, "drift");
    cJSON *primary = NULL;
    if (a->sk_img)
        mon_drift(a->sk_img, "image", arr, &primary);
    if (a->sk_txt)
        mon_drift(a->sk_txt, "text", arr, &primary);
    if (primary)
        cJSON_AddItemToObject(body, "score_drift", primary);
    if ((a->img && !a->sk_img) || (a->txt && !a->sk_txt))
        cJSON_AddStringToObject(body, "reason",
                                "a model has no drift reference (saved before monitoring): "
                                "retrain it with lepton-diagnosis train to get one");
    size_t n = 0, right = 0;
    lp_err err;
    if (dx_audit_live(a->audit, MON_WINDOW, &n, &right, &err)) {
        cJSON_Delete(body);
        return lp_http_error_from(res, &err);
    }
    cJSON *live = cJSON_AddObjectToObject(body, "live");
    cJSON_AddNumberToObject(live, "labelled", (double)n);
    cJSON_AddItemToObject(live, "accuracy", num_or_null(n ? (double)right / (double)n : NAN));
    cJSON_AddNullToObject(live, "auroc");
    cJSON_AddNullToObject(live, "rmse");
    cJSON_AddStringToObject(live, "accuracy_of", "top-1 label of the differential vs the "
                                                 "confirmed label (POST /v1/feedback)");
    return lp_res_json(res, 200, body);
}

static const lp_route ROUTES[] = {
    {"POST", "/v1/diagnose", h_diagnose, 8u << 20, false, true, NULL, false},
    {"POST", "/v1/feedback", h_feedback, 16u << 10, false, true, FEEDBACK_FIELDS, false},
    {"GET", "/v1/monitor", h_monitor, 0, false, false, NULL, false},
    {"GET", "/v1/audit/{id}", h_audit, 0, false, false, NULL, false},
    {"GET", "/v1/model-card", h_card, 0, false, false, NULL, false},
};

const lp_route *dx_service_routes(size_t *n)
{
    *n = sizeof ROUTES / sizeof ROUTES[0];
    return ROUTES;
}

lp_status dx_service_new(dx_image_model *img, dx_text_model *txt, const char *db,
                         bool store_text, dx_service **out, lp_err *err)
{
    *out = NULL;
    app *a = lp_calloc(1, sizeof *a);
    lp_status st = a ? LP_OK : lp_err_set(err, LP_ENOMEM, "diagnosis: out of memory");
    if (!st && !img && !txt)
        st = lp_err_set(err, LP_EINVAL, "diagnosis: no model (give an image and/or a text model)");
    if (!st)
        st = dx_audit_open(db, &a->audit, err);
    if (st) {
        dx_image_model_free(img);
        dx_text_model_free(txt);
        free(a);
        return st;
    }
    a->img = img, a->txt = txt, a->store_text = store_text;
    const lp_drift *ri = img ? dx_image_model_drift(img) : NULL;
    const lp_drift *rt = txt ? dx_text_model_drift(txt) : NULL;
    /* the sketch indexes features 0 and 1 (mon_count): only a reference of that shape */
    if (ri && lp_drift_find(ri, "top_probability") == 0 && lp_drift_find(ri, "ood_score") == 1)
        a->sk_img = lp_drift_sketch_new(ri);
    if (rt && lp_drift_find(rt, "top_probability") == 0 && lp_drift_find(rt, "ood_score") == 1)
        a->sk_txt = lp_drift_sketch_new(rt);
    pthread_mutex_init(&a->ig_mu, NULL);
    *out = a;
    return LP_OK;
}

void dx_service_free(dx_service *a)
{
    if (!a)
        return;
    dx_audit_close(a->audit);
    lp_drift_sketch_free(a->sk_img);
    lp_drift_sketch_free(a->sk_txt);
    dx_image_model_free(a->img);
    dx_text_model_free(a->txt);
    pthread_mutex_destroy(&a->ig_mu);
    free(a);
}

size_t dx_service_shared_labels(const dx_service *a)
{
    size_t shared = 0;
    for (size_t j = 0; a->img && a->txt && j < dx_image_model_classes(a->img); j++)
        shared += text_class(a, dx_image_model_class(a->img, j)) >= 0;
    return shared;
}

void dx_service_version(const dx_service *a, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s%s%s", a->img ? dx_image_model_version(a->img) : "",
             a->img && a->txt ? "+" : "", a->txt ? dx_text_model_version(a->txt) : "");
}
