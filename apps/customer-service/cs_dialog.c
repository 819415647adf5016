/*
 * cs_dialog.c - the bot definition (JSON), the per-session dialogue state machine and its
 * SQLite store.
 *
 * The state machine is pure (cs_dialog_step: session + classified turn -> reply, hand-off);
 * the store keeps sessions, turns and feedback in one SQLite file in WAL mode, each turn
 * written with its session state in one transaction, schema versioned by PRAGMA user_version.
 * Texts reaching the store are already redacted by the caller; in hash-only mode only their
 * SHA-256 is kept.
 * Thread safety: a cs_bot_def is immutable; a cs_store serialises its one connection with a
 * mutex (requests of one service share it).
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cs.h"

struct cs_bot_def {
    char *src;
    cJSON *root;
    double min_conf;
    long max_low;
};

void cs_bot_def_free(cs_bot_def *b)
{
    if (!b)
        return;
    free(b->src);
    cJSON_Delete(b->root);
    free(b);
}

const char *cs_bot_def_json(const cs_bot_def *b)
{
    return b->src;
}

const char *cs_bot_def_order_pattern(const cs_bot_def *b)
{
    const cJSON *x = b ? cJSON_GetObjectItemCaseSensitive(b->root, "order_pattern") : NULL;
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static const cJSON *member(const cJSON *o, const char *name)
{
    return cJSON_GetObjectItemCaseSensitive(o, name);
}

lp_status cs_bot_def_parse(const char *json, size_t len, const char *what, cs_bot_def **out,
                           lp_err *err)
{
    *out = NULL;
    cJSON *root;
    lp_status st = lp_json_parse_body(json, len, 32, what, &root, err);
    if (st != LP_OK)
        return st;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return lp_err_set(err, LP_EINVAL, "%s: expected a JSON object", what);
    }
    const cJSON *h = member(root, "handoff"), *in = member(root, "intents"), *x;
    if (in && !cJSON_IsObject(in))
        st = lp_err_set(err, LP_EINVAL, "%s: 'intents' must be an object", what);
    if (st == LP_OK && h && !cJSON_IsObject(h))
        st = lp_err_set(err, LP_EINVAL, "%s: 'handoff' must be an object", what);
    const char *strs[] = {"fallback", "handoff_reply", "order_pattern"};
    for (int k = 0; k < 3 && st == LP_OK; k++)
        if ((x = member(root, strs[k])) && !cJSON_IsString(x))
            st = lp_err_set(err, LP_EINVAL, "%s: '%s' must be a string", what, strs[k]);
    cJSON_ArrayForEach(x, in)
    {
        if (st != LP_OK)
            break;
        const cJSON *r = member(x, "reply"), *req = member(x, "required"), *q;
        if (!cJSON_IsObject(x) || (r && !cJSON_IsString(r)) || (req && !cJSON_IsArray(req))) {
            st = lp_err_set(err, LP_EINVAL,
                            "%s: intents.%s: expected {\"reply\": string, "
                            "\"required\": [...]}",
                            what, x->string);
            break;
        }
        cJSON_ArrayForEach(q, req) if (!cJSON_IsString(member(q, "slot")) ||
                                       !cJSON_IsString(member(q, "ask")))
        {
            st = lp_err_set(err, LP_EINVAL,
                            "%s: intents.%s.required: each item needs string "
                            "'slot' and 'ask'",
                            what, x->string);
            break;
        }
    }
    cs_bot_def *b = st == LP_OK ? lp_calloc(1, sizeof(*b)) : NULL;
    if (st == LP_OK && (!b || !(b->src = lp_strndup(json, len))))
        st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
    if (st != LP_OK) {
        if (b)
            free(b->src);
        free(b);
        cJSON_Delete(root);
        return st;
    }
    b->root = root;
    b->min_conf = 0.5;
    b->max_low = 2;
    if ((x = member(h, "min_confidence")) &&
        (!cJSON_IsNumber(x) || !(x->valuedouble >= 0) || !(x->valuedouble <= 1)))
        st = lp_err_set(err, LP_EINVAL, "%s: handoff.min_confidence must be a number in [0, 1]",
                        what);
    else if (x)
        b->min_conf = x->valuedouble;
    if ((x = member(h, "max_low_confidence")) &&
        (!cJSON_IsNumber(x) || !(x->valuedouble >= 1) || !(x->valuedouble <= 1000)))
        st = lp_err_set(err, LP_EINVAL, "%s: handoff.max_low_confidence must be a number in "
                                        "[1, 1000]", what);
    else if (x)
        b->max_low = (long)x->valuedouble;
    if (st != LP_OK) {
        cs_bot_def_free(b);
        return st;
    }
    *out = b;
    return LP_OK;
}

void cs_session_init(cs_session *s, const char *id)
{
    memset(s, 0, sizeof(*s));
    snprintf(s->id, sizeof(s->id), "%s", id ? id : "");
    s->slots = cJSON_CreateObject();
}

void cs_session_clear(cs_session *s)
{
    if (s)
        cJSON_Delete(s->slots);
    if (s)
        s->slots = NULL;
}

void cs_turn_out_clear(cs_turn_out *o)
{
    if (!o)
        return;
    free(o->reply);
    memset(o, 0, sizeof(*o));
}

/* Case-insensitive (ASCII) whole-word-ish substring test. */
static bool contains_phrase(const char *text, const char *phrase)
{
    size_t lp = strlen(phrase), lt = strlen(text);
    if (!lp)
        return false;
    for (size_t i = 0; i + lp <= lt; i++) {
        if (strncasecmp(text + i, phrase, lp))
            continue;
        bool left = i == 0 || !isalnum((unsigned char)text[i - 1]);
        bool right = i + lp == lt || !isalnum((unsigned char)text[i + lp]);
        if (left && right)
            return true;
    }
    return false;
}

static bool in_string_array(const cJSON *arr, const char *s)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) if (cJSON_IsString(x) && !strcmp(x->valuestring, s)) return true;
    return false;
}

/* template with {slot} replaced by the session's values. */
static char *fill(const char *tpl, const cJSON *slots)
{
    lp_buf b;
    lp_buf_init(&b);
    for (const char *p = tpl; *p;) {
        const char *close = *p == '{' ? strchr(p, '}') : NULL;
        if (close && close - p - 1 < 64 && close > p + 1) {
            char name[64];
            snprintf(name, sizeof(name), "%.*s", (int)(close - p - 1), p + 1);
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(slots, name);
            if (cJSON_IsString(v)) {
                lp_buf_put(&b, v->valuestring, strlen(v->valuestring));
                p = close + 1;
                continue;
            }
        }
        lp_buf_u8(&b, (uint8_t)*p++);
    }
    lp_buf_u8(&b, 0);
    size_t l;
    return (char *)lp_buf_take(&b, &l);
}

static lp_status set_reply(cs_turn_out *o, const char *text, const cJSON *slots, lp_err *err)
{
    free(o->reply);
    o->reply = fill(text ? text : "", slots);
    return o->reply ? LP_OK : lp_err_set(err, LP_ENOMEM, "dialog: out of memory");
}

static const char *def_str(const cs_bot_def *b, const char *name, const char *dflt)
{
    const cJSON *x = b ? member(b->root, name) : NULL;
    return cJSON_IsString(x) ? x->valuestring : dflt;
}

static lp_status handoff(const cs_bot_def *b, cs_session *s, cs_turn_out *o, const char *why,
                         lp_err *err)
{
    o->handoff = true;
    s->handed_off = true;
    snprintf(o->reason, sizeof(o->reason), "%s", why);
    return set_reply(o,
                     def_str(b, "handoff_reply", "Let me connect you with a member of our team."),
                     s->slots, err);
}

/* Act on intent: ask for the first missing required slot, else fill the reply. */
static lp_status act(const cs_bot_def *b, cs_session *s, const char *intent, const char *faq,
                     cs_turn_out *o, lp_err *err)
{
    const cJSON *def = b ? member(member(b->root, "intents"), intent) : NULL, *q;
    o->intent = intent;
    if (!def) {
        s->pending[0] = 0;
        return set_reply(o, faq ? faq : def_str(b, "fallback", "Sorry, I did not get that."),
                         s->slots, err);
    }
    cJSON_ArrayForEach(q, member(def, "required"))
    {
        const char *slot = member(q, "slot")->valuestring;
        if (!cJSON_IsString(member(s->slots, slot))) {
            snprintf(s->pending, sizeof(s->pending), "%s", intent);
            return set_reply(o, member(q, "ask")->valuestring, s->slots, err);
        }
    }
    s->pending[0] = 0;
    const cJSON *r = member(def, "reply");
    return set_reply(o, cJSON_IsString(r) ? r->valuestring : (faq ? faq : ""), s->slots, err);
}

const char *cs_dialog_awaited_slot(const cs_bot_def *b, const cs_session *s)
{
    if (!b || !s->pending[0])
        return NULL;
    const cJSON *q;
    cJSON_ArrayForEach(q, member(member(member(b->root, "intents"), s->pending), "required"))
    {
        const char *slot = member(q, "slot")->valuestring;
        if (!cJSON_IsString(member(s->slots, slot)))
            return slot;
    }
    return NULL;
}

lp_status cs_dialog_step(const cs_bot_def *b, cs_session *s, const cs_turn_in *in, cs_turn_out *o,
                         lp_err *err)
{
    memset(o, 0, sizeof(*o));
    s->turns++;
    const cJSON *h = b ? member(b->root, "handoff") : NULL;
    const cJSON *phrases = member(h, "human_phrases"), *x;
    static const char *const dflt_phrases[] = {"human",    "agent",          "real person",
                                               "operator", "representative", NULL};
    bool asked = false;
    if (phrases) {
        cJSON_ArrayForEach(x, phrases) asked |=
            cJSON_IsString(x) && contains_phrase(in->text, x->valuestring);
    } else {
        for (size_t k = 0; dflt_phrases[k]; k++)
            asked |= contains_phrase(in->text, dflt_phrases[k]);
    }
    o->intent = in->intent->intent;
    if (asked)
        return handoff(b, s, o, "user_requested", err);
    /* a pending intent continues when this turn fills something it needs: the user is
     * answering the bot's question, whatever else the classifier reads into the answer */
    bool filled = false;
    if (s->pending[0]) {
        const cJSON *def = b ? member(member(b->root, "intents"), s->pending) : NULL, *q;
        cJSON_ArrayForEach(q, member(def, "required"))
        {
            const char *slot = member(q, "slot")->valuestring;
            for (size_t i = 0; in->entities && i < in->entities->n; i++)
                filled |= !strcmp(in->entities->v[i].type, slot);
        }
    }
    if (!filled && !in->intent->out_of_scope &&
        in_string_array(member(h, "intents"), in->intent->intent)) {
        char why[96];
        snprintf(why, sizeof(why), "intent:%s", in->intent->intent);
        return handoff(b, s, o, why, err);
    }
    /* entities fill slots (the latest value of a type wins) */
    for (size_t i = 0; in->entities && i < in->entities->n; i++) {
        const cs_entity *e = &in->entities->v[i];
        cJSON_DeleteItemFromObjectCaseSensitive(s->slots, e->type);
        cJSON_AddStringToObject(s->slots, e->type, e->value);
    }
    double min_conf = b ? b->min_conf : 0.5;
    long max_low = b ? b->max_low : 2;
    bool low = in->intent->out_of_scope || in->intent->confidence < min_conf;
    if (filled) {
        s->low_conf = 0;
        char intent[64];
        snprintf(intent, sizeof(intent), "%s", s->pending);
        lp_status st = act(b, s, intent, NULL, o, err);
        /* o->intent must outlive the stack: point at the bot definition's key */
        const cJSON *d = b ? member(member(b->root, "intents"), intent) : NULL;
        o->intent = d ? d->string : in->intent->intent;
        return st;
    }
    if (low && in->faq_answer) {
        /* a confident FAQ answer is an answered turn, not a miss */
        s->low_conf = 0;
        return set_reply(o, in->faq_answer, s->slots, err);
    }
    if (low) {
        s->low_conf++;
        if (s->low_conf >= max_low)
            return handoff(b, s, o, "repeated_low_confidence", err);
        return set_reply(o,
                         in->faq_answer ? in->faq_answer
                                        : def_str(b, "fallback", "Sorry, I did not get that."),
                         s->slots, err);
    }
    s->low_conf = 0;
    return act(b, s, in->intent->intent, in->faq_answer, o, err);
}

/* ---- SQLite store ------------------------------------------------------------------------ */
/* A turn queued by cs_store_put_async: its own copies of everything written. */
typedef struct store_job {
    struct store_job *next;
    char *id, *pending, *slots, *text, *intent, *reply, *reason; /* reason may be NULL */
    long turns, low_conf;
    bool handed_off, handoff;
    double confidence;
    cs_store_done_fn done;
    void *arg;
    lp_status st; /* the outcome, set by the writer */
    lp_err err;
    long turn_id;
} store_job;

struct cs_store {
    sqlite3 *db;
    pthread_mutex_t mu;
    bool hashes_only;
    /* a turn's statements, prepared on first use and kept (under mu): parsing the SQL again for
     * every turn was a large part of a turn's cost */
    sqlite3_stmt *get, *put_session, *put_turn, *begin, *commit;
    /* reads: a read-only connection of their own (NULL for ":memory:": then db), under rmu */
    sqlite3 *rdb;
    pthread_mutex_t rmu;
    sqlite3_stmt *rget;
    /* the last committed state of recently written sessions (under cmu), so that a turn does not
     * read its session back from SQLite: see cache_put */
    pthread_mutex_t cmu;
    struct cached_session *cache; /* NULL until cs_store_claim */
    int claim_fd;                 /* the claim's lock file, -1 when none */
    /* cs_store_put_async: the queue (under qmu) and its writer thread */
    pthread_mutex_t qmu;
    pthread_cond_t qcv;
    store_job *qhead, *qtail;
    bool qstop, writer_started;
    pthread_t writer;
};

/* ---- the session cache ----
 * A direct-mapped table of the sessions this process committed: slot = hash(id), a newer write
 * of another id in the same slot replaces it. It is filled only by the writer, right after a
 * COMMIT and before the turn's answer goes out, in commit order, so an entry is never older than
 * the row in SQLite; a session not in it (never written by this process, evicted, or its slots
 * too long to keep) is read from SQLite as before. This assumes the service is the only writer
 * of its sessions table: the cache is on only after cs_store_claim, which the server calls and
 * which holds a lock that a second server on the same file cannot take. */
#define CACHE_SLOTS 16384u
#define CACHE_MAX_SLOTS_JSON 1024u

typedef struct cached_session {
    char id[129]; /* "" = empty */
    char pending[64];
    long turns, low_conf;
    bool handed_off;
    char *slots; /* the slots object as JSON, owned */
} cached_session;

static size_t cache_slot(const char *id)
{
    return lp_murmur3_32(id, strlen(id), 0x5e55u) & (CACHE_SLOTS - 1);
}

/* Record job j's committed state (mu held by the writer). */
static void cache_put(cs_store *st, const store_job *j)
{
    if (!st->cache)
        return;
    size_t idlen = strlen(j->id), sl = strlen(j->slots);
    bool keep = idlen < sizeof(st->cache->id) && strlen(j->pending) < sizeof(st->cache->pending) &&
                sl <= CACHE_MAX_SLOTS_JSON;
    char *slots = keep ? lp_strdup(j->slots) : NULL;
    cached_session *c = &st->cache[cache_slot(j->id)];
    pthread_mutex_lock(&st->cmu);
    if (keep && slots) {
        memcpy(c->id, j->id, idlen + 1);
        snprintf(c->pending, sizeof(c->pending), "%s", j->pending);
        c->turns = j->turns;
        c->low_conf = j->low_conf;
        c->handed_off = j->handed_off;
        char *old = c->slots;
        c->slots = slots;
        slots = old;
    } else if (!strcmp(c->id, j->id)) {
        c->id[0] = '\0'; /* cannot keep it: the entry must not stay behind the row */
    }
    pthread_mutex_unlock(&st->cmu);
    free(slots);
}

/* Fill s from the cache; false on a miss. */
static bool cache_get(cs_store *st, const char *id, cs_session *s)
{
    if (!st->cache || !id[0])
        return false;
    cached_session *c = &st->cache[cache_slot(id)];
    char slots[CACHE_MAX_SLOTS_JSON + 1];
    pthread_mutex_lock(&st->cmu);
    bool hit = !strcmp(c->id, id);
    if (hit) {
        s->turns = c->turns;
        s->low_conf = c->low_conf;
        s->handed_off = c->handed_off;
        memcpy(s->pending, c->pending, sizeof(s->pending));
        snprintf(slots, sizeof(slots), "%s", c->slots);
    }
    pthread_mutex_unlock(&st->cmu);
    if (hit) {
        cJSON *o = cJSON_Parse(slots);
        if (cJSON_IsObject(o)) {
            cJSON_Delete(s->slots);
            s->slots = o;
        } else {
            cJSON_Delete(o);
        }
    }
    return hit;
}

static void cache_free(cs_store *st)
{
    for (size_t i = 0; st->cache && i < CACHE_SLOTS; i++)
        free(st->cache[i].slots);
    free(st->cache);
    st->cache = NULL;
}

/* *slot prepared from sql once, then reset with its bindings cleared; NULL when it cannot be
 * prepared (mu held). */
static sqlite3_stmt *kept_stmt_on(sqlite3 *db, sqlite3_stmt **slot, const char *sql)
{
    if (!*slot) {
        if (sqlite3_prepare_v2(db, sql, -1, slot, NULL) != SQLITE_OK) {
            sqlite3_finalize(*slot);
            *slot = NULL;
        }
        return *slot;
    }
    sqlite3_reset(*slot);
    sqlite3_clear_bindings(*slot);
    return *slot;
}

static sqlite3_stmt *kept_stmt(cs_store *st, sqlite3_stmt **slot, const char *sql)
{
    return kept_stmt_on(st->db, slot, sql);
}

/* Run a kept statement without results (BEGIN, COMMIT); SQLITE_DONE on success. */
static int kept_exec(cs_store *st, sqlite3_stmt **slot, const char *sql)
{
    sqlite3_stmt *q = kept_stmt(st, slot, sql);
    int rc = q ? sqlite3_step(q) : SQLITE_ERROR;
    if (q) sqlite3_reset(q);
    return rc;
}

static const char *const schema_v1 =
    "CREATE TABLE IF NOT EXISTS sessions(id TEXT PRIMARY KEY, turns INTEGER NOT NULL, "
    "low_conf INTEGER NOT NULL, pending TEXT NOT NULL, slots TEXT NOT NULL, "
    "handed_off INTEGER NOT NULL, updated_at TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS turns(id INTEGER PRIMARY KEY AUTOINCREMENT, session_id TEXT "
    "NOT NULL, ts TEXT NOT NULL, text TEXT, text_sha256 TEXT NOT NULL, intent TEXT, "
    "confidence REAL, reply TEXT, handoff INTEGER NOT NULL, reason TEXT);"
    "CREATE INDEX IF NOT EXISTS turns_session ON turns(session_id);"
    "CREATE TABLE IF NOT EXISTS feedback(turn_id INTEGER PRIMARY KEY, session_id TEXT NOT NULL,"
    " intent TEXT NOT NULL, ts TEXT NOT NULL);"
    "PRAGMA user_version = 1;";

static lp_status sql_err(cs_store *st, const char *what, lp_err *err)
{
    return lp_err_set(err, LP_EIO, "session store: %s: %s", what, sqlite3_errmsg(st->db));
}

lp_status cs_store_open(const char *path, bool keep_hashes_only, cs_store **out, lp_err *err)
{
    *out = NULL;
    cs_store *st = lp_calloc(1, sizeof(*st));
    if (!st)
        return lp_err_set(err, LP_ENOMEM, "session store: out of memory");
    st->hashes_only = keep_hashes_only;
    pthread_mutex_init(&st->mu, NULL);
    pthread_mutex_init(&st->rmu, NULL);
    pthread_mutex_init(&st->qmu, NULL);
    pthread_mutex_init(&st->cmu, NULL);
    pthread_cond_init(&st->qcv, NULL);
    st->claim_fd = -1;
    if (sqlite3_open_v2(path, &st->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                        NULL) != SQLITE_OK) {
        lp_err_set(err, LP_EIO, "session store %s: %s", path,
                   st->db ? sqlite3_errmsg(st->db) : "cannot open");
        cs_store_close(st);
        return LP_EIO;
    }
    sqlite3_busy_timeout(st->db, 5000);
    int ver = 0;
    sqlite3_stmt *q;
    if (sqlite3_exec(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
                     NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK) {
        lp_status s = sql_err(st, path, err);
        cs_store_close(st);
        return s;
    }
    if (sqlite3_step(q) == SQLITE_ROW)
        ver = sqlite3_column_int(q, 0);
    sqlite3_finalize(q);
    if (ver > 1) {
        cs_store_close(st);
        return lp_err_set(err, LP_EVERSION,
                          "session store %s: schema version %d is newer than "
                          "this program's 1",
                          path, ver);
    }
    if (ver < 1 && sqlite3_exec(st->db, schema_v1, NULL, NULL, NULL) != SQLITE_OK) {
        lp_status s = sql_err(st, path, err);
        cs_store_close(st);
        return s;
    }
    /* reads on a connection of their own: a WAL reader sees the last commit without waiting
     * for a transaction in progress (a ":memory:" database is private to its connection) */
    if (strcmp(path, ":memory:") != 0 && path[0] &&
        sqlite3_open_v2(path, &st->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, NULL) !=
            SQLITE_OK) {
        sqlite3_close(st->rdb);
        st->rdb = NULL;
    }
    if (st->rdb)
        sqlite3_busy_timeout(st->rdb, 5000);
    *out = st;
    return LP_OK;
}

/* Drain the queue and stop the writer (before the connection closes). */
static void writer_stop(cs_store *st)
{
    pthread_mutex_lock(&st->qmu);
    bool started = st->writer_started;
    st->qstop = true;
    pthread_cond_signal(&st->qcv);
    pthread_mutex_unlock(&st->qmu);
    if (started)
        pthread_join(st->writer, NULL);
}

void cs_store_close(cs_store *st)
{
    if (!st)
        return;
    writer_stop(st);
    sqlite3_finalize(st->rget);
    sqlite3_close(st->rdb);
    sqlite3_finalize(st->get);
    sqlite3_finalize(st->put_session);
    sqlite3_finalize(st->put_turn);
    sqlite3_finalize(st->begin);
    sqlite3_finalize(st->commit);
    sqlite3_close(st->db);
    pthread_mutex_destroy(&st->mu);
    pthread_mutex_destroy(&st->rmu);
    pthread_mutex_destroy(&st->qmu);
    pthread_mutex_destroy(&st->cmu);
    pthread_cond_destroy(&st->qcv);
    cache_free(st);
    if (st->claim_fd >= 0)
        close(st->claim_fd); /* releases the claim */
    free(st);
}

lp_status cs_store_claim(cs_store *st, const char *path, lp_err *err)
{
    if (st->cache)
        return LP_OK;
    if (path && path[0] && strcmp(path, ":memory:") != 0) {
        /* a lock file of its own: an flock on the database file would need a descriptor of
         * that file, and closing one releases every SQLite lock of the process on it */
        char lock[4096];
        if (snprintf(lock, sizeof lock, "%s.serve-lock", path) >= (int)sizeof lock)
            return lp_err_set(err, LP_EINVAL, "session store %s: path too long", path);
        int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0)
            return lp_err_set(err, LP_EIO, "session store %s: cannot open %s: %s", path, lock,
                              strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            close(fd);
            if (e == EWOULDBLOCK)
                return lp_err_set(err, LP_ESTATE, "session store %s is in use by another server "
                                  "(its session state is cached in memory, so each server "
                                  "needs a --db of its own)", path);
            return lp_err_set(err, LP_EIO, "session store %s: cannot lock %s: %s", path, lock,
                              strerror(e));
        }
        st->claim_fd = fd;
    }
    st->cache = lp_calloc(CACHE_SLOTS, sizeof(*st->cache));
    if (!st->cache)
        return lp_err_set(err, LP_ENOMEM, "session store: out of memory");
    return LP_OK;
}

lp_status cs_store_get(cs_store *st, const char *id, cs_session *s, lp_err *err)
{
    cs_session_init(s, id);
    if (cache_get(st, id, s))
        return LP_OK;
    pthread_mutex_t *mu = st->rdb ? &st->rmu : &st->mu;
    pthread_mutex_lock(mu);
    lp_status rc = LP_OK;
    sqlite3_stmt *q = kept_stmt_on(st->rdb ? st->rdb : st->db, st->rdb ? &st->rget : &st->get,
                                   "SELECT turns, low_conf, pending, slots, handed_off FROM "
                                   "sessions WHERE id = ?");
    if (!q) {
        rc = lp_err_set(err, LP_EIO, "session store: read session: %s",
                        sqlite3_errmsg(st->rdb ? st->rdb : st->db));
        goto out;
    }
    sqlite3_bind_text(q, 1, id, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(q) == SQLITE_ROW) {
        s->turns = sqlite3_column_int64(q, 0);
        s->low_conf = sqlite3_column_int64(q, 1);
        snprintf(s->pending, sizeof(s->pending), "%s",
                 (const char *)sqlite3_column_text(q, 2) ? (const char *)sqlite3_column_text(q, 2)
                                                         : "");
        const char *js = (const char *)sqlite3_column_text(q, 3);
        cJSON *slots = js ? cJSON_Parse(js) : NULL;
        if (cJSON_IsObject(slots)) {
            cJSON_Delete(s->slots);
            s->slots = slots;
        } else {
            cJSON_Delete(slots);
        }
        s->handed_off = sqlite3_column_int(q, 4) != 0;
    } else {
        rc = lp_err_set(err, LP_ENOTFOUND, "session '%s' not found", id);
    }
    sqlite3_reset(q);
out:
    pthread_mutex_unlock(mu);
    return rc;
}

/* Write job j's session row and turn row (mu held, a transaction open); *turn_id gets the
 * turn's id. The statements are reset afterwards. */
static lp_status put_rows(cs_store *st, const store_job *j, long *turn_id, lp_err *err)
{
    char hex[65];
    lp_sha256_hex(j->text, strlen(j->text), hex);
    sqlite3_stmt *a = kept_stmt(st, &st->put_session,
                                "INSERT INTO sessions(id, turns, low_conf, pending, slots, "
                                "handed_off, updated_at) VALUES(?,?,?,?,?,?,strftime('%Y-%m-%dT%H:"
                                "%M:%fZ')) ON CONFLICT(id) DO UPDATE SET turns=excluded.turns, "
                                "low_conf=excluded.low_conf, pending=excluded.pending, "
                                "slots=excluded.slots, handed_off=excluded.handed_off, "
                                "updated_at=excluded.updated_at");
    sqlite3_stmt *b = kept_stmt(st, &st->put_turn,
                                "INSERT INTO turns(session_id, ts, text, text_sha256, intent,"
                                " confidence, reply, handoff, reason) VALUES(?,strftime('%Y-%m-%dT"
                                "%H:%M:%fZ'),?,?,?,?,?,?,?)");
    if (!a || !b)
        return sql_err(st, "prepare", err);
    sqlite3_bind_text(a, 1, j->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(a, 2, j->turns);
    sqlite3_bind_int64(a, 3, j->low_conf);
    sqlite3_bind_text(a, 4, j->pending, -1, SQLITE_STATIC);
    sqlite3_bind_text(a, 5, j->slots, -1, SQLITE_STATIC);
    sqlite3_bind_int(a, 6, j->handed_off);
    sqlite3_bind_text(b, 1, j->id, -1, SQLITE_STATIC);
    if (st->hashes_only)
        sqlite3_bind_null(b, 2);
    else
        sqlite3_bind_text(b, 2, j->text, -1, SQLITE_STATIC);
    sqlite3_bind_text(b, 3, hex, -1, SQLITE_STATIC);
    sqlite3_bind_text(b, 4, j->intent, -1, SQLITE_STATIC);
    sqlite3_bind_double(b, 5, j->confidence);
    sqlite3_bind_text(b, 6, j->reply, -1, SQLITE_STATIC);
    sqlite3_bind_int(b, 7, j->handoff);
    sqlite3_bind_text(b, 8, j->reason && j->reason[0] ? j->reason : NULL, -1, SQLITE_STATIC);
    lp_status rc = LP_OK;
    if (sqlite3_step(a) != SQLITE_DONE || sqlite3_step(b) != SQLITE_DONE)
        rc = sql_err(st, "write turn", err);
    else if (turn_id)
        *turn_id = (long)sqlite3_last_insert_rowid(st->db);
    /* before COMMIT: a statement still running would keep it open */
    sqlite3_reset(a);
    sqlite3_reset(b);
    return rc;
}

/* The job's fields pointing at the caller's strings (the synchronous put writes them at once). */
static store_job job_view(const cs_session *s, char *slots, const char *text, const char *intent,
                          double confidence, const char *reply, bool handoff, const char *reason)
{
    return (store_job){.id = (char *)s->id, .pending = (char *)s->pending, .slots = slots,
                       .text = (char *)text, .intent = (char *)intent, .reply = (char *)reply,
                       .reason = (char *)reason, .turns = s->turns, .low_conf = s->low_conf,
                       .handed_off = s->handed_off, .handoff = handoff,
                       .confidence = confidence};
}

/* Write job j in a transaction of its own (mu held); the cache follows a successful commit. */
static lp_status write_one(cs_store *st, const store_job *j, long *turn_id, lp_err *err)
{
    lp_status rc = LP_OK;
    if (kept_exec(st, &st->begin, "BEGIN IMMEDIATE") != SQLITE_DONE)
        rc = sql_err(st, "begin", err);
    else if ((rc = put_rows(st, j, turn_id, err)) == LP_OK &&
             kept_exec(st, &st->commit, "COMMIT") != SQLITE_DONE)
        rc = sql_err(st, "commit", err);
    if (rc != LP_OK && !sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc == LP_OK)
        cache_put(st, j);
    return rc;
}

lp_status cs_store_put(cs_store *st, const cs_session *s, const char *text, const char *intent,
                       double confidence, const char *reply, bool handoff, const char *reason,
                       long *turn_id, lp_err *err)
{
    char *slots = cJSON_PrintUnformatted(s->slots);
    if (!slots)
        return lp_err_set(err, LP_ENOMEM, "session store: out of memory");
    store_job j = job_view(s, slots, text, intent, confidence, reply, handoff, reason);
    pthread_mutex_lock(&st->mu);
    lp_status rc = write_one(st, &j, turn_id, err);
    pthread_mutex_unlock(&st->mu);
    free(slots);
    return rc;
}

static void job_free(store_job *j)
{
    free(j->id);
    free(j->pending);
    free(j->slots);
    free(j->text);
    free(j->intent);
    free(j->reply);
    free(j->reason);
    free(j);
}

/* Commit a batch of jobs in one transaction, then report each. When a turn or the commit fails,
 * the transaction is rolled back and every turn of the batch is written again in a transaction
 * of its own, so that one bad turn fails alone (a savepoint per turn did the same at the price
 * of three more statements for every turn). */
static void commit_jobs(cs_store *st, store_job *batch)
{
    pthread_mutex_lock(&st->mu);
    bool ok = kept_exec(st, &st->begin, "BEGIN IMMEDIATE") == SQLITE_DONE;
    lp_status bst = ok ? LP_OK : sql_err(st, "begin", &batch->err);
    for (store_job *j = batch; ok && j; j = j->next)
        ok = (bst = put_rows(st, j, &j->turn_id, &batch->err)) == LP_OK;
    if (ok && kept_exec(st, &st->commit, "COMMIT") != SQLITE_DONE) {
        ok = false;
        bst = sql_err(st, "commit", &batch->err);
    }
    if (!ok && !sqlite3_get_autocommit(st->db))
        sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
    if (ok) {
        for (store_job *j = batch; j; j = j->next)
            cache_put(st, j);
    } else if (batch->next) {
        for (store_job *j = batch; j; j = j->next)
            j->st = write_one(st, j, &j->turn_id, &j->err);
    } else {
        batch->st = bst; /* one turn: its error is already in batch->err */
    }
    pthread_mutex_unlock(&st->mu);
    for (store_job *j = batch, *next; j; j = next) {
        next = j->next;
        j->done(j->arg, j->st, j->st == LP_OK ? j->turn_id : 0, &j->err);
        job_free(j);
    }
}

static void *store_writer(void *arg)
{
    cs_store *st = arg;
    pthread_mutex_lock(&st->qmu);
    for (;;) {
        while (!st->qhead && !st->qstop)
            pthread_cond_wait(&st->qcv, &st->qmu);
        store_job *batch = st->qhead;
        if (!batch)
            break; /* stopping, and nothing left */
        /* at most 512 turns a transaction: the rest wait for the next one */
        store_job *last = batch;
        for (size_t k = 1; k < 512 && last->next; k++)
            last = last->next;
        st->qhead = last->next;
        if (!st->qhead)
            st->qtail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&st->qmu);
        commit_jobs(st, batch);
        pthread_mutex_lock(&st->qmu);
    }
    pthread_mutex_unlock(&st->qmu);
    return NULL;
}

lp_status cs_store_put_async(cs_store *st, const cs_session *s, const char *text,
                             const char *intent, double confidence, const char *reply,
                             bool handoff, const char *reason, cs_store_done_fn done, void *arg,
                             lp_err *err)
{
    store_job *j = lp_calloc(1, sizeof *j);
    if (j) {
        *j = (store_job){.id = lp_strdup(s->id), .pending = lp_strdup(s->pending),
                         .slots = cJSON_PrintUnformatted(s->slots), .text = lp_strdup(text),
                         .intent = lp_strdup(intent), .reply = lp_strdup(reply ? reply : ""),
                         .reason = reason ? lp_strdup(reason) : NULL, .turns = s->turns,
                         .low_conf = s->low_conf, .handed_off = s->handed_off,
                         .handoff = handoff, .confidence = confidence, .done = done,
                         .arg = arg};
        if (!j->id || !j->pending || !j->slots || !j->text || !j->intent || !j->reply ||
            (reason && !j->reason)) {
            job_free(j);
            j = NULL;
        }
    }
    if (!j)
        return lp_err_set(err, LP_ENOMEM, "session store: out of memory");
    pthread_mutex_lock(&st->qmu);
    if (!st->writer_started && !st->qstop) {
        if (pthread_create(&st->writer, NULL, store_writer, st) != 0) {
            pthread_mutex_unlock(&st->qmu);
            job_free(j);
            return lp_err_set(err, LP_ENOMEM, "session store: cannot start the writer thread");
        }
        st->writer_started = true;
    }
    if (st->qstop) {
        pthread_mutex_unlock(&st->qmu);
        job_free(j);
        return lp_err_set(err, LP_ESTATE, "session store: closing");
    }
    if (st->qtail)
        st->qtail->next = j;
    else
        st->qhead = j;
    st->qtail = j;
    pthread_cond_signal(&st->qcv);
    pthread_mutex_unlock(&st->qmu);
    return LP_OK;
}

lp_status cs_store_session_json(cs_store *st, const char *id, long limit, cJSON **out,
                                lp_err *err)
{
    *out = NULL;
    cs_session s;
    lp_status rc = cs_store_get(st, id, &s, err);
    if (rc != LP_OK) {
        cs_session_clear(&s);
        return rc;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "session_id", id);
    cJSON_AddNumberToObject(o, "turns", (double)s.turns);
    cJSON_AddNumberToObject(o, "low_confidence_streak", (double)s.low_conf);
    if (s.pending[0])
        cJSON_AddStringToObject(o, "pending_intent", s.pending);
    else
        cJSON_AddNullToObject(o, "pending_intent");
    cJSON_AddItemToObject(o, "slots", s.slots);
    s.slots = NULL;
    cJSON_AddBoolToObject(o, "handed_off", s.handed_off);
    cJSON *arr = cJSON_AddArrayToObject(o, "history");
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *q;
    long n = 0;
    /* one row more than asked for says whether older turns were left out; the newest ones, in
     * order */
    if (sqlite3_prepare_v2(st->db,
                           "SELECT * FROM (SELECT id, ts, text, text_sha256, intent, confidence,"
                           " reply, handoff, reason FROM turns WHERE session_id = ? ORDER BY id"
                           " DESC LIMIT ?) ORDER BY id",
                           -1, &q, NULL) == SQLITE_OK) {
        sqlite3_bind_text(q, 1, id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(q, 2, (sqlite3_int64)limit + 1);
        while (sqlite3_step(q) == SQLITE_ROW) {
            n++;
            cJSON *t = cJSON_CreateObject();
            cJSON_AddNumberToObject(t, "turn_id", (double)sqlite3_column_int64(q, 0));
            cJSON_AddStringToObject(t, "ts", (const char *)sqlite3_column_text(q, 1));
            const char *tx = (const char *)sqlite3_column_text(q, 2);
            if (tx)
                cJSON_AddStringToObject(t, "text", tx);
            else
                cJSON_AddNullToObject(t, "text");
            cJSON_AddStringToObject(t, "text_sha256", (const char *)sqlite3_column_text(q, 3));
            const char *in = (const char *)sqlite3_column_text(q, 4);
            cJSON_AddStringToObject(t, "intent", in ? in : "");
            cJSON_AddNumberToObject(t, "confidence", sqlite3_column_double(q, 5));
            const char *rp = (const char *)sqlite3_column_text(q, 6);
            cJSON_AddStringToObject(t, "reply", rp ? rp : "");
            cJSON_AddBoolToObject(t, "handoff", sqlite3_column_int(q, 7));
            cJSON_AddItemToArray(arr, t);
        }
        sqlite3_finalize(q);
    }
    pthread_mutex_unlock(&st->mu);
    if (n > limit) /* the one row past the limit: older turns exist */
        cJSON_DeleteItemFromArray(arr, 0);
    cJSON_AddBoolToObject(o, "history_truncated", n > limit);
    cs_session_clear(&s);
    *out = o;
    return LP_OK;
}

lp_status cs_store_feedback(cs_store *st, const char *id, long turn_id, const char *intent,
                            lp_err *err)
{
    pthread_mutex_lock(&st->mu);
    lp_status rc = LP_OK;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(st->db,
                           "INSERT OR REPLACE INTO feedback(turn_id, session_id, intent,"
                           " ts) SELECT id, session_id, ?, strftime('%Y-%m-%dT%H:%M:%fZ') FROM "
                           "turns WHERE id = ? AND session_id = ?",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = sql_err(st, "feedback", err);
    } else {
        sqlite3_bind_text(q, 1, intent, -1, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, turn_id);
        sqlite3_bind_text(q, 3, id, -1, SQLITE_STATIC);
        if (sqlite3_step(q) != SQLITE_DONE)
            rc = sql_err(st, "feedback", err);
        else if (sqlite3_changes(st->db) == 0)
            rc = lp_err_set(err, LP_ENOTFOUND, "turn %ld of session '%s' not found", turn_id, id);
    }
    sqlite3_finalize(q);
    pthread_mutex_unlock(&st->mu);
    return rc;
}

lp_status cs_store_corrections(cs_store *st, char ***texts, char ***labels, size_t *n, lp_err *err)
{
    *texts = *labels = NULL;
    *n = 0;
    pthread_mutex_lock(&st->mu);
    sqlite3_stmt *q;
    lp_status rc = LP_OK;
    size_t cap = 0;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT t.text, f.intent FROM feedback f JOIN turns t ON "
                           "t.id = f.turn_id WHERE t.text IS NOT NULL ORDER BY f.turn_id",
                           -1, &q, NULL) != SQLITE_OK) {
        rc = sql_err(st, "corrections", err);
        goto out;
    }
    while (rc == LP_OK && sqlite3_step(q) == SQLITE_ROW) {
        if (*n == cap) {
            cap = cap ? 2 * cap : 64;
            char **a = lp_reallocarray(*texts, cap, sizeof(char *));
            if (a)
                *texts = a;
            char **b = lp_reallocarray(*labels, cap, sizeof(char *));
            if (b)
                *labels = b;
            if (!a || !b) {
                rc = lp_err_set(err, LP_ENOMEM, "corrections: out of memory");
                break;
            }
        }
        (*texts)[*n] = lp_strdup((const char *)sqlite3_column_text(q, 0));
        (*labels)[*n] = lp_strdup((const char *)sqlite3_column_text(q, 1));
        (*n)++;
    }
    sqlite3_finalize(q);
out:
    pthread_mutex_unlock(&st->mu);
    return rc;
}
