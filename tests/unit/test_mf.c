/*
 * test_mf.c - the mf family's plumbing and its simple models: interactions and id maps, event
 * weights and decay, the per-user split, top-k against a full sort, popularity, item-kNN,
 * exclusion and filters, BPR's training AUC, save/load round trips and corrupt files.
 * ALS numerics (objective, CG vs Cholesky, fold-in, explanations) are in numerics/test_mf_als.c.
 */
#include "lp_test.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Two taste groups over 40 items: users u0..u29 in group g = u % 2 interact with 8 random items
 * of their group's 20 (items i0..i19 for group 0, i20..i39 for group 1), plus item i0 or i20
 * for everyone in the group (the group's most popular item). */
static lp_mf_data *two_groups(uint64_t seed)
{
    lp_mf_data *d = lp_mf_data_new();
    assert_non_null(d);
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    char u[16], it[16];
    for (int user = 0; user < 30; user++) {
        int g = user % 2;
        snprintf(u, sizeof u, "u%d", user);
        snprintf(it, sizeof it, "i%d", g * 20);
        assert_int_equal(lp_mf_data_add(d, u, it, 2.0f, NULL), LP_OK);
        for (int t = 0; t < 8; t++) {
            snprintf(it, sizeof it, "i%d", g * 20 + 1 + (int)lp_rng_below(&rng, 19));
            assert_int_equal(lp_mf_data_add(d, u, it, 1.0f, NULL), LP_OK);
        }
    }
    return d;
}

static int group_of(const lp_mf *m, int32_t item)
{
    return atoi(lp_mf_item_id(m, (size_t)item) + 1) >= 20;
}

static void test_data_basics(void **state)
{
    lp_mf_data *d = lp_mf_data_new();
    lp_err err;
    assert_int_equal(lp_mf_data_add(d, "alice", "book", 1, &err), LP_OK);
    assert_int_equal(lp_mf_data_add(d, "alice", "book", 2, &err), LP_OK);
    assert_int_equal(lp_mf_data_add(d, "bob", "pen", 1, &err), LP_OK);
    assert_int_equal(lp_mf_data_n_users(d), 2);
    assert_int_equal(lp_mf_data_n_items(d), 2);
    assert_int_equal(lp_mf_data_n_pairs(d), 2); /* the repeated pair is summed */
    assert_int_equal(lp_mf_data_user_index(d, "bob"), 1);
    assert_int_equal(lp_mf_data_item_index(d, "nope"), -1);
    assert_int_equal(lp_mf_data_add(d, "alice", "book", -1, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "weight"));
    assert_int_equal(lp_mf_data_add(d, "alice", "book", NAN, &err), LP_EINVAL);
    assert_int_equal(lp_mf_data_add(d, "", "book", 1, &err), LP_EINVAL);
    assert_int_equal(lp_mf_data_add(d, "a\xff", "book", 1, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "UTF-8"));
    char longid[LP_MF_ID_MAX + 2];
    memset(longid, 'x', sizeof longid - 1);
    longid[sizeof longid - 1] = 0;
    assert_int_equal(lp_mf_data_add(d, longid, "book", 1, &err), LP_EINVAL);
    assert_int_equal(lp_mf_data_add(d, "caf\xc3\xa9 \"q\" <x>", "b/c?d=e", 1, &err), LP_OK);
    lp_mf_data_free(d);
    lp_mf_data_free(NULL);
}

static void test_from_frame_events(void **state)
{
    const char *csv = "user,item,type,ts\n"
                      "7,a,view,0\n7,a,purchase,0\n8,b,cart,86400\n8,,view,0\n9,c,view,86400\n";
    lp_frame *f;
    lp_err err;
    assert_int_equal(lp_frame_parse_csv(csv, strlen(csv), "ev.csv", NULL, &f, &err), LP_OK);
    lp_mf_event_opts ev = lp_mf_event_opts_default();
    ev.half_life_s = 86400;
    lp_mf_data *d;
    size_t skipped;
    assert_int_equal(lp_mf_data_from_frame(f, NULL, 0, "user", "item", NULL, "type", "ts", &ev,
                                           "ev.csv", &d, &skipped, &err), LP_OK);
    assert_int_equal(skipped, 1); /* the row without an item */
    assert_int_equal(lp_mf_data_user_index(d, "7"), 0); /* integers print without ".0" */
    assert_float_equal(lp_mf_data_time_ref(d), 86400, 0); /* decayed to the latest time */
    lp_mf_opts o = lp_mf_opts_default();
    o.kind = LP_MF_KIND_POPULAR;
    lp_mf *m;
    assert_int_equal(lp_mf_fit(d, &o, &m, &err), LP_OK);
    /* a: (1 + 5) * 2^-1 = 3 (one half-life old); b: 3 * 2^0 = 3; c: 1 */
    assert_float_equal(lp_mf_item_popularity(m, (size_t)lp_mf_item_index(m, "a")), 3.0, 1e-5);
    assert_float_equal(lp_mf_item_popularity(m, (size_t)lp_mf_item_index(m, "b")), 3.0, 1e-5);
    assert_float_equal(lp_mf_item_popularity(m, (size_t)lp_mf_item_index(m, "c")), 1.0, 1e-5);
    lp_mf_free(m);
    /* lp_mf_data_scale: every weight times the factor, none down to 0 */
    lp_mf_data_scale(d, 0.25f);
    assert_int_equal(lp_mf_fit(d, &o, &m, &err), LP_OK);
    assert_float_equal(lp_mf_item_popularity(m, (size_t)lp_mf_item_index(m, "a")), 0.75, 1e-6);
    lp_mf_free(m);
    lp_mf_data_scale(d, 1e-30f);
    lp_mf_data_scale(d, 1e-30f);
    assert_int_equal(lp_mf_fit(d, &o, &m, &err), LP_OK);
    assert_true(lp_mf_item_popularity(m, (size_t)lp_mf_item_index(m, "c")) > 0);
    lp_mf_free(m);
    lp_mf_data_free(d);
    float w;
    assert_int_equal(lp_mf_event_type_weight(&ev, "refund", &w, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "refund"));
    lp_frame_free(f);

    const char *bad = "user,item,w\n1,a,2\n1,b,-3\n";
    assert_int_equal(lp_frame_parse_csv(bad, strlen(bad), "bad.csv", NULL, &f, &err), LP_OK);
    assert_int_equal(lp_mf_data_from_frame(f, NULL, 0, "user", "item", "w", NULL, NULL, NULL,
                                           "bad.csv", &d, NULL, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "row 2"));
    assert_int_equal(lp_mf_data_from_frame(f, NULL, 0, "user", "nope", NULL, NULL, NULL, NULL,
                                           "bad.csv", &d, NULL, &err), LP_ENOTFOUND);
    lp_frame_free(f);
}

static void test_split_last(void **state)
{
    const char *csv = "u,i,t\na,1,5\na,2,1\na,3,9\nb,4,1\nc,5,2\nc,6,1\n";
    lp_frame *f;
    lp_err err;
    assert_int_equal(lp_frame_parse_csv(csv, strlen(csv), "s.csv", NULL, &f, &err), LP_OK);
    lp_split s;
    assert_int_equal(lp_mf_split_last(f, "u", "t", 1, &s, &err), LP_OK);
    assert_int_equal(s.n_test, 2);         /* a's t=9 (row 2) and c's t=2 (row 4); b keeps all */
    assert_int_equal(s.n_train, 4);
    assert_int_equal(s.test[0], 2);
    assert_int_equal(s.test[1], 4);
    lp_split_free(&s);
    assert_int_equal(lp_mf_split_last(f, "u", NULL, 2, &s, &err), LP_OK);
    assert_int_equal(s.n_test, 2); /* only a has more than 2 rows: its last two in row order */
    assert_int_equal(s.test[0], 1);
    assert_int_equal(s.test[1], 2);
    lp_split_free(&s);
    lp_frame_free(f);
}


static const float *g_scores;
static int by_score(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (g_scores[x] != g_scores[y]) return g_scores[x] > g_scores[y] ? -1 : 1;
    return x < y ? -1 : 1;
}

static void test_topk(void **state)
{
    lp_rng rng;
    lp_rng_seed(&rng, 3);
    enum { N = 500 };
    float s[N];
    uint8_t skip[N];
    int32_t all[N], top[N];
    for (int trial = 0; trial < 20; trial++) {
        size_t n = 1 + lp_rng_below(&rng, N), m = 0;
        for (size_t i = 0; i < n; i++) {
            s[i] = (float)lp_rng_below(&rng, 50); /* many ties */
            skip[i] = lp_rng_below(&rng, 4) == 0;
            if (!skip[i]) all[m++] = (int32_t)i;
        }
        g_scores = s;
        qsort(all, m, sizeof *all, by_score);
        size_t k = 1 + lp_rng_below(&rng, 60);
        size_t got = lp_mf_topk(s, n, skip, k, top);
        assert_int_equal(got, k < m ? k : m);
        for (size_t t = 0; t < got; t++) assert_int_equal(top[t], all[t]);
    }
    assert_int_equal(lp_mf_topk(s, 10, NULL, 0, top), 0);
}

static lp_mf *fit(const lp_mf_data *d, lp_mf_kind kind)
{
    lp_mf_opts o = lp_mf_opts_default();
    o.kind = kind;
    o.factors = 8;
    o.iterations = kind == LP_MF_KIND_BPR ? 40 : 10;
    o.threads = 2;
    lp_mf *m;
    lp_err err;
    if (lp_mf_fit(d, &o, &m, &err)) fail_msg("fit %s: %s", lp_mf_kind_name(kind), err.msg);
    return m;
}

static void test_popular_and_exclusion(void **state)
{
    lp_mf_data *d = two_groups(1);
    lp_mf *m = fit(d, LP_MF_KIND_POPULAR);
    lp_mf_rec r[50];
    size_t n;
    lp_err err;
    lp_mf_query q = {.k = 2};
    assert_int_equal(lp_mf_recommend(m, &q, r, &n, &err), LP_OK);
    assert_int_equal(n, 2); /* i0 and i20, each 15 users x 2 */
    assert_string_equal(lp_mf_item_id(m, (size_t)r[0].item), "i0");
    assert_string_equal(lp_mf_item_id(m, (size_t)r[1].item), "i20");
    /* 15 users, plus the largest summed weight's tie-break share 0.5 */
    assert_float_equal(r[0].score, 15.5, 1e-5);
    assert_float_equal(lp_mf_item_popularity(m, (size_t)r[0].item), 30.0, 1e-5);
    /* a user's own items are excluded; explicit excludes and the allowed mask too */
    const int32_t *hi;
    const float *hw;
    size_t nh = lp_mf_user_history(m, 0, &hi, &hw);
    int32_t ex = (int32_t)lp_mf_item_index(m, "i20");
    uint8_t allowed[64];
    size_t ni = lp_mf_n_items(m);
    for (size_t i = 0; i < ni; i++) allowed[i] = i % 3 != 0;
    q = (lp_mf_query){.history = hi, .history_w = hw, .n_history = nh, .exclude_history = true,
                      .exclude = &ex, .n_exclude = 1, .allowed = allowed, .k = 1000};
    assert_int_equal(lp_mf_recommend(m, &q, r, &n, &err), LP_OK);
    assert_true(n > 0 && n < ni);
    for (size_t t = 0; t < n; t++) {
        assert_int_not_equal(r[t].item, ex);
        assert_true(allowed[r[t].item]);
        for (size_t h = 0; h < nh; h++) assert_int_not_equal(r[t].item, hi[h]);
        if (t) assert_true(r[t - 1].score >= r[t].score);
    }
    q.k = 0;
    assert_int_equal(lp_mf_recommend(m, &q, r, &n, &err), LP_EINVAL);
    int32_t bad = 999;
    float w1 = 1;
    q = (lp_mf_query){.history = &bad, .history_w = &w1, .n_history = 1, .k = 3};
    assert_int_equal(lp_mf_recommend(m, &q, r, &n, &err), LP_EINVAL);
    w1 = NAN;
    bad = 0;
    assert_int_equal(lp_mf_recommend(m, &q, r, &n, &err), LP_EINVAL);
    lp_mf_free(m);
    lp_mf_data_free(d);
}

static void test_itemknn(void **state)
{
    lp_mf_data *d = two_groups(2);
    lp_mf *m = fit(d, LP_MF_KIND_ITEMKNN);
    lp_mf_rec r[10];
    size_t n;
    lp_err err;
    /* neighbours of a group item are in its group (items of the other group never co-occur) */
    for (int g = 0; g < 2; g++) {
        size_t item = (size_t)lp_mf_item_index(m, g ? "i25" : "i5");
        assert_int_equal(lp_mf_similar(m, item, 5, NULL, r, &n, &err), LP_OK);
        assert_int_equal(n, 5);
        for (size_t t = 0; t < n; t++) {
            assert_int_equal(group_of(m, r[t].item), g);
            assert_int_not_equal(r[t].item, (int32_t)item);
            assert_true(r[t].score > 0 && r[t].score <= 1);
        }
    }
    /* a user of group 1 gets group-1 items, each explained by items of their history */
    const int32_t *hi;
    const float *hw;
    size_t nh = lp_mf_user_history(m, 1, &hi, &hw);
    lp_mf_query q = {.history = hi, .history_w = hw, .n_history = nh, .exclude_history = true,
                     .k = 5, .n_because = 3};
    assert_int_equal(lp_mf_recommend(m, &q, r, &n, &err), LP_OK);
    assert_int_equal(n, 5);
    for (size_t t = 0; t < n; t++) {
        assert_int_equal(group_of(m, r[t].item), 1);
        assert_true(r[t].n_because >= 1);
        for (size_t b = 0; b < r[t].n_because; b++) {
            bool in = false;
            for (size_t h = 0; h < nh; h++) in |= hi[h] == r[t].because[b];
            assert_true(in);
        }
    }
    lp_mf_free(m);
    lp_mf_data_free(d);
}

/* Fraction of (u, i, j) with score_ui > score_uj over observed i and unobserved j. */
static double train_auc(const lp_mf *m)
{
    lp_rng rng;
    lp_rng_seed(&rng, 99);
    size_t k = lp_mf_dim(m), wins = 0, total = 0;
    for (size_t u = 0; u < lp_mf_n_users(m); u++) {
        const int32_t *hi;
        const float *hw;
        size_t nh = lp_mf_user_history(m, u, &hi, &hw);
        const float *x = lp_mf_user_factors(m, u);
        for (size_t t = 0; t < nh; t++)
            for (int s = 0; s < 20; s++) {
                int32_t j = (int32_t)lp_rng_below(&rng, lp_mf_n_items(m));
                bool seen = false;
                for (size_t h = 0; h < nh; h++) seen |= hi[h] == j;
                if (seen) continue;
                const float *yi = lp_mf_item_factors(m, (size_t)hi[t]);
                const float *yj = lp_mf_item_factors(m, (size_t)j);
                double si = 0, sj = 0;
                for (size_t a = 0; a < k; a++) si += x[a] * yi[a], sj += x[a] * yj[a];
                wins += si > sj;
                total++;
            }
    }
    return (double)wins / (double)total;
}

static void record(size_t it, double obj, void *user)
{
    double *v = user;
    v[it - 1] = obj;
}

static void test_bpr_auc_rises(void **state)
{
    lp_mf_data *d = two_groups(4);
    lp_mf_opts o = lp_mf_opts_default();
    o.kind = LP_MF_KIND_BPR;
    o.factors = 8;
    double loss[40];
    o.on_iter = record;
    o.on_iter_user = loss;
    lp_err err;
    double prev = 0;
    size_t its[] = {1, 5, 40};
    for (size_t t = 0; t < 3; t++) {
        o.iterations = its[t];
        lp_mf *m;
        assert_int_equal(lp_mf_fit(d, &o, &m, &err), LP_OK);
        double auc = train_auc(m);
        assert_true(auc > prev);
        prev = auc;
        lp_mf_free(m);
    }
    assert_true(prev > 0.9);
    assert_true(loss[39] < loss[0] * 0.7); /* the BPR loss fell */
    lp_mf_data_free(d);
}

static void assert_same_recs(const lp_mf *a, const lp_mf *b)
{
    assert_int_equal(lp_mf_n_users(a), lp_mf_n_users(b));
    assert_int_equal(lp_mf_n_items(a), lp_mf_n_items(b));
    lp_mf_rec ra[8], rb[8];
    size_t na, nb;
    for (size_t u = 0; u < lp_mf_n_users(a); u += 7) {
        assert_string_equal(lp_mf_user_id(a, u), lp_mf_user_id(b, u));
        const int32_t *hi;
        const float *hw;
        size_t nh = lp_mf_user_history(a, u, &hi, &hw);
        lp_mf_query q = {.user_vec = lp_mf_user_factors(a, u), .history = hi, .history_w = hw,
                         .n_history = nh, .exclude_history = true, .k = 8, .n_because = 2};
        assert_int_equal(lp_mf_recommend(a, &q, ra, &na, NULL), LP_OK);
        q.user_vec = lp_mf_user_factors(b, u);
        nh = lp_mf_user_history(b, u, &q.history, &q.history_w);
        assert_int_equal(lp_mf_recommend(b, &q, rb, &nb, NULL), LP_OK);
        assert_int_equal(na, nb);
        for (size_t t = 0; t < na; t++) {
            assert_int_equal(ra[t].item, rb[t].item);
            assert_true(ra[t].score == rb[t].score);
            assert_int_equal(ra[t].n_because, rb[t].n_because);
        }
    }
}

static void test_save_load_roundtrip(void **state)
{
    lp_mf_data *d = two_groups(5);
    char *path = lp_test_tmpfile("m.lpm");
    for (int kind = 0; kind < 4; kind++) {
        lp_mf *m = fit(d, (lp_mf_kind)kind), *back;
        lp_err err;
        assert_int_equal(lp_mf_save(m, path, &err), LP_OK);
        assert_int_equal(lp_mf_load(path, &back, &err), LP_OK);
        assert_int_equal(lp_mf_model_kind(back), kind);
        assert_int_equal(lp_mf_dim(back), lp_mf_dim(m));
        assert_int_equal(lp_mf_model_opts(back)->factors, 8);
        assert_same_recs(m, back);
        lp_mf_free(back);
        lp_mf_free(m);
    }
    free(path);
    lp_mf_data_free(d);
}

/* The reading source (columns, event-type table, decay) and the weight transform travel in the
 * file; a model without a recorded source loads with none. */
static void test_source_and_event_weights(void **state)
{
    lp_mf_data *d = two_groups(7);
    char *path = lp_test_tmpfile("s.lpm");
    lp_err err;
    lp_mf *m = fit(d, LP_MF_KIND_POPULAR), *back;
    assert_int_equal(lp_mf_model_opts(m)->weight_transform, LP_MF_WEIGHT_NONE); /* auto */
    assert_int_equal(lp_mf_save(m, path, &err), LP_OK);
    assert_int_equal(lp_mf_load(path, &back, &err), LP_OK);
    assert_null(lp_mf_model_source(back));
    lp_mf_free(back);
    lp_mf_source src = {.user_col = "visitorid", .item_col = "itemid", .type_col = "event",
                        .time_col = "ts", .ev = lp_mf_event_opts_default()};
    assert_int_equal(lp_mf_event_weights_parse(&src.ev, "addtocart=3,transaction=5.5,view=1",
                                               &err), LP_OK);
    src.ev.half_life_s = 86400;
    src.time_ref = 1767225600.5;
    assert_int_equal(lp_mf_set_source(m, &src, &err), LP_OK);
    assert_int_equal(lp_mf_save(m, path, &err), LP_OK);
    assert_int_equal(lp_mf_load(path, &back, &err), LP_OK);
    const lp_mf_source *b = lp_mf_model_source(back);
    assert_non_null(b);
    assert_string_equal(b->user_col, "visitorid");
    assert_string_equal(b->time_col, "ts");
    assert_null(b->weight_col);
    assert_int_equal(b->ev.n_types, 3);
    float w;
    assert_int_equal(lp_mf_event_type_weight(&b->ev, "transaction", &w, &err), LP_OK);
    assert_float_equal(w, 5.5, 1e-6);
    assert_float_equal(b->ev.half_life_s, 86400, 1e-9);
    assert_float_equal(b->time_ref, 1767225600.5, 0);
    assert_int_equal(lp_mf_event_type_weight(&b->ev, "purchase", &w, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "'purchase'"));
    lp_mf_free(back);
    lp_mf_free(m);
    /* bad tables leave the options as they were */
    lp_mf_event_opts ev = lp_mf_event_opts_default();
    assert_int_equal(lp_mf_event_weights_parse(&ev, "view=1,cart", &err), LP_EINVAL);
    assert_int_equal(lp_mf_event_weights_parse(&ev, "view=1,view=2", &err), LP_EINVAL);
    assert_int_equal(lp_mf_event_weights_parse(&ev, "view=0", &err), LP_EINVAL);
    assert_int_equal(lp_mf_event_weights_parse(&ev, "", &err), LP_EINVAL);
    assert_int_equal(ev.n_types, 3);
    free(path);
    lp_mf_data_free(d);
}

/* log1p is applied to the summed pair weights inside the model: a fit on raw weights with
 * LOG1P recommends as a fit on log1p(raw) weights with NONE, also for a folded-in history. */
static void test_weight_transform(void **state)
{
    lp_mf_data *raw = lp_mf_data_new(), *pre = lp_mf_data_new();
    lp_err err;
    char u[16], it[16];
    for (int a = 0; a < 30; a++)
        for (int b = 0; b < 20; b++) {
            if ((a * 7 + b * 3) % 4) continue;
            float w = (float)(1 + ((a * 31 + b * 17) % 97) * ((a + b) % 5 ? 1 : 500));
            snprintf(u, sizeof u, "u%d", a);
            snprintf(it, sizeof it, "i%d", b);
            assert_int_equal(lp_mf_data_add(raw, u, it, w, &err), LP_OK);
            assert_int_equal(lp_mf_data_add(pre, u, it, log1pf(w), &err), LP_OK);
        }
    for (int kind = 0; kind < 4; kind++) {
        lp_mf_opts o = lp_mf_opts_default();
        o.kind = (lp_mf_kind)kind;
        o.factors = 8;
        o.iterations = 5;
        o.threads = 1;
        o.weight_transform = LP_MF_WEIGHT_LOG1P;
        lp_mf *a, *b;
        assert_int_equal(lp_mf_fit(raw, &o, &a, &err), LP_OK);
        o.weight_transform = LP_MF_WEIGHT_NONE;
        assert_int_equal(lp_mf_fit(pre, &o, &b, &err), LP_OK);
        const int32_t *hi;
        const float *hw;
        size_t nh = lp_mf_user_history(a, 3, &hi, &hw);
        lp_mf_rec ra[5], rb[5];
        size_t na, nb;
        lp_mf_query q = {.history = hi, .history_w = hw, .n_history = nh, .k = 5,
                         .exclude_history = true};
        assert_int_equal(lp_mf_recommend(a, &q, ra, &na, &err), LP_OK);
        nh = lp_mf_user_history(b, 3, &hi, &hw);
        q.history = hi, q.history_w = hw, q.n_history = nh;
        assert_int_equal(lp_mf_recommend(b, &q, rb, &nb, &err), LP_OK);
        assert_int_equal(na, nb);
        for (size_t r = 0; r < na; r++) {
            assert_int_equal(ra[r].item, rb[r].item);
            assert_float_equal(ra[r].score, rb[r].score, 1e-3 * (1 + fabsf(rb[r].score)));
        }
        lp_mf_free(a);
        lp_mf_free(b);
    }
    lp_mf_data_free(raw);
    lp_mf_data_free(pre);
}

static void test_corrupt_files(void **state)
{
    lp_mf_data *d = two_groups(6);
    lp_mf *m = fit(d, LP_MF_KIND_ITEMKNN);
    char *path = lp_test_tmpfile("c.lpm");
    lp_err err;
    assert_int_equal(lp_mf_save(m, path, &err), LP_OK);
    uint8_t *bytes;
    size_t len;
    assert_int_equal(lp_file_read(path, &bytes, &len, &err), LP_OK);
    /* every truncation and a byte flip at many offsets: rejected, never a crash */
    for (size_t cut = 0; cut < len; cut += 1 + len / 97) {
        lp_mf *x = NULL;
        assert_int_not_equal(lp_mf_parse(bytes, cut, "cut.lpm", &x, &err), LP_OK);
        assert_null(x);
    }
    for (size_t at = 0; at < len; at += 1 + len / 131) {
        bytes[at] ^= 0x5A;
        lp_mf *x = NULL;
        assert_int_not_equal(lp_mf_parse(bytes, len, "flip.lpm", &x, &err), LP_OK);
        bytes[at] ^= 0x5A;
    }
    lp_mf *ok;
    assert_int_equal(lp_mf_parse(bytes, len, "ok.lpm", &ok, &err), LP_OK);
    lp_mf_free(ok);
    free(bytes);
    /* a well-formed container with a history index out of range is rejected by mf itself */
    lp_lpm_writer *w = lp_lpm_writer_new();
    int32_t ptr[2] = {0, 1}, col[1] = {5};
    float one = 1, pop[1] = {1};
    lp_buf ids;
    lp_buf_init(&ids);
    lp_buf_u32(&ids, 1);
    lp_buf_str(&ids, "x");
    assert_int_equal(lp_lpm_writer_add(w, "mf/pop", LP_LPM_DTYPE_F32, pop, 4, NULL), LP_OK);
    assert_int_equal(lp_lpm_writer_add(w, "mf/hist_ptr", LP_LPM_DTYPE_I32, ptr, 8, NULL), LP_OK);
    assert_int_equal(lp_lpm_writer_add(w, "mf/hist_items", LP_LPM_DTYPE_I32, col, 4, NULL), LP_OK);
    assert_int_equal(lp_lpm_writer_add(w, "mf/hist_w", LP_LPM_DTYPE_F32, &one, 4, NULL), LP_OK);
    assert_int_equal(lp_lpm_writer_add(w, "mf/user_ids", 0, ids.data, ids.len, NULL), LP_OK);
    assert_int_equal(lp_lpm_writer_add(w, "mf/item_ids", 0, ids.data, ids.len, NULL), LP_OK);
    const char *hdr = "{\"family\":\"mf\",\"kind\":\"popular\",\"n_users\":1,\"n_items\":1,"
                      "\"dim\":0,\"n_pairs\":1,\"n_neighbors\":0,\"opts\":{\"factors\":8,"
                      "\"iterations\":1,\"regularization\":0.1,\"alpha\":1,\"solver\":\"cg\","
                      "\"cg_steps\":3,\"learning_rate\":0.05,\"neighbors\":10,\"shrinkage\":1,"
                      "\"init_scale\":1,\"seed\":1}}";
    assert_int_equal(lp_lpm_writer_save(w, hdr, path, &err), LP_OK);
    lp_mf *x = NULL;
    assert_int_equal(lp_mf_load(path, &x, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "mf/hist_items"));
    col[0] = 0;
    lp_lpm_writer_free(w);
    w = lp_lpm_writer_new();
    lp_lpm_writer_add(w, "mf/pop", LP_LPM_DTYPE_F32, pop, 4, NULL);
    lp_lpm_writer_add(w, "mf/hist_ptr", LP_LPM_DTYPE_I32, ptr, 8, NULL);
    lp_lpm_writer_add(w, "mf/hist_items", LP_LPM_DTYPE_I32, col, 4, NULL);
    lp_lpm_writer_add(w, "mf/hist_w", LP_LPM_DTYPE_F32, &one, 4, NULL);
    lp_lpm_writer_add(w, "mf/user_ids", 0, ids.data, ids.len, NULL);
    lp_lpm_writer_add(w, "mf/item_ids", 0, ids.data, ids.len, NULL);
    assert_int_equal(lp_lpm_writer_save(w, hdr, path, &err), LP_OK);
    assert_int_equal(lp_mf_load(path, &x, &err), LP_OK); /* the same file, index fixed */
    lp_mf_free(x);
    lp_lpm_writer_free(w);
    lp_buf_free(&ids);
    free(path);
    lp_mf_free(m);
    lp_mf_data_free(d);
}

static void test_opts_check(void **state)
{
    lp_mf_opts o = lp_mf_opts_default();
    lp_err err;
    assert_int_equal(lp_mf_opts_check(&o, &err), LP_OK);
    o.factors = 0;
    assert_int_equal(lp_mf_opts_check(&o, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "factors"));
    o = lp_mf_opts_default();
    o.alpha = -1;
    assert_int_equal(lp_mf_opts_check(&o, &err), LP_EINVAL);
    lp_mf_kind k;
    assert_int_equal(lp_mf_kind_parse("bpr", &k, &err), LP_OK);
    assert_int_equal(k, LP_MF_KIND_BPR);
    assert_int_equal(lp_mf_kind_parse("svd", &k, &err), LP_EINVAL);
    lp_mf_data *d = lp_mf_data_new();
    lp_mf *m;
    o = lp_mf_opts_default();
    assert_int_equal(lp_mf_fit(d, &o, &m, &err), LP_EINVAL); /* no interactions */
    lp_mf_data_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_data_basics),
        cmocka_unit_test(test_from_frame_events),
        cmocka_unit_test(test_split_last),
        cmocka_unit_test(test_topk),
        cmocka_unit_test(test_popular_and_exclusion),
        cmocka_unit_test(test_itemknn),
        cmocka_unit_test(test_bpr_auc_rises),
        cmocka_unit_test(test_save_load_roundtrip),
        cmocka_unit_test(test_source_and_event_weights),
        cmocka_unit_test(test_weight_transform),
        cmocka_unit_test(test_corrupt_files),
        cmocka_unit_test(test_opts_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
