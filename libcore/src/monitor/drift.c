/*
 * drift.c - reference summaries of training data, lock-free live sketches, PSI and KS
 * (definitions in monitor.h).
 *
 * Numeric bins: with edges e_0 < ... < e_{m-1}, bin 0 holds v <= e_0, bin b holds
 * e_{b-1} < v <= e_b, bin m holds v > e_{m-1}; the missing bin comes last. Categorical bins:
 * the kept categories in order, then "other", then missing. Reference shares are counted, not
 * assumed (ties make percentile bins unequal).
 */
#include "lepton/monitor.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define DRIFT_MAGIC 0x4C504446u /* "FDPL" */
#define DRIFT_VERSION 1u
#define PSI_FLOOR 1e-4 /* share floor: an empty bin would otherwise make PSI infinite */
#define PSI_GROUPS 10

typedef struct feat {
    char *name;
    bool cat;
    size_t n_edges;
    double *edges; /* numeric */
    size_t n_cats;
    char **cats;   /* categorical */
    size_t nb;     /* bins excluding missing */
    double *ref;   /* (nb + 1) shares, missing last */
    uint64_t n_ref;
    size_t n_groups;
    size_t group_end[PSI_GROUPS]; /* numeric: exclusive end bin of each PSI group */
} feat;

struct lp_drift {
    feat *f;
    size_t n, cap;
};

struct lp_drift_sketch {
    const lp_drift *ref;
    _Atomic uint64_t **counts; /* per feature (nb + 1) */
    char *labels;              /* lp_drift_bins label storage */
    const char **label_ptrs;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void feat_free(feat *f)
{
    free(f->name);
    free(f->edges);
    for (size_t k = 0; k < f->n_cats; k++)
        free(f->cats[k]);
    free(f->cats);
    free(f->ref);
}

void lp_drift_free(lp_drift *d)
{
    if (!d)
        return;
    for (size_t j = 0; j < d->n; j++)
        feat_free(&d->f[j]);
    free(d->f);
    free(d);
}

static size_t num_bin(const feat *f, double v)
{
    if (isnan(v))
        return f->nb;
    /* first edge >= v */
    size_t lo = 0, hi = f->n_edges;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (f->edges[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static size_t cat_bin(const feat *f, const char *v)
{
    if (!v)
        return f->nb;
    for (size_t k = 0; k < f->n_cats; k++)
        if (strcmp(f->cats[k], v) == 0)
            return k;
    return f->n_cats; /* other */
}

/* Decile groups of the reference mass over the non-missing numeric bins. */
static void make_groups(feat *f)
{
    f->n_groups = 0;
    if (f->cat)
        return;
    double nonmiss = 1.0 - f->ref[f->nb], cum = 0;
    size_t g = 1;
    for (size_t b = 0; b < f->nb; b++) {
        cum += f->ref[b];
        if (b + 1 == f->nb || (nonmiss > 0 && cum >= nonmiss * (double)g / PSI_GROUPS - 1e-12)) {
            if (f->n_groups < PSI_GROUPS)
                f->group_end[f->n_groups++] = b + 1;
            else
                f->group_end[PSI_GROUPS - 1] = b + 1;
            while (g < PSI_GROUPS && nonmiss > 0 && cum >= nonmiss * (double)g / PSI_GROUPS - 1e-12)
                g++;
        }
    }
}

static lp_status push_feat(lp_drift *d, feat *nf, lp_err *err)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 16;
        feat *v = lp_reallocarray(d->f, cap, sizeof *v);
        if (!v) {
            feat_free(nf);
            return lp_err_set(err, LP_ENOMEM, "drift: out of memory");
        }
        d->f = v;
        d->cap = cap;
    }
    make_groups(nf);
    d->f[d->n++] = *nf;
    return LP_OK;
}

lp_status lp_drift_add_numeric(lp_drift *d, const char *name, const double *v, size_t n,
                               lp_err *err)
{
    feat f = {0};
    f.name = lp_strdup(name);
    double *s = lp_mallocarray(n, sizeof(double));
    f.edges = lp_mallocarray(LP_DRIFT_EDGES, sizeof(double));
    if (!f.name || !s || !f.edges) {
        free(s);
        feat_free(&f);
        return lp_err_set(err, LP_ENOMEM, "drift: out of memory for '%s'", name);
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!isnan(v[i]))
            s[m++] = v[i];
    qsort(s, m, sizeof(double), cmp_double);
    for (size_t q = 1; q <= LP_DRIFT_EDGES && m; q++) {
        double pos = (double)q / (LP_DRIFT_EDGES + 1) * (double)(m - 1);
        size_t lo = (size_t)floor(pos);
        size_t hi = lo + 1 < m ? lo + 1 : lo;
        double e = s[lo] + (s[hi] - s[lo]) * (pos - (double)lo);
        if (!f.n_edges || e > f.edges[f.n_edges - 1])
            f.edges[f.n_edges++] = e;
    }
    free(s);
    f.nb = f.n_edges + 1;
    f.ref = lp_calloc(f.nb + 1, sizeof(double));
    if (!f.ref) {
        feat_free(&f);
        return lp_err_set(err, LP_ENOMEM, "drift: out of memory for '%s'", name);
    }
    for (size_t i = 0; i < n; i++)
        f.ref[num_bin(&f, v[i])] += 1;
    for (size_t b = 0; b <= f.nb; b++)
        f.ref[b] = n ? f.ref[b] / (double)n : 0;
    f.n_ref = n;
    return push_feat(d, &f, err);
}

typedef struct cat_count {
    uint32_t code;
    size_t count;
    const char *s;
} cat_count;

static int cmp_cat(const void *a, const void *b)
{
    const cat_count *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->s, y->s);
}

static lp_status add_categorical(lp_drift *d, const lp_column *c, lp_err *err)
{
    feat f = {0};
    f.cat = true;
    f.name = lp_strdup(c->name);
    cat_count *cc = lp_calloc(c->n_dict, sizeof *cc);
    if (!f.name || !cc) {
        free(cc);
        feat_free(&f);
        return lp_err_set(err, LP_ENOMEM, "drift: out of memory for '%s'", c->name);
    }
    for (size_t k = 0; k < c->n_dict; k++) {
        cc[k].code = (uint32_t)k;
        cc[k].s = c->dict[k];
    }
    for (size_t i = 0; i < c->n; i++)
        if (!c->missing[i])
            cc[c->codes[i]].count++;
    qsort(cc, c->n_dict, sizeof *cc, cmp_cat);
    size_t keep = c->n_dict < LP_DRIFT_TOP_CATS ? c->n_dict : LP_DRIFT_TOP_CATS;
    f.cats = lp_calloc(keep, sizeof(char *));
    f.ref = lp_calloc(keep + 2, sizeof(double));
    if (!f.cats || !f.ref) {
        free(cc);
        feat_free(&f);
        return lp_err_set(err, LP_ENOMEM, "drift: out of memory for '%s'", c->name);
    }
    for (size_t k = 0; k < keep; k++) {
        if (!(f.cats[k] = lp_strdup(cc[k].s))) {
            free(cc);
            feat_free(&f);
            return lp_err_set(err, LP_ENOMEM, "drift: out of memory for '%s'", c->name);
        }
        f.n_cats = k + 1;
    }
    free(cc);
    f.nb = f.n_cats + 1;
    for (size_t i = 0; i < c->n; i++)
        f.ref[c->missing[i] ? f.nb : cat_bin(&f, c->dict[c->codes[i]])] += 1;
    for (size_t b = 0; b <= f.nb; b++)
        f.ref[b] = c->n ? f.ref[b] / (double)c->n : 0;
    f.n_ref = c->n;
    return push_feat(d, &f, err);
}

lp_status lp_drift_fit(const lp_frame *fr, lp_drift **out, lp_err *err)
{
    *out = NULL;
    lp_drift *d = calloc(1, sizeof *d);
    if (!d)
        return lp_err_set(err, LP_ENOMEM, "drift: out of memory");
    for (size_t j = 0; j < lp_frame_ncols(fr); j++) {
        const lp_column *c = lp_frame_col(fr, j);
        lp_status st = LP_OK;
        if (c->type == LP_COL_TYPE_NUMERIC)
            st = lp_drift_add_numeric(d, c->name, c->num, c->n, err);
        else if (c->type == LP_COL_TYPE_CATEGORICAL)
            st = add_categorical(d, c, err);
        if (st) {
            lp_drift_free(d);
            return st;
        }
    }
    *out = d;
    return LP_OK;
}

size_t lp_drift_nfeatures(const lp_drift *d) { return d->n; }
const char *lp_drift_feature_name(const lp_drift *d, size_t j) { return j < d->n ? d->f[j].name : NULL; }

long lp_drift_find(const lp_drift *d, const char *name)
{
    for (size_t j = 0; j < d->n; j++)
        if (strcmp(d->f[j].name, name) == 0)
            return (long)j;
    return -1;
}

lp_status lp_drift_save(const lp_drift *d, lp_buf *b, lp_err *err)
{
    lp_buf_u32(b, DRIFT_MAGIC);
    lp_buf_u32(b, DRIFT_VERSION);
    lp_buf_u64(b, d->n);
    for (size_t j = 0; j < d->n; j++) {
        const feat *f = &d->f[j];
        lp_buf_str(b, f->name);
        lp_buf_u8(b, f->cat);
        lp_buf_u64(b, f->n_ref);
        if (f->cat) {
            lp_buf_u64(b, f->n_cats);
            for (size_t k = 0; k < f->n_cats; k++)
                lp_buf_str(b, f->cats[k]);
        } else {
            lp_buf_u64(b, f->n_edges);
            for (size_t k = 0; k < f->n_edges; k++)
                lp_buf_f64(b, f->edges[k]);
        }
        for (size_t k = 0; k <= f->nb; k++)
            lp_buf_f64(b, f->ref[k]);
    }
    return lp_buf_status(b, err);
}

lp_status lp_drift_load(const void *data, size_t len, lp_drift **out, lp_err *err)
{
    *out = NULL;
    lp_reader r;
    lp_reader_init(&r, data, len, "drift reference");
    uint32_t magic = 0, ver = 0;
    uint64_t n = 0;
    lp_status st = lp_reader_u32(&r, &magic, err);
    if (!st)
        st = lp_reader_u32(&r, &ver, err);
    if (!st)
        st = lp_reader_u64(&r, &n, err);
    if (st)
        return st;
    if (magic != DRIFT_MAGIC)
        return lp_err_set(err, LP_EFORMAT, "drift reference: bad magic");
    if (ver != DRIFT_VERSION)
        return lp_err_set(err, LP_EVERSION, "drift reference: version %u, expected %u", ver,
                          DRIFT_VERSION);
    if (n > len / 8)
        return lp_err_set(err, LP_EFORMAT, "drift reference: %llu features in %zu bytes",
                          (unsigned long long)n, len);
    lp_drift *d = calloc(1, sizeof *d);
    if (!d)
        return lp_err_set(err, LP_ENOMEM, "drift: out of memory");
    for (uint64_t j = 0; j < n && !st; j++) {
        feat f = {0};
        uint8_t cat = 0;
        uint64_t m = 0;
        st = lp_reader_str(&r, &f.name, 4096, err);
        if (!st && !f.name)
            st = lp_err_set(err, LP_EFORMAT, "drift reference: feature %llu has no name",
                            (unsigned long long)j);
        if (!st)
            st = lp_reader_u8(&r, &cat, err);
        if (!st)
            st = lp_reader_u64(&r, &f.n_ref, err);
        if (!st)
            st = lp_reader_u64(&r, &m, err);
        f.cat = cat != 0;
        if (!st && m > (f.cat ? LP_DRIFT_TOP_CATS : LP_DRIFT_EDGES))
            st = lp_err_set(err, LP_EFORMAT, "drift reference: feature '%s' has %llu bins",
                            f.name, (unsigned long long)m);
        if (!st && f.cat) {
            f.cats = lp_calloc((size_t)m, sizeof(char *));
            if (!f.cats)
                st = lp_err_set(err, LP_ENOMEM, "drift: out of memory");
            for (uint64_t k = 0; k < m && !st; k++) {
                st = lp_reader_str(&r, &f.cats[k], 4096, err);
                if (!st && !f.cats[k])
                    st = lp_err_set(err, LP_EFORMAT, "drift reference: NULL category");
                f.n_cats = (size_t)k + 1;
            }
            f.nb = f.n_cats + 1;
        } else if (!st) {
            f.edges = lp_calloc((size_t)m, sizeof(double));
            if (!f.edges)
                st = lp_err_set(err, LP_ENOMEM, "drift: out of memory");
            for (uint64_t k = 0; k < m && !st; k++)
                st = lp_reader_f64(&r, &f.edges[k], err);
            f.n_edges = (size_t)m;
            for (size_t k = 1; k < f.n_edges && !st; k++)
                if (!(f.edges[k] > f.edges[k - 1]))
                    st = lp_err_set(err, LP_EFORMAT, "drift reference: edges not increasing");
            f.nb = f.n_edges + 1;
        }
        if (!st) {
            f.ref = lp_calloc(f.nb + 1, sizeof(double));
            if (!f.ref)
                st = lp_err_set(err, LP_ENOMEM, "drift: out of memory");
            for (size_t k = 0; k <= f.nb && !st; k++) {
                st = lp_reader_f64(&r, &f.ref[k], err);
                if (!st && !(f.ref[k] >= 0 && f.ref[k] <= 1))
                    st = lp_err_set(err, LP_EFORMAT, "drift reference: bad share");
            }
        }
        if (st)
            feat_free(&f);
        else
            st = push_feat(d, &f, err);
    }
    if (st) {
        lp_drift_free(d);
        return st;
    }
    *out = d;
    return LP_OK;
}

/* ---- sketches ------------------------------------------------------------------------------*/

lp_drift_sketch *lp_drift_sketch_new(const lp_drift *ref)
{
    lp_drift_sketch *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->ref = ref;
    s->counts = lp_calloc(ref->n, sizeof *s->counts);
    s->labels = malloc(32 * (LP_DRIFT_EDGES + 2) + 1);
    if (!s->counts || !s->labels) {
        lp_drift_sketch_free(s);
        return NULL;
    }
    for (size_t j = 0; j < ref->n; j++) {
        s->counts[j] = lp_calloc(ref->f[j].nb + 1, sizeof(_Atomic uint64_t));
        if (!s->counts[j]) {
            lp_drift_sketch_free(s);
            return NULL;
        }
    }
    return s;
}

void lp_drift_sketch_free(lp_drift_sketch *s)
{
    if (!s)
        return;
    if (s->counts)
        for (size_t j = 0; j < s->ref->n; j++)
            free((void *)s->counts[j]);
    free(s->counts);
    free(s->labels);
    free(s);
}

void lp_drift_sketch_add_num(lp_drift_sketch *s, size_t j, double v)
{
    if (j >= s->ref->n || s->ref->f[j].cat)
        return;
    atomic_fetch_add_explicit(&s->counts[j][num_bin(&s->ref->f[j], v)], 1, memory_order_relaxed);
}

void lp_drift_sketch_add_cat(lp_drift_sketch *s, size_t j, const char *v)
{
    if (j >= s->ref->n || !s->ref->f[j].cat)
        return;
    atomic_fetch_add_explicit(&s->counts[j][cat_bin(&s->ref->f[j], v)], 1, memory_order_relaxed);
}

void lp_drift_sketch_add_frame(lp_drift_sketch *s, const lp_frame *fr)
{
    for (size_t j = 0; j < s->ref->n; j++) {
        long k = lp_frame_find(fr, s->ref->f[j].name);
        if (k < 0)
            continue;
        const lp_column *c = lp_frame_col(fr, (size_t)k);
        if (s->ref->f[j].cat && c->type == LP_COL_TYPE_CATEGORICAL) {
            for (size_t i = 0; i < c->n; i++)
                lp_drift_sketch_add_cat(s, j, c->missing[i] ? NULL : c->dict[c->codes[i]]);
        } else if (s->ref->f[j].cat && c->type == LP_COL_TYPE_TEXT) {
            for (size_t i = 0; i < c->n; i++)
                lp_drift_sketch_add_cat(s, j, c->text[i]);
        } else if (!s->ref->f[j].cat && c->type == LP_COL_TYPE_NUMERIC) {
            for (size_t i = 0; i < c->n; i++)
                lp_drift_sketch_add_num(s, j, c->num[i]);
        }
    }
}

void lp_drift_sketch_reset(lp_drift_sketch *s)
{
    for (size_t j = 0; j < s->ref->n; j++)
        for (size_t b = 0; b <= s->ref->f[j].nb; b++)
            atomic_store_explicit(&s->counts[j][b], 0, memory_order_relaxed);
}

static double psi_term(double r, double c)
{
    r = r < PSI_FLOOR ? PSI_FLOOR : r;
    c = c < PSI_FLOOR ? PSI_FLOOR : c;
    return (c - r) * log(c / r);
}

void lp_drift_compare(const lp_drift_sketch *s, double psi_threshold, lp_drift_stat *out)
{
    for (size_t j = 0; j < s->ref->n; j++) {
        const feat *f = &s->ref->f[j];
        lp_drift_stat *o = &out[j];
        memset(o, 0, sizeof *o);
        o->name = f->name;
        o->categorical = f->cat;
        uint64_t n = 0;
        for (size_t b = 0; b <= f->nb; b++)
            n += atomic_load_explicit(&s->counts[j][b], memory_order_relaxed);
        o->n = n;
        o->missing_ref = f->ref[f->nb];
        if (!n)
            continue;
        double *cur = malloc((f->nb + 1) * sizeof(double));
        if (!cur)
            continue;
        for (size_t b = 0; b <= f->nb; b++)
            cur[b] = (double)atomic_load_explicit(&s->counts[j][b], memory_order_relaxed) /
                     (double)n;
        o->missing_cur = cur[f->nb];
        double psi = 0;
        if (f->cat) {
            for (size_t b = 0; b < f->nb; b++)
                psi += psi_term(f->ref[b], cur[b]);
        } else {
            size_t start = 0;
            for (size_t g = 0; g < f->n_groups; g++) {
                double rr = 0, cc = 0;
                for (size_t b = start; b < f->group_end[g]; b++) {
                    rr += f->ref[b];
                    cc += cur[b];
                }
                psi += psi_term(rr, cc);
                start = f->group_end[g];
            }
        }
        if (f->ref[f->nb] > 0 || cur[f->nb] > 0)
            psi += psi_term(f->ref[f->nb], cur[f->nb]);
        /* KS on the non-missing CDFs */
        double rm = 1 - f->ref[f->nb], cm = 1 - cur[f->nb], cr = 0, ccur = 0, ks = 0;
        if (rm > 0 && cm > 0)
            for (size_t b = 0; b < f->nb; b++) {
                cr += f->ref[b] / rm;
                ccur += cur[b] / cm;
                double dlt = fabs(cr - ccur);
                if (dlt > ks)
                    ks = dlt;
            }
        o->psi = psi;
        o->ks = ks;
        o->drifted = psi > psi_threshold && n >= LP_DRIFT_MIN_N;
        free(cur);
    }
}

void lp_drift_bins(const lp_drift_sketch *s, size_t j, double *ref, double *cur, size_t *nbins,
                   const char **labels)
{
    *nbins = 0;
    if (j >= s->ref->n)
        return;
    const feat *f = &s->ref->f[j];
    uint64_t n = 0;
    for (size_t b = 0; b <= f->nb; b++)
        n += atomic_load_explicit(&s->counts[j][b], memory_order_relaxed);
    char *p = s->labels;
    for (size_t b = 0; b <= f->nb; b++) {
        ref[b] = f->ref[b];
        cur[b] = n ? (double)atomic_load_explicit(&s->counts[j][b], memory_order_relaxed) /
                         (double)n
                   : 0;
        if (labels) {
            if (b == f->nb)
                snprintf(p, 32, "missing");
            else if (f->cat)
                snprintf(p, 32, "%.31s", b < f->n_cats ? f->cats[b] : "other");
            else if (b < f->n_edges)
                snprintf(p, 32, "<= %.6g", f->edges[b]);
            else
                snprintf(p, 32, "> %.6g", f->n_edges ? f->edges[f->n_edges - 1] : 0.0);
            labels[b] = p;
            p += 32;
        }
    }
    *nbins = f->nb + 1;
}

#define SKETCH_MAGIC 0x4C50534Bu /* "KSPL" */

lp_status lp_drift_sketch_save(const lp_drift_sketch *s, lp_buf *b, lp_err *err)
{
    lp_buf_u32(b, SKETCH_MAGIC);
    lp_buf_u64(b, s->ref->n);
    for (size_t j = 0; j < s->ref->n; j++) {
        lp_buf_u64(b, s->ref->f[j].nb + 1);
        for (size_t k = 0; k <= s->ref->f[j].nb; k++)
            lp_buf_u64(b, atomic_load_explicit(&s->counts[j][k], memory_order_relaxed));
    }
    return lp_buf_status(b, err);
}

lp_status lp_drift_sketch_add_saved(lp_drift_sketch *s, const void *data, size_t len,
                                    lp_err *err)
{
    lp_reader r;
    lp_reader_init(&r, data, len, "drift sketch");
    uint32_t magic = 0;
    uint64_t n = 0;
    lp_status st = lp_reader_u32(&r, &magic, err);
    if (!st)
        st = lp_reader_u64(&r, &n, err);
    if (st)
        return st;
    if (magic != SKETCH_MAGIC || n != s->ref->n)
        return lp_err_set(err, LP_EFORMAT, "drift sketch: does not match the model's reference");
    /* validate everything before adding anything */
    size_t start = r.pos;
    for (size_t pass = 0; pass < 2; pass++) {
        r.pos = start;
        for (size_t j = 0; j < n; j++) {
            uint64_t nb = 0, c = 0;
            if ((st = lp_reader_u64(&r, &nb, err)))
                return st;
            if (nb != s->ref->f[j].nb + 1)
                return lp_err_set(err, LP_EFORMAT, "drift sketch: feature %zu has %llu bins, "
                                                   "expected %zu",
                                  j, (unsigned long long)nb, s->ref->f[j].nb + 1);
            for (size_t k = 0; k < nb; k++) {
                if ((st = lp_reader_u64(&r, &c, err)))
                    return st;
                if (pass)
                    atomic_fetch_add_explicit(&s->counts[j][k], c, memory_order_relaxed);
            }
        }
    }
    return LP_OK;
}
