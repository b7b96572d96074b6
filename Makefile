# The two commands of the README: `make run` and `make test`. Each does its own set-up first.
.PHONY: run test bootstrap lint bench bench-sweep bench-replay bench-job-list schemas stack-down

run: bootstrap
	.venv/bin/zixly up

test: lint
	@deploy/bootstrap.sh --browser
	.venv/bin/pytest

bootstrap:
	@deploy/bootstrap.sh

lint: bootstrap
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy

bench: bootstrap
	@command -v wrk >/dev/null && command -v hey >/dev/null || \
		{ [ "$$(id -u)" -eq 0 ] && s= || s=sudo; $$s apt-get update -q && $$s apt-get install -y -q wrk hey; }
	.venv/bin/zixly bench ingest

bench-replay: bootstrap
	.venv/bin/zixly bench replay

bench-job-list: bootstrap
	@deploy/bootstrap.sh --browser
	.venv/bin/zixly bench job-list

bench-sweep: bootstrap
	.venv/bin/zixly bench sweep

schemas: bootstrap
	.venv/bin/python -m schemas.json_schema

stack-down: bootstrap
	.venv/bin/zixly stack down
