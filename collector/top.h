/*
 * top — a pprof -top / cProfile style table of folded stacks: for each
 * function its self value (stacks whose leaf it is), its cumulative value
 * (stacks it appears in at least once) and their shares of the total.
 *
 * Input is folded stacks, root first: "f1;f2;...;leaf COUNT", the format of
 * cpu.folded, alloc.folded and inuse.folded.  A function is the whole text of
 * a frame between ';' separators, compared byte for byte: "f", "f [mod]",
 * "[unknown]@0x1234" and "ns::K<int>::f(long) const" are each one function,
 * and "f" and "f [mod]" are two.  A recursive function counts once per stack
 * in its cumulative value (a;b;a;b 10 gives a and b cum 10, not 20), so no
 * cum exceeds the total.  Stacks with the value 0 are ignored.
 *
 * Output (top_print): a "total" line, a "showing" line, the column heads and
 * one row per function:
 *
 *     total 163472 bytes in 4 stacks, 11 functions
 *     showing 3 of 11 functions, by self
 *       self   self%    sum%    cum    cum%  function
 *     100000  61.17%  61.17% 100000  61.17%  leak_site_a
 *      28672  17.54%  78.71%  28672  17.54%  leak_site_c
 *      22000  13.46%  92.17%  22000  13.46%  inline_leaker
 *
 * (inuse.folded of tests/workloads/leaks.c, raw).  "stacks" counts the input
 * lines with a non-zero value (duplicate lines each count).
 *
 * self% and cum% are of the total; sum% is the running sum of self% down the
 * rows shown (whatever the order).  Percentages are rounded half up from the
 * exact integers, never summed from rounded values.  Bytes print as B, KiB,
 * MiB, GiB or TiB with two decimals (raw = exact integers); any other unit is
 * printed as exact integers.  Rows are sorted by self (or cum) descending,
 * ties by function name (strcmp).  An input with no non-zero stack prints the
 * heads and the line "no samples".
 *
 * `perfagent top` (top_main) reads a file's lines as "STACK COUNT": the count
 * is after the last space (frames may hold spaces), a decimal below 2^64.
 * Blank lines are skipped and a trailing '\r' is dropped; anything else that
 * does not fit is an error naming file:line.
 */
#ifndef PA_TOP_H
#define PA_TOP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One folded line: "f1;f2;...;leaf" and its value. */
typedef struct top_input {
    const char *stack;
    uint64_t value;
} top_input_t;

typedef enum top_sort { TOP_SORT_SELF, TOP_SORT_CUM } top_sort_t;

typedef struct top_opts {
    const char *unit; /* "bytes" (human-readable unless raw), "samples", ... */
    size_t limit;     /* rows shown; 0 = all */
    top_sort_t sort;
    int raw;          /* bytes as exact integers */
} top_opts_t;

typedef struct top_row {
    const char *name; /* the frame text, NUL-terminated, owned by top_t */
    uint64_t self, cum;
} top_row_t;

typedef struct top top_t;

top_t *top_new(void);      /* NULL when out of memory */
void top_free(top_t *t);   /* accepts NULL */

/* Adds one stack of len bytes (no NUL needed).  0, -EINVAL for an empty
 * stack or an empty frame ("a;;b", ";a", "a;"), -EOVERFLOW when the total
 * would pass UINT64_MAX (nothing is added then), -ENOMEM. */
int top_add(top_t *t, const char *stack, size_t len, uint64_t value);

uint64_t top_total(const top_t *t);
size_t top_stacks(const top_t *t); /* stacks added with a non-zero value */

/* Every function, sorted as asked; *rows stays valid until the next
 * top_rows/top_add/top_free.  Returns the number of rows. */
size_t top_rows(top_t *t, top_sort_t sort, const top_row_t **rows);

/* The table as text (see the top of this file).  0 or -EIO. */
int top_print(FILE *f, top_t *t, const top_opts_t *o);

/* The same rows as one JSON object (exact integers, percentages as numbers
 * with two decimals):
 *   {"file":F,"kind":K,"unit":U,"total":N,"stacks":N,"functions":N,
 *    "sort":"self","rows":[{"function":S,"self":N,"self_pct":P,
 *    "sum_pct":P,"cum":N,"cum_pct":P},...]}
 * file and kind may be NULL (written as null).  0 or -EIO. */
int top_print_json(FILE *f, top_t *t, const top_opts_t *o, const char *file, const char *kind);

/* For the reports: the table of n_rows folded lines, sorted by self, at most
 * limit rows (0 = all), bytes human-readable.  0, -EINVAL (an empty frame),
 * -EOVERFLOW, -ENOMEM or -EIO. */
int top_write(FILE *f, const top_input_t *folded, size_t n_rows, const char *unit, size_t limit);

/* `perfagent top [OPTIONS] DIR|FILE`; argv[0] is "top".  Prints the table
 * on stdout.  Returns 0, 1 on a runtime error (message on stderr naming the
 * file and line) or 2 on a usage error (one line on stderr).  May be called
 * more than once (resets getopt). */
int top_main(int argc, char **argv);

#endif
