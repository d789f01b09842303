/*
 * cfi.c — reads one frame's unwind rule out of .eh_frame (see cfi.h).
 *
 * Formats: the LSB "Exception Frames" chapter (.eh_frame, .eh_frame_hdr,
 * DW_EH_PE_* pointer encodings) and DWARF 4 section 6.4 (call frame
 * instructions).  The walk is the classic one: binary-search the sorted
 * table in .eh_frame_hdr for the FDE covering pc, run its CIE's initial
 * instructions, then the FDE's instructions up to pc, and look at the row
 * that results.  Only rbp (DWARF register 6) and the return address (16)
 * are tracked: those are all an x86-64 frame walk needs besides the CFA.
 *
 * Every read goes through a bounded reader limited to the loaded segment
 * the data lives in, so corrupt unwind tables give PA_CFI_OTHER, not a
 * fault.  No allocation, no libc beyond _dl_find_object and dl_iterate_phdr(3).
 */
#include "internal.h"
#include "cfi.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <string.h>

enum {
    DW_EH_PE_absptr = 0x00,
    DW_EH_PE_uleb128 = 0x01,
    DW_EH_PE_udata2 = 0x02,
    DW_EH_PE_udata4 = 0x03,
    DW_EH_PE_udata8 = 0x04,
    DW_EH_PE_sleb128 = 0x09,
    DW_EH_PE_sdata2 = 0x0a,
    DW_EH_PE_sdata4 = 0x0b,
    DW_EH_PE_sdata8 = 0x0c,
    DW_EH_PE_pcrel = 0x10,
    DW_EH_PE_datarel = 0x30,
    DW_EH_PE_omit = 0xff,
};

enum { REG_RBP = 6, REG_RSP = 7, REG_RA = 16 };
enum { HOW_SAME = 0, HOW_OFFSET = 1, HOW_UNDEF = 2, HOW_OTHER = 3 };

#define MAX_SEGS 16
#define STATE_STACK 8

typedef struct seg {
    uint64_t lo, hi;
} seg_t;

/* A reader that never leaves [p, end); any overrun sets bad. */
typedef struct rd {
    const uint8_t *p, *end;
    int bad;
} rd_t;

static uint64_t rd_fixed(rd_t *r, unsigned n)
{
    uint64_t v = 0;
    if (r->bad || (size_t)(r->end - r->p) < n) {
        r->bad = 1;
        return 0;
    }
    memcpy(&v, r->p, n); /* x86-64 is little-endian */
    r->p += n;
    return v;
}

/* LEB128 (DWARF 4 §7.6); sign-extended from the last byte when `sign`. */
static uint64_t rd_leb(rd_t *r, int sign)
{
    uint64_t v = 0;
    for (unsigned shift = 0; !r->bad; shift += 7) {
        if (r->p >= r->end || shift > 63) {
            r->bad = 1;
            break;
        }
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            if (sign && shift + 7 < 64 && (b & 0x40))
                v |= ~(uint64_t)0 << (shift + 7);
            return v;
        }
    }
    return 0;
}

static uint64_t rd_uleb(rd_t *r)
{
    return rd_leb(r, 0);
}

static int64_t rd_sleb(rd_t *r)
{
    return (int64_t)rd_leb(r, 1);
}

/* One DW_EH_PE_* encoded value; pc-relative values are relative to where
 * the value itself is stored, data-relative ones to `datarel` (the start of
 * .eh_frame_hdr).  Indirect values are not followed: nothing here needs the
 * pointee (only the personality routine is ever indirect). */
static uint64_t rd_enc(rd_t *r, uint8_t enc, uint64_t datarel)
{
    uint64_t at = (uint64_t)(uintptr_t)r->p, v;
    if (enc == DW_EH_PE_omit)
        return 0;
    switch (enc & 0x0f) {
    case DW_EH_PE_absptr: v = rd_fixed(r, 8); break;
    case DW_EH_PE_uleb128: v = rd_uleb(r); break;
    case DW_EH_PE_udata2: v = rd_fixed(r, 2); break;
    case DW_EH_PE_udata4: v = rd_fixed(r, 4); break;
    case DW_EH_PE_udata8: v = rd_fixed(r, 8); break;
    case DW_EH_PE_sleb128: v = (uint64_t)rd_sleb(r); break;
    case DW_EH_PE_sdata2: v = (uint64_t)(int64_t)(int16_t)rd_fixed(r, 2); break;
    case DW_EH_PE_sdata4: v = (uint64_t)(int64_t)(int32_t)rd_fixed(r, 4); break;
    case DW_EH_PE_sdata8: v = rd_fixed(r, 8); break;
    default: r->bad = 1; return 0;
    }
    switch (enc & 0x70) {
    case 0: break;
    case DW_EH_PE_pcrel: v += at; break;
    case DW_EH_PE_datarel: v += datarel; break;
    default: r->bad = 1; return 0;
    }
    return v;
}

/* A reader over [p, end of the segment holding p). */
static int rd_at(rd_t *r, uint64_t p, const seg_t *segs, unsigned nsegs)
{
    for (unsigned i = 0; i < nsegs; i++)
        if (p >= segs[i].lo && p < segs[i].hi) {
            r->p = (const uint8_t *)(uintptr_t)p;
            r->end = (const uint8_t *)(uintptr_t)segs[i].hi;
            r->bad = 0;
            return 0;
        }
    return -1;
}

/* An .eh_frame entry's length header: narrows r to the entry's body and
 * returns its start, or NULL for the terminator, 64-bit DWARF (never made
 * by GCC or clang for .eh_frame) and overruns. */
static const uint8_t *rd_entry(rd_t *r)
{
    uint64_t len = rd_fixed(r, 4);
    const uint8_t *start = r->p;
    if (r->bad || len == 0 || len == 0xffffffffu || len > (uint64_t)(r->end - r->p))
        return NULL;
    r->end = start + len;
    return start;
}

typedef struct cie {
    uint64_t code_align;
    int64_t data_align;
    uint8_t fde_enc;
    uint8_t has_z;
    uint8_t signal;
    rd_t insns;
} cie_t;

static int parse_cie(uint64_t at, const seg_t *segs, unsigned nsegs, cie_t *c)
{
    rd_t r;
    const char *aug;
    unsigned version, i;
    if (rd_at(&r, at, segs, nsegs) < 0 || !rd_entry(&r))
        return -1;
    if (rd_fixed(&r, 4) != 0) /* CIE id: 0 in .eh_frame */
        return -1;
    version = (unsigned)rd_fixed(&r, 1);
    if (version != 1 && version != 3 && version != 4)
        return -1;
    aug = (const char *)r.p;
    while (r.p < r.end && *r.p)
        r.p++;
    if (r.p >= r.end)
        return -1;
    r.p++;
    if (aug[0] == 'e' && aug[1] == 'h')
        return -1; /* pre-GCC-3 layout with an extra pointer */
    if (version == 4 && (rd_fixed(&r, 1) != 8 || rd_fixed(&r, 1) != 0))
        return -1; /* address size 8, no segments */
    c->code_align = rd_uleb(&r);
    c->data_align = rd_sleb(&r);
    if ((version == 1 ? rd_fixed(&r, 1) : rd_uleb(&r)) != REG_RA)
        return -1;
    c->fde_enc = DW_EH_PE_absptr;
    c->has_z = 0;
    c->signal = 0;
    if (aug[0] == 'z') {
        uint64_t len = rd_uleb(&r);
        const uint8_t *aug_end;
        if (r.bad || len > (uint64_t)(r.end - r.p))
            return -1;
        aug_end = r.p + len;
        c->has_z = 1;
        /* x86-64 compilers write only these letters; anything newer is
         * left to libunwind. */
        for (i = 1; aug[i] == 'R' || aug[i] == 'L' || aug[i] == 'P' || aug[i] == 'S'; i++) {
            if (aug[i] == 'R')
                c->fde_enc = (uint8_t)rd_fixed(&r, 1);
            else if (aug[i] == 'L')
                rd_fixed(&r, 1);
            else if (aug[i] == 'P')
                rd_enc(&r, (uint8_t)rd_fixed(&r, 1), 0);
            else
                c->signal = 1;
        }
        if (aug[i] || r.p > aug_end)
            return -1;
        r.p = aug_end;
    } else if (aug[0]) {
        return -1;
    }
    if (r.bad)
        return -1;
    c->insns = r;
    return 0;
}

typedef struct regs {
    uint8_t cfa_reg, cfa_expr;
    int64_t cfa_off;
    uint8_t rbp_how, ra_how;
    int64_t rbp_off, ra_off;
} regs_t;

static void set_rule(regs_t *s, uint64_t reg, uint8_t how, int64_t off)
{
    if (reg == REG_RBP) {
        s->rbp_how = how;
        s->rbp_off = off;
    } else if (reg == REG_RA) {
        s->ra_how = how;
        s->ra_off = off;
    }
}

static void restore_rule(regs_t *s, const regs_t *init, uint64_t reg)
{
    if (reg == REG_RBP)
        set_rule(s, reg, init->rbp_how, init->rbp_off);
    else if (reg == REG_RA)
        set_rule(s, reg, init->ra_how, init->ra_off);
}

/* Runs call frame instructions until the row that covers `target` is built
 * (DWARF 4 §6.4.2).  Returns 0, or -1 on anything not understood. */
static int run_insns(rd_t *r, const cie_t *c, uint64_t loc, uint64_t target, regs_t *s,
                     const regs_t *init)
{
    regs_t stack[STATE_STACK];
    unsigned depth = 0;
    while (r->p < r->end && !r->bad) {
        uint8_t op = (uint8_t)rd_fixed(r, 1), low = op & 0x3f;
        uint64_t reg, delta = 0;
        int64_t off;
        switch (op & 0xc0) {
        case 0x40: /* DW_CFA_advance_loc */
            delta = low;
            goto advance;
        case 0x80: /* DW_CFA_offset */
            set_rule(s, low, HOW_OFFSET, (int64_t)rd_uleb(r) * c->data_align);
            continue;
        case 0xc0: /* DW_CFA_restore */
            restore_rule(s, init, low);
            continue;
        }
        switch (op) {
        case 0x00: /* DW_CFA_nop */
            continue;
        case 0x01: /* DW_CFA_set_loc */
            loc = rd_enc(r, c->fde_enc, 0);
            if (loc > target)
                return 0;
            continue;
        case 0x02: delta = rd_fixed(r, 1); goto advance; /* DW_CFA_advance_loc1 */
        case 0x03: delta = rd_fixed(r, 2); goto advance; /* DW_CFA_advance_loc2 */
        case 0x04: delta = rd_fixed(r, 4); goto advance; /* DW_CFA_advance_loc4 */
        case 0x05: /* DW_CFA_offset_extended */
            reg = rd_uleb(r);
            set_rule(s, reg, HOW_OFFSET, (int64_t)rd_uleb(r) * c->data_align);
            continue;
        case 0x06: /* DW_CFA_restore_extended */
            restore_rule(s, init, rd_uleb(r));
            continue;
        case 0x07: /* DW_CFA_undefined */
            set_rule(s, rd_uleb(r), HOW_UNDEF, 0);
            continue;
        case 0x08: /* DW_CFA_same_value */
            set_rule(s, rd_uleb(r), HOW_SAME, 0);
            continue;
        case 0x09: /* DW_CFA_register */
            reg = rd_uleb(r);
            rd_uleb(r);
            set_rule(s, reg, HOW_OTHER, 0);
            continue;
        case 0x0a: /* DW_CFA_remember_state */
            if (depth == STATE_STACK)
                return -1;
            stack[depth++] = *s;
            continue;
        case 0x0b: /* DW_CFA_restore_state: the whole row, CFA included, as
                    * libgcc's unwinder and libunwind do */
            if (depth == 0)
                return -1;
            *s = stack[--depth];
            continue;
        case 0x0c: /* DW_CFA_def_cfa */
            s->cfa_reg = (uint8_t)rd_uleb(r);
            s->cfa_off = (int64_t)rd_uleb(r);
            s->cfa_expr = 0;
            continue;
        case 0x0d: /* DW_CFA_def_cfa_register */
            s->cfa_reg = (uint8_t)rd_uleb(r);
            continue;
        case 0x0e: /* DW_CFA_def_cfa_offset */
            s->cfa_off = (int64_t)rd_uleb(r);
            continue;
        case 0x0f: /* DW_CFA_def_cfa_expression (stack realignment, PLT) */
            off = (int64_t)rd_uleb(r);
            if (off < 0 || off > r->end - r->p)
                return -1;
            r->p += off;
            s->cfa_expr = 1;
            continue;
        case 0x10: /* DW_CFA_expression */
        case 0x16: /* DW_CFA_val_expression */
            reg = rd_uleb(r);
            off = (int64_t)rd_uleb(r);
            if (off < 0 || off > r->end - r->p)
                return -1;
            r->p += off;
            set_rule(s, reg, HOW_OTHER, 0);
            continue;
        case 0x11: /* DW_CFA_offset_extended_sf */
            reg = rd_uleb(r);
            set_rule(s, reg, HOW_OFFSET, rd_sleb(r) * c->data_align);
            continue;
        case 0x12: /* DW_CFA_def_cfa_sf */
            s->cfa_reg = (uint8_t)rd_uleb(r);
            s->cfa_off = rd_sleb(r) * c->data_align;
            s->cfa_expr = 0;
            continue;
        case 0x13: /* DW_CFA_def_cfa_offset_sf */
            s->cfa_off = rd_sleb(r) * c->data_align;
            continue;
        case 0x14: /* DW_CFA_val_offset */
            reg = rd_uleb(r);
            rd_uleb(r);
            set_rule(s, reg, HOW_OTHER, 0);
            continue;
        case 0x15: /* DW_CFA_val_offset_sf */
            reg = rd_uleb(r);
            rd_sleb(r);
            set_rule(s, reg, HOW_OTHER, 0);
            continue;
        case 0x2e: /* DW_CFA_GNU_args_size */
            rd_uleb(r);
            continue;
        case 0x2f: /* DW_CFA_GNU_negative_offset_extended */
            reg = rd_uleb(r);
            set_rule(s, reg, HOW_OFFSET, -(int64_t)rd_uleb(r) * c->data_align);
            continue;
        default:
            return -1;
        }
    advance:
        loc += delta * c->code_align;
        if (loc > target)
            return 0;
    }
    return r->bad ? -1 : 0;
}

static void to_rule(const regs_t *s, pa_cfi_rule_t *out)
{
    out->kind = PA_CFI_OTHER;
    if (s->ra_how == HOW_UNDEF) {
        out->kind = PA_CFI_OUTERMOST;
        return;
    }
    if (s->cfa_expr || (s->cfa_reg != REG_RSP && s->cfa_reg != REG_RBP))
        return;
    if (s->ra_how != HOW_OFFSET || s->ra_off != -8)
        return;
    if (s->cfa_off <= 0 || s->cfa_off > INT32_MAX)
        return;
    if (s->rbp_how == HOW_SAME) {
        out->rbp_off = PA_CFI_RBP_SAME;
    } else if (s->rbp_how == HOW_OFFSET && s->rbp_off > INT16_MIN && s->rbp_off <= INT16_MAX) {
        out->rbp_off = (int16_t)s->rbp_off;
    } else {
        return;
    }
    out->cfa_off = (int32_t)s->cfa_off;
    out->cfa_rbp = s->cfa_reg == REG_RBP;
    out->kind = PA_CFI_STEP;
}

/* The FDE at `at` for pc: runs its CIE and its own instructions. */
static void eval_fde(uint64_t pc, uint64_t at, const seg_t *segs, unsigned nsegs,
                     pa_cfi_rule_t *out)
{
    rd_t r;
    const uint8_t *start;
    cie_t c;
    regs_t s, init;
    uint64_t cie_ptr, pc_begin, pc_range;
    if (rd_at(&r, at, segs, nsegs) < 0 || !(start = rd_entry(&r)))
        return;
    cie_ptr = rd_fixed(&r, 4);
    if (r.bad || cie_ptr == 0 || cie_ptr > (uint64_t)(uintptr_t)start)
        return;
    if (parse_cie((uint64_t)(uintptr_t)start - cie_ptr, segs, nsegs, &c) < 0 || c.signal)
        return; /* signal frames: libunwind reads the saved context */
    pc_begin = rd_enc(&r, c.fde_enc, 0);
    pc_range = rd_enc(&r, c.fde_enc & 0x0f, 0);
    if (r.bad || pc < pc_begin || pc - pc_begin >= pc_range)
        return; /* no FDE covers pc */
    if (c.has_z) {
        uint64_t len = rd_uleb(&r);
        if (r.bad || len > (uint64_t)(r.end - r.p))
            return;
        r.p += len;
    }
    memset(&s, 0, sizeof(s));
    s.cfa_reg = 0xff;
    s.ra_how = HOW_OTHER; /* until the CIE says where it is */
    if (run_insns(&c.insns, &c, pc_begin, UINT64_MAX, &s, &s) < 0)
        return;
    init = s;
    if (run_insns(&r, &c, pc_begin, pc, &s, &init) < 0)
        return;
    to_rule(&s, out);
}

static void find_in_segs(uint64_t pc, const uint8_t *hdr, uint64_t hdr_len, const seg_t *segs,
                         unsigned nsegs, pa_cfi_rule_t *out)
{
    rd_t r = {hdr, hdr + hdr_len, 0};
    uint64_t base = (uint64_t)(uintptr_t)hdr, count, lo, hi;
    const uint8_t *table;
    uint8_t ptr_enc, cnt_enc, tab_enc;

    memset(out, 0, sizeof(*out));
    out->kind = PA_CFI_OTHER;
    if (rd_fixed(&r, 1) != 1)
        return;
    ptr_enc = (uint8_t)rd_fixed(&r, 1);
    cnt_enc = (uint8_t)rd_fixed(&r, 1);
    tab_enc = (uint8_t)rd_fixed(&r, 1);
    rd_enc(&r, ptr_enc, base);
    count = rd_enc(&r, cnt_enc, base);
    /* The sorted search table as every linker writes it: pairs of 4-byte
     * offsets from the header (DW_EH_PE_datarel | DW_EH_PE_sdata4). */
    if (r.bad || tab_enc != (DW_EH_PE_datarel | DW_EH_PE_sdata4) || count == 0 ||
        count > (uint64_t)(r.end - r.p) / 8)
        return;
    table = r.p;
    lo = 0;
    hi = count;
    while (hi - lo > 1) { /* last entry whose start <= pc */
        uint64_t mid = lo + (hi - lo) / 2;
        int32_t v;
        memcpy(&v, table + mid * 8, 4);
        if (base + (uint64_t)(int64_t)v <= pc)
            lo = mid;
        else
            hi = mid;
    }
    int32_t start, fde;
    memcpy(&start, table + lo * 8, 4);
    memcpy(&fde, table + lo * 8 + 4, 4);
    if (base + (uint64_t)(int64_t)start > pc)
        return;
    eval_fde(pc, base + (uint64_t)(int64_t)fde, segs, nsegs, out);
}

void pa_cfi_find_in(uint64_t pc, const uint8_t *hdr, uint64_t hdr_len, uint64_t lo, uint64_t hi,
                    pa_cfi_rule_t *out)
{
    seg_t seg = {lo, hi};
    find_in_segs(pc, hdr, hdr_len, &seg, 1, out);
}

typedef struct find_ctx {
    uint64_t pc;
    pa_cfi_rule_t *out;
} find_ctx_t;

/* One loaded object (its load bias and program headers): if pc lies in one
 * of its PT_LOAD segments, look pc up in its .eh_frame_hdr; returns
 * whether pc was inside. */
static int find_in_object(uint64_t pc, uint64_t bias, const ElfW(Phdr) *phdr, unsigned phnum,
                          pa_cfi_rule_t *out)
{
    const ElfW(Phdr) *eh = NULL;
    seg_t segs[MAX_SEGS];
    unsigned nsegs = 0;
    int inside = 0;
    for (unsigned i = 0; i < phnum; i++) {
        const ElfW(Phdr) *ph = &phdr[i];
        if (ph->p_type == PT_LOAD) {
            uint64_t lo = bias + ph->p_vaddr, hi = lo + ph->p_memsz;
            if (pc >= lo && pc < hi)
                inside = 1;
            if (nsegs < MAX_SEGS)
                segs[nsegs++] = (seg_t){lo, hi};
        } else if (ph->p_type == PT_GNU_EH_FRAME) {
            eh = ph;
        }
    }
    if (!inside)
        return 0;
    if (eh)
        find_in_segs(pc, (const uint8_t *)(uintptr_t)(bias + eh->p_vaddr), eh->p_memsz, segs,
                     nsegs, out);
    return 1;
}

static int find_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    find_ctx_t *ctx = arg;
    (void)size;
    return find_in_object(ctx->pc, info->dlpi_addr, info->dlpi_phdr, info->dlpi_phnum, ctx->out);
}

/* _dl_find_object (glibc 2.35) finds pc's object without a lock and is
 * async-signal-safe: unlike dl_iterate_phdr it takes no loader lock that a
 * fork could leave held in the child (glibc's fork resets dl_load_lock but
 * not dl_load_write_lock, which a host thread inside dl_iterate_phdr or
 * dlopen may hold; phdr.c covers only our own walks).  It gives the
 * object's mapping and link map; the program headers are read from the ELF
 * header the first PT_LOAD maps at the mapping's start.  Weak: on an older
 * glibc, or an object whose mapping does not start with its ELF header,
 * the walk below answers.  Test: test_agent_cfi's fast path. */
#pragma weak _dl_find_object

static int find_fast(uint64_t pc, pa_cfi_rule_t *out)
{
    struct dl_find_object fo;
    const ElfW(Ehdr) *eh;
    const uint8_t *start, *end;
    if (!_dl_find_object || _dl_find_object((void *)(uintptr_t)pc, &fo) != 0 || !fo.dlfo_link_map)
        return 0;
    start = fo.dlfo_map_start;
    end = fo.dlfo_map_end;
    eh = (const void *)start;
    if (end <= start || (size_t)(end - start) < sizeof(*eh) ||
        memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
        eh->e_phentsize != sizeof(ElfW(Phdr)) || eh->e_phoff > (size_t)(end - start) ||
        (size_t)eh->e_phnum * sizeof(ElfW(Phdr)) > (size_t)(end - start) - eh->e_phoff)
        return 0;
    return find_in_object(pc, fo.dlfo_link_map->l_addr,
                          (const ElfW(Phdr) *)(const void *)(start + eh->e_phoff), eh->e_phnum, out);
}

void pa_cfi_find_walk(uint64_t pc, pa_cfi_rule_t *out)
{
    find_ctx_t ctx = {pc, out};
    memset(out, 0, sizeof(*out));
    out->kind = PA_CFI_OTHER;
    pa_phdr_each(find_cb, &ctx);
}

int pa_cfi_find_fast(uint64_t pc, pa_cfi_rule_t *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = PA_CFI_OTHER;
    return find_fast(pc, out);
}

void pa_cfi_find(uint64_t pc, pa_cfi_rule_t *out)
{
    if (!pa_cfi_find_fast(pc, out))
        pa_cfi_find_walk(pc, out);
}
