# The only entry points a newcomer needs. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
T      ?= tests
# htmx, pinned by package-lock.json, copied into the portals' static files (not in git).
HTMX   := src/rempart/portal/static/vendor/htmx.min.js
export REMPART_HOME ?= ./var

.PHONY: help run test lint format bench assets clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

$(HTMX): package.json package-lock.json
	@if command -v npm >/dev/null; then \
	  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
	  && mkdir -p $(@D) && cp node_modules/htmx.org/dist/htmx.min.js $@; \
	else echo "npm not found: the portals run without htmx (every page works without it)"; fi

assets: $(HTMX) ## Fetch the portals' browser assets (htmx, pinned) with npm

run: $(STAMP) $(HTMX) ## Initialise ./var (database, master key, demo data) and serve on http://127.0.0.1:8000
	$(BIN)/rempart init
	$(BIN)/rempart demo-data --if-empty
	$(BIN)/rempart serve

test: $(STAMP) $(HTMX) ## Run the whole suite (T=tests/unit/... for a part)
	$(BIN)/pytest $(T) --cov --cov-report=term:skip-covered -p no:cacheprovider

lint: $(STAMP) ## Check formatting, lint rules and types (ruff, mypy --strict)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

format: $(STAMP) ## Format the code and apply safe lint fixes
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

bench: $(STAMP) ## Run the benchmarks; results go to bench/results/*.json
	$(BIN)/python -m bench

clean: ## Remove the virtual environment and caches (keeps ./var)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage node_modules \
	  src/rempart/portal/static/vendor
