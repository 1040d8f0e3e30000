# tests/sim — the simulated Binance exchange (kline-sim) and the tiny WS client (kp-wsdump).
SIM_SRCS    := $(filter-out tests/sim/wsdump.c,$(wildcard tests/sim/*.c))
SIM_OBJS    := $(patsubst %.c,$(BUILD)/%.o,$(SIM_SRCS))
WSDUMP_OBJS := $(BUILD)/tests/sim/wsdump.o

$(TBIN)/kline-sim: $(SIM_OBJS)
$(TBIN)/kp-wsdump: $(WSDUMP_OBJS)

TESTBINS += $(TBIN)/kline-sim $(TBIN)/kp-wsdump
ALL_OBJS += $(SIM_OBJS) $(WSDUMP_OBJS)
