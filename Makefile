# The two set-up commands of the README. Both install what they need themselves.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: install demo test

install: $(STAMP)

$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV) $(PYTHON)
	touch $(STAMP)

## make demo: set everything up and train a small potential through the plugin (SQLite profile, no services)
demo: install
	bash scripts/demo.sh

## make test: set everything up and run the full test suite on a real PostgreSQL server
test: install
	bash scripts/test.sh
