# Lancashire Children and Young People's Trust assistant.
# `make run` and `make test` do all the set-up; every step is skipped when it is up to date.

SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
RASA      := $(VENV)/bin/rasa
KNOWLEDGE := knowledge/lancashire.yml
SPACY_DIR := build/spacy_en
MODEL     := models/assistant.tar.gz

# PORT, ACTION_PORT, TRACKER_DB_URL, WIDGET_SECRET, KNOWLEDGE_FILE: see README; bot/server/serve.py fills in defaults.
# Keep TensorFlow quiet.
export TF_CPP_MIN_LOG_LEVEL ?= 2
export SQLALCHEMY_SILENCE_UBER_WARNING ?= 1
export RASA_TELEMETRY_ENABLED := false

TRAINING_INPUTS := config.yml domain.yml $(shell find data -name '*.yml' 2>/dev/null)

.PHONY: help venv spacy safety-model train run shell test lint types validate-knowledge pytest \
        validate-data test-nlu test-stories test-blind export-feedback purge forget bench clean import-services \
        demo-feed ask migrate scale-test server-packages image

help:
	@echo "make run      set up, train if stale, start the action server and Rasa (REST, socketio, widget)"
	@echo "make test     set up, train if stale, run every test"
	@echo "make shell    the staff command-line shell (action server started for you)"
	@echo "make train    retrain if the training data, domain or config changed"
	@echo "make lint     ruff + mypy"
	@echo "make validate-knowledge   check the knowledge file without starting anything"
	@echo "make export-feedback      write every stored feedback view to CSV (OUT=file.csv)"
	@echo "make ask Q=\"...\"          what the assistant says to a question, and why (FILE=questions.txt for a table)"
	@echo "make purge   delete conversations and feedback older than RETENTION_DAYS (default 30; DAYS=N to override)"
	@echo "make forget ID=widget:...  delete one conversation now (an erasure request)"
	@echo "make bench   speed, scale and memory against a stock Rasa bot (QUICK=1 for a short run)"
	@echo "make import-services FROM=<https URL | folder | file>   copy the council's service directory (Open Referral UK)"
	@echo "make demo-feed            serve the fictional test directory on http://127.0.0.1:8765/good (FEED_PORT=...)"
	@echo "make migrate           create or update the database's tables (TRACKER_DB_URL), before replicas start"
	@echo "make scale-test        two replicas behind nginx on PostgreSQL through a crash, a stop and a database restart"
	@echo "                       (CONTAINERS=1: the replicas as the podman images of deploy/Containerfile)"
	@echo "make image             build the container images on a locally made Debian base (podman)"

# ---- environment -------------------------------------------------------------
$(VENV)/.installed: constraints.txt requirements.txt requirements-dev.txt
	@test -x $(PY) || { PY310=$$(./scripts/find_python310.sh) && echo "creating $(VENV) with $$PY310" && "$$PY310" -m venv $(VENV); }
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -r requirements.txt -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

# ---- local spaCy pipeline (nothing is downloaded) ---------------------------
$(SPACY_DIR)/.built: $(VENV)/.installed $(KNOWLEDGE) bot/nlp/spacy_pipeline.py actions/knowledge.py
	$(PY) -m bot.nlp.spacy_pipeline --knowledge $(KNOWLEDGE) --out $(SPACY_DIR)
	@touch $@

spacy: $(SPACY_DIR)/.built

# ---- the safety net's classifier (bot/nlp/safety/classifier.py) ---------------------
SAFETY_MODEL := build/safety_classifier.joblib
$(SAFETY_MODEL): $(VENV)/.installed knowledge/safety_net.yml $(wildcard knowledge/safety_examples/*.yml) $(wildcard data/nlu/*.yml) $(wildcard bot/nlp/safety/*.py)
	$(PY) -m bot.nlp.safety.classifier --out $@

safety-model: $(SAFETY_MODEL)

# ---- model --------------------------------------------------------------------
# The spaCy pipeline is order-only: a knowledge edit rebuilds its entity ruler but needs no retraining.
$(MODEL): $(VENV)/.installed $(TRAINING_INPUTS) $(shell find bot/nlp -name "*.py") | $(SPACY_DIR)/.built $(SAFETY_MODEL)
	$(RASA) train --fixed-model-name assistant --out models
	@touch $@

train: $(MODEL)

# ---- run ------------------------------------------------------------------------
run: $(MODEL)
	@mkdir -p var
	$(PY) -m bot.server.serve

shell: $(MODEL)
	@mkdir -p var
	$(PY) -m bot.server.serve --shell

# The tables of TRACKER_DB_URL (conversations, locks, feedback), made or updated once (bot/storage/migrate.py).
# `make run` does this itself for the default local SQLite file.
migrate: $(VENV)/.installed
	$(PY) -m bot.storage.migrate

validate-knowledge: $(VENV)/.installed
	$(PY) -m actions.knowledge $(KNOWLEDGE_FILE)

# What the assistant says to a question, and why: make ask Q="..." or make ask FILE=questions.txt [OUT=name]
ask: $(MODEL)
	@$(PY) -m scripts.ask $(if $(Q),-q "$(Q)") $(if $(FILE),-f "$(FILE)") $(if $(OUT),--out "$(OUT)")

export-feedback: $(VENV)/.installed
	$(PY) -m actions.feedback_store export $(or $(OUT),feedback.csv)

# The servers also do this when the action server starts and then every hour (bot/privacy/retention.py).
purge: $(VENV)/.installed
	$(PY) -m bot.privacy.retention $(if $(DAYS),--days $(DAYS))

forget: $(VENV)/.installed
	@test -n "$(ID)" || { echo "usage: make forget ID=<conversation id, e.g. widget:AbC...>"; exit 2; }
	$(PY) -m bot.privacy.erase "$(ID)"

# ---- the council's service directory (Open Referral UK; README: "Local services directory") ------
# Exits 1 and leaves the store as it was if any page fails, nothing is valid, or (without FORCE=1) the
# import has fewer than half the services of the last one. SOURCE= names the address answers give.
import-services: $(VENV)/.installed
	@test -n "$(FROM)" || { echo "usage: make import-services FROM=<https URL of an Open Referral UK API | folder | file> [SOURCE=<address>] [FORCE=1]" >&2; exit 2; }
	@mkdir -p var
	$(PY) -m bot.directory.importer "$(FROM)" $(if $(SOURCE),--source-address "$(SOURCE)") $(if $(FORCE),--force)

# The fictional test directory (tests/fixtures/openreferral/), healthy and broken, for a demo.
demo-feed: $(VENV)/.installed
	$(PY) -m tests.openreferral_feed --port $(or $(FEED_PORT),8765)

# ---- checks -----------------------------------------------------------------------
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check actions bot scripts bench tests
	$(VENV)/bin/mypy actions bot scripts bench

validate-data: $(VENV)/.installed
	$(PY) -m scripts.validate_data
	$(PY) -m scripts.check_nlu_overlap data/nlu tests/nlu_test.yml $(wildcard tests/blind/*.yml tests/blind/fresh/*.yml)

# axe-core, injected into the page by the browser tests (from the npm registry, pinned by package-lock.json).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

pytest: $(MODEL) node_modules/.installed server-packages
	$(PY) -m pytest -q -rs

test-nlu: $(MODEL)
	$(PY) -m scripts.nlu_gate --model $(MODEL) --test tests/nlu_test.yml --min-f1 0.95

test-stories: $(MODEL)
	$(RASA) test core --model $(MODEL) --stories tests/test_stories.yml --fail-on-prediction-errors --out results/core --no-plot

# Understanding measured on the blind-written sets (tests/blind/): issue 9's floors, every number printed.
test-blind: $(MODEL)
	$(PY) -m scripts.blind_eval --model $(MODEL)

test: lint validate-knowledge validate-data pytest test-nlu test-stories test-blind
	@echo "make test: all checks passed"

# Speed, scale and memory against a stock `rasa init` bot (see bench/README.md). QUICK=1: under 3 minutes.
bench: $(MODEL)
	$(PY) -m bench.run $(if $(QUICK),--quick)

# PostgreSQL and nginx (the multi-replica tests and the scale test run private copies on loopback ports),
# and podman for the container test, from Debian's packages when missing (as .ci/run does for chromium).
SERVER_PACKAGES_NEEDED := $(if $(wildcard /usr/lib/postgresql/*/bin/pg_ctl),,postgresql) \
                          $(if $(shell command -v nginx || test -x /usr/sbin/nginx && echo y),,nginx-light)
server-packages:
	@if [ -n "$(strip $(SERVER_PACKAGES_NEEDED))" ]; then \
	  if [ "$$(id -u)" = 0 ]; then echo "Installing Debian's $(strip $(SERVER_PACKAGES_NEEDED))..."; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SERVER_PACKAGES_NEEDED) >/dev/null; \
	  else echo "error: install Debian's $(strip $(SERVER_PACKAGES_NEEDED)) (apt-get install $(SERVER_PACKAGES_NEEDED))"; exit 1; fi; \
	fi

# Two replicas behind nginx on one PostgreSQL, under load, through kill -9, SIGTERM and a database restart.
# Prints lost / duplicated / wrong / stalled counts; writes bench/results/scale-*.json and scale-latest.md.
scale-test: $(MODEL) server-packages
	$(PY) -m scripts.scale_test $(if $(CONTAINERS),--containers)

# The container images (deploy/Containerfile), built on a Debian base made here with debootstrap.
image: $(MODEL)
	$(PY) -m scripts.container build

clean:
	rm -rf build models/*.tar.gz results var/*.db
