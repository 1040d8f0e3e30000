/* fastjson.h — allocation-free parse of a Binance kline event (the common case). */
#ifndef PROD_FASTJSON_H
#define PROD_FASTJSON_H

#include <stddef.h>
#include <jansson.h>
#include "kline.h"

/* 0 and *out filled when buf is a plain kline event that validates; -1 when it is
 * anything else (the caller then uses the general jansson path). */
int fastjson_kline(const char *buf, size_t len, kline_t *out);

/* The general path's loader for a message fastjson_kline did not take: a jansson tree
 * (caller json_decref()s it), or NULL with the reason in *err. Duplicate keys are
 * rejected, the rule of the fast path and of the codec (kline.c): parsers disagree on
 * which of two values wins, so a record that has two is refused everywhere. */
json_t *fastjson_load(const char *buf, size_t len, json_error_t *err);

#endif
