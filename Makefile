# reluscope — build, test, demo, bench.   `make help` lists the targets.
CC       := mpicc
OPT      ?= -O3 -march=native
CFLAGS   ?= $(OPT) -std=c11 -Wall -Wextra -Werror -pedantic -D_GNU_SOURCE -g
# `#pragma omp simd` lets GCC vectorize the softmax/LayerNorm/optimizer loops
# (SIMD only: no OpenMP runtime, no threads). -fno-math-errno lets sqrtf
# vectorize: errno is never read here. Neither changes IEEE semantics.
override CFLAGS += -fopenmp-simd -fno-math-errno
GIT_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
CPPFLAGS += -Iinclude -DRELUSCOPE_GIT='"$(GIT_COMMIT)"' 
LDLIBS   := -lscalapack-openmpi -lnetcdf -lopenblas -lz -lm
BUILD    ?= build
BIN      ?= bin

SRC      := $(wildcard src/*.c)
LIB_OBJ  := $(patsubst src/%.c,$(BUILD)/%.o,$(filter-out src/main.c,$(SRC)))
TEST_SRC := $(wildcard tests/test_*.c)
TEST_BIN := $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))

.PHONY: all test test-quick tests check-asan demo corpus report bench deps clean help
all: $(BIN)/reluscope

$(BUILD)/%.o: src/%.c $(wildcard include/*.h) | $(BUILD)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

# attention.c's kernels are written as multiply-adds: let GCC fuse them (FMA).
$(BUILD)/attention.o: override CFLAGS += -ffp-contract=fast

$(BUILD)/libreluscope.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BIN)/reluscope: $(BUILD)/main.o $(BUILD)/libreluscope.a | $(BIN)
	$(CC) $(CFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/tests/%: tests/%.c tests/check.h $(BUILD)/libreluscope.a | $(BUILD)/tests
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $< $(BUILD)/libreluscope.a -o $@ $(LDLIBS)

tests: $(BIN)/reluscope $(TEST_BIN)

$(BUILD) $(BUILD)/tests $(BIN):
	mkdir -p $@

# Every test: C unit tests in one process, then the CLI/MPI scripts.
test: tests
	BUILD=$(BUILD) BIN=$(BIN) bash tests/run.sh

# The day-to-day subset, under a minute: the C unit tests and the fast CLI tests.
test-quick: tests
	QUICK=1 BUILD=$(BUILD) BIN=$(BIN) bash tests/run.sh

# The same tests under AddressSanitizer + UndefinedBehaviorSanitizer.
check-asan:
	$(MAKE) BUILD=build-asan BIN=build-asan/bin \
	  OPT="-O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" test

deps:
	bash scripts/install-deps.sh

demo: all
	bash scripts/demo.sh

corpus: all
	bash scripts/corpus.sh

report:
	bash scripts/report.sh

bench: all
	bash bench/run.sh

clean:
	rm -rf build build-asan bin

help:
	@echo "make            build bin/reluscope"
	@echo "make test       run every test (prints 'N passed, N failed')"
	@echo "make test-quick the C unit tests and the fast CLI tests (under a minute)"
	@echo "make check-asan the tests under ASan/UBSan"
	@echo "make demo       prepare the Brown corpus and run the default sweep"
	@echo "make corpus     only fetch and prepare the Brown corpus (data/brown)"
	@echo "make bench      the benchmark table (SPEC §6)"
	@echo "make deps       install every Debian package the build, tests, demo and bench need (as root)"
