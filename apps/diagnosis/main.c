/*
 * main.c - lepton-diagnosis: train / eval an image model, serve it with a calibrated
 * differential, abstention, integrated-gradients heat maps and a hash-chained audit trail,
 * and verify that trail.
 *
 *   train --images PATH [--labels IDX] [--valid PATH [--valid-labels IDX]] --out MODEL.lpm
 *         [--channels 1|3] [--size N|WxH] [--device auto|cpu|cuda]   (the conv net's kernel
 *         table; default cpu)
 *   train --text FILE [--text-col text] [--label-col label] [--valid FILE]
 *         [--encoder ENC.lpm [--finetune head|lora|full [--ft-epochs N] [--ft-steps N]]]
 *         --out MODEL.lpm
 *         (dx_text_model: TF-IDF + logistic, calibrated, with its OOD threshold; with an
 *         encoder, a head on its embeddings in the ensemble, the encoder fine-tuned first
 *         under lora / full; without the flags and without a text / label column, the one
 *         named like symptoms / description or disease / diagnosis, else the other of two)
 *   train --tabular FILE --label COL [--drop-cols A,B] [--valid FILE] --out MODEL.lpm
 *         (lp_model: logistic, C by 5-fold cross-validation, temperature out of fold; "row",
 *         the --drop-cols and columns that look like row identifiers are not features)
 *   eval --model MODEL.lpm (--images PATH [--labels IDX] | --text FILE | --tabular FILE) --json
 *        [--prevalence auto|LABEL=P,...]   (image models: predict at another class mix,
 *        estimated from the images themselves by EM with "auto"; see dx_image.c)
 *   serve [--port 8084] [--db diagnosis.db] (--model MODEL.lpm | [--image-model IMAGE.lpm]
 *         [--text-model TEXT.lpm]) [--store-text] [--prevalence LABEL=P,...]
 *         (--model takes either kind, told apart by the file; one model per modality;
 *         image + text in one request are fused, see dx_fuse)
 *   verify-audit --db diagnosis.db
 * PATH is an IDX images file (with --labels; gray 08 03 or N x H x W x C 08 04) or a folder of
 * class sub-folders. Training reads a folder at 28x28, in colour (3 channels) when most of a
 * sample of its images hold colour, else gray; IDX as stored (at 28x28 when larger than 64
 * px on a side); --channels / --size override.
 * The model keeps its channels and size, and eval reads images with them; eval matches class
 * folders to the model's classes by name (a folder may hold some of them).
 * Environment: DX_EPOCHS, DX_ARCH, DX_THREADS, DX_EMA, DX_TTA, DX_MIXUP, DX_KEEP_LAST,
 * DX_AUGMENT, DX_LR, DX_SEED, DX_TEXT_C, DX_TEXT_NGRAM override training
 * defaults (benchmarks, tests).
 */
#include "dx.h"

#include <cblas.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "enchead.h"

/* Images of a training folder decoded to decide gray or colour (spread over its files). */
#define DX_COLOUR_SAMPLE 64

static const char *USAGE =
    "usage: lepton-diagnosis train (--images PATH [--labels IDX] [--channels 1|3] [--size N|WxH]"
    " [--epochs N] | --text FILE [--text-col text]"
    " [--label-col label] [--encoder ENC.lpm [--finetune head|lora|full [--ft-epochs N]"
    " [--ft-steps N]]] | --tabular FILE --label COL [--drop-cols A,B])"
    " [--valid PATH [--valid-labels IDX]] --out MODEL.lpm [--device auto|cpu|cuda]\n"
    "       lepton-diagnosis eval --model MODEL.lpm (--images PATH [--labels IDX] | --text FILE"
    " [--text-col COL] [--label-col COL] | --tabular FILE) --json [--prevalence auto|LABEL=P,...]\n"
    "       lepton-diagnosis serve [--port 8084] [--db diagnosis.db] (--model MODEL.lpm |"
    " [--image-model IMAGE.lpm] [--text-model TEXT.lpm]) [--store-text]"
    " [--prevalence LABEL=P,...]\n"
    "       lepton-diagnosis verify-audit --db diagnosis.db\n";

/* The value of the last --name (a flag given again overrides, as in the other binaries). */
static const char *flag(int argc, char **argv, const char *name)
{
    const char *v = NULL;
    for (int i = 2; i + 1 < argc; i++)
        if (strcmp(argv[i], name) == 0)
            v = argv[++i];
    return v;
}

static bool has(int argc, char **argv, const char *name)
{
    for (int i = 2; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return true;
    return false;
}

/* Whether s is one of the NULL-terminated names. */
static bool listed(const char *const *names, const char *s)
{
    for (size_t i = 0; names[i]; i++)
        if (strcmp(names[i], s) == 0)
            return true;
    return false;
}

/* Every argument after the command is a flag of cmd: one of valued followed by its value, or
 * one of bare. Otherwise (a typo, a flag missing its value, a stray word) a usage message on
 * stderr naming it, and 2; 0 when the line is well formed. */
static int check_flags(const char *cmd, int argc, char **argv, const char *const *valued,
                       const char *const *bare)
{
    for (int i = 2; i < argc; i++) {
        if (listed(bare, argv[i]))
            continue;
        if (listed(valued, argv[i])) {
            if (i + 1 < argc) {
                i++;
                continue;
            }
            fprintf(stderr, "lepton-diagnosis %s: %s needs a value\n%s", cmd, argv[i], USAGE);
            return 2;
        }
        fprintf(stderr, "lepton-diagnosis %s: unknown %s '%s'\n%s", cmd,
                argv[i][0] == '-' ? "flag" : "argument", argv[i], USAGE);
        return 2;
    }
    return 0;
}

/* ---- image data --------------------------------------------------------------------------- */

typedef struct dataset {
    size_t n, c, h, w, k;
    float *x;
    int32_t *y;
    char **classes;
} dataset;

static void dataset_free(dataset *d)
{
    free(d->x);
    free(d->y);
    for (size_t j = 0; d->classes && j < d->k; j++)
        free(d->classes[j]);
    free(d->classes);
    memset(d, 0, sizeof *d);
}

/* Pixels src (h, w, c) uint8 interleaved as floats (C, H, W) in [0, 1]: channels converted
 * (gray -> RGB replicated, RGB -> gray by libjpeg's luma weights 0.299, 0.587, 0.114) and
 * resized bilinearly (lp_image_resize) to H x W. Unchanged in shape, exactly px / 255. */
static lp_status convert_image(const uint8_t *src, size_t h, size_t w, size_t c, size_t C,
                               size_t H, size_t W, float *out, lp_err *err)
{
    lp_image in = {w, h, C, lp_mallocarray(h * w, C)}, rs = {0};
    if (!in.px)
        return lp_err_set(err, LP_ENOMEM, "out of memory converting an image");
    for (size_t i = 0; i < h * w; i++) {
        const uint8_t *p = src + i * c;
        if (c == C)
            memcpy(in.px + i * C, p, C);
        else if (C == 3)
            memset(in.px + i * 3, p[0], 3);
        else
            in.px[i] = (uint8_t)((299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000);
    }
    lp_status st = h == H && w == W ? LP_OK : lp_image_resize(&in, W, H, &rs, err);
    if (!st)
        lp_image_to_chw(rs.px ? &rs : &in, out);
    lp_image_clear(&in);
    lp_image_clear(&rs);
    return st;
}

/* Read PATH: a folder of class sub-folders at c channels and h x w (all three required), or
 * an IDX images file with its labels, kept as stored when c, h, w are 0 (each may be given:
 * the images are converted to it), except that images larger than DX_IDX_MAX_SIDE on a side
 * are read at 28x28 when h and w are 0. d->classes are the folder names, or "0".."k-1" for IDX
 * (k one more than the largest label). */
static lp_status load_images(const char *path, const char *labels, size_t c, size_t h, size_t w,
                             dataset *d, lp_err *err)
{
    memset(d, 0, sizeof *d);
    struct stat sb;
    if (stat(path, &sb) != 0)
        return lp_err_set(err, errno == ENOENT ? LP_ENOTFOUND : LP_EIO, "%s: cannot open: %s",
                          path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        lp_image_set s;
        lp_status st = lp_image_set_read_folder(path, c, h, w, NULL, &s, err);
        if (st)
            return st;
        d->n = s.n, d->c = c, d->h = h, d->w = w, d->k = s.n_classes;
        d->x = s.x, d->y = s.y, d->classes = s.classes;
        return LP_OK;
    }
    if (!labels)
        return lp_err_set(err, LP_EINVAL,
                          "%s is not a folder of class sub-folders; read as an IDX images file, "
                          "it needs --labels IDX_LABELS", path);
    lp_idx x;
    lp_status st = lp_idx_read(path, labels, &x, err);
    if (st)
        return st;
    if (!h && !w && (x.h > DX_IDX_MAX_SIDE || x.w > DX_IDX_MAX_SIDE)) {
        /* MedMNIST+ at 128 or 224 px: a 2-core CPU trains the 28 px net, as for folders */
        h = w = 28;
        fprintf(stderr, "lepton-diagnosis: %s holds %zux%zu images: read at 28x28, as folders "
                "are (--size %zux%zu keeps them)\n", path, x.h, x.w, x.h, x.w);
    }
    d->n = x.n, d->c = c ? c : x.c, d->h = h ? h : x.h, d->w = w ? w : x.w;
    size_t dd = d->c * d->h * d->w, plane = x.h * x.w;
    d->x = lp_mallocarray(x.n, dd * sizeof *d->x);
    d->y = lp_mallocarray(x.n ? x.n : 1, sizeof *d->y);
    if (!d->x || !d->y) {
        lp_idx_clear(&x);
        dataset_free(d);
        return lp_err_set(err, LP_ENOMEM, "out of memory for %zu images", x.n);
    }
    if (x.c == 1 && d->c == 1 && d->h == x.h && d->w == x.w) {
        for (size_t i = 0; i < x.n * plane; i++)
            d->x[i] = (float)x.px[i] / 255.0f;
    } else {
        for (size_t i = 0; i < x.n && !st; i++)
            st = convert_image(x.px + i * plane * x.c, x.h, x.w, x.c, d->c, d->h, d->w,
                               d->x + i * dd, err);
    }
    size_t k = 0;
    for (size_t i = 0; i < x.n; i++) {
        d->y[i] = x.labels[i];
        if ((size_t)x.labels[i] + 1 > k)
            k = (size_t)x.labels[i] + 1;
    }
    lp_idx_clear(&x);
    d->k = k;
    d->classes = lp_calloc(k ? k : 1, sizeof *d->classes);
    for (size_t j = 0; d->classes && j < k; j++) {
        char b[16];
        snprintf(b, sizeof b, "%zu", j);
        d->classes[j] = lp_strdup(b);
    }
    if (!st && !d->classes)
        st = lp_err_set(err, LP_ENOMEM, "out of memory for %zu classes", k);
    if (st)
        dataset_free(d);
    return st;
}

/* Relabel d to the class list names (k) of a model or a training set: a class folder maps by
 * its name; an IDX label is the class's number already and must be below k. A folder whose
 * name is not among names, or a label >= k, is an error naming it and listing names. A data
 * set may hold fewer classes than names (an evaluation set with one class). */
static lp_status map_classes(dataset *d, const char *path, const char *const *names, size_t k,
                             const char *whose, lp_err *err)
{
    struct stat sb;
    bool folder = stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
    int32_t map[256];
    size_t nd = d->k < 256 ? d->k : 256;
    for (size_t j = 0; j < nd; j++) {
        map[j] = folder ? -1 : j < k ? (int32_t)j : -1;
        for (size_t t = 0; folder && t < k; t++)
            if (strcmp(d->classes[j], names[t]) == 0)
                map[j] = (int32_t)t;
    }
    for (size_t i = 0; i < d->n; i++) {
        size_t j = (size_t)d->y[i];
        if (j < nd && map[j] >= 0) {
            d->y[i] = map[j];
            continue;
        }
        char list[1024] = "";
        for (size_t t = 0, len = 0; t < k && len + 4 < sizeof list; t++)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s'%s'", t ? ", " : "",
                                    names[t]);
        if (folder)
            return lp_err_set(err, LP_EINVAL, "%s: class folder '%s' is not a class of %s "
                              "(its classes: %s); rename or remove that folder", path,
                              j < d->k ? d->classes[j] : "?", whose, list);
        return lp_err_set(err, LP_EINVAL, "%s: image %zu has label %zu, but %s has %zu classes "
                          "(labels 0..%zu: %s)", path, i, j, whose, k, k - 1, list);
    }
    return LP_OK;
}

/* --channels 1|3, --size N|WxH and --epochs N of train --images into *c, *h, *w, *epochs
 * (unchanged when absent). The exit status of a usage error, or -1. */
static int image_flags(int argc, char **argv, size_t *c, size_t *h, size_t *w, int *epochs)
{
    const char *ep = flag(argc, argv, "--epochs");
    if (ep) {
        char *end;
        long e = strtol(ep, &end, 10);
        if (end == ep || *end || e < 1 || e > 1000) {
            fprintf(stderr, "lepton-diagnosis train: --epochs %s: expected a whole number in "
                    "1..1000\n", ep);
            return 2;
        }
        *epochs = (int)e;
    }
    const char *ch = flag(argc, argv, "--channels"), *sz = flag(argc, argv, "--size");
    if (ch) {
        if (strcmp(ch, "1") && strcmp(ch, "3")) {
            fprintf(stderr, "lepton-diagnosis train: --channels %s: expected 1 (gray) or 3 "
                    "(RGB)\n", ch);
            return 2;
        }
        *c = (size_t)atoi(ch);
    }
    if (sz) {
        unsigned long a = 0, b = 0;
        int used = 0;
        int got = sscanf(sz, "%lux%lu%n", &a, &b, &used);
        if (got == 1 && strspn(sz, "0123456789") == strlen(sz))
            b = a, used = (int)strlen(sz);
        if ((got != 1 && got != 2) || (size_t)used != strlen(sz) || a < 4 || b < 4 || a > 1024 ||
            b > 1024) {
            fprintf(stderr, "lepton-diagnosis train: --size %s: expected N or WxH, each in "
                    "4..1024\n", sz);
            return 2;
        }
        *w = a, *h = b;
    }
    return -1;
}

static dx_train_opts train_opts_from_env(void)
{
    dx_train_opts o = dx_train_opts_default();
    const char *v;
    if ((v = getenv("DX_EPOCHS")) && atoi(v) > 0)
        o.epochs = atoi(v);
    if ((v = getenv("DX_ARCH")) && *v)
        o.arch = v;
    if ((v = getenv("DX_THREADS")) && atoi(v) > 0)
        o.threads = atoi(v);
    if ((v = getenv("DX_EMA")) && atof(v) >= 0 && atof(v) < 1)
        o.ema_decay = atof(v);
    if ((v = getenv("DX_TTA")) && atoi(v) >= 1 && atoi(v) <= DX_TTA_MAX)
        o.tta = atoi(v);
    if ((v = getenv("DX_KEEP_LAST")))
        o.keep_last = atoi(v) != 0;
    if ((v = getenv("DX_MIXUP")) && atof(v) >= 0)
        o.mixup_alpha = atof(v);
    if ((v = getenv("DX_AUGMENT")))
        o.augment = v;
    if ((v = getenv("DX_LR")) && atof(v) > 0)
        o.lr = atof(v);
    if ((v = getenv("DX_SEED")) && *v)
        o.seed = strtoull(v, NULL, 10);
    if ((v = getenv("DX_TEXT_C")) && atof(v) > 0)
        o.text_c = atof(v);
    if ((v = getenv("DX_TEXT_NGRAM")) && atoi(v) > 0)
        o.text_ngram_max = (unsigned)atoi(v);
    if ((v = getenv("DX_TEXT_REFIT")))
        o.text_refit = strcmp(v, "0") != 0;
    return o;
}

/* ---- lp_model paths (text / tabular) ------------------------------------------------------ */

/* A JSON string literal of s (caller frees). */
static char *json_quote(const char *s)
{
    cJSON *j = cJSON_CreateString(s);
    char *t = j ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    return t; /* cJSON's default allocator is malloc */
}

/* The eval JSON's metrics, without the closing brace: n, accuracy, macro_f1, auroc, ece,
 * top3_accuracy, abstained, auroc_classes (the classes the AUROC averages) and, when AUROC is
 * null or leaves classes out, auroc_note saying why; a metric that is not a number (AUROC
 * with one class present, a regression model's accuracy) is null, so the line stays JSON. */
static void print_metrics(const dx_eval *ev)
{
    const char *key[5] = {"accuracy", "macro_f1", "auroc", "ece", "top3_accuracy"};
    double v[5] = {ev->accuracy, ev->macro_f1, ev->auroc, ev->ece, ev->top3_accuracy};
    printf("{\"n\":%zu", ev->n);
    for (int i = 0; i < 5; i++) {
        if (isfinite(v[i]))
            printf(",\"%s\":%.6f", key[i], v[i]);
        else
            printf(",\"%s\":null", key[i]);
    }
    printf(",\"abstained\":%zu,\"auroc_classes\":%zu", ev->abstained, ev->auroc_classes);
    if (ev->auroc_note[0]) {
        char *note = json_quote(ev->auroc_note);
        printf(",\"auroc_note\":%s", note ? note : "null");
        free(note);
    }
}

static lp_status eval_frame(const char *model, const char *file, lp_err *err)
{
    lp_model *m = NULL;
    lp_frame *f = NULL;
    lp_status st = lp_model_load(model, &m, err);
    dx_tabular_info cal;
    if (!st) { /* a model without the section (trained by plain `lepton train`): T = 1 */
        st = dx_tabular_info_get(m, &cal, err);
        if (st == LP_ENOTFOUND)
            st = LP_OK;
    }
    const char *label = st ? NULL : lp_model_label(m);
    if (!st) /* read as training read it */
        st = lp_frame_read_labelled(file, NULL, &label, 1, label, &f, err);
    lp_eval ev;
    if (!st)
        st = lp_model_evaluate(m, f, &ev, err);
    lp_predictions p = {0};
    if (!st)
        st = lp_model_predict(m, f, &p, err);
    size_t j;
    if (!st)
        st = lp_frame_require(f, lp_model_label(m), file, &j, err);
    if (!st) {
        /* calibrated probabilities; ECE, top-3 and abstentions from them; labels by class text.
         * The temperature keeps every row's class order, so accuracy and F1 are the model's. */
        size_t n = p.n, k = p.k, top3 = 0, abstained = 0;
        int32_t *y = lp_mallocarray(n, sizeof *y);
        dx_eval out = {.n = ev.n, .accuracy = ev.accuracy, .macro_f1 = ev.macro_f1,
                       .auroc = ev.auroc};
        const lp_column *col = lp_frame_col(f, j);
        for (size_t i = 0; y && i < n; i++) {
            char buf[256];
            const char *s = lp_column_cell_str(col, i, buf, sizeof buf);
            y[i] = -1;
            for (size_t c = 0; c < lp_model_n_classes(m); c++)
                if (s && strcmp(s, lp_model_class(m, c)) == 0)
                    y[i] = (int32_t)c;
            size_t better = 0;
            for (size_t c = 0; c < k; c++)
                better += y[i] >= 0 && p.out[i * k + c] > p.out[i * k + (size_t)y[i]];
            top3 += y[i] >= 0 && better < 3;
        }
        /* AUROC over the classes present, on the uncalibrated probabilities (the temperature
         * keeps each row's order of classes, not each class's order of rows) */
        if (y && p.task != LP_TASK_REGRESSION && k >= 2 && k <= DX_MAX_CLASSES)
            st = dx_auroc(y, p.out, n, k, &out.auroc, &out.auroc_classes, out.auroc_note,
                          sizeof out.auroc_note, err);
        if (p.task != LP_TASK_REGRESSION)
            dx_tabular_apply(&cal, p.out, n, k);
        for (size_t i = 0; y && i < n; i++) {
            double top = 0;
            for (size_t c = 0; c < k; c++)
                top = fmax(top, p.out[i * k + c]);
            abstained += p.task != LP_TASK_REGRESSION && top < cal.abstain_p;
        }
        double ece = NAN;
        if (y)
            lp_metrics_ece(y, p.out, n, k, LP_METRICS_ECE_BINS_DEFAULT, &ece, NULL);
        out.abstained = abstained, out.ece = ece;
        out.top3_accuracy = n ? (double)top3 / (double)n : NAN;
        if (!st) {
            print_metrics(&out);
            printf("}\n");
        }
        free(y);
    }
    lp_predictions_clear(&p);
    lp_frame_free(f);
    lp_model_free(m);
    return st;
}

static int cmd_train(int argc, char **argv)
{
    lp_err err;
    const char *out = flag(argc, argv, "--out"), *images = flag(argc, argv, "--images");
    const char *text = flag(argc, argv, "--text"), *tab = flag(argc, argv, "--tabular");
    if (!out || (!!images + !!text + !!tab) != 1) {
        fputs(USAGE, stderr);
        return 2;
    }
    if (!images && flag(argc, argv, "--epochs")) {
        fprintf(stderr, "lepton-diagnosis train: --epochs is for --images (the text model's "
                "encoder takes --ft-epochs with --finetune; the tabular model has no epochs)\n");
        return 2;
    }
    lp_status st;
    if (text) {
        const char *label = flag(argc, argv, "--label-col"), *col = flag(argc, argv, "--text-col");
        dx_train_opts o = train_opts_from_env();
        o.encoder = flag(argc, argv, "--encoder");
        o.finetune = flag(argc, argv, "--finetune");
        int ftc = eh_finetune_check("lepton-diagnosis train", o.finetune, o.encoder != NULL);
        if (ftc >= 0)
            return ftc;
        ftc = eh_ft_limits("lepton-diagnosis train", o.finetune, flag(argc, argv, "--ft-epochs"),
                           flag(argc, argv, "--ft-steps"), &o.ft_epochs, &o.ft_max_steps);
        if (ftc >= 0)
            return ftc;
        dx_text_model *m = NULL;
        st = dx_text_train(text, flag(argc, argv, "--valid"), col, label, &o, &m, &err);
        if (!st)
            st = dx_text_model_save(m, out, &err);
        if (!st)
            printf("trained %s on %s -> %s\n%s\n", dx_text_model_version(m), text, out,
                   dx_text_model_card(m));
        dx_text_model_free(m);
    } else if (tab) {
        const char *label = flag(argc, argv, "--label");
        if (!label) {
            fputs(USAGE, stderr);
            return 2;
        }
        dx_train_opts o = train_opts_from_env();
        /* --drop-cols A,B: split in place of a copy */
        const char *dc = flag(argc, argv, "--drop-cols");
        char *dcopy = dc ? lp_strdup(dc) : NULL, *save = NULL;
        const char *cols[64];
        for (char *t = dcopy ? strtok_r(dcopy, ",", &save) : NULL; t && o.n_drop_cols < 64;
             t = strtok_r(NULL, ",", &save))
            cols[o.n_drop_cols++] = t;
        o.drop_cols = cols;
        lp_model *m = NULL;
        dx_tabular_info in;
        st = dx_tabular_train(tab, flag(argc, argv, "--valid"), label, &o, &m, &in, &err);
        if (!st && in.dropped[0])
            printf("left out of the features: %s (row identifiers%s)\n", in.dropped,
                   dc ? " and --drop-cols" : "");
        if (!st)
            st = lp_model_save(m, out, &err);
        if (!st)
            printf("trained logistic (C = %g by %d-fold CV, accuracy %.4f; temperature %.3f, "
                   "out-of-fold ECE %.4f -> %.4f) on %s -> %s\n",
                   in.C, 5, in.cv_accuracy, in.T, in.ece_before, in.ece_after, tab, out);
        lp_model_free(m);
        free(dcopy);
    } else {
        /* a folder: 28x28 (PneumoniaMNIST's size), gray unless most sampled images hold
         * colour; IDX: as stored up to DX_IDX_MAX_SIDE, else 28x28; --channels / --size
         * override either */
        struct stat sb;
        bool folder = stat(images, &sb) == 0 && S_ISDIR(sb.st_mode);
        size_t c = 0, h = folder ? 28 : 0, w = folder ? 28 : 0;
        dx_train_opts o = train_opts_from_env();
        int rc = image_flags(argc, argv, &c, &h, &w, &o.epochs);
        if (rc >= 0)
            return rc;
        st = LP_OK;
        if (folder && c == 0) {
            size_t nr, ncol;
            st = lp_image_folder_colour(images, DX_COLOUR_SAMPLE, NULL, &nr, &ncol, &err);
            c = !st && ncol > 0 && 2 * ncol >= nr ? 3 : 1;
            if (!st && c == 3)
                printf("%s: %zu of %zu sampled images hold colour: training on 3 channels (RGB; "
                       "--channels 1 for gray)\n", images, ncol, nr);
        }
        dataset tr = {0}, va = {0};
        if (!st)
            st = load_images(images, flag(argc, argv, "--labels"), c, h, w, &tr, &err);
        if (!st && tr.k < 2)
            st = lp_err_set(&err, LP_EINVAL, "%s: one class ('%s'); training needs at least 2",
                            images, tr.classes[0]);
        const char *vp = flag(argc, argv, "--valid");
        if (!st && vp)
            st = load_images(vp, flag(argc, argv, "--valid-labels"), tr.c, tr.h, tr.w, &va, &err);
        if (!st && vp)
            st = map_classes(&va, vp, (const char *const *)tr.classes, tr.k, images, &err);
        dx_image_model *m = NULL;
        if (!st)
            st = eh_device("lepton-diagnosis train", flag(argc, argv, "--device"), &o.device,
                           &err);
        uint64_t t0 = lp_time_ns();
        if (!st)
            st = dx_image_train(tr.x, tr.y, tr.n, va.x, va.y, va.n, tr.c, tr.h, tr.w,
                                (const char *const *)tr.classes, tr.k, &o, &m, &err);
        if (!st)
            st = dx_image_model_save(m, out, &err);
        if (!st)
            printf("trained %s on %zu images (%zux%zu, %zu channel%s) in %.1f s, %d epoch%s%s "
                   "-> %s\n%s\n",
                   dx_image_model_version(m), tr.n, tr.w, tr.h, tr.c, tr.c == 1 ? "" : "s",
                   lp_time_since(t0), dx_image_model_epochs(m),
                   dx_image_model_epochs(m) == 1 ? "" : "s",
                   o.epochs ? "" : " (the default for this many images; --epochs N)", out,
                   dx_image_model_card(m));
        dx_image_model_free(m);
        dataset_free(&tr);
        dataset_free(&va);
    }
    if (st) {
        fprintf(stderr, "lepton-diagnosis train: %s\n", lp_err_text(&err));
        return 1;
    }
    return 0;
}

static int cmd_eval(int argc, char **argv)
{
    lp_err err;
    const char *model = flag(argc, argv, "--model"), *images = flag(argc, argv, "--images");
    const char *text = flag(argc, argv, "--text"), *tab = flag(argc, argv, "--tabular");
    const char *prev = flag(argc, argv, "--prevalence");
    if (!model || (!!images + !!text + !!tab) != 1 || !has(argc, argv, "--json")) {
        fputs(USAGE, stderr);
        return 2;
    }
    lp_status st;
    if (prev && !images) {
        st = lp_err_set(&err, LP_EUNSUPPORTED, "--prevalence applies to image models (--images)");
    } else if (tab) {
        st = eval_frame(model, tab, &err);
    } else if (text) {
        dx_text_model *m = NULL;
        dx_eval ev;
        st = dx_text_model_load(model, &m, &err);
        if (!st)
            st = dx_text_eval(m, text, flag(argc, argv, "--text-col"),
                              flag(argc, argv, "--label-col"), &ev, &err);
        if (!st) {
            print_metrics(&ev);
            printf("}\n");
        }
        dx_text_model_free(m);
    } else {
        dx_image_model *m = NULL;
        dataset d = {0};
        st = dx_image_model_load(model, &m, &err);
        /* read as the model was trained (channels, size); classes matched by name */
        size_t c, h, w;
        if (!st) {
            dx_image_model_shape(m, &c, &h, &w);
            st = load_images(images, flag(argc, argv, "--labels"), c, h, w, &d, &err);
        }
        const char *names[DX_MAX_CLASSES];
        for (size_t j = 0; !st && j < dx_image_model_classes(m) && j < DX_MAX_CLASSES; j++)
            names[j] = dx_image_model_class(m, j);
        if (!st)
            st = map_classes(&d, images, names, dx_image_model_classes(m), model, &err);
        /* --prevalence: "auto" estimates the class mix of these images (EM, their labels
         * unread), else LABEL=P,... gives it; predictions are re-weighted to it */
        double to[64];
        int iters = 0;
        char source[64] = "given";
        if (!st && prev && strcmp(prev, "auto") == 0) {
            st = dx_prevalence_estimate(m, d.x, d.n, to, &iters, &err);
            snprintf(source, sizeof source, "estimated from %zu unlabeled images", d.n);
        } else if (!st && prev) {
            st = dx_prevalence_parse(m, prev, to, &err);
        }
        if (!st && prev)
            st = dx_image_model_set_prevalence(m, to, source, &err);
        dx_eval ev;
        if (!st)
            st = dx_image_eval(m, d.x, d.y, d.n, &ev, &err);
        if (!st) {
            print_metrics(&ev);
            if (prev) {
                cJSON *o = cJSON_CreateObject();
                for (size_t j = 0; j < dx_image_model_classes(m); j++)
                    cJSON_AddNumberToObject(o, dx_image_model_class(m, j), to[j]);
                char *js = cJSON_PrintUnformatted(o);
                printf(",\"prevalence\":%s,\"prevalence_source\":\"%s\"", js ? js : "{}",
                       strcmp(prev, "auto") == 0 ? "estimated" : "given");
                if (strcmp(prev, "auto") == 0)
                    printf(",\"prevalence_em_iterations\":%d", iters);
                cJSON_free(js);
                cJSON_Delete(o);
            }
            printf("}\n");
        }
        dataset_free(&d);
        dx_image_model_free(m);
    }
    if (st) {
        fprintf(stderr, "lepton-diagnosis eval: %s\n", lp_err_text(&err));
        return 1;
    }
    return 0;
}

static int cmd_verify(int argc, char **argv)
{
    const char *db = flag(argc, argv, "--db");
    if (!db) {
        fputs(USAGE, stderr);
        return 2;
    }
    lp_err err;
    size_t n;
    if (dx_audit_verify(db, &n, &err)) {
        fprintf(stderr, "verify-audit: FAILED: %s\n", lp_err_text(&err));
        return 1;
    }
    printf("verify-audit: %s: %zu rows, chain intact\n", db, n);
    return 0;
}

/* Load path as an image model or, failing that, as a text model. */
static lp_status load_any(const char *path, dx_image_model **img, dx_text_model **txt,
                          lp_err *err)
{
    lp_err e1;
    if (dx_image_model_load(path, img, &e1) == LP_OK)
        return LP_OK;
    if (dx_text_model_load(path, txt, err) == LP_OK)
        return LP_OK;
    return lp_err_set(err, LP_EFORMAT, "%s: neither a diagnosis image model (%s) nor a text "
                      "model (%s)", path, lp_err_text(&e1), lp_err_text(err));
}

static int cmd_serve(int argc, char **argv)
{
    const char *model = flag(argc, argv, "--model"), *db = flag(argc, argv, "--db");
    const char *port = flag(argc, argv, "--port");
    const char *im = flag(argc, argv, "--image-model"), *tm = flag(argc, argv, "--text-model");
    const char *prev = flag(argc, argv, "--prevalence");
    if (!model && !im && !tm) {
        fputs(USAGE, stderr);
        return 2;
    }
    /* one request, one thread: no BLAS pool (it would spin between requests) */
    openblas_set_num_threads(1);
    lp_err err;
    dx_image_model *img = NULL;
    dx_text_model *txt = NULL;
    lp_status st = model ? load_any(model, &img, &txt, &err) : LP_OK;
    if (!st && im && img)
        st = lp_err_set(&err, LP_EINVAL, "two image models (--model and --image-model)");
    if (!st && im)
        st = dx_image_model_load(im, &img, &err);
    if (!st && tm && txt)
        st = lp_err_set(&err, LP_EINVAL, "two text models (--model and --text-model)");
    if (!st && tm)
        st = dx_text_model_load(tm, &txt, &err);
    /* the site's class mix for the image model: given, as "auto" needs a batch of images */
    if (!st && prev && !img)
        st = lp_err_set(&err, LP_EUNSUPPORTED, "--prevalence applies to an image model");
    else if (!st && prev && strcmp(prev, "auto") == 0)
        st = lp_err_set(&err, LP_EINVAL, "--prevalence auto estimates the mix of a batch of "
                        "images (eval); the service takes the site's mix as LABEL=P[,LABEL=P...]");
    if (!st && prev) {
        double to[64];
        st = dx_prevalence_parse(img, prev, to, &err);
        if (!st)
            st = dx_image_model_set_prevalence(img, to, "given (serve --prevalence)", &err);
    }
    dx_service *svc = NULL;
    if (!st)
        st = dx_service_new(img, txt, db ? db : "diagnosis.db", has(argc, argv, "--store-text"),
                            &svc, &err);
    else {
        dx_image_model_free(img);
        dx_text_model_free(txt);
    }
    if (!st && img && txt) {
        size_t shared = dx_service_shared_labels(svc);
        printf("lepton-diagnosis: image and text models share %zu of %zu / %zu labels%s\n",
               shared, dx_image_model_classes(img), dx_text_model_classes(txt),
               shared < 2 ? " (image + text requests will be refused: nothing to fuse)" : "");
    }
    lp_server *srv = NULL;
    lp_server_opts so = lp_server_opts_default();
    so.port = port ? (unsigned)atoi(port) : 8084;
    so.name = "lepton-diagnosis";
    so.threads = 2;
    size_t nr;
    const lp_route *routes = dx_service_routes(&nr);
    if (!st)
        st = lp_server_new(routes, nr, svc, &so, &srv, &err);
    if (!st)
        st = lp_server_start(srv, &err);
    if (!st) {
        char ver[96];
        dx_service_version(svc, ver, sizeof ver);
        lp_server_set_ready(srv, true);
        printf("lepton-diagnosis: %s on http://127.0.0.1:%u\n", ver, lp_server_port(srv));
        fflush(stdout);
        st = lp_server_run_until_signal(srv, &err);
    }
    lp_server_free(srv);
    dx_service_free(svc);
    if (st) {
        fprintf(stderr, "lepton-diagnosis serve: %s\n", lp_err_text(&err));
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    lp_process_tune(argv); /* before any OpenMP: see base.h */
    if (argc < 2 || lp_cli_help_requested(argc, argv)) {
        fputs(USAGE, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    static const char *const train_flags[] = {
        "--images", "--labels", "--channels", "--size", "--epochs", "--text", "--text-col",
        "--label-col", "--encoder", "--finetune", "--ft-epochs", "--ft-steps", "--tabular",
        "--label", "--drop-cols", "--valid", "--valid-labels", "--out", "--device", NULL};
    static const char *const eval_flags[] = {"--model",     "--images",    "--labels",
                                             "--text",      "--text-col",  "--label-col",
                                             "--tabular",   "--prevalence", NULL};
    static const char *const serve_flags[] = {"--model", "--image-model", "--text-model",
                                              "--port", "--db", "--prevalence", NULL};
    static const char *const verify_flags[] = {"--db", NULL};
    static const char *const no_bare[] = {NULL}, *const eval_bare[] = {"--json", NULL};
    static const char *const serve_bare[] = {"--store-text", NULL};
    const struct {
        const char *name;
        int (*fn)(int, char **);
        const char *const *valued, *const *bare;
    } cmds[] = {{"train", cmd_train, train_flags, no_bare},
                {"eval", cmd_eval, eval_flags, eval_bare},
                {"serve", cmd_serve, serve_flags, serve_bare},
                {"verify-audit", cmd_verify, verify_flags, no_bare}};
    const char *cmd = argv[1];
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(cmd, cmds[i].name))
            continue;
        int rc = check_flags(cmd, argc, argv, cmds[i].valued, cmds[i].bare);
        return rc ? rc : cmds[i].fn(argc, argv);
    }
    fprintf(stderr, "lepton-diagnosis: unknown command '%s'\n%s", cmd, USAGE);
    return 2;
}
