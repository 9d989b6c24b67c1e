# Set-up and checks on a fresh Debian machine; see README.md.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The baselines live in their own virtualenv: pyinfra pins an older paramiko than oorfix's.
BENCH_VENV ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

.PHONY: test lint typecheck unit demo demo-serve bench clean system-deps

# Debian packages first: on a fresh machine `python3 -m venv` needs python3-venv, and the
# integration tests and the demo run openssh-server as real hosts. Order-only, so the venv is
# not rebuilt every time; the script is a no-op when everything is present.
system-deps:
	@PYTHON='$(PYTHON)' bash scripts/system-deps.sh

$(STAMP): pyproject.toml | system-deps
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# As root (CI), the lab's network-namespace tests must run: a missing capability fails them.
REQUIRE_NETNS := $(shell [ "$$(id -u)" = 0 ] && echo 1 || echo 0)

test: system-deps $(STAMP) lint typecheck
	$(BIN)/oorfix test runbooks/ -q
	OORFIX_REQUIRE_SSHD=1 OORFIX_REQUIRE_BROWSER=1 OORFIX_REQUIRE_ALERTMANAGER=1 OORFIX_REQUIRE_REDIS=1 OORFIX_REQUIRE_NETNS=$(REQUIRE_NETNS) $(BIN)/pytest

unit: $(STAMP)
	$(BIN)/pytest tests/unit

demo: system-deps $(STAMP)
	$(BIN)/python -m oorfix.lab.demo

# The second act: `oorfix serve`, a real Alertmanager, an alert, the fix, the notification.
demo-serve: system-deps $(STAMP)
	$(BIN)/python -m oorfix.lab.demo_serve

# The baselines, pinned, in their own virtualenv; the runtime never imports them.
$(BENCH_STAMP): bench/baselines.txt | system-deps
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet -r bench/baselines.txt
	touch $(BENCH_STAMP)

bench: system-deps $(STAMP) $(BENCH_STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
