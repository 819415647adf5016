/*
 * supervise.c - process plumbing for `lepton up`: spawn with a clean fd table, liveness, pid
 * files, a state-folder lock, a port check and a health probe over HTTP/1.1. See supervise.h.
 * Every blocking call retries EINTR; the probe never raises SIGPIPE (MSG_NOSIGNAL).
 */
#include "supervise.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* Close every descriptor above 2 in a freshly forked child (async-signal-safe calls only). */
static void close_from_3(void)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (close_range(3, ~0U, 0) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536)
        max = 65536;
    for (int fd = 3; fd < max; fd++)
        close(fd);
}

lp_status sv_spawn(char *const argv[], const char *log_path, pid_t *pid, lp_err *err)
{
    int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0)
        return lp_err_set(err, LP_EIO, "%s: cannot open the log file: %s", log_path,
                          strerror(errno));
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull < 0) {
        close(log);
        return lp_err_set(err, LP_EIO, "/dev/null: %s", strerror(errno));
    }
    fflush(NULL);
    pid_t p = fork();
    if (p < 0) {
        int e = errno;
        close(log);
        close(devnull);
        return lp_err_set(err, LP_EIO, "starting %s: fork: %s", argv[0], strerror(e));
    }
    if (p == 0) {
        /* child: only async-signal-safe calls until exec */
        static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGCHLD, SIGPIPE, SIGQUIT};
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        if (dup2(devnull, 0) < 0 || dup2(log, 1) < 0 || dup2(log, 2) < 0)
            _exit(127);
        close_from_3();
        execv(argv[0], argv);
        static const char msg[] = "lepton up: exec failed for ";
        (void)!write(2, msg, sizeof msg - 1);
        (void)!write(2, argv[0], strlen(argv[0]));
        (void)!write(2, "\n", 1);
        _exit(127);
    }
    close(log);
    close(devnull);
    *pid = p;
    return LP_OK;
}

bool sv_alive(pid_t pid)
{
    if (pid <= 0)
        return false;
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (f) {
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = 0;
        /* "PID (comm) S ...": the state follows the last ')' (comm may hold parentheses) */
        const char *rp = strrchr(buf, ')');
        if (rp && rp[1] == ' ')
            return rp[2] != 'Z' && rp[2] != 'X';
        return true;
    }
    if (errno == ENOENT)
        return false;
    return kill(pid, 0) == 0 || errno == EPERM;
}

bool sv_cmdline_has(pid_t pid, const char *needle)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%ld/cmdline", (long)pid);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    for (size_t i = 0; i < n; i++)
        if (buf[i] == 0)
            buf[i] = ' ';
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

lp_status sv_pid_write(const char *path, pid_t pid, lp_err *err)
{
    char line[32];
    int n = snprintf(line, sizeof line, "%ld\n", (long)pid);
    return lp_file_write(path, line, (size_t)n, err);
}

pid_t sv_pid_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long v = 0;
    if (fscanf(f, "%ld", &v) != 1 || v <= 0)
        v = 0;
    fclose(f);
    return (pid_t)v;
}

lp_status sv_lock(const char *path, int *fd, lp_err *err)
{
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f < 0)
        return lp_err_set(err, LP_EIO, "%s: %s", path, strerror(errno));
    int rc;
    do
        rc = flock(f, LOCK_EX | LOCK_NB);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        int e = errno;
        close(f);
        if (e == EWOULDBLOCK)
            return lp_err_set(err, LP_EEXIST, "%s is held by another process", path);
        return lp_err_set(err, LP_EIO, "%s: flock: %s", path, strerror(e));
    }
    *fd = f;
    return LP_OK;
}

static lp_status resolve(const char *host, unsigned port, bool passive, struct addrinfo **out,
                         lp_err *err)
{
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    char service[16];
    snprintf(service, sizeof service, "%u", port);
    int rc = getaddrinfo(host, service, &hints, out);
    if (rc)
        return lp_err_set(err, LP_EINVAL, "host '%s': %s", host, gai_strerror(rc));
    return LP_OK;
}

lp_status sv_port_free(const char *host, unsigned port, lp_err *err)
{
    struct addrinfo *ai = NULL;
    lp_status st = resolve(host, port, true, &ai, err);
    if (st)
        return st;
    st = LP_OK;
    for (struct addrinfo *a = ai; a && !st; a = a->ai_next) {
        int s = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (s < 0)
            continue;
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(s, a->ai_addr, a->ai_addrlen) < 0) {
            if (errno == EADDRINUSE)
                st = lp_err_set(err, LP_EEXIST, "port %u on %s is already in use", port, host);
            else
                st = lp_err_set(err, LP_EIO, "port %u on %s: bind: %s", port, host,
                                strerror(errno));
        }
        close(s);
    }
    freeaddrinfo(ai);
    return st;
}

/* Wait until fd is ready for events or the deadline passes; retries EINTR. */
static bool wait_fd(int fd, short events, uint64_t deadline_ns)
{
    for (;;) {
        uint64_t now = lp_time_ns();
        if (now >= deadline_ns)
            return false;
        struct pollfd p = {.fd = fd, .events = events};
        int ms = (int)((deadline_ns - now) / 1000000u) + 1;
        int rc = poll(&p, 1, ms);
        if (rc > 0)
            return true;
        if (rc < 0 && errno != EINTR)
            return false;
    }
}

lp_status sv_http_get(const char *host, unsigned port, const char *path, int timeout_ms,
                      int *status, char *body, size_t cap, lp_err *err)
{
    *status = 0;
    if (body && cap)
        body[0] = 0;
    if (!strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !*host)
        host = "127.0.0.1";
    uint64_t deadline = lp_time_ns() + (uint64_t)timeout_ms * 1000000u;
    struct addrinfo *ai = NULL;
    lp_status st = resolve(host, port, false, &ai, err);
    if (st)
        return st;
    int s = -1;
    for (struct addrinfo *a = ai; a && s < 0; a = a->ai_next) {
        s = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, a->ai_protocol);
        if (s < 0)
            continue;
        int rc = connect(s, a->ai_addr, a->ai_addrlen);
        if (rc < 0 && (errno == EINPROGRESS || errno == EINTR)) {
            int soerr = 0;
            socklen_t len = sizeof soerr;
            if (wait_fd(s, POLLOUT, deadline) &&
                getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr == 0)
                rc = 0;
        }
        if (rc < 0) {
            close(s);
            s = -1;
        }
    }
    freeaddrinfo(ai);
    if (s < 0)
        return lp_err_set(err, LP_EIO, "http://%s:%u%s: no connection", host, port, path);
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%u\r\nConnection: close\r\n\r\n", path, host,
                     port);
    size_t off = 0;
    while (off < (size_t)n) {
        ssize_t w = send(s, req + off, (size_t)n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN && wait_fd(s, POLLOUT, deadline))
            continue;
        if (w <= 0) {
            close(s);
            return lp_err_set(err, LP_EIO, "http://%s:%u%s: send failed", host, port, path);
        }
        off += (size_t)w;
    }
    char resp[8192];
    size_t got = 0;
    while (got < sizeof resp - 1) {
        ssize_t r = recv(s, resp + got, sizeof resp - 1 - got, 0);
        if (r > 0) {
            got += (size_t)r;
            continue;
        }
        if (r == 0)
            break;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN && wait_fd(s, POLLIN, deadline))
            continue;
        break;
    }
    close(s);
    resp[got] = 0;
    int code = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &code) != 1 || code <= 0)
        return lp_err_set(err, LP_EIO, "http://%s:%u%s: no HTTP answer within %d ms", host, port,
                          path, timeout_ms);
    *status = code;
    if (body && cap) {
        const char *b = strstr(resp, "\r\n\r\n");
        b = b ? b + 4 : "";
        snprintf(body, cap, "%s", b);
    }
    return LP_OK;
}

lp_status sv_mkdirs(const char *path, lp_err *err)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return lp_err_set(err, LP_EINVAL, "path too long: %s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == 0) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return lp_err_set(err, LP_EIO, "cannot create %s: %s", buf, strerror(errno));
            *p = c;
            if (!c)
                break;
        }
    }
    struct stat sb;
    if (stat(path, &sb) < 0 || !S_ISDIR(sb.st_mode))
        return lp_err_set(err, LP_EIO, "%s is not a directory", path);
    return LP_OK;
}
