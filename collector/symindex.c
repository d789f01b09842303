/*
 * symindex.c — see symindex.h.
 */
#include "symindex.h"
#include "util.h"

#include <dwarf.h>
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for `need` elements of `elem` bytes in array p of capacity
 * *cap (doubling); returns the possibly moved array, NULL on ENOMEM (p is
 * then left untouched).  Returning the pointer avoids the type-punned
 * (void **) out-parameter idiom, which breaks strict aliasing. */
void *symtab_grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need)
        ncap *= 2;
    void *np = reallocarray(p, ncap, elem);
    if (np)
        *cap = ncap;
    return np;
}

/* Adds every range of every code DIE at the top of `parent` (descending
 * into namespaces) to ci. */
static int index_dies(struct cu_index *ci, Dwarf_Die *parent, int depth)
{
    Dwarf_Die child;
    if (depth > 64 || dwarf_child(parent, &child) != 0)
        return 0;
    do {
        int tag = dwarf_tag(&child);
        if (tag == DW_TAG_namespace || tag == DW_TAG_module) {
            if (index_dies(ci, &child, depth + 1))
                return -ENOMEM;
            continue;
        }
        Dwarf_Addr b, lo, hi;
        for (ptrdiff_t off = 0; (off = dwarf_ranges(&child, off, &b, &lo, &hi)) > 0;) {
            if (lo >= hi)
                continue;
            struct fn_range *nr = symtab_grow(ci->r, &ci->cap, ci->n + 1, sizeof(*ci->r));
            if (!nr)
                return -ENOMEM;
            ci->r = nr;
            ci->r[ci->n++] = (struct fn_range){lo, hi, child};
        }
    } while (dwarf_siblingof(&child, &child) == 0);
    return 0;
}

static int cmp_range(const void *a, const void *b)
{
    const struct fn_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* The index of the CU `cu` of module m, built on first use; NULL on ENOMEM. */
struct cu_index *symindex_cu(struct module *m, Dwarf_Die *cu)
{
    for (size_t i = m->n_cus; i-- > 0;)
        if (m->cus[i].key == cu->addr)
            return &m->cus[i];
    struct cu_index *nc = symtab_grow(m->cus, &m->cap_cus, m->n_cus + 1, sizeof(*m->cus));
    if (!nc)
        return NULL;
    m->cus = nc;
    struct cu_index ci = {.key = cu->addr};
    if (index_dies(&ci, cu, 0) != 0) {
        free(ci.r);
        return NULL;
    }
    util_sort(ci.r, ci.n, sizeof(*ci.r), cmp_range);
    m->cus[m->n_cus] = ci;
    return &m->cus[m->n_cus++];
}

/* For arrays sorted by a leading Dwarf_Addr field (fn_range, sym_ent): the
 * number of entries whose start is <= pc, i.e. the index after the last
 * candidate. */
static size_t upper_bound(const void *base, size_t n, size_t stride, Dwarf_Addr pc)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        Dwarf_Addr a;
        memcpy(&a, (const char *)base + mid * stride, sizeof a);
        if (a <= pc)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* The outermost code DIE containing pc, or NULL. */
Dwarf_Die *symindex_cu_find(struct cu_index *ci, Dwarf_Addr pc)
{
    size_t i = upper_bound(ci->r, ci->n, sizeof(*ci->r), pc);
    return i > 0 && pc < ci->r[i - 1].hi ? &ci->r[i - 1].die : NULL;
}

static int cmp_sym(const void *a, const void *b)
{
    const struct sym_ent *x = a, *y = b;
    if (x->lo != y->lo)
        return x->lo < y->lo ? -1 : 1;
    return x->rank - y->rank;
}

/* Builds m->syms from the module's best symbol table (.symtab of the file
 * or its debuginfo, else .dynsym, plus .gnu_debugdata), once. */
static void sym_index_build(struct module *m)
{
    m->syms_built = 1;
    int ns = dwfl_module_getsymtab(m->mod);
    for (int i = 1; i < ns; i++) {
        GElf_Sym sym;
        GElf_Addr a;
        GElf_Word shndx;
        Elf *elf = NULL;
        Dwarf_Addr bias = 0;
        const char *name = dwfl_module_getsym_info(m->mod, i, &sym, &a, &shndx, &elf, &bias);
        int type = GELF_ST_TYPE(sym.st_info), bind = GELF_ST_BIND(sym.st_info);
        if (!name || !*name || shndx == SHN_UNDEF || (type != STT_FUNC && type != STT_GNU_IFUNC))
            continue;
        struct sym_ent e = {a, a + sym.st_size, name,
                            bind == STB_GLOBAL ? 0 : 1 + (bind != STB_WEAK), sym.st_size > 0};
        if (!e.sized) {
            /* Hand-written assembly often lacks .size; such a symbol covers
             * up to the next symbol, but never past its section (else _init
             * would name the whole .plt that follows .init). */
            GElf_Shdr sh;
            Elf_Scn *scn = elf ? elf_getscn(elf, shndx) : NULL;
            e.hi = scn && gelf_getshdr(scn, &sh) ? sh.sh_addr + sh.sh_size + bias : UINT64_MAX;
        }
        struct sym_ent *ns_ = symtab_grow(m->syms, &m->cap_syms, m->n_syms + 1, sizeof(*m->syms));
        if (!ns_)
            break; /* ENOMEM: a partial index still names most addresses */
        m->syms = ns_;
        m->syms[m->n_syms++] = e;
    }
    if (!m->n_syms)
        return;
    util_sort(m->syms, m->n_syms, sizeof(*m->syms), cmp_sym);
    size_t w = 1; /* one entry per address: best-ranked name, sized extent */
    for (size_t r = 1; r < m->n_syms; r++) {
        struct sym_ent *d = &m->syms[w - 1], *x = &m->syms[r];
        if (x->lo != d->lo) {
            m->syms[w++] = *x;
        } else if (x->sized > d->sized || (x->sized == d->sized && x->hi > d->hi)) {
            d->hi = x->hi;
            d->sized = x->sized;
        }
    }
    m->n_syms = w;
}

/* The function symbol containing addr: the nearest one starting at or below
 * it, or, for addresses past its end, a sized symbol a little further down
 * that encloses it (nested symbols). */
const char *symindex_sym_find(struct module *m, Dwarf_Addr addr)
{
    if (!m->syms_built)
        sym_index_build(m);
    size_t lo = upper_bound(m->syms, m->n_syms, sizeof(*m->syms), addr);
    if (lo > 0 && addr < m->syms[lo - 1].hi)
        return m->syms[lo - 1].name;
    for (size_t i = lo - (lo > 0); i-- > 0 && lo - i <= 8;)
        if (m->syms[i].sized && addr < m->syms[i].hi)
            return m->syms[i].name;
    return NULL;
}

