/*
 * serve_echo.c - the Lepton side of the serve benchmark: the same work as serve_ceiling.c (parse
 * a JSON body, answer a fixed JSON reply) through the route table of the serve layer, so the
 * difference measures the layer: routing, UTF-8/depth/number checks, field specs, request ids,
 * metrics and the (disabled) access log.
 * usage: serve_echo PORT [THREADS]   (runs until SIGINT/SIGTERM)
 */
#include <stdio.h>
#include <stdlib.h>

#include "lepton/lepton.h"

static lp_status h_score(const lp_req *req, lp_res *res, void *user)
{
    static const char reply[] = "{\"ok\":true,\"score\":0.5}";
    return lp_res_bytes(res, 200, "application/json", reply, sizeof reply - 1);
}

static const lp_field_spec score_fields[] = {
    {.name = "text", .type = LP_FIELD_TYPE_STRING, .required = true, .max_len = 10000},
    {.name = "k", .type = LP_FIELD_TYPE_INTEGER, .ranged = true, .min = 1, .max = 100},
    {.name = NULL},
};

static const lp_route routes[] = {
    {.method = "POST", .path = "/v1/score", .handler = h_score, .fields = score_fields},
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [THREADS]\n", argv[0]);
        return 2;
    }
    lp_server_opts o = lp_server_opts_default();
    o.port = (unsigned)atoi(argv[1]);
    o.threads = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
    o.name = "serve_echo";
    o.access_log = false; /* a benchmark measures the layer, not stderr */
    lp_err err;
    if (lp_serve(routes, 1, NULL, &o, &err) != LP_OK) {
        fprintf(stderr, "serve_echo: %s\n", lp_err_text(&err));
        return 1;
    }
    return 0;
}
