/*
 * test_agent_cfi — agent/cfi.c, the .eh_frame reader behind the default
 * unwinder.  (Whether the stacks it produces equal libunwind's is checked
 * end to end by tests/e2e/unwind.sh.)
 *
 *  - hand-written tables (a .eh_frame_hdr and .eh_frame built below, byte by
 *    byte from DWARF 4 §6.4 and the LSB): CIEs with different alignment
 *    factors, versions and augmentations, FDEs whose instructions move the
 *    CFA and save and restore rbp, with the rule written out by hand for
 *    addresses inside each FDE; and the shapes cfi.c must refuse (CFA
 *    expressions, rbp in another register, the return address elsewhere,
 *    signal frames, unknown opcodes ...) giving "other".  The checks below
 *    this one compare cfi.c with itself, so only these catch a wrong
 *    reading of an instruction;
 *  - rules for this program's own code: a normal function gives a
 *    rsp-based rule with the return address at CFA-8, _start is the
 *    outermost frame, addresses outside every module give "other";
 *  - a copy of the segment that holds .eh_frame_hdr and .eh_frame, read
 *    through pa_cfi_find_in(), gives the same rule as the live one for every
 *    function in the table;
 *  - the same copy with random bytes corrupted, thousands of times: every
 *    answer is one of the defined kinds and nothing is read outside the
 *    copy (run under ASan by `make asan`).
 */
#include "check.h"

#include "cfi.h"

#include <link.h>
#include <stdlib.h>
#include <string.h>

typedef struct self {
    const uint8_t *hdr;
    uint64_t hdr_len;
    uint64_t seg_lo, seg_hi; /* the PT_LOAD holding .eh_frame_hdr */
} self_t;

static int self_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    self_t *s = arg;
    const ElfW(Phdr) *eh = NULL;
    (void)size;
    if (info->dlpi_name && info->dlpi_name[0])
        return 0; /* the main program has an empty name */
    for (unsigned i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_GNU_EH_FRAME)
            eh = &info->dlpi_phdr[i];
    if (!eh)
        return 0;
    s->hdr = (const uint8_t *)(info->dlpi_addr + eh->p_vaddr);
    s->hdr_len = eh->p_memsz;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uint64_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && (uint64_t)(uintptr_t)s->hdr >= lo &&
            (uint64_t)(uintptr_t)s->hdr < lo + ph->p_memsz) {
            s->seg_lo = lo;
            s->seg_hi = lo + ph->p_filesz; /* bss is not unwind data */
        }
    }
    return 1;
}

/* Function starts listed in the search table of .eh_frame_hdr. */
static unsigned table_pcs(const self_t *s, uint64_t *pcs, unsigned max)
{
    const uint8_t *p = s->hdr + 4;
    uint32_t count;
    unsigned n = 0;
    if (s->hdr[0] != 1 || s->hdr[3] != 0x3b) /* version 1, datarel sdata4 */
        return 0;
    p += 4;                                     /* eh_frame_ptr (sdata4) */
    memcpy(&count, p, 4);                       /* fde_count (udata4) */
    p += 4;
    for (uint32_t i = 0; i < count && n < max; i++) {
        int32_t start;
        memcpy(&start, p + 8 * i, 4);
        pcs[n++] = (uint64_t)(uintptr_t)s->hdr + (uint64_t)(int64_t)start;
    }
    return n;
}

/* The segment also holds .rodata, whose globals ASan surrounds with
 * poisoned redzones: copy it without instrumentation. */
__attribute__((no_sanitize("address"))) static void copy_segment(uint8_t *dst, uint64_t lo, size_t n)
{
    const volatile uint8_t *src = (const volatile uint8_t *)(uintptr_t)lo;
    for (size_t i = 0; i < n; i++)
        dst[i] = src[i];
}

static __attribute__((noinline)) int plain_function(int x)
{
    volatile int v = x * 3;
    return v + 1;
}

static int same_rule(const pa_cfi_rule_t *a, const pa_cfi_rule_t *b)
{
    if (a->kind != b->kind)
        return 0;
    if (a->kind != PA_CFI_STEP)
        return 1;
    return a->cfa_off == b->cfa_off && a->rbp_off == b->rbp_off && a->cfa_rbp == b->cfa_rbp;
}

/* ---- hand-written unwind tables --------------------------------------- */

enum { /* DWARF 4 §7.23 */
    CFA_advance_loc = 0x40, CFA_offset = 0x80, CFA_restore = 0xc0,
    CFA_nop = 0x00, CFA_set_loc = 0x01, CFA_advance_loc1 = 0x02, CFA_advance_loc2 = 0x03,
    CFA_advance_loc4 = 0x04, CFA_offset_extended = 0x05, CFA_restore_extended = 0x06,
    CFA_undefined = 0x07, CFA_same_value = 0x08, CFA_register = 0x09,
    CFA_remember_state = 0x0a, CFA_restore_state = 0x0b, CFA_def_cfa = 0x0c,
    CFA_def_cfa_register = 0x0d, CFA_def_cfa_offset = 0x0e, CFA_def_cfa_expression = 0x0f,
    CFA_expression = 0x10, CFA_offset_extended_sf = 0x11, CFA_def_cfa_sf = 0x12,
    CFA_def_cfa_offset_sf = 0x13, CFA_val_offset = 0x14, CFA_val_offset_sf = 0x15,
    CFA_val_expression = 0x16, CFA_GNU_args_size = 0x2e,
    CFA_GNU_negative_offset_extended = 0x2f,
};
enum { RBP = 6, RSP = 7, R12 = 12, RA = 16, OP_breg7 = 0x77 };

/* The image: .eh_frame_hdr at 0 (room for MAX_FDES table entries), then
 * .eh_frame.  The "code" the FDEs describe is at CODE, past the image:
 * cfi.c reads only unwind data, never code. */
#define IMG_SIZE 8192
#define EH_FRAME_AT 512
#define MAX_FDES 48
static uint8_t img[IMG_SIZE] __attribute__((aligned(16)));
static size_t img_n = EH_FRAME_AT;
static uint64_t tab_pc[MAX_FDES], tab_fde[MAX_FDES];
static unsigned nfdes;
static uint64_t hdr_len;
#define IMG ((uint64_t)(uintptr_t)img)
#define CODE (IMG + 0x10000)

static void put(const void *p, size_t n)
{
    if (img_n + n <= IMG_SIZE)
        memcpy(img + img_n, p, n);
    img_n += n;
}
static void put8(uint8_t v) { put(&v, 1); }
static void put32(uint32_t v) { put(&v, 4); }
static void put64(uint64_t v) { put(&v, 8); }
static void put_uleb(uint64_t v)
{
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        put8(b | (v ? 0x80 : 0));
    } while (v);
}
static void put_sleb(int64_t v)
{
    for (;;) {
        uint8_t b = v & 0x7f;
        v >>= 7; /* arithmetic: gcc, clang */
        if ((v == 0 && !(b & 0x40)) || (v == -1 && (b & 0x40))) {
            put8(b);
            return;
        }
        put8(b | 0x80);
    }
}

/* Entries are padded with DW_CFA_nop to 8 bytes, as assemblers do; the
 * length field does not count itself. */
static void end_entry(size_t at)
{
    while ((img_n - at) % 8)
        put8(CFA_nop);
    uint32_t len = (uint32_t)(img_n - at - 4);
    memcpy(img + at, &len, 4);
}

typedef struct tcie {
    size_t at;
    int pcrel;   /* FDE addresses DW_EH_PE_pcrel|sdata4 ('R'), else absptr */
    int aug;     /* FDEs carry an augmentation data length ('z') */
    int lsda;    /* ... holding a 4-byte LSDA pointer ('L') */
} tcie_t;

/* A CIE with augmentation string aug (letters from "zPLRS"), the given
 * factors and initial instructions. */
static tcie_t cie(unsigned version, const char *aug, uint64_t code_align, int64_t data_align,
                  const uint8_t *ins, size_t nins)
{
    tcie_t c = {img_n, 0, aug[0] == 'z', 0};
    put32(0); /* length, patched */
    put32(0); /* CIE id */
    put8((uint8_t)version);
    put(aug, strlen(aug) + 1);
    if (version == 4) {
        put8(8); /* address size */
        put8(0); /* segment selector size */
    }
    put_uleb(code_align);
    put_sleb(data_align);
    if (version == 1)
        put8(RA);
    else
        put_uleb(RA);
    if (c.aug) {
        uint8_t data[16];
        size_t n = 0;
        for (const char *a = aug + 1; *a; a++) {
            if (*a == 'R') {
                data[n++] = 0x1b; /* pcrel | sdata4 */
                c.pcrel = 1;
            } else if (*a == 'L') {
                data[n++] = 0x1b;
                c.lsda = 1;
            } else if (*a == 'P') {
                data[n++] = 0x9b; /* indirect | pcrel | sdata4 */
                memset(data + n, 0, 4);
                n += 4;
            }
        }
        put_uleb(n);
        put(data, n);
    }
    put(ins, nins);
    end_entry(c.at);
    return c;
}

/* An FDE for [CODE + off, CODE + off + range) in the header's table. */
static void fde(const tcie_t *c, uint64_t off, uint32_t range, const uint8_t *ins, size_t nins)
{
    size_t at = img_n;
    uint64_t pc = CODE + off;
    put32(0);
    put32((uint32_t)(img_n - c->at)); /* back to the CIE from this field */
    if (c->pcrel) {
        put32((uint32_t)(pc - (IMG + img_n)));
        put32(range);
    } else {
        put64(pc);
        put64(range);
    }
    if (c->aug) {
        put_uleb(c->lsda ? 4 : 0);
        if (c->lsda)
            put32(0);
    }
    put(ins, nins);
    end_entry(at);
    if (nfdes < MAX_FDES) {
        tab_pc[nfdes] = pc;
        tab_fde[nfdes++] = IMG + at;
    }
}

/* The terminator and .eh_frame_hdr (FDEs are added in address order). */
static void finish_img(void)
{
    uint8_t h[4] = {1, 0x1b, 0x03, 0x3b}; /* version, ptr/count/table encodings */
    uint32_t v;
    size_t end;
    put32(0);
    end = img_n;
    img_n = 0;
    put(h, 4);
    put32((uint32_t)(EH_FRAME_AT - 4)); /* eh_frame_ptr, pc-relative */
    put32(nfdes);
    for (unsigned i = 0; i < nfdes; i++) {
        v = (uint32_t)(tab_pc[i] - IMG);
        put32(v);
        v = (uint32_t)(tab_fde[i] - IMG);
        put32(v);
    }
    hdr_len = img_n;
    img_n = end;
}

#define INS(...) (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})

/* The rule at CODE + off, as text: "rsp+8 rbp=same", "rbp+16 rbp@-16",
 * "outermost", "other". */
static const char *rule_at(uint64_t off)
{
    static char txt[64];
    pa_cfi_rule_t r;
    memset(&r, 0x5a, sizeof(r));
    pa_cfi_find_in(CODE + off, img, hdr_len, IMG, IMG + img_n, &r);
    if (r.kind == PA_CFI_OUTERMOST)
        return "outermost";
    if (r.kind == PA_CFI_OTHER)
        return "other";
    if (r.kind != PA_CFI_STEP)
        return "bad kind";
    if (r.rbp_off == PA_CFI_RBP_SAME)
        snprintf(txt, sizeof(txt), "%s%+d rbp=same", r.cfa_rbp ? "rbp" : "rsp", (int)r.cfa_off);
    else
        snprintf(txt, sizeof(txt), "%s%+d rbp@%+d", r.cfa_rbp ? "rbp" : "rsp", (int)r.cfa_off,
                 (int)r.rbp_off);
    return txt;
}

#define CHECK_RULE(off, want) CHECK_STREQ(rule_at(off), want)

static void build_img(void)
{
    /* GCC's CIE: CFA = rsp + 8, return address at CFA - 8. */
    tcie_t a = cie(1, "zR", 1, -8, INS(CFA_def_cfa, RSP, 8, CFA_offset | RA, 1));
    /* Version 3, no augmentation (absolute FDE addresses), code alignment
     * 4 and data alignment -4: factored operands scale, unfactored don't. */
    tcie_t b = cie(3, "", 4, -4, INS(CFA_def_cfa, RSP, 8, CFA_offset | RA, 2));
    /* Version 4 with a personality routine and LSDA (C++ code). */
    tcie_t c = cie(4, "zPLR", 1, -8, INS(CFA_def_cfa_sf, RSP, 0x7f /* -1 */, CFA_offset | RA, 1));
    /* A signal trampoline's CIE. */
    tcie_t sig = cie(1, "zRS", 1, -8, INS(CFA_def_cfa, RSP, 8, CFA_offset | RA, 1));

    /* 0x000: push rbp; mov rsp,rbp; ...; an epilogue in the middle
     * (remember/restore_state), as GCC writes for early returns. */
    fde(&a, 0x000, 0x40,
        INS(CFA_advance_loc | 1, CFA_def_cfa_offset, 16, CFA_offset | RBP, 2,
            CFA_advance_loc | 3, CFA_def_cfa_register, RBP,
            CFA_advance_loc1, 0x1c, CFA_remember_state, CFA_def_cfa, RSP, 8, CFA_restore | RBP,
            CFA_advance_loc | 1, CFA_restore_state));
    /* 0x100: without frame pointer: push rbp; push rbx; sub $0x1018,rsp
     * (a two-byte LEB128 offset); the epilogue pops back down. */
    fde(&a, 0x100, 0x80,
        INS(CFA_advance_loc | 1, CFA_def_cfa_offset, 16, CFA_offset | RBP, 2,
            CFA_advance_loc | 1, CFA_def_cfa_offset, 24,
            CFA_advance_loc | 4, CFA_def_cfa_offset, 0xb0, 0x20 /* 4144 */,
            CFA_advance_loc2, 0x40, 0x00, CFA_def_cfa_offset, 24,
            CFA_advance_loc | 1, CFA_def_cfa_offset, 16,
            CFA_advance_loc | 1, CFA_def_cfa_offset, 8, CFA_restore | RBP));
    /* 0x200: CIE b's factors (advance_loc 1 = 4 bytes, data -4). */
    fde(&b, 0x200, 0x80,
        INS(CFA_advance_loc | 1, CFA_def_cfa_offset_sf, 0x7c /* -4 */, CFA_offset | RBP, 4,
            CFA_advance_loc | 2, CFA_def_cfa_sf, RBP, 0x7c,
            CFA_advance_loc4, 4, 0, 0, 0, CFA_def_cfa_offset, 24,
            CFA_advance_loc | 1, CFA_offset_extended_sf, RBP, 6,
            CFA_advance_loc | 1, CFA_GNU_args_size, 16, CFA_offset_extended, RBP, 4));
    /* 0x300: CIE c, and DW_CFA_set_loc to 0x310.  Its operand is encoded
     * like the FDE's addresses, pc-relative (to where it is stored): patched
     * in after the length, CIE pointer, begin and range (4 bytes each), the
     * augmentation length and LSDA (5) and 7 bytes of instructions. */
    size_t at = img_n, set_loc_at = at + 16 + 5 + 7;
    fde(&c, 0x300, 0x20,
        INS(CFA_advance_loc | 1, CFA_def_cfa_offset, 16, CFA_GNU_negative_offset_extended, RBP, 2,
            CFA_set_loc, 0, 0, 0, 0, CFA_def_cfa_offset, 32, CFA_same_value, RBP));
    uint32_t loc = (uint32_t)(CODE + 0x310 - (IMG + set_loc_at));
    memcpy(img + set_loc_at, &loc, 4);
    /* 0x400: _start: return address undefined, then restored. */
    fde(&a, 0x400, 0x20,
        INS(CFA_advance_loc | 1, CFA_undefined, RA, CFA_advance_loc | 1, CFA_restore_extended, RA));
    /* Refused shapes, one an FDE, each after one byte of a normal frame. */
    fde(&a, 0x500, 0x10, INS(CFA_advance_loc | 1, CFA_def_cfa_expression, 2, OP_breg7, 8));
    fde(&a, 0x600, 0x10, INS(CFA_advance_loc | 1, CFA_expression, RBP, 2, OP_breg7, 8));
    fde(&a, 0x700, 0x10, INS(CFA_advance_loc | 1, CFA_register, RBP, 3));
    fde(&a, 0x800, 0x10, INS(CFA_advance_loc | 1, CFA_val_offset, RBP, 2));
    fde(&a, 0x900, 0x10, INS(CFA_advance_loc | 1, CFA_offset | RA, 2)); /* RA at CFA-16 */
    fde(&a, 0xa00, 0x10, INS(CFA_advance_loc | 1, CFA_def_cfa_register, R12));
    fde(&a, 0xb00, 0x10, INS(CFA_advance_loc | 1, CFA_restore_state)); /* nothing remembered */
    fde(&a, 0xc00, 0x10, INS(CFA_advance_loc | 1, 0x17)); /* no such opcode in DWARF 4 */
    fde(&a, 0xd00, 0x10,
        INS(CFA_advance_loc | 1, CFA_remember_state, CFA_remember_state, CFA_remember_state,
            CFA_remember_state, CFA_remember_state, CFA_remember_state, CFA_remember_state,
            CFA_remember_state, CFA_remember_state));
    fde(&a, 0xe00, 0x10, INS(CFA_advance_loc | 1, CFA_def_cfa_offset, 0));
    fde(&a, 0xf00, 0x10, INS(CFA_advance_loc | 1, CFA_offset | RBP, 0xc4, 0x27 /* 5060: -40480 */));
    fde(&a, 0x1000, 0x10, INS(CFA_advance_loc | 1, CFA_val_expression, RBP, 2, OP_breg7, 8));
    fde(&sig, 0x1100, 0x10, INS(CFA_nop));
    finish_img();
}

TEST(cfi_handmade_rules)
{
    CHECK(img_n <= IMG_SIZE && nfdes < MAX_FDES);
    /* frame-pointer function */
    CHECK_RULE(0x00, "rsp+8 rbp=same");
    CHECK_RULE(0x01, "rsp+16 rbp@-16");
    CHECK_RULE(0x03, "rsp+16 rbp@-16");
    CHECK_RULE(0x04, "rbp+16 rbp@-16");
    CHECK_RULE(0x1f, "rbp+16 rbp@-16");
    CHECK_RULE(0x20, "rsp+8 rbp=same"); /* after leave, at ret */
    CHECK_RULE(0x21, "rbp+16 rbp@-16"); /* the remembered row, CFA included */
    CHECK_RULE(0x3f, "rbp+16 rbp@-16");
    CHECK_RULE(0x40, "other"); /* past the FDE, before the next */
    CHECK_RULE(0xff, "other");
    CHECK_RULE((uint64_t)-1, "other"); /* before the first FDE */
    /* no frame pointer */
    CHECK_RULE(0x100, "rsp+8 rbp=same");
    CHECK_RULE(0x101, "rsp+16 rbp@-16");
    CHECK_RULE(0x102, "rsp+24 rbp@-16");
    CHECK_RULE(0x105, "rsp+24 rbp@-16");
    CHECK_RULE(0x106, "rsp+4144 rbp@-16");
    CHECK_RULE(0x145, "rsp+4144 rbp@-16");
    CHECK_RULE(0x146, "rsp+24 rbp@-16");
    CHECK_RULE(0x147, "rsp+16 rbp@-16");
    CHECK_RULE(0x148, "rsp+8 rbp=same");
    CHECK_RULE(0x17f, "rsp+8 rbp=same");
    /* code alignment 4, data alignment -4 */
    CHECK_RULE(0x200, "rsp+8 rbp=same");
    CHECK_RULE(0x203, "rsp+8 rbp=same");
    CHECK_RULE(0x204, "rsp+16 rbp@-16");
    CHECK_RULE(0x20b, "rsp+16 rbp@-16");
    CHECK_RULE(0x20c, "rbp+16 rbp@-16");
    CHECK_RULE(0x21b, "rbp+16 rbp@-16");
    CHECK_RULE(0x21c, "rbp+24 rbp@-16"); /* def_cfa_offset is not factored */
    CHECK_RULE(0x220, "rbp+24 rbp@-24");
    CHECK_RULE(0x224, "rbp+24 rbp@-16");
    CHECK_RULE(0x27f, "rbp+24 rbp@-16");
    /* version 4, zPLR, set_loc */
    CHECK_RULE(0x300, "rsp+8 rbp=same");
    CHECK_RULE(0x301, "rsp+16 rbp@+16");
    CHECK_RULE(0x30f, "rsp+16 rbp@+16");
    CHECK_RULE(0x310, "rsp+32 rbp=same");
    CHECK_RULE(0x31f, "rsp+32 rbp=same");
    /* undefined return address */
    CHECK_RULE(0x400, "rsp+8 rbp=same");
    CHECK_RULE(0x401, "outermost");
    CHECK_RULE(0x402, "rsp+8 rbp=same");
}

TEST(cfi_handmade_refused)
{
    static const char *const why[] = {
        "CFA expression", "rbp by expression", "rbp in a register", "rbp by val_offset",
        "return address at CFA-16", "CFA from r12", "restore_state, nothing remembered",
        "unknown opcode", "9 remember_states", "CFA offset 0", "rbp beyond int16",
        "rbp by val_expression",
    };
    for (unsigned i = 0; i < sizeof(why) / sizeof(why[0]); i++) {
        uint64_t at = 0x500 + 0x100 * (uint64_t)i;
        /* the first byte runs no instruction: a normal frame */
        if (strcmp(rule_at(at), "rsp+8 rbp=same") != 0 || strcmp(rule_at(at + 1), "other") != 0) {
            printf("  FAIL %s: at +0 %s", why[i], rule_at(at));
            printf(", at +1 %s (want rsp+8 rbp=same, other)\n", rule_at(at + 1));
            check_cur_fails++;
        }
    }
    CHECK_RULE(0x1100, "other"); /* signal frame */
    CHECK_RULE(0x110f, "other");
    CHECK_EQ_U64(nfdes, 18);
}

static self_t s;
static uint64_t pcs[4096];
static unsigned npcs;
static uint8_t *clean;
static size_t len;

TEST(cfi_own_rules)
{
    pa_cfi_rule_t r;
    extern char _start[];
    /* At a function's first instruction the CFA is rsp + 8 and the return
     * address is at CFA - 8; rbp is untouched. */
    pa_cfi_find((uint64_t)(uintptr_t)plain_function, &r);
    CHECK(r.kind == PA_CFI_STEP);
    CHECK(r.cfa_rbp == 0 && r.cfa_off == 8);
    CHECK(r.rbp_off == PA_CFI_RBP_SAME);
    /* glibc's _start marks the return address undefined after its first
     * instruction: the end of every main-thread stack. */
    pa_cfi_find((uint64_t)(uintptr_t)_start + 4, &r);
    CHECK(r.kind == PA_CFI_OUTERMOST);
    pa_cfi_find(0x10, &r);
    CHECK(r.kind == PA_CFI_OTHER);
}

/* The copy answers like the original, for every function. */
TEST(cfi_copy_agrees)
{
    pa_cfi_rule_t r, r2;
    uint64_t delta = (uint64_t)(uintptr_t)clean - s.seg_lo;
    const uint8_t *chdr = clean + ((uint64_t)(uintptr_t)s.hdr - s.seg_lo);
    unsigned agree = 0, steps = 0;
    CHECK(npcs > 5);
    for (unsigned i = 0; i < npcs; i++) {
        for (unsigned off = 0; off < 24; off += 5) {
            pa_cfi_find(pcs[i] + off, &r);
            pa_cfi_find_in(pcs[i] + off + delta, chdr, s.hdr_len, (uint64_t)(uintptr_t)clean,
                           (uint64_t)(uintptr_t)clean + len, &r2);
            agree += same_rule(&r, &r2);
            steps += r.kind == PA_CFI_STEP;
        }
    }
    CHECK_EQ_U64(agree, npcs * 5);
    CHECK(steps > npcs);
}

/* The object holding `want` (libc, found through one of its functions). */
typedef struct holder {
    uint64_t want;
    self_t s;
} holder_t;

static int holder_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    holder_t *h = arg;
    int inside = 0;
    (void)size;
    for (unsigned i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uint64_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type == PT_LOAD && h->want >= lo && h->want < lo + ph->p_memsz)
            inside = 1;
    }
    for (unsigned i = 0; inside && i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_GNU_EH_FRAME) {
            h->s.hdr = (const uint8_t *)(info->dlpi_addr + info->dlpi_phdr[i].p_vaddr);
            h->s.hdr_len = info->dlpi_phdr[i].p_memsz;
        }
    return inside;
}

/* _dl_find_object's lookup (lock-free, what the hooks use) answers for
 * every function of the program and of libc, exactly as the
 * dl_iterate_phdr walk does. */
TEST(cfi_fast_agrees)
{
    static uint64_t lpcs[8192];
    pa_cfi_rule_t r, r2;
    holder_t h = {.want = (uint64_t)(uintptr_t)&qsort};
    unsigned n, fast = 0, agree = 0, steps = 0;
    dl_iterate_phdr(holder_cb, &h);
    CHECK(h.s.hdr != NULL);
    n = h.s.hdr ? table_pcs(&h.s, lpcs, 8192 - 4096) : 0;
    CHECK(n > 1000); /* libc has thousands of FDEs */
    for (unsigned i = 0; i < npcs && n < 8192; i++)
        lpcs[n++] = pcs[i];
    for (unsigned i = 0; i < n; i++)
        for (unsigned off = 0; off < 21; off += 7) {
            fast += pa_cfi_find_fast(lpcs[i] + off, &r) == 1;
            pa_cfi_find_walk(lpcs[i] + off, &r2);
            agree += same_rule(&r, &r2);
            steps += r.kind == PA_CFI_STEP;
        }
    printf("  %u lookups: %u by _dl_find_object, %u agree with the walk, %u steps\n", n * 3, fast,
           agree, steps);
    CHECK_EQ_U64(fast, n * 3);
    CHECK_EQ_U64(agree, n * 3);
    CHECK(steps > n);
    /* nothing mapped there: both say so */
    CHECK_EQ_U64((uint64_t)pa_cfi_find_fast(0x10, &r), 0);
}

/* Corrupted copies: any answer, but a defined one, and no stray read. */
TEST(cfi_corrupt_tables)
{
    pa_cfi_rule_t r;
    uint64_t seed = 42, kinds[4] = {0};
    size_t hdr_off = (size_t)((uint64_t)(uintptr_t)s.hdr - s.seg_lo);
    uint8_t *copy = malloc(len);
    CHECK(copy != NULL);
    if (!copy)
        return;
    for (unsigned iter = 0; iter < 3000; iter++) {
        memcpy(copy, clean, len);
        unsigned flips = 1 + (unsigned)(seed % 8);
        for (unsigned f = 0; f < flips; f++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            /* the header, its table and the CFI after it */
            size_t at = hdr_off + (size_t)((seed >> 33) % (len - hdr_off));
            copy[at] ^= (uint8_t)(1u << ((seed >> 20) & 7));
        }
        uint64_t base = (uint64_t)(uintptr_t)copy;
        for (unsigned k = 0; k < 20; k++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            uint64_t pc = pcs[(seed >> 33) % npcs] + ((seed >> 10) & 63) + (base - s.seg_lo);
            pa_cfi_find_in(pc, copy + hdr_off, s.hdr_len, base, base + len, &r);
            CHECK(r.kind >= PA_CFI_STEP && r.kind <= PA_CFI_OTHER);
            kinds[r.kind & 3]++;
        }
    }
    CHECK(kinds[PA_CFI_STEP] > 0 && kinds[PA_CFI_OTHER] > 0);
    free(copy);
}

int main(void)
{
    dl_iterate_phdr(self_cb, &s);
    if (!s.hdr || s.seg_hi <= s.seg_lo) {
        printf("FAIL cfi_setup: no .eh_frame_hdr in the test program\n");
        return 1;
    }
    len = (size_t)(s.seg_hi - s.seg_lo);
    clean = malloc(len);
    if (!clean)
        return 1;
    copy_segment(clean, s.seg_lo, len);
    npcs = table_pcs(&s, pcs, 4096);
    build_img();
    RUN(cfi_handmade_rules);
    RUN(cfi_handmade_refused);
    RUN(cfi_own_rules);
    RUN(cfi_copy_agrees);
    RUN(cfi_corrupt_tables);
    RUN(cfi_fast_agrees);
    free(clean);
    CHECK_DONE();
}
