# The two commands of the README: `make run` and `make test`. Each does its own set-up first.
.PHONY: run test test-parallel bootstrap lint audit lock bench bench-pipeline bench-latency bench-sweep bench-replay bench-job-list bench-big-job bench-sweep-e2e bench-walk-forward bench-worker bench-scale schemas stack-down

run: bootstrap
	.venv/bin/zixly up

test: lint audit
	@deploy/bootstrap.sh --browser
	.venv/bin/pytest

# The fault suites beside the rest, each on a stack of its own (tests/suite.py): faster; CI keeps the single process
# of `make test`, whose 25 minutes leave room. Under doubled load its browser tests' timeouts are tight.
test-parallel: lint audit
	@deploy/bootstrap.sh --browser
	.venv/bin/python -m tests.suite

bootstrap:
	@deploy/bootstrap.sh

# The locked dependencies against known vulnerabilities; deploy/pip-audit-ignore.txt holds the reviewed exceptions.
audit: bootstrap
	.venv/bin/python -m zixly.dependency_audit

# Rewrites the lock files from pyproject.toml's ranges, keeping every locked version that still fits (add
# --upgrade-package NAME, or remove a line, to move one); every install uses them, checked by hash.
LOCK = .venv/bin/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock"
lock: bootstrap
	$(LOCK) -o requirements.lock
	$(LOCK) --extra dev -o requirements-dev.lock

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/lint-imports --no-cache --no-logo

bench: bootstrap
	@command -v wrk >/dev/null && command -v hey >/dev/null || \
		{ [ "$$(id -u)" -eq 0 ] && s= || s=sudo; $$s apt-get update -q && $$s apt-get install -y -q wrk hey; }
	.venv/bin/zixly bench ingest

bench-pipeline: bootstrap
	.venv/bin/zixly bench pipeline

bench-latency: bootstrap
	.venv/bin/zixly bench latency

bench-replay: bootstrap
	.venv/bin/zixly bench replay

bench-job-list: bootstrap
	@deploy/bootstrap.sh --browser
	.venv/bin/zixly bench job-list

bench-sweep-e2e: bootstrap
	.venv/bin/zixly bench sweep-e2e

bench-big-job: bootstrap
	@deploy/bootstrap.sh --browser
	.venv/bin/zixly bench big-job

bench-worker: bootstrap
	.venv/bin/zixly bench worker

bench-scale: bootstrap
	.venv/bin/zixly bench scale

bench-sweep: bootstrap
	.venv/bin/zixly bench sweep

bench-walk-forward: bootstrap
	.venv/bin/zixly bench walk-forward

schemas: bootstrap
	.venv/bin/python -m schemas.json_schema

stack-down: bootstrap
	.venv/bin/zixly stack down
