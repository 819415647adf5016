/*
 * test_image.c - image.h: PNG round trip (gray, RGB, channel conversion), JPEG decoding
 * (made here with libjpeg), corrupt / truncated / huge / non-image inputs, bilinear resizing,
 * IDX parsing (count mismatches, bad magic, short files) and class-folder reading.
 * With LEPTON_WRITE_FUZZ_SEEDS=<dir> it also writes the fuzz seeds of fuzz_image.
 */
#include "lp_test.h"

#include "lepton/image.h"

#include <jpeglib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

static lp_image make(size_t w, size_t h, size_t c)
{
    lp_image img = {w, h, c, malloc(w * h * c)};
    for (size_t i = 0; i < w * h * c; i++)
        img.px[i] = (uint8_t)((i * 37 + 11) % 251);
    return img;
}

static void png_bytes(const lp_image *img, lp_buf *b)
{
    lp_buf_init(b);
    lp_err err;
    assert_int_equal(lp_image_encode_png(img, b, &err), LP_OK);
}

/* JPEG at quality 95 through libjpeg's memory destination of w x h pixels px (h, w, c) in
 * colour space in, stored as colour space as (JCS_UNKNOWN: libjpeg's default for in). */
static void jpeg_encode(size_t w, size_t h, size_t c, const uint8_t *px, J_COLOR_SPACE in,
                        J_COLOR_SPACE as, uint8_t **out, size_t *len)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    ci.err = jpeg_std_error(&je);
    jpeg_create_compress(&ci);
    unsigned char *mem = NULL;
    unsigned long size = 0;
    jpeg_mem_dest(&ci, &mem, &size);
    ci.image_width = (JDIMENSION)w;
    ci.image_height = (JDIMENSION)h;
    ci.input_components = (int)c;
    ci.in_color_space = in;
    jpeg_set_defaults(&ci);
    if (as != JCS_UNKNOWN)
        jpeg_set_colorspace(&ci, as);
    jpeg_set_quality(&ci, 95, TRUE);
    jpeg_start_compress(&ci, TRUE);
    while (ci.next_scanline < ci.image_height) {
        JSAMPROW row = (JSAMPROW)px + (size_t)ci.next_scanline * w * c;
        jpeg_write_scanlines(&ci, &row, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    *out = mem;
    *len = size;
}

/* JPEG of a gray or RGB img. */
static void jpeg_bytes(const lp_image *img, uint8_t **out, size_t *len)
{
    jpeg_encode(img->w, img->h, img->c, img->px, img->c == 1 ? JCS_GRAYSCALE : JCS_RGB,
                JCS_UNKNOWN, out, len);
}

/* A CMYK JPEG (ycck: stored as YCCK) of w x h pixels of one ink mix, written with the Adobe
 * marker libjpeg adds for CMYK, in Photoshop's inverted convention (255 - ink). */
static void cmyk_jpeg_bytes(size_t w, size_t h, const uint8_t ink[4], bool ycck, uint8_t **out,
                            size_t *len)
{
    uint8_t *px = malloc(4 * w * h);
    for (size_t i = 0; i < w * h; i++)
        for (int k = 0; k < 4; k++)
            px[4 * i + (size_t)k] = (uint8_t)(255 - ink[k]);
    jpeg_encode(w, h, 4, px, JCS_CMYK, ycck ? JCS_YCCK : JCS_CMYK, out, len);
    free(px);
}

static void maybe_seed(const char *name, const void *data, size_t len)
{
    const char *dir = getenv("LEPTON_WRITE_FUZZ_SEEDS");
    if (!dir)
        return;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    lp_test_write(path, data, len);
}

static void test_png_roundtrip(void **state)
{
    (void)state;
    lp_err err;
    lp_image g = make(9, 7, 1), rgb = make(6, 5, 3), out;
    lp_buf b;
    png_bytes(&g, &b);
    maybe_seed("gray.png", b.data, b.len);
    assert_int_equal(lp_image_decode(b.data, b.len, "g.png", NULL, &out, &err), LP_OK);
    assert_int_equal(out.w, 9);
    assert_int_equal(out.h, 7);
    assert_int_equal(out.c, 1);
    assert_memory_equal(out.px, g.px, 63);
    lp_image_clear(&out);
    /* gray asked as RGB: replicated */
    lp_image_opts o = lp_image_opts_default();
    o.channels = 3;
    assert_int_equal(lp_image_decode(b.data, b.len, "g.png", &o, &out, &err), LP_OK);
    assert_int_equal(out.c, 3);
    for (size_t i = 0; i < 63; i++)
        assert_true(out.px[3 * i] == g.px[i] && out.px[3 * i + 2] == g.px[i]);
    lp_image_clear(&out);
    lp_buf_free(&b);
    png_bytes(&rgb, &b);
    assert_int_equal(lp_image_decode(b.data, b.len, "rgb.png", NULL, &out, &err), LP_OK);
    assert_int_equal(out.c, 3);
    assert_memory_equal(out.px, rgb.px, 90);
    lp_image_clear(&out);
    /* RGB asked as gray: one channel, luma between min and max of the pixel's channels */
    o.channels = 1;
    assert_int_equal(lp_image_decode(b.data, b.len, "rgb.png", &o, &out, &err), LP_OK);
    assert_int_equal(out.c, 1);
    for (size_t i = 0; i < 30; i++) {
        int lo = rgb.px[3 * i], hi = lo;
        for (int k = 1; k < 3; k++)
            lo = rgb.px[3 * i + k] < lo ? rgb.px[3 * i + k] : lo,
            hi = rgb.px[3 * i + k] > hi ? rgb.px[3 * i + k] : hi;
        assert_true(out.px[i] + 2 >= lo && out.px[i] <= hi + 2);
    }
    lp_image_clear(&out);
    /* truncated inside the image data or before it: every cut fails cleanly (a file cut only
     * in its final IEND chunk still holds the whole image and decodes) */
    for (size_t cut = 0; cut < b.len - 12; cut += 5) {
        lp_status st = lp_image_decode(b.data, cut, "cut.png", NULL, &out, &err);
        assert_int_not_equal(st, LP_OK);
        assert_non_null(strstr(err.msg, "cut.png"));
    }
    /* a flipped byte in the pixel data: CRC / zlib error */
    b.data[b.len - 20] ^= 0x55;
    assert_int_equal(lp_image_decode(b.data, b.len, "bad.png", NULL, &out, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "PNG"));
    lp_buf_free(&b);
    lp_image_clear(&g);
    lp_image_clear(&rgb);
}

/* A valid PNG header claiming 8000 x 8000 (64 MP; the CRC is right) is refused by the pixel
 * limit before any pixel buffer exists. */
static void test_png_huge(void **state)
{
    (void)state;
    uint8_t png[8 + 25 + 12 + 12] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13,
                                'I',  'H', 'D', 'R', 0,    0,    0x1F, 0x40, 0, 0, 0x1F, 0x40,
                                8,    0,   0,   0,   0};
    uint32_t crc = (uint32_t)crc32(0, png + 12, 17);
    png[29] = (uint8_t)(crc >> 24), png[30] = (uint8_t)(crc >> 16);
    png[31] = (uint8_t)(crc >> 8), png[32] = (uint8_t)crc;
    /* an empty IDAT and an IEND chunk, so the header parses */
    memcpy(png + 33, "\0\0\0\0IDAT\x35\xaf\x06\x1e", 12);
    memcpy(png + 45, "\0\0\0\0IEND\xae\x42\x60\x82", 12);
    lp_err err;
    lp_image out;
    assert_int_equal(lp_image_decode(png, sizeof png, "big.png", NULL, &out, &err), LP_ETOOBIG);
    assert_non_null(strstr(err.msg, "8000x8000"));
    assert_non_null(strstr(err.msg, "limit"));
    assert_null(out.px);
}

static void test_jpeg(void **state)
{
    (void)state;
    lp_err err;
    /* smooth gradient so JPEG's loss is small */
    lp_image g = {16, 16, 1, malloc(256)}, rgb = {16, 8, 3, malloc(384)}, out;
    for (size_t i = 0; i < 256; i++)
        g.px[i] = (uint8_t)(8 * (i % 16) + 4 * (i / 16));
    for (size_t i = 0; i < 384; i++)
        rgb.px[i] = (uint8_t)(i % 3 == 0 ? 200 : i % 3 == 1 ? 100 : 30);
    uint8_t *j;
    size_t jl;
    jpeg_bytes(&g, &j, &jl);
    maybe_seed("gray.jpg", j, jl);
    assert_int_equal(lp_image_decode(j, jl, "g.jpg", NULL, &out, &err), LP_OK);
    assert_int_equal(out.c, 1);
    assert_int_equal(out.w, 16);
    for (size_t i = 0; i < 256; i++)
        assert_true(abs((int)out.px[i] - (int)g.px[i]) <= 6);
    lp_image_clear(&out);
    /* min_w x min_h: the smallest DCT scale that covers it (16 -> 8 -> 4 for 3 x 4; 2 for 7;
     * whole for 9), each pixel the mean of the block it stands for */
    lp_image_opts so = lp_image_opts_default();
    const size_t want[][3] = {{3, 4, 4}, {7, 7, 8}, {9, 2, 16}};
    for (size_t t = 0; t < 3; t++) {
        so.min_w = want[t][0], so.min_h = want[t][1];
        assert_int_equal(lp_image_decode(j, jl, "g.jpg", &so, &out, &err), LP_OK);
        assert_int_equal(out.w, want[t][2]);
        size_t s = 16 / out.w;
        double mean = 0;
        for (size_t y = 0; y < s; y++)
            for (size_t x = 0; x < s; x++)
                mean += g.px[y * 16 + x];
        assert_true(fabs(out.px[0] - mean / (double)(s * s)) <= 6);
        lp_image_clear(&out);
    }
    for (size_t cut = 2; cut < jl; cut += jl / 9) {
        assert_int_equal(lp_image_decode(j, cut, "cut.jpg", NULL, &out, &err), LP_EFORMAT);
        assert_non_null(strstr(err.msg, "cut.jpg"));
        assert_null(out.px);
    }
    free(j);
    jpeg_bytes(&rgb, &j, &jl);
    maybe_seed("rgb.jpg", j, jl);
    lp_image_opts o = lp_image_opts_default();
    o.channels = 1;
    assert_int_equal(lp_image_decode(j, jl, "rgb.jpg", &o, &out, &err), LP_OK);
    assert_int_equal(out.c, 1);
    /* luma of (200, 100, 30): 0.299 200 + 0.587 100 + 0.114 30 = 121 */
    assert_true(abs((int)out.px[40] - 121) <= 4);
    lp_image_clear(&out);
    o.max_pixels = 100; /* 128 pixels */
    assert_int_equal(lp_image_decode(j, jl, "rgb.jpg", &o, &out, &err), LP_ETOOBIG);
    free(j);
    lp_image_clear(&g);
    lp_image_clear(&rgb);
    /* not an image at all */
    assert_int_equal(lp_image_decode("GIF89a..", 8, "x.gif", NULL, &out, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "not a PNG or JPEG"));
    assert_int_equal(lp_image_decode("", 0, "empty", NULL, &out, &err), LP_EFORMAT);
    o.channels = 2;
    assert_int_equal(lp_image_decode("xxxx", 4, "x", &o, &out, &err), LP_EINVAL);
}

/* A CMYK (and a YCCK) JPEG decodes to RGB, or to gray by luma, instead of being refused:
 * ink C 0, M 200, Y 200, K 0 is RGB (255, 55, 55), luma 115. */
static void test_jpeg_cmyk(void **state)
{
    (void)state;
    lp_err err;
    const uint8_t ink[4] = {0, 200, 200, 0};
    for (int ycck = 0; ycck < 2; ycck++) {
        uint8_t *j;
        size_t jl;
        lp_image out;
        cmyk_jpeg_bytes(16, 8, ink, ycck, &j, &jl);
        maybe_seed(ycck ? "ycck.jpg" : "cmyk.jpg", j, jl);
        assert_int_equal(lp_image_decode(j, jl, "cmyk.jpg", NULL, &out, &err), LP_OK);
        assert_int_equal(out.c, 3);
        assert_int_equal(out.w, 16);
        assert_true(abs((int)out.px[3 * 20] - 255) <= 6);
        assert_true(abs((int)out.px[3 * 20 + 1] - 55) <= 6);
        assert_true(abs((int)out.px[3 * 20 + 2] - 55) <= 6);
        assert_true(lp_image_has_colour(&out));
        lp_image_clear(&out);
        lp_image_opts o = lp_image_opts_default();
        o.channels = 1;
        assert_int_equal(lp_image_decode(j, jl, "cmyk.jpg", &o, &out, &err), LP_OK);
        assert_int_equal(out.c, 1);
        assert_true(abs((int)out.px[20] - 115) <= 6);
        lp_image_clear(&out);
        /* a truncated one is still an error naming it */
        assert_int_equal(lp_image_decode(j, jl / 2, "half.jpg", NULL, &out, &err), LP_EFORMAT);
        assert_non_null(strstr(err.msg, "half.jpg"));
        free(j);
    }
}

static void test_resize(void **state)
{
    (void)state;
    lp_err err;
    lp_image in = {2, 1, 1, malloc(2)}, out;
    in.px[0] = 0;
    in.px[1] = 200;
    /* half-pixel centres: 2 -> 4 gives 0, 50, 150, 200 */
    assert_int_equal(lp_image_resize(&in, 4, 1, &out, &err), LP_OK);
    uint8_t want[4] = {0, 50, 150, 200};
    assert_memory_equal(out.px, want, 4);
    lp_image_clear(&out);
    lp_image big = make(30, 20, 3);
    memset(big.px, 77, 30 * 20 * 3);
    assert_int_equal(lp_image_resize(&big, 7, 9, &out, &err), LP_OK);
    for (size_t i = 0; i < 7 * 9 * 3; i++)
        assert_int_equal(out.px[i], 77);
    float chw[7 * 9 * 3];
    lp_image_to_chw(&out, chw);
    assert_true(fabsf(chw[100] - 77.0f / 255.0f) < 1e-6f);
    lp_image_clear(&out);
    assert_int_equal(lp_image_resize(&big, 0, 9, &out, &err), LP_EINVAL);
    lp_image_clear(&big);
    lp_image_clear(&in);
}

static void test_idx(void **state)
{
    (void)state;
    uint8_t imgs[16 + 2 * 3 * 2] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 2};
    for (int i = 0; i < 12; i++)
        imgs[16 + i] = (uint8_t)(i * 20);
    uint8_t labs[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 0};
    uint8_t labs3[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 1, 0, 1};
    maybe_seed("images.idx", imgs, sizeof imgs);
    maybe_seed("labels.idx", labs, sizeof labs);
    lp_err err;
    lp_idx x;
    assert_int_equal(lp_idx_parse_images(imgs, sizeof imgs, "i", &x, &err), LP_OK);
    assert_true(x.n == 2 && x.h == 3 && x.w == 2 && x.px[11] == 220);
    lp_idx_clear(&x);
    assert_int_equal(lp_idx_parse_images(imgs, sizeof imgs - 1, "short", &x, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "short"));
    assert_int_equal(lp_idx_parse_images(labs, sizeof labs, "lab", &x, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "magic"));
    char *pi = lp_test_tmpfile("imgs.idx"), *pl = lp_test_tmpfile("labs.idx"),
         *pl3 = lp_test_tmpfile("labs3.idx");
    lp_test_write(pi, imgs, sizeof imgs);
    lp_test_write(pl, labs, sizeof labs);
    lp_test_write(pl3, labs3, sizeof labs3);
    assert_int_equal(lp_idx_read(pi, pl, &x, &err), LP_OK);
    assert_true(x.labels[0] == 1 && x.labels[1] == 0);
    lp_idx_clear(&x);
    assert_int_equal(lp_idx_read(pi, pl3, &x, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "2 images but"));
    assert_non_null(strstr(err.msg, "3 labels"));
    assert_null(x.px);
    /* N x H x W x C colour images (magic 08 04): 2 images of 1x2 RGB; 2 channels refused */
    uint8_t rgb[20 + 2 * 2 * 3] = {0, 0, 8, 4, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3};
    for (int i = 0; i < 12; i++)
        rgb[20 + i] = (uint8_t)(i * 10);
    assert_int_equal(lp_idx_parse_images(rgb, sizeof rgb, "rgb", &x, &err), LP_OK);
    assert_true(x.n == 2 && x.h == 1 && x.w == 2 && x.c == 3 && x.px[11] == 110);
    lp_idx_clear(&x);
    assert_int_equal(lp_idx_parse_images(imgs, sizeof imgs, "gray", &x, &err), LP_OK);
    assert_int_equal(x.c, 1);
    lp_idx_clear(&x);
    assert_int_equal(lp_idx_parse_images(rgb, sizeof rgb - 1, "rgb", &x, &err), LP_EFORMAT);
    rgb[19] = 2;
    assert_int_equal(lp_idx_parse_images(rgb, sizeof rgb, "rgb2", &x, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "2 channels"));
    /* a header whose sizes overflow 64 bits is a size mismatch, not a wrap-around */
    uint8_t huge[20] = {0, 0, 8, 4, 0xff, 0xff, 0xff, 0xff, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 3};
    assert_int_equal(lp_idx_parse_images(huge, sizeof huge, "huge", &x, &err), LP_EFORMAT);
    /* multi-label (ChestMNIST: N x 14) labels are named as such */
    uint8_t ml[16] = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 2, 1, 0, 0, 1};
    uint8_t *lv;
    size_t nl;
    assert_int_equal(lp_idx_parse_labels(ml, sizeof ml, "ml", &lv, &nl, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "ml: 2 x 2 labels (a 2-D IDX file"));
    free(pi);
    free(pl);
    free(pl3);
}

static void test_folder(void **state)
{
    (void)state;
    char *root = lp_test_tmpfile("classes");
    char path[1024];
    mkdir(root, 0755);
    const char *cls[] = {"benign", "malignant"};
    lp_err err;
    for (int c = 0; c < 2; c++) {
        snprintf(path, sizeof path, "%s/%s", root, cls[c]);
        mkdir(path, 0755);
        for (int i = 0; i < 3; i++) {
            lp_image img = make(10 + (size_t)i, 8, c ? 3 : 1);
            memset(img.px, c ? 255 : 0, img.w * img.h * img.c);
            lp_buf b;
            png_bytes(&img, &b);
            snprintf(path, sizeof path, "%s/%s/%d.png", root, cls[c], i);
            lp_test_write(path, b.data, b.len);
            lp_buf_free(&b);
            lp_image_clear(&img);
        }
    }
    snprintf(path, sizeof path, "%s/benign/notes.txt", root);
    lp_test_write(path, "ignored", 7);
    lp_image_set s;
    assert_int_equal(lp_image_set_read_folder(root, 1, 4, 4, NULL, &s, &err), LP_OK);
    assert_int_equal(s.n, 6);
    assert_int_equal(s.n_classes, 2);
    assert_string_equal(s.classes[1], "malignant");
    assert_int_equal(s.y[0], 0);
    assert_int_equal(s.y[5], 1);
    assert_true(s.x[0] == 0.0f && s.x[5 * 16 + 3] == 1.0f);
    lp_image_set_clear(&s);
    /* a corrupt file is named */
    snprintf(path, sizeof path, "%s/malignant/9.png", root);
    lp_test_write(path, "\x89PNG\r\n\x1a\n garbage", 17);
    assert_int_equal(lp_image_set_read_folder(root, 1, 4, 4, NULL, &s, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "9.png"));
    /* two corrupt files (decoded in parallel): the first in reading order is the one named */
    snprintf(path, sizeof path, "%s/benign/zz.png", root);
    lp_test_write(path, "\x89PNG\r\n\x1a\n garbage", 17);
    assert_int_equal(lp_image_set_read_folder(root, 1, 4, 4, NULL, &s, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "zz.png"));
    assert_null(s.x);
    assert_int_equal(lp_image_set_read_folder("/nonexistent/dir", 1, 4, 4, NULL, &s, &err),
                     LP_ENOTFOUND);
    free(root);
}

/* Images in sub-folders of a class folder belong to that class; one class is read (an
 * evaluation set); no class folder is an error; colour is counted per image. */
static void test_folder_nested(void **state)
{
    (void)state;
    char *root = lp_test_tmpfile("nested");
    char path[1024];
    lp_err err;
    mkdir(root, 0755);
    snprintf(path, sizeof path, "%s/only", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/only/siteA", root);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/only/siteA/deeper", root);
    mkdir(path, 0755);
    const char *files[3] = {"only/b.png", "only/siteA/a.png", "only/siteA/deeper/c.png"};
    for (int i = 0; i < 3; i++) {
        lp_image img = make(6, 6, 3);
        memset(img.px, 0, 6 * 6 * 3);
        for (size_t p = 0; i == 1 && p < 36; p++)
            img.px[3 * p] = 200; /* red: colour */
        lp_buf b;
        png_bytes(&img, &b);
        snprintf(path, sizeof path, "%s/%s", root, files[i]);
        lp_test_write(path, b.data, b.len);
        lp_buf_free(&b);
        lp_image_clear(&img);
    }
    lp_image_set s;
    assert_int_equal(lp_image_set_read_folder(root, 3, 4, 4, NULL, &s, &err), LP_OK);
    assert_int_equal(s.n, 3);
    assert_int_equal(s.n_classes, 1);
    assert_string_equal(s.classes[0], "only");
    /* byte order of relative paths: b.png, siteA/a.png, siteA/deeper/c.png */
    assert_true(s.x[0] == 0.0f && s.x[48] > 0.7f && s.x[2 * 48] == 0.0f);
    lp_image_set_clear(&s);
    size_t nr, nc;
    assert_int_equal(lp_image_folder_colour(root, 0, NULL, &nr, &nc, &err), LP_OK);
    assert_true(nr == 3 && nc == 1);
    char *empty = lp_test_tmpfile("noclasses");
    mkdir(empty, 0755);
    assert_int_equal(lp_image_set_read_folder(empty, 1, 4, 4, NULL, &s, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "no class sub-folders"));
    /* class folders of files in formats not read (DICOM, BMP): the error counts them */
    char path2[4200];
    snprintf(path2, sizeof path2, "%s/cls", empty);
    mkdir(path2, 0755);
    for (int i = 0; i < 3; i++) {
        snprintf(path2, sizeof path2, "%s/cls/%d.%s", empty, i, i < 2 ? "dcm" : "bmp");
        FILE *fp = fopen(path2, "w");
        assert_non_null(fp);
        fclose(fp);
    }
    assert_int_equal(lp_image_set_read_folder(empty, 1, 4, 4, NULL, &s, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "no .png / .jpg images in the class folders (they hold"));
    assert_non_null(strstr(err.msg, "2 .dcm"));
    assert_non_null(strstr(err.msg, "1 .bmp"));
    free(empty);
    free(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_roundtrip), cmocka_unit_test(test_png_huge),
        cmocka_unit_test(test_jpeg),          cmocka_unit_test(test_resize),
        cmocka_unit_test(test_idx),           cmocka_unit_test(test_folder),
        cmocka_unit_test(test_jpeg_cmyk),     cmocka_unit_test(test_folder_nested),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
