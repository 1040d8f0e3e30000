# bench/ — helper programs of the benchmarks (bench/bench_e2e.sh), built into $(TBIN).
E2E_PROBE_OBJS := $(BUILD)/bench/e2e_probe.o
$(TBIN)/kp-e2e-probe: $(E2E_PROBE_OBJS) $(LIBKP)
TESTBINS += $(TBIN)/kp-e2e-probe
ALL_OBJS += $(E2E_PROBE_OBJS)

# kp-parse-bench: the codec's parse throughput alone (bench/parse_bench.c); run it with
# `build/release/tbin/kp-parse-bench [SAMPLES] [SECONDS]` from the top of the tree.
PARSE_BENCH_OBJS := $(BUILD)/bench/parse_bench.o
$(TBIN)/kp-parse-bench: $(PARSE_BENCH_OBJS) $(LIBKP)
TESTBINS += $(TBIN)/kp-parse-bench
ALL_OBJS += $(PARSE_BENCH_OBJS)

# kp-peer-feed: the feeder of bench_peers.sh (one record → the streamer's topic and
# Centrifugo's, with the centrifugo-channels header)
PEER_FEED_OBJS := $(BUILD)/bench/peer_feed.o
$(TBIN)/kp-peer-feed: $(PEER_FEED_OBJS) $(LIBKP)
TESTBINS += $(TBIN)/kp-peer-feed
ALL_OBJS += $(PEER_FEED_OBJS)
