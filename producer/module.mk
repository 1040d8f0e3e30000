# producer/ → bin/kline-producer
PRODUCER_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard producer/*.c))
$(BIN)/kline-producer: $(PRODUCER_OBJS) $(LIBKP)
PROGRAMS += $(BIN)/kline-producer
ALL_OBJS += $(PRODUCER_OBJS)

# The fast kline parser checked against the codec (a cmocka test, run by tests/run.sh).
$(TBIN)/test_producer_fastjson: $(BUILD)/producer/test/test_producer_fastjson.o $(BUILD)/producer/fastjson.o $(LIBKP)
TESTBINS += $(TBIN)/test_producer_fastjson
ALL_OBJS += $(BUILD)/producer/test/test_producer_fastjson.o
