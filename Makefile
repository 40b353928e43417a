# The two README commands:
#   make demo   set everything up, run the sample session end to end, serve the UI
#   make test   set everything up and pass the whole test suite (.ci/run calls this)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install system tools models-default models-test browser check bench sbom clean

demo: install system models-default
	$(BIN)/scribe policies check
	$(BIN)/scribe demo

test: install system tools models-test browser
	$(BIN)/scribe policies check
	$(BIN)/python -m pytest -q

$(STAMP): pyproject.toml requirements.lock requirements-nodeps.lock
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "scribe needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip setuptools wheel
	# The local CPU build of PyTorch first, or pip pulls gigabytes of CUDA packages.
	$(BIN)/pip install -q torch==2.13.0
	# Exactly the locked set, each file checked against its sha256, then scribe itself.
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps --require-hashes -r requirements-nodeps.lock
	$(BIN)/pip install -q --no-deps -e '.[engines,test]'
	touch $(STAMP)

install: $(STAMP)

# The security scanners (S16 static analysis, S17 against a loopback instance), each set in its
# own virtualenv under .venv/tools: kept out of the app's environment and its SBOM.
TOOLS := $(VENV)/tools
$(TOOLS)/%/.installed: tests/security/%.lock
	$(PYTHON) -m venv $(TOOLS)/$*
	$(TOOLS)/$*/bin/pip install -q --upgrade pip
	$(TOOLS)/$*/bin/pip install -q --require-hashes -r $<
	touch $@

# The style tools (ruff, mypy) likewise, from tests/style/lint.lock.
$(TOOLS)/%/.installed: tests/style/%.lock
	$(PYTHON) -m venv $(TOOLS)/$*
	$(TOOLS)/$*/bin/pip install -q --upgrade pip
	$(TOOLS)/$*/bin/pip install -q --require-hashes -r $<
	touch $@

tools: $(TOOLS)/sast/.installed $(TOOLS)/dast/.installed $(TOOLS)/lint/.installed

# A CycloneDX bill of materials of the app's virtualenv (what a clinic server runs).
sbom: install tools
	$(TOOLS)/sast/bin/cyclonedx-py environment --of JSON -o var/sbom.cdx.json $(BIN)/python

models-default: install
	$(BIN)/scribe models install --profile default

models-test: install
	$(BIN)/scribe models install --profile test

# Debian's libraries WeasyPrint renders PDFs with (Pango), pdftotext, which the tests read
# exported PDFs back with (poppler-utils), and socat and ip, with which the multi-host tests
# give each worker its own network namespace and a way to the database.
system:
	@(ldconfig -p | grep -q libpangoft2-1.0 && test -x /usr/bin/pdftotext && test -x /usr/bin/socat && \
	  command -v ip >/dev/null) || (apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
	  poppler-utils socat iproute2 >/dev/null)

# Browser tests drive Debian's chromium (Playwright never downloads a browser here).
browser:
	@test -x /usr/bin/chromium || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

bench: install models-default models-test
	$(BIN)/python bench/pipeline.py

clean:
	rm -rf $(VENV) var
