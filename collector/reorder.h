/*
 * reorder — how the collector puts heap rows back in time order, as far as
 * tests, front ends and the reports need to see it: the limits a session
 * applies and what it counted.  The rules themselves are in session_heap.c.
 *
 * (These would sit in session.h and report.h; they are kept apart so that
 * the change that introduced them left those headers untouched.)
 */
#ifndef PA_REORDER_H
#define PA_REORDER_H

#include <stdint.h>

#include "report.h"
#include "session.h"

/* Rows buffered per drain round before the round is applied in pieces (see
 * session_heap.c), and addresses the pending-free store may hold. */
#define REORDER_DEFAULT_ROUND_ROWS (UINT64_C(4) << 20)

typedef struct reorder_stats {
    uint64_t rounds;       /* round_end markers seen                          */
    uint64_t rounds_split; /* rounds over round_rows rows, applied in pieces  */
    uint64_t round_rows;   /* the limit in force                              */
    uint64_t pending_peak; /* most addresses held in the pending-free store   */
    uint64_t pending_max;  /* the store's capacity                            */
    uint64_t unplaceable;  /* rows the store had no room for: WARNING         */
    uint64_t rows_late;    /* ALLOCs older than a FREE already expired: WARNING */
} reorder_stats_t;

/* Limits for a session that has not been fed yet (0 = default for each).
 * The environment can set them for any session too, for tests and tuning:
 * PERFAGENT_COLLECTOR_ROUND_ROWS and PERFAGENT_COLLECTOR_PENDING_MAX.
 * Returns 0, -EBUSY once rows were fed, or -ENOMEM. */
int session_set_reorder_limits(session_t *s, uint64_t round_rows, uint64_t pending_max);

void session_get_reorder(const session_t *s, reorder_stats_t *out);

/* report_write() with the reorder counters (NULL = none): their WARNINGs go
 * into summary.txt and leaks.txt next to the drop warning. */
int report_write_ex(const rep_input_t *in, const reorder_stats_t *ro, const char *dir,
                    char **summary);

#endif
