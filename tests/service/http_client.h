/*
 * http_client.h - a minimal HTTP/1.1 client over plain POSIX sockets for the service tests:
 * connect to 127.0.0.1:port, send raw bytes or a formed request, read one response (status,
 * headers, body by Content-Length or until close). Every wait has a timeout so a broken server
 * fails a test instead of hanging it. Not a general client: no chunked responses, no TLS.
 *
 * The test build makes one executable per tests/<label>/test_*.c, so each service test
 * includes http_client.c directly (one translation unit per test).
 */
#ifndef LP_TEST_HTTP_CLIENT_H
#define LP_TEST_HTTP_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

typedef struct http_resp {
    int status;       /* 0 when no complete response arrived */
    char *head;       /* status line and headers, NUL-terminated */
    char *body;       /* NUL-terminated */
    size_t body_len;
    bool closed;      /* the server closed the connection after this response */
} http_resp;

/* A connected TCP socket to 127.0.0.1:port, or -1. */
int http_connect(unsigned port);
/* Send all bytes (MSG_NOSIGNAL); false on error. */
bool http_send_all(int fd, const void *data, size_t len);
/* Read one response from fd within timeout_ms; returns false on timeout/close before a full
 * response (out->status stays 0). */
bool http_read_response(int fd, http_resp *out, int timeout_ms);
/* Wait until the peer closes fd (read returns 0 or an error) within timeout_ms. */
bool http_wait_closed(int fd, int timeout_ms);
/* One request on a new connection: method, path, extra header lines ("A: b\r\n..." or NULL),
 * body (may be NULL). Returns the status (0 on failure). */
int http_request(unsigned port, const char *method, const char *path, const char *headers,
                 const void *body, size_t len, http_resp *out);
/* Format a request (Content-Length set when body != NULL) into a malloc'd buffer. */
char *http_format(const char *method, const char *path, const char *headers, const void *body,
                  size_t len, bool keep_alive, size_t *out_len);
/* Header value (case-insensitive name) copied into buf, or NULL. */
const char *http_header(const http_resp *r, const char *name, char *buf, size_t cap);
void http_resp_free(http_resp *r);

#endif
