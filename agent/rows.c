/*
 * rows.c — the sender's side of heap rows (rows.h): finding where a backlog
 * can be cut at a row boundary, and counting rows that are lost.  Sender
 * thread only; reads rings, never writes them.
 */
#include "rows.h"

#include <string.h>

static const uint8_t *skip_varint(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p & 0x80))
        p++;
    return p < end ? p + 1 : NULL;
}

/* Rows are ours (written by rows.h), so the walk only guards against running
 * off the end.  The number of varints after the tag depends only on the tag
 * (proto/wire.h). */
size_t pa_rows_walk(const uint8_t *p, size_t len, size_t limit, uint64_t *nrows)
{
    static const uint8_t nvarints[PA_WIRE_ROW_TAGS] = PA_WIRE_ROW_VARINTS_INIT;
    const uint8_t *s = p, *end = p + (len < limit ? len : limit), *ok = p;
    while (s < end) {
        unsigned nv = *s < PA_WIRE_ROW_TAGS ? nvarints[*s] : 0;
        const uint8_t *q = s + 1;
        if (!nv)
            break;
        for (unsigned i = 0; i < nv && q; i++)
            q = skip_varint(q, end);
        if (!q)
            break;
        s = ok = q;
        (*nrows)++;
    }
    return (size_t)(ok - p);
}
