/*
 * test_text.c - the text module against scikit-learn 1.2 fixtures (tests/fixtures/text.txt from
 * gen_feat.py): MurmurHash3, TF-IDF vocabularies/idf/values for word, char and char_wb
 * analyzers with min_df/max_df/max_features/sublinear options, HashingVectorizer; the
 * tokenizer on multilingual and invalid UTF-8; BM25 against a hand-computed example;
 * vectorizer serialisation round trip and truncation.
 */
#include "lp_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "text/text_internal.h"

/* Vectorizer outputs are float32 (rounding ~6e-8 relative) of L2-normalised rows in [-1, 1];
 * sklearn computes in float64. */
#define TOL_VEC_ATOL 1e-6
#define TOL_VEC_RTOL 1e-5
/* idf is computed in double on both sides from the same integer counts. */
#define TOL_IDF 1e-12

static double *csr_dense(const lp_csr *m)
{
    double *d = calloc(m->rows * m->cols + 1, sizeof(double));
    for (size_t i = 0; i < m->rows; i++)
        for (size_t p = m->indptr[i]; p < m->indptr[i + 1]; p++)
            d[i * m->cols + m->indices[p]] = m->values[p];
    return d;
}

static void check_dense(const lp_csr *m, const lp_fixture *fx, const char *name)
{
    size_t r, c;
    double *want = lp_fixture_array(fx, name, &r, &c);
    assert_int_equal(m->rows, r);
    assert_int_equal(m->cols, c);
    assert_int_equal(lp_csr_check(m, name, NULL), LP_OK);
    double *got = csr_dense(m);
    lp_assert_close(got, want, r * c, TOL_VEC_ATOL, TOL_VEC_RTOL, name);
    free(got);
    free(want);
}

/* lp_strmap: ids in insertion order across many growths, keys that are prefixes of one
 * another, lookups of absent keys and of keys given by length inside a longer buffer. */
static void test_utf8_blank(void **state)
{
    (void)state;
    assert_true(lp_utf8_blank("", 0));
    assert_true(lp_utf8_blank(" \t\r\n", 4));
    assert_true(lp_utf8_blank("\xc2\xa0\xe3\x80\x80\xe2\x80\x8b\xef\xbb\xbf", 11));
    assert_false(lp_utf8_blank(" a ", 3));
    assert_false(lp_utf8_blank("\xc2\xa0\xe6\x97\xa5", 5)); /* a CJK character */
    assert_false(lp_utf8_blank("\xff", 1));                   /* invalid: not blank */
}

static void test_strmap(void **state)
{
    (void)state;
    lp_strmap m;
    lp_strmap_init(&m);
    assert_int_equal(lp_strmap_find(&m, "a", 1), -1);
    enum { N = 50000 };
    char key[32];
    for (size_t i = 0; i < N; i++) {
        int len = snprintf(key, sizeof key, "k%zu", i);
        size_t id;
        bool added;
        assert_int_equal(lp_strmap_add(&m, key, (size_t)len, &id, &added), LP_OK);
        assert_true(added);
        assert_int_equal(id, i);
    }
    for (size_t i = 0; i < N; i++) {
        int len = snprintf(key, sizeof key, "k%zu", i);
        assert_int_equal(lp_strmap_find(&m, key, (size_t)len), (long)i);
        size_t id;
        bool added;
        assert_int_equal(lp_strmap_add(&m, key, (size_t)len, &id, &added), LP_OK);
        assert_false(added);
        assert_int_equal(id, i);
        len = snprintf(key, sizeof key, "x%zu", i);
        assert_int_equal(lp_strmap_find(&m, key, (size_t)len), -1);
    }
    /* "k1" is a prefix of "k10" etc.: found by length, not by the longer buffer's NUL */
    assert_int_equal(lp_strmap_find(&m, "k12345", 2), 1);
    assert_int_equal(lp_strmap_find(&m, "k12345", 3), 12);
    assert_int_equal(lp_strmap_find(&m, "k", 1), -1);
    assert_string_equal(m.keys[777], "k777");
    lp_strmap_free(&m);
}

/* m holds exactly these rows + 1 offsets and nnz entries. */
static void expect_csr(const lp_csr *m, const size_t *ip, const uint32_t *ix, const float *v,
                       size_t nnz)
{
    assert_memory_equal(m->indptr, ip, (m->rows + 1) * sizeof *ip);
    assert_memory_equal(m->indices, ix, nnz * sizeof *ix);
    assert_memory_equal(m->values, v, nnz * sizeof *v);
}

/* lp_csr_transpose: every entry lands at (column, row), rows in order, a valid CSR; twice
 * gives the matrix back; empty rows and columns survive. */
static void test_csr_transpose(void **state)
{
    (void)state;
    /* 3 x 4: [[1 0 2 0], [0 0 0 0], [3 4 0 5]] */
    lp_csr *m = lp_csr_new(3, 4, 5);
    const size_t ip[] = {0, 2, 2, 5};
    const uint32_t ix[] = {0, 2, 0, 1, 3};
    const float v[] = {1, 2, 3, 4, 5};
    memcpy(m->indptr, ip, sizeof ip);
    memcpy(m->indices, ix, sizeof ix);
    memcpy(m->values, v, sizeof v);
    lp_csr *t = lp_csr_transpose(m);
    assert_non_null(t);
    assert_int_equal(t->rows, 4);
    assert_int_equal(t->cols, 3);
    assert_int_equal(lp_csr_check(t, "t", NULL), LP_OK);
    const size_t tip[] = {0, 2, 3, 4, 5};
    const uint32_t tix[] = {0, 2, 2, 0, 2};
    const float tv[] = {1, 3, 4, 2, 5};
    expect_csr(t, tip, tix, tv, 5);
    lp_csr *back = lp_csr_transpose(t);
    expect_csr(back, ip, ix, v, 5);
    lp_csr_free(back);
    lp_csr_free(t);
    lp_csr_free(m);
}

static void test_murmur3(void **state)
{
    (void)state;
    lp_fixture *fx = lp_fixture_load("text.txt");
    size_t n;
    char **keys = lp_fixture_strings(fx, "murmur_keys", &n);
    double *s0 = lp_fixture_array(fx, "murmur_s0", NULL, NULL);
    double *s42 = lp_fixture_array(fx, "murmur_s42", NULL, NULL);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal((int32_t)lp_murmur3_32(keys[i], strlen(keys[i]), 0), (int32_t)s0[i]);
        assert_int_equal((int32_t)lp_murmur3_32(keys[i], strlen(keys[i]), 42), (int32_t)s42[i]);
    }
    /* INT32_MIN has magnitude 2^31: column 2^31 mod n, sign -1 (checked via the formula on a
     * key whose hash is not INT32_MIN: the magnitude of a negative hash is its negation) */
    uint32_t col;
    int sign;
    lp_hash_feature(keys[1], strlen(keys[1]), 1000, &col, &sign);
    int32_t h = (int32_t)s0[1];
    assert_int_equal(sign, h >= 0 ? 1 : -1);
    assert_int_equal(col, (uint32_t)llabs((long long)h) % 1000);
    free(s0);
    free(s42);
    lp_fixture_free(fx);
}

static void expect_tokens(const lp_tokenizer *t, const char *text, const char *const *want,
                          size_t n)
{
    lp_terms out = {0};
    lp_err err;
    assert_int_equal(lp_tokenizer_run(t, text, strlen(text), &out, &err), LP_OK);
    assert_int_equal(out.n, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(out.v[i], want[i]);
    lp_terms_free(&out);
}

static void test_tokenizer(void **state)
{
    (void)state;
    lp_tokenizer *t;
    lp_err err;
    assert_int_equal(lp_tokenizer_new(NULL, true, &t, &err), LP_OK);
    const char *w1[] = {"café", "crème", "πανω", "ελλάδα", "быстрая", "ёжик", "東京",
                        "b2", "łódź", "čč"};
    expect_tokens(t, "Café CRÈME ΠΑΝΩ ΕΛΛΆΔΑ Быстрая Ёжик 東京 🎉 a b2 ŁÓDŹ Čč", w1, 10);
    const char *w2[] = {"don", "refund_id", "42"};
    expect_tokens(t, "don't! refund_id=42.", w2, 3);
    expect_tokens(t, "", NULL, 0);
    expect_tokens(t, "🎉🎉 ! ?", NULL, 0);

    /* invalid UTF-8 is an error naming the byte, and leaves the output untouched */
    lp_terms out = {0};
    const char *bad[] = {"ok \xff ok", "trunc \xe2\x82", "overlong \xc0\xaf",
                         "surrogate \xed\xa0\x80"};
    size_t at[] = {3, 6, 9, 10};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(lp_tokenizer_run(t, bad[i], strlen(bad[i]), &out, &err), LP_EPARSE);
        char want[64];
        snprintf(want, sizeof want, "byte %zu", at[i]);
        assert_non_null(strstr(err.msg, want));
        assert_int_equal(out.n, 0);
    }
    lp_tokenizer_free(t);

    /* a pattern with one group yields the group; no lower-casing */
    assert_int_equal(lp_tokenizer_new("#(\\w+)", false, &t, &err), LP_OK);
    const char *w3[] = {"Tag", "ünï"};
    expect_tokens(t, "x #Tag y #ünï #", w3, 2);
    lp_tokenizer_free(t);
    /* sklearn's spelling with (?u) is accepted */
    assert_int_equal(lp_tokenizer_new("(?u)\\b\\w\\w+\\b", true, &t, &err), LP_OK);
    lp_tokenizer_free(t);
    assert_int_equal(lp_tokenizer_new("(unclosed", true, &t, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "(unclosed"));
    assert_null(t);
    assert_int_equal(lp_tokenizer_new("(a)(b)", true, &t, &err), LP_EINVAL);
    lp_tokenizer_free(NULL);
}

static void test_char_analyzers(void **state)
{
    (void)state;
    lp_analyzer_opts o = lp_analyzer_opts_default();
    o.kind = LP_ANALYZER_KIND_CHAR_WB;
    o.ngram_min = 2;
    o.ngram_max = 3;
    lp_analyzer *a;
    assert_int_equal(lp_analyzer_new(&o, &a, NULL), LP_OK);
    lp_terms t = {0};
    /* " é " has 3 code points: bigrams " é", "é ", then the trigram " é " once */
    assert_int_equal(lp_analyzer_run(a, "É", strlen("É"), &t, NULL), LP_OK);
    const char *want[] = {" é", "é ", " é "};
    assert_int_equal(t.n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(t.v[i], want[i]);
    lp_terms_free(&t);
    lp_analyzer_free(a);
    o.ngram_min = 0;
    lp_err err;
    assert_int_equal(lp_analyzer_new(&o, &a, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "ngram_range"));
}

typedef struct tf_case {
    const char *name;
    lp_analyzer_kind an;
    unsigned lo, hi;
    size_t min_df, max_features;
    double max_df_frac;
    bool sublinear, smooth;
} tf_case;

static void test_tfidf_vs_sklearn(void **state)
{
    (void)state;
    lp_fixture *fx = lp_fixture_load("text.txt");
    size_t nd, nt;
    char **docs = lp_fixture_strings(fx, "docs", &nd);
    char **tdocs = lp_fixture_strings(fx, "test_docs", &nt);
    const tf_case cases[] = {
        {"w12", LP_ANALYZER_KIND_WORD, 1, 2, 1, 0, 1, false, true},
        {"sub_min2", LP_ANALYZER_KIND_WORD, 1, 1, 2, 0, 1, true, true},
        {"cwb24", LP_ANALYZER_KIND_CHAR_WB, 2, 4, 1, 0, 1, false, true},
        {"c13_max40", LP_ANALYZER_KIND_CHAR, 1, 3, 1, 40, 1, false, true},
        {"maxdf", LP_ANALYZER_KIND_WORD, 1, 1, 1, 0, 0.3, false, false},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const tf_case *k = &cases[c];
        lp_textvec_opts o = lp_textvec_opts_default();
        o.analyzer.kind = k->an;
        o.analyzer.ngram_min = k->lo;
        o.analyzer.ngram_max = k->hi;
        o.min_df = k->min_df;
        o.max_features = k->max_features;
        o.max_df_frac = k->max_df_frac;
        o.sublinear_tf = k->sublinear;
        o.smooth_idf = k->smooth;
        lp_textvec *v;
        lp_err err;
        assert_int_equal(lp_textvec_fit(&o, (const char *const *)docs, nd, &v, &err), LP_OK);
        char name[64];
        snprintf(name, sizeof name, "%s_vocab", k->name);
        size_t nv;
        char **vocab = lp_fixture_strings(fx, name, &nv);
        assert_int_equal(lp_textvec_n_features(v), nv);
        for (size_t j = 0; j < nv; j++) {
            if (strcmp(lp_textvec_term(v, j), vocab[j]))
                fail_msg("%s: column %zu is '%s', sklearn has '%s'", k->name, j,
                         lp_textvec_term(v, j), vocab[j]);
            assert_int_equal(lp_textvec_find(v, vocab[j]), (long)j);
        }
        snprintf(name, sizeof name, "%s_idf", k->name);
        double *idf = lp_fixture_array(fx, name, NULL, NULL);
        double *got = malloc(nv * sizeof(double));
        for (size_t j = 0; j < nv; j++)
            got[j] = lp_textvec_idf(v, j);
        lp_assert_close(got, idf, nv, TOL_IDF, TOL_IDF, name);
        free(got);
        free(idf);
        lp_csr *x;
        assert_int_equal(lp_textvec_transform(v, (const char *const *)docs, nd, &x, &err), LP_OK);
        snprintf(name, sizeof name, "%s_x", k->name);
        check_dense(x, fx, name);
        lp_csr_free(x);
        assert_int_equal(lp_textvec_transform(v, (const char *const *)tdocs, nt, &x, &err), LP_OK);
        snprintf(name, sizeof name, "%s_test", k->name);
        check_dense(x, fx, name);
        lp_csr_free(x);
        lp_textvec_free(v);
    }
    lp_fixture_free(fx);
}

static void test_hashing_vs_sklearn(void **state)
{
    (void)state;
    lp_fixture *fx = lp_fixture_load("text.txt");
    size_t nd;
    char **docs = lp_fixture_strings(fx, "docs", &nd);
    lp_textvec_opts o = lp_textvec_opts_default();
    o.kind = LP_TEXTVEC_KIND_HASH;
    o.n_features = 64;
    o.analyzer.ngram_max = 2;
    lp_textvec *v;
    lp_csr *x;
    assert_int_equal(lp_textvec_fit(&o, NULL, 0, &v, NULL), LP_OK);
    assert_int_equal(lp_textvec_transform(v, (const char *const *)docs, nd, &x, NULL), LP_OK);
    check_dense(x, fx, "hash64_x");
    lp_csr_free(x);
    lp_textvec_free(v);

    o = lp_textvec_opts_default();
    o.kind = LP_TEXTVEC_KIND_HASH;
    o.n_features = 50;
    o.analyzer.kind = LP_ANALYZER_KIND_CHAR_WB;
    o.analyzer.ngram_min = 2;
    o.analyzer.ngram_max = 3;
    o.alternate_sign = false;
    o.norm = LP_NORM_NONE;
    assert_int_equal(lp_textvec_fit(&o, NULL, 0, &v, NULL), LP_OK);
    assert_int_equal(lp_textvec_transform(v, (const char *const *)docs, nd, &x, NULL), LP_OK);
    check_dense(x, fx, "hash50cwb_x");
    lp_csr_free(x);
    lp_textvec_free(v);
    lp_fixture_free(fx);
}

static void test_tfidf_errors_and_roundtrip(void **state)
{
    (void)state;
    /* a NULL document and one without tokens ("!!", which once hit a NULL-pointer offset in
     * the n-gram step under UBSan) both give empty rows */
    const char *docs[] = {"refund my card", NULL, "card declined twice", "refund refund", "!!"};
    lp_textvec_opts o = lp_textvec_opts_default();
    o.analyzer.ngram_max = 2;
    o.sublinear_tf = true;
    lp_textvec *v, *w;
    lp_err err;
    assert_int_equal(lp_textvec_fit(&o, docs, 5, &v, &err), LP_OK);
    lp_buf b;
    lp_buf_init(&b);
    lp_textvec_save(v, &b);
    assert_int_equal(lp_buf_status(&b, NULL), LP_OK);
    lp_reader r;
    lp_reader_init(&r, b.data, b.len, "vec blob");
    assert_int_equal(lp_textvec_load(&r, &w, &err), LP_OK);
    assert_int_equal(r.pos, b.len);
    lp_csr *x1, *x2;
    assert_int_equal(lp_textvec_transform(v, docs, 5, &x1, NULL), LP_OK);
    assert_int_equal(lp_textvec_transform(w, docs, 5, &x2, NULL), LP_OK);
    assert_int_equal(x1->nnz, x2->nnz);
    assert_int_equal(x1->nnz > 0, 1);
    assert_memory_equal(x1->values, x2->values, x1->nnz * sizeof(float));
    assert_memory_equal(x1->indices, x2->indices, x1->nnz * sizeof(uint32_t));
    assert_int_equal(x1->indptr[2] - x1->indptr[1], 0);
    assert_int_equal(x1->indptr[5] - x1->indptr[4], 0);
    lp_csr_free(x1);
    lp_csr_free(x2);
    lp_textvec_free(w);
    /* every truncation is a clean error */
    for (size_t cut = 0; cut < b.len; cut++) {
        lp_reader_init(&r, b.data, cut, "vec blob");
        w = (lp_textvec *)1;
        assert_int_not_equal(lp_textvec_load(&r, &w, &err), LP_OK);
        assert_null(w);
    }
    b.data[4] = 99; /* version */
    lp_reader_init(&r, b.data, b.len, "vec blob");
    assert_int_equal(lp_textvec_load(&r, &w, &err), LP_EVERSION);
    lp_buf_free(&b);
    lp_textvec_free(v);

    o.min_df = 5;
    assert_int_equal(lp_textvec_fit(&o, docs, 4, &v, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "no terms remain"));
    o.min_df = 1;
    const char *bad[] = {"fine", "bad \xff"};
    assert_int_equal(lp_textvec_fit(&o, bad, 2, &v, &err), LP_EPARSE);
    assert_non_null(strstr(err.msg, "document 1"));
}

static void test_bm25(void **state)
{
    (void)state;
    const char *docs[] = {"apple banana", "apple apple cherry", "banana cherry date fig"};
    lp_bm25_opts o = lp_bm25_opts_default();
    lp_bm25 *idx;
    assert_int_equal(lp_bm25_build(&o, docs, 3, &idx, NULL), LP_OK);
    assert_int_equal(lp_bm25_n_docs(idx), 3);
    /* By hand: N = 3, |d| = 2, 3, 4, avgdl = 3, k1 = 1.5, b = 0.75.
     * apple: df 2, idf = ln(1 + 1.5/2.5) = ln 1.6
     *   d0: tf 1, K = 1.5 (0.25 + 0.75 * 2/3) = 1.125 -> ln1.6 * 2.5 / 2.125
     *   d1: tf 2, K = 1.5                          -> ln1.6 * 2 * 2.5 / 3.5 */
    double s[3];
    assert_int_equal(lp_bm25_scores(idx, "Apple", s, NULL), LP_OK);
    double want[3] = {log(1.6) * 2.5 / 2.125, log(1.6) * 5 / 3.5, 0};
    lp_assert_close(s, want, 3, 1e-12, 1e-12, "bm25 apple");
    /* cherry: df 2 (ln 1.6); fig: df 1, idf = ln(1 + 2.5/1.5)
     *   d1: cherry tf 1, K = 1.5 -> ln1.6 * 2.5 / 2.5
     *   d2: K = 1.5 (0.25 + 0.75 * 4/3) = 1.875 -> (ln1.6 + ln(8/3)) * 2.5 / 2.875 */
    size_t ids[3], n;
    double ts[3];
    assert_int_equal(lp_bm25_top_k(idx, "cherry fig kiwi", 3, ids, ts, &n, NULL), LP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 2);
    assert_int_equal(ids[1], 1);
    double want2[2] = {(log(1.6) + log(1 + 2.5 / 1.5)) * 2.5 / 2.875, log(1.6)};
    lp_assert_close(ts, want2, 2, 1e-12, 1e-12, "bm25 top-k");
    assert_int_equal(lp_bm25_top_k(idx, "banana", 1, ids, ts, &n, NULL), LP_OK);
    assert_int_equal(n, 1);
    assert_int_equal(ids[0], 0); /* shorter document wins */
    lp_err err;
    assert_int_equal(lp_bm25_top_k(idx, "\xc3", 2, ids, ts, &n, &err), LP_EPARSE);
    lp_bm25_free(idx);
    o.b = 2;
    assert_int_equal(lp_bm25_build(&o, docs, 3, &idx, &err), LP_EINVAL);
    lp_bm25_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_utf8_blank),
        cmocka_unit_test(test_strmap),
        cmocka_unit_test(test_csr_transpose),
        cmocka_unit_test(test_murmur3),
        cmocka_unit_test(test_tokenizer),
        cmocka_unit_test(test_char_analyzers),
        cmocka_unit_test(test_tfidf_vs_sklearn),
        cmocka_unit_test(test_hashing_vs_sklearn),
        cmocka_unit_test(test_tfidf_errors_and_roundtrip),
        cmocka_unit_test(test_bm25),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
