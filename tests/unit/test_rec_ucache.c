/*
 * test_rec_ucache.c - the recommend service's prepared-user cache (apps/recommend/rec_ucache.c):
 * a put entry is found again for the same user and generation only; a token read before an
 * invalidation keeps the entry out; the byte budget evicts the least recently used entry first;
 * an entry evicted while held stays usable until released (the sanitizer build checks the
 * frees).
 */
#include "lp_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../apps/recommend/rec_ucache.c"

static lp_mf *g_m;

static int setup(void **state)
{
    lp_mf_data *d = lp_mf_data_new();
    char u[16], it[16];
    for (int user = 0; user < 4; user++)
        for (int t = 0; t < 6; t++) {
            snprintf(u, sizeof u, "u%d", user);
            snprintf(it, sizeof it, "i%d", (user + t) % 10);
            lp_mf_data_add(d, u, it, 1.0f, NULL);
        }
    lp_mf_opts o = lp_mf_opts_default();
    o.kind = LP_MF_KIND_POPULAR;
    int rc = lp_mf_fit(d, &o, &g_m, NULL) ? -1 : 0;
    lp_mf_data_free(d);
    return rc;
}

static int teardown(void **state)
{
    lp_mf_free(g_m);
    return 0;
}

/* a prepared user with n history items */
static lp_mf_user *prep(size_t n)
{
    int32_t items[10];
    float w[10];
    for (size_t t = 0; t < n; t++) items[t] = (int32_t)t, w[t] = 1;
    lp_mf_user *pu;
    assert_int_equal(lp_mf_user_new(g_m, NULL, items, w, n, &pu, NULL), LP_OK);
    return pu;
}

static void test_hit_and_generation(void **state)
{
    rec_ucache *c = rec_ucache_new(1 << 20);
    uint64_t tok;
    rec_uentry *h;
    assert_null(rec_ucache_get(c, "alice", 1, &tok, &h));
    lp_mf_user *pu = prep(3);
    assert_ptr_equal(rec_ucache_put(c, "alice", 1, tok, pu, &h), pu);
    rec_ucache_release(c, h);
    assert_ptr_equal(rec_ucache_get(c, "alice", 1, &tok, &h), pu);
    rec_ucache_release(c, h);
    assert_null(rec_ucache_get(c, "alicf", 1, &tok, &h)); /* another user */
    assert_null(rec_ucache_get(c, "alice", 2, &tok, &h)); /* another model: dropped */
    assert_null(rec_ucache_get(c, "alice", 1, &tok, &h));
    rec_ucache_stats st = rec_ucache_stats_get(c);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 4);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    rec_ucache_free(c);
}

static void test_invalidation_race(void **state)
{
    rec_ucache *c = rec_ucache_new(1 << 20);
    uint64_t tok;
    rec_uentry *h;
    assert_null(rec_ucache_get(c, "bob", 1, &tok, &h));
    /* an event for bob lands between reading the token and putting the entry */
    rec_ucache_invalidate(c, "bob");
    lp_mf_user *pu = prep(2);
    assert_ptr_equal(rec_ucache_put(c, "bob", 1, tok, pu, &h), pu); /* usable, not cached */
    assert_non_null(h);
    rec_ucache_release(c, h);
    assert_null(rec_ucache_get(c, "bob", 1, &tok, &h));
    /* an entry made before an event is invalid after it */
    const lp_mf_user *got = rec_ucache_put(c, "bob", 1, tok, prep(2), &h);
    assert_ptr_equal(got, h->pu);
    rec_ucache_release(c, h);
    assert_ptr_equal(rec_ucache_get(c, "bob", 1, &tok, &h), got);
    rec_ucache_release(c, h);
    rec_ucache_invalidate(c, "bob");
    assert_null(rec_ucache_get(c, "bob", 1, &tok, &h));
    assert_int_equal(rec_ucache_stats_get(c).entries, 0);
    rec_ucache_free(c);
}

static void test_budget_lru(void **state)
{
    lp_mf_user *probe = prep(8);
    size_t one = lp_mf_user_bytes(probe) + sizeof(rec_uentry) + 3; /* "uN" + NUL */
    lp_mf_user_free(probe);
    rec_ucache *c = rec_ucache_new(3 * one); /* room for three */
    uint64_t tok;
    rec_uentry *h, *held_u0;
    char id[8];
    for (int i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "u%d", i);
        assert_null(rec_ucache_get(c, id, 1, &tok, &h));
        rec_ucache_put(c, id, 1, tok, prep(8), &h);
        rec_ucache_release(c, h);
    }
    assert_int_equal(rec_ucache_stats_get(c).entries, 3);
    /* use u0 (now the newest) and keep it held; u1 is then the oldest */
    const lp_mf_user *u0 = rec_ucache_get(c, "u0", 1, &tok, &held_u0);
    assert_non_null(u0);
    assert_null(rec_ucache_get(c, "u3", 1, &tok, &h));
    rec_ucache_put(c, "u3", 1, tok, prep(8), &h);
    rec_ucache_release(c, h);
    assert_int_equal(rec_ucache_stats_get(c).entries, 3);
    assert_null(rec_ucache_get(c, "u1", 1, &tok, &h)); /* evicted */
    assert_non_null(rec_ucache_get(c, "u2", 1, &tok, &h));
    rec_ucache_release(c, h);
    /* two more entries push out u0 while it is held: still readable until released */
    for (int i = 4; i < 6; i++) {
        snprintf(id, sizeof id, "u%d", i);
        assert_null(rec_ucache_get(c, id, 1, &tok, &h));
        rec_ucache_put(c, id, 1, tok, prep(8), &h);
        rec_ucache_release(c, h);
    }
    const int32_t *items;
    const float *w;
    assert_int_equal(lp_mf_user_prepared_history(u0, &items, &w), 8);
    assert_int_equal(items[7], 7);
    rec_ucache_release(c, held_u0);
    assert_true(rec_ucache_stats_get(c).bytes <= 3 * one);
    /* a zero budget keeps nothing but still hands the prepared user back */
    rec_ucache *z = rec_ucache_new(0);
    assert_null(rec_ucache_get(z, "u0", 1, &tok, &h));
    assert_non_null(rec_ucache_put(z, "u0", 1, tok, prep(1), &h));
    rec_ucache_release(z, h);
    assert_int_equal(rec_ucache_stats_get(z).entries, 0);
    rec_ucache_free(z);
    rec_ucache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_and_generation),
        cmocka_unit_test(test_invalidation_race),
        cmocka_unit_test(test_budget_lru),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
