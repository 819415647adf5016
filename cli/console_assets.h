/*
 * console_assets.h - the web console's static files, embedded in the `lepton` binary at build
 * time: cmake/embed.cmake turns every file of cli/console/ into a byte array of the generated
 * console_assets.c (in the build folder). Paths are the URL paths ("/app.js"); the bytes are
 * followed by one NUL that len does not count.
 */
#ifndef LEPTON_CLI_CONSOLE_ASSETS_H
#define LEPTON_CLI_CONSOLE_ASSETS_H

#include <stddef.h>

typedef struct console_asset {
    const char *path;         /* "/index.html" */
    const char *content_type; /* "text/html; charset=utf-8" */
    const unsigned char *data;
    size_t len;
} console_asset;

extern const console_asset console_assets[];
extern const size_t console_n_assets;

#endif
