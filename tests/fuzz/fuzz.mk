# Included from tests/tests.mk.  `make fuzz` builds the libFuzzer target for
# the collector's untrusted-input path (stream.c, decode.c, session.c,
# report.c) with clang and runs it for FUZZ_SECONDS over a seed corpus that
# the target writes itself (PA_FUZZ_MAKE_SEEDS).  New corpus entries go to
# $(B)/fuzz-corpus; crashes to $(B)/fuzz-artifacts.  Not part of `make check`.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_FLAGS   ?=
# Every collector library source (COLL_SRCS, from the Makefile), so a new
# file the session code uses is never missing here.
FUZZ_SRCS    := tests/fuzz/fuzz_decode.c $(COLL_SRCS)
FUZZ_CFLAGS  := -std=gnu11 -O1 -g $(WARN) -Wno-unknown-warning-option -D_GNU_SOURCE \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer -I$(GEN) -Icollector -Itests \
                $(shell pkg-config --cflags libdw libprotobuf-c zlib)

$(B)/fuzz_decode: $(FUZZ_SRCS) $(PROTO_SRC) $(PROTO_HDR) $(PPROF_SRC) $(PPROF_HDR) tests/fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  FUZZCC  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_SRCS) $(PROTO_SRC) $(PPROF_SRC) \
	    $(shell pkg-config --libs libdw libprotobuf-c zlib) -lstdc++ -lm

fuzz: $(B)/fuzz_decode
	@mkdir -p $(B)/fuzz-seeds $(B)/fuzz-corpus $(B)/fuzz-artifacts
	$(Q)PA_FUZZ_MAKE_SEEDS=$(B)/fuzz-seeds $(B)/fuzz_decode
	$(Q)$(B)/fuzz_decode -max_total_time=$(FUZZ_SECONDS) -max_len=65536 -timeout=10 \
	    -rss_limit_mb=4096 -print_final_stats=1 $(FUZZ_FLAGS) \
	    -artifact_prefix=$(B)/fuzz-artifacts/ $(B)/fuzz-corpus $(B)/fuzz-seeds
