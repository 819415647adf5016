/*
 * test_reply_num.c - the `lepton serve` reply's number text (serve.h
 * lp_json_write_cjson_num, written with strfromd) against cJSON_PrintUnformatted of the same
 * number: the same text for integers (incl. the int edges and beyond), short and long
 * fractions, tiny and huge magnitudes, negative zero ("-0", as cJSON 1.7.15 prints it), and null
 * for NaN and infinities; every printed fraction reads back within a relative DBL_EPSILON (the
 * rule's own test). The file is compiled in (the lepton command's sources are no library).
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
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_numbers)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
