/*
 * encoder.h - a pretrained text encoder in C: the BERT uncased WordPiece tokenizer and a BERT
 * encoder (MiniLM-L6-H384, sentence-transformers' all-MiniLM-L6-v2) whose forward pass runs on
 * the backend kernel table, giving mean-pooled, L2-normalised sentence embeddings.
 *
 * Tokenizer. google-research/bert tokenization.py (Devlin et al. 2019), uncased:
 *   1. text cleanup: U+0000, U+FFFD and control characters (Cc, Cf except \t \n \r) removed,
 *      whitespace (space, \t, \n, \r, Zs) becomes a space;
 *   2. every CJK ideograph (the eight ranges of tokenization.py) becomes its own word;
 *   3. split on whitespace (also U+2028 / U+2029, which Python's str.split() splits on);
 *   4. lower-case and strip accents: Python's c.lower() then NFD with nonspacing marks (Mn)
 *      dropped. Covered: lp_utf8_lower (ASCII, Latin-1, Latin Extended-A, Greek, Cyrillic)
 *      followed by a table of the one-code-point results of lower+NFD+strip for Latin-1,
 *      Latin Extended-A/B, Greek, Cyrillic, Latin Extended Additional (Vietnamese), Greek
 *      Extended, Hiragana/Katakana (voiced marks) and the fullwidth capitals, plus the
 *      algorithmic Hangul syllable decomposition into jamo; every
 *      Mn character (combining accents, variation selectors) is dropped wherever it appears.
 *      Not covered: other scripts' case mappings (Armenian, Georgian, Cherokee, ...) and
 *      precomposed letters outside those ranges keep their case or accent, and Greek capital
 *      sigma always lowers to medial sigma where Python picks final sigma at a word's end;
 *   5. split off each punctuation character (ASCII !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~ and every
 *      Unicode P* character, classified by PCRE2 \p{P});
 *   6. WordPiece: greedy longest-match-first against the vocabulary with "##" continuations;
 *      a word longer than 100 code points, or one that cannot be covered, is [UNK].
 * The encoded sequence is [CLS] pieces [SEP], truncated to max_len (pieces dropped from the
 * end, [SEP] kept) and reported as truncated.
 *
 * Encoder. Embeddings (word + position + token type 0) -> LayerNorm, then n_layers post-LN
 * transformer layers: x = LN(x + Wo MHA(x)), x = LN(x + W2 GELU(W1 x)) with exact (erf) GELU;
 * padded keys are masked out of every attention softmax. The sentence embedding is the mean
 * of the last hidden states over the attention mask, L2-normalised (sentence-transformers'
 * Pooling(mean) + Normalize). Every op runs through the lp_backend table, so the same code
 * runs on the cpu, ref and (later) cuda tables.
 *
 * Encoder file. One .lpm file (registry.h) of kind "encoder": the JSON header holds the BERT
 * config ({"kind":"encoder","arch":"bert","vocab_size":..,"hidden":..,"layers":..,"heads":..,
 * "intermediate":..,"max_position":..,"type_vocab":..,"ln_eps":..,"max_len":..,
 * "lower_case":true,"pooling":"mean","normalize":true,"source":..}); sections are the F32
 * tensors named as in the checkpoint less a leading "encoder." (section names are at most 47
 * bytes): "embeddings.word_embeddings.weight", "layer.0.attention.self.query.weight", ...;
 * Linear weights (out, in) as PyTorch stores them), and "vocab" (BYTES, vocab.txt: one token
 * per line, id = line number).
 *
 * Thread safety: a loaded lp_wordpiece and lp_encoder are immutable and may be shared by
 * threads; lp_encoder_embed allocates its own activations per call.
 */
#ifndef LEPTON_ENCODER_H
#define LEPTON_ENCODER_H

#include "lepton/backend.h"
#include "lepton/base.h"
#include "lepton/text.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- WordPiece tokenizer ------------------------------------------------------------------ */

#define LP_WORDPIECE_MAX_WORD_CHARS 100 /* tokenization.py's max_input_chars_per_word */

typedef struct lp_wordpiece_opts {
    bool lower_case;   /* lower-case and strip accents (uncased models); default true */
    bool tokenize_cjk; /* one word per CJK ideograph; default true */
    size_t max_len;    /* sequence length cap including [CLS] and [SEP], >= 2; default 256 */
} lp_wordpiece_opts;

lp_wordpiece_opts lp_wordpiece_opts_default(void);
/* LP_EINVAL naming the field when max_len < 2. */
lp_status lp_wordpiece_opts_check(const lp_wordpiece_opts *o, lp_err *err);

typedef struct lp_wordpiece lp_wordpiece;

/* Build a tokenizer from vocab.txt bytes (one token per line, surrounding whitespace trimmed,
 * id = 0-based line number; a repeated token maps to its last line, as tokenization.py's
 * load_vocab). The vocabulary must hold [UNK], [CLS], [SEP] and [PAD] (LP_EFORMAT naming the
 * missing one) and be valid UTF-8. o may be NULL for the defaults. Free with
 * lp_wordpiece_free. */
lp_status lp_wordpiece_new(const char *vocab, size_t len, const lp_wordpiece_opts *o,
                           lp_wordpiece **out, lp_err *err);
void lp_wordpiece_free(lp_wordpiece *wp); /* NULL is a no-op */
size_t lp_wordpiece_vocab_size(const lp_wordpiece *wp);
/* The token of id (owned by wp), or NULL when out of range. */
const char *lp_wordpiece_token(const lp_wordpiece *wp, int32_t id);
/* The id of a token, or -1 when absent. */
int32_t lp_wordpiece_id(const lp_wordpiece *wp, const char *token);
/* Ids of the special tokens. */
int32_t lp_wordpiece_pad_id(const lp_wordpiece *wp);

/* Basic tokenization (steps 1-5 above) of UTF-8 text[0..len): appends each word, NUL
 * terminated, to *words (a lp_terms from text.h). LP_EPARSE naming the byte offset for invalid
 * UTF-8, LP_ENOMEM. Thread-safe. */
lp_status lp_wordpiece_basic(const lp_wordpiece *wp, const char *text, size_t len, lp_terms *words,
                             lp_err *err);

/* Encode one text: ids[0..*n) = [CLS] pieces [SEP] with *n <= min(cap, max_len) (cap >= 2).
 * *truncated (nullable) tells whether pieces were dropped. Errors as lp_wordpiece_basic. */
lp_status lp_wordpiece_encode(const lp_wordpiece *wp, const char *text, size_t len, int32_t *ids,
                              size_t cap, size_t *n, bool *truncated, lp_err *err);

/* A padded batch: ids (n, t) with [PAD] after each sequence's lens[i] tokens; mask (n, t) is
 * 1.0 on real tokens and 0.0 on padding; t is the longest sequence of the batch. */
typedef struct lp_token_batch {
    size_t n, t;
    int32_t *ids;       /* (n, t) */
    float *mask;        /* (n, t) */
    size_t *lens;       /* (n) */
    size_t n_truncated; /* sequences cut to max_len */
} lp_token_batch;

/* Encode n texts (NULL texts encode as empty strings) into *b (its arrays are allocated here;
 * clear with lp_token_batch_clear). Error messages name the text's index. */
lp_status lp_wordpiece_encode_batch(const lp_wordpiece *wp, const char *const *texts, size_t n,
                                    lp_token_batch *b, lp_err *err);
void lp_token_batch_clear(lp_token_batch *b); /* frees the arrays, zeroes *b */

/* ---- encoder ------------------------------------------------------------------------------ */

/* The BERT configuration an encoder file carries (see the header paragraph). */
typedef struct lp_encoder_config {
    size_t vocab_size;   /* rows of the word embedding (30522) */
    size_t hidden;       /* D (384) */
    size_t layers;       /* (6) */
    size_t heads;        /* H (12); D % H == 0 */
    size_t intermediate; /* feed-forward width (1536) */
    size_t max_position; /* rows of the position embedding (512) */
    size_t type_vocab;   /* rows of the token-type embedding (2) */
    size_t max_len;      /* tokenizer cap, <= max_position (256) */
    float ln_eps;        /* LayerNorm epsilon (1e-12) */
} lp_encoder_config;

typedef struct lp_encoder lp_encoder;

/* Convert an unpacked sentence-transformers model folder (config.json, model.safetensors,
 * vocab.txt, and when present sentence_bert_config.json for max_seq_length and
 * 1_Pooling/config.json, which must ask for mean pooling) into one encoder .lpm file at
 * out_path (written atomically). source (nullable) is recorded in the header (e.g. the wheel's
 * name). Errors name the file and field (LP_ENOTFOUND for a missing tensor, LP_EUNSUPPORTED
 * for a non-BERT config or another pooling, LP_EFORMAT for a shape that contradicts the
 * config). Not thread-safe with respect to out_path. */
lp_status lp_encoder_convert(const char *model_dir, const char *out_path, const char *source,
                             lp_err *err);

/* Load an encoder file onto a backend table (name as lp_backend_get: "cpu", "ref", "cuda",
 * "auto"). Checks kind, config ranges, every tensor's presence and size, and the vocabulary.
 * A table without the transformer ops is LP_EUNSUPPORTED naming it. Free with
 * lp_encoder_free. */
lp_status lp_encoder_load(const char *path, const char *backend, lp_encoder **out, lp_err *err);
void lp_encoder_free(lp_encoder *e); /* NULL is a no-op */
const lp_encoder_config *lp_encoder_config_of(const lp_encoder *e);
const lp_wordpiece *lp_encoder_tokenizer(const lp_encoder *e);
/* Embedding width (hidden). */
size_t lp_encoder_dim(const lp_encoder *e);

/* Forward one padded token batch (ids and mask as lp_wordpiece_encode_batch makes them, t <=
 * max_position, ids < vocab_size): out (b->n, D) host floats = mean over the mask of the last
 * hidden states, L2-normalised (x / max(||x||, 1e-12), PyTorch's F.normalize). Device
 * activations are allocated per call. Thread-safe. */
lp_status lp_encoder_forward(const lp_encoder *e, const lp_token_batch *b, float *out, lp_err *err);

/* Tokenize and embed n texts in batches of batch_size (>= 1; texts sorted by token length
 * first, as sentence-transformers does, so a batch pads little): out (n, D) host floats in the
 * input order. *n_truncated (nullable) counts texts cut to max_len. Errors name the text
 * index. Thread-safe. */
lp_status lp_encoder_embed(const lp_encoder *e, const char *const *texts, size_t n,
                           size_t batch_size, float *out, size_t *n_truncated, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
