/*
 * unwind_fds — where libunwind's memory-validation pipe sits, as the
 * program sees its fds.  With an argument, the program first closes every
 * fd from 3 up (close_range, as a daemon or CPython's child does); then it
 * allocates from under a function without unwind info (no_cfi_call, plain
 * asm), whose frame the agent hands to libunwind, which validates the
 * addresses it reads through that pipe.
 * Prints, at start, after the close and after the allocations, the fds
 * below 960 (the agent's range, agent/libc.c pa_fd_high) that are
 * close-on-exec ("-" for none: an inherited fd is never close-on-exec, so
 * only this process's own show), and at the end how many pipes are open
 * at 960 and up.  Checked by tests/e2e/unwind_fds.sh.
 */
#include "wl.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

__asm__(".text\n"
        ".globl no_cfi_call\n"
        ".type no_cfi_call,@function\n"
        "no_cfi_call:\n"
        "  push %rbp\n"
        "  mov %rsp, %rbp\n"
        "  call *%rdi\n"
        "  pop %rbp\n"
        "  ret\n"
        ".size no_cfi_call, .-no_cfi_call\n");
void no_cfi_call(void (*fn)(void));

void *volatile unwind_fds_sink;

NOINLINE void alloc_leaf(void)
{
    for (int i = 0; i < 3; i++)
        unwind_fds_sink = malloc(100 + (size_t)i);
    NO_TAIL();
}

/* fds from the raw getdents64 of /proc/self/fd (no opendir: it allocates) */
static void list(const char *tag, int high_pipes)
{
    char buf[4096], line[512];
    size_t n = 0;
    int pipes = 0;
    long dfd = syscall(SYS_openat, AT_FDCWD, "/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    long got;
    line[0] = 0;
    while (dfd >= 0 && (got = syscall(SYS_getdents64, dfd, buf, sizeof(buf))) > 0) {
        for (long off = 0; off < got;) {
            struct { uint64_t ino; int64_t off; unsigned short reclen; unsigned char type; char name[]; } *d =
                (void *)(buf + off);
            off += d->reclen;
            if (d->name[0] == '.')
                continue;
            int fd = atoi(d->name);
            struct stat st;
            if (fd == dfd || fd < 3)
                continue;
            if (fd >= 960) {
                pipes += fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
                continue;
            }
            if (fcntl(fd, F_GETFD) & FD_CLOEXEC)
                n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%d", n ? " " : "", fd);
        }
    }
    if (dfd >= 0)
        close((int)dfd);
    if (high_pipes)
        out("%s: %s pipes at 960+: %d\n", tag, n ? line : "-", pipes);
    else
        out("%s: %s\n", tag, n ? line : "-");
}

int main(int argc, char **argv)
{
    list("start", 0);
    if (argc > 1)
        close_range(3, ~0U, 0);
    list("closed", 0);
    no_cfi_call(alloc_leaf);
    list("after", 1);
    return 0;
}
