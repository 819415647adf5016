/*
 * modelio.h - what the model sub-commands (train, tune, pipeline, eval, predict) share:
 * --param lists, the drift reference attached at training time, registration, and printing
 * metrics.
 */
#ifndef LEPTON_CLI_MODELIO_H
#define LEPTON_CLI_MODELIO_H

#include "io.h"

/* Parse every "k=v" of l into a new lp_params (caller frees). */
lp_status cli_params(const arg_list *l, lp_params **out, lp_err *err);
/* Fit the monitor's drift reference on the model's inputs in train plus the validation scores
 * (as feature "_score") and attach it to m as the extra section "drift". */
lp_status cli_attach_drift(lp_model *m, const lp_frame *train, lp_err *err);
/* Register path in the registry db under name (kind, metrics and params from the header).
 * Prints "registered NAME version N in DB". */
lp_status cli_register(const lp_model *m, const char *db, const char *name, const char *path,
                       lp_err *err);
/* The "metrics.valid" object of the model's header, as JSON text (caller frees). */
char *cli_valid_metrics_json(const lp_model *m);
/* One line "accuracy 0.91  macro_f1 0.90 ..." of an evaluation. */
void cli_print_eval(FILE *out, const char *prefix, const lp_eval *e);

#endif
