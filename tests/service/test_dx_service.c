/*
 * test_dx_service.c - lepton-diagnosis's HTTP API (dx_service.c) over real loopback HTTP with
 * an image model AND a text model sharing one label set (blob, ring, bar), both trained here
 * from seeded synthetic data: text-only answers with exact per-token contributions, image +
 * text late fusion checked against the two single-modality answers, abstention for a text in
 * another language, explain=false, the model card of both models, the shared endpoints,
 * hostile inputs (empty / blank text, invalid UTF-8, truncated PNG, a 50-megapixel header,
 * not an image, wrong types) each a 4xx that writes no audit row, and the audit chain: one row
 * per answer, readable over GET /v1/audit/{id}, verified, then edited and caught. The image
 * model is served from its saved file (its drift reference travels in it); GET /v1/monitor
 * has both modalities' drift rows and feedback shows in its live metrics.
 */
#include "lp_test.h"

#include "dx.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.c"

/* Completeness of the text explanation: base + sum of contributions == logit. Both are sums
 * of the same float coefficients times float TF-IDF values in double; the response prints 17
 * significant digits. */
#define TOKEN_SUM_TOL 1e-6
/* Fusion recomputed from the two single answers as printed (17 digits). */
#define FUSION_TOL 1e-9

static const char *const LABELS[3] = {"blob", "ring", "bar"};
static char *g_db;
static lp_server *g_srv;
static dx_service *g_svc;
static unsigned g_port;
static char g_png_b64[4][4096]; /* one image per class + one spare ring */
static size_t g_answered;       /* 200 answers so far (audit rows expected) */

/* The demo generator's shapes: a bright disc, an annulus, a vertical bar, with noise. */
static void draw(int cls, lp_rng *r, uint8_t *px)
{
    double cx = 10 + 8 * lp_rng_uniform(r), cy = 10 + 8 * lp_rng_uniform(r);
    double rad = 4 + 3 * lp_rng_uniform(r);
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            double d = hypot(x - cx, y - cy), v;
            if (cls == 0)
                v = d < rad ? 220 : 20;
            else if (cls == 1)
                v = fabs(d - rad) < 1.5 ? 220 : 20;
            else
                v = fabs(x - cx) < 2 && fabs(y - cy) < rad + 3 ? 220 : 20;
            v += 25 * lp_rng_normal(r);
            px[y * 28 + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
}

static void b64(const uint8_t *d, size_t n, char *o)
{
    static const char T[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
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
}

static int setup(void **state)
{
    (void)state;
    lp_err err;
    lp_rng r;
    lp_rng_seed(&r, 7);
    enum { PER = 40, N = 3 * PER };
    float *X = malloc(N * 784 * sizeof *X);
    int32_t *y = malloc(N * sizeof *y);
    uint8_t px[784];
    for (int i = 0; i < N; i++) {
        y[i] = i % 3;
        draw(y[i], &r, px);
        for (int p = 0; p < 784; p++)
            X[i * 784 + p] = px[p] / 255.0f;
    }
    for (int c = 0; c < 4; c++) { /* request images, drawn after the training ones */
        draw(c < 3 ? c : 1, &r, px);
        lp_image img = {28, 28, 1, px};
        lp_buf b;
        lp_buf_init(&b);
        if (lp_image_encode_png(&img, &b, &err) || b.len * 4 / 3 + 8 > sizeof g_png_b64[c])
            return -1;
        b64(b.data, b.len, g_png_b64[c]);
        lp_buf_free(&b);
    }
    dx_train_opts o = dx_train_opts_default();
    o.arch = "conv8,pool,fc16";
    o.epochs = 8;
    o.threads = 1;
    o.valid_frac = 0.25;
    dx_image_model *img = NULL;
    lp_status st = dx_image_train(X, y, N, NULL, NULL, 0, 1, 28, 28, LABELS, 3, &o, &img, &err);
    free(X);
    free(y);
    if (st) {
        fprintf(stderr, "image train: %s\n", lp_err_text(&err));
        return -1;
    }
    /* served from its file, as the app does: the drift reference travels in it */
    char *img_path = lp_test_tmpfile("dx_service_img.lpm");
    st = dx_image_model_save(img, img_path, &err);
    dx_image_model_free(img);
    img = NULL;
    if (!st)
        st = dx_image_model_load(img_path, &img, &err);
    free(img_path);
    if (st || !dx_image_model_drift(img)) {
        fprintf(stderr, "image save/load: %s\n", st ? lp_err_text(&err) : "no drift reference");
        return -1;
    }
    /* texts describing each finding, in words only that class uses plus shared filler */
    static const char *words[3][4] = {{"round", "solid", "bright", "mass"},
                                      {"annular", "hollow", "circular", "rim"},
                                      {"vertical", "linear", "band", "streak"}};
    char *csv = lp_test_tmpfile("dx_findings.csv");
    FILE *f = fopen(csv, "w");
    fprintf(f, "text,label\n");
    for (int i = 0; i < 150; i++) {
        int c = i % 3;
        fprintf(f, "the scan shows a %s %s finding,%s\n", words[c][lp_rng_below(&r, 4)],
                words[c][lp_rng_below(&r, 4)], LABELS[c]);
    }
    fclose(f);
    o.valid_frac = 0.2;
    dx_text_model *txt = NULL;
    st = dx_text_train(csv, NULL, "text", "label", &o, &txt, &err);
    free(csv);
    if (st) {
        dx_image_model_free(img);
        fprintf(stderr, "text train: %s\n", lp_err_text(&err));
        return -1;
    }
    g_db = lp_test_tmpfile("dx_service.db");
    remove(g_db);
    if (dx_service_new(img, txt, g_db, true, &g_svc, &err)) {
        fprintf(stderr, "service: %s\n", lp_err_text(&err));
        return -1;
    }
    lp_server_opts so = lp_server_opts_default();
    so.threads = 2;
    size_t nr;
    const lp_route *routes = dx_service_routes(&nr);
    if (lp_server_new(routes, nr, g_svc, &so, &g_srv, &err) || lp_server_start(g_srv, &err)) {
        fprintf(stderr, "server: %s\n", lp_err_text(&err));
        return -1;
    }
    lp_server_set_ready(g_srv, true);
    g_port = lp_server_port(g_srv);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    lp_server_free(g_srv);
    dx_service_free(g_svc);
    free(g_db);
    return 0;
}

static int post(const char *body, http_resp *r)
{
    return http_request(g_port, "POST", "/v1/diagnose", "Content-Type: application/json\r\n",
                        body, strlen(body), r);
}

/* POST body, expect 200, parsed answer (caller deletes). */
static cJSON *diagnose(const char *body)
{
    http_resp r = {0};
    int code = post(body, &r);
    if (code != 200)
        fail_msg("diagnose %d: %s", code, r.body ? r.body : "");
    cJSON *j = cJSON_Parse(r.body);
    http_resp_free(&r);
    assert_non_null(j);
    g_answered++;
    return j;
}

static double prob_of(const cJSON *ans, const char *label)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(ans, "differential"))
    {
        if (strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(e, "label")), label) == 0)
            return cJSON_GetNumberValue(cJSON_GetObjectItem(e, "probability"));
    }
    return NAN;
}

static const char *top_label(const cJSON *ans)
{
    return cJSON_GetStringValue(
        cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(ans, "differential"), 0),
                            "label"));
}

static void expect_4xx(const char *body, int status, const char *needle)
{
    http_resp r = {0};
    int code = post(body, &r);
    if (code != status || !r.body || !strstr(r.body, needle))
        fail_msg("expected %d with '%s', got %d: %s", status, needle, code, r.body ? r.body : "");
    cJSON *j = cJSON_Parse(r.body);
    assert_non_null(cJSON_GetObjectItem(j, "error"));
    cJSON_Delete(j);
    http_resp_free(&r);
}

static size_t audit_rows(void)
{
    sqlite3 *db;
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_open(g_db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM answers", -1, &s, NULL), 0);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    size_t n = (size_t)sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
    return n;
}

/* Text only: a ranked, calibrated differential over the three labels, tokens whose
 * contributions add up to the logit, the ring words pushing towards "ring". */
static void test_text_answer(void **state)
{
    (void)state;
    cJSON *a = diagnose("{\"text\":\"the scan shows a hollow annular finding\"}");
    assert_string_equal(top_label(a), "ring");
    double s = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(a, "differential"))
        s += cJSON_GetNumberValue(cJSON_GetObjectItem(e, "probability"));
    assert_true(fabs(s - 1) < 1e-9);
    assert_true(prob_of(a, "ring") > prob_of(a, "blob") && prob_of(a, "ring") > 0.5);
    const cJSON *ab = cJSON_GetObjectItem(a, "abstain");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItem(ab, "value")));
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(ab, "reason")));
    const cJSON *ex = cJSON_GetObjectItem(a, "explanation");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(ex, "heatmap_png")));
    const cJSON *toks = cJSON_GetObjectItem(ex, "tokens");
    assert_int_equal(cJSON_GetArraySize(toks), 6); /* the, scan, shows, hollow, annular, finding */
    double sum = 0, hollow = NAN, the = NAN;
    cJSON_ArrayForEach(e, toks)
    {
        const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(e, "token"));
        double c = cJSON_GetNumberValue(cJSON_GetObjectItem(e, "contribution"));
        sum += c;
        if (strcmp(t, "hollow") == 0)
            hollow = c;
        if (strcmp(t, "the") == 0)
            the = c;
    }
    const cJSON *ts = cJSON_GetObjectItem(cJSON_GetObjectItem(ex, "summary"), "text");
    double base = cJSON_GetNumberValue(cJSON_GetObjectItem(ts, "base"));
    double logit = cJSON_GetNumberValue(cJSON_GetObjectItem(ts, "logit"));
    assert_true(fabs(base + sum - logit) < TOKEN_SUM_TOL);
    /* a class word outweighs a word every class shares ("a" is no token: one letter) */
    assert_true(hollow > 0 && hollow > fabs(the));
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(a, "statement")), DX_STATEMENT);
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(a, "model_version")),
                           "text-"));
    cJSON_Delete(a);
}

/* The pixel gate: a blank white image, a uniform grey one and uniform noise are answered
 * (audited) but abstain as unlike the training images; a drawn ring passes the gate. */
static void test_unlike_images_abstain(void **state)
{
    (void)state;
    uint8_t px[784];
    lp_rng r;
    lp_rng_seed(&r, 99);
    char b64s[4096], body[8192];
    for (int kind = 0; kind < 4; kind++) {
        for (int p = 0; p < 784; p++)
            px[p] = kind == 0 ? 255 : kind == 1 ? 128 : (uint8_t)lp_rng_below(&r, 256);
        if (kind == 3)
            draw(1, &r, px);
        lp_image img = {28, 28, 1, px};
        lp_buf b;
        lp_buf_init(&b);
        lp_err err;
        assert_int_equal(lp_image_encode_png(&img, &b, &err), LP_OK);
        b64(b.data, b.len, b64s);
        lp_buf_free(&b);
        snprintf(body, sizeof body, "{\"image\":\"%s\"}", b64s);
        cJSON *a = diagnose(body);
        const cJSON *ab = cJSON_GetObjectItem(a, "abstain");
        const char *why = cJSON_GetStringValue(cJSON_GetObjectItem(ab, "reason"));
        if (kind < 3) {
            assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ab, "value")));
            assert_non_null(why);
            assert_non_null(strstr(why, "unlike the training images (pixel"));
        } else {
            assert_true(!why || !strstr(why, "(pixel"));
        }
        cJSON_Delete(a);
    }
}

/* Image + text: the fused differential equals the product of the two single answers,
 * renormalised; the explanation carries both the heat map and the tokens. */
static void test_fusion(void **state)
{
    (void)state;
    char body[8192];
    const char *text = "the scan shows a circular rim finding";
    snprintf(body, sizeof body, "{\"image\":\"%s\"}", g_png_b64[1]);
    cJSON *ai = diagnose(body);
    snprintf(body, sizeof body, "{\"text\":\"%s\"}", text);
    cJSON *at = diagnose(body);
    snprintf(body, sizeof body, "{\"image\":\"%s\",\"text\":\"%s\"}", g_png_b64[1], text);
    cJSON *af = diagnose(body);
    double z = 0, prod[3];
    for (int c = 0; c < 3; c++)
        z += prod[c] = prob_of(ai, LABELS[c]) * prob_of(at, LABELS[c]);
    for (int c = 0; c < 3; c++)
        assert_true(fabs(prob_of(af, LABELS[c]) - prod[c] / z) < FUSION_TOL);
    const cJSON *fu = cJSON_GetObjectItem(af, "fusion");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(fu, "shared_labels")), 3);
    const char *ver = cJSON_GetStringValue(cJSON_GetObjectItem(af, "model_version"));
    assert_non_null(strstr(ver, "cnn-"));
    assert_non_null(strstr(ver, "+text-"));
    const cJSON *ex = cJSON_GetObjectItem(af, "explanation");
    assert_true(strlen(cJSON_GetStringValue(cJSON_GetObjectItem(ex, "heatmap_png"))) > 100);
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(ex, "tokens")) > 0);
    const cJSON *sum = cJSON_GetObjectItem(ex, "summary");
    assert_non_null(cJSON_GetObjectItem(sum, "image"));
    assert_non_null(cJSON_GetObjectItem(sum, "text"));
    cJSON_Delete(ai);
    cJSON_Delete(at);
    cJSON_Delete(af);
}

/* Labels the two answers do not share: fusion is refused with both label lists named; a
 * partial overlap fuses over the shared labels only. */
static void test_fuse_label_sets(void **state)
{
    (void)state;
    dx_answer a = {0}, b = {0}, out;
    a.k = 2, a.labels[0] = "blob", a.labels[1] = "ring", a.probs[0] = 0.3, a.probs[1] = 0.7;
    b.k = 2, b.labels[0] = "cold", b.labels[1] = "flu", b.probs[0] = 0.5, b.probs[1] = 0.5;
    lp_err err;
    assert_int_equal(dx_fuse(&a, &b, 0.5, &out, NULL, &err), LP_EUNSUPPORTED);
    assert_non_null(strstr(lp_err_text(&err), "blob, ring"));
    assert_non_null(strstr(lp_err_text(&err), "cold, flu"));
    b.k = 3, b.labels[0] = "ring", b.labels[1] = "blob", b.labels[2] = "flu";
    b.probs[0] = 0.6, b.probs[1] = 0.2, b.probs[2] = 0.2;
    size_t dropped;
    assert_int_equal(dx_fuse(&a, &b, 0.5, &out, &dropped, &err), LP_OK);
    assert_int_equal(out.k, 2);
    assert_int_equal(dropped, 1);
    double pr = 0.7 * 0.6 / (0.7 * 0.6 + 0.3 * 0.2);
    assert_string_equal(out.labels[out.order[0]], "ring");
    assert_true(fabs(out.probs[out.order[0]] - pr) < 1e-12);
    assert_false(out.abstain);
}

/* Another language: answered, abstaining, the reason saying no word is known; audited. */
static void test_foreign_text_abstains(void **state)
{
    (void)state;
    cJSON *a = diagnose("{\"text\":\"J'ai de la fi\\u00e8vre et une toux depuis hier\"}");
    const cJSON *ab = cJSON_GetObjectItem(a, "abstain");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ab, "value")));
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(ab, "reason")),
                           "vocabulary"));
    cJSON_Delete(a);
    /* fused with an in-distribution image, the text's abstention carries over */
    char body[8192];
    snprintf(body, sizeof body, "{\"image\":\"%s\",\"text\":\"Fieber und Husten\"}",
             g_png_b64[0]);
    a = diagnose(body);
    ab = cJSON_GetObjectItem(a, "abstain");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(ab, "value")));
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(ab, "reason")), "text: "));
    cJSON_Delete(a);
}

static void test_explain_false(void **state)
{
    (void)state;
    char body[8192];
    snprintf(body, sizeof body, "{\"image\":\"%s\",\"text\":\"solid round mass\",\"explain\":false}",
             g_png_b64[0]);
    cJSON *a = diagnose(body);
    const cJSON *ex = cJSON_GetObjectItem(a, "explanation");
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(ex, "heatmap_png")));
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(ex, "tokens")), 0);
    assert_true(cJSON_GetArraySize(cJSON_GetObjectItem(a, "differential")) == 3);
    cJSON_Delete(a);
}

/* Each a 4xx naming the problem; none audited. */
static void test_hostile(void **state)
{
    (void)state;
    size_t before = audit_rows();
    assert_int_equal(before, g_answered);
    expect_4xx("{\"text\":\"\"}", 400, "empty");
    expect_4xx("{\"text\":\"   \\n\\t \"}", 400, "empty");
    expect_4xx("{\"text\":\"\\u00a0\\u3000\\ufeff\"}", 400, "empty"); /* Unicode blanks */
    expect_4xx("{\"text\":\"bad \xff\xfe utf8\"}", 400, "UTF-8");
    expect_4xx("{\"text\":42}", 400, "strings");
    expect_4xx("{}", 400, "give 'text'");
    expect_4xx("{\"text\":\"round mass\",\"explain\":\"yes\"}", 400, "explain");
    expect_4xx("{\"image\":\"@@not base64@@\"}", 400, "base64");
    /* truncated PNG: the first 60 bytes of a real one */
    char trunc[128];
    memcpy(trunc, g_png_b64[0], 80);
    trunc[80] = '\0';
    char body[8192];
    snprintf(body, sizeof body, "{\"image\":\"%s\"}", trunc);
    expect_4xx(body, 400, "image");
    /* a 50-megapixel PNG (8000 x 6250): signature, a valid IHDR, an empty IDAT */
    uint8_t big[45] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D',
                       'R', 0, 0, 0x1f, 0x40, 0, 0, 0x18, 0x6a, 8, 0, 0, 0, 0, 0, 0, 0, 0,
                       0, 0, 0, 0, 'I', 'D', 'A', 'T'};
    uint32_t crc = lp_crc32(0, big + 12, 17), crc2 = lp_crc32(0, big + 37, 4);
    for (int i = 0; i < 4; i++) {
        big[29 + i] = (uint8_t)(crc >> (24 - 8 * i));
        big[41 + i] = (uint8_t)(crc2 >> (24 - 8 * i));
    }
    char bb[128];
    b64(big, sizeof big, bb);
    snprintf(body, sizeof body, "{\"image\":\"%s\"}", bb);
    expect_4xx(body, 413, "pixels");
    b64((const uint8_t *)"GIF89a-not-supported", 20, bb);
    snprintf(body, sizeof body, "{\"image\":\"%s\"}", bb);
    expect_4xx(body, 400, "image");
    http_resp r = {0};
    assert_int_equal(http_request(g_port, "POST", "/v1/diagnose",
                                  "Content-Type: application/json\r\n", "not json", 8, &r),
                     400);
    http_resp_free(&r);
    assert_int_equal(audit_rows(), before);
}

static void test_card_and_shared_endpoints(void **state)
{
    (void)state;
    http_resp r = {0};
    assert_int_equal(http_request(g_port, "GET", "/v1/model-card", NULL, NULL, 0, &r), 200);
    cJSON *c = cJSON_Parse(r.body);
    http_resp_free(&r);
    for (int m = 0; m < 2; m++) {
        const cJSON *card = cJSON_GetObjectItem(c, m ? "text" : "image");
        const cJSON *cal = cJSON_GetObjectItem(card, "calibration");
        assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(cal, "temperature")) > 0);
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(cal, "ece_before")));
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(cal, "ece_after")));
        assert_non_null(cJSON_GetObjectItem(card, "training_data"));
        assert_non_null(cJSON_GetObjectItem(card, "validation_metrics"));
        assert_non_null(cJSON_GetObjectItem(card, "intended_use"));
        assert_non_null(cJSON_GetObjectItem(card, "limits"));
    }
    assert_true(cJSON_IsString(cJSON_GetObjectItem(c, "fusion")));
    cJSON_Delete(c);
    const char *paths[] = {"/healthz", "/readyz", "/metrics"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(http_request(g_port, "GET", paths[i], NULL, NULL, 0, &r), 200);
        http_resp_free(&r);
    }
}

/* GET /v1/monitor with both models: the four drift rows, the image top probability as the
 * score drift, counted answers; feedback on an answer shows in the live metrics. */
static void test_monitor_both_modalities(void **state)
{
    (void)state;
    http_resp r = {0};
    assert_int_equal(http_request(g_port, "GET", "/v1/monitor", NULL, NULL, 0, &r), 200);
    cJSON *m = cJSON_Parse(r.body);
    http_resp_free(&r);
    static const char *const names[] = {"image:top_probability", "image:ood_score",
                                        "text:top_probability", "text:ood_score"};
    const cJSON *d = cJSON_GetObjectItem(m, "drift");
    assert_int_equal(cJSON_GetArraySize(d), 4);
    for (int i = 0; i < 4; i++) {
        const cJSON *row = cJSON_GetArrayItem(d, i);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(row, "feature")), names[i]);
        assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(row, "n")) >= 1);
        assert_true(cJSON_IsBool(cJSON_GetObjectItem(row, "drifted")));
    }
    const cJSON *sd = cJSON_GetObjectItem(m, "score_drift");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(sd, "feature")), names[0]);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(sd, "n")) ==
                cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetArrayItem(d, 0), "n")));
    assert_int_equal((int)cJSON_GetNumberValue(
                         cJSON_GetObjectItem(cJSON_GetObjectItem(m, "live"), "labelled")),
                     0);
    cJSON_Delete(m);
    cJSON *a = diagnose("{\"text\":\"the scan shows a hollow rim finding\",\"explain\":false}");
    char body[96];
    snprintf(body, sizeof body, "{\"audit_id\":%d,\"label\":\"%s\"}",
             (int)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "audit_id")), top_label(a));
    cJSON_Delete(a);
    assert_int_equal(http_request(g_port, "POST", "/v1/feedback",
                                  "Content-Type: application/json\r\n", body, strlen(body), &r),
                     200);
    http_resp_free(&r);
    assert_int_equal(http_request(g_port, "GET", "/v1/monitor", NULL, NULL, 0, &r), 200);
    m = cJSON_Parse(r.body);
    http_resp_free(&r);
    const cJSON *live = cJSON_GetObjectItem(m, "live");
    assert_int_equal((int)cJSON_GetNumberValue(cJSON_GetObjectItem(live, "labelled")), 1);
    assert_true(cJSON_GetNumberValue(cJSON_GetObjectItem(live, "accuracy")) == 1.0);
    cJSON_Delete(m);
}

/* Every answer is one row, readable by id, redacted text kept (--store-text), chain intact;
 * an edit is caught naming the row. Runs last. */
static void test_audit_chain(void **state)
{
    (void)state;
    cJSON *a = diagnose("{\"text\":\"vertical band, call me at 555-123-4567 or a@b.org\"}");
    int id = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(a, "audit_id"));
    cJSON_Delete(a);
    assert_int_equal((size_t)id, g_answered);
    assert_int_equal(audit_rows(), g_answered);
    char path[64];
    http_resp r = {0};
    snprintf(path, sizeof path, "/v1/audit/%d", id);
    assert_int_equal(http_request(g_port, "GET", path, NULL, NULL, 0, &r), 200);
    cJSON *row = cJSON_Parse(r.body);
    http_resp_free(&r);
    const char *stored = cJSON_GetStringValue(cJSON_GetObjectItem(row, "text"));
    assert_non_null(stored);
    assert_null(strstr(stored, "555-123-4567"));
    assert_null(strstr(stored, "a@b.org"));
    assert_non_null(strstr(stored, "vertical band"));
    assert_non_null(strstr(cJSON_GetStringValue(cJSON_GetObjectItem(row, "input_sha256")),
                           "text:"));
    cJSON_Delete(row);
    assert_int_equal(http_request(g_port, "GET", "/v1/audit/99999", NULL, NULL, 0, &r), 404);
    http_resp_free(&r);
    /* an id is digits only: a sign, leading blanks or an overflow are a 400, not record 1 */
    const char *bad_ids[] = {"/v1/audit/%2B1", "/v1/audit/%201", "/v1/audit/%0A1", "/v1/audit/01",
                             "/v1/audit/1x", "/v1/audit/99999999999999999999", "/v1/audit/-1"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        assert_int_equal(http_request(g_port, "GET", bad_ids[i], NULL, NULL, 0, &r), 400);
        http_resp_free(&r);
    }
    size_t n;
    lp_err err;
    assert_int_equal(dx_audit_verify(g_db, &n, &err), LP_OK);
    assert_int_equal(n, g_answered);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(g_db, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "UPDATE answers SET differential = replace(differential, "
                                      "'0.', '0.9') WHERE id = 2", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(dx_audit_verify(g_db, &n, &err), LP_EFORMAT);
    assert_non_null(strstr(lp_err_text(&err), "row 2"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_answer),
        cmocka_unit_test(test_fusion),
        cmocka_unit_test(test_fuse_label_sets),
        cmocka_unit_test(test_foreign_text_abstains),
        cmocka_unit_test(test_unlike_images_abstain),
        cmocka_unit_test(test_explain_false),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_card_and_shared_endpoints),
        cmocka_unit_test(test_monitor_both_modalities),
        cmocka_unit_test(test_audit_chain),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
