/*
 * mf_data.c - interactions for the mf family: the string id map, the (user, item, weight)
 * store, its CSR views, reading interactions out of a frame (event-type weights, exponential
 * time decay) and the per-user hold-out split.
 *
 * Does not fit anything. Invariants: every stored weight is finite and > 0; indices in the
 * triples are valid for the id maps; ids are 1..LP_MF_ID_MAX bytes of valid UTF-8.
 */
#include "model/mf_internal.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- id map -------------------------------------------------------------------------------*/

static uint64_t hash_str(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

void mf_ids_init(mf_ids *m)
{
    memset(m, 0, sizeof *m);
}

void mf_ids_clear(mf_ids *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) free(m->names[i]);
    free(m->names);
    free(m->slots);
    mf_ids_init(m);
}

long mf_ids_find(const mf_ids *m, const char *s)
{
    if (!m->n_slots || !s) return -1;
    size_t mask = m->n_slots - 1;
    for (size_t p = hash_str(s) & mask;; p = (p + 1) & mask) {
        int32_t v = m->slots[p];
        if (v < 0) return -1;
        if (strcmp(m->names[v], s) == 0) return v;
    }
}

static lp_status ids_rehash(mf_ids *m, size_t n_slots, lp_err *err)
{
    int32_t *slots = lp_mallocarray(n_slots, sizeof *slots);
    if (!slots) return lp_err_set(err, LP_ENOMEM, "id map: out of memory");
    for (size_t i = 0; i < n_slots; i++) slots[i] = -1;
    for (size_t i = 0; i < m->n; i++) {
        size_t p = hash_str(m->names[i]) & (n_slots - 1);
        while (slots[p] >= 0) p = (p + 1) & (n_slots - 1);
        slots[p] = (int32_t)i;
    }
    free(m->slots);
    m->slots = slots;
    m->n_slots = n_slots;
    return LP_OK;
}

lp_status mf_ids_add(mf_ids *m, const char *s, int32_t *idx, bool *added, lp_err *err)
{
    long f = mf_ids_find(m, s);
    if (added) *added = f < 0;
    if (f >= 0) {
        *idx = (int32_t)f;
        return LP_OK;
    }
    if (m->n >= INT32_MAX - 1) return lp_err_set(err, LP_ETOOBIG, "id map: more than 2^31 ids");
    if ((m->n + 1) * 2 > m->n_slots) {
        lp_status st = ids_rehash(m, m->n_slots ? m->n_slots * 2 : 64, err);
        if (st) return st;
    }
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        char **nn = lp_reallocarray(m->names, cap, sizeof *nn);
        if (!nn) return lp_err_set(err, LP_ENOMEM, "id map: out of memory");
        m->names = nn;
        m->cap = cap;
    }
    char *copy = lp_strdup(s);
    if (!copy) return lp_err_set(err, LP_ENOMEM, "id map: out of memory");
    m->names[m->n] = copy;
    size_t p = hash_str(s) & (m->n_slots - 1);
    while (m->slots[p] >= 0) p = (p + 1) & (m->n_slots - 1);
    m->slots[p] = (int32_t)m->n;
    *idx = (int32_t)m->n++;
    return LP_OK;
}

/* ---- interactions -------------------------------------------------------------------------*/

lp_mf_data *lp_mf_data_new(void)
{
    lp_mf_data *d = lp_calloc(1, sizeof *d);
    if (!d) return NULL;
    mf_ids_init(&d->users);
    mf_ids_init(&d->items);
    return d;
}

void lp_mf_data_free(lp_mf_data *d)
{
    if (!d) return;
    mf_ids_clear(&d->users);
    mf_ids_clear(&d->items);
    free(d->t);
    free(d);
}

static lp_status check_id(const char *s, const char *field, lp_err *err)
{
    if (!s || !*s) return lp_err_set(err, LP_EINVAL, "%s: empty id", field);
    size_t n = strlen(s);
    if (n > LP_MF_ID_MAX)
        return lp_err_set(err, LP_EINVAL, "%s: id of %zu bytes is longer than %d", field, n,
                          LP_MF_ID_MAX);
    /* RFC 3629 UTF-8 (no overlongs, surrogates or values above U+10FFFF). */
    const uint8_t *p = (const uint8_t *)s, *e = p + n;
    while (p < e) {
        uint8_t c = *p;
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        if (!len || (size_t)(e - p) < len) goto bad;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
        for (size_t k = 1; k < len; k++) {
            if ((p[k] & 0xC0) != 0x80) goto bad;
            cp = (cp << 6) | (p[k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            goto bad;
        p += len;
    }
    return LP_OK;
bad:
    return lp_err_set(err, LP_EINVAL, "%s: invalid UTF-8 at byte %zu", field,
                      (size_t)(p - (const uint8_t *)s));
}

lp_status lp_mf_data_add(lp_mf_data *d, const char *user, const char *item, float weight,
                         lp_err *err)
{
    if (!d) return lp_err_set(err, LP_EINVAL, "interactions: NULL");
    lp_status st;
    if ((st = check_id(user, "user", err)) || (st = check_id(item, "item", err))) return st;
    if (!isfinite(weight) || weight <= 0)
        return lp_err_set(err, LP_EINVAL, "weight: %g is not a finite number > 0", weight);
    if (d->n_t == d->cap_t) {
        size_t cap = d->cap_t ? d->cap_t * 2 : 1024;
        mf_triple *t = lp_reallocarray(d->t, cap, sizeof *t);
        if (!t) return lp_err_set(err, LP_ENOMEM, "interactions: out of memory");
        d->t = t;
        d->cap_t = cap;
    }
    int32_t u, i;
    if ((st = mf_ids_add(&d->users, user, &u, NULL, err))) return st;
    if ((st = mf_ids_add(&d->items, item, &i, NULL, err))) return st;
    d->t[d->n_t++] = (mf_triple){u, i, weight};
    return LP_OK;
}

size_t lp_mf_data_n_users(const lp_mf_data *d)
{
    return d ? d->users.n : 0;
}

size_t lp_mf_data_n_items(const lp_mf_data *d)
{
    return d ? d->items.n : 0;
}

long lp_mf_data_user_index(const lp_mf_data *d, const char *id)
{
    return d ? mf_ids_find(&d->users, id) : -1;
}

long lp_mf_data_item_index(const lp_mf_data *d, const char *id)
{
    return d ? mf_ids_find(&d->items, id) : -1;
}

size_t lp_mf_data_n_pairs(const lp_mf_data *d)
{
    if (!d) return 0;
    mf_csr c;
    if (mf_data_csr(d, true, &c, NULL)) return 0;
    size_t n = c.nnz;
    mf_csr_free(&c);
    return n;
}

void lp_mf_data_scale(lp_mf_data *d, float factor)
{
    for (size_t k = 0; d && k < d->n_t; k++) d->t[k].w = fmaxf(d->t[k].w * factor, FLT_MIN);
}

/* ---- CSR ----------------------------------------------------------------------------------*/

void mf_csr_free(mf_csr *c)
{
    if (!c) return;
    free(c->ptr);
    free(c->col);
    free(c->w);
    memset(c, 0, sizeof *c);
}

/* Counting sort of (row, col, w) entries into CSR, then per-row sort by column and merging of
 * repeats. */
static lp_status csr_build(size_t n_rows, size_t n, const int32_t *row, const int32_t *col,
                           const float *w, mf_csr *out, lp_err *err)
{
    memset(out, 0, sizeof *out);
    int32_t *ptr = lp_calloc(n_rows + 1, sizeof *ptr);
    int32_t *c = lp_mallocarray(n ? n : 1, sizeof *c);
    float *v = lp_mallocarray(n ? n : 1, sizeof *v);
    size_t *fill = lp_calloc(n_rows + 1, sizeof *fill);
    if (!ptr || !c || !v || !fill || n > INT32_MAX) {
        free(ptr), free(c), free(v), free(fill);
        return lp_err_set(err, n > INT32_MAX ? LP_ETOOBIG : LP_ENOMEM,
                          "interactions: cannot index %zu entries", n);
    }
    for (size_t k = 0; k < n; k++) fill[row[k] + 1]++;
    for (size_t r = 0; r < n_rows; r++) fill[r + 1] += fill[r];
    for (size_t k = 0; k < n; k++) {
        size_t p = fill[row[k]]++;
        c[p] = col[k];
        v[p] = w[k];
    }
    /* rows now occupy [start, fill[r]); sort each by column (insertion sort is fine for short
     * rows; long rows use a simple shell sort) and merge repeats */
    size_t out_n = 0, start = 0;
    for (size_t r = 0; r < n_rows; r++) {
        size_t end = fill[r];
        size_t len = end - start;
        for (size_t gap = len / 2 > 8 ? len / 3 + 1 : 1;; gap = gap / 3 > 1 ? gap / 3 : 1) {
            for (size_t a = start + gap; a < end; a++) {
                int32_t ck = c[a];
                float vk = v[a];
                size_t b = a;
                while (b >= start + gap && c[b - gap] > ck) {
                    c[b] = c[b - gap];
                    v[b] = v[b - gap];
                    b -= gap;
                }
                c[b] = ck;
                v[b] = vk;
            }
            if (gap == 1) break;
        }
        ptr[r] = (int32_t)out_n;
        for (size_t a = start; a < end; a++) {
            if (out_n > (size_t)ptr[r] && c[out_n - 1] == c[a]) {
                v[out_n - 1] += v[a];
            } else {
                c[out_n] = c[a];
                v[out_n] = v[a];
                out_n++;
            }
        }
        start = end;
    }
    ptr[n_rows] = (int32_t)out_n;
    free(fill);
    out->n_rows = n_rows;
    out->nnz = out_n;
    out->ptr = ptr;
    out->col = c;
    out->w = v;
    return LP_OK;
}

lp_status mf_data_csr(const lp_mf_data *d, bool by_user, mf_csr *out, lp_err *err)
{
    size_t n = d->n_t;
    int32_t *r = lp_mallocarray(n ? n : 1, sizeof *r);
    int32_t *c = lp_mallocarray(n ? n : 1, sizeof *c);
    float *w = lp_mallocarray(n ? n : 1, sizeof *w);
    lp_status st = LP_OK;
    if (!r || !c || !w) {
        st = lp_err_set(err, LP_ENOMEM, "interactions: out of memory");
    } else {
        for (size_t k = 0; k < n; k++) {
            r[k] = by_user ? d->t[k].u : d->t[k].i;
            c[k] = by_user ? d->t[k].i : d->t[k].u;
            w[k] = d->t[k].w;
        }
        st = csr_build(by_user ? d->users.n : d->items.n, n, r, c, w, out, err);
    }
    free(r), free(c), free(w);
    return st;
}

lp_status mf_csr_transpose(const mf_csr *a, size_t n_cols, mf_csr *out, lp_err *err)
{
    size_t n = a->nnz;
    int32_t *r = lp_mallocarray(n ? n : 1, sizeof *r);
    if (!r) return lp_err_set(err, LP_ENOMEM, "interactions: out of memory");
    for (size_t row = 0; row < a->n_rows; row++)
        for (int32_t p = a->ptr[row]; p < a->ptr[row + 1]; p++) r[p] = (int32_t)row;
    lp_status st = csr_build(n_cols, n, a->col, r, a->w, out, err);
    free(r);
    return st;
}

/* ---- events -------------------------------------------------------------------------------*/

lp_mf_event_opts lp_mf_event_opts_default(void)
{
    lp_mf_event_opts o;
    memset(&o, 0, sizeof o);
    static const char *const names[3] = {"view", "cart", "purchase"};
    static const float weights[3] = {1, 3, 5};
    for (size_t t = 0; t < 3; t++) {
        strcpy(o.type_name[t], names[t]);
        o.type_weight[t] = weights[t];
    }
    o.n_types = 3;
    return o;
}

lp_status lp_mf_event_opts_check(const lp_mf_event_opts *o, lp_err *err)
{
    if (o->n_types < 1 || o->n_types > LP_MF_EVENT_TYPES_MAX)
        return lp_err_set(err, LP_EINVAL, "event opts.n_types: %zu is not in 1..%d", o->n_types,
                          LP_MF_EVENT_TYPES_MAX);
    for (size_t t = 0; t < o->n_types; t++) {
        const char *nm = o->type_name[t];
        size_t len = strnlen(nm, LP_MF_EVENT_NAME_MAX + 1);
        if (len == 0 || len > LP_MF_EVENT_NAME_MAX)
            return lp_err_set(err, LP_EINVAL, "event opts: type %zu has a name of %zu bytes, not "
                              "1..%d", t, len, LP_MF_EVENT_NAME_MAX);
        if (!isfinite(o->type_weight[t]) || o->type_weight[t] <= 0)
            return lp_err_set(err, LP_EINVAL, "event opts: the weight of type '%s' is %g, not a "
                              "finite number > 0", nm, o->type_weight[t]);
        for (size_t u = 0; u < t; u++)
            if (strcmp(o->type_name[u], nm) == 0)
                return lp_err_set(err, LP_EINVAL, "event opts: type '%s' is given twice", nm);
    }
    if (!isfinite(o->half_life_s) || o->half_life_s < 0)
        return lp_err_set(err, LP_EINVAL, "event opts.half_life_s: %g is not >= 0",
                          o->half_life_s);
    if (!isfinite(o->now))
        return lp_err_set(err, LP_EINVAL, "event opts.now: not finite");
    return LP_OK;
}

lp_status lp_mf_event_weights_parse(lp_mf_event_opts *o, const char *spec, lp_err *err)
{
    lp_mf_event_opts n = *o;
    n.n_types = 0;
    const char *p = spec ? spec : "";
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        size_t nl = eq ? (size_t)(eq - p) : 0;
        if (!eq || nl == 0 || nl > LP_MF_EVENT_NAME_MAX)
            return lp_err_set(err, LP_EINVAL, "event weights: '%.*s' is not TYPE=WEIGHT with a "
                              "type of 1..%d bytes", (int)(len < 64 ? len : 64), p,
                              LP_MF_EVENT_NAME_MAX);
        if (n.n_types == LP_MF_EVENT_TYPES_MAX)
            return lp_err_set(err, LP_EINVAL, "event weights: more than %d types",
                              LP_MF_EVENT_TYPES_MAX);
        double w;
        size_t wl = len - nl - 1;
        if (!lp_parse_double(eq + 1, wl, &w) || !isfinite(w) || w <= 0 || w > 1e30)
            return lp_err_set(err, LP_EINVAL, "event weights: the weight of '%.*s' ('%.*s') is "
                              "not a finite number > 0", (int)nl, p, (int)(wl < 32 ? wl : 32),
                              eq + 1);
        memcpy(n.type_name[n.n_types], p, nl);
        n.type_name[n.n_types][nl] = 0;
        n.type_weight[n.n_types++] = (float)w;
        p = end ? end + 1 : p + len;
    }
    lp_status st = lp_mf_event_opts_check(&n, err);
    if (st) return lp_err_prefix(err, "event weights '%.64s'", spec ? spec : "");
    *o = n;
    return LP_OK;
}

lp_status lp_mf_event_type_weight(const lp_mf_event_opts *o, const char *type, float *w,
                                  lp_err *err)
{
    for (size_t t = 0; type && t < o->n_types; t++)
        if (strcmp(type, o->type_name[t]) == 0) {
            *w = o->type_weight[t];
            return LP_OK;
        }
    char known[256] = "";
    size_t len = 0;
    for (size_t t = 0; t < o->n_types && len < sizeof known; t++)
        len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", t ? ", " : "",
                                o->type_name[t]);
    return lp_err_set(err, LP_EINVAL, "event type '%.64s' is not one of the weighted types (%s)",
                      type ? type : "(null)", known);
}

static lp_status col_opt(const lp_frame *f, const char *name, const char *what, lp_column **c,
                         lp_err *err)
{
    *c = NULL;
    if (!name) return LP_OK;
    size_t j;
    lp_status st = lp_frame_require(f, name, what, &j, err);
    if (st) return st;
    *c = lp_frame_col(f, j);
    return LP_OK;
}

/* The id text of cell r ("7" for the number 7); NULL when missing. */
static const char *cell_id(const lp_column *c, size_t r, char *buf, size_t cap)
{
    if (c->missing[r]) return NULL;
    return lp_column_cell_str(c, r, buf, cap);
}

lp_status lp_mf_data_from_frame(const lp_frame *f, const size_t *rows, size_t n_rows,
                                const char *user_col, const char *item_col,
                                const char *weight_col, const char *type_col,
                                const char *time_col, const lp_mf_event_opts *ev,
                                const char *what, lp_mf_data **out, size_t *skipped,
                                lp_err *err)
{
    *out = NULL;
    if (skipped) *skipped = 0;
    what = what ? what : "interactions";
    lp_mf_event_opts evd = lp_mf_event_opts_default();
    if (!ev) ev = &evd;
    lp_status st = lp_mf_event_opts_check(ev, err);
    if (st) return st;
    lp_column *cu, *ci, *cw, *ct, *ctime;
    if ((st = col_opt(f, user_col, what, &cu, err)) || (st = col_opt(f, item_col, what, &ci, err)) ||
        (st = col_opt(f, weight_col, what, &cw, err)) ||
        (st = col_opt(f, type_col, what, &ct, err)) ||
        (st = col_opt(f, time_col, what, &ctime, err)))
        return st;
    if (!cu || !ci) return lp_err_set(err, LP_EINVAL, "%s: user and item columns are required", what);
    if (cw && cw->type != LP_COL_TYPE_NUMERIC)
        return lp_err_set(err, LP_EINVAL, "%s: weight column '%s' is %s, not numeric", what,
                          cw->name, lp_col_kind_name(cw->kind));
    if (ctime && ctime->type != LP_COL_TYPE_NUMERIC)
        return lp_err_set(err, LP_EINVAL, "%s: time column '%s' is %s, not numeric or a date",
                          what, ctime->name, lp_col_kind_name(ctime->kind));
    size_t n = rows ? n_rows : lp_frame_nrows(f);
    double now = ev->now, tscale = 1; /* tscale: seconds per time unit */
    if (ctime && ev->half_life_s > 0) {
        double latest = -INFINITY;
        for (size_t k = 0; k < n; k++) {
            size_t r = rows ? rows[k] : k;
            if (r < lp_frame_nrows(f) && !ctime->missing[r] && ctime->num[r] > latest)
                latest = ctime->num[r];
        }
        if (latest > LP_MF_TIME_MS_ABOVE) { /* epoch seconds would be past the year 5000 */
            tscale = 1e-3;
            lp_log_info("%s: time column '%s' reaches %.0f, read as epoch milliseconds", what,
                        ctime->name, latest);
        }
        if (now == 0) now = latest * tscale;
    }
    lp_mf_data *d = lp_mf_data_new();
    if (!d) return lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
    char bu[64], bi[64], bt[64];
    size_t skip = 0;
    for (size_t k = 0; k < n && !st; k++) {
        size_t r = rows ? rows[k] : k;
        if (r >= lp_frame_nrows(f)) {
            st = lp_err_set(err, LP_EINVAL, "%s: row %zu out of range", what, r);
            break;
        }
        const char *u = cell_id(cu, r, bu, sizeof bu), *i = cell_id(ci, r, bi, sizeof bi);
        double w = 1;
        if (cw) {
            if (cw->missing[r]) {
                skip++;
                continue;
            }
            w = cw->num[r];
            if (!isfinite(w) || w < 0) {
                st = lp_err_set(err, LP_EINVAL, "%s row %zu: column '%s' is %g, not a weight >= 0",
                                what, r + 1, cw->name, w);
                break;
            }
        }
        if (ct) {
            const char *t = cell_id(ct, r, bt, sizeof bt);
            float tw;
            if (!t) {
                skip++;
                continue;
            }
            if ((st = lp_mf_event_type_weight(ev, t, &tw, err))) {
                lp_err_prefix(err, "%s row %zu: column '%s'", what, r + 1, ct->name);
                break;
            }
            w *= tw;
        }
        if (ctime && ev->half_life_s > 0) {
            if (ctime->missing[r]) {
                skip++;
                continue;
            }
            /* in double relative to the latest time; clamped so an old event keeps a weight */
            w *= lp_mf_decay(now, ctime->num[r] * tscale, ev->half_life_s);
        }
        if (!u || !i || !((float)w > 0) || !isfinite((float)w)) {
            skip++;
            continue;
        }
        if ((st = lp_mf_data_add(d, u, i, (float)w, err)))
            lp_err_prefix(err, "%s row %zu", what, r + 1);
    }
    if (st) {
        lp_mf_data_free(d);
        return st;
    }
    if (skipped) *skipped = skip;
    if (ctime && ev->half_life_s > 0 && isfinite(now)) d->time_ref = now;
    *out = d;
    return LP_OK;
}

double lp_mf_decay(double ref, double t, double half_life_s)
{
    return fmax(exp2(-(ref - t) / half_life_s), LP_MF_DECAY_MIN);
}

double lp_mf_data_time_ref(const lp_mf_data *d)
{
    return d ? d->time_ref : 0;
}

/* ---- per-user hold-out ------------------------------------------------------------------*/

typedef struct split_key {
    uint32_t user;
    double t;
    size_t row;
} split_key;

static int split_cmp(const void *a, const void *b)
{
    const split_key *x = a, *y = b;
    if (x->user != y->user) return x->user < y->user ? -1 : 1;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return x->row < y->row ? -1 : x->row > y->row;
}

lp_status lp_mf_split_last(const lp_frame *f, const char *user_col, const char *time_col,
                           size_t n_last, lp_split *out, lp_err *err)
{
    memset(out, 0, sizeof *out);
    lp_column *cu, *ct;
    lp_status st;
    if ((st = col_opt(f, user_col, "split", &cu, err)) ||
        (st = col_opt(f, time_col, "split", &ct, err)))
        return st;
    if (!cu) return lp_err_set(err, LP_EINVAL, "split: a user column is required");
    if (ct && ct->type != LP_COL_TYPE_NUMERIC)
        return lp_err_set(err, LP_EINVAL, "split: time column '%s' is not numeric", ct->name);
    if (n_last == 0) return lp_err_set(err, LP_EINVAL, "split: n_last must be >= 1");
    size_t n = lp_frame_nrows(f);
    split_key *keys = lp_mallocarray(n ? n : 1, sizeof *keys);
    mf_ids ids;
    mf_ids_init(&ids);
    out->train = lp_mallocarray(n ? n : 1, sizeof(size_t));
    out->test = lp_mallocarray(n ? n : 1, sizeof(size_t));
    if (!keys || !out->train || !out->test) {
        st = lp_err_set(err, LP_ENOMEM, "split: out of memory");
        goto done;
    }
    char buf[64];
    for (size_t r = 0; r < n; r++) {
        const char *u = cell_id(cu, r, buf, sizeof buf);
        int32_t idx = -1;
        if (u && (st = mf_ids_add(&ids, u, &idx, NULL, err))) goto done;
        keys[r].user = (uint32_t)idx; /* missing users sort last and stay in train */
        keys[r].t = ct && !ct->missing[r] ? ct->num[r] : -INFINITY;
        keys[r].row = r;
    }
    qsort(keys, n, sizeof *keys, split_cmp);
    for (size_t a = 0; a < n;) {
        size_t b = a;
        while (b < n && keys[b].user == keys[a].user) b++;
        size_t len = b - a;
        bool hold = keys[a].user != UINT32_MAX && len > n_last;
        for (size_t k = a; k < b; k++) {
            if (hold && k >= b - n_last) out->test[out->n_test++] = keys[k].row;
            else out->train[out->n_train++] = keys[k].row;
        }
        a = b;
    }
done:
    free(keys);
    mf_ids_clear(&ids);
    if (st) lp_split_free(out);
    return st;
}
