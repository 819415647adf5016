/*
 * gbdt_model.c - a fitted lp_gbdt: prediction (batch and single row), feature importance,
 * accessors, and the versioned binary format (save / load).
 *
 * Prediction walks every tree with float comparisons (x <= threshold goes left, NaN takes the
 * learned default side) over a compact 16-byte-node copy of the trees, and sums leaf values
 * in double on top of the base margin in one fixed order (single output: four interleaved
 * partial sums over trees t mod 4, for instruction-level parallelism), so a row gets the same
 * bits from the batch path, the single-row path and a reloaded model. Loading trusts nothing:
 * sizes are checked against the bytes left, every child index must point forward inside its
 * tree and every feature index must be < d, then the CRC.
 */
#include "model/gbdt_int.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#define GB_MAGIC 0x4247504cu /* "LPGB" little-endian */
#define GB_VERSION 1u
/* Rows predicted together tree by tree in batch mode: keeps a tree hot in cache. */
#define GB_PREDICT_BLOCK 64

void lp_gbdt_free(lp_gbdt *m)
{
    if (!m)
        return;
    free(m->base);
    free(m->nodes);
    free(m->tree_off);
    free(m->valid_hist);
    free(m->pnodes);
    free(m->pnode_off);
    free(m->leafv);
    free(m->leaf_off);
    free(m);
}

lp_status gb_model_finish(lp_gbdt *m, lp_err *err)
{
    const size_t nt = m->n_rounds * m->n_out, nn = m->tree_off[nt];
    size_t n_int = 0;
    for (size_t i = 0; i < nn; i++)
        n_int += m->nodes[i].feature >= 0;
    free(m->pnodes);
    free(m->pnode_off);
    free(m->leafv);
    free(m->leaf_off);
    m->pnodes = lp_mallocarray(n_int ? n_int : 1, sizeof *m->pnodes);
    m->leafv = lp_mallocarray(nn - n_int ? nn - n_int : 1, sizeof *m->leafv);
    m->pnode_off = lp_mallocarray(nt + 1, sizeof *m->pnode_off);
    m->leaf_off = lp_mallocarray(nt + 1, sizeof *m->leaf_off);
    int32_t *map = lp_mallocarray(nn ? nn : 1, sizeof *map); /* node -> child code */
    if (!m->pnodes || !m->leafv || !m->pnode_off || !m->leaf_off || !map) {
        free(map);
        return lp_err_set(err, LP_ENOMEM, "gbdt: out of memory for the prediction layout");
    }
    size_t pi = 0, li = 0;
    for (size_t t = 0; t < nt; t++) {
        const lp_gbdt_node *tn = m->nodes + m->tree_off[t];
        size_t cnt = m->tree_off[t + 1] - m->tree_off[t];
        m->pnode_off[t] = pi;
        m->leaf_off[t] = li;
        int32_t ni = 0, nl = 0;
        for (size_t i = 0; i < cnt; i++)
            map[i] = tn[i].feature >= 0 ? ni++ : ~nl++;
        for (size_t i = 0; i < cnt; i++) {
            if (tn[i].feature >= 0) {
                gb_pnode *p = &m->pnodes[pi + (size_t)map[i]];
                p->fdl = (uint32_t)tn[i].feature | (uint32_t)(tn[i].default_left ? 1u << 31 : 0);
                p->thr = tn[i].threshold;
                p->child[0] = map[tn[i].left];
                p->child[1] = map[tn[i].right];
            } else {
                m->leafv[li + (size_t)~map[i]] = tn[i].value;
            }
        }
        pi += (size_t)ni;
        li += (size_t)nl;
    }
    m->pnode_off[nt] = pi;
    m->leaf_off[nt] = li;
    free(map);
    return LP_OK;
}

void lp_gbdt_set_threads(lp_gbdt *m, int n_threads)
{
    if (m)
        m->n_threads = n_threads > 0 ? n_threads : 0;
}

/* Raw margin of a single-output model: four interleaved partial sums over trees t mod 4,
 * the remainder trees added to the first, combined as base + ((s0 + s1) + (s2 + s3)). The
 * batch and single-row paths both call this, so they agree bit for bit. */
static double single_output(const lp_gbdt *m, const float *x)
{
    const size_t nt = m->n_rounds;
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    gb_tree_sum4(m, 0, nt / 4, x, s);
    for (size_t t = nt / 4 * 4; t < nt; t++)
        s[0] += gb_tree_value(m, t, x);
    return m->base[0] + ((s[0] + s[1]) + (s[2] + s[3]));
}

void lp_gbdt_predict_row_raw(const lp_gbdt *m, const float *x, float *out)
{
    const size_t K = m->n_out;
    double acc[K];
    for (size_t k = 0; k < K; k++)
        acc[k] = m->base[k];
    const size_t nt = m->n_rounds * K;
    if (K == 1) {
        out[0] = (float)single_output(m, x);
        return;
    }
    for (size_t t = 0; t < nt; t++)
        acc[t % K] += gb_tree_value(m, t, x);
    for (size_t k = 0; k < K; k++)
        out[k] = (float)acc[k];
}

lp_status lp_gbdt_predict_raw(const lp_gbdt *m, const float *X, size_t n, float *out,
                              lp_err *err)
{
    if (!m || (n > 0 && (!X || !out)))
        return lp_err_set(err, LP_EINVAL, "gbdt predict: model, X and out must not be NULL");
    if (n == 1) {
        /* one row (serving): the same sums as the block below, without entering OpenMP */
        lp_gbdt_predict_row_raw(m, X, out);
        return LP_OK;
    }
    const size_t K = m->n_out, d = m->d, ntree = m->n_rounds * K;
    /* many outputs: fewer rows per block, so acc stays <= 64 KiB of stack */
    const size_t rows = K <= 8 ? GB_PREDICT_BLOCK : 8;
    const size_t nblk = (n + rows - 1) / rows;
    int nt = m->n_threads > 0 ? m->n_threads : omp_get_max_threads();
#pragma omp parallel for schedule(static) num_threads(nt) if (nblk > 1)
    for (size_t b = 0; b < nblk; b++) {
        size_t lo = b * rows, hi = lo + rows < n ? lo + rows : n;
        double acc[rows * K];
        for (size_t i = lo; i < hi; i++)
            for (size_t k = 0; k < K; k++)
                acc[(i - lo) * K + k] = m->base[k];
        if (K == 1) {
            for (size_t i = lo; i < hi; i++)
                acc[i - lo] = single_output(m, X + i * d);
        } else {
            for (size_t t = 0; t < ntree; t++) {
                size_t k = t % K;
                for (size_t i = lo; i < hi; i++)
                    acc[(i - lo) * K + k] += gb_tree_value(m, t, X + i * d);
            }
        }
        for (size_t i = lo; i < hi; i++)
            for (size_t k = 0; k < K; k++)
                out[i * K + k] = (float)acc[(i - lo) * K + k];
    }
    return LP_OK;
}

lp_status lp_gbdt_predict(const lp_gbdt *m, const float *X, size_t n, float *out, lp_err *err)
{
    lp_status st = lp_gbdt_predict_raw(m, X, n, out, err);
    if (st)
        return st;
    const size_t K = m->n_out;
    if (m->loss == LP_GBDT_LOSS_LOGLOSS) {
        for (size_t i = 0; i < n; i++) {
            double z = out[i];
            out[i] = (float)(z >= 0 ? 1.0 / (1.0 + exp(-z)) : exp(z) / (1.0 + exp(z)));
        }
    } else if (m->loss == LP_GBDT_LOSS_SOFTMAX) {
        for (size_t i = 0; i < n; i++) {
            float *r = out + i * K;
            double mx = r[0], s = 0.0;
            for (size_t k = 1; k < K; k++)
                mx = fmax(mx, r[k]);
            for (size_t k = 0; k < K; k++)
                s += exp(r[k] - mx);
            for (size_t k = 0; k < K; k++)
                r[k] = (float)(exp(r[k] - mx) / s);
        }
    }
    return LP_OK;
}

void lp_gbdt_feature_importance(const lp_gbdt *m, lp_gbdt_importance kind, double *out)
{
    memset(out, 0, m->d * sizeof *out);
    size_t nn = m->tree_off[m->n_rounds * m->n_out];
    for (size_t i = 0; i < nn; i++) {
        const lp_gbdt_node *nd = &m->nodes[i];
        if (nd->feature >= 0)
            out[nd->feature] += kind == LP_GBDT_IMPORTANCE_GAIN ? (double)nd->gain : 1.0;
    }
}

lp_gbdt_loss lp_gbdt_loss_of(const lp_gbdt *m) { return m->loss; }
size_t lp_gbdt_n_features(const lp_gbdt *m) { return m->d; }
size_t lp_gbdt_n_outputs(const lp_gbdt *m) { return m->n_out; }
size_t lp_gbdt_n_rounds(const lp_gbdt *m) { return m->n_rounds; }
size_t lp_gbdt_n_trees(const lp_gbdt *m) { return m->n_rounds * m->n_out; }
double lp_gbdt_best_valid_loss(const lp_gbdt *m) { return m->best_valid; }

double lp_gbdt_base_score(const lp_gbdt *m, size_t k)
{
    return k < m->n_out ? m->base[k] : NAN;
}

const lp_gbdt_node *lp_gbdt_tree(const lp_gbdt *m, size_t t, size_t *n_nodes)
{
    if (t >= m->n_rounds * m->n_out) {
        if (n_nodes)
            *n_nodes = 0;
        return NULL;
    }
    if (n_nodes)
        *n_nodes = m->tree_off[t + 1] - m->tree_off[t];
    return m->nodes + m->tree_off[t];
}

const double *lp_gbdt_valid_history(const lp_gbdt *m, size_t *n)
{
    if (n)
        *n = m->n_valid_hist;
    return m->valid_hist;
}

/* ---- serialisation ------------------------------------------------------------------------*/

/* Bytes of one serialised node. */
#define GB_NODE_BYTES (4 + 4 + 4 + 4 + 1 + 4 + 4 + 8)

lp_status lp_gbdt_save(const lp_gbdt *m, lp_buf *b, lp_err *err)
{
    if (!m || !b)
        return lp_err_set(err, LP_EINVAL, "gbdt save: model and buffer must not be NULL");
    size_t start = b->len;
    lp_buf_u32(b, GB_MAGIC);
    lp_buf_u32(b, GB_VERSION);
    lp_buf_u32(b, (uint32_t)m->loss);
    lp_buf_u32(b, (uint32_t)m->n_out);
    lp_buf_u64(b, (uint64_t)m->d);
    lp_buf_u64(b, (uint64_t)m->n_rounds);
    for (size_t k = 0; k < m->n_out; k++)
        lp_buf_f64(b, m->base[k]);
    lp_buf_f64(b, m->best_valid);
    size_t ntree = m->n_rounds * m->n_out;
    for (size_t t = 0; t < ntree; t++) {
        size_t lo = m->tree_off[t], hi = m->tree_off[t + 1];
        lp_buf_u32(b, (uint32_t)(hi - lo));
        for (size_t i = lo; i < hi; i++) {
            const lp_gbdt_node *nd = &m->nodes[i];
            lp_buf_u32(b, (uint32_t)nd->feature);
            lp_buf_f32(b, nd->threshold);
            lp_buf_u32(b, (uint32_t)nd->left);
            lp_buf_u32(b, (uint32_t)nd->right);
            lp_buf_u8(b, nd->default_left);
            lp_buf_f32(b, nd->value);
            lp_buf_f32(b, nd->gain);
            lp_buf_f64(b, nd->cover);
        }
    }
    lp_status st = lp_buf_status(b, err);
    if (st)
        return st;
    lp_buf_u32(b, lp_crc32(0, b->data + start, b->len - start));
    return lp_buf_status(b, err);
}

static lp_status node_read(lp_reader *r, lp_gbdt_node *nd, lp_err *err)
{
    uint32_t f, l, rt;
    lp_status st;
    if ((st = lp_reader_u32(r, &f, err)) || (st = lp_reader_f32(r, &nd->threshold, err)) ||
        (st = lp_reader_u32(r, &l, err)) || (st = lp_reader_u32(r, &rt, err)) ||
        (st = lp_reader_u8(r, &nd->default_left, err)) ||
        (st = lp_reader_f32(r, &nd->value, err)) || (st = lp_reader_f32(r, &nd->gain, err)) ||
        (st = lp_reader_f64(r, &nd->cover, err)))
        return st;
    nd->feature = (int32_t)f;
    nd->left = (int32_t)l;
    nd->right = (int32_t)rt;
    return LP_OK;
}

lp_status lp_gbdt_load(lp_reader *r, lp_gbdt **out, lp_err *err)
{
    if (!r || !out)
        return lp_err_set(err, LP_EINVAL, "gbdt load: reader and out must not be NULL");
    *out = NULL;
    const char *what = r->what ? r->what : "gbdt model";
    size_t start = r->pos;
    uint32_t magic, version, loss, n_out;
    uint64_t d, rounds;
    lp_status st;
    if ((st = lp_reader_u32(r, &magic, err)))
        return st;
    if (magic != GB_MAGIC)
        return lp_err_set(err, LP_EFORMAT, "%s: byte %zu: not a gbdt model (bad magic 0x%08x)",
                          what, start, magic);
    if ((st = lp_reader_u32(r, &version, err)))
        return st;
    if (version != GB_VERSION)
        return lp_err_set(err, LP_EVERSION, "%s: gbdt format version %u, this build reads %u",
                          what, version, GB_VERSION);
    if ((st = lp_reader_u32(r, &loss, err)) || (st = lp_reader_u32(r, &n_out, err)) ||
        (st = lp_reader_u64(r, &d, err)) || (st = lp_reader_u64(r, &rounds, err)))
        return st;
    if (loss > LP_GBDT_LOSS_SOFTMAX)
        return lp_err_set(err, LP_EFORMAT, "%s: unknown gbdt loss %u", what, loss);
    if ((loss == LP_GBDT_LOSS_SOFTMAX ? (n_out < 2 || n_out > 1024) : n_out != 1))
        return lp_err_set(err, LP_EFORMAT, "%s: %u outputs do not fit loss %u", what, n_out,
                          loss);
    if (d == 0 || d > INT32_MAX)
        return lp_err_set(err, LP_EFORMAT, "%s: feature count %llu out of range", what,
                          (unsigned long long)d);
    size_t left = r->len - r->pos;
    /* every tree takes at least 4 + GB_NODE_BYTES bytes */
    if (rounds > left / n_out / (4 + GB_NODE_BYTES))
        return lp_err_set(err, LP_EFORMAT, "%s: %llu rounds do not fit in %zu bytes", what,
                          (unsigned long long)rounds, left);
    lp_gbdt *m = gb_model_new((lp_gbdt_loss)loss, (size_t)d, n_out);
    if (!m)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
    m->n_rounds = (size_t)rounds;
    size_t ntree = (size_t)rounds * n_out;
    m->tree_off = lp_mallocarray(ntree + 1, sizeof *m->tree_off);
    if (!m->tree_off) {
        st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
        goto fail;
    }
    m->tree_off[0] = 0;
    for (size_t k = 0; k < n_out; k++)
        if ((st = lp_reader_f64(r, &m->base[k], err)))
            goto fail;
    if ((st = lp_reader_f64(r, &m->best_valid, err)))
        goto fail;
    size_t cap = 0;
    for (size_t t = 0; t < ntree; t++) {
        uint32_t nn;
        if ((st = lp_reader_u32(r, &nn, err)))
            goto fail;
        if (nn == 0 || nn > (r->len - r->pos) / GB_NODE_BYTES) {
            st = lp_err_set(err, LP_EFORMAT, "%s: tree %zu claims %u nodes, %zu bytes left",
                            what, t, nn, r->len - r->pos);
            goto fail;
        }
        size_t base = m->tree_off[t];
        if (base + nn > cap) {
            size_t nc = cap ? cap : 1024;
            while (nc < base + nn)
                nc *= 2;
            lp_gbdt_node *nv = lp_reallocarray(m->nodes, nc, sizeof *nv);
            if (!nv) {
                st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
                goto fail;
            }
            m->nodes = nv;
            cap = nc;
        }
        for (uint32_t i = 0; i < nn; i++) {
            lp_gbdt_node *nd = &m->nodes[base + i];
            if ((st = node_read(r, nd, err)))
                goto fail;
            int ok;
            if (nd->feature == -1)
                ok = nd->left == -1 && nd->right == -1 && isfinite(nd->value);
            else
                ok = nd->feature >= 0 && (uint64_t)nd->feature < d &&
                     nd->left > (int32_t)i && (uint32_t)nd->left < nn &&
                     nd->right > (int32_t)i && (uint32_t)nd->right < nn &&
                     !isnan(nd->threshold) && nd->default_left <= 1;
            if (!ok) {
                st = lp_err_set(err, LP_EFORMAT, "%s: tree %zu node %u is inconsistent "
                                "(feature %d, children %d/%d)", what, t, i, nd->feature,
                                nd->left, nd->right);
                goto fail;
            }
        }
        m->tree_off[t + 1] = base + nn;
    }
    if (!m->nodes) {
        m->nodes = lp_calloc(1, sizeof *m->nodes);
        if (!m->nodes) {
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
            goto fail;
        }
    }
    uint32_t crc_want = lp_crc32(0, r->data + start, r->pos - start), crc;
    if ((st = lp_reader_u32(r, &crc, err)))
        goto fail;
    if (crc != crc_want) {
        st = lp_err_set(err, LP_EFORMAT, "%s: gbdt model checksum mismatch (stored 0x%08x, "
                        "computed 0x%08x)", what, crc, crc_want);
        goto fail;
    }
    if ((st = gb_model_finish(m, err)))
        goto fail;
    *out = m;
    return LP_OK;
fail:
    lp_gbdt_free(m);
    return st;
}
