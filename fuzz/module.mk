# fuzz/ — libFuzzer targets. `make fuzz` builds them with clang
# (-fsanitize=fuzzer,address,undefined) and runs fuzz_kline for FUZZ_SECONDS,
# starting from the checked-in seeds in fuzz/corpus/kline/ and growing the
# untracked work corpus in fuzz/corpus-work/kline/ (gitignored).
#
# The codec sources are compiled in directly rather than linking libkp.a: the
# library is built by $(CC) without coverage instrumentation, and the codec
# needs nothing else from common/.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_ARGS    ?=
FUZZ_DIR     := $(BUILD)/fuzz
FUZZ_KLINE   := $(FUZZ_DIR)/fuzz_kline
FUZZ_KLINE_SRCS := fuzz/fuzz_kline.c $(wildcard common/kline*.c)
FUZZ_CFLAGS  := -g -O1 -std=gnu11 -Wall -Wextra -Werror -Wshadow -D_GNU_SOURCE -Icommon \
                $(shell pkg-config --cflags jansson) \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer
FUZZ_LDLIBS  := $(shell pkg-config --libs jansson)

$(FUZZ_KLINE): $(FUZZ_KLINE_SRCS) common/kline.h fuzz/module.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(FUZZ_KLINE_SRCS) $(FUZZ_LDLIBS)

.PHONY: fuzz fuzz-build
fuzz-build: $(FUZZ_KLINE)

# Crash reproducers (crash-*, leak-*, timeout-*) land in $(FUZZ_DIR)/artifacts/;
# replay one with: $(FUZZ_KLINE) FILE
fuzz: $(FUZZ_KLINE)
	@mkdir -p fuzz/corpus-work/kline $(FUZZ_DIR)/artifacts
	$(FUZZ_KLINE) -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -dict=fuzz/kline.dict -artifact_prefix=$(FUZZ_DIR)/artifacts/ $(FUZZ_ARGS) \
	    fuzz/corpus-work/kline fuzz/corpus/kline
