/*
 * test_frame.c - the lp_frame container: adding columns, invariants of the missing-mask,
 * categorical dictionaries, row selection, append with dictionary remapping, renaming, error
 * cases.
 */
#include "lp_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static lp_frame *small_frame(void)
{
    lp_frame *f = lp_frame_new();
    double x[4] = {1.5, NAN, 3, -2};
    const char *cat[4] = {"red", "blue", NULL, "red"};
    const char *txt[4] = {"a b", NULL, "c", "d e f"};
    assert_int_equal(lp_frame_add_numeric(f, "x", LP_COL_KIND_FLOAT, x, NULL, 4, NULL), LP_OK);
    assert_int_equal(lp_frame_add_categorical(f, "color", cat, 4, NULL), LP_OK);
    assert_int_equal(lp_frame_add_text(f, "note", txt, 4, NULL), LP_OK);
    return f;
}

static void test_build_and_invariants(void **state)
{
    (void)state;
    lp_frame *f = small_frame();
    assert_int_equal(lp_frame_nrows(f), 4);
    assert_int_equal(lp_frame_ncols(f), 3);
    lp_column *x = lp_frame_col(f, 0), *c = lp_frame_col(f, 1), *t = lp_frame_col(f, 2);
    assert_int_equal(x->missing[1], 1);
    assert_true(isnan(x->num[1]));
    assert_int_equal(c->n_dict, 2);
    assert_string_equal(c->dict[c->codes[0]], "red");
    assert_int_equal(c->codes[0], c->codes[3]);
    assert_int_equal(c->codes[2], LP_CODE_MISSING);
    assert_int_equal(c->missing[2], 1);
    assert_null(t->text[1]);
    assert_int_equal(lp_column_count_missing(x), 1);
    assert_int_equal(lp_frame_find(f, "color"), 1);
    assert_int_equal(lp_frame_find(f, "nope"), -1);
    lp_err err;
    size_t j;
    assert_int_equal(lp_frame_require(f, "nope", "train.csv", &j, &err), LP_ENOTFOUND);
    assert_non_null(strstr(err.msg, "'nope'"));
    assert_non_null(strstr(err.msg, "x, color, note"));

    char buf[64];
    assert_string_equal(lp_column_cell_str(x, 0, buf, sizeof buf), "1.5");
    assert_string_equal(lp_column_cell_str(x, 2, buf, sizeof buf), "3");
    assert_string_equal(lp_column_cell_str(x, 1, buf, sizeof buf), "");
    assert_string_equal(lp_column_cell_str(c, 1, buf, sizeof buf), "blue");
    lp_frame_free(f);
}

static void test_errors(void **state)
{
    (void)state;
    lp_frame *f = small_frame();
    lp_err err;
    double y[3] = {1, 2, 3};
    assert_int_equal(lp_frame_add_numeric(f, "y", LP_COL_KIND_FLOAT, y, NULL, 3, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "3 rows"));
    double z[4] = {0};
    assert_int_equal(lp_frame_add_numeric(f, "x", LP_COL_KIND_FLOAT, z, NULL, 4, &err), LP_EINVAL);
    assert_non_null(strstr(err.msg, "duplicate"));
    assert_int_equal(lp_frame_add_numeric(f, "", LP_COL_KIND_FLOAT, z, NULL, 4, &err), LP_EINVAL);
    assert_int_equal(lp_frame_ncols(f), 3);
    lp_frame_free(f);
    lp_frame_free(NULL);
}

/* Renaming: the new name is found and the old one is not, with and without the name index
 * (more than 8 columns); a name another column has, an empty name, a bad index: errors */
static void test_rename(void **state)
{
    (void)state;
    lp_err err;
    for (int wide = 0; wide < 2; wide++) {
        lp_frame *f = small_frame();
        double z[4] = {0};
        char name[16];
        for (int j = 0; wide && j < 10; j++) {
            snprintf(name, sizeof name, "w%d", j);
            assert_int_equal(lp_frame_add_numeric(f, name, LP_COL_KIND_FLOAT, z, NULL, 4, &err),
                             LP_OK);
        }
        assert_int_equal(lp_frame_rename(f, 1, "colour", &err), LP_OK);
        assert_int_equal(lp_frame_find(f, "colour"), 1);
        assert_int_equal(lp_frame_find(f, "color"), -1);
        assert_string_equal(lp_frame_col(f, 1)->name, "colour");
        assert_int_equal(lp_frame_find(f, "note"), 2);
        assert_int_equal(lp_frame_rename(f, 1, "colour", &err), LP_OK); /* to itself */
        assert_int_equal(lp_frame_rename(f, 1, "x", &err), LP_EINVAL);
        assert_non_null(strstr(err.msg, "duplicate column name 'x'"));
        assert_int_equal(lp_frame_rename(f, 1, "", &err), LP_EINVAL);
        assert_int_equal(lp_frame_rename(f, 99, "y", &err), LP_EINVAL);
        assert_int_equal(lp_frame_find(f, "colour"), 1);
        lp_frame_free(f);
    }
}

/* Finding a column by a squeezed name: "User-ID" is "userid"; several matches are none */
static void test_find_like(void **state)
{
    (void)state;
    lp_frame *f = lp_frame_new();
    double z[2] = {0, 1};
    const char *cols[] = {"User-ID", "movie_Id", "Amount", "AMOUNT_x"};
    for (size_t j = 0; j < 4; j++)
        assert_int_equal(lp_frame_add_numeric(f, cols[j], LP_COL_KIND_FLOAT, z, NULL, 2, NULL),
                         LP_OK);
    const char *const user[] = {"userid", "uid", NULL}, *const item[] = {"movieid", NULL},
                      *const amount[] = {"amount", "amountx", NULL}, *const none[] = {"x", NULL};
    assert_int_equal(lp_frame_find_like(f, user), 0);
    assert_int_equal(lp_frame_find_like(f, item), 1);
    assert_int_equal(lp_frame_find_like(f, amount), -1); /* two columns match */
    assert_int_equal(lp_frame_find_like(f, none), -1);
    lp_frame_free(f);
}

static void test_take_and_append(void **state)
{
    (void)state;
    lp_frame *f = small_frame(), *g = NULL;
    size_t idx[3] = {3, 3, 0};
    assert_int_equal(lp_frame_take_rows(f, idx, 3, &g, NULL), LP_OK);
    assert_int_equal(lp_frame_nrows(g), 3);
    assert_true(lp_frame_col(g, 0)->num[0] == -2 && lp_frame_col(g, 0)->num[2] == 1.5);
    lp_column *gc = lp_frame_col(g, 1);
    assert_string_equal(gc->dict[gc->codes[1]], "red");
    assert_string_equal(lp_frame_col(g, 2)->text[0], "d e f");

    /* append a frame whose dictionary has another order: codes are remapped by value */
    lp_frame *h = lp_frame_new();
    double x[2] = {9, 10};
    const char *cat[2] = {"green", "blue"};
    const char *txt[2] = {"z", NULL};
    lp_frame_add_numeric(h, "x", LP_COL_KIND_FLOAT, x, NULL, 2, NULL);
    lp_frame_add_categorical(h, "color", cat, 2, NULL);
    lp_frame_add_text(h, "note", txt, 2, NULL);
    assert_int_equal(lp_frame_append(f, h, NULL), LP_OK);
    assert_int_equal(lp_frame_nrows(f), 6);
    lp_column *c = lp_frame_col(f, 1);
    assert_int_equal(c->n_dict, 3);
    assert_string_equal(c->dict[c->codes[4]], "green");
    assert_string_equal(c->dict[c->codes[5]], "blue");
    assert_int_equal(c->codes[5], c->codes[1]);
    assert_int_equal(lp_column_dict_find(c, "green"), c->codes[4]);

    size_t bad = 99;
    lp_frame *k = NULL;
    assert_int_equal(lp_frame_take_rows(f, &bad, 1, &k, NULL), LP_EINVAL);
    assert_null(k);
    lp_frame_free(f);
    lp_frame_free(g);
    lp_frame_free(h);
}

static void test_many_categories(void **state)
{
    (void)state;
    /* the hash index grows; every code must still be found */
    lp_column *c = lp_column_new("id", LP_COL_KIND_CATEGORICAL, 5000);
    char s[32];
    for (size_t i = 0; i < 5000; i++) {
        snprintf(s, sizeof s, "k%zu", i % 1777);
        assert_int_equal(lp_column_set_str(c, i, s, NULL), LP_OK);
    }
    assert_int_equal(c->n_dict, 1777);
    for (size_t k = 0; k < 1777; k++) {
        snprintf(s, sizeof s, "k%zu", k);
        assert_int_equal(lp_column_dict_find(c, s), (long)k);
    }
    lp_column *d = lp_column_clone(c);
    assert_int_equal(lp_column_dict_find(d, "k1000"), 1000);
    lp_column_free(c);
    lp_column_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_build_and_invariants),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_rename),
        cmocka_unit_test(test_find_like),
        cmocka_unit_test(test_take_and_append),
        cmocka_unit_test(test_many_categories),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
