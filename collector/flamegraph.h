/*
 * flamegraph — folded stacks in, one self-contained interactive SVG out.
 *
 * One renderer for every profile kind (cpu.folded, alloc.folded,
 * inuse.folded) and for differential graphs (perfagent diff).  Input is
 * folded stacks, root first ("a;b;c 123"); the unit only changes how numbers
 * are printed.  The SVG carries its own script and style (no network): click
 * to zoom, reset zoom, regex search with "Matched: N%", tooltips; the
 * fragment `#s=REGEX&z=NAME` replays a search and a zoom, and the script
 * writes its state onto the <svg> element (data-matched, data-zoom,
 * data-zoom-width) so a headless browser can check it.
 *
 * Frames narrower than 0.1% of the total (by default) are not drawn: their
 * value stays in their parent's box.  That bounds the file at about 1000
 * boxes per stack level whatever the number of stacks.  Output is a pure
 * function of the input (same lines, any order -> same bytes).
 */
#ifndef PA_FLAMEGRAPH_H
#define PA_FLAMEGRAPH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* One folded line: frames root first separated by ';', and its value.  The
 * same stack may appear several times (values are summed). */
typedef struct fg_line {
    const char *stack;
    uint64_t value;
} fg_line_t;

typedef struct fg_input {
    const fg_line_t *lines; /* the profile; B of a diff */
    size_t n_lines;
    const char *title; /* NULL: "Flame graph" */
    const char *unit;  /* "bytes" prints sizes; anything else "N <unit>"; NULL: samples */
    /* Differential graph when base is non-NULL: frames sized by lines (B),
     * red where a frame's value grew from base (A), blue where it shrank. */
    const fg_line_t *base;
    size_t n_base;
    int normalize; /* diff: scale A's values to B's total first */
    /* Smallest frame drawn, in millionths of the total; 0 = 1000 (0.1%). */
    unsigned min_ppm;
} fg_input_t;

/* Writes the SVG.  0, or -ENOMEM / -EIO (the stream failed). */
int flamegraph_write_svg(FILE *f, const fg_input_t *in);

/* ---- folded files ------------------------------------------------------- */

/* A parsed folded file: lines sorted frame by frame (';' before any other
 * byte, so a stack's descendants follow it), duplicates summed, zero values
 * dropped.  Strings point into `text`, which it owns. */
typedef struct fg_folded {
    fg_line_t *lines;
    size_t n;
    uint64_t total; /* sum of all values (fits: a larger sum is an error) */
    char *text;
} fg_folded_t;

#define FG_ERR_LEN 256

/* Parses text[0..len) (takes ownership of text, a malloc'd buffer of len + 1
 * bytes).  Each non-blank line is "STACK COUNT": COUNT is the digits after
 * the last space or tab, a whole number below 2^64; STACK is non-empty and
 * has no empty frame.  On error: -EINVAL with "line N: why" in err (or
 * -ENOMEM); *out is then empty and text freed. */
int fg_folded_parse(fg_folded_t *out, char *text, size_t len, char *err);
/* Reads and parses a file ("-" = stdin); errors name the path. */
int fg_folded_read(fg_folded_t *out, const char *path, char *err);
void fg_folded_free(fg_folded_t *f);

/* Sorts v[0..n) frame by frame and sums equal stacks in place; returns the
 * new count.  Used by the parser and the renderer. */
size_t fg_lines_merge(fg_line_t *v, size_t n);

#endif
