/*
 * fuzz_cs_parse.c - libFuzzer target for the customer-service parsers: the first byte picks
 * one, the rest is its input. 0: a TSV/CSV table; 1: a bot definition (then one dialogue step
 * on it); 2: a saved slot tagger (then tagging a sentence); 3: a saved FAQ section (then a
 * search). Any bytes either parse into something usable or are rejected with a message; never
 * a crash, hang or leak. Seeds: tests/fuzz/seeds/cs_parse/.
 */
#include <stdlib.h>
#include <string.h>

#include "cs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *in = (const char *)data + 1;
    size_t n = size - 1;
    lp_err err = {0};
    lp_status st;
    switch (data[0] % 4) {
    case 0: {
        cs_table t;
        st = cs_table_parse(in, n, "fuzz", &t, &err);
        if (st == LP_OK) {
            for (size_t i = 0; i < t.n_rows; i++)
                for (size_t j = 0; j < t.n_cols; j++)
                    if (!cs_table_cell(&t, i, j))
                        abort();
            cs_table_free(&t);
        }
        break;
    }
    case 1: {
        cs_bot_def *b = NULL;
        st = cs_bot_def_parse(in, n, "fuzz", &b, &err);
        if (st == LP_OK) {
            cs_session s;
            cs_session_init(&s, "f");
            cs_intent_result r = {.intent = "track", .confidence = 0.9};
            cs_turn_in ti = {.text = "where is my order", .intent = &r};
            cs_turn_out o;
            if (cs_dialog_step(b, &s, &ti, &o, &err) == LP_OK && !o.reply)
                abort();
            cs_turn_out_clear(&o);
            cs_session_clear(&s);
            cs_bot_def_free(b);
        } else if (b) {
            abort();
        }
        break;
    }
    case 2: {
        lp_reader r;
        lp_reader_init(&r, in, n, "fuzz");
        cs_slots *s = NULL;
        st = cs_slots_load(&r, &s, &err);
        if (st == LP_OK) {
            cs_entities e = {0};
            const char *q = "table for 4 people at 7pm on friday";
            cs_slots_tag(s, q, strlen(q), "people", &e, &err);
            cs_entities_clear(&e);
            cs_slots_free(s);
        } else if (s) {
            abort();
        }
        break;
    }
    default: {
        lp_reader r;
        lp_reader_init(&r, in, n, "fuzz");
        cs_faq *f = NULL;
        st = cs_faq_load(&r, &f, &err);
        if (st == LP_OK) {
            cs_faq_hit h[3];
            size_t nh;
            cs_faq_search(f, "how do I return an item", 3, h, &nh, &err);
            cs_faq_free(f);
        } else if (f) {
            abort();
        }
        break;
    }
    }
    if (st != LP_OK && err.msg[0] == '\0')
        abort(); /* a rejection says why */
    return 0;
}
