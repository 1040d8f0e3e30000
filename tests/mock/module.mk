# Test helpers built on librdkafka: the mock-cluster server (fallback broker,
# fault injection) and kp-topic (create/count/delete topics without a JVM).
KPMOCK_OBJS := $(BUILD)/tests/mock/kp-mock-cluster.o
KPTOPIC_OBJS := $(BUILD)/tests/mock/kp-topic.o
$(TBIN)/kp-mock-cluster: $(KPMOCK_OBJS)
$(TBIN)/kp-topic: $(KPTOPIC_OBJS)
TESTBINS += $(TBIN)/kp-mock-cluster $(TBIN)/kp-topic
ALL_OBJS += $(KPMOCK_OBJS) $(KPTOPIC_OBJS)
