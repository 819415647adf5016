/*
 * image.h - image input: PNG and JPEG decoding (libpng, libjpeg), bilinear resizing, PNG
 * encoding (for heat maps), the IDX format of MNIST-like data sets, and a folder with one
 * sub-folder per class.
 *
 * An lp_image holds 8-bit pixels row-major and interleaved: (h, w, c) with c = 1 (gray) or 3
 * (RGB). Decoders never trust their input: a corrupt or truncated file, an image over the
 * pixel limit (checked from the header, before any pixel buffer is allocated) is an error
 * naming the input, never a crash. A CMYK or YCCK JPEG is converted to RGB (Adobe files
 * read as inverted CMYK, Photoshop's convention).
 * Channel handling: the caller asks for 1 (gray: RGB converted by the sRGB luma weights of
 * libpng / libjpeg), 3 (RGB: gray replicated), or 0 (keep: gray stays 1, anything with
 * colour becomes 3); alpha is composited over black (PNG) and dropped.
 * Everything here is thread-safe on distinct objects.
 */
#ifndef LEPTON_IMAGE_H
#define LEPTON_IMAGE_H

#include "lepton/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Default pixel limit: 16 megapixels (a 50-megapixel upload is refused before decoding). */
#define LP_IMAGE_MAX_PIXELS_DEFAULT (16u * 1024u * 1024u)

typedef struct lp_image {
    size_t w, h, c; /* width, height, channels (1 or 3) */
    uint8_t *px;    /* (h, w, c) owned; free with lp_image_clear */
} lp_image;

typedef struct lp_image_opts {
    int channels;      /* 0 keep, 1 gray, 3 RGB (default 0) */
    size_t max_pixels; /* w * h limit, >= 1 (default LP_IMAGE_MAX_PIXELS_DEFAULT), checked on
                          the stored size */
    size_t min_w, min_h; /* when both > 0, a JPEG may decode at 1/2, 1/4 or 1/8 of its size
                            (libjpeg's DCT scaling, which averages the pixels it drops) while
                            it stays at least min_w x min_h: for a caller that resizes it to
                            about that size anyway. PNG always decodes whole. Default 0 */
} lp_image_opts;

lp_image_opts lp_image_opts_default(void);
/* LP_EINVAL for channels not in {0, 1, 3} or max_pixels 0. */
lp_status lp_image_opts_check(const lp_image_opts *o, lp_err *err);
void lp_image_clear(lp_image *img); /* frees px and zeroes; NULL is a no-op */

/* Decode a PNG or JPEG (told apart by their magic bytes) from memory. `what` names the input
 * in messages ("upload.png"). Errors: LP_EFORMAT (not PNG / JPEG, corrupt, truncated),
 * LP_ETOOBIG (over max_pixels, naming the size and the limit), LP_ENOMEM. *out is new. */
lp_status lp_image_decode(const void *data, size_t len, const char *what,
                          const lp_image_opts *o, lp_image *out, lp_err *err);
/* lp_image_decode of a whole file (errors name the path). */
lp_status lp_image_read(const char *path, const lp_image_opts *o, lp_image *out, lp_err *err);

/* Bilinear resize to (h, w), same channels, half-pixel centres (OpenCV's INTER_LINEAR / PIL
 * without antialias). out is new. LP_EINVAL for a zero size, LP_ENOMEM. */
lp_status lp_image_resize(const lp_image *in, size_t w, size_t h, lp_image *out, lp_err *err);

/* Floats in [0, 1] in CHW order: out (c, h, w) = px / 255. */
void lp_image_to_chw(const lp_image *img, float *out);

/* Encode as an 8-bit PNG into b (appended). LP_EINVAL for a bad image, LP_ENOMEM. */
lp_status lp_image_encode_png(const lp_image *img, lp_buf *b, lp_err *err);

/* ---- IDX (the MNIST format) ----------------------------------------------------------------
 * Big-endian: images magic 00 00 08 03, u32 n, u32 rows, u32 cols, then n rows cols uint8, or
 * colour images magic 00 00 08 04, u32 n, u32 rows, u32 cols, u32 channels (1 or 3), then
 * n rows cols channels uint8 (interleaved, as numpy's (N, H, W, C)); labels magic 00 00 08 01,
 * u32 n, then n uint8. A file shorter or longer than its header
 * says is LP_EFORMAT naming the path and both sizes. Gzip is read transparently. */
typedef struct lp_idx {
    size_t n, h, w, c; /* c: 1 (magic 08 03) or the 4th dimension (08 04) */
    uint8_t *px;       /* (n, h, w, c) */
    uint8_t *labels; /* (n) or NULL when no labels file was given */
} lp_idx;

/* Parse IDX images from memory (`what` names them) into out (labels NULL). */
lp_status lp_idx_parse_images(const void *data, size_t len, const char *what, lp_idx *out,
                              lp_err *err);
/* Parse IDX labels from memory: *labels (n) is new. */
lp_status lp_idx_parse_labels(const void *data, size_t len, const char *what, uint8_t **labels,
                              size_t *n, lp_err *err);
/* Read an images file and (nullable) a labels file; a count mismatch is LP_EFORMAT naming
 * both files and counts. */
lp_status lp_idx_read(const char *images_path, const char *labels_path, lp_idx *out,
                      lp_err *err);
void lp_idx_clear(lp_idx *x);

/* ---- a folder of class sub-folders ---------------------------------------------------------
 * dir/<class>/<file>.png|.jpg|.jpeg (case-insensitive); classes are the sub-folder names in
 * byte order; a class's images are its folder's and its sub-folders' (to 16 levels: a
 * "normal/siteA/x.png" is class "normal"), by relative path in byte order. Every image is
 * decoded (o), converted to `channels` (1 or 3) and resized to (h, w). Hidden entries (dot)
 * are skipped. A file that does not decode is an error naming it; a folder without class
 * sub-folders or without images is LP_EINVAL. One class is read (an evaluation set may hold
 * one); a trainer checks for two. */
typedef struct lp_image_set {
    size_t n, c, h, w;
    float *x;        /* (n, c h w) in [0, 1], CHW per row */
    int32_t *y;      /* (n) class index */
    size_t n_classes;
    char **classes;  /* (n_classes) names */
} lp_image_set;

lp_status lp_image_set_read_folder(const char *dir, size_t channels, size_t h, size_t w,
                                   const lp_image_opts *o, lp_image_set *out, lp_err *err);
void lp_image_set_clear(lp_image_set *s);

/* Colour: an image holds colour when at least LP_IMAGE_COLOUR_SHARE of its pixels have channels
 * more than LP_IMAGE_COLOUR_SPREAD apart (of 255): JPEG noise on a gray picture saved as RGB
 * stays well under it, a tinted lesion does not. A 1-channel image never does. */
#define LP_IMAGE_COLOUR_SPREAD 24
#define LP_IMAGE_COLOUR_SHARE 0.01
bool lp_image_has_colour(const lp_image *img);
/* Decode up to max_files images of a class folder (laid out as lp_image_set_read_folder reads
 * it; evenly spread over its files in reading order; 0: all) with o's limits, channels kept:
 * *n_read of them, *n_colour holding colour. Errors as lp_image_set_read_folder. */
lp_status lp_image_folder_colour(const char *dir, size_t max_files, const lp_image_opts *o,
                                 size_t *n_read, size_t *n_colour, lp_err *err);

#ifdef __cplusplus
}
#endif
#endif
