/*
 * log.c - levelled logging to stderr: human text on a TTY, JSON lines otherwise.
 * Each line is formatted into a local buffer and written with one fputs, so lines from
 * concurrent threads never interleave within a line.
 */
#include "lepton/base.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = -1; /* -1: not yet read from LEPTON_LOG */
static atomic_int log_json = -1;  /* -1: auto */

static const char *level_names[] = {"debug", "info", "warn", "error", "off"};

static int level_from_env(void)
{
    const char *e = getenv("LEPTON_LOG");
    if (e)
        for (int i = 0; i <= LP_LOG_LEVEL_OFF; i++)
            if (strcasecmp(e, level_names[i]) == 0)
                return i;
    return LP_LOG_LEVEL_INFO;
}

void lp_log_set_level(lp_log_level level) { atomic_store(&log_level, (int)level); }

lp_log_level lp_log_get_level(void)
{
    int l = atomic_load(&log_level);
    if (l < 0) {
        l = level_from_env();
        atomic_store(&log_level, l);
    }
    return (lp_log_level)l;
}

void lp_log_set_json(int mode) { atomic_store(&log_json, mode); }

static size_t json_escape(char *out, size_t cap, const char *s)
{
    size_t n = 0;
    for (; *s && n + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[n++] = '\\';
            out[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
        } else {
            out[n++] = (char)c;
        }
    }
    out[n] = '\0';
    return n;
}

void lp_logv(lp_log_level level, const char *fmt, va_list ap)
{
    if (level < lp_log_get_level() || level >= LP_LOG_LEVEL_OFF)
        return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[64];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (int)(ts.tv_nsec / 1000000));

    int json = atomic_load(&log_json);
    if (json < 0)
        json = !isatty(STDERR_FILENO);
    char line[4200];
    if (json) {
        char esc[4096];
        json_escape(esc, sizeof esc, msg);
        snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", when,
                 level_names[level], esc);
    } else {
        snprintf(line, sizeof line, "%s %-5s %s\n", when, level_names[level], msg);
    }
    fputs(line, stderr);
}

void lp_log(lp_log_level level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lp_logv(level, fmt, ap);
    va_end(ap);
}
