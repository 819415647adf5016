/*
 * cs.h - the customer-service bot's domain logic (prefix cs_), testable without main.c.
 *
 * Pieces, one file each: cs_table.c (TSV/CSV of text columns), cs_intent.c (intent classifier
 * with temperature-calibrated confidences and out-of-scope detection), cs_entity.c (built-in
 * PCRE2 entity patterns, Luhn check, PII redaction), cs_slots.c (linear-chain Viterbi BIO slot
 * tagger), cs_faq.c (BM25 + TF-IDF cosine FAQ retrieval), cs_dialog.c (bot definition, SQLite
 * session store, hand-off rules), cs_bot.c (one model file holding all of it; one chat turn).
 *
 * Conventions are libcore's: fallible functions return lp_status and fill a nullable lp_err;
 * _free(NULL) is a no-op; fitted objects are immutable and may be shared by threads.
 */
#ifndef CS_H
#define CS_H

#include <cjson/cJSON.h>
#include "lepton/lepton.h"

/* ---- tables: header line, then rows; TAB-separated when the header has a TAB, else CSV with
 * optional double quotes. Every cell is kept as text. ---------------------------------------- */
typedef struct cs_table {
    size_t n_cols, n_rows;
    char **names; /* (n_cols) */
    char **cells; /* (n_rows, n_cols) row-major, owned strings ("" for empty) */
} cs_table;

lp_status cs_table_read(const char *path, cs_table *out, lp_err *err);
lp_status cs_table_parse(const char *data, size_t len, const char *what, cs_table *out,
                         lp_err *err);
void cs_table_free(cs_table *t);
/* Column index of name, else of the one column named so in another case ("Question"), or -1. */
long cs_table_col(const cs_table *t, const char *name);
/* Like cs_table_col but LP_ENOTFOUND "<what>: no column 'x' (columns: a, b)". */
lp_status cs_table_require(const cs_table *t, const char *name, const char *what, size_t *j,
                           lp_err *err);
static inline const char *cs_table_cell(const cs_table *t, size_t i, size_t j)
{
    return t->cells[i * t->n_cols + j];
}

/* ---- intent classifier ------------------------------------------------------------------- */
#define CS_TOPK 3

typedef struct cs_intent_opts {
    const char *oos_label; /* default "oos" */
    const double *c_grid;  /* inverse L2 strengths tried on validation; NULL = {10} */
    size_t n_c;
    double valid_frac;       /* when no validation data is given: stratified share (0.2) */
    double oos_max_loss;     /* the in-scope validation accuracy the OOS threshold may cost at
                                most, with or without OOS rows in validation; < 0 (default):
                                0.02 for TF-IDF alone, 0.01 with an encoder */
    double target_in_recall; /* > 0: without OOS rows in validation, keep this share of the
                                in-scope rows in scope instead (the rule before oos_max_loss;
                                default 0: the budget rule) */
    unsigned threads;        /* 0 = all */
    uint64_t seed;           /* default 42 */
    unsigned max_iter;       /* L-BFGS iterations at most (default 100: on CLINC150 the
                                test metrics were identical to 300) */
    bool char_ngrams;        /* add char_wb 2..5 TF-IDF to word 1..2 TF-IDF (default false:
                                measured 2x slower on CLINC150 for this solver) */
    const char *encoder;     /* sentence encoder .lpm (NULL = none): adds a head on its frozen
                                embeddings, ensembled with TF-IDF, and the centroid-cosine OOS
                                score (see cs_intent.c); the model records the file's path and
                                sha256 and refuses another file at load */
    const char *finetune;    /* with an encoder: "head" (NULL: frozen encoder), "lora" or "full":
                                first fine-tune the encoder on the intents (lp_encoder_finetune,
                                classification objective), then build the same head, ensemble
                                and OOS scores on the adapted embeddings; the adapter is stored
                                in the model file */
    size_t ft_epochs;        /* fine-tuning passes (0 = lp_encoder_ft_opts' default) */
    size_t ft_max_steps;     /* stop fine-tuning after this many steps (0 = no limit) */
    const char *encoder_device; /* kernel table the encoder is fine-tuned and embeds on while
                                   training ("cpu" when NULL, "cuda"; eh_device's names); a
                                   loaded model embeds on the cpu table */
    int refit;                  /* 1: after everything is chosen on validation (C, the ensemble
                                   weight, the temperature, the OOS thresholds), train the
                                   TF-IDF model, the fine-tuning and the head again on the
                                   training rows plus the validation rows of training intents,
                                   and keep the choices (the validation answers of the first
                                   model stay the drift reference); about twice the time.
                                   0: never. -1 (default): when the validation rows were split
                                   off the training data (no validation given), so that the
                                   final model learns from every row it was given */
} cs_intent_opts;

cs_intent_opts cs_intent_opts_default(void);

typedef struct cs_intent cs_intent;

typedef struct cs_intent_result {
    const char *intent; /* the oos label when out_of_scope; owned by the model */
    double confidence;  /* calibrated probability of the top in-scope intent */
    bool out_of_scope;
    size_t n_alt;
    const char *alt[CS_TOPK]; /* top in-scope intents by calibrated probability */
    double alt_p[CS_TOPK];
} cs_intent_result;

/* Train on texts/labels (n) with optional validation (vtexts/vlabels, nv; NULL/0 = split off
 * opts->valid_frac). Picks C on validation by in-scope accuracy, fits the temperature on
 * validation logits (Guo et al. 2017; kept within [0.25, 20], since a separable validation set
 * sends it to 0), then the OOS threshold on the calibrated max in-scope probability: the
 * largest threshold costing at most oos_max_loss of in-scope validation accuracy (OOS recall
 * only grows with it, so that is the most recall for that price), whether or not validation
 * has OOS rows (with target_in_recall > 0 and none: the quantile that keeps that share of
 * in-scope rows). *out is new; caller frees. */
lp_status cs_intent_train(const char *const *texts, const char *const *labels, size_t n,
                          const char *const *vtexts, const char *const *vlabels, size_t nv,
                          const cs_intent_opts *opts, cs_intent **out, lp_err *err);
void cs_intent_free(cs_intent *m);
/* Classify n texts (batch path). res (n) caller-allocated. LP_EPARSE on invalid UTF-8. */
lp_status cs_intent_predict(const cs_intent *m, const char *const *texts, size_t n,
                            cs_intent_result *res, lp_err *err);
/* Analysis (bench/cs_oos_curve.c): classify as cs_intent_predict and give each text's largest
 * in-scope centroid cosine in cos (n; -1 without an encoder); and replace the fitted OOS
 * thresholds (tau on the calibrated confidence; tau_c on that cosine, encoder models only;
 * 0 and -1 turn them off). */
lp_status cs_intent_predict_cos(const cs_intent *m, const char *const *texts, size_t n,
                                cs_intent_result *res, double *cos, lp_err *err);
void cs_intent_set_thresholds(cs_intent *m, double tau, double tau_c);
/* Analysis: replace the temperature (> 0) and, encoder models only, the TF-IDF weight ([0, 1])
 * by another model's (a value out of range is ignored). */
void cs_intent_set_calibration(cs_intent *m, double T, double w_tfidf);
/* "oos_in_train" or "threshold": how OOS is detected. */
const char *cs_intent_protocol(const cs_intent *m);
double cs_intent_threshold(const cs_intent *m);
double cs_intent_temperature(const cs_intent *m);
const char *cs_intent_oos_label(const cs_intent *m);
/* Encoder models: the encoder file's path (owned by m), else NULL; the TF-IDF weight of the
 * ensemble and the centroid-cosine OOS threshold (NaN without an encoder). */
const char *cs_intent_encoder(const cs_intent *m);
double cs_intent_tfidf_weight(const cs_intent *m);
double cs_intent_cos_threshold(const cs_intent *m);
/* The loaded encoder of an encoder model (owned by m), else NULL. */
const lp_encoder *cs_intent_encoder_handle(const cs_intent *m);
/* How an encoder model's embeddings are made: "frozen" (--finetune head), "lora" or "full"
 * (the fine-tuned adapter's); NULL without an encoder. */
const char *cs_intent_finetune(const cs_intent *m);
size_t cs_intent_n_classes(const cs_intent *m);
const char *cs_intent_class(const cs_intent *m, size_t k);
/* The underlying lp_model (owned by m), e.g. to attach extra sections before saving. */
lp_model *cs_intent_model(cs_intent *m);
/* Save: the lp_model .lpm file plus section "cs.intent" (OOS label, threshold, temperature). */
lp_status cs_intent_save(cs_intent *m, const char *path, lp_err *err);
lp_status cs_intent_load(const char *path, cs_intent **out, lp_err *err);

/* ---- tenant adapters (cs_intent.c) --------------------------------------------------------
 * A tenant's intents as a LoRA adapter (lepton/finetune.h) on the base's logistic layer: the
 * base frozen, a rank-r delta plus one new row per new intent trainable, saved as .lpa naming
 * the base's sha256. Classified with the base's temperature and OOS threshold. */
typedef struct cs_tenant_opts {
    int rank;      /* r >= 1 (8) */
    int epochs;    /* passes over the tenant's rows (40) */
    double lr;     /* AdamW learning rate (0 = 1e-2) */
    uint64_t seed; /* A's initialisation and shuffling (42) */
} cs_tenant_opts;

cs_tenant_opts cs_tenant_opts_default(void);
/* Train a tenant adapter on texts / labels (n): labels the base knows adapt it, the others
 * become new intents; base intents (and the OOS class) without rows keep the base's logits.
 * To move texts away from a base intent or from OOS, include a few rows of it. The OOS label
 * is refused when the base has no OOS class. stats nullable. *out is bound to m's model
 * (which must outlive it). */
lp_status cs_tenant_train(const cs_intent *m, const char *const *texts,
                          const char *const *labels, size_t n, const cs_tenant_opts *opts,
                          lp_lora **out, lp_finetune_stats *stats, lp_err *err);
/* Load a tenant adapter for m (its base sha256 must be m's; errors name both). */
lp_status cs_tenant_load(const cs_intent *m, const char *path, lp_lora **out, lp_err *err);
/* cs_intent_predict under tenant adapter a (NULL = the base): the base's classes then the
 * tenant's, the base's temperature and OOS threshold. Result strings are owned by m or a. */
lp_status cs_intent_predict_with(const cs_intent *m, const lp_lora *a,
                                 const char *const *texts, size_t n, cs_intent_result *res,
                                 lp_err *err);

typedef struct cs_intent_eval {
    size_t n, n_in, n_oos;
    double in_scope_accuracy, oos_recall, oos_precision, macro_f1; /* NaN when undefined */
} cs_intent_eval;

/* Metrics over labelled texts: in-scope accuracy counts an in-scope row right only when it is
 * not rejected and its intent is right; OOS recall/precision of the out-of-scope decision;
 * macro F1 over all labels seen (OOS as one class). */
lp_status cs_intent_evaluate(const cs_intent *m, const char *const *texts,
                             const char *const *labels, size_t n, cs_intent_eval *out, lp_err *err);
/* The same under tenant adapter a (NULL = the base). */
lp_status cs_intent_evaluate_with(const cs_intent *m, const lp_lora *a,
                                  const char *const *texts, const char *const *labels, size_t n,
                                  cs_intent_eval *out, lp_err *err);

/* ---- entities and redaction -------------------------------------------------------------- */
typedef struct cs_entity {
    char type[32];
    char *value;       /* owned */
    size_t start, end; /* UTF-8 byte offsets, end exclusive */
} cs_entity;

typedef struct cs_entities {
    cs_entity *v;
    size_t n, cap;
} cs_entities;

void cs_entities_clear(cs_entities *e);
lp_status cs_entities_push(cs_entities *e, const char *type, const char *text, size_t start,
                           size_t end);

typedef struct cs_patterns cs_patterns;

/* Compile the built-in patterns once (PCRE2_UTF | PCRE2_UCP): email, phone, url, money, date,
 * time, order_number (order_pattern, NULL = "\b(?:ORD|ORDER|TCK|TICKET)[-#]?\d{4,12}\b" case-
 * insensitive, a bare # plus 5..12 digits, or the 4..12 digits after "order" / "ticket" with
 * an optional "no." / "number" / "id" / "is" / ":" / "#" between) and card (13..19 digits with
 * optional spaces or dashes, kept only when the Luhn check passes). A pattern's group named
 * "value", when it matched, is the entity (its span and text). LP_EINVAL naming the offset of a
 * bad order_pattern. */
lp_status cs_patterns_new(const char *order_pattern, cs_patterns **out, lp_err *err);
void cs_patterns_free(cs_patterns *p);
/* Append the entities found in text[0..len) to out, by start offset; an earlier-listed type
 * wins an overlap (card before phone, email before url). Thread-safe. */
lp_status cs_patterns_find(const cs_patterns *p, const char *text, size_t len, cs_entities *out,
                           lp_err *err);
/* A copy of text with every email, phone number and Luhn-valid card number replaced by
 * "[EMAIL]", "[PHONE]", "[CARD]". Caller frees. NULL on allocation failure or bad UTF-8. */
char *cs_redact(const cs_patterns *p, const char *text, size_t len);
/* The reply to a question asking for a slot of this type, when out (the turn's entities so
 * far) has none: for order_number, a whole reply that is only a number ("12345", "it's
 * 12345", "#12345", "abc-12345") is appended as one. Other types: nothing. */
lp_status cs_patterns_answer(const cs_patterns *p, const char *type, const char *text, size_t len,
                             cs_entities *out, lp_err *err);
/* Luhn (mod 10) check over the digits of s (other characters skipped); false when fewer than
 * 2 digits. */
bool cs_luhn_valid(const char *s, size_t len);

/* ---- slot tagger ------------------------------------------------------------------------- */
typedef struct cs_slots cs_slots;

typedef enum cs_slots_trainer {
    CS_SLOTS_TRAINER_PERCEPTRON, /* averaged structured perceptron (Collins 2002) */
    CS_SLOTS_TRAINER_CRF,        /* CRF log-likelihood + L2 by SGD (Lafferty et al. 2001) */
} cs_slots_trainer;

typedef struct cs_slots_opts {
    cs_slots_trainer trainer; /* default CS_SLOTS_TRAINER_CRF (won on validation) */
    unsigned epochs;          /* passes over the data; default 15 */
    unsigned hash_bits;       /* feature table 2^hash_bits rows; default 18 */
    uint64_t seed;            /* example order; default 42 */
    double l2;                /* CRF only: L2 weight on the summed log-likelihood; default 0.3 */
    double learning_rate;     /* CRF only: first SGD step, decayed linearly to 0; default 0.1 */
} cs_slots_opts;

cs_slots_opts cs_slots_opts_default(void);
/* LP_EINVAL naming the first option out of range. */
lp_status cs_slots_opts_check(const cs_slots_opts *o, lp_err *err);

/* Parse "-" or "SLOT START END;SLOT START END" against a text of len bytes into out
 * (type, start, end; value copied). LP_EPARSE naming the item when malformed or out of range. */
lp_status cs_spans_parse(const char *spans, const char *text, size_t len, cs_entities *out,
                         lp_err *err);
/* Train a first-order linear-chain tagger over BIO tags, as a CRF (Lafferty et al. 2001; SGD
 * on the log-likelihood with L2) or an averaged structured perceptron (Collins 2002) decoded
 * by Viterbi under the BIO constraint, on hashed word, shape, affix, +-2 window, word-bigram,
 * context and learned-gazetteer features. Types that share a span in the data (date and time
 * on "in an hour") get a pair label that emits both. context (may be NULL, or entries
 * NULL/"-") is a comma-separated list of requested slots used as features.
 * *out is the caller's (cs_slots_free). LP_EPARSE names the row of a malformed span,
 * LP_EINVAL bad options or no span at all. Deterministic for a given seed. */
lp_status cs_slots_train(const char *const *texts, const char *const *spans,
                         const char *const *context, size_t n, const cs_slots_opts *o,
                         cs_slots **out, lp_err *err);
/* Whether tag may follow prev under BIO with n_types slot types (tags 0 = O, 1 + 2k = B-k,
 * 2 + 2k = I-k; prev = 1 + 2 * n_types is START): I-k only after B-k or I-k. */
bool cs_slots_bio_allowed(size_t n_types, size_t prev, size_t tag);
/* Viterbi decoding of a first-order linear chain: tags (n) gets the BIO-valid sequence y
 * maximising  sum_t trans[y_{t-1}][y_t] + emit[t][y_t]  with y_{-1} = START, emit (n, n_tags)
 * and trans (n_tags + 1, n_tags) (row n_tags = START), n_tags = 1 + 2 * n_types. *score
 * (nullable) gets that maximum, summed left to right as ((s + trans) + emit). n = 0 is valid.
 * LP_EINVAL for 0 or more than 128 types, LP_ENOMEM. Thread-safe. Exposed for tests. */
lp_status cs_slots_viterbi(const double *emit, const float *trans, size_t n, size_t n_types,
                           int *tags, double *score, lp_err *err);
/* Forward-backward of the same chain over BIO-valid sequences only, trans (n_tags + 1, n_tags)
 * here in double: *logz = log sum_y exp(score(y)); node (n, n_tags) gets p(y_t = y | x); edge
 * (n_tags + 1, n_tags) gets sum_t p(y_{t-1} = p, y_t = y | x) with p = START at t = 0. In
 * probability space with per-position scaling (Rabiner 1989), O(n T^2) products and O(n T)
 * exp(). LP_EINVAL for 0 or more than 64 labels, LP_ENUMERIC when a scaling factor is 0 or
 * infinite, LP_ENOMEM. Thread-safe. The CRF trainer's E-step; exposed for tests. */
lp_status cs_slots_forward_backward(const double *emit, const double *trans, size_t n,
                                    size_t n_labels, double *node, double *edge, double *logz,
                                    lp_err *err);
void cs_slots_free(cs_slots *s);
/* Tag one text and append its slot spans to out. Thread-safe. */
lp_status cs_slots_tag(const cs_slots *s, const char *text, size_t len, const char *context,
                       cs_entities *out, lp_err *err);
size_t cs_slots_n_types(const cs_slots *s);
const char *cs_slots_type(const cs_slots *s, size_t k);
void cs_slots_save(const cs_slots *s, lp_buf *b);
lp_status cs_slots_load(lp_reader *r, cs_slots **out, lp_err *err);

typedef struct cs_slot_eval {
    double precision, recall, f1;
    size_t tp, fp, fn;
} cs_slot_eval;

/* Micro precision/recall/F1 of exact (type, start, end) matches; per (n_types) optional. */
lp_status cs_slots_evaluate(const cs_slots *s, const char *const *texts, const char *const *spans,
                            const char *const *context, size_t n, cs_slot_eval *micro,
                            cs_slot_eval *per, lp_err *err);

/* ---- FAQ retrieval ----------------------------------------------------------------------- */
typedef struct cs_faq cs_faq;

typedef struct cs_faq_hit {
    size_t index;  /* entry index */
    double score;  /* fused rank score: (cos_word + cos_char + bm25 / top bm25) / 3 */
    double cosine; /* mean of the word and char TF-IDF cosines, in [0, 1] */
} cs_faq_hit;

/* Index entries (ids, questions, answers; answers may be NULL or hold NULLs). The searched text
 * of an entry is its question plus its answer. */
lp_status cs_faq_build(const char *const *ids, const char *const *questions,
                       const char *const *answers, size_t n, cs_faq **out, lp_err *err);
void cs_faq_free(cs_faq *f);
size_t cs_faq_size(const cs_faq *f);
const char *cs_faq_id(const cs_faq *f, size_t i);
const char *cs_faq_question(const cs_faq *f, size_t i);
const char *cs_faq_answer(const cs_faq *f, size_t i); /* NULL when none */
/* Top k entries for query by the fused score of BM25 (Okapi, lp_bm25) and TF-IDF cosine (word
 * 1..2 and char_wb 3..5 n-grams, each L2-normalised). hits (k) caller-allocated; entries with
 * a zero score are left out. Thread-safe. */
lp_status cs_faq_search(const cs_faq *f, const char *query, size_t k, cs_faq_hit *hits,
                        size_t *n_hits, lp_err *err);
/* Also rank by the sentence encoder enc (borrowed: it must outlive f; NULL = lexical only):
 * embeds every question now (see cs_faq.c). Errors as eh_embed. Not thread-safe with
 * searches of f. */
lp_status cs_faq_set_encoder(cs_faq *f, const lp_encoder *enc, lp_err *err);
/* A confident match: the top hit's cosine is at least this. */
#define CS_FAQ_CONFIDENT 0.5
void cs_faq_save(const cs_faq *f, lp_buf *b);
lp_status cs_faq_load(lp_reader *r, cs_faq **out, lp_err *err);

/* ---- dialogue ---------------------------------------------------------------------------- */
typedef struct cs_bot_def cs_bot_def;

/* Parse a bot definition JSON text (see data/support-bot/bot.json):
 *   {"handoff": {"max_low_confidence": 2, "min_confidence": 0.5,
 *                "human_phrases": ["human", "agent"], "intents": ["complaint"]},
 *    "fallback": "...", "handoff_reply": "...",
 *    "intents": {"name": {"reply": "text with {slot}", "required": [{"slot": "order_number",
 *                 "ask": "..."}]}}}
 * LP_EPARSE / LP_EINVAL naming the member. */
lp_status cs_bot_def_parse(const char *json, size_t len, const char *what, cs_bot_def **out,
                           lp_err *err);
void cs_bot_def_free(cs_bot_def *b);
const char *cs_bot_def_json(const cs_bot_def *b); /* the source text, owned */
/* The definition's "order_pattern" (a PCRE2 pattern for order / ticket numbers, replacing the
 * built-in one; a group named "value" is the number), or NULL. */
const char *cs_bot_def_order_pattern(const cs_bot_def *b);

typedef struct cs_session {
    char id[129];
    long turns;
    long low_conf;    /* consecutive low-confidence or out-of-scope turns */
    char pending[64]; /* intent waiting for a required slot, "" when none */
    cJSON *slots;     /* object slot -> value, owned */
    bool handed_off;
} cs_session;

typedef struct cs_turn_in {
    const char *text; /* redacted already when stored */
    const cs_intent_result *intent;
    const cs_entities *entities;
    const char *faq_answer; /* a confident FAQ answer, or NULL */
} cs_turn_in;

typedef struct cs_turn_out {
    char *reply; /* owned */
    bool handoff;
    char reason[128];   /* why, when handoff */
    const char *intent; /* the intent acted on (may be the pending one) */
} cs_turn_out;

/* Advance session s by one turn (pure: no I/O). Rules, in order: the user asks for a human
 * (a human phrase) -> hand-off "user_requested"; unless this turn's entities fill a required
 * slot of the pending intent (the user answers the bot's question), the intent is a hand-off
 * intent -> "intent:<name>"; a pending intent whose required slot this turn fills continues;
 * out of scope or confidence < min_confidence: a confident FAQ answer is given (the streak
 * resets), else low_conf grows and after max_low_confidence in a row -> hand-off
 * "repeated_low_confidence", else the fallback;
 * otherwise entities fill slots, a missing required slot asks its question (pending), and the
 * reply template is filled ({slot} replaced; unknown slots left as written). */
lp_status cs_dialog_step(const cs_bot_def *b, cs_session *s, const cs_turn_in *in, cs_turn_out *out,
                         lp_err *err);
void cs_turn_out_clear(cs_turn_out *o);
/* The slot the bot asked for last turn (the pending intent's first required slot not filled),
 * or NULL when it asked for none. */
const char *cs_dialog_awaited_slot(const cs_bot_def *b, const cs_session *s);
void cs_session_init(cs_session *s, const char *id);
void cs_session_clear(cs_session *s);

typedef struct cs_store cs_store;

/* Open (creating) the SQLite session store at path (WAL, user_version migrations). Writes go
 * through one connection guarded by a mutex; reads (cs_store_get) through a second, read-only
 * one (WAL readers do not wait for a writer), except for ":memory:". keep_hashes_only: turns
 * store SHA-256 of the text instead of the redacted text. */
lp_status cs_store_open(const char *path, bool keep_hashes_only, cs_store **out, lp_err *err);
void cs_store_close(cs_store *st);
/* Claim the store at path (the path it was opened with) for this process as the only writer of
 * session rows, which turns on the cache of committed sessions (cs_store_get then reads no
 * SQLite for a session this process wrote). An exclusive lock on "PATH.serve-lock", held until
 * cs_store_close: LP_ESTATE when another process holds it. */
lp_status cs_store_claim(cs_store *st, const char *path, lp_err *err);
/* Load a session (LP_ENOTFOUND when absent: s is then initialised fresh). */
lp_status cs_store_get(cs_store *st, const char *id, cs_session *s, lp_err *err);
/* Save session state and append turn (text redacted by the caller) in one transaction; *turn_id
 * gets the new turn's id. */
lp_status cs_store_put(cs_store *st, const cs_session *s, const char *text, const char *intent,
                       double confidence, const char *reply, bool handoff, const char *reason,
                       long *turn_id, lp_err *err);
/* cs_store_put's group-committed form: the turn is copied and queued; a writer thread (started
 * on the first call) commits everything queued while it wrote the previous batch in one
 * transaction, a savepoint per turn, and then calls done(arg, status, turn_id, err) for each
 * turn, in queue order, on that thread (err only when status is not LP_OK). LP_ENOMEM (done not
 * called) when the turn cannot be queued. cs_store_close commits what is queued first. */
typedef void (*cs_store_done_fn)(void *arg, lp_status st, long turn_id, const lp_err *err);
lp_status cs_store_put_async(cs_store *st, const cs_session *s, const char *text,
                             const char *intent, double confidence, const char *reply,
                             bool handoff, const char *reason, cs_store_done_fn done, void *arg,
                             lp_err *err);
/* The session and its last `limit` turns (oldest first; "history_truncated" says whether older
 * ones were left out) as JSON (caller frees the tree). LP_ENOTFOUND when absent. */
lp_status cs_store_session_json(cs_store *st, const char *id, long limit, cJSON **out,
                                lp_err *err);
/* Store a corrected intent for turn_id of session id. LP_ENOTFOUND when the turn is absent. */
lp_status cs_store_feedback(cs_store *st, const char *id, long turn_id, const char *intent,
                            lp_err *err);
/* The stored corrections with their turn texts (texts may be hashes in hash-only mode: those
 * are skipped). Arrays caller-frees with cs_strs_free. */
lp_status cs_store_corrections(cs_store *st, char ***texts, char ***labels, size_t *n, lp_err *err);
void cs_strs_free(char **v, size_t n);

/* ---- the bot: one model file, one turn --------------------------------------------------- */
typedef struct cs_bot {
    cs_intent *intent;
    cs_slots *slots; /* may be NULL */
    cs_faq *faq;     /* may be NULL */
    cs_bot_def *def; /* may be NULL: a built-in minimal definition is used */
    cs_patterns *patterns;
} cs_bot;

/* Save intent + optional slots, FAQ and bot definition as one .lpm (sections cs.slots,
 * cs.faq, cs.bot). */
lp_status cs_bot_save(cs_bot *b, const char *path, lp_err *err);
lp_status cs_bot_load(const char *path, cs_bot **out, lp_err *err);
void cs_bot_free(cs_bot *b);
/* One chat turn on session s: classify, extract entities (patterns + slots), search the FAQ,
 * step the dialogue. *out is the response object (intent, confidence, alternatives,
 * out_of_scope, entities, faq, reply, handoff{needed, reason}). Empty text is LP_EINVAL;
 * invalid UTF-8 LP_EPARSE. Thread-safe on a shared bot (s is the caller's). */
lp_status cs_bot_turn(const cs_bot *b, cs_session *s, const char *text, size_t len, cJSON **out,
                      cs_turn_out *turn, lp_err *err);
/* The same under tenant adapter a (NULL = the base; see cs_intent_predict_with). */
lp_status cs_bot_turn_with(const cs_bot *b, const lp_lora *a, cs_session *s, const char *text,
                           size_t len, cJSON **out, cs_turn_out *turn, lp_err *err);

/* ---- LDA topics: the `topics` sub-command (cs_topics.c) ----------------------------------- */
/* Parse --data FILE [--text-col text] [--k 20] [--iters 200] [--seed 42] from argv[2..], fit LDA
 * (lp_lda) on the utterances and print each topic's top words and example utterances.
 * Returns the exit code: 0, 1 (bad input, message on stderr) or 2 (usage). */
int cs_cmd_topics(int argc, char **argv);


/* ---- training from files, retraining, the HTTP service (cs_service.c) --------------------- */
typedef struct cs_train_spec {
    const char *data, *valid; /* valid may be NULL */
    const char *text_col, *label_col, *oos_label;
    const char *slots, *faq, *bot; /* optional files */
    const double *c_grid;          /* may be NULL */
    size_t n_c;
    bool char_ngrams;
    const char *encoder; /* sentence encoder .lpm, or NULL (cs_intent_opts.encoder) */
    const char *finetune; /* "head" (NULL), "lora" or "full" (cs_intent_opts.finetune) */
    size_t ft_epochs, ft_max_steps; /* 0 = lp_encoder_ft_opts' defaults */
    double oos_max_loss;            /* < 0: cs_intent_opts' default */
    uint64_t seed; /* validation split, head and fine-tuning (cs_intent_opts.seed; default 42) */
    int refit;     /* cs_intent_opts.refit (default -1) */
    const char *device; /* the encoder's table while training (cs_intent_opts.encoder_device);
                           not recorded: a retrain runs on the cpu table */
} cs_train_spec;

cs_train_spec cs_train_spec_default(void);
/* Read the files and train a bot; extra (texts, labels, n_extra) rows are appended to the
 * training data (feedback corrections). The spec is recorded in section cs.train so that
 * retraining can find the base data. *out is new. */
lp_status cs_train_files(const cs_train_spec *spec, char *const *extra_texts,
                         char *const *extra_labels, size_t n_extra, cs_bot **out, lp_err *err);
/* Evaluate a bot's intent model on a labelled file. */
lp_status cs_eval_file(const cs_bot *b, const char *path, const char *text_col,
                       const char *label_col, cs_intent_eval *e, lp_err *err);
/* The same under tenant adapter a (NULL = the base); only_labels (nullable, n_only) keeps the
 * rows whose label is one of them. */
lp_status cs_eval_file_with(const cs_bot *b, const lp_lora *a, const char *path,
                            const char *text_col, const char *label_col,
                            const char *const *only_labels, size_t n_only, cs_intent_eval *e,
                            lp_err *err);
/* The metrics as a JSON object (NaN as null). Caller frees. */
cJSON *cs_intent_eval_json(const cs_intent_eval *e);

typedef struct cs_retrain_result {
    bool swapped;
    cs_intent_eval before, after; /* on the recorded validation file (training file when none) */
    size_t n_corrections;
} cs_retrain_result;

/* Retrain cur's recorded spec plus the store's corrections, evaluate old and new on validation,
 * and when the new one's macro F1 and in-scope accuracy are not worse save it to out_path and
 * set *out_bot (else *out_bot is NULL). */
lp_status cs_retrain(const cs_bot *cur, cs_store *st, const char *out_path, cs_bot **out_bot,
                     cs_retrain_result *res, lp_err *err);

typedef struct cs_service cs_service;

typedef struct cs_service_opts {
    const char *model_path;
    const char *db_path;   /* default "cs.db" */
    bool hashes_only;      /* store only SHA-256 of texts */
    char *const *api_keys; /* admin routes need one of these when n_keys > 0 */
    size_t n_keys;
    const char *const *adapters; /* "NAME=FILE.lpa" tenant adapters for the model (n_adapters) */
    size_t n_adapters;
    lp_server_opts server;
} cs_service_opts;

cs_service_opts cs_service_opts_default(void);
/* Load the model and its tenant adapters, open the store, build the server (not started).
 * Routes: POST /v1/chat and POST /v1/intent take an optional "adapter" (a loaded name; an
 * unknown one is a 400 naming it); the adapters live with the model in one swapped object, so
 * a reload reloads them too (and fails, keeping the old, if one no longer fits); retrain is
 * refused (409) while adapters are loaded. */
lp_status cs_service_new(const cs_service_opts *o, cs_service **out, lp_err *err);
lp_server *cs_service_server(cs_service *s);
void cs_service_free(cs_service *s);

/* ---- monitoring (cs_monitor.c) ----------------------------------------------------------- */
typedef struct cs_monitor cs_monitor;
/* The monitor's drift reference of m (monitor.h): "_score" (the top-intent confidence) and
 * "intent" (categorical) of m's answers to the validation texts (nv), saved on m's model as
 * the extra section "drift". Called at the end of cs_intent_train. nv == 0: nothing. */
lp_status cs_monitor_fit_reference(cs_intent *m, const char *const *vtexts, size_t nv,
                                   lp_err *err);
/* Give to the drift reference of from (none: nothing), e.g. a refitted model the reference of
 * the model whose validation answers were made on rows it had not seen. */
lp_status cs_monitor_copy_reference(cs_intent *from, cs_intent *to, lp_err *err);
/* Open a monitor reading the session store db_path (read-only; created by cs_store_open). */
lp_status cs_monitor_new(const char *db_path, cs_monitor **out, lp_err *err);
void cs_monitor_free(cs_monitor *mon);
/* Count one answered turn of bot (swap generation gen: a new one starts a new window).
 * mon NULL: a no-op. Thread-safe. */
void cs_monitor_count(cs_monitor *mon, const cs_bot *bot, uint64_t gen, const char *intent,
                      double confidence);
/* GET /v1/monitor's body (lepton serve's shape, plus "reason" when there is no reference and
 * live.accuracy_of). New object. Thread-safe. */
cJSON *cs_monitor_report(cs_monitor *mon, const cs_bot *bot, uint64_t gen);

#endif
