# Two commands do all set-up on a fresh machine:
#   make book   create .venv, install the pinned stack, build the site into _build/html
#   make test   the same environment plus test extras, build the book, run every test
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
JB     := $(BIN)/jupyter-book

.PHONY: book test venv venv-test serve clean clean-book bench

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

# --all re-reads every page so that warnings of unchanged pages are reported again;
# chapters are executed only when their code changed (execute_notebooks: cache).
JB_BUILD := $(JB) build . --all -W -n --keep-going

book: venv
	$(JB_BUILD)

# The build executes every chapter; tests/test_notebooks.py reuses its jupyter-cache
# instead of executing them a second time, tests/test_site.py opens the built pages.
test: venv-test
	$(JB_BUILD)
	BNBOOK_NOTEBOOK_REQUIRE_CACHE=1 $(BIN)/python -m pytest

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
	rm -rf $(VENV) .pytest_cache .hypothesis
