# Two commands from a fresh clone: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test check lint format bench samples clean

# PYTHONWARNINGS: setuptools warns at length that an editable install may be shadowed by a
# folder of the same name; a new user's first command should be quiet.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(STAMP)

demo: $(STAMP)  ## import the sample spreadsheet into a fresh in-process sandbox
	rm -f out/demo.results.csv out/demo.results.journal* out/demo.html
	$(BIN)/zype-import run samples/promo_codes.csv --sandbox --results out/demo.results.csv \
		--summary out/demo.summary.json --html out/demo.html --rate 50 --no-progress; \
	status=$$?; echo "exit code $$status (1: the sample has invalid rows on purpose);" \
		"results in out/demo.results.csv, the report page in out/demo.html"; \
	test $$status -le 1

test: $(STAMP)
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check importer tests bench
	$(BIN)/ruff format --check importer tests bench
	$(BIN)/mypy

check: lint test

format: $(STAMP)
	$(BIN)/ruff format importer tests bench
	$(BIN)/ruff check --fix importer tests bench

bench: $(STAMP)  ## every benchmark (about 10 minutes; `sheets` needs LibreOffice); one: make bench BENCH=lifecycle
	$(BIN)/python -m bench $(BENCH)

samples: $(STAMP)  ## rewrite samples/ and the .xls test fixture (needs LibreOffice's soffice)
	$(BIN)/python samples/make_samples.py

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
