# The two commands of the README. Each bootstraps .venv on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test replay schemas bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

# The demo (embedded broker, worker, live outputs); Ctrl-C stops all of it.
# Flags through DEMO_ARGS, e.g. make run DEMO_ARGS="--duration 60".
run: $(STAMP)
	$(BIN)/slaproc demo $(DEMO_ARGS)

replay: $(STAMP)
	$(BIN)/slaproc replay samples/events.jsonl --contracts samples/contracts.yaml --until 2026-05-01T02:00:00Z

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

schemas: $(STAMP)
	$(BIN)/python -m events.schema --write

bench: $(STAMP)
	$(BIN)/python -m bench.replay

clean:
	rm -rf $(VENV) build *.egg-info
