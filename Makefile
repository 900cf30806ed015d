# The README's commands. Each target sets itself up: a venv, the Python packages, an OpenCL
# driver when none works (Debian's pocl-opencl-icd, needs root + apt-get) and, for the tests,
# Debian's chromium for the browser smoke tests.
#
#   make dashboard   serve the dashboard on http://127.0.0.1:5006
#   make test        unit tests, notebooks under nbval, browser smoke tests
#   make lab         JupyterLab on notebooks/
#   make bench       every benchmark suite, table on screen, JSON in out/bench.json
#   make test-gpu    the correctness suite (no browser) on a GPU machine that already has
#                    pyopencl and the vendor's OpenCL driver (see shared/gpu/README.md); no venv

SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_GET := DEBIAN_FRONTEND=noninteractive apt-get -y -qq -o Dpkg::Use-Pty=0
CAN_APT := [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null

.PHONY: dashboard test test-gpu lab bench setup opencl chromium clean

dashboard: setup
	$(VENV)/bin/workbench dashboard

test: setup chromium
	$(VENV)/bin/ruff check workbench dashboards tests
	WORKBENCH_QUICK=1 $(PY) -m pytest -q -p no:cacheprovider tests notebooks \
	    --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg

# On the GPU machine: the python3 there (pyopencl from carried wheels), every test that needs no
# browser, and the notebooks when nbval is importable; it fails when no OpenCL GPU is found.
test-gpu:
	WORKBENCH_QUICK=1 WORKBENCH_REQUIRE_GPU=1 $(PYTHON) -m pytest -q -p no:cacheprovider -m 'not browser and not bench' \
	    tests $$($(PYTHON) -c 'import nbval' 2>/dev/null && echo notebooks --nbval --nbval-current-env \
	    --nbval-sanitize-with notebooks/sanitize.cfg)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

bench: setup
	mkdir -p out && $(VENV)/bin/workbench bench --json out/bench.json

setup: $(STAMP) opencl

$(STAMP): pyproject.toml
	@$(PYTHON) -m venv $(VENV) || { $(CAN_APT) && $(APT_GET) install python3-venv >/dev/null \
	    && $(PYTHON) -m venv $(VENV); }
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,lab]'
	@touch $@

# An OpenCL platform that pyopencl can open, else Debian's PoCL, else the NumPy backend.
opencl: $(STAMP)
	@if $(PY) -c 'import pyopencl as cl; cl.get_platforms()[0].get_devices()' 2>/dev/null; then \
	    :; \
	elif $(CAN_APT); then \
	    echo "No OpenCL driver found: installing Debian's pocl-opencl-icd (CPU OpenCL)"; \
	    (apt-get update -qq || true) && $(APT_GET) install pocl-opencl-icd >/dev/null; \
	else \
	    echo "No OpenCL driver found, and installing one needs root and apt-get."; \
	    echo "Install your GPU vendor's OpenCL driver, or on Debian/Ubuntu:"; \
	    echo "    sudo apt-get install pocl-opencl-icd"; \
	    echo "Until then the workbench runs on its NumPy backend."; \
	fi

# Debian's chromium for the Playwright tests (Playwright's own browser download cannot work here).
chromium:
	@if [ -x /usr/bin/chromium ]; then \
	    :; \
	elif $(CAN_APT); then \
	    echo "Installing Debian's chromium for the browser smoke tests"; \
	    (apt-get update -qq || true) && $(APT_GET) install chromium >/dev/null; \
	else \
	    echo "No /usr/bin/chromium and no root + apt-get to install it: browser tests will skip."; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache out *.egg-info
