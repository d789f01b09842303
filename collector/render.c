/*
 * render — a symbolized stack as people read it: frames resolved through
 * symtab with inline frames expanded, display names, and the folded-stack
 * text (root first) that every profile kind (alloc, inuse, cpu)
 * writes and the flame graphs draw.  Escapes what came from the stream, so
 * an agent cannot forge lines in a report.
 */
#include "render.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- growable string ---------------------------------------------------- */

void sb_putn(sb_t *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* Folded-stack frame text: ';' separates frames and a newline ends a line, so
 * neither may appear inside a name (spaces are fine: the weight is after the
 * last space). */
void sb_put_folded(sb_t *b, const char *s)
{
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (c == ';')
            c = ':';
        else if ((unsigned char)c < 0x20 || c == 0x7f)
            c = '?';
        sb_putn(b, &c, 1);
    }
}

/* Text reports: strings from the stream must not break lines. */
void put_text(FILE *f, const char *s)
{
    if (!s) {
        fputs("?", f);
        return;
    }
    for (const char *p = s; *p; p++)
        fputc((unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

/* ---- symbolization ------------------------------------------------------- */


/* Resolve every frame of st, leaf first, inline frames expanded (innermost
 * first, as symtab returns them).  Return addresses are looked up at
 * address-1 so a call at the end of a function or before a noreturn call is
 * attributed to the caller's line, not the next one. */
int resolve_stack(resolver_t *r, const rep_stack_t *st)
{
    r->n = 0;
    for (uint32_t i = 0; i < st->n_frames; i++) {
        uint64_t raw = r->in->frames[st->frames_off + i];
        uint64_t look = (i == 0 && st->leaf_is_pc) || raw == 0 ? raw : raw - 1;
        int n = r->in->symtab ? symtab_resolve(r->in->symtab, look, r->tmp, INLINE_MAX) : 0;
        if (n <= 0) {
            r->tmp[0] = (sym_frame_t){.function = UNKNOWN_FN, .module = UNKNOWN_MOD};
            n = 1;
        }
        if (r->n + (size_t)n > r->cap) {
            size_t cap = r->cap ? r->cap * 2 : 64;
            while (cap < r->n + (size_t)n)
                cap *= 2;
            rframe_t *nv = realloc(r->v, cap * sizeof(*nv));
            if (!nv)
                return -ENOMEM;
            r->v = nv;
            r->cap = cap;
        }
        for (int k = 0; k < n; k++) {
            const sym_frame_t *sf = &r->tmp[k];
            r->v[r->n++] = (rframe_t){
                .function = sf->function ? sf->function : UNKNOWN_FN,
                .file = sf->file,
                .line = sf->line,
                .module = sf->module ? sf->module : UNKNOWN_MOD,
                .raw = raw,
                .offset = sf->offset ? sf->offset + (raw - look) : 0,
            };
        }
    }
    return 0;
}

/* The name a person sees: the function, else "[module+0xoffset]", else
 * "[unknown]". */
const char *frame_name(const rframe_t *f, char *buf, size_t len)
{
    if (f->function && strcmp(f->function, UNKNOWN_FN) != 0 && f->function[0])
        return f->function;
    if (f->module && strcmp(f->module, UNKNOWN_MOD) != 0 && f->module[0]) {
        snprintf(buf, len, "[%s+0x%" PRIx64 "]", base_name(f->module), f->offset);
        return buf;
    }
    return "[unknown]";
}

/* ---- folded text ----------------------------------------------------------- */

/* The folded text, root first, of every defined stack that want() keeps
 * (id 0 is "[no stack]"); *out[id] is NULL for the others. */
int render_folded(resolver_t *r, int (*want)(const rep_stack_t *st, void *arg), void *arg,
                  char ***out)
{
    const rep_input_t *in = r->in;
    char **folded;
    char nb[64];
    int rc;

    *out = NULL;
    if (!(folded = calloc(in->n_stacks ? in->n_stacks : 1, sizeof(*folded))))
        return -ENOMEM;
    for (size_t id = 0; id < in->n_stacks; id++) {
        const rep_stack_t *st = &in->stacks[id];
        if (!st->defined || !want(st, arg))
            continue;
        sb_t b = {0};
        if (id == 0) {
            sb_putn(&b, "[no stack]", 10);
        } else {
            if ((rc = resolve_stack(r, st)) < 0) {
                render_folded_free(folded, in->n_stacks);
                return rc;
            }
            if (st->truncated)
                sb_putn(&b, "[truncated]", 11);
            for (size_t k = r->n; k-- > 0;) {
                if (b.n)
                    sb_putn(&b, ";", 1);
                sb_put_folded(&b, frame_name(&r->v[k], nb, sizeof(nb)));
            }
            if (!b.n)
                sb_putn(&b, "[unknown]", 9);
        }
        if (b.oom) {
            free(b.p);
            render_folded_free(folded, in->n_stacks);
            return -ENOMEM;
        }
        folded[id] = b.p;
    }
    *out = folded;
    return 0;
}

void render_folded_free(char **folded, size_t n)
{
    if (!folded)
        return;
    for (size_t i = 0; i < n; i++)
        free(folded[i]);
    free(folded);
}
