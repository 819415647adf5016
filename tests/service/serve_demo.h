/*
 * serve_demo.h - the demo route table shared by the service tests: an echo handler, a handler
 * behind field specs, an auth'd handler, path and query parameters, raw bytes, a slow handler
 * and handlers that answer errors redis style. Included (with http_client.c) by each test.
 */
#ifndef LP_TEST_SERVE_DEMO_H
#define LP_TEST_SERVE_DEMO_H

#include <string.h>
#include <time.h>

#include "lepton/serve.h"

static lp_status demo_echo(const lp_req *req, lp_res *res, void *user)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "echo", cJSON_Duplicate(req->json, 1));
    cJSON_AddStringToObject(o, "id", req->id);
    return lp_res_json(res, 200, o);
}

static lp_status demo_score(const lp_req *req, lp_res *res, void *user)
{
    const cJSON *text = cJSON_GetObjectItemCaseSensitive(req->json, "text");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(req->json, "k");
    if (strcmp(text->valuestring, "forbidden") == 0) {
        return lp_http_error(res, LP_EINVAL, "field 'text': the word 'forbidden' is not allowed");
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "length", (double)strlen(text->valuestring));
    cJSON_AddNumberToObject(o, "k", cJSON_IsNumber(k) ? k->valuedouble : 5.0);
    return lp_res_json(res, 200, o);
}

static lp_status demo_item(const lp_req *req, lp_res *res, void *user)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", lp_req_param(req, "id"));
    cJSON_AddStringToObject(o, "item", lp_req_param(req, "item"));
    const char *q = lp_req_query(req, "q");
    if (q) cJSON_AddStringToObject(o, "q", q);
    return lp_res_json(res, 200, o);
}

static lp_status demo_secret(const lp_req *req, lp_res *res, void *user)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "secret", "granted");
    return lp_res_json(res, 200, o);
}

static lp_status demo_raw(const lp_req *req, lp_res *res, void *user)
{
    lp_res_header(res, "X-Demo", "raw");
    return lp_res_bytes(res, 201, "text/plain", "hello", 5);
}

static lp_status demo_state(const lp_req *req, lp_res *res, void *user)
{
    return LP_ESTATE; /* no response set: the layer answers the error shape */
}

static lp_status demo_nothing(const lp_req *req, lp_res *res, void *user)
{
    return LP_OK;
}

static lp_status demo_slow(const lp_req *req, lp_res *res, void *user)
{
    struct timespec ts = {0, 400 * 1000 * 1000};
    nanosleep(&ts, NULL);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "slow", "done");
    return lp_res_json(res, 200, o);
}

static const lp_field_spec demo_score_fields[] = {
    {.name = "text", .type = LP_FIELD_TYPE_STRING, .required = true, .max_len = 100},
    {.name = "k", .type = LP_FIELD_TYPE_INTEGER, .ranged = true, .min = 1, .max = 10},
    {.name = "weight", .type = LP_FIELD_TYPE_NUMBER, .ranged = true, .min = 0, .max = 1},
    {.name = "flag", .type = LP_FIELD_TYPE_BOOL},
    {.name = "tags", .type = LP_FIELD_TYPE_ARRAY, .max_len = 3},
    {.name = "meta", .type = LP_FIELD_TYPE_OBJECT},
    {.name = NULL},
};

static const lp_route demo_routes[] = {
    {.method = "POST", .path = "/v1/echo", .handler = demo_echo, .json = true},
    {.method = "POST", .path = "/v1/score", .handler = demo_score, .fields = demo_score_fields},
    {.method = "GET", .path = "/v1/sessions/{id}/items/{item}", .handler = demo_item},
    {.method = "POST", .path = "/v1/secret", .handler = demo_secret, .auth = true},
    {.method = "POST", .path = "/v1/raw", .handler = demo_raw},
    {.method = "GET", .path = "/v1/raw", .handler = demo_raw},
    {.method = "POST", .path = "/v1/small", .handler = demo_echo, .json = true, .body_limit = 64},
    {.method = "GET", .path = "/v1/state", .handler = demo_state},
    {.method = "DELETE", .path = "/v1/nothing", .handler = demo_nothing},
    {.method = "GET", .path = "/v1/slow", .handler = demo_slow},
};
#define DEMO_N_ROUTES (sizeof demo_routes / sizeof *demo_routes)

#endif
