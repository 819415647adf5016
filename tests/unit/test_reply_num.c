/*
 * test_reply_num.c - the `lepton serve` reply's number text (serve.h
 * lp_json_write_cjson_num, written with strfromd) against cJSON_PrintUnformatted of the same
 * number: the same text for integers (incl. the int edges and beyond), short and long
 * fractions, tiny and huge magnitudes, negative zero ("-0", as cJSON 1.7.15 prints it), and null
 * for NaN and infinities; every printed fraction reads back within a relative DBL_EPSILON (the
 * rule's own test). The file is compiled in (the lepton command's sources are no library).
 * And lp_json_format_num (the services' answers: "%.<digits>g" with a printf-free fast path)
 * against strfromd itself, for every digit count, on exact halves, carries into another digit,
 * the edges of fixed notation, floats (the services' scores) and random doubles.
 */
#include "lp_test.h"

#include "../../cli/rowparse.c"


/* What cJSON itself prints for the number (cJSON_PrintUnformatted of a number item). */
static void ref_num(double d, char *t, size_t cap)
{
    cJSON *n = cJSON_CreateNumber(d);
    char *p = cJSON_PrintUnformatted(n);
    snprintf(t, cap, "%s", p);
    free(p);
    cJSON_Delete(n);
}

static void check(double v)
{
    lp_buf b;
    lp_buf_init(&b);
    lp_json_write_cjson_num(&b, v);
    lp_buf_u8(&b, 0);
    char want[64];
    ref_num(v, want, sizeof want);
    if (strcmp((const char *)b.data, want) != 0)
        fail_msg("%.17g: '%s', cJSON '%s'", v, (const char *)b.data, want);
    double back = strtod((const char *)b.data, NULL);
    if (isfinite(v) && fabs(v) < (double)INT_MAX && v != (double)(int)v &&
        !(fabs(back - v) <= fabs(v) * DBL_EPSILON))
        fail_msg("%.17g does not read back from '%s'", v, (const char *)b.data);
    lp_buf_free(&b);
}

static void test_numbers(void **state)
{
    (void)state;
    const double fixed[] = {0.0,     -0.0,   1.0,     -1.0,    7.0,      123456789.0,
                            -2147483648.0, 2147483647.0, 0.5,  0.1,      1.0 / 3.0,
                            0.99853713030461222, 0.0014628696953877807, 1e-300, -1e-300,
                            5e-324,  1e300,  -1.7976931348623157e308, 3.0e9, -3.0e9,
                            123.456, 2.5e-5, 1e15 + 0.5, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        check(fixed[i]);
    lp_rng r;
    lp_rng_seed(&r, 11);
    for (int i = 0; i < 20000; i++) {
        double u = lp_rng_uniform(&r), e = (double)lp_rng_below(&r, 80) - 40;
        check((lp_rng_below(&r, 2) ? -1 : 1) * u * pow(10, e));
        check((double)(int64_t)(lp_rng_u64(&r) >> 20) - (double)(1ll << 43));
        /* short decimals (the printf-free "%.15g" path): probabilities rounded to 9 places,
         * prices, and 15-digit numbers at every scale */
        check(round(u * 1e9) / 1e9);
        check((double)lp_rng_below(&r, 100000000) / 100.0 - 5e5);
        check((double)(lp_rng_u64(&r) % 1000000000000000ull) /
              pow(10, (double)lp_rng_below(&r, 19)));
    }
}

static size_t g_checked;

static void check_g(double v, int digits)
{
    char got[48], want[48], fmt[8];
    snprintf(fmt, sizeof fmt, "%%.%dg", digits < 1 ? 1 : digits > 17 ? 17 : digits);
    size_t n = lp_json_format_num(got, v, digits);
    int m = strfromd(want, sizeof want, fmt, v);
    if (n != (size_t)m || memcmp(got, want, n) != 0)
        fail_msg("%.17g with %d digits: '%.*s', strfromd '%s'", v, digits, (int)n, got, want);
    g_checked++;
}

static void test_format_num(void **state)
{
    (void)state;
    const double fixed[] = {0.0,   -0.0,     1.0,       -1.0,       0.5,        1.5,
                            2.5,   0.25,     0.125,     1e-4,       9.99999e-5, 1e-5,
                            0.1,   1.0 / 3,  2.0 / 3,   9.5,        99.5,       999999999.5,
                            9.9999999995, 0.00099999999995, 123456789012345.0, 1e15, 1e16,
                            0.30000000000000004, 5e-324, 1e300, -7.25, 1e9, 999999999.0,
                            1000000000.0, 0.000123456789, 314159.265358979, 65536.0};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        for (int d = 0; d <= 18; d++)
            check_g(fixed[i], d);
    lp_rng r;
    lp_rng_seed(&r, 5);
    for (int i = 0; i < 200000; i++) {
        int d = 1 + (int)lp_rng_below(&r, 17);
        double u = lp_rng_uniform(&r), e = (double)lp_rng_below(&r, 24) - 8;
        double v = (lp_rng_below(&r, 2) ? -1 : 1) * u * pow(10, e);
        check_g(v, d);
        check_g((double)(float)v, 9); /* a float score as the services print it */
        check_g((double)(float)v, 6);
        /* values on a decimal grid land on or next to halves of the last digit */
        double g = floor(v * 1000) / 1000 + 0.0005;
        check_g(g, 1 + (int)lp_rng_below(&r, 8));
        /* integers and halves */
        double h = (double)(int64_t)(lp_rng_u64(&r) >> (12 + lp_rng_below(&r, 50))) / 2;
        check_g(h, d);
    }
    assert_true(g_checked > 1000000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_numbers),
                                       cmocka_unit_test(test_format_num)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
