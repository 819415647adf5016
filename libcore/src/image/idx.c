/*
 * idx.c - the IDX format (MNIST and MedMNIST exports) and class-folder image sets (image.h).
 *
 * IDX headers are checked against the bytes present before anything is allocated: the pixel
 * count must equal exactly what follows the header, and an images / labels pair must agree on
 * the count. Folder reading decodes with lp_image_decode, so it inherits its limits.
 */
#include "lepton/image.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

lp_status lp_idx_parse_images(const void *data, size_t len, const char *what, lp_idx *out,
                              lp_err *err)
{
    what = what ? what : "idx images";
    if (!out)
        return lp_err_set(err, LP_EINVAL, "%s: out is NULL", what);
    memset(out, 0, sizeof *out);
    const uint8_t *b = data;
    if (data && len >= 4 && (b[0] || b[1] || b[2] != 0x08 || b[3] != 0x03))
        return lp_err_set(err, LP_EFORMAT,
                          "%s: magic %02x %02x %02x %02x, expected 00 00 08 03 (IDX uint8 images)",
                          what, b[0], b[1], b[2], b[3]);
    if (!data || len < 16)
        return lp_err_set(err, LP_EFORMAT, "%s: %zu bytes, shorter than an IDX images header (16)",
                          what, data ? len : 0);
    if (b[0] || b[1] || b[2] != 0x08 || b[3] != 0x03)
        return lp_err_set(err, LP_EFORMAT,
                          "%s: magic %02x %02x %02x %02x, expected 00 00 08 03 (IDX uint8 images)",
                          what, b[0], b[1], b[2], b[3]);
    uint64_t n = be32(b + 4), h = be32(b + 8), w = be32(b + 12);
    if (h == 0 || w == 0 || h > 65536 || w > 65536)
        return lp_err_set(err, LP_EFORMAT, "%s: image size %llux%llu, expected 1..65536 each", what,
                          (unsigned long long)h, (unsigned long long)w);
    uint64_t need = n * h * w;
    if (need != len - 16)
        return lp_err_set(err, LP_EFORMAT,
                          "%s: header says %llu images of %llux%llu (%llu bytes), the file has %zu "
                          "bytes after the header",
                          what, (unsigned long long)n, (unsigned long long)h,
                          (unsigned long long)w, (unsigned long long)need, len - 16);
    out->px = malloc(need ? need : 1);
    if (!out->px)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
    memcpy(out->px, b + 16, need);
    out->n = n, out->h = h, out->w = w;
    return LP_OK;
}

lp_status lp_idx_parse_labels(const void *data, size_t len, const char *what, uint8_t **labels,
                              size_t *n, lp_err *err)
{
    what = what ? what : "idx labels";
    if (!labels || !n)
        return lp_err_set(err, LP_EINVAL, "%s: out is NULL", what);
    *labels = NULL;
    *n = 0;
    const uint8_t *b = data;
    if (!data || len < 8)
        return lp_err_set(err, LP_EFORMAT, "%s: %zu bytes, shorter than an IDX labels header (8)",
                          what, data ? len : 0);
    if (b[0] || b[1] || b[2] != 0x08 || b[3] != 0x01)
        return lp_err_set(err, LP_EFORMAT,
                          "%s: magic %02x %02x %02x %02x, expected 00 00 08 01 (IDX uint8 labels)",
                          what, b[0], b[1], b[2], b[3]);
    uint64_t cnt = be32(b + 4);
    if (cnt != len - 8)
        return lp_err_set(err, LP_EFORMAT,
                          "%s: header says %llu labels, the file has %zu bytes after the header",
                          what, (unsigned long long)cnt, len - 8);
    *labels = malloc(cnt ? cnt : 1);
    if (!*labels)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
    memcpy(*labels, b + 8, cnt);
    *n = cnt;
    return LP_OK;
}

lp_status lp_idx_read(const char *images_path, const char *labels_path, lp_idx *out, lp_err *err)
{
    uint8_t *data;
    size_t len;
    lp_status st = lp_file_read(images_path, &data, &len, err);
    if (st)
        return st;
    st = lp_idx_parse_images(data, len, images_path, out, err);
    free(data);
    if (st || !labels_path)
        return st;
    st = lp_file_read(labels_path, &data, &len, err);
    size_t nl = 0;
    if (!st) {
        st = lp_idx_parse_labels(data, len, labels_path, &out->labels, &nl, err);
        free(data);
    }
    if (!st && nl != out->n)
        st = lp_err_set(err, LP_EFORMAT, "%s has %zu images but %s has %zu labels", images_path,
                        out->n, labels_path, nl);
    if (st)
        lp_idx_clear(out);
    return st;
}

void lp_idx_clear(lp_idx *x)
{
    if (!x)
        return;
    free(x->px);
    free(x->labels);
    memset(x, 0, sizeof *x);
}

/* ---- class folders --------------------------------------------------------------------------*/

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names of the entries of dir (skipping dot entries); dirs_only selects sub-folders,
 * else image files by extension. *names is a new array of new strings. */
static lp_status list_dir(const char *dir, bool dirs_only, char ***names, size_t *n, lp_err *err)
{
    *names = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return lp_err_set(err, LP_ENOTFOUND, "%s: cannot open folder", dir);
    size_t cap = 0;
    struct dirent *e;
    lp_status st = LP_OK;
    while ((e = readdir(d)) && !st) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        DIR *sub = opendir(path);
        bool is_dir = sub != NULL;
        if (sub)
            closedir(sub);
        if (dirs_only != is_dir)
            continue;
        if (!dirs_only) {
            const char *dot = strrchr(e->d_name, '.');
            if (!dot || (strcasecmp(dot, ".png") && strcasecmp(dot, ".jpg") &&
                         strcasecmp(dot, ".jpeg")))
                continue;
        }
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            char **nn = lp_reallocarray(*names, cap, sizeof *nn);
            if (!nn) {
                st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", dir);
                break;
            }
            *names = nn;
        }
        if (!((*names)[*n] = lp_strdup(e->d_name)))
            st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", dir);
        else
            (*n)++;
    }
    closedir(d);
    if (*n)
        qsort(*names, *n, sizeof **names, cmp_str);
    return st;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

lp_status lp_image_set_read_folder(const char *dir, size_t channels, size_t h, size_t w,
                                   const lp_image_opts *o, lp_image_set *out, lp_err *err)
{
    if (!dir || !out || (channels != 1 && channels != 3) || !h || !w)
        return lp_err_set(err, LP_EINVAL, "image folder: bad arguments (channels 1 or 3, size > 0)");
    memset(out, 0, sizeof *out);
    lp_image_opts opts = o ? *o : lp_image_opts_default();
    opts.channels = (int)channels;
    char **classes;
    size_t k;
    lp_status st = list_dir(dir, true, &classes, &k, err);
    if (st)
        return st;
    if (k < 2) {
        free_names(classes, k);
        return lp_err_set(err, LP_EINVAL, "%s: %zu class sub-folders, expected at least 2", dir, k);
    }
    out->classes = classes;
    out->n_classes = k;
    out->c = channels, out->h = h, out->w = w;
    size_t d = channels * h * w, cap = 0;
    for (size_t ci = 0; ci < k && !st; ci++) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, classes[ci]);
        char **files;
        size_t nf;
        st = list_dir(sub, false, &files, &nf, err);
        for (size_t f = 0; f < nf && !st; f++) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", sub, files[f]);
            lp_image img, rs;
            st = lp_image_read(path, &opts, &img, err);
            if (st)
                break;
            st = lp_image_resize(&img, w, h, &rs, err);
            lp_image_clear(&img);
            if (st)
                break;
            if (out->n == cap) {
                cap = cap ? 2 * cap : 64;
                float *x = lp_reallocarray(out->x, cap, d * sizeof *x);
                int32_t *y = lp_reallocarray(out->y, cap, sizeof *y);
                if (x)
                    out->x = x;
                if (y)
                    out->y = y;
                if (!x || !y) {
                    lp_image_clear(&rs);
                    st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", dir);
                    break;
                }
            }
            lp_image_to_chw(&rs, out->x + out->n * d);
            out->y[out->n++] = (int32_t)ci;
            lp_image_clear(&rs);
        }
        free_names(files, nf);
    }
    if (!st && out->n == 0)
        st = lp_err_set(err, LP_EINVAL, "%s: no .png / .jpg images in the class folders", dir);
    if (st)
        lp_image_set_clear(out);
    return st;
}

void lp_image_set_clear(lp_image_set *s)
{
    if (!s)
        return;
    free(s->x);
    free(s->y);
    free_names(s->classes, s->n_classes);
    memset(s, 0, sizeof *s);
}
