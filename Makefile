# effowt: the two commands of the README.
#   make demo   set up .venv (first time), the Debian packages it reads where it can (root + apt-get:
#               opencv-doc for vtest.avi, tuxpaint-stamps-default + openclipart-png for the cut-out
#               world), then track real footage and track + score a held-out cut-out clip
#   make system-packages   only the Debian packages (the demo skips, in one line, what is missing)
#   make test   set up .venv (first time), lint (ruff) and run the test suite
#   make lint   lint only
#   make quick  lint and the quick suite: every test not marked slow (pytest -m "not slow")
#   make docs   build the docs site into site/ (strict: broken links, missing pages and numbers
#               that differ from their benchmark outputs fail; offline)
#   make screenshot   docs/report-screenshot.png: `make demo`'s report.html in headless Chromium
#               (Debian: `apt-get install chromium`; the browser test in `make test` skips without it)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.effowt-installed
export HF_HUB_OFFLINE := 1
export PYTHONHASHSEED := 0
export NO_MKDOCS_2_WARNING := 1

.PHONY: demo test quick lint docs screenshot venv clean system-packages

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.lock
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests docs/hooks benchmarks/report

test: lint docs
	$(PY) -m pytest -q -n 2 --dist loadfile tests

quick: lint
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not slow" tests

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict --quiet -d site
	@! grep -rIEl '(src|href)="https?://|url\(["'"'"']?https?://' site || \
		{ echo "docs: the built site refers to the network (above)"; exit 1; }

CHROMIUM ?= chromium
screenshot: demo
	$(CHROMIUM) --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,1100 \
		--virtual-time-budget=10000 --screenshot=$(CURDIR)/docs/report-screenshot.png \
		file://$(CURDIR)/demo-output/report.html

DEBIAN_PACKAGES := opencv-doc tuxpaint-stamps-default openclipart-png
system-packages:
	@if dpkg -s $(DEBIAN_PACKAGES) >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages: $(DEBIAN_PACKAGES)"; \
		(apt-get update -qq && apt-get install -y -qq $(DEBIAN_PACKAGES)) >/dev/null 2>&1 || \
		echo "could not install $(DEBIAN_PACKAGES); the demo skips what needs them"; \
	else echo "not root: sudo apt-get install $(DEBIAN_PACKAGES) (the demo skips what needs them)"; fi

demo: $(STAMP) system-packages
	$(VENV)/bin/effowt demo --out demo-output

clean:
	rm -rf demo-output .pytest_cache site
