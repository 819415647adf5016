/*
 * rowparse.h - the fast predict path of `lepton serve`: JSON rows straight into the flat row
 * views of the prepared predictor (lp_predictor, model.h), in per-thread scratch memory, and the
 * reply written as text without building a cJSON tree.
 *
 * Same contract as rows_to_frame (modelserver.h): the same accepted values, the same
 * conversions (a number for a categorical input becomes its "%.17g" text, a boolean for a
 * number 1/0, ...) and the same error messages, so a client cannot tell the paths apart.
 */
#ifndef LEPTON_CLI_ROWPARSE_H
#define LEPTON_CLI_ROWPARSE_H

#include <cjson/cJSON.h>

#include "lepton/lepton.h"

typedef struct row_scratch row_scratch;

/* This thread's scratch, created on first use and freed when the thread exits; it grows to the
 * largest request seen and is reused, so a steady stream of requests allocates nothing here.
 * NULL on allocation failure. */
row_scratch *row_scratch_get(void);
/* Free what a request much larger than usual grew (call after the reply is copied out). */
void row_scratch_trim(row_scratch *rs);
/* The predictor scratch held by rs (for lp_predictor_run). */
lp_predict_scratch *row_scratch_predict(row_scratch *rs);

/* Rows (a JSON array of n objects) into n row views of m's inputs, held by rs until the next
 * call on this thread. Strings point into the cJSON tree (which must outlive the views) or into
 * rs. Keys that are not inputs are listed once (at most 100) in rs (row_scratch_ignored).
 * Errors (LP_EINVAL) name the row and field: "rows[3].amount: expected a number, got an
 * object"; LP_ENOMEM. */
lp_status rows_parse(const lp_model *m, const cJSON *rows, row_scratch *rs,
                     const lp_row_view **views, size_t *n, lp_err *err);
/* The same from the raw body {"rows":[...]} (nothing else in it), without a cJSON tree: true
 * with the views, the values exactly those of rows_parse (numbers as strtod reads them); false,
 * for anything it does not take (another member, escapes in strings, nested values, a value
 * put_cell refuses, more than max_rows rows, malformed JSON, no memory), and the caller goes
 * through the checked path, which answers the error. The views' strings point into rs. */
bool rows_scan(const lp_model *m, const char *body, size_t len, size_t max_rows, row_scratch *rs,
               const lp_row_view **views, size_t *n);
/* The member names of the last rows_parse / rows_scan that were not inputs, in first-seen
 * order; valid as long as the views. */
size_t row_scratch_ignored(const row_scratch *rs, const char *const **names);

/* Output buffers in rs for n rows of k outputs: out (n, k), cls (n,). LP_ENOMEM. */
lp_status row_scratch_outputs(row_scratch *rs, size_t n, size_t k, double **out, int32_t **cls,
                              lp_err *err);

/* The prediction log's inputs hash of row v: MurmurHash3 x64-128 (Appleby's public-domain
 * reference, seed 0) as 32 hex digits, over the model inputs in schema order, each tagged: 'n'
 * and the 8 bytes of the double, 's' and the string with its NUL, 'm' for missing. So it does
 * not depend on key order, number spelling ("41" vs 41.0) or ignored fields. Not
 * cryptographic: it identifies inputs, it does not authenticate them (SHA-256 cost 1.4 us a
 * row, 4.6% of a serving thread, bench/RESULTS.md). Uses rs's buffer; no allocation once grown. */
void row_inputs_hash(row_scratch *rs, const lp_model *m, const lp_row_view *v, char hex[33]);

/* ---- reply text ---------------------------------------------------------------------------*/
/* Append s as a JSON string (lp_json_write_str: escaped as cJSON prints strings); NULL as "". */
void json_put_str(lp_buf *b, const char *s);
/* The reply buffer of rs, emptied (reused across requests). */
lp_buf *row_scratch_reply(row_scratch *rs);

#endif
