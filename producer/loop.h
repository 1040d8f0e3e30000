/* loop.h — the run loops of kline-producer (loop.c). Each returns 0 when it ended as it
 * should (signal, end of a batch), -1 when the exit status must be 1. */
#ifndef PROD_LOOP_H
#define PROD_LOOP_H

/* Live streams with REST gap filling, or the --backfill batch: needs the symbol table. */
int loop_exchange(void);
/* --replay FILE|DIR; a CSV without a symbol (one -s, or in its file name) is a usage error (exit 2). */
int loop_replay(void);

#endif
