/*
 * sparse.c - the lp_csr compressed-sparse-row matrix: allocation, transpose, densify, row L2
 * scaling and an invariant check for matrices that come from outside (deserialised or user-built).
 *
 * No arithmetic beyond what feature extraction needs lives here (no sparse products).
 * Invariants: see linalg.h (indptr monotone, indptr[rows] == nnz, indices strictly increasing
 * within a row and < cols).
 */
#include "lepton/linalg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

lp_csr *lp_csr_new(size_t rows, size_t cols, size_t nnz)
{
    lp_csr *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->rows = rows;
    m->cols = cols;
    m->nnz = nnz;
    m->indptr = lp_calloc(rows + 1, sizeof(size_t));
    m->indices = lp_mallocarray(nnz ? nnz : 1, sizeof(uint32_t));
    m->values = lp_mallocarray(nnz ? nnz : 1, sizeof(float));
    if (!m->indptr || !m->indices || !m->values) {
        lp_csr_free(m);
        return NULL;
    }
    return m;
}

void lp_csr_free(lp_csr *m)
{
    if (!m)
        return;
    free(m->indptr);
    free(m->indices);
    free(m->values);
    free(m);
}

lp_csr *lp_csr_transpose(const lp_csr *m)
{
    size_t nnz = m->indptr[m->rows];
    lp_csr *t = lp_csr_new(m->cols, m->rows, nnz);
    size_t *next = lp_mallocarray(m->cols ? m->cols : 1, sizeof(size_t));
    if (!t || !next) {
        lp_csr_free(t);
        free(next);
        return NULL;
    }
    /* counting sort by column: each column's entries come in row order */
    for (size_t p = 0; p < nnz; p++)
        t->indptr[m->indices[p] + 1]++;
    for (size_t c = 0; c < m->cols; c++)
        t->indptr[c + 1] += t->indptr[c];
    memcpy(next, t->indptr, m->cols * sizeof(size_t));
    for (size_t r = 0; r < m->rows; r++)
        for (size_t p = m->indptr[r]; p < m->indptr[r + 1]; p++) {
            size_t o = next[m->indices[p]]++;
            t->indices[o] = (uint32_t)r;
            t->values[o] = m->values[p];
        }
    free(next);
    return t;
}

lp_matf *lp_csr_to_dense(const lp_csr *m)
{
    lp_matf *d = lp_matf_new(m->rows, m->cols);
    if (!d)
        return NULL;
    for (size_t i = 0; i < m->rows; i++) {
        float *row = d->v + i * m->cols;
        for (size_t p = m->indptr[i]; p < m->indptr[i + 1]; p++)
            row[m->indices[p]] = m->values[p];
    }
    return d;
}

void lp_csr_normalize_l2(lp_csr *m)
{
    for (size_t i = 0; i < m->rows; i++) {
        double ss = 0;
        for (size_t p = m->indptr[i]; p < m->indptr[i + 1]; p++)
            ss += (double)m->values[p] * m->values[p];
        if (isnan(ss)) {
            for (size_t p = m->indptr[i]; p < m->indptr[i + 1]; p++)
                m->values[p] = NAN;
            continue;
        }
        if (ss <= 0)
            continue;
        double inv = 1.0 / sqrt(ss);
        for (size_t p = m->indptr[i]; p < m->indptr[i + 1]; p++)
            m->values[p] = (float)(m->values[p] * inv);
    }
}

lp_status lp_csr_check(const lp_csr *m, const char *what, lp_err *err)
{
    if (!m || !m->indptr || m->indptr[0] != 0 || m->indptr[m->rows] != m->nnz)
        return lp_err_set(err, LP_EFORMAT, "%s: CSR row pointers do not span the %zu entries",
                          what, m ? m->nnz : 0);
    for (size_t i = 0; i < m->rows; i++) {
        if (m->indptr[i + 1] < m->indptr[i] || m->indptr[i + 1] > m->nnz)
            return lp_err_set(err, LP_EFORMAT, "%s: CSR row %zu has a bad row pointer", what, i);
        for (size_t p = m->indptr[i]; p < m->indptr[i + 1]; p++) {
            if (m->indices[p] >= m->cols || (p > m->indptr[i] && m->indices[p] <= m->indices[p - 1]))
                return lp_err_set(err, LP_EFORMAT,
                                  "%s: CSR row %zu entry %zu: column %u out of order or >= %zu",
                                  what, i, p - m->indptr[i], m->indices[p], m->cols);
        }
    }
    return LP_OK;
}
