/*
 * lp_test.h - what every Lepton test shares, on top of cmocka: locating data and fixtures,
 * skipping cleanly (exit 77), temporary files, and one numeric comparison helper that reports
 * the first failing index, max abs/rel error and NMSE.
 *
 * Include order for a test file: <stdarg.h> <stddef.h> <setjmp.h> <stdint.h> are pulled in
 * here before <cmocka.h>, so a test only includes "lp_test.h".
 */
#ifndef LP_TEST_H
#define LP_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lepton/lepton.h"

/* Exit 77 (ctest SKIP_RETURN_CODE) with a reason on stdout. */
_Noreturn void lp_test_skip(const char *fmt, ...);

/* Path of a file under $LEPTON_SHARED_DATA (e.g. "clinc150/train.tsv") in a static buffer,
 * or NULL when it does not exist. */
const char *lp_test_shared(const char *rel);
/* Like lp_test_shared but skips the whole test program when absent. */
const char *lp_test_shared_or_skip(const char *rel);
/* Path under $LEPTON_FIXTURES (static buffer; fails the test when missing). */
const char *lp_test_fixture(const char *rel);
/* A fresh temporary directory for this process (created once, removed at exit). */
const char *lp_test_tmpdir(void);
/* tmpdir/name in a new malloc'd string the caller frees. */
char *lp_test_tmpfile(const char *name);
/* Write bytes to path (fails the test on error). */
void lp_test_write(const char *path, const void *data, size_t len);

/* Compare got against want elementwise: |g - w| <= atol + rtol * |w| everywhere (NaN equals
 * NaN only when both are NaN). On failure print what, the first failing index, the max abs and
 * rel errors and NMSE, and fail the test. */
void lp_assert_close_(const double *got, const double *want, size_t n, double atol,
                      double rtol, const char *what, const char *file, int line);
#define lp_assert_close(got, want, n, atol, rtol, what) \
    lp_assert_close_((got), (want), (n), (atol), (rtol), (what), __FILE__, __LINE__)

/* Fixture files (text, written by the generators in tests/fixtures/):
 *   # comment lines (generator, versions)
 *   @name rows cols
 *   v v v ...           (rows*cols whitespace-separated numbers, row-major; nan allowed)
 *   @name:str n         (n lines of strings follow, one per line)
 * lp_fixture_array returns a malloc'd copy of the named numeric array (fails if absent). */
typedef struct lp_fixture lp_fixture;
lp_fixture *lp_fixture_load(const char *rel);
void lp_fixture_free(lp_fixture *fx);
double *lp_fixture_array(const lp_fixture *fx, const char *name, size_t *rows, size_t *cols);
/* Strings of a :str entry; the fixture owns them. */
char **lp_fixture_strings(const lp_fixture *fx, const char *name, size_t *n);

#endif

/* Load a plain numeric CSV (header line, ',' separators, no quoting; empty, NA or nan cells
 * become NaN) into a malloc'd (rows, cols) row-major array. *names gets cols malloc'd column
 * names (free with lp_test_free_names). For tests only: library code uses lp_frame_read. */
double *lp_test_load_numeric_csv(const char *path, size_t *rows, size_t *cols, char ***names);
void lp_test_free_names(char **names, size_t n);
