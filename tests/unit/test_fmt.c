/*
 * test_fmt.c - lp_fmt (base.h) against snprintf: the same text and return value for every
 * supported conversion over integers at their edges, fixed/exponent/general floats of every
 * magnitude, NaN and infinities, strings with width and precision, literal percent, and output
 * cut at every buffer size; -1 for conversions it does not support.
 */
#include "lp_test.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SAME(fmt, ...)                                                                             \
    do {                                                                                           \
        char a_[128], b_[128];                                                                     \
        for (size_t cap_ = 0; cap_ <= sizeof a_; cap_ += cap_ < 24 ? 1 : 52) {                   \
            memset(a_, 'x', sizeof a_);                                                            \
            memset(b_, 'x', sizeof b_);                                                            \
            int ra_ = lp_fmt(a_, cap_, fmt, __VA_ARGS__);                                          \
            int rb_ = snprintf(b_, cap_, fmt, __VA_ARGS__);                                        \
            if (ra_ != rb_ || (cap_ && strcmp(a_, b_) != 0))                                       \
                fail_msg("%s (cap %zu): '%s' %d vs snprintf '%s' %d", fmt, cap_, cap_ ? a_ : "",   \
                         ra_, cap_ ? b_ : "", rb_);                                                 \
        }                                                                                          \
    } while (0)

static void test_against_snprintf(void **state)
{
    (void)state;
    static const int ints[] = {0, 1, -1, 7, 42, -42, 1000, INT_MAX, INT_MIN};
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        SAME("%d", ints[i]);
        SAME("[%5d]", ints[i]);
        SAME("%02d:%02d", ints[i], ints[i] / 2);
        SAME("%08d", ints[i]);
        SAME("%u", (unsigned)ints[i]);
        SAME("%ld", (long)ints[i] * 3000000000L);
        SAME("%zu", (size_t)ints[i]);
    }
    SAME("%lu %zd", ULONG_MAX, (size_t)123);
    static const double vals[] = {0.0,  -0.0,   0.5,     1.5,      2.5,       -2.5,    0.125,
                                  1e-7, 123.456, 1e21,   1e-320,   123456789.987654321,
                                  NAN,  INFINITY, -INFINITY, 99.995, 0.3,     1.0 / 3.0};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        SAME("%g", vals[i]);
        SAME("%f", vals[i]);
        SAME("%.0f", vals[i]);
        SAME("%.1f", vals[i]);
        SAME("%.2f", vals[i]);
        SAME("%.17g", vals[i]);
        SAME("%.12e", vals[i]);
        SAME("amount is %.1fx this %s's %s mean", vals[i], "card", "30 days");
        SAME("%.0f%% of this %s's %.0f transactions", 100 * vals[i], "terminal", vals[i]);
    }
    SAME("%s|%10s|%.3s|%8.2s", "abc", "right", "truncate", "cut");
    SAME("%s", "");
    SAME("plain text, no conversion%s", "");
    SAME("%%%s%%", "pct");
    char big[300];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    SAME("%s and %d", big, 5);
}

static void test_unsupported(void **state)
{
    (void)state;
    char b[16] = "untouched";
    assert_int_equal(lp_fmt(b, sizeof b, "%x", 255), -1);
    assert_string_equal(b, "");
    assert_int_equal(lp_fmt(b, sizeof b, "%10.2f", 1.0), -1);
    assert_int_equal(lp_fmt(b, sizeof b, "%p", (void *)b), -1);
    assert_int_equal(lp_fmt(b, sizeof b, "%c", (int)'a'), -1);
    assert_int_equal(lp_fmt(b, sizeof b, "%-5s", "left"), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_against_snprintf),
                                       cmocka_unit_test(test_unsupported)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
