# netfleet.overlay — the project's commands.  `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

REPO      := $(abspath .)
VENV      := $(REPO)/.venv
BIN       := $(VENV)/bin
PYTHON    ?= $(shell command -v python3.11 || command -v python3)
COLLROOT  := $(VENV)/collections
# Ansible finds this checkout as netfleet.overlay through a symlink inside the venv (tools/devenv.py makes it).
export ANSIBLE_COLLECTIONS_PATH := $(COLLROOT)
export ANSIBLE_PYTHON_INTERPRETER := $(BIN)/python
export ANSIBLE_LOCALHOST_WARNING := 0
export ANSIBLE_INVENTORY_UNPARSED_WARNING := 0
export PATH := $(BIN):$(PATH)

DEB_PACKAGES := iproute2 iputils-ping util-linux openssh-server openssh-client socat nftables iputils-arping graphviz dnsmasq-base tcpdump podman wireguard-go wireguard-tools iperf3
PYTEST := $(BIN)/pytest -p no:cacheprovider

.PHONY: help venv deps test lint unit kernel sanity compat reliability-doc architecture lab lab-up lab-up-ssh lab-down molecule demo topology bench

HOSTS   ?= 3
LAB_DIR ?= $(REPO)/.lab
LAB     := $(BIN)/python $(REPO)/tools/netfleet-lab

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 16

venv: $(VENV)/.stamp ## create .venv with every Python dependency (a quick no-op when up to date)

$(VENV)/.stamp: requirements/runtime.txt requirements/dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements/dev.txt
	$(BIN)/python $(REPO)/tools/devenv.py
	@touch $@

deps: ## install the Debian packages the tests need, when missing (root)
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

lint: venv ## ruff (lint + format check) and ansible-lint (production profile)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/ansible-lint roles playbooks molecule inventories

unit: venv ## pure unit tests (no root needed)
	$(PYTEST) tests/unit

kernel: venv deps ## kernel tests of every module, in throwaway namespaces (root)
	$(PYTEST) tests/kernel

# Outside the checkout: inside it, ansible-test would list files through this git repo and find none.
# SANITY_BIN picks the ansible-test (and so the ansible-core) to run; compat sets it to an older core's venv.
SANITY_BIN ?= $(BIN)
SANITY_DIR := /tmp/netfleet-overlay-sanity$(subst /,-,$(REPO))$(subst /,-,$(SANITY_BIN))
sanity: venv ## ansible-test sanity on an ansible_collections/netfleet/overlay copy (no ignore files)
	@rm -rf $(SANITY_DIR) && mkdir -p $(SANITY_DIR)/ansible_collections/netfleet/overlay
	@git ls-files -co --exclude-standard | tar -cf - -T - | tar -xf - -C $(SANITY_DIR)/ansible_collections/netfleet/overlay
	@# ansible-test downloads its pip bootstrap script from a server this machine cannot reach: use ours
	@v=$$(sed -nE "s/.*pip='([0-9.]+)'.*/\1/p" $$($(SANITY_BIN)/python -c 'import ansible_test,os;print(os.path.dirname(ansible_test.__file__))')/_internal/python_requirements.py); \
	  install -D -m 0644 tests/sanity/get_pip_bootstrap.py $$HOME/.ansible/test/cache/get_pip_$${v//./_}.py
	cd $(SANITY_DIR)/ansible_collections/netfleet/overlay && $(SANITY_BIN)/ansible-test sanity --python 3.11 --color no
	@rm -rf $(SANITY_DIR)

# meta/runtime.yml promises ansible-core >= 2.17: the unit tests and sanity also run under the oldest releases of
# that range (requirements/core-<version>.txt pins each); the lab, kernel and molecule tests run on runtime.txt's.
CORE_COMPAT := 2.17 2.18
compat: venv ## unit tests and sanity under every other supported ansible-core (CORE_COMPAT), each in .venv-core<ver>
	@for core in $(CORE_COMPAT); do \
	  venv=$(REPO)/.venv-core$$core; \
	  test -x $$venv/bin/python || $(PYTHON) -m venv $$venv || exit 1; \
	  $$venv/bin/python -m pip install -q --disable-pip-version-check -r requirements/core-$$core.txt || exit 1; \
	  echo "== ansible-core $$($$venv/bin/python -c 'import ansible; print(ansible.__version__)'): unit tests"; \
	  $$venv/bin/python -m pytest -p no:cacheprovider -q tests/unit || exit 1; \
	  echo "== ansible-core $$core: sanity"; \
	  $(MAKE) --no-print-directory sanity SANITY_BIN=$$venv/bin || exit 1; \
	done

.PHONY: changelog packaging
changelog: venv ## lint changelogs/fragments and fold them into CHANGELOG.md under galaxy.yml's version
	$(BIN)/antsibull-changelog lint
	$(BIN)/antsibull-changelog release
	$(BIN)/antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml

packaging: venv deps ## build, install and check the tarball: ansible-doc, specs, EE introspection, an AWX-style job (root)
	$(PYTEST) tests/packaging

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

demo: venv deps ## build a 3-host lab in .lab/, run site.yml and verify.yml on it, and leave it up
	$(LAB) up --hosts 3 --dir $(LAB_DIR)
	$(BIN)/ansible-playbook -i $(LAB_DIR)/inventory.yml -i $(REPO)/inventories/lab $(REPO)/playbooks/site.yml
	$(BIN)/ansible-playbook -i $(LAB_DIR)/inventory.yml -i $(REPO)/inventories/lab $(REPO)/playbooks/verify.yml
	@lab="tools/netfleet-lab exec$(if $(filter $(REPO)/.lab,$(LAB_DIR)),, --dir $(LAB_DIR))"; \
	echo; echo "The lab is up ($(LAB_DIR)). Look inside h1 (likewise h2, h3):"; \
	echo "  $$lab h1 -- ip netns list"; \
	echo "  $$lab h1 -- ip netns exec ovl-256 ip -d link show vxlan0"; \
	echo "  $$lab h1 -- ip netns exec ovl-256 bridge fdb show dev vxlan0"; \
	echo "  $$lab h1 -- ip netns exec ovl-256 ip neigh show dev vxlan0"; \
	echo "  $$lab h1 -- ip netns exec hosta ping -c 2 10.213.0.3"; \
	echo "Remove it with: make lab-down$(if $(filter $(REPO)/.lab,$(LAB_DIR)),, LAB_DIR=$(LAB_DIR))"

TOPOLOGY_DIR ?= $(REPO)/build/topology
topology: venv deps ## draw the lab's overlay (after make demo) into TOPOLOGY_DIR: topology.dot, .png and .svg
	@test -f $(LAB_DIR)/inventory.yml || { echo "No lab in $(LAB_DIR): run make demo first." >&2; exit 1; }
	$(BIN)/ansible-playbook -i $(LAB_DIR)/inventory.yml -i $(REPO)/inventories/lab $(REPO)/playbooks/topology.yml \
	  -e topology_dir=$(TOPOLOGY_DIR)

architecture: venv deps ## draw docs/images/architecture.svg from architecture.dot, and README's workloads picture (graphviz)
	dot -Tsvg docs/images/architecture.dot -o docs/images/architecture.svg
	$(BIN)/python tools/workloads_picture.py
	dot -Tsvg docs/images/workloads-topology.dot -o docs/images/workloads-topology.svg

reliability-doc: venv ## write docs/reliability.md from the results of the last lab run (tests/output/reliability)
	$(BIN)/python tools/reliability_doc.py --check

bench: venv deps ## benchmarks (root, < 10 min): print the tables, write docs/performance.md and .png
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements/bench.txt
	cd $(REPO)/tools && $(BIN)/python -m bench

test: venv deps lint ## install everything and run every test: unit, kernel, lab, molecule, lint and sanity
	$(PYTEST) tests
	$(MAKE) --no-print-directory molecule
	$(MAKE) --no-print-directory sanity
	$(MAKE) --no-print-directory compat
