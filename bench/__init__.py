"""Benchmarks: a synthetic workload generator (`bench.generate`) and the replay benchmark (`bench.replay`)."""
