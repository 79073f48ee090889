# Verbs: install, train, shell, run, validate, lint, test (+ rules-report, clean).
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
ACTIONS_PORT ?= 5055
RASA_PORT ?= 5005
# Other settings files, e.g. `make run CREDENTIALS=credentials.telegram.yml` (docs/telegram.md).
# endpoints.yml points at the action server on port 5055: change both together.
ENDPOINTS ?= endpoints.yml
CREDENTIALS ?= credentials.yml

.PHONY: help install train shell run actions actions-bg actions-stop validate lint format test test-unit test-stories test-dialogues rules-report clean

help:
	@echo "make install   create .venv (Python 3.10) and install pinned requirements"
	@echo "make train     train the model if data, domain, config or patterns changed"
	@echo "make shell     talk to the assistant in the terminal (DEBUG=1 shows the case)"
	@echo "make run       Rasa server (REST + socketio) and action server on localhost"
	@echo "make test      validate, lint, unit tests, train, conversation tests"
	@echo "make rules-report  each rule, its source, and how many vignettes cover it"

install: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@if [ -z "$(PYTHON310)" ]; then \
	  echo "Python 3.10 is needed (Rasa 3.6 supports no newer). Install it with"; \
	  echo "  pyenv install 3.10.13   (or your system's python3.10 package)"; exit 1; fi
	@[ -x $(BIN)/python ] || $(PYTHON310) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@rm -f $(VENV)/.stamp-*
	@touch $@

train: $(MODEL)

$(MODEL): $(STAMP) $(TRAIN_INPUTS)
	$(RASA) train --fixed-model-name hip-triage --out models
	@touch $@

validate: $(STAMP)
	$(RASA) data validate --fail-on-warnings

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q --ignore=tests/integration

test-dialogues: $(MODEL) widget/node_modules
	$(BIN)/python -m pytest -q tests/integration

test-stories: $(MODEL)
	@mkdir -p results
	$(RASA) test core --model $(MODEL) --stories tests/test_stories.yml \
	  --fail-on-prediction-errors --out results/stories

test: install validate lint test-unit train test-stories test-dialogues

rules-report: $(STAMP)
	$(BIN)/python -m triage.report

actions: $(STAMP)
	$(BIN)/python scripts/action_server.py --port $(ACTIONS_PORT)

actions-bg: $(STAMP)
	@mkdir -p var
	@TRIAGE_DEBUG=$(DEBUG) $(BIN)/python scripts/action_server.py --port $(ACTIONS_PORT) > var/actions.log 2>&1 & echo $$! > var/actions.pid
	@for i in $$(seq 1 60); do curl -sf http://127.0.0.1:$(ACTIONS_PORT)/health >/dev/null && exit 0; sleep 0.5; done; \
	  echo "action server did not start; see var/actions.log"; exit 1

actions-stop:
	@[ -f var/actions.pid ] && kill $$(cat var/actions.pid) 2>/dev/null; rm -f var/actions.pid; true

shell: $(MODEL)
	@mkdir -p var
	@$(MAKE) --no-print-directory actions-bg
	@trap '$(MAKE) --no-print-directory actions-stop' EXIT INT TERM; \
	$(RASA) shell --model $(MODEL) -i 127.0.0.1 --port $(RASA_PORT) --endpoints $(ENDPOINTS)

# The website chat widget: socket.io-client from the lock file (node_modules is git-ignored).
WIDGET_PORT ?= 8080
.PHONY: widget
widget: widget/node_modules

widget/node_modules: widget/package.json widget/package-lock.json
	cd widget && npm ci --no-audit --no-fund
	@touch $@

# Rasa, the action server and the demo clinic page with the chat widget, all on 127.0.0.1.
run: $(MODEL) widget/node_modules
	@mkdir -p var
	@$(MAKE) --no-print-directory actions-bg
	@trap '$(MAKE) --no-print-directory actions-stop; kill $$(cat var/widget.pid 2>/dev/null) 2>/dev/null; rm -f var/widget.pid' EXIT INT TERM; \
	$(BIN)/python widget/serve.py --port $(WIDGET_PORT) --rasa-url "http://127.0.0.1:$(RASA_PORT)" > var/widget.log 2>&1 & echo $$! > var/widget.pid; \
	for i in $$(seq 1 40); do curl -sf -o /dev/null "http://127.0.0.1:$(WIDGET_PORT)/" && break; \
	  if [ $$i = 40 ]; then echo "widget server did not start; see var/widget.log"; exit 1; fi; sleep 0.25; done; \
	echo "Chat in the browser: http://127.0.0.1:$(WIDGET_PORT)/ (ready once Rasa says the server is up)"; \
	$(RASA) run --model $(MODEL) -i 127.0.0.1 --port $(RASA_PORT) \
	  --endpoints $(ENDPOINTS) --credentials $(CREDENTIALS) --cors "http://127.0.0.1:$(WIDGET_PORT)" "http://localhost:$(WIDGET_PORT)"

clean:
	rm -rf models results var/*.log .pytest_cache .ruff_cache

# Scale-out: two Rasa servers behind nginx with PostgreSQL, Redis and one action server,
# all started on loopback by the script and torn down afterwards (docs/deployment.md).
# Needs Debian's postgresql, redis-server and nginx (apt-get install), and the widget.
.PHONY: scale-test validate-deploy
scale-test: $(MODEL) widget/node_modules
	$(BIN)/python -m tests.scale.run

# The deployment files, offline: Kubernetes schemas and policies, compose, nginx.
validate-deploy: $(STAMP)
	$(BIN)/python -m pytest -q tests/test_deploy_config.py

# Benchmark: our config.yml vs Rasa's default config, measured in one run on this
# machine (bench/, docs/benchmarks.md). `bench` takes under 10 minutes on a quiet
# 2-core machine and writes bench/results/latest.{md,png,json}; `bench-smoke` is
# CI's short version (one repeat, 1 and 8 conversations, capped epochs).
# BENCH_ARGS passes options on, e.g. BENCH_ARGS=--variants for bench/variants/*.yml.
.PHONY: bench bench-smoke
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-smoke: $(STAMP)
	$(BIN)/python -m bench.run --smoke $(BENCH_ARGS)

# Erasure and retention (SECURITY.md), for staff: erase one conversation, or everything
# older than DAYS days, in the tracker store of $(ENDPOINTS) (SQLite or PostgreSQL).
# Patients erase their own by typing "delete my data".
.PHONY: forget purge test-reliability
forget: $(STAMP)
	@if [ -z "$$SENDER" ]; then echo "usage: make forget SENDER=<conversation id>"; exit 2; fi
	$(BIN)/python -m scripts.tracker_admin --endpoints $(ENDPOINTS) forget -- "$$SENDER"

purge: $(STAMP)
	@if [ -z "$$DAYS" ]; then echo "usage: make purge DAYS=<days to keep>"; exit 2; fi
	$(BIN)/python -m scripts.tracker_admin --endpoints $(ENDPOINTS) purge "$$DAYS"

# Bad input, property-based, fault-injection, privacy and load tests (SECURITY.md).
test-reliability: $(MODEL)
	$(BIN)/python -m pytest -q -s tests/test_properties.py tests/test_tracker_store.py \
	  tests/integration/test_bad_input.py tests/integration/test_faults.py \
	  tests/integration/test_privacy.py tests/integration/test_load.py
