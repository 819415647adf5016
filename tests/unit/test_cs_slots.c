/*
 * test_cs_slots.c - the linear-chain slot tagger of apps/customer-service: Viterbi against
 * brute-force enumeration of every tag sequence (the maximum must match exactly), the BIO
 * constraint, a small learnable data set of templated utterances that it must learn
 * (training F1 1.0, held-out F1 >= 0.95), UTF-8 byte offsets of spans over non-ASCII text, and
 * the model section's versions (version 1 files fail naming the version; round trip; damage).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs.h"
#include "lp_test.h"

/* Score of one tag sequence, summed in the order cs_slots_viterbi documents. */
static double seq_score(const double *emit, const float *trans, size_t n, size_t T, const int *y)
{
    double s = 0;
    for (size_t t = 0; t < n; t++) {
        size_t prev = t ? (size_t)y[t - 1] : T;
        s = s + trans[prev * T + (size_t)y[t]] + emit[t * T + (size_t)y[t]];
    }
    return s;
}

static bool seq_valid(size_t n_types, size_t n, const int *y)
{
    size_t T = 1 + 2 * n_types;
    for (size_t t = 0; t < n; t++)
        if (!cs_slots_bio_allowed(n_types, t ? (size_t)y[t - 1] : T, (size_t)y[t]))
            return false;
    return true;
}

static void test_bio_allowed(void **state)
{
    (void)state;
    /* 2 types: 0 O, 1 B-a, 2 I-a, 3 B-b, 4 I-b, 5 START */
    assert_true(cs_slots_bio_allowed(2, 5, 0));
    assert_true(cs_slots_bio_allowed(2, 5, 1));
    assert_false(cs_slots_bio_allowed(2, 5, 2));
    assert_false(cs_slots_bio_allowed(2, 0, 2));
    assert_true(cs_slots_bio_allowed(2, 1, 2));
    assert_true(cs_slots_bio_allowed(2, 2, 2));
    assert_false(cs_slots_bio_allowed(2, 3, 2));
    assert_false(cs_slots_bio_allowed(2, 1, 4));
    assert_true(cs_slots_bio_allowed(2, 4, 4));
    assert_true(cs_slots_bio_allowed(2, 2, 3));
    assert_false(cs_slots_bio_allowed(2, 0, 5)); /* no such tag */
}

/* Every sequence of T^n tags (T = 5, n <= 6) enumerated: Viterbi's score equals the best
 * BIO-valid score bit for bit, and its sequence is valid and scores that maximum. */
static void test_viterbi_brute_force(void **state)
{
    (void)state;
    const size_t n_types = 2, T = 5;
    lp_rng rng;
    lp_rng_seed(&rng, 11);
    double emit[6 * 5];
    float trans[6 * 5];
    int y[6], best_y[6], got[6];
    lp_err err = {0};
    int constrained = 0;
    for (int trial = 0; trial < 40; trial++) {
        size_t n = 1 + (size_t)trial % 6;
        for (size_t k = 0; k < n * T; k++)
            emit[k] = 4 * lp_rng_uniform(&rng) - 2;
        for (size_t k = 0; k < (T + 1) * T; k++)
            trans[k] = (float)(4 * lp_rng_uniform(&rng) - 2);
        size_t total = 1;
        for (size_t t = 0; t < n; t++)
            total *= T;
        double best = -INFINITY, best_any = -INFINITY;
        for (size_t code = 0; code < total; code++) {
            size_t c = code;
            for (size_t t = 0; t < n; t++, c /= T)
                y[t] = (int)(c % T);
            double s = seq_score(emit, trans, n, T, y);
            best_any = s > best_any ? s : best_any;
            if (!seq_valid(n_types, n, y))
                continue;
            if (s > best) {
                best = s;
                memcpy(best_y, y, n * sizeof(int));
            }
        }
        bool any_invalid_better = best_any > best;
        double score = NAN;
        assert_int_equal(cs_slots_viterbi(emit, trans, n, n_types, got, &score, &err), LP_OK);
        assert_true(score == best);
        assert_true(seq_valid(n_types, n, got));
        assert_true(seq_score(emit, trans, n, T, got) == best);
        assert_memory_equal(got, best_y, n * sizeof(int)); /* random scores: no ties */
        constrained += any_invalid_better;
    }
    assert_true(constrained > 5); /* the constraint changed the answer in many trials */
    /* n = 0 is an empty answer; no types is refused */
    double score = 1;
    assert_int_equal(cs_slots_viterbi(emit, trans, 0, n_types, got, &score, &err), LP_OK);
    assert_true(score == 0);
    assert_int_equal(cs_slots_viterbi(emit, trans, 2, 0, got, NULL, &err), LP_EINVAL);
}

/* Forward-backward against enumeration: log Z, node and summed edge marginals over every
 * BIO-valid sequence. Sums of exp() in another order differ in the last bits, hence FB_RTOL. */
#define FB_RTOL 1e-12
static void test_forward_backward_brute_force(void **state)
{
    (void)state;
    const size_t n_labels = 2, T = 5;
    lp_rng rng;
    lp_rng_seed(&rng, 12);
    double emit[5 * 5], trans[6 * 5], node[5 * 5], edge[6 * 5], want_node[5 * 5], want_edge[6 * 5];
    float transf[6 * 5];
    int y[5];
    lp_err err = {0};
    for (int trial = 0; trial < 20; trial++) {
        size_t n = 1 + (size_t)trial % 5;
        for (size_t k = 0; k < n * T; k++)
            emit[k] = 6 * lp_rng_uniform(&rng) - 3;
        for (size_t k = 0; k < (T + 1) * T; k++) {
            transf[k] = (float)(4 * lp_rng_uniform(&rng) - 2);
            trans[k] = transf[k];
        }
        size_t total = 1;
        for (size_t t = 0; t < n; t++)
            total *= T;
        double z = 0;
        memset(want_node, 0, sizeof(want_node));
        memset(want_edge, 0, sizeof(want_edge));
        for (int pass = 0; pass < 2; pass++)
            for (size_t code = 0; code < total; code++) {
                size_t c = code;
                for (size_t t = 0; t < n; t++, c /= T)
                    y[t] = (int)(c % T);
                if (!seq_valid(n_labels, n, y))
                    continue;
                double p = exp(seq_score(emit, transf, n, T, y));
                if (pass == 0) {
                    z += p;
                    continue;
                }
                for (size_t t = 0; t < n; t++) {
                    want_node[t * T + (size_t)y[t]] += p / z;
                    want_edge[(t ? (size_t)y[t - 1] : T) * T + (size_t)y[t]] += p / z;
                }
            }
        double logz = NAN;
        assert_int_equal(
            cs_slots_forward_backward(emit, trans, n, n_labels, node, edge, &logz, &err), LP_OK);
        double want_logz = log(z);
        lp_assert_close(&logz, &want_logz, 1, 0, FB_RTOL, "log Z");
        lp_assert_close(node, want_node, n * T, FB_RTOL, FB_RTOL, "node marginals");
        lp_assert_close(edge, want_edge, (T + 1) * T, FB_RTOL, FB_RTOL, "edge marginals");
        for (size_t t = 0; t < n; t++) /* a forbidden tag has no mass */
            for (size_t q = 0; q < T; q++)
                if (t == 0 && q % 2 == 0 && q > 0)
                    assert_true(node[q] == 0);
    }
    /* scores far beyond exp()'s range still give a finite log Z (per-position scaling) */
    for (size_t k = 0; k < 3 * T; k++)
        emit[k] = 800 + (double)k;
    memset(trans, 0, sizeof(trans));
    double logz;
    assert_int_equal(cs_slots_forward_backward(emit, trans, 3, n_labels, node, edge, &logz, &err),
                     LP_OK);
    assert_true(isfinite(logz) && logz > 2400);
    assert_int_equal(cs_slots_forward_backward(emit, trans, 3, 0, node, edge, &logz, &err),
                     LP_EINVAL);
}

/* Emissions that want I-a first and I-b right after B-a: the unconstrained per-token argmax
 * breaks BIO, the decoder must not. */
static void test_viterbi_bio_constraint(void **state)
{
    (void)state;
    const size_t T = 5;
    /*                  O    B-a  I-a  B-b  I-b */
    double emit[4 * 5] = {0, 1, 9, -1,  -1,  /* t0: I-a wins per token */
                          0, 2, 0, -20, -20, /* t1: B-b and I-b out of reach */
                          0, 0, 1, 0,   9,   /* t2: I-b wins per token, after B-a */
                          1, 0, 0, 0,   0};
    float trans[6 * 5] = {0};
    int got[4];
    double score;
    lp_err err = {0};
    assert_int_equal(cs_slots_viterbi(emit, trans, 4, 2, got, &score, &err), LP_OK);
    assert_true(seq_valid(2, 4, got));
    assert_int_not_equal(got[0], 2);
    assert_int_not_equal(got[2], 4);
    /* best valid: B-a B-a I-a O = 1 + 2 + 1 + 1 = 5 (vs O B-a I-a O = 4) */
    int want[4] = {1, 1, 2, 0};
    assert_memory_equal(got, want, sizeof(want));
    assert_true(score == 5);
    /* a transition weight is honoured: forbid nothing, but make B-a -> B-a costly */
    trans[1 * T + 1] = -10;
    assert_int_equal(cs_slots_viterbi(emit, trans, 4, 2, got, &score, &err), LP_OK);
    int want2[4] = {0, 1, 2, 0};
    assert_memory_equal(got, want2, sizeof(want2));
    assert_true(score == 4);
}

/* ---- a learnable synthetic set: templated restaurant requests --------------------------- */
typedef struct gen {
    char *texts[256], *spans[256], *ctx[256];
    size_t n;
} gen;

static const char *const g_people[] = {"2", "3", "four", "five", "6", "ten"};
static const char *const g_date[] = {"monday", "tomorrow", "friday", "next week", "june 3rd"};
static const char *const g_time[] = {"7pm", "noon", "8:30", "half past six", "9am"};
static const char *const g_first[] = {"Anna", "Tom", "Zoë", "Peter", "Lena", "Omar"};
static const char *const g_last[] = {"Berg", "Miller", "Kim", "Müller", "Wong", "Diaz"};

typedef struct piece {
    const char *slot; /* NULL: literal text */
    const char *text;
} piece;

static void gen_add(gen *g, const piece *p, size_t np, const char *ctx)
{
    char t[256] = "", s[256] = "";
    size_t tl = 0, sl = 0;
    for (size_t k = 0; k < np; k++) {
        if (p[k].slot)
            sl += (size_t)snprintf(s + sl, sizeof(s) - sl, "%s%s %zu %zu", sl ? ";" : "", p[k].slot,
                                   tl, tl + strlen(p[k].text));
        tl += (size_t)snprintf(t + tl, sizeof(t) - tl, "%s", p[k].text);
    }
    g->texts[g->n] = strdup(t);
    g->spans[g->n] = strdup(sl ? s : "-");
    g->ctx[g->n++] = strdup(ctx);
}

#define PICK(a) a[lp_rng_below(&rng, sizeof(a) / sizeof(a[0]))]

static void gen_make(gen *g, size_t n, uint64_t seed)
{
    lp_rng rng;
    lp_rng_seed(&rng, seed);
    g->n = 0;
    while (g->n < n) {
        switch (lp_rng_below(&rng, 7)) {
        case 0:
            gen_add(g,
                    (piece[]){{NULL, "book a table for "},
                              {"people", PICK(g_people)},
                              {NULL, " people on "},
                              {"date", PICK(g_date)}},
                    4, "-");
            break;
        case 1:
            gen_add(g,
                    (piece[]){{NULL, "can we come at "},
                              {"time", PICK(g_time)},
                              {NULL, " with "},
                              {"people", PICK(g_people)},
                              {NULL, " of us"}},
                    5, "-");
            break;
        case 2:
            gen_add(g,
                    (piece[]){{NULL, "my name is "},
                              {"first_name", PICK(g_first)},
                              {NULL, " "},
                              {"last_name", PICK(g_last)}},
                    4, "-");
            break;
        case 3:
            gen_add(g, (piece[]){{"time", PICK(g_time)}, {NULL, " please"}}, 2, "time");
            break;
        case 4:
            gen_add(g, (piece[]){{NULL, "it is under "}, {"last_name", PICK(g_last)}}, 2,
                    "last_name");
            break;
        case 5: /* one span, two slots: a pair label */
            gen_add(g, (piece[]){{NULL, "any table free "}, {"date", "in an hour"}, {NULL, " ?"}},
                    3, "-");
            {
                char buf[96];
                snprintf(buf, sizeof(buf), "%s;time 15 25", g->spans[g->n - 1]);
                free(g->spans[g->n - 1]);
                g->spans[g->n - 1] = strdup(buf);
            }
            break;
        default:
            gen_add(g, (piece[]){{NULL, "do you have vegan food ?"}}, 1, "-");
        }
    }
}

static void gen_free(gen *g)
{
    for (size_t i = 0; i < g->n; i++) {
        free(g->texts[i]);
        free(g->spans[i]);
        free(g->ctx[i]);
    }
}

static cs_slots *train_gen_with(const gen *g, cs_slots_trainer trainer)
{
    cs_slots_opts o = cs_slots_opts_default();
    o.hash_bits = 14;
    o.trainer = trainer;
    cs_slots *s = NULL;
    lp_err err = {0};
    lp_status st = cs_slots_train((const char *const *)g->texts, (const char *const *)g->spans,
                                  (const char *const *)g->ctx, g->n, &o, &s, &err);
    if (st != LP_OK)
        fail_msg("train: %s", err.msg);
    return s;
}

static cs_slots *train_gen(const gen *g)
{
    return train_gen_with(g, cs_slots_opts_default().trainer);
}

static double eval_f1(const cs_slots *s, const gen *g)
{
    cs_slot_eval mi;
    lp_err err = {0};
    assert_int_equal(cs_slots_evaluate(s, (const char *const *)g->texts,
                                       (const char *const *)g->spans, (const char *const *)g->ctx,
                                       g->n, &mi, NULL, &err),
                     LP_OK);
    return mi.f1;
}

static void test_learnable(void **state)
{
    (void)state;
    gen tr, te;
    gen_make(&tr, 120, 1);
    gen_make(&te, 60, 2);
    for (int k = 0; k < 2; k++) { /* both trainers learn the set */
        cs_slots *s = train_gen_with(&tr, k ? CS_SLOTS_TRAINER_PERCEPTRON : CS_SLOTS_TRAINER_CRF);
        double f_tr = eval_f1(s, &tr), f_te = eval_f1(s, &te);
        print_message("learnable set, %s: train F1 %.4f, held-out F1 %.4f\n",
                      k ? "perceptron" : "crf", f_tr, f_te);
        assert_true(f_tr == 1.0);
        assert_true(f_te >= 0.95);
        cs_slots_free(s);
    }
    cs_slots *s = train_gen(&tr);
    assert_int_equal(cs_slots_n_types(s), 5); /* the pair label is not a slot type */
    /* multi-token spans come out whole */
    cs_entities e = {0};
    lp_err err = {0};
    const char *q = "can we come at half past six with five of us";
    assert_int_equal(cs_slots_tag(s, q, strlen(q), "-", &e, &err), LP_OK);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.v[0].type, "time");
    assert_string_equal(e.v[0].value, "half past six");
    assert_string_equal(e.v[1].type, "people");
    assert_string_equal(e.v[1].value, "five");
    cs_entities_clear(&e);
    /* the pair label gives both slots on the same bytes */
    const char *q2 = "any table free in an hour ?";
    assert_int_equal(cs_slots_tag(s, q2, strlen(q2), "-", &e, &err), LP_OK);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.v[0].type, "date");
    assert_string_equal(e.v[1].type, "time");
    for (size_t k = 0; k < 2; k++) {
        assert_int_equal(e.v[k].start, 15);
        assert_int_equal(e.v[k].end, 25);
    }
    cs_entities_clear(&e);
    /* training is deterministic for a seed */
    cs_slots *s2 = train_gen(&tr);
    lp_buf a, b;
    lp_buf_init(&a);
    lp_buf_init(&b);
    cs_slots_save(s, &a);
    cs_slots_save(s2, &b);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    lp_buf_free(&a);
    lp_buf_free(&b);
    cs_slots_free(s2);
    cs_slots_free(s);
    gen_free(&tr);
    gen_free(&te);
}

/* Spans over non-ASCII text are byte offsets into the UTF-8, and the value is those bytes. */
static void test_utf8_offsets(void **state)
{
    (void)state;
    gen tr;
    gen_make(&tr, 120, 3);
    cs_slots *s = train_gen(&tr);
    cs_entities e = {0};
    lp_err err = {0};
    /* "Zoë" is 4 bytes (ë = C3 AB), "Müller" 7 bytes */
    const char *q = "my name is Zoë Müller";
    assert_int_equal(cs_slots_tag(s, q, strlen(q), "-", &e, &err), LP_OK);
    assert_int_equal(e.n, 2);
    assert_string_equal(e.v[0].type, "first_name");
    assert_int_equal(e.v[0].start, 11);
    assert_int_equal(e.v[0].end, 15);
    assert_string_equal(e.v[0].value, "Zoë");
    assert_string_equal(e.v[1].type, "last_name");
    assert_int_equal(e.v[1].start, 16);
    assert_int_equal(e.v[1].end, 23);
    assert_string_equal(e.v[1].value, "Müller");
    cs_entities_clear(&e);
    /* a name never seen, in another script, after the same cue */
    const char *q2 = "my name is Åsa 田中";
    assert_int_equal(cs_slots_tag(s, q2, strlen(q2), "-", &e, &err), LP_OK);
    for (size_t k = 0; k < e.n; k++) {
        assert_true(e.v[k].end <= strlen(q2));
        assert_int_equal(strlen(e.v[k].value), e.v[k].end - e.v[k].start);
        assert_memory_equal(e.v[k].value, q2 + e.v[k].start, e.v[k].end - e.v[k].start);
    }
    cs_entities_clear(&e);
    /* invalid UTF-8 is an error, not a crash; empty text tags to nothing */
    assert_int_equal(cs_slots_tag(s, "my name is \xc3", 12, "-", &e, &err), LP_EPARSE);
    assert_int_equal(cs_slots_tag(s, "", 0, NULL, &e, &err), LP_OK);
    assert_int_equal(e.n, 0);
    cs_slots_free(s);
    gen_free(&tr);
}

/* A version-1 section as the old greedy tagger wrote it: magic, version, types, bits,
 * weights (2^bits, n_tags), CRC. */
static void write_v1(lp_buf *b, uint32_t version)
{
    const size_t bits = 10, n_tags = 3;
    float *w = calloc(((size_t)1 << bits) * n_tags, sizeof(float));
    lp_buf_put(b, "CSSL", 4);
    lp_buf_u32(b, version);
    lp_buf_u32(b, 1);
    lp_buf_str(b, "people");
    lp_buf_u32(b, (uint32_t)bits);
    lp_buf_put(b, w, ((size_t)1 << bits) * n_tags * sizeof(float));
    lp_buf_u32(b, lp_crc32(0, w, ((size_t)1 << bits) * n_tags * sizeof(float)));
    free(w);
}

static void test_versions(void **state)
{
    (void)state;
    lp_buf b;
    lp_reader r;
    cs_slots *s = NULL;
    lp_err err = {0};
    lp_buf_init(&b);
    write_v1(&b, 1);
    lp_reader_init(&r, b.data, b.len, "old.lpm cs.slots");
    assert_int_equal(cs_slots_load(&r, &s, &err), LP_EVERSION);
    assert_null(s);
    assert_non_null(strstr(err.msg, "old.lpm cs.slots"));
    assert_non_null(strstr(err.msg, "version 1"));
    assert_non_null(strstr(err.msg, "retrain"));
    lp_buf_free(&b);
    lp_buf_init(&b);
    write_v1(&b, 9);
    lp_reader_init(&r, b.data, b.len, "new.lpm");
    assert_int_equal(cs_slots_load(&r, &s, &err), LP_EVERSION);
    assert_non_null(strstr(err.msg, "version 9"));
    lp_buf_free(&b);

    /* the current version round-trips: same spans on every utterance of a held-out set */
    gen tr, te;
    gen_make(&tr, 80, 4);
    gen_make(&te, 40, 5);
    cs_slots *m = train_gen(&tr);
    lp_buf_init(&b);
    cs_slots_save(m, &b);
    lp_reader_init(&r, b.data, b.len, "slots");
    assert_int_equal(cs_slots_load(&r, &s, &err), LP_OK);
    assert_int_equal(r.pos, b.len);
    for (size_t i = 0; i < te.n; i++) {
        cs_entities e1 = {0}, e2 = {0};
        size_t len = strlen(te.texts[i]);
        assert_int_equal(cs_slots_tag(m, te.texts[i], len, te.ctx[i], &e1, &err), LP_OK);
        assert_int_equal(cs_slots_tag(s, te.texts[i], len, te.ctx[i], &e2, &err), LP_OK);
        assert_int_equal(e1.n, e2.n);
        for (size_t k = 0; k < e1.n; k++) {
            assert_string_equal(e1.v[k].type, e2.v[k].type);
            assert_int_equal(e1.v[k].start, e2.v[k].start);
            assert_int_equal(e1.v[k].end, e2.v[k].end);
        }
        cs_entities_clear(&e1);
        cs_entities_clear(&e2);
    }
    cs_slots_free(s);
    /* every truncation fails cleanly; a flipped byte in the weights fails the CRC */
    for (size_t cut = 0; cut < b.len; cut += 1 + cut / 3) {
        lp_reader_init(&r, b.data, cut, "slots");
        s = NULL;
        assert_int_not_equal(cs_slots_load(&r, &s, &err), LP_OK);
        assert_null(s);
    }
    b.data[b.len - 100] ^= 0x10;
    lp_reader_init(&r, b.data, b.len, "slots");
    assert_int_equal(cs_slots_load(&r, &s, &err), LP_EFORMAT);
    assert_non_null(strstr(err.msg, "CRC"));
    lp_buf_free(&b);
    cs_slots_free(m);
    gen_free(&tr);
    gen_free(&te);
}

/* Many slot types (an ATIS-sized schema): 100 types, each with its own values, learnt and
 * round-tripped through the file; 129 types is a clear error naming the limit. */
static void test_many_types(void **state)
{
    (void)state;
    enum { TYPES = 100, PER = 6, N = TYPES * PER };
    char *texts[N + 200], *spans[N + 200];
    size_t n = 0;
    for (int k = 0; k < TYPES; k++)
        for (int r = 0; r < PER; r++) {
            char t[96], sp[64];
            /* "show the q<k>v<r> one": the value at byte 9 */
            int len = snprintf(t, sizeof t, "show the q%dv%d one", k, r % 3);
            int vend = len - 4;
            snprintf(sp, sizeof sp, "type%d 9 %d", k, vend);
            texts[n] = strdup(t);
            spans[n++] = strdup(sp);
        }
    cs_slots_opts o = cs_slots_opts_default();
    o.hash_bits = 12;
    o.epochs = 5;
    cs_slots *s = NULL;
    lp_err err = {0};
    if (cs_slots_train((const char *const *)texts, (const char *const *)spans, NULL, n, &o, &s,
                       &err) != LP_OK)
        fail_msg("train: %s", err.msg);
    lp_buf b;
    lp_buf_init(&b);
    cs_slots_save(s, &b);
    cs_slots_free(s);
    lp_reader r;
    lp_reader_init(&r, b.data, b.len, "slots");
    assert_int_equal(cs_slots_load(&r, &s, &err), LP_OK);
    lp_buf_free(&b);
    cs_slot_eval mi;
    assert_int_equal(cs_slots_evaluate(s, (const char *const *)texts, (const char *const *)spans,
                                       NULL, n, &mi, NULL, &err),
                     LP_OK);
    assert_true(mi.f1 > 0.95);
    cs_slots_free(s);
    /* past the limit */
    for (int k = TYPES; k < 129; k++) {
        char t[64], sp[64];
        snprintf(t, sizeof t, "show the q%dv0 one", k);
        snprintf(sp, sizeof sp, "type%d 9 %d", k, (int)strlen(t) - 4);
        texts[n] = strdup(t);
        spans[n++] = strdup(sp);
    }
    assert_int_equal(cs_slots_train((const char *const *)texts, (const char *const *)spans, NULL,
                                    n, &o, &s, &err),
                     LP_EINVAL);
    assert_non_null(strstr(err.msg, "more than 128 slot types"));
    for (size_t i = 0; i < n; i++)
        free(texts[i]), free(spans[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bio_allowed),
        cmocka_unit_test(test_viterbi_brute_force),
        cmocka_unit_test(test_viterbi_bio_constraint),
        cmocka_unit_test(test_forward_backward_brute_force),
        cmocka_unit_test(test_learnable),
        cmocka_unit_test(test_utf8_offsets),
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_many_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
