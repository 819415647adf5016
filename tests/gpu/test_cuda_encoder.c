/*
 * test_cuda_encoder.c - the sentence encoder on the "cuda" table: the tiny random BERT of
 * tests/fixtures/gen_minilm.py --tiny converted to .lpm, loaded with backend "cuda", embeds the
 * fixture texts as PyTorch does (same tolerance as tests/unit/test_encoder.c: float32 against
 * float32, summation order only), for batch sizes that pad differently, and agrees with the cpu
 * table to 1e-5. Exit 77 without a device.
 */
#include "gpu_util.h"

#include "lepton/encoder.h"

#include <cjson/cJSON.h>

#define TOL_ATOL 2e-5
#define TOL_RTOL 1e-4

static float *embed_all(const char *path, const char *backend, char **texts, size_t n,
                        size_t dim, size_t batch)
{
    lp_encoder *e = NULL;
    lp_err err;
    if (lp_encoder_load(path, backend, &e, &err))
        fail_msg("%s: %s", backend, err.msg);
    assert_int_equal(lp_encoder_dim(e), dim);
    float *out = malloc(n * dim * sizeof *out);
    size_t ntr = 0;
    if (lp_encoder_embed(e, (const char *const *)texts, n, batch, out, &ntr, &err))
        fail_msg("%s: %s", backend, err.msg);
    assert_int_equal(ntr, 1); /* the long review is cut at max_len */
    lp_encoder_free(e);
    return out;
}

static void test_tiny_on_cuda(void **state)
{
    (void)state;
    (void)gpu_cuda_or_skip();
    char *path = lp_test_tmpfile("tiny.lpm");
    lp_err err;
    if (lp_encoder_convert(lp_test_fixture("tiny_bert"), path, "tiny test model", &err))
        fail_msg("%s", err.msg);
    lp_fixture *fx = lp_fixture_load("tiny_bert.txt");
    size_t n, rows, cols;
    char **raw = lp_fixture_strings(fx, "texts", &n);
    char **texts = calloc(n, sizeof *texts);
    for (size_t i = 0; i < n; i++) {
        cJSON *j = cJSON_Parse(raw[i]);
        assert_true(cJSON_IsString(j));
        texts[i] = strdup(j->valuestring);
        cJSON_Delete(j);
    }
    double *want = lp_fixture_array(fx, "emb", &rows, &cols);
    assert_int_equal(rows, n);
    float *cpu = embed_all(path, "cpu", texts, n, cols, 64);
    const size_t batches[] = {64, 1, 5};
    for (size_t k = 0; k < 3; k++) {
        float *got = embed_all(path, "cuda", texts, n, cols, batches[k]);
        double *g = malloc(n * cols * sizeof *g);
        for (size_t i = 0; i < n * cols; i++) {
            g[i] = got[i];
            assert_true(fabsf(got[i] - cpu[i]) < 1e-5f);
        }
        lp_assert_close(g, want, n * cols, TOL_ATOL, TOL_RTOL, "tiny BERT on cuda");
        free(g);
        free(got);
    }
    free(cpu);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(want);
    lp_fixture_free(fx);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_tiny_on_cuda)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
