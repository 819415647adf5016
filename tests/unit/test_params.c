/*
 * test_params.c - lp_params: parsing key=value, typed getters with ranges, unknown keys.
 */
#include "lp_test.h"

#include <stdlib.h>
#include <string.h>

static void test_params(void **state)
{
    (void)state;
    lp_params *p = lp_params_new();
    lp_err err;
    assert_int_equal(lp_params_parse(p, "max_depth=6", NULL), LP_OK);
    assert_int_equal(lp_params_parse(p, "learning_rate=0.05", NULL), LP_OK);
    assert_int_equal(lp_params_parse(p, "objective=binary", NULL), LP_OK);
    assert_int_equal(lp_params_parse(p, "max_depth=8", NULL), LP_OK); /* later wins */
    assert_int_equal(lp_params_parse(p, "novalue", &err), LP_EINVAL);
    assert_int_equal(lp_params_parse(p, "=3", &err), LP_EINVAL);
    assert_int_equal(lp_params_count(p), 3);

    long d;
    double lr, missing;
    assert_int_equal(lp_params_int(p, "max_depth", 6, 0, 64, &d, NULL), LP_OK);
    assert_int_equal(d, 8);
    assert_int_equal(lp_params_double(p, "learning_rate", 0.1, 1e-6, 1, &lr, NULL), LP_OK);
    assert_true(lr == 0.05);
    assert_int_equal(lp_params_double(p, "absent", 1.5, 0, 2, &missing, NULL), LP_OK);
    assert_true(missing == 1.5);
    assert_int_equal(lp_params_int(p, "learning_rate", 1, 0, 10, &d, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "learning_rate=0.05"));

    lp_params_parse(p, "max_depth=-3", NULL);
    assert_int_equal(lp_params_int(p, "max_depth", 6, 0, 64, &d, &err), LP_EINVAL);
    assert_string_equal(err.msg, "max_depth=-3: must be an integer in [0, 64]");

    const char *choices[] = {"binary", "regression", NULL};
    size_t c;
    assert_int_equal(lp_params_choice(p, "objective", choices, 1, &c, NULL), LP_OK);
    assert_int_equal(c, 0);
    lp_params_parse(p, "objective=poisson", NULL);
    assert_int_equal(lp_params_choice(p, "objective", choices, 1, &c, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "binary, regression"));

    const char *known[] = {"max_depth", "learning_rate", NULL};
    assert_int_equal(lp_params_check_unknown(p, "gbdt", known, &err), LP_EINVAL);
    assert_string_equal(err.msg,
                        "unknown parameter 'objective' for gbdt (known: max_depth, learning_rate)");

    lp_params *q = lp_params_clone(p);
    assert_string_equal(lp_params_get(q, "learning_rate"), "0.05");
    char *j = lp_params_to_json(q);
    assert_non_null(strstr(j, "\"learning_rate\":0.05"));
    assert_non_null(strstr(j, "\"objective\":\"poisson\""));
    free(j);
    bool b;
    lp_params_parse(q, "early_stop=yes", NULL);
    assert_int_equal(lp_params_bool(q, "early_stop", false, &b, NULL), LP_OK);
    assert_true(b);
    lp_params_free(q);
    lp_params_free(p);
    lp_params_free(NULL);

    lp_model_kind k;
    assert_int_equal(lp_model_kind_parse("gbdt", &k, NULL), LP_OK);
    assert_int_equal(k, LP_MODEL_KIND_GBDT);
    assert_int_equal(lp_model_kind_parse("svm", &k, &err), LP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_params)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
