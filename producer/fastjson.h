/* fastjson.h — allocation-free parse of a Binance kline event (the common case). */
#ifndef PROD_FASTJSON_H
#define PROD_FASTJSON_H

#include <stddef.h>
#include "kline.h"

/* 0 and *out filled when buf is a plain kline event that validates; -1 when it is
 * anything else (the caller then uses the general jansson path). */
int fastjson_kline(const char *buf, size_t len, kline_t *out);

#endif
