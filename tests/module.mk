# tests/ — cmocka unit tests only. Each tests/unit/test_*.c is one binary
# $(TBIN)/test_*, linked with libkp.a and cmocka; tests/run.sh runs them all.
# Other test directories add themselves through their own fragment (below).

UNIT_TEST_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_TEST_OBJS := $(patsubst %.c,$(BUILD)/%.o,$(UNIT_TEST_SRCS))
UNIT_TESTBINS  := $(patsubst tests/unit/%.c,$(TBIN)/%,$(UNIT_TEST_SRCS))
TEST_LDLIBS    := -lcmocka

# Prerequisites only: the link recipe is the top Makefile's $(TBIN)/% rule.
$(UNIT_TESTBINS): $(TBIN)/%: $(BUILD)/tests/unit/%.o $(LIBKP)

TESTBINS += $(UNIT_TESTBINS)
ALL_OBJS += $(UNIT_TEST_OBJS)

-include tests/sim/module.mk
-include tests/mock/module.mk
-include tests/wsclient/module.mk
