/*
 * leakdiff — `perfagent diff` on heap snapshots: what grew between two
 * moments (leakdiff.json, leakdiff.txt, leakdiff.svg), and the leak
 * suspects across three or more (suspects.json, suspects.txt).
 *
 * Inputs are heap.json files (a snapshot directory's) or leaks.json files (a
 * process's report directory's), or directories holding one (heap.json
 * first).  Stacks are matched by their symbolized frames (function, file,
 * line and module of every frame), never by stack id or address, so two runs
 * of one program compare.
 */
#ifndef PA_LEAKDIFF_H
#define PA_LEAKDIFF_H

#include <stddef.h>

/* Whether path is a heap input: a .json file, or a directory with heap.json
 * or leaks.json. */
int leakdiff_is_heap(const char *path);

/* leakdiff.json, leakdiff.txt and leakdiff.svg of a -> b into outdir (which
 * exists); prints each path written.  0, or 1 after a one-line message. */
int leakdiff_run(const char *a, const char *b, const char *outdir);

/* suspects.json and suspects.txt from the snapshots in paths[0..n) (n >= 3,
 * in time order), or from every NNN subdirectory of one directory (n = 1).
 * A suspect is a stack whose live bytes grew in every interval; ranked by
 * growth from the first snapshot to the last.  0, or 1 after a message. */
int leakdiff_suspects(char *const *paths, size_t n, const char *outdir);

#endif
