# Two commands do all set-up on a fresh machine:
#   make book   create .venv, install the pinned stack, build the site into _build/html
#   make test   the same environment plus test extras, build the book, run every test
# and for working on the library:
#   make unit   the tests that need no built book (library, packaging, cache key)
#   make lock   compile requirements.txt from requirements.in (uv, pinned below)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
JB     := $(BIN)/jupyter-book
DIST   := _build/dist
UV_VERSION := 0.13.8
LOCK_VENV  := .venv-lock

.PHONY: book test unit wheel lock venv venv-test serve clean clean-book bench

venv: $(VENV)/.stamp
venv-test: $(VENV)/.stamp-test

$(VENV)/.stamp: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet pip==26.3
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp requirements-test.txt
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

# The lock: requirements.in holds the top-level pins, uv resolves the rest (keeping the
# versions already in requirements.txt where they still fit).
$(LOCK_VENV)/bin/uv:
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION)

lock: $(LOCK_VENV)/bin/uv
	$(LOCK_VENV)/bin/uv pip compile --quiet --python $(PYTHON) \
	  --custom-compile-command "make lock" requirements.in -o requirements.txt

# The wheel the site offers for download (book/_ext/bnbook_wheel.py copies it into
# _build/html); build/ is removed first so that no deleted module survives in it.
wheel: venv
	rm -rf build $(DIST)
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir $(DIST) .

# --all re-reads every page so that warnings of unchanged pages are reported again;
# chapters are executed only when their code or src/bnbook changed (execute_notebooks:
# cache, keyed on the library by book/_ext/bnbook_cache.py).
JB_BUILD := $(JB) build . --all -W -n --keep-going

book: venv wheel
	$(JB_BUILD)

# The build executes every chapter; tests/test_notebooks.py reuses its jupyter-cache
# instead of executing them a second time, tests/test_site.py opens the built pages.
test: venv-test wheel
	$(JB_BUILD)
	BNBOOK_NOTEBOOK_REQUIRE_CACHE=1 $(BIN)/python -m pytest

# Everything but the tests marked `book` (built site, chapters, the wheel in a fresh venv).
unit: venv-test
	$(BIN)/python -m pytest -m "not book"

bench: venv-test
	$(BIN)/python -m bnbook.bench all

PORT ?= 8000
serve:
	@test -f _build/html/index.html || { echo "no site yet: run 'make book' first"; exit 1; }
	@echo "serving http://127.0.0.1:$(PORT)/ (Ctrl-C stops)"
	$(PYTHON) -m http.server --bind 127.0.0.1 --directory _build/html $(PORT)

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf $(VENV) $(LOCK_VENV) build .pytest_cache .hypothesis
