/*
 * test_encoder_train.c - fine-tuning the encoder on the tiny random BERT fixture
 * (tests/fixtures/tiny_bert: 2 layers, D = 8, 2 heads, F = 32): the whole encoder + head loss's
 * gradient against central differences for LoRA, head and full parameters; a fresh LoRA adapter
 * (B = 0) equals the base exactly; a few LoRA steps separate a toy text set; adapter size for
 * MiniLM's real config; the .lpa round trip; bad inputs (another encoder's adapter, corrupt or
 * foreign files, bad labels and options) give one-line errors.
 */
#include "lp_test.h"

#include "encoder/encoder_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Float32 forward on the ref table (double row sums); the loss is returned in double. Central
 * differences with step 1e-2 on O(0.1..1) parameters: truncation ~h^2 f''' ~ 1e-4 relative,
 * float rounding of the loss ~1e-7 / h = 1e-5 absolute. */
#define FD_STEP 1e-2
#define FD_ATOL 2e-4
#define FD_RTOL 2e-2

static const char *const toy_texts[] = {
    "a b c a", "b a c",   "c a b b", "a a b c", "b c a a",   "c b a",     "x y z x",   "y x z",
    "z x y y", "x x y z", "y z x x", "z y x",   "a b a b c", "x y x y z", "c c a b a", "z z x y x",
};
static const int32_t toy_labels[] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 1, 0, 1};
#define N_TOY (sizeof toy_labels / sizeof toy_labels[0])

static lp_encoder *tiny(const char *table)
{
    static char *path;
    lp_err err;
    if (!path) {
        path = lp_test_tmpfile("tiny_train.lpm");
        if (lp_encoder_convert(lp_test_fixture("tiny_bert"), path, "tiny test model", &err))
            fail_msg("%s", err.msg);
    }
    lp_encoder *e = NULL;
    if (lp_encoder_load(path, table, &e, &err))
        fail_msg("%s", err.msg);
    return e;
}

static lp_encoder_adapter *fresh(const lp_encoder *e, lp_encoder_ft_method m, size_t C)
{
    lp_encoder_adapter *a = NULL;
    lp_err err;
    if (et_adapter_new(e, m, m == LP_ENCODER_FT_METHOD_LORA ? 4 : 0, 8.0, C, 7, &a, &err))
        fail_msg("%s", err.msg);
    return a;
}

static double loss_of(et_net *net, const lp_token_batch *tb, const int32_t *y)
{
    double l = 0;
    lp_err err;
    if (et_net_run(net, tb, y, false, &l, NULL, NULL, &err))
        fail_msg("%s", err.msg);
    return l;
}

/* Check d loss / d block[off] (or the full copy's parameter) against central differences;
 * returns |analytic| so callers can insist the checked entries matter. */
static double check_entry(et_net *net, const lp_token_batch *tb, const int32_t *y, size_t off,
                          const char *what)
{
    lp_err err;
    double l;
    if (et_net_run(net, tb, y, true, &l, NULL, NULL, &err))
        fail_msg("%s", err.msg);
    double an = net->grad.ptr[off];
    float keep = net->blk.ptr[off];
    net->blk.ptr[off] = (float)(keep + FD_STEP);
    double up = loss_of(net, tb, y);
    net->blk.ptr[off] = (float)(keep - FD_STEP);
    double dn = loss_of(net, tb, y);
    net->blk.ptr[off] = keep;
    double num = (up - dn) / (2 * FD_STEP);
    if (fabs(an - num) > FD_ATOL + FD_RTOL * fabs(num))
        fail_msg("%s (block %zu): analytic %.6g, finite difference %.6g", what, off, an, num);
    return fabs(an);
}

static void batch_of(const lp_encoder *e, size_t n, lp_token_batch *tb)
{
    lp_err err;
    if (lp_wordpiece_encode_batch(lp_encoder_tokenizer(e), toy_texts, n, tb, &err))
        fail_msg("%s", err.msg);
}

static void test_lora_gradients(void **state)
{
    (void)state;
    lp_encoder *e = tiny("ref");
    lp_encoder_adapter *a = fresh(e, LP_ENCODER_FT_METHOD_LORA, 3);
    /* B = 0 would zero every A gradient: give B and the head some size first */
    et_net net;
    lp_err err;
    assert_int_equal(et_net_new(e, a, &net, &err), LP_OK);
    lp_rng rng;
    lp_rng_seed(&rng, 9);
    for (size_t i = 0; i < net.lay.head_w; i++)
        net.blk.ptr[i] = (float)(lp_rng_uniform(&rng) - 0.5);
    for (size_t i = net.lay.head_w; i < net.lay.total; i++)
        net.blk.ptr[i] *= 8.0f;
    lp_token_batch tb;
    batch_of(e, 5, &tb); /* texts of different lengths: padding inside the batch */
    const int32_t y[5] = {0, 2, 1, 0, 2};
    double big = 0;
    for (size_t l = 0; l < 2; l++)
        for (size_t t = 0; t < ET_TARGETS; t++) {
            size_t i = l * ET_TARGETS + t;
            big = fmax(big, check_entry(&net, &tb, y, net.lay.a[i] + 3, "LoRA A"));
            big = fmax(big, check_entry(&net, &tb, y, net.lay.b[i] + 1, "LoRA B"));
        }
    big = fmax(big, check_entry(&net, &tb, y, net.lay.head_w + 5, "head W"));
    big = fmax(big, check_entry(&net, &tb, y, net.lay.head_b + 1, "head b"));
    assert_true(big > 1e-2); /* the checked gradients are not all ~0 */
    lp_token_batch_clear(&tb);
    et_net_free(&net);
    lp_encoder_adapter_free(a);
    lp_encoder_free(e);
}

static void test_full_gradients(void **state)
{
    (void)state;
    lp_encoder *e = tiny("ref");
    lp_encoder_adapter *a = fresh(e, LP_ENCODER_FT_METHOD_FULL, 2);
    et_net net;
    lp_err err;
    assert_int_equal(et_net_new(e, a, &net, &err), LP_OK);
    for (size_t i = net.lay.head_w; i < net.lay.total; i++)
        net.blk.ptr[i] *= 8.0f;
    lp_token_batch tb;
    batch_of(e, 4, &tb);
    const int32_t y[4] = {1, 0, 0, 1};
    const enc_layer *L0 = &e->layer[0], *L1 = &e->layer[1];
    size_t D = 8;
    const struct {
        size_t off;
        const char *what;
    } p[] = {
        {e->word + (size_t)tb.ids[1] * D + 2, "word embedding of a used token"},
        {e->pos + 1 * D + 3, "position embedding 1"},
        {e->type + 4, "token type 0 embedding"},
        {e->ln_g + 1, "embedding LayerNorm gamma"},
        {e->ln_b + 6, "embedding LayerNorm beta"},
        {L0->wq + 9, "layer 0 query weight"},
        {L0->bk + 2, "layer 0 key bias"},
        {L0->wv + 17, "layer 0 value weight"},
        {L0->wo + 30, "layer 0 attention output weight"},
        {L0->ln1_g + 5, "layer 0 LayerNorm 1 gamma"},
        {L1->w1 + 40, "layer 1 ff1 weight"},
        {L1->b1 + 7, "layer 1 ff1 bias"},
        {L1->w2 + 100, "layer 1 ff2 weight"},
        {L1->ln2_g + 0, "layer 1 LayerNorm 2 gamma"},
        {L1->ln2_b + 3, "layer 1 LayerNorm 2 beta"},
    };
    double big = 0;
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++)
        big = fmax(big, check_entry(&net, &tb, y, p[i].off, p[i].what));
    assert_true(big > 1e-2);
    /* an unused word embedding row gets exactly zero gradient */
    double l;
    assert_int_equal(et_net_run(&net, &tb, y, true, &l, NULL, NULL, &err), LP_OK);
    for (size_t j = 0; j < D; j++)
        assert_true(net.grad.ptr[e->word + 5 * D + j] == 0.0f); /* [unused] token 5 */
    lp_token_batch_clear(&tb);
    et_net_free(&net);
    lp_encoder_adapter_free(a);
    lp_encoder_free(e);
}

static void test_zero_b_equals_base(void **state)
{
    (void)state;
    const char *tables[] = {"ref", "cpu"};
    for (int t = 0; t < 2; t++) {
        lp_encoder *e = tiny(tables[t]);
        lp_encoder_adapter *lo = fresh(e, LP_ENCODER_FT_METHOD_LORA, 2);
        lp_encoder_adapter *hd = fresh(e, LP_ENCODER_FT_METHOD_HEAD, 2);
        lp_token_batch tb;
        batch_of(e, N_TOY, &tb);
        float zl[N_TOY * 8], zh[N_TOY * 8], zi[N_TOY * 8];
        lp_err err;
        et_net nl, nh;
        assert_int_equal(et_net_new(e, lo, &nl, &err), LP_OK);
        assert_int_equal(et_net_new(e, hd, &nh, &err), LP_OK);
        assert_int_equal(et_net_run(&nl, &tb, NULL, false, NULL, zl, NULL, &err), LP_OK);
        assert_int_equal(et_net_run(&nh, &tb, NULL, false, NULL, zh, NULL, &err), LP_OK);
        assert_int_equal(lp_encoder_forward(e, &tb, zi, &err), LP_OK);
        /* exactly the base: B = 0 adds exact zeros to every projection */
        assert_memory_equal(zl, zh, sizeof zl);
        /* the inference path orders its sums alike on these tables */
        double g[N_TOY * 8], w[N_TOY * 8];
        for (size_t i = 0; i < N_TOY * 8; i++) {
            g[i] = zl[i];
            w[i] = zi[i];
        }
        lp_assert_close(g, w, N_TOY * 8, 1e-6, 1e-5, "LoRA B=0 vs lp_encoder_forward");
        /* and a non-zero B does change the output */
        nl.blk.ptr[nl.lay.b[0]] = 0.5f;
        if (!e->be->host_visible)
            fail_msg("CPU tables expected");
        assert_int_equal(et_net_run(&nl, &tb, NULL, false, NULL, zl, NULL, &err), LP_OK);
        assert_true(memcmp(zl, zh, sizeof zl) != 0);
        et_net_free(&nl);
        et_net_free(&nh);
        lp_token_batch_clear(&tb);
        lp_encoder_adapter_free(lo);
        lp_encoder_adapter_free(hd);
        lp_encoder_free(e);
    }
}

/* A prediction view (et_net_view: the adapter's block read in place, no gradients) gives the
 * training net's outputs bit for bit, for every method, and refuses a backward pass. */
static void test_view_equals_net(void **state)
{
    (void)state;
    lp_encoder *e = tiny("cpu");
    lp_encoder_ft_method ms[3] = {LP_ENCODER_FT_METHOD_HEAD, LP_ENCODER_FT_METHOD_LORA,
                                  LP_ENCODER_FT_METHOD_FULL};
    for (int k = 0; k < 3; k++) {
        lp_encoder_adapter *a = fresh(e, ms[k], 2);
        if (ms[k] == LP_ENCODER_FT_METHOD_LORA) /* a non-zero B so LoRA takes part */
            for (size_t i = 0; i < a->n_block; i += 7)
                a->block[i] += 0.01f * (float)(i % 5);
        lp_token_batch tb;
        batch_of(e, N_TOY, &tb);
        float z1[N_TOY * 8], z2[N_TOY * 8], p1[N_TOY * 2], p2[N_TOY * 2];
        lp_err err;
        et_net nt, nv;
        assert_int_equal(et_net_new(e, a, &nt, &err), LP_OK);
        assert_int_equal(et_net_view(e, a, &nv, &err), LP_OK);
        assert_true(nv.borrowed && nv.blk.ptr == a->block && nv.grad.ptr == NULL);
        assert_int_equal(et_net_run(&nt, &tb, NULL, false, NULL, z1, p1, &err), LP_OK);
        assert_int_equal(et_net_run(&nv, &tb, NULL, false, NULL, z2, p2, &err), LP_OK);
        assert_memory_equal(z1, z2, sizeof z1);
        assert_memory_equal(p1, p2, sizeof p1);
        int32_t y[N_TOY] = {0};
        double loss;
        assert_int_equal(et_net_run(&nv, &tb, y, true, &loss, NULL, NULL, &err), LP_EINVAL);
        et_net_free(&nt);
        et_net_free(&nv);
        assert_true(a->block != NULL); /* the view did not free the adapter's block */
        lp_token_batch_clear(&tb);
        lp_encoder_adapter_free(a);
    }
    lp_encoder_free(e);
}

/* lp_encoder_adapter_merge: the merged encoder's inference forward gives the adapter's
 * embeddings (training forward, LoRA unmerged) for every method on both tables; it refuses
 * another encoder's adapter, and outlives nothing but its base. */
static void test_merge_equals_adapter(void **state)
{
    (void)state;
    const char *tables[] = {"ref", "cpu"};
    lp_encoder_ft_method ms[3] = {LP_ENCODER_FT_METHOD_HEAD, LP_ENCODER_FT_METHOD_LORA,
                                  LP_ENCODER_FT_METHOD_FULL};
    for (int t = 0; t < 2; t++) {
        lp_encoder *e = tiny(tables[t]);
        for (int k = 0; k < 3; k++) {
            lp_encoder_adapter *a = fresh(e, ms[k], 2);
            if (ms[k] != LP_ENCODER_FT_METHOD_HEAD) /* weights (full) or B (LoRA) moved */
                for (size_t i = 0; i < a->n_block; i += 7)
                    a->block[i] += 0.05f * (float)(i % 5);
            lp_token_batch tb;
            batch_of(e, N_TOY, &tb);
            float za[N_TOY * 8], zm[N_TOY * 8], p[N_TOY * 2];
            lp_err err;
            et_net nv;
            assert_int_equal(et_net_view(e, a, &nv, &err), LP_OK);
            assert_int_equal(et_net_run(&nv, &tb, NULL, false, NULL, za, p, &err), LP_OK);
            et_net_free(&nv);
            lp_encoder *m;
            assert_int_equal(lp_encoder_adapter_merge(a, e, &m, &err), LP_OK);
            assert_int_equal(lp_encoder_forward(m, &tb, zm, &err), LP_OK);
            double g[N_TOY * 8], w[N_TOY * 8], moved = 0;
            float zb[N_TOY * 8];
            assert_int_equal(lp_encoder_forward(e, &tb, zb, &err), LP_OK);
            for (size_t i = 0; i < N_TOY * 8; i++) {
                g[i] = zm[i];
                w[i] = za[i];
                moved = fmax(moved, fabs(za[i] - zb[i]));
            }
            lp_assert_close(g, w, N_TOY * 8, 1e-5, 1e-4, "merged encoder vs adapter");
            if (ms[k] != LP_ENCODER_FT_METHOD_HEAD)
                assert_true(moved > 1e-3); /* the adapter does change the embeddings */
            float ze[N_TOY * 8]; /* lp_encoder_embed takes the same path */
            assert_int_equal(lp_encoder_embed(m, toy_texts, N_TOY, 4, ze, NULL, &err), LP_OK);
            for (size_t i = 0; i < N_TOY * 8; i++)
                g[i] = ze[i];
            lp_assert_close(g, w, N_TOY * 8, 1e-5, 1e-4, "merged encoder embed vs adapter");
            lp_encoder_free(m);
            lp_token_batch_clear(&tb);
            lp_encoder_adapter_free(a);
        }
        /* an adapter of other weights is refused, naming both fingerprints */
        lp_encoder_adapter *a = fresh(e, LP_ENCODER_FT_METHOD_FULL, 2);
        a->block[0] += 0.5f; /* m's weights differ from e's (the first word embedding) */
        lp_encoder *m, *m2, *e2 = tiny(tables[t]);
        lp_err err;
        assert_int_equal(lp_encoder_adapter_merge(a, e, &m, &err), LP_OK);
        lp_encoder_adapter *b = fresh(m, LP_ENCODER_FT_METHOD_LORA, 2); /* made for m */
        assert_int_equal(lp_encoder_adapter_merge(b, e2, &m2, &err), LP_EINVAL);
        assert_null(m2);
        assert_non_null(strstr(err.msg, "trained on encoder weights"));
        lp_encoder_adapter_free(b);
        lp_encoder_free(m);
        lp_encoder_adapter_free(a);
        lp_encoder_free(e2);
        lp_encoder_free(e);
    }
}

static double mean_loss(const lp_encoder_adapter *a, const lp_encoder *e, size_t *correct)
{
    float probs[N_TOY * 2];
    lp_err err;
    if (lp_encoder_adapter_predict(a, e, toy_texts, N_TOY, probs, NULL, &err))
        fail_msg("%s", err.msg);
    double l = 0;
    *correct = 0;
    for (size_t i = 0; i < N_TOY; i++) {
        l -= log(probs[i * 2 + toy_labels[i]]);
        *correct += probs[i * 2 + toy_labels[i]] > 0.5f;
    }
    return l / N_TOY;
}

static void test_training_reduces_loss(void **state)
{
    (void)state;
    lp_encoder *e = tiny("cpu");
    char before[65], after[65];
    lp_err err;
    assert_int_equal(et_fingerprint(e, before, &err), LP_OK);
    const lp_encoder_ft_method methods[] = {LP_ENCODER_FT_METHOD_LORA, LP_ENCODER_FT_METHOD_HEAD,
                                            LP_ENCODER_FT_METHOD_FULL};
    for (size_t k = 0; k < 3; k++) {
        lp_encoder_ft_opts o = lp_encoder_ft_opts_default();
        o.method = methods[k];
        o.rank = 4;
        o.batch_size = 8;
        o.max_steps = 1;
        o.adamw.lr = 1e-2;
        o.head_lr = 0.2; /* unit-norm embeddings need large head weights for confident logits */
        lp_encoder_adapter *a0 = NULL, *a = NULL;
        assert_int_equal(
            lp_encoder_finetune(e, toy_texts, toy_labels, N_TOY, 2, &o, &a0, NULL, &err), LP_OK);
        o.max_steps = 0;
        o.epochs = 40;
        double fl = 0;
        if (lp_encoder_finetune(e, toy_texts, toy_labels, N_TOY, 2, &o, &a, &fl, &err))
            fail_msg("%s", err.msg);
        size_t c0, c1;
        double l0 = mean_loss(a0, e, &c0), l1 = mean_loss(a, e, &c1);
        /* LoRA and full adapt the encoder and separate the set; the head alone sits on a
         * random 8-dimensional frozen encoder, whose features do not separate it fully */
        bool head = methods[k] == LP_ENCODER_FT_METHOD_HEAD;
        if (head ? !(l1 < 0.75 * l0) : (!(l1 < 0.5 * l0) || c1 != N_TOY))
            fail_msg("%s: loss %.4f after 1 step, %.4f after 80 (%zu/%zu right)",
                     lp_encoder_ft_method_name(methods[k]), l0, l1, c1, N_TOY);
        assert_true(fabs(fl - l1) < 0.2); /* the reported loss is the training loss */
        /* the same seed gives the same adapter */
        lp_encoder_adapter *b = NULL;
        assert_int_equal(
            lp_encoder_finetune(e, toy_texts, toy_labels, N_TOY, 2, &o, &b, NULL, &err), LP_OK);
        assert_int_equal(lp_encoder_adapter_n_params(a), lp_encoder_adapter_n_params(b));
        assert_memory_equal(a->block, b->block, a->n_block * sizeof(float));
        lp_encoder_adapter_free(a0);
        lp_encoder_adapter_free(a);
        lp_encoder_adapter_free(b);
    }
    /* the base encoder is never written (LoRA and full train their own blocks) */
    assert_int_equal(et_fingerprint(e, after, &err), LP_OK);
    assert_string_equal(before, after);
    lp_encoder_free(e);
}

static void test_adapter_size(void **state)
{
    (void)state;
    /* all-MiniLM-L6-v2 (config.json of the wheel) */
    lp_encoder_config c = {.vocab_size = 30522,
                           .hidden = 384,
                           .layers = 6,
                           .heads = 12,
                           .intermediate = 1536,
                           .max_position = 512,
                           .type_vocab = 2,
                           .max_len = 256,
                           .ln_eps = 1e-12f};
    /* embeddings 30522*384 + 512*384 + 2*384 + 2*384, per layer 4 (384^2 + 384) + 2*384 +
     * 384*1536 + 1536 + 1536*384 + 384 + 2*384 */
    assert_int_equal(lp_encoder_n_params(&c), 11918592u + 6u * 1774464u);
    size_t lora = lp_encoder_adapter_size(&c, LP_ENCODER_FT_METHOD_LORA, 8, 150);
    /* per layer: 4 (8*384 + 384*8) + 2 (8*384 + 1536*8) = 55296; head 150*384 + 150 (+16-float
     * alignment of each part) */
    assert_true(lora >= 6 * 55296 + 150 * 385 && lora < 6 * 55296 + 150 * 385 + 16 * 80);
    double frac = (double)lora / (double)lp_encoder_n_params(&c);
    assert_true(frac < 0.02);
    assert_true(lp_encoder_adapter_size(&c, LP_ENCODER_FT_METHOD_HEAD, 8, 150) < 150 * 385 + 32);
    /* the tiny fixture: the layout lp_encoder_load builds holds exactly those floats */
    lp_encoder *e = tiny("ref");
    size_t sum = 0;
    for (size_t i = 0; i < lp_param_layout_count(e->layout); i++)
        sum += lp_param_layout_at(e->layout, i)->n;
    assert_int_equal(lp_encoder_n_params(lp_encoder_config_of(e)), sum);
    lp_encoder_free(e);
}

static void one_line(const lp_err *err)
{
    assert_true(err->msg[0] != '\0');
    assert_null(strchr(err->msg, '\n'));
}

static void test_save_load_and_bad_files(void **state)
{
    (void)state;
    lp_encoder *e = tiny("cpu");
    lp_encoder_ft_opts o = lp_encoder_ft_opts_default();
    o.rank = 2;
    o.batch_size = 8;
    o.epochs = 2;
    lp_encoder_adapter *a = NULL, *b = NULL;
    lp_err err;
    assert_int_equal(lp_encoder_finetune(e, toy_texts, toy_labels, N_TOY, 2, &o, &a, NULL, &err),
                     LP_OK);
    char *path = lp_test_tmpfile("tiny.lpa");
    assert_int_equal(lp_encoder_adapter_save(a, path, &err), LP_OK);
    if (lp_encoder_adapter_load(path, e, &b, &err))
        fail_msg("%s", err.msg);
    assert_int_equal(lp_encoder_adapter_method(b), LP_ENCODER_FT_METHOD_LORA);
    assert_int_equal(lp_encoder_adapter_n_classes(b), 2);
    float pa[N_TOY * 2], pb[N_TOY * 2], za[N_TOY * 8], zb[N_TOY * 8];
    assert_int_equal(lp_encoder_adapter_predict(a, e, toy_texts, N_TOY, pa, za, &err), LP_OK);
    assert_int_equal(lp_encoder_adapter_predict(b, e, toy_texts, N_TOY, pb, zb, &err), LP_OK);
    assert_memory_equal(pa, pb, sizeof pa);
    assert_memory_equal(za, zb, sizeof za);
    for (size_t i = 0; i < N_TOY; i++)
        assert_true(fabs(pa[2 * i] + pa[2 * i + 1] - 1) < 1e-6);
    lp_encoder_adapter_free(b);
    b = NULL;

    /* another encoder's weights: one parameter changed */
    lp_encoder *e2 = tiny("cpu");
    e2->params.ptr[e2->layer[1].w1 + 3] += 0.25f;
    assert_int_equal(lp_encoder_adapter_load(path, e2, &b, &err), LP_EINVAL);
    one_line(&err);
    assert_non_null(strstr(err.msg, "weights"));
    assert_null(b);
    assert_int_equal(lp_encoder_adapter_predict(a, e2, toy_texts, 1, pa, NULL, &err), LP_EINVAL);
    lp_encoder_free(e2);

    /* damaged: one flipped byte in the block, a truncated file, a foreign file */
    uint8_t *data;
    size_t len;
    assert_int_equal(lp_file_read(path, &data, &len, &err), LP_OK);
    char *bad = lp_test_tmpfile("bad.lpa");
    data[len / 2] ^= 0x40;
    assert_int_equal(lp_file_write(bad, data, len, &err), LP_OK);
    assert_int_equal(lp_encoder_adapter_load(bad, e, &b, &err), LP_EFORMAT);
    one_line(&err);
    assert_non_null(strstr(err.msg, "CRC"));
    data[len / 2] ^= 0x40;
    assert_int_equal(lp_file_write(bad, data, len - 7, &err), LP_OK);
    assert_int_equal(lp_encoder_adapter_load(bad, e, &b, &err), LP_EFORMAT);
    one_line(&err);
    memcpy(data, "LPLA", 4); /* an nn LoRA file's magic */
    assert_int_equal(lp_file_write(bad, data, len, &err), LP_OK);
    assert_int_equal(lp_encoder_adapter_load(bad, e, &b, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "not an encoder adapter"));
    memcpy(data, "LPEA", 4);
    data[4] = 9; /* a future version */
    assert_int_equal(lp_file_write(bad, data, len, &err), LP_OK);
    assert_int_equal(lp_encoder_adapter_load(bad, e, &b, &err), LP_EVERSION);
    one_line(&err);
    assert_int_equal(lp_encoder_adapter_load("/nonexistent/x.lpa", e, &b, &err), LP_ENOTFOUND);
    assert_null(b);
    free(data);

    /* bad arguments */
    int32_t lab[N_TOY];
    memcpy(lab, toy_labels, sizeof lab);
    lab[3] = 2;
    assert_int_equal(lp_encoder_finetune(e, toy_texts, lab, N_TOY, 2, &o, &b, NULL, &err),
                     LP_EINVAL);
    assert_non_null(strstr(err.msg, "text 3"));
    o.rank = 9; /* above D = 8 */
    assert_int_equal(lp_encoder_finetune(e, toy_texts, toy_labels, N_TOY, 2, &o, &b, NULL, &err),
                     LP_EINVAL);
    assert_non_null(strstr(err.msg, "rank"));
    o = lp_encoder_ft_opts_default();
    o.batch_size = 0;
    assert_int_equal(lp_encoder_ft_opts_check(&o, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "batch_size"));
    assert_int_equal(lp_encoder_finetune(e, toy_texts, toy_labels, N_TOY, 1, NULL, &b, NULL, &err),
                     LP_EINVAL);
    lp_encoder_ft_method m;
    assert_int_equal(lp_encoder_ft_method_parse("lora", &m, &err), LP_OK);
    assert_int_equal(m, LP_ENCODER_FT_METHOD_LORA);
    assert_int_equal(lp_encoder_ft_method_parse("qlora", &m, &err), LP_EINVAL);
    /* per-method defaults: full fine-tuning moves pretrained weights, at a BERT-range rate */
    lp_encoder_ft_opts lo = lp_encoder_ft_opts_for(LP_ENCODER_FT_METHOD_LORA);
    lp_encoder_ft_opts fu = lp_encoder_ft_opts_for(LP_ENCODER_FT_METHOD_FULL);
    assert_int_equal(lo.method, LP_ENCODER_FT_METHOD_LORA);
    assert_int_equal(fu.method, LP_ENCODER_FT_METHOD_FULL);
    assert_true(lo.adamw.lr == lp_encoder_ft_opts_default().adamw.lr);
    assert_true(fu.adamw.lr == LP_ENCODER_FT_FULL_LR && fu.adamw.lr < lo.adamw.lr);
    assert_int_equal(lp_encoder_ft_opts_check(&fu, &err), LP_OK);
    assert_null(b);
    lp_encoder_adapter_free(NULL);
    lp_encoder_adapter_free(a);
    lp_encoder_free(e);
    free(path);
    free(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lora_gradients),     cmocka_unit_test(test_full_gradients),
        cmocka_unit_test(test_zero_b_equals_base), cmocka_unit_test(test_view_equals_net),
        cmocka_unit_test(test_merge_equals_adapter),
        cmocka_unit_test(test_training_reduces_loss),
        cmocka_unit_test(test_adapter_size),       cmocka_unit_test(test_save_load_and_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
