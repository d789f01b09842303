/*
 * symtab.c — see symtab.h.
 *
 * Design:
 *  - Each declared module gets its own Dwfl holding one offline-reported
 *    module (dwfl_report_elf with our already-verified fd).  One Dwfl per
 *    module keeps modules independent: a later dlopen() reusing the address
 *    range of a dlclose()d library cannot make libdwfl refuse the report with
 *    DWFL_E_OVERLAP, and one broken file cannot poison the others.
 *  - Modules are loaded lazily, on the first address that falls into them, so
 *    the hundreds of libraries of a big process cost nothing until sampled.
 *  - Which module an address belongs to is decided by the executable ranges
 *    the agent sent (newest module wins on overlap), not by libdwfl's idea of
 *    the module span, which includes data segments.
 *  - Results are cached per address in an open-addressing table; every string
 *    is interned, so a cache hit is a hash probe plus a copy and returns the
 *    very same pointers as the first lookup.  Adding a module drops the
 *    cached addresses inside its ranges.
 *  - Misses use two lazily built sorted indexes (functions per CU, ELF
 *    function symbols per module) instead of libdw's linear scans.
 *
 * Security: the agent is untrusted.  A path it names is opened only after a
 * stat() says "regular file" (so FIFOs and devices are never opened, see
 * open(2) on O_NONBLOCK/FIFOs), is re-checked with fstat() on the opened fd
 * (the authoritative check, immune to a rename race), and must be an ELF file
 * whose NT_GNU_BUILD_ID note equals the build-id the agent sent — read here
 * with libelf before libdwfl sees the fd.  With no build-id, only absolute
 * paths are accepted.
 */
#include "symtab.h"
#include "symindex.h"

#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* libstdc++'s demangler (the collector links -lstdc++); see the Itanium C++
 * ABI, "Demangler API".  Returns a malloc()ed string or NULL. */
char *__cxa_demangle(const char *mangled, char *out, size_t *len, int *status);

#define MAX_RANGES 256    /* executable PT_LOADs of one object               */
#define MAX_MODULES 16384 /* cap against a hostile agent (dedupe is O(n^2))  */
#define MAX_FRAMES 64     /* inline depth kept per address                   */
#define UNKNOWN_FN "??"
#define UNKNOWN_MOD "[unknown]"

enum { MOD_NEW, MOD_OK, MOD_FAILED };

struct cache_ent {
    uint64_t addr;
    size_t first; /* index into symtab.frames */
    uint32_t n;   /* 0 = empty slot (a resolved address has >= 1 frame) */
};

struct symtab {
    char *sysroot;
    char *debuginfo_path; /* pointed to by cb.debuginfo_path */
    Dwfl_Callbacks cb;
    struct module *mods;
    size_t n_mods, cap_mods;
    struct cache_ent *cache;
    size_t cache_cap, cache_used; /* cap is a power of two */
    sym_frame_t *frames;
    size_t n_frames, cap_frames;
    char **strs; /* intern set, open addressing */
    size_t str_cap, str_used;
};

/* ---- small helpers -------------------------------------------------------- */

static uint64_t hash_addr(uint64_t a)
{
    return a * 0x9E3779B97F4A7C15ull; /* Fibonacci hashing; use the high bits */
}

static size_t slot_of(uint64_t h, size_t cap)
{
    return (size_t)(h >> 32) & (cap - 1);
}

static uint64_t hash_str(const char *s)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return h;
}

/* Returns the interned copy of s (NULL for NULL/empty s or on ENOMEM). */
static const char *intern(symtab_t *st, const char *s)
{
    if (!s || !*s)
        return NULL;
    if (st->str_used * 2 >= st->str_cap) {
        size_t ncap = st->str_cap ? st->str_cap * 2 : 256;
        char **ns = calloc(ncap, sizeof(*ns));
        if (!ns)
            return NULL;
        for (size_t i = 0; i < st->str_cap; i++) {
            if (!st->strs[i])
                continue;
            size_t j = slot_of(hash_str(st->strs[i]), ncap);
            while (ns[j])
                j = (j + 1) & (ncap - 1);
            ns[j] = st->strs[i];
        }
        free(st->strs);
        st->strs = ns;
        st->str_cap = ncap;
    }
    size_t j = slot_of(hash_str(s), st->str_cap);
    for (; st->strs[j]; j = (j + 1) & (st->str_cap - 1))
        if (strcmp(st->strs[j], s) == 0)
            return st->strs[j];
    char *d = strdup(s);
    if (!d)
        return NULL;
    st->strs[j] = d;
    st->str_used++;
    return d;
}

/* Demangles Itanium C++ names ("_Z..."); anything else is kept as is. */
static const char *intern_function(symtab_t *st, const char *name)
{
    if (!name || !*name)
        return NULL;
    if (name[0] == '_' && name[1] == 'Z') {
        int status = -1;
        char *d = __cxa_demangle(name, NULL, NULL, &status);
        if (d && status == 0) {
            const char *r = intern(st, d);
            free(d);
            return r;
        }
        free(d);
    }
    return intern(st, name);
}

/* ---- cache ---------------------------------------------------------------- */

static struct cache_ent *cache_find(const symtab_t *st, uint64_t addr)
{
    if (!st->cache_cap)
        return NULL;
    for (size_t j = slot_of(hash_addr(addr), st->cache_cap);; j = (j + 1) & (st->cache_cap - 1)) {
        struct cache_ent *e = &st->cache[j];
        if (e->n == 0)
            return NULL;
        if (e->addr == addr)
            return e;
    }
}

static void cache_place(struct cache_ent *tab, size_t cap, const struct cache_ent *e)
{
    size_t j = slot_of(hash_addr(e->addr), cap);
    while (tab[j].n)
        j = (j + 1) & (cap - 1);
    tab[j] = *e;
}

/* Rebuilds the table with `cap` slots, dropping entries inside `ranges`. */
static int cache_rebuild(symtab_t *st, size_t cap, const uint64_t (*ranges)[2], size_t n_ranges)
{
    struct cache_ent *nt = calloc(cap, sizeof(*nt));
    if (!nt)
        return -ENOMEM;
    size_t used = 0;
    for (size_t i = 0; i < st->cache_cap; i++) {
        const struct cache_ent *e = &st->cache[i];
        if (!e->n)
            continue;
        int drop = 0;
        for (size_t r = 0; r < n_ranges && !drop; r++)
            drop = e->addr >= ranges[r][0] && e->addr < ranges[r][1];
        if (drop)
            continue;
        cache_place(nt, cap, e);
        used++;
    }
    free(st->cache);
    st->cache = nt;
    st->cache_cap = cap;
    st->cache_used = used;
    return 0;
}

static int cache_insert(symtab_t *st, uint64_t addr, const sym_frame_t *fr, int n)
{
    /* Keep the load factor <= 1/2 so probe sequences stay short. */
    if ((st->cache_used + 1) * 2 > st->cache_cap) {
        int rc = cache_rebuild(st, st->cache_cap ? st->cache_cap * 2 : 1024, NULL, 0);
        if (rc)
            return rc;
    }
    sym_frame_t *nf = symtab_grow(st->frames, &st->cap_frames, st->n_frames + (size_t)n, sizeof(*fr));
    if (!nf)
        return -ENOMEM;
    st->frames = nf;
    memcpy(&st->frames[st->n_frames], fr, (size_t)n * sizeof(*fr));
    struct cache_ent e = {.addr = addr, .first = st->n_frames, .n = (uint32_t)n};
    st->n_frames += (size_t)n;
    cache_place(st->cache, st->cache_cap, &e);
    st->cache_used++;
    return 0;
}

/* ---- opening and verifying a module's file -------------------------------- */

/* Finds an NT_GNU_BUILD_ID note in one note buffer; returns its length. */
static size_t note_build_id(Elf_Data *d, const uint8_t **id)
{
    GElf_Nhdr nh;
    size_t off = 0, name_off, desc_off, next;
    while (d && off < d->d_size && (next = gelf_getnote(d, off, &nh, &name_off, &desc_off)) > 0) {
        if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && nh.n_descsz > 0 &&
            memcmp((const char *)d->d_buf + name_off, "GNU", 4) == 0) {
            *id = (const uint8_t *)d->d_buf + desc_off;
            return nh.n_descsz;
        }
        off = next;
    }
    return 0;
}

/* The build-id of an ELF file, from SHT_NOTE sections, or from PT_NOTE
 * segments when the section headers are gone (sstrip, some loaders). */
static size_t elf_build_id(Elf *e, const uint8_t **id)
{
    Elf_Scn *scn = NULL;
    while ((scn = elf_nextscn(e, scn)) != NULL) {
        GElf_Shdr sh;
        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_NOTE)
            continue;
        size_t n = note_build_id(elf_getdata(scn, NULL), id);
        if (n)
            return n;
    }
    size_t phnum;
    if (elf_getphdrnum(e, &phnum) != 0)
        return 0;
    for (size_t i = 0; i < phnum; i++) {
        GElf_Phdr ph;
        if (!gelf_getphdr(e, (int)i, &ph) || ph.p_type != PT_NOTE)
            continue;
        /* 8-aligned note segments use the GNU 8-byte layout (libelf.h). */
        Elf_Data *d = elf_getdata_rawchunk(e, (int64_t)ph.p_offset, ph.p_filesz,
                                           ph.p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
        size_t n = note_build_id(d, id);
        if (n)
            return n;
    }
    return 0;
}

/* Opens `file` for module `m` if it passes the rules in the header comment;
 * returns the fd or -1. */
static int open_verified(const struct module *m, const char *file)
{
    struct stat sb;
    int fd = -1, ok = 0;
    Elf *e = NULL;

    if (m->build_id_len == 0 && m->path[0] != '/')
        return -1; /* nothing vouches for a relative name */
    /* Pre-check so that a FIFO or device is never even opened (opening a
     * FIFO blocks, opening some devices has side effects).  Racy, hence the
     * fstat() below, which is what really decides. */
    if (stat(file, &sb) != 0 || !S_ISREG(sb.st_mode))
        return -1;
    fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        goto out;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode))
        goto out;
    e = elf_begin(fd, ELF_C_READ_MMAP, NULL);
    GElf_Ehdr eh;
    if (!e || elf_kind(e) != ELF_K_ELF || !gelf_getehdr(e, &eh) ||
        (eh.e_type != ET_DYN && eh.e_type != ET_EXEC))
        goto out;
    if (m->build_id_len) {
        const uint8_t *id = NULL;
        size_t n = elf_build_id(e, &id);
        if (n != m->build_id_len || memcmp(id, m->build_id, n) != 0)
            goto out;
    }
    ok = 1;
out:
    if (e)
        elf_end(e);
    if (!ok && fd >= 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

/* libdwfl never asks for the main file (we report it with its fd), but the
 * callback must exist; refuse so libdwfl can never open an agent-named path
 * on its own. */
static int no_find_elf(Dwfl_Module *mod, void **userdata, const char *modname, Dwarf_Addr base,
                       char **file_name, Elf **elfp)
{
    (void)mod, (void)userdata, (void)modname, (void)base, (void)file_name;
    *elfp = NULL;
    return -1;
}

/* Loads m once; returns 0 when it has a Dwfl_Module. */
static int module_load(symtab_t *st, struct module *m)
{
    if (m->state != MOD_NEW)
        return m->state == MOD_OK ? 0 : -1;
    m->state = MOD_FAILED;

    char buf[PATH_MAX];
    const char *file = NULL;
    int fd = -1;
    if (st->sysroot) {
        int n = snprintf(buf, sizeof buf, "%s/%s", st->sysroot, m->path);
        if (n > 0 && (size_t)n < sizeof buf && (fd = open_verified(m, buf)) >= 0)
            file = buf;
    }
    if (fd < 0 && (fd = open_verified(m, m->path)) >= 0)
        file = m->path;
    if (fd < 0)
        return -1;

    Dwfl *d = dwfl_begin(&st->cb);
    if (!d) {
        close(fd);
        return -1;
    }
    dwfl_report_begin(d);
    /* add_p_vaddr=true: the module bias is exactly load_bias (dlpi_addr).
     * On success libdwfl owns fd and closes it in dwfl_end(); on failure it
     * is still ours (elfutils libdwfl/dwfl_report_elf.c). */
    Dwfl_Module *dm = dwfl_report_elf(d, m->path, file, fd, m->load_bias, true);
    if (!dm) {
        close(fd);
        dwfl_end(d);
        return -1;
    }
    if (dwfl_report_end(d, NULL, NULL) != 0) {
        dwfl_end(d);
        return -1;
    }
    m->dwfl = d;
    m->mod = dm;
    m->state = MOD_OK;
    return 0;
}

/* ---- resolution ----------------------------------------------------------- */

/* The newest module whose executable ranges contain addr, or NULL. */
static struct module *find_module(symtab_t *st, uint64_t addr)
{
    for (size_t i = st->n_mods; i-- > 0;) {
        struct module *m = &st->mods[i];
        for (size_t r = 0; r < m->n_ranges; r++)
            if (addr >= m->ranges[r][0] && addr < m->ranges[r][1])
                return m;
    }
    return NULL;
}

int symtab_module_at(symtab_t *st, uint64_t addr, sym_module_info_t *out)
{
    struct module *m = find_module(st, addr);
    if (!m)
        return -ENOENT;
    for (size_t r = 0; r < m->n_ranges; r++)
        if (addr >= m->ranges[r][0] && addr < m->ranges[r][1]) {
            *out = (sym_module_info_t){.path = m->path,
                                       .build_id = m->build_id,
                                       .build_id_len = m->build_id_len,
                                       .start = m->ranges[r][0],
                                       .limit = m->ranges[r][1],
                                       .load_bias = m->load_bias};
            break;
        }
    return 0;
}

/* Name of a subprogram or inlined-subroutine DIE.  A C++ linkage name
 * ("_Z...", found through DW_AT_abstract_origin/DW_AT_specification, which
 * dwarf_attr_integrate follows) demangles to the qualified name with
 * parameter types.  Other linkage names are asm labels (glibc's hidden
 * "__GI_abort" for abort), so DW_AT_name, the source name, wins over them. */
static const char *die_function(symtab_t *st, Dwarf_Die *die)
{
    Dwarf_Attribute a;
    const char *link = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &a));
    if (!link)
        link = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &a));
    if (link && link[0] == '_' && link[1] == 'Z')
        return intern_function(st, link);
    const char *name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &a));
    return intern_function(st, name ? name : link);
}

/* Interns a source file name made absolute.  libdw 0.188 returns DWARF 5
 * line-table names whose directory entry is relative (e.g. "./src" when the
 * compiler was given "./src/x.c") without prefixing DW_AT_comp_dir, so we
 * do it (DWARF 5, section 6.2.4 item 11: relative to the compilation dir). */
static const char *intern_file(symtab_t *st, Dwarf_Die *cu, const char *name)
{
    Dwarf_Attribute a;
    const char *dir = NULL;
    if (!name || name[0] == '/' || !cu)
        return intern(st, name);
    dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &a));
    if (!dir || dir[0] != '/')
        return intern(st, name);
    while (name[0] == '.' && name[1] == '/')
        name += 2;
    char *full = NULL;
    if (asprintf(&full, "%s/%s", dir, name) < 0)
        return intern(st, name);
    const char *r = intern(st, full);
    free(full);
    return r;
}

/* Where an inlined subroutine was called from: its DW_AT_call_file/line,
 * resolved against the line-table file list of the DIE's own CU (DWARF 5,
 * section 3.3.8.2). */
static void call_site(symtab_t *st, Dwarf_Die *die, const char **file, int *line)
{
    Dwarf_Attribute a;
    Dwarf_Word v;
    *file = NULL;
    *line = 0;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_line, &a), &v) == 0)
        *line = v > INT_MAX ? 0 : (int)v;
    if (dwarf_formudata(dwarf_attr(die, DW_AT_call_file, &a), &v) == 0) {
        Dwarf_Die cu;
        Dwarf_Files *files;
        size_t nfiles;
        if (dwarf_diecu(die, &cu, NULL, NULL) && dwarf_getsrcfiles(&cu, &files, &nfiles) == 0 &&
            v < nfiles)
            *file = intern_file(st, &cu, dwarf_filesrc(files, v, NULL, NULL));
    }
}

/* The address's own source location, from the line table. */
static void addr_line(symtab_t *st, Dwfl_Module *mod, uint64_t addr, const char **file, int *line)
{
    Dwfl_Line *l = dwfl_module_getsrc(mod, addr);
    *file = NULL;
    *line = 0;
    if (l) {
        const char *name = dwfl_lineinfo(l, NULL, line, NULL, NULL, NULL);
        *file = intern_file(st, dwfl_linecu(l), name);
        if (*line < 0)
            *line = 0;
    }
}

/* Finds the chain of DIEs containing pc below `parent`, outermost first,
 * appending to chain[*n].  Only DIEs whose ranges hold pc are entered, and
 * dwarf_siblingof() skips the other subtrees (via DW_AT_sibling).
 * Namespaces carry no ranges but hold C++ function definitions, so they are
 * searched.  Returns 1 when found. */
static int scope_chain(Dwarf_Die *parent, Dwarf_Addr pc, Dwarf_Die *chain, int *n, int max,
                       int depth)
{
    Dwarf_Die child;
    int found = 0;
    if (depth > 64 || dwarf_child(parent, &child) != 0)
        return 0;
    do {
        int tag = dwarf_tag(&child);
        if (tag == DW_TAG_namespace || tag == DW_TAG_module) {
            found = scope_chain(&child, pc, chain, n, max, depth + 1);
        } else if (dwarf_haspc(&child, pc) == 1) {
            if (*n < max)
                chain[(*n)++] = child;
            scope_chain(&child, pc, chain, n, max, depth + 1);
            found = 1;
        }
    } while (!found && dwarf_siblingof(&child, &child) == 0);
    return found;
}

/* Fills out[] (all fields but function/file/line preset by the caller) from
 * DWARF: one frame per DW_TAG_inlined_subroutine on the way out from the
 * innermost scope, then the containing subprogram.  Returns the frame count,
 * 0 when DWARF does not know the address.
 *
 * This walks the physical DIE nesting, which is what eu-addr2line -i gets
 * from dwarf_getscopes_die(): dwarf_getscopes() alone continues above an
 * inlined subroutine with the scopes of its abstract definition, not with
 * its caller.  Both libdw calls scan the whole CU, twice per address (that
 * measured ~70 us per uncached lookup on this repo's test binary). */
static int dwarf_frames(symtab_t *st, struct module *m, uint64_t addr, sym_frame_t *out, int max)
{
    Dwfl_Module *mod = m->mod;
    Dwarf_Addr bias = 0;
    Dwarf_Die chain[MAX_FRAMES * 2];
    int nc = 0, n = 0;
    Dwarf_Die *cu = dwfl_module_addrdie(mod, addr, &bias);
    if (!cu)
        return 0;
    Dwarf_Addr pc = addr - bias;
    struct cu_index *ci = symindex_cu(m, cu);
    Dwarf_Die *top = ci ? symindex_cu_find(ci, pc) : NULL;
    if (!top)
        return 0;
    chain[nc++] = *top;
    scope_chain(top, pc, chain, &nc, MAX_FRAMES * 2, 0);

    const char *file;
    int line;
    addr_line(st, mod, addr, &file, &line);
    for (int i = nc - 1; i >= 0 && n < max; i--) {
        int tag = dwarf_tag(&chain[i]);
        if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram &&
            tag != DW_TAG_entry_point)
            continue; /* lexical blocks etc. */
        out[n].function = die_function(st, &chain[i]);
        out[n].file = file;
        out[n].line = line;
        n++;
        if (tag != DW_TAG_inlined_subroutine)
            break; /* reached the physical function */
        call_site(st, &chain[i], &file, &line);
    }
    return n;
}

/* Resolves without the cache; always returns >= 1 frame. */
static int resolve_uncached(symtab_t *st, uint64_t addr, sym_frame_t *out, int max)
{
    const sym_frame_t unknown = {UNKNOWN_FN, NULL, 0, UNKNOWN_MOD, addr, 0};
    struct module *m = find_module(st, addr);
    out[0] = unknown;
    if (!m)
        return 1;
    out[0].module = m->path;
    out[0].offset = addr - m->load_bias;
    if (module_load(st, m) != 0)
        return 1;
    for (int i = 1; i < max; i++)
        out[i] = out[0];

    int n = dwarf_frames(st, m, addr, out, max);
    if (n == 0 || !out[n - 1].function) {
        /* No DWARF for this address (stripped file, assembly, PLT), or a
         * DWARF chain without a named physical function: the ELF symbol
         * table names the containing function. */
        if (n == 0) {
            addr_line(st, m->mod, addr, &out[0].file, &out[0].line);
            n = 1;
        }
        out[n - 1].function = intern_function(st, symindex_sym_find(m, addr));
    }
    for (int i = 0; i < n; i++)
        if (!out[i].function)
            out[i].function = UNKNOWN_FN;
    return n;
}

/* ---- public API ----------------------------------------------------------- */

symtab_t *symtab_new(const char *sysroot)
{
    symtab_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    /* elf_version() must precede any other libelf call (elf_version(3)). */
    if (elf_version(EV_CURRENT) == EV_NONE)
        goto fail;
    if (sysroot && *sysroot) {
        /* Debuginfo of a sysroot's binaries lives in the sysroot; the host's
         * /usr/lib/debug is kept as a fallback (build-ids make it safe).  The
         * leading '+' demands the .gnu_debuglink CRC when there is no
         * build-id to check (libdwfl.h, dwfl_standard_find_debuginfo). */
        int n = asprintf(&st->debuginfo_path, "+:.debug:%s/usr/lib/debug:/usr/lib/debug", sysroot);
        if (n < 0) {
            st->debuginfo_path = NULL; /* undefined after failure (asprintf(3)) */
            goto fail;
        }
        if (!(st->sysroot = strdup(sysroot)))
            goto fail;
    } else if (!(st->debuginfo_path = strdup("+:.debug:/usr/lib/debug"))) {
        goto fail;
    }
    st->cb.find_elf = no_find_elf;
    st->cb.find_debuginfo = dwfl_standard_find_debuginfo;
    st->cb.section_address = dwfl_offline_section_address;
    st->cb.debuginfo_path = &st->debuginfo_path;
    return st;
fail:
    symtab_free(st);
    return NULL;
}

void symtab_free(symtab_t *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_mods; i++) {
        if (st->mods[i].dwfl)
            dwfl_end(st->mods[i].dwfl);
        free(st->mods[i].path);
        free(st->mods[i].ranges);
        for (size_t c = 0; c < st->mods[i].n_cus; c++)
            free(st->mods[i].cus[c].r);
        free(st->mods[i].cus);
        free(st->mods[i].syms);
    }
    for (size_t i = 0; i < st->str_cap; i++)
        free(st->strs[i]);
    free(st->strs);
    free(st->mods);
    free(st->cache);
    free(st->frames);
    free(st->sysroot);
    free(st->debuginfo_path);
    free(st);
}

int symtab_add_module(symtab_t *st, const char *path, const uint8_t *build_id, size_t build_id_len,
                      uint64_t load_bias, const uint64_t (*ranges)[2], size_t n_ranges)
{
    if (!st || !path || !*path || (build_id_len && !build_id) || build_id_len > MAX_BUILD_ID ||
        (n_ranges && !ranges) || n_ranges > MAX_RANGES)
        return -EINVAL;
    if (strnlen(path, PATH_MAX) >= PATH_MAX)
        return -ENAMETOOLONG;
    for (size_t r = 0; r < n_ranges; r++)
        if (ranges[r][0] >= ranges[r][1])
            return -EINVAL;

    /* The agent may announce the same mapping twice; keep one module. */
    for (size_t i = 0; i < st->n_mods; i++) {
        const struct module *o = &st->mods[i];
        if (o->load_bias == load_bias && o->build_id_len == build_id_len &&
            o->n_ranges == n_ranges && strcmp(o->path, path) == 0 &&
            (!build_id_len || memcmp(o->build_id, build_id, build_id_len) == 0) &&
            (!n_ranges || memcmp(o->ranges, ranges, n_ranges * sizeof(*ranges)) == 0))
            return 0;
    }
    if (st->n_mods >= MAX_MODULES)
        return -E2BIG;

    int rc = -ENOMEM;
    struct module *nm;
    struct module m = {.build_id_len = build_id_len,
                       .load_bias = load_bias,
                       .n_ranges = n_ranges,
                       .state = MOD_NEW};
    if (build_id_len)
        memcpy(m.build_id, build_id, build_id_len);
    if (!(m.path = strdup(path)))
        goto fail;
    if (n_ranges) {
        if (!(m.ranges = malloc(n_ranges * sizeof(*ranges))))
            goto fail;
        memcpy(m.ranges, ranges, n_ranges * sizeof(*ranges));
    }
    nm = symtab_grow(st->mods, &st->cap_mods, st->n_mods + 1, sizeof(m));
    if (!nm)
        goto fail;
    st->mods = nm;
    /* Addresses cached before this module existed (as "[unknown]" or as an
     * older module now replaced) must be looked up again. */
    if (st->cache_used) {
        int hit = 0;
        for (size_t i = 0; i < st->cache_cap && !hit; i++)
            for (size_t r = 0; r < n_ranges && st->cache[i].n && !hit; r++)
                hit = st->cache[i].addr >= ranges[r][0] && st->cache[i].addr < ranges[r][1];
        if (hit && (rc = cache_rebuild(st, st->cache_cap, ranges, n_ranges)) != 0)
            goto fail;
    }
    st->mods[st->n_mods++] = m;
    return 0;
fail:
    free(m.path);
    free(m.ranges);
    return rc;
}

int symtab_resolve(symtab_t *st, uint64_t address, sym_frame_t *out, int max)
{
    if (!st || !out || max <= 0)
        return 0;
    const struct cache_ent *e = cache_find(st, address);
    if (!e) {
        sym_frame_t tmp[MAX_FRAMES];
        int n = resolve_uncached(st, address, tmp, MAX_FRAMES);
        if (cache_insert(st, address, tmp, n) != 0) {
            /* Out of memory: answer anyway (the strings are interned or
             * static), just without caching. */
            n = n < max ? n : max;
            memcpy(out, tmp, (size_t)n * sizeof(*out));
            return n;
        }
        e = cache_find(st, address);
    }
    int n = (int)e->n < max ? (int)e->n : max;
    memcpy(out, &st->frames[e->first], (size_t)n * sizeof(*out));
    return n;
}
