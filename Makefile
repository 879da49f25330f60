# One entry point for humans and CI. `make dev` and `make test` create .venv themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 3000

.PHONY: dev test lint cfn-lint bench fakes clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

dev: $(STAMP)
	$(VENV)/bin/llm-gateway serve --port $(PORT)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

cfn-lint: $(STAMP)
	$(VENV)/bin/cfn-lint template.yaml

test: $(STAMP) lint cfn-lint
	$(PY) -m pytest -n 2 tests

bench: $(STAMP)
	$(PY) -m benchmarks

fakes: $(STAMP)
	$(VENV)/bin/llm-gateway fakes --json

clean:
	rm -rf $(VENV) .aws-sam .pytest_cache .ruff_cache
