# klinepipe — build, test, check, bench, install.
# Each directory contributes a fragment (*/module.mk) so programs stay independent.

PREFIX   ?= /usr/local
CC       ?= cc
PKGS     := rdkafka libwebsockets libpq jansson libcurl zlib
BUILD    ?= build/release
BIN      ?= bin
TBIN     ?= $(BUILD)/tbin
SAN      ?=

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS   ?= -O2 -g
CFLAGS   += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
            -D_GNU_SOURCE -MMD -MP -Icommon -I$(BUILD)/gen $(PKG_CFLAGS)
LDLIBS   += $(PKG_LIBS) -lpthread -lm
ifneq ($(SAN),)
CFLAGS   += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif

PROGRAMS :=
TESTBINS :=
ALL_OBJS :=

.PHONY: all
all: programs

include common/module.mk
-include producer/module.mk inserter/module.mk aggregator/module.mk streamer/module.mk
-include tests/module.mk web/module.mk bench/module.mk fuzz/module.mk fuzz/producer.mk

.PHONY: programs testbins
programs: $(PROGRAMS)
testbins: $(TESTBINS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# A program's objects and libkp.a are listed as prerequisites in its module.mk.
$(BIN)/kline-%:
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS)

$(TBIN)/%:
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(LDLIBS) $(TEST_LDLIBS)

# ---- dependencies of a fresh machine (Debian packages, Kafka jars) ----
.PHONY: deps
deps:
	@scripts/deps.sh

# ---- tests: `make test` is what README and .ci/run call ----
.PHONY: test check test-unit test-faults test-cluster test-faults-cluster
test: deps
	@$(MAKE) --no-print-directory programs testbins web
	@KP_BIN=$(abspath $(BIN)) KP_TBIN=$(abspath $(TBIN)) tests/run-all.sh $(TESTS)

check: deps
	@$(MAKE) --no-print-directory SAN=1 BUILD=build/san BIN=build/san/bin test

test-faults: deps
	@$(MAKE) --no-print-directory programs testbins
	@KP_BIN=$(abspath $(BIN)) KP_TBIN=$(abspath $(TBIN)) tests/run.sh --faults

# the cluster suites (tests/integration/cluster*.bats) against a 3-node KRaft cluster
test-cluster: deps
	@$(MAKE) --no-print-directory programs testbins
	@KP_BIN=$(abspath $(BIN)) KP_TBIN=$(abspath $(TBIN)) tests/run.sh --cluster $(TESTS)

# the long cluster fault campaign (tests/integration/cluster_faults_long.bats, ~20 min; bounded by its drain timeout)
test-faults-cluster: deps
	@$(MAKE) --no-print-directory programs testbins
	@KP_BIN=$(abspath $(BIN)) KP_TBIN=$(abspath $(TBIN)) tests/run.sh --cluster --faults cluster_faults_long

.PHONY: bench demo soak
bench: deps
	@$(MAKE) --no-print-directory programs testbins web
	@KP_BIN=$(abspath $(BIN)) KP_TBIN=$(abspath $(TBIN)) bench/run.sh $(BENCH)

# The long soak of issue 17 (not part of CI; docs/storage.md "Soak"): KP_SOAK_HOURS,
# KP_SOAK_SYMBOLS, KP_SOAK_SPEED, KP_SOAK_RETAIN, KP_SOAK_OUT (see bench/soak.sh).
soak: programs testbins
	@KP_BIN=$(abspath $(BIN)) KP_TBIN=$(abspath $(TBIN)) bench/soak.sh

# exec: make passes a SIGTERM on to its child (scripts/demo.sh stops the whole tree);
# through an `sh -c` between them it would stop at the shell and leave the demo running.
demo: deps
	@$(MAKE) --no-print-directory programs testbins web
	@KP_BIN=$(abspath $(BIN)) KP_TBIN=$(abspath $(TBIN)) exec scripts/demo.sh

.PHONY: install
install: programs web
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/klinepipe/web
	install -m 0755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	cp -R web/dist/. $(DESTDIR)$(PREFIX)/share/klinepipe/web/

# ---- operations kit: systemd units, man pages, the image check (docs/operations.md) ----
SYSTEMD_DIR  ?= $(PREFIX)/lib/systemd/system
SYSUSERS_DIR ?= $(PREFIX)/lib/sysusers.d
MAN1_DIR     ?= $(PREFIX)/share/man/man1
KP_ENV_DIR   ?= /etc/klinepipe
KP_EXAMPLES  ?= $(PREFIX)/share/klinepipe/env
UNITS_IN     := $(wildcard deploy/systemd/*.service.in)
UNITS_PLAIN  := $(wildcard deploy/systemd/*.timer)
MAN_PAGES    := $(patsubst $(BIN)/%,$(BUILD)/man/%.1,$(PROGRAMS))

.PHONY: man install-systemd install-man image-check
man: $(MAN_PAGES)

# From the program's --help, so the page cannot list an option the binary lacks.
$(BUILD)/man/%.1: $(BIN)/% scripts/gen-man.sh
	@mkdir -p $(dir $@)
	scripts/gen-man.sh $< >$@.tmp && mv $@.tmp $@

install: install-systemd install-man

# The units name the installed binaries: @BINDIR@ is $(PREFIX)/bin (without DESTDIR).
install-systemd: $(UNITS_IN) $(UNITS_PLAIN) deploy/systemd/klinepipe.sysusers.conf
	install -d $(DESTDIR)$(SYSTEMD_DIR) $(DESTDIR)$(SYSUSERS_DIR) $(DESTDIR)$(KP_EXAMPLES)
	for u in $(UNITS_IN); do \
		sed -e 's|@BINDIR@|$(PREFIX)/bin|g' -e 's|@ENVDIR@|$(KP_ENV_DIR)|g' \
		    -e 's|@EXAMPLEDIR@|$(KP_EXAMPLES)|g' $$u >$(DESTDIR)$(SYSTEMD_DIR)/$$(basename $$u .in) || exit 1; \
		chmod 0644 $(DESTDIR)$(SYSTEMD_DIR)/$$(basename $$u .in); \
	done
	install -m 0644 $(UNITS_PLAIN) $(DESTDIR)$(SYSTEMD_DIR)/
	install -m 0644 deploy/systemd/klinepipe.sysusers.conf $(DESTDIR)$(SYSUSERS_DIR)/klinepipe.conf
	install -m 0644 deploy/systemd/env/*.env $(DESTDIR)$(KP_EXAMPLES)/

install-man: $(MAN_PAGES)
	install -d $(DESTDIR)$(MAN1_DIR)
	install -m 0644 $(MAN_PAGES) $(DESTDIR)$(MAN1_DIR)/

# Builds the Dockerfile's two stages in throwaway Debian 12 roots and runs every
# program's --version and HEALTHCHECK in the runtime root. Slow (minutes), needs root
# and the Debian mirror; not part of `make test`.
image-check: deps
	@$(MAKE) --no-print-directory testbins
	@KP_TBIN=$(abspath $(TBIN)) scripts/image-check.sh

.PHONY: clean
clean:
	rm -rf build bin

-include $(ALL_OBJS:.o=.d)
