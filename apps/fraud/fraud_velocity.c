/*
 * fraud_velocity.c - the per-entity history behind the velocity features, exact and online.
 *
 * Each entity (one value of one entity column) keeps its transactions of the retained horizon
 * (largest window + label delay + max lateness) sorted by time: (time, amount, tx index). A
 * feature vector for a transaction at time t is computed from that history only: events at or
 * before t that are not the transaction itself (it is not inserted yet), so the replay used for
 * training and the service's one-at-a-time scoring run literally the same code. One backward
 * scan per entity fills every window at once (windows are increasing).
 *
 * Delayed labels: a transaction's label counts for a feature at time t only when the
 * transaction happened before t - label_delay (chargebacks arrive late); a transaction with no
 * fraud label by then counts as genuine. Replay records labels up front and lets this rule
 * hide them; the service records them when POST /v1/labels brings them.
 *
 * Order: a transaction may arrive up to max_lateness_s older than the newest seen; it is
 * inserted in time order (a short memmove), so features of later arrivals see it in place.
 * Ids: every id ever added is kept (64-bit hash -> tx record) to refuse duplicates and find
 * the transaction a label refers to. Not thread-safe: the service holds a mutex around it.
 */
#include "fraud.h"
#include "fraud_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- u64 -> u32 open-addressing map (key 0 is remapped: 0 marks an empty slot) ----------- */
typedef struct u64map {
    uint64_t *keys;
    uint32_t *vals;
    size_t cap, n;
} u64map;

static uint64_t fix(uint64_t k) { return k ? k : 0x9e3779b97f4a7c15ULL; }

static long map_get(const u64map *m, uint64_t k)
{
    if (!m->cap)
        return -1;
    k = fix(k);
    for (size_t i = (size_t)(k * 0x9e3779b97f4a7c15ULL >> 20) & (m->cap - 1);;
         i = (i + 1) & (m->cap - 1)) {
        if (m->keys[i] == k)
            return m->vals[i];
        if (!m->keys[i])
            return -1;
    }
}

static bool map_put(u64map *m, uint64_t k, uint32_t v)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 1024;
        u64map g = {lp_calloc(nc, sizeof(uint64_t)), lp_calloc(nc, sizeof(uint32_t)), nc, 0};
        if (!g.keys || !g.vals) {
            free(g.keys);
            free(g.vals);
            return false;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->keys[i])
                map_put(&g, m->keys[i], m->vals[i]);
        free(m->keys);
        free(m->vals);
        *m = g;
    }
    k = fix(k);
    size_t i = (size_t)(k * 0x9e3779b97f4a7c15ULL >> 20) & (m->cap - 1);
    while (m->keys[i] && m->keys[i] != k)
        i = (i + 1) & (m->cap - 1);
    if (!m->keys[i])
        m->n++;
    m->keys[i] = k;
    m->vals[i] = v;
    return true;
}

static void map_free(u64map *m)
{
    free(m->keys);
    free(m->vals);
}

uint64_t fraud_hash(const char *s, uint64_t h)
{
    /* FNV-1a 64 */
    h ^= 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* ---- state ----------------------------------------------------------------------------------*/
/* 16 bytes: scans are memory-bound, so the event is kept small. The fraud bit copies the
 * transaction's label, so a scan never leaves this entity's memory. */
typedef struct ev {
    double t;
    float amount;
    uint32_t tx : 31;
    uint32_t fraud : 1;
} ev;

typedef struct entity {
    char *key;
    ev *ev;            /* ev[start .. start + len) in time order */
    size_t start, len, cap;
    uint64_t total;    /* transactions ever */
} entity;

typedef struct txrec {
    double t;
    int8_t label;                        /* -1 unknown, 0, 1 */
    uint32_t ent[FRAUD_MAX_ENTITIES];    /* entity index per entity column (velocity only) */
} txrec;

struct fraud_state {
    fraud_feat_opts o;
    size_t n_features;
    double horizon;            /* history kept, seconds */
    u64map ent_map[FRAUD_MAX_ENTITIES];
    entity *ents[FRAUD_MAX_ENTITIES];
    size_t n_ents[FRAUD_MAX_ENTITIES], cap_ents[FRAUD_MAX_ENTITIES];
    u64map ids;                /* id hash -> tx index */
    txrec *tx;
    size_t n_tx, cap_tx;
    u64map pairs;              /* pair hash -> count */
    double clock;
};

lp_status fraud_state_new(const fraud_feat_opts *o, fraud_state **out, lp_err *err)
{
    *out = NULL;
    lp_status st = fraud_feat_opts_check(o, err);
    if (st)
        return st;
    fraud_state *s = lp_calloc(1, sizeof *s);
    if (!s)
        return lp_err_set(err, LP_ENOMEM, "fraud state: out of memory");
    s->o = *o;
    char **names = fraud_feature_names(o, &s->n_features);
    if (!names) {
        free(s);
        return lp_err_set(err, LP_ENOMEM, "fraud state: out of memory");
    }
    fraud_names_free(names, s->n_features);
    s->horizon = o->window_s[o->n_windows - 1] + o->label_delay_s + o->max_lateness_s;
    s->clock = NAN;
    *out = s;
    return LP_OK;
}

void fraud_state_free(fraud_state *s)
{
    if (!s)
        return;
    for (size_t e = 0; e < FRAUD_MAX_ENTITIES; e++) {
        for (size_t i = 0; i < s->n_ents[e]; i++) {
            free(s->ents[e][i].key);
            free(s->ents[e][i].ev);
        }
        free(s->ents[e]);
        map_free(&s->ent_map[e]);
    }
    map_free(&s->ids);
    map_free(&s->pairs);
    free(s->tx);
    free(s);
}

const fraud_feat_opts *fraud_state_opts(const fraud_state *s) { return &s->o; }
size_t fraud_state_n_features(const fraud_state *s) { return s->n_features; }
double fraud_state_clock(const fraud_state *s) { return s->clock; }
size_t fraud_state_n_tx(const fraud_state *s) { return s->n_tx; }

static const entity *find_entity(const fraud_state *s, size_t e, const char *key)
{
    long i = map_get(&s->ent_map[e], fraud_hash(key, e));
    return i < 0 ? NULL : &s->ents[e][i];
}

static uint64_t pair_hash(const fraud_tx *tx)
{
    return fraud_hash(tx->keys[1], fraud_hash(tx->keys[0], 0x51) * 31);
}

lp_status fraud_state_check(const fraud_state *s, const fraud_tx *tx, lp_err *err)
{
    if (!tx->id || !tx->id[0] || strlen(tx->id) > 128)
        return lp_err_set(err, LP_EINVAL, "transaction_id: expected 1..128 characters");
    if (map_get(&s->ids, fraud_hash(tx->id, 0)) >= 0)
        return lp_err_set(err, LP_EEXIST, "transaction '%s' was already scored", tx->id);
    if (!isfinite(tx->amount) || tx->amount < 0)
        return lp_err_set(err, LP_EINVAL, "transaction '%s': amount %g is not a finite number "
                          ">= 0", tx->id, tx->amount);
    if (tx->amount > 1e15) /* no payment is that large; features keep amounts as float */
        return lp_err_set(err, LP_EINVAL, "transaction '%s': amount %g is above 1e15",
                          tx->id, tx->amount);
    if (!isfinite(tx->time))
        return lp_err_set(err, LP_EINVAL, "transaction '%s': time is not finite", tx->id);
    if (isfinite(s->clock) && tx->time < s->clock - s->o.max_lateness_s)
        return lp_err_set(err, LP_EINVAL, "transaction '%s': time %.0f is %.0f s before the "
                          "newest transaction seen (%.0f); at most %.0f s of lateness is "
                          "accepted", tx->id, tx->time, s->clock - tx->time, s->clock,
                          s->o.max_lateness_s);
    for (size_t e = 0; s->o.velocity && e < s->o.n_entities; e++)
        if (!tx->keys[e] || !tx->keys[e][0] || strlen(tx->keys[e]) > 128)
            return lp_err_set(err, LP_EINVAL, "transaction '%s': entity '%s' missing or longer "
                              "than 128 characters", tx->id, s->o.entity[e]);
    return LP_OK;
}

/* Features of one entity for a transaction at time t with amount a into x[0..): per window
 * count/sum/mean/max, secs since last, amount ratio, per window fraud rate and count. */
static float *entity_features(const fraud_state *s, const entity *en, double t, double a,
                              float *x)
{
    const fraud_feat_opts *o = &s->o;
    size_t nw = o->n_windows;
    double cnt[FRAUD_MAX_WINDOWS] = {0}, sum[FRAUD_MAX_WINDOWS] = {0};
    double mx[FRAUD_MAX_WINDOWS] = {0}, lc[FRAUD_MAX_WINDOWS] = {0}, fr[FRAUD_MAX_WINDOWS] = {0};
    double last = -INFINITY;
    double cut = t - o->label_delay_s;
    double oldest = t - fmax(o->window_s[nw - 1], o->label_delay_s + o->window_s[nw - 1]);
    /* Newest to oldest, so an event's age only grows: w0 / d0 are the smallest windows still
     * holding it. Each event is added to its smallest window only; prefix sums (and prefix
     * maxima) over the windows below give the totals, O(1) per event. */
    size_t w0 = 0, d0 = 0;
    for (size_t k = en ? en->len : 0; k-- > 0;) {
        const ev *v = &en->ev[en->start + k];
        if (v->t > t)
            continue; /* a later event already present (out-of-order arrival) */
        if (v->t < oldest)
            break;
        if (last == -INFINITY)
            last = v->t;
        double age = t - v->t;
        while (w0 < nw && !(age < o->window_s[w0]))
            w0++;
        if (w0 < nw) {
            cnt[w0] += 1;
            sum[w0] += v->amount;
            if (v->amount > mx[w0])
                mx[w0] = v->amount;
        }
        if (v->t < cut) {
            double dage = cut - v->t;
            while (d0 < nw && !(dage <= o->window_s[d0]))
                d0++;
            if (d0 < nw) {
                lc[d0] += 1;
                fr[d0] += v->fraud;
            } else if (w0 == nw) {
                break; /* older than every window of both kinds */
            }
        }
    }
    for (size_t w = 1; w < nw; w++) {
        cnt[w] += cnt[w - 1];
        sum[w] += sum[w - 1];
        mx[w] = fmax(mx[w], mx[w - 1]);
        lc[w] += lc[w - 1];
        fr[w] += fr[w - 1];
    }
    for (size_t w = 0; w < nw; w++) {
        *x++ = (float)cnt[w];
        *x++ = (float)sum[w];
        *x++ = (float)(cnt[w] > 0 ? sum[w] / cnt[w] : 0.0);
        *x++ = (float)mx[w];
    }
    *x++ = (float)(last == -INFINITY ? FRAUD_NEVER_SEEN_S : t - last);
    double big = cnt[nw - 1];
    *x++ = (float)(big > 0 && sum[nw - 1] > 0 ? a / (sum[nw - 1] / big) : -1.0);
    for (size_t w = 0; w < nw; w++) {
        *x++ = (float)(lc[w] > 0 ? fr[w] / lc[w] : 0.0);
        *x++ = (float)lc[w];
    }
    return x;
}

void fraud_state_features(const fraud_state *s, const fraud_tx *tx, float *x)
{
    const fraud_feat_opts *o = &s->o;
    double t = tx->time;
    *x++ = (float)tx->amount;
    double day = floor(t / 86400.0);
    *x++ = (float)((t - day * 86400.0) / 3600.0);
    /* 1970-01-01 was a Thursday; Monday = 0 */
    *x++ = (float)fmod(day + 3.0, 7.0) + (fmod(day + 3.0, 7.0) < 0 ? 7.0f : 0.0f);
    for (size_t j = 0; j < o->n_extra; j++)
        *x++ = (float)tx->extra[j];
    for (size_t j = 0; j < o->n_text; j++) /* a value's index in its list, NaN when unknown */
        *x++ = fraud_text_code(o, j, tx->text[j]);
    if (!o->velocity)
        return;
    for (size_t e = 0; e < o->n_entities; e++)
        x = entity_features(s, find_entity(s, e, tx->keys[e]), t, tx->amount, x);
    if (o->n_entities >= 2) {
        long c = map_get(&s->pairs, pair_hash(tx));
        *x++ = (float)(c < 0 ? 0 : c);
    }
}

static lp_status add_event(fraud_state *s, size_t e, const char *key, const ev *v,
                           uint32_t *ent_index, lp_err *err)
{
    uint64_t h = fraud_hash(key, e);
    long i = map_get(&s->ent_map[e], h);
    if (i < 0) {
        if (s->n_ents[e] == s->cap_ents[e]) {
            size_t nc = s->cap_ents[e] ? s->cap_ents[e] * 2 : 256;
            entity *g = lp_reallocarray(s->ents[e], nc, sizeof *g);
            if (!g)
                return lp_err_set(err, LP_ENOMEM, "fraud state: out of memory");
            s->ents[e] = g;
            s->cap_ents[e] = nc;
        }
        entity *en = &s->ents[e][s->n_ents[e]];
        memset(en, 0, sizeof *en);
        en->key = lp_strdup(key);
        if (!en->key || !map_put(&s->ent_map[e], h, (uint32_t)s->n_ents[e])) {
            free(en->key);
            return lp_err_set(err, LP_ENOMEM, "fraud state: out of memory");
        }
        i = (long)s->n_ents[e]++;
    }
    *ent_index = (uint32_t)i;
    entity *en = &s->ents[e][i];
    /* drop events past the horizon */
    while (en->len && en->ev[en->start].t < v->t - s->horizon) {
        en->start++;
        en->len--;
    }
    if (en->start + en->len == en->cap) {
        if (en->start > en->cap / 2) {
            memmove(en->ev, en->ev + en->start, en->len * sizeof(ev));
            en->start = 0;
        } else {
            size_t nc = en->cap ? en->cap * 2 : 8;
            ev *g = lp_reallocarray(en->ev, nc, sizeof(ev));
            if (!g)
                return lp_err_set(err, LP_ENOMEM, "fraud state: out of memory");
            en->ev = g;
            en->cap = nc;
        }
    }
    ev *base = en->ev + en->start;
    size_t pos = en->len;
    while (pos > 0 && base[pos - 1].t > v->t)
        pos--;
    memmove(base + pos + 1, base + pos, (en->len - pos) * sizeof(ev));
    base[pos] = *v;
    en->len++;
    en->total++;
    return LP_OK;
}

lp_status fraud_state_update(fraud_state *s, const fraud_tx *tx, lp_err *err)
{
    if (s->n_tx == s->cap_tx) {
        size_t nc = s->cap_tx ? s->cap_tx * 2 : 4096;
        txrec *g = lp_reallocarray(s->tx, nc, sizeof *g);
        if (!g)
            return lp_err_set(err, LP_ENOMEM, "fraud state: out of memory");
        s->tx = g;
        s->cap_tx = nc;
    }
    if (s->n_tx >= INT32_MAX)
        return lp_err_set(err, LP_ETOOBIG, "fraud state: too many transactions");
    uint32_t ti = (uint32_t)s->n_tx;
    if (!map_put(&s->ids, fraud_hash(tx->id, 0), ti))
        return lp_err_set(err, LP_ENOMEM, "fraud state: out of memory");
    int8_t lab = (int8_t)(tx->label < 0 ? -1 : tx->label != 0);
    memset(&s->tx[ti], 0, sizeof s->tx[ti]);
    s->tx[ti].t = tx->time;
    s->tx[ti].label = lab;
    s->n_tx++;
    if (s->o.velocity) {
        ev v = {tx->time, (float)tx->amount, ti, lab == 1};
        for (size_t e = 0; e < s->o.n_entities; e++) {
            lp_status st = add_event(s, e, tx->keys[e], &v, &s->tx[ti].ent[e], err);
            if (st)
                return st;
        }
        if (s->o.n_entities >= 2) {
            uint64_t h = pair_hash(tx);
            long c = map_get(&s->pairs, h);
            if (!map_put(&s->pairs, h, (uint32_t)(c < 0 ? 1 : c + 1)))
                return lp_err_set(err, LP_ENOMEM, "fraud state: out of memory");
        }
    }
    if (isnan(s->clock) || tx->time > s->clock)
        s->clock = tx->time;
    return LP_OK;
}

lp_status fraud_state_step(fraud_state *s, const fraud_tx *tx, float *x, lp_err *err)
{
    lp_status st = fraud_state_check(s, tx, err);
    if (st)
        return st;
    if (x)
        fraud_state_features(s, tx, x);
    return fraud_state_update(s, tx, err);
}

lp_status fraud_state_label(fraud_state *s, const char *id, int label, lp_err *err)
{
    long i = id ? map_get(&s->ids, fraud_hash(id, 0)) : -1;
    if (i < 0)
        return lp_err_set(err, LP_ENOTFOUND, "transaction '%s' is unknown", id ? id : "");
    int8_t lab = (int8_t)(label != 0);
    s->tx[i].label = lab;
    /* the copies in the entities' histories (gone when past the horizon) */
    for (size_t e = 0; s->o.velocity && e < s->o.n_entities; e++) {
        entity *en = &s->ents[e][s->tx[i].ent[e]];
        for (size_t k = en->len; k-- > 0;)
            if (en->ev[en->start + k].tx == (uint32_t)i) {
                en->ev[en->start + k].fraud = lab == 1;
                break;
            }
    }
    return LP_OK;
}

bool fraud_state_has_tx(const fraud_state *s, const char *id)
{
    return map_get(&s->ids, fraud_hash(id, 0)) >= 0;
}

bool fraud_state_find_tx(const fraud_state *s, const char *id, size_t *index, double *time)
{
    long i = map_get(&s->ids, fraud_hash(id, 0));
    if (i < 0)
        return false;
    *index = (size_t)i;
    *time = s->tx[i].t;
    return true;
}

cJSON *fraud_state_entity_json(const fraud_state *s, size_t entity_i, const char *key, double t)
{
    if (entity_i >= s->o.n_entities || !s->o.velocity)
        return NULL;
    const entity *en = find_entity(s, entity_i, key);
    if (!en)
        return NULL;
    if (!isfinite(t))
        t = s->clock;
    float x[6 * FRAUD_MAX_WINDOWS + 2];
    entity_features(s, en, t, 0.0, x);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "entity", s->o.entity[entity_i]);
    cJSON_AddStringToObject(j, "id", en->key);
    cJSON_AddNumberToObject(j, "as_of", t);
    cJSON_AddNumberToObject(j, "transactions_total", (double)en->total);
    cJSON_AddNumberToObject(j, "transactions_retained", (double)en->len);
    double last = en->len ? en->ev[en->start + en->len - 1].t : NAN;
    if (isfinite(last))
        cJSON_AddNumberToObject(j, "last_seen", last);
    size_t frauds = 0;
    for (size_t k = 0; k < en->len; k++)
        frauds += en->ev[en->start + k].fraud;
    cJSON_AddNumberToObject(j, "frauds_labelled_retained", (double)frauds);
    cJSON *w = cJSON_AddArrayToObject(j, "windows");
    const float *p = x;
    size_t nw = s->o.n_windows;
    for (size_t k = 0; k < nw; k++, p += 4) {
        char wl[32];
        fraud_window_label(s->o.window_s[k], wl, sizeof wl);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "window", wl);
        cJSON_AddNumberToObject(o, "count", p[0]);
        cJSON_AddNumberToObject(o, "sum", p[1]);
        cJSON_AddNumberToObject(o, "mean", p[2]);
        cJSON_AddNumberToObject(o, "max", p[3]);
        cJSON_AddNumberToObject(o, "fraud_rate_delayed", x[4 * nw + 2 + 2 * k]);
        cJSON_AddItemToArray(w, o);
    }
    return j;
}
