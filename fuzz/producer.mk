# fuzz/producer.mk — the producer's libFuzzer target, in the style of fuzz/module.mk
# (whose FUZZ_CC, FUZZ_CFLAGS, FUZZ_LDLIBS, FUZZ_DIR, FUZZ_SECONDS, FUZZ_ARGS and
# FUZZ_DICT it reuses, so include it after that file).
#
#   rest   producer/restparse.c: /api/v3/klines and /api/v3/exchangeInfo bodies and the
#          Retry-After / X-MBX-USED-WEIGHT-1M header values (first input byte picks which)
#
# `make fuzz-rest` builds and runs it for FUZZ_SECONDS from the seeds in fuzz/corpus/rest/
# (rebuild them with fuzz/make_rest_corpus.sh), growing fuzz/corpus-work/rest/.

FUZZ_SRCS_rest := fuzz/fuzz_rest.c producer/restparse.c $(wildcard common/kline*.c)

$(FUZZ_DIR)/fuzz_rest: $(FUZZ_SRCS_rest) producer/restparse.h common/kline.h fuzz/producer.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Iproducer -o $@ $(FUZZ_SRCS_rest) $(FUZZ_LDLIBS)

.PHONY: fuzz-rest
fuzz-build: $(FUZZ_DIR)/fuzz_rest
fuzz: fuzz-rest
fuzz-rest: $(FUZZ_DIR)/fuzz_rest
	@mkdir -p fuzz/corpus-work/rest $(FUZZ_DIR)/artifacts
	$(FUZZ_DIR)/fuzz_rest -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    $(call FUZZ_DICT,rest) -artifact_prefix=$(FUZZ_DIR)/artifacts/rest- $(FUZZ_ARGS) \
	    fuzz/corpus-work/rest fuzz/corpus/rest
