# Two commands for a fresh machine: `make train` and `make test`.
# Each creates .venv if missing and re-installs only when pyproject.toml changed.
# JAX_EXTRA=cuda12 make test installs the NVIDIA GPU build of jax instead.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
JAX_EXTRA ?=
COMMA := ,
EXTRAS := dev$(if $(JAX_EXTRA),$(COMMA)$(JAX_EXTRA))
STAMP := $(VENV)/.installed-$(subst $(COMMA),-,$(EXTRAS))
PYTEST_ARGS ?=

.PHONY: install test lint

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	@rm -f $(VENV)/.installed-*
	@touch $@

test: $(STAMP)
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
