/*
 * testmod.h — what the agent sends about a loaded module (path, load bias,
 * executable ranges, build-id), read with dl_iterate_phdr(3) the same way,
 * for tests that declare this process's own modules to the collector.
 */
#ifndef PA_TESTMOD_H
#define PA_TESTMOD_H

#include <elf.h>
#include <limits.h>
#include <link.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

typedef struct modinfo {
    char path[PATH_MAX];
    uint64_t bias;
    uint8_t bid[64];
    size_t bid_len;
    uint64_t ranges[8][2];
    size_t n_ranges;
    int found;
} modinfo_t;

/* Usage: modinfo_t mi = {0}; (set mi.path to a loaded object's name, or leave
 * it empty for the main program) dl_iterate_phdr(phdr_cb, &mi); mi.found. */
static inline int phdr_cb(struct dl_phdr_info *info, size_t size, void *arg)
{
    modinfo_t *mi = arg;
    (void)size;
    const char *name = info->dlpi_name;
    if (mi->path[0] == '\0') { /* the main program: first entry, name "" */
        ssize_t n = readlink("/proc/self/exe", mi->path, sizeof mi->path - 1);
        if (n <= 0)
            return 1;
        mi->path[n] = '\0';
    } else if (strcmp(name, mi->path) != 0) {
        return 0;
    }
    mi->bias = info->dlpi_addr;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X) && mi->n_ranges < 8) {
            mi->ranges[mi->n_ranges][0] = info->dlpi_addr + ph->p_vaddr;
            mi->ranges[mi->n_ranges][1] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
            mi->n_ranges++;
        }
        if (ph->p_type != PT_NOTE)
            continue;
        const char *p = (const char *)(info->dlpi_addr + ph->p_vaddr), *end = p + ph->p_memsz;
        while (p + sizeof(ElfW(Nhdr)) <= end) {
            const ElfW(Nhdr) *nh = (const void *)p;
            const char *nm = p + sizeof(*nh);
            const char *desc = nm + ((nh->n_namesz + 3) & ~3u);
            if (nh->n_type == NT_GNU_BUILD_ID && nh->n_namesz == 4 && !memcmp(nm, "GNU", 4) &&
                nh->n_descsz <= sizeof mi->bid) {
                memcpy(mi->bid, desc, nh->n_descsz);
                mi->bid_len = nh->n_descsz;
            }
            p = desc + ((nh->n_descsz + 3) & ~3u);
        }
    }
    mi->found = 1;
    return 1;
}

#endif
