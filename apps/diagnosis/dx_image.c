/*
 * dx_image.c - the image model of lepton-diagnosis (dx.h): a CNN from the nn family trained
 * with an exponential moving average of its weights, keeping the last epoch's average
 * (optionally mixup, off by default: it lowered validation AUROC), test-time augmentation (the
 * image and up to 8 one-pixel shifts of it, their softmax probabilities averaged), a
 * temperature fitted on the likelihood of those averaged validation probabilities (Guo et al.
 * 2017), an out-of-distribution score on the penultimate features of the image itself,
 * integrated gradients (of the image itself, not of the views), evaluation, and the .lpm model
 * file.
 *
 * OOD score: d(f) = sqrt(mean_j (f_j - mu_j)^2 / var_j), a diagonal Mahalanobis distance of
 * the penultimate features f to the training features (mu, var per feature, var floored at
 * 1e-3 of the mean variance so dead units do not dominate); the threshold is the
 * ood_quantile of the validation distances. A row abstains when its distance exceeds it ("input
 * unlike the training images") or its calibrated top probability is below abstain_p. Before
 * the distance, a pixel gate: an image whose pixel mean or spread lies outside the training
 * images' range (0.1% to 99.9% quantiles, widened by a quarter of their span; the spread's lower
 * bound at least half its quantile) abstains too, as unlike the training images (blank,
 * saturated, noise, another kind of picture).
 *
 * Model file sections: header JSON (classes, shape, temperature, thresholds, the model card;
 * "dx.format" 2 adds "dx.tta", the view count; a file without "format" is format 1 and is read
 * as one view; a newer format is refused with LP_EVERSION),
 * "dx.nn" (lp_nn_save), "dx.ood" (f32: mu (F), var (F)), "dx.pix" (f32: the pixel gate's
 * accepted ranges of an input's pixel mean and spread; optional), and "dx.drift"
 * (lp_drift_save: the monitor's reference, top probability and OOD distance of the validation
 * rows; optional, as models saved before it have none). "dx.class_prior" (optional, absent
 * before it existed) is the class mix the probabilities are calibrated to: the validation
 * split's, each count + 0.5.
 *
 * Prevalence (label shift): a site whose patients have another class mix than the training
 * data sets it (dx_image_model_set_prevalence); predictions are then re-weighted from the
 * calibrated mix to that one (Saerens, Latinne & Decaestecker 2002; lp_prior_shift_apply)
 * before ranking and the low-confidence abstention.
 */
#include "dx.h"
#include "model/nn.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        lp_status st_ = (expr);                                                                    \
        if (st_ != LP_OK)                                                                          \
            return st_;                                                                            \
    } while (0)

struct dx_image_model {
    lp_nn *net;
    size_t c, h, w, d, k, F;
    char **classes;
    double T, abstain_p, ood_thr;
    float *mu, *var; /* (F) */
    char version[32];
    char *card;
    lp_drift *drift; /* validation top probability and OOD distance, or NULL */
    int tta;         /* test-time views averaged in probability space (1 = the image alone) */
    double *prior;   /* (k) class mix the probabilities are calibrated to, or NULL (old file) */
    double *target;  /* (k) class mix to predict at (set_prevalence), or NULL: the calibrated */
    /* accepted range of an input's pixel mean and standard deviation (lo, hi, lo, hi): the
     * training images' 0.1% and 99.9% quantiles, widened by a quarter of their span; has_pix
     * false for files saved before it ("dx.pix" absent) */
    float pix[4];
    bool has_pix;
};

/* Mean and standard deviation of one input's d values. */
static void pix_stats(const float *x, size_t d, double *mean, double *sd)
{
    double s = 0, s2 = 0;
    for (size_t j = 0; j < d; j++)
        s += x[j];
    double mu = d ? s / (double)d : 0;
    for (size_t j = 0; j < d; j++)
        s2 += (x[j] - mu) * (x[j] - mu);
    *mean = mu;
    *sd = d ? sqrt(s2 / (double)d) : 0;
}

/* The pixel gate: a reason in buf (and true) when input x is outside the training images'
 * range of pixel mean or spread: a blank, saturated or noise image, or another kind of picture,
 * which the feature distance of a small network does not always catch. */
static bool pix_outside(const dx_image_model *m, const float *x, char *buf, size_t cap)
{
    if (!m->has_pix)
        return false;
    double mu, sd;
    pix_stats(x, m->d, &mu, &sd);
    if (mu < m->pix[0] || mu > m->pix[1]) {
        snprintf(buf, cap, "input unlike the training images (pixel mean %.3f outside [%.3f, "
                 "%.3f])", mu, m->pix[0], m->pix[1]);
        return true;
    }
    if (sd < m->pix[2] || sd > m->pix[3]) {
        snprintf(buf, cap, "input unlike the training images (pixel spread %.3f outside [%.3f, "
                 "%.3f])", sd, m->pix[2], m->pix[3]);
        return true;
    }
    return false;
}

/* Version of the "dx" header of an image model file. 1: no "format" field (one view);
 * 2: "format" and "tta" (the views averaged at prediction). */
#define DX_IMAGE_FORMAT 2

/* Optimizer steps an epoch a small training set still gets (see dx_image_train). */
#define DX_MIN_STEPS 32

/* The default training budget: DX_EPOCHS epochs, or on a training set too large for that,
 * about DX_PASSES image passes (a larger set needs fewer passes over it: Fashion-MNIST's 54,000
 * training images take 3 epochs, about 4 minutes on 2 cores, where 12 took 16). */
#define DX_EPOCHS 12
#define DX_PASSES 120000
#define DX_EPOCHS_MIN 3

int dx_image_epochs(const dx_train_opts *o, size_t n_train)
{
    if (o->epochs > 0)
        return o->epochs;
    if (n_train * DX_EPOCHS <= DX_PASSES)
        return DX_EPOCHS;
    long e = lround((double)DX_PASSES / (double)n_train);
    return e < DX_EPOCHS_MIN ? DX_EPOCHS_MIN : (int)e;
}

dx_train_opts dx_train_opts_default(void)
{
    dx_train_opts o;
    memset(&o, 0, sizeof o);
    o.arch = "conv32bn,pool,conv64bn,pool,conv128bn,pool,fc128";
    o.augment = "shift=2,rotate=10,brightness=0.1";
    o.epochs = 0;
    o.batch_size = 64;
    o.lr = 2e-3;
    o.weight_decay = 1e-4;
    o.valid_frac = 0.1;
    o.abstain_p = 0.6;
    o.ood_quantile = 0.99;
    o.seed = 42;
    o.text_c = 0;
    o.text_refit = true;
    o.text_ngram_max = 1;
    o.ema_decay = 0.995;
    o.keep_last = true;
    o.tta = 5;
    return o;
}

void dx_image_model_free(dx_image_model *m)
{
    if (!m)
        return;
    lp_nn_free(m->net);
    for (size_t j = 0; m->classes && j < m->k; j++)
        free(m->classes[j]);
    free(m->classes);
    free(m->mu);
    free(m->var);
    free(m->card);
    lp_drift_free(m->drift);
    free(m->prior);
    free(m->target);
    free(m);
}

size_t dx_image_model_classes(const dx_image_model *m)
{
    return m->k;
}
const char *dx_image_model_class(const dx_image_model *m, size_t j)
{
    return j < m->k ? m->classes[j] : NULL;
}
void dx_image_model_shape(const dx_image_model *m, size_t *c, size_t *h, size_t *w)
{
    *c = m->c, *h = m->h, *w = m->w;
}
const char *dx_image_model_version(const dx_image_model *m)
{
    return m->version;
}
int dx_image_model_epochs(const dx_image_model *m)
{
    return lp_nn_opts_of(m->net)->epochs;
}
const char *dx_image_model_card(const dx_image_model *m)
{
    return m->card;
}
double dx_temperature_clamp(double T)
{
    if (!isfinite(T) || !(T > 0))
        return 1.0;
    return fmin(fmax(T, DX_T_MIN), DX_T_MAX);
}

double dx_image_model_abstain_p(const dx_image_model *m)
{
    return m->abstain_p;
}

void dx_answer_rank(dx_answer *a)
{
    for (size_t j = 0; j < a->k; j++)
        a->order[j] = j;
    for (size_t j = 1; j < a->k; j++) /* insertion sort, descending, stable */
        for (size_t t = j; t > 0 && a->probs[a->order[t]] > a->probs[a->order[t - 1]]; t--) {
            size_t tmp = a->order[t];
            a->order[t] = a->order[t - 1];
            a->order[t - 1] = tmp;
        }
}

/* OOD distances of n feature rows f (n, F). */
static void ood_dist(const dx_image_model *m, const float *f, size_t n, double *out)
{
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (size_t j = 0; j < m->F; j++) {
            double z = f[i * m->F + j] - m->mu[j];
            s += z * z / m->var[j];
        }
        out[i] = sqrt(s / (double)m->F);
    }
}

/* View v (0..DX_TTA_MAX-1) of n images X (n, c, h, w): the image shifted by (dx, dy) of the
 * table below, zero fill where the shift uncovers pixels. (n, c h w) into out. */
static const int tta_shift[DX_TTA_MAX][2] = {{0, 0},  {1, 0},  {-1, 0}, {0, 1},  {0, -1},
                                              {1, 1}, {-1, -1}, {1, -1}, {-1, 1}};

void dx_tta_view(const float *X, size_t n, size_t c, size_t h, size_t w, int v, float *out)
{
    int sx = v > 0 && v < DX_TTA_MAX ? tta_shift[v][0] : 0;
    int sy = v > 0 && v < DX_TTA_MAX ? tta_shift[v][1] : 0;
    for (size_t p = 0; p < n * c; p++) {
        const float *src = X + p * h * w;
        float *dst = out + p * h * w;
        for (size_t i = 0; i < h; i++) {
            long si = (long)i - sy;
            for (size_t j = 0; j < w; j++) {
                long sj = (long)j - sx;
                dst[i * w + j] = si >= 0 && si < (long)h && sj >= 0 && sj < (long)w
                                     ? src[(size_t)si * w + (size_t)sj]
                                     : 0.0f;
            }
        }
    }
}

/* Raw logits of the V views of X (n, d): z (V, n, k). */
static lp_status tta_logits(const dx_image_model *m, const float *X, size_t n, int V, float *z,
                            lp_err *err)
{
    TRY(lp_nn_predict_raw(m->net, X, n, z, err));
    if (V == 1)
        return LP_OK;
    float *xv = lp_mallocarray(n, m->d * sizeof *xv);
    if (!xv)
        return lp_err_set(err, LP_ENOMEM, "dx: out of memory for the test-time views");
    lp_status st = LP_OK;
    for (int v = 1; v < V && !st; v++) {
        dx_tta_view(X, n, m->c, m->h, m->w, v, xv);
        st = lp_nn_predict_raw(m->net, xv, n, z + (size_t)v * n * m->k, err);
    }
    free(xv);
    return st;
}

/* Softmax of z / T for each row of logits (n, k) into probs (double). */
static void softmax_t(const float *z, size_t n, size_t k, double T, double *p)
{
    for (size_t i = 0; i < n; i++) {
        double mx = z[i * k];
        for (size_t j = 1; j < k; j++)
            mx = fmax(mx, z[i * k + j]);
        double s = 0;
        for (size_t j = 0; j < k; j++)
            s += p[i * k + j] = exp((z[i * k + j] - mx) / T);
        for (size_t j = 0; j < k; j++)
            p[i * k + j] /= s;
    }
}

void dx_tta_probs(const float *z, int V, size_t n, size_t k, double T, double *p, double *tmp)
{
    for (size_t i = 0; i < n * k; i++)
        p[i] = 0;
    for (int v = 0; v < V; v++) {
        softmax_t(z + (size_t)v * n * k, n, k, T, tmp);
        for (size_t i = 0; i < n * k; i++)
            p[i] += tmp[i] / V;
    }
}

lp_status dx_image_predict(const dx_image_model *m, const float *X, size_t n, dx_answer *out,
                           lp_err *err)
{
    if (!m || (n && (!X || !out)))
        return lp_err_set(err, LP_EINVAL, "dx predict: NULL argument");
    if (n == 0)
        return LP_OK;
    size_t V = (size_t)m->tta;
    float *z = lp_mallocarray(V * n, m->k * sizeof *z), *f = lp_mallocarray(n, m->F * sizeof *f);
    double *p = lp_mallocarray(n, m->k * sizeof *p), *dist = lp_mallocarray(n, sizeof *dist);
    double *tmp = lp_mallocarray(n, m->k * sizeof *tmp);
    lp_status st = z && f && p && dist && tmp ? LP_OK
                                              : lp_err_set(err, LP_ENOMEM, "dx: out of memory");
    if (!st)
        st = tta_logits(m, X, n, m->tta, z, err);
    if (!st)
        st = lp_nn_features(m->net, X, n, f, err);
    if (!st) {
        dx_tta_probs(z, m->tta, n, m->k, m->T, p, tmp);
        if (m->target)
            st = lp_prior_shift_apply(p, n, m->k, m->prior, m->target, p, err);
        ood_dist(m, f, n, dist);
        for (size_t i = 0; i < n && !st; i++) {
            dx_answer *a = &out[i];
            memset(a, 0, sizeof *a);
            a->k = m->k;
            for (size_t j = 0; j < m->k; j++)
                a->probs[j] = p[i * m->k + j], a->labels[j] = m->classes[j];
            dx_answer_rank(a);
            a->ood = dist[i];
            double top = a->probs[a->order[0]];
            if (pix_outside(m, X + i * m->d, a->reason, sizeof a->reason)) {
                a->abstain = a->out_of_dist = true;
            } else if (dist[i] > m->ood_thr) {
                a->abstain = a->out_of_dist = true;
                snprintf(a->reason, sizeof a->reason,
                         "input unlike the training images (distance %.2f > threshold %.2f)",
                         dist[i], m->ood_thr);
            } else if (top < m->abstain_p) {
                a->abstain = true;
                snprintf(a->reason, sizeof a->reason,
                         "low confidence (top probability %.2f < %.2f)", top, m->abstain_p);
            }
        }
    }
    free(z);
    free(f);
    free(p);
    free(dist);
    free(tmp);
    return st;
}

lp_status dx_auroc(const int32_t *y, const double *p, size_t n, size_t k, double *auroc,
                   size_t *used, char *note, size_t cap, lp_err *err)
{
    *auroc = NAN;
    *used = 0;
    note[0] = '\0';
    /* the rows with a label in [0, k); binary: the one column P(class 1) */
    size_t cols = k == 2 ? 1 : k, m = 0, pos = 0;
    int32_t *yc = lp_mallocarray(n ? n : 1, sizeof *yc);
    double *s = lp_mallocarray(n ? n : 1, cols * sizeof *s);
    if (!yc || !s) {
        free(yc);
        free(s);
        return lp_err_set(err, LP_ENOMEM, "dx auroc: out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        if (y[i] < 0 || (size_t)y[i] >= k)
            continue;
        yc[m] = k == 2 ? y[i] == 1 : y[i];
        pos += yc[m] == 1;
        memcpy(s + m * cols, p + i * k + (k == 2), cols * sizeof *s);
        m++;
    }
    lp_err e2 = {0};
    lp_status st;
    if (k == 2 && (pos == 0 || pos == m)) {
        st = LP_OK;
        snprintf(note, cap, "one class present in the labels: AUROC needs positives and "
                 "negatives");
    } else if (k == 2) {
        st = lp_metrics_auroc(yc, s, m, auroc, &e2);
        *used = st ? 0 : 2;
    } else {
        st = lp_metrics_auroc_ovr_present(yc, s, m, k, auroc, used, &e2);
        if (!st && *used == 0)
            snprintf(note, cap, "one class present in the labels: AUROC needs positives and "
                     "negatives");
        else if (!st && *used < k)
            snprintf(note, cap, "macro one-vs-rest over the %zu classes present; %zu of the "
                     "model's classes have no row", *used, k - *used);
    }
    free(yc);
    free(s);
    if (st == LP_ENOMEM)
        return lp_err_set(err, LP_ENOMEM, "dx auroc: out of memory");
    if (st) /* NaN scores or no rows: reported, not fatal to the evaluation */
        snprintf(note, cap, "AUROC undefined: %s", e2.msg);
    return LP_OK;
}

lp_status dx_eval_answers(const dx_answer *a, const int32_t *y, size_t n, size_t k,
                          dx_eval *out, lp_err *err)
{
    if (!a || !y || !out || n == 0 || k < 2 || k > DX_MAX_CLASSES)
        return lp_err_set(err, LP_EINVAL, "dx eval: no rows");
    memset(out, 0, sizeof *out);
    out->n = n;
    double *p = lp_mallocarray(n, k * sizeof *p);
    int32_t *pred = lp_mallocarray(n, sizeof *pred);
    lp_status st = p && pred ? LP_OK : lp_err_set(err, LP_ENOMEM, "dx: out of memory");
    size_t top3 = 0;
    for (size_t i = 0; i < n && !st; i++) {
        if (y[i] < 0 || (size_t)y[i] >= k) {
            st = lp_err_set(err, LP_EINVAL, "dx eval: row %zu: label %d not in [0, %zu)", i, y[i],
                            k);
            break;
        }
        for (size_t j = 0; j < k; j++)
            p[i * k + j] = a[i].probs[j];
        pred[i] = (int32_t)a[i].order[0];
        for (size_t t = 0; t < 3 && t < k; t++)
            top3 += a[i].order[t] == (size_t)y[i];
        out->abstained += a[i].abstain;
    }
    if (!st)
        st = lp_metrics_accuracy(y, pred, n, &out->accuracy, err);
    if (!st)
        st = lp_metrics_prf_average(y, pred, n, k, LP_AVERAGE_MACRO, NULL, NULL, &out->macro_f1,
                                    err);
    if (!st)
        st = dx_auroc(y, p, n, k, &out->auroc, &out->auroc_classes, out->auroc_note,
                      sizeof out->auroc_note, err);
    if (!st)
        st = lp_metrics_ece(y, p, n, k, LP_METRICS_ECE_BINS_DEFAULT, &out->ece, err);
    out->top3_accuracy = (double)top3 / (double)n;
    free(p);
    free(pred);
    return st;
}

lp_status dx_image_eval(const dx_image_model *m, const float *X, const int32_t *y, size_t n,
                        dx_eval *out, lp_err *err)
{
    if (!m || !X || !y || !out || n == 0)
        return lp_err_set(err, LP_EINVAL, "dx eval: no rows");
    dx_answer *a = lp_mallocarray(n, sizeof *a);
    lp_status st = a ? LP_OK : lp_err_set(err, LP_ENOMEM, "dx: out of memory");
    if (!st)
        st = dx_image_predict(m, X, n, a, err);
    if (!st)
        st = dx_eval_answers(a, y, n, m->k, out, err);
    free(a);
    return st;
}

/* ECE of the view-averaged softmax(z / T) against y; p, tmp (n, k) scratch. */
double dx_tta_ece(const float *z, int V, const int32_t *y, size_t n, size_t k, double T,
                  double *p, double *tmp)
{
    double e = NAN;
    dx_tta_probs(z, V, n, k, T, p, tmp);
    lp_metrics_ece(y, p, n, k, LP_METRICS_ECE_BINS_DEFAULT, &e, NULL);
    return e;
}

/* Mean negative log-likelihood of y under the view-averaged softmax(z / T). */
static double tta_nll(const float *z, int V, const int32_t *y, size_t n, size_t k, double T,
                      double *p, double *tmp)
{
    dx_tta_probs(z, V, n, k, T, p, tmp);
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s -= log(fmax(p[i * k + (size_t)y[i]], 1e-300));
    return s / (double)n;
}

lp_status dx_fit_temperature(const float *z, int V, const int32_t *y, size_t n, size_t k,
                             double *T, double *nll, lp_err *err)
{
    if (!z || !y || !T || n == 0 || k < 2 || V < 1 || V > DX_TTA_MAX)
        return lp_err_set(err, LP_EINVAL, "dx temperature: no validation rows");
    double *p = lp_mallocarray(n, k * sizeof *p), *tmp = lp_mallocarray(n, k * sizeof *tmp);
    if (!p || !tmp) {
        free(p);
        free(tmp);
        return lp_err_set(err, LP_ENOMEM, "dx temperature: out of memory");
    }
    /* a grid over log T, then golden-section search inside the best cell's neighbours */
    enum { G = 41 };
    double lo = log(DX_T_MIN), hi = log(DX_T_MAX), h = (hi - lo) / (G - 1), best = INFINITY;
    size_t bi = 0;
    for (size_t i = 0; i < G; i++) {
        double v = tta_nll(z, V, y, n, k, exp(lo + h * (double)i), p, tmp);
        if (v < best)
            best = v, bi = i;
    }
    double a = lo + h * (double)(bi > 0 ? bi - 1 : 0);
    double b = lo + h * (double)(bi + 1 < G ? bi + 1 : bi);
    const double r = 0.6180339887498949;
    double c = b - r * (b - a), d = a + r * (b - a);
    double fc = tta_nll(z, V, y, n, k, exp(c), p, tmp), fd = tta_nll(z, V, y, n, k, exp(d), p, tmp);
    for (int it = 0; it < 40; it++) {
        if (fc < fd) {
            b = d, d = c, fd = fc;
            c = b - r * (b - a);
            fc = tta_nll(z, V, y, n, k, exp(c), p, tmp);
        } else {
            a = c, c = d, fc = fd;
            d = a + r * (b - a);
            fd = tta_nll(z, V, y, n, k, exp(d), p, tmp);
        }
    }
    double x = 0.5 * (a + b), fx = tta_nll(z, V, y, n, k, exp(x), p, tmp);
    *T = fx <= best ? exp(x) : exp(lo + h * (double)bi);
    if (nll)
        *nll = fx <= best ? fx : best;
    free(p);
    free(tmp);
    return LP_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The card: training summary, validation metrics, calibration, intended use, limits. */
static lp_status build_card(dx_image_model *m, size_t n_train, size_t n_valid,
                            const dx_eval *ev, double ece_before, const dx_train_opts *o,
                            lp_err *err)
{
    cJSON *c = cJSON_CreateObject();
    cJSON *data = cJSON_AddObjectToObject(c, "training_data");
    cJSON_AddNumberToObject(data, "train_rows", (double)n_train);
    cJSON_AddNumberToObject(data, "valid_rows", (double)n_valid);
    char shape[64];
    snprintf(shape, sizeof shape, "%zux%zux%zu", m->c, m->h, m->w);
    cJSON_AddStringToObject(data, "input_shape", shape);
    cJSON *cls = cJSON_AddArrayToObject(data, "classes");
    for (size_t j = 0; j < m->k; j++)
        cJSON_AddItemToArray(cls, cJSON_CreateString(m->classes[j]));
    cJSON *arch = cJSON_AddObjectToObject(c, "model");
    cJSON_AddStringToObject(arch, "family", "nn (CNN)");
    cJSON_AddStringToObject(arch, "arch", lp_nn_opts_of(m->net)->arch);
    cJSON_AddNumberToObject(arch, "epochs", lp_nn_opts_of(m->net)->epochs);
    cJSON_AddNumberToObject(arch, "batch_size", lp_nn_opts_of(m->net)->batch_size);
    size_t best = lp_nn_best_epoch(m->net), run = lp_nn_epochs_run(m->net);
    cJSON_AddNumberToObject(arch, "kept_epoch", (double)(o->keep_last || !best ? run : best));
    cJSON_AddNumberToObject(arch, "weight_ema_decay", o->ema_decay);
    cJSON_AddNumberToObject(arch, "mixup_alpha", o->mixup_alpha);
    cJSON_AddNumberToObject(arch, "test_time_views", m->tta);
    cJSON *v = cJSON_AddObjectToObject(c, "validation_metrics");
    cJSON_AddNumberToObject(v, "accuracy", ev->accuracy);
    cJSON_AddNumberToObject(v, "macro_f1", ev->macro_f1);
    if (isfinite(ev->auroc))
        cJSON_AddNumberToObject(v, "auroc", ev->auroc);
    cJSON_AddNumberToObject(v, "abstained", (double)ev->abstained);
    cJSON *cal = cJSON_AddObjectToObject(c, "calibration");
    cJSON_AddStringToObject(cal, "method",
                            m->tta > 1 ? "temperature scaling on the validation split (the "
                                         "likelihood of the probabilities averaged over the "
                                         "test-time views)"
                                       : "temperature scaling on the validation split");
    cJSON_AddNumberToObject(cal, "temperature", m->T);
    cJSON_AddStringToObject(cal, "temperature_range", "[0.1, 10] (a fit at a bound is clamped)");
    cJSON_AddNumberToObject(cal, "ece_before", ece_before);
    cJSON_AddNumberToObject(cal, "ece_after", ev->ece);
    cJSON *mix = cJSON_AddObjectToObject(cal, "class_prior");
    for (size_t j = 0; j < m->k && m->prior; j++)
        cJSON_AddNumberToObject(mix, m->classes[j], m->prior[j]);
    cJSON *ab = cJSON_AddObjectToObject(c, "abstention");
    cJSON_AddNumberToObject(ab, "min_top_probability", m->abstain_p);
    cJSON_AddNumberToObject(ab, "ood_distance_threshold", m->ood_thr);
    if (m->has_pix) {
        cJSON *pm = cJSON_AddArrayToObject(ab, "pixel_mean_range");
        cJSON *ps = cJSON_AddArrayToObject(ab, "pixel_spread_range");
        for (int q = 0; q < 2; q++) {
            cJSON_AddItemToArray(pm, cJSON_CreateNumber(m->pix[q]));
            cJSON_AddItemToArray(ps, cJSON_CreateNumber(m->pix[2 + q]));
        }
    }
    cJSON_AddStringToObject(c, "intended_use", DX_STATEMENT);
    cJSON_AddStringToObject(c, "limits",
                            "Trained on the images above only; unvalidated on other scanners, "
                            "populations or resolutions. Calibration holds for data like the "
                            "validation split. Not a medical device.");
    m->card = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    return m->card ? LP_OK : lp_err_set(err, LP_ENOMEM, "dx: out of memory for the model card");
}

static lp_status set_version(dx_image_model *m, lp_err *err)
{
    lp_buf b;
    lp_buf_init(&b);
    lp_status st = lp_nn_save(m->net, &b, err);
    if (!st) {
        char hex[65];
        lp_sha256_hex(b.data, b.len, hex);
        snprintf(m->version, sizeof m->version, "cnn-%.12s", hex);
    }
    lp_buf_free(&b);
    return st;
}

/* Everything after the net: temperature, OOD statistics and threshold, the card. */
static lp_status fit_trust(dx_image_model *m, const float *X, size_t n, const float *Xv,
                           const int32_t *yv, size_t nv, const dx_train_opts *o, lp_err *err)
{
    size_t V = (size_t)m->tta;
    float *z = lp_mallocarray(V * nv, m->k * sizeof *z);
    double *p = lp_mallocarray(nv, m->k * sizeof *p), *tmp = lp_mallocarray(nv, m->k * sizeof *tmp);
    size_t nf = n < 5000 ? n : 5000;
    float *f = lp_mallocarray(nf > nv ? nf : nv, m->F * sizeof *f);
    double *dist = lp_mallocarray(nv, sizeof *dist);
    m->mu = lp_calloc(m->F, sizeof *m->mu);
    m->var = lp_calloc(m->F, sizeof *m->var);
    lp_status st = z && p && tmp && f && dist && m->mu && m->var
                       ? LP_OK
                       : lp_err_set(err, LP_ENOMEM, "dx: out of memory");
    double ece_before = NAN;
    m->prior = lp_calloc(m->k, sizeof *m->prior);
    if (!st && !m->prior)
        st = lp_err_set(err, LP_ENOMEM, "dx: out of memory");
    for (size_t i = 0; i < nv && !st; i++)
        m->prior[yv[i]] += 1;
    for (size_t j = 0; j < m->k && !st; j++)
        m->prior[j] = (m->prior[j] + 0.5) / ((double)nv + 0.5 * (double)m->k);
    if (!st)
        st = tta_logits(m, Xv, nv, m->tta, z, err);
    if (!st)
        st = dx_fit_temperature(z, m->tta, yv, nv, m->k, &m->T, NULL, err);
    if (!st) {
        m->T = dx_temperature_clamp(m->T);
        ece_before = dx_tta_ece(z, m->tta, yv, nv, m->k, 1.0, p, tmp);
    }
    /* per-feature statistics of (up to 5000 evenly spaced) training rows */
    if (!st) {
        size_t stride = n / nf;
        float *rows = lp_mallocarray(nf, m->d * sizeof *rows);
        if (!rows)
            st = lp_err_set(err, LP_ENOMEM, "dx: out of memory");
        for (size_t i = 0; i < nf && !st; i++)
            memcpy(rows + i * m->d, X + i * stride * m->d, m->d * sizeof *rows);
        if (!st)
            st = lp_nn_features(m->net, rows, nf, f, err);
        free(rows);
    }
    if (!st) {
        double mean_var = 0;
        for (size_t j = 0; j < m->F; j++) {
            double s = 0, s2 = 0;
            for (size_t i = 0; i < nf; i++)
                s += f[i * m->F + j];
            double mu = s / (double)nf;
            for (size_t i = 0; i < nf; i++)
                s2 += (f[i * m->F + j] - mu) * (f[i * m->F + j] - mu);
            m->mu[j] = (float)mu;
            m->var[j] = (float)(s2 / (double)nf);
            mean_var += m->var[j];
        }
        mean_var /= (double)m->F;
        for (size_t j = 0; j < m->F; j++)
            m->var[j] = (float)fmax(m->var[j], 1e-3 * mean_var + 1e-12);
        st = lp_nn_features(m->net, Xv, nv, f, err);
    }
    if (!st) { /* the pixel gate's ranges from every training image */
        double *ms = lp_mallocarray(2 * n, sizeof *ms);
        if (!ms) {
            st = lp_err_set(err, LP_ENOMEM, "dx: out of memory");
        } else {
            for (size_t i = 0; i < n; i++)
                pix_stats(X + i * m->d, m->d, &ms[i], &ms[n + i]);
            for (int q = 0; q < 2; q++) {
                double *v = ms + (size_t)q * n;
                qsort(v, n, sizeof *v, cmp_double);
                double lo = v[(size_t)floor(0.001 * (double)(n - 1))],
                       hi = v[(size_t)ceil(0.999 * (double)(n - 1))];
                double pad = 0.25 * (hi - lo) + 1e-6 * (fabs(lo) + fabs(hi) + 1);
                /* a spread's lower bound stays above half the training images' own, so that a
                 * flat image (spread 0) never passes */
                double low = q == 1 && lo > 0 ? fmax(lo - pad, 0.5 * lo) : lo - pad;
                m->pix[2 * q] = (float)low;
                m->pix[2 * q + 1] = (float)(hi + pad);
            }
            m->has_pix = true;
            free(ms);
        }
    }
    if (!st) {
        ood_dist(m, f, nv, dist);
        qsort(dist, nv, sizeof *dist, cmp_double);
        size_t q = (size_t)floor(o->ood_quantile * (double)(nv - 1));
        m->ood_thr = dist[q];
        m->abstain_p = o->abstain_p;
    }
    dx_answer *va = st ? NULL : lp_mallocarray(nv, sizeof *va);
    if (!st && !va)
        st = lp_err_set(err, LP_ENOMEM, "dx: out of memory");
    if (!st)
        st = dx_image_predict(m, Xv, nv, va, err);
    if (!st)
        st = dx_drift_fit(va, nv, &m->drift, err);
    free(va);
    dx_eval ev;
    if (!st)
        st = dx_image_eval(m, Xv, yv, nv, &ev, err);
    if (!st)
        st = set_version(m, err);
    if (!st)
        st = build_card(m, n, nv, &ev, ece_before, o, err);
    free(z);
    free(p);
    free(tmp);
    free(f);
    free(dist);
    return st;
}

static lp_status copy_classes(dx_image_model *m, const char *const *classes, size_t k,
                              lp_err *err)
{
    m->classes = lp_calloc(k, sizeof *m->classes);
    if (!m->classes)
        return lp_err_set(err, LP_ENOMEM, "dx: out of memory");
    m->k = k;
    for (size_t j = 0; j < k; j++)
        if (!(m->classes[j] = lp_strdup(classes[j])))
            return lp_err_set(err, LP_ENOMEM, "dx: out of memory");
    return LP_OK;
}

lp_status dx_image_train(const float *X, const int32_t *y, size_t n, const float *X_valid,
                         const int32_t *y_valid, size_t n_valid, size_t c, size_t h, size_t w,
                         const char *const *classes, size_t k, const dx_train_opts *o,
                         dx_image_model **out, lp_err *err)
{
    if (!X || !y || !out || !o || !classes || n < 4 || k < 2 || k > DX_MAX_CLASSES)
        return lp_err_set(err, LP_EINVAL,
                          "dx train: need at least 4 images and 2..%d classes (got %zu, %zu)",
                          DX_MAX_CLASSES, n, k);
    *out = NULL;
    if (o->tta < 1 || o->tta > DX_TTA_MAX)
        return lp_err_set(err, LP_EINVAL, "dx train: tta=%d: must be in [1, %d]", o->tta,
                          DX_TTA_MAX);
    size_t d = c * h * w;
    for (size_t i = 0; i < n; i++)
        if (y[i] < 0 || (size_t)y[i] >= k)
            return lp_err_set(err, LP_EINVAL, "dx train: row %zu: label %d not in [0, %zu)", i,
                              y[i], k);
    /* hold out a validation split when none is given (seeded permutation) */
    float *Xt = NULL, *Xv = NULL, *yt = NULL, *yvf = NULL;
    int32_t *yv = NULL;
    size_t nt = n, nv = n_valid;
    size_t *idx = lp_mallocarray(n, sizeof *idx);
    yt = lp_mallocarray(n, sizeof *yt);
    if (!idx || !yt) {
        free(idx);
        free(yt);
        return lp_err_set(err, LP_ENOMEM, "dx: out of memory");
    }
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    lp_status st = LP_OK;
    if (!X_valid || n_valid == 0) {
        lp_rng rng;
        lp_rng_seed(&rng, o->seed);
        lp_rng_shuffle_idx(&rng, idx, n);
        nv = (size_t)((double)n * o->valid_frac);
        if (nv < 2)
            nv = 2;
        nt = n - nv;
        Xt = lp_mallocarray(nt, d * sizeof *Xt);
        Xv = lp_mallocarray(nv, d * sizeof *Xv);
        yv = lp_mallocarray(nv, sizeof *yv);
        if (!Xt || !Xv || !yv)
            st = lp_err_set(err, LP_ENOMEM, "dx: out of memory");
        for (size_t i = 0; i < n && !st; i++) {
            size_t r = idx[i];
            if (i < nt) {
                memcpy(Xt + i * d, X + r * d, d * sizeof *Xt);
                yt[i] = (float)y[r];
            } else {
                memcpy(Xv + (i - nt) * d, X + r * d, d * sizeof *Xv);
                yv[i - nt] = y[r];
            }
        }
    } else {
        for (size_t i = 0; i < n; i++)
            yt[i] = (float)y[i];
        yv = lp_mallocarray(nv, sizeof *yv);
        if (!yv)
            st = lp_err_set(err, LP_ENOMEM, "dx: out of memory");
        for (size_t i = 0; i < nv && !st; i++) {
            if (y_valid[i] < 0 || (size_t)y_valid[i] >= k)
                st = lp_err_set(err, LP_EINVAL, "dx train: validation row %zu: label %d", i,
                                y_valid[i]);
            yv[i] = y_valid[i];
        }
    }
    yvf = st ? NULL : lp_mallocarray(nv, sizeof *yvf);
    if (!st && !yvf)
        st = lp_err_set(err, LP_ENOMEM, "dx: out of memory");
    for (size_t i = 0; i < nv && !st; i++)
        yvf[i] = (float)yv[i];
    const float *trX = Xt ? Xt : X, *vaX = Xv ? Xv : X_valid;
    dx_image_model *m = st ? NULL : lp_calloc(1, sizeof *m);
    if (!st && !m)
        st = lp_err_set(err, LP_ENOMEM, "dx: out of memory");
    char shape[64];
    snprintf(shape, sizeof shape, "%zux%zux%zu", c, h, w);
    if (!st) {
        m->c = c, m->h = h, m->w = w, m->d = d;
        st = copy_classes(m, classes, k, err);
    }
    if (!st) {
        lp_nn_opts no = lp_nn_opts_default();
        no.arch = o->arch;
        no.input_shape = shape;
        no.augment = o->augment;
        no.n_outputs = (int)k;
        no.epochs = dx_image_epochs(o, nt);
        /* a small training set gets smaller batches, so it still takes at least
         * DX_MIN_STEPS optimizer steps an epoch (batches of 8 at the least) */
        size_t bs = nt / DX_MIN_STEPS;
        no.batch_size = bs >= (size_t)o->batch_size ? o->batch_size : bs < 8 ? 8 : (int)bs;
        no.lr = o->lr;
        no.weight_decay = o->weight_decay;
        no.schedule = LP_NN_SCHED_COSINE;
        /* never stops early; restores the best validation epoch unless keep_last */
        no.patience = o->keep_last ? 0 : no.epochs;
        no.seed = o->seed;
        no.n_threads = o->threads;
        no.ema_decay = o->ema_decay;
        no.mixup_alpha = o->mixup_alpha;
        if (o->device)
            no.backend = o->device;
        st = lp_nn_fit(trX, yt, nt, d, &no, vaX, yvf, nv, &m->net, err);
    }
    if (!st) {
        m->F = lp_nn_n_features(m->net);
        m->tta = o->tta;
        st = fit_trust(m, trX, nt, vaX, yv, nv, o, err);
    }
    free(idx);
    free(yt);
    free(Xt);
    free(Xv);
    free(yv);
    free(yvf);
    if (st) {
        dx_image_model_free(m);
        return st;
    }
    *out = m;
    return LP_OK;
}

/* ---- integrated gradients -------------------------------------------------------------------*/

lp_status dx_image_ig(dx_image_model *m, const float *x, int cls, int steps, float *attr,
                      double *fx, double *fb, lp_err *err)
{
    if (!m || !x || !attr || steps < 1 || steps > 1024 || cls < 0 || (size_t)cls >= m->k)
        return lp_err_set(err, LP_EINVAL, "dx ig: bad arguments (steps 1..1024, class < %zu)",
                          m ? m->k : 0);
    size_t d = m->d, S = (size_t)steps;
    /* rows 0..S-1: (s+1)/S x (right Riemann sum); row S: the baseline */
    float *path = lp_mallocarray(S + 1, d * sizeof *path), *g = lp_mallocarray(S + 1, d * sizeof *g);
    float *z = lp_mallocarray(S + 1, m->k * sizeof *z);
    int32_t *cl = lp_mallocarray(S + 1, sizeof *cl);
    lp_status st = path && g && z && cl ? LP_OK : lp_err_set(err, LP_ENOMEM, "dx ig: out of memory");
    for (size_t s = 0; s <= S && !st; s++) {
        float a = s < S ? (float)(s + 1) / (float)S : 0.0f;
        for (size_t i = 0; i < d; i++)
            path[s * d + i] = a * x[i];
        cl[s] = cls;
    }
    if (!st)
        st = lp_nn_input_grad(m->net, path, S + 1, cl, g, z, err);
    if (!st) {
        for (size_t i = 0; i < d; i++) {
            double sum = 0;
            for (size_t s = 0; s < S; s++)
                sum += g[s * d + i];
            attr[i] = (float)(x[i] * sum / (double)S);
        }
        if (fx)
            *fx = z[(S - 1) * m->k + (size_t)cls];
        if (fb)
            *fb = z[S * m->k + (size_t)cls];
    }
    free(path);
    free(g);
    free(z);
    free(cl);
    return st;
}

lp_status dx_heatmap_png(const float *x, const float *attr, size_t c, size_t h, size_t w,
                         lp_buf *png, lp_err *err)
{
    size_t plane = h * w;
    lp_image img = {w, h, 3, lp_mallocarray(plane, 3)};
    if (!img.px)
        return lp_err_set(err, LP_ENOMEM, "dx heatmap: out of memory");
    double mx = 0;
    for (size_t i = 0; i < plane; i++) {
        double a = 0;
        for (size_t k = 0; k < c; k++)
            a += fabs(attr[k * plane + i]);
        mx = fmax(mx, a);
    }
    for (size_t i = 0; i < plane; i++) {
        double gray = 0, a = 0;
        for (size_t k = 0; k < c; k++)
            gray += x[k * plane + i] / (double)c, a += fabs(attr[k * plane + i]);
        double t = mx > 0 ? a / mx : 0, g = 255.0 * fmin(fmax(gray, 0), 1);
        img.px[3 * i] = (uint8_t)((1 - t) * g + t * 255.0);
        img.px[3 * i + 1] = (uint8_t)((1 - t) * g);
        img.px[3 * i + 2] = (uint8_t)((1 - t) * g);
    }
    lp_status st = lp_image_encode_png(&img, png, err);
    lp_image_clear(&img);
    return st;
}

/* ---- the model file -------------------------------------------------------------------------*/

lp_status dx_image_model_save(const dx_image_model *m, const char *path, lp_err *err)
{
    cJSON *hdr = cJSON_Parse(m->card);
    if (!hdr)
        return lp_err_set(err, LP_ENOMEM, "dx save: out of memory");
    cJSON *dx = cJSON_AddObjectToObject(hdr, "dx");
    cJSON_AddStringToObject(dx, "kind", "image");
    cJSON_AddNumberToObject(dx, "format", DX_IMAGE_FORMAT);
    cJSON_AddNumberToObject(dx, "tta", m->tta);
    cJSON_AddStringToObject(dx, "version", m->version);
    cJSON_AddNumberToObject(dx, "c", (double)m->c);
    cJSON_AddNumberToObject(dx, "h", (double)m->h);
    cJSON_AddNumberToObject(dx, "w", (double)m->w);
    cJSON_AddNumberToObject(dx, "temperature", m->T);
    cJSON_AddNumberToObject(dx, "abstain_p", m->abstain_p);
    cJSON_AddNumberToObject(dx, "ood_threshold", m->ood_thr);
    cJSON *cls = cJSON_AddArrayToObject(dx, "classes");
    for (size_t j = 0; j < m->k; j++)
        cJSON_AddItemToArray(cls, cJSON_CreateString(m->classes[j]));
    if (m->prior)
        cJSON_AddItemToObject(dx, "class_prior", cJSON_CreateDoubleArray(m->prior, (int)m->k));
    /* a prevalence set for serving is not part of the model */
    cJSON *card_cal = cJSON_GetObjectItemCaseSensitive(hdr, "calibration");
    cJSON_DeleteItemFromObjectCaseSensitive(card_cal, "prevalence");
    char *text = cJSON_PrintUnformatted(hdr);
    cJSON_Delete(hdr);
    lp_buf b;
    lp_buf_init(&b);
    lp_lpm_writer *w = lp_lpm_writer_new();
    float *ood = lp_mallocarray(2 * m->F, sizeof *ood);
    lp_status st = text && w && ood ? LP_OK : lp_err_set(err, LP_ENOMEM, "dx save: out of memory");
    if (!st) {
        memcpy(ood, m->mu, m->F * sizeof *ood);
        memcpy(ood + m->F, m->var, m->F * sizeof *ood);
        st = lp_nn_save(m->net, &b, err);
    }
    if (!st)
        st = lp_lpm_writer_add(w, "dx.nn", LP_LPM_DTYPE_BYTES, b.data, b.len, err);
    if (!st)
        st = lp_lpm_writer_add(w, "dx.ood", LP_LPM_DTYPE_F32, ood, 2 * m->F * sizeof *ood, err);
    if (!st && m->has_pix)
        st = lp_lpm_writer_add(w, "dx.pix", LP_LPM_DTYPE_F32, m->pix, sizeof m->pix, err);
    lp_buf db;
    lp_buf_init(&db);
    if (!st && m->drift)
        st = lp_drift_save(m->drift, &db, err);
    if (!st && m->drift)
        st = lp_lpm_writer_add(w, "dx.drift", LP_LPM_DTYPE_BYTES, db.data, db.len, err);
    lp_buf_free(&db);
    if (!st)
        st = lp_lpm_writer_save(w, text, path, err);
    lp_lpm_writer_free(w);
    lp_buf_free(&b);
    free(ood);
    cJSON_free(text);
    return st;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

lp_status dx_image_model_load(const char *path, dx_image_model **out, lp_err *err)
{
    *out = NULL;
    lp_lpm *f;
    TRY(lp_lpm_load(path, &f, err));
    cJSON *hdr = cJSON_Parse(lp_lpm_header(f));
    const cJSON *dx = hdr ? cJSON_GetObjectItemCaseSensitive(hdr, "dx") : NULL;
    const cJSON *kind = dx ? cJSON_GetObjectItemCaseSensitive(dx, "kind") : NULL;
    const cJSON *cls = dx ? cJSON_GetObjectItemCaseSensitive(dx, "classes") : NULL;
    const cJSON *ver = dx ? cJSON_GetObjectItemCaseSensitive(dx, "version") : NULL;
    dx_image_model *m = lp_calloc(1, sizeof *m);
    lp_status st = m ? LP_OK : lp_err_set(err, LP_ENOMEM, "dx load: out of memory");
    if (!st && (!cJSON_IsString(kind) || strcmp(kind->valuestring, "image") != 0 ||
                !cJSON_IsArray(cls) || !cJSON_IsString(ver)))
        st = lp_err_set(err, LP_EFORMAT, "%s: not a lepton-diagnosis image model (no dx header)",
                        path);
    if (!st) {
        /* format 1 files have neither "format" nor "tta": one view */
        double fmt = cJSON_HasObjectItem(dx, "format") ? num(dx, "format") : 1;
        double tta = cJSON_HasObjectItem(dx, "tta") ? num(dx, "tta") : 1;
        if (fmt > DX_IMAGE_FORMAT)
            st = lp_err_set(err, LP_EVERSION,
                            "%s: image model format %g is newer than this lepton-diagnosis "
                            "reads (1..%d)",
                            path, fmt, DX_IMAGE_FORMAT);
        else if (!(fmt >= 1) || fmt != floor(fmt) || !(tta >= 1 && tta <= DX_TTA_MAX) ||
                 tta != floor(tta))
            st = lp_err_set(err, LP_EFORMAT, "%s: bad dx header: format %g, tta %g (1..%d)", path,
                            fmt, tta, DX_TTA_MAX);
        m->tta = (int)tta;
    }
    if (!st) {
        m->c = (size_t)num(dx, "c"), m->h = (size_t)num(dx, "h"), m->w = (size_t)num(dx, "w");
        m->T = num(dx, "temperature");
        m->abstain_p = num(dx, "abstain_p");
        m->ood_thr = num(dx, "ood_threshold");
        m->d = m->c * m->h * m->w;
        size_t k = (size_t)cJSON_GetArraySize(cls);
        if (k < 2 || k > DX_MAX_CLASSES || !(m->T > 0) || !isfinite(m->ood_thr) || m->d == 0)
            st = lp_err_set(err, LP_EFORMAT, "%s: bad dx header values", path);
        const char *names[DX_MAX_CLASSES];
        for (size_t j = 0; j < k && !st; j++) {
            const cJSON *s = cJSON_GetArrayItem(cls, (int)j);
            if (!cJSON_IsString(s))
                st = lp_err_set(err, LP_EFORMAT, "%s: class %zu is not a string", path, j);
            else
                names[j] = s->valuestring;
        }
        if (!st)
            st = copy_classes(m, names, k, err);
        snprintf(m->version, sizeof m->version, "%s", ver->valuestring);
    }
    const cJSON *pri = dx ? cJSON_GetObjectItemCaseSensitive(dx, "class_prior") : NULL;
    if (!st && pri) { /* optional: files saved before it have none */
        double s = 0;
        m->prior = lp_calloc(m->k, sizeof *m->prior);
        if (!m->prior)
            st = lp_err_set(err, LP_ENOMEM, "dx load: out of memory");
        else if (!cJSON_IsArray(pri) || (size_t)cJSON_GetArraySize(pri) != m->k)
            st = lp_err_set(err, LP_EFORMAT, "%s: dx class_prior is not %zu numbers", path, m->k);
        for (size_t j = 0; j < m->k && !st; j++) {
            const cJSON *v = cJSON_GetArrayItem(pri, (int)j);
            m->prior[j] = cJSON_IsNumber(v) ? v->valuedouble : NAN;
            if (!(m->prior[j] > 0 && m->prior[j] <= 1))
                st = lp_err_set(err, LP_EFORMAT, "%s: dx class_prior value %zu is bad", path, j);
            else
                s += m->prior[j];
        }
        if (!st && fabs(s - 1) > 1e-6)
            st = lp_err_set(err, LP_EFORMAT, "%s: dx class_prior sums to %g, not 1", path, s);
    }
    const void *data;
    size_t size;
    if (!st)
        st = lp_lpm_section(f, "dx.nn", LP_LPM_DTYPE_BYTES, &data, &size, err);
    if (!st) {
        lp_reader r;
        lp_reader_init(&r, data, size, path);
        st = lp_nn_load(&r, "cpu", &m->net, err);
    }
    if (!st && (lp_nn_n_inputs(m->net) != m->d || lp_nn_n_outputs(m->net) != m->k))
        st = lp_err_set(err, LP_EFORMAT, "%s: network shape does not match the header", path);
    if (!st) {
        m->F = lp_nn_n_features(m->net);
        st = lp_lpm_section(f, "dx.ood", LP_LPM_DTYPE_F32, &data, &size, err);
    }
    if (!st && size != 2 * m->F * sizeof(float))
        st = lp_err_set(err, LP_EFORMAT, "%s: dx.ood holds %zu bytes, expected %zu", path, size,
                        2 * m->F * sizeof(float));
    if (!st) {
        m->mu = lp_mallocarray(m->F, sizeof *m->mu);
        m->var = lp_mallocarray(m->F, sizeof *m->var);
        if (!m->mu || !m->var)
            st = lp_err_set(err, LP_ENOMEM, "dx load: out of memory");
    }
    if (!st) {
        memcpy(m->mu, data, m->F * sizeof *m->mu);
        memcpy(m->var, (const float *)data + m->F, m->F * sizeof *m->var);
        for (size_t j = 0; j < m->F && !st; j++)
            if (!(m->var[j] > 0) || !isfinite(m->mu[j]))
                st = lp_err_set(err, LP_EFORMAT, "%s: dx.ood value %zu is bad", path, j);
    }
    /* optional: models saved before the pixel gate have no "dx.pix" */
    if (!st && lp_lpm_section(f, "dx.pix", LP_LPM_DTYPE_F32, &data, &size, NULL) == LP_OK) {
        if (size != sizeof m->pix)
            st = lp_err_set(err, LP_EFORMAT, "%s: dx.pix holds %zu bytes, expected %zu", path,
                            size, sizeof m->pix);
        else
            memcpy(m->pix, data, sizeof m->pix);
        for (int q = 0; q < 4 && !st; q++)
            if (!isfinite(m->pix[q]))
                st = lp_err_set(err, LP_EFORMAT, "%s: dx.pix value %d is bad", path, q);
        m->has_pix = !st;
    }
    /* optional: models saved before monitoring have no drift reference */
    if (!st && lp_lpm_section(f, "dx.drift", LP_LPM_DTYPE_BYTES, &data, &size, NULL) == LP_OK)
        st = lp_drift_load(data, size, &m->drift, err);
    if (!st) {
        cJSON_DeleteItemFromObjectCaseSensitive(hdr, "dx");
        m->card = cJSON_PrintUnformatted(hdr);
        if (!m->card)
            st = lp_err_set(err, LP_ENOMEM, "dx load: out of memory");
    }
    cJSON_Delete(hdr);
    lp_lpm_free(f);
    if (st) {
        dx_image_model_free(m);
        return st;
    }
    *out = m;
    return LP_OK;
}

const lp_drift *dx_image_model_drift(const dx_image_model *m) { return m->drift; }

lp_status dx_drift_fit(const dx_answer *a, size_t n, lp_drift **out, lp_err *err)
{
    *out = NULL;
    double *v = lp_mallocarray(n + 1, sizeof *v);
    lp_frame *empty = lp_frame_new();
    lp_drift *d = NULL;
    lp_status st = v && empty ? lp_drift_fit(empty, &d, err)
                              : lp_err_set(err, LP_ENOMEM, "dx drift: out of memory");
    for (size_t i = 0; !st && i < n; i++)
        v[i] = a[i].probs[a[i].order[0]];
    if (!st)
        st = lp_drift_add_numeric(d, "top_probability", v, n, err);
    for (size_t i = 0; !st && i < n; i++)
        v[i] = a[i].ood;
    if (!st)
        st = lp_drift_add_numeric(d, "ood_score", v, n, err);
    free(v);
    lp_frame_free(empty);
    if (st) {
        lp_drift_free(d);
        return st;
    }
    *out = d;
    return LP_OK;
}

/* ---- prevalence (label shift) -------------------------------------------------------------- */

const double *dx_image_model_prior(const dx_image_model *m)
{
    return m->prior;
}

const double *dx_image_model_prevalence(const dx_image_model *m)
{
    return m->target ? m->target : m->prior;
}

static lp_status no_prior(lp_err *err, const char *what)
{
    return lp_err_set(err, LP_EUNSUPPORTED,
                      "this image model file stores no calibrated class mix (saved by an older "
                      "lepton-diagnosis): retrain it to %s a prevalence", what);
}

/* The card's calibration.prevalence: the mix predictions are made at, and where it came from. */
static lp_status card_prevalence(dx_image_model *m, const char *source, lp_err *err)
{
    cJSON *c = cJSON_Parse(m->card);
    cJSON *cal = c ? cJSON_GetObjectItemCaseSensitive(c, "calibration") : NULL;
    if (!cal) {
        cJSON_Delete(c);
        return lp_err_set(err, LP_ENOMEM, "dx: out of memory for the model card");
    }
    cJSON_DeleteItemFromObjectCaseSensitive(cal, "prevalence");
    if (m->target) {
        cJSON *pv = cJSON_AddObjectToObject(cal, "prevalence");
        cJSON_AddStringToObject(pv, "source", source);
        cJSON_AddStringToObject(pv, "method", "probabilities re-weighted from class_prior to "
                                              "this class mix (Saerens et al. 2002)");
        cJSON *mix = cJSON_AddObjectToObject(pv, "class_mix");
        for (size_t j = 0; j < m->k; j++)
            cJSON_AddNumberToObject(mix, m->classes[j], m->target[j]);
    }
    char *text = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    if (!text)
        return lp_err_set(err, LP_ENOMEM, "dx: out of memory for the model card");
    free(m->card);
    m->card = text;
    return LP_OK;
}

lp_status dx_image_model_set_prevalence(dx_image_model *m, const double *to, const char *source,
                                        lp_err *err)
{
    if (!m->prior)
        return no_prior(err, "set");
    if (!to) {
        free(m->target);
        m->target = NULL;
        return card_prevalence(m, source, err);
    }
    TRY(lp_prior_shift_apply(NULL, 0, m->k, m->prior, to, NULL, err)); /* checks `to` */
    if (!m->target && !(m->target = lp_calloc(m->k, sizeof *m->target)))
        return lp_err_set(err, LP_ENOMEM, "dx: out of memory");
    memcpy(m->target, to, m->k * sizeof *to);
    return card_prevalence(m, source ? source : "given", err);
}

lp_status dx_prevalence_parse(const dx_image_model *m, const char *spec, double *to, lp_err *err)
{
    if (!m->prior)
        return no_prior(err, "set");
    bool named[DX_MAX_CLASSES] = {false};
    double given = 0, rest = 0;
    const char *p = spec ? spec : "";
    if (!*p)
        return lp_err_set(err, LP_EINVAL, "prevalence: empty; expected LABEL=P[,LABEL=P...]");
    while (*p) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        if (!eq || eq > end)
            return lp_err_set(err, LP_EINVAL, "prevalence: '%.*s' is not LABEL=P", (int)(end - p),
                              p);
        size_t j = 0, len = (size_t)(eq - p);
        while (j < m->k && !(strlen(m->classes[j]) == len && memcmp(m->classes[j], p, len) == 0))
            j++;
        if (j == m->k)
            return lp_err_set(err, LP_EINVAL, "prevalence: no class '%.*s' in this model",
                              (int)len, p);
        if (named[j])
            return lp_err_set(err, LP_EINVAL, "prevalence: class '%s' given twice",
                              m->classes[j]);
        char num[64];
        size_t nl = (size_t)(end - eq - 1);
        char *stop;
        snprintf(num, sizeof num, "%.*s", (int)(nl < 63 ? nl : 63), eq + 1);
        double v = strtod(num, &stop);
        if (nl == 0 || nl > 63 || *stop || !(v > 0 && v < 1))
            return lp_err_set(err, LP_EINVAL,
                              "prevalence: class '%s' = '%s': expected a number in (0, 1)",
                              m->classes[j], num);
        named[j] = true;
        to[j] = v;
        given += v;
        p = *end ? end + 1 : end;
    }
    for (size_t j = 0; j < m->k; j++)
        if (!named[j])
            rest += m->prior[j];
    if (rest == 0 ? fabs(given - 1) > 1e-6 : !(given < 1))
        return lp_err_set(err, LP_EINVAL, "prevalence: the given shares sum to %g; they must be "
                          "%s", given, rest == 0 ? "1 when every class is named" : "below 1");
    for (size_t j = 0; j < m->k; j++) /* the unnamed share what is left, as they did */
        if (!named[j])
            to[j] = (1 - given) * m->prior[j] / rest;
    return LP_OK;
}

lp_status dx_prevalence_estimate(const dx_image_model *m, const float *X, size_t n, double *to,
                                 int *iters, lp_err *err)
{
    if (!m->prior)
        return no_prior(err, "estimate");
    if (n == 0)
        return lp_err_set(err, LP_EINVAL, "prevalence: no images to estimate it from");
    size_t V = (size_t)m->tta;
    float *z = lp_mallocarray(V * n, m->k * sizeof *z);
    double *p = lp_mallocarray(n, m->k * sizeof *p), *tmp = lp_mallocarray(n, m->k * sizeof *tmp);
    lp_status st = z && p && tmp ? LP_OK : lp_err_set(err, LP_ENOMEM, "dx: out of memory");
    if (!st)
        st = tta_logits(m, X, n, m->tta, z, err);
    if (!st) {
        dx_tta_probs(z, m->tta, n, m->k, m->T, p, tmp);
        st = lp_prior_shift_em(p, n, m->k, m->prior, 1000, 1e-8, to, iters, err);
    }
    free(z);
    free(p);
    free(tmp);
    return st;
}
