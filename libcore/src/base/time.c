/*
 * time.c - monotonic timers and the progress reporter.
 * Progress draws a bar with rate and ETA on a TTY (redrawn at most 10 times a second) and
 * prints one plain line every 5 s otherwise, so logs of long batch jobs stay readable.
 */
#include "lepton/base.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

uint64_t lp_time_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

double lp_time_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double lp_time_since(uint64_t start_ns) { return (double)(lp_time_ns() - start_ns) * 1e-9; }

struct lp_progress {
    char label[64];
    uint64_t total, done;
    uint64_t start_ns, last_ns;
    bool tty, enabled;
};

lp_progress *lp_progress_begin(const char *label, uint64_t total)
{
    lp_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->label, sizeof p->label, "%s", label ? label : "");
    p->total = total;
    p->start_ns = p->last_ns = lp_time_ns();
    p->tty = isatty(STDERR_FILENO);
    const char *env = getenv("LEPTON_PROGRESS");
    p->enabled = !(env && strcmp(env, "0") == 0) && lp_log_get_level() <= LP_LOG_LEVEL_INFO;
    return p;
}

static void fmt_secs(char *buf, size_t cap, double s)
{
    if (s < 60)
        snprintf(buf, cap, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, cap, "%dm%02ds", (int)s / 60, (int)s % 60);
    else
        snprintf(buf, cap, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

static void draw(lp_progress *p, bool final)
{
    double el = lp_time_since(p->start_ns);
    double rate = el > 0 ? (double)p->done / el : 0;
    char els[16], eta[16] = "?";
    fmt_secs(els, sizeof els, el);
    if (p->total && rate > 0 && p->done <= p->total)
        fmt_secs(eta, sizeof eta, (double)(p->total - p->done) / rate);
    if (p->tty) {
        char bar[31];
        int fill = p->total ? (int)(30.0 * (double)p->done / (double)p->total) : 0;
        if (fill > 30)
            fill = 30;
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        if (p->total)
            fprintf(stderr, "\r%s [%s] %3.0f%% %llu/%llu %.0f/s %s ETA %s\033[K", p->label, bar,
                    100.0 * (double)p->done / (double)p->total, (unsigned long long)p->done,
                    (unsigned long long)p->total, rate, els, final ? "0s" : eta);
        else
            fprintf(stderr, "\r%s %llu %.0f/s %s\033[K", p->label, (unsigned long long)p->done,
                    rate, els);
        if (final)
            fputc('\n', stderr);
    } else if (p->total) {
        fprintf(stderr, "%s: %llu/%llu (%.0f%%) %.0f/s elapsed %s%s%s\n", p->label,
                (unsigned long long)p->done, (unsigned long long)p->total,
                100.0 * (double)p->done / (double)p->total, rate, els, final ? "" : " eta ",
                final ? "" : eta);
    } else {
        fprintf(stderr, "%s: %llu %.0f/s elapsed %s\n", p->label, (unsigned long long)p->done,
                rate, els);
    }
}

void lp_progress_update(lp_progress *p, uint64_t done)
{
    if (!p)
        return;
    p->done = done;
    if (!p->enabled)
        return;
    uint64_t now = lp_time_ns();
    uint64_t every = p->tty ? 100000000ULL : 5000000000ULL;
    if (now - p->last_ns < every)
        return;
    p->last_ns = now;
    draw(p, false);
}

void lp_progress_end(lp_progress *p)
{
    if (!p)
        return;
    if (p->enabled && (p->tty || lp_time_since(p->start_ns) > 1.0)) {
        if (p->total)
            p->done = p->total;
        draw(p, true);
    }
    free(p);
}
