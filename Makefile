# The two commands of the README: `make run` and `make test`. Both install
# missing Debian packages first (scripts/deps.sh), then build with CMake.

BUILD      ?= build
ASAN_BUILD ?= build-asan
LISTEN     ?= 127.0.0.1:8080
DATA_DIR   ?= ./hearth-data
JOBS       ?= $(shell nproc)
PREFIX     ?= /usr/local
DESTDIR    ?=

.PHONY: all build run install test test-asan unit fuzz bench format clean deps deps-test

all: build

deps:
	@scripts/deps.sh

deps-test:
	@scripts/deps.sh --test

# Keyed on the Makefile CMake writes last: a configure that stopped half-way
# leaves a CMakeCache.txt but no Makefile, and the next run configures again.
$(BUILD)/Makefile:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo

# Installs under PREFIX (staged under DESTDIR when set): docs/operations.md.
# PREFIX goes to the configure step: the systemd unit names the installed
# hearthd's path. (An installed hearthd finds its own files relative to
# itself.)
install: deps $(BUILD)/Makefile
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	cmake --build $(BUILD) -j $(JOBS)
	DESTDIR="$(DESTDIR)" cmake --install $(BUILD)

# The test targets configure every time, asking for the unit tests (a build
# made by `make run` before cmocka was installed has none).
CONFIGURE_TESTS = cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHEARTH_TESTS=ON

build: deps $(BUILD)/Makefile
	cmake --build $(BUILD) -j $(JOBS)

run: build
	$(BUILD)/hearthd --listen $(LISTEN) --data-dir $(DATA_DIR)

# Every test: unit (C and the Python runtime) and end to end, on the
# normal build and then again under AddressSanitizer + UBSan.
test: deps-test
	$(CONFIGURE_TESTS)
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure
	$(MAKE) test-asan

test-asan: deps-test
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHEARTH_SANITIZE=ON -DHEARTH_TESTS=ON
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
		UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ctest --output-on-failure

unit: deps-test
	$(CONFIGURE_TESTS)
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -R "^unit_"

# The libFuzzer targets of tests/fuzz, each for FUZZ_SECONDS, one after
# another (FUZZ_TARGETS="cron routes" for some). What they find is kept in
# $(FUZZ_BUILD)/corpus/ across runs; a crash stops the run and leaves its
# input in $(FUZZ_BUILD)/artifacts/ (docs/testing.md).
FUZZ_SECONDS ?= 300
FUZZ_BUILD   ?= build-fuzz
fuzz: deps-test
	tests/fuzz/run.sh long $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: build
	@scripts/deps.sh --bench
	bench/run.sh
	bench/sched.sh
	bench/runtimes.sh
	bench/keepalive_sim.sh
	bench/log_flood.sh
	bench/metrics_cost.sh
	bench/auth_cost.sh
	/usr/bin/python3 bench/schedule_lateness.py
	bench/routes_cost.sh
	bench/async.sh
	bench/cold.sh
	bench/egress.sh
	bench/qualifiers.sh
	bench/soak.sh

format:
	clang-format -i src/*.c src/*.h src/events/*.c src/events/*.h src/cli/*.c src/cli/*.h include/hearth/*.h tests/unit/*.c bench/*.c

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
