# fuzz/ — libFuzzer targets. `make fuzz` builds them with clang
# (-fsanitize=fuzzer,address,undefined) and runs each for FUZZ_SECONDS, starting
# from the checked-in seeds in fuzz/corpus/<target>/ and growing the untracked
# work corpus in fuzz/corpus-work/<target>/ (gitignored).
#
#   kline       common/kline*.c: the kline codec (Binance events, REST rows, CSV)
#   client_msg  streamer/proto.c: a WebSocket client's message
#   api_query   streamer/proto.c: the /api/klines query string
#   fast        common/kline_fast.c and common/kline.c together: the codec's fast first
#               attempt and its full path must agree on every input (see fuzz_fast.c)
#
# The parser sources are compiled in directly rather than linking libkp.a: the
# library is built by $(CC) without coverage instrumentation, and the parsers
# need nothing else from common/.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_ARGS    ?=
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_TARGETS := kline client_msg api_query fast
FUZZ_CFLAGS  := -g -O1 -std=gnu11 -Wall -Wextra -Werror -Wshadow -D_GNU_SOURCE -Icommon -Istreamer \
                -Iinserter -Iproducer $(shell pkg-config --cflags jansson libpq rdkafka) \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_LDLIBS  := $(shell pkg-config --libs jansson)

FUZZ_KLINE   := $(FUZZ_DIR)/fuzz_kline
FUZZ_SRCS_kline      := fuzz/fuzz_kline.c $(wildcard common/kline*.c)
FUZZ_SRCS_client_msg := fuzz/fuzz_client_msg.c streamer/proto.c
FUZZ_SRCS_api_query  := fuzz/fuzz_api_query.c streamer/proto.c
FUZZ_SRCS_fast       := fuzz/fuzz_fast.c $(wildcard common/kline*.c)
FUZZ_DEPS    := common/kline.h common/kline_rules.h streamer/proto.h fuzz/module.mk
# a dictionary is used when fuzz/<target>.dict exists
FUZZ_DICT     = $(if $(wildcard fuzz/$(1).dict),-dict=fuzz/$(1).dict)

define FUZZ_RULE
$(FUZZ_DIR)/fuzz_$(1): $(FUZZ_SRCS_$(1)) $(FUZZ_DEPS)
	@mkdir -p $$(dir $$@)
	$$(FUZZ_CC) $$(FUZZ_CFLAGS) -o $$@ $(FUZZ_SRCS_$(1)) $$(FUZZ_LDLIBS)
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call FUZZ_RULE,$(t))))

.PHONY: fuzz fuzz-build $(addprefix fuzz-,$(FUZZ_TARGETS))
fuzz-build: $(addprefix $(FUZZ_DIR)/fuzz_,$(FUZZ_TARGETS))

# Crash reproducers (crash-*, leak-*, timeout-*) land in $(FUZZ_DIR)/artifacts/<target>-;
# replay one with: $(FUZZ_DIR)/fuzz_<target> FILE. `make fuzz-client_msg` runs one target.
$(addprefix fuzz-,$(FUZZ_TARGETS)): fuzz-%: $(FUZZ_DIR)/fuzz_%
	@mkdir -p fuzz/corpus-work/$* $(FUZZ_DIR)/artifacts
	$(FUZZ_DIR)/fuzz_$* -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(call FUZZ_DICT,$*) -artifact_prefix=$(FUZZ_DIR)/artifacts/$*- $(FUZZ_ARGS) \
	    fuzz/corpus-work/$* fuzz/corpus/$*

fuzz: $(addprefix fuzz-,$(FUZZ_TARGETS))
