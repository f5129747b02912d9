# Common tasks. The two that matter:  `make book`  and  `make test`  (see README.md).
# Each installs what is missing into .venv first (torch from its pin before anything else,
# so no other package can pull a different, multi-GB build).

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.mmedu-installed
RAW    ?= ../shared/data

.PHONY: install book test notebooks times claims lab labs data bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev,book,lab,nbgrader]"
	touch $(STAMP)

## Build the HTML book from the committed (nbval-verified) notebook outputs.
book: $(STAMP)
	$(VENV)/bin/jupyter-book build . --all
	@echo "Open the book: file://$(CURDIR)/_build/html/index.html"

## The whole test suite: unit tests + nbval over every notebook + book build with -W.
test: $(STAMP)
	PY=$(PY) bash scripts/run_tests.sh

## Re-execute every notebook (or NB=notebooks/00_data.ipynb) and store outputs deterministically.
notebooks: $(STAMP)
	$(PY) scripts/run_notebooks.py $(NB)

## Re-execute every notebook and write their execution times to book/run_times.md.
times: $(STAMP)
	$(PY) scripts/run_notebooks.py --times book/run_times.md

## The evidence for the chapters' claims: 16 seeds under the pins + 4 under a foreign ISA,
## written to notebooks/claims/NN_x.json (NB=notebooks/NN_x.ipynb for one chapter; ~25 min for all).
claims: $(STAMP)
	$(PY) scripts/measure_claims.py $(NB)

## JupyterLab under the same numeric pins as the recorded runs (mmedu/reproduce.py).
lab: $(STAMP)
	$(PY) -m mmedu.reproduce $(VENV)/bin/jupyter lab notebooks/

## Student (lab) editions of every chapter, made by nbgrader, in _build/labs/release/;
## VALIDATE=1 also runs nbgrader's validator on every instructor version (executes them all).
labs: $(STAMP)
	$(PY) scripts/make_labs.py $(if $(VALIDATE),--validate)

## Rebuild the embedded dataset from the raw MNIST/FSDD files (RAW=folder).
data: $(STAMP)
	$(PY) scripts/build_mmdigits.py $(RAW)

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do $(PY) $$b --quick; done

## Release files: sdist + wheel into _build/dist/, checked (contents, check-wheel-contents,
## twine, installed into a fresh environment, unit tests against it). CI runs it.
.PHONY: check-wheel setup-cells
check-wheel: $(STAMP)
	$(PY) scripts/check_wheel.py

## Insert or update the setup cell of every chapter notebook (after a version bump, or once
## repository.url is set in _config.yml): see "Cutting a release" in CONTRIBUTING.md.
setup-cells: $(STAMP)
	$(PY) scripts/insert_setup_cell.py

clean:
	rm -rf _build .pytest_cache
