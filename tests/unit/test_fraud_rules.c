/*
 * test_fraud_rules.c - the fraud rule language: precedence and values of valid expressions,
 * errors with 1-based columns for invalid ones and unknown features, rule sets from JSON
 * (actions, bad entries), and how rule hits and lists combine with the model's decision.
 */
#include "lp_test.h"

#include "fraud.h"

#include <stdlib.h>
#include <string.h>

static const char *const names[] = {"amount", "hour", "customer_id:count_1h", "pair:count"};
static const size_t n_names = 4;

static double eval(const char *expr, const float *x)
{
    fraud_rule *r = NULL;
    lp_err err;
    if (fraud_rule_compile(expr, names, n_names, &r, &err))
        fail_msg("'%s': %s", expr, lp_err_text(&err));
    double v = fraud_rule_eval(r, x);
    fraud_rule_free(r);
    return v;
}

static void expect_error(const char *expr, const char *msg)
{
    fraud_rule *r = NULL;
    lp_err err;
    assert_int_equal(fraud_rule_compile(expr, names, n_names, &r, &err), LP_EPARSE);
    assert_null(r);
    if (!strstr(err.msg, msg))
        fail_msg("'%s': message '%s' lacks '%s'", expr, err.msg, msg);
}

static void test_valid(void **state)
{
    (void)state;
    const float x[] = {10, 3, 4, 0};
    assert_true(eval("amount > 5", x) == 1);
    assert_true(eval("amount - 2 * 3 == 4", x) == 1);    /* * binds tighter than - */
    assert_true(eval("(amount - 2) * 3", x) == 24);
    assert_true(eval("-amount + 10 == 0", x) == 1);
    assert_true(eval("amount / 0", x) == 0);              /* never NaN or a trap */
    assert_true(eval("hour < 6 and customer_id:count_1h >= 4", x) == 1);
    assert_true(eval("not hour < 6 or pair:count == 0", x) == 1);
    assert_true(eval("not (hour < 6 or pair:count == 0)", x) == 0);
    assert_true(eval("true and not false", x) == 1);
    /* chained comparisons are refused rather than given a surprising meaning */
    expect_error("1 < 2 == 1", "column 7: unexpected '==");
    assert_true(eval("amount >= 10 and amount <= 10 and amount != 11", x) == 1);
    assert_true(eval("  .5 * 4 == 2  ", x) == 1);
}

static void test_invalid(void **state)
{
    (void)state;
    expect_error("amout > 5", "column 1: unknown feature 'amout'");
    expect_error("amount > 5 and hourz < 2", "column 16: unknown feature 'hourz'");
    expect_error("amount >", "column 9: unexpected end of rule");
    expect_error("(amount > 5", "column 12: expected ')'");
    expect_error("amount > 5)", "column 11: unexpected ')");
    expect_error("amount $ 5", "column 8: unexpected '$");
    expect_error("", "column 1: unexpected end of rule");
    expect_error("and amount", "column 1: unexpected 'and'");
    char deep[400];
    memset(deep, '(', 200);
    strcpy(deep + 200, "1");
    expect_error(deep, "nested too deeply");
    /* a flat chain is as deep as it is long for evaluation: bounded by the tree's size */
    size_t terms = 200000;
    char *chain = malloc(2 * terms + 16);
    assert_non_null(chain);
    strcpy(chain, "amount > 1");
    for (size_t k = 1; k < terms; k++)
        strcat(chain + 9 + 2 * (k - 1), "+1");
    expect_error(chain, "more than 1024 terms");
    strcpy(chain, "amount > 1");
    for (size_t k = 1; k < 500; k++)
        strcat(chain + 9 + 2 * (k - 1), "+1");
    const float x[] = {600, 3, 4, 0};
    assert_true(eval(chain, x) == 1); /* 499 + 1 < 600 */
    free(chain);
    /* a character the grammar does not take is named whole, so the message stays UTF-8 */
    fraud_rule *r = NULL;
    lp_err err;
    assert_int_equal(fraud_rule_compile("\xc3\xa9 > 1", names, n_names, &r, &err), LP_EPARSE);
    assert_true(lp_utf8_valid(err.msg, strlen(err.msg), NULL));
    assert_non_null(strstr(err.msg, "unexpected '\xc3\xa9'"));
    assert_int_equal(fraud_rule_compile("amount > 1 \xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
                                        "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9",
                                        names, n_names, &r, &err),
                     LP_EPARSE);
    assert_true(lp_utf8_valid(err.msg, strlen(err.msg), NULL));
}

static void test_ruleset_and_combine(void **state)
{
    (void)state;
    cJSON *j = cJSON_Parse("[{\"name\":\"big\",\"when\":\"amount > 100\",\"action\":\"block\"},"
                           "{\"name\":\"night\",\"when\":\"hour < 6\",\"action\":\"review\"},"
                           "{\"name\":\"vip\",\"when\":\"pair:count > 50\",\"action\":\"allow\"}]");
    fraud_ruleset *rs = NULL;
    lp_err err;
    assert_int_equal(fraud_ruleset_parse(j, names, n_names, &rs, &err), LP_OK);
    cJSON_Delete(j);
    assert_int_equal(rs->n, 3);
    bool hits[3];
    float night[] = {10, 3, 0, 0}, big[] = {500, 12, 0, 0}, vip_big[] = {500, 3, 0, 60};
    assert_int_equal(fraud_combine(FRAUD_DECISION_APPROVE, rs, night, false, false, hits),
                     FRAUD_DECISION_REVIEW);
    assert_true(!hits[0] && hits[1] && !hits[2]);
    /* review rules never lower a decline */
    assert_int_equal(fraud_combine(FRAUD_DECISION_DECLINE, rs, night, false, false, hits),
                     FRAUD_DECISION_DECLINE);
    assert_int_equal(fraud_combine(FRAUD_DECISION_APPROVE, rs, big, false, false, hits),
                     FRAUD_DECISION_DECLINE);
    /* block rule beats allow rule; allow-list beats block rule; block-list beats allow-list */
    assert_int_equal(fraud_combine(FRAUD_DECISION_APPROVE, rs, vip_big, false, false, hits),
                     FRAUD_DECISION_DECLINE);
    assert_int_equal(fraud_combine(FRAUD_DECISION_DECLINE, rs, vip_big, false, true, hits),
                     FRAUD_DECISION_APPROVE);
    assert_int_equal(fraud_combine(FRAUD_DECISION_APPROVE, rs, night, true, true, hits),
                     FRAUD_DECISION_DECLINE);
    cJSON *back = fraud_ruleset_to_json(rs);
    char *txt = cJSON_PrintUnformatted(back);
    assert_non_null(strstr(txt, "\"when\":\"hour < 6\""));
    free(txt);
    cJSON_Delete(back);
    fraud_ruleset_free(rs);

    j = cJSON_Parse("[{\"name\":\"x\",\"when\":\"amount > 1\",\"action\":\"deny\"}]");
    assert_int_equal(fraud_ruleset_parse(j, names, n_names, &rs, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "rule 0 'x': action 'deny'"));
    cJSON_Delete(j);
    j = cJSON_Parse("[{\"name\":\"ok\",\"when\":\"amount > 1\",\"action\":\"review\"},"
                    "{\"name\":\"bad\",\"when\":\"amount >> 1\",\"action\":\"review\"}]");
    assert_int_equal(fraud_ruleset_parse(j, names, n_names, &rs, &err), LP_EPARSE);
    assert_non_null(strstr(err.msg, "rule 1 'bad': column 9"));
    cJSON_Delete(j);
    j = cJSON_Parse("{\"name\":\"x\"}");
    assert_int_equal(fraud_ruleset_parse(j, names, n_names, &rs, &err), LP_EINVAL);
    cJSON_Delete(j);
    j = cJSON_Parse("[{\"name\":\"x\",\"action\":\"block\"}]");
    assert_int_equal(fraud_ruleset_parse(j, names, n_names, &rs, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "'when'"));
    cJSON_Delete(j);
    /* names tell rules apart in rules_hit: empty and repeated ones are refused */
    j = cJSON_Parse("[{\"name\":\" \",\"when\":\"amount > 1\",\"action\":\"review\"}]");
    assert_int_equal(fraud_ruleset_parse(j, names, n_names, &rs, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "rule 0: 'name' is empty"));
    cJSON_Delete(j);
    j = cJSON_Parse("[{\"name\":\"a\",\"when\":\"amount > 1\",\"action\":\"review\"},"
                    "{\"name\":\"a\",\"when\":\"amount > 9\",\"action\":\"block\"}]");
    assert_int_equal(fraud_ruleset_parse(j, names, n_names, &rs, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "rule 1: name 'a' is also rule 0's"));
    cJSON_Delete(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test(test_ruleset_and_combine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
