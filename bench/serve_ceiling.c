/*
 * serve_ceiling.c - the ceiling for the serve layer: a bare libmicrohttpd + cJSON server with the
 * same daemon settings as lp_server (internal polling thread pool over epoll, ITC, same
 * connection limit, timeout and memory), accumulating the POST body, parsing it with cJSON and
 * answering a fixed JSON reply. No routing, no checks, no metrics, no log.
 * usage: serve_ceiling PORT [THREADS]   (runs until SIGINT/SIGTERM)
 */
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct body {
    char *data;
    size_t len;
} body;

static const char reply[] = "{\"ok\":true,\"score\":0.5}";

static enum MHD_Result on_access(void *cls, struct MHD_Connection *c, const char *url,
                                 const char *method, const char *version, const char *up,
                                 size_t *up_size, void **con_cls)
{
    body *b = *con_cls;
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b) return MHD_NO;
        *con_cls = b;
        return MHD_YES;
    }
    if (*up_size) {
        char *n = realloc(b->data, b->len + *up_size + 1);
        if (!n) return MHD_NO;
        b->data = n;
        memcpy(b->data + b->len, up, *up_size);
        b->len += *up_size;
        *up_size = 0;
        return MHD_YES;
    }
    cJSON *j = b->data ? cJSON_ParseWithLength(b->data, b->len) : NULL;
    unsigned status = j ? 200 : 400;
    cJSON_Delete(j);
    struct MHD_Response *r = MHD_create_response_from_buffer(sizeof reply - 1, (void *)reply,
                                                             MHD_RESPMEM_PERSISTENT);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result q = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return q;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    body *b = *con_cls;
    if (b) {
        free(b->data);
        free(b);
        *con_cls = NULL;
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PORT [THREADS]\n", argv[0]);
        return 2;
    }
    unsigned port = (unsigned)atoi(argv[1]);
    unsigned threads = argc > 2 ? (unsigned)atoi(argv[2]) : (unsigned)sysconf(_SC_NPROCESSORS_ONLN);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* MHD threads inherit the mask; sigwait below */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ITC, (uint16_t)port, NULL, NULL,
        on_access, NULL, MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, 1024u,
        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768,
        MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "serve_ceiling: cannot listen on port %u\n", port);
        return 1;
    }
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
