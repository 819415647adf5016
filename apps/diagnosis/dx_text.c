/*
 * dx_text.c - the text model of lepton-diagnosis (dx.h): symptom descriptions classified by
 * logistic regression on TF-IDF features (libcore's lp_model with a one-step pipeline), a
 * temperature fitted on the validation logits (Guo et al. 2017), a known-word share as the
 * out-of-distribution score, exact per-token contributions, and late fusion with the image
 * answer.
 *
 * Logits: the linear model's margins (multinomial: one per class; binary: [0, log-odds]), read
 * through lp_explainer_margin, so prediction and explanation use the same arithmetic and
 * softmax(z / T) is exactly temperature scaling. The vocabulary's unigram terms are kept
 * sorted for the known-word share; the tokenizer is the TF-IDF analyzer's (sklearn's default
 * pattern, lower-cased).
 *
 * The monitor's drift reference (top probability and OOD score of the validation answers) is
 * saved as the model's extra section "drift"; models saved before it load without one.
 *
 * With a sentence encoder (dx_train_opts.encoder, apps/enchead): a softmax head on the frozen
 * encoder's embeddings is trained on the same classes and ensembled with the TF-IDF model in
 * log-probability space, z = w log p_tfidf + (1 - w) log p_head, w in {0, 0.1, .., 1} picked
 * by validation accuracy; the temperature is fitted on that z. A second out-of-distribution
 * score then applies: a text whose largest cosine to the class centroids is below the
 * validation texts' (1 - ood_quantile) quantile abstains. Explanations stay those of the
 * TF-IDF part. The dx.text section records the encoder's path and sha256; loading refuses
 * another file.
 *
 * Not here: no character n-grams, no other text family; the image model is in dx_image.c.
 */
#include "dx.h"
#include "enchead.h"
#include "model/family.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DX_TEXT_COL "text"   /* the column name inside the model */
#define DX_LABEL_COL "label" /* the label name inside the model */
#define DX_TERM_PREFIX DX_TEXT_COL ":tfidf:"
#define DX_ADAPTER_SECTION "dx.encadapter" /* the fine-tuned encoder adapter (.lpa image) */

struct dx_text_model {
    lp_model *model;
    lp_explainer *ex; /* borrows model */
    lp_tokenizer *tok;
    size_t k, d;
    const char *labels[DX_MAX_CLASSES]; /* owned by model */
    char **vocab;           /* sorted unigram terms, pointers into model's feature names */
    size_t n_vocab;
    double T, abstain_p, cov_thr;
    double C;   /* inverse L2 strength of the logistic regression (chosen or given) */
    bool refit; /* the final model was refit on every row after the validation fits */
    char version[32];
    char *card;
    lp_drift *drift; /* validation top probability and known-word OOD score, or NULL */
    /* encoder models only (head != NULL) */
    eh_head *head;
    lp_encoder *enc;
    lp_encoder_adapter *adapter; /* --finetune lora|full: what the model file keeps; else NULL */
    lp_encoder *tuned;  /* enc with the adapter merged: what embeddings go through; else NULL */
    eh_ident ident;
    double w_tfidf; /* ensemble weight of the TF-IDF log-probabilities */
    double cos_thr; /* abstain when the max centroid cosine is below this */
};

void dx_text_model_free(dx_text_model *m)
{
    if (!m)
        return;
    lp_explainer_free(m->ex);
    lp_model_free(m->model);
    lp_tokenizer_free(m->tok);
    free(m->vocab);
    free(m->card);
    lp_drift_free(m->drift);
    eh_head_free(m->head);
    lp_encoder_adapter_free(m->adapter);
    lp_encoder_free(m->tuned); /* before enc, whose tokenizer it shares */
    lp_encoder_free(m->enc);
    free(m);
}

size_t dx_text_model_classes(const dx_text_model *m)
{
    return m->k;
}
const char *dx_text_model_class(const dx_text_model *m, size_t j)
{
    return j < m->k ? m->labels[j] : NULL;
}
const char *dx_text_model_version(const dx_text_model *m)
{
    return m->version;
}
const char *dx_text_model_card(const dx_text_model *m)
{
    return m->card;
}

/* "head" for a frozen encoder, else the adapter's method ("lora", "full"). */
static const char *finetune_name(const dx_text_model *m)
{
    return m->adapter ? lp_encoder_ft_method_name(lp_encoder_adapter_method(m->adapter)) : "head";
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Everything derived from the fitted lp_model: labels, explainer, vocabulary, tokenizer. */
static lp_status attach(dx_text_model *m, lp_err *err)
{
    m->k = lp_model_n_classes(m->model);
    if (m->k < 2 || m->k > DX_MAX_CLASSES ||
        lp_model_get_kind(m->model) != LP_MODEL_KIND_LOGISTIC)
        return lp_err_set(err, LP_EFORMAT,
                          "text model: need a logistic model with 2..%d classes (has %zu)",
                          DX_MAX_CLASSES, m->k);
    for (size_t j = 0; j < m->k; j++)
        m->labels[j] = lp_model_class(m->model, j);
    lp_status st = lp_explainer_new(m->model, &m->ex, err);
    if (st)
        return st;
    m->d = lp_explainer_n_features(m->ex);
    m->vocab = lp_mallocarray(m->d + 1, sizeof *m->vocab);
    if (!m->vocab)
        return lp_err_set(err, LP_ENOMEM, "text model: out of memory");
    size_t plen = strlen(DX_TERM_PREFIX);
    for (size_t j = 0; j < m->d; j++) {
        const char *name = lp_explainer_feature_name(m->ex, j);
        if (!name || strncmp(name, DX_TERM_PREFIX, plen) != 0)
            return lp_err_set(err, LP_EFORMAT, "text model: feature %zu is '%s', not a TF-IDF term",
                              j, name ? name : "?");
        if (!strchr(name + plen, ' '))
            m->vocab[m->n_vocab++] = (char *)(name + plen);
    }
    qsort(m->vocab, m->n_vocab, sizeof *m->vocab, cmp_str);
    return lp_tokenizer_new(NULL, true, &m->tok, err);
}

/* Words of text and how many of them the vocabulary knows. tokens (may be NULL) receives
 * them. */
static lp_status words(const dx_text_model *m, const char *text, lp_terms *tokens, size_t *n,
                       size_t *known, lp_err *err)
{
    lp_terms t = {0};
    lp_status st = lp_tokenizer_run(m->tok, text, strlen(text), &t, err);
    *n = t.n, *known = 0;
    for (size_t i = 0; !st && i < t.n; i++) {
        const char *w = t.v[i];
        *known += bsearch(&w, m->vocab, m->n_vocab, sizeof *m->vocab, cmp_str) != NULL;
    }
    if (tokens && !st)
        *tokens = t;
    else
        lp_terms_free(&t);
    return st;
}

/* Logits (k) of one design row x. */
static void logits_of(const dx_text_model *m, const float *x, double *z)
{
    double mg[DX_MAX_CLASSES];
    lp_explainer_margin(m->ex, x, mg);
    if (lp_explainer_n_outputs(m->ex) == 1)
        z[0] = 0, z[1] = mg[0];
    else
        memcpy(z, mg, m->k * sizeof *z);
}

/* The answer from logits z (k), the temperature and the word counts. */
static void answer(const dx_text_model *m, const double *z, size_t n_words, size_t known,
                   double cosv, dx_answer *a)
{
    memset(a, 0, sizeof *a);
    a->k = m->k;
    double mx = z[0], s = 0;
    for (size_t j = 1; j < m->k; j++)
        mx = fmax(mx, z[j]);
    for (size_t j = 0; j < m->k; j++)
        s += a->probs[j] = exp((z[j] - mx) / m->T);
    for (size_t j = 0; j < m->k; j++)
        a->probs[j] /= s, a->labels[j] = m->labels[j];
    dx_answer_rank(a);
    double share = n_words ? (double)known / (double)n_words : 0.0;
    a->ood = 1.0 - share;
    double top = a->probs[a->order[0]];
    if (known == 0) {
        a->abstain = a->out_of_dist = true;
        snprintf(a->reason, sizeof a->reason,
                 "no word of the text is in the model's vocabulary (%zu words; another language "
                 "or another domain?)",
                 n_words);
    } else if (share < m->cov_thr) {
        a->abstain = a->out_of_dist = true;
        snprintf(a->reason, sizeof a->reason,
                 "text unlike the training texts (%zu of %zu words known, share %.2f < %.2f)",
                 known, n_words, share, m->cov_thr);
    } else if (m->head && cosv < m->cos_thr) {
        a->abstain = a->out_of_dist = true;
        snprintf(a->reason, sizeof a->reason,
                 "text unlike the training texts (embedding cosine to the nearest class %.2f < "
                 "%.2f)", cosv, m->cos_thr);
    } else if (top < m->abstain_p) {
        a->abstain = true;
        snprintf(a->reason, sizeof a->reason, "low confidence (top probability %.2f < %.2f)",
                 top, m->abstain_p);
    }
}

/* Embeddings (n, D) of texts, *x new: through the fine-tuned encoder when the model has one
 * (the adapter merged into m->tuned), else the base. */
static lp_status embed(const dx_text_model *m, const char *const *texts, size_t n, float **x,
                       lp_err *err)
{
    return eh_embed(m->tuned ? m->tuned : m->enc, texts, n, x, err);
}

/* Encoder models: replace the TF-IDF logits z (n, k) of texts by the ensemble's log-scores and
 * fill cosv (n, nullable) with each text's max centroid cosine. No-op without an encoder. */
static lp_status mix_encoder(const dx_text_model *m, const char *const *texts, size_t n,
                             double *z, double *cosv, lp_err *err)
{
    if (!m->head || n == 0)
        return LP_OK;
    size_t k = m->k;
    float *x = NULL;
    double *le = lp_mallocarray(n, k * sizeof *le);
    lp_status st = le ? embed(m, texts, n, &x, err)
                      : lp_err_set(err, LP_ENOMEM, "text model: out of memory");
    if (!st) {
        eh_head_logprob(m->head, x, n, le);
        for (size_t i = 0; i < n; i++) {
            double *r = z + i * k;
            eh_log_softmax(r, k);
            for (size_t j = 0; j < k; j++)
                r[j] = m->w_tfidf * r[j] + (1 - m->w_tfidf) * le[i * k + j];
        }
        if (cosv)
            eh_head_max_cos(m->head, x, n, -1, cosv);
    }
    free(x);
    free(le);
    return st;
}

/* A one-column frame named DX_TEXT_COL of texts (n). */
static lp_status text_frame(const char *const *texts, size_t n, lp_frame **out, lp_err *err)
{
    lp_frame *f = lp_frame_new();
    if (!f)
        return lp_err_set(err, LP_ENOMEM, "text model: out of memory");
    lp_status st = lp_frame_add_text(f, DX_TEXT_COL, texts, n, err);
    if (st) {
        lp_frame_free(f);
        return st;
    }
    *out = f;
    return LP_OK;
}

static lp_status check_text(const char *text, lp_err *err)
{
    if (!text)
        return lp_err_set(err, LP_EINVAL, "'text' is missing");
    lp_status st = lp_utf8_check(text, strlen(text), "'text'", err);
    if (st)
        return st;
    for (const char *p = text; *p; p++)
        if (!strchr(" \t\r\n\f\v", *p))
            return LP_OK;
    return lp_err_set(err, LP_EINVAL, "'text' is empty (no non-blank character)");
}

/* The design row (d) of one text; caller frees *x. */
static lp_status design_one(const dx_text_model *m, const char *text, lp_matf **x, lp_err *err)
{
    lp_frame *f = NULL;
    lp_status st = text_frame(&text, 1, &f, err);
    if (!st)
        st = lp_model_design(m->model, f, x, err);
    lp_frame_free(f);
    return st;
}

lp_status dx_text_predict(const dx_text_model *m, const char *text, dx_answer *out, lp_err *err)
{
    lp_status st = check_text(text, err);
    if (st)
        return st;
    lp_matf *x = NULL;
    size_t n_words, known;
    st = words(m, text, NULL, &n_words, &known, err);
    if (!st)
        st = design_one(m, text, &x, err);
    double z[DX_MAX_CLASSES], cosv = 1;
    if (!st)
        logits_of(m, x->v, z);
    if (!st)
        st = mix_encoder(m, &text, 1, z, &cosv, err);
    if (!st)
        answer(m, z, n_words, known, cosv, out);
    lp_matf_free(x);
    return st;
}

void dx_text_expl_clear(dx_text_expl *e)
{
    if (!e)
        return;
    for (size_t i = 0; i < e->n; i++)
        free(e->tokens[i].token);
    free(e->tokens);
    memset(e, 0, sizeof *e);
}

/* Add c to the token equal to w[0..len) (it is one of the text's tokens). */
static void credit(dx_text_expl *e, const char *w, size_t len, double c)
{
    for (size_t i = 0; i < e->n; i++)
        if (strlen(e->tokens[i].token) == len && memcmp(e->tokens[i].token, w, len) == 0) {
            e->tokens[i].contribution += c;
            return;
        }
}

lp_status dx_text_explain(const dx_text_model *m, const char *text, size_t cls,
                          dx_text_expl *out, lp_err *err)
{
    memset(out, 0, sizeof *out);
    if (cls >= m->k)
        return lp_err_set(err, LP_EINVAL, "text explain: class %zu out of range (%zu)", cls,
                          m->k);
    lp_status st = check_text(text, err);
    if (st)
        return st;
    bool binary = lp_explainer_n_outputs(m->ex) == 1;
    double sign = binary && cls == 0 ? -1.0 : 1.0;
    size_t out_k = binary ? 0 : cls;
    lp_terms t = {0};
    size_t n_words, known;
    lp_matf *x = NULL;
    double *phi = lp_mallocarray(m->d + 1, sizeof *phi);
    lp_explain_ws *ws = lp_explain_ws_new(m->ex);
    if (!phi || !ws)
        st = lp_err_set(err, LP_ENOMEM, "text explain: out of memory");
    if (!st)
        st = words(m, text, &t, &n_words, &known, err);
    if (!st)
        st = design_one(m, text, &x, err);
    double margin = 0;
    if (!st)
        st = lp_explainer_row(m->ex, ws, x->v, out_k, phi, &margin, err);
    if (!st) {
        out->tokens = lp_calloc(t.n + 1, sizeof *out->tokens);
        if (!out->tokens)
            st = lp_err_set(err, LP_ENOMEM, "text explain: out of memory");
    }
    for (size_t i = 0; !st && i < t.n; i++) { /* distinct words, first appearance order */
        bool seen = false;
        for (size_t j = 0; j < out->n && !seen; j++)
            seen = strcmp(out->tokens[j].token, t.v[i]) == 0;
        if (seen)
            continue;
        if (!(out->tokens[out->n].token = lp_strdup(t.v[i])))
            st = lp_err_set(err, LP_ENOMEM, "text explain: out of memory");
        else
            out->n++;
    }
    size_t plen = strlen(DX_TERM_PREFIX);
    for (size_t j = 0; !st && j < m->d; j++) {
        if (phi[j] == 0)
            continue;
        const char *term = lp_explainer_feature_name(m->ex, j) + plen;
        size_t nw = 1;
        for (const char *p = term; *p; p++)
            nw += *p == ' ';
        const char *w = term;
        while (*w) {
            size_t len = strcspn(w, " ");
            credit(out, w, len, sign * phi[j] / (double)nw);
            w += len + (w[len] == ' ');
        }
    }
    if (!st) {
        out->base = sign * lp_explainer_base_value(m->ex, out_k);
        out->logit = sign * margin;
    } else {
        dx_text_expl_clear(out);
    }
    lp_terms_free(&t);
    lp_matf_free(x);
    lp_explain_ws_free(ws);
    free(phi);
    return st;
}

/* ---- training ------------------------------------------------------------------------------*/

/* texts and labels (n) of a file's rows with a label (strings copied; caller frees). */
typedef struct rows {
    size_t n;
    char **text, **label;
    size_t skipped;
    char text_col[128], label_col[128]; /* the columns read (guessed ones included) */
} rows;

static void rows_free(rows *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->text[i]), free(r->label[i]);
    free(r->text);
    free(r->label);
    memset(r, 0, sizeof *r);
}

/* Names other symptom / clinical-note tables give the text and the label column, in
 * lp_frame_find_like's form (lower case, '_' '-' ' ' left out): Symptom2Disease's text,label,
 * symptoms,disease / diagnosis / prognosis, MTSamples' transcription,medical_specialty. */
static const char *const text_like[] = {"text", "symptoms", "symptom", "description",
                                        "complaint", "chiefcomplaint", "transcription", "note",
                                        "notes", "report", "findings", "history", "sentence",
                                        "utterance", "query", "question", "message", NULL};
static const char *const label_like[] = {"label", "disease", "diagnosis", "condition",
                                         "prognosis", "medicalspecialty", "specialty", "class",
                                         "category", "target", "outcome", "labelname", NULL};

/* The text (label false) or label column of a frame without the default name: the one column
 * named like one (text_like / label_like), else in a two-column frame the column beside the
 * other role's one. -1 when that does not settle it. */
static long guess_col(const lp_frame *f, bool label)
{
    long c = lp_frame_find_like(f, label ? label_like : text_like);
    if (c < 0 && lp_frame_ncols(f) == 2) {
        long other = lp_frame_find_like(f, label ? text_like : label_like);
        c = other >= 0 ? 1 - other : -1;
    }
    return c;
}

/* A file's labelled rows. text_col / label_col NULL: "text" / "label", or when the file has no
 * such column the one guess_col finds, with a warning that names it and the flag. */
static lp_status rows_read(const char *path, const char *text_col, const char *label_col,
                           rows *r, lp_err *err)
{
    memset(r, 0, sizeof *r);
    lp_frame *f = NULL;
    size_t jt = 0, jl = 0;
    const char *tc = text_col ? text_col : "text", *lc = label_col ? label_col : "label";
    /* a file without a header line read with --text-col c2 --label-col c1; a class named
     * "None" is a class */
    const char *want[] = {tc, lc};
    lp_status st = lp_frame_read_labelled(path, NULL, want, 2, lc, &f, err);
    for (int k = 0; k < 2 && !st; k++) {
        const char *name = k ? lc : tc;
        long c = lp_frame_find(f, name);
        if (c < 0 && !(k ? label_col : text_col) && (c = guess_col(f, k)) >= 0) {
            lp_log_warn("%s: no column '%s': reading '%s' as the %s (--%s-col to choose "
                        "another)", path, name, lp_frame_col(f, (size_t)c)->name,
                        k ? "label" : "text", k ? "label" : "text");
            /* the label column read again so that "None" in it is a class */
            char nm[128];
            snprintf(nm, sizeof nm, "%s", lp_frame_col(f, (size_t)c)->name);
            if (k && !(st = lp_frame_reread_label(path, NULL, nm, &f, err)))
                c = lp_frame_find(f, nm);
        }
        if (!st && c < 0)
            st = lp_frame_require(f, name, path, k ? &jl : &jt, err);
        else if (!st)
            *(k ? &jl : &jt) = (size_t)c;
    }
    if (!st && jt == jl)
        st = lp_err_set(err, LP_EINVAL, "%s: the text and the label are the same column '%s'",
                        path, lp_frame_col(f, jt)->name);
    if (!st) {
        snprintf(r->text_col, sizeof r->text_col, "%s", lp_frame_col(f, jt)->name);
        snprintf(r->label_col, sizeof r->label_col, "%s", lp_frame_col(f, jl)->name);
    }
    size_t n = st ? 0 : lp_frame_nrows(f);
    if (!st) {
        r->text = lp_calloc(n + 1, sizeof *r->text);
        r->label = lp_calloc(n + 1, sizeof *r->label);
        if (!r->text || !r->label)
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
    }
    for (size_t i = 0; !st && i < n; i++) {
        char b1[64], b2[256];
        const char *lab = lp_column_cell_str(lp_frame_col(f, jl), i, b2, sizeof b2);
        if (!lab || !*lab) {
            r->skipped++;
            continue;
        }
        const char *tx = lp_column_cell_str(lp_frame_col(f, jt), i, b1, sizeof b1);
        r->text[r->n] = lp_strdup(tx ? tx : "");
        r->label[r->n] = lp_strdup(lab);
        if (!r->text[r->n] || !r->label[r->n]) {
            free(r->text[r->n]);
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
        } else {
            r->n++;
        }
    }
    if (!st && r->n < 2)
        st = lp_err_set(err, LP_EINVAL, "%s: %zu labelled rows; at least 2 are needed", path,
                        r->n);
    lp_frame_free(f);
    if (st)
        rows_free(r);
    return st;
}

/* A frame (text, label) of rows idx (n) of r (idx NULL: all). */
static lp_status rows_frame(const rows *r, const size_t *idx, size_t n, lp_frame **out,
                            lp_err *err)
{
    const char **t = lp_mallocarray(n + 1, sizeof *t), **l = lp_mallocarray(n + 1, sizeof *l);
    lp_frame *f = lp_frame_new();
    lp_status st = t && l && f ? LP_OK : lp_err_set(err, LP_ENOMEM, "text model: out of memory");
    for (size_t i = 0; !st && i < n; i++) {
        size_t s = idx ? idx[i] : i;
        t[i] = r->text[s], l[i] = r->label[s];
    }
    if (!st)
        st = lp_frame_add_text(f, DX_TEXT_COL, t, n, err);
    if (!st)
        st = lp_frame_add_categorical(f, DX_LABEL_COL, l, n, err);
    free(t);
    free(l);
    if (st) {
        lp_frame_free(f);
        return st;
    }
    *out = f;
    return LP_OK;
}

/* Class index of each row's label in m (LP_EINVAL naming an unknown label). */
static lp_status label_ids(const dx_text_model *m, const rows *r, const char *what, int32_t *y,
                           lp_err *err)
{
    for (size_t i = 0; i < r->n; i++) {
        y[i] = -1;
        for (size_t j = 0; j < m->k && y[i] < 0; j++)
            if (strcmp(r->label[i], m->labels[j]) == 0)
                y[i] = (int32_t)j;
        if (y[i] < 0)
            return lp_err_set(err, LP_EINVAL, "%s: labelled row %zu: label '%s' was not seen in "
                              "training", what, i + 1, r->label[i]);
    }
    return LP_OK;
}

/* Logits (n, k), word counts and (encoder models) max centroid cosines cosv (n) of rows r. */
static lp_status score_rows(const dx_text_model *m, const rows *r, double *z, size_t *nw,
                            size_t *known, double *cosv, lp_err *err)
{
    lp_frame *f = NULL;
    lp_matf *X = NULL;
    lp_status st = rows_frame(r, NULL, r->n, &f, err);
    if (!st)
        st = lp_model_design(m->model, f, &X, err);
    for (size_t i = 0; !st && i < r->n; i++) {
        logits_of(m, X->v + i * m->d, z + i * m->k);
        st = words(m, r->text[i], NULL, &nw[i], &known[i], err);
        cosv[i] = 1;
    }
    if (!st)
        st = mix_encoder(m, (const char *const *)r->text, r->n, z, cosv, err);
    lp_matf_free(X);
    lp_frame_free(f);
    return st;
}

/* Answers and metrics of m on r. */
static lp_status eval_rows(const dx_text_model *m, const rows *r, const char *what,
                           double T, dx_eval *ev, lp_err *err)
{
    double *z = lp_mallocarray(r->n, m->k * sizeof *z);
    size_t *nw = lp_mallocarray(r->n, sizeof *nw), *kn = lp_mallocarray(r->n, sizeof *kn);
    int32_t *y = lp_mallocarray(r->n, sizeof *y);
    dx_answer *a = lp_mallocarray(r->n, sizeof *a);
    double *cv = lp_mallocarray(r->n, sizeof *cv);
    lp_status st = z && nw && kn && y && a && cv
                       ? LP_OK
                       : lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
    if (!st)
        st = label_ids(m, r, what, y, err);
    if (!st)
        st = score_rows(m, r, z, nw, kn, cv, err);
    if (!st) {
        dx_text_model tm = *m;
        tm.T = T;
        for (size_t i = 0; i < r->n; i++)
            answer(&tm, z + i * m->k, nw[i], kn[i], cv[i], &a[i]);
        st = dx_eval_answers(a, y, r->n, m->k, ev, err);
    }
    free(cv);
    free(z);
    free(nw);
    free(kn);
    free(y);
    free(a);
    return st;
}

lp_status dx_text_eval(const dx_text_model *m, const char *path, const char *text_col,
                       const char *label_col, dx_eval *out, lp_err *err)
{
    cJSON *card = cJSON_Parse(m->card);
    const cJSON *td = card ? cJSON_GetObjectItemCaseSensitive(card, "training_data") : NULL;
    const cJSON *tc = td ? cJSON_GetObjectItemCaseSensitive(td, "text_column") : NULL;
    const cJSON *lc = td ? cJSON_GetObjectItemCaseSensitive(td, "label_column") : NULL;
    rows r;
    lp_status st;
    if (text_col || label_col) { /* named on the command line: never guessed */
        st = rows_read(path, text_col ? text_col : cJSON_IsString(tc) ? tc->valuestring : "text",
                       label_col ? label_col : cJSON_IsString(lc) ? lc->valuestring : "label",
                       &r, err);
    } else {
        st = cJSON_IsString(tc) && cJSON_IsString(lc)
                 ? rows_read(path, tc->valuestring, lc->valuestring, &r, err)
                 : lp_err_set(err, LP_EFORMAT, "text model: the card names no columns");
        lp_err e2;
        /* a file laid out otherwise than the training file: text / label, or guessed */
        if (st == LP_ENOTFOUND && !rows_read(path, NULL, NULL, &r, &e2)) {
            lp_log_warn("%s: no columns '%s' and '%s' (the training file's): reading '%s' as "
                        "the text and '%s' as the label", path, tc->valuestring,
                        lc->valuestring, r.text_col, r.label_col);
            st = LP_OK;
        }
    }
    cJSON_Delete(card);
    if (st)
        return st;
    st = eval_rows(m, &r, path, m->T, out, err);
    rows_free(&r);
    return st;
}

static lp_status build_card(dx_text_model *m, const char *path, const char *text_col,
                            const char *label_col, size_t n_train, size_t n_valid,
                            const dx_eval *ev, double ece_before, const dx_train_opts *o,
                            lp_err *err)
{
    cJSON *c = cJSON_CreateObject();
    cJSON *data = cJSON_AddObjectToObject(c, "training_data");
    cJSON_AddStringToObject(data, "file", path);
    cJSON_AddStringToObject(data, "text_column", text_col);
    cJSON_AddStringToObject(data, "label_column", label_col);
    cJSON_AddNumberToObject(data, "train_rows", (double)n_train);
    cJSON_AddNumberToObject(data, "valid_rows", (double)n_valid);
    cJSON_AddNumberToObject(data, "vocabulary_terms", (double)m->d);
    cJSON *cls = cJSON_AddArrayToObject(data, "classes");
    for (size_t j = 0; j < m->k; j++)
        cJSON_AddItemToArray(cls, cJSON_CreateString(m->labels[j]));
    cJSON *arch = cJSON_AddObjectToObject(c, "model");
    char fam[160];
    snprintf(fam, sizeof fam, "logistic regression (L2, C = %g) on TF-IDF (word 1-%u grams%s, "
             "L2-normalised rows)", m->C, o->text_ngram_max ? o->text_ngram_max : 1,
             o->text_sublinear ? ", sublinear tf" : "");
    cJSON_AddStringToObject(arch, "family", fam);
    cJSON_AddStringToObject(arch, "C_chosen_by",
                            o->text_c > 0 ? "given" : "temperature-scaled validation "
                            "log-likelihood over C in {10, 100, 1000, 10000}");
    cJSON_AddStringToObject(arch, "fit", m->refit ? "refit on every row (training and validation) "
                            "after the validation split chose C, the temperature and the "
                            "thresholds; validation metrics are the split model's"
                            : "the training rows; validation metrics on the validation rows");
    if (m->head) {
        cJSON *e = cJSON_AddObjectToObject(arch, "encoder");
        cJSON_AddStringToObject(e, "file", m->ident.path);
        cJSON_AddStringToObject(e, "sha256", m->ident.sha256);
        cJSON_AddStringToObject(e, "head", m->adapter
                                ? "softmax on the fine-tuned encoder's sentence embeddings, "
                                  "ensembled with the TF-IDF model in log-probability space"
                                : "softmax on the frozen sentence embeddings, "
                                  "ensembled with the TF-IDF model in log-probability space");
        cJSON_AddStringToObject(e, "finetune", finetune_name(m));
        cJSON_AddNumberToObject(e, "tfidf_weight", m->w_tfidf);
        cJSON_AddNumberToObject(e, "min_cosine", m->cos_thr);
        cJSON_AddStringToObject(e, "explanations", "TF-IDF part only");
    }
    cJSON *v = cJSON_AddObjectToObject(c, "validation_metrics");
    cJSON_AddNumberToObject(v, "accuracy", ev->accuracy);
    cJSON_AddNumberToObject(v, "macro_f1", ev->macro_f1);
    if (isfinite(ev->auroc))
        cJSON_AddNumberToObject(v, "auroc", ev->auroc);
    cJSON_AddNumberToObject(v, "top3_accuracy", ev->top3_accuracy);
    cJSON_AddNumberToObject(v, "abstained", (double)ev->abstained);
    cJSON *cal = cJSON_AddObjectToObject(c, "calibration");
    cJSON_AddStringToObject(cal, "method", "temperature scaling on the validation split");
    cJSON_AddNumberToObject(cal, "temperature", m->T);
    cJSON_AddStringToObject(cal, "temperature_range", "[0.1, 10] (a fit at a bound is clamped)");
    cJSON_AddNumberToObject(cal, "ece_before", ece_before);
    cJSON_AddNumberToObject(cal, "ece_after", ev->ece);
    cJSON *ab = cJSON_AddObjectToObject(c, "abstention");
    cJSON_AddNumberToObject(ab, "min_top_probability", m->abstain_p);
    cJSON_AddNumberToObject(ab, "min_known_word_share", m->cov_thr);
    cJSON_AddStringToObject(c, "intended_use", DX_STATEMENT);
    cJSON_AddStringToObject(c, "limits",
                            "Trained on the symptom descriptions above only (their language, "
                            "wording and label set); a text with few known words abstains. "
                            "Negation and time course are not understood (bag of words). "
                            "Calibration holds for data like the validation split. Not a "
                            "medical device.");
    m->card = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return m->card ? LP_OK : lp_err_set(err, LP_ENOMEM, "text model: out of memory for the card");
}

/* Temperature, the known-share threshold (and the encoder's cosine one), the drift reference
 * and the validation metrics at T = 1 (*before) and at T (*after), all from va. */
static lp_status fit_trust(dx_text_model *m, const rows *va, const dx_train_opts *o,
                           dx_eval *before, dx_eval *after, lp_err *err)
{
    size_t nv = va->n, k = m->k;
    double *z = lp_mallocarray(nv, k * sizeof *z), *share = lp_mallocarray(nv, sizeof *share);
    size_t *nw = lp_mallocarray(nv, sizeof *nw), *kn = lp_mallocarray(nv, sizeof *kn);
    int32_t *y = lp_mallocarray(nv, sizeof *y);
    double *cv = lp_mallocarray(nv, sizeof *cv);
    lp_status st = z && share && nw && kn && y && cv
                       ? LP_OK
                       : lp_err_set(err, LP_ENOMEM, "text model: out of memory");
    if (!st)
        st = label_ids(m, va, "validation rows", y, err);
    if (!st)
        st = score_rows(m, va, z, nw, kn, cv, err);
    lp_calibrator *cal = NULL;
    if (!st)
        st = lp_calibrator_fit_temperature(z, y, nv, k, &cal, err);
    if (!st) {
        lp_calibrator_params(cal, &m->T, NULL);
        m->T = dx_temperature_clamp(m->T);
        for (size_t i = 0; i < nv; i++)
            share[i] = nw[i] ? (double)kn[i] / (double)nw[i] : 0;
        qsort(share, nv, sizeof *share, cmp_double);
        /* at most DX_TEXT_MAX_KNOWN_SHARE: validation texts share the training texts' wording
         * more than a clinician's own words do (on symptom2disease the quantile is 0.90, so
         * one unknown word in an eight-word complaint abstained) */
        m->cov_thr = fmin(share[(size_t)floor((1.0 - o->ood_quantile) * (double)(nv - 1))],
                          DX_TEXT_MAX_KNOWN_SHARE);
        m->abstain_p = o->abstain_p;
        if (m->head) {
            qsort(cv, nv, sizeof *cv, cmp_double);
            m->cos_thr = cv[(size_t)floor((1.0 - o->ood_quantile) * (double)(nv - 1))];
        }
    }
    lp_calibrator_free(cal);
    /* the monitor's drift reference: the validation answers at the fitted temperature, kept
     * in the model file as the extra section "drift" */
    dx_answer *ans = st ? NULL : lp_mallocarray(nv, sizeof *ans);
    if (!st && !ans)
        st = lp_err_set(err, LP_ENOMEM, "text model: out of memory");
    /* cv is sorted now: recompute the cosines in row order for the drift answers */
    if (!st && m->head)
        st = score_rows(m, va, z, nw, kn, cv, err);
    for (size_t i = 0; !st && i < nv; i++)
        answer(m, z + i * k, nw[i], kn[i], m->head ? cv[i] : 1, &ans[i]);
    if (!st)
        st = dx_drift_fit(ans, nv, &m->drift, err);
    free(ans);
    if (!st)
        st = eval_rows(m, va, "validation rows", 1.0, before, err);
    if (!st)
        st = eval_rows(m, va, "validation rows", m->T, after, err);
    free(cv);
    free(z);
    free(share);
    free(nw);
    free(kn);
    free(y);
    return st;
}

/* The final model's sections: the drift reference, its version (from its header), the card,
 * the encoder head (encoder models) and the dx.text settings. */
static lp_status seal(dx_text_model *m, const char *path, const char *text_col,
                      const char *label_col, size_t n_train, size_t n_valid,
                      const dx_eval *after, double ece_before, const dx_train_opts *o,
                      lp_err *err)
{
    lp_buf db;
    lp_buf_init(&db);
    lp_status st = lp_drift_save(m->drift, &db, err);
    if (!st)
        st = lp_model_set_extra(m->model, "drift", db.data, db.len, err);
    lp_buf_free(&db);
    if (!st) {
        char hex[65];
        const char *h = lp_model_header(m->model);
        lp_sha256_hex(h, strlen(h), hex);
        snprintf(m->version, sizeof m->version, "text-%.12s", hex);
        st = build_card(m, path, text_col, label_col, n_train, n_valid, after, ece_before, o,
                        err);
    }
    char *sec = NULL;
    if (!st) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "version", m->version);
        cJSON_AddNumberToObject(j, "temperature", m->T);
        cJSON_AddNumberToObject(j, "abstain_p", m->abstain_p);
        cJSON_AddNumberToObject(j, "min_known_share", m->cov_thr);
        cJSON_AddItemToObject(j, "card", cJSON_Parse(m->card));
        if (m->head) {
            cJSON *e = cJSON_AddObjectToObject(j, "encoder");
            eh_settings_add(e, &m->ident, m->w_tfidf, m->cos_thr);
            cJSON_AddStringToObject(e, "finetune", finetune_name(m));
            lp_buf b;
            lp_buf_init(&b);
            eh_head_save(m->head, &b);
            st = lp_buf_status(&b, err);
            if (!st)
                st = lp_model_set_extra(m->model, "dx.enchead", b.data, b.len, err);
            lp_buf_free(&b);
        }
        if (!st && m->adapter) {
            lp_buf b;
            lp_buf_init(&b);
            lp_encoder_adapter_save_buf(m->adapter, &b);
            st = lp_buf_status(&b, err);
            if (!st)
                st = lp_model_set_extra(m->model, DX_ADAPTER_SECTION, b.data, b.len, err);
            lp_buf_free(&b);
        }
        sec = st ? NULL : cJSON_PrintUnformatted(j);
        cJSON_Delete(j);
        if (!st)
            st = sec ? lp_model_set_extra(m->model, "dx.text", sec, strlen(sec), err)
                     : lp_err_set(err, LP_ENOMEM, "text model: out of memory");
    }
    cJSON_free(sec);
    return st;
}

/* Encoder models: open o->encoder, fit the head on the training rows' embeddings, and pick the
 * ensemble weight w by validation accuracy (ties: the smaller w, i.e. more encoder). */
static lp_status fit_encoder(dx_text_model *m, const rows *tr, const rows *va,
                             const dx_train_opts *o, lp_err *err)
{
    lp_status st =
        eh_encoder_open(o->encoder, NULL, "text --encoder", NULL, &m->enc, &m->ident, err);
    if (st)
        return st;
    size_t k = m->k, nv = va->n;
    float *x = NULL;
    int32_t *y = lp_mallocarray(tr->n + nv, sizeof *y);
    double *zt = lp_mallocarray(nv, k * sizeof *zt), *le = lp_mallocarray(nv, k * sizeof *le);
    size_t *nw = lp_mallocarray(nv, sizeof *nw), *kn = lp_mallocarray(nv, sizeof *kn);
    double *cv = lp_mallocarray(nv, sizeof *cv);
    st = y && zt && le && nw && kn && cv ? label_ids(m, tr, "training rows", y, err)
                                         : lp_err_set(err, LP_ENOMEM, "text model: out of memory");
    if (!st && o->finetune && strcmp(o->finetune, "head")) {
        lp_encoder_ft_method fm = LP_ENCODER_FT_METHOD_LORA;
        st = lp_encoder_ft_method_parse(o->finetune, &fm, err);
        lp_encoder_ft_opts fo = lp_encoder_ft_opts_for(fm);
        fo.seed = o->seed;
        if (o->ft_epochs)
            fo.epochs = o->ft_epochs;
        fo.max_steps = o->ft_max_steps;
        double loss = NAN, t0 = lp_time_wall();
        if (!st)
            st = lp_encoder_finetune(m->enc, (const char *const *)tr->text, y, tr->n, k, &fo,
                                     &m->adapter, &loss, err);
        if (!st)
            lp_log_info("text model: encoder fine-tuned (%s) in %.1f s, last epoch's loss %.4f",
                        o->finetune, lp_time_wall() - t0, loss);
        if (!st)
            st = lp_encoder_adapter_merge(m->adapter, m->enc, &m->tuned, err);
    }
    if (!st)
        st = embed(m, (const char *const *)tr->text, tr->n, &x, err);
    if (!st) {
        eh_head_opts ho = eh_head_opts_default();
        ho.seed = o->seed;
        st = eh_head_fit(x, y, tr->n, m->ident.dim, k, &ho, &m->head, err);
    }
    free(x);
    x = NULL;
    /* validation: TF-IDF logits (head detached) and the head's log-probabilities */
    eh_head *h = m->head;
    m->head = NULL;
    if (!st)
        st = label_ids(m, va, "validation rows", y, err);
    if (!st)
        st = score_rows(m, va, zt, nw, kn, cv, err);
    for (size_t i = 0; !st && i < nv; i++)
        eh_log_softmax(zt + i * k, k);
    m->head = h;
    if (!st)
        st = embed(m, (const char *const *)va->text, nv, &x, err);
    if (!st) {
        eh_head_logprob(m->head, x, nv, le);
        double best = -1;
        for (int g = 0; g <= 10; g++) {
            size_t right = 0;
            for (size_t i = 0; i < nv; i++) {
                const double *a = zt + i * k, *b = le + i * k;
                size_t arg = 0;
                double top = -INFINITY;
                for (size_t j = 0; j < k; j++) {
                    double v = g / 10.0 * a[j] + (1 - g / 10.0) * b[j];
                    if (v > top)
                        top = v, arg = j;
                }
                right += (int32_t)arg == y[i];
            }
            if ((double)right > best) {
                best = (double)right;
                m->w_tfidf = g / 10.0;
            }
        }
        lp_log_info("text model: encoder %s, TF-IDF weight %.1f (validation accuracy %.4f)",
                    m->ident.path, m->w_tfidf, nv ? best / (double)nv : 0);
    }
    free(x);
    free(y);
    free(zt);
    free(le);
    free(nw);
    free(kn);
    free(cv);
    return st;
}

/* Validation negative log-likelihood of model lm on frame fva (rows va) after temperature
 * scaling of its log-probabilities (the T fitted on those rows). */
static lp_status calibrated_nll(const lp_model *lm, const lp_frame *fva, const rows *va,
                                double *nll, lp_err *err)
{
    size_t k = lp_model_n_classes(lm), n = 0;
    lp_predictions p = {0};
    float *z = lp_mallocarray(va->n, (k ? k : 1) * sizeof *z);
    int32_t *y = lp_mallocarray(va->n, sizeof *y);
    lp_status st = z && y ? lp_model_predict(lm, fva, &p, err)
                          : lp_err_set(err, LP_ENOMEM, "text model: out of memory");
    for (size_t i = 0; !st && i < p.n && i < va->n; i++) {
        int32_t c = -1; /* a label the split's training part never saw: left out here */
        for (size_t j = 0; j < k && c < 0; j++)
            if (strcmp(va->label[i], lp_model_class(lm, j)) == 0)
                c = (int32_t)j;
        if (c < 0)
            continue;
        for (size_t j = 0; j < k; j++)
            z[n * k + j] = (float)log(fmax(p.out[i * k + j], 1e-30));
        y[n++] = c;
    }
    double T;
    *nll = INFINITY;
    if (!st && n)
        st = dx_fit_temperature(z, 1, y, n, k, &T, nll, err);
    lp_predictions_clear(&p);
    free(z);
    free(y);
    return st;
}

/* The logistic regression at C = given (> 0), or at the C of {10, 100, 1000, 10000} whose
 * temperature-scaled validation log-likelihood is best (ties: the smaller C). Short symptom
 * texts are nearly separable, so the best C is large there; the grid lets the data say so. */
static lp_status fit_c(const lp_frame *ftr, const lp_frame *fva, const rows *va,
                       lp_train_opts *to, lp_params *params, double given, lp_model **out,
                       double *C, lp_err *err)
{
    static const double grid[] = {10, 100, 1000, 10000};
    size_t ng = given > 0 ? 1 : sizeof grid / sizeof grid[0];
    double best = INFINITY;
    lp_status st = LP_OK;
    *out = NULL;
    for (size_t g = 0; g < ng && !st; g++) {
        double c = given > 0 ? given : grid[g], nll = 0;
        lp_model *lm = NULL;
        st = lp_params_set_double(params, "C", c, err);
        if (!st)
            st = lp_model_train(ftr, fva, to, &lm, err);
        if (!st && ng > 1)
            st = calibrated_nll(lm, fva, va, &nll, err);
        if (!st)
            lp_log_debug("text model: C = %g, calibrated validation log-loss %.5f", c, nll);
        if (!st && (*out == NULL || nll < best - 1e-9)) {
            lp_model_free(*out);
            *out = lm, *C = c, best = nll;
        } else {
            lp_model_free(lm);
        }
    }
    if (st) {
        lp_model_free(*out);
        *out = NULL;
    }
    return st;
}

/* The model refit on every row f at m->C; the temperature, thresholds and ensemble weight stay
 * those the split chose. Kept only when its classes are the split model's (a class seen only
 * in the validation part keeps the split model). */
static lp_status refit_all(dx_text_model *m, const lp_frame *f, const lp_train_opts *to,
                           lp_params *params, lp_err *err)
{
    lp_model *nm = NULL;
    lp_status st = lp_params_set_double(params, "C", m->C, err);
    if (!st) /* every row trains; the header's "validation" metrics are then training metrics */
        st = lp_model_train(f, f, to, &nm, err);
    if (st)
        return st;
    bool same = lp_model_n_classes(nm) == m->k;
    for (size_t j = 0; same && j < m->k; j++)
        same = strcmp(lp_model_class(nm, j), m->labels[j]) == 0;
    if (!same) {
        lp_log_warn("text model: a class is only in the validation rows; not refit on every row");
        lp_model_free(nm);
        return LP_OK;
    }
    lp_explainer_free(m->ex);
    lp_tokenizer_free(m->tok);
    free(m->vocab);
    m->ex = NULL, m->tok = NULL, m->vocab = NULL, m->n_vocab = 0;
    lp_model_free(m->model);
    m->model = nm;
    m->refit = true;
    return attach(m, err);
}

lp_status dx_text_train(const char *path, const char *valid_path, const char *text_col,
                        const char *label_col, const dx_train_opts *o, dx_text_model **out,
                        lp_err *err)
{
    *out = NULL;
    rows all = {0}, tr = {0}, va = {0};
    lp_frame *ftr = NULL, *fva = NULL, *f = NULL; /* f: every row (split mode) */
    lp_split sp = {0};
    lp_pipeline *pl = NULL;
    lp_params *params = NULL;
    dx_text_model *m = lp_calloc(1, sizeof *m);
    lp_status st = m ? LP_OK : lp_err_set(err, LP_ENOMEM, "text model: out of memory");
    if (!st)
        st = rows_read(path, text_col, label_col, &all, err);
    if (!st && valid_path) {
        tr = all;
        memset(&all, 0, sizeof all);
        st = rows_read(valid_path, text_col, label_col, &va, err);
        if (!st)
            st = rows_frame(&tr, NULL, tr.n, &ftr, err);
        if (!st)
            st = rows_frame(&va, NULL, va.n, &fva, err);
    } else if (!st) {
        st = rows_frame(&all, NULL, all.n, &f, err);
        if (!st)
            st = lp_split_stratified(lp_frame_col(f, 1), o->valid_frac, o->seed, &sp, err);
        if (!st)
            st = lp_frame_take_rows(f, sp.train, sp.n_train, &ftr, err);
        if (!st)
            st = lp_frame_take_rows(f, sp.test, sp.n_test, &fva, err);
        /* rows views of the two parts (strings borrowed from all) */
        if (!st) {
            tr.n = sp.n_train, va.n = sp.n_test;
            tr.text = lp_mallocarray(tr.n + 1, sizeof(char *));
            tr.label = lp_mallocarray(tr.n + 1, sizeof(char *));
            va.text = lp_mallocarray(va.n + 1, sizeof(char *));
            va.label = lp_mallocarray(va.n + 1, sizeof(char *));
            if (!tr.text || !tr.label || !va.text || !va.label)
                st = lp_err_set(err, LP_ENOMEM, "text model: out of memory");
            for (size_t i = 0; !st && i < tr.n; i++)
                tr.text[i] = all.text[sp.train[i]], tr.label[i] = all.label[sp.train[i]];
            for (size_t i = 0; !st && i < va.n; i++)
                va.text[i] = all.text[sp.test[i]], va.label[i] = all.label[sp.test[i]];
        }
        if (!st && va.n < 2)
            st = lp_err_set(err, LP_EINVAL, "%s: %zu rows leave %zu for validation; need 2",
                            path, all.n, va.n);
    }
    if (!st) {
        lp_step_opts so = lp_step_opts_default(LP_STEP_KIND_TFIDF);
        so.text.analyzer.ngram_max = o->text_ngram_max ? o->text_ngram_max : 1;
        so.text.sublinear_tf = o->text_sublinear;
        const char *cols[1] = {DX_TEXT_COL};
        pl = lp_pipeline_new();
        st = pl ? lp_pipeline_add(pl, cols, 1, &so, err)
                : lp_err_set(err, LP_ENOMEM, "text model: out of memory");
    }
    lp_train_opts to = lp_train_opts_default();
    to.kind = LP_MODEL_KIND_LOGISTIC;
    to.label = DX_LABEL_COL;
    to.seed = o->seed;
    to.data_name = path;
    to.pipeline = pl;
    params = st ? NULL : lp_params_new();
    if (!st && !params)
        st = lp_err_set(err, LP_ENOMEM, "text model: out of memory");
    to.params = params;
    if (!st)
        st = fit_c(ftr, fva, &va, &to, params, o->text_c, &m->model, &m->C, err);
    if (!st)
        st = attach(m, err);
    if (!st && o->encoder)
        st = fit_encoder(m, &tr, &va, o, err);
    dx_eval before, after;
    if (!st)
        st = fit_trust(m, &va, o, &before, &after, err);
    if (!st && f && o->text_refit)
        st = refit_all(m, f, &to, params, err);
    if (!st)
        st = seal(m, path, all.text_col[0] ? all.text_col : tr.text_col,
                  all.label_col[0] ? all.label_col : tr.label_col, m->refit ? all.n : tr.n,
                  va.n, &after, before.ece, o, err);
    if (all.n) { /* the split views borrow all's strings */
        free(tr.text), free(tr.label), free(va.text), free(va.label);
        rows_free(&all);
    } else {
        rows_free(&tr);
        rows_free(&va);
    }
    lp_split_free(&sp);
    lp_pipeline_free(pl);
    lp_params_free(params);
    lp_frame_free(ftr);
    lp_frame_free(fva);
    lp_frame_free(f);
    if (st) {
        dx_text_model_free(m);
        return st;
    }
    *out = m;
    return LP_OK;
}

const lp_drift *dx_text_model_drift(const dx_text_model *m) { return m->drift; }

lp_status dx_text_model_save(const dx_text_model *m, const char *path, lp_err *err)
{
    return lp_model_save(m->model, path, err);
}

/* The encoder part of a saved text model: settings e, section dx.enchead, and the recorded
 * encoder file (refused when its sha256 differs). */
static lp_status load_encoder(dx_text_model *m, const char *path, const cJSON *e, lp_err *err)
{
    lp_status st = eh_settings_parse(e, path, &m->ident, &m->w_tfidf, &m->cos_thr, err);
    const void *data = NULL;
    size_t len = 0;
    if (!st)
        st = lp_model_get_extra(m->model, "dx.enchead", &data, &len, err);
    lp_reader r;
    lp_reader_init(&r, data, len, "section dx.enchead");
    if (!st)
        st = eh_head_load(&r, &m->head, err);
    if (!st && (eh_head_dim(m->head) != m->ident.dim ||
                eh_head_classes(m->head) != lp_model_n_classes(m->model)))
        st = lp_err_set(err, LP_EFORMAT, "%s: section dx.enchead does not fit the model", path);
    if (!st)
        st = eh_encoder_open(m->ident.path, &m->ident, path, NULL, &m->enc, NULL, err);
    /* a fine-tuned model's adapter (checked against the encoder it was trained on) */
    if (!st && lp_model_get_extra(m->model, DX_ADAPTER_SECTION, &data, &len, NULL) == LP_OK) {
        char what[512];
        snprintf(what, sizeof what, "%s: section %s", path, DX_ADAPTER_SECTION);
        st = lp_encoder_adapter_load_mem(data, len, what, m->enc, &m->adapter, err);
        if (!st && lp_encoder_adapter_n_classes(m->adapter) != lp_model_n_classes(m->model))
            st = lp_err_set(err, LP_EFORMAT, "%s: does not fit the model's classes", what);
        if (!st)
            st = lp_encoder_adapter_merge(m->adapter, m->enc, &m->tuned, err);
    }
    return st;
}

lp_status dx_text_model_load(const char *path, dx_text_model **out, lp_err *err)
{
    *out = NULL;
    dx_text_model *m = lp_calloc(1, sizeof *m);
    if (!m)
        return lp_err_set(err, LP_ENOMEM, "text model: out of memory");
    lp_status st = lp_model_load(path, &m->model, err);
    const void *data = NULL;
    size_t len = 0;
    if (!st && lp_model_get_extra(m->model, "dx.text", &data, &len, NULL))
        st = lp_err_set(err, LP_EFORMAT,
                        "%s: not a lepton-diagnosis text model (no dx.text section)", path);
    cJSON *j = st ? NULL : cJSON_ParseWithLength(data, len);
    if (!st && !j)
        st = lp_err_set(err, LP_EFORMAT, "%s: dx.text section is not JSON", path);
    if (!st) {
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(j, "version");
        const cJSON *T = cJSON_GetObjectItemCaseSensitive(j, "temperature");
        const cJSON *ap = cJSON_GetObjectItemCaseSensitive(j, "abstain_p");
        const cJSON *cv = cJSON_GetObjectItemCaseSensitive(j, "min_known_share");
        const cJSON *card = cJSON_GetObjectItemCaseSensitive(j, "card");
        if (!cJSON_IsString(ver) || !cJSON_IsNumber(T) || !(T->valuedouble > 0) ||
            !cJSON_IsNumber(ap) || !cJSON_IsNumber(cv) || !cJSON_IsObject(card))
            st = lp_err_set(err, LP_EFORMAT, "%s: dx.text section lacks version, temperature, "
                            "abstain_p, min_known_share or card", path);
        else {
            snprintf(m->version, sizeof m->version, "%s", ver->valuestring);
            m->T = T->valuedouble, m->abstain_p = ap->valuedouble, m->cov_thr = cv->valuedouble;
            m->card = cJSON_PrintUnformatted(card);
            if (!m->card)
                st = lp_err_set(err, LP_ENOMEM, "text model: out of memory");
        }
    }
    const cJSON *enc = st ? NULL : cJSON_GetObjectItemCaseSensitive(j, "encoder");
    if (enc)
        st = load_encoder(m, path, enc, err);
    cJSON_Delete(j);
    /* optional: models saved before monitoring have no drift reference */
    if (!st && lp_model_get_extra(m->model, "drift", &data, &len, NULL) == LP_OK)
        st = lp_drift_load(data, len, &m->drift, err);
    if (!st)
        st = attach(m, err);
    if (st) {
        dx_text_model_free(m);
        return st;
    }
    *out = m;
    return LP_OK;
}

/* ---- late fusion ---------------------------------------------------------------------------*/

static void label_list(const dx_answer *a, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (size_t j = 0; j < a->k && n + 1 < cap; j++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", j ? ", " : "", a->labels[j]);
}

lp_status dx_fuse(const dx_answer *a, const dx_answer *b, double abstain_p, dx_answer *out,
                  size_t *dropped, lp_err *err)
{
    dx_answer f;
    memset(&f, 0, sizeof f);
    double lg[DX_MAX_CLASSES];
    for (size_t i = 0; i < a->k; i++)
        for (size_t j = 0; j < b->k; j++)
            if (strcmp(a->labels[i], b->labels[j]) == 0) {
                f.labels[f.k] = a->labels[i];
                lg[f.k++] = log(fmax(a->probs[i], 1e-300)) + log(fmax(b->probs[j], 1e-300));
                break;
            }
    if (f.k < 2) {
        char la[512], lb[512];
        label_list(a, la, sizeof la);
        label_list(b, lb, sizeof lb);
        return lp_err_set(err, LP_EUNSUPPORTED,
                          "cannot fuse image and text: the image model's labels (%s) and the "
                          "text model's labels (%s) share %zu; send one of them alone",
                          la, lb, f.k);
    }
    double mx = lg[0], s = 0;
    for (size_t j = 1; j < f.k; j++)
        mx = fmax(mx, lg[j]);
    for (size_t j = 0; j < f.k; j++)
        s += f.probs[j] = exp(lg[j] - mx);
    for (size_t j = 0; j < f.k; j++)
        f.probs[j] /= s;
    dx_answer_rank(&f);
    f.ood = fmax(a->ood, b->ood);
    double top = f.probs[f.order[0]];
    if (a->out_of_dist || b->out_of_dist) {
        f.abstain = f.out_of_dist = true;
        snprintf(f.reason, sizeof f.reason, "%s%s%s%s%s",
                 a->out_of_dist ? "image: " : "", a->out_of_dist ? a->reason : "",
                 a->out_of_dist && b->out_of_dist ? "; " : "", b->out_of_dist ? "text: " : "",
                 b->out_of_dist ? b->reason : "");
    } else if (top < abstain_p) {
        f.abstain = true;
        snprintf(f.reason, sizeof f.reason,
                 "low confidence (fused top probability %.2f < %.2f)", top, abstain_p);
    }
    if (dropped)
        *dropped = a->k + b->k - 2 * f.k;
    *out = f;
    return LP_OK;
}
