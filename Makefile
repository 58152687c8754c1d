# Every target goes through `install`, which is idempotent: it (re)installs only when pyproject.toml, the
# Node lockfile or a compiled extension's sources (setup.py and every .c / .h under src/) changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo golden test unit contract check bench mutation sanitize clean

install: $(STAMP)

# the C extensions setup.py builds: editing one rebuilds it (pip install -e compiles it beside its .py)
EXT_SOURCES := setup.py $(shell find src -name '*.c' -o -name '*.h')

$(STAMP): pyproject.toml tools/node/package-lock.json $(EXT_SOURCES)
	# softhsm2: the PKCS#11 token the signing server's HSM tests use (Debian package)
	test -e /usr/lib/softhsm/libsofthsm2.so || (apt-get update -qq && apt-get install -y -qq softhsm2)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	# the official TypeScript builder signing SDK, for its contract test (skips without Node)
	if command -v node >/dev/null && command -v npm >/dev/null; then npm ci --prefix tools/node --no-audit --no-fund; \
	else echo "node/npm not found: skipping tools/node (tests/contract/test_signer_ts_sdk.py will skip)"; fi
	touch $(STAMP)

demo: install
	$(BIN)/polysnipe backtest --markets data/sample/markets.json --markets data/sample/gamma_markets.json \
		--markets data/sample/gamma_events.json --events data/sample/events.jsonl \
		--labels data/sample/labels.jsonl --out out/demo

# the pinned outputs of the sample backtest (tests/unit/test_golden.py): regenerate only on purpose
golden: demo
	cp out/demo/report.json out/demo/opportunities.jsonl tests/golden/

test: install
	$(BIN)/python -m pytest tests

unit: install
	$(BIN)/python -m pytest tests/unit

contract: install
	$(BIN)/python -m pytest tests/contract

check: install
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	# mypy cannot follow the package-dir mapping (polysnipe = src/), so it reads the package through a link
	mkdir -p build/mypyroot && ln -sfn ../../src build/mypyroot/polysnipe
	MYPYPATH=build/mypyroot $(BIN)/mypy --strict -p polysnipe
	# the tests too (their helpers, tests/kit and conftest, import as top-level modules)
	MYPYPATH=build/mypyroot:tests $(BIN)/mypy --strict tests

# the pipeline properties must catch known mutations of the lifecycle (tests/mutation/run.py; ~75 s)
mutation: install
	$(BIN)/python tests/mutation/run.py

# the unit suite against the extensions built with AddressSanitizer and UBSan (.ci/sanitize; ~4 min)
sanitize: install
	.ci/sanitize

bench: install
	$(BIN)/polysnipe bench backtest --events data/sample/events.jsonl

clean:
	rm -rf $(VENV) out build $(shell find src -name '*.so')
