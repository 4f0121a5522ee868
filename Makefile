# The two commands of the README:
#   make run    install what is missing, build, and run a single-node broker on
#               127.0.0.1:9092 with data in ./data
#   make test   install what is missing, build, and run every test: unit tests,
#               the compatibility suite, the sanitizer run (test-sanitize) and a
#               short fuzzing run (fuzz-test)
# Hostile input (fuzz/README.md):
#   make test-sanitize  ASan+UBSan build (gcc) in build-asan/: the unit tests, then the
#                       raw-wire bad-input compat tests against the sanitized broker
#   make fuzz           libFuzzer targets (clang) in build-fuzz/, FUZZ_SECONDS each
#   make fuzz-test      the same for FUZZ_TEST_SECONDS each (part of make test)
BUILD_DIR ?= build
JOBS ?= 2
BUILD_TYPE ?= RelWithDebInfo
ASAN_BUILD_DIR ?= build-asan
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_SECONDS ?= 300
FUZZ_TEST_SECONDS ?= 45
# The sanitizers of build-asan/; -O1 keeps ASan's slowdown low and compiles faster than -O2.
SANITIZE_FLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# ccache: hash paths relative to the checkout, so every clone shares the cache;
# the sloppiness lets it cache the compilations that use broker/'s precompiled
# Asio header (42 files, otherwise compiled afresh by every clean build).
export CCACHE_BASEDIR := $(CURDIR)
export CCACHE_NOHASHDIR := 1
export CCACHE_SLOPPINESS := pch_defines,time_macros

.PHONY: cluster all deps test-deps fuzz-deps build build-broker run test unit-test compat-test compat-test-kafka build-sanitize test-sanitize build-fuzz fuzz fuzz-test bench bench-cluster bench-reassign bench-quorum bench-share bench-federation bench-storage bench-breakdown clean

all: build

deps:
	scripts/install-deps.sh build

test-deps:
	scripts/install-deps.sh test

fuzz-deps:
	scripts/install-deps.sh fuzz

# Configured on every build (a second when nothing changed): make run builds
# the broker alone (SLUICE_TESTS=OFF: no test or benchmark libraries needed),
# everything else the whole tree.
build: test-deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DSLUICE_TESTS=ON >/dev/null
	cmake --build $(BUILD_DIR) -j$(JOBS)

build-broker: deps
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DSLUICE_TESTS=OFF >/dev/null
	cmake --build $(BUILD_DIR) -j$(JOBS) --target sluice

run: build-broker
	$(BUILD_DIR)/bin/sluice server --override log.dirs=./data

# A controller and 3 brokers on 127.0.0.1 (BROKERS=n for another count; CONTROLLERS=3 for a
# controller quorum), data in ./cluster-data.
cluster: build-broker
	scripts/dev-cluster.sh $(or $(BROKERS),3) $(or $(CONTROLLERS),1)

unit-test:
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j$(JOBS)

# make test's compatibility run: Sluice's side, and Kafka's only where a test is marked
# kafka_decides (compat-tests/harness/kinds.py). compat-test-kafka runs every test's Kafka side:
# after changing a test, to check that it asks for Kafka's behaviour.
compat-test:
	compat-tests/run.sh --kafka-runs=$${COMPAT_KAFKA_RUNS:-deciding}

compat-test-kafka:
	compat-tests/run.sh --brokers=kafka --kafka-runs=all --kafka-fault-runs

test: test-deps build
	$(MAKE) --no-print-directory unit-test
	$(MAKE) --no-print-directory compat-test
	$(MAKE) --no-print-directory test-sanitize
	$(MAKE) --no-print-directory fuzz-test

# ASan + UBSan (gcc), own build directory: the broker and every *_tests target
# (bench/ and the compat C client are not built there).
$(ASAN_BUILD_DIR)/build.ninja: CMakeLists.txt
	cmake -S . -B $(ASAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_COMPILER=gcc -DCMAKE_CXX_COMPILER=g++ \
	  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=-O1 -g -DNDEBUG" "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g -DNDEBUG" \
	  "-DCMAKE_C_FLAGS=$(SANITIZE_FLAGS)" "-DCMAKE_CXX_FLAGS=$(SANITIZE_FLAGS)" \
	  "-DCMAKE_EXE_LINKER_FLAGS=$(SANITIZE_FLAGS)"

build-sanitize: test-deps $(ASAN_BUILD_DIR)/build.ninja
	cmake --build $(ASAN_BUILD_DIR) -j$(JOBS) --target sluice \
	  $$(cmake --build $(ASAN_BUILD_DIR) --target help | sed -n 's/^\([A-Za-z0-9_]*_tests\): phony$$/\1/p')

# Unit tests, then test_bad_input/test_produce_validation/test_framing/test_hostile_batches
# against the sanitized broker; fails on any sanitizer report (scripts/test-sanitize.sh).
test-sanitize: test-deps build-sanitize
	scripts/test-sanitize.sh $(ASAN_BUILD_DIR)

# libFuzzer targets (clang), own build directory; see fuzz/README.md.
$(FUZZ_BUILD_DIR)/build.ninja: CMakeLists.txt
	cmake -S . -B $(FUZZ_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSLUICE_FUZZ=ON -DSLUICE_TESTS=OFF \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++

build-fuzz: fuzz-deps $(FUZZ_BUILD_DIR)/build.ninja
	cmake --build $(FUZZ_BUILD_DIR) -j$(JOBS) --target fuzz_targets

# Saved regression inputs, then FUZZ_SECONDS of fuzzing per target; a crash
# saves its input under fuzz/regressions/<target>/ and fails.
fuzz: build-fuzz
	fuzz/run.sh -b $(FUZZ_BUILD_DIR) -s $(FUZZ_SECONDS)

fuzz-test: build-fuzz
	fuzz/run.sh -b $(FUZZ_BUILD_DIR) -s $(FUZZ_TEST_SECONDS)

# Benchmarks (not tests): Sluice vs Apache Kafka vs librdkafka's mock cluster, ~10 minutes
# (bench/RESULTS.md, results.json), then three-broker clusters of both, ~10 minutes
# (bench/CLUSTER.md, cluster.json). BENCH_ARGS=--quick for a harness check.
bench: test-deps build
	bench/run.sh $(BENCH_ARGS)

# The three-broker cluster benchmark alone (bench/cluster.py).
bench-cluster: test-deps build
	cmake --build $(BUILD_DIR) --target sluice_loadgen >/dev/null
	bash compat-tests/kafka-ref/fetch.sh >/dev/null
	/usr/bin/python3 bench/cluster.py $(BENCH_ARGS)

# Moving a partition's replica to another broker, unthrottled and throttled, next to Kafka
# (bench/reassign.py, ~3 minutes; writes bench/REASSIGN.md).
bench-reassign: test-deps build
	cmake --build $(BUILD_DIR) --target sluice_loadgen >/dev/null
	bash compat-tests/kafka-ref/fetch.sh >/dev/null
	/usr/bin/python3 bench/reassign.py $(BENCH_ARGS)

# A controller quorum's metadata latency, failover and memory, three controllers and three brokers,
# next to Kafka's KRaft quorum (bench/quorum.py, ~5 minutes; writes bench/QUORUM.md).
bench-quorum: test-deps build
	bash compat-tests/kafka-ref/fetch.sh >/dev/null
	/usr/bin/python3 bench/quorum.py $(BENCH_ARGS)

# Share groups: 1, 3 and 10 share consumers on one partition, records/s acknowledged, next to
# Kafka 4.4.0 (bench/share.py, 2,000,000 records, 3 repetitions, ~10 minutes; writes bench/SHARE.md).
bench-share: test-deps build
	/usr/bin/python3 bench/share.py $(BENCH_ARGS)

# The federation endpoint next to a direct connection: W1/W3 throughput, W4 latency, a split topic
# (bench/federation.py, ~4 minutes; writes bench/FEDERATION.md).
bench-federation: test-deps build
	cmake --build $(BUILD_DIR) --target sluice_loadgen >/dev/null
	/usr/bin/python3 bench/federation.py $(BENCH_ARGS)

# Storage-layer micro-benchmarks (Google Benchmark), each next to plain write()/pread()
# in the same run, ~1 minute; writes bench/STORAGE.md.
bench-storage: build
	bench/storage.sh

# Where the time goes in W3 (fetch cycle) and W4 (producer client / broker / consumer client),
# from loopback captures, Sluice next to Kafka, ~2 minutes; writes bench/BREAKDOWN.md. Needs root.
bench-breakdown: test-deps build
	bench/breakdown.sh $(BENCH_ARGS)

clean:
	rm -rf $(BUILD_DIR) $(ASAN_BUILD_DIR) $(FUZZ_BUILD_DIR)
