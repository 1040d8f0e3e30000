# kline-aggregator: checkpoint-driven rollups kline_1s → kline_1m (and coarser).
AGGREGATOR_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(wildcard aggregator/*.c))
$(BIN)/kline-aggregator: $(AGGREGATOR_OBJS) $(LIBKP)
PROGRAMS += $(BIN)/kline-aggregator
ALL_OBJS += $(AGGREGATOR_OBJS)

# kp-agg-latency: bench helper (minute's last second committed → its 1m bar committed).
AGG_LATENCY_OBJS := $(BUILD)/aggregator/tools/agg_latency.o
$(TBIN)/kp-agg-latency: $(AGG_LATENCY_OBJS) $(LIBKP)
TESTBINS += $(TBIN)/kp-agg-latency
ALL_OBJS += $(AGG_LATENCY_OBJS)

# test_aggregator_config: cmocka tests of the option parsers (opts.c + interval.c, no database).
AGG_TEST_OBJS := $(BUILD)/aggregator/tests/test_aggregator_config.o $(BUILD)/aggregator/opts.o $(BUILD)/aggregator/interval.o
$(TBIN)/test_aggregator_config: $(AGG_TEST_OBJS) $(LIBKP)
TESTBINS += $(TBIN)/test_aggregator_config
ALL_OBJS += $(BUILD)/aggregator/tests/test_aggregator_config.o
