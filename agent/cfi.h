/*
 * cfi.h — what it takes to step one x86-64 frame, read from the DWARF call
 * frame information (.eh_frame) the loader already mapped.
 *
 * A rule covers the common shape of compiled code: the CFA is rsp or rbp
 * plus a constant, the return address is at CFA-8, and the caller's rbp is
 * either untouched or saved at CFA+k.  Everything else (signal frames, CFA
 * expressions from stack realignment, code without unwind info) is reported
 * as PA_CFI_OTHER, and the caller leaves such stacks to libunwind.
 */
#ifndef PA_CFI_H
#define PA_CFI_H

#include <stdint.h>

enum pa_cfi_kind {
    PA_CFI_NONE = 0,      /* empty cache slot */
    PA_CFI_STEP = 1,      /* a normal frame: the rule below applies */
    PA_CFI_OUTERMOST = 2, /* return address undefined: the stack ends here */
    PA_CFI_OTHER = 3,     /* not expressible as a rule: use libunwind */
};

#define PA_CFI_RBP_SAME INT16_MIN /* rbp_off value: caller's rbp is ours */

typedef struct pa_cfi_rule {
    int32_t cfa_off; /* CFA = (cfa_rbp ? rbp : rsp) + cfa_off */
    int16_t rbp_off; /* caller's rbp is at CFA + rbp_off, or PA_CFI_RBP_SAME */
    uint8_t cfa_rbp;
    uint8_t kind;    /* enum pa_cfi_kind */
} pa_cfi_rule_t;

/* Finds the rule for code address `pc` (the address to look up: a return
 * address minus one, or an exact instruction address for the first frame).
 * Never allocates.  Finds pc's object with _dl_find_object (lock-free), or
 * else walks dl_iterate_phdr(3), which takes the loader's lock.  Only for a
 * pc on the calling thread's own running stack: nothing holds the object
 * loaded while its tables are read, except that its code is running (for a
 * copied stack of another thread, use pa_cfi_find_walk: under the lock no
 * dlclose unmaps it).  Always fills *out (PA_CFI_OTHER when unknown). */
void pa_cfi_find(uint64_t pc, pa_cfi_rule_t *out);

/* Its two lookups, which tests compare: _dl_find_object (returns 0 when it
 * cannot answer) and the dl_iterate_phdr walk. */
int pa_cfi_find_fast(uint64_t pc, pa_cfi_rule_t *out);
void pa_cfi_find_walk(uint64_t pc, pa_cfi_rule_t *out);

/* The same, given the module's .eh_frame_hdr and the bounds of the memory
 * that may be read while parsing (tests feed it synthetic tables). */
void pa_cfi_find_in(uint64_t pc, const uint8_t *hdr, uint64_t hdr_len, uint64_t lo, uint64_t hi,
                    pa_cfi_rule_t *out);

#endif
