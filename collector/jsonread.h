/*
 * jsonread — a small JSON reader (RFC 8259) for the collector's own files
 * (leaks.json, heap.json) read back by `perfagent diff`.  Builds a tree;
 * numbers keep their text so 64-bit counts stay exact.  Depth is capped
 * (JR_MAX_DEPTH) so a hostile file cannot exhaust the stack.
 */
#ifndef PA_JSONREAD_H
#define PA_JSONREAD_H

#include <stddef.h>
#include <stdint.h>

#define JR_MAX_DEPTH 64

typedef enum { JR_NULL, JR_FALSE, JR_TRUE, JR_NUM, JR_STR, JR_ARR, JR_OBJ } jr_kind_t;

typedef struct jr {
    jr_kind_t kind;
    char *s;          /* JR_STR: the decoded string (NUL-terminated); JR_NUM: its text */
    struct jr *items; /* JR_ARR, JR_OBJ: n values */
    char **keys;      /* JR_OBJ: n keys */
    size_t n;
} jr_t;

/* Parses text[0..len) into *out.  0, or -EINVAL with "offset N: why" in err,
 * or -ENOMEM.  *out is freed on error. */
int jr_parse(jr_t *out, const char *text, size_t len, char *err, size_t errlen);
/* Reads a whole file and parses it; errors name the path. */
int jr_read_file(jr_t *out, const char *path, char *err, size_t errlen);
void jr_free(jr_t *v);

/* The member key of obj, NULL when obj is no object or has none. */
const jr_t *jr_get(const jr_t *obj, const char *key);
/* A whole non-negative number: 0, or -EINVAL (missing, not a number,
 * negative, fractional, >= 2^64). */
int jr_u64(const jr_t *v, uint64_t *out);
/* The string, or NULL for anything else. */
const char *jr_str(const jr_t *v);

#endif
