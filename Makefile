# Two entry points: `make demo` and `make test`. Both build .venv from nothing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PIP_FLAGS := --disable-pip-version-check --quiet
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# The demo and the benchmarks run with a home of their own (.home/), so they never read or
# write the user's files, caches, credentials or S3 spool; the tests make their own in a
# temporary folder (tests/hermetic.py) and fail if anything under the real home changed.
RUN_HOME := $(CURDIR)/.home
RUN_ENV := HOME=$(RUN_HOME) XDG_CACHE_HOME=$(RUN_HOME)/.cache XDG_CONFIG_HOME=$(RUN_HOME)/.config \
	MPLCONFIGDIR=$(RUN_HOME)/.config/matplotlib AWS_CONFIG_FILE=$(RUN_HOME)/.aws/config \
	AWS_SHARED_CREDENTIALS_FILE=$(RUN_HOME)/.aws/credentials AWS_EC2_METADATA_DISABLED=true

.PHONY: demo test lint typecheck unit suite browser golang faketime timeless interop docs bench bench-run crash fuzz tamper spark install clean

$(STAMP): pyproject.toml requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_FLAGS) -c requirements/constraints.txt -e '.[dev]'
	$(BIN)/python -m pip check
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(RUN_ENV) $(BIN)/python -m comply_lab.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict comply_lab

# The inner loop: everything but the tests marked slow (crash harnesses, the demo and
# benchmark smoke test, notebooks, the browser, multi-process runs, CLI batteries).
unit: $(STAMP)
	COMPLY_LAB_PROPERTY_EXAMPLES=15 COMPLY_LAB_FUZZ_EXAMPLES=100 \
		$(BIN)/pytest -n 2 -m "not slow" --durations=10

# Debian's Chromium for the browser tests, which drive it with the playwright pip package
# (Playwright's own browser downloads are never used).
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

# Debian's Go and golang.org/x/mod, for the test that opens our checkpoints with Go's
# signed-note reader (built offline against the Debian package, never downloaded).
golang:
	@{ command -v go >/dev/null && [ -d /usr/share/gocode/src/golang.org/x/mod/sumdb/note ]; } || \
		{ $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq --no-install-recommends \
		golang-go golang-golang-x-mod-dev; }

# Debian's faketime, for the part of the suite run under moved clocks (make timeless).
faketime:
	@command -v faketime >/dev/null || { $(SUDO) apt-get update -qq && \
		$(SUDO) apt-get install -y -qq --no-install-recommends faketime; }

# A part of the suite under clocks moved one and three years ahead and to a 29 February:
# the tests fix comply_lab's "now" themselves (tests/hermetic.py), so they pass on any
# date; this catches what would still read the real one.
TIMELESS_TESTS := tests/test_timeless.py tests/retention tests/audit tests/cli/test_cli.py \
	tests/integrity/test_clock.py tests/keys/test_keyring.py
timeless: $(STAMP) faketime
	@for clock in +1y +3y "@2028-02-29 12:00:00"; do \
		echo "tests under faketime $$clock"; \
		PYTHONPATH=$(CURDIR)/tests/faketime FAKETIME_DONT_FAKE_MONOTONIC=1 faketime -f "$$clock" \
			$(BIN)/pytest -q -n 2 -m "not slow" -p no:cacheprovider $(TIMELESS_TESTS) || exit 1; \
	done

interop: $(STAMP) golang
	$(BIN)/pytest -rs tests/interop

# Everything, as CI runs it (with Chromium and Go installed first for the browser and
# interoperability tests).
suite: $(STAMP) browser golang
	$(BIN)/pytest -n 2 --durations=10

# The documentation site (guide, reliability, API from docstrings, CLI from --help) in
# site/; any warning is an error.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

test: lint typecheck docs timeless suite

crash: $(STAMP)
	COMPLY_LAB_CRASH_TRIALS=3000 $(BIN)/pytest -n 2 tests/test_crash.py

fuzz: $(STAMP)
	COMPLY_LAB_FUZZ_EXAMPLES=20000 $(BIN)/pytest tests/test_fuzz.py
	COMPLY_LAB_TAMPER_EXAMPLES=200 $(BIN)/pytest -n 2 tests/integrity/test_tamper_property.py
	COMPLY_LAB_PARQUET_FUZZ=10000 $(BIN)/pytest tests/storage/test_damage.py -k fuzz

# Honest histories and single edits on every backend, counted (the figures in RELIABILITY.md).
tamper: $(STAMP)
	$(BIN)/python bench/tamper_trials.py --histories 250 --s3-histories 50
	COMPLY_LAB_SPLICES=1000 $(BIN)/pytest -n 2 -p no:cacheprovider tests/integrity/test_splice.py

# The Spark reading test is skipped without pyspark and Java; this installs pyspark and runs it.
spark: $(STAMP)
	$(BIN)/python -m pip install $(PIP_FLAGS) -c requirements/constraints.txt -r requirements/spark.txt
	$(BIN)/pytest -m spark -rs tests/lab/test_sql_engines.py

BENCH_VENV := .venv-bench

$(BENCH_VENV)/.installed: pyproject.toml requirements/constraints.txt requirements/bench.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install $(PIP_FLAGS) -c requirements/constraints.txt -e '.[dev]' -r requirements/bench.txt
	touch $@

# Benchmarks run in their own environment, which also holds the original tool.
bench: $(BENCH_VENV)/.installed
	$(RUN_ENV) $(MAKE) --no-print-directory bench-run

bench-run:
	$(BENCH_VENV)/bin/python bench/log_throughput.py
	$(BENCH_VENV)/bin/python bench/query_scale.py
	$(BENCH_VENV)/bin/python bench/verify_speed.py
	$(BENCH_VENV)/bin/python bench/s3_cost.py
	$(BENCH_VENV)/bin/python bench/crypto_speed.py
	$(BENCH_VENV)/bin/python bench/retention_speed.py
	$(BENCH_VENV)/bin/python bench/read_checks.py
	$(BENCH_VENV)/bin/python bench/explorer_speed.py
	$(BENCH_VENV)/bin/python bench/scale.py
	$(BENCH_VENV)/bin/python bench/tamper_trials.py --histories 250 --s3-histories 50
	$(BENCH_VENV)/bin/python bench/versus.py --profile
	$(BENCH_VENV)/bin/python bench/compare.py collect
	$(BENCH_VENV)/bin/python bench/compare.py bench/release.json bench/out/results.json

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(RUN_HOME) data/demo site .pytest_cache .mypy_cache .ruff_cache
