# bench/ — helper programs of the benchmarks (bench/bench_e2e.sh), built into $(TBIN).
E2E_PROBE_OBJS := $(BUILD)/bench/e2e_probe.o
$(TBIN)/kp-e2e-probe: $(E2E_PROBE_OBJS) $(LIBKP)
TESTBINS += $(TBIN)/kp-e2e-probe
ALL_OBJS += $(E2E_PROBE_OBJS)
