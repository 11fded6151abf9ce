# weft - top-level entry points. `make run` and `make check` work on a fresh
# Debian 12 machine: they install what is missing (apt-get, when root), build,
# and run.
#
#   make run            build (release) and run a weft program (examples/lang/calc.wf: a small interpreter)
#   make demo           the runtime demo in C, with live statistics
#   make check          check the include ladder, then run the test suite in three builds: release, ASan+UBSan, TSan,
#                       then a short pass of each fuzzer (check-fuzz, FUZZ_SECONDS=60 each)
#   make check-layout   only the include ladder (tools/check-includes, docs/layout.md), formatting, and tools/check-sim-leaks
#   make check-sim      the long sweep of the simulation twins: every _sim test with SIM_SEEDS seeds (release; not part of check)
#   make bench          build weft-bench (release); bench/compare runs the comparison
#   make check-valgrind run the suite under Valgrind on the epoll backend (Valgrind does not model io_uring; not part of CI)
#   make check-aarch64  cross-build for aarch64 and run the core suite under qemu (not part of CI)
#   make install        install libweft, headers, weft, pkg-config file (PREFIX=/usr/local)

PREFIX ?= /usr/local
JOBS ?= $(shell nproc)
DEPS = cmake make gcc pkg-config libcmocka-dev valgrind liburing-dev libuv1-dev clang-format clang
CMAKE_COMMON = -DCMAKE_C_FLAGS_RELEASE="-O2 -g -DNDEBUG" -DCMAKE_C_FLAGS_DEBUG="-O1 -g"

.PHONY: all deps build run demo check check-fuzz check-layout check-release check-asan check-tsan check-sim bench check-valgrind check-aarch64 install clean

all: build

deps:
	@missing=""; for p in $(DEPS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "missing Debian packages:$$missing (run as root, or: sudo apt-get install$$missing)"; exit 1; \
		fi; \
	fi

build/release/Makefile: CMakeLists.txt | deps
	cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release $(CMAKE_COMMON) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
build/asan/Makefile: CMakeLists.txt | deps
	cmake -S . -B build/asan -DCMAKE_BUILD_TYPE=Debug $(CMAKE_COMMON) -DWEFT_SANITIZE=address
build/tsan/Makefile: CMakeLists.txt | deps
	cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=Debug $(CMAKE_COMMON) -DWEFT_SANITIZE=thread

build: build/release/Makefile
	cmake --build build/release -j$(JOBS)

run: build
	./build/release/weft run examples/lang/calc.wf

demo: build
	./build/release/weft demo

# Cheap, and first: a layering mistake is reported before the long builds.
check-layout: deps
	sh tools/check-includes
	sh tools/check-format
	sh tools/check-sim-leaks

check-release: build
	cd build/release && ctest --output-on-failure -j1

check-asan: build/asan/Makefile
	cmake --build build/asan -j$(JOBS)
	cd build/asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		ctest --output-on-failure -j1

# A short pass of each libFuzzer target (clang) over its seed corpus, in a
# scratch copy (the corpus in the repo is not changed); FUZZ_SECONDS each.
# The long runs are by hand: build/fuzz/fuzz_compile -max_total_time=3600 DIR.
FUZZ_SECONDS ?= 60
build/fuzz/Makefile: CMakeLists.txt | deps
	CC=clang cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DWEFT_FUZZ=ON -DWEFT_TESTS=OFF

check-fuzz: build/fuzz/Makefile
	cmake --build build/fuzz -j$(JOBS) --target fuzz_parse fuzz_compile
	for t in parse compile; do \
		rm -rf build/fuzz/corpus-$$t && cp -r tests/vm/corpus/$$t build/fuzz/corpus-$$t && \
		build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
			build/fuzz/corpus-$$t >build/fuzz/fuzz_$$t.log 2>&1; rc=$$?; tail -12 build/fuzz/fuzz_$$t.log; \
		[ $$rc = 0 ] || exit 1; \
	done

check-tsan: build/tsan/Makefile
	cmake --build build/tsan -j$(JOBS)
	cd build/tsan && TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 setarch $$(uname -m) -R ctest --output-on-failure -j1

check: check-layout check-release check-asan check-tsan check-fuzz
	@echo "make check: include ladder, formatting, release, ASan+UBSan and TSan suites, short fuzz passes passed"

# The simulation twins (docs/scheduler.md, "Simulation"): make check gives
# each 100 seeds in release (WT_SIM_SEEDS in tests/wt_sim.h, fewer under the
# sanitizers); this sweep gives each SIM_SEEDS. Only the _sim tests
# of the programs that have them run (WT_SIM_ONLY). A failure prints the
# seed and its replay line: WEFT_SIM_SEED=<seed> build/release/<program>.
# The 1000-seed sweep takes about 70 s on an idle machine (76 s of CPU,
# measured; 5-6 minutes of wall time when the machine is busy).
SIM_SEEDS ?= 1000
SIM_TESTS = $(shell grep -l '"wt_sim.h"' tests/*/test_*.c | sed 's|^tests/||; s|\.c$$||' | paste -sd'|')
check-sim: build
	cd build/release && WT_SIM_ONLY=1 WEFT_SIM_SEEDS=$(SIM_SEEDS) ctest --output-on-failure -j1 --timeout 14400 -R '^($(SIM_TESTS))$$'

bench: build
	@echo "built build/release/bench/weft-bench; run bench/compare for ratios to peers"

# WEFT_TEST_VALGRIND tells the tests where Valgrind cannot model something
# (they shrink, wait longer or skip there, saying why). install/ links a
# static program with the compiler: nothing to check under Valgrind.
check-valgrind: build
	cd build/release && WEFT_IO=epoll WEFT_TEST_VALGRIND=1 ctest --output-on-failure -j1 -T memcheck -E '_uring$$|^install/' --overwrite MemoryCheckCommand=/usr/bin/valgrind --overwrite MemoryCheckCommandOptions="--error-exitcode=1 --leak-check=full"

# The aarch64 context switch and the core modules, cross-built and run under
# qemu-user (arm64 libraries from Debian multiarch). Guard-page and overflow
# tests are skipped: qemu ignores MADV_GUARD_INSTALL and handles faults on an
# alternate signal stack its own way; the io tests need io_uring/epoll
# emulation qemu lacks.
AARCH64_DEPS = gcc-aarch64-linux-gnu qemu-user libcmocka-dev:arm64 libuv1-dev:arm64
check-aarch64:
	@if [ "$$(id -u)" = 0 ] && ! dpkg --print-foreign-architectures | grep -qx arm64; then \
		dpkg --add-architecture arm64 && apt-get update -qq; fi
	@$(MAKE) --no-print-directory deps DEPS="$(AARCH64_DEPS)"
	PKG_CONFIG_LIBDIR=/usr/lib/aarch64-linux-gnu/pkgconfig cmake -S . -B build/aarch64 $(CMAKE_COMMON) \
		-DCMAKE_BUILD_TYPE=Release -DCMAKE_SYSTEM_NAME=Linux -DCMAKE_SYSTEM_PROCESSOR=aarch64 \
		-DCMAKE_C_COMPILER=aarch64-linux-gnu-gcc -DCMAKE_ASM_COMPILER=aarch64-linux-gnu-gcc \
		"-DCMAKE_CROSSCOMPILING_EMULATOR=qemu-aarch64;-L;/"
	cmake --build build/aarch64 -j$(JOBS)
	cd build/aarch64 && WEFT_TEST_EMULATED=1 ctest --output-on-failure -j2 -E '^io/|sched/test_overflow'

# The prefix is given at install time: build/release may have been
# configured (with another PREFIX) before, and weft.pc is written by the
# install for the prefix it installs into.
install: build
	cmake --install build/release --prefix "$(PREFIX)"

clean:
	rm -rf build
