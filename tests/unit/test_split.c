/*
 * test_split.c - random, stratified and time splits: sizes, disjoint cover of all rows,
 * determinism per seed, per-class proportions, time order with ties at the cut, and errors.
 */
#include "lp_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* train and test are disjoint and together cover 0..n-1 */
static void assert_partition(const lp_split *s, size_t n)
{
    assert_int_equal(s->n_train + s->n_test, n);
    uint8_t *seen = calloc(n ? n : 1, 1);
    for (size_t i = 0; i < s->n_train; i++)
        seen[s->train[i]]++;
    for (size_t i = 0; i < s->n_test; i++)
        seen[s->test[i]]++;
    for (size_t i = 0; i < n; i++)
        assert_int_equal(seen[i], 1);
    free(seen);
}

static void test_random(void **state)
{
    (void)state;
    lp_split a, b, c;
    assert_int_equal(lp_split_random(1000, 0.2, 7, &a, NULL), LP_OK);
    assert_int_equal(a.n_test, 200);
    assert_partition(&a, 1000);
    assert_int_equal(lp_split_random(1000, 0.2, 7, &b, NULL), LP_OK);
    assert_memory_equal(a.test, b.test, 200 * sizeof(size_t));
    assert_int_equal(lp_split_random(1000, 0.2, 8, &c, NULL), LP_OK);
    assert_true(memcmp(a.test, c.test, 200 * sizeof(size_t)) != 0);
    for (size_t i = 1; i < a.n_test; i++)
        assert_true(a.test[i - 1] < a.test[i]);
    lp_split_free(&a);
    lp_split_free(&b);
    lp_split_free(&c);
    lp_err err;
    assert_int_equal(lp_split_random(10, 1.0, 1, &a, &err), LP_EINVAL);
    assert_int_equal(lp_split_random(10, NAN, 1, &a, &err), LP_EINVAL);
    lp_split_free(NULL);
}

static void test_stratified(void **state)
{
    (void)state;
    /* 900 of class "no", 100 of class "yes", 10 missing */
    size_t n = 1010;
    const char **lab = malloc(n * sizeof *lab);
    for (size_t i = 0; i < n; i++)
        lab[i] = i >= 1000 ? NULL : (i % 10 == 3 ? "yes" : "no");
    lp_frame *f = lp_frame_new();
    assert_int_equal(lp_frame_add_categorical(f, "y", lab, n, NULL), LP_OK);
    lp_split s;
    lp_column *y = lp_frame_col(f, 0);
    assert_int_equal(lp_split_stratified(y, 0.25, 3, &s, NULL), LP_OK);
    assert_partition(&s, n);
    size_t yes = 0;
    for (size_t i = 0; i < s.n_test; i++) {
        assert_true(s.test[i] < 1000); /* missing labels stay in train */
        yes += s.test[i] % 10 == 3;
    }
    assert_int_equal(yes, 25);
    assert_int_equal(s.n_test, 250);
    lp_split_free(&s);
    double v[3] = {0.5, 1, 2};
    assert_int_equal(lp_frame_add_numeric(f, "v", LP_COL_KIND_FLOAT, v, NULL, 3, NULL),
                     LP_EINVAL);
    lp_frame *g = lp_frame_new();
    assert_int_equal(lp_frame_add_numeric(g, "v", LP_COL_KIND_FLOAT, v, NULL, 3, NULL), LP_OK);
    lp_err err;
    assert_int_equal(lp_split_stratified(lp_frame_col(g, 0), 0.5, 1, &s, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "'v'"));
    lp_frame_free(g);
    lp_frame_free(f);
    free(lab);
}

static void test_time(void **state)
{
    (void)state;
    double t[10] = {5, 1, 9, 3, 7, 7, 2, 8, 7, 0};
    lp_frame *f = lp_frame_new();
    assert_int_equal(lp_frame_add_numeric(f, "t", LP_COL_KIND_DATETIME, t, NULL, 10, NULL),
                     LP_OK);
    lp_split s;
    /* 30% = 3 rows: times 9, 8 and one 7; the other 7s tie at the cut and go to test too */
    assert_int_equal(lp_split_time(lp_frame_col(f, 0), 0.3, &s, NULL), LP_OK);
    assert_partition(&s, 10);
    assert_int_equal(s.n_test, 5);
    double prev = -1;
    for (size_t i = 0; i < s.n_train; i++) {
        assert_true(t[s.train[i]] >= prev);
        prev = t[s.train[i]];
        assert_true(t[s.train[i]] < 7);
    }
    for (size_t i = 0; i < s.n_test; i++) {
        assert_true(t[s.test[i]] >= prev);
        prev = t[s.test[i]];
    }
    lp_split_free(&s);
    double m[2] = {1, NAN};
    lp_frame *g = lp_frame_new();
    assert_int_equal(lp_frame_add_numeric(g, "m", LP_COL_KIND_FLOAT, m, NULL, 2, NULL), LP_OK);
    lp_err err;
    assert_int_equal(lp_split_time(lp_frame_col(g, 0), 0.5, &s, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "row 2 is missing"));
    lp_frame_free(g);
    lp_frame_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_stratified),
        cmocka_unit_test(test_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
