/*
 * test_base.c - status table, lp_err, RNG reproducibility and distribution, byte buffers and
 * their reader's bounds checks, CRC-32, whole-file reads (plain and gzip, truncated gzip).
 */
#include "lp_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static void test_status_table(void **state)
{
    (void)state;
    assert_string_equal(lp_status_code(LP_OK), "ok");
    assert_string_equal(lp_status_code(LP_EPARSE), "parse_error");
    assert_int_equal(lp_status_http(LP_EPARSE), 400);
    assert_int_equal(lp_status_http(LP_ENOTFOUND), 404);
    assert_int_equal(lp_status_http(LP_ETOOBIG), 413);
    assert_int_equal(lp_status_http(LP_EINTERNAL), 500);
    assert_string_equal(lp_strerror((lp_status)9999), "unknown status");
    for (int s = 0; s < LP_STATUS_COUNT_; s++)
        assert_true(strlen(lp_strerror((lp_status)s)) > 0);
}

static void test_err(void **state)
{
    (void)state;
    lp_err err;
    lp_err_clear(&err);
    assert_int_equal(err.status, LP_OK);
    assert_int_equal(lp_err_set(&err, LP_EPARSE, "line %d: bad '%s'", 3, "x"), LP_EPARSE);
    assert_string_equal(err.msg, "line 3: bad 'x'");
    lp_err_prefix(&err, "data.csv");
    assert_string_equal(err.msg, "data.csv: line 3: bad 'x'");
    assert_int_equal(err.status, LP_EPARSE);
    assert_int_equal(lp_err_set(NULL, LP_EIO, "ignored"), LP_EIO); /* NULL err is allowed */
    /* wrapping its own message: the message is an argument of the call that replaces it */
    lp_err_set(&err, LP_EPARSE, "bad magic");
    lp_err_set(&err, LP_EFORMAT, "m.lpm: neither an image model (%s) nor a text model (%s)",
               "too short", lp_err_text(&err));
    assert_string_equal(err.msg, "m.lpm: neither an image model (too short) nor a text model "
                                 "(bad magic)");
    assert_int_equal(err.status, LP_EFORMAT);
}

static void test_rng(void **state)
{
    (void)state;
    lp_rng a, b;
    lp_rng_seed(&a, 42);
    lp_rng_seed(&b, 42);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(lp_rng_u64(&a), lp_rng_u64(&b));
    lp_rng_seed(&b, 43);
    assert_int_not_equal(lp_rng_u64(&a), lp_rng_u64(&b));

    /* uniform mean and variance, normal mean and variance: 200k draws, 5-sigma bounds */
    lp_rng_seed(&a, 7);
    double s = 0, s2 = 0, n = 200000;
    for (int i = 0; i < n; i++) {
        double u = lp_rng_uniform(&a);
        assert_true(u >= 0 && u < 1);
        s += u;
        s2 += u * u;
    }
    assert_true(fabs(s / n - 0.5) < 5 * sqrt(1.0 / 12 / n));
    s = s2 = 0;
    for (int i = 0; i < n; i++) {
        double z = lp_rng_normal(&a);
        s += z;
        s2 += z * z;
    }
    assert_true(fabs(s / n) < 5 / sqrt(n));
    assert_true(fabs(s2 / n - 1) < 0.02);

    /* below(n) covers [0,n) and nothing else */
    int hits[7] = {0};
    for (int i = 0; i < 7000; i++) {
        uint64_t k = lp_rng_below(&a, 7);
        assert_true(k < 7);
        hits[k]++;
    }
    for (int k = 0; k < 7; k++)
        assert_true(hits[k] > 800 && hits[k] < 1200);

    size_t idx[100];
    for (size_t i = 0; i < 100; i++)
        idx[i] = i;
    lp_rng_shuffle_idx(&a, idx, 100);
    int seen[100] = {0}, moved = 0;
    for (size_t i = 0; i < 100; i++) {
        seen[idx[i]]++;
        moved += idx[i] != i;
    }
    for (size_t i = 0; i < 100; i++)
        assert_int_equal(seen[i], 1);
    assert_true(moved > 50);
}

static void test_buf_roundtrip(void **state)
{
    (void)state;
    lp_buf b;
    lp_buf_init(&b);
    lp_buf_u8(&b, 7);
    lp_buf_u32(&b, 0xdeadbeef);
    lp_buf_u64(&b, 0x0123456789abcdefULL);
    lp_buf_f32(&b, 1.5f);
    lp_buf_f64(&b, -2.25);
    lp_buf_str(&b, "héllo");
    lp_buf_str(&b, NULL);
    assert_int_equal(lp_buf_status(&b, NULL), LP_OK);
    size_t len;
    uint8_t *d = lp_buf_take(&b, &len);
    assert_non_null(d);

    lp_reader r;
    lp_reader_init(&r, d, len, "test buffer");
    uint8_t u8;
    uint32_t u32;
    uint64_t u64;
    float f;
    double g;
    char *s1, *s2;
    assert_int_equal(lp_reader_u8(&r, &u8, NULL), LP_OK);
    assert_int_equal(lp_reader_u32(&r, &u32, NULL), LP_OK);
    assert_int_equal(lp_reader_u64(&r, &u64, NULL), LP_OK);
    assert_int_equal(lp_reader_f32(&r, &f, NULL), LP_OK);
    assert_int_equal(lp_reader_f64(&r, &g, NULL), LP_OK);
    assert_int_equal(lp_reader_str(&r, &s1, 100, NULL), LP_OK);
    assert_int_equal(lp_reader_str(&r, &s2, 100, NULL), LP_OK);
    assert_int_equal(u8, 7);
    assert_int_equal(u32, 0xdeadbeef);
    assert_true(u64 == 0x0123456789abcdefULL);
    assert_true(f == 1.5f && g == -2.25);
    assert_string_equal(s1, "héllo");
    assert_null(s2);
    free(s1);

    /* reading past the end fails with a message, never reads out of bounds */
    lp_err err;
    assert_int_equal(lp_reader_u32(&r, &u32, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "test buffer"));

    /* a string length larger than what is left */
    lp_reader_init(&r, d, 20, "short");
    r.pos = 17;
    assert_int_not_equal(lp_reader_str(&r, &s1, 1000, &err), LP_OK);
    free(d);
}

static void test_crc32(void **state)
{
    (void)state;
    /* the standard check value of CRC-32/ISO-HDLC */
    assert_int_equal(lp_crc32(0, "123456789", 9), 0xCBF43926u);
    uint32_t c = lp_crc32(0, "1234", 4);
    assert_int_equal(lp_crc32(c, "56789", 5), 0xCBF43926u);
}

static void test_file_read_gzip(void **state)
{
    (void)state;
    char *plain = lp_test_tmpfile("a.txt"), *gz = lp_test_tmpfile("a.txt.gz"),
         *trunc = lp_test_tmpfile("t.gz");
    const char *text = "hello,world\n1,2\n";
    lp_test_write(plain, text, strlen(text));
    gzFile g = gzopen(gz, "wb");
    gzwrite(g, text, (unsigned)strlen(text));
    gzclose(g);

    uint8_t *d;
    size_t n;
    assert_int_equal(lp_file_read(plain, &d, &n, NULL), LP_OK);
    assert_int_equal(n, strlen(text));
    assert_memory_equal(d, text, n);
    free(d);
    assert_int_equal(lp_file_read(gz, &d, &n, NULL), LP_OK);
    assert_int_equal(n, strlen(text));
    assert_memory_equal(d, text, n);
    free(d);

    /* a truncated gzip is an error naming the file */
    uint8_t *raw;
    size_t rawn;
    FILE *f = fopen(gz, "rb");
    raw = malloc(4096);
    rawn = fread(raw, 1, 4096, f);
    fclose(f);
    lp_test_write(trunc, raw, rawn - 10);
    free(raw);
    lp_err err;
    assert_int_not_equal(lp_file_read(trunc, &d, &n, &err), LP_OK);
    assert_non_null(strstr(err.msg, "t.gz"));

    assert_int_equal(lp_file_read("/nonexistent/x", &d, &n, &err), LP_ENOTFOUND);
    assert_int_equal(lp_file_write(plain, "xyz", 3, NULL), LP_OK);
    assert_int_equal(lp_file_read(plain, &d, &n, NULL), LP_OK);
    assert_int_equal(n, 3);
    free(d);
    free(plain);
    free(gz);
    free(trunc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_table), cmocka_unit_test(test_err),
        cmocka_unit_test(test_rng),          cmocka_unit_test(test_buf_roundtrip),
        cmocka_unit_test(test_crc32),        cmocka_unit_test(test_file_read_gzip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
