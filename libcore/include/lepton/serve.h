/*
 * serve.h - the one HTTP layer every Lepton service stands on (libmicrohttpd + cJSON).
 *
 * A service is a static route table plus a user pointer (its state, e.g. a hot-swapped model).
 * The layer owns everything HTTP: listening (thread pool over epoll, keep-alive, connection
 * limit, per-connection timeout), routing with path parameters, body accumulation under a
 * per-route size limit, JSON parsing with depth / UTF-8 / finiteness checks, declarative field
 * specs, API keys, request ids, one access-log line per request, the shared endpoints
 * (/healthz, /readyz, /version, /metrics), graceful shutdown on SIGTERM/SIGINT and reload on
 * SIGHUP. It knows no model: it stands on base.h alone.
 *
 * One error shape everywhere: {"error":{"code":"<lp_status_code>","message":"<one line>"}},
 * with the HTTP status from lp_status_http(). Two codes live outside the status table:
 * "method_not_allowed" (405, with an Allow header) and "not_ready" (503 from /readyz).
 *
 * Also here, usable without a server: the metrics registry (lp_metrics, Prometheus text 0.0.4),
 * the JSON body checker (lp_json_parse_body, lp_fields_check) and the hot-swap pointer (lp_swap).
 */
#ifndef LEPTON_SERVE_H
#define LEPTON_SERVE_H

#include <cjson/cJSON.h>

#include "lepton/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== JSON bodies =========================================================================== */

/* Parse a request body as JSON. Checks, in order, before cJSON sees the bytes: non-empty, valid
 * UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF), no raw control bytes
 * other than \t \n \r, nesting of arrays/objects at most max_depth (so cJSON's recursion is
 * bounded by us, not by its CJSON_NESTING_LIMIT); then parses with cJSON requiring nothing but
 * whitespace after the value, and rejects numbers that overflow to +-Inf (e.g. 1e999).
 * what:  name used in messages ("body").
 * out:   the new tree on success (caller frees with cJSON_Delete); NULL on failure.
 * Errors: LP_EPARSE with "body: invalid JSON at byte 17 (line 2, column 5)" or
 *         "body: invalid UTF-8 at byte 3", "body: nesting deeper than 64 at byte 64",
 *         "body: number at byte 5 is out of range"; LP_EINVAL for an empty body; LP_ENOMEM.
 * Thread-safe. */
lp_status lp_json_parse_body(const char *data, size_t len, unsigned max_depth, const char *what,
                             cJSON **out, lp_err *err);

/* Add member `name` = v to object o as a JSON number printed with `digits` significant digits
 * (1..17; 9 round-trips a float, 17 a double), one snprintf: cJSON's own number printing
 * prints, re-parses and may print again, which costs more than the rest of a small answer.
 * A non-finite v becomes null (JSON has no NaN). Returns the new item, NULL on ENOMEM. */
cJSON *lp_json_add_float(cJSON *o, const char *name, double v, int digits);

/* Hand-built JSON answers (a hot path that skips cJSON's per-member allocations): append s as a
 * JSON string, quoted and escaped as cJSON_PrintUnformatted escapes it; append v as
 * lp_json_add_float prints it (`digits` significant digits, null when not finite). */
void lp_json_write_str(lp_buf *b, const char *s);
void lp_json_write_num(lp_buf *b, double v, int digits);
/* Finite v with `digits` (clamped to 1..17) significant digits into num (>= 40 bytes), exactly
 * as strfromd's "%.<digits>g" prints it (the common fixed-notation cases without printf, the
 * rest through strfromd); its length. */
size_t lp_json_format_num(char *num, double v, int digits);
/* Append v as cJSON_PrintUnformatted prints a number (cJSON 1.7: an integral value that fits an
 * int as an integer, else the shorter of %.15g and %.17g that reads back; null when not
 * finite), through strfromd rather than the printf family. */
void lp_json_write_cjson_num(lp_buf *b, double v);
/* Append the tree j as cJSON_PrintUnformatted writes it, byte for byte, without its
 * printf-family number printing (glibc's positional path with libquadmath loaded) and its
 * buffer re-allocations. false when j is NULL, holds an invalid item or a raw item without
 * text, nests deeper than 256, or b ran out of memory (what was appended stays). */
bool lp_json_write_tree(lp_buf *b, const cJSON *j);

/* True when data[0..len) is well-formed UTF-8 (RFC 3629); *bad_at gets the first bad byte's
 * offset otherwise (may be NULL). */
bool lp_utf8_valid(const char *data, size_t len, size_t *bad_at);
/* Make the NUL-terminated s well-formed UTF-8 in place: each byte that does not start a valid
 * sequence becomes '?' (so a character cut by a "%.20s" or a raw client byte in a message
 * cannot make a JSON body invalid). Returns how many bytes were replaced. */
size_t lp_utf8_scrub(char *s);

typedef enum lp_field_type {
    LP_FIELD_TYPE_STRING = 0,
    LP_FIELD_TYPE_NUMBER,  /* any finite JSON number */
    LP_FIELD_TYPE_INTEGER, /* a number with no fractional part, |x| <= 2^53 */
    LP_FIELD_TYPE_BOOL,
    LP_FIELD_TYPE_OBJECT,
    LP_FIELD_TYPE_ARRAY
} lp_field_type;

/* One member of a JSON object body. A spec list ends with an entry whose name is NULL.
 * ranged:  for NUMBER/INTEGER, the value must lie in [min, max].
 * max_len: STRING: at most this many bytes; ARRAY: at most this many items; OBJECT: members.
 *          0 = no limit beyond the body limit. */
typedef struct lp_field_spec {
    const char *name;
    lp_field_type type;
    bool required;
    bool ranged;
    double min, max;
    size_t max_len;
} lp_field_spec;

/* Check a parsed body against specs. obj must be a JSON object; each spec'd member present must
 * have the type and bounds given; required members must be present; members not in specs are
 * rejected unless allow_unknown. JSON null counts as absent for optional fields and as missing
 * for required ones.
 * Errors (LP_EINVAL), each naming the field: "field 'text': expected a string, got a number",
 * "field 'k': 0 is below the minimum 1", "field 'q': missing (required)",
 * "field 'extra': unknown field", "body: expected a JSON object, got an array".
 * Thread-safe. */
lp_status lp_fields_check(const cJSON *obj, const lp_field_spec *specs, bool allow_unknown,
                          lp_err *err);

/* Name of a field type as it appears in messages ("string", "integer", ...). */
const char *lp_field_type_name(lp_field_type t);

/* ==== metrics registry (Prometheus text exposition format 0.0.4) ============================ */

typedef struct lp_metrics lp_metrics;
typedef struct lp_metric lp_metric;          /* a family: name, help, type, label names */
typedef struct lp_metric_series lp_metric_series; /* one labelled time series of a family */

typedef enum lp_metric_type {
    LP_METRIC_TYPE_COUNTER = 0,
    LP_METRIC_TYPE_GAUGE,
    LP_METRIC_TYPE_HISTOGRAM
} lp_metric_type;

#define LP_METRIC_MAX_LABELS 4
#define LP_METRIC_MAX_BUCKETS 32

/* An empty registry; NULL on allocation failure. lp_metrics_free(NULL) is a no-op; freeing
 * invalidates every family and series pointer taken from it. */
lp_metrics *lp_metrics_new(void);
void lp_metrics_free(lp_metrics *m);

/* Register a family. name must match [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]*
 * (at most LP_METRIC_MAX_LABELS, n_labels may be 0). For histograms, buckets are the strictly
 * increasing finite upper bounds (at most LP_METRIC_MAX_BUCKETS; +Inf is implicit); NULL/0 for
 * other types. Strings are copied. Registering a name twice returns LP_EEXIST.
 * Thread-safe (a mutex; registration is a start-up path). */
lp_status lp_metrics_register(lp_metrics *m, const char *name, const char *help,
                              lp_metric_type type, const char *const *label_names,
                              size_t n_labels, const double *buckets, size_t n_buckets,
                              lp_metric **out, lp_err *err);

/* The family called name, or NULL. Lock-free. */
lp_metric *lp_metrics_find(const lp_metrics *m, const char *name);

/* The series of family f with these label values (as many as the family's label names; values
 * are copied, any bytes). Created on first use. Existing series are found without a lock (an
 * append-only list published with release stores); creation takes the registry mutex.
 * Returns NULL only on allocation failure or a bad argument (every update accepts NULL). */
lp_metric_series *lp_metric_series_get(lp_metric *f, const char *const *label_values);

/* Updates: atomic, lock-free, callable from any thread. Counters only go up (negative adds are
 * ignored); gauges set/add; histograms observe (value <= bound goes to that bucket). */
void lp_metric_series_add(lp_metric_series *s, double v);
void lp_metric_series_set(lp_metric_series *s, double v);
void lp_metric_series_observe(lp_metric_series *s, double v);
/* Current value of a counter/gauge series, or a histogram's observation count. */
double lp_metric_series_value(const lp_metric_series *s);

/* A callback run at the start of every lp_metrics_write (e.g. to set gauges computed at scrape
 * time). At most 8 per registry; LP_ESTATE beyond that. Register before serving. */
typedef void (*lp_metrics_collect_fn)(lp_metrics *m, void *user);
lp_status lp_metrics_on_collect(lp_metrics *m, lp_metrics_collect_fn fn, void *user, lp_err *err);

/* Append the whole registry in Prometheus text format 0.0.4 to b: # HELP / # TYPE lines, then
 * one line per series (histograms: cumulative _bucket{le=...} lines ending at +Inf, _sum,
 * _count), families in registration order. Label values are escaped (\\ \" \n). */
void lp_metrics_write(lp_metrics *m, lp_buf *b);

/* ==== hot-swap pointer ======================================================================== */

/* An atomically swapped, reference-counted pointer to an immutable object (a model). Requests
 * acquire the current object and release it at the end; lp_swap_set installs a new one, and the
 * old one is destroyed (by the destructor given to lp_swap_new) exactly once, when its last
 * reference is released - possibly on a request thread. */
typedef struct lp_swap lp_swap;
typedef struct lp_swap_ref lp_swap_ref;
typedef void (*lp_swap_destroy_fn)(void *obj, void *user);

/* obj may be NULL (nothing loaded yet). destroy may be NULL (objects are not freed). Returns NULL
 * on allocation failure. */
lp_swap *lp_swap_new(void *obj, lp_swap_destroy_fn destroy, void *destroy_user);
/* Drops the swap's own reference to the current object. Every lp_swap_ref must have been
 * released before. NULL is a no-op. */
void lp_swap_free(lp_swap *s);
/* A reference to the current object; NULL only when s is NULL (it does not allocate).
 * lp_swap_ref_object gives the object, which stays valid until lp_swap_release.
 * Thread-safe: a short critical section (one pointer load and one atomic increment). */
lp_swap_ref *lp_swap_acquire(lp_swap *s);
void *lp_swap_ref_object(const lp_swap_ref *r);
/* Generation of the object the ref holds (1 for the first, +1 per lp_swap_set). */
uint64_t lp_swap_ref_generation(const lp_swap_ref *r);
/* Release a reference; destroys the object when it was the last one of a replaced object.
 * NULL is a no-op. Thread-safe, lock-free. */
void lp_swap_release(lp_swap_ref *r);
/* Install obj as current; the previous object is destroyed once unreferenced. Returns
 * LP_ENOMEM (obj not installed, caller still owns it) on allocation failure. Thread-safe. */
lp_status lp_swap_set(lp_swap *s, void *obj, lp_err *err);
/* Generation of the current object. */
uint64_t lp_swap_generation(lp_swap *s);

/* ==== API keys =============================================================================== */

/* Load keys from a file with one key per line; blank lines and lines starting with '#' are
 * skipped; surrounding whitespace is trimmed. A key must be 8..256 printable ASCII bytes
 * without spaces. *keys (NULL-terminated array of *n strings) is freed with lp_api_keys_free.
 * Errors name the file and line, never the key. An empty file is LP_EINVAL. */
lp_status lp_api_keys_load(const char *path, char ***keys, size_t *n, lp_err *err);
void lp_api_keys_free(char **keys);

/* Constant-time check of a presented token against n keys: the time depends on the lengths of
 * the keys and the token only, never on where they differ or which key matched. */
bool lp_api_key_match(const char *token, char *const *keys, size_t n);

/* ==== server ================================================================================= */

typedef struct lp_server lp_server;
typedef struct lp_req_priv lp_req_priv;
typedef struct lp_res lp_res;

/* The parsed request a handler receives. Everything is owned by the layer and valid for the
 * duration of the handler call only. */
typedef struct lp_req {
    const char *method;  /* "GET", "POST", ... */
    const char *path;    /* decoded path without the query string */
    const char *id;      /* request id (also sent as X-Request-Id) */
    const char *body;    /* the body bytes, NUL-terminated for convenience; "" when none */
    size_t body_len;
    const cJSON *json;   /* the parsed body when it is JSON (see lp_route.json), else NULL */
    void *user;          /* the service's state given to lp_server_new */
    lp_req_priv *priv;   /* the layer's; use the accessors below */
} lp_req;

/* A path parameter of the route pattern ("{id}" -> lp_req_param(req, "id")), or NULL. */
const char *lp_req_param(const lp_req *req, const char *name);
/* A query parameter (decoded), or NULL. The first one when repeated. */
const char *lp_req_query(const lp_req *req, const char *name);
/* A request header (case-insensitive name), or NULL. */
const char *lp_req_header(const lp_req *req, const char *name);
/* Append the request's query parameters to out as a query string without the '?'
 * ("k=v&k2=v2", in arrival order), each name and value percent-encoded (RFC 3986 unreserved
 * characters kept), so it can be forwarded verbatim; a parameter without a value is "k". Nothing
 * is appended when there is no query. Allocation failure sets out->failed. */
void lp_req_query_string(const lp_req *req, lp_buf *out);

/* Handlers fill res through these. A handler returns LP_OK after setting a response, or a
 * status: when it returns an error without having set a response, the layer answers the error
 * shape with lp_strerror(status) as message. LP_OK without a response answers 204. */
typedef lp_status (*lp_handler_fn)(const lp_req *req, lp_res *res, void *user);

/* JSON response; takes ownership of body (freed by the layer, also on error). http: 100..599. */
lp_status lp_res_json(lp_res *res, int http, cJSON *body);
/* Deferred answers, for a handler whose answer waits on another thread (a group commit):
 * lp_req_defer suspends the request's connection and returns a token; the handler then returns
 * (its res is ignored) and its pool thread serves other connections. Later, exactly once, any
 * thread fills lp_deferred_res(d) with the lp_res_* / lp_http_error* calls and calls
 * lp_deferred_finish(d), which sends it (the token is invalid afterwards; an unset response
 * answers 500). NULL from lp_req_defer (out of memory, already deferred): answer in-line.
 * Stopping the server waits for every deferred answer. req->body and req->json are valid only
 * until the handler returns. Thread-safe as described. */
typedef struct lp_deferred lp_deferred;
lp_deferred *lp_req_defer(const lp_req *req);
lp_res *lp_deferred_res(lp_deferred *d);
void lp_deferred_finish(lp_deferred *d);
/* Raw bytes (copied) with a content type (copied). */
lp_status lp_res_bytes(lp_res *res, int http, const char *content_type, const void *data,
                       size_t len);
/* An extra response header (both copied; CR/LF in either is rejected with LP_EINVAL). */
lp_status lp_res_header(lp_res *res, const char *name, const char *value);
/* Set the error shape with status s (HTTP lp_status_http(s), code lp_status_code(s)) and a
 * printf-style one-line message; returns s, so a handler writes
 *     return lp_http_error(res, LP_EINVAL, "field 'text': expected a string");   */
lp_status lp_http_error(lp_res *res, lp_status s, const char *fmt, ...) LP_PRINTF(3, 4);
/* The same with an explicit HTTP status and code (for the few not in the status table);
 * returns LP_OK when http < 400 else LP_EINVAL (so handlers may return it as well). */
lp_status lp_http_error_raw(lp_res *res, int http, const char *code, const char *fmt, ...)
    LP_PRINTF(4, 5);
/* Shorthand for `return lp_http_error(res, err->status, "%s", lp_err_text(err))`. */
lp_status lp_http_error_from(lp_res *res, const lp_err *err);

/* A route's optional fast handler: called with req->json NULL before the layer parses the body
 * (on a route with json or fields, when the body is not empty). It answers the common case
 * itself from the raw bytes and returns true with res set; or it returns false, having set
 * nothing, and the layer goes on as without it (parse, field checks, handler), so every error
 * is still answered by the one checked path. It may not defer. */
typedef bool (*lp_fast_handler_fn)(const lp_req *req, lp_res *res, void *user);

/* One route. A service keeps a static const array of these. */
typedef struct lp_route {
    const char *method;      /* "GET", "POST", "PUT", "DELETE", "PATCH" */
    const char *path;        /* "/v1/sessions/{id}": literal segments and {name} parameters,
                              * each matching one non-empty segment */
    lp_handler_fn handler;
    size_t body_limit;       /* bytes; 0 = the server's default (opts.body_limit) */
    bool auth;               /* needs "Authorization: Bearer <key>" */
    bool json;               /* the body must be JSON (400 when empty or malformed); without it
                              * a body is parsed only when Content-Type is JSON */
    const lp_field_spec *fields; /* optional field specs (implies json and a JSON object) */
    bool allow_unknown;      /* with fields: members not in specs are allowed */
    lp_fast_handler_fn fast; /* optional, see lp_fast_handler_fn */
} lp_route;

typedef struct lp_server_opts {
    const char *host;                 /* IPv4 address to bind; default "127.0.0.1" */
    unsigned port;                    /* 0..65535; 0 = any free port (see lp_server_port) */
    unsigned threads;                 /* pool size; 0 = the online CPU count */
    unsigned connection_limit;        /* open connections at most; default 1024 */
    unsigned connection_timeout_s;    /* idle/slow connection closed after this; default 30 */
    size_t connection_memory;         /* per-connection header memory; default 32 KiB */
    size_t body_limit;                /* default per-route body limit; default 1 MiB */
    unsigned json_max_depth;          /* default 64 */
    unsigned drain_timeout_ms;        /* graceful stop waits this long for in-flight; 10000 */
    const char *name;                 /* service name (/version, logs); default "lepton" */
    const char *version;              /* service version (/version); default LP_VERSION_STRING */
    bool access_log;                  /* JSON access line per request on stderr (at INFO) */
} lp_server_opts;

lp_server_opts lp_server_opts_default(void);
/* LP_EINVAL naming the field when a value is out of range (e.g. "opts.port: 70000 is above
 * 65535"). */
lp_status lp_server_opts_check(const lp_server_opts *opts, lp_err *err);

/* Create a server (not listening yet). routes[0..n) are NOT copied: keep them alive (static).
 * Patterns are validated (LP_EINVAL naming the route); the shared endpoints are added after the
 * service's routes and may not be redefined. user is passed to every handler. opts may be NULL
 * (defaults). On success *out is the server (free with lp_server_free). */
lp_status lp_server_new(const lp_route *routes, size_t n_routes, void *user,
                        const lp_server_opts *opts, lp_server **out, lp_err *err);

/* Configuration, before lp_server_start. Keys are copied. With no keys, routes with auth answer
 * 401 without credentials and 403 with any (fail closed). */
lp_status lp_server_set_api_keys(lp_server *s, char *const *keys, size_t n, lp_err *err);
/* The service's reload callback (SIGHUP under lp_server_run_until_signal, and the auth-protected
 * route POST /v1/admin/reload added by this call). It should build the new object and install
 * it with lp_swap_set; on failure it returns an error and the old object stays. */
typedef lp_status (*lp_reload_fn)(void *user, lp_err *err);
void lp_server_set_reload(lp_server *s, lp_reload_fn fn, void *user);
/* The metrics registry of the server (to add service metrics: a model info gauge, a score
 * histogram). Owned by the server. */
lp_metrics *lp_server_metrics(lp_server *s);

/* Start listening (threads, epoll). LP_EIO naming the address when binding fails. */
lp_status lp_server_start(lp_server *s, lp_err *err);
/* The bound port (after start), 0 before. */
unsigned lp_server_port(const lp_server *s);
/* /readyz answers 200 when ready, else 503 "not_ready". Starts false. Any thread. */
void lp_server_set_ready(lp_server *s, bool ready);
/* Run the service's reload callback now (what SIGHUP and the admin route do); logs the outcome.
 * LP_ESTATE when no callback is set. Serialised: one reload at a time. */
lp_status lp_server_reload(lp_server *s, lp_err *err);
/* Requests currently being handled (accepted and not yet completed). */
unsigned lp_server_in_flight(const lp_server *s);

/* Graceful stop: stop accepting (the listening socket is closed), wait up to drain_timeout_ms
 * for in-flight requests to finish, then close the remaining connections and join the threads.
 * Idempotent. Not from a handler. */
void lp_server_stop(lp_server *s);

/* Block until SIGTERM or SIGINT (or lp_server_shutdown), answering SIGHUP with a reload; then
 * stop gracefully and flush stderr. Starts the server if needed. Installs process-wide signal
 * handlers for the duration (restored on return), so one server at a time runs this. */
lp_status lp_server_run_until_signal(lp_server *s, lp_err *err);
/* Make lp_server_run_until_signal return as if SIGTERM arrived. Any thread, async-signal-safe. */
void lp_server_shutdown(lp_server *s);

/* Stops (gracefully) if running, then frees. NULL is a no-op. */
void lp_server_free(lp_server *s);

/* new + start + set ready + run_until_signal + free: the whole main() of a simple service. */
lp_status lp_serve(const lp_route *routes, size_t n_routes, void *user,
                   const lp_server_opts *opts, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
