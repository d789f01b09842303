/*
 * perfagent — the command-line tool: argument parsing and dispatch to the
 * subcommands (run.c for `run`, report_files.c for `report`).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "diff.h"
#include "flamegraph.h"
#include "outdir.h"
#include "report_files.h"
#include "run.h"
#include "server.h"
#include "session.h"
#include "snapshot_cmd.h"
#include "suppress.h"
#include "top.h"

#define PROG "perfagent"
/* `perfagent run`'s CPU sampling rate unless --cpu or PERFAGENT_CPU_HZ says
 * otherwise (the agent alone defaults to 0: off). */
#define RUN_DEFAULT_CPU_HZ "99"

static const char usage_text[] =
    "usage: perfagent run [-o DIR] [--malloc-rate N] [--cpu HZ] [--per-thread] [--no-suppress]\n"
    "                     [--collector-only] -- CMD [ARGS...]\n"
    "       perfagent report FILE.pfr... -o DIR [--sysroot DIR] [--per-thread] [--no-suppress]\n"
    "       perfagent flamegraph FOLDED -o OUT.svg [--title T] [--unit samples|bytes]\n"
    "       perfagent diff A B -o DIR [--normalize] [--title T] [--unit samples|bytes]\n"
    "       perfagent diff --suspects SNAPSHOTS-DIR|S1 S2 S3... -o DIR\n"
    "       perfagent snapshot PID [--timeout SECONDS]\n"
    "       perfagent top [--kind cpu|alloc|inuse] [-n N] [--sort self|cum] [--raw] [--json] DIR|FILE\n"
    "       perfagent version\n"
    "       perfagent --help\n"
    "\n"
    "run     Run CMD with libperfagent.so preloaded and an embedded collector; write\n"
    "        DIR/<pid>/{leaks.txt,leaks.json,alloc.folded,inuse.folded,alloc.svg,\n"
    "        inuse.svg,cpu.folded,cpu.svg,summary.txt} and DIR/index.json for CMD and\n"
    "        every process it starts.  Exits with CMD's status (128+N if signal N\n"
    "        killed it, 127 if it cannot be executed).\n"
    "          -o, --output DIR     reports directory (default ./perfagent-out)\n"
    "          --malloc-rate N      1 = record every allocation, 0 = heap tracing off\n"
    "          --cpu HZ             CPU samples per second of each thread's CPU time\n"
    "                               (0-10000; 0 = off; default $PERFAGENT_CPU_HZ,\n"
    "                               else " RUN_DEFAULT_CPU_HZ ")\n"
    "          --per-thread         cpu.folded and cpu.svg: each stack under its\n"
    "                               thread's name ('mix0;main;f 12')\n"
    "          --collector-only     do not preload the agent (CMD sets LD_PRELOAD\n"
    "                               itself); PERFAGENT_COLLECTOR is still set\n"
    "          --sysroot DIR        resolve the traced programs' files under DIR\n"
    "          --no-suppress        leaks.*: also the runtimes' one-time allocations\n"
    "                               (and those $PERFAGENT_SUPPRESSIONS names)\n"
    "        The agent library is $PERFAGENT_LIB, else libperfagent.so next to this\n"
    "        program, else ../lib/libperfagent.so from it.\n"
"report  Decode .pfr files (written by the agent with PERFAGENT_OUTPUT) into\n"
    "        the same reports; prints each process's summary.  Exit status 1 if a\n"
    "        file could not be decoded to its end.\n"
    "          -o, --output DIR     reports directory (required)\n"
    "          --sysroot DIR        resolve the traced programs' files under DIR\n"
    "          --per-thread         cpu.folded and cpu.svg: each stack under its\n"
    "                               thread's name ('mix0;main;f 12')\n"
    "          --no-suppress        as for run\n"
    "flamegraph  Render a folded-stack file (root first, 'a;b;c COUNT'; '-' = stdin)\n"
    "        as an interactive flame graph SVG (zoom, search, tooltips; no network).\n"
    "          -o, --output OUT.svg  the SVG (required)\n"
    "          --title T            title (default: the file name)\n"
    "          --unit samples|bytes how values print (default: bytes for\n"
    "                               alloc.folded and inuse.folded, else samples)\n"
    "diff    Compare two profiles: A and B are folded files, or two process report\n"
    "        directories (cpu.folded when both have one, else inuse.folded as diff.*\n"
    "        and alloc.folded as alloc-diff.*).  Writes DIR/diff.svg (sized by B,\n"
    "        red = grew from A, blue = shrank) and DIR/diff.txt (the functions whose\n"
    "        share changed most, self and total, with A%, B% and the delta).\n"
    "          -o, --output DIR     where to write (created if missing; required)\n"
    "          --normalize          scale A to B's total before comparing values\n"
    "          --title T, --unit U  as for flamegraph\n"
    "        Heap snapshots (DIR/<pid>/snapshots/NNN, a heap.json or leaks.json, or\n"
    "        report directories): also DIR/leakdiff.json, leakdiff.txt and\n"
    "        leakdiff.svg: live bytes and objects per stack in A and B and the\n"
    "        change, largest growth first, stacks matched by their frames.\n"
    "          --suspects           from a snapshots directory (every NNN in it) or\n"
    "                               3+ snapshots in time order: DIR/suspects.json and\n"
    "                               suspects.txt, the stacks whose live bytes grew\n"
    "                               in every interval, by growth\n"
    "snapshot  Ask the agent in process PID for a heap snapshot (the live heap by\n"
    "        stack now).  Under perfagent run or perfagent-collector: waits until\n"
    "        DIR/<pid>/snapshots/NNN is written and prints it.  For a process that\n"
    "        writes a .pfr file: the agent records a marker in it and perfagent\n"
    "        report writes the snapshot; prints the file and the marker number.\n"
    "        Only the process's owner or root may ask.\n"
    "          --timeout SECONDS    give up after this long (default 10)\n"
    "top     Self and cumulative value by function (like pprof -top), from a\n"
    "        process's report directory (cpu.folded when not empty, else\n"
    "        alloc.folded) or a folded FILE.  A function is a frame's whole text;\n"
    "        a recursive function counts once per stack in its cumulative value.\n"
    "          --kind cpu|alloc|inuse  which folded file of DIR (or FILE's unit)\n"
    "          -n, --limit N        rows (default 20, 0 = all)\n"
    "          --sort self|cum      order (default self)\n"
    "          --raw                exact byte counts instead of KiB/MiB\n"
    "          --json               machine-readable rows\n";

static int usage_error(const char *sub, const char *fmt, const char *arg)
{
    fprintf(stderr, PROG "%s%s: ", sub ? " " : "", sub ? sub : "");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (see perfagent --help)\n");
    return 2;
}

/* getopt_long's own messages name argv[0]; ours name the subcommand. */
static int bad_option(const char *sub, int c, char **argv)
{
    char opt[3] = {'-', (char)optopt, '\0'};
    /* optopt names a bad short option; for long ones it is 0. */
    const char *name = optopt ? opt : argv[optind - 1];
    if (c == ':') /* a missing argument is always at the end: argv names it */
        return usage_error(sub, "option '%s' needs an argument", argv[optind - 1]);
    return usage_error(sub, "unknown option '%s'", name);
}

/* ---------------------------------------------------------------------------
 * perfagent report
 * ------------------------------------------------------------------------- */

static int cmd_report(int argc, char **argv)
{
    /* libdw asks debuginfod servers for missing debug info when
     * DEBUGINFOD_URLS is set (Debian sets it for login shells): a report
     * must not depend on, or hang on, the network. */
    unsetenv("DEBUGINFOD_URLS");
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             {"sysroot", required_argument, NULL, 'S'},
                                             {"per-thread", no_argument, NULL, 'T'},
                                             {"no-suppress", no_argument, NULL, 'N'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *outpath = NULL, *sysroot = NULL;
    char err[OUTDIR_ERR_LEN];
    outdir_t *out;
    int c, failed = 0, per_thread = 0;

    /* GNU getopt permutes, so `report a.pfr b.pfr -o DIR` works as shown. */
    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            outpath = optarg;
            break;
        case 'S':
            sysroot = optarg;
            break;
        case 'T':
            per_thread = 1;
            break;
        case 'N':
            suppress_disable();
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return bad_option("report", c, argv);
        }
    }
    if (optind >= argc)
        return usage_error("report", "%sneeds at least one FILE", "");
    if (!outpath)
        return usage_error("report", "%s-o DIR is required", "");
    if (!(out = outdir_new(outpath, err))) {
        fprintf(stderr, PROG ": %s\n", err);
        return 1;
    }
    failed = report_files(out, argv + optind, argc - optind, sysroot, per_thread);
    if (outdir_write_index(out, err) < 0) {
        fprintf(stderr, PROG ": %s\n", err);
        failed = 1;
    }
    outdir_free(out);
    return failed;
}

/* ---------------------------------------------------------------------------
 * perfagent run
 * ------------------------------------------------------------------------- */

static int cmd_run(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'},   {"malloc-rate", required_argument, NULL, 'm'},
        {"collector-only", no_argument, NULL, 'c'}, {"sysroot", required_argument, NULL, 'S'},
        {"cpu", required_argument, NULL, 'C'},      {"per-thread", no_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},           {"no-suppress", no_argument, NULL, 'N'},
        {NULL, 0, NULL, 0}};
    run_opts_t o = {.outdir = "perfagent-out"};
    const char *cpu_hz = NULL;
    int c;

    /* '+': stop at the first non-option, so CMD's own options (`run ls -l`)
     * are never taken for ours even without `--`. */
    while ((c = getopt_long(argc, argv, "+:o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            o.outdir = optarg;
            break;
        case 'm':
            if (!*optarg || strspn(optarg, "0123456789") != strlen(optarg) || strlen(optarg) > 15)
                return usage_error("run", "--malloc-rate '%s': expected a whole number", optarg);
            o.malloc_rate = optarg;
            break;
        case 'C':
            /* The agent's own range (PERFAGENT_CPU_HZ): refused here, where
             * the user is, rather than as a warning from every process. */
            if (!*optarg || strspn(optarg, "0123456789") != strlen(optarg) || strlen(optarg) > 5 ||
                atoi(optarg) > 10000)
                return usage_error("run", "--cpu '%s': expected a whole number from 0 to 10000",
                                   optarg);
            cpu_hz = optarg;
            break;
        case 'c':
            o.collector_only = 1;
            break;
        case 'N':
            suppress_disable();
            break;
        case 'T':
            o.cpu_per_thread = 1;
            break;
        case 'S':
            o.sysroot = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return bad_option("run", c, argv);
        }
    }
    if (optind >= argc)
        return usage_error("run", "%sneeds a command: perfagent run [OPTIONS] -- CMD [ARGS...]",
                           "");
    /* The command inherits our environment (run.c adds the agent's
     * variables to it), so this is its PERFAGENT_CPU_HZ; one the user
     * exported wins over the default, --cpu over both. */
    if (cpu_hz)
        setenv("PERFAGENT_CPU_HZ", cpu_hz, 1);
    else
        setenv("PERFAGENT_CPU_HZ", RUN_DEFAULT_CPU_HZ, 0);
    return run_command(&o, argv + optind);
}

/* ---------------------------------------------------------------------------
 * perfagent flamegraph / diff
 * ------------------------------------------------------------------------- */

static int check_unit(const char *sub, const char *u)
{
    if (strcmp(u, "samples") != 0 && strcmp(u, "bytes") != 0)
        return usage_error(sub, "--unit '%s': expected samples or bytes", u);
    return 0;
}

static int cmd_flamegraph(int argc, char **argv)
{
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             {"title", required_argument, NULL, 't'},
                                             {"unit", required_argument, NULL, 'u'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    const char *outpath = NULL, *title = NULL, *unit = NULL;
    char err[FG_ERR_LEN];
    fg_folded_t fo;
    FILE *f;
    int c, rc;

    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            outpath = optarg;
            break;
        case 't':
            title = optarg;
            break;
        case 'u':
            if (check_unit("flamegraph", optarg))
                return 2;
            unit = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return bad_option("flamegraph", c, argv);
        }
    }
    if (optind >= argc)
        return usage_error("flamegraph", "%sneeds a FOLDED file", "");
    if (optind + 1 < argc)
        return usage_error("flamegraph", "one FOLDED file only ('%s' is one more)",
                           argv[optind + 1]);
    if (!outpath)
        return usage_error("flamegraph", "%s-o OUT.svg is required", "");
    if (fg_folded_read(&fo, argv[optind], err) < 0) {
        fprintf(stderr, PROG " flamegraph: %s\n", err);
        return 1;
    }
    fg_input_t in = {.lines = fo.lines, .n_lines = fo.n,
                     .title = title ? title : argv[optind],
                     .unit = unit ? unit : fg_unit_for(argv[optind])};
    errno = 0;
    if (!(f = fopen(outpath, "w")) || (rc = flamegraph_write_svg(f, &in)) < 0 || fclose(f)) {
        fprintf(stderr, PROG " flamegraph: %s: %s\n", outpath, strerror(errno ? errno : EIO));
        fg_folded_free(&fo);
        return 1;
    }
    fg_folded_free(&fo);
    return 0;
}

static int cmd_diff(int argc, char **argv)
{
    static const struct option longopts[] = {{"output", required_argument, NULL, 'o'},
                                             {"normalize", no_argument, NULL, 'n'},
                                             {"title", required_argument, NULL, 't'},
                                             {"unit", required_argument, NULL, 'u'},
                                             {"suspects", no_argument, NULL, 's'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    diff_opts_t o = {0};
    int c;

    while ((c = getopt_long(argc, argv, ":o:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'o':
            o.outdir = optarg;
            break;
        case 'n':
            o.normalize = 1;
            break;
        case 's':
            o.suspects = 1;
            break;
        case 't':
            o.title = optarg;
            break;
        case 'u':
            if (check_unit("diff", optarg))
                return 2;
            o.unit = optarg;
            break;
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        default:
            return bad_option("diff", c, argv);
        }
    }
    if (!o.outdir)
        return usage_error("diff", "%s-o DIR is required", "");
    if (o.suspects) {
        if (argc - optind != 1 && argc - optind < 3)
            return usage_error("diff", "%s--suspects needs a snapshots directory or 3 or more "
                                       "snapshots", "");
        o.paths = argv + optind;
        o.n_paths = (size_t)(argc - optind);
        return diff_run(&o);
    }
    if (argc - optind != 2)
        return usage_error("diff", "%sneeds two profiles: perfagent diff A B -o DIR", "");
    o.a = argv[optind];
    o.b = argv[optind + 1];
    return diff_run(&o);
}

/* ---------------------------------------------------------------------------
 * dispatch
 * ------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : NULL;

    opterr = 0;
    if (!sub)
        return usage_error(NULL, "%sneeds a subcommand: run, report, flamegraph, diff, top or version", "");
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h") || !strcmp(sub, "help")) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (!strcmp(sub, "version") || !strcmp(sub, "--version")) {
        printf(PROG " %s\n", PA_VERSION);
        return 0;
    }
    /* Each subcommand parses argv[1..]: argv[0] of the slice is its name. */
    if (!strcmp(sub, "report"))
        return cmd_report(argc - 1, argv + 1);
    if (!strcmp(sub, "run"))
        return cmd_run(argc - 1, argv + 1);
    if (!strcmp(sub, "flamegraph"))
        return cmd_flamegraph(argc - 1, argv + 1);
    if (!strcmp(sub, "diff"))
        return cmd_diff(argc - 1, argv + 1);
    if (!strcmp(sub, "snapshot"))
        return snapshot_main(argc - 1, argv + 1);
    if (!strcmp(sub, "top"))
        return top_main(argc - 1, argv + 1);
    return usage_error(NULL, "unknown subcommand '%s'", sub);
}
