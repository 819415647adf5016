/*
 * monitor_util.h - what the apps' GET /v1/monitor tests share (header-only, static inline, so
 * a test that uses one helper compiles the others away): fetch a JSON answer, find a feature's
 * drift row, read a number member. Each fails the running cmocka test with a message naming
 * what was missing. Include after http_client.c.
 */
#ifndef LP_TEST_MONITOR_UTIL_H
#define LP_TEST_MONITOR_UTIL_H

#include <cjson/cJSON.h>
#include <string.h>

/* GET path on 127.0.0.1:port; asserts a 200 with a JSON body and returns it (cJSON_Delete). */
static inline cJSON *get_json_at(unsigned port, const char *path)
{
    http_resp r;
    assert_int_equal(http_request(port, "GET", path, NULL, NULL, 0, &r), 200);
    cJSON *j = cJSON_Parse(r.body);
    assert_non_null(j);
    http_resp_free(&r);
    return j;
}

/* The member of mon's "drift" array whose "feature" is feature; fails the test when absent. */
static inline const cJSON *drift_of(const cJSON *mon, const char *feature)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(mon, "drift"))
    {
        const char *f = cJSON_GetStringValue(cJSON_GetObjectItem(it, "feature"));
        if (f && !strcmp(f, feature))
            return it;
    }
    fail_msg("no drift entry for '%s'", feature);
    return NULL;
}

/* The number member k of o; fails the test when it is missing or not a number. */
static inline double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItem(o, k);
    if (!cJSON_IsNumber(v))
        fail_msg("'%s' is not a number", k);
    return v->valuedouble;
}

#endif
