/*
 * seccomp_deny RULE... -- PROG [ARG...]
 *
 * Runs PROG under a seccomp filter (seccomp(2), SECCOMP_MODE_FILTER) that
 * fails the syscalls the rules name with the errno they give, the way a
 * container runtime's profile or an older kernel refuses them, so tests
 * reach the agent's fallbacks on any machine.  A filter sees every call,
 * raw syscall(2) included, which a preloaded wrapper would not.
 *
 * RULE is NAME/ERRNO or NAME:I=VALUE/ERRNO (only calls whose argument I,
 * 0-5, equals VALUE).  NAME is one of the few syscalls tests need (table
 * below); ERRNO is EPERM, ENOSYS, ENOMEM or EACCES.  Anything else is
 * allowed.  Exit status 125 on a bad rule or when the filter cannot be
 * installed; otherwise PROG's.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const struct {
    const char *name;
    long nr;
} calls[] = {
    {"close_range", SYS_close_range},
    {"pidfd_open", SYS_pidfd_open},
    {"pidfd_getfd", SYS_pidfd_getfd},
    {"mmap", SYS_mmap},
};

static const struct {
    const char *name;
    int err;
} errs[] = {{"EPERM", EPERM}, {"ENOSYS", ENOSYS}, {"ENOMEM", ENOMEM}, {"EACCES", EACCES}};

#define MAX_INSNS 256

static struct sock_filter prog[MAX_INSNS];
static unsigned n;

static void emit(struct sock_filter f)
{
    if (n == MAX_INSNS) {
        fprintf(stderr, "seccomp_deny: too many rules\n");
        exit(125);
    }
    prog[n++] = f;
}

static int bad(const char *rule)
{
    fprintf(stderr, "seccomp_deny: bad rule '%s' (NAME[:I=VALUE]/ERRNO)\n", rule);
    return 125;
}

/* One rule's block: load the syscall number, skip the block unless it
 * matches (and the argument, both 32-bit halves, when given), else fail the
 * call.  Every block loads what it compares, so a skip lands on the next
 * block's first instruction. */
static int add_rule(const char *rule)
{
    char name[32];
    const char *slash = strrchr(rule, '/'), *colon = strchr(rule, ':');
    size_t len = (size_t)((colon && colon < slash ? colon : slash) - rule);
    long nr = -1;
    int err = -1, arg = -1;
    unsigned long long val = 0;
    if (!slash || len == 0 || len >= sizeof(name))
        return bad(rule);
    memcpy(name, rule, len);
    name[len] = 0;
    for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]); i++)
        if (!strcmp(name, calls[i].name))
            nr = calls[i].nr;
    for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
        if (!strcmp(slash + 1, errs[i].name))
            err = errs[i].err;
    if (colon && colon < slash) {
        char *end;
        if (colon[1] < '0' || colon[1] > '5' || colon[2] != '=')
            return bad(rule);
        arg = colon[1] - '0';
        errno = 0;
        val = strtoull(colon + 3, &end, 0);
        if (errno || end != slash)
            return bad(rule);
    }
    if (nr < 0 || err < 0)
        return bad(rule);
    if (arg < 0) {
        emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
        emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 1));
    } else {
        uint32_t lo = offsetof(struct seccomp_data, args) + 8 * (unsigned)arg; /* x86-64: little endian */
        emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
        emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)nr, 0, 5));
        emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, lo));
        emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)val, 0, 3));
        emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, lo + 4));
        emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)(val >> 32), 0, 1));
    }
    emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((uint32_t)err & SECCOMP_RET_DATA)));
    return 0;
}

int main(int argc, char **argv)
{
    int i, r;
    struct sock_fprog fprog;
    /* Another architecture's calls (x32, i386) are not what the rules mean. */
    emit((struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
    emit((struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0));
    emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
        if ((r = add_rule(argv[i])) != 0)
            return r;
    if (i + 1 >= argc) {
        fprintf(stderr, "usage: seccomp_deny RULE... -- PROG [ARG...]\n");
        return 125;
    }
    emit((struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
    fprog.len = (unsigned short)n;
    fprog.filter = prog;
    /* Without no_new_privs only a privileged caller may install a filter. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) != 0) {
        perror("seccomp_deny: installing the filter");
        return 125;
    }
    execvp(argv[i + 1], argv + i + 1);
    perror("seccomp_deny: exec");
    return 127;
}
