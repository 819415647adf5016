/*
 * nn_io.c - saving and loading an nn (format in nn.h). The architecture (d, loss, outputs,
 * hidden spec, activation, dropout) is saved and the net rebuilt from it by lp_nn_new, so a
 * loaded net has exactly the layout of the saved one; the parameters travel in packed form.
 *
 * A loader never trusts the blob: every field is range-checked before it sizes anything, the
 * parameter count must equal the rebuilt architecture's, every parameter must be finite, and
 * the CRC covers every byte before it. Errors are LP_EFORMAT / LP_EVERSION naming r->what.
 */
#include "model/nn_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NN_MAGIC "LPNN"
#define NN_VERSION 2u
/* Longest hidden spec accepted on load: 64 widths of 7 digits and their commas. */
#define NN_MAX_SPEC 512

lp_status lp_nn_save(const lp_nn *m, lp_buf *b, lp_err *err)
{
    if (!m || !b)
        return lp_err_set(err, LP_EINVAL, "nn_save: net or buffer is NULL");
    float *packed = lp_mallocarray(m->n_packed ? m->n_packed : 1, sizeof *packed);
    if (!packed)
        return lp_err_set(err, LP_ENOMEM, "nn_save: out of memory");
    lp_status st = lp_nn_get_params(m, packed, m->n_packed, err);
    if (st) {
        free(packed);
        return st;
    }
    size_t start = b->len;
    lp_buf_put(b, NN_MAGIC, 4);
    lp_buf_u32(b, NN_VERSION);
    lp_buf_u64(b, (uint64_t)m->d);
    lp_buf_u32(b, (uint32_t)m->o.loss);
    lp_buf_u32(b, (uint32_t)m->n_out);
    lp_buf_str(b, m->hidden);
    lp_buf_str(b, m->activation);
    lp_buf_f32(b, m->o.dropout);
    lp_buf_str(b, m->arch);
    lp_buf_str(b, m->input_shape);
    lp_buf_u64(b, (uint64_t)m->n_packed);
    for (size_t i = 0; i < m->n_packed; i++)
        lp_buf_f32(b, packed[i]);
    lp_buf_u64(b, (uint64_t)m->n_state);
    for (size_t i = 0; i < m->n_state; i++)
        lp_buf_f32(b, m->state_host[i]);
    lp_buf_f64(b, m->best_valid);
    free(packed);
    st = lp_buf_status(b, err);
    if (st)
        return st;
    lp_buf_u32(b, lp_crc32(0, b->data + start, b->len - start));
    return lp_buf_status(b, err);
}

lp_status lp_nn_load(lp_reader *r, const char *backend, lp_nn **out, lp_err *err)
{
    if (!r || !out)
        return lp_err_set(err, LP_EINVAL, "nn_load: reader or out is NULL");
    *out = NULL;
    const char *what = r->what ? r->what : "nn model";
    size_t start = r->pos;
    char magic[4];
    uint32_t version, loss, n_out, crc;
    uint64_t d, n_params;
    float dropout;
    double best_valid;
    char *hidden = NULL, *activation = NULL, *arch = NULL, *shape = NULL;
    uint64_t n_state = 0;
    float *state = NULL;
    float *packed = NULL;
    lp_nn *m = NULL;
    lp_status st = lp_reader_get(r, magic, 4, err);
    if (!st && memcmp(magic, NN_MAGIC, 4) != 0)
        st = lp_err_set(err, LP_EFORMAT, "%s: not an nn model (bad magic)", what);
    if (!st)
        st = lp_reader_u32(r, &version, err);
    if (!st && version != NN_VERSION && version != 1)
        st = lp_err_set(err, LP_EVERSION, "%s: nn format version %u, this build reads %u", what,
                        version, NN_VERSION);
    if (!st)
        st = lp_reader_u64(r, &d, err);
    if (!st)
        st = lp_reader_u32(r, &loss, err);
    if (!st)
        st = lp_reader_u32(r, &n_out, err);
    if (!st)
        st = lp_reader_str(r, &hidden, NN_MAX_SPEC, err);
    if (!st)
        st = lp_reader_str(r, &activation, 32, err);
    if (!st)
        st = lp_reader_f32(r, &dropout, err);
    if (!st && version >= 2)
        st = lp_reader_str(r, &arch, NN_MAX_SPEC, err);
    if (!st && version >= 2)
        st = lp_reader_str(r, &shape, 64, err);
    if (!st)
        st = lp_reader_u64(r, &n_params, err);
    if (st)
        goto done;
    if (d == 0 || d > LP_NN_MAX_WIDTH || loss > LP_NN_LOSS_MSE || n_out == 0 ||
        n_out > LP_NN_MAX_OUTPUTS || !activation) {
        st = lp_err_set(err, LP_EFORMAT,
                        "%s: bad nn header (d=%llu, loss=%u, outputs=%u, activation %s)", what,
                        (unsigned long long)d, loss, n_out, activation ? "set" : "missing");
        goto done;
    }
    lp_nn_opts o = lp_nn_opts_default();
    o.hidden = hidden ? hidden : "";
    o.activation = activation;
    o.dropout = dropout;
    o.arch = arch;
    o.input_shape = shape;
    o.loss = (lp_nn_loss)loss;
    o.n_outputs = (int)n_out;
    o.backend = backend ? backend : "cpu";
    lp_err e2;
    if (lp_nn_opts_check(&o, &e2)) {
        st = lp_err_set(err, LP_EFORMAT, "%s: bad nn architecture: %s", what, e2.msg);
        goto done;
    }
    /* Bound the count by the bytes left before building anything of that size. */
    if (n_params > (r->len - r->pos) / 4) {
        st = lp_err_set(err, LP_EFORMAT, "%s: nn claims %llu parameters, only %zu bytes left", what,
                        (unsigned long long)n_params, r->len - r->pos);
        goto done;
    }
    uint64_t arch_n = 0;
    if (lp_nn_arch_params((size_t)d, &o, &arch_n, &e2)) {
        st = lp_err_set(err, LP_EFORMAT, "%s: bad nn architecture: %s", what, e2.msg);
        goto done;
    }
    if (arch_n != n_params) {
        st = lp_err_set(err, LP_EFORMAT, "%s: nn holds %llu parameters, its architecture %llu",
                        what, (unsigned long long)n_params, (unsigned long long)arch_n);
        goto done;
    }
    st = lp_nn_new((size_t)d, &o, &m, err);
    if (st) {
        if (st != LP_ENOMEM && st != LP_EDEVICE && st != LP_EUNSUPPORTED)
            st = lp_err_prefix(err, "%s", what);
        goto done;
    }
    if (n_params != m->n_packed) {
        st = lp_err_set(err, LP_EFORMAT, "%s: nn holds %llu parameters, its architecture %zu", what,
                        (unsigned long long)n_params, m->n_packed);
        goto done;
    }
    packed = lp_mallocarray(m->n_packed ? m->n_packed : 1, sizeof *packed);
    if (!packed) {
        st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
        goto done;
    }
    for (size_t i = 0; i < m->n_packed && !st; i++)
        st = lp_reader_f32(r, &packed[i], err);
    if (!st && version >= 2)
        st = lp_reader_u64(r, &n_state, err);
    if (!st && n_state != m->n_state)
        st = lp_err_set(err, LP_EFORMAT, "%s: nn holds %llu state values, its architecture %zu",
                        what, (unsigned long long)n_state, m->n_state);
    if (!st && m->n_state) {
        state = lp_mallocarray(m->n_state, sizeof *state);
        if (!state)
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
    }
    for (size_t i = 0; i < m->n_state && !st; i++) {
        st = lp_reader_f32(r, &state[i], err);
        if (!st && !isfinite(state[i]))
            st = lp_err_set(err, LP_EFORMAT, "%s: nn state value %zu is %g", what, i,
                            (double)state[i]);
    }
    /* a running variance must be >= 0: its square root is taken */
    for (size_t i = 0; i < m->n_layers && !st; i++) {
        const lp_nn_layer *L = &m->layers[i];
        if (L->kind != LP_NN_LAYER_KIND_BATCHNORM)
            continue;
        for (size_t j = 0; j < L->oc && !st; j++)
            if (state[L->s_off + L->oc + j] < 0)
                st = lp_err_set(err, LP_EFORMAT, "%s: nn batch-norm running variance %zu is %g",
                                what, j, (double)state[L->s_off + L->oc + j]);
    }
    if (!st)
        st = lp_reader_f64(r, &best_valid, err);
    if (st)
        goto done;
    uint32_t want = lp_crc32(0, r->data + start, r->pos - start);
    st = lp_reader_u32(r, &crc, err);
    if (!st && crc != want)
        st = lp_err_set(err, LP_EFORMAT, "%s: nn checksum mismatch (corrupted)", what);
    if (st)
        goto done;
    if (lp_nn_set_params(m, packed, m->n_packed, &e2)) {
        st = lp_err_set(err, LP_EFORMAT, "%s: %s", what, e2.msg);
        goto done;
    }
    if (m->n_state) {
        memcpy(m->state_host, state, m->n_state * sizeof *state);
        st = m->be->copy_h2d(m->be, m->state.ptr, state, m->n_state * sizeof *state, err);
    }
    m->best_valid = best_valid;
done:
    free(arch);
    free(shape);
    free(state);
    free(hidden);
    free(activation);
    free(packed);
    if (st) {
        lp_nn_free(m);
        return st;
    }
    *out = m;
    return LP_OK;
}
