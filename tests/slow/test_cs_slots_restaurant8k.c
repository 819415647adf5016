/*
 * test_cs_slots_restaurant8k.c - the slot tagger with its default options on restaurant8k
 * (shared data, skipped when absent): trained on train.tsv, it must reach the goal of issue 5,
 * micro-F1 >= 0.92 on test.tsv (exact span match), every slot >= 0.90, and tag identically after
 * a save/load round trip. Training takes ~10 s on the shared 2-core VM, hence tests/slow.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs.h"
#include "lp_test.h"

/* The goal; the scikit-learn per-token peer gets 0.88 on the same split. */
#define GOAL_MICRO_F1 0.92
/* A floor per slot, so one slot cannot collapse behind a good average. */
#define FLOOR_SLOT_F1 0.90

typedef struct cols {
    cs_table t;
    const char **text, **spans, **ctx;
} cols;

static void cols_read(cols *c, const char *path)
{
    lp_err err = {0};
    size_t jt, js;
    if (cs_table_read(path, &c->t, &err) != LP_OK ||
        cs_table_require(&c->t, "text", path, &jt, &err) != LP_OK ||
        cs_table_require(&c->t, "spans", path, &js, &err) != LP_OK)
        fail_msg("%s", err.msg);
    long jc = cs_table_col(&c->t, "requested_slots");
    assert_true(jc >= 0);
    size_t n = c->t.n_rows;
    c->text = calloc(n, sizeof(char *));
    c->spans = calloc(n, sizeof(char *));
    c->ctx = calloc(n, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        c->text[i] = cs_table_cell(&c->t, i, jt);
        c->spans[i] = cs_table_cell(&c->t, i, js);
        c->ctx[i] = cs_table_cell(&c->t, i, (size_t)jc);
    }
}

static void cols_free(cols *c)
{
    free(c->text);
    free(c->spans);
    free(c->ctx);
    cs_table_free(&c->t);
}

static void test_restaurant8k_goal(void **state)
{
    (void)state;
    cols tr, te;
    cols_read(&tr, lp_test_shared_or_skip("restaurant8k/train.tsv"));
    cols_read(&te, lp_test_shared_or_skip("restaurant8k/test.tsv"));
    cs_slots *s = NULL;
    lp_err err = {0};
    if (cs_slots_train(tr.text, tr.spans, tr.ctx, tr.t.n_rows, NULL, &s, &err) != LP_OK)
        fail_msg("train: %s", err.msg);
    assert_int_equal(cs_slots_n_types(s), 5);
    cs_slot_eval mi, per[5];
    assert_int_equal(cs_slots_evaluate(s, te.text, te.spans, te.ctx, te.t.n_rows, &mi, per, &err),
                     LP_OK);
    print_message("restaurant8k test: P %.4f R %.4f F1 %.4f\n", mi.precision, mi.recall, mi.f1);
    assert_true(mi.tp + mi.fn == 3477); /* every gold span counted once */
    assert_true(mi.f1 >= GOAL_MICRO_F1);
    for (size_t k = 0; k < 5; k++) {
        print_message("  %s F1 %.4f\n", cs_slots_type(s, k), per[k].f1);
        assert_true(per[k].f1 >= FLOOR_SLOT_F1);
    }
    /* a saved and loaded tagger scores the same */
    lp_buf b;
    lp_buf_init(&b);
    cs_slots_save(s, &b);
    lp_reader r;
    lp_reader_init(&r, b.data, b.len, "restaurant8k slots");
    cs_slots *s2 = NULL;
    assert_int_equal(cs_slots_load(&r, &s2, &err), LP_OK);
    cs_slot_eval mi2;
    assert_int_equal(
        cs_slots_evaluate(s2, te.text, te.spans, te.ctx, te.t.n_rows, &mi2, NULL, &err), LP_OK);
    assert_int_equal(mi2.tp, mi.tp);
    assert_int_equal(mi2.fp, mi.fp);
    assert_int_equal(mi2.fn, mi.fn);
    lp_buf_free(&b);
    cs_slots_free(s2);
    cs_slots_free(s);
    cols_free(&tr);
    cols_free(&te);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_restaurant8k_goal)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
