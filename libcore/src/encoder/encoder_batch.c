/*
 * encoder_batch.c - host-side steps of a padded token batch that the inference forward
 * (encoder.c) and the training forward (encoder_train.c) share: validating ids and length,
 * the position ids and mean-pooling weights, and the final L2 normalisation, so both paths
 * pool and normalise with the same rounding.
 */
#include "encoder/encoder_internal.h"

#include <math.h>

lp_status enc_check_batch(const lp_encoder *e, const lp_token_batch *b, lp_err *err)
{
    if (b->t == 0 || b->t > e->cfg.max_position)
        return lp_err_set(err, LP_EINVAL, "encoder: sequence length %zu outside 1..%zu", b->t,
                          e->cfg.max_position);
    for (size_t i = 0; i < b->n * b->t; i++)
        if (b->ids[i] < 0 || (size_t)b->ids[i] >= e->cfg.vocab_size)
            return lp_err_set(err, LP_EINVAL,
                              "encoder: token id %d at sequence %zu position %zu "
                              "outside the %zu-token vocabulary",
                              (int)b->ids[i], i / b->t, i % b->t, e->cfg.vocab_size);
    return LP_OK;
}

void enc_pool_inputs(const lp_token_batch *tb, int32_t *pos, float *poolw)
{
    size_t B = tb->n, T = tb->t;
    for (size_t b = 0; b < B; b++) {
        double cnt = 0;
        for (size_t t = 0; t < T; t++) {
            pos[b * T + t] = (int32_t)t;
            cnt += tb->mask[b * T + t];
        }
        /* sentence-transformers clamps the token count at 1e-9 */
        for (size_t t = 0; t < T; t++)
            poolw[b * T + t] = (float)(tb->mask[b * T + t] / (cnt > 1e-9 ? cnt : 1e-9));
    }
}

void enc_l2_rows(float *x, size_t B, size_t D, float *nrm)
{
    for (size_t b = 0; b < B; b++) {
        double ss = 0;
        for (size_t j = 0; j < D; j++)
            ss += (double)x[b * D + j] * x[b * D + j];
        double n = sqrt(ss) > 1e-12 ? sqrt(ss) : 1e-12;
        float inv = (float)(1.0 / n);
        if (nrm)
            nrm[b] = (float)n;
        for (size_t j = 0; j < D; j++)
            x[b * D + j] *= inv;
    }
}
