# The two commands: `make run` serves the whole API on 127.0.0.1:8100; `make test` runs every test.
.PHONY: run test bench chaos

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh

# Not one of the two commands: the benchmark (release build; loopback only).
bench:
	@bash scripts/bench.sh $(ARGS)

# Not one of the two commands: the long fault workload (tests/faults/), with its figures.
chaos:
	@bash scripts/chaos.sh $(ARGS)
