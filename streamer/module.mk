STREAMER_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard streamer/*.c))
$(BIN)/kline-streamer: $(STREAMER_OBJS) $(LIBKP)
# lws runs on our own libuv loop (--event-loop uv): link libuv directly
$(BIN)/kline-streamer: LDLIBS += $(shell pkg-config --libs libuv 2>/dev/null || echo -luv)
# and on libev (--event-loop ev)
$(BIN)/kline-streamer: LDLIBS += -lev
PROGRAMS += $(BIN)/kline-streamer
ALL_OBJS += $(STREAMER_OBJS)

# Indicators (1m bar, SMA, crossovers) unit-tested on their own (cmocka, run by tests/run.sh).
$(TBIN)/test_streamer_indicators: $(BUILD)/streamer/test/test_streamer_indicators.o \
	$(BUILD)/streamer/indicators.o $(BUILD)/streamer/msg.o $(LIBKP)
TESTBINS += $(TBIN)/test_streamer_indicators
ALL_OBJS += $(BUILD)/streamer/test/test_streamer_indicators.o

# Parsers of outside input (client messages, /api/klines query) on their own (cmocka).
$(TBIN)/test_streamer_proto: $(BUILD)/streamer/test/test_streamer_proto.o \
	$(BUILD)/streamer/proto.o $(LIBKP)
TESTBINS += $(TBIN)/test_streamer_proto
ALL_OBJS += $(BUILD)/streamer/test/test_streamer_proto.o

# The per-client pending queue (outq.c) and subscription set (sset.c) on their own (cmocka).
$(TBIN)/test_streamer_queues: $(BUILD)/streamer/test/test_streamer_queues.o \
	$(BUILD)/streamer/outq.o $(BUILD)/streamer/sset.o $(BUILD)/streamer/msg.o $(BUILD)/streamer/stage.o $(LIBKP)
TESTBINS += $(TBIN)/test_streamer_queues
ALL_OBJS += $(BUILD)/streamer/test/test_streamer_queues.o
