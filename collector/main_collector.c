/*
 * perfagent-collector — the standalone collector daemon: listens for agents,
 * writes one reports directory per traced process under -o DIR, and on
 * SIGINT/SIGTERM finishes the streams still open and exits 0.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "outdir.h"
#include "server.h"

#define PROG "perfagent-collector"

static const char usage_text[] =
    "usage: perfagent-collector --listen unix:PATH|tcp:HOST:PORT -o DIR [--sysroot DIR]\n"
    "                           [--per-thread] [-q]\n"
    "\n"
    "Receives perfagent streams from traced processes (LD_PRELOAD=libperfagent.so with\n"
    "PERFAGENT_COLLECTOR set to the same address) and writes DIR/<pid>/{leaks.json,\n"
    "leaks.txt,alloc.folded,inuse.folded,alloc.svg,inuse.svg,summary.txt} (and\n"
    "cpu.folded, cpu.svg when the process was CPU-sampled: PERFAGENT_CPU_HZ) plus\n"
    "DIR/index.json as each process's stream ends.  SIGINT or SIGTERM: finish the\n"
    "open streams, exit 0.\n"
    "\n"
    "  -l, --listen ADDR   unix:PATH (socket created 0600; only this uid or root may\n"
    "                      connect) or tcp:HOST:PORT (empty HOST = 127.0.0.1; no\n"
    "                      authentication on tcp; PORT 0 picks a free port)\n"
    "  -o, --output DIR    reports directory (created if missing)\n"
    "      --sysroot DIR   resolve the traced programs' files under DIR\n"
    "      --per-thread    cpu.folded and cpu.svg: each stack under its thread's\n"
    "                      name ('mix0;main;f 12')\n"
    "  -q, --quiet         log only faults and errors\n"
    "  -h, --help          this text\n"
    "      --version       print the version\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, PROG ": ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see --help)\n");
    return 2;
}

/* getopt_long's own messages name argv[0]; ours name PROG.  optopt names a
 * bad short option; for long ones it is 0. */
static int bad_option(int c, char **argv)
{
    char opt[3] = {'-', (char)optopt, '\0'};
    const char *name = optopt ? opt : argv[optind - 1];
    if (c == ':') /* a missing argument is always at the end: argv names it */
        return usage_error("option '%s' needs an argument", argv[optind - 1]);
    return usage_error("unknown option '%s'", name);
}

/* SIGINT/SIGTERM arrive through a signalfd(2) in the event loop, so stopping
 * is ordinary code, not a handler racing the loop. */
static void on_signal(server_t *srv, int fd, void *arg)
{
    struct signalfd_siginfo si;
    int quiet = *(int *)arg;
    if (read(fd, &si, sizeof(si)) != sizeof(si))
        return;
    if (!quiet)
        fprintf(stderr, PROG ": %s: finishing %zu open stream(s)\n", strsignal((int)si.ssi_signo),
                server_conn_count(srv));
    server_stop(srv);
}

/* Each agent holds one descriptor here: lift the soft limit (often 1024) to
 * the hard one so SERVER_MAX_CONNS, not EMFILE, is what refuses agents.  Not
 * done in server.c: `perfagent run` must not change what its child inherits. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

int main(int argc, char **argv)
{
    /* Symbolize from local files only: see cmd_report() in main_cli.c. */
    unsetenv("DEBUGINFOD_URLS");
    static const struct option longopts[] = {{"listen", required_argument, NULL, 'l'},
                                             {"output", required_argument, NULL, 'o'},
                                             {"sysroot", required_argument, NULL, 'S'},
                                             {"per-thread", no_argument, NULL, 'T'},
                                             {"quiet", no_argument, NULL, 'q'},
                                             {"help", no_argument, NULL, 'h'},
                                             {"version", no_argument, NULL, 'V'},
                                             {NULL, 0, NULL, 0}};
    server_opts_t so = {.prog = PROG};
    const char *outpath = NULL;
    char err[SERVER_ERR_LEN > OUTDIR_ERR_LEN ? SERVER_ERR_LEN : OUTDIR_ERR_LEN];
    outdir_t *out = NULL;
    server_t *srv = NULL;
    sigset_t mask;
    int c, sfd = -1, status = 1;

    opterr = 0; /* our own one-line messages, named PROG not argv[0] */
    while ((c = getopt_long(argc, argv, ":l:o:qh", longopts, NULL)) != -1) {
        switch (c) {
        case 'l':
            so.listen = optarg;
            break;
        case 'o':
            outpath = optarg;
            break;
        case 'S':
            so.sysroot = optarg;
            break;
        case 'T':
            so.cpu_per_thread = 1;
            break;
        case 'q':
            so.quiet = 1;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'V':
            printf(PROG " %s\n", PA_VERSION);
            return 0;
        default:
            return bad_option(c, argv);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!so.listen)
        return usage_error("%s--listen ADDR is required", "");
    if (!outpath)
        return usage_error("%s-o DIR is required", "");
    if (strncmp(so.listen, "unix:", 5) && strncmp(so.listen, "tcp:", 4))
        return usage_error("--listen '%s': expected unix:PATH or tcp:HOST:PORT", so.listen);

    raise_nofile();
    signal(SIGPIPE, SIG_IGN); /* a closed stderr pipe must not kill the daemon */
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd < 0) {
        fprintf(stderr, PROG ": signalfd: %s\n", strerror(errno));
        goto out;
    }

    if (!(out = outdir_new(outpath, err))) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    so.out = out;
    if (!(srv = server_new(&so, err))) {
        fprintf(stderr, PROG ": %s\n", err);
        goto out;
    }
    if ((c = server_watch(srv, sfd, on_signal, &so.quiet)) < 0) {
        fprintf(stderr, PROG ": epoll_ctl: %s\n", strerror(-c));
        goto out;
    }
    if (!server_is_local(srv))
        fprintf(stderr,
                PROG ": warning: %s is reachable from other hosts and tcp has no "
                     "authentication\n",
                server_address(srv));
    if (!so.quiet)
        fprintf(stderr, PROG ": listening on %s, reports in %s\n", server_address(srv), outpath);

    status = server_run(srv) < 0 ? 1 : 0;
out:
    server_free(srv); /* removes the unix socket file */
    outdir_free(out);
    if (sfd >= 0)
        close(sfd);
    return status;
}
