/*
 * server.c - the HTTP server: libmicrohttpd daemon, routing, request bodies, responses, the
 * shared endpoints, access log, metrics, graceful stop and signals.
 *
 * Threading: MHD runs a pool of opts.threads threads, each with its own epoll set (flags
 * INTERNAL_POLLING_THREAD | EPOLL | ITC); a handler runs on the pool thread that owns the
 * connection, one request at a time per thread (no OpenMP, no spinning on the request path).
 * Per request, the access handler is called once when the headers are in (routing, auth, the
 * Content-Length check happen there, and an early reply refuses the body without reading it),
 * then once per chunk of body (appended up to the route's limit, the rest discarded), then a
 * final time with no data (parse, validate, call the handler, queue the reply). The
 * NOTIFY_COMPLETED callback ends every request that got a context: metrics, access log, free.
 * Deferred answers (lp_req_defer): the handler suspends its connection (MHD_ALLOW_SUSPEND_RESUME)
 * and returns, so the pool thread serves other connections; another thread later fills the
 * layer-owned response, queues it (allowed on a suspended connection) and resumes the
 * connection (lp_deferred_finish). Stopping waits for every deferred answer first, since MHD
 * must not be stopped with a suspended connection.
 * Invariants: every reply carries X-Request-Id; every error reply has the one error shape;
 * nothing here logs a body, a query string or an Authorization header.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "lepton/serve.h"

#define LP_ROUTE_MAX_PARAMS 8
#define LP_ROUTE_MAX_SEGS 32
#define LP_RES_MAX_HEADERS 16
#define LP_SERVE_MAX_QUERY_PARAMS 100 /* query parameters of one request; more get a 414 */
#define LP_REQ_ID_MAX 64
#define LP_N_BUILTIN 5

typedef struct route_ent {
    lp_route r;
    char *segs[LP_ROUTE_MAX_SEGS]; /* pattern segments; "{name}" kept as is */
    size_t n_segs;
    lp_metric_series *latency;
} route_ent;

struct lp_server {
    lp_server_opts opts;
    char *host, *name, *version;
    route_ent *routes;
    size_t n_routes;
    void *user;
    char **keys; /* NULL-terminated copies */
    size_t n_keys;
    lp_reload_fn reload_fn;
    void *reload_user;
    pthread_mutex_t reload_mu;
    lp_metrics *metrics;
    lp_metric *m_requests, *m_latency, *m_errors, *m_reloads;
    lp_metric_series *m_inflight, *m_unmatched_latency;
    struct MHD_Daemon *d;
    unsigned port;
    atomic_bool ready;
    atomic_uint in_flight;
    atomic_uint n_deferred; /* suspended connections waiting for lp_deferred_finish */
    _Atomic uint64_t id_counter;
    uint64_t id_seed;
    int wake[2]; /* self-pipe: signal handler and lp_server_shutdown write, run loop reads */
};

struct lp_req_priv {
    lp_server *srv;
    struct MHD_Connection *conn;
    uint64_t t0;
    char id[LP_REQ_ID_MAX + 1];
    char method[16];
    char *path;
    const route_ent *route;
    const char *param_names[LP_ROUTE_MAX_PARAMS];
    char *param_vals[LP_ROUTE_MAX_PARAMS];
    size_t n_params;
    char *body;
    size_t len, cap, limit;
    bool too_big, responded;
    bool deferred; /* lp_req_defer was called: the answer comes through dres */
    struct lp_res *dres;
    atomic_int dphase; /* 0 handler running, 1 handler returned, 2 answer ready before that */
    int status;
    size_t bytes;
    char err_code[40];
};

struct lp_res {
    int http;
    char *ctype;
    char *data;
    size_t len;
    bool set;
    char *hname[LP_RES_MAX_HEADERS], *hval[LP_RES_MAX_HEADERS];
    size_t n_headers;
    char err_code[40];
};

/* ---- options --------------------------------------------------------------------------------*/

lp_server_opts lp_server_opts_default(void)
{
    lp_server_opts o;
    memset(&o, 0, sizeof o);
    o.host = "127.0.0.1";
    o.port = 0;
    o.threads = 0;
    o.connection_limit = 1024;
    o.connection_timeout_s = 30;
    o.connection_memory = 32 * 1024; /* libmicrohttpd clears it all after every request */
    o.body_limit = 1024 * 1024;
    o.json_max_depth = 64;
    o.drain_timeout_ms = 10000;
    o.name = "lepton";
    o.version = LP_VERSION_STRING;
    o.access_log = true;
    return o;
}

lp_status lp_server_opts_check(const lp_server_opts *o, lp_err *err)
{
    struct in_addr a;
    if (!o) return lp_err_set(err, LP_EINVAL, "opts: NULL");
    if (!o->host || inet_pton(AF_INET, o->host, &a) != 1) {
        return lp_err_set(err, LP_EINVAL, "opts.host: '%s' is not an IPv4 address",
                          o->host ? o->host : "(null)");
    }
    if (o->port > 65535) return lp_err_set(err, LP_EINVAL, "opts.port: %u is above 65535", o->port);
    if (o->threads > 1024) {
        return lp_err_set(err, LP_EINVAL, "opts.threads: %u is above 1024", o->threads);
    }
    if (o->connection_limit < 1 || o->connection_limit > 1000000) {
        return lp_err_set(err, LP_EINVAL, "opts.connection_limit: %u is not in 1..1000000",
                          o->connection_limit);
    }
    if (o->connection_timeout_s < 1 || o->connection_timeout_s > 86400) {
        return lp_err_set(err, LP_EINVAL, "opts.connection_timeout_s: %u is not in 1..86400",
                          o->connection_timeout_s);
    }
    if (o->connection_memory < 4096 || o->connection_memory > (64u << 20)) {
        return lp_err_set(err, LP_EINVAL, "opts.connection_memory: %zu is not in 4 KiB..64 MiB",
                          o->connection_memory);
    }
    if (o->body_limit < 1 || o->body_limit > ((size_t)1 << 32)) {
        return lp_err_set(err, LP_EINVAL, "opts.body_limit: %zu is not in 1..4 GiB",
                          o->body_limit);
    }
    if (o->json_max_depth < 1 || o->json_max_depth > 512) {
        return lp_err_set(err, LP_EINVAL, "opts.json_max_depth: %u is not in 1..512",
                          o->json_max_depth);
    }
    if (o->drain_timeout_ms > 600000) {
        return lp_err_set(err, LP_EINVAL, "opts.drain_timeout_ms: %u is above 600000",
                          o->drain_timeout_ms);
    }
    if (!o->name || !*o->name) return lp_err_set(err, LP_EINVAL, "opts.name: empty");
    if (!o->version || !*o->version) return lp_err_set(err, LP_EINVAL, "opts.version: empty");
    return LP_OK;
}

/* ---- responses ------------------------------------------------------------------------------*/

static void res_clear_body(lp_res *res)
{
    free(res->ctype);
    free(res->data);
    res->ctype = NULL;
    res->data = NULL;
    res->len = 0;
    res->err_code[0] = '\0';
}

lp_status lp_res_bytes(lp_res *res, int http, const char *content_type, const void *data,
                       size_t len)
{
    if (!res || http < 100 || http > 599 || (len && !data)) return LP_EINVAL;
    res_clear_body(res);
    res->ctype = lp_strdup(content_type ? content_type : "application/octet-stream");
    res->data = malloc(len ? len : 1);
    if (!res->ctype || !res->data) {
        res_clear_body(res);
        res->set = false;
        return LP_ENOMEM;
    }
    if (len) memcpy(res->data, data, len);
    res->len = len;
    res->http = http;
    res->set = true;
    return LP_OK;
}

lp_status lp_res_json(lp_res *res, int http, cJSON *body)
{
    if (!res || !body) {
        cJSON_Delete(body);
        return LP_EINVAL;
    }
    lp_buf b;
    lp_buf_init(&b);
    lp_status st;
    if (lp_json_write_tree(&b, body)) {
        st = lp_res_bytes(res, http, "application/json", b.data, b.len);
    } else { /* what the tree printer does not take, cJSON prints (or fails on) itself */
        char *text = cJSON_PrintUnformatted(body);
        st = text ? lp_res_bytes(res, http, "application/json", text, strlen(text)) : LP_ENOMEM;
        free(text);
    }
    lp_buf_free(&b);
    cJSON_Delete(body);
    return st;
}

lp_status lp_res_header(lp_res *res, const char *name, const char *value)
{
    if (!res || !name || !value || !*name || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n")) {
        return LP_EINVAL;
    }
    if (res->n_headers == LP_RES_MAX_HEADERS) return LP_ESTATE;
    char *n = lp_strdup(name), *v = lp_strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return LP_ENOMEM;
    }
    res->hname[res->n_headers] = n;
    res->hval[res->n_headers] = v;
    res->n_headers++;
    return LP_OK;
}

static void res_error_v(lp_res *res, int http, const char *code, const char *fmt, va_list ap)
{
    char msg[LP_ERR_MSG_MAX];
    vsnprintf(msg, sizeof msg, fmt, ap);
    lp_utf8_scrub(msg); /* client bytes or a cut character must not break the JSON body */
    cJSON *root = cJSON_CreateObject();
    cJSON *e = cJSON_AddObjectToObject(root, "error");
    if (e) {
        cJSON_AddStringToObject(e, "code", code);
        cJSON_AddStringToObject(e, "message", msg);
    }
    if (lp_res_json(res, http, root) != LP_OK) {
        /* out of memory: send_res answers a fixed 503 body of the same shape */
        res->set = false;
        code = "out_of_memory";
    }
    snprintf(res->err_code, sizeof res->err_code, "%s", code);
}

lp_status lp_http_error(lp_res *res, lp_status s, const char *fmt, ...)
{
    if (!res) return s;
    if (s == LP_OK) s = LP_EINTERNAL;
    va_list ap;
    va_start(ap, fmt);
    res_error_v(res, lp_status_http(s), lp_status_code(s), fmt, ap);
    va_end(ap);
    return s;
}

lp_status lp_http_error_raw(lp_res *res, int http, const char *code, const char *fmt, ...)
{
    if (!res) return LP_EINVAL;
    if (http < 100 || http > 599) http = 500;
    va_list ap;
    va_start(ap, fmt);
    res_error_v(res, http, code ? code : "error", fmt, ap);
    va_end(ap);
    return http < 400 ? LP_OK : LP_EINVAL;
}

lp_status lp_http_error_from(lp_res *res, const lp_err *err)
{
    lp_status s = err && err->status != LP_OK ? err->status : LP_EINTERNAL;
    return lp_http_error(res, s, "%s", err ? lp_err_text(err) : lp_strerror(s));
}

static void res_free(lp_res *res)
{
    res_clear_body(res);
    for (size_t i = 0; i < res->n_headers; i++) {
        free(res->hname[i]);
        free(res->hval[i]);
    }
    res->n_headers = 0;
}

/* Queue res on the connection (consumes res). */
static enum MHD_Result send_res(lp_req_priv *ctx, lp_res *res)
{
    if (!res->set) {
        /* the error path itself ran out of memory */
        res_free(res);
        static char oom[] = "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\"}}";
        res->data = NULL;
        struct MHD_Response *r =
            MHD_create_response_from_buffer(sizeof oom - 1, oom, MHD_RESPMEM_PERSISTENT);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, "Content-Type", "application/json");
        MHD_add_response_header(r, "X-Request-Id", ctx->id);
        enum MHD_Result q = MHD_queue_response(ctx->conn, 503, r);
        MHD_destroy_response(r);
        ctx->status = 503;
        ctx->bytes = sizeof oom - 1;
        snprintf(ctx->err_code, sizeof ctx->err_code, "out_of_memory");
        ctx->responded = true;
        return q;
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(res->len, res->data, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        res_free(res);
        return MHD_NO;
    }
    res->data = NULL; /* MHD owns it now */
    if (res->len || res->http != 204) MHD_add_response_header(r, "Content-Type", res->ctype);
    MHD_add_response_header(r, "X-Request-Id", ctx->id);
    for (size_t i = 0; i < res->n_headers; i++) {
        MHD_add_response_header(r, res->hname[i], res->hval[i]);
    }
    enum MHD_Result q = MHD_queue_response(ctx->conn, (unsigned)res->http, r);
    MHD_destroy_response(r);
    ctx->status = res->http;
    ctx->bytes = res->len;
    snprintf(ctx->err_code, sizeof ctx->err_code, "%s", res->err_code);
    ctx->responded = true;
    res_free(res);
    return q;
}

static enum MHD_Result send_error(lp_req_priv *ctx, int http, const char *code, const char *extra_h,
                                  const char *extra_v, const char *fmt, ...) LP_PRINTF(6, 7);

static enum MHD_Result send_error(lp_req_priv *ctx, int http, const char *code, const char *extra_h,
                                  const char *extra_v, const char *fmt, ...)
{
    lp_res res;
    memset(&res, 0, sizeof res);
    va_list ap;
    va_start(ap, fmt);
    res_error_v(&res, http, code, fmt, ap);
    va_end(ap);
    if (extra_h) lp_res_header(&res, extra_h, extra_v);
    return send_res(ctx, &res);
}

static enum MHD_Result send_status(lp_req_priv *ctx, lp_status s, const char *fmt, ...)
    LP_PRINTF(3, 4);

static enum MHD_Result send_status(lp_req_priv *ctx, lp_status s, const char *fmt, ...)
{
    lp_res res;
    memset(&res, 0, sizeof res);
    va_list ap;
    va_start(ap, fmt);
    res_error_v(&res, lp_status_http(s), lp_status_code(s), fmt, ap);
    va_end(ap);
    return send_res(ctx, &res);
}

/* ---- request accessors ----------------------------------------------------------------------*/

const char *lp_req_param(const lp_req *req, const char *name)
{
    if (!req || !req->priv || !name) return NULL;
    for (size_t i = 0; i < req->priv->n_params; i++) {
        /* names are kept as the pattern's "{name}" segments */
        const char *pn = req->priv->param_names[i];
        size_t nl = strlen(name);
        if (strlen(pn) == nl + 2 && strncmp(pn + 1, name, nl) == 0) return req->priv->param_vals[i];
    }
    return NULL;
}

const char *lp_req_query(const lp_req *req, const char *name)
{
    if (!req || !req->priv || !name) return NULL;
    return MHD_lookup_connection_value(req->priv->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *lp_req_header(const lp_req *req, const char *name)
{
    if (!req || !req->priv || !name) return NULL;
    return MHD_lookup_connection_value(req->priv->conn, MHD_HEADER_KIND, name);
}

static void put_pct(lp_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~') {
            lp_buf_u8(b, c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            lp_buf_put(b, e, 3);
        }
    }
}

static enum MHD_Result query_pair(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    lp_buf *b = cls;
    if (b->len)
        lp_buf_u8(b, '&');
    put_pct(b, key ? key : "");
    if (value) {
        lp_buf_u8(b, '=');
        put_pct(b, value);
    }
    return MHD_YES;
}

void lp_req_query_string(const lp_req *req, lp_buf *out)
{
    if (!req || !req->priv || !out)
        return;
    lp_buf q;
    lp_buf_init(&q);
    MHD_get_connection_values(req->priv->conn, MHD_GET_ARGUMENT_KIND, query_pair, &q);
    if (q.failed)
        out->failed = true;
    else if (q.len)
        lp_buf_put(out, q.data, q.len);
    lp_buf_free(&q);
}

/* ---- routing --------------------------------------------------------------------------------*/

static bool is_param(const char *seg, size_t *name_len)
{
    size_t n = strlen(seg);
    if (n >= 3 && seg[0] == '{' && seg[n - 1] == '}') {
        *name_len = n - 2;
        return true;
    }
    return false;
}

static lp_status route_compile(route_ent *e, const lp_route *r, size_t idx, lp_err *err)
{
    memset(e, 0, sizeof *e);
    e->r = *r;
    if (!r->method || !*r->method || strlen(r->method) >= 16 || !r->path || r->path[0] != '/' ||
        !r->handler) {
        return lp_err_set(err, LP_EINVAL,
                          "route %zu (%s %s): needs a method, a path starting with '/' and a "
                          "handler",
                          idx, r->method ? r->method : "(null)", r->path ? r->path : "(null)");
    }
    const char *p = r->path + 1;
    size_t n_params = 0;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (e->n_segs == LP_ROUTE_MAX_SEGS) {
            return lp_err_set(err, LP_EINVAL, "route %zu (%s): more than %d segments", idx,
                              r->path, LP_ROUTE_MAX_SEGS);
        }
        char *seg = lp_strndup(p, len);
        if (!seg) return lp_err_set(err, LP_ENOMEM, "route %zu: out of memory", idx);
        e->segs[e->n_segs++] = seg;
        size_t nl;
        if (is_param(seg, &nl)) {
            if (++n_params > LP_ROUTE_MAX_PARAMS) {
                return lp_err_set(err, LP_EINVAL, "route %zu (%s): more than %d parameters", idx,
                                  r->path, LP_ROUTE_MAX_PARAMS);
            }
        } else if (strpbrk(seg, "{}")) {
            return lp_err_set(err, LP_EINVAL,
                              "route %zu (%s): segment '%s' must be literal or a whole {name}",
                              idx, r->path, seg);
        }
        if (!slash) break;
        p = slash + 1;
    }
    return LP_OK;
}

static void route_free(route_ent *e)
{
    for (size_t i = 0; i < e->n_segs; i++) free(e->segs[i]);
}

/* Match path against e; on success fill the parameter spans (start, len) in order. */
static bool route_match(const route_ent *e, const char *path, const char **ps, size_t *pl,
                        size_t *np)
{
    if (path[0] != '/') return false;
    const char *p = path + 1;
    size_t n = 0;
    for (size_t i = 0; i < e->n_segs; i++) {
        if (!p) return false;
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        size_t nl;
        if (is_param(e->segs[i], &nl)) {
            if (len == 0) return false;
            ps[n] = p;
            pl[n] = len;
            n++;
        } else if (strlen(e->segs[i]) != len || memcmp(e->segs[i], p, len) != 0) {
            return false;
        }
        p = slash ? slash + 1 : NULL;
    }
    if (p) return false; /* path has more segments */
    *np = n;
    return true;
}

/* ---- shared endpoints -----------------------------------------------------------------------*/

static lp_status h_healthz(const lp_req *req, lp_res *res, void *user)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "status", "ok");
    return lp_res_json(res, 200, j);
}

static lp_status h_readyz(const lp_req *req, lp_res *res, void *user)
{
    if (!atomic_load(&req->priv->srv->ready)) {
        return lp_http_error_raw(res, 503, "not_ready", "service is not ready");
    }
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "status", "ready");
    return lp_res_json(res, 200, j);
}

static lp_status h_version(const lp_req *req, lp_res *res, void *user)
{
    const lp_server *s = req->priv->srv;
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", s->name);
    cJSON_AddStringToObject(j, "version", s->version);
    cJSON_AddStringToObject(j, "lepton", LP_VERSION_STRING);
    return lp_res_json(res, 200, j);
}

static lp_status h_metrics(const lp_req *req, lp_res *res, void *user)
{
    lp_server *s = req->priv->srv;
    lp_metric_series_set(s->m_inflight, (double)atomic_load(&s->in_flight));
    lp_buf b;
    lp_buf_init(&b);
    lp_metrics_write(s->metrics, &b);
    if (b.failed) {
        lp_buf_free(&b);
        return lp_http_error(res, LP_ENOMEM, "metrics: out of memory");
    }
    lp_status st = lp_res_bytes(res, 200, "text/plain; version=0.0.4; charset=utf-8", b.data,
                                b.len);
    lp_buf_free(&b);
    return st;
}

static lp_status h_reload(const lp_req *req, lp_res *res, void *user)
{
    lp_err err;
    lp_err_clear(&err);
    if (lp_server_reload(req->priv->srv, &err) != LP_OK) return lp_http_error_from(res, &err);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddBoolToObject(j, "reloaded", 1);
    return lp_res_json(res, 200, j);
}

static const lp_route builtin_routes[LP_N_BUILTIN] = {
    {.method = "GET", .path = "/healthz", .handler = h_healthz},
    {.method = "GET", .path = "/readyz", .handler = h_readyz},
    {.method = "GET", .path = "/version", .handler = h_version},
    {.method = "GET", .path = "/metrics", .handler = h_metrics},
    {.method = "POST", .path = "/v1/admin/reload", .handler = h_reload, .auth = true,
     .body_limit = 4096},
};

/* ---- request life ---------------------------------------------------------------------------*/

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '_' || c == '.' || c == ':';
}

static void make_request_id(lp_server *s, struct MHD_Connection *conn, char *out)
{
    const char *given = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
    if (given) {
        size_t n = strlen(given);
        bool ok = n >= 1 && n <= LP_REQ_ID_MAX;
        for (size_t i = 0; ok && i < n; i++) ok = id_char(given[i]);
        if (ok) {
            memcpy(out, given, n + 1);
            return;
        }
    }
    /* splitmix64 of seed + counter: unique within the process, unpredictable across runs */
    uint64_t z = s->id_seed + 0x9E3779B97F4A7C15ull * (atomic_fetch_add(&s->id_counter, 1) + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    static const char hexd[] = "0123456789abcdef"; /* "%016llx" by hand: once per request */
    for (int i = 0; i < 16; i++)
        out[i] = hexd[(z >> (60 - 4 * i)) & 0xf];
    out[16] = '\0';
}

static void ctx_free(lp_req_priv *ctx)
{
    if (!ctx) return;
    for (size_t i = 0; i < ctx->n_params; i++) free(ctx->param_vals[i]);
    free(ctx->path);
    free(ctx->body);
    if (ctx->dres) res_free(ctx->dres);
    free(ctx->dres);
    free(ctx);
}

static bool header_is_json(const char *ct)
{
    if (!ct) return false;
    while (*ct == ' ') ct++;
    if (strncasecmp(ct, "application/json", 16) == 0) return true;
    const char *semi = strchr(ct, ';');
    size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
    return n >= 5 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

/* Printable-ASCII copy of untrusted text for messages (at most 96 bytes). */
static void sanitize(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (; *in && o + 1 < cap && o < 96; in++) {
        unsigned char c = (unsigned char)*in;
        out[o++] = (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') ? (char)c : '?';
    }
    out[o] = '\0';
}

static const char *const known_methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH",
                                            "OPTIONS"};

static enum MHD_Result first_call(lp_server *s, lp_req_priv *ctx, const char *url,
                                  const char *method)
{
    /* route */
    const char *ps[LP_ROUTE_MAX_PARAMS];
    size_t pl[LP_ROUTE_MAX_PARAMS], np = 0;
    char allow[128] = "";
    for (size_t i = 0; i < s->n_routes; i++) {
        const route_ent *e = &s->routes[i];
        size_t n;
        const char *tps[LP_ROUTE_MAX_PARAMS];
        size_t tpl[LP_ROUTE_MAX_PARAMS];
        if (!route_match(e, url, tps, tpl, &n)) continue;
        if (strcmp(e->r.method, method) != 0) {
            if (!strstr(allow, e->r.method) && strlen(allow) + strlen(e->r.method) + 3 < sizeof allow) {
                if (allow[0]) strcat(allow, ", ");
                strcat(allow, e->r.method);
            }
            continue;
        }
        if (!ctx->route) {
            ctx->route = e;
            memcpy(ps, tps, sizeof ps);
            memcpy(pl, tpl, sizeof pl);
            np = n;
        }
    }
    char shown[100];
    sanitize(shown, sizeof shown, url);
    if (!ctx->route) {
        if (allow[0]) {
            return send_error(ctx, 405, "method_not_allowed", "Allow", allow,
                              "method %s not allowed on %s (allowed: %s)",
                              ctx->method, shown, allow);
        }
        return send_status(ctx, LP_ENOTFOUND, "no route for %s %s", ctx->method, shown);
    }
    for (size_t i = 0; i < np; i++) {
        size_t nl;
        const route_ent *e = ctx->route;
        /* parameter names come from the pattern, in order */
        size_t k = 0;
        for (size_t g = 0; g < e->n_segs; g++) {
            if (!is_param(e->segs[g], &nl)) continue;
            if (k++ == i) {
                ctx->param_names[i] = e->segs[g];
                break;
            }
        }
        ctx->param_vals[i] = lp_strndup(ps[i], pl[i]);
        if (!ctx->param_vals[i]) return send_status(ctx, LP_ENOMEM, "out of memory");
        ctx->n_params = i + 1;
    }

    /* auth */
    if (ctx->route->r.auth) {
        const char *h = MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND, "Authorization");
        if (!h || strncasecmp(h, "Bearer ", 7) != 0) {
            return send_error(ctx, 401, lp_status_code(LP_EAUTH), "WWW-Authenticate", "Bearer",
                              "this route needs 'Authorization: Bearer <api key>'");
        }
        const char *tok = h + 7;
        while (*tok == ' ') tok++;
        if (s->n_keys == 0 || !lp_api_key_match(tok, s->keys, s->n_keys)) {
            return send_status(ctx, LP_EFORBIDDEN, "API key rejected");
        }
    }

    /* body limit from the declared length: refuse before reading anything */
    ctx->limit = ctx->route->r.body_limit ? ctx->route->r.body_limit : s->opts.body_limit;
    const char *cl = MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND, "Content-Length");
    if (cl) {
        char *end;
        errno = 0;
        unsigned long long n = strtoull(cl, &end, 10);
        if (errno == 0 && end != cl && *end == '\0') {
            if (n > ctx->limit) {
                return send_status(ctx, LP_ETOOBIG, "body: %llu bytes, the limit is %zu", n,
                                   ctx->limit);
            }
            if (n > 0) {
                ctx->body = malloc((size_t)n + 1);
                if (!ctx->body) return send_status(ctx, LP_ENOMEM, "body: out of memory");
                ctx->cap = (size_t)n + 1;
            }
        }
    }
    return MHD_YES;
}

static enum MHD_Result append_body(lp_req_priv *ctx, const char *data, size_t n)
{
    if (ctx->too_big) return MHD_YES;
    if (n > ctx->limit - ctx->len) {
        /* chunked or lying client: keep reading but stop storing */
        ctx->too_big = true;
        free(ctx->body);
        ctx->body = NULL;
        ctx->cap = 0;
        return MHD_YES;
    }
    if (ctx->len + n + 1 > ctx->cap) {
        size_t cap = ctx->cap ? ctx->cap : 4096;
        while (cap < ctx->len + n + 1) cap *= 2;
        if (cap > ctx->limit + 1) cap = ctx->limit + 1;
        char *b = realloc(ctx->body, cap);
        if (!b) return MHD_NO;
        ctx->body = b;
        ctx->cap = cap;
    }
    memcpy(ctx->body + ctx->len, data, n);
    ctx->len += n;
    return MHD_YES;
}

lp_deferred *lp_req_defer(const lp_req *req)
{
    lp_req_priv *ctx = req ? req->priv : NULL;
    if (!ctx || ctx->deferred || ctx->responded) return NULL;
    ctx->dres = calloc(1, sizeof *ctx->dres);
    if (!ctx->dres) return NULL;
    MHD_suspend_connection(ctx->conn);
    ctx->deferred = true;
    atomic_fetch_add(&ctx->srv->n_deferred, 1);
    return (lp_deferred *)ctx;
}

lp_res *lp_deferred_res(lp_deferred *d)
{
    return ((lp_req_priv *)d)->dres;
}

/* Queue the deferred answer (allowed on a suspended connection; sent on resume) and resume. */
static void deferred_send(lp_req_priv *ctx)
{
    lp_server *s = ctx->srv;
    lp_res *res = ctx->dres;
    if (!res->set) lp_http_error(res, LP_EINTERNAL, "%s", lp_strerror(LP_EINTERNAL));
    ctx->dres = NULL;
    send_res(ctx, res);
    free(res);
    MHD_resume_connection(ctx->conn);
    atomic_fetch_sub(&s->n_deferred, 1);
}

void lp_deferred_finish(lp_deferred *d)
{
    lp_req_priv *ctx = (lp_req_priv *)d;
    /* still inside the handler: the access callback sends it when the handler returns, so
     * MHD never sees a queue from this thread while its own callback runs */
    int phase = 0;
    if (atomic_compare_exchange_strong(&ctx->dphase, &phase, 2)) return;
    deferred_send(ctx);
}

static enum MHD_Result final_call(lp_server *s, lp_req_priv *ctx)
{
    const route_ent *e = ctx->route;
    if (ctx->too_big) {
        return send_status(ctx, LP_ETOOBIG, "body: more than %zu bytes, the limit of this route",
                           ctx->limit);
    }
    if (!ctx->body) {
        ctx->body = malloc(1);
        if (!ctx->body) return send_status(ctx, LP_ENOMEM, "out of memory");
    }
    ctx->body[ctx->len] = '\0';

    cJSON *json = NULL;
    bool need = e->r.json || e->r.fields;
    lp_req req = {.method = ctx->method, .path = ctx->path, .id = ctx->id, .body = ctx->body,
                  .body_len = ctx->len, .user = s->user, .priv = ctx};
    lp_res res;
    memset(&res, 0, sizeof res);
    if (e->r.fast && need && ctx->len > 0) {
        if (e->r.fast(&req, &res, s->user)) {
            if (!res.set) lp_http_error(&res, LP_EINTERNAL, "%s", lp_strerror(LP_EINTERNAL));
            return send_res(ctx, &res);
        }
        res_free(&res);
        memset(&res, 0, sizeof res);
    }
    const char *ct = MHD_lookup_connection_value(ctx->conn, MHD_HEADER_KIND, "Content-Type");
    if (need || (header_is_json(ct) && ctx->len > 0)) {
        lp_err err;
        lp_err_clear(&err);
        if (lp_json_parse_body(ctx->body, ctx->len, s->opts.json_max_depth, "body", &json,
                               &err) != LP_OK) {
            return send_status(ctx, err.status, "%s", lp_err_text(&err));
        }
        if (e->r.fields && lp_fields_check(json, e->r.fields, e->r.allow_unknown, &err) != LP_OK) {
            cJSON_Delete(json);
            return send_status(ctx, err.status, "%s", lp_err_text(&err));
        }
    }
    req.json = json;
    lp_status st = e->r.handler(&req, &res, s->user);
    cJSON_Delete(json);
    if (ctx->deferred) { /* answered by lp_deferred_finish; anything set here is dropped */
        res_free(&res);
        int phase = 0;
        if (!atomic_compare_exchange_strong(&ctx->dphase, &phase, 1)) deferred_send(ctx);
        return MHD_YES;
    }
    if (!res.set) {
        if (st != LP_OK) {
            lp_http_error(&res, st, "%s", lp_strerror(st));
        } else {
            lp_res_bytes(&res, 204, NULL, NULL, 0);
        }
    }
    return send_res(ctx, &res);
}

/* libmicrohttpd (0.9.75) keeps every query parameter in the connection's memory pool, and when a
 * request has more than the pool holds it neither answers nor closes: the connection hangs until
 * its timeout (1,000 short parameters do it with a 32 KiB pool, 3,000 with 128 KiB). No route
 * takes more than a few parameters, so a query with too many of them (or whose parameters and
 * URL together would not fit the pool) is refused before libmicrohttpd parses it: this callback
 * runs on the raw URI first (the URI log callback, documented to run before the URI or its
 * arguments are modified), cuts the query string at the '?' so that nothing is parsed, and marks
 * the request, which on_access then answers with a 414. */
static char query_refused; /* the marker this callback hands to on_access as *con_cls */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)conn;
    const lp_server *s = cls;
    char *q = uri ? strchr(uri, '?') : NULL;
    if (!q) return NULL;
    size_t n = 1, len = strlen(q);
    for (const char *p = q + 1; *p; p++) n += *p == '&';
    /* a parameter costs libmicrohttpd about 56 bytes of pool besides its text */
    if (n <= LP_SERVE_MAX_QUERY_PARAMS && len + 64 * n + 8192 <= s->opts.connection_memory)
        return NULL;
    q[1] = '\0'; /* the uri is libmicrohttpd's own writable read buffer */
    return &query_refused;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    lp_server *s = cls;
    lp_req_priv *ctx = *con_cls;
    bool refused = (void *)ctx == (void *)&query_refused;
    if (refused) ctx = NULL;
    if (!ctx) {
        ctx = calloc(1, sizeof *ctx);
        if (!ctx) return MHD_NO;
        ctx->srv = s;
        ctx->conn = conn;
        ctx->t0 = lp_time_ns();
        ctx->path = lp_strdup(url ? url : "");
        /* a bounded copy by hand, as below: snprintf takes glibc's positional-argument path
         * once libquadmath is loaded (see json.c) */
        size_t ml = method ? strnlen(method, sizeof ctx->method - 1) : 0;
        memcpy(ctx->method, method ? method : "", ml);
        ctx->method[ml] = '\0';
        make_request_id(s, conn, ctx->id);
        *con_cls = ctx;
        atomic_fetch_add(&s->in_flight, 1);
        if (!ctx->path) return send_status(ctx, LP_ENOMEM, "out of memory");
        if (refused) {
            lp_res res;
            memset(&res, 0, sizeof res);
            lp_http_error_raw(&res, 414, lp_status_code(LP_ETOOBIG),
                              "query string: more than %d parameters, or more than fit in this "
                              "server's %zu bytes of request memory",
                              LP_SERVE_MAX_QUERY_PARAMS, s->opts.connection_memory);
            return send_res(ctx, &res);
        }
        return first_call(s, ctx, ctx->path, ctx->method);
    }
    ctx->conn = conn;
    if (ctx->responded) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        enum MHD_Result r = append_body(ctx, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return r;
    }
    return final_call(s, ctx);
}

static void json_escape_into(char *out, size_t cap, const char *in)
{
    size_t o = 0;
    for (; in && *in && o + 7 < cap; in++) {
        unsigned char c = (unsigned char)*in;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    lp_server *s = cls;
    lp_req_priv *ctx = *con_cls;
    *con_cls = NULL;
    if (!ctx || (void *)ctx == (void *)&query_refused) return;
    uint64_t dt_ns = lp_time_ns() - ctx->t0;
    const char *route = ctx->route ? ctx->route->r.path : "unmatched";
    const char *method = "OTHER";
    for (size_t i = 0; i < sizeof known_methods / sizeof *known_methods; i++) {
        if (strcmp(ctx->method, known_methods[i]) == 0) method = known_methods[i];
    }
    char status[16] = "aborted";
    if (ctx->responded && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        int v = ctx->status; /* three digits by hand: snprintf takes glibc's slow path here */
        if (v >= 100 && v <= 999) {
            status[0] = (char)('0' + v / 100);
            status[1] = (char)('0' + v / 10 % 10);
            status[2] = (char)('0' + v % 10);
            status[3] = '\0';
        } else {
            snprintf(status, sizeof status, "%d", v);
        }
    }
    const char *lv[3] = {route, method, status};
    lp_metric_series_add(lp_metric_series_get(s->m_requests, lv), 1.0);
    lp_metric_series_observe(ctx->route ? ctx->route->latency : s->m_unmatched_latency,
                             (double)dt_ns * 1e-9);
    if (ctx->err_code[0]) {
        const char *ev[1] = {ctx->err_code};
        lp_metric_series_add(lp_metric_series_get(s->m_errors, ev), 1.0);
    }
    if (s->opts.access_log && lp_log_get_level() <= LP_LOG_LEVEL_INFO) {
        char path[512], ts[40], line[1024];
        json_escape_into(path, sizeof path, ctx->path);
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        struct tm tm;
        gmtime_r(&now.tv_sec, &tm);
        size_t k = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
        snprintf(ts + k, sizeof ts - k, ".%03ldZ", now.tv_nsec / 1000000);
        snprintf(line, sizeof line,
                 "{\"ts\":\"%s\",\"type\":\"access\",\"service\":\"%s\",\"id\":\"%s\","
                 "\"method\":\"%s\",\"path\":\"%s\",\"status\":%s%s%s,\"bytes\":%zu,"
                 "\"latency_us\":%llu}\n",
                 ts, s->name, ctx->id, method, path, ctx->responded ? "" : "\"",
                 ctx->responded ? status : "aborted", ctx->responded ? "" : "\"", ctx->bytes,
                 (unsigned long long)(dt_ns / 1000));
        fputs(line, stderr);
    }
    atomic_fetch_sub(&s->in_flight, 1);
    ctx_free(ctx);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    lp_logv(LP_LOG_LEVEL_DEBUG, fmt, ap);
}

/* ---- server life ----------------------------------------------------------------------------*/

static const double latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                         0.1,    0.25,  0.5,    1.0,   2.5,   5.0,  10.0};

static lp_status setup_metrics(lp_server *s, lp_err *err)
{
    static const char *const l_req[] = {"route", "method", "status"};
    static const char *const l_route[] = {"route"};
    static const char *const l_code[] = {"code"};
    static const char *const l_result[] = {"result"};
    lp_metric *inflight = NULL;
    lp_status st;
    s->metrics = lp_metrics_new();
    if (!s->metrics) return lp_err_set(err, LP_ENOMEM, "server: out of memory");
    if ((st = lp_metrics_register(s->metrics, "lepton_http_requests_total",
                                  "HTTP requests by route pattern, method and status",
                                  LP_METRIC_TYPE_COUNTER, l_req, 3, NULL, 0, &s->m_requests,
                                  err)) != LP_OK ||
        (st = lp_metrics_register(s->metrics, "lepton_http_request_duration_seconds",
                                  "HTTP request latency by route pattern, seconds",
                                  LP_METRIC_TYPE_HISTOGRAM, l_route, 1, latency_buckets,
                                  sizeof latency_buckets / sizeof *latency_buckets,
                                  &s->m_latency, err)) != LP_OK ||
        (st = lp_metrics_register(s->metrics, "lepton_http_in_flight",
                                  "HTTP requests being handled", LP_METRIC_TYPE_GAUGE, NULL, 0,
                                  NULL, 0, &inflight, err)) != LP_OK ||
        (st = lp_metrics_register(s->metrics, "lepton_http_errors_total",
                                  "HTTP error replies by error code", LP_METRIC_TYPE_COUNTER,
                                  l_code, 1, NULL, 0, &s->m_errors, err)) != LP_OK ||
        (st = lp_metrics_register(s->metrics, "lepton_reloads_total",
                                  "reloads by result", LP_METRIC_TYPE_COUNTER, l_result, 1, NULL,
                                  0, &s->m_reloads, err)) != LP_OK) {
        return st;
    }
    s->m_inflight = lp_metric_series_get(inflight, NULL);
    const char *um[1] = {"unmatched"};
    s->m_unmatched_latency = lp_metric_series_get(s->m_latency, um);
    for (size_t i = 0; i < s->n_routes; i++) {
        const char *lv[1] = {s->routes[i].r.path};
        s->routes[i].latency = lp_metric_series_get(s->m_latency, lv);
    }
    return LP_OK;
}

lp_status lp_server_new(const lp_route *routes, size_t n_routes, void *user,
                        const lp_server_opts *opts, lp_server **out, lp_err *err)
{
    *out = NULL;
    lp_server_opts o = opts ? *opts : lp_server_opts_default();
    lp_status st = lp_server_opts_check(&o, err);
    if (st != LP_OK) return st;
    if (n_routes && !routes) return lp_err_set(err, LP_EINVAL, "server: routes is NULL");
    lp_server *s = calloc(1, sizeof *s);
    if (!s) return lp_err_set(err, LP_ENOMEM, "server: out of memory");
    s->wake[0] = s->wake[1] = -1;
    pthread_mutex_init(&s->reload_mu, NULL);
    s->opts = o;
    s->user = user;
    s->host = lp_strdup(o.host);
    s->name = lp_strdup(o.name);
    s->version = lp_strdup(o.version);
    s->opts.host = s->host;
    s->opts.name = s->name;
    s->opts.version = s->version;
    s->routes = lp_calloc(n_routes + LP_N_BUILTIN, sizeof *s->routes);
    if (!s->host || !s->name || !s->version || !s->routes) {
        lp_server_free(s);
        return lp_err_set(err, LP_ENOMEM, "server: out of memory");
    }
    /* built-in routes, except the reload route which lp_server_set_reload adds */
    for (size_t i = 0; i < n_routes + LP_N_BUILTIN - 1; i++) {
        const lp_route *r = i < n_routes ? &routes[i] : &builtin_routes[i - n_routes];
        st = route_compile(&s->routes[i], r, i, err);
        s->n_routes = i + 1;
        if (st != LP_OK) {
            lp_server_free(s);
            return st;
        }
        for (size_t k = 0; k < i; k++) {
            if (strcmp(s->routes[k].r.path, r->path) == 0 &&
                strcmp(s->routes[k].r.method, r->method) == 0) {
                lp_err_set(err, LP_EINVAL, "route %zu (%s %s): defined twice%s", i, r->method,
                           r->path, i >= n_routes ? " (it is a shared endpoint)" : "");
                lp_server_free(s);
                return LP_EINVAL;
            }
        }
    }
    s->id_seed = lp_time_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)s;
    if (pipe2(s->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
        lp_server_free(s);
        return lp_err_set(err, LP_EIO, "server: pipe: %s", strerror(errno));
    }
    if ((st = setup_metrics(s, err)) != LP_OK) {
        lp_server_free(s);
        return st;
    }
    *out = s;
    return LP_OK;
}

lp_status lp_server_set_api_keys(lp_server *s, char *const *keys, size_t n, lp_err *err)
{
    if (!s || (n && !keys)) return lp_err_set(err, LP_EINVAL, "api keys: bad arguments");
    if (s->d) return lp_err_set(err, LP_ESTATE, "api keys: set them before lp_server_start");
    char **copy = lp_calloc(n + 1, sizeof *copy);
    if (!copy) return lp_err_set(err, LP_ENOMEM, "api keys: out of memory");
    for (size_t i = 0; i < n; i++) {
        copy[i] = lp_strdup(keys[i]);
        if (!copy[i] || !*keys[i]) {
            lp_api_keys_free(copy);
            return lp_err_set(err, copy[i] ? LP_EINVAL : LP_ENOMEM, "api keys: key %zu %s", i,
                              copy[i] ? "is empty" : "out of memory");
        }
    }
    lp_api_keys_free(s->keys);
    s->keys = copy;
    s->n_keys = n;
    return LP_OK;
}

void lp_server_set_reload(lp_server *s, lp_reload_fn fn, void *user)
{
    if (!s || s->d) return;
    s->reload_fn = fn;
    s->reload_user = user;
    bool have = false;
    for (size_t i = 0; i < s->n_routes; i++) {
        have |= s->routes[i].r.handler == h_reload;
    }
    if (fn && !have) {
        lp_err err;
        route_ent *e = &s->routes[s->n_routes];
        if (route_compile(e, &builtin_routes[LP_N_BUILTIN - 1], s->n_routes, &err) == LP_OK) {
            const char *lv[1] = {e->r.path};
            e->latency = lp_metric_series_get(s->m_latency, lv);
            s->n_routes++;
        } else {
            route_free(e);
        }
    }
}

lp_metrics *lp_server_metrics(lp_server *s)
{
    return s ? s->metrics : NULL;
}

lp_status lp_server_start(lp_server *s, lp_err *err)
{
    if (!s) return lp_err_set(err, LP_EINVAL, "server: NULL");
    if (s->d) return lp_err_set(err, LP_ESTATE, "server: already started");
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)s->opts.port);
    inet_pton(AF_INET, s->host, &sa.sin_addr);
    unsigned threads = s->opts.threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n > 0 ? (unsigned)n : 1;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC |
                     MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    s->d = MHD_start_daemon(
        flags, (uint16_t)s->opts.port, NULL, NULL, on_access, s, MHD_OPTION_SOCK_ADDR, &sa,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT,
        s->opts.connection_limit, MHD_OPTION_CONNECTION_TIMEOUT, s->opts.connection_timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, s->opts.connection_memory,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_URI_LOG_CALLBACK, on_uri, s,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, s, MHD_OPTION_END);
    if (!s->d) {
        return lp_err_set(err, LP_EIO, "server: cannot listen on %s:%u (%s)", s->host,
                          s->opts.port, errno ? strerror(errno) : "libmicrohttpd refused");
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : s->opts.port;
    lp_log_info("%s %s listening on http://%s:%u (%u threads)", s->name, s->version, s->host,
                s->port, threads);
    return LP_OK;
}

unsigned lp_server_port(const lp_server *s)
{
    return s ? s->port : 0;
}

void lp_server_set_ready(lp_server *s, bool ready)
{
    if (s) atomic_store(&s->ready, ready);
}

unsigned lp_server_in_flight(const lp_server *s)
{
    return s ? atomic_load(&((lp_server *)s)->in_flight) : 0;
}

lp_status lp_server_reload(lp_server *s, lp_err *err)
{
    if (!s) return lp_err_set(err, LP_EINVAL, "reload: no server");
    if (!s->reload_fn) return lp_err_set(err, LP_ESTATE, "reload: the service has no reload");
    lp_err local;
    lp_err_clear(&local);
    pthread_mutex_lock(&s->reload_mu);
    lp_status st = s->reload_fn(s->reload_user, &local);
    pthread_mutex_unlock(&s->reload_mu);
    const char *lv[1] = {st == LP_OK ? "ok" : "error"};
    lp_metric_series_add(lp_metric_series_get(s->m_reloads, lv), 1.0);
    if (st != LP_OK) {
        if (local.status == LP_OK) local.status = st;
        lp_log_warn("%s: reload failed, keeping the current object: %s", s->name,
                    lp_err_text(&local));
        return lp_err_set(err, st, "reload failed, still serving the previous version: %s",
                          lp_err_text(&local));
    }
    lp_log_info("%s: reloaded", s->name);
    return LP_OK;
}

void lp_server_stop(lp_server *s)
{
    if (!s || !s->d) return;
    MHD_socket lfd = MHD_quiesce_daemon(s->d);
    uint64_t t0 = lp_time_ns();
    while (atomic_load(&s->in_flight) > 0 &&
           lp_time_ns() - t0 < (uint64_t)s->opts.drain_timeout_ms * 1000000ull) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* a suspended connection must be resumed before MHD stops: deferred answers always finish
     * (their producer outlives the server), so wait for them past the drain timeout */
    while (atomic_load(&s->n_deferred) > 0 && lp_time_ns() - t0 < 60ull * 1000000000ull) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    unsigned left = atomic_load(&s->in_flight);
    MHD_stop_daemon(s->d);
    if (lfd != MHD_INVALID_SOCKET) close(lfd);
    s->d = NULL;
    if (left) lp_log_warn("%s: stopped with %u requests still in flight", s->name, left);
    lp_log_info("%s: stopped", s->name);
    fflush(stderr);
}

void lp_server_free(lp_server *s)
{
    if (!s) return;
    lp_server_stop(s);
    for (size_t i = 0; i < s->n_routes; i++) route_free(&s->routes[i]);
    free(s->routes);
    lp_api_keys_free(s->keys);
    lp_metrics_free(s->metrics);
    if (s->wake[0] >= 0) close(s->wake[0]);
    if (s->wake[1] >= 0) close(s->wake[1]);
    pthread_mutex_destroy(&s->reload_mu);
    free(s->host);
    free(s->name);
    free(s->version);
    free(s);
}

/* ---- signals --------------------------------------------------------------------------------*/

static atomic_int g_wake_fd = -1;

static void on_signal(int sig)
{
    int saved = errno;
    int fd = atomic_load(&g_wake_fd);
    if (fd >= 0) {
        unsigned char c = (unsigned char)sig;
        ssize_t w = write(fd, &c, 1);
        (void)w;
    }
    errno = saved;
}

void lp_server_shutdown(lp_server *s)
{
    if (!s || s->wake[1] < 0) return;
    unsigned char c = (unsigned char)SIGTERM;
    ssize_t w = write(s->wake[1], &c, 1);
    (void)w;
}

lp_status lp_server_run_until_signal(lp_server *s, lp_err *err)
{
    if (!s) return lp_err_set(err, LP_EINVAL, "server: NULL");
    if (!s->d) {
        lp_status st = lp_server_start(s, err);
        if (st != LP_OK) return st;
    }
    int expected = -1;
    if (!atomic_compare_exchange_strong(&g_wake_fd, &expected, s->wake[1])) {
        return lp_err_set(err, LP_ESTATE, "server: another server already waits for signals");
    }
    static const int sigs[3] = {SIGTERM, SIGINT, SIGHUP};
    struct sigaction old[3], sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &sa, &old[i]);

    bool stop = false;
    while (!stop) {
        struct pollfd p = {.fd = s->wake[0], .events = POLLIN};
        int r = poll(&p, 1, -1);
        if (r < 0 && errno != EINTR) break;
        unsigned char c[16];
        ssize_t n;
        while ((n = read(s->wake[0], c, sizeof c)) > 0) {
            for (ssize_t i = 0; i < n; i++) {
                if (c[i] == SIGHUP && !s->reload_fn) {
                    lp_log_warn("%s: SIGHUP ignored: this service has no reload (restart it to "
                                "load another model)", s->name);
                } else if (c[i] == SIGHUP) {
                    lp_log_info("%s: SIGHUP, reloading", s->name);
                    lp_err rerr;
                    lp_err_clear(&rerr);
                    lp_server_reload(s, &rerr);
                } else {
                    lp_log_info("%s: %s, stopping gracefully", s->name,
                                c[i] == SIGINT ? "SIGINT" : "SIGTERM");
                    stop = true;
                }
            }
        }
    }
    atomic_store(&g_wake_fd, -1);
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &old[i], NULL);
    lp_server_set_ready(s, false);
    lp_server_stop(s);
    return LP_OK;
}

lp_status lp_serve(const lp_route *routes, size_t n_routes, void *user,
                   const lp_server_opts *opts, lp_err *err)
{
    lp_server *s = NULL;
    lp_status st = lp_server_new(routes, n_routes, user, opts, &s, err);
    if (st != LP_OK) return st;
    st = lp_server_start(s, err);
    if (st == LP_OK) {
        lp_server_set_ready(s, true);
        st = lp_server_run_until_signal(s, err);
    }
    lp_server_free(s);
    return st;
}
