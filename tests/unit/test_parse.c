/*
 * test_parse.c - the scalar parsers every reader uses: strict whole-field integers (int64
 * bounds), doubles (no hex, no trailing junk, subnormals kept), booleans, ISO-8601 date-times
 * with zones and fractions, and invalid calendar dates.
 */
#include "lp_test.h"

#include <math.h>
#include <string.h>

#define P(f, s, ...) f((s), strlen(s), __VA_ARGS__)

static void test_int(void **state)
{
    (void)state;
    int64_t v;
    assert_true(P(lp_parse_int, " -42 ", &v) && v == -42);
    assert_true(P(lp_parse_int, "9223372036854775807", &v) && v == INT64_MAX);
    assert_true(P(lp_parse_int, "-9223372036854775808", &v) && v == INT64_MIN);
    assert_false(P(lp_parse_int, "9223372036854775808", &v));
    assert_false(P(lp_parse_int, "1.0", &v));
    assert_false(P(lp_parse_int, "-", &v));
    assert_false(P(lp_parse_int, "", &v));
    assert_false(P(lp_parse_int, "12a", &v));
}

static void test_double(void **state)
{
    (void)state;
    double v;
    assert_true(P(lp_parse_double, "2.5e-3", &v) && v == 2.5e-3);
    assert_true(P(lp_parse_double, "4.9e-324", &v) && v > 0);
    assert_true(P(lp_parse_double, "1e999", &v) && isinf(v));
    assert_false(P(lp_parse_double, "0x1p3", &v));
    assert_false(P(lp_parse_double, "nan(1)", &v));
    assert_false(P(lp_parse_double, "1.5x", &v));
    assert_false(P(lp_parse_double, "", &v));
}

static void test_bool(void **state)
{
    (void)state;
    bool b;
    assert_true(P(lp_parse_bool, "TRUE", false, &b) && b);
    assert_true(P(lp_parse_bool, "no", false, &b) && !b);
    assert_false(P(lp_parse_bool, "1", false, &b));
    assert_true(P(lp_parse_bool, "1", true, &b) && b);
    assert_false(P(lp_parse_bool, "maybe", true, &b));
}

static void test_datetime(void **state)
{
    (void)state;
    double t;
    assert_true(P(lp_parse_datetime, "1970-01-01", &t) && t == 0);
    assert_true(P(lp_parse_datetime, "2018-04-01 00:00:31", &t) && t == 1522540831.0);
    assert_true(P(lp_parse_datetime, "2018-04-01T02:00:31+02:00", &t) && t == 1522540831.0);
    assert_true(P(lp_parse_datetime, "2018-03-31T19:00:31.5-0500", &t) && t == 1522540831.5);
    assert_true(P(lp_parse_datetime, "2024-02-29T00:00Z", &t));
    assert_false(P(lp_parse_datetime, "2023-02-29", &t));
    assert_false(P(lp_parse_datetime, "2024-13-01", &t));
    assert_false(P(lp_parse_datetime, "2024-01-01T25:00", &t));
    assert_false(P(lp_parse_datetime, "2024-01-01Tjunk", &t));
    assert_false(P(lp_parse_datetime, "20240101", &t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int),
        cmocka_unit_test(test_double),
        cmocka_unit_test(test_bool),
        cmocka_unit_test(test_datetime),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
