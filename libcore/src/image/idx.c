/*
 * idx.c - the IDX format (MNIST and MedMNIST exports) and class-folder image sets (image.h).
 *
 * IDX headers are checked against the bytes present before anything is allocated: the pixel
 * count must equal exactly what follows the header, and an images / labels pair must agree on
 * the count. Folder reading decodes with lp_image_decode, so it inherits its limits; a class
 * folder's images are read from its sub-folders too (up to IMAGE_FOLDER_DEPTH levels).
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
    bool magic = data && len >= 4 && !b[0] && !b[1] && b[2] == 0x08 && (b[3] == 3 || b[3] == 4);
    if (data && len >= 4 && !magic)
        return lp_err_set(err, LP_EFORMAT,
                          "%s: magic %02x %02x %02x %02x, expected 00 00 08 03 (IDX uint8 images) "
                          "or 00 00 08 04 (N x H x W x C colour images)",
                          what, b[0], b[1], b[2], b[3]);
    size_t hdr = magic && b[3] == 4 ? 20 : 16;
    if (!data || len < hdr)
        return lp_err_set(err, LP_EFORMAT, "%s: %zu bytes, shorter than an IDX images header (%zu)",
                          what, data ? len : 0, hdr);
    uint64_t n = be32(b + 4), h = be32(b + 8), w = be32(b + 12), c = hdr == 20 ? be32(b + 16) : 1;
    if (h == 0 || w == 0 || h > 65536 || w > 65536)
        return lp_err_set(err, LP_EFORMAT, "%s: image size %llux%llu, expected 1..65536 each", what,
                          (unsigned long long)h, (unsigned long long)w);
    if (c != 1 && c != 3)
        return lp_err_set(err, LP_EFORMAT, "%s: %llu channels (the 4th dimension), expected 1 "
                          "(gray) or 3 (RGB)", what, (unsigned long long)c);
    uint64_t plane = h * w * c; /* <= 3 * 2^32: n * plane can overflow, so compare by division */
    uint64_t need = n && plane > UINT64_MAX / n ? UINT64_MAX : n * plane;
    if (need != len - hdr)
        return lp_err_set(err, LP_EFORMAT,
                          "%s: header says %llu images of %llux%llux%llu (%llu bytes), the file "
                          "has %zu bytes after the header",
                          what, (unsigned long long)n, (unsigned long long)h,
                          (unsigned long long)w, (unsigned long long)c, (unsigned long long)need,
                          len - hdr);
    out->px = malloc(need ? need : 1);
    if (!out->px)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", what);
    memcpy(out->px, b + hdr, need);
    out->n = n, out->h = h, out->w = w, out->c = c;
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
    if (!b[0] && !b[1] && b[2] == 0x08 && b[3] == 0x02 && len >= 12)
        return lp_err_set(err, LP_EFORMAT,
                          "%s: %u x %u labels (a 2-D IDX file: several labels per image, as in "
                          "multi-label sets like ChestMNIST); one class per image is expected",
                          what, be32(b + 4), be32(b + 8));
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

/* Sub-folders deeper than this below a class folder are not read (a symbolic-link loop ends
 * here too). */
#define IMAGE_FOLDER_DEPTH 16

typedef struct name_list {
    char **v;
    size_t n, cap;
} name_list;

static bool is_image_name(const char *name)
{
    const char *dot = strrchr(name, '.');
    return dot && (!strcasecmp(dot, ".png") || !strcasecmp(dot, ".jpg") ||
                   !strcasecmp(dot, ".jpeg"));
}

static lp_status name_push(name_list *l, const char *name, const char *dir, lp_err *err)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **nn = lp_reallocarray(l->v, cap, sizeof *nn);
        if (!nn)
            return lp_err_set(err, LP_ENOMEM, "%s: out of memory", dir);
        l->v = nn, l->cap = cap;
    }
    if (!(l->v[l->n] = lp_strdup(name)))
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", dir);
    l->n++;
    return LP_OK;
}

/* Entries of root/rel (rel "" for root itself), skipping dot entries: with dirs_only its
 * sub-folders' names; else its image files (by extension) as paths relative to root, and, to
 * depth levels below, those of its sub-folders ("sub/x.png"). Appended to l unsorted. */
static lp_status list_entries(const char *root, const char *rel, bool dirs_only, int depth,
                              name_list *l, lp_err *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s%s%s", root, *rel ? "/" : "", rel);
    DIR *d = opendir(dir);
    if (!d)
        return lp_err_set(err, LP_ENOTFOUND, "%s: cannot open folder", dir);
    struct dirent *e;
    lp_status st = LP_OK;
    while ((e = readdir(d)) && !st) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096], name[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(name, sizeof name, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        DIR *sub = opendir(path);
        bool is_dir = sub != NULL;
        if (sub)
            closedir(sub);
        if (dirs_only)
            st = is_dir ? name_push(l, e->d_name, dir, err) : LP_OK;
        else if (is_dir && depth > 0)
            st = list_entries(root, name, false, depth - 1, l, err);
        else if (!is_dir && is_image_name(e->d_name))
            st = name_push(l, name, dir, err);
    }
    closedir(d);
    return st;
}

/* For the error of a folder without images: " (they hold 3 .bmp, 2 .dcm files; only PNG and
 * JPEG are read)" from the files of dir's sub-folders, up to 4 extensions; "" when none. */
static void other_files(const char *dir, char *out, size_t cap)
{
    char ext[4][16];
    size_t cnt[4] = {0}, n_ext = 0, total = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
        DIR *s = opendir(sub);
        struct dirent *f;
        while (s && (f = readdir(s))) {
            const char *dot = strrchr(f->d_name, '.');
            if (f->d_name[0] == '.' || !dot || strlen(dot) >= sizeof ext[0])
                continue;
            total++;
            size_t k = 0;
            while (k < n_ext && strcasecmp(ext[k], dot))
                k++;
            if (k == n_ext && n_ext < 4)
                snprintf(ext[n_ext++], sizeof ext[0], "%s", dot);
            if (k < n_ext)
                cnt[k]++;
        }
        if (s)
            closedir(s);
    }
    if (d)
        closedir(d);
    out[0] = 0;
    if (!total)
        return;
    size_t used = (size_t)snprintf(out, cap, " (they hold");
    for (size_t k = 0; k < n_ext && used < cap; k++)
        used += (size_t)snprintf(out + used, cap - used, "%s %zu %s", k ? "," : "", cnt[k],
                                 ext[k]);
    if (used < cap)
        snprintf(out + used, cap - used, " files; only PNG and JPEG are read)");
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Sorted (byte order) entries of dir as list_entries; *names is a new array of new strings. */
static lp_status list_dir(const char *dir, bool dirs_only, char ***names, size_t *n, lp_err *err)
{
    name_list l = {0};
    lp_status st = list_entries(dir, "", dirs_only, IMAGE_FOLDER_DEPTH, &l, err);
    if (st) {
        free_names(l.v, l.n);
        l.v = NULL, l.n = 0;
    }
    if (l.n)
        qsort(l.v, l.n, sizeof *l.v, cmp_str);
    *names = l.v;
    *n = l.n;
    return st;
}

/* The class sub-folders of dir (*classes, *k: sorted, new) and every image below them in
 * reading order: files->v (new) full paths, (*cls)[i] (new) the class of file i. */
static lp_status list_set(const char *dir, char ***classes, size_t *k, name_list *files,
                          int32_t **cls, lp_err *err)
{
    *cls = NULL;
    memset(files, 0, sizeof *files);
    lp_status st = list_dir(dir, true, classes, k, err);
    /* chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}: the splits are not the classes */
    static const char *const split_names[] = {"train", "training", "test", "testing", "val",
                                              "valid", "validation", "dev"};
    size_t splits = 0;
    for (size_t ci = 0; ci < *k && !st; ci++)
        for (size_t s = 0; s < sizeof split_names / sizeof *split_names; s++)
            splits += strcasecmp((*classes)[ci], split_names[s]) == 0;
    if (!st && *k >= 2 && splits == *k) {
        size_t tr = 0;
        for (size_t ci = 0; ci < *k; ci++)
            if (strncasecmp((*classes)[ci], "train", 5) == 0)
                tr = ci;
        st = lp_err_set(err, LP_EINVAL,
                        "%s: its sub-folders (%s, %s%s) are data splits, not classes: give the "
                        "training split's folder (%s/%s) and, for validation, another split's",
                        dir, (*classes)[0], (*classes)[1], *k > 2 ? ", ..." : "", dir,
                        (*classes)[tr]);
    }
    size_t cap = 0;
    for (size_t ci = 0; ci < *k && !st; ci++) {
        char sub[4096];
        snprintf(sub, sizeof sub, "%s/%s", dir, (*classes)[ci]);
        char **names;
        size_t nf;
        st = list_dir(sub, false, &names, &nf, err);
        for (size_t f = 0; f < nf && !st; f++) {
            char path[8192];
            snprintf(path, sizeof path, "%s/%s", sub, names[f]);
            st = name_push(files, path, dir, err);
            if (!st && files->n > cap) {
                cap = files->cap;
                int32_t *c = lp_reallocarray(*cls, cap, sizeof *c);
                if (!c)
                    st = lp_err_set(err, LP_ENOMEM, "%s: out of memory", dir);
                else
                    *cls = c;
            }
            if (!st)
                (*cls)[files->n - 1] = (int32_t)ci;
        }
        free_names(names, nf);
    }
    return st;
}

bool lp_image_has_colour(const lp_image *img)
{
    if (!img || !img->px || img->c < 3)
        return false;
    size_t n = img->w * img->h, spread = 0;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = img->px + i * img->c;
        int lo = p[0] < p[1] ? p[0] : p[1], hi = p[0] < p[1] ? p[1] : p[0];
        lo = p[2] < lo ? p[2] : lo, hi = p[2] > hi ? p[2] : hi;
        spread += hi - lo > LP_IMAGE_COLOUR_SPREAD;
    }
    return (double)spread >= LP_IMAGE_COLOUR_SHARE * (double)n && spread > 0;
}

lp_status lp_image_folder_colour(const char *dir, size_t max_files, const lp_image_opts *o,
                                 size_t *n_read, size_t *n_colour, lp_err *err)
{
    if (!dir || !n_read || !n_colour)
        return lp_err_set(err, LP_EINVAL, "image folder colour: NULL argument");
    *n_read = *n_colour = 0;
    lp_image_opts opts = o ? *o : lp_image_opts_default();
    opts.channels = 0; /* keep: gray files stay gray */
    char **classes = NULL;
    size_t k = 0;
    name_list all;
    int32_t *cls;
    lp_status st = list_set(dir, &classes, &k, &all, &cls, err);
    size_t take = max_files && max_files < all.n ? max_files : all.n;
    for (size_t t = 0; t < take && !st; t++) {
        lp_image img;
        st = lp_image_read(all.v[t * all.n / take], &opts, &img, err);
        if (!st) {
            *n_colour += lp_image_has_colour(&img);
            (*n_read)++;
        }
        lp_image_clear(&img);
    }
    free_names(all.v, all.n);
    free(cls);
    free_names(classes, k);
    return st;
}

lp_status lp_image_set_read_folder(const char *dir, size_t channels, size_t h, size_t w,
                                   const lp_image_opts *o, lp_image_set *out, lp_err *err)
{
    if (!dir || !out || (channels != 1 && channels != 3) || !h || !w)
        return lp_err_set(err, LP_EINVAL, "image folder: bad arguments (channels 1 or 3, size > 0)");
    memset(out, 0, sizeof *out);
    lp_image_opts opts = o ? *o : lp_image_opts_default();
    opts.channels = (int)channels;
    opts.min_w = w, opts.min_h = h; /* a big JPEG decodes at a DCT scale near the target */
    char **classes = NULL;
    size_t k = 0;
    name_list files;
    int32_t *cls;
    lp_status st = list_set(dir, &classes, &k, &files, &cls, err);
    if (!st && k < 1)
        st = lp_err_set(err, LP_EINVAL, "%s: no class sub-folders (expected %s/<class>/*.png)",
                        dir, dir);
    out->classes = classes;
    out->n_classes = k;
    out->c = channels, out->h = h, out->w = w;
    size_t d = channels * h * w;
    out->x = st || !files.n ? NULL : lp_mallocarray(files.n, d * sizeof *out->x);
    out->y = st || !files.n ? NULL : lp_mallocarray(files.n, sizeof *out->y);
    if (!st && files.n && (!out->x || !out->y))
        st = lp_err_set(err, LP_ENOMEM, "%s: out of memory for %zu images", dir, files.n);
    /* files decode in parallel (each its own libpng / libjpeg state); every file is tried, so
     * the error reported is the first failing file's in reading order, as one by one */
    size_t bad = SIZE_MAX;
    lp_err bad_err;
    lp_err_clear(&bad_err);
    if (!st) {
#pragma omp parallel for schedule(dynamic, 8)
        for (long f = 0; f < (long)files.n; f++) {
            lp_image img, rs;
            lp_err e;
            lp_err_clear(&e);
            lp_status s = lp_image_read(files.v[f], &opts, &img, &e);
            if (!s) {
                s = lp_image_resize(&img, w, h, &rs, &e);
                lp_image_clear(&img);
            }
            if (!s) {
                lp_image_to_chw(&rs, out->x + (size_t)f * d);
                out->y[f] = cls[f];
                lp_image_clear(&rs);
            } else {
#pragma omp critical(lp_image_folder_err)
                if ((size_t)f < bad) {
                    bad = (size_t)f;
                    bad_err = e;
                }
            }
        }
        if (bad != SIZE_MAX) {
            st = bad_err.status;
            if (err)
                *err = bad_err;
        } else {
            out->n = files.n;
        }
    }
    free_names(files.v, files.n);
    free(cls);
    if (!st && out->n == 0) {
        char other[160];
        other_files(dir, other, sizeof other);
        st = lp_err_set(err, LP_EINVAL, "%s: no .png / .jpg images in the class folders%s", dir,
                        other);
    }
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
