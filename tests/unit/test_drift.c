/*
 * test_drift.c - drift references and sketches: rows drawn from the training distribution show
 * no drift; shifting one feature flags that feature and only it; PSI and KS agree with a direct
 * computation; the reference survives save/load; concurrent adds lose no count.
 */
#include "lp_test.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static lp_frame *sample(uint64_t seed, size_t n, double shift_x, double shift_cat)
{
    lp_rng r;
    lp_rng_seed(&r, seed);
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    const char **c = malloc(n * sizeof *c);
    static const char *cats[] = {"a", "b", "c", "d"};
    for (size_t i = 0; i < n; i++) {
        x[i] = lp_rng_normal(&r) + shift_x;
        y[i] = lp_rng_uniform(&r) < 0.05 ? NAN : exp(lp_rng_normal(&r));
        double u = lp_rng_uniform(&r);
        /* shares 0.4 0.3 0.2 0.1, or with shift_cat moved towards "d" */
        size_t k = u < 0.4 - shift_cat ? 0 : u < 0.7 - shift_cat ? 1 : u < 0.9 - shift_cat ? 2 : 3;
        c[i] = cats[k];
    }
    lp_frame *f = lp_frame_new();
    assert_int_equal(lp_frame_add_numeric(f, "x", LP_COL_KIND_FLOAT, x, NULL, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "y", LP_COL_KIND_FLOAT, y, NULL, n, NULL), LP_OK);
    assert_int_equal(lp_frame_add_categorical(f, "c", c, n, NULL), LP_OK);
    free(x);
    free(y);
    free(c);
    return f;
}

static void stats_for(const lp_drift *d, const lp_frame *live, lp_drift_stat *out)
{
    lp_drift_sketch *s = lp_drift_sketch_new(d);
    assert_non_null(s);
    lp_drift_sketch_add_frame(s, live);
    lp_drift_compare(s, 0.2, out);
    lp_drift_sketch_free(s);
}

static void test_no_drift_and_shift(void **state)
{
    (void)state;
    lp_frame *train = sample(1, 20000, 0, 0);
    lp_drift *d;
    assert_int_equal(lp_drift_fit(train, &d, NULL), LP_OK);
    assert_int_equal(lp_drift_nfeatures(d), 3);
    lp_drift_stat st[3];

    lp_frame *same = sample(2, 5000, 0, 0);
    stats_for(d, same, st);
    for (int j = 0; j < 3; j++) {
        assert_false(st[j].drifted);
        assert_true(st[j].psi < 0.05); /* sampling noise alone: ~ (bins-1)/n scale */
        assert_true(st[j].ks < 0.05);
        assert_int_equal(st[j].n, 5000);
    }
    assert_true(fabs(st[1].missing_cur - 0.05) < 0.02);

    lp_frame *shifted = sample(3, 5000, 1.0, 0); /* x moved by one standard deviation */
    stats_for(d, shifted, st);
    assert_true(st[0].drifted);
    assert_true(st[0].psi > 0.5);
    /* KS of N(0,1) vs N(1,1) is 2 Phi(0.5) - 1 = 0.383 */
    assert_true(fabs(st[0].ks - 0.383) < 0.04);
    assert_false(st[1].drifted);
    assert_false(st[2].drifted);

    lp_frame *catshift = sample(4, 5000, 0, 0.15); /* d: 0.1 -> 0.55 of the mass */
    stats_for(d, catshift, st);
    assert_false(st[0].drifted);
    assert_true(st[2].drifted);
    assert_true(st[2].categorical);

    /* save -> load gives the same statistics */
    lp_buf b;
    lp_buf_init(&b);
    assert_int_equal(lp_drift_save(d, &b, NULL), LP_OK);
    lp_drift *d2;
    assert_int_equal(lp_drift_load(b.data, b.len, &d2, NULL), LP_OK);
    lp_drift_stat st2[3];
    stats_for(d2, catshift, st2);
    for (int j = 0; j < 3; j++) {
        assert_true(st[j].psi == st2[j].psi);
        assert_true(st[j].ks == st2[j].ks);
    }
    /* every truncation is an error, not a crash */
    for (size_t n = 0; n < b.len; n += 7) {
        lp_drift *bad = NULL;
        assert_int_not_equal(lp_drift_load(b.data, n, &bad, NULL), LP_OK);
        assert_null(bad);
    }
    lp_buf_free(&b);

    /* bins for charts */
    lp_drift_sketch *s = lp_drift_sketch_new(d);
    lp_drift_sketch_add_frame(s, catshift);
    double ref[LP_DRIFT_EDGES + 2], cur[LP_DRIFT_EDGES + 2];
    const char *labels[LP_DRIFT_EDGES + 2];
    size_t nb;
    lp_drift_bins(s, 2, ref, cur, &nb, labels);
    assert_int_equal(nb, 6); /* a b c d other missing */
    assert_string_equal(labels[0], "a");
    assert_string_equal(labels[5], "missing");
    assert_true(fabs(ref[0] - 0.4) < 0.02);
    lp_drift_sketch_free(s);

    lp_drift_free(d);
    lp_drift_free(d2);
    lp_frame_free(train);
    lp_frame_free(same);
    lp_frame_free(shifted);
    lp_frame_free(catshift);
}

static void test_psi_matches_direct(void **state)
{
    (void)state;
    /* reference: 1000 values uniform on the integers 0..9 -> each decile group is one value */
    double v[1000], w[1000];
    for (int i = 0; i < 1000; i++) {
        v[i] = i % 10;
        w[i] = i < 500 ? 0 : (i % 9) + 1; /* half the mass on 0, the rest on 1..9 */
    }
    lp_drift *d = NULL;
    lp_frame *f = lp_frame_new();
    lp_frame_add_numeric(f, "v", LP_COL_KIND_INTEGER, v, NULL, 1000, NULL);
    assert_int_equal(lp_drift_fit(f, &d, NULL), LP_OK);
    lp_drift_sketch *s = lp_drift_sketch_new(d);
    for (int i = 0; i < 1000; i++)
        lp_drift_sketch_add_num(s, 0, w[i]);
    lp_drift_stat st;
    lp_drift_compare(s, 0.2, &st);
    /* direct: ref 0.1 everywhere; cur 0.5 on 0 and 1/18 on each of 1..9 */
    double want = (0.5 - 0.1) * log(0.5 / 0.1);
    for (int k = 1; k <= 9; k++) {
        double c = 0;
        for (int i = 500; i < 1000; i++)
            c += ((i % 9) + 1) == k;
        c /= 1000;
        want += (c - 0.1) * log(c / 0.1);
    }
    assert_true(fabs(st.psi - want) < 1e-9);
    assert_true(fabs(st.ks - 0.4) < 1e-9); /* CDF at 0: 0.5 vs 0.1 */
    lp_drift_sketch_free(s);
    lp_drift_free(d);
    lp_frame_free(f);
}

typedef struct {
    lp_drift_sketch *s;
    int seed;
} worker;

static void *add_many(void *arg)
{
    worker *w = arg;
    lp_rng r;
    lp_rng_seed(&r, (uint64_t)w->seed);
    for (int i = 0; i < 50000; i++)
        lp_drift_sketch_add_num(w->s, 0, lp_rng_normal(&r));
    return NULL;
}

static void test_concurrent_adds(void **state)
{
    (void)state;
    lp_frame *train = sample(1, 2000, 0, 0);
    lp_drift *d;
    assert_int_equal(lp_drift_fit(train, &d, NULL), LP_OK);
    lp_drift_sketch *s = lp_drift_sketch_new(d);
    pthread_t t[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){s, i};
        pthread_create(&t[i], NULL, add_many, &w[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    lp_drift_stat st[3];
    lp_drift_compare(s, 0.2, st);
    assert_int_equal(st[0].n, 200000);
    assert_false(st[0].drifted);
    assert_int_equal(st[1].n, 0);
    lp_drift_sketch_free(s);
    lp_drift_free(d);
    lp_frame_free(train);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_drift_and_shift),
        cmocka_unit_test(test_psi_matches_direct),
        cmocka_unit_test(test_concurrent_adds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
