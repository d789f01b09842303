/*
 * symindex — the lookup indexes symtab.c keeps per module, and the module
 * record they hang off.  libdw's own lookups are linear (dwarf_getscopes
 * scans a whole CU, dwfl_module_addrinfo the whole symbol table: ~70 us and
 * ~190 us per uncached address measured here), so symtab builds, on first
 * use, a sorted index of each CU's functions and one of each module's
 * function symbols, and binary-searches them.  Internal to symtab.c.
 */
#ifndef PA_SYMINDEX_H
#define PA_SYMINDEX_H

#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_BUILD_ID 64 /* SHA-1 ids are 20 bytes; anything > 64 is bogus */

/* Per-CU index of the outermost code DIEs (functions), sorted by address.
 * Scanning a CU's top level on every lookup (what dwarf_getscopes does) is
 * linear in the CU size; the index makes an uncached lookup a binary search
 * plus a walk down one function's subtree. */
struct fn_range {
    Dwarf_Addr lo, hi;
    Dwarf_Die die; /* valid while the module's Dwarf lives */
};
struct cu_index {
    const void *key; /* the CU DIE's address in .debug_info, unique per CU */
    struct fn_range *r;
    size_t n, cap;
};

/* ELF function symbols of a module sorted by address, one per address.
 * dwfl_module_addrinfo() scans the whole symbol table on every call
 * (elfutils libdwfl/dwfl_module_addrsym.c): ~190 us per lookup measured in
 * libstdc++.so.6, which has no debuginfo on most systems. */
struct sym_ent {
    Dwarf_Addr lo, hi; /* runtime; a sizeless symbol ends with its section */
    const char *name;  /* in libelf's string data, lives with the Dwfl */
    int rank;          /* among aliases prefer global, then weak, then local */
    int sized;
};

struct module {
    char *path; /* as sent by the agent; also the frames' module string */
    uint8_t build_id[MAX_BUILD_ID];
    size_t build_id_len;
    uint64_t load_bias;
    uint64_t (*ranges)[2];
    size_t n_ranges;
    int state;
    Dwfl *dwfl;
    Dwfl_Module *mod;
    struct cu_index *cus; /* CUs looked at so far */
    size_t n_cus, cap_cus;
    struct sym_ent *syms;
    size_t n_syms, cap_syms;
    int syms_built;
};

/* Makes room for `need` elements of `elem` bytes in array p of capacity
 * *cap (doubling); returns the possibly moved array, NULL on ENOMEM (p is
 * then left untouched).  Returning the pointer avoids the type-punned
 * (void **) out-parameter idiom, which breaks strict aliasing. */
void *symtab_grow(void *p, size_t *cap, size_t need, size_t elem);

/* The index of the CU `cu` of module m, built on first use; NULL on ENOMEM. */
struct cu_index *symindex_cu(struct module *m, Dwarf_Die *cu);
/* The outermost code DIE containing pc, or NULL. */
Dwarf_Die *symindex_cu_find(struct cu_index *ci, Dwarf_Addr pc);
/* The name of the function symbol containing addr, or NULL; builds the
 * module's symbol index on first use. */
const char *symindex_sym_find(struct module *m, Dwarf_Addr addr);

#endif
