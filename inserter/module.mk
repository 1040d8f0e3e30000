# kline-inserter: Kafka (or stdin) → PostgreSQL kline_1s, checkpoint, rejected.
INSERTER_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard inserter/*.c))
# libcrypto (OpenSSL, already linked through libpq and librdkafka): SHA-256 of rejects
$(BIN)/kline-inserter: LDLIBS += -lcrypto
$(BIN)/kline-inserter: $(INSERTER_OBJS) $(LIBKP)
PROGRAMS += $(BIN)/kline-inserter
ALL_OBJS += $(INSERTER_OBJS)

# cmocka tests of the batch (dedupe, offsets, drop on revoke): $(TBIN)/test_inserter_batch
INSERTER_TEST_OBJS := $(BUILD)/inserter/test/test_inserter_batch.o
$(TBIN)/test_inserter_batch: $(INSERTER_TEST_OBJS) $(BUILD)/inserter/batch.o $(LIBKP)
$(TBIN)/test_inserter_batch: LDLIBS += -lcrypto
TESTBINS += $(TBIN)/test_inserter_batch
ALL_OBJS += $(INSERTER_TEST_OBJS)
