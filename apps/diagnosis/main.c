/*
 * main.c - lepton-diagnosis: train / eval an image model, serve it with a calibrated
 * differential, abstention, integrated-gradients heat maps and a hash-chained audit trail,
 * and verify that trail.
 *
 *   train --images PATH [--labels IDX] [--valid PATH [--valid-labels IDX]] --out MODEL.lpm
 *         [--device auto|cpu|cuda]   (the conv net's kernel table; default cpu)
 *   train (--text FILE [--text-col text] [--label-col label] | --tabular FILE --label COL)
 *         [--valid FILE] --out MODEL.lpm          (lp_model: TF-IDF + logistic / gbdt)
 *   eval --model MODEL.lpm (--images PATH [--labels IDX] | --text FILE | --tabular FILE) --json
 *   serve [--port 8084] [--db diagnosis.db] --model IMAGE_MODEL.lpm [--store-text]
 *   verify-audit --db diagnosis.db
 * PATH is an IDX images file (with --labels) or a folder of class sub-folders (28x28 gray).
 * Environment: DX_EPOCHS, DX_ARCH, DX_THREADS override training defaults (benchmarks, tests).
 */
#include "dx.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *USAGE =
    "usage: lepton-diagnosis train (--images PATH [--labels IDX] | --text FILE [--text-col text]"
    " [--label-col label] | --tabular FILE --label COL) [--valid PATH [--valid-labels IDX]]"
    " --out MODEL.lpm [--device auto|cpu|cuda]\n"
    "       lepton-diagnosis eval --model MODEL.lpm (--images PATH [--labels IDX] | --text FILE |"
    " --tabular FILE) --json\n"
    "       lepton-diagnosis serve [--port 8084] [--db diagnosis.db] --model MODEL.lpm"
    " [--store-text]\n"
    "       lepton-diagnosis verify-audit --db diagnosis.db\n";

static const char *flag(int argc, char **argv, const char *name)
{
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    return NULL;
}

static bool has(int argc, char **argv, const char *name)
{
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return false;
}

/* ---- image data --------------------------------------------------------------------------- */

typedef struct dataset {
    size_t n, c, h, w, k;
    float *x;
    int32_t *y;
    char **classes;
} dataset;

static void dataset_free(dataset *d)
{
    free(d->x);
    free(d->y);
    for (size_t j = 0; d->classes && j < d->k; j++)
        free(d->classes[j]);
    free(d->classes);
    memset(d, 0, sizeof *d);
}

static lp_status load_images(const char *path, const char *labels, dataset *d, lp_err *err)
{
    memset(d, 0, sizeof *d);
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        lp_image_set s;
        lp_status st = lp_image_set_read_folder(path, 1, 28, 28, NULL, &s, err);
        if (st)
            return st;
        d->n = s.n, d->c = 1, d->h = 28, d->w = 28, d->k = s.n_classes;
        d->x = s.x, d->y = s.y, d->classes = s.classes;
        return LP_OK;
    }
    if (!labels)
        return lp_err_set(err, LP_EINVAL, "%s is an IDX file: --labels IDX_LABELS is required", path);
    lp_idx x;
    lp_status st = lp_idx_read(path, labels, &x, err);
    if (st)
        return st;
    size_t plane = x.h * x.w;
    d->n = x.n, d->c = 1, d->h = x.h, d->w = x.w;
    d->x = lp_mallocarray(x.n, plane * sizeof *d->x);
    d->y = lp_mallocarray(x.n ? x.n : 1, sizeof *d->y);
    if (!d->x || !d->y) {
        lp_idx_clear(&x);
        dataset_free(d);
        return lp_err_set(err, LP_ENOMEM, "out of memory for %zu images", x.n);
    }
    for (size_t i = 0; i < x.n * plane; i++)
        d->x[i] = (float)x.px[i] / 255.0f;
    size_t k = 0;
    for (size_t i = 0; i < x.n; i++) {
        d->y[i] = x.labels[i];
        if ((size_t)x.labels[i] + 1 > k)
            k = (size_t)x.labels[i] + 1;
    }
    lp_idx_clear(&x);
    d->k = k;
    d->classes = lp_calloc(k ? k : 1, sizeof *d->classes);
    for (size_t j = 0; d->classes && j < k; j++) {
        char b[16];
        snprintf(b, sizeof b, "%zu", j);
        d->classes[j] = lp_strdup(b);
    }
    return LP_OK;
}

static dx_train_opts train_opts_from_env(void)
{
    dx_train_opts o = dx_train_opts_default();
    const char *v;
    if ((v = getenv("DX_EPOCHS")) && atoi(v) > 0)
        o.epochs = atoi(v);
    if ((v = getenv("DX_ARCH")) && *v)
        o.arch = v;
    if ((v = getenv("DX_THREADS")) && atoi(v) > 0)
        o.threads = atoi(v);
    return o;
}

/* ---- lp_model paths (text / tabular) ------------------------------------------------------ */

static lp_status train_frame(const char *file, const char *valid, const char *label,
                             lp_model_kind kind, const char *out, lp_err *err)
{
    lp_frame *tr = NULL, *va = NULL;
    lp_status st = lp_frame_read(file, NULL, &tr, err);
    if (!st && valid)
        st = lp_frame_read(valid, NULL, &va, err);
    lp_train_opts o = lp_train_opts_default();
    o.kind = kind;
    o.label = label;
    const char *drop[1] = {"row"};
    if (!st && lp_frame_find(tr, "row") >= 0) {
        o.drop = drop;
        o.n_drop = 1;
    }
    o.data_name = file;
    lp_model *m = NULL;
    if (!st)
        st = lp_model_train(tr, va, &o, &m, err);
    if (!st)
        st = lp_model_save(m, out, err);
    if (!st)
        printf("trained %s on %zu rows -> %s\n", lp_model_kind_name(kind), lp_frame_nrows(tr), out);
    lp_model_free(m);
    lp_frame_free(tr);
    lp_frame_free(va);
    return st;
}

static lp_status eval_frame(const char *model, const char *file, lp_err *err)
{
    lp_model *m = NULL;
    lp_frame *f = NULL;
    lp_status st = lp_model_load(model, &m, err);
    if (!st)
        st = lp_frame_read(file, NULL, &f, err);
    lp_eval ev;
    if (!st)
        st = lp_model_evaluate(m, f, &ev, err);
    lp_predictions p = {0};
    if (!st)
        st = lp_model_predict(m, f, &p, err);
    size_t j;
    if (!st)
        st = lp_frame_require(f, lp_model_label(m), file, &j, err);
    if (!st) {
        /* ECE and top-3 from the probabilities; labels by class text */
        size_t n = p.n, k = p.k, top3 = 0;
        int32_t *y = lp_mallocarray(n, sizeof *y);
        const lp_column *col = lp_frame_col(f, j);
        for (size_t i = 0; y && i < n; i++) {
            char buf[256];
            const char *s = lp_column_cell_str(col, i, buf, sizeof buf);
            y[i] = -1;
            for (size_t c = 0; c < lp_model_n_classes(m); c++)
                if (s && strcmp(s, lp_model_class(m, c)) == 0)
                    y[i] = (int32_t)c;
            size_t better = 0;
            for (size_t c = 0; y[i] >= 0 && c < k; c++)
                better += p.out[i * k + c] > p.out[i * k + (size_t)y[i]];
            top3 += y[i] >= 0 && better < 3;
        }
        double ece = NAN;
        if (y)
            lp_metrics_ece(y, p.out, n, k, LP_METRICS_ECE_BINS_DEFAULT, &ece, NULL);
        printf("{\"n\":%zu,\"accuracy\":%.6f,\"macro_f1\":%.6f,\"auroc\":%.6f,\"ece\":%.6f,"
               "\"top3_accuracy\":%.6f,\"abstained\":0}\n",
               ev.n, ev.accuracy, ev.macro_f1, ev.auroc, ece, (double)top3 / (double)n);
        free(y);
    }
    lp_predictions_clear(&p);
    lp_frame_free(f);
    lp_model_free(m);
    return st;
}

/* --device auto|cpu|cuda (NULL: cpu) to a kernel-table name; auto says what it picked. */
static lp_status train_device(const char *device, const char **name, lp_err *err)
{
    if (!device)
        device = "cpu";
    if (strcmp(device, "cuda") && strcmp(device, "cpu") && strcmp(device, "auto"))
        return lp_err_set(err, LP_EINVAL, "--device '%s': expected auto, cpu or cuda", device);
    const lp_backend *be = NULL;
    lp_status st = lp_backend_get(device, &be, err);
    if (st)
        return lp_err_prefix(err, "--device");
    if (strcmp(device, "auto") == 0)
        fprintf(stderr, "lepton-diagnosis train: --device auto: training on %s\n", be->name);
    *name = be->name;
    return LP_OK;
}

static int cmd_train(int argc, char **argv)
{
    lp_err err;
    const char *out = flag(argc, argv, "--out"), *images = flag(argc, argv, "--images");
    const char *text = flag(argc, argv, "--text"), *tab = flag(argc, argv, "--tabular");
    if (!out || (!!images + !!text + !!tab) != 1) {
        fputs(USAGE, stderr);
        return 2;
    }
    lp_status st;
    if (text) {
        const char *label = flag(argc, argv, "--label-col");
        st = train_frame(text, flag(argc, argv, "--valid"), label ? label : "label",
                         LP_MODEL_KIND_LOGISTIC, out, &err);
    } else if (tab) {
        const char *label = flag(argc, argv, "--label");
        if (!label) {
            fputs(USAGE, stderr);
            return 2;
        }
        st = train_frame(tab, flag(argc, argv, "--valid"), label, LP_MODEL_KIND_LOGISTIC, out,
                         &err);
    } else {
        dataset tr, va = {0};
        st = load_images(images, flag(argc, argv, "--labels"), &tr, &err);
        const char *vp = flag(argc, argv, "--valid");
        if (!st && vp)
            st = load_images(vp, flag(argc, argv, "--valid-labels"), &va, &err);
        dx_image_model *m = NULL;
        dx_train_opts o = train_opts_from_env();
        if (!st)
            st = train_device(flag(argc, argv, "--device"), &o.device, &err);
        uint64_t t0 = lp_time_ns();
        if (!st)
            st = dx_image_train(tr.x, tr.y, tr.n, va.x, va.y, va.n, tr.c, tr.h, tr.w,
                                (const char *const *)tr.classes, tr.k, &o, &m, &err);
        if (!st)
            st = dx_image_model_save(m, out, &err);
        if (!st)
            printf("trained %s on %zu images in %.1f s -> %s\n%s\n", dx_image_model_version(m),
                   tr.n, lp_time_since(t0), out, dx_image_model_card(m));
        dx_image_model_free(m);
        dataset_free(&tr);
        dataset_free(&va);
    }
    if (st) {
        fprintf(stderr, "lepton-diagnosis train: %s\n", lp_err_text(&err));
        return 1;
    }
    return 0;
}

static int cmd_eval(int argc, char **argv)
{
    lp_err err;
    const char *model = flag(argc, argv, "--model"), *images = flag(argc, argv, "--images");
    const char *text = flag(argc, argv, "--text"), *tab = flag(argc, argv, "--tabular");
    if (!model || (!!images + !!text + !!tab) != 1 || !has(argc, argv, "--json")) {
        fputs(USAGE, stderr);
        return 2;
    }
    lp_status st;
    if (!images) {
        st = eval_frame(model, text ? text : tab, &err);
    } else {
        dx_image_model *m = NULL;
        dataset d;
        st = dx_image_model_load(model, &m, &err);
        if (!st)
            st = load_images(images, flag(argc, argv, "--labels"), &d, &err);
        size_t c, h, w;
        if (!st) {
            dx_image_model_shape(m, &c, &h, &w);
            if (c * h * w != d.c * d.h * d.w)
                st = lp_err_set(&err, LP_EINVAL, "%s: images are %zux%zu, the model takes %zux%zu",
                                images, d.h, d.w, h, w);
        }
        dx_eval ev;
        if (!st)
            st = dx_image_eval(m, d.x, d.y, d.n, &ev, &err);
        if (!st)
            printf("{\"n\":%zu,\"accuracy\":%.6f,\"macro_f1\":%.6f,\"auroc\":%.6f,\"ece\":%.6f,"
                   "\"top3_accuracy\":%.6f,\"abstained\":%zu}\n",
                   ev.n, ev.accuracy, ev.macro_f1, ev.auroc, ev.ece, ev.top3_accuracy,
                   ev.abstained);
        if (m)
            dataset_free(&d);
        dx_image_model_free(m);
    }
    if (st) {
        fprintf(stderr, "lepton-diagnosis eval: %s\n", lp_err_text(&err));
        return 1;
    }
    return 0;
}

static int cmd_verify(int argc, char **argv)
{
    const char *db = flag(argc, argv, "--db");
    if (!db) {
        fputs(USAGE, stderr);
        return 2;
    }
    lp_err err;
    size_t n;
    if (dx_audit_verify(db, &n, &err)) {
        fprintf(stderr, "verify-audit: FAILED: %s\n", lp_err_text(&err));
        return 1;
    }
    printf("verify-audit: %s: %zu rows, chain intact\n", db, n);
    return 0;
}

/* ---- service ------------------------------------------------------------------------------ */

typedef struct app {
    dx_image_model *img;
    dx_audit *audit;
    bool store_text;
    pthread_mutex_t ig_mu; /* integrated gradients use the net's scratch buffers */
} app;

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

static lp_status h_diagnose(const lp_req *req, lp_res *res, void *user)
{
    app *a = user;
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(req->json, "text");
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(req->json, "image");
    if (!cJSON_IsObject(req->json))
        return lp_http_error(res, LP_EINVAL, "body must be a JSON object");
    if ((text && !cJSON_IsString(text)) || (image && !cJSON_IsString(image)))
        return lp_http_error(res, LP_EINVAL, "'text' and 'image' must be strings");
    if (!image)
        return lp_http_error(res, LP_EUNSUPPORTED,
                             "'image' (base64 PNG or JPEG) is required: this service serves an "
                             "image model; text-only requests are not supported");
    if (text && strlen(text->valuestring) == 0)
        return lp_http_error(res, LP_EINVAL, "'text' is empty");
    size_t raw_len;
    uint8_t *raw = b64_decode(image->valuestring, strlen(image->valuestring), &raw_len);
    if (!raw)
        return lp_http_error(res, LP_EPARSE, "'image' is not valid base64");
    lp_err err;
    lp_image img, rs;
    lp_image_opts io = lp_image_opts_default();
    io.channels = 1;
    io.max_pixels = 4u << 20;
    size_t c, h, w;
    dx_image_model_shape(a->img, &c, &h, &w);
    lp_status st = lp_image_decode(raw, raw_len, "image", &io, &img, &err);
    char in_hash[65];
    lp_sha256_hex(raw, raw_len, in_hash);
    free(raw);
    if (st)
        return lp_http_error_from(res, &err);
    st = lp_image_resize(&img, w, h, &rs, &err);
    lp_image_clear(&img);
    if (st)
        return lp_http_error_from(res, &err);
    float *x = malloc(c * h * w * sizeof *x), *attr = malloc(c * h * w * sizeof *attr);
    if (!x || !attr) {
        free(x);
        free(attr);
        lp_image_clear(&rs);
        return lp_http_error(res, LP_ENOMEM, "out of memory");
    }
    lp_image_to_chw(&rs, x);
    lp_image_clear(&rs);
    dx_answer ans;
    double fx = 0, fb = 0;
    st = dx_image_predict(a->img, x, 1, &ans, &err);
    if (!st) {
        pthread_mutex_lock(&a->ig_mu);
        st = dx_image_ig(a->img, x, (int)ans.order[0], 32, attr, &fx, &fb, &err);
        pthread_mutex_unlock(&a->ig_mu);
    }
    lp_buf png;
    lp_buf_init(&png);
    if (!st)
        st = dx_heatmap_png(x, attr, c, h, w, &png, &err);
    double attr_sum = 0;
    for (size_t i = 0; !st && i < c * h * w; i++)
        attr_sum += attr[i];
    free(x);
    free(attr);
    if (st) {
        lp_buf_free(&png);
        return lp_http_error_from(res, &err);
    }
    cJSON *diff = cJSON_CreateArray();
    for (size_t t = 0; t < ans.k && t < 5; t++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "label", dx_image_model_class(a->img, ans.order[t]));
        cJSON_AddNumberToObject(e, "probability", ans.probs[ans.order[t]]);
        cJSON_AddItemToArray(diff, e);
    }
    cJSON *abst = cJSON_CreateObject();
    cJSON_AddBoolToObject(abst, "value", ans.abstain);
    if (ans.abstain)
        cJSON_AddStringToObject(abst, "reason", ans.reason);
    else
        cJSON_AddNullToObject(abst, "reason");
    cJSON_AddNumberToObject(abst, "ood_distance", ans.ood);
    cJSON *expl_summary = cJSON_CreateObject();
    cJSON_AddStringToObject(expl_summary, "method", "integrated gradients, 32 steps, black baseline");
    cJSON_AddStringToObject(expl_summary, "class", dx_image_model_class(a->img, ans.order[0]));
    cJSON_AddNumberToObject(expl_summary, "attribution_sum", attr_sum);
    cJSON_AddNumberToObject(expl_summary, "logit_minus_baseline", fx - fb);
    char *diff_s = cJSON_PrintUnformatted(diff), *abst_s = cJSON_PrintUnformatted(abst);
    char *expl_s = cJSON_PrintUnformatted(expl_summary);
    char *stored = NULL;
    if (text && a->store_text)
        stored = dx_redact(text->valuestring);
    int64_t id = 0;
    st = diff_s && abst_s && expl_s
             ? dx_audit_append(a->audit, dx_image_model_version(a->img), in_hash, stored, diff_s,
                               expl_s, abst_s, &id, &err)
             : lp_err_set(&err, LP_ENOMEM, "out of memory");
    free(stored);
    cJSON_free(diff_s);
    cJSON_free(abst_s);
    cJSON_free(expl_s);
    if (st) {
        cJSON_Delete(diff);
        cJSON_Delete(abst);
        cJSON_Delete(expl_summary);
        lp_buf_free(&png);
        return lp_http_error_from(res, &err);
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddItemToObject(body, "differential", diff);
    cJSON_AddItemToObject(body, "abstain", abst);
    cJSON *expl = cJSON_AddObjectToObject(body, "explanation");
    cJSON_AddItemToObject(expl, "tokens", cJSON_CreateArray());
    char *hm = b64_encode(png.data, png.len);
    cJSON_AddStringToObject(expl, "heatmap_png", hm ? hm : "");
    free(hm);
    cJSON_AddItemToObject(expl, "summary", expl_summary);
    lp_buf_free(&png);
    cJSON_AddStringToObject(body, "model_version", dx_image_model_version(a->img));
    cJSON_AddNumberToObject(body, "audit_id", (double)id);
    cJSON_AddStringToObject(body, "statement", DX_STATEMENT);
    return lp_res_json(res, 200, body);
}

static lp_status h_audit(const lp_req *req, lp_res *res, void *user)
{
    app *a = user;
    const char *ids = lp_req_param(req, "id");
    char *end;
    long long id = strtoll(ids ? ids : "", &end, 10);
    if (!ids || !*ids || *end || id < 1)
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

static lp_status h_card(const lp_req *req, lp_res *res, void *user)
{
    app *a = user;
    const char *card = dx_image_model_card(a->img);
    return lp_res_bytes(res, 200, "application/json", card, strlen(card));
}

static int cmd_serve(int argc, char **argv)
{
    const char *model = flag(argc, argv, "--model"), *db = flag(argc, argv, "--db");
    const char *port = flag(argc, argv, "--port");
    if (!model) {
        fputs(USAGE, stderr);
        return 2;
    }
    lp_err err;
    app a = {0};
    a.store_text = has(argc, argv, "--store-text");
    pthread_mutex_init(&a.ig_mu, NULL);
    lp_status st = dx_image_model_load(model, &a.img, &err);
    if (!st)
        st = dx_audit_open(db ? db : "diagnosis.db", &a.audit, &err);
    static const lp_route routes[] = {
        {"POST", "/v1/diagnose", h_diagnose, 8u << 20, false, true, NULL, false},
        {"GET", "/v1/audit/{id}", h_audit, 0, false, false, NULL, false},
        {"GET", "/v1/model-card", h_card, 0, false, false, NULL, false},
    };
    lp_server *srv = NULL;
    lp_server_opts so = lp_server_opts_default();
    so.port = port ? (unsigned)atoi(port) : 8084;
    so.name = "lepton-diagnosis";
    so.threads = 2;
    if (!st)
        st = lp_server_new(routes, 3, &a, &so, &srv, &err);
    if (!st)
        st = lp_server_start(srv, &err);
    if (!st) {
        lp_server_set_ready(srv, true);
        printf("lepton-diagnosis: %s on http://127.0.0.1:%u\n", dx_image_model_version(a.img),
               lp_server_port(srv));
        fflush(stdout);
        st = lp_server_run_until_signal(srv, &err);
    }
    lp_server_free(srv);
    dx_audit_close(a.audit);
    dx_image_model_free(a.img);
    pthread_mutex_destroy(&a.ig_mu);
    if (st) {
        fprintf(stderr, "lepton-diagnosis serve: %s\n", lp_err_text(&err));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    lp_process_passive_openmp(argv); /* before any OpenMP: see base.h */
    if (argc < 2) {
        fputs(USAGE, stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "train") == 0)
        return cmd_train(argc, argv);
    if (strcmp(cmd, "eval") == 0)
        return cmd_eval(argc, argv);
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc, argv);
    if (strcmp(cmd, "verify-audit") == 0)
        return cmd_verify(argc, argv);
    fputs(USAGE, stderr);
    return 2;
}
