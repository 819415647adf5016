/*
 * test_wordpiece.c - the BERT WordPiece tokenizer against tests/fixtures/gen_wordpiece.py (a
 * pure-Python port of google-research/bert tokenization.py) on the all-MiniLM-L6-v2 vocabulary:
 * identical ids on a corpus of accents, punctuation, digits, emoji, CJK, Hangul, Cyrillic,
 * Greek, control and zero-width characters, odd whitespace, over-long words and truncation.
 * Plus the padded batch layout, a truncation cap, an embedded NUL, and the errors (invalid
 * UTF-8, a vocabulary without [UNK]).
 */
#include "lp_test.h"

#include "lepton/encoder.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

static lp_wordpiece *load_vocab(size_t max_len)
{
    uint8_t *v = NULL;
    size_t len = 0;
    lp_err err;
    if (lp_file_read(lp_test_fixture("minilm_vocab.txt.gz"), &v, &len, &err))
        fail_msg("%s", err.msg);
    lp_wordpiece_opts o = lp_wordpiece_opts_default();
    o.max_len = max_len;
    lp_wordpiece *wp = NULL;
    if (lp_wordpiece_new((const char *)v, len, &o, &wp, &err))
        fail_msg("%s", err.msg);
    free(v);
    return wp;
}

static void test_matches_reference(void **state)
{
    (void)state;
    lp_wordpiece *wp = load_vocab(256);
    assert_int_equal(lp_wordpiece_vocab_size(wp), 30522);
    assert_int_equal(lp_wordpiece_id(wp, "[CLS]"), 101);
    assert_string_equal(lp_wordpiece_token(wp, 102), "[SEP]");
    assert_null(lp_wordpiece_token(wp, 30522));
    lp_fixture *fx = lp_fixture_load("wordpiece.txt");
    size_t nt, ni, r, c;
    char **texts = lp_fixture_strings(fx, "texts", &nt);
    char **want = lp_fixture_strings(fx, "ids", &ni);
    double *trunc = lp_fixture_array(fx, "truncated", &r, &c);
    assert_int_equal(nt, ni);
    assert_int_equal(c, nt);
    int32_t ids[256];
    size_t n_trunc = 0;
    for (size_t i = 0; i < nt; i++) {
        cJSON *j = cJSON_Parse(texts[i]);
        assert_true(cJSON_IsString(j));
        size_t n = 0;
        bool cut = false;
        lp_err err;
        if (lp_wordpiece_encode(wp, j->valuestring, strlen(j->valuestring), ids, 256, &n, &cut,
                                &err))
            fail_msg("text %zu: %s", i, err.msg);
        char got[8192] = "";
        size_t w = 0;
        for (size_t k = 0; k < n && w < sizeof got - 16; k++)
            w += (size_t)snprintf(got + w, sizeof got - w, k ? " %d" : "%d", ids[k]);
        if (strcmp(got, want[i]) != 0)
            fail_msg("text %zu %s:\n got  %s\n want %s", i, texts[i], got, want[i]);
        assert_int_equal(cut, trunc[i] != 0);
        n_trunc += cut;
        cJSON_Delete(j);
    }
    assert_true(n_trunc >= 1); /* the corpus holds texts over 256 pieces */
    free(trunc);
    lp_fixture_free(fx);
    lp_wordpiece_free(wp);
}

static void test_basic_words_and_batch(void **state)
{
    (void)state;
    lp_wordpiece *wp = load_vocab(8);
    lp_terms words = {0};
    const char text[] = "Héllo,\x00 WORLD\xe4\xb8\xad!"; /* embedded NUL is dropped */
    assert_int_equal(lp_wordpiece_basic(wp, text, sizeof text - 1, &words, NULL), LP_OK);
    const char *want[] = {"hello", ",", "world", "\xe4\xb8\xad", "!"};
    assert_int_equal(words.n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(words.v[i], want[i]);
    lp_terms_free(&words);

    const char *texts[] = {"hello world", NULL, "one two three four five six seven"};
    lp_token_batch b;
    assert_int_equal(lp_wordpiece_encode_batch(wp, texts, 3, &b, NULL), LP_OK);
    assert_int_equal(b.n, 3);
    assert_int_equal(b.t, 8); /* capped at max_len 8 */
    assert_int_equal(b.lens[0], 4);
    assert_int_equal(b.lens[1], 2);
    assert_int_equal(b.n_truncated, 1);
    assert_int_equal(b.ids[0], 101);
    assert_int_equal(b.ids[3], 102);
    assert_int_equal(b.ids[4], lp_wordpiece_pad_id(wp));
    assert_true(b.mask[3] == 1.0f && b.mask[4] == 0.0f);
    assert_int_equal(b.ids[8 + 1], 102);
    assert_int_equal(b.ids[2 * 8 + 7], 102); /* [SEP] kept after truncation */
    lp_token_batch_clear(&b);
    lp_token_batch_clear(NULL);

    lp_err err;
    int32_t ids[8];
    size_t n;
    assert_int_equal(lp_wordpiece_encode(wp, "ok \xff bad", 8, ids, 8, &n, NULL, &err), LP_EPARSE);
    assert_non_null(strstr(err.msg, "byte 3"));
    const char *bad[] = {"fine", "\xc3("};
    assert_int_equal(lp_wordpiece_encode_batch(wp, bad, 2, &b, &err), LP_EPARSE);
    assert_non_null(strstr(err.msg, "text 1"));
    assert_null(b.ids);
    assert_int_equal(lp_wordpiece_encode(wp, "x", 1, ids, 1, &n, NULL, &err), LP_EINVAL);
    lp_wordpiece_free(wp);
    lp_wordpiece_free(NULL);
}

static void test_vocab_errors(void **state)
{
    (void)state;
    lp_err err;
    lp_wordpiece *wp = NULL;
    const char *v = "[PAD]\n[CLS]\n[SEP]\nhello\n";
    assert_int_equal(lp_wordpiece_new(v, strlen(v), NULL, &wp, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "[UNK]"));
    assert_null(wp);
    lp_wordpiece_opts o = lp_wordpiece_opts_default();
    o.max_len = 1;
    assert_int_equal(lp_wordpiece_new(v, strlen(v), &o, &wp, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "max_len"));
    /* A tiny vocabulary: greedy longest match and [UNK] for uncoverable words. */
    const char *v2 = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nun\nunaff\n##able\n##a\n##ff\n";
    assert_int_equal(lp_wordpiece_new(v2, strlen(v2), NULL, &wp, &err), LP_OK);
    int32_t ids[16];
    size_t n;
    assert_int_equal(lp_wordpiece_encode(wp, "unaffable unx", 13, ids, 16, &n, NULL, &err), LP_OK);
    int32_t want[] = {2, 5, 6, 1, 3}; /* [CLS] unaff ##able [UNK] [SEP] */
    assert_int_equal(n, 5);
    assert_memory_equal(ids, want, sizeof want);
    lp_wordpiece_free(wp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_reference),
        cmocka_unit_test(test_basic_words_and_batch),
        cmocka_unit_test(test_vocab_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
