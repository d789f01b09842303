/*
 * fgtree — the call tree behind a flame graph (internal to flamegraph.c,
 * diff.c and their tests).  Built from merged folded lines (fg_lines_merge
 * order), so every node's children are in byte order of their names and the
 * node array is in depth-first pre-order: a parent always comes before its
 * children, which is the drawing order.
 */
#ifndef PA_FGTREE_H
#define PA_FGTREE_H

#include "flamegraph.h"

#define FG_NONE UINT32_MAX

typedef struct fg_node {
    const char *name; /* not NUL-terminated: name_len bytes */
    uint32_t name_len;
    uint32_t depth; /* root ("all") 0 */
    uint32_t parent, first_child, last_child, next_sibling;
    uint64_t total;  /* value of every stack through this node */
    uint64_t self;   /* value of the stacks ending here */
    uint64_t offset; /* left edge in value units: its earlier siblings' totals + parent's */
    double base;     /* diff: A's total at the same path (scaled), 0 when absent */
} fg_node_t;

typedef struct fg_tree {
    fg_node_t *v; /* v[0] is the root, named "all" */
    size_t n, cap;
    uint64_t total;
    uint32_t max_depth;
} fg_tree_t;

/* Builds the tree of lines, which must be in fg_lines_merge order without
 * duplicates.  0, -ENOMEM, or -EOVERFLOW when the values add up to 2^64 or
 * more (then *t is empty). */
int fg_tree_build(fg_tree_t *t, const fg_line_t *lines, size_t n);
void fg_tree_free(fg_tree_t *t);

/* Sets every node's base to a's total at the same path times scale. */
void fg_tree_set_base(fg_tree_t *t, const fg_tree_t *a, double scale);

/* Pixel edges of a node drawn in a plot `width` wide showing value units
 * [zoff, zoff + ztotal): left and right in hundredths of a pixel, rounded
 * the same way for every edge, so a child's box never leaves its parent's. */
long long fg_edge(uint64_t off, uint64_t zoff, uint64_t ztotal, double width);

#endif
