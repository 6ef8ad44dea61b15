# probe: two commands on a fresh machine.
#   make demo   set everything up, then probe a real local model end to end (no key, no network)
#   make test   set everything up, then run the test suite
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.probe-installed

.PHONY: install demo test lint bench clean browser-deps classifier

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# torch first (the CPU wheel), or pip pulls gigabytes of CUDA packages for sentence-transformers.
# llama-cpp-python builds from source the first time (about five minutes on 2 cores).
$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev,static,local]'
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the browser test of the HTML report (root only; skipped otherwise).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver fonts-noto-cjk >/dev/null) \
	  || echo "chromium not installed: the browser test will be skipped"; }

demo: $(STAMP)
	$(VENV)/bin/probe demo

test: $(STAMP) browser-deps
	$(VENV)/bin/ruff check probe tests benchmarks scripts
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check probe tests benchmarks scripts
	$(VENV)/bin/ruff format --check probe tests benchmarks scripts

bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) build dist *.egg-info

# The shipped classifier: retrain it exactly as it was trained (see docs/classifier.md).
# English-language authored replies stay in the corpus but out of the head's training set.
# Real model replies carry 30% of the training weight (probe train --real-share).
# The head is the default one-hidden-layer network (probe train --head mlp).
CLASSIFIER_DATA := $(sort $(wildcard corpus/*.jsonl))
classifier: $(STAMP)
	$(VENV)/bin/probe train $(addprefix --data ,$(CLASSIFIER_DATA)) --exclude-lang en \
	  --real-share 0.3 --out probe/data/classifier
