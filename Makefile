# The two commands: `make run` serves the whole API on 127.0.0.1:8100; `make test` runs every test.
.PHONY: run test

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh
