/*
 * console_http.c - loopback HTTP/1.1 client and Prometheus text parser of `lepton console`
 * (contracts in console_http.h). Sockets are non-blocking; every wait is a poll() bounded by
 * the deadline of the whole exchange, so a service that hangs costs the console at most the
 * timeout, never a thread forever.
 */
#include "console_http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/* Milliseconds left before the deadline (0 when passed). */
static int ms_left(uint64_t deadline_ns)
{
    uint64_t now = lp_time_ns();
    if (now >= deadline_ns)
        return 0;
    uint64_t ms = (deadline_ns - now + 999999u) / 1000000u;
    return ms > 600000u ? 600000 : (int)ms;
}

/* Wait for fd to be readable (events POLLIN) or writable (POLLOUT). false on timeout. */
static bool wait_fd(int fd, short events, uint64_t deadline_ns)
{
    for (;;) {
        int left = ms_left(deadline_ns);
        if (left == 0)
            return false;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left);
        if (r > 0)
            return true;
        if (r == 0)
            return false;
        if (errno != EINTR)
            return false;
    }
}

static lp_status connect_loopback(unsigned port, uint64_t deadline, int *out, lp_err *err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return lp_err_set(err, LP_EIO, "127.0.0.1:%u: socket: %s", port, strerror(errno));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (errno != EINPROGRESS) {
            int e = errno;
            close(fd);
            return lp_err_set(err, LP_EIO, "127.0.0.1:%u: %s", port, strerror(e));
        }
        if (!wait_fd(fd, POLLOUT, deadline)) {
            close(fd);
            return lp_err_set(err, LP_EIO, "127.0.0.1:%u: connect timed out", port);
        }
        int so = 0;
        socklen_t sl = sizeof so;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl) != 0 || so != 0) {
            close(fd);
            return lp_err_set(err, LP_EIO, "127.0.0.1:%u: %s", port,
                              strerror(so ? so : errno));
        }
    }
    *out = fd;
    return LP_OK;
}

static lp_status send_all(int fd, unsigned port, const char *p, size_t n, uint64_t deadline,
                          lp_err *err)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_fd(fd, POLLOUT, deadline))
                return lp_err_set(err, LP_EIO, "127.0.0.1:%u: sending timed out", port);
            continue;
        }
        /* A server may refuse a body early (413) and close: the reply is still worth reading. */
        return LP_OK;
    }
    return LP_OK;
}

/* Read until the peer closes, the deadline passes, or the reply is complete (headers parsed
 * and Content-Length bytes read). */
static lp_status recv_all(int fd, unsigned port, lp_buf *b, uint64_t deadline, lp_err *err)
{
    char chunk[16384];
    size_t need = SIZE_MAX; /* total bytes once the headers tell */
    for (;;) {
        if (b->len >= need)
            return LP_OK;
        ssize_t r = recv(fd, chunk, sizeof chunk, 0);
        if (r > 0) {
            lp_buf_put(b, chunk, (size_t)r);
            if (b->failed)
                return lp_err_set(err, LP_ENOMEM, "127.0.0.1:%u: out of memory", port);
            if (b->len > CONSOLE_HTTP_MAX_BODY + 65536u)
                return lp_err_set(err, LP_ETOOBIG, "127.0.0.1:%u: reply above %u bytes", port,
                                  CONSOLE_HTTP_MAX_BODY);
            if (need == SIZE_MAX) {
                /* the end of the headers and Content-Length, once they are in */
                const char *h = (const char *)b->data;
                const char *end = memmem(h, b->len, "\r\n\r\n", 4);
                if (end) {
                    size_t hl = (size_t)(end - h) + 4;
                    for (const char *l = memchr(h, '\n', hl); l && l < end;
                         l = memchr(l + 1, '\n', (size_t)(end - l))) {
                        if (!strncasecmp(l + 1, "content-length:", 15)) {
                            need = hl + strtoull(l + 16, NULL, 10);
                            break;
                        }
                    }
                }
            }
            continue;
        }
        if (r == 0)
            return LP_OK;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait_fd(fd, POLLIN, deadline))
                return lp_err_set(err, LP_EIO, "127.0.0.1:%u: no reply within the timeout", port);
            continue;
        }
        if (b->len > 0)
            return LP_OK; /* reset after a complete close-delimited reply */
        return lp_err_set(err, LP_EIO, "127.0.0.1:%u: %s", port, strerror(errno));
    }
}

/* Decode a chunked body in place; returns the decoded length or SIZE_MAX when malformed. */
static size_t dechunk(char *p, size_t n)
{
    size_t in = 0, out = 0;
    for (;;) {
        char *eol = memmem(p + in, n - in, "\r\n", 2);
        if (!eol)
            return SIZE_MAX;
        char *endp;
        unsigned long long sz = strtoull(p + in, &endp, 16);
        if (endp == p + in)
            return SIZE_MAX;
        in = (size_t)(eol - p) + 2;
        if (sz == 0)
            return out;
        if (sz > n - in)
            return SIZE_MAX;
        memmove(p + out, p + in, (size_t)sz);
        out += (size_t)sz;
        in += (size_t)sz;
        if (n - in < 2)
            return SIZE_MAX;
        in += 2;
    }
}

static lp_status parse_reply(lp_buf *b, unsigned port, console_reply *out, lp_err *err)
{
    char *h = (char *)b->data;
    size_t n = b->len;
    char *end = h ? memmem(h, n, "\r\n\r\n", 4) : NULL;
    int status = 0;
    if (!end || n < 12 || strncmp(h, "HTTP/1.", 7) || sscanf(h + 8, " %3d", &status) != 1 ||
        status < 100 || status > 599)
        return lp_err_set(err, LP_EFORMAT, "127.0.0.1:%u: the reply is not HTTP/1.x", port);
    size_t hl = (size_t)(end - h) + 4;
    bool chunked = false;
    long long clen = -1;
    *end = '\0';
    for (char *l = strstr(h, "\r\n"); l; l = strstr(l, "\r\n")) {
        l += 2;
        if (!strncasecmp(l, "content-type:", 13)) {
            const char *v = l + 13;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vl = strcspn(v, "\r\n");
            free(out->content_type);
            out->content_type = lp_calloc(vl + 1, 1);
            if (!out->content_type)
                return lp_err_set(err, LP_ENOMEM, "out of memory");
            memcpy(out->content_type, v, vl);
            out->content_type[vl] = '\0';
        } else if (!strncasecmp(l, "transfer-encoding:", 18)) {
            size_t ll = strcspn(l, "\r");
            char line[128];
            snprintf(line, sizeof line, "%.*s", (int)(ll < 127 ? ll : 127), l);
            chunked = strcasestr(line, "chunked") != NULL;
        } else if (!strncasecmp(l, "content-length:", 15)) {
            clen = strtoll(l + 15, NULL, 10);
        }
    }
    size_t blen = n - hl;
    if (chunked) {
        blen = dechunk(h + hl, blen);
        if (blen == SIZE_MAX)
            return lp_err_set(err, LP_EFORMAT, "127.0.0.1:%u: malformed chunked body", port);
    } else if (clen >= 0 && (size_t)clen < blen) {
        blen = (size_t)clen;
    } else if (clen >= 0 && (size_t)clen > blen) {
        return lp_err_set(err, LP_EIO, "127.0.0.1:%u: reply cut short (%zu of %lld bytes)", port,
                          blen, clen);
    }
    out->body = lp_calloc(blen + 1, 1);
    if (!out->body)
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    memcpy(out->body, h + hl, blen);
    out->body[blen] = '\0';
    out->len = blen;
    out->status = status;
    return LP_OK;
}

lp_status console_http_do(unsigned port, const char *method, const char *target,
                          const char *content_type, const char *authorization,
                          const char *body, size_t len, unsigned timeout_ms,
                          console_reply *out, lp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!method || !target || target[0] != '/' || strpbrk(target, "\r\n ") ||
        strpbrk(method, "\r\n ") || (content_type && strpbrk(content_type, "\r\n")) ||
        (authorization && strpbrk(authorization, "\r\n")) || port == 0 || port > 65535)
        return lp_err_set(err, LP_EINVAL, "proxy: bad request line for port %u", port);
    uint64_t deadline = lp_time_ns() + (uint64_t)timeout_ms * 1000000u;
    lp_buf req, rep;
    lp_buf_init(&req);
    lp_buf_init(&rep);
    lp_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\nConnection: close\r\n"
                        "Accept: */*\r\nUser-Agent: lepton-console\r\n",
                  method, target, port);
    if (content_type)
        lp_buf_printf(&req, "Content-Type: %s\r\n", content_type);
    if (authorization)
        lp_buf_printf(&req, "Authorization: %s\r\n", authorization);
    if (body || strcmp(method, "GET"))
        lp_buf_printf(&req, "Content-Length: %zu\r\n", len);
    lp_buf_put(&req, "\r\n", 2);
    if (len)
        lp_buf_put(&req, body, len);
    int fd = -1;
    lp_status st = lp_buf_status(&req, err);
    if (!st)
        st = connect_loopback(port, deadline, &fd, err);
    if (!st)
        st = send_all(fd, port, (const char *)req.data, req.len, deadline, err);
    if (!st)
        st = recv_all(fd, port, &rep, deadline, err);
    if (!st && rep.len == 0)
        st = lp_err_set(err, LP_EIO, "127.0.0.1:%u: closed without a reply", port);
    if (!st) { /* a NUL after the bytes, so the text scans below always stop */
        lp_buf_u8(&rep, 0);
        rep.len--;
        st = lp_buf_status(&rep, err);
    }
    if (!st)
        st = parse_reply(&rep, port, out, err);
    if (fd >= 0)
        close(fd);
    lp_buf_free(&req);
    lp_buf_free(&rep);
    if (st)
        console_reply_free(out);
    return st;
}

void console_reply_free(console_reply *r)
{
    if (!r)
        return;
    free(r->content_type);
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* ---- Prometheus text ------------------------------------------------------------------------*/

console_sample *console_prom_parse(const char *text, size_t len, size_t *n)
{
    *n = 0;
    size_t cap = 0;
    console_sample *v = NULL;
    const char *p = text, *endt = text + len;
    while (p < endt) {
        const char *eol = memchr(p, '\n', (size_t)(endt - p));
        if (!eol)
            eol = endt;
        const char *l = p;
        p = eol + 1;
        if (l == eol || *l == '#')
            continue;
        console_sample s;
        size_t nl = strcspn(l, "{ \n");
        if (nl == 0 || nl >= sizeof s.name || l + nl >= eol)
            continue;
        memcpy(s.name, l, nl);
        s.name[nl] = '\0';
        const char *q = l + nl;
        s.labels[0] = '\0';
        if (*q == '{') {
            /* the closing brace outside quotes */
            const char *c = q + 1;
            bool inq = false;
            for (; c < eol; c++) {
                if (inq && *c == '\\' && c + 1 < eol) {
                    c++;
                    continue;
                }
                if (*c == '"')
                    inq = !inq;
                else if (!inq && *c == '}')
                    break;
            }
            if (c >= eol || (size_t)(c - q - 1) >= sizeof s.labels)
                continue;
            memcpy(s.labels, q + 1, (size_t)(c - q - 1));
            s.labels[c - q - 1] = '\0';
            q = c + 1;
        }
        char num[64];
        while (q < eol && *q == ' ')
            q++;
        size_t vl = strcspn(q, " \n");
        if (vl == 0 || vl >= sizeof num || q + vl > eol)
            continue;
        memcpy(num, q, vl);
        num[vl] = '\0';
        char *e;
        s.value = strtod(num, &e);
        if (*e)
            continue;
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            console_sample *nv = lp_reallocarray(v, cap, sizeof *v);
            if (!nv) {
                free(v);
                *n = 0;
                return NULL;
            }
            v = nv;
        }
        v[(*n)++] = s;
    }
    return v;
}

bool console_prom_label(const console_sample *s, const char *name, char *buf, size_t cap)
{
    size_t nl = strlen(name);
    const char *p = s->labels;
    while (*p) {
        const char *eq = strchr(p, '=');
        if (!eq || eq[1] != '"')
            return false;
        bool hit = (size_t)(eq - p) == nl && !strncmp(p, name, nl);
        const char *c = eq + 2;
        size_t o = 0;
        while (*c && *c != '"') {
            char ch = *c;
            if (ch == '\\' && c[1]) {
                c++;
                ch = *c == 'n' ? '\n' : *c;
            }
            if (hit && o + 1 < cap)
                buf[o++] = ch;
            c++;
        }
        if (hit) {
            if (cap)
                buf[o < cap ? o : cap - 1] = '\0';
            return true;
        }
        if (*c != '"')
            return false;
        p = c + 1;
        if (*p == ',')
            p++;
    }
    return false;
}
