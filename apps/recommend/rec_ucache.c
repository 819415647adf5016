/*
 * rec_ucache.c - the recommend service's cache of prepared users (lp_mf_user): a user's merged
 * history, their vector and, for ALS, the factor of their user system, so that a user's second
 * request needs neither the stored-events query nor the fold-in nor the O(history x dim^2)
 * system build that the "because" explanations rest on.
 *
 * Keyed by (user id, model generation): an entry made against another generation is never
 * used (the model it points into may be gone). Events invalidate by version: each hash bucket
 * has a version that POST /v1/events bumps after its COMMIT for every user it touched; an entry
 * records the version read before its history was read from the database, and is valid only
 * while the bucket still has that version, so a request racing with an event can never leave a
 * stale entry behind (at worst a neighbour in the bucket is rebuilt once more). Entries are
 * evicted least recently used first when their bytes pass the budget; an entry in use by a
 * request is freed only when that request releases it. One mutex guards everything; the work
 * done under it is a hash lookup and list splices.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rec.h"

#define UC_BUCKETS 16384 /* power of two */

struct rec_uentry {
    char *uid;
    uint64_t h, gen, ver;
    lp_mf_user *pu;
    size_t bytes;
    int refs;
    bool linked;                      /* in the table and the LRU list */
    struct rec_uentry *hnext;         /* bucket chain */
    struct rec_uentry *newer, *older; /* LRU list */
};

struct rec_ucache {
    pthread_mutex_t mu;
    size_t budget, bytes, entries;
    uint64_t hits, misses;
    rec_uentry *head[UC_BUCKETS];
    uint64_t ver[UC_BUCKETS];
    rec_uentry *newest, *oldest;
};

static void entry_free(rec_uentry *e)
{
    lp_mf_user_free(e->pu);
    free(e->uid);
    free(e);
}

/* Take e out of the table and the LRU list (mu held); frees it unless a request holds it. */
static void unlink_entry(rec_ucache *c, rec_uentry *e)
{
    rec_uentry **p = &c->head[e->h & (UC_BUCKETS - 1)];
    while (*p != e) p = &(*p)->hnext;
    *p = e->hnext;
    if (e->newer) e->newer->older = e->older;
    else c->newest = e->older;
    if (e->older) e->older->newer = e->newer;
    else c->oldest = e->newer;
    e->linked = false;
    c->bytes -= e->bytes;
    c->entries--;
    if (e->refs == 0) entry_free(e);
}

static void make_newest(rec_ucache *c, rec_uentry *e)
{
    if (c->newest == e) return;
    if (e->newer) e->newer->older = e->older; /* unlink (it is linked and not the newest) */
    if (e->older) e->older->newer = e->newer;
    else c->oldest = e->newer;
    e->older = c->newest;
    e->newer = NULL;
    c->newest->newer = e;
    c->newest = e;
}

rec_ucache *rec_ucache_new(size_t budget_bytes)
{
    rec_ucache *c = lp_calloc(1, sizeof *c);
    if (!c) return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->budget = budget_bytes;
    return c;
}

void rec_ucache_free(rec_ucache *c)
{
    if (!c) return;
    while (c->oldest) unlink_entry(c, c->oldest);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

const lp_mf_user *rec_ucache_get(rec_ucache *c, const char *uid, uint64_t gen, uint64_t *token,
                                 rec_uentry **held)
{
    *held = NULL;
    uint64_t h = rec_hash(uid);
    size_t b = h & (UC_BUCKETS - 1);
    pthread_mutex_lock(&c->mu);
    *token = c->ver[b];
    for (rec_uentry *e = c->head[b]; e; e = e->hnext) {
        if (e->h != h || strcmp(e->uid, uid) != 0) continue;
        if (e->gen == gen && e->ver == c->ver[b]) {
            e->refs++;
            make_newest(c, e);
            c->hits++;
            pthread_mutex_unlock(&c->mu);
            *held = e;
            return e->pu;
        }
        unlink_entry(c, e); /* stale: another model, or events since */
        break;
    }
    c->misses++;
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

const lp_mf_user *rec_ucache_put(rec_ucache *c, const char *uid, uint64_t gen, uint64_t token,
                                 lp_mf_user *pu, rec_uentry **held)
{
    *held = NULL;
    rec_uentry *e = lp_calloc(1, sizeof *e);
    char *id = lp_strdup(uid);
    if (!e || !id) {
        free(e), free(id);
        lp_mf_user_free(pu);
        return NULL;
    }
    e->uid = id;
    e->h = rec_hash(uid);
    e->gen = gen;
    e->ver = token;
    e->pu = pu;
    e->bytes = lp_mf_user_bytes(pu) + sizeof *e + strlen(uid) + 1;
    e->refs = 1;
    size_t b = e->h & (UC_BUCKETS - 1);
    pthread_mutex_lock(&c->mu);
    if (c->ver[b] == token && e->bytes <= c->budget) {
        for (rec_uentry *o = c->head[b]; o; o = o->hnext)
            if (o->h == e->h && strcmp(o->uid, uid) == 0) {
                unlink_entry(c, o);
                break;
            }
        e->hnext = c->head[b];
        c->head[b] = e;
        e->older = c->newest;
        if (c->newest) c->newest->newer = e;
        else c->oldest = e;
        c->newest = e;
        e->linked = true;
        c->bytes += e->bytes;
        c->entries++;
        while (c->bytes > c->budget && c->oldest != e) unlink_entry(c, c->oldest);
    }
    pthread_mutex_unlock(&c->mu);
    *held = e;
    return pu;
}

void rec_ucache_release(rec_ucache *c, rec_uentry *e)
{
    if (!e) return;
    pthread_mutex_lock(&c->mu);
    bool gone = --e->refs == 0 && !e->linked;
    pthread_mutex_unlock(&c->mu);
    if (gone) entry_free(e);
}

bool rec_ucache_invalidate(rec_ucache *c, const char *uid)
{
    uint64_t h = rec_hash(uid);
    size_t b = h & (UC_BUCKETS - 1);
    bool had = false;
    pthread_mutex_lock(&c->mu);
    for (rec_uentry *e = c->head[b]; e && !had; e = e->hnext)
        had = e->h == h && strcmp(e->uid, uid) == 0 && e->ver == c->ver[b];
    c->ver[b]++;
    pthread_mutex_unlock(&c->mu);
    return had;
}

size_t rec_ucache_recent(rec_ucache *c, char **uids, size_t max)
{
    size_t n = 0;
    pthread_mutex_lock(&c->mu);
    for (rec_uentry *e = c->newest; e && n < max; e = e->older)
        if ((uids[n] = lp_strdup(e->uid)))
            n++;
    pthread_mutex_unlock(&c->mu);
    return n;
}

bool rec_ucache_missing(rec_ucache *c, const char *uid, uint64_t gen, uint64_t *token)
{
    uint64_t h = rec_hash(uid);
    size_t b = h & (UC_BUCKETS - 1);
    bool missing = true;
    pthread_mutex_lock(&c->mu);
    *token = c->ver[b];
    for (rec_uentry *e = c->head[b]; e && missing; e = e->hnext)
        missing = !(e->h == h && strcmp(e->uid, uid) == 0 && e->gen == gen && e->ver == c->ver[b]);
    pthread_mutex_unlock(&c->mu);
    return missing;
}

rec_ucache_stats rec_ucache_stats_get(rec_ucache *c)
{
    pthread_mutex_lock(&c->mu);
    rec_ucache_stats s = {.entries = c->entries, .bytes = c->bytes, .budget = c->budget,
                          .hits = c->hits, .misses = c->misses};
    pthread_mutex_unlock(&c->mu);
    return s;
}
