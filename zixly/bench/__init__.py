"""Benchmarks: each compares the project against a baseline measured in the same run."""
