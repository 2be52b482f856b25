"""The load scenario (`python -m bench.load`): the real mix at once on the local stack. See README.md,
"Operations", and BENCHMARKS.md, "Reliability and load"."""
