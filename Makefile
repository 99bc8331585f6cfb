# Set-up is part of both commands: a fresh clone needs only `make repro` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: repro test bench clean-venv

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The stages call `python`: put the venv first on PATH so they run with the locked packages.
repro: $(STAMP)
	PATH=$(BIN):$$PATH dvc repro

test: $(STAMP)
	PATH=$(BIN):$$PATH python -m pytest -q

bench: $(STAMP)
	PATH=$(BIN):$$PATH python benchmarks/train_speed.py
	PATH=$(BIN):$$PATH python benchmarks/tracking_overhead.py
	PATH=$(BIN):$$PATH python benchmarks/pipeline_time.py

clean-venv:
	rm -rf $(VENV)
