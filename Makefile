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

.PHONY: install test lint train

TRAIN_CONFIG ?= experiments/configs/portfolio_gru.py
TRAIN_WORKDIR ?= runs/portfolio_gru
TRAIN_ARGS ?=

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"
	@rm -f $(VENV)/.installed-*
	@touch $@

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile --max-worker-restart=0 $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# The default experiment on bundled data; earlier results in the workdir are moved aside, not lost.
train: $(STAMP)
	$(PY) -m experiments.train --config=$(TRAIN_CONFIG) --workdir=$(TRAIN_WORKDIR) --fresh_start $(TRAIN_ARGS)
