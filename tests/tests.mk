# Included from the top-level Makefile.  Unit tests in tests/unit, workloads
# (programs with known allocations) in tests/workloads, fuzz targets in
# tests/fuzz.

UNIT_SRCS   := $(wildcard tests/unit/test_*.c)
COLL_UNITS  := $(filter-out tests/unit/test_agent_%.c,$(UNIT_SRCS))
AGENT_UNITS := $(filter tests/unit/test_agent_%.c,$(UNIT_SRCS))
UNIT_BINS   := $(patsubst tests/unit/%.c,$(B)/tests/%,$(UNIT_SRCS))

# Collector unit tests link the collector library (sanitized under make asan).
$(B)/tests/test_%: tests/unit/test_%.c $(B)/libcollector.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(COLL_CFLAGS) -Itests -o $@ $< $(B)/libcollector.a $(COLL_LIBS)

# Agent unit tests compile the agent sources they name in
# TEST_AGENT_SRCS_<name> (without -fvisibility games: they test the core
# functions, not the interposed symbols).
TEST_AGENT_SRCS_stacks := agent/stacks.c agent/mem.c
TEST_AGENT_SRCS_cfi := agent/cfi.c
$(B)/tests/test_agent_%: tests/unit/test_agent_%.c $(PROTO_HDR) $(AGENT_SRCS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(BASEFL) $(SAN) -fno-omit-frame-pointer -Itests -o $@ $< \
	    $(TEST_AGENT_SRCS_$*) -lpthread

-include tests/workloads/workloads.mk
-include tests/fuzz/fuzz.mk

TEST_BINS += $(UNIT_BINS)
