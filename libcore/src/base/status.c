/*
 * status.c - the status table (generated from LP_STATUS_LIST), lp_err helpers and checked
 * allocation wrappers. No state; thread-safe.
 */
#include "lepton/base.h"

#include <stdlib.h>
#include <string.h>

static const struct {
    const char *code;
    const char *msg;
    int http;
} status_table[] = {
#define LP_STATUS_ROW_(name, code, msg, http) {code, msg, http},
    LP_STATUS_LIST(LP_STATUS_ROW_)
#undef LP_STATUS_ROW_
};

static int status_ok(lp_status s) { return (int)s >= 0 && s < LP_STATUS_COUNT_; }

const char *lp_strerror(lp_status s) { return status_ok(s) ? status_table[s].msg : "unknown status"; }

const char *lp_status_code(lp_status s) { return status_ok(s) ? status_table[s].code : "unknown"; }

int lp_status_http(lp_status s) { return status_ok(s) ? status_table[s].http : 500; }

void lp_err_clear(lp_err *err)
{
    if (!err)
        return;
    err->status = LP_OK;
    err->msg[0] = '\0';
}

lp_status lp_err_set(lp_err *err, lp_status s, const char *fmt, ...)
{
    if (!err)
        return s;
    /* formatted apart, then copied: an argument may be err's own message (a caller that
     * wraps it, "x (%s)" with lp_err_text(err)), and vsnprintf into its own source is UB */
    char msg[sizeof err->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(err->msg, msg, sizeof msg);
    err->status = s;
    return s;
}

lp_status lp_err_prefix(lp_err *err, const char *fmt, ...)
{
    if (!err)
        return LP_OK;
    char prefix[LP_ERR_MSG_MAX], old[LP_ERR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old[0] ? old : lp_strerror(err->status));
    return err->status;
}

const char *lp_err_text(const lp_err *err)
{
    if (!err)
        return "";
    return err->msg[0] ? err->msg : lp_strerror(err->status);
}

void *lp_calloc(size_t n, size_t size)
{
    if (n == 0 || size == 0)
        return calloc(1, 1);
    return calloc(n, size);
}

void *lp_mallocarray(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t total = n * size;
    return malloc(total ? total : 1);
}

void *lp_reallocarray(void *p, size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    size_t total = n * size;
    return realloc(p, total ? total : 1);
}

char *lp_strdup(const char *s) { return s ? lp_strndup(s, strlen(s)) : NULL; }

char *lp_strndup(const char *s, size_t n)
{
    if (!s)
        return NULL;
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}
