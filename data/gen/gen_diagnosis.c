/*
 * gen_diagnosis.c - the demo data of lepton-diagnosis (data/diagnosis/): 28x28 grayscale PNGs
 * in class folders (images/blob, images/ring, images/bar: a bright disc, an annulus, a
 * vertical bar, each at a seeded random position and size with noise) and symptoms.csv (text,
 * label) of short synthetic symptom descriptions for three conditions. Seeded: the same
 * output every run.   usage: lepton-gen-diagnosis OUT_DIR [PER_CLASS=40] [colour]
 * "colour" adds colour/red_lesion and colour/green_lesion: 32x32 RGB PNGs of a lesion on
 * gray skin whose two hues have the same luma (0.299 R + 0.587 G + 0.114 B within 0.5) and
 * the same random brightness, so only colour tells them apart (a gray model is at chance).
 */
#include "lepton/lepton.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void draw(int cls, lp_rng *r, uint8_t *px)
{
    double cx = 10 + 8 * lp_rng_uniform(r), cy = 10 + 8 * lp_rng_uniform(r);
    double rad = 4 + 3 * lp_rng_uniform(r);
    for (int y = 0; y < 28; y++)
        for (int x = 0; x < 28; x++) {
            double d = hypot(x - cx, y - cy), v;
            if (cls == 0)
                v = d < rad ? 220 : 20;
            else if (cls == 1)
                v = fabs(d - rad) < 1.5 ? 220 : 20;
            else
                v = fabs(x - cx) < 2 && fabs(y - cy) < rad + 3 ? 220 : 20;
            v += 25 * lp_rng_normal(r);
            px[y * 28 + x] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
}

/* A 32x32 RGB lesion: a disc of hue cls (0 red, 1 green; equal luma) at a random place, size
 * and brightness, on gray skin, with gray noise. */
static void draw_lesion(int cls, lp_rng *r, uint8_t *px)
{
    static const double hue[2][3] = {{220, 80, 120}, {56, 145, 114}};
    double cx = 11 + 10 * lp_rng_uniform(r), cy = 11 + 10 * lp_rng_uniform(r);
    double rad = 5 + 4 * lp_rng_uniform(r), br = 0.8 + 0.4 * lp_rng_uniform(r);
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 32; x++) {
            bool in = hypot(x - cx, y - cy) < rad;
            double noise = 12 * lp_rng_normal(r);
            for (int k = 0; k < 3; k++) {
                double v = (in ? br * hue[cls][k] : 170) + noise;
                px[(y * 32 + x) * 3 + k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
        }
}

static int write_png(const lp_image *img, const char *path)
{
    lp_err err;
    lp_buf b;
    lp_buf_init(&b);
    if (lp_image_encode_png(img, &b, &err) || lp_file_write(path, b.data, b.len, &err)) {
        fprintf(stderr, "gen: %s\n", err.msg);
        lp_buf_free(&b);
        return 1;
    }
    lp_buf_free(&b);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: lepton-gen-diagnosis OUT_DIR [PER_CLASS=40] [colour]\n");
        return 2;
    }
    int per = argc > 2 ? atoi(argv[2]) : 40;
    const char *names[3] = {"blob", "ring", "bar"};
    char path[4096];
    lp_rng r;
    lp_rng_seed(&r, 20240601);
    mkdir(argv[1], 0755);
    snprintf(path, sizeof path, "%s/images", argv[1]);
    mkdir(path, 0755);
    for (int c = 0; c < 3; c++) {
        snprintf(path, sizeof path, "%s/images/%s", argv[1], names[c]);
        mkdir(path, 0755);
        for (int i = 0; i < per; i++) {
            lp_image img = {28, 28, 1, malloc(784)};
            draw(c, &r, img.px);
            snprintf(path, sizeof path, "%s/images/%s/%03d.png", argv[1], names[c], i);
            if (write_png(&img, path))
                return 1;
            lp_image_clear(&img);
        }
    }
    static const char *sym[3][4] = {
        {"fever", "cough", "sore throat", "runny nose"},
        {"itchy rash", "red patches", "dry scaly skin", "skin peeling"},
        {"chest pain", "shortness of breath", "palpitations", "dizziness"}};
    static const char *label[3] = {"common cold", "psoriasis", "heart condition"};
    snprintf(path, sizeof path, "%s/symptoms.csv", argv[1]);
    FILE *f = fopen(path, "w");
    if (!f)
        return 1;
    fprintf(f, "text,label\n");
    for (int i = 0; i < 3 * per; i++) {
        int c = i % 3;
        int a = (int)lp_rng_below(&r, 4), b = (int)lp_rng_below(&r, 4);
        fprintf(f, "I have had %s and %s for %d days,%s\n", sym[c][a], sym[c][b],
                1 + (int)lp_rng_below(&r, 9), label[c]);
    }
    fclose(f);
    if (argc > 3 && strcmp(argv[3], "colour") == 0) {
        /* a stream of its own, so the gray images and texts stay as they were */
        lp_rng rc;
        lp_rng_seed(&rc, 20240602);
        const char *hues[2] = {"red_lesion", "green_lesion"};
        snprintf(path, sizeof path, "%s/colour", argv[1]);
        mkdir(path, 0755);
        for (int c = 0; c < 2; c++) {
            snprintf(path, sizeof path, "%s/colour/%s", argv[1], hues[c]);
            mkdir(path, 0755);
            for (int i = 0; i < per; i++) {
                lp_image img = {32, 32, 3, malloc(32 * 32 * 3)};
                draw_lesion(c, &rc, img.px);
                snprintf(path, sizeof path, "%s/colour/%s/%03d.png", argv[1], hues[c], i);
                if (write_png(&img, path))
                    return 1;
                lp_image_clear(&img);
            }
        }
    }
    printf("wrote %d images per class and %d symptom texts under %s\n", per, 3 * per, argv[1]);
    return 0;
}
