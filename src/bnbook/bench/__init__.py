"""Benchmarks against PyTorch on the CPU: ``python -m bnbook.bench batchnorm|lenet|all``.

Benchmarks are run by hand, not by the tests: timings depend on the machine and
its load. :mod:`bnbook.bench.timing` holds the shared helpers (interleaved
repetitions, medians, a copy-bandwidth measurement, a table printer).
"""
BENCHMARKS = ("batchnorm", "lenet")
