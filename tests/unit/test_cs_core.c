/*
 * test_cs_core.c - the customer-service bot's domain logic: intent classifier (OOS with and
 * without OOS training rows, calibration, save/load), entity patterns (each type, Luhn),
 * redaction, slot tagger, FAQ retrieval, dialogue state machine and the session store.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs.h"
#include "lp_test.h"

#include <pthread.h>
#include <sqlite3.h>

/* A synthetic intent set: 4 intents, each with its own vocabulary, plus OOS rows. */
static const char *const topic_words[4][6] = {
    {"order", "parcel", "shipped", "tracking", "package", "arrive"},
    {"refund", "money", "back", "reimburse", "charge", "returned"},
    {"password", "login", "account", "locked", "sign", "reset"},
    {"address", "street", "move", "deliver", "location", "city"}};
static const char *const intent_names[4] = {"track", "refund", "login", "address"};
static const char *const oos_words[8] = {"weather", "joke", "football", "recipe",
                                         "movie",   "song", "planet",   "poem"};

typedef struct synth {
    char **texts;
    const char **labels;
    size_t n;
} synth;

static void synth_make(synth *s, size_t per, size_t n_oos, uint64_t seed)
{
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    s->n = 4 * per + n_oos;
    s->texts = calloc(s->n, sizeof(char *));
    s->labels = calloc(s->n, sizeof(char *));
    size_t i = 0;
    for (int c = 0; c < 4; c++)
        for (size_t k = 0; k < per; k++, i++) {
            char buf[160];
            /* usually two words of the intent and one of any intent; every fifth row one word
             * of the intent and two of any: like real data, validation is not separable */
            int c2 = k % 5 == 0 ? (int)lp_rng_below(&rng, 4) : c;
            snprintf(buf, sizeof(buf), "please %s my %s now %s",
                     topic_words[c][lp_rng_below(&rng, 6)], topic_words[c2][lp_rng_below(&rng, 6)],
                     topic_words[lp_rng_below(&rng, 4)][lp_rng_below(&rng, 6)]);
            s->texts[i] = strdup(buf);
            s->labels[i] = intent_names[c];
        }
    for (size_t k = 0; k < n_oos; k++, i++) {
        char buf[160];
        snprintf(buf, sizeof(buf), "tell me a %s about the %s", oos_words[lp_rng_below(&rng, 8)],
                 oos_words[lp_rng_below(&rng, 8)]);
        s->texts[i] = strdup(buf);
        s->labels[i] = "oos";
    }
}

static void synth_free(synth *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->texts[i]);
    free(s->texts);
    free(s->labels);
}

static void test_intent_oos_in_train(void **state)
{
    synth tr, va, te;
    synth_make(&tr, 40, 40, 1);
    synth_make(&va, 10, 10, 2);
    synth_make(&te, 10, 20, 3);
    lp_err err = {0};
    cs_intent *m;
    cs_intent_opts o = cs_intent_opts_default();
    assert_int_equal(cs_intent_train((const char *const *)tr.texts, tr.labels, tr.n,
                                     (const char *const *)va.texts, va.labels, va.n, &o, &m, &err),
                     LP_OK);
    assert_string_equal(cs_intent_protocol(m), "oos_in_train");
    cs_intent_eval e;
    assert_int_equal(
        cs_intent_evaluate(m, (const char *const *)te.texts, te.labels, te.n, &e, &err), LP_OK);
    assert_true(e.in_scope_accuracy >= 0.9);
    assert_true(e.oos_recall >= 0.9);
    assert_int_equal(e.n_oos, 20);
    /* a label the model does not know is a class it never finds: F1 0 in the macro average */
    {
        const char *tx[] = {"please refund my money back", "fly a kite", "kites again"};
        const char *lb[] = {"refund", "kite", "kite"};
        assert_int_equal(cs_intent_evaluate(m, tx, lb, 3, &e, &err), LP_OK);
        assert_true(e.macro_f1 == 0.5);
    }
    /* top-3 alternatives are sorted, distinct and in scope */
    cs_intent_result r;
    const char *q = "please refund my money back";
    assert_int_equal(cs_intent_predict(m, &q, 1, &r, &err), LP_OK);
    assert_string_equal(r.intent, "refund");
    assert_false(r.out_of_scope);
    assert_int_equal(r.n_alt, 3);
    assert_true(r.alt_p[0] >= r.alt_p[1] && r.alt_p[1] >= r.alt_p[2]);
    assert_true(strcmp(r.alt[0], r.alt[1]) && strcmp(r.alt[1], r.alt[2]));
    for (int k = 0; k < 3; k++)
        assert_string_not_equal(r.alt[k], "oos");
    /* save and load predict the same */
    char *path = lp_test_tmpfile("intent.lpm");
    assert_int_equal(cs_intent_save(m, path, &err), LP_OK);
    cs_intent *m2;
    assert_int_equal(cs_intent_load(path, &m2, &err), LP_OK);
    cs_intent_result r2;
    assert_int_equal(cs_intent_predict(m2, &q, 1, &r2, &err), LP_OK);
    assert_string_equal(r2.intent, r.intent);
    assert_true(fabs(r2.confidence - r.confidence) < 1e-12);
    assert_true(fabs(cs_intent_threshold(m2) - cs_intent_threshold(m)) < 1e-15);
    cs_intent_free(m2);
    free(path);
    cs_intent_free(m);
    synth_free(&tr);
    synth_free(&va);
    synth_free(&te);
}

static void test_intent_threshold_protocol(void **state)
{
    synth tr, va, te;
    synth_make(&tr, 40, 0, 4);
    synth_make(&va, 20, 0, 5);
    synth_make(&te, 10, 20, 6);
    lp_err err = {0};
    cs_intent *m;
    assert_int_equal(cs_intent_train((const char *const *)tr.texts, tr.labels, tr.n,
                                     (const char *const *)va.texts, va.labels, va.n, NULL, &m,
                                     &err),
                     LP_OK);
    assert_string_equal(cs_intent_protocol(m), "threshold");
    assert_true(cs_intent_threshold(m) > 0.25); /* above chance for 4 classes */
    /* the threshold costs at most 2 points (oos_max_loss, TF-IDF alone) of in-scope
     * validation accuracy */
    cs_intent_result *r = calloc(va.n, sizeof(*r));
    assert_int_equal(cs_intent_predict(m, (const char *const *)va.texts, va.n, r, &err), LP_OK);
    size_t right0 = 0, right_kept = 0;
    for (size_t i = 0; i < va.n; i++) {
        bool right = r[i].n_alt && !strcmp(r[i].alt[0], va.labels[i]);
        right0 += right;
        right_kept += right && !r[i].out_of_scope;
    }
    assert_true((double)right_kept >= (double)right0 - 0.02 * (double)va.n - 1e-9);
    /* one text at a time (the prepared predictor, as a chat turn) gives the batch's answers
     * (frames) to the bit */
    for (size_t i = 0; i < va.n; i++) {
        cs_intent_result one;
        assert_int_equal(cs_intent_predict(m, (const char *const *)&va.texts[i], 1, &one, &err),
                         LP_OK);
        assert_string_equal(one.intent, r[i].intent);
        assert_memory_equal(&one.confidence, &r[i].confidence, sizeof one.confidence);
        assert_int_equal(one.n_alt, r[i].n_alt);
        assert_memory_equal(one.alt_p, r[i].alt_p, one.n_alt * sizeof *one.alt_p);
    }
    free(r);
    cs_intent_eval e;
    assert_int_equal(
        cs_intent_evaluate(m, (const char *const *)te.texts, te.labels, te.n, &e, &err), LP_OK);
    /* unseen words carry no evidence, so OOS texts get flat, low-confidence predictions */
    assert_true(e.oos_recall >= 0.8);
    assert_true(e.in_scope_accuracy >= 0.85);
    /* no OOS rows in the test set: OOS metrics undefined */
    cs_intent_eval e2;
    assert_int_equal(
        cs_intent_evaluate(m, (const char *const *)va.texts, va.labels, va.n, &e2, &err), LP_OK);
    assert_true(isnan(e2.oos_recall) && isnan(e2.oos_precision));
    cs_intent_free(m);
    synth_free(&tr);
    synth_free(&va);
    synth_free(&te);
}

static void test_intent_errors(void **state)
{
    const char *t[] = {"a b", "c d"}, *l[] = {"x", ""};
    lp_err err = {0};
    cs_intent *m;
    assert_int_equal(cs_intent_train(t, l, 2, NULL, NULL, 0, NULL, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "row 2"));
    assert_null(m);
    char *path = lp_test_tmpfile("junk.lpm");
    lp_test_write(path, "not a model", 11);
    assert_int_not_equal(cs_intent_load(path, &m, &err), LP_OK);
    assert_null(m);
    free(path);
    /* a missing file is not "not a customer-service model" */
    path = lp_test_tmpfile("absent.lpm");
    assert_int_equal(cs_intent_load(path, &m, &err), LP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "cannot open"));
    assert_null(strstr(err.msg, "customer-service"));
    free(path);
    /* another kind of model file is a format error (a 400 on reload), not "not found" (404) */
    char *csv = lp_test_tmpfile("other.csv");
    const char *rows = "x,y\n1,a\n2,b\n3,a\n4,b\n5,a\n6,b\n7,a\n8,b\n9,a\n10,b\n";
    lp_test_write(csv, rows, strlen(rows));
    lp_frame *f;
    assert_int_equal(lp_frame_read(csv, NULL, &f, &err), LP_OK);
    lp_train_opts o = lp_train_opts_default();
    o.kind = LP_MODEL_KIND_LOGISTIC;
    o.label = "y";
    lp_model *other;
    assert_int_equal(lp_model_train(f, NULL, &o, &other, &err), LP_OK);
    path = lp_test_tmpfile("other.lpm");
    assert_int_equal(lp_model_save(other, path, &err), LP_OK);
    assert_int_equal(cs_intent_load(path, &m, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "is not a customer-service model"));
    assert_null(m);
    lp_model_free(other);
    lp_frame_free(f);
    free(path);
    free(csv);
}

static const char *find_type(const cs_entities *e, const char *type)
{
    for (size_t i = 0; i < e->n; i++)
        if (!strcmp(e->v[i].type, type))
            return e->v[i].value;
    return NULL;
}

static void test_entities(void **state)
{
    cs_patterns *p;
    lp_err err = {0};
    assert_int_equal(cs_patterns_new(NULL, &p, &err), LP_OK);
    struct {
        const char *text, *type, *value;
    } cases[] = {
        {"mail me at jane.doe+x@example.co.uk please", "email", "jane.doe+x@example.co.uk"},
        {"call +1 415-555-2671 today", "phone", "+1 415-555-2671"},
        {"see https://shop.example.com/orders/12.", "url", "https://shop.example.com/orders/12"},
        {"it cost $49.99 in total", "money", "$49.99"},
        {"i paid 20 euros", "money", "20 euros"},
        {"it came on 2024-03-15", "date", "2024-03-15"},
        {"deliver next friday", "date", "next friday"},
        {"on March 3rd, 2024 it broke", "date", "March 3rd, 2024"},
        {"arrive at 10:30 am", "time", "10:30 am"},
        {"around 5pm", "time", "5pm"},
        {"order ORD-48213 is late", "order_number", "ORD-48213"},
        {"ticket #553201 open", "order_number", "553201"},
        {"it is #443322", "order_number", "443322"},
        {"where is my order 12345", "order_number", "12345"},
        {"my order number is 98765, where is it", "order_number", "98765"},
        {"cancel Order No. 4444 please", "order_number", "4444"},
        {"ticket: 12345678 is not solved", "order_number", "12345678"},
        {"order #554433 never came", "order_number", "554433"},
        {"card 4111 1111 1111 1111 declined", "card", "4111 1111 1111 1111"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        cs_entities e = {0};
        assert_int_equal(cs_patterns_find(p, cases[i].text, strlen(cases[i].text), &e, &err),
                         LP_OK);
        const char *v = find_type(&e, cases[i].type);
        if (!v || strcmp(v, cases[i].value))
            fail_msg("'%s': expected %s '%s', got '%s'", cases[i].text, cases[i].type,
                     cases[i].value, v ? v : "(none)");
        /* offsets point at the value */
        for (size_t k = 0; k < e.n; k++)
            assert_memory_equal(cases[i].text + e.v[k].start, e.v[k].value,
                                e.v[k].end - e.v[k].start);
        cs_entities_clear(&e);
    }
    /* a digit run failing Luhn is no card */
    cs_entities e = {0};
    const char *bad = "card 4111 1111 1111 1112 declined";
    assert_int_equal(cs_patterns_find(p, bad, strlen(bad), &e, &err), LP_OK);
    assert_null(find_type(&e, "card"));
    cs_entities_clear(&e);
    /* "ordered 12345 items" is no order number; nor is a 3-digit count after "order" */
    const char *nots[] = {"I ordered 12345 items", "order 123 more"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(cs_patterns_find(p, nots[i], strlen(nots[i]), &e, &err), LP_OK);
        assert_null(find_type(&e, "order_number"));
        cs_entities_clear(&e);
    }
    /* a bare number answers a question for an order number, and nothing else */
    struct {
        const char *text, *value;
    } answers[] = {{"12345", "12345"},      {" it's #55512. ", "55512"}, {"abc-9876", "abc-9876"},
                   {"12", NULL},            {"no idea", NULL},           {"12345 and 67890", NULL},
                   {"ORD-777777", "ORD-777777"}};
    for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
        const char *t = answers[i].text;
        assert_int_equal(cs_patterns_find(p, t, strlen(t), &e, &err), LP_OK);
        assert_int_equal(cs_patterns_answer(p, "order_number", t, strlen(t), &e, &err), LP_OK);
        const char *v = find_type(&e, "order_number");
        if (answers[i].value ? !v || strcmp(v, answers[i].value) : v != NULL)
            fail_msg("answer '%s': expected '%s', got '%s'", t,
                     answers[i].value ? answers[i].value : "(none)", v ? v : "(none)");
        size_t n = e.n; /* once found, never twice; other types never */
        assert_int_equal(cs_patterns_answer(p, "order_number", t, strlen(t), &e, &err), LP_OK);
        assert_int_equal(cs_patterns_answer(p, "email", t, strlen(t), &e, &err), LP_OK);
        assert_int_equal(e.n, n);
        cs_entities_clear(&e);
    }
    /* invalid UTF-8 is an error, not a crash */
    assert_int_equal(cs_patterns_find(p, "a\xff", 2, &e, &err), LP_EPARSE);
    cs_patterns_free(p);
    /* configurable order pattern, and a bad one named */
    assert_int_equal(cs_patterns_new("\\bSO\\d{6}\\b", &p, &err), LP_OK);
    const char *so = "my order SO123456 and ORD-48213";
    assert_int_equal(cs_patterns_find(p, so, strlen(so), &e, &err), LP_OK);
    assert_string_equal(find_type(&e, "order_number"), "SO123456");
    cs_entities_clear(&e);
    cs_patterns_free(p);
    assert_int_equal(cs_patterns_new("(unclosed", &p, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "offset"));
}

static void test_luhn(void **state)
{
    assert_true(cs_luhn_valid("4111111111111111", 16));
    assert_true(cs_luhn_valid("5500-0000-0000-0004", 19));
    assert_true(cs_luhn_valid("79927398713", 11));
    assert_false(cs_luhn_valid("79927398710", 11));
    assert_false(cs_luhn_valid("4111111111111112", 16));
    assert_false(cs_luhn_valid("0", 1));
}

static void test_redact(void **state)
{
    cs_patterns *p;
    assert_int_equal(cs_patterns_new(NULL, &p, NULL), LP_OK);
    const char *t = "I am bob@mail.com, phone (415) 555-2671, card 4111-1111-1111-1111, "
                    "order ORD-12345";
    char *r = cs_redact(p, t, strlen(t));
    assert_non_null(r);
    assert_string_equal(r, "I am [EMAIL], phone [PHONE], card [CARD], order ORD-12345");
    free(r);
    assert_null(cs_redact(p, "\xc3", 1));
    cs_patterns_free(p);
}

static void test_slots(void **state)
{
    /* product names after "return the" and names after "my name is", with varied fillers */
    const char *prods[] = {"blue jacket", "lamp",       "red dress", "green sofa",
                           "kettle",      "wool scarf", "desk lamp", "yoga mat"};
    const char *names[] = {"Anna Berg", "John Miller",  "Sara Kim",
                           "Tom Hardy", "Lena Fischer", "Peter Wong"};
    char *texts[64], *spans[64];
    size_t n = 0;
    for (size_t i = 0; i < 8; i++) {
        char t[128], s[64];
        int a = snprintf(t, sizeof(t), "please return the %s today", prods[i]);
        (void)a;
        size_t st = strlen("please return the ");
        snprintf(s, sizeof(s), "product %zu %zu", st, st + strlen(prods[i]));
        texts[n] = strdup(t);
        spans[n++] = strdup(s);
        snprintf(t, sizeof(t), "the %s is broken", prods[i]);
        snprintf(s, sizeof(s), "product 4 %zu", 4 + strlen(prods[i]));
        texts[n] = strdup(t);
        spans[n++] = strdup(s);
    }
    for (size_t i = 0; i < 6; i++) {
        char t[128], s[64];
        snprintf(t, sizeof(t), "hello my name is %s", names[i]);
        size_t st = strlen("hello my name is ");
        snprintf(s, sizeof(s), "name %zu %zu", st, st + strlen(names[i]));
        texts[n] = strdup(t);
        spans[n++] = strdup(s);
    }
    texts[n] = strdup("where is my order");
    spans[n++] = strdup("-");
    cs_slots_opts o = cs_slots_opts_default();
    o.hash_bits = 14;
    cs_slots *s;
    lp_err err = {0};
    assert_int_equal(cs_slots_train((const char *const *)texts, (const char *const *)spans, NULL, n,
                                    &o, &s, &err),
                     LP_OK);
    assert_int_equal(cs_slots_n_types(s), 2);
    cs_slot_eval mi;
    assert_int_equal(cs_slots_evaluate(s, (const char *const *)texts, (const char *const *)spans,
                                       NULL, n, &mi, NULL, &err),
                     LP_OK);
    assert_true(mi.f1 >= 0.9); /* fits its training set */
    cs_entities e = {0};
    const char *q = "please return the desk lamp today";
    assert_int_equal(cs_slots_tag(s, q, strlen(q), NULL, &e, &err), LP_OK);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.v[0].type, "product");
    assert_string_equal(e.v[0].value, "desk lamp");
    assert_int_equal(e.v[0].start, 18);
    cs_entities_clear(&e);
    /* save / load round trip tags identically; a corrupted copy is rejected */
    lp_buf b;
    lp_buf_init(&b);
    cs_slots_save(s, &b);
    lp_reader r;
    lp_reader_init(&r, b.data, b.len, "slots");
    cs_slots *s2;
    assert_int_equal(cs_slots_load(&r, &s2, &err), LP_OK);
    assert_int_equal(cs_slots_tag(s2, q, strlen(q), NULL, &e, &err), LP_OK);
    assert_int_equal(e.n, 1);
    assert_string_equal(e.v[0].value, "desk lamp");
    cs_entities_clear(&e);
    cs_slots_free(s2);
    b.data[b.len / 2] ^= 0x40;
    lp_reader_init(&r, b.data, b.len, "slots");
    assert_int_equal(cs_slots_load(&r, &s2, &err), LP_EFORMAT);
    lp_reader_init(&r, b.data, 7, "slots");
    assert_int_not_equal(cs_slots_load(&r, &s2, &err), LP_OK);
    lp_buf_free(&b);
    /* malformed spans are named */
    const char *bt[] = {"abc"}, *bs[] = {"x 0 9"};
    cs_slots *s3;
    assert_int_equal(cs_slots_train(bt, bs, NULL, 1, &o, &s3, &err), LP_EPARSE);
    assert_non_null(strstr(err.msg, "row 1"));
    cs_slots_free(s);
    for (size_t i = 0; i < n; i++) {
        free(texts[i]);
        free(spans[i]);
    }
}

static void test_faq(void **state)
{
    const char *ids[] = {"ret", "ship", "pw"};
    const char *qs[] = {"What is your return policy?", "How much does shipping cost?",
                        "How do I reset my password?"};
    const char *as[] = {"Return unused items within 30 days.", "Shipping is free over $50.",
                        "Use forgot password on the sign-in page."};
    cs_faq *f;
    lp_err err = {0};
    assert_int_equal(cs_faq_build(ids, qs, as, 3, &f, &err), LP_OK);
    cs_faq_hit h[3];
    size_t nh;
    assert_int_equal(cs_faq_search(f, "how much is shipping", 3, h, &nh, &err), LP_OK);
    assert_true(nh >= 1);
    assert_string_equal(cs_faq_id(f, h[0].index), "ship");
    assert_int_equal(cs_faq_search(f, "I forgot my password", 3, h, &nh, &err), LP_OK);
    assert_string_equal(cs_faq_id(f, h[0].index), "pw");
    assert_true(h[0].cosine > 0.2);
    for (size_t i = 1; i < nh; i++)
        assert_true(h[i - 1].score >= h[i].score);
    /* nothing shared: no hits */
    assert_int_equal(cs_faq_search(f, "zzzz qqqq", 3, h, &nh, &err), LP_OK);
    assert_int_equal(nh, 0);
    /* round trip */
    lp_buf b;
    lp_buf_init(&b);
    cs_faq_save(f, &b);
    lp_reader r;
    lp_reader_init(&r, b.data, b.len, "faq");
    cs_faq *f2;
    assert_int_equal(cs_faq_load(&r, &f2, &err), LP_OK);
    assert_int_equal(cs_faq_size(f2), 3);
    assert_string_equal(cs_faq_answer(f2, 2), as[2]);
    cs_faq_free(f2);
    lp_reader_init(&r, b.data, b.len - 3, "faq");
    assert_int_not_equal(cs_faq_load(&r, &f2, &err), LP_OK);
    lp_buf_free(&b);
    cs_faq_free(f);
}

static const char bot_json[] =
    "{\"fallback\":\"fb\",\"handoff_reply\":\"human coming\","
    "\"handoff\":{\"min_confidence\":0.5,\"max_low_confidence\":2,"
    "\"human_phrases\":[\"agent\"],\"intents\":[\"complaint\"]},"
    "\"intents\":{\"track\":{\"reply\":\"Order {order_number} ships soon\","
    "\"required\":[{\"slot\":\"order_number\",\"ask\":\"Which order?\"}]},"
    "\"hello\":{\"reply\":\"Hi {name}!\"}}}";

static void step(const cs_bot_def *b, cs_session *s, const char *text, const char *intent,
                 double conf, bool oos, const cs_entities *e, const char *faq, cs_turn_out *o)
{
    cs_intent_result r = {.intent = intent, .confidence = conf, .out_of_scope = oos};
    cs_turn_in in = {.text = text, .intent = &r, .entities = e, .faq_answer = faq};
    lp_err err = {0};
    assert_int_equal(cs_dialog_step(b, s, &in, o, &err), LP_OK);
}

static void test_dialog(void **state)
{
    cs_bot_def *b;
    lp_err err = {0};
    assert_int_equal(cs_bot_def_parse(bot_json, strlen(bot_json), "bot", &b, &err), LP_OK);
    cs_session s;
    cs_session_init(&s, "s1");
    cs_turn_out o;
    /* required slot missing: ask, then fill from the next turn's entity */
    step(b, &s, "where is my order", "track", 0.9, false, NULL, NULL, &o);
    assert_string_equal(o.reply, "Which order?");
    assert_string_equal(s.pending, "track");
    assert_false(o.handoff);
    cs_turn_out_clear(&o);
    cs_entities e = {0};
    const char *t2 = "it is ORD-12345";
    cs_entities_push(&e, "order_number", t2, 6, 15);
    step(b, &s, t2, "oos", 0.1, true, &e, NULL, &o);
    assert_string_equal(o.reply, "Order ORD-12345 ships soon");
    assert_string_equal(o.intent, "track");
    assert_string_equal(s.pending, "");
    cs_entities_clear(&e);
    cs_turn_out_clear(&o);
    /* unknown template slots stay as written */
    step(b, &s, "hi", "hello", 0.9, false, NULL, NULL, &o);
    assert_string_equal(o.reply, "Hi {name}!");
    cs_turn_out_clear(&o);
    /* low confidence: fallback, then hand-off on the second in a row */
    step(b, &s, "blah", "track", 0.2, false, NULL, NULL, &o);
    assert_string_equal(o.reply, "fb");
    assert_false(o.handoff);
    cs_turn_out_clear(&o);
    step(b, &s, "blah blah", "oos", 0.9, true, NULL, NULL, &o);
    assert_true(o.handoff);
    assert_string_equal(o.reason, "repeated_low_confidence");
    assert_string_equal(o.reply, "human coming");
    cs_turn_out_clear(&o);
    assert_int_equal(s.turns, 5);
    cs_session_clear(&s);
    /* a confident FAQ answer resets the streak */
    cs_session_init(&s, "s2");
    step(b, &s, "q1", "oos", 0.1, true, NULL, NULL, &o);
    cs_turn_out_clear(&o);
    step(b, &s, "q2", "oos", 0.1, true, NULL, "the answer", &o);
    assert_string_equal(o.reply, "the answer");
    assert_false(o.handoff);
    assert_int_equal(s.low_conf, 0);
    cs_turn_out_clear(&o);
    /* user asks for a person; hand-off intents */
    step(b, &s, "get me an Agent now", "track", 0.99, false, NULL, NULL, &o);
    assert_true(o.handoff);
    assert_string_equal(o.reason, "user_requested");
    cs_turn_out_clear(&o);
    step(b, &s, "agents of shield", "hello", 0.99, false, NULL, NULL, &o);
    assert_false(o.handoff); /* "agent" as a whole word only */
    cs_turn_out_clear(&o);
    step(b, &s, "you are awful", "complaint", 0.8, false, NULL, NULL, &o);
    assert_true(o.handoff);
    assert_string_equal(o.reason, "intent:complaint");
    cs_turn_out_clear(&o);
    cs_session_clear(&s);
    /* the answer to the bot's question is not taken for a hand-off intent; a request for a
     * person still is */
    cs_session_init(&s, "s3");
    step(b, &s, "where is my order", "track", 0.9, false, NULL, NULL, &o);
    cs_turn_out_clear(&o);
    const char *t3 = "ORD-777, you are slow";
    cs_entities_push(&e, "order_number", t3, 0, 7);
    step(b, &s, t3, "complaint", 0.4, false, &e, NULL, &o);
    assert_false(o.handoff);
    assert_string_equal(o.reply, "Order ORD-777 ships soon");
    cs_turn_out_clear(&o);
    step(b, &s, "where is my order", "track", 0.9, false, NULL, NULL, &o);
    cs_turn_out_clear(&o);
    cs_session_clear(&s);
    cs_session_init(&s, "s4");
    step(b, &s, "where is my order", "track", 0.9, false, NULL, NULL, &o);
    cs_turn_out_clear(&o);
    step(b, &s, "ORD-777, get me an agent", "track", 0.9, false, &e, NULL, &o);
    assert_true(o.handoff);
    assert_string_equal(o.reason, "user_requested");
    cs_turn_out_clear(&o);
    cs_entities_clear(&e);
    cs_session_clear(&s);
    cs_bot_def_free(b);
    /* malformed definitions are named */
    const char *bad = "{\"intents\":{\"x\":{\"required\":[{\"slot\":1}]}}}";
    assert_int_equal(cs_bot_def_parse(bad, strlen(bad), "bot.json", &b, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "intents.x"));
    assert_int_equal(cs_bot_def_parse("{", 1, "bot.json", &b, &err), LP_EPARSE);
    const char *big = "{\"handoff\":{\"max_low_confidence\":1e30}}";
    assert_int_equal(cs_bot_def_parse(big, strlen(big), "bot.json", &b, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "max_low_confidence"));
}

typedef struct async_ctx {
    cs_store *st;
    pthread_mutex_t mu;
    int next, reported, failed;
    long ids[200];
} async_ctx;

typedef struct async_turn {
    async_ctx *ac;
    int k;
} async_turn;

static void async_done(void *arg, lp_status st, long turn_id, const lp_err *err)
{
    (void)err;
    async_turn *t = arg;
    pthread_mutex_lock(&t->ac->mu);
    t->ac->ids[t->k] = turn_id;
    t->ac->reported++;
    t->ac->failed += st != LP_OK;
    pthread_mutex_unlock(&t->ac->mu);
    free(t);
}

/* Queue turns until 200 are taken (run on two threads). */
static void *async_put_many(void *arg)
{
    async_ctx *ac = arg;
    for (;;) {
        pthread_mutex_lock(&ac->mu);
        int k = ac->next < 200 ? ac->next++ : -1;
        pthread_mutex_unlock(&ac->mu);
        if (k < 0)
            return NULL;
        char id[16];
        snprintf(id, sizeof id, "a%d", k % 7);
        cs_session s;
        cs_session_init(&s, id);
        s.turns = k;
        async_turn *t = malloc(sizeof *t);
        *t = (async_turn){ac, k};
        lp_err err = {0};
        assert_int_equal(cs_store_put_async(ac->st, &s, "text", "greet", 0.5, "hi", false, NULL,
                                            async_done, t, &err),
                         LP_OK);
        cs_session_clear(&s);
    }
}

static void test_store(void **state)
{
    char *path = lp_test_tmpfile("cs_store.db");
    remove(path);
    cs_store *st;
    lp_err err = {0};
    assert_int_equal(cs_store_open(path, false, &st, &err), LP_OK);
    cs_session s;
    assert_int_equal(cs_store_get(st, "u1", &s, &err), LP_ENOTFOUND);
    s.turns = 3;
    s.low_conf = 1;
    snprintf(s.pending, sizeof(s.pending), "track");
    cJSON_AddStringToObject(s.slots, "order_number", "ORD-1");
    long tid;
    assert_int_equal(
        cs_store_put(st, &s, "hello [EMAIL]", "greet", 0.9, "hi", false, "", &tid, &err), LP_OK);
    cs_session_clear(&s);
    cs_session s2;
    assert_int_equal(cs_store_get(st, "u1", &s2, &err), LP_OK);
    assert_int_equal(s2.turns, 3);
    assert_int_equal(s2.low_conf, 1);
    assert_string_equal(s2.pending, "track");
    assert_string_equal(cJSON_GetObjectItem(s2.slots, "order_number")->valuestring, "ORD-1");
    cs_session_clear(&s2);
    assert_int_equal(cs_store_feedback(st, "u1", tid, "order_status", &err), LP_OK);
    assert_int_equal(cs_store_feedback(st, "u1", tid + 100, "x", &err), LP_ENOTFOUND);
    assert_int_equal(cs_store_feedback(st, "other", tid, "x", &err), LP_ENOTFOUND);
    char **tx, **lb;
    size_t n;
    assert_int_equal(cs_store_corrections(st, &tx, &lb, &n, &err), LP_OK);
    assert_int_equal(n, 1);
    assert_string_equal(tx[0], "hello [EMAIL]");
    assert_string_equal(lb[0], "order_status");
    cs_strs_free(tx, n);
    cs_strs_free(lb, n);
    cJSON *j;
    assert_int_equal(cs_store_session_json(st, "u1", 1000, &j, &err), LP_OK);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "history")), 1);
    cJSON_Delete(j);
    cs_store_close(st);
    /* hash-only mode keeps no text */
    assert_int_equal(cs_store_open(path, true, &st, &err), LP_OK);
    cs_session_init(&s, "u2");
    assert_int_equal(
        cs_store_put(st, &s, "secret text", "x", 0.5, "r", true, "user_requested", &tid, &err),
        LP_OK);
    cs_session_clear(&s);
    assert_int_equal(cs_store_session_json(st, "u2", 1000, &j, &err), LP_OK);
    cJSON *t0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "history"), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItem(t0, "text")));
    char hex[65];
    lp_sha256_hex("secret text", 11, hex);
    assert_string_equal(cJSON_GetObjectItem(t0, "text_sha256")->valuestring, hex);
    cJSON_Delete(j);
    cs_store_close(st);
    /* group commit: 200 turns over 7 sessions queued from two threads; every report comes with
     * a distinct turn id, and after close (which drains the queue) every turn and each
     * session's last state are in the file */
    assert_int_equal(cs_store_open(path, false, &st, &err), LP_OK);
    async_ctx ac = {.st = st};
    pthread_mutex_init(&ac.mu, NULL);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, async_put_many, &ac), 0);
    async_put_many(&ac);
    pthread_join(th, NULL);
    cs_store_close(st);
    assert_int_equal(ac.reported, 200);
    assert_int_equal(ac.failed, 0);
    for (int a = 0; a < 200; a++)
        for (int b = a + 1; b < 200; b++)
            assert_true(ac.ids[a] != ac.ids[b]);
    assert_int_equal(cs_store_open(path, false, &st, &err), LP_OK);
    size_t total = 0;
    for (int u = 0; u < 7; u++) {
        char id[16];
        snprintf(id, sizeof id, "a%d", u);
        assert_int_equal(cs_store_session_json(st, id, 1000, &j, &err), LP_OK);
        total += (size_t)cJSON_GetArraySize(cJSON_GetObjectItem(j, "history"));
        cJSON_Delete(j);
    }
    assert_int_equal(total, 200);
    /* a limit keeps the newest turns, oldest first, and says that older ones exist */
    assert_int_equal(cs_store_session_json(st, "a0", 1000, &j, &err), LP_OK);
    cJSON *all = cJSON_GetObjectItem(j, "history");
    int n_all = cJSON_GetArraySize(all);
    assert_true(n_all > 5);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(j, "history_truncated")));
    double last = cJSON_GetObjectItem(cJSON_GetArrayItem(all, n_all - 1), "turn_id")->valuedouble;
    double fifth = cJSON_GetObjectItem(cJSON_GetArrayItem(all, n_all - 5), "turn_id")->valuedouble;
    cJSON_Delete(j);
    assert_int_equal(cs_store_session_json(st, "a0", 5, &j, &err), LP_OK);
    cJSON *few = cJSON_GetObjectItem(j, "history");
    assert_int_equal(cJSON_GetArraySize(few), 5);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(j, "history_truncated")));
    assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(few, 0), "turn_id")->valuedouble == fifth);
    assert_true(cJSON_GetObjectItem(cJSON_GetArrayItem(few, 4), "turn_id")->valuedouble == last);
    cJSON_Delete(j);
    assert_int_equal(cs_store_session_json(st, "a0", n_all, &j, &err), LP_OK);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "history")), n_all);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(j, "history_truncated")));
    cJSON_Delete(j);
    cs_store_close(st);
    pthread_mutex_destroy(&ac.mu);
    free(path);
}

/* One turn of session id with the given state through cs_store_put_async; waits for its report. */
typedef struct one_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int left;
    lp_status st[8];
} one_wait;

typedef struct one_turn {
    one_wait *w;
    int k;
} one_turn;

static void one_done(void *arg, lp_status st, long turn_id, const lp_err *err)
{
    (void)turn_id, (void)err;
    one_turn *t = arg;
    pthread_mutex_lock(&t->w->mu);
    t->w->st[t->k] = st;
    t->w->left--;
    pthread_cond_signal(&t->w->cv);
    pthread_mutex_unlock(&t->w->mu);
    free(t);
}

static void queue_turn(cs_store *st, one_wait *w, int k, const char *id, long turns,
                       const char *intent, const char *slot_value)
{
    cs_session s;
    cs_session_init(&s, id);
    s.turns = turns;
    if (slot_value)
        cJSON_AddStringToObject(s.slots, "name", slot_value);
    one_turn *t = malloc(sizeof *t);
    *t = (one_turn){w, k};
    lp_err err = {0};
    assert_int_equal(cs_store_put_async(st, &s, "text", intent, 0.5, "hi", false, NULL, one_done,
                                        t, &err),
                     LP_OK);
    cs_session_clear(&s);
}

static void wait_turns(one_wait *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->left > 0)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
}

static long turns_of(cs_store *st, const char *id)
{
    cs_session s;
    lp_err err = {0};
    long t = cs_store_get(st, id, &s, &err) == LP_OK ? s.turns : -1;
    cs_session_clear(&s);
    return t;
}

/* The store reads a session back as last committed (its cache of written sessions, or SQLite
 * for slots too long to cache), and a turn that fails to write fails alone in its batch. */
static void test_store_cache_and_failures(void **state)
{
    (void)state;
    char *path = lp_test_tmpfile("cs_store_cache.db");
    remove(path);
    cs_store *st;
    lp_err err = {0};
    assert_int_equal(cs_store_open(path, false, &st, &err), LP_OK);
    assert_int_equal(cs_store_claim(st, path, &err), LP_OK);
    /* a second claim of the same file (another server) is refused while the first holds it */
    cs_store *other;
    assert_int_equal(cs_store_open(path, false, &other, &err), LP_OK);
    assert_int_equal(cs_store_claim(other, path, &err), LP_ESTATE);
    assert_non_null(strstr(err.msg, "in use by another server"));
    cs_store_close(other);
    /* a trigger makes every turn whose intent is "boom" fail inside the writer's transaction */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TRIGGER boom BEFORE INSERT ON turns WHEN "
                                  "NEW.intent = 'boom' BEGIN SELECT RAISE(ABORT, 'boom'); END",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    one_wait w = {.left = 0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    for (long round = 1; round <= 3; round++) {
        w.left = 8;
        for (int k = 0; k < 8; k++) {
            char id[16];
            snprintf(id, sizeof id, "c%d", k);
            /* c3 fails every round; c5 carries slots too long for the cache in round 2 */
            queue_turn(st, &w, k, id, round, k == 3 ? "boom" : "greet",
                       k == 5 && round == 2 ? big : "ann");
        }
        wait_turns(&w);
        for (int k = 0; k < 8; k++) {
            char id[16];
            snprintf(id, sizeof id, "c%d", k);
            assert_int_equal(w.st[k], k == 3 ? LP_EIO : LP_OK);
            assert_int_equal(turns_of(st, id), k == 3 ? -1 : round);
        }
        cs_session s;
        assert_int_equal(cs_store_get(st, "c5", &s, &err), LP_OK);
        assert_string_equal(cJSON_GetObjectItem(s.slots, "name")->valuestring,
                            round == 2 ? big : "ann");
        cs_session_clear(&s);
    }
    cs_store_close(st);
    /* what the cache answered is what the file holds */
    assert_int_equal(cs_store_open(path, false, &st, &err), LP_OK);
    for (int k = 0; k < 8; k++) {
        char id[16];
        snprintf(id, sizeof id, "c%d", k);
        assert_int_equal(turns_of(st, id), k == 3 ? -1 : 3);
    }
    cs_store_close(st);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cv);
    free(path);
}

static void test_lda(void **state)
{
    /* two disjoint vocabularies: each document should load on one topic */
    enum { D = 40, L = 12 };
    uint32_t buf[D][L];
    const uint32_t *docs[D];
    size_t lens[D];
    lp_rng rng;
    lp_rng_seed(&rng, 9);
    for (size_t d = 0; d < D; d++) {
        for (size_t i = 0; i < L; i++)
            buf[d][i] = (uint32_t)((d % 2) * 5 + lp_rng_below(&rng, 5));
        docs[d] = buf[d];
        lens[d] = L;
    }
    lp_lda_opts o = lp_lda_opts_default();
    o.k = 2;
    o.iters = 100;
    lp_lda *m;
    lp_err err = {0};
    assert_int_equal(lp_lda_fit(docs, lens, D, 10, &o, &m, &err), LP_OK);
    const double *t0 = lp_lda_doc_topic(m, 0), *t1 = lp_lda_doc_topic(m, 1);
    int a = t0[0] > t0[1] ? 0 : 1, b = t1[0] > t1[1] ? 0 : 1;
    assert_int_not_equal(a, b);
    for (size_t d = 0; d < D; d++)
        assert_true(lp_lda_doc_topic(m, d)[d % 2 ? b : a] > 0.8);
    uint32_t ids[5];
    assert_int_equal(lp_lda_top_words(m, (size_t)a, 5, ids), 5);
    for (int i = 0; i < 5; i++)
        assert_true(ids[i] < 5);
    double s = 0;
    for (size_t w = 0; w < 10; w++)
        s += lp_lda_topic_word(m, 0)[w];
    assert_true(fabs(s - 1) < 1e-9);
    lp_lda_free(m);
    buf[3][2] = 10;
    assert_int_equal(lp_lda_fit(docs, lens, D, 10, &o, &m, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "document 3 position 2"));
    o.k = 1;
    assert_int_equal(lp_lda_fit(docs, lens, D, 10, &o, &m, &err), LP_EINVAL);
}

/* cs_table: a BOM, CRLF, quoted CSV fields holding commas, "" and newlines; TSV quotes are
 * text; short rows and unclosed quotes name their line (and the expected count). */
static void test_table(void **state)
{
    (void)state;
    cs_table t;
    lp_err err = {0};
    const char csv[] = "\xEF\xBB\xBFtext,label\r\n\"hi, \"\"bot\"\"\nthanks\",greet\r\n"
                       "plain,other\r\n\r\n5\" screen,tv\n";
    assert_int_equal(cs_table_parse(csv, strlen(csv), "t.csv", &t, &err), LP_OK);
    assert_int_equal(t.n_cols, 2);
    assert_int_equal(t.n_rows, 3);
    assert_string_equal(t.names[0], "text");
    assert_string_equal(cs_table_cell(&t, 0, 0), "hi, \"bot\"\nthanks");
    assert_string_equal(cs_table_cell(&t, 0, 1), "greet");
    assert_string_equal(cs_table_cell(&t, 1, 0), "plain");
    assert_string_equal(cs_table_cell(&t, 2, 0), "5\" screen");
    cs_table_free(&t);

    const char tsv[] = "\r\n\ntext\tlabel\n\"quoted\tx\n"; /* blank lines before the header */
    assert_int_equal(cs_table_parse(tsv, strlen(tsv), "t.tsv", &t, &err), LP_OK);
    assert_string_equal(cs_table_cell(&t, 0, 0), "\"quoted");
    cs_table_free(&t);

    const char shortrow[] = "a,b\n\"x\ny\",1\nonly\n";
    assert_int_equal(cs_table_parse(shortrow, strlen(shortrow), "s.csv", &t, &err), LP_EPARSE);
    assert_non_null(strstr(err.msg, "s.csv line 4: 1 fields, expected 2"));
    const char open[] = "a,b\n1,\"never\nclosed\n";
    assert_int_equal(cs_table_parse(open, strlen(open), "o.csv", &t, &err), LP_EPARSE);
    assert_non_null(strstr(err.msg, "o.csv line 2: a quoted field is never closed"));

    /* ';' (HWU64's NLU-Evaluation-Data), quoted as CSV; a comma inside stays text */
    const char semi[] = "scenario;intent;answer\nalarm;set;\"wake me up; at five\"\n"
                        "music;play;play jazz, loud\n";
    assert_int_equal(cs_table_parse(semi, strlen(semi), "h.csv", &t, &err), LP_OK);
    assert_int_equal(t.n_cols, 3);
    assert_int_equal(t.n_rows, 2);
    assert_string_equal(cs_table_cell(&t, 0, 2), "wake me up; at five");
    assert_string_equal(cs_table_cell(&t, 1, 2), "play jazz, loud");
    /* a name in another case finds its column, unless two columns share it */
    assert_int_equal(cs_table_col(&t, "Intent"), 1);
    assert_int_equal(cs_table_col(&t, "intent"), 1);
    cs_table_free(&t);
    const char twice[] = "Text,text\na,b\n";
    assert_int_equal(cs_table_parse(twice, strlen(twice), "h.csv", &t, &err), LP_OK);
    assert_int_equal(cs_table_col(&t, "text"), 1);
    assert_int_equal(cs_table_col(&t, "TEXT"), -1);
    cs_table_free(&t);
}

/* fastText's format: the first label and the text; more labels are skipped; a line without
 * the prefix or without text names its line */
static void test_table_fasttext(void **state)
{
    (void)state;
    cs_table t;
    lp_err err = {0};
    const char ft[] = "\n__label__greet hello there\r\n\n__label__bye __label__x  see you\n"
                      "__label__book_flight\tfly me to rome";
    assert_int_equal(cs_table_parse(ft, strlen(ft), "f.txt", &t, &err), LP_OK);
    assert_int_equal(t.n_rows, 3);
    assert_int_equal(cs_table_col(&t, "label"), 0);
    assert_int_equal(cs_table_col(&t, "text"), 1);
    assert_string_equal(cs_table_cell(&t, 0, 0), "greet");
    assert_string_equal(cs_table_cell(&t, 0, 1), "hello there");
    assert_string_equal(cs_table_cell(&t, 1, 0), "bye");
    assert_string_equal(cs_table_cell(&t, 1, 1), "see you");
    assert_string_equal(cs_table_cell(&t, 2, 0), "book_flight");
    assert_string_equal(cs_table_cell(&t, 2, 1), "fly me to rome");
    cs_table_free(&t);
    const char nolab[] = "__label__a yes\nno prefix here\n";
    assert_int_equal(cs_table_parse(nolab, strlen(nolab), "f.txt", &t, &err), LP_EPARSE);
    assert_non_null(strstr(err.msg, "f.txt line 2: no __label__ prefix"));
    const char notext[] = "__label__a yes\n__label__b \n";
    assert_int_equal(cs_table_parse(notext, strlen(notext), "f.txt", &t, &err), LP_EPARSE);
    assert_non_null(strstr(err.msg, "f.txt line 2: a label with no text"));
}

/* Without a column "label" / "text": the one column named like it (banking77's category,
 * utterance), else the other column of a two-column table; otherwise still an error that lists
 * the columns */
static void test_table_text_label_names(void **state)
{
    (void)state;
    cs_table t;
    lp_err err = {0};
    size_t j;
    const char b77[] = "text,category\nhi,greet\n";
    assert_int_equal(cs_table_parse(b77, strlen(b77), "b.csv", &t, &err), LP_OK);
    assert_int_equal(cs_table_require(&t, "label", "b.csv", &j, &err), LP_OK);
    assert_int_equal(j, 1);
    assert_int_equal(cs_table_require(&t, "text", "b.csv", &j, &err), LP_OK);
    assert_int_equal(j, 0);
    cs_table_free(&t);
    const char named[] = "id;Utterance;Intent\n1;hi;greet\n";
    assert_int_equal(cs_table_parse(named, strlen(named), "n.csv", &t, &err), LP_OK);
    assert_int_equal(cs_table_require(&t, "text", "n.csv", &j, &err), LP_OK);
    assert_int_equal(j, 1);
    assert_int_equal(cs_table_require(&t, "label", "n.csv", &j, &err), LP_OK);
    assert_int_equal(j, 2);
    cs_table_free(&t);
    const char two[] = "sentence,y_true\nhi,greet\n"; /* the text by name, the label beside it */
    assert_int_equal(cs_table_parse(two, strlen(two), "2.csv", &t, &err), LP_OK);
    assert_int_equal(cs_table_require(&t, "label", "2.csv", &j, &err), LP_OK);
    assert_int_equal(j, 1);
    cs_table_free(&t);
    const char none[] = "a,b,c\n1,2,3\n";
    assert_int_equal(cs_table_parse(none, strlen(none), "x.csv", &t, &err), LP_OK);
    assert_int_equal(cs_table_require(&t, "label", "x.csv", &j, &err), LP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "x.csv: no column 'label' (columns: a, b, c)"));
    assert_int_equal(cs_table_require(&t, "spans", "x.csv", &j, &err), LP_ENOTFOUND);
    cs_table_free(&t);
    const char ab[] = "a,b\n1,2\n"; /* two columns, neither named: no guess */
    assert_int_equal(cs_table_parse(ab, strlen(ab), "y.csv", &t, &err), LP_OK);
    assert_int_equal(cs_table_require(&t, "text", "y.csv", &j, &err), LP_ENOTFOUND);
    cs_table_free(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_table_text_label_names),
        cmocka_unit_test(test_table_fasttext),
        cmocka_unit_test(test_intent_oos_in_train),
        cmocka_unit_test(test_intent_threshold_protocol),
        cmocka_unit_test(test_intent_errors),
        cmocka_unit_test(test_entities),
        cmocka_unit_test(test_luhn),
        cmocka_unit_test(test_redact),
        cmocka_unit_test(test_slots),
        cmocka_unit_test(test_faq),
        cmocka_unit_test(test_dialog),
        cmocka_unit_test(test_store),
        cmocka_unit_test(test_store_cache_and_failures),
        cmocka_unit_test(test_lda),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
