/*
 * csrb.c - the private row-by-row CSR builder and (column, value) merging used by the text
 * vectorizers and the feature pipeline.
 *
 * A failed allocation sets `failed`; later pushes are ignored and finish returns NULL, so a
 * caller checks once at the end.
 */
#include "text/text_internal.h"

#include <stdlib.h>

lp_status lp_csrb_init(lp_csrb *b, size_t rows, size_t cols)
{
    b->cap = 0;
    b->row = 0;
    b->failed = false;
    b->m = lp_csr_new(rows, cols, 0);
    if (!b->m) {
        b->failed = true;
        return LP_ENOMEM;
    }
    return LP_OK;
}

void lp_csrb_push(lp_csrb *b, uint32_t col, float v)
{
    if (b->failed)
        return;
    lp_csr *m = b->m;
    if (m->nnz == b->cap) {
        size_t nc = b->cap ? 2 * b->cap : 256;
        uint32_t *ni = lp_reallocarray(m->indices, nc, sizeof(uint32_t));
        if (ni)
            m->indices = ni;
        float *nv = lp_reallocarray(m->values, nc, sizeof(float));
        if (nv)
            m->values = nv;
        if (!ni || !nv) {
            b->failed = true;
            return;
        }
        b->cap = nc;
    }
    m->indices[m->nnz] = col;
    m->values[m->nnz++] = v;
}

void lp_csrb_end_row(lp_csrb *b)
{
    if (b->failed || b->row >= b->m->rows)
        return;
    b->m->indptr[++b->row] = b->m->nnz;
}

lp_csr *lp_csrb_finish(lp_csrb *b)
{
    if (b->failed) {
        lp_csrb_free(b);
        return NULL;
    }
    lp_csr *m = b->m;
    b->m = NULL;
    return m;
}

void lp_csrb_free(lp_csrb *b)
{
    lp_csr_free(b->m);
    b->m = NULL;
}

static int cmp_colval(const void *x, const void *y)
{
    const lp_colval *a = x, *c = y;
    return (a->col > c->col) - (a->col < c->col);
}

size_t lp_colval_merge(lp_colval *e, size_t n)
{
    if (!n)
        return 0;
    qsort(e, n, sizeof *e, cmp_colval);
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w && e[w - 1].col == e[i].col)
            e[w - 1].v += e[i].v;
        else
            e[w++] = e[i];
    }
    size_t k = 0;
    for (size_t i = 0; i < w; i++)
        if (e[i].v != 0)
            e[k++] = e[i];
    return k;
}
