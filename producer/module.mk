# producer/ → bin/kline-producer
PRODUCER_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard producer/*.c))
$(BIN)/kline-producer: $(PRODUCER_OBJS) $(LIBKP)
PROGRAMS += $(BIN)/kline-producer
ALL_OBJS += $(PRODUCER_OBJS)

# REST answer parsing (pure) and the connection-attempt limiter (injected clock).
$(TBIN)/test_producer_restparse: $(BUILD)/producer/test/test_producer_restparse.o $(BUILD)/producer/restparse.o $(LIBKP)
$(TBIN)/test_producer_attempts: $(BUILD)/producer/test/test_producer_attempts.o $(BUILD)/producer/attempts.o
# The take-back list and the rebuild pace of a Kafka client after a fatal error.
$(TBIN)/test_producer_takeback: $(BUILD)/producer/test/test_producer_takeback.o $(BUILD)/producer/takeback.o $(LIBKP)
TESTBINS += $(TBIN)/test_producer_restparse $(TBIN)/test_producer_attempts $(TBIN)/test_producer_takeback
ALL_OBJS += $(BUILD)/producer/test/test_producer_restparse.o $(BUILD)/producer/test/test_producer_attempts.o \
            $(BUILD)/producer/test/test_producer_takeback.o

# --replay's file names and gzip line reader.
$(TBIN)/test_producer_replay_files: $(BUILD)/producer/test/test_producer_replay_files.o $(BUILD)/producer/replay_files.o $(LIBKP)
TESTBINS += $(TBIN)/test_producer_replay_files
ALL_OBJS += $(BUILD)/producer/test/test_producer_replay_files.o
