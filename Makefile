# flowfleet: `make run` starts the service on this machine, `make test` runs the suite.
# Each target creates .venv and installs what it needs on a fresh machine, from the lock
# file (requirements/dev.txt; `make lock` regenerates it after a pyproject.toml change).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements/dev.txt
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)

.PHONY: install lock nginx chromium run test test-slow lint fmt migrate bench bench-smoke bench-scale lfx clean

# A lock compiled from another pyproject.toml stops the install here, saying `make lock`.
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) requirements/lock.py --check
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r $(LOCK)
	$(PY) -m pip install --quiet --no-deps --config-settings editable_mode=compat -e .
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

# Re-pin after editing pyproject's dependencies: requirements/dev.txt (every install path
# but Docker) and requirements/main.txt (the image); versions already pinned stay put.
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet 'uv>=0.4,<1'
	$(PY) requirements/lock.py --uv=$(VENV)/bin/uv

run: $(STAMP)
	$(VENV)/bin/flowfleet up

# The cluster test runs nginx from PATH: a fresh Debian machine gets it here when we are root.
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light \
		 || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx); } || \
		echo "nginx is missing: install it (apt-get install nginx-light) for the cluster test"

# The console's browser tests (tests/console) drive Debian's chromium through playwright-core
# (npm ci there, by the tests): a fresh Debian machine gets chromium here when we are root.
chromium:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium); } || \
		echo "chromium is missing: install it (apt-get install chromium) for the console tests"

test: $(STAMP) nginx chromium
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy api worker flows shared flowfleet
	$(VENV)/bin/lint-imports

fmt: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

migrate: $(STAMP)
	$(VENV)/bin/flowfleet migrate

# Benchmarks (docs/throughput.md): starts PostgreSQL/Redis users, llm-sim and each design itself.
# Both flows: Basic Prompting on every design, the agent (3 model + 2 tool calls a run) on
# flowfleet and direct at 64 and 256 clients; RAG (benchmarks/rag.py, docs/rag.md): ingest of
# 1,000 documents, retrieval on a 100,000-chunk `chroma run` collection beside Basic Prompting.
bench: $(STAMP) lfx
	$(PY) -m benchmarks --flows basic,agent,rag

# LangFlow's own executor, the fourth line of `make bench`, in a virtualenv of its own; the
# benchmark skips it (and says so) when it cannot be installed.
LFX_VENV := var/lfx-venv
lfx: $(LFX_VENV)/bin/lfx
$(LFX_VENV)/bin/lfx:
	-$(PYTHON) -m venv $(LFX_VENV) && $(LFX_VENV)/bin/pip install --quiet lfx langchain-openai \
		langchain-anthropic langchain-google-genai

# Scale (issue 17, benchmarks/scale.py): submit, poll, each list filter, a 10,000-turn session's
# history and a Memory run on it, and retention, on a small database and on one loaded with
# 5,000,000 runs and 10,000,000 messages (its own database, flowfleet_scale; minutes to load).
bench-scale: $(STAMP)
	$(PY) -m benchmarks.scale

bench-smoke: $(STAMP)
	$(PY) -m benchmarks --flows basic --levels 4 --duration 2 --designs flowfleet,direct \
		--submit-duration 2 --inflight-runs 20 --inflight-call-s 1 --out var/bench-smoke

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
