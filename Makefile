# xenlab: `make demo` builds the local lab and runs a short migration campaign; `make test` runs every test.
# Both install what they need first (Debian packages as root, Python tools into .venv/).
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV      := .venv
PY        := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# Podman on this machine kind needs runc and cgroupfs (see docs/lab.md).
export CONTAINERS_CONF := $(CURDIR)/tests/containers.conf

# Debian packages the controller needs: QEMU/mmdebstrap for the lab, podman for Molecule,
# tshark/sipp for the RTP fixtures and benchmarks. Xen, Asterisk, Postfix never go here.
HOST_PACKAGES := python3-venv python3-dev gcc make git qemu-system-x86 qemu-utils mmdebstrap \
	podman runc uidmap e2fsprogs iproute2 iptables socat tshark sip-tester openssh-client \
	arch-test cpio zstd patch iputils-ping

.PHONY: help deps host-deps venv test unit lint sanity molecule lab-test demo \
	lab-up lab-down lab-status bench-rtp bench-policy report clean

help:
	@echo "make demo      build the local lab, run a short migration campaign, show its report"
	@echo "make test      install what is needed and run every test (unit, lint, sanity, molecule, lab)"
	@echo "make lab-up | lab-down | lab-status   manage the local QEMU lab"
	@echo "make bench-rtp | bench-policy          benchmarks"
	@echo "make report [RESULTS=dir]              report.md + plots of a results directory (default: newest)"

deps: host-deps venv

host-deps:
	@scripts/install-host-deps $(HOST_PACKAGES)

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	@# ansible-test sanity runs with --local from its own venv: its pinned linters (pylint,
	@# yamllint, voluptuous) would clash with ansible-lint's in the main one.
	@test -x $(VENV)/sanity/bin/python || python3 -m venv $(VENV)/sanity
	$(VENV)/sanity/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/sanity/bin/python -m pip install --quiet $$(grep '^ansible-core==' requirements.txt) \
		$$(for f in $(VENV)/lib/python3*/site-packages/ansible_test/_data/requirements/sanity.*.txt; do echo -r $$f; done)
	@touch $@

test: deps
	scripts/run-tests all

unit: venv
	scripts/run-tests unit

lint: venv
	scripts/run-tests lint

sanity: venv
	scripts/run-tests sanity

molecule: deps
	scripts/run-tests molecule

lab-test: deps
	scripts/run-tests lab

demo: deps
	scripts/demo

lab-up: deps
	ansible-playbook -i inventories/lab playbooks/lab.yml

lab-down: venv
	ansible-playbook -i inventories/lab playbooks/lab.yml -e lab_state=absent

lab-status: venv
	ansible-playbook -i inventories/lab playbooks/lab.yml -e lab_state=status

bench-rtp: deps
	$(PY) benchmarks/bench_rtp.py

bench-policy: deps
	$(PY) benchmarks/bench_policy.py

report: venv
	$(PY) scripts/report $(RESULTS)

clean:
	rm -rf .build tests/output
