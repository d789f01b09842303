/*
 * suppress — leak suppressions: stacks whose live blocks are not leaks (the
 * C and C++ runtimes' one-time allocations) are left out of the leak lists
 * (leaks.json, leaks.txt) and counted by rule in leaks.txt and summary.txt.
 *
 * Rules are LSan's: lines "leak:PATTERN" ('#' starts a comment line, blank
 * lines are skipped); PATTERN matches as a substring, '*' matches any run
 * of characters, a leading '^' / trailing '$' anchor it.  A stack is
 * suppressed when the pattern matches the function, the source file or the
 * module path of any of its frames.  The built-in rules come first, then
 * those of the file PERFAGENT_SUPPRESSIONS names.
 */
#ifndef PA_SUPPRESS_H
#define PA_SUPPRESS_H

#include <stddef.h>
#include <stdio.h>

#include "render.h"

typedef struct supp_rule {
    char *pattern;
    const char *origin; /* "built-in" or the file's path */
    /* Built-in only: when set, the rule matches a stack whose frames from the
     * leaf are all in a module containing `module`, up to a frame whose
     * function matches `pattern` (a library's own constructor, called by the
     * loader, when the library has no symbols to name it). */
    const char *module;
} supp_rule_t;

typedef struct supp {
    supp_rule_t *v;
    size_t n, n_builtin;
    char *file; /* the file's path, NULL without one */
} supp_t;

/* The process's rules: built-ins plus $PERFAGENT_SUPPRESSIONS, read once.
 * A file that cannot be read or has a bad line is left out whole with one
 * line on stderr (the reports go on with the built-ins).  NULL when out of
 * memory or after suppress_disable(). */
const supp_t *suppress_rules(void);

/* `--no-suppress`: suppress_rules() returns NULL from now on. */
void suppress_disable(void);

/* Parses LSan-format text into s (which the caller zeroed and fills with the
 * built-ins first, or not).  0, or -EINVAL with err naming the line. */
int suppress_parse(supp_t *s, const char *text, const char *origin, char *err, size_t errlen);
int suppress_add_builtins(supp_t *s);
void suppress_free(supp_t *s);

/* Whether the pattern matches s (substring, '*', '^', '$'). */
int suppress_match(const char *pattern, const char *s);

/* The 1-based index of the first rule matching any frame of r (resolved),
 * 0 when none. */
size_t suppress_stack(const supp_t *s, const resolver_t *r);

#endif
