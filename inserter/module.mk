# kline-inserter: Kafka (or stdin) → PostgreSQL kline_1s, checkpoint, rejected.
INSERTER_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard inserter/*.c))
$(BIN)/kline-inserter: $(INSERTER_OBJS) $(LIBKP)
PROGRAMS += $(BIN)/kline-inserter
ALL_OBJS += $(INSERTER_OBJS)
