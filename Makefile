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
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp requirements-test.txt
	$(BIN)/python -m pip install --quiet -r requirements-test.txt
	touch $@

book: venv
	$(JB) build . -W -n --keep-going

test: venv-test
	$(JB) build . -W -n --keep-going
	$(BIN)/python -m pytest

bench: venv-test
	$(BIN)/python -m bnbook.bench all

serve:
	$(BIN)/python -m http.server --directory _build/html 8000

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf $(VENV) .pytest_cache .hypothesis
