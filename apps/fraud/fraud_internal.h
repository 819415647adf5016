/*
 * fraud_internal.h - helpers shared by the fraud app's files (not part of its domain API).
 */
#ifndef LEPTON_APPS_FRAUD_INTERNAL_H
#define LEPTON_APPS_FRAUD_INTERNAL_H

#include "fraud.h"

/* FNV-1a 64 of s mixed with a seed h. */
uint64_t fraud_hash(const char *s, uint64_t h);
/* "1h", "1d", "7d", "30d" for a window in seconds. */
void fraud_window_label(double s, char *out, size_t cap);
/* Parse an ISO-8601 text or a number of epoch seconds. */
bool fraud_parse_time(const cJSON *v, double *out);

#endif
