/*
 * http_client.c - see http_client.h. Included by each service test (one translation unit each).
 */
#include "http_client.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

int http_connect(unsigned port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

bool http_send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static ssize_t read_some(int fd, char *buf, size_t cap, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    do {
        r = poll(&p, 1, timeout_ms);
    } while (r < 0 && errno == EINTR);
    if (r <= 0) return -2; /* timeout */
    ssize_t n;
    do {
        n = recv(fd, buf, cap, 0);
    } while (n < 0 && errno == EINTR);
    return n;
}

bool http_wait_closed(int fd, int timeout_ms)
{
    char buf[4096];
    for (;;) {
        ssize_t n = read_some(fd, buf, sizeof buf, timeout_ms);
        if (n == -2) return false;
        if (n <= 0) return true;
    }
}

const char *http_header(const http_resp *r, const char *name, char *buf, size_t cap)
{
    if (!r->head) return NULL;
    size_t nl = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p, "\r\n")) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ') v++;
            const char *e = strstr(v, "\r\n");
            size_t n = e ? (size_t)(e - v) : strlen(v);
            if (n >= cap) n = cap - 1;
            memcpy(buf, v, n);
            buf[n] = '\0';
            return buf;
        }
    }
    return NULL;
}

bool http_read_response(int fd, http_resp *out, int timeout_ms)
{
    memset(out, 0, sizeof *out);
    size_t cap = 8192, len = 0;
    char *buf = malloc(cap);
    if (!buf) return false;
    size_t head_end = 0;
    long long clen = -1;
    bool eof = false;
    for (;;) {
        if (!head_end) {
            buf[len] = '\0';
            char *e = len ? strstr(buf, "\r\n\r\n") : NULL;
            if (e) {
                head_end = (size_t)(e - buf) + 4;
                out->head = strndup(buf, head_end - 2);
                char v[64];
                if (http_header(out, "Content-Length", v, sizeof v)) clen = atoll(v);
                sscanf(buf, "HTTP/1.%*d %d", &out->status);
                char c[64];
                if (http_header(out, "Connection", c, sizeof c) && strcasecmp(c, "close") == 0) {
                    out->closed = true;
                }
            }
        }
        if (head_end && clen >= 0 && len - head_end >= (size_t)clen) break;
        if (eof) {
            if (head_end && clen < 0) break;
            free(buf);
            free(out->head);
            out->head = NULL;
            out->status = 0;
            return false;
        }
        if (cap - len < 4096) {
            cap *= 2;
            char *nb = realloc(buf, cap);
            if (!nb) break;
            buf = nb;
        }
        ssize_t n = read_some(fd, buf + len, cap - len - 1, timeout_ms);
        if (n == -2) {
            free(buf);
            free(out->head);
            out->head = NULL;
            out->status = 0;
            return false;
        }
        if (n <= 0) {
            eof = true;
            out->closed = true;
            continue;
        }
        len += (size_t)n;
    }
    size_t blen = len - head_end;
    if (clen >= 0 && (size_t)clen < blen) blen = (size_t)clen;
    out->body = malloc(blen + 1);
    memcpy(out->body, buf + head_end, blen);
    out->body[blen] = '\0';
    out->body_len = blen;
    free(buf);
    return out->status != 0;
}

char *http_format(const char *method, const char *path, const char *headers, const void *body,
                  size_t len, bool keep_alive, size_t *out_len)
{
    size_t hl = headers ? strlen(headers) : 0;
    size_t cap = strlen(method) + strlen(path) + hl + len + 256;
    char *buf = malloc(cap);
    int n = snprintf(buf, cap, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s", method, path,
                     keep_alive ? "" : "Connection: close\r\n", headers ? headers : "");
    if (body) n += snprintf(buf + n, cap - (size_t)n, "Content-Length: %zu\r\n", len);
    n += snprintf(buf + n, cap - (size_t)n, "\r\n");
    if (body && len) memcpy(buf + n, body, len);
    *out_len = (size_t)n + (body ? len : 0);
    return buf;
}

int http_request(unsigned port, const char *method, const char *path, const char *headers,
                 const void *body, size_t len, http_resp *out)
{
    memset(out, 0, sizeof *out);
    int fd = http_connect(port);
    if (fd < 0) return 0;
    size_t n;
    char *req = http_format(method, path, headers, body, len, false, &n);
    /* A server may answer (413) and close before the whole body is sent: the send then fails,
     * but the reply can still be waiting in the receive buffer, so read it either way. */
    (void)http_send_all(fd, req, n);
    free(req);
    http_read_response(fd, out, 10000);
    close(fd);
    return out->status;
}

void http_resp_free(http_resp *r)
{
    free(r->head);
    free(r->body);
    r->head = r->body = NULL;
}
