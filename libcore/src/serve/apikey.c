/*
 * apikey.c - API keys: loading the key file of a service and matching a presented bearer token
 * in constant time.
 *
 * Keys never appear in messages or logs: errors name the file and the line number only.
 * Matching walks every key and every byte of each key, folding differences with OR, so the
 * time depends on the key and token lengths, not on the position of the first difference or on
 * which key matched.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lepton/serve.h"

#define LP_API_KEY_MIN 8
#define LP_API_KEY_MAX 256

void lp_api_keys_free(char **keys)
{
    if (!keys) return;
    for (size_t i = 0; keys[i]; i++) {
        /* wipe before free: a key should not linger in freed heap memory */
        volatile char *p = keys[i];
        for (size_t k = 0; p[k]; k++) p[k] = 0;
        free(keys[i]);
    }
    free(keys);
}

lp_status lp_api_keys_load(const char *path, char ***keys, size_t *n, lp_err *err)
{
    *keys = NULL;
    *n = 0;
    uint8_t *data = NULL;
    size_t len = 0;
    lp_status st = lp_file_read(path, &data, &len, err);
    if (st != LP_OK) return st;
    char **out = calloc(1, sizeof *out);
    size_t count = 0;
    if (!out) {
        free(data);
        return lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
    }
    size_t line = 0;
    char *p = (char *)data, *end = (char *)data + len;
    while (p < end) {
        line++;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        char *a = p, *b = le;
        while (a < b && isspace((unsigned char)*a)) a++;
        while (b > a && isspace((unsigned char)b[-1])) b--;
        p = nl ? nl + 1 : end;
        if (a == b || *a == '#') continue;
        size_t klen = (size_t)(b - a);
        bool ok = klen >= LP_API_KEY_MIN && klen <= LP_API_KEY_MAX;
        for (char *c = a; ok && c < b; c++) ok = *c > 0x20 && *c < 0x7f;
        if (!ok) {
            lp_api_keys_free(out);
            free(data);
            return lp_err_set(err, LP_EINVAL,
                              "%s line %zu: expected a key of %d..%d printable ASCII characters "
                              "without spaces",
                              path, line, LP_API_KEY_MIN, LP_API_KEY_MAX);
        }
        char **grown = lp_reallocarray(out, count + 2, sizeof *out);
        char *key = grown ? lp_strndup(a, klen) : NULL;
        if (!key) {
            lp_api_keys_free(grown ? grown : out);
            free(data);
            return lp_err_set(err, LP_ENOMEM, "%s: out of memory", path);
        }
        out = grown;
        out[count++] = key;
        out[count] = NULL;
    }
    /* the file held keys: wipe the copy we read */
    volatile uint8_t *w = data;
    for (size_t i = 0; i < len; i++) w[i] = 0;
    free(data);
    if (count == 0) {
        lp_api_keys_free(out);
        return lp_err_set(err, LP_EINVAL, "%s: no API keys (one key per line expected)", path);
    }
    *keys = out;
    *n = count;
    return LP_OK;
}

bool lp_api_key_match(const char *token, char *const *keys, size_t n)
{
    if (!token || !keys) return false;
    size_t tlen = strlen(token);
    unsigned found = 0;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *k = (const unsigned char *)keys[i];
        size_t klen = strlen(keys[i]);
        unsigned diff = (unsigned)(klen != tlen);
        for (size_t j = 0; j < klen; j++) {
            /* reading token[j % (tlen + 1)] stays in bounds whatever the lengths */
            diff |= k[j] ^ (unsigned char)token[j % (tlen + 1)];
        }
        found |= (unsigned)(diff == 0);
    }
    return found != 0;
}
