/*
 * cs_intent.c - intent classifier: word 1-2-gram TF-IDF (+ char_wb 2-5 TF-IDF) into multinomial
 * logistic regression (lp_model with our own pipeline), C chosen on validation, temperature
 * scaling on validation logits (Guo et al. 2017; the logits are log-probabilities, which
 * softmax maps back to the same probabilities at T = 1), and out-of-scope detection.
 *
 * OOS: a text is out of scope when the trained OOS class (if the training data has one) is the
 * most probable class, or when the calibrated probability of the best in-scope intent is below
 * the threshold tau fitted on validation: the largest that costs at most oos_max_loss of
 * in-scope validation accuracy, so the most OOS recall for that price, whether or not
 * validation has OOS rows. The default budget is 2 points for TF-IDF alone and 1 point with an
 * encoder, whose OOS scores separate better (until session 5 it was 2 points for both, and
 * without OOS rows tau kept 95% of the in-scope rows: see bench/RESULTS.md).
 * Does not: learn from unlabelled text, or fine-tune the encoder (head only).
 * Invariant: a loaded classifier predicts exactly as the one that was saved.
 *
 * With a sentence encoder (opts.encoder, apps/enchead): a softmax head on the frozen
 * encoder's L2-normalised embeddings is trained beside the TF-IDF model on the same classes,
 * and the two are ensembled in log-probability space, z = w log p_tfidf + (1 - w) log p_head,
 * with w in {0, 0.1, .., 1} picked by validation in-scope accuracy (w = 0: the encoder alone,
 * w = 1: TF-IDF alone); the temperature is then fitted on the validation z. OOS adds the
 * embedding distance: a text is also out of scope when its largest cosine to the in-scope
 * intents' centroids is below tau_c, (tau, tau_c) fitted jointly on validation by the same two
 * rules (eh_fit_thresholds). The model file records the encoder's absolute path and sha256;
 * loading opens that file and refuses another one.
 *
 * Refit (opts.refit; by default when the validation rows are split off the training data): once
 * C, the ensemble weight, the temperature and the OOS thresholds are chosen on validation rows
 * the model never saw, the whole recipe is trained again on the training plus validation rows
 * and the new model keeps those choices (refit()).
 *
 * Tenant adapters: the multinomial logistic layer (coef (K, V), intercept) is a dense layer
 * on the TF-IDF features; a tenant's LoRA adapter (lepton/finetune.h, new_classes) adds a
 * trainable rank-r delta (alpha / r) B A and m new intent rows [0; c] to it, with the base
 * frozen. A tenant's request is classified with the base's temperature and OOS threshold tau
 * over the K + m classes: nothing is refitted per tenant (a few examples per intent are too
 * few to fit a threshold); the trained OOS class, when the base has one, stays a class.
 */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cs.h"
#include "enchead.h"

#define COL_TEXT "text"
#define COL_LABEL "label"
#define EXTRA_SETTINGS "cs.intent"
#define EXTRA_HEAD "cs.enchead"
#define EXTRA_ADAPTER "cs.encadapter" /* the fine-tuned encoder adapter (.lpa image) */
/* Temperature range kept after fitting (see cs_intent_train). */
#define CS_T_MIN 0.25
#define CS_T_MAX 20.0

struct cs_intent {
    lp_model *model;
    lp_predictor *pred; /* m->model prepared for one text at a time (chat turns); may be NULL */
    double T; /* temperature (Guo et al. 2017), clamped to [CS_T_MIN, CS_T_MAX] */
    long oos; /* class index of the OOS label, -1 when not trained */
    char *oos_label;
    double tau;
    bool protocol_train; /* OOS rows were in training */
    /* encoder models only (head != NULL) */
    eh_head *head;      /* classes in m->model's order */
    lp_encoder *enc;    /* the encoder the head was trained on */
    lp_encoder_adapter *adapter; /* --finetune lora|full: what the model file keeps; else NULL */
    lp_encoder *tuned;  /* enc with the adapter merged: what embeddings go through; else NULL */
    eh_ident ident;     /* its recorded identity */
    double w_tfidf;     /* ensemble weight of the TF-IDF log-probabilities */
    double tau_c;       /* OOS when the max centroid cosine is below this */
    /* during training: embeddings (cache_n, D) of the validation texts cache_texts */
    const char *const *cache_texts;
    float *cache;
    size_t cache_n;
};

cs_intent_opts cs_intent_opts_default(void)
{
    return (cs_intent_opts){.oos_label = "oos",
                            .c_grid = NULL,
                            .n_c = 0,
                            .valid_frac = 0.2,
                            .oos_max_loss = -1,
                            .target_in_recall = 0,
                            .threads = 0,
                            .seed = 42,
                            .refit = -1,
                            .max_iter = 100,
                            .char_ngrams = false,
                            .encoder = NULL};
}

void cs_intent_free(cs_intent *m)
{
    if (!m)
        return;
    lp_predictor_free(m->pred);
    lp_model_free(m->model);
    eh_head_free(m->head);
    lp_encoder_adapter_free(m->adapter);
    lp_encoder_free(m->tuned); /* before enc, whose tokenizer it shares */
    lp_encoder_free(m->enc);
    free(m->cache);
    free(m->oos_label);
    free(m);
}

const char *cs_intent_protocol(const cs_intent *m)
{
    return m->protocol_train ? "oos_in_train" : "threshold";
}
double cs_intent_threshold(const cs_intent *m)
{
    return m->tau;
}
const char *cs_intent_oos_label(const cs_intent *m)
{
    return m->oos_label;
}
size_t cs_intent_n_classes(const cs_intent *m)
{
    return lp_model_n_classes(m->model);
}
const char *cs_intent_class(const cs_intent *m, size_t k)
{
    return lp_model_class(m->model, k);
}
lp_model *cs_intent_model(cs_intent *m)
{
    return m->model;
}
double cs_intent_temperature(const cs_intent *m)
{
    return m->T;
}
const char *cs_intent_finetune(const cs_intent *m)
{
    if (!m->head)
        return NULL;
    return m->adapter ? lp_encoder_ft_method_name(lp_encoder_adapter_method(m->adapter))
                      : "frozen";
}

const char *cs_intent_encoder(const cs_intent *m)
{
    return m->head ? m->ident.path : NULL;
}
double cs_intent_tfidf_weight(const cs_intent *m)
{
    return m->head ? m->w_tfidf : NAN;
}
double cs_intent_cos_threshold(const cs_intent *m)
{
    return m->head ? m->tau_c : NAN;
}
const lp_encoder *cs_intent_encoder_handle(const cs_intent *m)
{
    return m->head ? m->enc : NULL;
}

static lp_status make_frame(const char *const *texts, const char *const *labels, size_t n,
                            lp_frame **out, lp_err *err)
{
    lp_frame *f = lp_frame_new();
    if (!f)
        return lp_err_set(err, LP_ENOMEM, "intent data: out of memory");
    lp_status st = lp_frame_add_text(f, COL_TEXT, texts, n, err);
    if (st == LP_OK && labels)
        st = lp_frame_add_categorical(f, COL_LABEL, labels, n, err);
    if (st != LP_OK) {
        lp_frame_free(f);
        return st;
    }
    *out = f;
    return LP_OK;
}

static lp_status make_pipeline(bool char_ngrams, lp_pipeline **out, lp_err *err)
{
    lp_pipeline *p = lp_pipeline_new();
    if (!p)
        return lp_err_set(err, LP_ENOMEM, "intent pipeline: out of memory");
    const char *cols[] = {COL_TEXT};
    lp_step_opts w = lp_step_opts_default(LP_STEP_KIND_TFIDF);
    w.text.analyzer.ngram_min = 1;
    w.text.analyzer.ngram_max = 2;
    w.text.sublinear_tf = true;
    w.text.max_features = 0;
    w.text.min_df = 2;
    lp_status st = lp_pipeline_add(p, cols, 1, &w, err);
    if (st == LP_OK && char_ngrams) {
        lp_step_opts c = lp_step_opts_default(LP_STEP_KIND_TFIDF);
        c.text.analyzer.kind = LP_ANALYZER_KIND_CHAR_WB;
        c.text.analyzer.ngram_min = 2;
        c.text.analyzer.ngram_max = 5;
        c.text.sublinear_tf = true;
        c.text.min_df = 3;
        c.text.max_features = 0;
        st = lp_pipeline_add(p, cols, 1, &c, err);
    }
    if (st != LP_OK) {
        lp_pipeline_free(p);
        return st;
    }
    *out = p;
    return LP_OK;
}

/* Stratified split: per label, round(frac * count) rows (at most count - 1) to validation. */
static lp_status strat_split(const char *const *labels, size_t n, double frac, uint64_t seed,
                             uint8_t *is_valid, lp_err *err)
{
    size_t *idx = lp_mallocarray(n, sizeof(size_t));
    if (!idx)
        return lp_err_set(err, LP_ENOMEM, "split: out of memory");
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    lp_rng_shuffle_idx(&rng, idx, n);
    memset(is_valid, 0, n);
    uint8_t *done = lp_calloc(n, 1);
    if (!done) {
        free(idx);
        return lp_err_set(err, LP_ENOMEM, "split: out of memory");
    }
    /* O(n * classes) grouping; intent sets are small. */
    for (size_t a = 0; a < n; a++) {
        size_t i = idx[a];
        if (done[i])
            continue;
        size_t cnt = 0;
        for (size_t b = a; b < n; b++)
            if (!done[idx[b]] && !strcmp(labels[idx[b]], labels[i]))
                cnt++;
        size_t take = (size_t)floor(frac * (double)cnt + 0.5);
        if (take >= cnt)
            take = cnt - 1;
        for (size_t b = a; b < n; b++) {
            size_t j = idx[b];
            if (!done[j] && !strcmp(labels[j], labels[i])) {
                done[j] = 1;
                if (take) {
                    is_valid[j] = 1;
                    take--;
                }
            }
        }
    }
    free(done);
    free(idx);
    return LP_OK;
}

/* Embeddings (n, D) of texts through the encoder, or through the fine-tuned one when the model
 * has an adapter (merged into m->tuned: the inference path, not the training forward). *out
 * new. */
static lp_status embed_texts(const cs_intent *m, const char *const *texts, size_t n, float **out,
                             lp_err *err)
{
    return eh_embed(m->tuned ? m->tuned : m->enc, texts, n, out, err);
}

/* Embeddings (n, D) of texts: the training cache when texts is the cached array, else the
 * encoder's. *owned is what the caller frees (NULL for the cache). */
static lp_status embed_of(const cs_intent *m, const char *const *texts, size_t n,
                          const float **x, float **owned, lp_err *err)
{
    *owned = NULL;
    if (m->cache && texts == m->cache_texts && n == m->cache_n) {
        *x = m->cache;
        return LP_OK;
    }
    lp_status st = embed_texts(m, texts, n, owned, err);
    *x = *owned;
    return st;
}

/* Ensemble log-scores (n, k) of texts before the temperature: log p of the TF-IDF model (under
 * the tenant adapter a, nullable), mixed with the encoder head's when there is one; cosv (n,
 * nullable) gets the max in-scope centroid cosine (encoder models only). */
/* The calling thread's predictor scratch (a chat turn runs on a pool thread), freed when the
 * thread ends; NULL when it cannot be made. */
static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_destroy(void *p)
{
    lp_predict_scratch_free(p);
}

static void scratch_key_make(void)
{
    pthread_key_create(&scratch_key, scratch_destroy);
}

static lp_predict_scratch *thread_scratch(void)
{
    pthread_once(&scratch_once, scratch_key_make);
    lp_predict_scratch *s = pthread_getspecific(scratch_key);
    if (!s && (s = lp_predict_scratch_new()) && pthread_setspecific(scratch_key, s) != 0) {
        lp_predict_scratch_free(s);
        s = NULL;
    }
    return s;
}

/* Prepare m->model for one text at a time (lp_predictor: the same outputs as lp_model_predict,
 * without building a frame); on failure texts keep going through frames. */
static void prepare_predictor(cs_intent *m)
{
    lp_err ignored;
    lp_err_clear(&ignored);
    if (lp_model_n_inputs(m->model) <= 8 && lp_predictor_new(m->model, &m->pred, &ignored) != LP_OK)
        m->pred = NULL;
}

/* One text's TF-IDF class probabilities through m->pred into pr; false when that path is not
 * available here (the caller goes through frames). */
static bool predict_one(const cs_intent *m, const char *text, lp_predictions *pr, lp_status *st,
                        lp_err *err)
{
    lp_predict_scratch *sc = m->pred ? thread_scratch() : NULL;
    if (!sc)
        return false;
    size_t ni = lp_model_n_inputs(m->model), k = lp_predictor_n_outputs(m->pred);
    double num[8];
    const char *str[8];
    for (size_t j = 0; j < ni; j++) {
        num[j] = NAN;
        str[j] = !strcmp(lp_model_input_name(m->model, j), COL_TEXT) ? text : NULL;
    }
    lp_row_view v = {num, str};
    *pr = (lp_predictions){.task = lp_model_task(m->model), .n = 1, .k = k};
    pr->out = lp_mallocarray(k, sizeof(double));
    pr->cls = lp_mallocarray(1, sizeof(int32_t));
    if (!pr->out || !pr->cls)
        *st = lp_err_set(err, LP_ENOMEM, "intent: out of memory");
    else
        *st = lp_predictor_run(m->pred, &v, 1, sc, pr->out, pr->cls, err);
    if (*st != LP_OK)
        lp_predictions_clear(pr);
    return true;
}

static lp_status logits_of(const cs_intent *m, const lp_lora *a, const char *const *texts,
                           size_t n, lp_predictions *pr, double *cosv, lp_err *err)
{
    lp_status st = LP_OK;
    if (a || n != 1 || !predict_one(m, texts[0], pr, &st, err)) {
        lp_frame *f;
        if ((st = make_frame(texts, NULL, n, &f, err)) != LP_OK)
            return st;
        st = a ? lp_lora_predict(a, f, pr, err) : lp_model_predict(m->model, f, pr, err);
        lp_frame_free(f);
    }
    if (st != LP_OK)
        return st;
    size_t k = pr->k;
    for (size_t i = 0; i < n * k; i++)
        pr->out[i] = log(pr->out[i] > 1e-300 ? pr->out[i] : 1e-300);
    if (!m->head || a)
        return LP_OK;
    const float *x;
    float *owned;
    double *le = lp_mallocarray(n * k, sizeof(double));
    if (!le)
        st = lp_err_set(err, LP_ENOMEM, "intent: out of memory");
    else if ((st = embed_of(m, texts, n, &x, &owned, err)) == LP_OK) {
        eh_head_logprob(m->head, x, n, le);
        for (size_t i = 0; i < n * k; i++)
            pr->out[i] = m->w_tfidf * pr->out[i] + (1 - m->w_tfidf) * le[i];
        if (cosv)
            eh_head_max_cos(m->head, x, n, m->oos, cosv);
        free(owned);
    }
    free(le);
    if (st != LP_OK)
        lp_predictions_clear(pr);
    return st;
}

/* Calibrated probabilities (n, k) of texts, under the tenant adapter a (nullable); cosv as in
 * logits_of. */
static lp_status probs_of(const cs_intent *m, const lp_lora *a, const char *const *texts,
                          size_t n, double **out, double *cosv, lp_err *err)
{
    lp_predictions pr = {0};
    lp_status st = logits_of(m, a, texts, n, &pr, cosv, err);
    if (st != LP_OK)
        return st;
    size_t k = pr.k;
    /* softmax(z / T), max subtracted for stability */
    for (size_t i = 0; i < n; i++) {
        double mx = -INFINITY, s = 0;
        for (size_t c = 0; c < k; c++)
            mx = fmax(mx, pr.out[i * k + c]);
        for (size_t c = 0; c < k; c++)
            s += (pr.out[i * k + c] = exp((pr.out[i * k + c] - mx) / m->T));
        for (size_t c = 0; c < k; c++)
            pr.out[i * k + c] /= s;
    }
    *out = pr.out;
    pr.out = NULL;
    lp_predictions_clear(&pr);
    return LP_OK;
}

static const char *class_name(const cs_intent *m, const lp_lora *a, size_t c)
{
    return a ? lp_lora_class(a, c) : lp_model_class(m->model, c);
}

/* Fill res from one row of calibrated probabilities p (k), class names from a (nullable), and
 * (encoder models) the max centroid cosine cosv. */
static void decide(const cs_intent *m, const lp_lora *a, const double *p, size_t k, double cosv,
                   cs_intent_result *r)
{
    memset(r, 0, sizeof(*r));
    size_t best_all = 0;
    for (size_t c = 1; c < k; c++)
        if (p[c] > p[best_all])
            best_all = c;
    for (size_t c = 0; c < k; c++) {
        if ((long)c == m->oos)
            continue;
        size_t pos = r->n_alt;
        while (pos > 0 && p[c] > r->alt_p[pos - 1])
            pos--;
        if (pos >= CS_TOPK)
            continue;
        size_t last = r->n_alt < CS_TOPK ? r->n_alt : CS_TOPK - 1;
        for (size_t q = last; q > pos; q--) {
            r->alt[q] = r->alt[q - 1];
            r->alt_p[q] = r->alt_p[q - 1];
        }
        r->alt[pos] = class_name(m, a, c);
        r->alt_p[pos] = p[c];
        if (r->n_alt < CS_TOPK)
            r->n_alt++;
    }
    r->confidence = r->n_alt ? r->alt_p[0] : 0;
    r->out_of_scope = (m->oos >= 0 && (long)best_all == m->oos) || r->confidence < m->tau ||
                      r->n_alt == 0 || (m->head && !a && cosv < m->tau_c);
    r->intent = r->out_of_scope ? m->oos_label : r->alt[0];
}

/* cs_intent_predict_with, keeping each text's max centroid cosine in cos (n) when not NULL. */
static lp_status predict_impl(const cs_intent *m, const lp_lora *a, const char *const *texts,
                              size_t n, cs_intent_result *res, double *cos, lp_err *err)
{
    if (n == 0)
        return LP_OK;
    double *p, *cosv = lp_mallocarray(n, sizeof(double));
    if (!cosv)
        return lp_err_set(err, LP_ENOMEM, "intent: out of memory");
    for (size_t i = 0; i < n; i++)
        cosv[i] = -1; /* no encoder: no centroid */
    lp_status st = probs_of(m, a, texts, n, &p, cosv, err);
    if (st != LP_OK) {
        free(cosv);
        return st;
    }
    size_t k = a ? lp_lora_n_classes(a) : lp_model_n_classes(m->model);
    for (size_t i = 0; i < n; i++)
        decide(m, a, p + i * k, k, cosv[i], &res[i]);
    if (cos)
        memcpy(cos, cosv, n * sizeof(double));
    free(p);
    free(cosv);
    return LP_OK;
}

lp_status cs_intent_predict_with(const cs_intent *m, const lp_lora *a,
                                 const char *const *texts, size_t n, cs_intent_result *res,
                                 lp_err *err)
{
    return predict_impl(m, a, texts, n, res, NULL, err);
}

lp_status cs_intent_predict_cos(const cs_intent *m, const char *const *texts, size_t n,
                                cs_intent_result *res, double *cos, lp_err *err)
{
    return predict_impl(m, NULL, texts, n, res, cos, err);
}

void cs_intent_set_thresholds(cs_intent *m, double tau, double tau_c)
{
    m->tau = tau;
    if (m->head)
        m->tau_c = tau_c;
}

void cs_intent_set_calibration(cs_intent *m, double T, double w_tfidf)
{
    if (T > 0 && isfinite(T))
        m->T = T;
    if (m->head && w_tfidf >= 0 && w_tfidf <= 1)
        m->w_tfidf = w_tfidf;
}

lp_status cs_intent_predict(const cs_intent *m, const char *const *texts, size_t n,
                            cs_intent_result *res, lp_err *err)
{
    return cs_intent_predict_with(m, NULL, texts, n, res, err);
}

static long class_index(const lp_model *m, const char *label)
{
    size_t k = lp_model_n_classes(m);
    for (size_t c = 0; c < k; c++)
        if (!strcmp(lp_model_class(m, c), label))
            return (long)c;
    return -1;
}

/* In-scope accuracy of raw argmax (over in-scope classes) on validation probabilities. */
static double in_scope_acc(const lp_predictions *pr, const lp_model *model, const char *const *vl,
                           size_t nv, const char *oos)
{
    size_t right = 0, tot = 0;
    long o = class_index(model, oos);
    for (size_t i = 0; i < nv; i++) {
        if (!strcmp(vl[i], oos))
            continue;
        tot++;
        size_t best = (size_t)-1;
        for (size_t c = 0; c < pr->k; c++)
            if ((long)c != o &&
                (best == (size_t)-1 || pr->out[i * pr->k + c] > pr->out[i * pr->k + best]))
                best = c;
        if (best != (size_t)-1 && !strcmp(lp_model_class(model, best), vl[i]))
            right++;
    }
    return tot ? (double)right / (double)tot : 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Encoder models: (tau, tau_c) from the validation answers r (nv, made with no threshold) and
 * their centroid cosines cosv. */
static lp_status fit_two(cs_intent *m, const cs_intent_result *r, const double *cosv,
                         const char *const *vl, size_t nv, double max_loss, double target,
                         lp_err *err)
{
    double *conf = lp_mallocarray(nv, sizeof(double));
    uint8_t *gold = lp_mallocarray(nv, 1), *right = lp_mallocarray(nv, 1),
            *pre = lp_mallocarray(nv, 1);
    lp_status st = LP_OK;
    if (!conf || !gold || !right || !pre) {
        st = lp_err_set(err, LP_ENOMEM, "threshold: out of memory");
    } else {
        for (size_t i = 0; i < nv; i++) {
            conf[i] = r[i].confidence;
            gold[i] = !strcmp(vl[i], m->oos_label);
            pre[i] = r[i].out_of_scope;
            right[i] = r[i].n_alt && !strcmp(r[i].alt[0], vl[i]);
        }
        st = eh_fit_thresholds(conf, cosv, gold, right, pre, nv, max_loss, target, &m->tau,
                               &m->tau_c, err);
    }
    free(conf);
    free(gold);
    free(right);
    free(pre);
    return st;
}

/* Fit tau on validation (see the file comment). */
static lp_status fit_threshold(cs_intent *m, const char *const *vt, const char *const *vl,
                               size_t nv, double max_loss, double target, lp_err *err)
{
    double *p, *cosv = lp_mallocarray(nv + 1, sizeof(double));
    if (!cosv)
        return lp_err_set(err, LP_ENOMEM, "threshold: out of memory");
    lp_status st = probs_of(m, NULL, vt, nv, &p, cosv, err);
    if (st != LP_OK) {
        free(cosv);
        return st;
    }
    size_t k = lp_model_n_classes(m->model), n_oos = 0, n_in = 0;
    double *conf = lp_mallocarray(nv + 1, sizeof(double));
    cs_intent_result *r = lp_mallocarray(nv, sizeof(cs_intent_result));
    if (!conf || !r) {
        free(p);
        free(cosv);
        free(conf);
        free(r);
        return lp_err_set(err, LP_ENOMEM, "threshold: out of memory");
    }
    m->tau = 0;
    m->tau_c = -1;
    for (size_t i = 0; i < nv; i++) {
        decide(m, NULL, p + i * k, k, cosv[i], &r[i]);
        if (!strcmp(vl[i], m->oos_label))
            n_oos++;
        else
            conf[n_in++] = r[i].confidence;
    }
    if (m->head) {
        st = fit_two(m, r, cosv, vl, nv, max_loss, target, err);
    } else if (n_oos == 0 && n_in > 0 && target > 0) {
        qsort(conf, n_in, sizeof(double), cmp_double);
        size_t q = (size_t)floor((1.0 - target) * (double)n_in);
        m->tau = q < n_in ? conf[q] : 0;
        /* keep exactly the rows at or above conf[q] */
    } else if (n_in > 0) {
        /* the largest tau whose in-scope accuracy stays within max_loss of tau = 0: OOS
         * recall only grows with tau, so this is the most OOS recall the loss allows (OOS
         * rows in validation or not: only the in-scope rows are counted) */
        size_t nc = 0;
        for (size_t i = 0; i < nv; i++)
            conf[nc++] = r[i].confidence;
        conf[nc++] = 0;
        qsort(conf, nc, sizeof(double), cmp_double);
        double acc0 = -1, best_tau = 0;
        for (size_t c = 0; c < nc; c++) {
            if (c && conf[c] == conf[c - 1])
                continue;
            double tau = conf[c];
            size_t in_ok = 0;
            for (size_t i = 0; i < nv; i++)
                if (strcmp(vl[i], m->oos_label))
                    in_ok +=
                        !r[i].out_of_scope && r[i].confidence >= tau && !strcmp(r[i].alt[0], vl[i]);
            double acc = (double)in_ok / (double)n_in;
            if (acc0 < 0)
                acc0 = acc;
            if (acc < acc0 - max_loss)
                break;
            best_tau = tau;
        }
        m->tau = best_tau;
    }
    free(p);
    free(cosv);
    free(conf);
    free(r);
    return st;
}

/* Encoder models: open o->encoder, fit the head on the training embeddings (labels as m's
 * classes), and embed the validation texts vt (nv) into m's cache. */
static lp_status fit_encoder(cs_intent *m, const cs_intent_opts *o, const char *const *t,
                             const char *const *l, size_t nt, const char *const *vt, size_t nv,
                             lp_err *err)
{
    lp_status st = eh_encoder_open(o->encoder, NULL, "intent --encoder", o->encoder_device,
                                   &m->enc, &m->ident, err);
    if (st != LP_OK)
        return st;
    float *x = NULL;
    double t0 = lp_time_wall();
    int32_t *y = lp_mallocarray(nt, sizeof(int32_t));
    if (!y)
        return lp_err_set(err, LP_ENOMEM, "intent: out of memory");
    for (size_t i = 0; i < nt; i++)
        y[i] = (int32_t)class_index(m->model, l[i]);
    if (o->finetune && strcmp(o->finetune, "head")) {
        lp_encoder_ft_method fm = LP_ENCODER_FT_METHOD_LORA;
        if ((st = lp_encoder_ft_method_parse(o->finetune, &fm, err)) == LP_OK) {
            lp_encoder_ft_opts fo = lp_encoder_ft_opts_for(fm);
            fo.seed = o->seed;
            if (o->ft_epochs)
                fo.epochs = o->ft_epochs;
            fo.max_steps = o->ft_max_steps;
            double loss = NAN;
            st = lp_encoder_finetune(m->enc, t, y, nt, lp_model_n_classes(m->model), &fo,
                                     &m->adapter, &loss, err);
            if (st == LP_OK)
                lp_log_info("intent: encoder fine-tuned (%s) in %.1f s, last epoch's loss %.4f",
                            o->finetune, lp_time_wall() - t0, loss);
            if (st == LP_OK)
                st = lp_encoder_adapter_merge(m->adapter, m->enc, &m->tuned, err);
        }
        if (st != LP_OK) {
            free(y);
            return st;
        }
    }
    if ((st = embed_texts(m, t, nt, &x, err)) == LP_OK) {
        lp_log_info("intent: embedded %zu training texts in %.1f s", nt, lp_time_wall() - t0);
        eh_head_opts ho = eh_head_opts_default();
        ho.seed = o->seed;
        st = eh_head_fit(x, y, nt, m->ident.dim, lp_model_n_classes(m->model), &ho, &m->head,
                         err);
    }
    free(x);
    free(y);
    if (st == LP_OK && (st = embed_texts(m, vt, nv, &m->cache, err)) == LP_OK) {
        m->cache_texts = vt;
        m->cache_n = nv;
    }
    lp_log_info("intent: encoder head ready after %.1f s", lp_time_wall() - t0);
    return st;
}

/* Encoder models: pick the ensemble weight w on validation log-probabilities lt (nvk, k) of the
 * TF-IDF model (rows vkidx of the cache, labels vlk) and replace lt by the ensemble's. */
static lp_status mix_validation(cs_intent *m, lp_predictions *lt, const size_t *vkidx,
                                const char *const *vlk, size_t nvk, const char *oos,
                                lp_err *err)
{
    size_t k = lt->k, d = m->ident.dim;
    float *x = lp_mallocarray(nvk * d, sizeof(float));
    double *le = lp_mallocarray(nvk * k, sizeof(double)), *z = lp_mallocarray(nvk * k,
                                                                               sizeof(double));
    if (!x || !le || !z) {
        free(x);
        free(le);
        free(z);
        return lp_err_set(err, LP_ENOMEM, "intent: out of memory");
    }
    for (size_t i = 0; i < nvk; i++)
        memcpy(x + i * d, m->cache + vkidx[i] * d, d * sizeof(float));
    eh_head_logprob(m->head, x, nvk, le);
    double best = -1, acc_w[11];
    lp_predictions tmp = *lt;
    tmp.out = z;
    for (int g = 0; g <= 10; g++) {
        double w = g / 10.0;
        for (size_t i = 0; i < nvk * k; i++)
            z[i] = w * lt->out[i] + (1 - w) * le[i];
        acc_w[g] = in_scope_acc(&tmp, m->model, vlk, nvk, oos);
        if (acc_w[g] > best) {
            best = acc_w[g];
            m->w_tfidf = w;
        }
    }
    for (size_t i = 0; i < nvk * k; i++)
        lt->out[i] = m->w_tfidf * lt->out[i] + (1 - m->w_tfidf) * le[i];
    lp_log_info("intent: validation in-scope accuracy: encoder head %.4f, TF-IDF %.4f, ensemble "
                "(TF-IDF weight %.1f) %.4f", acc_w[0], acc_w[10], m->w_tfidf, best);
    free(x);
    free(le);
    free(z);
    return LP_OK;
}

/* The TF-IDF model: one candidate per C of the grid, the best on validation in-scope accuracy
 * (the only one when the grid has one value). A job for a thread. */
typedef struct tfidf_job {
    const lp_frame *ftr, *fva;
    const lp_pipeline *pipe;
    const double *grid;
    size_t ng;
    const cs_intent_opts *o;
    const char *const *vlk;
    size_t nvk;
    int threads;    /* the solver's threads; 0 = all */
    lp_model *best; /* out */
    double best_c;  /* out: its C */
    lp_status st;   /* out */
    lp_err err;
} tfidf_job;

static lp_status fit_tfidf(tfidf_job *j)
{
    lp_err *err = &j->err;
    lp_status st = LP_OK;
    double best_acc = -1;
    lp_params *par = lp_params_new();
    if (!par)
        return lp_err_set(err, LP_ENOMEM, "intent: out of memory");
    for (size_t g = 0; g < j->ng; g++) {
        lp_train_opts to = lp_train_opts_default();
        to.kind = LP_MODEL_KIND_LOGISTIC;
        to.label = COL_LABEL;
        to.pipeline = j->pipe;
        to.seed = j->o->seed;
        to.params = par;
        if ((st = lp_params_set_double(par, "C", j->grid[g], err)) != LP_OK ||
            (st = lp_params_set(par, "tol", "1e-3", err)) != LP_OK ||
            (st = lp_params_set_double(par, "max_iter", j->o->max_iter ? j->o->max_iter : 100,
                                       err)) != LP_OK ||
            (j->threads && (st = lp_params_set_double(par, "threads", j->threads, err)) != LP_OK))
            break;
        lp_model *cand;
        if ((st = lp_model_train(j->ftr, j->fva, &to, &cand, err)) != LP_OK)
            break;
        double acc = 0;
        if (j->ng > 1 && j->fva) {
            lp_predictions pr = {0};
            if ((st = lp_model_predict(cand, j->fva, &pr, err)) != LP_OK) {
                lp_model_free(cand);
                break;
            }
            acc = in_scope_acc(&pr, cand, j->vlk, j->nvk, j->o->oos_label);
            lp_predictions_clear(&pr);
            lp_log_info("intent: C=%g validation in-scope accuracy %.4f", j->grid[g], acc);
        }
        if (acc > best_acc) {
            lp_model_free(j->best);
            j->best = cand;
            j->best_c = j->grid[g];
            best_acc = acc;
        } else {
            lp_model_free(cand);
        }
    }
    lp_params_free(par);
    if (st != LP_OK) {
        lp_model_free(j->best);
        j->best = NULL;
    }
    return st;
}

static void *tfidf_thread(void *arg)
{
    tfidf_job *j = arg;
    j->st = fit_tfidf(j);
    return NULL;
}

/* A frozen encoder's side of training, done while the TF-IDF model trains (its solver waits on
 * memory, the encoder on arithmetic, so on two cores the pair takes little longer than the
 * longer one alone: bench/RESULTS.md): the encoder opened and the training texts embedded;
 * then, once the TF-IDF model gives the class list, the head fitted on another thread while
 * the validation texts are embedded. */
typedef struct enc_side {
    lp_encoder *enc;
    eh_ident ident;
    eh_head *head;
    float *cache; /* (nv, D) validation embeddings */
} enc_side;

typedef struct head_job {
    const float *x;
    const int32_t *y;
    size_t n, d, k;
    eh_head_opts ho;
    eh_head *head; /* out */
    lp_status st;
    lp_err err;
} head_job;

static void *head_thread(void *arg)
{
    head_job *h = arg;
    lp_err_clear(&h->err);
    h->st = eh_head_fit(h->x, h->y, h->n, h->d, h->k, &h->ho, &h->head, &h->err);
    return NULL;
}

/* job's TF-IDF training on a thread and the encoder side here. On success job->best is the
 * TF-IDF model and *es complete; on failure the caller frees both. */
static lp_status fit_overlapped(tfidf_job *job, const cs_intent_opts *o, const char *const *t,
                                const char *const *l, size_t nt, const char *const *vt,
                                size_t nv, enc_side *es, lp_err *err)
{
    pthread_t th;
    bool threaded = pthread_create(&th, NULL, tfidf_thread, job) == 0;
    double t0 = lp_time_wall();
    float *x = NULL;
    lp_status st = eh_encoder_open(o->encoder, NULL, "intent --encoder", o->encoder_device,
                                   &es->enc, &es->ident, err);
    if (st == LP_OK && (st = eh_embed(es->enc, t, nt, &x, err)) == LP_OK)
        lp_log_info("intent: embedded %zu training texts in %.1f s", nt, lp_time_wall() - t0);
    if (threaded)
        pthread_join(th, NULL);
    else
        tfidf_thread(job);
    if (st == LP_OK && job->st != LP_OK) {
        st = job->st;
        if (err)
            *err = job->err;
    }
    int32_t *y = st == LP_OK ? lp_mallocarray(nt, sizeof(int32_t)) : NULL;
    if (st == LP_OK && !y)
        st = lp_err_set(err, LP_ENOMEM, "intent: out of memory");
    if (st != LP_OK) {
        free(x);
        free(y);
        return st;
    }
    for (size_t i = 0; i < nt; i++)
        y[i] = (int32_t)class_index(job->best, l[i]);
    head_job hj = {.x = x, .y = y, .n = nt, .d = es->ident.dim,
                   .k = lp_model_n_classes(job->best), .ho = eh_head_opts_default()};
    hj.ho.seed = o->seed;
    threaded = pthread_create(&th, NULL, head_thread, &hj) == 0;
    st = eh_embed(es->enc, vt, nv, &es->cache, err);
    if (threaded)
        pthread_join(th, NULL);
    else
        head_thread(&hj);
    es->head = hj.head;
    if (st == LP_OK && hj.st != LP_OK) {
        st = hj.st;
        if (err)
            *err = hj.err;
    }
    free(x);
    free(y);
    lp_log_info("intent: encoder head ready after %.1f s", lp_time_wall() - t0);
    return st;
}

/* opts.refit: train m's recipe again on the training rows T, L (nt) plus the validation rows
 * vkidx (nvk) of VT, VL whose intents training has, at m's C (c), and give the new model m's
 * temperature, ensemble weight, OOS thresholds and drift reference (all chosen on validation
 * rows the first model never saw; the new model has seen them, so its own validation fit would
 * be biased). On success *m is replaced (the old one freed). */
static lp_status refit(cs_intent **m, const cs_intent_opts *o, double c, const char *const *T,
                       const char *const *L, size_t nt, const char *const *VT,
                       const char *const *VL, size_t nv, const size_t *vkidx, size_t nvk,
                       lp_err *err)
{
    const char **rt = lp_mallocarray(nt + nvk, sizeof(char *)),
               **rl = lp_mallocarray(nt + nvk, sizeof(char *));
    if (!rt || !rl) {
        free(rt);
        free(rl);
        return lp_err_set(err, LP_ENOMEM, "intent refit: out of memory");
    }
    memcpy(rt, T, nt * sizeof(char *));
    memcpy(rl, L, nt * sizeof(char *));
    for (size_t i = 0; i < nvk; i++) {
        rt[nt + i] = VT[vkidx[i]];
        rl[nt + i] = VL[vkidx[i]];
    }
    cs_intent_opts io = *o;
    io.refit = 0;
    io.c_grid = &c;
    io.n_c = 1;
    lp_log_info("intent: refitting on %zu training + %zu validation rows at C=%g", nt, nvk, c);
    cs_intent *r = NULL;
    /* the validation rows go in again as validation: the new model's own choices on them are
     * made and then replaced by the first model's */
    lp_status st = cs_intent_train(rt, rl, nt + nvk, VT, VL, nv, &io, &r, err);
    free(rt);
    free(rl);
    if (st == LP_OK)
        st = cs_monitor_copy_reference(*m, r, err);
    if (st != LP_OK) {
        cs_intent_free(r);
        return st;
    }
    if (lp_model_n_classes(r->model) != lp_model_n_classes((*m)->model)) {
        cs_intent_free(r);
        return lp_err_set(err, LP_ESTATE, "intent refit: %zu classes, the first fit had %zu",
                          lp_model_n_classes(r->model), lp_model_n_classes((*m)->model));
    }
    r->T = (*m)->T;
    r->tau = (*m)->tau;
    r->w_tfidf = (*m)->w_tfidf;
    r->tau_c = (*m)->tau_c;
    lp_log_info("intent: refitted; kept T=%.3f, tau=%.4f%s", r->T, r->tau,
                r->head ? ", the TF-IDF weight and the centroid cosine threshold" : "");
    cs_intent_free(*m);
    *m = r;
    return LP_OK;
}

lp_status cs_intent_train(const char *const *texts, const char *const *labels, size_t n,
                          const char *const *vtexts, const char *const *vlabels, size_t nv,
                          const cs_intent_opts *opts, cs_intent **out, lp_err *err)
{
    cs_intent_opts o = opts ? *opts : cs_intent_opts_default();
    *out = NULL;
    if (n < 2)
        return lp_err_set(err, LP_EINVAL, "intent data: %zu rows, need at least 2", n);
    for (size_t i = 0; i < n; i++)
        if (!texts[i] || !labels[i] || !labels[i][0])
            return lp_err_set(err, LP_EINVAL, "intent data row %zu: empty text or label", i + 1);
    const char **tt = NULL, **tl = NULL, **vt = NULL, **vl = NULL;
    uint8_t *isv = NULL;
    size_t nt = n;
    lp_status st = LP_OK;
    if (!vtexts || nv == 0) {
        isv = lp_calloc(n, 1);
        tt = lp_mallocarray(n, sizeof(char *));
        tl = lp_mallocarray(n, sizeof(char *));
        vt = lp_mallocarray(n, sizeof(char *));
        vl = lp_mallocarray(n, sizeof(char *));
        if (!isv || !tt || !tl || !vt || !vl) {
            st = lp_err_set(err, LP_ENOMEM, "intent data: out of memory");
            goto done;
        }
        if ((st = strat_split(labels, n, o.valid_frac, o.seed, isv, err)) != LP_OK)
            goto done;
        nt = nv = 0;
        for (size_t i = 0; i < n; i++) {
            if (isv[i]) {
                vt[nv] = texts[i];
                vl[nv++] = labels[i];
            } else {
                tt[nt] = texts[i];
                tl[nt++] = labels[i];
            }
        }
        if (nv == 0) {
            st = lp_err_set(err, LP_EINVAL,
                            "intent data: too few rows per intent to hold out "
                            "a validation split (give --valid)");
            goto done;
        }
    }
    const char *const *T = tt ? tt : texts, *const *L = tl ? tl : labels;
    const char *const *VT = vt ? vt : vtexts, *const *VL = vl ? vl : vlabels;

    lp_frame *ftr = NULL, *fva = NULL;
    lp_pipeline *pipe = NULL;
    lp_model *best = NULL;
    static const double c_default[] = {10};
    const double *grid = o.c_grid && o.n_c ? o.c_grid : c_default;
    size_t ng = o.c_grid && o.n_c ? o.n_c : 1;
    /* validation labels never seen in training cannot be predicted: keep them out of the
     * validation frame given to lp_model_train (it rejects unknown labels) */
    size_t nvk = 0, *vkidx = lp_mallocarray(nv, sizeof(size_t));
    const char **vtk = lp_mallocarray(nv, sizeof(char *)),
               **vlk = lp_mallocarray(nv, sizeof(char *));
    if (!vtk || !vlk || !vkidx) {
        free(vtk);
        free(vlk);
        free(vkidx);
        st = lp_err_set(err, LP_ENOMEM, "intent data: out of memory");
        goto done;
    }
    for (size_t i = 0; i < nv; i++) {
        bool seen = false;
        for (size_t j = 0; j < nt && !seen; j++)
            seen = !strcmp(L[j], VL[i]);
        if (seen) {
            vkidx[nvk] = i;
            vtk[nvk] = VT[i];
            vlk[nvk++] = VL[i];
        }
    }
    if ((st = make_frame(T, L, nt, &ftr, err)) != LP_OK ||
        (nvk && (st = make_frame(vtk, vlk, nvk, &fva, err)) != LP_OK) ||
        (st = make_pipeline(o.char_ngrams, &pipe, err)) != LP_OK)
        goto fit_done;
    tfidf_job job = {.ftr = ftr, .fva = fva, .pipe = pipe, .grid = grid, .ng = ng, .o = &o,
                     .vlk = vlk, .nvk = nvk};
    lp_err_clear(&job.err);
    bool overlap = o.encoder && !(o.finetune && strcmp(o.finetune, "head"));
    if (overlap) /* the other core runs the encoder */
        job.threads = 1;
    enc_side es = {0};
    st = overlap ? fit_overlapped(&job, &o, T, L, nt, VT, nv, &es, err) : fit_tfidf(&job);
    if (!overlap && st != LP_OK && err)
        *err = job.err;
    best = job.best;
    double c_best = job.best_c;
    if (st != LP_OK) {
        lp_encoder_free(es.enc);
        eh_head_free(es.head);
        free(es.cache);
        goto fit_done;
    }
    cs_intent *m = lp_calloc(1, sizeof(*m));
    if (!m || !(m->oos_label = lp_strdup(o.oos_label))) {
        free(m);
        lp_encoder_free(es.enc);
        eh_head_free(es.head);
        free(es.cache);
        st = lp_err_set(err, LP_ENOMEM, "intent: out of memory");
        goto fit_done;
    }
    m->model = best;
    best = NULL;
    m->oos = class_index(m->model, o.oos_label);
    m->T = 1;
    m->protocol_train = m->oos >= 0;
    m->w_tfidf = 0.5;
    if (overlap) {
        m->enc = es.enc;
        m->ident = es.ident;
        m->head = es.head;
        m->cache = es.cache;
        m->cache_texts = VT;
        m->cache_n = nv;
    } else if (o.encoder && (st = fit_encoder(m, &o, T, L, nt, VT, nv, err)) != LP_OK) {
        cs_intent_free(m);
        goto fit_done;
    }
    /* temperature on validation logits */
    if (nvk) {
        lp_predictions pr = {0};
        int32_t *y = lp_mallocarray(nvk, sizeof(int32_t));
        if (!y || (st = lp_model_predict(m->model, fva, &pr, err)) != LP_OK) {
            if (!y)
                st = lp_err_set(err, LP_ENOMEM, "intent: out of memory");
            free(y);
            cs_intent_free(m);
            goto fit_done;
        }
        for (size_t i = 0; i < nvk; i++)
            y[i] = (int32_t)class_index(m->model, vlk[i]);
        for (size_t i = 0; i < nvk * pr.k; i++)
            pr.out[i] = log(pr.out[i] > 1e-300 ? pr.out[i] : 1e-300);
        lp_calibrator *cal = NULL;
        if (m->head)
            st = mix_validation(m, &pr, vkidx, vlk, nvk, o.oos_label, err);
        if (st == LP_OK)
            st = lp_calibrator_fit_temperature(pr.out, y, nvk, pr.k, &cal, err);
        free(y);
        lp_predictions_clear(&pr);
        if (st != LP_OK) {
            cs_intent_free(m);
            goto fit_done;
        }
        lp_calibrator_params(cal, &m->T, NULL);
        lp_calibrator_free(cal);
        /* a separable validation set drives T to 0 (every probability 1), which would make
         * confidences meaningless for the OOS threshold: keep T within a sane range */
        m->T = m->T < CS_T_MIN ? CS_T_MIN : m->T > CS_T_MAX ? CS_T_MAX : m->T;
    }
    double max_loss = o.oos_max_loss >= 0 ? o.oos_max_loss : o.encoder ? 0.01 : 0.02;
    if ((st = fit_threshold(m, VT, VL, nv, max_loss, o.target_in_recall, err)) != LP_OK) {
        cs_intent_free(m);
        goto fit_done;
    }
    /* the monitor's drift reference: the validation answers of the finished model */
    if ((st = cs_monitor_fit_reference(m, VT, nv, err)) != LP_OK) {
        cs_intent_free(m);
        goto fit_done;
    }
    lp_log_info("intent: %zu classes, protocol %s, T=%.3f, tau=%.4f%s", cs_intent_n_classes(m),
                cs_intent_protocol(m), cs_intent_temperature(m), m->tau,
                m->head ? " (+ encoder)" : "");
    if (m->head)
        lp_log_info("intent: encoder %s, TF-IDF weight %.1f, centroid cosine threshold %.4f",
                    m->ident.path, m->w_tfidf, m->tau_c);
    free(m->cache);
    m->cache = NULL;
    m->cache_texts = NULL;
    m->cache_n = 0;
    prepare_predictor(m);
    bool do_refit = o.refit > 0 || (o.refit < 0 && isv);
    if (do_refit && !nvk)
        lp_log_warn("intent: refit skipped: no validation row has an intent of the training "
                    "data");
    if (do_refit && nvk && (st = refit(&m, &o, c_best, T, L, nt, VT, VL, nv, vkidx, nvk, err)) !=
                               LP_OK) {
        cs_intent_free(m);
        goto fit_done;
    }
    *out = m;
fit_done:
    lp_model_free(best);
    lp_pipeline_free(pipe);
    lp_frame_free(ftr);
    lp_frame_free(fva);
    free(vtk);
    free(vlk);
    free(vkidx);
done:
    free(isv);
    free(tt);
    free(tl);
    free(vt);
    free(vl);
    return st;
}

/* ---- tenant adapters -------------------------------------------------------------------- */
cs_tenant_opts cs_tenant_opts_default(void)
{
    return (cs_tenant_opts){.rank = 8, .epochs = 40, .lr = 0, .seed = 42};
}

lp_status cs_tenant_train(const cs_intent *m, const char *const *texts,
                          const char *const *labels, size_t n, const cs_tenant_opts *opts,
                          lp_lora **out, lp_finetune_stats *stats, lp_err *err)
{
    *out = NULL;
    cs_tenant_opts o = opts ? *opts : cs_tenant_opts_default();
    if (m->head)
        return lp_err_set(err, LP_EUNSUPPORTED, "tenant adapters: not available yet for models "
                          "trained with --encoder (train the base without it)");
    if (n < 1)
        return lp_err_set(err, LP_EINVAL, "tenant data: no rows");
    for (size_t i = 0; i < n; i++) {
        if (!texts[i] || !labels[i] || !labels[i][0])
            return lp_err_set(err, LP_EINVAL, "tenant data row %zu: empty text or label", i + 1);
        if (m->oos < 0 && !strcmp(labels[i], m->oos_label))
            return lp_err_set(err, LP_EINVAL, "tenant data row %zu: label '%s' is the "
                              "out-of-scope label, which this base detects by threshold, not "
                              "as a class: leave those rows out", i + 1, labels[i]);
    }
    lp_finetune_opts fo = lp_finetune_opts_default();
    fo.rank = o.rank;
    fo.epochs = o.epochs;
    fo.lr = o.lr;
    fo.seed = o.seed;
    fo.label = COL_LABEL;
    fo.new_classes = true;
    fo.input_support = true; /* A over the tenant's own words only (see the file comment) */
    lp_frame *f;
    lp_status st = make_frame(texts, labels, n, &f, err);
    if (st == LP_OK)
        st = lp_lora_train(m->model, f, &fo, out, stats, err);
    lp_frame_free(f);
    return st;
}

lp_status cs_tenant_load(const cs_intent *m, const char *path, lp_lora **out, lp_err *err)
{
    *out = NULL;
    if (m->head)
        return lp_err_set(err, LP_EUNSUPPORTED, "%s: tenant adapters are not available yet for "
                          "models trained with --encoder", path);
    return lp_lora_load(m->model, path, out, err);
}

/* ---- save / load ------------------------------------------------------------------------ */
static lp_status attach(cs_intent *m, lp_err *err)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "oos_label", m->oos_label);
    cJSON_AddNumberToObject(j, "tau", m->tau);
    cJSON_AddNumberToObject(j, "temperature", m->T);
    cJSON_AddBoolToObject(j, "oos_in_train", m->protocol_train);
    if (m->head) {
        cJSON *e = cJSON_AddObjectToObject(j, "encoder");
        eh_settings_add(e, &m->ident, m->w_tfidf, m->tau_c);
        cJSON_AddStringToObject(e, "finetune", m->adapter ? lp_encoder_ft_method_name(
                                                                lp_encoder_adapter_method(m->adapter))
                                                          : "head");
    }
    char *s = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!s)
        return lp_err_set(err, LP_ENOMEM, "intent: out of memory");
    lp_status st = lp_model_set_extra(m->model, EXTRA_SETTINGS, s, strlen(s), err);
    free(s);
    /* binary sections: the encoder head, then the fine-tuned adapter */
    for (int part = 0; st == LP_OK && part < 2; part++) {
        if (part == 0 ? !m->head : !m->adapter)
            continue;
        lp_buf b;
        lp_buf_init(&b);
        if (part == 0)
            eh_head_save(m->head, &b);
        else
            lp_encoder_adapter_save_buf(m->adapter, &b);
        if ((st = lp_buf_status(&b, err)) == LP_OK)
            st = lp_model_set_extra(m->model, part == 0 ? EXTRA_HEAD : EXTRA_ADAPTER, b.data,
                                    b.len, err);
        lp_buf_free(&b);
    }
    return st;
}

lp_status cs_intent_save(cs_intent *m, const char *path, lp_err *err)
{
    lp_status st = attach(m, err);
    return st != LP_OK ? st : lp_model_save(m->model, path, err);
}

/* The encoder part of a saved model: settings e (section cs.intent's "encoder"), the head
 * section, the recorded encoder file, refused when its sha256 differs, and for a fine-tuned
 * model its adapter section (checked against that encoder). */
static lp_status load_encoder(cs_intent *m, const char *path, const cJSON *e, lp_err *err)
{
    lp_status st = eh_settings_parse(e, path, &m->ident, &m->w_tfidf, &m->tau_c, err);
    const void *data;
    size_t len;
    if (st != LP_OK || (st = lp_model_get_extra(m->model, EXTRA_HEAD, &data, &len, err)) != LP_OK)
        return st;
    lp_reader r;
    lp_reader_init(&r, data, len, "section cs.enchead");
    if ((st = eh_head_load(&r, &m->head, err)) != LP_OK)
        return st;
    if (eh_head_dim(m->head) != m->ident.dim ||
        eh_head_classes(m->head) != lp_model_n_classes(m->model))
        return lp_err_set(err, LP_EFORMAT, "%s: section cs.enchead: %zu x %zu does not fit %zu "
                          "classes x %zu dims", path, eh_head_classes(m->head),
                          eh_head_dim(m->head), lp_model_n_classes(m->model), m->ident.dim);
    if ((st = eh_encoder_open(m->ident.path, &m->ident, path, NULL, &m->enc, NULL, err)) != LP_OK)
        return st;
    const cJSON *ft = cJSON_GetObjectItemCaseSensitive(e, "finetune");
    if (!cJSON_IsString(ft) || !strcmp(ft->valuestring, "head"))
        return LP_OK;
    if (strcmp(ft->valuestring, "lora") && strcmp(ft->valuestring, "full"))
        return lp_err_set(err, LP_EFORMAT, "%s: section cs.intent: finetune '%.20s' is not head, "
                          "lora or full", path, ft->valuestring);
    if ((st = lp_model_get_extra(m->model, EXTRA_ADAPTER, &data, &len, err)) != LP_OK)
        return st;
    char what[4200];
    snprintf(what, sizeof what, "%s: section %s", path, EXTRA_ADAPTER);
    if ((st = lp_encoder_adapter_load_mem(data, len, what, m->enc, &m->adapter, err)) != LP_OK)
        return st;
    return lp_encoder_adapter_merge(m->adapter, m->enc, &m->tuned, err);
}

lp_status cs_intent_load(const char *path, cs_intent **out, lp_err *err)
{
    *out = NULL;
    cs_intent *m = lp_calloc(1, sizeof(*m));
    if (!m)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
    lp_status st = lp_model_load(path, &m->model, err);
    bool loaded = st == LP_OK; /* a file that cannot be read is not called another model */
    const void *d;
    size_t len;
    if (loaded && (st = lp_model_get_extra(m->model, EXTRA_SETTINGS, &d, &len, err)) == LP_OK) {
        cJSON *j = cJSON_ParseWithLength(d, len);
        const cJSON *ol = cJSON_GetObjectItemCaseSensitive(j, "oos_label");
        const cJSON *tau = cJSON_GetObjectItemCaseSensitive(j, "tau");
        const cJSON *T = cJSON_GetObjectItemCaseSensitive(j, "temperature");
        if (!cJSON_IsString(ol) || !cJSON_IsNumber(tau) || !(tau->valuedouble >= 0) ||
            !(tau->valuedouble <= 1) || !cJSON_IsNumber(T) || !(T->valuedouble >= CS_T_MIN) ||
            !(T->valuedouble <= CS_T_MAX))
            st = lp_err_set(err, LP_EFORMAT, "%s: section cs.intent: bad settings", path);
        else if (!(m->oos_label = lp_strdup(ol->valuestring)))
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
        else {
            m->tau = tau->valuedouble;
            m->T = T->valuedouble;
            m->oos = class_index(m->model, m->oos_label);
            m->protocol_train = m->oos >= 0;
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "encoder");
            if (e)
                st = load_encoder(m, path, e, err);
        }
        cJSON_Delete(j);
    } else if (loaded && st == LP_ENOTFOUND) { /* a model, but without our section */
        st = lp_err_set(err, LP_EFORMAT, "%s is not a customer-service model: %s", path,
                        lp_err_text(err));
    }
    if (st != LP_OK) {
        cs_intent_free(m);
        return st;
    }
    prepare_predictor(m);
    *out = m;
    return LP_OK;
}

/* ---- evaluation ------------------------------------------------------------------------- */
lp_status cs_intent_evaluate(const cs_intent *m, const char *const *texts,
                             const char *const *labels, size_t n, cs_intent_eval *e, lp_err *err)
{
    return cs_intent_evaluate_with(m, NULL, texts, labels, n, e, err);
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static long class_index_with(const cs_intent *m, const lp_lora *a, const char *label)
{
    if (!a)
        return class_index(m->model, label);
    for (size_t c = 0; c < lp_lora_n_classes(a); c++)
        if (!strcmp(lp_lora_class(a, c), label))
            return (long)c;
    return -1;
}

lp_status cs_intent_evaluate_with(const cs_intent *m, const lp_lora *a,
                                  const char *const *texts, const char *const *labels, size_t n,
                                  cs_intent_eval *e, lp_err *err)
{
    memset(e, 0, sizeof(*e));
    e->n = n;
    cs_intent_result *r = lp_mallocarray(n ? n : 1, sizeof(*r));
    if (!r)
        return lp_err_set(err, LP_ENOMEM, "evaluate: out of memory");
    lp_status st = cs_intent_predict_with(m, a, texts, n, r, err);
    if (st != LP_OK) {
        free(r);
        return st;
    }
    size_t in_ok = 0, oos_tp = 0, rej = 0;
    /* labels for macro F1: the model's classes plus OOS; unknown gold labels count as errors */
    size_t k = a ? lp_lora_n_classes(a) : lp_model_n_classes(m->model);
    size_t *tp = lp_calloc(k + 1, sizeof(size_t)), *fp = lp_calloc(k + 1, sizeof(size_t)),
           *fn = lp_calloc(k + 1, sizeof(size_t));
    if (!tp || !fp || !fn) {
        free(r);
        free(tp);
        free(fp);
        free(fn);
        return lp_err_set(err, LP_ENOMEM, "evaluate: out of memory");
    }
    size_t oos_slot = m->oos >= 0 ? (size_t)m->oos : k, n_unknown = 0;
    const char *unknown = NULL;
    const char **unk = lp_mallocarray(n ? n : 1, sizeof *unk); /* unknown gold labels */
    if (!unk) {
        free(r);
        free(tp);
        free(fp);
        free(fn);
        return lp_err_set(err, LP_ENOMEM, "evaluate: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        bool gold_oos = !strcmp(labels[i], m->oos_label);
        long g = gold_oos ? (long)oos_slot : class_index_with(m, a, labels[i]);
        if (g < 0)
            unk[n_unknown] = labels[i];
        if (g < 0 && !n_unknown++)
            unknown = labels[i];
        long p = r[i].out_of_scope ? (long)oos_slot : class_index_with(m, a, r[i].intent);
        if (gold_oos) {
            e->n_oos++;
            oos_tp += r[i].out_of_scope;
        } else {
            e->n_in++;
            in_ok += !r[i].out_of_scope && !strcmp(r[i].intent, labels[i]);
        }
        rej += r[i].out_of_scope;
        if (g >= 0 && g == p) {
            tp[g]++;
        } else {
            if (g >= 0)
                fn[g]++;
            if (p >= 0)
                fp[p]++;
        }
    }
    if (n_unknown)
        lp_log_warn("evaluate: %zu of %zu rows have a label the model was not trained on (the "
                    "first: '%s'); they count as errors", n_unknown, n, unknown);
    e->in_scope_accuracy = e->n_in ? (double)in_ok / (double)e->n_in : NAN;
    e->oos_recall = e->n_oos ? (double)oos_tp / (double)e->n_oos : NAN;
    e->oos_precision = e->n_oos ? (rej ? (double)oos_tp / (double)rej : 0) : NAN;
    double f1s = 0;
    size_t nl = 0;
    for (size_t c = 0; c <= k; c++) {
        if (tp[c] + fn[c] == 0)
            continue; /* only labels present in the data */
        nl++;
        f1s += 2.0 * (double)tp[c] / (double)(2 * tp[c] + fp[c] + fn[c]);
    }
    /* each distinct label the model does not know is a class of the data it never finds: F1 0 */
    qsort(unk, n_unknown, sizeof *unk, cmp_cstr);
    for (size_t i = 0; i < n_unknown; i++)
        nl += i == 0 || strcmp(unk[i], unk[i - 1]) != 0;
    free(unk);
    e->macro_f1 = nl ? f1s / (double)nl : NAN;
    free(tp);
    free(fp);
    free(fn);
    free(r);
    return LP_OK;
}
