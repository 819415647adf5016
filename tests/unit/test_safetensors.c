/*
 * test_safetensors.c - the safetensors reader: a file written by tests/fixtures/
 * gen_safetensors.py (numpy) reads back exactly in every float dtype (F32, F16 with subnormals
 * and infinities, BF16, F64) with its shapes and metadata; hostile headers (short file, header
 * longer than the file, bad JSON, unknown dtype, out-of-range, overlapping or wrongly sized
 * offsets, duplicate names) are refused with a message naming the tensor.
 */
#include "lp_test.h"

#include "lepton/safetensors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static lp_safetensors *load_small(void)
{
    lp_safetensors *st = NULL;
    lp_err err;
    lp_status s = lp_safetensors_load(lp_test_fixture("small.safetensors"), &st, &err);
    if (s)
        fail_msg("%s", err.msg);
    return st;
}

static void test_reads_fixture_exactly(void **state)
{
    (void)state;
    lp_safetensors *st = load_small();
    lp_fixture *fx = lp_fixture_load("safetensors.txt");
    assert_int_equal(lp_safetensors_count(st), 6);
    assert_string_equal(lp_safetensors_at(st, 0)->name, "layer.weight");
    assert_string_equal(lp_safetensors_metadata(st, "generator"), "gen_safetensors.py");
    assert_null(lp_safetensors_metadata(st, "nope"));
    const char *names[] = {"layer.weight", "half", "brain", "double", "scalar"};
    for (size_t k = 0; k < 5; k++) {
        const lp_st_tensor *t = lp_safetensors_find(st, names[k]);
        assert_non_null(t);
        size_t rows, cols;
        double *want = lp_fixture_array(fx, names[k], &rows, &cols);
        assert_int_equal(t->numel, cols);
        float *got = malloc(t->numel * sizeof *got);
        assert_int_equal(lp_safetensors_to_f32(t, got, NULL), LP_OK);
        for (size_t i = 0; i < t->numel; i++) {
            if ((double)got[i] != want[i] || !signbit(got[i]) != !signbit(want[i]))
                fail_msg("%s[%zu] = %.17g, want %.17g", names[k], i, got[i], want[i]);
        }
        free(got);
        free(want);
    }
    const lp_st_tensor *w = lp_safetensors_find(st, "layer.weight");
    assert_int_equal(w->ndim, 2);
    assert_int_equal(w->shape[0], 3);
    assert_int_equal(w->shape[1], 4);
    assert_int_equal(w->dtype, LP_ST_DTYPE_F32);
    const lp_st_tensor *sc = lp_safetensors_find(st, "scalar");
    assert_int_equal(sc->ndim, 0);
    assert_int_equal(sc->numel, 1);
    const lp_st_tensor *ids = lp_safetensors_find(st, "ids");
    assert_int_equal(ids->dtype, LP_ST_DTYPE_I64);
    assert_int_equal(ids->nbytes, 48);
    assert_int_equal(ids->data[5 * 8], 5); /* little-endian int64 5 */
    lp_err err;
    float tmp[6];
    assert_int_equal(lp_safetensors_to_f32(ids, tmp, &err), LP_EUNSUPPORTED);
    assert_non_null(strstr(err.msg, "'ids'"));
    lp_fixture_free(fx);
    lp_safetensors_free(st);
    lp_safetensors_free(NULL);
}

static void test_half_conversions(void **state)
{
    (void)state;
    assert_true(lp_f16_to_f32(0x3c00) == 1.0f);
    assert_true(lp_f16_to_f32(0xc000) == -2.0f);
    assert_true(lp_f16_to_f32(0x0001) == ldexpf(1.0f, -24)); /* smallest subnormal */
    assert_true(lp_f16_to_f32(0x03ff) == ldexpf(1023.0f, -24));
    assert_true(lp_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(isinf(lp_f16_to_f32(0xfc00)) && lp_f16_to_f32(0xfc00) < 0);
    assert_true(isnan(lp_f16_to_f32(0x7e00)));
    assert_true(lp_bf16_to_f32(0x3f80) == 1.0f);
    assert_true(lp_bf16_to_f32(0xc040) == -3.0f);
}

/* An image with header text h (padded to 8 bytes) followed by ndata bytes 0..ndata-1. */
static lp_status parse_header(const char *h, size_t ndata, lp_err *err)
{
    size_t hl = strlen(h), pad = (8 - hl % 8) % 8, len = 8 + hl + pad + ndata;
    uint8_t *b = calloc(1, len);
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)((hl + pad) >> (8 * i));
    memcpy(b + 8, h, hl);
    memset(b + 8 + hl, ' ', pad);
    for (size_t i = 0; i < ndata; i++)
        b[8 + hl + pad + i] = (uint8_t)i;
    lp_safetensors *st = NULL;
    lp_status s = lp_safetensors_parse(b, len, "bad.safetensors", &st, err);
    if (s)
        assert_null(st);
    lp_safetensors_free(st);
    free(b);
    return s;
}

static void expect_error(const char *h, size_t ndata, lp_status want, const char *needle)
{
    lp_err err;
    lp_err_clear(&err);
    lp_status s = parse_header(h, ndata, &err);
    if (s != want || !strstr(err.msg, needle))
        fail_msg("header %s: status %d '%s', want %d containing '%s'", h, s, err.msg, want, needle);
}

static void test_rejects_bad_headers(void **state)
{
    (void)state;
    lp_err err;
    assert_int_equal(parse_header("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
                                  "\"data_offsets\":[0,8]}}",
                                  8, &err),
                     LP_OK);
    expect_error("[1,2]", 0, LP_EFORMAT, "not a JSON object");
    expect_error("{\"a\":", 0, LP_EFORMAT, "not a JSON object");
    expect_error("{\"a\":{\"dtype\":\"F8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
                 LP_EUNSUPPORTED, "unknown dtype 'F8'");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,16]}}", 8, LP_EFORMAT,
                 "outside the 8 data bytes");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8, LP_EFORMAT,
                 "need 12");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, LP_EFORMAT,
                 "'a'");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,0]}}", 8, LP_EFORMAT,
                 "shape[0]");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0.5,8]}}", 8,
                 LP_EFORMAT, "data_offsets");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                 16, LP_EFORMAT, "overlap");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                 16, LP_EFORMAT, "appears twice");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, LP_EFORMAT, "'shape'");
    expect_error("{\"__metadata__\":{\"k\":1}}", 0, LP_EFORMAT, "__metadata__");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
                 "\"data_offsets\":[0,4]}}",
                 4, LP_EUNSUPPORTED, "dimensions");
    expect_error("{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4294967296],"
                 "\"data_offsets\":[0,4]}}",
                 4, LP_EFORMAT, "overflows");

    /* Header length beyond the file, and a file too short for the length itself. */
    uint8_t b[16] = {200, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    lp_safetensors *st = NULL;
    assert_int_equal(lp_safetensors_parse(b, sizeof b, "x.safetensors", &st, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "header length 200"));
    assert_int_equal(lp_safetensors_parse(b, 5, "x.safetensors", &st, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "too short"));
    b[0] = 2;
    assert_int_equal(lp_safetensors_parse(b, 10, "x.safetensors", &st, &err), LP_OK);
    assert_int_equal(lp_safetensors_count(st), 0);
    lp_safetensors_free(st);
    assert_int_equal(lp_safetensors_load("/nonexistent/x.safetensors", &st, &err), LP_ENOTFOUND);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_fixture_exactly),
        cmocka_unit_test(test_half_conversions),
        cmocka_unit_test(test_rejects_bad_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
