/*
 * symtab — address -> function/file:line/inline frames, with elfutils libdwfl.
 *
 * One symtab_t per traced process.  Modules are declared as the agent reported
 * them; a module's file is opened only if it is a regular ELF file whose
 * NT_GNU_BUILD_ID equals the one the agent sent (or, when the agent sent no
 * build-id, whose path is an absolute regular ELF file).  Separate debuginfo is
 * found under /usr/lib/debug (.build-id/xx/yyyy.debug and .gnu_debuglink).
 * Every (module, address) is resolved once and cached.  Not thread-safe.
 */
#ifndef PA_SYMTAB_H
#define PA_SYMTAB_H

#include <stddef.h>
#include <stdint.h>

typedef struct symtab symtab_t;

/* One frame of a resolved address.  An address inside inlined code yields
 * several frames: the innermost inlined function first, the function that
 * physically contains the address last.  Strings are owned by the symtab and
 * live until symtab_free(). */
typedef struct sym_frame {
    const char *function; /* demangled; "??" when unknown                   */
    const char *file;     /* source file, NULL when no line info             */
    int line;             /* 0 when unknown                                  */
    const char *module;   /* module path ("[unknown]" when no module)        */
    uint64_t address;     /* the runtime address that was looked up          */
    uint64_t offset;      /* address - load_bias (file vaddr), 0 if unknown  */
} sym_frame_t;

/* sysroot may be NULL; when set, module paths are looked up under it first. */
symtab_t *symtab_new(const char *sysroot);
void symtab_free(symtab_t *st); /* accepts NULL */

/* Declare a module mapped in the target.  `ranges` are [start,end) runtime
 * address pairs (n_ranges of them).  Returns 0 or -errno (-EINVAL on bad
 * arguments).  A module whose file is missing or does not match still
 * resolves to its path and offset, with function "??". */
int symtab_add_module(symtab_t *st, const char *path, const uint8_t *build_id,
                      size_t build_id_len, uint64_t load_bias,
                      const uint64_t (*ranges)[2], size_t n_ranges);

/* Resolve `address` (already adjusted: callers pass return_address - 1).
 * Writes up to `max` frames to `out`, innermost first; returns how many
 * (always >= 1 when max >= 1).  `out` strings are cached and stable. */
int symtab_resolve(symtab_t *st, uint64_t address, sym_frame_t *out, int max);

/* The module declared at addr (the newest, as symtab_resolve uses) and the
 * executable range that holds addr.  Strings and build_id live until
 * symtab_free().  0, or -ENOENT when no module covers addr. */
typedef struct sym_module_info {
    const char *path;
    const uint8_t *build_id;
    size_t build_id_len;
    uint64_t start, limit; /* [start, limit): runtime addresses */
    uint64_t load_bias;
} sym_module_info_t;
int symtab_module_at(symtab_t *st, uint64_t addr, sym_module_info_t *out);

#endif
