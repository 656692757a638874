"""Reproducible search benchmarks for ragls: semble-protocol quality and indexing/query speed.

Run everything with ``python -m benchmarks.run`` (or ``make bench``); see ``benchmarks/README.md``.
"""
