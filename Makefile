# perfagent — top-level, non-recursive Makefile.  `make help` lists targets.
#
# Layout: agent/*.c -> build/libperfagent.so; collector/*.c (minus main_*.c)
# -> build/libcollector.a, linked into build/perfagent-collector and
# build/perfagent; proto/*.proto -> build/gen/*.pb-c.[ch] at build time.

PREFIX    ?= /usr/local
CC        ?= cc
B         := build
GEN       := $(B)/gen
V         ?= 0
Q         := $(if $(filter 1,$(V)),,@)
SAN       ?=

PKGS_AGENT := libunwind libprotobuf-c
PKGS_COLL  := libdw libprotobuf-c jemalloc zlib
# Build: the -dev packages.  Tests: real programs and allocators the tests run
# the agent inside.  Bench: heaptrack and perf (linux-perf), the anchors it is
# compared with.
DEB_PKGS   := build-essential g++ pkg-config libunwind-dev libdw-dev libelf-dev libjemalloc-dev \
              libprotobuf-c-dev protobuf-c-compiler libpq-dev postgresql python3 \
              sqlite3 git gzip perl libjemalloc2 libgoogle-perftools4 libpython3.11-testsuite \
              mawk coreutils tar bash postgresql-client chromium zlib1g-dev golang-go \
              nginx-light redis-server redis-tools curl nodejs xz-utils bzip2 zstd jq
BENCH_PKGS := heaptrack time linux-perf

# Fail early with one clear line when a library is missing (make deps fixes it).
PKGCHECK = $(shell pkg-config --exists $(1) 2>/dev/null || echo missing)
ifeq ($(filter deps help clean check demo bench,$(MAKECMDGOALS)),)
ifneq ($(call PKGCHECK,$(PKGS_AGENT) $(PKGS_COLL)),)
$(error missing libraries ($(PKGS_AGENT) $(PKGS_COLL)); run 'make deps' (as root) first)
endif
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
BASEFL   := -std=gnu11 -O2 -g $(WARN) -D_GNU_SOURCE -I$(GEN) -Iagent -Icollector
AGENT_CFLAGS := $(BASEFL) -fPIC -fvisibility=hidden -ftls-model=initial-exec \
                -fno-omit-frame-pointer -fno-builtin-malloc -fno-builtin-free \
                -fno-builtin-calloc -fno-builtin-realloc -fno-stack-protector \
                $(shell pkg-config --cflags $(PKGS_AGENT))
# The agent must not pull in jemalloc or libpq (see README "Design").
AGENT_LIBS   := $(shell pkg-config --libs $(PKGS_AGENT)) -ldl -lpthread -lm
COLL_CFLAGS  := $(BASEFL) $(SAN) $(shell pkg-config --cflags $(PKGS_COLL))
# jemalloc is the collector's allocator; under sanitizers ASan owns malloc.
COLL_LIBS    := $(shell pkg-config --libs libdw libprotobuf-c zlib) -lstdc++ -lpthread -lm \
                $(if $(SAN),,$(shell pkg-config --libs jemalloc))

PROTO_SRC := $(GEN)/perfagent.pb-c.c
PROTO_HDR := $(GEN)/perfagent.pb-c.h
# pprof's schema (collector/pprof.c): the collector's only, never the agent's.
PPROF_SRC := $(GEN)/profile.pb-c.c
PPROF_HDR := $(GEN)/profile.pb-c.h

AGENT_SRCS := $(wildcard agent/*.c)
AGENT_OBJS := $(patsubst agent/%.c,$(B)/agent/%.o,$(AGENT_SRCS)) $(B)/agent/perfagent.pb-c.o
COLL_SRCS  := $(filter-out collector/main_%.c,$(wildcard collector/*.c))
COLL_OBJS  := $(patsubst collector/%.c,$(B)/collector/%.o,$(COLL_SRCS)) $(B)/collector/perfagent.pb-c.o \
              $(B)/collector/profile.pb-c.o

BINS := $(B)/libperfagent.so $(B)/perfagent-collector $(B)/perfagent

.DELETE_ON_ERROR:
.PHONY: all deps check check-counts mutants test-bins bench demo install clean help asan fuzz format stress

all: $(BINS)

help:
	@echo "make            build $(BINS)"
	@echo "make deps       install missing Debian packages (root; no-op when present)"
	@echo "make check      build and run every test; ends with 'N passed, N failed'"
	@echo "make asan       make check with the collector and unit tests under ASan/UBSan"
	@echo "make check-counts  make check, then rewrite tests/expected-counts (needs 0 failures)"
	@echo "make mutants    apply each tests/mutants/*.patch to a scratch copy; fail if one survives"
	@echo "make demo       record the bundled demo and print its leak report"
	@echo "make bench      overhead benchmark (not part of check)"
	@echo "make stress     50 runs of each stress scenario, hangs and crashes counted (STRESS_RUNS=N; not part of check)"
	@echo "make install PREFIX=/usr/local"

deps:
	@tools/install-deps.sh $(DEB_PKGS)

$(PROTO_SRC) $(PROTO_HDR): proto/perfagent.proto
	@mkdir -p $(GEN)
	$(Q)protoc-c --c_out=$(GEN) -Iproto $<

$(PPROF_SRC) $(PPROF_HDR): proto/profile.proto
	@mkdir -p $(GEN)
	$(Q)protoc-c --c_out=$(GEN) -Iproto $<

$(B)/agent/%.o: agent/%.c $(PROTO_HDR)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(AGENT_CFLAGS) -MMD -MP -c $< -o $@

# A throwing operator new unwinds through the new/delete hooks.
$(B)/agent/hook_new.o: AGENT_CFLAGS += -fexceptions
# The hooks keep frame pointers: the unwinder starts from the hook's frame
# record (PA_HOOK_FP in agent/internal.h).
$(B)/agent/hook_malloc.o $(B)/agent/hook_new.o: AGENT_CFLAGS += -fno-omit-frame-pointer
# libpq's header only, for its types: the agent never links or loads libpq.
$(B)/agent/hook_pq.o $(B)/agent/pq.o: AGENT_CFLAGS += $(shell pkg-config --cflags libpq)

$(B)/agent/perfagent.pb-c.o: $(PROTO_SRC)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(AGENT_CFLAGS) -Wno-unused-parameter -c $< -o $@

$(B)/collector/%.o: collector/%.c $(PROTO_HDR) $(PPROF_HDR)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(COLL_CFLAGS) -MMD -MP -c $< -o $@

$(B)/collector/perfagent.pb-c.o: $(PROTO_SRC)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(COLL_CFLAGS) -c $< -o $@

$(B)/collector/profile.pb-c.o: $(PPROF_SRC)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(COLL_CFLAGS) -c $< -o $@

$(B)/libperfagent.so: $(AGENT_OBJS)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -Wl,-z,nodelete -Wl,--no-undefined -o $@ $^ $(AGENT_LIBS)

$(B)/libcollector.a: $(COLL_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

$(B)/perfagent-collector: $(B)/collector/main_collector.o $(B)/libcollector.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(SAN) -o $@ $^ $(COLL_LIBS)

$(B)/perfagent: $(B)/collector/main_cli.o $(B)/libcollector.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(SAN) -o $@ $^ $(COLL_LIBS)

# ---- tests ---------------------------------------------------------------
# Unit tests: tests/unit/test_*.c.  test_agent_*.c link the agent sources
# named in TEST_AGENT_SRCS_<name>; the others link libcollector.a.
include tests/tests.mk

# check, demo and bench first install what is missing (a no-op when all is
# there), so each is one command on a fresh Debian 12 machine.
check:
	@tools/install-deps.sh $(DEB_PKGS)
	@$(MAKE) --no-print-directory all test-bins
	$(Q)B=$(B) tests/run.sh

test-bins: $(TEST_BINS)

# After adding or removing checks: the runner fails a test that runs fewer
# checks than tests/expected-counts says, so the file moves with the tests.
check-counts:
	@tools/install-deps.sh $(DEB_PKGS)
	@$(MAKE) --no-print-directory all test-bins
	$(Q)B=$(B) UPDATE_COUNTS=1 tests/run.sh

# Not part of check: it rebuilds and reruns tests once per mutant.
mutants:
	@tools/install-deps.sh $(DEB_PKGS) patch
	@$(MAKE) --no-print-directory all test-bins
	$(Q)B=$(B) tools/mutants.sh $(MUTANTS)

asan:
	$(MAKE) B=build-asan SAN="-fsanitize=address,undefined -fno-omit-frame-pointer" check

bench:
	@tools/install-deps.sh $(DEB_PKGS) $(BENCH_PKGS)
	@$(MAKE) --no-print-directory all
	$(Q)tools/bench.sh

# The long reliability runs (tools/stress.sh; STRESS_RUNS, STRESS_ONLY).
stress:
	@tools/install-deps.sh $(DEB_PKGS)
	@$(MAKE) --no-print-directory all test-bins
	$(Q)tools/stress.sh

demo:
	@tools/install-deps.sh $(DEB_PKGS)
	@$(MAKE) --no-print-directory all
	$(Q)tools/demo.sh

install: all
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/doc/perfagent
	install -m 0644 $(B)/libperfagent.so $(DESTDIR)$(PREFIX)/lib/
	install -m 0755 $(B)/perfagent-collector $(B)/perfagent $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 README.md proto/perfagent.proto $(DESTDIR)$(PREFIX)/share/doc/perfagent/

format:
	clang-format -i agent/*.[ch] collector/*.[ch] tests/unit/*.c tests/workloads/*.c

clean:
	rm -rf build build-asan

-include $(shell find $(B) -name '*.d' 2>/dev/null)
