/*
 * text.h - text to features: a PCRE2 tokenizer over UTF-8, word and character n-grams,
 * MurmurHash3 feature hashing, TF-IDF with scikit-learn's definitions, Okapi BM25 retrieval and
 * LDA topics (collapsed Gibbs sampling).
 *
 * Compatibility target: scikit-learn 1.2 (CountVectorizer / TfidfVectorizer / HashingVectorizer
 * with their defaults unless an option says otherwise), so that columns, vocabularies and
 * values line up with a Python reference. Text is UTF-8; invalid UTF-8 is rejected with
 * LP_EPARSE naming the byte offset (never a crash). Lower-casing is locale-free and covers
 * ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic (1:1 mappings; Greek capital sigma always
 * becomes medial sigma, unlike Python's context-sensitive final sigma; U+0130 becomes "i"
 * followed by U+0307, as in Python).
 *
 * Thread safety: fitted objects (lp_tokenizer, lp_analyzer, lp_textvec, lp_bm25) are immutable
 * after creation and may be used by many threads at once: every call allocates its own PCRE2
 * match data.
 */
#ifndef LEPTON_TEXT_H
#define LEPTON_TEXT_H

#include "lepton/base.h"
#include "lepton/linalg.h"

#ifdef __cplusplus
extern "C" {
#endif

/* scikit-learn's default token_pattern "(?u)\b\w\w+\b" (PCRE2 spelling: the "(?u)" prefix is
 * implied by PCRE2_UCP and is stripped from patterns that carry it). */
#define LP_TOKEN_PATTERN_DEFAULT "\\b\\w\\w+\\b"

/* A growable list of NUL-terminated strings (tokens or n-gram terms). The strings live in the
 * list's own storage (blocks it reuses after a clear: a document's terms cost no malloc each);
 * v[i] stays valid until the next clear or free. Zero-initialise it ({0}) before use. */
typedef struct lp_terms {
    char **v;
    size_t n, cap;
    void *store; /* private: the blocks holding the strings */
} lp_terms;

/* Empty the list, keeping its memory for reuse. */
void lp_terms_clear(lp_terms *t);
/* Release the strings and the array; t itself is the caller's. */
void lp_terms_free(lp_terms *t);

/* ---- UTF-8 helpers --------------------------------------------------------------------------*/
/* LP_OK when s[0..len) is valid UTF-8 (no overlongs, surrogates or code points > U+10FFFF);
 * LP_EPARSE "<what>: invalid UTF-8 at byte N" otherwise. */
lp_status lp_utf8_check(const char *s, size_t len, const char *what, lp_err *err);
/* Whether s[0..len) says nothing: only white space (Python's str.isspace() set: ASCII, U+00A0,
 * U+2000..U+200A, U+3000, ...) and the zero-width characters U+200B..U+200D, U+2060, U+FEFF.
 * true for len 0; false for invalid UTF-8 (a reader's error to report, not blank). */
bool lp_utf8_blank(const char *s, size_t len);
/* Lower-cased copy of valid UTF-8 s[0..len) (see the header paragraph for coverage); caller
 * frees; *out_len (may be NULL) gets its length. NULL on allocation failure or invalid UTF-8. */
char *lp_utf8_lower(const char *s, size_t len, size_t *out_len);

/* ---- MurmurHash3 ----------------------------------------------------------------------------*/
/* MurmurHash3_x86_32 (Austin Appleby, public domain algorithm) of key[0..len) with seed.
 * scikit-learn's murmurhash3_32(key, seed, positive=False) is (int32_t) of this value. */
uint32_t lp_murmur3_32(const void *key, size_t len, uint32_t seed);
/* scikit-learn HashingVectorizer's column and sign of a term: h = (int32)murmur3(term, 0);
 * *col = |h| mod n_features (|INT32_MIN| taken as 2^31); *sign = h >= 0 ? +1 : -1. */
void lp_hash_feature(const char *term, size_t len, uint32_t n_features, uint32_t *col,
                     int *sign);

/* ---- tokenizer ------------------------------------------------------------------------------*/
typedef struct lp_tokenizer lp_tokenizer;

/* Compile pattern (NULL = LP_TOKEN_PATTERN_DEFAULT) once with PCRE2_UTF | PCRE2_UCP. A pattern
 * with exactly one capture group yields that group (like Python's re.findall), else the whole
 * match; empty matches are skipped. lowercase: fold the text before matching (sklearn's
 * lowercase=True). LP_EINVAL naming the pattern offset when it does not compile. */
lp_status lp_tokenizer_new(const char *pattern, bool lowercase, lp_tokenizer **out, lp_err *err);
void lp_tokenizer_free(lp_tokenizer *t);
/* Append the tokens of text[0..len) to out (strings owned by out). LP_EPARSE on invalid UTF-8
 * (out unchanged), LP_ENOMEM. Thread-safe. */
lp_status lp_tokenizer_run(const lp_tokenizer *t, const char *text, size_t len, lp_terms *out,
                           lp_err *err);

/* ---- analyzer: tokenizer + n-grams -----------------------------------------------------------*/
typedef enum lp_analyzer_kind {
    LP_ANALYZER_KIND_WORD = 0, /* tokens of the pattern, then word n-grams joined by ' ' */
    LP_ANALYZER_KIND_CHAR,     /* character n-grams over the whitespace-collapsed text */
    LP_ANALYZER_KIND_CHAR_WB   /* character n-grams inside ' word ' (sklearn "char_wb") */
} lp_analyzer_kind;

typedef struct lp_analyzer_opts {
    lp_analyzer_kind kind;
    const char *token_pattern; /* WORD only; NULL = default. Copied by lp_analyzer_new. */
    bool lowercase;            /* default true */
    unsigned ngram_min, ngram_max; /* default 1, 1; 1 <= min <= max <= 16 */
} lp_analyzer_opts;

lp_analyzer_opts lp_analyzer_opts_default(void);
lp_status lp_analyzer_opts_check(const lp_analyzer_opts *o, lp_err *err);
/* "word", "char", "char_wb" */
const char *lp_analyzer_kind_name(lp_analyzer_kind k);

typedef struct lp_analyzer lp_analyzer;

lp_status lp_analyzer_new(const lp_analyzer_opts *opts, lp_analyzer **out, lp_err *err);
void lp_analyzer_free(lp_analyzer *a);
/* The options the analyzer was built with (token_pattern points into the analyzer). */
const lp_analyzer_opts *lp_analyzer_opts_of(const lp_analyzer *a);
/* Append the terms of text to out, in scikit-learn's order (all n-grams of the smallest n
 * first). Characters are code points, as in Python. Whitespace for "char"/"char_wb" is
 * Python's str.isspace set. LP_EPARSE on invalid UTF-8. Thread-safe. */
lp_status lp_analyzer_run(const lp_analyzer *a, const char *text, size_t len, lp_terms *out,
                          lp_err *err);

/* ---- vectorizers: TF-IDF (fitted vocabulary) and hashing (stateless) ------------------------*/
typedef enum lp_textvec_kind {
    LP_TEXTVEC_KIND_TFIDF = 0, /* TfidfVectorizer */
    LP_TEXTVEC_KIND_HASH       /* HashingVectorizer */
} lp_textvec_kind;

typedef enum lp_norm {
    LP_NORM_L2 = 0,
    LP_NORM_L1,
    LP_NORM_NONE
} lp_norm;

typedef struct lp_textvec_opts {
    lp_textvec_kind kind;
    lp_analyzer_opts analyzer;
    lp_norm norm;           /* default L2 */
    /* TF-IDF: a term is kept when its document frequency df satisfies
     *   df >= min_df  and  df >= min_df_frac * n_docs  and  df <= max_df_frac * n_docs
     *   and (max_df == 0 or df <= max_df)
     * (sklearn's integer min_df/max_df are min_df/max_df here, its float ones the _frac). */
    size_t min_df;          /* default 1 */
    double min_df_frac;     /* default 0 */
    double max_df_frac;     /* default 1 */
    size_t max_df;          /* default 0 = no count limit */
    size_t max_features;    /* 0 = all; else the most frequent by total count (ties as sklearn/numpy) */
    bool use_idf;           /* default true */
    bool smooth_idf;        /* default true: idf = ln((1 + n) / (1 + df)) + 1 */
    bool sublinear_tf;      /* default false: tf -> 1 + ln(tf) */
    /* HASH */
    uint32_t n_features;    /* default 2^20 */
    bool alternate_sign;    /* default true */
} lp_textvec_opts;

lp_textvec_opts lp_textvec_opts_default(void);
lp_status lp_textvec_opts_check(const lp_textvec_opts *o, lp_err *err);

typedef struct lp_textvec lp_textvec;

/* Fit on docs[0..n) (NULL entries are empty documents). TF-IDF learns the vocabulary (sorted
 * by code point, like sklearn's sorted dict keys) and idf; HASH only checks the options.
 * LP_EINVAL when pruning leaves no term ("after pruning, no terms remain"), LP_EPARSE naming
 * the document on invalid UTF-8, LP_ENOMEM. *out is new; caller frees. */
lp_status lp_textvec_fit(const lp_textvec_opts *opts, const char *const *docs, size_t n,
                         lp_textvec **out, lp_err *err);
void lp_textvec_free(lp_textvec *v);
/* Features of docs[0..n) as a new CSR (n, n_features) the caller frees (lp_csr_free).
 * TF-IDF: terms outside the vocabulary are ignored. Thread-safe. */
lp_status lp_textvec_transform(const lp_textvec *v, const char *const *docs, size_t n,
                               lp_csr **out, lp_err *err);
size_t lp_textvec_n_features(const lp_textvec *v);
/* TF-IDF: the term of column j (owned by v); NULL for HASH or j out of range. */
const char *lp_textvec_term(const lp_textvec *v, size_t j);
/* TF-IDF: idf of column j (1 when use_idf is false); NaN for HASH or j out of range. */
double lp_textvec_idf(const lp_textvec *v, size_t j);
/* TF-IDF: column of term, or -1. */
long lp_textvec_find(const lp_textvec *v, const char *term);
const lp_textvec_opts *lp_textvec_opts_of(const lp_textvec *v);
/* Append a versioned binary form to b (check lp_buf_status after). */
void lp_textvec_save(const lp_textvec *v, lp_buf *b);
/* Read what lp_textvec_save wrote; every read bounds-checked. LP_EFORMAT / LP_EVERSION with a
 * message naming r->what. */
lp_status lp_textvec_load(lp_reader *r, lp_textvec **out, lp_err *err);

/* ---- BM25 -----------------------------------------------------------------------------------
 * Okapi BM25 (Robertson & Zaragoza 2009, "The Probabilistic Relevance Framework"):
 *   score(q, d) = sum over query terms t (each occurrence in q counts) of
 *                 idf(t) * tf(t,d) * (k1 + 1) / (tf(t,d) + k1 * (1 - b + b * |d| / avgdl))
 *   idf(t) = ln(1 + (N - df(t) + 0.5) / (df(t) + 0.5))
 * with |d| the number of analyzer terms of d and avgdl their mean over the collection. */
typedef struct lp_bm25_opts {
    lp_analyzer_opts analyzer;
    double k1; /* default 1.5, >= 0 */
    double b;  /* default 0.75, in [0, 1] */
} lp_bm25_opts;

lp_bm25_opts lp_bm25_opts_default(void);
lp_status lp_bm25_opts_check(const lp_bm25_opts *o, lp_err *err);

typedef struct lp_bm25 lp_bm25;

/* Index docs[0..n) (NULL = empty). *out is new; caller frees. */
lp_status lp_bm25_build(const lp_bm25_opts *opts, const char *const *docs, size_t n,
                        lp_bm25 **out, lp_err *err);
void lp_bm25_free(lp_bm25 *idx);
size_t lp_bm25_n_docs(const lp_bm25 *idx);
/* scores (n_docs,) caller-allocated: the BM25 score of every document for query. */
lp_status lp_bm25_scores(const lp_bm25 *idx, const char *query, double *scores, lp_err *err);
/* The k best documents: ids[0..*n_out) and scores (both caller-allocated with room for k),
 * by score descending, ties by lower document id; documents scoring 0 are left out.
 * Thread-safe. */
lp_status lp_bm25_top_k(const lp_bm25 *idx, const char *query, size_t k, size_t *ids,
                        double *scores, size_t *n_out, lp_err *err);

/* ---- LDA topics -----------------------------------------------------------------------------
 * Latent Dirichlet allocation (Blei, Ng & Jordan 2003) fitted by collapsed Gibbs sampling
 * (Griffiths & Steyvers 2004): each token's topic z is resampled from
 *   p(z = t | rest) ∝ (n_dt + alpha) * (n_tw + beta) / (n_t + V * beta)
 * with the counts excluding the token itself. After the last sweep
 *   phi_tw = (n_tw + beta) / (n_t + V beta),  theta_dt = (n_dt + alpha) / (|d| + K alpha).
 * Documents are arrays of word ids in [0, vocab); the caller builds the vocabulary (e.g. with
 * lp_tokenizer). Single-threaded and reproducible for a seed. */
typedef struct lp_lda_opts {
    size_t k;          /* topics, default 20, >= 2 */
    double alpha;      /* document-topic prior, default 0.1, > 0 */
    double beta;       /* topic-word prior, default 0.01, > 0 */
    unsigned iters;    /* Gibbs sweeps, default 200, >= 1 */
    uint64_t seed;     /* default 42 */
} lp_lda_opts;

lp_lda_opts lp_lda_opts_default(void);
lp_status lp_lda_opts_check(const lp_lda_opts *o, lp_err *err);

typedef struct lp_lda lp_lda;

/* Fit on docs[d][0..lens[d]) for d < n_docs. LP_EINVAL for bad options, vocab == 0, no tokens,
 * or a word id >= vocab (naming document and position); LP_ENOMEM. *out is new; caller frees. */
lp_status lp_lda_fit(const uint32_t *const *docs, const size_t *lens, size_t n_docs, size_t vocab,
                     const lp_lda_opts *o, lp_lda **out, lp_err *err);
void lp_lda_free(lp_lda *m);
size_t lp_lda_n_topics(const lp_lda *m);
size_t lp_lda_n_docs(const lp_lda *m);
/* phi of topic t: (vocab,) owned by m; NULL when t is out of range. */
const double *lp_lda_topic_word(const lp_lda *m, size_t t);
/* theta of document d: (k,) owned by m; NULL when d is out of range. */
const double *lp_lda_doc_topic(const lp_lda *m, size_t d);
/* The n most probable words of topic t into ids (caller-allocated, n), by phi descending and
 * ties by lower id; returns how many were written (min(n, vocab)), 0 for a bad t. */
size_t lp_lda_top_words(const lp_lda *m, size_t t, size_t n, uint32_t *ids);

#ifdef __cplusplus
}
#endif
#endif
