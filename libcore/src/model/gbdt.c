/*
 * gbdt.c - fitting histogram gradient-boosted trees: options, losses, leaf-wise growth.
 *
 * One round: gradients and hessians of the loss at the current margins (per output), a seeded
 * row sample (bagging) and per-tree feature sample, then for every output one tree grown
 * best-first: the leaf whose best split gains most is split next, until max_leaves leaves,
 * max_depth, or no split gains more than min_split_gain. A leaf's histogram holds, per
 * feature and bin, the sums (G, H) of its rows; only the smaller child's histogram is built
 * from rows, the larger one is parent - smaller (histogram subtraction). Split search scans
 * the bins of every sampled feature twice: missing values to the right, then to the left,
 * keeping the better (XGBoost's sparsity-aware split finding, Chen & Guestrin 2016, Alg. 3).
 *
 * Invariant: row indices of a leaf form a contiguous ascending range of `idx` (stable
 * partition), so histogram building reads the binned matrix and gradients forward.
 * Determinism: histograms are sums over fixed row blocks (their number depends on the row
 * count only) reduced in block order, so the fit is identical for any thread count.
 * Not here: prediction and serialisation (gbdt_model.c), binning (gbdt_bin.c).
 */
#include "model/gbdt_int.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* Rows per histogram block, and the most blocks a histogram is split into. Both fixed so the
 * summation order (and hence every bit of the model) does not depend on the thread count. */
#define GB_BLOCK_ROWS 4096
#define GB_MAX_BLOCKS 16
#define GB_SCRATCH_BYTES ((size_t)64 << 20)
/* Smallest hessian a logistic/softmax row contributes, so leaves never divide by zero. */
#define GB_MIN_HESS 1e-16
/* A split must gain more than this even with min_split_gain = 0 (rounding noise). */
#define GB_MIN_GAIN 1e-12

lp_gbdt_opts lp_gbdt_opts_default(void)
{
    lp_gbdt_opts o;
    memset(&o, 0, sizeof o);
    o.loss = LP_GBDT_LOSS_L2;
    o.n_classes = 2;
    o.n_rounds = 100;
    o.learning_rate = 0.1f;
    o.max_leaves = 31;
    o.max_depth = 0;
    o.max_bins = 255;
    o.lambda = 1.0f;
    o.min_child_weight = 1e-3f;
    o.min_split_gain = 0.0f;
    o.subsample = 1.0f;
    o.colsample = 1.0f;
    o.early_stopping_rounds = 0;
    o.bin_sample = 200000;
    o.seed = 0;
    o.n_threads = 0;
    o.base_score = NAN;
    return o;
}

lp_status lp_gbdt_opts_check(const lp_gbdt_opts *o, lp_err *err)
{
    if (!o)
        return lp_err_set(err, LP_EINVAL, "gbdt options: NULL");
    if (o->loss != LP_GBDT_LOSS_L2 && o->loss != LP_GBDT_LOSS_LOGLOSS &&
        o->loss != LP_GBDT_LOSS_SOFTMAX)
        return lp_err_set(err, LP_EINVAL, "gbdt options: loss=%d: must be L2 (0), LOGLOSS (1) "
                          "or SOFTMAX (2)", (int)o->loss);
    if (o->loss == LP_GBDT_LOSS_SOFTMAX && (o->n_classes < 2 || o->n_classes > 1024))
        return lp_err_set(err, LP_EINVAL, "gbdt options: n_classes=%d: must be in [2, 1024] "
                          "for SOFTMAX", o->n_classes);
    if (o->n_rounds < 1)
        return lp_err_set(err, LP_EINVAL, "gbdt options: n_rounds=%d: must be >= 1",
                          o->n_rounds);
    if (!(o->learning_rate > 0.0f && o->learning_rate <= 1.0f))
        return lp_err_set(err, LP_EINVAL, "gbdt options: learning_rate=%g: must be in (0, 1]",
                          (double)o->learning_rate);
    if (o->max_leaves < 0 || o->max_leaves == 1 || o->max_leaves > 65536)
        return lp_err_set(err, LP_EINVAL, "gbdt options: max_leaves=%d: must be in [2, 65536] "
                          "or 0 for unlimited", o->max_leaves);
    if (o->max_depth < 0 || o->max_depth > 30)
        return lp_err_set(err, LP_EINVAL, "gbdt options: max_depth=%d: must be in [1, 30] or 0 "
                          "for unlimited", o->max_depth);
    if (o->max_leaves == 0 && o->max_depth == 0)
        return lp_err_set(err, LP_EINVAL, "gbdt options: max_leaves=0 and max_depth=0: at "
                          "least one of them must limit the tree");
    if (o->max_bins < 2 || o->max_bins > 255)
        return lp_err_set(err, LP_EINVAL, "gbdt options: max_bins=%d: must be in [2, 255]",
                          o->max_bins);
    if (!(o->lambda >= 0.0f && isfinite(o->lambda)))
        return lp_err_set(err, LP_EINVAL, "gbdt options: lambda=%g: must be finite and >= 0",
                          (double)o->lambda);
    if (!(o->min_child_weight >= 0.0f && isfinite(o->min_child_weight)))
        return lp_err_set(err, LP_EINVAL, "gbdt options: min_child_weight=%g: must be finite "
                          "and >= 0", (double)o->min_child_weight);
    if (!(o->min_split_gain >= 0.0f && isfinite(o->min_split_gain)))
        return lp_err_set(err, LP_EINVAL, "gbdt options: min_split_gain=%g: must be finite and "
                          ">= 0", (double)o->min_split_gain);
    if (!(o->subsample > 0.0f && o->subsample <= 1.0f))
        return lp_err_set(err, LP_EINVAL, "gbdt options: subsample=%g: must be in (0, 1]",
                          (double)o->subsample);
    if (!(o->colsample > 0.0f && o->colsample <= 1.0f))
        return lp_err_set(err, LP_EINVAL, "gbdt options: colsample=%g: must be in (0, 1]",
                          (double)o->colsample);
    if (o->early_stopping_rounds < 0)
        return lp_err_set(err, LP_EINVAL, "gbdt options: early_stopping_rounds=%d: must be >= 1 "
                          "or 0 for off", o->early_stopping_rounds);
    if (o->bin_sample < 1)
        return lp_err_set(err, LP_EINVAL, "gbdt options: bin_sample=0: must be >= 1");
    if (o->n_threads < 0)
        return lp_err_set(err, LP_EINVAL, "gbdt options: n_threads=%d: must be >= 1 or 0 for "
                          "the OpenMP default", o->n_threads);
    if (!isnan(o->base_score)) {
        if (o->loss == LP_GBDT_LOSS_SOFTMAX)
            return lp_err_set(err, LP_EINVAL, "gbdt options: base_score=%g: SOFTMAX takes its "
                              "base from the class priors (leave it NaN)", (double)o->base_score);
        if (!isfinite(o->base_score) ||
            (o->loss == LP_GBDT_LOSS_LOGLOSS && !(o->base_score > 0.0f && o->base_score < 1.0f)))
            return lp_err_set(err, LP_EINVAL, "gbdt options: base_score=%g: must be NaN (from "
                              "the labels), finite, and in (0, 1) for LOGLOSS",
                              (double)o->base_score);
    }
    return LP_OK;
}

/* ---- losses -------------------------------------------------------------------------------*/

static double sigmoid(double m)
{
    return m >= 0 ? 1.0 / (1.0 + exp(-m)) : exp(m) / (1.0 + exp(m));
}

void lp_gbdt_loss_grad(lp_gbdt_loss loss, int n_classes, const double *margin, float y,
                       double *g, double *h)
{
    switch (loss) {
    case LP_GBDT_LOSS_L2: /* 0.5 (m - y)^2 */
        g[0] = margin[0] - (double)y;
        h[0] = 1.0;
        break;
    case LP_GBDT_LOSS_LOGLOSS: { /* -y log p - (1 - y) log(1 - p), p = sigmoid(m) */
        double p = sigmoid(margin[0]);
        g[0] = p - (double)y;
        h[0] = fmax(p * (1.0 - p), GB_MIN_HESS);
        break;
    }
    case LP_GBDT_LOSS_SOFTMAX: { /* -log softmax(m)_y; hessian 2 p (1 - p) as XGBoost */
        double mx = margin[0], s = 0.0;
        for (int k = 1; k < n_classes; k++)
            mx = fmax(mx, margin[k]);
        for (int k = 0; k < n_classes; k++)
            s += exp(margin[k] - mx);
        for (int k = 0; k < n_classes; k++) {
            double p = exp(margin[k] - mx) / s;
            g[k] = p - (k == (int)y ? 1.0 : 0.0);
            h[k] = fmax(2.0 * p * (1.0 - p), GB_MIN_HESS);
        }
        break;
    }
    }
}

/* Mean loss of margins (n, K) against y: RMSE (L2), log-loss, multiclass log-loss. */
static double eval_loss(lp_gbdt_loss loss, size_t K, const double *margin, const float *y,
                        size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double *m = margin + i * K;
        if (loss == LP_GBDT_LOSS_L2) {
            double e = m[0] - (double)y[i];
            s += e * e;
        } else if (loss == LP_GBDT_LOSS_LOGLOSS) {
            /* log(1 + e^m) - y m, written to stay finite for large |m| */
            double sp = m[0] > 0 ? m[0] + log1p(exp(-m[0])) : log1p(exp(m[0]));
            s += sp - (double)y[i] * m[0];
        } else {
            double mx = m[0], z = 0.0;
            for (size_t k = 1; k < K; k++)
                mx = fmax(mx, m[k]);
            for (size_t k = 0; k < K; k++)
                z += exp(m[k] - mx);
            s += mx + log(z) - m[(size_t)y[i]];
        }
    }
    s /= (double)n;
    return loss == LP_GBDT_LOSS_L2 ? sqrt(s) : s;
}

/* ---- training state -----------------------------------------------------------------------*/

typedef struct gb_gh {
    double g, h;
} gb_gh;

typedef struct gb_ghf {
    float g, h;
} gb_ghf;

typedef struct gb_split {
    double gain;
    int32_t feature;
    int32_t bin; /* left = value bins 1..bin */
    uint8_t default_left;
    double gl, hl, gr, hr;
} gb_split;

typedef struct gb_leaf {
    size_t begin, end; /* range of idx */
    int32_t node;
    int depth;
    double g, h;
    gb_gh *hist; /* NULL once the leaf cannot split any more */
    gb_split best;
} gb_leaf;

typedef struct gb_train {
    const lp_gbdt_opts *o;
    const gb_bins *bins;
    size_t n, d, K;
    int nt;
    uint32_t n_hist;     /* entries per histogram */
    gb_gh *scratch;      /* (max_blocks, n_hist) block histograms */
    size_t max_blocks;   /* <= GB_MAX_BLOCKS, fewer when histograms are large */
    gb_gh **pool;        /* free histograms */
    size_t n_pool, cap_pool;
    gb_gh **owned;       /* every histogram ever allocated */
    size_t n_owned;
    uint32_t *tmp;       /* (n) partition buffer */
    uint8_t *colmask;    /* (d) features searched by the current tree */
    gb_leaf *leaves;
    int32_t *split_bin;  /* per node of the current tree, for binned traversal */
    size_t cap_leaves;
    size_t n_leaves;     /* leaves of the tree grown last */
    size_t cap_split;
} gb_train;

static gb_gh *hist_get(gb_train *t)
{
    if (t->n_pool > 0)
        return t->pool[--t->n_pool];
    gb_gh *h = lp_mallocarray(t->n_hist, sizeof *h);
    if (!h)
        return NULL;
    gb_gh **no = lp_reallocarray(t->owned, t->n_owned + 1, sizeof *no);
    if (!no) {
        free(h);
        return NULL;
    }
    t->owned = no;
    t->owned[t->n_owned++] = h;
    if (t->n_owned > t->cap_pool) {
        gb_gh **np = lp_reallocarray(t->pool, t->n_owned, sizeof *np);
        if (!np)
            return NULL; /* h stays owned and is freed at the end */
        t->pool = np;
        t->cap_pool = t->n_owned;
    }
    return h;
}

static void hist_put(gb_train *t, gb_gh *h)
{
    if (h)
        t->pool[t->n_pool++] = h; /* cap_pool >= n_owned >= every histogram handed out */
}

/* (g, h) as one SSE2 register: one load, add and store per histogram update. */
typedef double gb_v2d __attribute__((vector_size(16)));

/* Accumulate rows idx[lo, hi) into hist (zeroed first). (n_hist) entries. */
static void hist_rows(const gb_train *t, const uint32_t *idx, size_t lo, size_t hi,
                      const gb_ghf *gh, gb_gh *hist)
{
    const size_t d = t->d;
    const uint32_t *off = t->bins->off;
    const uint8_t *bins = t->bins->bins;
    gb_v2d *hv = (gb_v2d *)(void *)hist;
    memset(hist, 0, t->n_hist * sizeof *hist);
    /* rows of a deep leaf are sparse in memory: fetch them a few iterations ahead */
    const size_t ahead = 16;
    for (size_t i = lo; i < hi; i++) {
        if (i + ahead < hi) {
            uint32_t ra = idx[i + ahead];
            __builtin_prefetch(bins + (size_t)ra * d);
            __builtin_prefetch(&gh[ra]);
        }
        uint32_t r = idx[i];
        const uint8_t *row = bins + (size_t)r * d;
        gb_v2d v = {gh[r].g, gh[r].h};
        size_t j = 0;
        for (; j + 4 <= d; j += 4) {
            gb_v2d *e0 = hv + off[j] + row[j], *e1 = hv + off[j + 1] + row[j + 1];
            gb_v2d *e2 = hv + off[j + 2] + row[j + 2], *e3 = hv + off[j + 3] + row[j + 3];
            *e0 += v;
            *e1 += v;
            *e2 += v;
            *e3 += v;
        }
        for (; j < d; j++)
            hv[off[j] + row[j]] += v;
    }
}

/* Histogram of rows idx[lo, hi): fixed blocks, summed in block order. */
static void hist_build(gb_train *t, const uint32_t *idx, size_t lo, size_t hi,
                       const gb_ghf *gh, gb_gh *out)
{
    size_t cnt = hi - lo;
    size_t nblk = cnt / GB_BLOCK_ROWS;
    if (nblk > t->max_blocks)
        nblk = t->max_blocks;
    if (nblk <= 1) {
        hist_rows(t, idx, lo, hi, gh, out);
        return;
    }
    gb_gh *scr = t->scratch;
    const size_t nh = t->n_hist;
#pragma omp parallel num_threads(t->nt)
    {
#pragma omp for schedule(dynamic, 1)
        for (size_t b = 0; b < nblk; b++)
            hist_rows(t, idx, lo + cnt * b / nblk, lo + cnt * (b + 1) / nblk, gh,
                      scr + b * nh);
#pragma omp for schedule(static)
        for (size_t e = 0; e < nh; e++) {
            gb_gh s = scr[e];
            for (size_t b = 1; b < nblk; b++) {
                s.g += scr[b * nh + e].g;
                s.h += scr[b * nh + e].h;
            }
            out[e] = s;
        }
    }
}

static inline double leaf_score(double g, double h, double lambda)
{
    return g * g / (h + lambda);
}

/* Best split of a leaf with sums (G, H) and histogram hist over the sampled features. */
static void find_split(const gb_train *t, const gb_gh *hist, double G, double H, gb_split *best)
{
    const double lambda = t->o->lambda, mcw = t->o->min_child_weight;
    const double parent = leaf_score(G, H, lambda);
    best->gain = 0.0;
    best->feature = -1;
    for (size_t j = 0; j < t->d; j++) {
        if (!t->colmask[j])
            continue;
        const gb_gh *h = hist + t->bins->off[j];
        int nb = t->bins->nb[j];
        gb_gh miss = h[0];
        int has_missing = miss.h > 0.0;
        double gl = 0.0, hl = 0.0;
        for (int b = 1; b < nb; b++) {
            gl += h[b].g;
            hl += h[b].h;
            /* missing values to the right */
            double gr = G - gl, hr = H - hl;
            if (hl >= mcw && hr >= mcw && hl > 0.0 && hr > 0.0) {
                double gain = 0.5 * (leaf_score(gl, hl, lambda) + leaf_score(gr, hr, lambda) -
                                     parent);
                if (gain > best->gain) {
                    *best = (gb_split){gain, (int32_t)j, b, 0, gl, hl, gr, hr};
                    /* without missing rows in this leaf, missing follows the heavier side */
                    if (!has_missing)
                        best->default_left = hl >= hr;
                }
            }
            if (!has_missing)
                continue;
            /* missing values to the left */
            double gl2 = gl + miss.g, hl2 = hl + miss.h;
            double gr2 = G - gl2, hr2 = H - hl2;
            if (hl2 >= mcw && hr2 >= mcw && hl2 > 0.0 && hr2 > 0.0) {
                double gain = 0.5 * (leaf_score(gl2, hl2, lambda) +
                                     leaf_score(gr2, hr2, lambda) - parent);
                if (gain > best->gain)
                    *best = (gb_split){gain, (int32_t)j, b, 1, gl2, hl2, gr2, hr2};
            }
        }
    }
}

/* Stable partition of idx[lo, hi) by the split; returns the first index of the right part.
 * Fixed chunks (their number depends on the row count only) are classified in parallel into
 * tmp (left rows forward from the chunk start, right rows backward from its end), then copied
 * back in chunk order: the result equals the sequential stable partition. */
static size_t partition(gb_train *t, uint32_t *idx, size_t lo, size_t hi, const gb_split *s)
{
    const uint8_t *col = t->bins->cols + (size_t)s->feature * t->n;
    const size_t cnt = hi - lo;
    const unsigned sb = (unsigned)s->bin;
    const unsigned dl = s->default_left;
    size_t nch = cnt / GB_BLOCK_ROWS;
    nch = nch < 1 ? 1 : nch > GB_MAX_BLOCKS ? GB_MAX_BLOCKS : nch;
    size_t nleft[GB_MAX_BLOCKS], lpre[GB_MAX_BLOCKS + 1], rpre[GB_MAX_BLOCKS + 1];
    uint32_t *tmp = t->tmp + lo;
#pragma omp parallel num_threads(t->nt) if (nch > 1)
    {
#pragma omp for schedule(static)
        for (size_t c = 0; c < nch; c++) {
            size_t a = cnt * c / nch, b = cnt * (c + 1) / nch, l = a, r = b;
            for (size_t i = a; i < b; i++) {
                uint32_t row = idx[lo + i];
                unsigned bin = col[row];
                unsigned left = bin == 0 ? dl : bin <= sb;
                /* branch-free: write to both ends, advance one of them */
                tmp[l] = row;
                tmp[r - 1] = row;
                l += left;
                r -= 1 - left;
            }
            nleft[c] = l - a;
        }
#pragma omp single
        {
            lpre[0] = rpre[0] = 0;
            for (size_t c = 0; c < nch; c++) {
                size_t a = cnt * c / nch, b = cnt * (c + 1) / nch;
                lpre[c + 1] = lpre[c] + nleft[c];
                rpre[c + 1] = rpre[c] + (b - a - nleft[c]);
            }
        }
#pragma omp for schedule(static)
        for (size_t c = 0; c < nch; c++) {
            size_t a = cnt * c / nch, b = cnt * (c + 1) / nch, nl = nleft[c];
            memcpy(idx + lo + lpre[c], tmp + a, nl * sizeof *idx);
            uint32_t *dst = idx + lo + lpre[nch] + rpre[c];
            for (size_t k = 0; k < b - a - nl; k++) /* right rows were stored reversed */
                dst[k] = tmp[b - 1 - k];
        }
    }
    return lo + lpre[nch];
}

typedef struct gb_nodes {
    lp_gbdt_node *v;
    size_t n, cap;
} gb_nodes;

static int32_t node_push(gb_nodes *nv)
{
    if (nv->n == nv->cap) {
        size_t cap = nv->cap ? nv->cap * 2 : 1024;
        lp_gbdt_node *nn = lp_reallocarray(nv->v, cap, sizeof *nn);
        if (!nn)
            return -1;
        nv->v = nn;
        nv->cap = cap;
    }
    lp_gbdt_node *nd = &nv->v[nv->n];
    memset(nd, 0, sizeof *nd);
    nd->feature = -1;
    nd->left = nd->right = -1;
    return (int32_t)nv->n++;
}

static int can_grow(const gb_train *t, int depth)
{
    return t->o->max_depth == 0 || depth < t->o->max_depth;
}

/* Grow one tree on rows idx[0, m) with gradients gh; append its nodes to nv (root at
 * tree_base) and write its leaf values into margin column k for every row of idx. */
static lp_status grow_tree(gb_train *t, uint32_t *idx, size_t m, const gb_ghf *gh,
                           gb_nodes *nv, size_t tree_base, lp_err *err)
{
    const lp_gbdt_opts *o = t->o;
    const size_t max_leaves = o->max_leaves > 0 ? (size_t)o->max_leaves : SIZE_MAX;
    size_t n_leaves = 1;
    if (node_push(nv) < 0)
        goto nomem;
    gb_leaf *root = &t->leaves[0];
    memset(root, 0, sizeof *root);
    root->begin = 0;
    root->end = m;
    root->node = 0;
    root->hist = hist_get(t);
    if (!root->hist)
        goto nomem;
    hist_build(t, idx, 0, m, gh, root->hist);
    {
        /* every row falls in exactly one bin of feature 0, missing bin included */
        const gb_gh *h0 = root->hist;
        for (uint32_t b = 0; b <= t->bins->nb[0]; b++) {
            root->g += h0[b].g;
            root->h += h0[b].h;
        }
    }
    if (can_grow(t, 0) && max_leaves > 1)
        find_split(t, root->hist, root->g, root->h, &root->best);
    else
        root->best.feature = -1;

    for (;;) {
        if (n_leaves >= max_leaves)
            break;
        size_t pick = SIZE_MAX;
        double best_gain = fmax((double)o->min_split_gain, GB_MIN_GAIN);
        for (size_t i = 0; i < n_leaves; i++) {
            const gb_leaf *lf = &t->leaves[i];
            if (lf->best.feature >= 0 && lf->best.gain > best_gain) {
                best_gain = lf->best.gain;
                pick = i;
            }
        }
        if (pick == SIZE_MAX)
            break;
        if (n_leaves + 1 > t->cap_leaves) {
            size_t cap = t->cap_leaves * 2;
            gb_leaf *nl = lp_reallocarray(t->leaves, cap, sizeof *nl);
            if (!nl)
                goto nomem;
            t->leaves = nl;
            t->cap_leaves = cap;
        }
        gb_leaf *p = &t->leaves[pick];
        gb_split s = p->best;
        int32_t ln = node_push(nv), rn = ln < 0 ? -1 : node_push(nv);
        if (rn < 0)
            goto nomem;
        if (nv->n - tree_base > (size_t)INT32_MAX)
            return lp_err_set(err, LP_ETOOBIG, "gbdt fit: tree has too many nodes");
        lp_gbdt_node *pn = &nv->v[tree_base + (size_t)p->node];
        pn->feature = s.feature;
        pn->threshold = t->bins->cuts[t->bins->cut_off[s.feature] + (uint32_t)s.bin - 1];
        pn->left = ln - (int32_t)tree_base;
        pn->right = rn - (int32_t)tree_base;
        pn->default_left = s.default_left;
        pn->gain = (float)s.gain;
        if (nv->n - tree_base > t->cap_split) {
            size_t cap = 2 * (nv->n - tree_base);
            int32_t *nb = lp_reallocarray(t->split_bin, cap, sizeof *nb);
            if (!nb)
                goto nomem;
            t->split_bin = nb;
            t->cap_split = cap;
        }
        t->split_bin[p->node] = s.bin;

        size_t mid = partition(t, idx, p->begin, p->end, &s);
        gb_leaf L = {.begin = p->begin, .end = mid, .node = pn->left, .depth = p->depth + 1,
                     .g = s.gl, .h = s.hl, .best = {.feature = -1}};
        gb_leaf R = {.begin = mid, .end = p->end, .node = pn->right, .depth = p->depth + 1,
                     .g = s.gr, .h = s.hr, .best = {.feature = -1}};
        gb_gh *ph = p->hist;
        /* Children need histograms only when they may still split. */
        int grow = can_grow(t, p->depth + 1) && n_leaves + 1 < max_leaves;
        if (grow) {
            gb_leaf *small = (mid - p->begin) <= (p->end - mid) ? &L : &R;
            gb_leaf *large = small == &L ? &R : &L;
            small->hist = hist_get(t);
            if (!small->hist) {
                hist_put(t, ph);
                goto nomem;
            }
            hist_build(t, idx, small->begin, small->end, gh, small->hist);
            large->hist = ph; /* parent - small, in place */
            for (uint32_t e = 0; e < t->n_hist; e++) {
                ph[e].g -= small->hist[e].g;
                ph[e].h -= small->hist[e].h;
            }
            find_split(t, L.hist, L.g, L.h, &L.best);
            find_split(t, R.hist, R.g, R.h, &R.best);
            if (L.best.feature < 0) {
                hist_put(t, L.hist);
                L.hist = NULL;
            }
            if (R.best.feature < 0) {
                hist_put(t, R.hist);
                R.hist = NULL;
            }
        } else {
            hist_put(t, ph);
        }
        t->leaves[pick] = L;
        t->leaves[n_leaves++] = R;
    }

    const double lr = o->learning_rate, lambda = o->lambda;
    for (size_t i = 0; i < n_leaves; i++) {
        gb_leaf *lf = &t->leaves[i];
        hist_put(t, lf->hist);
        lf->hist = NULL;
        lp_gbdt_node *nd = &nv->v[tree_base + (size_t)lf->node];
        double w = -lf->g / (lf->h + lambda) * lr;
        if (!isfinite(w))
            return lp_err_set(err, LP_ENUMERIC, "gbdt fit: leaf value is not finite "
                              "(G=%g, H=%g)", lf->g, lf->h);
        nd->value = (float)w;
        nd->cover = lf->h;
    }
    t->n_leaves = n_leaves;
    /* covers of internal nodes: sum of their children's (children follow parents) */
    lp_gbdt_node *tn = nv->v + tree_base;
    size_t cnt = nv->n - tree_base;
    for (size_t i = cnt; i-- > 0;)
        if (tn[i].feature >= 0)
            tn[i].cover = tn[tn[i].left].cover + tn[tn[i].right].cover;
    return LP_OK;

nomem:
    for (size_t i = 0; i < n_leaves; i++) {
        hist_put(t, t->leaves[i].hist);
        t->leaves[i].hist = NULL;
    }
    return lp_err_set(err, LP_ENOMEM, "gbdt fit: out of memory while growing a tree");
}

/* Leaf of binned row r in the tree at tn (split bins in split_bin). */
static int32_t binned_leaf(const gb_train *t, const lp_gbdt_node *tn, size_t r)
{
    const uint8_t *row = t->bins->bins + r * t->d;
    int32_t i = 0;
    while (tn[i].feature >= 0) {
        unsigned b = row[tn[i].feature]; /* row-major: one row's bins share a cache line */
        int left = b == 0 ? tn[i].default_left : b <= (unsigned)t->split_bin[i];
        i = left ? tn[i].left : tn[i].right;
    }
    return i;
}

/* ---- fit ----------------------------------------------------------------------------------*/

static lp_status check_data(const float *y, const float *w, size_t n, const lp_gbdt_opts *o,
                            const char *what, lp_err *err)
{
    for (size_t i = 0; i < n; i++) {
        float v = y[i];
        if (!isfinite(v))
            return lp_err_set(err, LP_EINVAL, "gbdt fit: %s label of row %zu is %g, not a "
                              "finite number", what, i, (double)v);
        if (o->loss == LP_GBDT_LOSS_LOGLOSS && !(v >= 0.0f && v <= 1.0f))
            return lp_err_set(err, LP_EINVAL, "gbdt fit: %s label of row %zu is %g: LOGLOSS "
                              "needs labels in [0, 1]", what, i, (double)v);
        if (o->loss == LP_GBDT_LOSS_SOFTMAX &&
            !(v >= 0.0f && v < (float)o->n_classes && v == floorf(v)))
            return lp_err_set(err, LP_EINVAL, "gbdt fit: %s label of row %zu is %g: SOFTMAX "
                              "needs a class index in 0..%d", what, i, (double)v,
                              o->n_classes - 1);
        if (w && !(isfinite(w[i]) && w[i] >= 0.0f))
            return lp_err_set(err, LP_EINVAL, "gbdt fit: weight of row %zu is %g: must be "
                              "finite and >= 0", i, (double)w[i]);
    }
    return LP_OK;
}

lp_gbdt *gb_model_new(lp_gbdt_loss loss, size_t d, size_t n_out)
{
    lp_gbdt *m = lp_calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->loss = loss;
    m->d = d;
    m->n_out = n_out;
    m->best_valid = NAN;
    m->base = lp_calloc(n_out, sizeof *m->base);
    if (!m->base) {
        free(m);
        return NULL;
    }
    return m;
}

static void train_free(gb_train *t)
{
    for (size_t i = 0; i < t->n_owned; i++)
        free(t->owned[i]);
    free(t->owned);
    free(t->pool);
    free(t->scratch);
    free(t->tmp);
    free(t->colmask);
    free(t->leaves);
    free(t->split_bin);
}

static lp_status gbdt_fit(const lp_gbdt *init, const float *X, const float *y,
                          const float *weight, size_t n, size_t d, const lp_gbdt_opts *opts,
                          const float *X_valid, const float *y_valid, size_t n_valid,
                          lp_gbdt **out, lp_err *err);

lp_status lp_gbdt_fit(const float *X, const float *y, const float *weight, size_t n, size_t d,
                      const lp_gbdt_opts *opts, const float *X_valid, const float *y_valid,
                      size_t n_valid, lp_gbdt **out, lp_err *err)
{
    return gbdt_fit(NULL, X, y, weight, n, d, opts, X_valid, y_valid, n_valid, out, err);
}

lp_status lp_gbdt_fit_continue(const lp_gbdt *init, const float *X, const float *y,
                               const float *weight, size_t n, size_t d, const lp_gbdt_opts *opts,
                               const float *X_valid, const float *y_valid, size_t n_valid,
                               lp_gbdt **out, lp_err *err)
{
    if (out)
        *out = NULL;
    if (!init)
        return lp_err_set(err, LP_EINVAL, "gbdt continue: the base model must not be NULL");
    if (!opts || init->loss != opts->loss || init->d != d ||
        (opts->loss == LP_GBDT_LOSS_SOFTMAX && init->n_out != (size_t)opts->n_classes))
        return lp_err_set(err, LP_EINVAL, "gbdt continue: the base model has loss %d, %zu "
                          "features, %zu outputs; the new fit asks for loss %d, %zu features",
                          (int)init->loss, init->d, init->n_out, opts ? (int)opts->loss : -1, d);
    return gbdt_fit(init, X, y, weight, n, d, opts, X_valid, y_valid, n_valid, out, err);
}

static lp_status gbdt_fit(const lp_gbdt *init, const float *X, const float *y,
                          const float *weight, size_t n, size_t d, const lp_gbdt_opts *opts,
                          const float *X_valid, const float *y_valid, size_t n_valid,
                          lp_gbdt **out, lp_err *err)
{
    if (out)
        *out = NULL;
    if (!X || !y || !out)
        return lp_err_set(err, LP_EINVAL, "gbdt fit: X, y and out must not be NULL");
    if (n == 0 || d == 0)
        return lp_err_set(err, LP_EINVAL, "gbdt fit: empty training set (%zu rows, %zu "
                          "features)", n, d);
    if (n > UINT32_MAX)
        return lp_err_set(err, LP_ETOOBIG, "gbdt fit: %zu rows: at most %u supported", n,
                          UINT32_MAX);
    lp_status st = lp_gbdt_opts_check(opts, err);
    if (st)
        return st;
    const lp_gbdt_opts *o = opts;
    if (n_valid > 0 && (!X_valid || !y_valid))
        return lp_err_set(err, LP_EINVAL, "gbdt fit: n_valid=%zu but X_valid or y_valid is "
                          "NULL", n_valid);
    if (o->early_stopping_rounds > 0 && n_valid == 0)
        return lp_err_set(err, LP_EINVAL, "gbdt fit: early_stopping_rounds=%d needs a "
                          "validation set", o->early_stopping_rounds);
    if ((st = check_data(y, weight, n, o, "training", err)))
        return st;
    if (n_valid > 0 && (st = check_data(y_valid, NULL, n_valid, o, "validation", err)))
        return st;

    const size_t K = o->loss == LP_GBDT_LOSS_SOFTMAX ? (size_t)o->n_classes : 1;
    const int nt = o->n_threads > 0 ? o->n_threads : omp_get_max_threads();
    lp_gbdt *m = NULL;
    gb_bins bins;
    memset(&bins, 0, sizeof bins);
    gb_train t;
    memset(&t, 0, sizeof t);
    gb_nodes nv = {0};
    size_t *tree_off = NULL, n_trees = 0;
    double *margin = NULL, *vmargin = NULL, *vhist = NULL;
    gb_ghf *gh = NULL;
    uint32_t *sample = NULL, *oob = NULL, *idx = NULL;
    size_t *cols = NULL;

    /* base score */
    double wsum = 0.0;
    double *prior = lp_calloc(K, sizeof *prior);
    m = gb_model_new(o->loss, d, K);
    if (!prior || !m)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        double w = weight ? weight[i] : 1.0;
        wsum += w;
        if (o->loss == LP_GBDT_LOSS_SOFTMAX)
            prior[(size_t)y[i]] += w;
        else
            prior[0] += w * y[i];
    }
    if (!(wsum > 0.0)) {
        free(prior);
        lp_gbdt_free(m);
        return lp_err_set(err, LP_EINVAL, "gbdt fit: weights sum to %g: need a positive sum",
                          wsum);
    }
    for (size_t k = 0; k < K; k++) {
        double p = prior[k] / wsum;
        if (o->loss == LP_GBDT_LOSS_L2)
            m->base[k] = p;
        else if (o->loss == LP_GBDT_LOSS_LOGLOSS) {
            p = fmin(fmax(p, 1e-6), 1.0 - 1e-6);
            m->base[k] = log(p / (1.0 - p));
        } else
            m->base[k] = log(fmax(p, 1e-6));
    }
    if (!isnan(o->base_score)) /* checked: L2 or LOGLOSS with a probability in (0, 1) */
        m->base[0] = o->loss == LP_GBDT_LOSS_L2
                         ? (double)o->base_score
                         : log((double)o->base_score / (1.0 - (double)o->base_score));
    free(prior);
    prior = NULL;
    for (size_t k = 0; init && k < K; k++)
        m->base[k] = init->base[k]; /* continued boosting starts from the base's scores */

    st = gb_bins_build(X, n, d, o->max_bins, o->bin_sample, o->seed, nt, &bins, err);
    if (st) {
        lp_gbdt_free(m);
        return st;
    }
    t.o = o;
    t.bins = &bins;
    t.n = n;
    t.d = d;
    t.K = K;
    t.nt = nt;
    t.n_hist = bins.off[d];
    t.cap_leaves = o->max_leaves > 0 ? (size_t)o->max_leaves : 64;
    t.cap_split = 2 * t.cap_leaves;
    /* block histograms take at most GB_SCRATCH_BYTES (a function of d and the bins only,
     * so determinism across thread counts holds) */
    t.max_blocks = GB_SCRATCH_BYTES / ((size_t)t.n_hist * sizeof(gb_gh));
    t.max_blocks = t.max_blocks < 1 ? 1 : t.max_blocks > GB_MAX_BLOCKS ? GB_MAX_BLOCKS
                                                                         : t.max_blocks;
    t.scratch = lp_mallocarray(t.max_blocks * t.n_hist, sizeof *t.scratch);
    t.tmp = lp_mallocarray(n, sizeof *t.tmp);
    t.colmask = lp_calloc(d, 1);
    t.leaves = lp_mallocarray(t.cap_leaves, sizeof *t.leaves);
    t.split_bin = lp_calloc(t.cap_split, sizeof *t.split_bin);
    margin = lp_mallocarray(n, K * sizeof *margin);
    gh = lp_mallocarray(n, K * sizeof *gh);
    sample = lp_mallocarray(n, sizeof *sample);
    oob = lp_mallocarray(n, sizeof *oob);
    idx = lp_mallocarray(n, sizeof *idx);
    cols = lp_mallocarray(d, sizeof *cols);
    tree_off = lp_mallocarray((size_t)o->n_rounds * K + 1, sizeof *tree_off);
    if (n_valid > 0) {
        vmargin = lp_mallocarray(n_valid, K * sizeof *vmargin);
        vhist = lp_mallocarray((size_t)o->n_rounds, sizeof *vhist);
    }
    if (!t.scratch || !t.tmp || !t.colmask || !t.leaves || !t.split_bin || !margin || !gh ||
        !sample || !oob || !idx || !cols || !tree_off || (n_valid > 0 && (!vmargin || !vhist)))
        goto nomem;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < K; k++)
            margin[i * K + k] = m->base[k];
    for (size_t i = 0; i < n_valid; i++)
        for (size_t k = 0; k < K; k++)
            vmargin[i * K + k] = m->base[k];
    if (init) {
        const size_t T0 = init->n_rounds * K;
#pragma omp parallel for schedule(static) num_threads(nt)
        for (size_t i = 0; i < n; i++)
            for (size_t t0 = 0; t0 < T0; t0++)
                margin[i * K + t0 % K] += gb_tree_value(init, t0, X + i * d);
#pragma omp parallel for schedule(static) num_threads(nt)
        for (size_t i = 0; i < n_valid; i++)
            for (size_t t0 = 0; t0 < T0; t0++)
                vmargin[i * K + t0 % K] += gb_tree_value(init, t0, X_valid + i * d);
    }
    tree_off[0] = 0;

    lp_rng rng;
    lp_rng_seed(&rng, o->seed ^ 0x9e3779b97f4a7c15ULL);
    size_t ncol = (size_t)ceil((double)o->colsample * (double)d);
    if (ncol < 1)
        ncol = 1;
    if (ncol > d)
        ncol = d;
    size_t best_round = 0, n_trained = 0;
    double best_loss = INFINITY;
    lp_progress *prog = lp_progress_begin("gbdt fit", (uint64_t)o->n_rounds);

    for (int round = 0; round < o->n_rounds; round++) {
        /* gradients (n, K) at the current margins */
        int bad = 0;
        if (K == 1) {
            const lp_gbdt_loss loss = o->loss;
#pragma omp parallel for schedule(static) num_threads(nt) reduction(| : bad)
            for (size_t i = 0; i < n; i++) {
                double g, h, w = weight ? weight[i] : 1.0;
                if (loss == LP_GBDT_LOSS_L2) {
                    g = margin[i] - (double)y[i];
                    h = 1.0;
                } else {
                    /* no branch on the sign (unpredictable); exp overflow gives p = 0 */
                    double p = 1.0 / (1.0 + exp(-margin[i]));
                    g = p - (double)y[i];
                    h = fmax(p * (1.0 - p), GB_MIN_HESS);
                }
                gh[i].g = (float)(g * w);
                gh[i].h = (float)(h * w);
                bad |= !isfinite(gh[i].g) || !isfinite(gh[i].h);
            }
        } else {
#pragma omp parallel for schedule(static) num_threads(nt) reduction(| : bad)
            for (size_t i = 0; i < n; i++) {
                double g[K], h[K];
                lp_gbdt_loss_grad(o->loss, (int)K, margin + i * K, y[i], g, h);
                double w = weight ? weight[i] : 1.0;
                for (size_t k = 0; k < K; k++) {
                    gh[k * n + i].g = (float)(g[k] * w);
                    gh[k * n + i].h = (float)(h[k] * w);
                    bad |= !isfinite(gh[k * n + i].g) || !isfinite(gh[k * n + i].h);
                }
            }
        }
        if (bad) {
            lp_progress_end(prog);
            st = lp_err_set(err, LP_ENUMERIC, "gbdt fit: round %d: gradient or hessian is not "
                            "finite", round);
            goto fail;
        }
        /* row sample (bagging) shared by the round's K trees */
        size_t ns = 0, no = 0;
        if (o->subsample < 1.0f) {
            for (size_t i = 0; i < n; i++) {
                if (lp_rng_uniform(&rng) < (double)o->subsample)
                    sample[ns++] = (uint32_t)i;
                else
                    oob[no++] = (uint32_t)i;
            }
            if (ns == 0)
                sample[ns++] = oob[--no];
        } else {
            for (size_t i = 0; i < n; i++)
                sample[i] = (uint32_t)i;
            ns = n;
        }
        for (size_t k = 0; k < K; k++) {
            /* column sample of this tree */
            for (size_t j = 0; j < d; j++)
                cols[j] = j;
            if (ncol < d) {
                for (size_t j = 0; j < ncol; j++) {
                    size_t r = j + (size_t)lp_rng_below(&rng, d - j);
                    size_t tmp = cols[j];
                    cols[j] = cols[r];
                    cols[r] = tmp;
                }
            }
            memset(t.colmask, 0, d);
            for (size_t j = 0; j < ncol; j++)
                t.colmask[cols[j]] = 1;

            memcpy(idx, sample, ns * sizeof *idx);
            size_t base = nv.n;
            const gb_ghf *ghk = gh + k * n;
            st = grow_tree(&t, idx, ns, ghk, &nv, base, err);
            if (st) {
                lp_progress_end(prog);
                goto fail;
            }
            const lp_gbdt_node *tn = nv.v + base;
            /* in-sample rows: the final leaves' ranges of idx; out-of-sample: walk the bins */
            const gb_leaf *lv = t.leaves;
            const size_t nl = t.n_leaves;
#pragma omp parallel num_threads(nt)
            {
#pragma omp for schedule(dynamic, 1)
                for (size_t li = 0; li < nl; li++) {
                    double v = tn[lv[li].node].value;
                    for (size_t i = lv[li].begin; i < lv[li].end; i++)
                        margin[(size_t)idx[i] * K + k] += v;
                }
#pragma omp for schedule(static)
                for (size_t i = 0; i < no; i++)
                    margin[(size_t)oob[i] * K + k] += tn[binned_leaf(&t, tn, oob[i])].value;
#pragma omp for schedule(static)
                for (size_t i = 0; i < n_valid; i++)
                    vmargin[i * K + k] += tn[gb_tree_leaf(tn, X_valid + i * d)].value;
            }
            n_trees++;
            tree_off[n_trees] = nv.n;
        }
        n_trained = (size_t)round + 1;
        lp_progress_update(prog, n_trained);
        if (n_valid > 0) {
            double loss = eval_loss(o->loss, K, vmargin, y_valid, n_valid);
            vhist[round] = loss;
            if (loss < best_loss) {
                best_loss = loss;
                best_round = (size_t)round;
            } else if (o->early_stopping_rounds > 0 &&
                       (size_t)round - best_round >= (size_t)o->early_stopping_rounds) {
                break;
            }
        }
    }
    lp_progress_end(prog);

    size_t kept = n_trained;
    if (n_valid > 0) {
        if (o->early_stopping_rounds > 0)
            kept = best_round + 1;
        m->best_valid = vhist[kept - 1];
        m->valid_hist = vhist;
        m->n_valid_hist = n_trained;
        vhist = NULL;
    }
    m->n_rounds = kept;
    size_t nn = tree_off[kept * K];
    if (init) {
        /* the base's trees first, then the new ones (node indices are tree-relative) */
        const size_t T0 = init->n_rounds * K, nn0 = init->tree_off[T0];
        lp_gbdt_node *all = lp_mallocarray(nn0 + nn + 1, sizeof *all);
        size_t *off = lp_mallocarray(T0 + kept * K + 1, sizeof *off);
        if (!all || !off) {
            free(all);
            free(off);
            goto nomem;
        }
        memcpy(all, init->nodes, nn0 * sizeof *all);
        memcpy(all + nn0, nv.v, nn * sizeof *all);
        memcpy(off, init->tree_off, (T0 + 1) * sizeof *off);
        for (size_t t1 = 1; t1 <= kept * K; t1++)
            off[T0 + t1] = nn0 + tree_off[t1];
        m->nodes = all;
        m->tree_off = off;
        m->n_rounds = init->n_rounds + kept;
    } else {
        m->nodes = lp_reallocarray(nv.v, nn ? nn : 1, sizeof *m->nodes);
        if (!m->nodes)
            goto nomem;
        nv.v = NULL;
        m->tree_off = tree_off;
        tree_off = NULL;
    }
    m->n_threads = o->n_threads;
    if ((st = gb_model_finish(m, err)))
        goto fail;
    *out = m;
    m = NULL;
    st = LP_OK;
    goto done;

nomem:
    st = lp_err_set(err, LP_ENOMEM, "gbdt fit: out of memory (%zu rows, %zu features)", n, d);
fail:
done:
    train_free(&t);
    gb_bins_free(&bins);
    free(nv.v);
    free(tree_off);
    free(margin);
    free(vmargin);
    free(vhist);
    free(gh);
    free(sample);
    free(oob);
    free(idx);
    free(cols);
    lp_gbdt_free(m);
    return st;
}
