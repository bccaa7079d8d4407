# tinyroute: the two commands of the quick start, and a few helpers.
#   make demo   offline end-to-end demo (generated models, real llama-server as the large model)
#   make test   the whole test suite, with ASan + UBSan (debug) and optimised (release)
#   make bench  benchmarks (never part of make test); figures go to BENCHMARKS.md
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps-check debug release demo test test-debug test-release bench deps node-deps format clean

all: release

deps:
	bash scripts/install-deps.sh

# Installs Debian packages only when some are missing (a fresh machine); a no-op afterwards.
deps-check:
	@bash scripts/install-deps.sh --if-missing

node-deps:
	@if [ ! -d tests/gateway/node/node_modules ]; then cd tests/gateway/node && npm ci --no-audit --no-fund; fi

debug: deps-check
	cmake --preset debug
	cmake --build --preset debug -j $(JOBS)

release: deps-check
	cmake --preset release
	cmake --build --preset release -j $(JOBS)

demo: release
	bash scripts/demo.sh build/release

test-debug: debug node-deps
	ctest --preset debug

test-release: release node-deps
	ctest --preset release

test: test-debug test-release

bench: deps-check
	bash bench/run.sh

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf build
