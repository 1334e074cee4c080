# Two entry points, both of which set everything up first on a fresh machine:
#   make demo   — venv, CPU PyTorch, the package, fonts; then the main job
#   make test   — the same set-up; then the whole test suite (what .ci/run calls)
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: setup demo test fonts browser clean

# Debian fonts for the synthetic data engine (see README "Fonts"). Skipped with a
# notice where apt-get is unavailable; the engine then uses whatever fonts exist.
FONT_PACKAGES := fonts-dejavu-core fonts-dejavu-extra fonts-liberation fonts-liberation2 \
                 fonts-freefont-ttf fonts-roboto-unhinted fonts-urw-base35

fonts:
	@if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  missing=""; for p in $(FONT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then echo "installing fonts:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null; fi; \
	else echo "note: not root or no apt-get; install $(FONT_PACKAGES) by hand for full font variety"; fi

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of PyTorch first and pinned, so nothing later pulls a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

# The web page's extras (Gradio; Playwright, which drives Debian's Chromium: it
# downloads no browser of its own) and Debian's headless Chromium, so the browser
# tests (tests/test_web_server.py) run wherever `make test` runs.
WEB_STAMP := $(VENV)/.web-installed

$(WEB_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install -q -e '.[web,browser-test]'
	touch $(WEB_STAMP)

browser: $(WEB_STAMP)
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then echo "installing chromium"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null; \
	else echo "note: not root or no apt-get; install chromium by hand, or the browser tests are skipped"; fi

setup: fonts $(STAMP) browser

# The demo needs neither the web extras nor Chromium.
demo: fonts $(STAMP)
	$(BIN)/dreamtext demo --out demo_out

test: setup
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo_out .pytest_cache
