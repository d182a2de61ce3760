# effowt: the two commands of the README.
#   make demo   set up .venv (first time) and track + score the embedded MiniOWT clip
#   make test   set up .venv (first time), lint (ruff) and run the test suite
#   make lint   lint only
#   make quick  lint and the quick suite: every test not marked slow (pytest -m "not slow")
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.effowt-installed
export HF_HUB_OFFLINE := 1
export PYTHONHASHSEED := 0

.PHONY: demo test quick lint venv clean

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests

test: lint
	$(PY) -m pytest -q -n 2 --dist loadfile tests

quick: lint
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not slow" tests

demo: $(STAMP)
	$(VENV)/bin/effowt demo --out demo-output

clean:
	rm -rf demo-output .pytest_cache
