/*
 * modelserver.h - `lepton serve`: a model server is a route table plus a hot-swapped model.
 * Holds the served model, its drift reference and live sketch, the prediction log, and the
 * conversion of JSON rows ({"col": value, ...}) into a frame with the model's input schema.
 */
#ifndef LEPTON_CLI_MODELSERVER_H
#define LEPTON_CLI_MODELSERVER_H

#include <cjson/cJSON.h>

#include "modelio.h"

/* One loaded model version; immutable once published through the swap. */
typedef struct served {
    lp_model *m;
    lp_drift *ref;         /* NULL when the file has no drift section */
    lp_drift_sketch *sk;   /* live counts against ref */
    char version[80];      /* "<file sha256 prefix>" */
    char path[1024];
    lp_predictor *pred;    /* the model prepared for rows without frames (cli/rowparse.h) */
    long *drift_j;         /* (inputs,) the drift feature of input j, or -1 */
    long score_j;          /* the drift feature "_score", or -1 */
    size_t n_adapters;     /* LoRA adapters bound to m (they point to it: they live and are
                              swapped with it) */
    char **adapter_names;  /* (n_adapters) */
    lp_lora **adapters;    /* (n_adapters) */
} served;

lp_status served_load(const char *path, served **out, lp_err *err);
/* Load adapters "NAME=FILE.lpa" (n) for s's model; an adapter for another model, a repeated
 * name or a malformed spec is an error naming it (LP_EINVAL), and s keeps none. */
lp_status served_load_adapters(served *s, const char *const *specs, size_t n, lp_err *err);
/* The adapter called name, or NULL. */
const lp_lora *served_adapter(const served *s, const char *name);
void served_free(served *s);

/* Rows (a JSON array of objects) into a frame of the model's inputs. Values: numbers, strings,
 * booleans or null (missing); an absent input is missing. Keys that are not inputs (an id, the
 * label, a column dropped at training) are skipped and their names appended once to the JSON
 * array `ignored` (may be NULL). Errors (LP_EINVAL) name the row and field:
 * "rows[3].amount: expected a number, got an object". */
/* Count rows[0..n) in the live drift sketch (a no-op without one), as
 * lp_drift_sketch_add_frame counts the same rows held in a frame. Thread-safe. */
void served_sketch_rows(const served *s, const lp_row_view *rows, size_t n);

lp_status rows_to_frame(const lp_model *m, const cJSON *rows, lp_frame **out, cJSON *ignored,
                        lp_err *err);

#endif
