# vpp-maglev: `make run` runs the embedded daemon; `make test` installs what the tests need
# and runs them. See README.md.
PY := .venv/bin/python

.PHONY: run test lint format bench pkg-deb clean

run:
	scripts/run

test:
	scripts/test

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format:
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

bench:
	scripts/bootstrap dev
	$(PY) bench/run_all.py

pkg-deb:
	scripts/pkg-deb

clean:
	rm -rf .venv var .pytest_cache .ruff_cache .hypothesis
