# Two commands on a fresh machine: `make demo` and `make test`. Both create the virtual
# environment on first use; torch is pinned to a CPU build through constraints.txt.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.brainfm-installed
export MALLOC_ARENA_MAX ?= 2

BD_VENV ?= .bench/bd-venv
BD_STAMP := $(BD_VENV)/.braindecode-installed

.PHONY: install demo test test-fast bench-env bench docs docs-check clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/brainfm-demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# braindecode, the comparison in benchmarks/, in its own environment: see the header of
# benchmarks/requirements-braindecode.txt for why it is 0.8.1 (no torchaudio at import).
$(BD_STAMP): benchmarks/requirements-braindecode.txt constraints.txt
	$(PYTHON) -m venv $(BD_VENV)
	$(BD_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r benchmarks/requirements-braindecode.txt
	$(BD_VENV)/bin/python -c "import braindecode.datasets, braindecode.preprocessing"
	touch $(BD_STAMP)

bench-env: $(BD_STAMP)

bench: $(STAMP) $(BD_STAMP)
	$(BIN)/python benchmarks/prep.py --write

# Tables in README.md and docs/*.md rendered from the raw results committed under
# benchmarks/results/ (benchmarks/docs_blocks.py): `docs` rewrites them, `docs-check` fails
# with a diff where a page differs from what its raw files give.
docs: $(STAMP)
	$(BIN)/python benchmarks/docs_blocks.py write

docs-check: $(STAMP)
	$(BIN)/python benchmarks/docs_blocks.py check

clean:
	rm -rf $(VENV) stores .pytest_cache
