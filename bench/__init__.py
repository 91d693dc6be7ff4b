"""Benchmarks of Folio (issue 7): `make bench` runs them all and writes bench/results/latest.json and
docs/PERFORMANCE.md. Everything here is measurement scaffolding; nothing in the product imports it."""
