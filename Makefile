# The two commands of the README. Each bootstraps .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint replay schemas bench clean lock compiled pure

# constraints.txt pins every package of the install (direct and transitive), so every
# machine gets the same versions (holiday data included): same input, same output.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	touch $(STAMP)

# The compiled build of the hot core modules (mypyc, listed in setup_compiled.py): a .so next to
# each .py, which Python imports first. OPT-IN: measured ~1.2 x on the fold and no gain on a whole
# replay (docs/benchmarks.md, "Compiled core"), for minutes of build and a stale .so running old
# rules if a source changes without a rebuild; so no target builds it by itself. The plain-Python
# modules are what a user gets and the reference (same outputs, byte for byte; .ci/run tests the
# core on both). `make pure` removes the .so files.
CORE_SOURCES := $(wildcard events/*.py policies/*.py) setup_compiled.py
COMPILED     := build/compiled.stamp

$(COMPILED): $(STAMP) $(CORE_SOURCES)
	@mkdir -p build; if command -v $${CC:-cc} >/dev/null 2>&1; then \
	  echo "compiling the core (mypyc, then the C compiler: a few minutes)"; \
	  $(BIN)/python setup_compiled.py -q build_ext --inplace --force >build/compiled.log 2>&1 \
	    || { cat build/compiled.log >&2; echo "make compiled failed (log above); 'make pure' runs the plain-Python core" >&2; exit 1; }; \
	  ls policies/_compiled__mypyc.*.so >/dev/null 2>&1 || { echo "make compiled wrote no policies/_compiled__mypyc.*.so" >&2; exit 1; }; \
	else \
	  echo "no C compiler ($${CC:-cc}): the core runs as plain Python"; \
	  rm -f events/*.so policies/*.so; \
	fi
	touch $(COMPILED)

compiled: $(COMPILED)

pure:
	rm -f events/*.so policies/*.so $(COMPILED)

# Re-resolve the pins from pyproject.toml in a throwaway venv (after changing a dependency).
lock:
	rm -rf build/lock-venv
	$(PYTHON) -m venv build/lock-venv
	build/lock-venv/bin/python -m pip install -q --upgrade pip
	build/lock-venv/bin/python -m pip install -q -e '.[test]'
	{ echo "# Pins for every package of '.[test]'; made by 'make lock', used by every make target."; \
	  build/lock-venv/bin/python -m pip freeze --exclude-editable; } > constraints.txt
	rm -rf build/lock-venv

# The demo (embedded broker, worker, live outputs); Ctrl-C stops all of it.
# Flags through DEMO_ARGS, e.g. make run DEMO_ARGS="--duration 60".
run: $(STAMP)
	$(BIN)/slaproc demo $(DEMO_ARGS)

replay: $(STAMP)
	$(BIN)/slaproc replay samples/events.jsonl --contracts samples/contracts.yaml --until 2026-05-01T02:00:00Z

# Everything: the static checks first (seconds), then the tests.
test: lint
	$(BIN)/python -m pytest -q -p no:cacheprovider -n 2 --dist worksteal $(PYTEST_ARGS)

# ruff (bug-finding rules, no formatting) on the tree; mypy --strict on events/ and policies/.
# The configuration of both is in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check --quiet .
	$(BIN)/mypy

schemas: $(STAMP)
	$(BIN)/python -m events.schema --write

bench: $(STAMP)
	$(BIN)/python -m bench.replay

clean:
	rm -rf $(VENV) build *.egg-info
	rm -f events/*.so policies/*.so
