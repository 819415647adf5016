/*
 * test_fraud_velocity.c - the fraud app's velocity features on hand-made streams: exact window
 * counts/sums/means/maxima, time since last, amount ratio, first-seen pairs, delayed labels
 * (hidden until the delay passes, late labels through fraud_state_label), out-of-order arrival
 * within the lateness bound and refusal beyond it, duplicate ids, bad amounts; and that the
 * training replay (frame path, shuffled file order) gives bit-identical features to the online
 * one-at-a-time path. Text features: a value's index in the sorted list, NaN for an unknown or
 * missing value, the same from a frame (categorical or text column) as from the online path,
 * and the value lists' JSON form (absent in older models: none; out of order: refused).
 */
#include "lp_test.h"

#include "fraud.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static fraud_feat_opts opts2(void)
{
    fraud_feat_opts o = fraud_feat_opts_default();
    o.n_entities = 2;
    strcpy(o.entity[0], "card");
    strcpy(o.entity[1], "term");
    o.n_windows = 2;
    o.window_s[0] = 3600;
    o.window_s[1] = 86400;
    o.label_delay_s = 7200;
    o.max_lateness_s = 600;
    return o;
}

static size_t idx(char **names, size_t n, const char *want)
{
    for (size_t j = 0; j < n; j++)
        if (!strcmp(names[j], want))
            return j;
    fail_msg("no feature %s", want);
    return 0;
}

static fraud_tx mk(const char *id, double t, double amount, const char *card, const char *term,
                   int label)
{
    fraud_tx tx;
    memset(&tx, 0, sizeof tx);
    tx.id = id;
    tx.time = t;
    tx.amount = amount;
    tx.keys[0] = card;
    tx.keys[1] = term;
    tx.label = label;
    return tx;
}

static void test_windows_exact(void **state)
{
    (void)state;
    fraud_feat_opts o = opts2();
    fraud_state *s = NULL;
    lp_err err;
    assert_int_equal(fraud_state_new(&o, &s, &err), LP_OK);
    size_t d;
    char **nm = fraud_feature_names(&o, &d);
    assert_int_equal(d, fraud_state_n_features(s));
    /* 3 + 2 entities * (6 * 2 windows + 2) + pair = 32 */
    assert_int_equal(d, 32);
    float x[64];
    fraud_tx t1 = mk("a1", 0, 10, "A", "T1", 1), t2 = mk("a2", 1000, 20, "A", "T2", 0);
    assert_int_equal(fraud_state_step(s, &t1, x, &err), LP_OK);
    assert_true(x[idx(nm, d, "card:count_1h")] == 0);
    assert_true(x[idx(nm, d, "card:secs_since_last")] == (float)FRAUD_NEVER_SEEN_S);
    assert_true(x[idx(nm, d, "card:amount_ratio")] == -1);
    assert_int_equal(fraud_state_step(s, &t2, x, &err), LP_OK);
    fraud_tx t3 = mk("a3", 4000, 30, "A", "T1", 0);
    assert_int_equal(fraud_state_step(s, &t3, x, &err), LP_OK);
    /* history of A at t=4000: t=0 (10), t=1000 (20); the 1 h window holds only t=1000 */
    assert_true(x[idx(nm, d, "card:count_1h")] == 1);
    assert_true(x[idx(nm, d, "card:sum_1h")] == 20);
    assert_true(x[idx(nm, d, "card:count_1d")] == 2);
    assert_true(x[idx(nm, d, "card:sum_1d")] == 30);
    assert_true(x[idx(nm, d, "card:mean_1d")] == 15);
    assert_true(x[idx(nm, d, "card:max_1d")] == 20);
    assert_true(x[idx(nm, d, "card:secs_since_last")] == 3000);
    assert_true(x[idx(nm, d, "card:amount_ratio")] == 2);
    assert_true(x[idx(nm, d, "term:count_1d")] == 1); /* T1 at t=0 */
    assert_true(x[idx(nm, d, "pair:count")] == 1);   /* A with T1 once before */
    /* labels: nothing is settled before the 2 h delay */
    assert_true(x[idx(nm, d, "card:labelled_count_1d")] == 0);
    assert_true(x[idx(nm, d, "card:fraud_rate_1d")] == 0);
    /* at t=10000 the cut is 2800: t=0 (fraud) and t=1000 are settled, t=4000 is not */
    fraud_tx t4 = mk("a4", 10000, 5, "A", "T3", -1);
    assert_int_equal(fraud_state_step(s, &t4, x, &err), LP_OK);
    assert_true(x[idx(nm, d, "card:labelled_count_1h")] == 2);
    assert_true(x[idx(nm, d, "card:fraud_rate_1h")] == 0.5f);
    assert_true(x[idx(nm, d, "term:fraud_rate_1d")] == 0); /* T3 is new */
    assert_true(x[idx(nm, d, "pair:count")] == 0);
    /* a late chargeback for a2: once recorded it counts (its delay has passed) */
    assert_int_equal(fraud_state_label(s, "a2", 1, &err), LP_OK);
    assert_int_equal(fraud_state_label(s, "nope", 1, &err), LP_ENOTFOUND);
    fraud_tx t5 = mk("a5", 10100, 5, "A", "T3", -1);
    fraud_state_features(s, &t5, x);
    assert_true(x[idx(nm, d, "card:fraud_rate_1h")] == 1.0f);
    /* ... but a label of a recent transaction stays hidden until its delay passes */
    assert_int_equal(fraud_state_label(s, "a4", 1, &err), LP_OK);
    fraud_state_features(s, &t5, x);
    assert_true(x[idx(nm, d, "card:labelled_count_1d")] == 2);
    t5.time = 10000 + 7200 + 1;
    fraud_state_features(s, &t5, x);
    assert_true(x[idx(nm, d, "card:labelled_count_1d")] == 4);
    assert_true(x[idx(nm, d, "card:fraud_rate_1d")] == 0.75f);
    fraud_names_free(nm, d);
    fraud_state_free(s);
}

static void test_order_duplicates_bad_input(void **state)
{
    (void)state;
    fraud_feat_opts o = opts2();
    fraud_state *s = NULL;
    lp_err err;
    assert_int_equal(fraud_state_new(&o, &s, &err), LP_OK);
    size_t d;
    char **nm = fraud_feature_names(&o, &d);
    float x[64];
    fraud_tx a = mk("b1", 5000, 10, "B", "T", 0), b = mk("b2", 6000, 10, "B", "T", 0);
    assert_int_equal(fraud_state_step(s, &a, x, &err), LP_OK);
    assert_int_equal(fraud_state_step(s, &b, x, &err), LP_OK);
    /* duplicate id */
    fraud_tx dup = mk("b2", 6001, 1, "B", "T", 0);
    assert_int_equal(fraud_state_step(s, &dup, x, &err), LP_EEXIST);
    assert_non_null(strstr(err.msg, "b2"));
    /* 700 s late: beyond the 600 s bound, refused and named */
    fraud_tx late = mk("b3", 5300, 1, "B", "T", 0);
    assert_int_equal(fraud_state_step(s, &late, x, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "lateness"));
    /* 500 s late: accepted, sees only the history before it (b1), and is inserted in order */
    fraud_tx ok = mk("b4", 5500, 40, "B", "T", 0);
    assert_int_equal(fraud_state_step(s, &ok, x, &err), LP_OK);
    assert_true(x[idx(nm, d, "card:count_1h")] == 1);
    assert_true(x[idx(nm, d, "card:secs_since_last")] == 500);
    fraud_tx next = mk("b5", 6100, 1, "B", "T", 0);
    fraud_state_features(s, &next, x);
    assert_true(x[idx(nm, d, "card:count_1h")] == 3);
    assert_true(x[idx(nm, d, "card:max_1h")] == 40);
    assert_true(x[idx(nm, d, "card:secs_since_last")] == 100);
    /* bad amounts, ids, keys, times */
    fraud_tx bad = mk("b6", 6100, -1, "B", "T", 0);
    assert_int_equal(fraud_state_check(s, &bad, &err), LP_EINVAL);
    bad.amount = NAN;
    assert_int_equal(fraud_state_check(s, &bad, &err), LP_EINVAL);
    bad.amount = 1;
    bad.keys[1] = NULL;
    assert_int_equal(fraud_state_check(s, &bad, &err), LP_EINVAL);
    bad.keys[1] = "T";
    bad.id = "";
    assert_int_equal(fraud_state_check(s, &bad, &err), LP_EINVAL);
    bad.id = "b6";
    bad.time = INFINITY;
    assert_int_equal(fraud_state_check(s, &bad, &err), LP_EINVAL);
    assert_int_equal(fraud_state_n_tx(s), 3);
    fraud_names_free(nm, d);
    fraud_state_free(s);
}

/* replay of a shuffled frame (the training path) == online steps in time order */
static void test_replay_equals_online(void **state)
{
    (void)state;
    enum { N = 3000 };
    fraud_feat_opts o = opts2();
    lp_rng rng;
    lp_rng_seed(&rng, 7);
    static double t[N], amt[N], lab[N];
    static char cardv[N][16], termv[N][16], idv[N][16];
    double now = 1.7e9;
    for (size_t i = 0; i < N; i++) {
        now += 1 + floor(lp_rng_uniform(&rng) * 120);
        t[i] = now;
        amt[i] = floor(lp_rng_uniform(&rng) * 50000) / 100;
        lab[i] = lp_rng_uniform(&rng) < 0.05;
        snprintf(cardv[i], 16, "c%d", (int)lp_rng_below(&rng, 40));
        snprintf(termv[i], 16, "t%d", (int)lp_rng_below(&rng, 25));
        snprintf(idv[i], 16, "tx%zu", i);
    }
    /* online */
    fraud_state *s = NULL;
    lp_err err;
    assert_int_equal(fraud_state_new(&o, &s, &err), LP_OK);
    size_t d = fraud_state_n_features(s);
    float *on = malloc(N * d * sizeof(float));
    for (size_t i = 0; i < N; i++) {
        fraud_tx tx = mk(idv[i], t[i], amt[i], cardv[i], termv[i], (int)lab[i]);
        assert_int_equal(fraud_state_step(s, &tx, on + i * d, &err), LP_OK);
    }
    fraud_state_free(s);
    /* frame in a shuffled order */
    size_t perm[N];
    for (size_t i = 0; i < N; i++)
        perm[i] = i;
    lp_rng_shuffle_idx(&rng, perm, N);
    double ft[N], fa[N], fl[N];
    const char *fc[N], *fm[N], *fi[N];
    for (size_t i = 0; i < N; i++) {
        ft[i] = t[perm[i]];
        fa[i] = amt[perm[i]];
        fl[i] = lab[perm[i]];
        fc[i] = cardv[perm[i]];
        fm[i] = termv[perm[i]];
        fi[i] = idv[perm[i]];
    }
    lp_frame *f = lp_frame_new();
    assert_int_equal(lp_frame_add_text(f, "id", fi, N, &err), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "ts", LP_COL_KIND_DATETIME, ft, NULL, N, &err),
                     LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "amt", LP_COL_KIND_FLOAT, fa, NULL, N, &err), LP_OK);
    assert_int_equal(lp_frame_add_categorical(f, "card", fc, N, &err), LP_OK);
    assert_int_equal(lp_frame_add_categorical(f, "term", fm, N, &err), LP_OK);
    assert_int_equal(lp_frame_add_numeric(f, "y", LP_COL_KIND_INTEGER, fl, NULL, N, &err), LP_OK);
    float *X = NULL;
    int32_t *y = NULL;
    double *tt = NULL;
    size_t kept = 0;
    assert_int_equal(fraud_replay(f, &o, "id", "ts", "amt", "y", NULL, &X, &y, &tt, &kept, NULL, &err),
                     LP_OK);
    assert_int_equal(kept, N);
    assert_memory_equal(X, on, N * d * sizeof(float));
    for (size_t i = 0; i < N; i++)
        assert_int_equal(y[i], (int)lab[i]);
    /* the windows saw real activity (a constant-zero feature would compare equal too) */
    size_t j1h = 3 + 0; /* card:count_1h */
    double tot = 0;
    for (size_t i = 0; i < N; i++)
        tot += X[i * d + j1h];
    assert_true(tot > N / 4);
    free(X);
    free(y);
    free(tt);
    free(on);
    lp_frame_free(f);
}

static void test_text_features(void **state)
{
    (void)state;
    fraud_feat_opts o = opts2();
    o.n_text = 1;
    strcpy(o.text[0], "channel");
    o.n_values[0] = 3;
    strcpy(o.values[0][0], "atm");
    strcpy(o.values[0][1], "pos");
    strcpy(o.values[0][2], "web");
    lp_err err;
    assert_int_equal(fraud_feat_opts_check(&o, &err), LP_OK);
    assert_true(fraud_text_code(&o, 0, "atm") == 0.0f);
    assert_true(fraud_text_code(&o, 0, "web") == 2.0f);
    assert_true(isnan(fraud_text_code(&o, 0, "kiosk")));
    assert_true(isnan(fraud_text_code(&o, 0, "")));
    assert_true(isnan(fraud_text_code(&o, 0, NULL)));
    size_t d = 0;
    char **names = fraud_feature_names(&o, &d);
    assert_string_equal(names[3], "channel"); /* after amount, hour, weekday (no extras) */
    fraud_names_free(names, d);
    /* online: one value each, an unknown one and a missing one */
    static const char *const ch[] = {"web", "pos", "kiosk", NULL, "atm", "web"};
    enum { N = 6 };
    fraud_state *s = NULL;
    assert_int_equal(fraud_state_new(&o, &s, &err), LP_OK);
    d = fraud_state_n_features(s);
    float *on = malloc(N * d * sizeof(float));
    char idv[N][8];
    double ft[N], fa[N];
    const char *fc[N], *fm[N], *fi[N];
    for (size_t i = 0; i < N; i++) {
        snprintf(idv[i], 8, "x%zu", i);
        fraud_tx tx = mk(idv[i], 1.7e9 + 60.0 * i, 10 + i, "c1", "t1", -1);
        tx.text[0] = ch[i];
        assert_int_equal(fraud_state_step(s, &tx, on + i * d, &err), LP_OK);
        ft[i] = tx.time;
        fa[i] = tx.amount;
        fc[i] = "c1";
        fm[i] = "t1";
        fi[i] = idv[i];
    }
    fraud_state_free(s);
    static const float want[] = {2, 1, NAN, NAN, 0, 2};
    for (size_t i = 0; i < N; i++)
        if (!(on[i * d + 3] == want[i] || (isnan(want[i]) && isnan(on[i * d + 3]))))
            fail_msg("row %zu: channel feature %g, expected %g", i, (double)on[i * d + 3],
                     (double)want[i]);
    /* the replay gives the same bits, from a categorical and from a text column */
    for (int kind = 0; kind < 2; kind++) {
        lp_frame *f = lp_frame_new();
        assert_int_equal(lp_frame_add_text(f, "id", fi, N, &err), LP_OK);
        assert_int_equal(lp_frame_add_numeric(f, "ts", LP_COL_KIND_DATETIME, ft, NULL, N, &err),
                         LP_OK);
        assert_int_equal(lp_frame_add_numeric(f, "amt", LP_COL_KIND_FLOAT, fa, NULL, N, &err),
                         LP_OK);
        assert_int_equal(lp_frame_add_categorical(f, "card", fc, N, &err), LP_OK);
        assert_int_equal(lp_frame_add_categorical(f, "term", fm, N, &err), LP_OK);
        assert_int_equal(kind ? lp_frame_add_text(f, "channel", ch, N, &err)
                              : lp_frame_add_categorical(f, "channel", ch, N, &err),
                         LP_OK);
        float *X = NULL;
        int32_t *y = NULL;
        double *tt = NULL;
        size_t kept = 0;
        assert_int_equal(fraud_replay(f, &o, "id", "ts", "amt", NULL, NULL, &X, &y, &tt, &kept,
                                      NULL, &err),
                         LP_OK);
        assert_int_equal(kept, N);
        assert_memory_equal(X, on, N * d * sizeof(float));
        free(X);
        free(y);
        free(tt);
        lp_frame_free(f);
    }
    free(on);
    /* JSON: the lists round-trip; without "text" (an older model) there are none */
    cJSON *j = fraud_feat_opts_to_json(&o);
    fraud_feat_opts back;
    assert_int_equal(fraud_feat_opts_from_json(j, &back, &err), LP_OK);
    assert_int_equal((int)back.n_text, 1);
    assert_string_equal(back.text[0], "channel");
    assert_int_equal((int)back.n_values[0], 3);
    assert_string_equal(back.values[0][2], "web");
    cJSON *vals = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "text"), 0),
                                      "values");
    cJSON_ReplaceItemInArray(vals, 0, cJSON_CreateString("zebra"));
    assert_int_equal(fraud_feat_opts_from_json(j, &back, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "text feature 'channel': values 'zebra' and 'pos' "
                                              "not in strictly increasing order"));
    cJSON_DeleteItemFromObject(j, "text");
    assert_int_equal(fraud_feat_opts_from_json(j, &back, &err), LP_OK);
    assert_int_equal((int)back.n_text, 0);
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_windows_exact),
        cmocka_unit_test(test_order_duplicates_bad_input),
        cmocka_unit_test(test_replay_equals_online),
        cmocka_unit_test(test_text_features),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
