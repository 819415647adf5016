/*
 * test_encoder.c - the encoder pipeline on a tiny random BERT written by
 * tests/fixtures/gen_minilm.py --tiny (safetensors folder + PyTorch reference embeddings), so
 * it runs without the 90 MB MiniLM wheel: lp_encoder_convert -> lp_encoder_load on the cpu and
 * ref tables -> lp_encoder_embed matches torch; results do not depend on the batch size (so
 * padding is masked out); truncation at max_seq_length is counted; bad inputs are refused.
 */
#include "lp_test.h"

#include "lepton/encoder.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Float32 forward of a 2-layer D=8 model against torch's float32: differences come from
 * summation order only (~1e-6); normalised outputs are O(0.1..1). */
#define TOL_ATOL 2e-5
#define TOL_RTOL 1e-4

static char *converted(void)
{
    char *out = lp_test_tmpfile("tiny.lpm");
    lp_err err;
    if (lp_encoder_convert(lp_test_fixture("tiny_bert"), out, "tiny test model", &err))
        fail_msg("%s", err.msg);
    return out;
}

static char **texts_of(lp_fixture *fx, size_t *n)
{
    char **raw = lp_fixture_strings(fx, "texts", n);
    char **t = calloc(*n, sizeof *t);
    for (size_t i = 0; i < *n; i++) {
        cJSON *j = cJSON_Parse(raw[i]);
        assert_true(cJSON_IsString(j));
        t[i] = strdup(j->valuestring);
        cJSON_Delete(j);
    }
    return t;
}

static void test_tiny_matches_torch(void **state)
{
    (void)state;
    char *path = converted();
    lp_fixture *fx = lp_fixture_load("tiny_bert.txt");
    size_t n, rows, cols;
    char **texts = texts_of(fx, &n);
    double *want = lp_fixture_array(fx, "emb", &rows, &cols);
    assert_int_equal(rows, n);
    const char *tables[] = {"cpu", "ref"};
    float *first = NULL;
    for (int t = 0; t < 2; t++) {
        lp_encoder *e = NULL;
        lp_err err;
        if (lp_encoder_load(path, tables[t], &e, &err))
            fail_msg("%s", err.msg);
        assert_int_equal(lp_encoder_dim(e), 8);
        assert_int_equal(lp_encoder_config_of(e)->max_len, 24);
        assert_int_equal(lp_encoder_config_of(e)->layers, 2);
        const size_t batches[] = {64, 1, 5};
        for (size_t k = 0; k < 3; k++) {
            float *out = malloc(n * cols * sizeof *out);
            size_t ntr = 0;
            if (lp_encoder_embed(e, (const char *const *)texts, n, batches[k], out, &ntr, &err))
                fail_msg("%s", err.msg);
            assert_int_equal(ntr, 1); /* the long review is cut at 24 tokens */
            double *got = malloc(n * cols * sizeof *got);
            for (size_t i = 0; i < n * cols; i++)
                got[i] = out[i];
            lp_assert_close(got, want, n * cols, TOL_ATOL, TOL_RTOL, "tiny BERT embeddings");
            for (size_t i = 0; i < n; i++) {
                double ss = 0;
                for (size_t j = 0; j < cols; j++)
                    ss += got[i * cols + j] * got[i * cols + j];
                assert_true(fabs(ss - 1) < 1e-5);
            }
            if (!first) {
                first = out;
            } else {
                /* batch size and table change rounding only */
                for (size_t i = 0; i < n * cols; i++)
                    assert_true(fabsf(out[i] - first[i]) < 1e-5f);
                free(out);
            }
            free(got);
        }
        lp_encoder_free(e);
    }
    free(first);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(want);
    lp_fixture_free(fx);
    free(path);
}

static void test_errors(void **state)
{
    (void)state;
    lp_err err;
    lp_encoder *e = NULL;
    char *bad = lp_test_tmpfile("nope.lpm");
    assert_int_equal(lp_encoder_convert("/nonexistent/model", bad, NULL, &err), LP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "config.json"));
    assert_int_equal(lp_encoder_load("/nonexistent/x.lpm", "cpu", &e, &err), LP_ENOTFOUND);
    assert_null(e);

    /* an .lpm file that is not an encoder */
    lp_lpm_writer *w = lp_lpm_writer_new();
    float x = 1;
    assert_int_equal(lp_lpm_writer_add(w, "x", LP_LPM_DTYPE_F32, &x, sizeof x, NULL), LP_OK);
    assert_int_equal(lp_lpm_writer_save(w, "{\"kind\":\"linear\"}", bad, NULL), LP_OK);
    assert_int_equal(lp_encoder_load(bad, "cpu", &e, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "not an encoder"));
    /* an encoder header whose tensors are missing */
    assert_int_equal(lp_lpm_writer_save(w,
                                        "{\"kind\":\"encoder\",\"vocab_size\":10,\"hidden\":4,"
                                        "\"layers\":1,\"heads\":2,\"intermediate\":8,"
                                        "\"max_position\":8,\"type_vocab\":2,\"max_len\":8,"
                                        "\"ln_eps\":1e-12}",
                                        bad, NULL),
                     LP_OK);
    assert_int_equal(lp_encoder_load(bad, "cpu", &e, &err), LP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "embeddings.word_embeddings.weight"));
    assert_int_equal(lp_lpm_writer_save(w,
                                        "{\"kind\":\"encoder\",\"vocab_size\":10,\"hidden\":5,"
                                        "\"layers\":1,\"heads\":2,\"intermediate\":8,"
                                        "\"max_position\":8,\"type_vocab\":2,\"max_len\":9,"
                                        "\"ln_eps\":1e-12}",
                                        bad, NULL),
                     LP_OK);
    assert_int_equal(lp_encoder_load(bad, "cpu", &e, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "max_len"));
    lp_lpm_writer_free(w);

    char *path = converted();
    assert_int_equal(lp_encoder_load(path, "cpu", &e, &err), LP_OK);
    int32_t ids[3] = {101, 5000, 102};
    float mask[3] = {1, 1, 1}, out[8];
    size_t lens[1] = {3};
    lp_token_batch b = {.n = 1, .t = 3, .ids = ids, .mask = mask, .lens = lens};
    assert_int_equal(lp_encoder_forward(e, &b, out, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "token id 5000"));
    ids[1] = 7;
    assert_int_equal(lp_encoder_forward(e, &b, out, &err), LP_OK);
    const char *texts[] = {"fine", "\xff"};
    float emb[16];
    assert_int_equal(lp_encoder_embed(e, texts, 2, 4, emb, NULL, &err), LP_EPARSE);
    assert_non_null(strstr(err.msg, "text 1"));
    assert_int_equal(lp_encoder_embed(e, texts, 1, 0, emb, NULL, &err), LP_EINVAL);
    /* precision: this model's width (8) has no bfloat16 path (needs multiples of 32): it says
     * so and stays float32; names are checked */
    assert_int_equal(lp_encoder_precision_of(e), LP_ENCODER_FP32);
    assert_int_equal(lp_encoder_set_precision(e, LP_ENCODER_BF16, &err), LP_EUNSUPPORTED);
    assert_int_equal(lp_encoder_precision_of(e), LP_ENCODER_FP32);
    assert_int_equal(lp_encoder_set_precision(e, LP_ENCODER_FP32, &err), LP_OK);
    assert_int_equal(lp_encoder_forward(e, &b, out, &err), LP_OK);
    lp_encoder_precision pr;
    assert_int_equal(lp_encoder_precision_parse("bf16", &pr, &err), LP_OK);
    assert_int_equal(pr, LP_ENCODER_BF16);
    assert_int_equal(lp_encoder_precision_parse("fp16", &pr, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "'fp16'"));
    lp_encoder_free(e);
    /* the environment's choice: a wrong name is refused at load; bf16 is a preference */
    setenv("LEPTON_ENCODER_PRECISION", "double", 1);
    assert_int_equal(lp_encoder_load(path, "cpu", &e, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "LEPTON_ENCODER_PRECISION"));
    assert_null(e);
    setenv("LEPTON_ENCODER_PRECISION", "bf16", 1);
    assert_int_equal(lp_encoder_load(path, "cpu", &e, &err), LP_OK);
    assert_int_equal(lp_encoder_precision_of(e), LP_ENCODER_FP32);
    unsetenv("LEPTON_ENCODER_PRECISION");
    lp_encoder_free(e);
    lp_encoder_free(NULL);
    free(path);
    free(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tiny_matches_torch),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
