/*
 * round — puts one drain round of heap rows back into time order.
 *
 * The agent sends rows in rounds (see Batch.round_end in the proto): each
 * thread's rows arrive in the order the thread made them, but threads come
 * one after another, so a FREE by thread B can arrive before the ALLOC by
 * thread A of the block it frees, and two lifetimes of one reused address
 * can arrive interleaved.  Within a round the rows are buffered as runs (one
 * per HeapEvents chunk, each already in ticks order) and handed on merged by
 * ticks; across rounds no reordering is needed, because every row written
 * before a round began is sent in that round.
 */
#ifndef PA_ROUND_H
#define PA_ROUND_H

#include <stddef.h>
#include <stdint.h>

#include "decode.h"

typedef struct round round_t;

/* Called for each row, in ticks order; returns 0 or a negative errno. */
typedef int (*round_fn)(void *ctx, uint32_t tid, const heap_row_t *row);

round_t *round_new(void);
void round_free(round_t *r); /* accepts NULL */

/* Buffers rows[0..n) of thread tid as one run (copies them).  0 or -ENOMEM. */
int round_add(round_t *r, uint32_t tid, const heap_row_t *rows, size_t n);
size_t round_rows(const round_t *r);

/* Called (when not NULL) for a row a few places ahead of the one fn gets,
 * in the same run: the session prefetches that row's live-map slot, so the
 * cache miss of a big live heap overlaps the rows before it. */
typedef void (*round_pre_fn)(void *ctx, const heap_row_t *row);

/* Hands every buffered row to fn merged by ticks (ties: earlier run first),
 * then empties the buffer.  Stops at fn's first error. */
int round_flush(round_t *r, round_fn fn, round_pre_fn pre, void *ctx);

#endif
