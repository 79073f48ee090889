# Verbs: install, train, shell, run, validate, lint, test; `make help` lists them all.
# Each verb wraps a plain Rasa command that also works without make (README).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Health data: Rasa telemetry off in every target; no TensorFlow chatter.
export RASA_TELEMETRY_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export SQLALCHEMY_SILENCE_UBER_WARNING := 1
export PYTHONDONTWRITEBYTECODE := 1

VENV := .venv
BIN := $(VENV)/bin
RASA := $(BIN)/rasa
PYENV_PY := $(shell command -v pyenv >/dev/null 2>&1 && echo "$$(pyenv root)/versions/3.10.13/bin/python")
PYTHON310 := $(shell if [ -x "$(PYENV_PY)" ]; then echo "$(PYENV_PY)"; \
	elif command -v python3.10 >/dev/null 2>&1; then command -v python3.10; fi)
REQ_HASH := $(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)
STAMP := $(VENV)/.stamp-$(REQ_HASH)
MODEL := models/hip-triage.tar.gz
TRAIN_INPUTS := config.yml domain.yml $(shell find data components -type f \( -name '*.yml' -o -name '*.jsonl' -o -name '*.py' \) 2>/dev/null) triage/rulebook.yml triage/contract.py
RASA_PORT ?= 5005
# Other settings files, e.g. `make run CREDENTIALS=credentials.telegram.yml` (docs/telegram.md).
ENDPOINTS ?= endpoints.yml
CREDENTIALS ?= credentials.yml
# The action server's port is the one the endpoints file names: change it there only.
ACTIONS_PORT := $(shell sed -n 's|^ *url: *"*http://127\.0\.0\.1:\([0-9]*\)/webhook.*|\1|p' $(ENDPOINTS) | head -n 1)
ACTIONS_PORT := $(if $(ACTIONS_PORT),$(ACTIONS_PORT),5055)

.PHONY: help install train shell run actions actions-bg actions-stop validate lint format test test-unit test-stories test-dialogues test-static rules-report clean

help: ## this list
	@awk 'BEGIN {FS = ":.*## "} /^[a-z][a-z-]*:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "  Options: DEBUG=1 (shell), RASA_PORT=5005, WIDGET_PORT=8080, ENDPOINTS=..., CREDENTIALS=..."

install: $(STAMP) ## create .venv (Python 3.10) with the pinned requirements

$(STAMP): requirements.txt requirements-dev.txt
	@if [ -z "$(PYTHON310)" ]; then \
	  echo "Python 3.10 is needed (Rasa 3.6 supports no newer). Install it with"; \
	  echo "  pyenv install 3.10.13   (or your system's python3.10 package)"; exit 1; fi
	@[ -x $(BIN)/python ] || $(PYTHON310) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.stamp-*
	@touch $@

train: $(MODEL) ## rasa train, if data, domain, config, patterns or rulebook changed

$(MODEL): $(STAMP) $(TRAIN_INPUTS)
	$(RASA) train --fixed-model-name hip-triage --out models
	@touch $@

validate: $(STAMP) ## rasa data validate --fail-on-warnings
	$(RASA) data validate --fail-on-warnings

lint: $(STAMP) ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP) ## ruff format and fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-static: validate lint ## validate and lint

test-unit: $(STAMP) ## pytest without servers: engine, extractor, interview, actions, ...
	$(BIN)/python -m pytest -q --ignore=tests/integration

# Two groups at once (tests/integration/conftest.py): the tests of the shared app, and
# those that start, break or kill servers of their own.
test-dialogues: $(MODEL) widget/node_modules ## integration tests against real servers
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup tests/integration

test-stories: $(MODEL) ## rasa test core on tests/test_stories.yml, failing on any error
	@mkdir -p results
	$(RASA) test core --model $(MODEL) --stories tests/test_stories.yml \
	  --fail-on-prediction-errors --out results/stories

# Static checks and unit tests run while the model trains (2 cores), then the
# conversation and integration tests use that one model.
test: install ## everything: validate, lint, unit, train, conversation and integration tests
	@$(MAKE) --no-print-directory -j2 --output-sync=target test-static test-unit train
	@$(MAKE) --no-print-directory test-stories test-dialogues

# The real-language corpus (tests/corpus): the dev part and the held-out test part,
# through the real servers. A benchmark: it reports, asserts nothing.
.PHONY: eval-real
eval-real: $(MODEL) ## field F1, red-flag recall, false alarms on real women's words
	$(BIN)/python -m bench.real_eval --part both

rules-report: $(STAMP) ## each rule, its source, and how many vignettes cover it
	$(BIN)/python -m triage.report

actions: $(STAMP) ## the action server alone (loopback), in the foreground
	$(BIN)/python scripts/action_server.py --port $(ACTIONS_PORT)

actions-bg: $(STAMP)
	@mkdir -p var
	@TRIAGE_DEBUG=$(DEBUG) $(BIN)/python scripts/action_server.py --port $(ACTIONS_PORT) > var/actions.log 2>&1 & echo $$! > var/actions.pid
	@for i in $$(seq 1 60); do curl -sf http://127.0.0.1:$(ACTIONS_PORT)/health >/dev/null && exit 0; sleep 0.5; done; \
	  echo "action server did not start; see var/actions.log"; exit 1

actions-stop:
	@[ -f var/actions.pid ] && kill $$(cat var/actions.pid) 2>/dev/null; rm -f var/actions.pid; true

shell: $(MODEL) ## rasa shell with the action server (DEBUG=1: case, intent, rule)
	@mkdir -p var
	@$(MAKE) --no-print-directory actions-bg
	@echo "Starting the assistant (about 15 s); Rasa's start-up logs go to var/shell.log."
	@trap '$(MAKE) --no-print-directory actions-stop' EXIT INT TERM; \
	PYTHONWARNINGS=ignore $(RASA) shell --model $(MODEL) -i 127.0.0.1 --port $(RASA_PORT) \
	  --endpoints $(ENDPOINTS) 2>> var/shell.log \
	  || { status=$$?; echo "rasa shell stopped ($$status); the end of var/shell.log:"; \
	       tail -n 5 var/shell.log; exit $$status; }

# The website chat widget: socket.io-client from the lock file (node_modules is git-ignored).
WIDGET_PORT ?= 8080
.PHONY: widget
widget: widget/node_modules ## npm ci for the website widget's socket.io client

widget/node_modules: widget/package.json widget/package-lock.json
	cd widget && npm ci --no-audit --no-fund
	@touch $@

# Rasa, the action server and the demo clinic page with the chat widget, all on 127.0.0.1.
run: $(MODEL) widget/node_modules ## rasa run, the action server and the demo page, on 127.0.0.1
	@mkdir -p var
	@$(MAKE) --no-print-directory actions-bg
	@trap '$(MAKE) --no-print-directory actions-stop; kill $$(cat var/widget.pid 2>/dev/null) 2>/dev/null; rm -f var/widget.pid' EXIT INT TERM; \
	$(BIN)/python widget/serve.py --port $(WIDGET_PORT) --rasa-url "http://127.0.0.1:$(RASA_PORT)" > var/widget.log 2>&1 & echo $$! > var/widget.pid; \
	for i in $$(seq 1 40); do curl -sf -o /dev/null "http://127.0.0.1:$(WIDGET_PORT)/" && break; \
	  if [ $$i = 40 ]; then echo "widget server did not start; see var/widget.log"; exit 1; fi; sleep 0.25; done; \
	echo "Starting Rasa (about 15 s); its logs go to var/rasa.log."; \
	WEB_ORIGINS="$${WEB_ORIGINS:-http://127.0.0.1:$(WIDGET_PORT) http://localhost:$(WIDGET_PORT)}" \
	PYTHONWARNINGS=ignore $(RASA) run --model $(MODEL) -i 127.0.0.1 --port $(RASA_PORT) \
	  --endpoints $(ENDPOINTS) --credentials $(CREDENTIALS) \
	  --cors "http://127.0.0.1:$(WIDGET_PORT)" "http://localhost:$(WIDGET_PORT)" >> var/rasa.log 2>&1 & rasa=$$!; \
	trap 'kill $$rasa 2>/dev/null; $(MAKE) --no-print-directory actions-stop; kill $$(cat var/widget.pid 2>/dev/null) 2>/dev/null; rm -f var/widget.pid' EXIT INT TERM; \
	until curl -sf -o /dev/null "http://127.0.0.1:$(RASA_PORT)/webhooks/health/"; do \
	  kill -0 $$rasa 2>/dev/null || { echo "Rasa stopped; the end of var/rasa.log:"; tail -n 5 var/rasa.log; exit 1; }; \
	  sleep 0.5; done; \
	echo "Ready. Chat in the browser: http://127.0.0.1:$(WIDGET_PORT)/ (Ctrl-C stops it all)"; \
	wait $$rasa

clean: ## remove models, results and logs
	rm -rf models results var/*.log .pytest_cache .ruff_cache

# Scale-out: two Rasa servers behind nginx with PostgreSQL, Redis and one action server,
# all started on loopback by the script and torn down afterwards (docs/deployment.md).
# Needs Debian's postgresql, redis-server and nginx (apt-get install), and the widget.
.PHONY: scale-test validate-deploy
scale-test: $(MODEL) widget/node_modules ## 2 Rasa servers, nginx, PostgreSQL, Redis; one killed
	$(BIN)/python -m tests.scale.run

# The deployment files, offline: Kubernetes schemas and policies, compose, nginx.
validate-deploy: $(STAMP) ## the deployment files, offline
	$(BIN)/python -m pytest -q tests/test_deploy_config.py

# Benchmark: our config.yml vs Rasa's default config, measured in one run on this
# machine (bench/, docs/benchmarks.md). `bench` takes under 10 minutes on a quiet
# 2-core machine and writes bench/results/latest.{md,png,json}; `bench-smoke` is
# CI's short version (one repeat, 1 and 8 conversations, capped epochs).
# BENCH_ARGS passes options on, e.g. BENCH_ARGS=--variants for bench/variants/*.yml.
.PHONY: bench bench-smoke
bench: $(STAMP) ## the benchmark, ours vs Rasa's default (under 10 minutes)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-smoke: $(STAMP) ## the benchmark's harness, one short repeat (CI)
	$(BIN)/python -m bench.run --smoke $(BENCH_ARGS)

# Erasure and retention (SECURITY.md), for staff: erase one conversation, or everything
# older than DAYS days, in the tracker store of $(ENDPOINTS) (SQLite or PostgreSQL).
# Patients erase their own by typing "delete my data".
.PHONY: forget purge test-reliability
forget: $(STAMP) ## erase one conversation: SENDER=<conversation id>
	@if [ -z "$$SENDER" ]; then echo "usage: make forget SENDER=<conversation id>"; exit 2; fi
	$(BIN)/python -m scripts.tracker_admin --endpoints $(ENDPOINTS) forget -- "$$SENDER"

purge: $(STAMP) ## erase what is older than DAYS=<days to keep>
	@if [ -z "$$DAYS" ]; then echo "usage: make purge DAYS=<days to keep>"; exit 2; fi
	$(BIN)/python -m scripts.tracker_admin --endpoints $(ENDPOINTS) purge "$$DAYS"

# Bad input, property-based, fault-injection, privacy and load tests (SECURITY.md).
test-reliability: $(MODEL) ## bad input, property, fault, privacy and load tests
	$(BIN)/python -m pytest -q -s tests/test_properties.py tests/test_tracker_store.py \
	  tests/integration/test_bad_input.py tests/integration/test_faults.py \
	  tests/integration/test_privacy.py tests/integration/test_load.py
