/*
 * render — symbolized stacks for every report kind (see render.c).
 */
#ifndef PA_RENDER_H
#define PA_RENDER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "report.h"

#define INLINE_MAX 64   /* inline frames per address */
#define UNKNOWN_FN "??" /* symtab's "no function" */
#define UNKNOWN_MOD "[unknown]"

/* A growable string; oom sticks once set. */
typedef struct sb {
    char *p;
    size_t n, cap;
    int oom;
} sb_t;

void sb_putn(sb_t *b, const char *s, size_t n);
/* Folded-stack frame text: ';' and control characters replaced. */
void sb_put_folded(sb_t *b, const char *s);
/* Text reports: control characters replaced, NULL as "?". */
void put_text(FILE *f, const char *s);
const char *base_name(const char *path);

typedef struct rframe {
    const char *function; /* as symtab said, "??" when unknown */
    const char *file;     /* NULL when unknown */
    int line;
    const char *module;
    uint64_t raw;    /* the address from the stack (a return address) */
    uint64_t offset; /* of raw inside its module, 0 when unknown */
} rframe_t;

typedef struct resolver {
    const rep_input_t *in;
    rframe_t *v;
    size_t n, cap;
    sym_frame_t tmp[INLINE_MAX];
} resolver_t;

/* Resolve every frame of st into r->v[0..r->n), leaf first, inline frames
 * expanded.  0 or -ENOMEM. */
int resolve_stack(resolver_t *r, const rep_stack_t *st);
/* The name a person sees: the function, else "[module+0xoffset]", else
 * "[unknown]"; buf holds the second form. */
const char *frame_name(const rframe_t *f, char *buf, size_t len);

int render_folded(resolver_t *r, int (*want)(const rep_stack_t *st, void *arg), void *arg,
                  char ***out);
void render_folded_free(char **folded, size_t n);

#endif
