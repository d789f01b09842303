/*
 * test_agent_cfi — agent/cfi.c, the .eh_frame reader behind the default
 * unwinder.  (Whether the stacks it produces equal libunwind's is checked
 * end to end by tests/e2e/unwind.sh.)
 *
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
    RUN(cfi_own_rules);
    RUN(cfi_copy_agrees);
    RUN(cfi_corrupt_tables);
    free(clean);
    CHECK_DONE();
}
