/*
 * report_trace — trace.json: one process's spans (connections, connect
 * calls, HTTP requests, getaddrinfo, waits, libpq calls) in the Chrome
 * Trace Event format, for Perfetto and chrome://tracing.
 */
#ifndef PA_REPORT_TRACE_H
#define PA_REPORT_TRACE_H

#include "report_int.h"

/* Whether the process made any span (socket events or libpq calls). */
int trace_reports_wanted(const rep_input_t *in);
/* 0 or -errno (-ENOMEM). */
int write_trace_json(FILE *f, ctx_t *c);

#endif
