/*
 * test_dx_monitor.c - lepton-diagnosis's monitoring over real loopback HTTP with a text model
 * trained here (seeded synthetic findings), saved and loaded back (the drift reference travels
 * in the file): POST /v1/feedback (stored, unknown audit id 404, bad bodies 400, the audit
 * chain still verifying), live top-1 accuracy checked against a count made here from the
 * answers, no drift for texts drawn like the training ones, and the OOD score flagged for
 * texts full of words the model never saw while the top probability's n still counts them.
 */
#include "lp_test.h"

#include "dx.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "http_client.c"
#include "monitor_util.h"

#define N_LIVE 300

static const char *const LABELS[3] = {"blob", "ring", "bar"};
static const char *WORDS[3][4] = {{"round", "solid", "bright", "mass"},
                                  {"annular", "hollow", "circular", "rim"},
                                  {"vertical", "linear", "band", "streak"}};
static char *g_model;
static lp_server *g_srv;
static dx_service *g_svc;
static unsigned g_port;
static char *g_db;

static void start(const char *db_name)
{
    lp_err err;
    dx_text_model *txt = NULL;
    if (dx_text_model_load(g_model, &txt, &err))
        fail_msg("load: %s", lp_err_text(&err));
    assert_non_null(dx_text_model_drift(txt));
    free(g_db);
    g_db = lp_test_tmpfile(db_name);
    remove(g_db);
    if (dx_service_new(NULL, txt, g_db, false, &g_svc, &err))
        fail_msg("service: %s", lp_err_text(&err));
    lp_server_opts so = lp_server_opts_default();
    so.threads = 2;
    size_t nr;
    const lp_route *routes = dx_service_routes(&nr);
    assert_int_equal(lp_server_new(routes, nr, g_svc, &so, &g_srv, &err), LP_OK);
    assert_int_equal(lp_server_start(g_srv, &err), LP_OK);
    g_port = lp_server_port(g_srv);
}

static void stop(void)
{
    lp_server_free(g_srv);
    dx_service_free(g_svc);
    g_srv = NULL;
    g_svc = NULL;
}

/* A finding of class c as the generator writes it (two of the class's words). */
static void finding(lp_rng *r, int c, char *buf, size_t cap)
{
    snprintf(buf, cap, "the scan shows a %s %s finding", WORDS[c][lp_rng_below(r, 4)],
             WORDS[c][lp_rng_below(r, 4)]);
}

static int setup(void **state)
{
    (void)state;
    lp_rng r;
    lp_rng_seed(&r, 11);
    char *csv = lp_test_tmpfile("dxmon_findings.csv");
    FILE *f = fopen(csv, "w");
    if (!f)
        return -1;
    fprintf(f, "text,label\n");
    for (int i = 0; i < 900; i++) {
        char b[128];
        finding(&r, i % 3, b, sizeof b);
        fprintf(f, "%s,%s\n", b, LABELS[i % 3]);
    }
    fclose(f);
    dx_train_opts o = dx_train_opts_default();
    o.threads = 1;
    o.valid_frac = 0.5; /* 450 reference answers */
    dx_text_model *txt = NULL;
    lp_err err;
    lp_status st = dx_text_train(csv, NULL, "text", "label", &o, &txt, &err);
    free(csv);
    if (st) {
        fprintf(stderr, "text train: %s\n", lp_err_text(&err));
        return -1;
    }
    g_model = lp_test_tmpfile("dxmon_text.lpm");
    st = dx_text_model_save(txt, g_model, &err);
    dx_text_model_free(txt);
    return st ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    stop();
    free(g_model);
    free(g_db);
    return 0;
}

static int post(const char *path, const char *body, http_resp *r)
{
    return http_request(g_port, "POST", path, "Content-Type: application/json\r\n", body,
                        strlen(body), r);
}

/* Diagnose text; returns the audit id, top label into top (cap 32). */
static int diagnose(const char *text, char *top)
{
    char body[512];
    snprintf(body, sizeof body, "{\"text\":\"%s\",\"explain\":false}", text);
    http_resp r;
    int s = post("/v1/diagnose", body, &r);
    if (s != 200)
        fail_msg("diagnose %d: %s", s, r.body);
    cJSON *j = cJSON_Parse(r.body);
    const cJSON *d0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "differential"), 0);
    snprintf(top, 32, "%s", cJSON_GetStringValue(cJSON_GetObjectItem(d0, "label")));
    int id = (int)num(j, "audit_id");
    cJSON_Delete(j);
    http_resp_free(&r);
    return id;
}

static void expect_status(const char *body, int status, const char *needle)
{
    http_resp r;
    int s = post("/v1/feedback", body, &r);
    if (s != status || !strstr(r.body, needle))
        fail_msg("feedback %s: %d %s (expected %d with '%s')", body, s, r.body, status, needle);
    http_resp_free(&r);
}

static void test_feedback_and_no_drift(void **state)
{
    (void)state;
    start("dxmon1.db");
    cJSON *m = get_json_at(g_port, "/v1/monitor");
    assert_int_equal((int)num(drift_of(m, "text:top_probability"), "n"), 0);
    assert_int_equal((int)num(cJSON_GetObjectItem(m, "live"), "labelled"), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "live"), "accuracy")));
    assert_null(cJSON_GetObjectItem(m, "reason"));
    cJSON_Delete(m);

    lp_rng r;
    lp_rng_seed(&r, 99);
    size_t right = 0, labelled = 0;
    for (int i = 0; i < N_LIVE; i++) {
        char text[128], top[32], body[128];
        int c = (int)lp_rng_below(&r, 3);
        finding(&r, c, text, sizeof text);
        int id = diagnose(text, top);
        /* every third answer confirmed: the truth, or (every ninth) a label that is wrong */
        if (i % 3 == 0) {
            const char *truth = i % 9 == 0 ? LABELS[(c + 1) % 3] : LABELS[c];
            snprintf(body, sizeof body, "{\"audit_id\":%d,\"label\":\"%s\"}", id, truth);
            http_resp res;
            assert_int_equal(post("/v1/feedback", body, &res), 200);
            http_resp_free(&res);
            labelled++;
            right += !strcmp(top, truth);
        }
    }
    m = get_json_at(g_port, "/v1/monitor");
    const cJSON *tp = drift_of(m, "text:top_probability"), *ood = drift_of(m, "text:ood_score");
    assert_int_equal((int)num(tp, "n"), N_LIVE);
    if (!(num(tp, "psi") < 0.2) || cJSON_IsTrue(cJSON_GetObjectItem(tp, "drifted")))
        fail_msg("top probability of training-like texts drifted: psi %g", num(tp, "psi"));
    if (cJSON_IsTrue(cJSON_GetObjectItem(ood, "drifted")))
        fail_msg("ood score of training-like texts drifted: psi %g", num(ood, "psi"));
    assert_int_equal((int)num(cJSON_GetObjectItem(m, "score_drift"), "n"), N_LIVE);
    const cJSON *live = cJSON_GetObjectItem(m, "live");
    assert_int_equal((size_t)num(live, "labelled"), labelled);
    assert_true(fabs(num(live, "accuracy") - (double)right / (double)labelled) < 1e-12);
    /* the wrong confirmations make it imperfect; the model is right on the others */
    assert_true(num(live, "accuracy") < 0.9 && num(live, "accuracy") > 0.5);
    cJSON_Delete(m);

    /* a second label for the same answer replaces the first */
    char top[32];
    int id = diagnose("the scan shows a hollow rim finding", top);
    char body[128];
    snprintf(body, sizeof body, "{\"audit_id\":%d,\"label\":\"blob\"}", id);
    expect_status(body, 200, "\"stored\":true");
    snprintf(body, sizeof body, "{\"audit_id\":%d,\"label\":\"%s\"}", id, top);
    expect_status(body, 200, "\"stored\":true");
    m = get_json_at(g_port, "/v1/monitor");
    assert_int_equal((size_t)num(cJSON_GetObjectItem(m, "live"), "labelled"), labelled + 1);
    assert_true(fabs(num(cJSON_GetObjectItem(m, "live"), "accuracy") -
                     (double)(right + 1) / (double)(labelled + 1)) < 1e-12);
    cJSON_Delete(m);

    /* hostile feedback: each a 4xx, nothing stored */
    expect_status("{\"audit_id\":99999,\"label\":\"ring\"}", 404, "99999");
    expect_status("{\"audit_id\":\"1\",\"label\":\"ring\"}", 400, "audit_id");
    expect_status("{\"audit_id\":1}", 400, "label");
    expect_status("{\"audit_id\":0,\"label\":\"ring\"}", 400, "audit_id");
    expect_status("{\"audit_id\":1.5,\"label\":\"ring\"}", 400, "audit_id");
    expect_status("{\"audit_id\":1,\"label\":\"   \"}", 400, "label");
    expect_status("{\"audit_id\":1,\"label\":\"ring\",\"extra\":1}", 400, "extra");
    expect_status("{\"audit_id\":1,", 400, "");
    m = get_json_at(g_port, "/v1/monitor");
    assert_int_equal((size_t)num(cJSON_GetObjectItem(m, "live"), "labelled"), labelled + 1);
    cJSON_Delete(m);
    /* feedback lives beside the chain: it still verifies */
    size_t n;
    lp_err err;
    assert_int_equal(dx_audit_verify(g_db, &n, &err), LP_OK);
    assert_int_equal(n, N_LIVE + 1);
    stop();
}

static void test_ood_drift(void **state)
{
    (void)state;
    start("dxmon2.db");
    lp_rng r;
    lp_rng_seed(&r, 5);
    for (int i = 0; i < N_LIVE; i++) {
        char text[256], top[32];
        char base[128];
        finding(&r, (int)lp_rng_below(&r, 3), base, sizeof base);
        /* the same finding buried in words the model never saw */
        snprintf(text, sizeof text, "%s plus quelques mots inconnus ici encore", base);
        diagnose(text, top);
    }
    cJSON *m = get_json_at(g_port, "/v1/monitor");
    const cJSON *ood = drift_of(m, "text:ood_score");
    assert_int_equal((int)num(ood, "n"), N_LIVE);
    if (!cJSON_IsTrue(cJSON_GetObjectItem(ood, "drifted")) || !(num(ood, "psi") > 0.2))
        fail_msg("ood score of foreign-word texts not flagged: psi %g", num(ood, "psi"));
    assert_true(num(ood, "ks") > 0.5);
    cJSON_Delete(m);
    stop();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feedback_and_no_drift),
        cmocka_unit_test(test_ood_drift),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
