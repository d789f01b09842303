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
TEST_AGENT_SRCS_cfi := agent/cfi.c agent/phdr.c agent/libc.c
TEST_AGENT_SRCS_pq_norm := agent/pq_norm.c
TEST_AGENT_SRCS_phdr := agent/phdr.c agent/libc.c agent/cfi.c
TEST_AGENT_SRCS_tring := agent/ring.c agent/mem.c
TEST_AGENT_SRCS_sampleset := agent/sampleset.c agent/mem.c
TEST_AGENT_SRCS_clock := agent/clock.c
TEST_AGENT_SRCS_roundtrip := agent/encode.c agent/records.c agent/rows.c agent/ring.c agent/sampleset.c agent/stacks.c \
                             agent/mem.c agent/libc.c agent/event.c
# Headers too: the agent's row encoders and ring are inline (rows.h, ring.h).
AGENT_HDRS := $(wildcard agent/*.h) proto/wire.h
$(B)/tests/test_agent_%: tests/unit/test_agent_%.c $(PROTO_HDR) $(AGENT_SRCS) $(AGENT_HDRS)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(BASEFL) $(SAN) -fno-omit-frame-pointer -Itests -o $@ $< \
	    $(TEST_AGENT_SRCS_$*) -lpthread

# The round trip: the agent's encoders (TEST_AGENT_SRCS_roundtrip) into the
# collector's stream parser and decoder, so it links libcollector.a too (the
# protobuf-c message code comes from there, once).
$(B)/tests/test_agent_roundtrip: tests/unit/test_agent_roundtrip.c $(PROTO_HDR) $(AGENT_SRCS) \
                                 $(AGENT_HDRS) $(B)/libcollector.a
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(BASEFL) $(SAN) -fno-omit-frame-pointer -DPA_UNIT_TEST -Itests -o $@ $< \
	    $(TEST_AGENT_SRCS_roundtrip) $(B)/libcollector.a $(COLL_LIBS)

-include tests/workloads/workloads.mk
-include tests/fuzz/fuzz.mk

TEST_BINS += $(UNIT_BINS)
