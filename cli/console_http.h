/*
 * console_http.h - the small loopback HTTP/1.1 client `lepton console` uses to reach the four
 * services, and the Prometheus text parser its overview reads their /metrics with.
 *
 * The client speaks to 127.0.0.1 only, one request per connection ("Connection: close"), with
 * a deadline over the whole exchange (connect, send, receive). It reads Content-Length,
 * chunked and read-to-close bodies, up to CONSOLE_HTTP_MAX_BODY bytes. It does not follow
 * redirects, keep connections, or speak TLS.
 */
#ifndef LEPTON_CLI_CONSOLE_HTTP_H
#define LEPTON_CLI_CONSOLE_HTTP_H

#include "lepton/lepton.h"

#define CONSOLE_HTTP_MAX_BODY (32u << 20) /* a reply larger than this is refused (LP_ETOOBIG) */

typedef struct console_reply {
    int status;         /* HTTP status, 100..599 */
    char *content_type; /* the Content-Type header, or NULL when absent */
    char *body;         /* the body bytes, NUL-terminated; "" when none */
    size_t len;
} console_reply;

/* One request to http://127.0.0.1:port<target>. target is the path plus an optional "?query"
 * (it must start with '/' and hold no CR, LF or space). content_type and authorization (the
 * Authorization header's value, passed through) may be NULL (no header); body/len may be
 * NULL/0. timeout_ms bounds the whole exchange.
 * out: filled on success; free with console_reply_free (also safe on a zeroed reply).
 * Errors: LP_EIO "127.0.0.1:8082: connection refused" (or timed out, reset), LP_EFORMAT when the
 * reply is not HTTP/1.x, LP_ETOOBIG above CONSOLE_HTTP_MAX_BODY, LP_EINVAL for a bad target,
 * LP_ENOMEM. Thread-safe (no shared state). */
lp_status console_http_do(unsigned port, const char *method, const char *target,
                          const char *content_type, const char *authorization,
                          const char *body, size_t len, unsigned timeout_ms,
                          console_reply *out, lp_err *err);
void console_reply_free(console_reply *r);

/* One sample of a Prometheus text exposition (format 0.0.4): the metric name and its labels
 * as they appear, e.g. name "lepton_http_requests_total", labels
 * "route=\"/v1/chat\",method=\"POST\",status=\"200\"" (without braces), and the value. */
typedef struct console_sample {
    char name[128];
    char labels[512];
    double value;
} console_sample;

/* Parse Prometheus text: one sample per non-comment line; lines that do not parse (or whose
 * name or labels are longer than the fields above) are skipped. Returns the samples
 * (malloc'd, caller frees) and their count in *n; NULL with *n = 0 when there are none or on
 * allocation failure. Thread-safe. */
console_sample *console_prom_parse(const char *text, size_t len, size_t *n);

/* The value of label `name` in a sample's label text, unescaped into buf (cap bytes, always
 * NUL-terminated); false when the label is absent. */
bool console_prom_label(const console_sample *s, const char *name, char *buf, size_t cap);

#endif
