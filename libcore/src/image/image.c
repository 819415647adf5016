/*
 * image.c - PNG / JPEG decoding, bilinear resizing and PNG encoding (image.h).
 *
 * PNG goes through libpng's simplified API (png_image_*), which handles every bit depth,
 * palette, gamma and alpha and reports errors as a message instead of aborting. JPEG goes
 * through libjpeg with an error manager that longjmps back here, and treats libjpeg's
 * corrupt-data warnings (a truncated scan, for one) as errors, because a half-decoded grey
 * image is not the image the user sent. The pixel limit is checked from the header before
 * any pixel buffer exists.
 */
#include "lepton/image.h"

#include <jpeglib.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

lp_image_opts lp_image_opts_default(void)
{
    lp_image_opts o = {0, LP_IMAGE_MAX_PIXELS_DEFAULT, 0, 0};
    return o;
}

lp_status lp_image_opts_check(const lp_image_opts *o, lp_err *err)
{
    if (!o)
        return lp_err_set(err, LP_EINVAL, "image: options are NULL");
    if (o->channels != 0 && o->channels != 1 && o->channels != 3)
        return lp_err_set(err, LP_EINVAL, "image: channels=%d: must be 0 (keep), 1 or 3",
                          o->channels);
    if (o->max_pixels == 0)
        return lp_err_set(err, LP_EINVAL, "image: max_pixels is 0; expected >= 1");
    return LP_OK;
}

void lp_image_clear(lp_image *img)
{
    if (!img)
        return;
    free(img->px);
    memset(img, 0, sizeof *img);
}

static lp_status too_big(const char *what, size_t w, size_t h, size_t limit, lp_err *err)
{
    return lp_err_set(err, LP_ETOOBIG, "%s: image is %zux%zu = %.1f megapixels, over the limit of "
                      "%.1f megapixels", what, w, h, (double)w * (double)h / 1e6,
                      (double)limit / 1e6);
}

/* ---- PNG ------------------------------------------------------------------------------------*/

static lp_status decode_png(const void *data, size_t len, const char *what, const lp_image_opts *o,
                            lp_image *out, lp_err *err)
{
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&im, data, len)) {
        lp_status st = lp_err_set(err, LP_EFORMAT, "%s: corrupt PNG: %s", what, im.message);
        png_image_free(&im);
        return st;
    }
    size_t w = im.width, h = im.height;
    if (w == 0 || h == 0 || (double)w * (double)h > (double)o->max_pixels) {
        png_image_free(&im);
        return too_big(what, w, h, o->max_pixels, err);
    }
    bool colour = (im.format & PNG_FORMAT_FLAG_COLOR) != 0;
    size_t c = o->channels ? (size_t)o->channels : colour ? 3 : 1;
    im.format = c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB; /* alpha composited on black */
    uint8_t *px = lp_mallocarray(w * h, c);
    if (!px) {
        png_image_free(&im);
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory for %zux%zu pixels", what, w, h);
    }
    png_color black = {0, 0, 0};
    if (!png_image_finish_read(&im, &black, px, (png_int_32)(w * c), NULL)) {
        lp_status st = lp_err_set(err, LP_EFORMAT, "%s: corrupt or truncated PNG: %s", what,
                                  im.message);
        png_image_free(&im);
        free(px);
        return st;
    }
    out->w = w, out->h = h, out->c = c, out->px = px;
    return LP_OK;
}

/* ---- JPEG -----------------------------------------------------------------------------------*/

typedef struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char msg[JMSG_LENGTH_MAX];
    bool warned;
} jerr;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jerr *e = (jerr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, e->msg);
    longjmp(e->jump, 1);
}

/* Level -1 is a corrupt-data warning (e.g. premature end of data): keep the first. */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    jerr *e = (jerr *)cinfo->err;
    if (level < 0 && !e->warned) {
        (*cinfo->err->format_message)(cinfo, e->msg);
        e->warned = true;
    }
}

/* In place: n CMYK pixels px (n, 4) to RGB (n, 3) or, c == 1, gray (n, 1). Adobe files (an
 * APP14 marker, Photoshop's convention, which PIL and ImageMagick follow) store CMYK inverted,
 * 255 meaning no ink; R = (1 - C)(1 - K) in [0, 1] either way. Gray takes the luma weights of
 * libjpeg's own RGB -> gray (0.299, 0.587, 0.114). */
static void cmyk_to_rgb_or_gray(uint8_t *px, size_t n, bool inverted, size_t c)
{
    for (size_t i = 0; i < n; i++) {
        unsigned v[4];
        for (int t = 0; t < 4; t++)
            v[t] = inverted ? px[4 * i + (size_t)t] : 255u - px[4 * i + (size_t)t];
        unsigned r = (v[0] * v[3] + 127) / 255, g = (v[1] * v[3] + 127) / 255;
        unsigned b = (v[2] * v[3] + 127) / 255;
        if (c == 1) {
            px[i] = (uint8_t)((299 * r + 587 * g + 114 * b + 500) / 1000);
        } else {
            px[3 * i] = (uint8_t)r;
            px[3 * i + 1] = (uint8_t)g;
            px[3 * i + 2] = (uint8_t)b;
        }
    }
}

static lp_status decode_jpeg(const void *data, size_t len, const char *what,
                             const lp_image_opts *o, lp_image *out, lp_err *err)
{
    struct jpeg_decompress_struct cinfo;
    jerr je;
    memset(&je, 0, sizeof je);
    cinfo.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jpeg_on_error;
    je.pub.emit_message = jpeg_on_message;
    uint8_t *volatile px = NULL;
    if (setjmp(je.jump)) {
        jpeg_destroy_decompress(&cinfo);
        free(px);
        return lp_err_set(err, LP_EFORMAT, "%s: corrupt or truncated JPEG: %s", what, je.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, (const unsigned char *)data, (unsigned long)len);
    jpeg_read_header(&cinfo, TRUE);
    size_t w = cinfo.image_width, h = cinfo.image_height;
    if (w == 0 || h == 0 || (double)w * (double)h > (double)o->max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        return too_big(what, w, h, o->max_pixels, err);
    }
    /* CMYK / YCCK (print workflows) decode to CMYK and are converted to RGB here: libjpeg
     * converts them to no other colour space */
    bool cmyk = cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK;
    bool colour = cmyk || cinfo.num_components >= 3;
    size_t c = o->channels ? (size_t)o->channels : colour ? 3 : 1;
    cinfo.out_color_space = cmyk ? JCS_CMYK : c == 1 ? JCS_GRAYSCALE : JCS_RGB;
    if (o->min_w && o->min_h) /* the smallest DCT scale that still covers min_w x min_h */
        for (unsigned denom = 8; denom >= 2; denom /= 2)
            if ((w + denom - 1) / denom >= o->min_w && (h + denom - 1) / denom >= o->min_h) {
                cinfo.scale_num = 1;
                cinfo.scale_denom = denom;
                break;
            }
    jpeg_start_decompress(&cinfo);
    w = cinfo.output_width, h = cinfo.output_height;
    size_t oc = cmyk ? 4 : c;
    if ((size_t)cinfo.output_components != oc) {
        jpeg_destroy_decompress(&cinfo);
        return lp_err_set(err, LP_EFORMAT, "%s: JPEG decodes to %d channels, expected %zu", what,
                          cinfo.output_components, oc);
    }
    px = lp_mallocarray(w * h, oc);
    if (!px) {
        jpeg_destroy_decompress(&cinfo);
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory for %zux%zu pixels", what, w, h);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = px + (size_t)cinfo.output_scanline * w * oc;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    bool inverted = cinfo.saw_Adobe_marker;
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    if (je.warned) {
        free(px);
        return lp_err_set(err, LP_EFORMAT, "%s: corrupt or truncated JPEG: %s", what, je.msg);
    }
    if (cmyk)
        cmyk_to_rgb_or_gray(px, w * h, inverted, c);
    out->w = w, out->h = h, out->c = c, out->px = px;
    return LP_OK;
}

lp_status lp_image_decode(const void *data, size_t len, const char *what, const lp_image_opts *o,
                          lp_image *out, lp_err *err)
{
    what = what ? what : "image";
    if (!out)
        return lp_err_set(err, LP_EINVAL, "%s: out is NULL", what);
    memset(out, 0, sizeof *out);
    lp_image_opts def = lp_image_opts_default();
    if (!o)
        o = &def;
    lp_status st = lp_image_opts_check(o, err);
    if (st)
        return st;
    const uint8_t *b = data;
    if (!data || len < 4)
        return lp_err_set(err, LP_EFORMAT, "%s: %zu bytes is not an image (expected PNG or JPEG)",
                          what, data ? len : 0);
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    if (len >= 8 && memcmp(b, png_magic, 8) == 0)
        return decode_png(data, len, what, o, out, err);
    if (b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF)
        return decode_jpeg(data, len, what, o, out, err);
    return lp_err_set(err, LP_EFORMAT, "%s: not a PNG or JPEG (first bytes %02x %02x %02x %02x)",
                      what, b[0], b[1], b[2], b[3]);
}

lp_status lp_image_read(const char *path, const lp_image_opts *o, lp_image *out, lp_err *err)
{
    uint8_t *data;
    size_t len;
    lp_status st = lp_file_read(path, &data, &len, err);
    if (st)
        return st;
    st = lp_image_decode(data, len, path, o, out, err);
    free(data);
    return st;
}

lp_status lp_image_resize(const lp_image *in, size_t w, size_t h, lp_image *out, lp_err *err)
{
    if (!in || !out || !in->px || w == 0 || h == 0 || in->w == 0 || in->h == 0)
        return lp_err_set(err, LP_EINVAL, "image resize: empty input or zero target size");
    size_t c = in->c;
    uint8_t *px = lp_mallocarray(w * h, c);
    if (!px)
        return lp_err_set(err, LP_ENOMEM, "image resize: out of memory for %zux%zu", w, h);
    double sy = (double)in->h / (double)h, sx = (double)in->w / (double)w;
    for (size_t y = 0; y < h; y++) {
        double fy = ((double)y + 0.5) * sy - 0.5;
        if (fy < 0)
            fy = 0;
        size_t y0 = (size_t)fy, y1 = y0 + 1 < in->h ? y0 + 1 : y0;
        double ty = fy - (double)y0;
        for (size_t x = 0; x < w; x++) {
            double fx = ((double)x + 0.5) * sx - 0.5;
            if (fx < 0)
                fx = 0;
            size_t x0 = (size_t)fx, x1 = x0 + 1 < in->w ? x0 + 1 : x0;
            double tx = fx - (double)x0;
            if (x0 >= in->w)
                x0 = x1 = in->w - 1, tx = 0;
            for (size_t k = 0; k < c; k++) {
                double a = in->px[(y0 * in->w + x0) * c + k], b = in->px[(y0 * in->w + x1) * c + k];
                double cc = in->px[(y1 * in->w + x0) * c + k], d = in->px[(y1 * in->w + x1) * c + k];
                double v = (1 - ty) * ((1 - tx) * a + tx * b) + ty * ((1 - tx) * cc + tx * d);
                px[(y * w + x) * c + k] = (uint8_t)(v + 0.5);
            }
        }
    }
    out->w = w, out->h = h, out->c = c, out->px = px;
    return LP_OK;
}

void lp_image_to_chw(const lp_image *img, float *out)
{
    size_t plane = img->w * img->h;
    for (size_t i = 0; i < plane; i++)
        for (size_t k = 0; k < img->c; k++)
            out[k * plane + i] = (float)img->px[i * img->c + k] / 255.0f;
}

lp_status lp_image_encode_png(const lp_image *img, lp_buf *b, lp_err *err)
{
    if (!img || !img->px || !b || (img->c != 1 && img->c != 3) || !img->w || !img->h)
        return lp_err_set(err, LP_EINVAL, "png encode: bad image");
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    im.width = (png_uint_32)img->w;
    im.height = (png_uint_32)img->h;
    im.format = img->c == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    png_alloc_size_t size = 0;
    if (!png_image_write_to_memory(&im, NULL, &size, 0, img->px, 0, NULL))
        return lp_err_set(err, LP_EINVAL, "png encode: %s", im.message);
    void *mem = malloc(size);
    if (!mem)
        return lp_err_set(err, LP_ENOMEM, "png encode: out of memory");
    if (!png_image_write_to_memory(&im, mem, &size, 0, img->px, 0, NULL)) {
        free(mem);
        return lp_err_set(err, LP_EINVAL, "png encode: %s", im.message);
    }
    lp_buf_put(b, mem, size);
    free(mem);
    return lp_buf_status(b, err);
}
