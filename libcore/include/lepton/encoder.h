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
 * lp_encoder_free. LEPTON_ENCODER_PRECISION=bf16 in the environment loads it with
 * LP_ENCODER_BF16 where the table can (float32 otherwise); fp32 or unset: float32; anything
 * else is LP_EINVAL. */
lp_status lp_encoder_load(const char *path, const char *backend, lp_encoder **out, lp_err *err);
void lp_encoder_free(lp_encoder *e); /* NULL is a no-op */

/* The precision of the products in lp_encoder_forward / lp_encoder_embed. LP_ENCODER_FP32, the
 * default, is float32 throughout. LP_ENCODER_BF16 runs each layer's four weight products
 * (q|k|v, attention output, feed-forward in and out) in bfloat16 with float32 accumulation
 * (the table's bf16_pack / bf16_linear, backend.h: the cpu table on CPUs with Intel AMX),
 * keeping the attention products, LayerNorm, GELU and pooling in float32: embeddings ~2x
 * faster, cosine to the float32 ones about 0.999 (bench/RESULTS.md). LP_EUNSUPPORTED, and the
 * encoder stays float32, where the table cannot. Set it before sharing the encoder between
 * threads. Fine-tuning (finetune.h) always computes in float32. */
typedef enum lp_encoder_precision { LP_ENCODER_FP32 = 0, LP_ENCODER_BF16 = 1 } lp_encoder_precision;
lp_status lp_encoder_set_precision(lp_encoder *e, lp_encoder_precision p, lp_err *err);
lp_encoder_precision lp_encoder_precision_of(const lp_encoder *e);
/* "fp32" / "bf16"; LP_EINVAL naming the text otherwise. */
lp_status lp_encoder_precision_parse(const char *s, lp_encoder_precision *p, lp_err *err);
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

/* ---- fine-tuning (encoder_train.c) --------------------------------------------------------
 * A classification head on the pooled, L2-normalised embedding z (D): logits (C) = W z + b,
 * trained with softmax cross-entropy (PyTorch's F.cross_entropy) by AdamW over mini-batches,
 * and optionally the encoder below it:
 *   head  the encoder frozen; embeddings are computed once, then only W, b train;
 *   lora  LoRA (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models") on the
 *         query, key, value, attention-output and both feed-forward projections of every
 *         layer: y = x W^T + b + (alpha / r) (x A^T) B^T with A (r, in), B (out, r); W, b
 *         frozen; A ~ U(-1/sqrt(in), 1/sqrt(in)) (PEFT's kaiming_uniform(a = sqrt 5)), B = 0,
 *         so a fresh adapter computes exactly the base encoder;
 *   full  every encoder parameter (embeddings, LayerNorms, projections) and the head.
 * The backward pass covers every layer (encoder_train.c): embeddings + LayerNorm, masked
 * multi-head self-attention, residual + LayerNorm, the erf-GELU feed-forward, mean pooling,
 * L2 normalisation and the head, on the backend table (layernorm_backward,
 * softmax_rows_backward, scatter_add_rows plus sgemm, bias_backward, act_backward). Dropout
 * is not applied (training is deterministic for a seed). The head's W starts U(-1/sqrt(D),
 * 1/sqrt(D)) and b at 0 (nn.Linear's init), drawn from the seed.
 *
 * The adapter file (.lpa, kind "encoder adapter", docs/model-format.md conventions as the nn
 * LoRA file): "LPEA" magic, u32 version 1, str the base's weight fingerprint (64 hex: sha256
 * over the per-tensor sha256s of the encoder's parameters in layout order), u32 method,
 * u64 vocab_size, hidden, layers, heads, intermediate, u32 rank, f64 alpha, u32 n_classes,
 * u64 n_block, f32 block[n_block], u32 CRC-32 of every previous byte. The block holds, for
 * lora, per layer and per target (q, k, v, o, ff1, ff2) A then B; for full, a copy of the
 * encoder's parameter block (its layout); then the head W (C, D) and b (C). Each part starts
 * on a 16-float boundary (gaps zero). */

typedef enum lp_encoder_ft_method {
    LP_ENCODER_FT_METHOD_HEAD = 0,
    LP_ENCODER_FT_METHOD_LORA,
    LP_ENCODER_FT_METHOD_FULL,
    LP_ENCODER_FT_METHOD_COUNT_
} lp_encoder_ft_method;

/* "head", "lora", "full"; NULL for bad values. */
const char *lp_encoder_ft_method_name(lp_encoder_ft_method m);
/* Parse a name above; LP_EINVAL listing the valid names otherwise. */
lp_status lp_encoder_ft_method_parse(const char *name, lp_encoder_ft_method *m, lp_err *err);

typedef struct lp_encoder_ft_opts {
    lp_encoder_ft_method method; /* default lora */
    size_t rank;                 /* LoRA r in 1..min(D, 256); default 8 */
    double alpha;                /* LoRA scale numerator (scale alpha / r), > 0; default 16 */
    size_t epochs;               /* passes over the shuffled texts, >= 1; default 3 */
    size_t batch_size;           /* >= 1; default 32 */
    size_t max_steps;            /* stop after this many optimizer steps; 0 = no limit */
    lp_adamw_opts adamw;         /* encoder-side parameters (LoRA or all); default lr 1e-3,
                                    LP_ENCODER_FT_FULL_LR for full (lp_encoder_ft_opts_for) */
    double head_lr;              /* learning rate of the head W, b (> 0); default 1e-2 */
    uint64_t seed;               /* init and shuffling; default 42 */
} lp_encoder_ft_opts;

lp_encoder_ft_opts lp_encoder_ft_opts_default(void);
/* The defaults for method m: those above, with the encoder-side learning rate of full
 * fine-tuning at LP_ENCODER_FT_FULL_LR (every pretrained weight moves: the usual BERT range is
 * 2e-5..5e-5; 1e-3, right for LoRA's fresh low-rank factors, undoes the pretraining — CLINC150
 * head accuracy 0.755 after three epochs at 1e-3, bench/RESULTS.md). */
#define LP_ENCODER_FT_FULL_LR 5e-5
lp_encoder_ft_opts lp_encoder_ft_opts_for(lp_encoder_ft_method m);
/* LP_EINVAL naming the field out of range (the rank is checked against the encoder later). */
lp_status lp_encoder_ft_opts_check(const lp_encoder_ft_opts *o, lp_err *err);

typedef struct lp_encoder_adapter lp_encoder_adapter;

/* Floats of an adapter's block for config c (the .lpa payload; rank ignored unless lora)
 * and of the encoder itself (every tensor of the file, no alignment gaps). Pure. */
size_t lp_encoder_adapter_size(const lp_encoder_config *c, lp_encoder_ft_method method,
                               size_t rank, size_t n_classes);
size_t lp_encoder_n_params(const lp_encoder_config *c);

/* Fine-tune on n labelled texts (labels in [0, n_classes), n_classes >= 2, n >= 1). Texts are
 * tokenized with the encoder's tokenizer (truncated to max_len). The encoder is not modified
 * (full fine-tuning trains a copy). *out gets a new adapter bound to e's weights (free with
 * lp_encoder_adapter_free); *final_loss (nullable) the mean loss of the last epoch's batches.
 * o NULL means the defaults. Errors: LP_EINVAL naming the bad argument or label index; a rank
 * above min(D, 256) (LP_EINVAL); a table without the backward ops (LP_EUNSUPPORTED naming it);
 * LP_ENUMERIC naming the step when the loss goes NaN/Inf; LP_ENOMEM. Logs one info line per
 * epoch. Not thread-safe with respect to *out; e may be shared. */
lp_status lp_encoder_finetune(const lp_encoder *e, const char *const *texts, const int32_t *labels,
                              size_t n, size_t n_classes, const lp_encoder_ft_opts *o,
                              lp_encoder_adapter **out, double *final_loss, lp_err *err);

void lp_encoder_adapter_free(lp_encoder_adapter *a); /* NULL is a no-op */
size_t lp_encoder_adapter_n_classes(const lp_encoder_adapter *a);
lp_encoder_ft_method lp_encoder_adapter_method(const lp_encoder_adapter *a);
/* Floats of the adapter's block (what the .lpa stores). */
size_t lp_encoder_adapter_n_params(const lp_encoder_adapter *a);

/* Class probabilities (n, n_classes) host floats (softmax of the head's logits) and, when emb
 * is non-NULL, the adapted embeddings z (n, D), for n texts through e with the adapter applied
 * on the fly (unmerged LoRA), in batches of 32. e must be the encoder the adapter was trained
 * on or loaded for (same weights: LP_EINVAL naming both fingerprints otherwise). Errors name
 * the text index. Thread-safe (reads a and e only). */
lp_status lp_encoder_adapter_predict(const lp_encoder_adapter *a, const lp_encoder *e,
                                     const char *const *texts, size_t n, float *probs, float *emb,
                                     lp_err *err);

/* A new encoder whose embeddings (lp_encoder_embed / lp_encoder_forward) are the adapted ones
 * lp_encoder_adapter_predict gives in emb: e's weights with a applied once (LoRA: W + (alpha /
 * r) B A merged into each target; full: the adapter's weights; head: e's own), on e's table
 * and at e's precision. Serving a fine-tuned model through it runs the inference path (fused
 * q|k|v, batched attention, bfloat16 products where e has them) instead of the training
 * forward the adapter prediction uses: about as fast as the base encoder. It shares e's
 * tokenizer, so e must outlive *out; the adapter's head is not part of it. LP_EINVAL when a
 * is not e's (as lp_encoder_adapter_predict), LP_ENOMEM. Free with lp_encoder_free. */
lp_status lp_encoder_adapter_merge(const lp_encoder_adapter *a, const lp_encoder *e,
                                   lp_encoder **out, lp_err *err);

/* Save as a .lpa file (atomic), see above. LP_EIO naming the path. Thread-safe. */
lp_status lp_encoder_adapter_save(const lp_encoder_adapter *a, const char *path, lp_err *err);
/* Append the same .lpa image (CRC included) to b, e.g. as a section of another file; failures
 * show in lp_buf_status(b). Thread-safe. */
void lp_encoder_adapter_save_buf(const lp_encoder_adapter *a, lp_buf *b);
/* Load a .lpa file for encoder e: checks magic (LP_EFORMAT "not an encoder adapter file"),
 * version (LP_EVERSION), CRC (LP_EFORMAT "CRC mismatch"), the config and fingerprint against e
 * (LP_EINVAL naming both), the method, rank, class count and block size (LP_EFORMAT naming the
 * field), and that every float is finite. Free with lp_encoder_adapter_free. */
lp_status lp_encoder_adapter_load(const char *path, const lp_encoder *e, lp_encoder_adapter **out,
                                  lp_err *err);
/* The same checks on a .lpa image in memory (len bytes; not kept), `path` naming it in
 * messages (e.g. "model.lpm: section cs.adapter"). */
lp_status lp_encoder_adapter_load_mem(const void *image, size_t len, const char *path,
                                      const lp_encoder *e, lp_encoder_adapter **out, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
