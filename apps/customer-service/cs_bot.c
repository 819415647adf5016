/*
 * cs_bot.c - the bot as one model file, and one chat turn.
 *
 * The .lpm file is the intent classifier's lp_model plus extra sections: cs.intent and
 * cs.calib (cs_intent.c), cs.slots (slot tagger), cs.faq (FAQ entries) and cs.bot (the bot
 * definition JSON). A turn: validate the text, classify, find pattern entities and slot spans,
 * search the FAQ, step the dialogue, and build the response object.
 * Does not: store anything (main.c writes the session store), or log raw text.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cs.h"

#define SEC_SLOTS "cs.slots"
#define SEC_FAQ "cs.faq"
#define SEC_BOT "cs.bot"

void cs_bot_free(cs_bot *b)
{
    if (!b)
        return;
    cs_intent_free(b->intent);
    cs_slots_free(b->slots);
    cs_faq_free(b->faq);
    cs_bot_def_free(b->def);
    cs_patterns_free(b->patterns);
    free(b);
}

static lp_status put_buf(lp_model *m, const char *name, lp_buf *b, lp_err *err)
{
    lp_status st = lp_buf_status(b, err);
    if (st == LP_OK)
        st = lp_model_set_extra(m, name, b->data, b->len, err);
    lp_buf_free(b);
    return st;
}

lp_status cs_bot_save(cs_bot *b, const char *path, lp_err *err)
{
    lp_model *m = cs_intent_model(b->intent);
    lp_buf buf;
    lp_status st = LP_OK;
    if (b->slots) {
        lp_buf_init(&buf);
        cs_slots_save(b->slots, &buf);
        st = put_buf(m, SEC_SLOTS, &buf, err);
    }
    if (st == LP_OK && b->faq) {
        lp_buf_init(&buf);
        cs_faq_save(b->faq, &buf);
        st = put_buf(m, SEC_FAQ, &buf, err);
    }
    if (st == LP_OK && b->def) {
        const char *js = cs_bot_def_json(b->def);
        st = lp_model_set_extra(m, SEC_BOT, js, strlen(js), err);
    }
    return st != LP_OK ? st : cs_intent_save(b->intent, path, err);
}

lp_status cs_bot_load(const char *path, cs_bot **out, lp_err *err)
{
    *out = NULL;
    cs_bot *b = lp_calloc(1, sizeof(*b));
    if (!b)
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
    lp_status st = cs_intent_load(path, &b->intent, err);
    const lp_model *m = st == LP_OK ? cs_intent_model(b->intent) : NULL;
    const void *d;
    size_t len;
    lp_reader r;
    if (st == LP_OK && lp_model_get_extra(m, SEC_SLOTS, &d, &len, NULL) == LP_OK) {
        lp_reader_init(&r, d, len, "cs.slots");
        st = cs_slots_load(&r, &b->slots, err);
    }
    if (st == LP_OK && lp_model_get_extra(m, SEC_FAQ, &d, &len, NULL) == LP_OK) {
        lp_reader_init(&r, d, len, "cs.faq");
        st = cs_faq_load(&r, &b->faq, err);
    }
    if (st == LP_OK && b->faq && cs_intent_encoder_handle(b->intent))
        st = cs_faq_set_encoder(b->faq, cs_intent_encoder_handle(b->intent), err);
    if (st == LP_OK && lp_model_get_extra(m, SEC_BOT, &d, &len, NULL) == LP_OK)
        st = cs_bot_def_parse(d, len, "cs.bot", &b->def, err);
    if (st == LP_OK)
        st = cs_patterns_new(cs_bot_def_order_pattern(b->def), &b->patterns, err);
    if (st != LP_OK) {
        if (st != LP_ENOMEM && !strstr(lp_err_text(err), path))
            lp_err_prefix(err, "%s", path);
        cs_bot_free(b);
        return st;
    }
    *out = b;
    return LP_OK;
}

/* A probability or score as the answer gives it: 9 decimal places (a billionth says all there is
 * to say about a confidence, and such a number prints without printf, see
 * lp_json_write_cjson_num). */
static double answer_num(double v)
{
    return fabs(v) < 1e6 ? round(v * 1e9) / 1e9 : v;
}

static cJSON *entities_json(const cs_entities *e)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < e->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "type", e->v[i].type);
        cJSON_AddStringToObject(o, "value", e->v[i].value);
        cJSON_AddNumberToObject(o, "start", (double)e->v[i].start);
        cJSON_AddNumberToObject(o, "end", (double)e->v[i].end);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

lp_status cs_bot_turn(const cs_bot *b, cs_session *s, const char *text, size_t len, cJSON **out,
                      cs_turn_out *turn, lp_err *err)
{
    return cs_bot_turn_with(b, NULL, s, text, len, out, turn, err);
}

lp_status cs_bot_turn_with(const cs_bot *b, const lp_lora *adapter, cs_session *s,
                           const char *text, size_t len, cJSON **out, cs_turn_out *turn,
                           lp_err *err)
{
    *out = NULL;
    memset(turn, 0, sizeof(*turn));
    if (lp_utf8_check(text, len, "text", err) != LP_OK)
        return LP_EPARSE;
    if (memchr(text, 0, len))
        return lp_err_set(err, LP_EINVAL, "text: contains a NUL byte");
    if (lp_utf8_blank(text, len))
        return lp_err_set(err, LP_EINVAL, "field 'text': empty");
    cs_intent_result ir;
    lp_status st = cs_intent_predict_with(b->intent, adapter, &text, 1, &ir, err);
    if (st != LP_OK)
        return st;
    cs_entities ents = {0};
    st = cs_patterns_find(b->patterns, text, len, &ents, err);
    const char *awaited = cs_dialog_awaited_slot(b->def, s);
    if (st == LP_OK && awaited) /* "12345" in answer to "what is your order number?" */
        st = cs_patterns_answer(b->patterns, awaited, text, len, &ents, err);
    if (st == LP_OK && b->slots) {
        cs_entities sl = {0};
        st = cs_slots_tag(b->slots, text, len, NULL, &sl, err);
        for (size_t i = 0; st == LP_OK && i < sl.n; i++) {
            bool clash = false;
            for (size_t k = 0; k < ents.n && !clash; k++)
                clash = sl.v[i].start < ents.v[k].end && ents.v[k].start < sl.v[i].end;
            if (!clash &&
                cs_entities_push(&ents, sl.v[i].type, text, sl.v[i].start, sl.v[i].end) != LP_OK)
                st = lp_err_set(err, LP_ENOMEM, "turn: out of memory");
        }
        cs_entities_clear(&sl);
    }
    cs_faq_hit hits[3];
    size_t nh = 0;
    if (st == LP_OK && b->faq)
        st = cs_faq_search(b->faq, text, 3, hits, &nh, err);
    if (st != LP_OK) {
        cs_entities_clear(&ents);
        return st;
    }
    const char *faq_answer =
        nh && hits[0].cosine >= CS_FAQ_CONFIDENT ? cs_faq_answer(b->faq, hits[0].index) : NULL;
    cs_turn_in in = {.text = text, .intent = &ir, .entities = &ents, .faq_answer = faq_answer};
    st = cs_dialog_step(b->def, s, &in, turn, err);
    if (st != LP_OK) {
        cs_entities_clear(&ents);
        cs_turn_out_clear(turn);
        return st;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "session_id", s->id);
    cJSON_AddStringToObject(o, "intent", ir.intent);
    cJSON_AddNumberToObject(o, "confidence", answer_num(ir.confidence));
    cJSON *alts = cJSON_AddArrayToObject(o, "alternatives");
    for (size_t k = 0; k < ir.n_alt; k++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "intent", ir.alt[k]);
        cJSON_AddNumberToObject(x, "confidence", answer_num(ir.alt_p[k]));
        cJSON_AddItemToArray(alts, x);
    }
    cJSON_AddBoolToObject(o, "out_of_scope", ir.out_of_scope);
    cJSON_AddItemToObject(o, "entities", entities_json(&ents));
    cJSON *faq = cJSON_AddObjectToObject(o, "faq");
    cJSON_AddBoolToObject(faq, "confident", faq_answer != NULL);
    if (faq_answer)
        cJSON_AddStringToObject(faq, "answer", faq_answer);
    else
        cJSON_AddNullToObject(faq, "answer");
    cJSON *matches = cJSON_AddArrayToObject(faq, "matches");
    for (size_t k = 0; k < nh; k++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "id", cs_faq_id(b->faq, hits[k].index));
        cJSON_AddStringToObject(x, "question", cs_faq_question(b->faq, hits[k].index));
        cJSON_AddNumberToObject(x, "score", answer_num(hits[k].score));
        cJSON_AddItemToArray(matches, x);
    }
    cJSON_AddStringToObject(o, "reply", turn->reply ? turn->reply : "");
    cJSON *h = cJSON_AddObjectToObject(o, "handoff");
    cJSON_AddBoolToObject(h, "needed", turn->handoff);
    if (turn->handoff)
        cJSON_AddStringToObject(h, "reason", turn->reason);
    else
        cJSON_AddNullToObject(h, "reason");
    cs_entities_clear(&ents);
    if (!o || !cJSON_GetObjectItem(o, "handoff")) {
        cJSON_Delete(o);
        cs_turn_out_clear(turn);
        return lp_err_set(err, LP_ENOMEM, "turn: out of memory");
    }
    *out = o;
    return LP_OK;
}
