/*
 * gen_shop.c - lepton-gen-shop: a small seeded synthetic shop for lepton-recommend.
 *
 * Writes into OUT (default data/shop): items.csv (item_id, category, price), events.csv
 * (user_id, item_id, type, timestamp) and the per-user time split of it, train.csv and
 * test.csv (each user's last 3 events are test). Users have one or two favourite categories;
 * 80% of their events fall there, Zipf-skewed toward each category's head items, the rest
 * anywhere; event types are view 80%, cart 15%, purchase 5%; timestamps span 60 days from
 * 2026-01-01. The same seed writes the same files.
 *
 * usage: lepton-gen-shop [--out DIR] [--seed 7] [--users 300] [--items 240]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "lepton/base.h"

#define N_CAT 8
static const char *const CATS[N_CAT] = {"books", "music", "garden", "kitchen",
                                        "toys",  "sports", "beauty", "tools"};

typedef struct ev {
    int user, item, type;
    double t;
} ev;

static int ev_cmp(const void *a, const void *b)
{
    const ev *x = a, *y = b;
    if (x->user != y->user) return x->user - y->user;
    return (x->t > y->t) - (x->t < y->t);
}

/* Zipf(1) rank in [0, n) by inversion over the harmonic weights. */
static int zipf(lp_rng *r, int n)
{
    double h = 0;
    for (int i = 1; i <= n; i++) h += 1.0 / i;
    double u = lp_rng_uniform(r) * h;
    for (int i = 1; i <= n; i++) {
        u -= 1.0 / i;
        if (u <= 0) return i - 1;
    }
    return n - 1;
}

int main(int argc, char **argv)
{
    const char *out = "data/shop";
    long seed = 7, n_users = 300, n_items = 240;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--out") == 0) out = argv[i + 1];
        else if (strcmp(argv[i], "--seed") == 0) seed = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--users") == 0) n_users = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--items") == 0) n_items = atol(argv[i + 1]);
        else {
            fprintf(stderr, "usage: lepton-gen-shop [--out DIR] [--seed 7] [--users 300] "
                            "[--items 240]\n");
            return 2;
        }
    }
    if (argc % 2 == 0 || n_users < 1 || n_users > 100000 || n_items < N_CAT ||
        n_items > 100000) {
        fprintf(stderr, "lepton-gen-shop: bad arguments (users 1..100000, items 8..100000, "
                        "flags in pairs)\n");
        return 2;
    }
    mkdir(out, 0755);
    char path[4096];
    lp_rng r;
    lp_rng_seed(&r, (uint64_t)seed);
    int per_cat = (int)(n_items / N_CAT);
    snprintf(path, sizeof path, "%s/items.csv", out);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    fprintf(f, "item_id,category,price\n");
    for (int i = 0; i < per_cat * N_CAT; i++)
        fprintf(f, "p%04d,%s,%.2f\n", i, CATS[i / per_cat], 2.0 + lp_rng_uniform(&r) * 98.0);
    fclose(f);

    size_t cap = (size_t)n_users * 40, n = 0;
    ev *e = malloc(cap * sizeof *e);
    if (!e) return 1;
    const double t0 = 1767225600.0; /* 2026-01-01T00:00:00Z */
    for (int u = 0; u < n_users; u++) {
        int fav[2] = {(int)lp_rng_below(&r, N_CAT), (int)lp_rng_below(&r, N_CAT)};
        int n_fav = lp_rng_below(&r, 2) ? 2 : 1;
        int cnt = 8 + (int)lp_rng_below(&r, 30);
        for (int t = 0; t < cnt && n < cap; t++) {
            int item;
            if (lp_rng_uniform(&r) < 0.8) {
                int c = fav[lp_rng_below(&r, (uint64_t)n_fav)];
                item = c * per_cat + zipf(&r, per_cat);
            } else {
                item = (int)lp_rng_below(&r, (uint64_t)(per_cat * N_CAT));
            }
            double p = lp_rng_uniform(&r);
            e[n++] = (ev){u, item, p < 0.8 ? 0 : p < 0.95 ? 1 : 2,
                          t0 + floor(lp_rng_uniform(&r) * 60 * 86400)};
        }
    }
    qsort(e, n, sizeof *e, ev_cmp);
    static const char *const TYPES[3] = {"view", "cart", "purchase"};
    const char *names[3] = {"events.csv", "train.csv", "test.csv"};
    FILE *fs[3];
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", out, names[k]);
        if (!(fs[k] = fopen(path, "w"))) {
            perror(path);
            return 1;
        }
        fprintf(fs[k], "user_id,item_id,type,timestamp\n");
    }
    for (size_t a = 0; a < n;) {
        size_t b = a;
        while (b < n && e[b].user == e[a].user) b++;
        for (size_t t = a; t < b; t++) {
            time_t ts = (time_t)e[t].t;
            struct tm tm;
            gmtime_r(&ts, &tm);
            char when[32];
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
            for (int k = 0; k < 3; k++) {
                bool test = t + 3 >= b;
                if (k == 1 && test) continue;
                if (k == 2 && !test) continue;
                fprintf(fs[k], "u%04d,p%04d,%s,%s\n", e[t].user, e[t].item, TYPES[e[t].type],
                        when);
            }
        }
        a = b;
    }
    for (int k = 0; k < 3; k++) fclose(fs[k]);
    free(e);
    printf("wrote %s: %d items, %ld users, %zu events\n", out, per_cat * N_CAT, n_users, n);
    return 0;
}
