# microrec build. `make` builds everything into $(BUILD)/; `make test` runs the
# suite twice, plainly and under ASan+UBSan; `make run` starts the server on
# the bundled default model. Sources are found by folder, so a new file in a
# folder needs no change here.

BUILD   ?= build
CC      ?= cc
CXX     ?= c++
OPT     ?= -O2
SAN     ?=
PREFIX  ?= /usr/local
DESTDIR ?=

SHARED  ?= ../shared
TESTDATA ?= $(SHARED)/testdata

DEB_PKGS := build-essential pkg-config libuv1-dev libprotobuf-c-dev \
            protobuf-c-compiler libjemalloc-dev libcriterion-dev libinih-dev \
            libmicrohttpd-dev libjansson-dev libxrt-dev uuid-dev
# microrecd's sd_notify (server/notify.c); systemd-analyze for the unit's
# test (tests/unit/test_deploy.c); procps for /bin/kill, the unit's
# ExecReload (a minimal Debian has no /bin/kill).
DEB_PKGS += libsystemd-dev systemd procps
# The Python client (client/python): protobuf runtime, numpy, and protoc.
DEB_PKGS += python3-protobuf python3-numpy protobuf-compiler

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
CFLAGS_ALL := -std=c11 -D_GNU_SOURCE -g $(OPT) $(WARN) -pthread -fPIC \
              -I. -I$(BUILD)/gen -DMR_BUILD_DIR='"$(abspath $(BUILD))"' \
              -DMR_TESTDATA_DIR='"$(abspath $(TESTDATA))"' $(CFLAGS)
LDFLAGS_ALL := -pthread $(LDFLAGS)
ifeq ($(SAN),1)
  SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined \
              -fno-omit-frame-pointer
  CFLAGS_ALL += $(SANFLAGS) -DMR_SANITIZE=1
  LDFLAGS_ALL += $(SANFLAGS)
  JEMALLOC :=
else
  JEMALLOC := -ljemalloc
endif

SIMD_AVX512 := -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma -mf16c
SIMD_AVX2   := -mavx2 -mfma -mf16c

LIBS_ENGINE := -ljansson -lm -lstdc++
LIBS_NET    := -luv -lprotobuf-c
LIBS_SERVER := -linih -lmicrohttpd -lsystemd

PROTO_SRC := $(BUILD)/gen/proto/microrec.pb-c.c
PROTO_HDR := $(BUILD)/gen/proto/microrec.pb-c.h

ENGINE_SRC := $(sort $(wildcard fpga/*.c fpga/cpu/*.c fpga/sim/*.c fpga/xrt/*.c))
# The HLS kernel's host-side entry (C++, the fpga-sim backend); the hardware
# top fpga/kernel/microrec_kernel.cpp needs a generated header and is built
# by fpga/kernel/Makefile instead.
KERNEL_SRC := fpga/kernel/microrec_rt.cpp
CXXFLAGS_KERNEL := -std=c++17 -g $(OPT) -Wall -Wextra -Werror -Wshadow \
                   -Wno-unknown-pragmas -pthread -fPIC -I. $(SANFLAGS)
CLIENT_SRC := $(sort $(wildcard client/lib/*.c))
SERVER_SRC := $(filter-out server/main.c,$(sort $(wildcard server/*.c)))
CLI_SRC    := $(sort $(wildcard client/cli/*.c))
LOAD_SRC   := $(sort $(wildcard client/load/*.c))
TEST_SRC   := $(sort $(wildcard tests/unit/*.c))

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

ENGINE_LIB := $(BUILD)/lib/libmrengine.a
CLIENT_LIB := $(BUILD)/lib/libmicrorec.a
SERVER_LIB := $(BUILD)/lib/libmrserver.a

PROGRAMS := $(BUILD)/bin/microrec
ifneq ($(wildcard server/main.c),)
  PROGRAMS += $(BUILD)/bin/microrecd
endif
ifneq ($(LOAD_SRC),)
  PROGRAMS += $(BUILD)/bin/microrec-load
endif
TEST_BIN := $(BUILD)/tests/microrec-tests
# The long fault tests (tests/long/: soak, reloads every second).
LONG_SRC := $(sort $(wildcard tests/long/*.c))
LONG_BIN := $(if $(LONG_SRC),$(BUILD)/tests/microrec-tests-long)

.PHONY: all deps test test-unit test-san run clean install default-model
.DEFAULT_GOAL := all

all: $(PROGRAMS) $(TEST_BIN) $(LONG_BIN)

deps:
	@tools/deps.sh $(DEB_PKGS)

# Generated protobuf code (built, never committed).
$(PROTO_SRC) $(PROTO_HDR) &: proto/microrec.proto
	@mkdir -p $(BUILD)/gen
	protoc-c --c_out=$(BUILD)/gen proto/microrec.proto

$(BUILD)/obj/%.o: %.c $(PROTO_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(BUILD)/obj/%_avx512.o: %_avx512.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(SIMD_AVX512) -MMD -MP -c $< -o $@

$(BUILD)/obj/%_avx2.o: %_avx2.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(SIMD_AVX2) -MMD -MP -c $< -o $@

# Generated proto code is not held to our warning flags.
$(BUILD)/obj/gen/microrec.pb-c.o: $(PROTO_SRC)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -Werror,$(CFLAGS_ALL)) -c $< -o $@

# XRT's headers (fpga/xrt/ only; the library itself is loaded at run time
# by the fpga backend, so nothing links it).
$(call obj,$(wildcard fpga/xrt/*.c)): CFLAGS_ALL += -isystem /usr/include/xrt

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(CXX) $(CXXFLAGS_KERNEL) -MMD -MP -c $< -o $@

$(ENGINE_LIB): $(call obj,$(ENGINE_SRC)) $(patsubst %.cpp,$(BUILD)/obj/%.o,$(KERNEL_SRC))
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(CLIENT_LIB): $(call obj,$(CLIENT_SRC)) $(BUILD)/obj/gen/microrec.pb-c.o
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(SERVER_LIB): $(call obj,$(SERVER_SRC)) $(BUILD)/obj/gen/microrec.pb-c.o
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/microrec: $(call obj,$(CLI_SRC)) $(CLIENT_LIB) $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_NET) $(LIBS_ENGINE)

$(BUILD)/bin/microrecd: $(call obj,server/main.c) $(SERVER_LIB) $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_SERVER) $(LIBS_NET) $(LIBS_ENGINE) $(JEMALLOC)

$(BUILD)/bin/microrec-load: $(call obj,$(LOAD_SRC)) $(CLIENT_LIB) $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_NET) $(LIBS_ENGINE)

# The deploy tests install from and read deploy/ of this source tree.
$(call obj,$(TEST_SRC)): CFLAGS_ALL += -DMR_SOURCE_DIR='"$(CURDIR)"'

$(TEST_BIN): $(call obj,$(TEST_SRC)) $(SERVER_LIB) $(CLIENT_LIB) $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ -lcriterion $(LIBS_SERVER) $(LIBS_NET) $(LIBS_ENGINE)

# The Python client's generated protobuf module (built, never committed).
PY_PB2 := client/python/microrec/microrec_pb2.py
.PHONY: python test-python
python: $(PY_PB2)
$(PY_PB2): proto/microrec.proto
	protoc -Iproto --python_out=client/python/microrec proto/microrec.proto

# The Python client's tests against the real server of this build.
test-python: all python
	MICROREC_BUILD=$(abspath $(BUILD)) MR_TESTDATA=$(abspath $(TESTDATA)) \
	  PYTHONPATH=client/python /usr/bin/python3 -m unittest discover \
	  -s client/python/tests -v

# The suite, plainly and then under AddressSanitizer + UBSan.
test: deps
	$(MAKE) test-unit
	$(MAKE) test-python
	$(MAKE) test-san

test-unit: all
	$(TEST_BIN) --jobs 2

test-san:
	$(MAKE) BUILD=$(BUILD)/san SAN=1 OPT=-O1 all
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
	  LSAN_OPTIONS=suppressions=$(abspath tests/lsan.supp):print_suppressions=0 \
	  $(BUILD)/san/tests/microrec-tests --jobs 2

DEFAULT_MODEL := $(BUILD)/models/default.safetensors
default-model: $(DEFAULT_MODEL)
$(DEFAULT_MODEL): | $(BUILD)/bin/microrec
	@mkdir -p $(dir $@)
	$(BUILD)/bin/microrec model gen --preset criteo --max-rows 100000 --seed 1 -o $@

run: deps
	$(MAKE) all default-model
	@tools/run.sh $(BUILD) $(DEFAULT_MODEL) $(TESTDATA)

clean:
	rm -rf $(BUILD)

# `make install [PREFIX=/usr/local] [DESTDIR=]`: the programs into $(BINDIR),
# the systemd unit into $(UNITDIR) (a directory systemd searches when
# PREFIX is /usr/local or /usr) with its paths rewritten to these, and the
# default configuration into $(SYSCONFDIR)/microrec/, unless one is there
# already (then beside it as microrecd.conf.default). deploy/README.md.
BINDIR     ?= $(PREFIX)/bin
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
install: $(PROGRAMS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/microrec
	install -m 0755 $(PROGRAMS) $(DESTDIR)$(BINDIR)/
	sed -e 's|/usr/local/bin/|$(BINDIR)/|g' -e 's|/etc/microrec/|$(SYSCONFDIR)/microrec/|g' \
	  deploy/microrecd.service > $(DESTDIR)$(UNITDIR)/microrecd.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/microrecd.service.tmp
	mv -f $(DESTDIR)$(UNITDIR)/microrecd.service.tmp $(DESTDIR)$(UNITDIR)/microrecd.service
	@conf=$(DESTDIR)$(SYSCONFDIR)/microrec/microrecd.conf; \
	if [ -e "$$conf" ]; then \
	  echo "install: keeping $$conf; the default is $$conf.default"; \
	  install -m 0644 deploy/microrecd.conf "$$conf.default"; \
	else \
	  install -m 0644 deploy/microrecd.conf "$$conf"; \
	fi

# ---- reliability: long fault tests, fuzzing, valgrind (tests/README.md) ----
# clang and its libFuzzer runtime for the fuzzers; valgrind for `make valgrind`.
DEB_PKGS += clang libclang-rt-14-dev valgrind

$(BUILD)/tests/microrec-tests-long: $(call obj,$(LONG_SRC)) $(SERVER_LIB) \
                                    $(CLIENT_LIB) $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ -lcriterion $(LIBS_SERVER) $(LIBS_NET) $(LIBS_ENGINE)

.PHONY: test-long fuzz fuzz-build fuzz-bins valgrind
# Soak and reload-every-second against the real server (a few minutes).
test-long: all
	$(LONG_BIN) --jobs 1

# libFuzzer targets (tests/fuzz/*.c), built with clang, ASan and UBSan in
# their own build folder; `make fuzz` runs each for FUZZ_SECONDS.
FUZZ_SECONDS ?= 60
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_NAMES := $(patsubst tests/fuzz/%.c,%,$(sort $(wildcard tests/fuzz/*.c)))

$(BUILD)/bin/fuzz_%: tests/fuzz/fuzz_%.c $(SERVER_LIB) $(CLIENT_LIB) $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -fsanitize=fuzzer -o $@ $< $(SERVER_LIB) $(CLIENT_LIB) $(ENGINE_LIB) \
	  $(LIBS_SERVER) $(LIBS_NET) $(LIBS_ENGINE)

fuzz-bins: $(patsubst %,$(BUILD)/bin/%,$(FUZZ_NAMES))

fuzz-build:
	$(MAKE) BUILD=$(FUZZ_BUILD) SAN=1 OPT=-O1 CC=clang CXX=clang++ \
	  CFLAGS=-fsanitize=fuzzer-no-link fuzz-bins

fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_NAMES)

# The server under valgrind through start, load, reload and stop; fails on
# a definite leak or a memory error. valgrind cannot see into jemalloc, so
# it runs the same objects linked without it (not for SAN=1 builds).
$(BUILD)/bin/microrecd-vg: $(call obj,server/main.c) $(SERVER_LIB) $(ENGINE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(LIBS_SERVER) $(LIBS_NET) $(LIBS_ENGINE)

valgrind: $(BUILD)/bin/microrecd-vg $(BUILD)/bin/microrec
	tests/valgrind.sh $(BUILD)/bin/microrecd-vg $(BUILD)/bin/microrec

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
