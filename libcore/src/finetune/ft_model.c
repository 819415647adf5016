/*
 * ft_model.c - what every fine-tuning method shares: options, method names, the check of a
 * new data frame against the base model's schema and classes, its design matrix under the
 * base's fitted pipeline, and model snapshots (a model's .lpm sections read back from a
 * private temporary save, and a tuned model written as the base's sections with a new
 * "model" section). It trains nothing.
 */
#include "finetune/ft_internal.h"
#include "lepton/linalg.h"
#include "model/family.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const method_names[] = {"lora", "head", "full", "boost", "warm"};

const char *lp_finetune_method_name(lp_finetune_method m)
{
    return (unsigned)m < LP_FINETUNE_METHOD_COUNT_ ? method_names[m] : NULL;
}

lp_status lp_finetune_method_parse(const char *s, lp_finetune_method *out, lp_err *err)
{
    for (int i = 0; s && i < LP_FINETUNE_METHOD_COUNT_; i++)
        if (!strcmp(s, method_names[i])) {
            *out = (lp_finetune_method)i;
            return LP_OK;
        }
    return lp_err_set(err, LP_EINVAL, "finetune: method '%s': expected lora, head, full, boost "
                      "or warm", s ? s : "(null)");
}

lp_finetune_opts lp_finetune_opts_default(void)
{
    lp_finetune_opts o;
    memset(&o, 0, sizeof o);
    o.method = LP_FINETUNE_METHOD_LORA;
    o.rank = 8;
    o.alpha = 16;
    o.epochs = 20;
    o.batch_size = 32;
    o.rounds = 50;
    o.lambda = 1.0;
    o.seed = 42;
    return o;
}

lp_status lp_finetune_opts_check(const lp_finetune_opts *o, lp_err *err)
{
    if (!o)
        return lp_err_set(err, LP_EINVAL, "finetune: options must not be NULL");
    if (!lp_finetune_method_name(o->method))
        return lp_err_set(err, LP_EINVAL, "finetune: method=%d: not a method", (int)o->method);
    if (o->rank < 1 || o->rank > 65536)
        return lp_err_set(err, LP_EINVAL, "finetune: rank=%d: must be in [1, 65536]", o->rank);
    if (!(o->alpha > 0) || !isfinite(o->alpha))
        return lp_err_set(err, LP_EINVAL, "finetune: alpha=%g: must be > 0", o->alpha);
    if (o->epochs < 1 || o->epochs > 100000)
        return lp_err_set(err, LP_EINVAL, "finetune: epochs=%d: must be in [1, 100000]",
                          o->epochs);
    if (!(o->lr >= 0) || !isfinite(o->lr))
        return lp_err_set(err, LP_EINVAL, "finetune: lr=%g: must be > 0 (0 = default)", o->lr);
    if (o->batch_size < 1 || o->batch_size > (1 << 20))
        return lp_err_set(err, LP_EINVAL, "finetune: batch_size=%d: must be in [1, 1048576]",
                          o->batch_size);
    if (o->rounds < 1 || o->rounds > 100000)
        return lp_err_set(err, LP_EINVAL, "finetune: rounds=%d: must be in [1, 100000]",
                          o->rounds);
    if (!(o->lambda >= 0) || !isfinite(o->lambda))
        return lp_err_set(err, LP_EINVAL, "finetune: lambda=%g: must be a finite value >= 0",
                          o->lambda);
    if ((o->new_classes || o->input_support) && o->method != LP_FINETUNE_METHOD_LORA)
        return lp_err_set(err, LP_EINVAL, "finetune: new_classes and input_support apply to "
                          "method lora only");
    if (o->n_drop && !o->drop)
        return lp_err_set(err, LP_EINVAL, "finetune: n_drop=%zu but drop is NULL", o->n_drop);
    return LP_OK;
}

/* ---- the frame check -----------------------------------------------------------------------*/

static bool in_list(const char *s, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] && !strcmp(v[i], s))
            return true;
    return false;
}

static bool is_input(const lp_model *m, const char *s)
{
    for (size_t j = 0; j < lp_model_n_inputs(m); j++)
        if (!strcmp(lp_model_input_name(m, j), s))
            return true;
    return false;
}

/* Append "'name'" to a list text (at most 8 names, then "..."). */
static void list_add(lp_buf *b, size_t *count, const char *s)
{
    if (*count < 8)
        lp_buf_printf(b, "%s'%s'", *count ? ", " : "", s);
    else if (*count == 8)
        lp_buf_printf(b, ", ...");
    (*count)++;
}

static const char *buf_text(lp_buf *b)
{
    lp_buf_u8(b, 0);
    return b->failed ? "(out of memory)" : (const char *)b->data;
}

/* The check; with allow_new, label values the base never saw are accepted (new classes). */
static lp_status check_frame(const lp_model *base, const lp_frame *data, const char *label,
                             const char *const *drop, size_t n_drop, bool allow_new, lp_err *err)
{
    if (!base || !data)
        return lp_err_set(err, LP_EINVAL, "finetune: base and data must not be NULL");
    if (!label)
        label = lp_model_label(base);
    lp_buf b;
    lp_buf_init(&b);
    size_t nb = 0;
    lp_status st = LP_OK;
    for (size_t j = 0; j < lp_model_n_inputs(base); j++) {
        const char *nm = lp_model_input_name(base, j);
        bool found = false;
        for (size_t c = 0; c < lp_frame_ncols(data) && !found; c++)
            found = !strcmp(lp_frame_col(data, c)->name, nm);
        if (!found)
            list_add(&b, &nb, nm);
    }
    if (nb) {
        st = lp_err_set(err, LP_EINVAL, "finetune data: %zu input column%s of the base model "
                        "missing: %s", nb, nb == 1 ? " is" : "s are", buf_text(&b));
        goto done;
    }
    bool has_label = false;
    for (size_t c = 0; c < lp_frame_ncols(data); c++) {
        const char *nm = lp_frame_col(data, c)->name;
        if (!strcmp(nm, label)) {
            has_label = true;
            continue;
        }
        if (!is_input(base, nm) && !in_list(nm, drop, n_drop))
            list_add(&b, &nb, nm);
    }
    if (nb) {
        st = lp_err_set(err, LP_EINVAL, "finetune data: %zu column%s the base model never saw: "
                        "%s (drop %s)", nb, nb == 1 ? "" : "s", buf_text(&b),
                        nb == 1 ? "it" : "them");
        goto done;
    }
    if (!has_label) {
        st = lp_err_set(err, LP_ENOTFOUND, "finetune data: no label column '%s'", label);
        goto done;
    }
    if (lp_model_task(base) != LP_TASK_REGRESSION && !allow_new) {
        size_t j = 0;
        lp_frame_require(data, label, "finetune data", &j, NULL);
        const lp_column *c = lp_frame_col(data, j);
        char cell[64];
        /* distinct unseen values, each reported once */
        char **seen = NULL;
        size_t n_seen = 0;
        for (size_t i = 0; i < c->n && nb < 9; i++) {
            if (c->missing[i])
                continue;
            const char *s = lp_column_cell_str(c, i, cell, sizeof cell);
            bool known = false;
            for (size_t k = 0; k < lp_model_n_classes(base) && !known; k++)
                known = !strcmp(lp_model_class(base, k), s);
            if (known || in_list(s, (const char *const *)seen, n_seen))
                continue;
            char **ns = lp_reallocarray(seen, n_seen + 1, sizeof *ns);
            if (!ns)
                break;
            seen = ns;
            seen[n_seen++] = lp_strdup(s);
            list_add(&b, &nb, s);
        }
        for (size_t i = 0; i < n_seen; i++)
            free(seen[i]);
        free(seen);
        if (nb)
            st = lp_err_set(err, LP_EINVAL, "finetune data: label '%s' has value%s the base "
                            "model has never seen: %s (its classes are fixed at training)",
                            label, nb == 1 ? "" : "s", buf_text(&b));
    }
done:
    lp_buf_free(&b);
    return st;
}

lp_status lp_finetune_check_frame(const lp_model *base, const lp_frame *data, const char *label,
                                  const char *const *drop, size_t n_drop, lp_err *err)
{
    return check_frame(base, data, label, drop, n_drop, false, err);
}

void ft_free_names(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* Index of s among the new classes, appending it (first-appearance order); -1 on ENOMEM. */
static long new_class(char ***v, size_t *n, const char *s)
{
    for (size_t i = 0; i < *n; i++)
        if (!strcmp((*v)[i], s))
            return (long)i;
    char **nv = lp_reallocarray(*v, *n + 1, sizeof *nv);
    if (!nv)
        return -1;
    *v = nv;
    if (!(nv[*n] = lp_strdup(s)))
        return -1;
    return (long)(*n)++;
}

lp_status ft_design(const lp_model *base, const lp_frame *data, const char *label,
                    const char *const *drop, size_t n_drop, char ***new_cls, size_t *n_new,
                    float **X, float **y, size_t *n, size_t *d, lp_err *err)
{
    *X = NULL;
    *y = NULL;
    if (new_cls) {
        *new_cls = NULL;
        *n_new = 0;
    }
    if (!label)
        label = lp_model_label(base);
    lp_status st = check_frame(base, data, label, drop, n_drop, new_cls != NULL, err);
    if (st)
        return st;
    size_t lj = 0;
    if ((st = lp_frame_require(data, label, "finetune data", &lj, err)))
        return st;
    const lp_column *c = lp_frame_col(data, lj);
    size_t rows = lp_frame_nrows(data);
    if (rows == 0)
        return lp_err_set(err, LP_EINVAL, "finetune data: no rows");
    float *yy = lp_mallocarray(rows, sizeof *yy);
    if (!yy)
        return lp_err_set(err, LP_ENOMEM, "finetune: out of memory (%zu rows)", rows);
    char cell[64];
    for (size_t i = 0; i < rows; i++) {
        if (c->missing[i]) {
            free(yy);
            return lp_err_set(err, LP_EINVAL, "finetune data row %zu: label '%s' is missing",
                              i + 1, label);
        }
        if (lp_model_task(base) == LP_TASK_REGRESSION) {
            if (!c->num || !isfinite(c->num[i])) {
                free(yy);
                return lp_err_set(err, LP_EINVAL, "finetune data row %zu: label '%s' is not a "
                                  "finite number", i + 1, label);
            }
            yy[i] = (float)c->num[i];
            continue;
        }
        const char *s = lp_column_cell_str(c, i, cell, sizeof cell);
        yy[i] = -1;
        for (size_t k = 0; k < lp_model_n_classes(base); k++)
            if (!strcmp(lp_model_class(base, k), s))
                yy[i] = (float)k;
        if (yy[i] < 0 && new_cls) {
            long k = new_class(new_cls, n_new, s);
            if (k < 0)
                st = lp_err_set(err, LP_ENOMEM, "finetune: out of memory");
            yy[i] = (float)(lp_model_n_classes(base) + (size_t)k);
        }
    }
    lp_matf *m = NULL;
    if (st || (st = lp_model_design(base, data, &m, err))) {
        free(yy);
        if (new_cls) {
            ft_free_names(*new_cls, *n_new);
            *new_cls = NULL;
            *n_new = 0;
        }
        return st;
    }
    *X = m->v;
    *n = m->rows;
    *d = m->cols;
    m->v = NULL;
    lp_matf_free(m);
    *y = yy;
    return LP_OK;
}

/* ---- snapshots -----------------------------------------------------------------------------*/

lp_status ft_snapshot(const lp_model *base, lp_lpm **lpm, char sha[65], lp_err *err)
{
    *lpm = NULL;
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/lepton-ft-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(path);
    if (fd < 0)
        return lp_err_set(err, LP_EIO, "finetune: cannot create a temporary file in %s",
                          dir && *dir ? dir : "/tmp");
    close(fd);
    lp_status st = lp_model_save(base, path, err);
    if (!st)
        st = lp_sha256_file(path, sha, err);
    if (!st)
        st = lp_lpm_load(path, lpm, err);
    unlink(path);
    return st;
}

lp_status lp_model_sha256(const lp_model *base, char hex[65], lp_err *err)
{
    lp_lpm *f = NULL;
    lp_status st = ft_snapshot(base, &f, hex, err);
    lp_lpm_free(f);
    return st;
}

lp_status ft_write_model(const lp_lpm *lpm, const void *blob, size_t len, const char *ft_json,
                         const char *path, lp_err *err)
{
    cJSON *h = cJSON_Parse(lp_lpm_header(lpm));
    cJSON *ft = ft_json ? cJSON_Parse(ft_json) : NULL;
    lp_lpm_writer *w = lp_lpm_writer_new();
    char *text = NULL;
    lp_status st = LP_OK;
    if (!h || !w || (ft_json && !ft)) {
        st = lp_err_set(err, LP_ENOMEM, "finetune: cannot build the model header of %s", path);
        goto done;
    }
    cJSON_DeleteItemFromObject(h, "finetune");
    if (ft) {
        cJSON_AddItemToObject(h, "finetune", ft);
        ft = NULL;
    }
    for (size_t i = 0; !st && i < lp_lpm_section_count(lpm); i++) {
        const char *nm = lp_lpm_section_name(lpm, i);
        const void *d;
        size_t n;
        if (!strcmp(nm, "model"))
            st = lp_lpm_writer_add(w, nm, LP_LPM_DTYPE_BYTES, blob, len, err);
        else if (!(st = lp_lpm_section(lpm, nm, -1, &d, &n, err)))
            st = lp_lpm_writer_add(w, nm, LP_LPM_DTYPE_BYTES, d, n, err);
    }
    if (!st && !(text = cJSON_PrintUnformatted(h)))
        st = lp_err_set(err, LP_ENOMEM, "finetune: out of memory writing %s", path);
    if (!st)
        st = lp_lpm_writer_save(w, text, path, err);
done:
    free(text);
    cJSON_Delete(h);
    cJSON_Delete(ft);
    lp_lpm_writer_free(w);
    return st;
}
