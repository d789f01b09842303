/*
 * diff — `perfagent diff A B -o DIR`: a differential flame graph (diff.svg)
 * and a table of the functions whose share of the profile changed most
 * (diff.txt), from two folded files or two report directories; on heap
 * snapshots (heap.json, leaks.json) also leakdiff.* and, with --suspects,
 * suspects.* (leakdiff.h).
 */
#ifndef PA_DIFF_H
#define PA_DIFF_H

#include <stdio.h>

#include "flamegraph.h"

/* One function's values in A and B: self (it is the leaf) and total (it is
 * anywhere on the stack, counted once per stack however often it recurses). */
typedef struct diff_fn {
    const char *name; /* not NUL-terminated; points into A's or B's text */
    size_t len;
    uint64_t a_self, a_total, b_self, b_total;
    uint32_t stamp; /* internal: the last line that counted its total */
} diff_fn_t;

typedef struct diff_table {
    diff_fn_t *v; /* in first-seen order */
    size_t n, cap;
    uint32_t *slots; /* hash slots: index + 1 into v, 0 = empty */
    size_t n_slots;
    uint64_t a_total, b_total;
} diff_table_t;

/* The per-function values of a and b (which must outlive the table). */
int diff_table_build(diff_table_t *t, const fg_folded_t *a, const fg_folded_t *b);
void diff_table_free(diff_table_t *t);

/* Share in % of a function's value in its profile (0 for an empty one). */
double diff_share(uint64_t v, uint64_t total);

/* Writes diff.txt: both tables (total and self share), the `top` largest
 * changes of each, largest |B% - A%| first, then by name; functions whose
 * share did not change are left out.  0 or -EIO. */
int diff_write_txt(FILE *f, const diff_table_t *t, const char *name_a, const char *name_b,
                   const char *unit, size_t top);

typedef struct diff_opts {
    const char *a, *b; /* folded files or report directories */
    const char *outdir;
    const char *title; /* NULL: "A -> B" */
    const char *unit;  /* NULL: from the file names (alloc/inuse.folded: bytes) */
    int normalize;
    /* --suspects: leak suspects (leakdiff.h) across paths[0..n_paths) */
    int suspects;
    char *const *paths;
    size_t n_paths;
} diff_opts_t;

/* Does the whole subcommand; prints what it wrote to stdout and one line per
 * problem to stderr.  0, or 1 when an input could not be read or an output
 * not written. */
int diff_run(const diff_opts_t *o);

/* "bytes" for alloc.folded / inuse.folded (what the reports measure in
 * bytes), else "samples". */
const char *fg_unit_for(const char *path);

#endif
