/*
 * cs_topics.c - the `topics` sub-command: tokenize unlabelled utterances (lp_tokenizer, lower-
 * cased, English stop words and tokens seen in fewer than 2 utterances dropped), fit LDA
 * (lp_lda, collapsed Gibbs) and print each topic's top words and its most typical utterances
 * (highest theta). Output is plain text on stdout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cs.h"

static const char *const stop[] = {
    "a",     "about", "am",   "an",    "and", "any",  "are",  "as",     "at",    "be",    "been",
    "but",   "by",    "can",  "could", "did", "do",   "does", "for",    "from",  "get",   "had",
    "has",   "have",  "hi",   "hello", "how", "i",    "if",   "in",     "is",    "it",    "its",
    "just",  "me",    "my",   "need",  "of",  "on",   "or",   "please", "so",    "that",  "the",
    "there", "this",  "to",   "want",  "was", "we",   "what", "when",   "where", "which", "who",
    "why",   "will",  "with", "would", "you", "your", NULL};

static bool is_stop(const char *w)
{
    for (size_t i = 0; stop[i]; i++)
        if (!strcmp(stop[i], w))
            return true;
    return false;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cs_cmd_topics(int argc, char **argv)
{
    const char *data = NULL, *col = "text";
    lp_lda_opts lo = lp_lda_opts_default();
    for (int i = 2; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "lepton-customer-service topics: flag %s needs a value\n", f);
            return 2;
        }
        i++;
        if (!strcmp(f, "--data"))
            data = v;
        else if (!strcmp(f, "--text-col"))
            col = v;
        else if (!strcmp(f, "--k"))
            lo.k = (size_t)strtoul(v, NULL, 10);
        else if (!strcmp(f, "--iters"))
            lo.iters = (unsigned)strtoul(v, NULL, 10);
        else if (!strcmp(f, "--seed"))
            lo.seed = strtoull(v, NULL, 10);
        else {
            fprintf(stderr, "lepton-customer-service topics: unknown flag '%s'\n", f);
            return 2;
        }
    }
    if (!data) {
        fprintf(stderr, "lepton-customer-service topics: --data is required\n");
        return 2;
    }
    lp_err err = {0};
    if (lp_lda_opts_check(&lo, &err) != LP_OK) {
        fprintf(stderr, "error: %s\n", lp_err_text(&err));
        return 2;
    }
    cs_table t;
    if (cs_table_read(data, &t, &err) != LP_OK) {
        fprintf(stderr, "error: %s\n", lp_err_text(&err));
        return 1;
    }
    size_t jc, n = t.n_rows;
    lp_tokenizer *tk = NULL;
    lp_terms *toks = lp_calloc(n ? n : 1, sizeof(lp_terms));
    char **all = NULL;
    uint32_t **docs = lp_calloc(n ? n : 1, sizeof(uint32_t *));
    size_t *lens = lp_calloc(n ? n : 1, sizeof(size_t)), n_all = 0, V = 0;
    uint32_t *df = NULL;
    lp_lda *m = NULL;
    lp_status st = cs_table_require(&t, col, data, &jc, &err);
    if (st == LP_OK && (!toks || !docs || !lens))
        st = lp_err_set(&err, LP_ENOMEM, "topics: out of memory");
    if (st == LP_OK)
        st = lp_tokenizer_new(NULL, true, &tk, &err);
    for (size_t i = 0; st == LP_OK && i < n; i++) {
        const char *s = cs_table_cell(&t, i, jc);
        st = lp_tokenizer_run(tk, s, strlen(s), &toks[i], &err);
        n_all += toks[i].n;
    }
    /* vocabulary: distinct non-stop tokens, sorted */
    if (st == LP_OK && !(all = lp_mallocarray(n_all ? n_all : 1, sizeof(char *))))
        st = lp_err_set(&err, LP_ENOMEM, "topics: out of memory");
    size_t q = 0;
    for (size_t i = 0; st == LP_OK && i < n; i++)
        for (size_t k = 0; k < toks[i].n; k++)
            if (!is_stop(toks[i].v[k]))
                all[q++] = toks[i].v[k];
    if (st == LP_OK) {
        qsort(all, q, sizeof(char *), cmp_str);
        for (size_t i = 0; i < q; i++)
            if (V == 0 || strcmp(all[V - 1], all[i]))
                all[V++] = all[i];
        df = lp_calloc(V ? V : 1, sizeof(uint32_t));
        if (!df)
            st = lp_err_set(&err, LP_ENOMEM, "topics: out of memory");
    }
    for (size_t i = 0; st == LP_OK && i < n; i++) {
        if (!(docs[i] = lp_mallocarray(toks[i].n ? toks[i].n : 1, sizeof(uint32_t)))) {
            st = lp_err_set(&err, LP_ENOMEM, "topics: out of memory");
            break;
        }
        for (size_t k = 0; k < toks[i].n; k++) {
            char **hit = is_stop(toks[i].v[k])
                             ? NULL
                             : bsearch(&toks[i].v[k], all, V, sizeof(char *), cmp_str);
            if (hit)
                docs[i][lens[i]++] = (uint32_t)(hit - all);
        }
        for (size_t k = 0; k < lens[i]; k++) {
            bool first = true;
            for (size_t p = 0; p < k && first; p++)
                first = docs[i][p] != docs[i][k];
            df[docs[i][k]] += first;
        }
    }
    /* words in one utterance only carry no topic signal: drop them */
    for (size_t i = 0; st == LP_OK && i < n; i++) {
        size_t w = 0;
        for (size_t k = 0; k < lens[i]; k++)
            if (df[docs[i][k]] >= 2)
                docs[i][w++] = docs[i][k];
        lens[i] = w;
    }
    if (st == LP_OK)
        st = lp_lda_fit((const uint32_t *const *)docs, lens, n, V ? V : 1, &lo, &m, &err);
    for (size_t tp = 0; st == LP_OK && tp < lo.k; tp++) {
        uint32_t ids[10];
        size_t nw = lp_lda_top_words(m, tp, 10, ids);
        printf("topic %zu:", tp);
        for (size_t k = 0; k < nw; k++)
            printf(" %s", all[ids[k]]);
        printf("\n");
        size_t best[3] = {0}, nb = 0;
        for (size_t i = 0; i < n; i++) {
            if (!lens[i])
                continue;
            double th = lp_lda_doc_topic(m, i)[tp];
            size_t at = nb;
            while (at > 0 && th > lp_lda_doc_topic(m, best[at - 1])[tp])
                at--;
            if (at >= 3)
                continue;
            for (size_t r = (nb < 3 ? nb : 2); r > at; r--)
                best[r] = best[r - 1];
            best[at] = i;
            if (nb < 3)
                nb++;
        }
        for (size_t k = 0; k < nb; k++)
            printf("    e.g. %s\n", cs_table_cell(&t, best[k], jc));
    }
    lp_lda_free(m);
    for (size_t i = 0; i < n; i++) {
        if (toks)
            lp_terms_free(&toks[i]);
        if (docs)
            free(docs[i]);
    }
    free(toks);
    free(docs);
    free(lens);
    free(all);
    free(df);
    lp_tokenizer_free(tk);
    cs_table_free(&t);
    if (st != LP_OK) {
        fprintf(stderr, "error: %s\n", lp_err_text(&err));
        return 1;
    }
    return 0;
}
