/*
 * mf_rec.c - answering with a fitted mf model: top-k (partial sort), recommendations with
 * "because you liked" explanations, similar items, and offline evaluation of top-k lists.
 *
 * Read-only over the model, so every function here is thread-safe; each call takes its own
 * scratch (one block: O(n_items + history x dim + dim^2)), kept per thread between calls, which
 * keeps a request on one thread with no shared state. A prepared user (lp_mf_user) carries what
 * the model and the user's history fix: the vector, the ranking with the history excluded, and
 * for ALS the rows A_u^-1 y_t of the explanations, so that a request only filters and explains.
 * The per-request loops (item scores, the ALS user system behind the explanations, its factor
 * and solves) are written for the vectoriser and built per ISA level (MF_CLONES); the
 * explanation test (tests/numerics/test_mf_als.c) holds them to a double Gaussian-elimination
 * reference.
 */
#include "model/mf_internal.h"

#include <math.h>
#include <pthread.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lepton/metrics.h"

/* a ranks before b: higher score, then lower index */
static bool better(float sa, int32_t a, float sb, int32_t b)
{
    return sa > sb || (sa == sb && a < b);
}

/* min-heap of the k best seen so far; the root is the worst kept */
static void sift_down(int32_t *h, size_t n, size_t at, const float *s)
{
    for (;;) {
        size_t l = 2 * at + 1, r = l + 1, w = at;
        if (l < n && better(s[h[w]], h[w], s[h[l]], h[l])) w = l;
        if (r < n && better(s[h[w]], h[w], s[h[r]], h[r])) w = r;
        if (w == at) return;
        int32_t t = h[at];
        h[at] = h[w];
        h[w] = t;
        at = w;
    }
}

size_t lp_mf_topk(const float *scores, size_t n, const uint8_t *skip, size_t k, int32_t *idx)
{
    if (k == 0) return 0;
    size_t m = 0;
    float worst = INFINITY; /* the root's score once the heap is full */
    for (size_t i = 0; i < n; i++) {
        float si = scores[i];
        if (m == k && !(si >= worst)) continue; /* the common case, NaN included */
        if ((skip && skip[i]) || si == -INFINITY || isnan(si)) continue;
        if (m < k) {
            idx[m++] = (int32_t)i;
            if (m == k) {
                for (size_t p = k / 2 + 1; p-- > 0;) sift_down(idx, m, p, scores);
                worst = scores[idx[0]];
            }
        } else if (better(si, (int32_t)i, worst, idx[0])) {
            idx[0] = (int32_t)i;
            sift_down(idx, m, 0, scores);
            worst = scores[idx[0]];
        }
    }
    if (m < k)
        for (size_t p = m / 2 + 1; p-- > 0;) sift_down(idx, m, p, scores);
    /* heap-sort in place: repeatedly move the worst to the end */
    for (size_t e = m; e > 1; e--) {
        int32_t t = idx[0];
        idx[0] = idx[e - 1];
        idx[e - 1] = t;
        sift_down(idx, e - 1, 0, scores);
    }
    return m;
}

static lp_status check_history(const lp_mf *m, const int32_t *items, const float *w, size_t n,
                               lp_err *err)
{
    if (n && (!items || !w)) return lp_err_set(err, LP_EINVAL, "query: history is NULL");
    for (size_t t = 0; t < n; t++) {
        if (items[t] < 0 || (size_t)items[t] >= m->n_items)
            return lp_err_set(err, LP_EINVAL, "query: history item index %d out of range",
                              items[t]);
        if (!isfinite(w[t]) || w[t] <= 0)
            return lp_err_set(err, LP_EINVAL, "query: history weight %g is not > 0", w[t]);
    }
    return LP_OK;
}

/* Top contributions into r->because (positive ones only, best first; ties by lower position,
 * as lp_mf_topk orders them): one pass keeping the want <= LP_MF_BECAUSE_MAX best in order.
 * contrib[t * stride] is history item t's. As t only grows, a later value beats a kept one only
 * when strictly larger, so one comparison against the bar (0 until want are kept, then the
 * worst kept) rejects the common case, NaN included. */
static void pick_because(lp_mf_rec *r, const float *contrib, size_t stride, const int32_t *items,
                         size_t n, size_t want)
{
    float val[LP_MF_BECAUSE_MAX];
    int32_t best[LP_MF_BECAUSE_MAX];
    size_t got = 0;
    float bar = 0;
    for (size_t t = 0; t < n && want; t++) {
        float c = contrib[t * stride];
        if (!(c > bar)) continue;
        size_t at = got < want ? got++ : want - 1;
        while (at > 0 && c > val[at - 1]) {
            val[at] = val[at - 1], best[at] = best[at - 1];
            at--;
        }
        val[at] = c, best[at] = (int32_t)t;
        if (got == want) bar = val[want - 1];
    }
    for (size_t j = 0; j < got; j++) r->because[j] = items[best[j]];
    r->n_because = (uint8_t)got;
}

/* sim(i, j) from j's neighbour list (0 when i is not among them). */
static float knn_sim(const lp_mf *m, int32_t j, int32_t i)
{
    for (int32_t p = m->knn.ptr[j]; p < m->knn.ptr[j + 1]; p++)
        if (m->knn.col[p] == i) return m->knn.w[p];
    return 0;
}

/* scores[i] = vec . y_i for every item; y (ni, k). Four items per pass share the loads of vec. */
MF_CLONES
static void score_items(const float *y, size_t ni, size_t k, const float *vec, float *scores)
{
    size_t i = 0;
    for (; i + 4 <= ni; i += 4) {
        const float *y0 = y + i * k, *y1 = y0 + k, *y2 = y1 + k, *y3 = y2 + k;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
MF_SIMD_SUM_4
        for (size_t a = 0; a < k; a++) {
            s0 += vec[a] * y0[a];
            s1 += vec[a] * y1[a];
            s2 += vec[a] * y2[a];
            s3 += vec[a] * y3[a];
        }
        scores[i] = s0, scores[i + 1] = s1, scores[i + 2] = s2, scores[i + 3] = s3;
    }
    for (; i < ni; i++) {
        const float *yi = y + i * k;
        float s = 0;
MF_SIMD_SUM_S
        for (size_t a = 0; a < k; a++) s += vec[a] * yi[a];
        scores[i] = s;
    }
}

/* The ALS user system A_u = Y^T Y + lambda I + sum_t alpha w_t y_t y_t^T over the gathered
 * history yh (nh, k), and its right-hand side b = sum_t (1 + alpha w_t) y_t: the upper
 * triangle accumulated in float (as the ALS row solve of mf.c does, four history rows per pass;
 * each row's update starts at the multiple of 16 at or below the diagonal, so the vector loop
 * has no scalar head: the few lower entries it also touches are never read),
 * then factored in double by mf_chol_upper into u (k, k upper, then the k reciprocals of U's
 * diagonal). af (k, k) is float scratch; b (k) float. False when A is not
 * positive definite. */
MF_CLONES
static bool als_user_factor(const lp_mf *m, const float *yh, const float *hw, size_t nh,
                            float *af, float *b, double *u)
{
    size_t k = m->dim;
    float alpha = m->opts.alpha;
    memcpy(af, m->yty, k * k * sizeof *af);
    for (size_t a = 0; a < k; a++) af[a * k + a] += m->opts.regularization;
    memset(b, 0, k * sizeof *b);
    size_t t = 0;
    for (; t + 4 <= nh; t += 4) {
        const float *y0 = yh + t * k, *y1 = y0 + k, *y2 = y1 + k, *y3 = y2 + k;
        float c0 = alpha * hw[t], c1 = alpha * hw[t + 1], c2 = alpha * hw[t + 2],
              c3 = alpha * hw[t + 3];
        for (size_t a = 0; a < k; a++) {
            float a0 = c0 * y0[a], a1 = c1 * y1[a], a2 = c2 * y2[a], a3 = c3 * y3[a];
            float *row = af + a * k;
MF_SIMD
            for (size_t c = a & ~(size_t)15; c < k; c++)
                row[c] += a0 * y0[c] + a1 * y1[c] + a2 * y2[c] + a3 * y3[c];
        }
MF_SIMD
        for (size_t a = 0; a < k; a++)
            b[a] += (1 + c0) * y0[a] + (1 + c1) * y1[a] + (1 + c2) * y2[a] + (1 + c3) * y3[a];
    }
    for (; t < nh; t++) {
        const float *y0 = yh + t * k;
        float c0 = alpha * hw[t];
        for (size_t a = 0; a < k; a++) {
            float a0 = c0 * y0[a];
            float *row = af + a * k;
MF_SIMD
            for (size_t c = a & ~(size_t)15; c < k; c++) row[c] += a0 * y0[c];
        }
MF_SIMD
        for (size_t a = 0; a < k; a++) b[a] += (1 + c0) * y0[a];
    }
    for (size_t a = 0; a < k; a++)
        for (size_t c = a; c < k; c++) u[a * k + c] = af[a * k + c];
    return mf_chol_upper(u, k);
}

/* Solve A_u Z = Y in place for REC_RHS right-hand sides at once: zr (k, REC_RHS) doubles holds
 * them as columns, u is mf_chol_upper's factor; all columns go together, so the inner loops run
 * across them instead of along the sequential substitution. */
#define REC_RHS 16
MF_CLONES
static void chol_solve_block(const double *u, size_t k, double *zr)
{
    const double *rd = u + k * k;
    for (size_t p = 0; p < k; p++) { /* U^T Z = Y */
        double *zp = zr + p * REC_RHS;
MF_SIMD
        for (size_t r = 0; r < REC_RHS; r++) zp[r] *= rd[p];
        const double *up = u + p * k;
        for (size_t c = p + 1; c < k; c++) {
            double f = up[c];
            double *zc = zr + c * REC_RHS;
MF_SIMD
            for (size_t r = 0; r < REC_RHS; r++) zc[r] -= f * zp[r];
        }
    }
    for (size_t i = k; i-- > 0;) { /* U X = Z */
        double *zi = zr + i * REC_RHS;
        const double *ui = u + i * k;
        for (size_t c = i + 1; c < k; c++) {
            double f = ui[c];
            const double *zc = zr + c * REC_RHS;
MF_SIMD
            for (size_t r = 0; r < REC_RHS; r++) zi[r] -= f * zc[r];
        }
MF_SIMD
        for (size_t r = 0; r < REC_RHS; r++) zi[r] *= rd[i];
    }
}

/* contrib[t] = z . yh_t for the gathered history yh (nh, k), the first kd components. */
MF_CLONES
static void history_dots(const float *z, const float *yh, size_t nh, size_t k, size_t kd,
                         float *contrib)
{
    for (size_t t = 0; t < nh; t++) {
        const float *yj = yh + t * k;
        float s = 0;
MF_SIMD_SUM_S
        for (size_t a = 0; a < kd; a++) s += z[a] * yj[a];
        contrib[t] = s;
    }
}

/* contrib (nh, REC_RHS) floats: contrib[t][r] = p_t . y_r, with the listed items' factors as the
 * columns of yt (k, REC_RHS): four history rows per pass (four independent accumulators, so the
 * multiply-adds do not wait on each other), the listed items across the vector lanes. */
MF_CLONES
static void p_because(const float *p, size_t nh, size_t k, const float *yt, float *contrib)
{
    size_t t = 0;
    for (; t + 4 <= nh; t += 4) {
        const float *p0 = p + t * k, *p1 = p0 + k, *p2 = p1 + k, *p3 = p2 + k;
        float a0[REC_RHS] = {0}, a1[REC_RHS] = {0}, a2[REC_RHS] = {0}, a3[REC_RHS] = {0};
        for (size_t a = 0; a < k; a++) {
            const float *ya = yt + a * REC_RHS;
            float q0 = p0[a], q1 = p1[a], q2 = p2[a], q3 = p3[a];
MF_SIMD
            for (size_t r = 0; r < REC_RHS; r++) {
                a0[r] += q0 * ya[r];
                a1[r] += q1 * ya[r];
                a2[r] += q2 * ya[r];
                a3[r] += q3 * ya[r];
            }
        }
        memcpy(contrib + t * REC_RHS, a0, sizeof a0);
        memcpy(contrib + (t + 1) * REC_RHS, a1, sizeof a1);
        memcpy(contrib + (t + 2) * REC_RHS, a2, sizeof a2);
        memcpy(contrib + (t + 3) * REC_RHS, a3, sizeof a3);
    }
    for (; t < nh; t++) {
        const float *pt = p + t * k;
        float acc[REC_RHS] = {0};
        for (size_t a = 0; a < k; a++) {
            float pa = pt[a];
            const float *ya = yt + a * REC_RHS;
MF_SIMD
            for (size_t r = 0; r < REC_RHS; r++) acc[r] += pa * ya[r];
        }
        memcpy(contrib + t * REC_RHS, acc, sizeof acc);
    }
}

/* The "because" contributions of the n listed items at once (n <= REC_RHS):
 * c[t][r] = scale_t y_t^T A_u^-1 y_r. zr (k, REC_RHS) doubles holds the listed items' factors as
 * columns (solved in place), zf (k, REC_RHS) floats takes the solution; contrib (nh, REC_RHS)
 * floats. */
static void als_because(const double *u, size_t k, double *zr, float *zf, const float *yh,
                        const float *scale, size_t nh, float *contrib)
{
    chol_solve_block(u, k, zr);
    for (size_t i = 0; i < k * REC_RHS; i++) zf[i] = (float)zr[i];
    p_because(yh, nh, k, zf, contrib);
    for (size_t t = 0; t < nh; t++)
        for (size_t r = 0; r < REC_RHS; r++) contrib[t * REC_RHS + r] *= scale[t];
}

/* Scratch blocks are kept per thread between calls (a request path calls lp_mf_recommend once a
 * request): take one of at least `bytes`, give it back after. A block is out of the thread's slot
 * while taken, so nothing can use it twice; blocks over SCRATCH_KEEP are not kept. */
#define SCRATCH_HDR 64 /* the block's capacity, and 64-byte room for the data's alignment */
#define SCRATCH_KEEP ((size_t)4 << 20)
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool scratch_keyed;

static void scratch_key_make(void)
{
    scratch_keyed = pthread_key_create(&scratch_key, free) == 0;
}

static char *scratch_take(size_t bytes)
{
    pthread_once(&scratch_once, scratch_key_make);
    char *blk = scratch_keyed ? pthread_getspecific(scratch_key) : NULL;
    if (blk) pthread_setspecific(scratch_key, NULL);
    if (blk && *(size_t *)blk < bytes) {
        free(blk);
        blk = NULL;
    }
    if (!blk) {
        if (bytes > SIZE_MAX - SCRATCH_HDR || !(blk = malloc(SCRATCH_HDR + bytes))) return NULL;
        *(size_t *)blk = bytes;
    }
    return blk + SCRATCH_HDR;
}

static void scratch_give(void *p)
{
    if (!p) return;
    char *blk = (char *)p - SCRATCH_HDR;
    if (scratch_keyed && *(size_t *)blk <= SCRATCH_KEEP && !pthread_getspecific(scratch_key) &&
        pthread_setspecific(scratch_key, blk) == 0)
        return;
    free(blk);
}

/* Scratch of one lp_mf_recommend call, one block: item-sized scores and skip flags,
 * history-sized contributions, (nh, k) gathered history factors, and for ALS explanations the
 * user system's factor, the listed items' solves (k, REC_RHS) and their contributions
 * (nh, REC_RHS). */
typedef struct rec_scratch {
    double *chol, *z, *zr;
    float *scores, *vec, *col, *scale, *yh, *af, *bf, *cmat, *yt;
    int32_t *top, *topj; /* the listed items; from a prepared ranking, their places in it */
    uint8_t *skip;
} rec_scratch;

static void *rec_scratch_new(rec_scratch *w, size_t ni, size_t k, size_t kk, size_t nh,
                             bool als)
{
    /* doubles first, then floats, then int32, then bytes: every part stays aligned */
    size_t nd = als ? k * k + 2 * k + k * REC_RHS : 0, h = nh + 1;
    size_t nf = ni + k + 2 * h + h * k + (als ? k * k + k + h * REC_RHS + k * REC_RHS : 0);
    size_t bytes = nd * sizeof(double) + nf * sizeof(float) + 2 * kk * sizeof(int32_t) +
                   (ni ? ni : 1);
    char *base = scratch_take(bytes), *p = base;
    if (!base) return NULL;
    memset(w, 0, sizeof *w);
    if (als) {
        w->chol = (double *)p;     /* (k, k) factor, then k reciprocals of its diagonal */
        w->z = w->chol + k * k + k;
        w->zr = w->z + k;
    }
    p += nd * sizeof(double);
    w->scores = (float *)p;
    w->vec = w->scores + ni;
    w->col = w->vec + k;
    w->scale = w->col + h;
    w->yh = w->scale + h;
    if (als) {
        w->af = w->yh + h * k;
        w->bf = w->af + k * k;
        w->cmat = w->bf + k;
        w->yt = w->cmat + h * REC_RHS;
    }
    p += nf * sizeof(float);
    w->top = (int32_t *)p;
    w->topj = w->top + kk;
    p += 2 * kk * sizeof(int32_t);
    w->skip = (uint8_t *)p;
    memset(w->skip, 0, ni ? ni : 1); /* the only part read before it is written */
    return base;
}

/* How a user's items are scored: by their vector (ALS/BPR), by their history's neighbours
 * (itemknn), or by popularity (no vector and no history, or the popular kind). */
typedef enum rec_mode { REC_MODE_POP, REC_MODE_VEC, REC_MODE_KNN } rec_mode;

static rec_mode mode_for(const lp_mf *m, const float *vec, size_t nh)
{
    if (m->yi && (vec || nh)) return REC_MODE_VEC;
    if (m->opts.kind == LP_MF_KIND_ITEMKNN && nh) return REC_MODE_KNN;
    return REC_MODE_POP;
}

/* scores (n_items) of every item for this user; vec is the user's vector in REC_MODE_VEC */
static void user_scores(const lp_mf *m, rec_mode mode, const float *vec, const int32_t *hist,
                        const float *hw, size_t nh, float *scores)
{
    size_t ni = m->n_items;
    if (mode == REC_MODE_VEC) {
        score_items(m->yi, ni, m->dim, vec, scores);
    } else if (mode == REC_MODE_KNN) {
        memset(scores, 0, ni * sizeof *scores);
        for (size_t t = 0; t < nh; t++) {
            int32_t j = hist[t];
            for (int32_t p = m->knn.ptr[j]; p < m->knn.ptr[j + 1]; p++)
                scores[m->knn.col[p]] += m->knn.w[p] * hw[t];
        }
    } else {
        memcpy(scores, m->pop_score, ni * sizeof *scores);
    }
}

#define REC_TOP 256 /* ranked candidates a prepared user keeps */

struct lp_mf_user {
    const lp_mf *m;  /* the model it was prepared against */
    rec_mode mode;
    size_t n, bytes; /* history length; bytes held */
    int32_t *items;  /* (n) history items */
    float *w;        /* (n) their weights */
    float *vec;      /* (dim) the user's vector, or NULL (no factors, or no vector and no history) */
    float *p;        /* ALS with a history: (n, dim) rows p_t = (1 + alpha w_t) A_u^-1 y_t, so the
                      * contribution of history item t to item i's score (Hu et al. section 5) is
                      * p_t . y_i; NULL otherwise, or when A_u was not positive definite and the
                      * vector was given */
    int32_t *top;    /* (n_top) the user's best items, history excluded, in lp_mf_topk's order */
    float *top_score;
    size_t n_top;
    bool top_all;    /* top holds every item that can be recommended to the user */
    /* ALS with rows p: the explanations of the first n_bec ranked items, computed once here
     * as lp_mf_recommend would per request (pick_because with LP_MF_BECAUSE_MAX; a request for
     * fewer takes the prefix, which is what pick_because would keep) */
    int32_t *bec;    /* (n_bec, LP_MF_BECAUSE_MAX) history items, best first */
    uint8_t *n_bec_of; /* (n_bec) how many of each row are set */
    size_t n_bec;
};

/* Ranked items whose explanations a prepared ALS user keeps: two blocks of right-hand sides,
 * which covers a page of recommendations unless filters reach deep into the ranking. */
#define REC_PRE_BECAUSE (2 * REC_RHS)

/* The prepared user's ALS parts: A_u's factor, the vector by fold-in unless given, and the
 * rows p_t, all right-hand sides REC_RHS at a time. False with *st set on failure. */
static bool prepare_als(const lp_mf *m, lp_mf_user *u, bool given, lp_status *st, lp_err *err)
{
    size_t k = m->dim, n = u->n;
    float *yh = lp_mallocarray(n * k + k * k + k, sizeof *yh);
    double *chol = lp_mallocarray(k * k + k + k * REC_RHS, sizeof *chol);
    bool ok = yh && chol;
    if (!ok) *st = lp_err_set(err, LP_ENOMEM, "prepare user: out of memory");
    if (ok) {
        for (size_t t = 0; t < n; t++)
            memcpy(yh + t * k, m->yi + (size_t)u->items[t] * k, k * sizeof *yh);
        float *af = yh + n * k, *bf = af + k * k;
        double *zr = chol + k * k + k;
        if (!als_user_factor(m, yh, u->w, n, af, bf, chol)) {
            u->p = NULL; /* explanations fall back to dot products, as lp_mf_recommend's */
            /* a float system too ill-conditioned to factor: the double fold-in of mf.c */
            if (!given && (*st = mf_fold_in(m, u->items, u->w, n, u->vec, err))) ok = false;
        } else {
            if (!given) { /* as lp_mf_recommend's fold-in from the same factor */
                for (size_t a = 0; a < k; a++) zr[a] = bf[a];
                mf_chol_upper_solve(chol, k, zr);
                for (size_t a = 0; a < k; a++) {
                    if (!isfinite(zr[a])) ok = false;
                    u->vec[a] = (float)zr[a];
                }
                if (!ok) *st = lp_err_set(err, LP_ENUMERIC, "fold-in: the system is not positive "
                                          "definite");
            }
            for (size_t t0 = 0; ok && t0 < n; t0 += REC_RHS) {
                size_t t1 = n - t0 < REC_RHS ? n : t0 + REC_RHS;
                memset(zr, 0, k * REC_RHS * sizeof *zr);
                for (size_t t = t0; t < t1; t++)
                    for (size_t a = 0; a < k; a++) zr[a * REC_RHS + (t - t0)] = yh[t * k + a];
                chol_solve_block(chol, k, zr);
                for (size_t t = t0; t < t1; t++) {
                    double sc = 1.0f + m->opts.alpha * u->w[t];
                    for (size_t a = 0; a < k; a++)
                        u->p[t * k + a] = (float)(zr[a * REC_RHS + (t - t0)] * sc);
                }
            }
        }
    }
    free(yh), free(chol);
    return ok;
}

/* The explanations of u's first ranked items (at most want), REC_RHS columns at a time, as
 * lp_mf_recommend's prepared path computes them: p_because over the same columns, then
 * pick_because. False when out of memory. */
static bool prepare_because(const lp_mf *m, lp_mf_user *u, size_t want)
{
    size_t k = m->dim, n = u->n, nb = want < u->n_top ? want : u->n_top;
    float *yt = lp_mallocarray(k * REC_RHS + n * REC_RHS, sizeof *yt);
    if (!yt) return false;
    float *cmat = yt + k * REC_RHS;
    for (size_t r0 = 0; r0 < nb; r0 += REC_RHS) {
        size_t r1 = nb - r0 < REC_RHS ? nb : r0 + REC_RHS;
        memset(yt, 0, k * REC_RHS * sizeof *yt);
        for (size_t r = r0; r < r1; r++) {
            const float *yr = m->yi + (size_t)u->top[r] * k;
            for (size_t a = 0; a < k; a++) yt[a * REC_RHS + (r - r0)] = yr[a];
        }
        p_because(u->p, n, k, yt, cmat);
        for (size_t r = r0; r < r1; r++) {
            lp_mf_rec o;
            pick_because(&o, cmat + (r - r0), REC_RHS, u->items, n, LP_MF_BECAUSE_MAX);
            memcpy(u->bec + r * LP_MF_BECAUSE_MAX, o.because, o.n_because * sizeof *o.because);
            u->n_bec_of[r] = o.n_because;
        }
    }
    u->n_bec = nb;
    free(yt);
    return true;
}

lp_status lp_mf_user_new(const lp_mf *m, const float *user_vec, const int32_t *history,
                         const float *history_w, size_t n_history, lp_mf_user **out, lp_err *err)
{
    if (!out) return lp_err_set(err, LP_EINVAL, "prepare user: NULL argument");
    *out = NULL;
    if (!m) return lp_err_set(err, LP_EINVAL, "prepare user: NULL argument");
    lp_status st = check_history(m, history, history_w, n_history, err);
    if (st) return st;
    size_t k = m->dim, n = n_history, ni = m->n_items;
    rec_mode mode = mode_for(m, user_vec, n);
    bool has_vec = mode == REC_MODE_VEC, als = has_vec && n && m->opts.kind == LP_MF_KIND_ALS;
    size_t ntop = REC_TOP < ni ? REC_TOP : ni, nbec = als ? REC_PRE_BECAUSE : 0;
    if (nbec > ntop) nbec = ntop;
    size_t nf = n + (has_vec ? k : 0) + (als ? n * k : 0) + ntop;
    size_t bytes = sizeof(lp_mf_user) + nf * sizeof(float) +
                   (n + ntop + nbec * LP_MF_BECAUSE_MAX) * sizeof(int32_t) + nbec;
    lp_mf_user *u = lp_calloc(1, bytes);
    float *scores = lp_mallocarray(ni ? ni : 1, sizeof *scores);
    uint8_t *skip = lp_calloc(ni ? ni : 1, 1);
    if (!u || !scores || !skip) {
        free(u), free(scores), free(skip);
        return lp_err_set(err, LP_ENOMEM, "prepare user: out of memory");
    }
    u->m = m;
    u->mode = mode;
    u->n = n;
    u->bytes = bytes;
    u->w = (float *)(u + 1);
    u->top_score = u->w + n;
    float *f = u->top_score + ntop;
    if (has_vec) u->vec = f, f += k;
    if (als) u->p = f, f += n * k;
    u->items = (int32_t *)f;
    u->top = u->items + n;
    u->bec = u->top + ntop;
    u->n_bec_of = (uint8_t *)(u->bec + nbec * LP_MF_BECAUSE_MAX);
    if (n) {
        memcpy(u->items, history, n * sizeof *history);
        for (size_t t = 0; t < n; t++) u->w[t] = mf_tw(m->opts.weight_transform, history_w[t]);
    }
    if (user_vec && has_vec) memcpy(u->vec, user_vec, k * sizeof *user_vec);
    bool ok = true;
    if (als) ok = prepare_als(m, u, user_vec != NULL, &st, err);
    else if (has_vec && !user_vec) ok = !(st = mf_fold_in(m, history, u->w, n, u->vec, err));
    if (ok) { /* the ranking lp_mf_recommend makes with the history excluded */
        user_scores(m, mode, u->vec, history, u->w, n, scores);
        for (size_t t = 0; t < n; t++) skip[history[t]] = 1;
        u->n_top = lp_mf_topk(scores, ni, skip, ntop, u->top);
        u->top_all = u->n_top < ntop || ntop == ni;
        for (size_t j = 0; j < u->n_top; j++) u->top_score[j] = scores[u->top[j]];
        if (u->p && n && !(ok = prepare_because(m, u, nbec)))
            st = lp_err_set(err, LP_ENOMEM, "prepare user: out of memory");
    }
    free(scores), free(skip);
    if (!ok) {
        free(u);
        return st;
    }
    *out = u;
    return LP_OK;
}

void lp_mf_user_free(lp_mf_user *u)
{
    free(u);
}

size_t lp_mf_user_bytes(const lp_mf_user *u)
{
    return u ? u->bytes : 0;
}

size_t lp_mf_user_prepared_history(const lp_mf_user *u, const int32_t **items, const float **w)
{
    *items = u ? u->items : NULL;
    *w = u ? u->w : NULL;
    return u ? u->n : 0;
}

lp_status lp_mf_recommend(const lp_mf *m, const lp_mf_query *q, lp_mf_rec *out, size_t *n_out,
                          lp_err *err)
{
    *n_out = 0;
    if (!m || !q) return lp_err_set(err, LP_EINVAL, "recommend: NULL argument");
    if (q->k == 0) return lp_err_set(err, LP_EINVAL, "recommend: k must be >= 1");
    if (q->n_because > LP_MF_BECAUSE_MAX)
        return lp_err_set(err, LP_EINVAL, "recommend: n_because %zu is above %d", q->n_because,
                          LP_MF_BECAUSE_MAX);
    const lp_mf_user *pu = q->user;
    if (pu && pu->m != m)
        return lp_err_set(err, LP_EINVAL, "recommend: the prepared user belongs to another model");
    lp_status st = pu ? LP_OK : check_history(m, q->history, q->history_w, q->n_history, err);
    if (st) return st;
    if (q->n_exclude && !q->exclude) return lp_err_set(err, LP_EINVAL, "recommend: exclude is NULL");
    const int32_t *hist = pu ? pu->items : q->history;
    const float *hw = pu ? pu->w : q->history_w, *uvec = pu ? pu->vec : q->user_vec;
    size_t ni = m->n_items, k = m->dim, nh = pu ? pu->n : q->n_history;
    float *own_w = NULL; /* the query's weights under the model's transform (a prepared user's
                          * are transformed already) */
    if (!pu && nh && m->opts.weight_transform != LP_MF_WEIGHT_NONE) {
        if (!(own_w = mf_tw_copy(m->opts.weight_transform, hw, nh)))
            return lp_err_set(err, LP_ENOMEM, "recommend: out of memory");
        hw = own_w;
    }
    size_t kk = q->k < ni ? q->k : ni;
    rec_mode mode = pu ? pu->mode : mode_for(m, uvec, nh);
    /* ALS explanations need W^u = A_u^-1: a prepared user brings W^u y_t for its history; else
     * factor A_u once and solve for the listed items, REC_RHS at a time */
    bool explain = q->n_because && nh && mode != REC_MODE_POP;
    bool als_explain = explain && mode == REC_MODE_VEC && m->opts.kind == LP_MF_KIND_ALS &&
                       (!pu || pu->p);
    bool factor = als_explain && !pu;
    rec_scratch w;
    void *block = rec_scratch_new(&w, ni, k, kk, nh, als_explain);
    if (!block) {
        free(own_w);
        return lp_err_set(err, LP_ENOMEM, "recommend: out of memory");
    }
    uint8_t *skip = w.skip;
    float *scores = w.scores;
    for (size_t t = 0; t < q->n_exclude; t++)
        if (q->exclude[t] >= 0 && (size_t)q->exclude[t] < ni) skip[q->exclude[t]] = 1;

    /* a prepared user's ranking, filtered, when it holds enough candidates */
    size_t got = 0;
    bool ranked = false;
    if (pu && q->exclude_history) {
        for (size_t j = 0; j < pu->n_top && got < kk; j++) {
            int32_t i = pu->top[j];
            if (skip[i] || (q->allowed && !q->allowed[i])) continue;
            w.topj[got] = (int32_t)j;
            w.top[got++] = i;
            scores[i] = pu->top_score[j];
        }
        ranked = got == kk || pu->top_all;
    }
    if (mode == REC_MODE_VEC && explain && !(pu && als_explain)) { /* (nh, k) history factors */
        for (size_t t = 0; t < nh; t++)
            memcpy(w.yh + t * k, m->yi + (size_t)hist[t] * k, k * sizeof *w.yh);
        if (factor)
            for (size_t t = 0; t < nh; t++) w.scale[t] = 1.0f + m->opts.alpha * hw[t];
    }
    /* ALS with explanations factors A_u anyway; a fold-in reuses that factor (the same system
     * as lp_mf_fold_in solves, up to float rounding) */
    if (factor && !als_user_factor(m, w.yh, hw, nh, w.af, w.bf, w.chol))
        als_explain = factor = false; /* a fold-in below takes mf.c's double solve */
    if (!ranked) {
        if (q->exclude_history)
            for (size_t t = 0; t < nh; t++) skip[hist[t]] = 1;
        if (q->allowed)
            for (size_t i = 0; i < ni; i++)
                if (!q->allowed[i]) skip[i] = 1;
        if (mode == REC_MODE_VEC) {
            if (uvec) {
                memcpy(w.vec, uvec, k * sizeof *w.vec);
            } else if (factor) {
                for (size_t a = 0; a < k; a++) w.z[a] = w.bf[a];
                mf_chol_upper_solve(w.chol, k, w.z);
                for (size_t a = 0; a < k; a++) {
                    if (!isfinite(w.z[a])) {
                        st = lp_err_set(err, LP_ENUMERIC, "fold-in: the system is not positive "
                                        "definite");
                        goto done;
                    }
                    w.vec[a] = (float)w.z[a];
                }
            } else if ((st = mf_fold_in(m, hist, hw, nh, w.vec, err))) {
                goto done;
            }
        }
        user_scores(m, mode, w.vec, hist, hw, nh, scores);
        got = lp_mf_topk(scores, ni, skip, kk, w.top);
    }

    size_t nb = q->n_because < nh ? q->n_because : nh;
    /* a prepared user's kept explanations serve the items of its ranking's first n_bec places */
    size_t kept = ranked && als_explain && !factor ? pu->n_bec : 0;
    for (size_t r0 = 0; r0 < got; r0 += REC_RHS) {
        size_t r1 = got - r0 < REC_RHS ? got : r0 + REC_RHS;
        bool all_kept = kept > 0;
        for (size_t r = r0; r < r1 && all_kept; r++) all_kept = (size_t)w.topj[r] < kept;
        if (als_explain && !factor && !all_kept) { /* prepared: c[t][r] = p_t . y_r */
            float *yt = w.yt;
            memset(yt, 0, k * REC_RHS * sizeof *yt);
            for (size_t r = r0; r < r1; r++) {
                const float *yr = m->yi + (size_t)w.top[r] * k;
                for (size_t a = 0; a < k; a++) yt[a * REC_RHS + (r - r0)] = yr[a];
            }
            p_because(pu->p, nh, k, yt, w.cmat);
        }
        if (factor) { /* c[t][r] = (1 + alpha w_t) y_t^T W^u y_r for this block */
            memset(w.zr, 0, k * REC_RHS * sizeof *w.zr);
            for (size_t r = r0; r < r1; r++) {
                const float *yr = m->yi + (size_t)w.top[r] * k;
                for (size_t a = 0; a < k; a++) w.zr[a * REC_RHS + (r - r0)] = yr[a];
            }
            als_because(w.chol, k, w.zr, w.yt, w.yh, w.scale, nh, w.cmat);
        }
        for (size_t r = r0; r < r1; r++) {
            int32_t i = w.top[r];
            lp_mf_rec *o = &out[r];
            o->item = i;
            o->score = scores[i];
            o->n_because = 0;
            if (!explain) continue;
            if (kept && (size_t)w.topj[r] < kept) {
                size_t j = (size_t)w.topj[r], c = pu->n_bec_of[j] < nb ? pu->n_bec_of[j] : nb;
                memcpy(o->because, pu->bec + j * LP_MF_BECAUSE_MAX, c * sizeof *o->because);
                o->n_because = (uint8_t)c;
                continue;
            } else if (als_explain) {
                pick_because(o, w.cmat + (r - r0), REC_RHS, hist, nh, nb);
                continue;
            } else if (mode == REC_MODE_VEC) { /* the dot product of the factors (BPR: not the
                                                * bias) */
                size_t kd = m->opts.kind == LP_MF_KIND_BPR ? k - 1 : k;
                history_dots(m->yi + (size_t)i * k, w.yh, nh, k, kd, w.col);
            } else {
                for (size_t t = 0; t < nh; t++)
                    w.col[t] = knn_sim(m, hist[t], i) * hw[t];
            }
            pick_because(o, w.col, 1, hist, nh, nb);
        }
    }
    *n_out = got;
done:
    scratch_give(block);
    free(own_w);
    return st;
}

lp_status lp_mf_similar(const lp_mf *m, size_t item, size_t k, const uint8_t *allowed,
                        lp_mf_rec *out, size_t *n_out, lp_err *err)
{
    *n_out = 0;
    if (!m || item >= m->n_items)
        return lp_err_set(err, LP_EINVAL, "similar: item index %zu out of range", item);
    if (k == 0) return lp_err_set(err, LP_EINVAL, "similar: k must be >= 1");
    size_t ni = m->n_items;
    float *scores = lp_mallocarray(ni, sizeof *scores);
    uint8_t *skip = lp_calloc(ni, 1);
    int32_t *top = lp_mallocarray(k < ni ? k : ni, sizeof *top);
    if (!scores || !skip || !top) {
        free(scores), free(skip), free(top);
        return lp_err_set(err, LP_ENOMEM, "similar: out of memory");
    }
    skip[item] = 1;
    if (allowed)
        for (size_t i = 0; i < ni; i++)
            if (!allowed[i]) skip[i] = 1;
    if (m->yi) {
        size_t d = m->dim, kd = m->opts.kind == LP_MF_KIND_BPR ? d - 1 : d;
        const float *y0 = m->yi + item * d;
        for (size_t i = 0; i < ni; i++) {
            double s = 0;
            const float *yi = m->yi + i * d;
            for (size_t a = 0; a < kd; a++) s += (double)y0[a] * yi[a];
            double den = (double)m->inorm[item] * m->inorm[i];
            scores[i] = den > 0 ? (float)(s / den) : 0.0f;
        }
    } else if (m->opts.kind == LP_MF_KIND_ITEMKNN) {
        for (size_t i = 0; i < ni; i++) scores[i] = -INFINITY;
        for (int32_t p = m->knn.ptr[item]; p < m->knn.ptr[item + 1]; p++)
            scores[m->knn.col[p]] = m->knn.w[p];
    } else {
        memcpy(scores, m->pop_score, ni * sizeof *scores);
    }
    size_t got = lp_mf_topk(scores, ni, skip, k < ni ? k : ni, top);
    for (size_t r = 0; r < got; r++)
        out[r] = (lp_mf_rec){.item = top[r], .score = scores[top[r]], .n_because = 0};
    *n_out = got;
    free(scores), free(skip), free(top);
    return LP_OK;
}

/* ---- evaluation ---------------------------------------------------------------------------*/

lp_status lp_mf_evaluate(const lp_mf *m, const lp_mf_data *train, const lp_mf_data *test,
                         size_t k, float min_weight, lp_mf_eval *out, lp_err *err)
{
    memset(out, 0, sizeof *out);
    if (!m || !train || !test) return lp_err_set(err, LP_EINVAL, "evaluate: NULL argument");
    if (k == 0) return lp_err_set(err, LP_EINVAL, "evaluate: k must be >= 1");
    if (!isfinite(min_weight)) return lp_err_set(err, LP_EINVAL, "evaluate: min_weight not finite");
    mf_csr tr = {0}, te = {0};
    lp_status st;
    if ((st = mf_data_csr(train, true, &tr, err)) || (st = mf_data_csr(test, true, &te, err))) {
        mf_csr_free(&tr);
        return st;
    }
    size_t nu = test->users.n, ni = m->n_items;
    int32_t *tr_item = lp_mallocarray(train->items.n + 1, sizeof *tr_item);
    int32_t *te_item = lp_mallocarray(test->items.n + 1, sizeof *te_item);
    int32_t *ranked = lp_mallocarray(nu * k + 1, sizeof *ranked);
    size_t *rel_off = lp_calloc(nu + 1, sizeof *rel_off);
    int32_t *rel = lp_mallocarray(te.nnz + 1, sizeof *rel);
    uint8_t *seen = lp_calloc(ni + 1, 1);
    double *nov = lp_calloc(nu + 1, sizeof *nov);
    size_t *nov_n = lp_calloc(nu + 1, sizeof *nov_n);
    int failed = 0;
    lp_err first = {0};
    if (!tr_item || !te_item || !ranked || !rel_off || !rel || !seen || !nov || !nov_n) {
        st = lp_err_set(err, LP_ENOMEM, "evaluate: out of memory");
        goto done;
    }
    for (size_t t = 0; t < train->items.n; t++)
        tr_item[t] = (int32_t)mf_ids_find(&m->items, train->items.names[t]);
    for (size_t t = 0; t < test->items.n; t++) {
        long f = mf_ids_find(&m->items, test->items.names[t]);
        te_item[t] = f >= 0 ? (int32_t)f : (int32_t)(ni + t); /* never recommended */
    }
    /* relevant lists: only users with at least one relevant item are evaluated */
    size_t n_eval = 0, pos = 0;
    int32_t *users = lp_mallocarray(nu + 1, sizeof *users);
    if (!users) {
        st = lp_err_set(err, LP_ENOMEM, "evaluate: out of memory");
        goto done;
    }
    for (size_t u = 0; u < nu; u++) {
        size_t before = pos;
        for (int32_t p = te.ptr[u]; p < te.ptr[u + 1]; p++)
            if (te.w[p] >= min_weight) rel[pos++] = te_item[te.col[p]];
        if (pos > before) {
            users[n_eval++] = (int32_t)u;
            rel_off[n_eval] = pos;
        }
    }
    if (!n_eval) {
        free(users);
        st = lp_err_set(err, LP_EINVAL, "evaluate: no test user has an item with weight >= %g",
                        min_weight);
        goto done;
    }
#pragma omp parallel
    {
        lp_mf_rec *recs = lp_mallocarray(k, sizeof *recs);
        int32_t *hi = lp_mallocarray(ni + 1, sizeof *hi);
        float *hw = lp_mallocarray(ni + 1, sizeof *hw);
        lp_err e = {0};
#pragma omp for schedule(dynamic, 8)
        for (size_t r = 0; r < n_eval; r++) {
            int32_t *row = ranked + r * k;
            for (size_t t = 0; t < k; t++) row[t] = -1;
            if (!recs || !hi || !hw) {
#pragma omp atomic write
                failed = 1;
                continue;
            }
            const char *uid = test->users.names[users[r]];
            long tu = mf_ids_find(&train->users, uid), mu = mf_ids_find(&m->users, uid);
            size_t nh = 0;
            if (tu >= 0)
                for (int32_t p = tr.ptr[tu]; p < tr.ptr[tu + 1]; p++) {
                    int32_t mi = tr_item[tr.col[p]];
                    if (mi < 0) continue;
                    hi[nh] = mi;
                    hw[nh++] = tr.w[p];
                }
            lp_mf_query q = {.user_vec = mu >= 0 ? lp_mf_user_factors(m, (size_t)mu) : NULL,
                             .history = hi, .history_w = hw, .n_history = nh,
                             .exclude_history = true, .k = k};
            size_t got = 0;
            if (lp_mf_recommend(m, &q, recs, &got, &e)) {
#pragma omp critical(mf_eval_err)
                if (!failed) {
                    failed = 1;
                    first = e;
                }
                continue;
            }
            for (size_t t = 0; t < got; t++) {
                row[t] = recs[t].item;
                seen[recs[t].item] = 1; /* benign race: every writer stores 1 */
                nov[r] -= log2((double)m->pop_users[recs[t].item] / (double)m->n_users);
            }
            nov_n[r] = got;
        }
        free(recs), free(hi), free(hw);
    }
    if (failed) {
        st = first.status ? lp_err_set(err, first.status, "evaluate: %s", first.msg)
                          : lp_err_set(err, LP_ENOMEM, "evaluate: out of memory");
        free(users);
        goto done;
    }
    lp_rank_metrics rm;
    st = lp_metrics_rank_at_k(ranked, n_eval, k, rel_off, rel, k, &rm, err);
    if (!st) {
        out->users = rm.n_users;
        out->precision = rm.precision;
        out->recall = rm.recall;
        out->ndcg = rm.ndcg;
        out->map = rm.map;
        size_t cov = 0, nn = 0;
        double ns = 0;
        for (size_t i = 0; i < ni; i++) cov += seen[i];
        for (size_t r = 0; r < n_eval; r++) {
            ns += nov[r];
            nn += nov_n[r];
        }
        out->coverage = ni ? (double)cov / (double)ni : 0;
        out->novelty = nn ? ns / (double)nn : 0;
    }
    free(users);
done:
    free(tr_item), free(te_item), free(ranked), free(rel_off), free(rel), free(seen);
    free(nov), free(nov_n);
    mf_csr_free(&tr);
    mf_csr_free(&te);
    return st;
}
