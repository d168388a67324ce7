# pykubelet: `make run` starts a standalone node with the example pods; `make test` runs everything.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUN_DIR ?= $(CURDIR)/run

.PHONY: run test lint typecheck unit system-deps venv bench clean upstream-k8s

$(STAMP): pyproject.toml setup.py pykubelet/runtime/process/native/pkshim.c
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { echo "python3-venv missing: run scripts/install-system-deps.sh" >&2; exit 1; }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@# devtools/ (test images, firewall clean-up) is importable in the dev venv, never shipped
	$(BIN)/python -c 'import site, sys; open(site.getsitepackages()[0] + "/pykubelet-devtools.pth", "w").write(sys.argv[1] + "\n")' "$(CURDIR)"
	@touch $(STAMP)

venv: $(STAMP)

system-deps:
	@bash scripts/install-system-deps.sh

run: venv
	@bash scripts/run-standalone.sh "$(RUN_DIR)"

lint: venv
	$(BIN)/ruff check pykubelet devtools tests bench setup.py
	$(BIN)/ruff format --check pykubelet devtools tests bench setup.py

typecheck: venv
	$(BIN)/mypy

unit: venv
	$(BIN)/pytest -q $(PYTEST_ARGS)

upstream-k8s:
	@bash scripts/upstream-k8s.sh

test: system-deps venv lint typecheck upstream-k8s
	@bash scripts/js-deps.sh
	@bash scripts/kube-hunter.sh
	$(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS)

bench: venv
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
