#!/usr/bin/env bash
# The allocation API: every C allocation function (allocfns), a process
# whose first allocation is a large calloc made before the agent's
# constructor (calloc_first), C++ new/delete (cxx_new), and other allocators
# preloaded with the agent (jemalloc, tcmalloc, in both orders: after the
# agent they are recorded exactly; before it, the agent warns), and a C++
# runtime of the test's own (libnewcount.so) after the agent in sampled
# mode, whose operators must run on every call (the agent goes to malloc
# and free directly only in place of libstdc++'s), and operator new at the
# end of memory in both modes (cxx_oom: new_handler, bad_alloc).  Numbers must be exact;
# programs must behave exactly as without the agent.
. "$(dirname "$0")/common.bash"
require_product "$W/newmix" "$W/libnewcount.so" "$W/cxx_oom"

# All these workloads are single-threaded, so summary.txt's counters are
# exact: nothing is freed that the agent did not see allocated (unknown),
# out of order (stale, early) or implied by the reuse of an address (a lost
# FREE row would show as one); the workloads' own counts are in their header
# comments.
ZEROS="unknown=0 stale=0 early=0 implied=0 superseded=0"
# check_counts NAME PROCDIR "allocations=N bytes=N frees=N"
check_counts() {
    expect_eq "$1" "$($PYQ summary "$2/summary.txt" 2>&1)" "$3 $ZEROS" "$(drop_note "$2/leaks.json")"
}
# check_balance NAME PROCDIR : where the C++ runtime adds allocations of its
# own (libstdc++'s emergency pool; std::vector's growth steps depend on the
# library version), still every block is freed once or live at the end:
# frees + live objects = allocations, and nothing unknown or implied.
# Not used with jemalloc/tcmalloc as the host: one `make check` run showed
# one implied free in both tcmalloc_after runs (not reproduced in 80 runs
# alone or under CPU load), so that is not known to be deterministic.
check_balance() {
    local live
    # every live object: the leaks listed plus those suppressed as not leaks
    live=$($PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["total"]["objects"] + d.get("suppressed", {}).get("objects", 0))' "$2/leaks.json" 2>&1)
    expect_eq "$1" "$($PYQ summary "$2/summary.txt" 2>&1 | awk -v live="$live" '{
        for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "frees+live-allocations=%s %s", v["frees"] + live - v["allocations"], $4
        for (i = 5; i <= NF; i++) printf " %s", $i }')" "frees+live-allocations=0 $ZEROS" \
        "$(drop_note "$2/leaks.json")"
}

# ---- heap_untouched: the agent's own start takes nothing from the host's
# heap (tests/workloads/heap_untouched.c): at main the main arena is as
# untouched as in a plain run (800 bytes of setenv and dlerror state there
# once moved mallocbench's worker structs onto one cache line: +60% time),
# and the environment the agent's setenv placed in its pool grows, shrinks
# and clears as usual.  Sampled, exact (no unknown free: glibc frees the
# agent's pool blocks) and CPU only.
run base_hu "$W/heap_untouched"
expect_eq heap_untouched.plain "$(tr '\n' '|' <"$T/base_hu.out")" \
    "at main: in use 0, arena 0|env: set 300, read back 300, unset 150, left 0|"
run hu_sampled env -u PERFAGENT_MALLOC_RATE LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/hu_sampled.pfr" "$W/heap_untouched"
same_output heap_untouched.sampled base_hu hu_sampled
run hu_cpu env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=0 PERFAGENT_CPU_HZ=99 PERFAGENT_OUTPUT="$T/hu_cpu.pfr" "$W/heap_untouched"
same_output heap_untouched.cpu base_hu hu_cpu
# clearenv first: glibc frees the environ array the agent's setenv made in
# its pool (a file output without %p sets PERFAGENT_OUTPUT_OWNER); every
# heap mode must keep that block from the real free.
for m in 0 1 524288; do
    run huc_$m env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=$m PERFAGENT_OUTPUT="$T/huc_$m.pfr" "$W/heap_untouched" clear
    expect_eq heap_untouched.clearenv_rate$m "$(rc_of huc_$m) $(out_of huc_$m)" "0 cleared: 0 left" \
        "$(head -c 300 "$T/huc_$m.err" | tr '\n' '|')"
done
if record hu heap_untouched "$AGENT" "$W/heap_untouched"; then
    same_output heap_untouched.exact base_hu hu
    expect_eq heap_untouched.exact.unknown "$($PYQ summary "$RD/summary.txt" 2>&1 | tr ' ' '\n' | grep '^unknown=')" \
        unknown=0 "$(drop_note "$RD/leaks.json")"
fi

# ---- allocfns: one leaked block per function (tests/workloads/allocfns.c)
run base_af "$W/allocfns"
if record af allocfns "$AGENT" "$W/allocfns"; then
    same_output allocfns.stdout_and_status base_af af
    lj=$RD/leaks.json
    while read -r fn bytes; do
        check_site "allocfns.$fn" "$lj" "$fn" "$bytes 1"
    done <<'LIST'
via_malloc 1001
via_calloc 1002
via_realloc_grow 1003
via_realloc_shrink 1004
via_realloc_null 1005
via_reallocarray 1006
via_memalign 1007
via_posix_memalign 1008
via_aligned_alloc 1024
via_valloc 1010
via_pvalloc 8192
LIST
    # strdup/strndup call malloc from inside libc: the leaf may be libc's
    # strdup, the caller must come right after it.
    check_site allocfns.via_strdup "$lj" via_strdup "1012 1" '^_*(GI_+)?strn?dup$'
    check_site allocfns.via_strndup "$lj" via_strndup "501 1" '^_*(GI_+)?strn?dup$'
    check_none allocfns.realloc_frees_old "$lj" setup_block
    check_none allocfns.realloc_zero_no_leak "$lj" via_realloc_zero
    expect_eq allocfns.total "$($PYQ total "$lj")" "19775 13"
    check_counts allocfns.counts "$RD" "allocations=34 bytes=54436 frees=21"
    expect_eq allocfns.no_agent_frames "$($PYQ agentframes "$lj")" 0
else
    same_output allocfns.stdout_and_status base_af af
fi

# ---- calloc_first: 64 KiB calloc from a DT_NEEDED library's constructor
# (before the agent's own), 48 KiB from the program's constructor(101)
run base_cf "$W/calloc_first"
if record cf calloc_first "$AGENT" "$W/calloc_first"; then
    same_output calloc_first.stdout_and_status base_cf cf
    check_site calloc_first.lib_ctor_block "$RD/leaks.json" early_lib_alloc "65536 1"
    check_site calloc_first.exe_ctor_block "$RD/leaks.json" early_exe_alloc "49152 1"
    expect_eq calloc_first.total "$($PYQ total "$RD/leaks.json")" "114688 2"
    # the two callocs, 100 malloc/free pairs of 100..199 B: 114688 + 14950
    check_counts calloc_first.counts "$RD" "allocations=102 bytes=129638 frees=100"
else
    same_output calloc_first.stdout_and_status base_cf cf
fi

# ---- C++: leaks seen with the caller's demangled name.  libstdc++'s
# operator new calls malloc, so leading "operator new" frames are skipped.
NEW_RE='^operator new'
check_cxx() { # PREFIX RD
    local lj=$2/leaks.json
    check_site "$1.new_Foo" "$lj" wl::Factory::make_foo "1272 3" "$NEW_RE"
    check_site "$1.new_array" "$lj" wl::make_ints "1000 1" "$NEW_RE"
    check_none "$1.vector_string_freed" "$lj" wl::grow_vector
    check_none "$1.misc_new_freed" "$lj" wl::misc_news
    local mangled
    mangled=$(grep -o '"_Z[A-Za-z0-9_]*' "$lj" | head -3 | tr '\n' ' ')
    expect_eq "$1.demangled" "$mangled" "" "mangled names in leaks.json"
}
check_leaks_fp() { # PREFIX RD
    local lj=$2/leaks.json
    check_site "$1.site_a" "$lj" leak_site_a "100000 100"
    check_site "$1.site_b" "$lj" leak_site_b "12800 50"
    check_site "$1.site_c" "$lj" leak_site_c "28672 7"
    check_site "$1.site_inline" "$lj" inline_leaker "22000 11"
    # everything the program leaked (the host allocator may add its own
    # start-up leaks, e.g. libstdc++'s emergency pool, outside main)
    expect_eq "$1.total_under_main" "$($PYQ through "$lj" main)" "163472 168"
}

run base_cxx "$W/cxx_new"
run base_lk "$W/leaks_fp"
if record cxx cxx_new "$AGENT" "$W/cxx_new"; then
    check_cxx cxx "$RD"
    check_balance cxx.counts_balance "$RD"
fi
same_output cxx.stdout_and_status base_cxx cxx

# ---- other allocators as the host: agent first, then allocator first
for cfg in "jemalloc_after:$AGENT:$JEMALLOC" "jemalloc_first:$JEMALLOC:$AGENT" \
           "tcmalloc_after:$AGENT:$TCMALLOC" "tcmalloc_first:$TCMALLOC:$AGENT"; do
    name=${cfg%%:*}; pre=${cfg#*:}
    lib=$JEMALLOC; case $name in tcmalloc*) lib=$TCMALLOC ;; esac
    if [ ! -e "$lib" ]; then
        fail "$name" "$lib not installed"
        continue
    fi
    case $name in
    *_first)
        # An allocator preloaded before the agent wins the symbol lookup:
        # its calls never reach the agent (memory-anchors P15; catching them
        # would take GOT patching).  The agent must say so in one line and
        # leave the program alone.
        for w in cxx_new leaks_fp; do
            base=base_cxx; [ $w = leaks_fp ] && base=base_lk
            run "${name}_$w" env LD_PRELOAD="$pre" PERFAGENT_MALLOC_RATE=1 \
                PERFAGENT_OUTPUT="$T/${name}_$w.pfr" "$W/$w"
            same_output "$name.$w.stdout_and_status" $base "${name}_$w"
            expect_eq "$name.$w.warning" \
                "$(grep -c "malloc resolves to $lib, which comes before libperfagent.so" "$T/${name}_$w.err")" \
                1 "stderr: $(head -c 300 "$T/${name}_$w.err" | tr '\n' '|')"
        done
        ;;
    *)
        if record "${name}_cxx" cxx_new "$pre" "$W/cxx_new"; then
            check_cxx "$name.cxx" "$RD"
        fi
        same_output "$name.cxx.stdout_and_status" base_cxx "${name}_cxx"
        if record "${name}_leaks" leaks_fp "$pre" "$W/leaks_fp"; then
            check_leaks_fp "$name.leaks" "$RD"
        fi
        same_output "$name.leaks.stdout_and_status" base_lk "${name}_leaks"
        ;;
    esac
done

# ---- another C++ runtime after the agent, sampled mode: its operator
# new/delete counts, printed at exit, are the same as without the agent
run base_newcount env LD_PRELOAD="$W/libnewcount.so" "$W/newmix" 256 2
run newcount env -u PERFAGENT_MALLOC_RATE LD_PRELOAD="$AGENT:$W/libnewcount.so" \
    PERFAGENT_OUTPUT="$T/newcount.pfr" "$W/newmix" 256 2
same_output newcount.stdout_and_status base_newcount newcount
expect_eq newcount.counted "$(grep -c '^newcount: new=[1-9][0-9]* delete=[1-9]' "$T/base_newcount.out")" 1 \
    "libnewcount.so's operators ran without the agent: $(tail -1 "$T/base_newcount.out")"

# ---- operator new at the end of memory, sampled and exact mode
# (tests/workloads/cxx_oom.cc): where the agent's malloc in place of
# libstdc++'s operator fails (the fast path's in sampled mode, the slow
# path's in exact mode), the real operator still runs the new_handler and
# throws bad_alloc
run base_oom "$W/cxx_oom"
run oom env -u PERFAGENT_MALLOC_RATE LD_PRELOAD="$AGENT" PERFAGENT_OUTPUT="$T/oom.pfr" "$W/cxx_oom"
expect_eq oom.without_agent "$(cat "$T/base_oom.out")" "handler=3 bad_alloc=1 nothrow=null"
same_output oom.stdout_and_status base_oom oom
run oom_exact env LD_PRELOAD="$AGENT" PERFAGENT_MALLOC_RATE=1 PERFAGENT_OUTPUT="$T/oom_exact.pfr" "$W/cxx_oom"
same_output oom_exact.stdout_and_status base_oom oom_exact
finish
