/*
 * rec_service.c - the lepton-recommend HTTP service: GET /v1/recommend, GET /v1/similar,
 * POST /v1/events, POST /v1/items, POST /v1/admin/retrain (auth), GET /v1/monitor, and the serve
 * layer's shared endpoints and /v1/admin/reload.
 *
 * State: the model (immutable lp_mf) behind an lp_swap; events and catalog attributes in one
 * SQLite file (WAL, synchronous=FULL; events are group-committed by a writer thread, each request
 * answered only after the COMMIT that holds its events, so a kill loses no acknowledged event);
 * the catalog also in memory under a read-write lock. A request assembles the user's history
 * from the model's training history plus their stored events and folds it in (so events count
 * at once); a user with neither gets popularity. The result (lp_mf_user: vector, ranking,
 * explanation rows) is cached per user and model generation (rec_ucache.c) until the user's
 * next event or the next model.
 * Items the model does not know (posted to /v1/items) get same-category neighbours by
 * popularity until a retrain gives them factors. One request runs on one thread.
 *
 * Monitoring (GET /v1/monitor, lepton serve's shape), in memory since the process started:
 *   - live: the latest REC_MON_CAP served lists (their first REC_MON_K items); an event posted
 *     for a listed item by the same user within hit_window_s after the list was served marks
 *     the list a hit. "labelled" is the number of lists, "accuracy" the hit rate;
 *   - drift: the scores of the first REC_MON_REF_K items of personalised lists (popularity
 *     fallbacks have another scale and are only counted) against a reference computed from the
 *     served model itself when it is first used (lp_mf files carry no monitoring section): the
 *     top-REC_MON_REF_K scores of up to REC_MON_REF_USERS training users taken with a fixed
 *     stride, asked as the service asks for a known user. A new model (retrain, reload) starts
 *     a new reference and window.
 */
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>

#include "rec.h"

#define REC_K_MAX 1000
#define REC_BATCH_MAX 1000
#define REC_BECAUSE 3
#define REC_REFRESH_MAX 16 /* users the events' writer rebuilds after one batch, at most */
#define REC_MAX_FUTURE_S 300.0 /* an event dated later than this after now is refused */
#define REC_WARM_MAX 4096  /* cached users rebuilt after a periodic retrain, at most */
#define REC_MON_CAP 8192       /* served lists remembered for the hit rate */
#define REC_MON_K 50           /* items of a list remembered */
#define REC_MON_REF_K 10       /* items per list in the score reference and sketch */
#define REC_MON_REF_USERS 256  /* training users sampled for the score reference */
#define REC_PSI_THRESHOLD 0.2

/* ---- service state ------------------------------------------------------------------------*/

struct rec_service {
    char *model_path, *db_path;
    lp_mf_event_opts ev;
    lp_swap *swap;
    sqlite3 *db;
    sqlite3_stmt *ins_event, *upsert_item, *all_events;
    /* a second, read-only connection for a user's events (rd_mu): WAL lets it read while the
     * events writer holds db (db_mu) through a COMMIT's fsync */
    sqlite3 *rdb;
    sqlite3_stmt *sel_events;
    pthread_mutex_t db_mu, rd_mu, retrain_mu;
    pthread_rwlock_t cat_mu;
    rec_catalog cat;
    lp_server *srv;
    rec_ucache *ucache; /* prepared users (rec_ucache.c) */
    atomic_ullong refreshed; /* prepared users rebuilt off the request path (refresh_users) */
    atomic_bool closing;     /* rec_service_free started: refresh_users stops early */
    /* POST /v1/events's writer (group commit, see there), its queue under wq_mu */
    pthread_t writer;
    bool writer_started, wq_stop;
    pthread_mutex_t wq_mu;
    pthread_cond_t wq_cv, wq_done_cv;
    struct rec_job *wq_head, *wq_tail;
    /* --retrain-every: the periodic retrainer thread, stopped through rt_stop under rt_mu */
    double retrain_every_s;
    pthread_t retrainer;
    bool retrainer_started, rt_stop;
    pthread_mutex_t rt_mu;
    pthread_cond_t rt_cv;
    double hit_window_s;
    /* monitoring (see the file comment), under mon_mu */
    pthread_mutex_t mon_mu;
    struct rec_served *served; /* ring of REC_MON_CAP lists, slot seq % REC_MON_CAP */
    uint64_t served_seq;       /* lists served so far */
    size_t served_hits;        /* hits among the lists in the ring */
    uint64_t popular_lists;    /* lists answered by popularity (not in the score sketch) */
    uint64_t mon_gen;          /* swap generation the reference belongs to */
    bool mon_bound;
    lp_drift *mon_ref;
    lp_drift_sketch *mon_sk;
    char mon_reason[160];
};

typedef struct rec_served {
    uint64_t user;             /* hash of the user id */
    double t;                  /* wall time served */
    uint64_t items[REC_MON_K]; /* hashes of the item ids */
    uint8_t n;
    bool hit;
} rec_served;

rec_service_opts rec_service_opts_default(void)
{
    rec_service_opts o = {.db_path = "recommend.db", .port = 8083, .user_cache_mb = 128};
    o.ev = lp_mf_event_opts_default();
    return o;
}

/* What the swap holds: the model, and the last stored event its history already holds (a
 * retrained model was fitted on the events up to there; a model file holds none of them), so
 * that no stored event is counted twice by a fold-in or by the next retrain. */
typedef struct rec_model {
    lp_mf *mf;
    int64_t through; /* events.id; 0 = none */
} rec_model;

static void destroy_model(void *obj, void *user)
{
    rec_model *rm = obj;
    if (rm) lp_mf_free(rm->mf);
    free(rm);
}

/* m wrapped for the swap (through: as in rec_model); on failure m is freed and NULL returned. */
static rec_model *model_wrap(lp_mf *m, int64_t through)
{
    rec_model *rm = lp_calloc(1, sizeof *rm);
    if (!rm) {
        lp_mf_free(m);
        return NULL;
    }
    rm->mf = m;
    rm->through = through;
    return rm;
}

static const lp_mf *model_of(lp_swap_ref *ref)
{
    return ((const rec_model *)lp_swap_ref_object(ref))->mf;
}

static int64_t through_of(lp_swap_ref *ref)
{
    return ((const rec_model *)lp_swap_ref_object(ref))->through;
}

/* The decay half-life (seconds) the model's training weights were read with, or 0 when they
 * were not decayed (no time column, no half-life, or a file that records no source). */
static double model_half_life(const lp_mf *m)
{
    const lp_mf_source *src = lp_mf_model_source(m);
    return src && src->time_col && src->ev.half_life_s > 0 ? src->ev.half_life_s : 0;
}

static const char *const SCHEMA =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, user TEXT NOT NULL,"
    " item TEXT NOT NULL, type TEXT NOT NULL, weight REAL NOT NULL, ts REAL NOT NULL);"
    "CREATE INDEX IF NOT EXISTS events_user ON events(user);"
    "CREATE TABLE IF NOT EXISTS items(item TEXT PRIMARY KEY, category TEXT,"
    " in_stock INTEGER NOT NULL DEFAULT 1);"
    "PRAGMA user_version=1;";

static lp_status db_err(rec_service *s, const char *what, lp_err *err)
{
    return lp_err_set(err, LP_EDB, "%s: %s: %s", s->db_path, what, sqlite3_errmsg(s->db));
}

static lp_status db_open(rec_service *s, lp_err *err)
{
    if (sqlite3_open_v2(s->db_path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK)
        return db_err(s, "cannot open", err);
    sqlite3_busy_timeout(s->db, 10000);
    int version = 0;
    sqlite3_stmt *v;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &v, NULL) == SQLITE_OK) {
        if (sqlite3_step(v) == SQLITE_ROW) version = sqlite3_column_int(v, 0);
        sqlite3_finalize(v);
    }
    if (version > 1)
        return lp_err_set(err, LP_EVERSION, "%s: schema version %d is newer than 1", s->db_path,
                          version);
    if (sqlite3_exec(s->db, SCHEMA, NULL, NULL, NULL) != SQLITE_OK)
        return db_err(s, "cannot create the schema", err);
    if (sqlite3_prepare_v2(s->db, "INSERT INTO events(user, item, type, weight, ts) "
                           "VALUES(?, ?, ?, ?, ?)", -1, &s->ins_event, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "INSERT INTO items(item, category, in_stock) "
                           "VALUES(?1, ?2, coalesce(?3, 1)) ON CONFLICT(item) DO UPDATE SET "
                           "category = coalesce(excluded.category, category), "
                           "in_stock = coalesce(?3, in_stock)", -1, &s->upsert_item,
                           NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "SELECT user, item, weight, ts FROM events "
                           "WHERE id > ?1 AND id <= ?2 ORDER BY id", -1,
                           &s->all_events, NULL) != SQLITE_OK)
        return db_err(s, "cannot prepare statements", err);
    if (sqlite3_open_v2(s->db_path, &s->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        (sqlite3_busy_timeout(s->rdb, 10000),
         sqlite3_prepare_v2(s->rdb,
                            "SELECT item, weight, ts FROM events WHERE user = ? AND id > ?", -1,
                            &s->sel_events, NULL)) != SQLITE_OK)
        return lp_err_set(err, LP_EIO, "%s: cannot open for reading: %s", s->db_path,
                          s->rdb ? sqlite3_errmsg(s->rdb) : "out of memory");
    /* the catalog */
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "SELECT item, category, in_stock FROM items", -1, &q, NULL) !=
        SQLITE_OK)
        return db_err(s, "cannot read the catalog", err);
    lp_status st = LP_OK;
    while (!st && sqlite3_step(q) == SQLITE_ROW)
        st = rec_cat_put(&s->cat, (const char *)sqlite3_column_text(q, 0),
                     (const char *)sqlite3_column_text(q, 1), sqlite3_column_int(q, 2) != 0, err);
    sqlite3_finalize(q);
    return st;
}

static lp_status reload_model(void *user, lp_err *err)
{
    rec_service *s = user;
    lp_mf *m;
    lp_status st = lp_mf_load(s->model_path, &m, err);
    if (st) return st;
    rec_model *rm = model_wrap(m, 0);
    if (!rm) return lp_err_set(err, LP_ENOMEM, "reload: out of memory");
    if ((st = lp_swap_set(s->swap, rm, err))) destroy_model(rm, NULL);
    return st;
}

/* ---- request helpers ----------------------------------------------------------------------*/

/* A query/field id: 1..LP_MF_ID_MAX bytes of UTF-8 without control characters. */
static lp_status check_id(const char *v, const char *name, lp_res *res)
{
    if (!v || !*v) return lp_http_error(res, LP_EINVAL, "parameter '%s': missing (required)", name);
    size_t n = strlen(v);
    if (n > LP_MF_ID_MAX)
        return lp_http_error(res, LP_EINVAL, "parameter '%s': %zu bytes, at most %d", name, n,
                             LP_MF_ID_MAX);
    if (!lp_utf8_valid(v, n, NULL))
        return lp_http_error(res, LP_EINVAL, "parameter '%s': not valid UTF-8", name);
    long at = rec_id_control_at(v);
    if (at >= 0)
        return lp_http_error(res, LP_EINVAL, "parameter '%s': control character at byte %ld",
                             name, at);
    return LP_OK;
}

/* The same rule for an id in a JSON body (field name; where: "events[3]: " or ""). */
static lp_status check_field_id(const char *v, const char *field, const char *where, lp_err *err)
{
    long at = rec_id_control_at(v);
    if (at < 0)
        return LP_OK;
    return lp_err_set(err, LP_EINVAL, "%sfield '%s': control character at byte %ld", where, field,
                      at);
}

static lp_status parse_k(const lp_req *req, size_t *k, lp_res *res)
{
    const char *v = lp_req_query(req, "k");
    *k = 10;
    if (!v) return LP_OK;
    int64_t x;
    if (!lp_parse_int(v, strlen(v), &x) || x < 1 || x > REC_K_MAX)
        return lp_http_error(res, LP_EINVAL, "parameter 'k': '%.32s' is not an integer in 1..%d",
                             v, REC_K_MAX);
    *k = (size_t)x;
    return LP_OK;
}

typedef struct pair {
    int32_t item;
    float w;
    double ts; /* a stored event's time (seconds); unused for training history */
} pair;

static int pair_cmp(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    return (x->item > y->item) - (x->item < y->item);
}

/* Time decay of a user's merged history p (len; the first nh from the model's training history,
 * the rest stored events) when the model was trained with one (half-life hl > 0): as training
 * decayed every weight to the data's latest time, everything is decayed to the latest of the
 * model's reference time and this user's events, the history by the time that passed since
 * the reference, each event by its own age. Depends only on the data, not on the clock, so a
 * prepared user stays valid until their next event. A model without a recorded reference (an
 * older file) keeps its history weights and decays the events among themselves. */
static void decay_history(const lp_mf *m, double hl, pair *p, size_t nh, size_t len)
{
    double tref = lp_mf_model_source(m)->time_ref, ref = tref > 0 ? tref : -INFINITY;
    for (size_t t = nh; t < len; t++) ref = fmax(ref, p[t].ts);
    if (!isfinite(ref)) return;
    float hf = tref > 0 ? (float)lp_mf_decay(ref, tref, hl) : 1.0f;
    for (size_t t = 0; t < len; t++) /* kept > 0, as fold-in requires */
        p[t].w = fmaxf(p[t].w * (t < nh ? hf : (float)lp_mf_decay(ref, p[t].ts, hl)), FLT_MIN);
}

/* The user's history against model m: training history plus the stored events after `through`
 * (the ones m's history does not hold) on items m knows, decayed as m's training data was
 * (decay_history), repeated items summed. *items / *w are malloc'd (caller frees). */
static lp_status user_history(rec_service *s, const lp_mf *m, int64_t through, const char *user,
                              long u, int32_t **items, float **w, size_t *n, size_t *n_events,
                              lp_err *err)
{
    *items = NULL;
    *w = NULL;
    *n = *n_events = 0;
    const int32_t *hi = NULL;
    const float *hw = NULL;
    size_t nh = u >= 0 ? lp_mf_user_history(m, (size_t)u, &hi, &hw) : 0, cap = nh + 16, len = 0;
    pair *p = lp_mallocarray(cap, sizeof *p);
    if (!p) return lp_err_set(err, LP_ENOMEM, "history: out of memory");
    for (size_t t = 0; t < nh; t++) p[len++] = (pair){hi[t], hw[t], 0};
    lp_status st = LP_OK;
    pthread_mutex_lock(&s->rd_mu);
    sqlite3_reset(s->sel_events);
    sqlite3_bind_text(s->sel_events, 1, user, -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(s->sel_events, 2, through);
    int rc;
    while ((rc = sqlite3_step(s->sel_events)) == SQLITE_ROW) {
        long i = lp_mf_item_index(m, (const char *)sqlite3_column_text(s->sel_events, 0));
        double wt = sqlite3_column_double(s->sel_events, 1);
        if (i < 0 || !(wt > 0) || !isfinite(wt)) continue;
        if (len == cap) {
            pair *np = lp_reallocarray(p, cap * 2, sizeof *np);
            if (!np) {
                st = lp_err_set(err, LP_ENOMEM, "history: out of memory");
                break;
            }
            p = np;
            cap *= 2;
        }
        p[len++] = (pair){(int32_t)i, (float)wt, sqlite3_column_double(s->sel_events, 2)};
        (*n_events)++;
    }
    if (!st && rc != SQLITE_DONE && rc != SQLITE_ROW)
        st = lp_err_set(err, LP_EIO, "%s: reading events: %s", s->db_path,
                        sqlite3_errmsg(s->rdb));
    sqlite3_reset(s->sel_events);
    pthread_mutex_unlock(&s->rd_mu);
    if (st) {
        free(p);
        return st;
    }
    double hl = model_half_life(m);
    if (hl > 0 && *n_events) decay_history(m, hl, p, nh, len);
    qsort(p, len, sizeof *p, pair_cmp);
    size_t out = 0;
    for (size_t t = 0; t < len; t++) {
        if (out && p[out - 1].item == p[t].item) p[out - 1].w += p[t].w;
        else p[out++] = p[t];
    }
    *items = lp_mallocarray(out + 1, sizeof **items);
    *w = lp_mallocarray(out + 1, sizeof **w);
    if (!*items || !*w) {
        free(p), free(*items), free(*w);
        *items = NULL;
        *w = NULL;
        return lp_err_set(err, LP_ENOMEM, "history: out of memory");
    }
    for (size_t t = 0; t < out; t++) (*items)[t] = p[t].item, (*w)[t] = p[t].w;
    *n = out;
    free(p);
    return LP_OK;
}

/* Allowed mask over m's items from the catalog (in stock, and of `category` when given), or
 * NULL when nothing is filtered. Caller frees. Takes the catalog read lock. */
static uint8_t *allowed_mask(rec_service *s, const lp_mf *m, const char *category, bool *oom)
{
    *oom = false;
    pthread_rwlock_rdlock(&s->cat_mu);
    uint8_t *mask = NULL;
    if (category || s->cat.out_of_stock) {
        size_t ni = lp_mf_n_items(m);
        mask = lp_mallocarray(ni ? ni : 1, 1);
        if (!mask) {
            *oom = true;
        } else {
            for (size_t i = 0; i < ni; i++) {
                const rec_item *it = rec_cat_find(&s->cat, lp_mf_item_id(m, i));
                bool ok = !it || it->in_stock;
                if (category) ok = ok && it && it->category && strcmp(it->category, category) == 0;
                mask[i] = ok;
            }
        }
    }
    pthread_rwlock_unlock(&s->cat_mu);
    return mask;
}

/* The answer {"<key>": id, "strategy": ..., "items": [{"item", "score", "because"}, ...]} of
 * /v1/recommend and /v1/similar, written straight into one buffer (lp_json_write_*: the text
 * cJSON would print, without its per-member allocations); sent as the response. */
static lp_status answer_items(lp_res *res, const char *key, const char *id, const char *strategy,
                              const lp_mf *m, const lp_mf_rec *r, size_t n)
{
    lp_buf b;
    lp_buf_init(&b);
    lp_buf_put(&b, "{\"", 2);
    lp_buf_put(&b, key, strlen(key));
    lp_buf_put(&b, "\":", 2);
    lp_json_write_str(&b, id);
    lp_buf_put(&b, ",\"strategy\":", 12);
    lp_json_write_str(&b, strategy);
    lp_buf_put(&b, ",\"items\":[", 10);
    for (size_t t = 0; t < n; t++) {
        lp_buf_put(&b, t ? ",{\"item\":" : "{\"item\":", t ? 9 : 8);
        lp_json_write_str(&b, lp_mf_item_id(m, (size_t)r[t].item));
        lp_buf_put(&b, ",\"score\":", 9);
        lp_json_write_num(&b, isfinite(r[t].score) ? r[t].score : 0.0, 9); /* a float */
        lp_buf_put(&b, ",\"because\":[", 12);
        for (size_t j = 0; j < r[t].n_because; j++) {
            if (j) lp_buf_u8(&b, ',');
            lp_json_write_str(&b, lp_mf_item_id(m, (size_t)r[t].because[j]));
        }
        lp_buf_put(&b, "]}", 2);
    }
    lp_buf_put(&b, "]}", 2);
    lp_status st = lp_buf_status(&b, NULL) ? lp_http_error(res, LP_ENOMEM, "out of memory")
                                           : lp_res_bytes(res, 200, "application/json", b.data,
                                                          b.len);
    lp_buf_free(&b);
    return st;
}

/* ---- monitoring ---------------------------------------------------------------------------*/

/* The score reference of model m (see the file comment) into s->mon_ref; on failure the reason
 * is kept and drift stays empty. Under mon_mu. */
static void mon_bind(rec_service *s, const lp_mf *m, uint64_t gen)
{
    lp_drift_sketch_free(s->mon_sk);
    lp_drift_free(s->mon_ref);
    s->mon_sk = NULL;
    s->mon_ref = NULL;
    s->mon_bound = true;
    s->mon_gen = gen;
    s->mon_reason[0] = '\0';
    size_t nu = lp_mf_n_users(m);
    size_t stride = nu > REC_MON_REF_USERS ? nu / REC_MON_REF_USERS : 1;
    double *v = lp_mallocarray(REC_MON_REF_USERS * REC_MON_REF_K + 1, sizeof *v);
    lp_mf_rec recs[REC_MON_REF_K];
    size_t nv = 0;
    lp_err err = {0};
    lp_status st = v ? LP_OK : lp_err_set(&err, LP_ENOMEM, "out of memory");
    for (size_t u = 0; !st && u < nu && nv + REC_MON_REF_K <= REC_MON_REF_USERS * REC_MON_REF_K;
         u += stride) {
        const int32_t *hi = NULL;
        const float *hw = NULL;
        size_t nh = lp_mf_user_history(m, u, &hi, &hw), got = 0;
        if (nh == 0)
            continue;
        lp_mf_query q = {.user_vec = lp_mf_user_factors(m, u), .history = hi, .history_w = hw,
                         .n_history = nh, .exclude_history = true, .k = REC_MON_REF_K};
        st = lp_mf_recommend(m, &q, recs, &got, &err);
        for (size_t t = 0; !st && t < got; t++)
            v[nv++] = recs[t].score;
    }
    lp_frame *empty = st ? NULL : lp_frame_new();
    if (!st && !empty)
        st = lp_err_set(&err, LP_ENOMEM, "out of memory");
    if (!st && nv == 0)
        st = lp_err_set(&err, LP_EINVAL, "the model has no training user to score");
    if (!st)
        st = lp_drift_fit(empty, &s->mon_ref, &err);
    if (!st)
        st = lp_drift_add_numeric(s->mon_ref, "_score", v, nv, &err);
    if (!st && !(s->mon_sk = lp_drift_sketch_new(s->mon_ref)))
        st = lp_err_set(&err, LP_ENOMEM, "out of memory");
    if (st) {
        lp_drift_free(s->mon_ref);
        s->mon_ref = NULL;
        snprintf(s->mon_reason, sizeof s->mon_reason, "no score reference: %.120s",
                 lp_err_text(&err));
    }
    lp_frame_free(empty);
    free(v);
}

/* Remember a served list (and count its scores when personal). */
static void mon_served(rec_service *s, const lp_mf *m, uint64_t gen, const char *uid,
                       const lp_mf_rec *recs, size_t got, bool personal)
{
    pthread_mutex_lock(&s->mon_mu);
    if (!s->mon_bound || s->mon_gen != gen)
        mon_bind(s, m, gen);
    rec_served *e = &s->served[s->served_seq % REC_MON_CAP];
    if (s->served_seq >= REC_MON_CAP && e->hit)
        s->served_hits--;
    s->served_seq++;
    e->user = rec_hash(uid);
    e->t = lp_time_wall();
    e->hit = false;
    e->n = (uint8_t)(got < REC_MON_K ? got : REC_MON_K);
    for (size_t t = 0; t < e->n; t++)
        e->items[t] = rec_hash(lp_mf_item_id(m, (size_t)recs[t].item));
    if (!personal)
        s->popular_lists++;
    for (size_t t = 0; personal && s->mon_sk && t < got && t < REC_MON_REF_K; t++)
        lp_drift_sketch_add_num(s->mon_sk, 0, recs[t].score);
    pthread_mutex_unlock(&s->mon_mu);
}

/* Mark the lists that an event (user, item) received at `now` turns into hits: lists served
 * to that user within the hit window that contain the item. */
static void mon_event(rec_service *s, const char *user, const char *item, double now)
{
    uint64_t hu = rec_hash(user), hi = rec_hash(item);
    pthread_mutex_lock(&s->mon_mu);
    size_t n = s->served_seq < REC_MON_CAP ? (size_t)s->served_seq : REC_MON_CAP;
    for (size_t back = 1; back <= n; back++) {
        rec_served *e = &s->served[(s->served_seq - back) % REC_MON_CAP];
        if (now - e->t > s->hit_window_s)
            break; /* the ring is in time order: older lists are out of the window too */
        if (e->hit || e->user != hu)
            continue;
        for (size_t t = 0; t < e->n; t++)
            if (e->items[t] == hi) {
                e->hit = true;
                s->served_hits++;
                break;
            }
    }
    pthread_mutex_unlock(&s->mon_mu);
}

static cJSON *num_or_null(double v)
{
    return isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
}

static lp_status h_monitor(const lp_req *req, lp_res *res, void *user)
{
    (void)req;
    rec_service *s = user;
    lp_swap_ref *ref = lp_swap_acquire(s->swap);
    const lp_mf *m = model_of(ref);
    uint64_t gen = lp_swap_generation(s->swap);
    cJSON *o = cJSON_CreateObject();
    char version[64];
    snprintf(version, sizeof version, "%s-generation-%llu", lp_mf_kind_name(lp_mf_model_kind(m)),
             (unsigned long long)gen);
    cJSON_AddStringToObject(o, "model_version", version);
    cJSON_AddNumberToObject(o, "psi_threshold", REC_PSI_THRESHOLD);
    cJSON_AddArrayToObject(o, "drift");
    pthread_mutex_lock(&s->mon_mu);
    if (!s->mon_bound || s->mon_gen != gen)
        mon_bind(s, m, gen);
    if (s->mon_sk) {
        lp_drift_stat st;
        lp_drift_compare(s->mon_sk, REC_PSI_THRESHOLD, &st);
        cJSON *d = cJSON_AddObjectToObject(o, "score_drift");
        cJSON_AddStringToObject(d, "feature", st.name);
        cJSON_AddNumberToObject(d, "n", (double)st.n);
        cJSON_AddItemToObject(d, "psi", num_or_null(st.psi));
        cJSON_AddItemToObject(d, "ks", num_or_null(st.ks));
        cJSON_AddBoolToObject(d, "drifted", st.drifted);
    } else {
        cJSON_AddStringToObject(o, "reason", s->mon_reason);
    }
    size_t n = s->served_seq < REC_MON_CAP ? (size_t)s->served_seq : REC_MON_CAP;
    cJSON *live = cJSON_AddObjectToObject(o, "live");
    cJSON_AddNumberToObject(live, "labelled", (double)n);
    cJSON_AddItemToObject(live, "accuracy",
                          num_or_null(n ? (double)s->served_hits / (double)n : NAN));
    cJSON_AddNullToObject(live, "auroc");
    cJSON_AddNullToObject(live, "rmse");
    cJSON_AddNumberToObject(live, "hits", (double)s->served_hits);
    cJSON_AddNumberToObject(live, "hit_window_s", s->hit_window_s);
    cJSON_AddStringToObject(live, "accuracy_of",
                            "hit rate: share of the latest served lists with an event for one "
                            "of their items by the same user within hit_window_s");
    cJSON_AddNumberToObject(o, "predictions_logged", (double)s->served_seq);
    cJSON_AddNumberToObject(o, "popularity_lists", (double)s->popular_lists);
    pthread_mutex_unlock(&s->mon_mu);
    rec_ucache_stats cs = rec_ucache_stats_get(s->ucache);
    cJSON *uc = cJSON_AddObjectToObject(o, "user_cache");
    cJSON_AddNumberToObject(uc, "entries", (double)cs.entries);
    cJSON_AddNumberToObject(uc, "bytes", (double)cs.bytes);
    cJSON_AddNumberToObject(uc, "budget_bytes", (double)cs.budget);
    cJSON_AddNumberToObject(uc, "hits", (double)cs.hits);
    cJSON_AddNumberToObject(uc, "misses", (double)cs.misses);
    cJSON_AddNumberToObject(uc, "refreshed", (double)atomic_load(&s->refreshed));
    lp_swap_release(ref);
    return lp_res_json(res, 200, o);
}

/* ---- GET /v1/recommend --------------------------------------------------------------------*/

/* Prepare uid against m from their history (training history plus stored events after
 * `through`): a known user without new events keeps their trained vector, anyone else is folded
 * in. *nh: the history's length (0: the user answers by popularity). */
static lp_status build_user(rec_service *s, const lp_mf *m, int64_t through, const char *uid,
                            lp_mf_user **out, size_t *nh, lp_err *err)
{
    int32_t *hi = NULL;
    float *hw = NULL;
    size_t n_ev = 0;
    long u = lp_mf_user_index(m, uid);
    lp_status st = user_history(s, m, through, uid, u, &hi, &hw, nh, &n_ev, err);
    if (!st) {
        const float *vec = u >= 0 && n_ev == 0 ? lp_mf_user_factors(m, (size_t)u) : NULL;
        st = lp_mf_user_new(m, vec, hi, hw, *nh, out, err);
    }
    free(hi), free(hw);
    return st;
}

static lp_status h_recommend(const lp_req *req, lp_res *res, void *user)
{
    rec_service *s = user;
    const char *uid = lp_req_query(req, "user"), *cat = lp_req_query(req, "category");
    const char *excl = lp_req_query(req, "exclude");
    size_t k;
    lp_status st;
    if ((st = check_id(uid, "user", res)) || (st = parse_k(req, &k, res))) return st;
    if (cat && (st = check_id(cat, "category", res))) return st;
    if (excl && strlen(excl) > 16 * 1024)
        return lp_http_error(res, LP_ETOOBIG,
                             "parameter 'exclude': %zu bytes, longer than 16 KiB (about 2,000 ids)",
                             strlen(excl));
    lp_swap_ref *ref = lp_swap_acquire(s->swap);
    const lp_mf *m = model_of(ref);
    int64_t through = through_of(ref);
    lp_err err = {0};
    int32_t *ex = NULL;
    uint8_t *mask = NULL;
    lp_mf_rec *recs = NULL;
    size_t nh = 0, n_ex = 0, got = 0;
    bool oom = false;
    /* the user's prepared state: cached (also rebuilt there by the events' writer, see
     * refresh_users), or built here (build_user). Users without a history answer by popularity
     * and are not cached. */
    uint64_t gen = lp_swap_ref_generation(ref), token;
    rec_uentry *held = NULL;
    lp_mf_user *own = NULL; /* a prepared user that is not cached */
    const lp_mf_user *pu = rec_ucache_get(s->ucache, uid, gen, &token, &held);
    if (!pu) {
        lp_mf_user *np = NULL;
        if ((st = build_user(s, m, through, uid, &np, &nh, &err))) goto fail;
        if (nh == 0) {
            pu = own = np;
        } else if (!(pu = rec_ucache_put(s->ucache, uid, gen, token, np, &held))) {
            st = lp_err_set(&err, LP_ENOMEM, "recommend: out of memory");
            goto fail;
        }
    }
    const int32_t *ph;
    const float *pw;
    nh = lp_mf_user_prepared_history(pu, &ph, &pw); /* the merged history's length */
    mask = allowed_mask(s, m, cat, &oom);
    recs = lp_mallocarray(k, sizeof *recs);
    if (oom || !recs) {
        st = lp_err_set(&err, LP_ENOMEM, "recommend: out of memory");
        goto fail;
    }
    if (excl) { /* comma-separated ids; unknown ones are ignored */
        size_t cap = 1;
        for (const char *c = excl; *c; c++) cap += *c == ',';
        ex = lp_mallocarray(cap, sizeof *ex);
        char *copy = lp_strdup(excl);
        if (!ex || !copy) {
            free(copy);
            st = lp_err_set(&err, LP_ENOMEM, "recommend: out of memory");
            goto fail;
        }
        for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            long i = lp_mf_item_index(m, tok);
            if (i >= 0) ex[n_ex++] = (int32_t)i;
        }
        free(copy);
    }
    lp_mf_query q = {.user = pu, .exclude_history = true, .exclude = ex, .n_exclude = n_ex,
                     .allowed = mask, .k = k, .n_because = REC_BECAUSE};
    if ((st = lp_mf_recommend(m, &q, recs, &got, &err))) goto fail;
    bool personal = nh > 0 && lp_mf_model_kind(m) != LP_MF_KIND_POPULAR;
    mon_served(s, m, gen, uid, recs, got, personal);
    st = answer_items(res, "user", uid,
                      personal ? lp_mf_kind_name(lp_mf_model_kind(m)) : "popularity", m, recs, got);
    goto done;
fail:
    st = lp_http_error_from(res, &err);
done:
    rec_ucache_release(s->ucache, held);
    lp_mf_user_free(own);
    free(mask), free(recs), free(ex);
    lp_swap_release(ref);
    return st;
}

/* ---- GET /v1/similar ----------------------------------------------------------------------*/

static int pop_cmp(const void *a, const void *b)
{
    const lp_mf_rec *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return (x->item > y->item) - (x->item < y->item);
}

static lp_status h_similar(const lp_req *req, lp_res *res, void *user)
{
    rec_service *s = user;
    const char *iid = lp_req_query(req, "item"), *cat = lp_req_query(req, "category");
    size_t k;
    lp_status st;
    if ((st = check_id(iid, "item", res)) || (st = parse_k(req, &k, res))) return st;
    if (cat && (st = check_id(cat, "category", res))) return st;
    lp_swap_ref *ref = lp_swap_acquire(s->swap);
    const lp_mf *m = model_of(ref);
    long i = lp_mf_item_index(m, iid);
    bool oom = false;
    uint8_t *mask = NULL;
    lp_mf_rec *recs = NULL;
    size_t got = 0;
    lp_err err = {0};
    const char *strategy = lp_mf_kind_name(lp_mf_model_kind(m));
    if (i >= 0) {
        mask = allowed_mask(s, m, cat, &oom);
        recs = lp_mallocarray(k, sizeof *recs);
        if (oom || !recs) st = lp_err_set(&err, LP_ENOMEM, "similar: out of memory");
        else st = lp_mf_similar(m, (size_t)i, k, mask, recs, &got, &err);
    } else {
        /* a catalog item the model has not seen: same-category items by popularity */
        char *category = NULL;
        bool known = false;
        pthread_rwlock_rdlock(&s->cat_mu);
        const rec_item *it = rec_cat_find(&s->cat, iid);
        if (it) {
            known = true;
            category = lp_strdup(it->category);
        }
        pthread_rwlock_unlock(&s->cat_mu);
        if (!known) {
            lp_swap_release(ref);
            return lp_http_error(res, LP_ENOTFOUND, "item '%.64s' is not in the model or the "
                                 "catalog", iid);
        }
        strategy = "attributes";
        const char *want = cat ? cat : category;
        mask = allowed_mask(s, m, want ? want : NULL, &oom);
        size_t ni = lp_mf_n_items(m);
        recs = lp_mallocarray(ni ? ni : 1, sizeof *recs);
        if (oom || !recs) {
            st = lp_err_set(&err, LP_ENOMEM, "similar: out of memory");
        } else if (want) {
            for (size_t t = 0; t < ni; t++)
                if (!mask || mask[t])
                    recs[got++] = (lp_mf_rec){.item = (int32_t)t,
                                              .score = lp_mf_item_popularity(m, t)};
            qsort(recs, got, sizeof *recs, pop_cmp);
            if (got > k) got = k;
        }
        free(category);
    }
    if (st) {
        free(mask), free(recs);
        lp_swap_release(ref);
        return lp_http_error_from(res, &err);
    }
    st = answer_items(res, "item", iid, strategy, m, recs, got);
    free(mask), free(recs);
    lp_swap_release(ref);
    return st;
}

/* ---- POST /v1/events ----------------------------------------------------------------------*/

static const lp_field_spec event_fields[] = {
    {.name = "user", .type = LP_FIELD_TYPE_STRING, .required = true, .max_len = LP_MF_ID_MAX},
    {.name = "item", .type = LP_FIELD_TYPE_STRING, .required = true, .max_len = LP_MF_ID_MAX},
    {.name = "type", .type = LP_FIELD_TYPE_STRING, .max_len = 32},
    {.name = "weight", .type = LP_FIELD_TYPE_NUMBER, .ranged = true, .min = 0, .max = 1e6},
    {.name = "timestamp", .type = LP_FIELD_TYPE_NUMBER, .ranged = true, .min = 0, .max = 1e11},
    {.name = NULL},
};

typedef struct rec_event {
    const char *user, *item, *type;
    double weight, ts;
} rec_event;

/* The events of a body (one object, or {"events": [...]}) as an array pointing into the JSON. */
static lp_status parse_events(rec_service *s, const cJSON *body, rec_event **out, size_t *n,
                              lp_err *err)
{
    *out = NULL;
    *n = 0;
    if (!cJSON_IsObject(body)) return lp_err_set(err, LP_EINVAL, "body: expected a JSON object");
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(body, "events");
    bool batch = arr != NULL;
    if (batch) {
        if (cJSON_GetArraySize(body) != 1)
            return lp_err_set(err, LP_EINVAL, "body: a batch has only the member 'events'");
        if (!cJSON_IsArray(arr)) return lp_err_set(err, LP_EINVAL, "field 'events': expected an array");
    }
    size_t cnt = batch ? (size_t)cJSON_GetArraySize(arr) : 1;
    if (cnt == 0) return lp_err_set(err, LP_EINVAL, "field 'events': empty");
    if (cnt > REC_BATCH_MAX)
        return lp_err_set(err, LP_ETOOBIG, "field 'events': %zu events, at most %d", cnt,
                          REC_BATCH_MAX);
    rec_event *ev = lp_calloc(cnt, sizeof *ev);
    if (!ev) return lp_err_set(err, LP_ENOMEM, "events: out of memory");
    /* the event-type weights the model was trained with, else the service's */
    lp_swap_ref *ref = lp_swap_acquire(s->swap);
    const lp_mf_source *src = lp_mf_model_source(model_of(ref));
    lp_mf_event_opts types = src ? src->ev : s->ev;
    lp_swap_release(ref);
    double now = lp_time_wall();
    size_t t = 0;
    const cJSON *e = batch ? arr->child : body;
    lp_status st = LP_OK;
    for (; e && t < cnt; e = batch ? e->next : NULL, t++) {
        char where[32] = "";
        if (batch) snprintf(where, sizeof where, "events[%zu]: ", t);
        if ((st = lp_fields_check(e, event_fields, false, err))) {
            if (batch)
                lp_err_prefix(err, "events[%zu]", t);
            else
                lp_err_prefix(err, "event");
            break;
        }
        rec_event *r = &ev[t];
        r->user = cJSON_GetObjectItemCaseSensitive(e, "user")->valuestring;
        r->item = cJSON_GetObjectItemCaseSensitive(e, "item")->valuestring;
        if ((st = check_field_id(r->user, "user", batch ? where : "", err)) ||
            (st = check_field_id(r->item, "item", batch ? where : "", err)))
            break;
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(e, "type");
        const cJSON *w = cJSON_GetObjectItemCaseSensitive(e, "weight");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(e, "timestamp");
        r->type = cJSON_IsString(ty) ? ty->valuestring : "view";
        float tw = 1; /* no type given: a view's weight, or 1 where views are not weighted */
        if ((st = lp_mf_event_type_weight(&types, r->type, &tw, err)) && cJSON_IsString(ty)) {
            lp_err_prefix(err, "%sfield 'type'", where);
            break;
        }
        st = LP_OK;
        r->weight = cJSON_IsNumber(w) ? w->valuedouble : tw;
        r->ts = cJSON_IsNumber(ts) ? ts->valuedouble : now;
        /* a time ahead of the clock would become the retrain's "now": every other event would
         * look old and decay away (and past 5138 the times would be read as milliseconds) */
        if (r->ts > now + REC_MAX_FUTURE_S) {
            st = lp_err_set(err, LP_EINVAL, "%sfield 'timestamp': %.0f is %.0f s in the future "
                            "(at most %.0f s of clock skew is accepted)", where, r->ts,
                            r->ts - now, REC_MAX_FUTURE_S);
            break;
        }
        if (!(r->weight > 0)) {
            st = lp_err_set(err, LP_EINVAL, "%sfield 'weight': must be > 0", where);
            break;
        }
        lp_mf_data *probe = lp_mf_data_new(); /* the same id rules as training data */
        st = probe ? lp_mf_data_add(probe, r->user, r->item, 1, err)
                   : lp_err_set(err, LP_ENOMEM, "events: out of memory");
        lp_mf_data_free(probe);
        if (st) {
            lp_err_prefix(err, "%s", batch ? where : "event");
            break;
        }
    }
    if (st) {
        free(ev);
        return st;
    }
    *out = ev;
    *n = cnt;
    return LP_OK;
}

/* ---- POST /v1/events: group commit -------------------------------------------------------
 * A writer thread commits the queued requests' events together: one transaction (one fsync
 * under synchronous=FULL) for everything queued while the previous one was being written, a
 * savepoint per request so that one request's failure fails only that request. After the COMMIT
 * it drops the users' prepared states, counts the events for the monitor and answers each
 * request. The handler checks and copies the events, queues them and defers its answer
 * (lp_req_defer), so its pool thread serves other connections during the fsync (which takes
 * tens of milliseconds on some disks); where the layer cannot defer, the handler waits for its
 * batch. An event is acknowledged only after its COMMIT, as before. */
typedef struct rec_job {
    struct rec_job *next;
    rec_event *ev; /* n events, their strings in the same block */
    size_t n;
    lp_deferred *d; /* the deferred answer, or NULL: the handler waits for done */
    bool done;
    lp_status st;
    lp_err err;
} rec_job;

/* One block: the job, its events, their strings. */
static rec_job *job_new(const rec_event *ev, size_t n)
{
    size_t bytes = sizeof(rec_job) + n * sizeof(rec_event);
    for (size_t t = 0; t < n; t++)
        bytes += strlen(ev[t].user) + strlen(ev[t].item) + strlen(ev[t].type) + 3;
    rec_job *j = lp_calloc(1, bytes);
    if (!j) return NULL;
    j->ev = (rec_event *)(j + 1);
    j->n = n;
    char *p = (char *)(j->ev + n);
    for (size_t t = 0; t < n; t++) {
        const char *src[3] = {ev[t].user, ev[t].item, ev[t].type};
        const char **dst[3] = {&j->ev[t].user, &j->ev[t].item, &j->ev[t].type};
        for (int f = 0; f < 3; f++) {
            size_t len = strlen(src[f]) + 1;
            memcpy(p, src[f], len);
            *dst[f] = p;
            p += len;
        }
        j->ev[t].weight = ev[t].weight;
        j->ev[t].ts = ev[t].ts;
    }
    return j;
}

/* The request's answer from its job's outcome. */
static lp_status job_answer(const rec_job *j, lp_res *res)
{
    if (j->st) {
        lp_err e = j->err;
        return lp_http_error_from(res, &e);
    }
    cJSON *o = cJSON_CreateObject();
    if (o) cJSON_AddNumberToObject(o, "accepted", (double)j->n);
    return o ? lp_res_json(res, 200, o) : LP_ENOMEM;
}

/* Insert one job's events under its own savepoint (db_mu held, a transaction open). */
static void job_insert(rec_service *s, rec_job *j)
{
    if (sqlite3_exec(s->db, "SAVEPOINT job", NULL, NULL, NULL) != SQLITE_OK) {
        j->st = db_err(s, "savepoint", &j->err);
        return;
    }
    for (size_t t = 0; t < j->n && !j->st; t++) {
        sqlite3_stmt *q = s->ins_event;
        sqlite3_reset(q);
        sqlite3_bind_text(q, 1, j->ev[t].user, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 2, j->ev[t].item, -1, SQLITE_STATIC);
        sqlite3_bind_text(q, 3, j->ev[t].type, -1, SQLITE_STATIC);
        sqlite3_bind_double(q, 4, j->ev[t].weight);
        sqlite3_bind_double(q, 5, j->ev[t].ts);
        if (sqlite3_step(q) != SQLITE_DONE) j->st = db_err(s, "insert event", &j->err);
        sqlite3_reset(q);
    }
    if (j->st) sqlite3_exec(s->db, "ROLLBACK TO job", NULL, NULL, NULL);
    sqlite3_exec(s->db, "RELEASE job", NULL, NULL, NULL);
}

/* Commit a batch (a list of jobs); every job gets its outcome. */
static void commit_batch(rec_service *s, rec_job *batch)
{
    pthread_mutex_lock(&s->db_mu);
    lp_status st = LP_OK;
    lp_err err = {0};
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        st = db_err(s, "begin", &err);
    } else {
        for (rec_job *j = batch; j; j = j->next) job_insert(s, j);
        if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
            st = db_err(s, "commit", &err);
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        }
    }
    pthread_mutex_unlock(&s->db_mu);
    for (rec_job *j = batch; j; j = j->next)
        if (st && !j->st) j->st = st, j->err = err;
}

/* Rebuild the prepared states of the users uids (distinct) against the current model where the
 * cache has none, off the request path: on the events' writer thread for users whose events
 * were just committed and whose previous state was cached (active users), after their POSTs are
 * answered, and on the retrainer thread for the users cached before a periodic retrain swapped
 * the model (whose states that swap made stale). Their next GET /v1/recommend then finds the
 * state instead of building it (the stored-events read, the fold-in solve and the explanations
 * of the first ranked places, 0.4-1 ms) in front of the requests queued behind it. The entry
 * is the one a request would build (build_user), and it is only cached when no event for the
 * user came in meanwhile (the token); a GET that comes first builds it itself, as before. */
static void refresh_users(rec_service *s, char **uids, size_t n)
{
    lp_swap_ref *ref = lp_swap_acquire(s->swap);
    const lp_mf *m = model_of(ref);
    uint64_t gen = lp_swap_ref_generation(ref), token;
    for (size_t i = 0; i < n && !atomic_load(&s->closing); i++) {
        if (!rec_ucache_missing(s->ucache, uids[i], gen, &token)) continue;
        lp_mf_user *np = NULL;
        size_t nh = 0;
        lp_err err = {0};
        if (build_user(s, m, through_of(ref), uids[i], &np, &nh, &err) || nh == 0) {
            lp_mf_user_free(np); /* the request path reports any error */
            continue;
        }
        rec_uentry *held = NULL;
        if (rec_ucache_put(s->ucache, uids[i], gen, token, np, &held))
            atomic_fetch_add(&s->refreshed, 1);
        rec_ucache_release(s->ucache, held);
    }
    lp_swap_release(ref);
}

static void *writer_main(void *arg)
{
    rec_service *s = arg;
    char *fresh[REC_REFRESH_MAX]; /* users to refresh after a batch */
    pthread_mutex_lock(&s->wq_mu);
    for (;;) {
        while (!s->wq_head && !s->wq_stop) pthread_cond_wait(&s->wq_cv, &s->wq_mu);
        rec_job *batch = s->wq_head;
        if (!batch) break; /* stopping, and nothing left */
        s->wq_head = s->wq_tail = NULL;
        pthread_mutex_unlock(&s->wq_mu);
        commit_batch(s, batch);
        double now = lp_time_wall();
        size_t n_fresh = 0;
        for (rec_job *j = batch, *next; j; j = next) {
            next = j->next;
            for (size_t t = 0; !j->st && t < j->n; t++) {
                const char *u = j->ev[t].user;
                bool dup = false;
                for (size_t i = 0; i < n_fresh && !dup; i++) dup = strcmp(fresh[i], u) == 0;
                if (rec_ucache_invalidate(s->ucache, u) && !dup && n_fresh < REC_REFRESH_MAX &&
                    (fresh[n_fresh] = lp_strdup(u)))
                    n_fresh++;
                mon_event(s, j->ev[t].user, j->ev[t].item, now);
            }
            if (j->d) { /* the job is the writer's: answer and free it */
                lp_deferred *d = j->d;
                job_answer(j, lp_deferred_res(d));
                free(j);
                lp_deferred_finish(d);
            } else { /* the handler waits for it, and frees it */
                pthread_mutex_lock(&s->wq_mu);
                j->done = true;
                pthread_cond_broadcast(&s->wq_done_cv);
                pthread_mutex_unlock(&s->wq_mu);
            }
        }
        refresh_users(s, fresh, n_fresh);
        for (size_t i = 0; i < n_fresh; i++) free(fresh[i]);
        pthread_mutex_lock(&s->wq_mu);
    }
    pthread_mutex_unlock(&s->wq_mu);
    return NULL;
}

static lp_status h_events(const lp_req *req, lp_res *res, void *user)
{
    rec_service *s = user;
    rec_event *ev;
    size_t n;
    lp_err err = {0};
    if (parse_events(s, req->json, &ev, &n, &err)) return lp_http_error_from(res, &err);
    /* every item must be known to the model or the catalog */
    lp_swap_ref *ref = lp_swap_acquire(s->swap);
    const lp_mf *m = model_of(ref);
    pthread_rwlock_rdlock(&s->cat_mu);
    size_t bad = n;
    for (size_t t = 0; t < n && bad == n; t++)
        if (lp_mf_item_index(m, ev[t].item) < 0 && !rec_cat_find(&s->cat, ev[t].item)) bad = t;
    pthread_rwlock_unlock(&s->cat_mu);
    lp_swap_release(ref);
    if (bad < n) {
        lp_status st = lp_http_error(res, LP_ENOTFOUND, "events[%zu]: item '%.64s' is not in the "
                                     "model or the catalog (POST /v1/items first)", bad,
                                     ev[bad].item);
        free(ev);
        return st;
    }
    rec_job *j = job_new(ev, n);
    free(ev);
    if (!j) return lp_http_error(res, LP_ENOMEM, "events: out of memory");
    j->d = lp_req_defer(req);
    bool deferred = j->d != NULL; /* then the job is the writer's once queued */
    pthread_mutex_lock(&s->wq_mu);
    if (s->wq_tail) s->wq_tail->next = j;
    else s->wq_head = j;
    s->wq_tail = j;
    pthread_cond_signal(&s->wq_cv);
    if (deferred) {
        pthread_mutex_unlock(&s->wq_mu);
        return LP_OK;
    }
    while (!j->done) pthread_cond_wait(&s->wq_done_cv, &s->wq_mu);
    pthread_mutex_unlock(&s->wq_mu);
    lp_status st = job_answer(j, res);
    free(j);
    return st;
}

/* ---- POST /v1/items -----------------------------------------------------------------------*/

/* Store n catalog rows (category NULL, in_stock -1: keep what is stored; a new item is in
 * stock) in one transaction, then put them in the in-memory catalog. */
static lp_status upsert_items(rec_service *s, const char *const *ids, const char *const *cats,
                              const int *in_stock, size_t n, lp_err *err)
{
    lp_status st = LP_OK;
    pthread_mutex_lock(&s->db_mu);
    if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        st = db_err(s, "begin", err);
    } else {
        for (size_t t = 0; t < n && !st; t++) {
            sqlite3_stmt *q = s->upsert_item;
            sqlite3_reset(q);
            sqlite3_bind_text(q, 1, ids[t], -1, SQLITE_TRANSIENT);
            if (cats[t]) sqlite3_bind_text(q, 2, cats[t], -1, SQLITE_TRANSIENT);
            else sqlite3_bind_null(q, 2);
            if (in_stock[t] >= 0) sqlite3_bind_int(q, 3, in_stock[t]);
            else sqlite3_bind_null(q, 3);
            if (sqlite3_step(q) != SQLITE_DONE) st = db_err(s, "upsert item", err);
            sqlite3_reset(q);
        }
        if (!st && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            st = db_err(s, "commit", err);
        if (st) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    }
    pthread_mutex_unlock(&s->db_mu);
    if (st) return st;
    pthread_rwlock_wrlock(&s->cat_mu);
    for (size_t t = 0; t < n && !st; t++)
        st = rec_cat_put(&s->cat, ids[t], cats[t], in_stock[t], err);
    pthread_rwlock_unlock(&s->cat_mu);
    return st;
}

/* serve --items: the catalog file's rows (rec_cat_file_read) upserted as POST /v1/items
 * would: what a row does not say keeps what is stored, so the file, read on every start, does
 * not undo a POST /v1/items. */
static lp_status load_items_file(rec_service *s, const lp_mf *m, const char *path, lp_err *err)
{
    const lp_mf_source *src = lp_mf_model_source(m);
    rec_cat_file cf;
    lp_status st = rec_cat_file_read(path, src ? src->item_col : NULL, &cf, err);
    if (st) return lp_err_prefix(err, "--items");
    st = upsert_items(s, (const char *const *)cf.ids, (const char *const *)cf.cats, cf.stock, cf.n,
                      err);
    if (!st)
        lp_log_info("recommend: catalog %s: %zu items (id column %s, category column %s, "
                    "in_stock column %s)", path, cf.n, cf.id_col, cf.cat_col, cf.stock_col);
    if (!st && cf.skipped)
        lp_log_warn("--items %s: %zu rows skipped (an empty id, or one with a control character "
                    "or over %d bytes)", path, cf.skipped, LP_MF_ID_MAX);
    rec_cat_file_free(&cf);
    return st;
}

static const lp_field_spec item_fields[] = {
    {.name = "item", .type = LP_FIELD_TYPE_STRING, .required = true, .max_len = LP_MF_ID_MAX},
    {.name = "category", .type = LP_FIELD_TYPE_STRING, .max_len = LP_MF_ID_MAX},
    {.name = "in_stock", .type = LP_FIELD_TYPE_BOOL},
    {.name = NULL},
};

static lp_status h_items(const lp_req *req, lp_res *res, void *user)
{
    rec_service *s = user;
    const cJSON *body = req->json, *arr = NULL;
    if (!cJSON_IsObject(body)) return lp_http_error(res, LP_EINVAL, "body: expected a JSON object");
    arr = cJSON_GetObjectItemCaseSensitive(body, "items");
    bool batch = arr != NULL;
    if (batch && (!cJSON_IsArray(arr) || cJSON_GetArraySize(body) != 1))
        return lp_http_error(res, LP_EINVAL, "field 'items': expected the only member, an array");
    size_t n = batch ? (size_t)cJSON_GetArraySize(arr) : 1;
    if (n == 0 || n > REC_BATCH_MAX)
        return lp_http_error(res, LP_EINVAL, "field 'items': %zu items, expected 1..%d", n,
                             REC_BATCH_MAX);
    lp_err err = {0};
    size_t t = 0;
    for (const cJSON *e = batch ? arr->child : body; e; e = batch ? e->next : NULL, t++) {
        char where[32] = "";
        if (batch) snprintf(where, sizeof where, "items[%zu]: ", t);
        if (lp_fields_check(e, item_fields, false, &err)) {
            if (batch) lp_err_prefix(&err, "items[%zu]", t);
            return lp_http_error_from(res, &err);
        }
        const cJSON *cat = cJSON_GetObjectItemCaseSensitive(e, "category");
        if (check_field_id(cJSON_GetObjectItemCaseSensitive(e, "item")->valuestring, "item", where,
                           &err) ||
            (cJSON_IsString(cat) && check_field_id(cat->valuestring, "category", where, &err)))
            return lp_http_error_from(res, &err);
        lp_mf_data *probe = lp_mf_data_new();
        lp_status st = probe ? lp_mf_data_add(probe, "u",
                                              cJSON_GetObjectItemCaseSensitive(e, "item")->valuestring,
                                              1, &err)
                             : LP_ENOMEM;
        lp_mf_data_free(probe);
        if (st) return st == LP_ENOMEM ? st : lp_http_error_from(res, &err);
    }
    const char **ids = lp_mallocarray(n, sizeof *ids), **cats = lp_mallocarray(n, sizeof *cats);
    int *stock = lp_mallocarray(n, sizeof *stock);
    lp_status st = ids && cats && stock ? LP_OK : LP_ENOMEM;
    t = 0;
    for (const cJSON *e = batch ? arr->child : body; e && !st; e = batch ? e->next : NULL, t++) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "category");
        const cJSON *is = cJSON_GetObjectItemCaseSensitive(e, "in_stock");
        ids[t] = cJSON_GetObjectItemCaseSensitive(e, "item")->valuestring;
        cats[t] = cJSON_IsString(c) ? c->valuestring : NULL;
        stock[t] = cJSON_IsBool(is) ? cJSON_IsTrue(is) : 1;
    }
    if (!st) st = upsert_items(s, ids, cats, stock, n, &err);
    free(ids), free(cats), free(stock);
    if (st) return st == LP_ENOMEM ? st : lp_http_error_from(res, &err);
    cJSON *o = cJSON_CreateObject();
    if (o) cJSON_AddNumberToObject(o, "upserted", (double)n);
    return o ? lp_res_json(res, 200, o) : LP_ENOMEM;
}

/* ---- POST /v1/admin/retrain ---------------------------------------------------------------*/

/* The id and time of the latest stored event after `through` (*last = through, *t_max = -inf
 * when there is none). Called under db_mu. */
static lp_status new_events_range(rec_service *s, int64_t through, int64_t *last, double *t_max,
                                  lp_err *err)
{
    *last = through;
    *t_max = -INFINITY;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(s->db, "SELECT max(id), max(ts) FROM events WHERE id > ?", -1, &q,
                           NULL) != SQLITE_OK)
        return db_err(s, "cannot read the events", err);
    sqlite3_bind_int64(q, 1, through);
    if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL) {
        *last = sqlite3_column_int64(q, 0);
        *t_max = sqlite3_column_double(q, 1);
    }
    sqlite3_finalize(q);
    return LP_OK;
}

/* Retrain on the model's history plus the stored events it does not hold yet (rec_model), with
 * the model's options, and swap the new model in; with time decay, everything is decayed to the
 * latest of the model's reference time and the new events' times, as training on one file
 * holding both would. *n_ev: the events added; *gen: the new generation. With only_new, a model
 * that already holds every stored event is kept (*n_ev = 0, *gen unchanged, LP_OK). */
static lp_status retrain(rec_service *s, bool only_new, size_t *n_ev, uint64_t *gen, lp_err *err)
{
    pthread_mutex_lock(&s->retrain_mu);
    uint64_t t0 = lp_time_ns();
    lp_swap_ref *ref = lp_swap_acquire(s->swap);
    const lp_mf *m = model_of(ref);
    int64_t through = through_of(ref), last;
    const lp_mf_source *src = lp_mf_model_source(m);
    double hl = model_half_life(m), tref = src ? src->time_ref : 0, t_new, t_max;
    lp_mf_opts o = *lp_mf_model_opts(m);
    lp_mf_data *d = NULL;
    *n_ev = 0;
    *gen = lp_swap_generation(s->swap);
    pthread_mutex_lock(&s->db_mu); /* the writer commits under it */
    lp_status st = new_events_range(s, through, &last, &t_max, err);
    pthread_mutex_unlock(&s->db_mu);
    if (!st && only_new && last == through) {
        lp_swap_release(ref);
        pthread_mutex_unlock(&s->retrain_mu);
        return LP_OK;
    }
    t_new = tref > 0 ? fmax(tref, t_max) : t_max;
    if (!st) st = lp_mf_to_data(m, &d, err); /* ref held: the new model copies m's source */
    if (!st && hl > 0 && tref > 0) lp_mf_data_scale(d, (float)lp_mf_decay(t_new, tref, hl));
    pthread_mutex_lock(&s->db_mu);
    if (!st) { /* the events up to `last` only: later ones are the next model's */
        sqlite3_reset(s->all_events);
        sqlite3_bind_int64(s->all_events, 1, through);
        sqlite3_bind_int64(s->all_events, 2, last);
        int rc;
        while (!st && (rc = sqlite3_step(s->all_events)) == SQLITE_ROW) {
            double w = sqlite3_column_double(s->all_events, 2);
            if (!(w > 0) || !isfinite(w)) continue;
            if (hl > 0) w *= lp_mf_decay(t_new, sqlite3_column_double(s->all_events, 3), hl);
            st = lp_mf_data_add(d, (const char *)sqlite3_column_text(s->all_events, 0),
                                (const char *)sqlite3_column_text(s->all_events, 1),
                                fmaxf((float)w, FLT_MIN), err);
            (*n_ev)++;
        }
        sqlite3_reset(s->all_events);
    }
    pthread_mutex_unlock(&s->db_mu);
    lp_mf *nm = NULL;
    if (!st) st = lp_mf_fit(d, &o, &nm, err);
    if (!st && src) {
        lp_mf_source ns = *src;
        if (hl > 0 && isfinite(t_new)) ns.time_ref = t_new;
        if ((st = lp_mf_set_source(nm, &ns, err))) lp_mf_free(nm);
    }
    lp_swap_release(ref);
    lp_mf_data_free(d);
    rec_model *rm = NULL;
    if (!st && !(rm = model_wrap(nm, last)))
        st = lp_err_set(err, LP_ENOMEM, "retrain: out of memory");
    if (!st && (st = lp_swap_set(s->swap, rm, err))) destroy_model(rm, NULL);
    *gen = lp_swap_generation(s->swap);
    pthread_mutex_unlock(&s->retrain_mu);
    if (!st)
        lp_log_info("retrain: generation %llu from %zu stored events in %.2f s",
                    (unsigned long long)*gen, *n_ev, lp_time_since(t0));
    return st;
}

static lp_status h_retrain(const lp_req *req, lp_res *res, void *user)
{
    rec_service *s = user;
    uint64_t t0 = lp_time_ns(), gen;
    size_t n_ev;
    lp_err err = {0};
    if (retrain(s, false, &n_ev, &gen, &err)) return lp_http_error_from(res, &err);
    cJSON *j = cJSON_CreateObject();
    if (j) {
        cJSON_AddNumberToObject(j, "generation", (double)gen);
        cJSON_AddNumberToObject(j, "events", (double)n_ev);
        cJSON_AddNumberToObject(j, "seconds", lp_time_since(t0));
    }
    return j ? lp_res_json(res, 200, j) : LP_ENOMEM;
}

/* --retrain-every: every retrain_every_s seconds, a retrain when events were stored since the
 * current model (rec_model.through); a failure is logged and the model kept. */
static void *retrainer_main(void *arg)
{
    rec_service *s = arg;
    pthread_mutex_lock(&s->rt_mu);
    while (!s->rt_stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        double at = until.tv_sec + until.tv_nsec * 1e-9 + s->retrain_every_s;
        until.tv_sec = (time_t)at;
        until.tv_nsec = (long)((at - (double)until.tv_sec) * 1e9);
        while (!s->rt_stop && pthread_cond_timedwait(&s->rt_cv, &s->rt_mu, &until) == 0) {
        }
        if (s->rt_stop) break;
        pthread_mutex_unlock(&s->rt_mu);
        size_t n_ev;
        uint64_t gen0 = lp_swap_generation(s->swap), gen;
        lp_err err = {0};
        /* the users cached before the swap, rebuilt against the new model right after it */
        char **warm = lp_mallocarray(REC_WARM_MAX, sizeof *warm);
        size_t n_warm = warm ? rec_ucache_recent(s->ucache, warm, REC_WARM_MAX) : 0;
        if (retrain(s, true, &n_ev, &gen, &err))
            lp_log_warn("periodic retrain failed, the model is kept: %s", err.msg);
        else if (gen != gen0)
            refresh_users(s, warm, n_warm);
        for (size_t i = 0; i < n_warm; i++) free(warm[i]);
        free(warm);
        pthread_mutex_lock(&s->rt_mu);
    }
    pthread_mutex_unlock(&s->rt_mu);
    return NULL;
}

static const lp_route routes[] = {
    {.method = "GET", .path = "/v1/recommend", .handler = h_recommend},
    {.method = "GET", .path = "/v1/similar", .handler = h_similar},
    {.method = "POST", .path = "/v1/events", .handler = h_events, .json = true,
     .body_limit = 1 << 20},
    {.method = "POST", .path = "/v1/items", .handler = h_items, .json = true,
     .body_limit = 1 << 20},
    {.method = "POST", .path = "/v1/admin/retrain", .handler = h_retrain, .auth = true},
    {.method = "GET", .path = "/v1/monitor", .handler = h_monitor},
};

/* ---- lifecycle ----------------------------------------------------------------------------*/

lp_status rec_service_new(const rec_service_opts *o, rec_service **out, lp_err *err)
{
    *out = NULL;
    if (!o || !o->model_path) return lp_err_set(err, LP_EINVAL, "service: a model path is required");
    lp_status st = lp_mf_event_opts_check(&o->ev, err);
    if (st) return st;
    rec_service *s = lp_calloc(1, sizeof *s);
    if (!s) return lp_err_set(err, LP_ENOMEM, "service: out of memory");
    pthread_mutex_init(&s->db_mu, NULL);
    pthread_mutex_init(&s->rd_mu, NULL);
    pthread_mutex_init(&s->retrain_mu, NULL);
    pthread_rwlock_init(&s->cat_mu, NULL);
    pthread_mutex_init(&s->mon_mu, NULL);
    pthread_mutex_init(&s->wq_mu, NULL);
    pthread_cond_init(&s->wq_cv, NULL);
    pthread_cond_init(&s->wq_done_cv, NULL);
    pthread_mutex_init(&s->rt_mu, NULL);
    pthread_cond_init(&s->rt_cv, NULL);
    s->retrain_every_s = o->retrain_every_s > 0 ? o->retrain_every_s : 0;
    s->hit_window_s = o->hit_window_s > 0 ? o->hit_window_s : 1800;
    s->served = lp_calloc(REC_MON_CAP, sizeof *s->served);
    s->ucache = rec_ucache_new(o->user_cache_mb << 20);
    s->ev = o->ev;
    s->model_path = lp_strdup(o->model_path);
    s->db_path = lp_strdup(o->db_path ? o->db_path : "recommend.db");
    lp_mf *m = NULL;
    if (!s->model_path || !s->db_path || !s->served || !s->ucache)
        st = lp_err_set(err, LP_ENOMEM, "service: out of memory");
    if (!st) st = lp_mf_load(s->model_path, &m, err);
    rec_model *rm = st ? NULL : model_wrap(m, 0);
    if (!st && (!rm || !(s->swap = lp_swap_new(rm, destroy_model, NULL)))) {
        destroy_model(rm, NULL);
        st = lp_err_set(err, LP_ENOMEM, "service: out of memory");
    }
    if (!st) st = db_open(s, err);
    if (!st && o->items_path) st = load_items_file(s, m, o->items_path, err);
    if (!st) {
        if (pthread_create(&s->writer, NULL, writer_main, s) == 0) s->writer_started = true;
        else st = lp_err_set(err, LP_EIO, "service: cannot start the events writer thread");
    }
    if (!st && s->retrain_every_s > 0) {
        if (pthread_create(&s->retrainer, NULL, retrainer_main, s) == 0)
            s->retrainer_started = true;
        else st = lp_err_set(err, LP_EIO, "service: cannot start the retrain thread");
    }
    if (!st) {
        lp_server_opts so = lp_server_opts_default();
        so.host = o->host ? o->host : "127.0.0.1";
        so.port = o->port;
        so.threads = o->threads;
        so.name = "recommend";
        st = lp_server_new(routes, sizeof routes / sizeof *routes, s, &so, &s->srv, err);
    }
    if (!st && o->n_api_keys) st = lp_server_set_api_keys(s->srv, o->api_keys, o->n_api_keys, err);
    if (!st) lp_server_set_reload(s->srv, reload_model, s);
    if (st) {
        rec_service_free(s);
        return st;
    }
    *out = s;
    return LP_OK;
}

lp_status rec_service_start(rec_service *s, lp_err *err)
{
    lp_status st = lp_server_start(s->srv, err);
    if (!st) lp_server_set_ready(s->srv, true);
    return st;
}

unsigned rec_service_port(const rec_service *s)
{
    return lp_server_port(s->srv);
}

lp_server *rec_service_server(rec_service *s)
{
    return s->srv;
}

void rec_service_free(rec_service *s)
{
    if (!s) return;
    atomic_store(&s->closing, true);
    if (s->retrainer_started) { /* first: a retrain in progress still reads the database */
        pthread_mutex_lock(&s->rt_mu);
        s->rt_stop = true;
        pthread_cond_signal(&s->rt_cv);
        pthread_mutex_unlock(&s->rt_mu);
        pthread_join(s->retrainer, NULL);
    }
    lp_server_free(s->srv); /* waits for the deferred answers, which the writer still sends */
    if (s->writer_started) {
        pthread_mutex_lock(&s->wq_mu);
        s->wq_stop = true;
        pthread_cond_signal(&s->wq_cv);
        pthread_mutex_unlock(&s->wq_mu);
        pthread_join(s->writer, NULL);
    }
    sqlite3_finalize(s->ins_event);
    sqlite3_finalize(s->sel_events);
    sqlite3_finalize(s->upsert_item);
    sqlite3_finalize(s->all_events);
    if (s->db) sqlite3_close(s->db);
    if (s->rdb) sqlite3_close(s->rdb);
    lp_swap_free(s->swap);
    rec_cat_clear(&s->cat);
    pthread_mutex_destroy(&s->db_mu);
    pthread_mutex_destroy(&s->rd_mu);
    pthread_mutex_destroy(&s->retrain_mu);
    pthread_rwlock_destroy(&s->cat_mu);
    pthread_mutex_destroy(&s->mon_mu);
    pthread_mutex_destroy(&s->wq_mu);
    pthread_cond_destroy(&s->wq_cv);
    pthread_cond_destroy(&s->wq_done_cv);
    pthread_mutex_destroy(&s->rt_mu);
    pthread_cond_destroy(&s->rt_cv);
    lp_drift_sketch_free(s->mon_sk);
    lp_drift_free(s->mon_ref);
    rec_ucache_free(s->ucache);
    free(s->served);
    free(s->model_path);
    free(s->db_path);
    free(s);
}
