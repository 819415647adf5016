/*
 * fraud_model.c - training and scoring of lepton-fraud: replay the history in time order
 * through fraud_state (the exact online feature code), train an lp_model on the features,
 * calibrate (Platt scaling on a later validation period), choose decision thresholds from that
 * period, and at scoring time turn TreeSHAP attributions into reasons in words.
 *
 * The feature configuration, thresholds and calibration travel inside the .lpm file as the
 * extra section "fraud" (JSON), so eval and serve need nothing else. The model's pipeline is a
 * PASSTHROUGH of the feature columns, so the model's design row IS the feature vector: scoring
 * skips the frame machinery (no allocation per request). Features are finite except a missing
 * extra column or text value (NaN), which the gbdt routes by each split's learned default; the
 * linear families see it as the training mean (0 once standardized).
 *
 * Columns: the numeric ones not named by the options are extra features as they are; a text
 * column with at most FRAUD_MAX_TEXT_VALUES distinct values in the training data is a text
 * feature (its sorted value list is saved with the configuration, fraud_text_code maps a value
 * to its index); other text columns are left out and named in a note.
 *
 * Genuine transactions may be subsampled for training (max_genuine); the Platt calibration on
 * the untouched validation period restores probabilities at the real base rate.
 *
 * The monitor's drift reference travels as the extra section "drift" (monitor.h): every feature
 * of the vector over all replayed transactions (raw, before any scaling) and "_score", the
 * calibrated scores of the validation period.
 */
#include "fraud.h"
#include "fraud_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

fraud_train_opts fraud_train_opts_default(void)
{
    return (fraud_train_opts){.valid_days = 7, .review_rate = 0.01, .decline_rate = 0.001,
                              .kind = LP_MODEL_KIND_GBDT, .label_delay_s = 7 * 86400,
                              .max_genuine = 400000, .seed = 42};
}

const char *fraud_decision_name(fraud_decision d)
{
    return d == FRAUD_DECISION_APPROVE ? "approve" : d == FRAUD_DECISION_REVIEW ? "review"
                                                                                : "decline";
}

/* ---- replay -------------------------------------------------------------------------------*/

lp_status fraud_replay(const lp_frame *f, const fraud_feat_opts *o, const char *id_col,
                        const char *time_col, const char *amount_col, const char *label,
                        const char *positive, float **X, int32_t **y, double **t, size_t *kept,
                        double *rate, lp_err *err)
{
    fraud_frame_map map;
    lp_status st = fraud_frame_bind(f, o, id_col, time_col, amount_col, NULL, &map, err);
    if (!st && label)
        st = fraud_frame_bind_label(f, label, positive, &map, NULL, err);
    if (st)
        return st;
    fraud_state *s = NULL;
    if ((st = fraud_state_new(o, &s, err)))
        return st;
    size_t n = lp_frame_nrows(f), d = fraud_state_n_features(s);
    size_t *order = fraud_frame_time_order(f, &map);
    *X = lp_mallocarray(n * d + 1, sizeof(float));
    *y = lp_mallocarray(n + 1, sizeof(int32_t));
    *t = lp_mallocarray(n + 1, sizeof(double));
    if (!order || !*X || !*y || !*t) {
        st = lp_err_set(err, LP_ENOMEM, "replay: out of memory for %zu rows", n);
        goto done;
    }
    size_t k = 0, skipped = 0;
    char buf[FRAUD_ROW_BUF];
    uint64_t t0 = lp_time_ns();
    for (size_t r = 0; r < n; r++) {
        fraud_tx tx;
        fraud_frame_row(f, &map, o, order[r], &tx, buf, sizeof buf);
        if (map.label >= 0 && tx.label < 0) {
            skipped++;
            continue; /* unlabelled rows cannot train; they still are not history here */
        }
        lp_err e2;
        st = fraud_state_step(s, &tx, *X + k * d, &e2);
        if (st == LP_ENOMEM) {
            *err = e2;
            goto done;
        }
        if (st) {
            if (skipped++ < 3)
                lp_log_warn("replay: row %zu skipped: %s", order[r] + 1, lp_err_text(&e2));
            st = LP_OK;
            continue;
        }
        (*y)[k] = tx.label > 0;
        (*t)[k] = tx.time;
        k++;
    }
    double secs = lp_time_since(t0);
    if (rate)
        *rate = secs > 0 ? (double)n / secs : 0;
    if (skipped)
        lp_log_warn("replay: %zu of %zu rows skipped", skipped, n);
    *kept = k;
done:
    free(order);
    fraud_state_free(s);
    if (st) {
        free(*X);
        free(*y);
        free(*t);
        *X = NULL;
        *y = NULL;
        *t = NULL;
    }
    return st;
}

/* ---- calibration and thresholds ------------------------------------------------------------*/

/* Platt scaling (Platt 1999, with the target smoothing and the step-halving Newton method of
 * Lin, Lin & Weng 2007): fit P(y=1|m) = sigmoid(a m + b) on the log-loss. Halving keeps every
 * step a descent step, so (nearly) separable validation data cannot make a, b explode. */
static double platt_loss(const double *m, const int32_t *y, size_t n, double a, double b,
                         double hi, double lo)
{
    double l = 0;
    for (size_t i = 0; i < n; i++) {
        double z = a * m[i] + b, t = y[i] ? hi : lo;
        /* log(1 + e^z) - t z, stable for both signs of z */
        l += (z > 0 ? z + log1p(exp(-z)) : log1p(exp(z))) - t * z;
    }
    return l;
}

static void platt_fit(const double *m, const int32_t *y, size_t n, double *pa, double *pb)
{
    double np = 0;
    for (size_t i = 0; i < n; i++)
        np += y[i];
    double nn = (double)n - np;
    double hi = (np + 1) / (np + 2), lo = 1 / (nn + 2);
    double a = 1, b = 0, f = platt_loss(m, y, n, a, b, hi, lo);
    for (int it = 0; it < 100; it++) {
        double g1 = 0, g2 = 0, h11 = 1e-12, h22 = 1e-12, h21 = 0;
        for (size_t i = 0; i < n; i++) {
            double z = a * m[i] + b, p = 1 / (1 + exp(-z)), t = y[i] ? hi : lo;
            double d = p - t, w = p * (1 - p);
            g1 += d * m[i];
            g2 += d;
            h11 += w * m[i] * m[i];
            h22 += w;
            h21 += w * m[i];
        }
        if (fabs(g1) < 1e-7 && fabs(g2) < 1e-7)
            break;
        double det = h11 * h22 - h21 * h21;
        if (!(fabs(det) > 1e-300))
            break;
        double da = (h22 * g1 - h21 * g2) / det, db = (h11 * g2 - h21 * g1) / det;
        double step = 1;
        bool moved = false;
        while (step > 1e-10) {
            double na = a - step * da, nb = b - step * db;
            double nf = platt_loss(m, y, n, na, nb, hi, lo);
            if (nf < f + 1e-4 * step * (g1 * -da + g2 * -db)) {
                a = na;
                b = nb;
                f = nf;
                moved = true;
                break;
            }
            step /= 2;
        }
        if (!moved)
            break;
    }
    if (!isfinite(a) || !isfinite(b)) {
        a = 1;
        b = 0;
    }
    *pa = a;
    *pb = b;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* The score above which the top `rate` share of s lies (the ceil(rate n)-th largest). */
static double top_threshold(const double *s, size_t n, double rate)
{
    double *c = lp_mallocarray(n + 1, sizeof(double));
    if (!c || n == 0) {
        free(c);
        return 1.0;
    }
    memcpy(c, s, n * sizeof(double));
    qsort(c, n, sizeof(double), cmp_desc);
    size_t m = (size_t)ceil(rate * (double)n - 1e-9);
    if (m < 1)
        m = 1;
    if (m > n)
        m = n;
    double t = c[m - 1];
    free(c);
    return t;
}

/* ---- training --------------------------------------------------------------------------- */

static lp_frame *features_frame(const float *X, const int32_t *y, const size_t *rows,
                                size_t n, size_t d, char *const *names, lp_err *err)
{
    lp_frame *f = lp_frame_new();
    double *col = lp_mallocarray(n + 1, sizeof(double));
    lp_status st = f && col ? LP_OK : lp_err_set(err, LP_ENOMEM, "out of memory");
    for (size_t j = 0; !st && j < d; j++) {
        for (size_t i = 0; i < n; i++)
            col[i] = X[rows[i] * d + j];
        st = lp_frame_add_numeric(f, names[j], LP_COL_KIND_FLOAT, col, NULL, n, err);
    }
    for (size_t i = 0; !st && i < n; i++)
        col[i] = y[rows[i]];
    if (!st)
        st = lp_frame_add_numeric(f, "__label", LP_COL_KIND_INTEGER, col, NULL, n, err);
    free(col);
    if (st) {
        lp_frame_free(f);
        return NULL;
    }
    return f;
}

#define DRIFT_REF_ROWS 200000

/* A drift reference (monitor.h) over the d features of X (n, d): one numeric feature per name,
 * fitted on at most DRIFT_REF_ROWS rows taken with a fixed stride (deterministic). */
static lp_status drift_reference(const float *X, size_t n, size_t d, char *const *names,
                                 lp_drift **out, lp_err *err)
{
    *out = NULL;
    size_t stride = n > DRIFT_REF_ROWS ? (n + DRIFT_REF_ROWS - 1) / DRIFT_REF_ROWS : 1;
    size_t m = n ? (n + stride - 1) / stride : 0;
    lp_frame *empty = lp_frame_new();
    double *col = lp_mallocarray(m + 1, sizeof(double));
    lp_drift *dr = NULL;
    lp_status st = empty && col ? lp_drift_fit(empty, &dr, err)
                                : lp_err_set(err, LP_ENOMEM, "train: out of memory");
    for (size_t j = 0; !st && j < d; j++) {
        for (size_t i = 0; i < m; i++)
            col[i] = X[i * stride * d + j];
        st = lp_drift_add_numeric(dr, names[j], col, m, err);
    }
    free(col);
    lp_frame_free(empty);
    if (st) {
        lp_drift_free(dr);
        return st;
    }
    *out = dr;
    return LP_OK;
}

/* A line for the user: logged at info and appended to rep (may be NULL). */
static void note(fraud_train_report *rep, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    lp_log_info("train: %s", line);
    if (rep) {
        size_t used = strlen(rep->notes);
        if (used + 1 < sizeof rep->notes)
            snprintf(rep->notes + used, sizeof rep->notes - used, "%s\n", line);
    }
}

static bool is_feature(const lp_column *c)
{
    return c->type == LP_COL_TYPE_NUMERIC && c->kind != LP_COL_KIND_DATETIME;
}

/* Whether column c is one of the columns the options name (label, time, amount, id, entities,
 * --drop-cols): those are never extra features. */
static bool named(const lp_column *c, const fraud_train_opts *o)
{
    bool skip = !strcmp(c->name, o->label) || (o->time_col && !strcmp(c->name, o->time_col)) ||
                (o->amount_col && !strcmp(c->name, o->amount_col)) ||
                (o->id_col && !strcmp(c->name, o->id_col));
    for (size_t e = 0; e < o->n_entity; e++)
        skip = skip || !strcmp(c->name, o->entity_cols[e]);
    for (size_t k = 0; k < o->n_drop; k++)
        skip = skip || !strcmp(c->name, o->drop[k]);
    return skip;
}

/* Names of features this app derives whatever the file holds (fraud_feature_names); a column of
 * the same name cannot be a feature as well. */
static bool derived_name(const char *name)
{
    return !strcmp(name, "amount") || !strcmp(name, "hour") || !strcmp(name, "weekday") ||
           strchr(name, ':');
}

/* Without --amount-col, the one column called "amount" (lp_frame_find_like: any case, '_' and
 * '-' ignored), else the one called like a transaction amount in public fraud data (Sparkov's
 * amt, IEEE-CIS' TransactionAmt, the handbook's tx_amount), is the amount: NULL when there is
 * none or several, or the one found is not a numeric column free for a feature. */
static const char *guess_amount(const lp_frame *f, const fraud_train_opts *o)
{
    static const char *const tiers[2][8] = {
        {"amount", NULL},
        {"amt", "txamount", "txnamount", "transamount", "transactionamount", "transactionamt",
         "amountusd", NULL}};
    for (int t = 0; t < 2; t++) {
        long j = lp_frame_find_like(f, tiers[t]);
        const lp_column *c = j >= 0 ? lp_frame_col(f, (size_t)j) : NULL;
        if (c)
            return is_feature(c) && !named(c, o) ? c->name : NULL;
    }
    return NULL;
}

/* Without --time-col, the one date-time column (text the reader parsed as dates), or among
 * several the one whose name says time or date (Sparkov's trans_date_trans_time beside dob):
 * NULL when there is none or no single one. Numeric times are not guessed (their unit is). */
static const char *guess_time(const lp_frame *f, const fraud_train_opts *o)
{
    const char *any = NULL, *named_t = NULL;
    size_t n_any = 0, n_named = 0;
    for (size_t j = 0; j < lp_frame_ncols(f); j++) {
        const lp_column *c = lp_frame_col(f, j);
        if (c->kind != LP_COL_KIND_DATETIME || named(c, o))
            continue;
        any = c->name, n_any++;
        if (strcasestr(c->name, "time") || strcasestr(c->name, "date"))
            named_t = c->name, n_named++;
    }
    return n_any == 1 ? any : n_named == 1 ? named_t : NULL;
}

/* Append "'name' (why)" to a list of columns in buf (a comma before all but the first). */
static void list_col(char *buf, size_t cap, size_t *used, size_t *count, const char *fmt, ...)
{
    if (*used + 1 < cap) {
        char item[256];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(item, sizeof item, fmt, ap);
        va_end(ap);
        int w = snprintf(buf + *used, cap - *used, "%s%s", *count ? ", " : "", item);
        *used = w > 0 && *used + (size_t)w < cap ? *used + (size_t)w : cap - 1;
    }
    (*count)++;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Whether text column c can be a text feature: at most FRAUD_MAX_TEXT_VALUES distinct values,
 * each shorter than 64 bytes, a name shorter than 64 bytes. Else why not, in why. */
static bool text_feature_ok(const lp_column *c, char *why, size_t cap)
{
    if (c->type != LP_COL_TYPE_CATEGORICAL) {
        snprintf(why, cap, "%s", lp_col_kind_name(c->kind));
        return false;
    }
    if (c->n_dict > FRAUD_MAX_TEXT_VALUES) {
        snprintf(why, cap, "text, %zu values; at most %d make a feature", c->n_dict,
                 FRAUD_MAX_TEXT_VALUES);
        return false;
    }
    if (c->n_dict == 0) {
        snprintf(why, cap, "text, no values");
        return false;
    }
    for (size_t d = 0; d < c->n_dict; d++)
        if (strlen(c->dict[d]) >= 64) {
            snprintf(why, cap, "text, the value '%.20s...' is longer than 63 bytes",
                     c->dict[d]);
            return false;
        }
    if (strlen(c->name) >= 64) {
        snprintf(why, cap, "text, its name is longer than 63 bytes");
        return false;
    }
    return true;
}

/* Text column c as text feature k of fo: its values sorted (strcmp), so the codes depend only
 * on the set of values, not on their order in the file. */
static lp_status add_text(const lp_column *c, fraud_feat_opts *fo, lp_err *err)
{
    const char **v = lp_mallocarray(c->n_dict + 1, sizeof(char *));
    if (!v)
        return lp_err_set(err, LP_ENOMEM, "train: out of memory");
    memcpy(v, c->dict, c->n_dict * sizeof(char *));
    qsort(v, c->n_dict, sizeof(char *), cmp_str);
    size_t k = fo->n_text++;
    snprintf(fo->text[k], sizeof fo->text[k], "%s", c->name);
    fo->n_values[k] = c->n_dict;
    for (size_t d = 0; d < c->n_dict; d++)
        snprintf(fo->values[k][d], sizeof fo->values[k][d], "%s", v[d]);
    free(v);
    return LP_OK;
}

/* The other numeric columns become extra features, text columns of few values text features;
 * the rest are named in a note. */
static lp_status pick_extras(const lp_frame *f, const fraud_train_opts *o, fraud_feat_opts *fo,
                             fraud_train_report *rep, lp_err *err)
{
    char left[1024] = "", texts[1024] = "", why[128];
    size_t n_left = 0, n_num = 0, used = 0, used_t = 0, n_t = 0;
    for (size_t j = 0; j < lp_frame_ncols(f); j++) {
        const lp_column *c = lp_frame_col(f, j);
        if (named(c, o))
            continue;
        bool ok = is_feature(c) || text_feature_ok(c, why, sizeof why);
        if (ok && derived_name(c->name)) /* a column that would be a feature */
            return lp_err_set(err, LP_EINVAL,
                              "train: column '%s' has the name of a feature lepton-fraud derives "
                              "(amount, hour, weekday, ENTITY:...)%s: leave it out with "
                              "--drop-cols %s%s",
                              c->name, !strcmp(c->name, "amount") ? " and of the request's "
                              "amount field" : "", c->name,
                              !strcmp(c->name, "amount") ? ", or make it the --amount-col"
                                                         : ", or rename it");
        if (is_feature(c)) {
            n_num++;
            continue;
        }
        if (ok && fo->n_text < FRAUD_MAX_TEXT) {
            lp_status st = add_text(c, fo, err);
            if (st)
                return st;
            list_col(texts, sizeof texts, &used_t, &n_t, "'%s' (%zu values)", c->name,
                     c->n_dict);
            continue;
        }
        if (ok)
            snprintf(why, sizeof why, "text; %d text features at most", FRAUD_MAX_TEXT);
        list_col(left, sizeof left, &used, &n_left, "'%s' (%s)", c->name, why);
    }
    if (n_num > FRAUD_MAX_EXTRA)
        return lp_err_set(err, LP_EINVAL, "train: %zu numeric feature columns, at most %d: "
                          "leave %zu of them out with --drop-cols A,B,...", n_num,
                          FRAUD_MAX_EXTRA, n_num - FRAUD_MAX_EXTRA);
    for (size_t j = 0; j < lp_frame_ncols(f); j++) {
        const lp_column *c = lp_frame_col(f, j);
        if (named(c, o) || !is_feature(c))
            continue;
        if (strlen(c->name) >= sizeof fo->extra[0])
            return lp_err_set(err, LP_EINVAL, "train: column name '%.40s...' too long (at most "
                              "%zu bytes)", c->name, sizeof fo->extra[0] - 1);
        snprintf(fo->extra[fo->n_extra++], sizeof fo->extra[0], "%s", c->name);
    }
    if (n_t)
        note(rep, "%zu text column%s fed to the model as the index of the value in its list "
             "(values not seen in training count as missing): %s", n_t, n_t == 1 ? "" : "s",
             texts);
    if (n_left)
        note(rep, "%zu column%s left out of the model (numbers and text columns of at most %d "
             "values are features; --drop-cols silences this): %s", n_left,
             n_left == 1 ? "" : "s", FRAUD_MAX_TEXT_VALUES, left);
    return LP_OK;
}

static const char *unit_name(double s)
{
    return s == 1 ? "seconds" : s == 1e-3 ? "milliseconds" : s == 3600 ? "hours"
                              : s == 86400 ? "days" : "custom units";
}

/* The unit of a numeric time column: o->time_unit_s when given, else epoch milliseconds when
 * every value is one (1e11 ms is 1973; 1e11 s would be the year 5138), else seconds. */
static double time_unit(const lp_frame *f, const fraud_train_opts *o, fraud_train_report *rep)
{
    long j = o->time_col ? lp_frame_find(f, o->time_col) : -1;
    const lp_column *c = j >= 0 ? lp_frame_col(f, (size_t)j) : NULL;
    if (o->time_unit_s > 0 || !c || !is_feature(c))
        return o->time_unit_s > 0 ? o->time_unit_s : 1.0;
    double lo = INFINITY, hi = -INFINITY;
    for (size_t i = 0; i < c->n; i++)
        if (!c->missing[i] && isfinite(c->num[i])) {
            lo = fmin(lo, c->num[i]);
            hi = fmax(hi, c->num[i]);
        }
    if (lo > 1e11 && hi < 1e14) {
        note(rep, "time column '%s' read as epoch milliseconds (values %.4g .. %.4g); pass "
             "--time-unit s if they are seconds", o->time_col, lo, hi);
        return 1e-3;
    }
    return 1.0;
}

cJSON *fraud_config_to_json(const fraud_config *c)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddItemToObject(j, "features", fraud_feat_opts_to_json(&c->feat));
    cJSON_AddNumberToObject(j, "review_threshold", c->review_threshold);
    cJSON_AddNumberToObject(j, "decline_threshold", c->decline_threshold);
    cJSON_AddNumberToObject(j, "platt_a", c->platt_a);
    cJSON_AddNumberToObject(j, "platt_b", c->platt_b);
    cJSON_AddStringToObject(j, "version", c->version);
    cJSON_AddStringToObject(j, "id_col", c->id_col);
    cJSON_AddStringToObject(j, "time_col", c->time_col);
    cJSON_AddStringToObject(j, "amount_col", c->amount_col);
    cJSON_AddStringToObject(j, "label", c->label);
    cJSON_AddStringToObject(j, "positive_label", c->positive_label);
    if (c->n_scale) {
        cJSON *a = cJSON_AddArrayToObject(j, "center"), *b = cJSON_AddArrayToObject(j, "scale");
        for (size_t i = 0; i < c->n_scale; i++) {
            cJSON_AddItemToArray(a, cJSON_CreateNumber(c->center[i]));
            cJSON_AddItemToArray(b, cJSON_CreateNumber(c->scale[i]));
        }
    }
    return j;
}

static lp_status config_from_json(const cJSON *j, fraud_config *c, lp_err *err)
{
    memset(c, 0, sizeof *c);
    lp_status st = fraud_feat_opts_from_json(cJSON_GetObjectItem(j, "features"), &c->feat, err);
    if (st)
        return st;
    static const char *const nums[] = {"review_threshold", "decline_threshold", "platt_a",
                                       "platt_b"};
    double *dst[] = {&c->review_threshold, &c->decline_threshold, &c->platt_a, &c->platt_b};
    for (size_t i = 0; i < 4; i++) {
        const cJSON *v = cJSON_GetObjectItem(j, nums[i]);
        if (!cJSON_IsNumber(v))
            return lp_err_set(err, LP_EFORMAT, "fraud config: '%s' missing", nums[i]);
        *dst[i] = v->valuedouble;
    }
    static const char *const strs[] = {"version",    "id_col", "time_col",
                                       "amount_col", "label",  "positive_label"};
    char *sd[] = {c->version, c->id_col, c->time_col, c->amount_col, c->label, c->positive_label};
    for (size_t i = 0; i < 6; i++) {
        const cJSON *v = cJSON_GetObjectItem(j, strs[i]);
        if (cJSON_IsString(v))
            snprintf(sd[i], 64, "%s", v->valuestring);
    }
    const cJSON *a = cJSON_GetObjectItem(j, "center"), *b = cJSON_GetObjectItem(j, "scale");
    if (cJSON_IsArray(a) && cJSON_IsArray(b)) {
        size_t n = (size_t)cJSON_GetArraySize(a);
        if ((size_t)cJSON_GetArraySize(b) != n || n == 0 || n > 4096)
            return lp_err_set(err, LP_EFORMAT, "fraud config: center / scale sizes differ");
        c->center = lp_calloc(n, sizeof(double));
        c->scale = lp_calloc(n, sizeof(double));
        if (!c->center || !c->scale)
            return lp_err_set(err, LP_ENOMEM, "out of memory");
        c->n_scale = n;
        for (size_t i = 0; i < n; i++) {
            const cJSON *ca = cJSON_GetArrayItem(a, (int)i), *cb = cJSON_GetArrayItem(b, (int)i);
            if (!cJSON_IsNumber(ca) || !cJSON_IsNumber(cb) || !(cb->valuedouble > 0))
                return lp_err_set(err, LP_EFORMAT, "fraud config: bad center / scale %zu", i);
            c->center[i] = ca->valuedouble;
            c->scale[i] = cb->valuedouble;
        }
    }
    return LP_OK;
}

lp_status fraud_train(const lp_frame *train, const fraud_train_opts *o, fraud_train_report *rep,
                      lp_model **out, lp_err *err)
{
    *out = NULL;
    if (rep)
        rep->notes[0] = 0, rep->valid_auprc = NAN;
    if (!o->label)
        return lp_err_set(err, LP_EINVAL, "train: --label is required");
    fraud_config cfg;
    memset(&cfg, 0, sizeof cfg);
    fraud_feat_opts *fo = &cfg.feat;
    *fo = fraud_feat_opts_default();
    fo->label_delay_s = o->label_delay_s;
    fraud_train_opts guessed = *o;
    if (!o->amount_col && (guessed.amount_col = guess_amount(train, o)))
        note(rep, "the column '%s' is the transaction amount (as --amount-col %s)",
             guessed.amount_col, guessed.amount_col);
    if (!o->time_col && (guessed.time_col = guess_time(train, o)))
        note(rep, "the column '%s' is the transaction time (as --time-col %s)",
             guessed.time_col, guessed.time_col);
    o = &guessed;
    if (o->time_col && o->n_entity == 0)
        note(rep, "no --entity-cols: no velocity features (each card's or customer's count, sum "
             "and fraud rate over time); name the id columns of cards, customers or terminals "
             "to add them");
    fo->velocity = o->time_col && o->n_entity > 0;
    if (o->n_entity > FRAUD_MAX_ENTITIES)
        return lp_err_set(err, LP_EINVAL, "train: %zu entity columns, at most %d", o->n_entity,
                          FRAUD_MAX_ENTITIES);
    for (size_t e = 0; fo->velocity && e < o->n_entity; e++)
        snprintf(fo->entity[fo->n_entities++], sizeof fo->entity[0], "%s", o->entity_cols[e]);
    lp_status st = pick_extras(train, o, fo, rep, err);
    fo->time_unit_s = time_unit(train, o, rep);
    if (!st)
        st = fraud_feat_opts_check(fo, err);
    fraud_frame_map lmap;
    if (st)
        return st;
    if ((st = fraud_frame_bind_label(train, o->label, o->positive_label, &lmap,
                                     cfg.positive_label, err)))
        return lp_err_prefix(err, "train");
    if (lmap.label_mode == FRAUD_LABEL_CODE && !(o->positive_label && o->positive_label[0]))
        note(rep, "label '%s': the value '%s' means fraud; pass --positive-label to choose",
             o->label, cfg.positive_label);
    snprintf(cfg.id_col, sizeof cfg.id_col, "%s", o->id_col ? o->id_col : "");
    snprintf(cfg.time_col, sizeof cfg.time_col, "%s", o->time_col ? o->time_col : "");
    snprintf(cfg.amount_col, sizeof cfg.amount_col, "%s", o->amount_col ? o->amount_col : "");
    snprintf(cfg.label, sizeof cfg.label, "%s", o->label);

    float *X = NULL;
    int32_t *y = NULL;
    double *t = NULL, rate = 0;
    size_t n = 0, d = 0;
    char **names = fraud_feature_names(fo, &d);
    if (!names)
        return lp_err_set(err, LP_ENOMEM, "train: out of memory");
    st = fraud_replay(train, fo, o->id_col, o->time_col, o->amount_col, o->label,
                      cfg.positive_label, &X, &y, &t, &n, &rate, err);
    if (st) {
        fraud_names_free(names, d);
        return st;
    }
    lp_log_info("train: replayed %zu transactions (%.0f tx/s), %zu features", n, rate, d);
    /* a numeric time whose span is implausible in the unit used: say so with every error */
    char uhint[240] = "";
    long tj = o->time_col ? lp_frame_find(train, o->time_col) : -1;
    double span_d = n > 1 ? (t[n - 1] - t[0]) / 86400.0 : 0;
    if (tj >= 0 && is_feature(lp_frame_col(train, (size_t)tj)) && n > 1 &&
        (span_d < 1 || span_d > 3650)) {
        snprintf(uhint, sizeof uhint, "; the time column '%s' read as %s spans %.3g days: is it "
                 "in %s? see --time-unit s|ms|h|d", o->time_col, unit_name(fo->time_unit_s),
                 span_d, span_d < 1 ? "hours or days" : "milliseconds");
        note(rep, "%s", uhint + 2);
    }
    /* validation: the last valid_days of time (time order) when that leaves at least half the
     * rows for training, else the last 20% of rows in time order */
    size_t cut = n - n / 5;
    bool by_rows = true;
    if (o->time_col && n) {
        double tv = t[n - 1] - o->valid_days * 86400.0;
        size_t c2 = 0;
        while (c2 < n && t[c2] < tv)
            c2++;
        if (c2 >= n / 2 && c2 > 0) {
            cut = c2;
            by_rows = false;
        } else {
            note(rep, "validation: the last 20%% of rows in time order (%zu rows), since the "
                 "data spans %.3g days and the last %g days (--valid-days) hold %zu of its %zu "
                 "rows", n - cut, span_d, o->valid_days, n - c2, n);
        }
    } else if (n) {
        note(rep, "validation: the last 20%% of rows%s (%zu rows)",
             o->time_col ? " in time order" : " in file order (no --time-col)", n - cut);
    }
    size_t *tr = lp_mallocarray(n + 1, sizeof(size_t)), *va = lp_mallocarray(n + 1,
                                                                               sizeof(size_t));
    lp_frame *ftr = NULL, *fva = NULL;
    lp_drift *drift = NULL;
    lp_model *m = NULL;
    lp_pipeline *pipe = NULL;
    lp_params *params = NULL;
    double *vm = NULL;
    if (!tr || !va) {
        st = lp_err_set(err, LP_ENOMEM, "train: out of memory");
        goto done;
    }
    size_t ntr = 0, nva = 0, ngen = 0, npos_tr = 0, npos_va = 0;
    for (size_t i = 0; i < cut; i++)
        ngen += !y[i];
    double keep = ngen > o->max_genuine && o->max_genuine ? (double)o->max_genuine / ngen : 1.0;
    lp_rng rng;
    lp_rng_seed(&rng, o->seed);
    for (size_t i = 0; i < cut; i++)
        if (y[i] || keep >= 1.0 || lp_rng_uniform(&rng) < keep) {
            tr[ntr++] = i;
            npos_tr += y[i] != 0;
        }
    for (size_t i = cut; i < n; i++) {
        va[nva++] = i;
        npos_va += y[i] != 0;
    }
    if (ntr == 0 || npos_tr == 0 || npos_tr == ntr) {
        st = lp_err_set(err, LP_EINVAL, "train: the training period (%zu rows, %zu fraud) needs "
                        "both classes of '%s'%s", ntr, npos_tr, o->label, uhint);
        goto done;
    }
    if (nva < 20 || npos_va == 0 || npos_va == nva) {
        char what[64];
        if (by_rows)
            snprintf(what, sizeof what, "last 20%% of rows");
        else
            snprintf(what, sizeof what, "last %g days", o->valid_days);
        st = lp_err_set(err, LP_EINVAL, "train: the validation period (%s, %zu rows, %zu fraud) "
                        "needs at least 20 rows and both classes of '%s'%s%s", what, nva, npos_va,
                        o->label, by_rows ? "" : "; change --valid-days", uhint);
        goto done;
    }
    lp_log_info("train: %zu training rows (genuine kept with p=%.3f), %zu validation rows", ntr,
                keep, nva);
    /* the monitor's drift reference: the raw features (before any scaling) of every replayed
     * transaction, at most DRIFT_REF_ROWS of them by a fixed stride; the score is added below */
    if ((st = drift_reference(X, n, d, names, &drift, err)))
        goto done;
    if (o->kind != LP_MODEL_KIND_GBDT) {
        /* (d,) mean and standard deviation over the training rows, applied to all rows */
        cfg.center = lp_calloc(d, sizeof(double));
        cfg.scale = lp_calloc(d, sizeof(double));
        if (!cfg.center || !cfg.scale) {
            st = lp_err_set(err, LP_ENOMEM, "out of memory");
            goto done;
        }
        cfg.n_scale = d;
        /* over the present values; a missing one (NaN) becomes the mean, 0 after scaling */
        size_t *cnt = lp_calloc(d, sizeof(size_t));
        if (!cnt) {
            st = lp_err_set(err, LP_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < ntr; i++)
            for (size_t j = 0; j < d; j++)
                if (!isnan(X[tr[i] * d + j])) {
                    cfg.center[j] += X[tr[i] * d + j];
                    cnt[j]++;
                }
        for (size_t j = 0; j < d; j++)
            cfg.center[j] = cnt[j] ? cfg.center[j] / (double)cnt[j] : 0.0;
        for (size_t i = 0; i < ntr; i++)
            for (size_t j = 0; j < d; j++)
                if (!isnan(X[tr[i] * d + j])) {
                    double z = X[tr[i] * d + j] - cfg.center[j];
                    cfg.scale[j] += z * z;
                }
        for (size_t j = 0; j < d; j++) {
            cfg.scale[j] = cnt[j] ? sqrt(cfg.scale[j] / (double)cnt[j]) : 1.0;
            if (!(cfg.scale[j] > 1e-12))
                cfg.scale[j] = 1.0;
        }
        free(cnt);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                X[i * d + j] = isnan(X[i * d + j])
                                   ? 0.0f
                                   : (float)((X[i * d + j] - cfg.center[j]) / cfg.scale[j]);
    }
    if (!(ftr = features_frame(X, y, tr, ntr, d, names, err)) ||
        !(fva = features_frame(X, y, va, nva, d, names, err))) {
        st = err ? err->status : LP_ENOMEM;
        goto done;
    }
    pipe = lp_pipeline_new();
    lp_step_opts so = lp_step_opts_default(LP_STEP_KIND_PASSTHROUGH);
    if (!pipe || (st = lp_pipeline_add(pipe, (const char *const *)names, d, &so, err))) {
        st = st ? st : lp_err_set(err, LP_ENOMEM, "out of memory");
        goto done;
    }
    params = o->params ? lp_params_clone(o->params) : lp_params_new();
    if (!params) {
        st = lp_err_set(err, LP_ENOMEM, "out of memory");
        goto done;
    }
    if (o->kind == LP_MODEL_KIND_GBDT) {
        /* Shallow trees: TreeSHAP runs on every request and costs O(T L D^2); on the
         * handbook data depth 4 / 150 rounds matched 300 rounds of 15-leaf unbounded-depth
         * trees in validation AUPRC (0.783 both) at a fraction of the explanation cost.
         * Learning rate 0.1 (was 0.2), still at most 150 rounds: on sets of ~10k rows, early
         * stopping on the validation log-loss stopped the larger step after 12-55 trees; the
         * smaller one keeps 2-4x as many (test AUPRC +0.02 to +0.04), and on the handbook 150
         * rounds of 0.1 beat 0.2 too. 300 rounds doubled TreeSHAP and broke issue 6's p99 <
         * 50 us in process (bench/RESULTS.md "fraud: learning rate 0.1").
         * min_child_weight 1 (XGBoost's default, against libcore's 1e-3): with 1% fraud a
         * leaf of a few genuine rows has a hessian near 0 and an extreme value; bench/RESULTS.md
         * "fraud on look-alike data". */
        static const char *const defs[][2] = {{"n_rounds", "150"}, {"learning_rate", "0.1"},
                                              {"max_leaves", "15"}, {"max_depth", "4"},
                                              {"early_stopping_rounds", "50"},
                                              {"min_child_weight", "1"},
                                              {"task", "classification"}};
        for (size_t i = 0; i < sizeof defs / sizeof defs[0] && !st; i++)
            if (!lp_params_get(params, defs[i][0]))
                st = lp_params_set(params, defs[i][0], defs[i][1], err);
    }
    if (!st && o->threads > 0)
        st = lp_params_set_double(params, "threads", o->threads, err);
    if (st)
        goto done;
    lp_train_opts to = lp_train_opts_default();
    to.kind = o->kind;
    to.label = "__label";
    to.params = params;
    to.pipeline = pipe;
    to.seed = o->seed;
    to.data_name = o->data_name;
    if ((st = lp_model_train(ftr, fva, &to, &m, err)))
        goto done;
    /* calibration and thresholds on the validation period, from the scoring path itself */
    lp_explainer *ex = NULL;
    if ((st = lp_explainer_new(m, &ex, err)))
        goto done;
    vm = lp_mallocarray(nva + 1, sizeof(double));
    int32_t *vy = lp_mallocarray(nva + 1, sizeof(int32_t));
    if (!vm || !vy) {
        free(vy);
        lp_explainer_free(ex);
        st = lp_err_set(err, LP_ENOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nva; i++) {
        lp_explainer_margin(ex, X + va[i] * d, &vm[i]);
        vy[i] = y[va[i]];
    }
    lp_explainer_free(ex);
    platt_fit(vm, vy, nva, &cfg.platt_a, &cfg.platt_b);
    for (size_t i = 0; i < nva; i++)
        vm[i] = 1 / (1 + exp(-(cfg.platt_a * vm[i] + cfg.platt_b)));
    if (rep && lp_metrics_average_precision(vy, vm, nva, &rep->valid_auprc, NULL))
        rep->valid_auprc = NAN;
    cfg.decline_threshold = top_threshold(vm, nva, o->decline_rate);
    if (o->target_fpr > 0) {
        double rec;
        st = lp_metrics_recall_at_fpr(vy, vm, nva, o->target_fpr, &rec,
                                      &cfg.review_threshold, err);
        if (!st && !isfinite(cfg.review_threshold))
            cfg.review_threshold = 1.0;
    } else {
        cfg.review_threshold = top_threshold(vm, nva, o->review_rate);
    }
    free(vy);
    if (st)
        goto done;
    if (cfg.decline_threshold < cfg.review_threshold)
        cfg.decline_threshold = cfg.review_threshold;
    snprintf(cfg.version, sizeof cfg.version, "fraud-%.0f", lp_time_wall());
    const char *sde = getenv("SOURCE_DATE_EPOCH");
    if (sde)
        snprintf(cfg.version, sizeof cfg.version, "fraud-%s", sde);
    cJSON *cj = fraud_config_to_json(&cfg);
    char *txt = cJSON_PrintUnformatted(cj);
    cJSON_Delete(cj);
    if (!txt) {
        st = lp_err_set(err, LP_ENOMEM, "out of memory");
        goto done;
    }
    st = lp_model_set_extra(m, "fraud", txt, strlen(txt), err);
    free(txt);
    /* the score reference: the calibrated validation scores, as the service reports them */
    if (!st)
        st = lp_drift_add_numeric(drift, "_score", vm, nva, err);
    if (!st) {
        lp_buf b;
        lp_buf_init(&b);
        st = lp_drift_save(drift, &b, err);
        if (!st)
            st = lp_model_set_extra(m, "drift", b.data, b.len, err);
        lp_buf_free(&b);
    }
    lp_log_info("train: review threshold %.4f, decline threshold %.4f (Platt a=%.3f b=%.3f)",
                cfg.review_threshold, cfg.decline_threshold, cfg.platt_a, cfg.platt_b);
done:
    lp_drift_free(drift);
    free(cfg.center);
    free(cfg.scale);
    free(vm);
    free(tr);
    free(va);
    free(X);
    free(y);
    free(t);
    lp_frame_free(ftr);
    lp_frame_free(fva);
    lp_pipeline_free(pipe);
    lp_params_free(params);
    fraud_names_free(names, d);
    if (st) {
        lp_model_free(m);
        return st;
    }
    *out = m;
    return LP_OK;
}

/* ---- scorer ---------------------------------------------------------------------------------*/
struct fraud_scorer {
    lp_model *model;
    lp_explainer *ex;
    fraud_config cfg;
    char **names;
    size_t d;
};

lp_status fraud_scorer_new(lp_model *m, fraud_scorer **out, lp_err *err)
{
    *out = NULL;
    const void *data;
    size_t len;
    lp_status st = lp_model_get_extra(m, "fraud", &data, &len, err);
    if (st)
        return lp_err_set(err, LP_EFORMAT, "model has no 'fraud' section: train it with "
                          "lepton-fraud train");
    cJSON *j = cJSON_ParseWithLength(data, len);
    if (!j)
        return lp_err_set(err, LP_EFORMAT, "model's 'fraud' section is not valid JSON");
    fraud_scorer *sc = lp_calloc(1, sizeof *sc);
    if (!sc) {
        cJSON_Delete(j);
        return lp_err_set(err, LP_ENOMEM, "out of memory");
    }
    st = config_from_json(j, &sc->cfg, err);
    cJSON_Delete(j);
    if (!st)
        st = lp_explainer_new(m, &sc->ex, err);
    if (!st) {
        sc->names = fraud_feature_names(&sc->cfg.feat, &sc->d);
        if (!sc->names)
            st = lp_err_set(err, LP_ENOMEM, "out of memory");
    }
    if (!st && sc->d != lp_explainer_n_features(sc->ex))
        st = lp_err_set(err, LP_EFORMAT, "model has %zu features, its fraud configuration %zu",
                        lp_explainer_n_features(sc->ex), sc->d);
    for (size_t j2 = 0; !st && j2 < sc->d; j2++) {
        const char *nm = lp_explainer_feature_name(sc->ex, j2);
        if (!nm || strcmp(nm, sc->names[j2]))
            st = lp_err_set(err, LP_EFORMAT, "model feature %zu is '%s', expected '%s'", j2,
                            nm ? nm : "", sc->names[j2]);
    }
    if (!st && sc->cfg.n_scale && sc->cfg.n_scale != sc->d)
        st = lp_err_set(err, LP_EFORMAT, "fraud config: %zu scales for %zu features",
                        sc->cfg.n_scale, sc->d);
    if (st) {
        lp_explainer_free(sc->ex);
        fraud_names_free(sc->names, sc->d);
        free(sc->cfg.center);
        free(sc->cfg.scale);
        free(sc);
        return st;
    }
    sc->model = m;
    *out = sc;
    return LP_OK;
}

void fraud_scorer_free(fraud_scorer *sc)
{
    if (!sc)
        return;
    lp_explainer_free(sc->ex);
    fraud_names_free(sc->names, sc->d);
    lp_model_free(sc->model);
    free(sc->cfg.center);
    free(sc->cfg.scale);
    free(sc);
}

const fraud_config *fraud_scorer_config(const fraud_scorer *sc) { return &sc->cfg; }
const lp_model *fraud_scorer_model(const fraud_scorer *sc) { return sc->model; }
const lp_explainer *fraud_scorer_explainer(const fraud_scorer *sc) { return sc->ex; }
const char *const *fraud_scorer_names(const fraud_scorer *sc, size_t *d)
{
    *d = sc->d;
    return (const char *const *)sc->names;
}

/* The model's input for x: x itself for trees, standardized for linear families. */
static const float *model_input(const fraud_scorer *sc, const float *x, float *buf)
{
    if (!sc->cfg.n_scale)
        return x;
    for (size_t j = 0; j < sc->d; j++) /* missing: the training mean, as in fraud_train */
        buf[j] = isnan(x[j]) ? 0.0f : (float)((x[j] - sc->cfg.center[j]) / sc->cfg.scale[j]);
    return buf;
}

static double calibrate(const fraud_scorer *sc, double margin)
{
    return 1 / (1 + exp(-(sc->cfg.platt_a * margin + sc->cfg.platt_b)));
}

double fraud_scorer_score(const fraud_scorer *sc, const float *x)
{
    double m[1];
    float buf[FRAUD_MAX_FEATURES];
    lp_explainer_margin(sc->ex, model_input(sc, x, buf), m);
    return calibrate(sc, m[0]);
}

/* The first n bytes of s (at most cap - 1) as a string in out: a copy without printf, which
 * is slow in this process (libquadmath's printf hooks force glibc's positional path). */
static void copy_str(char *out, size_t cap, const char *s, size_t n)
{
    n = n < cap ? n : cap - 1;
    memcpy(out, s, n);
    out[n] = 0;
}

double fraud_scorer_explain(const fraud_scorer *sc, lp_explain_ws *ws, const float *x,
                            fraud_reason *reasons, size_t *n_reasons)
{
    double phi[FRAUD_MAX_FEATURES];
    float buf[FRAUD_MAX_FEATURES];
    double margin = 0;
    *n_reasons = 0;
    if (lp_explainer_row(sc->ex, ws, model_input(sc, x, buf), 0, phi, &margin, NULL))
        return fraud_scorer_score(sc, x);
    /* top positive contributions (risk-raising), largest first */
    size_t top[FRAUD_MAX_REASONS];
    size_t k = 0;
    for (size_t j = 0; j < sc->d; j++) {
        if (!(phi[j] > 1e-9))
            continue;
        size_t pos = k < FRAUD_MAX_REASONS ? k++ : FRAUD_MAX_REASONS;
        if (pos == FRAUD_MAX_REASONS) {
            if (phi[j] <= phi[top[FRAUD_MAX_REASONS - 1]])
                continue;
            pos = FRAUD_MAX_REASONS - 1;
        }
        while (pos > 0 && phi[top[pos - 1]] < phi[j]) {
            top[pos] = top[pos - 1];
            pos--;
        }
        top[pos] = j;
    }
    for (size_t r = 0; r < k; r++) {
        fraud_reason *fr = &reasons[r];
        size_t j = top[r];
        copy_str(fr->feature, sizeof fr->feature, sc->names[j], strlen(sc->names[j]));
        fr->value = x[j];
        fr->contribution = phi[j];
        fraud_reason_text(&sc->cfg.feat, sc->names[j], x, j, (const char *const *)sc->names,
                          sc->d, fr->text, sizeof fr->text);
    }
    *n_reasons = k;
    return calibrate(sc, margin);
}

fraud_decision fraud_scorer_decide(const fraud_scorer *sc, double score)
{
    if (score >= sc->cfg.decline_threshold)
        return FRAUD_DECISION_DECLINE;
    if (score >= sc->cfg.review_threshold)
        return FRAUD_DECISION_REVIEW;
    return FRAUD_DECISION_APPROVE;
}

fraud_decision fraud_combine(fraud_decision model, const fraud_ruleset *rs, const float *x,
                             bool blocked, bool allowed, bool *hits)
{
    bool any[3] = {false, false, false};
    for (size_t i = 0; rs && i < rs->n; i++) {
        bool h = fraud_rule_eval(rs->rule[i], x) != 0.0;
        if (hits)
            hits[i] = h;
        any[rs->action[i]] |= h;
    }
    if (blocked)
        return FRAUD_DECISION_DECLINE;
    if (allowed)
        return FRAUD_DECISION_APPROVE;
    if (any[FRAUD_ACTION_BLOCK])
        return FRAUD_DECISION_DECLINE;
    if (any[FRAUD_ACTION_ALLOW])
        return FRAUD_DECISION_APPROVE;
    if (any[FRAUD_ACTION_REVIEW] && model == FRAUD_DECISION_APPROVE)
        return FRAUD_DECISION_REVIEW;
    return model;
}

/* ---- reasons in words --------------------------------------------------------------------- */

/* "customer_id" -> "customer" */
static void entity_word(const char *col, char *out, size_t cap)
{
    copy_str(out, cap, col, strlen(col));
    size_t n = strlen(out);
    if (n > 3 && !strcmp(out + n - 3, "_id"))
        out[n - 3] = 0;
    for (char *p = out; *p; p++)
        if (*p == '_')
            *p = ' ';
}

static void duration_words(double s, char *out, size_t cap)
{
    if (s < 120)
        snprintf(out, cap, "%.0f s", s);
    else if (s < 7200)
        snprintf(out, cap, "%.0f min", s / 60);
    else if (s < 172800)
        snprintf(out, cap, "%.1f h", s / 3600);
    else
        snprintf(out, cap, "%.1f days", s / 86400);
}

void fraud_reason_text(const fraud_feat_opts *o, const char *feature, const float *x,
                       size_t j, const char *const *names, size_t n, char *out, size_t cap)
{
    double v = x[j];
    /* text features follow amount, hour, weekday and the extras: say the value, not its code */
    if (j >= 3 + o->n_extra && j < 3 + o->n_extra + o->n_text) {
        size_t k = j - 3 - o->n_extra;
        if (!isnan(v) && v >= 0 && v < (double)o->n_values[k])
            snprintf(out, cap, "%s is '%s'", o->text[k], o->values[k][(size_t)v]);
        else
            snprintf(out, cap, "%s is missing or a value not seen in training", o->text[k]);
        return;
    }
    const char *colon = strchr(feature, ':');
    if (!colon || !strncmp(feature, "pair:", 5)) {
        if (!strcmp(feature, "amount"))
            snprintf(out, cap, "amount is %.2f", v);
        else if (!strcmp(feature, "hour"))
            snprintf(out, cap, "transaction at %02d:%02d UTC", (int)v,
                     (int)((v - floor(v)) * 60));
        else if (!strcmp(feature, "weekday")) {
            static const char *const days[] = {"Monday", "Tuesday", "Wednesday", "Thursday",
                                               "Friday", "Saturday", "Sunday"};
            snprintf(out, cap, "transaction on a %s", days[(int)v % 7]);
        } else if (!strcmp(feature, "pair:count")) {
            char a[64], b[64];
            entity_word(o->entity[0], a, sizeof a);
            entity_word(o->entity[1], b, sizeof b);
            if (v == 0)
                snprintf(out, cap, "first transaction between this %s and this %s", a, b);
            else
                snprintf(out, cap, "%.0f earlier transactions between this %s and this %s", v,
                         a, b);
        } else
            snprintf(out, cap, "%s is %g", feature, v);
        return;
    }
    char col[64], ent[64], what[64];
    size_t el = (size_t)(colon - feature);
    copy_str(col, sizeof col, feature, el);
    entity_word(col, ent, sizeof ent);
    copy_str(what, sizeof what, colon + 1, strlen(colon + 1));
    char *us = strrchr(what, '_');
    const char *win = us ? us + 1 : "";
    if (!strncmp(what, "count_", 6))
        snprintf(out, cap, "%.0f transactions by this %s in the last %s", v, ent, win);
    else if (!strncmp(what, "sum_", 4))
        snprintf(out, cap, "this %s spent %.2f in the last %s", ent, v, win);
    else if (!strncmp(what, "mean_", 5))
        snprintf(out, cap, "this %s's mean amount over the last %s is %.2f", ent, win, v);
    else if (!strncmp(what, "max_", 4))
        snprintf(out, cap, "this %s's largest amount in the last %s is %.2f", ent, win, v);
    else if (!strcmp(what, "secs_since_last")) {
        if (v >= FRAUD_NEVER_SEEN_S)
            snprintf(out, cap, "first transaction seen for this %s", ent);
        else {
            char d[32];
            duration_words(v, d, sizeof d);
            snprintf(out, cap, "%s since this %s's previous transaction", d, ent);
        }
    } else if (!strcmp(what, "amount_ratio")) {
        char wl[32];
        fraud_window_label(o->window_s[o->n_windows - 1], wl, sizeof wl);
        if (v < 0)
            snprintf(out, cap, "no earlier amounts for this %s in the last %s", ent, wl);
        else
            snprintf(out, cap, "amount is %.1fx this %s's %s mean", v, ent, wl);
    } else if (!strncmp(what, "fraud_rate_", 11)) {
        /* the matching labelled count follows the rate */
        double cnt = j + 1 < n && strstr(names[j + 1], "labelled_count_") ? x[j + 1] : NAN;
        char dl[32];
        duration_words(o->label_delay_s, dl, sizeof dl);
        if (isfinite(cnt))
            snprintf(out, cap, "%.0f%% of this %s's %.0f transactions in the %s before the "
                     "last %s were fraud", 100 * v, ent, cnt, win, dl);
        else
            snprintf(out, cap, "%.0f%% of this %s's transactions in the %s before the last %s "
                     "were fraud", 100 * v, ent, win, dl);
    } else if (!strncmp(what, "labelled_count_", 15))
        snprintf(out, cap, "%.0f transactions by this %s with settled labels in the %s window",
                 v, ent, win);
    else
        snprintf(out, cap, "%s is %g", feature, v);
}
