"""Benchmarks: every figure is a ratio against a baseline measured in the same run.

Run them all with ``python -m benchmarks`` (``--quick`` for a short smoke run); results go
to ``benchmarks/results/latest.json`` and a Markdown table for ``docs/performance.md``.
"""
