# tokenwage: one task runner. `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DEMO_DB ?= sqlite:///$(CURDIR)/.demo/tokenwage.db
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)
# The coding agents tests/test_agents.py drives through the gateway, pinned, from npm.
AGENTS := .agents
CLAUDE_CODE_VERSION := 2.1.197
CODEX_VERSION := 0.169.0
AGENTS_STAMP := $(AGENTS)/.installed-claude-code-$(CLAUDE_CODE_VERSION)-codex-$(CODEX_VERSION)

.PHONY: help install assets agents browser demo test lint typecheck pytest bench docs clean

help: ## Show this help.
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP) assets ## Create .venv and install tokenwage with its dev tools.

# The dashboard's chart library, pinned by assets/package-lock.json, served at /static/vendor/.
ASSETS_STAMP := assets/node_modules/.installed-$(shell cat assets/package-lock.json | sha1sum | cut -c1-12)
$(ASSETS_STAMP): assets/package.json assets/package-lock.json
	@command -v npm >/dev/null || { echo "make assets: npm is required (Node.js 18+)" >&2; exit 1; }
	npm ci --prefix assets --no-audit --no-fund --loglevel=error
	@rm -f assets/node_modules/.installed-* && touch $@

assets: $(ASSETS_STAMP) ## Install the dashboard's chart library (pinned, from npm) into assets/node_modules.
	@:

$(AGENTS_STAMP):
	@command -v npm >/dev/null || { echo "make agents: npm is required (Node.js 18+)" >&2; exit 1; }
	npm install --prefix $(AGENTS) --save-exact --no-audit --no-fund --loglevel=error \
		@anthropic-ai/claude-code@$(CLAUDE_CODE_VERSION) @openai/codex@$(CODEX_VERSION)
	@rm -f $(AGENTS)/.installed-* && touch $@

agents: $(AGENTS_STAMP) ## Install Claude Code and Codex CLI (pinned, from npm) into .agents/.
	@:

# Debian's Chromium for the Playwright browser tests (tests/browser/); no Playwright download.
browser: ## Install Debian's Chromium and a font for the browser tests (apt, once).
	@if [ -x /usr/bin/chromium ]; then echo "chromium: /usr/bin/chromium is installed"; else \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update && \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core; fi

demo: install ## Seed a demo organisation (SQLite, offline) and show balances and a statement.
	$(BIN)/tokenwage --database-url $(DEMO_DB) demo run

lint: install ## ruff lint and format check.
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: install ## mypy --strict.
	$(BIN)/mypy

pytest: install agents browser ## The test suite, on SQLite and PostgreSQL.
	$(BIN)/pytest -n 2 --dist loadgroup

test: lint typecheck pytest ## Everything CI runs: lint, type check, tests.

docs: install ## Regenerate docs/cli.md from the CLI.
	$(BIN)/typer tokenwage.cli.app utils docs --name tokenwage --title "tokenwage CLI reference" --output docs/cli.md

bench: install ## Ledger append benchmark (see docs/benchmarks.md).
	$(BIN)/python -m bench.ledger_append

clean: ## Remove the virtualenv, caches, the demo database and assets/node_modules.
	rm -rf $(VENV) $(AGENTS) .demo .pytest_cache .mypy_cache .ruff_cache .hypothesis assets/node_modules
