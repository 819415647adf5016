/*
 * test_dx_models.c - lepton-diagnosis's text and tabular models (dx_text.c, dx_tabular.c) on
 * seeded synthetic data: calibrated probabilities equal softmax(logit / T) with the card's
 * temperature, a save / load round trip answers bit for bit the same, token contributions add
 * up to the logit for binary and multiclass models and both signs, a text with no known word
 * abstains as out of distribution, bad inputs and bad files are refused with a message; the
 * tabular model's C comes from its grid by cross-validation and generalizes.
 */
#include "lp_test.h"

#include "dx.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* base + sum of token contributions vs the logit: the same float products summed in double
 * in a different order. */
#define EXPL_TOL 1e-9

static const char *WORDS[3][4] = {{"fever", "cough", "throat", "sneezing"},
                                  {"rash", "itchy", "scaly", "patches"},
                                  {"chest", "palpitations", "breathless", "dizzy"}};
static const char *LABELS[3] = {"cold", "psoriasis", "heart"};

/* A CSV of n texts over the first k classes (seeded); caller frees the path. */
static char *write_texts(const char *name, int k, int n, uint64_t seed, const char *extra_label)
{
    char *path = lp_test_tmpfile(name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    lp_rng r;
    lp_rng_seed(&r, seed);
    fprintf(f, "id,text,label\n");
    for (int i = 0; i < n; i++) {
        int c = i % k;
        fprintf(f, "%d,\"I have %s and %s since monday\",%s\n", i, WORDS[c][lp_rng_below(&r, 4)],
                WORDS[c][lp_rng_below(&r, 4)], LABELS[c]);
    }
    if (extra_label)
        fprintf(f, "%d,I have fever,%s\n", n, extra_label);
    fclose(f);
    return path;
}

static dx_text_model *train_text(int k, char **path_out)
{
    char *path = write_texts(k == 2 ? "dx_t2.csv" : "dx_t3.csv", k, 90, 11, NULL);
    dx_train_opts o = dx_train_opts_default();
    o.valid_frac = 0.3;
    dx_text_model *m = NULL;
    lp_err err;
    if (dx_text_train(path, NULL, "text", "label", &o, &m, &err))
        fail_msg("text train: %s", lp_err_text(&err));
    if (path_out)
        *path_out = path;
    else
        free(path);
    return m;
}

static double card_temperature(const dx_text_model *m)
{
    cJSON *c = cJSON_Parse(dx_text_model_card(m));
    double T = cJSON_GetNumberValue(
        cJSON_GetObjectItem(cJSON_GetObjectItem(c, "calibration"), "temperature"));
    cJSON_Delete(c);
    return T;
}

static void check_explanations(const dx_text_model *m, const char *text)
{
    dx_answer a;
    lp_err err;
    assert_int_equal(dx_text_predict(m, text, &a, &err), LP_OK);
    double T = card_temperature(m), logit[64];
    assert_true(T > 0);
    for (size_t c = 0; c < a.k; c++) {
        dx_text_expl e;
        assert_int_equal(dx_text_explain(m, text, c, &e, &err), LP_OK);
        double s = e.base;
        for (size_t i = 0; i < e.n; i++)
            s += e.tokens[i].contribution;
        assert_true(fabs(s - e.logit) < EXPL_TOL);
        logit[c] = e.logit;
        dx_text_expl_clear(&e);
    }
    /* calibrated probabilities are softmax(z / T): log(p_c / p_0) = (z_c - z_0) / T, where the
     * explained logits are z_c (multiclass) or +-m, the log-odds (binary: z = [0, m]) */
    for (size_t c = 1; c < a.k; c++) {
        double want = (logit[c] - logit[0]) / T * (a.k == 2 ? 0.5 : 1.0);
        assert_true(fabs(log(a.probs[c] / a.probs[0]) - want) < 1e-6);
    }
}

static void test_text_multiclass(void **state)
{
    (void)state;
    char *path;
    dx_text_model *m = train_text(3, &path);
    assert_int_equal(dx_text_model_classes(m), 3);
    dx_answer a;
    lp_err err;
    assert_int_equal(dx_text_predict(m, "itchy scaly rash on my arms", &a, &err), LP_OK);
    assert_string_equal(a.labels[a.order[0]], "psoriasis");
    check_explanations(m, "I have chest palpitations and a cough");
    /* the class words carry the explanation; words of every text ("have") do not dominate */
    size_t pso = 0; /* classes are sorted: cold, heart, psoriasis */
    while (strcmp(dx_text_model_class(m, pso), "psoriasis") != 0)
        pso++;
    dx_text_expl e;
    assert_int_equal(dx_text_explain(m, "I have itchy rash", pso, &e, &err), LP_OK);
    double itchy = 0, have = 0;
    for (size_t i = 0; i < e.n; i++) {
        if (strcmp(e.tokens[i].token, "itchy") == 0)
            itchy = e.tokens[i].contribution;
        if (strcmp(e.tokens[i].token, "have") == 0)
            have = e.tokens[i].contribution;
    }
    assert_int_equal(e.n, 3); /* have, itchy, rash ("I" is one letter: not a token) */
    assert_true(itchy > 0 && itchy > fabs(have));
    dx_text_expl_clear(&e);
    dx_eval ev;
    assert_int_equal(dx_text_eval(m, path, NULL, NULL, &ev, &err), LP_OK);
    assert_int_equal(ev.n, 90);
    assert_true(ev.accuracy > 0.95);
    free(path);
    dx_text_model_free(m);
}

static void test_text_binary_signs(void **state)
{
    (void)state;
    dx_text_model *m = train_text(2, NULL);
    assert_int_equal(dx_text_model_classes(m), 2);
    check_explanations(m, "fever and rash");
    lp_err err;
    dx_text_expl e0, e1;
    assert_int_equal(dx_text_explain(m, "fever and rash", 0, &e0, &err), LP_OK);
    assert_int_equal(dx_text_explain(m, "fever and rash", 1, &e1, &err), LP_OK);
    assert_true(fabs(e0.logit + e1.logit) < EXPL_TOL); /* log-odds of 0 = -(log-odds of 1) */
    for (size_t i = 0; i < e0.n; i++)
        assert_true(fabs(e0.tokens[i].contribution + e1.tokens[i].contribution) < EXPL_TOL);
    dx_text_expl_clear(&e0);
    dx_text_expl_clear(&e1);
    dx_text_model_free(m);
}

static void test_text_roundtrip_and_ood(void **state)
{
    (void)state;
    dx_text_model *m = train_text(3, NULL);
    char *file = lp_test_tmpfile("dx_t3.lpm");
    lp_err err;
    assert_int_equal(dx_text_model_save(m, file, &err), LP_OK);
    dx_text_model *l = NULL;
    assert_int_equal(dx_text_model_load(file, &l, &err), LP_OK);
    assert_string_equal(dx_text_model_version(l), dx_text_model_version(m));
    assert_string_equal(dx_text_model_card(l), dx_text_model_card(m));
    const char *texts[] = {"sneezing and a sore throat", "dizzy", "rash rash rash cough"};
    for (int t = 0; t < 3; t++) {
        dx_answer a, b;
        assert_int_equal(dx_text_predict(m, texts[t], &a, &err), LP_OK);
        assert_int_equal(dx_text_predict(l, texts[t], &b, &err), LP_OK);
        assert_memory_equal(a.probs, b.probs, a.k * sizeof a.probs[0]);
        assert_int_equal(a.abstain, b.abstain);
    }
    dx_answer a;
    assert_int_equal(dx_text_predict(l, "J'ai de la fi\xc3\xa8vre et une toux", &a, &err), LP_OK);
    assert_true(a.abstain && a.out_of_dist);
    assert_non_null(strstr(a.reason, "vocabulary"));
    assert_true(a.ood == 1.0);
    assert_int_equal(dx_text_predict(l, "  \n", &a, &err), LP_EINVAL);
    assert_int_equal(dx_text_predict(l, "bad \xc3\x28 byte", &a, &err), LP_EPARSE);
    dx_text_expl e;
    assert_int_equal(dx_text_explain(l, "fever", 3, &e, &err), LP_EINVAL);
    dx_text_model_free(l);
    dx_text_model_free(m);
    /* a truncated file and a model that is not a text model */
    size_t len = 0;
    uint8_t *bytes = NULL;
    assert_int_equal(lp_file_read(file, &bytes, &len, &err), LP_OK);
    lp_test_write(file, bytes, len / 2);
    free(bytes);
    assert_int_not_equal(dx_text_model_load(file, &l, &err), LP_OK);
    assert_null(l);
    free(file);
}

static void test_text_bad_training_input(void **state)
{
    (void)state;
    char *path = write_texts("dx_t_bad.csv", 3, 30, 3, NULL);
    dx_train_opts o = dx_train_opts_default();
    dx_text_model *m = NULL;
    lp_err err;
    assert_int_equal(dx_text_train(path, NULL, "symptoms", "label", &o, &m, &err), LP_ENOTFOUND);
    assert_non_null(strstr(lp_err_text(&err), "symptoms"));
    assert_null(m);
    /* evaluation on a file with a label the model never saw names it */
    char *p2 = write_texts("dx_t_unseen.csv", 3, 30, 4, "migraine");
    o.valid_frac = 0.3;
    assert_int_equal(dx_text_train(path, NULL, "text", "label", &o, &m, &err), LP_OK);
    dx_eval ev;
    assert_int_equal(dx_text_eval(m, p2, NULL, NULL, &ev, &err), LP_EINVAL);
    assert_non_null(strstr(lp_err_text(&err), "migraine"));
    dx_text_model_free(m);
    free(path);
    free(p2);
}

/* C from the grid on the validation split and the refit on every row, or a given C and the
 * split's training part: the card says which. */
/* Without column names given: a Symptoms,Diagnosis file is read by those names (the card keeps
 * them), a file of the same rows as text,label evaluates the same, a named column that is not
 * there is an error and never guessed, and three unnamed columns are not guessed either. */
static void test_text_column_guess(void **state)
{
    (void)state;
    char *path = write_texts("dx_t_guess_src.csv", 3, 60, 5, NULL);
    char *renamed = lp_test_tmpfile("dx_t_guess.csv");
    FILE *in = fopen(path, "r"), *out = fopen(renamed, "w");
    assert_non_null(in);
    assert_non_null(out);
    char line[256];
    assert_non_null(fgets(line, sizeof line, in)); /* id,text,label */
    fputs("Symptoms,Diagnosis\n", out);
    while (fgets(line, sizeof line, in))
        fputs(strchr(line, ',') + 1, out); /* the id left out: two columns */
    fclose(in);
    fclose(out);
    dx_train_opts o = dx_train_opts_default();
    o.valid_frac = 0.3;
    dx_text_model *m = NULL;
    lp_err err;
    assert_int_equal(dx_text_train(renamed, NULL, NULL, NULL, &o, &m, &err), LP_OK);
    cJSON *c = cJSON_Parse(dx_text_model_card(m));
    cJSON *td = cJSON_GetObjectItem(c, "training_data");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(td, "text_column")), "Symptoms");
    assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(td, "label_column")),
                        "Diagnosis");
    cJSON_Delete(c);
    dx_eval a, b;
    assert_int_equal(dx_text_eval(m, renamed, NULL, NULL, &a, &err), LP_OK);
    assert_int_equal(dx_text_eval(m, path, NULL, NULL, &b, &err), LP_OK); /* id,text,label */
    assert_int_equal(a.n, 60);
    assert_int_equal(b.n, 60);
    assert_true(a.accuracy == b.accuracy);
    /* columns named at eval override the training file's, and are never guessed */
    assert_int_equal(dx_text_eval(m, path, "text", "label", &b, &err), LP_OK);
    assert_int_equal(b.n, 60);
    assert_int_equal(dx_text_eval(m, path, "Symptoms", NULL, &b, &err), LP_ENOTFOUND);
    assert_non_null(strstr(lp_err_text(&err), "'Symptoms'"));
    dx_text_model_free(m);
    m = NULL;
    /* a column given by name is never guessed */
    assert_int_equal(dx_text_train(renamed, NULL, "text", NULL, &o, &m, &err), LP_ENOTFOUND);
    assert_non_null(strstr(lp_err_text(&err), "'text'"));
    /* three columns, none named like a text: the error names the columns */
    char *three = lp_test_tmpfile("dx_t_guess3.csv");
    out = fopen(three, "w");
    assert_non_null(out);
    fputs("a,b,c\n", out);
    for (int i = 0; i < 10; i++)
        fprintf(out, "x%d,fever %d,%s\n", i, i, i % 2 ? "flu" : "cold");
    fclose(out);
    assert_int_equal(dx_text_train(three, NULL, NULL, NULL, &o, &m, &err), LP_ENOTFOUND);
    assert_non_null(strstr(lp_err_text(&err), "a, b, c"));
    assert_null(m);
    free(path);
    free(renamed);
    free(three);
}

static void test_text_fit_choices(void **state)
{
    (void)state;
    char *path = write_texts("dx_tfit.csv", 3, 120, 21, NULL);
    for (int variant = 0; variant < 2; variant++) {
        dx_train_opts o = dx_train_opts_default();
        o.valid_frac = 0.3;
        if (variant == 1)
            o.text_c = 50, o.text_refit = false;
        dx_text_model *m = NULL;
        lp_err err;
        assert_int_equal(dx_text_train(path, NULL, "text", "label", &o, &m, &err), LP_OK);
        cJSON *c = cJSON_Parse(dx_text_model_card(m));
        const cJSON *model = cJSON_GetObjectItem(c, "model");
        const cJSON *data = cJSON_GetObjectItem(c, "training_data");
        const char *fam = cJSON_GetStringValue(cJSON_GetObjectItem(model, "family"));
        const char *by = cJSON_GetStringValue(cJSON_GetObjectItem(model, "C_chosen_by"));
        const char *fit = cJSON_GetStringValue(cJSON_GetObjectItem(model, "fit"));
        double ntr = cJSON_GetNumberValue(cJSON_GetObjectItem(data, "train_rows"));
        double nva = cJSON_GetNumberValue(cJSON_GetObjectItem(data, "valid_rows"));
        assert_non_null(fam);
        assert_non_null(by);
        assert_non_null(fit);
        if (variant == 0) {
            bool in_grid = strstr(fam, "C = 10)") || strstr(fam, "C = 100)") ||
                           strstr(fam, "C = 1000)") || strstr(fam, "C = 10000)");
            assert_true(in_grid);
            assert_non_null(strstr(by, "validation log-likelihood"));
            assert_true(strncmp(fit, "refit on every row", 18) == 0);
            assert_true(ntr == 120 && nva > 0 && nva < 120);
        } else {
            assert_non_null(strstr(fam, "C = 50)"));
            assert_string_equal(by, "given");
            assert_true(strncmp(fit, "the training rows", 17) == 0);
            assert_true(ntr + nva == 120 && nva > 0);
        }
        /* the refit model answers its own classes */
        dx_answer a;
        assert_int_equal(dx_text_predict(m, "I have rash and itchy since monday", &a, &err), LP_OK);
        assert_string_equal(a.labels[a.order[0]], "psoriasis");
        cJSON_Delete(c);
        dx_text_model_free(m);
    }
    free(path);
}

/* y = [x0 + 0.5 x1 + noise > 0], 400 rows; a held-out file from the same law. */
static char *write_tabular(const char *name, int n, uint64_t seed)
{
    char *path = lp_test_tmpfile(name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    lp_rng r;
    lp_rng_seed(&r, seed);
    fprintf(f, "row,x0,x1,x2,y\n");
    for (int i = 0; i < n; i++) {
        double x0 = lp_rng_normal(&r), x1 = lp_rng_normal(&r), x2 = lp_rng_normal(&r);
        int y = x0 + 0.5 * x1 + 0.3 * lp_rng_normal(&r) > 0;
        fprintf(f, "%d,%.4f,%.4f,%.4f,%s\n", i, x0, x1, x2, y ? "sick" : "well");
    }
    fclose(f);
    return path;
}

static void test_tabular_cv(void **state)
{
    (void)state;
    char *tr = write_tabular("dx_tab_train.csv", 400, 5), *te = write_tabular("dx_tab_test.csv",
                                                                               300, 6);
    dx_train_opts o = dx_train_opts_default();
    lp_model *m = NULL;
    dx_tabular_info in;
    lp_err err;
    assert_int_equal(dx_tabular_train(tr, NULL, "y", &o, &m, &in, &err), LP_OK);
    static const double grid[] = {0.01, 0.03, 0.1, 0.3, 1, 3, 10};
    bool in_grid = false;
    for (int g = 0; g < 7; g++)
        in_grid |= in.C == grid[g];
    assert_true(in_grid);
    assert_true(in.cv_accuracy > 0.85 && in.cv_accuracy <= 1);
    /* the temperature was fitted on the out-of-fold predictions, and a law with logistic noise
     * is one the model can be calibrated to */
    print_message("tabular: C %g, T %.3f, out-of-fold ECE %.4f -> %.4f\n", in.C, in.T,
                  in.ece_before, in.ece_after);
    assert_true(in.T >= DX_T_MIN && in.T <= DX_T_MAX && in.T != 1.0);
    assert_true(in.ece_after >= 0 && in.ece_after < 0.05);
    assert_true(in.ece_before >= 0 && in.ece_before < 1);
    assert_true(in.abstain_p == o.abstain_p);
    /* the section survives save / load */
    char *mp = lp_test_tmpfile("dx_tab.lpm");
    assert_int_equal(lp_model_save(m, mp, &err), LP_OK);
    lp_model *ml = NULL;
    assert_int_equal(lp_model_load(mp, &ml, &err), LP_OK);
    dx_tabular_info back;
    assert_int_equal(dx_tabular_info_get(ml, &back, &err), LP_OK);
    /* (cJSON prints 15 significant digits where that reads back within its tolerance) */
    assert_true(fabs(back.T - in.T) < 1e-12 && back.C == in.C && back.abstain_p == in.abstain_p &&
                fabs(back.ece_after - in.ece_after) < 1e-12);
    /* calibrated held-out probabilities: rows sum to 1, class order kept, ECE small */
    lp_frame *ft = NULL;
    assert_int_equal(lp_frame_read(te, NULL, &ft, &err), LP_OK);
    lp_predictions pr = {0};
    assert_int_equal(lp_model_predict(ml, ft, &pr, &err), LP_OK);
    assert_int_equal(pr.k, 2);
    double *raw = malloc(pr.n * 2 * sizeof *raw);
    memcpy(raw, pr.out, pr.n * 2 * sizeof *raw);
    dx_tabular_apply(&back, pr.out, pr.n, 2);
    int32_t *yt = malloc(pr.n * sizeof *yt);
    size_t jy = (size_t)lp_frame_find(ft, "y");
    for (size_t i = 0; i < pr.n; i++) {
        char buf[16];
        const char *lab = lp_column_cell_str(lp_frame_col(ft, jy), i, buf, sizeof buf);
        yt[i] = strcmp(lab, lp_model_class(ml, 1)) == 0;
        assert_true(fabs(pr.out[2 * i] + pr.out[2 * i + 1] - 1) < 1e-12);
        assert_true((raw[2 * i + 1] > raw[2 * i]) == (pr.out[2 * i + 1] > pr.out[2 * i]));
    }
    double ece, ece_raw;
    assert_int_equal(lp_metrics_ece(yt, pr.out, pr.n, 2, LP_METRICS_ECE_BINS_DEFAULT, &ece, &err),
                     LP_OK);
    assert_int_equal(lp_metrics_ece(yt, raw, pr.n, 2, LP_METRICS_ECE_BINS_DEFAULT, &ece_raw, &err),
                     LP_OK);
    print_message("tabular: held-out ECE %.4f -> %.4f (300 rows)\n", ece_raw, ece);
    assert_true(ece < 0.06 && ece < 0.5 * ece_raw);
    free(raw);
    free(yt);
    lp_predictions_clear(&pr);
    lp_frame_free(ft);
    /* a damaged section is an error, a missing one means T = 1 */
    assert_int_equal(lp_model_set_extra(ml, "dx.tabular", "{\"temperature\":0}", 17, &err),
                     LP_OK);
    assert_int_equal(dx_tabular_info_get(ml, &back, &err), LP_EFORMAT);
    lp_model_free(ml);
    free(mp);
    lp_frame *f = NULL;
    assert_int_equal(lp_frame_read(te, NULL, &f, &err), LP_OK);
    lp_eval ev;
    assert_int_equal(lp_model_evaluate(m, f, &ev, &err), LP_OK);
    assert_true(ev.accuracy > 0.85);
    /* the id column is not a feature */
    for (size_t j = 0; j < lp_model_n_inputs(m); j++)
        assert_string_not_equal(lp_model_input_name(m, j), "row");
    lp_frame_free(f);
    lp_model_free(m);
    m = NULL;
    assert_int_equal(dx_tabular_train(tr, NULL, "outcome", &o, &m, &in, &err),
                     LP_ENOTFOUND);
    char *tiny = write_tabular("dx_tab_tiny.csv", 6, 7);
    assert_int_equal(dx_tabular_train(tiny, NULL, "y", &o, &m, &in, &err), LP_EINVAL);
    assert_null(m);
    free(tr);
    free(te);
    free(tiny);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text_multiclass),
        cmocka_unit_test(test_text_binary_signs),
        cmocka_unit_test(test_text_roundtrip_and_ood),
        cmocka_unit_test(test_text_bad_training_input),
        cmocka_unit_test(test_text_fit_choices),
        cmocka_unit_test(test_text_column_guess),
        cmocka_unit_test(test_tabular_cv),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
