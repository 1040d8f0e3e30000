/* hash.h — FNV-1a over a C string, for the programs' small open-addressing tables
 * (symbol lookups): cheap, well spread on short names, no state. */
#ifndef KP_HASH_H
#define KP_HASH_H

#include <stdint.h>

static inline uint32_t kp_hash_str32(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

#endif
