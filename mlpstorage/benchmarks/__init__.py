"""The lifecycle (base.Benchmark) and the benchmarks built on it."""
