# The two commands of the README. Both install what they need first (pip install -e '.[test]').
PYTHON ?= python3

.PHONY: install demo test lint bench

install:
	$(PYTHON) -m pip install -q -e '.[test]'

demo: install
	footfall demo

lint: install
	ruff check .
	ruff format --check .

test: lint
	$(PYTHON) -m pytest -q

bench: install
	for b in bench/*.py; do echo "== $$b"; $(PYTHON) $$b || exit 1; done
