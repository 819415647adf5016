/*
 * gen_customers.c - writes data/customers.csv, the small shop's customer table the pipeline
 * demo runs on. Synthetic and made by this project (free to ship). Seeded, so the file is
 * reproducible byte for byte:  lepton-gen-customers [--rows N] [--seed S] > customers.csv
 *
 * What it plants, so profile and clean have something to find:
 *   - missing values (empty, NA, ?) in age, income, country, feedback;
 *   - outliers: age 999 / -1 typos, a few incomes x100;
 *   - exact duplicate rows (re-sent records);
 *   - a constant column (currency) and an identifier (customer_id);
 *   - a churn label from a logistic model of tenure, tickets, spend, plan and login recency.
 */
#include "lepton/base.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *countries[] = {"DE", "FR", "NL", "BE", "AT", "PL", "ES", "IT"};
static const double country_w[] = {0.32, 0.18, 0.12, 0.08, 0.08, 0.08, 0.07, 0.07};
static const char *plans[] = {"basic", "plus", "pro"};
static const char *good[] = {"fast delivery, great prices", "love the new app",
                             "support answered quickly", "easy returns, will order again",
                             "good selection of products"};
static const char *bad[] = {"parcel arrived late again", "refund still not processed",
                            "app keeps crashing at checkout", "too expensive lately",
                            "could not reach support by phone"};

static size_t pick(lp_rng *r, const double *w, size_t n)
{
    double u = lp_rng_uniform(r), c = 0;
    for (size_t i = 0; i < n; i++) {
        c += w[i];
        if (u < c)
            return i;
    }
    return n - 1;
}

int main(int argc, char **argv)
{
    long rows = 3000;
    unsigned long long seed = 20261127;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--rows"))
            rows = strtol(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--seed"))
            seed = strtoull(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--rows N] [--seed S]\n", argv[0]);
            return 2;
        }
    }
    if (rows < 1 || rows > 10000000) {
        fprintf(stderr, "%s: --rows must be in [1, 10000000]\n", argv[0]);
        return 2;
    }
    lp_rng r;
    lp_rng_seed(&r, seed);
    printf("customer_id,signup_date,age,country,plan,monthly_spend,income,support_tickets,"
           "last_login_days,newsletter,currency,feedback,churned\n");
    char prev[512] = "";
    for (long i = 0; i < rows; i++) {
        if (prev[0] && lp_rng_uniform(&r) < 0.01) { /* an exact duplicate of the last record */
            fputs(prev, stdout);
            continue;
        }
        int plan = (int)pick(&r, (const double[]){0.55, 0.3, 0.15}, 3);
        double tenure_days = floor(lp_rng_uniform(&r) * 1400);
        long long t0 = 1609459200LL + (long long)(1400 - tenure_days) * 86400; /* from 2021-01-01 */
        long long day = t0 / 86400;
        /* civil date from days since epoch (Hinnant) */
        long long z = day + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
        long long doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        long long y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        long long mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
        long long m = mp < 10 ? mp + 3 : mp - 9;
        y += m <= 2;

        double age = floor(18 + fabs(lp_rng_normal(&r)) * 15 + lp_rng_uniform(&r) * 20);
        double income = exp(10.3 + 0.4 * lp_rng_normal(&r)) * (1 + 0.01 * (age - 40));
        double spend = (15 + 25 * plan) * exp(0.35 * lp_rng_normal(&r));
        int tickets = (int)floor(-log(1 - lp_rng_uniform(&r)) * (0.8 + 0.5 * (plan == 0)));
        int login = (int)floor(-log(1 - lp_rng_uniform(&r)) * 12);
        int news = lp_rng_uniform(&r) < 0.4;
        double logit = -1.2 - 0.0012 * tenure_days + 0.45 * tickets - 0.01 * spend -
                       0.5 * plan + 0.05 * login - 0.3 * news;
        int churn = lp_rng_uniform(&r) < 1 / (1 + exp(-logit));
        const char *fb = NULL;
        double u = lp_rng_uniform(&r);
        if (u < 0.35)
            fb = churn || tickets > 2 ? bad[lp_rng_below(&r, 5)] : good[lp_rng_below(&r, 5)];

        char age_s[32], inc_s[32], ctry[8];
        double a = lp_rng_uniform(&r);
        if (a < 0.04)
            snprintf(age_s, sizeof age_s, "%s", a < 0.02 ? "" : "NA");
        else if (a < 0.047)
            snprintf(age_s, sizeof age_s, "%d", a < 0.044 ? 999 : -1);
        else
            snprintf(age_s, sizeof age_s, "%.0f", age);
        double b = lp_rng_uniform(&r);
        if (b < 0.08)
            snprintf(inc_s, sizeof inc_s, "%s", b < 0.06 ? "" : "?");
        else
            snprintf(inc_s, sizeof inc_s, "%.2f", b < 0.085 ? income * 100 : income);
        if (lp_rng_uniform(&r) < 0.03)
            ctry[0] = '\0';
        else
            snprintf(ctry, sizeof ctry, "%s", countries[pick(&r, country_w, 8)]);

        int n = snprintf(prev, sizeof prev, "C%05ld,%04lld-%02lld-%02lld,%s,%s,%s,%.2f,%s,%d,%d,%s,EUR,%s%s%s,%d\n",
                         100000 - i, y, m, d, age_s, ctry, plans[plan], spend, inc_s, tickets,
                         login, news ? "yes" : "no", fb ? "\"" : "", fb ? fb : "", fb ? "\"" : "",
                         churn);
        if (n <= 0 || (size_t)n >= sizeof prev)
            return 1;
        fputs(prev, stdout);
    }
    return 0;
}
