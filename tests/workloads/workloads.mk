# Included from tests/tests.mk.  Test workloads: small deterministic programs
# whose allocations and leaks are known by construction (see each file's
# header comment).  Built into $(B)/workloads/; tests/e2e/*.sh run them.
# They are never sanitized ($(SAN) is for the collector).

WL        := $(B)/workloads
WL_WARN   := -Wall -Wextra -Werror -Wno-unused-parameter -Wno-deprecated-declarations
# -fno-ipa-icf: identical site functions must stay separate symbols.
WL_CFLAGS := -O2 -g -fno-ipa-icf -pthread -D_GNU_SOURCE $(WL_WARN)
WL_FP     := -fno-omit-frame-pointer
WL_HDR    := tests/workloads/wl.h

WL_SIMPLE := allocfns exec_fail_mt fork_mt thread_churn churn pthread_exit fork_thread thread_stress leakn sizemix temps daemonize \
             snapphase net_echo heap_untouched vfork_exec unwind_fds seccomp_deny
WL_BINS   := $(addprefix $(WL)/,$(WL_SIMPLE) leaks_fp leaks_nofp calloc_first libearly.so \
               cxx_new dlopen_loop libdlleak.so static_hello unwind_shapes memo_callers libctorfork.so)

TEST_BINS += $(WL_BINS)

.PHONY: workloads
workloads: $(WL_BINS)

$(addprefix $(WL)/,$(WL_SIMPLE)): $(WL)/%: tests/workloads/%.c $(WL_HDR)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) $(WL_FP) -o $@ $<

$(WL)/leaks_fp: tests/workloads/leaks.c $(WL_HDR)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) -fno-omit-frame-pointer -o $@ $<

$(WL)/leaks_nofp: tests/workloads/leaks.c $(WL_HDR)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) -fomit-frame-pointer -o $@ $<

$(WL)/libearly.so: tests/workloads/early.c $(WL_HDR)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) $(WL_FP) -fPIC -shared -o $@ $<

$(WL)/libctorfork.so: tests/workloads/ctor_fork.c $(WL_HDR)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) $(WL_FP) -fPIC -shared -o $@ $<

# libearly.so is a DT_NEEDED dependency, so its constructor runs before any
# LD_PRELOADed library is initialized.
$(WL)/calloc_first: tests/workloads/calloc_first.c $(WL)/libearly.so $(WL_HDR)
	$(Q)$(CC) $(WL_CFLAGS) $(WL_FP) -o $@ $< -Wl,--no-as-needed -L$(WL) -learly -Wl,-rpath,'$$ORIGIN'

$(WL)/cxx_new: tests/workloads/cxx_new.cc
	@mkdir -p $(dir $@)
	$(Q)$(CXX) -std=gnu++17 -O2 -g -fno-ipa-icf $(WL_FP) -Wall -Wextra -Werror -o $@ $<

# Exceptions under sampling: -fomit-frame-pointer, so every walk needs CFI.
$(WL)/cxx_throw: tests/workloads/cxx_throw.cc
	@mkdir -p $(dir $@)
	$(Q)$(CXX) -std=gnu++17 -O2 -g -fomit-frame-pointer -pthread -Wall -Wextra -Werror -o $@ $<
WL_BINS += $(WL)/cxx_throw
TEST_BINS += $(WL)/cxx_throw

$(WL)/libnewcount.so: tests/workloads/newcount.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) $(WL_FP) -fPIC -shared -o $@ $<
WL_BINS += $(WL)/libnewcount.so
TEST_BINS += $(WL)/libnewcount.so

$(WL)/cxx_oom: tests/workloads/cxx_oom.cc
	@mkdir -p $(dir $@)
	$(Q)$(CXX) -std=gnu++17 -O2 -g $(WL_FP) -Wall -Wextra -Werror -o $@ $<
WL_BINS += $(WL)/cxx_oom
TEST_BINS += $(WL)/cxx_oom

$(WL)/newmix: tests/workloads/newmix.cc
	@mkdir -p $(dir $@)
	$(Q)$(CXX) -std=gnu++17 -O2 -g -fno-ipa-icf $(WL_FP) -pthread -Wall -Wextra -Werror -o $@ $<
WL_BINS += $(WL)/newmix
TEST_BINS += $(WL)/newmix

$(WL)/libdlleak.so: tests/workloads/dlleak.c $(WL_HDR)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) $(WL_FP) -fPIC -shared -o $@ $<

$(WL)/dlopen_loop: tests/workloads/dlopen_loop.c $(WL_HDR) | $(WL)/libdlleak.so
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) $(WL_FP) -o $@ $< -ldl

$(WL)/static_hello: tests/workloads/static_hello.c $(WL_HDR)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) -static -o $@ $<

# Without frame pointers on purpose: the unwinder must not need them.
$(WL)/unwind_shapes: tests/workloads/unwind_shapes.c $(WL_HDR)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) -fomit-frame-pointer -o $@ $<

$(WL)/memo_callers: tests/workloads/memo_callers.c $(WL_HDR)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) -fomit-frame-pointer -o $@ $<

# CPU sampler ground truth: without frame pointers on purpose (the sampler
# walks copied stacks with .eh_frame rules).
WL_CPU := cpu_mix cpu_ops
WL_BINS += $(addprefix $(WL)/,$(WL_CPU))
TEST_BINS += $(addprefix $(WL)/,$(WL_CPU))
$(addprefix $(WL)/,$(WL_CPU)): $(WL)/%: tests/workloads/%.c $(WL_HDR)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) -fomit-frame-pointer -o $@ $< $(WL_LDLIBS)

$(WL)/cpu_ops: | $(WL)/libdlleak.so
$(WL)/cpu_ops: WL_LDLIBS := -ldl

$(WL)/libcpu_noperf.so: tests/workloads/cpu_noperf.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) -fPIC -shared -o $@ $< -ldl
WL_BINS += $(WL)/libcpu_noperf.so
TEST_BINS += $(WL)/libcpu_noperf.so

# Safety under fire (tests/e2e/cpu_fire.sh): dlopen, fork, exec, malloc
# churn and blocking calls under 4 kHz sampling; no frame pointers, so every
# sampled stack is walked with .eh_frame rules.
$(WL)/fire_ops: tests/workloads/fire_ops.c $(WL_HDR) | $(WL)/libdlleak.so
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) -fomit-frame-pointer -o $@ $< -ldl
WL_BINS += $(WL)/fire_ops
TEST_BINS += $(WL)/fire_ops

# A libpq client (tests/e2e/pq.sh): the only workload linked to libpq.
TEST_BINS += $(WL)/pq_app
$(WL)/pq_app: tests/workloads/pq_app.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) $(WL_FP) $(shell pkg-config --cflags libpq) -o $@ $< $(shell pkg-config --libs libpq)

# Fatal signals (tests/e2e/crash.sh): without frame pointers, so the crash
# stack is walked with .eh_frame rules like any other.
WL_BINS += $(WL)/crash_ops
TEST_BINS += $(WL)/crash_ops
$(WL)/crash_ops: tests/workloads/crash_ops.c $(WL_HDR)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) -fomit-frame-pointer -o $@ $<

# A signal storm at a thread inside the malloc hooks (`make stress`,
# tools/stress.sh); frame pointers as the simple workloads.
WL_BINS += $(WL)/sig_storm
TEST_BINS += $(WL)/sig_storm
$(WL)/sig_storm: tests/workloads/sig_storm.c $(WL_HDR)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(WL_CFLAGS) $(WL_FP) -o $@ $<
