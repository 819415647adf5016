/*
 * gen_fraud.c - writes data/fraud/transactions.csv, a small simulated card-transaction stream
 * for lepton-fraud (the CLI test, the demo). Synthetic and made by this project, modelled on the
 * simulator of the Fraud Detection Handbook (Le Borgne et al. 2022, chapter 3). Seeded, so the
 * file is reproducible byte for byte:
 *     lepton-gen-fraud [--customers N] [--terminals N] [--days N] [--seed S] > transactions.csv
 *
 * Customers live at a point of a 100 x 100 square and buy at terminals within radius 25, a
 * Poisson number of times a day around midday, amounts normal around their own mean. Fraud
 * patterns (the label tx_fraud and the pattern in tx_fraud_scenario, never a feature):
 *   1  any amount above 220 is fraud (a plain amount rule catches it);
 *   2  compromised terminals: on 15% of days (per 200 terminals) a terminal turns for the next
 *      28 days, every purchase there is fraud (terminal risk from delayed labels catches it);
 *   3  compromised cards: on half the days (per 250 customers) a customer's card is stolen for
 *      the next 14 days, a third of their purchases are fraud with amounts x5 (amount relative
 *      to the customer's history catches it).
 * The output is sorted by time; ids are row numbers.
 */
#include "lepton/base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct cust {
    double x, y, mean, sd, rate;
    int *terms;
    size_t n_terms;
} cust;

typedef struct txn {
    double t;
    int c, term, scen;
    double amount;
} txn;

static int cmp_t(const void *a, const void *b)
{
    const txn *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return (x->c > y->c) - (x->c < y->c);
}

static int poisson(lp_rng *r, double lambda)
{
    double l = exp(-lambda), p = 1;
    int k = 0;
    do {
        k++;
        p *= lp_rng_uniform(r);
    } while (p > l);
    return k - 1;
}

int main(int argc, char **argv)
{
    size_t nc = 250, nt = 200, days = 50;
    uint64_t seed = 20261127;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--customers"))
            nc = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--terminals"))
            nt = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--days"))
            days = strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--seed"))
            seed = strtoull(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "usage: lepton-gen-fraud [--customers N] [--terminals N] "
                            "[--days N] [--seed S]\n");
            return 2;
        }
    }
    if (nc < 10 || nt < 10 || days < 2 || nc > 100000 || nt > 100000 || days > 3650) {
        fprintf(stderr, "lepton-gen-fraud: need 10..100000 customers and terminals, 2..3650 "
                        "days\n");
        return 2;
    }
    lp_rng r;
    lp_rng_seed(&r, seed);
    double *tx_ = malloc(nt * sizeof(double)), *ty = malloc(nt * sizeof(double));
    cust *cs = calloc(nc, sizeof(cust));
    double *term_until = calloc(nt, sizeof(double)), *cust_until = calloc(nc, sizeof(double));
    if (!tx_ || !ty || !cs || !term_until || !cust_until)
        return 1;
    for (size_t t = 0; t < nt; t++) {
        tx_[t] = 100 * lp_rng_uniform(&r);
        ty[t] = 100 * lp_rng_uniform(&r);
    }
    for (size_t c = 0; c < nc; c++) {
        cust *u = &cs[c];
        u->x = 100 * lp_rng_uniform(&r);
        u->y = 100 * lp_rng_uniform(&r);
        u->mean = 5 + 95 * lp_rng_uniform(&r);
        u->sd = u->mean / 2;
        u->rate = 4 * lp_rng_uniform(&r);
        u->terms = malloc(nt * sizeof(int));
        if (!u->terms)
            return 1;
        for (size_t t = 0; t < nt; t++)
            if (hypot(u->x - tx_[t], u->y - ty[t]) < 25)
                u->terms[u->n_terms++] = (int)t;
    }
    size_t cap = 1024, n = 0;
    txn *v = malloc(cap * sizeof(txn));
    const double start = 1735689600; /* 2025-01-01T00:00:00Z */
    for (size_t d = 0; d < days; d++) {
        double day0 = start + 86400.0 * (double)d;
        /* the handbook's 2 terminals and 3 cards a day of 10000 / 5000, scaled to this size */
        if (lp_rng_uniform(&r) < 0.15 * (double)nt / 200)
            term_until[lp_rng_below(&r, nt)] = day0 + 28 * 86400.0;
        if (lp_rng_uniform(&r) < 0.5 * (double)nc / 250)
            cust_until[lp_rng_below(&r, nc)] = day0 + 14 * 86400.0;
        for (size_t c = 0; c < nc; c++) {
            cust *u = &cs[c];
            if (!u->n_terms)
                continue;
            int m = poisson(&r, u->rate);
            for (int k = 0; k < m; k++) {
                double sec = 43200 + 20000 * lp_rng_normal(&r);
                if (sec < 0 || sec >= 86400)
                    continue;
                if (n == cap) {
                    cap *= 2;
                    txn *g = realloc(v, cap * sizeof(txn));
                    if (!g)
                        return 1;
                    v = g;
                }
                txn *x = &v[n++];
                x->t = day0 + floor(sec);
                x->c = (int)c;
                x->term = u->terms[lp_rng_below(&r, u->n_terms)];
                x->amount = u->mean + u->sd * lp_rng_normal(&r);
                if (x->amount < 0)
                    x->amount = u->mean * lp_rng_uniform(&r);
                x->scen = 0;
                if (x->amount > 220)
                    x->scen = 1;
                else if (x->t < term_until[x->term])
                    x->scen = 2;
                else if (x->t < cust_until[c] && lp_rng_uniform(&r) < 1.0 / 3) {
                    x->amount *= 5;
                    x->scen = 3;
                }
                x->amount = round(x->amount * 100) / 100;
            }
        }
    }
    qsort(v, n, sizeof(txn), cmp_t);
    printf("transaction_id,tx_datetime,customer_id,terminal_id,tx_amount,tx_fraud,"
           "tx_fraud_scenario\n");
    for (size_t i = 0; i < n; i++) {
        time_t tt = (time_t)v[i].t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        char ts[32];
        strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
        printf("%zu,%s,%d,%d,%.2f,%d,%d\n", i, ts, v[i].c, v[i].term, v[i].amount,
               v[i].scen != 0, v[i].scen);
    }
    for (size_t c = 0; c < nc; c++)
        free(cs[c].terms);
    free(cs);
    free(v);
    free(tx_);
    free(ty);
    free(term_until);
    free(cust_until);
    return 0;
}
