/*
 * commands.h - the sub-commands of `lepton`. X(name, function, summary); one file per
 * command (cmd_<name>.c) defines `int function(int argc, char **argv)` where argv[0] is the
 * sub-command's name. The return value is the process exit status.
 */
#ifndef LEPTON_CLI_COMMANDS_H
#define LEPTON_CLI_COMMANDS_H

#define LEPTON_COMMANDS(X)                                                          \
    X(ingest, cmd_ingest, "append a CSV/TSV/JSONL file to a SQLite table")          \
    X(query, cmd_query, "run a SQL query on a SQLite file, print or write rows")    \
    X(profile, cmd_profile, "profile a data file: types, counts, statistics, flags") \
    X(clean, cmd_clean, "de-duplicate, impute and treat outliers (reusable)")       \
    X(featurize, cmd_featurize, "turn raw columns into a numeric feature matrix")   \
    X(train, cmd_train, "train a model and save it as one .lpm file")              \
    X(tune, cmd_tune, "search hyper-parameters, re-fit the best and save it")     \
    X(pipeline, cmd_pipeline, "profile, clean, tune, train, evaluate, register")  \
    X(eval, cmd_eval, "evaluate a model on labelled data")                         \
    X(predict, cmd_predict, "predict raw rows with a saved model")                 \
    X(serve, cmd_serve, "serve a model over HTTP with monitoring")                 \
    X(monitor, cmd_monitor, "drift and live metrics of a served model, offline")    \
    X(registry, cmd_registry, "list, show and promote models in the model registry") \
    X(encoder, cmd_encoder, "install the MiniLM sentence encoder as one .lpm file")  \
    X(embed, cmd_embed, "embed a text column with a sentence encoder")             \
    X(finetune, cmd_finetune, "adapt a model to new data: lora, head, full, boost, warm") \
    X(up, cmd_up, "train the default models once, run and supervise all services")  \
    X(down, cmd_down, "stop `lepton up` and every service it started")             \
    X(status, cmd_status, "pid, port, health, restarts and model of each service")  \
    X(console, cmd_console, "serve the web console and proxy to the four services") \
    X(version, cmd_version, "print the version and build options")

#define LEPTON_CMD_DECL_(name, fn, summary) int fn(int argc, char **argv);
LEPTON_COMMANDS(LEPTON_CMD_DECL_)
#undef LEPTON_CMD_DECL_

#endif
