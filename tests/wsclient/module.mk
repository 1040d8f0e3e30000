# Streamer test/bench helpers: kp-klinegen (synthetic klines), kp-wsload (WebSocket load
# client), kp-addparts (grow a topic).
ifndef KP_WSCLIENT_MK
KP_WSCLIENT_MK := 1
$(TBIN)/kp-klinegen: $(BUILD)/tests/wsclient/klinegen.o $(LIBKP)
$(TBIN)/kp-wsload: $(BUILD)/tests/wsclient/wsload.o $(LIBKP)
$(TBIN)/kp-addparts: $(BUILD)/tests/wsclient/addparts.o $(LIBKP)
TESTBINS += $(TBIN)/kp-klinegen $(TBIN)/kp-wsload $(TBIN)/kp-addparts
ALL_OBJS += $(BUILD)/tests/wsclient/klinegen.o $(BUILD)/tests/wsclient/wsload.o $(BUILD)/tests/wsclient/addparts.o
endif
