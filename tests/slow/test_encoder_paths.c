/*
 * test_encoder_paths.c - the MiniLM encoder's inference paths on the cpu table agree with each
 * other and with PyTorch (tests/fixtures/minilm.txt): one sentence per call takes the
 * small-row products (column blocks through sgemm_batched, N <= 32 rows) and a batch of 16
 * the one-product path; both use the fused (N, 3D) q|k|v weights and the vectorised GELU and
 * softmax exp. The reference test (test_encoder_torch.c) runs batches of 16 only.
 *
 * Needs the real encoder file: $LEPTON_ENCODER, else the test program skips (exit 77).
 */
#include "lp_test.h"

#include "lepton/encoder.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Sentences taken (each a forward of its own at batch 1, ~10-40 ms on the shared VM). */
#define NSENT 24
/* Unit-norm embeddings (entries ~0.05) from float32 forwards that differ in summation order
 * only: batch 1 against batch 16 differ by ~1e-7, against torch by ~1e-6 (cosine 1 - 1e-12);
 * a wrong head split, bias or block offset moves entries by 1e-2 or more. */
#define TOL_PATHS 1e-5
#define TOL_TORCH 1e-4

static void test_batch1_matches_batch16_and_torch(void **state)
{
    (void)state;
    const char *path = getenv("LEPTON_ENCODER");
    if (!path || !*path)
        lp_test_skip("no MiniLM encoder file: set LEPTON_ENCODER (`lepton encoder install`)");
    lp_encoder *e = NULL;
    lp_err err;
    if (lp_encoder_load(path, "cpu", &e, &err) || lp_encoder_set_precision(e, LP_ENCODER_FP32, &err))
        fail_msg("%s", err.msg);
    lp_fixture *fx = lp_fixture_load("minilm.txt");
    size_t n, rows, d;
    char **raw = lp_fixture_strings(fx, "texts", &n);
    double *want = lp_fixture_array(fx, "emb", &rows, &d);
    assert_int_equal(d, lp_encoder_dim(e));
    assert_true(n >= NSENT);
    char *texts[NSENT];
    for (size_t i = 0; i < NSENT; i++) {
        cJSON *j = cJSON_Parse(raw[i]);
        assert_true(cJSON_IsString(j));
        texts[i] = strdup(j->valuestring);
        cJSON_Delete(j);
    }
    float *one = malloc(NSENT * d * sizeof *one), *many = malloc(NSENT * d * sizeof *many);
    double *got = malloc(NSENT * d * sizeof *got), *fromb = malloc(NSENT * d * sizeof *fromb);
    size_t small = 0;
    for (size_t i = 0; i < NSENT; i++) {
        const char *t = texts[i];
        int32_t ids[256];
        size_t len;
        assert_int_equal(
            lp_wordpiece_encode(lp_encoder_tokenizer(e), t, strlen(t), ids, 256, &len, NULL, NULL),
            LP_OK);
        small += len <= 32;
        if (lp_encoder_embed(e, &t, 1, 1, one + i * d, NULL, &err))
            fail_msg("%s", err.msg);
    }
    /* most of them exercise the small-row path */
    assert_true(small >= NSENT / 2);
    if (lp_encoder_embed(e, (const char *const *)texts, NSENT, 16, many, NULL, &err))
        fail_msg("%s", err.msg);
    for (size_t i = 0; i < NSENT * d; i++)
        got[i] = one[i], fromb[i] = many[i];
    lp_assert_close(got, fromb, NSENT * d, TOL_PATHS, 0, "batch 1 vs batch 16");
    lp_assert_close(got, want, NSENT * d, TOL_TORCH, 0, "batch 1 vs torch");
    for (size_t i = 0; i < NSENT; i++)
        free(texts[i]);
    free(one), free(many), free(got), free(fromb), free(want);
    lp_fixture_free(fx);
    lp_encoder_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch1_matches_batch16_and_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
