/*
 * nn_augment.c - seeded image augmentation of a training batch (nn.h lp_nn_augment): random
 * horizontal / vertical flips, sub-pixel shifts and small rotations (one affine map per image,
 * bilinear resampling, zero outside the image) and a brightness offset.
 *
 * Host-side data preparation on the staged batch before it goes to the backend, so every
 * backend trains on the same augmented pixels. Each image draws from its own stream derived
 * from (seed, step, row), so a run is reproducible and independent of the batch layout.
 */
#include "model/nn_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct aug_spec {
    bool hflip, vflip;
    double shift, rotate, brightness;
} aug_spec;

static lp_status parse_spec(const char *s, aug_spec *a, lp_err *err)
{
    memset(a, 0, sizeof *a);
    const char *p = s;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char tok[48];
        if (len == 0 || len >= sizeof tok)
            return lp_err_set(err, LP_EINVAL, "nn: augment=\"%s\": empty or overlong item", s);
        memcpy(tok, p, len);
        tok[len] = '\0';
        double v = 0;
        char *end = NULL;
        const char *eq = strchr(tok, '=');
        if (eq) {
            v = strtod(eq + 1, &end);
            if (end == eq + 1 || *end || !isfinite(v) || v < 0)
                return lp_err_set(err, LP_EINVAL,
                                  "nn: augment=\"%s\": \"%s\" needs a finite value >= 0", s, tok);
        }
        if (strcmp(tok, "hflip") == 0)
            a->hflip = true;
        else if (strcmp(tok, "vflip") == 0)
            a->vflip = true;
        else if (strncmp(tok, "shift=", 6) == 0 && v <= 64)
            a->shift = v;
        else if (strncmp(tok, "rotate=", 7) == 0 && v <= 180)
            a->rotate = v;
        else if (strncmp(tok, "brightness=", 11) == 0 && v <= 1)
            a->brightness = v;
        else
            return lp_err_set(err, LP_EINVAL,
                              "nn: augment=\"%s\": \"%s\" is not one of hflip, vflip, "
                              "shift=P (0..64), rotate=D (0..180), brightness=B (0..1)",
                              s, tok);
        if (!e)
            break;
        p = e + 1;
    }
    return LP_OK;
}

/* Bilinear sample of plane (h, w) at (y, x); 0 outside. */
static float sample(const float *plane, size_t h, size_t w, double y, double x)
{
    double fy = floor(y), fx = floor(x);
    long y0 = (long)fy, x0 = (long)fx;
    double ty = y - fy, tx = x - fx;
    double s = 0.0;
    for (int dy = 0; dy < 2; dy++)
        for (int dx = 0; dx < 2; dx++) {
            long yy = y0 + dy, xx = x0 + dx;
            if (yy < 0 || xx < 0 || yy >= (long)h || xx >= (long)w)
                continue;
            double wgt = (dy ? ty : 1 - ty) * (dx ? tx : 1 - tx);
            s += wgt * plane[(size_t)yy * w + (size_t)xx];
        }
    return (float)s;
}

lp_status lp_nn_augment(const lp_nn_opts *o, float *x, size_t nb, uint64_t seed, uint64_t step,
                        lp_err *err)
{
    if (!o || (nb && !x))
        return lp_err_set(err, LP_EINVAL, "nn augment: options or batch is NULL");
    aug_spec a;
    lp_status st = parse_spec(o->augment ? o->augment : "", &a, err);
    if (st || nb == 0)
        return st;
    size_t c, h, w;
    if (!o->input_shape || sscanf(o->input_shape, "%zux%zux%zu", &c, &h, &w) != 3 || !c || !h ||
        !w)
        return lp_err_set(err, LP_EINVAL, "nn: augment=\"%s\" needs input_shape CxHxW",
                          o->augment);
    size_t plane = h * w, d = c * plane;
    float *tmp = lp_mallocarray(plane, sizeof *tmp);
    if (!tmp)
        return lp_err_set(err, LP_ENOMEM, "nn augment: out of memory");
    double cy = (double)(h - 1) / 2.0, cx = (double)(w - 1) / 2.0;
    for (size_t r = 0; r < nb; r++) {
        lp_rng rng;
        lp_rng_seed(&rng, seed ^ (step * 0x9E3779B97F4A7C15ull) ^ ((r + 1) * 0xD1B54A32D192ED03ull));
        bool hf = a.hflip && lp_rng_uniform(&rng) < 0.5;
        bool vf = a.vflip && lp_rng_uniform(&rng) < 0.5;
        double ty = a.shift * (2 * lp_rng_uniform(&rng) - 1);
        double tx = a.shift * (2 * lp_rng_uniform(&rng) - 1);
        double ang = a.rotate * (2 * lp_rng_uniform(&rng) - 1) * M_PI / 180.0;
        double br = a.brightness * (2 * lp_rng_uniform(&rng) - 1);
        float *row = x + r * d;
        double ca = cos(ang), sa = sin(ang);
        bool geom = hf || vf || ty != 0 || tx != 0 || ang != 0;
        float lo = row[0], hi = row[0];
        for (size_t i = 1; i < d; i++)
            lo = row[i] < lo ? row[i] : lo, hi = row[i] > hi ? row[i] : hi;
        for (size_t ch = 0; ch < c && geom; ch++) {
            float *pl = row + ch * plane;
            memcpy(tmp, pl, plane * sizeof *tmp);
            for (size_t yy = 0; yy < h; yy++)
                for (size_t xx = 0; xx < w; xx++) {
                    /* output (yy, xx) reads the source point that the inverse map sends it to */
                    double oy = (double)(vf ? h - 1 - yy : yy) - cy - ty;
                    double ox = (double)(hf ? w - 1 - xx : xx) - cx - tx;
                    double sy = ca * oy + sa * ox + cy, sx = -sa * oy + ca * ox + cx;
                    pl[yy * w + xx] = sample(tmp, h, w, sy, sx);
                }
        }
        if (br != 0.0) {
            float off = (float)(br * (double)(hi - lo));
            for (size_t i = 0; i < d; i++)
                row[i] += off;
        }
    }
    free(tmp);
    return LP_OK;
}
