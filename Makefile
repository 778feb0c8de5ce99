# netfleet.overlay — the project's commands.  `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

REPO      := $(abspath .)
VENV      := $(REPO)/.venv
BIN       := $(VENV)/bin
PYTHON    ?= $(shell command -v python3.11 || command -v python3)
COLLROOT  := $(VENV)/collections
# Ansible finds this checkout as netfleet.overlay through a symlink inside the venv.
export ANSIBLE_COLLECTIONS_PATH := $(COLLROOT)
export ANSIBLE_PYTHON_INTERPRETER := $(BIN)/python
export ANSIBLE_LOCALHOST_WARNING := 0
export ANSIBLE_INVENTORY_UNPARSED_WARNING := 0
export PATH := $(BIN):$(PATH)

DEB_PACKAGES := iproute2 iputils-ping util-linux openssh-server openssh-client
PYTEST := $(BIN)/pytest -p no:cacheprovider

.PHONY: help venv deps test lint unit integration lab lab-up lab-up-ssh lab-down molecule demo

HOSTS   ?= 3
LAB_DIR ?= $(REPO)/.lab
LAB     := $(BIN)/python $(REPO)/tools/netfleet-lab

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

venv: $(VENV)/.stamp ## create .venv with every Python dependency (a quick no-op when up to date)

$(VENV)/.stamp: requirements/runtime.txt requirements/dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements/dev.txt
	@mkdir -p $(COLLROOT)/ansible_collections/netfleet
	@ln -sfn ../../../.. $(COLLROOT)/ansible_collections/netfleet/overlay
	@touch $@

deps: ## install the Debian packages the tests need, when missing (root)
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

lint: venv ## ruff (lint + format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

unit: venv ## pure unit tests (no root needed)
	$(PYTEST) tests/unit

integration: venv deps ## kernel integration tests of every module, in throwaway namespaces (root)
	$(PYTEST) tests/integration

lab: venv deps ## tests of the lab and the nsenter connection (root)
	$(PYTEST) tests/lab

lab-up: venv deps ## build a lab of HOSTS simulated hosts in LAB_DIR (default 3 in .lab/)
	$(LAB) up --hosts $(HOSTS) --dir $(LAB_DIR)

lab-up-ssh: venv deps ## the same with sshd in every host and a controller namespace ctl
	$(LAB) up --hosts $(HOSTS) --ssh --dir $(LAB_DIR)

lab-down: ## remove the lab in LAB_DIR
	$(LAB) down --dir $(LAB_DIR)

molecule: venv deps ## molecule scenarios default (nsenter) and ssh, on the lab
	cd $(REPO) && $(BIN)/molecule test --all

test: venv deps lint ## install everything and run every test
	$(PYTEST) tests
