STREAMER_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard streamer/*.c))
$(BIN)/kline-streamer: $(STREAMER_OBJS) $(LIBKP)
# lws runs on our own libuv loop (--event-loop uv): link libuv directly
$(BIN)/kline-streamer: LDLIBS += $(shell pkg-config --libs libuv 2>/dev/null || echo -luv)
PROGRAMS += $(BIN)/kline-streamer
ALL_OBJS += $(STREAMER_OBJS)
-include tests/wsclient/module.mk
