# ainit — see README.md. `make` builds build/ainit; `make check` runs every
# test tier; `make demo` boots the demo appliance in QEMU.
BUILD    ?= build
CC       ?= cc
PYTHON   ?= /usr/bin/python3
PKGS     := yaml-0.1 libseccomp libcap
# libkmod: dlopen()ed by boot.c only (its closure costs every start ~1 ms)
CSTD     := -std=c17 -D_GNU_SOURCE
WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
OPT      ?= -O2 -g
CFLAGS   += $(CSTD) $(WARN) $(OPT) -fno-strict-aliasing -Iinit
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

SRCS     := $(sort $(wildcard init/*.c))
OBJS     := $(SRCS:init/%.c=$(BUILD)/obj/%.o)
SAN_OBJS := $(SRCS:init/%.c=$(BUILD)/san/obj/%.o)
LIB_OBJS := $(filter-out $(BUILD)/obj/main.o,$(OBJS))
SAN_LIB_OBJS := $(filter-out $(BUILD)/san/obj/main.o,$(SAN_OBJS))
UNIT_SRCS := $(sort $(wildcard tests/unit/*_test.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
SAN_UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/san/tests/%)

.PHONY: all san deps check check-unit check-host check-qemu clean
all: $(BUILD)/ainit

$(BUILD)/obj/%.o: init/%.c $(wildcard init/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/san/obj/%.o: init/%.c $(wildcard init/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN) $(PKG_CFLAGS) -c $< -o $@

$(BUILD)/ainit: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS) -ldl

$(BUILD)/san/ainit: $(SAN_OBJS)
	$(CC) $(CFLAGS) $(SAN) -o $@ $^ $(PKG_LIBS) -ldl

san: $(BUILD)/san/ainit $(SAN_UNIT_BINS)

$(BUILD)/tests/%_test: tests/unit/%_test.c $(LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS) -ldl -lcmocka

$(BUILD)/san/tests/%_test: tests/unit/%_test.c $(SAN_LIB_OBJS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(SAN) $(PKG_CFLAGS) -o $@ $^ $(PKG_LIBS) -ldl -lcmocka

# Other parts of the tree (agents, image) add their targets here.
-include $(sort $(wildcard mk/*.mk agents/*.mk))

deps:
	@bash mk/deps.sh

check-unit: $(UNIT_BINS) $(SAN_UNIT_BINS)
	@set -e; for t in $(UNIT_BINS) $(SAN_UNIT_BINS); do echo "== $$t"; $$t; done

check-host: $(BUILD)/ainit $(BUILD)/san/ainit $(HOST_TEST_DEPS)
	AINIT=$(abspath $(BUILD)/san/ainit) BUILD=$(abspath $(BUILD)) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/host

check-qemu: $(QEMU_TEST_DEPS)
	BUILD=$(abspath $(BUILD)) $(PYTHON) -m pytest -q -p no:cacheprovider tests/qemu

check: deps
	$(MAKE) all san
	$(MAKE) check-unit
	$(MAKE) check-host
	$(MAKE) check-qemu

clean:
	rm -rf $(BUILD)
