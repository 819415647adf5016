/*
 * cmd_console.c - `lepton console`: the web console of the suite. Serves the console's static
 * files (cli/console/, embedded at build time: console_assets.h), proxies
 * /api/<svc>/<rest> (svc: cs, fraud, recommend, diagnosis) to http://127.0.0.1:<port>/<rest> for
 * any method, and answers GET /api/overview with every service's health and the request,
 * error and latency statistics read from its /metrics, for the monitoring page.
 *
 * The proxy passes the method, the body, its Content-Type and Authorization, and gives back the
 * status, Content-Type and body. The request's query string is forwarded re-encoded
 * (lp_req_query_string); a query in the X-Lepton-Query request header ("user=u1&k=10"), which
 * the console's JavaScript sets, takes its place when present. A service that does not answer
 * is a 502 naming it and its port.
 *
 * Overview statistics: counts exclude the probes the console itself makes (/healthz, /readyz,
 * /version, /metrics). Requests per second, error rate and latency percentiles are windowed:
 * the difference between this scrape and the previous one (kept per service under a mutex);
 * the cumulative percentiles since the service started are given too. Percentiles come from
 * the latency histogram buckets by linear interpolation inside the bucket (the Prometheus
 * histogram_quantile rule), so they are bucket-resolution estimates.
 *
 * The console keeps no state of its own; it never writes to --state.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "commands.h"
#include "console_assets.h"
#include "console_http.h"

#define N_SVC 4
#define MAX_DEPTH 6 /* path segments after /api/<svc>/ the proxy routes accept */
#define MAX_BUCKETS 40
#define PROXY_BODY_LIMIT (12u << 20) /* diagnosis images arrive base64-encoded in JSON */
#define PROBE_TIMEOUT_MS 3000

typedef struct svc_window {
    bool have;
    double t;               /* wall seconds of the previous scrape */
    double total, errors;   /* counters at that scrape */
    double le[MAX_BUCKETS]; /* histogram bounds (+Inf last) and cumulative counts */
    double cum[MAX_BUCKETS];
    size_t nb;
} svc_window;

typedef struct console_app {
    const char *names[N_SVC];  /* "cs", "fraud", ... (URL names) */
    const char *titles[N_SVC]; /* "customer service", ... */
    unsigned ports[N_SVC];
    unsigned timeout_ms;
    const char *state;
    pthread_mutex_t mu;
    svc_window win[N_SVC];
} console_app;

static int svc_index(const console_app *a, const char *name)
{
    for (int i = 0; i < N_SVC; i++)
        if (name && !strcmp(a->names[i], name))
            return i;
    return -1;
}

/* ---- static files ----------------------------------------------------------------------------*/

static lp_status h_asset(const lp_req *req, lp_res *res, void *user)
{
    (void)user;
    const char *path = strcmp(req->path, "/") ? req->path : "/index.html";
    for (size_t i = 0; i < console_n_assets; i++) {
        const console_asset *as = &console_assets[i];
        if (!strcmp(as->path, path)) {
            lp_res_header(res, "Cache-Control", "no-cache");
            lp_res_header(res, "X-Content-Type-Options", "nosniff");
            return lp_res_bytes(res, 200, as->content_type, as->data, as->len);
        }
    }
    return lp_http_error(res, LP_ENOTFOUND, "no console file '%s'", req->path);
}

/* ---- proxy -----------------------------------------------------------------------------------*/

/* Percent-encode what a path or query may not carry raw; keep the delimiters of each. */
static void put_encoded(lp_buf *b, const char *s, bool query)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    strchr("-._~/:@!$'()*+,;", c) || (query ? (c == '=' || c == '&' || c == '%')
                                                             : c == '=' || c == '&');
        if (keep && c) {
            lp_buf_u8(b, c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            lp_buf_put(b, e, 3);
        }
    }
}

static lp_status h_proxy(const lp_req *req, lp_res *res, void *user)
{
    console_app *a = user;
    const char *svc = lp_req_param(req, "svc");
    int i = svc_index(a, svc);
    if (i < 0)
        return lp_http_error(res, LP_ENOTFOUND,
                             "no service '%s' (expected cs, fraud, recommend or diagnosis)", svc);
    /* the rest of the path after "/api/<svc>" */
    const char *rest = req->path + 5 + strlen(svc);
    lp_buf t;
    lp_buf_init(&t);
    put_encoded(&t, rest, false);
    const char *q = lp_req_header(req, "X-Lepton-Query");
    if (q && *q) {
        lp_buf_u8(&t, '?');
        put_encoded(&t, q, true);
    } else {
        size_t at = t.len;
        lp_buf_u8(&t, '?');
        lp_req_query_string(req, &t);
        if (t.len == at + 1)
            t.len = at; /* no query */
    }
    lp_buf_u8(&t, 0);
    lp_err err;
    lp_status st = lp_buf_status(&t, &err);
    if (st) {
        lp_buf_free(&t);
        return lp_http_error_from(res, &err);
    }
    console_reply r;
    st = console_http_do(a->ports[i], req->method, (const char *)t.data,
                         lp_req_header(req, "Content-Type"), lp_req_header(req, "Authorization"),
                         req->body_len ? req->body : NULL, req->body_len, a->timeout_ms, &r,
                         &err);
    lp_buf_free(&t);
    if (st == LP_EIO)
        return lp_http_error_raw(res, 502, "bad_gateway",
                                 "service '%s' at 127.0.0.1:%u did not answer: %s", svc,
                                 a->ports[i], lp_err_text(&err));
    if (st)
        return lp_http_error_raw(res, 502, "bad_gateway", "service '%s' at 127.0.0.1:%u: %s", svc,
                                 a->ports[i], lp_err_text(&err));
    if (r.status == 204 || r.status == 304 || r.status < 200)
        st = lp_res_bytes(res, r.status, r.content_type ? r.content_type : "text/plain", "", 0);
    else
        st = lp_res_bytes(res, r.status,
                          r.content_type ? r.content_type : "application/octet-stream", r.body,
                          r.len);
    console_reply_free(&r);
    return st;
}

/* ---- overview --------------------------------------------------------------------------------*/

/* Routes the console itself polls (probes, metrics, and /v1/monitor, which every overview
 * reads from each service that has it): not counted as the service's traffic. */
static bool is_probe_route(const char *route)
{
    return !strcmp(route, "/healthz") || !strcmp(route, "/readyz") ||
           !strcmp(route, "/version") || !strcmp(route, "/metrics") ||
           !strcmp(route, "/v1/monitor");
}

/* Prometheus histogram_quantile: the q-quantile of a cumulative histogram, linear inside the
 * bucket; the last finite bound when it falls in +Inf; NAN when the histogram is empty. */
static double hist_quantile(const double *le, const double *cum, size_t nb, double q)
{
    if (nb == 0 || cum[nb - 1] <= 0)
        return NAN;
    double rank = q * cum[nb - 1];
    for (size_t k = 0; k < nb; k++) {
        if (cum[k] >= rank) {
            if (isinf(le[k]))
                return k > 0 ? le[k - 1] : NAN;
            double lo = k > 0 ? le[k - 1] : 0.0, below = k > 0 ? cum[k - 1] : 0.0;
            double in = cum[k] - below;
            return in > 0 ? lo + (le[k] - lo) * (rank - below) / in : le[k];
        }
    }
    return le[nb - 1];
}

static void add_latency(cJSON *o, const char *key, const double *le, const double *cum,
                        size_t nb)
{
    if (nb == 0 || cum[nb - 1] <= 0) {
        cJSON_AddNullToObject(o, key);
        return;
    }
    cJSON *l = cJSON_AddObjectToObject(o, key);
    const double qs[3] = {0.5, 0.95, 0.99};
    const char *names[3] = {"p50", "p95", "p99"};
    for (int k = 0; k < 3; k++)
        cJSON_AddNumberToObject(l, names[k], round(hist_quantile(le, cum, nb, qs[k]) * 1e6) / 1e3);
    cJSON_AddNumberToObject(l, "count", cum[nb - 1]);
}

/* Add the sample's bucket count into the merged histogram (bounds kept sorted). */
static void merge_bucket(svc_window *w, double le, double v)
{
    size_t k = 0;
    while (k < w->nb && w->le[k] < le)
        k++;
    if (k < w->nb && w->le[k] == le) {
        w->cum[k] += v;
        return;
    }
    if (w->nb == MAX_BUCKETS)
        return;
    memmove(w->le + k + 1, w->le + k, (w->nb - k) * sizeof(double));
    memmove(w->cum + k + 1, w->cum + k, (w->nb - k) * sizeof(double));
    w->le[k] = le;
    w->cum[k] = v;
    w->nb++;
}

/* Read one service's /metrics into cur (totals and merged latency histogram) and add its
 * per-route counts, its own metric families and whether it has /v1/monitor to o. */
static void read_metrics(const console_sample *s, size_t n, svc_window *cur, cJSON *o,
                         bool *has_monitor)
{
    cJSON *routes = cJSON_AddObjectToObject(o, "routes");
    cJSON *own = cJSON_AddObjectToObject(o, "metrics");
    char route[256], status[16], le[32];
    for (size_t k = 0; k < n; k++) {
        const console_sample *x = &s[k];
        if (!strcmp(x->name, "lepton_http_requests_total")) {
            if (!console_prom_label(x, "route", route, sizeof route) || is_probe_route(route))
                continue;
            cur->total += x->value;
            if (console_prom_label(x, "status", status, sizeof status) && atoi(status) >= 400)
                cur->errors += x->value;
            cJSON *r = cJSON_GetObjectItemCaseSensitive(routes, route);
            if (r)
                cJSON_SetNumberValue(r, r->valuedouble + x->value);
            else
                cJSON_AddNumberToObject(routes, route, x->value);
        } else if (!strcmp(x->name, "lepton_http_request_duration_seconds_bucket")) {
            if (!console_prom_label(x, "route", route, sizeof route))
                continue;
            if (!strcmp(route, "/v1/monitor"))
                *has_monitor = true;
            if (is_probe_route(route) || !console_prom_label(x, "le", le, sizeof le))
                continue;
            merge_bucket(cur, strcmp(le, "+Inf") ? strtod(le, NULL) : INFINITY, x->value);
        } else if (strncmp(x->name, "lepton_http_", 12) &&
                   strcmp(x->name, "lepton_reloads_total")) {
            size_t nl = strlen(x->name);
            if (nl > 7 && !strcmp(x->name + nl - 7, "_bucket"))
                continue;
            cJSON *m = cJSON_GetObjectItemCaseSensitive(own, x->name);
            if (m)
                cJSON_SetNumberValue(m, m->valuedouble + x->value);
            else
                cJSON_AddNumberToObject(own, x->name, x->value);
        }
    }
}

static cJSON *probe_service(console_app *a, int i)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", a->names[i]);
    cJSON_AddStringToObject(o, "title", a->titles[i]);
    cJSON_AddNumberToObject(o, "port", a->ports[i]);
    lp_err err;
    console_reply r;
    lp_status st = console_http_do(a->ports[i], "GET", "/healthz", NULL, NULL, NULL, 0,
                                   PROBE_TIMEOUT_MS, &r, &err);
    bool up = !st && r.status == 200;
    cJSON_AddBoolToObject(o, "up", up);
    if (st)
        cJSON_AddStringToObject(o, "error", lp_err_text(&err));
    else if (!up)
        cJSON_AddStringToObject(o, "error", "/healthz did not answer 200");
    console_reply_free(&r);
    if (!up)
        return o;
    st = console_http_do(a->ports[i], "GET", "/readyz", NULL, NULL, NULL, 0, PROBE_TIMEOUT_MS,
                         &r, &err);
    cJSON_AddBoolToObject(o, "ready", !st && r.status == 200);
    console_reply_free(&r);
    if (!console_http_do(a->ports[i], "GET", "/version", NULL, NULL, NULL, 0, PROBE_TIMEOUT_MS,
                         &r, &err) &&
        r.status == 200) {
        cJSON *v = cJSON_Parse(r.body);
        if (v)
            cJSON_AddItemToObject(o, "version", v);
    }
    console_reply_free(&r);

    svc_window cur = {.have = true, .t = lp_time_wall()};
    bool has_monitor = false;
    if (!console_http_do(a->ports[i], "GET", "/metrics", NULL, NULL, NULL, 0, PROBE_TIMEOUT_MS,
                         &r, &err) &&
        r.status == 200) {
        size_t n = 0;
        console_sample *s = console_prom_parse(r.body, r.len, &n);
        read_metrics(s, n, &cur, o, &has_monitor);
        free(s);
    }
    console_reply_free(&r);

    pthread_mutex_lock(&a->mu);
    svc_window prev = a->win[i];
    a->win[i] = cur;
    pthread_mutex_unlock(&a->mu);
    cJSON_AddNumberToObject(o, "requests", cur.total);
    cJSON_AddNumberToObject(o, "errors", cur.errors);
    add_latency(o, "latency_ms_all", cur.le, cur.cum, cur.nb);
    /* the window since the previous scrape; a restart (counters going down) starts afresh */
    if (prev.have && cur.t > prev.t && cur.total >= prev.total && prev.nb == cur.nb) {
        double dt = cur.t - prev.t, dn = cur.total - prev.total;
        double dc[MAX_BUCKETS];
        for (size_t k = 0; k < cur.nb; k++)
            dc[k] = fmax(0.0, cur.cum[k] - prev.cum[k]);
        cJSON_AddNumberToObject(o, "window_s", round(dt * 1000) / 1000);
        cJSON_AddNumberToObject(o, "rps", round(dn / dt * 1000) / 1000);
        cJSON_AddNumberToObject(o, "error_rate", dn > 0 ? (cur.errors - prev.errors) / dn : 0.0);
        add_latency(o, "latency_ms", cur.le, dc, cur.nb);
    } else {
        cJSON_AddNullToObject(o, "window_s");
        cJSON_AddNullToObject(o, "rps");
        cJSON_AddNumberToObject(o, "error_rate", cur.total > 0 ? cur.errors / cur.total : 0.0);
        cJSON_AddNullToObject(o, "latency_ms");
    }
    /* drift per feature and live metrics, where the service has a monitor endpoint */
    if (has_monitor && !console_http_do(a->ports[i], "GET", "/v1/monitor", NULL, NULL, NULL, 0,
                                        PROBE_TIMEOUT_MS, &r, &err) &&
        r.status == 200) {
        cJSON *m = cJSON_Parse(r.body);
        if (m)
            cJSON_AddItemToObject(o, "monitor", m);
    }
    console_reply_free(&r);
    if (!cJSON_GetObjectItemCaseSensitive(o, "monitor"))
        cJSON_AddNullToObject(o, "monitor");
    return o;
}

static lp_status h_overview(const lp_req *req, lp_res *res, void *user)
{
    (void)req;
    console_app *a = user;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "time", lp_time_wall());
    if (a->state)
        cJSON_AddStringToObject(j, "state", a->state);
    cJSON *arr = cJSON_AddArrayToObject(j, "services");
    for (int i = 0; i < N_SVC; i++)
        cJSON_AddItemToArray(arr, probe_service(a, i));
    lp_res_header(res, "Cache-Control", "no-store");
    return lp_res_json(res, 200, j);
}

/* ---- routes ----------------------------------------------------------------------------------*/

static const char *const proxy_methods[] = {"GET", "POST", "PUT", "DELETE", "PATCH"};
static const char *const proxy_paths[MAX_DEPTH] = {
    "/api/{svc}/{p1}",
    "/api/{svc}/{p1}/{p2}",
    "/api/{svc}/{p1}/{p2}/{p3}",
    "/api/{svc}/{p1}/{p2}/{p3}/{p4}",
    "/api/{svc}/{p1}/{p2}/{p3}/{p4}/{p5}",
    "/api/{svc}/{p1}/{p2}/{p3}/{p4}/{p5}/{p6}",
};

/* The route table: "/", one route per embedded file, the overview, then the proxy patterns for
 * every method and depth. Caller frees the array (the strings are static). */
static lp_route *build_routes(size_t *n)
{
    size_t cap = 2 + console_n_assets + MAX_DEPTH * 5;
    lp_route *r = lp_calloc(cap, sizeof *r);
    if (!r)
        return NULL;
    size_t k = 0;
    r[k++] = (lp_route){.method = "GET", .path = "/", .handler = h_asset};
    for (size_t i = 0; i < console_n_assets; i++)
        r[k++] = (lp_route){.method = "GET", .path = console_assets[i].path, .handler = h_asset};
    r[k++] = (lp_route){.method = "GET", .path = "/api/overview", .handler = h_overview};
    for (size_t d = 0; d < MAX_DEPTH; d++)
        for (size_t m = 0; m < 5; m++)
            r[k++] = (lp_route){.method = proxy_methods[m], .path = proxy_paths[d],
                                .handler = h_proxy, .body_limit = PROXY_BODY_LIMIT};
    *n = k;
    return r;
}

int cmd_console(int argc, char **argv)
{
    long port = 8080, cs = 8081, fraud = 8082, rec = 8083, dx = 8084, threads = 8,
         timeout = 30000;
    const char *host = "127.0.0.1", *state = NULL;
    const arg_spec opts[] = {
        {"port", ARG_INT, &port, "PORT", "console port (default 8080; 0 picks a free one)", 0,
         65535},
        {"host", ARG_STR, &host, "ADDR", "address to bind (default 127.0.0.1)"},
        {"state", ARG_STR, &state, "DIR", "the suite's state folder (shown; nothing written)"},
        {"cs-port", ARG_INT, &cs, "PORT", "customer service port (default 8081)", 1, 65535},
        {"fraud-port", ARG_INT, &fraud, "PORT", "fraud service port (default 8082)", 1, 65535},
        {"recommend-port", ARG_INT, &rec, "PORT", "recommend service port (default 8083)", 1,
         65535},
        {"diagnosis-port", ARG_INT, &dx, "PORT", "diagnosis service port (default 8084)", 1,
         65535},
        {"threads", ARG_INT, &threads, "N", "request threads (default 8)", 1, 256},
        {"timeout-ms", ARG_INT, &timeout, "MS", "proxy timeout per request (default 30000)", 100,
         600000},
    };
    const arg_cmd cmd = {"console", "[--port 8080] [--cs-port 8081] [--fraud-port 8082] ...",
                         "Serve the web console and proxy /api/<service>/ to the four services.",
                         opts, sizeof opts / sizeof opts[0], 0, 0};
    size_t npos;
    int rc = args_parse(&cmd, argc, argv, NULL, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    console_app a = {
        .names = {"cs", "fraud", "recommend", "diagnosis"},
        .titles = {"customer service", "fraud", "recommend", "diagnosis"},
        .ports = {(unsigned)cs, (unsigned)fraud, (unsigned)rec, (unsigned)dx},
        .timeout_ms = (unsigned)timeout,
        .state = state,
    };
    pthread_mutex_init(&a.mu, NULL);
    lp_err err;
    lp_err_clear(&err);
    size_t nr = 0;
    lp_route *routes = build_routes(&nr);
    lp_server *srv = NULL;
    lp_status st = routes ? LP_OK : lp_err_set(&err, LP_ENOMEM, "out of memory");
    lp_server_opts so = lp_server_opts_default();
    so.port = (unsigned)port;
    so.host = host;
    so.threads = (unsigned)threads;
    so.name = "lepton-console";
    so.body_limit = PROXY_BODY_LIMIT;
    so.connection_timeout_s = (unsigned)(timeout / 1000) + 10;
    so.access_log = true;
    if (!st)
        st = lp_server_new(routes, nr, &a, &so, &srv, &err);
    if (!st)
        st = lp_server_start(srv, &err);
    if (!st) {
        lp_server_set_ready(srv, true);
        /* scripts and tests read the bound port from this line */
        printf("lepton console: on http://%s:%u (cs %u, fraud %u, recommend %u, diagnosis %u)\n",
               host, lp_server_port(srv), a.ports[0], a.ports[1], a.ports[2], a.ports[3]);
        fflush(stdout);
        st = lp_server_run_until_signal(srv, &err);
    }
    if (st)
        rc = cli_fail("console", &err);
    lp_server_free(srv);
    free(routes);
    pthread_mutex_destroy(&a.mu);
    return rc;
}
