/*
 * lp_test.c - shared test helpers (see lp_test.h).
 */
#include "lp_test.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void lp_test_skip(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("SKIP: ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    exit(77);
}

static const char *join(const char *envname, const char *fallback, const char *rel)
{
    static char buf[4096];
    const char *base = getenv(envname);
    if (!base)
        base = fallback;
    snprintf(buf, sizeof buf, "%s/%s", base, rel);
    return buf;
}

const char *lp_test_shared(const char *rel)
{
    const char *p = join("LEPTON_SHARED_DATA", "../shared/data", rel);
    return access(p, R_OK) == 0 ? p : NULL;
}

const char *lp_test_shared_or_skip(const char *rel)
{
    const char *p = lp_test_shared(rel);
    if (!p)
        lp_test_skip("shared data set %s not found (set LEPTON_SHARED_DATA)", rel);
    return p;
}

const char *lp_test_fixture(const char *rel)
{
    const char *p = join("LEPTON_FIXTURES", "tests/fixtures", rel);
    if (access(p, R_OK) != 0) {
        fprintf(stderr, "fixture %s not found\n", p);
        exit(1);
    }
    return p;
}

static char tmpdir_path[256];

static void rm_tree(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    char sub[1024];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        struct stat st;
        if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
            rm_tree(sub);
        else
            unlink(sub);
    }
    closedir(d);
    rmdir(path);
}

static void cleanup_tmpdir(void)
{
    if (tmpdir_path[0] && !getenv("LEPTON_KEEP_TMP"))
        rm_tree(tmpdir_path);
}

const char *lp_test_tmpdir(void)
{
    if (!tmpdir_path[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmpdir_path, sizeof tmpdir_path, "%s/lepton-test-XXXXXX", base ? base : "/tmp");
        if (!mkdtemp(tmpdir_path)) {
            perror("mkdtemp");
            exit(1);
        }
        atexit(cleanup_tmpdir);
    }
    return tmpdir_path;
}

char *lp_test_tmpfile(const char *name)
{
    const char *d = lp_test_tmpdir();
    size_t n = strlen(d) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", d, name);
    return p;
}

void lp_test_write(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

void lp_assert_close_(const double *got, const double *want, size_t n, double atol,
                      double rtol, const char *what, const char *file, int line)
{
    size_t first_bad = (size_t)-1, nbad = 0;
    double max_abs = 0, max_rel = 0, num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double g = got[i], w = want[i];
        bool bad;
        if (isnan(g) || isnan(w)) {
            bad = !(isnan(g) && isnan(w));
        } else {
            double d = fabs(g - w);
            if (d > max_abs)
                max_abs = d;
            if (w != 0 && d / fabs(w) > max_rel)
                max_rel = d / fabs(w);
            num += d * d;
            den += w * w;
            bad = d > atol + rtol * fabs(w);
        }
        if (bad) {
            if (first_bad == (size_t)-1)
                first_bad = i;
            nbad++;
        }
    }
    if (nbad) {
        double nmse = den > 0 ? num / den : num;
        print_error("%s: %zu of %zu elements differ; first at [%zu]: got %.9g want %.9g; "
                       "max abs %.3g, max rel %.3g, NMSE %.3g (atol %g, rtol %g)\n",
                       what, nbad, n, first_bad, got[first_bad], want[first_bad], max_abs,
                       max_rel, nmse, atol, rtol);
        _fail(file, line);
    }
}

typedef struct fx_entry {
    char *name;
    size_t rows, cols;
    double *vals;
    char **strs;
} fx_entry;

struct lp_fixture {
    fx_entry *e;
    size_t n;
};

lp_fixture *lp_fixture_load(const char *rel)
{
    const char *path = lp_test_fixture(rel);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    lp_fixture *fx = calloc(1, sizeof *fx);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[0] != '@')
            continue;
        char name[256];
        size_t a = 0, b = 0;
        fx->e = realloc(fx->e, (fx->n + 1) * sizeof *fx->e);
        fx_entry *e = &fx->e[fx->n++];
        memset(e, 0, sizeof *e);
        if (sscanf(line + 1, "%255s %zu %zu", name, &a, &b) < 2) {
            fprintf(stderr, "%s: bad fixture header: %s", path, line);
            exit(1);
        }
        char *colon = strstr(name, ":str");
        if (colon)
            *colon = '\0';
        for (size_t k = 0; k + 1 < fx->n; k++)
            if (!strcmp(fx->e[k].name, name)) {
                fprintf(stderr, "%s: fixture entry '%s' appears twice\n", path, name);
                exit(1);
            }
        if (colon) {
            e->name = strdup(name);
            e->rows = a;
            e->strs = calloc(a ? a : 1, sizeof(char *));
            for (size_t i = 0; i < a; i++) {
                len = getline(&line, &cap, f);
                if (len < 0) {
                    fprintf(stderr, "%s: %s truncated\n", path, name);
                    exit(1);
                }
                if (len && line[len - 1] == '\n')
                    line[--len] = '\0';
                e->strs[i] = strdup(line);
            }
        } else {
            e->name = strdup(name);
            e->rows = a;
            e->cols = b ? b : 1;
            size_t total = e->rows * e->cols;
            e->vals = malloc((total ? total : 1) * sizeof(double));
            for (size_t i = 0; i < total; i++) {
                char tok[64];
                if (fscanf(f, "%63s", tok) != 1) {
                    fprintf(stderr, "%s: %s truncated at %zu\n", path, name, i);
                    exit(1);
                }
                e->vals[i] = strtod(tok, NULL);
            }
        }
    }
    free(line);
    fclose(f);
    return fx;
}

void lp_fixture_free(lp_fixture *fx)
{
    if (!fx)
        return;
    for (size_t i = 0; i < fx->n; i++) {
        free(fx->e[i].name);
        free(fx->e[i].vals);
        if (fx->e[i].strs)
            for (size_t j = 0; j < fx->e[i].rows; j++)
                free(fx->e[i].strs[j]);
        free(fx->e[i].strs);
    }
    free(fx->e);
    free(fx);
}

static const fx_entry *fx_find(const lp_fixture *fx, const char *name)
{
    for (size_t i = 0; i < fx->n; i++)
        if (!strcmp(fx->e[i].name, name))
            return &fx->e[i];
    fprintf(stderr, "fixture entry '%s' not found\n", name);
    exit(1);
}

double *lp_fixture_array(const lp_fixture *fx, const char *name, size_t *rows, size_t *cols)
{
    const fx_entry *e = fx_find(fx, name);
    size_t total = e->rows * e->cols;
    double *out = malloc((total ? total : 1) * sizeof(double));
    memcpy(out, e->vals, total * sizeof(double));
    if (rows)
        *rows = e->rows;
    if (cols)
        *cols = e->cols;
    return out;
}

char **lp_fixture_strings(const lp_fixture *fx, const char *name, size_t *n)
{
    const fx_entry *e = fx_find(fx, name);
    if (n)
        *n = e->rows;
    return e->strs;
}

double *lp_test_load_numeric_csv(const char *path, size_t *rows, size_t *cols, char ***names)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = getline(&line, &cap, f);
    assert_true(len > 0);
    size_t nc = 1;
    for (char *p = line; *p; p++)
        nc += *p == ',';
    char **nm = calloc(nc, sizeof(char *));
    char *save = NULL, *tok = strtok_r(line, ",\r\n", &save);
    for (size_t j = 0; j < nc && tok; j++, tok = strtok_r(NULL, ",\r\n", &save))
        nm[j] = strdup(tok);
    size_t nr = 0, vcap = 1024;
    double *v = malloc(vcap * sizeof(double));
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[0] == '\n')
            continue;
        char *p = line;
        for (size_t j = 0; j < nc; j++) {
            char *end = strchr(p, j + 1 < nc ? ',' : '\n');
            if (!end)
                end = p + strlen(p);
            char cell[128];
            size_t n = (size_t)(end - p) < sizeof cell - 1 ? (size_t)(end - p) : sizeof cell - 1;
            memcpy(cell, p, n);
            cell[n] = '\0';
            if ((nr + 1) * nc > vcap) {
                vcap *= 2;
                v = realloc(v, vcap * sizeof(double));
            }
            char *e;
            double x = strtod(cell, &e);
            v[nr * nc + j] = (n == 0 || e == cell) ? NAN : x;
            p = *end ? end + 1 : end;
        }
        nr++;
    }
    free(line);
    fclose(f);
    *rows = nr;
    *cols = nc;
    if (names)
        *names = nm;
    else
        lp_test_free_names(nm, nc);
    return v;
}

void lp_test_free_names(char **names, size_t n)
{
    if (!names)
        return;
    for (size_t j = 0; j < n; j++)
        free(names[j]);
    free(names);
}
