/*
 * metrics.c - a small metrics registry (counters, gauges, histograms with labels) written out
 * in the Prometheus text exposition format 0.0.4.
 *
 * Hot path without locks: a family's series form an append-only singly linked list whose head
 * is published with a release store; lookups walk it with acquire loads and never block.
 * Creating a series (first use of a label combination) takes the registry mutex and re-checks
 * the list before appending. Values are C11 atomics: counters and histogram buckets are
 * uint64 counts, double-valued counters/gauges/sums are stored as their bit patterns and
 * updated with compare-and-swap loops. Series are freed only with the registry.
 * Not here: summaries/quantiles, series expiry, label-cardinality limits (callers choose
 * bounded label values, e.g. route patterns rather than raw paths).
 */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "lepton/serve.h"

struct lp_metric_series {
    struct lp_metric_series *next; /* immutable once published */
    lp_metric *family;
    char *labels[LP_METRIC_MAX_LABELS];
    _Atomic uint64_t value_bits; /* counter/gauge value (double bits); histogram sum */
    _Atomic uint64_t count;      /* histogram observations */
    _Atomic uint64_t buckets[LP_METRIC_MAX_BUCKETS + 1]; /* non-cumulative; last is +Inf */
};

struct lp_metric {
    struct lp_metric *next;
    lp_metrics *reg;
    char *name, *help;
    lp_metric_type type;
    size_t n_labels, n_buckets;
    char *label_names[LP_METRIC_MAX_LABELS];
    double buckets[LP_METRIC_MAX_BUCKETS];
    _Atomic(lp_metric_series *) series;
};

#define LP_METRICS_MAX_COLLECT 8

struct lp_metrics {
    pthread_mutex_t mu;
    _Atomic(lp_metric *) head; /* newest first; written under mu */
    lp_metric *tail;
    struct {
        lp_metrics_collect_fn fn;
        void *user;
    } collect[LP_METRICS_MAX_COLLECT];
    size_t n_collect;
};

static uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void atomic_add_double(_Atomic uint64_t *bits, double v)
{
    uint64_t old = atomic_load_explicit(bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(bits, &old, d2u(u2d(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

lp_metrics *lp_metrics_new(void)
{
    lp_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return NULL;
    }
    atomic_init(&m->head, NULL);
    return m;
}

static void series_free(lp_metric_series *s, size_t n_labels)
{
    for (size_t i = 0; i < n_labels; i++) free(s->labels[i]);
    free(s);
}

static void family_free(lp_metric *f)
{
    lp_metric_series *s = atomic_load(&f->series);
    while (s) {
        lp_metric_series *next = s->next;
        series_free(s, f->n_labels);
        s = next;
    }
    for (size_t i = 0; i < f->n_labels; i++) free(f->label_names[i]);
    free(f->name);
    free(f->help);
    free(f);
}

void lp_metrics_free(lp_metrics *m)
{
    if (!m) return;
    lp_metric *f = atomic_load(&m->head);
    while (f) {
        lp_metric *next = f->next;
        family_free(f);
        f = next;
    }
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static bool valid_name(const char *s, bool colon)
{
    if (!s || !*s) return false;
    for (size_t i = 0; s[i]; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                     (colon && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
}

lp_metric *lp_metrics_find(const lp_metrics *m, const char *name)
{
    if (!m || !name) return NULL;
    for (lp_metric *f = atomic_load_explicit(&((lp_metrics *)m)->head, memory_order_acquire); f;
         f = __atomic_load_n(&f->next, __ATOMIC_ACQUIRE)) {
        if (strcmp(f->name, name) == 0) return f;
    }
    return NULL;
}

lp_status lp_metrics_register(lp_metrics *m, const char *name, const char *help,
                              lp_metric_type type, const char *const *label_names,
                              size_t n_labels, const double *buckets, size_t n_buckets,
                              lp_metric **out, lp_err *err)
{
    if (out) *out = NULL;
    if (!m) return lp_err_set(err, LP_EINVAL, "metrics: no registry");
    if (!valid_name(name, true)) {
        return lp_err_set(err, LP_EINVAL, "metric name '%s': expected [a-zA-Z_:][a-zA-Z0-9_:]*",
                          name ? name : "(null)");
    }
    if (n_labels > LP_METRIC_MAX_LABELS) {
        return lp_err_set(err, LP_EINVAL, "metric '%s': %zu labels, at most %d", name, n_labels,
                          LP_METRIC_MAX_LABELS);
    }
    for (size_t i = 0; i < n_labels; i++) {
        if (!valid_name(label_names[i], false) || strcmp(label_names[i], "le") == 0) {
            return lp_err_set(err, LP_EINVAL, "metric '%s': label name '%s' is not allowed", name,
                              label_names[i] ? label_names[i] : "(null)");
        }
    }
    if (type == LP_METRIC_TYPE_HISTOGRAM) {
        if (!buckets || n_buckets == 0 || n_buckets > LP_METRIC_MAX_BUCKETS) {
            return lp_err_set(err, LP_EINVAL, "metric '%s': a histogram needs 1..%d buckets", name,
                              LP_METRIC_MAX_BUCKETS);
        }
        for (size_t i = 0; i < n_buckets; i++) {
            if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1])) {
                return lp_err_set(err, LP_EINVAL,
                                  "metric '%s': bucket %zu must be finite and above the previous",
                                  name, i);
            }
        }
    } else if (type != LP_METRIC_TYPE_COUNTER && type != LP_METRIC_TYPE_GAUGE) {
        return lp_err_set(err, LP_EINVAL, "metric '%s': unknown type %d", name, (int)type);
    }
    lp_metric *f = calloc(1, sizeof *f);
    if (!f) return lp_err_set(err, LP_ENOMEM, "metric '%s': out of memory", name);
    f->reg = m;
    f->type = type;
    f->name = lp_strdup(name);
    f->help = lp_strdup(help ? help : "");
    f->n_labels = n_labels;
    bool oom = !f->name || !f->help;
    for (size_t i = 0; i < n_labels; i++) {
        f->label_names[i] = lp_strdup(label_names[i]);
        oom |= !f->label_names[i];
    }
    if (type == LP_METRIC_TYPE_HISTOGRAM) {
        f->n_buckets = n_buckets;
        memcpy(f->buckets, buckets, n_buckets * sizeof *buckets);
    }
    atomic_init(&f->series, NULL);
    if (oom) {
        family_free(f);
        return lp_err_set(err, LP_ENOMEM, "metric '%s': out of memory", name);
    }
    pthread_mutex_lock(&m->mu);
    if (lp_metrics_find(m, name)) {
        pthread_mutex_unlock(&m->mu);
        family_free(f);
        return lp_err_set(err, LP_EEXIST, "metric '%s': already registered", name);
    }
    /* Families are kept oldest first for output: append at the tail, publish via head only for
     * the first one. The list is read through head, so appending to tail->next must also be a
     * release store for lock-free readers. */
    if (!m->tail) {
        atomic_store_explicit(&m->head, f, memory_order_release);
    } else {
        __atomic_store_n(&m->tail->next, f, __ATOMIC_RELEASE);
    }
    m->tail = f;
    pthread_mutex_unlock(&m->mu);
    if (out) *out = f;
    return LP_OK;
}

static bool labels_equal(const lp_metric_series *s, const char *const *values, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(s->labels[i], values[i] ? values[i] : "") != 0) return false;
    }
    return true;
}

static lp_metric_series *series_find(lp_metric *f, const char *const *values)
{
    for (lp_metric_series *s = atomic_load_explicit(&f->series, memory_order_acquire); s;
         s = s->next) {
        if (labels_equal(s, values, f->n_labels)) return s;
    }
    return NULL;
}

lp_metric_series *lp_metric_series_get(lp_metric *f, const char *const *label_values)
{
    if (!f || (f->n_labels > 0 && !label_values)) return NULL;
    lp_metric_series *s = series_find(f, label_values);
    if (s) return s;
    pthread_mutex_lock(&f->reg->mu);
    s = series_find(f, label_values);
    if (!s) {
        s = calloc(1, sizeof *s);
        bool oom = !s;
        for (size_t i = 0; s && i < f->n_labels; i++) {
            s->labels[i] = lp_strdup(label_values[i] ? label_values[i] : "");
            oom |= !s->labels[i];
        }
        if (oom) {
            if (s) series_free(s, f->n_labels);
            s = NULL;
        } else {
            s->family = f;
            s->next = atomic_load_explicit(&f->series, memory_order_relaxed);
            atomic_store_explicit(&f->series, s, memory_order_release);
        }
    }
    pthread_mutex_unlock(&f->reg->mu);
    return s;
}

void lp_metric_series_add(lp_metric_series *s, double v)
{
    if (!s || !isfinite(v)) return;
    if (s->family->type == LP_METRIC_TYPE_COUNTER && v < 0) return;
    if (s->family->type == LP_METRIC_TYPE_HISTOGRAM) return;
    atomic_add_double(&s->value_bits, v);
}

void lp_metric_series_set(lp_metric_series *s, double v)
{
    if (!s || s->family->type != LP_METRIC_TYPE_GAUGE) return;
    atomic_store_explicit(&s->value_bits, d2u(v), memory_order_relaxed);
}

void lp_metric_series_observe(lp_metric_series *s, double v)
{
    if (!s || s->family->type != LP_METRIC_TYPE_HISTOGRAM || isnan(v)) return;
    const lp_metric *f = s->family;
    size_t b = 0;
    while (b < f->n_buckets && v > f->buckets[b]) b++;
    atomic_fetch_add_explicit(&s->buckets[b], 1, memory_order_relaxed);
    atomic_add_double(&s->value_bits, v);
    atomic_fetch_add_explicit(&s->count, 1, memory_order_relaxed);
}

double lp_metric_series_value(const lp_metric_series *s)
{
    if (!s) return 0.0;
    lp_metric_series *w = (lp_metric_series *)s;
    if (s->family->type == LP_METRIC_TYPE_HISTOGRAM) {
        return (double)atomic_load_explicit(&w->count, memory_order_relaxed);
    }
    return u2d(atomic_load_explicit(&w->value_bits, memory_order_relaxed));
}

lp_status lp_metrics_on_collect(lp_metrics *m, lp_metrics_collect_fn fn, void *user, lp_err *err)
{
    if (!m || !fn) return lp_err_set(err, LP_EINVAL, "metrics: collect hook needs a function");
    pthread_mutex_lock(&m->mu);
    if (m->n_collect == LP_METRICS_MAX_COLLECT) {
        pthread_mutex_unlock(&m->mu);
        return lp_err_set(err, LP_ESTATE, "metrics: at most %d collect hooks",
                          LP_METRICS_MAX_COLLECT);
    }
    m->collect[m->n_collect].fn = fn;
    m->collect[m->n_collect].user = user;
    m->n_collect++;
    pthread_mutex_unlock(&m->mu);
    return LP_OK;
}

static void put_escaped(lp_buf *b, const char *s, bool help)
{
    for (; *s; s++) {
        if (*s == '\\') {
            lp_buf_put(b, "\\\\", 2);
        } else if (*s == '\n') {
            lp_buf_put(b, "\\n", 2);
        } else if (*s == '"' && !help) {
            lp_buf_put(b, "\\\"", 2);
        } else {
            lp_buf_put(b, s, 1);
        }
    }
}

static void put_value(lp_buf *b, double v)
{
    if (isnan(v)) {
        lp_buf_printf(b, "NaN");
    } else if (isinf(v)) {
        lp_buf_printf(b, v > 0 ? "+Inf" : "-Inf");
    } else if (v == floor(v) && fabs(v) < 1e15) {
        lp_buf_printf(b, "%.0f", v);
    } else {
        lp_buf_printf(b, "%.15g", v);
    }
}

/* name{l1="v1",l2="v2"[,le="x"]} */
static void put_series_name(lp_buf *b, const lp_metric *f, const lp_metric_series *s,
                            const char *suffix, const char *le)
{
    lp_buf_printf(b, "%s%s", f->name, suffix);
    if (f->n_labels == 0 && !le) return;
    lp_buf_put(b, "{", 1);
    for (size_t i = 0; i < f->n_labels; i++) {
        lp_buf_printf(b, "%s%s=\"", i ? "," : "", f->label_names[i]);
        put_escaped(b, s->labels[i], false);
        lp_buf_put(b, "\"", 1);
    }
    if (le) lp_buf_printf(b, "%sle=\"%s\"", f->n_labels ? "," : "", le);
    lp_buf_put(b, "}", 1);
}

void lp_metrics_write(lp_metrics *m, lp_buf *b)
{
    if (!m || !b) return;
    pthread_mutex_lock(&m->mu);
    size_t n_collect = m->n_collect;
    pthread_mutex_unlock(&m->mu);
    for (size_t i = 0; i < n_collect; i++) m->collect[i].fn(m, m->collect[i].user);

    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    for (lp_metric *f = atomic_load_explicit(&m->head, memory_order_acquire); f;
         f = __atomic_load_n(&f->next, __ATOMIC_ACQUIRE)) {
        lp_buf_printf(b, "# HELP %s ", f->name);
        put_escaped(b, f->help, true);
        lp_buf_printf(b, "\n# TYPE %s %s\n", f->name, type_names[f->type]);
        for (lp_metric_series *s = atomic_load_explicit(&f->series, memory_order_acquire); s;
             s = s->next) {
            if (f->type != LP_METRIC_TYPE_HISTOGRAM) {
                put_series_name(b, f, s, "", NULL);
                lp_buf_put(b, " ", 1);
                put_value(b, lp_metric_series_value(s));
                lp_buf_put(b, "\n", 1);
                continue;
            }
            /* Read the buckets first and derive the count from them, so that a scrape racing
             * an observation still shows +Inf bucket == _count. */
            uint64_t cum = 0;
            for (size_t k = 0; k <= f->n_buckets; k++) {
                cum += atomic_load_explicit(&s->buckets[k], memory_order_relaxed);
                char le[40];
                if (k < f->n_buckets) {
                    snprintf(le, sizeof le, "%.15g", f->buckets[k]);
                } else {
                    snprintf(le, sizeof le, "+Inf");
                }
                put_series_name(b, f, s, "_bucket", le);
                lp_buf_printf(b, " %llu\n", (unsigned long long)cum);
            }
            put_series_name(b, f, s, "_sum", NULL);
            lp_buf_put(b, " ", 1);
            put_value(b, u2d(atomic_load_explicit(&s->value_bits, memory_order_relaxed)));
            lp_buf_put(b, "\n", 1);
            put_series_name(b, f, s, "_count", NULL);
            lp_buf_printf(b, " %llu\n", (unsigned long long)cum);
        }
    }
}
