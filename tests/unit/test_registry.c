/*
 * test_registry.c - the .lpm model file (round trip, every corruption and truncation rejected,
 * future versions refused), SHA-256 test vectors, and the SQLite registry's versioning and
 * stage transitions.
 */
#include "lp_test.h"

#include <stdlib.h>
#include <string.h>

static uint8_t *make_file(size_t *len)
{
    lp_lpm_writer *w = lp_lpm_writer_new();
    float t[5] = {1, 2, 3, 4.5f, -1};
    assert_int_equal(lp_lpm_writer_add(w, "weights", LP_LPM_DTYPE_F32, t, sizeof t, NULL), LP_OK);
    assert_int_equal(lp_lpm_writer_add(w, "pipeline", LP_LPM_DTYPE_BYTES, "abc", 3, NULL), LP_OK);
    assert_int_equal(lp_lpm_writer_add(w, "empty", LP_LPM_DTYPE_BYTES, NULL, 0, NULL), LP_OK);
    uint8_t *b;
    assert_int_equal(lp_lpm_writer_finish(w, "{\"kind\":\"linear\",\"n\":5}", &b, len, NULL), LP_OK);
    lp_lpm_writer_free(w);
    return b;
}

static void test_roundtrip(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_file(&len);
    assert_int_equal(len % 8, 0);
    lp_lpm *m;
    assert_int_equal(lp_lpm_parse(b, len, "m.lpm", &m, NULL), LP_OK);
    assert_string_equal(lp_lpm_header(m), "{\"kind\":\"linear\",\"n\":5}");
    assert_int_equal(lp_lpm_section_count(m), 3);
    const void *d;
    size_t n;
    assert_int_equal(lp_lpm_section(m, "weights", LP_LPM_DTYPE_F32, &d, &n, NULL), LP_OK);
    assert_int_equal(n, 5 * sizeof(float));
    assert_int_equal((uintptr_t)d % 64, 0);
    assert_true(((const float *)d)[3] == 4.5f);
    assert_int_equal(lp_lpm_section(m, "empty", -1, &d, &n, NULL), LP_OK);
    assert_int_equal(n, 0);
    lp_err err;
    assert_int_equal(lp_lpm_section(m, "nope", -1, &d, &n, &err), LP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "m.lpm"));
    assert_int_equal(lp_lpm_section(m, "pipeline", LP_LPM_DTYPE_F32, &d, &n, &err), LP_EFORMAT);
    lp_lpm_free(m);

    /* deterministic bytes */
    size_t len2;
    uint8_t *b2 = make_file(&len2);
    assert_int_equal(len, len2);
    assert_memory_equal(b, b2, len);
    free(b);
    free(b2);
}

static void test_corruption_rejected(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_file(&len);
    uint8_t *c = malloc(len);
    /* every single-bit flip in every byte is caught (CRC-32 detects all 1-bit errors) */
    for (size_t i = 0; i < len; i++) {
        memcpy(c, b, len);
        c[i] ^= 0x10;
        lp_lpm *m = NULL;
        lp_err err;
        lp_status st = lp_lpm_parse(c, len, "bad.lpm", &m, &err);
        if (st == LP_OK)
            fail_msg("flip at byte %zu of %zu accepted", i, len);
        assert_null(m);
        assert_non_null(strstr(err.msg, "bad.lpm"));
    }
    /* every truncation is caught */
    for (size_t n = 0; n < len; n++) {
        lp_lpm *m = NULL;
        assert_int_not_equal(lp_lpm_parse(b, n, "short.lpm", &m, NULL), LP_OK);
        assert_null(m);
    }
    free(c);
    free(b);
}

static void test_future_version(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b = make_file(&len);
    b[8] = 9; /* version 9, with a recomputed checksum so only the version is wrong */
    uint32_t crc = lp_crc32(0, b, len - 8);
    for (int i = 0; i < 4; i++)
        b[len - 8 + i] = (uint8_t)(crc >> (8 * i));
    lp_lpm *m;
    lp_err err;
    assert_int_equal(lp_lpm_parse(b, len, "new.lpm", &m, &err), LP_EVERSION);
    assert_non_null(strstr(err.msg, "version 9"));
    free(b);
}

static void test_writer_errors(void **state)
{
    (void)state;
    lp_lpm_writer *w = lp_lpm_writer_new();
    lp_err err;
    assert_int_equal(lp_lpm_writer_add(w, "a", LP_LPM_DTYPE_U8, "x", 1, NULL), LP_OK);
    assert_int_equal(lp_lpm_writer_add(w, "a", LP_LPM_DTYPE_U8, "x", 1, &err), LP_EEXIST);
    assert_int_equal(lp_lpm_writer_add(w, "bad name", LP_LPM_DTYPE_U8, "x", 1, &err), LP_EINVAL);
    assert_int_equal(lp_lpm_writer_add(w, "", LP_LPM_DTYPE_U8, "x", 1, &err), LP_EINVAL);
    uint8_t *b;
    size_t n;
    assert_int_equal(lp_lpm_writer_finish(w, "[1,2]", &b, &n, &err), LP_EINVAL);
    assert_int_equal(lp_lpm_writer_finish(w, "{broken", &b, &n, &err), LP_EINVAL);
    lp_lpm_writer_free(w);
    lp_lpm_writer_free(NULL);
    lp_lpm_free(NULL);

    lp_lpm *m;
    assert_int_equal(lp_lpm_load("/nonexistent.lpm", &m, &err), LP_ENOTFOUND);
    char *p = lp_test_tmpfile("text.lpm");
    lp_test_write(p, "hello, not a model\n", 19);
    assert_int_equal(lp_lpm_load(p, &m, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "not a Lepton model file"));
    free(p);
}

static void test_sha256(void **state)
{
    (void)state;
    char hex[65];
    lp_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    lp_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    lp_sha256_hex(m, strlen(m), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *big = malloc(1000000);
    memset(big, 'a', 1000000);
    lp_sha256_hex(big, 1000000, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    char *p = lp_test_tmpfile("a.bin");
    lp_test_write(p, big, 1000000);
    char hex2[65];
    assert_int_equal(lp_sha256_file(p, hex2, NULL), LP_OK);
    assert_string_equal(hex, hex2);
    free(big);
    free(p);
    /* a missing file or a folder: the reason, as every other reader gives it */
    lp_err err;
    p = lp_test_tmpfile("absent.lpm");
    assert_int_equal(lp_sha256_file(p, hex2, &err), LP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "absent.lpm: cannot open: No such file or directory"));
    free(p);
    p = lp_test_tmpfile("");
    assert_int_equal(lp_sha256_file(p, hex2, &err), LP_EIO);
    assert_non_null(strstr(err.msg, "Is a directory"));
    free(p);
}

static void test_registry(void **state)
{
    (void)state;
    char *db = lp_test_tmpfile("reg.db"), *f1 = lp_test_tmpfile("m1.lpm"),
         *f2 = lp_test_tmpfile("m2.lpm");
    lp_test_write(f1, "model one", 9);
    lp_test_write(f2, "model two", 9);
    lp_registry *r;
    assert_int_equal(lp_registry_open(db, &r, NULL), LP_OK);
    int64_t v1, v2, v3;
    assert_int_equal(lp_registry_add(r, "churn", "gbdt", f1, "{\"auroc\":0.8}", NULL, &v1, NULL),
                     LP_OK);
    assert_int_equal(lp_registry_add(r, "churn", "gbdt", f2, NULL, "{\"lr\":0.1}", &v2, NULL), LP_OK);
    assert_int_equal(lp_registry_add(r, "other", "linear", f1, NULL, NULL, &v3, NULL), LP_OK);
    assert_int_equal(v1, 1);
    assert_int_equal(v2, 2);
    assert_int_equal(v3, 1);

    lp_err err;
    assert_int_equal(lp_registry_promote(r, "churn", 1, LP_STAGE_PRODUCTION, NULL), LP_OK);
    assert_int_equal(lp_registry_promote(r, "churn", 2, LP_STAGE_PRODUCTION, NULL), LP_OK);
    assert_int_equal(lp_registry_promote(r, "churn", 7, LP_STAGE_PRODUCTION, &err), LP_ENOTFOUND);

    lp_registry_entry *e;
    size_t n;
    assert_int_equal(lp_registry_list(r, "churn", &e, &n, NULL), LP_OK);
    assert_int_equal(n, 2);
    assert_int_equal(e[0].version, 2);
    assert_int_equal(e[0].stage, LP_STAGE_PRODUCTION);
    assert_int_equal(e[1].stage, LP_STAGE_ARCHIVED); /* the old production was archived */
    assert_string_equal(e[1].metrics_json, "{\"auroc\":0.8}");
    char hex[65];
    lp_sha256_hex("model one", 9, hex);
    assert_string_equal(e[1].sha256, hex);
    lp_registry_entries_free(e, n);

    lp_registry_entry one;
    assert_int_equal(lp_registry_get(r, "churn", 0, &one, NULL), LP_OK);
    assert_int_equal(one.version, 2);
    lp_registry_entry_clear(&one);
    assert_int_equal(lp_registry_get(r, "nobody", 0, &one, &err), LP_ENOTFOUND);
    assert_int_equal(lp_registry_add(r, "x", "gbdt", "/nonexistent", NULL, NULL, &v1, &err),
                     LP_ENOTFOUND);
    lp_registry_close(r);

    /* reopening keeps everything */
    assert_int_equal(lp_registry_open(db, &r, NULL), LP_OK);
    assert_int_equal(lp_registry_list(r, NULL, &e, &n, NULL), LP_OK);
    assert_int_equal(n, 3);
    lp_registry_entries_free(e, n);
    lp_registry_close(r);
    lp_stage s;
    assert_int_equal(lp_stage_parse("production", &s, NULL), LP_OK);
    assert_int_equal(lp_stage_parse("live", &s, &err), LP_EINVAL);
    free(db);
    free(f1);
    free(f2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),      cmocka_unit_test(test_corruption_rejected),
        cmocka_unit_test(test_future_version), cmocka_unit_test(test_writer_errors),
        cmocka_unit_test(test_sha256),         cmocka_unit_test(test_registry),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
