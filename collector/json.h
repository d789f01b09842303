/*
 * json — a small streaming JSON writer onto a FILE*.  Strings are escaped per
 * RFC 8259 and invalid UTF-8 is replaced by U+FFFD, so whatever bytes an
 * agent sent, the output parses.  Commas, colons and indentation are handled
 * here; callers only say begin/end/key/value.  Not thread-safe.
 */
#ifndef PA_JSON_H
#define PA_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 32

typedef struct json {
    FILE *f;
    int depth;
    int pretty_depth; /* containers opened below this depth get one item per line */
    int after_key;
    unsigned char has_items[JSON_MAX_DEPTH];
} json_t;

/* pretty_depth 0 = everything on one line. */
void json_init(json_t *j, FILE *f, int pretty_depth);

void json_obj_begin(json_t *j);
void json_obj_end(json_t *j);
void json_arr_begin(json_t *j);
void json_arr_end(json_t *j);
void json_key(json_t *j, const char *key);

void json_str(json_t *j, const char *s); /* NULL writes null */
void json_u64(json_t *j, uint64_t v);
void json_i64(json_t *j, int64_t v);
void json_bool(json_t *j, int v);
void json_null(json_t *j);
/* A value already formatted as JSON (e.g. an array text); NULL writes null. */
void json_raw(json_t *j, const char *text);

/* ["a", "b"] for n strings, as one malloc'ed line (caller frees); NULL when
 * out of memory. */
char *json_array_text(char *const *v, size_t n);

/* Write s as a quoted, escaped JSON string (no comma handling). */
void json_write_string(FILE *f, const char *s);

#endif
