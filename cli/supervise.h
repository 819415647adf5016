/*
 * supervise.h - the POSIX process plumbing under `lepton up/down/status`: spawning a child with
 * a clean file table and default signals (fork + exec), probing whether a process still lives,
 * a pid-file pair, an exclusive lock on a state folder, a free-port check and a tiny blocking
 * HTTP GET with a timeout (health probes). It knows nothing about which services exist; that
 * table lives in cmd_up.c. Nothing here starts a thread, so the caller may fork afterwards.
 */
#ifndef LEPTON_CLI_SUPERVISE_H
#define LEPTON_CLI_SUPERVISE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lepton/lepton.h"

/* Start argv[0] (an absolute path) with argv, stdin from /dev/null and stdout+stderr appended
 * to log_path (created 0644). In the child: every fd above 2 is closed, the signal mask is
 * emptied and SIGINT/SIGTERM/SIGHUP/SIGCHLD/SIGPIPE are back to their default action, so the
 * program starts as a fresh one would; the child stays in the caller's session and process
 * group. *pid gets the child's pid. Errors (fork, log file) name the program; an exec failure
 * shows up as the child exiting 127 with a line in the log. Not thread-safe (fork). */
lp_status sv_spawn(char *const argv[], const char *log_path, pid_t *pid, lp_err *err);

/* True when pid names a live process that is not a zombie (reads /proc/PID/stat; falls back to
 * kill(pid, 0)). pid <= 0 is false. */
bool sv_alive(pid_t pid);

/* True when /proc/PID/cmdline (the whole argv, NUL-separated) contains needle: a guard against
 * signalling a recycled pid. False when the process is gone or unreadable. */
bool sv_cmdline_has(pid_t pid, const char *needle);

/* Write "PID\n" to path atomically / read it back. sv_pid_read returns 0 when the file is
 * missing or does not hold a positive number. */
lp_status sv_pid_write(const char *path, pid_t pid, lp_err *err);
pid_t sv_pid_read(const char *path);

/* Take an exclusive, non-blocking flock on path (created). On success *fd holds the lock
 * (O_CLOEXEC: children never inherit it; it survives fork, so a daemonized grandchild keeps it
 * while the first parent exits). LP_EEXIST when another process holds it. */
lp_status sv_lock(const char *path, int *fd, lp_err *err);

/* LP_OK when a TCP listener could bind host:port right now (SO_REUSEADDR, as the services do);
 * LP_EEXIST naming the port when it is taken; other errors name the host. */
lp_status sv_port_free(const char *host, unsigned port, lp_err *err);

/* GET path from http://host:port with an overall timeout. *status gets the HTTP status (0 when
 * no answer came); body (may be NULL) gets up to cap-1 bytes of the body, NUL-terminated.
 * host "0.0.0.0" or "::" is probed on loopback. Returns LP_OK when any HTTP answer arrived,
 * LP_EIO (connection refused, timeout) otherwise. EINTR is retried; SIGPIPE is never raised. */
lp_status sv_http_get(const char *host, unsigned port, const char *path, int timeout_ms,
                      int *status, char *body, size_t cap, lp_err *err);

/* mkdir -p with mode 0755. Errors name the path. */
lp_status sv_mkdirs(const char *path, lp_err *err);

#endif
