# Two commands do all set-up on a fresh machine:
#   make demo   create .venv (torch pinned to the CPU wheel), then run a simulated campaign
#   make test   same set-up, then the whole test suite (what CI runs)
# and, for the edit-test loop:
#   make check  same set-up, then the tests not marked slow (no Prefect server, browser, benchmark campaign
#               or process per probe): pytest -m "not slow"
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test check bench clean

$(STAMP): pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/nanoloop demo

test: $(STAMP)
	@# the dashboard's browser test drives Debian's chromium (never a browser that Playwright downloads)
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	$(PY) -m pytest -q

check: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) nanoloop-demo
