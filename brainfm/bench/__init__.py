"""Benchmark suite: evaluation protocols (who trains, who tests) and metrics."""
