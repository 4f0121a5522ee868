# The two commands of the README:
#   make run    install what is missing, build, and run a single-node broker on
#               127.0.0.1:9092 with data in ./data
#   make test   install what is missing, build, and run every test
BUILD_DIR ?= build
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
# ccache: hash paths relative to the checkout, so every clone shares the cache.
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1

.PHONY: all deps test-deps build run test unit-test compat-test bench bench-storage bench-breakdown clean

all: build

deps:
	scripts/install-deps.sh build

test-deps:
	scripts/install-deps.sh test

$(BUILD_DIR)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j$(JOBS)

run: build
	$(BUILD_DIR)/bin/sluice server --override log.dirs=./data

unit-test:
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)

compat-test:
	compat-tests/run.sh

test: test-deps build
	$(MAKE) --no-print-directory unit-test
	$(MAKE) --no-print-directory compat-test

# Benchmarks (not tests): Sluice vs Apache Kafka vs librdkafka's mock cluster, ~10 minutes;
# writes bench/RESULTS.md and bench/results.json. BENCH_ARGS=--quick for a harness check.
bench: test-deps build
	bench/run.sh $(BENCH_ARGS)

# Storage-layer micro-benchmarks (Google Benchmark), each next to plain write()/pread()
# in the same run, ~1 minute; writes bench/STORAGE.md.
bench-storage: build
	bench/storage.sh

# Where the time goes in W3 (fetch cycle) and W4 (producer client / broker / consumer client),
# from loopback captures, Sluice next to Kafka, ~2 minutes; writes bench/BREAKDOWN.md. Needs root.
bench-breakdown: test-deps build
	bench/breakdown.sh $(BENCH_ARGS)

clean:
	rm -rf $(BUILD_DIR)
