# The benchmark entry point (BENCHMARKS.md); builds go through scripts/build.
# make bench BENCH_FLAGS=--quick
.PHONY: bench
bench:
	bench/run $(BENCH_FLAGS)
