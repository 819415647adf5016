/*
 * mf_rec.c - answering with a fitted mf model: top-k (partial sort), recommendations with
 * "because you liked" explanations, similar items, and offline evaluation of top-k lists.
 *
 * Read-only over the model, so every function here is thread-safe; each call allocates its own
 * scratch (O(n_items) floats), which keeps a request on one thread with no shared state.
 */
#include "model/mf_internal.h"

#include <math.h>
#include <omp.h>
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
    for (size_t i = 0; i < n; i++) {
        if ((skip && skip[i]) || scores[i] == -INFINITY || isnan(scores[i])) continue;
        if (m < k) {
            idx[m++] = (int32_t)i;
            if (m == k)
                for (size_t p = k / 2 + 1; p-- > 0;) sift_down(idx, m, p, scores);
        } else if (better(scores[i], (int32_t)i, scores[idx[0]], idx[0])) {
            idx[0] = (int32_t)i;
            sift_down(idx, m, 0, scores);
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

/* Top contributions into r->because (positive ones only, best first). */
static void pick_because(lp_mf_rec *r, const float *contrib, const int32_t *items, size_t n,
                         size_t want, int32_t *tmp)
{
    size_t got = lp_mf_topk(contrib, n, NULL, want, tmp);
    r->n_because = 0;
    for (size_t t = 0; t < got; t++)
        if (contrib[tmp[t]] > 0) r->because[r->n_because++] = items[tmp[t]];
}

/* sim(i, j) from j's neighbour list (0 when i is not among them). */
static float knn_sim(const lp_mf *m, int32_t j, int32_t i)
{
    for (int32_t p = m->knn.ptr[j]; p < m->knn.ptr[j + 1]; p++)
        if (m->knn.col[p] == i) return m->knn.w[p];
    return 0;
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
    lp_status st = check_history(m, q->history, q->history_w, q->n_history, err);
    if (st) return st;
    if (q->n_exclude && !q->exclude) return lp_err_set(err, LP_EINVAL, "recommend: exclude is NULL");
    size_t ni = m->n_items, k = m->dim, nh = q->n_history;
    size_t kk = q->k < ni ? q->k : ni;
    float *scores = lp_mallocarray(ni ? ni : 1, sizeof *scores);
    uint8_t *skip = lp_calloc(ni ? ni : 1, 1);
    int32_t *top = lp_mallocarray(kk + nh + 1, sizeof *top);
    float *vec = k ? lp_mallocarray(k, sizeof *vec) : NULL;
    float *contrib = lp_mallocarray(nh + 1, sizeof *contrib);
    double *chol = NULL, *z = NULL;
    if (!scores || !skip || !top || (k && !vec) || !contrib) {
        st = lp_err_set(err, LP_ENOMEM, "recommend: out of memory");
        goto done;
    }
    if (q->exclude_history)
        for (size_t t = 0; t < nh; t++) skip[q->history[t]] = 1;
    for (size_t t = 0; t < q->n_exclude; t++)
        if (q->exclude[t] >= 0 && (size_t)q->exclude[t] < ni) skip[q->exclude[t]] = 1;
    if (q->allowed)
        for (size_t i = 0; i < ni; i++)
            if (!q->allowed[i]) skip[i] = 1;

    enum { MODE_POP, MODE_VEC, MODE_KNN } mode = MODE_POP;
    if (m->yi && (q->user_vec || nh)) {
        mode = MODE_VEC;
        if (q->user_vec) memcpy(vec, q->user_vec, k * sizeof *vec);
        else if ((st = lp_mf_fold_in(m, q->history, q->history_w, nh, vec, err))) goto done;
    } else if (m->opts.kind == LP_MF_KIND_ITEMKNN && nh) {
        mode = MODE_KNN;
    }
    if (mode == MODE_VEC) {
        for (size_t i = 0; i < ni; i++) {
            const float *yi = m->yi + i * k;
            float s = 0;
            for (size_t a = 0; a < k; a++) s += vec[a] * yi[a];
            scores[i] = s;
        }
    } else if (mode == MODE_KNN) {
        memset(scores, 0, ni * sizeof *scores);
        for (size_t t = 0; t < nh; t++) {
            int32_t j = q->history[t];
            for (int32_t p = m->knn.ptr[j]; p < m->knn.ptr[j + 1]; p++)
                scores[m->knn.col[p]] += m->knn.w[p] * q->history_w[t];
        }
    } else {
        memcpy(scores, m->pop, ni * sizeof *scores);
    }
    size_t got = lp_mf_topk(scores, ni, skip, kk, top);

    /* ALS explanations need W^u = A_u^-1: factor A_u once, one solve per listed item. */
    bool als_explain = mode == MODE_VEC && m->opts.kind == LP_MF_KIND_ALS && q->n_because && nh;
    if (als_explain) {
        chol = lp_mallocarray(k * k + k, sizeof *chol);
        if (!chol) {
            st = lp_err_set(err, LP_ENOMEM, "recommend: out of memory");
            goto done;
        }
        z = chol + k * k;
        for (size_t t = 0; t < k * k; t++) chol[t] = m->yty[t];
        for (size_t a = 0; a < k; a++) chol[a * k + a] += m->opts.regularization;
        for (size_t t = 0; t < nh; t++) {
            const float *yj = m->yi + (size_t)q->history[t] * k;
            double c1 = (double)m->opts.alpha * q->history_w[t];
            for (size_t a = 0; a < k; a++)
                for (size_t b = 0; b <= a; b++) chol[a * k + b] += c1 * yj[a] * yj[b];
        }
        if (!mf_cholesky(chol, k)) als_explain = false;
    }
    int32_t *tmp = top + kk; /* nh + 1 free slots after the list */
    for (size_t r = 0; r < got; r++) {
        int32_t i = top[r];
        lp_mf_rec *o = &out[r];
        o->item = i;
        o->score = scores[i];
        o->n_because = 0;
        if (!q->n_because || !nh || mode == MODE_POP) continue;
        const float *yi = m->yi ? m->yi + (size_t)i * k : NULL;
        if (als_explain) {
            for (size_t a = 0; a < k; a++) z[a] = yi[a];
            mf_cholesky_solve(chol, k, z);
        }
        for (size_t t = 0; t < nh; t++) {
            int32_t j = q->history[t];
            double c = 0;
            if (als_explain) {
                const float *yj = m->yi + (size_t)j * k;
                for (size_t a = 0; a < k; a++) c += z[a] * yj[a];
                c *= 1.0 + (double)m->opts.alpha * q->history_w[t];
            } else if (mode == MODE_VEC) {
                const float *yj = m->yi + (size_t)j * k;
                size_t kd = m->opts.kind == LP_MF_KIND_BPR ? k - 1 : k;
                for (size_t a = 0; a < kd; a++) c += (double)yi[a] * yj[a];
            } else {
                c = (double)knn_sim(m, j, i) * q->history_w[t];
            }
            contrib[t] = (float)c;
        }
        /* tmp has nh + 1 slots, enough for the n_because <= nh best */
        pick_because(o, contrib, q->history, nh, q->n_because < nh ? q->n_because : nh, tmp);
    }
    *n_out = got;
done:
    free(scores), free(skip), free(top), free(vec), free(contrib), free(chol);
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
        memcpy(scores, m->pop, ni * sizeof *scores);
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
