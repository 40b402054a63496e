# sdfrecon: `make reconstruct` (installs, then reconstructs the embedded sample) and `make test`.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# torch first and pinned: a bare 'torch' resolved with no torch installed pulls a multi-GB
# CUDA build; 2.13.0 is the CPU build this machine keeps on disk.
TORCH  ?= torch==2.13.0

CLOUD  ?= data/sample_ellipsoid.xyz
OUT    ?= out/$(basename $(notdir $(CLOUD))).obj
ARGS   ?=

.PHONY: help install reconstruct fit-image test test-slow lint data samples figures chromium clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'
	@echo "  make reconstruct CLOUD=bunny.xyz [OUT=out/bunny.obj] [ARGS=\"--steps 3000\"]"

install: $(STAMP) ## create .venv with torch, sdfrecon (editable), its dev tools and Ray

$(STAMP): pyproject.toml Makefile
	@$(MAKE) --no-print-directory system-libs
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check '$(TORCH)'
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,ray]'
	@$(BIN)/python -c "import torch, open3d, trimesh, skimage, sdfrecon" \
		|| { echo "install: the packages do not import (see above)" >&2; exit 1; }
	@touch $(STAMP)

# Open3D's wheel links libusb-1.0 (Debian package libusb-1.0-0).
.PHONY: system-libs
system-libs:
	@if ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libusb-1.0.so.0'; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing libusb-1.0-0 (needed by open3d)"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libusb-1.0-0 >/dev/null; \
		else \
			echo "open3d needs the system library libusb-1.0 (Debian/Ubuntu package libusb-1.0-0):" >&2; \
			echo "  sudo apt-get install libusb-1.0-0    then run make install again" >&2; exit 1; \
		fi; \
	fi

# A bare name is looked up here, then in data/, then in ../shared/data/.
CLOUD_PATH = $(firstword $(wildcard $(CLOUD) data/$(CLOUD) ../shared/data/$(CLOUD)))

reconstruct: install ## reconstruct CLOUD (default: the embedded sample) into OUT
	@if [ -z "$(CLOUD_PATH)" ]; then \
		echo "reconstruct: $(CLOUD) not found (looked in ., data/ and ../shared/data/)." >&2; \
		echo "  'make data' downloads the Stanford bunny to data/bunny.xyz" >&2; exit 2; fi
	$(BIN)/sdfrecon reconstruct "$(CLOUD_PATH)" -o "$(OUT)" --overwrite $(ARGS)

fit-image: install ## fit a SIREN to the cameraman (scikit-image's) into out/image
	$(BIN)/sdfrecon fit-image -o out/image --overwrite $(ARGS)

test: install chromium ## run the test suite (slow end-to-end tests excluded)
	$(BIN)/python -m pytest -q

test-slow: install ## run only the slow end-to-end tests (minutes each)
	$(BIN)/python -m pytest -q -m slow

lint: install ## ruff over the package, scripts and tests
	$(BIN)/ruff check sdfrecon scripts tests

data: install ## download the Stanford bunny into data/bunny.xyz
	$(BIN)/python scripts/fetch_data.py --out data

samples: install ## regenerate the small clouds committed in data/
	$(BIN)/python scripts/make_samples.py --out data

# Headless Chromium and its driver for the report.html test (and the report screenshot of
# `make figures`), driven by selenium (a dev dependency) through the system's chromedriver.
# Never fails: without them that test is skipped and says why.
chromium: ## install chromium and chromium-driver (apt-get, when root) for the report.html browser test
	@if command -v chromedriver >/dev/null && { command -v chromium >/dev/null || command -v chromium-browser >/dev/null; }; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver (headless browser for the report.html test)"; \
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } \
			|| echo "chromium: apt-get could not install it; the report.html browser test will be skipped" >&2; \
	else \
		echo "chromium or chromedriver is not installed, so the report.html browser test is skipped;" >&2; \
		echo "  to run it: sudo apt-get install chromium chromium-driver" >&2; \
	fi

figures: install chromium ## redraw docs/figures/ (bunny preview and slices, render, report screenshot)
	$(BIN)/python scripts/make_figures.py

clean: ## remove outputs and caches (keeps .venv)
	rm -rf out .pytest_cache .ruff_cache
