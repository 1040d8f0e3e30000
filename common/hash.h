/*
 * hash.h — the one string hash of klinepipe: 64-bit FNV-1a (offset basis
 * 14695981039346656037, prime 1099511628211) over the bytes of a NUL-terminated string.
 *
 * Users: the in-memory symbol tables (producer/symbols.c, streamer/hub.c), the
 * inserter's batch index (inserter/batch.c, mixed with the open time there) and the
 * simulator's per-symbol seed (tests/sim/gen.c). None of them is stored on disk or sent
 * to Kafka (the producer's Kafka partitioner is librdkafka's own), so only the
 * simulator's values matter: they decide the simulated market of every symbol, which
 * runs and tests compare. Its copy started from 1469598103934665603, the standard basis
 * with its last digit lost; it keeps that start through kp_fnv1a_from, so its markets
 * stay what they were. The in-memory tables take the standard basis (only their slot
 * order changes, which nothing sees).
 */
#ifndef KP_HASH_H
#define KP_HASH_H

#include <stdint.h>

#define KP_FNV1A_BASIS UINT64_C(14695981039346656037)

/* FNV-1a of s continued from h (h = KP_FNV1A_BASIS: the plain hash). */
static inline uint64_t kp_fnv1a_from(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    return h;
}

static inline uint64_t kp_fnv1a(const char *s)
{
    return kp_fnv1a_from(KP_FNV1A_BASIS, s);
}

#endif
