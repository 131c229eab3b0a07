# One command to run, one to test; each makes its own virtual environment.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test check install bench clean web web-test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# The screen (web/): npm ci once per lockfile, a Vite build whenever a source changed.
WEB_STAMP := web/.stamp
WEB_SRC := $(shell find web/src -type f 2>/dev/null) web/index.html web/vite.config.ts web/tsconfig.json

$(WEB_STAMP): web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	touch $(WEB_STAMP)

web/dist/index.html: $(WEB_STAMP) $(WEB_SRC)
	cd web && npm run build

web: web/dist/index.html

web-test: $(WEB_STAMP)
	cd web && npm test

run: $(STAMP) web
	$(BIN)/yujing up

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: check web web-test
	$(BIN)/pytest

bench: $(STAMP) web
	$(BIN)/python bench/engine.py
	$(BIN)/python bench/leak_latency.py --runs 3
	$(BIN)/python bench/readings_copy.py
	$(BIN)/python bench/screen.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache web/node_modules web/dist $(WEB_STAMP)
